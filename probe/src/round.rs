//! One Newton round of a probe fit as the coordinator sees it: every shard's
//! [`Partial`] at the round's weights, accepted in any arrival order and
//! folded strictly in shard order (like the coordinator's analysis prefix
//! fold), so the sum — and hence the fitted weights — are the same bits whatever the worker count, completion order or retries.
//!
//! A partial is keyed by (shard, iteration, weights digest): a partial
//! computed at other weights (a late answer from an earlier round) is
//! refused as stale, a repeated one with the same bytes is ignored (a retried
//! task committing twice), and a repeated one with different bytes is an
//! error (a worker that is not deterministic). Partials that arrive ahead of
//! the fold wait in memory until the shards before them are folded.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::logreg::{Partial, Weights};

/// Hex SHA-256 of weights (classes, features, then every weight's f64 bits,
/// little-endian): the key that ties a shard's partial to the round's weights.
pub fn weights_digest(w: &Weights) -> String {
    let mut h = Sha256::new();
    h.update((w.n_classes as u64).to_le_bytes());
    h.update((w.dim as u64).to_le_bytes());
    for v in &w.w {
        h.update(v.to_bits().to_le_bytes());
    }
    hex::encode(h.finalize())
}

/// A partial the round cannot take.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RoundError {
    /// The partial was computed for another iteration or other weights.
    #[error(
        "stale partial for shard {shard}: iteration {iteration} weights {digest}, the round is iteration {want_iteration} weights {want_digest}"
    )]
    Stale {
        /// Shard of the partial.
        shard: u32,
        /// Iteration the partial was computed for.
        iteration: u32,
        /// Weights digest the partial was computed at.
        digest: String,
        /// The round's iteration.
        want_iteration: u32,
        /// The round's weights digest.
        want_digest: String,
    },
    /// The shard is not one of the round's shards.
    #[error("shard {shard} is out of range: the round has {shards} shards")]
    ShardOutOfRange {
        /// Shard of the partial.
        shard: u32,
        /// Shards in the round.
        shards: u32,
    },
    /// The partial's gradient or Hessian has the wrong size.
    #[error(
        "partial for shard {shard} has {grad} gradient and {hess} Hessian entries, expected {params} and {params}²"
    )]
    Shape {
        /// Shard of the partial.
        shard: u32,
        /// Gradient entries received.
        grad: usize,
        /// Hessian entries received.
        hess: usize,
        /// Parameters of the model.
        params: usize,
    },
    /// A second partial for a shard differs from the first.
    #[error(
        "shard {shard} sent two different partials for iteration {iteration}: the worker is not deterministic"
    )]
    Conflict {
        /// Shard of the partial.
        shard: u32,
        /// The round's iteration.
        iteration: u32,
    },
}

/// What became of an accepted partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// New: folded, or waiting for the shards before it.
    New,
    /// The same bytes as a partial already received for the shard: ignored.
    Duplicate,
}

/// Key of a shard's partial: which round and which weights it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialKey {
    /// Shard, `0..shards`.
    pub shard: u32,
    /// Newton evaluation the partial answers (0 for the starting weights).
    pub iteration: u32,
    /// [`weights_digest`] of the weights it was computed at.
    pub digest: String,
}

/// The fold of one round's partials.
#[derive(Debug, Clone)]
pub struct NewtonRound {
    iteration: u32,
    digest: String,
    shards: u32,
    params: usize,
    next: u32,
    folded: Partial,
    /// Digest of each shard's partial already received (for duplicates).
    seen: BTreeMap<u32, String>,
    /// Partials ahead of the fold.
    waiting: BTreeMap<u32, Partial>,
}

fn partial_digest(p: &Partial) -> String {
    let mut h = Sha256::new();
    h.update(p.loss.to_bits().to_le_bytes());
    for v in p.grad.iter().chain(&p.hess) {
        h.update(v.to_bits().to_le_bytes());
    }
    hex::encode(h.finalize())
}

impl NewtonRound {
    /// A round that evaluates `weights` (evaluation number `iteration`) over
    /// `shards` shards.
    pub fn new(iteration: u32, weights: &Weights, shards: u32) -> Self {
        let params = weights.w.len();
        Self {
            iteration,
            digest: weights_digest(weights),
            shards,
            params,
            next: 0,
            folded: Partial::zeros(params),
            seen: BTreeMap::new(),
            waiting: BTreeMap::new(),
        }
    }

    /// The key a shard's partial must carry in this round.
    pub fn key(&self, shard: u32) -> PartialKey {
        PartialKey {
            shard,
            iteration: self.iteration,
            digest: self.digest.clone(),
        }
    }

    /// Takes one shard's partial; folds every shard it completes in order.
    pub fn accept(&mut self, key: &PartialKey, partial: Partial) -> Result<Accepted, RoundError> {
        if key.iteration != self.iteration || key.digest != self.digest {
            return Err(RoundError::Stale {
                shard: key.shard,
                iteration: key.iteration,
                digest: key.digest.clone(),
                want_iteration: self.iteration,
                want_digest: self.digest.clone(),
            });
        }
        if key.shard >= self.shards {
            return Err(RoundError::ShardOutOfRange {
                shard: key.shard,
                shards: self.shards,
            });
        }
        if partial.grad.len() != self.params || partial.hess.len() != self.params * self.params {
            return Err(RoundError::Shape {
                shard: key.shard,
                grad: partial.grad.len(),
                hess: partial.hess.len(),
                params: self.params,
            });
        }
        let d = partial_digest(&partial);
        if let Some(prev) = self.seen.get(&key.shard) {
            return if *prev == d {
                Ok(Accepted::Duplicate)
            } else {
                Err(RoundError::Conflict {
                    shard: key.shard,
                    iteration: self.iteration,
                })
            };
        }
        self.seen.insert(key.shard, d);
        self.waiting.insert(key.shard, partial);
        while let Some(p) = self.waiting.remove(&self.next) {
            self.folded.merge(&p);
            self.next += 1;
        }
        Ok(Accepted::New)
    }

    /// Shards not received yet, in order (the tasks still to lease).
    pub fn missing(&self) -> Vec<u32> {
        (0..self.shards).filter(|s| !self.seen.contains_key(s)).collect()
    }

    /// True when every shard is folded.
    pub fn complete(&self) -> bool {
        self.next >= self.shards
    }

    /// The sum over all shards in shard order; `None` until complete.
    pub fn finish(self) -> Option<Partial> {
        self.complete().then_some(self.folded)
    }
}
