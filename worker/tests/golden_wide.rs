//! Golden tests at realistic width (ESM-2-shaped hidden 640 with rotary;
//! BERT-, ALBERT-, XLNet- and T5-shaped hidden 1024), with word embeddings
//! centred on 0 and offset by +50, the large residual-stream mean of real
//! checkpoints that a one-pass LayerNorm turns into NaN.
//!
//! The weights are not committed: tests/golden/make_wide_fixtures.py made
//! them from SplitMix64 and recorded the recipe in `weights.json`; this test
//! rebuilds them bit for bit, writes a model.safetensors and loads it through
//! the ordinary loader. At offset 0 headscan must equal transformers' float32
//! to 1e-5; at offset 50 it must be as close to transformers' float64 as
//! transformers' own float32 is (at most twice its max error, per layer, or
//! 1e-6 where that error is at float32 rounding).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use headscan_worker::models::{ModelInput, load_model};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wide")
}

/// `n` uniforms in [0, 1) with 24 bits: SplitMix64 of
/// `(seed ^ tensor_index << 40) + element`, as the fixture script draws them.
fn uniforms(seed: u64, tensor_index: u64, n: usize) -> Vec<f32> {
    let base = seed ^ (tensor_index << 40);
    (0..n as u64)
        .map(|i| {
            let mut z = base.wrapping_add(i).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / 16_777_216.0
        })
        .collect()
}

/// Writes the fixture's model (config, tokenizer files, generated weights)
/// into a temporary directory.
fn materialise(fixture: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "config.json",
        "vocab.txt",
        "spiece.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        if fixture.join(name).is_file() {
            std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
        }
    }
    let recipe: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("weights.json")).unwrap()).unwrap();
    let seed = recipe["seed"].as_u64().unwrap();
    let mut tensors = HashMap::new();
    for t in recipe["tensors"].as_array().unwrap() {
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let n = shape.iter().product::<usize>();
        let values: Vec<f32> = match t.get("values") {
            Some(v) => v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
            None => {
                let (scale, offset) = (
                    t["scale"].as_f64().unwrap() as f32,
                    t["offset"].as_f64().unwrap() as f32,
                );
                uniforms(seed, t["index"].as_u64().unwrap(), n)
                    .into_iter()
                    .map(|u| (u * 2.0 - 1.0) * scale + offset)
                    .collect()
            }
        };
        assert_eq!(values.len(), n, "{}", t["name"]);
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
        tensors.insert(t["name"].as_str().unwrap().to_string(), tensor);
    }
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    dir
}

fn ids(case: &serde_json::Value, key: &str) -> Option<Tensor> {
    let rows: Vec<Vec<u32>> = case
        .get(key)
        .filter(|v| !v.is_null())?
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    Some(Tensor::new(rows, &Device::Cpu).unwrap())
}

/// Max |Δ| per layer between headscan's attention and the fixture's reference.
fn layer_errors(name: &str) -> (serde_json::Value, Vec<f32>) {
    let fixture = fixtures().join(name);
    let case: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("cases.json")).unwrap()).unwrap();
    let model_dir = materialise(&fixture);
    let model = load_model(model_dir.path(), &Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
    let input = ModelInput {
        input_ids: ids(&case, "input_ids").unwrap(),
        attention_mask: ids(&case, "attention_mask").unwrap(),
        token_type_ids: ids(&case, "token_type_ids"),
    };
    let out = model.model.forward(&input, false).unwrap();
    let expected =
        candle_core::safetensors::load(fixture.join("expected.safetensors"), &Device::Cpu).unwrap();
    let errors = out
        .attentions
        .iter()
        .enumerate()
        .map(|(l, got)| {
            let want = &expected[&format!("layer{l}")];
            assert_eq!(got.dims(), want.dims(), "{name} layer {l}");
            let got = got.to_dtype(DType::F32).unwrap();
            let diff: Vec<f32> = got
                .sub(want)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            // NaN compares false with everything: make it the largest error.
            diff.into_iter()
                .fold(0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) })
        })
        .collect();
    (case, errors)
}

/// Offset 0: equal to transformers' float32 to 1e-5.
fn centred(family: &str) {
    let name = format!("{family}_offset0");
    let (_, errors) = layer_errors(&name);
    eprintln!("{name}: max |headscan − transformers f32| per layer {errors:?}");
    for (l, e) in errors.iter().enumerate() {
        assert!(*e <= 1e-5, "{name} layer {l}: max |Δ| = {e:e}");
    }
}

/// Offset +50: within twice transformers' own float32 error of float64.
fn offset(family: &str) {
    let name = format!("{family}_offset50");
    let (case, errors) = layer_errors(&name);
    let bound: Vec<f64> = case["transformers_f32_max_error_vs_f64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    eprintln!("{name}: max |headscan − transformers f64| per layer {errors:?}; transformers f32: {bound:?}");
    for (l, (e, b)) in errors.iter().zip(&bound).enumerate() {
        // Below 1e-6 both are at float32 rounding (T5's RMS norm has no mean
        // to lose): twice a lucky rounding is no bound.
        assert!(
            f64::from(*e) <= (2.0 * b).max(1e-6),
            "{name} layer {l}: max |Δ| vs float64 = {e:e}, transformers float32 = {b:e}"
        );
    }
}

macro_rules! wide {
    ($($test:ident => $family:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            centred($family);
            offset($family);
        }
    )*};
}

wide! {
    esm2_640_rotary => "esm2",
    bert_1024 => "bert",
    albert_1024 => "albert",
    xlnet_1024 => "xlnet",
    t5_1024 => "t5",
}
