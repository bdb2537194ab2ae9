//! CPU kernels for the element-wise work of the forward pass, where candle's
//! own run on one thread or call scalar libm per element: exact (erf) GELU,
//! softmax over the last dimension and scaling, in parallel chunks and in
//! straight-line arithmetic the compiler vectorises (an AVX2 build of each
//! loop is chosen at run time; without fused multiply-adds, so both builds
//! give the same bits). Other devices and dtypes use candle's ops.
//!
//! Accuracy: `exp` is Cephes' single-precision polynomial (≈1 ulp); erfc is
//! the Chebyshev fit of Numerical Recipes' `erfcc` (relative error < 1.2e-7),
//! so GELU is within 3e-7 of the exact function (relative above 1 in
//! magnitude), and within 2e-6 relative for |x| ≤ 4 — where the naive f32
//! 1 + erf(x/√2) of transformers and candle loses digits in the lower tail
//! (tested against f64 below).

use candle_core::{CpuStorage, CustomOp1, DType, InplaceOp2, InplaceOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// e^x in f32 (Cephes `expf`): 0 below −87.3, clamped above 88 (e^88 ≈ 1.7e38).
// Coefficients as published (rounded to f32 by the compiler).
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    let under = x < -87.3;
    let x = if x > 88.0 {
        88.0
    } else if under {
        -87.3
    } else {
        x
    };
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let y = p * z + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) << 23) as u32);
    if under { 0.0 } else { y * scale }
}

/// GELU(x) = x·(1 + erf(x/√2))/2, with 1 + erf(u) taken as 2 − erfc(u) for
/// u ≥ 0 and erfc(−u) below, so both tails keep their relative accuracy.
// Coefficients as published (rounded to f32 by the compiler).
#[allow(clippy::excessive_precision)]
#[inline(always)]
fn gelu_f32(x: f32) -> f32 {
    let u = x * std::f32::consts::FRAC_1_SQRT_2;
    let z = u.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_9
                                + t * (1.488_515_9 + t * (-0.822_152_2 + t * 0.170_872_77))))))));
    // e^(−z² + poly) as e^(−zh²) · e^((zh − z)(zh + z) + poly), zh = z to 12
    // bits: zh² is exact, so the large exponent carries no rounding error.
    let zh = f32::from_bits(z.to_bits() & 0xffff_f000);
    let erfc = t * exp_f32(-zh * zh) * exp_f32((zh - z) * (zh + z) + poly);
    let one_plus_erf = if u >= 0.0 { 2.0 - erfc } else { erfc };
    0.5 * x * one_plus_erf
}

/// GELU in f64; the lower tail through erfc, which keeps its relative accuracy.
fn gelu_f64(v: f64) -> f64 {
    let u = v * std::f64::consts::FRAC_1_SQRT_2;
    let one_plus_erf = if u >= 0.0 {
        1.0 + libm::erf(u)
    } else {
        libm::erfc(-u)
    };
    0.5 * v * one_plus_erf
}

#[inline(always)]
fn gelu_chunk(src: &[f32], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = gelu_f32(*s);
    }
}

/// One softmax row: e^(x − max) / Σ, the sum over 8 interleaved partial sums.
#[inline(always)]
fn softmax_row(src: &[f32], dst: &mut [f32]) {
    dst.copy_from_slice(src);
    softmax_in_place(dst);
}

/// [`softmax_row`] over a row in place.
#[inline(always)]
fn softmax_in_place(dst: &mut [f32]) {
    let max = dst
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for d in dst.iter_mut() {
        *d = exp_f32(*d - max);
    }
    let sum = lane_sum(dst);
    for d in dst.iter_mut() {
        *d /= sum;
    }
}

#[inline(always)]
fn scale_chunk(src: &[f32], dst: &mut [f32], factor: f32) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s * factor;
    }
}

/// Rows of `n` plus the bias, in place: `x + b` rounded once, as candle's add.
#[inline(always)]
fn bias_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += *b;
        }
    }
}

/// `(x + b) + r` in place, each sum rounded as candle's two adds.
#[inline(always)]
fn bias_residual_rows(x: &mut [f32], bias: &[f32], residual: &[f32]) {
    for (row, res) in x.chunks_mut(bias.len()).zip(residual.chunks(bias.len())) {
        for ((v, b), r) in row.iter_mut().zip(bias).zip(res) {
            *v = (*v + *b) + *r;
        }
    }
}

/// `GELU(x + b)` in place.
#[inline(always)]
fn bias_gelu_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = gelu_f32(*v + *b);
        }
    }
}

/// Softmax of `x·scale + mask` over rows of `mask.len()`, in place: the
/// arithmetic of [`scale_chunk`], candle's add and [`softmax_row`] in turn.
#[inline(always)]
fn masked_softmax_rows(x: &mut [f32], mask: &[f32], scale: f32, scaled: bool) {
    for row in x.chunks_mut(mask.len()) {
        if scaled {
            for (v, m) in row.iter_mut().zip(mask) {
                *v = *v * scale + *m;
            }
        } else {
            for (v, m) in row.iter_mut().zip(mask) {
                *v += *m;
            }
        }
        softmax_in_place(row);
    }
}

/// Σ of a row over 8 interleaved partial sums.
#[inline(always)]
fn lane_sum(row: &[f32]) -> f32 {
    lane_sum_of(row, |v| v)
}

/// Σ f(v) over a row, in 8 interleaved partial sums.
#[inline(always)]
fn lane_sum_of(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += f(*v);
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for v in chunks.remainder() {
        sum += f(*v);
    }
    sum
}

/// LayerNorm of rows of `weight.len()` in place, as `common::LayerNorm`
/// states it: centred twice (so the mean's rounding does not leak into the
/// variance), the variance of the centred values, then `· rstd · w + b`.
#[inline(always)]
fn layer_norm_rows(x: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    let n = weight.len();
    for row in x.chunks_mut(n) {
        let mean = lane_sum(row) / n as f32;
        row.iter_mut().for_each(|v| *v -= mean);
        let mean = lane_sum(row) / n as f32;
        row.iter_mut().for_each(|v| *v -= mean);
        let sq = lane_sum_of(row, |v| v * v);
        let rstd = 1.0 / (sq / n as f32 + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *v = *v * rstd * *w + *b;
        }
    }
}

/// Runs `plain` or, where the CPU has them, the same code compiled for AVX2.
macro_rules! dispatch {
    ($avx2:ident, $plain:ident, ($($arg:ident: $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2($($arg: $ty),*) {
            $plain($($arg),*)
        }

        pub(super) fn run($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { $avx2($($arg),*) };
            }
            $plain($($arg),*)
        }
    };
}

mod gelu_dispatch {
    use super::gelu_chunk;
    dispatch!(gelu_avx2, gelu_chunk, (src: &[f32], dst: &mut [f32]));
}

mod softmax_dispatch {
    use super::softmax_row;
    dispatch!(softmax_avx2, softmax_row, (src: &[f32], dst: &mut [f32]));
}

mod scale_dispatch {
    use super::scale_chunk;
    dispatch!(scale_avx2, scale_chunk, (src: &[f32], dst: &mut [f32], factor: f32));
}

mod bias_dispatch {
    use super::bias_rows;
    dispatch!(bias_avx2, bias_rows, (x: &mut [f32], bias: &[f32]));
}

mod bias_residual_dispatch {
    use super::bias_residual_rows;
    dispatch!(bias_residual_avx2, bias_residual_rows, (x: &mut [f32], bias: &[f32], residual: &[f32]));
}

mod bias_gelu_dispatch {
    use super::bias_gelu_rows;
    dispatch!(bias_gelu_avx2, bias_gelu_rows, (x: &mut [f32], bias: &[f32]));
}

mod masked_softmax_dispatch {
    use super::masked_softmax_rows;
    dispatch!(masked_softmax_avx2, masked_softmax_rows, (x: &mut [f32], mask: &[f32], scale: f32, scaled: bool));
}

mod layer_norm_dispatch {
    use super::layer_norm_rows;
    dispatch!(layer_norm_avx2, layer_norm_rows, (x: &mut [f32], weight: &[f32], bias: &[f32], eps: f32));
}

fn contiguous<'a, T>(v: &'a [T], layout: &Layout, what: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&v[start..end]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "headscan-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = match storage {
            CpuStorage::F32(v) => {
                let src = contiguous(v, layout, "gelu")?;
                let mut dst = vec![0f32; src.len()];
                dst.par_chunks_mut(CHUNK)
                    .zip(src.par_chunks(CHUNK))
                    .for_each(|(d, s)| gelu_dispatch::run(s, d));
                CpuStorage::F32(dst)
            }
            CpuStorage::F64(v) => {
                let src = contiguous(v, layout, "gelu")?;
                CpuStorage::F64(src.par_iter().map(|&x| gelu_f64(x)).collect())
            }
            _ => candle_core::bail!("gelu: only f32 and f64 run on this kernel"),
        };
        Ok((out, layout.shape().clone()))
    }
}

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "headscan-softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = f32_slice(storage, layout, "softmax")?;
        let n = layout.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut dst = vec![0f32; src.len()];
        let chunk = rows_per_task(n);
        dst.par_chunks_mut(chunk)
            .zip(src.par_chunks(chunk))
            .for_each(|(d, s)| {
                for (d, s) in d.chunks_mut(n).zip(s.chunks(n)) {
                    softmax_dispatch::run(s, d);
                }
            });
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

struct Scale(f32);

impl CustomOp1 for Scale {
    fn name(&self) -> &'static str {
        "headscan-scale"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = f32_slice(storage, layout, "scale")?;
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| scale_dispatch::run(s, d, self.0));
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

fn on_cpu(x: &Tensor, dtypes: &[DType]) -> bool {
    x.device().is_cpu() && dtypes.contains(&x.dtype())
}

/// Exact GELU: the parallel kernel on the CPU (f32, f64), candle's op elsewhere.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if on_cpu(x, &[DType::F32, DType::F64]) {
        x.contiguous()?.apply_op1_no_bwd(&GeluErf)
    } else {
        x.gelu_erf()
    }
}

/// Softmax over the last dimension: the parallel kernel on the CPU (f32),
/// candle's op elsewhere.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if on_cpu(x, &[DType::F32]) {
        x.contiguous()?.apply_op1_no_bwd(&SoftmaxLastDim)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// `x · factor` (each element rounded once, as candle's affine with no
/// offset): the parallel kernel on the CPU (f32), candle's op elsewhere.
pub fn scale(x: &Tensor, factor: f64) -> Result<Tensor> {
    if on_cpu(x, &[DType::F32]) {
        x.contiguous()?.apply_op1_no_bwd(&Scale(factor as f32))
    } else {
        x.affine(factor, 0.0)
    }
}

/// The contiguous f32 slice a tensor's layout covers, writable.
fn contiguous_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, what: &str) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("{what}: only f32 runs on this kernel");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut v[start..end]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("{what}: only f32 runs on this kernel");
    };
    contiguous(v, layout, what)
}

/// Rows per parallel task for rows of `n` elements.
fn rows_per_task(n: usize) -> usize {
    (CHUNK / n.max(1)).max(1) * n.max(1)
}

/// The bias epilogue of a linear layer, in place: `+ b`, `(+ b) + residual` or `GELU(+ b)`.
enum BiasEpilogue {
    Add,
    Residual,
    Gelu,
}

impl InplaceOp2 for BiasEpilogue {
    fn name(&self) -> &'static str {
        "headscan-bias-epilogue"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, b: &CpuStorage, b_l: &Layout) -> Result<()> {
        let x = contiguous_mut(dst, dst_l, "bias")?;
        let bias = f32_slice(b, b_l, "bias")?;
        let chunk = rows_per_task(bias.len());
        match self {
            BiasEpilogue::Add => x.par_chunks_mut(chunk).for_each(|x| bias_dispatch::run(x, bias)),
            BiasEpilogue::Gelu => x
                .par_chunks_mut(chunk)
                .for_each(|x| bias_gelu_dispatch::run(x, bias)),
            BiasEpilogue::Residual => candle_core::bail!("bias: the residual epilogue takes two operands"),
        }
        Ok(())
    }
}

impl InplaceOp3 for BiasEpilogue {
    fn name(&self) -> &'static str {
        "headscan-bias-residual"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        b: &CpuStorage,
        b_l: &Layout,
        r: &CpuStorage,
        r_l: &Layout,
    ) -> Result<()> {
        let x = contiguous_mut(dst, dst_l, "bias")?;
        let bias = f32_slice(b, b_l, "bias")?;
        let residual = f32_slice(r, r_l, "residual")?;
        if residual.len() != x.len() {
            candle_core::bail!("residual: {} elements for {}", residual.len(), x.len());
        }
        let chunk = rows_per_task(bias.len());
        x.par_chunks_mut(chunk)
            .zip(residual.par_chunks(chunk))
            .for_each(|(x, r)| bias_residual_dispatch::run(x, bias, r));
        Ok(())
    }
}

/// Softmax of `scores·scale + mask` in place, the mask one row per batch item.
struct MaskedSoftmax {
    scale: Option<f32>,
    rows_per_item: usize,
    keys: usize,
}

impl InplaceOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "headscan-masked-softmax"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, m: &CpuStorage, m_l: &Layout) -> Result<()> {
        let x = contiguous_mut(dst, dst_l, "masked softmax")?;
        let mask = f32_slice(m, m_l, "attention mask")?;
        let (rows, n) = (self.rows_per_item, self.keys);
        if n == 0 || mask.len() % n != 0 || x.len() != mask.len() / n * rows * n {
            candle_core::bail!("masked softmax: mask of {} for {} scores", mask.len(), x.len());
        }
        let (scale, scaled) = (self.scale.unwrap_or(1.0), self.scale.is_some());
        x.par_chunks_mut(rows * n).enumerate().for_each(|(i, item)| {
            let mask = &mask[i * n..(i + 1) * n];
            item.par_chunks_mut(rows_per_task(n))
                .for_each(|rows| masked_softmax_dispatch::run(rows, mask, scale, scaled));
        });
        Ok(())
    }
}

/// LayerNorm over the last dimension, in place.
struct LayerNormInPlace(f32);

impl InplaceOp3 for LayerNormInPlace {
    fn name(&self) -> &'static str {
        "headscan-layer-norm"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        w: &CpuStorage,
        w_l: &Layout,
        b: &CpuStorage,
        b_l: &Layout,
    ) -> Result<()> {
        let x = contiguous_mut(dst, dst_l, "layer norm")?;
        let (weight, bias) = (
            f32_slice(w, w_l, "layer norm weight")?,
            f32_slice(b, b_l, "layer norm bias")?,
        );
        if weight.is_empty() || weight.len() != bias.len() || x.len() % weight.len() != 0 {
            candle_core::bail!(
                "layer norm: weight {} and bias {} for rows of {}",
                weight.len(),
                bias.len(),
                x.len()
            );
        }
        x.par_chunks_mut(rows_per_task(weight.len()))
            .for_each(|x| layer_norm_dispatch::run(x, weight, bias, self.0));
        Ok(())
    }
}

/// Whether [`layer_norm_in_place`] runs on `x` (f32 on the CPU, contiguous, rows of the weight's size).
pub fn layer_norm_fits(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<bool> {
    Ok(in_place_ok(x, &[weight, bias])
        && x.rank() > 0
        && x.dim(candle_core::D::Minus1)? == weight.elem_count()
        && bias.elem_count() == weight.elem_count())
}

/// LayerNorm over the last dimension in the buffer of `x`, one pass per row
/// (see [`layer_norm_fits`]); `x` must be a tensor the caller owns alone.
pub fn layer_norm_in_place(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<()> {
    x.inplace_op3(weight, bias, &LayerNormInPlace(eps as f32))
}

/// Whether `y` and each operand can take an in-place epilogue: f32 on the CPU, contiguous.
fn in_place_ok(y: &Tensor, operands: &[&Tensor]) -> bool {
    on_cpu(y, &[DType::F32])
        && y.is_contiguous()
        && operands
            .iter()
            .all(|t| on_cpu(t, &[DType::F32]) && t.is_contiguous())
}

/// `x·Wᵀ` of a linear layer, exactly as candle's `Linear` computes it.
fn project(layer: &candle_nn::Linear, x: &Tensor) -> Result<Tensor> {
    use candle_core::Module;
    candle_nn::Linear::new(layer.weight().clone(), None).forward(x)
}

/// Whether `y`'s rows take `b` (and same-shaped `others`) in place.
fn bias_fits(y: &Tensor, b: &Tensor, others: &[&Tensor]) -> Result<bool> {
    Ok(in_place_ok(y, &[&[b], others].concat()) && y.dim(candle_core::D::Minus1)? == b.elem_count())
}

/// `y` (a projection just computed) plus the layer's bias, in place on the CPU.
fn add_bias(layer: &candle_nn::Linear, y: Tensor) -> Result<Tensor> {
    match layer.bias() {
        Some(b) if bias_fits(&y, b, &[])? => {
            y.inplace_op2(b, &BiasEpilogue::Add)?;
            Ok(y)
        }
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// A linear layer, its bias added in place on the CPU (the bits of candle's `Linear`).
pub fn linear(layer: &candle_nn::Linear, x: &Tensor) -> Result<Tensor> {
    add_bias(layer, project(layer, x)?)
}

/// `linear(x) + residual` with one pass over the output on the CPU (same bits as the two adds).
pub fn linear_residual(layer: &candle_nn::Linear, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
    let y = project(layer, x)?;
    if let Some(b) = layer.bias()
        && residual.shape() == y.shape()
        && bias_fits(&y, b, &[residual])?
    {
        y.inplace_op3(b, residual, &BiasEpilogue::Residual)?;
        return Ok(y);
    }
    add_bias(layer, y)? + residual
}

/// `act(linear(x))`, exact GELU fused into the bias pass on the CPU.
pub fn linear_activation(
    layer: &candle_nn::Linear,
    x: &Tensor,
    act: super::common::Activation,
) -> Result<Tensor> {
    let y = project(layer, x)?;
    if act == super::common::Activation::Gelu
        && let Some(b) = layer.bias()
        && bias_fits(&y, b, &[])?
    {
        y.inplace_op2(b, &BiasEpilogue::Gelu)?;
        return Ok(y);
    }
    act.apply(&add_bias(layer, y)?)
}

/// Attention probabilities from raw scores `[batch, heads, T, T]`:
/// softmax(scores·scale + mask) with the additive key mask `[batch, 1, 1, T]`,
/// always in f32 (scores of a bf16 model are widened first, so the softmax
/// sums in f32 as PyTorch's does). On the CPU it is computed in the scores'
/// own buffer (one pass, same bits as [`scale`], candle's broadcast add and
/// [`softmax_last_dim`] in turn). `scores` must be a tensor the caller has
/// just computed and shares with nobody.
pub fn attention_probs(scores: Tensor, mask: &Tensor, scale_by: Option<f64>) -> Result<Tensor> {
    let (b, h, tq, tk) = scores.dims4()?;
    let scores = scores.to_dtype(DType::F32)?;
    let mask = mask.to_dtype(DType::F32)?;
    if in_place_ok(&scores, &[&mask]) && mask.dims() == [b, 1, 1, tk] {
        scores.inplace_op2(
            &mask,
            &MaskedSoftmax {
                scale: scale_by.map(|s| s as f32),
                rows_per_item: h * tq,
                keys: tk,
            },
        )?;
        return Ok(scores);
    }
    let scores = match scale_by {
        Some(s) => scale(&scores, s)?,
        None => scores,
    };
    softmax_last_dim(&scores.broadcast_add(&mask)?)
}

#[cfg(test)]
#[path = "kernels_tests.rs"]
mod tests;
