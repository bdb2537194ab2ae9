//! `headscan submit`: sends a job (the same `--config` and flags as
//! `headscan run`) to a coordinator and prints its id as the last line of
//! stdout; `--wait` follows it to the end and fails when the job fails.

use std::io::Write;

use anyhow::Context;
use headscan_coordinator::dataset::Dataset;
use headscan_coordinator::plan::spec_from_config;
use headscan_proto::features::ContactRule;
use headscan_proto::pb::{JobState, JobStatusRequest, SubmitJobRequest};
use headscan_worker::analysis::features::{check_coverage, expand};

use crate::client::{ClientArgs, call_error};
use crate::run::RunArgs;

/// Flags of `headscan submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    client: ClientArgs,
    /// Block until the job ends; exit non-zero unless it succeeded.
    #[arg(long)]
    wait: bool,
    /// A label for the job (never used as a path).
    #[arg(long, default_value = "")]
    name: String,
    /// Let the job finish without shards that keep failing (summary.json lists them).
    #[arg(long)]
    allow_partial: bool,
    /// Attempts per shard (0 = the coordinator's default).
    #[arg(long, default_value_t = 0)]
    max_attempts: u32,
    /// Submit nothing when a job with the same model files, dataset content
    /// and configuration already succeeded; print that job's id instead.
    #[arg(long)]
    if_changed: bool,
}

/// Makes a local path absolute (the coordinator and workers run elsewhere); URLs stay.
pub fn absolute(s: &mut Option<String>) {
    if let Some(v) = s.as_mut() {
        *v = absolute_url(v);
    }
}

/// A local path made absolute (the coordinator and workers run elsewhere); URLs as they are.
pub fn absolute_url(v: &str) -> String {
    match std::path::absolute(v) {
        Ok(p) if !v.contains("://") => p.display().to_string(),
        _ => v.to_string(),
    }
}

/// Submits (and with --wait, follows) a job.
pub async fn run(args: SubmitArgs) -> anyhow::Result<()> {
    let mut cfg = args.run.into_config()?;
    absolute(&mut cfg.model);
    absolute(&mut cfg.dataset);
    absolute(&mut cfg.out);
    let default_out = cfg.out.is_none();
    if default_out {
        // The coordinator chooses the output under its store.
        cfg.out = Some("-".into());
    }
    cfg.validate()?;
    if default_out {
        cfg.out = None;
    }
    let rule = ContactRule {
        max_distance: cfg.contact.distance,
        min_separation: cfg.contact.min_separation,
    };
    let specs = expand(&cfg.features, rule)?;
    // The dataset is checked here when this machine can read it; the
    // coordinator checks it again either way.
    let dataset_url = cfg.dataset.clone().unwrap_or_default();
    if let Ok(ds) = Dataset::open(&dataset_url).await {
        check_coverage(&specs, &ds.manifest.columns).with_context(|| format!("dataset {dataset_url}"))?;
    }
    let mut spec = spec_from_config(&cfg, &args.name, args.allow_partial)?;
    spec.max_attempts = args.max_attempts;
    if args.if_changed {
        // The model's digest over every file that defines it, computed here.
        let model = cfg.model.clone().unwrap_or_default();
        let dir = headscan_worker::fetch::resolve_model(&model)
            .await
            .with_context(|| format!("--if-changed needs to read the model {model}"))?;
        spec.model_digest =
            tokio::task::spawn_blocking(move || headscan_worker::digest::model_digest(&dir)).await??;
    }
    let mut jobs = args.client.jobs()?;
    let coordinator = args.client.coordinator.clone();
    let resp = jobs
        .submit(SubmitJobRequest {
            spec: Some(spec),
            if_changed: args.if_changed,
        })
        .await
        .map_err(|s| call_error(&coordinator, s))?
        .into_inner();
    if resp.unchanged {
        tracing::info!(job = %resp.job_id, "unchanged: an identical job already succeeded; nothing submitted");
    }
    writeln!(std::io::stdout(), "{}", resp.job_id)?;
    if !args.wait {
        return Ok(());
    }
    let last = crate::jobs::follow(
        &mut jobs,
        &coordinator,
        &resp.job_id,
        crate::jobs::Progress::Stderr,
    )
    .await?;
    match JobState::try_from(last.state) {
        Ok(JobState::Succeeded) => {
            tracing::info!(job = %last.job_id, out = %last.output, "job succeeded");
            Ok(())
        }
        _ => anyhow::bail!(
            "job {} {}: {}",
            last.job_id,
            crate::jobs::state_name(last.state),
            last.message
        ),
    }
}

/// The status of a job once.
pub async fn status_once(
    jobs: &mut crate::client::Jobs,
    coordinator: &str,
    job: &str,
) -> anyhow::Result<headscan_proto::pb::JobStatus> {
    Ok(jobs
        .status(JobStatusRequest {
            job_id: job.to_string(),
        })
        .await
        .map_err(|s| call_error(coordinator, s))?
        .into_inner())
}
