//! Helpers of the distributed end-to-end tests: a coordinator and workers
//! as real processes of the built binary on 127.0.0.1, killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_headscan")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    /// SIGKILL now, and wait for it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// True while it runs.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator process.
pub struct Coordinator {
    /// The process.
    pub proc: Proc,
    /// Its URL.
    pub url: String,
    /// State file.
    pub state: PathBuf,
    /// Store directory.
    pub store: PathBuf,
    /// Port.
    pub port: u16,
}

/// Starts a coordinator on `port` (0 = any) with short leases; extra flags appended.
pub fn coordinator(dir: &Path, port: u16, extra: &[&str]) -> Coordinator {
    let state = dir.join("state.db");
    let store = dir.join("store");
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(bin())
        .args([
            "coordinator",
            "--listen",
            &listen,
            "--state",
            state.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--lease-ms",
            "1500",
            "--heartbeat-ms",
            "250",
        ])
        .args(extra)
        .env("RUST_LOG", "warn,headscan=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file(dir, "coordinator")))
        .spawn()
        .expect("coordinator starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_else(|| panic!("coordinator printed {line:?}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "coordinator printed {line:?}");
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    Coordinator {
        proc: Proc(child),
        url: format!("http://{addr}"),
        state,
        store,
        port,
    }
}

fn log_file(dir: &Path, name: &str) -> std::fs::File {
    let mut n = 0;
    loop {
        let p = dir.join(format!("{name}-{n}.log"));
        if !p.exists() {
            return std::fs::File::create(p).unwrap();
        }
        n += 1;
    }
}

/// Starts a worker; `delay_ms` > 0 sets HEADSCAN_TEST_TASK_DELAY_MS.
pub fn worker(dir: &Path, url: &str, delay_ms: u64, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.args(["worker", "--coordinator", url])
        .args(extra)
        .env("RUST_LOG", "warn,headscan=info")
        .env("HEADSCAN_CACHE", dir.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file(dir, "worker")));
    if delay_ms > 0 {
        cmd.env("HEADSCAN_TEST_TASK_DELAY_MS", delay_ms.to_string());
    }
    Proc(cmd.spawn().expect("worker starts"))
}

/// Runs the binary to completion.
pub fn headscan(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("headscan runs")
}

/// The demo job's flags (fixture ESM-2, demo config) on `dataset` into `out`.
pub fn demo_flags(dataset: &Path, out: &Path) -> Vec<String> {
    let r = root();
    [
        "--config",
        r.join("configs/demo.toml").to_str().unwrap(),
        "--model",
        r.join("tests/fixtures/models/esm2").to_str().unwrap(),
        "--dataset",
        dataset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Ingests the demo ProteinNet records with `rows` per shard.
pub fn demo_dataset(dir: &Path, rows: usize) -> PathBuf {
    let out = dir.join(format!("demo-{rows}"));
    let input = root().join("examples/data/demo.proteinnet");
    let o = headscan(&[
        "ingest",
        "--format",
        "proteinnet",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--shard-rows",
        &rows.to_string(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// `headscan run` of the demo job; returns the output directory.
pub fn embedded_run(dir: &Path, dataset: &Path, name: &str) -> PathBuf {
    embedded_run_with(dir, dataset, name, &[])
}

/// Demo records (in different shards at 2 rows per shard) whose attention
/// the byte-for-byte comparisons store in `sequences.parquet`.
pub const VISUALIZE: &str = "SYN#001,SYN#004,SYN#011";

/// `headscan run` of the demo job with `extra` flags; returns the output directory.
pub fn embedded_run_with(dir: &Path, dataset: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["run".to_string()];
    args.extend(demo_flags(dataset, &out));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = headscan(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// `headscan submit` with the demo flags plus `extra`; returns the output.
pub fn submit(url: &str, dataset: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["submit".to_string(), "--coordinator".into(), url.into()];
    args.extend(demo_flags(dataset, out));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    headscan(&args)
}

/// The job id: the last line of stdout.
pub fn job_id(o: &Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout);
    stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no job id; stderr: {}", String::from_utf8_lossy(&o.stderr)))
        .trim()
        .to_string()
}

/// `headscan status JOB` output.
pub fn status(url: &str, job: &str, extra: &[&str]) -> String {
    let mut args = vec!["status", job, "--coordinator", url];
    args.extend_from_slice(extra);
    let o = headscan(&args);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls `status` until `pred` holds for its first line; panics after `timeout`.
pub fn wait_for(
    url: &str,
    job: &str,
    timeout: Duration,
    extra: &[&str],
    pred: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let s = status(url, job, extra);
        if pred(&s) {
            return s;
        }
        assert!(start.elapsed() < timeout, "timed out waiting; last status: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Shards done in a status line (`shards D/T`).
pub fn shards_done(status: &str) -> u32 {
    status
        .split("shards ")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// Asserts that the three tables of two outputs are the same bytes.
pub fn assert_same_tables(a: &Path, b: &Path) {
    assert_eq!(
        a.join("sequences.parquet").exists(),
        b.join("sequences.parquet").exists(),
        "sequences.parquet in one of {} and {} only",
        a.display(),
        b.display()
    );
    let mut tables = vec!["heads.parquet", "layers.parquet", "null.parquet"];
    if a.join("sequences.parquet").exists() {
        tables.push("sequences.parquet");
    }
    for table in tables {
        let (x, y) = (std::fs::read(a.join(table)), std::fs::read(b.join(table)));
        assert!(
            x.is_ok() && y.is_ok(),
            "{table} missing in {} or {}",
            a.display(),
            b.display()
        );
        assert!(
            x.unwrap() == y.unwrap(),
            "{table} differs: {} vs {}",
            a.display(),
            b.display()
        );
    }
}
