//! `headscan probe`: per-layer linear probes on frozen residue embeddings
//! (Vig et al. 2021 §5): ss4 (per-class and macro F1), binding sites and PTMs
//! (precision at L/20), contacts (pair features |e_i − e_j| and e_i ⊙ e_j;
//! precision at L/5 over |i − j| ≥ 6 and per ESM range). Embeddings are extracted once to `OUT/embeddings/`;
//! each probe is then fitted by Newton's method on gradients and Hessians
//! summed shard by shard, so only one shard is in memory at a time. Writes
//! `figure5_<task>.svg` (the task's headline metric by layer, embedding vs
//! attention probe) beside the tables.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::probe::contacts::{ContactTruth, contact_design, contact_scores};
use headscan_coordinator::probe::logreg::{
    Design, FitError, FitOptions, Partial, Weights, balanced_class_weights, fit, partial,
};
use headscan_coordinator::probe::output::{
    ProbeConfig, ProbeRow, ProbeWeights, probes_parquet, split_parquet,
};
use headscan_coordinator::probe::tasks::{Task, is_train};
use headscan_proto::embeddings::{EmbeddingManifest, EmbeddingRows, read_embeddings};
use headscan_proto::features::ContactRule;
use headscan_proto::probe_metrics::{
    ClassCounts, ContactRange, PrecisionCounts, f1_metric_name, precision_metric_name, token_precision_at,
};
use headscan_proto::store::Location;
use headscan_worker::extract::{ExtractSpec, parse_layers};

use crate::extract::{ModelSource, write_embeddings};

mod attention;

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

/// One shard's labels (by record id) and embeddings.
struct ShardData {
    labels: HashMap<String, Vec<Option<usize>>>,
    contacts: HashMap<String, ContactTruth>,
    rows: EmbeddingRows,
}

/// Reads shards of the dataset and of the extracted embeddings.
struct Shards<'a> {
    dataset: &'a Dataset,
    embeddings: &'a Location,
    manifest: &'a EmbeddingManifest,
}

impl Shards<'_> {
    async fn load(&self, index: usize, task: Task) -> anyhow::Result<ShardData> {
        let entry = &self.dataset.manifest.shards[index];
        let records = self.dataset.read_shard(entry).await?;
        let labels = records
            .iter()
            .filter_map(|r| task.labels(r).map(|l| (r.id.clone(), l)))
            .collect();
        let contacts = if task == Task::Contact {
            records
                .iter()
                .filter_map(|r| ContactTruth::of(r, ContactRule::default()).map(|t| (r.id.clone(), t)))
                .collect()
        } else {
            HashMap::new()
        };
        let url = &self.manifest.shards[index].url;
        let bytes = self.embeddings.get(url).await?;
        let rows = read_embeddings(bytes, &self.embeddings.child_url(url))?;
        Ok(ShardData {
            labels,
            contacts,
            rows,
        })
    }

    fn load_blocking(&self, index: usize, task: Task) -> anyhow::Result<ShardData> {
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| handle.block_on(self.load(index, task)))
    }
}

/// Training rows of one layer of a shard.
fn design(data: &ShardData, layer: i32, seed: u64, fraction: f64, train: bool) -> Design {
    let rows = &data.rows;
    if !data.contacts.is_empty() {
        return contact_design(rows, layer, &data.contacts, |id| {
            is_train(id, seed, fraction) == train
        });
    }
    let mut d = Design::new(rows.dim);
    let mut x = vec![0.0; rows.dim];
    for r in 0..rows.len() {
        if rows.layers[r] != layer || is_train(&rows.ids[r], seed, fraction) != train {
            continue;
        }
        let Some(labels) = data.labels.get(&rows.ids[r]) else {
            continue;
        };
        let Some(&Some(class)) = labels.get(rows.positions[r] as usize) else {
            continue;
        };
        for (a, b) in x.iter_mut().zip(&rows.values[r * rows.dim..(r + 1) * rows.dim]) {
            *a = f64::from(*b);
        }
        d.push(&x, class);
    }
    d
}

/// A record id and its validation residues: (position, features).
type RecordResidues = (String, Vec<(usize, Vec<f64>)>);

/// Metrics of a fitted probe on the validation records of one shard.
#[derive(Default)]
struct Scores {
    classes: Option<ClassCounts>,
    at_l20: PrecisionCounts,
    contact_at_l5: [PrecisionCounts; 4],
    n_eval: u64,
}

fn score_shard(data: &ShardData, task: Task, w: &Weights, layer: i32, cfg: &ProbeConfig, acc: &mut Scores) {
    let rows = &data.rows;
    if task == Task::Contact {
        let validation = |id: &str| !is_train(id, cfg.seed, cfg.train_fraction);
        acc.n_eval += contact_scores(rows, layer, &data.contacts, validation, w, &mut acc.contact_at_l5);
        return;
    }
    // Validation residues grouped by record, in row order.
    let mut per_record: Vec<RecordResidues> = Vec::new();
    for r in 0..rows.len() {
        if rows.layers[r] != layer || is_train(&rows.ids[r], cfg.seed, cfg.train_fraction) {
            continue;
        }
        if !data.labels.contains_key(&rows.ids[r]) {
            continue;
        }
        let x: Vec<f64> = rows.values[r * rows.dim..(r + 1) * rows.dim]
            .iter()
            .map(|v| f64::from(*v))
            .collect();
        match per_record.last_mut() {
            Some((id, v)) if *id == rows.ids[r] => v.push((rows.positions[r] as usize, x)),
            _ => per_record.push((rows.ids[r].clone(), vec![(rows.positions[r] as usize, x)])),
        }
    }
    for (id, residues) in per_record {
        let labels = &data.labels[&id];
        if task == Task::Ss4 {
            let counts = acc
                .classes
                .get_or_insert_with(|| ClassCounts::new(task.n_classes()));
            for (pos, x) in &residues {
                if let Some(Some(t)) = labels.get(*pos) {
                    // Classes come from Task::labels, always in range.
                    let _ = counts.add(*t, w.predict(x));
                    acc.n_eval += 1;
                }
            }
        } else {
            let scores: Vec<f64> = residues.iter().map(|(_, x)| w.probabilities(x)[1]).collect();
            let truth: Vec<bool> = residues
                .iter()
                .map(|(p, _)| labels.get(*p) == Some(&Some(1)))
                .collect();
            let valid: Vec<bool> = residues
                .iter()
                .map(|(p, _)| matches!(labels.get(*p), Some(Some(_))))
                .collect();
            if let Ok(p) = token_precision_at(&scores, &truth, &valid, 20) {
                acc.at_l20.merge(p);
            }
            acc.n_eval += valid.iter().filter(|v| **v).count() as u64;
        }
    }
}

/// Runs `headscan probe`.
pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let cfg = config(&args)?;
    let tasks: Vec<Task> = cfg
        .tasks
        .iter()
        .map(|t| t.parse::<Task>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
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
    let device = headscan_worker::attention::parse_device(&cfg.device)?;
    let dir = headscan_worker::fetch::resolve_model(&cfg.model)
        .await
        .with_context(|| format!("cannot fetch model {}", cfg.model))?;
    let digest = headscan_worker::digest::model_digest(&dir)?;
    let model = headscan_worker::models::load_model(&dir, &device)
        .with_context(|| format!("cannot load model {}", dir.display()))?;
    let spec = ExtractSpec {
        layers: parse_layers(&cfg.layers, model.model.n_layers())?,
        max_len: cfg.max_len,
        batch_size: cfg.batch_size,
    };
    let emb_location = Location::parse(&out.child_url("embeddings"))?;
    let source = ModelSource {
        label: &cfg.model,
        digest: &digest,
        model: &model,
        device: &device,
    };
    let manifest = write_embeddings(&source, &dataset, &cfg.dataset, &spec, &emb_location, false).await?;

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

    let shards = Shards {
        dataset: &dataset,
        embeddings: &emb_location,
        manifest: &manifest,
    };
    let n_shards = manifest.shards.len();
    let mut table = Vec::new();
    let mut weights = Vec::new();
    let has_kind = |k: &str| cfg.kinds.iter().any(|x| x == k);
    let embedding_tasks: &[Task] = if has_kind("embedding") { &tasks } else { &[] };
    for &task in embedding_tasks {
        for &layer in &spec.layers {
            let layer = layer as i32;
            // Class counts of the training rows (class weights).
            let mut counts = vec![0u64; task.n_classes()];
            for i in 0..n_shards {
                let d = design(
                    &shards.load(i, task).await?,
                    layer,
                    cfg.seed,
                    cfg.train_fraction,
                    true,
                );
                for &c in &d.y {
                    counts[c] += 1;
                }
            }
            let n_train: u64 = counts.iter().sum();
            if counts.iter().filter(|&&c| c > 0).count() < 2 {
                tracing::warn!(
                    task = task.name(),
                    layer,
                    ?counts,
                    "too few labelled classes to train; skipped"
                );
                continue;
            }
            let class_weights = if cfg.balanced {
                balanced_class_weights(&counts)
            } else {
                vec![1.0; counts.len()]
            };
            // Pair features of the contact probe are |e_i − e_j| and e_i ⊙ e_j.
            let dim = if task == Task::Contact {
                2 * manifest.dim
            } else {
                manifest.dim
            };
            let params = (task.n_classes() - 1) * (dim + 1);
            let opts = FitOptions {
                l2: cfg.l2,
                ..FitOptions::default()
            };
            let fitted = fit(task.n_classes(), dim, &opts, |w| {
                let mut sum = Partial::zeros(params);
                for i in 0..n_shards {
                    let data = shards
                        .load_blocking(i, task)
                        .map_err(|e| FitError::Shard(format!("{e:#}")))?;
                    let d = design(&data, layer, cfg.seed, cfg.train_fraction, true);
                    sum.merge(&partial(&d, w, &class_weights));
                }
                Ok(sum)
            })?;
            let mut scores = Scores::default();
            for i in 0..n_shards {
                score_shard(
                    &shards.load(i, task).await?,
                    task,
                    &fitted.weights,
                    layer,
                    &cfg,
                    &mut scores,
                );
            }
            let row = |metric: String, value: f64| ProbeRow {
                task: task.name().into(),
                layer,
                kind: "embedding".into(),
                metric,
                value,
                n_train,
                n_eval: scores.n_eval,
            };
            match (&scores.classes, task) {
                (Some(c), Task::Ss4) => {
                    table.push(row("f1_macro".into(), c.f1_macro()));
                    for (k, name) in task.class_names().iter().enumerate() {
                        table.push(row(f1_metric_name(name), c.f1(k)));
                    }
                }
                (None, Task::Ss4) => table.push(row("f1_macro".into(), f64::NAN)),
                (_, Task::Contact) => {
                    for (p, range) in scores.contact_at_l5.iter().zip(ContactRange::ALL) {
                        table.push(row(
                            precision_metric_name(5, range),
                            p.precision().unwrap_or(f64::NAN),
                        ));
                    }
                }
                _ => table.push(row(
                    precision_metric_name(20, ContactRange::All),
                    scores.at_l20.precision().unwrap_or(f64::NAN),
                )),
            }
            tracing::info!(
                task = task.name(),
                layer,
                iterations = fitted.iterations,
                "probe fitted"
            );
            weights.push(ProbeWeights {
                task: task.name().into(),
                layer,
                kind: "embedding".into(),
                classes: task.class_names().iter().map(|s| s.to_string()).collect(),
                dim,
                weights: fitted.weights.w,
                class_weights,
                iterations: fitted.iterations,
            });
        }
    }
    let ctx = attention::AttentionContext {
        dataset: &dataset,
        model: &model,
        device: &device,
        cfg: &cfg,
    };
    if has_kind("attention") {
        attention::attention_probes(&ctx, &spec.layers, &mut table, &mut weights)?;
    }
    if has_kind("contact_regression") {
        attention::contact_regression(&ctx, cfg.l1, &mut table, &mut weights)?;
    }
    out.put("weights.json", serde_json::to_vec_pretty(&weights)?.into())
        .await?;
    out.put(
        "probes.parquet",
        probes_parquet(&table).map_err(anyhow::Error::msg)?.into(),
    )
    .await?;
    // Figure 5 of the paper: embedding vs attention probe by layer, per task.
    for &task in &tasks {
        if let Some(svg) = headscan_coordinator::report::probe_figure::probe_figure_svg(&table, task.name()) {
            out.put(&format!("figure5_{}.svg", task.name()), svg.into_bytes().into())
                .await?;
        }
    }
    tracing::info!(rows = table.len(), out = out.url(), "probes written");
    Ok(())
}
