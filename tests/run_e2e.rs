//! `headscan run` end to end on the demo config: every output of DESIGN §4
//! with its columns, a report that references only existing files, and the
//! errors that must come before any model work.

mod common;

use std::path::Path;

use common::{headscan, ingest_ok};

fn demo_dataset(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("demo-ds");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo.proteinnet");
    ingest_ok("proteinnet", &input, &out, &[]);
    out
}

/// Runs the demo config (fixture ESM-2) on `dataset` into `out`, with extra
/// flags; asserts success.
fn run_demo(dataset: &Path, out: &Path, extra: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (config, model) = (
        root.join("configs/demo.toml"),
        root.join("tests/fixtures/models/esm2"),
    );
    let mut args = vec![
        "run",
        "--config",
        config.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        dataset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = headscan(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn columns(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

#[test]
fn demo_run_writes_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path());
    let out = tmp.path().join("out");
    run_demo(&ds, &out, &[]);
    let heads = columns(&out.join("heads.parquet"));
    for c in [
        "feature",
        "layer",
        "head",
        "arcs",
        "hits",
        "proportion",
        "attn_mass",
        "weighted_hits",
        "weighted_proportion",
        "background_hits",
        "background_total",
        "background_rate",
        "enrichment",
        "ci_low",
        "ci_high",
        "z",
        "p_value",
        "significant",
        "excluded",
        "null_mean",
        "null_std",
        "null_p_value",
        "null_mean_exact",
        "null_std_exact",
    ] {
        assert!(heads.contains(&c.to_string()), "heads.parquet lacks {c}");
    }
    assert!(columns(&out.join("layers.parquet")).contains(&"feature".to_string()));
    assert!(columns(&out.join("null.parquet")).contains(&"sample".to_string()));
    assert_eq!(
        columns(&out.join("aa_similarity.parquet")),
        ["aa_a", "aa_b", "attention_r", "blosum62"]
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["sequences"], 12);
    assert!(summary["background_rates"]["contact"].as_f64().unwrap() > 0.0);
    assert!(summary.get("blosum62_pearson_r").is_some());
    // The report references only files that exist.
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains("RANDOM model"), "the demo note is shown");
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap();
            if target.starts_with('#') || target.starts_with("http") {
                continue;
            }
            assert!(
                out.join("report").join(target).is_file(),
                "report references missing {target}"
            );
        }
    }
}

#[test]
fn a_feature_the_dataset_lacks_fails_before_model_work() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path());
    let out = tmp.path().join("out");
    // The model path does not exist: the feature error must come first.
    let o = headscan(&[
        "run",
        "--model",
        "/nonexistent/model",
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--features",
        "ss4",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ss4") && err.contains("secondary-structure"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn unknown_config_keys_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "model = \"m\"\nnull_sample = 3\n").unwrap();
    let o = headscan(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("null_sample"));
}

#[test]
fn every_shipped_config_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut n = 0;
    for dir in [root.clone(), root.join("provis")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                headscan_coordinator::config::RunConfig::read(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
    }
    assert_eq!(n, 21, "demo + 5 models × 4 datasets");
}

#[test]
fn outputs_are_the_same_bytes_whatever_the_workers_batch_size_and_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo.proteinnet");
    let (ds3, ds12) = (tmp.path().join("ds3"), tmp.path().join("ds12"));
    ingest_ok("proteinnet", &input, &ds3, &["--shard-rows", "3"]);
    ingest_ok("proteinnet", &input, &ds12, &["--shard-rows", "12"]);
    let run = |name: &str, ds: &Path, workers: &str, batch: &str| {
        let out = tmp.path().join(name);
        run_demo(ds, &out, &["--workers", workers, "--batch-size", batch]);
        out
    };
    let reference = run("a", &ds3, "1", "2");
    for other in [
        run("b", &ds3, "4", "2"),
        run("c", &ds3, "1", "1"),
        run("d", &ds12, "2", "7"),
    ] {
        for table in [
            "heads.parquet",
            "layers.parquet",
            "null.parquet",
            "aa_similarity.parquet",
        ] {
            assert_eq!(
                std::fs::read(reference.join(table)).unwrap(),
                std::fs::read(other.join(table)).unwrap(),
                "{table} of {}",
                other.display()
            );
        }
    }
}
