//! Shard writing: Parquet (zstd) files under a staging prefix, moved into
//! `shards/` and indexed by `manifest.json` only when the ingest succeeds.

use bytes::Bytes;
use headscan_proto::manifest::{ColumnCoverage, IngestReport, MANIFEST_FILE, Manifest, ShardEntry};
use headscan_proto::record::{ProteinRecord, SCHEMA_VERSION, to_batch};
use headscan_proto::store::Location;
use parquet::basic::ZstdLevel;
use sha2::{Digest, Sha256};

use super::IngestError;
use crate::outputs::parquet_bytes;

/// Collects records into shards and writes each as soon as it is full.
pub struct ShardWriter {
    out: Location,
    staging: String,
    handle: tokio::runtime::Handle,
    pending: Vec<ProteinRecord>,
    shards: Vec<ShardEntry>,
    dataset_hash: Sha256,
    coverage: ColumnCoverage,
}

/// `sha256:<hex>` of a finished hasher.
pub fn hash_string(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Encodes records as one Parquet file (zstd level 3, canonical schema).
pub fn encode_parquet(records: &[ProteinRecord]) -> Result<Vec<u8>, IngestError> {
    let batch = to_batch(records).map_err(|e| IngestError::Encode(e.to_string()))?;
    let level = ZstdLevel::try_new(3).map_err(|e| IngestError::Encode(e.to_string()))?;
    parquet_bytes(&batch, level).map_err(|e| IngestError::Encode(e.to_string()))
}

impl ShardWriter {
    /// A writer staging under `out/<staging>/`.
    pub fn new(out: Location, staging: String, handle: tokio::runtime::Handle) -> Self {
        Self {
            out,
            staging,
            handle,
            pending: Vec::new(),
            shards: Vec::new(),
            dataset_hash: Sha256::new(),
            coverage: ColumnCoverage::default(),
        }
    }

    /// Adds a validated record; writes a shard when `shard_rows` are pending.
    pub fn push(&mut self, record: ProteinRecord, shard_rows: usize) -> Result<(), IngestError> {
        self.pending.push(record);
        if self.pending.len() >= shard_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending records as one shard (if any).
    pub fn flush(&mut self) -> Result<(), IngestError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        let mut shard_hash = Sha256::new();
        let mut residues = 0u64;
        for r in &records {
            let d = r.content_digest();
            shard_hash.update(d);
            self.dataset_hash.update(d);
            residues += r.len() as u64;
            let c = &mut self.coverage;
            c.ca_coords += r.ca_coords.is_some() as u64;
            c.ss8 += r.ss8.is_some() as u64;
            c.binding_sites += r.binding_sites.is_some() as u64;
            c.ptm_sites += r.ptm_sites.is_some() as u64;
            for s in r.sites.iter().flatten() {
                *c.sites.entry(s.name.clone()).or_default() += 1;
            }
        }
        let bytes = encode_parquet(&records)?;
        let index = self.shards.len();
        let name = format!("part-{index:05}.parquet");
        let entry = ShardEntry {
            url: format!("shards/{name}"),
            rows: records.len() as u64,
            residues,
            content_hash: hash_string(shard_hash),
            file_sha256: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
            bytes: bytes.len() as u64,
        };
        let staged = format!("{}/{name}", self.staging);
        self.handle.block_on(self.out.put(&staged, Bytes::from(bytes)))?;
        tracing::debug!(shard = index, rows = entry.rows, "shard staged");
        self.shards.push(entry);
        Ok(())
    }

    /// Moves the staged shards into place and writes the manifest last.
    pub async fn publish(self, report: IngestReport) -> Result<Manifest, IngestError> {
        // Shards of an earlier dataset at this URL that this one does not overwrite.
        self.out.delete_prefix("shards").await?;
        for (i, shard) in self.shards.iter().enumerate() {
            let staged = format!("{}/part-{i:05}.parquet", self.staging);
            self.out.rename(&staged, &shard.url).await?;
        }
        self.out.delete_prefix(&self.staging).await?;
        let manifest = Manifest {
            kind: "headscan.dataset".into(),
            schema_version: SCHEMA_VERSION,
            created_by: format!("headscan {}", env!("CARGO_PKG_VERSION")),
            rows: self.shards.iter().map(|s| s.rows).sum(),
            residues: self.shards.iter().map(|s| s.residues).sum(),
            content_hash: hash_string(self.dataset_hash),
            columns: self.coverage,
            shards: self.shards,
            ingest: report,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| IngestError::Encode(e.to_string()))?;
        self.out.put(MANIFEST_FILE, Bytes::from(json)).await?;
        // The staging root is empty now; remove it on local disk.
        let _ = self.out.delete_prefix("_staging").await;
        Ok(manifest)
    }
}
