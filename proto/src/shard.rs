//! Decoding a canonical Parquet shard (DESIGN §2) into records: the same code
//! for the coordinator's dataset reader and the worker's task input.

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::record::{ProteinRecord, from_batch};

/// A shard that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct ShardError {
    /// The shard.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Decodes the Parquet bytes of a shard at `url` (for messages) into records.
pub fn decode_shard(bytes: Bytes, url: &str) -> Result<Vec<ProteinRecord>, ShardError> {
    let bad = |reason: String| ShardError {
        url: url.to_string(),
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        out.extend(from_batch(&batch).map_err(|e| bad(e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_naming_the_shard() {
        let err = decode_shard(Bytes::from_static(b"not parquet"), "ds/shards/part-00001.parquet")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ds/shards/part-00001.parquet: "), "{err}");
    }
}
