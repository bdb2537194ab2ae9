//! Golden tests: attention of every family equals Hugging Face transformers
//! (fixtures made by tests/golden/make_fixtures.py on tiny random models) to
//! 1e-5, from safetensors and from pytorch_model.bin, and the tokenizers give
//! the same ids as transformers' tokenizers. Each family also loads the same
//! weights stored under the other names transformers' loader accepts
//! (TensorFlow-era `gamma`/`beta`, with or without the base-model prefix).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use headscan_worker::models::{Family, ModelInput, detect_family, load_model_with, read_config};
use headscan_worker::weights::WeightFormat;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.sub(b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Runs every recorded case of a fixture and compares attentions (and hidden
/// states where recorded) over the real (unpadded) query rows.
fn check(name: &str, format: WeightFormat) {
    check_dir(name, &fixture(name), format);
}

/// [`check`] on the model in `dir` (a fixture or a renamed copy of one).
fn check_dir(name: &str, dir: &Path, format: WeightFormat) {
    let dir = dir.to_path_buf();
    let device = Device::Cpu;
    let model = load_model_with(&dir, &device, Some(format)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(dir.join("attentions.safetensors"), &device).unwrap();
    for case in cases["cases"].as_array().unwrap() {
        let names = &case["tensors"];
        let get = |key: &str| {
            names
                .get(key)
                .and_then(|v| v.as_str())
                .and_then(|n| tensors.get(n))
                .cloned()
        };
        let input_ids = get("input_ids").unwrap().to_dtype(DType::U32).unwrap();
        let attention_mask = get("attention_mask").unwrap().to_dtype(DType::U32).unwrap();
        let token_type_ids = get("token_type_ids").map(|t| t.to_dtype(DType::U32).unwrap());
        let input = ModelInput {
            input_ids: input_ids.clone(),
            attention_mask: attention_mask.clone(),
            token_type_ids,
        };
        let out = model
            .model
            .forward(&input, true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: Vec<Tensor> = names["attentions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| tensors[n.as_str().unwrap()].clone())
            .collect();
        assert_eq!(out.attentions.len(), expected.len(), "{name}: layer count");
        // Query rows of real tokens: [B, 1, T, 1] mask.
        let (b, t) = attention_mask.dims2().unwrap();
        let rows = attention_mask
            .to_dtype(DType::F32)
            .unwrap()
            .reshape((b, 1, t, 1))
            .unwrap();
        for (l, (got, want)) in out.attentions.iter().zip(&expected).enumerate() {
            assert_eq!(
                got.dims(),
                want.dims(),
                "{name} case {} layer {l}: shape",
                case["case"]
            );
            let diff = max_abs_diff(
                &got.broadcast_mul(&rows).unwrap(),
                &want.broadcast_mul(&rows).unwrap(),
            );
            assert!(
                diff <= 1e-5,
                "{name} case {} layer {l}: max |Δ| = {diff:e}",
                case["case"]
            );
        }
        if let Some(want) = get("hidden") {
            let got = out.hidden.expect("hidden states requested");
            let rows = attention_mask
                .to_dtype(DType::F32)
                .unwrap()
                .reshape((b, t, 1))
                .unwrap();
            let diff = max_abs_diff(
                &got.broadcast_mul(&rows).unwrap(),
                &want.broadcast_mul(&rows).unwrap(),
            );
            assert!(
                diff <= 1e-4,
                "{name} case {}: hidden max |Δ| = {diff:e}",
                case["case"]
            );
        }
        // The tokenizer reproduces transformers' ids (unpadded part).
        for (k, seq) in case["sequences"].as_array().unwrap().iter().enumerate() {
            let enc = model.tokenizer.encode(seq.as_str().unwrap(), 1024);
            let recorded: Vec<u32> = case["input_ids"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let batch = model
                .tokenizer
                .batch(std::slice::from_ref(&enc), &device)
                .unwrap();
            let ours: Vec<u32> = batch.input_ids.flatten_all().unwrap().to_vec1().unwrap();
            let pad = model
                .tokenizer
                .token_id(if name == "bert" { "[PAD]" } else { "<pad>" })
                .unwrap();
            let trimmed: Vec<u32> = recorded.iter().copied().filter(|id| *id != pad).collect();
            assert_eq!(ours, trimmed, "{name}: tokens of {seq}");
        }
    }
}

/// safetensors and pytorch_model.bin give identical attention.
fn same_from_both_formats(name: &str) {
    let dir = fixture(name);
    let device = Device::Cpu;
    let a = load_model_with(&dir, &device, Some(WeightFormat::Safetensors)).unwrap();
    let b = load_model_with(&dir, &device, Some(WeightFormat::PyTorch)).unwrap();
    let enc = a.tokenizer.encode("MKTAYIAKQRQISFVKSHFSRQ", 512);
    let input = a.tokenizer.batch(&[enc], &device).unwrap();
    let (oa, ob) = (
        a.model.forward(&input, false).unwrap(),
        b.model.forward(&input, false).unwrap(),
    );
    for (x, y) in oa.attentions.iter().zip(&ob.attentions) {
        assert_eq!(max_abs_diff(x, y), 0.0, "{name}");
    }
}

/// Names as the other convention stores them: LayerNorm `weight`/`bias` as
/// `gamma`/`beta` (transformers 5 writes ESM's so), and the base-model prefix
/// added where the fixture has none, dropped where it has one.
fn other_name(stored: &str, prefix: &str, add_prefix: bool) -> String {
    let is_norm = stored.contains("LayerNorm") || stored.contains("layer_norm");
    let mut name = match stored.rsplit_once('.') {
        Some((head, "weight")) if is_norm => format!("{head}.gamma"),
        Some((head, "bias")) if is_norm => format!("{head}.beta"),
        _ => stored.to_string(),
    };
    if !prefix.is_empty() {
        name = match name.strip_prefix(&format!("{prefix}.")) {
            Some(bare) if !add_prefix => bare.to_string(),
            Some(_) => name,
            None if add_prefix => format!("{prefix}.{name}"),
            None => name,
        };
    }
    name
}

/// A copy of fixture `name` whose model.safetensors stores every tensor under
/// the other naming; returns the copy and how many names changed.
fn renamed_copy(name: &str) -> (tempfile::TempDir, usize) {
    let src = fixture(name);
    let dst = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if file != "model.safetensors" && file != "pytorch_model.bin" {
            std::fs::copy(&path, dst.path().join(&file)).unwrap();
        }
    }
    let family: Family = detect_family(&read_config(&src).unwrap()).unwrap();
    let prefix = family.base_model_prefix();
    let tensors = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let add_prefix = !tensors.keys().any(|k| k.starts_with(&format!("{prefix}.")));
    let mut changed = 0;
    let renamed: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, v)| {
            let n = other_name(&k, prefix, add_prefix);
            changed += usize::from(n != k);
            (n, v)
        })
        .collect();
    candle_core::safetensors::save(&renamed, dst.path().join("model.safetensors")).unwrap();
    (dst, changed)
}

/// The fixture's weights under the other naming give the same attention.
fn other_naming(name: &str) {
    let (dir, changed) = renamed_copy(name);
    assert!(changed > 0, "{name}: nothing renamed");
    check_dir(name, dir.path(), WeightFormat::Safetensors);
}

macro_rules! golden {
    ($($test:ident => $name:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            check($name, WeightFormat::Safetensors);
            check($name, WeightFormat::PyTorch);
            same_from_both_formats($name);
            other_naming($name);
        }
    )*};
}

golden! {
    bert => "bert",
    tape_bert => "tape_bert",
    albert => "albert",
    xlnet => "xlnet",
    esm2 => "esm2",
    esm1b => "esm1b",
    t5 => "t5",
}

/// A checkpoint exactly as transformers 5's save_pretrained writes it (ESM
/// LayerNorms as `gamma`/`beta`; tests/golden/make_tf5_fixture.py) loads and
/// gives transformers' attention.
#[test]
fn esm2_saved_by_transformers_5() {
    let dir = fixture("esm2_tf5");
    let device = Device::Cpu;
    let model = load_model_with(&dir, &device, None).unwrap_or_else(|e| panic!("esm2_tf5: {e}"));
    let enc = model.tokenizer.encode("MKTAYIAKQR", 512);
    let input = model.tokenizer.batch(&[enc], &device).unwrap();
    let out = model.model.forward(&input, false).unwrap();
    let want = Tensor::read_npy(dir.join("attentions.npy")).unwrap();
    let got = Tensor::stack(&out.attentions, 0).unwrap().squeeze(1).unwrap();
    assert_eq!(got.dims(), want.dims());
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= 1e-5, "esm2_tf5: max |Δ| = {diff:e}");
}
