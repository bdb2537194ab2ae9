//! Where a command's work runs: an in-process coordinator (private in-memory
//! state, scratch store, gRPC on 127.0.0.1 with a random token) with N
//! in-process workers — what `headscan run`, `extract` and `probe` use by
//! default — or, for `extract` and `probe` with `--coordinator`, a running
//! cluster whose workers do the work. Either way the command talks to the
//! coordinator through the same `Jobs` gRPC client.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use headscan_coordinator::scheduler::Policy;
use headscan_coordinator::server::Coordinator;
use headscan_coordinator::service::{ServeOptions, serve};
use headscan_coordinator::state::StateStore;
use headscan_proto::client::channel;
use headscan_proto::ids::JobId;
use headscan_proto::store::Location;
use headscan_worker::pull::{ModelCache, PullOptions, WorkerMetrics};

use crate::client::{ClientArgs, Jobs};

/// An in-process coordinator and its workers.
pub struct LocalCluster {
    /// The coordinator's URL (http://127.0.0.1:PORT).
    pub url: String,
    /// Its bearer token.
    pub token: String,
    stop: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<Result<(), headscan_worker::pull::PullError>>>,
    server: tokio::task::JoinHandle<Result<(), headscan_coordinator::service::ServeError>>,
    _scratch: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts a coordinator and `workers` workers on `device`, sharing `models`.
    /// A failed shard fails its job at once (one attempt) and the workers
    /// hear it within 200 ms.
    pub async fn start(
        workers: usize,
        device: &str,
        models: Arc<ModelCache>,
        metrics: Arc<WorkerMetrics>,
    ) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        let store = Location::parse(&scratch.path().display().to_string())?;
        let policy = Policy {
            lease_ms: 120_000,
            heartbeat_ms: 200,
            max_attempts: 1,
        };
        let coordinator = Coordinator::start(StateStore::in_memory()?, store, policy)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let token = JobId::random().to_string();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = {
            let mut stop = stop_rx.clone();
            let options = ServeOptions {
                token: Some(token.clone()),
                tls: None,
            };
            tokio::spawn(serve(coordinator, listener, options, async move {
                let _ = stop.wait_for(|s| *s).await;
            }))
        };
        let mut handles = Vec::new();
        for i in 0..workers.max(1) {
            let mut opts = PullOptions::new(&url, device);
            opts.token = Some(token.clone());
            opts.worker_id = format!("local-{i}");
            opts.metrics = metrics.clone();
            handles.push(tokio::spawn(headscan_worker::pull::run(
                opts,
                models.clone(),
                Some(stop_rx.clone()),
            )));
        }
        Ok(Self {
            url,
            token,
            stop,
            workers: handles,
            server,
            _scratch: scratch,
        })
    }

    /// A `Jobs` client of this coordinator.
    pub fn jobs(&self) -> anyhow::Result<Jobs> {
        crate::client::jobs_client(channel(&self.url, None)?, Some(&self.token))
    }

    /// Stops the workers (a task in hand was already told to abandon when
    /// its job ended) and the server; the scratch store goes with it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for w in self.workers {
            let abort = w.abort_handle();
            match tokio::time::timeout(Duration::from_secs(2), w).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "worker stopped with an error"),
                Ok(Err(e)) if !e.is_cancelled() => tracing::warn!(error = %e, "worker task failed"),
                Err(_) => abort.abort(),
                _ => {}
            }
        }
        self.server.abort();
    }
}

/// Where `extract` and `probe` run their work.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Coordinator URL of a running cluster whose workers do the work (they
    /// must reach the dataset and --out); without it, an in-process
    /// coordinator with --workers workers.
    #[arg(long)]
    pub coordinator: Option<String>,
    /// File holding the coordinator's bearer token (with --coordinator).
    #[arg(long, env = "HEADSCAN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for TLS (with --coordinator).
    #[arg(long, env = "HEADSCAN_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// In-process workers (without --coordinator).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
}

/// A connection to the coordinator that runs a command's jobs.
pub struct Cluster {
    /// The `Jobs` client.
    pub jobs: Jobs,
    /// The coordinator's URL (for messages).
    pub url: String,
    local: Option<LocalCluster>,
}

impl Cluster {
    /// Connects to `--coordinator`, or starts a local cluster on `device`.
    pub async fn connect(args: &ClusterArgs, device: &str) -> anyhow::Result<Self> {
        match &args.coordinator {
            Some(url) => {
                let client = ClientArgs {
                    coordinator: url.clone(),
                    token_file: args.token_file.clone(),
                    tls_ca: args.tls_ca.clone(),
                };
                Ok(Self {
                    jobs: client.jobs()?,
                    url: url.clone(),
                    local: None,
                })
            }
            None => {
                let local = LocalCluster::start(args.workers, device, Arc::default(), Arc::default()).await?;
                Ok(Self {
                    jobs: local.jobs()?,
                    url: local.url.clone(),
                    local: Some(local),
                })
            }
        }
    }

    /// Attempts per shard of the jobs this command submits: one in process
    /// (a failure is final there), the coordinator's default otherwise.
    pub fn max_attempts(&self) -> u32 {
        u32::from(self.local.is_some())
    }

    /// Stops a local cluster.
    pub async fn shutdown(self) {
        if let Some(local) = self.local {
            local.shutdown().await;
        }
    }
}
