//! `headscan probe`: per-layer linear probes on frozen model outputs (Vig et
//! al. 2021 §5): ss4 (per-class and macro F1), binding sites and PTMs
//! (precision at L/20), contacts (pair features |e_i − e_j| and e_i ⊙ e_j;
//! precision at L/5 over |i − j| ≥ 6 and per ESM range), attention probes
//! and ESM's contact regression.
//!
//! Everything runs through a coordinator and its workers (in process, or a
//! running cluster with `--coordinator`): embeddings are extracted once to
//! `OUT/embeddings/` by an extract stage; each probe is then fitted by
//! Newton's method on gradients and Hessians that the workers compute per
//! shard and the coordinator sums in shard order ([`fits`]), so no machine
//! holds the whole data set and the weights do not depend on the worker
//! count. Writes `split.parquet`, `probes.parquet`, `weights.json` and
//! `figure5_<task>.svg` (the task's headline metric by layer, embedding vs
//! attention probe).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::probe::output::{ProbeConfig, probes_parquet, split_parquet};
use headscan_coordinator::probe::tasks::{Task, is_train};
use headscan_proto::store::Location;

use crate::cluster::{Cluster, ClusterArgs};
use crate::extract::{Extraction, base_spec, extract_embeddings};
use crate::submit::absolute_url;
use fits::{FitSpec, Fitted, run_fit};
use stages::Stages;

pub mod fits;
pub mod stages;

/// Flags of `headscan probe`; each overrides the config key of the same name.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// TOML config with keys model, dataset, tasks, layers, kinds, seed, out
    /// (and train_fraction = 0.8, l2 = 1.0, l1 = 6.67, balanced = true,
    /// max_len = 512, batch_size = 8, device = "cpu").
    #[arg(long)]
    config: Option<PathBuf>,
    /// Model directory or object-store URL.
    #[arg(long)]
    model: Option<String>,
    /// Canonical dataset URL.
    #[arg(long)]
    dataset: Option<String>,
    /// Comma-separated tasks: ss4, binding_site, ptm, contact [config default: ss4,binding_site,ptm].
    #[arg(long)]
    tasks: Option<String>,
    /// Layers: `all` or 0-based numbers and ranges [config default: all].
    #[arg(long)]
    layers: Option<String>,
    /// Comma-separated probe kinds: embedding, attention, contact_regression [config default: embedding].
    #[arg(long)]
    kinds: Option<String>,
    /// Seed of the record-level train/validation split [config default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Output URL.
    #[arg(long)]
    out: Option<String>,
    /// Replace outputs already at --out.
    #[arg(long)]
    overwrite: bool,
    /// Probes fitted at the same time (their stages share the workers).
    #[arg(long, default_value_t = 4)]
    parallel_fits: usize,
    /// Where the work runs.
    #[command(flatten)]
    cluster: ClusterArgs,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn config(args: &ProbeArgs) -> anyhow::Result<ProbeConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            ProbeConfig::from_toml(&text, &path.display().to_string()).map_err(anyhow::Error::msg)?
        }
        None => ProbeConfig::default(),
    };
    if let Some(v) = &args.model {
        cfg.model = v.clone();
    }
    if let Some(v) = &args.dataset {
        cfg.dataset = v.clone();
    }
    if let Some(v) = &args.tasks {
        cfg.tasks = list(v);
    }
    if let Some(v) = &args.layers {
        cfg.layers = v.clone();
    }
    if let Some(v) = &args.kinds {
        cfg.kinds = list(v);
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    if let Some(v) = &args.out {
        cfg.out = v.clone();
    }
    for (key, value) in [
        ("model", &cfg.model),
        ("dataset", &cfg.dataset),
        ("out", &cfg.out),
    ] {
        if value.is_empty() {
            anyhow::bail!("`{key}` is required (config key or --{key})");
        }
    }
    for k in &cfg.kinds {
        match k.as_str() {
            "embedding" => {}
            "attention" | "contact_regression" if cfg.tasks.iter().any(|t| t == "contact") => {}
            "attention" | "contact_regression" => {
                anyhow::bail!("probe kind `{k}` predicts contacts: add `contact` to tasks")
            }
            other => anyhow::bail!(
                "unknown probe kind `{other}` (expected embedding, attention or contact_regression)"
            ),
        }
    }
    if cfg.l1.is_nan() || cfg.l1 <= 0.0 {
        anyhow::bail!("l1 must be positive");
    }
    if !(cfg.train_fraction > 0.0 && cfg.train_fraction < 1.0) {
        anyhow::bail!("train_fraction must lie strictly between 0 and 1");
    }
    if cfg.l2.is_nan() || cfg.l2 <= 0.0 {
        anyhow::bail!("l2 must be positive");
    }
    Ok(cfg)
}

/// Runs `headscan probe`.
pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let mut cfg = config(&args)?;
    let tasks: Vec<Task> = cfg
        .tasks
        .iter()
        .map(|t| t.parse::<Task>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    // The workers may run elsewhere: local paths become absolute.
    cfg.dataset = absolute_url(&cfg.dataset);
    cfg.out = absolute_url(&cfg.out);
    let dataset = Dataset::open(&cfg.dataset)
        .await
        .with_context(|| format!("cannot open dataset {}", cfg.dataset))?;
    let out = Location::parse(&cfg.out).with_context(|| format!("out {}", cfg.out))?;
    if out.exists("probes.parquet").await? && !args.overwrite {
        anyhow::bail!(
            "{} already exists; pass --overwrite to replace it",
            out.child_url("probes.parquet")
        );
    }
    headscan_worker::attention::parse_device(&cfg.device)?;
    let cluster = Cluster::connect(&args.cluster, &cfg.device).await?;
    let base = base_spec(
        &absolute_url(&cfg.model),
        &cfg.dataset,
        cfg.max_len,
        cfg.batch_size,
        &cluster,
    );
    let stages = Arc::new(Stages::new(cluster.jobs.clone(), &cluster.url, base, out.clone()));
    let outcome = probe(&stages, Arc::new(cfg), &tasks, &dataset, &out, args.parallel_fits).await;
    if outcome.is_ok() {
        stages.clean().await?;
    }
    cluster.shutdown().await;
    outcome
}

/// Extraction, split, every fit, then the tables.
async fn probe(
    stages: &Arc<Stages>,
    cfg: Arc<ProbeConfig>,
    tasks: &[Task],
    dataset: &Dataset,
    out: &Location,
    parallel: usize,
) -> anyhow::Result<()> {
    let emb_location = Location::parse(&out.child_url("embeddings"))?;
    let what = Extraction {
        model_label: &cfg.model,
        dataset_url: &cfg.dataset,
        dataset,
        layers: &cfg.layers,
        max_len: cfg.max_len,
        attention_pairs: false,
    };
    let (manifest, n_layers) = extract_embeddings(stages, &what, &emb_location).await?;

    // The split, one row per record, in dataset order.
    let mut split = Vec::new();
    for entry in &dataset.manifest.shards {
        for r in dataset.read_shard(entry).await? {
            let train = is_train(&r.id, cfg.seed, cfg.train_fraction);
            split.push((r.id, train));
        }
    }
    out.put(
        "split.parquet",
        split_parquet(&split).map_err(anyhow::Error::msg)?.into(),
    )
    .await?;

    // Every probe, in table order.
    let has_kind = |k: &str| cfg.kinds.iter().any(|x| x == k);
    let mut specs = Vec::new();
    if has_kind("embedding") {
        for &task in tasks {
            for &layer in &manifest.layers {
                // Pair features of the contact probe are |e_i − e_j| and e_i ⊙ e_j.
                let dim = if task == Task::Contact {
                    2 * manifest.dim
                } else {
                    manifest.dim
                };
                specs.push(FitSpec {
                    task,
                    kind: "embedding",
                    layer: layer as i32,
                    dim,
                });
            }
        }
    }
    if has_kind("attention") {
        for &layer in &manifest.layers {
            specs.push(FitSpec {
                task: Task::Contact,
                kind: "attention",
                layer: layer as i32,
                dim: 2 * manifest.heads,
            });
        }
    }
    if has_kind("contact_regression") {
        specs.push(FitSpec {
            task: Task::Contact,
            kind: "contact_regression",
            layer: -1,
            dim: n_layers as usize * manifest.heads,
        });
    }
    let embeddings = emb_location.url().to_string();
    let fitted: Vec<anyhow::Result<Option<Fitted>>> = futures::stream::iter(specs)
        .map(|spec| run_fit(stages.clone(), cfg.clone(), embeddings.clone(), spec))
        .buffered(parallel.max(1))
        .collect()
        .await;
    let mut table = Vec::new();
    let mut weights = Vec::new();
    for f in fitted {
        if let Some((rows, w)) = f? {
            table.extend(rows);
            weights.push(w);
        }
    }
    out.put("weights.json", serde_json::to_vec_pretty(&weights)?.into())
        .await?;
    out.put(
        "probes.parquet",
        probes_parquet(&table).map_err(anyhow::Error::msg)?.into(),
    )
    .await?;
    // Figure 5 of the paper: embedding vs attention probe by layer, per task.
    for &task in tasks {
        if let Some(svg) = headscan_coordinator::report::probe_figure::probe_figure_svg(&table, task.name()) {
            out.put(&format!("figure5_{}.svg", task.name()), svg.into_bytes().into())
                .await?;
        }
    }
    tracing::info!(rows = table.len(), out = out.url(), "probes written");
    Ok(())
}
