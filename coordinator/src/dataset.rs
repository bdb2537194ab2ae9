//! Reading a published dataset: its manifest, then its shards in order.

use bytes::Bytes;
use headscan_proto::manifest::{MANIFEST_FILE, Manifest, ShardEntry};
use headscan_proto::record::{ProteinRecord, RecordError};
use headscan_proto::store::{Location, StoreError};

/// Errors reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No manifest at the URL.
    #[error("{0} holds no dataset (no manifest.json); create one with `headscan ingest`")]
    NoManifest(String),
    /// The manifest cannot be parsed.
    #[error("{url}: invalid manifest: {reason}")]
    BadManifest {
        /// Manifest URL.
        url: String,
        /// Parse error.
        reason: String,
    },
    /// A shard cannot be decoded.
    #[error("{url}: {reason}")]
    BadShard {
        /// Shard URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<(String, RecordError)> for DatasetError {
    fn from((url, e): (String, RecordError)) -> Self {
        DatasetError::BadShard {
            url,
            reason: e.to_string(),
        }
    }
}

/// A published dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    location: Location,
    /// Its manifest.
    pub manifest: Manifest,
}

impl Dataset {
    /// Opens the dataset at a URL by reading its manifest.
    pub async fn open(url: &str) -> Result<Self, DatasetError> {
        let location = Location::parse(url)?;
        if !location.exists(MANIFEST_FILE).await? {
            return Err(DatasetError::NoManifest(location.url().to_string()));
        }
        let bytes = location.get(MANIFEST_FILE).await?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| DatasetError::BadManifest {
            url: location.child_url(MANIFEST_FILE),
            reason: e.to_string(),
        })?;
        Ok(Self { location, manifest })
    }

    /// The dataset's location.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The records whose id is in `ids`, in dataset order (ids not found are
    /// left out; reading stops once every id is found).
    pub async fn find_records(&self, ids: &[String]) -> Result<Vec<ProteinRecord>, DatasetError> {
        let wanted: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let mut found: Vec<ProteinRecord> = Vec::new();
        for shard in &self.manifest.shards {
            if found.len() == wanted.len() {
                break;
            }
            for r in self.read_shard(shard).await? {
                if wanted.contains(r.id.as_str()) && !found.iter().any(|f| f.id == r.id) {
                    found.push(r);
                }
            }
        }
        Ok(found)
    }

    /// Reads and decodes one shard.
    pub async fn read_shard(&self, shard: &ShardEntry) -> Result<Vec<ProteinRecord>, DatasetError> {
        let bytes = self.location.get(&shard.url).await?;
        decode_shard(bytes, &self.location.child_url(&shard.url))
    }
}

/// Decodes the Parquet bytes of a shard into records.
pub fn decode_shard(bytes: Bytes, url: &str) -> Result<Vec<ProteinRecord>, DatasetError> {
    headscan_proto::shard::decode_shard(bytes, url).map_err(|e| DatasetError::BadShard {
        url: e.url,
        reason: e.reason,
    })
}
