//! Safe to expose: authentication on every route but /healthz, the refusal to serve
//! other hosts anonymously, TLS and client certificates (with reload on SIGHUP),
//! forwarded headers only from trusted proxies, confinement, request limits, and the
//! systemd notification protocol. All against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

const SETTLE: u64 = 150;
const PASSWORD: &str = "correct horse battery staple";
const API_KEY: &str = "k3y-0123456789abcdef-XYZ";

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A site with an htpasswd file (bcrypt, as `htpasswd -B` writes it) and an API key file.
fn secured_site() -> (Site, Vec<(String, String)>) {
    let site = Site::new();
    let hash = bcrypt::hash_with_result(PASSWORD, 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let htpasswd = site.tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let keys = site.tmp.path().join("api-keys");
    std::fs::write(&keys, format!("# workflow keys\n{API_KEY}\n")).unwrap();
    let env = vec![
        (
            "FILETRIGGER__AUTH__BASIC_FILE".to_string(),
            htpasswd.display().to_string(),
        ),
        (
            "FILETRIGGER__AUTH__API_KEY_FILE".to_string(),
            keys.display().to_string(),
        ),
    ];
    (site, env)
}

fn start(site: &Site, extra: &[(String, String)]) -> Daemon {
    let mut env = site.env(SETTLE);
    env.extend(extra.iter().cloned());
    Daemon::start(site.tmp.path(), &env)
}

#[test]
fn every_route_requires_credentials_except_healthz_for_both_methods() {
    let (site, env) = secured_site();
    let d = start(&site, &env);
    let a = agent();
    let routes = [
        "/trigger",
        "/trigger?triggerState=2020-01-01T00:00:00Z",
        "/nope",
        "/healthz",
    ];
    let wrong_basic = basic("alice", "wrong");
    let right_basic = basic("alice", PASSWORD);
    let unknown_user = basic("mallory", PASSWORD);
    let creds: Vec<(&str, Vec<(&str, &str)>, bool)> = vec![
        ("none", vec![], false),
        (
            "basic wrong password",
            vec![("authorization", wrong_basic.as_str())],
            false,
        ),
        (
            "basic unknown user",
            vec![("authorization", unknown_user.as_str())],
            false,
        ),
        (
            "basic right",
            vec![("authorization", right_basic.as_str())],
            true,
        ),
        (
            "key wrong",
            vec![("x-api-key", "k3y-0123456789abcdef-XYz")],
            false,
        ),
        ("key right", vec![("x-api-key", API_KEY)], true),
        ("key in the query", vec![], false),
    ];
    for route in routes {
        for (what, headers, ok) in &creds {
            let url = if *what == "key in the query" {
                format!(
                    "{}{route}{}api_key={API_KEY}",
                    d.base(),
                    if route.contains('?') { "&" } else { "?" }
                )
            } else {
                format!("{}{route}", d.base())
            };
            let r = send(&a, "GET", &url, headers).unwrap();
            let expected = match (route, ok) {
                ("/healthz", _) => 200,
                (_, false) => 401,
                ("/nope", true) => 404,
                (_, true) => 202,
            };
            assert_eq!(r.status, expected, "{route} with {what}: {r:?}");
            if r.status == 401 {
                let challenge = r.header("www-authenticate").unwrap_or_default();
                assert!(challenge.starts_with("Basic realm="), "{challenge}");
                assert_eq!(r.json()["error"]["code"], "unauthorized");
            }
            if r.status == 202 {
                assert!(!r.location().contains(PASSWORD) && !r.location().contains(API_KEY));
            }
        }
    }
    let log = d.log();
    assert!(log.contains("authentication failed"), "failures are logged");
    assert!(log.contains("127.0.0.1"), "with the peer address");
    assert!(
        !log.contains(PASSWORD) && !log.contains("wrong") && !log.contains("XYz"),
        "never the secret:\n{log}"
    );
}

#[test]
fn an_authenticated_workflow_drains_files() {
    let (site, env) = secured_site();
    let d = start(&site, &env);
    let a = agent();
    let auth = basic("alice", PASSWORD);
    let h = [("authorization", auth.as_str())];
    let r = send(&a, "GET", &d.trigger_url(), &h).unwrap();
    assert_eq!(r.status, 202);
    let mut next = r.location();
    for i in 0..20 {
        site.put(&format!("f{i}.txt"), b"x");
    }
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 20 && Instant::now() < deadline {
        let r = send(&a, "GET", &next, &h).unwrap();
        assert!(r.status == 200 || r.status == 202, "{r:?}");
        if r.status == 200 {
            got += 1;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
        next = r.location();
    }
    assert_eq!(got, 20);
}

#[test]
fn listening_beyond_loopback_without_auth_refuses_unless_anonymous_is_explicit() {
    let site = Site::new();
    let mut env = site.env(SETTLE);
    env.retain(|(k, _)| k != "FILETRIGGER__SERVER__LISTEN");
    env.push(("FILETRIGGER__SERVER__LISTEN".into(), "0.0.0.0:0".into()));
    let out = run_to_exit(site.tmp.path(), &[], &env);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("auth") && out.stderr.contains("allow_anonymous"),
        "{}",
        out.stderr
    );

    let mut anon = env.clone();
    anon.push(("FILETRIGGER__AUTH__ALLOW_ANONYMOUS".into(), "true".into()));
    let d = Daemon::start(site.tmp.path(), &anon);
    let r = get(&format!("http://127.0.0.1:{}/trigger", d.addr.port())).unwrap();
    assert_eq!(r.status, 202);
    drop(d);

    let (site, mut secured) = secured_site();
    secured.extend(env.iter().filter(|(k, _)| k.contains("LISTEN")).cloned());
    let d = start(&site, &secured);
    let r = get(&format!("http://127.0.0.1:{}/trigger", d.addr.port())).unwrap();
    assert_eq!(r.status, 401);
}

/// A certificate authority made at test time.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate PEM, key PEM) for `names`.
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn tls_agent(trust: &Ca, client: Option<&(String, String)>) -> ureq::Agent {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let root = Certificate::from_pem(trust.pem().as_bytes()).unwrap();
    let mut tls = TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(vec![root])));
    if let Some((cert, key)) = client {
        let chain = vec![Certificate::from_pem(cert.as_bytes()).unwrap()];
        let key = PrivateKey::from_pem(key.as_bytes()).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    agent_with(tls.build())
}

/// The site's environment with HTTPS from `cert.pem` and `key.pem` in its temp dir.
fn tls_env(site: &Site) -> Vec<(String, String)> {
    let dir = site.tmp.path();
    let mut env = site.env(SETTLE);
    for (key, file) in [("CERT", "cert.pem"), ("KEY", "key.pem")] {
        env.push((
            format!("FILETRIGGER__SERVER__TLS__{key}"),
            dir.join(file).display().to_string(),
        ));
    }
    env
}

fn write_pair(dir: &std::path::Path, (cert, key): &(String, String)) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

#[test]
fn tls_serves_https_and_reloads_certificates_on_sighup_without_dropping_the_listener() {
    let site = Site::new();
    let old_ca = Ca::new("old ca");
    let new_ca = Ca::new("new ca");
    let dir = site.tmp.path();
    write_pair(dir, &old_ca.leaf(&["localhost"]));
    let env = tls_env(&site);
    let d = Daemon::spawn(dir, &env);
    let url = format!("https://localhost:{}/trigger", d.addr.port());
    let health = format!("https://localhost:{}/healthz", d.addr.port());
    wait_for("healthy over https", Duration::from_secs(30), || {
        send(&tls_agent(&old_ca, None), "GET", &health, &[]).is_ok_and(|r| r.status == 200)
    });
    let r = send(&tls_agent(&old_ca, None), "GET", &url, &[]).unwrap();
    assert_eq!(r.status, 202);
    assert!(
        r.location()
            .starts_with(&format!("https://localhost:{}/trigger?", d.addr.port())),
        "{}",
        r.location()
    );
    assert!(
        send(&tls_agent(&new_ca, None), "GET", &url, &[]).is_err(),
        "not yet signed by the new CA"
    );
    // Plain HTTP on the TLS port is not served.
    assert!(get(&format!("http://localhost:{}/trigger", d.addr.port())).is_err());

    write_pair(dir, &new_ca.leaf(&["localhost"]));
    unsafe {
        libc::kill(d.pid(), libc::SIGHUP);
    }
    wait_for("the new certificate", Duration::from_secs(20), || {
        send(&tls_agent(&new_ca, None), "GET", &url, &[]).is_ok_and(|r| r.status == 202)
    });
    assert!(send(&tls_agent(&old_ca, None), "GET", &url, &[]).is_err());
    assert!(d.log().contains("reloaded"));
}

#[test]
fn client_certificates_are_required_when_a_client_ca_is_set() {
    let site = Site::new();
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let stranger_ca = Ca::new("stranger ca");
    let dir = site.tmp.path();
    write_pair(dir, &server_ca.leaf(&["localhost"]));
    std::fs::write(dir.join("clients.pem"), client_ca.pem()).unwrap();
    let mut env = tls_env(&site);
    env.push((
        "FILETRIGGER__SERVER__TLS__CLIENT_CA".into(),
        dir.join("clients.pem").display().to_string(),
    ));
    let d = Daemon::spawn(dir, &env);
    let url = format!("https://localhost:{}/trigger", d.addr.port());
    let good = client_ca.leaf(&["workflow"]);
    let health = format!("https://localhost:{}/healthz", d.addr.port());
    wait_for("healthy over https", Duration::from_secs(30), || {
        send(&tls_agent(&server_ca, Some(&good)), "GET", &health, &[])
            .is_ok_and(|r| r.status == 200)
    });
    let r = send(&tls_agent(&server_ca, Some(&good)), "GET", &url, &[]).unwrap();
    assert_eq!(r.status, 202);
    assert!(
        send(&tls_agent(&server_ca, None), "GET", &url, &[]).is_err(),
        "no client certificate"
    );
    let stranger = stranger_ca.leaf(&["intruder"]);
    assert!(
        send(&tls_agent(&server_ca, Some(&stranger)), "GET", &url, &[]).is_err(),
        "wrong CA"
    );
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let headers = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "files.example.com"),
        ("x-forwarded-prefix", "/filetrigger/"),
    ];
    let site = Site::new();
    let d = site.daemon(
        SETTLE,
        &[(
            "FILETRIGGER__SERVER__TRUSTED_PROXIES",
            "10.0.0.0/8,127.0.0.1",
        )],
    );
    let r = send(
        &agent(),
        "GET",
        &format!("{}?a=1", d.trigger_url()),
        &headers,
    )
    .unwrap();
    assert!(
        r.location()
            .starts_with("https://files.example.com/filetrigger/trigger?a=1&triggerState="),
        "{}",
        r.location()
    );
    // A bad forwarded host from a trusted proxy is a 400, not a Location elsewhere.
    let r = send(
        &agent(),
        "GET",
        &d.trigger_url(),
        &[("x-forwarded-host", "evil.com/x y")],
    )
    .unwrap();
    assert_eq!(r.status, 400);
    drop(d);

    let site = Site::new();
    let d = site.daemon(
        SETTLE,
        &[("FILETRIGGER__SERVER__TRUSTED_PROXIES", "10.0.0.0/8")],
    );
    let r = send(&agent(), "GET", &d.trigger_url(), &headers).unwrap();
    assert!(
        r.location()
            .starts_with(&format!("http://{}/trigger?triggerState=", d.addr)),
        "an untrusted peer cannot steer Location: {}",
        r.location()
    );
}

#[test]
fn a_symlink_to_a_file_outside_is_never_offered_or_served() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    std::os::unix::fs::symlink("/etc/passwd", site.inbox.join("passwd")).unwrap();
    std::fs::create_dir(site.inbox.join("sub")).unwrap();
    std::os::unix::fs::symlink("/etc", site.inbox.join("sub/etc")).unwrap();
    site.put("after.txt", b"after");
    p.drain(1, Duration::from_secs(30));
    assert_eq!(p.paths(), vec!["after.txt"]);
    let mut replay = Poller::at(format!(
        "{}?triggerState=2000-01-01T00:00:00Z",
        d.trigger_url()
    ));
    replay.drain(1, Duration::from_secs(30));
    replay.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(replay.paths(), vec!["after.txt"]);
    assert!(replay
        .got
        .iter()
        .all(|g| !String::from_utf8_lossy(&g.content()).contains("root:")));
}

/// An indexed regular file, and an indexed file's directory, each replaced by a symbolic
/// link to outside `watch.dir` before the poll. The link targets are hard links to the
/// indexed files, so size, mtime and inode all still match the index: only `confine`'s
/// refusal to follow a link on the way keeps the poll from serving a file from outside.
/// The daemon runs in poll mode with a one-hour interval, so no event or scan removes
/// the entries first (they are still counted after the polls).
#[test]
fn an_indexed_file_swapped_for_a_symlink_to_outside_is_not_served() {
    use std::os::unix::fs::symlink;
    let site = Site::new();
    let outside = site.tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    site.put("swapped.txt", b"root:x:0:0 outside content");
    site.put("dir/inner.txt", b"root:x:0:0 outside too");
    site.put("plain.txt", b"plain");
    let d = site.daemon(
        SETTLE,
        &[
            ("FILETRIGGER__WATCH__MODE", "poll"),
            ("FILETRIGGER__WATCH__POLL_INTERVAL_S", "3600"),
            ("FILETRIGGER__WATCH__RESCAN_INTERVAL_S", "3600"),
        ],
    );
    wait_for("the start-up scan", Duration::from_secs(30), || {
        d.health()["filesIndexed"] == 3 && d.log().contains("full scan walked the tree")
    });
    // The same inodes, now outside; the paths inside become links to them.
    std::fs::hard_link(site.inbox.join("swapped.txt"), outside.join("swapped.txt")).unwrap();
    std::fs::remove_file(site.inbox.join("swapped.txt")).unwrap();
    symlink(outside.join("swapped.txt"), site.inbox.join("swapped.txt")).unwrap();
    std::fs::hard_link(
        site.inbox.join("dir/inner.txt"),
        outside.join("dir/inner.txt"),
    )
    .unwrap();
    std::fs::remove_dir_all(site.inbox.join("dir")).unwrap();
    symlink(outside.join("dir"), site.inbox.join("dir")).unwrap();
    let mut replay = Poller::at(format!(
        "{}?triggerState=2000-01-01T00:00:00Z",
        d.trigger_url()
    ));
    replay.drain(1, Duration::from_secs(30));
    assert_eq!(replay.paths(), vec!["plain.txt"]);
    assert_eq!(replay.poll().status, 202, "{:?}", replay.got);
    assert!(replay
        .got
        .iter()
        .all(|g| !String::from_utf8_lossy(&g.content()).contains("root:")));
    // The batch, the list and the wait open a series of files beneath the watched
    // directory opened once: the same refusal.
    let series = [
        "/watches/default/batch?maxFileCount=10&triggerState=2000-01-01T00:00:00Z",
        "/watches/default/files?after=2000-01-01T00:00:00Z",
    ];
    for path in series {
        let r = get(&format!("{}{path}", d.base())).unwrap();
        assert_eq!(r.status, 200, "{path}");
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("plain.txt"), "{path}: {text}");
        for outside in ["root:", "swapped.txt", "inner.txt", "cm9vdDp4"] {
            assert!(!text.contains(outside), "{path} served {outside}: {text}");
        }
    }
    assert_eq!(
        d.health()["filesIndexed"],
        3,
        "discovery removed the entries, so the poll-time confinement was not reached"
    );
}

/// Sends raw bytes and reads what comes back until the server closes or `limit` passes.
fn raw(d: &Daemon, bytes: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn oversized_heads_get_431_long_urls_414_bodies_413_and_polls_go_on() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let big = "x".repeat(40_000);
    let r = raw(
        &d,
        format!("GET /trigger HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        Duration::from_secs(10),
    );
    assert!(r.starts_with("HTTP/1.1 431"), "{}", &r[..r.len().min(200)]);
    let long = "a".repeat(5000);
    let r = get(&format!("{}?pad={long}", d.trigger_url())).unwrap();
    assert_eq!(r.status, 414);
    assert_eq!(r.json()["error"]["code"], "uri_too_long");
    let r = raw(
        &d,
        b"GET /trigger HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        Duration::from_secs(10),
    );
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    assert_eq!(get(&d.trigger_url()).unwrap().status, 202);
}

#[test]
fn a_client_sending_headers_byte_by_byte_is_cut_off_and_others_are_served() {
    let site = Site::new();
    let d = site.daemon(
        SETTLE,
        &[("FILETRIGGER__SERVER__HEADER_READ_TIMEOUT_S", "1")],
    );
    let mut slow = TcpStream::connect(d.addr).unwrap();
    slow.set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    // A head that never ends: whatever ends this connection is the server giving up on
    // it, whatever the machine's speed (a head that completed would get a 202 instead).
    let head = b"GET /trigger HTTP/1.1\r\nHost: a\r\nX-Slow: ";
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answer = Vec::new();
    for b in head.iter().chain(std::iter::repeat(&b'a')) {
        assert!(
            Instant::now() < deadline,
            "the slow client was never cut off"
        );
        // Meanwhile another poller is served at once.
        assert_eq!(get(&d.trigger_url()).unwrap().status, 202);
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut buf = [0u8; 256];
        slow.set_nonblocking(true).unwrap();
        let read = slow.read(&mut buf);
        slow.set_nonblocking(false).unwrap();
        match read {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // End of stream, a reset, or an answer (a timeout response): the server gave up.
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !answer.starts_with("HTTP/1.1 2"),
        "an unfinished head was answered: {answer}"
    );
}

#[test]
fn systemd_hears_ready_and_watchdog_pings() {
    let site = Site::new();
    let sock_path = site.tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut env = site.env(SETTLE);
    env.push(("NOTIFY_SOCKET".into(), sock_path.display().to_string()));
    env.push(("WATCHDOG_USEC".into(), "400000".into()));
    let d = Daemon::start(site.tmp.path(), &env);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !(seen.iter().any(|m: &String| m == "READY=1") && seen.iter().any(|m| m == "WATCHDOG=1"))
    {
        let n = sock
            .recv(&mut buf)
            .expect("no notification from the daemon");
        // One datagram holds newline-separated assignments (sd_notify(3)).
        seen.extend(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .map(str::to_owned),
        );
    }
    // `STATUS=` lines (the start-up scan's progress) may come before it.
    let first = seen.iter().find(|m| !m.starts_with("STATUS="));
    assert_eq!(
        first.map(String::as_str),
        Some("READY=1"),
        "ready comes first: {seen:?}"
    );
    assert_eq!(d.health()["status"], "ok");
    assert!(d.terminate().success());
    let mut tail = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        tail.extend(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .map(str::to_owned),
        );
        if tail.last().is_some_and(|m| m == "STOPPING=1") {
            break;
        }
    }
    assert!(tail.iter().any(|m| m == "STOPPING=1"), "{tail:?}");
}

#[test]
fn a_thousand_idle_connections_and_pipelined_requests_leave_pollers_served() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(d.addr).unwrap())
        .collect();
    // Another workflow is still answered, and its files still come.
    let mut p = Poller::start(&d.trigger_url());
    site.put("during.txt", b"x");
    p.drain(1, Duration::from_secs(30));
    assert_eq!(p.paths(), vec!["during.txt"]);
    drop(idle);

    let three = format!(
        "GET {0} HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET {0} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "/trigger?triggerState=2000-01-01T00:00:00Z"
    );
    let out = raw(&d, three.as_bytes(), Duration::from_secs(10));
    // Three answers, in order, on one connection (bodies are not newline-terminated).
    assert_eq!(out.matches("HTTP/1.1 ").count(), 3, "{out}");
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
    assert!(
        out.contains("\"status\":\"ok\""),
        "the second answer is /healthz: {out}"
    );
}
