//! The fold of one probe stage (a job whose spec carries a
//! [`ProbeStage`]): every shard's [`ProbeResult`], taken strictly in shard
//! order, into the stage's result. Counts add, extracted tables concatenate,
//! and gradient stages go through a [`NewtonRound`], which refuses a partial
//! computed at other weights than the stage's. The same shards give the same
//! bits whatever the worker count, completion order or retries.

use headscan_proto::pb::probe_stage::Kind;
use headscan_proto::pb::{ProbeResult, ProbeStage};

use super::logreg::{Partial, Weights};
use super::round::{NewtonRound, RoundError};

/// Name of the folded result under the stage job's output.
pub const PROBE_RESULT: &str = "probe-result.pb";

/// A shard result the stage cannot take.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FoldError {
    /// The stage itself is malformed.
    #[error("probe stage: {0}")]
    Stage(String),
    /// A shard's result does not fit the stage.
    #[error("shard {shard}: {reason}")]
    Shard {
        /// 0-based task (shard) index.
        shard: u32,
        /// What is wrong.
        reason: String,
    },
    /// The Newton round refused the gradient.
    #[error(transparent)]
    Round(#[from] RoundError),
}

/// The fold of a stage's shard results.
#[derive(Debug)]
pub struct ProbeFold {
    kind: Kind,
    shards: u32,
    next: u32,
    round: Option<NewtonRound>,
    acc: ProbeResult,
}

fn add(acc: &mut Vec<u64>, v: &[u64], shard: u32, what: &str) -> Result<(), FoldError> {
    if acc.is_empty() {
        acc.extend_from_slice(v);
    } else if acc.len() != v.len() {
        return Err(FoldError::Shard {
            shard,
            reason: format!("{} {what} values, expected {}", v.len(), acc.len()),
        });
    } else {
        for (a, b) in acc.iter_mut().zip(v) {
            *a += b;
        }
    }
    Ok(())
}

impl ProbeFold {
    /// An empty fold of `stage` over `shards` shards.
    pub fn new(stage: &ProbeStage, shards: u32) -> Result<Self, FoldError> {
        let kind = Kind::try_from(stage.kind).unwrap_or(Kind::Unspecified);
        let round = match kind {
            Kind::Unspecified => return Err(FoldError::Stage("no stage kind".into())),
            Kind::Gradient => {
                let (k, dim) = (stage.n_classes as usize, stage.dim as usize);
                if k < 2 || stage.weights.len() != (k - 1) * (dim + 1) {
                    return Err(FoldError::Stage(format!(
                        "{} weights for {k} classes of {dim} features",
                        stage.weights.len()
                    )));
                }
                let w = Weights {
                    n_classes: k,
                    dim,
                    w: stage.weights.clone(),
                };
                Some(NewtonRound::new(stage.iteration, &w, shards))
            }
            _ => None,
        };
        Ok(Self {
            kind,
            shards,
            next: 0,
            round,
            acc: ProbeResult::default(),
        })
    }

    /// Takes shard `shard`'s result; shards must come in order 0, 1, ….
    pub fn push(&mut self, shard: u32, r: ProbeResult) -> Result<(), FoldError> {
        if shard != self.next || shard >= self.shards {
            return Err(FoldError::Shard {
                shard,
                reason: format!("out of order: the fold expects shard {}", self.next),
            });
        }
        self.next += 1;
        let acc = &mut self.acc;
        acc.records += r.records;
        match self.kind {
            Kind::Extract => {
                if shard == 0 {
                    (acc.layers, acc.dim, acc.heads, acc.n_layers) =
                        (r.layers.clone(), r.dim, r.heads, r.n_layers);
                } else if (&acc.layers, acc.dim, acc.heads, acc.n_layers)
                    != (&r.layers, r.dim, r.heads, r.n_layers)
                {
                    return Err(FoldError::Shard {
                        shard,
                        reason: format!(
                            "model shape (layers {:?}, dim {}, {} heads, {} layers) differs from shard 0's",
                            r.layers, r.dim, r.heads, r.n_layers
                        ),
                    });
                }
                acc.rows += r.rows;
                acc.embedding_shards.extend(r.embedding_shards);
                acc.pair_shards.extend(r.pair_shards);
            }
            Kind::Count => add(&mut acc.class_counts, &r.class_counts, shard, "class count")?,
            Kind::Gradient => {
                let round = self
                    .round
                    .as_mut()
                    .ok_or_else(|| FoldError::Stage("no round".into()))?;
                let key = super::round::PartialKey {
                    digest: r.weights_digest,
                    ..round.key(shard)
                };
                round.accept(
                    &key,
                    Partial {
                        loss: r.loss,
                        grad: r.grad,
                        hess: r.hess,
                    },
                )?;
            }
            Kind::Score => {
                acc.n_eval += r.n_eval;
                add(&mut acc.true_pos, &r.true_pos, shard, "true-positive")?;
                add(&mut acc.false_pos, &r.false_pos, shard, "false-positive")?;
                add(&mut acc.false_neg, &r.false_neg, shard, "false-negative")?;
                if acc.precision.is_empty() {
                    acc.precision = r.precision;
                } else if acc.precision.len() != r.precision.len() {
                    return Err(FoldError::Shard {
                        shard,
                        reason: "precision counts differ in shape from shard 0's".into(),
                    });
                } else {
                    for (a, b) in acc.precision.iter_mut().zip(r.precision) {
                        if (a.k, &a.range) != (b.k, &b.range) {
                            return Err(FoldError::Shard {
                                shard,
                                reason: format!(
                                    "precision at L/{} {} where L/{} {} was expected",
                                    b.k, b.range, a.k, a.range
                                ),
                            });
                        }
                        a.correct += b.correct;
                        a.selected += b.selected;
                    }
                }
            }
            Kind::Unspecified => {}
        }
        Ok(())
    }

    /// The stage's result once every shard is in.
    pub fn finish(mut self) -> Result<ProbeResult, FoldError> {
        if self.next != self.shards {
            return Err(FoldError::Stage(format!(
                "{} of {} shards folded",
                self.next, self.shards
            )));
        }
        if let Some(round) = self.round.take() {
            let digest = round.key(0).digest;
            let sum = round
                .finish()
                .ok_or_else(|| FoldError::Stage("the Newton round is incomplete".into()))?;
            self.acc.weights_digest = digest;
            self.acc.loss = sum.loss;
            self.acc.grad = sum.grad;
            self.acc.hess = sum.hess;
        }
        Ok(self.acc)
    }
}
