//! The canonical protein record (one row per chain) and its Arrow schema.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float32Builder, Int32Builder, ListArray, ListBuilder,
    RecordBatch, StringBuilder, StructBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Float32Type, Int32Type, Schema, SchemaRef};
use sha2::{Digest, Sha256};

/// Version of the canonical shard schema, written into every manifest.
pub const SCHEMA_VERSION: u32 = 1;

/// A named per-residue annotation that is neither a binding site nor a PTM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteAnnotation {
    /// Annotation name; the feature is `site:<name>`.
    pub name: String,
    /// 0-based residue indices, sorted and unique.
    pub positions: Vec<i32>,
}

/// One protein chain in canonical form (DESIGN §2).
#[derive(Debug, Clone, PartialEq)]
pub struct ProteinRecord {
    /// Unique within the dataset.
    pub id: String,
    /// Upper-case one-letter residue codes.
    pub sequence: String,
    /// Cα coordinates, 3·L values in Å; NaN for unresolved residues.
    pub ca_coords: Option<Vec<f32>>,
    /// Per residue: has coordinates.
    pub resolved: Option<Vec<bool>>,
    /// DSSP 8-state letters, `-` for coil and `?` for unlabelled residues.
    pub ss8: Option<String>,
    /// 0-based indices of binding-site residues, sorted and unique.
    pub binding_sites: Option<Vec<i32>>,
    /// 0-based indices of post-translationally modified residues, sorted and unique.
    pub ptm_sites: Option<Vec<i32>>,
    /// Other per-residue annotations, sorted by name.
    pub sites: Option<Vec<SiteAnnotation>>,
    /// File and record the row came from.
    pub source: String,
}

impl ProteinRecord {
    /// A record with only an id, a sequence and its source.
    pub fn new(id: impl Into<String>, sequence: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            sequence: sequence.into(),
            ca_coords: None,
            resolved: None,
            ss8: None,
            binding_sites: None,
            ptm_sites: None,
            sites: None,
            source: source.into(),
        }
    }

    /// Number of residues.
    pub fn len(&self) -> usize {
        self.sequence.len()
    }

    /// True for an empty sequence.
    pub fn is_empty(&self) -> bool {
        self.sequence.is_empty()
    }

    /// SHA-256 of the record's scientific content (every column but `source`),
    /// in a length-prefixed encoding, so equal data hash equal wherever it came from.
    pub fn content_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        fn bytes(h: &mut Sha256, tag: u8, b: &[u8]) {
            h.update([tag]);
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        fn ints(h: &mut Sha256, tag: u8, v: &Option<Vec<i32>>) {
            match v {
                None => h.update([tag, 0]),
                Some(v) => {
                    h.update([tag, 1]);
                    h.update((v.len() as u64).to_le_bytes());
                    v.iter().for_each(|x| h.update(x.to_le_bytes()));
                }
            }
        }
        bytes(&mut h, b'i', self.id.as_bytes());
        bytes(&mut h, b's', self.sequence.as_bytes());
        match &self.ca_coords {
            None => h.update([b'c', 0]),
            Some(c) => {
                h.update([b'c', 1]);
                h.update((c.len() as u64).to_le_bytes());
                // Canonical NaN so that every unresolved residue hashes alike.
                c.iter().for_each(|x| {
                    let v = if x.is_nan() { f32::NAN } else { *x };
                    h.update(v.to_bits().to_le_bytes())
                });
            }
        }
        match &self.resolved {
            None => h.update([b'r', 0]),
            Some(r) => {
                h.update([b'r', 1]);
                h.update((r.len() as u64).to_le_bytes());
                r.iter().for_each(|x| h.update([*x as u8]));
            }
        }
        match &self.ss8 {
            None => h.update([b'8', 0]),
            Some(s) => bytes(&mut h, b'8', s.as_bytes()),
        }
        ints(&mut h, b'b', &self.binding_sites);
        ints(&mut h, b'p', &self.ptm_sites);
        match &self.sites {
            None => h.update([b'x', 0]),
            Some(sites) => {
                h.update([b'x', 1]);
                h.update((sites.len() as u64).to_le_bytes());
                for s in sites {
                    bytes(&mut h, b'n', s.name.as_bytes());
                    ints(&mut h, b'q', &Some(s.positions.clone()));
                }
            }
        }
        h.finalize().into()
    }
}

fn list_of(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, false))),
        true,
    )
}

fn site_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        list_of("positions", DataType::Int32).with_nullable(false),
    ])
}

/// The Arrow schema of canonical shards (DESIGN §2).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("sequence", DataType::Utf8, false),
        list_of("ca_coords", DataType::Float32),
        list_of("resolved", DataType::Boolean),
        Field::new("ss8", DataType::Utf8, true),
        list_of("binding_sites", DataType::Int32),
        list_of("ptm_sites", DataType::Int32),
        Field::new(
            "sites",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(site_fields()),
                false,
            ))),
            true,
        ),
        Field::new("source", DataType::Utf8, false),
    ]))
}

/// Errors converting between records and Arrow batches.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Arrow refused the arrays.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A required column is missing or has the wrong type.
    #[error("column `{column}`: {problem}")]
    Column {
        /// Column name.
        column: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn item_field(schema: &Schema, name: &str) -> Arc<Field> {
    match schema.field_with_name(name).map(|f| f.data_type().clone()) {
        Ok(DataType::List(f)) => f,
        _ => unreachable!("schema() defines {name} as a list"),
    }
}

/// Converts records to one Arrow batch of the canonical schema.
pub fn to_batch(records: &[ProteinRecord]) -> Result<RecordBatch, RecordError> {
    let schema = schema();
    let mut id = StringBuilder::new();
    let mut seq = StringBuilder::new();
    let mut ca = ListBuilder::new(Float32Builder::new()).with_field(item_field(&schema, "ca_coords"));
    let mut res = ListBuilder::new(BooleanBuilder::new()).with_field(item_field(&schema, "resolved"));
    let mut ss8 = StringBuilder::new();
    let mut bind = ListBuilder::new(Int32Builder::new()).with_field(item_field(&schema, "binding_sites"));
    let mut ptm = ListBuilder::new(Int32Builder::new()).with_field(item_field(&schema, "ptm_sites"));
    let positions_field = Arc::new(Field::new("item", DataType::Int32, false));
    let mut sites = ListBuilder::new(StructBuilder::new(
        site_fields(),
        vec![
            Box::new(StringBuilder::new()),
            Box::new(ListBuilder::new(Int32Builder::new()).with_field(positions_field)),
        ],
    ))
    .with_field(item_field(&schema, "sites"));
    let mut source = StringBuilder::new();

    fn push_ints(b: &mut ListBuilder<Int32Builder>, v: &Option<Vec<i32>>) {
        match v {
            Some(v) => {
                b.values().append_slice(v);
                b.append(true);
            }
            None => b.append(false),
        }
    }

    for r in records {
        id.append_value(&r.id);
        seq.append_value(&r.sequence);
        match &r.ca_coords {
            Some(c) => {
                ca.values().append_slice(c);
                ca.append(true);
            }
            None => ca.append(false),
        }
        match &r.resolved {
            Some(v) => {
                v.iter().for_each(|x| res.values().append_value(*x));
                res.append(true);
            }
            None => res.append(false),
        }
        ss8.append_option(r.ss8.as_deref());
        push_ints(&mut bind, &r.binding_sites);
        push_ints(&mut ptm, &r.ptm_sites);
        match &r.sites {
            Some(list) => {
                let st = sites.values();
                for s in list {
                    st.field_builder::<StringBuilder>(0)
                        .expect("name builder")
                        .append_value(&s.name);
                    let pb = st
                        .field_builder::<ListBuilder<Int32Builder>>(1)
                        .expect("positions builder");
                    pb.values().append_slice(&s.positions);
                    pb.append(true);
                    st.append(true);
                }
                sites.append(true);
            }
            None => sites.append(false),
        }
        source.append_value(&r.source);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(seq.finish()),
        Arc::new(ca.finish()),
        Arc::new(res.finish()),
        Arc::new(ss8.finish()),
        Arc::new(bind.finish()),
        Arc::new(ptm.finish()),
        Arc::new(sites.finish()),
        Arc::new(source.finish()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a ArrayRef> {
    batch.column_by_name(name)
}

fn bad(column: &str, problem: impl Into<String>) -> RecordError {
    RecordError::Column {
        column: column.to_string(),
        problem: problem.into(),
    }
}

fn strings(
    batch: &RecordBatch,
    name: &str,
    required: bool,
) -> Result<Option<Vec<Option<String>>>, RecordError> {
    let Some(col) = column(batch, name) else {
        return if required {
            Err(bad(name, "missing"))
        } else {
            Ok(None)
        };
    };
    let out: Vec<Option<String>> = match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect(),
        DataType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect(),
        DataType::Utf8View => col
            .as_string_view()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect(),
        other => return Err(bad(name, format!("expected utf8, found {other}"))),
    };
    Ok(Some(out))
}

fn list_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<Option<&'a ListArray>, RecordError> {
    match column(batch, name) {
        None => Ok(None),
        Some(col) => col
            .as_list_opt::<i32>()
            .map(Some)
            .ok_or_else(|| bad(name, format!("expected list, found {}", col.data_type()))),
    }
}

fn int_lists(batch: &RecordBatch, name: &str) -> Result<Option<Vec<Option<Vec<i32>>>>, RecordError> {
    let Some(list) = list_column(batch, name)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for i in 0..list.len() {
        if list.is_null(i) {
            out.push(None);
            continue;
        }
        let v = list.value(i);
        if v.null_count() > 0 {
            return Err(bad(name, format!("row {i}: null inside the list")));
        }
        // int32 is canonical; int64 (pandas' and pyarrow's default) is taken when it fits.
        if let Some(v) = v.as_primitive_opt::<Int32Type>() {
            out.push(Some(v.values().to_vec()));
        } else if let Some(v) = v.as_primitive_opt::<arrow::datatypes::Int64Type>() {
            let narrowed: Result<Vec<i32>, _> = v.values().iter().map(|&x| i32::try_from(x)).collect();
            out.push(Some(narrowed.map_err(|_| {
                bad(name, format!("row {i}: a position does not fit in int32"))
            })?));
        } else {
            return Err(bad(
                name,
                format!(
                    "expected list<int32> or list<int64>, found list<{}>",
                    v.data_type()
                ),
            ));
        }
    }
    Ok(Some(out))
}

/// Converts a batch (canonical schema, or any batch holding at least `id` and
/// `sequence` with the canonical types) back into records.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<ProteinRecord>, RecordError> {
    let n = batch.num_rows();
    let ids = strings(batch, "id", true)?.unwrap_or_default();
    let seqs = strings(batch, "sequence", true)?.unwrap_or_default();
    let ss8 = strings(batch, "ss8", false)?;
    let source = strings(batch, "source", false)?;
    let bind = int_lists(batch, "binding_sites")?;
    let ptm = int_lists(batch, "ptm_sites")?;
    let ca = list_column(batch, "ca_coords")?;
    let res = list_column(batch, "resolved")?;
    let sites = list_column(batch, "sites")?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = ids[i]
            .clone()
            .ok_or_else(|| bad("id", format!("row {i}: null")))?;
        let sequence = seqs[i]
            .clone()
            .ok_or_else(|| bad("sequence", format!("row {i}: null (id {id})")))?;
        let ca_coords = match ca {
            Some(l) if !l.is_null(i) => {
                let v = l.value(i);
                // float32 is canonical; float64 (pandas' and pyarrow's default) is rounded to it.
                // A null coordinate inside the list means "unresolved": NaN.
                if let Some(v) = v.as_primitive_opt::<Float32Type>() {
                    Some(
                        (0..v.len())
                            .map(|k| if v.is_null(k) { f32::NAN } else { v.value(k) })
                            .collect(),
                    )
                } else if let Some(v) = v.as_primitive_opt::<arrow::datatypes::Float64Type>() {
                    Some(
                        (0..v.len())
                            .map(|k| if v.is_null(k) { f32::NAN } else { v.value(k) as f32 })
                            .collect(),
                    )
                } else {
                    return Err(bad(
                        "ca_coords",
                        format!(
                            "expected list<float32> or list<float64>, found list<{}>",
                            v.data_type()
                        ),
                    ));
                }
            }
            _ => None,
        };
        let resolved = match res {
            Some(l) if !l.is_null(i) => {
                let v = l.value(i);
                let v = v.as_boolean_opt().ok_or_else(|| {
                    bad(
                        "resolved",
                        format!("expected list<bool>, found list<{}>", v.data_type()),
                    )
                })?;
                Some((0..v.len()).map(|k| v.is_valid(k) && v.value(k)).collect())
            }
            _ => None,
        };
        let site_list = match sites {
            Some(l) if !l.is_null(i) => {
                let v = l.value(i);
                let st = v
                    .as_struct_opt()
                    .ok_or_else(|| bad("sites", "expected list<struct<name, positions>>"))?;
                let names = st
                    .column_by_name("name")
                    .and_then(|c| c.as_string_opt::<i32>())
                    .ok_or_else(|| bad("sites", "struct field `name` missing or not utf8"))?;
                let pos = st
                    .column_by_name("positions")
                    .and_then(|c| c.as_list_opt::<i32>())
                    .ok_or_else(|| bad("sites", "struct field `positions` missing or not a list"))?;
                let mut list = Vec::with_capacity(st.len());
                for k in 0..st.len() {
                    let p = pos.value(k);
                    let p = p
                        .as_primitive_opt::<Int32Type>()
                        .ok_or_else(|| bad("sites", "positions must be list<int32>"))?;
                    list.push(SiteAnnotation {
                        name: names.value(k).to_string(),
                        positions: p.values().to_vec(),
                    });
                }
                Some(list)
            }
            _ => None,
        };
        out.push(ProteinRecord {
            ss8: ss8.as_ref().and_then(|v| v[i].clone()),
            binding_sites: bind.as_ref().and_then(|v| v[i].clone()),
            ptm_sites: ptm.as_ref().and_then(|v| v[i].clone()),
            source: source.as_ref().and_then(|v| v[i].clone()).unwrap_or_default(),
            id,
            sequence,
            ca_coords,
            resolved,
            sites: site_list,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_record() -> ProteinRecord {
        ProteinRecord {
            id: "1abc.A".into(),
            sequence: "MKTA".into(),
            ca_coords: Some(vec![
                0.0,
                1.0,
                2.0,
                3.0,
                4.0,
                5.0,
                f32::NAN,
                f32::NAN,
                f32::NAN,
                9.0,
                10.0,
                11.0,
            ]),
            resolved: Some(vec![true, true, false, true]),
            ss8: Some("-HH?".into()),
            binding_sites: Some(vec![1]),
            ptm_sites: Some(vec![]),
            sites: Some(vec![SiteAnnotation {
                name: "metal".into(),
                positions: vec![0, 3],
            }]),
            source: "x.pdb:A".into(),
        }
    }

    #[test]
    fn batch_round_trip_keeps_every_column() {
        let records = vec![full_record(), ProteinRecord::new("b", "GG", "f.fasta:2")];
        let batch = to_batch(&records).unwrap();
        assert_eq!(batch.schema(), schema());
        let back = from_batch(&batch).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], records[1]);
        assert_eq!(back[0].content_digest(), records[0].content_digest());
        assert_eq!(back[0].sites, records[0].sites);
    }

    #[test]
    fn digest_ignores_source_but_not_content() {
        let a = full_record();
        let mut b = a.clone();
        b.source = "elsewhere".into();
        assert_eq!(a.content_digest(), b.content_digest());
        b.binding_sites = Some(vec![2]);
        assert_ne!(a.content_digest(), b.content_digest());
        let mut c = a.clone();
        c.ptm_sites = None;
        assert_ne!(a.content_digest(), c.content_digest());
    }
}
