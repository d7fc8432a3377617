//! The bare hyper server of `benches/load.sh`: the ceiling of what HTTP costs here.
//!
//! Same runtime (tokio multi-thread), same connection builder (hyper-util `auto`, timer,
//! header timeout, `TCP_NODELAY`) and same build profile as the daemon, but every answer
//! is a fixed response built once at start-up:
//! - `/202...` → `202` with a fixed `Location` and `Retry-After: 15`, empty body;
//! - `/200/N...` → `200` with a fixed `Location` (the same URL), `Retry-After: 0` and an
//!   `N`-byte JSON-typed body (a slice of one buffer made at start-up, N ≤ 1 MiB).
//!
//! Usage: `bare serve 127.0.0.1:PORT`. Without `serve` (as `cargo bench` runs it) it
//! does nothing.

// A benchmark: failing to set up is a panic with a message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

const MAX_BODY: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("serve") {
        eprintln!("bare: a helper of benches/load.sh (usage: bare serve ADDR); nothing to do");
        return;
    }
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:18090".into());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(serve(addr));
}

async fn serve(addr: String) {
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let body = Bytes::from(vec![b'A'; MAX_BODY]);
    let loc_202 = HeaderValue::from_str(&format!(
        "http://{addr}/202?folder=x&triggerState=2026-11-25T16:47:00.123456789Z"
    ))
    .expect("location");
    let host = addr.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    builder.http2().timer(TokioTimer::new());
    eprintln!("bare: listening on {addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        let loc_202 = loc_202.clone();
        let host = host.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let r = answer(&req, &body, &loc_202, &host);
            async move { Ok::<_, Infallible>(r) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn answer<B>(
    req: &Request<B>,
    body: &Bytes,
    loc_202: &HeaderValue,
    host: &str,
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/200/") {
        let n: usize = rest
            .split('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
            .min(MAX_BODY);
        let mut r = Response::new(Full::new(body.slice(..n)));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r.headers_mut().insert(
            LOCATION,
            HeaderValue::from_str(&format!("http://{host}/200/{n}?triggerState=x"))
                .unwrap_or_else(|_| loc_202.clone()),
        );
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("0"));
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::ACCEPTED;
    r.headers_mut().insert(LOCATION, loc_202.clone());
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("15"));
    r
}
