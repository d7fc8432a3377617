//! `GET /trigger`: the polling exchange of PROTOCOL.md.
//!
//! Owns: the query of a poll (`triggerState` found and parsed, `consumer` checked, every
//! other parameter kept as sent), the three answers (`202` with a new first-call cursor,
//! `200` with the next file, `202` with the cursor unchanged) and their `Location` and
//! `Retry-After`; where a poll's lookup runs: on its async worker when the folder is on a
//! local file system and what it needs is in the kernel's caches
//! (`offer::try_next_after`), else on tokio's blocking pool, so a slow disk holds only the
//! polls that read from it.
//! Does not own: where a named consumer starts (`consumers`), the answer with
//! `content=none` (`read`, which also checks the
//! parameter), the first-call cursor's durability (`cursor`), finding the next file and
//! its body (`offer`), the base URL and `Location` encoding (`url`), the cursor's text
//! form (`stamp`), or the status of an error (`RequestError`, in `routes`).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::url::{self, UrlPolicy};
use super::{full, AppState, Body, RequestError};
use crate::folder::Folder;
use crate::offer::{self, Offer};
use crate::stamp::{Stamp, EXAMPLE};

/// The query parameter that carries the cursor.
const CURSOR: &str = "triggerState";

/// A poll's query: the raw pairs in order, and the cursor if given.
pub(super) struct Query<'a> {
    /// Every pair but `triggerState`, as sent.
    pub(super) pairs: Vec<&'a str>,
    /// `triggerState`, parsed.
    pub(super) cursor: Option<Stamp>,
}

/// Splits the query, finds `triggerState` (percent-decoded; `+` is taken literally, so an
/// offset like `+01:00` can be written as it is).
pub(super) fn parse_query(raw: &str) -> Result<Query<'_>, RequestError> {
    let mut pairs = Vec::new();
    let mut cursor = None;
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode_str(k).decode_utf8_lossy();
        if key != CURSOR {
            pairs.push(pair);
            continue;
        }
        if cursor.is_some() {
            return Err(RequestError::BadCursor(
                "triggerState is given more than once".into(),
            ));
        }
        let value = percent_decode_str(v).decode_utf8().map_err(|_| {
            RequestError::BadCursor(format!(
                "triggerState is not valid UTF-8; a valid value looks like {EXAMPLE}"
            ))
        })?;
        let stamp = Stamp::parse(&value).map_err(|e| RequestError::BadCursor(e.to_string()))?;
        cursor = Some(stamp);
    }
    Ok(Query { pairs, cursor })
}

/// What a poll decides from the request alone, before the index is asked.
pub(super) struct PollRequest<'a, B> {
    req: &'a Request<B>,
    base: String,
    query: Query<'a>,
    /// `consumer`, checked.
    consumer: Option<String>,
    /// The cursor is a consumer's stored position, not one the client sent.
    resumed: bool,
}

impl<'a, B> PollRequest<'a, B> {
    /// The query and the base URL, or why the request is refused.
    pub(super) fn read(
        urls: &UrlPolicy,
        peer: SocketAddr,
        secure: bool,
        req: &'a Request<B>,
    ) -> Result<Self, RequestError> {
        let query = parse_query(req.uri().query().unwrap_or(""))?;
        let params = super::actions::Params::of(req);
        let consumer = params.text(super::consumers::PARAM)?;
        if let Some(name) = consumer {
            super::consumers::check_name(name)?;
        }
        let consumer = consumer.map(str::to_string);
        let base = urls.base_url(peer, secure, req)?;
        Ok(PollRequest {
            req,
            base,
            query,
            consumer,
            resumed: false,
        })
    }

    /// The cursor the client sent (or the consumer's position it resumes from).
    pub(super) fn cursor(&self) -> Option<Stamp> {
        self.query.cursor
    }

    /// The consumer named by `consumer=`.
    pub(super) fn consumer(&self) -> Option<&str> {
        self.consumer.as_deref()
    }

    /// Goes on from a consumer's stored position, as if the client had sent it.
    pub(super) fn resume_at(&mut self, position: Stamp) {
        self.query.cursor = Some(position);
        self.resumed = true;
    }

    /// `Location` moving the cursor to `next`, every other parameter kept.
    pub(super) fn moved_to(&self, next: Stamp) -> Result<HeaderValue, RequestError> {
        url::with_param(
            &self.base,
            self.req,
            &self.query.pairs,
            CURSOR,
            &next.to_string(),
        )
    }

    /// `Location` for "nothing new": the cursor exactly as the client sent it (a resumed
    /// consumer's position, when the client sent none).
    pub(super) fn unchanged(&self) -> Result<HeaderValue, RequestError> {
        match (self.resumed, self.query.cursor) {
            (true, Some(position)) => self.moved_to(position),
            _ => url::same(&self.base, self.req),
        }
    }
}

/// Answers a poll; an error is a JSON answer with its status.
pub(super) async fn poll<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    let answer = match super::read::content_inline(req) {
        Ok(true) => try_poll(state, folder, peer, secure, req).await,
        Ok(false) => super::read::try_poll_without_content(state, folder, peer, secure, req).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_poll<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let mut poll = PollRequest::read(&state.urls, peer, secure, req)?;
    let cursor = match super::consumers::start(state, folder, &mut poll).await? {
        super::consumers::Start::From(cursor) => cursor,
        super::consumers::Start::Answer(r) => return Ok(r),
    };
    let unchanged = || poll.unchanged().map(|loc| accepted(loc, state.retry_after));
    if !folder.reader.maybe_after(cursor) {
        return unchanged();
    }
    let found = if folder.local {
        offer::try_next_after(&folder.reader, &folder.root, cursor, folder.max_content)
    } else {
        Ok(offer::Attempt::WouldWait)
    };
    let found = match found {
        Ok(offer::Attempt::Done(found)) => Ok(found),
        Ok(offer::Attempt::WouldWait) => {
            let reader = folder.reader.clone();
            let root = folder.root.clone();
            let max = folder.max_content;
            tokio::task::spawn_blocking(move || offer::next_after(&reader, &root, cursor, max))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "poll task failed");
                    RequestError::Unavailable("internal error")
                })?
        }
        Err(e) => Err(e),
    };
    match found {
        Ok(None) => unchanged(),
        Ok(Some(offer)) => {
            let loc = poll.moved_to(offer.stamp)?;
            let retry = if offer.more { 0 } else { state.retry_after };
            Ok(ok(offer, loc, retry))
        }
        Err(e) => {
            tracing::error!(error = %e, "index read failed");
            Err(RequestError::Unavailable(
                "the index cannot be read right now",
            ))
        }
    }
}

/// `202`: nothing to offer; follow `location` after `retry` seconds.
pub(super) fn accepted(location: HeaderValue, retry: u32) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(LOCATION, location);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry));
    r
}

/// `200` with one file.
fn ok(offer: Offer, location: HeaderValue, retry: u32) -> Response<Body> {
    let body = offer::body(offer);
    let len = body.size_hint().exact();
    let mut r = Response::new(body.boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(len) = len {
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    r.headers_mut().insert(LOCATION, location);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_keeps_other_parameters_and_finds_the_cursor() {
        let q = parse_query("folder=in%2Fx&triggerState=2026-11-25T00:00:00%2B01:00&n=1").unwrap();
        assert_eq!(q.pairs, vec!["folder=in%2Fx", "n=1"]);
        assert_eq!(
            q.cursor.unwrap().to_string(),
            "2026-11-24T23:00:00.000000000Z"
        );
    }

    #[test]
    fn a_literal_plus_offset_is_accepted() {
        let q = parse_query("triggerState=2026-11-25T00:00:00+01:00").unwrap();
        assert_eq!(
            q.cursor.unwrap().to_string(),
            "2026-11-24T23:00:00.000000000Z"
        );
    }

    #[test]
    fn a_raw_utf8_parameter_is_the_same_once_location_encoded_it() {
        // Found by fuzzing: `Location` percent-encodes `?fü=ü` (see `url`); the next poll
        // must see the same parameter.
        let req = Request::get("/trigger?f%C3%BC=\u{fc}").body(()).unwrap();
        let query = parse_query(req.uri().query().unwrap()).unwrap();
        let loc = url::with_param("http://h:1", &req, &query.pairs, CURSOR, "x").unwrap();
        assert_eq!(
            loc.to_str().unwrap(),
            "http://h:1/trigger?f%C3%BC=%C3%BC&triggerState=x"
        );
        let followed = parse_query("f%C3%BC=%C3%BC").unwrap();
        let decoded = |q: &Query<'_>| percent_decode_str(q.pairs[0]).collect::<Vec<u8>>();
        assert_eq!(decoded(&query), decoded(&followed));
    }

    #[test]
    fn a_repeated_or_bad_cursor_is_a_400() {
        for q in [
            "triggerState=2026-11-25T00:00:00Z&triggerState=2026-11-25T00:00:00Z",
            "triggerState=tomorrow",
            "triggerState=",
            "triggerState=%FF",
        ] {
            let e = parse_query(q).err().expect(q);
            assert_eq!(e.status().0, StatusCode::BAD_REQUEST, "{q}");
        }
    }
}
