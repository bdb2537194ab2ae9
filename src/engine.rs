//! Engine-native jobs (`headscan plan`, `task`, `reduce`): a job run as a
//! Slurm job array or a Kubernetes Indexed Job plus a reduce step, with no
//! long-running coordinator. The plan, partials and commit markers live at
//! the plan URL ([`headscan_coordinator::engine`]).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use headscan_coordinator::config::RunConfig;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::engine::{self, Commit};
use headscan_proto::features::ContactRule;
use headscan_proto::pb::ShardResult;
use headscan_worker::analysis::features::{check_coverage, expand};
use headscan_worker::pull::{ModelCache, WorkerMetrics, process_task};

/// Flags of `headscan plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Job configuration (TOML), as for `headscan run`.
    #[arg(long)]
    config: PathBuf,
    /// Where the plan, partials and commit markers go (a path or s3://, gs://, az:// URL).
    #[arg(long)]
    out: String,
    /// Model directory or URL (overrides the config).
    #[arg(long)]
    model: Option<String>,
    /// Dataset URL (overrides the config).
    #[arg(long)]
    dataset: Option<String>,
    /// Where `reduce` writes the outputs (overrides the config's `out`; default: <out>/out).
    #[arg(long)]
    results: Option<String>,
    /// Replace a plan already at --out.
    #[arg(long)]
    overwrite: bool,
    /// Record ids whose attention the tasks store for sequence pages (overrides the config's `visualize`).
    #[arg(long, value_delimiter = ',')]
    visualize: Vec<String>,
}

/// Flags of `headscan task`.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// The plan URL (what `headscan plan --out` was given).
    #[arg(long)]
    plan: String,
    /// Shard index, 0-based (default: $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX).
    #[arg(long)]
    index: Option<u32>,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Flags of `headscan reduce`.
#[derive(Debug, clap::Args)]
pub struct ReduceArgs {
    /// The plan URL (what `headscan plan --out` was given).
    #[arg(long)]
    plan: String,
}

/// Makes a local path absolute (array tasks may start elsewhere); URLs stay.
fn absolute(s: &mut Option<String>) {
    if let Some(v) = s.as_mut()
        && !v.contains("://")
        && let Ok(p) = std::path::absolute(&*v)
    {
        *v = p.display().to_string();
    }
}

/// `headscan plan`: writes the task list; prints the number of tasks last.
pub async fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let mut cfg = RunConfig::read(&args.config)?;
    if args.model.is_some() {
        cfg.model = args.model;
    }
    if args.dataset.is_some() {
        cfg.dataset = args.dataset;
    }
    if args.results.is_some() {
        cfg.out = args.results;
    }
    if !args.visualize.is_empty() {
        cfg.visualize = args.visualize;
    }
    absolute(&mut cfg.model);
    absolute(&mut cfg.dataset);
    absolute(&mut cfg.out);
    let mut out = Some(args.out);
    absolute(&mut out);
    let out = out.unwrap_or_default();
    cfg.validate()?;
    // What can be checked before any task runs is checked here.
    let rule = ContactRule {
        max_distance: cfg.contact.distance,
        min_separation: cfg.contact.min_separation,
    };
    let specs = expand(&cfg.features, rule)?;
    let dataset_url = cfg.dataset.clone().unwrap_or_default();
    let dataset = Dataset::open(&dataset_url).await?;
    check_coverage(&specs, &dataset.manifest.columns).with_context(|| format!("dataset {dataset_url}"))?;
    let plan = engine::write_plan(cfg, &out, args.overwrite)
        .await
        .with_context(|| format!("cannot plan into {out}"))?;
    tracing::info!(
        job = %plan.job_id,
        tasks = plan.tasks.len(),
        sequences = plan.selected,
        plan = %out,
        "plan written"
    );
    writeln!(std::io::stdout().lock(), "{}", plan.tasks.len())?;
    Ok(())
}

fn index_from_env() -> anyhow::Result<u32> {
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            return v
                .trim()
                .parse()
                .with_context(|| format!("${var} is `{v}`, not a shard index"));
        }
    }
    bail!("no --index, and neither $SLURM_ARRAY_TASK_ID nor $JOB_COMPLETION_INDEX is set")
}

/// `headscan task`: computes shard N and commits its partial (once).
pub async fn task(args: TaskArgs) -> anyhow::Result<()> {
    let index = match args.index {
        Some(i) => i,
        None => index_from_env()?,
    };
    let (loc, plan) = engine::read_plan(&args.plan).await?;
    let task = plan.task(index).with_context(|| format!("plan {}", args.plan))?;
    if engine::committed(&loc, &plan, index).await?.is_some() {
        tracing::info!(job = %plan.job_id, shard = index, "shard already committed; nothing to do");
        return Ok(());
    }
    let spec = task.spec.clone().context("the task carries no job spec")?;
    let dataset = Dataset::open(&spec.dataset).await?;
    if dataset.manifest.content_hash != plan.dataset_content_hash {
        bail!(
            "dataset {} changed since the plan was written (content {} , planned {}): plan again",
            spec.dataset,
            dataset.manifest.content_hash,
            plan.dataset_content_hash
        );
    }
    let device = headscan_worker::attention::parse_device(&args.device)?;
    let model = ModelCache::default()
        .get(&spec.model, &spec.precision, &device, &WorkerMetrics::default())
        .await
        .map_err(anyhow::Error::msg)?;
    let bytes = dataset
        .location()
        .get(&task.shard_path)
        .await
        .with_context(|| format!("cannot read shard {}", task.shard_path))?;
    // SIGTERM (Slurm preemption, pod eviction) abandons the shard: nothing
    // is committed and a re-run computes it again.
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                term.recv().await;
                stop.store(true, Ordering::SeqCst);
            }
        }
    });
    let computed = {
        let (task, m, device, stop) = (task.clone(), model.clone(), device.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            process_task(
                &task,
                bytes,
                &m.model,
                &device,
                |_| {},
                || stop.load(Ordering::SeqCst),
            )
        })
        .await
        .context("the task panicked")?
    };
    let Some((counts, ids)) = computed.map_err(anyhow::Error::msg)? else {
        bail!("shard {index} interrupted (SIGTERM): nothing committed; run it again");
    };
    let commit = Commit {
        shard: index,
        partial: String::new(),
        sequences: counts.sequences,
        residues: counts.residues,
        model_family: format!("{:?}", model.model.family),
        model_digest: model.digest.clone(),
        model_config_digest: model.config_digest.clone(),
    };
    let sequences = counts.sequences;
    let result = ShardResult {
        partial: Some(counts),
        record_ids: ids,
        probe: None,
    };
    if engine::commit(&loc, &plan, commit, result).await? {
        tracing::info!(job = %plan.job_id, shard = index, sequences, "shard committed");
    } else {
        tracing::info!(job = %plan.job_id, shard = index, "shard committed meanwhile by another run; ignored");
    }
    Ok(())
}

/// `headscan reduce`: folds the committed partials and writes the outputs;
/// prints the output URL last.
pub async fn reduce(args: ReduceArgs) -> anyhow::Result<()> {
    let (loc, plan) = engine::read_plan(&args.plan).await?;
    let (out, written) = engine::reduce(&loc, &plan)
        .await
        .with_context(|| format!("cannot reduce plan {}", args.plan))?;
    tracing::info!(job = %plan.job_id, files = written.len(), out = %out, "outputs written");
    writeln!(std::io::stdout().lock(), "{out}")?;
    Ok(())
}
