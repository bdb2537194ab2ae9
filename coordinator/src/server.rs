//! The coordinator process: the scheduler over its SQLite state, the object
//! store holding committed partials, and one prefix fold per running job.
//! The gRPC services ([`crate::service`]) are thin wrappers over this.
//!
//! A commit writes the shard's partial at the key fixed by (job, shard),
//! then records it once in the state; the reducer folds committed partials
//! in shard order, reading each back from the store, so memory holds one
//! folded partial per running job whatever the number of shards. On start,
//! every unfinished job's fold is rebuilt from the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headscan_proto::ids::{JobId, TaskId};
use headscan_proto::pb::{
    CompleteTaskRequest, JobResult, JobSpec, JobState, JobStatus, ProbeStage, ShardResult, Task,
};
use headscan_proto::store::{Location, StoreError};
use prost::Message;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::dataset::{Dataset, DatasetError};
use crate::finish::{JobFacts, write_outputs};
use crate::plan::{config_from_spec, identity, plan_tasks};
use crate::probe::fold::{PROBE_RESULT, ProbeFold};
use crate::reduce::PrefixFold;
use crate::scheduler::{Beat, Policy, Scheduler};
use crate::state::{JobProgress, JobRow, StateError, StateStore, TaskState};

/// Errors of coordinator operations, mapped to gRPC statuses by the services.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The job does not exist.
    #[error("no job {0}")]
    NotFound(String),
    /// The dataset cannot be used.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Sequences of committed shards.
    pub sequences: AtomicU64,
    /// Residues of committed shards.
    pub residues: AtomicU64,
    /// Shards committed.
    pub commits: AtomicU64,
    /// Completions ignored (late, duplicate, foreign).
    pub ignored_completions: AtomicU64,
    /// Failed attempts reported by workers.
    pub failed_attempts: AtomicU64,
    /// Leases handed out.
    pub leases: AtomicU64,
}

/// The coordinator.
pub struct Coordinator {
    scheduler: Mutex<Scheduler>,
    store: Location,
    folds: Mutex<HashMap<JobId, Arc<tokio::sync::Mutex<PrefixFold>>>>,
    commit_locks: Vec<tokio::sync::Mutex<()>>,
    changed: tokio::sync::watch::Sender<u64>,
    /// Counters for /metrics.
    pub counters: Counters,
}

impl Coordinator {
    /// A coordinator over a state store and an object store (where partials
    /// and default outputs go). Spawns the lease-expiry loop and resumes the
    /// reduction of every unfinished job; needs a tokio runtime.
    pub fn start(state: StateStore, store: Location, policy: Policy) -> Result<Arc<Self>, CoordinatorError> {
        let scheduler = Scheduler::new(state, policy, now_ms())?;
        let (changed, _) = tokio::sync::watch::channel(0);
        let coordinator = Arc::new(Self {
            scheduler: Mutex::new(scheduler),
            store,
            folds: Mutex::default(),
            commit_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            changed,
            counters: Counters::default(),
        });
        let weak = Arc::downgrade(&coordinator);
        let tick = Duration::from_millis((policy.lease_ms / 4).clamp(50, 1000));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(c) = weak.upgrade() else { break };
                c.expire_leases();
            }
        });
        let unfinished = coordinator.with_state(|s| {
            s.state()
                .transaction(|tx| tx.jobs(&[JobState::Queued, JobState::Running, JobState::Reducing]))
        })?;
        for job in unfinished {
            tracing::info!(job = %job.id, "resuming job");
            coordinator.poke(job.id);
        }
        Ok(coordinator)
    }

    fn with_state<T>(
        &self,
        f: impl FnOnce(&mut Scheduler) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let mut guard = self.scheduler.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// A receiver that changes whenever any job changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The scheduling policy.
    pub fn policy(&self) -> Policy {
        self.with_state(|s| Ok(s.policy())).unwrap_or_default()
    }

    fn expire_leases(self: &Arc<Self>) {
        match self.with_state(|s| s.expire(now_ms())) {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(leases = n, "leases expired; tasks re-queued");
                self.notify();
                self.poke_running();
            }
            Err(e) => tracing::error!(error = %e, "expiring leases failed"),
        }
    }

    fn poke_running(self: &Arc<Self>) {
        if let Ok(jobs) = self.with_state(|s| s.state().transaction(|tx| tx.jobs(&[JobState::Running]))) {
            for j in jobs {
                self.poke(j.id);
            }
        }
    }

    /// Plans and records a job; returns its id. With `if_changed`, a job
    /// that already succeeded with the same model digest, dataset content
    /// and [`identity`] is returned instead (and `true`).
    pub async fn submit(
        self: &Arc<Self>,
        mut spec: JobSpec,
        if_changed: bool,
    ) -> Result<(JobId, bool), CoordinatorError> {
        let id = JobId::random();
        if spec.model.is_empty()
            || spec.dataset.is_empty()
            || (spec.features.is_empty() && spec.probe.is_none())
        {
            return Err(CoordinatorError::Invalid(
                "model, dataset and features (or a probe stage) are required".into(),
            ));
        }
        if spec.probe.is_some() && (spec.limit != 0 || !spec.features.is_empty()) {
            return Err(CoordinatorError::Invalid(
                "a probe stage uses every record and no analysis features".into(),
            ));
        }
        if spec.output.is_empty() {
            spec.output = self.store.child_url(&format!("{}/out", id.key_prefix()));
        } else {
            check_output(&spec.output)?;
        }
        let cfg = config_from_spec(&spec).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        let dataset = Dataset::open(&spec.dataset).await?;
        spec.dataset_content_hash = dataset.manifest.content_hash.clone();
        if if_changed {
            if spec.model_digest.is_empty() {
                return Err(CoordinatorError::Invalid(
                    "if_changed needs the model's digest in the spec".into(),
                ));
            }
            let want = identity(&spec);
            let done = self.with_state(|s| s.state().transaction(|tx| tx.jobs(&[JobState::Succeeded])))?;
            if let Some(j) = done.into_iter().rev().find(|j| {
                j.model_digest == spec.model_digest
                    && j.spec.dataset_content_hash == spec.dataset_content_hash
                    && identity(&j.spec) == want
            }) {
                tracing::info!(job = %j.id, "unchanged: an identical job already succeeded");
                return Ok((j.id, true));
            }
        }
        let (tasks, planned) = plan_tasks(&dataset.manifest.shards, &cfg)
            .map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        let sequences_total = planned.selected;
        if sequences_total == 0 {
            return Err(CoordinatorError::Invalid(format!(
                "dataset {} is empty after filtering (limit {}, sample {})",
                spec.dataset, cfg.limit, cfg.sample
            )));
        }
        let row = JobRow {
            id: id.clone(),
            output: spec.output.clone(),
            max_attempts: spec.max_attempts,
            spec,
            state: JobState::Queued,
            message: String::new(),
            tasks_total: tasks.len() as u32,
            sequences_total,
            model_family: String::new(),
            model_digest: String::new(),
            model_config_digest: String::new(),
            created_ms: now_ms(),
            started_ms: 0,
            finished_ms: 0,
        };
        self.with_state(|s| s.state().transaction(|tx| tx.insert_job(&row, &tasks)))?;
        if row.spec.probe.is_some() {
            // A probe command submits one such job per Newton evaluation: not news.
            tracing::debug!(job = %id, shards = row.tasks_total, "probe stage submitted");
        } else {
            tracing::info!(job = %id, shards = row.tasks_total, sequences = sequences_total, "job submitted");
        }
        self.notify();
        Ok((id, false))
    }

    /// The status of a job.
    pub fn status(&self, job: &str) -> Result<JobStatus, CoordinatorError> {
        let id = JobId::parse(job).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        let live_since = now_ms().saturating_sub(3 * self.policy().heartbeat_ms.max(1000));
        let found = self.with_state(|s| {
            let Some((row, progress)) = s.job(&id)? else {
                return Ok(None);
            };
            let missing = missing_shards(s, &id)?;
            let live = s.state().transaction(|tx| tx.live_workers(live_since))?;
            Ok(Some((row, progress, missing, live)))
        })?;
        let (row, progress, missing, live) =
            found.ok_or_else(|| CoordinatorError::NotFound(job.to_string()))?;
        Ok(status_of(&row, &progress, missing, live))
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Result<Vec<JobStatus>, CoordinatorError> {
        let ids = self.with_state(|s| s.state().transaction(|tx| tx.jobs(&[])))?;
        ids.iter().map(|j| self.status(j.id.as_str())).collect()
    }

    /// Succeeded jobs and their outputs.
    pub fn results(&self) -> Result<Vec<JobResult>, CoordinatorError> {
        let jobs = self.with_state(|s| s.state().transaction(|tx| tx.jobs(&[JobState::Succeeded])))?;
        jobs.into_iter()
            .map(|j| {
                let st = self.status(j.id.as_str())?;
                Ok(JobResult {
                    job_id: j.id.to_string(),
                    name: j.spec.name.clone(),
                    model: j.spec.model.clone(),
                    dataset: j.spec.dataset.clone(),
                    output: j.output.clone(),
                    sequences: st.sequences_done,
                    finished_unix_ms: j.finished_ms,
                    missing_shards: st.missing_shards,
                })
            })
            .collect()
    }

    /// Cancels a job; workers holding its tasks are told to abandon them at their next heartbeat.
    pub fn cancel(&self, job: &str) -> Result<JobStatus, CoordinatorError> {
        let id = JobId::parse(job).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        self.with_state(|s| s.cancel(&id, now_ms()))?
            .ok_or_else(|| CoordinatorError::NotFound(job.to_string()))?;
        tracing::info!(job = %id, "job cancelled");
        self.notify();
        self.status(job)
    }

    /// Records a worker.
    pub fn register(&self, worker: &str, device: &str, hostname: &str) -> Result<(), CoordinatorError> {
        check_worker_id(worker)?;
        self.with_state(|s| s.touch_worker(worker, device, hostname, now_ms()))?;
        tracing::info!(worker, device, hostname, "worker registered");
        Ok(())
    }

    /// Leases the next task to a worker.
    pub fn lease(&self, worker: &str) -> Result<Option<Task>, CoordinatorError> {
        check_worker_id(worker)?;
        let Some(l) = self.with_state(|s| s.lease(worker, now_ms()))? else {
            return Ok(None);
        };
        self.counters.leases.fetch_add(1, Ordering::Relaxed);
        let task = Task {
            job_id: l.job.id.to_string(),
            task_id: l.task_id().to_string(),
            shard_index: l.task.shard,
            shard_url: format!(
                "{}/{}",
                l.job.spec.dataset.trim_end_matches('/'),
                l.task.shard_path
            ),
            spec: Some(l.job.spec.clone()),
            lease_expires_unix_ms: l.lease.expires_ms,
            attempt: l.lease.attempt,
            shard_path: l.task.shard_path.clone(),
            rows: l.task.rows,
            row_indices: l.task.row_indices.clone(),
        };
        tracing::debug!(task = %task.task_id, worker, "task leased");
        self.notify();
        Ok(Some(task))
    }

    /// Renews a lease.
    pub fn heartbeat(&self, worker: &str, task: &str, sequences_done: u64) -> Result<Beat, CoordinatorError> {
        let task = TaskId::parse(task).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        Ok(self.with_state(|s| s.heartbeat(worker, &task, sequences_done, now_ms()))?)
    }

    /// Records a failed attempt.
    pub fn fail(self: &Arc<Self>, worker: &str, task: &str, reason: &str) -> Result<(), CoordinatorError> {
        let id = TaskId::parse(task).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        let _span =
            tracing::info_span!("task", job = %id.job, shard = id.shard, attempt = id.attempt, worker)
                .entered();
        let reason: String = reason.chars().take(4000).collect();
        if self.with_state(|s| s.fail(worker, &id, &reason, now_ms()))? {
            self.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
            self.notify();
            self.poke(id.job);
        }
        Ok(())
    }

    /// Commits a shard's partial when the completion names the current
    /// lease; false for late, duplicate and foreign completions.
    pub async fn complete(self: &Arc<Self>, req: CompleteTaskRequest) -> Result<bool, CoordinatorError> {
        let id = TaskId::parse(&req.task_id).map_err(|e| CoordinatorError::Invalid(e.to_string()))?;
        let span = tracing::info_span!("task", job = %id.job, shard = id.shard, attempt = id.attempt, worker = %req.worker_id);
        self.commit_task(id, req).instrument(span).await
    }

    async fn commit_task(
        self: &Arc<Self>,
        id: TaskId,
        req: CompleteTaskRequest,
    ) -> Result<bool, CoordinatorError> {
        let partial = match (req.partial, &req.probe) {
            (Some(p), _) => p,
            (None, Some(_)) => Default::default(),
            (None, None) => {
                return Err(CoordinatorError::Invalid(
                    "a completion must carry partial counts or a probe result".into(),
                ));
            }
        };
        let lock = &self.commit_locks[lock_index(&id)];
        let _guard = lock.lock().await;
        if self
            .with_state(|s| s.current_lease(&req.worker_id, &id))?
            .is_none()
        {
            self.counters.ignored_completions.fetch_add(1, Ordering::Relaxed);
            tracing::info!(task = %id, worker = %req.worker_id, "completion ignored (late, duplicate or foreign)");
            return Ok(false);
        }
        let (sequences, residues) = (partial.sequences, partial.residues);
        let key = id.job.partial_key(id.shard);
        let stored = ShardResult {
            partial: Some(partial),
            record_ids: req.record_ids,
            probe: req.probe,
        };
        self.store.put(&key, stored.encode_to_vec().into()).await?;
        let committed = self.with_state(|s| {
            s.commit(
                &req.worker_id,
                &id,
                &key,
                sequences,
                residues,
                (&req.model_family, &req.model_digest, &req.model_config_digest),
                now_ms(),
            )
        })?;
        if committed {
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
            self.counters.sequences.fetch_add(sequences, Ordering::Relaxed);
            self.counters.residues.fetch_add(residues, Ordering::Relaxed);
            tracing::debug!(task = %id, sequences, "shard committed");
            self.notify();
            self.poke(id.job);
        } else {
            self.counters.ignored_completions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(committed)
    }

    /// Advances a job's fold in the background.
    fn poke(self: &Arc<Self>, job: JobId) {
        let me = self.clone();
        let span = tracing::info_span!("job", job = %job);
        tokio::spawn(async move { me.advance(job).await }.instrument(span));
    }

    fn fold_of(&self, job: &JobId) -> Arc<tokio::sync::Mutex<PrefixFold>> {
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        folds.entry(job.clone()).or_default().clone()
    }

    fn drop_fold(&self, job: &JobId) {
        self.folds.lock().unwrap_or_else(|e| e.into_inner()).remove(job);
    }

    /// Folds every committed shard that continues the prefix; finishes the
    /// job when the last one is folded.
    async fn advance(self: Arc<Self>, job: JobId) {
        let probe = self.with_state(|s| s.state().transaction(|tx| tx.job(&job)));
        if let Ok(Some(row)) = probe
            && let Some(stage) = row.spec.probe.clone()
        {
            return self.advance_probe(job, stage).await;
        }
        let fold = self.fold_of(&job);
        let mut fold = fold.lock().await;
        loop {
            let next = fold.next;
            let looked = self.with_state(|s| {
                s.state().transaction(|tx| {
                    let row = tx.job(&job)?;
                    let task = tx.task(&job, next)?;
                    let key = tx.commit_key(&job, next)?;
                    Ok((row, task, key))
                })
            });
            let (row, task, key) = match looked {
                Ok((Some(row), task, key)) => (row, task, key),
                Ok((None, ..)) => return,
                Err(e) => {
                    tracing::error!(error = %e, "reading the state failed");
                    return;
                }
            };
            if !matches!(
                row.state,
                JobState::Queued | JobState::Running | JobState::Reducing
            ) {
                drop(fold);
                self.drop_fold(&job);
                return;
            }
            if fold.complete(row.tasks_total) {
                let folded = std::mem::take(&mut *fold);
                drop(fold);
                self.drop_fold(&job);
                self.finish(row, folded).await;
                return;
            }
            let step = match task.map(|t| t.state) {
                Some(TaskState::Committed) => match key {
                    Some(key) => self.load_partial(&key).await.map(Some),
                    None => Err(format!("shard {next} is committed without a partial")),
                },
                Some(TaskState::Failed) if row.spec.allow_partial => Ok(None),
                _ => return,
            };
            let pushed = step.and_then(|p| fold.push(p).map_err(|e| e.to_string()));
            if let Err(e) = pushed {
                let message = format!("reducing shard {next}: {e}");
                tracing::error!(%message, "job failed");
                self.fail_job(&job, &message);
                drop(fold);
                self.drop_fold(&job);
                return;
            }
        }
    }

    /// Folds a probe stage once every shard is committed (in shard order)
    /// and writes the stage's result to `<output>/probe-result.pb`.
    async fn advance_probe(self: Arc<Self>, job: JobId, stage: ProbeStage) {
        // The job's fold lock keeps concurrent pokes from folding twice.
        let lock = self.fold_of(&job);
        let _guard = lock.lock().await;
        let looked = self.with_state(|s| {
            s.state().transaction(|tx| {
                let Some(row) = tx.job(&job)? else {
                    return Ok(None);
                };
                let mut keys = Vec::new();
                for shard in 0..row.tasks_total {
                    let committed = tx.task(&job, shard)?.map(|t| t.state) == Some(TaskState::Committed);
                    match tx.commit_key(&job, shard)? {
                        Some(key) if committed => keys.push(key),
                        _ => return Ok(Some((row, None))),
                    }
                }
                Ok(Some((row, Some(keys))))
            })
        });
        let (row, keys) = match looked {
            Ok(Some((row, keys))) => (row, keys),
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "reading the state failed");
                return;
            }
        };
        // Reducing too: a restart may have interrupted the fold.
        let Some(keys) = keys.filter(|_| {
            matches!(
                row.state,
                JobState::Queued | JobState::Running | JobState::Reducing
            )
        }) else {
            return;
        };
        let now = now_ms();
        let _ = self.with_state(|s| {
            s.state()
                .transaction(|tx| tx.set_job_state(&job, JobState::Reducing, "folding the probe stage", now))
        });
        let outcome = async {
            let mut fold = ProbeFold::new(&stage, row.tasks_total).map_err(|e| e.to_string())?;
            for (shard, key) in keys.iter().enumerate() {
                let bytes = self.store.get(key).await.map_err(|e| e.to_string())?;
                let result = ShardResult::decode(bytes).map_err(|e| format!("{key}: {e}"))?;
                let probe = result.probe.ok_or_else(|| format!("{key}: no probe result"))?;
                fold.push(shard as u32, probe).map_err(|e| e.to_string())?;
            }
            let folded = fold.finish().map_err(|e| e.to_string())?;
            let out = Location::parse(&row.output).map_err(|e| e.to_string())?;
            out.put(PROBE_RESULT, folded.encode_to_vec().into())
                .await
                .map_err(|e| format!("{}: {e}", out.child_url(PROBE_RESULT)))
        }
        .await;
        self.drop_fold(&job);
        let outcome = outcome.map_err(|e| format!("folding the probe stage: {e}"));
        self.settle(&job, &row.output, &outcome);
        match &outcome {
            Ok(()) => tracing::debug!(job = %job, "probe stage folded"),
            Err(e) => tracing::error!(job = %job, error = %e, "probe stage failed"),
        }
        self.notify();
    }

    async fn load_partial(
        &self,
        key: &str,
    ) -> Result<(headscan_proto::pb::PartialCounts, Vec<String>), String> {
        let bytes = self.store.get(key).await.map_err(|e| e.to_string())?;
        let result = ShardResult::decode(bytes).map_err(|e| format!("{key}: {e}"))?;
        let partial = result
            .partial
            .ok_or_else(|| format!("{key}: no partial counts"))?;
        Ok((partial, result.record_ids))
    }

    /// Ends a job that was reducing: succeeded with its outputs, or failed
    /// with `outcome`'s message. A job cancelled meanwhile stays cancelled.
    fn settle(&self, job: &JobId, output: &str, outcome: &Result<(), String>) {
        let now = now_ms();
        let _ = self.with_state(|s| {
            s.state().transaction(|tx| {
                if tx.job(job)?.is_some_and(|j| j.state != JobState::Reducing) {
                    return Ok(());
                }
                match outcome {
                    Ok(()) => {
                        tx.set_job_state(job, JobState::Succeeded, &format!("outputs at {output}"), now)
                    }
                    Err(e) => tx.set_job_state(job, JobState::Failed, e, now),
                }
            })
        });
    }

    fn fail_job(&self, job: &JobId, message: &str) {
        let now = now_ms();
        let _ = self.with_state(|s| {
            s.state().transaction(|tx| {
                tx.delete_job_leases(job)?;
                tx.set_job_state(job, JobState::Failed, message, now)
            })
        });
        self.notify();
    }

    /// Statistics, tables, report and summary.json of a fully folded job.
    async fn finish(&self, row: JobRow, folded: PrefixFold) {
        let job = row.id.clone();
        let now = now_ms();
        let _ = self.with_state(|s| {
            s.state()
                .transaction(|tx| tx.set_job_state(&job, JobState::Reducing, "writing outputs", now))
        });
        self.notify();
        let ids_sha256 = format!("sha256:{}", hex::encode(folded.ids.clone().finalize()));
        let Some(reduced) = folded.folded else {
            self.fail_job(&job, "every shard failed: nothing to report");
            return;
        };
        let outcome = async {
            let mut cfg = config_from_spec(&row.spec).map_err(|e| e.to_string())?;
            cfg.out = Some(row.output.clone());
            let missing = self
                .with_state(|s| missing_shards(s, &job))
                .map_err(|e| e.to_string())?;
            let dataset = Dataset::open(&row.spec.dataset)
                .await
                .map_err(|e| e.to_string())?;
            let (_, planned) = plan_tasks(&dataset.manifest.shards, &cfg).map_err(|e| e.to_string())?;
            let facts = JobFacts {
                job_id: job.to_string(),
                model_family: row.model_family.clone(),
                model_digest: row.model_digest.clone(),
                model_config_digest: row.model_config_digest.clone(),
                dataset_content_hash: dataset.manifest.content_hash.clone(),
                dataset_rows: planned.dataset_rows,
                missing_shards: missing,
                shards: row.tasks_total,
                elapsed_s: now_ms().saturating_sub(row.created_ms) as f64 / 1000.0,
                ids_sha256: ids_sha256.clone(),
            };
            write_outputs(&cfg, &reduced, &facts)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let settled = outcome
            .as_ref()
            .map(|_| ())
            .map_err(|e| format!("writing outputs: {e}"));
        self.settle(&job, &row.output, &settled);
        match &outcome {
            Ok(_) => {
                tracing::info!(job = %job, out = %row.output, sequences = reduced.sequences, "job succeeded")
            }
            Err(e) => tracing::error!(job = %job, error = %e, "job failed writing outputs"),
        }
        self.notify();
    }

    /// Task counts over every unfinished job, and live workers, for /metrics.
    pub fn gauges(&self) -> Result<(JobProgress, u32, u32), CoordinatorError> {
        let live_since = now_ms().saturating_sub(3 * self.policy().heartbeat_ms.max(1000));
        Ok(self.with_state(|s| {
            s.state().transaction(|tx| {
                let mut total = JobProgress::default();
                let jobs = tx.jobs(&[JobState::Queued, JobState::Running, JobState::Reducing])?;
                for j in &jobs {
                    let p = tx.progress(&j.id)?;
                    total.queued += p.queued;
                    total.leased += p.leased;
                    total.committed += p.committed;
                    total.failed += p.failed;
                    total.attempts_failed += p.attempts_failed;
                    total.sequences_done += p.sequences_done;
                }
                Ok((total, jobs.len() as u32, tx.live_workers(live_since)?))
            })
        })?)
    }
}

fn lock_index(id: &TaskId) -> usize {
    let h = Sha256::digest(format!("{}/{}", id.job, id.shard));
    h[0] as usize % 64
}

/// Shards left out of a job's counts, as "index path: reason".
fn missing_shards(s: &mut Scheduler, job: &JobId) -> Result<Vec<String>, StateError> {
    let failed = s.state().transaction(|tx| tx.tasks_in(job, TaskState::Failed))?;
    Ok(failed
        .into_iter()
        .map(|t| format!("{} {}: {}", t.shard, t.shard_path, t.last_error))
        .collect())
}

fn status_of(row: &JobRow, p: &JobProgress, missing: Vec<String>, live: u32) -> JobStatus {
    JobStatus {
        job_id: row.id.to_string(),
        state: row.state as i32,
        tasks_total: row.tasks_total,
        tasks_done: p.committed,
        tasks_failed: p.failed,
        sequences_done: p.sequences_done,
        message: row.message.clone(),
        output: row.output.clone(),
        name: row.spec.name.clone(),
        tasks_leased: p.leased,
        tasks_queued: p.queued,
        sequences_total: row.sequences_total,
        attempts_failed: p.attempts_failed,
        created_unix_ms: row.created_ms,
        started_unix_ms: row.started_ms,
        finished_unix_ms: row.finished_ms,
        missing_shards: missing,
        workers_live: live,
        model: row.spec.model.clone(),
        dataset: row.spec.dataset.clone(),
        model_digest: if row.model_digest.is_empty() {
            row.spec.model_digest.clone()
        } else {
            row.model_digest.clone()
        },
    }
}

/// Worker ids are labels in logs and the state: printable, at most 200 bytes.
fn check_worker_id(worker: &str) -> Result<(), CoordinatorError> {
    if worker.is_empty() || worker.len() > 200 || worker.chars().any(|c| c.is_control()) {
        return Err(CoordinatorError::Invalid(format!("invalid worker id {worker:?}")));
    }
    Ok(())
}

/// An output must be an absolute path or a URL, with no `..` component.
fn check_output(output: &str) -> Result<(), CoordinatorError> {
    let is_url = output.contains("://");
    if !is_url && !std::path::Path::new(output).is_absolute() {
        return Err(CoordinatorError::Invalid(format!(
            "output {output:?} must be an absolute path or a URL"
        )));
    }
    let path = output.split("://").last().unwrap_or(output);
    if path.split(['/', '\\']).any(|c| c == "..") || output.chars().any(|c| c.is_control()) {
        return Err(CoordinatorError::Invalid(format!(
            "output {output:?} may not contain '..' components"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_cannot_climb_out() {
        assert!(check_output("/tmp/out").is_ok());
        assert!(check_output("s3://bucket/out").is_ok());
        for bad in ["out", "../../etc", "/tmp/../etc", "s3://b/../x", "file:///a/../b"] {
            assert!(check_output(bad).is_err(), "{bad}");
        }
    }
}
