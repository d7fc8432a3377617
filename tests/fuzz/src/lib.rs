//! Shared by the fuzz targets: the text form of a fuzzed request, a daemon state over a
//! real index with one file in it, and the checks on a `Location`.
//!
//! A fuzz input is text, so that the seeds in `seeds/` can be read and written by hand:
//!
//! ```text
//! folder=demo&triggerState=2026-11-25T16:47:00.123456789Z
//! Host: files.example:8443
//! X-Forwarded-Proto: https
//! @peer 10.0.0.1:4000
//! ```
//!
//! The first line is the request target: used as it is when it starts with `/`, `*` or
//! `http`, else it is a query and the target is `/trigger?` followed by it. Every other
//! line is a header (`Name: value`; a line that is not a valid header is ignored, as hyper
//! would refuse the request before we see it), or a setting:
//! `@method M`, `@secure` (served over TLS), `@peer ADDR:PORT` (the client's address;
//! `10.0.0.0/8` and `fd00::/8` are trusted proxies), `@public-url` (set
//! `server.public_url`), `@next N` (the stamp a `Location` moves the cursor to, as
//! nanoseconds).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use filetrigger::config::Settings;
use filetrigger::health::Health;
use filetrigger::index::{Index, WriteOp, WriterHandle};
use filetrigger::routes::{fuzzing, AppState};
use filetrigger::stamp::{Stamp, SystemClock};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use percent_encoding::percent_decode_str;

/// `Location` must stay under this many bytes (PROTOCOL.md).
pub const MAX_LOCATION: usize = 2048;
/// The `server.public_url` that `@public-url` sets.
pub const PUBLIC_URL: &str = "https://files.example.com/in";
/// The `@next` stamp when none is given.
pub const DEFAULT_NEXT: Stamp = Stamp(1_795_625_220_123_456_789);

/// One fuzzed request with the settings it is served under.
#[derive(Debug)]
pub struct Input {
    /// The request (no body).
    pub request: Request<()>,
    /// Served over TLS.
    pub secure: bool,
    /// The client's address.
    pub peer: SocketAddr,
    /// `server.public_url` is set.
    pub public_url: bool,
    /// The stamp a `Location` moves the cursor to.
    pub next: Stamp,
}

impl Input {
    /// The request in `data`; `None` when hyper would refuse it before any of our code
    /// runs (a request target that is not a URI, a method that is not a token).
    pub fn parse(data: &[u8]) -> Option<Input> {
        let mut lines = data.split(|&b| b == b'\n');
        let target = trim_cr(lines.next().unwrap_or_default());
        let as_is = [b"/".as_slice(), b"*", b"http"]
            .iter()
            .any(|p| target.starts_with(p));
        let uri = if as_is {
            Uri::try_from(target).ok()?
        } else {
            Uri::try_from([b"/trigger?".as_slice(), target].concat()).ok()?
        };
        let mut request = Request::new(());
        *request.uri_mut() = uri;
        let mut input = Input {
            request,
            secure: false,
            peer: SocketAddr::from(([192, 0, 2, 7], 40000)),
            public_url: false,
            next: DEFAULT_NEXT,
        };
        for line in lines.map(trim_cr) {
            if let Some(setting) = line.strip_prefix(b"@") {
                input.set(setting)?;
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                input.request.headers_mut().append(name, value);
            }
        }
        Some(input)
    }

    /// A copy of the request with an empty body, for a handler that takes it.
    pub fn request(&self) -> Request<String> {
        let mut request = Request::new(String::new());
        *request.method_mut() = self.request.method().clone();
        *request.uri_mut() = self.request.uri().clone();
        *request.headers_mut() = self.request.headers().clone();
        request
    }

    fn set(&mut self, setting: &[u8]) -> Option<()> {
        let text = std::str::from_utf8(setting).ok()?;
        let (key, value) = text.split_once(' ').unwrap_or((text, ""));
        match key {
            "method" => *self.request.method_mut() = Method::from_bytes(value.as_bytes()).ok()?,
            "secure" => self.secure = true,
            "peer" => self.peer = value.parse().ok()?,
            "public-url" => self.public_url = true,
            "next" => self.next = Stamp(value.parse().ok()?),
            _ => {}
        }
        Some(())
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// A daemon's state over a real index, made once per fuzzing process.
pub struct Daemon {
    /// Runs the handlers (a current-thread runtime; blocking work has its own pool).
    pub runtime: tokio::runtime::Runtime,
    index: Index,
    writer: WriterHandle,
    root: PathBuf,
    /// The settings without and with `server.public_url`.
    settings: [Settings; 2],
    /// The stamp of the one indexed file (`triggerState` before it gets a `200`).
    pub file_stamp: Stamp,
}

impl Daemon {
    /// The process's daemon: a watched directory and an index in `filetrigger-fuzz-PID`
    /// under `$FILETRIGGER_FUZZ_SCRATCH` (`run.sh` sets it to a directory it removes at
    /// the end) or else the system's temporary directory, with one small file indexed.
    pub fn get() -> &'static Daemon {
        static DAEMON: OnceLock<Daemon> = OnceLock::new();
        DAEMON.get_or_init(Daemon::start)
    }

    fn start() -> Daemon {
        let scratch = std::env::var_os("FILETRIGGER_FUZZ_SCRATCH")
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join(format!("filetrigger-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let root = scratch.join("inbox");
        let state = scratch.join("state");
        std::fs::create_dir_all(root.join("in")).expect("create the scratch directories");
        std::fs::create_dir_all(&state).expect("create the scratch directories");
        let rel = "in/report 1.pdf";
        std::fs::write(root.join(rel), b"%PDF-1.7\n").expect("write the indexed file");
        let meta = std::fs::metadata(root.join(rel)).expect("stat the indexed file");
        let version = filetrigger::scan::version_of(std::path::Path::new(rel), &meta);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let index = Index::open(&state, Arc::new(SystemClock)).expect("open the index");
        let (writer, _join) = index.start_writer(64).expect("start the writer");
        runtime.block_on(async {
            writer
                .send(WriteOp::Upsert(version))
                .await
                .expect("index the file");
            // A reservation is committed after what was queued before it.
            writer.reserve(Stamp(0)).await.expect("commit");
        });
        let file_stamp = index.stats().last_stamp();
        assert!(file_stamp > Stamp(0), "the file was not indexed");
        let settings = |public_url: bool| {
            let mut env = vec![
                ("FILETRIGGER__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,fd00::/8"),
                ("FILETRIGGER__TRIGGER__RETRY_AFTER_S", "15"),
                ("FILETRIGGER__TRIGGER__MAX_CONTENT_BYTES", "1048576"),
            ];
            if public_url {
                env.push(("FILETRIGGER__SERVER__PUBLIC_URL", PUBLIC_URL));
            }
            let env = env.into_iter().map(|(k, v)| (k.to_string(), v.to_string()));
            filetrigger::config::load(None, env).expect("valid settings")
        };
        Daemon {
            runtime,
            index,
            writer,
            root,
            settings: [settings(false), settings(true)],
            file_stamp,
        }
    }

    /// The handlers' state for `input`'s settings (no authentication).
    pub fn state(&self, input: &Input) -> AppState {
        let health = Health::default();
        health.set_ready(true);
        AppState::new(
            &self.settings[usize::from(input.public_url)],
            &self.index,
            self.writer.clone(),
            Arc::new(health),
            self.root.clone(),
            None,
        )
    }
}

/// Checks a `Location` the way the engine uses it: absolute, under 2 KB, a valid URI of
/// the trigger, and following it is a poll with the same other parameters (`pairs`, when
/// known), not a `400`. Returns the cursor it carries.
pub fn check_location(location: &HeaderValue, pairs: Option<&[&str]>) -> Option<Stamp> {
    assert!(
        location.len() <= MAX_LOCATION,
        "Location is {} bytes",
        location.len()
    );
    let text = location
        .to_str()
        .unwrap_or_else(|_| panic!("Location is not visible ASCII: {location:?}"));
    let uri = Uri::try_from(text).unwrap_or_else(|e| panic!("Location {text:?}: {e}"));
    assert!(
        uri.scheme().is_some() && uri.authority().is_some(),
        "Location is not absolute: {text:?}"
    );
    assert!(
        uri.path().ends_with("/trigger"),
        "Location is not the trigger: {text:?}"
    );
    let (next_pairs, next_cursor) = fuzzing::parse_query(uri.query().unwrap_or(""))
        .unwrap_or_else(|s| panic!("following Location {text:?} is a {s}"));
    if let Some(pairs) = pairs {
        // The same parameters once percent-decoded (`Location` encodes raw UTF-8).
        assert_eq!(
            decoded(&next_pairs),
            decoded(pairs),
            "the parameters in {text:?}"
        );
    }
    next_cursor
}

fn decoded(pairs: &[&str]) -> Vec<Vec<u8>> {
    pairs
        .iter()
        .map(|p| percent_decode_str(p).collect())
        .collect()
}

/// An error answer must be a client error: a bad request is never a 5xx.
pub fn check_refusal(status: StatusCode, what: &dyn std::fmt::Debug) {
    assert!(status.is_client_error(), "{status} for {what:?}");
}
