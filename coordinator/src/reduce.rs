//! Reduction as a running prefix fold: partial counts are folded strictly in
//! shard order as the shards they continue arrive, so the result is the same
//! bits whatever the worker count, completion order, retries or restarts,
//! and memory holds one folded partial per job (the partials beyond the
//! prefix wait in the object store, not in memory).

use headscan_proto::counts::{MergeError, merge};
use headscan_proto::pb::PartialCounts;
use sha2::{Digest, Sha256};

/// The fold of shards `0..next` of one job.
#[derive(Debug, Clone, Default)]
pub struct PrefixFold {
    /// The next shard to fold.
    pub next: u32,
    /// The fold so far (None before the first folded partial).
    pub folded: Option<PartialCounts>,
    /// Shards left out (failed for good in an allow_partial job).
    pub missing: Vec<u32>,
    /// SHA-256 over the folded record ids in order, one per line.
    pub ids: Sha256,
}

impl PrefixFold {
    /// Folds shard `next`: its partial and record ids, or `None` when it is left out.
    pub fn push(&mut self, partial: Option<(PartialCounts, Vec<String>)>) -> Result<(), MergeError> {
        let partial = partial.map(|(p, ids)| {
            for id in ids {
                self.ids.update(id.as_bytes());
                self.ids.update(b"\n");
            }
            p
        });
        match (partial, self.folded.as_mut()) {
            (None, _) => self.missing.push(self.next),
            (Some(p), None) => self.folded = Some(p),
            (Some(p), Some(total)) => merge(total, &p)?,
        }
        self.next += 1;
        Ok(())
    }

    /// True when every one of `total` shards is folded.
    pub fn complete(&self, total: u32) -> bool {
        self.next >= total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headscan_proto::counts::{empty, fold};

    fn part(n: u64) -> PartialCounts {
        let mut p = empty(1, 2, 0, &["contact".into()]);
        p.sequences = n;
        p.features[0].heads[1].arcs = n * 3;
        p
    }

    #[test]
    fn prefix_fold_equals_fold_and_counts_missing() {
        let parts: Vec<_> = (1..=4).map(part).collect();
        let mut f = PrefixFold::default();
        for p in &parts {
            f.push(Some((p.clone(), vec![]))).unwrap();
        }
        assert!(f.complete(4));
        assert_eq!(f.folded, fold(parts.iter()).unwrap());
        let mut g = PrefixFold::default();
        g.push(None).unwrap();
        g.push(Some((part(2), vec!["a".into()]))).unwrap();
        assert_eq!(
            (g.missing.as_slice(), g.folded.unwrap().sequences),
            (&[0u32][..], 2)
        );
    }
}
