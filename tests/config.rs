//! The configuration contract of PROTOCOL.md against the real binary: every bad setting
//! stops start-up with exit code 2 and one line on stderr that names the key; one daemon
//! per state directory; the defaults with no arguments; SIGTERM is a clean exit.

// Helpers outside #[test] functions panic on failure too, as in tests/common.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// The site's environment with `key` set to `value` (replacing it if present).
fn env_with(site: &Site, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = site.env(SETTLE);
    for (k, v) in pairs {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

/// Asserts a start-up failure for a bad setting: exit code 2, exactly one non-empty line
/// on stderr, naming `key` (and every string in `also`), and no panic.
fn assert_config_error(what: &str, out: &Output, key: &str, also: &[&str]) {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit status {:?}, stderr:\n{}",
        out.status,
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked"),
        "{what}: panicked:\n{}",
        out.stderr
    );
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one line on stderr, got {}:\n{}",
        lines.len(),
        out.stderr
    );
    assert!(
        lines[0].contains(key),
        "{what}: the line does not name `{key}`: {}",
        lines[0]
    );
    for s in also {
        assert!(
            lines[0].contains(s),
            "{what}: the line does not mention `{s}`: {}",
            lines[0]
        );
    }
}

/// Runs the binary in the site's directory with `--config FILE` holding `toml`. The
/// environment layer wins over the file, so the site's variables for the keys that the
/// file sets are left out.
fn run_with_file(site: &Site, name: &str, toml: &str) -> Output {
    let file = site.tmp.path().join(name);
    std::fs::write(&file, toml).unwrap();
    let env: Vec<_> = site
        .env(SETTLE)
        .into_iter()
        .filter(|(k, _)| {
            let key = k.rsplit("__").next().unwrap().to_ascii_lowercase();
            !toml.contains(&format!("{key} ="))
        })
        .collect();
    run_to_exit(site.tmp.path(), &["--config", file.to_str().unwrap()], &env)
}

fn run_with_env(site: &Site, pairs: &[(&str, &str)]) -> Output {
    run_to_exit(site.tmp.path(), &[], &env_with(site, pairs))
}

#[test]
fn a_bad_number_names_its_key_in_a_file_and_in_the_environment() {
    let site = Site::new();
    let out = run_with_file(&site, "a.toml", "[watch]\nsettle_ms = \"abc\"\n");
    assert_config_error("file settle_ms=abc", &out, "watch.settle_ms", &[]);
    let out = run_with_env(&site, &[("FILETRIGGER__WATCH__SETTLE_MS", "abc")]);
    assert_config_error("env settle_ms=abc", &out, "watch.settle_ms", &[]);
    let out = run_with_file(&site, "neg.toml", "[watch]\nsettle_ms = -5\n");
    assert_config_error("file settle_ms=-5", &out, "watch.settle_ms", &[]);
    let out = run_with_env(&site, &[("FILETRIGGER__WATCH__SETTLE_MS", "")]);
    assert_config_error("env settle_ms empty", &out, "watch.settle_ms", &[]);
    let out = run_with_env(&site, &[("FILETRIGGER__WATCH__SETTLE_MS", "86400001")]);
    assert_config_error("env settle_ms too large", &out, "watch.settle_ms", &[]);
}

#[test]
fn other_bad_values_name_their_key() {
    let site = Site::new();
    for (k, v, key) in [
        ("FILETRIGGER__WATCH__RECURSIVE", "maybe", "watch.recursive"),
        (
            "FILETRIGGER__WATCH__RESCAN_INTERVAL_S",
            "0",
            "watch.rescan_interval_s",
        ),
        (
            "FILETRIGGER__TRIGGER__RETRY_AFTER_S",
            "99999",
            "trigger.retry_after_s",
        ),
        (
            "FILETRIGGER__TRIGGER__MAX_CONTENT_BYTES",
            "-1",
            "trigger.max_content_bytes",
        ),
        ("FILETRIGGER__WATCH__DIR", "", "watch.dir"),
        ("FILETRIGGER__STATE__DIR", "", "state.dir"),
    ] {
        let out = run_with_env(&site, &[(k, v)]);
        assert_config_error(&format!("{k}={v}"), &out, key, &[]);
    }
    let out = run_with_file(&site, "rec.toml", "[watch]\nrecursive = \"maybe\"\n");
    assert_config_error("file recursive=maybe", &out, "watch.recursive", &[]);
}

#[test]
fn bad_writer_settings_name_their_key() {
    let site = Site::new();
    for (k, v, key, also) in [
        (
            "FILETRIGGER__WATCH__SETTLE_AFTER_CLOSE_MS",
            "abc",
            "watch.settle_after_close_ms",
            "",
        ),
        (
            "FILETRIGGER__WATCH__SETTLE_AFTER_CLOSE_MS",
            "86400001",
            "watch.settle_after_close_ms",
            "one day",
        ),
        (
            "FILETRIGGER__WATCH__MAX_OPEN_HOLD_S",
            "0",
            "watch.max_open_hold_s",
            "604800",
        ),
        (
            "FILETRIGGER__WATCH__MAX_OPEN_HOLD_S",
            "604801",
            "watch.max_open_hold_s",
            "604800",
        ),
        (
            "FILETRIGGER__WATCH__POLL_CONFIRM",
            "twice",
            "watch.poll_confirm",
            "two_scans",
        ),
    ] {
        let out = run_with_env(&site, &[(k, v)]);
        let also: &[&str] = if also.is_empty() { &[] } else { &[also] };
        assert_config_error(&format!("{k}={v}"), &out, key, also);
    }
    let out = run_with_file(&site, "pc.toml", "[watch]\npoll_confirm = \"two-scans\"\n");
    assert_config_error(
        "file poll_confirm=two-scans",
        &out,
        "watch.poll_confirm",
        &[],
    );
    let out = run_with_file(&site, "hold.toml", "[watch]\nmax_open_hold_s = -1\n");
    assert_config_error(
        "file max_open_hold_s=-1",
        &out,
        "watch.max_open_hold_s",
        &[],
    );
}

#[test]
fn server_listen_that_is_not_a_socket_address_is_refused() {
    let site = Site::new();
    for bad in [
        "localhost",
        "127.0.0.1",
        "not an address",
        ":8080",
        "127.0.0.1:99999",
    ] {
        let out = run_with_env(&site, &[("FILETRIGGER__SERVER__LISTEN", bad)]);
        assert_config_error(&format!("listen={bad}"), &out, "server.listen", &[]);
    }
    let out = run_with_file(
        &site,
        "listen.toml",
        "[server]\nlisten = \"localhost:80\"\n",
    );
    assert_config_error("file listen=localhost:80", &out, "server.listen", &[]);
}

#[test]
fn a_listen_address_already_in_use_is_refused_naming_the_key() {
    let site = Site::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run_with_env(&site, &[("FILETRIGGER__SERVER__LISTEN", &addr)]);
    assert_config_error("listen on a busy port", &out, "server.listen", &[&addr]);
}

#[test]
fn unknown_keys_are_refused_in_a_file_and_in_the_environment() {
    let site = Site::new();
    let out = run_with_file(&site, "u.toml", "[watch]\nsettle = 5\n");
    assert_config_error("file watch.settle", &out, "watch.settle", &[]);
    let out = run_with_env(&site, &[("FILETRIGGER__WATCH__SETTLE", "5")]);
    assert_config_error("env watch.settle", &out, "watch.settle", &[]);
    let out = run_with_file(&site, "sec.toml", "[nope]\nx = 1\n");
    assert_config_error("file [nope]", &out, "nope", &[]);
    let out = run_with_file(&site, "top.toml", "foo = 1\n");
    assert_config_error("file top-level foo", &out, "foo", &[]);
    let out = run_with_env(&site, &[("FILETRIGGER__NOPE__X", "1")]);
    assert_config_error("env nope.x", &out, "nope", &[]);
    let out = run_with_env(&site, &[("FILETRIGGER__SERVER__PUBLIC_URI", "https://x")]);
    assert_config_error("env server.public_uri", &out, "server.public_uri", &[]);
}

#[test]
fn a_watch_dir_that_is_a_regular_file_is_refused() {
    let site = Site::new();
    let file = site.tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = run_with_env(
        &site,
        &[("FILETRIGGER__WATCH__DIR", file.to_str().unwrap())],
    );
    assert_config_error("watch.dir is a file", &out, "watch.dir", &[]);
    // Below a regular file, it cannot be created either.
    let below = file.join("inbox");
    let out = run_with_env(
        &site,
        &[("FILETRIGGER__WATCH__DIR", below.to_str().unwrap())],
    );
    assert_config_error("watch.dir below a file", &out, "watch.dir", &[]);
}

#[test]
fn a_state_dir_that_cannot_be_created_or_written_is_refused() {
    let site = Site::new();
    let file = site.tmp.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    // Tests run as root, so permissions do not stop a write; a regular file in the path
    // and /proc do.
    for (what, dir) in [
        ("below a regular file", file.join("state")),
        ("a regular file", file.clone()),
        ("deeper below a regular file", file.join("a/b/state")),
        (
            "in /proc",
            Path::new("/proc/filetrigger-test-state").to_path_buf(),
        ),
        (
            "/proc/self, a directory that cannot be written",
            "/proc/self".into(),
        ),
    ] {
        let out = run_with_env(&site, &[("FILETRIGGER__STATE__DIR", dir.to_str().unwrap())]);
        assert_config_error(&format!("state.dir {what}"), &out, "state.dir", &[]);
    }
}

#[test]
fn a_config_file_that_does_not_exist_or_is_not_a_file_is_refused() {
    let site = Site::new();
    let missing = site.tmp.path().join("missing.toml");
    let out = run_to_exit(
        site.tmp.path(),
        &["--config", missing.to_str().unwrap()],
        &site.env(SETTLE),
    );
    assert_config_error("missing --config", &out, "--config", &["missing.toml"]);
    let out = run_to_exit(
        site.tmp.path(),
        &["--config", site.tmp.path().to_str().unwrap()],
        &site.env(SETTLE),
    );
    assert_config_error("--config a directory", &out, "--config", &[]);
}

#[test]
fn a_mistyped_command_line_argument_stops_start_up_with_exit_code_2() {
    let site = Site::new();
    // The argument parser's own message: it names the argument, but takes several lines
    // (usage and a hint), unlike the one-line configuration errors.
    for (args, named) in [
        (&["--confg", "x.toml"][..], "--confg"),
        (&["extra"][..], "extra"),
        (&["--config"][..], "--config"),
    ] {
        let out = run_to_exit(site.tmp.path(), args, &site.env(SETTLE));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(named), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_toml_syntax_error_is_one_line_naming_the_file() {
    let site = Site::new();
    for (name, text) in [
        ("syn1.toml", "[watch\nsettle_ms = 5\n"),
        ("syn2.toml", "[watch]\nsettle_ms = = 5\n"),
        ("syn3.toml", "[watch]\nexclude = [\"*.tmp\",\n"),
        ("syn4.toml", "[watch]\nsettle_ms = 5\nsettle_ms = 6\n"),
    ] {
        let out = run_with_file(&site, name, text);
        assert_config_error(name, &out, name, &[]);
    }
}

#[test]
fn server_public_url_must_be_an_http_url_without_a_query() {
    let site = Site::new();
    for bad in [
        "ftp://x",
        "x",
        "https://gw.example/ft?a=b",
        "https://",
        "/relative",
        // Credentials would end up in every Location (kept in the run history).
        "https://user:secret@gw.example/ft",
    ] {
        let out = run_with_env(&site, &[("FILETRIGGER__SERVER__PUBLIC_URL", bad)]);
        assert_config_error(&format!("public_url={bad}"), &out, "server.public_url", &[]);
    }
}

#[test]
fn a_bad_glob_names_its_list() {
    let site = Site::new();
    let out = run_with_env(&site, &[("FILETRIGGER__WATCH__EXCLUDE", "*.tmp,a[")]);
    assert_config_error("env exclude a[", &out, "watch.exclude", &["a["]);
    let out = run_with_env(&site, &[("FILETRIGGER__WATCH__INCLUDE", "{a,b")]);
    assert_config_error("env include {a,b", &out, "watch.include", &[]);
    let out = run_with_file(&site, "glob.toml", "[watch]\nexclude = [\"**/[z\"]\n");
    assert_config_error("file exclude [z", &out, "watch.exclude", &[]);
    let out = run_with_file(&site, "notlist.toml", "[watch]\nexclude = 5\n");
    assert_config_error("file exclude = 5", &out, "watch.exclude", &[]);
}

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_and_the_first_keeps_serving() {
    let site = Site::new();
    let first = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&first.trigger_url());
    // The second one watches another directory, but shares the state directory.
    let other_inbox = site.tmp.path().join("other-inbox");
    let out = run_to_exit(
        site.tmp.path(),
        &[],
        &env_with(
            &site,
            &[("FILETRIGGER__WATCH__DIR", other_inbox.to_str().unwrap())],
        ),
    );
    assert!(!out.status.success(), "second daemon: {:?}", out.status);
    assert!(
        out.status.code().is_some(),
        "killed by a signal: {:?}",
        out.status
    );
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
    assert!(out.stderr.contains("state"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    // The first one still serves.
    site.put("after-second.txt", b"first still here");
    let got = p.drain(1, WAIT).to_vec();
    assert_eq!(p.paths(), vec!["after-second.txt"], "{got:?}");
    assert_eq!(got[0].content(), b"first still here");
    assert_eq!(first.health()["status"], "ok");
    // The index still holds exactly what the first daemon indexed.
    assert_eq!(first.health()["filesIndexed"], 1);
}

#[test]
fn no_arguments_in_an_empty_directory_serves_the_defaults() {
    let cwd = tempfile::tempdir().unwrap();
    // Only the port is changed: 8080 may be busy on a shared machine.
    let d = Daemon::start(
        cwd.path(),
        &[(
            "FILETRIGGER__SERVER__LISTEN".to_string(),
            "127.0.0.1:0".to_string(),
        )],
    );
    assert!(cwd.path().join("inbox").is_dir(), "./inbox not created");
    assert!(cwd.path().join("state").is_dir(), "./state not created");
    assert!(
        cwd.path().join("state/index.redb").is_file(),
        "./state/index.redb not created"
    );
    let h = get(&format!("{}/healthz", d.base())).unwrap();
    assert_eq!(h.status, 200);
    let r = get(&d.trigger_url()).unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(r.retry_after(), 15, "default trigger.retry_after_s");
    // The default watched directory is ./inbox, relative to the working directory.
    let mut p = Poller::at(r.location());
    // Taken before the file exists, so the settle time cannot have started earlier.
    let written = std::time::Instant::now();
    std::fs::write(cwd.path().join("inbox/.d.pdf.tmp"), b"%PDF default").unwrap();
    std::fs::rename(
        cwd.path().join("inbox/.d.pdf.tmp"),
        cwd.path().join("inbox/d.pdf"),
    )
    .unwrap();
    let got = p.drain(1, WAIT).to_vec();
    assert_eq!(p.paths(), vec!["d.pdf"], "{got:?}");
    assert_eq!(got[0].content(), b"%PDF default");
    // Renamed into place with nobody writing: it counts as closed at the rename, and the
    // default quiet time after a close is 300 ms (`watch.settle_after_close_ms`): not
    // offered before that, and well before the 2 s a file found by a scan waits.
    let took = written.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "offered after {took:?}, before the default quiet time after a close"
    );
}

#[test]
fn sigterm_stops_the_daemon_with_status_0() {
    let site = Site::new();
    // The shutdown races with itself (the lost race is more likely once the daemon has
    // been at work for a moment); several rounds make a lost race all but certain.
    for round in 0..10 {
        let d = site.daemon(SETTLE, &[]);
        let mut p = Poller::start(&d.trigger_url());
        site.put(&format!("r{round}.txt"), b"x");
        assert_eq!(p.drain(1, WAIT).len(), 1);
        let log = d.log.clone();
        let status = d.terminate();
        wait_for("the last log line", Duration::from_secs(5), || {
            log.lock().unwrap().contains("stopped")
        });
        let log = log.lock().unwrap().clone();
        assert!(
            status.success(),
            "round {round}: SIGTERM gave {status:?}; log:\n{log}"
        );
        assert!(log.contains("shutting down"), "round {round}:\n{log}");
        assert!(!log.contains("panicked"), "round {round}:\n{log}");
    }
}
