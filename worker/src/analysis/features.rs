//! Features of DESIGN §1 and their per-record values.
//!
//! Token features are "to" properties, f(i, j) = g(j): `ss4:*` (unlabelled
//! residues are not valid positions), `binding_site`, `ptm`, `aa:X`,
//! `site:<name>`. The pair feature `contact` holds for valid pairs (both
//! residues resolved, |i − j| ≥ the minimum separation) closer than the
//! distance threshold.

use headscan_proto::features::{ContactRule, STANDARD_AMINO_ACIDS, Ss4, ss4_class};
use headscan_proto::manifest::ColumnCoverage;
use headscan_proto::record::ProteinRecord;

/// What a feature is.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// Residue contact (pair feature).
    Contact(ContactRule),
    /// Secondary-structure class of the key residue.
    Ss4(Ss4),
    /// Key residue is a binding site.
    BindingSite,
    /// Key residue is post-translationally modified.
    Ptm,
    /// Key residue is this amino acid.
    Aa(char),
    /// Key residue carries this named annotation.
    Site(String),
}

/// One feature with its stable name.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    /// Name used in every output (`contact`, `ss4:helix`, `aa:K`, …).
    pub name: String,
    /// Meaning.
    pub kind: FeatureKind,
}

/// Errors in a feature list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// Not a known feature.
    #[error(
        "unknown feature `{0}` (expected contact, ss4, binding_site, ptm, aa, site:<name>, or one of ss4:helix|strand|turn_bend|coil, aa:<letter>)"
    )]
    Unknown(String),
    /// The dataset has no data for the feature.
    #[error("the dataset has no {column} for feature `{feature}`")]
    Missing {
        /// Feature name.
        feature: String,
        /// What is missing.
        column: String,
    },
}

/// Expands a feature list (`ss4` → its 4 classes, `aa` → the 20 amino acids).
pub fn expand(list: &[String], rule: ContactRule) -> Result<Vec<FeatureSpec>, FeatureError> {
    let mut out: Vec<FeatureSpec> = Vec::new();
    let mut push = |name: String, kind: FeatureKind| {
        if !out.iter().any(|f| f.name == name) {
            out.push(FeatureSpec { name, kind });
        }
    };
    for raw in list {
        let item = raw.trim();
        match item {
            "contact" => push("contact".into(), FeatureKind::Contact(rule)),
            "ss4" => Ss4::ALL
                .iter()
                .for_each(|c| push(c.feature_name().into(), FeatureKind::Ss4(*c))),
            "binding_site" => push(item.into(), FeatureKind::BindingSite),
            "ptm" => push(item.into(), FeatureKind::Ptm),
            "aa" => STANDARD_AMINO_ACIDS
                .iter()
                .for_each(|a| push(format!("aa:{a}"), FeatureKind::Aa(*a))),
            _ => {
                if let Some(class) = Ss4::ALL.iter().find(|c| c.feature_name() == item) {
                    push(item.into(), FeatureKind::Ss4(*class));
                } else if let Some(a) = item.strip_prefix("aa:").and_then(|a| {
                    let mut chars = a.chars();
                    chars
                        .next()
                        .filter(|c| chars.next().is_none() && STANDARD_AMINO_ACIDS.contains(c))
                }) {
                    push(item.into(), FeatureKind::Aa(a));
                } else if let Some(name) = item.strip_prefix("site:").filter(|n| !n.is_empty()) {
                    push(item.into(), FeatureKind::Site(name.into()));
                } else {
                    return Err(FeatureError::Unknown(item.into()));
                }
            }
        }
    }
    Ok(out)
}

/// Checks, before any model work, that the dataset carries every feature.
pub fn check_coverage(specs: &[FeatureSpec], coverage: &ColumnCoverage) -> Result<(), FeatureError> {
    for f in specs {
        let missing = |column: &str| FeatureError::Missing {
            feature: f.name.clone(),
            column: column.into(),
        };
        match &f.kind {
            FeatureKind::Contact(_) if coverage.ca_coords == 0 => return Err(missing("Cα coordinates")),
            FeatureKind::Ss4(_) if coverage.ss8 == 0 => {
                return Err(missing("secondary-structure labels (ss8)"));
            }
            FeatureKind::BindingSite if coverage.binding_sites == 0 => {
                return Err(missing("binding-site annotation"));
            }
            FeatureKind::Ptm if coverage.ptm_sites == 0 => return Err(missing("PTM annotation")),
            FeatureKind::Site(name) if !coverage.sites.contains_key(name) => {
                return Err(missing(&format!("`{name}` site annotation")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Feature values of one record over its first `len` residues.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFeatures {
    /// Residues covered.
    pub len: usize,
    /// Token-feature values g(j), row-major `[len, token features]` (0 at invalid positions).
    pub token: Vec<f64>,
    /// Valid positions per token feature, `[len, token features]`.
    pub token_valid: Vec<f64>,
    /// Whether the record carries each feature (all specs, in order).
    pub has: Vec<bool>,
    /// Contact map `[len, len]` (1 for valid contacting pairs), when `contact` is asked for and known.
    pub contact: Option<Vec<f64>>,
    /// Valid pairs `[len, len]` of the contact feature.
    pub contact_valid: Option<Vec<f64>>,
}

/// Indices of the token features among the specs (all but `contact`).
pub fn token_features(specs: &[FeatureSpec]) -> Vec<usize> {
    (0..specs.len())
        .filter(|i| !matches!(specs[*i].kind, FeatureKind::Contact(_)))
        .collect()
}

/// Computes a record's feature values over its first `len` residues.
pub fn record_features(record: &ProteinRecord, specs: &[FeatureSpec], len: usize) -> RecordFeatures {
    let tokens = token_features(specs);
    let nt = tokens.len();
    let seq: Vec<char> = record.sequence.chars().take(len).collect();
    let mut token = vec![0.0; len * nt];
    let mut token_valid = vec![0.0; len * nt];
    let mut has = vec![false; specs.len()];
    let positions = |list: &Option<Vec<i32>>| -> Option<Vec<bool>> {
        list.as_ref().map(|p| {
            let mut v = vec![false; len];
            p.iter()
                .filter(|i| (**i as usize) < len && **i >= 0)
                .for_each(|i| v[*i as usize] = true);
            v
        })
    };
    for (col, &s) in tokens.iter().enumerate() {
        let values: Option<(Vec<bool>, Vec<bool>)> = match &specs[s].kind {
            FeatureKind::Ss4(class) => record.ss8.as_ref().map(|ss| {
                let labels: Vec<Option<Ss4>> = ss.chars().take(len).map(ss4_class).collect();
                (
                    labels.iter().map(|l| *l == Some(*class)).collect(),
                    labels.iter().map(Option::is_some).collect(),
                )
            }),
            FeatureKind::BindingSite => positions(&record.binding_sites).map(|v| (v, vec![true; len])),
            FeatureKind::Ptm => positions(&record.ptm_sites).map(|v| (v, vec![true; len])),
            FeatureKind::Aa(a) => Some((seq.iter().map(|c| c == a).collect(), vec![true; len])),
            FeatureKind::Site(name) => record.sites.as_ref().map(|sites| {
                let mut v = vec![false; len];
                for s in sites.iter().filter(|s| &s.name == name) {
                    s.positions
                        .iter()
                        .filter(|i| **i >= 0 && (**i as usize) < len)
                        .for_each(|i| v[*i as usize] = true);
                }
                (v, vec![true; len])
            }),
            FeatureKind::Contact(_) => None,
        };
        if let Some((g, valid)) = values {
            has[s] = true;
            for j in 0..len {
                token_valid[j * nt + col] = valid[j] as u8 as f64;
                token[j * nt + col] = (g[j] && valid[j]) as u8 as f64;
            }
        }
    }
    let mut contact = None;
    let mut contact_valid = None;
    if let Some(s) = specs
        .iter()
        .position(|f| matches!(f.kind, FeatureKind::Contact(_)))
        && let (FeatureKind::Contact(rule), Some(ca)) = (&specs[s].kind, &record.ca_coords)
    {
        has[s] = true;
        let ok = ContactRule::usable(ca, record.resolved.as_deref(), len);
        let mut c = vec![0.0; len * len];
        let mut v = vec![0.0; len * len];
        for i in 0..len {
            for j in 0..len {
                if let Some(contact) = rule.pair(ca, &ok, i, j) {
                    v[i * len + j] = 1.0;
                    c[i * len + j] = contact as u8 as f64;
                }
            }
        }
        contact = Some(c);
        contact_valid = Some(v);
    }
    RecordFeatures {
        len,
        token,
        token_valid,
        has,
        contact,
        contact_valid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_groups_and_rejects_unknown_names() {
        let specs = expand(
            &["ss4".into(), "aa".into(), "site:metal".into(), "aa:K".into()],
            ContactRule::default(),
        )
        .unwrap();
        assert_eq!(specs.len(), 4 + 20 + 1);
        assert_eq!(specs[0].name, "ss4:helix");
        assert!(matches!(
            expand(&["bogus".into()], ContactRule::default()),
            Err(FeatureError::Unknown(_))
        ));
        assert!(matches!(
            expand(&["aa:Q2".into()], ContactRule::default()),
            Err(FeatureError::Unknown(_))
        ));
    }

    #[test]
    fn coverage_errors_name_the_feature() {
        let specs = expand(&["contact".into()], ContactRule::default()).unwrap();
        let err = check_coverage(&specs, &ColumnCoverage::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("contact") && err.contains("coordinates"), "{err}");
    }

    #[test]
    fn unlabelled_residues_are_not_valid_ss4_positions() {
        let specs = expand(&["ss4:helix".into(), "aa:M".into()], ContactRule::default()).unwrap();
        let mut r = ProteinRecord::new("a", "MKM", "t");
        r.ss8 = Some("H?-".into());
        let f = record_features(&r, &specs, 3);
        assert_eq!(f.token, vec![1.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(f.token_valid, vec![1.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
        assert_eq!(f.has, vec![true, true]);
    }
}
