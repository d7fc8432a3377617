//! Discovery: from watcher events and scans to settled file versions in the index.
//!
//! Owns: the one task that reacts to [`WatchMsg`]s, schedules full and subtree scans
//! (start-up, watcher overflow, new directories, the periodic safety net) and the
//! directory watches they add, feeds the [`Settler`] (or, for many new files at once, the
//! two-scan check of [`Bulk`]), and sends settled versions and removals to the index
//! writer. It marks the daemon ready once the watcher runs and the start-up scan has
//! walked the tree.
//! Does not own: the notify thread (`watch`), walking (`scan`), or the store (`index`).

use std::collections::{HashSet, VecDeque};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::IndexError;
use crate::filter::Filter;
use crate::health::Health;
use crate::index::{FileVersion, IndexReader, WriteOp, WriterHandle};
use crate::scan::{self, ScanReport};
use crate::settle::Settler;
use crate::stamp::Stamp;
use crate::watch::{AddError, WatchMsg, WatchRx, Watches};

/// Candidates are handed from a scan thread in batches of this size.
const BATCH: usize = 512;
/// Due files are stat'ed in batches of at most this many.
const DUE_BATCH: usize = 4096;
/// Subtree scans that may run at once.
const MAX_SUBTREE_SCANS: usize = 2;
/// A new directory is scanned again after this delay. Its subtree scan adds the watches
/// before it reads each directory, so nothing should be missed; the second look is a
/// cheap safety net for what was written while the first scan was being scheduled.
const NEW_DIR_FOLLOW_UP: Duration = Duration::from_millis(500);

/// What discovery needs.
#[derive(Debug)]
pub struct Discover {
    /// The watched directory, absolute.
    pub root: PathBuf,
    /// `watch.recursive`
    pub recursive: bool,
    /// `watch.settle_ms`
    pub settle: Duration,
    /// `watch.rescan_interval_s`
    pub rescan_every: Duration,
    /// `watch.mode = "poll"`: no watcher; every `rescan_every` a full scan.
    pub poll: bool,
    /// `watch.poll_interval_s`: how often to scan while the inotify watch limit leaves
    /// part of the tree unwatched.
    pub poll_every: Duration,
    /// `watch.include` / `watch.exclude`
    pub filter: Arc<Filter>,
    /// Read side of the index (to skip known versions while scanning).
    pub reader: IndexReader,
    /// Write side of the index.
    pub writer: WriterHandle,
    /// Status for `/healthz`.
    pub health: Arc<Health>,
}

/// How often the watched directory itself is checked.
const ROOT_CHECK: Duration = Duration::from_secs(1);

/// Scan candidates the settler holds at most; past this, a scan's candidates are only
/// remembered as a hash each and confirmed by a second scan (see [`Bulk`]).
const SETTLER_CAP: usize = 4_096;

/// What scan threads send back.
enum Found {
    /// New versions, stat'ed by a scan that started at this instant.
    Candidates(Instant, Vec<FileVersion>),
    Gone(Vec<(Vec<u8>, Stamp)>),
    /// A full scan that started at this instant has walked the whole tree (its deletion
    /// check may still run).
    Walked(Instant, ScanReport),
    /// A scan could not add a directory watch because the OS limit is reached.
    WatchLimit(String),
}

/// The result of looking at one event's path.
enum Looked {
    File(FileVersion, bool),
    NewDir(Vec<u8>),
    Gone(Vec<u8>),
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanKind {
    Full,
    Subtree,
}

struct State {
    d: Discover,
    settler: Settler,
    scans: JoinSet<ScanKind>,
    found_tx: mpsc::Sender<Found>,
    full_running: bool,
    full_again: Option<&'static str>,
    subtrees_running: usize,
    subtree_queue: VecDeque<Vec<u8>>,
    follow_ups: VecDeque<(Instant, Vec<u8>)>,
    walked_once: bool,
    /// The watch limit was hit since the current full scan started.
    limit_seen: bool,
    /// Part of the tree is unwatched (watch limit): scanned every `poll_every`.
    degraded: bool,
    token: CancellationToken,
    watches: Watches,
    bulk: Bulk,
}

/// The settle check for many files at once (a start-up scan of a large tree, a big copy
/// found by a rescan), in constant memory per file.
///
/// Past [`SETTLER_CAP`], a scan candidate is not held by the settler but remembered as a
/// keyed 64-bit hash of its path and version. Once the scans feeding that set are done,
/// the set is sealed and a full scan is run `settle` later: a file it finds with a version
/// whose hash is in the sealed set was seen unchanged by two scans at least `settle`
/// apart, and is complete. Anything else (changed since, new) starts over as a candidate;
/// a file with an event in between is pending in the settler, which then decides. Two
/// different versions share a hash with probability 2⁻⁶⁴ per pair (the key is random per
/// process, so it cannot be aimed at).
struct Bulk {
    hasher: std::hash::RandomState,
    /// Hashes collected since the last seal.
    collecting: Vec<u64>,
    /// The sealed set (sorted), and the instant from which a scan may confirm it.
    sealed: Option<(Vec<u64>, Instant)>,
    /// When to start the confirming scan.
    confirm_at: Option<Instant>,
}

impl Bulk {
    /// Empty, with a hash key of its own.
    fn new() -> Bulk {
        Bulk {
            hasher: std::hash::RandomState::new(),
            collecting: Vec::new(),
            sealed: None,
            confirm_at: None,
        }
    }

    fn hash(&self, v: &FileVersion) -> u64 {
        use std::hash::BuildHasher;
        self.hasher
            .hash_one((v.rel.as_slice(), v.size, v.mtime.0, v.ino))
    }

    fn len(&self) -> usize {
        self.collecting.len() + self.sealed.as_ref().map_or(0, |(h, _)| h.len())
    }

    /// Whether a scan that started at `started` saw `v` unchanged since the sealed set.
    fn confirms(&self, started: Instant, v: &FileVersion) -> bool {
        match &self.sealed {
            Some((hashes, from)) if started >= *from => hashes.binary_search(&self.hash(v)).is_ok(),
            _ => false,
        }
    }

    /// Seals what was collected, if nothing is sealed yet; the confirming scan is due
    /// `settle` from now.
    fn seal(&mut self, now: Instant, settle: Duration) {
        if self.sealed.is_some() || self.collecting.is_empty() {
            return;
        }
        let mut hashes = std::mem::take(&mut self.collecting);
        hashes.sort_unstable();
        hashes.dedup();
        hashes.shrink_to_fit();
        tracing::info!(
            files = hashes.len(),
            "many new files: a second scan confirms them after the settle time"
        );
        self.sealed = Some((hashes, now + settle));
        self.confirm_at = Some(now + settle);
    }
}

/// Runs discovery until `token` is cancelled.
///
/// # Errors
/// [`IndexError::WriterGone`] if the index writer stops underneath it.
pub async fn run(
    d: Discover,
    watch_rx: WatchRx,
    dropped: Arc<AtomicBool>,
    token: CancellationToken,
) -> Result<(), IndexError> {
    let (found_tx, mut found_rx) = mpsc::channel(64);
    let rescan_every = d.rescan_every;
    let WatchRx {
        rx: mut watch_rx,
        watches,
    } = watch_rx;
    let mut st = State {
        settler: Settler::new(d.settle),
        d,
        scans: JoinSet::new(),
        found_tx,
        full_running: false,
        full_again: None,
        subtrees_running: 0,
        subtree_queue: VecDeque::new(),
        follow_ups: VecDeque::new(),
        walked_once: false,
        limit_seen: false,
        degraded: false,
        token: token.clone(),
        watches,
        bulk: Bulk::new(),
    };
    st.d.health
        .set_watcher(if st.d.poll { "poll" } else { "inotify" });
    st.request_full("start-up");
    let mut rescan =
        tokio::time::interval_at(tokio::time::Instant::now() + rescan_every, rescan_every);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut msgs = Vec::with_capacity(1024);
    let mut watching = !st.d.poll;
    // The watched directory itself can vanish or turn unreadable (an unmounted share, a
    // deleted folder): checked every second, and resumed from by itself.
    let mut degraded_poll = tokio::time::interval(st.d.poll_every);
    degraded_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut root_check = tokio::time::interval(ROOT_CHECK);
    root_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = [
            st.settler.next_due(),
            st.follow_ups.front().map(|(t, _)| *t),
            st.bulk.confirm_at,
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            n = watch_rx.recv_many(&mut msgs, 1024), if watching => {
                if n == 0 {
                    // The watcher is gone; only the periodic rescan is left.
                    watching = false;
                    st.d.health.set_watcher("degraded");
                    tracing::warn!("the file-system watcher stopped; relying on periodic rescans");
                }
                st.on_watch(std::mem::take(&mut msgs)).await?;
            }
            Some(found) = found_rx.recv() => st.on_found(found).await?,
            Some(done) = st.scans.join_next(), if !st.scans.is_empty() => st.on_scan_done(done),
            _ = sleep_until(deadline), if deadline.is_some() => st.on_due().await?,
            _ = rescan.tick() => st.request_full(if st.d.poll { "poll interval" } else { "periodic rescan" }),
            _ = root_check.tick() => st.check_root().await,
            _ = degraded_poll.tick(), if st.degraded => st.request_full("watch limit: polling"),
        }
        if dropped.swap(false, Ordering::AcqRel) {
            st.request_full("the watcher's channel was full and events were dropped");
        }
        if st
            .d
            .reader
            .stats()
            .needs_rescan
            .swap(false, Ordering::AcqRel)
        {
            st.request_full("the index takes writes again");
        }
        st.d.health.set_pending(st.settler.len() + st.bulk.len());
    }
    st.scans.shutdown().await;
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at.into()).await;
    }
}

impl State {
    fn rel_of<'a>(&self, path: &'a Path) -> Option<&'a Path> {
        path.strip_prefix(&self.d.root).ok()
    }

    fn request_full(&mut self, why: &'static str) {
        if self.full_running {
            self.full_again = Some(why);
            return;
        }
        tracing::info!(reason = why, "full scan");
        self.full_running = true;
        self.limit_seen = false;
        self.spawn_scan(ScanKind::Full, Vec::new());
    }

    fn request_subtree(&mut self, rel: Vec<u8>) {
        if !self.subtree_queue.contains(&rel) {
            self.subtree_queue.push_back(rel);
        }
        while self.subtrees_running < MAX_SUBTREE_SCANS {
            let Some(next) = self.subtree_queue.pop_front() else {
                break;
            };
            self.subtrees_running += 1;
            self.spawn_scan(ScanKind::Subtree, next);
        }
    }

    fn spawn_scan(&mut self, kind: ScanKind, sub: Vec<u8>) {
        let root = self.d.root.clone();
        let recursive = self.d.recursive;
        let filter = self.d.filter.clone();
        let reader = self.d.reader.clone();
        let tx = self.found_tx.clone();
        let cancel = self.token.clone();
        let watches = self.watches.clone();
        self.scans.spawn_blocking(move || {
            let sub = PathBuf::from(std::ffi::OsStr::from_bytes(&sub));
            let snapshot = match reader.snapshot() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the index; scan skipped");
                    return kind;
                }
            };
            let mut batch = Vec::with_capacity(BATCH);
            // Every stat of this scan happens after this instant.
            let started = Instant::now();
            // Each directory is watched just before the scan reads it (the watched
            // directory itself has its watch already). Past the OS limit, the rest of this
            // scan goes on without adding any.
            let mut watching = recursive;
            let enter = |dir: &Path| {
                if !watching || dir == root {
                    return;
                }
                match watches.add(dir) {
                    Ok(()) => {}
                    Err(AddError::Limit(message)) => {
                        watching = false;
                        let _ = tx.blocking_send(Found::WatchLimit(message));
                    }
                    Err(AddError::Other(message)) => {
                        tracing::debug!(dir = %dir.display(), error = %message, "no watch added");
                    }
                }
            };
            let report = scan::scan(
                &root,
                &sub,
                recursive,
                &filter,
                &snapshot,
                &cancel,
                enter,
                |v| {
                    batch.push(v);
                    if batch.len() >= BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        return tx.blocking_send(Found::Candidates(started, full)).is_ok();
                    }
                    true
                },
            );
            if !batch.is_empty() && tx.blocking_send(Found::Candidates(started, batch)).is_err() {
                return kind;
            }
            if kind == ScanKind::Full {
                tracing::info!(
                    files = report.files,
                    new = report.candidates,
                    errors = report.errors,
                    ms = started.elapsed().as_millis() as u64,
                    "full scan walked the tree"
                );
                if tx.blocking_send(Found::Walked(started, report)).is_err() || report.stopped {
                    return kind;
                }
                // A missing or unreadable watched directory is an outage, not the
                // deletion of every file: keep the index as it is.
                if std::fs::read_dir(&root).is_err() {
                    tracing::warn!(dir = %root.display(), "the watched directory cannot be read; deletion check skipped");
                    return kind;
                }
                // Likewise a tree that is suddenly empty while the index is not: most
                // likely an unmounted share showing its empty mount point. Dropping every
                // entry would offer every file again after the remount; deletions seen
                // as events are still applied.
                if report.files == 0 && reader.stats().files() > 0 {
                    tracing::warn!(dir = %root.display(), "the watched directory is empty but the index is not; deletion check skipped");
                    return kind;
                }
                let mut gone = Vec::new();
                let result = scan::find_deleted(&root, &snapshot, &cancel, |rel, stamp| {
                    gone.push((rel, stamp));
                    if gone.len() >= BATCH {
                        let full = std::mem::take(&mut gone);
                        return tx.blocking_send(Found::Gone(full)).is_ok();
                    }
                    true
                });
                if let Err(e) = result {
                    tracing::warn!(error = %e, "deletion check failed");
                }
                if !gone.is_empty() {
                    let _ = tx.blocking_send(Found::Gone(gone));
                }
            }
            kind
        });
    }

    fn on_scan_done(&mut self, done: Result<ScanKind, tokio::task::JoinError>) {
        let kind = match done {
            Ok(kind) => kind,
            Err(e) => {
                tracing::error!(error = %e, "a scan task failed");
                // Assume the worst: it was a full scan; run another.
                self.full_running = false;
                self.request_full("a scan failed");
                return;
            }
        };
        match kind {
            ScanKind::Full => {
                self.full_running = false;
                if let Some(why) = self.full_again.take() {
                    self.request_full(why);
                }
            }
            ScanKind::Subtree => {
                self.bulk.seal(Instant::now(), self.d.settle);
                self.subtrees_running = self.subtrees_running.saturating_sub(1);
                if let Some(next) = self.subtree_queue.pop_front() {
                    self.request_subtree(next);
                }
            }
        }
    }

    async fn on_found(&mut self, found: Found) -> Result<(), IndexError> {
        let now = Instant::now();
        match found {
            Found::Candidates(started, vs) => {
                for v in vs {
                    if self.settler.contains(&v.rel) || self.settler.len() < SETTLER_CAP {
                        self.settler.observe(v, false, now);
                    } else if self.bulk.confirms(started, &v) {
                        self.d.writer.send(WriteOp::Upsert(v)).await?;
                    } else {
                        let h = self.bulk.hash(&v);
                        self.bulk.collecting.push(h);
                    }
                }
            }
            Found::Gone(gone) => {
                for (rel, stamp) in gone {
                    self.settler.forget(&rel);
                    self.d
                        .writer
                        .send(WriteOp::Remove(rel, Some(stamp)))
                        .await?;
                }
            }
            Found::WatchLimit(message) => {
                self.limit_seen = true;
                if !self.degraded {
                    self.degraded = true;
                    self.d.health.set_watcher("degraded");
                    tracing::warn!(
                        error = %message,
                        every_s = self.d.poll_every.as_secs(),
                        "inotify watch limit reached: directories past it are covered by polling scans until watches are available again; raise fs.inotify.max_user_watches"
                    );
                }
            }
            Found::Walked(started, report) => {
                // A full walk that started after the seal has confirmed what it could.
                if matches!(&self.bulk.sealed, Some((_, from)) if started >= *from) {
                    self.bulk.sealed = None;
                }
                self.bulk.seal(now, self.d.settle);
                self.d.health.set_last_rescan(Stamp::now());
                // A full walk that could add every watch ends the degraded mode.
                if self.degraded && !self.limit_seen && !report.stopped {
                    self.degraded = false;
                    self.d.health.set_watcher("inotify");
                    tracing::info!("every directory is watched again");
                }
                if !self.walked_once {
                    self.walked_once = true;
                    self.d.health.set_ready(true);
                    tracing::info!(
                        files = report.files,
                        new = report.candidates,
                        "start-up scan done; ready"
                    );
                }
            }
        }
        Ok(())
    }

    async fn on_watch(&mut self, msgs: Vec<WatchMsg>) -> Result<(), IndexError> {
        let mut look: Vec<(PathBuf, bool, bool)> = Vec::new();
        for msg in msgs {
            let ev = match msg {
                WatchMsg::Event(ev) => ev,
                WatchMsg::Rescan(why) => {
                    tracing::warn!(reason = why, "events were lost; rescanning");
                    self.request_full(why);
                    continue;
                }
                WatchMsg::Error { message, limit } => {
                    if limit {
                        self.d.health.set_watcher("degraded");
                        tracing::warn!(
                            error = %message,
                            "inotify watch limit reached: new directories are covered by rescans only; raise fs.inotify.max_user_watches"
                        );
                    } else {
                        tracing::warn!(error = %message, "watcher error; rescanning");
                    }
                    self.request_full("watcher error");
                    continue;
                }
            };
            // (changed: a write was reported, arrival: a create or rename-into-place)
            let what = match ev.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some((true, false)),
                EventKind::Access(_) => None,
                EventKind::Create(_) => Some((true, true)),
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                    for p in &ev.paths {
                        self.gone(p).await?;
                    }
                    None
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => None,
                EventKind::Modify(ModifyKind::Name(_)) => Some((true, true)),
                EventKind::Modify(ModifyKind::Data(_)) | EventKind::Modify(ModifyKind::Any) => {
                    Some((true, false))
                }
                EventKind::Modify(_) => Some((false, false)),
                EventKind::Remove(_) => {
                    for p in &ev.paths {
                        self.gone(p).await?;
                    }
                    None
                }
                EventKind::Any | EventKind::Other => Some((false, false)),
            };
            if let Some((changed, arrival)) = what {
                for p in ev.paths {
                    look.push((p, changed, arrival));
                }
            }
        }
        if look.is_empty() {
            return Ok(());
        }
        let root = self.d.root.clone();
        let filter = self.d.filter.clone();
        let recursive = self.d.recursive;
        let looked = tokio::task::spawn_blocking(move || {
            look.into_iter()
                .map(|(path, changed, arrival)| {
                    look_at(&root, &filter, recursive, &path, changed, arrival)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let now = Instant::now();
        for l in looked {
            match l {
                Looked::File(v, changed) => self.settler.observe(v, changed, now),
                Looked::NewDir(rel) => {
                    self.request_subtree(rel.clone());
                    self.follow_ups.push_back((now + NEW_DIR_FOLLOW_UP, rel));
                }
                Looked::Gone(rel) => {
                    self.settler.forget(&rel);
                    self.d.writer.send(WriteOp::Remove(rel, None)).await?;
                }
                Looked::Nothing => {}
            }
        }
        Ok(())
    }

    /// Checks that the watched directory exists and can be listed. Going bad makes
    /// `/healthz` answer 503; coming back re-adds its watch and rescans.
    async fn check_root(&mut self) {
        let root = self.d.root.clone();
        let ok = tokio::task::spawn_blocking(move || {
            std::fs::read_dir(&root)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match (self.d.health.root_ok(), ok) {
            (true, Err(e)) => {
                tracing::error!(dir = %self.d.root.display(), error = %e, "the watched directory is unavailable; waiting for it to come back");
                self.d.health.set_root_ok(false);
            }
            (false, Ok(())) => {
                tracing::info!(dir = %self.d.root.display(), "the watched directory is back; rescanning");
                if let Err(AddError::Limit(m) | AddError::Other(m)) = self.watches.add(&self.d.root)
                {
                    tracing::warn!(error = %m, "cannot watch the watched directory again; relying on rescans");
                    self.d.health.set_watcher("degraded");
                }
                self.d.health.set_root_ok(true);
                self.request_full("the watched directory is back");
            }
            _ => {}
        }
    }

    /// A path was deleted or renamed away: a file, or a directory with files below it.
    async fn gone(&mut self, path: &Path) -> Result<(), IndexError> {
        let Some(rel) = self.rel_of(path) else {
            return Ok(());
        };
        let rel = rel.as_os_str().as_bytes().to_vec();
        if rel.is_empty() {
            // The watched directory itself; a rescan will tell what is left.
            self.request_full("the watched directory was removed or moved");
            return Ok(());
        }
        self.settler.forget(&rel);
        self.settler.forget_tree(&rel);
        self.d
            .writer
            .send(WriteOp::Remove(rel.clone(), None))
            .await?;
        self.d.writer.send(WriteOp::RemoveTree(rel)).await
    }

    async fn on_due(&mut self) -> Result<(), IndexError> {
        let now = Instant::now();
        if self.bulk.confirm_at.is_some_and(|at| at <= now) {
            self.bulk.confirm_at = None;
            self.request_full("confirming the many new files the last scan found");
        }
        while let Some((at, _)) = self.follow_ups.front() {
            if *at > now {
                break;
            }
            if let Some((_, rel)) = self.follow_ups.pop_front() {
                self.request_subtree(rel);
            }
        }
        let due = self.settler.due(now, DUE_BATCH);
        if due.is_empty() {
            return Ok(());
        }
        let root = self.d.root.clone();
        let filter = self.d.filter.clone();
        let looked = tokio::task::spawn_blocking(move || {
            let mut seen = HashSet::new();
            due.into_iter()
                .filter(|rel| seen.insert(rel.clone()))
                .map(|rel| {
                    let path = Path::new(std::ffi::OsStr::from_bytes(&rel));
                    let v = scan::stat_file(&root, path, &filter);
                    (rel, v)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let now = Instant::now();
        for (rel, current) in looked {
            if let Some(v) = self.settler.confirm(&rel, current, now) {
                self.d.writer.send(WriteOp::Upsert(v)).await?;
            }
        }
        Ok(())
    }
}

/// Stats one event's path (blocking).
fn look_at(
    root: &Path,
    filter: &Filter,
    recursive: bool,
    path: &Path,
    changed: bool,
    arrival: bool,
) -> Looked {
    let Ok(rel) = path.strip_prefix(root) else {
        return Looked::Nothing;
    };
    if rel.as_os_str().is_empty() {
        return Looked::Nothing;
    }
    let bytes = || rel.as_os_str().as_bytes().to_vec();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {
            if filter.offers_file(rel) {
                Looked::File(scan::version_of(rel, &m), changed)
            } else {
                Looked::Nothing
            }
        }
        Ok(m) if m.file_type().is_dir() => {
            if arrival && recursive && !filter.prunes_dir(rel) {
                Looked::NewDir(bytes())
            } else {
                Looked::Nothing
            }
        }
        Ok(_) => Looked::Nothing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Looked::Gone(bytes()),
        Err(_) => Looked::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(rel: &str, size: u64) -> FileVersion {
        FileVersion {
            rel: rel.as_bytes().to_vec(),
            size,
            mtime: Stamp(7),
            ino: 3,
        }
    }

    #[test]
    fn bulk_confirms_only_the_same_version_seen_by_a_scan_started_a_settle_time_later() {
        let settle = Duration::from_millis(2000);
        let t0 = Instant::now();
        let mut b = Bulk::new();
        b.seal(t0, settle);
        assert!(b.sealed.is_none(), "nothing collected, nothing sealed");
        let h = b.hash(&v("a", 1));
        b.collecting.push(h);
        b.seal(t0, settle);
        assert_eq!(b.confirm_at, Some(t0 + settle));
        assert_eq!(b.len(), 1);
        // A scan that started before the settle time ran out confirms nothing.
        assert!(!b.confirms(t0 + Duration::from_millis(1999), &v("a", 1)));
        // One that started after it confirms the same version only.
        assert!(b.confirms(t0 + settle, &v("a", 1)));
        assert!(!b.confirms(t0 + settle, &v("a", 2)), "changed size");
        assert!(!b.confirms(t0 + settle, &v("b", 1)), "another path");
        // What is collected meanwhile waits for the next seal.
        let h = b.hash(&v("c", 1));
        b.collecting.push(h);
        b.seal(t0 + settle, settle);
        assert!(!b.confirms(t0 + settle * 3, &v("c", 1)));
        b.sealed = None;
        b.seal(t0 + settle, settle);
        assert!(b.confirms(t0 + settle * 2, &v("c", 1)));
    }
}
