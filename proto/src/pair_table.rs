//! The per-pair attention tables of `headscan extract --attention-pairs`
//! (input of the attention contact probe): Parquet shards of `id, i, j,
//! layer, attention`, where `i < j` are 0-based residues with |i − j| ≥ 6
//! and `attention` holds α_ij of every head of the layer, then α_ji of every
//! head (fixed-size list of float32, 2 · heads values).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::embeddings::{EmbeddingsError, vector_array, vector_field};

/// Arrow schema of a pair shard with `width` values per row.
pub fn pair_schema(width: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("i", DataType::Int32, false),
        Field::new("j", DataType::Int32, false),
        Field::new("layer", DataType::Int32, false),
        vector_field("attention", width),
    ]))
}

/// Rows of a pair table, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairRows {
    /// Values per row.
    pub width: usize,
    /// Record id of each row.
    pub ids: Vec<String>,
    /// First residue (0-based).
    pub i: Vec<i32>,
    /// Second residue (0-based, > i).
    pub j: Vec<i32>,
    /// 0-based layer.
    pub layers: Vec<i32>,
    /// `width` values per row, row-major.
    pub values: Vec<f32>,
}

impl PairRows {
    /// Empty rows of `width` values.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            ..Self::default()
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends a row; `values` must hold `width` values.
    pub fn push(
        &mut self,
        id: &str,
        i: i32,
        j: i32,
        layer: i32,
        values: &[f32],
    ) -> Result<(), EmbeddingsError> {
        if values.len() != self.width {
            return Err(EmbeddingsError::Invalid(format!(
                "record {id} pair ({i}, {j}) layer {layer}: {} values, expected {}",
                values.len(),
                self.width
            )));
        }
        self.ids.push(id.to_string());
        self.i.push(i);
        self.j.push(j);
        self.layers.push(layer);
        self.values.extend_from_slice(values);
        Ok(())
    }

    /// The rows as an Arrow batch of [`pair_schema`].
    pub fn to_batch(&self) -> Result<RecordBatch, EmbeddingsError> {
        let list = vector_array(&self.values, self.width)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&self.ids)),
            Arc::new(Int32Array::from(self.i.clone())),
            Arc::new(Int32Array::from(self.j.clone())),
            Arc::new(Int32Array::from(self.layers.clone())),
            Arc::new(list),
        ];
        RecordBatch::try_new(pair_schema(self.width), columns)
            .map_err(|e| EmbeddingsError::Invalid(e.to_string()))
    }
}

/// Writes pair rows into one Parquet file (zstd), a batch at a time.
pub struct PairWriter<W: std::io::Write + Send> {
    inner: crate::parquet_writer::TableWriter<W>,
}

impl<W: std::io::Write + Send> PairWriter<W> {
    /// A writer of rows of `width` values into `sink`.
    pub fn new(sink: W, width: usize) -> Result<Self, EmbeddingsError> {
        let inner = crate::parquet_writer::TableWriter::new(sink, pair_schema(width))
            .map_err(|e| EmbeddingsError::Invalid(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Appends rows.
    pub fn write(&mut self, rows: &PairRows) -> Result<(), EmbeddingsError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.inner
            .write(&rows.to_batch()?)
            .map_err(|e| EmbeddingsError::Invalid(e.to_string()))
    }

    /// Finishes the file; returns the rows written.
    pub fn finish(self) -> Result<u64, EmbeddingsError> {
        self.inner
            .finish()
            .map_err(|e| EmbeddingsError::Invalid(e.to_string()))
    }
}
