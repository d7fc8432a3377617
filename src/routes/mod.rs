//! What a request gets: routing, authentication, and JSON errors, with one module per
//! route family (`trigger` for `/trigger`, `consumers` for named consumers, `read` for a folder's batch trigger and read
//! actions, `wait` for the wait action, `actions` for move and delete, `health` for
//! `/healthz`, `metrics` for `/metrics`, `openapi` for `/openapi.json`).
//!
//! Owns: the handlers' state ([`AppState`]), the one `match (method, path)`, the request
//! limits checked before routing (`414`, `413`), the authentication check on every route
//! but `/healthz` (and `/metrics` from a loopback peer with
//! `metrics.public_on_loopback`), the folder check (`auth.folders`: `403 folder_forbidden`
//! on a folder's routes, [`AppState::visible_folders`] for `GET /watches`), recording each answer in the metrics, and mapping every
//! [`RequestError`] to its status in one function.
//! Does not own: connections, TLS and drain (`server`), the polling exchange (`trigger`),
//! the URL the client sees (`url`), the credentials themselves (`auth`), or the metrics
//! (`crate::metrics`).

pub(crate) mod actions;
mod consumers;
mod health;
mod hooks;
mod metrics;
mod openapi;
pub(crate) mod read;
mod trigger;
mod url;
pub(crate) mod wait;

pub(crate) use read::content_link;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

pub(crate) use consumers::{key as consumer_key, origin_key as consumer_origin_key};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};

use crate::auth::{Auth, Principal, Verdict};
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
    /// `trigger.batch_max_bytes`
    batch_max_bytes: u64,
    /// The loaded `[auth]` methods (`None`: no authentication); replaced on SIGHUP.
    pub(crate) auth: Swap<Option<Auth>>,
    /// What `/metrics` shows; discovery records into it too.
    pub(crate) metrics: Arc<Metrics>,
    /// `metrics.public_on_loopback`
    metrics_public_on_loopback: bool,
    /// `[actions]`
    actions: crate::config::ActionSettings,
    /// `auth.folders`: principal → the folders it may use (not listed: every folder).
    access: HashMap<String, Vec<String>>,
    /// Webhook subscriptions and waits (`None`: not served, e.g. in unit tests).
    pub(crate) hooks: Option<Arc<crate::hooks::Hooks>>,
    /// What `GET /openapi.json` describes.
    openapi: crate::openapi::Spec,
}

impl AppState {
    /// The folder named `name`.
    pub(crate) fn folder(&self, name: &str) -> Option<&Folder> {
        self.folders.iter().find(|f| f.name == name).map(|f| &**f)
    }

    /// Whether `who` may use the folder named `name` (`auth.folders`; a principal not
    /// listed there, and an unnamed one, may use every folder).
    pub(crate) fn may_use(&self, who: &Principal, name: &str) -> bool {
        match who.0.as_ref().and_then(|p| self.access.get(p)) {
            Some(allowed) => allowed.iter().any(|a| a == name),
            None => true,
        }
    }

    /// The folders `who` may use, in configuration order: what `GET /watches` lists (and
    /// so the designer's folder dropdown).
    pub(crate) fn visible_folders(&self, who: &Principal) -> Vec<&Folder> {
        self.folders
            .iter()
            .filter(|f| self.may_use(who, &f.name))
            .map(|f| &**f)
            .collect()
    }

    /// The state for serving `index` (read through it, first-call cursors reserved through
    /// `writer`) over the one watched directory `root` (absolute, the folder `default`),
    /// with `settings`' `[server]` URL policy and `[trigger]` values, and `auth` (`None`:
    /// no authentication).
    pub fn new(
        settings: &Settings,
        index: &Index,
        writer: WriterHandle,
        health: Arc<Health>,
        root: PathBuf,
        auth: Option<Auth>,
    ) -> AppState {
        let folder = Arc::new(Folder {
            name: crate::folder::DEFAULT.to_string(),
            local: crate::confine::is_local_fs(&root),
            root,
            reader: index.reader(),
            max_content: settings.trigger.max_content_bytes,
            recursive: settings.watch.recursive,
            health,
            writer: writer.clone(),
        });
        AppState::with_folders(settings, index, writer, vec![folder], auth, None)
    }

    /// The state for serving `folders` (at least one; the first one's status is what
    /// `/metrics` and the progress reports show) from `index`, first-call cursors reserved
    /// through `writer`; otherwise as [`AppState::new`].
    pub(crate) fn with_folders(
        settings: &Settings,
        index: &Index,
        writer: WriterHandle,
        folders: Vec<Arc<Folder>>,
        auth: Option<Auth>,
        hooks: Option<Arc<crate::hooks::Hooks>>,
    ) -> AppState {
        let (reader, health) = match folders.first() {
            Some(f) => (f.reader.clone(), f.health.clone()),
            None => (index.reader(), Arc::new(Health::default())),
        };
        AppState {
            first_cursor: FirstCursor::new(index.clock(), writer),
            metrics: Arc::new(Metrics::for_folders(
                folders
                    .iter()
                    .map(|f| (f.name.clone(), f.health.clone(), f.reader.clone()))
                    .collect(),
            )),
            metrics_public_on_loopback: settings.metrics.public_on_loopback,
            reader,
            folders,
            openapi: crate::openapi::Spec::new(settings),
            health,
            urls: UrlPolicy::new(settings),
            retry_after: settings.trigger.retry_after_s,
            batch_max_bytes: settings.trigger.batch_max_bytes,
            auth: Swap::new(auth),
            access: settings.auth.folders.clone(),
            actions: settings.actions.clone(),
            hooks,
        }
    }

    /// Returns once every folder's start-up scan is done.
    pub(crate) async fn wait_ready(&self) {
        for f in &self.folders {
            f.health.wait_ready().await;
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
) -> Response<Body>
where
    B: http_body::Body + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let began = Instant::now();
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, ());
    let resp = route(state, peer, secure, &req, body).await;
    let status = resp.status().as_u16();
    let path = req.uri().path();
    // Only a 200 of a trigger is counted by folder, and only a known folder answers 200.
    let folder = path
        .strip_prefix("/watches/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(crate::folder::DEFAULT, |(name, _)| name);
    state.metrics.answered(
        Route::of(path),
        folder,
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

async fn route<B, In>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
    body: In,
) -> Response<Body>
where
    In: http_body::Body + Send,
    In::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
    let who = if is_public(state, peer, path) {
        Principal::default()
    } else {
        match authenticate(state, peer, req).await {
            Ok(who) => who,
            Err(denied) => return denied,
        }
    };
    if let Some(rest) = path.strip_prefix("/watches/") {
        let (name, op) = rest.split_once('/').unwrap_or((rest, ""));
        let folder = match usable_folder(state, &who, name) {
            Ok(folder) => folder,
            Err(refused) => return *refused,
        };
        return folder_route(state, folder, peer, secure, req, op, has_body, body).await;
    }
    match (method, path) {
        (&Method::GET, "/trigger" | "/healthz" | "/metrics" | "/watches" | "/openapi.json")
            if has_body =>
        {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_not_accepted",
                "a GET here takes no request body",
            )
        }
        (&Method::GET, "/trigger") => match usable_folder(state, &who, crate::folder::DEFAULT) {
            Ok(folder) => trigger::poll(state, folder, peer, secure, req).await,
            Err(refused) => *refused,
        },
        (&Method::GET, "/watches") => list_folders(state, &who),
        (&Method::GET, "/healthz") => health::healthz(state),
        (&Method::GET, "/metrics") => metrics::metrics(state).await,
        (&Method::GET, "/openapi.json") => openapi::definition(state, &who, peer, secure, req),
        (_, "/trigger" | "/healthz" | "/metrics" | "/watches" | "/openapi.json") => {
            not_allowed(method, "GET")
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no such endpoint: {path}; the trigger is GET /trigger"),
        ),
    }
}

/// The folder check, the one place for every folder route (`/watches/NAME/...` and
/// `/trigger`): `404 unknown_folder` for a name no folder has, `403 folder_forbidden` when
/// `who` may not use it (`auth.folders`).
fn usable_folder<'s>(
    state: &'s AppState,
    who: &Principal,
    name: &str,
) -> Result<&'s Folder, Box<Response<Body>>> {
    let Some(folder) = state.folder(name) else {
        let message = if name == crate::folder::DEFAULT {
            "no [watch] folder is configured (watch.dir is \"\"); GET /watches lists the folders"
                .to_string()
        } else {
            format!("no watched folder is named {name:?}; GET /watches lists them")
        };
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "unknown_folder",
            &message,
        )));
    };
    if !state.may_use(who, name) {
        tracing::debug!(folder = name, principal = ?who.0, "folder not allowed");
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "folder_forbidden",
            &format!(
                "these credentials may not use the folder {name:?} (auth.folders); GET /watches lists the folders they may use"
            ),
        )));
    }
    Ok(folder)
}

/// `GET /watches` (ListFolders): `{"value":[{"name","recursive"}...]}`, only the folders
/// `who` may use.
fn list_folders(state: &AppState, who: &Principal) -> Response<Body> {
    let value: Vec<serde_json::Value> = state
        .visible_folders(who)
        .into_iter()
        .map(Folder::listing)
        .collect();
    json(
        StatusCode::OK,
        serde_json::json!({ "value": value }).to_string(),
    )
}

/// The routes of one folder: `/watches/NAME/OP`.
#[allow(clippy::too_many_arguments)]
async fn folder_route<B, In>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
    op: &str,
    has_body: bool,
    body: In,
) -> Response<Body>
where
    In: http_body::Body + Send,
    In::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = req.method();
    if let Some(id) = op.strip_prefix("subscriptions/") {
        return match *method {
            Method::GET => hooks::get_subscription(state, folder, id).await,
            Method::DELETE => hooks::unsubscribe(state, folder, id).await,
            _ => not_allowed(method, "GET, DELETE"),
        };
    }
    if let Some(id) = op.strip_prefix("waits/") {
        return match *method {
            Method::DELETE => hooks::cancel_wait(state, folder, id).await,
            _ => not_allowed(method, "DELETE"),
        };
    }
    match (method, op) {
        (&Method::POST, "subscriptions") => {
            hooks::subscribe(state, folder, peer, secure, req, body).await
        }
        (&Method::GET, "subscriptions") => hooks::list(state, folder).await,
        (_, "subscriptions") => not_allowed(method, "GET, POST"),
        (&Method::POST, "waits") => hooks::add_wait(state, folder, peer, secure, req, body).await,
        (_, "waits") => not_allowed(method, "POST"),
        (&Method::GET, "trigger") if has_body => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_not_accepted",
            "a GET here takes no request body",
        ),
        (&Method::GET, "trigger") => trigger::poll(state, folder, peer, secure, req).await,
        (_, "trigger") => not_allowed(method, "GET"),
        (&Method::GET, "batch" | "files" | "properties" | "content" | "wait") if has_body => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_not_accepted",
            "a GET here takes no request body",
        ),
        (&Method::GET, "batch") => read::batch(state, folder, peer, secure, req).await,
        (&Method::GET, "files") => read::files(state, folder, peer, secure, req).await,
        (&Method::GET, "properties") => read::properties(state, folder, req).await,
        (&Method::GET, "content") => read::content(state, folder, req).await,
        (_, "batch" | "properties" | "content") => not_allowed(method, "GET"),
        (&Method::GET, "wait") => wait::wait(state, folder, peer, secure, req).await,
        (_, "wait") => not_allowed(method, "GET"),
        // Move and delete take their parameters in the query; a body (an empty JSON object
        // from a client that always sends one) is not read.
        (&Method::POST, "move") => actions::move_file(state, folder, req).await,
        (_, "move") => not_allowed(method, "POST"),
        (&Method::DELETE, "files") => actions::delete_file(state, folder, req).await,
        (_, "files") => not_allowed(method, "GET, DELETE"),
        (&Method::GET, "consumers") if has_body => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_not_accepted",
            "a GET here takes no request body",
        ),
        (&Method::GET, "consumers") => consumers::list(state, folder).await,
        (_, "consumers") => not_allowed(method, "GET"),
        (&Method::DELETE, op) if op.starts_with("consumers/") => {
            consumers::delete(state, folder, req, &op["consumers/".len()..]).await
        }
        (_, op) if op.starts_with("consumers/") => not_allowed(method, "DELETE"),
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

/// Who sent the request when it may proceed (no authentication configured: an unnamed
/// principal); otherwise the `401` to send.
async fn authenticate<B>(
    state: &AppState,
    peer: SocketAddr,
    req: &Request<B>,
) -> Result<Principal, Response<Body>> {
    let auth = state.auth.get();
    let Some(methods) = auth.as_ref() else {
        return Ok(Principal::default());
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
                .map_or(Verdict::Allowed(Principal::default()), |a| {
                    a.check(&headers)
                })
        })
        .await
        .unwrap_or(Verdict::Denied)
    } else {
        methods.check(req.headers())
    };
    let message = match verdict {
        Verdict::Allowed(who) => return Ok(who),
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
    Err(r)
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
    /// A query parameter is missing or bad; `code` names it (`bad_glob`, `bad_path`...).
    #[error("{message}")]
    BadParam {
        /// The JSON error code.
        code: &'static str,
        /// What is wrong, naming the parameter.
        message: String,
    },
    /// The request body did not arrive within this many seconds.
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    /// `actions.allow_write` is off.
    #[error("moving and deleting files is disabled: set actions.allow_write = true")]
    WritingDisabled,
    /// The file system refused a move or delete (the unit's sandbox, permissions).
    #[error("{0}")]
    NotPermitted(String),
    /// No such thing (a consumer); `code` says what.
    #[error("{message}")]
    NotFound {
        /// The JSON error code.
        code: &'static str,
        /// What is missing.
        message: String,
    },
    /// No such file is indexed (or it is gone from disk).
    #[error("{0}")]
    FileNotFound(String),
    /// The indexed file cannot be read by the daemon (permission denied).
    #[error("{0}")]
    FileUnreadable(String),
    /// The request names a version or a target that does not fit the disk any more;
    /// `code` says which (`version_changed`, `target_exists`).
    #[error("{message}")]
    Conflict {
        /// The JSON error code.
        code: &'static str,
        /// What does not fit.
        message: String,
    },
}

impl RequestError {
    /// `400 bad_parameter`; the message names the parameter.
    fn bad_parameter(message: String) -> RequestError {
        RequestError::BadParam {
            code: "bad_parameter",
            message,
        }
    }

    /// `409 version_changed`: the file on disk is not the version indexed (or asked for).
    fn version_changed(message: String) -> RequestError {
        RequestError::Conflict {
            code: "version_changed",
            message,
        }
    }

    /// The status and the JSON error code.
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            RequestError::BadCursor(_) => (StatusCode::BAD_REQUEST, "bad_trigger_state"),
            RequestError::BadHost => (StatusCode::BAD_REQUEST, "bad_host"),
            RequestError::BadQuery => (StatusCode::BAD_REQUEST, "bad_query"),
            RequestError::LocationTooLong => (StatusCode::URI_TOO_LONG, "location_too_long"),
            RequestError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            RequestError::BadParam { code, .. } => (StatusCode::BAD_REQUEST, *code),
            RequestError::WritingDisabled => (StatusCode::FORBIDDEN, "writing_disabled"),
            RequestError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            RequestError::NotPermitted(_) => (StatusCode::FORBIDDEN, "not_permitted"),
            RequestError::FileNotFound(_) => (StatusCode::NOT_FOUND, "file_not_found"),
            RequestError::NotFound { code, .. } => (StatusCode::NOT_FOUND, *code),
            RequestError::FileUnreadable(_) => (StatusCode::FORBIDDEN, "file_unreadable"),
            RequestError::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
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
        let req = Request::get(uri)
            .header(HOST, "h:1")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
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
