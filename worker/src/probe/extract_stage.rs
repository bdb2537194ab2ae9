//! The extract stage of a probe job (and of `headscan extract`): one
//! dataset shard's per-residue embeddings as `shards/part-NNNNN.parquet`
//! and, when asked, its per-pair attention features as
//! `pairs/part-NNNNN.parquet`, written to the stage's embeddings location.
//! Tables are built in a temporary file, so memory stays one batch.

use candle_core::Device;
use headscan_proto::embeddings::EmbeddingWriter;
use headscan_proto::pair_table::{PairRows, PairWriter};
use headscan_proto::pb::{ExtractedShard, ProbeResult, ProbeStage};
use headscan_proto::probe_metrics::MIN_CONTACT_SEPARATION;
use headscan_proto::record::ProteinRecord;
use headscan_proto::store::Location;
use sha2::{Digest, Sha256};

use crate::attention::sequence_attention;
use crate::attention_pairs::layer_pair_features;
use crate::extract::{ExtractError, ExtractSpec, extract_records, hidden_dim, parse_layers};
use crate::models::LoadedModel;

/// A table built in a temporary file, ready to upload.
struct Table {
    bytes: Vec<u8>,
    rows: u64,
}

fn temp() -> Result<(tempfile::NamedTempFile, std::io::BufWriter<std::fs::File>), String> {
    let file = tempfile::NamedTempFile::new().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let sink = std::io::BufWriter::new(file.reopen().map_err(|e| e.to_string())?);
    Ok((file, sink))
}

fn read_back(file: &tempfile::NamedTempFile) -> Result<Vec<u8>, String> {
    std::fs::read(file.path()).map_err(|e| format!("cannot read back {}: {e}", file.path().display()))
}

/// The shard's embedding table (blocking).
fn embedding_table(
    model: &LoadedModel,
    records: &[ProteinRecord],
    spec: &ExtractSpec,
    dim: usize,
    device: &Device,
) -> Result<Table, String> {
    let (file, sink) = temp()?;
    let mut writer = EmbeddingWriter::new(sink, dim).map_err(|e| e.to_string())?;
    extract_records(model, records, spec, device, |rows| -> Result<(), ExtractError> {
        writer.write(&rows)?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let rows = writer.finish().map_err(|e| e.to_string())?;
    Ok(Table {
        bytes: read_back(&file)?,
        rows,
    })
}

/// The shard's per-pair attention rows (records in order, then layer, then
/// i, then j; pairs i < j with |i − j| ≥ 6; α_ij then α_ji of every head).
fn pair_table(
    model: &LoadedModel,
    records: &[ProteinRecord],
    spec: &ExtractSpec,
    device: &Device,
) -> Result<Table, String> {
    let heads = model.model.n_heads();
    let (file, sink) = temp()?;
    let mut writer = PairWriter::new(sink, 2 * heads).map_err(|e| e.to_string())?;
    let mut f = Vec::new();
    for r in records {
        let dense = sequence_attention(model, &r.sequence, spec.max_len, false, device)
            .map_err(|e| format!("attention of record {}: {e}", r.id))?;
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
                    rows.push(&r.id, i as i32, j as i32, layer as i32, &values)
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        writer.write(&rows).map_err(|e| e.to_string())?;
    }
    let rows = writer.finish().map_err(|e| e.to_string())?;
    Ok(Table {
        bytes: read_back(&file)?,
        rows,
    })
}

async fn upload(
    out: &Location,
    rel: String,
    table: Table,
    source: &str,
    records: u64,
) -> Result<ExtractedShard, String> {
    let size = table.bytes.len() as u64;
    let sha = format!("sha256:{}", hex::encode(Sha256::digest(&table.bytes)));
    out.put(&rel, table.bytes.into())
        .await
        .map_err(|e| format!("cannot write {}: {e}", out.child_url(&rel)))?;
    Ok(ExtractedShard {
        url: rel,
        source_shard: source.to_string(),
        records,
        rows: table.rows,
        file_sha256: sha,
        bytes: size,
    })
}

/// Extracts shard `index` (`source`: its path in the dataset) into the
/// stage's embeddings location and describes what was written.
pub async fn extract_shard(
    model: std::sync::Arc<LoadedModel>,
    records: Vec<ProteinRecord>,
    stage: &ProbeStage,
    (max_len, batch_size): (usize, usize),
    (index, source): (u32, &str),
    device: &Device,
) -> Result<ProbeResult, String> {
    let out =
        Location::parse(&stage.embeddings).map_err(|e| format!("embeddings {}: {e}", stage.embeddings))?;
    let n_layers = model.model.n_layers();
    let spec = ExtractSpec {
        layers: parse_layers(&stage.layers, n_layers).map_err(|e| e.to_string())?,
        max_len,
        batch_size,
    };
    let pairs = stage.attention_pairs;
    let (m, d, s) = (model.clone(), device.clone(), spec.clone());
    let (dim, embeddings, pair_rows, records) = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let dim = hidden_dim(&m, &d).map_err(|e| e.to_string())?;
        let table = embedding_table(&m, &records, &s, dim, &d)?;
        let pair_rows = if pairs {
            Some(pair_table(&m, &records, &s, &d)?)
        } else {
            None
        };
        Ok((dim, table, pair_rows, records))
    })
    .await
    .map_err(|e| format!("extraction panicked: {e}"))??;
    let n = records.len() as u64;
    let rows = embeddings.rows;
    let mut result = ProbeResult {
        records: n,
        layers: spec.layers.iter().map(|&l| l as u32).collect(),
        dim: dim as u32,
        heads: model.model.n_heads() as u32,
        n_layers: n_layers as u32,
        rows,
        ..ProbeResult::default()
    };
    let shard = upload(
        &out,
        format!("shards/part-{index:05}.parquet"),
        embeddings,
        source,
        n,
    )
    .await?;
    tracing::info!(shard = %shard.url, records = n, rows, "embeddings written");
    result.embedding_shards.push(shard);
    if let Some(t) = pair_rows {
        result
            .pair_shards
            .push(upload(&out, format!("pairs/part-{index:05}.parquet"), t, source, n).await?);
    }
    Ok(result)
}
