//! What `/healthz` reports, and what it answers.
//!
//! Owns: the shared status (readiness, the watcher's state, whether the watched directory
//! can be listed, the pending count, the last full scan), and [`answer`]: the decision of
//! what `/healthz` answers (status code, status word, body fields, `Retry-After`).
//! Does not own: deciding readiness or the watcher's state (`discover` publishes them,
//! from its [`Schedule`](crate::schedule::Schedule)), the index's counters (`index`), or
//! sending the answer (`routes::health`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use hyper::StatusCode;

use crate::index::IndexStats;
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
}

impl Default for Health {
    fn default() -> Self {
        Health {
            ready: tokio::sync::watch::Sender::new(false),
            watcher: Mutex::default(),
            last_rescan: Mutex::default(),
            pending: AtomicU64::default(),
            root_ok: AtomicBool::new(true),
        }
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
}

/// What `/healthz` answers.
#[derive(Debug)]
pub struct Answer {
    /// `200` when serving normally, `503` otherwise.
    pub code: StatusCode,
    /// `Retry-After` (seconds) with a `503`.
    pub retry_after_s: Option<u32>,
    /// The JSON body: `{"status","filesIndexed","pending","watcher","lastRescan"}`.
    pub body: String,
}

/// What `/healthz` answers now.
pub fn answer(health: &Health, index: &IndexStats) -> Answer {
    let watcher = health.watcher();
    let (ok, status) = verdict(
        health.is_ready(),
        index.failing(),
        health.root_ok(),
        watcher,
    );
    let body = serde_json::json!({
        "status": status,
        "filesIndexed": index.files(),
        "pending": health.pending(),
        "watcher": watcher.as_str(),
        "lastRescan": health.last_rescan().map(|s| s.to_string()),
    });
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
        let a = answer(&h, &stats);
        assert_eq!(
            (a.code, a.retry_after_s),
            (StatusCode::SERVICE_UNAVAILABLE, Some(1))
        );
        assert_eq!(
            a.body,
            r#"{"filesIndexed":3,"lastRescan":null,"pending":0,"status":"starting","watcher":"starting"}"#
        );
        h.set_ready(true);
        h.set_watcher(Watcher::Degraded);
        h.set_pending(2);
        let a = answer(&h, &stats);
        assert_eq!((a.code, a.retry_after_s), (StatusCode::OK, None));
        let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["watcher"], "degraded");
        assert_eq!(body["pending"], 2);
    }
}
