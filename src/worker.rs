//! `headscan worker`: pulls tasks from a coordinator and runs them until
//! interrupted.

use std::path::PathBuf;
use std::sync::Arc;

use headscan_proto::client::read_token_file;
use headscan_worker::pull::{ModelCache, PullOptions};

/// Flags of `headscan worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Coordinator URL (http://host:port, or https:// for TLS).
    #[arg(long, env = "HEADSCAN_COORDINATOR", default_value = "http://127.0.0.1:50051")]
    coordinator: String,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// File holding the coordinator's bearer token.
    #[arg(long, env = "HEADSCAN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for TLS.
    #[arg(long, env = "HEADSCAN_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Worker id (default: host, process id and a random suffix).
    #[arg(long)]
    id: Option<String>,
    /// Do not lease a second task to read its shard while the first computes.
    #[arg(long)]
    no_prefetch: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
}

/// Runs the worker until Ctrl-C or SIGTERM.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let mut opts = PullOptions::new(&args.coordinator, &args.device);
    opts.token = args.token_file.as_deref().map(read_token_file).transpose()?;
    opts.tls_ca = args.tls_ca.as_ref().map(std::fs::read).transpose()?;
    opts.prefetch = !args.no_prefetch;
    if let Some(id) = args.id {
        opts.worker_id = id;
    }
    if let Some(addr) = args.metrics {
        let m = opts.metrics.clone();
        let bound = crate::metrics::serve(addr, Arc::new(move || m.render())).await?;
        tracing::info!(addr = %bound, "metrics at /metrics");
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::coordinator::shutdown_signal().await;
        let _ = tx.send(true);
    });
    headscan_worker::pull::run(opts, Arc::new(ModelCache::default()), Some(rx)).await?;
    Ok(())
}
