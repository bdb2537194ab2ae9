//! `headscan run`: the embedded default. It starts an in-process
//! coordinator (private in-memory state, scratch store, gRPC on 127.0.0.1
//! with a random token) and N in-process workers that pull tasks from it
//! ([`crate::cluster::LocalCluster`]), submits the job and follows it: the same planning, scheduling, reduction
//! and output code as `headscan coordinator` + `headscan worker`, one path.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use headscan_coordinator::config::RunConfig;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::plan::{plan_tasks, spec_from_config};
use headscan_coordinator::selection::Selection;
use headscan_proto::features::ContactRule;
use headscan_proto::pb::{JobState, JobStatusRequest, SubmitJobRequest};
use headscan_worker::analysis::features::{check_coverage, expand};
use headscan_worker::pull::{ModelCache, WorkerMetrics};

/// Runs a whole job described by `cfg` (already merged with CLI flags).
pub async fn run(mut cfg: RunConfig, progress_bar: bool) -> anyhow::Result<()> {
    cfg.validate()?;
    // The coordinator takes absolute outputs only; a relative --out is the user's working directory.
    crate::submit::absolute(&mut cfg.out);
    let (model_url, dataset_url) = (
        cfg.model.clone().unwrap_or_default(),
        cfg.dataset.clone().unwrap_or_default(),
    );
    let rule = ContactRule {
        max_distance: cfg.contact.distance,
        min_separation: cfg.contact.min_separation,
    };
    let specs = expand(&cfg.features, rule)?;
    // Everything that can be checked before model work is checked first.
    let dataset = Dataset::open(&dataset_url).await?;
    check_coverage(&specs, &dataset.manifest.columns).with_context(|| format!("dataset {dataset_url}"))?;
    let selection = Selection::from_config(&cfg)?;
    let (tasks, planned) = plan_tasks(&dataset.manifest.shards, &cfg)?;
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
    if planned.selected == 0 {
        bail!(
            "dataset {dataset_url} is empty after filtering (limit {}, sample {})",
            cfg.limit,
            cfg.sample
        );
    }
    // Records to visualise are checked before any model work (an unknown id
    // is an error); the workers store their attention with the counts.
    if !cfg.visualize.is_empty() {
        crate::report::find_records(&dataset_url, &cfg.visualize).await?;
    }
    // The model is loaded once, before any task, and shared by the workers.
    let device = headscan_worker::attention::parse_device(&cfg.device)?;
    let models = Arc::new(ModelCache::default());
    let worker_metrics = Arc::new(WorkerMetrics::default());
    models
        .get(&model_url, &cfg.precision, &device, &worker_metrics)
        .await
        .map_err(anyhow::Error::msg)?;

    let cluster = crate::cluster::LocalCluster::start(
        cfg.workers.min(tasks.len()).max(1),
        &cfg.device,
        models,
        worker_metrics,
    )
    .await?;
    let outcome = submit_and_follow(&cluster, &cfg, planned.selected, progress_bar).await;
    cluster.shutdown().await;
    let status = outcome?;
    match JobState::try_from(status.state) {
        Ok(JobState::Succeeded) => {
            tracing::info!(sequences = status.sequences_done, out = %status.output, "run finished");
            Ok(())
        }
        _ => bail!("{}", status.message),
    }
}

/// Submits the job to the in-process coordinator and follows it to its end,
/// with a progress bar over sequences when asked.
async fn submit_and_follow(
    cluster: &crate::cluster::LocalCluster,
    cfg: &RunConfig,
    total: u64,
    progress_bar: bool,
) -> anyhow::Result<headscan_proto::pb::JobStatus> {
    let mut jobs = cluster.jobs()?;
    let mut spec = spec_from_config(cfg, "run", false)?;
    spec.max_attempts = 1;
    let job = jobs
        .submit(SubmitJobRequest {
            spec: Some(spec),
            if_changed: false,
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .job_id;
    let bar = progress_bar.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sequences ({per_sec}, ETA {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut stream = jobs
        .watch(JobStatusRequest { job_id: job.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    let mut last = None;
    while let Some(s) = stream
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
    {
        if let Some(b) = &bar {
            b.set_position(s.sequences_done.min(total));
        }
        let done = crate::jobs::is_final(&s);
        last = Some(s);
        if done {
            break;
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let _ = std::io::stderr().flush();
    last.context("the coordinator ended the job's progress stream early")
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
    /// Floating-point type of the model: f32 (config default) or bf16 (GPU speed; BERT, TAPE,
    /// ALBERT and ESM models; counts within BENCHMARKS.md's tolerance of f32's).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(headscan_proto::precision::Precision::NAMES))]
    pub precision: Option<String>,
    /// Sequences per forward pass.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Record ids whose attention (weights ≥ 0.05) the workers store in sequences.parquet; each
    /// gets a page in the report: arcs over the sequence and the Cα trace.
    #[arg(long, value_delimiter = ',')]
    pub visualize: Option<Vec<String>>,
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
            precision,
            batch_size,
            features,
            visualize
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
