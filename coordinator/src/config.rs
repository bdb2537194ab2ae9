//! Job configuration (`--config FILE.toml`): the run flags of DESIGN §6 as a
//! TOML file; unknown keys are errors that name them.

use serde::{Deserialize, Serialize};

/// Errors reading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {reason}")]
    Read {
        /// File.
        path: String,
        /// Problem.
        reason: String,
    },
    /// The TOML is invalid or has an unknown key.
    #[error("{path}: {reason}")]
    Parse {
        /// File.
        path: String,
        /// Problem (names an unknown key).
        reason: String,
    },
    /// A required setting is missing or out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Contact rule settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactConfig {
    /// Cα–Cα distance threshold, Å (strict).
    pub distance: f32,
    /// Minimum |i − j|.
    pub min_separation: usize,
}

impl Default for ContactConfig {
    fn default() -> Self {
        Self {
            distance: 8.0,
            min_separation: 6,
        }
    }
}

/// One analysis job: model × dataset × features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Model directory or object-store URL.
    pub model: Option<String>,
    /// Dataset URL (published by `headscan ingest`).
    pub dataset: Option<String>,
    /// Features: contact, ss4, binding_site, ptm, aa, site:<name> (and single classes).
    pub features: Vec<String>,
    /// Attention threshold θ.
    pub threshold: f64,
    /// Maximum tokens per sequence, specials included.
    pub max_len: usize,
    /// Heads with fewer arcs are excluded from statistics.
    pub min_arcs: u64,
    /// Monte Carlo null samples of the thresholded hits per head (default 100, DESIGN §1).
    pub null_samples: u32,
    /// Seed of every random choice (null samples, `sample`).
    pub seed: u64,
    /// Use at most this many sequences (0 = all): the first N, in dataset order.
    pub limit: u64,
    /// Use N sequences drawn uniformly at random without replacement from `seed`
    /// (0 = off; all rows when N ≥ the dataset's); excludes `limit`.
    pub sample: u64,
    /// Output URL.
    pub out: Option<String>,
    /// Shards processed in parallel.
    pub workers: usize,
    /// cpu or cuda:N.
    pub device: String,
    /// Floating-point type the model computes in: f32 (equal to transformers
    /// to 1e-5) or bf16 (BERT, TAPE, ALBERT and ESM models; counts within the
    /// tolerance BENCHMARKS.md documents). Attention is counted in f32 either way.
    pub precision: String,
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Heads listed per feature in the summary.
    pub top_k: usize,
    /// Contact rule.
    pub contact: ContactConfig,
    /// Notes shown at the top of the report.
    pub notes: Vec<String>,
    /// Record ids whose attention the workers store (weights ≥ 0.05, in
    /// `sequences.parquet`); each gets a page in the report
    /// (`report/sequences/<id>.html`: a head's attention as arcs and on the Cα trace).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub visualize: Vec<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            model: None,
            dataset: None,
            features: vec!["contact".into()],
            threshold: 0.3,
            max_len: 512,
            min_arcs: 100,
            null_samples: 100,
            seed: 0,
            limit: 0,
            sample: 0,
            out: None,
            workers: 1,
            device: "cpu".into(),
            precision: "f32".into(),
            batch_size: 8,
            top_k: 10,
            contact: ContactConfig::default(),
            notes: Vec::new(),
            visualize: Vec::new(),
        }
    }
}

impl RunConfig {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Reads a TOML configuration file.
    pub fn read(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Checks required settings and ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let need = |v: &Option<String>, name: &str| {
            v.as_ref()
                .filter(|s| !s.is_empty())
                .map(|_| ())
                .ok_or_else(|| ConfigError::Invalid(format!("`{name}` is required (config key or --{name})")))
        };
        need(&self.model, "model")?;
        need(&self.dataset, "dataset")?;
        need(&self.out, "out")?;
        if self.features.is_empty() {
            return Err(ConfigError::Invalid("`features` is empty".into()));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(ConfigError::Invalid(format!(
                "`threshold` {} is outside [0, 1]",
                self.threshold
            )));
        }
        if self.max_len < 3 {
            return Err(ConfigError::Invalid("`max_len` must be at least 3".into()));
        }
        if self.limit > 0 && self.sample > 0 {
            return Err(ConfigError::Invalid(format!(
                "`limit` ({}) and `sample` ({}) cannot be combined: `limit` takes the first N \
                 sequences, `sample` N at random; set one of them (config key or --limit / --sample)",
                self.limit, self.sample
            )));
        }
        if self.precision.is_empty() {
            return Err(ConfigError::Invalid(
                "`precision` is empty: expected f32 or bf16".into(),
            ));
        }
        headscan_proto::precision::Precision::parse(&self.precision)
            .map_err(|e| ConfigError::Invalid(format!("`precision`: {e}")))?;
        if self.workers == 0 || self.batch_size == 0 {
            return Err(ConfigError::Invalid(
                "`workers` and `batch_size` must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = RunConfig::from_toml("model = \"m\"\nthreshhold = 0.2\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("threshhold"), "{err}");
        let err = RunConfig::from_toml("[contact]\ndistnce = 7.0\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("distnce"), "{err}");
    }

    #[test]
    fn precision_is_f32_or_bf16() {
        let valid = |p: &str| {
            let text = format!("model = \"m\"\ndataset = \"d\"\nout = \"o\"\nprecision = \"{p}\"\n");
            RunConfig::from_toml(&text, "x.toml").unwrap().validate()
        };
        assert!(valid("f32").is_ok() && valid("bf16").is_ok());
        for bad in ["fp8", "", "BF16"] {
            let err = valid(bad).unwrap_err().to_string();
            assert!(err.contains("precision") && err.contains("bf16"), "{bad}: {err}");
        }
        assert_eq!(RunConfig::default().precision, "f32");
    }

    #[test]
    fn defaults_follow_the_paper() {
        let c = RunConfig::from_toml("", "x.toml").unwrap();
        assert_eq!((c.threshold, c.max_len, c.min_arcs), (0.3, 512, 100));
        assert_eq!(c.null_samples, 100, "DESIGN §1: K = 100");
        assert_eq!((c.limit, c.sample), (0, 0), "every sequence by default");
        assert!(c.validate().is_err(), "model, dataset and out are required");
    }

    #[test]
    fn limit_and_sample_exclude_each_other() {
        let base = "model = \"m\"\ndataset = \"d\"\nout = \"o\"\n";
        for ok in ["limit = 5\n", "sample = 5\n", ""] {
            let c = RunConfig::from_toml(&format!("{base}{ok}"), "x.toml").unwrap();
            c.validate().unwrap();
        }
        let c = RunConfig::from_toml(&format!("{base}limit = 5\nsample = 7\n"), "x.toml").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("`limit`") && err.contains("`sample`"), "{err}");
    }
}
