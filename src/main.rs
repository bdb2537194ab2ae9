//! The `headscan` command line: one binary over the coordinator and worker crates.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use headscan_coordinator::ingest::{self, Format, IngestOptions};
use headscan_coordinator::inspect;
use headscan_proto::features::ContactRule;

/// mimalloc keeps freed buffers for reuse: the forward pass allocates and
/// frees tensors of tens of MB per layer, which glibc returns to the kernel
/// and faults back in each time (a measured second of system time per 24
/// ProtBert-sized sequences; BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps memory mimalloc has freed committed instead of purging it after
/// 10 ms: a layer of the forward pass takes longer than that, so every
/// layer's buffers were faulted back in (BENCHMARKS.md). `purge_delay` is
/// option 15 of the vendored mimalloc 3 header; it is set only when that
/// option reads its documented default (10), so another layout changes nothing.
fn keep_freed_memory() {
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain option getter and setter of the allocator; options are read atomically.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == 10 {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        }
    }
}

mod client;
mod cluster;
mod coordinator;
mod engine;
mod extract;
mod jobs;
mod metrics;
mod probe;
mod report;
mod run;
mod submit;
mod worker;

/// What do the attention heads of protein language models know about structure and function?
#[derive(Debug, Parser)]
#[command(name = "headscan", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn a protein dataset into canonical Parquet shards + manifest.json.
    Ingest(IngestArgs),
    /// Work with canonical datasets.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
    /// Analyse model × dataset × features end to end and write tables and a report.
    Run(run::RunArgs),
    /// Write one sequence's attention as a float32 .npy of shape [layers, heads, L, L].
    Attention(AttentionArgs),
    /// Write per-residue embeddings of chosen layers as Parquet shards + embeddings.json.
    Extract(extract::ExtractArgs),
    /// Train per-layer linear probes on residue embeddings; writes probes.parquet, split.parquet, weights.json.
    Probe(probe::ProbeArgs),
    /// Serve the Jobs and Work services: plan, schedule and reduce jobs.
    Coordinator(coordinator::CoordinatorArgs),
    /// Pull tasks from a coordinator and run them on a device.
    Worker(worker::WorkerArgs),
    /// Send a job to a coordinator (the flags of `run`); prints the job id last.
    Submit(submit::SubmitArgs),
    /// Show jobs, or follow one live with --watch.
    Status(jobs::StatusArgs),
    /// Cancel a job; its workers stop within a heartbeat.
    Cancel(jobs::CancelArgs),
    /// Rebuild a finished job's report (index.html, head.html, figures) from its tables.
    Report(report::ReportArgs),
    /// Finished jobs and their outputs.
    Results {
        #[command(subcommand)]
        command: jobs::ResultsCommand,
    },
    /// Engine-native: write a job's task list to a URL; prints the number of tasks last.
    Plan(engine::PlanArgs),
    /// Engine-native: compute shard N of a plan and commit its partial (once).
    Task(engine::TaskArgs),
    /// Engine-native: fold a plan's committed partials and write the outputs.
    Reduce(engine::ReduceArgs),
}

#[derive(Debug, clap::Args)]
struct AttentionArgs {
    /// Model directory or object-store URL (Hugging Face layout).
    #[arg(long)]
    model: String,
    /// Protein sequence (one-letter codes).
    #[arg(long)]
    sequence: String,
    /// Output .npy file.
    #[arg(long)]
    out: PathBuf,
    /// Keep the rows and columns of special tokens.
    #[arg(long)]
    keep_special: bool,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Maximum tokens, special tokens included (longer sequences are truncated).
    #[arg(long, default_value_t = 512)]
    max_len: usize,
}

#[derive(Debug, clap::Args)]
struct IngestArgs {
    /// Input format: fasta | proteinnet | tape-lmdb | structures | ss-csv | rcsb-ss | uniprot | parquet.
    #[arg(long, value_parser = parse_format)]
    format: Format,
    /// Input file or directory.
    #[arg(long)]
    input: PathBuf,
    /// Output dataset URL (a path, file://, s3://, gs://, az://).
    #[arg(long)]
    out: String,
    /// Per-residue annotations for FASTA input: TSV of id, feature, 1-based position.
    #[arg(long)]
    annotations: Option<PathBuf>,
    /// Rows per Parquet shard.
    #[arg(long, default_value_t = ingest::DEFAULT_SHARD_ROWS)]
    shard_rows: usize,
    /// Replace a dataset already published at --out.
    #[arg(long)]
    overwrite: bool,
    /// UniProt feature mapping override, KEY=binding_site|ptm|site:<name>|ignore (repeatable).
    #[arg(long = "uniprot-map", value_name = "KEY=TARGET")]
    uniprot_map: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum DatasetCommand {
    /// Row/residue counts and the background rate of every supported feature.
    Inspect {
        /// Dataset URL.
        url: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Contact distance threshold (Å, Cα–Cα, strict).
        #[arg(long, default_value_t = 8.0)]
        contact_distance: f32,
        /// Minimum sequence separation of a contact pair.
        #[arg(long, default_value_t = 6)]
        contact_min_separation: usize,
    },
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,headscan=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run_ingest(args: IngestArgs) -> anyhow::Result<()> {
    let mut opts = IngestOptions::new(args.format, args.input, args.out);
    opts.annotations = args.annotations;
    opts.shard_rows = args.shard_rows;
    opts.overwrite = args.overwrite;
    opts.uniprot_map = args.uniprot_map;
    opts.progress = std::io::stderr().is_terminal();
    let out = opts.out.clone();
    let manifest = ingest::ingest(opts).await.context("ingest failed")?;
    let report = &manifest.ingest;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "ingest: {}; {} shard(s) at {out}",
        report.summary_line(),
        manifest.shards.len()
    )?;
    for r in report.rejections.iter().take(5) {
        writeln!(err, "  rejected {}: {}", r.source, r.reason)?;
    }
    if report.records_rejected > 5 {
        writeln!(err, "  … all rejections are listed in {out}/manifest.json")?;
    }
    Ok(())
}

async fn run_attention(args: AttentionArgs) -> anyhow::Result<()> {
    let sequence: String = args
        .sequence
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if sequence.is_empty() {
        anyhow::bail!("--sequence is empty");
    }
    if let Some((i, c)) = sequence
        .chars()
        .enumerate()
        .find(|(_, c)| !headscan_proto::features::is_sequence_letter(*c))
    {
        anyhow::bail!(
            "--sequence: {c:?} at position {} is not an amino-acid letter",
            i + 1
        );
    }
    let device = headscan_worker::attention::parse_device(&args.device)?;
    let dir = headscan_worker::fetch::resolve_model(&args.model)
        .await
        .with_context(|| format!("cannot fetch model {}", args.model))?;
    let model = headscan_worker::models::load_model(&dir, &device)
        .with_context(|| format!("cannot load model {}", dir.display()))?;
    let dense = headscan_worker::attention::sequence_attention(
        &model,
        &sequence,
        args.max_len,
        args.keep_special,
        &device,
    )?;
    if dense.residues < sequence.len() {
        tracing::warn!(
            kept = dense.residues,
            of = sequence.len(),
            "sequence truncated to the token limit"
        );
    }
    headscan_worker::npy::write_f32(&args.out, &dense.shape, &dense.values)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    tracing::info!(shape = ?dense.shape, out = %args.out.display(), "attention written");
    Ok(())
}

async fn run_inspect(url: &str, json: bool, rule: ContactRule) -> anyhow::Result<()> {
    let summary = inspect::inspect(url, &rule)
        .await
        .with_context(|| format!("cannot inspect {url}"))?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "dataset   {}", summary.url)?;
    writeln!(out, "hash      {}", summary.content_hash)?;
    writeln!(out, "shards    {}", summary.shards)?;
    writeln!(out, "rows      {}", summary.rows)?;
    writeln!(
        out,
        "residues  {} (longest {})",
        summary.residues, summary.max_length
    )?;
    writeln!(
        out,
        "{:<24} {:>12} {:>14} {:>10}",
        "feature", "positives", "valid", "rate"
    )?;
    for (name, rate) in &summary.features {
        writeln!(
            out,
            "{name:<24} {:>12} {:>14} {:>10.6}",
            rate.hits, rate.total, rate.rate
        )?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    keep_freed_memory();
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ingest(args) => run_ingest(args).await,
        Command::Attention(args) => run_attention(args).await,
        Command::Extract(args) => extract::run(args).await,
        Command::Probe(args) => probe::run(args).await,
        Command::Coordinator(args) => coordinator::run(args).await,
        Command::Worker(args) => worker::run(args).await,
        Command::Submit(args) => submit::run(args).await,
        Command::Status(args) => jobs::status(args).await,
        Command::Cancel(args) => jobs::cancel(args).await,
        Command::Results { command } => jobs::results(command).await,
        Command::Report(args) => report::run(args).await,
        Command::Plan(args) => engine::plan(args).await,
        Command::Task(args) => engine::task(args).await,
        Command::Reduce(args) => engine::reduce(args).await,
        Command::Run(args) => match args.into_config() {
            Ok(cfg) => run::run(cfg, std::io::stderr().is_terminal()).await,
            Err(e) => Err(e),
        },
        Command::Dataset {
            command:
                DatasetCommand::Inspect {
                    url,
                    json,
                    contact_distance,
                    contact_min_separation,
                },
        } => {
            let rule = ContactRule {
                max_distance: contact_distance,
                min_separation: contact_min_separation,
            };
            run_inspect(&url, json, rule).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A reader that stops early (`headscan status | head -1`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
