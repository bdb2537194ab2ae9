//! Tests of the interactive report: which features get static figures, the
//! numbers in data.js, and the size of a large job's report.

use super::{FIGURE_FEATURES, ReportContext, write_report};
use crate::stats::{AnalysisResults, FeatureSummary, HeadRow, LayerRow, TopHead};

/// A synthetic job: `features` features over layers × heads, every head
/// included, feature k's best head at (k mod layers, k mod heads).
fn synthetic(layers: u32, heads: u32, features: usize) -> AnalysisResults {
    let mut r = AnalysisResults {
        n_layers: layers,
        n_heads: heads,
        sequences: 5000,
        residues: 1_000_000,
        heads: Vec::new(),
        layers: Vec::new(),
        null: Vec::new(),
        aa_similarity: Vec::new(),
        blosum62_pearson_r: None,
        features: Vec::new(),
    };
    for k in 0..features {
        let name = format!("site:feature{k}");
        let bg = 0.01 + 0.001 * k as f64;
        let mut best = (0, 0, 0.0f64);
        for l in 0..layers {
            for h in 0..heads {
                let arcs = 1000 + u64::from(l * 37 + h * 11 + k as u32 * 3) % 5000;
                let hits = (arcs * u64::from((l * 7 + h * 13 + k as u32) % 97)) / 200;
                let p = hits as f64 / arcs as f64;
                if p > best.2 {
                    best = (l, h, p);
                }
                r.heads.push(HeadRow {
                    feature: name.clone(),
                    layer: l,
                    head: h,
                    arcs,
                    hits,
                    proportion: p,
                    attn_mass: arcs as f64 * 0.7,
                    weighted_hits: hits as f64 * 0.9,
                    weighted_proportion: p * 0.95,
                    background_hits: 123_456,
                    background_total: 9_876_543,
                    background_rate: bg,
                    enrichment: p / bg,
                    ci_low: (p - 0.0123).max(0.0),
                    ci_high: (p + 0.0123).min(1.0),
                    z: (p - bg) * 31.7,
                    p_value: (-(p * 40.0)).exp() / 3.0,
                    significant: p > 0.3 + 0.01 * k as f64,
                    excluded: false,
                    null_mean: bg * 1.01,
                    null_std: 0.00321,
                    null_p_value: 1.0 / 101.0,
                    null_mean_exact: bg,
                    null_std_exact: 0.003_14,
                    null_weighted_mean_exact: bg * 0.99,
                    null_weighted_std_exact: 0.002_71,
                    null_weighted_z: (p - bg) / 0.002_71,
                });
            }
            r.layers.push(LayerRow {
                feature: name.clone(),
                layer: l,
                mean_proportion: 0.1 + 0.001 * l as f64,
                max_proportion: 0.4,
                heads_included: heads,
            });
        }
        let significant = r
            .heads
            .iter()
            .filter(|h| h.feature == name && h.significant)
            .count();
        r.features.push(FeatureSummary {
            feature: name,
            background_rate: bg,
            center_of_gravity: layers as f64 / 2.0,
            heads_included: layers * heads,
            heads_significant: significant as u32,
            top_heads: vec![TopHead {
                layer: best.0,
                head: best.1,
                proportion: best.2,
                ci_low: best.2 - 0.01,
                ci_high: best.2 + 0.01,
            }],
        });
    }
    r
}

fn context() -> ReportContext {
    ReportContext {
        title: "synthetic".into(),
        notes: vec![],
        threshold: 0.3,
        min_arcs: 100,
        ..Default::default()
    }
}

#[test]
fn a_30_layer_16_head_25_feature_report_is_under_5_mb() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&synthetic(30, 16, 25), &context(), dir.path()).unwrap();
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    eprintln!("30 x 16 x 25 report: {total} bytes in {} files", files.len());
    assert!(total < 5_000_000, "report is {total} bytes");
    // Static figures only for the chosen features, not a wall of files.
    let heatmaps = files
        .iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with("heatmap_"))
        .count();
    assert_eq!(heatmaps, 2 * FIGURE_FEATURES, "PNG + SVG per chosen feature");
    assert!(files.len() <= 6 * FIGURE_FEATURES + 5, "{} files", files.len());
}

#[test]
fn figures_go_to_the_features_with_the_most_significant_heads() {
    let mut r = synthetic(4, 3, 9);
    // Feature 7 gets the most significant heads, feature 2 the next.
    for h in r.heads.iter_mut() {
        if h.feature == "site:feature7" || (h.feature == "site:feature2" && h.layer < 2) {
            h.significant = true;
        }
    }
    r.features[7].heads_significant = 12;
    r.features[2].heads_significant = 8;
    let dir = tempfile::tempdir().unwrap();
    write_report(&r, &context(), dir.path()).unwrap();
    assert!(dir.path().join("heatmap_site-feature7.png").is_file());
    assert!(dir.path().join("heatmap_site-feature2.svg").is_file());
    let with: usize = (0..9)
        .filter(|k| dir.path().join(format!("heatmap_site-feature{k}.svg")).is_file())
        .count();
    assert_eq!(with, FIGURE_FEATURES);
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.contains("src=\"heatmap_site-feature7.svg\""));
    // Every feature is in the explorer's data, with or without figures.
    let js = std::fs::read_to_string(dir.path().join("data.js")).unwrap();
    for k in 0..9 {
        assert!(js.contains(&format!("\"name\":\"site:feature{k}\"")));
    }
    assert_eq!(js.matches("\"figures\":true").count(), FIGURE_FEATURES);
}

#[test]
fn data_js_numbers_keep_the_digits_the_pages_show_and_nan_is_null() {
    let mut r = synthetic(2, 2, 1);
    r.heads[0].proportion = 0.123_456_789;
    r.heads[1].proportion = f64::NAN;
    r.heads[2].proportion = 0.0;
    r.heads[3].p_value = 1.234_567e-300;
    let dir = tempfile::tempdir().unwrap();
    write_report(&r, &context(), dir.path()).unwrap();
    let js = std::fs::read_to_string(dir.path().join("data.js")).unwrap();
    let json: serde_json::Value = serde_json::from_str(
        js.strip_prefix("window.HEADSCAN=")
            .unwrap()
            .trim_end()
            .strip_suffix(';')
            .unwrap(),
    )
    .unwrap();
    let f = &json["features"][0];
    assert_eq!(f["p"][0].as_f64(), Some(0.123457));
    assert!(f["p"][1].is_null());
    assert_eq!(f["p"][2].as_f64(), Some(0.0));
    assert!(js.contains("1.23457e-300"), "tiny p-values keep their exponent");
    assert_eq!(json["n_layers"], 2);
}

/// Ten 300-residue sequences with 100 stored heads each and one arc ≥ 0.1 per
/// query row (attention rows sum to 1, so a row holds at most ten; trained
/// heads mostly hold one or two).
fn ten_sequences() -> Vec<super::sequences::SequenceView> {
    (0..10)
        .map(|s| {
            let n = 300u32;
            super::sequences::SequenceView {
                id: format!("P{s:05}_A"),
                sequence: "ACDEFGHIKLMNPQRSTVWY".repeat(15),
                ca: (0..3 * n).map(|k| (k as f32 * 1.37).sin() * 20.0).collect(),
                binding_sites: vec![3, 40, 41, 200],
                ptm_sites: vec![17],
                heads: (0..100)
                    .map(|k| {
                        let arcs = (0..n)
                            .map(|i| (i, (i * 7 + k) % n, 0.1 + (i % 90) as f32 / 100.0))
                            .collect();
                        (k / 16, k % 16, arcs)
                    })
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn with_ten_visualised_sequences_the_report_stays_under_5_mb() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ReportContext {
        sequences: ten_sequences(),
        ..context()
    };
    let files = write_report(&synthetic(30, 16, 25), &ctx, dir.path()).unwrap();
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    eprintln!(
        "30 x 16 x 25 report with 10 sequences: {total} bytes in {} files",
        files.len()
    );
    assert!(total < 5_000_000, "report is {total} bytes");
    for s in 0..10 {
        assert!(dir.path().join(format!("sequences/P{s:05}_A.html")).is_file());
        assert!(dir.path().join(format!("sequences/P{s:05}_A.js")).is_file());
    }
    let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(index.contains("href=\"sequences/P00000_A.html\""));
    let data = std::fs::read_to_string(dir.path().join("data.js")).unwrap();
    assert!(data.contains("window.HEADSCAN.visualised=[{\"id\":\"P00000_A\""));
    // Pages reference only files that exist, relative to sequences/.
    let page = std::fs::read_to_string(dir.path().join("sequences/P00003_A.html")).unwrap();
    for r in [
        "../report.css",
        "../data.js",
        "../report.js",
        "../ogl.min.js",
        "P00003_A.js",
        "../index.html",
    ] {
        assert!(page.contains(&format!("\"{r}\"")), "{r}");
        assert!(dir.path().join("sequences").join(r).is_file(), "{r}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
}
