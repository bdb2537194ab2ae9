//! The one way headscan writes Parquet: zstd, stamped with headscan's
//! version — shards, result tables, embedding and pair tables alike.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

/// Writer properties of every Parquet file headscan writes.
pub fn writer_properties(level: ZstdLevel) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_created_by(format!("headscan {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A Parquet file written a batch at a time: each batch is flushed as its own
/// row group, so memory holds one batch.
pub struct TableWriter<W: std::io::Write + Send> {
    inner: ArrowWriter<W>,
    rows: u64,
}

impl<W: std::io::Write + Send> TableWriter<W> {
    /// A writer of `schema` into `sink` (zstd at the default level).
    pub fn new(sink: W, schema: SchemaRef) -> Result<Self, ParquetError> {
        let inner = ArrowWriter::try_new(sink, schema, Some(writer_properties(ZstdLevel::default())))?;
        Ok(Self { inner, rows: 0 })
    }

    /// Appends one batch as a row group.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        self.inner.write(batch)?;
        self.inner.flush()?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finishes the file; returns the rows written.
    pub fn finish(self) -> Result<u64, ParquetError> {
        self.inner.close()?;
        Ok(self.rows)
    }
}
