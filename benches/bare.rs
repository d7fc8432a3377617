//! The bare hyper server of `benches/load.sh`: the ceiling of what HTTP costs here.
//!
//! Same runtime (tokio multi-thread), same connection builder (hyper-util `auto`, timer,
//! header timeout, `TCP_NODELAY`) and same build profile as the daemon, but every answer
//! is a fixed response built once at start-up:
//! - `/202...` → `202` with a fixed `Location` and `Retry-After: 15`, empty body;
//! - `/200/N...` → `200` with a fixed `Location` (the same URL), `Retry-After: 0` and an
//!   `N`-byte JSON-typed body (a slice of one buffer made at start-up, N ≤ 1 MiB).
//!
//! - `POST /recv` → `200`, empty body, after reading the whole request body: the local
//!   webhook receiver; `GET /count` → the number of `/recv` bodies taken so far.
//!
//! Usage: `bare serve 127.0.0.1:PORT`. And the reference client of the webhook row:
//! `bare post TRIGGER_URL RECV_URL N` takes N bodies from the daemon's single trigger
//! (following `Location` from TRIGGER_URL, untimed), then POSTs them one after the other
//! (one in flight, as the daemon delivers to one subscription) with a bare hyper HTTP/1.1
//! keep-alive connection to RECV_URL, and prints the rate as JSON. Without a sub-command
//! (as `cargo bench` runs it) it does nothing.

// A benchmark: failing to set up is a panic with a message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

const MAX_BODY: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let addr = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:18090".into());
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(serve(addr));
        }
        Some("post") => {
            let n: usize = a(3).parse().expect("N");
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(post(a(1), a(2), n));
        }
        _ => eprintln!(
            "bare: a helper of benches/load.sh (usage: bare serve ADDR | bare post TRIGGER_URL RECV_URL N); nothing to do"
        ),
    }
}

/// One HTTP/1.1 keep-alive connection made with hyper's own client connection.
async fn connect(url: &str) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let uri: hyper::Uri = url.parse().expect("url");
    let host = uri.authority().expect("host in url").to_string();
    let stream = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    sender.ready().await.expect("connection ready");
    let resp = sender.send_request(req).await.expect("request");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

async fn post(trigger: String, recv: String, n: usize) {
    // The bodies: what the daemon's single trigger hands out, which is what a webhook
    // subscription in `single` mode sends.
    let mut get = connect(&trigger).await;
    let host = trigger
        .parse::<hyper::Uri>()
        .expect("url")
        .authority()
        .expect("host")
        .to_string();
    let mut url = trigger.clone();
    let mut bodies = Vec::with_capacity(n);
    while bodies.len() < n {
        let req = Request::get(url.as_str())
            .header(hyper::header::HOST, host.as_str())
            .body(Full::new(Bytes::new()))
            .expect("request");
        let (status, headers, body) = send(&mut get, req).await;
        if status != StatusCode::OK {
            break;
        }
        let next = headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
            .expect("Location");
        bodies.push(body);
        url = next;
    }
    let recv_uri: hyper::Uri = recv.parse().expect("url");
    let recv_host = recv_uri.authority().expect("host").to_string();
    let mut out = connect(&recv).await;
    let stamp = HeaderValue::from_static("2026-12-03T18:02:15.000000001Z");
    let t0 = std::time::Instant::now();
    for body in &bodies {
        let req = Request::post(recv_uri.clone())
            .header(hyper::header::HOST, recv_host.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header("x-filetrigger-stamp", stamp.clone())
            .body(Full::new(body.clone()))
            .expect("request");
        let (status, _, _) = send(&mut out, req).await;
        assert!(status.is_success(), "the receiver answered {status}");
    }
    let s = t0.elapsed().as_secs_f64();
    let count = bodies.len();
    let avg = bodies.iter().map(Bytes::len).sum::<usize>() / count.max(1);
    println!(
        "{{\"count\":{count},\"s\":{s:.3},\"per_s\":{:.1},\"avg_body\":{avg}}}",
        count as f64 / s
    );
}

async fn serve(addr: String) {
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let body = Bytes::from(vec![b'A'; MAX_BODY]);
    let loc_202 = HeaderValue::from_str(&format!(
        "http://{addr}/202?folder=x&triggerState=2026-11-25T16:47:00.123456789Z"
    ))
    .expect("location");
    let host = addr.clone();
    let received = Arc::new(AtomicU64::new(0));
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
        let received = received.clone();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let fixed = match req.uri().path() {
                "/recv" | "/count" => None,
                _ => Some(answer(&req, &body, &loc_202, &host)),
            };
            let received = received.clone();
            async move {
                if let Some(r) = fixed {
                    return Ok::<_, Infallible>(r);
                }
                if req.uri().path() == "/count" {
                    let n = received.load(Ordering::SeqCst);
                    return Ok(Response::new(Full::new(Bytes::from(n.to_string()))));
                }
                // The receiver: the whole body is read before the answer, as a real one would.
                let ok = req.into_body().collect().await.is_ok();
                if ok {
                    received.fetch_add(1, Ordering::SeqCst);
                }
                let mut r = Response::new(Full::new(Bytes::new()));
                if !ok {
                    *r.status_mut() = StatusCode::BAD_REQUEST;
                }
                Ok(r)
            }
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
