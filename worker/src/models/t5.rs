//! T5 encoder (ProtT5): pre-norm blocks with RMS LayerNorm, unscaled attention
//! scores and a bucketed relative position bias from block 0 shared by every
//! layer, matching Hugging Face `T5EncoderModel`.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::common::{Activation, additive_key_mask, merge_heads, softmax_last_dim, split_heads};
use super::{AttentionModel, AttentionSink, ModelInput, ModelOutput};

fn default_vocab_size() -> usize {
    32128
}
fn default_d_model() -> usize {
    512
}
fn default_d_kv() -> usize {
    64
}
fn default_d_ff() -> usize {
    2048
}
fn default_num_layers() -> usize {
    6
}
fn default_num_heads() -> usize {
    8
}
fn default_num_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_layer_norm_epsilon() -> f64 {
    1e-6
}
fn default_feed_forward_proj() -> String {
    "relu".into()
}

/// Mirror of a T5 `config.json` (defaults as in transformers' `T5Config`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    /// Vocabulary size (rows of the embedding).
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// Hidden size.
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    /// Size of one attention head.
    #[serde(default = "default_d_kv")]
    pub d_kv: usize,
    /// Inner size of the feed-forward block.
    #[serde(default = "default_d_ff")]
    pub d_ff: usize,
    /// Number of encoder blocks.
    #[serde(default = "default_num_layers")]
    pub num_layers: usize,
    /// Attention heads per block.
    #[serde(default = "default_num_heads")]
    pub num_heads: usize,
    /// Number of relative position buckets.
    #[serde(default = "default_num_buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which relative positions share a bucket.
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    /// RMS LayerNorm epsilon.
    #[serde(default = "default_layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// Feed-forward kind: `{act}` or `gated-{act}`.
    #[serde(default = "default_feed_forward_proj")]
    pub feed_forward_proj: String,
}

impl Config {
    /// The feed-forward activation and whether the block is gated, as `T5Config` derives them.
    pub fn ff_kind(&self) -> Result<(Activation, bool)> {
        let parts: Vec<&str> = self.feed_forward_proj.split('-').collect();
        let (name, gated) = match parts.as_slice() {
            [act] => (*act, false),
            ["gated", act] => (*act, true),
            _ => candle_core::bail!(
                "t5: invalid feed_forward_proj `{}` (expected `{{ACT}}` or `gated-{{ACT}}`)",
                self.feed_forward_proj
            ),
        };
        // transformers keeps `gated-gelu` on the tanh approximation for backwards compatibility.
        let name = if self.feed_forward_proj == "gated-gelu" {
            "gelu_new"
        } else {
            name
        };
        Ok((Activation::from_name(name)?, gated))
    }
}

use super::common::weight as get;

fn linear(vb: &VarBuilder, in_dim: usize, out_dim: usize) -> Result<Linear> {
    Ok(Linear::new(get(vb, (out_dim, in_dim), "weight")?, None))
}

/// T5's RMS LayerNorm: no mean subtraction, no bias.
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(vb: &VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: get(vb, size, "weight")?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let variance = x.sqr()?.mean_keepdim(candle_core::D::Minus1)?;
        let x = x.broadcast_mul(&(variance + self.eps)?.sqrt()?.recip()?)?;
        x.broadcast_mul(&self.weight)
    }
}

/// Bucket of a relative position `memory − query`, bidirectional, as transformers computes it.
fn relative_position_bucket(relative_position: i64, num_buckets: usize, max_distance: usize) -> u32 {
    let num_buckets = (num_buckets / 2) as i64;
    let mut bucket = if relative_position > 0 { num_buckets } else { 0 };
    let distance = relative_position.abs();
    let max_exact = num_buckets / 2;
    if distance < max_exact {
        bucket += distance;
    } else {
        // float32 arithmetic, as torch does it on a float tensor.
        let log_ratio = (max_distance as f64 / max_exact as f64).ln() as f32;
        let scaled = (distance as f32 / max_exact as f32).ln() / log_ratio * (num_buckets - max_exact) as f32;
        let large = max_exact + scaled as i64;
        bucket += large.min(num_buckets - 1);
    }
    bucket.max(0) as u32
}

/// Self-attention of one block.
struct SelfAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    n_heads: usize,
}

impl SelfAttention {
    fn load(vb: &VarBuilder, cfg: &Config) -> Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        Ok(Self {
            q: linear(&vb.pp("q"), cfg.d_model, inner)?,
            k: linear(&vb.pp("k"), cfg.d_model, inner)?,
            v: linear(&vb.pp("v"), cfg.d_model, inner)?,
            o: linear(&vb.pp("o"), inner, cfg.d_model)?,
            n_heads: cfg.num_heads,
        })
    }

    /// `x [b, T, d_model]`, `bias [b|1, heads, T, T]` (position bias plus key mask).
    fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<(Tensor, Tensor)> {
        let q = split_heads(&self.q.forward(x)?, self.n_heads)?;
        let k = split_heads(&self.k.forward(x)?, self.n_heads)?;
        let v = split_heads(&self.v.forward(x)?, self.n_heads)?;
        let scores = q.matmul(&k.t()?.contiguous()?)?.broadcast_add(bias)?;
        let prob = softmax_last_dim(&scores)?;
        let out = self.o.forward(&merge_heads(&prob.matmul(&v)?)?)?;
        Ok((out, prob))
    }
}

/// Feed-forward block: `DenseReluDense` (wi, wo) or its gated variant (wi_0, wi_1, wo).
struct FeedForward {
    wi: Linear,
    wi_1: Option<Linear>,
    wo: Linear,
    act: Activation,
}

impl FeedForward {
    fn load(vb: &VarBuilder, cfg: &Config) -> Result<Self> {
        let (act, gated) = cfg.ff_kind()?;
        let (wi, wi_1) = if gated {
            (
                linear(&vb.pp("wi_0"), cfg.d_model, cfg.d_ff)?,
                Some(linear(&vb.pp("wi_1"), cfg.d_model, cfg.d_ff)?),
            )
        } else {
            (linear(&vb.pp("wi"), cfg.d_model, cfg.d_ff)?, None)
        };
        Ok(Self {
            wi,
            wi_1,
            wo: linear(&vb.pp("wo"), cfg.d_ff, cfg.d_model)?,
            act,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.act.apply(&self.wi.forward(x)?)?;
        if let Some(wi_1) = &self.wi_1 {
            y = (y * wi_1.forward(x)?)?;
        }
        self.wo.forward(&y)
    }
}

struct Block {
    attn_norm: RmsNorm,
    attn: SelfAttention,
    ff_norm: RmsNorm,
    ff: FeedForward,
}

/// The T5 encoder stack.
pub struct T5EncoderModel {
    embed: Embedding,
    blocks: Vec<Block>,
    /// `relative_attention_bias.weight` of block 0, `[num_buckets, heads]`.
    relative_attention_bias: Tensor,
    final_layer_norm: RmsNorm,
    vocab_size: usize,
    num_heads: usize,
    num_buckets: usize,
    max_distance: usize,
    device: Device,
}

impl T5EncoderModel {
    /// Builds the encoder from weights (`encoder.*`, embedding `encoder.embed_tokens` or `shared`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        if cfg.num_heads == 0 || cfg.d_kv == 0 || cfg.d_model == 0 || cfg.relative_attention_num_buckets < 4 {
            candle_core::bail!(
                "t5: d_model, num_heads, d_kv must be positive and relative_attention_num_buckets ≥ 4"
            );
        }
        let emb_shape = (cfg.vocab_size, cfg.d_model);
        let emb = if vb.contains_tensor("encoder.embed_tokens.weight") {
            get(&vb, emb_shape, "encoder.embed_tokens.weight")?
        } else {
            get(&vb, emb_shape, "shared.weight")?
        };
        let enc = vb.pp("encoder");
        let blocks = (0..cfg.num_layers)
            .map(|i| {
                let bvb = enc.pp("block").pp(i).pp("layer");
                let (l0, l1) = (bvb.pp(0), bvb.pp(1));
                Ok(Block {
                    attn_norm: RmsNorm::load(&l0.pp("layer_norm"), cfg.d_model, cfg.layer_norm_epsilon)?,
                    attn: SelfAttention::load(&l0.pp("SelfAttention"), cfg)?,
                    ff_norm: RmsNorm::load(&l1.pp("layer_norm"), cfg.d_model, cfg.layer_norm_epsilon)?,
                    ff: FeedForward::load(&l1.pp("DenseReluDense"), cfg)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let relative_attention_bias = get(
            &enc.pp("block.0.layer.0.SelfAttention.relative_attention_bias"),
            (cfg.relative_attention_num_buckets, cfg.num_heads),
            "weight",
        )?;
        Ok(Self {
            embed: Embedding::new(emb, cfg.d_model),
            blocks,
            relative_attention_bias,
            final_layer_norm: RmsNorm::load(
                &enc.pp("final_layer_norm"),
                cfg.d_model,
                cfg.layer_norm_epsilon,
            )?,
            vocab_size: cfg.vocab_size,
            num_heads: cfg.num_heads,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
            device: vb.device().clone(),
        })
    }

    /// Relative position bias `[1, heads, T, T]`.
    fn position_bias(&self, t: usize) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..t)
            .flat_map(|i| {
                (0..t).map(move |j| {
                    relative_position_bucket(j as i64 - i as i64, self.num_buckets, self.max_distance)
                })
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, t * t, &self.device)?;
        self.relative_attention_bias
            .index_select(&buckets, 0)?
            .reshape((t, t, self.num_heads))?
            .permute((2, 0, 1))?
            .contiguous()?
            .unsqueeze(0)
    }
}

impl AttentionModel for T5EncoderModel {
    fn forward_each(
        &self,
        input: &ModelInput,
        want_hidden: bool,
        sink: &mut AttentionSink,
    ) -> Result<ModelOutput> {
        let (b, t) = input.input_ids.dims2()?;
        if b == 0 || t == 0 {
            candle_core::bail!("empty input: input_ids has shape [{b}, {t}]");
        }
        if input.attention_mask.dims() != [b, t] {
            candle_core::bail!(
                "attention_mask has shape {:?}, input_ids [{b}, {t}]",
                input.attention_mask.dims()
            );
        }
        let ids = input.input_ids.to_dtype(DType::U32)?;
        let max = ids.flatten_all()?.max(0)?.to_scalar::<u32>()?;
        if max as usize >= self.vocab_size {
            candle_core::bail!(
                "token id {max} out of range for vocabulary of {}",
                self.vocab_size
            );
        }
        let mask = additive_key_mask(&input.attention_mask)?;
        let bias = self.position_bias(t)?.broadcast_add(&mask)?;
        let mut h = self.embed.forward(&ids)?;
        let mut layer_hidden = Vec::new();
        let last = self.blocks.len().saturating_sub(1);
        for (i, block) in self.blocks.iter().enumerate() {
            let (attn_out, prob) = block.attn.forward(&block.attn_norm.forward(&h)?, &bias)?;
            h = (h + attn_out)?;
            h = (&h + block.ff.forward(&block.ff_norm.forward(&h)?)?)?;
            sink(i, prob)?;
            if want_hidden && i < last {
                layer_hidden.push(h.clone());
            }
        }
        let hidden = if want_hidden {
            let out = self.final_layer_norm.forward(&h)?;
            layer_hidden.push(out.clone());
            Some(out)
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
        self.blocks.len()
    }

    fn n_heads(&self) -> usize {
        self.num_heads
    }
}
