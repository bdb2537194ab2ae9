//! `headscan dataset inspect`: counts and the background rate of every
//! feature a dataset supports (DESIGN §1 definitions).

use std::collections::BTreeMap;

use headscan_proto::features::{ContactRule, STANDARD_AMINO_ACIDS, Ss4, ss4_class};
use headscan_proto::record::ProteinRecord;
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{Dataset, DatasetError};

/// A count of positives over a number of valid positions or pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rate {
    /// Positives.
    pub hits: u64,
    /// Valid positions or pairs.
    pub total: u64,
    /// hits / total (0 when total is 0).
    pub rate: f64,
}

impl Rate {
    fn add(&mut self, hits: u64, total: u64) {
        self.hits += hits;
        self.total += total;
    }

    fn finish(mut self) -> Self {
        self.rate = if self.total == 0 {
            0.0
        } else {
            self.hits as f64 / self.total as f64
        };
        self
    }
}

/// What `inspect` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DatasetSummary {
    /// Dataset URL.
    pub url: String,
    /// `sha256:` content hash from the manifest.
    pub content_hash: String,
    /// Shards.
    pub shards: u64,
    /// Rows (chains).
    pub rows: u64,
    /// Residues.
    pub residues: u64,
    /// Longest sequence.
    pub max_length: u64,
    /// Background rate per feature name (`contact`, `ss4:helix`, `binding_site`, `aa:A`, …).
    pub features: BTreeMap<String, Rate>,
}

/// Per-record contributions, summed over the dataset.
#[derive(Debug, Default, Clone)]
struct Tally {
    rows: u64,
    residues: u64,
    max_length: u64,
    features: BTreeMap<String, Rate>,
}

impl Tally {
    fn merge(mut self, other: Tally) -> Tally {
        self.rows += other.rows;
        self.residues += other.residues;
        self.max_length = self.max_length.max(other.max_length);
        for (k, v) in other.features {
            self.features.entry(k).or_default().add(v.hits, v.total);
        }
        self
    }

    fn add(&mut self, name: &str, hits: u64, total: u64) {
        self.features
            .entry(name.to_string())
            .or_default()
            .add(hits, total);
    }
}

/// Token-feature positives among a record's residues.
fn token_rate(tally: &mut Tally, name: &str, positions: &[i32], len: usize) {
    tally.add(name, positions.len() as u64, len as u64);
}

fn tally_record(r: &ProteinRecord, rule: &ContactRule) -> Tally {
    let len = r.len();
    let mut t = Tally {
        rows: 1,
        residues: len as u64,
        max_length: len as u64,
        ..Default::default()
    };
    if let Some(ca) = &r.ca_coords {
        let c = rule.count(ca, r.resolved.as_deref());
        t.add("contact", c.contacts, c.valid_pairs);
    }
    if let Some(ss8) = &r.ss8 {
        let mut counts = [0u64; 4];
        let mut labelled = 0u64;
        for c in ss8.chars() {
            if let Some(class) = ss4_class(c) {
                labelled += 1;
                counts[Ss4::ALL.iter().position(|x| *x == class).unwrap_or(0)] += 1;
            }
        }
        for (class, n) in Ss4::ALL.iter().zip(counts) {
            t.add(class.feature_name(), n, labelled);
        }
    }
    if let Some(b) = &r.binding_sites {
        token_rate(&mut t, "binding_site", b, len);
    }
    if let Some(p) = &r.ptm_sites {
        token_rate(&mut t, "ptm", p, len);
    }
    for s in r.sites.iter().flatten() {
        token_rate(&mut t, &format!("site:{}", s.name), &s.positions, len);
    }
    let mut aa = [0u64; 20];
    for c in r.sequence.chars() {
        if let Some(k) = STANDARD_AMINO_ACIDS.iter().position(|a| *a == c) {
            aa[k] += 1;
        }
    }
    for (a, n) in STANDARD_AMINO_ACIDS.iter().zip(aa) {
        t.add(&format!("aa:{a}"), n, len as u64);
    }
    t
}

/// Summarises records (order-independent sums).
pub fn summarise(records: &[ProteinRecord], rule: &ContactRule) -> (u64, u64, u64, BTreeMap<String, Rate>) {
    let t = records
        .par_iter()
        .map(|r| tally_record(r, rule))
        .reduce(Tally::default, Tally::merge);
    (t.rows, t.residues, t.max_length, t.features)
}

/// Reads every shard of a dataset and computes its summary.
pub async fn inspect(url: &str, rule: &ContactRule) -> Result<DatasetSummary, DatasetError> {
    let dataset = Dataset::open(url).await?;
    let mut total = Tally::default();
    for shard in &dataset.manifest.shards {
        let records = dataset.read_shard(shard).await?;
        let (rows, residues, max_length, features) = summarise(&records, rule);
        total = total.merge(Tally {
            rows,
            residues,
            max_length,
            features,
        });
    }
    Ok(DatasetSummary {
        url: dataset.location().url().to_string(),
        content_hash: dataset.manifest.content_hash.clone(),
        shards: dataset.manifest.shards.len() as u64,
        rows: total.rows,
        residues: total.residues,
        max_length: total.max_length,
        features: total.features.into_iter().map(|(k, v)| (k, v.finish())).collect(),
    })
}
