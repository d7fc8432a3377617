//! What an administrator watches, against the real binary: `GET /metrics` (parsed by the
//! Prometheus client's own text-format parser, counters moving with files and polls,
//! authentication), the Grafana dashboard's queries, and the progress of a long scan
//! (log lines, `STATUS=` on a notify socket, `/healthz` while it answers `503`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SETTLE: u64 = 150;
const API_KEY: &str = "metrics-k3y-0123456789";

/// Prints each sample as JSON: `[{"family","type","name","labels","value"}]`.
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// A Python with the `prometheus_client` package (the PATH's, or the system's, where
/// Debian's python3-prometheus-client installs it). `None`: the test skips with one line,
/// or fails where every check must run (`FILETRIGGER_REQUIRE_ROOT_TESTS`, set by CI).
fn python_with_parser(test: &str) -> Option<&'static str> {
    let found = ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import prometheus_client.parser"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        let line = format!(
            "skipped metrics::{test}: needs the prometheus_client Python package \
             (apt-get install python3-prometheus-client)"
        );
        assert!(
            std::env::var_os(REQUIRE_ROOT).is_none(),
            "{line} ({REQUIRE_ROOT} is set, so skipping is a failure)"
        );
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    found
}

/// One parsed sample.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Value,
    value: f64,
}

/// `/metrics` as the Prometheus client parses it.
struct Scrape(Vec<Sample>);

impl Scrape {
    /// Scrapes `d`'s `/metrics` (with `headers`) and parses it with `python`.
    fn of(d: &Daemon, python: &str, headers: &[(&str, &str)]) -> Scrape {
        let r = send(&agent(), "GET", &format!("{}/metrics", d.base()), headers).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        Scrape::parse(python, &r.body)
    }

    fn parse(python: &str, text: &[u8]) -> Scrape {
        let mut child = Command::new(python)
            .args(["-c", PARSER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the parser refused the text: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(text)
        );
        let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        Scrape(
            parsed
                .into_iter()
                .map(|s| Sample {
                    name: s["name"].as_str().unwrap().to_string(),
                    labels: s["labels"].clone(),
                    value: s["value"].as_f64().unwrap(),
                })
                .collect(),
        )
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels[*k].as_str() == Some(*v))
            })
            .map(|s| s.value)
    }

    /// Like [`Scrape::get`], 0 when absent (a labelled counter not yet incremented).
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    fn names(&self) -> BTreeSet<String> {
        self.0.iter().map(|s| s.name.clone()).collect()
    }
}

#[test]
fn metrics_parse_and_move_as_files_arrive_and_polls_are_made() {
    let Some(py) = python_with_parser("metrics_parse_and_move_as_files_arrive_and_polls_are_made")
    else {
        return;
    };
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let before = Scrape::of(&d, py, &[]);
    assert_eq!(before.get("filetrigger_healthy", &[]), Some(1.0));
    assert_eq!(
        before.get("filetrigger_watcher_mode", &[("mode", "inotify")]),
        Some(1.0)
    );
    assert_eq!(
        before.get("filetrigger_watcher_mode", &[("mode", "poll")]),
        Some(0.0)
    );
    assert!(before.get("filetrigger_inotify_watches", &[]).unwrap() >= 1.0);
    assert!(
        before
            .get("filetrigger_inotify_watches_limit", &[])
            .unwrap()
            >= 1.0
    );
    assert_eq!(
        before.get(
            "filetrigger_scan_duration_seconds_count",
            &[("kind", "full")]
        ),
        Some(1.0),
        "the start-up scan"
    );

    let mut p = Poller::start(&d.trigger_url());
    for i in 0..3 {
        site.put(&format!("m{i}.txt"), format!("file {i}").as_bytes());
    }
    p.drain(3, WAIT);
    p.poll();
    let sent: f64 = p.got.iter().map(|g| g.body.to_string().len() as f64).sum();
    let after = Scrape::of(&d, py, &[]);

    let folder = [("folder", "default")];
    assert_eq!(after.get("filetrigger_files_indexed", &folder), Some(3.0));
    assert_eq!(after.get("filetrigger_files_pending", &folder), Some(0.0));
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.count(name, labels) - before.count(name, labels)
    };
    assert_eq!(moved("filetrigger_files_offered_total", &folder), 3.0);
    let trigger = |status| [("route", "trigger"), ("status", status)];
    assert_eq!(
        moved("filetrigger_http_requests_total", &trigger("200")),
        3.0
    );
    assert!(moved("filetrigger_http_requests_total", &trigger("202")) >= 2.0);
    assert_eq!(
        moved(
            "filetrigger_http_requests_total",
            &[("route", "metrics"), ("status", "200")]
        ),
        1.0,
        "the first scrape is counted once answered"
    );
    assert_eq!(
        moved("filetrigger_poll_duration_seconds_count", &[]),
        p.polls as f64
    );
    assert!(
        moved("filetrigger_http_sent_bytes_total", &[("route", "trigger")]) >= sent * 0.9,
        "about the bodies of the three files were sent"
    );
    assert!(moved("filetrigger_index_commit_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(
        after.get("filetrigger_index_commit_failures_total", &[]),
        Some(0.0)
    );
}

/// A site whose trigger needs the API key [`API_KEY`].
fn keyed_site() -> (Site, Vec<(String, String)>) {
    let site = Site::new();
    let keys = site.tmp.path().join("api-keys");
    std::fs::write(&keys, format!("{API_KEY}\n")).unwrap();
    let mut env = site.env(SETTLE);
    env.push((
        "FILETRIGGER__AUTH__API_KEY_FILE".into(),
        keys.display().to_string(),
    ));
    (site, env)
}

#[test]
fn metrics_need_the_same_credentials_unless_public_on_loopback() {
    let (site, env) = keyed_site();
    let d = Daemon::start(site.tmp.path(), &env);
    let url = format!("{}/metrics", d.base());
    let a = agent();
    assert_eq!(send(&a, "GET", &url, &[]).unwrap().status, 401);
    assert_eq!(
        send(&a, "GET", &url, &[("x-api-key", "wrong")])
            .unwrap()
            .status,
        401
    );
    let ok = send(&a, "GET", &url, &[("x-api-key", API_KEY)]).unwrap();
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("filetrigger_files_indexed"));
    assert_eq!(
        send(&a, "POST", &url, &[("x-api-key", API_KEY)])
            .unwrap()
            .status,
        405
    );
    drop(d);

    let mut env = env;
    env.push((
        "FILETRIGGER__METRICS__PUBLIC_ON_LOOPBACK".into(),
        "true".into(),
    ));
    let d = Daemon::start(site.tmp.path(), &env);
    assert_eq!(
        send(&a, "GET", &format!("{}/metrics", d.base()), &[])
            .unwrap()
            .status,
        200,
        "public to a loopback peer"
    );
    assert_eq!(
        send(&a, "GET", &d.trigger_url(), &[]).unwrap().status,
        401,
        "the trigger still needs the key"
    );
}

#[test]
fn every_metric_the_dashboard_queries_is_served() {
    let Some(py) = python_with_parser("every_metric_the_dashboard_queries_is_served") else {
        return;
    };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/grafana-dashboard.json"
    ))
    .unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() > 5));
    let mut queried = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("filetrigger_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        queried.insert(name);
    }
    assert!(queried.len() >= 10, "{queried:?}");

    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    // Some traffic, so that the labelled request counters have their series.
    let mut p = Poller::start(&d.trigger_url());
    site.put("one.txt", b"1");
    p.drain(1, WAIT);
    let _ = Scrape::of(&d, py, &[]);
    let served = Scrape::of(&d, py, &[]).names();
    let missing: Vec<_> = queried.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the daemon does not serve: {missing:?}\nserved: {served:?}"
    );
}

/// Notifications received on a socket, collected by a thread.
fn listen(sock: UnixDatagram) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        // Ends when the test is over (the strong count drops to one).
        while Arc::strong_count(&sink) > 1 {
            if let Ok(n) = sock.recv(&mut buf) {
                // One datagram holds newline-separated assignments (sd_notify(3)).
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock().unwrap().extend(text.lines().map(str::to_owned));
            }
        }
    });
    seen
}

#[test]
fn a_long_scan_reports_progress_in_the_log_to_systemd_and_in_healthz() {
    // 200,000 empty files in 2,000 directories: several seconds of start-up scan for the
    // debug build. On tmpfs when there is one: creating them on a loaded ext4 disk takes a
    // minute, on tmpfs a few seconds.
    let shm = std::path::Path::new("/dev/shm");
    let tree = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    for d in 0..2_000 {
        let dir = tree.path().join(format!("d{d:04}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..100 {
            std::fs::File::create(dir.join(format!("f{f:03}"))).unwrap();
        }
    }
    let site = Site::new();
    let sock_path = site.tmp.path().join("notify.sock");
    let seen = listen(UnixDatagram::bind(&sock_path).unwrap());
    let mut env = site.env(SETTLE);
    env.push((
        "FILETRIGGER__WATCH__DIR".into(),
        tree.path().display().to_string(),
    ));
    env.push(("NOTIFY_SOCKET".into(), sock_path.display().to_string()));
    let d = Daemon::spawn(site.tmp.path(), &env);

    // /healthz shows the walk's counts while it answers 503.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut during = None;
    loop {
        let r = get(&format!("{}/healthz", d.base())).unwrap();
        let body = r.json();
        if r.status == 200 {
            break;
        }
        assert_eq!((r.status, body["status"].as_str()), (503, Some("starting")));
        if body["scan"]["files"].as_u64().is_some_and(|n| n > 0) {
            during.get_or_insert(body);
        }
        assert!(Instant::now() < deadline, "never ready:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = during.expect("no /healthz answer during the start-up scan showed its counts");
    assert!(
        during["scan"]["directories"].as_u64().unwrap() > 0,
        "{during}"
    );
    assert!(during["scan"]["filesPerSecond"].is_u64(), "{during}");
    assert!(during["scan"]["elapsedSeconds"].is_u64(), "{during}");

    // STATUS= while scanning, then the idle summary once no full scan runs.
    let deadline = Instant::now() + Duration::from_secs(180);
    while !seen
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.starts_with("STATUS=watching ") && m.contains(" files, inotify, "))
    {
        assert!(
            Instant::now() < deadline,
            "no idle summary: {:?}\n{}",
            seen.lock().unwrap(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = seen.lock().unwrap().clone();
    let progress: Vec<&String> = seen
        .iter()
        .filter(|m| m.starts_with("STATUS=start-up scan: "))
        .collect();
    assert!(
        progress
            .iter()
            .any(|m| m.contains(" directories, ") && m.contains(" files/s, ")),
        "{seen:?}"
    );
    let ready = seen.iter().position(|m| m == "READY=1").unwrap();
    assert!(
        seen[..ready]
            .iter()
            .any(|m| m.starts_with("STATUS=start-up scan: ")),
        "progress comes before READY=1: {seen:?}"
    );

    // Log lines with the numbers, from a full scan (the start-up one, or the second scan
    // that confirms the many new files: both walk the whole tree).
    let log = d.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" scanning ") && l.contains("files_per_s="))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("directories=")
            && l.contains("files=")
            && l.contains("elapsed_s=")),
        "no progress line in the log:\n{log}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "progress: {}\n{}",
        progress.last().map_or("", |m| m.as_str()),
        lines.first().unwrap_or(&"")
    );
}
