//! Layer-by-layer accumulation: `process_records` counts each layer's
//! attention as the model computes it (`forward_each`, no layer kept) and
//! gives the same bytes as the plain path — every layer's attention
//! collected by `forward`, then added batch by batch — on real fixture models,
//! null samples and visualised records included.

use std::path::Path;

use candle_core::Device;
use headscan_proto::features::ContactRule;
use headscan_proto::record::ProteinRecord;
use headscan_worker::analysis::accumulate::{Accumulator, SequenceInput};
use headscan_worker::analysis::features::{expand, record_features};
use headscan_worker::analysis::null::sequence_key;
use headscan_worker::models::load_model;
use headscan_worker::shard::{AnalysisSpec, bucket, process_records};

fn records() -> Vec<ProteinRecord> {
    let seqs = [
        "MKTAYIAKQRQISFVKSHFSRQ",
        "GSHMLEDPVAG",
        "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTK",
    ];
    seqs.iter()
        .enumerate()
        .map(|(k, s)| {
            let mut r = ProteinRecord::new(format!("s{k}"), *s, "test");
            let ca: Vec<f32> = (0..s.len())
                .flat_map(|i| {
                    [
                        (i as f32 * 0.7).sin() * 6.0,
                        (i as f32 * 0.7).cos() * 6.0,
                        i as f32 * 1.5,
                    ]
                })
                .collect();
            r.ca_coords = Some(ca);
            r.binding_sites = Some((0..s.len() as i32).filter(|i| i % 4 == 1).collect());
            r
        })
        .collect()
}

#[test]
fn streamed_layers_equal_collected_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    for family in ["esm2", "bert", "xlnet", "albert", "t5"] {
        let model = load_model(&root.join(family), &Device::Cpu).unwrap();
        let specs = expand(
            &["contact".into(), "binding_site".into(), "aa".into()],
            ContactRule::default(),
        )
        .unwrap();
        let recs = records();
        let spec = AnalysisSpec {
            features: specs.clone(),
            threshold: 0.1,
            max_len: 40,
            batch_size: 1,
            null_samples: 5,
            seed: 3,
            visualize: vec!["s2".into()],
        };
        let streamed = process_records(&model, &recs, &spec, &Device::Cpu, |_| {}).unwrap();

        // The plain path: every layer collected, then added; records one by one in
        // process_records' order (bucket, then input order).
        let limit = model.token_limit(spec.max_len);
        let encoded: Vec<_> = recs
            .iter()
            .map(|r| model.tokenizer.encode(&r.sequence, limit))
            .collect();
        let mut order: Vec<usize> = (0..recs.len()).collect();
        order.sort_by_key(|&i| bucket(encoded[i].ids.len(), limit));
        let mut acc = Accumulator::new(
            specs.clone(),
            model.model.n_layers(),
            model.model.n_heads(),
            0.1,
            5,
            3,
        );
        for i in order {
            let padded = bucket(encoded[i].ids.len(), limit);
            let input = model
                .tokenizer
                .batch_to(std::slice::from_ref(&encoded[i]), padded, &Device::Cpu)
                .unwrap();
            let out = model.model.forward(&input, false).unwrap();
            assert_eq!(out.attentions.len(), model.model.n_layers());
            let f = record_features(&recs[i], &specs, encoded[i].residues);
            let seqs = [SequenceInput {
                encoded: &encoded[i],
                features: &f,
                key: sequence_key(&recs[i].id),
            }];
            acc.add_batch(&out.attentions, &seqs, model.tokenizer.pads_left())
                .unwrap();
        }
        let plain = acc.into_counts();
        assert_eq!(streamed.features, plain.features, "{family}");
        assert_eq!(
            (streamed.sequences, streamed.residues),
            (plain.sequences, plain.residues)
        );
        assert!(
            streamed.features[0].heads.iter().any(|h| h.arcs > 0),
            "{family}: the test must see arcs"
        );
        assert_eq!(
            streamed.visualized.len(),
            1,
            "{family}: the visualised record is kept"
        );
        assert!(!streamed.visualized[0].weight.is_empty());
    }
}
