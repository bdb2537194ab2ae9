//! `manifest.json`: the index of a canonical dataset (DESIGN §2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// File name of the manifest inside a dataset URL.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The published description of a dataset; written last, so its presence
/// means every shard it names is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `headscan.dataset`.
    pub kind: String,
    /// [`crate::record::SCHEMA_VERSION`] of the shards.
    pub schema_version: u32,
    /// Software that wrote the dataset.
    pub created_by: String,
    /// Rows over all shards.
    pub rows: u64,
    /// Residues over all shards.
    pub residues: u64,
    /// `sha256:` of the row digests in order: independent of shard size and of `source`.
    pub content_hash: String,
    /// Which optional columns hold data, i.e. which features the dataset supports.
    pub columns: ColumnCoverage,
    /// The shards, in row order.
    pub shards: Vec<ShardEntry>,
    /// What ingest read, wrote and rejected.
    pub ingest: IngestReport,
}

/// Rows carrying each optional column (non-null).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnCoverage {
    /// Rows with Cα coordinates.
    pub ca_coords: u64,
    /// Rows with DSSP labels.
    pub ss8: u64,
    /// Rows with binding-site annotation.
    pub binding_sites: u64,
    /// Rows with PTM annotation.
    pub ptm_sites: u64,
    /// Rows carrying each other site name.
    pub sites: BTreeMap<String, u64>,
}

/// One shard of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Location relative to the dataset URL (e.g. `shards/part-00000.parquet`).
    pub url: String,
    /// Rows in the shard.
    pub rows: u64,
    /// Residues in the shard.
    pub residues: u64,
    /// `sha256:` of the shard's row digests (content, independent of encoding).
    pub content_hash: String,
    /// `sha256:` of the Parquet file's bytes (integrity of the object).
    pub file_sha256: String,
    /// Size of the Parquet file in bytes.
    pub bytes: u64,
}

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Record id, when one could be read.
    pub record: Option<String>,
    /// File and record position the record came from.
    pub source: String,
    /// Stable kind of problem, e.g. `invalid_letter`.
    pub kind: String,
    /// Human-readable reason.
    pub reason: String,
}

/// The ingest report embedded in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Input format name.
    pub format: String,
    /// Input path(s) as given.
    pub inputs: Vec<String>,
    /// Records read (written + rejected).
    pub records_read: u64,
    /// Records written to shards.
    pub records_written: u64,
    /// Records rejected.
    pub records_rejected: u64,
    /// Rejections counted by kind (always complete).
    pub rejected_by_kind: BTreeMap<String, u64>,
    /// Rejected records with reasons (the first [`MAX_LISTED`] of them).
    pub rejections: Vec<Rejection>,
    /// Non-fatal notes (annotations dropped, …), the first [`MAX_LISTED`].
    pub warnings: Vec<String>,
    /// Number of warnings in all.
    pub warnings_total: u64,
}

/// At most this many rejections and warnings are listed one by one.
pub const MAX_LISTED: usize = 10_000;

impl IngestReport {
    /// Records a rejection.
    pub fn reject(&mut self, rejection: Rejection) {
        self.records_read += 1;
        self.records_rejected += 1;
        *self.rejected_by_kind.entry(rejection.kind.clone()).or_default() += 1;
        if self.rejections.len() < MAX_LISTED {
            self.rejections.push(rejection);
        }
    }

    /// Records a non-fatal note.
    pub fn warn(&mut self, warning: String) {
        self.warnings_total += 1;
        if self.warnings.len() < MAX_LISTED {
            self.warnings.push(warning);
        }
    }

    /// One line for stderr: counts and the rejection kinds.
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "{} records read, {} written, {} rejected",
            self.records_read, self.records_written, self.records_rejected
        );
        if !self.rejected_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .rejected_by_kind
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            line.push_str(&format!(" ({})", kinds.join(", ")));
        }
        if self.warnings_total > 0 {
            line.push_str(&format!(", {} warnings", self.warnings_total));
        }
        line
    }
}
