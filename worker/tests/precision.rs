//! bf16 mode: the families that implement it give attention within bf16's
//! rounding of the f32 model on every recorded fixture case (real query
//! rows), rows that still sum to 1 and padded keys that stay at 0; the
//! families that do not implement it refuse with an error naming them.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use headscan_worker::models::{ModelError, ModelInput, Precision, load_model_in};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name)
}

/// Every recorded case's input of a fixture.
fn cases(name: &str) -> Vec<ModelInput> {
    let dir = fixture(name);
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(dir.join("attentions.safetensors"), &Device::Cpu).unwrap();
    cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let get = |key: &str| {
                case["tensors"]
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(|n| tensors[n].to_dtype(DType::U32).unwrap())
            };
            ModelInput {
                input_ids: get("input_ids").unwrap(),
                attention_mask: get("attention_mask").unwrap(),
                token_type_ids: get("token_type_ids"),
            }
        })
        .collect()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn bf16_attention_is_f32_attention_within_bf16_rounding() {
    for name in ["bert", "tape_bert", "albert", "esm2", "esm1b"] {
        let f32_model = load_model_in(&fixture(name), &Device::Cpu, None, Precision::F32).unwrap();
        let bf16_model = load_model_in(&fixture(name), &Device::Cpu, None, Precision::Bf16)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (mut worst, mut total, mut n) = (0f32, 0f64, 0usize);
        for input in cases(name) {
            let exact = f32_model.model.forward(&input, false).unwrap();
            let half = bf16_model.model.forward(&input, false).unwrap();
            assert_eq!(half.attentions.len(), exact.attentions.len(), "{name}: layers");
            let mask: Vec<u32> = input.attention_mask.flatten_all().unwrap().to_vec1().unwrap();
            let (_, t) = input.attention_mask.dims2().unwrap();
            for (a, h) in exact.attentions.iter().zip(&half.attentions) {
                assert_eq!(
                    h.dtype(),
                    DType::F32,
                    "{name}: attention reaches the analysis in f32"
                );
                assert_eq!(a.dims(), h.dims(), "{name}: shape");
                let heads = a.dim(1).unwrap();
                let (a, h) = (values(a), values(h));
                for (row, (ra, rh)) in a.chunks(t).zip(h.chunks(t)).enumerate() {
                    let item = row / (heads * t);
                    if mask[item * t + row % t] == 0 {
                        continue; // padded query rows are not analysed
                    }
                    let sum: f32 = rh.iter().sum();
                    assert!((sum - 1.0).abs() < 0.02, "{name}: row sums to {sum}");
                    for (k, (x, y)) in ra.iter().zip(rh).enumerate() {
                        if mask[item * t + k] == 0 {
                            assert_eq!(*y, 0.0, "{name}: a padded key got weight");
                        }
                        worst = worst.max((x - y).abs());
                        total += f64::from((x - y).abs());
                        n += 1;
                    }
                }
            }
        }
        let mean = total / n as f64;
        eprintln!("{name}: bf16 vs f32 attention max |Δ| {worst:.4}, mean |Δ| {mean:.2e} over {n} weights");
        assert!(worst < 0.03, "{name}: max |Δ| {worst}");
        assert!(mean < 1.5e-3, "{name}: mean |Δ| {mean:e}");
    }
}

#[test]
fn families_without_bf16_refuse_it_by_name() {
    for name in ["xlnet", "t5"] {
        let err = load_model_in(&fixture(name), &Device::Cpu, None, Precision::Bf16)
            .err()
            .unwrap_or_else(|| panic!("{name}: bf16 must be refused"));
        assert!(matches!(err, ModelError::Precision { .. }), "{name}: {err}");
        let text = err.to_string();
        assert!(text.contains("bf16") && text.contains("f32"), "{text}");
    }
    assert_eq!(Precision::parse("").unwrap(), Precision::F32);
    assert_eq!(Precision::parse("bf16").unwrap(), Precision::Bf16);
    assert!(Precision::parse("fp8").unwrap_err().contains("fp8"));
}
