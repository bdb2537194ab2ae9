//! `headscan extract` end to end on the tiny fixture models: the shards hold
//! one row per (record, layer, kept residue) with the model's own layer
//! outputs, the manifest describes them, and the bytes do not depend on the
//! batch size.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use common::{headscan, ingest_ok, model_command_ok};
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
    model_command_ok("extract", &model(model_name), ds, out, extra);
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

#[test]
fn attention_pairs_hold_both_directions_of_every_head() {
    use arrow::array::{Array, FixedSizeListArray, Float32Array, Int32Array, StringArray};
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), "10");
    let out = tmp.path().join("emb");
    let m = extract("bert", &ds, &out, &["--layers", "1", "--attention-pairs"]);
    assert_eq!(m.pair_shards.len(), 1);
    let heads = m.heads;
    assert!(heads > 0);
    // Pairs i < j with j − i ≥ 6: (L − 6)(L − 5) / 2 per record.
    let expected: usize = [22usize, 15, 5, 31]
        .iter()
        .map(|&l| if l > 6 { (l - 6) * (l - 5) / 2 } else { 0 })
        .sum();
    assert_eq!(m.pair_shards[0].rows as usize, expected);
    let file = std::fs::File::open(out.join(&m.pair_shards[0].url)).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let model = headscan_worker::models::load_model(&model("bert"), &Device::Cpu).unwrap();
    let seq = "MKTAYIAKQRQISFVKSHFSRQ";
    let dense =
        headscan_worker::attention::sequence_attention(&model, seq, 512, false, &Device::Cpu).unwrap();
    let l = dense.residues;
    let at = |h: usize, i: usize, j: usize| dense.values[((heads + h) * l + i) * l + j];
    let mut checked = 0;
    for batch in reader {
        let b = batch.unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let ids = col("id");
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        let (ci, cj, cl) = (col("i"), col("j"), col("layer"));
        let (ci, cj, cl) = (
            ci.as_any().downcast_ref::<Int32Array>().unwrap(),
            cj.as_any().downcast_ref::<Int32Array>().unwrap(),
            cl.as_any().downcast_ref::<Int32Array>().unwrap(),
        );
        let att = col("attention");
        let att = att.as_any().downcast_ref::<FixedSizeListArray>().unwrap();
        for r in 0..b.num_rows() {
            assert_eq!(cl.value(r), 1);
            let (i, j) = (ci.value(r) as usize, cj.value(r) as usize);
            assert!(j >= i + 6);
            if ids.value(r) != "a" {
                continue;
            }
            let v = att.value(r);
            let v = v.as_any().downcast_ref::<Float32Array>().unwrap();
            assert_eq!(v.len(), 2 * heads);
            for h in 0..heads {
                assert!((v.value(h) - at(h, i, j)).abs() <= 1e-6);
                assert!((v.value(heads + h) - at(h, j, i)).abs() <= 1e-6);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (22 - 6) * (22 - 5) / 2);
}
