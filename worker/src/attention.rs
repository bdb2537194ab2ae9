//! Attention of one sequence as a dense `[layers, heads, L, L]` array — what
//! `headscan attention` writes. (Analysis jobs never bring dense attention to
//! the host; this is for inspection and for comparing with other tools.)

use candle_core::{DType, Device, Tensor};

use crate::models::{LoadedModel, ModelError};

/// Dense attention of one sequence, row-major `[layers, heads, L, L]`.
#[derive(Debug, Clone)]
pub struct DenseAttention {
    /// `[layers, heads, L, L]`.
    pub shape: [usize; 4],
    /// Values in C order.
    pub values: Vec<f32>,
    /// Residues kept after truncation.
    pub residues: usize,
}

/// Runs the model on one sequence. Sequences longer than `max_len` tokens
/// (specials included, and never more than the model's position limit) are
/// truncated. Special-token rows and columns are dropped unless `keep_special`.
pub fn sequence_attention(
    model: &LoadedModel,
    sequence: &str,
    max_len: usize,
    keep_special: bool,
    device: &Device,
) -> Result<DenseAttention, ModelError> {
    let limit = model.token_limit(max_len);
    let encoded = model.tokenizer.encode(sequence, limit);
    let input = model.tokenizer.batch(std::slice::from_ref(&encoded), device)?;
    let out = model.model.forward(&input, false)?;
    let keep: Vec<u32> = (0..encoded.ids.len() as u32)
        .filter(|i| keep_special || !encoded.special[*i as usize])
        .collect();
    let index = Tensor::new(keep.as_slice(), device)?;
    let mut layers = Vec::with_capacity(out.attentions.len());
    for a in &out.attentions {
        // [1, H, T, T] → [H, L, L]
        let a = a.squeeze(0)?.index_select(&index, 1)?.index_select(&index, 2)?;
        layers.push(a);
    }
    let stacked = Tensor::stack(&layers, 0)?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?;
    let dims = stacked.dims4()?;
    Ok(DenseAttention {
        shape: [dims.0, dims.1, dims.2, dims.3],
        values: stacked.flatten_all()?.to_vec1()?,
        residues: encoded.residues,
    })
}

/// The process's CUDA device of each ordinal. candle gives every
/// `Device::new_cuda` call a device of its own, and tensors of two such
/// devices cannot meet in one op: the model a run loads before its workers
/// start and the workers' inputs must come from the same one.
fn cuda_device(ordinal: usize) -> candle_core::Result<Device> {
    static DEVICES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<usize, Device>>> =
        std::sync::OnceLock::new();
    let mut devices = DEVICES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(device) = devices.get(&ordinal) {
        return Ok(device.clone());
    }
    let device = Device::new_cuda(ordinal)?;
    devices.insert(ordinal, device.clone());
    Ok(device)
}

/// Parses `cpu` or `cuda:N` (also `cuda` = `cuda:0`); every call for the same
/// GPU returns the same device.
pub fn parse_device(spec: &str) -> Result<Device, ModelError> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s => match s
            .strip_prefix("cuda")
            .and_then(|n| if n.is_empty() { Some(0) } else { n.strip_prefix(':')?.parse::<usize>().ok() })
        {
            Some(n) => cuda_device(n).map_err(|e| {
                let hint = if cfg!(feature = "cuda") {
                    "is the NVIDIA driver installed and the GPU visible? LD_LIBRARY_PATH must reach the CUDA 13 libraries"
                } else {
                    "CUDA needs a build with `--features cuda`"
                };
                ModelError::Candle(candle_core::Error::Msg(format!("device {s}: {e} ({hint})")))
            }),
            None => Err(ModelError::Candle(candle_core::Error::Msg(format!(
                "unknown device `{s}` (expected cpu or cuda:N)"
            )))),
        },
    }
}
