//! What the per-residue probes predict, and the record-level train/validation
//! split they use.

use headscan_proto::features::{Ss4, ss4_class};
use headscan_proto::record::ProteinRecord;
use sha2::{Digest, Sha256};

/// A per-residue probing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// Secondary structure, 4 classes (DSSP → ss4 as DESIGN §1).
    Ss4,
    /// Binding site or not.
    BindingSite,
    /// Post-translationally modified or not.
    Ptm,
    /// Residue pairs in contact or not (pair features; see [`super::contacts`]).
    Contact,
}

impl Task {
    /// Name in configs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Task::Ss4 => "ss4",
            Task::BindingSite => "binding_site",
            Task::Ptm => "ptm",
            Task::Contact => "contact",
        }
    }

    /// Classes predicted.
    pub fn n_classes(self) -> usize {
        match self {
            Task::Ss4 => 4,
            Task::BindingSite | Task::Ptm | Task::Contact => 2,
        }
    }

    /// Names of the classes (`f1:<class>` metrics).
    pub fn class_names(self) -> Vec<&'static str> {
        match self {
            Task::Ss4 => Ss4::ALL
                .iter()
                .map(|c| c.feature_name().trim_start_matches("ss4:"))
                .collect(),
            Task::BindingSite | Task::Ptm | Task::Contact => vec!["no", "yes"],
        }
    }

    /// Per-residue classes of a record (`None` where a residue has no label,
    /// or the record carries no annotation for this task at all; always
    /// `None` for the pair task [`Task::Contact`]).
    pub fn labels(self, record: &ProteinRecord) -> Option<Vec<Option<usize>>> {
        let n = record.len();
        match self {
            Task::Contact => None,
            Task::Ss4 => {
                let ss8 = record.ss8.as_ref()?;
                Some(
                    ss8.chars()
                        .map(|c| ss4_class(c).map(|k| Ss4::ALL.iter().position(|a| *a == k).unwrap_or(3)))
                        .chain(std::iter::repeat(None))
                        .take(n)
                        .collect(),
                )
            }
            Task::BindingSite | Task::Ptm => {
                let sites = if self == Task::Ptm {
                    record.ptm_sites.as_ref()?
                } else {
                    record.binding_sites.as_ref()?
                };
                let mut labels = vec![Some(0); n];
                for &p in sites {
                    if let Some(l) = usize::try_from(p).ok().and_then(|p| labels.get_mut(p)) {
                        *l = Some(1);
                    }
                }
                Some(labels)
            }
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ss4" => Ok(Task::Ss4),
            "binding_site" => Ok(Task::BindingSite),
            "ptm" => Ok(Task::Ptm),
            "contact" => Ok(Task::Contact),
            other => Err(format!(
                "unknown probe task `{other}` (expected ss4, binding_site, ptm or contact)"
            )),
        }
    }
}

/// Default share of records used for training.
pub const DEFAULT_TRAIN_FRACTION: f64 = 0.8;

/// Whether a record trains (else validates): the first 8 bytes of
/// SHA-256(`seed` as decimal, NUL, `id`) as a fraction below `train_fraction`.
/// A pure function of seed and id, so the split does not depend on shard
/// layout, order or worker count.
pub fn is_train(id: &str, seed: u64, train_fraction: f64) -> bool {
    let mut h = Sha256::new();
    h.update(seed.to_string().as_bytes());
    h.update([0u8]);
    h.update(id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let u = (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    u < train_fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_record() {
        let mut r = ProteinRecord::new("x", "MKTAY", "t");
        r.ss8 = Some("HE-?T".into());
        r.binding_sites = Some(vec![1, 4, 9]);
        assert_eq!(
            Task::Ss4.labels(&r).unwrap(),
            vec![Some(0), Some(1), Some(3), None, Some(2)]
        );
        assert_eq!(
            Task::BindingSite.labels(&r).unwrap(),
            vec![Some(0), Some(1), Some(0), Some(0), Some(1)]
        );
        assert_eq!(Task::Ptm.labels(&r), None);
        assert_eq!(
            Task::Ss4.class_names(),
            vec!["helix", "strand", "turn_bend", "coil"]
        );
        assert_eq!("contact".parse::<Task>(), Ok(Task::Contact));
        assert!("contacts".parse::<Task>().is_err());
    }

    #[test]
    fn split_is_seeded_and_near_the_fraction() {
        let ids: Vec<String> = (0..5000).map(|i| format!("p{i}")).collect();
        let train = ids.iter().filter(|id| is_train(id, 1, 0.8)).count();
        assert!((3850..4150).contains(&train), "{train}");
        let same = ids
            .iter()
            .filter(|id| is_train(id, 1, 0.8) == is_train(id, 1, 0.8))
            .count();
        assert_eq!(same, 5000);
        let moved = ids
            .iter()
            .filter(|id| is_train(id, 1, 0.8) != is_train(id, 2, 0.8))
            .count();
        assert!(moved > 500, "another seed, another split");
    }
}
