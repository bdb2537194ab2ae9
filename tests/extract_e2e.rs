//! `headscan extract` end to end on the tiny fixture models: the shards hold
//! one row per (record, layer, kept residue) with the model's own layer
//! outputs, the manifest describes them, and the bytes do not depend on the
//! batch size.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use common::{headscan, ingest_ok};
use headscan_proto::embeddings::{EmbeddingManifest, EmbeddingRows, read_embeddings};

const FASTA: &str =
    ">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nMVLSPADKTNVKAAW\n>c\nGSHMK\n>d\nMKKLLPTAAAGLLLLAAQPAMAMDIGINSDP\n";

fn model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn dataset(dir: &Path, shard_rows: &str) -> PathBuf {
    let fasta = dir.join("in.fasta");
    std::fs::write(&fasta, FASTA).unwrap();
    let out = dir.join(format!("ds{shard_rows}"));
    ingest_ok("fasta", &fasta, &out, &["--shard-rows", shard_rows]);
    out
}

fn extract(model_name: &str, ds: &Path, out: &Path, extra: &[&str]) -> EmbeddingManifest {
    let m = model(model_name);
    let mut args = vec![
        "extract",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = headscan(&args);
    assert!(
        o.status.success(),
        "extract failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.join("embeddings.json")).unwrap()).unwrap()
}

fn all_rows(out: &Path, m: &EmbeddingManifest) -> EmbeddingRows {
    let mut all = EmbeddingRows::new(m.dim);
    for s in &m.shards {
        let bytes = std::fs::read(out.join(&s.url)).unwrap();
        let part = read_embeddings(bytes.into(), &s.url).unwrap();
        assert_eq!(part.len() as u64, s.rows);
        all.ids.extend(part.ids);
        all.positions.extend(part.positions);
        all.layers.extend(part.layers);
        all.values.extend(part.values);
    }
    all
}

/// (id, layer, position) → vector.
fn by_key(rows: &EmbeddingRows) -> BTreeMap<(String, i32, i32), Vec<f32>> {
    (0..rows.len())
        .map(|r| {
            let v = rows.values[r * rows.dim..(r + 1) * rows.dim].to_vec();
            ((rows.ids[r].clone(), rows.layers[r], rows.positions[r]), v)
        })
        .collect()
}

/// The model's own layer outputs for one sequence, run alone (no padding).
fn direct(model_name: &str, seq: &str, layer: usize) -> Vec<Vec<f32>> {
    let m = headscan_worker::models::load_model(&model(model_name), &Device::Cpu).unwrap();
    let enc = m.tokenizer.encode(seq, 512);
    let input = m
        .tokenizer
        .batch(std::slice::from_ref(&enc), &Device::Cpu)
        .unwrap();
    let out = m.model.forward(&input, true).unwrap();
    let h: Vec<Vec<Vec<f32>>> = out.layer_hidden[layer].to_vec3().unwrap();
    (0..enc.ids.len())
        .filter(|&t| !enc.special[t])
        .map(|t| h[0][t].clone())
        .collect()
}

#[test]
fn rows_are_the_models_layer_outputs_per_residue() {
    // bert pads right; xlnet pads left and puts its specials last.
    for name in ["bert", "xlnet", "esm2"] {
        let tmp = tempfile::tempdir().unwrap();
        let ds = dataset(tmp.path(), "2");
        let out = tmp.path().join("emb");
        let m = extract(name, &ds, &out, &["--layers", "0,1", "--batch-size", "3"]);
        assert_eq!(m.layers, vec![0, 1]);
        assert_eq!(m.records, 4);
        assert_eq!(m.shards.len(), 2, "one embedding shard per dataset shard");
        let residues = 22 + 15 + 5 + 31;
        assert_eq!(m.rows, 2 * residues, "{name}");
        let rows = all_rows(&out, &m);
        let map = by_key(&rows);
        assert_eq!(
            map.len() as u64,
            m.rows,
            "{name}: (id, layer, position) is unique"
        );
        for (id, seq) in [
            ("a", "MKTAYIAKQRQISFVKSHFSRQ"),
            ("d", "MKKLLPTAAAGLLLLAAQPAMAMDIGINSDP"),
        ] {
            for layer in [0usize, 1] {
                let want = direct(name, seq, layer);
                assert_eq!(want.len(), seq.len());
                for (pos, w) in want.iter().enumerate() {
                    let got = &map[&(id.to_string(), layer as i32, pos as i32)];
                    let d = got.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(d <= 1e-4, "{name} {id} layer {layer} position {pos}: |Δ| = {d:e}");
                }
            }
        }
    }
}

#[test]
fn same_bytes_whatever_the_batch_size_and_one_layer_subset() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), "10");
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let ma = extract("bert", &ds, &a, &["--batch-size", "1"]);
    let mb = extract("bert", &ds, &b, &["--batch-size", "8"]);
    assert_eq!(ma.layers, vec![0, 1], "`all` is every layer");
    let (ra, rb) = (by_key(&all_rows(&a, &ma)), by_key(&all_rows(&b, &mb)));
    assert_eq!(ra, rb);
    let c = tmp.path().join("c");
    let mc = extract("bert", &ds, &c, &["--layers", "1"]);
    for (k, v) in by_key(&all_rows(&c, &mc)) {
        assert_eq!(k.1, 1);
        assert_eq!(ra[&k], v, "layer 1 alone equals layer 1 of all");
    }
}

#[test]
fn bad_layers_and_existing_output_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), "10");
    let out = tmp.path().join("e");
    let m = model("bert");
    let base = [
        "extract",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        ds.to_str().unwrap(),
    ];
    let mut args = base.to_vec();
    args.extend(["--out", out.to_str().unwrap(), "--layers", "0,7"]);
    let o = headscan(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("layer 7 does not exist"), "{err}");
    extract("bert", &ds, &out, &[]);
    let mut again = base.to_vec();
    again.extend(["--out", out.to_str().unwrap()]);
    let o = headscan(&again);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    extract("bert", &ds, &out, &["--overwrite"]);
}
