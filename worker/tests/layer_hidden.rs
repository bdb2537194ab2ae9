//! Per-layer hidden states (`ModelOutput::layer_hidden`), the input of the
//! embedding probes: one per layer, the last equal to the final hidden state,
//! and asking for them changes no attention. For the families without a final
//! layer norm, layer l's output is checked against an independent run: the
//! same weights with `l + 1` layers, whose final hidden state must match.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use headscan_worker::models::{LoadedModel, ModelInput, load_model};

const SEQ: &str = "MKTAYIAKQRQISFVKSHFSRQ";

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

fn input(model: &LoadedModel) -> ModelInput {
    let enc = model.tokenizer.encode(SEQ, 512);
    model.tokenizer.batch(&[enc], &Device::Cpu).unwrap()
}

#[test]
fn every_family_returns_one_hidden_state_per_layer_without_changing_attention() {
    for name in [
        "bert",
        "tape_bert",
        "albert",
        "xlnet",
        "esm1b",
        "esm2",
        "esm2_tf5",
        "t5",
    ] {
        let model = load_model(&fixture(name), &Device::Cpu).unwrap();
        let input = input(&model);
        let plain = model.model.forward(&input, false).unwrap();
        assert!(plain.layer_hidden.is_empty(), "{name}: not asked for");
        let out = model.model.forward(&input, true).unwrap();
        assert_eq!(out.layer_hidden.len(), model.model.n_layers(), "{name}");
        for (a, b) in plain.attentions.iter().zip(&out.attentions) {
            assert_eq!(max_abs_diff(a, b), 0.0, "{name}: attention changed");
        }
        let hidden = out.hidden.as_ref().unwrap();
        let last = out.layer_hidden.last().unwrap();
        assert_eq!(
            max_abs_diff(hidden, last),
            0.0,
            "{name}: last layer is the final state"
        );
        let dims = hidden.dims().to_vec();
        for (l, h) in out.layer_hidden.iter().enumerate() {
            assert_eq!(h.dims(), dims.as_slice(), "{name} layer {l}");
        }
        // Layers transform their input: consecutive states differ.
        for l in 1..out.layer_hidden.len() {
            let d = max_abs_diff(&out.layer_hidden[l - 1], &out.layer_hidden[l]);
            assert!(d > 1e-4, "{name}: layers {} and {l} are identical", l - 1);
        }
    }
}

/// A copy of a fixture's files with `key` in config.json set to `layers`.
fn truncated(name: &str, key: &str, layers: usize, dir: &Path) {
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    config[key] = serde_json::json!(layers);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
}

#[test]
fn layer_outputs_equal_the_final_state_of_a_shallower_copy() {
    for (name, key) in [
        ("bert", "num_hidden_layers"),
        ("tape_bert", "num_hidden_layers"),
        ("xlnet", "n_layer"),
    ] {
        let full = load_model(&fixture(name), &Device::Cpu).unwrap();
        let out = full.model.forward(&input(&full), true).unwrap();
        for l in 0..full.model.n_layers() - 1 {
            let tmp = tempfile::tempdir().unwrap();
            truncated(name, key, l + 1, tmp.path());
            let short = load_model(tmp.path(), &Device::Cpu).unwrap();
            assert_eq!(short.model.n_layers(), l + 1);
            let got = short.model.forward(&input(&short), true).unwrap();
            let d = max_abs_diff(got.hidden.as_ref().unwrap(), &out.layer_hidden[l]);
            assert!(d <= 1e-5, "{name} layer {l}: max |Δ| = {d:e}");
        }
    }
}
