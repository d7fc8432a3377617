//! `GET /healthz`: the status for systemd, load balancers and operators.
//!
//! Owns: the answer's shape (`200`/`503` with `Retry-After`, the JSON fields).
//! Does not own: the facts it reports (`health`, the index's stats).

use std::sync::atomic::Ordering;

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

use super::{json, AppState, Body};

/// The status: `200` when ready and working, `503` (with `Retry-After: 1`) otherwise.
pub(super) fn healthz(state: &AppState) -> Response<Body> {
    let stats = state.reader.stats();
    let failing = stats.failing.load(Ordering::Relaxed);
    let root_ok = state.health.root_ok();
    let ready = state.health.is_ready() && !failing && root_ok;
    let status = if !state.health.is_ready() {
        "starting"
    } else if failing {
        "index_failing"
    } else if !root_ok {
        "watched_dir_unavailable"
    } else if state.health.watcher() == "degraded" {
        // Still working (rescans cover what is not watched): 200, but said.
        "degraded"
    } else {
        "ok"
    };
    let body = serde_json::json!({
        "status": status,
        "filesIndexed": stats.files.load(Ordering::Relaxed),
        "pending": state.health.pending(),
        "watcher": state.health.watcher(),
        "lastRescan": state.health.last_rescan().map(|s| s.to_string()),
    });
    let mut r = json(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        body.to_string(),
    );
    if !ready {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}
