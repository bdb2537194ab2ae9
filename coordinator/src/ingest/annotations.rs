//! Per-residue annotation TSV for FASTA input: `id <TAB> feature <TAB> position`
//! (1-based), feature = `binding_site`, `ptm`, or any site name (`site:` prefix optional).
//! An optional header line starting with `id` is skipped; `#` lines are comments.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use headscan_proto::record::SiteAnnotation;

use super::{IngestError, RecordSource, SourceItem, open_text, rejection};

/// Annotations of one record, as read from the TSV.
#[derive(Debug, Default)]
struct RecordAnnotations {
    binding_sites: Vec<i32>,
    ptm_sites: Vec<i32>,
    sites: BTreeMap<String, Vec<i32>>,
    /// A malformed line for this id: the record is rejected with this reason.
    problem: Option<String>,
}

/// Parsed annotation table, keyed by record id.
#[derive(Debug, Default)]
pub struct AnnotationTable {
    by_id: HashMap<String, RecordAnnotations>,
    /// Lines that name no id at all.
    orphan_problems: Vec<String>,
}

fn parse_position(field: &str) -> Option<i32> {
    let p: i64 = field.trim().parse().ok()?;
    // 1-based → 0-based; out-of-range values are kept so validation names them.
    i32::try_from(p - 1).ok()
}

impl AnnotationTable {
    /// Reads a TSV file (optionally `.gz`).
    pub fn read(path: &Path) -> Result<Self, IngestError> {
        let reader = open_text(path)?;
        Self::parse(reader, &path.display().to_string())
    }

    /// Parses TSV text.
    pub fn parse(reader: impl BufRead, label: &str) -> Result<Self, IngestError> {
        let mut table = AnnotationTable::default();
        for (i, line) in reader.lines().enumerate() {
            let line_no = i + 1;
            let line = line.map_err(|e| IngestError::input(label, format!("line {line_no}: {e}")))?;
            let t = line.trim_end_matches(['\r', '\n']);
            if t.trim().is_empty() || t.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = t.split('\t').collect();
            if line_no == 1 && cols.first().is_some_and(|c| c.trim().eq_ignore_ascii_case("id")) {
                continue;
            }
            let id = cols.first().map(|c| c.trim()).unwrap_or("");
            if id.is_empty() {
                table
                    .orphan_problems
                    .push(format!("{label}:{line_no}: annotation line without an id"));
                continue;
            }
            let entry = table.by_id.entry(id.to_string()).or_default();
            if cols.len() != 3 {
                entry.problem.get_or_insert(format!(
                    "annotation {label}:{line_no} has {} columns (expected id, feature, position)",
                    cols.len()
                ));
                continue;
            }
            let feature = cols[1].trim();
            let Some(pos) = parse_position(cols[2]) else {
                entry.problem.get_or_insert(format!(
                    "annotation {label}:{line_no}: position {:?} is not an integer",
                    cols[2].trim()
                ));
                continue;
            };
            match feature {
                "binding_site" => entry.binding_sites.push(pos),
                "ptm" => entry.ptm_sites.push(pos),
                "" => {
                    entry
                        .problem
                        .get_or_insert(format!("annotation {label}:{line_no}: empty feature name"));
                }
                other => {
                    let name = other.strip_prefix("site:").unwrap_or(other);
                    entry.sites.entry(name.to_string()).or_default().push(pos);
                }
            }
        }
        Ok(table)
    }
}

/// Adds the TSV's annotations to every FASTA record. Records with malformed
/// annotation lines are rejected; annotations of ids never seen are warned about.
pub fn attach(records: RecordSource, tsv: &Path) -> Result<RecordSource, IngestError> {
    let mut table = AnnotationTable::read(tsv)?;
    let label = tsv.display().to_string();
    let mut pending: Vec<Result<SourceItem, IngestError>> = table
        .orphan_problems
        .drain(..)
        .map(|w| Ok(SourceItem::Warning(w)))
        .collect();
    let mut records = records;
    let mut finished = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if let Some(item) = pending.pop() {
            return Some(item);
        }
        if finished {
            return None;
        }
        match records.next() {
            Some(Ok(SourceItem::Record(mut r))) => {
                // Every record says it carries these annotations, even with none.
                r.binding_sites = Some(Vec::new());
                r.ptm_sites = Some(Vec::new());
                r.sites = Some(Vec::new());
                if let Some(a) = table.by_id.remove(r.id.trim()) {
                    if let Some(problem) = a.problem {
                        return Some(Ok(SourceItem::Rejected(rejection(
                            Some(&r.id),
                            r.source.clone(),
                            "malformed_annotation",
                            format!("record `{}`: {problem}", r.id),
                        ))));
                    }
                    r.binding_sites = Some(a.binding_sites);
                    r.ptm_sites = Some(a.ptm_sites);
                    r.sites = Some(
                        a.sites
                            .into_iter()
                            .map(|(name, positions)| SiteAnnotation { name, positions })
                            .collect(),
                    );
                }
                Some(Ok(SourceItem::Record(r)))
            }
            Some(other) => Some(other),
            None => {
                finished = true;
                let mut unused: Vec<&String> = table.by_id.keys().collect();
                unused.sort();
                if unused.is_empty() {
                    return None;
                }
                let shown: Vec<&str> = unused.iter().take(10).map(|s| s.as_str()).collect();
                Some(Ok(SourceItem::Warning(format!(
                    "{label}: annotations for {} id(s) not in the FASTA input were ignored: {}{}",
                    unused.len(),
                    shown.join(", "),
                    if unused.len() > 10 { ", …" } else { "" }
                ))))
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_features_and_header() {
        let t = AnnotationTable::parse(
            "id\tfeature\tposition\na\tbinding_site\t2\na\tptm\t1\na\tsite:metal\t3\nb\tmetal\tx\n"
                .as_bytes(),
            "ann.tsv",
        )
        .unwrap();
        let a = &t.by_id["a"];
        assert_eq!(a.binding_sites, vec![1]);
        assert_eq!(a.ptm_sites, vec![0]);
        assert_eq!(a.sites["metal"], vec![2]);
        assert!(t.by_id["b"].problem.as_ref().unwrap().contains("not an integer"));
    }
}
