//! Model weights: `*.safetensors` (one file or sharded with
//! `model.safetensors.index.json`) or `pytorch_model.bin`, as a candle
//! `VarBuilder` that resolves parameter names as transformers' loader does
//! (see [`canonical_name`]), so every family accepts the same checkpoints.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

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

/// The name a stored tensor has in the base model, as transformers' loader
/// maps checkpoint keys: the base-model prefix (`bert.`, `esm.` …) of a
/// task-head checkpoint is dropped, and TensorFlow-era LayerNorm parameters
/// (`gamma`, `beta`) become `weight` and `bias`.
pub fn canonical_name(stored: &str, base_prefix: &str) -> String {
    let mut name = stored;
    if !base_prefix.is_empty()
        && let Some(rest) = stored.strip_prefix(base_prefix).and_then(|r| r.strip_prefix('.'))
    {
        name = rest;
    }
    match name.rsplit_once('.') {
        Some((head, "gamma")) => format!("{head}.weight"),
        Some((head, "beta")) => format!("{head}.bias"),
        _ => name.to_string(),
    }
}

/// A weight store whose tensors are found under the names the model code
/// asks for (base-model names, `weight`/`bias`), whatever names the
/// checkpoint stores them under. A name stored as asked always wins.
struct CheckpointNames {
    inner: Box<dyn SimpleBackend>,
    /// Base-model name → stored name, for stored names that differ.
    aliases: HashMap<String, String>,
    /// The base-model prefix, where the checkpoint stores names under it.
    stored_prefix: Option<String>,
}

impl CheckpointNames {
    fn new(inner: Box<dyn SimpleBackend>, mut stored: Vec<String>, base_prefix: &str) -> Self {
        stored.sort();
        let direct: HashSet<&str> = stored.iter().map(String::as_str).collect();
        let mut aliases = HashMap::new();
        for key in &stored {
            let canonical = canonical_name(key, base_prefix);
            if canonical != *key && !direct.contains(canonical.as_str()) {
                aliases.entry(canonical).or_insert_with(|| key.clone());
            }
        }
        let prefixed = format!("{base_prefix}.");
        let stored_prefix = (!base_prefix.is_empty() && stored.iter().any(|k| k.starts_with(&prefixed)))
            .then(|| base_prefix.to_string());
        Self {
            inner,
            aliases,
            stored_prefix,
        }
    }

    fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map_or(name, String::as_str)
    }

    /// A missing tensor, named as this checkpoint would store it.
    fn missing(&self, name: &str) -> candle_core::Error {
        let path = match &self.stored_prefix {
            Some(prefix) => format!("{prefix}.{name}"),
            None => name.to_string(),
        };
        candle_core::Error::CannotFindTensor { path }
    }
}

impl SimpleBackend for CheckpointNames {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let stored = self.resolve(name);
        if !self.inner.contains_tensor(stored) {
            return Err(self.missing(name));
        }
        self.inner.get(s, stored, h, dtype, dev).map_err(|e| match e {
            candle_core::Error::UnexpectedShape { expected, got, .. } => {
                candle_core::Error::UnexpectedShape {
                    msg: stored.to_string(),
                    expected,
                    got,
                }
            }
            other => other,
        })
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.inner.get_unchecked(self.resolve(name), dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.contains_tensor(self.resolve(name))
    }
}

/// Memory-mapped safetensors whose f32 tensors are copied out by all cores:
/// the copy faults in fresh pages, which on a VM costs more than the copy
/// itself (BENCHMARKS.md). Same values as
/// candle's loader (a little-endian f32 read is the stored bits).
struct ParallelSafetensors(candle_core::safetensors::MmapedSafetensors);

/// Tensors below this many bytes are copied on one thread.
const PARALLEL_COPY_MIN: usize = 1 << 20;

impl SimpleBackend for ParallelSafetensors {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let view = self.0.get(name)?;
        let stored = DType::try_from(view.dtype()).ok();
        if !(dev.is_cpu()
            && dtype == DType::F32
            && stored == Some(DType::F32)
            && view.data().len() >= PARALLEL_COPY_MIN)
        {
            return SimpleBackend::get(&self.0, s, name, h, dtype, dev);
        }
        let shape = Shape::from(view.shape());
        if shape != s {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: shape,
            });
        }
        use rayon::prelude::*;
        const CHUNK: usize = 1 << 16;
        let bytes = view.data();
        let mut values = vec![0f32; bytes.len() / 4];
        values
            .par_chunks_mut(CHUNK)
            .zip(bytes.par_chunks(4 * CHUNK))
            .for_each(|(dst, src)| {
                for (d, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                    *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            });
        Tensor::from_vec(values, shape, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        SimpleBackend::get_unchecked(&self.0, name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        SimpleBackend::contains_tensor(&self.0, name)
    }
}

/// Opens the weights of a model directory (float32), choosing the format
/// (safetensors first) unless one is forced. Tensors are looked up by their
/// base-model names ([`canonical_name`] with `base_prefix`, e.g. `"bert"`).
pub fn open_weights(
    dir: &Path,
    device: &Device,
    format: Option<WeightFormat>,
    base_prefix: &str,
) -> Result<VarBuilder<'static>, WeightsError> {
    let st = safetensors_files(dir)?;
    let pth = dir.join("pytorch_model.bin");
    let format = match format {
        Some(f) => f,
        None if !st.is_empty() => WeightFormat::Safetensors,
        None if pth.is_file() => WeightFormat::PyTorch,
        None => return Err(WeightsError::Missing(dir.display().to_string())),
    };
    let (inner, stored): (Box<dyn SimpleBackend>, Vec<String>) = match format {
        WeightFormat::Safetensors => {
            if st.is_empty() {
                return Err(WeightsError::Missing(dir.display().to_string()));
            }
            // SAFETY: the files are memory-mapped read-only; headscan never
            // writes model files while a model is loaded.
            let tensors =
                unsafe { candle_core::safetensors::MmapedSafetensors::multi(&st) }.map_err(|source| {
                    WeightsError::Read {
                        path: st[0].display().to_string(),
                        source,
                    }
                })?;
            let names = tensors.tensors().into_iter().map(|(name, _)| name).collect();
            (Box::new(ParallelSafetensors(tensors)), names)
        }
        WeightFormat::PyTorch => {
            let tensors =
                candle_core::pickle::PthTensors::new(&pth, None).map_err(|source| WeightsError::Read {
                    path: pth.display().to_string(),
                    source,
                })?;
            let names = tensors.tensor_infos().keys().cloned().collect();
            (Box::new(tensors), names)
        }
    };
    let backend = CheckpointNames::new(inner, stored, base_prefix);
    Ok(VarBuilder::from_backend(
        Box::new(backend),
        DType::F32,
        device.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::canonical_name;

    #[test]
    fn canonical_names_follow_transformers_loader() {
        assert_eq!(
            canonical_name("bert.encoder.layer.0.output.LayerNorm.gamma", "bert"),
            "encoder.layer.0.output.LayerNorm.weight"
        );
        assert_eq!(
            canonical_name("encoder.layer.0.attention.LayerNorm.beta", "esm"),
            "encoder.layer.0.attention.LayerNorm.bias"
        );
        assert_eq!(
            canonical_name("esm.embeddings.word_embeddings.weight", "esm"),
            "embeddings.word_embeddings.weight"
        );
        // Another family's prefix, or a prefix that is only a name's start, stays.
        assert_eq!(canonical_name("bertology.weight", "bert"), "bertology.weight");
        assert_eq!(
            canonical_name("cls.predictions.bias", "bert"),
            "cls.predictions.bias"
        );
        assert_eq!(canonical_name("shared.weight", ""), "shared.weight");
    }
}
