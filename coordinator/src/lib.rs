//! headscan's coordinator: turns protein data into canonical datasets and
//! plans, schedules and reduces analysis jobs over them.
//!
//! Overview:
//! - [`ingest`]: every supported input format (FASTA + annotation TSV,
//!   ProteinNet text, TAPE/provis LMDB, PDB/mmCIF directories, NetSurfP CSV,
//!   RCSB `ss.txt`, UniProtKB flat files, canonical Parquet) streamed into
//!   Parquet shards and a `manifest.json`, published atomically;
//! - [`dataset`]: reading a published dataset back, shard by shard;
//! - [`inspect`]: row/residue counts and feature background rates;
//! - [`plan`] (job → one task per shard), [`state`] (SQLite: jobs, tasks,
//!   leases, commits), [`scheduler`] (leases, heartbeats, retries, cancel),
//!   [`reduce`] (prefix fold of committed partials), [`finish`] (statistics,
//!   tables, report, summary.json), [`server`] (the coordinator process) and
//!   [`service`] (the tonic `Jobs` and `Work` servers);
//! - [`registry`]: model registry watch and recomputation keyed by (model,
//!   dataset, analysis-config) digests;
//! - [`engine`]: engine-native jobs (plan, one task per array index,
//!   reduce) for Slurm arrays and Kubernetes Indexed Jobs;
//! - [`top_heads`]: a finished job's best heads for one feature, as a table;
//! - [`sequence_table`]: `sequences.parquet`, the stored attention of the
//!   records a job visualises;
//! - [`probe`]: diagnostic probes: the fold of a probe stage's shard results
//!   (jobs whose spec carries a `ProbeStage`), the probe config and tables.
//!
//! It must not run models or touch attention tensors (that is
//! `headscan-worker`), and it defines no wire or table formats of its own:
//! those live in `headscan-proto`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use headscan_coordinator::ingest::{ingest, Format, IngestOptions};
//! let opts = IngestOptions::new(Format::Fasta, "proteins.fasta".into(), "out/ds".into());
//! let manifest = ingest(opts).await?;
//! println!("{} rows", manifest.rows);
//! # Ok(()) }
//! ```

pub mod config;
pub mod dataset;
pub mod engine;
pub mod finish;
pub mod ingest;
pub mod inspect;
pub mod metrics;
pub mod outputs;
pub mod plan;
pub mod probe;
pub mod reduce;
pub mod registry;
pub mod report;
pub mod scheduler;
pub mod selection;
pub mod sequence_table;
pub mod server;
pub mod service;
pub mod state;
pub mod stats;
pub mod top_heads;
