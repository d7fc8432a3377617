//! The administrator's commands of the real binary (`check`, `status`, `poll`) and the
//! shape of the daemon's log lines (`log.format = "json"`, journald's priority prefixes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use filetrigger::stamp::Stamp;
use serde_json::Value;

/// Runs `filetrigger ARGS` in `cwd` with exactly `env` (plus PATH) to completion.
fn ft(cwd: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("filetrigger {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn with(env: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// `check` in the site, with its environment and `extra`: (exit code, stdout).
fn check(site: &Site, extra: &[(&str, &str)]) -> (i32, String) {
    let out = ft(site.tmp.path(), &["check"], &with(&site.env(SETTLE), extra));
    (out.status.code().unwrap(), text(&out.stdout))
}

#[test]
fn check_passes_a_good_configuration() {
    let site = Site::new();
    let (code, out) = check(&site, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("are ok"), "{out}");
    assert!(
        !site.state.join("index.redb").exists(),
        "check created the index"
    );
    // Only notes, no problem lines: each line is a note or the summary.
    for line in out.lines() {
        assert!(
            line.starts_with("filetrigger: note: ") || line.contains("are ok"),
            "{line}"
        );
    }
}

#[test]
fn check_on_the_defaults_in_a_new_directory_passes_with_notes() {
    // What `serve` starts on (it creates ./inbox and ./state) `check` passes: the missing
    // directories are notes, not problems. Only the port is changed (8080 may be busy).
    let cwd = tempfile::tempdir().unwrap();
    let out = ft(
        cwd.path(),
        &["check"],
        &[(
            "FILETRIGGER__SERVER__LISTEN".to_string(),
            "127.0.0.1:0".to_string(),
        )],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("note: watch.dir: ./inbox does not exist yet; serve creates it"),
        "{stdout}"
    );
    assert!(!cwd.path().join("inbox").exists(), "check created ./inbox");
}

#[test]
fn check_gives_one_line_per_problem_and_exit_2() {
    let site = Site::new();
    let file = site.tmp.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let garbage = site.tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "short\n").unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let missing = site.tmp.path().join("missing").display().to_string();
    // A watched directory that serve cannot create (its parent is a file).
    let uncreatable = file.join("inbox").display().to_string();
    let file_s = file.display().to_string();
    let garbage_s = garbage.display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("FILETRIGGER__WATCH__SETTLE_MS", "soon")],
            "watch.settle_ms",
        ),
        (vec![("FILETRIGGER__WATCH__NOPE", "1")], "watch.nope"),
        (
            vec![("FILETRIGGER__WATCH__DIR", &uncreatable)],
            "watch.dir: ",
        ),
        (
            vec![("FILETRIGGER__WATCH__DIR", &file_s)],
            "is not a directory",
        ),
        (vec![("FILETRIGGER__STATE__DIR", &file_s)], "state.dir: "),
        (
            vec![("FILETRIGGER__AUTH__BASIC_FILE", &missing)],
            "auth.basic_file",
        ),
        (
            vec![("FILETRIGGER__AUTH__API_KEY_FILE", &garbage_s)],
            "auth.api_key_file",
        ),
        (
            vec![
                ("FILETRIGGER__SERVER__TLS__CERT", &garbage_s),
                ("FILETRIGGER__SERVER__TLS__KEY", &garbage_s),
            ],
            "server.tls.cert",
        ),
        (
            vec![("FILETRIGGER__SERVER__LISTEN", &busy_addr)],
            "server.listen: ",
        ),
    ];
    for (extra, want) in cases {
        let (code, out) = check(&site, &extra);
        assert_eq!(code, 2, "{extra:?}: {out}");
        let problems: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with("filetrigger: note:") && !l.contains("problem"))
            .collect();
        assert_eq!(problems.len(), 1, "{extra:?}: {out}");
        assert!(problems[0].contains(want), "{extra:?}: {out}");
        assert!(out.contains("1 problem"), "{out}");
    }
    // Several at once: each its own line.
    let (code, out) = check(
        &site,
        &[
            ("FILETRIGGER__WATCH__DIR", &uncreatable),
            ("FILETRIGGER__AUTH__BASIC_FILE", &missing),
            ("FILETRIGGER__SERVER__LISTEN", &busy_addr),
        ],
    );
    assert_eq!(code, 2);
    assert!(out.contains(": 3 problems"), "{out}");
    // An index that is not one.
    std::fs::create_dir_all(&site.state).unwrap();
    std::fs::write(site.state.join("index.redb"), vec![7u8; 8192]).unwrap();
    let (code, out) = check(&site, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("state.dir: cannot open the index"), "{out}");
    drop(busy);
}

#[test]
fn check_as_the_service_user_finds_what_it_cannot_read_or_write() {
    needs_root!("run check as nobody");
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let site = Site::new();
    std::fs::create_dir_all(&site.state).unwrap();
    for d in [site.tmp.path(), site.state.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&site.inbox, std::fs::Permissions::from_mode(0o700)).unwrap();
    let bin = site.tmp.path().join("filetrigger");
    std::fs::copy(env!("CARGO_BIN_EXE_filetrigger"), &bin).unwrap();
    let out = Command::new(&bin)
        .arg("check")
        .current_dir(site.tmp.path())
        .env_clear()
        .envs(site.env(SETTLE))
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("watch.dir: ")
            && stdout.contains("cannot be listed by this user (uid 65534)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("state.dir: ") && stdout.contains("is not writable by this user"),
        "{stdout}"
    );
    assert!(stdout.contains(": 2 problems"), "{stdout}");
}

#[test]
fn check_recognises_a_running_daemons_index_and_never_changes_it() {
    let site = Site::new();
    site.put("a.txt", b"a");
    let d = site.daemon(SETTLE, &[]);
    wait_for("a.txt indexed", WAIT, || indexed(&d) == 1);
    let (code, out) = check(&site, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("in use by a running filetrigger"), "{out}");
    assert!(out.contains("index in use"), "{out}");

    // Killed: the index needs a repair, which only serve does.
    d.kill9();
    let index = site.state.join("index.redb");
    let before = std::fs::read(&index).unwrap();
    let (code, out) = check(&site, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not closed cleanly"), "{out}");
    assert_eq!(
        std::fs::read(&index).unwrap(),
        before,
        "check changed the index"
    );

    // Stopped cleanly: it opens, read-only.
    let d = site.daemon(SETTLE, &[]);
    assert!(d.terminate().success());
    let before = std::fs::read(&index).unwrap();
    let (code, out) = check(&site, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("index: 1 files"), "{out}");
    assert_eq!(
        std::fs::read(&index).unwrap(),
        before,
        "check changed the index"
    );
}

#[test]
fn status_summarises_a_running_daemon() {
    let site = Site::new();
    site.put("a.txt", b"a");
    site.put("sub/b.txt", b"b");
    let d = site.daemon(SETTLE, &[]);
    wait_for("two files indexed", WAIT, || indexed(&d) == 2);
    let out = ft(
        site.tmp.path(),
        &["status", "--url", &d.base()],
        &site.env(SETTLE),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(": ok (200)"), "{stdout}");
    assert!(stdout.contains("files indexed: 2"), "{stdout}");
    assert!(stdout.contains("pending:       0"), "{stdout}");
    assert!(stdout.contains("watcher:       inotify"), "{stdout}");
    assert!(stdout.contains("last scan:     20"), "{stdout}");
    let base = d.base();
    drop(d);
    let out = ft(site.tmp.path(), &["status", "--url", &base], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("not answering"));
}

#[test]
fn status_and_poll_send_the_credentials() {
    let site = Site::new();
    let keys = site.tmp.path().join("keys");
    std::fs::write(&keys, "# the key\n0123456789abcdef0123\n").unwrap();
    let keys_s = keys.display().to_string();
    site.put("a.txt", b"a");
    let d = site.daemon(SETTLE, &[("FILETRIGGER__AUTH__API_KEY_FILE", &keys_s)]);
    wait_for("a.txt indexed", WAIT, || indexed(&d) == 1);
    let poll = |env: &[(String, String)]| {
        ft(
            site.tmp.path(),
            &[
                "poll",
                "--url",
                &d.base(),
                "--since",
                "2000-01-01T00:00:00Z",
            ],
            env,
        )
    };
    // No key: 401, said plainly.
    let out = poll(&site.env(SETTLE));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    // The key from the configured file.
    let env = with(
        &site.env(SETTLE),
        &[("FILETRIGGER__AUTH__API_KEY_FILE", &keys_s)],
    );
    let out = poll(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"path\":\"a.txt\""));
    // The key in the environment.
    let env = with(
        &site.env(SETTLE),
        &[("FILETRIGGER_API_KEY", "0123456789abcdef0123")],
    );
    let out = poll(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn poll_prints_one_json_line_per_file_and_stops_when_nothing_more_waits() {
    let site = Site::new();
    site.put("a.txt", b"hello");
    site.put("b.txt", b"world");
    let d = site.daemon(SETTLE, &[]);
    wait_for("two files indexed", WAIT, || indexed(&d) == 2);
    let args = [
        "poll",
        "--url",
        &d.base(),
        "--since",
        "2000-01-01T00:00:00Z",
    ];
    let out = ft(site.tmp.path(), &args, &site.env(SETTLE));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut paths: Vec<&str> = lines.iter().map(|v| v["path"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(paths, ["a.txt", "b.txt"]);
    assert!(lines.iter().all(|v| v.get("content").is_none()));
    assert!(lines.iter().all(|v| v["indexedAt"].is_string()));
    let stderr = text(&out.stderr);
    let resume = stderr.split("resume with --since ").nth(1).unwrap().trim();
    assert_eq!(resume, lines[1]["indexedAt"].as_str().unwrap());

    let mut with_content = args.to_vec();
    with_content.push("--content");
    let out = ft(site.tmp.path(), &with_content, &site.env(SETTLE));
    let first: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    let want = if first["path"] == "a.txt" {
        "aGVsbG8="
    } else {
        "d29ybGQ="
    };
    assert_eq!(first["content"]["$content"], want);

    // Without --since: the engine's first call, a 202 and nothing printed.
    let out = ft(site.tmp.path(), &["poll", "--url", &d.base()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let out = ft(
        site.tmp.path(),
        &["poll", "--url", &d.base(), "--since", "yesterday"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--since"));
}

#[test]
fn poll_follow_prints_each_new_file_once_and_stops_cleanly_on_sigint() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[("FILETRIGGER__TRIGGER__RETRY_AFTER_S", "1")]);
    let since = Stamp::now().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .args(["poll", "--follow", "--url", &d.base(), "--since", &since])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            all.push_str(&line);
            sink.lock().unwrap().push(line);
        }
        all
    });
    for n in ["a", "b", "c"] {
        site.put(&format!("{n}.txt"), n.as_bytes());
    }
    wait_for("three lines", WAIT, || lines.lock().unwrap().len() >= 3);
    for n in ["d", "e"] {
        site.put(&format!("sub/{n}.txt"), n.as_bytes());
    }
    wait_for("five lines", WAIT, || lines.lock().unwrap().len() >= 5);
    // Through a quiet spell (several 202s), then Ctrl-C.
    std::thread::sleep(Duration::from_millis(2500));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "poll --follow ignored SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let all = reader.join().unwrap();
    assert!(all.ends_with('\n'), "half a line: {all:?}");
    let mut paths: Vec<String> = all
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["path"].as_str().unwrap().to_string()
        })
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["a.txt", "b.txt", "c.txt", "sub/d.txt", "sub/e.txt"],
        "each file exactly once"
    );
}

/// Starts the daemon and collects its stderr; returns once `ready(line)` gave an address.
fn daemon_with_log(
    site: &Site,
    extra: &[(&str, &str)],
    addr_of: fn(&str) -> Option<String>,
) -> (std::process::Child, String, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .current_dir(site.tmp.path())
        .env_clear()
        .envs(with(&site.env(SETTLE), extra))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(a) = addr_of(&line) {
                let _ = tx.send(a);
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no address logged: {:?}", lines.lock().unwrap()));
    (child, addr, lines)
}

#[test]
fn json_logs_are_one_object_per_line_without_secrets_or_queries() {
    let site = Site::new();
    let keys = site.tmp.path().join("keys");
    std::fs::write(&keys, "0123456789abcdef-secret-key\n").unwrap();
    let keys_s = keys.display().to_string();
    site.put("a.txt", b"a");
    let (mut child, addr, lines) = daemon_with_log(
        &site,
        &[
            ("FILETRIGGER__LOG__FORMAT", "json"),
            ("FILETRIGGER__AUTH__API_KEY_FILE", &keys_s),
            ("RUST_LOG", "debug"),
        ],
        |l| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["message"] == "listening").then(|| v["addr"].as_str().unwrap().to_string())
        },
    );
    let base = format!("http://{addr}");
    wait_for("a.txt indexed", WAIT, || {
        get(&format!("{base}/healthz"))
            .is_ok_and(|r| r.status == 200 && r.json()["filesIndexed"] == 1)
    });
    let url = format!("{base}/trigger?triggerState=2000-01-01T00:00:00Z&secretparam=hunter2");
    let r = send(
        &agent(),
        "GET",
        &url,
        &[("X-API-Key", "0123456789abcdef-secret-key")],
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let r = send(
        &agent(),
        "GET",
        &url,
        &[("X-API-Key", "wrong-key-but-long-enough")],
    )
    .unwrap();
    assert_eq!(r.status, 401);
    wait_for("the request logged", WAIT, || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("authentication failed"))
    });
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.lock().unwrap();
    assert!(lines.len() > 3);
    for l in lines.iter() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
        assert!(v["message"].is_string(), "{l}");
        for secret in [
            "hunter2",
            "secretparam",
            "secret-key",
            "wrong-key",
            "triggerState=",
        ] {
            assert!(!l.contains(secret), "{secret} logged: {l}");
        }
    }
}

#[test]
fn under_journald_lines_carry_priorities_and_no_timestamp() {
    let site = Site::new();
    let (mut child, addr, lines) = daemon_with_log(&site, &[("JOURNAL_STREAM", "8:12345")], |l| {
        l.split("listening addr=")
            .nth(1)
            .map(|r| r.split_whitespace().next().unwrap().to_string())
    });
    let base = format!("http://{addr}");
    wait_for("healthy", WAIT, || {
        get(&format!("{base}/healthz")).is_ok_and(|r| r.status == 200)
    });
    // A warning: the watched directory disappears.
    std::fs::remove_dir_all(&site.inbox).unwrap();
    wait_for("a warning", WAIT, || {
        lines.lock().unwrap().iter().any(|l| l.starts_with("<4>"))
    });
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.lock().unwrap();
    for l in lines.iter() {
        let prefix = &l[..3.min(l.len())];
        assert!(["<3>", "<4>", "<6>", "<7>"].contains(&prefix), "{l}");
        assert!(!l[3..].trim_start().starts_with("20"), "a timestamp: {l}");
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("<6>") && l.contains("listening")));
}
