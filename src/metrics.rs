//! A minimal HTTP endpoint for Prometheus: `GET /metrics` answers the text
//! a render function returns; anything else is 404.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Renders the metrics page.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves metrics on `addr` in the background; returns the bound address.
pub async fn serve(addr: SocketAddr, render: Render) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let render = render.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let (status, body) =
                    if head.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
                        ("200 OK", render())
                    } else {
                        ("404 Not Found", "not found\n".to_string())
                    };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(bound)
}
