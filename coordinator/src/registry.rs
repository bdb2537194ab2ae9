//! Model registry watch and recomputation: a registry location (a directory
//! or an object-store prefix) holds one folder of Hugging Face-layout files
//! per model. Each poll digests every model (its files' content), and for
//! every configured dataset × analysis submits one job unless that
//! combination — keyed by (model digest, dataset digest, analysis-config
//! digest) — already has a job that is queued, running or succeeded. A
//! ledger entry per key under the store (`registry/<key>.json`) remembers
//! the job, so an unchanged combination is never recomputed, across
//! coordinator restarts too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use headscan_proto::ids::JobId;
use headscan_proto::pb::JobState;
use headscan_proto::store::{Location, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, RunConfig};
use crate::dataset::{Dataset, DatasetError};
use crate::plan::{identity, spec_from_config};
use crate::server::{Coordinator, CoordinatorError};

/// Errors of the registry watch.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The recompute file is invalid.
    #[error("{path}: {reason}")]
    Recompute {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store or the registry failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A dataset cannot be used.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The coordinator refused a job.
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// A model could not be digested.
    #[error("model {model}: {reason}")]
    Digest {
        /// The model URL.
        model: String,
        /// Why.
        reason: String,
    },
}

/// One analysis of the recompute file: a name and the job settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The analysis name (a path component of the outputs).
    pub name: String,
    /// The job settings (model, dataset and out unset).
    pub config: RunConfig,
}

/// The recompute file: datasets × analyses applied to every model.
#[derive(Debug, Clone, PartialEq)]
pub struct Recompute {
    /// Dataset URLs.
    pub datasets: Vec<String>,
    /// Analyses.
    pub analyses: Vec<Analysis>,
}

impl Recompute {
    /// Parses a recompute file: `datasets = [URL, …]` and one
    /// `[[analysis]]` table per analysis with `name` and the keys of a job
    /// configuration (everything but `model`, `dataset` and `out`).
    pub fn from_toml(text: &str, path: &str) -> Result<Self, RegistryError> {
        let bad = |reason: String| RegistryError::Recompute {
            path: path.to_string(),
            reason,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let datasets: Vec<String> = match table.remove("datasets") {
            Some(v) => v
                .try_into()
                .map_err(|e| bad(format!("`datasets` must be a list of URLs: {e}")))?,
            None => return Err(bad("`datasets` is required".into())),
        };
        let analyses = match table.remove("analysis") {
            Some(toml::Value::Array(list)) => list,
            Some(_) => return Err(bad("`analysis` must be [[analysis]] tables".into())),
            None => return Err(bad("at least one [[analysis]] is required".into())),
        };
        if let Some(key) = table.keys().next() {
            return Err(bad(format!("unknown key `{key}` (expected datasets, analysis)")));
        }
        if datasets.is_empty() || analyses.is_empty() {
            return Err(bad("`datasets` and [[analysis]] must not be empty".into()));
        }
        let mut out = Vec::new();
        for (i, a) in analyses.into_iter().enumerate() {
            let toml::Value::Table(mut a) = a else {
                return Err(bad(format!("analysis {i} is not a table")));
            };
            let name = match a.remove("name") {
                Some(toml::Value::String(s)) if valid_name(&s) => s,
                _ => {
                    return Err(bad(format!(
                        "analysis {i}: `name` is required (letters, digits, `-`, `_`)"
                    )));
                }
            };
            for key in ["model", "dataset", "out"] {
                if a.contains_key(key) {
                    return Err(bad(format!(
                        "analysis `{name}`: `{key}` is set by the registry watch, not here"
                    )));
                }
            }
            let body = toml::to_string(&a).map_err(|e| bad(e.to_string()))?;
            let config = RunConfig::from_toml(&body, &format!("{path} [analysis `{name}`]"))?;
            if out.iter().any(|o: &Analysis| o.name == name) {
                return Err(bad(format!("analysis `{name}` is defined twice")));
            }
            out.push(Analysis { name, config });
        }
        Ok(Self {
            datasets,
            analyses: out,
        })
    }

    /// Reads a recompute file.
    pub fn read(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::Recompute {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('.')
}

/// Computes a model's content digest from its URL (injected: the worker
/// crate owns model files).
pub type DigestFn = Arc<dyn Fn(String) -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// What the ledger remembers of one (model, dataset, analysis) combination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Model folder name.
    pub model: String,
    /// Model digest.
    pub model_digest: String,
    /// Dataset URL.
    pub dataset: String,
    /// Dataset content hash.
    pub dataset_digest: String,
    /// Analysis name.
    pub analysis: String,
    /// `sha256:` of the analysis configuration (what makes results differ).
    pub analysis_digest: String,
    /// The job computing it.
    pub job_id: String,
    /// Its output URL.
    pub output: String,
}

/// The key of a combination: SHA-256 over the three digests.
pub fn combination_key(model_digest: &str, dataset_digest: &str, analysis_digest: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{model_digest}\n{dataset_digest}\n{analysis_digest}\n").as_bytes(),
    ))
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Models found.
    pub models: usize,
    /// Jobs submitted, as ledger entries.
    pub submitted: Vec<LedgerEntry>,
    /// Combinations whose job already exists (reused).
    pub reused: usize,
}

/// The registry watch of one coordinator.
pub struct Watcher {
    coordinator: Arc<Coordinator>,
    registry: Location,
    recompute: PathBuf,
    store: Location,
    digest: DigestFn,
}

impl Watcher {
    /// A watch of `registry` applying the recompute file at `recompute`;
    /// jobs go to `coordinator`, ledger and outputs under `store`.
    pub fn new(
        coordinator: Arc<Coordinator>,
        registry: Location,
        recompute: PathBuf,
        store: Location,
        digest: DigestFn,
    ) -> Self {
        Self {
            coordinator,
            registry,
            recompute,
            store,
            digest,
        }
    }

    /// Model folders of the registry (those holding a config.json), sorted.
    pub async fn models(&self) -> Result<Vec<String>, RegistryError> {
        let mut names: Vec<String> = self
            .registry
            .list("")
            .await?
            .into_iter()
            .filter_map(|p| {
                let (folder, file) = p.split_once('/')?;
                (file == "config.json" && valid_name(folder)).then(|| folder.to_string())
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// One poll: digests every model and submits the combinations not yet computed.
    pub async fn poll(&self) -> Result<PollReport, RegistryError> {
        // Re-read every poll: a changed analysis configuration applies at once.
        let recompute = Recompute::read(&self.recompute)?;
        let mut datasets = Vec::new();
        for url in &recompute.datasets {
            let ds = Dataset::open(url).await?;
            datasets.push((url.clone(), ds.manifest.content_hash.clone()));
        }
        let models = self.models().await?;
        let mut report = PollReport {
            models: models.len(),
            ..PollReport::default()
        };
        for model in &models {
            let model_url = self.registry.child_url(model);
            let model_digest =
                (self.digest)(model_url.clone())
                    .await
                    .map_err(|reason| RegistryError::Digest {
                        model: model_url.clone(),
                        reason,
                    })?;
            for (dataset, dataset_digest) in &datasets {
                for analysis in &recompute.analyses {
                    let mut cfg = analysis.config.clone();
                    cfg.model = Some(model_url.clone());
                    cfg.dataset = Some(dataset.clone());
                    let spec = spec_from_config(&cfg, "", false)?;
                    let analysis_digest = format!(
                        "sha256:{}",
                        hex::encode(Sha256::digest(identity(&spec).unwrap_or_default()))
                    );
                    let key = combination_key(&model_digest, dataset_digest, &analysis_digest);
                    if self.live_job(&key).await? {
                        report.reused += 1;
                        continue;
                    }
                    let output = self.store.child_url(&format!(
                        "registry/results/{model}/{}/{}",
                        analysis.name,
                        &key[..16]
                    ));
                    cfg.out = Some(output.clone());
                    // The job name is the analysis: `results list --matrix` gives it a column.
                    let mut spec = spec_from_config(&cfg, &analysis.name, false)?;
                    spec.model_digest = model_digest.clone();
                    let (job, _) = self.coordinator.submit(spec, false).await?;
                    let entry = LedgerEntry {
                        model: model.clone(),
                        model_digest: model_digest.clone(),
                        dataset: dataset.clone(),
                        dataset_digest: dataset_digest.clone(),
                        analysis: analysis.name.clone(),
                        analysis_digest,
                        job_id: job.to_string(),
                        output,
                    };
                    let json = serde_json::to_vec_pretty(&entry).map_err(|e| RegistryError::Recompute {
                        path: self.recompute.display().to_string(),
                        reason: e.to_string(),
                    })?;
                    self.store.put(&ledger_key(&key), json.into()).await?;
                    tracing::info!(job = %job, model = %model, dataset = %dataset, analysis = %analysis.name, "registry: job submitted");
                    report.submitted.push(entry);
                }
            }
        }
        Ok(report)
    }

    /// True when the ledger names a job for `key` that is queued, running
    /// or succeeded (a failed, cancelled or unknown job is recomputed).
    async fn live_job(&self, key: &str) -> Result<bool, RegistryError> {
        let bytes = match self.store.get(&ledger_key(key)).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let Ok(entry) = serde_json::from_slice::<LedgerEntry>(&bytes) else {
            return Ok(false);
        };
        if JobId::parse(&entry.job_id).is_err() {
            return Ok(false);
        }
        Ok(match self.coordinator.status(&entry.job_id) {
            Ok(s) => !matches!(
                JobState::try_from(s.state),
                Ok(JobState::Failed | JobState::Cancelled)
            ),
            Err(CoordinatorError::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        })
    }

    /// Polls every `interval` forever, logging failed polls.
    pub async fn run(self, interval: Duration) {
        loop {
            match self.poll().await {
                Ok(r) => tracing::debug!(
                    models = r.models,
                    submitted = r.submitted.len(),
                    reused = r.reused,
                    "registry polled"
                ),
                Err(e) => tracing::warn!(error = %e, "registry poll failed"),
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// The ledger key of a combination under the store.
pub fn ledger_key(key: &str) -> String {
    format!("registry/{key}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recompute_file_parses_and_refuses_what_it_must() {
        let r = Recompute::from_toml(
            "datasets = [\"/d\"]\n[[analysis]]\nname = \"s\"\nfeatures = [\"aa\"]\nthreshold = 0.2\n",
            "r.toml",
        )
        .unwrap();
        assert_eq!(r.datasets, ["/d"]);
        assert_eq!(r.analyses[0].name, "s");
        assert_eq!(r.analyses[0].config.threshold, 0.2);
        for (text, want) in [
            ("[[analysis]]\nname = \"s\"\n", "`datasets` is required"),
            ("datasets = [\"/d\"]\n", "[[analysis]]"),
            (
                "datasets = [\"/d\"]\n[[analysis]]\nname = \"s\"\nmodel = \"/m\"\n",
                "`model` is set by the registry",
            ),
            (
                "datasets = [\"/d\"]\n[[analysis]]\nname = \"../x\"\n",
                "`name` is required",
            ),
            (
                "datasets = [\"/d\"]\n[[analysis]]\nname = \"s\"\nthreshhold = 1\n",
                "threshhold",
            ),
            (
                "datasets = [\"/d\"]\nextra = 1\n[[analysis]]\nname = \"s\"\n",
                "unknown key `extra`",
            ),
        ] {
            let e = Recompute::from_toml(text, "r.toml").unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_shipped_kubernetes_configs_parse() {
        let r = Recompute::from_toml(
            include_str!("../../deploy/k8s/base/recompute.toml"),
            "recompute.toml",
        )
        .unwrap();
        assert_eq!(r.analyses[0].name, "structure");
        let job = RunConfig::from_toml(include_str!("../../deploy/k8s/base/job.toml"), "job.toml").unwrap();
        job.validate().unwrap();
    }

    #[test]
    fn keys_change_with_each_digest() {
        let k = combination_key("m", "d", "a");
        assert_eq!(k.len(), 64);
        assert_ne!(k, combination_key("m2", "d", "a"));
        assert_ne!(k, combination_key("m", "d2", "a"));
        assert_ne!(k, combination_key("m", "d", "a2"));
    }
}
