//! What `/healthz` reports, and what it answers.
//!
//! Owns: the shared status of one folder's discovery (readiness, the watcher's state, whether the watched directory
//! can be listed, the pending count, the last full scan, the running full scan's progress
//! ([`ScanProgress`])), [`status`] (whether the daemon serves, and the status word), and
//! [`answer`]: the decision of what `/healthz` answers (status code, status word, body
//! fields, `Retry-After`), over every watched folder: ready once every folder's start-up
//! scan is done, with a `folders` object (name → that folder's part) when there are several.
//! Does not own: deciding readiness or the watcher's state (`discover` publishes them,
//! from its [`Schedule`](crate::schedule::Schedule)), counting a scan's walk (`scan`, into
//! the counters held here), the index's counters (`index`), or sending the answer
//! (`routes::health`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::index::IndexStats;
use crate::scan::WalkCounts;
use crate::stamp::Stamp;

/// The watcher's state, as `/healthz` shows it (`"watcher"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Watcher {
    /// Discovery has not started yet.
    #[default]
    Starting,
    /// Every directory is watched with inotify.
    Inotify,
    /// `watch.mode = "poll"`: scans only, by choice.
    Poll,
    /// Part of the tree (or all of it) is not watched: past the inotify watch limit, the
    /// watched directory's own watch could not be added again, or the watcher stopped.
    /// Covered by scans every `watch.poll_interval_s`; still a `200`.
    Degraded,
}

impl Watcher {
    /// The word `/healthz` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Watcher::Starting => "starting",
            Watcher::Inotify => "inotify",
            Watcher::Poll => "poll",
            Watcher::Degraded => "degraded",
        }
    }
}

/// Shared status.
#[derive(Debug)]
pub struct Health {
    ready: tokio::sync::watch::Sender<bool>,
    watcher: Mutex<Watcher>,
    last_rescan: Mutex<Option<Stamp>>,
    pending: AtomicU64,
    root_ok: AtomicBool,
    scan: ScanProgress,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ready: tokio::sync::watch::Sender::new(false),
            watcher: Mutex::default(),
            last_rescan: Mutex::default(),
            pending: AtomicU64::default(),
            root_ok: AtomicBool::new(true),
            scan: ScanProgress::default(),
        }
    }
}

/// The running full scan: the scan thread counts its walk here (atomics), `/healthz`, the
/// progress reports (`progress`) and `/metrics` read it. Full scans run one at a time.
#[derive(Debug, Default)]
pub struct ScanProgress {
    walked: WalkCounts,
    /// When the running full scan started; `None` while none runs.
    started: Mutex<Option<Instant>>,
}

/// A snapshot of the running full scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Directories read so far.
    pub directories: u64,
    /// Files walked so far.
    pub files: u64,
    /// Since the scan started.
    pub elapsed: Duration,
}

impl Progress {
    /// Files walked per second since the start.
    pub fn files_per_second(&self) -> u64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            (self.files as f64 / s) as u64
        } else {
            0
        }
    }
}

/// Marks a full scan as running until dropped (so an early return ends it too).
#[derive(Debug)]
pub struct Running<'a>(&'a ScanProgress);

impl Running<'_> {
    /// The counters the walk adds to.
    pub fn counts(&self) -> &WalkCounts {
        &self.0.walked
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self
            .0
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl ScanProgress {
    /// A full scan starts: its counters start from zero.
    pub fn begin(&self) -> Running<'_> {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        self.walked.directories.store(0, Ordering::Relaxed);
        self.walked.files.store(0, Ordering::Relaxed);
        *started = Some(Instant::now());
        Running(self)
    }

    /// The running full scan's progress, or `None` while none runs.
    pub fn now(&self) -> Option<Progress> {
        let started = *self.started.lock().unwrap_or_else(PoisonError::into_inner);
        started.map(|at| Progress {
            directories: self.walked.directories.load(Ordering::Relaxed),
            files: self.walked.files.load(Ordering::Relaxed),
            elapsed: at.elapsed(),
        })
    }
}

impl Health {
    /// Whether the start-up scan is done and the watcher runs.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Marks the daemon ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }

    /// Returns once the daemon is ready.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// The watcher's state.
    pub fn watcher(&self) -> Watcher {
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the watcher's state. Discovery is the only caller: its
    /// [`Schedule`](crate::schedule::Schedule) decides the state.
    pub fn set_watcher(&self, w: Watcher) {
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = w;
    }

    /// When the last full scan finished.
    pub fn last_rescan(&self) -> Option<Stamp> {
        *self
            .last_rescan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a finished full scan.
    pub fn set_last_rescan(&self, at: Stamp) {
        *self
            .last_rescan
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(at);
    }

    /// Whether the watched directory exists and can be listed.
    pub fn root_ok(&self) -> bool {
        self.root_ok.load(Ordering::Acquire)
    }

    /// Records whether the watched directory exists and can be listed.
    pub fn set_root_ok(&self, ok: bool) {
        self.root_ok.store(ok, Ordering::Release);
    }

    /// Files seen but not yet complete.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Updates the pending count.
    pub fn set_pending(&self, n: usize) {
        self.pending.store(n as u64, Ordering::Relaxed);
    }

    /// The running full scan.
    pub fn scan(&self) -> &ScanProgress {
        &self.scan
    }
}

/// What `/healthz` answers.
#[derive(Debug)]
pub struct Answer {
    /// `200` when serving normally, `503` otherwise.
    pub code: StatusCode,
    /// `Retry-After` (seconds) with a `503`.
    pub retry_after_s: Option<u32>,
    /// The JSON body: `{"status","filesIndexed","pending","watcher","lastRescan","scan"}`;
    /// `scan` is `null`, or while a full scan runs (the start-up scan behind a `503`
    /// `starting`) `{"directories","files","filesPerSecond","elapsedSeconds"}`.
    pub body: String,
}

/// Whether the daemon serves normally now, and the status word `/healthz` shows.
pub fn status(health: &Health, index: &IndexStats) -> (bool, &'static str) {
    verdict(
        health.is_ready(),
        index.failing(),
        health.root_ok(),
        health.watcher(),
    )
}

/// One folder's part of `/healthz`: its name, its status, and its files in the index.
#[derive(Debug, Clone, Copy)]
pub struct FolderStatus<'a> {
    /// The folder's name.
    pub name: &'a str,
    /// Its discovery's status.
    pub health: &'a Health,
    /// Entries in its part of the index.
    pub files: u64,
}

/// A running scan's fields, or `null`.
fn scan_json(p: Option<Progress>) -> serde_json::Value {
    p.map_or(serde_json::Value::Null, |p| {
        serde_json::json!({
            "directories": p.directories,
            "files": p.files,
            "filesPerSecond": p.files_per_second(),
            "elapsedSeconds": p.elapsed.as_secs(),
        })
    })
}

/// The webhook subscriptions by state, and the pending webhook waits (`hooks`).
#[derive(Debug, Default, Clone, Copy)]
pub struct HookCounts {
    /// Delivering, or nothing to deliver.
    pub active: usize,
    /// Their last call failed; retrying.
    pub retrying: usize,
    /// Paused after `webhook.pause_after_s` of failure.
    pub paused: usize,
    /// Pending webhook waits.
    pub waits: usize,
}

/// What `/healthz` answers now, for the watched folders (at least one). With one folder
/// the body is the first release's; with several, the top-level fields sum them up (the
/// first folder not serving decides the status; `pending` is the sum, `lastRescan` the
/// oldest, `scan` the first running one, `watcher` `starting` or `degraded` if any folder
/// is, else the first folder's) and `folders` holds each folder's own fields.
pub fn answer(
    folders: &[FolderStatus<'_>],
    index: &IndexStats,
    hooks: Option<&HookCounts>,
) -> Answer {
    let mut all_ok = true;
    let mut status_word = "ok";
    let mut watcher = folders
        .first()
        .map_or(Watcher::Starting, |f| f.health.watcher());
    let mut pending = 0;
    let mut last_rescan = folders.first().and_then(|f| f.health.last_rescan());
    let mut running = None;
    let mut each = serde_json::Map::new();
    for f in folders {
        let h = f.health;
        let (ok, word) = status(h, index);
        if all_ok && !ok {
            all_ok = false;
            status_word = word;
        } else if all_ok && word != "ok" {
            status_word = word;
        }
        let w = h.watcher();
        if w == Watcher::Starting || (w == Watcher::Degraded && watcher != Watcher::Starting) {
            watcher = w;
        }
        pending += h.pending();
        let last = h.last_rescan();
        last_rescan = match (last_rescan, last) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        let scan = h.scan.now();
        running = running.or(scan);
        each.insert(
            f.name.to_string(),
            serde_json::json!({
                "status": word,
                "filesIndexed": f.files,
                "pending": h.pending(),
                "watcher": w.as_str(),
                "lastRescan": last.map(|s| s.to_string()),
                "scan": scan_json(scan),
            }),
        );
    }
    let mut body = serde_json::json!({
        "status": status_word,
        "filesIndexed": index.files(),
        "pending": pending,
        "watcher": watcher.as_str(),
        "lastRescan": last_rescan.map(|s| s.to_string()),
        "scan": scan_json(running),
    });
    if folders.len() > 1 {
        body["folders"] = serde_json::Value::Object(each);
    }
    // Webhook subscriptions show once there are any; a failing or paused one is the
    // receiver's problem, not the daemon's: the status stays what the folders say.
    if let Some(h) = hooks.filter(|h| h.active + h.retrying + h.paused + h.waits > 0) {
        body["subscriptions"] = serde_json::json!({
            "active": h.active,
            "retrying": h.retrying,
            "paused": h.paused,
            "waits": h.waits,
        });
    }
    let ok = all_ok && !folders.is_empty();
    Answer {
        code: if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        retry_after_s: (!ok).then_some(1),
        body: body.to_string(),
    }
}

/// Whether the daemon serves normally, and the status word, from the facts in order of
/// precedence. A degraded watcher still serves (scans cover what is not watched).
fn verdict(ready: bool, index_failing: bool, root_ok: bool, w: Watcher) -> (bool, &'static str) {
    if !ready {
        (false, "starting")
    } else if index_failing {
        (false, "index_failing")
    } else if !root_ok {
        (false, "watched_dir_unavailable")
    } else if w == Watcher::Degraded {
        (true, "degraded")
    } else {
        (true, "ok")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_word_follows_the_facts_in_order_and_only_degraded_still_serves() {
        use Watcher::*;
        assert_eq!(verdict(false, true, false, Degraded), (false, "starting"));
        assert_eq!(
            verdict(true, true, false, Degraded),
            (false, "index_failing")
        );
        assert_eq!(
            verdict(true, false, false, Degraded),
            (false, "watched_dir_unavailable")
        );
        assert_eq!(verdict(true, false, true, Degraded), (true, "degraded"));
        for w in [Inotify, Poll] {
            assert_eq!(verdict(true, false, true, w), (true, "ok"));
        }
    }

    #[test]
    fn the_answer_keeps_its_fields_and_asks_to_retry_while_not_serving() {
        let h = Health::default();
        let stats = IndexStats::default();
        stats.set_files(3);
        let one = |h: &Health| {
            answer(
                &[FolderStatus {
                    name: "default",
                    health: h,
                    files: 3,
                }],
                &stats,
                None,
            )
        };
        let a = one(&h);
        assert_eq!(
            (a.code, a.retry_after_s),
            (StatusCode::SERVICE_UNAVAILABLE, Some(1))
        );
        assert_eq!(
            a.body,
            r#"{"filesIndexed":3,"lastRescan":null,"pending":0,"scan":null,"status":"starting","watcher":"starting"}"#
        );
        let running = h.scan().begin();
        running.counts().directories.store(4, Ordering::Relaxed);
        running.counts().files.store(9, Ordering::Relaxed);
        let body: serde_json::Value = serde_json::from_str(&one(&h).body).unwrap();
        assert_eq!(body["status"], "starting");
        assert_eq!(
            (
                body["scan"]["directories"].as_u64(),
                body["scan"]["files"].as_u64()
            ),
            (Some(4), Some(9))
        );
        drop(running);
        assert!(h.scan().now().is_none());
        h.set_ready(true);
        h.set_watcher(Watcher::Degraded);
        h.set_pending(2);
        let a = one(&h);
        assert_eq!((a.code, a.retry_after_s), (StatusCode::OK, None));
        let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["watcher"], "degraded");
        assert_eq!(body["pending"], 2);
    }

    #[test]
    fn several_folders_are_ready_when_all_are_and_each_shows_its_part() {
        let (a, b) = (Health::default(), Health::default());
        let stats = IndexStats::default();
        stats.set_files(5);
        let both = |a: &Health, b: &Health| {
            let r = answer(
                &[
                    FolderStatus {
                        name: "default",
                        health: a,
                        files: 2,
                    },
                    FolderStatus {
                        name: "docs",
                        health: b,
                        files: 3,
                    },
                ],
                &stats,
                None,
            );
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            (r.code, body)
        };
        a.set_ready(true);
        a.set_watcher(Watcher::Inotify);
        let (code, body) = both(&a, &b);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "starting");
        assert_eq!(body["folders"]["default"]["status"], "ok");
        assert_eq!(body["folders"]["docs"]["status"], "starting");
        b.set_ready(true);
        b.set_watcher(Watcher::Inotify);
        b.set_pending(4);
        let (code, body) = both(&a, &b);
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["filesIndexed"], 5);
        assert_eq!(body["pending"], 4);
        assert_eq!(body["folders"]["docs"]["filesIndexed"], 3);
        b.set_root_ok(false);
        let (code, body) = both(&a, &b);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "watched_dir_unavailable");
    }
}
