//! Planning: a job configuration becomes a wire [`JobSpec`], and a job over a
//! dataset becomes one task per shard (with the rows each may use under
//! `limit`).

use headscan_proto::manifest::ShardEntry;

use headscan_proto::pb::JobSpec;

use crate::config::{ConfigError, RunConfig};
use crate::selection::{Plan, Rows, Selection, plan};

/// The wire spec of a job configuration (the full configuration travels as
/// JSON beside the fields workers read).
pub fn spec_from_config(cfg: &RunConfig, name: &str, allow_partial: bool) -> Result<JobSpec, ConfigError> {
    let config_json = serde_json::to_string(cfg).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    Ok(JobSpec {
        model: cfg.model.clone().unwrap_or_default(),
        dataset: cfg.dataset.clone().unwrap_or_default(),
        features: cfg.features.clone(),
        threshold: cfg.threshold,
        max_len: cfg.max_len as u32,
        min_arcs: cfg.min_arcs,
        null_samples: cfg.null_samples,
        seed: cfg.seed,
        limit: cfg.limit,
        output: cfg.out.clone().unwrap_or_default(),
        contact_distance: f64::from(cfg.contact.distance),
        contact_min_separation: cfg.contact.min_separation as u32,
        batch_size: cfg.batch_size as u32,
        allow_partial,
        name: name.to_string(),
        config_json,
        max_attempts: 0,
        model_digest: String::new(),
        dataset_content_hash: String::new(),
        probe: None,
        precision: cfg.precision.clone(),
    })
}

/// The job configuration of a wire spec: its JSON when present, else the fields.
pub fn config_from_spec(spec: &JobSpec) -> Result<RunConfig, ConfigError> {
    let mut cfg = if spec.config_json.is_empty() {
        RunConfig::default()
    } else {
        serde_json::from_str(&spec.config_json)
            .map_err(|e| ConfigError::Invalid(format!("job configuration: {e}")))?
    };
    // The fields workers read are authoritative.
    cfg.model = Some(spec.model.clone());
    cfg.dataset = Some(spec.dataset.clone());
    cfg.out = Some(spec.output.clone());
    cfg.features = spec.features.clone();
    cfg.threshold = spec.threshold;
    cfg.max_len = spec.max_len as usize;
    cfg.min_arcs = spec.min_arcs;
    cfg.null_samples = spec.null_samples;
    cfg.seed = spec.seed;
    cfg.limit = spec.limit;
    cfg.batch_size = (spec.batch_size as usize).max(1);
    cfg.precision = match spec.precision.as_str() {
        "" => "f32".into(),
        p => p.into(),
    };
    cfg.contact.distance = spec.contact_distance as f32;
    cfg.contact.min_separation = spec.contact_min_separation as usize;
    Ok(cfg)
}

/// What makes two jobs give the same results: the configuration without
/// where the outputs go or how the work is spread (workers, batch size),
/// and without the model and dataset locations (their digests stand in).
pub fn identity(spec: &JobSpec) -> Option<String> {
    let mut cfg = config_from_spec(spec).ok()?;
    cfg.out = None;
    cfg.model = None;
    cfg.dataset = None;
    cfg.workers = 1;
    cfg.batch_size = 1;
    serde_json::to_string(&cfg).ok()
}

/// One planned task: a shard and the rows of it to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTask {
    /// Shard path inside the dataset.
    pub path: String,
    /// Rows analysed.
    pub rows: u64,
    /// The rows, 0-based within the shard (empty: the first `rows`).
    pub listed: Vec<u32>,
}

/// One task per shard with selected rows (`limit` / `sample` of DESIGN §6,
/// planned by [`crate::selection`]), and the plan's numbers.
pub fn plan_tasks(shards: &[ShardEntry], cfg: &RunConfig) -> Result<(Vec<PlannedTask>, Plan), ConfigError> {
    let planned = plan(shards, Selection::from_config(cfg)?);
    let tasks = planned
        .tasks
        .iter()
        .map(|t| PlannedTask {
            path: t.shard.url.clone(),
            rows: t.rows.len() as u64,
            listed: match &t.rows {
                Rows::First(_) => Vec::new(),
                Rows::Listed(v) => v.iter().map(|&r| u32::try_from(r).unwrap_or(u32::MAX)).collect(),
            },
        })
        .collect();
    Ok((tasks, planned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_the_config() {
        let mut cfg = RunConfig {
            model: Some("/m".into()),
            dataset: Some("/d".into()),
            out: Some("/o".into()),
            null_samples: 7,
            limit: 5,
            ..RunConfig::default()
        };
        cfg.notes.push("note".into());
        let spec = spec_from_config(&cfg, "n", true).unwrap();
        assert!(spec.allow_partial);
        assert_eq!(config_from_spec(&spec).unwrap(), cfg);
    }

    #[test]
    fn limit_and_sample_cut_the_plan() {
        let shards: Vec<ShardEntry> = [3u64, 3, 1]
            .iter()
            .enumerate()
            .map(|(i, &rows)| ShardEntry {
                url: format!("shards/part-{i:05}.parquet"),
                rows,
                residues: 0,
                content_hash: String::new(),
                file_sha256: String::new(),
                bytes: 0,
            })
            .collect();
        let mut cfg = RunConfig::default();
        assert_eq!(plan_tasks(&shards, &cfg).unwrap().0.len(), 3);
        cfg.limit = 4;
        let (p, _) = plan_tasks(&shards, &cfg).unwrap();
        assert_eq!(p.iter().map(|t| t.rows).collect::<Vec<_>>(), [3, 1]);
        assert!(p.iter().all(|t| t.listed.is_empty()));
        cfg.limit = 0;
        cfg.sample = 2;
        let (p, planned) = plan_tasks(&shards, &cfg).unwrap();
        assert_eq!(planned.selected, 2);
        assert_eq!(p.iter().map(|t| t.listed.len() as u64).sum::<u64>(), 2);
        assert!(p.iter().all(|t| t.rows == t.listed.len() as u64));
    }
}
