//! CPU kernels where candle's own are single-threaded: exact GELU
//! (`x·(1 + erf(x/√2))/2` with the same `libm::erff` as candle, so the same
//! bits) over both cores' worth of chunks. Other devices use candle's op.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// Exact (erf) GELU, in parallel on the CPU.
struct GeluErf;

fn gelu_f32(v: f32) -> f32 {
    (libm::erff(v * std::f32::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * v
}

fn gelu_f64(v: f64) -> f64 {
    (libm::erf(v * std::f64::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * v
}

fn map<T: Copy + Send + Sync + Default>(src: &[T], f: fn(T) -> T) -> Vec<T> {
    let mut dst = vec![T::default(); src.len()];
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| {
            for (d, s) in d.iter_mut().zip(s) {
                *d = f(*s);
            }
        });
    dst
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "headscan-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gelu: input must be contiguous");
        };
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(map(&v[start..end], gelu_f32)),
            CpuStorage::F64(v) => CpuStorage::F64(map(&v[start..end], gelu_f64)),
            _ => candle_core::bail!("gelu: only f32 and f64 run on this kernel"),
        };
        Ok((out, layout.shape().clone()))
    }
}

/// Exact GELU: the parallel kernel on the CPU (f32/f64), candle's op elsewhere.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    let cpu_float = x.device().is_cpu() && matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64);
    if cpu_float {
        x.contiguous()?.apply_op1_no_bwd(&GeluErf)
    } else {
        x.gelu_erf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bits_as_candles_gelu() {
        let v: Vec<f32> = (0..100_003).map(|i| (i as f32 - 50_000.0) * 1.7e-4).collect();
        let x = Tensor::from_vec(v, (100_003,), &candle_core::Device::Cpu).unwrap();
        let ours = gelu_erf(&x).unwrap().to_vec1::<f32>().unwrap();
        let theirs = x.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        assert!(ours.iter().zip(&theirs).all(|(a, b)| a.to_bits() == b.to_bits()));
        let x64 = x.to_dtype(candle_core::DType::F64).unwrap();
        let ours = gelu_erf(&x64).unwrap().to_vec1::<f64>().unwrap();
        let theirs = x64.gelu_erf().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(ours, theirs);
    }
}
