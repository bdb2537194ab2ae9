//! XLNet (ProtXLNet), content stream only: relative positional self-attention with
//! segment terms and post-LN layers, matching Hugging Face `XLNetModel` (no mems,
//! no two-stream attention, `bi_data` off).

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::common::{Activation, LayerNorm, linear, merge_heads, softmax_last_dim, split_heads};
use super::{AttentionModel, AttentionSink, ModelInput, ModelOutput};

fn default_vocab_size() -> usize {
    32000
}
fn default_d_model() -> usize {
    1024
}
fn default_n_layer() -> usize {
    24
}
fn default_n_head() -> usize {
    16
}
fn default_d_inner() -> usize {
    4096
}
fn default_ff_activation() -> String {
    "gelu".into()
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_true() -> bool {
    true
}
fn default_attn_type() -> String {
    "bi".into()
}
fn default_clamp_len() -> i64 {
    -1
}

/// Mirror of an XLNet `config.json` (defaults as in transformers' `XLNetConfig`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    /// Vocabulary size (rows of `word_embedding`).
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// Hidden size.
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    /// Number of layers.
    #[serde(default = "default_n_layer")]
    pub n_layer: usize,
    /// Attention heads per layer.
    #[serde(default = "default_n_head")]
    pub n_head: usize,
    /// Size of one head; `d_model / n_head` when absent.
    #[serde(default)]
    pub d_head: Option<usize>,
    /// Inner size of the feed-forward block.
    #[serde(default = "default_d_inner")]
    pub d_inner: usize,
    /// Feed-forward activation (`gelu`, `relu`, …).
    #[serde(default = "default_ff_activation")]
    pub ff_activation: String,
    /// LayerNorm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Per-layer positional biases (always per layer in the PyTorch weights).
    #[serde(default = "default_true")]
    pub untie_r: bool,
    /// `bi` (bidirectional) or `uni` (causal) attention.
    #[serde(default = "default_attn_type")]
    pub attn_type: String,
    /// Clamp relative distances to this value when positive (-1: no clamping).
    #[serde(default = "default_clamp_len")]
    pub clamp_len: i64,
    /// Bidirectional data pipeline (pretraining only; unsupported here).
    #[serde(default)]
    pub bi_data: bool,
}

impl Config {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_head.unwrap_or(self.d_model / self.n_head.max(1))
    }
}

use super::common::weight as get;

/// Relative multi-head attention of one layer (content stream).
struct RelAttention {
    /// Projections `[d_model, heads·d_head]`.
    q: Tensor,
    k: Tensor,
    v: Tensor,
    r: Tensor,
    /// Output projection `[heads·d_head, d_model]`.
    o_t: Tensor,
    /// Biases `[1, heads, 1, d_head]`.
    r_w_bias: Tensor,
    r_r_bias: Tensor,
    r_s_bias: Tensor,
    /// Segment embeddings `[heads, d_head, 2]`.
    seg_embed_t: Tensor,
    layer_norm: LayerNorm,
    n_head: usize,
    scale: f64,
}

impl RelAttention {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let (d, n, dh) = (cfg.d_model, cfg.n_head, cfg.head_dim());
        let proj = |name: &str| get(&vb, (d, n, dh), name)?.reshape((d, n * dh));
        let bias = |name: &str| get(&vb, (n, dh), name)?.reshape((1, n, 1, dh));
        Ok(Self {
            q: proj("q")?,
            k: proj("k")?,
            v: proj("v")?,
            r: proj("r")?,
            o_t: proj("o")?.t()?.contiguous()?,
            r_w_bias: bias("r_w_bias")?,
            r_r_bias: bias("r_r_bias")?,
            r_s_bias: bias("r_s_bias")?,
            seg_embed_t: get(&vb, (2, n, dh), "seg_embed")?
                .permute((1, 2, 0))?
                .contiguous()?,
            layer_norm: LayerNorm::load(&vb.pp("layer_norm"), d, cfg.layer_norm_eps)?,
            n_head: n,
            scale: 1.0 / (dh as f64).sqrt(),
        })
    }

    /// `h [b, T, d_model]`, `pos_emb [R, d_model]`, `seg` = (same, differ) `[b, 1, T, T]`
    /// masks, `mask [b|1, 1, T, T]` with 1 = masked. Returns the new hidden state and
    /// attention probabilities `[b, heads, T, T]`.
    fn forward(
        &self,
        h: &Tensor,
        pos_emb: &Tensor,
        seg: Option<&(Tensor, Tensor)>,
        mask: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (_, t, _) = h.dims3()?;
        let n = self.n_head;
        let q = split_heads(&h.broadcast_matmul(&self.q)?, n)?;
        let k = split_heads(&h.broadcast_matmul(&self.k)?, n)?;
        let v = split_heads(&h.broadcast_matmul(&self.v)?, n)?;
        // Positional keys [heads, d_head, R].
        let r_len = pos_emb.dim(0)?;
        let k_r = pos_emb
            .matmul(&self.r)?
            .reshape((r_len, n, ()))?
            .permute((1, 2, 0))?
            .contiguous()?;

        // Content term.
        let ac = q.broadcast_add(&self.r_w_bias)?.matmul(&k.t()?.contiguous()?)?;
        // Position term with the relative shift (rel_shift_bnij).
        let bd = q.broadcast_add(&self.r_r_bias)?.broadcast_matmul(&k_r)?;
        let bd = rel_shift(&bd, t)?;
        let mut score = (ac + bd)?;
        // Segment term.
        if let Some((same, differ)) = seg {
            let e = q
                .broadcast_add(&self.r_s_bias)?
                .broadcast_matmul(&self.seg_embed_t)?;
            let e0 = e.narrow(D::Minus1, 0, 1)?;
            let e1 = e.narrow(D::Minus1, 1, 1)?;
            let ef = (same.broadcast_mul(&e0)? + differ.broadcast_mul(&e1)?)?;
            score = (score + ef)?;
        }
        let score = (score * self.scale)?;
        let score = score.broadcast_sub(&(mask * 1e30)?)?;
        let prob = softmax_last_dim(&score)?;

        let attn_vec = merge_heads(&prob.matmul(&v)?)?;
        let attn_out = attn_vec.broadcast_matmul(&self.o_t)?;
        let out = self.layer_norm.forward(&(attn_out + h)?)?;
        Ok((out, prob))
    }
}

/// `x [b, n, T, R]` → `[b, n, T, klen]`, exactly as transformers' `rel_shift_bnij`.
fn rel_shift(x: &Tensor, klen: usize) -> Result<Tensor> {
    let (b, n, t, r) = x.dims4()?;
    if r < 2 || r - 1 < klen {
        candle_core::bail!("xlnet: relative shift needs more than {klen} positions, got {r}");
    }
    x.contiguous()?
        .reshape((b, n, r, t))?
        .narrow(2, 1, r - 1)?
        .contiguous()?
        .reshape((b, n, t, r - 1))?
        .narrow(3, 0, klen)?
        .contiguous()
}

/// Position-wise feed-forward block with its residual LayerNorm.
struct FeedForward {
    layer_1: Linear,
    layer_2: Linear,
    layer_norm: LayerNorm,
    act: Activation,
}

impl FeedForward {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            layer_1: linear(&vb.pp("layer_1"), cfg.d_model, cfg.d_inner)?,
            layer_2: linear(&vb.pp("layer_2"), cfg.d_inner, cfg.d_model)?,
            layer_norm: LayerNorm::load(&vb.pp("layer_norm"), cfg.d_model, cfg.layer_norm_eps)?,
            act: Activation::from_name(&cfg.ff_activation)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.act.apply(&self.layer_1.forward(x)?)?;
        let y = self.layer_2.forward(&y)?;
        self.layer_norm.forward(&(y + x)?)
    }
}

struct Layer {
    rel_attn: RelAttention,
    ff: FeedForward,
}

/// The XLNet encoder (content stream).
pub struct XLNetModel {
    word_embedding: Embedding,
    layers: Vec<Layer>,
    vocab_size: usize,
    d_model: usize,
    n_head: usize,
    causal: bool,
    clamp_len: i64,
    device: Device,
}

impl XLNetModel {
    /// Builds the model from weights (by `XLNetModel` names; the loader resolves `transformer.`-prefixed ones).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        if cfg.n_head == 0 || cfg.head_dim() == 0 || cfg.d_model == 0 {
            candle_core::bail!("xlnet: d_model, n_head and d_head must be positive");
        }
        if !cfg.d_model.is_multiple_of(2) {
            candle_core::bail!(
                "xlnet: d_model must be even for sinusoid positions, got {}",
                cfg.d_model
            );
        }
        let causal = match cfg.attn_type.as_str() {
            "bi" => false,
            "uni" => true,
            other => candle_core::bail!("xlnet: unsupported attn_type `{other}` (expected `bi` or `uni`)"),
        };
        if cfg.bi_data {
            candle_core::bail!("xlnet: bi_data is a pretraining option and is not supported");
        }
        let emb = get(&vb, (cfg.vocab_size, cfg.d_model), "word_embedding.weight")?;
        let word_embedding = Embedding::new(emb, cfg.d_model);
        let layers = (0..cfg.n_layer)
            .map(|i| {
                let lvb = vb.pp("layer").pp(i);
                Ok(Layer {
                    rel_attn: RelAttention::load(lvb.pp("rel_attn"), cfg)?,
                    ff: FeedForward::load(lvb.pp("ff"), cfg)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embedding,
            layers,
            vocab_size: cfg.vocab_size,
            d_model: cfg.d_model,
            n_head: cfg.n_head,
            causal,
            clamp_len: cfg.clamp_len,
            device: vb.device().clone(),
        })
    }

    /// Sinusoid embeddings of relative positions `klen, klen-1, …` (`[R, d_model]`).
    fn positional_embedding(&self, qlen: usize, klen: usize) -> Result<Tensor> {
        let beg = klen as i64;
        let end = if self.causal { -1 } else { -(qlen as i64) };
        let half = self.d_model / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / 10000f32.powf((2 * i) as f32 / self.d_model as f32))
            .collect();
        let mut data = Vec::with_capacity((beg - end) as usize * self.d_model);
        let mut pos = beg;
        while pos > end {
            let p = if self.clamp_len > 0 {
                pos.clamp(-self.clamp_len, self.clamp_len)
            } else {
                pos
            } as f32;
            data.extend(inv_freq.iter().map(|f| (p * f).sin()));
            data.extend(inv_freq.iter().map(|f| (p * f).cos()));
            pos -= 1;
        }
        let rows = data.len() / self.d_model;
        Tensor::from_vec(data, (rows, self.d_model), &self.device)
    }

    /// Attention mask `[b, 1, T, T]`, 1 = masked: padded keys (except a position
    /// attending to itself) and, for `uni`, future keys.
    fn attention_mask(&self, attention_mask: &Tensor) -> Result<Tensor> {
        let (b, t) = attention_mask.dims2()?;
        let pad = attention_mask
            .to_dtype(DType::F32)?
            .affine(-1.0, 1.0)?
            .gt(0f32)?
            .to_dtype(DType::F32)?;
        let pad = pad.reshape((b, 1, 1, t))?;
        let not_self = Tensor::eye(t, DType::F32, &self.device)?
            .affine(-1.0, 1.0)?
            .reshape((1, 1, t, t))?;
        let mut mask = pad.broadcast_mul(&not_self)?;
        if self.causal {
            let future: Vec<f32> = (0..t)
                .flat_map(|i| (0..t).map(move |j| if j > i { 1.0 } else { 0.0 }))
                .collect();
            let future = Tensor::from_vec(future, (1, 1, t, t), &self.device)?;
            mask = mask.broadcast_maximum(&future)?;
        }
        Ok(mask)
    }
}

/// Checks the shapes and token ids of an input; returns `(batch, T)`.
fn check_input(input: &ModelInput, vocab_size: usize) -> Result<(usize, usize)> {
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
    if let Some(tt) = &input.token_type_ids
        && tt.dims() != [b, t]
    {
        candle_core::bail!("token_type_ids has shape {:?}, input_ids [{b}, {t}]", tt.dims());
    }
    let max = input
        .input_ids
        .to_dtype(DType::U32)?
        .flatten_all()?
        .max(0)?
        .to_scalar::<u32>()?;
    if max as usize >= vocab_size {
        candle_core::bail!("token id {max} out of range for vocabulary of {vocab_size}");
    }
    Ok((b, t))
}

impl AttentionModel for XLNetModel {
    fn forward_each(
        &self,
        input: &ModelInput,
        want_hidden: bool,
        sink: &mut AttentionSink,
    ) -> Result<ModelOutput> {
        let (_, t) = check_input(input, self.vocab_size)?;
        let ids = input.input_ids.to_dtype(DType::U32)?;
        let mut h = self.word_embedding.forward(&ids)?;
        let mask = self.attention_mask(&input.attention_mask)?;
        let pos_emb = self.positional_embedding(t, t)?;
        let seg = match &input.token_type_ids {
            Some(tt) => {
                let tt = tt.to_dtype(DType::U32)?;
                let (b, _) = tt.dims2()?;
                let differ = tt
                    .unsqueeze(2)?
                    .broadcast_ne(&tt.unsqueeze(1)?)?
                    .to_dtype(DType::F32)?;
                let differ = differ.reshape((b, 1, t, t))?;
                let same = differ.affine(-1.0, 1.0)?;
                Some((same, differ))
            }
            None => None,
        };
        let mut layer_hidden = Vec::new();
        for (layer_index, layer) in self.layers.iter().enumerate() {
            let (out, prob) = layer.rel_attn.forward(&h, &pos_emb, seg.as_ref(), &mask)?;
            h = layer.ff.forward(&out)?;
            sink(layer_index, prob)?;
            if want_hidden {
                layer_hidden.push(h.clone());
            }
        }
        Ok(ModelOutput {
            attentions: Vec::new(),
            hidden: if want_hidden { Some(h) } else { None },
            layer_hidden,
        })
    }

    fn n_layers(&self) -> usize {
        self.layers.len()
    }

    fn n_heads(&self) -> usize {
        self.n_head
    }
}
