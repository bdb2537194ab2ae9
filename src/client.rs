//! Options every client command shares (`submit`, `status`, `cancel`,
//! `results`): where the coordinator is and how to authenticate.

use std::path::PathBuf;

use anyhow::Context;
use headscan_proto::client::{BearerToken, channel, read_token_file};
use headscan_proto::pb::jobs_client::JobsClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A `Jobs` client with the token attached.
pub type Jobs = JobsClient<InterceptedService<Channel, BearerToken>>;

/// How to reach the coordinator.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Coordinator URL (http://host:port, or https:// for TLS).
    #[arg(long, env = "HEADSCAN_COORDINATOR", default_value = "http://127.0.0.1:50051")]
    pub coordinator: String,
    /// File holding the coordinator's bearer token.
    #[arg(long, env = "HEADSCAN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for TLS (e.g. the coordinator's self-signed certificate).
    #[arg(long, env = "HEADSCAN_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl ClientArgs {
    /// The token, read from --token-file.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        self.token_file
            .as_deref()
            .map(read_token_file)
            .transpose()
            .map_err(Into::into)
    }

    /// The CA certificate, read from --tls-ca.
    pub fn ca(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.tls_ca
            .as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("cannot read --tls-ca {}", p.display())))
            .transpose()
    }

    /// A `Jobs` client.
    pub fn jobs(&self) -> anyhow::Result<Jobs> {
        let ch = channel(&self.coordinator, self.ca()?.as_deref())?;
        jobs_client(ch, self.token()?.as_deref())
    }
}

/// A `Jobs` client on `ch` with `token` attached and headscan's message limits.
pub fn jobs_client(ch: Channel, token: Option<&str>) -> anyhow::Result<Jobs> {
    Ok(JobsClient::with_interceptor(ch, BearerToken::new(token)?)
        .max_decoding_message_size(headscan_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(headscan_proto::MAX_MESSAGE_BYTES))
}

/// A readable error for a failed call.
pub fn call_error(coordinator: &str, s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::Unavailable => {
            anyhow::anyhow!("coordinator {coordinator} is unreachable: {}", s.message())
        }
        tonic::Code::Unauthenticated => {
            anyhow::anyhow!("coordinator {coordinator} refused the call: {}", s.message())
        }
        _ => anyhow::anyhow!("{}", s.message()),
    }
}
