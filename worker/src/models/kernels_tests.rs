//! Unit tests of the CPU kernels: accuracy against f64, and the bits of the
//! tensor ops each in-place epilogue replaces.
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

/// Deterministic pseudo-random values in [-2, 2).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn tensor(n: &[usize], seed: u64) -> Tensor {
    let len = n.iter().product();
    Tensor::from_vec(noise(len, seed), n, &candle_core::Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn in_place_epilogues_give_the_bits_of_the_tensor_ops() {
    use candle_core::Module;
    // 70 output features: rows that are not a multiple of the 8 lanes.
    let layer = candle_nn::Linear::new(tensor(&[70, 33], 1), Some(tensor(&[70], 2)));
    let x = tensor(&[3, 9, 33], 3);
    let reference = layer.forward(&x).unwrap();
    assert_eq!(bits(&linear(&layer, &x).unwrap()), bits(&reference));
    let residual = tensor(&[3, 9, 70], 4);
    assert_eq!(
        bits(&linear_residual(&layer, &x, &residual).unwrap()),
        bits(&(&reference + &residual).unwrap())
    );
    let gelu = linear_activation(&layer, &x, super::super::common::Activation::Gelu).unwrap();
    assert_eq!(bits(&gelu), bits(&gelu_erf(&reference).unwrap()));
    // Scores [batch 3, heads 2, 9, 9] with the last keys of two items masked.
    let scores = tensor(&[3, 2, 9, 9], 5);
    let mut keep = vec![1f32; 27];
    keep[7] = 0.0;
    keep[8] = 0.0;
    keep[26] = 0.0;
    let mask = Tensor::from_vec(keep, (3, 9), &candle_core::Device::Cpu).unwrap();
    for value in [f32::MIN, -10_000.0] {
        let additive = mask
            .affine(-1.0, 1.0)
            .unwrap()
            .affine(f64::from(value), 0.0)
            .unwrap()
            .reshape((3, 1, 1, 9))
            .unwrap();
        for factor in [Some(0.125), None] {
            let expected = match factor {
                Some(f) => {
                    softmax_last_dim(&scale(&scores, f).unwrap().broadcast_add(&additive).unwrap()).unwrap()
                }
                None => softmax_last_dim(&scores.broadcast_add(&additive).unwrap()).unwrap(),
            };
            let ours = attention_probs(scores.copy().unwrap(), &additive, factor).unwrap();
            assert_eq!(bits(&ours), bits(&expected), "mask {value}, scale {factor:?}");
        }
    }
    // Elsewhere (f64) the tensor ops run and agree.
    let layer64 = candle_nn::Linear::new(
        layer.weight().to_dtype(DType::F64).unwrap(),
        layer.bias().map(|b| b.to_dtype(DType::F64).unwrap()),
    );
    let x64 = x.to_dtype(DType::F64).unwrap();
    let diff = (linear(&layer64, &x64).unwrap() - layer64.forward(&x64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert_eq!(diff, 0.0);
}

#[test]
fn layer_norm_kernel_matches_the_tensor_ops_and_f64() {
    use candle_core::Module;
    // Rows of 1024 (the vectorised path) and 37 (a remainder), with a large offset
    // whose rounding the double centring keeps out of the variance.
    for dim in [1024usize, 37] {
        let norm = super::super::common::LayerNorm::from_parts(tensor(&[dim], 6), tensor(&[dim], 7), 1e-12);
        let x = (tensor(&[2, 5, dim], 8) + 300.0).unwrap();
        let ours = norm.forward(&x).unwrap();
        let owned = norm.forward_owned(x.copy().unwrap()).unwrap();
        assert_eq!(bits(&ours), bits(&owned));
        let ops = norm.forward_ops(&x).unwrap();
        let f64_norm = super::super::common::LayerNorm::from_parts(
            tensor(&[dim], 6).to_dtype(DType::F64).unwrap(),
            tensor(&[dim], 7).to_dtype(DType::F64).unwrap(),
            1e-12,
        );
        let exact = f64_norm.forward_ops(&x.to_dtype(DType::F64).unwrap()).unwrap();
        let (ours, ops, exact) = (
            ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ops.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            exact.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        );
        let worst = |v: &[f32]| {
            v.iter()
                .zip(&exact)
                .map(|(a, e)| (f64::from(*a) - e).abs())
                .fold(0f64, f64::max)
        };
        assert!(worst(&ours) < 1e-5, "kernel vs f64: {:e}", worst(&ours));
        assert!(
            worst(&ours) <= 2.0 * worst(&ops).max(1e-6),
            "kernel {:e} vs ops {:e}",
            worst(&ours),
            worst(&ops)
        );
    }
}

#[test]
fn bf16_layer_norm_normalises_in_f32_and_rounds_once() {
    use candle_core::Module;
    // Rows of 1024 around 300: summed in bf16 the mean would lose most digits.
    let norm = super::super::common::LayerNorm::from_parts(
        tensor(&[1024], 9).to_dtype(DType::BF16).unwrap(),
        tensor(&[1024], 10).to_dtype(DType::BF16).unwrap(),
        1e-12,
    );
    let x = (tensor(&[4, 1024], 11) + 300.0)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    let half = norm.forward(&x).unwrap();
    assert_eq!(half.dtype(), DType::BF16);
    let wide = super::super::common::LayerNorm::from_parts(
        tensor(&[1024], 9)
            .to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap(),
        tensor(&[1024], 10)
            .to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap(),
        1e-12,
    );
    let exact = wide.forward(&x.to_dtype(DType::F32).unwrap()).unwrap();
    let rounded = exact.to_dtype(DType::BF16).unwrap();
    assert_eq!(
        bits(&half.to_dtype(DType::F32).unwrap()),
        bits(&rounded.to_dtype(DType::F32).unwrap())
    );
    assert_eq!(
        bits(
            &norm
                .forward_owned(x.clone())
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
        ),
        bits(&rounded.to_dtype(DType::F32).unwrap())
    );
}
