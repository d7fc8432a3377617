//! `GET /metrics`: the daemon's metrics for Prometheus.
//!
//! Owns: turning [`crate::metrics::Metrics::render`] into a response (the Prometheus text
//! format's `Content-Type`), rendered off the async workers (it reads `/proc`).
//! Does not own: the metrics (`crate::metrics`), or who may read them (`routes`:
//! authentication, `metrics.public_on_loopback`).

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{full, AppState, Body, RequestError};

/// The metrics as text; a `503` if rendering failed.
pub(super) async fn metrics(state: &AppState) -> Response<Body> {
    let m = state.metrics.clone();
    match tokio::task::spawn_blocking(move || m.render()).await {
        Ok(Ok(text)) => {
            let mut r = Response::new(full(text));
            *r.status_mut() = StatusCode::OK;
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            r
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot render the metrics");
            RequestError::Unavailable("the metrics cannot be rendered").into_response(1)
        }
        Err(e) => {
            tracing::error!(error = %e, "the metrics task failed");
            RequestError::Unavailable("internal error").into_response(1)
        }
    }
}
