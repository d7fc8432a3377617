//! Serving connections on a pre-bound listener with hyper.
//!
//! Owns: the accept loop (errors logged, backed off, survived), TLS handshakes (bounded by
//! the header timeout), the connection limits of `[server]` (connections at once, the
//! header read timeout with hyper's timer set, the request head size), and the graceful
//! drain at shutdown.
//! Does not own: what a request gets (`routes`), binding the socket (`lib::run`), or
//! loading certificates (`tls`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::routes::{self, AppState};
use crate::swap::Swap;

/// How long in-flight requests may take to finish at shutdown (well under systemd's
/// default `TimeoutStopSec` of 90 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection limits (`[server]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections served at once; more wait in the listen backlog.
    pub(crate) max_connections: usize,
    /// Time to send a request head (and finish a TLS handshake), and the keep-alive idle
    /// time.
    pub(crate) header_read_timeout: Duration,
    /// Largest request head in bytes (`431` beyond).
    pub(crate) max_header_bytes: usize,
}

/// The TLS configuration, if HTTPS is served; replaced on SIGHUP.
pub(crate) type TlsConfig = Swap<Option<Arc<rustls::ServerConfig>>>;

/// Serves `listener` (HTTP/1.1, over TLS when `tls` holds a configuration) until `token`
/// is cancelled, then drains in-flight requests for at most [`DRAIN_TIMEOUT`]. Accept
/// errors and failed handshakes are logged and survived.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Arc<TlsConfig>,
    limits: Limits,
    token: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192) * 2)
        .max_header_size(limits.max_header_bytes);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            _ = token.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.get();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let secure = tls.is_some();
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(routes::handle(&state, peer, secure, req).await) }
            });
            let result = match tls.as_ref() {
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("connections drained"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("gave up waiting for open connections"),
    }
}
