//! `headscan probe` through a real cluster: a coordinator process and 1 or 3
//! worker processes on 127.0.0.1 do the extraction and every probe stage
//! (class counts, each Newton evaluation's gradients and Hessians, the
//! validation counts); the coordinator folds them in shard order. The
//! weights and tables are the same bytes as the in-process `headscan probe`,
//! whatever the worker count.

mod cluster;

use std::path::Path;

use cluster::*;

fn probe_args(dataset: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let r = root();
    let mut args: Vec<String> = [
        "probe",
        "--model",
        r.join("tests/fixtures/models/esm2").to_str().unwrap(),
        "--dataset",
        dataset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tasks",
        "contact",
        "--kinds",
        "embedding,attention,contact_regression",
        "--seed",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn probe(dataset: &Path, out: &Path, extra: &[&str]) {
    let args = probe_args(dataset, out, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = headscan(&args);
    assert!(
        o.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn same_bytes(a: &Path, b: &Path, file: &str) {
    let (x, y) = (
        std::fs::read(a.join(file)).unwrap(),
        std::fs::read(b.join(file)).unwrap(),
    );
    assert!(
        x == y,
        "{file} differs between {} and {}",
        a.display(),
        b.display()
    );
}

#[test]
fn one_and_three_worker_processes_give_the_in_process_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 2);
    let reference = tmp.path().join("in-process");
    // One probe at a time here, four at once (the default) on the cluster: same bytes.
    probe(&ds, &reference, &["--workers", "2", "--parallel-fits", "1"]);

    let c = coordinator(tmp.path(), 0, &[]);
    let _w1 = worker(tmp.path(), &c.url, 0, &[]);
    let one = tmp.path().join("one-worker");
    probe(&ds, &one, &["--coordinator", &c.url]);
    let _w2 = worker(tmp.path(), &c.url, 0, &[]);
    let _w3 = worker(tmp.path(), &c.url, 0, &["--no-prefetch"]);
    let three = tmp.path().join("three-workers");
    probe(&ds, &three, &["--coordinator", &c.url]);

    for out in [&one, &three] {
        for file in [
            "weights.json",
            "probes.parquet",
            "split.parquet",
            "embeddings/shards/part-00003.parquet",
        ] {
            same_bytes(&reference, out, file);
        }
        assert!(
            !out.join(".headscan-stages").exists(),
            "stage outputs are removed"
        );
    }
    let weights: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(three.join("weights.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = weights.iter().map(|w| w["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"embedding"));
    assert!(
        kinds.contains(&"attention") && kinds.last() == Some(&"contact_regression"),
        "{kinds:?}"
    );

    // `headscan extract` on the same cluster writes the same embedding shards.
    let extracted = tmp.path().join("extracted");
    let esm2 = root().join("tests/fixtures/models/esm2");
    let o = headscan(&[
        "extract",
        "--coordinator",
        &c.url,
        "--model",
        esm2.to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        extracted.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(extracted.join("shards/part-00003.parquet")).unwrap(),
        std::fs::read(reference.join("embeddings/shards/part-00003.parquet")).unwrap()
    );
    assert!(extracted.join("embeddings.json").exists());

    // Every stage was a job of the coordinator: its list shows them succeeded.
    let o = headscan(&["status", "--coordinator", &c.url]);
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(listed.contains("probe stage extract"), "{listed}");
    assert!(listed.contains("gradient-000"), "{listed}");
}

#[test]
fn a_failing_stage_names_the_shard_and_leaves_no_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = demo_dataset(tmp.path(), 4);
    let token = tmp.path().join("token");
    std::fs::write(&token, "probe-token\n").unwrap();
    let token = token.to_str().unwrap();
    let c = coordinator(tmp.path(), 0, &["--max-attempts", "1", "--token-file", token]);
    let _w = worker(tmp.path(), &c.url, 0, &["--token-file", token]);
    let out = tmp.path().join("out");
    // Without the coordinator's token the probe is refused before any work.
    let args = probe_args(&ds, &out, &["--coordinator", &c.url]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = headscan(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refused"), "{err}");
    // Layer 9 does not exist in the 2-layer fixture: the extract stage fails on the workers.
    let args = probe_args(
        &ds,
        &out,
        &["--coordinator", &c.url, "--token-file", token, "--layers", "9"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = headscan(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("probe stage extract") && err.contains("layer 9"),
        "{err}"
    );
    assert!(!out.join("probes.parquet").exists());
}
