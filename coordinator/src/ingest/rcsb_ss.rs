//! RCSB's DSSP file `ss.txt`: FASTA-like pairs `>1ABC:A:sequence` then
//! `>1ABC:A:secstr`, both wrapped at a fixed width, blanks meaning coil.
//! The id is `<pdb id lower-case>.<chain>` (as provis names chains).

use std::io::BufRead;
use std::path::Path;

use headscan_proto::record::ProteinRecord;

use super::{IngestError, RecordSource, SourceItem, file_label, open_text, rejection};

/// One `>ID:CHAIN:kind` entry being read.
struct Entry {
    pdb: String,
    chain: String,
    kind: String,
    line_no: usize,
    /// Lines, each with the width of its sequence line kept (blanks are data).
    lines: Vec<String>,
}

fn header(line: &str, line_no: usize) -> Option<Entry> {
    let h = line.strip_prefix('>')?;
    let mut parts = h.trim_end().rsplitn(2, ':');
    let kind = parts.next()?.to_string();
    let rest = parts.next()?;
    let (pdb, chain) = rest.split_once(':')?;
    Some(Entry {
        pdb: pdb.to_ascii_lowercase(),
        chain: chain.to_string(),
        kind,
        line_no,
        lines: Vec::new(),
    })
}

/// Opens an RCSB `ss.txt` (optionally `.gz`).
pub fn open(path: &Path) -> Result<RecordSource, IngestError> {
    let reader = open_text(path)?;
    let label = file_label(path);
    let display = path.display().to_string();
    let mut lines = reader.lines().enumerate();
    let mut current: Option<Entry> = None;
    let mut sequence: Option<Entry> = None;
    let mut done = false;
    Ok(Box::new(std::iter::from_fn(move || {
        loop {
            if done {
                let orphan = sequence.take()?;
                let id = format!("{}.{}", orphan.pdb, orphan.chain);
                return Some(Ok(SourceItem::Rejected(rejection(
                    Some(&id),
                    format!("{label}:{}", orphan.line_no),
                    "malformed_record",
                    format!("`{id}`: sequence without a secstr entry (truncated file?)"),
                ))));
            }
            // Read until one entry completes (at the next header or at EOF).
            let completed = match lines.next() {
                Some((i, Ok(line))) => {
                    let line = line.trim_end_matches(['\r', '\n']).to_string();
                    if line.starts_with('>') {
                        let next = header(&line, i + 1);
                        let finished = current.take();
                        match next {
                            Some(e) => current = Some(e),
                            None => {
                                return Some(Ok(SourceItem::Rejected(rejection(
                                    None,
                                    format!("{label}:{}", i + 1),
                                    "malformed_record",
                                    format!(
                                        "line {}: header {line:?} is not >ID:CHAIN:sequence|secstr",
                                        i + 1
                                    ),
                                ))));
                            }
                        }
                        finished
                    } else {
                        if let Some(e) = current.as_mut() {
                            e.lines.push(line);
                        }
                        None
                    }
                }
                Some((i, Err(e))) => {
                    done = true;
                    return Some(Err(IngestError::input(&display, format!("line {}: {e}", i + 1))));
                }
                None => {
                    done = true;
                    current.take()
                }
            };
            let Some(entry) = completed else { continue };
            match entry.kind.as_str() {
                "sequence" => {
                    if let Some(orphan) = sequence.replace(entry) {
                        let id = format!("{}.{}", orphan.pdb, orphan.chain);
                        return Some(Ok(SourceItem::Rejected(rejection(
                            Some(&id),
                            format!("{label}:{}", orphan.line_no),
                            "malformed_record",
                            format!("`{id}`: sequence without a secstr entry"),
                        ))));
                    }
                }
                "secstr" => {
                    let id = format!("{}.{}", entry.pdb, entry.chain);
                    let source = format!("{label}:{}", entry.line_no);
                    let Some(seq) = sequence
                        .take()
                        .filter(|s| s.pdb == entry.pdb && s.chain == entry.chain)
                    else {
                        return Some(Ok(SourceItem::Rejected(rejection(
                            Some(&id),
                            source,
                            "malformed_record",
                            format!("`{id}`: secstr without a matching sequence entry"),
                        ))));
                    };
                    // Lines may have lost their trailing blanks: pad each to its sequence line.
                    let mut ss = String::new();
                    for (k, line) in entry.lines.iter().enumerate() {
                        let width = seq.lines.get(k).map(|l| l.chars().count()).unwrap_or(0);
                        ss.push_str(line);
                        for _ in line.chars().count()..width {
                            ss.push(' ');
                        }
                    }
                    let sequence_text: String = seq.lines.concat();
                    let mut record =
                        ProteinRecord::new(id, sequence_text, format!("{label}:{}", seq.line_no));
                    record.ss8 = Some(ss);
                    return Some(Ok(SourceItem::Record(record)));
                }
                other => {
                    let id = format!("{}.{}", entry.pdb, entry.chain);
                    return Some(Ok(SourceItem::Rejected(rejection(
                        Some(&id),
                        format!("{label}:{}", entry.line_no),
                        "malformed_record",
                        format!("`{id}`: unknown entry kind `{other}` (expected sequence or secstr)"),
                    ))));
                }
            }
        }
    })))
}
