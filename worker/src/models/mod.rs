//! Model families and the one interface the rest of headscan uses:
//! [`AttentionModel::forward`] → per-layer attention probabilities.

pub mod albert;
pub mod bert;
pub mod common;
pub mod esm;
pub mod kernels;
pub mod t5;
pub mod xlnet;

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::tokenizer::{ProteinTokenizer, TokenizerError};
use crate::weights::{WeightFormat, WeightsError, open_weights};

/// A padded batch of token ids, as the model's tokenizer made it.
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// Token ids, `u32 [batch, T]`.
    pub input_ids: Tensor,
    /// 1 for real tokens (specials included), 0 for padding, `u32 [batch, T]`.
    pub attention_mask: Tensor,
    /// Segment ids where the family uses them (BERT, XLNet), `u32 [batch, T]`.
    pub token_type_ids: Option<Tensor>,
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// One `f32 [batch, heads, T, T]` tensor per layer, rows = queries, on the model's device.
    pub attentions: Vec<Tensor>,
    /// Final hidden states `f32 [batch, T, hidden]` when asked for.
    pub hidden: Option<Tensor>,
    /// When hidden states are asked for: each layer's output `f32 [batch, T,
    /// hidden]`, one per attention tensor (transformers' `hidden_states[l + 1]`;
    /// the last equals [`ModelOutput::hidden`], final layer norm included);
    /// empty otherwise.
    pub layer_hidden: Vec<Tensor>,
}

/// Where [`AttentionModel::forward_each`] hands each layer's attention.
pub type AttentionSink<'a> = dyn FnMut(usize, Tensor) -> candle_core::Result<()> + 'a;

/// A protein language model whose attention headscan analyses.
pub trait AttentionModel: Send + Sync {
    /// Runs the encoder, handing each layer's attention probabilities
    /// `[batch, heads, T, T]` to `sink` (layer index, tensor) as soon as the
    /// layer is computed and keeping none of them (the returned
    /// [`ModelOutput::attentions`] is empty), so memory holds one layer's
    /// attention at a time; with `want_hidden` also the final and per-layer
    /// hidden states.
    fn forward_each(
        &self,
        input: &ModelInput,
        want_hidden: bool,
        sink: &mut AttentionSink,
    ) -> candle_core::Result<ModelOutput>;

    /// Runs the encoder; attention probabilities for every layer and head, and
    /// with `want_hidden` the final and per-layer hidden states.
    fn forward(&self, input: &ModelInput, want_hidden: bool) -> candle_core::Result<ModelOutput> {
        let mut attentions = Vec::with_capacity(self.n_layers());
        let mut out = self.forward_each(input, want_hidden, &mut |_, a| {
            attentions.push(a);
            Ok(())
        })?;
        out.attentions = attentions;
        Ok(out)
    }
    /// Number of layers (attention tensors returned).
    fn n_layers(&self) -> usize;
    /// Heads per layer.
    fn n_heads(&self) -> usize;
}

/// The model families headscan supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT (ProtBert, ProtBert-BFD).
    Bert,
    /// TAPE's ProteinBert (TAPE config keys and vocabulary).
    TapeBert,
    /// ALBERT (ProtAlbert).
    Albert,
    /// XLNet (ProtXLNet).
    XLNet,
    /// ESM-2 and ESM-1b.
    Esm,
    /// T5 encoder (ProtT5).
    T5,
}

impl Family {
    /// transformers' `base_model_prefix`: task-head checkpoints (e.g.
    /// `BertForMaskedLM`) store the base model's tensors under it.
    pub fn base_model_prefix(self) -> &'static str {
        match self {
            Family::Bert | Family::TapeBert => "bert",
            Family::Albert => "albert",
            Family::XLNet => "transformer",
            Family::Esm => "esm",
            Family::T5 => "",
        }
    }
}

/// `model_type` values and the families they select.
pub const SUPPORTED_MODEL_TYPES: [(&str, Family); 5] = [
    ("bert", Family::Bert),
    ("albert", Family::Albert),
    ("xlnet", Family::XLNet),
    ("esm", Family::Esm),
    ("t5", Family::T5),
];

/// Errors loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `config.json` missing or unreadable.
    #[error("{path}: {reason}")]
    Config {
        /// File.
        path: String,
        /// Problem.
        reason: String,
    },
    /// The family cannot be determined.
    #[error(
        "unsupported model_type `{0}`: supported families are bert (ProtBert, ProtBert-BFD), TAPE ProteinBert, albert (ProtAlbert), xlnet (ProtXLNet), esm (ESM-2, ESM-1b), t5 (ProtT5 encoder)"
    )]
    UnknownFamily(String),
    /// Weights could not be read.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// Tokenizer files could not be read.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The family has no implementation at the asked precision.
    #[error(
        "precision {precision} is not implemented for {family:?} models (bf16 runs BERT, TAPE, ALBERT and ESM; use f32)"
    )]
    Precision {
        /// The family.
        family: Family,
        /// The precision asked for.
        precision: Precision,
    },
    /// Building or running the network failed (a missing or mis-shaped tensor names itself here).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// A model ready to run, with its tokenizer.
pub struct LoadedModel {
    /// Its family.
    pub family: Family,
    /// The network.
    pub model: Box<dyn AttentionModel>,
    /// Its tokenizer.
    pub tokenizer: ProteinTokenizer,
    /// Largest number of tokens the model accepts (position embeddings), if bounded.
    pub max_positions: Option<usize>,
}

impl LoadedModel {
    /// Tokens a sequence may use, specials included: `max_len`, never more
    /// than the model's position limit.
    pub fn token_limit(&self, max_len: usize) -> usize {
        self.max_positions.map_or(max_len, |m| m.min(max_len))
    }
}

/// Reads `config.json` of a model directory.
pub fn read_config(dir: &Path) -> Result<serde_json::Value, ModelError> {
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|e| ModelError::Config {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| ModelError::Config {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Chooses the family from `config.json`: `model_type`, else TAPE's key set.
pub fn detect_family(config: &serde_json::Value) -> Result<Family, ModelError> {
    if let Some(t) = config.get("model_type").and_then(|v| v.as_str()) {
        return SUPPORTED_MODEL_TYPES
            .iter()
            .find(|(name, _)| *name == t)
            .map(|(_, f)| *f)
            .ok_or_else(|| ModelError::UnknownFamily(t.to_string()));
    }
    // TAPE's ProteinBertConfig has no model_type but BERT's keys.
    if config.get("num_attention_heads").is_some() && config.get("hidden_size").is_some() {
        return Ok(Family::TapeBert);
    }
    Err(ModelError::UnknownFamily("<none>".into()))
}

pub use headscan_proto::precision::Precision;

/// The candle dtype a model computes in at `precision`.
pub fn precision_dtype(precision: Precision) -> DType {
    match precision {
        Precision::F32 => DType::F32,
        Precision::Bf16 => DType::BF16,
    }
}

/// Loads a model from a local Hugging Face-layout directory, choosing the
/// weight file automatically (safetensors first).
pub fn load_model(dir: &Path, device: &Device) -> Result<LoadedModel, ModelError> {
    load_model_with(dir, device, None)
}

/// Loads a model, optionally forcing the weight format.
pub fn load_model_with(
    dir: &Path,
    device: &Device,
    format: Option<WeightFormat>,
) -> Result<LoadedModel, ModelError> {
    load_model_in(dir, device, format, Precision::F32)
}

/// Loads a model computing in `precision` (weights converted as loaded).
pub fn load_model_in(
    dir: &Path,
    device: &Device,
    format: Option<WeightFormat>,
    precision: Precision,
) -> Result<LoadedModel, ModelError> {
    let config = read_config(dir)?;
    let family = detect_family(&config)?;
    if precision != Precision::F32 && matches!(family, Family::XLNet | Family::T5) {
        return Err(ModelError::Precision { family, precision });
    }
    let vb =
        open_weights(dir, device, format, family.base_model_prefix())?.set_dtype(precision_dtype(precision));
    let tokenizer = ProteinTokenizer::load(dir, family)?;
    let parse = |e: serde_json::Error| ModelError::Config {
        path: dir.join("config.json").display().to_string(),
        reason: e.to_string(),
    };
    let (model, max_positions): (Box<dyn AttentionModel>, Option<usize>) = match family {
        Family::Bert | Family::TapeBert => {
            let cfg: bert::Config = serde_json::from_value(config).map_err(parse)?;
            let max = cfg.max_position_embeddings;
            (Box::new(bert::BertModel::load(vb, &cfg, family)?), Some(max))
        }
        Family::Albert => {
            let cfg: albert::Config = serde_json::from_value(config).map_err(parse)?;
            let max = cfg.max_position_embeddings;
            (Box::new(albert::AlbertModel::load(vb, &cfg)?), Some(max))
        }
        Family::XLNet => {
            let cfg: xlnet::Config = serde_json::from_value(config).map_err(parse)?;
            (Box::new(xlnet::XLNetModel::load(vb, &cfg)?), None)
        }
        Family::Esm => {
            let cfg: esm::Config = serde_json::from_value(config).map_err(parse)?;
            let max = cfg.max_positions();
            (Box::new(esm::EsmModel::load(vb, &cfg)?), max)
        }
        Family::T5 => {
            let cfg: t5::Config = serde_json::from_value(config).map_err(parse)?;
            (Box::new(t5::T5EncoderModel::load(vb, &cfg)?), None)
        }
    };
    Ok(LoadedModel {
        family,
        model,
        tokenizer,
        max_positions,
    })
}
