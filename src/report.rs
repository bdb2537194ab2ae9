//! `headscan report`: rebuild a finished job's report from its tables, and
//! optionally give chosen sequences pages of their own (their attention is
//! recomputed with the job's model on those records only).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::report::sequences::{DISPLAY_FLOOR, SequenceView};
use headscan_coordinator::report::{load_results, write_report};
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
    /// Record ids that get a page each (sequences/<id>.html): the heads'
    /// attention as arcs and on the Cα trace. Needs the job's model and dataset.
    #[arg(long, value_delimiter = ',')]
    visualize: Vec<String>,
    /// Model for --visualize (default: the job's, from summary.json).
    #[arg(long)]
    model: Option<String>,
    /// Dataset for --visualize (default: the job's, from summary.json).
    #[arg(long)]
    dataset: Option<String>,
    /// Store every head on the sequence pages, not only each feature's top heads.
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
    if !args.visualize.is_empty() {
        context.sequences = sequence_views(&args, &results).await?;
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
    let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let mut found: Vec<ProteinRecord> = Vec::new();
    for shard in &dataset.manifest.shards {
        if found.len() == wanted.len() {
            break;
        }
        for r in dataset.read_shard(shard).await? {
            if wanted.contains(r.id.as_str()) && !found.iter().any(|f| f.id == r.id) {
                found.push(r);
            }
        }
    }
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

/// The heads stored on the pages: each feature's top heads, or all.
fn chosen_heads(results: &AnalysisResults, all: bool) -> BTreeSet<(u32, u32)> {
    let mut heads = BTreeSet::new();
    if all || results.features.iter().all(|f| f.top_heads.is_empty()) {
        for l in 0..results.n_layers {
            for h in 0..results.n_heads {
                heads.insert((l, h));
            }
        }
    } else {
        for f in &results.features {
            heads.extend(f.top_heads.iter().map(|t| (t.layer, t.head)));
        }
    }
    heads
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

/// Runs the model named by the flags (default: the job's) on each chosen record.
async fn sequence_views(args: &ReportArgs, results: &AnalysisResults) -> anyhow::Result<Vec<SequenceView>> {
    let (job_model, job_dataset, max_len) = job_source(&args.results).await?;
    let model_url = args.model.clone().unwrap_or(job_model);
    let dataset_url = args.dataset.clone().unwrap_or(job_dataset);
    let records = find_records(&dataset_url, &args.visualize).await?;
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
        let mut view = SequenceView {
            id: r.id.clone(),
            sequence: r.sequence.chars().take(n).collect(),
            ca: r
                .ca_coords
                .as_ref()
                .map(|c| c.iter().take(3 * n).copied().collect())
                .unwrap_or_default(),
            binding_sites: positions(r.binding_sites.as_deref(), n),
            ptm_sites: positions(r.ptm_sites.as_deref(), n),
            heads: Vec::new(),
        };
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

/// 0-based positions below `n`.
fn positions(p: Option<&[i32]>, n: usize) -> Vec<u32> {
    p.unwrap_or_default()
        .iter()
        .filter(|&&i| i >= 0 && (i as usize) < n)
        .map(|&i| i as u32)
        .collect()
}

/// After `headscan run`: rewrites the job's report under `out_url` with a page
/// per record of `records` (from config `visualize` / `--visualize`), using the
/// model the run loaded.
pub(crate) async fn add_sequence_pages(
    out_url: &str,
    records: &[ProteinRecord],
    model: &headscan_worker::models::LoadedModel,
    max_len: usize,
    device: &str,
) -> anyhow::Result<()> {
    let (results, mut context) = load_results(out_url)
        .await
        .with_context(|| format!("cannot read the results at {out_url}"))?;
    context.sequences = views_of(model, records, &results, false, max_len, device)?;
    let out = Location::parse(out_url)?;
    let scratch = tempfile::tempdir()?;
    let dir = match out.local_dir() {
        Some(d) => d.join("report"),
        None => scratch.path().join("report"),
    };
    let files = write_report(&results, &context, &dir)?;
    if out.local_dir().is_none() {
        for f in &files {
            let rel = f
                .strip_prefix(&dir)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/");
            out.put(&format!("report/{rel}"), std::fs::read(f)?.into())
                .await?;
        }
    }
    tracing::info!(sequences = records.len(), "sequence pages written");
    Ok(())
}
