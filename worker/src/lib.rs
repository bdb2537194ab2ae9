//! headscan's worker: runs protein language models on candle and turns their
//! attention into per-head partial counts.
//!
//! This crate will own the model families (BERT, ALBERT, XLNet, ESM, T5
//! encoder), their tokenizers, batching and on-device accumulation. It must
//! not plan or schedule work, nor parse input formats: it reads canonical
//! records (`headscan-proto`) and reports `PartialCounts`.
//!
//! ```
//! assert_eq!(headscan_worker::CRATE, "headscan-worker");
//! ```

/// The crate's name, for version reporting.
pub const CRATE: &str = "headscan-worker";
