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

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
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
    let max = src
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for (d, s) in dst.iter_mut().zip(src) {
        *d = exp_f32(*s - max);
    }
    let mut lanes = [0f32; 8];
    let mut chunks = dst.chunks_exact(8);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let mut sum = lanes.iter().sum::<f32>();
    for v in chunks.remainder() {
        sum += v;
    }
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
        let CpuStorage::F32(v) = storage else {
            candle_core::bail!("softmax: only f32 runs on this kernel");
        };
        let src = contiguous(v, layout, "softmax")?;
        let n = layout.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut dst = vec![0f32; src.len()];
        let rows_per_task = (CHUNK / n).max(1) * n;
        dst.par_chunks_mut(rows_per_task)
            .zip(src.par_chunks(rows_per_task))
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
        let CpuStorage::F32(v) = storage else {
            candle_core::bail!("scale: only f32 runs on this kernel");
        };
        let src = contiguous(v, layout, "scale")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(v: Vec<f32>) -> Tensor {
        let n = v.len();
        Tensor::from_vec(v, (n,), &candle_core::Device::Cpu).unwrap()
    }

    #[test]
    fn gelu_is_within_a_few_ulp_of_the_exact_function_in_both_tails() {
        let xs: Vec<f32> = (0..400_001).map(|i| (i as f32 - 200_000.0) * 6e-5).collect();
        let ours = gelu_erf(&cpu(xs.clone())).unwrap().to_vec1::<f32>().unwrap();
        // Absolute error where |GELU| < 1, relative above; and relative error
        // within |x| ≤ 4, where f32 naive 1 + erf(x/√2) loses digits and this does not.
        let (mut worst_scaled, mut worst_near) = (0f64, 0f64);
        for (&x, &y) in xs.iter().zip(&ours) {
            let exact = gelu_f64(f64::from(x));
            let err = (f64::from(y) - exact).abs();
            worst_scaled = worst_scaled.max(err / exact.abs().max(1.0));
            if x.abs() <= 4.0 && exact != 0.0 {
                worst_near = worst_near.max(err / exact.abs());
            }
        }
        assert!(worst_scaled < 3e-7, "scaled error {worst_scaled:e}");
        assert!(worst_near < 2e-6, "relative error within |x| ≤ 4: {worst_near:e}");
        // Far tails: exact zero and identity, no NaN.
        let ends = gelu_erf(&cpu(vec![-100.0, -20.0, 0.0, 20.0, 100.0]))
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ends, vec![-0.0, -0.0, 0.0, 20.0, 100.0]);
    }

    #[test]
    fn softmax_matches_exact_and_ignores_masked_keys() {
        let row: Vec<f32> = (0..37).map(|i| ((i * 7919) % 13) as f32 * 0.7 - 3.0).collect();
        let mut v = row.clone();
        v.extend(row.iter().map(|x| x - 10_000.0 * f32::from(u8::from(*x > 0.0))));
        let t = Tensor::from_vec(v.clone(), (2, 37), &candle_core::Device::Cpu).unwrap();
        let ours = softmax_last_dim(&t).unwrap().to_vec2::<f32>().unwrap();
        for (r, out) in v.chunks(37).zip(&ours) {
            let m = r
                .iter()
                .cloned()
                .fold(f64::NEG_INFINITY, |a, b| a.max(f64::from(b)));
            let e: Vec<f64> = r.iter().map(|&x| (f64::from(x) - m).exp()).collect();
            let s: f64 = e.iter().sum();
            for (o, e) in out.iter().zip(&e) {
                assert!((f64::from(*o) - e / s).abs() < 2e-7, "{o} vs {}", e / s);
            }
        }
        assert!(ours[1].iter().zip(&row).all(|(p, x)| *x <= 0.0 || *p == 0.0));
    }

    #[test]
    fn scale_equals_candles_affine_and_exp_is_accurate() {
        let xs: Vec<f32> = (0..10_000).map(|i| i as f32 * 0.37 - 1500.0).collect();
        let t = cpu(xs.clone());
        let ours = scale(&t, 0.125).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(ours, t.affine(0.125, 0.0).unwrap().to_vec1::<f32>().unwrap());
        for i in -8700..8800 {
            let x = i as f32 * 0.01;
            let rel = (f64::from(exp_f32(x)) - f64::from(x).exp()).abs() / f64::from(x).exp();
            assert!(rel < 3e-7, "exp({x}): {rel:e}");
        }
    }
}
