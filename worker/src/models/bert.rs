//! BERT encoder (ProtBert, ProtBert-BFD, TAPE's ProteinBert): word + absolute
//! position + token-type embeddings, LayerNorm, then post-LN encoder layers,
//! matching Hugging Face transformers' `BertModel` (eager attention) and
//! returning every layer's attention probabilities.
//!
//! Weight names are those of `BertModel` (`embeddings.*`, `encoder.layer.N.*`),
//! under `bert.` when the checkpoint is a `BertFor*` / TAPE `ProteinBertFor*`
//! model. The loading helpers here (`weight`, `linear`, `LayerNorm`, …) are
//! shared with the ALBERT family.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::common::{Activation, merge_heads, split_heads};
use super::kernels;
use super::{AttentionModel, AttentionSink, Family, ModelInput, ModelOutput};

fn default_hidden_act() -> String {
    "gelu".to_string()
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

fn default_position_embedding_type() -> String {
    "absolute".to_string()
}

/// Mirror of a BERT `config.json` (Hugging Face `BertConfig` or TAPE's `ProteinBertConfig`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    /// Vocabulary size (rows of the word embeddings).
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu` is the erf form).
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Rows of the absolute position embeddings: the longest input accepted.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embeddings.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Only `absolute` is supported.
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

pub(crate) use super::common::{LayerNorm, linear, weight};

/// `nn.Embedding(rows, dim)`.
pub(crate) fn embedding(vb: &VarBuilder, rows: usize, dim: usize) -> Result<Embedding> {
    Ok(Embedding::new(weight(vb, (rows, dim), "weight")?, dim))
}

/// Additive key mask `[batch, 1, 1, T]`: 0 for real tokens, `value` for padding.
pub(crate) fn key_mask(attention_mask: &Tensor, value: f32) -> Result<Tensor> {
    let (b, t) = attention_mask.dims2()?;
    attention_mask
        .to_dtype(DType::F32)?
        .affine(-1.0, 1.0)?
        .affine(value as f64, 0.0)?
        .reshape((b, 1, 1, t))
}

/// Checks a batch against the model's limits; returns `(batch, T)`.
pub(crate) fn check_input(
    input: &ModelInput,
    vocab_size: usize,
    type_vocab_size: usize,
    max_positions: usize,
) -> Result<(usize, usize)> {
    let (b, t) = input.input_ids.dims2()?;
    if b == 0 || t == 0 {
        candle_core::bail!("empty batch: input_ids has shape [{b}, {t}]");
    }
    let mask_dims = input.attention_mask.dims();
    if mask_dims != [b, t] {
        candle_core::bail!("attention_mask has shape {mask_dims:?}, input_ids [{b}, {t}]");
    }
    if t > max_positions {
        candle_core::bail!("{t} tokens exceed the model's max_position_embeddings ({max_positions})");
    }
    let max_id = input
        .input_ids
        .to_dtype(DType::U32)?
        .flatten_all()?
        .max(0)?
        .to_scalar::<u32>()?;
    if max_id as usize >= vocab_size {
        candle_core::bail!("token id {max_id} is outside the vocabulary ({vocab_size} entries)");
    }
    if let Some(tt) = &input.token_type_ids {
        if tt.dims() != [b, t] {
            candle_core::bail!("token_type_ids has shape {:?}, input_ids [{b}, {t}]", tt.dims());
        }
        let max_tt = tt
            .to_dtype(DType::U32)?
            .flatten_all()?
            .max(0)?
            .to_scalar::<u32>()?;
        if max_tt as usize >= type_vocab_size {
            candle_core::bail!("token type id {max_tt} is outside type_vocab_size ({type_vocab_size})");
        }
    }
    Ok((b, t))
}

/// Word + token-type + absolute position embeddings, then LayerNorm
/// (shared by BERT and ALBERT; `dim` is the embedding width).
#[derive(Debug, Clone)]
pub(crate) struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    layer_norm: LayerNorm,
}

impl Embeddings {
    /// Loads `word_embeddings`, `position_embeddings`, `token_type_embeddings`, `LayerNorm`.
    pub(crate) fn load(
        vb: &VarBuilder,
        vocab_size: usize,
        max_positions: usize,
        type_vocab_size: usize,
        dim: usize,
        eps: f64,
    ) -> Result<Self> {
        Ok(Self {
            word: embedding(&vb.pp("word_embeddings"), vocab_size, dim)?,
            position: embedding(&vb.pp("position_embeddings"), max_positions, dim)?,
            token_type: embedding(&vb.pp("token_type_embeddings"), type_vocab_size, dim)?,
            layer_norm: LayerNorm::load(&vb.pp("LayerNorm"), dim, eps)?,
        })
    }

    /// `[batch, T]` ids → `[batch, T, dim]`; token types default to 0.
    pub(crate) fn forward(&self, input_ids: &Tensor, token_type_ids: Option<&Tensor>) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let words = self.word.forward(input_ids)?;
        let with_types = match token_type_ids {
            Some(tt) => (words + self.token_type.forward(tt)?)?,
            None => {
                let zeros = Tensor::zeros((b, t), DType::U32, input_ids.device())?;
                (words + self.token_type.forward(&zeros)?)?
            }
        };
        let positions = Tensor::arange(0u32, t as u32, input_ids.device())?;
        let pos = self.position.forward(&positions)?;
        self.layer_norm.forward_owned(with_types.broadcast_add(&pos)?)
    }
}

/// Scaled dot-product attention of `[batch, T, hidden]` projections:
/// returns (probabilities `[batch, heads, T, T]`, context `[batch, T, hidden]`).
pub(crate) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    heads: usize,
) -> Result<(Tensor, Tensor)> {
    let (q, k, v) = (
        split_heads(q, heads)?,
        split_heads(k, heads)?,
        split_heads(v, heads)?,
    );
    let head_dim = q.dim(D::Minus1)?;
    let scores = q.matmul(&k.t()?)?;
    let probs = kernels::attention_probs(scores, mask, Some(1.0 / (head_dim as f64).sqrt()))?;
    let context = merge_heads(&probs.to_dtype(v.dtype())?.matmul(&v)?)?;
    Ok((probs, context))
}

/// One post-LN BERT encoder layer.
#[derive(Debug, Clone)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_dense: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(vb: &VarBuilder, cfg: &Config) -> Result<Self> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let attn = vb.pp("attention");
        let sa = attn.pp("self");
        Ok(Self {
            query: linear(&sa.pp("query"), h, h)?,
            key: linear(&sa.pp("key"), h, h)?,
            value: linear(&sa.pp("value"), h, h)?,
            attn_dense: linear(&attn.pp("output").pp("dense"), h, h)?,
            attn_norm: LayerNorm::load(&attn.pp("output").pp("LayerNorm"), h, eps)?,
            intermediate: linear(&vb.pp("intermediate").pp("dense"), h, i)?,
            output: linear(&vb.pp("output").pp("dense"), i, h)?,
            output_norm: LayerNorm::load(&vb.pp("output").pp("LayerNorm"), h, eps)?,
        })
    }

    /// Returns (new hidden states, attention probabilities).
    fn forward(&self, x: &Tensor, mask: &Tensor, heads: usize, act: Activation) -> Result<(Tensor, Tensor)> {
        let (q, k, v) = (
            kernels::linear(&self.query, x)?,
            kernels::linear(&self.key, x)?,
            kernels::linear(&self.value, x)?,
        );
        let (probs, context) = attend(&q, &k, &v, mask, heads)?;
        let attn_out =
            self.attn_norm
                .forward_owned(kernels::linear_residual(&self.attn_dense, &context, x)?)?;
        let inter = kernels::linear_activation(&self.intermediate, &attn_out, act)?;
        let out =
            self.output_norm
                .forward_owned(kernels::linear_residual(&self.output, &inter, &attn_out)?)?;
        Ok((out, probs))
    }
}

/// BERT encoder returning per-layer attention probabilities.
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    activation: Activation,
    heads: usize,
    vocab_size: usize,
    type_vocab_size: usize,
    max_positions: usize,
    mask_value: f32,
}

impl BertModel {
    /// Builds the model from weights (by `BertModel` names; the loader resolves `bert.`-prefixed ones);
    /// `family` selects the padding mask value (TAPE: -10000, Hugging Face: f32::MIN).
    pub fn load(vb: VarBuilder, cfg: &Config, family: Family) -> Result<Self> {
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            candle_core::bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden_size,
                cfg.num_attention_heads
            );
        }
        if cfg.position_embedding_type != "absolute" {
            candle_core::bail!(
                "position_embedding_type `{}` is not supported (only `absolute`)",
                cfg.position_embedding_type
            );
        }
        let activation = Activation::from_name(&cfg.hidden_act)?;
        let embeddings = Embeddings::load(
            &vb.pp("embeddings"),
            cfg.vocab_size,
            cfg.max_position_embeddings,
            cfg.type_vocab_size,
            cfg.hidden_size,
            cfg.layer_norm_eps,
        )?;
        let layers_vb = vb.pp("encoder").pp("layer");
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| Layer::load(&layers_vb.pp(l), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            layers,
            activation,
            heads: cfg.num_attention_heads,
            vocab_size: cfg.vocab_size,
            type_vocab_size: cfg.type_vocab_size,
            max_positions: cfg.max_position_embeddings,
            mask_value: if family == Family::TapeBert {
                -10000.0
            } else {
                f32::MIN
            },
        })
    }
}

impl AttentionModel for BertModel {
    fn forward_each(
        &self,
        input: &ModelInput,
        want_hidden: bool,
        sink: &mut AttentionSink,
    ) -> Result<ModelOutput> {
        check_input(input, self.vocab_size, self.type_vocab_size, self.max_positions)?;
        let mask = key_mask(&input.attention_mask, self.mask_value)?;
        let mut x = self
            .embeddings
            .forward(&input.input_ids, input.token_type_ids.as_ref())?;
        let mut layer_hidden = Vec::new();
        for (layer_index, layer) in self.layers.iter().enumerate() {
            let (next, probs) = layer.forward(&x, &mask, self.heads, self.activation)?;
            sink(layer_index, probs)?;
            x = next;
            if want_hidden {
                layer_hidden.push(x.clone());
            }
        }
        Ok(ModelOutput {
            attentions: Vec::new(),
            hidden: want_hidden.then_some(x),
            layer_hidden,
        })
    }

    fn n_layers(&self) -> usize {
        self.layers.len()
    }

    fn n_heads(&self) -> usize {
        self.heads
    }
}
