//! `headscan report`: rebuild a finished job's report from its tables,
//! sequence pages included when the job stored its visualised records'
//! attention (`sequences.parquet`); `--visualize` recomputes more of them
//! with the model (for records the job did not store, or jobs made before).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::report::sequences::{
    DISPLAY_FLOOR, SequenceView, chosen_heads, view_of_record, views_from_stored,
};
use headscan_coordinator::report::{load_results, write_report};
use headscan_coordinator::sequence_table;
use headscan_coordinator::stats::AnalysisResults;
use headscan_proto::record::ProteinRecord;
use headscan_proto::store::Location;

/// Flags of `headscan report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The job's output URL (a path, file://, s3://, gs://, az://) holding
    /// summary.json, heads.parquet, layers.parquet and aa_similarity.parquet.
    #[arg(long)]
    results: String,
    /// Local directory to write the report into (index.html and its files).
    #[arg(long)]
    out: PathBuf,
    /// More record ids to give a page (sequences/<id>.html) beside those the
    /// job stored in sequences.parquet: their attention is recomputed, so this
    /// needs the job's model and dataset.
    #[arg(long, value_delimiter = ',')]
    visualize: Vec<String>,
    /// Model for --visualize (default: the job's, from summary.json).
    #[arg(long)]
    model: Option<String>,
    /// Dataset for --visualize (default: the job's, from summary.json).
    #[arg(long)]
    dataset: Option<String>,
    /// Store every head on the sequence pages, not only each feature's top heads.
    /// The records stored with the job need only the dataset (for the
    /// sequence and the Cα trace), not the model.
    #[arg(long)]
    all_heads: bool,
    /// cpu or cuda:N (for --visualize).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Reads the tables and writes the report; prints the path of index.html.
pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let (results, mut context) = load_results(&args.results)
        .await
        .with_context(|| format!("cannot read the results at {}", args.results))?;
    context.sequences = stored_views(&args, &results).await?;
    let more: Vec<String> = unique_ids(&args.visualize)
        .into_iter()
        .filter(|id| !context.sequences.iter().any(|v| &v.id == id))
        .collect();
    if !more.is_empty() {
        context
            .sequences
            .extend(sequence_views(&args, &more, &results).await?);
    }
    let out = args.out.clone();
    let files = tokio::task::spawn_blocking(move || write_report(&results, &context, &out))
        .await?
        .with_context(|| format!("cannot write the report into {}", args.out.display()))?;
    tracing::info!(files = files.len(), out = %args.out.display(), "report written");
    writeln!(
        std::io::stdout().lock(),
        "{}",
        args.out.join("index.html").display()
    )?;
    Ok(())
}

/// The job's model, dataset and max_len from its summary.json.
async fn job_source(results: &str) -> anyhow::Result<(String, String, usize)> {
    let loc = Location::parse(results)?;
    let bytes = loc.get("summary.json").await?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).context("summary.json")?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let max_len = v
        .pointer("/config/max_len")
        .and_then(|x| x.as_u64())
        .unwrap_or(512) as usize;
    Ok((text("model"), text("dataset"), max_len))
}

/// The records named by --visualize, in the order given (duplicates and blanks dropped).
pub(crate) async fn find_records(url: &str, ids: &[String]) -> anyhow::Result<Vec<ProteinRecord>> {
    let dataset = Dataset::open(url)
        .await
        .with_context(|| format!("cannot open the dataset {url}"))?;
    let ids = unique_ids(ids);
    let found = dataset.find_records(&ids).await?;
    ids.iter()
        .map(|id| {
            found
                .iter()
                .find(|r| &r.id == id)
                .cloned()
                .with_context(|| format!("--visualize: no record `{id}` in the dataset {url}"))
        })
        .collect()
}

/// Ids in the order given, trimmed, without blanks or repeats.
fn unique_ids(ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !out.iter().any(|x| x == id) {
            out.push(id.to_string());
        }
    }
    out
}

/// Pages of the records whose attention the job stored (`sequences.parquet`),
/// with their sequence and Cα trace from the dataset; none when the job
/// stored none.
async fn stored_views(args: &ReportArgs, results: &AnalysisResults) -> anyhow::Result<Vec<SequenceView>> {
    let loc = Location::parse(&args.results)?;
    if !loc.exists(sequence_table::FILE).await? {
        return Ok(Vec::new());
    }
    let file = loc.child_url(sequence_table::FILE);
    let stored = sequence_table::decode(loc.get(sequence_table::FILE).await?, &file)?;
    if stored.is_empty() {
        return Ok(Vec::new());
    }
    let (_, job_dataset, _) = job_source(&args.results).await?;
    let dataset_url = args.dataset.clone().unwrap_or(job_dataset);
    let ids: Vec<String> = stored.iter().map(|s| s.id.clone()).collect();
    let records = find_records(&dataset_url, &ids).await?;
    Ok(views_from_stored(
        &stored,
        &records,
        &chosen_heads(results, args.all_heads),
    ))
}

/// Runs the model named by the flags (default: the job's) on the records `ids`.
async fn sequence_views(
    args: &ReportArgs,
    ids: &[String],
    results: &AnalysisResults,
) -> anyhow::Result<Vec<SequenceView>> {
    let (job_model, job_dataset, max_len) = job_source(&args.results).await?;
    let model_url = args.model.clone().unwrap_or(job_model);
    let dataset_url = args.dataset.clone().unwrap_or(job_dataset);
    let records = find_records(&dataset_url, ids).await?;
    let device_handle = headscan_worker::attention::parse_device(&args.device)?;
    let dir = headscan_worker::fetch::resolve_model(&model_url)
        .await
        .with_context(|| format!("cannot fetch model {model_url}"))?;
    let model = headscan_worker::models::load_model(&dir, &device_handle)
        .with_context(|| format!("cannot load model {}", dir.display()))?;
    views_of(&model, &records, results, args.all_heads, max_len, &args.device)
}

/// Each record's attention under `model`, keeping the chosen heads' arcs ≥ the display floor.
fn views_of(
    model: &headscan_worker::models::LoadedModel,
    records: &[ProteinRecord],
    results: &AnalysisResults,
    all_heads: bool,
    max_len: usize,
    device: &str,
) -> anyhow::Result<Vec<SequenceView>> {
    let device = &headscan_worker::attention::parse_device(device)?;
    let heads = chosen_heads(results, all_heads);
    let mut views = Vec::new();
    for r in records {
        let dense =
            headscan_worker::attention::sequence_attention(model, &r.sequence, max_len, false, device)
                .with_context(|| format!("attention of {}", r.id))?;
        let [nl, nh, n, n2] = dense.shape;
        anyhow::ensure!(n == n2, "attention of {} is not square", r.id);
        let mut view = view_of_record(r, n);
        for &(l, h) in &heads {
            let (l_, h_) = (l as usize, h as usize);
            if l_ >= nl || h_ >= nh {
                continue;
            }
            let base = (l_ * nh + h_) * n * n;
            let mut arcs = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    let w = dense.values[base + i * n + j];
                    if w >= DISPLAY_FLOOR {
                        arcs.push((i as u32, j as u32, w));
                    }
                }
            }
            view.heads.push((l, h, arcs));
        }
        views.push(view);
    }
    Ok(views)
}
