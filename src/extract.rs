//! `headscan extract`: per-residue embeddings of chosen layers of a model over
//! a canonical dataset, as Parquet shards (`id, position, layer, embedding`)
//! plus `embeddings.json` — ESM's `esm-extract` for headscan datasets.

use std::io::Write;

use anyhow::Context;
use headscan_coordinator::dataset::Dataset;
use headscan_proto::embeddings::{
    EMBEDDINGS_KIND, EMBEDDINGS_MANIFEST, EMBEDDINGS_SCHEMA_VERSION, EmbeddingManifest, EmbeddingShard,
    EmbeddingWriter,
};
use headscan_proto::pair_table::{PairRows, PairWriter};
use headscan_proto::probe_metrics::MIN_CONTACT_SEPARATION;
use headscan_proto::store::Location;
use headscan_worker::attention::sequence_attention;
use headscan_worker::attention_pairs::layer_pair_features;
use headscan_worker::extract::{ExtractSpec, extract_records, hidden_dim, parse_layers};
use sha2::{Digest, Sha256};

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
}

/// Runs `headscan extract`: one embedding shard per dataset shard, the
/// manifest last (its presence means every shard is complete).
pub async fn run(args: ExtractArgs) -> anyhow::Result<()> {
    let dataset = Dataset::open(&args.dataset)
        .await
        .with_context(|| format!("cannot open dataset {}", args.dataset))?;
    let out = Location::parse(&args.out).with_context(|| format!("--out {}", args.out))?;
    if out.exists(EMBEDDINGS_MANIFEST).await? && !args.overwrite {
        anyhow::bail!(
            "{} already holds embeddings; pass --overwrite to replace them",
            out.child_url(EMBEDDINGS_MANIFEST)
        );
    }
    let device = headscan_worker::attention::parse_device(&args.device)?;
    let dir = headscan_worker::fetch::resolve_model(&args.model)
        .await
        .with_context(|| format!("cannot fetch model {}", args.model))?;
    let model_digest = headscan_worker::digest::model_digest(&dir)
        .with_context(|| format!("cannot digest model {}", dir.display()))?;
    let model = headscan_worker::models::load_model(&dir, &device)
        .with_context(|| format!("cannot load model {}", dir.display()))?;
    let spec = ExtractSpec {
        layers: parse_layers(&args.layers, model.model.n_layers())?,
        max_len: args.max_len,
        batch_size: args.batch_size,
    };
    let source = ModelSource {
        label: &args.model,
        digest: &model_digest,
        model: &model,
        device: &device,
    };
    let manifest = write_embeddings(
        &source,
        &dataset,
        &args.dataset,
        &spec,
        &out,
        args.attention_pairs,
    )
    .await?;
    let dim = manifest.dim;
    writeln!(
        std::io::stderr().lock(),
        "extract: {} record(s), {} row(s) of {} values, layers {:?}, {} shard(s) at {}",
        manifest.records,
        manifest.rows,
        dim,
        manifest.layers,
        manifest.shards.len(),
        out.url()
    )?;
    Ok(())
}

/// A loaded model and how to name it in manifests.
pub struct ModelSource<'a> {
    /// The model as the user gave it.
    pub label: &'a str,
    /// Its digest.
    pub digest: &'a str,
    /// The network and tokenizer.
    pub model: &'a headscan_worker::models::LoadedModel,
    /// Where it runs.
    pub device: &'a candle_core::Device,
}

/// Extracts `spec`'s layers of every record of `dataset` into `out`
/// (`shards/part-NNNNN.parquet`, one per dataset shard, then
/// `embeddings.json`) and returns the manifest.
pub async fn write_embeddings(
    source: &ModelSource<'_>,
    dataset: &Dataset,
    dataset_url: &str,
    spec: &ExtractSpec,
    out: &Location,
    attention_pairs: bool,
) -> anyhow::Result<EmbeddingManifest> {
    let (model, device) = (source.model, source.device);
    let dim = hidden_dim(model, device)?;
    let mut shards = Vec::with_capacity(dataset.manifest.shards.len());
    let mut pair_shards = Vec::new();
    for (index, entry) in dataset.manifest.shards.iter().enumerate() {
        let records = dataset.read_shard(entry).await?;
        let file = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
        let sink = std::io::BufWriter::new(file.reopen()?);
        let mut writer = EmbeddingWriter::new(sink, dim)?;
        extract_records(model, &records, spec, device, |rows| -> anyhow::Result<()> {
            writer.write(&rows)?;
            Ok(())
        })
        .with_context(|| format!("extracting {}", dataset.location().child_url(&entry.url)))?;
        let rows = writer.finish()?;
        let bytes = bytes_of(file.path())?;
        let rel = format!("shards/part-{index:05}.parquet");
        let size = bytes.len() as u64;
        let sha = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        out.put(&rel, bytes.into())
            .await
            .with_context(|| format!("cannot write {}", out.child_url(&rel)))?;
        tracing::info!(shard = %rel, records = records.len(), rows, "embeddings written");
        shards.push(EmbeddingShard {
            url: rel,
            source_shard: entry.url.clone(),
            records: records.len() as u64,
            rows,
            file_sha256: sha,
            bytes: size,
        });
        if attention_pairs {
            let rel = format!("pairs/part-{index:05}.parquet");
            pair_shards.push(write_pairs(source, &records, spec, out, &rel, &entry.url).await?);
        }
    }
    let manifest = EmbeddingManifest {
        kind: EMBEDDINGS_KIND.into(),
        schema_version: EMBEDDINGS_SCHEMA_VERSION,
        created_by: format!("headscan {}", env!("CARGO_PKG_VERSION")),
        model: source.label.to_string(),
        model_digest: source.digest.to_string(),
        dataset: dataset_url.to_string(),
        dataset_content_hash: dataset.manifest.content_hash.clone(),
        layers: spec.layers.iter().map(|&l| l as u32).collect(),
        dim,
        max_len: spec.max_len,
        records: shards.iter().map(|s| s.records).sum(),
        rows: shards.iter().map(|s| s.rows).sum(),
        shards,
        heads: model.model.n_heads(),
        pair_shards,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    out.put(EMBEDDINGS_MANIFEST, json.into())
        .await
        .with_context(|| format!("cannot write {}", out.child_url(EMBEDDINGS_MANIFEST)))?;
    Ok(manifest)
}

/// Writes one shard's per-pair attention rows (records in order, then layer,
/// then i, then j) to `rel`.
async fn write_pairs(
    source: &ModelSource<'_>,
    records: &[headscan_proto::record::ProteinRecord],
    spec: &ExtractSpec,
    out: &Location,
    rel: &str,
    source_shard: &str,
) -> anyhow::Result<EmbeddingShard> {
    let heads = source.model.model.n_heads();
    let file = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
    let mut writer = PairWriter::new(std::io::BufWriter::new(file.reopen()?), 2 * heads)?;
    let mut f = Vec::new();
    for r in records {
        let dense = sequence_attention(source.model, &r.sequence, spec.max_len, false, source.device)
            .with_context(|| format!("attention of record {}", r.id))?;
        let l = dense.residues;
        let mut rows = PairRows::new(2 * heads);
        let mut values = vec![0f32; 2 * heads];
        for &layer in &spec.layers {
            for i in 0..l {
                for j in i + MIN_CONTACT_SEPARATION..l {
                    layer_pair_features(&dense.values, layer, heads, l, i, j, &mut f);
                    for (v, x) in values.iter_mut().zip(&f) {
                        *v = *x as f32;
                    }
                    rows.push(&r.id, i as i32, j as i32, layer as i32, &values)?;
                }
            }
        }
        writer.write(&rows)?;
    }
    let rows = writer.finish()?;
    let bytes = bytes_of(file.path())?;
    let size = bytes.len() as u64;
    let sha = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    out.put(rel, bytes.into())
        .await
        .with_context(|| format!("cannot write {}", out.child_url(rel)))?;
    Ok(EmbeddingShard {
        url: rel.to_string(),
        source_shard: source_shard.to_string(),
        records: records.len() as u64,
        rows,
        file_sha256: sha,
        bytes: size,
    })
}

fn bytes_of(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read back {}", path.display()))
}
