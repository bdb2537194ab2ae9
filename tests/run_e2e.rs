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
/// flags; asserts success and returns stderr.
/// `run` of the demo config and fixture ESM-2 on `dataset` into `out`.
fn demo_args(dataset: &Path, out: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (config, model) = (
        root.join("configs/demo.toml"),
        root.join("tests/fixtures/models/esm2"),
    );
    [
        "run",
        "--config",
        config.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        dataset.to_str().unwrap(),
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_demo(dataset: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = demo_args(dataset, out.to_str().unwrap());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = headscan(&args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    stderr
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

/// A Float64 column of a Parquet table.
fn f64_column(path: &Path, name: &str) -> Vec<f64> {
    use arrow::array::{Array, Float64Array};
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("{} lacks {name}", path.display()));
        let col = col.as_any().downcast_ref::<Float64Array>().expect("Float64");
        assert_eq!(col.null_count(), 0);
        out.extend(col.values().iter().copied());
    }
    out
}

/// Every value of a column of `path`, cast to `to`.
fn column_as(path: &Path, name: &str, to: &arrow::datatypes::DataType) -> arrow::array::ArrayRef {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let parts: Vec<arrow::array::ArrayRef> = reader
        .map(|b| arrow::compute::cast(b.unwrap().column_by_name(name).unwrap(), to).unwrap())
        .collect();
    let parts: Vec<&dyn arrow::array::Array> = parts.iter().map(|a| a.as_ref()).collect();
    arrow::compute::concat(&parts).unwrap()
}

fn string_column(path: &Path, name: &str) -> Vec<String> {
    use arrow::array::AsArray;
    let col = column_as(path, name, &arrow::datatypes::DataType::Utf8);
    col.as_string::<i32>()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

fn bool_column(path: &Path, name: &str) -> Vec<bool> {
    use arrow::array::AsArray;
    let col = column_as(path, name, &arrow::datatypes::DataType::Boolean);
    col.as_boolean().iter().map(|v| v.unwrap()).collect()
}

fn u64_column(path: &Path, name: &str) -> Vec<u64> {
    use arrow::array::AsArray;
    let col = column_as(path, name, &arrow::datatypes::DataType::UInt64);
    col.as_primitive::<arrow::datatypes::UInt64Type>()
        .values()
        .to_vec()
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
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
        "null_weighted_mean_exact",
        "null_weighted_std_exact",
        "null_weighted_z",
    ] {
        assert!(heads.contains(&c.to_string()), "heads.parquet lacks {c}");
    }
    // The weighted null is closed form (DESIGN §1): finite on every demo head,
    // and z agrees with its definition on the weighted-proportion scale.
    let table = out.join("heads.parquet");
    let observed = f64_column(&table, "weighted_proportion");
    let mean = f64_column(&table, "null_weighted_mean_exact");
    let std = f64_column(&table, "null_weighted_std_exact");
    let z = f64_column(&table, "null_weighted_z");
    assert!(!z.is_empty());
    for i in 0..z.len() {
        assert!(
            mean[i].is_finite() && std[i].is_finite() && std[i] > 0.0 && z[i].is_finite(),
            "row {i}: mean {} std {} z {}",
            mean[i],
            std[i],
            z[i]
        );
        let want = (observed[i] - mean[i]) / std[i];
        assert!((z[i] - want).abs() <= 1e-9 * want.abs().max(1.0), "row {i}");
    }
    assert!(columns(&out.join("layers.parquet")).contains(&"feature".to_string()));
    // Only thresholded null samples: no all-NaN weighted column.
    assert_eq!(
        columns(&out.join("null.parquet")),
        ["feature", "layer", "head", "sample", "hits"]
    );
    assert_eq!(
        columns(&out.join("aa_similarity.parquet")),
        ["aa_a", "aa_b", "attention_r", "blosum62"]
    );
    let summary = summary(&out);
    assert_eq!(summary["sequences"], 12);
    assert_eq!(summary["config"]["null_samples"], 100);
    assert_eq!(summary["selection"]["mode"], "all");
    assert_eq!(summary["selection"]["selected"], 12);
    assert!(summary["background_rates"]["contact"].as_f64().unwrap() > 0.0);
    assert!(summary.get("blosum62_pearson_r").is_some());
    // The model digest covers every model file, not config.json alone.
    let digest = summary["model_digest"].as_str().unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    assert_ne!(summary["model_digest"], summary["model_config_digest"]);
    // `results top` ranks the included contact heads of heads.parquet.
    let top = common::headscan(&[
        "results",
        "top",
        "--results",
        out.to_str().unwrap(),
        "--feature",
        "contact",
        "--top",
        "3",
    ]);
    assert!(top.status.success(), "{}", String::from_utf8_lossy(&top.stderr));
    let text = String::from_utf8(top.stdout).unwrap();
    let feature = string_column(&table, "feature");
    let excluded = bool_column(&table, "excluded");
    let proportion = f64_column(&table, "proportion");
    let (layer, head) = (u64_column(&table, "layer"), u64_column(&table, "head"));
    // Best proportion; ties go to the lowest layer, then head.
    let best = (0..feature.len())
        .filter(|&i| feature[i] == "contact" && !excluded[i])
        .max_by(|&a, &b| {
            proportion[a]
                .total_cmp(&proportion[b])
                .then((layer[b], head[b]).cmp(&(layer[a], head[a])))
        })
        .unwrap();
    let first_row = text.lines().nth(2).unwrap();
    assert!(
        first_row
            .trim_start()
            .starts_with(&format!("{}-{} ", layer[best], head[best])),
        "{text}"
    );
    assert!(
        first_row.contains(&format!("{:.2}%", 100.0 * proportion[best])),
        "{text}"
    );
    assert_eq!(
        text.lines().skip(2).filter(|l| l.contains('%')).count(),
        3,
        "{text}"
    );
    let missing = common::headscan(&[
        "results",
        "top",
        "--results",
        out.to_str().unwrap(),
        "--feature",
        "ptm",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("feature `ptm`"));
    // The report references only files that exist.
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    assert!(html.contains("RANDOM model"), "the demo note is shown");
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap();
            if target.starts_with('#') || target.starts_with("http") {
                continue;
            }
            // `head.html#12-4`: the fragment picks the head on that page.
            let target = target.split('#').next().unwrap();
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
    let mut parsed = Vec::new();
    for dir in [root.clone(), root.join("provis")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                let c = headscan_coordinator::config::RunConfig::read(&p).unwrap_or_else(|e| panic!("{e}"));
                c.validate().unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                parsed.push((p, c));
            }
        }
    }
    assert!(parsed.iter().any(|(p, _)| p.ends_with("configs/demo.toml")));
    // The provis reproductions: 5 models × 4 datasets, each a random sample
    // of 5,000 sequences drawn with provis' seed, with the default null.
    let provis: Vec<_> = parsed
        .iter()
        .filter(|(p, _)| p.parent().unwrap().ends_with("provis"))
        .collect();
    assert_eq!(provis.len(), 20, "5 models × 4 datasets");
    for (p, c) in provis {
        assert_eq!(
            (c.sample, c.limit, c.seed, c.null_samples),
            (5000, 0, 123, 100),
            "{}",
            p.display()
        );
    }
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

#[test]
fn sample_picks_the_same_records_whatever_the_sharding() {
    let tmp = tempfile::tempdir().unwrap();
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/demo.proteinnet");
    let (ds3, ds12) = (tmp.path().join("ds3"), tmp.path().join("ds12"));
    ingest_ok("proteinnet", &input, &ds3, &["--shard-rows", "3"]);
    ingest_ok("proteinnet", &input, &ds12, &["--shard-rows", "12"]);
    let run = |name: &str, ds: &Path, extra: &[&str]| {
        let out = tmp.path().join(name);
        let stderr = run_demo(ds, &out, extra);
        (out, stderr)
    };
    let (a, _) = run("a", &ds3, &["--sample", "5", "--seed", "11"]);
    let (b, _) = run("b", &ds12, &["--sample", "5", "--seed", "11", "--workers", "2"]);
    let (c, _) = run("c", &ds3, &["--sample", "5", "--seed", "12"]);
    let (all, _) = run("all", &ds3, &[]);
    let (big, stderr) = run("big", &ds12, &["--sample", "50"]);
    let (sa, sb, sc) = (summary(&a), summary(&b), summary(&c));
    assert_eq!(sa["selection"]["mode"], "sample");
    assert_eq!(sa["selection"]["sample"], 5);
    assert_eq!(sa["selection"]["seed"], 11);
    assert_eq!(sa["selection"]["dataset_rows"], 12);
    assert_eq!(sa["selection"]["selected"], 5);
    assert_eq!(sa["sequences"], 5);
    // Shards of 3 rows or of 12: the same ids, hence the same tables.
    assert_eq!(sa["selection"]["ids_sha256"], sb["selection"]["ids_sha256"]);
    for table in ["heads.parquet", "null.parquet"] {
        assert_eq!(
            std::fs::read(a.join(table)).unwrap(),
            std::fs::read(b.join(table)).unwrap(),
            "{table}"
        );
    }
    // Another seed, another subset.
    assert_eq!(sc["selection"]["selected"], 5);
    assert_ne!(sa["selection"]["ids_sha256"], sc["selection"]["ids_sha256"]);
    // More than the dataset holds: every row, said on stderr.
    let (sbig, sall) = (summary(&big), summary(&all));
    assert_eq!(sbig["selection"]["selected"], 12);
    assert_eq!(sbig["selection"]["ids_sha256"], sall["selection"]["ids_sha256"]);
    assert!(stderr.contains("taking every row"), "{stderr}");
    assert_eq!(
        std::fs::read(big.join("heads.parquet")).unwrap(),
        std::fs::read(all.join("heads.parquet")).unwrap()
    );
}

#[test]
fn limit_and_sample_together_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = headscan(&[
        "run",
        "--model",
        "/nonexistent/model",
        "--dataset",
        "/nonexistent/ds",
        "--out",
        out.to_str().unwrap(),
        "--limit",
        "3",
        "--sample",
        "4",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`limit`") && err.contains("`sample`"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_relative_out_is_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path());
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_headscan"))
        .current_dir(tmp.path())
        .args(demo_args(&ds, "rel/out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(tmp.path().join("rel/out/heads.parquet").exists());
}

#[test]
fn bf16_precision_is_recorded_and_counts_stay_near_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path());
    let (exact, half) = (tmp.path().join("f32"), tmp.path().join("bf16"));
    run_demo(&ds, &exact, &[]);
    run_demo(&ds, &half, &["--precision", "bf16"]);
    assert_eq!(summary(&exact)["config"]["precision"], "f32");
    assert_eq!(summary(&half)["config"]["precision"], "bf16");
    // The same heads in the same order; arcs within the tolerance
    // BENCHMARKS.md documents for bf16 (2% of all arcs; 5% + 2 per head).
    let heads = |out: &Path| {
        let p = out.join("heads.parquet");
        (
            string_column(&p, "feature"),
            u64_column(&p, "layer"),
            u64_column(&p, "head"),
            u64_column(&p, "arcs"),
        )
    };
    let (a, b) = (heads(&exact), heads(&half));
    assert_eq!((&a.0, &a.1, &a.2), (&b.0, &b.1, &b.2), "same head rows");
    let (ta, tb) = (a.3.iter().sum::<u64>(), b.3.iter().sum::<u64>());
    assert!(ta > 100, "the demo must threshold some arcs ({ta})");
    let rel = (ta as f64 - tb as f64).abs() / ta as f64;
    assert!(rel <= 0.02, "all arcs: f32 {ta}, bf16 {tb} ({:.2}%)", rel * 100.0);
    for (i, (x, y)) in a.3.iter().zip(&b.3).enumerate() {
        let slack = 0.05 * *x as f64 + 2.0;
        assert!(
            (*x as f64 - *y as f64).abs() <= slack,
            "{} {}-{}: f32 {x}, bf16 {y}",
            a.0[i],
            a.1[i],
            a.2[i]
        );
    }
    let o = headscan(
        &demo_args(&ds, tmp.path().join("x").to_str().unwrap())
            .iter()
            .map(String::as_str)
            .chain(["--precision", "fp8"])
            .collect::<Vec<_>>(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("fp8") && stderr.contains("bf16"),
        "{stderr}"
    );
}
