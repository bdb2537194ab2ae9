//! Prints the heads of a finished `headscan run` that align best with one
//! feature, from its `heads.parquet`: what `scripts/demo.sh` shows at the end.
//!
//! ```sh
//! cargo run --example top_heads -- OUT_DIR [FEATURE] [K]    # FEATURE = contact, K = 5
//! ```
//!
//! Heads excluded from the statistics (fewer arcs than `min_arcs`) are left
//! out; the rest are ranked by the proportion of their high-confidence arcs
//! (attention ≥ θ) on which the feature holds.

use std::path::PathBuf;

use anyhow::{Context, bail};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One head's row of `heads.parquet`, the columns printed.
struct Head {
    layer: u64,
    head: u64,
    arcs: u64,
    hits: u64,
    proportion: f64,
    background_rate: f64,
    enrichment: f64,
    ci_low: f64,
    ci_high: f64,
    p_value: f64,
    significant: bool,
    null_p_value: f64,
}

/// A column cast to `to`, by name.
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> anyhow::Result<std::sync::Arc<dyn Array>> {
    let col = batch
        .column_by_name(name)
        .with_context(|| format!("heads.parquet has no column `{name}`"))?;
    Ok(arrow::compute::cast(col, to)?)
}

fn read_heads(path: &std::path::Path, feature: &str) -> anyhow::Result<Vec<Head>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut heads = Vec::new();
    for batch in reader {
        let batch = batch?;
        let features = column(&batch, "feature", &DataType::Utf8)?;
        let features = features.as_string::<i32>();
        let excluded = column(&batch, "excluded", &DataType::Boolean)?;
        let excluded = excluded.as_boolean();
        let significant = column(&batch, "significant", &DataType::Boolean)?;
        let significant = significant.as_boolean();
        let int = |name: &str| -> anyhow::Result<Vec<u64>> {
            let c = column(&batch, name, &DataType::UInt64)?;
            Ok(c.as_primitive::<UInt64Type>().values().to_vec())
        };
        let float = |name: &str| -> anyhow::Result<Vec<f64>> {
            let c = column(&batch, name, &DataType::Float64)?;
            Ok(c.as_primitive::<Float64Type>().values().to_vec())
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
            if features.value(i) != feature || excluded.value(i) {
                continue;
            }
            heads.push(Head {
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
    Ok(heads)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        bail!("usage: top_heads OUT_DIR [FEATURE] [K]   (OUT_DIR: the `out` of a headscan run)");
    };
    let feature = args.next().unwrap_or_else(|| "contact".to_string());
    let k: usize = match args.next() {
        Some(k) => k
            .parse()
            .with_context(|| format!("K must be a number, not `{k}`"))?,
        None => 5,
    };
    let mut heads = read_heads(&out.join("heads.parquet"), &feature)?;
    if heads.is_empty() {
        bail!(
            "{}: no head was analysed for feature `{feature}` with enough arcs (min_arcs)",
            out.display()
        );
    }
    let included = heads.len();
    // Significant (two-sided z-test, Bonferroni) and above the background.
    let significant = heads
        .iter()
        .filter(|h| h.significant && h.proportion > h.background_rate)
        .count();
    heads.sort_by(|a, b| {
        b.proportion
            .total_cmp(&a.proportion)
            .then(a.layer.cmp(&b.layer))
            .then(a.head.cmp(&b.head))
    });
    let background = heads[0].background_rate;
    println!(
        "Top {} of {included} heads for `{feature}` (background {:.2}%; {significant} significantly above it after Bonferroni):",
        k.min(included),
        100.0 * background
    );
    println!(
        "  {:>10}  {:>6}  {:>6}  {:>8}  {:>10}  {:>15}  {:>9}  {:>11}  {:>7}",
        "layer-head", "arcs", "hits", "percent", "enrichment", "95% CI (Bonf.)", "p", "significant", "null p"
    );
    for h in heads.iter().take(k) {
        println!(
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
    println!("  (layer-head 0-based; null p: permutation null of each query row, DESIGN §1)");
    Ok(())
}
