//! The coordinator's durable state in SQLite: jobs, tasks (one per shard),
//! leases (the current holder of a task) and commits (the partial of a shard,
//! recorded once). Every change is one transaction, so a coordinator killed
//! at any point restarts on a consistent state; scheduling policy lives in
//! [`crate::scheduler`], not here.

use std::path::Path;

use headscan_proto::ids::JobId;
use headscan_proto::pb::{JobSpec, JobState};
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored job spec cannot be decoded.
    #[error("state store: job {job}: {reason}")]
    Corrupt {
        /// Job id.
        job: String,
        /// What is wrong.
        reason: String,
    },
}

/// Lifecycle of one task (one shard of one job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a worker.
    Queued = 0,
    /// Leased to a worker.
    Leased = 1,
    /// Its partial counts are committed.
    Committed = 2,
    /// Failed for good (retries exhausted).
    Failed = 3,
}

impl TaskState {
    fn from_i64(v: i64) -> Self {
        match v {
            1 => Self::Leased,
            2 => Self::Committed,
            3 => Self::Failed,
            _ => Self::Queued,
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// Id.
    pub id: JobId,
    /// What the user asked for.
    pub spec: JobSpec,
    /// Lifecycle state.
    pub state: JobState,
    /// Why it failed or was cancelled; where its outputs are when done.
    pub message: String,
    /// Output URL.
    pub output: String,
    /// Tasks (shards) planned.
    pub tasks_total: u32,
    /// Sequences over all tasks.
    pub sequences_total: u64,
    /// Model family reported by the first committed shard.
    pub model_family: String,
    /// Model digest (every defining file) reported by the first committed shard.
    pub model_digest: String,
    /// Digest of the model's config.json reported by the first committed shard.
    pub model_config_digest: String,
    /// Attempts per task before it fails for good.
    pub max_attempts: u32,
    /// Submission time, ms since the epoch.
    pub created_ms: u64,
    /// First lease, ms since the epoch (0 = none yet).
    pub started_ms: u64,
    /// End time, ms since the epoch (0 = running).
    pub finished_ms: u64,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// Job.
    pub job: JobId,
    /// 0-based shard index.
    pub shard: u32,
    /// Shard path inside the dataset.
    pub shard_path: String,
    /// Records of the shard to use.
    pub rows: u64,
    /// The rows to use, 0-based within the shard (empty: the first `rows`).
    pub row_indices: Vec<u32>,
    /// Lifecycle state.
    pub state: TaskState,
    /// Leases handed out so far.
    pub attempts: u32,
    /// The last error of a failed attempt.
    pub last_error: String,
}

/// The current lease of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRow {
    /// Job.
    pub job: JobId,
    /// Shard.
    pub shard: u32,
    /// Attempt number the lease belongs to.
    pub attempt: u32,
    /// Holder.
    pub worker: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
    /// Sequences the holder reported done.
    pub sequences_done: u64,
}

/// Counts of a job's tasks by state, and progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobProgress {
    /// Queued tasks.
    pub queued: u32,
    /// Leased tasks.
    pub leased: u32,
    /// Committed tasks.
    pub committed: u32,
    /// Tasks failed for good.
    pub failed: u32,
    /// Sequences of committed tasks plus those reported by lease holders.
    pub sequences_done: u64,
    /// Failed attempts, retried or not.
    pub attempts_failed: u32,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  spec BLOB NOT NULL,
  state INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  output TEXT NOT NULL,
  tasks_total INTEGER NOT NULL,
  sequences_total INTEGER NOT NULL,
  model_family TEXT NOT NULL DEFAULT '',
  model_digest TEXT NOT NULL DEFAULT '',
  model_config_digest TEXT NOT NULL DEFAULT '',
  max_attempts INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tasks (
  job_id TEXT NOT NULL,
  shard INTEGER NOT NULL,
  shard_path TEXT NOT NULL,
  rows INTEGER NOT NULL,
  row_indices BLOB NOT NULL DEFAULT x'',
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, shard)
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, job_id, shard);
CREATE TABLE IF NOT EXISTS leases (
  job_id TEXT NOT NULL,
  shard INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  sequences_done INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, shard)
);
CREATE TABLE IF NOT EXISTS commits (
  job_id TEXT NOT NULL,
  shard INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  partial_key TEXT NOT NULL,
  sequences INTEGER NOT NULL,
  residues INTEGER NOT NULL,
  committed_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, shard)
);
CREATE TABLE IF NOT EXISTS workers (
  id TEXT PRIMARY KEY,
  device TEXT NOT NULL,
  hostname TEXT NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
";

/// The SQLite state store.
pub struct StateStore {
    conn: Connection,
}

fn job_state(v: i64) -> JobState {
    JobState::try_from(v as i32).unwrap_or(JobState::Unspecified)
}

impl StateStore {
    /// Opens (creating if needed) the state at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        Self::init(Connection::open(path)?)
    }

    /// A private in-memory state (tests, `headscan run`).
    pub fn in_memory() -> Result<Self, StateError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StateError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    /// Runs `f` in one transaction (committed when it returns `Ok`).
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let tx = self.conn.transaction()?;
        let out = f(&Tx { tx: &tx })?;
        tx.commit()?;
        Ok(out)
    }
}

/// One transaction over the state.
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

const JOB_COLUMNS: &str = "id, spec, state, message, output, tasks_total, sequences_total, model_family, model_digest, max_attempts, created_ms, started_ms, finished_ms, model_config_digest";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, Vec<u8>, JobRowRest)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        JobRowRest {
            state: r.get(2)?,
            message: r.get(3)?,
            output: r.get(4)?,
            tasks_total: r.get(5)?,
            sequences_total: r.get(6)?,
            model_family: r.get(7)?,
            model_digest: r.get(8)?,
            max_attempts: r.get(9)?,
            created_ms: r.get(10)?,
            started_ms: r.get(11)?,
            finished_ms: r.get(12)?,
            model_config_digest: r.get(13)?,
        },
    ))
}

struct JobRowRest {
    state: i64,
    message: String,
    output: String,
    tasks_total: i64,
    sequences_total: i64,
    model_family: String,
    model_digest: String,
    max_attempts: i64,
    created_ms: i64,
    started_ms: i64,
    finished_ms: i64,
    model_config_digest: String,
}

fn into_job((id, spec, r): (String, Vec<u8>, JobRowRest)) -> Result<JobRow, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        job: id.clone(),
        reason,
    };
    Ok(JobRow {
        id: JobId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
        spec: JobSpec::decode(spec.as_slice()).map_err(|e| corrupt(e.to_string()))?,
        state: job_state(r.state),
        message: r.message,
        output: r.output,
        tasks_total: r.tasks_total as u32,
        sequences_total: r.sequences_total as u64,
        model_family: r.model_family,
        model_digest: r.model_digest,
        model_config_digest: r.model_config_digest,
        max_attempts: r.max_attempts as u32,
        created_ms: r.created_ms as u64,
        started_ms: r.started_ms as u64,
        finished_ms: r.finished_ms as u64,
    })
}

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, TaskRow)> {
    let job: String = r.get(0)?;
    Ok((
        job.clone(),
        TaskRow {
            job: JobId::parse(&job).unwrap_or_else(|_| JobId::random()),
            shard: r.get::<_, i64>(1)? as u32,
            shard_path: r.get(2)?,
            rows: r.get::<_, i64>(3)? as u64,
            state: TaskState::from_i64(r.get(4)?),
            attempts: r.get::<_, i64>(5)? as u32,
            last_error: r.get(6)?,
            row_indices: r
                .get::<_, Vec<u8>>(7)?
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        },
    ))
}

fn lease_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LeaseRow> {
    let job: String = r.get(0)?;
    Ok(LeaseRow {
        job: JobId::parse(&job).unwrap_or_else(|_| JobId::random()),
        shard: r.get::<_, i64>(1)? as u32,
        attempt: r.get::<_, i64>(2)? as u32,
        worker: r.get(3)?,
        expires_ms: r.get::<_, i64>(4)? as u64,
        sequences_done: r.get::<_, i64>(5)? as u64,
    })
}

const TASK_COLUMNS: &str = "job_id, shard, shard_path, rows, state, attempts, last_error, row_indices";
const LEASE_COLUMNS: &str = "job_id, shard, attempt, worker_id, expires_ms, sequences_done";

impl Tx<'_> {
    /// Inserts a planned job and its tasks.
    pub fn insert_job(&self, job: &JobRow, tasks: &[crate::plan::PlannedTask]) -> Result<(), StateError> {
        self.tx.execute(
            &format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
            params![
                job.id.as_str(),
                job.spec.encode_to_vec(),
                job.state as i64,
                job.message,
                job.output,
                job.tasks_total as i64,
                job.sequences_total as i64,
                job.model_family,
                job.model_digest,
                job.max_attempts as i64,
                job.created_ms as i64,
                job.started_ms as i64,
                job.finished_ms as i64,
                job.model_config_digest
            ],
        )?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO tasks (job_id, shard, shard_path, rows, row_indices) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (i, t) in tasks.iter().enumerate() {
            let listed: Vec<u8> = t.listed.iter().flat_map(|r| r.to_le_bytes()).collect();
            stmt.execute(params![job.id.as_str(), i as i64, t.path, t.rows as i64, listed])?;
        }
        Ok(())
    }

    /// One job.
    pub fn job(&self, id: &JobId) -> Result<Option<JobRow>, StateError> {
        self.tx
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id.as_str()],
                job_row,
            )
            .optional()?
            .map(into_job)
            .transpose()
    }

    /// Every job, oldest first; only those in `states` when it is not empty.
    pub fn jobs(&self, states: &[JobState]) -> Result<Vec<JobRow>, StateError> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY seq"))?;
        let rows = stmt.query_map([], job_row)?;
        let mut out = Vec::new();
        for r in rows {
            let job = into_job(r?)?;
            if states.is_empty() || states.contains(&job.state) {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Sets a job's state and message (and its end time for final states).
    pub fn set_job_state(
        &self,
        id: &JobId,
        state: JobState,
        message: &str,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let finished = matches!(
            state,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        );
        self.tx.execute(
            "UPDATE jobs SET state = ?2, message = ?3, finished_ms = CASE WHEN ?4 THEN ?5 ELSE finished_ms END WHERE id = ?1",
            params![id.as_str(), state as i64, message, finished, now_ms as i64],
        )?;
        Ok(())
    }

    /// Marks a job started (its first lease) when it is still queued.
    pub fn start_job(&self, id: &JobId, now_ms: u64) -> Result<(), StateError> {
        self.tx.execute(
            "UPDATE jobs SET state = ?2, started_ms = ?3 WHERE id = ?1 AND state = ?4",
            params![
                id.as_str(),
                JobState::Running as i64,
                now_ms as i64,
                JobState::Queued as i64
            ],
        )?;
        Ok(())
    }

    /// Records the model a job's shards ran (first report wins).
    pub fn set_model_info(
        &self,
        id: &JobId,
        family: &str,
        digest: &str,
        config_digest: &str,
    ) -> Result<(), StateError> {
        self.tx.execute(
            "UPDATE jobs SET model_family = ?2, model_digest = ?3, model_config_digest = ?4 \
             WHERE id = ?1 AND model_family = ''",
            params![id.as_str(), family, digest, config_digest],
        )?;
        Ok(())
    }

    /// One task.
    pub fn task(&self, job: &JobId, shard: u32) -> Result<Option<TaskRow>, StateError> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ?1 AND shard = ?2"),
                params![job.as_str(), shard as i64],
                task_row,
            )
            .optional()?
            .map(|(_, t)| t))
    }

    /// Tasks of a job in `state`, in shard order.
    pub fn tasks_in(&self, job: &JobId, state: TaskState) -> Result<Vec<TaskRow>, StateError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ?1 AND state = ?2 ORDER BY shard"
        ))?;
        let rows = stmt.query_map(params![job.as_str(), state as i64], task_row)?;
        Ok(rows.map(|r| r.map(|(_, t)| t)).collect::<Result<_, _>>()?)
    }

    /// The first queued task of a running or queued job, oldest job first.
    pub fn next_queued(&self) -> Result<Option<TaskRow>, StateError> {
        Ok(self
            .tx
            .query_row(
                &format!(
                    "SELECT {} FROM tasks t JOIN jobs j ON j.id = t.job_id \
                     WHERE t.state = 0 AND j.state IN (?1, ?2) ORDER BY j.seq, t.shard LIMIT 1",
                    TASK_COLUMNS
                        .split(", ")
                        .map(|c| format!("t.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                params![JobState::Queued as i64, JobState::Running as i64],
                task_row,
            )
            .optional()?
            .map(|(_, t)| t))
    }

    /// Sets a task's state, optionally bumping its attempts and recording an error.
    pub fn set_task(
        &self,
        job: &JobId,
        shard: u32,
        state: TaskState,
        new_attempt: bool,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        self.tx.execute(
            "UPDATE tasks SET state = ?3, attempts = attempts + ?4, \
             failed_attempts = failed_attempts + ?5, \
             last_error = COALESCE(?6, last_error) WHERE job_id = ?1 AND shard = ?2",
            params![
                job.as_str(),
                shard as i64,
                state as i64,
                new_attempt as i64,
                error.is_some() as i64,
                error
            ],
        )?;
        Ok(())
    }

    /// The current lease of a task.
    pub fn lease(&self, job: &JobId, shard: u32) -> Result<Option<LeaseRow>, StateError> {
        Ok(self
            .tx
            .query_row(
                &format!("SELECT {LEASE_COLUMNS} FROM leases WHERE job_id = ?1 AND shard = ?2"),
                params![job.as_str(), shard as i64],
                lease_row,
            )
            .optional()?)
    }

    /// Every lease, or those expired before `before_ms`.
    pub fn leases(&self, before_ms: Option<u64>) -> Result<Vec<LeaseRow>, StateError> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {LEASE_COLUMNS} FROM leases WHERE expires_ms < ?1 ORDER BY job_id, shard"
        ))?;
        let limit = before_ms.map_or(i64::MAX, |b| b as i64);
        let rows = stmt.query_map([limit], lease_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates or replaces the lease of a task.
    pub fn put_lease(&self, l: &LeaseRow) -> Result<(), StateError> {
        self.tx.execute(
            &format!("INSERT OR REPLACE INTO leases ({LEASE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                l.job.as_str(),
                l.shard as i64,
                l.attempt as i64,
                l.worker,
                l.expires_ms as i64,
                l.sequences_done as i64
            ],
        )?;
        Ok(())
    }

    /// Removes a task's lease.
    pub fn delete_lease(&self, job: &JobId, shard: u32) -> Result<(), StateError> {
        self.tx.execute(
            "DELETE FROM leases WHERE job_id = ?1 AND shard = ?2",
            params![job.as_str(), shard as i64],
        )?;
        Ok(())
    }

    /// Removes every lease of a job.
    pub fn delete_job_leases(&self, job: &JobId) -> Result<(), StateError> {
        self.tx
            .execute("DELETE FROM leases WHERE job_id = ?1", [job.as_str()])?;
        self.tx.execute(
            "UPDATE tasks SET state = 0 WHERE job_id = ?1 AND state = 1",
            [job.as_str()],
        )?;
        Ok(())
    }

    /// Pushes every lease's expiry to at least `until_ms` (after a restart,
    /// workers get a full lease period to reconnect).
    pub fn extend_all_leases(&self, until_ms: u64) -> Result<(), StateError> {
        self.tx.execute(
            "UPDATE leases SET expires_ms = MAX(expires_ms, ?1)",
            [until_ms as i64],
        )?;
        Ok(())
    }

    /// Records a shard's commit; false when it was already committed.
    pub fn insert_commit(
        &self,
        lease: &LeaseRow,
        partial_key: &str,
        sequences: u64,
        residues: u64,
        now_ms: u64,
    ) -> Result<bool, StateError> {
        let n = self.tx.execute(
            "INSERT OR IGNORE INTO commits (job_id, shard, attempt, worker_id, partial_key, sequences, residues, committed_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                lease.job.as_str(),
                lease.shard as i64,
                lease.attempt as i64,
                lease.worker,
                partial_key,
                sequences as i64,
                residues as i64,
                now_ms as i64
            ],
        )?;
        Ok(n == 1)
    }

    /// The store key of a committed shard's partial.
    pub fn commit_key(&self, job: &JobId, shard: u32) -> Result<Option<String>, StateError> {
        Ok(self
            .tx
            .query_row(
                "SELECT partial_key FROM commits WHERE job_id = ?1 AND shard = ?2",
                params![job.as_str(), shard as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Task counts and progress of a job.
    pub fn progress(&self, job: &JobId) -> Result<JobProgress, StateError> {
        let mut p = JobProgress::default();
        let mut stmt = self.tx.prepare_cached(
            "SELECT state, COUNT(*), SUM(failed_attempts) FROM tasks WHERE job_id = ?1 GROUP BY state",
        )?;
        let rows = stmt.query_map([job.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })?;
        for r in rows {
            let (state, n, failed) = r?;
            p.attempts_failed += failed as u32;
            match TaskState::from_i64(state) {
                TaskState::Queued => p.queued = n as u32,
                TaskState::Leased => p.leased = n as u32,
                TaskState::Committed => p.committed = n as u32,
                TaskState::Failed => p.failed = n as u32,
            }
        }
        let committed: i64 = self.tx.query_row(
            "SELECT COALESCE(SUM(sequences), 0) FROM commits WHERE job_id = ?1",
            [job.as_str()],
            |r| r.get(0),
        )?;
        let leased: i64 = self.tx.query_row(
            "SELECT COALESCE(SUM(sequences_done), 0) FROM leases WHERE job_id = ?1",
            [job.as_str()],
            |r| r.get(0),
        )?;
        p.sequences_done = (committed + leased) as u64;
        Ok(p)
    }

    /// Records that a worker was seen.
    pub fn touch_worker(
        &self,
        id: &str,
        device: &str,
        hostname: &str,
        now_ms: u64,
    ) -> Result<(), StateError> {
        self.tx.execute(
            "INSERT INTO workers (id, device, hostname, last_seen_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(id) DO UPDATE SET last_seen_ms = ?4, \
             device = CASE WHEN ?2 = '' THEN device ELSE ?2 END, \
             hostname = CASE WHEN ?3 = '' THEN hostname ELSE ?3 END",
            params![id, device, hostname, now_ms as i64],
        )?;
        Ok(())
    }

    /// Workers seen since `since_ms`.
    pub fn live_workers(&self, since_ms: u64) -> Result<u32, StateError> {
        let n: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM workers WHERE last_seen_ms >= ?1",
            [since_ms as i64],
            |r| r.get(0),
        )?;
        Ok(n as u32)
    }
}
