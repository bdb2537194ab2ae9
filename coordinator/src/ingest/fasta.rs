//! FASTA: `>id description` header lines, then sequence lines; streamed.
//!
//! The id is the first word of the header. For UniProt-style headers
//! (`sp|P12345|NAME_HUMAN …`) the whole first word is kept, so ids stay unique.

use std::io::BufRead;
use std::path::Path;

use headscan_proto::record::ProteinRecord;

use super::{IngestError, RecordSource, SourceItem, file_label, open_text, rejection};

/// Opens a FASTA file (optionally `.gz`).
pub fn open(path: &Path) -> Result<RecordSource, IngestError> {
    let reader = open_text(path)?;
    Ok(Box::new(FastaReader::new(
        reader,
        file_label(path),
        path.display().to_string(),
    )))
}

/// Streaming FASTA parser over any buffered reader.
pub struct FastaReader<R> {
    reader: R,
    label: String,
    path: String,
    line_no: u64,
    record_no: u64,
    pending_header: Option<(String, u64)>,
    done: bool,
    line: String,
}

impl<R: BufRead> FastaReader<R> {
    /// A parser whose sources are named after `label`.
    pub fn new(reader: R, label: String, path: String) -> Self {
        Self {
            reader,
            label,
            path,
            line_no: 0,
            record_no: 0,
            pending_header: None,
            done: false,
            line: String::new(),
        }
    }

    fn read_line(&mut self) -> Result<bool, IngestError> {
        self.line.clear();
        let n = self
            .reader
            .read_line(&mut self.line)
            .map_err(|e| IngestError::input(&self.path, format!("line {}: {e}", self.line_no + 1)))?;
        if n > 0 {
            self.line_no += 1;
        }
        Ok(n > 0)
    }

    fn next_item(&mut self) -> Result<Option<SourceItem>, IngestError> {
        if self.done {
            return Ok(None);
        }
        // Find the header of the next record.
        let (header, header_line) = match self.pending_header.take() {
            Some(h) => h,
            None => loop {
                if !self.read_line()? {
                    self.done = true;
                    return Ok(None);
                }
                let t = self.line.trim();
                if t.is_empty() || t.starts_with(';') {
                    continue;
                }
                if let Some(h) = t.strip_prefix('>') {
                    break (h.to_string(), self.line_no);
                }
                let bad = rejection(
                    None,
                    format!("{}:{}", self.label, self.line_no),
                    "malformed_record",
                    format!("line {}: sequence data before any `>` header", self.line_no),
                );
                // Skip to the next header; the stray lines form one rejection.
                loop {
                    if !self.read_line()? {
                        self.done = true;
                        break;
                    }
                    if let Some(h) = self.line.trim().strip_prefix('>') {
                        self.pending_header = Some((h.to_string(), self.line_no));
                        break;
                    }
                }
                return Ok(Some(SourceItem::Rejected(bad)));
            },
        };
        self.record_no += 1;
        let mut sequence = String::new();
        loop {
            if !self.read_line()? {
                self.done = true;
                break;
            }
            let t = self.line.trim_end();
            if let Some(h) = t.strip_prefix('>') {
                self.pending_header = Some((h.to_string(), self.line_no));
                break;
            }
            if t.starts_with(';') {
                continue;
            }
            sequence.push_str(t.trim_start());
        }
        let id = header.split_whitespace().next().unwrap_or("").to_string();
        let source = format!("{}:{} (line {header_line})", self.label, self.record_no);
        Ok(Some(SourceItem::Record(ProteinRecord::new(id, sequence, source))))
    }
}

impl<R: BufRead> Iterator for FastaReader<R> {
    type Item = Result<SourceItem, IngestError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<SourceItem> {
        FastaReader::new(text.as_bytes(), "t.fasta".into(), "t.fasta".into())
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn reads_multiline_records_and_ids() {
        let items = parse(">sp|P1|A desc here\nMKT\nAQ\n\n>b\nGG\n>empty\n");
        let recs: Vec<&ProteinRecord> = items
            .iter()
            .filter_map(|i| match i {
                SourceItem::Record(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].id, "sp|P1|A");
        assert_eq!(recs[0].sequence, "MKTAQ");
        assert_eq!(recs[1].sequence, "GG");
        assert_eq!(recs[2].sequence, "");
        assert!(recs[1].source.starts_with("t.fasta:2"));
    }

    #[test]
    fn data_before_a_header_is_one_rejection() {
        let items = parse("MKT\nAAA\n>a\nMK\n");
        assert!(matches!(&items[0], SourceItem::Rejected(r) if r.kind == "malformed_record"));
        assert!(matches!(&items[1], SourceItem::Record(r) if r.id == "a" && r.sequence == "MK"));
        assert_eq!(items.len(), 2);
    }
}
