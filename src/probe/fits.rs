//! One probe fitted through the coordinator: a count stage (class weights),
//! one gradient stage per Newton evaluation — the coordinator sums the
//! shards' gradients and Hessians in shard order, this side solves the step —
//! and a score stage for the validation metrics. The same data give the same
//! weights whatever the worker count.

use std::sync::Arc;

use anyhow::bail;
use headscan_coordinator::probe::l1::{L1Options, fit_l1};
use headscan_coordinator::probe::logreg::{
    FitError, FitOptions, Partial, Weights, balanced_class_weights, fit,
};
use headscan_coordinator::probe::output::{ProbeConfig, ProbeRow, ProbeWeights};
use headscan_coordinator::probe::tasks::Task;
use headscan_proto::pb::probe_stage::Kind;
use headscan_proto::pb::{ProbeResult, ProbeStage};
use headscan_proto::probe_metrics::{
    ClassCounts, ContactRange, PrecisionCounts, f1_metric_name, precision_metric_name,
};

use super::stages::Stages;

/// One probe to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSpec {
    /// What it predicts.
    pub task: Task,
    /// `embedding`, `attention` or `contact_regression`.
    pub kind: &'static str,
    /// The layer (−1: every layer, contact regression).
    pub layer: i32,
    /// Features per row.
    pub dim: usize,
}

impl FitSpec {
    /// Name of its stages' folder.
    fn name(&self) -> String {
        let layer = if self.layer < 0 {
            "all".to_string()
        } else {
            self.layer.to_string()
        };
        format!("{}-{}-{layer}", self.task.name(), self.kind)
    }

    /// The values of precision at L/k reported for it.
    fn reported_k(&self) -> &'static [u32] {
        match (self.task, self.kind) {
            (Task::Contact, "contact_regression") => &[1, 2, 5],
            (Task::Contact, _) => &[5],
            _ => &[20],
        }
    }
}

/// A fitted probe's table rows and weights.
pub type Fitted = (Vec<ProbeRow>, ProbeWeights);

/// Fits `spec` over the embeddings at `embeddings`; `None` when the
/// training rows lack a class.
pub async fn run_fit(
    stages: Arc<Stages>,
    cfg: Arc<ProbeConfig>,
    embeddings: String,
    spec: FitSpec,
) -> anyhow::Result<Option<Fitted>> {
    let name = spec.name();
    let n_classes = spec.task.n_classes();
    let base = ProbeStage {
        embeddings,
        split_seed: cfg.seed,
        train_fraction: cfg.train_fraction,
        task: spec.task.name().into(),
        probe_kind: spec.kind.into(),
        layer: spec.layer,
        n_classes: n_classes as u32,
        dim: spec.dim as u32,
        ..ProbeStage::default()
    };
    let count = ProbeStage {
        kind: Kind::Count as i32,
        ..base.clone()
    };
    let counts = stages.run(&format!("{name}/count"), count).await?.0.class_counts;
    if counts.len() != n_classes {
        bail!("{name}: {} class counts for {n_classes} classes", counts.len());
    }
    if counts.iter().filter(|&&c| c > 0).count() < 2 {
        tracing::warn!(probe = %name, ?counts, "too few labelled classes to train; skipped");
        return Ok(None);
    }
    let class_weights = if cfg.balanced {
        balanced_class_weights(&counts)
    } else {
        vec![1.0; n_classes]
    };
    let handle = tokio::runtime::Handle::current();
    let (st, b, cw, c, fit_name, s) = (
        stages.clone(),
        base.clone(),
        class_weights.clone(),
        cfg.clone(),
        name.clone(),
        spec.clone(),
    );
    let fitted = tokio::task::spawn_blocking(move || {
        let mut evaluation = 0u32;
        let eval = |w: &Weights| -> Result<Partial, FitError> {
            let stage = ProbeStage {
                kind: Kind::Gradient as i32,
                class_weights: cw.clone(),
                weights: w.w.clone(),
                iteration: evaluation,
                ..b.clone()
            };
            let stage_name = format!("{fit_name}/gradient-{evaluation:03}");
            evaluation += 1;
            // The coordinator's fold already refused any shard computed at other weights.
            let (r, _) = handle
                .block_on(st.run(&stage_name, stage))
                .map_err(|e| FitError::Shard(format!("{e:#}")))?;
            Ok(Partial {
                loss: r.loss,
                grad: r.grad,
                hess: r.hess,
            })
        };
        if s.kind == "contact_regression" {
            fit_l1(
                s.dim,
                &L1Options {
                    l1: c.l1,
                    ..L1Options::default()
                },
                eval,
            )
        } else {
            fit(
                n_classes,
                s.dim,
                &FitOptions {
                    l2: c.l2,
                    ..FitOptions::default()
                },
                eval,
            )
        }
    })
    .await??;
    let score = ProbeStage {
        kind: Kind::Score as i32,
        class_weights: class_weights.clone(),
        weights: fitted.weights.w.clone(),
        ..base
    };
    let (scores, _) = stages.run(&format!("{name}/score"), score).await?;
    tracing::info!(probe = %name, iterations = fitted.iterations, "probe fitted");
    let rows = table_rows(&spec, &scores, counts.iter().sum())?;
    let weights = ProbeWeights {
        task: spec.task.name().into(),
        layer: spec.layer,
        kind: spec.kind.into(),
        classes: spec.task.class_names().iter().map(|s| s.to_string()).collect(),
        dim: spec.dim,
        weights: fitted.weights.w,
        class_weights,
        iterations: fitted.iterations,
    };
    Ok(Some((rows, weights)))
}

/// The `probes.parquet` rows of a probe from its folded validation counts.
fn table_rows(spec: &FitSpec, scores: &ProbeResult, n_train: u64) -> anyhow::Result<Vec<ProbeRow>> {
    let row = |metric: String, value: f64| ProbeRow {
        task: spec.task.name().into(),
        layer: spec.layer,
        kind: spec.kind.into(),
        metric,
        value,
        n_train,
        n_eval: scores.n_eval,
    };
    let mut rows = Vec::new();
    if spec.task == Task::Ss4 {
        if scores.n_eval == 0 {
            rows.push(row("f1_macro".into(), f64::NAN));
            return Ok(rows);
        }
        let c = ClassCounts {
            tp: scores.true_pos.clone(),
            fp: scores.false_pos.clone(),
            fn_: scores.false_neg.clone(),
        };
        if c.tp.len() != spec.task.n_classes() || c.fp.len() != c.tp.len() || c.fn_.len() != c.tp.len() {
            bail!("ss4 scores have {} classes", c.tp.len());
        }
        rows.push(row("f1_macro".into(), c.f1_macro()));
        for (k, name) in spec.task.class_names().iter().enumerate() {
            rows.push(row(f1_metric_name(name), c.f1(k)));
        }
        return Ok(rows);
    }
    let wanted = spec.reported_k();
    for p in &scores.precision {
        let Some(range) = ContactRange::from_name(&p.range) else {
            bail!("unknown contact range `{}` in the scores", p.range);
        };
        if !wanted.contains(&p.k) {
            continue;
        }
        let c = PrecisionCounts {
            correct: p.correct,
            selected: p.selected,
        };
        rows.push(row(
            precision_metric_name(p.k as usize, range),
            c.precision().unwrap_or(f64::NAN),
        ));
    }
    Ok(rows)
}
