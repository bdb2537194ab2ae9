//! L2-regularised logistic regression fitted by Newton's method from
//! per-shard sufficient statistics, so no machine holds the whole data set.
//!
//! Each iteration, every shard contributes the loss, gradient and Hessian of
//! its rows at the current weights ([`Partial`], f64); the partials are summed
//! in shard order and one Newton step is solved on the sum (Cholesky), with
//! step halving when the loss would rise. Same shards and same iteration
//! order → same bytes; a different shard layout changes only the rounding of
//! the sums (far below 1e-6 on the weights).
//!
//! The model has K classes with class 0 as reference (its scores are fixed at
//! 0): K − 1 weight rows of `dim` features plus an unpenalised intercept. For
//! K = 2 this is the usual binary logistic regression. The objective is
//! Σᵢ cᵢ · (−log p(yᵢ | xᵢ)) + (λ/2)‖W‖², cᵢ the weight of yᵢ's class —
//! scikit-learn's `LogisticRegression(C = 1/λ)` with `class_weight`.

/// One shard's rows: `dim` f64 features per row and a class label each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Design {
    /// Features per row.
    pub dim: usize,
    /// Row-major features, `rows × dim`.
    pub x: Vec<f64>,
    /// Class of each row, in `0..n_classes`.
    pub y: Vec<usize>,
}

impl Design {
    /// Empty design of `dim` features.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Adds one row.
    pub fn push(&mut self, features: &[f64], class: usize) {
        debug_assert_eq!(features.len(), self.dim);
        self.x.extend_from_slice(features);
        self.y.push(class);
    }

    /// Features of row `r`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.x[r * self.dim..(r + 1) * self.dim]
    }
}

/// Fitted weights: `(n_classes − 1) × (dim + 1)`, row c holds class c + 1's
/// weights then its intercept.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Classes (2 for a binary task).
    pub n_classes: usize,
    /// Features.
    pub dim: usize,
    /// Row-major `(n_classes − 1) × (dim + 1)`.
    pub w: Vec<f64>,
}

impl Weights {
    /// All-zero weights.
    pub fn zeros(n_classes: usize, dim: usize) -> Self {
        Self {
            n_classes,
            dim,
            w: vec![0.0; (n_classes - 1) * (dim + 1)],
        }
    }

    fn params(&self) -> usize {
        self.w.len()
    }

    /// Class scores of one row (class 0 is 0).
    pub fn scores(&self, x: &[f64]) -> Vec<f64> {
        let mut s = vec![0.0; self.n_classes];
        for (row, sc) in self.w.chunks_exact(self.dim + 1).zip(s.iter_mut().skip(1)) {
            *sc = row[..self.dim].iter().zip(x).map(|(a, b)| a * b).sum::<f64>() + row[self.dim];
        }
        s
    }

    /// Class probabilities of one row.
    pub fn probabilities(&self, x: &[f64]) -> Vec<f64> {
        let s = self.scores(x);
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
        let z: f64 = e.iter().sum();
        e.into_iter().map(|v| v / z).collect()
    }

    /// Most probable class (the lower class on ties).
    pub fn predict(&self, x: &[f64]) -> usize {
        let s = self.scores(x);
        let mut best = 0;
        for c in 1..s.len() {
            if s[c] > s[best] {
                best = c;
            }
        }
        best
    }
}

/// Loss, gradient and Hessian of some rows at some weights (no penalty).
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    /// Σ cᵢ · (−log p(yᵢ)).
    pub loss: f64,
    /// Gradient, one entry per parameter.
    pub grad: Vec<f64>,
    /// Hessian, row-major `params × params`.
    pub hess: Vec<f64>,
}

impl Partial {
    /// Zero partial for `params` parameters.
    pub fn zeros(params: usize) -> Self {
        Self {
            loss: 0.0,
            grad: vec![0.0; params],
            hess: vec![0.0; params * params],
        }
    }

    /// Adds another partial (reduction in shard order).
    pub fn merge(&mut self, other: &Partial) {
        self.loss += other.loss;
        for (a, b) in self.grad.iter_mut().zip(&other.grad) {
            *a += b;
        }
        for (a, b) in self.hess.iter_mut().zip(&other.hess) {
            *a += b;
        }
    }
}

/// The partial of one shard's rows at `w`; `class_weight[c]` weighs rows of
/// class c.
pub fn partial(design: &Design, w: &Weights, class_weight: &[f64]) -> Partial {
    let d1 = w.dim + 1;
    let k1 = w.n_classes - 1;
    let mut out = Partial::zeros(w.params());
    let mut xb = vec![0.0; d1];
    for r in 0..design.rows() {
        xb[..w.dim].copy_from_slice(design.row(r));
        xb[w.dim] = 1.0;
        let y = design.y[r];
        let c = class_weight[y];
        let p = w.probabilities(&xb[..w.dim]);
        out.loss -= c * p[y].max(f64::MIN_POSITIVE).ln();
        for a in 0..k1 {
            let resid = p[a + 1] - if y == a + 1 { 1.0 } else { 0.0 };
            for (i, x) in xb.iter().enumerate() {
                out.grad[a * d1 + i] += c * resid * x;
            }
            for b in 0..k1 {
                let h = c * (if a == b { p[a + 1] } else { 0.0 } - p[a + 1] * p[b + 1]);
                if h == 0.0 {
                    continue;
                }
                for i in 0..d1 {
                    let hi = h * xb[i];
                    let row = (a * d1 + i) * w.params() + b * d1;
                    for (hj, xj) in out.hess[row..row + d1].iter_mut().zip(&xb) {
                        *hj += hi * xj;
                    }
                }
            }
        }
    }
    out
}

/// Settings of a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// L2 strength λ (scikit-learn's 1/C).
    pub l2: f64,
    /// Newton iterations at most.
    pub max_iter: usize,
    /// Stop when the largest step entry is below this.
    pub tol: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            l2: 1.0,
            max_iter: 100,
            tol: 1e-10,
        }
    }
}

/// A fit that could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// Reading or computing a shard's partial failed.
    #[error("{0}")]
    Shard(String),
    /// The Newton system is singular (no rows, or λ = 0 on separable data).
    #[error("the Newton system is singular: {0}")]
    Singular(String),
}

/// The outcome of a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// The weights.
    pub weights: Weights,
    /// Penalised loss at the weights.
    pub loss: f64,
    /// Newton iterations run.
    pub iterations: usize,
}

/// Ridge on the intercepts' Hessian diagonal (numerical only).
const INTERCEPT_RIDGE: f64 = 1e-10;

/// Penalised objective of a summed partial at `w` (intercepts unpenalised).
fn penalise(sum: &mut Partial, w: &Weights, l2: f64) {
    let d1 = w.dim + 1;
    let p = w.params();
    for (i, wi) in w.w.iter().enumerate() {
        if i % d1 == w.dim {
            // Intercepts: unpenalised, with a negligible ridge that keeps the
            // system definite when a class has no rows.
            sum.hess[i * p + i] += INTERCEPT_RIDGE;
            continue;
        }
        sum.loss += 0.5 * l2 * wi * wi;
        sum.grad[i] += l2 * wi;
        sum.hess[i * p + i] += l2;
    }
}

/// Fits by Newton's method. `partials(w)` must return the sum over all
/// shards, in a fixed shard order, of [`partial`] at `w` (locally, or reduced
/// from workers).
pub fn fit(
    n_classes: usize,
    dim: usize,
    options: &FitOptions,
    mut partials: impl FnMut(&Weights) -> Result<Partial, FitError>,
) -> Result<Fit, FitError> {
    let mut w = Weights::zeros(n_classes, dim);
    let mut cur = partials(&w)?;
    penalise(&mut cur, &w, options.l2);
    let mut iterations = 0;
    while iterations < options.max_iter {
        iterations += 1;
        let step = cholesky_solve(&cur.hess, &cur.grad, w.params())?;
        let mut t = 1.0;
        let (next_w, next) = loop {
            let mut cand = w.clone();
            for (a, s) in cand.w.iter_mut().zip(&step) {
                *a -= t * s;
            }
            let mut p = partials(&cand)?;
            penalise(&mut p, &cand, options.l2);
            if p.loss <= cur.loss + 1e-12 * cur.loss.abs().max(1.0) || t < 1e-8 {
                break (cand, p);
            }
            t *= 0.5;
        };
        let moved = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
        w = next_w;
        cur = next;
        if moved < options.tol {
            break;
        }
    }
    Ok(Fit {
        weights: w,
        loss: cur.loss,
        iterations,
    })
}

/// Solves H x = g for symmetric positive definite H (n × n).
fn cholesky_solve(h: &[f64], g: &[f64], n: usize) -> Result<Vec<f64>, FitError> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = h[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return Err(FitError::Singular(format!("pivot {i} is {s:e}")));
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = g[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    Ok(x)
}

/// scikit-learn's `class_weight="balanced"`: n / (K · n_c) for each class
/// present, 0 for a class with no rows.
pub fn balanced_class_weights(class_counts: &[u64]) -> Vec<f64> {
    let n: u64 = class_counts.iter().sum();
    let k = class_counts.len() as f64;
    class_counts
        .iter()
        .map(|&c| if c == 0 { 0.0 } else { n as f64 / (k * c as f64) })
        .collect()
}
