//! Probe stages as coordinator jobs: each stage (extract, count, one Newton
//! evaluation, score) is submitted as a job whose spec carries the
//! [`ProbeStage`]; the workers answer it shard by shard, the coordinator
//! folds their results in shard order into `<output>/probe-result.pb`, and
//! this client reads that back.

use anyhow::{Context, bail};
use headscan_coordinator::probe::fold::PROBE_RESULT;
use headscan_proto::pb::{JobSpec, JobState, JobStatus, ProbeResult, ProbeStage, SubmitJobRequest};
use headscan_proto::store::Location;
use prost::Message;

use crate::client::{Jobs, call_error};

/// Where stage outputs go under a command's --out (removed when it succeeds).
pub const STAGES_DIR: &str = ".headscan-stages";

/// Submits stages to one coordinator for one model and dataset.
pub struct Stages {
    jobs: Jobs,
    coordinator: String,
    base: JobSpec,
    out: Location,
}

impl Stages {
    /// Stages of `base`'s model over its dataset (absolute paths or URLs)
    /// whose folded results go under `out`/[`STAGES_DIR`].
    pub fn new(jobs: Jobs, coordinator: &str, base: JobSpec, out: Location) -> Self {
        Self {
            jobs,
            coordinator: coordinator.to_string(),
            base,
            out,
        }
    }

    /// Runs one stage to its end; its folded result and final status.
    pub async fn run(&self, name: &str, stage: ProbeStage) -> anyhow::Result<(ProbeResult, JobStatus)> {
        let output = self.out.child_url(&format!("{STAGES_DIR}/{name}"));
        let spec = JobSpec {
            output: output.clone(),
            name: format!("probe stage {name}"),
            probe: Some(stage),
            ..self.base.clone()
        };
        let mut jobs = self.jobs.clone();
        let id = jobs
            .submit(SubmitJobRequest {
                spec: Some(spec),
                if_changed: false,
            })
            .await
            .map_err(|s| call_error(&self.coordinator, s))
            .with_context(|| format!("submitting probe stage {name}"))?
            .into_inner()
            .job_id;
        tracing::debug!(job = %id, stage = name, "probe stage submitted");
        let status =
            crate::jobs::follow(&mut jobs, &self.coordinator, &id, crate::jobs::Progress::Quiet).await?;
        if JobState::try_from(status.state) != Ok(JobState::Succeeded) {
            bail!(
                "probe stage {name} (job {id}) did not succeed: {}",
                status.message
            );
        }
        let loc = Location::parse(&output)?;
        let bytes = loc
            .get(PROBE_RESULT)
            .await
            .with_context(|| format!("cannot read {}", loc.child_url(PROBE_RESULT)))?;
        let result = ProbeResult::decode(bytes).with_context(|| loc.child_url(PROBE_RESULT))?;
        Ok((result, status))
    }

    /// Removes every stage output.
    pub async fn clean(&self) -> anyhow::Result<()> {
        self.out.delete_prefix(STAGES_DIR).await?;
        Ok(())
    }
}
