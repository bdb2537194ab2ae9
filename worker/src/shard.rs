//! The unit of work of a worker: records in, `PartialCounts` out. The same
//! function serves `headscan run` (embedded) and, later, remote workers.

use candle_core::Device;
use headscan_proto::pb::PartialCounts;
use headscan_proto::record::ProteinRecord;

use crate::analysis::accumulate::{Accumulator, SequenceInput};
use crate::analysis::features::{FeatureSpec, record_features};
use crate::analysis::null::sequence_key;
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
}

/// Runs the model over `records` in batches (record order) and returns their counts.
/// `progress` is called with the number of sequences done after each batch.
pub fn process_records(
    model: &LoadedModel,
    records: &[ProteinRecord],
    spec: &AnalysisSpec,
    device: &Device,
    mut progress: impl FnMut(usize),
) -> Result<PartialCounts, ModelError> {
    let limit = model.max_positions.map_or(spec.max_len, |m| m.min(spec.max_len));
    let mut acc = Accumulator::new(
        spec.features.clone(),
        model.model.n_layers(),
        model.model.n_heads(),
        spec.threshold,
        spec.null_samples,
        spec.seed,
    );
    for chunk in records.chunks(spec.batch_size.max(1)) {
        let encoded: Vec<_> = chunk
            .iter()
            .map(|r| model.tokenizer.encode(&r.sequence, limit))
            .collect();
        let features: Vec<_> = chunk
            .iter()
            .zip(&encoded)
            .map(|(r, e)| record_features(r, &spec.features, e.residues))
            .collect();
        let input = model.tokenizer.batch(&encoded, device)?;
        let out = model.model.forward(&input, false)?;
        let seqs: Vec<SequenceInput> = encoded
            .iter()
            .zip(&features)
            .zip(chunk)
            .map(|((e, f), r)| SequenceInput {
                encoded: e,
                features: f,
                key: sequence_key(&r.id),
            })
            .collect();
        acc.add_batch(&out.attentions, &seqs, model.tokenizer.pads_left())?;
        progress(chunk.len());
    }
    Ok(acc.into_counts())
}
