//! UniProtKB flat files (`.dat`, optionally `.gz`): the id is the primary
//! accession, the sequence comes from the `SQ` block, and feature-table (`FT`)
//! entries become binding sites, PTMs or named sites through a [`FeatureMap`].
//!
//! Both feature-table layouts are read: the current one (`FT   BINDING  12..15`
//! with `/ligand=` qualifiers) and the pre-2019 one (`FT   BINDING  12  15  ATP.`).
//! Ranges cover every residue, except for `CROSSLNK` and `DISULFID`, whose two
//! ends are the linked residues. Uncertain positions (`?`) are skipped with a warning.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use headscan_proto::record::{ProteinRecord, SiteAnnotation};

use super::{IngestError, RecordSource, SourceItem, file_label, open_text, rejection};

/// Where a feature key's residues go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `binding_sites`.
    BindingSite,
    /// `ptm_sites`.
    Ptm,
    /// `sites` under this name.
    Site(String),
    /// Not recorded.
    Ignore,
}

/// Feature key (`BINDING`, `MOD_RES`, …) → [`Target`].
#[derive(Debug, Clone)]
pub struct FeatureMap {
    map: BTreeMap<String, Target>,
}

impl Default for FeatureMap {
    fn default() -> Self {
        let mut map = BTreeMap::new();
        for key in ["BINDING", "ACT_SITE", "SITE", "METAL", "NP_BIND"] {
            map.insert(key.to_string(), Target::BindingSite);
        }
        for key in ["MOD_RES", "CARBOHYD", "LIPID", "CROSSLNK"] {
            map.insert(key.to_string(), Target::Ptm);
        }
        Self { map }
    }
}

impl FeatureMap {
    /// The default map with `KEY=binding_site|ptm|site:<name>|ignore` overrides.
    pub fn with_overrides(overrides: &[String]) -> Result<Self, IngestError> {
        let mut m = Self::default();
        for o in overrides {
            let (key, target) = o.split_once('=').ok_or_else(|| {
                IngestError::Options(format!(
                    "--uniprot-map `{o}`: expected KEY=binding_site|ptm|site:<name>|ignore"
                ))
            })?;
            let target = match target.trim() {
                "binding_site" => Target::BindingSite,
                "ptm" => Target::Ptm,
                "ignore" => Target::Ignore,
                t => match t.strip_prefix("site:") {
                    Some(name) if !name.is_empty() => Target::Site(name.to_string()),
                    _ => {
                        return Err(IngestError::Options(format!(
                            "--uniprot-map `{o}`: target `{t}` is not binding_site, ptm, site:<name> or ignore"
                        )));
                    }
                },
            };
            m.map.insert(key.trim().to_ascii_uppercase(), target);
        }
        Ok(m)
    }

    /// The target of a feature key.
    pub fn target(&self, key: &str) -> &Target {
        self.map.get(key).unwrap_or(&Target::Ignore)
    }
}

/// Opens a UniProtKB flat file.
pub fn open(path: &Path, map: &FeatureMap) -> Result<RecordSource, IngestError> {
    let reader = open_text(path)?;
    Ok(Box::new(UniprotReader {
        lines: reader.lines(),
        label: file_label(path),
        path: path.display().to_string(),
        map: map.clone(),
        line_no: 0,
        pending: Vec::new(),
    }))
}

/// Streaming UniProtKB flat-file parser.
pub struct UniprotReader<R> {
    lines: std::io::Lines<R>,
    label: String,
    path: String,
    map: FeatureMap,
    line_no: u64,
    pending: Vec<SourceItem>,
}

/// One position or range of a feature, 1-based inclusive.
#[derive(Debug, PartialEq)]
enum Location {
    Range(i64, i64),
    Uncertain,
    OtherEntry,
}

fn parse_point(s: &str) -> Option<i64> {
    let t = s.trim().trim_start_matches(['<', '>', '?']);
    if s.trim().starts_with('?') && t.is_empty() {
        return None;
    }
    t.parse().ok()
}

fn parse_location(tokens: &[&str]) -> Option<Location> {
    let first = *tokens.first()?;
    if first.contains(':') {
        return Some(Location::OtherEntry);
    }
    if first.contains('?') && !first.contains("..") && parse_point(first).is_none() {
        return Some(Location::Uncertain);
    }
    if let Some((a, b)) = first.split_once("..") {
        if a.starts_with('?') || b.starts_with('?') {
            return Some(Location::Uncertain);
        }
        return Some(Location::Range(parse_point(a)?, parse_point(b)?));
    }
    if let Some((a, b)) = first.split_once('^') {
        // A site between two residues: both flank it.
        return Some(Location::Range(parse_point(a)?, parse_point(b)?));
    }
    let from = if first.starts_with('?') {
        return Some(Location::Uncertain);
    } else {
        parse_point(first)?
    };
    // Old layout: `from to description`; new layout: a single position.
    match tokens.get(1) {
        Some(t) if t.starts_with('?') => Some(Location::Uncertain),
        Some(t) => match parse_point(t) {
            Some(to) => Some(Location::Range(from, to)),
            None => Some(Location::Range(from, from)),
        },
        None => Some(Location::Range(from, from)),
    }
}

#[derive(Default)]
struct Entry {
    id: Option<String>,
    declared_len: Option<usize>,
    sequence: String,
    in_sequence: bool,
    binding: Vec<i32>,
    ptm: Vec<i32>,
    sites: BTreeMap<String, Vec<i32>>,
    problems: Vec<String>,
    warnings: Vec<String>,
    start_line: u64,
}

impl<R: BufRead> UniprotReader<R> {
    fn feature(&self, entry: &mut Entry, line: &str) {
        let body = &line[5.min(line.len())..];
        let key = body.split_whitespace().next().unwrap_or("");
        if key.starts_with('/') || body.starts_with(' ') {
            return; // qualifier or continuation line
        }
        let target = self.map.target(key);
        if *target == Target::Ignore {
            return;
        }
        let tokens: Vec<&str> = body.split_whitespace().skip(1).collect();
        let id = entry.id.clone().unwrap_or_default();
        let (from, to) = match parse_location(&tokens) {
            Some(Location::Range(a, b)) => (a, b),
            Some(Location::Uncertain) => {
                entry.warnings.push(format!(
                    "{id}: {key} at an uncertain position skipped (line {})",
                    self.line_no
                ));
                return;
            }
            Some(Location::OtherEntry) => {
                entry.warnings.push(format!(
                    "{id}: {key} located on another entry skipped (line {})",
                    self.line_no
                ));
                return;
            }
            None => {
                entry.problems.push(format!(
                    "line {}: cannot read the location of {key}: {:?}",
                    self.line_no,
                    body.trim()
                ));
                return;
            }
        };
        let positions: Vec<i64> = if matches!(key, "CROSSLNK" | "DISULFID") || to < from {
            if from == to { vec![from] } else { vec![from, to] }
        } else {
            (from..=to).collect()
        };
        let list = match target {
            Target::BindingSite => &mut entry.binding,
            Target::Ptm => &mut entry.ptm,
            Target::Site(name) => entry.sites.entry(name.clone()).or_default(),
            Target::Ignore => return,
        };
        // 1-based → 0-based; values outside i32 become -1 so validation names them.
        list.extend(positions.into_iter().map(|p| i32::try_from(p - 1).unwrap_or(-1)));
    }

    fn finish(&self, entry: Entry, complete: bool) -> Vec<SourceItem> {
        let mut out: Vec<SourceItem> = entry.warnings.into_iter().map(SourceItem::Warning).collect();
        let source = format!("{}:{}", self.label, entry.start_line);
        let id = entry.id.unwrap_or_default();
        let reject = |kind: &str, why: String| {
            SourceItem::Rejected(rejection(
                (!id.is_empty()).then_some(id.as_str()),
                source.clone(),
                kind,
                format!("UniProt entry `{id}` (line {}): {why}", entry.start_line),
            ))
        };
        let item = if !complete {
            reject("malformed_record", "truncated: no closing `//`".into())
        } else if id.is_empty() {
            reject("missing_id", "no AC line".into())
        } else if let Some(p) = entry.problems.into_iter().next() {
            reject("malformed_record", p)
        } else if entry.declared_len.is_some_and(|n| n != entry.sequence.len()) {
            reject(
                "length_mismatch",
                format!(
                    "SQ line declares {} residues but the sequence has {}",
                    entry.declared_len.unwrap_or(0),
                    entry.sequence.len()
                ),
            )
        } else {
            let mut r = ProteinRecord::new(id.clone(), entry.sequence, source.clone());
            r.binding_sites = Some(entry.binding);
            r.ptm_sites = Some(entry.ptm);
            r.sites = Some(
                entry
                    .sites
                    .into_iter()
                    .map(|(name, positions)| SiteAnnotation { name, positions })
                    .collect(),
            );
            SourceItem::Record(r)
        };
        out.push(item);
        out.reverse(); // drained with pop(): warnings first, record last
        out
    }

    fn read_entry(&mut self) -> Result<Option<Vec<SourceItem>>, IngestError> {
        let mut entry: Option<Entry> = None;
        loop {
            let line = match self.lines.next() {
                None => return Ok(entry.map(|e| self.finish(e, false))),
                Some(Err(e)) => {
                    return Err(IngestError::input(
                        &self.path,
                        format!("line {}: {e}", self.line_no + 1),
                    ));
                }
                Some(Ok(l)) => l,
            };
            self.line_no += 1;
            if line.trim().is_empty() {
                continue;
            }
            let e = entry.get_or_insert_with(|| Entry {
                start_line: self.line_no,
                ..Default::default()
            });
            if line.starts_with("//") {
                let e = entry.take().unwrap_or_default();
                return Ok(Some(self.finish(e, true)));
            }
            let code = line.get(..2).unwrap_or("");
            if e.in_sequence && line.starts_with("  ") {
                e.sequence.extend(line.chars().filter(|c| !c.is_whitespace()));
                continue;
            }
            match code {
                "AC" if e.id.is_none() => {
                    e.id = line[2..]
                        .split(';')
                        .next()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty());
                }
                "FT" => self.feature(e, &line),
                "SQ" => {
                    e.in_sequence = true;
                    e.declared_len = line
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .windows(2)
                        .find(|w| w[1].starts_with("AA"))
                        .and_then(|w| w[0].parse().ok());
                }
                _ => {}
            }
        }
    }
}

impl<R: BufRead> Iterator for UniprotReader<R> {
    type Item = Result<SourceItem, IngestError>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.pending.pop() {
            return Some(Ok(item));
        }
        match self.read_entry() {
            Err(e) => Some(Err(e)),
            Ok(None) => None,
            Ok(Some(items)) => {
                self.pending = items;
                self.pending.pop().map(Ok)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "ID   TEST_HUMAN              Reviewed;          12 AA.
AC   P00001; Q00002;
FT   BINDING         2..4
FT                   /ligand=\"ATP\"
FT   MOD_RES         7
FT                   /note=\"Phosphoserine\"
FT   CROSSLNK        1..12
FT   ACT_SITE        ?9
FT   DISULFID        3..10
SQ   SEQUENCE   12 AA;  1300 MW;  0000000000000000 CRC64;
     MKTAYSSKQR LE
//
ID   OLD_HUMAN               Reviewed;           5 AA.
AC   P00003;
FT   BINDING       2      2       ATP.
FT   MOD_RES       5      5       Phosphothreonine.
SQ   SEQUENCE   5 AA;  600 MW;  0000000000000000 CRC64;
     MKTAT
//
";

    fn records(text: &str, map: &FeatureMap) -> Vec<SourceItem> {
        let r = UniprotReader {
            lines: text.as_bytes().lines(),
            label: "t.dat".into(),
            path: "t.dat".into(),
            map: map.clone(),
            line_no: 0,
            pending: Vec::new(),
        };
        r.map(|x| x.unwrap()).collect()
    }

    #[test]
    fn reads_both_feature_layouts() {
        let items = records(NEW, &FeatureMap::default());
        let recs: Vec<&ProteinRecord> = items
            .iter()
            .filter_map(|i| {
                if let SourceItem::Record(r) = i {
                    Some(r)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].id, "P00001");
        assert_eq!(recs[0].sequence, "MKTAYSSKQRLE");
        assert_eq!(recs[0].binding_sites, Some(vec![1, 2, 3]));
        assert_eq!(recs[0].ptm_sites, Some(vec![6, 0, 11]));
        assert!(
            items
                .iter()
                .any(|i| matches!(i, SourceItem::Warning(w) if w.contains("uncertain")))
        );
        assert_eq!(recs[1].binding_sites, Some(vec![1]));
        assert_eq!(recs[1].ptm_sites, Some(vec![4]));
    }

    #[test]
    fn mapping_is_configurable() {
        let map = FeatureMap::with_overrides(&["DISULFID=site:disulfide".into(), "CROSSLNK=ignore".into()])
            .unwrap();
        let items = records(NEW, &map);
        let SourceItem::Record(r) = items.iter().find(|i| matches!(i, SourceItem::Record(_))).unwrap() else {
            unreachable!()
        };
        assert_eq!(r.ptm_sites, Some(vec![6]));
        assert_eq!(r.sites.as_ref().unwrap()[0].positions, vec![2, 9]);
        assert!(FeatureMap::with_overrides(&["BINDING=nonsense".into()]).is_err());
    }

    #[test]
    fn truncated_and_inconsistent_entries_are_rejected() {
        let text =
            NEW.replace("MKTAT\n//\n", "MKTA\n//\n") + "ID   CUT\nAC   P9;\nSQ   SEQUENCE 3 AA;\n     MKT\n";
        let items = records(&text, &FeatureMap::default());
        let kinds: Vec<&str> = items
            .iter()
            .filter_map(|i| {
                if let SourceItem::Rejected(r) = i {
                    Some(r.kind.as_str())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(kinds, vec!["length_mismatch", "malformed_record"]);
    }
}
