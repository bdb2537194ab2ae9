//! ESM-2 and ESM-1b encoders, matching Hugging Face transformers' `EsmModel`
//! (eager attention): token dropout, rotary or learned absolute positions,
//! pre-LN layers and a final `emb_layer_norm_after`.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::common::{Activation, LayerNorm, additive_key_mask, linear, merge_heads, split_heads};
use super::kernels;
use super::{AttentionModel, AttentionSink, ModelInput, ModelOutput};

/// Fraction of tokens masked in every ESM training run (15 % selected × 80 % `<mask>`).
const MASK_RATIO_TRAIN: f64 = 0.15 * 0.8;

/// ESM's padding index when config.json leaves `pad_token_id` out.
const DEFAULT_PAD_ID: u32 = 1;

fn default_hidden_size() -> usize {
    768
}
fn default_num_hidden_layers() -> usize {
    12
}
fn default_num_attention_heads() -> usize {
    12
}
fn default_intermediate_size() -> usize {
    3072
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_max_position_embeddings() -> usize {
    1026
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}
fn default_true() -> bool {
    true
}
fn default_layer_norm_eps() -> f64 {
    1e-5
}
/// transformers writes `null` for an unset `emb_layer_norm_before`.
fn null_as_false<'de, De: serde::Deserializer<'de>>(d: De) -> std::result::Result<bool, De::Error> {
    Ok(<Option<bool> as serde::Deserialize>::deserialize(d)?.unwrap_or(false))
}

/// Mirror of an ESM config.json (`model_type` "esm").
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    /// Vocabulary size (rows of the word embeddings).
    pub vocab_size: usize,
    /// Width of the hidden states.
    #[serde(default = "default_hidden_size")]
    pub hidden_size: usize,
    /// Number of encoder layers.
    #[serde(default = "default_num_hidden_layers")]
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    #[serde(default = "default_num_attention_heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    #[serde(default = "default_intermediate_size")]
    pub intermediate_size: usize,
    /// Feed-forward activation; transformers' ESM always uses exact (erf) GELU, and so does this.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Rows of the learned position table (absolute) or the trained length (rotary).
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// `"rotary"` (ESM-2) or `"absolute"` (ESM-1b).
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
    /// Layer norm on the embeddings before the encoder (ESM-1b).
    #[serde(default, deserialize_with = "null_as_false")]
    pub emb_layer_norm_before: bool,
    /// Zero `<mask>` embeddings and rescale the rest as ESM's training did.
    #[serde(default = "default_true")]
    pub token_dropout: bool,
    /// Id of `<mask>`.
    #[serde(default)]
    pub mask_token_id: Option<u32>,
    /// Id of `<pad>` (ESM's padding index).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Layer-norm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
}

impl Config {
    /// Largest token count the model accepts (specials included), if bounded.
    ///
    /// Absolute positions start at `pad_token_id + 1`, so the learned table
    /// holds `max_position_embeddings − pad_token_id − 1` tokens; rotary models
    /// were trained up to `max_position_embeddings` tokens.
    pub fn max_positions(&self) -> Option<usize> {
        if self.is_rotary() {
            (self.max_position_embeddings > 0).then_some(self.max_position_embeddings)
        } else {
            let offset = self.pad_id() as usize + 1;
            self.max_position_embeddings
                .checked_sub(offset)
                .filter(|n| *n > 0)
        }
    }

    fn is_rotary(&self) -> bool {
        self.position_embedding_type == "rotary"
    }

    fn pad_id(&self) -> u32 {
        self.pad_token_id.unwrap_or(DEFAULT_PAD_ID)
    }
}

use super::common::weight as get;

/// One pre-LN encoder layer.
struct EsmLayer {
    attn_ln: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    ffn_ln: LayerNorm,
    intermediate: Linear,
    output: Linear,
    /// Rotary inverse frequencies `[head_dim / 2]` (ESM-2).
    inv_freq: Option<Tensor>,
}

/// The ESM encoder (`EsmModel` / `EsmForMaskedLM.esm`).
pub struct EsmModel {
    word_embeddings: Embedding,
    position_embeddings: Option<Embedding>,
    emb_ln_before: Option<LayerNorm>,
    layers: Vec<EsmLayer>,
    emb_ln_after: LayerNorm,
    token_dropout: bool,
    mask_token_id: Option<u32>,
    pad_id: u32,
    vocab_size: usize,
    max_position_embeddings: usize,
    n_heads: usize,
    head_dim: usize,
    device: Device,
    /// The dtype it computes in (its weights').
    dtype: DType,
}

impl EsmModel {
    /// Builds the model from weights (by `EsmModel` names; the loader resolves `esm.`-prefixed ones).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (h, heads) = (cfg.hidden_size, cfg.num_attention_heads);
        if heads == 0 || h == 0 || h % heads != 0 {
            candle_core::bail!(
                "esm: hidden_size {h} is not a positive multiple of num_attention_heads {heads}"
            );
        }
        let head_dim = h / heads;
        let rotary = match cfg.position_embedding_type.as_str() {
            "rotary" => true,
            "absolute" => false,
            other => candle_core::bail!(
                "esm: unsupported position_embedding_type `{other}` (expected \"rotary\" or \"absolute\")"
            ),
        };
        if rotary && head_dim % 2 != 0 {
            candle_core::bail!("esm: rotary embeddings need an even head size, got {head_dim}");
        }
        // Validate the name; transformers' ESM uses exact GELU whatever it says.
        Activation::from_name(&cfg.hidden_act)?;
        let eps = cfg.layer_norm_eps;
        let emb = vb.pp("embeddings");
        let word_embeddings = Embedding::new(get(&emb, (cfg.vocab_size, h), "word_embeddings.weight")?, h);
        let position_embeddings = if rotary {
            None
        } else {
            let w = get(
                &emb,
                (cfg.max_position_embeddings, h),
                "position_embeddings.weight",
            )?;
            Some(Embedding::new(w, h))
        };
        let emb_ln_before = if cfg.emb_layer_norm_before {
            Some(LayerNorm::load(&emb.pp("layer_norm"), h, eps)?)
        } else {
            None
        };
        let enc = vb.pp("encoder");
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = enc.pp("layer").pp(i);
            let att = l.pp("attention");
            let sa = att.pp("self");
            let inv_freq = if !rotary {
                None
            } else if sa.contains_tensor("rotary_embeddings.inv_freq") {
                Some(get(&sa, head_dim / 2, "rotary_embeddings.inv_freq")?)
            } else {
                // Older exports drop the buffer; rebuild it as RotaryEmbedding does.
                let v: Vec<f32> = (0..head_dim / 2)
                    .map(|k| 1.0 / 10000f32.powf((2 * k) as f32 / head_dim as f32))
                    .collect();
                Some(Tensor::from_vec(v, head_dim / 2, vb.device())?)
            };
            layers.push(EsmLayer {
                attn_ln: LayerNorm::load(&att.pp("LayerNorm"), h, eps)?,
                query: linear(&sa.pp("query"), h, h)?,
                key: linear(&sa.pp("key"), h, h)?,
                value: linear(&sa.pp("value"), h, h)?,
                attn_out: linear(&att.pp("output").pp("dense"), h, h)?,
                ffn_ln: LayerNorm::load(&l.pp("LayerNorm"), h, eps)?,
                intermediate: linear(&l.pp("intermediate").pp("dense"), h, cfg.intermediate_size)?,
                output: linear(&l.pp("output").pp("dense"), cfg.intermediate_size, h)?,
                inv_freq,
            });
        }
        let emb_ln_after = LayerNorm::load(&enc.pp("emb_layer_norm_after"), h, eps)?;
        Ok(Self {
            word_embeddings,
            position_embeddings,
            emb_ln_before,
            layers,
            emb_ln_after,
            token_dropout: cfg.token_dropout,
            mask_token_id: cfg.mask_token_id,
            pad_id: cfg.pad_id(),
            vocab_size: cfg.vocab_size,
            max_position_embeddings: cfg.max_position_embeddings,
            n_heads: heads,
            head_dim,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// `EsmEmbeddings.forward`: word embeddings, token dropout, positions,
    /// optional layer norm, padding rows zeroed.
    fn embed(
        &self,
        ids: &[Vec<u32>],
        mask: &[Vec<u32>],
        input_ids: &Tensor,
        mask_f: &Tensor,
    ) -> Result<Tensor> {
        let (b, t) = (ids.len(), mask_f.dim(1)?);
        let mut x = self.word_embeddings.forward(input_ids)?;
        if self.token_dropout {
            let is_mask = |id: u32| self.mask_token_id == Some(id);
            let keep: Vec<f32> = ids
                .iter()
                .flatten()
                .map(|&id| if is_mask(id) { 0.0 } else { 1.0 })
                .collect();
            let keep = Tensor::from_vec(keep, (b, t, 1), &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&keep)?;
            // 1 − (#<mask> / real length), in f32 as torch computes it.
            let denom: Vec<f32> = ids
                .iter()
                .zip(mask)
                .map(|(row, m)| {
                    let n_mask = row.iter().filter(|&&id| is_mask(id)).count() as f32;
                    let len = m.iter().map(|&v| v as f32).sum::<f32>().max(1.0);
                    1.0 - n_mask / len
                })
                .collect();
            let denom = Tensor::from_vec(denom, (b, 1, 1), &self.device)?.to_dtype(self.dtype)?;
            x = x.affine(1.0 - MASK_RATIO_TRAIN, 0.0)?.broadcast_div(&denom)?;
        }
        if let Some(pos) = &self.position_embeddings {
            // create_position_ids_from_input_ids: cumsum of non-pad, offset by padding_idx.
            let mut positions = Vec::with_capacity(b * t);
            for row in ids {
                let mut n = 0u32;
                for &id in row {
                    let real = id != self.pad_id;
                    n += real as u32;
                    positions.push(if real { n + self.pad_id } else { self.pad_id });
                }
            }
            let max = positions.iter().copied().max().unwrap_or(0) as usize;
            if max >= self.max_position_embeddings {
                candle_core::bail!(
                    "esm: {} tokens exceed the {} learned positions (at most {} tokens)",
                    max - self.pad_id as usize,
                    self.max_position_embeddings,
                    self.max_position_embeddings
                        .saturating_sub(self.pad_id as usize + 1)
                );
            }
            let positions = Tensor::from_vec(positions, (b, t), &self.device)?;
            x = (x + pos.forward(&positions)?)?;
        }
        if let Some(ln) = &self.emb_ln_before {
            x = ln.forward(&x)?;
        }
        x.broadcast_mul(&mask_f.unsqueeze(2)?)
    }
}

impl EsmLayer {
    /// Runs the layer; the attention probabilities, and the new hidden state
    /// unless `attention_only`.
    fn forward(
        &self,
        x: &Tensor,
        key_mask: &Tensor,
        n_heads: usize,
        head_dim: usize,
        attention_only: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let xn = self.attn_ln.forward(x)?;
        let q = split_heads(&kernels::linear(&self.query, &xn)?, n_heads)?;
        let k = split_heads(&kernels::linear(&self.key, &xn)?, n_heads)?;
        let q = super::kernels::scale(&q, (head_dim as f64).powf(-0.5))?;
        let (q, k) = match &self.inv_freq {
            Some(inv_freq) => {
                let t = x.dim(1)?;
                let pos = Tensor::arange(0u32, t as u32, x.device())?.to_dtype(DType::F32)?;
                let inv_freq = inv_freq.to_dtype(DType::F32)?;
                let freqs = pos.unsqueeze(1)?.broadcast_mul(&inv_freq.unsqueeze(0)?)?;
                let (cos, sin) = (
                    freqs.cos()?.to_dtype(q.dtype())?,
                    freqs.sin()?.to_dtype(q.dtype())?,
                );
                (
                    candle_nn::rotary_emb::rope(&q.contiguous()?, &cos, &sin)?,
                    candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
                )
            }
            None => (q, k),
        };
        let scores = q.matmul(&k.transpose(2, 3)?)?;
        let probs = kernels::attention_probs(scores, key_mask, None)?;
        if attention_only {
            return Ok((probs, None));
        }
        let v = split_heads(&kernels::linear(&self.value, &xn)?, n_heads)?;
        let ctx = merge_heads(&probs.to_dtype(v.dtype())?.matmul(&v)?)?;
        let x = kernels::linear_residual(&self.attn_out, &ctx, x)?;
        let h = kernels::linear_activation(&self.intermediate, &self.ffn_ln.forward(&x)?, Activation::Gelu)?;
        let x = kernels::linear_residual(&self.output, &h, &x)?;
        Ok((probs, Some(x)))
    }
}

impl AttentionModel for EsmModel {
    fn forward_each(
        &self,
        input: &ModelInput,
        want_hidden: bool,
        sink: &mut AttentionSink,
    ) -> Result<ModelOutput> {
        let input_ids = input.input_ids.to_dtype(DType::U32)?.to_device(&self.device)?;
        let attention_mask = input
            .attention_mask
            .to_dtype(DType::U32)?
            .to_device(&self.device)?;
        let (b, t) = input_ids.dims2()?;
        if attention_mask.dims() != [b, t] {
            candle_core::bail!(
                "esm: attention_mask shape {:?} differs from input_ids shape {:?}",
                attention_mask.dims(),
                input_ids.dims()
            );
        }
        let ids: Vec<Vec<u32>> = input_ids.to_vec2()?;
        let mask: Vec<Vec<u32>> = attention_mask.to_vec2()?;
        if let Some(&bad) = ids.iter().flatten().find(|&&id| id as usize >= self.vocab_size) {
            candle_core::bail!(
                "esm: token id {bad} is outside the vocabulary of {}",
                self.vocab_size
            );
        }
        let mask_f = attention_mask.to_dtype(self.dtype)?;
        let mut x = self.embed(&ids, &mask, &input_ids, &mask_f)?;
        let key_mask = additive_key_mask(&attention_mask)?;
        let mut layer_hidden = Vec::new();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let attention_only = i == last && !want_hidden;
            let (probs, next) = layer.forward(&x, &key_mask, self.n_heads, self.head_dim, attention_only)?;
            sink(i, probs)?;
            if let Some(next) = next {
                x = next;
                if want_hidden && i < last {
                    layer_hidden.push(x.clone());
                }
            }
        }
        let hidden = if want_hidden {
            let h = self.emb_ln_after.forward(&x)?;
            layer_hidden.push(h.clone());
            Some(h)
        } else {
            None
        };
        Ok(ModelOutput {
            attentions: Vec::new(),
            hidden,
            layer_hidden,
        })
    }

    fn n_layers(&self) -> usize {
        self.layers.len()
    }

    fn n_heads(&self) -> usize {
        self.n_heads
    }
}
