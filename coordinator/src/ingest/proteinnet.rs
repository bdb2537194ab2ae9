//! ProteinNet text records: `[ID]`, `[PRIMARY]`, `[EVOLUTIONARY]` (21 rows),
//! `[SECONDARY]` (optional), `[TERTIARY]` (3 rows of 3·L values: N, Cα, C
//! per residue, picometres), `[MASK]` (`+` resolved, `-` missing).
//! Cα is the middle atom of each triple, converted to Å.

use std::io::BufRead;
use std::path::Path;

use headscan_proto::record::ProteinRecord;

use super::{IngestError, RecordSource, SourceItem, file_label, open_text, rejection};

/// Opens a ProteinNet text file (optionally `.gz`).
pub fn open(path: &Path) -> Result<RecordSource, IngestError> {
    let reader = open_text(path)?;
    Ok(Box::new(ProteinNetReader::new(
        reader,
        file_label(path),
        path.display().to_string(),
    )))
}

/// Streaming ProteinNet parser.
pub struct ProteinNetReader<R> {
    lines: std::io::Lines<R>,
    label: String,
    path: String,
    line_no: u64,
    record_no: u64,
    lookahead: Option<String>,
}

/// One record's blocks, as text lines.
#[derive(Default)]
struct RawRecord {
    id: Option<String>,
    primary: Option<String>,
    tertiary: Vec<String>,
    mask: Option<String>,
    has_tertiary: bool,
    start_line: u64,
    problems: Vec<String>,
}

impl<R: BufRead> ProteinNetReader<R> {
    /// A parser whose sources are named after `label`.
    pub fn new(reader: R, label: String, path: String) -> Self {
        Self {
            lines: reader.lines(),
            label,
            path,
            line_no: 0,
            record_no: 0,
            lookahead: None,
        }
    }

    fn next_line(&mut self) -> Result<Option<String>, IngestError> {
        if let Some(l) = self.lookahead.take() {
            return Ok(Some(l));
        }
        match self.lines.next() {
            None => Ok(None),
            Some(Ok(l)) => {
                self.line_no += 1;
                Ok(Some(l))
            }
            Some(Err(e)) => Err(IngestError::input(
                &self.path,
                format!("line {}: {e}", self.line_no + 1),
            )),
        }
    }

    /// Reads lines of a block until the next `[HEADER]` (left in lookahead).
    fn block(&mut self) -> Result<Vec<String>, IngestError> {
        let mut out = Vec::new();
        while let Some(l) = self.next_line()? {
            if l.starts_with('[') {
                self.lookahead = Some(l);
                break;
            }
            if !l.trim().is_empty() {
                out.push(l);
            }
        }
        Ok(out)
    }

    fn read_raw(&mut self) -> Result<Option<RawRecord>, IngestError> {
        // Skip to the first `[ID]`.
        let first = loop {
            match self.next_line()? {
                None => return Ok(None),
                Some(l) if l.trim().is_empty() => continue,
                Some(l) => break l,
            }
        };
        let mut raw = RawRecord {
            start_line: self.line_no,
            ..Default::default()
        };
        if first.trim() != "[ID]" {
            raw.problems.push(format!(
                "line {}: expected [ID], found {:?}",
                self.line_no,
                truncate(&first)
            ));
            // Resynchronise at the next [ID].
            while let Some(l) = self.next_line()? {
                if l.trim() == "[ID]" {
                    self.lookahead = Some(l);
                    break;
                }
            }
            return Ok(Some(raw));
        }
        let ids = self.block()?;
        raw.id = ids.first().map(|s| s.trim().to_string());
        loop {
            let Some(header) = self.next_line()? else { break };
            let header = header.trim().to_string();
            if header == "[ID]" {
                self.lookahead = Some(header);
                break;
            }
            let body = self.block()?;
            match header.as_str() {
                "[PRIMARY]" => raw.primary = body.first().map(|s| s.trim().to_string()),
                "[EVOLUTIONARY]" | "[SECONDARY]" => {}
                "[TERTIARY]" => {
                    raw.has_tertiary = true;
                    raw.tertiary = body;
                }
                "[MASK]" => raw.mask = body.first().map(|s| s.trim().to_string()),
                other => raw.problems.push(format!(
                    "line {}: unknown block {:?}",
                    self.line_no,
                    truncate(other)
                )),
            }
        }
        Ok(Some(raw))
    }

    fn convert(&self, raw: RawRecord) -> SourceItem {
        let source = format!("{}:{} (line {})", self.label, self.record_no, raw.start_line);
        let id = raw.id.clone().unwrap_or_default();
        let fail = |kind: &str, why: String| {
            SourceItem::Rejected(rejection(
                (!id.is_empty()).then_some(id.as_str()),
                source.clone(),
                kind,
                format!("ProteinNet record `{id}`: {why}"),
            ))
        };
        if let Some(p) = raw.problems.into_iter().next() {
            return fail("malformed_record", p);
        }
        let Some(primary) = raw.primary else {
            return fail(
                "malformed_record",
                "no [PRIMARY] block (truncated record?)".into(),
            );
        };
        let len = primary.chars().count();
        let mut record = ProteinRecord::new(id.clone(), primary, source.clone());
        if raw.has_tertiary {
            if raw.tertiary.len() != 3 {
                return fail(
                    "malformed_record",
                    format!("[TERTIARY] has {} rows (expected 3: x, y, z)", raw.tertiary.len()),
                );
            }
            let mut axes: Vec<Vec<f32>> = Vec::with_capacity(3);
            for (axis, row) in raw.tertiary.iter().enumerate() {
                let values: Result<Vec<f32>, _> = row.split_whitespace().map(str::parse::<f32>).collect();
                match values {
                    Ok(v) => axes.push(v),
                    Err(e) => {
                        return fail("malformed_record", format!("[TERTIARY] row {}: {e}", axis + 1));
                    }
                }
            }
            if axes.iter().any(|a| a.len() != 3 * len) {
                return fail(
                    "length_mismatch",
                    format!(
                        "[TERTIARY] rows have {}/{}/{} values for {len} residues (expected {} = 3 atoms × L)",
                        axes[0].len(),
                        axes[1].len(),
                        axes[2].len(),
                        3 * len
                    ),
                );
            }
            // Cα = atom 1 of each (N, Cα, C) triple; picometres → Å.
            let ca: Vec<f32> = (0..len)
                .flat_map(|i| {
                    [
                        axes[0][3 * i + 1] / 100.0,
                        axes[1][3 * i + 1] / 100.0,
                        axes[2][3 * i + 1] / 100.0,
                    ]
                })
                .collect();
            record.ca_coords = Some(ca);
        }
        if let Some(mask) = raw.mask {
            if mask.chars().count() != len {
                return fail(
                    "length_mismatch",
                    format!("[MASK] has {} entries for {len} residues", mask.chars().count()),
                );
            }
            if let Some(c) = mask.chars().find(|c| *c != '+' && *c != '-') {
                return fail(
                    "malformed_record",
                    format!("[MASK] character {c:?} (expected + or -)"),
                );
            }
            record.resolved = Some(mask.chars().map(|c| c == '+').collect());
        } else if record.ca_coords.is_some() {
            return fail("malformed_record", "[TERTIARY] without [MASK]".into());
        }
        SourceItem::Record(record)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

impl<R: BufRead> Iterator for ProteinNetReader<R> {
    type Item = Result<SourceItem, IngestError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.read_raw() {
            Err(e) => Some(Err(e)),
            Ok(None) => None,
            Ok(Some(raw)) => {
                self.record_no += 1;
                Some(Ok(self.convert(raw)))
            }
        }
    }
}

/// Writes one ProteinNet record (used by tests and fixture generators).
pub fn format_record(id: &str, primary: &str, ca_pm: &[[f32; 3]], mask: &str) -> String {
    let l = primary.len();
    let mut s = format!("[ID]\n{id}\n[PRIMARY]\n{primary}\n[EVOLUTIONARY]\n");
    for _ in 0..21 {
        s.push_str(&vec!["0"; l].join("\t"));
        s.push('\n');
    }
    s.push_str("[TERTIARY]\n");
    for axis in 0..3 {
        let row: Vec<String> = ca_pm
            .iter()
            .flat_map(|c| {
                [
                    format!("{}", c[axis] - 100.0),
                    format!("{}", c[axis]),
                    format!("{}", c[axis] + 100.0),
                ]
            })
            .collect();
        s.push_str(&row.join("\t"));
        s.push('\n');
    }
    s.push_str(&format!("[MASK]\n{mask}\n\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<SourceItem> {
        ProteinNetReader::new(text.as_bytes(), "pn".into(), "pn".into())
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn takes_the_middle_atom_in_angstrom() {
        let text = format_record(
            "A#1",
            "MKT",
            &[[100.0, 200.0, 300.0], [0.0, 0.0, 0.0], [1000.0, 0.0, 50.0]],
            "+-+",
        );
        let items = parse(&text);
        let SourceItem::Record(r) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(r.id, "A#1");
        let ca = r.ca_coords.as_ref().unwrap();
        assert_eq!(&ca[0..3], &[1.0, 2.0, 3.0]);
        assert_eq!(&ca[6..9], &[10.0, 0.0, 0.5]);
        assert_eq!(r.resolved, Some(vec![true, false, true]));
    }

    #[test]
    fn truncated_and_mismatched_records_are_rejected_but_others_kept() {
        let good = format_record("ok", "MK", &[[0.0; 3], [100.0; 3]], "++");
        let bad_len = format_record("short", "MKT", &[[0.0; 3], [100.0; 3]], "+++");
        let truncated = "[ID]\ncut\n[EVOLUTIONARY]\n0\n";
        let items = parse(&format!("{bad_len}{good}{truncated}"));
        assert!(matches!(&items[0], SourceItem::Rejected(r) if r.kind == "length_mismatch"));
        assert!(matches!(&items[1], SourceItem::Record(r) if r.id == "ok"));
        assert!(
            matches!(&items[2], SourceItem::Rejected(r) if r.kind == "malformed_record" && r.reason.contains("PRIMARY"))
        );
    }
}
