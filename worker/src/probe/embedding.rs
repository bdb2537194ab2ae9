//! Probes on extracted embeddings (kind `embedding`): per-residue tasks
//! (ss4, binding sites, PTMs) on one layer's vectors, and the contact probe
//! on pair features |e_i − e_j| and e_i ⊙ e_j.

use std::collections::HashMap;

use headscan_probe::contacts::{ContactTruth, contact_design, contact_scores};
use headscan_probe::logreg::{Design, Weights};
use headscan_probe::tasks::{Task, is_train};
use headscan_proto::embeddings::EmbeddingRows;
use headscan_proto::features::ContactRule;
use headscan_proto::pb::{PrecisionCount, ProbeResult};
use headscan_proto::probe_metrics::{ClassCounts, ContactRange, PrecisionCounts, token_precision_at};
use headscan_proto::record::ProteinRecord;

/// A record id and its validation residues: (position, features).
type RecordResidues<'a> = (&'a str, Vec<(usize, Vec<f64>)>);

/// One shard's labels (by record id) and embeddings.
pub struct ShardData {
    task: Task,
    labels: HashMap<String, Vec<Option<usize>>>,
    contacts: HashMap<String, ContactTruth>,
    rows: EmbeddingRows,
}

impl ShardData {
    /// The labels of `task` in `records`, beside their embedding `rows`.
    pub fn new(records: &[ProteinRecord], task: Task, rows: EmbeddingRows) -> Self {
        let labels = records
            .iter()
            .filter_map(|r| task.labels(r).map(|l| (r.id.clone(), l)))
            .collect();
        let contacts = if task == Task::Contact {
            records
                .iter()
                .filter_map(|r| ContactTruth::of(r, ContactRule::default()).map(|t| (r.id.clone(), t)))
                .collect()
        } else {
            HashMap::new()
        };
        Self {
            task,
            labels,
            contacts,
            rows,
        }
    }

    /// Values per embedding.
    pub fn dim(&self) -> usize {
        self.rows.dim
    }

    /// Rows of one layer on the `train` side of the split (seed, fraction).
    pub fn design(&self, layer: i32, (seed, fraction): (u64, f64), train: bool) -> Design {
        let rows = &self.rows;
        if self.task == Task::Contact {
            return contact_design(rows, layer, &self.contacts, |id| {
                is_train(id, seed, fraction) == train
            });
        }
        let mut d = Design::new(rows.dim);
        let mut x = vec![0.0; rows.dim];
        for r in 0..rows.len() {
            if rows.layers[r] != layer || is_train(&rows.ids[r], seed, fraction) != train {
                continue;
            }
            let Some(labels) = self.labels.get(&rows.ids[r]) else {
                continue;
            };
            let Some(&Some(class)) = labels.get(rows.positions[r] as usize) else {
                continue;
            };
            for (a, b) in x.iter_mut().zip(&rows.values[r * rows.dim..(r + 1) * rows.dim]) {
                *a = f64::from(*b);
            }
            d.push(&x, class);
        }
        d
    }

    /// Validation counts of the probe `w` on one layer: per-class counts
    /// (ss4), precision at L/20 (binding sites, PTMs) or at L/5 per range
    /// (contacts).
    pub fn score(&self, w: &Weights, layer: i32, (seed, fraction): (u64, f64)) -> ProbeResult {
        let rows = &self.rows;
        let mut out = ProbeResult::default();
        if self.task == Task::Contact {
            let mut acc = [PrecisionCounts::default(); 4];
            let validation = |id: &str| !is_train(id, seed, fraction);
            out.n_eval = contact_scores(rows, layer, &self.contacts, validation, w, &mut acc);
            out.precision = precision_list(5, &acc);
            return out;
        }
        // Validation residues grouped by record, in row order.
        let mut per_record: Vec<RecordResidues> = Vec::new();
        for r in 0..rows.len() {
            if rows.layers[r] != layer || is_train(&rows.ids[r], seed, fraction) {
                continue;
            }
            if !self.labels.contains_key(&rows.ids[r]) {
                continue;
            }
            let x: Vec<f64> = rows.values[r * rows.dim..(r + 1) * rows.dim]
                .iter()
                .map(|v| f64::from(*v))
                .collect();
            match per_record.last_mut() {
                Some((id, v)) if *id == rows.ids[r] => v.push((rows.positions[r] as usize, x)),
                _ => per_record.push((&rows.ids[r], vec![(rows.positions[r] as usize, x)])),
            }
        }
        let mut classes = ClassCounts::new(self.task.n_classes());
        let mut at_l20 = PrecisionCounts::default();
        for (id, residues) in per_record {
            let labels = &self.labels[id];
            if self.task == Task::Ss4 {
                for (pos, x) in &residues {
                    if let Some(Some(t)) = labels.get(*pos) {
                        // Classes come from Task::labels, always in range.
                        let _ = classes.add(*t, w.predict(x));
                        out.n_eval += 1;
                    }
                }
            } else {
                let scores: Vec<f64> = residues.iter().map(|(_, x)| w.probabilities(x)[1]).collect();
                let truth: Vec<bool> = residues
                    .iter()
                    .map(|(p, _)| labels.get(*p) == Some(&Some(1)))
                    .collect();
                let valid: Vec<bool> = residues
                    .iter()
                    .map(|(p, _)| matches!(labels.get(*p), Some(Some(_))))
                    .collect();
                if let Ok(p) = token_precision_at(&scores, &truth, &valid, 20) {
                    at_l20.merge(p);
                }
                out.n_eval += valid.iter().filter(|v| **v).count() as u64;
            }
        }
        if self.task == Task::Ss4 {
            (out.true_pos, out.false_pos, out.false_neg) = (classes.tp, classes.fp, classes.fn_);
        } else {
            out.precision = vec![precision_count(20, ContactRange::All, at_l20)];
        }
        out
    }
}

/// One precision entry of a result.
pub fn precision_count(k: u32, range: ContactRange, c: PrecisionCounts) -> PrecisionCount {
    PrecisionCount {
        k,
        range: range.name().into(),
        correct: c.correct,
        selected: c.selected,
    }
}

/// Precision at L/k for every range of [`ContactRange::ALL`], in that order.
pub fn precision_list(k: u32, acc: &[PrecisionCounts; 4]) -> Vec<PrecisionCount> {
    acc.iter()
        .zip(ContactRange::ALL)
        .map(|(c, r)| precision_count(k, r, *c))
        .collect()
}
