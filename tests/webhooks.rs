//! The webhook trigger and the webhook wait against a real HTTPS receiver started here,
//! with a certificate made by rcgen and trusted through `webhook.ca_file`; the daemon is
//! the real binary (issue 12, parts 2, 3 and 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::Value;

const SIG: &str = "sIgSeCrEt0123456789";

/// What the receiver does with a call to one path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    Accept,
    Status(u16),
}

#[derive(Default)]
struct Seen {
    /// Per path: the files accepted, first time each (by stamp), in order of acceptance.
    firsts: HashMap<String, Vec<(String, String)>>,
    stamps: HashMap<String, HashSet<String>>,
    repeats: u64,
    /// Per path: the files accepted again.
    repeats_at: HashMap<String, u64>,
    /// Per path: every body accepted.
    bodies: HashMap<String, Vec<Value>>,
    /// The query strings the callbacks carried.
    queries: Vec<String>,
}

struct Faults {
    /// Failures still to inject.
    left: u64,
    /// Per kind, injected.
    injected: HashMap<&'static str, u64>,
    rng: u64,
    stalls_left: u64,
}

struct Receiver {
    port: u16,
    ca: std::path::PathBuf,
    seen: Arc<Mutex<Seen>>,
    behaviour: Arc<Mutex<HashMap<String, Behaviour>>>,
    faults: Arc<Mutex<Faults>>,
    attempts: Arc<AtomicU64>,
    stall: Duration,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn next_rand(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

impl Receiver {
    fn start(stall: Duration) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, issuer.pem()).unwrap();
        let cert = rustls_pki_types::CertificateDer::from(leaf.der().to_vec());
        let pkey = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], pkey)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let behaviour = Arc::new(Mutex::new(HashMap::new()));
        let faults = Arc::new(Mutex::new(Faults {
            left: 0,
            injected: HashMap::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
            stalls_left: 0,
        }));
        let attempts = Arc::new(AtomicU64::new(0));
        let (s, b, f, a) = (
            seen.clone(),
            behaviour.clone(),
            faults.clone(),
            attempts.clone(),
        );
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let (s, b, f, a) = (s.clone(), b.clone(), f.clone(), a.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (s, b, f, a) = (s.clone(), b.clone(), f.clone(), a.clone());
                            async move { answer(req, s, b, f, a, stall).await }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Receiver {
            port,
            ca,
            seen,
            behaviour,
            faults,
            attempts,
            stall,
            _rt: rt,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "https://127.0.0.1:{}{path}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sig={SIG}",
            self.port
        )
    }

    fn set(&self, path: &str, b: Behaviour) {
        self.behaviour.lock().unwrap().insert(path.to_string(), b);
    }

    fn firsts(&self, path: &str) -> Vec<(String, String)> {
        self.seen
            .lock()
            .unwrap()
            .firsts
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    fn bodies(&self, path: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .bodies
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// The env that makes a daemon trust this receiver.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "FILETRIGGER__WEBHOOK__ALLOWED_HOSTS",
                "127.0.0.1,localhost".into(),
            ),
            ("FILETRIGGER__WEBHOOK__ALLOW_PRIVATE", "true".into()),
            (
                "FILETRIGGER__WEBHOOK__CA_FILE",
                self.ca.display().to_string(),
            ),
            ("FILETRIGGER__WEBHOOK__TIMEOUT_S", "1".into()),
            ("FILETRIGGER__WEBHOOK__MAX_BACKOFF_S", "1".into()),
        ]
    }
}

type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

async fn answer(
    req: Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Seen>>,
    behaviour: Arc<Mutex<HashMap<String, Behaviour>>>,
    faults: Arc<Mutex<Faults>>,
    attempts: Arc<AtomicU64>,
    stall: Duration,
) -> Answer {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let stamp = req
        .headers()
        .get("x-filetrigger-stamp")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    attempts.fetch_add(1, Ordering::SeqCst);
    let status = |code: u16| {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
        r
    };
    let b = behaviour
        .lock()
        .unwrap()
        .get(&path)
        .copied()
        .unwrap_or(Behaviour::Accept);
    if let Behaviour::Status(code) = b {
        return Ok(status(code));
    }
    let fault = {
        let mut f = faults.lock().unwrap();
        if f.left > 0 && next_rand(&mut f.rng).is_multiple_of(4) {
            f.left -= 1;
            let mut kind = ["500", "429", "reset", "stall"][(next_rand(&mut f.rng) % 4) as usize];
            if kind == "stall" {
                if f.stalls_left == 0 {
                    kind = "500";
                } else {
                    f.stalls_left -= 1;
                }
            }
            *f.injected.entry(kind).or_default() += 1;
            Some(kind)
        } else {
            None
        }
    };
    match fault {
        Some("500") => return Ok(status(500)),
        Some("429") => {
            let mut r = status(429);
            r.headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
            return Ok(r);
        }
        Some("reset") => return Err(std::io::Error::other("reset")),
        Some(_) => {
            tokio::time::sleep(stall).await;
            return Ok(status(503));
        }
        None => {}
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut s = seen.lock().unwrap();
    s.queries.push(query);
    s.bodies.entry(path.clone()).or_default().push(v.clone());
    // Each file in the body, by its stamp (indexedAt); a file seen before is a repeat.
    let files: Vec<Value> = match &v {
        Value::Array(a) => a.clone(),
        Value::Object(o) if o.contains_key("file") => vec![o["file"].clone()],
        other => vec![other.clone()],
    };
    if let (Some(h), Some(last)) = (&stamp, files.last()) {
        assert_eq!(
            last["indexedAt"].as_str(),
            Some(h.as_str()),
            "the stamp header names the last file"
        );
    }
    for f in files {
        let (Some(at), Some(p)) = (f["indexedAt"].as_str(), f["path"].as_str()) else {
            continue;
        };
        if s.stamps
            .entry(path.clone())
            .or_default()
            .insert(at.to_string())
        {
            s.firsts
                .entry(path.clone())
                .or_default()
                .push((at.to_string(), p.to_string()));
        } else {
            s.repeats += 1;
            *s.repeats_at.entry(path.clone()).or_default() += 1;
        }
    }
    Ok(status(200))
}

fn post_json(url: &str, body: &Value) -> Reply {
    let req = ureq::http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    let mut resp = agent().run(req).unwrap();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.body_mut().read_to_vec().unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers,
        body,
    }
}

fn start(site: &Site, r: &Receiver, extra: &[(&str, &str)]) -> Daemon {
    let mut env = site.env(100);
    for (k, v) in r.env() {
        env.push((k.into(), v));
    }
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    Daemon::start(site.tmp.path(), &env)
}

fn subscribe(d: &Daemon, body: Value) -> Reply {
    let r = post_json(
        &format!("{}/watches/default/subscriptions", d.base()),
        &body,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r
}

/// Every file arrived once, in stamp order.
fn check_in_order(firsts: &[(String, String)], want: usize, what: &str) {
    assert_eq!(firsts.len(), want, "{what}: files accepted");
    let paths: HashSet<&String> = firsts.iter().map(|(_, p)| p).collect();
    assert_eq!(paths.len(), want, "{what}: a file came under two stamps");
    for w in firsts.windows(2) {
        assert!(
            filetrigger::stamp::Stamp::parse(&w[0].0).unwrap()
                < filetrigger::stamp::Stamp::parse(&w[1].0).unwrap(),
            "{what}: out of order: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn every_file_arrives_once_in_order_through_faults_and_two_kill9s() {
    let r = Receiver::start(Duration::from_millis(1500));
    {
        let mut f = r.faults.lock().unwrap();
        f.left = 60;
        f.stalls_left = 4;
    }
    let site = Site::new();
    let mut d = start(&site, &r, &[]);
    subscribe(&d, serde_json::json!({"callbackUrl": r.url("/single")}));
    subscribe(
        &d,
        serde_json::json!({"callbackUrl": r.url("/batch"), "mode": "batch", "maxFileCount": 10}),
    );
    let total = 1000;
    let mut written = 0;
    let mut kills = 0;
    for (upto, wait_for_n) in [(400, 150), (700, 500)] {
        while written < upto {
            site.put(
                &format!("f{written:04}.txt"),
                format!("file {written}").as_bytes(),
            );
            written += 1;
        }
        wait_for("deliveries before the kill", WAIT, || {
            r.firsts("/single").len() >= wait_for_n
        });
        d.kill9();
        kills += 1;
        d = start(&site, &r, &[]);
    }
    while written < total {
        site.put(
            &format!("f{written:04}.txt"),
            format!("file {written}").as_bytes(),
        );
        written += 1;
    }
    wait_for(
        "every file at both receivers",
        Duration::from_secs(60),
        || r.firsts("/single").len() >= total && r.firsts("/batch").len() >= total,
    );
    check_in_order(&r.firsts("/single"), total, "single");
    check_in_order(&r.firsts("/batch"), total, "batch");
    let seen = r.seen.lock().unwrap();
    let f = r.faults.lock().unwrap();
    let injected: u64 = f.injected.values().sum();
    println!(
        "fault test: files={total} kills={kills} failures_injected={injected} (500: {}, 429: {}, reset: {}, stall: {}) deliveries_attempted={} repeats_seen={} lost=0",
        f.injected.get("500").unwrap_or(&0),
        f.injected.get("429").unwrap_or(&0),
        f.injected.get("reset").unwrap_or(&0),
        f.injected.get("stall").unwrap_or(&0),
        r.attempts.load(Ordering::SeqCst),
        seen.repeats,
    );
    assert!(injected > 0, "no failure was injected");
    // Repeats are bounded: per kill -9 at most 16 calls per subscription beyond its
    // committed position (README; single: 16 files, batch: 16 of up to 10), and per
    // injected failure the call the receiver may have taken before failing it.
    let bound = kills * (16 + 16 * 10) + injected;
    assert!(
        seen.repeats <= bound,
        "{} repeats, more than {bound}",
        seen.repeats
    );
    assert!(!d.log().contains(SIG), "the sig leaked into the log");
    let _ = r.stall;
}

#[test]
fn unsubscribe_stops_deliveries_and_subscribing_again_keeps_id_and_position() {
    let r = Receiver::start(Duration::from_millis(1500));
    let site = Site::new();
    let d = start(&site, &r, &[]);
    let a = subscribe(&d, serde_json::json!({"callbackUrl": r.url("/u")}));
    let id = a.json()["id"].as_str().unwrap().to_string();
    let loc = a.header("location").unwrap().to_string();
    assert!(
        loc.ends_with(&format!("/watches/default/subscriptions/{id}")),
        "{loc}"
    );
    subscribe(&d, serde_json::json!({"callbackUrl": r.url("/fence")}));
    for i in 0..3 {
        site.put(&format!("a{i}.txt"), b"a");
    }
    wait_for("three at /u", WAIT, || r.firsts("/u").len() == 3);
    // Again, same callback (as the engine does when the workflow is saved): same id, the
    // position kept, nothing repeated.
    let again = subscribe(
        &d,
        serde_json::json!({"callbackUrl": r.url("/u"), "content": "none"}),
    );
    assert_eq!(again.json()["id"].as_str(), Some(id.as_str()));
    site.put("b0.txt", b"b");
    wait_for("b0 at /u", WAIT, || r.firsts("/u").len() == 4);
    assert_eq!(r.seen.lock().unwrap().repeats, 0, "something came twice");
    let last = r.bodies("/u").pop().unwrap();
    assert!(
        last.get("contentLink").is_some() && last.get("content").is_none(),
        "{last}"
    );
    // Unsubscribe: idempotent, and nothing more arrives (the fence subscription gets the
    // next files, /u does not).
    let del = request("DELETE", &loc).unwrap();
    assert_eq!(del.status, 200);
    assert_eq!(request("DELETE", &loc).unwrap().status, 200);
    assert_eq!(get(&loc).unwrap().status, 404);
    for i in 0..2 {
        site.put(&format!("c{i}.txt"), b"c");
    }
    wait_for("the fence", WAIT, || r.firsts("/fence").len() == 6);
    assert_eq!(r.firsts("/u").len(), 4, "delivered after unsubscribe");
    let list = get(&format!("{}/watches/default/subscriptions", d.base())).unwrap();
    assert_eq!(list.json()["value"].as_array().unwrap().len(), 1);
    // Subscribing the same callback again (the engine unsubscribes and subscribes when a
    // workflow is saved), also after a restart: the same id, on from where it stood: the
    // files that came meanwhile arrive, nothing before them again.
    d.kill9();
    let d = start(&site, &r, &[]);
    let back = subscribe(&d, serde_json::json!({"callbackUrl": r.url("/u")}));
    assert_eq!(back.status, 201);
    assert_eq!(back.json()["id"].as_str(), Some(id.as_str()));
    wait_for("c0, c1 at /u", WAIT, || r.firsts("/u").len() == 6);
    let paths: Vec<String> = r.firsts("/u").into_iter().map(|(_, p)| p).collect();
    assert_eq!(&paths[4..], ["c0.txt", "c1.txt"], "{paths:?}");
    // At /u only: the fence subscription may get its last calls again after the kill -9
    // (up to 16 calls beyond its committed position, README), /u was ended before it.
    let seen = r.seen.lock().unwrap();
    assert_eq!(
        seen.repeats_at.get("/u"),
        None,
        "something came twice at /u"
    );
}

#[test]
fn a_404_receiver_is_paused_shown_and_resumed_by_subscribing_again() {
    let r = Receiver::start(Duration::from_millis(1500));
    r.set("/gone", Behaviour::Status(404));
    let site = Site::new();
    let d = start(&site, &r, &[("FILETRIGGER__WEBHOOK__PAUSE_AFTER_S", "2")]);
    let id = subscribe(&d, serde_json::json!({"callbackUrl": r.url("/gone")})).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    site.put("x.txt", b"x");
    let one = format!("{}/watches/default/subscriptions/{id}", d.base());
    wait_for("paused", WAIT, || {
        get(&one).unwrap().json()["state"] == "paused"
    });
    let s = get(&one).unwrap().json();
    assert!(s["lastError"].as_str().unwrap().contains("404"), "{s}");
    assert_eq!(s["lag"], 1, "{s}");
    let h = d.health();
    assert_eq!(h["subscriptions"]["paused"], 1, "{h}");
    assert_eq!(h["status"], "ok");
    // Paused survives a restart.
    d.kill9();
    let d = start(&site, &r, &[("FILETRIGGER__WEBHOOK__PAUSE_AFTER_S", "2")]);
    let one = format!("{}/watches/default/subscriptions/{id}", d.base());
    assert_eq!(get(&one).unwrap().json()["state"], "paused");
    r.set("/gone", Behaviour::Accept);
    let again = subscribe(&d, serde_json::json!({"callbackUrl": r.url("/gone")})).json();
    assert_eq!(again["id"].as_str(), Some(id.as_str()));
    wait_for("x delivered after resuming", WAIT, || {
        r.firsts("/gone").len() == 1
    });
    assert_eq!(get(&one).unwrap().json()["state"], "active");
}

#[test]
fn refused_callbacks_say_why_and_the_sig_never_shows() {
    let r = Receiver::start(Duration::from_millis(1500));
    let site = Site::new();
    let d = site.daemon(
        100,
        &[(
            "FILETRIGGER__WEBHOOK__ALLOWED_HOSTS",
            "localhost,10.*,169.254.169.254,*.logic.azure.com",
        )],
    );
    let sub = format!("{}/watches/default/subscriptions", d.base());
    let mut answers = String::new();
    for (url, why) in [
        (format!("http://localhost/x?sig={SIG}"), "https"),
        (format!("https://10.1.2.3/x?sig={SIG}"), "private"),
        (
            format!("https://169.254.169.254/latest?sig={SIG}"),
            "link-local",
        ),
        (
            format!("https://localhost:{}/x?sig={SIG}", r.port),
            "loopback",
        ),
        (
            format!("https://evil.example.net/x?sig={SIG}"),
            "allowed_hosts",
        ),
    ] {
        let a = post_json(&sub, &serde_json::json!({"callbackUrl": url}));
        let text = String::from_utf8_lossy(&a.body).to_string();
        assert_eq!(a.status, 400, "{url}: {text}");
        assert_eq!(a.json()["error"]["code"], "bad_callback_url", "{text}");
        assert!(text.contains(why), "{url}: {text}");
        answers.push_str(&text);
    }
    let a = post_json(
        &sub,
        &serde_json::json!({"callbackUrl": "https://a.logic.azure.com/x", "mode": "many"}),
    );
    assert_eq!(a.status, 400);
    let a = post_json(
        &format!("{}/watches/default/waits", d.base()),
        &serde_json::json!({"callbackUrl": "https://a.logic.azure.com/x"}),
    );
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["code"], "bad_glob");
    assert!(!answers.contains(SIG), "{answers}");
    assert!(!d.log().contains(SIG), "the log shows the sig");
    // With the receiver trusted: the subscription's answers and the listing show the
    // host, never the URL.
    let d2 = start(&Site::new(), &r, &[]);
    let a = subscribe(&d2, serde_json::json!({"callbackUrl": r.url("/s")}));
    let list = get(&format!("{}/watches/default/subscriptions", d2.base())).unwrap();
    let health = get(&format!("{}/healthz", d2.base())).unwrap();
    for text in [&a.body, &list.body, &health.body] {
        assert!(!String::from_utf8_lossy(text).contains(SIG));
    }
    assert_eq!(list.json()["value"][0]["host"], "127.0.0.1");
    assert!(!d2.log().contains(SIG), "the log shows the sig");
    // The index holds the callback URL: readable by the service user only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&site.state.join("index.redb")), 0o600);
    assert_eq!(mode(&site.state), 0o700);
}

#[test]
fn webhook_wait_found_timed_out_cancelled_and_across_a_restart() {
    let r = Receiver::start(Duration::from_millis(1500));
    let site = Site::new();
    let d = start(&site, &r, &[]);
    let waits = format!("{}/watches/default/waits", d.base());
    let a = post_json(
        &waits,
        &serde_json::json!({"callbackUrl": r.url("/found"), "glob": "*.csv", "timeout": 60}),
    );
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    site.put("a.txt", b"a");
    site.put("b.csv", b"b");
    wait_for("found", WAIT, || !r.bodies("/found").is_empty());
    let found = r.bodies("/found").pop().unwrap();
    assert_eq!(found["status"], "found");
    assert_eq!(found["file"]["path"], "b.csv");
    let a = post_json(
        &waits,
        &serde_json::json!({"callbackUrl": r.url("/late"), "glob": "*.none", "timeout": 1}),
    );
    assert_eq!(a.status, 201);
    wait_for("timedOut", WAIT, || !r.bodies("/late").is_empty());
    assert_eq!(r.bodies("/late")[0]["status"], "timedOut");
    let a = post_json(
        &waits,
        &serde_json::json!({"callbackUrl": r.url("/cancelled"), "glob": "*.csv", "timeout": 60}),
    );
    let loc = a.header("location").unwrap().to_string();
    let del = request("DELETE", &loc).unwrap();
    assert_eq!(del.json()["cancelled"], true);
    assert_eq!(request("DELETE", &loc).unwrap().json()["cancelled"], false);
    let a = post_json(
        &waits,
        &serde_json::json!({"callbackUrl": r.url("/restart"), "glob": "*.dat", "timeout": 60}),
    );
    assert_eq!(a.status, 201);
    assert_eq!(d.terminate().code(), Some(0));
    site.put("c.csv", b"c");
    site.put("x.dat", b"x");
    let d = start(&site, &r, &[]);
    wait_for("found after the restart", WAIT, || {
        !r.bodies("/restart").is_empty()
    });
    assert_eq!(r.bodies("/restart")[0]["file"]["path"], "x.dat");
    assert!(
        r.bodies("/cancelled").is_empty(),
        "a cancelled wait answered"
    );
    wait_for("no wait left", WAIT, || {
        d.health().get("subscriptions").is_none()
    });
}

#[test]
fn with_clean_up_a_file_is_deleted_only_after_the_subscription_took_it() {
    let r = Receiver::start(Duration::from_millis(1500));
    r.set("/hold", Behaviour::Status(503));
    let site = Site::new();
    let d = start(
        &site,
        &r,
        &[("FILETRIGGER__WATCH__AFTER_DELIVERY", "delete")],
    );
    // In the folder before the subscription began: never delivered to it, so kept.
    let before = site.put("before.txt", b"b");
    wait_for("before.txt indexed", WAIT, || {
        d.health()["filesIndexed"] == 1
    });
    let id = subscribe(&d, serde_json::json!({"callbackUrl": r.url("/hold")})).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = site.put("a.txt", b"a");
    let one = format!("{}/watches/default/subscriptions/{id}", d.base());
    // Refused (503): retrying, not acknowledged, so the file stays.
    wait_for("a failed delivery", WAIT, || {
        get(&one).unwrap().json()["state"] == "retrying"
    });
    assert!(path.exists(), "deleted before the subscription took it");
    r.set("/hold", Behaviour::Accept);
    wait_for("a delivered", WAIT, || r.firsts("/hold").len() == 1);
    wait_for("a deleted after the acknowledgement", WAIT, || {
        !path.exists()
    });
    assert_eq!(get(&one).unwrap().json()["state"], "active");
    assert!(
        before.exists(),
        "a file from before the subscription was cleaned up"
    );
}

#[test]
fn the_sig_never_shows_at_trace_level_nor_in_metrics_or_healthz() {
    // Everything at its most talkative (the HTTP client's and TLS's own records too):
    // a delivery refused with 500, then taken, and a webhook wait.
    let r = Receiver::start(Duration::from_millis(1500));
    let site = Site::new();
    let d = start(&site, &r, &[("RUST_LOG", "trace")]);
    r.set("/t", Behaviour::Status(500));
    let a = subscribe(&d, serde_json::json!({"callbackUrl": r.url("/t")}));
    let w = post_json(
        &format!("{}/watches/default/waits", d.base()),
        &serde_json::json!({"callbackUrl": r.url("/w"), "glob": "*.txt"}),
    );
    assert_eq!(w.status, 201);
    site.put("a.txt", b"a");
    wait_for("a refused attempt", WAIT, || {
        r.attempts.load(Ordering::SeqCst) >= 2
    });
    r.set("/t", Behaviour::Accept);
    wait_for("a.txt at /t and /w", WAIT, || {
        r.firsts("/t").len() == 1 && !r.bodies("/w").is_empty()
    });
    let mut answers = String::from_utf8_lossy(&a.body).to_string();
    answers.push_str(&String::from_utf8_lossy(&w.body));
    for path in ["/watches/default/subscriptions", "/healthz", "/metrics"] {
        let g = get(&format!("{}{path}", d.base())).unwrap();
        answers.push_str(&String::from_utf8_lossy(&g.body));
    }
    assert!(!answers.contains(SIG), "{answers}");
    assert!(r
        .seen
        .lock()
        .unwrap()
        .queries
        .iter()
        .all(|q| q.contains(SIG)));
    let log = d.log();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "not at trace level"
    );
    assert!(!log.contains(SIG), "the log shows the sig");
}

#[test]
fn a_subscription_whose_callback_the_config_no_longer_allows_is_paused_not_active() {
    let r = Receiver::start(Duration::from_millis(1500));
    let site = Site::new();
    let d = start(&site, &r, &[]);
    subscribe(&d, serde_json::json!({"callbackUrl": r.url("/x")}));
    d.kill9();
    // 127.0.0.1 taken out of webhook.allowed_hosts.
    let d = start(
        &site,
        &r,
        &[("FILETRIGGER__WEBHOOK__ALLOWED_HOSTS", "localhost")],
    );
    let list = || get(&format!("{}/watches/default/subscriptions", d.base())).unwrap();
    wait_for("the subscription paused", WAIT, || {
        list().json()["value"][0]["state"] == "paused"
    });
    let v = list().json();
    assert!(
        v["value"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("not allowed")),
        "{v}"
    );
    let health = get(&format!("{}/healthz", d.base())).unwrap().json();
    assert_eq!(health["subscriptions"]["paused"], 1, "{health}");
}

#[test]
fn a_subscribe_whose_body_never_arrives_gets_408_instead_of_holding_the_connection() {
    use std::io::{Read, Write};
    let r = Receiver::start(Duration::from_millis(1500));
    let site = Site::new();
    let d = start(&site, &r, &[]);
    let mut s = std::net::TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // Declares 100 bytes, sends 10, then nothing.
    s.write_all(
        b"POST /watches/default/subscriptions HTTP/1.1\r\nHost: h\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"callbac",
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = s.read(&mut buf).expect("an answer before the read timeout");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[test]
fn on_a_disk_that_caches_nothing_deliveries_go_through_the_blocking_read_in_order() {
    // The test-only read delay stands for a disk whose data is never cached: a delivery
    // cannot be built from the kernel's caches on the async worker, and must still come,
    // through the blocking read, in stamp order, single and batch.
    let r = Receiver::start(Duration::from_millis(1500));
    let site = Site::new();
    let d = start(&site, &r, &[("FILETRIGGER_TEST_READ_DELAY_MS", "30")]);
    subscribe(&d, serde_json::json!({"callbackUrl": r.url("/slow")}));
    subscribe(
        &d,
        serde_json::json!({"callbackUrl": r.url("/slowbatch"), "mode": "batch", "maxFileCount": 3}),
    );
    let total = 8;
    for i in 0..total {
        site.put(&format!("s{i}.txt"), format!("slow {i}").as_bytes());
    }
    wait_for("every file at both receivers", WAIT, || {
        r.firsts("/slow").len() >= total && r.firsts("/slowbatch").len() >= total
    });
    check_in_order(&r.firsts("/slow"), total, "single");
    check_in_order(&r.firsts("/slowbatch"), total, "batch");
    assert_eq!(r.seen.lock().unwrap().repeats, 0, "something came twice");
    assert!(
        d.log().contains("test read delay: holding a file read"),
        "the blocking read was not used"
    );
}
