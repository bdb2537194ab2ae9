//! `headscan run`: the embedded default — coordinator and N workers in one
//! process, the same code paths as the distributed system: plan one task per
//! shard, run each on a worker thread, fold the partial counts in shard order,
//! then statistics, tables, summary.json and the report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use headscan_coordinator::config::RunConfig;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::report::{ReportContext, write_report};
use headscan_coordinator::selection::{Selection, plan};
use headscan_coordinator::stats::{StatsOptions, compute};
use headscan_proto::counts;
use headscan_proto::features::ContactRule;
use headscan_proto::pb::PartialCounts;
use headscan_proto::store::Location;
use headscan_worker::analysis::features::{check_coverage, expand};
use headscan_worker::shard::{AnalysisSpec, process_records};
use sha2::{Digest, Sha256};

/// Runs a whole job described by `cfg` (already merged with CLI flags).
pub async fn run(cfg: RunConfig, progress_bar: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    cfg.validate()?;
    let (model_url, dataset_url, out_url) = (
        cfg.model.clone().unwrap_or_default(),
        cfg.dataset.clone().unwrap_or_default(),
        cfg.out.clone().unwrap_or_default(),
    );
    let rule = ContactRule {
        max_distance: cfg.contact.distance,
        min_separation: cfg.contact.min_separation,
    };
    let specs = expand(&cfg.features, rule)?;
    // Everything that can be checked before model work is checked first.
    let dataset = Dataset::open(&dataset_url).await?;
    check_coverage(&specs, &dataset.manifest.columns).with_context(|| format!("dataset {dataset_url}"))?;
    let device = headscan_worker::attention::parse_device(&cfg.device)?;
    let model_dir = headscan_worker::fetch::resolve_model(&model_url).await?;
    let model = headscan_worker::models::load_model(&model_dir, &device)
        .with_context(|| format!("cannot load model {}", model_dir.display()))?;
    let spec = AnalysisSpec {
        features: specs.clone(),
        threshold: cfg.threshold,
        max_len: cfg.max_len,
        batch_size: cfg.batch_size,
        null_samples: cfg.null_samples,
        seed: cfg.seed,
    };

    // Plan: one task per shard with the rows it analyses under --limit / --sample.
    let selection = Selection::from_config(&cfg)?;
    let planned = plan(&dataset.manifest.shards, selection);
    if let Selection::Sample { n, seed } = selection {
        if n >= planned.dataset_rows {
            tracing::warn!(
                sample = n,
                rows = planned.dataset_rows,
                "--sample {n} is not smaller than the dataset's {} rows: taking every row",
                planned.dataset_rows
            );
        } else {
            tracing::info!(
                sample = n,
                seed,
                rows = planned.dataset_rows,
                "sampling rows at random"
            );
        }
    }
    let tasks = &planned.tasks;
    let total = planned.selected;
    if total == 0 {
        bail!(
            "dataset {dataset_url} is empty after filtering (limit {}, sample {})",
            cfg.limit,
            cfg.sample
        );
    }
    let bar = progress_bar.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sequences ({per_sec}, ETA {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });

    // Workers: threads pulling shard indices; partials kept by shard index.
    let handle = tokio::runtime::Handle::current();
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Partial = anyhow::Result<(PartialCounts, Vec<String>)>;
    let partials: Vec<std::sync::Mutex<Option<Partial>>> =
        tasks.iter().map(|_| std::sync::Mutex::new(None)).collect();
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            for _ in 0..cfg.workers.min(tasks.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(task) = tasks.get(i) else { break };
                        let shard = &task.shard;
                        let result = handle
                            .block_on(dataset.read_shard(shard))
                            .map_err(anyhow::Error::from)
                            .and_then(|records| Ok(task.rows.pick(records, shard)?))
                            .and_then(|records| {
                                let counts = process_records(&model, &records, &spec, &device, |n| {
                                    if let Some(b) = &bar {
                                        b.inc(n as u64);
                                    }
                                })
                                .with_context(|| format!("shard {}", shard.url))?;
                                Ok((counts, records.into_iter().map(|r| r.id).collect()))
                            });
                        if let Ok(mut slot) = partials[i].lock() {
                            *slot = Some(result);
                        }
                    }
                });
            }
        })
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut folded: Option<PartialCounts> = None;
    // The analysed ids in dataset order, digested for summary.json.
    let mut ids = Sha256::new();
    for slot in partials {
        let (partial, task_ids) = slot
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(|| Err(anyhow::anyhow!("a task did not run")))?;
        for id in &task_ids {
            ids.update(id.as_bytes());
            ids.update(b"\n");
        }
        match folded.as_mut() {
            None => folded = Some(partial),
            Some(total) => counts::merge(total, &partial)?,
        }
    }
    let reduced = folded.context("no shard was processed")?;
    let compute_started = Instant::now();
    let options = StatsOptions {
        min_arcs: cfg.min_arcs,
        top_k: cfg.top_k,
        ..StatsOptions::default()
    };
    let results = compute(&reduced, &options);

    let out = Location::parse(&out_url)?;
    let tables = headscan_coordinator::outputs::write_tables(&results, &out).await?;
    let context = ReportContext {
        title: format!("{model_url} on {dataset_url}"),
        notes: cfg.notes.clone(),
        threshold: cfg.threshold,
        min_arcs: cfg.min_arcs,
    };
    // The report is written locally, then uploaded when the output is remote.
    let (report_dir, temp) = match out.local_dir() {
        Some(dir) => (dir.join("report"), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().join("report"), Some(t))
        }
    };
    let report_files = write_report(&results, &context, &report_dir)?;
    if temp.is_some() {
        for f in &report_files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.put(&format!("report/{name}"), std::fs::read(f)?.into())
                .await?;
        }
    }
    let digest = |s: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(s)));
    let config_json = serde_json::to_vec(&cfg)?;
    let model_config_digest = digest(&std::fs::read(model_dir.join("config.json")).unwrap_or_default());
    // Every file that defines the model (weights, config, vocabulary), cached beside them.
    let model_digest = headscan_worker::digest::model_digest(&model_dir)
        .with_context(|| format!("cannot digest model {}", model_dir.display()))?;
    let summary = serde_json::json!({
        "software": format!("headscan {}", env!("CARGO_PKG_VERSION")),
        "model": model_url,
        "model_family": format!("{:?}", model.family),
        "model_digest": model_digest,
        "model_config_digest": model_config_digest,
        "dataset": dataset_url,
        "dataset_content_hash": dataset.manifest.content_hash,
        "config": cfg,
        "config_digest": digest(&config_json),
        "selection": {
            "mode": selection.mode(),
            "limit": cfg.limit,
            "sample": cfg.sample,
            "seed": cfg.seed,
            "dataset_rows": planned.dataset_rows,
            "selected": planned.selected,
            "ids_sha256": format!("sha256:{}", hex::encode(ids.finalize())),
        },
        "n_layers": results.n_layers,
        "n_heads": results.n_heads,
        "sequences": results.sequences,
        "residues": results.residues,
        "background_rates": results.features.iter().map(|f| (f.feature.clone(), f.background_rate)).collect::<std::collections::BTreeMap<_, _>>(),
        "blosum62_pearson_r": results.blosum62_pearson_r,
        "features": results.features,
        "outputs": tables,
        "timings_s": { "total": started.elapsed().as_secs_f64(), "statistics_and_outputs": compute_started.elapsed().as_secs_f64() },
    });
    out.put("summary.json", serde_json::to_vec_pretty(&summary)?.into())
        .await?;
    tracing::info!(sequences = results.sequences, out = %out_url, "run finished");
    Ok(())
}

/// Flags of `headscan run` that override the config file.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Job configuration (TOML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model directory or URL.
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset URL.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Comma-separated features: contact, ss4, binding_site, ptm, aa, site:<name>.
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Attention threshold θ.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Maximum tokens per sequence, specials included.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Minimum arcs for a head to enter statistics.
    #[arg(long)]
    pub min_arcs: Option<u64>,
    /// Null-model samples per head.
    #[arg(long)]
    pub null_samples: Option<u32>,
    /// Seed of every random choice (null samples, --sample).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use the first N sequences (0 = all).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Use N sequences drawn at random without replacement from --seed, whatever the sharding.
    #[arg(long)]
    pub sample: Option<u64>,
    /// Output URL.
    #[arg(long)]
    pub out: Option<String>,
    /// Worker threads (shards in parallel).
    #[arg(long)]
    pub workers: Option<usize>,
    /// cpu or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Sequences per forward pass.
    #[arg(long)]
    pub batch_size: Option<usize>,
}

impl RunArgs {
    /// The config file (if any) with these flags applied.
    pub fn into_config(self) -> anyhow::Result<RunConfig> {
        let mut c = match &self.config {
            Some(p) => RunConfig::read(p)?,
            None => RunConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { c.$f = v; } )*};
        }
        set!(
            threshold,
            max_len,
            min_arcs,
            null_samples,
            seed,
            limit,
            sample,
            workers,
            device,
            batch_size,
            features
        );
        if self.model.is_some() {
            c.model = self.model;
        }
        if self.dataset.is_some() {
            c.dataset = self.dataset;
        }
        if self.out.is_some() {
            c.out = self.out;
        }
        Ok(c)
    }
}
