//! The probes' logistic regression: it recovers a label that is a linear
//! function of one layer's embedding (and stays near chance on the others),
//! its gradient is the derivative of its loss, and 1 vs 4 shards give the same
//! weights.

use headscan_probe::logreg::{
    Design, FitError, FitOptions, Partial, Weights, balanced_class_weights, fit, partial,
};
use headscan_proto::probe_metrics::ClassCounts;

mod common;
use common::{Stream, designs};

const DIM: usize = 6;
const LAYERS: usize = 3;
const SIGNAL_LAYER: usize = 1;

/// `n` rows of three independent "layer embeddings"; the class is the
/// argmax over `n_classes` linear scores of layer 1's embedding plus noise.
fn synthetic(n: usize, n_classes: usize, seed: u64) -> (Vec<Vec<Vec<f64>>>, Vec<usize>) {
    let mut g = Stream(seed);
    let a: Vec<Vec<f64>> = (0..n_classes)
        .map(|_| (0..DIM).map(|_| g.normal()).collect())
        .collect();
    let mut layers = vec![Vec::new(); LAYERS];
    let mut y = Vec::new();
    for _ in 0..n {
        for layer in layers.iter_mut() {
            layer.push((0..DIM).map(|_| g.normal()).collect::<Vec<f64>>());
        }
        let e = &layers[SIGNAL_LAYER].last().unwrap();
        let scores: Vec<f64> = a
            .iter()
            .map(|ac| ac.iter().zip(e.iter()).map(|(p, q)| p * q).sum::<f64>() + 0.3 * g.normal())
            .collect();
        let best = (0..n_classes).fold(0, |b, c| if scores[c] > scores[b] { c } else { b });
        y.push(best);
    }
    (layers, y)
}

fn fit_shards(shards: &[Design], n_classes: usize, cw: &[f64]) -> Weights {
    let params = (n_classes - 1) * (DIM + 1);
    fit(n_classes, DIM, &FitOptions::default(), |w| {
        let mut sum = Partial::zeros(params);
        for s in shards {
            sum.merge(&partial(s, w, cw));
        }
        Ok::<_, FitError>(sum)
    })
    .unwrap()
    .weights
}

fn macro_f1(w: &Weights, rows: &[Vec<f64>], y: &[usize]) -> f64 {
    let mut c = ClassCounts::new(w.n_classes);
    for (x, &t) in rows.iter().zip(y) {
        c.add(t, w.predict(x)).unwrap();
    }
    c.f1_macro()
}

fn accuracy(w: &Weights, rows: &[Vec<f64>], y: &[usize]) -> f64 {
    let right = rows.iter().zip(y).filter(|(x, t)| w.predict(x) == **t).count();
    right as f64 / y.len() as f64
}

#[test]
fn probe_recovers_the_signal_layer_and_stays_near_chance_elsewhere() {
    for n_classes in [2, 3] {
        let (layers, y) = synthetic(2500, n_classes, 7);
        let (train, eval) = (2000, 2500);
        let cw = vec![1.0; n_classes];
        // Chance: always the most frequent class of the evaluation rows.
        let chance = (0..n_classes)
            .map(|c| y[train..eval].iter().filter(|&&t| t == c).count())
            .max()
            .unwrap() as f64
            / (eval - train) as f64;
        for (l, rows) in layers.iter().enumerate() {
            let w = fit_shards(&designs(&rows[..train], &y[..train], 1), n_classes, &cw);
            let acc = accuracy(&w, &rows[train..eval], &y[train..eval]);
            if l == SIGNAL_LAYER {
                let f1 = macro_f1(&w, &rows[train..eval], &y[train..eval]);
                assert!(f1 > 0.85, "K={n_classes} layer {l}: macro F1 {f1}");
                assert!(
                    acc > chance + 0.3,
                    "K={n_classes} layer {l}: accuracy {acc}, chance {chance}"
                );
            } else {
                assert!(
                    acc < chance + 0.05,
                    "K={n_classes} layer {l}: accuracy {acc}, chance {chance}"
                );
            }
        }
    }
}

#[test]
fn one_and_four_shards_give_the_same_weights() {
    for n_classes in [2, 4] {
        let (layers, y) = synthetic(1200, n_classes, 11);
        let cw = balanced_class_weights(
            &(0..n_classes)
                .map(|c| y.iter().filter(|&&t| t == c).count() as u64)
                .collect::<Vec<_>>(),
        );
        let one = fit_shards(&designs(&layers[SIGNAL_LAYER], &y, 1), n_classes, &cw);
        let four = fit_shards(&designs(&layers[SIGNAL_LAYER], &y, 4), n_classes, &cw);
        let d = one
            .w
            .iter()
            .zip(&four.w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(d < 1e-6, "K={n_classes}: max |Δw| = {d:e}");
        assert!(one.w.iter().any(|v| v.abs() > 0.1), "weights were fitted");
        // The same shards twice: the same bytes.
        let again = fit_shards(&designs(&layers[SIGNAL_LAYER], &y, 4), n_classes, &cw);
        assert_eq!(four, again);
    }
}

#[test]
fn gradient_and_hessian_are_the_derivatives_of_the_loss() {
    let (layers, y) = synthetic(50, 3, 3);
    let d = &designs(&layers[0], &y, 1)[0];
    let cw = [1.0, 2.0, 0.5];
    let mut w = Weights::zeros(3, DIM);
    let mut g = Stream(5);
    for v in w.w.iter_mut() {
        *v = 0.3 * g.normal();
    }
    let p = partial(d, &w, &cw);
    let n = w.w.len();
    let h = 1e-6;
    for i in 0..n {
        let (mut up, mut down) = (w.clone(), w.clone());
        up.w[i] += h;
        down.w[i] -= h;
        let (pu, pd) = (partial(d, &up, &cw), partial(d, &down, &cw));
        let num = (pu.loss - pd.loss) / (2.0 * h);
        assert!(
            (num - p.grad[i]).abs() < 1e-5 * (1.0 + num.abs()),
            "grad {i}: {num} vs {}",
            p.grad[i]
        );
        for j in 0..n {
            let num = (pu.grad[j] - pd.grad[j]) / (2.0 * h);
            let got = p.hess[i * n + j];
            assert!(
                (num - got).abs() < 1e-5 * (1.0 + num.abs()),
                "hess {i},{j}: {num} vs {got}"
            );
        }
    }
}

#[test]
fn balanced_weights_follow_scikit_learn_and_help_the_rare_class() {
    assert_eq!(
        balanced_class_weights(&[75, 25]),
        vec![100.0 / 150.0, 100.0 / 50.0]
    );
    assert_eq!(balanced_class_weights(&[10, 0]), vec![0.5, 0.0]);
    // A rare positive class (about 1 in 10) behind a weak signal.
    let mut g = Stream(21);
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for _ in 0..3000 {
        let x: Vec<f64> = (0..DIM).map(|_| g.normal()).collect();
        let positive = x[0] + 0.8 * g.normal() > 1.6;
        rows.push(x);
        y.push(usize::from(positive));
    }
    let counts = [
        y.iter().filter(|&&c| c == 0).count() as u64,
        y.iter().filter(|&&c| c == 1).count() as u64,
    ];
    let recall = |w: &Weights| {
        let hit = rows
            .iter()
            .zip(&y)
            .filter(|(x, c)| **c == 1 && w.predict(x) == 1)
            .count();
        hit as f64 / counts[1] as f64
    };
    let plain = fit_shards(&designs(&rows, &y, 2), 2, &[1.0, 1.0]);
    let weighted = fit_shards(&designs(&rows, &y, 2), 2, &balanced_class_weights(&counts));
    assert!(
        recall(&weighted) > recall(&plain) + 0.2,
        "{} vs {}",
        recall(&weighted),
        recall(&plain)
    );
}
