//! Statistics against fixed expected numbers computed once with statsmodels,
//! scipy, numpy and Biopython by `tests/stats/make_expected.py` (committed
//! with its output `tests/stats/expected.json`; no Python runs here).

use headscan_proto::pb::{FeatureCounts, HeadCounts, PartialCounts};
use serde_json::Value;

use super::{AnalysisResults, StatsOptions, blosum, compute, normal};

/// Relative tolerance (and absolute tolerance near 0, except for p-values).
const TOL: f64 = 1e-12;

fn expected() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/stats/expected.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("expected.json parses")
}

/// A float of expected.json: a number, or "NaN" / "inf" / "-inf".
fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("f64"),
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => panic!("not a float: {other}"),
    }
}

fn int(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

fn close(got: f64, want: f64, relative_only: bool) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got == want {
        return true;
    }
    let diff = (got - want).abs();
    diff <= TOL * got.abs().max(want.abs()) || (!relative_only && diff <= TOL)
}

/// Collects every mismatch so that a failure lists them all.
#[derive(Default)]
struct Check {
    errors: Vec<String>,
    compared: usize,
}

impl Check {
    fn float(&mut self, at: &str, got: f64, want: &Value, relative_only: bool) {
        self.compared += 1;
        let want = num(want);
        if !close(got, want, relative_only) {
            self.errors.push(format!("{at}: got {got:e}, want {want:e}"));
        }
    }

    fn exact<T: PartialEq + std::fmt::Debug>(&mut self, at: &str, got: T, want: T) {
        self.compared += 1;
        if got != want {
            self.errors.push(format!("{at}: got {got:?}, want {want:?}"));
        }
    }

    fn len(&mut self, at: &str, got: usize, want: &Value) -> bool {
        let want = want.as_array().map_or(usize::MAX, Vec::len);
        self.exact(&format!("{at}.len"), got, want);
        got == want
    }

    fn finish(self, what: &str) {
        assert!(self.compared > 0, "{what}: nothing compared");
        assert!(
            self.errors.is_empty(),
            "{what}: {} mismatches:\n{}",
            self.errors.len(),
            self.errors.join("\n")
        );
    }
}

/// Compares the listed fields of a struct with a JSON object: `f` floats, `p`
/// floats compared relatively only, `u` unsigned integers, `s` strings, `b` bools.
macro_rules! fields {
    ($c:expr, $at:expr, $got:expr, $want:expr;
     f: [$($f:ident),*]; p: [$($p:ident),*]; u: [$($u:ident),*]; s: [$($s:ident),*]; b: [$($b:ident),*]) => {{
        let (got, want, at) = (&$got, &$want, &$at);
        $( $c.float(&format!("{at}.{}", stringify!($f)), got.$f, &want[stringify!($f)], false); )*
        $( $c.float(&format!("{at}.{}", stringify!($p)), got.$p, &want[stringify!($p)], true); )*
        $( $c.exact(&format!("{at}.{}", stringify!($u)), u64::from(got.$u), int(&want[stringify!($u)])); )*
        $( $c.exact(&format!("{at}.{}", stringify!($s)), got.$s.as_str(), want[stringify!($s)].as_str().unwrap_or("?")); )*
        $( $c.exact(&format!("{at}.{}", stringify!($b)), got.$b, want[stringify!($b)].as_bool().expect("bool")); )*
    }};
}

/// A fixed-point field from an f64 (what the engine sends).
fn fx(x: f64) -> Option<headscan_proto::pb::Fixed128> {
    headscan_proto::pb::Fixed128::from_f64(x)
}

fn partial(v: &Value) -> PartialCounts {
    let heads = |f: &Value| -> Vec<HeadCounts> {
        f["heads"]
            .as_array()
            .expect("heads")
            .iter()
            .map(|h| HeadCounts {
                arcs: int(&h["arcs"]),
                hits: int(&h["hits"]),
                attn_mass: fx(num(&h["attn_mass"])),
                weighted_hits: fx(num(&h["weighted_hits"])),
                null_hits: h["null_hits"]
                    .as_array()
                    .expect("null_hits")
                    .iter()
                    .map(int)
                    .collect(),
                null_exact_mean: fx(num(&h["null_exact_mean"])),
                null_exact_var: fx(num(&h["null_exact_var"])),
                // Not in expected.json: the weighted closed form is checked in worker tests.
                null_weighted_exact_mean: None,
                null_weighted_exact_var: None,
                // expected.json's per-sample `null_weighted_hits` are ignored: the
                // weighted null is closed form only (DESIGN §1).
                ..Default::default()
            })
            .collect()
    };
    PartialCounts {
        n_layers: int(&v["n_layers"]) as u32,
        n_heads: int(&v["n_heads"]) as u32,
        null_samples: int(&v["null_samples"]) as u32,
        sequences: int(&v["sequences"]),
        residues: int(&v["residues"]),
        visualized: Vec::new(),
        features: v["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| FeatureCounts {
                feature: f["feature"].as_str().expect("feature").to_string(),
                background_hits: int(&f["background_hits"]),
                background_total: int(&f["background_total"]),
                heads: heads(f),
            })
            .collect(),
    }
}

fn options(v: &Value) -> StatsOptions {
    StatsOptions {
        min_arcs: int(&v["min_arcs"]),
        alpha: num(&v["alpha"]),
        top_k: int(&v["top_k"]) as usize,
    }
}

fn compare(c: &mut Check, case: &str, got: &AnalysisResults, want: &Value) {
    fields!(c, case, got, want; f: []; p: []; u: [n_layers, n_heads, sequences, residues]; s: []; b: []);
    if c.len(&format!("{case}.heads"), got.heads.len(), &want["heads"]) {
        for (i, (g, w)) in got
            .heads
            .iter()
            .zip(want["heads"].as_array().expect("heads"))
            .enumerate()
        {
            fields!(c, format!("{case}.heads[{i}] {} {}.{}", g.feature, g.layer, g.head), g, w;
                f: [proportion, attn_mass, weighted_hits, weighted_proportion, background_rate, enrichment, ci_low,
                    ci_high, z, null_mean, null_std, null_p_value, null_mean_exact, null_std_exact];
                p: [p_value];
                u: [layer, head, arcs, hits, background_hits, background_total];
                s: [feature];
                b: [significant, excluded]);
        }
    }
    if c.len(&format!("{case}.layers"), got.layers.len(), &want["layers"]) {
        for (i, (g, w)) in got
            .layers
            .iter()
            .zip(want["layers"].as_array().expect("layers"))
            .enumerate()
        {
            fields!(c, format!("{case}.layers[{i}]"), g, w;
                f: [mean_proportion, max_proportion]; p: []; u: [layer, heads_included]; s: [feature]; b: []);
        }
    }
    if c.len(&format!("{case}.null"), got.null.len(), &want["null"]) {
        for (i, (g, w)) in got
            .null
            .iter()
            .zip(want["null"].as_array().expect("null"))
            .enumerate()
        {
            fields!(c, format!("{case}.null[{i}]"), g, w;
                f: []; p: []; u: [layer, head, sample, hits]; s: [feature]; b: []);
        }
    }
    if c.len(
        &format!("{case}.aa_similarity"),
        got.aa_similarity.len(),
        &want["aa_similarity"],
    ) {
        for (i, (g, w)) in got
            .aa_similarity
            .iter()
            .zip(want["aa_similarity"].as_array().expect("aa"))
            .enumerate()
        {
            fields!(c, format!("{case}.aa_similarity[{i}]"), g, w;
                f: [attention_r, blosum62]; p: []; u: []; s: [aa_a, aa_b]; b: []);
        }
    }
    match (got.blosum62_pearson_r, &want["blosum62_pearson_r"]) {
        (None, Value::Null) => c.exact(&format!("{case}.blosum62_pearson_r"), true, true),
        (Some(r), w) if !w.is_null() => c.float(&format!("{case}.blosum62_pearson_r"), r, w, false),
        (g, w) => c
            .errors
            .push(format!("{case}.blosum62_pearson_r: got {g:?}, want {w}")),
    }
    if c.len(&format!("{case}.features"), got.features.len(), &want["features"]) {
        for (i, (g, w)) in got
            .features
            .iter()
            .zip(want["features"].as_array().expect("features"))
            .enumerate()
        {
            let at = format!("{case}.features[{i}] {}", g.feature);
            fields!(c, at, g, w;
                f: [background_rate, center_of_gravity]; p: []; u: [heads_included, heads_significant];
                s: [feature]; b: []);
            if c.len(&format!("{at}.top_heads"), g.top_heads.len(), &w["top_heads"]) {
                for (j, (gt, wt)) in g
                    .top_heads
                    .iter()
                    .zip(w["top_heads"].as_array().expect("top"))
                    .enumerate()
                {
                    fields!(c, format!("{at}.top_heads[{j}]"), gt, wt;
                        f: [proportion, ci_low, ci_high]; p: []; u: [layer, head]; s: []; b: []);
                }
            }
        }
    }
}

#[test]
fn stats_match_statsmodels_and_scipy() {
    let doc = expected();
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 5, "expected.json holds {} cases", cases.len());
    let mut c = Check::default();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let got = compute(&partial(&case["input"]), &options(&case["options"]));
        compare(
            &mut c,
            name.split(':').next().unwrap_or(name),
            &got,
            &case["expected"],
        );
    }
    c.finish("statistics vs expected.json");
}

#[test]
fn stats_normal_tails_match_scipy() {
    let doc = expected();
    let mut c = Check::default();
    for pair in doc["normal"]["sf"].as_array().expect("sf") {
        let x = num(&pair[0]);
        c.float(&format!("norm.sf({x})"), normal::norm_sf(x), &pair[1], true);
    }
    for pair in doc["normal"]["isf"].as_array().expect("isf") {
        let q = num(&pair[0]);
        c.float(&format!("norm.isf({q})"), normal::norm_isf(q), &pair[1], false);
    }
    c.finish("normal tails vs scipy");
}

#[test]
fn stats_normal_special_values() {
    assert!(normal::erfc(f64::NAN).is_nan());
    assert_eq!(normal::erfc(0.0), 1.0);
    assert_eq!(normal::erfc(f64::INFINITY), 0.0);
    assert_eq!(normal::erfc(f64::NEG_INFINITY), 2.0);
    assert_eq!(normal::norm_sf(f64::INFINITY), 0.0);
    assert_eq!(normal::norm_isf(0.0), f64::INFINITY);
    assert_eq!(normal::norm_isf(1.0), f64::NEG_INFINITY);
    assert!(
        normal::norm_isf(1.5).is_nan()
            && normal::norm_isf(-0.1).is_nan()
            && normal::norm_isf(f64::NAN).is_nan()
    );
    assert!(normal::norm_isf(f64::MIN_POSITIVE).is_finite());
    assert!(normal::norm_isf(5e-324).is_finite());
    // Symmetry, and agreement of Φ with Φ⁻¹ across the range.
    for &q in &[1e-300, 1e-30, 1e-8, 0.001, 0.02425, 0.3, 0.5] {
        let z = normal::norm_isf(q);
        assert!(
            (normal::norm_sf(z) - q).abs() <= 1e-12 * q,
            "sf(isf({q})) = {}",
            normal::norm_sf(z)
        );
        assert!((normal::ndtri(q) + z).abs() <= 1e-15 * z.abs().max(1.0));
    }
}

#[test]
fn stats_blosum62_is_symmetric_in_standard_order() {
    assert_eq!(blosum::ORDER, headscan_proto::features::STANDARD_AMINO_ACIDS);
    for i in 0..20 {
        for j in 0..20 {
            assert_eq!(blosum::BLOSUM62[i][j], blosum::BLOSUM62[j][i]);
        }
    }
    assert_eq!(blosum::BLOSUM62[18][18], 11); // W/W
    assert_eq!(blosum::BLOSUM62[0][0], 4); // A/A
}

#[test]
fn stats_never_panic_on_degenerate_inputs() {
    let head = |arcs: u64, hits: u64| HeadCounts {
        arcs,
        hits,
        attn_mass: fx(0.0),
        weighted_hits: fx(0.0),
        null_hits: vec![u64::MAX, 0],
        null_weighted_hits: vec![],
        null_exact_mean: None,
        null_exact_var: fx(-1.0),
        null_weighted_exact_mean: None,
        null_weighted_exact_var: fx(-1.0),
    };
    let feature = |name: &str, bh: u64, bt: u64, heads: Vec<HeadCounts>| FeatureCounts {
        feature: name.to_string(),
        background_hits: bh,
        background_total: bt,
        heads,
    };
    let shapes = [(0, 0), (0, 3), (3, 0), (2, 2), (1, 5)];
    let alphas = [0.0, 1.0, 2.0, -1.0, f64::NAN, f64::INFINITY, 0.05];
    for (n_layers, n_heads) in shapes {
        for alpha in alphas {
            for top_k in [0, 1, usize::MAX] {
                let counts = PartialCounts {
                    n_layers,
                    n_heads,
                    null_samples: 2,
                    sequences: u64::MAX,
                    residues: 0,
                    visualized: Vec::new(),
                    features: vec![
                        feature(
                            "contact",
                            u64::MAX,
                            u64::MAX,
                            vec![head(u64::MAX, u64::MAX), head(0, 0), head(1, 5)],
                        ),
                        feature("aa:A", 0, 0, vec![]),
                        feature("", 5, 0, vec![head(0, 0); 9]),
                    ],
                };
                for min_arcs in [0, 1, u64::MAX] {
                    let r = compute(
                        &counts,
                        &StatsOptions {
                            min_arcs,
                            alpha,
                            top_k,
                        },
                    );
                    assert_eq!(r.features.len(), 3);
                    assert_eq!(r.layers.len(), 3 * n_layers as usize);
                    assert!(r.heads.len() <= 3 * (n_layers * n_heads) as usize);
                    assert!(r.aa_similarity.is_empty() && r.blosum62_pearson_r.is_none());
                }
            }
        }
    }
    let empty = compute(&PartialCounts::default(), &StatsOptions::default());
    assert!(empty.heads.is_empty() && empty.features.is_empty() && empty.layers.is_empty());
}

#[test]
fn stats_weighted_null_is_on_the_weighted_proportion_scale() {
    let head = |mass: f64, weighted: f64, mean: f64, var: f64| HeadCounts {
        arcs: 10,
        hits: 1,
        attn_mass: fx(mass),
        weighted_hits: fx(weighted),
        null_weighted_exact_mean: fx(mean),
        null_weighted_exact_var: fx(var),
        ..Default::default()
    };
    let counts = PartialCounts {
        n_layers: 1,
        n_heads: 5,
        null_samples: 0,
        sequences: 1,
        residues: 4,
        visualized: Vec::new(),
        features: vec![FeatureCounts {
            feature: "binding_site".into(),
            background_hits: 1,
            background_total: 4,
            heads: vec![
                // mass 2: proportion 0.5, null mean 0.3, null std 0.1 → z = 2.
                head(2.0, 1.0, 0.6, 0.04),
                // A zero null variance (the feature on every key) has no z.
                head(2.0, 2.0, 2.0, 0.0),
                // Rounding below zero counts as zero.
                head(2.0, 1.0, 1.0, -1e-18),
                // No attention mass: nothing is defined.
                head(0.0, 0.0, 0.0, 0.0),
                // Below the mean.
                head(4.0, 0.4, 1.2, 0.16),
            ],
        }],
    };
    let r = compute(&counts, &StatsOptions::default());
    let h = &r.heads;
    assert!((h[0].weighted_proportion - 0.5).abs() < 1e-15);
    assert!((h[0].null_weighted_mean_exact - 0.3).abs() < 1e-15);
    assert!((h[0].null_weighted_std_exact - 0.1).abs() < 1e-15);
    assert!(
        (h[0].null_weighted_z - 2.0).abs() < 1e-12,
        "{}",
        h[0].null_weighted_z
    );
    assert_eq!(h[1].null_weighted_std_exact, 0.0);
    assert!(h[1].null_weighted_z.is_nan());
    assert_eq!(h[2].null_weighted_std_exact, 0.0);
    assert!(h[2].null_weighted_z.is_nan());
    assert!(h[3].null_weighted_mean_exact.is_nan() && h[3].null_weighted_z.is_nan());
    // (0.1 − 0.3) / 0.1.
    assert!(
        (h[4].null_weighted_z + 2.0).abs() < 1e-12,
        "{}",
        h[4].null_weighted_z
    );
}
