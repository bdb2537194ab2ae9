//! Reading a finished job's tables back (`heads.parquet`, `layers.parquet`,
//! `aa_similarity.parquet`, `summary.json`) so `headscan report` can rebuild
//! its report without the counts. `null.parquet` is not read: the report
//! shows the null statistics already folded into `heads.parquet`.

use arrow::array::{Array, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use headscan_proto::store::Location;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::stats::{AaSimilarityRow, AnalysisResults, FeatureSummary, HeadRow, LayerRow, TopHead};

use super::{ReportContext, ReportError};

/// A finished job's results and the context its report states, read from `url`.
pub async fn load_results(url: &str) -> Result<(AnalysisResults, ReportContext), ReportError> {
    let loc = Location::parse(url).map_err(|e| ReportError::Input {
        file: url.to_string(),
        reason: e.to_string(),
    })?;
    let fetch = |name: &'static str| {
        let loc = &loc;
        async move {
            loc.get(name).await.map_err(|e| ReportError::Input {
                file: loc.child_url(name),
                reason: if e.is_not_found() {
                    "not found (is this a finished job's output?)".to_string()
                } else {
                    e.to_string()
                },
            })
        }
    };
    let summary_bytes = fetch("summary.json").await?;
    let summary: Value = serde_json::from_slice(&summary_bytes).map_err(|e| ReportError::Input {
        file: loc.child_url("summary.json"),
        reason: e.to_string(),
    })?;
    let file = loc.child_url("summary.json");
    let (n_layers, n_heads, sequences, residues) = (
        uint(&summary, "n_layers", &file)? as u32,
        uint(&summary, "n_heads", &file)? as u32,
        uint(&summary, "sequences", &file)?,
        uint(&summary, "residues", &file)?,
    );
    let features = features(&summary, &file)?;
    let heads = read_batches(&loc.child_url("heads.parquet"), fetch("heads.parquet").await?)?;
    let layers = read_batches(&loc.child_url("layers.parquet"), fetch("layers.parquet").await?)?;
    let aa = read_batches(
        &loc.child_url("aa_similarity.parquet"),
        fetch("aa_similarity.parquet").await?,
    )?;
    let results = AnalysisResults {
        n_layers,
        n_heads,
        sequences,
        residues,
        heads: head_rows(&loc.child_url("heads.parquet"), &heads)?,
        layers: layer_rows(&loc.child_url("layers.parquet"), &layers)?,
        null: Vec::new(),
        aa_similarity: aa_rows(&loc.child_url("aa_similarity.parquet"), &aa)?,
        blosum62_pearson_r: summary.get("blosum62_pearson_r").and_then(Value::as_f64),
        features,
    };
    let config = summary.get("config").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let context = ReportContext {
        title: format!("{} on {}", text(&summary, "model"), text(&summary, "dataset")),
        notes: config
            .get("notes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default(),
        threshold: config
            .get("threshold")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN),
        min_arcs: config.get("min_arcs").and_then(Value::as_u64).unwrap_or(0),
        ..Default::default()
    };
    Ok((results, context))
}

/// Decodes a Parquet file into its batches.
fn read_batches(file: &str, bytes: bytes::Bytes) -> Result<Vec<RecordBatch>, ReportError> {
    let bad = |reason: String| ReportError::Input {
        file: file.to_string(),
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(e.to_string()))?;
    reader.map(|b| b.map_err(|e| bad(e.to_string()))).collect()
}

/// A typed column of `batch` by name, or an error naming the file and column.
fn column<'b, T: 'static>(file: &str, batch: &'b RecordBatch, name: &str) -> Result<&'b T, ReportError> {
    let bad = |reason: &str| ReportError::Input {
        file: file.to_string(),
        reason: format!("column {name}: {reason}"),
    };
    let array = batch.column_by_name(name).ok_or_else(|| bad("missing"))?;
    if array.null_count() > 0 {
        return Err(bad("has nulls"));
    }
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| bad(&format!("unexpected type {}", array.data_type())))
}

/// Column accessors for one batch of one file.
struct Cols<'b> {
    file: &'b str,
    batch: &'b RecordBatch,
}

impl Cols<'_> {
    fn s(&self, name: &str) -> Result<Vec<String>, ReportError> {
        let c = column::<StringArray>(self.file, self.batch, name)?;
        Ok(c.iter().map(|v| v.unwrap_or("").to_string()).collect())
    }
    fn u32(&self, name: &str) -> Result<Vec<u32>, ReportError> {
        Ok(column::<UInt32Array>(self.file, self.batch, name)?
            .values()
            .to_vec())
    }
    fn u64(&self, name: &str) -> Result<Vec<u64>, ReportError> {
        Ok(column::<UInt64Array>(self.file, self.batch, name)?
            .values()
            .to_vec())
    }
    fn f64(&self, name: &str) -> Result<Vec<f64>, ReportError> {
        Ok(column::<Float64Array>(self.file, self.batch, name)?
            .values()
            .to_vec())
    }
    fn bool(&self, name: &str) -> Result<Vec<bool>, ReportError> {
        let c = column::<BooleanArray>(self.file, self.batch, name)?;
        Ok((0..c.len()).map(|i| c.value(i)).collect())
    }
}

/// The rows of `heads.parquet`.
fn head_rows(file: &str, batches: &[RecordBatch]) -> Result<Vec<HeadRow>, ReportError> {
    let mut rows = Vec::new();
    for batch in batches {
        let c = Cols { file, batch };
        let (feature, layer, head) = (c.s("feature")?, c.u32("layer")?, c.u32("head")?);
        let (arcs, hits, bh, bt) = (
            c.u64("arcs")?,
            c.u64("hits")?,
            c.u64("background_hits")?,
            c.u64("background_total")?,
        );
        let f = |n: &str| c.f64(n);
        let (proportion, attn_mass, weighted_hits, weighted_proportion) = (
            f("proportion")?,
            f("attn_mass")?,
            f("weighted_hits")?,
            f("weighted_proportion")?,
        );
        let (background_rate, enrichment, ci_low, ci_high, z, p_value) = (
            f("background_rate")?,
            f("enrichment")?,
            f("ci_low")?,
            f("ci_high")?,
            f("z")?,
            f("p_value")?,
        );
        let (significant, excluded) = (c.bool("significant")?, c.bool("excluded")?);
        let (null_mean, null_std, null_p_value, nme, nse, nwme, nwse, nwz) = (
            f("null_mean")?,
            f("null_std")?,
            f("null_p_value")?,
            f("null_mean_exact")?,
            f("null_std_exact")?,
            f("null_weighted_mean_exact")?,
            f("null_weighted_std_exact")?,
            f("null_weighted_z")?,
        );
        for i in 0..batch.num_rows() {
            rows.push(HeadRow {
                feature: feature[i].clone(),
                layer: layer[i],
                head: head[i],
                arcs: arcs[i],
                hits: hits[i],
                proportion: proportion[i],
                attn_mass: attn_mass[i],
                weighted_hits: weighted_hits[i],
                weighted_proportion: weighted_proportion[i],
                background_hits: bh[i],
                background_total: bt[i],
                background_rate: background_rate[i],
                enrichment: enrichment[i],
                ci_low: ci_low[i],
                ci_high: ci_high[i],
                z: z[i],
                p_value: p_value[i],
                significant: significant[i],
                excluded: excluded[i],
                null_mean: null_mean[i],
                null_std: null_std[i],
                null_p_value: null_p_value[i],
                null_mean_exact: nme[i],
                null_std_exact: nse[i],
                null_weighted_mean_exact: nwme[i],
                null_weighted_std_exact: nwse[i],
                null_weighted_z: nwz[i],
            });
        }
    }
    Ok(rows)
}

/// The rows of `layers.parquet`.
fn layer_rows(file: &str, batches: &[RecordBatch]) -> Result<Vec<LayerRow>, ReportError> {
    let mut rows = Vec::new();
    for batch in batches {
        let c = Cols { file, batch };
        let (feature, layer) = (c.s("feature")?, c.u32("layer")?);
        let (mean, max, included) = (
            c.f64("mean_proportion")?,
            c.f64("max_proportion")?,
            c.u32("heads_included")?,
        );
        for i in 0..batch.num_rows() {
            rows.push(LayerRow {
                feature: feature[i].clone(),
                layer: layer[i],
                mean_proportion: mean[i],
                max_proportion: max[i],
                heads_included: included[i],
            });
        }
    }
    Ok(rows)
}

/// The rows of `aa_similarity.parquet`.
fn aa_rows(file: &str, batches: &[RecordBatch]) -> Result<Vec<AaSimilarityRow>, ReportError> {
    let mut rows = Vec::new();
    for batch in batches {
        let c = Cols { file, batch };
        let (a, b, r, blosum) = (
            c.s("aa_a")?,
            c.s("aa_b")?,
            c.f64("attention_r")?,
            c.f64("blosum62")?,
        );
        for i in 0..batch.num_rows() {
            rows.push(AaSimilarityRow {
                aa_a: a[i].clone(),
                aa_b: b[i].clone(),
                attention_r: r[i],
                blosum62: blosum[i],
            });
        }
    }
    Ok(rows)
}

/// A required unsigned integer field of `summary.json`.
fn uint(v: &Value, key: &str, file: &str) -> Result<u64, ReportError> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| ReportError::Input {
            file: file.to_string(),
            reason: format!("field {key}: missing or not an unsigned integer"),
        })
}

/// A number of `summary.json` where null (how JSON writes NaN) reads back as NaN.
fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// The `features` array of `summary.json`.
fn features(summary: &Value, file: &str) -> Result<Vec<FeatureSummary>, ReportError> {
    let Some(list) = summary.get("features").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let feature = f
            .get("feature")
            .and_then(Value::as_str)
            .ok_or_else(|| ReportError::Input {
                file: file.to_string(),
                reason: format!("features[{i}].feature: missing or not a string"),
            })?;
        let top_heads = f
            .get("top_heads")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|t| TopHead {
                        layer: t.get("layer").and_then(Value::as_u64).unwrap_or(0) as u32,
                        head: t.get("head").and_then(Value::as_u64).unwrap_or(0) as u32,
                        proportion: num(t, "proportion"),
                        ci_low: num(t, "ci_low"),
                        ci_high: num(t, "ci_high"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(FeatureSummary {
            feature: feature.to_string(),
            background_rate: num(f, "background_rate"),
            center_of_gravity: num(f, "center_of_gravity"),
            heads_included: f.get("heads_included").and_then(Value::as_u64).unwrap_or(0) as u32,
            heads_significant: f.get("heads_significant").and_then(Value::as_u64).unwrap_or(0) as u32,
            top_heads,
        });
    }
    Ok(out)
}
