//! The coordinator's fold of a probe stage: shard results are taken in
//! shard order only, sums are exact for counts and in shard order for
//! gradients, and a result that does not fit the stage (other weights, other
//! shapes) is refused with the shard named.

use headscan_coordinator::probe::fold::{FoldError, ProbeFold};
use headscan_coordinator::probe::logreg::Weights;
use headscan_coordinator::probe::round::{RoundError, weights_digest};
use headscan_proto::pb::probe_stage::Kind;
use headscan_proto::pb::{ExtractedShard, PrecisionCount, ProbeResult, ProbeStage};

fn stage(kind: Kind) -> ProbeStage {
    ProbeStage {
        kind: kind as i32,
        n_classes: 2,
        dim: 1,
        weights: vec![0.5, -0.25],
        iteration: 3,
        ..ProbeStage::default()
    }
}

#[test]
fn counts_add_in_shard_order_only() {
    let mut f = ProbeFold::new(&stage(Kind::Count), 2).unwrap();
    let r = |a, b| ProbeResult {
        records: 1,
        class_counts: vec![a, b],
        ..ProbeResult::default()
    };
    assert!(matches!(
        f.push(1, r(1, 1)),
        Err(FoldError::Shard { shard: 1, .. })
    ));
    f.push(0, r(3, 1)).unwrap();
    let err = f.push(
        1,
        ProbeResult {
            class_counts: vec![1],
            ..ProbeResult::default()
        },
    );
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("1 class count values, expected 2")
    );
    let mut f = ProbeFold::new(&stage(Kind::Count), 2).unwrap();
    f.push(0, r(3, 1)).unwrap();
    assert!(
        ProbeFold::new(&stage(Kind::Count), 2).unwrap().finish().is_err(),
        "incomplete"
    );
    f.push(1, r(2, 5)).unwrap();
    let out = f.finish().unwrap();
    assert_eq!((out.class_counts, out.records), (vec![5, 6], 2));
}

#[test]
fn gradients_must_come_from_the_stage_weights() {
    let s = stage(Kind::Gradient);
    let w = Weights {
        n_classes: 2,
        dim: 1,
        w: s.weights.clone(),
    };
    let part = |digest: String, g: f64| ProbeResult {
        weights_digest: digest,
        loss: g,
        grad: vec![g, 2.0 * g],
        hess: vec![g, 0.0, 0.0, g],
        ..ProbeResult::default()
    };
    let mut f = ProbeFold::new(&s, 2).unwrap();
    f.push(0, part(weights_digest(&w), 1.0)).unwrap();
    let other = Weights {
        w: vec![0.0, 0.0],
        ..w.clone()
    };
    let err = f.push(1, part(weights_digest(&other), 2.0)).unwrap_err();
    assert!(
        matches!(err, FoldError::Round(RoundError::Stale { shard: 1, .. })),
        "{err}"
    );

    let mut f = ProbeFold::new(&s, 2).unwrap();
    f.push(0, part(weights_digest(&w), 1.0)).unwrap();
    f.push(1, part(weights_digest(&w), 2.0)).unwrap();
    let out = f.finish().unwrap();
    assert_eq!(out.weights_digest, weights_digest(&w));
    assert_eq!(
        (out.loss, out.grad, out.hess),
        (3.0, vec![3.0, 6.0], vec![3.0, 0.0, 0.0, 3.0])
    );

    let bad = ProbeStage {
        weights: vec![1.0],
        ..s
    };
    assert!(matches!(ProbeFold::new(&bad, 1), Err(FoldError::Stage(_))));
}

#[test]
fn scores_merge_by_k_and_range() {
    let p = |k, range: &str, c, s| PrecisionCount {
        k,
        range: range.into(),
        correct: c,
        selected: s,
    };
    let mut f = ProbeFold::new(&stage(Kind::Score), 2).unwrap();
    f.push(
        0,
        ProbeResult {
            n_eval: 10,
            precision: vec![p(5, "all", 1, 2), p(5, "long", 0, 1)],
            ..ProbeResult::default()
        },
    )
    .unwrap();
    let swapped = ProbeResult {
        precision: vec![p(5, "long", 1, 1), p(5, "all", 1, 1)],
        ..ProbeResult::default()
    };
    let err = f.push(1, swapped).unwrap_err().to_string();
    assert!(err.contains("shard 1") && err.contains("L/5 long"), "{err}");
    let mut f = ProbeFold::new(&stage(Kind::Score), 1).unwrap();
    f.push(
        0,
        ProbeResult {
            n_eval: 4,
            true_pos: vec![1, 2],
            false_pos: vec![0, 1],
            false_neg: vec![1, 0],
            ..ProbeResult::default()
        },
    )
    .unwrap();
    let out = f.finish().unwrap();
    assert_eq!((out.n_eval, out.true_pos), (4, vec![1, 2]));
}

#[test]
fn extracted_tables_concatenate_and_the_model_shape_must_agree() {
    let shard = |i: u32, dim: u32| ProbeResult {
        records: 2,
        rows: 10,
        layers: vec![0, 1],
        dim,
        heads: 4,
        n_layers: 2,
        embedding_shards: vec![ExtractedShard {
            url: format!("shards/part-{i:05}.parquet"),
            ..ExtractedShard::default()
        }],
        ..ProbeResult::default()
    };
    let mut f = ProbeFold::new(&stage(Kind::Extract), 2).unwrap();
    f.push(0, shard(0, 8)).unwrap();
    f.push(1, shard(1, 8)).unwrap();
    let out = f.finish().unwrap();
    let urls: Vec<&str> = out.embedding_shards.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, ["shards/part-00000.parquet", "shards/part-00001.parquet"]);
    assert_eq!((out.records, out.rows, out.dim), (4, 20, 8));
    let mut f = ProbeFold::new(&stage(Kind::Extract), 2).unwrap();
    f.push(0, shard(0, 8)).unwrap();
    assert!(
        f.push(1, shard(1, 16))
            .unwrap_err()
            .to_string()
            .contains("differs from shard 0")
    );
    assert!(
        ProbeFold::new(&ProbeStage::default(), 1).is_err(),
        "a stage needs a kind"
    );
}
