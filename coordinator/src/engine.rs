//! Engine-native jobs, for sites where a long-running coordinator is
//! unwelcome (Slurm job arrays, Kubernetes Indexed Jobs): `headscan plan`
//! writes a job's task list to a store location, `headscan task` runs one
//! shard and commits its partial there, and `headscan reduce` folds the
//! committed partials and writes the outputs.
//!
//! The plan location plays the coordinator's store: a shard's partial sits
//! at the key fixed by (job, shard) ([`JobId::partial_key`]), the same one
//! the coordinator uses, and a commit marker beside it
//! (`jobs/<job>/commits/<shard>.json`) makes it count. A shard is committed
//! at most once: a task finding its marker does nothing, and a task re-run
//! after a crash before its marker rewrites the same deterministic bytes.
//! The reduction is the coordinator's prefix fold ([`PrefixFold`]) in shard
//! order and the outputs are written by the same [`write_outputs`], so the
//! tables equal the coordinator's byte for byte.

use headscan_proto::ids::JobId;
use headscan_proto::pb::{JobSpec, ShardResult, Task};
use headscan_proto::store::{Location, StoreError};
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::{ConfigError, RunConfig};
use crate::dataset::{Dataset, DatasetError};
use crate::finish::{FinishError, JobFacts, write_outputs};
use crate::plan::{config_from_spec, plan_tasks, spec_from_config};
use crate::reduce::PrefixFold;

/// The plan's object name under the plan location.
pub const PLAN_FILE: &str = "plan.json";
/// The plan format this version writes and reads.
pub const PLAN_FORMAT: &str = "headscan-plan/1";

/// Errors of engine-native planning, tasks and reduction.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The dataset cannot be used.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The job configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The outputs could not be written.
    #[error(transparent)]
    Finish(#[from] FinishError),
    /// The plan cannot be used.
    #[error("plan {url}: {reason}")]
    Plan {
        /// The plan's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Shards are not committed yet.
    #[error("{} of {total} shard(s) not committed yet: {}", missing.len(), list(missing))]
    Missing {
        /// The missing shard indices.
        missing: Vec<u32>,
        /// Shards planned.
        total: u32,
    },
}

fn list(missing: &[u32]) -> String {
    let mut s: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
    if missing.len() > 20 {
        s.push(format!("… ({} more)", missing.len() - 20));
    }
    s.join(", ")
}

/// One planned shard of an engine-native job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTask {
    /// Shard path inside the dataset.
    pub path: String,
    /// Rows analysed.
    pub rows: u64,
    /// The rows, 0-based within the shard (empty: the first `rows`).
    #[serde(default)]
    pub listed: Vec<u32>,
}

/// An engine-native job: what `headscan plan` writes to `plan.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobPlan {
    /// [`PLAN_FORMAT`].
    pub format: String,
    /// The job id (keys of partials and commits).
    pub job_id: String,
    /// The job configuration (model, dataset and output URLs included).
    pub config: RunConfig,
    /// The dataset's content hash when planned.
    pub dataset_content_hash: String,
    /// Rows in the dataset.
    pub dataset_rows: u64,
    /// Rows selected.
    pub selected: u64,
    /// One task per shard with selected rows, in shard order.
    pub tasks: Vec<PlanTask>,
}

/// What a commit marker records about a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Shard index in the plan.
    pub shard: u32,
    /// Key of the partial under the plan location.
    pub partial: String,
    /// Sequences in the partial.
    pub sequences: u64,
    /// Residues in the partial.
    pub residues: u64,
    /// Model family as the task saw it.
    pub model_family: String,
    /// Model digest (every file that defines it).
    pub model_digest: String,
    /// `sha256:` of the model's config.json.
    pub model_config_digest: String,
}

impl JobPlan {
    /// The job id.
    pub fn id(&self, url: &str) -> Result<JobId, EngineError> {
        JobId::parse(&self.job_id).map_err(|e| EngineError::Plan {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// The wire spec of the job, as the coordinator would send it.
    pub fn spec(&self) -> Result<JobSpec, EngineError> {
        let mut spec = spec_from_config(&self.config, "plan", false)?;
        spec.dataset_content_hash = self.dataset_content_hash.clone();
        Ok(spec)
    }

    /// Task `index` as a worker would lease it.
    pub fn task(&self, index: u32) -> Result<Task, EngineError> {
        let Some(t) = self.tasks.get(index as usize) else {
            return Err(EngineError::Plan {
                url: String::new(),
                reason: format!(
                    "no task {index}: the plan has {} (indices 0..={})",
                    self.tasks.len(),
                    self.tasks.len().saturating_sub(1)
                ),
            });
        };
        Ok(Task {
            job_id: self.job_id.clone(),
            task_id: format!("{}/{index}/0", self.job_id),
            shard_index: index,
            shard_url: String::new(),
            spec: Some(self.spec()?),
            lease_expires_unix_ms: 0,
            attempt: 0,
            shard_path: t.path.clone(),
            rows: t.rows,
            row_indices: t.listed.clone(),
        })
    }
}

/// Key of shard `shard`'s commit marker.
pub fn commit_key(job: &JobId, shard: u32) -> String {
    format!("{}/commits/{shard:06}.json", job.key_prefix())
}

/// Plans `cfg` (model, dataset and, optionally, output URLs set) into
/// `plan_url`: one task per shard, as the coordinator plans. Refuses to
/// replace an existing plan unless `overwrite`. The output defaults to
/// `<plan_url>/out`.
pub async fn write_plan(mut cfg: RunConfig, plan_url: &str, overwrite: bool) -> Result<JobPlan, EngineError> {
    cfg.validate()?;
    let loc = Location::parse(plan_url)?;
    if !overwrite && loc.exists(PLAN_FILE).await? {
        return Err(EngineError::Plan {
            url: loc.child_url(PLAN_FILE),
            reason: "a plan is already there (use --overwrite to replace it)".into(),
        });
    }
    let dataset_url = cfg.dataset.clone().unwrap_or_default();
    let dataset = Dataset::open(&dataset_url).await?;
    if cfg.out.is_none() {
        cfg.out = Some(loc.child_url("out"));
    }
    // The configuration exactly as a coordinator would see it.
    let cfg = config_from_spec(&spec_from_config(&cfg, "plan", false)?)?;
    let (tasks, planned) = plan_tasks(&dataset.manifest.shards, &cfg)?;
    if planned.selected == 0 {
        return Err(EngineError::Plan {
            url: loc.child_url(PLAN_FILE),
            reason: format!(
                "dataset {dataset_url} is empty after filtering (limit {}, sample {})",
                cfg.limit, cfg.sample
            ),
        });
    }
    let plan = JobPlan {
        format: PLAN_FORMAT.into(),
        job_id: JobId::random().to_string(),
        config: cfg,
        dataset_content_hash: dataset.manifest.content_hash.clone(),
        dataset_rows: planned.dataset_rows,
        selected: planned.selected,
        tasks: tasks
            .into_iter()
            .map(|t| PlanTask {
                path: t.path,
                rows: t.rows,
                listed: t.listed,
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&plan).map_err(|e| EngineError::Plan {
        url: loc.child_url(PLAN_FILE),
        reason: e.to_string(),
    })?;
    loc.put(PLAN_FILE, json.into()).await?;
    Ok(plan)
}

/// Reads the plan at `plan_url` (the location `headscan plan --out` wrote).
pub async fn read_plan(plan_url: &str) -> Result<(Location, JobPlan), EngineError> {
    let loc = Location::parse(plan_url)?;
    let url = loc.child_url(PLAN_FILE);
    let bytes = loc.get(PLAN_FILE).await.map_err(|e| {
        if e.is_not_found() {
            EngineError::Plan {
                url: url.clone(),
                reason: "no plan there (write one with `headscan plan`)".into(),
            }
        } else {
            e.into()
        }
    })?;
    let plan: JobPlan = serde_json::from_slice(&bytes).map_err(|e| EngineError::Plan {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    if plan.format != PLAN_FORMAT {
        return Err(EngineError::Plan {
            url,
            reason: format!("format `{}`, expected `{PLAN_FORMAT}`", plan.format),
        });
    }
    plan.id(&url)?;
    Ok((loc, plan))
}

/// The commit marker of shard `index`, when committed.
pub async fn committed(loc: &Location, plan: &JobPlan, index: u32) -> Result<Option<Commit>, EngineError> {
    let id = plan.id(loc.url())?;
    let key = commit_key(&id, index);
    match loc.get(&key).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| EngineError::Plan {
                url: loc.child_url(&key),
                reason: e.to_string(),
            }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Commits shard `commit.shard`'s result: the partial at the coordinator's
/// key, then the marker. False (and nothing written) when it is already
/// committed.
pub async fn commit(
    loc: &Location,
    plan: &JobPlan,
    mut commit: Commit,
    result: ShardResult,
) -> Result<bool, EngineError> {
    if committed(loc, plan, commit.shard).await?.is_some() {
        return Ok(false);
    }
    let id = plan.id(loc.url())?;
    let key = id.partial_key(commit.shard);
    loc.put(&key, result.encode_to_vec().into()).await?;
    commit.partial = key;
    let json = serde_json::to_vec_pretty(&commit).map_err(|e| EngineError::Plan {
        url: loc.url().to_string(),
        reason: e.to_string(),
    })?;
    loc.put(&commit_key(&id, commit.shard), json.into()).await?;
    Ok(true)
}

/// Folds every committed partial in shard order and writes the job's
/// outputs; refuses, naming them, while any shard is not committed.
/// Returns the output URL and the files written.
pub async fn reduce(loc: &Location, plan: &JobPlan) -> Result<(String, Vec<String>), EngineError> {
    let started = std::time::Instant::now();
    let total = plan.tasks.len() as u32;
    let mut commits = Vec::with_capacity(plan.tasks.len());
    let mut missing = Vec::new();
    for shard in 0..total {
        match committed(loc, plan, shard).await? {
            Some(c) => commits.push(c),
            None => missing.push(shard),
        }
    }
    if !missing.is_empty() {
        return Err(EngineError::Missing { missing, total });
    }
    let bad = |key: &str, reason: String| EngineError::Plan {
        url: loc.child_url(key),
        reason,
    };
    let first = &commits[0];
    if let Some(c) = commits.iter().find(|c| c.model_digest != first.model_digest) {
        return Err(bad(
            &commit_key(&plan.id(loc.url())?, c.shard),
            format!(
                "shard {} was computed with model {} but shard {} with {}: the model changed during the job",
                c.shard, c.model_digest, first.shard, first.model_digest
            ),
        ));
    }
    let mut fold = PrefixFold::default();
    for c in &commits {
        let bytes = loc.get(&c.partial).await?;
        let result = ShardResult::decode(bytes).map_err(|e| bad(&c.partial, e.to_string()))?;
        let partial = result
            .partial
            .ok_or_else(|| bad(&c.partial, "no partial counts".into()))?;
        fold.push(Some((partial, result.record_ids)))
            .map_err(|e| bad(&c.partial, format!("reducing shard {}: {e}", c.shard)))?;
    }
    let ids_sha256 = format!("sha256:{}", hex::encode(fold.ids.clone().finalize()));
    let Some(reduced) = fold.folded else {
        return Err(bad(PLAN_FILE, "the plan has no tasks".into()));
    };
    let facts = JobFacts {
        job_id: plan.job_id.clone(),
        model_family: first.model_family.clone(),
        model_digest: first.model_digest.clone(),
        model_config_digest: first.model_config_digest.clone(),
        dataset_rows: plan.dataset_rows,
        dataset_content_hash: plan.dataset_content_hash.clone(),
        missing_shards: Vec::new(),
        shards: total,
        elapsed_s: started.elapsed().as_secs_f64(),
        ids_sha256,
    };
    let written = write_outputs(&plan.config, &reduced, &facts).await?;
    Ok((plan.config.out.clone().unwrap_or_default(), written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shards_are_named() {
        let e = EngineError::Missing {
            missing: vec![1, 4],
            total: 6,
        };
        assert_eq!(e.to_string(), "2 of 6 shard(s) not committed yet: 1, 4");
        let many = EngineError::Missing {
            missing: (0..25).collect(),
            total: 30,
        };
        assert!(many.to_string().ends_with("19, … (5 more)"), "{many}");
    }

    #[test]
    fn commit_keys_sit_beside_the_partials() {
        let id = JobId::random();
        let p = id.partial_key(3);
        let c = commit_key(&id, 3);
        assert_eq!(
            p.rsplit_once("/partials/").unwrap().0,
            c.rsplit_once("/commits/").unwrap().0
        );
        assert!(c.ends_with("/commits/000003.json"));
    }
}
