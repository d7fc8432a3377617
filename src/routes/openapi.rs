//! `GET /openapi.json`: the connector's Swagger 2.0 document, for the URL the client sees.
//!
//! Owns: answering with [`crate::openapi::Spec::document`] for the request's base URL
//! (`server.public_url`, a trusted proxy's `X-Forwarded-*`, or `Host`: the same rules as
//! `Location`).
//! Does not own: the document's content (`crate::openapi`), authentication (`routes`).

use std::net::SocketAddr;

use hyper::{Request, Response, StatusCode};

use super::{json, AppState, Body};

/// The document, or `400` when the request gives no usable host.
pub(super) fn definition<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    match state.urls.base_url(peer, secure, req) {
        Ok(base) => json(StatusCode::OK, state.openapi.document(&base).to_string()),
        Err(e) => e.into_response(state.retry_after),
    }
}
