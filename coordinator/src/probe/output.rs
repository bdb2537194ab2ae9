//! The probe job's configuration (`headscan probe --config FILE.toml`) and
//! its tables: `split.parquet (id, split)`, `probes.parquet (task, layer,
//! kind, metric, value, n_train, n_eval)` and `weights.json`.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::basic::ZstdLevel;
use serde::{Deserialize, Serialize};

use crate::outputs::parquet_bytes;

/// `headscan probe` settings (TOML keys; flags of the same names override).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Model directory or URL.
    pub model: String,
    /// Canonical dataset URL.
    pub dataset: String,
    /// Tasks: ss4, binding_site, ptm, contact.
    pub tasks: Vec<String>,
    /// Layers: `all` or 0-based numbers and ranges.
    pub layers: String,
    /// Probe kinds: `embedding` (per-layer residue embeddings), `attention`
    /// and `contact_regression` (contacts from attention).
    pub kinds: Vec<String>,
    /// Seed of the record-level split.
    pub seed: u64,
    /// Output URL.
    pub out: String,
    /// Share of records that train (the rest validate).
    pub train_fraction: f64,
    /// L2 strength λ = 1/C of the logistic regression.
    pub l2: f64,
    /// L1 strength λ = 1/C of the contact regression (ESM: C = 0.15).
    pub l1: f64,
    /// Weigh classes by n / (K · n_c) (scikit-learn's "balanced").
    pub balanced: bool,
    /// Maximum tokens per sequence, specials included.
    pub max_len: usize,
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// cpu or cuda:N.
    pub device: String,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            model: String::new(),
            dataset: String::new(),
            tasks: vec!["ss4".into(), "binding_site".into(), "ptm".into()],
            layers: "all".into(),
            kinds: vec!["embedding".into()],
            seed: 0,
            out: String::new(),
            train_fraction: super::tasks::DEFAULT_TRAIN_FRACTION,
            l2: 1.0,
            l1: 1.0 / 0.15,
            balanced: true,
            max_len: 512,
            batch_size: 8,
            device: "cpu".into(),
        }
    }
}

impl ProbeConfig {
    /// Parses TOML; `path` names the file in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("{path}: {e}"))
    }
}

/// One row of `probes.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeRow {
    /// Task name.
    pub task: String,
    /// 0-based layer.
    pub layer: i32,
    /// `embedding`, `attention` or `contact_regression`.
    pub kind: String,
    /// Metric name (`f1_macro`, `f1:<class>`, `precision_at_L/20`, …).
    pub metric: String,
    /// Its value on the validation records.
    pub value: f64,
    /// Training rows (residues).
    pub n_train: u64,
    /// Validation rows scored.
    pub n_eval: u64,
}

/// Fitted weights of one probe (`weights.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeWeights {
    /// Task name.
    pub task: String,
    /// 0-based layer.
    pub layer: i32,
    /// Probe kind.
    pub kind: String,
    /// Class names, class 0 the reference (scores fixed at 0).
    pub classes: Vec<String>,
    /// Features per row.
    pub dim: usize,
    /// Row-major `(classes − 1) × (dim + 1)`: each class's weights, then its intercept.
    pub weights: Vec<f64>,
    /// Class weights used in training.
    pub class_weights: Vec<f64>,
    /// Newton iterations.
    pub iterations: usize,
}

fn encode(batch: RecordBatch, file: &str) -> Result<Vec<u8>, String> {
    parquet_bytes(&batch, ZstdLevel::default()).map_err(|e| format!("{file}: {e}"))
}

/// `split.parquet`: one row per record, `split` = `train` | `validation`.
pub fn split_parquet(rows: &[(String, bool)]) -> Result<Vec<u8>, String> {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str()))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| if r.1 { "train" } else { "validation" }),
        )),
    ];
    let batch = RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| e.to_string())?;
    encode(batch, "split.parquet")
}

/// `probes.parquet`.
pub fn probes_parquet(rows: &[ProbeRow]) -> Result<Vec<u8>, String> {
    let schema = Schema::new(vec![
        Field::new("task", DataType::Utf8, false),
        Field::new("layer", DataType::Int32, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("n_train", DataType::UInt64, false),
        Field::new("n_eval", DataType::UInt64, false),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.task.as_str()),
        )),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.layer))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.kind.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.metric.as_str()),
        )),
        Arc::new(Float64Array::from_iter(
            rows.iter().map(|r| r.value.is_finite().then_some(r.value)),
        )),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.n_train))),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.n_eval))),
    ];
    let batch = RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| e.to_string())?;
    encode(batch, "probes.parquet")
}
