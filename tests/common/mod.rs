//! Shared helpers for the black-box tests: a temporary site (watched dir + state dir),
//! the real `filetrigger` binary started on port 0, and a poller that follows `Location`
//! and `Retry-After` the way the Logic Apps engine does (with the seconds scaled down).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use filetrigger::stamp::Stamp;
use serde_json::Value;

/// The engine waits `Retry-After` seconds; tests wait this many milliseconds per second.
pub const MS_PER_RETRY_SECOND: u64 = 10;

/// The settle time (`watch.settle_ms`) most tests start the daemon with.
pub const SETTLE: u64 = 200;

/// How long a test waits for what must come.
pub const WAIT: Duration = Duration::from_secs(30);

/// A quiet window after the last expected offer: several settle periods plus the
/// new-directory follow-up scan. [`Poller::expect_nothing_more`] polls through it, then
/// proves with a fence file that the daemon really got that far.
pub fn quiet(settle_ms: u64) -> Duration {
    Duration::from_millis(settle_ms * 4 + 600)
}

/// The path prefix of the fence files written by [`Poller::expect_nothing_more`].
pub const FENCE_PREFIX: &str = "zz-fence-";

/// A temporary watched directory and state directory.
pub struct Site {
    pub tmp: tempfile::TempDir,
    pub inbox: PathBuf,
    pub state: PathBuf,
    /// Fence files written so far (each is indexed: count them in `filesIndexed`).
    fences: AtomicUsize,
    /// The extension of the next fence files (a test with `watch.include` may need one).
    fence_ext: Mutex<String>,
}

impl Site {
    pub fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let inbox = tmp.path().join("inbox");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&inbox).unwrap();
        Site {
            tmp,
            inbox,
            state,
            fences: AtomicUsize::new(0),
            fence_ext: Mutex::new("txt".into()),
        }
    }

    /// How many fence files [`Poller::expect_nothing_more`] wrote into the watched
    /// directory (they are indexed like any file).
    pub fn fences(&self) -> u64 {
        self.fences.load(Ordering::SeqCst) as u64
    }

    /// Fence files get this extension from now on (for a test whose `watch.include` would
    /// leave `.txt` out).
    pub fn set_fence_ext(&self, ext: &str) {
        *self.fence_ext.lock().unwrap() = ext.to_string();
    }

    /// Writes the next fence file at the top of the watched directory; returns its path.
    fn fence(&self) -> String {
        let n = self.fences.fetch_add(1, Ordering::SeqCst);
        let rel = format!("{FENCE_PREFIX}{n}.{}", self.fence_ext.lock().unwrap());
        self.put(&rel, format!("fence {n}").as_bytes());
        rel
    }

    /// The environment that points a daemon at this site, with a short settle time.
    pub fn env(&self, settle_ms: u64) -> Vec<(String, String)> {
        vec![
            (
                "FILETRIGGER__WATCH__DIR".into(),
                self.inbox.display().to_string(),
            ),
            (
                "FILETRIGGER__STATE__DIR".into(),
                self.state.display().to_string(),
            ),
            ("FILETRIGGER__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "FILETRIGGER__WATCH__SETTLE_MS".into(),
                settle_ms.to_string(),
            ),
        ]
    }

    /// Starts the daemon on this site with `settle_ms` and extra `FILETRIGGER__*` pairs.
    pub fn daemon(&self, settle_ms: u64, extra: &[(&str, &str)]) -> Daemon {
        let mut env = self.env(settle_ms);
        for (k, v) in extra {
            env.push((k.to_string(), v.to_string()));
        }
        Daemon::start(self.tmp.path(), &env)
    }

    /// Writes a file atomically as far as the daemon can tell: to a hidden temporary name,
    /// then renamed into place.
    pub fn put(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.inbox.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&tmp, data).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

/// The output of a finished process.
pub struct Output {
    pub status: ExitStatus,
    pub stderr: String,
}

/// Runs the binary to completion (for start-up failures).
pub fn run_to_exit(cwd: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_filetrigger"));
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return Output { status, stderr };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("filetrigger {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts the binary in `cwd` with exactly `env` (plus PATH), waits until it logs its
    /// address and `/healthz` answers 200.
    pub fn start(cwd: &Path, env: &[(String, String)]) -> Daemon {
        let d = Daemon::spawn(cwd, env);
        d.wait_healthy();
        d
    }

    /// Starts the binary and returns once it logged its address (not yet healthy).
    pub fn spawn(cwd: &Path, env: &[(String, String)]) -> Daemon {
        Daemon::spawn_with(cwd, env, |_| {})
    }

    /// [`Daemon::start`] as another user (needs root): the process runs with `uid` and
    /// `gid` (std drops the supplementary groups when root sets a uid). It runs a copy of
    /// the binary placed in `cwd` (which that user must be able to enter), since
    /// `target/` may lie under a directory only its owner can enter (a clone in `/root`
    /// or in `mktemp -d`).
    pub fn start_as(cwd: &Path, env: &[(String, String)], uid: u32, gid: u32) -> Daemon {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let dir = cwd.join(".bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("filetrigger");
        std::fs::copy(env!("CARGO_BIN_EXE_filetrigger"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = Daemon::spawn_program(&exe, cwd, env, |cmd| {
            cmd.uid(uid).gid(gid);
        });
        d.wait_healthy();
        d
    }

    /// [`Daemon::spawn`], with `adjust` applied to the command before it runs.
    pub fn spawn_with(
        cwd: &Path,
        env: &[(String, String)],
        adjust: impl FnOnce(&mut Command),
    ) -> Daemon {
        Daemon::spawn_program(
            Path::new(env!("CARGO_BIN_EXE_filetrigger")),
            cwd,
            env,
            adjust,
        )
    }

    /// [`Daemon::spawn_with`] for the binary at `program`.
    fn spawn_program(
        program: &Path,
        cwd: &Path,
        env: &[(String, String)],
        adjust: impl FnOnce(&mut Command),
    ) -> Daemon {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        adjust(&mut cmd);
        // A copy of the binary just written (`start_as`) can be "busy" for a moment: a
        // test on another thread that forks meanwhile inherits the copy's write
        // descriptor until its exec. Retried, as the standard library's users do.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening addr=").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                    }
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!("daemon did not start:\n{}", log.lock().unwrap());
            }
        };
        Daemon { child, addr, log }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn trigger_url(&self) -> String {
        format!("{}/trigger", self.base())
    }

    /// Points a URL of an earlier run at this daemon's address (port 0 gives a new port
    /// each start, as a move behind a proxy would).
    pub fn rebase(&self, url: &str) -> String {
        let rest = url.strip_prefix("http://").unwrap();
        let path = &rest[rest.find('/').unwrap()..];
        format!("http://{}{}", self.addr, path)
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = get(&format!("{}/healthz", self.base())) {
                if r.status == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "never healthy:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn health(&self) -> Value {
        get(&format!("{}/healthz", self.base())).unwrap().json()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location in {self:?}"))
            .to_string()
    }

    pub fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After in {self:?}"))
            .parse()
            .unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A plain HTTP client that reports every status as an answer, follows no redirect.
pub fn agent() -> ureq::Agent {
    agent_with(ureq::tls::TlsConfig::default())
}

/// The same client with a TLS configuration.
pub fn agent_with(tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .tls_config(tls)
        .build()
        .into()
}

/// A GET with a real HTTP client.
pub fn get(url: &str) -> Result<Reply, ureq::Error> {
    request("GET", url)
}

/// Any method.
pub fn request(method: &str, url: &str) -> Result<Reply, ureq::Error> {
    send(&agent(), method, url, &[])
}

/// Any method with extra headers, through `agent`.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, ureq::Error> {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = agent.run(req.body(()).unwrap())?;
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(512 * 1024 * 1024)
        .read_to_vec()?;
    Ok(Reply {
        status: resp.status().as_u16(),
        headers,
        body,
    })
}

/// The `triggerState` in a URL.
pub fn cursor_of(url: &str) -> String {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .find_map(|p| p.strip_prefix("triggerState="))
        .unwrap_or_else(|| panic!("no triggerState in {url}"))
        .to_string()
}

/// Percent-decodes a query value.
pub fn decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// A file received in a `200`.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub indexed_at: String,
    pub retry_after: u64,
    pub body: Value,
}

impl Got {
    pub fn content(&self) -> Vec<u8> {
        let b64 = self.body["content"]["$content"]
            .as_str()
            .unwrap_or_else(|| panic!("no content in {}", self.body));
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }
}

/// A workflow engine's view of one trigger: only the next URL.
pub struct Poller {
    pub next: String,
    /// The files received, without the fence files of [`Poller::expect_nothing_more`].
    pub got: Vec<Got>,
    /// The fence files received.
    pub fences: Vec<Got>,
    pub polls: usize,
}

impl Poller {
    /// The first call: no cursor, must be a `202` with a Location.
    pub fn start(trigger_url: &str) -> Poller {
        let r = get(trigger_url).unwrap();
        assert_eq!(r.status, 202, "first call: {r:?}");
        Poller {
            next: r.location(),
            got: Vec::new(),
            fences: Vec::new(),
            polls: 1,
        }
    }

    /// A poller that starts at a given URL (a replay, or a cursor kept across restarts).
    pub fn at(url: String) -> Poller {
        Poller {
            next: url,
            got: Vec::new(),
            fences: Vec::new(),
            polls: 0,
        }
    }

    /// One poll, checked against the protocol; returns the reply.
    pub fn poll(&mut self) -> Reply {
        let r = get(&self.next).unwrap();
        self.polls += 1;
        match r.status {
            200 => {
                let loc = r.location();
                assert!(loc.starts_with("http://"), "Location not absolute: {loc}");
                let body = r.json();
                let indexed_at = body["indexedAt"].as_str().unwrap().to_string();
                assert_eq!(
                    cursor_of(&loc),
                    indexed_at,
                    "cursor must be the file's stamp"
                );
                let before = Stamp::parse(&decode(&cursor_of(&self.next))).unwrap();
                assert!(
                    Stamp::parse(&indexed_at).unwrap() > before,
                    "a stamp at or before the cursor was returned"
                );
                let got = Got {
                    path: body["path"].as_str().unwrap().to_string(),
                    indexed_at,
                    retry_after: r.retry_after(),
                    body,
                };
                if got.path.starts_with(FENCE_PREFIX) {
                    self.fences.push(got);
                } else {
                    self.got.push(got);
                }
                self.next = loc;
            }
            202 => {
                let loc = r.location();
                assert_eq!(
                    cursor_of(&loc),
                    cursor_of(&self.next),
                    "202 must keep the cursor"
                );
                self.next = loc;
            }
            other => panic!(
                "poll answered {other}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
        let _ = r.retry_after();
        r
    }

    /// Follows Location and Retry-After until `n` files in total were received or
    /// `timeout` passed; then returns what was received.
    pub fn drain(&mut self, n: usize, timeout: Duration) -> &[Got] {
        let deadline = Instant::now() + timeout;
        while self.got.len() < n && Instant::now() < deadline {
            let r = self.poll();
            let wait = r.retry_after() * MS_PER_RETRY_SECOND;
            if wait > 0 {
                std::thread::sleep(Duration::from_millis(wait));
            }
        }
        &self.got
    }

    /// Asserts that nothing further arrives: polls through `quiet` (see [`quiet`]), then
    /// writes a fence file (a later neighbour) and polls until it arrives. Anything else
    /// received before it fails the test. The fence makes this hold on a slow machine
    /// too, where a quiet window alone passes without the daemon having looked: whatever
    /// the daemon indexes before the fence comes before it along the cursor chain.
    pub fn expect_nothing_more(&mut self, site: &Site, quiet: Duration) {
        let before = self.got.len();
        let check = |p: &Poller, when: &str| {
            assert_eq!(
                p.got.len(),
                before,
                "unexpected extra file {when}: {:?}",
                &p.got[before.min(p.got.len())..]
            );
        };
        let deadline = Instant::now() + quiet;
        while Instant::now() < deadline {
            let r = self.poll();
            check(self, "in the quiet window");
            std::thread::sleep(Duration::from_millis(r.retry_after() * MS_PER_RETRY_SECOND));
        }
        let fence = site.fence();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.fences.iter().any(|g| g.path == fence) {
            assert!(Instant::now() < deadline, "the fence {fence} never came");
            let r = self.poll();
            check(self, &format!("before the fence {fence}"));
            std::thread::sleep(Duration::from_millis(r.retry_after() * MS_PER_RETRY_SECOND));
        }
    }

    /// The received paths, in order.
    pub fn paths(&self) -> Vec<String> {
        self.got.iter().map(|g| g.path.clone()).collect()
    }
}

/// Asserts every path in `want` was received exactly once, and nothing else.
pub fn assert_exactly_once(got: &[Got], want: &[String]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for g in got {
        *counts.entry(g.path.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let missing: Vec<_> = want
        .iter()
        .filter(|w| !counts.contains_key(w.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} of {}: {:?}",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(10)]
    );
    let extra: Vec<_> = counts
        .keys()
        .filter(|k| !want.iter().any(|w| w == *k))
        .collect();
    assert!(extra.is_empty(), "unexpected: {extra:?}");
}

/// Waits until `cond` holds or panics after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A poller that replays everything ever indexed, so files indexed before the first
/// call (the start-up scan) are seen too.
pub fn replay(d: &Daemon) -> Poller {
    Poller::at(format!(
        "{}?triggerState=2000-01-01T00:00:00.000000000Z",
        d.trigger_url()
    ))
}

/// `filesIndexed` from `/healthz`.
pub fn indexed(d: &Daemon) -> u64 {
    d.health()["filesIndexed"].as_u64().unwrap()
}

/// Owned strings, for lists of expected paths.
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Writes `data` straight to its final name (no temporary name), creating parents.
pub fn write_direct(root: &Path, rel: impl AsRef<Path>, data: &[u8]) -> PathBuf {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, data).unwrap();
    path
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The environment variable that turns a skipped root-only test into a failure
/// (`.ci/run` sets it: there every test must really run).
pub const REQUIRE_ROOT: &str = "FILETRIGGER_REQUIRE_ROOT_TESTS";

/// For a test that needs root: `true` when it may go on. Otherwise it prints one line
/// saying what it needs and how to run it, and returns `false` (the test returns and
/// passes); with `FILETRIGGER_REQUIRE_ROOT_TESTS=1` set, it fails instead. Use it through
/// [`needs_root!`].
pub fn root_or_skip(test_binary: &str, test: &str, why: &str) -> bool {
    if is_root() {
        return true;
    }
    let line = format!(
        "skipped {test_binary}::{test}: needs root to {why}; run it as root with \
         `cargo test --test {test_binary}`"
    );
    assert!(
        std::env::var_os(REQUIRE_ROOT).is_none(),
        "{line} ({REQUIRE_ROOT} is set, so skipping is a failure)"
    );
    // Straight to the process's stderr: the test harness captures `eprintln!`, and this
    // line must be seen.
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// Whether the program `tool` runs (`tool --version`). When it does not, says so in one
/// line and returns false, so the test skips that part; under `REQUIRE_ROOT` (CI, which
/// installs every tool the tests use) a missing tool is a failure instead.
pub fn tool_or_skip(tool: &str, test: &str) -> bool {
    let runs = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return true;
    }
    let line = format!("skipped part of {test}: needs {tool} (apt-get install {tool})");
    assert!(
        std::env::var_os(REQUIRE_ROOT).is_none(),
        "{line} ({REQUIRE_ROOT} is set, so skipping is a failure)"
    );
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// `needs_root!("what it does as root")` at the top of a test: skips it, with one line,
/// when not root (see [`root_or_skip`]).
#[macro_export]
macro_rules! needs_root {
    ($why:expr) => {
        if !$crate::common::root_or_skip(
            env!("CARGO_CRATE_NAME"),
            {
                fn f() {}
                let name = std::any::type_name_of_val(&f);
                name.strip_suffix("::f")
                    .unwrap_or(name)
                    .rsplit("::")
                    .next()
                    .unwrap_or(name)
            },
            $why,
        ) {
            return;
        }
    };
}

/// Sets a file's modification time.
pub fn set_mtime(path: &Path, t: std::time::SystemTime) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

/// A kernel setting under /proc/sys, set for a test and put back when dropped (even when
/// the test panics). Needs root.
pub struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    /// Sets `path` to `value`, remembering the old value.
    pub fn set(path: &'static str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap().trim().to_string();
        std::fs::write(path, value)
            .unwrap_or_else(|e| panic!("this test needs root to change {path}: {e}"));
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, &self.old);
    }
}
