//! `headscan probe` end to end on the tiny BERT fixture: CB513 secondary
//! structure (real data, a slice of it) and synthetic binding sites. Checks
//! the tables' columns and metric names, the seeded record split, and that
//! 1 vs 4 dataset shards give the same weights to 1e-6.

mod common;

use std::path::{Path, PathBuf};

use arrow::array::{Array, Float64Array, Int32Array, StringArray, UInt64Array};
use common::{headscan, ingest_ok, model_command_ok, test_data};
use headscan_coordinator::probe::output::ProbeWeights;
use headscan_coordinator::probe::tasks::is_train;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn bert() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/bert")
}

fn read(path: &Path) -> arrow::array::RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    reader.next().unwrap().unwrap()
}

fn strings(b: &arrow::array::RecordBatch, name: &str) -> Vec<String> {
    let a = b
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    a.iter().map(|s| s.unwrap().to_string()).collect()
}

fn probe(ds: &Path, out: &Path, extra: &[&str]) -> Vec<ProbeWeights> {
    model_command_ok("probe", &bert(), ds, out, extra);
    serde_json::from_slice(&std::fs::read(out.join("weights.json")).unwrap()).unwrap()
}

/// The first `n` chains of CB513 as a NetSurfP CSV in `dir`.
fn cb513_slice(data: &Path, dir: &Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(data.join("secondary_structure/CB513_HHblits.csv")).unwrap();
    let slice: Vec<&str> = text.lines().take(n + 1).collect();
    let path = dir.join("cb513_slice.csv");
    std::fs::write(&path, slice.join("\n") + "\n").unwrap();
    path
}

#[test]
fn ss4_probe_tables_split_and_one_vs_four_shards() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let csv = cb513_slice(&data, tmp.path(), 24);
    let one = tmp.path().join("one");
    let four = tmp.path().join("four");
    ingest_ok("ss-csv", &csv, &one, &["--shard-rows", "24"]);
    ingest_ok("ss-csv", &csv, &four, &["--shard-rows", "6"]);
    let (o1, o4) = (tmp.path().join("p1"), tmp.path().join("p4"));
    let w1 = probe(&one, &o1, &["--tasks", "ss4", "--seed", "3"]);
    let w4 = probe(&four, &o4, &["--tasks", "ss4", "--seed", "3"]);
    assert_eq!(w1.len(), 2, "one probe per layer of the 2-layer fixture");
    for (a, b) in w1.iter().zip(&w4) {
        assert_eq!((a.layer, &a.task), (b.layer, &b.task));
        assert_eq!(
            a.weights.len(),
            3 * 33,
            "3 non-reference classes × (32 + intercept)"
        );
        let d = a
            .weights
            .iter()
            .zip(&b.weights)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(d < 1e-6, "layer {}: 1 vs 4 shards differ by {d:e}", a.layer);
    }
    // probes.parquet: the columns and metric names; same values from 1 and 4 shards.
    let p1 = read(&o1.join("probes.parquet"));
    let p4 = read(&o4.join("probes.parquet"));
    let metrics = strings(&p1, "metric");
    assert_eq!(
        &metrics[..5],
        ["f1_macro", "f1:helix", "f1:strand", "f1:turn_bend", "f1:coil"]
    );
    assert_eq!(p1.num_rows(), 10);
    assert!(strings(&p1, "kind").iter().all(|k| k == "embedding"));
    assert!(strings(&p1, "task").iter().all(|k| k == "ss4"));
    let layers = p1
        .column_by_name("layer")
        .unwrap()
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap();
    assert_eq!(layers.value(0), 0);
    assert_eq!(layers.value(9), 1);
    let v1 = p1
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let v4 = p4
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    for i in 0..v1.len() {
        assert!(v1.value(i) >= 0.0 && v1.value(i) <= 1.0);
        assert!((v1.value(i) - v4.value(i)).abs() < 1e-9, "row {i}");
    }
    let n_train = p1
        .column_by_name("n_train")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    let n_eval = p1
        .column_by_name("n_eval")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    assert!(n_train.value(0) > 3 * n_eval.value(0) / 2 && n_eval.value(0) > 0);
    // split.parquet: every record once, as the seeded rule says.
    let split = read(&o1.join("split.parquet"));
    let ids = strings(&split, "id");
    let which = strings(&split, "split");
    assert_eq!(ids.len(), 24);
    for (id, s) in ids.iter().zip(&which) {
        assert_eq!(s == "train", is_train(id, 3, 0.8), "{id}");
    }
    assert!(which.iter().any(|s| s == "validation"));
}

#[test]
fn binding_site_probe_reports_precision_at_l_over_20_and_is_repeatable() {
    let tmp = tempfile::tempdir().unwrap();
    // 30 synthetic proteins of 60 residues; sites at every C.
    let mut fasta = String::new();
    let mut tsv = String::new();
    let letters = b"ACDEFGHIKLMNPQRSTVWY";
    let mut state = 12345u64;
    // Best achievable precision at L/20 (3 of 60) over the validation proteins.
    let (mut best, mut selected) = (0usize, 0usize);
    for p in 0..30 {
        let seq: String = (0..60)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                letters[(state >> 33) as usize % 20] as char
            })
            .collect();
        for (i, c) in seq.chars().enumerate() {
            if c == 'C' {
                tsv.push_str(&format!("p{p}\tbinding_site\t{}\n", i + 1));
            }
        }
        if !is_train(&format!("p{p}"), 0, 0.8) {
            best += seq.matches('C').count().min(3);
            selected += 3;
        }
        fasta.push_str(&format!(">p{p}\n{seq}\n"));
    }
    std::fs::write(tmp.path().join("in.fasta"), fasta).unwrap();
    std::fs::write(tmp.path().join("sites.tsv"), tsv).unwrap();
    let ds = tmp.path().join("ds");
    let ann = tmp.path().join("sites.tsv");
    ingest_ok(
        "fasta",
        &tmp.path().join("in.fasta"),
        &ds,
        &["--annotations", ann.to_str().unwrap(), "--shard-rows", "8"],
    );
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    probe(&ds, &a, &["--tasks", "binding_site", "--layers", "1"]);
    probe(&ds, &b, &["--tasks", "binding_site", "--layers", "1"]);
    let t = read(&a.join("probes.parquet"));
    assert_eq!(strings(&t, "metric"), ["precision_at_L/20"]);
    let v = t
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    // The residue identity is in the embedding: the probe finds the Cs (chance is 1/20).
    let ceiling = best as f64 / selected as f64;
    assert!(selected > 0 && ceiling > 0.3);
    assert!(
        v.value(0) > ceiling - 0.05,
        "precision at L/20 = {}, best possible {ceiling}",
        v.value(0)
    );
    for f in ["probes.parquet", "split.parquet", "weights.json"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn unsupported_kinds_and_missing_keys_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("p.toml");
    std::fs::write(
        &cfg,
        "model = \"m\"\ndataset = \"d\"\nkinds = [\"attention\"]\nout = \"o\"\n",
    )
    .unwrap();
    let o = headscan(&["probe", "--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("probe kind `attention`"));
    std::fs::write(&cfg, "model = \"m\"\nbogus = 1\n").unwrap();
    let o = headscan(&["probe", "--config", cfg.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("bogus"));
    let o = headscan(&["probe", "--model", "m"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("`dataset` is required"));
}

/// scikit-learn's LogisticRegression on the same features and split, as
/// recorded by scripts/probe_sklearn/compare.py (pinned versions in its
/// requirements.txt) in tests/fixtures/probe_sklearn/: headscan's validation
/// macro F1 must be within 0.02 of it.
#[test]
fn ss4_probe_is_within_0_02_of_scikit_learn() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let csv = cb513_slice(&data, tmp.path(), 24);
    let ds = tmp.path().join("ds");
    ingest_ok("ss-csv", &csv, &ds, &["--shard-rows", "24"]);
    let out = tmp.path().join("out");
    probe(&ds, &out, &["--tasks", "ss4", "--seed", "3"]);
    let t = read(&out.join("probes.parquet"));
    let metric = strings(&t, "metric");
    let layer = t
        .column_by_name("layer")
        .unwrap()
        .as_any()
        .downcast_ref::<Int32Array>()
        .unwrap();
    let value = t
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let n_train = t
        .column_by_name("n_train")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/probe_sklearn/cb513_first24_seed3.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let results = expected["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for want in results {
        let l = want["layer"].as_i64().unwrap() as i32;
        let row = (0..t.num_rows())
            .find(|&r| layer.value(r) == l && metric[r] == "f1_macro")
            .unwrap();
        assert_eq!(
            n_train.value(row),
            want["n_train"].as_u64().unwrap(),
            "same training rows"
        );
        let sk = want["sklearn"].as_f64().unwrap();
        let ours = value.value(row);
        assert!(
            (ours - sk).abs() <= 0.02,
            "layer {l}: headscan {ours}, scikit-learn {sk}"
        );
    }
}

#[test]
fn contact_probe_on_structures_reports_precision_at_l_over_5_by_range() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pdb");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "1vfy.pdb", "1rmd.pdb", "1aki.pdb", "1aku.pdb", "1k6p.pdb", "1vsn.pdb",
    ] {
        std::os::unix::fs::symlink(data.join("structures").join(f), dir.join(f)).unwrap();
    }
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    ingest_ok("structures", &dir, &one, &["--shard-rows", "100"]);
    ingest_ok("structures", &dir, &two, &["--shard-rows", "3"]);
    let (o1, o2) = (tmp.path().join("p1"), tmp.path().join("p2"));
    let w1 = probe(&one, &o1, &["--tasks", "contact", "--layers", "1", "--seed", "1"]);
    let w2 = probe(&two, &o2, &["--tasks", "contact", "--layers", "1", "--seed", "1"]);
    assert_eq!(w1[0].dim, 64, "pair features: 2 × hidden 32");
    let d = w1[0]
        .weights
        .iter()
        .zip(&w2[0].weights)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(d < 1e-6, "1 vs several shards: {d:e}");
    let t = read(&o1.join("probes.parquet"));
    assert_eq!(
        strings(&t, "metric"),
        [
            "precision_at_L/5",
            "precision_at_L/5:short",
            "precision_at_L/5:medium",
            "precision_at_L/5:long"
        ]
    );
    let v = t
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert!((0.0..=1.0).contains(&v.value(0)), "{}", v.value(0));
    let n = t
        .column_by_name("n_train")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    let e = t
        .column_by_name("n_eval")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    assert!(
        n.value(0) > 0 && e.value(0) > 0,
        "pairs trained {} scored {}",
        n.value(0),
        e.value(0)
    );
}

#[test]
fn attention_probe_and_contact_regression_on_structures() {
    let Some(data) = test_data() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pdb");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "1vfy.pdb", "1rmd.pdb", "1aki.pdb", "1aku.pdb", "1k6p.pdb", "1vsn.pdb",
    ] {
        std::os::unix::fs::symlink(data.join("structures").join(f), dir.join(f)).unwrap();
    }
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    ingest_ok("structures", &dir, &one, &["--shard-rows", "100"]);
    ingest_ok("structures", &dir, &two, &["--shard-rows", "3"]);
    // ESM's C = 0.15 zeroes every weight of this tiny random model; a weaker
    // L1 (config key `l1`) lets the regression pick maps.
    let cfg_file = tmp.path().join("probe.toml");
    std::fs::write(&cfg_file, "l1 = 0.05\n").unwrap();
    let args = [
        "--config",
        cfg_file.to_str().unwrap(),
        "--tasks",
        "contact",
        "--kinds",
        "attention,contact_regression",
        "--layers",
        "0,1",
        "--seed",
        "1",
    ];
    let (o1, o2) = (tmp.path().join("p1"), tmp.path().join("p2"));
    let w1 = probe(&one, &o1, &args);
    let w2 = probe(&two, &o2, &args);
    let kinds: Vec<(&str, i32)> = w1.iter().map(|w| (w.kind.as_str(), w.layer)).collect();
    assert_eq!(
        kinds,
        [("attention", 0), ("attention", 1), ("contact_regression", -1)]
    );
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bert().join("config.json")).unwrap()).unwrap();
    let heads = cfg["num_attention_heads"].as_u64().unwrap() as usize;
    assert_eq!(w1[0].dim, 2 * heads, "both directions of every head");
    assert_eq!(w1[2].dim, 2 * heads, "2 layers × heads maps");
    let nonzero = w1[2].weights[..w1[2].dim].iter().filter(|v| **v != 0.0).count();
    assert!(nonzero > 0, "the regression selected no map: {:?}", w1[2].weights);
    for (a, b) in w1.iter().zip(&w2) {
        let d = a
            .weights
            .iter()
            .zip(&b.weights)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(
            d < 1e-6,
            "{} layer {}: 1 vs several shards differ by {d:e}",
            a.kind,
            a.layer
        );
    }
    let t = read(&o1.join("probes.parquet"));
    let kinds = strings(&t, "kind");
    let metrics = strings(&t, "metric");
    let regression: Vec<&str> = metrics
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| *k == "contact_regression")
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(regression.len(), 12);
    for m in [
        "precision_at_L:long",
        "precision_at_L/2:medium",
        "precision_at_L/5:short",
        "precision_at_L",
    ] {
        assert!(regression.contains(&m), "{m} in {regression:?}");
    }
    let attention: Vec<&str> = metrics
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| *k == "attention")
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(
        attention.len(),
        8,
        "4 ranges of precision at L/5 for each of 2 layers"
    );
    let svg = std::fs::read_to_string(o1.join("figure5_contact.svg")).unwrap();
    assert!(
        svg.contains("attention probe, layer 2:"),
        "Figure 5 style: attention probe by layer"
    );
    let v = t
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    for i in 0..t.num_rows() {
        assert!(v.is_null(i) || (0.0..=1.0).contains(&v.value(i)));
    }
}
