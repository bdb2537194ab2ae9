//! The heads of a finished job that align best with one feature, read back
//! from its `heads.parquet` and laid out as a text table
//! (`headscan results top`).
//!
//! Heads excluded from the statistics (fewer arcs than `min_arcs`) are left
//! out; the rest are ranked by the proportion of their high-confidence arcs
//! (attention ≥ θ) on which the feature holds, ties by layer then head.

use std::fmt::Write as _;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, UInt64Type};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Errors reading a job's heads table.
#[derive(Debug, thiserror::Error)]
pub enum TopHeadsError {
    /// The table is unreadable or lacks a column.
    #[error("heads.parquet: {0}")]
    Table(String),
    /// No head of that feature has enough arcs.
    #[error("no head was analysed for feature `{0}` with enough arcs (min_arcs); features in this job: {1}")]
    NoHeads(String, String),
}

/// One head's row of `heads.parquet`, the columns the table shows.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadRow {
    /// 0-based layer.
    pub layer: u64,
    /// 0-based head.
    pub head: u64,
    /// High-confidence arcs.
    pub arcs: u64,
    /// Arcs on which the feature holds.
    pub hits: u64,
    /// hits / arcs.
    pub proportion: f64,
    /// The feature's background rate.
    pub background_rate: f64,
    /// proportion / background rate.
    pub enrichment: f64,
    /// Bonferroni-corrected 95% interval, low end.
    pub ci_low: f64,
    /// Bonferroni-corrected 95% interval, high end.
    pub ci_high: f64,
    /// Two-sided z-test p-value against the background.
    pub p_value: f64,
    /// Significant at α/m.
    pub significant: bool,
    /// Empirical p-value under the permutation null.
    pub null_p_value: f64,
}

/// The ranked heads of one feature.
#[derive(Debug, Clone)]
pub struct TopHeads {
    /// The feature.
    pub feature: String,
    /// Every included head, best first.
    pub heads: Vec<HeadRow>,
}

fn column(
    batch: &RecordBatch,
    name: &str,
    to: &DataType,
) -> Result<std::sync::Arc<dyn Array>, TopHeadsError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| TopHeadsError::Table(format!("no column `{name}`")))?;
    arrow::compute::cast(col, to).map_err(|e| TopHeadsError::Table(format!("column `{name}`: {e}")))
}

/// Ranks the included heads of `feature` in the bytes of a `heads.parquet`.
pub fn top_heads(heads_parquet: Bytes, feature: &str) -> Result<TopHeads, TopHeadsError> {
    let table = |e: &dyn std::fmt::Display| TopHeadsError::Table(e.to_string());
    let reader = ParquetRecordBatchReaderBuilder::try_new(heads_parquet)
        .map_err(|e| table(&e))?
        .build()
        .map_err(|e| table(&e))?;
    let mut heads = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for batch in reader {
        let batch = batch.map_err(|e| table(&e))?;
        let features = column(&batch, "feature", &DataType::Utf8)?;
        let features = features.as_string::<i32>();
        let excluded = column(&batch, "excluded", &DataType::Boolean)?;
        let significant = column(&batch, "significant", &DataType::Boolean)?;
        let (excluded, significant) = (excluded.as_boolean(), significant.as_boolean());
        let int = |name: &str| -> Result<Vec<u64>, TopHeadsError> {
            Ok(column(&batch, name, &DataType::UInt64)?
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec())
        };
        let float = |name: &str| -> Result<Vec<f64>, TopHeadsError> {
            Ok(column(&batch, name, &DataType::Float64)?
                .as_primitive::<Float64Type>()
                .values()
                .to_vec())
        };
        let (layer, head, arcs, hits) = (int("layer")?, int("head")?, int("arcs")?, int("hits")?);
        let (proportion, background_rate, enrichment) = (
            float("proportion")?,
            float("background_rate")?,
            float("enrichment")?,
        );
        let (ci_low, ci_high, p_value, null_p_value) = (
            float("ci_low")?,
            float("ci_high")?,
            float("p_value")?,
            float("null_p_value")?,
        );
        for i in 0..batch.num_rows() {
            seen.insert(features.value(i).to_string());
            if features.value(i) != feature || excluded.value(i) {
                continue;
            }
            heads.push(HeadRow {
                layer: layer[i],
                head: head[i],
                arcs: arcs[i],
                hits: hits[i],
                proportion: proportion[i],
                background_rate: background_rate[i],
                enrichment: enrichment[i],
                ci_low: ci_low[i],
                ci_high: ci_high[i],
                p_value: p_value[i],
                significant: significant.value(i),
                null_p_value: null_p_value[i],
            });
        }
    }
    if heads.is_empty() {
        let known: Vec<String> = seen.into_iter().collect();
        return Err(TopHeadsError::NoHeads(feature.to_string(), known.join(", ")));
    }
    heads.sort_by(|a, b| {
        b.proportion
            .total_cmp(&a.proportion)
            .then(a.layer.cmp(&b.layer))
            .then(a.head.cmp(&b.head))
    });
    Ok(TopHeads {
        feature: feature.to_string(),
        heads,
    })
}

impl TopHeads {
    /// Heads significantly above the background (two-sided z-test, Bonferroni).
    pub fn significant_above(&self) -> usize {
        self.heads
            .iter()
            .filter(|h| h.significant && h.proportion > h.background_rate)
            .count()
    }

    /// The first `k` heads as a text table, with a header line.
    pub fn table(&self, k: usize) -> String {
        let mut s = String::new();
        let background = self.heads[0].background_rate;
        let _ = writeln!(
            s,
            "Top {} of {} heads for `{}` (background {:.2}%; {} significantly above it after Bonferroni):",
            k.min(self.heads.len()),
            self.heads.len(),
            self.feature,
            100.0 * background,
            self.significant_above()
        );
        let _ = writeln!(
            s,
            "  {:>10}  {:>6}  {:>6}  {:>8}  {:>10}  {:>15}  {:>9}  {:>11}  {:>7}",
            "layer-head",
            "arcs",
            "hits",
            "percent",
            "enrichment",
            "95% CI (Bonf.)",
            "p",
            "significant",
            "null p"
        );
        for h in self.heads.iter().take(k) {
            let _ = writeln!(
                s,
                "  {:>10}  {:>6}  {:>6}  {:>7.2}%  {:>9.1}x  {:>6.2}%–{:>6.2}%  {:>9.1e}  {:>11}  {:>7.3}",
                format!("{}-{}", h.layer, h.head),
                h.arcs,
                h.hits,
                100.0 * h.proportion,
                h.enrichment,
                100.0 * h.ci_low,
                100.0 * h.ci_high,
                h.p_value,
                if h.significant { "yes" } else { "no" },
                h.null_p_value,
            );
        }
        s.push_str("  (layer-head 0-based; null p: permutation null of each query row, DESIGN §1)\n");
        s
    }
}
