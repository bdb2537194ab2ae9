//! Model weights: `*.safetensors` (one file or sharded with
//! `model.safetensors.index.json`) or `pytorch_model.bin`, as a candle `VarBuilder`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

/// On-disk weight formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `model.safetensors`, or shards listed in `model.safetensors.index.json`.
    Safetensors,
    /// `pytorch_model.bin` (a PyTorch pickle archive).
    PyTorch,
}

/// Errors opening weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// No weight file found.
    #[error("{0}: no model.safetensors, model.safetensors.index.json, *.safetensors or pytorch_model.bin")]
    Missing(String),
    /// The index file is unreadable.
    #[error("{path}: {reason}")]
    Index {
        /// Index file.
        path: String,
        /// Problem.
        reason: String,
    },
    /// candle failed to read the weights.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Underlying error.
        source: candle_core::Error,
    },
}

/// The safetensors files of a directory: from the index when sharded.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let bad = |reason: String| WeightsError::Index {
            path: index.display().to_string(),
            reason,
        };
        let text = std::fs::read(&index).map_err(|e| bad(e.to_string()))?;
        let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad("no weight_map".into()))?;
        let mut files: Vec<String> = map
            .values()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    Ok(files)
}

/// Opens the weights of a model directory (float32), choosing the format
/// (safetensors first) unless one is forced.
pub fn open_weights(
    dir: &Path,
    device: &Device,
    format: Option<WeightFormat>,
) -> Result<VarBuilder<'static>, WeightsError> {
    let st = safetensors_files(dir)?;
    let pth = dir.join("pytorch_model.bin");
    let format = match format {
        Some(f) => f,
        None if !st.is_empty() => WeightFormat::Safetensors,
        None if pth.is_file() => WeightFormat::PyTorch,
        None => return Err(WeightsError::Missing(dir.display().to_string())),
    };
    match format {
        WeightFormat::Safetensors => {
            if st.is_empty() {
                return Err(WeightsError::Missing(dir.display().to_string()));
            }
            // SAFETY: the files are memory-mapped read-only; headscan never
            // writes model files while a model is loaded.
            unsafe { VarBuilder::from_mmaped_safetensors(&st, DType::F32, device) }.map_err(|source| {
                WeightsError::Read {
                    path: st[0].display().to_string(),
                    source,
                }
            })
        }
        WeightFormat::PyTorch => {
            VarBuilder::from_pth(&pth, DType::F32, device).map_err(|source| WeightsError::Read {
                path: pth.display().to_string(),
                source,
            })
        }
    }
}
