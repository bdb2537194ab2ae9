//! The L1 logistic regression of the contact regression: its solution meets
//! the optimality (KKT) conditions, is sparse where the signal is, and 1 vs 4
//! shards give the same weights.

use headscan_probe::l1::{L1Options, fit_l1};
use headscan_probe::logreg::{Design, FitError, Partial, Weights, partial};

mod common;
use common::{Stream, designs};

const DIM: usize = 10;

/// Only features 0 and 1 carry the label.
fn data(n: usize, shards: usize) -> Vec<Design> {
    let mut g = Stream(99);
    let (mut rows, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let x: Vec<f64> = (0..DIM).map(|_| g.normal()).collect();
        ys.push(usize::from(2.0 * x[0] - 1.5 * x[1] + 0.5 * g.normal() > 0.3));
        rows.push(x);
    }
    designs(&rows, &ys, shards)
}

fn run(shards: &[Design], l1: f64) -> (Weights, Partial) {
    let cw = [1.0, 1.0];
    let sum = |w: &Weights| {
        let mut s = Partial::zeros(DIM + 1);
        for d in shards {
            s.merge(&partial(d, w, &cw));
        }
        s
    };
    let opts = L1Options {
        l1,
        ..L1Options::default()
    };
    let fit = fit_l1(DIM, &opts, |w| Ok::<_, FitError>(sum(w))).unwrap();
    let at = sum(&fit.weights);
    (fit.weights, at)
}

#[test]
fn solution_meets_the_l1_optimality_conditions_and_is_sparse() {
    let l1 = 20.0;
    let (w, at) = run(&data(800, 1), l1);
    for j in 0..DIM {
        let g = at.grad[j];
        if w.w[j] == 0.0 {
            assert!(g.abs() <= l1 + 1e-4, "feature {j}: |g| = {} > λ", g.abs());
        } else {
            assert!(
                (g + l1 * w.w[j].signum()).abs() < 1e-4,
                "feature {j}: g = {g}, w = {}",
                w.w[j]
            );
        }
    }
    assert!(
        at.grad[DIM].abs() < 1e-4,
        "intercept unpenalised: g = {}",
        at.grad[DIM]
    );
    assert!(w.w[0] > 0.5 && w.w[1] < -0.5, "{:?}", &w.w[..2]);
    let zeros = w.w[2..DIM].iter().filter(|v| **v == 0.0).count();
    assert!(zeros >= 6, "noise features should mostly be exactly 0: {:?}", w.w);
}

#[test]
fn one_and_four_shards_agree() {
    let (a, _) = run(&data(600, 1), 5.0);
    let (b, _) = run(&data(600, 4), 5.0);
    let d =
        a.w.iter()
            .zip(&b.w)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
    assert!(d < 1e-6, "max |Δw| = {d:e}");
}
