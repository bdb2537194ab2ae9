//! `sequences.parquet`: the attention of a job's visualised records (config
//! `visualize`), as the workers computed it — one row per kept weight
//! (`id`, `residues`, `layer`, `head`, `i`, `j`, `weight`; 0-based residues,
//! weights ≥ the workers' floor of 0.05), records in dataset order. The
//! report's sequence pages are built from it without the model.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use headscan_proto::pb::SequenceAttention;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::ZstdLevel;

/// File name of the table under a job's output.
pub const FILE: &str = "sequences.parquet";

/// Errors encoding or decoding the table.
#[derive(Debug, thiserror::Error)]
pub enum SequenceTableError {
    /// The table could not be encoded or read; names the file and the problem.
    #[error("{file}: {reason}")]
    Table {
        /// File (URL).
        file: String,
        /// Problem, naming the column where there is one.
        reason: String,
    },
}

fn fail(file: &str, reason: impl ToString) -> SequenceTableError {
    SequenceTableError::Table {
        file: file.to_string(),
        reason: reason.to_string(),
    }
}

/// The table's Parquet bytes.
pub fn encode(records: &[SequenceAttention]) -> Result<Vec<u8>, SequenceTableError> {
    let (mut id, mut residues) = (Vec::new(), Vec::new());
    let (mut layer, mut head, mut i, mut j, mut weight) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in records {
        let n = r.weight.len();
        if [r.layer.len(), r.head.len(), r.i.len(), r.j.len()] != [n; 4] {
            return Err(fail(FILE, format!("record {}: columns of unequal length", r.id)));
        }
        id.extend(std::iter::repeat_n(r.id.as_str(), n));
        residues.extend(std::iter::repeat_n(r.residues, n));
        layer.extend_from_slice(&r.layer);
        head.extend_from_slice(&r.head);
        i.extend_from_slice(&r.i);
        j.extend_from_slice(&r.j);
        weight.extend_from_slice(&r.weight);
    }
    let u32s = |v: Vec<u32>| Arc::new(UInt32Array::from(v)) as ArrayRef;
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(StringArray::from(id))),
        ("residues", u32s(residues)),
        ("layer", u32s(layer)),
        ("head", u32s(head)),
        ("i", u32s(i)),
        ("j", u32s(j)),
        ("weight", Arc::new(Float32Array::from(weight))),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|c| c.1).collect())
        .map_err(|e| fail(FILE, e))?;
    crate::outputs::parquet_bytes(&batch, ZstdLevel::default()).map_err(|e| fail(FILE, e))
}

/// The records of a `sequences.parquet` read from `file` (named in errors), in table order.
pub fn decode(bytes: Bytes, file: &str) -> Result<Vec<SequenceAttention>, SequenceTableError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| fail(file, e))?;
    let mut out: Vec<SequenceAttention> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| fail(file, e))?;
        let col = |name: &str, t: DataType| {
            batch
                .column_by_name(name)
                .filter(|c| c.data_type() == &t && c.null_count() == 0)
                .ok_or_else(|| fail(file, format!("column `{name}` missing, not {t}, or with nulls")))
        };
        let id = col("id", DataType::Utf8)?;
        let id = id
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| fail(file, "column `id`"))?;
        let u32s = |name: &str| -> Result<Vec<u32>, SequenceTableError> {
            let c = col(name, DataType::UInt32)?;
            let c = c
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or_else(|| fail(file, name))?;
            Ok(c.values().to_vec())
        };
        let (residues, layer, head) = (u32s("residues")?, u32s("layer")?, u32s("head")?);
        let (i, j) = (u32s("i")?, u32s("j")?);
        let w = col("weight", DataType::Float32)?;
        let w = w
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| fail(file, "weight"))?;
        for (r, &weight) in w.values().iter().enumerate() {
            let name = id.value(r);
            if out.last().is_none_or(|s| s.id != name) {
                out.push(SequenceAttention {
                    id: name.to_string(),
                    residues: residues[r],
                    ..Default::default()
                });
            }
            let s = out.last_mut().expect("pushed above");
            if i[r] >= s.residues || j[r] >= s.residues {
                return Err(fail(
                    file,
                    format!("row {r}: residue beyond the {} of `{name}`", s.residues),
                ));
            }
            s.layer.push(layer[r]);
            s.head.push(head[r]);
            s.i.push(i[r]);
            s.j.push(j[r]);
            s.weight.push(weight);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_records_in_order() {
        let s = |id: &str, w: f32| SequenceAttention {
            id: id.into(),
            residues: 4,
            layer: vec![0, 1],
            head: vec![2, 0],
            i: vec![3, 0],
            j: vec![1, 3],
            weight: vec![w, 0.25],
        };
        let records = vec![s("b", 0.5), s("a", 0.75)];
        let bytes = encode(&records).unwrap();
        assert_eq!(decode(Bytes::from(bytes.clone()), FILE).unwrap(), records);
        assert_eq!(encode(&records).unwrap(), bytes, "deterministic bytes");
    }

    #[test]
    fn a_residue_out_of_range_is_an_error_naming_the_record() {
        let mut bad = SequenceAttention {
            id: "x".into(),
            residues: 2,
            layer: vec![0],
            head: vec![0],
            i: vec![0],
            j: vec![5],
            weight: vec![0.5],
        };
        let e = decode(Bytes::from(encode(&[bad.clone()]).unwrap()), "f").unwrap_err();
        assert!(e.to_string().contains("`x`"), "{e}");
        bad.weight.clear();
        assert!(encode(&[bad]).is_err());
    }
}
