//! Microbenchmarks of the coordinator's side: folding shards' partial counts
//! (30 layers × 16 heads × 24 features, 100 null samples each — ProtBert's
//! shape with `ss4,aa`) and decoding a canonical shard.
//!
//!   cargo bench -p headscan-coordinator --bench reduce

use criterion::{Criterion, criterion_group, criterion_main};
use headscan_coordinator::ingest::encode_parquet;
use headscan_coordinator::reduce::PrefixFold;
use headscan_proto::counts::empty;
use headscan_proto::pb::{Fixed128, PartialCounts};
use headscan_proto::record::ProteinRecord;
use headscan_proto::shard::decode_shard;

fn partial(seed: u64) -> PartialCounts {
    let features: Vec<String> = (0..24).map(|f| format!("f{f}")).collect();
    let mut p = empty(30, 16, 100, &features);
    p.sequences = 64;
    let mut x = seed | 1;
    for f in &mut p.features {
        for h in &mut f.heads {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h.arcs = x >> 50;
            h.hits = x >> 54;
            h.attn_mass = Fixed128::from_f64((x >> 40) as f64 * 1e-3);
            for v in &mut h.null_hits {
                *v = x >> 56;
            }
        }
    }
    p
}

fn fold(c: &mut Criterion) {
    let partials: Vec<PartialCounts> = (0..16).map(partial).collect();
    let mut g = c.benchmark_group("reduction");
    g.sample_size(10);
    g.bench_function(
        "fold 16 shards of 30×16 heads × 24 features, 100 null samples",
        |b| {
            b.iter(|| {
                let mut f = PrefixFold::default();
                for p in &partials {
                    f.push(Some((p.clone(), vec!["id".into()]))).unwrap();
                }
                f
            })
        },
    );
    g.finish();
}

fn shard_reading(c: &mut Criterion) {
    // 4,096 records of 300 residues with coordinates: one default-sized shard.
    let records: Vec<ProteinRecord> = (0..4096)
        .map(|k| {
            let seq: String = (0..300)
                .map(|i| b"ACDEFGHIKLMNPQRSTVWY"[(i * 7 + k) % 20] as char)
                .collect();
            let mut r = ProteinRecord::new(format!("r{k}"), seq, "bench");
            r.ca_coords = Some((0..900).map(|i| i as f32 * 0.1).collect());
            r.binding_sites = Some(vec![3, 50, 120]);
            r
        })
        .collect();
    let bytes = bytes::Bytes::from(encode_parquet(&records).unwrap());
    let mut g = c.benchmark_group("shard reading");
    g.sample_size(10);
    g.bench_function("decode 4096 records × 300 residues with Cα", |b| {
        b.iter(|| decode_shard(bytes.clone(), "bench").unwrap().len())
    });
    g.finish();
}

criterion_group!(benches, fold, shard_reading);
criterion_main!(benches);
