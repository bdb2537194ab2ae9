//! Canonical Parquet input: one `.parquet` file, a directory of them (sorted
//! by name), or a published dataset directory (its `manifest.json` gives the
//! shard order). Rows are re-validated like any other input and re-sharded.

use std::fs::File;
use std::path::{Path, PathBuf};

use headscan_proto::manifest::{MANIFEST_FILE, Manifest};
use headscan_proto::record::from_batch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{IngestError, RecordSource, SourceItem, file_label, rejection};

/// The Parquet files of an input path, in row order.
pub fn list_files(input: &Path) -> Result<Vec<PathBuf>, IngestError> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let manifest_path = input.join(MANIFEST_FILE);
    if manifest_path.is_file() {
        let text =
            std::fs::read(&manifest_path).map_err(|e| IngestError::input(manifest_path.display(), e))?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| IngestError::input(manifest_path.display(), e))?;
        return Ok(manifest.shards.iter().map(|s| input.join(&s.url)).collect());
    }
    let dir = std::fs::read_dir(input).map_err(|e| IngestError::input(input.display(), e))?;
    let mut files = Vec::new();
    for entry in dir {
        let path = entry.map_err(|e| IngestError::input(input.display(), e))?.path();
        if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(IngestError::input(
            input.display(),
            "no .parquet files and no manifest.json",
        ));
    }
    Ok(files)
}

/// Opens canonical Parquet input.
pub fn open(input: &Path) -> Result<RecordSource, IngestError> {
    let files = list_files(input)?;
    let mut readers = Vec::with_capacity(files.len());
    // Open every file first so an unreadable one fails before any work.
    for path in &files {
        let file = File::open(path).map_err(|e| IngestError::input(path.display(), e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| IngestError::input(path.display(), format!("not a readable Parquet file: {e}")))?;
        let schema = builder.schema().clone();
        let reader = builder
            .with_batch_size(1024)
            .build()
            .map_err(|e| IngestError::input(path.display(), format!("not a readable Parquet file: {e}")))?;
        for required in ["id", "sequence"] {
            if schema.field_with_name(required).is_err() {
                return Err(IngestError::input(
                    path.display(),
                    format!("no `{required}` column"),
                ));
            }
        }
        readers.push((path.clone(), reader));
    }
    Ok(Box::new(readers.into_iter().flat_map(|(path, reader)| {
        let label = file_label(&path);
        let display = path.display().to_string();
        let mut row = 0usize;
        reader.flat_map(move |batch| -> Vec<Result<SourceItem, IngestError>> {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => return vec![Err(IngestError::input(&display, format!("row {row}: {e}")))],
            };
            let start = row;
            row += batch.num_rows();
            match from_batch(&batch) {
                Ok(records) => records
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut r)| {
                        if r.source.is_empty() {
                            r.source = format!("{label}:{}", start + i);
                        }
                        Ok(SourceItem::Record(r))
                    })
                    .collect(),
                // Some row is bad: convert row by row so only that row is lost.
                Err(_) => (0..batch.num_rows())
                    .map(|i| match from_batch(&batch.slice(i, 1)) {
                        Ok(mut v) => {
                            let mut r = v.remove(0);
                            if r.source.is_empty() {
                                r.source = format!("{label}:{}", start + i);
                            }
                            Ok(SourceItem::Record(r))
                        }
                        Err(e) => Ok(SourceItem::Rejected(rejection(
                            None,
                            format!("{label}:{}", start + i),
                            "malformed_record",
                            format!("row {}: {e}", start + i),
                        ))),
                    })
                    .collect(),
            }
        })
    })))
}
