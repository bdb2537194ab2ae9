//! The worker's pull loop: register with a coordinator, lease a task (one
//! shard of one job), run it, report its partial counts, repeat. Heartbeats
//! keep held leases alive and bring back "abandon" (job cancelled or lease
//! lost), which stops the task within a batch. The loaded model is kept
//! across tasks of the same model, and the next task's shard is read while
//! the current one computes.
//!
//! It knows nothing of scheduling: which task comes next, retries and
//! reduction are the coordinator's. A finished task's result is sent until
//! the coordinator answers, with backoff, so a coordinator restart loses no
//! work.
//!
//! Test knob: `HEADSCAN_TEST_TASK_DELAY_MS` (environment) makes the worker
//! wait that long after leasing each task before computing it, so tests can
//! kill a worker or a coordinator reliably in the middle of a task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candle_core::Device;
use headscan_proto::client::{BearerToken, ClientError, channel};
use headscan_proto::features::ContactRule;
use headscan_proto::pb::work_client::WorkClient;
use headscan_proto::pb::{
    CompleteTaskRequest, FailTaskRequest, HeartbeatRequest, LeaseTaskRequest, PartialCounts, ProbeResult,
    RegisterWorkerRequest, Task,
};
use headscan_proto::record::ProteinRecord;
use headscan_proto::store::Location;
use sha2::{Digest, Sha256};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tracing::Instrument;

use crate::analysis::features::expand;
use crate::models::LoadedModel;
use crate::shard::{AnalysisSpec, process_records_until};

type Client = WorkClient<InterceptedService<Channel, BearerToken>>;

/// Errors that stop a worker (task errors are reported, not returned).
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The coordinator cannot be reached or refused the worker for good.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The coordinator refused the worker.
    #[error("coordinator refused the worker: {0}")]
    Refused(String),
    /// The device is not usable.
    #[error("device {device}: {reason}")]
    Device {
        /// The device as given.
        device: String,
        /// Why.
        reason: String,
    },
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Coordinator URL.
    pub coordinator: String,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Bearer token, if the coordinator wants one.
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for TLS.
    pub tls_ca: Option<Vec<u8>>,
    /// This worker's id (unique among workers).
    pub worker_id: String,
    /// Lease a second task and read its shard while the first computes.
    pub prefetch: bool,
    /// Wait after leasing each task (tests; `HEADSCAN_TEST_TASK_DELAY_MS`).
    pub task_delay: Duration,
    /// Counters for /metrics.
    pub metrics: Arc<WorkerMetrics>,
}

/// Counters of one worker, for Prometheus.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// Tasks whose partial was sent.
    pub tasks_done: AtomicU64,
    /// Tasks reported failed.
    pub tasks_failed: AtomicU64,
    /// Tasks abandoned (cancelled or lease lost).
    pub tasks_abandoned: AtomicU64,
    /// Sequences computed.
    pub sequences: AtomicU64,
    /// Residues computed.
    pub residues: AtomicU64,
    /// Tasks in progress.
    pub busy: AtomicU64,
    /// Models loaded.
    pub model_loads: AtomicU64,
}

impl WorkerMetrics {
    /// The Prometheus text page.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, kind, v) in [
            (
                "headscan_worker_tasks_done_total",
                "Tasks whose partial counts were sent.",
                "counter",
                &self.tasks_done,
            ),
            (
                "headscan_worker_tasks_failed_total",
                "Tasks reported failed.",
                "counter",
                &self.tasks_failed,
            ),
            (
                "headscan_worker_tasks_abandoned_total",
                "Tasks abandoned (job cancelled or lease lost).",
                "counter",
                &self.tasks_abandoned,
            ),
            (
                "headscan_worker_sequences_total",
                "Sequences computed.",
                "counter",
                &self.sequences,
            ),
            (
                "headscan_worker_residues_total",
                "Residues computed.",
                "counter",
                &self.residues,
            ),
            ("headscan_worker_busy", "Tasks in progress.", "gauge", &self.busy),
            (
                "headscan_worker_model_loads_total",
                "Models loaded.",
                "counter",
                &self.model_loads,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

impl PullOptions {
    /// Options with defaults: a random worker id, prefetch on, the test delay from the environment.
    pub fn new(coordinator: &str, device: &str) -> Self {
        let host = hostname();
        Self {
            coordinator: coordinator.to_string(),
            device: device.to_string(),
            token: None,
            tls_ca: None,
            worker_id: format!("{host}-{}-{}", std::process::id(), random_suffix()),
            prefetch: true,
            task_delay: Duration::from_millis(
                std::env::var("HEADSCAN_TEST_TASK_DELAY_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            ),
            metrics: Arc::default(),
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:08x}", h.finish() as u32)
}

/// A loaded model shared by the workers of one process, kept across tasks
/// of the same model.
#[derive(Default)]
pub struct ModelCache {
    slot: tokio::sync::Mutex<Option<CachedModel>>,
}

/// A model in the cache.
#[derive(Clone)]
pub struct CachedModel {
    /// The model URL it was loaded from.
    pub url: String,
    /// The precision it computes in.
    pub precision: crate::models::Precision,
    /// The model.
    pub model: Arc<LoadedModel>,
    /// Digest of every file that defines it ([`crate::digest::model_digest`]).
    pub digest: String,
    /// `sha256:` of its config.json.
    pub config_digest: String,
}

impl ModelCache {
    /// The model at `url` computing in `precision` (a job's `precision`:
    /// `""`, `f32` or `bf16`), loading it (once) when it is not the cached one.
    pub async fn get(
        &self,
        url: &str,
        precision: &str,
        device: &Device,
        metrics: &WorkerMetrics,
    ) -> Result<CachedModel, String> {
        let precision = crate::models::Precision::parse(precision)?;
        let mut slot = self.slot.lock().await;
        if let Some(m) = slot.as_ref().filter(|m| m.url == url && m.precision == precision) {
            return Ok(m.clone());
        }
        *slot = None; // free the old model before loading the next
        let dir = crate::fetch::resolve_model(url)
            .await
            .map_err(|e| format!("cannot fetch model {url}: {e}"))?;
        let device = device.clone();
        let (model, digest, config_digest) = tokio::task::spawn_blocking(move || {
            let config_digest = format!(
                "sha256:{}",
                hex::encode(Sha256::digest(
                    std::fs::read(dir.join("config.json")).unwrap_or_default()
                ))
            );
            let digest = crate::digest::model_digest(&dir)
                .map_err(|e| format!("cannot digest model {}: {e}", dir.display()))?;
            crate::models::load_model_in(&dir, &device, None, precision)
                .map(|m| (m, digest, config_digest))
                .map_err(|e| format!("cannot load model {}: {e}", dir.display()))
        })
        .await
        .map_err(|e| e.to_string())??;
        tracing::info!(model = url, family = ?model.family, %precision, "model loaded");
        metrics.model_loads.fetch_add(1, Ordering::Relaxed);
        let cached = CachedModel {
            url: url.to_string(),
            precision,
            model: Arc::new(model),
            digest,
            config_digest,
        };
        *slot = Some(cached.clone());
        Ok(cached)
    }
}

/// A held lease: what the heartbeat loop reports and what it brings back.
#[derive(Default)]
struct Held {
    sequences: AtomicU64,
    abandon: AtomicBool,
}

type HeldMap = Arc<Mutex<HashMap<String, Arc<Held>>>>;

/// A leased task whose shard is being read.
struct Pending {
    task: Task,
    held: Arc<Held>,
    shard: tokio::task::JoinHandle<Result<bytes::Bytes, String>>,
}

/// Runs the pull loop until `stop` turns true (forever without one).
pub async fn run(
    opts: PullOptions,
    models: Arc<ModelCache>,
    mut stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<(), PullError> {
    let device = crate::attention::parse_device(&opts.device).map_err(|e| PullError::Device {
        device: opts.device.clone(),
        reason: e.to_string(),
    })?;
    let channel = channel(&opts.coordinator, opts.tls_ca.as_deref())?;
    let mut client = WorkClient::with_interceptor(channel, BearerToken::new(opts.token.as_deref())?)
        .max_decoding_message_size(headscan_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(headscan_proto::MAX_MESSAGE_BYTES);
    let stopped =
        |stop: &Option<tokio::sync::watch::Receiver<bool>>| stop.as_ref().is_some_and(|s| *s.borrow());

    // Register, retrying while the coordinator is unreachable.
    let mut backoff = Backoff::default();
    let heartbeat = loop {
        let req = RegisterWorkerRequest {
            worker_id: opts.worker_id.clone(),
            device: opts.device.clone(),
            hostname: hostname(),
            protocol_version: headscan_proto::PROTOCOL_VERSION,
            software: format!("headscan {}", env!("CARGO_PKG_VERSION")),
        };
        match client.register(req).await {
            Ok(r) => break Duration::from_millis(r.into_inner().heartbeat_interval_ms.max(50)),
            Err(s) if fatal(&s) => return Err(PullError::Refused(s.message().to_string())),
            Err(s) => {
                if stopped(&stop) {
                    return Ok(());
                }
                backoff.wait("register", &s).await;
            }
        }
    };
    tracing::info!(worker = %opts.worker_id, coordinator = %opts.coordinator, "worker registered");

    let held: HeldMap = Arc::default();
    let beats = tokio::spawn(heartbeats(
        client.clone(),
        opts.worker_id.clone(),
        held.clone(),
        heartbeat,
    ));
    let mut next: Option<Pending> = None;
    let mut idle = Backoff::idle();
    let result = loop {
        if stopped(&stop) {
            break Ok(());
        }
        let current = match next.take() {
            Some(p) => p,
            None => match lease(&mut client, &opts, &held).await {
                Ok(Some(p)) => {
                    idle = Backoff::idle();
                    p
                }
                Ok(None) => {
                    let wait = idle.next_delay();
                    match stop.as_mut() {
                        Some(s) => {
                            let _ = tokio::time::timeout(wait, s.changed()).await;
                        }
                        None => tokio::time::sleep(wait).await,
                    }
                    continue;
                }
                Err(s) if fatal(&s) => break Err(PullError::Refused(s.message().to_string())),
                Err(s) => {
                    backoff.wait("lease", &s).await;
                    continue;
                }
            },
        };
        // Read the next shard while this one computes.
        if opts.prefetch {
            next = lease(&mut client, &opts, &held).await.ok().flatten();
        }
        let task = current.task.clone();
        opts.metrics.busy.fetch_add(1, Ordering::Relaxed);
        let outcome = run_task(current, &opts, &models, &device).await;
        opts.metrics.busy.fetch_sub(1, Ordering::Relaxed);
        match &outcome {
            Outcome::Done(completion, _) => {
                let (sequences, residues) = completion.work();
                opts.metrics.tasks_done.fetch_add(1, Ordering::Relaxed);
                opts.metrics.sequences.fetch_add(sequences, Ordering::Relaxed);
                opts.metrics.residues.fetch_add(residues, Ordering::Relaxed);
            }
            Outcome::Failed(_) => {
                opts.metrics.tasks_failed.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Abandoned => {
                opts.metrics.tasks_abandoned.fetch_add(1, Ordering::Relaxed);
            }
        }
        report(&mut client, &opts.worker_id, &task, outcome).await;
        held.lock().map(|mut h| h.remove(&task.task_id)).ok();
    };
    beats.abort();
    // Leases still held (a prefetched task) expire at the coordinator and are re-issued.
    result
}

/// True for errors that retrying cannot fix.
fn fatal(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied | tonic::Code::FailedPrecondition
    )
}

async fn lease(
    client: &mut Client,
    opts: &PullOptions,
    held: &HeldMap,
) -> Result<Option<Pending>, tonic::Status> {
    let resp = client
        .lease(LeaseTaskRequest {
            worker_id: opts.worker_id.clone(),
            device: opts.device.clone(),
        })
        .await?
        .into_inner();
    let Some(task) = resp.task else {
        return Ok(None);
    };
    tracing::debug!(task = %task.task_id, shard = task.shard_index, "task leased");
    let h = Arc::new(Held::default());
    if let Ok(mut map) = held.lock() {
        map.insert(task.task_id.clone(), h.clone());
    }
    let (dataset, path) = (
        task.spec.as_ref().map(|s| s.dataset.clone()).unwrap_or_default(),
        task.shard_path.clone(),
    );
    let shard = tokio::spawn(async move {
        let location = Location::parse(&dataset).map_err(|e| e.to_string())?;
        location.get(&path).await.map_err(|e| e.to_string())
    });
    Ok(Some(Pending { task, held: h, shard }))
}

/// What became of a task.
enum Outcome {
    Done(Completion, CachedModel),
    Failed(String),
    Abandoned,
}

/// What a finished task sends: an analysis shard's counts and record ids,
/// or a probe stage's result.
enum Completion {
    Counts(PartialCounts, Vec<String>),
    Probe(Box<ProbeResult>),
}

impl Completion {
    /// Sequences and residues the task computed (residues: 0 for probe stages).
    fn work(&self) -> (u64, u64) {
        match self {
            Completion::Counts(c, _) => (c.sequences, c.residues),
            Completion::Probe(r) => (r.records, 0),
        }
    }
}

async fn run_task(p: Pending, opts: &PullOptions, models: &ModelCache, device: &Device) -> Outcome {
    let span =
        tracing::info_span!("task", task = %p.task.task_id, job = %p.task.job_id, shard = p.task.shard_index);
    run_task_inner(p, opts, models, device).instrument(span).await
}

async fn run_task_inner(p: Pending, opts: &PullOptions, models: &ModelCache, device: &Device) -> Outcome {
    let Pending { task, held, shard } = p;
    let Some(spec) = task.spec.clone() else {
        return Outcome::Failed("the task carries no job spec".into());
    };
    if !opts.task_delay.is_zero() {
        let until = tokio::time::Instant::now() + opts.task_delay;
        while tokio::time::Instant::now() < until {
            if held.abandon.load(Ordering::SeqCst) {
                return Outcome::Abandoned;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let url = format!("{}/{}", spec.dataset.trim_end_matches('/'), task.shard_path);
    let bytes = match shard.await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Outcome::Failed(format!("cannot read shard {url}: {e}")),
        Err(e) => return Outcome::Failed(format!("reading shard {url} failed: {e}")),
    };
    let model = match models
        .get(&spec.model, &spec.precision, device, &opts.metrics)
        .await
    {
        Ok(m) => m,
        Err(e) => return Outcome::Failed(e),
    };
    if let Some(stage) = &spec.probe {
        let records = match task_records(&task, bytes, &url) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e),
        };
        held.sequences.fetch_add(records.len() as u64, Ordering::SeqCst);
        let abandon = move || held.abandon.load(Ordering::SeqCst);
        let shard = (task.shard_index, task.shard_path.as_str());
        return match crate::probe::run_stage(
            &spec,
            stage,
            shard,
            records,
            model.model.clone(),
            device,
            abandon,
        )
        .await
        {
            Ok(Some(r)) => Outcome::Done(Completion::Probe(Box::new(r)), model),
            Ok(None) => Outcome::Abandoned,
            Err(e) => Outcome::Failed(format!("shard {url}: {e}")),
        };
    }
    let (m, device) = (model.clone(), device.clone());
    let computed = tokio::task::spawn_blocking(move || {
        let progress = |n: usize| {
            held.sequences.fetch_add(n as u64, Ordering::SeqCst);
        };
        process_task(&task, bytes, &m.model, &device, progress, || {
            held.abandon.load(Ordering::SeqCst)
        })
    })
    .await;
    match computed {
        Ok(Ok(Some((counts, ids)))) => Outcome::Done(Completion::Counts(counts, ids), model),
        Ok(Ok(None)) => Outcome::Abandoned,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(e) => Outcome::Failed(format!("task panicked: {e}")),
    }
}

/// Computes one task on a loaded model: decodes the shard `bytes`, keeps
/// the task's rows and accumulates their partial counts; `None` when
/// `abandon` turned true. The one computation of a shard, shared by the pull
/// loop and engine-native `headscan task`. Blocking.
pub fn process_task(
    task: &Task,
    bytes: bytes::Bytes,
    model: &LoadedModel,
    device: &Device,
    progress: impl FnMut(usize),
    abandon: impl Fn() -> bool,
) -> Result<Option<(PartialCounts, Vec<String>)>, String> {
    let Some(spec) = task.spec.as_ref() else {
        return Err("the task carries no job spec".into());
    };
    let url = format!("{}/{}", spec.dataset.trim_end_matches('/'), task.shard_path);
    let rule = ContactRule {
        max_distance: spec.contact_distance as f32,
        min_separation: spec.contact_min_separation as usize,
    };
    let features = expand(&spec.features, rule).map_err(|e| e.to_string())?;
    let analysis = AnalysisSpec {
        features,
        threshold: spec.threshold,
        max_len: spec.max_len as usize,
        batch_size: (spec.batch_size as usize).max(1),
        null_samples: spec.null_samples,
        seed: spec.seed,
        visualize: visualize_ids(&spec.config_json),
    };
    let records = task_records(task, bytes, &url)?;
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    process_records_until(model, &records, &analysis, device, progress, abandon)
        .map(|c| c.map(|c| (c, ids)))
        .map_err(|e| format!("shard {url}: {e}"))
}

/// The records of a task: its shard's bytes decoded, cut to the task's rows.
fn task_records(task: &Task, bytes: bytes::Bytes, url: &str) -> Result<Vec<ProteinRecord>, String> {
    let (rows, listed) = (task.rows as usize, &task.row_indices);
    let mut records = headscan_proto::shard::decode_shard(bytes, url).map_err(|e| e.to_string())?;
    if listed.is_empty() {
        records.truncate(rows);
    } else {
        if let Some(&r) = listed.iter().find(|&&r| r as usize >= records.len()) {
            return Err(format!(
                "shard {url} holds {} rows but row {r} was selected",
                records.len()
            ));
        }
        let mut keep = listed.iter().map(|&r| r as usize).peekable();
        records = records
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| keep.next_if_eq(&i).map(|_| r))
            .collect();
    }
    Ok(records)
}

/// The record ids of config `visualize` in the job's configuration JSON
/// (none when absent or unreadable: the counts never depend on it).
fn visualize_ids(config_json: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(config_json)
        .ok()
        .and_then(|v| v.get("visualize").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Sends the outcome until the coordinator answers.
async fn report(client: &mut Client, worker: &str, task: &Task, outcome: Outcome) {
    let mut backoff = Backoff::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let sent = match &outcome {
            Outcome::Abandoned => {
                tracing::info!(task = %task.task_id, "task abandoned (job cancelled or lease lost)");
                return;
            }
            Outcome::Done(completion, model) => {
                let (partial, record_ids, probe) = match completion {
                    Completion::Counts(counts, ids) => (Some(counts.clone()), ids.clone(), None),
                    Completion::Probe(result) => (None, Vec::new(), Some((**result).clone())),
                };
                client
                    .complete(CompleteTaskRequest {
                        worker_id: worker.to_string(),
                        task_id: task.task_id.clone(),
                        partial_url: String::new(),
                        partial,
                        model_family: format!("{:?}", model.model.family),
                        model_digest: model.digest.clone(),
                        model_config_digest: model.config_digest.clone(),
                        record_ids,
                        probe,
                    })
                    .await
                    .map(|r| r.into_inner().accepted)
            }
            Outcome::Failed(reason) => client
                .fail(FailTaskRequest {
                    worker_id: worker.to_string(),
                    task_id: task.task_id.clone(),
                    reason: reason.clone(),
                })
                .await
                .map(|_| true),
        };
        match sent {
            Ok(accepted) => {
                match &outcome {
                    Outcome::Failed(reason) => tracing::warn!(task = %task.task_id, %reason, "task failed"),
                    _ if accepted => tracing::debug!(task = %task.task_id, "task committed"),
                    _ => tracing::info!(task = %task.task_id, "completion not accepted (late or duplicate)"),
                }
                return;
            }
            Err(s) if fatal(&s) || s.code() == tonic::Code::InvalidArgument => {
                tracing::error!(task = %task.task_id, status = %s, "coordinator refused the task report");
                return;
            }
            Err(s) => {
                if tokio::time::Instant::now() > deadline {
                    tracing::error!(task = %task.task_id, status = %s, "giving up reporting the task");
                    return;
                }
                backoff.wait("report", &s).await;
            }
        }
    }
}

/// Heartbeats for every held lease, every `interval`.
async fn heartbeats(mut client: Client, worker: String, held: HeldMap, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let tasks: Vec<(String, Arc<Held>)> = held
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for (task_id, h) in tasks {
            let req = HeartbeatRequest {
                worker_id: worker.clone(),
                task_id: task_id.clone(),
                sequences_done: h.sequences.load(Ordering::SeqCst),
            };
            match client.heartbeat(req).await {
                Ok(r) if r.get_ref().abandon => {
                    tracing::info!(task = %task_id, "coordinator says abandon");
                    h.abandon.store(true, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(s) => tracing::debug!(task = %task_id, status = %s, "heartbeat failed"),
            }
        }
    }
}

/// Exponential backoff with a cap, logging the first failure of a streak.
struct Backoff {
    delay: Duration,
    max: Duration,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(100),
            max: Duration::from_secs(5),
            failures: 0,
        }
    }
}

impl Backoff {
    /// Polling when there is no work: 50 ms up to 1 s.
    fn idle() -> Self {
        Self {
            delay: Duration::from_millis(50),
            max: Duration::from_secs(1),
            failures: 0,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.delay;
        self.delay = (self.delay * 2).min(self.max);
        d
    }

    async fn wait(&mut self, what: &str, s: &tonic::Status) {
        self.failures += 1;
        if self.failures == 1 || self.failures.is_multiple_of(20) {
            tracing::warn!(call = what, status = %s.message(), "coordinator unreachable; retrying");
        }
        let d = self.next_delay();
        tokio::time::sleep(d).await;
    }
}
