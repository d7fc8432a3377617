//! The bridge from notify's watcher thread into tokio.
//!
//! Owns: the inotify watcher (symbolic links not followed), one watch per directory,
//! a bounded channel of [`WatchMsg`], and turning every way of losing events (a kernel
//! queue overflow, a full channel, a watcher error) into a request for a full rescan.
//! Does not own: what an event means for a file (`discover`), or which directories are
//! watched: scans add each directory's watch just before they read it ([`Watches::add`]),
//! so one walk both watches and scans a tree (notify's own recursive mode would walk and
//! stat the whole tree, files included, a second time before the start-up scan).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use notify::event::{AccessKind, AccessMode, EventKind};
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
    watches: Watches,
    /// Set when the channel was full and an event was dropped.
    pub dropped: Arc<AtomicBool>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.watches.stop();
    }
}

/// The receiving end: events, and the handle scans use to add directory watches.
#[derive(Debug)]
pub struct WatchRx {
    /// What the watcher reports.
    pub rx: mpsc::Receiver<WatchMsg>,
    /// Adds watches (one per directory).
    pub watches: Watches,
}

/// Why a directory could not be watched.
#[derive(Debug)]
pub enum AddError {
    /// The inotify watch limit (`fs.inotify.max_user_watches`) is reached.
    Limit(String),
    /// Anything else (the directory vanished, no permission, ...).
    Other(String),
}

/// Adds directory watches to the running watcher. Cheap to clone.
#[derive(Clone)]
pub struct Watches {
    watcher: Arc<Mutex<Option<RecommendedWatcher>>>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches").finish()
    }
}

impl Watches {
    /// Watches directory `dir` (absolute) itself, not its subdirectories: the scan that
    /// calls this adds theirs as it reaches them, before it reads them, so a file created
    /// in a directory is either seen by the scan or reported by the watch. Adding a watch
    /// that exists is harmless. Does nothing once the watcher is stopped.
    ///
    /// # Errors
    /// [`AddError::Limit`] when the OS watch limit is reached, [`AddError::Other`] else.
    pub fn add(&self, dir: &Path) -> Result<(), AddError> {
        let mut w = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(w) = w.as_mut() else {
            return Ok(());
        };
        w.watch(dir, RecursiveMode::NonRecursive).map_err(|e| {
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                AddError::Limit(e.to_string())
            } else {
                AddError::Other(e.to_string())
            }
        })
    }

    fn stop(&self) {
        let w = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(w);
    }
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish()
    }
}

/// No watcher at all (`watch.mode = "poll"`): the receiver never yields and adding a
/// watch does nothing, so discovery lives on its periodic scans.
pub fn disabled() -> (WatchHandle, WatchRx) {
    let (_tx, rx) = mpsc::channel(1);
    let watches = Watches {
        watcher: Arc::new(Mutex::new(None)),
    };
    (
        WatchHandle {
            watches: watches.clone(),
            dropped: Arc::new(AtomicBool::new(false)),
        },
        WatchRx { rx, watches },
    )
}

/// Starts watching `root` (the directory itself; scans add its subdirectories when
/// `recursive`); events arrive on the returned receiver.
///
/// # Errors
/// notify's error when the watch cannot be set up (the directory is missing, or the
/// watch limit is exhausted before the first watch).
pub fn start(root: &Path, capacity: usize) -> Result<(WatchHandle, WatchRx), notify::Error> {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let handler = move |res: notify::Result<Event>| {
        let msg = match res {
            Ok(ev) if ev.need_rescan() => WatchMsg::Rescan("the kernel's event queue overflowed"),
            // Opening or reading a file (every poll does) changes nothing, and discovery
            // ignores every access but a close after writing: drop them here rather than
            // wake discovery for each.
            Ok(Event {
                kind: EventKind::Access(access),
                ..
            }) if access != AccessKind::Close(AccessMode::Write) => return,
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
    watcher.watch(root, RecursiveMode::NonRecursive)?;
    let watches = Watches {
        watcher: Arc::new(Mutex::new(Some(watcher))),
    };
    Ok((
        WatchHandle {
            watches: watches.clone(),
            dropped,
        },
        WatchRx { rx, watches },
    ))
}
