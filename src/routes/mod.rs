//! What a request gets: routing, authentication, and JSON errors, with one module per
//! route family (`trigger` for `/trigger`, `health` for `/healthz`, `metrics` for
//! `/metrics`).
//!
//! Owns: the handlers' state ([`AppState`]), the one `match (method, path)`, the request
//! limits checked before routing (`414`, `413`), the authentication check on every route
//! but `/healthz` (and `/metrics` from a loopback peer with
//! `metrics.public_on_loopback`), recording each answer in the metrics, and mapping every
//! [`RequestError`] to its status in one function.
//! Does not own: connections, TLS and drain (`server`), the polling exchange (`trigger`),
//! the URL the client sees (`url`), the credentials themselves (`auth`), or the metrics
//! (`crate::metrics`).

mod health;
mod metrics;
mod trigger;
mod url;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};

use crate::auth::{Auth, Verdict};
use crate::config::Settings;
use crate::cursor::FirstCursor;
use crate::folder::Folder;
use crate::health::Health;
use crate::index::{Index, IndexReader, WriterHandle};
use crate::metrics::{Metrics, Route};
use crate::swap::Swap;
use url::{UrlPolicy, MAX_LOCATION};

/// The body type of every answer.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Request targets longer than this get `414`.
const MAX_URI: usize = 4096;

/// What the handlers need. Built once by [`AppState::new`]; only the crate changes it
/// (the authentication files on SIGHUP).
#[derive(Debug)]
pub struct AppState {
    /// Read side of the index.
    pub(crate) reader: IndexReader,
    /// The watched folders, in configuration order (`default` first when configured).
    pub(crate) folders: Vec<Arc<Folder>>,
    /// First-call cursors.
    pub(crate) first_cursor: FirstCursor,
    /// Status for `/healthz`.
    pub(crate) health: Arc<Health>,
    /// `server.public_url`, `server.trusted_proxies`.
    urls: UrlPolicy,
    /// `trigger.retry_after_s`
    retry_after: u32,
    /// The loaded `[auth]` methods (`None`: no authentication); replaced on SIGHUP.
    pub(crate) auth: Swap<Option<Auth>>,
    /// What `/metrics` shows; discovery records into it too.
    pub(crate) metrics: Arc<Metrics>,
    /// `metrics.public_on_loopback`
    metrics_public_on_loopback: bool,
}

impl AppState {
    /// The folder named `name`.
    pub(crate) fn folder(&self, name: &str) -> Option<&Folder> {
        self.folders.iter().find(|f| f.name == name).map(|f| &**f)
    }

    /// The state for serving `index` (read through it, first-call cursors reserved through
    /// `writer`) over the watched directory `root` (absolute), with `settings`' `[server]`
    /// URL policy and `[trigger]` values, and `auth` (`None`: no authentication).
    pub fn new(
        settings: &Settings,
        index: &Index,
        writer: WriterHandle,
        health: Arc<Health>,
        root: PathBuf,
        auth: Option<Auth>,
    ) -> AppState {
        AppState {
            reader: index.reader(),
            folders: vec![Arc::new(Folder {
                name: crate::folder::DEFAULT.to_string(),
                local: crate::confine::is_local_fs(&root),
                root,
                reader: index.reader(),
                max_content: settings.trigger.max_content_bytes,
            })],
            first_cursor: FirstCursor::new(index.clock(), writer),
            metrics: Arc::new(Metrics::new(health.clone(), index.reader())),
            metrics_public_on_loopback: settings.metrics.public_on_loopback,
            health,
            urls: UrlPolicy::new(settings),
            retry_after: settings.trigger.retry_after_s,
            auth: Swap::new(auth),
        }
    }
}

/// Answers one request: limits first, then authentication (every route but `/healthz`),
/// then the route; the answer is counted in the metrics.
pub async fn handle<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: Request<B>,
) -> Response<Body> {
    let began = Instant::now();
    let resp = route(state, peer, secure, &req).await;
    let status = resp.status().as_u16();
    state.metrics.answered(
        Route::of(req.uri().path()),
        status,
        began.elapsed(),
        resp.body().size_hint().exact(),
    );
    tracing::debug!(%peer, method = %req.method(), path = %req.uri().path(), status, "request");
    resp
}

/// Whether `path` is answered to `peer` without authentication: `/healthz` always,
/// `/metrics` to a loopback peer when `metrics.public_on_loopback` says so.
fn is_public(state: &AppState, peer: SocketAddr, path: &str) -> bool {
    match path {
        "/healthz" => true,
        "/metrics" => state.metrics_public_on_loopback && peer.ip().to_canonical().is_loopback(),
        _ => false,
    }
}

async fn route<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    let method = req.method();
    let path = req.uri().path();
    if req.uri().to_string().len() > MAX_URI {
        return error(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            &format!("the request target is longer than {MAX_URI} bytes"),
        );
    }
    let has_body = req
        .headers()
        .get(CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(hyper::header::TRANSFER_ENCODING);
    if !is_public(state, peer, path) {
        if let Some(denied) = authenticate(state, peer, req).await {
            return denied;
        }
    }
    if let Some(rest) = path.strip_prefix("/watches/") {
        let (name, op) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(folder) = state.folder(name) else {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_folder",
                &format!("no watched folder is named {name:?}; GET /watches lists them"),
            );
        };
        return folder_route(state, folder, peer, secure, req, op, has_body).await;
    }
    match (method, path) {
        (&Method::GET, "/trigger" | "/healthz" | "/metrics") if has_body => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_not_accepted",
            "a GET here takes no request body",
        ),
        (&Method::GET, "/trigger") => match state.folder(crate::folder::DEFAULT) {
            Some(folder) => trigger::poll(state, folder, peer, secure, req).await,
            None => error(
                StatusCode::NOT_FOUND,
                "unknown_folder",
                "no [watch] folder is configured; GET /watches lists the folders",
            ),
        },
        (&Method::GET, "/healthz") => health::healthz(state),
        (&Method::GET, "/metrics") => metrics::metrics(state).await,
        (_, "/trigger" | "/healthz" | "/metrics") => not_allowed(method, "GET"),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no such endpoint: {path}; the trigger is GET /trigger"),
        ),
    }
}

/// The routes of one folder: `/watches/NAME/OP`.
async fn folder_route<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
    op: &str,
    has_body: bool,
) -> Response<Body> {
    let method = req.method();
    match (method, op) {
        (&Method::GET, "trigger") if has_body => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_not_accepted",
            "a GET here takes no request body",
        ),
        (&Method::GET, "trigger") => trigger::poll(state, folder, peer, secure, req).await,
        (_, "trigger") => not_allowed(method, "GET"),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!(
                "no such endpoint: {}; a folder's trigger is GET /watches/{}/trigger",
                req.uri().path(),
                folder.name
            ),
        ),
    }
}

/// `405` naming the methods the route takes.
fn not_allowed(method: &Method, allow: &'static str) -> Response<Body> {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("{method} is not allowed here; use {allow}"),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// `None` when the request may proceed; otherwise the `401` to send.
async fn authenticate<B>(
    state: &AppState,
    peer: SocketAddr,
    req: &Request<B>,
) -> Option<Response<Body>> {
    let auth = state.auth.get();
    let Some(methods) = auth.as_ref() else {
        return None;
    };
    // Only a Basic check runs bcrypt (milliseconds): that one goes off the async workers;
    // an API key or no credentials at all is checked in place.
    let verdict = if req.headers().contains_key(hyper::header::AUTHORIZATION) {
        let headers = req.headers().clone();
        let checker = auth.clone();
        tokio::task::spawn_blocking(move || {
            checker
                .as_ref()
                .as_ref()
                .map_or(Verdict::Allowed, |a| a.check(&headers))
        })
        .await
        .unwrap_or(Verdict::Denied)
    } else {
        methods.check(req.headers())
    };
    let message = match verdict {
        Verdict::Allowed => return None,
        Verdict::Missing => "authentication required",
        Verdict::Denied => {
            tracing::warn!(%peer, path = %req.uri().path(), "authentication failed");
            "the credentials were not accepted"
        }
    };
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let challenge = if methods.has_basic() {
        "Basic realm=\"filetrigger\", charset=\"UTF-8\"".to_string()
    } else {
        format!("ApiKey header=\"{}\"", methods.key_header())
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
    }
    Some(r)
}

/// Why a request is answered with an error. One place maps each to its status.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    /// `triggerState` is not a valid timestamp, or given twice.
    #[error("{0}")]
    BadCursor(String),
    /// No usable `Host` and no `server.public_url`.
    #[error("the request has no valid Host header, and server.public_url is not set")]
    BadHost,
    /// The query cannot be echoed back in `Location`.
    #[error("the query holds characters that cannot be echoed in Location")]
    BadQuery,
    /// The next `Location` would be too long.
    #[error("the query is too long: the next URL would exceed {MAX_LOCATION} bytes")]
    LocationTooLong,
    /// The index cannot be used right now; the client should retry.
    #[error("{0}")]
    Unavailable(&'static str),
}

impl RequestError {
    /// The status and the JSON error code.
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            RequestError::BadCursor(_) => (StatusCode::BAD_REQUEST, "bad_trigger_state"),
            RequestError::BadHost => (StatusCode::BAD_REQUEST, "bad_host"),
            RequestError::BadQuery => (StatusCode::BAD_REQUEST, "bad_query"),
            RequestError::LocationTooLong => (StatusCode::URI_TOO_LONG, "location_too_long"),
            RequestError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

    /// The JSON answer; a `503` tells the client to retry after `retry` seconds.
    fn into_response(self, retry: u32) -> Response<Body> {
        let (status, code) = self.status();
        let mut r = error(status, code, &self.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry));
        }
        r
    }
}

/// A JSON error answer.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    json(status, body.to_string())
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {

    use hyper::header::HOST;

    use super::*;
    use crate::stamp::SystemClock;

    async fn status_of(state: &AppState, uri: &str) -> StatusCode {
        let req = Request::get(uri).header(HOST, "h:1").body(()).unwrap();
        handle(state, "127.0.0.1:9".parse().unwrap(), false, req)
            .await
            .status()
    }

    #[tokio::test]
    async fn healthz_is_503_until_ready_and_200_after() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (writer, _join) = index.start_writer(4).unwrap();
        let settings = crate::config::load(None, Vec::new()).unwrap();
        let state = AppState::new(
            &settings,
            &index,
            writer,
            Arc::new(Health::default()),
            dir.path().to_path_buf(),
            None,
        );
        assert_eq!(
            status_of(&state, "/healthz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.health.set_ready(true);
        assert_eq!(status_of(&state, "/healthz").await, StatusCode::OK);
        state.health.set_root_ok(false);
        assert_eq!(
            status_of(&state, "/healthz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.health.set_root_ok(true);
        state.reader.stats().set_failing();
        assert_eq!(
            status_of(&state, "/healthz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
