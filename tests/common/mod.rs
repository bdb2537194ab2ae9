//! Helpers shared by the end-to-end tests: the shared data folder, running
//! the `headscan` binary, and reading what it published.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use headscan_proto::manifest::Manifest;
use headscan_proto::record::{ProteinRecord, from_batch};

/// The shared real-data folder: `$HEADSCAN_TEST_DATA`, else `../shared/data`
/// beside the checkout. `None` (with a loud note) when absent outside CI; a
/// panic when absent under `CI=true`.
pub fn test_data() -> Option<PathBuf> {
    let dir = std::env::var_os("HEADSCAN_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("SOURCES.md").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "shared test data not found at {} (set HEADSCAN_TEST_DATA)",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED: shared test data not found at {} (set HEADSCAN_TEST_DATA)",
        dir.display()
    );
    None
}

/// Runs `headscan` with arguments; returns its output.
pub fn headscan(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_headscan"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("headscan runs")
}

/// Runs `headscan CMD --model M --dataset D --out O EXTRA…` (extract, probe)
/// and asserts success.
pub fn model_command_ok(cmd: &str, model: &Path, dataset: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        cmd,
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        dataset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = headscan(&args);
    assert!(
        o.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `headscan ingest` and asserts success; returns stderr.
pub fn ingest_ok(format: &str, input: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "ingest",
        "--format",
        format,
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = headscan(&args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "ingest {format} failed: {stderr}");
    stderr
}

/// The manifest of a published dataset.
pub fn manifest(out: &Path) -> Manifest {
    let text = std::fs::read(out.join("manifest.json")).expect("manifest.json exists");
    serde_json::from_slice(&text).expect("manifest parses")
}

/// Every record of a published dataset, in order.
pub fn records(out: &Path) -> Vec<ProteinRecord> {
    let m = manifest(out);
    let mut all = Vec::new();
    for shard in &m.shards {
        let file = std::fs::File::open(out.join(&shard.url)).expect("shard exists");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            all.extend(from_batch(&batch.unwrap()).unwrap());
        }
    }
    all
}

/// Writes a text file into a directory and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
