//! Weight loading: sharded safetensors load like one file; a missing or
//! mis-shaped tensor is an error naming it (and the expected shape), never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use headscan_worker::models::load_model;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name)
}

/// Copies a fixture with its safetensors rewritten by `edit`.
fn edited(name: &str, dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let p = entry.unwrap().path();
        let file = p.file_name().unwrap();
        if file != "model.safetensors" && file != "pytorch_model.bin" {
            std::fs::copy(&p, dir.join(file)).unwrap();
        }
    }
    let mut tensors =
        candle_core::safetensors::load(fixture(name).join("model.safetensors"), &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

#[test]
fn missing_tensor_is_named() {
    for (family, tensor) in [
        ("bert", "bert.encoder.layer.1.attention.self.key.weight"),
        ("esm2", "encoder.layer.0.attention.self.query.weight"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut removed = String::new();
        edited(family, tmp.path(), |t| {
            let key = t.keys().find(|k| k.ends_with(tensor)).unwrap().clone();
            t.remove(&key);
            removed = key;
        });
        let err = load_model(tmp.path(), &Device::Cpu)
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains(&removed) || err.contains(tensor), "{family}: {err}");
    }
}

#[test]
fn misshaped_tensor_names_the_expected_shape() {
    let tmp = tempfile::tempdir().unwrap();
    edited("bert", tmp.path(), |t| {
        t.insert(
            "bert.encoder.layer.0.attention.self.query.weight".into(),
            Tensor::zeros((16, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load_model(tmp.path(), &Device::Cpu)
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("query.weight"), "{err}");
    assert!(err.contains("32, 32") || err.contains("[32, 32]"), "{err}");
}

#[test]
fn sharded_safetensors_load_like_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    edited("esm2", tmp.path(), |_| {});
    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    let all =
        candle_core::safetensors::load(fixture("esm2").join("model.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let shard: HashMap<String, Tensor> = part.iter().map(|n| ((*n).clone(), all[*n].clone())).collect();
        candle_core::safetensors::save(&shard, tmp.path().join(file)).unwrap();
        for n in part {
            weight_map.insert((*n).clone(), serde_json::Value::String(file.into()));
        }
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(tmp.path().join("model.safetensors.index.json"), index.to_string()).unwrap();

    let sharded = load_model(tmp.path(), &Device::Cpu).unwrap();
    let whole = load_model(&fixture("esm2"), &Device::Cpu).unwrap();
    let enc = whole.tokenizer.encode("MKTAYIAKQR", 512);
    let input = whole.tokenizer.batch(&[enc], &Device::Cpu).unwrap();
    let (a, b) = (
        sharded.model.forward(&input, false).unwrap(),
        whole.model.forward(&input, false).unwrap(),
    );
    for (x, y) in a.attentions.iter().zip(&b.attentions) {
        let d: f32 = x
            .sub(y)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(d, 0.0);
    }
}

#[test]
fn large_f32_tensors_load_in_parallel_with_the_stored_bits() {
    // Over the 1 MiB parallel-copy threshold, with values that exercise every
    // byte (negative, subnormal, NaN payload kept as stored).
    let tmp = tempfile::tempdir().unwrap();
    let mut values: Vec<f32> = (0..600 * 700)
        .map(|i| ((i as f32) * 0.618_034).sin() * 1e3)
        .collect();
    values[1] = f32::from_bits(1);
    values[2] = -0.0;
    values[3] = f32::from_bits(0x7fc0_1234);
    let big = Tensor::from_vec(values.clone(), (600, 700), &Device::Cpu).unwrap();
    let small = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
    let tensors = HashMap::from([("big.weight".to_string(), big), ("small.bias".to_string(), small)]);
    candle_core::safetensors::save(&tensors, tmp.path().join("model.safetensors")).unwrap();
    let vb = headscan_worker::weights::open_weights(tmp.path(), &Device::Cpu, None, "").unwrap();
    let loaded = vb.get((600, 700), "big.weight").unwrap();
    let bits: Vec<u32> = loaded
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(bits, values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert_eq!(
        vb.get(3, "small.bias").unwrap().to_vec1::<f32>().unwrap(),
        vec![1.0, 2.0, 3.0]
    );
    let err = vb
        .get((700, 600), "big.weight")
        .expect_err("wrong shape must fail")
        .to_string();
    assert!(err.contains("big.weight") && err.contains("700"), "{err}");
}
