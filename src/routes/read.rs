//! A folder's batch trigger and read actions: `GET /watches/NAME/batch` (OnNewFiles),
//! `/files` (ListFiles), `/properties` (GetFileProperties), `/content` (GetFileContent),
//! and the single trigger's answer with `content=none` (File plus `contentLink`).
//!
//! Owns: their query parameters (`maxFileCount`, `content`, `after`, `top`, `path`,
//! `version`: each checked, a bad one a `400` naming it), finding the indexed version of
//! a `path` as the File body writes it, the links in bodies (`contentLink`, `nextLink`),
//! and GetFileContent's HTTP: `ETag`, `If-None-Match` (`304`), one `Range` (`206`,
//! `416`), streaming the indexed version's bytes.
//! Does not own: the cursor in `triggerState` and `Location` (`trigger`), what is live
//! and how bodies are built and streamed (`offer`), the base URL (`url`), or the status of
//! an error (`RequestError`, in `routes`).

use std::net::SocketAddr;

use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    IF_RANGE, LOCATION, RANGE, RETRY_AFTER,
};
use hyper::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::trigger::{accepted, PollRequest};
use super::url;
use super::{json, AppState, Body, RequestError};
use crate::folder::Folder;
use crate::index::{Entry, IndexReader};
use crate::offer::{self, BatchLimits, OnDisk};
use crate::stamp::{Stamp, EXAMPLE};

/// `maxFileCount`: its range and default (the File System connector's bounds).
pub(crate) const MAX_FILE_COUNT: usize = 100;
pub(crate) const DEFAULT_FILE_COUNT: usize = 10;
/// `top`: its range and default.
pub(crate) const MAX_TOP: usize = 1000;
pub(crate) const DEFAULT_TOP: usize = 100;

/// The decoded value of query parameter `name` (`+` taken literally, as for
/// `triggerState`); a `400` naming it when given twice or not UTF-8.
fn param(req_query: &str, name: &str) -> Result<Option<String>, RequestError> {
    let mut found = None;
    for pair in req_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode_str(k).decode_utf8_lossy() != name {
            continue;
        }
        if found.is_some() {
            return Err(RequestError::bad_parameter(format!(
                "{name} is given more than once"
            )));
        }
        let value = percent_decode_str(v).decode_utf8().map_err(|_| {
            RequestError::bad_parameter(format!("{name} is not valid UTF-8 once decoded"))
        })?;
        found = Some(value.into_owned());
    }
    Ok(found)
}

fn query<B>(req: &Request<B>) -> &str {
    req.uri().query().unwrap_or("")
}

/// An integer parameter in `1..=max`, `default` when absent.
fn count(raw: &str, name: &str, max: usize, default: usize) -> Result<usize, RequestError> {
    match param(raw, name)? {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                RequestError::bad_parameter(format!(
                    "{name} must be an integer from 1 to {max}, not {:?}",
                    v.chars().take(40).collect::<String>()
                ))
            }),
    }
}

/// A stamp parameter (`after`, `version`).
fn stamp(raw: &str, name: &str) -> Result<Option<Stamp>, RequestError> {
    param(raw, name)?
        .map(|v| {
            Stamp::parse(&v).map_err(|e| {
                RequestError::bad_parameter(format!(
                    "{name} must be an RFC 3339 timestamp like {EXAMPLE}: {e}"
                ))
            })
        })
        .transpose()
}

/// `content`: `inline` (the default) or `none`.
pub(super) fn content_inline<B>(req: &Request<B>) -> Result<bool, RequestError> {
    match param(query(req), "content")?.as_deref() {
        None | Some("inline") => Ok(true),
        Some("none") => Ok(false),
        Some(other) => Err(RequestError::bad_parameter(format!(
            "content must be inline or none, not {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

/// A `200` with `body` (its exact length as `Content-Length`), and more headers.
fn ok_with(body: offer::Body, content_type: &'static str) -> Response<Body> {
    let len = body.size_hint().exact();
    let mut r = Response::new(body.boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(len) = len {
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

/// A failed read of the index (or its blocking task), logged: `503`, the client retries.
fn read_failed<E: std::fmt::Display>(e: E) -> RequestError {
    tracing::error!(error = %e, "index read failed");
    RequestError::Unavailable("the index cannot be read right now")
}

/// Builds a `contentLink`: GetFileContent of this folder for one path and version.
#[derive(Clone)]
struct Links {
    base: String,
    folder: String,
}

impl Links {
    fn content(&self, stamp: Stamp, v: &crate::index::FileVersion) -> Option<String> {
        content_link(&self.base, &self.folder, stamp, v)
    }
}

/// `contentLink`: the absolute URL of GetFileContent for this version (`None`, logged, when
/// it would be too long for a `Location`).
pub(crate) fn content_link(
    base: &str,
    folder: &str,
    stamp: Stamp,
    v: &crate::index::FileVersion,
) -> Option<String> {
    let (path, _) = offer::path_text(&v.rel);
    let link = url::link(
        base,
        &format!("/watches/{folder}/content"),
        &[("path", &path), ("version", &stamp.to_string())],
    );
    if link.is_none() {
        tracing::warn!(path, "contentLink left out: it would be too long");
    }
    link
}

/// One walk of the index for a trigger with `content=none` or a batch, off the workers.
async fn walk(
    state: &AppState,
    folder: &Folder,
    links: Links,
    cursor: Stamp,
    max_files: usize,
    inline: bool,
) -> Result<offer::Batch, RequestError> {
    let reader = folder.reader.clone();
    let root = folder.root.clone();
    let limits = BatchLimits {
        max_files,
        budget: state.batch_max_bytes,
        max_content: folder.max_content,
        inline,
    };
    tokio::task::spawn_blocking(move || {
        offer::batch_after(&reader, &root, cursor, limits, |s, v| {
            (!inline).then(|| links.content(s, v)).flatten()
        })
    })
    .await
    .map_err(read_failed)?
    .map_err(read_failed)
}

/// The single trigger with `content=none`: the next File without content, with its
/// `contentLink`; otherwise the same exchange as with content.
pub(super) async fn try_poll_without_content<B>(
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
    let links = Links {
        base: state.urls.base_url(peer, secure, req)?,
        folder: folder.name.clone(),
    };
    let batch = walk(state, folder, links, cursor, 1, false).await?;
    let Some((offer, link)) = batch.offers.into_iter().next() else {
        return unchanged();
    };
    let loc = poll.moved_to(offer.stamp)?;
    let retry = if batch.more { 0 } else { state.retry_after };
    let mut r = ok_with(
        offer::body_with_link(offer, link.as_deref()),
        "application/json",
    );
    r.headers_mut().insert(LOCATION, loc);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry));
    Ok(r)
}

/// `GET /watches/NAME/batch` (OnNewFiles); an error is a JSON answer with its status.
pub(super) async fn batch<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    match try_batch(state, folder, peer, secure, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_batch<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let max_files = count(
        query(req),
        "maxFileCount",
        MAX_FILE_COUNT,
        DEFAULT_FILE_COUNT,
    )?;
    let inline = content_inline(req)?;
    let mut poll = PollRequest::read(&state.urls, peer, secure, req)?;
    let cursor = match super::consumers::start(state, folder, &mut poll).await? {
        super::consumers::Start::From(cursor) => cursor,
        super::consumers::Start::Answer(r) => return Ok(r),
    };
    let unchanged = || poll.unchanged().map(|loc| accepted(loc, state.retry_after));
    if !folder.reader.maybe_after(cursor) {
        return unchanged();
    }
    let links = Links {
        base: state.urls.base_url(peer, secure, req)?,
        folder: folder.name.clone(),
    };
    let batch = walk(state, folder, links, cursor, max_files, inline).await?;
    let Some(last) = batch.offers.last().map(|(o, _)| o.stamp) else {
        return unchanged();
    };
    let loc = poll.moved_to(last)?;
    let retry = if batch.more { 0 } else { state.retry_after };
    let mut r = ok_with(batch.into_body(), "application/json");
    r.headers_mut().insert(LOCATION, loc);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry));
    Ok(r)
}

/// `GET /watches/NAME/files` (ListFiles).
pub(super) async fn files<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    match try_files(state, folder, peer, secure, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_files<B>(
    state: &AppState,
    folder: &Folder,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let raw = query(req);
    let after = stamp(raw, "after")?.unwrap_or(Stamp::MIN);
    let top = count(raw, "top", MAX_TOP, DEFAULT_TOP)?;
    let base = state.urls.base_url(peer, secure, req)?;
    let reader = folder.reader.clone();
    let root = folder.root.clone();
    let page = tokio::task::spawn_blocking(move || offer::list_after(&reader, &root, after, top))
        .await
        .map_err(read_failed)?
        .map_err(read_failed)?;
    let mut body = serde_json::json!({ "value": page.items });
    if let Some(next) = page.next {
        let top = top.to_string();
        let next = next.to_string();
        let link = url::link(&base, req.uri().path(), &[("after", &next), ("top", &top)])
            .ok_or(RequestError::LocationTooLong)?;
        body["nextLink"] = serde_json::Value::String(link);
    }
    Ok(json(StatusCode::OK, body.to_string()))
}

/// The version indexed at the `path` parameter (as the File body writes it: a name that
/// is not UTF-8 percent-escaped), as found in one snapshot. A UTF-8 path spelled exactly
/// so wins over the escaped reading of the same text.
fn lookup(reader: &IndexReader, path: &str) -> Result<Option<Entry>, RequestError> {
    let snapshot = reader.snapshot().map_err(read_failed)?;
    if let Some(e) = snapshot.lookup(path.as_bytes()).map_err(read_failed)? {
        return Ok(Some(e));
    }
    match offer::path_from_text(path) {
        Some(bytes) => snapshot.lookup(&bytes).map_err(read_failed),
        None => Ok(None),
    }
}

/// The required `path` parameter.
fn path_param(raw: &str) -> Result<String, RequestError> {
    param(raw, "path")?
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            RequestError::bad_parameter(
                "path is required: the file's relative path as the File body gives it".into(),
            )
        })
}

fn not_found(path: &str, why: &str) -> RequestError {
    RequestError::FileNotFound(format!("{path:?} {why}"))
}

/// `GET /watches/NAME/properties` (GetFileProperties).
pub(super) async fn properties<B>(
    state: &AppState,
    folder: &Folder,
    req: &Request<B>,
) -> Response<Body> {
    match try_properties(folder, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_properties<B>(
    folder: &Folder,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let path = path_param(query(req))?;
    let reader = folder.reader.clone();
    let root = folder.root.clone();
    tokio::task::spawn_blocking(move || {
        let entry = lookup(&reader, &path)?
            .ok_or_else(|| not_found(&path, "is not indexed in this folder"))?;
        match offer::open_version(&root, &entry.version) {
            OnDisk::Same(_) | OnDisk::Unreadable(_) => Ok(json(
                StatusCode::OK,
                offer::properties(entry.stamp, &entry.version, entry.still_open).to_string(),
            )),
            OnDisk::Gone => Err(not_found(&path, "is gone from the disk")),
            OnDisk::Changed => Err(not_found(
                &path,
                "changed on disk since it was indexed; its new version is indexed once complete",
            )),
        }
    })
    .await
    .map_err(read_failed)?
}

/// What one `Range` header asks of a file of a given size.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No usable single range: the whole file (`200`).
    Whole,
    /// `start`, `len` (`206`).
    Part(u64, u64),
    /// `416`.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 14.2): one `bytes=a-b`, `a-` or `-n`. Anything else
/// (another unit, several ranges, a malformed one) is ignored, which serves the whole.
fn ranged(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            None => Ranged::Whole,
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if size == 0 => Ranged::Unsatisfiable,
            Some(n) => {
                let n = n.min(size);
                Ranged::Part(size - n, n)
            }
        },
        (a, b) => {
            let Some(start) = num(a) else {
                return Ranged::Whole;
            };
            let end = if b.is_empty() {
                None
            } else {
                match num(b) {
                    Some(e) if e >= start => Some(e),
                    _ => return Ranged::Whole,
                }
            };
            if start >= size {
                return Ranged::Unsatisfiable;
            }
            let last = end.map_or(size - 1, |e| e.min(size - 1));
            Ranged::Part(start, last - start + 1)
        }
    }
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, `*` matches).
fn none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// `GET /watches/NAME/content` (GetFileContent).
pub(super) async fn content<B>(
    state: &AppState,
    folder: &Folder,
    req: &Request<B>,
) -> Response<Body> {
    match try_content(folder, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_content<B>(folder: &Folder, req: &Request<B>) -> Result<Response<Body>, RequestError> {
    let raw = query(req);
    let path = path_param(raw)?;
    let version = stamp(raw, "version")?;
    let reader = folder.reader.clone();
    let root = folder.root.clone();
    let (entry, file) = tokio::task::spawn_blocking(move || {
        let entry = lookup(&reader, &path)?
            .ok_or_else(|| not_found(&path, "is not indexed in this folder"))?;
        if let Some(want) = version {
            if want != entry.stamp {
                return Err(RequestError::version_changed(format!(
                    "{path:?} is indexed as version {}, not {want}",
                    entry.stamp
                )));
            }
        }
        match offer::open_version(&root, &entry.version) {
            OnDisk::Same(file) => Ok((entry, file)),
            OnDisk::Gone => Err(not_found(&path, "is gone from the disk")),
            OnDisk::Changed => Err(RequestError::version_changed(format!(
                "{path:?} changed on disk since it was indexed as version {}",
                entry.stamp
            ))),
            OnDisk::Unreadable(e) => Err(RequestError::FileUnreadable(format!(
                "{path:?} cannot be read by the daemon: {e}"
            ))),
        }
    })
    .await
    .map_err(read_failed)??;
    let size = entry.version.size;
    let etag = format!("\"{}\"", entry.stamp);
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| RequestError::BadQuery)?;
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if header(IF_NONE_MATCH).is_some_and(|h| none_match(h, &etag)) {
        let mut r = Response::new(super::full(bytes::Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r.headers_mut().insert(ETAG, etag_value);
        return Ok(r);
    }
    // A Range applies only to the version the client names in If-Range, if it names one.
    let range = match header(IF_RANGE) {
        Some(v) if v.trim() != etag => Ranged::Whole,
        _ => ranged(header(RANGE), size),
    };
    let content_type = offer::content_type(&entry.version);
    let mut r = match range {
        Ranged::Whole => ok_with(offer::raw_body(file, 0, size), content_type),
        Ranged::Part(start, len) => {
            let mut r = ok_with(offer::raw_body(file, start, len), content_type);
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            let cr = format!("bytes {start}-{}/{size}", start + len - 1);
            if let Ok(v) = HeaderValue::from_str(&cr) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            r
        }
        Ranged::Unsatisfiable => {
            let mut r = super::error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                &format!("the file has {size} bytes; the Range asks for none of them"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            r
        }
    };
    r.headers_mut().insert(ETAG, etag_value);
    r.headers_mut()
        .insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        use Ranged::*;
        let r = |h: &str, size| ranged(Some(h), size);
        assert_eq!(ranged(None, 10), Whole);
        assert_eq!(r("bytes=0-0", 10), Part(0, 1));
        assert_eq!(r("bytes=2-5", 10), Part(2, 4));
        assert_eq!(r("bytes=2-", 10), Part(2, 8));
        assert_eq!(r("bytes=5-100", 10), Part(5, 5));
        assert_eq!(r("bytes=-1", 10), Part(9, 1));
        assert_eq!(r("bytes=-100", 10), Part(0, 10));
        assert_eq!(r("bytes=10-", 10), Unsatisfiable);
        assert_eq!(r("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
        assert_eq!(r("bytes=-5", 0), Unsatisfiable);
        for ignored in [
            "bytes=5-2",
            "bytes=a-b",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-",
            "bytes=+1-2",
        ] {
            assert_eq!(r(ignored, 10), Whole, "{ignored}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_a_star() {
        let etag = "\"2026-11-25T16:47:00.123456789Z\"";
        assert!(none_match(etag, etag));
        assert!(none_match(&format!("\"x\", W/{etag}"), etag));
        assert!(none_match("*", etag));
        assert!(!none_match("\"x\"", etag));
    }

    #[test]
    fn parameters_are_decoded_and_checked() {
        assert_eq!(
            param("a=1&path=x%2Fy+z", "path").unwrap().as_deref(),
            Some("x/y+z")
        );
        assert!(param("path=a&path=b", "path").is_err());
        assert!(param("path=%FF", "path").is_err());
        assert_eq!(count("", "top", 1000, 100).unwrap(), 100);
        assert_eq!(count("top=1000", "top", 1000, 100).unwrap(), 1000);
        for bad in ["top=0", "top=1001", "top=x", "top=", "top=-1"] {
            let e = count(bad, "top", 1000, 100).unwrap_err();
            assert!(e.to_string().starts_with("top "), "{bad}: {e}");
        }
    }
}
