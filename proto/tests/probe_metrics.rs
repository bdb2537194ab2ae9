//! Probe metrics against values computed by hand on small fixed examples.

use headscan_proto::probe_metrics::{
    ClassCounts, ContactRange, MetricError, PrecisionCounts, contact_precision_at, f1_metric_name,
    precision_metric_name, token_precision_at,
};

fn counts(n: usize, truth: &[usize], pred: &[usize]) -> ClassCounts {
    let mut c = ClassCounts::new(n);
    for (&t, &p) in truth.iter().zip(pred) {
        c.add(t, p).unwrap();
    }
    c
}

#[test]
fn f1_per_class_and_macro_by_hand() {
    // class 0: tp 1, fp 1 (index 4), fn 1 (index 1) → 2/4
    // class 1: tp 2, fp 1 (index 1), fn 0           → 4/5
    // class 2: tp 1, fp 0, fn 1 (index 4)           → 2/3
    let c = counts(3, &[0, 0, 1, 1, 2, 2], &[0, 1, 1, 1, 0, 2]);
    assert_eq!(c.tp, vec![1, 2, 1]);
    assert_eq!(c.fp, vec![1, 1, 0]);
    assert_eq!(c.fn_, vec![1, 0, 1]);
    assert!((c.f1(0) - 0.5).abs() < 1e-12);
    assert!((c.f1(1) - 0.8).abs() < 1e-12);
    assert!((c.f1(2) - 2.0 / 3.0).abs() < 1e-12);
    let macro_f1 = (0.5 + 0.8 + 2.0 / 3.0) / 3.0;
    assert!((c.f1_macro() - macro_f1).abs() < 1e-12);
}

#[test]
fn macro_f1_skips_classes_never_seen_and_counts_missed_ones_as_zero() {
    // Four classes; class 3 appears nowhere, class 2 only in truth (never predicted).
    let c = counts(4, &[0, 1, 2], &[0, 1, 1]);
    assert_eq!(c.f1(2), 0.0);
    assert!(!c.seen(3));
    // class 0: 1; class 1: tp 1, fp 1 → 2/3; class 2: 0.
    assert!((c.f1_macro() - (1.0 + 2.0 / 3.0 + 0.0) / 3.0).abs() < 1e-12);
    assert_eq!(ClassCounts::new(2).f1_macro(), 0.0);
}

#[test]
fn class_counts_merge_equals_counting_all_at_once() {
    let truth = [0, 0, 1, 1, 2, 2, 3, 1];
    let pred = [0, 1, 1, 3, 0, 2, 3, 1];
    let whole = counts(4, &truth, &pred);
    let mut merged = counts(4, &truth[..3], &pred[..3]);
    merged.merge(&counts(4, &truth[3..], &pred[3..])).unwrap();
    assert_eq!(whole, merged);
    assert_eq!(
        merged.merge(&ClassCounts::new(3)),
        Err(MetricError::ClassCountMismatch(4, 3))
    );
    assert!(ClassCounts::new(2).add(2, 0).is_err());
}

#[test]
fn token_precision_at_l_over_k_by_hand() {
    // L = 10, k = 5 → the top 2 residues.
    let scores = [0.9, 0.1, 0.8, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2];
    let mut labels = [false; 10];
    labels[0] = true;
    labels[3] = true;
    let all = [true; 10];
    let p = token_precision_at(&scores, &labels, &all, 5).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 1,
            selected: 2
        }
    ); // picks 0 and 2
    assert_eq!(p.precision(), Some(0.5));
    // Residue 2 has no label: the top 2 become 0 and 3.
    let mut valid = all;
    valid[2] = false;
    let p = token_precision_at(&scores, &labels, &valid, 5).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 2,
            selected: 2
        }
    );
    // L/20 of a 10-residue sequence selects nothing.
    let p = token_precision_at(&scores, &labels, &all, 20).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 0,
            selected: 0
        }
    );
    assert_eq!(p.precision(), None);
}

#[test]
fn token_precision_is_micro_averaged_and_ties_go_to_the_lower_index() {
    // 20 equal scores: L/20 = 1 picks residue 0.
    let scores = [0.5; 20];
    let mut labels = [false; 20];
    labels[0] = true;
    let a = token_precision_at(&scores, &labels, &[true; 20], 20).unwrap();
    assert_eq!(
        a,
        PrecisionCounts {
            correct: 1,
            selected: 1
        }
    );
    labels[0] = false;
    labels[19] = true;
    let b = token_precision_at(&scores, &labels, &[true; 20], 4).unwrap();
    assert_eq!(
        b,
        PrecisionCounts {
            correct: 0,
            selected: 5
        }
    );
    let mut total = a;
    total.merge(b);
    // (1 + 0) / (1 + 5), not the mean of 1 and 0.
    assert!((total.precision().unwrap() - 1.0 / 6.0).abs() < 1e-12);
}

fn contact_example() -> (usize, Vec<f64>, Vec<Option<bool>>) {
    let l = 30;
    let mut scores = vec![0.0; l * l];
    let mut labels = vec![Some(false); l * l];
    scores[10] = 0.9; // (0,10) separation 10: short, a contact
    scores[20] = 0.8; // (0,20) separation 20: medium, not a contact
    scores[29] = 0.7; // (0,29) separation 29: long, a contact
    scores[l + 3] = 1.0; // (1,3) separation 2: never scored
    scores[10 * l] = 5.0; // (10,0): lower triangle, never read
    labels[10] = Some(true);
    labels[29] = Some(true);
    labels[l + 3] = Some(true);
    (l, scores, labels)
}

#[test]
fn contact_precision_by_hand() {
    let (l, scores, labels) = contact_example();
    // L/5 = 6 pairs with |i−j| ≥ 6: (0,10), (0,20), (0,29), then the ties
    // (0,6), (0,7), (0,8) → 2 of 6.
    let p = contact_precision_at(&scores, &labels, l, 5, ContactRange::All).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 2,
            selected: 6
        }
    );
    // Long range, L = 30: there are only 21 long pairs (6+5+4+3+2+1); (0,29) is the one contact.
    let p = contact_precision_at(&scores, &labels, l, 1, ContactRange::Long).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 1,
            selected: 21
        }
    );
    // Short range, L/2 = 15: (0,10) first → 1 of 15.
    let p = contact_precision_at(&scores, &labels, l, 2, ContactRange::Short).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 1,
            selected: 15
        }
    );
    // Medium range, L/5: (0,20) is top but no contact.
    let p = contact_precision_at(&scores, &labels, l, 5, ContactRange::Medium).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 0,
            selected: 6
        }
    );
}

#[test]
fn contact_pairs_of_unknown_label_are_never_selected() {
    let (l, scores, mut labels) = contact_example();
    labels[10] = None;
    // Top 6 now: (0,20), (0,29), (0,6), (0,7), (0,8), (0,9) → 1 contact.
    let p = contact_precision_at(&scores, &labels, l, 5, ContactRange::All).unwrap();
    assert_eq!(
        p,
        PrecisionCounts {
            correct: 1,
            selected: 6
        }
    );
}

#[test]
fn range_buckets_and_metric_names() {
    assert!(!ContactRange::All.contains(5));
    assert!(ContactRange::All.contains(6));
    assert!(ContactRange::Short.contains(6) && ContactRange::Short.contains(11));
    assert!(!ContactRange::Short.contains(12));
    assert!(ContactRange::Medium.contains(12) && ContactRange::Medium.contains(23));
    assert!(!ContactRange::Medium.contains(24));
    assert!(ContactRange::Long.contains(24) && !ContactRange::Long.contains(23));
    assert_eq!(precision_metric_name(1, ContactRange::All), "precision_at_L");
    assert_eq!(
        precision_metric_name(2, ContactRange::Short),
        "precision_at_L/2:short"
    );
    assert_eq!(
        precision_metric_name(5, ContactRange::Long),
        "precision_at_L/5:long"
    );
    assert_eq!(precision_metric_name(20, ContactRange::All), "precision_at_L/20");
    assert_eq!(f1_metric_name("helix"), "f1:helix");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    assert_eq!(
        token_precision_at(&[0.1], &[true, false], &[true, true], 5),
        Err(MetricError::LengthMismatch {
            what: "token scores",
            scores: 1,
            labels: 2
        })
    );
    assert_eq!(
        token_precision_at(&[0.1, f64::NAN], &[true, false], &[true, true], 1),
        Err(MetricError::NaN {
            what: "token scores",
            index: 1
        })
    );
    assert_eq!(token_precision_at(&[], &[], &[], 0), Err(MetricError::ZeroK));
    assert!(contact_precision_at(&[0.0; 4], &[Some(false); 3], 2, 1, ContactRange::All).is_err());
}

#[test]
fn contact_range_names_round_trip() {
    use headscan_proto::probe_metrics::ContactRange;
    for r in ContactRange::ALL {
        assert_eq!(ContactRange::from_name(r.name()), Some(r));
    }
    assert_eq!(ContactRange::Long.name(), "long");
    assert_eq!(ContactRange::from_name("far"), None);
}
