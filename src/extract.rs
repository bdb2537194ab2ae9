//! `headscan extract`: per-residue embeddings of chosen layers of a model over
//! a canonical dataset, as Parquet shards (`id, position, layer, embedding`)
//! plus `embeddings.json` — ESM's `esm-extract` for headscan datasets, at
//! cluster scale: the workers write one shard each (an extract stage, see
//! [`crate::probe::stages`]), in process or on a running cluster.

use std::io::Write;

use anyhow::Context;
use headscan_coordinator::dataset::Dataset;
use headscan_proto::embeddings::{
    EMBEDDINGS_KIND, EMBEDDINGS_MANIFEST, EMBEDDINGS_SCHEMA_VERSION, EmbeddingManifest, EmbeddingShard,
};
use headscan_proto::pb::probe_stage::Kind;
use headscan_proto::pb::{ExtractedShard, JobSpec, ProbeStage};
use headscan_proto::store::Location;

use crate::cluster::{Cluster, ClusterArgs};
use crate::probe::stages::Stages;
use crate::submit::absolute_url;

/// Flags of `headscan extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// Model directory or object-store URL (Hugging Face layout).
    #[arg(long)]
    model: String,
    /// Canonical dataset URL (made by `headscan ingest`).
    #[arg(long)]
    dataset: String,
    /// Layers to write: `all` or 0-based numbers and ranges, e.g. `0,5,10-11`.
    #[arg(long, default_value = "all")]
    layers: String,
    /// Output URL (a path, file://, s3://, gs://, az://).
    #[arg(long)]
    out: String,
    /// Maximum tokens per sequence, special tokens included (longer sequences are truncated).
    #[arg(long, default_value_t = 512)]
    max_len: usize,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Replace embeddings already published at --out.
    #[arg(long)]
    overwrite: bool,
    /// Also write per-pair attention features (pairs i < j, |i − j| ≥ 6; α_ij then α_ji of every head of each layer) to pairs/.
    #[arg(long)]
    attention_pairs: bool,
    /// Where the work runs.
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Runs `headscan extract`: one extract stage through the coordinator (one
/// embedding shard per dataset shard, written by the workers), then the
/// manifest (its presence means every shard is complete).
pub async fn run(args: ExtractArgs) -> anyhow::Result<()> {
    let dataset_url = absolute_url(&args.dataset);
    let dataset = Dataset::open(&dataset_url)
        .await
        .with_context(|| format!("cannot open dataset {}", args.dataset))?;
    let out = Location::parse(&absolute_url(&args.out)).with_context(|| format!("--out {}", args.out))?;
    if out.exists(EMBEDDINGS_MANIFEST).await? && !args.overwrite {
        anyhow::bail!(
            "{} already holds embeddings; pass --overwrite to replace them",
            out.child_url(EMBEDDINGS_MANIFEST)
        );
    }
    headscan_worker::attention::parse_device(&args.device)?;
    let cluster = Cluster::connect(&args.cluster, &args.device).await?;
    let stages = Stages::new(
        cluster.jobs.clone(),
        &cluster.url,
        base_spec(
            &absolute_url(&args.model),
            &dataset_url,
            args.max_len,
            args.batch_size,
            &cluster,
        ),
        out.clone(),
    );
    let what = Extraction {
        model_label: &args.model,
        dataset_url: &dataset_url,
        dataset: &dataset,
        layers: &args.layers,
        max_len: args.max_len,
        attention_pairs: args.attention_pairs,
    };
    let extracted = extract_embeddings(&stages, &what, &out).await;
    if extracted.is_ok() {
        stages.clean().await?;
    }
    cluster.shutdown().await;
    let (manifest, _) = extracted?;
    writeln!(
        std::io::stderr().lock(),
        "extract: {} record(s), {} row(s) of {} values, layers {:?}, {} shard(s) at {}",
        manifest.records,
        manifest.rows,
        manifest.dim,
        manifest.layers,
        manifest.shards.len(),
        out.url()
    )?;
    Ok(())
}

/// The job spec every stage of one command shares.
pub fn base_spec(
    model: &str,
    dataset: &str,
    max_len: usize,
    batch_size: usize,
    cluster: &Cluster,
) -> JobSpec {
    JobSpec {
        model: model.to_string(),
        dataset: dataset.to_string(),
        max_len: max_len as u32,
        batch_size: batch_size.max(1) as u32,
        max_attempts: cluster.max_attempts(),
        ..JobSpec::default()
    }
}

/// What to extract, and how to describe it in the manifest.
pub struct Extraction<'a> {
    /// The model as the user gave it.
    pub model_label: &'a str,
    /// The dataset URL (absolute).
    pub dataset_url: &'a str,
    /// The dataset.
    pub dataset: &'a Dataset,
    /// `all` or 0-based layers and ranges.
    pub layers: &'a str,
    /// Maximum tokens per sequence.
    pub max_len: usize,
    /// Also write per-pair attention features.
    pub attention_pairs: bool,
}

fn shard_entry(s: ExtractedShard) -> EmbeddingShard {
    EmbeddingShard {
        url: s.url,
        source_shard: s.source_shard,
        records: s.records,
        rows: s.rows,
        file_sha256: s.file_sha256,
        bytes: s.bytes,
    }
}

/// Runs the extract stage into `out` (`shards/part-NNNNN.parquet`, one per
/// dataset shard, `pairs/…` when asked, then `embeddings.json`); returns the
/// manifest and the model's layer count.
pub async fn extract_embeddings(
    stages: &Stages,
    what: &Extraction<'_>,
    out: &Location,
) -> anyhow::Result<(EmbeddingManifest, u32)> {
    let stage = ProbeStage {
        kind: Kind::Extract as i32,
        embeddings: out.url().to_string(),
        layers: what.layers.to_string(),
        attention_pairs: what.attention_pairs,
        ..ProbeStage::default()
    };
    let (r, status) = stages.run("extract", stage).await?;
    let manifest = EmbeddingManifest {
        kind: EMBEDDINGS_KIND.into(),
        schema_version: EMBEDDINGS_SCHEMA_VERSION,
        created_by: format!("headscan {}", env!("CARGO_PKG_VERSION")),
        model: what.model_label.to_string(),
        model_digest: status.model_digest.clone(),
        dataset: what.dataset_url.to_string(),
        dataset_content_hash: what.dataset.manifest.content_hash.clone(),
        layers: r.layers.clone(),
        dim: r.dim as usize,
        max_len: what.max_len,
        records: r.records,
        rows: r.rows,
        shards: r.embedding_shards.into_iter().map(shard_entry).collect(),
        heads: r.heads as usize,
        pair_shards: r.pair_shards.into_iter().map(shard_entry).collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    out.put(EMBEDDINGS_MANIFEST, json.into())
        .await
        .with_context(|| format!("cannot write {}", out.child_url(EMBEDDINGS_MANIFEST)))?;
    Ok((manifest, r.n_layers))
}
