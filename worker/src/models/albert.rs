//! ALBERT encoder (ProtAlbert): factorised embeddings (`embedding_size`,
//! LayerNorm, `encoder.embedding_hidden_mapping_in` up to `hidden_size`) and
//! post-LN layers shared across depth in `num_hidden_groups` groups, matching
//! Hugging Face transformers' `AlbertModel` (eager attention) and returning
//! every layer application's attention probabilities.
//!
//! Weight names are those of `AlbertModel` (`embeddings.*`,
//! `encoder.albert_layer_groups.G.albert_layers.I.*`), under `albert.` when
//! the checkpoint is an `AlbertFor*` model.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::bert::{Embeddings, LayerNorm, attend, check_input, key_mask, linear};
use super::common::Activation;
use super::kernels;
use super::{AttentionModel, AttentionSink, ModelInput, ModelOutput};

fn default_one() -> usize {
    1
}

fn default_hidden_act() -> String {
    "gelu_new".to_string()
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

/// Mirror of an ALBERT `config.json` (Hugging Face `AlbertConfig`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    /// Vocabulary size (rows of the word embeddings).
    pub vocab_size: usize,
    /// Width of the factorised embeddings.
    pub embedding_size: usize,
    /// Hidden size of the encoder.
    pub hidden_size: usize,
    /// Number of layer applications (depth).
    pub num_hidden_layers: usize,
    /// Number of distinct parameter groups shared across depth.
    #[serde(default = "default_one")]
    pub num_hidden_groups: usize,
    /// Layers inside each group.
    #[serde(default = "default_one")]
    pub inner_group_num: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu_new` is the tanh approximation).
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

/// One ALBERT layer (`albert_layers.I`).
#[derive(Debug, Clone)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    attn_norm: LayerNorm,
    ffn: Linear,
    ffn_output: Linear,
    full_norm: LayerNorm,
}

impl Layer {
    fn load(vb: &VarBuilder, cfg: &Config) -> Result<Self> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let attn = vb.pp("attention");
        Ok(Self {
            query: linear(&attn.pp("query"), h, h)?,
            key: linear(&attn.pp("key"), h, h)?,
            value: linear(&attn.pp("value"), h, h)?,
            dense: linear(&attn.pp("dense"), h, h)?,
            attn_norm: LayerNorm::load(&attn.pp("LayerNorm"), h, eps)?,
            ffn: linear(&vb.pp("ffn"), h, i)?,
            ffn_output: linear(&vb.pp("ffn_output"), i, h)?,
            full_norm: LayerNorm::load(&vb.pp("full_layer_layer_norm"), h, eps)?,
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
        let attn_out = self
            .attn_norm
            .forward_owned(kernels::linear_residual(&self.dense, &context, x)?)?;
        let ffn = kernels::linear_activation(&self.ffn, &attn_out, act)?;
        let out =
            self.full_norm
                .forward_owned(kernels::linear_residual(&self.ffn_output, &ffn, &attn_out)?)?;
        Ok((out, probs))
    }
}

/// ALBERT encoder returning per-layer attention probabilities.
#[derive(Debug, Clone)]
pub struct AlbertModel {
    embeddings: Embeddings,
    mapping_in: Linear,
    groups: Vec<Vec<Layer>>,
    num_hidden_layers: usize,
    activation: Activation,
    heads: usize,
    vocab_size: usize,
    type_vocab_size: usize,
    max_positions: usize,
}

impl AlbertModel {
    /// Builds the model from weights (by `AlbertModel` names; the loader resolves `albert.`-prefixed ones).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            candle_core::bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden_size,
                cfg.num_attention_heads
            );
        }
        if cfg.num_hidden_groups == 0 || cfg.num_hidden_groups > cfg.num_hidden_layers.max(1) {
            candle_core::bail!(
                "num_hidden_groups {} must be between 1 and num_hidden_layers {}",
                cfg.num_hidden_groups,
                cfg.num_hidden_layers
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
            cfg.embedding_size,
            cfg.layer_norm_eps,
        )?;
        let encoder = vb.pp("encoder");
        let mapping_in = linear(
            &encoder.pp("embedding_hidden_mapping_in"),
            cfg.embedding_size,
            cfg.hidden_size,
        )?;
        let groups_vb = encoder.pp("albert_layer_groups");
        let groups = (0..cfg.num_hidden_groups)
            .map(|g| {
                let layers_vb = groups_vb.pp(g).pp("albert_layers");
                (0..cfg.inner_group_num)
                    .map(|i| Layer::load(&layers_vb.pp(i), cfg))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            mapping_in,
            groups,
            num_hidden_layers: cfg.num_hidden_layers,
            activation,
            heads: cfg.num_attention_heads,
            vocab_size: cfg.vocab_size,
            type_vocab_size: cfg.type_vocab_size,
            max_positions: cfg.max_position_embeddings,
        })
    }
}

impl AttentionModel for AlbertModel {
    fn forward_each(
        &self,
        input: &ModelInput,
        want_hidden: bool,
        sink: &mut AttentionSink,
    ) -> Result<ModelOutput> {
        check_input(input, self.vocab_size, self.type_vocab_size, self.max_positions)?;
        let mask = key_mask(&input.attention_mask, f32::MIN)?;
        let embedded = self
            .embeddings
            .forward(&input.input_ids, input.token_type_ids.as_ref())?;
        let mut x = self.mapping_in.forward(&embedded)?;
        let mut layer_hidden = Vec::new();
        let mut layer_index = 0;
        for l in 0..self.num_hidden_layers {
            // transformers: group_idx = int(l / (num_hidden_layers / num_hidden_groups)).
            let group = &self.groups[l * self.groups.len() / self.num_hidden_layers];
            for layer in group {
                let (next, probs) = layer.forward(&x, &mask, self.heads, self.activation)?;
                sink(layer_index, probs)?;
                layer_index += 1;
                x = next;
                if want_hidden {
                    layer_hidden.push(x.clone());
                }
            }
        }
        Ok(ModelOutput {
            attentions: Vec::new(),
            hidden: want_hidden.then_some(x),
            layer_hidden,
        })
    }

    /// Attention tensors returned: `num_hidden_layers × inner_group_num`.
    fn n_layers(&self) -> usize {
        self.num_hidden_layers * self.groups.first().map_or(0, Vec::len)
    }

    fn n_heads(&self) -> usize {
        self.heads
    }
}
