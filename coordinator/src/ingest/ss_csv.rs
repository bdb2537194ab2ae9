//! NetSurfP-2.0-style secondary-structure CSV (CB513, TS115, CASP12): a header
//! line naming the columns (`input, dssp3, dssp8, disorder, cb513_mask`), then
//! one chain per line, each field holding L space-separated per-residue tokens.
//!
//! `input` → sequence; `dssp8` → `ss8` (DSSP `C` written as `-`); `disorder`
//! (1.0 = ordered) → `resolved`, and disordered residues get the unlabelled
//! mark `?` because DSSP assigns them no state. The evaluation mask column is
//! not part of the canonical data. Rows have no ids: the id is `<file stem>:<row>`.

use std::io::BufRead;
use std::path::Path;

use headscan_proto::features::SS8_UNLABELLED;
use headscan_proto::record::ProteinRecord;

use super::{IngestError, RecordSource, SourceItem, file_label, open_text, rejection};

/// Opens a NetSurfP-style CSV (optionally `.gz`).
pub fn open(path: &Path) -> Result<RecordSource, IngestError> {
    let mut reader = open_text(path)?;
    let mut header = String::new();
    reader
        .read_line(&mut header)
        .map_err(|e| IngestError::input(path.display(), e))?;
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let find = |names: &[&str]| columns.iter().position(|c| names.contains(&c.as_str()));
    let seq_col = find(&["input", "seq", "sequence"]).ok_or_else(|| {
        IngestError::input(
            path.display(),
            format!("header {:?} has no `input` (sequence) column", header.trim()),
        )
    })?;
    let ss8_col = find(&["dssp8", "q8", "ss8"]).ok_or_else(|| {
        IngestError::input(
            path.display(),
            format!("header {:?} has no `dssp8` column", header.trim()),
        )
    })?;
    let disorder_col = find(&["disorder"]);
    let stem = path
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    let label = file_label(path);
    let display = path.display().to_string();
    let n_columns = columns.len();
    let mut lines = reader.lines().enumerate();
    Ok(Box::new(std::iter::from_fn(move || {
        loop {
            let (i, line) = lines.next()?;
            let line_no = i + 2;
            let line = match line {
                Ok(l) => l,
                Err(e) => return Some(Err(IngestError::input(&display, format!("line {line_no}: {e}")))),
            };
            if line.trim().is_empty() {
                continue;
            }
            let row = line_no - 1;
            let id = format!("{stem}:{row}");
            let source = format!("{label}:{line_no}");
            let fields: Vec<&str> = line.split(',').collect();
            let reject = |kind: &str, why: String| {
                Some(Ok(SourceItem::Rejected(rejection(
                    Some(&id),
                    source.clone(),
                    kind,
                    format!("row {row} (`{id}`): {why}"),
                ))))
            };
            if fields.len() != n_columns {
                return reject(
                    "malformed_record",
                    format!("{} fields (header has {n_columns})", fields.len()),
                );
            }
            let residues: Vec<&str> = fields[seq_col].split_whitespace().collect();
            let labels: Vec<&str> = fields[ss8_col].split_whitespace().collect();
            if residues
                .iter()
                .chain(labels.iter())
                .any(|t| t.chars().count() != 1)
            {
                return reject(
                    "malformed_record",
                    "per-residue tokens must be single letters".into(),
                );
            }
            if labels.len() != residues.len() {
                return reject(
                    "length_mismatch",
                    format!("{} dssp8 labels for {} residues", labels.len(), residues.len()),
                );
            }
            let mut record = ProteinRecord::new(id.clone(), residues.concat(), source.clone());
            let mut ss8: Vec<char> = labels
                .iter()
                .map(|t| match t.chars().next() {
                    Some('C') => '-',
                    Some(c) => c,
                    None => SS8_UNLABELLED,
                })
                .collect();
            if let Some(col) = disorder_col {
                let values: Result<Vec<f32>, _> =
                    fields[col].split_whitespace().map(str::parse::<f32>).collect();
                let Ok(values) = values else {
                    return reject("malformed_record", "disorder values must be numbers".into());
                };
                if values.len() != residues.len() {
                    return reject(
                        "length_mismatch",
                        format!("{} disorder values for {} residues", values.len(), residues.len()),
                    );
                }
                let resolved: Vec<bool> = values.iter().map(|v| *v > 0.5).collect();
                for (label, ok) in ss8.iter_mut().zip(&resolved) {
                    if !ok {
                        *label = SS8_UNLABELLED;
                    }
                }
                record.resolved = Some(resolved);
            }
            record.ss8 = Some(ss8.into_iter().collect());
            return Some(Ok(SourceItem::Record(record)));
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_csv_rows_and_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("TS_small.csv");
        std::fs::write(
            &path,
            "input, dssp3, dssp8, disorder, cb513_mask\n\
             M K T A , C H H C , C H G C , 0.0 1.0 1.0 1.0 , 1.0 1.0 1.0 1.0 \n\
             M K , C C , C , 1.0 1.0 , 1.0 1.0 \n\
             G S , E E , E B , 1.0 1.0 , 1.0 1.0 \n",
        )
        .unwrap();
        let items: Vec<SourceItem> = open(&path).unwrap().map(|i| i.unwrap()).collect();
        let SourceItem::Record(first) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(first.id, "TS_small:1");
        assert_eq!(first.sequence, "MKTA");
        assert_eq!(first.ss8.as_deref(), Some("?HG-"));
        assert_eq!(first.resolved, Some(vec![false, true, true, true]));
        assert!(
            matches!(&items[1], SourceItem::Rejected(r) if r.kind == "length_mismatch" && r.source == "TS_small.csv:3")
        );
        assert!(matches!(&items[2], SourceItem::Record(r) if r.ss8.as_deref() == Some("EB")));
    }
}
