//! `headscan status`, `headscan cancel`, `headscan results list` and
//! `headscan results top`: the user's view of a coordinator's jobs and of
//! their results.

use std::io::Write;

use anyhow::Context;

use headscan_proto::pb::{
    CancelJobRequest, JobState, JobStatus, JobStatusRequest, ListJobsRequest, ResultsRequest,
};

use crate::client::{ClientArgs, Jobs, call_error};

/// Flags of `headscan status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A job id (all jobs when absent).
    job: Option<String>,
    /// Follow the job live until it ends (needs JOB).
    #[arg(long, requires = "job")]
    watch: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Flags of `headscan cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The job to cancel.
    job: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// `headscan results` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ResultsCommand {
    /// Succeeded jobs and where their outputs are.
    List {
        /// Show a model × dataset matrix of the latest succeeded job ids instead.
        #[arg(long)]
        matrix: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The heads of a finished job that align best with one feature, from its
    /// heads.parquet: arcs, hits, percent, enrichment over the background,
    /// Bonferroni CI, p-value, significance and permutation-null p.
    Top {
        /// The job's output: a local path or an object-store URL.
        #[arg(long)]
        results: String,
        /// Feature to rank heads by (`contact`, `ss4:helix`, `binding_site`, `aa:K`, …).
        #[arg(long, default_value = "contact")]
        feature: String,
        /// How many heads to print.
        #[arg(long, default_value_t = 5)]
        top: usize,
    },
}

/// Lower-case name of a job state.
pub fn state_name(state: i32) -> &'static str {
    match JobState::try_from(state) {
        Ok(JobState::Queued) => "queued",
        Ok(JobState::Running) => "running",
        Ok(JobState::Reducing) => "reducing",
        Ok(JobState::Succeeded) => "succeeded",
        Ok(JobState::Failed) => "failed",
        Ok(JobState::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One progress line: state, shards done/total, sequences/s, ETA, failures.
pub fn progress_line(s: &JobStatus) -> String {
    let end = if s.finished_unix_ms > 0 {
        s.finished_unix_ms
    } else {
        now_ms()
    };
    let secs = if s.started_unix_ms > 0 {
        end.saturating_sub(s.started_unix_ms) as f64 / 1000.0
    } else {
        0.0
    };
    let rate = if secs > 0.0 {
        s.sequences_done as f64 / secs
    } else {
        0.0
    };
    let eta = if rate > 0.0 && s.finished_unix_ms == 0 {
        let left = s.sequences_total.saturating_sub(s.sequences_done) as f64 / rate;
        format!("ETA {}", human_secs(left))
    } else {
        "ETA -".into()
    };
    format!(
        "{} {} shards {}/{} (leased {}, queued {}) sequences {}/{} {:.1} seq/s {} failures {} (shards {}) workers {}",
        s.job_id,
        state_name(s.state),
        s.tasks_done,
        s.tasks_total,
        s.tasks_leased,
        s.tasks_queued,
        s.sequences_done,
        s.sequences_total,
        rate,
        eta,
        s.attempts_failed,
        s.tasks_failed,
        s.workers_live
    )
}

fn human_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Follows a job's Watch stream to its end, printing progress where
/// `progress` says (at most once a second, and the final status); returns
/// the last status.
pub async fn follow(
    jobs: &mut Jobs,
    coordinator: &str,
    job: &str,
    progress: Progress,
) -> anyhow::Result<JobStatus> {
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        let stream = jobs
            .watch(JobStatusRequest {
                job_id: job.to_string(),
            })
            .await;
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(s) if s.code() == tonic::Code::Unavailable => {
                // The coordinator may be restarting: keep trying.
                tracing::warn!(status = %s.message(), "coordinator unreachable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                continue;
            }
            Err(s) => return Err(call_error(coordinator, s)),
        };
        let mut last_print = std::time::Instant::now() - std::time::Duration::from_secs(10);
        let mut last: Option<JobStatus> = None;
        loop {
            match stream.message().await {
                Ok(Some(s)) => {
                    let due = last_print.elapsed().as_millis() >= 1000 || is_final(&s);
                    match progress {
                        Progress::Stdout if due => {
                            writeln!(std::io::stdout(), "{}", progress_line(&s))?;
                            last_print = std::time::Instant::now();
                        }
                        Progress::Stderr if due => {
                            let _ = writeln!(std::io::stderr(), "{}", progress_line(&s));
                            last_print = std::time::Instant::now();
                        }
                        _ => {}
                    }
                    let done = is_final(&s);
                    last = Some(s);
                    if done {
                        return Ok(last.unwrap_or_default());
                    }
                }
                Ok(None) => break,
                Err(s)
                    if s.code() == tonic::Code::Unavailable
                        || s.code() == tonic::Code::Unknown
                        || s.code() == tonic::Code::Internal =>
                {
                    break;
                }
                Err(s) => return Err(call_error(coordinator, s)),
            }
        }
        if let Some(s) = last.filter(is_final) {
            return Ok(s);
        }
        tokio::time::sleep(backoff).await;
    }
}

/// Where [`follow`] prints a progress line (at most one a second, and the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// On stdout (`status --watch`).
    Stdout,
    /// On stderr, keeping stdout for the job id (`submit --wait`).
    Stderr,
    /// Nowhere (probe stages: many short jobs of one command).
    Quiet,
}

/// True when the job has ended.
pub fn is_final(s: &JobStatus) -> bool {
    matches!(
        JobState::try_from(s.state),
        Ok(JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    )
}

/// `headscan status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let mut jobs = args.client.jobs()?;
    let coordinator = &args.client.coordinator;
    let Some(job) = args.job else {
        let list = jobs
            .list(ListJobsRequest {})
            .await
            .map_err(|s| call_error(coordinator, s))?
            .into_inner();
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{:<20} {:<10} {:>13} {:>20}  name / message",
            "job", "state", "shards", "sequences"
        )?;
        for s in list.jobs {
            writeln!(
                out,
                "{:<20} {:<10} {:>13} {:>20}  {} {}",
                s.job_id,
                state_name(s.state),
                format!("{}/{}", s.tasks_done, s.tasks_total),
                format!("{}/{}", s.sequences_done, s.sequences_total),
                s.name,
                s.message
            )?;
        }
        return Ok(());
    };
    if args.watch {
        let last = follow(&mut jobs, coordinator, &job, Progress::Stdout).await?;
        if !last.message.is_empty() {
            writeln!(std::io::stdout(), "{}", last.message)?;
        }
        return Ok(());
    }
    let s = crate::submit::status_once(&mut jobs, coordinator, &job).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", progress_line(&s))?;
    writeln!(out, "model    {}", s.model)?;
    writeln!(out, "dataset  {}", s.dataset)?;
    writeln!(out, "output   {}", s.output)?;
    if !s.message.is_empty() {
        writeln!(out, "message  {}", s.message)?;
    }
    for m in &s.missing_shards {
        writeln!(out, "missing  {m}")?;
    }
    Ok(())
}

/// `headscan cancel`.
pub async fn cancel(args: CancelArgs) -> anyhow::Result<()> {
    let mut jobs = args.client.jobs()?;
    let s = jobs
        .cancel(CancelJobRequest { job_id: args.job })
        .await
        .map_err(|s| call_error(&args.client.coordinator, s))?
        .into_inner()
        .status
        .unwrap_or_default();
    writeln!(std::io::stdout(), "{}", progress_line(&s))?;
    Ok(())
}

/// `headscan results list`.
pub async fn results(cmd: ResultsCommand) -> anyhow::Result<()> {
    let (client, matrix) = match cmd {
        ResultsCommand::List { client, matrix } => (client, matrix),
        ResultsCommand::Top {
            results,
            feature,
            top,
        } => return print_top(&results, &feature, top).await,
    };
    let mut jobs = client.jobs()?;
    if matrix {
        let all = jobs
            .list(ListJobsRequest {})
            .await
            .map_err(|s| call_error(&client.coordinator, s))?
            .into_inner();
        return print_matrix(&all.jobs);
    }
    let list = jobs
        .results(ResultsRequest {})
        .await
        .map_err(|s| call_error(&client.coordinator, s))?
        .into_inner();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20} {:>10}  {:<40} output",
        "job", "sequences", "model × dataset"
    )?;
    for r in list.results {
        writeln!(
            out,
            "{:<20} {:>10}  {:<40} {}{}",
            r.job_id,
            r.sequences,
            format!("{} × {}", r.model, r.dataset),
            r.output,
            if r.missing_shards.is_empty() {
                String::new()
            } else {
                format!(" (missing {} shard(s))", r.missing_shards.len())
            }
        )?;
    }
    Ok(())
}

/// `results list --matrix`: models (rows) × datasets (columns; a named job,
/// e.g. one analysis of the registry watch, gets its own column `dataset
/// [name]`), each cell the latest job's state, model digest (first 12 hex
/// digits) and output URL, tab-separated; `-` where no job ran.
fn print_matrix(jobs: &[JobStatus]) -> anyhow::Result<()> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut cells: BTreeMap<(String, String), &JobStatus> = BTreeMap::new();
    for j in jobs {
        let column = if j.name.is_empty() {
            j.dataset.clone()
        } else {
            format!("{} [{}]", j.dataset, j.name)
        };
        let cell = cells.entry((j.model.clone(), column)).or_insert(j);
        if (j.created_unix_ms, &j.job_id) > (cell.created_unix_ms, &cell.job_id) {
            *cell = j;
        }
    }
    let columns: BTreeSet<&String> = cells.keys().map(|(_, d)| d).collect();
    let models: BTreeSet<&String> = cells.keys().map(|(m, _)| m).collect();
    let mut out = std::io::stdout().lock();
    write!(out, "model \\ dataset")?;
    for d in &columns {
        write!(out, "\t{d}")?;
    }
    writeln!(out)?;
    for m in &models {
        write!(out, "{m}")?;
        for d in &columns {
            match cells.get(&((*m).clone(), (*d).clone())) {
                Some(j) => {
                    let state = state_name(j.state);
                    let digest = j.model_digest.strip_prefix("sha256:").unwrap_or(&j.model_digest);
                    let digest = if digest.is_empty() {
                        "-"
                    } else {
                        &digest[..digest.len().min(12)]
                    };
                    write!(out, "\t{state} {digest} {}", j.output)?;
                }
                None => write!(out, "\t-")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `headscan results top`: reads `heads.parquet` of a job's output and prints
/// its best heads for `feature`.
async fn print_top(results: &str, feature: &str, k: usize) -> anyhow::Result<()> {
    let out = headscan_proto::store::Location::parse(results)?;
    let bytes = out
        .get("heads.parquet")
        .await
        .with_context(|| format!("cannot read {}", out.child_url("heads.parquet")))?;
    let top =
        headscan_coordinator::top_heads::top_heads(bytes, feature).with_context(|| results.to_string())?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(top.table(k).as_bytes())?;
    Ok(())
}
