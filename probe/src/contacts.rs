//! The contact probe on embeddings (Vig et al. 2021 §5): a pair (i, j) is
//! described by |e_i − e_j| and e_i ⊙ e_j, and labelled by DESIGN §1's
//! contact rule (Cα–Cα < 8 Å, |i − j| ≥ 6, both residues resolved).

use std::collections::HashMap;

use headscan_proto::embeddings::EmbeddingRows;
use headscan_proto::features::ContactRule;
use headscan_proto::probe_metrics::{ContactRange, PrecisionCounts, contact_precision_at};
use headscan_proto::record::ProteinRecord;

use super::logreg::{Design, Weights};

/// Residue positions at or above this are ignored (no protein is this long).
pub const MAX_RESIDUES: usize = 1 << 20;

/// What decides the contact label of a record's pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactTruth {
    ca: Vec<f32>,
    usable: Vec<bool>,
    rule: ContactRule,
}

impl ContactTruth {
    /// The record's truth, or `None` when it has no coordinates.
    pub fn of(record: &ProteinRecord, rule: ContactRule) -> Option<Self> {
        let ca = record.ca_coords.clone()?;
        let usable = ContactRule::usable(&ca, record.resolved.as_deref(), record.len());
        Some(Self { ca, usable, rule })
    }

    /// Residues covered.
    pub fn len(&self) -> usize {
        self.usable.len()
    }

    /// True when the record has no residues.
    pub fn is_empty(&self) -> bool {
        self.usable.is_empty()
    }

    /// Whether (i, j) is a contact; `None` for a pair that is not valid
    /// (too close in sequence, unresolved, or outside the record).
    pub fn label(&self, i: usize, j: usize) -> Option<bool> {
        if i >= self.len() || j >= self.len() {
            return None;
        }
        self.rule.pair(&self.ca, &self.usable, i, j)
    }
}

/// Appends the pair features of (i, j): |e_i − e_j| then e_i ⊙ e_j (2·dim values).
pub fn pair_features(ei: &[f32], ej: &[f32], out: &mut Vec<f64>) {
    out.clear();
    out.extend(ei.iter().zip(ej).map(|(a, b)| f64::from((a - b).abs())));
    out.extend(ei.iter().zip(ej).map(|(a, b)| f64::from(a * b)));
}

/// One layer's vectors grouped by record, records in order of first row:
/// `(id, vector of each residue position)` (`None` for a position without a row).
pub fn record_vectors(rows: &EmbeddingRows, layer: i32) -> Vec<(&str, Vec<Option<&[f32]>>)> {
    let mut out: Vec<(&str, Vec<Option<&[f32]>>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for r in 0..rows.len() {
        if rows.layers[r] != layer {
            continue;
        }
        // A residue index no protein reaches (or a negative one) is not a
        // row of `headscan extract`: skip it rather than allocate for it.
        let Ok(pos) = usize::try_from(rows.positions[r]) else {
            continue;
        };
        if pos >= MAX_RESIDUES {
            continue;
        }
        let id = rows.ids[r].as_str();
        let k = *index.entry(id).or_insert_with(|| {
            out.push((id, Vec::new()));
            out.len() - 1
        });
        let v = &mut out[k].1;
        if v.len() <= pos {
            v.resize(pos + 1, None);
        }
        v[pos] = Some(&rows.values[r * rows.dim..(r + 1) * rows.dim]);
    }
    out
}

/// Training (or validation) pairs of one layer of a shard: every valid pair
/// i < j of the records `keep` accepts, in record then (i, j) order.
pub fn contact_design(
    rows: &EmbeddingRows,
    layer: i32,
    truths: &HashMap<String, ContactTruth>,
    keep: impl Fn(&str) -> bool,
) -> Design {
    let mut d = Design::new(2 * rows.dim);
    let mut f = Vec::with_capacity(2 * rows.dim);
    for (id, vectors) in record_vectors(rows, layer) {
        let Some(truth) = truths.get(id).filter(|_| keep(id)) else {
            continue;
        };
        for i in 0..vectors.len() {
            for j in i + 1..vectors.len() {
                let (Some(ei), Some(ej), Some(label)) = (vectors[i], vectors[j], truth.label(i, j)) else {
                    continue;
                };
                pair_features(ei, ej, &mut f);
                d.push(&f, usize::from(label));
            }
        }
    }
    d
}

/// Scores the validation records of one layer of a shard: precision at L/5
/// counts for [`ContactRange::ALL`] (in that order) are added to `acc`;
/// returns the valid pairs scored. L is the number of residues embedded.
pub fn contact_scores(
    rows: &EmbeddingRows,
    layer: i32,
    truths: &HashMap<String, ContactTruth>,
    keep: impl Fn(&str) -> bool,
    w: &Weights,
    acc: &mut [PrecisionCounts; 4],
) -> u64 {
    let mut pairs = 0;
    let mut f = Vec::with_capacity(2 * rows.dim);
    for (id, vectors) in record_vectors(rows, layer) {
        let Some(truth) = truths.get(id).filter(|_| keep(id)) else {
            continue;
        };
        let l = vectors.len();
        let mut scores = vec![0.0; l * l];
        let mut labels = vec![None; l * l];
        for i in 0..l {
            for j in i + 1..l {
                let (Some(ei), Some(ej), Some(label)) = (vectors[i], vectors[j], truth.label(i, j)) else {
                    continue;
                };
                pair_features(ei, ej, &mut f);
                scores[i * l + j] = w.probabilities(&f)[1];
                labels[i * l + j] = Some(label);
                pairs += 1;
            }
        }
        for (slot, range) in acc.iter_mut().zip(ContactRange::ALL) {
            // Scores and labels are both L×L and finite: cannot fail.
            if let Ok(p) = contact_precision_at(&scores, &labels, l, 5, range) {
                slot.merge(p);
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_features_by_hand() {
        // Ten residues on a line 1 Å apart, then residue 9 folded back next to 0.
        let mut ca: Vec<f32> = (0..10).flat_map(|i| [i as f32, 0.0, 0.0]).collect();
        ca[27..30].copy_from_slice(&[0.5, 1.0, 0.0]);
        let mut r = ProteinRecord::new("x", "AAAAAAAAAA", "t");
        r.ca_coords = Some(ca);
        let mut resolved = vec![true; 10];
        resolved[8] = false;
        r.resolved = Some(resolved);
        let t = ContactTruth::of(&r, ContactRule::default()).unwrap();
        assert_eq!(t.label(0, 9), Some(true));
        assert_eq!(t.label(0, 6), Some(true), "6 Å < 8 Å");
        assert_eq!(t.label(0, 5), None, "separation 5");
        assert_eq!(t.label(0, 8), None, "residue 8 unresolved");
        assert_eq!(t.label(1, 10), None, "outside the record");
        let mut f = Vec::new();
        pair_features(&[1.0, -2.0], &[3.0, 4.0], &mut f);
        assert_eq!(f, vec![2.0, 6.0, 3.0, -8.0]);
        assert!(ContactTruth::of(&ProteinRecord::new("y", "A", "t"), ContactRule::default()).is_none());
    }

    #[test]
    fn record_vectors_group_by_record_and_skip_impossible_positions() {
        let mut rows = EmbeddingRows::new(1);
        rows.push("a", 1, 0, &[1.0]).unwrap();
        rows.push("a", 0, 0, &[2.0]).unwrap();
        rows.push("b", 0, 0, &[3.0]).unwrap();
        rows.push("a", 0, 1, &[9.0]).unwrap();
        rows.push("b", -1, 0, &[4.0]).unwrap();
        rows.push("b", 1 << 30, 0, &[5.0]).unwrap();
        let v = record_vectors(&rows, 0);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, "a");
        assert_eq!(v[0].1, vec![Some(&[2.0f32][..]), Some(&[1.0f32][..])]);
        assert_eq!(v[1].1, vec![Some(&[3.0f32][..])]);
    }
}
