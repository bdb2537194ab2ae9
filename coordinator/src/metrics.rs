//! Prometheus text exposition of the coordinator: tasks queued, leased,
//! done and failed over unfinished jobs, live workers, and counters of
//! committed sequences and residues (rates over a sliding window too).

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use crate::server::{Coordinator, now_ms};

/// Keeps recent samples of the committed-sequence counters for rates.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: Mutex<VecDeque<(u64, u64, u64)>>,
}

impl RateWindow {
    /// Records (now, sequences, residues) and returns the rates per second
    /// over the last minute.
    pub fn rates(&self, now: u64, sequences: u64, residues: u64) -> (f64, f64) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back((now, sequences, residues));
        while s.len() > 2 && s.front().is_some_and(|f| now.saturating_sub(f.0) > 60_000) {
            s.pop_front();
        }
        match (s.front(), s.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let dt = (b.0 - a.0) as f64 / 1000.0;
                ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt)
            }
            _ => (0.0, 0.0),
        }
    }
}

/// The metrics page.
pub fn render(c: &Coordinator, window: &RateWindow) -> String {
    let mut out = String::new();
    let counters = &c.counters;
    let (sequences, residues) = (
        counters.sequences.load(Ordering::Relaxed),
        counters.residues.load(Ordering::Relaxed),
    );
    let (seq_rate, res_rate) = window.rates(now_ms(), sequences, residues);
    let mut gauge = |name: &str, help: &str, kind: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    };
    match c.gauges() {
        Ok((p, jobs, workers)) => {
            gauge(
                "headscan_tasks_queued",
                "Tasks waiting for a worker (unfinished jobs).",
                "gauge",
                p.queued.into(),
            );
            gauge(
                "headscan_tasks_leased",
                "Tasks leased to workers.",
                "gauge",
                p.leased.into(),
            );
            gauge(
                "headscan_tasks_done",
                "Tasks committed (unfinished jobs).",
                "gauge",
                p.committed.into(),
            );
            gauge(
                "headscan_tasks_failed",
                "Tasks failed for good (unfinished jobs).",
                "gauge",
                p.failed.into(),
            );
            gauge(
                "headscan_jobs_active",
                "Jobs queued, running or reducing.",
                "gauge",
                jobs.into(),
            );
            gauge(
                "headscan_workers_live",
                "Workers seen recently.",
                "gauge",
                workers.into(),
            );
        }
        Err(e) => tracing::warn!(error = %e, "metrics: reading the state failed"),
    }
    gauge(
        "headscan_sequences_committed_total",
        "Sequences of committed shards.",
        "counter",
        sequences as f64,
    );
    gauge(
        "headscan_residues_committed_total",
        "Residues of committed shards.",
        "counter",
        residues as f64,
    );
    gauge(
        "headscan_sequences_per_second",
        "Committed sequences per second over the last minute.",
        "gauge",
        seq_rate,
    );
    gauge(
        "headscan_residues_per_second",
        "Committed residues per second over the last minute.",
        "gauge",
        res_rate,
    );
    gauge(
        "headscan_task_commits_total",
        "Shards committed.",
        "counter",
        counters.commits.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "headscan_task_attempts_failed_total",
        "Failed attempts reported by workers.",
        "counter",
        counters.failed_attempts.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "headscan_completions_ignored_total",
        "Late, duplicate or foreign completions.",
        "counter",
        counters.ignored_completions.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "headscan_leases_total",
        "Leases handed out.",
        "counter",
        counters.leases.load(Ordering::Relaxed) as f64,
    );
    gauge(
        "headscan_process_resident_bytes",
        "Resident memory of the coordinator.",
        "gauge",
        resident_bytes() as f64,
    );
    out
}

/// Resident set size of this process (Linux; 0 elsewhere).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}
