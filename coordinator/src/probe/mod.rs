//! Diagnostic probes (Vig et al. 2021 §5, Figure 5), the coordinator's side:
//! the `headscan probe` config and its tables ([`output`]), and the fold of a
//! probe stage's per-shard results in shard order ([`fold`]). The math
//! (logistic regressions, tasks, the split, contact pairs, Newton rounds)
//! lives in `headscan_probe` and is re-exported here.

pub use headscan_probe::{contacts, l1, logreg, round, tasks};

pub mod fold;
pub mod output;
