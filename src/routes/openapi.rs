//! `GET /openapi.json`: the connector's Swagger 2.0 document, for the URL the client sees.
//!
//! Owns: answering with [`crate::openapi::Spec::document`] for the request's base URL
//! (`server.public_url`, a trusted proxy's `X-Forwarded-*`, or `Host`: the same rules as
//! `Location`).
//! Does not own: the document's content (`crate::openapi`), authentication (`routes`).

use std::net::SocketAddr;

use hyper::{Request, Response, StatusCode};

use super::{json, AppState, Body};
use crate::auth::Principal;

/// The document, or `400` when the request gives no usable host. For a credential that
/// may not use the folder `default` (`auth.folders`), the `folder` parameter preselects
/// nothing: the designer would otherwise fill in a folder that answers it `403`.
pub(super) fn definition<B>(
    state: &AppState,
    who: &Principal,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    match state.urls.base_url(peer, secure, req) {
        Ok(base) => {
            let mut doc = state.openapi.document(&base);
            if !state.may_use(who, crate::folder::DEFAULT) {
                if let Some(folder) = doc
                    .pointer_mut("/parameters/folder")
                    .and_then(|f| f.as_object_mut())
                {
                    folder.remove("default");
                    folder.remove("x-example");
                }
            }
            json(StatusCode::OK, doc.to_string())
        }
        Err(e) => e.into_response(state.retry_after),
    }
}
