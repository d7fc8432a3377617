//! The bridge from notify's watcher thread into tokio.
//!
//! Owns: starting the recursive inotify watch (symbolic links not followed), a bounded
//! channel of [`WatchMsg`], and turning every way of losing events (a kernel queue
//! overflow, a full channel, a watcher error) into a request for a full rescan.
//! Does not own: what an event means for a file (`discover`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::{Config, Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// What the watcher reports.
#[derive(Debug)]
pub enum WatchMsg {
    /// A file-system event.
    Event(Event),
    /// Events were lost; everything must be rescanned.
    Rescan(&'static str),
    /// The watcher failed; `limit` when the OS watch limit was reached.
    Error {
        /// notify's error text.
        message: String,
        /// Whether it was the inotify watch limit (ENOSPC).
        limit: bool,
    },
}

/// A running watch. Dropping it stops the watcher.
pub struct WatchHandle {
    _watcher: RecommendedWatcher,
    /// Set when the channel was full and an event was dropped.
    pub dropped: Arc<AtomicBool>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish()
    }
}

/// Starts watching `root`; events arrive on the returned receiver.
///
/// # Errors
/// notify's error when the watch cannot be set up (the directory is missing, or the
/// watch limit is exhausted before the first watch).
pub fn start(
    root: &Path,
    recursive: bool,
    capacity: usize,
) -> Result<(WatchHandle, mpsc::Receiver<WatchMsg>), notify::Error> {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let handler = move |res: notify::Result<Event>| {
        let msg = match res {
            Ok(ev) if ev.need_rescan() => WatchMsg::Rescan("the kernel's event queue overflowed"),
            Ok(ev) => WatchMsg::Event(ev),
            Err(e) => WatchMsg::Error {
                limit: matches!(e.kind, notify::ErrorKind::MaxFilesWatch),
                message: e.to_string(),
            },
        };
        if tx.try_send(msg).is_err() {
            // Full (or shutting down): an event is lost, so a rescan is owed.
            flag.store(true, Ordering::Release);
        }
    };
    let mut watcher =
        RecommendedWatcher::new(handler, Config::default().with_follow_symlinks(false))?;
    let mode = if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher.watch(root, mode)?;
    Ok((
        WatchHandle {
            _watcher: watcher,
            dropped,
        },
        rx,
    ))
}
