//! Diagnostic probes (Vig et al. 2021 §5, Figure 5): linear classifiers on
//! frozen model outputs, trained from per-shard sufficient statistics.
//!
//! - [`logreg`]: L2-regularised (class-weighted) logistic regression by
//!   Newton's method on gradients and Hessians summed over shards.

pub mod logreg;
