//! The webhook trigger and the webhook wait: `POST/GET /watches/NAME/subscriptions`,
//! `GET/DELETE /watches/NAME/subscriptions/ID`, `POST /watches/NAME/waits`,
//! `DELETE /watches/NAME/waits/ID`.
//!
//! Owns: reading and checking their JSON bodies (each field checked, a bad one a `400`
//! naming it; a refused callback URL `400 bad_callback_url` saying why, never echoing the
//! URL's query), the `201` with `Location`, and the answers, which never hold a callback
//! URL (only its host).
//! Does not own: the subscriptions and waits themselves (`hooks`), the URL checks
//! (`deliver::safety`), the base URL (`url`).

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};

use super::{json, url, AppState, Body, RequestError};
use crate::folder::Folder;
use crate::hooks::{Hooks, Mode, SubscribeRequest, WaitRequest};

/// A request body larger than this is refused.
const MAX_BODY: usize = 64 * 1024;
/// A request body must have arrived whole within this; a client that declares a body and
/// does not send it gets `408` instead of holding the connection.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// `maxFileCount`'s range and default, and the wait's default `timeout`: the polling
/// operations'.
use super::read::{DEFAULT_FILE_COUNT, MAX_FILE_COUNT};
use super::wait::DEFAULT_TIMEOUT_S;

fn bad(code: &'static str, message: String) -> RequestError {
    RequestError::BadParam { code, message }
}

fn unavailable(e: crate::error::IndexError) -> RequestError {
    tracing::error!(error = %e, "index write failed");
    RequestError::Unavailable("the index cannot be written right now")
}

fn hooks_of(state: &AppState) -> Result<&Hooks, RequestError> {
    state.hooks.as_deref().ok_or(RequestError::Unavailable(
        "webhooks are not served by this instance",
    ))
}

/// The JSON object in the request body.
async fn object<In>(body: In) -> Result<serde_json::Map<String, serde_json::Value>, RequestError>
where
    In: http_body::Body + Send,
    In::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let read = http_body_util::Limited::new(body, MAX_BODY).collect();
    let bytes = tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| RequestError::BodyTimeout(BODY_TIMEOUT.as_secs()))?
        .map_err(|_| {
            bad(
                "bad_body",
                format!("the request body cannot be read or is larger than {MAX_BODY} bytes"),
            )
        })?
        .to_bytes();
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(bad(
            "bad_body",
            "the request body must be a JSON object, e.g. {\"callbackUrl\": \"https://...\"}"
                .into(),
        )),
    }
}

/// An optional string field.
fn text<'a>(
    m: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<&'a str>, RequestError> {
    match m.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad("bad_parameter", format!("{name} must be a string"))),
    }
}

/// An optional integer field in `1..=max`.
fn number(
    m: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    max: u64,
    code: &'static str,
) -> Result<Option<u64>, RequestError> {
    match m.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n| (1..=max).contains(n))
            .map(Some)
            .ok_or_else(|| {
                bad(
                    code,
                    format!("{name} must be a whole number from 1 to {max}"),
                )
            }),
    }
}

/// `content`: `inline` (default) or `none`.
fn content(m: &serde_json::Map<String, serde_json::Value>) -> Result<bool, RequestError> {
    match text(m, "content")? {
        None | Some("inline") => Ok(true),
        Some("none") => Ok(false),
        Some(_) => Err(bad("bad_content", "content must be inline or none".into())),
    }
}

/// `callbackUrl`, checked by `[webhook]` (form, allow-list, addresses after resolution).
async fn callback(
    hooks: &Hooks,
    m: &serde_json::Map<String, serde_json::Value>,
) -> Result<crate::deliver::Callback, RequestError> {
    let Some(raw) = text(m, "callbackUrl")? else {
        return Err(bad("bad_callback_url", "callbackUrl is required".into()));
    };
    let refused = |why: String| {
        tracing::info!(reason = %why, "callback URL refused");
        bad("bad_callback_url", format!("callbackUrl refused: {why}"))
    };
    if raw.len() > 8192 {
        return Err(refused("it is longer than 8192 bytes".into()));
    }
    let cb = hooks.policy().parse(raw).map_err(refused)?;
    hooks.policy().resolve(&cb).await.map_err(refused)?;
    Ok(cb)
}

/// `glob`, checked.
fn glob(
    m: &serde_json::Map<String, serde_json::Value>,
    required: bool,
) -> Result<Option<String>, RequestError> {
    match text(m, "glob")? {
        None | Some("") if required => {
            Err(bad("bad_glob", "glob is required, e.g. \"*.csv\"".into()))
        }
        None | Some("") => Ok(None),
        Some(g) => {
            crate::filter::PathGlob::new(g).map_err(|e| {
                bad(
                    "bad_glob",
                    format!("glob {g:?} is not a valid glob: {}", e.kind()),
                )
            })?;
            Ok(Some(g.to_string()))
        }
    }
}

fn created(location: &str, body: serde_json::Value) -> Response<Body> {
    let mut r = json(StatusCode::CREATED, body.to_string());
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// `POST /watches/NAME/subscriptions` (the webhook trigger's subscribe).
pub(super) async fn subscribe<B, In>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
    body: In,
) -> Response<Body>
where
    In: http_body::Body + Send,
    In::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match try_subscribe(state, folder, peer, secure, req, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_subscribe<B, In>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
    body: In,
) -> Result<Response<Body>, RequestError>
where
    In: http_body::Body + Send,
    In::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let hooks = hooks_of(state)?;
    let m = object(body).await?;
    let mode = match text(&m, "mode")? {
        None | Some("single") => Mode::Single,
        Some("batch") => Mode::Batch,
        Some(_) => return Err(bad("bad_mode", "mode must be single or batch".into())),
    };
    let max = number(
        &m,
        "maxFileCount",
        MAX_FILE_COUNT as u64,
        "bad_max_file_count",
    )?
    .unwrap_or(DEFAULT_FILE_COUNT as u64);
    let inline = content(&m)?;
    let glob = glob(&m, false)?;
    let callback = callback(hooks, &m).await?;
    let base = state.urls.base_url(peer, secure, req)?;
    let (id, view) = hooks
        .subscribe(
            folder,
            SubscribeRequest {
                callback,
                glob,
                mode,
                max_file_count: usize::try_from(max).unwrap_or(10),
                inline,
                base: base.clone(),
            },
        )
        .await
        .map_err(unavailable)?;
    let location = url::link(
        &base,
        &format!("/watches/{}/subscriptions/{id}", folder.name),
        &[],
    )
    .ok_or(RequestError::LocationTooLong)?;
    Ok(created(&location, view))
}

/// `GET /watches/NAME/subscriptions`.
pub(super) async fn list(state: &AppState, folder: &Folder) -> Response<Body> {
    let answer = async {
        let hooks = hooks_of(state)?;
        let value = hooks.list(folder, None).await.map_err(unavailable)?;
        Ok::<_, RequestError>(json(
            StatusCode::OK,
            serde_json::json!({ "value": value }).to_string(),
        ))
    };
    answer
        .await
        .unwrap_or_else(|e| e.into_response(state.retry_after))
}

/// `GET /watches/NAME/subscriptions/ID`.
pub(super) async fn get_subscription(
    state: &AppState,
    folder: &Folder,
    id: &str,
) -> Response<Body> {
    let answer = async {
        let hooks = hooks_of(state)?;
        let mut value = hooks.list(folder, Some(id)).await.map_err(unavailable)?;
        match value.pop() {
            Some(v) => Ok(json(StatusCode::OK, v.to_string())),
            None => Ok(super::error(
                StatusCode::NOT_FOUND,
                "subscription_not_found",
                "no such subscription in this folder",
            )),
        }
    };
    answer
        .await
        .unwrap_or_else(|e: RequestError| e.into_response(state.retry_after))
}

/// `DELETE /watches/NAME/subscriptions/ID` (unsubscribe): `200` also when it is gone.
pub(super) async fn unsubscribe(state: &AppState, folder: &Folder, id: &str) -> Response<Body> {
    let answer = async {
        let hooks = hooks_of(state)?;
        let existed = hooks.unsubscribe(folder, id).await.map_err(unavailable)?;
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "id": id, "unsubscribed": existed }).to_string(),
        ))
    };
    answer
        .await
        .unwrap_or_else(|e: RequestError| e.into_response(state.retry_after))
}

/// `POST /watches/NAME/waits` (the webhook wait action).
pub(super) async fn add_wait<B, In>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
    body: In,
) -> Response<Body>
where
    In: http_body::Body + Send,
    In::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let answer = async {
        let hooks = hooks_of(state)?;
        let m = object(body).await?;
        let glob = glob(&m, true)?.unwrap_or_default();
        let max = hooks.max_wait_s();
        let timeout_s =
            number(&m, "timeout", max, "bad_timeout")?.unwrap_or(DEFAULT_TIMEOUT_S.min(max));
        let inline = content(&m)?;
        let callback = callback(hooks, &m).await?;
        let base = state.urls.base_url(peer, secure, req)?;
        let (id, view) = hooks
            .add_wait(
                folder,
                WaitRequest {
                    callback,
                    glob,
                    timeout_s,
                    inline,
                    base: base.clone(),
                },
            )
            .await
            .map_err(unavailable)?;
        let location = url::link(&base, &format!("/watches/{}/waits/{id}", folder.name), &[])
            .ok_or(RequestError::LocationTooLong)?;
        Ok(created(&location, view))
    };
    answer
        .await
        .unwrap_or_else(|e: RequestError| e.into_response(state.retry_after))
}

/// `DELETE /watches/NAME/waits/ID`: `200` also when it is gone.
pub(super) async fn cancel_wait(state: &AppState, folder: &Folder, id: &str) -> Response<Body> {
    let answer = async {
        let hooks = hooks_of(state)?;
        let existed = hooks.cancel_wait(folder, id).await.map_err(unavailable)?;
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "id": id, "cancelled": existed }).to_string(),
        ))
    };
    answer
        .await
        .unwrap_or_else(|e: RequestError| e.into_response(state.retry_after))
}
