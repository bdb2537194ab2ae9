//! How clients reach a coordinator: a channel to its URL (TLS when the URL
//! is `https://`, trusting a given CA certificate) and the bearer token that
//! every call carries. Workers and the CLI both use this.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::AUTH_METADATA;

/// Errors building a client channel.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The coordinator URL or token is unusable.
    #[error("{0}")]
    Invalid(String),
    /// The transport could not be set up.
    #[error("coordinator {url}: {source}")]
    Transport {
        /// Coordinator URL.
        url: String,
        /// Underlying error.
        source: tonic::transport::Error,
    },
}

/// Adds `authorization: Bearer <token>` to every call (nothing without a token).
#[derive(Debug, Clone, Default)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl BearerToken {
    /// A token interceptor; `None` sends no token.
    pub fn new(token: Option<&str>) -> Result<Self, ClientError> {
        token
            .map(|t| {
                MetadataValue::try_from(format!("Bearer {}", t.trim())).map_err(|_| {
                    ClientError::Invalid("the token has characters a header cannot carry".into())
                })
            })
            .transpose()
            .map(Self)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(AUTH_METADATA, v.clone());
        }
        Ok(req)
    }
}

/// A lazily connecting channel to a coordinator URL (`http://host:port` or
/// `https://host:port`; a bare `host:port` means `http://`). With
/// `ca_pem`, TLS trusts that certificate (PEM).
pub fn channel(url: &str, ca_pem: Option<&[u8]>) -> Result<Channel, ClientError> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let mut endpoint = Endpoint::from_shared(full.clone())
        .map_err(|e| ClientError::Invalid(format!("coordinator URL {url:?}: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if full.starts_with("https://") || ca_pem.is_some() {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|source| ClientError::Transport {
                url: url.to_string(),
                source,
            })?;
    }
    Ok(endpoint.connect_lazy())
}

/// Reads a token file (surrounding whitespace dropped); an empty file is an error.
pub fn read_token_file(path: &std::path::Path) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::Invalid(format!("token file {}: {e}", path.display())))?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(ClientError::Invalid(format!(
            "token file {} is empty",
            path.display()
        )));
    }
    Ok(token)
}
