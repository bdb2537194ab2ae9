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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlannedTask;
    use headscan_proto::pb::JobSpec;

    const LEASE: u64 = 1000;

    fn policy(max_attempts: u32) -> Policy {
        Policy {
            lease_ms: LEASE,
            heartbeat_ms: 100,
            max_attempts,
        }
    }

    fn job(shards: usize, allow_partial: bool) -> (JobRow, Vec<PlannedTask>) {
        let row = JobRow {
            id: JobId::parse("j-test").unwrap(),
            spec: JobSpec {
                allow_partial,
                ..Default::default()
            },
            state: JobState::Queued,
            message: String::new(),
            output: "/tmp/out".into(),
            tasks_total: shards as u32,
            sequences_total: shards as u64,
            model_family: String::new(),
            model_digest: String::new(),
            model_config_digest: String::new(),
            max_attempts: 0,
            created_ms: 0,
            started_ms: 0,
            finished_ms: 0,
        };
        let tasks = (0..shards)
            .map(|i| PlannedTask {
                path: format!("shards/part-{i:05}.parquet"),
                rows: 1,
                listed: Vec::new(),
            })
            .collect();
        (row, tasks)
    }

    fn scheduler(shards: usize, allow_partial: bool, max_attempts: u32) -> (Scheduler, JobId) {
        let mut s = Scheduler::new(StateStore::in_memory().unwrap(), policy(max_attempts), 0).unwrap();
        let (row, tasks) = job(shards, allow_partial);
        s.state().transaction(|tx| tx.insert_job(&row, &tasks)).unwrap();
        (s, row.id)
    }

    fn commit(s: &mut Scheduler, worker: &str, t: &TaskId, now: u64) -> bool {
        s.commit(worker, t, "k", 1, 1, ("f", "d", "c"), now).unwrap()
    }

    #[test]
    fn leases_go_in_shard_order_and_commit_exactly_once() {
        let (mut s, job) = scheduler(2, false, 3);
        let a = s.lease("w1", 10).unwrap().unwrap();
        let b = s.lease("w2", 10).unwrap().unwrap();
        assert_eq!((a.task.shard, b.task.shard), (0, 1));
        assert!(s.lease("w3", 10).unwrap().is_none(), "nothing left to lease");
        let (ta, tb) = (a.task_id(), b.task_id());
        assert!(
            !commit(&mut s, "w2", &ta, 20),
            "foreign: w2 does not hold shard 0"
        );
        assert!(commit(&mut s, "w1", &ta, 20));
        assert!(!commit(&mut s, "w1", &ta, 21), "duplicate");
        assert!(
            s.heartbeat("w1", &ta, 1, 22).unwrap().abandon,
            "a committed lease is gone"
        );
        assert!(commit(&mut s, "w2", &tb, 30));
        let (row, p) = s.job(&job).unwrap().unwrap();
        assert_eq!(
            (row.state, p.committed, p.sequences_done),
            (JobState::Running, 2, 2)
        );
    }

    #[test]
    fn expired_leases_are_reissued_and_late_completions_ignored() {
        let (mut s, _) = scheduler(1, false, 3);
        let first = s.lease("w1", 0).unwrap().unwrap();
        // A heartbeat renews the lease past its first expiry.
        assert!(!s.heartbeat("w1", &first.task_id(), 0, LEASE - 1).unwrap().abandon);
        assert_eq!(s.expire(LEASE + 1).unwrap(), 0);
        assert_eq!(s.expire(2 * LEASE).unwrap(), 1);
        let second = s.lease("w2", 2 * LEASE).unwrap().unwrap();
        assert_eq!(second.lease.attempt, 2);
        assert!(!commit(&mut s, "w1", &first.task_id(), 2 * LEASE), "late");
        assert!(s.heartbeat("w1", &first.task_id(), 0, 2 * LEASE).unwrap().abandon);
        assert!(commit(&mut s, "w2", &second.task_id(), 2 * LEASE));
    }

    #[test]
    fn retries_keep_the_last_error_then_fail_the_job_naming_the_shard() {
        let (mut s, job) = scheduler(2, false, 2);
        let t = s.lease("w", 0).unwrap().unwrap();
        assert!(s.fail("w", &t.task_id(), "first", 1).unwrap());
        let t = s.lease("w", 2).unwrap().unwrap();
        assert_eq!((t.task.shard, t.lease.attempt), (0, 2), "retried first");
        assert!(s.fail("w", &t.task_id(), "corrupt parquet", 3).unwrap());
        assert!(!s.fail("w", &t.task_id(), "again", 4).unwrap(), "stale");
        let (row, p) = s.job(&job).unwrap().unwrap();
        assert_eq!(row.state, JobState::Failed);
        assert!(
            row.message.contains("shard 0 (shards/part-00000.parquet)"),
            "{}",
            row.message
        );
        assert!(row.message.contains("corrupt parquet"), "{}", row.message);
        assert_eq!((p.failed, p.attempts_failed), (1, 2));
        assert!(s.lease("w", 5).unwrap().is_none(), "a failed job leases nothing");
    }

    #[test]
    fn allow_partial_goes_on_and_cancel_stops_leases() {
        let (mut s, job) = scheduler(3, true, 1);
        let t = s.lease("w", 0).unwrap().unwrap();
        assert!(s.fail("w", &t.task_id(), "bad shard", 1).unwrap());
        let (row, p) = s.job(&job).unwrap().unwrap();
        assert_eq!((row.state, p.failed), (JobState::Running, 1));
        let t = s.lease("w", 2).unwrap().unwrap();
        assert_eq!(t.task.shard, 1);
        s.cancel(&job, 3).unwrap();
        assert!(s.heartbeat("w", &t.task_id(), 0, 4).unwrap().abandon);
        assert!(!commit(&mut s, "w", &t.task_id(), 4));
        assert!(s.lease("w", 5).unwrap().is_none());
        assert_eq!(s.job(&job).unwrap().unwrap().0.state, JobState::Cancelled);
    }

    #[test]
    fn a_restart_gives_live_leases_a_fresh_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut s1 = Scheduler::new(StateStore::open(&path).unwrap(), policy(3), 0).unwrap();
        let (row, tasks) = job(1, false);
        s1.state().transaction(|tx| tx.insert_job(&row, &tasks)).unwrap();
        let t = s1.lease("w", 0).unwrap().unwrap();
        drop(s1); // the coordinator dies holding a lease, and comes back much later
        let mut s2 = Scheduler::new(StateStore::open(&path).unwrap(), policy(3), 10 * LEASE).unwrap();
        assert_eq!(
            s2.expire(10 * LEASE + 1).unwrap(),
            0,
            "the lease survived the restart"
        );
        assert!(
            commit(&mut s2, "w", &t.task_id(), 10 * LEASE + 2),
            "the worker's result is kept"
        );
    }
}
