//! The bridge from notify's watcher thread into tokio: where a file's story starts.
//!
//! Owns: the inotify watcher (symbolic links not followed), one watch per directory,
//! naming each notify event as one of our own [`Change`]s (the only place that knows
//! notify's event kinds), a bounded channel of them, and turning every way of losing
//! events (a kernel queue overflow, a full channel, a watcher error) into a request for a
//! full rescan.
//! Does not own: what a change means for a file (`discover` stats the path and hands it to
//! the settler), or which directories are watched: scans add each directory's watch just
//! before they read it ([`Watches::add`]), so one walk both watches and scans a tree
//! (notify's own recursive mode would walk and stat the whole tree, files included, a
//! second time before the start-up scan).
//!
//! A file's way: the kernel reports `IN_CREATE`/`IN_MODIFY`/`IN_CLOSE_WRITE`/... on
//! notify's thread → [`Change`] here → the channel → `discover` (stat, then
//! `settle::Settler`) → the index writer (`index`) → a poll (`http`, `offer`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{Config, Event, EventKindMask, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, Notify};

/// What the watcher reports: one notify event, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Created (`IN_CREATE`): for a file, by its writer's open, as a rule.
    Create(PathBuf),
    /// Moved in (`IN_MOVED_TO`: a rename's new name, or a move from outside the tree): the
    /// content was written under another name, by a writer that may or may not have
    /// closed it.
    MovedIn(PathBuf),
    /// Its content was written.
    Write(PathBuf),
    /// A writer closed it (`IN_CLOSE_WRITE`).
    CloseWrite(PathBuf),
    /// Something else about it changed (metadata, or a kind notify does not name).
    Touch(PathBuf),
    /// Deleted, or moved away (a rename's old name, or a move out of the tree).
    Remove(PathBuf),
    /// A rename within the tree, both names known. Its halves were reported before it, as
    /// [`Change::Remove`] of `from` and [`Change::MovedIn`] of `to`.
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// Events were lost; everything must be rescanned.
    Rescan(&'static str),
    /// The watcher failed.
    Failed {
        /// notify's error text.
        message: String,
        /// Whether it was the inotify watch limit (ENOSPC).
        limit: bool,
    },
}

impl Change {
    /// Names a notify event: one change per path, none for the kinds discovery has no use
    /// for (opening or reading a file, which every poll does).
    pub fn from_event(ev: Event, out: &mut Vec<Change>) {
        if ev.need_rescan() {
            out.push(Change::Rescan("the kernel's event queue overflowed"));
            return;
        }
        let one: fn(PathBuf) -> Change = match ev.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Change::CloseWrite,
            EventKind::Access(_) => return,
            EventKind::Create(_) => Change::Create,
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Change::MovedIn,
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                Change::Remove
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                let mut paths = ev.paths.into_iter();
                if let (Some(from), Some(to)) = (paths.next(), paths.next()) {
                    out.push(Change::Rename { from, to });
                }
                return;
            }
            // A rename of which notify knows one name but not which.
            EventKind::Modify(ModifyKind::Name(_)) => Change::MovedIn,
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => Change::Write,
            EventKind::Modify(_) | EventKind::Any | EventKind::Other => Change::Touch,
        };
        out.extend(ev.paths.into_iter().map(one));
    }
}

/// A running watch. Dropping it stops the watcher.
pub struct WatchHandle {
    watches: Watches,
    /// Notified when the channel was full and an event was dropped (a rescan is owed).
    pub dropped: Arc<Notify>,
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
    pub rx: mpsc::Receiver<Change>,
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

/// The events asked of the kernel: every kind but opens (`IN_OPEN`) and closes without
/// a write (`IN_CLOSE_NOWRITE`). Every poll opens the file it offers and the writer probe
/// opens files too; left in the kernel's mask, each such open would wake notify's thread
/// for an event dropped here anyway. A writer's close (`IN_CLOSE_WRITE`, in
/// `ACCESS_CLOSE`) stays: `settle` and `writers` rely on it. Symbolic links are not
/// followed.
pub fn config() -> Config {
    Config::default()
        .with_follow_symlinks(false)
        .with_event_kinds(EventKindMask::CORE | EventKindMask::ACCESS_CLOSE)
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
            dropped: Arc::new(Notify::new()),
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
    let dropped = Arc::new(Notify::new());
    let flag = dropped.clone();
    let mut changes = Vec::with_capacity(2);
    let handler = move |res: notify::Result<Event>| {
        match res {
            Ok(ev) => Change::from_event(ev, &mut changes),
            Err(e) => changes.push(Change::Failed {
                limit: matches!(e.kind, notify::ErrorKind::MaxFilesWatch),
                message: e.to_string(),
            }),
        }
        for c in changes.drain(..) {
            if tx.try_send(c).is_err() {
                // Full (or shutting down): an event is lost, so a rescan is owed. A
                // notification while discovery is busy is kept until it listens.
                flag.notify_one();
            }
        }
    };
    let mut watcher = RecommendedWatcher::new(handler, config())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, Flag, MetadataKind, RemoveKind};

    fn named(kind: EventKind, paths: &[&str]) -> Vec<Change> {
        let mut ev = Event::new(kind);
        for p in paths {
            ev = ev.add_path(PathBuf::from(p));
        }
        let mut out = Vec::new();
        Change::from_event(ev, &mut out);
        out
    }

    #[test]
    fn each_notify_event_kind_is_named_once_and_reads_are_dropped() {
        let p = || PathBuf::from("a");
        let cases = [
            (
                EventKind::Create(CreateKind::File),
                Some(Change::Create(p())),
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                Some(Change::MovedIn(p())),
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                Some(Change::Remove(p())),
            ),
            (
                EventKind::Remove(RemoveKind::File),
                Some(Change::Remove(p())),
            ),
            (
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                Some(Change::Write(p())),
            ),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                Some(Change::CloseWrite(p())),
            ),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                Some(Change::Touch(p())),
            ),
            (EventKind::Other, Some(Change::Touch(p()))),
            (EventKind::Access(AccessKind::Open(AccessMode::Any)), None),
            (EventKind::Access(AccessKind::Close(AccessMode::Read)), None),
        ];
        for (kind, want) in cases {
            assert_eq!(
                named(kind, &["a"]),
                want.into_iter().collect::<Vec<_>>(),
                "{kind:?}"
            );
        }
        assert_eq!(
            named(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["a", "b"]
            ),
            vec![Change::Rename {
                from: "a".into(),
                to: "b".into()
            }]
        );
        let mut out = Vec::new();
        Change::from_event(
            Event::new(EventKind::Other).set_flag(Flag::Rescan),
            &mut out,
        );
        assert!(matches!(out[..], [Change::Rescan(_)]));
    }
}
