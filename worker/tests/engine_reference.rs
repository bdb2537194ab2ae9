//! The alignment engine against a deliberately naive reference: straight
//! loops over query i and key j per head, as provis' compute_mean_attention
//! does, on random attention and random properties — counts equal exactly,
//! sums to 1e-9, with special-token removal, padding on either side and
//! truncation; and the totals do not depend on the batch size.

use candle_core::{Device, Tensor};
use headscan_proto::counts::real;
use headscan_proto::features::ContactRule;
use headscan_proto::pb::{Fixed128, PartialCounts};
use headscan_proto::record::{ProteinRecord, SiteAnnotation};
use headscan_worker::analysis::accumulate::{Accumulator, SequenceInput};
use headscan_worker::analysis::features::{
    FeatureKind, FeatureSpec, RecordFeatures, expand, record_features,
};
use headscan_worker::tokenizer::Encoded;

const THETA: f64 = 0.3;

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

fn random_record(rng: &mut Rng, k: usize) -> ProteinRecord {
    let len = 8 + rng.below(20);
    let aa = "ACDEFGHIKLMNPQRSTVWY".as_bytes();
    let seq: String = (0..len).map(|_| aa[rng.below(20)] as char).collect();
    let mut r = ProteinRecord::new(format!("r{k}"), seq, "test");
    // A compact random walk so contacts exist.
    let mut xyz = [0f32; 3];
    let mut ca = Vec::new();
    for _ in 0..len {
        for v in xyz.iter_mut() {
            *v += (rng.unit() as f32 - 0.5) * 5.0;
        }
        ca.extend(xyz);
    }
    let resolved: Vec<bool> = (0..len).map(|_| rng.unit() > 0.1).collect();
    r.ca_coords = Some(ca);
    r.resolved = Some(resolved);
    let labels = "HGIEBTS-C?";
    r.ss8 = Some(
        (0..len)
            .map(|_| labels.as_bytes()[rng.below(labels.len())] as char)
            .collect(),
    );
    r.binding_sites = Some((0..len as i32).filter(|_| rng.unit() < 0.2).collect());
    // Every third record has no PTM annotation at all.
    r.ptm_sites = (!k.is_multiple_of(3)).then(|| (0..len as i32).filter(|_| rng.unit() < 0.1).collect());
    r.sites = Some(vec![SiteAnnotation {
        name: "metal".into(),
        positions: (0..len as i32).filter(|_| rng.unit() < 0.15).collect(),
    }]);
    r
}

/// Tokens as a BERT-like tokenizer would give: [CLS] residues [SEP], truncated to max_len.
fn encode(len: usize, max_len: usize, specials: (usize, usize)) -> Encoded {
    let n = len.min(max_len - specials.0 - specials.1);
    let mut special = vec![true; specials.0];
    special.extend(std::iter::repeat_n(false, n));
    special.extend(std::iter::repeat_n(true, specials.1));
    Encoded {
        ids: vec![7; special.len()],
        type_ids: vec![0; special.len()],
        special,
        residues: n,
    }
}

/// Random attention rows (softmax of peaked logits), per layer [B, H, T, T].
fn random_attention(rng: &mut Rng, layers: usize, b: usize, h: usize, t: usize) -> Vec<Vec<f32>> {
    (0..layers)
        .map(|_| {
            let mut out = Vec::with_capacity(b * h * t * t);
            for _ in 0..b * h * t {
                let logits: Vec<f64> = (0..t)
                    .map(|_| rng.unit() * if rng.unit() < 0.3 { 8.0 } else { 2.0 })
                    .collect();
                let m = logits.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = logits.iter().map(|x| (x - m).exp()).collect();
                let s: f64 = e.iter().sum();
                out.extend(e.iter().map(|x| (x / s) as f32));
            }
            out
        })
        .collect()
}

/// Random records, their tokens, random attention and their features.
struct Batch {
    records: Vec<ProteinRecord>,
    encoded: Vec<Encoded>,
    t: usize,
    attn: Vec<Vec<f32>>,
    features: Vec<RecordFeatures>,
}

fn batch(
    rng: &mut Rng,
    specs: &[FeatureSpec],
    n: usize,
    (max_len, specials): (usize, (usize, usize)),
    (layers, heads): (usize, usize),
) -> Batch {
    let records: Vec<ProteinRecord> = (0..n).map(|k| random_record(rng, k)).collect();
    let encoded: Vec<Encoded> = records
        .iter()
        .map(|r| encode(r.len(), max_len, specials))
        .collect();
    let t = encoded.iter().map(|e| e.ids.len()).max().unwrap();
    let attn = random_attention(rng, layers, records.len(), heads, t);
    let features = records
        .iter()
        .zip(&encoded)
        .map(|(r, e)| record_features(r, specs, e.residues))
        .collect();
    Batch {
        records,
        encoded,
        t,
        attn,
        features,
    }
}

/// The naive reference: loops over i, j per sequence, layer and head.
/// Index loops are the point here: they mirror provis' own code.
#[allow(clippy::needless_range_loop)]
fn naive(
    specs: &[FeatureSpec],
    records: &[ProteinRecord],
    encoded: &[Encoded],
    attn: &[Vec<f32>],
    (layers, heads, t): (usize, usize, usize),
    pads_left: bool,
) -> PartialCounts {
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut out = headscan_proto::counts::empty(layers as u32, heads as u32, 0, &names);
    // Plain f64 sums per feature and head: attention mass and weighted hits.
    let mut mass = vec![vec![0f64; layers * heads]; specs.len()];
    let mut weighted = vec![vec![0f64; layers * heads]; specs.len()];
    for (b, (rec, enc)) in records.iter().zip(encoded).enumerate() {
        let offset = if pads_left { t - enc.ids.len() } else { 0 };
        let pos: Vec<usize> = (0..enc.ids.len())
            .filter(|i| !enc.special[*i])
            .map(|i| offset + i)
            .collect();
        let f = record_features(rec, specs, enc.residues);
        let n = pos.len();
        out.sequences += 1;
        out.residues += n as u64;
        let tok: Vec<usize> = (0..specs.len())
            .filter(|s| !matches!(specs[*s].kind, FeatureKind::Contact(_)))
            .collect();
        let value = |s: usize, i: usize, j: usize| -> f64 {
            match &specs[s].kind {
                FeatureKind::Contact(_) => f.contact.as_ref().unwrap()[i * n + j],
                _ => f.token[j * tok.len() + tok.iter().position(|x| *x == s).unwrap()],
            }
        };
        for s in 0..specs.len() {
            if !f.has[s] {
                continue;
            }
            for i in 0..n {
                for j in 0..n {
                    if matches!(specs[s].kind, FeatureKind::Contact(_)) {
                        out.features[s].background_total +=
                            f.contact_valid.as_ref().unwrap()[i * n + j] as u64;
                        out.features[s].background_hits += value(s, i, j) as u64;
                    }
                }
                if !matches!(specs[s].kind, FeatureKind::Contact(_)) {
                    let c = tok.iter().position(|x| *x == s).unwrap();
                    out.features[s].background_total += f.token_valid[i * tok.len() + c] as u64;
                    out.features[s].background_hits += f.token[i * tok.len() + c] as u64;
                }
            }
            for l in 0..layers {
                for hd in 0..heads {
                    let hc = &mut out.features[s].heads[l * heads + hd];
                    for (i, &pi) in pos.iter().enumerate() {
                        for (j, &pj) in pos.iter().enumerate() {
                            let a = attn[l][((b * heads + hd) * t + pi) * t + pj];
                            let fv = value(s, i, j);
                            if a >= THETA as f32 {
                                hc.arcs += 1;
                                hc.hits += fv as u64;
                            }
                            mass[s][l * heads + hd] += a as f64;
                            weighted[s][l * heads + hd] += fv * a as f64;
                        }
                    }
                }
            }
        }
    }
    for (s, f) in out.features.iter_mut().enumerate() {
        for (k, hc) in f.heads.iter_mut().enumerate() {
            hc.attn_mass = Fixed128::from_f64(mass[s][k]);
            hc.weighted_hits = Fixed128::from_f64(weighted[s][k]);
        }
    }
    out
}

fn run_engine(
    specs: &[FeatureSpec],
    features: &[RecordFeatures],
    encoded: &[Encoded],
    attn: &[Vec<f32>],
    (layers, heads, t): (usize, usize, usize),
    pads_left: bool,
    batch: usize,
) -> PartialCounts {
    run_engine_null(
        specs,
        features,
        encoded,
        attn,
        (layers, heads, t),
        pads_left,
        batch,
        0..encoded.len(),
        0,
    )
}

/// The engine over records `range` only (a shard), with `k` null samples.
#[allow(clippy::too_many_arguments)]
fn run_engine_null(
    specs: &[FeatureSpec],
    features: &[RecordFeatures],
    encoded: &[Encoded],
    attn: &[Vec<f32>],
    (layers, heads, t): (usize, usize, usize),
    pads_left: bool,
    batch: usize,
    range: std::ops::Range<usize>,
    k: u32,
) -> PartialCounts {
    let acc = Accumulator::new(specs.to_vec(), layers, heads, THETA, k, 2024);
    engine_with(acc, features, encoded, attn, (heads, t), pads_left, batch, range)
}

/// Feeds records `range` to `acc` in batches of `batch`.
#[allow(clippy::too_many_arguments)]
fn engine_with(
    mut acc: Accumulator,
    features: &[RecordFeatures],
    encoded: &[Encoded],
    attn: &[Vec<f32>],
    (heads, t): (usize, usize),
    pads_left: bool,
    batch: usize,
    range: std::ops::Range<usize>,
) -> PartialCounts {
    let b_all = encoded.len();
    for start in range.clone().step_by(batch) {
        let end = (start + batch).min(range.end);
        // Slice the batch out of the full [B, H, T, T] tensors.
        let tensors: Vec<Tensor> = attn
            .iter()
            .map(|a| {
                Tensor::from_vec(a.clone(), (b_all, heads, t, t), &Device::Cpu)
                    .unwrap()
                    .narrow(0, start, end - start)
                    .unwrap()
            })
            .collect();
        let seqs: Vec<SequenceInput> = (start..end)
            .map(|k| SequenceInput {
                encoded: &encoded[k],
                features: &features[k],
                key: k as u64 * 7919,
            })
            .collect();
        acc.add_batch(&tensors, &seqs, pads_left).unwrap();
    }
    acc.into_counts()
}

fn assert_close(engine: &PartialCounts, reference: &PartialCounts) {
    assert_eq!(engine.sequences, reference.sequences);
    assert_eq!(engine.residues, reference.residues);
    for (e, r) in engine.features.iter().zip(&reference.features) {
        assert_eq!(
            (e.background_hits, e.background_total),
            (r.background_hits, r.background_total),
            "{}",
            e.feature
        );
        for (k, (x, y)) in e.heads.iter().zip(&r.heads).enumerate() {
            assert_eq!((x.arcs, x.hits), (y.arcs, y.hits), "{} head {k}", e.feature);
            assert!(
                (real(&x.attn_mass) - real(&y.attn_mass)).abs() <= 1e-9,
                "{} head {k}: mass",
                e.feature
            );
            assert!(
                (real(&x.weighted_hits) - real(&y.weighted_hits)).abs() <= 1e-9,
                "{} head {k}: weighted",
                e.feature
            );
        }
    }
}

#[test]
fn engine_matches_naive_loops() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let specs = expand(
        &[
            "contact".into(),
            "ss4".into(),
            "binding_site".into(),
            "ptm".into(),
            "aa".into(),
            "site:metal".into(),
        ],
        ContactRule::default(),
    )
    .unwrap();
    let (layers, heads) = (2, 3);
    for (pads_left, specials, max_len) in [(false, (1, 1), 20), (true, (0, 2), 16), (false, (1, 1), 64)] {
        let Batch {
            records,
            encoded,
            t,
            attn,
            features,
        } = batch(&mut rng, &specs, 9, (max_len, specials), (layers, heads));
        let reference = naive(&specs, &records, &encoded, &attn, (layers, heads, t), pads_left);
        assert!(
            reference.features[0].heads.iter().any(|h| h.hits > 0),
            "the test must see contact hits"
        );
        for batch in [1, 4, 9] {
            let engine = run_engine(
                &specs,
                &features,
                &encoded,
                &attn,
                (layers, heads, t),
                pads_left,
                batch,
            );
            assert_close(&engine, &reference);
        }
        // Batch sizes change nothing in the counts, and (on CPU) not a bit of the sums.
        let one = run_engine(
            &specs,
            &features,
            &encoded,
            &attn,
            (layers, heads, t),
            pads_left,
            1,
        );
        let all = run_engine(
            &specs,
            &features,
            &encoded,
            &attn,
            (layers, heads, t),
            pads_left,
            9,
        );
        assert_eq!(one, all);
        // The PTM-less records are left out of ptm's arcs.
        let ptm = specs.iter().position(|s| s.name == "ptm").unwrap();
        let aa = specs.iter().position(|s| s.name == "aa:A").unwrap();
        assert!(reference.features[ptm].heads[0].arcs < reference.features[aa].heads[0].arcs);
    }
}

#[test]
fn fused_cpu_pass_equals_the_tensor_path() {
    let mut rng = Rng(0x51_7CC1_B727_220A);
    let specs = expand(
        &["contact".into(), "ss4".into(), "binding_site".into(), "aa".into()],
        ContactRule::default(),
    )
    .unwrap();
    let (layers, heads) = (2, 3);
    for (pads_left, specials, max_len) in [(false, (1, 1), 24), (true, (0, 2), 40)] {
        let Batch {
            records,
            encoded,
            t,
            attn,
            features,
        } = batch(&mut rng, &specs, 7, (max_len, specials), (layers, heads));
        let run = |tensor: bool, batch: usize| {
            let acc = Accumulator::new(specs.clone(), layers, heads, THETA, 20, 7);
            let acc = if tensor { acc.with_tensor_path() } else { acc };
            engine_with(
                acc,
                &features,
                &encoded,
                &attn,
                (heads, t),
                pads_left,
                batch,
                0..7,
            )
        };
        let fused = run(false, 3);
        let tensor = run(true, 3);
        assert_eq!(run(false, 1), run(false, 7), "fused: batching changes no bit");
        let reference = naive(&specs, &records, &encoded, &attn, (layers, heads, t), pads_left);
        assert_close(&tensor, &reference);
        assert_close(&fused, &reference);
        for (e, r) in fused.features.iter().zip(&tensor.features) {
            for (k, (x, y)) in e.heads.iter().zip(&r.heads).enumerate() {
                assert_eq!(x.null_hits, y.null_hits, "{} head {k}: null samples", e.feature);
                for (name, a, b) in [
                    ("null mean", &x.null_exact_mean, &y.null_exact_mean),
                    ("null var", &x.null_exact_var, &y.null_exact_var),
                    (
                        "weighted null mean",
                        &x.null_weighted_exact_mean,
                        &y.null_weighted_exact_mean,
                    ),
                    (
                        "weighted null var",
                        &x.null_weighted_exact_var,
                        &y.null_weighted_exact_var,
                    ),
                ] {
                    let (a, b) = (real(a), real(b));
                    assert!(
                        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                        "{} head {k}: {name} {a} vs {b}",
                        e.feature
                    );
                }
            }
        }
    }
}

#[test]
fn null_samples_match_the_closed_form_and_ignore_batching_and_sharding() {
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let specs = expand(
        &["contact".into(), "binding_site".into(), "aa:L".into()],
        ContactRule::default(),
    )
    .unwrap();
    let (layers, heads) = (2, 3);
    let records: Vec<ProteinRecord> = (0..32).map(|k| random_record(&mut rng, k)).collect();
    let encoded: Vec<Encoded> = records.iter().map(|r| encode(r.len(), 24, (1, 1))).collect();
    let t = encoded.iter().map(|e| e.ids.len()).max().unwrap();
    let attn = random_attention(&mut rng, layers, records.len(), heads, t);
    let features: Vec<RecordFeatures> = records
        .iter()
        .zip(&encoded)
        .map(|(r, e)| record_features(r, &specs, e.residues))
        .collect();
    let dims = (layers, heads, t);
    let k = 400;
    let whole = run_engine_null(&specs, &features, &encoded, &attn, dims, false, 32, 0..32, k);
    // Batch sizes 1, 7 and 32 give identical results, null samples included.
    for batch in [1, 7] {
        assert_eq!(
            run_engine_null(&specs, &features, &encoded, &attn, dims, false, batch, 0..32, k),
            whole
        );
    }
    // 4 shards folded in order equal 1 shard.
    let shards: Vec<PartialCounts> = (0..4)
        .map(|s| {
            run_engine_null(
                &specs,
                &features,
                &encoded,
                &attn,
                dims,
                false,
                5,
                8 * s..8 * (s + 1),
                k,
            )
        })
        .collect();
    let folded = headscan_proto::counts::fold(shards.iter()).unwrap().unwrap();
    for (a, b) in folded.features.iter().zip(&whole.features) {
        for (x, y) in a.heads.iter().zip(&b.heads) {
            assert_eq!((x.arcs, x.hits, &x.null_hits), (y.arcs, y.hits, &y.null_hits));
            assert_eq!(x, y, "exact sums: 4 shards fold to the same bits as 1");
        }
    }
    // Monte Carlo mean within 3 standard errors of the closed-form mean.
    let mut checked = 0;
    for f in &whole.features {
        for h in &f.heads {
            if h.arcs == 0 {
                continue;
            }
            let mean = h.null_hits.iter().sum::<u64>() as f64 / k as f64;
            let (exact_mean, exact_var) = (real(&h.null_exact_mean), real(&h.null_exact_var));
            let se = (exact_var / k as f64).sqrt();
            assert!(
                (mean - exact_mean).abs() <= 3.0 * se + 1e-9,
                "{}: MC {mean} vs exact {} (se {se})",
                f.feature,
                exact_mean
            );
            // The MC variance agrees with the closed form too (loosely).
            let var = h
                .null_hits
                .iter()
                .map(|x| (*x as f64 - mean).powi(2))
                .sum::<f64>()
                / (k as f64 - 1.0);
            assert!(
                (var / exact_var - 1.0).abs() < 0.35,
                "{}: var {var} vs {}",
                f.feature,
                exact_var
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * layers * heads);
}

#[test]
fn weighted_null_closed_form_matches_permuting_whole_rows() {
    let mut rng = Rng(0xD1B54A32D192ED03);
    let specs = expand(&["contact".into(), "binding_site".into()], ContactRule::default()).unwrap();
    let (layers, heads) = (1, 2);
    let records: Vec<ProteinRecord> = (0..3).map(|k| random_record(&mut rng, k)).collect();
    let encoded: Vec<Encoded> = records.iter().map(|r| encode(r.len(), 18, (1, 1))).collect();
    let t = encoded.iter().map(|e| e.ids.len()).max().unwrap();
    let attn = random_attention(&mut rng, layers, records.len(), heads, t);
    let features: Vec<RecordFeatures> = records
        .iter()
        .zip(&encoded)
        .map(|(r, e)| record_features(r, &specs, e.residues))
        .collect();
    let exact = run_engine(&specs, &features, &encoded, &attn, (layers, heads, t), false, 3);

    // Monte Carlo with whole-row permutations (Fisher–Yates) on the host.
    let samples = 4000;
    for (s, spec) in specs.iter().enumerate() {
        for hd in 0..heads {
            let mut draws = Vec::with_capacity(samples);
            for _ in 0..samples {
                let mut total = 0.0;
                for (b, (enc, f)) in encoded.iter().zip(&features).enumerate() {
                    let pos: Vec<usize> = (0..enc.ids.len()).filter(|i| !enc.special[*i]).collect();
                    let n = pos.len();
                    for (i, &pi) in pos.iter().enumerate() {
                        let mut row: Vec<f64> = pos
                            .iter()
                            .map(|&pj| attn[0][((b * heads + hd) * t + pi) * t + pj] as f64)
                            .collect();
                        for m in (1..n).rev() {
                            row.swap(m, rng.below(m + 1));
                        }
                        for (j, w) in row.iter().enumerate() {
                            let fv = match spec.kind {
                                FeatureKind::Contact(_) => f.contact.as_ref().unwrap()[i * n + j],
                                _ => f.token[j],
                            };
                            total += w * fv;
                        }
                    }
                }
                draws.push(total);
            }
            let mean = draws.iter().sum::<f64>() / samples as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (samples as f64 - 1.0);
            let h = &exact.features[s].heads[hd];
            let (w_mean, w_var) = (
                real(&h.null_weighted_exact_mean),
                real(&h.null_weighted_exact_var),
            );
            let se = (w_var / samples as f64).sqrt();
            assert!(
                (mean - w_mean).abs() <= 3.0 * se,
                "{}: {mean} vs {}",
                spec.name,
                w_mean
            );
            assert!(
                (var / w_var - 1.0).abs() < 0.1,
                "{}: var {var} vs {}",
                spec.name,
                w_var
            );
        }
    }
}
