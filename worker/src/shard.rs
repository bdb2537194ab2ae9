//! The unit of work of a worker: records in, `PartialCounts` out. The same
//! function serves `headscan run` (embedded) and, later, remote workers.

use candle_core::Device;
use headscan_proto::pb::PartialCounts;
use headscan_proto::record::ProteinRecord;

use crate::analysis::accumulate::{Accumulator, SequenceInput};
use crate::analysis::features::{FeatureSpec, record_features};
use crate::analysis::null::sequence_key;
use crate::analysis::visualize::{ATTENTION_FLOOR, sparse_attention};
use crate::models::{LoadedModel, ModelError};

/// What to compute over a set of records.
#[derive(Debug, Clone)]
pub struct AnalysisSpec {
    /// Features, expanded.
    pub features: Vec<FeatureSpec>,
    /// Attention threshold θ of high-confidence arcs.
    pub threshold: f64,
    /// Maximum tokens per sequence, specials included.
    pub max_len: usize,
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Monte Carlo null samples per head.
    pub null_samples: u32,
    /// Seed of the null draws.
    pub seed: u64,
    /// Ids of the records whose attention is kept (config `visualize`).
    pub visualize: Vec<String>,
}

/// Sequences are padded to a multiple of this many tokens (their bucket) and
/// batched only with sequences of the same bucket, so the model computes each
/// sequence at the same shape whatever the batch size or shard layout.
pub const PAD_BUCKET: usize = 16;

/// Where a shard's compute time went: the model's forward pass, and
/// everything else done on its attention (counts, null, visualised records).
#[derive(Debug, Default, Clone, Copy)]
struct Timing {
    forward: std::time::Duration,
    analysis: std::time::Duration,
}

/// The padded length of a sequence of `tokens` tokens under a `limit`.
pub fn bucket(tokens: usize, limit: usize) -> usize {
    (tokens.div_ceil(PAD_BUCKET) * PAD_BUCKET).min(limit.max(tokens))
}

/// Runs the model over `records` in batches of equal padded length and
/// returns their counts, with the sparse attention of the records named in
/// `spec.visualize` (in record order). Sums are exact (fixed point), so neither the batch
/// order nor the grouping changes a bit of the result.
/// `progress` is called with the number of sequences done after each batch.
pub fn process_records(
    model: &LoadedModel,
    records: &[ProteinRecord],
    spec: &AnalysisSpec,
    device: &Device,
    progress: impl FnMut(usize),
) -> Result<PartialCounts, ModelError> {
    let counts = process_records_until(model, records, spec, device, progress, || false)?;
    Ok(counts.unwrap_or_default())
}

/// [`process_records`] that checks `stop` before every batch and gives up
/// (returning `None`) once it says so: a cancelled task stops within a batch.
pub fn process_records_until(
    model: &LoadedModel,
    records: &[ProteinRecord],
    spec: &AnalysisSpec,
    device: &Device,
    mut progress: impl FnMut(usize),
    stop: impl Fn() -> bool,
) -> Result<Option<PartialCounts>, ModelError> {
    let limit = model.token_limit(spec.max_len);
    let mut acc = Accumulator::new(
        spec.features.clone(),
        model.model.n_layers(),
        model.model.n_heads(),
        spec.threshold,
        spec.null_samples,
        spec.seed,
    );
    let encoded: Vec<_> = records
        .iter()
        .map(|r| model.tokenizer.encode(&r.sequence, limit))
        .collect();
    let mut visualized: std::collections::BTreeMap<usize, headscan_proto::pb::SequenceAttention> =
        std::collections::BTreeMap::new();
    let mut buckets: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, e) in encoded.iter().enumerate() {
        buckets.entry(bucket(e.ids.len(), limit)).or_default().push(i);
    }
    let mut timing = Timing::default();
    // Longest first: the allocator reaches its peak on the first batch and reuses it after.
    for (padded, members) in buckets.iter().rev() {
        for chunk in members.chunks(spec.batch_size.max(1)) {
            if stop() {
                return Ok(None);
            }
            let batch: Vec<_> = chunk.iter().map(|&i| encoded[i].clone()).collect();
            let features: Vec<_> = chunk
                .iter()
                .map(|&i| record_features(&records[i], &spec.features, encoded[i].residues))
                .collect();
            let input = model.tokenizer.batch_to(&batch, *padded, device)?;
            let seqs: Vec<SequenceInput> = chunk
                .iter()
                .zip(&batch)
                .zip(&features)
                .map(|((&i, e), f)| SequenceInput {
                    encoded: e,
                    features: f,
                    key: sequence_key(&records[i].id),
                })
                .collect();
            // Batch rows of the records to visualise, and their layers' attention.
            let shown: Vec<usize> = (0..chunk.len())
                .filter(|&k| spec.visualize.contains(&records[chunk[k]].id))
                .collect();
            let mut kept: Vec<Vec<candle_core::Tensor>> = vec![Vec::new(); shown.len()];
            let started = std::time::Instant::now();
            let mut analysis = std::time::Duration::ZERO;
            {
                let t0 = std::time::Instant::now();
                let mut counts = acc.begin_batch(&seqs, model.tokenizer.pads_left(), *padded, device)?;
                analysis += t0.elapsed();
                // Each layer's attention is counted as soon as it is computed and dropped.
                model.model.forward_each(&input, false, &mut |layer, a| {
                    let t0 = std::time::Instant::now();
                    counts.add_layer(layer, &a)?;
                    for (slot, &k) in kept.iter_mut().zip(&shown) {
                        slot.push(a.narrow(0, k, 1)?);
                    }
                    analysis += t0.elapsed();
                    Ok(())
                })?;
            }
            let t0 = std::time::Instant::now();
            for (layers, &k) in kept.iter().zip(&shown) {
                let i = chunk[k];
                let s = sparse_attention(
                    layers,
                    0,
                    &encoded[i],
                    model.tokenizer.pads_left(),
                    &records[i].id,
                    ATTENTION_FLOOR,
                )?;
                visualized.insert(i, s);
            }
            analysis += t0.elapsed();
            timing.analysis += analysis;
            timing.forward += started.elapsed().saturating_sub(analysis);
            progress(chunk.len());
        }
    }
    let mut counts = acc.into_counts();
    counts.visualized = visualized.into_values().collect();
    tracing::info!(
        sequences = counts.sequences,
        forward_s = timing.forward.as_secs_f64(),
        analysis_s = timing.analysis.as_secs_f64(),
        "shard computed"
    );
    Ok(Some(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_up_within_the_limit() {
        assert_eq!(bucket(1, 512), 16);
        assert_eq!(bucket(16, 512), 16);
        assert_eq!(bucket(17, 512), 32);
        assert_eq!(bucket(37, 40), 40);
        assert_eq!(bucket(40, 40), 40);
    }
}
