//! The weighted null as written to `heads.parquet` (DESIGN §1, §4): the engine
//! accumulates the exact moments of the row-permutation null of the weighted
//! hits, the statistics scale them to the weighted proportion and the writer
//! publishes `null_weighted_mean_exact`, `null_weighted_std_exact` and
//! `null_weighted_z`. Those columns, read back from the Parquet file, must
//! agree with brute force: permuting each query row's weights among the row's
//! residue keys many times on small random attention (mean within 4 standard
//! errors, std within 2% — a missing n/(n−1) factor would be off by ≥ 3%).

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt32Array};
use candle_core::{Device, Tensor};
use headscan_coordinator::stats::{StatsOptions, compute};
use headscan_proto::features::ContactRule;
use headscan_proto::record::ProteinRecord;
use headscan_proto::store::Location;
use headscan_worker::analysis::accumulate::{Accumulator, SequenceInput};
use headscan_worker::analysis::features::{FeatureKind, RecordFeatures, expand, record_features};
use headscan_worker::tokenizer::Encoded;

/// Permutations of every row per head.
const PERMUTATIONS: usize = 20_000;
const HEADS: usize = 3;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random protein with a compact Cα walk (so contacts exist) and binding sites.
fn record(rng: &mut Rng, k: usize) -> ProteinRecord {
    let len = 10 + rng.below(7);
    let aa = b"ACDEFGHIKLMNPQRSTVWY";
    let seq: String = (0..len).map(|_| aa[rng.below(20)] as char).collect();
    let mut r = ProteinRecord::new(format!("w{k}"), seq, "test");
    let mut xyz = [0f32; 3];
    let mut ca = Vec::new();
    for _ in 0..len {
        for v in xyz.iter_mut() {
            *v += (rng.unit() as f32 - 0.5) * 5.0;
        }
        ca.extend(xyz);
    }
    r.ca_coords = Some(ca);
    r.resolved = Some(vec![true; len]);
    r.binding_sites = Some((0..len as i32).filter(|_| rng.unit() < 0.3).collect());
    r
}

/// `[CLS] residues [SEP]`, padded on the right to the batch length.
fn encode(len: usize) -> Encoded {
    let mut special = vec![true];
    special.extend(std::iter::repeat_n(false, len));
    special.push(true);
    Encoded {
        ids: vec![7; special.len()],
        type_ids: vec![0; special.len()],
        special,
        residues: len,
    }
}

/// Softmax rows `[B, H, T, T]`: head 0 peaked at random, head 1 drawn to
/// binding sites (a large positive z), head 2 nearly uniform.
fn attention(rng: &mut Rng, records: &[ProteinRecord], t: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(records.len() * HEADS * t * t);
    for r in records {
        let sites = r.binding_sites.clone().unwrap_or_default();
        for head in 0..HEADS {
            for _ in 0..t {
                let logits: Vec<f64> = (0..t)
                    .map(|j| {
                        let site = j >= 1 && sites.contains(&(j as i32 - 1));
                        match head {
                            0 => rng.unit() * if rng.unit() < 0.3 { 6.0 } else { 2.0 },
                            1 => rng.unit() * 2.0 + if site { 2.5 } else { 0.0 },
                            _ => rng.unit() * 0.3,
                        }
                    })
                    .collect();
                let m = logits.iter().copied().fold(f64::MIN, f64::max);
                let e: Vec<f64> = logits.iter().map(|x| (x - m).exp()).collect();
                let s: f64 = e.iter().sum();
                out.extend(e.iter().map(|x| (x / s) as f32));
            }
        }
    }
    out
}

fn f64_column(batch: &RecordBatch, name: &str) -> Vec<f64> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("heads.parquet lacks {name}"));
    let col = col.as_any().downcast_ref::<Float64Array>().expect("f64 column");
    assert_eq!(col.null_count(), 0, "{name} has nulls");
    col.values().to_vec()
}

/// heads.parquet as published by the writer, read back from disk.
fn published_heads(results: &headscan_coordinator::stats::AnalysisResults) -> RecordBatch {
    let dir = tempfile::tempdir().unwrap();
    let out = Location::parse(dir.path().to_str().unwrap()).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(headscan_coordinator::outputs::write_tables(results, &out))
        .unwrap();
    let file = std::fs::File::open(dir.path().join("heads.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "a small table is one batch");
    batches.remove(0)
}

#[test]
fn heads_parquet_weighted_null_matches_brute_force_permutations() {
    let mut rng = Rng(0x6A09E667F3BCC909);
    let specs = expand(&["contact".into(), "binding_site".into()], ContactRule::default()).unwrap();
    let records: Vec<ProteinRecord> = (0..3).map(|k| record(&mut rng, k)).collect();
    let encoded: Vec<Encoded> = records.iter().map(|r| encode(r.len())).collect();
    let t = encoded.iter().map(|e| e.ids.len()).max().unwrap();
    let attn = attention(&mut rng, &records, t);
    let features: Vec<RecordFeatures> = records
        .iter()
        .zip(&encoded)
        .map(|(r, e)| record_features(r, &specs, e.residues))
        .collect();

    // The engine, the statistics and the writer, as `headscan run` chains them.
    let mut acc = Accumulator::new(specs.clone(), 1, HEADS, 0.3, 0, 1);
    let tensor = Tensor::from_vec(attn.clone(), (records.len(), HEADS, t, t), &Device::Cpu).unwrap();
    let seqs: Vec<SequenceInput> = encoded
        .iter()
        .zip(&features)
        .enumerate()
        .map(|(k, (e, f))| SequenceInput {
            encoded: e,
            features: f,
            key: k as u64,
        })
        .collect();
    acc.add_batch(&[tensor], &seqs, false).unwrap();
    let results = compute(
        &acc.into_counts(),
        &StatsOptions {
            min_arcs: 0,
            ..StatsOptions::default()
        },
    );
    let heads = published_heads(&results);
    let names = heads
        .column_by_name("feature")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .clone();
    let head_index = heads
        .column_by_name("head")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt32Array>()
        .unwrap()
        .clone();
    let mass = f64_column(&heads, "attn_mass");
    let observed = f64_column(&heads, "weighted_proportion");
    let mean = f64_column(&heads, "null_weighted_mean_exact");
    let std = f64_column(&heads, "null_weighted_std_exact");
    let z = f64_column(&heads, "null_weighted_z");
    assert_eq!(heads.num_rows(), specs.len() * HEADS);

    // Brute force: every row's residue weights shuffled (Fisher–Yates), the
    // weighted hits of both features summed, per sample and head.
    // draws[sample][feature · HEADS + head]
    let mut draws = vec![vec![0f64; specs.len() * HEADS]; PERMUTATIONS];
    let mut brute_mass = [0f64; HEADS];
    for (b, (enc, f)) in encoded.iter().zip(&features).enumerate() {
        let n = enc.residues;
        for head in 0..HEADS {
            for i in 0..n {
                let base = ((b * HEADS + head) * t + 1 + i) * t + 1;
                let row: Vec<f64> = attn[base..base + n].iter().map(|&a| f64::from(a)).collect();
                brute_mass[head] += row.iter().sum::<f64>();
                let mut perm = row.clone();
                for draw in draws.iter_mut() {
                    for m in (1..n).rev() {
                        perm.swap(m, rng.below(m + 1));
                    }
                    for (s, spec) in specs.iter().enumerate() {
                        let hits: f64 = perm
                            .iter()
                            .enumerate()
                            .map(|(j, w)| {
                                w * match spec.kind {
                                    FeatureKind::Contact(_) => f.contact.as_ref().unwrap()[i * n + j],
                                    _ => f.token[j],
                                }
                            })
                            .sum();
                        draw[s * HEADS + head] += hits;
                    }
                }
            }
        }
    }

    let k = PERMUTATIONS as f64;
    for row in 0..heads.num_rows() {
        let (feature, head) = (names.value(row), head_index.value(row) as usize);
        let at = format!("{feature} head {head}");
        assert!((mass[row] - brute_mass[head]).abs() < 1e-9, "{at}: attn_mass");
        let s = specs.iter().position(|x| x.name == feature).unwrap();
        let props: Vec<f64> = draws.iter().map(|d| d[s * HEADS + head] / mass[row]).collect();
        let mc_mean = props.iter().sum::<f64>() / k;
        let mc_std = (props.iter().map(|p| (p - mc_mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
        assert!(
            std[row] > 0.0 && mean[row].is_finite() && z[row].is_finite(),
            "{at}"
        );
        assert!(
            (mc_mean - mean[row]).abs() <= 4.0 * std[row] / k.sqrt(),
            "{at}: permutation mean {mc_mean} vs exact {}",
            mean[row]
        );
        assert!(
            (mc_std / std[row] - 1.0).abs() < 0.02,
            "{at}: permutation std {mc_std} vs exact {}",
            std[row]
        );
        // z compares the observed weighted proportion with the null on its own scale.
        let expected_z = (observed[row] - mean[row]) / std[row];
        assert!(
            (z[row] - expected_z).abs() <= 1e-12 * expected_z.abs().max(1.0),
            "{at}: z"
        );
        let mc_z = (observed[row] - mc_mean) / mc_std;
        assert!(
            (z[row] - mc_z).abs() <= 0.03 + 0.02 * z[row].abs(),
            "{at}: z {} vs permutation z {mc_z}",
            z[row]
        );
    }
    // The head drawn to binding sites stands far above its null.
    let drawn = (0..heads.num_rows())
        .find(|&r| names.value(r) == "binding_site" && head_index.value(r) == 1)
        .unwrap();
    assert!(z[drawn] > 3.0, "z = {}", z[drawn]);
}
