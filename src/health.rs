//! What `/healthz` reports, shared between discovery and the HTTP layer.
//!
//! Owns: the readiness flag and the few facts the status shows.
//! Does not own: deciding readiness (`discover` sets it) or the answer's shape (`http`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::stamp::Stamp;

/// Shared status.
#[derive(Debug)]
pub struct Health {
    ready: tokio::sync::watch::Sender<bool>,
    watcher: Mutex<&'static str>,
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

    /// The watcher's mode: `"starting"`, `"inotify"`, `"poll"` (`watch.mode`), `"degraded"`.
    pub fn watcher(&self) -> &'static str {
        let w = *self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        if w.is_empty() {
            "starting"
        } else {
            w
        }
    }

    /// Sets the watcher's mode.
    pub fn set_watcher(&self, mode: &'static str) {
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = mode;
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
