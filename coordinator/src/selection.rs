//! Which records a job analyses (`limit`, `sample`), planned from the
//! manifest's row counts alone. Records are named by their global row index
//! (row k of the dataset, shards in order), so the choice depends only on the
//! dataset's rows and the seed — never on how the dataset is sharded, on the
//! worker count or on the batch size.
//!
//! `sample` draws N of the T rows uniformly without replacement with Floyd's
//! algorithm from a SplitMix64 stream of the seed. provis draws its subset as
//! `torch.randperm(T)[:N]` after `torch.manual_seed(123)`: the same
//! distribution over subsets, but not the same subset.

use std::collections::HashSet;

use headscan_proto::manifest::ShardEntry;

use crate::config::{ConfigError, RunConfig};

/// How the records of a job are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Every record.
    All,
    /// The first N records in dataset order (`limit`).
    First(u64),
    /// N records drawn uniformly at random without replacement (`sample`).
    Sample {
        /// Records requested.
        n: u64,
        /// Seed of the draw.
        seed: u64,
    },
}

impl Selection {
    /// The selection a configuration asks for; `limit` and `sample` together are an error.
    pub fn from_config(cfg: &RunConfig) -> Result<Self, ConfigError> {
        match (cfg.limit, cfg.sample) {
            (0, 0) => Ok(Self::All),
            (n, 0) => Ok(Self::First(n)),
            (0, n) => Ok(Self::Sample { n, seed: cfg.seed }),
            (limit, sample) => Err(ConfigError::Invalid(format!(
                "`limit` ({limit}) and `sample` ({sample}) cannot be combined"
            ))),
        }
    }

    /// Short name for logs and summary.json: `all`, `limit` or `sample`.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::First(_) => "limit",
            Self::Sample { .. } => "sample",
        }
    }
}

/// The rows of one shard to analyse, as 0-based indices within the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// The first n rows.
    First(usize),
    /// These rows, ascending.
    Listed(Vec<usize>),
}

/// Errors applying a plan to the records actually read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A shard holds fewer rows than its manifest entry says.
    #[error("shard {url} holds {found} rows but row {wanted} was selected (the manifest says {listed})")]
    ShortShard {
        /// Shard URL.
        url: String,
        /// Rows read.
        found: usize,
        /// Rows in the manifest.
        listed: u64,
        /// The missing row.
        wanted: usize,
    },
}

impl Rows {
    /// How many rows are selected (at most that many for `First`).
    pub fn len(&self) -> usize {
        match self {
            Self::First(n) => *n,
            Self::Listed(v) => v.len(),
        }
    }

    /// True when no row is selected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The selected records of a shard's `records`, in shard order.
    pub fn pick<T>(&self, mut records: Vec<T>, shard: &ShardEntry) -> Result<Vec<T>, SelectionError> {
        match self {
            Self::First(n) => {
                records.truncate(*n);
                Ok(records)
            }
            Self::Listed(rows) => {
                if let Some(&wanted) = rows.iter().find(|&&r| r >= records.len()) {
                    return Err(SelectionError::ShortShard {
                        url: shard.url.clone(),
                        found: records.len(),
                        listed: shard.rows,
                        wanted,
                    });
                }
                let mut keep = rows.iter().copied().peekable();
                Ok(records
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, r)| keep.next_if_eq(&i).map(|_| r))
                    .collect())
            }
        }
    }
}

/// One task of a job: a shard and the rows of it to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardTask {
    /// The shard.
    pub shard: ShardEntry,
    /// Its selected rows (never empty).
    pub rows: Rows,
}

/// The tasks of a job, shards in order, with the numbers summary.json reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Tasks, one per shard with selected rows.
    pub tasks: Vec<ShardTask>,
    /// Rows in the dataset (Σ shard rows of the manifest).
    pub dataset_rows: u64,
    /// Rows selected.
    pub selected: u64,
}

/// Plans the tasks of `selection` over `shards` (in dataset order).
pub fn plan(shards: &[ShardEntry], selection: Selection) -> Plan {
    let dataset_rows: u64 = shards.iter().map(|s| s.rows).sum();
    let mut tasks = Vec::new();
    let mut push = |shard: &ShardEntry, rows: Rows| {
        if !rows.is_empty() {
            tasks.push(ShardTask {
                shard: shard.clone(),
                rows,
            });
        }
    };
    match selection {
        Selection::Sample { n, seed } if n < dataset_rows => {
            let chosen = sample_rows(dataset_rows, n, seed);
            let mut next = chosen.iter().copied().peekable();
            let mut start = 0u64;
            for shard in shards {
                let end = start + shard.rows;
                let mut rows = Vec::new();
                while let Some(g) = next.next_if(|&g| g < end) {
                    rows.push(usize::try_from(g - start).unwrap_or(usize::MAX));
                }
                push(shard, Rows::Listed(rows));
                start = end;
            }
        }
        _ => {
            let mut remaining = match selection {
                Selection::First(n) => n,
                _ => u64::MAX,
            };
            for shard in shards {
                let take = shard.rows.min(remaining);
                remaining -= take;
                push(shard, Rows::First(usize::try_from(take).unwrap_or(usize::MAX)));
            }
        }
    }
    let selected = tasks.iter().map(|t| t.rows.len() as u64).sum();
    Plan {
        tasks,
        dataset_rows,
        selected,
    }
}

/// Salt of the sampling stream, so it never coincides with a null stream.
const SAMPLE_SALT: u64 = 0x5341_4D50_4C45_0001;

/// SplitMix64 output function.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 stream of one seed.
struct Stream(u64);

impl Stream {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias (Lemire's method).
    fn below(&mut self, n: u64) -> u64 {
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }
}

/// `n` distinct global row indices of `0..total`, uniformly at random from
/// `seed` (Floyd's algorithm), ascending; all rows when n ≥ total.
pub fn sample_rows(total: u64, n: u64, seed: u64) -> Vec<u64> {
    if n >= total {
        return (0..total).collect();
    }
    let mut stream = Stream(mix(seed ^ SAMPLE_SALT));
    let mut chosen: HashSet<u64> = HashSet::with_capacity(usize::try_from(n).unwrap_or(0));
    for j in (total - n)..total {
        let t = stream.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut rows: Vec<u64> = chosen.into_iter().collect();
    rows.sort_unstable();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(sizes: &[u64]) -> Vec<ShardEntry> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &rows)| ShardEntry {
                url: format!("shards/part-{i:05}.parquet"),
                rows,
                residues: 0,
                content_hash: String::new(),
                file_sha256: String::new(),
                bytes: 0,
            })
            .collect()
    }

    /// The global row indices a plan selects.
    fn global(plan: &Plan, shards: &[ShardEntry]) -> Vec<u64> {
        let mut starts = std::collections::HashMap::new();
        let mut start = 0;
        for s in shards {
            starts.insert(s.url.clone(), start);
            start += s.rows;
        }
        let mut out = Vec::new();
        for t in &plan.tasks {
            let rows: Vec<u64> = (0..t.shard.rows).collect();
            let picked = t.rows.pick(rows, &t.shard).unwrap();
            out.extend(picked.iter().map(|r| starts[&t.shard.url] + r));
        }
        out
    }

    #[test]
    fn samples_do_not_depend_on_sharding() {
        // One shard, shards of 3 rows and of 12 rows (the last ones short).
        let mut by3 = vec![3; 33];
        by3.push(1);
        let mut by12 = vec![12; 8];
        by12.push(4);
        let layouts = [vec![100], by3, by12];
        let selection = Selection::Sample { n: 17, seed: 123 };
        let picks: Vec<Vec<u64>> = layouts
            .iter()
            .map(|sizes| {
                let s = shards(sizes);
                let p = plan(&s, selection);
                assert_eq!((p.dataset_rows, p.selected), (100, 17));
                assert!(p.tasks.iter().all(|t| !t.rows.is_empty()));
                global(&p, &s)
            })
            .collect();
        assert_eq!(picks[0], sample_rows(100, 17, 123));
        assert!(picks.iter().all(|p| *p == picks[0]), "{picks:?}");
        let mut dedup = picks[0].clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 17);
        assert!(picks[0].iter().all(|&g| g < 100));
    }

    #[test]
    fn seeds_change_the_sample_and_large_samples_take_everything() {
        assert_ne!(sample_rows(1000, 50, 1), sample_rows(1000, 50, 2));
        assert_eq!(sample_rows(1000, 50, 7), sample_rows(1000, 50, 7));
        assert_eq!(sample_rows(5, 9, 1), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_rows(5, 5, 1), vec![0, 1, 2, 3, 4]);
        assert!(sample_rows(5, 0, 1).is_empty());
        let s = shards(&[3, 3]);
        let p = plan(&s, Selection::Sample { n: 99, seed: 4 });
        assert_eq!((p.dataset_rows, p.selected), (6, 6));
        assert_eq!(global(&p, &s), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn samples_are_uniform() {
        // Each of 10 rows is drawn with probability 3/10 over 20,000 seeds.
        let mut counts = [0u32; 10];
        for seed in 0..20_000 {
            for r in sample_rows(10, 3, seed) {
                counts[r as usize] += 1;
            }
        }
        for c in counts {
            assert!(
                (f64::from(c) - 6000.0).abs() < 4.0 * (6000.0f64 * 0.7).sqrt(),
                "{counts:?}"
            );
        }
    }

    #[test]
    fn limits_take_the_first_rows() {
        let s = shards(&[3, 3, 3]);
        let p = plan(&s, Selection::First(4));
        assert_eq!(p.tasks.len(), 2);
        assert_eq!(p.tasks[1].rows, Rows::First(1));
        assert_eq!(global(&p, &s), vec![0, 1, 2, 3]);
        assert_eq!(plan(&s, Selection::All).selected, 9);
        assert_eq!(plan(&s, Selection::First(50)).selected, 9);
        assert!(plan(&[], Selection::Sample { n: 3, seed: 0 }).tasks.is_empty());
    }

    #[test]
    fn the_config_picks_the_selection() {
        let mut c = RunConfig::default();
        assert_eq!(Selection::from_config(&c).unwrap(), Selection::All);
        c.limit = 5;
        assert_eq!(Selection::from_config(&c).unwrap(), Selection::First(5));
        c.sample = 3;
        assert!(Selection::from_config(&c).is_err());
        c.limit = 0;
        c.seed = 9;
        assert_eq!(
            Selection::from_config(&c).unwrap(),
            Selection::Sample { n: 3, seed: 9 }
        );
    }

    #[test]
    fn a_short_shard_is_an_error() {
        let s = shards(&[4]);
        let rows = Rows::Listed(vec![1, 3]);
        assert_eq!(
            rows.pick(vec!['a', 'b', 'c', 'd'], &s[0]).unwrap(),
            vec!['b', 'd']
        );
        let err = rows.pick(vec!['a', 'b'], &s[0]).unwrap_err().to_string();
        assert!(err.contains("holds 2 rows"), "{err}");
    }
}
