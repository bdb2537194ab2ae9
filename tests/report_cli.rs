//! `headscan report --results URL --out DIR`: rebuilding a finished job's
//! report from its tables gives the same bytes the job wrote, its data.js
//! carries heads.parquet's numbers, and a missing table is named.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, Float64Array, StringArray, UInt32Array, UInt64Array};
use common::{headscan, ingest_ok};

/// Runs the demo config (fixture ESM-2) on the demo ProteinNet file into `out`.
fn demo_job(dir: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ds = dir.join("ds");
    ingest_ok(
        "proteinnet",
        &root.join("examples/data/demo.proteinnet"),
        &ds,
        &[],
    );
    let out = dir.join("job");
    let o = headscan(&[
        "run",
        "--config",
        root.join("configs/demo.toml").to_str().unwrap(),
        "--model",
        root.join("tests/fixtures/models/esm2").to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn report_from_tables_is_byte_identical_to_the_jobs_report() {
    let dir = tempfile::tempdir().unwrap();
    let job = demo_job(dir.path());
    let again = dir.path().join("again");
    let o = headscan(&[
        "report",
        "--results",
        job.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        again.join("index.html").display().to_string()
    );
    let (a, b) = (files(&job.join("report")), files(&again));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs after rebuilding from the tables"
        );
    }
    for name in ["index.html", "head.html", "data.js", "report.js", "report.css"] {
        assert!(a.contains_key(name), "{name} missing");
    }
    // Also from a file:// URL.
    let url_out = dir.path().join("from-url");
    let url = format!("file://{}", job.display());
    let o = headscan(&["report", "--results", &url, "--out", url_out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(&url_out), b);
}

/// The numbers in data.js are heads.parquet's, at the grid position of each head.
#[test]
fn data_js_carries_the_numbers_of_heads_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let job = demo_job(dir.path());
    let js = std::fs::read_to_string(job.join("report/data.js")).unwrap();
    let json = js
        .strip_prefix("window.HEADSCAN=")
        .and_then(|s| s.trim_end().strip_suffix(';'))
        .expect("data.js assigns window.HEADSCAN");
    let data: serde_json::Value = serde_json::from_str(json).unwrap();
    let n_heads = data["n_heads"].as_u64().unwrap() as usize;
    let file = std::fs::File::open(job.join("heads.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut checked = 0;
    for batch in reader {
        let batch = batch.unwrap();
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        let feature = col("feature");
        let feature = feature.as_any().downcast_ref::<StringArray>().unwrap();
        let (layer, head) = (col("layer"), col("head"));
        let layer = layer.as_any().downcast_ref::<UInt32Array>().unwrap();
        let head = head.as_any().downcast_ref::<UInt32Array>().unwrap();
        let arcs = col("arcs");
        let arcs = arcs.as_any().downcast_ref::<UInt64Array>().unwrap();
        for i in 0..batch.num_rows() {
            let f = data["features"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == feature.value(i))
                .unwrap_or_else(|| panic!("feature {} not in data.js", feature.value(i)));
            let cell = layer.value(i) as usize * n_heads + head.value(i) as usize;
            assert_eq!(f["arcs"][cell].as_u64(), Some(arcs.value(i)));
            for (key, column, rel) in [
                // 6 significant digits are kept.
                ("p", "proportion", 6e-6),
                ("lo", "ci_low", 6e-6),
                ("hi", "ci_high", 6e-6),
                ("pv", "p_value", 6e-6),
                ("np", "null_p_value", 6e-6),
                ("wz", "null_weighted_z", 6e-6),
            ] {
                let c = col(column);
                let v = c.as_any().downcast_ref::<Float64Array>().unwrap().value(i);
                match f[key][cell].as_f64() {
                    Some(x) => assert!((x - v).abs() <= rel * v.abs().max(1e-12), "{column} {x} vs {v}"),
                    None => assert!(!v.is_finite(), "{column}: null for finite {v}"),
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn a_missing_table_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let job = demo_job(dir.path());
    std::fs::remove_file(job.join("layers.parquet")).unwrap();
    let o = headscan(&[
        "report",
        "--results",
        job.to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("layers.parquet"), "{err}");
    std::fs::write(job.join("summary.json"), "{\"n_layers\": 2}").unwrap();
    let o = headscan(&[
        "report",
        "--results",
        job.to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("summary.json") && err.contains("n_heads"),
        "{err}"
    );
}

/// `--visualize` on a job over real structures: a page per record with its
/// residues, Cα trace and the top heads' arcs, recomputed by `report` or
/// stored by the job's workers (`sequences.parquet`) with the same bytes; an
/// unknown id is named.
#[test]
fn visualize_writes_a_page_per_sequence_with_coordinates() {
    let Some(data) = common::test_data() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for f in ["1acj.pdb", "1hwu.pdb"] {
        std::fs::copy(data.join("structures").join(f), input.join(f)).unwrap();
    }
    let ds = dir.path().join("ds");
    ingest_ok("structures", &input, &ds, &[]);
    let job = dir.path().join("job");
    let o = headscan(&[
        "run",
        "--config",
        root.join("configs/demo.toml").to_str().unwrap(),
        "--model",
        root.join("tests/fixtures/models/esm2").to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        job.to_str().unwrap(),
        "--features",
        "contact",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("report");
    let o = headscan(&[
        "report",
        "--results",
        job.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--visualize",
        "1acj.A",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let js = std::fs::read_to_string(out.join("sequences/1acj.A.js")).unwrap();
    let json: serde_json::Value = serde_json::from_str(
        js.strip_prefix("window.HEADSCAN_SEQ=")
            .unwrap()
            .trim_end()
            .strip_suffix(';')
            .unwrap(),
    )
    .unwrap();
    let n = json["sequence"].as_str().unwrap().len();
    assert!(n > 10);
    assert_eq!(json["ca"].as_array().unwrap().len(), 3 * n, "Cα per residue");
    assert!(json["ca"].as_array().unwrap().iter().any(|v| v.is_number()));
    let heads = json["heads"].as_object().unwrap();
    assert!(!heads.is_empty() && heads.values().any(|v| !v.as_str().unwrap().is_empty()));
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(index.contains("href=\"sequences/1acj.A.html\""));
    assert!(out.join("sequences/1acj.A.html").is_file());
    // Same inputs, same bytes.
    let again = dir.path().join("again");
    let o = headscan(&[
        "report",
        "--results",
        job.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--visualize",
        "1acj.A",
    ]);
    assert!(o.status.success());
    assert_eq!(files(&out.join("sequences")), files(&again.join("sequences")));
    assert_eq!(files(&out), files(&again));
    let o = headscan(&[
        "report",
        "--results",
        job.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--visualize",
        "9zzz.Q",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("9zzz.Q"));

    // `headscan run --visualize`: the workers store the record's attention
    // (weights ≥ 0.05) in sequences.parquet, and the job's report has the
    // same page as the recomputed one.
    let job2 = dir.path().join("job2");
    let o = headscan(&[
        "run",
        "--config",
        root.join("configs/demo.toml").to_str().unwrap(),
        "--model",
        root.join("tests/fixtures/models/esm2").to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        job2.to_str().unwrap(),
        "--features",
        "contact",
        "--visualize",
        "1acj.A",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stored = headscan_coordinator::sequence_table::decode(
        std::fs::read(job2.join("sequences.parquet")).unwrap().into(),
        "sequences.parquet",
    )
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].id.as_str(), stored[0].residues as usize),
        ("1acj.A", n)
    );
    assert!(stored[0].weight.iter().all(|&w| (0.05..=1.0).contains(&w)));
    assert_eq!(
        files(&job2.join("report/sequences")),
        files(&out.join("sequences"))
    );
    assert_eq!(files(&job2.join("report")), files(&out));
    // `headscan report` rebuilds the pages from sequences.parquet alone: the
    // model is never loaded (a model that does not exist changes nothing).
    let rebuilt = dir.path().join("rebuilt");
    let o = headscan(&[
        "report",
        "--results",
        job2.to_str().unwrap(),
        "--out",
        rebuilt.to_str().unwrap(),
        "--model",
        dir.path().join("no-such-model").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(&rebuilt), files(&job2.join("report")));
    // An unknown id fails the run before any model work, naming it.
    let o = headscan(&[
        "run",
        "--config",
        root.join("configs/demo.toml").to_str().unwrap(),
        "--model",
        root.join("tests/fixtures/models/esm2").to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        dir.path().join("job3").to_str().unwrap(),
        "--features",
        "contact",
        "--visualize",
        "9zzz.Q",
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("9zzz.Q"));
    assert!(!dir.path().join("job3/summary.json").exists());
}
