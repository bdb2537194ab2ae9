//! Scheduling policy over the state store: leases with expiry renewed by
//! heartbeats, bounded retries keeping the last error, exactly-once commits,
//! cancellation. Each operation is one SQLite transaction, so the policy
//! holds across coordinator restarts.
//!
//! A task id names one lease (`<job>.<shard>.<attempt>`); a completion,
//! heartbeat or failure counts only when it names the task's current lease
//! and comes from its holder, so late, duplicate and foreign messages change
//! nothing.

use headscan_proto::ids::{JobId, TaskId};
use headscan_proto::pb::JobState;

use crate::state::{JobProgress, JobRow, LeaseRow, StateError, StateStore, TaskRow, TaskState};

/// Timing and retry policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A lease lasts this long without a heartbeat.
    pub lease_ms: u64,
    /// Workers send heartbeats this often.
    pub heartbeat_ms: u64,
    /// Attempts per shard when the job does not say.
    pub max_attempts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            lease_ms: 30_000,
            heartbeat_ms: 5_000,
            max_attempts: 3,
        }
    }
}

/// A leased task with its job.
#[derive(Debug, Clone)]
pub struct Leased {
    /// The task.
    pub task: TaskRow,
    /// Its job.
    pub job: JobRow,
    /// The lease.
    pub lease: LeaseRow,
}

impl Leased {
    /// The task id of this lease.
    pub fn task_id(&self) -> TaskId {
        TaskId {
            job: self.job.id.clone(),
            shard: self.task.shard,
            attempt: self.lease.attempt,
        }
    }
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// New expiry (0 when abandoned).
    pub expires_ms: u64,
    /// Stop working on the task: lease lost, job cancelled or failed.
    pub abandon: bool,
}

/// The scheduler: the state store plus the policy.
pub struct Scheduler {
    state: StateStore,
    policy: Policy,
}

impl Scheduler {
    /// A scheduler over a state store. Leases that were live when the state
    /// was last written get a full lease period again, so workers can
    /// reconnect after a coordinator restart without losing their work.
    pub fn new(mut state: StateStore, policy: Policy, now_ms: u64) -> Result<Self, StateError> {
        state.transaction(|tx| tx.extend_all_leases(now_ms + policy.lease_ms))?;
        Ok(Self { state, policy })
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Direct access to the state (reads, planning).
    pub fn state(&mut self) -> &mut StateStore {
        &mut self.state
    }

    /// Records a worker as seen.
    pub fn touch_worker(
        &mut self,
        worker: &str,
        device: &str,
        hostname: &str,
        now_ms: u64,
    ) -> Result<(), StateError> {
        self.state
            .transaction(|tx| tx.touch_worker(worker, device, hostname, now_ms))
    }

    /// Leases the next queued task (oldest job first, then shard order) to `worker`.
    pub fn lease(&mut self, worker: &str, now_ms: u64) -> Result<Option<Leased>, StateError> {
        let lease_ms = self.policy.lease_ms;
        self.state.transaction(|tx| {
            tx.touch_worker(worker, "", "", now_ms)?;
            let Some(mut task) = tx.next_queued()? else {
                return Ok(None);
            };
            tx.start_job(&task.job, now_ms)?;
            tx.set_task(&task.job, task.shard, TaskState::Leased, true, None)?;
            task.attempts += 1;
            task.state = TaskState::Leased;
            let lease = LeaseRow {
                job: task.job.clone(),
                shard: task.shard,
                attempt: task.attempts,
                worker: worker.to_string(),
                expires_ms: now_ms + lease_ms,
                sequences_done: 0,
            };
            tx.put_lease(&lease)?;
            let job = tx.job(&task.job)?.ok_or_else(|| StateError::Corrupt {
                job: task.job.to_string(),
                reason: "task without a job".into(),
            })?;
            Ok(Some(Leased { task, job, lease }))
        })
    }

    /// The current lease named by `task` when `worker` holds it and the job runs.
    pub fn current_lease(&mut self, worker: &str, task: &TaskId) -> Result<Option<LeaseRow>, StateError> {
        self.state.transaction(|tx| current(tx, worker, task))
    }

    /// Renews a lease; tells the worker to abandon a lost lease or a stopped job.
    pub fn heartbeat(
        &mut self,
        worker: &str,
        task: &TaskId,
        sequences_done: u64,
        now_ms: u64,
    ) -> Result<Beat, StateError> {
        let lease_ms = self.policy.lease_ms;
        self.state.transaction(|tx| {
            tx.touch_worker(worker, "", "", now_ms)?;
            let Some(mut lease) = current(tx, worker, task)? else {
                return Ok(Beat {
                    expires_ms: 0,
                    abandon: true,
                });
            };
            lease.expires_ms = now_ms + lease_ms;
            lease.sequences_done = sequences_done;
            tx.put_lease(&lease)?;
            Ok(Beat {
                expires_ms: lease.expires_ms,
                abandon: false,
            })
        })
    }

    /// Commits a shard's partial (already written at `partial_key`) when the
    /// completion names the current lease; false when it is late, duplicate
    /// or foreign.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &mut self,
        worker: &str,
        task: &TaskId,
        partial_key: &str,
        sequences: u64,
        residues: u64,
        model: (&str, &str, &str),
        now_ms: u64,
    ) -> Result<bool, StateError> {
        self.state.transaction(|tx| {
            tx.touch_worker(worker, "", "", now_ms)?;
            let Some(lease) = current(tx, worker, task)? else {
                return Ok(false);
            };
            if !tx.insert_commit(&lease, partial_key, sequences, residues, now_ms)? {
                return Ok(false);
            }
            tx.delete_lease(&task.job, task.shard)?;
            tx.set_task(&task.job, task.shard, TaskState::Committed, false, None)?;
            tx.set_model_info(&task.job, model.0, model.1, model.2)?;
            Ok(true)
        })
    }

    /// Records a failed attempt named by its current lease: the task is
    /// retried, or fails for good after its last attempt (failing the job
    /// unless it allows partial results). False when the message was stale.
    pub fn fail(
        &mut self,
        worker: &str,
        task: &TaskId,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, StateError> {
        let default_attempts = self.policy.max_attempts;
        self.state.transaction(|tx| {
            tx.touch_worker(worker, "", "", now_ms)?;
            let Some(lease) = current(tx, worker, task)? else {
                return Ok(false);
            };
            fail_attempt(tx, &lease, reason, default_attempts, now_ms)?;
            Ok(true)
        })
    }

    /// Re-queues (or fails) every task whose lease expired; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> Result<usize, StateError> {
        let default_attempts = self.policy.max_attempts;
        self.state.transaction(|tx| {
            let expired = tx.leases(Some(now_ms))?;
            for lease in &expired {
                let reason = format!(
                    "lease expired: worker {} sent no heartbeat for attempt {}",
                    lease.worker, lease.attempt
                );
                fail_attempt(tx, lease, &reason, default_attempts, now_ms)?;
            }
            Ok(expired.len())
        })
    }

    /// Cancels a job that has not finished; returns its row (None: unknown job).
    pub fn cancel(&mut self, job: &JobId, now_ms: u64) -> Result<Option<JobRow>, StateError> {
        self.state.transaction(|tx| {
            let Some(row) = tx.job(job)? else {
                return Ok(None);
            };
            if matches!(
                row.state,
                JobState::Queued | JobState::Running | JobState::Reducing
            ) {
                tx.delete_job_leases(job)?;
                tx.set_job_state(job, JobState::Cancelled, "cancelled by request", now_ms)?;
            }
            tx.job(job)
        })
    }

    /// A job and its progress.
    pub fn job(&mut self, job: &JobId) -> Result<Option<(JobRow, JobProgress)>, StateError> {
        self.state.transaction(|tx| {
            let Some(row) = tx.job(job)? else {
                return Ok(None);
            };
            let progress = tx.progress(job)?;
            Ok(Some((row, progress)))
        })
    }
}

/// The lease named by `task` when it is current, held by `worker`, and its job runs.
fn current(tx: &crate::state::Tx<'_>, worker: &str, task: &TaskId) -> Result<Option<LeaseRow>, StateError> {
    let Some(lease) = tx.lease(&task.job, task.shard)? else {
        return Ok(None);
    };
    if lease.attempt != task.attempt || lease.worker != worker {
        return Ok(None);
    }
    let running = tx
        .job(&task.job)?
        .is_some_and(|j| matches!(j.state, JobState::Running | JobState::Queued));
    Ok(running.then_some(lease))
}

fn fail_attempt(
    tx: &crate::state::Tx<'_>,
    lease: &LeaseRow,
    reason: &str,
    default_attempts: u32,
    now_ms: u64,
) -> Result<(), StateError> {
    let (job, shard) = (&lease.job, lease.shard);
    tx.delete_lease(job, shard)?;
    let Some(row) = tx.job(job)? else {
        return Ok(());
    };
    let max = if row.max_attempts == 0 {
        default_attempts
    } else {
        row.max_attempts
    };
    let task = tx.task(job, shard)?;
    let attempts = task.as_ref().map_or(0, |t| t.attempts);
    if attempts < max {
        tracing::warn!(job = %job, shard, attempt = attempts, %reason, "task attempt failed; retrying");
        tx.set_task(job, shard, TaskState::Queued, false, Some(reason))?;
        return Ok(());
    }
    tx.set_task(job, shard, TaskState::Failed, false, Some(reason))?;
    let path = task.map(|t| t.shard_path).unwrap_or_default();
    if row.spec.allow_partial {
        tracing::warn!(job = %job, shard, %path, %reason, "shard failed for good; left out (allow_partial)");
        return Ok(());
    }
    let message = format!("shard {shard} ({path}) failed after {attempts} attempt(s): {reason}");
    tracing::error!(job = %job, %message, "job failed");
    tx.delete_job_leases(job)?;
    tx.set_job_state(job, JobState::Failed, &message, now_ms)
}
