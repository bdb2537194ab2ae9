//! The coordinator side of a distributed probe fit: each Newton evaluation is
//! a round of per-shard partials that arrive in any order, with retries
//! (duplicates) and late answers from earlier rounds (stale), and are folded
//! in shard order. Fits driven through rounds with 1 or 3 simulated workers
//! give the same bytes as the in-order fold, and 1 vs 4 shards agree to 1e-6.

use headscan_probe::l1::{L1Options, fit_l1};
use headscan_probe::logreg::{
    Design, FitError, FitOptions, Partial, Weights, balanced_class_weights, fit, partial,
};
use headscan_probe::round::{Accepted, NewtonRound, PartialKey, RoundError, weights_digest};

mod common;
use common::{Stream, designs};

const DIM: usize = 5;

/// `n` rows whose class is the argmax of `n_classes` noisy linear scores.
fn synthetic(n: usize, n_classes: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut g = Stream(seed);
    let a: Vec<Vec<f64>> = (0..n_classes)
        .map(|_| (0..DIM).map(|_| g.normal()).collect())
        .collect();
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let x: Vec<f64> = (0..DIM).map(|_| g.normal()).collect();
        let scores: Vec<f64> = a
            .iter()
            .map(|ac| ac.iter().zip(&x).map(|(p, q)| p * q).sum::<f64>() + 0.5 * g.normal())
            .collect();
        y.push((0..n_classes).fold(0, |b, c| if scores[c] > scores[b] { c } else { b }));
        rows.push(x);
    }
    (rows, y)
}

/// The in-order fold of every shard's partial (the embedded reference).
fn in_order(shards: &[Design], w: &Weights, cw: &[f64]) -> Partial {
    let mut sum = Partial::zeros(w.w.len());
    for s in shards {
        sum.merge(&partial(s, w, cw));
    }
    sum
}

/// Simulated cluster: `workers` workers take shards round-robin and finish
/// in a seeded order; every worker's first task is committed twice (a
/// retry), and the previous round's answer for shard 0 arrives late.
struct Cluster<'a> {
    shards: &'a [Design],
    cw: &'a [f64],
    workers: usize,
    order: Stream,
    evaluation: u32,
    previous: Option<(PartialKey, Partial)>,
}

impl Cluster<'_> {
    fn evaluate(&mut self, w: &Weights) -> Partial {
        let mut round = NewtonRound::new(self.evaluation, w, self.shards.len() as u32);
        self.evaluation += 1;
        let mut queues: Vec<Vec<u32>> = vec![Vec::new(); self.workers];
        for s in 0..self.shards.len() {
            queues[s % self.workers].push(s as u32);
        }
        let mut first = vec![true; self.workers];
        if let Some((key, p)) = self.previous.take() {
            assert!(matches!(round.accept(&key, p), Err(RoundError::Stale { .. })));
        }
        while queues.iter().any(|q| !q.is_empty()) {
            let busy: Vec<usize> = (0..self.workers).filter(|&k| !queues[k].is_empty()).collect();
            let k = busy[(self.order.next_u64() % busy.len() as u64) as usize];
            let shard = queues[k].remove(0);
            let key = round.key(shard);
            let p = partial(&self.shards[shard as usize], w, self.cw);
            if shard == 0 {
                self.previous = Some((key.clone(), p.clone()));
            }
            assert_eq!(round.accept(&key, p.clone()).unwrap(), Accepted::New);
            if first[k] {
                first[k] = false;
                assert_eq!(round.accept(&key, p).unwrap(), Accepted::Duplicate);
            }
        }
        assert!(round.missing().is_empty());
        round.finish().expect("every shard arrived")
    }
}

fn bits(w: &Weights) -> Vec<u64> {
    w.w.iter().map(|v| v.to_bits()).collect()
}

fn fit_cluster(shards: &[Design], n_classes: usize, cw: &[f64], workers: usize, seed: u64) -> Weights {
    let mut c = Cluster {
        shards,
        cw,
        workers,
        order: Stream(seed),
        evaluation: 0,
        previous: None,
    };
    fit(n_classes, DIM, &FitOptions::default(), |w| {
        Ok::<_, FitError>(c.evaluate(w))
    })
    .unwrap()
    .weights
}

#[test]
fn rounds_with_one_or_three_workers_give_the_in_order_bytes() {
    let (rows, y) = synthetic(600, 3, 11);
    let mut counts = [0u64; 3];
    for &c in &y {
        counts[c] += 1;
    }
    let cw = balanced_class_weights(&counts);
    let shards = designs(&rows, &y, 4);
    let reference = fit(3, DIM, &FitOptions::default(), |w| {
        Ok::<_, FitError>(in_order(&shards, w, &cw))
    })
    .unwrap()
    .weights;
    let one = fit_cluster(&shards, 3, &cw, 1, 1);
    let three = fit_cluster(&shards, 3, &cw, 3, 2);
    let three_again = fit_cluster(&shards, 3, &cw, 3, 99);
    assert_eq!(bits(&one), bits(&reference));
    assert_eq!(bits(&three), bits(&reference));
    assert_eq!(bits(&three_again), bits(&reference));
    // The fit learned something: the weights are far from zero.
    assert!(reference.w.iter().any(|v| v.abs() > 0.5), "{:?}", reference.w);
}

#[test]
fn one_and_four_shards_through_rounds_agree_to_1e_6() {
    let (rows, y) = synthetic(500, 2, 5);
    let cw = [1.0, 1.0];
    let one = fit_cluster(&designs(&rows, &y, 1), 2, &cw, 1, 3);
    let four = fit_cluster(&designs(&rows, &y, 4), 2, &cw, 3, 4);
    for (a, b) in one.w.iter().zip(&four.w) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn l1_fit_through_rounds_gives_the_in_order_bytes() {
    let (rows, y) = synthetic(400, 2, 8);
    let cw = [1.0, 1.0];
    let shards = designs(&rows, &y, 4);
    let options = L1Options {
        l1: 2.0,
        ..L1Options::default()
    };
    let reference = fit_l1(DIM, &options, |w| Ok::<_, FitError>(in_order(&shards, w, &cw)))
        .unwrap()
        .weights;
    let mut c = Cluster {
        shards: &shards,
        cw: &cw,
        workers: 3,
        order: Stream(7),
        evaluation: 0,
        previous: None,
    };
    let three = fit_l1(DIM, &options, |w| Ok::<_, FitError>(c.evaluate(w)))
        .unwrap()
        .weights;
    assert_eq!(bits(&three), bits(&reference));
}

#[test]
fn a_round_refuses_wrong_shards_shapes_and_conflicting_retries() {
    let w = Weights::zeros(2, 2);
    let mut round = NewtonRound::new(4, &w, 2);
    let good = Partial::zeros(3);
    assert_eq!(
        round.accept(&round.key(2), good.clone()),
        Err(RoundError::ShardOutOfRange { shard: 2, shards: 2 })
    );
    assert_eq!(
        round.accept(&round.key(0), Partial::zeros(2)),
        Err(RoundError::Shape {
            shard: 0,
            grad: 2,
            hess: 4,
            params: 3
        })
    );
    let mut other = Weights::zeros(2, 2);
    other.w[0] = 1.0;
    assert_ne!(weights_digest(&other), weights_digest(&w));
    let stale = PartialKey {
        digest: weights_digest(&other),
        ..round.key(0)
    };
    assert!(matches!(
        round.accept(&stale, good.clone()),
        Err(RoundError::Stale { .. })
    ));
    let earlier = PartialKey {
        iteration: 3,
        ..round.key(0)
    };
    assert!(matches!(
        round.accept(&earlier, good.clone()),
        Err(RoundError::Stale { .. })
    ));
    // Shard 1 first: it waits; the round is not complete until shard 0.
    let mut one = good.clone();
    one.loss = 2.0;
    assert_eq!(round.accept(&round.key(1), one.clone()), Ok(Accepted::New));
    assert_eq!(round.missing(), vec![0]);
    assert!(!round.complete());
    let mut conflicting = one.clone();
    conflicting.loss = 3.0;
    assert_eq!(
        round.accept(&round.key(1), conflicting),
        Err(RoundError::Conflict {
            shard: 1,
            iteration: 4
        })
    );
    let mut zero = good;
    zero.loss = 1.0;
    zero.grad[2] = 0.25;
    assert_eq!(round.accept(&round.key(0), zero), Ok(Accepted::New));
    assert!(round.complete());
    let sum = round.finish().unwrap();
    assert_eq!((sum.loss, sum.grad[2]), (3.0, 0.25));
}
