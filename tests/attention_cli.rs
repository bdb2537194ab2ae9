//! `headscan attention`: the .npy it writes equals the recorded transformers
//! attention of the fixture models, with and without special tokens; long
//! sequences are truncated, never a panic; bad models give clear errors.

mod common;

use std::path::{Path, PathBuf};

use common::headscan;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// Reads a float32 .npy: (shape, values).
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let values = bytes[10 + hlen..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, values)
}

fn attention(model: &Path, sequence: &str, extra: &[&str]) -> (Vec<usize>, Vec<f32>) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a.npy");
    let mut args = vec![
        "attention",
        "--model",
        model.to_str().unwrap(),
        "--sequence",
        sequence,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = headscan(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    read_npy(&out)
}

/// The recorded attention of case 0 ("MKTAYIAKQR", one sequence, no padding): [layers][h][i][j].
fn recorded_case0(name: &str) -> (Vec<usize>, Vec<f32>) {
    let dir = fixture(name);
    let tensors =
        candle_core::safetensors::load(dir.join("attentions.safetensors"), &candle_core::Device::Cpu)
            .unwrap();
    let mut layers = Vec::new();
    let mut l = 0;
    while let Some(t) = tensors.get(&format!("case0.layer{l}")) {
        layers.push(t.squeeze(0).unwrap());
        l += 1;
    }
    let stacked = candle_core::Tensor::stack(&layers, 0).unwrap();
    (
        stacked.dims().to_vec(),
        stacked.flatten_all().unwrap().to_vec1().unwrap(),
    )
}

#[test]
fn npy_matches_transformers_with_and_without_specials() {
    for (name, lead) in [("bert", 1usize), ("esm2", 1), ("t5", 0), ("xlnet", 0)] {
        let (shape_all, recorded) = recorded_case0(name);
        let (shape, values) = attention(&fixture(name), "MKTAYIAKQR", &["--keep-special"]);
        assert_eq!(shape, shape_all, "{name}");
        let diff = values
            .iter()
            .zip(&recorded)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-5, "{name}: max |Δ| {diff:e}");

        let (shape, values) = attention(&fixture(name), "MKTAYIAKQR", &[]);
        let (layers, heads, t) = (shape_all[0], shape_all[1], shape_all[2]);
        assert_eq!(shape, vec![layers, heads, 10, 10], "{name}: specials removed");
        // Row i, column j of residues = token (lead + i, lead + j): not renormalised.
        for l in 0..layers {
            for h in 0..heads {
                for i in 0..10 {
                    for j in 0..10 {
                        let want = recorded[((l * heads + h) * t + lead + i) * t + lead + j];
                        let got = values[((l * heads + h) * 10 + i) * 10 + j];
                        assert!((got - want).abs() <= 1e-5, "{name} l{l} h{h} ({i},{j})");
                    }
                }
            }
        }
    }
}

#[test]
fn long_sequences_are_truncated_to_the_position_limit() {
    // The BERT fixture has 40 positions: 38 residues + [CLS] + [SEP].
    let long = "MKTAYIAKQR".repeat(10);
    let (shape, _) = attention(&fixture("bert"), &long, &[]);
    assert_eq!(&shape[2..], &[38, 38]);
    let (shape, _) = attention(&fixture("bert"), &long, &["--max-len", "12"]);
    assert_eq!(&shape[2..], &[10, 10]);
}

#[test]
fn unknown_model_type_names_the_supported_families() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "vocab.txt", "model.safetensors"] {
        std::fs::copy(fixture("bert").join(f), tmp.path().join(f)).unwrap();
    }
    let config = std::fs::read_to_string(tmp.path().join("config.json"))
        .unwrap()
        .replace("\"bert\"", "\"gpt2\"");
    std::fs::write(tmp.path().join("config.json"), config).unwrap();
    let out = tmp.path().join("a.npy");
    let o = headscan(&[
        "attention",
        "--model",
        tmp.path().to_str().unwrap(),
        "--sequence",
        "MKT",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("gpt2") && err.contains("bert") && err.contains("esm") && err.contains("xlnet"),
        "{err}"
    );
}

#[test]
fn bad_sequences_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a.npy");
    let o = headscan(&[
        "attention",
        "--model",
        fixture("bert").to_str().unwrap(),
        "--sequence",
        "MK1T",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("position 3"));
}
