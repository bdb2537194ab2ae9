//! Identifiers that may become parts of object-store keys: job ids and task
//! ids. They are made by the coordinator and checked wherever they come back
//! over the wire, so no key can be steered outside its prefix (a job *name*
//! is a label and never becomes part of a path).

use std::fmt;

/// Errors parsing an identifier received over the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not a job id of the form the coordinator makes.
    #[error("invalid job id {0:?}: expected 1-64 characters of a-z, 0-9 and '-'")]
    Job(String),
    /// Not a task id of the form `<job>.<shard>.<attempt>`.
    #[error("invalid task id {0:?}: expected <job>.<shard>.<attempt>")]
    Task(String),
}

/// A job id: 1–64 characters of `a-z`, `0-9` and `-`, not starting with `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(String);

impl JobId {
    /// Checks a job id received from outside.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(IdError::Job(s.to_string()))
        }
    }

    /// A fresh random job id (`j-` and 16 hex digits).
    pub fn random() -> Self {
        let mut bytes = [0u8; 8];
        // The standard hasher is seeded randomly per process; mixing the clock
        // in makes ids unique across processes too.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        bytes.copy_from_slice(&h.finish().to_be_bytes());
        Self(format!("j-{}", hex::encode(bytes)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The store prefix of the job's own objects: `jobs/<id>`.
    pub fn key_prefix(&self) -> String {
        format!("jobs/{}", self.0)
    }

    /// The store key of shard `shard`'s partial counts: fixed by (job, shard).
    pub fn partial_key(&self, shard: u32) -> String {
        format!("jobs/{}/partials/{shard:06}.pb", self.0)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task id names one lease: `<job>.<shard>.<attempt>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// The job.
    pub job: JobId,
    /// 0-based shard index.
    pub shard: u32,
    /// 1-based attempt (lease) number.
    pub attempt: u32,
}

impl TaskId {
    /// Checks a task id received from outside.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Task(s.to_string());
        let mut parts = s.rsplitn(3, '.');
        let attempt = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let shard = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let job = parts.next().ok_or_else(bad)?;
        Ok(Self {
            job: JobId::parse(job).map_err(|_| bad())?,
            shard,
            attempt,
        })
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.job, self.shard, self.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_cannot_leave_their_prefix() {
        for bad in ["", "../../etc", "a/b", "A", "-x", "a.b", &"x".repeat(65), "j\0"] {
            assert!(JobId::parse(bad).is_err(), "{bad:?}");
        }
        let id = JobId::parse("j-0123abcd").unwrap();
        assert_eq!(id.partial_key(7), "jobs/j-0123abcd/partials/000007.pb");
        let r = JobId::random();
        assert_eq!(JobId::parse(r.as_str()).unwrap(), r);
        assert_ne!(JobId::random(), r);
    }

    #[test]
    fn task_ids_round_trip_and_reject_junk() {
        let t = TaskId {
            job: JobId::parse("j-1").unwrap(),
            shard: 12,
            attempt: 3,
        };
        assert_eq!(TaskId::parse(&t.to_string()).unwrap(), t);
        for bad in ["j-1.12", "../x.1.1", "j-1.a.1", "j-1.1.-1", "", "j-1.1.1.1"] {
            assert!(TaskId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
