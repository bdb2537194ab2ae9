//! Pieces every family shares: attention masks, activations, softmax.

use candle_core::{D, DType, Module, Result, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::kernels;

/// Additive key mask `[batch, 1, 1, T]`: 0 for real tokens, `f32::MIN` for
/// padding, as transformers builds it (`(1 - mask) * finfo(float32).min`).
pub fn additive_key_mask(attention_mask: &Tensor) -> Result<Tensor> {
    let (b, t) = attention_mask.dims2()?;
    let mask = attention_mask.to_dtype(DType::F32)?;
    let inverted = mask.affine(-1.0, 1.0)?;
    inverted.affine(f32::MIN as f64, 0.0)?.reshape((b, 1, 1, t))
}

/// Hidden-layer activations by their config.json names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU (`gelu`): x·Φ(x) with erf.
    Gelu,
    /// Tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`).
    GeluTanh,
    /// ReLU.
    Relu,
    /// SiLU / swish.
    Silu,
}

impl Activation {
    /// Parses a `hidden_act` value.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            other => candle_core::bail!("unsupported hidden_act `{other}`"),
        })
    }

    /// Applies the activation.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Gelu => super::kernels::gelu_erf(x),
            Activation::GeluTanh => x.gelu(),
            Activation::Relu => x.relu(),
            Activation::Silu => x.silu(),
        }
    }
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    super::kernels::softmax_last_dim(x)
}

/// Splits `[batch, T, heads·d]` into `[batch, heads, T, d]`.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, hd) = x.dims3()?;
    x.reshape((b, t, heads, hd / heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// Merges `[batch, heads, T, d]` back into `[batch, T, heads·d]`.
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, h, t, d) = x.dims4()?;
    x.transpose(1, 2)?.contiguous()?.reshape((b, t, h * d))
}

/// Loads tensor `name` of `vb` with the expected shape; the error names the
/// full tensor path and the expected shape.
pub fn weight<S: Into<Shape>>(vb: &VarBuilder, shape: S, name: &str) -> Result<Tensor> {
    let shape: Shape = shape.into();
    vb.get(shape.clone(), name).map_err(|e| {
        let prefix = vb.prefix();
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        let mut inner = &e;
        while let candle_core::Error::WithBacktrace { inner: i, .. } = inner {
            inner = i;
        }
        // The weight loader names tensors as the checkpoint stores them.
        candle_core::Error::Msg(match inner {
            candle_core::Error::CannotFindTensor { path: stored } => {
                format!("missing tensor `{stored}` (expected shape {shape:?})")
            }
            candle_core::Error::UnexpectedShape { got, msg, .. } => {
                let stored = if msg.is_empty() { &path } else { msg };
                format!("tensor `{stored}` has shape {got:?}, expected {shape:?}")
            }
            other => format!("tensor `{path}` (expected shape {shape:?}): {other}"),
        })
    })
}

/// `nn.LayerNorm` over the last dimension, for every family. Computed in f32
/// as PyTorch does, but never as E[x²] − mean² (which loses every digit when
/// the residual stream carries a large mean): the mean is taken, the values
/// centred, the centred values' own small mean removed again (so the mean's
/// rounding does not leak into the variance), then the variance of the
/// centred values.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads `weight` and `bias` of size `dim` (the weight loader also finds
    /// them stored as `gamma`/`beta`).
    pub fn load(vb: &VarBuilder, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: weight(vb, dim, "weight")?,
            bias: weight(vb, dim, "bias")?,
            eps,
        })
    }

    /// A LayerNorm of the given weight, bias and epsilon (tests).
    #[cfg(test)]
    pub(crate) fn from_parts(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        Self { weight, bias, eps }
    }

    /// The normalisation in the buffer of `x` on the CPU: `x` must be a
    /// tensor the caller has just computed and shares with nobody.
    pub fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        if kernels::layer_norm_fits(&x, &self.weight, &self.bias)? {
            kernels::layer_norm_in_place(&x, &self.weight, &self.bias, self.eps)?;
            return Ok(x);
        }
        self.forward(&x)
    }

    /// The tensor-op formulation (every device; the CPU kernel's reference).
    pub(crate) fn forward_ops(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let centred = centred.broadcast_sub(&centred.mean_keepdim(D::Minus1)?)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let rstd = (var + self.eps)?.sqrt()?.recip()?;
        centred
            .broadcast_mul(&rstd)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dtype() == DType::BF16 || x.dtype() == DType::F16 {
            // Half-precision models normalise in f32 and round the result, as
            // PyTorch does: a mean of 1024 values summed in bf16 loses most digits.
            let wide = Self {
                weight: self.weight.to_dtype(DType::F32)?,
                bias: self.bias.to_dtype(DType::F32)?,
                eps: self.eps,
            };
            return wide.forward_owned(x.to_dtype(DType::F32)?)?.to_dtype(x.dtype());
        }
        if kernels::layer_norm_fits(x, &self.weight, &self.bias)? {
            let y = x.copy()?;
            kernels::layer_norm_in_place(&y, &self.weight, &self.bias, self.eps)?;
            return Ok(y);
        }
        self.forward_ops(x)
    }
}

/// `nn.Linear(in_dim, out_dim)` with bias: `weight [out, in]`, `bias [out]`.
pub fn linear(vb: &VarBuilder, in_dim: usize, out_dim: usize) -> Result<Linear> {
    let w = weight(vb, (out_dim, in_dim), "weight")?;
    let b = weight(vb, out_dim, "bias")?;
    Ok(Linear::new(w, Some(b)))
}
