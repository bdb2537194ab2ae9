//! `headscan coordinator`: serves the Jobs and Work services over a SQLite
//! state file and an object store, until interrupted.

use std::io::Write;

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use headscan_coordinator::metrics::{RateWindow, render};
use headscan_coordinator::scheduler::Policy;
use headscan_coordinator::server::Coordinator;
use headscan_coordinator::service::{ServeOptions, serve};
use headscan_coordinator::state::StateStore;
use headscan_proto::client::read_token_file;
use headscan_proto::store::Location;

/// Flags of `headscan coordinator`.
#[derive(Debug, clap::Args)]
pub struct CoordinatorArgs {
    /// Address to serve gRPC on (port 0 picks a free one; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// SQLite state file (jobs, tasks, leases, commits); restart on it to resume every job.
    #[arg(long, default_value = "headscan-state.db")]
    state: PathBuf,
    /// Object store for committed partials and default job outputs (path or URL).
    #[arg(long)]
    store: String,
    /// File holding the bearer token every call must carry.
    #[arg(long, env = "HEADSCAN_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// A lease lasts this long without a heartbeat (ms).
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// Workers send heartbeats this often (ms).
    #[arg(long, default_value_t = 5_000)]
    heartbeat_ms: u64,
    /// Attempts per shard before it fails for good.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Model registry to watch (a directory or object-store prefix; one
    /// Hugging Face-layout folder per model); needs --recompute.
    #[arg(long, requires = "recompute")]
    watch_models: Option<String>,
    /// Datasets × analyses (TOML) to run on every new or changed model of --watch-models.
    #[arg(long, requires = "watch_models")]
    recompute: Option<PathBuf>,
    /// Seconds between polls of --watch-models.
    #[arg(long, default_value_t = 60.0)]
    poll_s: f64,
}

/// Absolute form of a local store path (URLs unchanged).
pub fn absolute_url(s: &str) -> String {
    if s.contains("://") {
        return s.to_string();
    }
    std::path::absolute(s).map_or_else(|_| s.to_string(), |p| p.display().to_string())
}

/// Runs the coordinator until Ctrl-C or SIGTERM.
pub async fn run(args: CoordinatorArgs) -> anyhow::Result<()> {
    if args.heartbeat_ms == 0 || args.lease_ms <= args.heartbeat_ms {
        anyhow::bail!("--lease-ms must be larger than --heartbeat-ms (> 0)");
    }
    let token = args.token_file.as_deref().map(read_token_file).transpose()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((
            std::fs::read(c).with_context(|| format!("cannot read --tls-cert {}", c.display()))?,
            std::fs::read(k).with_context(|| format!("cannot read --tls-key {}", k.display()))?,
        )),
        _ => None,
    };
    let store = Location::parse(&absolute_url(&args.store))?;
    // The recompute file is checked before serving, and re-read at every poll.
    if let Some(recompute) = &args.recompute {
        headscan_coordinator::registry::Recompute::read(recompute)?;
    }
    if let Some(parent) = args.state.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let state = StateStore::open(&args.state)
        .with_context(|| format!("cannot open --state {}", args.state.display()))?;
    let policy = Policy {
        lease_ms: args.lease_ms,
        heartbeat_ms: args.heartbeat_ms,
        max_attempts: args.max_attempts.max(1),
    };
    let coordinator = Coordinator::start(state, store, policy)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if let Some(m) = args.metrics {
        let (c, window) = (coordinator.clone(), Arc::new(RateWindow::default()));
        let render: crate::metrics::Render = Arc::new(move || render(&c, &window));
        let bound = crate::metrics::serve(m, render).await?;
        tracing::info!(addr = %bound, "metrics at /metrics");
    }
    writeln!(std::io::stdout(), "headscan coordinator listening on {addr}")?;
    tracing::info!(%addr, state = %args.state.display(), store = %args.store, tls = tls.is_some(), token = token.is_some(), "coordinator started");
    if let (Some(registry), Some(recompute)) = (&args.watch_models, &args.recompute) {
        let registry = Location::parse(&absolute_url(registry))?;
        let recompute = std::path::absolute(recompute)?;
        let store = Location::parse(&absolute_url(&args.store))?;
        let digest: headscan_coordinator::registry::DigestFn = Arc::new(|url: String| {
            Box::pin(async move {
                let dir = headscan_worker::fetch::resolve_model(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::task::spawn_blocking(move || {
                    headscan_worker::digest::model_digest(&dir).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            })
        });
        let interval = std::time::Duration::from_secs_f64(args.poll_s.max(0.05));
        tracing::info!(registry = %registry.url(), recompute = %recompute.display(), poll_s = args.poll_s, "watching the model registry");
        let watcher = headscan_coordinator::registry::Watcher::new(
            coordinator.clone(),
            registry,
            recompute,
            store,
            digest,
        );
        tokio::spawn(watcher.run(interval));
    }
    let options = ServeOptions { token, tls };
    serve(coordinator, listener, options, shutdown_signal()).await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
