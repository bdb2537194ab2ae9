//! Diagnostic probes (Vig et al. 2021 §5, Figure 5): linear classifiers on
//! frozen model outputs, trained from per-shard sufficient statistics.
//!
//! - [`logreg`]: L2-regularised (class-weighted) logistic regression by
//!   Newton's method on gradients and Hessians summed over shards;
//! - [`l1`]: L1-regularised logistic regression by proximal Newton (ESM's
//!   contact regression over every layer × head);
//! - [`tasks`]: per-residue tasks (ss4, binding sites, PTMs) and the seeded
//!   record-level train/validation split;
//! - [`contacts`]: pair features and labels of the contact probe;
//! - [`output`]: the `headscan probe` config and its tables
//!   (`split.parquet`, `probes.parquet`, `weights.json`);
//! - [`round`]: one Newton round's per-shard partials, keyed by (shard,
//!   iteration, weights digest) and folded in shard order whatever the
//!   arrival order (the coordinator side of a distributed fit).

pub mod contacts;
pub mod l1;
pub mod logreg;
pub mod output;
pub mod round;
pub mod tasks;
