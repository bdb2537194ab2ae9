//! The attention-based contact probes of `headscan probe`:
//! - kind `attention` (Vig et al. 2021, Figure 5): per layer, a logistic
//!   regression on that layer's heads' attention weights α_ij and α_ji;
//! - kind `contact_regression` (ESM, Rao et al. 2020): one L1-regularised
//!   logistic regression over every layer × head map, symmetrised and
//!   APC-corrected.
//!
//! Attention is recomputed from the model shard by shard on every pass
//! (never stored), so memory stays one shard's dense attention; the cost is
//! one forward pass per record per Newton step.

use anyhow::Context;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::probe::contacts::ContactTruth;
use headscan_coordinator::probe::l1::{L1Options, fit_l1};
use headscan_coordinator::probe::logreg::{
    Design, FitError, FitOptions, Partial, Weights, balanced_class_weights, fit, partial,
};
use headscan_coordinator::probe::output::{ProbeConfig, ProbeRow, ProbeWeights};
use headscan_coordinator::probe::tasks::is_train;
use headscan_proto::features::ContactRule;
use headscan_proto::probe_metrics::{
    ContactRange, PrecisionCounts, contact_precision_at, precision_metric_name,
};
use headscan_worker::attention::sequence_attention;
use headscan_worker::attention_pairs::{apc_symmetrised, layer_pair_features, regression_features};
use headscan_worker::models::LoadedModel;

/// What the attention probes need.
pub struct AttentionContext<'a> {
    /// The dataset.
    pub dataset: &'a Dataset,
    /// The model.
    pub model: &'a LoadedModel,
    /// Where it runs.
    pub device: &'a candle_core::Device,
    /// The probe settings.
    pub cfg: &'a ProbeConfig,
}

/// One record's dense residue attention and contact truth.
struct Prepared {
    truth: ContactTruth,
    l: usize,
    values: Vec<f32>,
    apc: Vec<f32>,
}

/// A fitted pair probe.
struct PairFit {
    weights: Weights,
    iterations: usize,
    class_weights: Vec<f64>,
    n_train: u64,
}

/// A pair-feature function: (record, i, j, out).
type Features<'f> = &'f dyn Fn(&Prepared, usize, usize, &mut Vec<f64>);

impl AttentionContext<'_> {
    fn maps(&self) -> usize {
        self.model.model.n_layers() * self.model.model.n_heads()
    }

    /// Records of shard `index` with coordinates on the `train` side of the split.
    fn shard(&self, index: usize, train: bool, with_apc: bool) -> anyhow::Result<Vec<Prepared>> {
        let entry = &self.dataset.manifest.shards[index];
        let handle = tokio::runtime::Handle::current();
        let records = tokio::task::block_in_place(|| handle.block_on(self.dataset.read_shard(entry)))?;
        let mut out = Vec::new();
        for r in &records {
            if is_train(&r.id, self.cfg.seed, self.cfg.train_fraction) != train {
                continue;
            }
            let Some(truth) = ContactTruth::of(r, ContactRule::default()) else {
                continue;
            };
            let dense = sequence_attention(self.model, &r.sequence, self.cfg.max_len, false, self.device)
                .with_context(|| format!("attention of record {}", r.id))?;
            let l = dense.residues;
            let apc = if with_apc {
                apc_symmetrised(&dense.values, self.maps(), l)
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
        Ok(out)
    }

    /// Training pairs of one shard.
    fn design(&self, index: usize, dim: usize, with_apc: bool, features: Features) -> anyhow::Result<Design> {
        let mut d = Design::new(dim);
        let mut f = Vec::with_capacity(dim);
        for p in self.shard(index, true, with_apc)? {
            for i in 0..p.l {
                for j in i + 1..p.l {
                    if let Some(label) = p.truth.label(i, j) {
                        features(&p, i, j, &mut f);
                        d.push(&f, usize::from(label));
                    }
                }
            }
        }
        Ok(d)
    }

    /// Fits one binary probe on pair features; returns it with its class
    /// weights and training pairs (`None` when a class is missing).
    fn fit_pairs(
        &self,
        dim: usize,
        l1: Option<f64>,
        with_apc: bool,
        features: Features,
    ) -> anyhow::Result<Option<PairFit>> {
        let n_shards = self.dataset.manifest.shards.len();
        let mut counts = [0u64; 2];
        for i in 0..n_shards {
            for &y in &self.design(i, dim, with_apc, features)?.y {
                counts[y] += 1;
            }
        }
        if counts.contains(&0) {
            return Ok(None);
        }
        let cw = if self.cfg.balanced {
            balanced_class_weights(&counts)
        } else {
            vec![1.0, 1.0]
        };
        let partials = |w: &Weights| -> Result<Partial, FitError> {
            let mut sum = Partial::zeros(dim + 1);
            for i in 0..n_shards {
                let d = self
                    .design(i, dim, with_apc, features)
                    .map_err(|e| FitError::Shard(format!("{e:#}")))?;
                sum.merge(&partial(&d, w, &cw));
            }
            Ok(sum)
        };
        let fitted = match l1 {
            Some(l1) => fit_l1(
                dim,
                &L1Options {
                    l1,
                    ..L1Options::default()
                },
                partials,
            )?,
            None => fit(
                2,
                dim,
                &FitOptions {
                    l2: self.cfg.l2,
                    ..FitOptions::default()
                },
                partials,
            )?,
        };
        Ok(Some(PairFit {
            weights: fitted.weights,
            iterations: fitted.iterations,
            class_weights: cw,
            n_train: counts[0] + counts[1],
        }))
    }

    /// Precision at L/k (k = 1, 2, 5) per range on the validation records.
    fn score(
        &self,
        w: &Weights,
        with_apc: bool,
        features: Features,
    ) -> anyhow::Result<([[PrecisionCounts; 4]; 3], u64)> {
        let mut acc = [[PrecisionCounts::default(); 4]; 3];
        let mut pairs = 0;
        let mut f = Vec::new();
        for index in 0..self.dataset.manifest.shards.len() {
            for p in self.shard(index, false, with_apc)? {
                let l = p.l;
                let mut scores = vec![0.0; l * l];
                let mut labels = vec![None; l * l];
                for i in 0..l {
                    for j in i + 1..l {
                        if let Some(label) = p.truth.label(i, j) {
                            features(&p, i, j, &mut f);
                            scores[i * l + j] = w.probabilities(&f)[1];
                            labels[i * l + j] = Some(label);
                            pairs += 1;
                        }
                    }
                }
                for (slot, k) in acc.iter_mut().zip([1, 2, 5]) {
                    for (c, range) in slot.iter_mut().zip(ContactRange::ALL) {
                        c.merge(contact_precision_at(&scores, &labels, l, k, range)?);
                    }
                }
            }
        }
        Ok((acc, pairs))
    }
}

fn rows(
    kind: &str,
    layer: i32,
    ks: &[usize],
    acc: &[[PrecisionCounts; 4]; 3],
    n_train: u64,
    n_eval: u64,
    table: &mut Vec<ProbeRow>,
) {
    for (slot, k) in acc.iter().zip([1, 2, 5]) {
        if !ks.contains(&k) {
            continue;
        }
        for (c, range) in slot.iter().zip(ContactRange::ALL) {
            table.push(ProbeRow {
                task: "contact".into(),
                layer,
                kind: kind.into(),
                metric: precision_metric_name(k, range),
                value: c.precision().unwrap_or(f64::NAN),
                n_train,
                n_eval,
            });
        }
    }
}

/// Kind `attention`: one probe per layer in `layers`; precision at L/5 per range.
pub fn attention_probes(
    ctx: &AttentionContext,
    layers: &[usize],
    table: &mut Vec<ProbeRow>,
    weights: &mut Vec<ProbeWeights>,
) -> anyhow::Result<()> {
    let heads = ctx.model.model.n_heads();
    for &layer in layers {
        let features = move |p: &Prepared, i: usize, j: usize, out: &mut Vec<f64>| {
            layer_pair_features(&p.values, layer, heads, p.l, i, j, out)
        };
        let Some(PairFit {
            weights: w,
            iterations,
            class_weights: cw,
            n_train,
        }) = ctx.fit_pairs(2 * heads, None, false, &features)?
        else {
            tracing::warn!(
                layer,
                "attention probe: contacts or non-contacts missing; skipped"
            );
            continue;
        };
        let (acc, n_eval) = ctx.score(&w, false, &features)?;
        rows("attention", layer as i32, &[5], &acc, n_train, n_eval, table);
        weights.push(ProbeWeights {
            task: "contact".into(),
            layer: layer as i32,
            kind: "attention".into(),
            classes: vec!["no".into(), "yes".into()],
            dim: 2 * heads,
            weights: w.w,
            class_weights: cw,
            iterations,
        });
    }
    Ok(())
}

/// Kind `contact_regression`: one L1 probe over every layer × head (reported
/// with `layer` = −1, i.e. all layers); precision at L, L/2, L/5 per range.
pub fn contact_regression(
    ctx: &AttentionContext,
    l1: f64,
    table: &mut Vec<ProbeRow>,
    weights: &mut Vec<ProbeWeights>,
) -> anyhow::Result<()> {
    let maps = ctx.maps();
    let features = move |p: &Prepared, i: usize, j: usize, out: &mut Vec<f64>| {
        regression_features(&p.apc, maps, p.l, i, j, out)
    };
    let Some(PairFit {
        weights: w,
        iterations,
        class_weights: cw,
        n_train,
    }) = ctx.fit_pairs(maps, Some(l1), true, &features)?
    else {
        tracing::warn!("contact regression: contacts or non-contacts missing; skipped");
        return Ok(());
    };
    let (acc, n_eval) = ctx.score(&w, true, &features)?;
    rows("contact_regression", -1, &[1, 2, 5], &acc, n_train, n_eval, table);
    weights.push(ProbeWeights {
        task: "contact".into(),
        layer: -1,
        kind: "contact_regression".into(),
        classes: vec!["no".into(), "yes".into()],
        dim: maps,
        weights: w.w,
        class_weights: cw,
        iterations,
    });
    Ok(())
}
