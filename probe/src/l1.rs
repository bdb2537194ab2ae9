//! L1-regularised binary logistic regression (ESM's contact regression:
//! scikit-learn `LogisticRegression(penalty="l1", C)`), fitted by proximal
//! Newton from per-shard sufficient statistics.
//!
//! Each outer iteration sums the shards' loss, gradient and Hessian at the
//! current weights ([`super::logreg::partial`]), solves the L1-penalised
//! quadratic model by cyclic coordinate descent (fixed order, so the result
//! is deterministic), and backtracks on the full objective
//! Σ cᵢ · (−log p(yᵢ)) + λ‖w‖₁ (intercept unpenalised).

use super::logreg::{Fit, FitError, Partial, Weights};

/// Settings of an L1 fit.
#[derive(Debug, Clone, PartialEq)]
pub struct L1Options {
    /// L1 strength λ (scikit-learn's 1/C; ESM uses C = 0.15).
    pub l1: f64,
    /// Outer (Newton) iterations at most.
    pub max_iter: usize,
    /// Coordinate-descent sweeps per outer iteration at most.
    pub max_sweeps: usize,
    /// Stop when the largest weight change is below this.
    pub tol: f64,
}

impl Default for L1Options {
    fn default() -> Self {
        Self {
            l1: 1.0 / 0.15,
            max_iter: 50,
            max_sweeps: 500,
            tol: 1e-9,
        }
    }
}

fn objective(loss: f64, w: &Weights, l1: f64) -> f64 {
    let d1 = w.dim + 1;
    loss + l1
        * w.w
            .iter()
            .enumerate()
            .filter(|(i, _)| i % d1 != w.dim)
            .map(|(_, v)| v.abs())
            .sum::<f64>()
}

fn soft(z: f64, t: f64) -> f64 {
    if z > t {
        z - t
    } else if z < -t {
        z + t
    } else {
        0.0
    }
}

/// Fits a binary (2-class) model of `dim` features. `partials(w)` returns the
/// sum over all shards, in a fixed order, of the unpenalised partial at `w`.
pub fn fit_l1(
    dim: usize,
    options: &L1Options,
    mut partials: impl FnMut(&Weights) -> Result<Partial, FitError>,
) -> Result<Fit, FitError> {
    let mut w = Weights::zeros(2, dim);
    let n = dim + 1;
    let mut cur = partials(&w)?;
    let mut f_cur = objective(cur.loss, &w, options.l1);
    let mut iterations = 0;
    while iterations < options.max_iter {
        iterations += 1;
        // Coordinate descent on g·d + ½ dᵀHd + λ‖w + d‖₁ over d.
        let mut d = vec![0.0; n];
        let mut hd = vec![0.0; n];
        for _ in 0..options.max_sweeps {
            let mut change: f64 = 0.0;
            for j in 0..n {
                let hjj = cur.hess[j * n + j] + 1e-12;
                let gj = cur.grad[j] + hd[j];
                let old = d[j];
                let new = if j == dim {
                    old - gj / hjj
                } else {
                    let z = w.w[j] + old - gj / hjj;
                    soft(z, options.l1 / hjj) - w.w[j]
                };
                let delta = new - old;
                if delta != 0.0 {
                    d[j] = new;
                    for (k, h) in hd.iter_mut().enumerate() {
                        *h += cur.hess[k * n + j] * delta;
                    }
                    change = change.max(delta.abs());
                }
            }
            if change < options.tol * 1e-2 {
                break;
            }
        }
        let mut t = 1.0;
        let (next_w, next, f_next) = loop {
            let mut cand = w.clone();
            for (a, s) in cand.w.iter_mut().zip(&d) {
                *a += t * s;
            }
            let p = partials(&cand)?;
            let f = objective(p.loss, &cand, options.l1);
            if f <= f_cur + 1e-12 * f_cur.abs().max(1.0) || t < 1e-8 {
                break (cand, p, f);
            }
            t *= 0.5;
        };
        let moved = d.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
        w = next_w;
        cur = next;
        f_cur = f_next;
        if moved < options.tol {
            break;
        }
    }
    Ok(Fit {
        weights: w,
        loss: f_cur,
        iterations,
    })
}
