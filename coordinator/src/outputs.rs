//! The tables of a job (DESIGN §4): `heads.parquet`, `layers.parquet`,
//! `null.parquet`, `aa_similarity.parquet`, written to any store location.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use headscan_proto::store::{Location, StoreError};
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;

use crate::stats::AnalysisResults;

/// Errors writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Encoding failed.
    #[error("encoding {file}: {reason}")]
    Encode {
        /// Table file.
        file: String,
        /// Problem.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A column under construction.
enum Column {
    Str(Vec<String>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
}

fn batch(file: &str, columns: Vec<(&str, Column)>) -> Result<RecordBatch, OutputError> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (name, col) in columns {
        let (dt, array): (DataType, ArrayRef) = match col {
            Column::Str(v) => (DataType::Utf8, Arc::new(StringArray::from(v))),
            Column::U32(v) => (DataType::UInt32, Arc::new(UInt32Array::from(v))),
            Column::U64(v) => (DataType::UInt64, Arc::new(UInt64Array::from(v))),
            Column::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v))),
            Column::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v))),
        };
        fields.push(Field::new(name, dt, false));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| OutputError::Encode {
        file: file.into(),
        reason: e.to_string(),
    })
}

/// Encodes one batch as a Parquet file in memory (zstd at `level`, stamped
/// with headscan's version): the one writer of shards and result tables.
pub fn parquet_bytes(
    batch: &RecordBatch,
    level: ZstdLevel,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let props = headscan_proto::parquet_writer::writer_properties(level);
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(buf)
}

/// Encodes a result table as Parquet bytes.
fn encode(file: &str, batch: &RecordBatch) -> Result<Vec<u8>, OutputError> {
    parquet_bytes(batch, ZstdLevel::default()).map_err(|e| OutputError::Encode {
        file: file.into(),
        reason: e.to_string(),
    })
}

/// The four tables as (file name, batch).
pub fn tables(r: &AnalysisResults) -> Result<Vec<(&'static str, RecordBatch)>, OutputError> {
    let h = &r.heads;
    let heads = batch(
        "heads.parquet",
        vec![
            (
                "feature",
                Column::Str(h.iter().map(|x| x.feature.clone()).collect()),
            ),
            ("layer", Column::U32(h.iter().map(|x| x.layer).collect())),
            ("head", Column::U32(h.iter().map(|x| x.head).collect())),
            ("arcs", Column::U64(h.iter().map(|x| x.arcs).collect())),
            ("hits", Column::U64(h.iter().map(|x| x.hits).collect())),
            (
                "proportion",
                Column::F64(h.iter().map(|x| x.proportion).collect()),
            ),
            ("attn_mass", Column::F64(h.iter().map(|x| x.attn_mass).collect())),
            (
                "weighted_hits",
                Column::F64(h.iter().map(|x| x.weighted_hits).collect()),
            ),
            (
                "weighted_proportion",
                Column::F64(h.iter().map(|x| x.weighted_proportion).collect()),
            ),
            (
                "background_hits",
                Column::U64(h.iter().map(|x| x.background_hits).collect()),
            ),
            (
                "background_total",
                Column::U64(h.iter().map(|x| x.background_total).collect()),
            ),
            (
                "background_rate",
                Column::F64(h.iter().map(|x| x.background_rate).collect()),
            ),
            (
                "enrichment",
                Column::F64(h.iter().map(|x| x.enrichment).collect()),
            ),
            ("ci_low", Column::F64(h.iter().map(|x| x.ci_low).collect())),
            ("ci_high", Column::F64(h.iter().map(|x| x.ci_high).collect())),
            ("z", Column::F64(h.iter().map(|x| x.z).collect())),
            ("p_value", Column::F64(h.iter().map(|x| x.p_value).collect())),
            (
                "significant",
                Column::Bool(h.iter().map(|x| x.significant).collect()),
            ),
            ("excluded", Column::Bool(h.iter().map(|x| x.excluded).collect())),
            ("null_mean", Column::F64(h.iter().map(|x| x.null_mean).collect())),
            ("null_std", Column::F64(h.iter().map(|x| x.null_std).collect())),
            (
                "null_p_value",
                Column::F64(h.iter().map(|x| x.null_p_value).collect()),
            ),
            (
                "null_mean_exact",
                Column::F64(h.iter().map(|x| x.null_mean_exact).collect()),
            ),
            (
                "null_std_exact",
                Column::F64(h.iter().map(|x| x.null_std_exact).collect()),
            ),
            (
                "null_weighted_mean_exact",
                Column::F64(h.iter().map(|x| x.null_weighted_mean_exact).collect()),
            ),
            (
                "null_weighted_std_exact",
                Column::F64(h.iter().map(|x| x.null_weighted_std_exact).collect()),
            ),
            (
                "null_weighted_z",
                Column::F64(h.iter().map(|x| x.null_weighted_z).collect()),
            ),
        ],
    )?;
    let l = &r.layers;
    let layers = batch(
        "layers.parquet",
        vec![
            (
                "feature",
                Column::Str(l.iter().map(|x| x.feature.clone()).collect()),
            ),
            ("layer", Column::U32(l.iter().map(|x| x.layer).collect())),
            (
                "mean_proportion",
                Column::F64(l.iter().map(|x| x.mean_proportion).collect()),
            ),
            (
                "max_proportion",
                Column::F64(l.iter().map(|x| x.max_proportion).collect()),
            ),
            (
                "heads_included",
                Column::U32(l.iter().map(|x| x.heads_included).collect()),
            ),
        ],
    )?;
    let n = &r.null;
    let null = batch(
        "null.parquet",
        vec![
            (
                "feature",
                Column::Str(n.iter().map(|x| x.feature.clone()).collect()),
            ),
            ("layer", Column::U32(n.iter().map(|x| x.layer).collect())),
            ("head", Column::U32(n.iter().map(|x| x.head).collect())),
            ("sample", Column::U32(n.iter().map(|x| x.sample).collect())),
            ("hits", Column::U64(n.iter().map(|x| x.hits).collect())),
        ],
    )?;
    let a = &r.aa_similarity;
    let aa = batch(
        "aa_similarity.parquet",
        vec![
            ("aa_a", Column::Str(a.iter().map(|x| x.aa_a.clone()).collect())),
            ("aa_b", Column::Str(a.iter().map(|x| x.aa_b.clone()).collect())),
            (
                "attention_r",
                Column::F64(a.iter().map(|x| x.attention_r).collect()),
            ),
            ("blosum62", Column::F64(a.iter().map(|x| x.blosum62).collect())),
        ],
    )?;
    Ok(vec![
        ("heads.parquet", heads),
        ("layers.parquet", layers),
        ("null.parquet", null),
        ("aa_similarity.parquet", aa),
    ])
}

/// Writes the four tables under `out`.
pub async fn write_tables(results: &AnalysisResults, out: &Location) -> Result<Vec<String>, OutputError> {
    let mut written = Vec::new();
    for (file, b) in tables(results)? {
        out.put(file, Bytes::from(encode(file, &b)?)).await?;
        written.push(file.to_string());
    }
    Ok(written)
}
