//! headscan's contracts: what every other crate agrees on.
//!
//! This crate owns the wire and data formats and nothing else:
//! - [`pb`]: the gRPC services (`Jobs`, `Work`) and messages compiled from
//!   `proto/headscan.proto`, including the `PartialCounts` reduction unit;
//! - [`record`]: the canonical protein record and its Arrow/Parquet schema
//!   (DESIGN §2), with the content digest used for dataset hashes;
//! - [`features`]: the meaning of the features of DESIGN §1 (amino-acid
//!   alphabet, DSSP → ss4 classes, the contact rule);
//! - [`manifest`]: the dataset `manifest.json`;
//! - [`embeddings`]: the per-residue embedding tables of `headscan extract`,
//!   [`pair_table`]: its per-pair attention tables (`--attention-pairs`);
//! - [`precision`]: the floating-point types a job's model may compute in;
//! - [`probe_metrics`]: F1 and precision at L/k of the diagnostic probes,
//!   from counts that add up over shards;
//! - [`store`]: object-store URLs (`file://`, plain paths, `s3://`, …);
//! - [`ids`]: job and task ids, checked before they become store keys;
//! - [`shard`]: decoding a canonical Parquet shard into records;
//! - [`client`]: channels to a coordinator and the bearer token they carry.
//!
//! It must not run models, schedule work or parse input formats: those belong
//! to `headscan-worker` and `headscan-coordinator`, which both depend on this
//! crate (never the other way round).
//!
//! ```
//! use headscan_proto::features::ss4_class;
//! assert_eq!(ss4_class('G'), Some(headscan_proto::features::Ss4::Helix));
//! ```

pub mod client;
pub mod counts;
pub mod embeddings;
pub mod features;
pub mod ids;
pub mod manifest;
pub mod pair_table;
pub mod parquet_writer;
pub mod precision;
pub mod probe_metrics;
pub mod record;
pub mod shard;
pub mod store;

/// Version of the Work protocol; the coordinator refuses workers of another.
pub const PROTOCOL_VERSION: u32 = 1;

/// gRPC metadata key of the bearer token (`authorization: Bearer <token>`).
pub const AUTH_METADATA: &str = "authorization";

/// Largest gRPC message either side accepts or sends (partial counts of big
/// models with many null samples run to tens of MiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Generated gRPC messages and services of `proto/headscan.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("headscan.v1");
}
