//! The end of a job: statistics over the reduced counts, the tables, the
//! report and `summary.json` under the job's output URL (DESIGN §4).

use std::collections::BTreeMap;

use headscan_proto::pb::PartialCounts;
use headscan_proto::store::{Location, StoreError};
use sha2::{Digest, Sha256};

use crate::config::RunConfig;
use crate::outputs::OutputError;
use crate::report::{ReportContext, ReportError, write_report};
use crate::selection::Selection;
use crate::stats::{StatsOptions, compute};

/// Errors writing a job's outputs.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// The tables could not be written.
    #[error(transparent)]
    Outputs(#[from] OutputError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Local scratch space failed.
    #[error("scratch space: {0}")]
    Io(#[from] std::io::Error),
    /// summary.json could not be encoded.
    #[error("summary.json: {0}")]
    Json(#[from] serde_json::Error),
    /// sequences.parquet could not be encoded.
    #[error(transparent)]
    Sequences(#[from] crate::sequence_table::SequenceTableError),
    /// The dataset could not be read back for the sequence pages.
    #[error("sequence pages: {0}")]
    Dataset(#[from] crate::dataset::DatasetError),
}

/// What a finished job knows besides its counts.
#[derive(Debug, Clone, Default)]
pub struct JobFacts {
    /// Job id.
    pub job_id: String,
    /// Model family as the workers reported it.
    pub model_family: String,
    /// Model digest (every file that defines it) as the workers reported it.
    pub model_digest: String,
    /// Digest of the model's config.json as the workers reported it.
    pub model_config_digest: String,
    /// Rows in the dataset.
    pub dataset_rows: u64,
    /// The dataset's content hash.
    pub dataset_content_hash: String,
    /// Shards left out, as "index path: reason".
    pub missing_shards: Vec<String>,
    /// Shards planned.
    pub shards: u32,
    /// Seconds from submission to the end of reduction.
    pub elapsed_s: f64,
    /// `sha256:` over the analysed record ids in dataset order, one per line.
    pub ids_sha256: String,
}

fn digest(s: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(s)))
}

/// Computes the statistics of `reduced` and writes every output of the job
/// under `cfg.out`; returns the files written.
pub async fn write_outputs(
    cfg: &RunConfig,
    reduced: &PartialCounts,
    facts: &JobFacts,
) -> Result<Vec<String>, FinishError> {
    let started = std::time::Instant::now();
    let (model_url, dataset_url, out_url) = (
        cfg.model.clone().unwrap_or_default(),
        cfg.dataset.clone().unwrap_or_default(),
        cfg.out.clone().unwrap_or_default(),
    );
    let options = StatsOptions {
        min_arcs: cfg.min_arcs,
        top_k: cfg.top_k,
        ..StatsOptions::default()
    };
    let results = compute(reduced, &options);
    let out = Location::parse(&out_url)?;
    let mut written = crate::outputs::write_tables(&results, &out).await?;
    let mut context = ReportContext {
        title: format!("{model_url} on {dataset_url}"),
        notes: cfg.notes.clone(),
        threshold: cfg.threshold,
        min_arcs: cfg.min_arcs,
        ..Default::default()
    };
    // The visualised records' attention, as the workers stored it, and their pages.
    if !cfg.visualize.is_empty() {
        let table = crate::sequence_table::encode(&reduced.visualized)?;
        out.put(crate::sequence_table::FILE, table.into()).await?;
        written.push(crate::sequence_table::FILE.into());
        let ids: Vec<String> = reduced.visualized.iter().map(|s| s.id.clone()).collect();
        let records = crate::dataset::Dataset::open(&dataset_url)
            .await?
            .find_records(&ids)
            .await?;
        for id in &cfg.visualize {
            if !ids.contains(id) {
                tracing::warn!(id = %id, "visualize: record not among the job's sequences, no page");
            }
        }
        let heads = crate::report::sequences::chosen_heads(&results, false);
        context.sequences =
            crate::report::sequences::views_from_stored(&reduced.visualized, &records, &heads);
    }
    // The report is written locally, then uploaded when the output is remote.
    let (report_dir, temp) = match out.local_dir() {
        Some(dir) => (dir.join("report"), None),
        None => {
            let t = tempfile_dir()?;
            (t.join("report"), Some(t))
        }
    };
    let report_files = {
        let (results, context, dir) = (results.clone(), context.clone(), report_dir.clone());
        tokio::task::spawn_blocking(move || write_report(&results, &context, &dir))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??
    };
    for f in &report_files {
        let name = f
            .strip_prefix(&report_dir)
            .unwrap_or(f)
            .to_string_lossy()
            .replace('\\', "/");
        if temp.is_some() {
            out.put(&format!("report/{name}"), std::fs::read(f)?.into())
                .await?;
        }
        written.push(format!("report/{name}"));
    }
    if let Some(t) = temp {
        let _ = std::fs::remove_dir_all(t);
    }
    let config_json = serde_json::to_vec(cfg)?;
    let summary = serde_json::json!({
        "software": format!("headscan {}", env!("CARGO_PKG_VERSION")),
        "job_id": facts.job_id,
        "model": model_url,
        "model_family": facts.model_family,
        "model_digest": facts.model_digest,
        "model_config_digest": facts.model_config_digest,
        "dataset": dataset_url,
        "dataset_content_hash": facts.dataset_content_hash,
        "config": cfg,
        "config_digest": digest(&config_json),
        "selection": {
            "mode": Selection::from_config(cfg).map(|s| s.mode()).unwrap_or("all"),
            "limit": cfg.limit,
            "sample": cfg.sample,
            "seed": cfg.seed,
            "dataset_rows": facts.dataset_rows,
            "selected": results.sequences,
            "ids_sha256": facts.ids_sha256,
        },
        "n_layers": results.n_layers,
        "n_heads": results.n_heads,
        "sequences": results.sequences,
        "residues": results.residues,
        "shards": facts.shards,
        "missing_shards": facts.missing_shards,
        "complete": facts.missing_shards.is_empty(),
        "background_rates": results.features.iter().map(|f| (f.feature.clone(), f.background_rate)).collect::<BTreeMap<_, _>>(),
        "blosum62_pearson_r": results.blosum62_pearson_r,
        "features": results.features,
        "outputs": written,
        "timings_s": { "total": facts.elapsed_s + started.elapsed().as_secs_f64(), "statistics_and_outputs": started.elapsed().as_secs_f64() },
    });
    out.put("summary.json", serde_json::to_vec_pretty(&summary)?.into())
        .await?;
    written.push("summary.json".into());
    Ok(written)
}

/// A fresh private scratch directory under the system temp dir.
fn tempfile_dir() -> Result<std::path::PathBuf, std::io::Error> {
    let dir = std::env::temp_dir().join(format!(
        "headscan-report-{}-{}",
        std::process::id(),
        headscan_proto::ids::JobId::random()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
