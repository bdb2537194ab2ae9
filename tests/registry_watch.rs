//! `headscan coordinator --watch-models DIR --recompute FILE.toml`: a new
//! model triggers exactly one job per dataset × analysis, re-polling
//! triggers none, changing one weight file or the analysis configuration
//! triggers again, and unchanged combinations are reused (not resubmitted).
//! A worker then runs one of the jobs to its outputs.

mod cluster;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use cluster::*;

/// Job ids the coordinator knows (`headscan status` lists them, one per line).
fn jobs(url: &str) -> BTreeSet<String> {
    let o = headscan(&["status", "--coordinator", url]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("j-"))
        .map(str::to_string)
        .collect()
}

/// Waits until `n` jobs exist, then for several more polls, and checks it stays `n`.
fn settle(url: &str, n: usize) -> BTreeSet<String> {
    let start = Instant::now();
    loop {
        let j = jobs(url);
        assert!(j.len() <= n, "expected {n} jobs, got {}: {j:?}", j.len());
        if j.len() == n {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out at {} jobs of {n}",
            j.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Ten more polls (every 0.1 s) submit nothing.
    std::thread::sleep(Duration::from_millis(1000));
    let j = jobs(url);
    assert_eq!(j.len(), n, "re-polling submitted jobs: {j:?}");
    j
}

fn add_model(registry: &Path, name: &str) {
    let dir = registry.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let src = root().join("tests/fixtures/models/esm2");
    for f in [
        "model.safetensors",
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json", // last: a folder counts as a model once config.json is there
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
}

fn recompute(path: &Path, datasets: &[&Path], analyses: &str) {
    let list: Vec<String> = datasets
        .iter()
        .map(|d| format!("{:?}", d.to_str().unwrap()))
        .collect();
    std::fs::write(path, format!("datasets = [{}]\n{analyses}", list.join(", "))).unwrap();
}

const A1: &str = "[[analysis]]\nname = \"aa\"\nfeatures = [\"aa\"]\nnull_samples = 10\nmin_arcs = 5\n";
const A2: &str =
    "[[analysis]]\nname = \"contact\"\nfeatures = [\"contact\"]\nnull_samples = 10\nmin_arcs = 5\n";

#[test]
fn registry_triggers_once_per_change_and_reuses_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let ds_a = demo_dataset(tmp.path(), 4);
    let ds_b = tmp.path().join("fasta-ds");
    let o = headscan(&[
        "ingest",
        "--format",
        "fasta",
        "--input",
        root().join("examples/data/demo.fasta").to_str().unwrap(),
        "--out",
        ds_b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let rec = tmp.path().join("recompute.toml");
    recompute(&rec, &[&ds_a, &ds_b], A1);

    let c = coordinator(
        tmp.path(),
        0,
        &[
            "--watch-models",
            registry.to_str().unwrap(),
            "--recompute",
            rec.to_str().unwrap(),
            "--poll-s",
            "0.1",
        ],
    );
    // An empty registry: nothing.
    settle(&c.url, 0);

    // A new model: one job per dataset.
    add_model(&registry, "m1");
    let first = settle(&c.url, 2);

    // One weight file changes: both datasets again.
    let weights = registry.join("m1/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let second = settle(&c.url, 4);
    assert!(second.is_superset(&first));

    // A second analysis: only its combinations run; the first one's are reused.
    recompute(&rec, &[&ds_a, &ds_b], &format!("{A1}{A2}"));
    settle(&c.url, 6);
    // The first analysis's configuration changes: its combinations run again.
    recompute(
        &rec,
        &[&ds_a, &ds_b],
        &format!("{}{A2}", A1.replace("null_samples = 10", "null_samples = 20")),
    );
    settle(&c.url, 8);

    // The ledger names one job per (model digest, dataset digest, analysis digest).
    let ledger: Vec<serde_json::Value> = std::fs::read_dir(c.store.join("registry"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    assert_eq!(ledger.len(), 8);
    let keys: BTreeSet<(String, String, String)> = ledger
        .iter()
        .map(|l| {
            (
                l["model_digest"].as_str().unwrap().to_string(),
                l["dataset_digest"].as_str().unwrap().to_string(),
                l["analysis_digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 8);

    // A worker runs them; a finished combination stays reused.
    let _w = worker(tmp.path(), &c.url, 0, &[]);
    let start = Instant::now();
    loop {
        let o = headscan(&["status", "--coordinator", &c.url]);
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        if s.lines().filter(|l| l.contains("succeeded")).count() == 8 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "jobs did not finish: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    settle(&c.url, 8);

    // The matrix: one model row, a column per dataset × analysis, each cell
    // the latest job's state, model digest and output.
    let o = headscan(&["results", "list", "--matrix", "--coordinator", &c.url]);
    let matrix = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = matrix.lines().collect();
    assert_eq!(lines.len(), 2, "{matrix}");
    assert_eq!(lines[0].split('\t').count(), 5, "{matrix}");
    assert!(
        lines[0].contains(" [aa]") && lines[0].contains(" [contact]"),
        "{matrix}"
    );
    let digests: BTreeSet<&str> = ledger
        .iter()
        .map(|l| l["model_digest"].as_str().unwrap())
        .collect();
    for cell in lines[1].split('\t').skip(1) {
        let parts: Vec<&str> = cell.split(' ').collect();
        assert_eq!(parts.len(), 3, "{cell}");
        assert_eq!(parts[0], "succeeded", "{matrix}");
        assert!(
            digests
                .iter()
                .any(|d| d.starts_with(&format!("sha256:{}", parts[1]))),
            "{cell}"
        );
        assert!(Path::new(parts[2]).join("heads.parquet").is_file(), "{cell}");
    }
    let out = ledger
        .iter()
        .map(|l| l["output"].as_str().unwrap())
        .find(|o| o.contains("/m1/contact/"))
        .unwrap();
    assert!(Path::new(out).join("heads.parquet").is_file(), "{out}");
}

#[test]
fn a_bad_recompute_file_stops_the_coordinator_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("bad.toml");
    std::fs::write(&rec, "datasets = []\n").unwrap();
    let o = headscan(&[
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--state",
        tmp.path().join("s.db").to_str().unwrap(),
        "--store",
        tmp.path().join("store").to_str().unwrap(),
        "--watch-models",
        tmp.path().to_str().unwrap(),
        "--recompute",
        rec.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml") && err.contains("[[analysis]]"), "{err}");
}
