//! Per-residue embeddings of chosen layers — the work of `headscan extract`
//! and the input of the embedding probes.
//!
//! Sequences are batched as in [`crate::shard`]: padded to their bucket and
//! batched only with sequences of the same bucket, so each sequence is
//! computed at the same shape whatever the batch size or shard layout, and its
//! vectors are the same bytes. Rows come out bucket by bucket (shortest
//! first), records in input order within a bucket, then layer, then residue.

use candle_core::{DType, Device};
use headscan_proto::embeddings::{EmbeddingRows, EmbeddingsError};
use headscan_proto::record::ProteinRecord;

use crate::models::{LoadedModel, ModelError};
use crate::shard::bucket;

/// What to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractSpec {
    /// 0-based layers, ascending.
    pub layers: Vec<usize>,
    /// Maximum tokens per sequence, specials included.
    pub max_len: usize,
    /// Sequences per forward pass.
    pub batch_size: usize,
}

/// Errors of extraction.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Rows did not fit the table.
    #[error(transparent)]
    Embeddings(#[from] EmbeddingsError),
    /// `--layers` is not a list of valid layers.
    #[error("--layers {spec:?}: {reason}")]
    Layers {
        /// What was given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<candle_core::Error> for ExtractError {
    fn from(e: candle_core::Error) -> Self {
        ExtractError::Model(ModelError::Candle(e))
    }
}

/// Parses `all` or a comma-separated list of 0-based layers (ranges `a-b`
/// allowed) for a model of `n_layers` layers; ascending, without duplicates.
pub fn parse_layers(spec: &str, n_layers: usize) -> Result<Vec<usize>, ExtractError> {
    let bad = |reason: String| ExtractError::Layers {
        spec: spec.to_string(),
        reason,
    };
    if spec.trim() == "all" {
        return Ok((0..n_layers).collect());
    }
    let mut layers = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("`{s}` is not a layer number (0-based) or `all`")))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(part)?, parse(part)?),
        };
        if lo > hi {
            return Err(bad(format!("range `{part}` is empty")));
        }
        if hi >= n_layers {
            return Err(bad(format!(
                "layer {hi} does not exist: the model has layers 0..={}",
                n_layers.saturating_sub(1)
            )));
        }
        layers.extend(lo..=hi);
    }
    layers.sort_unstable();
    layers.dedup();
    Ok(layers)
}

/// Width of the model's hidden states (one forward pass of one residue).
pub fn hidden_dim(model: &LoadedModel, device: &Device) -> Result<usize, ExtractError> {
    let enc = model.tokenizer.encode("A", model.token_limit(512));
    let input = model.tokenizer.batch(std::slice::from_ref(&enc), device)?;
    let out = model.model.forward(&input, true)?;
    let hidden = out
        .hidden
        .ok_or_else(|| candle_core::Error::Msg("model returned no hidden state".into()))?;
    Ok(hidden.dims3()?.2)
}

/// Runs the model over `records` and hands the rows of each batch to `sink`
/// (see the module docs for their order). Truncated sequences contribute
/// their kept residues only.
pub fn extract_records<E>(
    model: &LoadedModel,
    records: &[ProteinRecord],
    spec: &ExtractSpec,
    device: &Device,
    mut sink: impl FnMut(EmbeddingRows) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<ExtractError>,
{
    let n_layers = model.model.n_layers();
    if let Some(&bad) = spec.layers.iter().find(|&&l| l >= n_layers) {
        return Err(ExtractError::Layers {
            spec: format!("{:?}", spec.layers),
            reason: format!("layer {bad} does not exist: the model has {n_layers}"),
        }
        .into());
    }
    let limit = model.token_limit(spec.max_len);
    let encoded: Vec<_> = records
        .iter()
        .map(|r| model.tokenizer.encode(&r.sequence, limit))
        .collect();
    let mut buckets: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, e) in encoded.iter().enumerate() {
        buckets.entry(bucket(e.ids.len(), limit)).or_default().push(i);
    }
    for (padded, members) in &buckets {
        for chunk in members.chunks(spec.batch_size.max(1)) {
            let batch: Vec<_> = chunk.iter().map(|&i| encoded[i].clone()).collect();
            let input = model
                .tokenizer
                .batch_to(&batch, *padded, device)
                .map_err(ExtractError::from)?;
            let out = model
                .model
                .forward(&input, true)
                .map_err(|e| ExtractError::Model(ModelError::Candle(e)))?;
            let mut per_layer = Vec::with_capacity(spec.layers.len());
            for &l in &spec.layers {
                let h = out.layer_hidden[l]
                    .to_dtype(DType::F32)
                    .and_then(|h| h.to_device(&Device::Cpu))
                    .and_then(|h| h.to_vec3::<f32>())
                    .map_err(ExtractError::from)?;
                per_layer.push(h);
            }
            let dim = per_layer
                .first()
                .and_then(|h| h.first())
                .and_then(|s| s.first())
                .map_or(0, Vec::len);
            let mut rows = EmbeddingRows::new(dim);
            for (k, (&i, e)) in chunk.iter().zip(&batch).enumerate() {
                let offset = if model.tokenizer.pads_left() {
                    input_len(&per_layer, k) - e.ids.len()
                } else {
                    0
                };
                let residue_tokens: Vec<usize> = (0..e.ids.len()).filter(|&t| !e.special[t]).collect();
                for (li, &l) in spec.layers.iter().enumerate() {
                    for (pos, &t) in residue_tokens.iter().enumerate() {
                        rows.push(
                            &records[i].id,
                            pos as i32,
                            l as i32,
                            &per_layer[li][k][offset + t],
                        )
                        .map_err(ExtractError::from)?;
                    }
                }
            }
            sink(rows)?;
        }
    }
    Ok(())
}

/// Padded token length of sequence `k` of a batch.
fn input_len(per_layer: &[Vec<Vec<Vec<f32>>>], k: usize) -> usize {
    per_layer.first().map_or(0, |h| h[k].len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_parse_all_lists_and_ranges() {
        assert_eq!(parse_layers("all", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_layers("2, 0,1-2", 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(parse_layers("5-6", 12).unwrap(), vec![5, 6]);
        let err = parse_layers("3", 3).unwrap_err().to_string();
        assert!(err.contains("layer 3 does not exist"), "{err}");
        assert!(parse_layers("2-1", 3).is_err());
        assert!(parse_layers("x", 3).unwrap_err().to_string().contains("`x`"));
        assert!(parse_layers("", 3).is_err());
    }
}
