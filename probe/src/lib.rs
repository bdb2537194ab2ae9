//! headscan's probe math (Vig et al. 2021 §5, Figure 5; ESM's contact
//! regression): what a diagnostic classifier on frozen model outputs needs,
//! shared by the worker (one shard's statistics) and the coordinator side
//! (folding shards, Newton steps).
//!
//! - [`logreg`]: L2-regularised (class-weighted) logistic regression by
//!   Newton's method on gradients and Hessians summed over shards;
//! - [`l1`]: L1-regularised logistic regression by proximal Newton (ESM's
//!   contact regression over every layer × head);
//! - [`tasks`]: per-residue tasks (ss4, binding sites, PTMs) and the seeded
//!   record-level train/validation split;
//! - [`contacts`]: pair features and labels of the contact probe;
//! - [`round`]: one Newton round's per-shard partials, folded in shard order
//!   whatever the arrival order.
//!
//! It owns no I/O, no model and no scheduling: callers hand it rows and
//! partials and get weights back.
//!
//! ```
//! use headscan_probe::logreg::{Design, FitOptions, Partial, fit, partial};
//! let mut d = Design::new(1);
//! for (x, y) in [(-2.0, 0), (-1.0, 0), (0.5, 1), (1.0, 0), (2.0, 1), (3.0, 1)] {
//!     d.push(&[x], y);
//! }
//! let fitted = fit(2, 1, &FitOptions::default(), |w| Ok(partial(&d, w, &[1.0, 1.0]))).unwrap();
//! assert!(fitted.weights.w[0] > 0.0);
//! ```

pub mod contacts;
pub mod l1;
pub mod logreg;
pub mod round;
pub mod tasks;
