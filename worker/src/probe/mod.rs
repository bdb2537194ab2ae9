//! Probe stages on a worker: a task whose job spec carries a
//! [`ProbeStage`] is answered with a [`ProbeResult`] for its shard instead
//! of partial counts.
//!
//! - extract ([`extract_stage`]): write the shard's embeddings (and pair
//!   attention) tables;
//! - count / gradient / score: build the probe's rows from the shard —
//!   extracted embeddings ([`embedding`]) or attention recomputed from the
//!   model ([`attention`]) — and return the training rows per class, the
//!   loss, gradient and Hessian at the stage's weights, or the validation
//!   metrics' counts.
//!
//! Everything here is a function of (stage, shard): retries and other
//! workers give the same bytes.

pub mod attention;
pub mod embedding;
pub mod extract_stage;

use std::sync::Arc;

use candle_core::Device;
use headscan_probe::logreg::{Design, Weights, partial};
use headscan_probe::round::weights_digest;
use headscan_probe::tasks::Task;
use headscan_proto::embeddings::{EMBEDDINGS_MANIFEST, EmbeddingManifest, read_embeddings};
use headscan_proto::pb::probe_stage::Kind;
use headscan_proto::pb::{JobSpec, ProbeResult, ProbeStage};
use headscan_proto::record::ProteinRecord;
use headscan_proto::store::Location;

use crate::models::LoadedModel;
use attention::{PairFeatures, PairKind};
use embedding::ShardData;

/// The probe a count, gradient or score stage is about.
struct Probe {
    task: Task,
    kind: ProbeKind,
    layer: i32,
    n_classes: usize,
    dim: usize,
    split: (u64, f64),
}

/// What a probe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Embedding,
    Attention,
    ContactRegression,
}

impl Probe {
    fn of(stage: &ProbeStage) -> Result<Self, String> {
        let task: Task = stage.task.parse()?;
        let kind = match stage.probe_kind.as_str() {
            "embedding" => ProbeKind::Embedding,
            "attention" => ProbeKind::Attention,
            "contact_regression" => ProbeKind::ContactRegression,
            other => return Err(format!("unknown probe kind `{other}`")),
        };
        if kind != ProbeKind::Embedding && task != Task::Contact {
            return Err(format!(
                "probe kind `{}` predicts contacts, not `{}`",
                stage.probe_kind, stage.task
            ));
        }
        if stage.n_classes as usize != task.n_classes() {
            return Err(format!(
                "task {} has {} classes, the stage says {}",
                stage.task,
                task.n_classes(),
                stage.n_classes
            ));
        }
        if !(stage.train_fraction > 0.0 && stage.train_fraction < 1.0) {
            return Err(format!(
                "train fraction {} is not in (0, 1)",
                stage.train_fraction
            ));
        }
        Ok(Self {
            task,
            kind,
            layer: stage.layer,
            n_classes: task.n_classes(),
            dim: stage.dim as usize,
            split: (stage.split_seed, stage.train_fraction),
        })
    }

    fn weights(&self, stage: &ProbeStage) -> Result<Weights, String> {
        let want = (self.n_classes - 1) * (self.dim + 1);
        if stage.weights.len() != want {
            return Err(format!(
                "{} weights for {} classes of {} features (expected {want})",
                stage.weights.len(),
                self.n_classes,
                self.dim
            ));
        }
        Ok(Weights {
            n_classes: self.n_classes,
            dim: self.dim,
            w: stage.weights.clone(),
        })
    }
}

/// The embedding rows of the dataset shard at `shard_path`, found through
/// the stage's embeddings manifest.
async fn load_embeddings(
    stage: &ProbeStage,
    shard_path: &str,
) -> Result<headscan_proto::embeddings::EmbeddingRows, String> {
    let loc =
        Location::parse(&stage.embeddings).map_err(|e| format!("embeddings {}: {e}", stage.embeddings))?;
    let manifest_url = loc.child_url(EMBEDDINGS_MANIFEST);
    let bytes = loc
        .get(EMBEDDINGS_MANIFEST)
        .await
        .map_err(|e| format!("cannot read {manifest_url}: {e}"))?;
    let manifest: EmbeddingManifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("{manifest_url}: {e}"))?;
    let entry = manifest
        .shards
        .iter()
        .find(|s| s.source_shard == shard_path)
        .ok_or_else(|| format!("{manifest_url} has no embeddings of dataset shard {shard_path}"))?;
    let bytes = loc
        .get(&entry.url)
        .await
        .map_err(|e| format!("cannot read {}: {e}", loc.child_url(&entry.url)))?;
    read_embeddings(bytes, &loc.child_url(&entry.url)).map_err(|e| e.to_string())
}

/// Answers one probe-stage task on its shard's `records`; `None` when
/// `abandon` turned true.
pub async fn run_stage(
    spec: &JobSpec,
    stage: &ProbeStage,
    (index, shard_path): (u32, &str),
    records: Vec<ProteinRecord>,
    model: Arc<LoadedModel>,
    device: &Device,
    abandon: impl Fn() -> bool + Send + 'static,
) -> Result<Option<ProbeResult>, String> {
    let kind = Kind::try_from(stage.kind).unwrap_or(Kind::Unspecified);
    let sizes = (spec.max_len as usize, (spec.batch_size as usize).max(1));
    if kind == Kind::Extract {
        return extract_stage::extract_shard(model, records, stage, sizes, (index, shard_path), device)
            .await
            .map(Some);
    }
    if kind == Kind::Unspecified {
        return Err("the probe stage has no kind".into());
    }
    let probe = Probe::of(stage)?;
    let embeddings = match probe.kind {
        ProbeKind::Embedding => Some(load_embeddings(stage, shard_path).await?),
        _ => None,
    };
    let stage = stage.clone();
    let device = device.clone();
    let n = records.len() as u64;
    tokio::task::spawn_blocking(move || {
        let result = compute(
            &probe,
            kind,
            &stage,
            &records,
            embeddings,
            &model,
            (sizes.0, &device),
            &abandon,
        )?;
        Ok(result.map(|mut r| {
            r.records = n;
            r
        }))
    })
    .await
    .map_err(|e| format!("probe stage panicked: {e}"))?
}

/// Rows on one side of the split, then the stage's answer (blocking).
#[allow(clippy::too_many_arguments)]
fn compute(
    probe: &Probe,
    kind: Kind,
    stage: &ProbeStage,
    records: &[ProteinRecord],
    embeddings: Option<headscan_proto::embeddings::EmbeddingRows>,
    model: &LoadedModel,
    run: (usize, &Device),
    abandon: &dyn Fn() -> bool,
) -> Result<Option<ProbeResult>, String> {
    let train = kind != Kind::Score;
    let weights = match kind {
        Kind::Count => None,
        _ => Some(probe.weights(stage)?),
    };
    // The probe's rows on this side of the split, or its validation scores.
    let (design, scored): (Design, Option<ProbeResult>) = match embeddings {
        Some(rows) => {
            let data = ShardData::new(records, probe.task, rows);
            let want = if probe.task == Task::Contact {
                2 * data.dim()
            } else {
                data.dim()
            };
            if want != probe.dim {
                return Err(format!(
                    "the stage has {} features, the embeddings give {want}",
                    probe.dim
                ));
            }
            match (&weights, train) {
                (Some(w), false) => (Design::new(0), Some(data.score(w, probe.layer, probe.split))),
                _ => (data.design(probe.layer, probe.split, true), None),
            }
        }
        None => {
            let pair = match probe.kind {
                ProbeKind::Attention => {
                    let layer = usize::try_from(probe.layer)
                        .ok()
                        .filter(|&l| l < model.model.n_layers())
                        .ok_or_else(|| format!("layer {} does not exist", probe.layer))?;
                    PairKind::Layer(layer)
                }
                _ => PairKind::Regression,
            };
            let features = PairFeatures::new(pair, model);
            if features.dim() != probe.dim {
                return Err(format!(
                    "the stage has {} features, the model gives {}",
                    probe.dim,
                    features.dim()
                ));
            }
            let Some(prepared) = attention::prepare(model, records, probe.split, train, pair, run, abandon)?
            else {
                return Ok(None);
            };
            match (&weights, train) {
                (Some(w), false) => (Design::new(0), Some(features.score(&prepared, w)?)),
                _ => (features.design(&prepared), None),
            }
        }
    };
    if let Some(scored) = scored {
        return Ok(Some(scored));
    }
    let mut out = ProbeResult::default();
    match (kind, weights) {
        (Kind::Count, _) => {
            out.class_counts = vec![0; probe.n_classes];
            for &y in &design.y {
                out.class_counts[y] += 1;
            }
        }
        (_, Some(w)) => {
            if stage.class_weights.len() != probe.n_classes {
                return Err(format!(
                    "{} class weights for {} classes",
                    stage.class_weights.len(),
                    probe.n_classes
                ));
            }
            let p = partial(&design, &w, &stage.class_weights);
            out.weights_digest = weights_digest(&w);
            (out.loss, out.grad, out.hess) = (p.loss, p.grad, p.hess);
        }
        _ => return Err("a gradient stage needs weights".into()),
    }
    Ok(Some(out))
}
