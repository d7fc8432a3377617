//! `GET /healthz`: the status for systemd, load balancers and operators.
//!
//! Owns: turning [`crate::health::answer`] into a response (JSON, `Retry-After`).
//! Does not own: what it answers (`health` decides the code, the status word and the
//! fields from the shared status and the index's stats).

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::Response;

use super::{json, AppState, Body};

/// The status: `200` when ready and working, `503` (with `Retry-After`) otherwise.
pub(super) fn healthz(state: &AppState) -> Response<Body> {
    let folders: Vec<crate::health::FolderStatus<'_>> = state
        .folders
        .iter()
        .map(|f| crate::health::FolderStatus {
            name: &f.name,
            health: &f.health,
            files: f.reader.files(),
        })
        .collect();
    let hooks = state.hooks.as_ref().map(|h| h.counts());
    let a = crate::health::answer(&folders, state.reader.stats(), hooks.as_ref());
    let mut r = json(a.code, a.body);
    if let Some(s) = a.retry_after_s {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
    }
    r
}
