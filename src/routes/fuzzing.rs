//! Entry points for the fuzz targets in `tests/fuzz` (see README "Fuzzing"); not an API.
//! Compiled only under `--cfg fuzzing`, which cargo-fuzz sets. Each calls the code that
//! serves a request; none re-derives what it decides.

use std::net::SocketAddr;

use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};

use super::trigger::{parse_query as parse, PollRequest};
use super::{AppState, RequestError};
use crate::stamp::Stamp;

/// The query of a poll: the pairs kept for `Location` and the cursor, or the status of
/// the refusal.
pub fn parse_query(raw: &str) -> Result<(Vec<&str>, Option<Stamp>), StatusCode> {
    parse(raw)
        .map(|q| (q.pairs, q.cursor))
        .map_err(|e| e.status().0)
}

/// What a `GET /trigger` decides from the request alone, before the index is asked.
#[derive(Debug)]
pub struct Decision {
    /// The cursor the client sent.
    pub cursor: Option<Stamp>,
    /// `Location` moving the cursor to the `next` stamp given (a first-call cursor, or a
    /// found file's stamp), or the status when it cannot be built.
    pub moved: Result<HeaderValue, StatusCode>,
    /// `Location` keeping the cursor as sent ("nothing new"), or the status.
    pub unchanged: Result<HeaderValue, StatusCode>,
}

/// The query, the base URL and both `Location`s of a poll; `Err` is the status the request
/// would get before the index is asked.
pub fn decide<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
    next: Stamp,
) -> Result<Decision, StatusCode> {
    let status = |e: RequestError| e.status().0;
    let poll = PollRequest::read(&state.urls, peer, secure, req).map_err(status)?;
    Ok(Decision {
        cursor: poll.cursor(),
        moved: poll.moved_to(next).map_err(status),
        unchanged: poll.unchanged().map_err(status),
    })
}
