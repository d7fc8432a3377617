//! The HTTP surface: `GET /trigger` (the polling trigger) and `GET /healthz`.
//!
//! Owns: serving a pre-bound listener with hyper (timer set, graceful drain), routing,
//! the polling exchange of PROTOCOL.md (`202`/`200`, `Location`, `Retry-After`), query
//! handling, and mapping every error to a JSON answer with the right status.
//! Does not own: finding the next file or building its body (`offer`), the cursor's text
//! form (`stamp`), or binding the socket (`lib::run`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::header::{
    HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, RETRY_AFTER,
};
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use percent_encoding::{percent_decode_str, utf8_percent_encode, CONTROLS};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::auth::{Auth, Verdict};
pub use crate::swap::Swap;

use crate::health::Health;
use crate::index::{IndexReader, WriterHandle};
use crate::offer::{self, Offer};
use crate::stamp::{Stamp, StampClock, EXAMPLE};

/// The body type of every answer.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How long in-flight requests may take to finish at shutdown (well under systemd's
/// default `TimeoutStopSec` of 90 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Request targets longer than this get `414`.
const MAX_URI: usize = 4096;
/// `Location` must stay under this many bytes (Logic Apps' limit is about 2 KB).
const MAX_LOCATION: usize = 2048;
/// How far ahead a first-call cursor reservation reaches, so first calls write at most
/// about once per this interval.
const RESERVATION_LEASE: i64 = 1_000_000_000;
/// The query parameter that carries the cursor.
const CURSOR: &str = "triggerState";

/// What the handlers need.
#[derive(Debug)]
pub struct AppState {
    /// Read side of the index.
    pub reader: IndexReader,
    /// Write side, for cursor reservations.
    pub writer: WriterHandle,
    /// The stamp clock.
    pub clock: Arc<StampClock>,
    /// Status for `/healthz`.
    pub health: Arc<Health>,
    /// The watched directory, absolute.
    pub root: PathBuf,
    /// `server.public_url`
    pub public_url: Option<String>,
    /// `trigger.retry_after_s`
    pub retry_after: u32,
    /// `trigger.max_content_bytes`
    pub max_content: u64,
    /// `server.trusted_proxies`
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The loaded `[auth]` methods (`None`: no authentication); replaced on SIGHUP.
    pub auth: Swap<Option<Auth>>,
}

/// Connection limits (`[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time to send a request head, and the keep-alive idle time.
    pub header_read_timeout: Duration,
    /// Largest request head in bytes (`431` beyond).
    pub max_header_bytes: usize,
}

/// The TLS configuration, if HTTPS is served; replaced on SIGHUP.
pub type TlsConfig = Swap<Option<Arc<rustls::ServerConfig>>>;

/// Serves `listener` (HTTP/1.1, over TLS when `tls` holds a configuration) until `token`
/// is cancelled, then drains in-flight requests for at most [`DRAIN_TIMEOUT`]. Accept
/// errors and failed handshakes are logged and survived.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Arc<TlsConfig>,
    limits: Limits,
    token: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192) * 2)
        .max_header_size(limits.max_header_bytes);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            _ = token.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.get();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let secure = tls.is_some();
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, peer, secure, req).await) }
            });
            let result = match tls.as_ref() {
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let conn = builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("connections drained"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("gave up waiting for open connections"),
    }
}

/// Routes one request: limits first, then authentication (every route but `/healthz`),
/// then the route.
pub async fn handle<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: Request<B>,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = route(state, peer, secure, &req).await;
    tracing::debug!(%peer, %method, %path, status = resp.status().as_u16(), "request");
    resp
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
    if path != "/healthz" {
        if let Some(denied) = authenticate(state, peer, req).await {
            return denied;
        }
    }
    match (method, path) {
        (&Method::GET, "/trigger") | (&Method::GET, "/healthz") if has_body => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_not_accepted",
            "a GET here takes no request body",
        ),
        (&Method::GET, "/trigger") => poll(state, peer, secure, req).await,
        (&Method::GET, "/healthz") => healthz(state),
        (_, "/trigger") | (_, "/healthz") => {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                &format!("{method} is not allowed here; use GET"),
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET"));
            r
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no such endpoint: {path}; the trigger is GET /trigger"),
        ),
    }
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
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            RequestError::BadCursor(_) => (StatusCode::BAD_REQUEST, "bad_trigger_state"),
            RequestError::BadHost => (StatusCode::BAD_REQUEST, "bad_host"),
            RequestError::BadQuery => (StatusCode::BAD_REQUEST, "bad_query"),
            RequestError::LocationTooLong => (StatusCode::URI_TOO_LONG, "location_too_long"),
            RequestError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

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

fn healthz(state: &AppState) -> Response<Body> {
    let stats = state.reader.stats();
    let failing = stats.failing();
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
        "filesIndexed": stats.files(),
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

/// A poll's query: the raw pairs in order, and the cursor if given.
struct Query<'a> {
    pairs: Vec<&'a str>,
    cursor: Option<Stamp>,
}

/// Splits the query, finds `triggerState` (percent-decoded; `+` is taken literally, so an
/// offset like `+01:00` can be written as it is).
fn parse_query(raw: &str) -> Result<Query<'_>, RequestError> {
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

/// The first value of a forwarded header, trimmed.
fn forwarded<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    let v = req.headers().get(name)?.to_str().ok()?;
    let first = v.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// Whether every `%` in `s` starts an escape of two hex digits.
fn escapes_well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// The absolute base URL the client sees (scheme, host, port, optional prefix):
/// `server.public_url`; else `X-Forwarded-*` from a trusted proxy; else `Host`.
fn base_url<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Result<String, RequestError> {
    if let Some(url) = &state.public_url {
        return Ok(url.clone());
    }
    let peer_ip = peer.ip().to_canonical();
    let trusted = state.trusted_proxies.iter().any(|n| n.contains(&peer_ip));
    let mut scheme = if secure { "https" } else { "http" };
    let mut host = match req.headers().get(HOST) {
        Some(h) => h.to_str().ok().map(str::to_string),
        None => req.uri().authority().map(|a| a.to_string()),
    };
    let mut prefix = String::new();
    if trusted {
        match forwarded(req, "x-forwarded-proto")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("https") => scheme = "https",
            Some("http") => scheme = "http",
            _ => {}
        }
        if let Some(h) = forwarded(req, "x-forwarded-host") {
            host = Some(h.to_string());
        }
        if let Some(p) = forwarded(req, "x-forwarded-prefix") {
            let safe = p.starts_with('/')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b))
                && escapes_well_formed(p);
            if safe {
                prefix = p.trim_end_matches('/').to_string();
            }
        }
    }
    host.filter(|h| {
        !h.is_empty() && !h.contains('@') && h.parse::<hyper::http::uri::Authority>().is_ok()
    })
    .map(|h| format!("{scheme}://{h}{prefix}"))
    .ok_or(RequestError::BadHost)
}

/// The `Location` for `cursor`: the same trigger URL, every other parameter kept.
fn location<B>(
    base: &str,
    req: &Request<B>,
    pairs: &[&str],
    cursor: Stamp,
) -> Result<HeaderValue, RequestError> {
    let mut url = format!("{base}{}?", req.uri().path());
    for p in pairs {
        url.push_str(p);
        url.push('&');
    }
    url.push_str(CURSOR);
    url.push('=');
    url.push_str(&cursor.to_string());
    header_url(url)
}

/// A URL as a `Location` value, within the length limit. Bytes outside ASCII (hyper lets
/// UTF-8 through in a query) are percent-encoded, as an IRI maps to a URI: a raw one
/// would make `Location` an invalid URI that clients decode as Latin-1.
fn header_url(url: String) -> Result<HeaderValue, RequestError> {
    let url: std::borrow::Cow<'_, str> = utf8_percent_encode(&url, CONTROLS).into();
    if url.len() > MAX_LOCATION {
        return Err(RequestError::LocationTooLong);
    }
    HeaderValue::from_str(&url).map_err(|_| RequestError::BadQuery)
}

async fn poll<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Response<Body> {
    match try_poll(state, peer, secure, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_poll<B>(
    state: &AppState,
    peer: SocketAddr,
    secure: bool,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let query = parse_query(req.uri().query().unwrap_or(""))?;
    let base = base_url(state, peer, secure, req)?;
    let Some(cursor) = query.cursor else {
        let now = state.clock.cursor_now();
        if now > state.clock.reserved() {
            let upto = Stamp(now.0.saturating_add(RESERVATION_LEASE));
            if let Err(e) = state.writer.reserve(upto).await {
                tracing::error!(error = %e, "cannot record a cursor reservation");
                return Err(RequestError::Unavailable(
                    "the index cannot be written right now",
                ));
            }
        }
        return location(&base, req, &query.pairs, now).map(|loc| accepted(loc, state.retry_after));
    };
    // Nothing new keeps the cursor exactly as the client sent it.
    let unchanged = || {
        let url = format!(
            "{base}{}?{}",
            req.uri().path(),
            req.uri().query().unwrap_or("")
        );
        header_url(url).map(|loc| accepted(loc, state.retry_after))
    };
    if !state.reader.maybe_after(cursor) {
        return unchanged();
    }
    let reader = state.reader.clone();
    let root = state.root.clone();
    let max = state.max_content;
    let found =
        tokio::task::spawn_blocking(move || offer::next_after(&reader, &root, cursor, max)).await;
    match found {
        Ok(Ok(None)) => unchanged(),
        Ok(Ok(Some(offer))) => {
            let loc = location(&base, req, &query.pairs, offer.stamp)?;
            let retry = if offer.more { 0 } else { state.retry_after };
            Ok(ok(offer, loc, retry))
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "index read failed");
            Err(RequestError::Unavailable(
                "the index cannot be read right now",
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "poll task failed");
            Err(RequestError::Unavailable("internal error"))
        }
    }
}

fn retry_after(n: u32) -> HeaderValue {
    HeaderValue::from(n)
}

fn accepted(location: HeaderValue, retry: u32) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(LOCATION, location);
    r.headers_mut().insert(RETRY_AFTER, retry_after(retry));
    r
}

fn ok(offer: Offer, location: HeaderValue, retry: u32) -> Response<Body> {
    let body: Body = match offer::body(offer) {
        offer::Body::Full(bytes) => full(bytes),
        offer::Body::Stream {
            head,
            file,
            size,
            tail,
            len,
        } => {
            let (tx, rx) = mpsc::channel(4);
            tokio::task::spawn_blocking(move || offer::stream_into(head, file, size, tail, tx));
            ChannelBody { rx, left: len }.boxed()
        }
    };
    let len = body.size_hint().exact();
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(len) = len {
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    r.headers_mut().insert(LOCATION, location);
    r.headers_mut().insert(RETRY_AFTER, retry_after(retry));
    r
}

/// A body fed by a blocking reader through a channel, with an exact length.
struct ChannelBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    left: u64,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.left = self.left.saturating_sub(bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) if self.left > 0 => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file ended before its indexed size",
            )))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}

/// Entry points for the fuzz targets in `tests/fuzz` (see README "Fuzzing"); not an API.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// The private `parse_query`: the pairs kept for `Location` and the cursor, or the
    /// status of the refusal.
    pub fn parse_query(raw: &str) -> Result<(Vec<&str>, Option<Stamp>), StatusCode> {
        super::parse_query(raw)
            .map(|q| (q.pairs, q.cursor))
            .map_err(|e| e.status().0)
    }

    /// What a `GET /trigger` decides from the request alone, as `try_poll` does it before
    /// the index is asked.
    #[derive(Debug)]
    pub struct Decision {
        /// The cursor the client sent.
        pub cursor: Option<Stamp>,
        /// `Location` moving the cursor to the `next` stamp given (a first-call cursor,
        /// or a found file's stamp), or the status when it cannot be built.
        pub moved: Result<HeaderValue, StatusCode>,
        /// `Location` keeping the cursor as sent ("nothing new"), or the status.
        pub unchanged: Result<HeaderValue, StatusCode>,
    }

    /// The query, the base URL and both `Location`s of a poll; `Err` is the status the
    /// request would get before the index is asked.
    pub fn decide<B>(
        state: &AppState,
        peer: SocketAddr,
        secure: bool,
        req: &Request<B>,
        next: Stamp,
    ) -> Result<Decision, StatusCode> {
        let status = |e: RequestError| e.status().0;
        let query = super::parse_query(req.uri().query().unwrap_or("")).map_err(status)?;
        let base = base_url(state, peer, secure, req).map_err(status)?;
        let unchanged = format!(
            "{base}{}?{}",
            req.uri().path(),
            req.uri().query().unwrap_or("")
        );
        Ok(Decision {
            cursor: query.cursor,
            moved: location(&base, req, &query.pairs, next).map_err(status),
            unchanged: header_url(unchanged).map_err(status),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
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
        let state = AppState {
            reader: index.reader(),
            writer,
            clock: index.clock(),
            health: Arc::new(Health::default()),
            root: dir.path().to_path_buf(),
            public_url: None,
            retry_after: 15,
            max_content: 1,
            trusted_proxies: Vec::new(),
            auth: Swap::new(None),
        };
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
    fn a_forwarded_prefix_needs_well_formed_escapes() {
        assert!(escapes_well_formed("/api/%C3%BC/x"));
        assert!(escapes_well_formed("/plain"));
        for bad in ["/%zz", "/a%", "/a%4", "/%4g/"] {
            assert!(!escapes_well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn location_percent_encodes_a_raw_utf8_query() {
        // Found by fuzzing (tests/fuzz, target `request`): hyper passes `?folder=ü` as raw
        // UTF-8, and `Location` echoed it raw, which is not a valid URI.
        let loc = header_url("http://h:1/trigger?f%C3%BC=\u{fc}&triggerState=x".into()).unwrap();
        assert_eq!(
            loc.to_str().unwrap(),
            "http://h:1/trigger?f%C3%BC=%C3%BC&triggerState=x"
        );
        let q = parse_query("f%C3%BC=\u{fc}").unwrap();
        let followed = parse_query("f%C3%BC=%C3%BC").unwrap();
        let decoded = |q: &Query<'_>| percent_decode_str(q.pairs[0]).collect::<Vec<u8>>();
        assert_eq!(decoded(&q), decoded(&followed));
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
