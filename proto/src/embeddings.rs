//! The per-residue embedding tables written by `headscan extract` (the input
//! of the embedding probes): Parquet shards of `id, position, layer,
//! embedding` plus an `embeddings.json` manifest.
//!
//! `position` is the 0-based residue index in the record's sequence (special
//! tokens are never written), `layer` the 0-based layer whose output the
//! vector is (transformers' `hidden_states[layer + 1]`), `embedding` a
//! fixed-size list of `dim` float32 values.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// File name of the manifest inside an embeddings URL.
pub const EMBEDDINGS_MANIFEST: &str = "embeddings.json";

/// `kind` of an embeddings manifest.
pub const EMBEDDINGS_KIND: &str = "headscan.embeddings";

/// Version of the embedding table schema.
pub const EMBEDDINGS_SCHEMA_VERSION: u32 = 1;

/// A non-null column `name` of vectors of `width` float32 values.
pub(crate) fn vector_field(name: &str, width: usize) -> Field {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    Field::new(name, DataType::FixedSizeList(item, width as i32), false)
}

/// Row-major `values` as a column of vectors of `width` values.
pub(crate) fn vector_array(values: &[f32], width: usize) -> Result<FixedSizeListArray, EmbeddingsError> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    FixedSizeListArray::try_new(
        item,
        width as i32,
        Arc::new(Float32Array::from(values.to_vec())),
        None,
    )
    .map_err(|e| EmbeddingsError::Invalid(e.to_string()))
}

/// Arrow schema of an embedding shard whose vectors have `dim` values.
pub fn schema(dim: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("position", DataType::Int32, false),
        Field::new("layer", DataType::Int32, false),
        vector_field("embedding", dim),
    ]))
}

/// Rows of an embedding table, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbeddingRows {
    /// Values per vector.
    pub dim: usize,
    /// Record id of each row.
    pub ids: Vec<String>,
    /// 0-based residue index of each row.
    pub positions: Vec<i32>,
    /// 0-based layer of each row.
    pub layers: Vec<i32>,
    /// `dim` values per row, row-major.
    pub values: Vec<f32>,
}

impl EmbeddingRows {
    /// Empty rows of vectors of `dim` values.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Self::default()
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends one row; `vector` must hold `dim` values.
    pub fn push(
        &mut self,
        id: &str,
        position: i32,
        layer: i32,
        vector: &[f32],
    ) -> Result<(), EmbeddingsError> {
        if vector.len() != self.dim {
            return Err(EmbeddingsError::Invalid(format!(
                "record {id} layer {layer} position {position}: {} values, expected {}",
                vector.len(),
                self.dim
            )));
        }
        self.ids.push(id.to_string());
        self.positions.push(position);
        self.layers.push(layer);
        self.values.extend_from_slice(vector);
        Ok(())
    }

    /// The rows as an Arrow batch of [`schema`].
    pub fn to_batch(&self) -> Result<RecordBatch, EmbeddingsError> {
        let list = vector_array(&self.values, self.dim)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(&self.ids)),
            Arc::new(Int32Array::from(self.positions.clone())),
            Arc::new(Int32Array::from(self.layers.clone())),
            Arc::new(list),
        ];
        RecordBatch::try_new(schema(self.dim), columns).map_err(|e| EmbeddingsError::Invalid(e.to_string()))
    }

    /// Reads rows back from a batch of [`schema`]; `file` names the source in errors.
    pub fn from_batch(batch: &RecordBatch, file: &str) -> Result<Self, EmbeddingsError> {
        let bad = |reason: String| EmbeddingsError::Invalid(format!("{file}: {reason}"));
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| bad(format!("no column `{name}`")))
        };
        let ids = column("id")?
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| bad("column `id` is not utf8".into()))?;
        let int = |name: &str| -> Result<Vec<i32>, EmbeddingsError> {
            let a = column(name)?
                .as_any()
                .downcast_ref::<Int32Array>()
                .ok_or_else(|| bad(format!("column `{name}` is not int32")))?;
            Ok(a.values().to_vec())
        };
        let list = column("embedding")?
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .ok_or_else(|| bad("column `embedding` is not a fixed-size list".into()))?;
        let values = list
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| bad("column `embedding` does not hold float32".into()))?;
        if ids.null_count() > 0 || list.null_count() > 0 {
            return Err(bad("null id or embedding".into()));
        }
        let dim = list.value_length() as usize;
        let start = list.offset() * dim;
        Ok(Self {
            dim,
            ids: ids.iter().map(|s| s.unwrap_or_default().to_string()).collect(),
            positions: int("position")?,
            layers: int("layer")?,
            values: values.values()[start..start + list.len() * dim].to_vec(),
        })
    }
}

/// Writes embedding rows into one Parquet file (zstd), one row group per
/// [`EmbeddingWriter::write`] call at most, so memory stays one batch.
pub struct EmbeddingWriter<W: std::io::Write + Send> {
    inner: crate::parquet_writer::TableWriter<W>,
    dim: usize,
}

impl<W: std::io::Write + Send> EmbeddingWriter<W> {
    /// A writer of vectors of `dim` values into `sink`.
    pub fn new(sink: W, dim: usize) -> Result<Self, EmbeddingsError> {
        let inner = crate::parquet_writer::TableWriter::new(sink, schema(dim))
            .map_err(|e| EmbeddingsError::Invalid(e.to_string()))?;
        Ok(Self { inner, dim })
    }

    /// Appends rows (their `dim` must be the writer's).
    pub fn write(&mut self, rows: &EmbeddingRows) -> Result<(), EmbeddingsError> {
        if rows.is_empty() {
            return Ok(());
        }
        if rows.dim != self.dim {
            return Err(EmbeddingsError::Invalid(format!(
                "rows of {} values written to a table of {}",
                rows.dim, self.dim
            )));
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

/// Reads every row of an embedding Parquet file; `file` names it in errors.
pub fn read_embeddings(bytes: bytes::Bytes, file: &str) -> Result<EmbeddingRows, EmbeddingsError> {
    let bad = |e: String| EmbeddingsError::Invalid(format!("{file}: {e}"));
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(e.to_string()))?;
    let dim = match builder
        .schema()
        .field_with_name("embedding")
        .map(|f| f.data_type().clone())
    {
        Ok(DataType::FixedSizeList(_, n)) => n as usize,
        _ => {
            return Err(bad(
                "column `embedding` is missing or not a fixed-size list".into()
            ));
        }
    };
    let mut all = EmbeddingRows::new(dim);
    for batch in builder.build().map_err(|e| bad(e.to_string()))? {
        let part = EmbeddingRows::from_batch(&batch.map_err(|e| bad(e.to_string()))?, file)?;
        all.ids.extend(part.ids);
        all.positions.extend(part.positions);
        all.layers.extend(part.layers);
        all.values.extend(part.values);
    }
    Ok(all)
}

/// One shard of an embeddings table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingShard {
    /// Location relative to the embeddings URL.
    pub url: String,
    /// Dataset shard the records came from (relative to the dataset URL).
    pub source_shard: String,
    /// Records in the shard.
    pub records: u64,
    /// Rows (records × residues kept × layers).
    pub rows: u64,
    /// `sha256:` of the Parquet file's bytes.
    pub file_sha256: String,
    /// Size of the Parquet file in bytes.
    pub bytes: u64,
}

/// `embeddings.json`: what was extracted from which model and dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingManifest {
    /// Always [`EMBEDDINGS_KIND`].
    pub kind: String,
    /// [`EMBEDDINGS_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Software that wrote the table.
    pub created_by: String,
    /// The model as given on the command line.
    pub model: String,
    /// `sha256:` over every file that defines the model.
    pub model_digest: String,
    /// The dataset URL.
    pub dataset: String,
    /// The dataset's content hash (its manifest's `content_hash`).
    pub dataset_content_hash: String,
    /// Layers extracted, 0-based, ascending.
    pub layers: Vec<u32>,
    /// Values per embedding.
    pub dim: usize,
    /// Maximum tokens per sequence, specials included (longer ones are truncated).
    pub max_len: usize,
    /// Records over all shards.
    pub records: u64,
    /// Rows over all shards.
    pub rows: u64,
    /// The shards, in dataset shard order.
    pub shards: Vec<EmbeddingShard>,
    /// Attention heads per layer (a pair row holds 2 · heads values).
    #[serde(default)]
    pub heads: usize,
    /// `--attention-pairs` shards (`pairs/part-NNNNN.parquet`, see
    /// [`crate::pair_table`]), in dataset shard order; empty without the flag.
    #[serde(default)]
    pub pair_shards: Vec<EmbeddingShard>,
}

/// Errors of embedding tables.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingsError {
    /// Rows or a file that do not fit the schema.
    #[error("embeddings: {0}")]
    Invalid(String),
}
