//! Attention probes for contacts, computed on the worker from the model:
//! - kind `attention` (Vig et al. 2021, Figure 5): one layer's heads'
//!   attention weights α_ij and α_ji as pair features;
//! - kind `contact_regression` (ESM, Rao et al. 2020): every layer × head
//!   map, symmetrised and APC-corrected.
//!
//! Attention is recomputed for the shard's records on every stage (never
//! stored), so memory stays one shard's dense attention.

use candle_core::Device;
use headscan_probe::contacts::ContactTruth;
use headscan_probe::logreg::{Design, Weights};
use headscan_probe::tasks::is_train;
use headscan_proto::features::ContactRule;
use headscan_proto::pb::ProbeResult;
use headscan_proto::probe_metrics::{ContactRange, PrecisionCounts, contact_precision_at};
use headscan_proto::record::ProteinRecord;

use super::embedding::precision_list;
use crate::attention::sequence_attention;
use crate::attention_pairs::{apc_symmetrised, layer_pair_features, regression_features};
use crate::models::LoadedModel;

/// Which pair features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairKind {
    /// One layer's heads, both directions (2 × heads features).
    Layer(usize),
    /// Every layer × head, symmetrised and APC-corrected (layers × heads features).
    Regression,
}

/// One record's dense residue attention and contact truth.
pub struct Prepared {
    truth: ContactTruth,
    l: usize,
    values: Vec<f32>,
    apc: Vec<f32>,
}

/// Attention of the records of `records` on the `train` side of the split
/// that have coordinates; `None` when `abandon` turned true.
pub fn prepare(
    model: &LoadedModel,
    records: &[ProteinRecord],
    (seed, fraction): (u64, f64),
    train: bool,
    kind: PairKind,
    (max_len, device): (usize, &Device),
    abandon: &dyn Fn() -> bool,
) -> Result<Option<Vec<Prepared>>, String> {
    let maps = model.model.n_layers() * model.model.n_heads();
    let mut out = Vec::new();
    for r in records {
        if abandon() {
            return Ok(None);
        }
        if is_train(&r.id, seed, fraction) != train {
            continue;
        }
        let Some(truth) = ContactTruth::of(r, ContactRule::default()) else {
            continue;
        };
        let dense = sequence_attention(model, &r.sequence, max_len, false, device)
            .map_err(|e| format!("attention of record {}: {e}", r.id))?;
        let l = dense.residues;
        let apc = if kind == PairKind::Regression {
            apc_symmetrised(&dense.values, maps, l)
        } else {
            Vec::new()
        };
        out.push(Prepared {
            truth,
            l,
            values: dense.values,
            apc,
        });
    }
    Ok(Some(out))
}

/// Pair features of one kind for one model shape.
pub struct PairFeatures {
    kind: PairKind,
    heads: usize,
    maps: usize,
}

impl PairFeatures {
    /// Features of `kind` for `model`.
    pub fn new(kind: PairKind, model: &LoadedModel) -> Self {
        let heads = model.model.n_heads();
        Self {
            kind,
            heads,
            maps: model.model.n_layers() * heads,
        }
    }

    /// Features per pair.
    pub fn dim(&self) -> usize {
        match self.kind {
            PairKind::Layer(_) => 2 * self.heads,
            PairKind::Regression => self.maps,
        }
    }

    fn of(&self, p: &Prepared, i: usize, j: usize, out: &mut Vec<f64>) {
        match self.kind {
            PairKind::Layer(layer) => layer_pair_features(&p.values, layer, self.heads, p.l, i, j, out),
            PairKind::Regression => regression_features(&p.apc, self.maps, p.l, i, j, out),
        }
    }

    /// Every labelled pair of the prepared records.
    pub fn design(&self, prepared: &[Prepared]) -> Design {
        let mut d = Design::new(self.dim());
        let mut f = Vec::with_capacity(self.dim());
        for p in prepared {
            for i in 0..p.l {
                for j in i + 1..p.l {
                    if let Some(label) = p.truth.label(i, j) {
                        self.of(p, i, j, &mut f);
                        d.push(&f, usize::from(label));
                    }
                }
            }
        }
        d
    }

    /// Precision at L, L/2 and L/5 per range of the probe `w`.
    pub fn score(&self, prepared: &[Prepared], w: &Weights) -> Result<ProbeResult, String> {
        let mut acc = [[PrecisionCounts::default(); 4]; 3];
        let mut out = ProbeResult::default();
        let mut f = Vec::new();
        for p in prepared {
            let l = p.l;
            let mut scores = vec![0.0; l * l];
            let mut labels = vec![None; l * l];
            for i in 0..l {
                for j in i + 1..l {
                    if let Some(label) = p.truth.label(i, j) {
                        self.of(p, i, j, &mut f);
                        scores[i * l + j] = w.probabilities(&f)[1];
                        labels[i * l + j] = Some(label);
                        out.n_eval += 1;
                    }
                }
            }
            for (slot, k) in acc.iter_mut().zip([1, 2, 5]) {
                for (c, range) in slot.iter_mut().zip(ContactRange::ALL) {
                    c.merge(contact_precision_at(&scores, &labels, l, k, range).map_err(|e| e.to_string())?);
                }
            }
        }
        for (slot, k) in acc.iter().zip([1, 2, 5]) {
            out.precision.extend(precision_list(k, slot));
        }
        Ok(out)
    }
}
