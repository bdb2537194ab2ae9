//! Microbenchmarks of one layer's analysis at ProtBert's shape (a batch of 4
//! sequences of 254 residues, 16 heads): the fused CPU pass vs the tensor
//! path, with and without 100 Monte Carlo null samples.
//!
//!   cargo bench -p headscan-worker --bench accumulate

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use headscan_proto::features::ContactRule;
use headscan_proto::record::ProteinRecord;
use headscan_worker::analysis::accumulate::{Accumulator, SequenceInput};
use headscan_worker::analysis::features::{RecordFeatures, expand, record_features};
use headscan_worker::tokenizer::Encoded;

const B: usize = 4;
const H: usize = 16;
const L: usize = 254;
const T: usize = L + 2;

struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn inputs() -> (Vec<ProteinRecord>, Vec<Encoded>, Tensor) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let aa = b"ACDEFGHIKLMNPQRSTVWY";
    let records: Vec<ProteinRecord> = (0..B)
        .map(|k| {
            let seq: String = (0..L)
                .map(|_| aa[(rng.unit() * 20.0) as usize % 20] as char)
                .collect();
            let mut r = ProteinRecord::new(format!("r{k}"), seq, "bench");
            let ca: Vec<f32> = (0..L)
                .flat_map(|i| {
                    [
                        (i as f32 * 0.6).sin() * 9.0,
                        (i as f32 * 0.6).cos() * 9.0,
                        i as f32 * 0.8,
                    ]
                })
                .collect();
            r.ca_coords = Some(ca);
            r.binding_sites = Some((0..L as i32).filter(|i| i % 9 == 0).collect());
            r
        })
        .collect();
    let mut special = vec![true];
    special.extend(std::iter::repeat_n(false, L));
    special.push(true);
    let encoded = vec![
        Encoded {
            ids: vec![5; T],
            special,
            type_ids: vec![0; T],
            residues: L,
        };
        B
    ];
    // Peaked rows: a few keys carry most of the weight, as in trained heads.
    let mut values = Vec::with_capacity(B * H * T * T);
    for _ in 0..B * H * T {
        let e: Vec<f32> = (0..T)
            .map(|_| {
                let u = rng.unit();
                if u < 0.01 { 200.0 * u } else { u }
            })
            .collect();
        let s: f32 = e.iter().sum();
        values.extend(e.iter().map(|x| x / s));
    }
    let a = Tensor::from_vec(values, (B, H, T, T), &Device::Cpu).unwrap();
    (records, encoded, a)
}

fn layer(c: &mut Criterion) {
    let (records, encoded, a) = inputs();
    let specs = expand(
        &["contact".into(), "binding_site".into(), "aa".into()],
        ContactRule::default(),
    )
    .unwrap();
    let features: Vec<RecordFeatures> = records.iter().map(|r| record_features(r, &specs, L)).collect();
    let seqs: Vec<SequenceInput> = (0..B)
        .map(|k| SequenceInput {
            encoded: &encoded[k],
            features: &features[k],
            key: k as u64,
        })
        .collect();
    let mut g = c.benchmark_group("one layer, 4 × 254 residues, 16 heads, contact+binding_site+aa");
    g.sample_size(10);
    for (name, tensor, null) in [
        ("fused, null 0", false, 0),
        ("tensor path, null 0", true, 0),
        ("fused, null 100", false, 100),
    ] {
        g.bench_function(name, |bench| {
            bench.iter(|| {
                let acc = Accumulator::new(specs.clone(), 1, H, 0.3, null, 1);
                let mut acc = if tensor { acc.with_tensor_path() } else { acc };
                acc.add_batch(std::slice::from_ref(&a), &seqs, false).unwrap();
                acc.into_counts()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
