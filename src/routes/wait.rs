//! `GET /watches/NAME/wait`: the wait-for-file polling action (contract operation 8), the
//! seed's asynchronous pattern: `202` + `Location` + `Retry-After` until a file whose
//! relative path matches `glob` is indexed after the wait began (`200` `found` with the
//! File), or the deadline passes (`200` `timedOut`).
//!
//! Owns: the action's query (`glob`, `timeout`, `content`, and the state it puts in
//! `Location`: `since`, `deadline`, and `scanned`, how far earlier calls walked the index
//! without a match), the bound on the work of one call ([`SCAN_BUDGET`] index entries),
//! and the two `200` bodies. All state is in `Location`, so a wait survives a restart.
//! Does not own: the durable first-call cursor (`cursor`), checking a file against the
//! disk and its File body (`offer`), or the status of an error (`RequestError`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};

use super::actions::{bad, Params};
use super::{full, json, url, AppState, Body, RequestError};
use crate::filter::PathGlob;
use crate::folder::Folder;
use crate::offer::{self, Content, Offer};
use crate::stamp::Stamp;

/// Index entries one call examines at most; a longer walk continues in the next call
/// (`scanned` in `Location`, `Retry-After: 0`).
const SCAN_BUDGET: usize = 20_000;
/// `timeout` when none is given (seconds).
pub(crate) const DEFAULT_TIMEOUT_S: u64 = 3600;
/// The parameters the daemon sets in `Location`.
pub(crate) const STATE: &[&str] = &["since", "deadline", "scanned"];
const NANOS: i64 = 1_000_000_000;

/// Answers one call of the wait action.
pub(super) async fn wait<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    match try_wait(state, folder, peer, secure, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_wait<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let params = Params::of(req);
    let pattern = std::str::from_utf8(params.required("glob")?)
        .map_err(|_| bad("glob", "glob is not UTF-8".into()))?;
    let glob = PathGlob::new(pattern).map_err(|e| {
        bad(
            "glob",
            format!("glob {pattern:?} is not a valid glob: {}", e.kind()),
        )
    })?;
    let max = state.actions.max_wait_s;
    let timeout = match params.text("timeout")? {
        None => DEFAULT_TIMEOUT_S.min(max),
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|t| (1..=max).contains(t))
            .ok_or_else(|| {
                bad(
                    "timeout",
                    format!("timeout must be a whole number of seconds from 1 to {max} (actions.max_wait_s)"),
                )
            })?,
    };
    let inline = match params.text("content")? {
        None | Some("inline") => true,
        Some("none") => false,
        Some(_) => return Err(bad("content", "content must be inline or none".into())),
    };
    let given_since = params.stamp("since")?;
    let deadline = params.stamp("deadline")?;
    let scanned = params.stamp("scanned")?;
    let base = state.urls.base_url(peer, secure, req)?;
    let since = match given_since {
        Some(s) => s,
        // A fresh durable cursor: every file indexed from now on comes after it, also
        // after a restart; nothing indexed yet can, so there is nothing to look at.
        None => state.first_cursor.now().await.map_err(|e| {
            tracing::error!(error = %e, "cannot record a cursor reservation");
            RequestError::Unavailable("the index cannot be written right now")
        })?,
    };
    let ahead = |secs: u64| {
        Stamp(
            Stamp::now()
                .0
                .saturating_add((secs as i64).saturating_mul(NANOS)),
        )
    };
    let deadline = match deadline {
        // Only the daemon writes it, but a hand-made one must not outlast the policy.
        Some(d) if d > ahead(max) => {
            return Err(bad(
                "deadline",
                format!("deadline is more than actions.max_wait_s ({max} s) ahead"),
            ))
        }
        Some(d) => d,
        None => ahead(timeout),
    };
    let from = since.max(scanned.unwrap_or(Stamp::MIN));
    let mut next_scanned = scanned;
    let mut complete = true;
    if given_since.is_some() && folder.reader.maybe_after(from) {
        let reader = folder.reader.clone();
        let root = folder.root.clone();
        let max_content = folder.max_content;
        let found = tokio::task::spawn_blocking(move || {
            offer::next_matching(&reader, &root, from, max_content, SCAN_BUDGET, |rel| {
                glob.matches(rel)
            })
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "wait task failed");
            RequestError::Unavailable("internal error")
        })?
        .map_err(|e| {
            tracing::error!(error = %e, "index read failed");
            RequestError::Unavailable("the index cannot be read right now")
        })?;
        if let Some(offer) = found.found {
            return found_answer(offer, inline, &base, folder).await;
        }
        complete = found.complete;
        if let Some(last) = found.last {
            next_scanned = Some(last.max(from));
        }
    }
    let now = Stamp::now();
    if complete && now >= deadline {
        let body = serde_json::json!({
            "status": "timedOut",
            "since": since.to_string(),
            "deadline": deadline.to_string(),
        });
        return Ok(json(StatusCode::OK, body.to_string()));
    }
    let mut set = vec![format!("since={since}")];
    if let Some(s) = next_scanned.filter(|s| *s > since) {
        set.push(format!("scanned={s}"));
    }
    let mut pairs = params.kept(STATE);
    pairs.extend(set.iter().map(String::as_str));
    let location = url::with_param(&base, req, &pairs, "deadline", &deadline.to_string())?;
    let retry = if complete {
        let left = deadline.0.saturating_sub(now.0);
        let left_s = u32::try_from(left.saturating_add(NANOS - 1) / NANOS).unwrap_or(u32::MAX);
        state.retry_after.min(left_s)
    } else {
        0
    };
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(LOCATION, location);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry));
    Ok(r)
}

/// `200 {"status":"found","file":File}`.
async fn found_answer(
    offer: Offer,
    inline: bool,
    base: &str,
    folder: &Folder,
) -> Result<Response<Body>, RequestError> {
    let file: Body = if inline {
        offer::body(offer).boxed()
    } else {
        // Properties only: the File body without content, plus where to get it.
        let link = super::read::content_link(base, &folder.name, offer.stamp, &offer.version);
        let props = Offer {
            content: Content::NotAsked,
            ..offer
        };
        offer::body_with_link(props, link.as_deref()).boxed()
    };
    let body = Wrapped {
        head: Some(Bytes::from_static(b"{\"status\":\"found\",\"file\":")),
        inner: file,
        tail: Some(Bytes::from_static(b"}")),
    };
    let len = body.size_hint().exact();
    let mut r = Response::new(body.boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(len) = len {
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(r)
}

/// A body between a fixed head and tail (the File body streams inside the JSON object).
struct Wrapped {
    head: Option<Bytes>,
    inner: Body,
    tail: Option<Bytes>,
}

impl http_body::Body for Wrapped {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(self.tail.take().map(|t| Ok(Frame::data(t)))),
            other => other,
        }
    }

    fn size_hint(&self) -> SizeHint {
        let fixed =
            self.head.as_ref().map_or(0, Bytes::len) + self.tail.as_ref().map_or(0, Bytes::len);
        let inner = self.inner.size_hint();
        match inner.exact() {
            Some(n) => SizeHint::with_exact(n + fixed as u64),
            None => {
                let mut h = SizeHint::new();
                h.set_lower(inner.lower() + fixed as u64);
                h
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.tail.is_none() && self.inner.is_end_stream()
    }
}
