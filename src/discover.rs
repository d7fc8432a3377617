//! Discovery: from watcher changes and scans to complete file versions in the index.
//!
//! Owns: the one task that reacts to the watcher's [`Change`]s and to what scans find;
//! starting the scans its `Schedule` hands out (on blocking threads, `discover/scans.rs`:
//! each adds the directory watches before it reads); feeding the [`Settler`] (or, for many
//! new files at once, [`Bulk`]); stat'ing each due file once more and sending complete
//! versions and removals to the index writer; checking the watched directory every
//! second; publishing the status (`health`): ready after the start-up walk, the
//! watcher's state, the pending count; and counting lost events and rescans (`metrics`).
//! Does not own: the notify thread and naming its events (`watch`), when to scan and the
//! watcher's state (`schedule`), walking and the deletion-check guards (`scan`), when a
//! file is complete (`settle`), or the store (`index`).
//!
//! One file's way from an inotify event to the index:
//! 1. `watch`: the kernel's event becomes a [`Change`] (`Create`, `Write`, `CloseWrite`,
//!    ...) on notify's thread and reaches [`run`]'s loop through a bounded channel.
//! 2. `State::on_changes`: each path is stat'ed on a blocking thread (`look_at`), which
//!    also turns what the event said (`Said`) into what it tells of the file's writer
//!    ([`Seen`]; a file moved into place is probed, `writers`). A regular file the filter
//!    offers goes to `State::observe`, the one place where that reaches
//!    [`Settler::see`]; a new directory gets subtree scans (`Schedule::new_dir`); a path
//!    gone is removed from the index at once.
//! 3. When its wait has run out ([`Settler::next_due`] wakes the loop), `State::on_due`
//!    stats it again and, unless it is known to be open for writing, probes its writers
//!    (`settle_due`): unchanged and not open means complete, and it is sent to the index
//!    writer as `WriteOp::Upsert` (`WriteOp::UpsertStillOpen` for a file offered after
//!    `watch.max_open_hold_s` while still open, with one warning naming it).
//! 4. `index`: the writer stamps and commits it; a poll (`http`, `offer`) serves it.
//!
//! A file that no event told about is found by a scan instead (start-up, overflow,
//! periodic): `scan::scan` on a scan thread (`discover/scans.rs`) → `Found::Candidates` →
//! the settler as in step 2 ([`Seen::Scan`]: `watch.settle_ms`), or [`Bulk`]; in `poll`
//! mode with `watch.poll_confirm = "two_scans"`, always [`Bulk`].

mod scans;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::error::IndexError;
use crate::filter::Filter;
use crate::health::Health;
use crate::health::Watcher;
use crate::index::{FileVersion, IndexReader, WriteOp, WriterHandle};
use crate::metrics::{Metrics, Overflow};
use crate::scan;
use crate::schedule::{Scan, ScanKind, Schedule};
use crate::settle::{Bulk, Complete, Seen, Settler, Timing, Writer};
use crate::stamp::Stamp;
use crate::watch::{AddError, Change, WatchRx};
use crate::writers::{self, Writers};

use self::scans::{Found, ScanJob};

/// Due files are stat'ed in batches of at most this many.
const DUE_BATCH: usize = 4096;
/// How often the watched directory itself is checked.
const ROOT_CHECK: Duration = Duration::from_secs(1);
/// Scan candidates the settlers of all folders together hold at most ([`SettlerShare`]);
/// past this, a scan's candidates are only remembered as a hash each and confirmed by a
/// second scan (see [`Bulk`]).
const SETTLER_CAP: usize = 4_096;
/// Why the full scan that confirms [`Bulk`]'s files runs.
const CONFIRM: &str = "confirming the many new files the last scan found";
/// What a scan thread may send ahead of discovery, in [`Found`] messages (a batch of
/// candidates each: `scans::BATCH`). Discovery drains at the index writer's pace, shared
/// by every folder; a deeper queue only holds more candidates in memory while several
/// folders are walked at once (64 cost 8 folders about 20 MB more at 1M files).
const FOUND_QUEUE: usize = 4;

/// What discovery needs.
#[derive(Debug)]
pub struct Discover {
    /// The watched directory, absolute.
    pub root: PathBuf,
    /// `watch.recursive`
    pub recursive: bool,
    /// `watch.settle_ms`
    pub settle: Duration,
    /// `watch.settle_ms`, `watch.settle_after_close_ms`, `watch.max_open_hold_s`.
    pub timing: Timing,
    /// `watch.mode = "poll"` with `watch.poll_confirm = "two_scans"`: every file a scan
    /// finds is confirmed by a second scan at least `settle` later ([`Bulk`]).
    pub two_scans: bool,
    /// `watch.rescan_interval_s`
    pub rescan_every: Duration,
    /// `watch.mode = "poll"`: no watcher; every `rescan_every` a full scan.
    pub poll: bool,
    /// `watch.poll_interval_s`: how often to scan while part of the tree is unwatched
    /// (the inotify watch limit).
    pub poll_every: Duration,
    /// `watch.include` / `watch.exclude`
    pub filter: Arc<Filter>,
    /// Read side of the index (to skip known versions while scanning).
    pub reader: IndexReader,
    /// Write side of the index.
    pub writer: WriterHandle,
    /// Status for `/healthz`.
    pub health: Arc<Health>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// This folder's part of [`SETTLER_CAP`], shared with the other folders.
    pub share: SettlerShare,
    /// The threads full scans walk on, shared by every folder.
    pub scan_pool: ScanPool,
}

/// A full scan's walk, sent to the [`ScanPool`].
type Walk = Box<dyn FnOnce() + Send>;

/// The threads full scans walk on, shared by every folder: one per core, at least two.
/// Eight folders of 125,000 files walked at once on two cores took longer than two at a
/// time (8.6-9.0 s against 6.5-6.9 s to index all 1M) and held eight walks in memory;
/// walks handed to tokio's blocking pool two at a time still spread over a dozen of its
/// threads, and each thread's malloc arena kept what its walks had freed (a restart's peak
/// RSS 50-66 MiB against 35 with one arena). A few threads of their own keep that to
/// their arenas. A new directory's scan (`Scan::Subtree`) stays on the blocking pool and
/// never waits for these.
#[derive(Clone, Debug)]
pub struct ScanPool {
    tx: std::sync::mpsc::Sender<Walk>,
}

impl ScanPool {
    /// Starts the pool's threads. A thread the OS refuses is logged and left out; with
    /// none, full scans go to the blocking pool as before.
    #[must_use]
    pub fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let (tx, rx) = std::sync::mpsc::channel::<Walk>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..cores.clamp(2, 8) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("scan-{i}"))
                .spawn(move || loop {
                    // Taken under the lock, run without it; a poisoned lock still hands
                    // out walks (the walk itself never runs under it).
                    let next = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match next {
                        Ok(walk) => walk(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start a scan thread");
            }
        }
        Self { tx }
    }
}

/// What each folder's settler holds, seen by every folder, so that [`SETTLER_CAP`] bounds
/// the daemon rather than each folder: eight folders scanned at once held eight times the
/// entries (about 10 MB more at 1M files). A folder may always fill its even part of the
/// cap, and beyond it what the others leave unused.
#[derive(Debug, Clone)]
pub struct SettlerShare {
    held: Arc<[AtomicUsize]>,
    mine: usize,
}

impl SettlerShare {
    /// One share for each of `folders` folders.
    #[must_use]
    pub fn split(folders: usize) -> Vec<Self> {
        let held: Arc<[AtomicUsize]> = (0..folders).map(|_| AtomicUsize::new(0)).collect();
        (0..folders)
            .map(|mine| Self {
                held: held.clone(),
                mine,
            })
            .collect()
    }

    /// Tells the other folders how many entries this folder's settler holds.
    fn publish(&self, len: usize) {
        self.held[self.mine].store(len, Ordering::Relaxed);
    }

    /// How many entries this folder's settler may hold (for scan candidates) while the
    /// others hold what they last published.
    fn room(&self) -> usize {
        let others: usize = self
            .held
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.mine)
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum();
        let even = SETTLER_CAP / self.held.len().max(1);
        SETTLER_CAP.saturating_sub(others).max(even)
    }
}

/// What an event said about a file, as far as its quiet time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    /// Created.
    Arrived,
    /// Moved into place (renamed from another name, or moved in from outside the tree).
    MovedIn,
    /// Written to.
    Written,
    /// Closed by a writer.
    Closed,
    /// Something else (metadata).
    Touched,
}

/// The result of looking at one event's path.
enum Looked {
    File(FileVersion, Seen),
    NewDir(Vec<u8>),
    Gone(Vec<u8>),
    Nothing,
}

struct State {
    d: Discover,
    settler: Settler,
    bulk: Bulk,
    sched: Schedule,
    scans: JoinSet<()>,
    /// The kind of each running scan task, to tell the schedule which one ended (even
    /// when it panicked).
    running: HashMap<Id, ScanKind>,
    /// What every scan thread gets a copy of.
    job: ScanJob,
}

/// Runs discovery until `token` is cancelled. `dropped` is notified when the watcher
/// lost events because its channel was full.
///
/// # Errors
/// [`IndexError::WriterGone`] if the index writer stops underneath it.
pub async fn run(
    d: Discover,
    watch_rx: WatchRx,
    dropped: Arc<Notify>,
    token: CancellationToken,
) -> Result<(), IndexError> {
    let (found_tx, mut found_rx) = mpsc::channel(FOUND_QUEUE);
    let WatchRx {
        rx: mut changes_rx,
        watches,
    } = watch_rx;
    let job = ScanJob {
        root: d.root.clone(),
        recursive: d.recursive,
        filter: d.filter.clone(),
        reader: d.reader.clone(),
        tx: found_tx,
        cancel: token.clone(),
        watches,
        health: d.health.clone(),
        metrics: d.metrics.clone(),
    };
    let mut st = State {
        settler: Settler::with_timing(d.timing),
        bulk: Bulk::new(d.settle),
        sched: Schedule::new(d.poll, d.rescan_every, d.poll_every, Instant::now()),
        scans: JoinSet::new(),
        running: HashMap::new(),
        job,
        d,
    };
    let mut changes = Vec::with_capacity(1024);
    // The watched directory itself can vanish or turn unreadable (an unmounted share, a
    // deleted folder): checked every second, and resumed from by itself.
    let mut root_check = tokio::time::interval(ROOT_CHECK);
    root_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        st.start_scans();
        st.publish();
        let deadline = st
            .settler
            .next_due()
            .map_or(st.sched.next_due(), |t| t.min(st.sched.next_due()));
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = dropped.notified() => {
                st.d.metrics.overflow(Overflow::Queue);
                st.settler.forget_writers();
                st.sched.want_full("the watcher's channel was full and events were dropped");
            }
            _ = st.d.reader.needs_rescan().notified() => {
                st.sched.want_full("the index takes writes again");
            }
            n = changes_rx.recv_many(&mut changes, 1024), if st.sched.listening() => {
                if n == 0 {
                    tracing::warn!(every_s = st.d.poll_every.as_secs(), "the file-system watcher stopped; relying on polling scans");
                    st.sched.watcher_stopped(Instant::now());
                    st.settler.forget_writers();
                }
                st.on_changes(&mut changes).await?;
            }
            Some(found) = found_rx.recv() => st.on_found(found).await?,
            Some(done) = st.scans.join_next_with_id(), if !st.scans.is_empty() => st.on_scan_done(done),
            _ = tokio::time::sleep_until(deadline.into()) => st.on_due().await?,
            _ = root_check.tick() => st.check_root().await,
        }
    }
    // A scan thread blocked on a full queue must see it closed, or waiting for it hangs.
    drop(found_rx);
    while st.scans.join_next().await.is_some() {}
    Ok(())
}

impl State {
    /// Starts every scan the schedule wants now.
    fn start_scans(&mut self) {
        while let Some(scan) = self.sched.next_start() {
            if let Scan::Full(why) = scan {
                tracing::info!(reason = why, "full scan");
                if self.d.health.is_ready() {
                    self.d.metrics.rescan();
                }
            }
            let kind = scan.kind();
            let job = self.job.clone();
            let task = if kind == ScanKind::Full {
                let (done_tx, done_rx) = oneshot::channel();
                let walk: Walk = Box::new(move || {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job.run(scan);
                    }));
                    let _ = done_tx.send(r);
                });
                if let Err(std::sync::mpsc::SendError(walk)) = self.d.scan_pool.tx.send(walk) {
                    // No scan thread could be started: the blocking pool walks it.
                    drop(tokio::task::spawn_blocking(walk));
                }
                self.scans.spawn(async move {
                    // A panic in the walk ends this task the same way, so the schedule
                    // hears of it (`on_scan_done`).
                    if let Ok(Err(panic)) = done_rx.await {
                        std::panic::resume_unwind(panic);
                    }
                })
            } else {
                self.scans.spawn_blocking(move || job.run(scan))
            };
            self.running.insert(task.id(), kind);
        }
    }

    /// Tells `/healthz` the watcher's state and the pending count.
    fn publish(&self) {
        self.d.share.publish(self.settler.len());
        self.d.health.set_watcher(self.sched.watcher());
        self.d
            .health
            .set_pending(self.settler.len() + self.bulk.len());
    }

    fn on_scan_done(&mut self, done: Result<(Id, ()), JoinError>) {
        let (id, ok) = match done {
            Ok((id, ())) => (id, true),
            Err(e) => {
                tracing::error!(error = %e, "a scan task failed; a full scan follows");
                (e.id(), false)
            }
        };
        let Some(kind) = self.running.remove(&id) else {
            return;
        };
        self.sched.finished(kind, ok);
        if kind == ScanKind::Subtree {
            if let Some(at) = self.bulk.seal(Instant::now()) {
                self.sched.want_full_at(at, CONFIRM);
            }
        }
    }

    async fn on_found(&mut self, found: Found) -> Result<(), IndexError> {
        let now = Instant::now();
        match found {
            Found::Candidates(started, vs) => {
                let room = self.d.share.room();
                for v in vs {
                    if self.d.two_scans {
                        if self.bulk.confirms(started, &v) {
                            self.d.writer.send(WriteOp::Upsert(v)).await?;
                        } else {
                            self.bulk.collect(&v);
                        }
                    } else if self.settler.contains(&v.rel) || self.settler.len() < room {
                        self.settler.observe(v, false, now);
                    } else if self.bulk.confirms(started, &v) {
                        self.d.writer.send(WriteOp::Upsert(v)).await?;
                    } else {
                        self.bulk.collect(&v);
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
            Found::WatchLimit(message) => self.watch_limit(&message, now),
            Found::Walked(started, report) => {
                if let Some(at) = self.bulk.walked(started, now) {
                    self.sched.want_full_at(at, CONFIRM);
                }
                self.d.health.set_last_rescan(Stamp::now());
                let walked = self.sched.walked(report.stopped, now);
                if walked.watched_again {
                    tracing::info!("every directory is watched again");
                }
                if walked.first {
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

    /// The inotify watch limit was reached (by a scan, or reported by the watcher).
    fn watch_limit(&mut self, message: &str, now: Instant) {
        // A file in a directory past the limit gets no close event.
        self.settler.forget_writers();
        if self.sched.watch_limit(now) {
            tracing::warn!(
                error = %message,
                every_s = self.d.poll_every.as_secs(),
                "inotify watch limit reached: directories past it are covered by polling scans until watches are available again; raise fs.inotify.max_user_watches"
            );
        }
    }

    /// Handles a batch of the watcher's changes (and empties `changes`).
    async fn on_changes(&mut self, changes: &mut Vec<Change>) -> Result<(), IndexError> {
        let mut look: Vec<(PathBuf, Said)> = Vec::new();
        for change in changes.drain(..) {
            match change {
                Change::Create(p) => look.push((p, Said::Arrived)),
                Change::MovedIn(p) => look.push((p, Said::MovedIn)),
                Change::Write(p) => look.push((p, Said::Written)),
                Change::CloseWrite(p) => look.push((p, Said::Closed)),
                Change::Touch(p) => look.push((p, Said::Touched)),
                Change::Remove(p) => self.gone(&p).await?,
                // Its halves came before it as `Remove(from)` and `Create(to)`.
                Change::Rename { .. } => {}
                Change::Rescan(why) => {
                    self.d.metrics.overflow(Overflow::Kernel);
                    tracing::warn!(reason = why, "events were lost; rescanning");
                    self.settler.forget_writers();
                    self.sched.want_full(why);
                }
                Change::Failed { message, limit } => {
                    if limit {
                        self.watch_limit(&message, Instant::now());
                    } else {
                        tracing::warn!(error = %message, "watcher error; rescanning");
                        self.settler.forget_writers();
                    }
                    self.sched.want_full("watcher error");
                }
            }
        }
        if look.is_empty() {
            return Ok(());
        }
        let root = self.d.root.clone();
        let filter = self.d.filter.clone();
        let recursive = self.d.recursive;
        let looked = blocking("looking at changed paths", move || {
            look.into_iter()
                .map(|(path, said)| look_at(&root, &filter, recursive, &path, said))
                .collect::<Vec<_>>()
        })
        .await;
        let Some(looked) = looked else {
            // What these events said is lost; a rescan finds it.
            self.sched.want_full("looking at changed paths failed");
            return Ok(());
        };
        let now = Instant::now();
        for l in looked {
            match l {
                Looked::File(v, seen) => self.observe(v, seen, now),
                Looked::NewDir(rel) => self.sched.new_dir(rel, now),
                Looked::Gone(rel) => {
                    self.settler.forget(&rel);
                    self.d.writer.send(WriteOp::Remove(rel, None)).await?;
                }
                Looked::Nothing => {}
            }
        }
        Ok(())
    }

    /// A file was seen after an event: the one place where what the event said of its
    /// writer (`look_at`) reaches the settler.
    fn observe(&mut self, v: FileVersion, seen: Seen, now: Instant) {
        self.settler.see(v, seen, now);
    }

    /// Checks that the watched directory exists and can be listed. Going bad makes
    /// `/healthz` answer 503; coming back re-adds its watch and rescans. While its watch
    /// is missing, adding it is tried again every check.
    async fn check_root(&mut self) {
        let root = self.d.root.clone();
        let ok = blocking("checking the watched directory", move || {
            std::fs::read_dir(&root)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|| Err("the check failed".to_string()));
        match (self.d.health.root_ok(), ok) {
            (true, Err(e)) => {
                tracing::error!(dir = %self.d.root.display(), error = %e, "the watched directory is unavailable; waiting for it to come back");
                self.d.health.set_root_ok(false);
            }
            (false, Ok(())) => {
                tracing::info!(dir = %self.d.root.display(), "the watched directory is back; rescanning");
                self.watch_root();
                self.d.health.set_root_ok(true);
                self.sched.want_full("the watched directory is back");
            }
            (true, Ok(())) if self.sched.root_unwatched() => self.watch_root(),
            _ => {}
        }
    }

    /// Adds the watched directory's own watch again.
    fn watch_root(&mut self) {
        let was_unwatched = self.sched.root_unwatched();
        let ok = match self.job.watches.add(&self.d.root) {
            Ok(()) => true,
            Err(AddError::Limit(m) | AddError::Other(m)) => {
                if !was_unwatched {
                    tracing::warn!(error = %m, "cannot watch the watched directory again; polling until it can be watched");
                }
                false
            }
        };
        if ok && was_unwatched {
            tracing::info!(dir = %self.d.root.display(), "the watched directory is watched again");
        }
        self.sched.root_watch(ok, Instant::now());
    }

    /// A path was deleted or renamed away: a file, or a directory with files below it.
    async fn gone(&mut self, path: &Path) -> Result<(), IndexError> {
        let Ok(rel) = path.strip_prefix(&self.d.root) else {
            return Ok(());
        };
        let rel = rel.as_os_str().as_bytes().to_vec();
        if rel.is_empty() {
            // The watched directory itself; a rescan will tell what is left.
            self.sched
                .want_full("the watched directory was removed or moved");
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

    /// Something is due: scans the schedule wants by now, and files whose quiet time ran
    /// out (complete ones go to the index).
    async fn on_due(&mut self) -> Result<(), IndexError> {
        let now = Instant::now();
        self.sched.tick(now);
        let root = self.d.root.clone();
        let filter = self.d.filter.clone();
        // Only while every directory is watched does a writer's close come as an event.
        let events = self.sched.watcher() == Watcher::Inotify;
        let complete = settle_due(&mut self.settler, now, events, move |rel, probe| {
            let v = scan::stat_file(&root, Path::new(OsStr::from_bytes(rel)), &filter);
            let w = (probe && v.is_some()).then(|| writers::probe_beneath(&root, rel));
            (v, w)
        })
        .await;
        for c in complete {
            if c.still_open {
                tracing::warn!(
                    path = %self.d.root.join(OsStr::from_bytes(&c.version.rel)).display(),
                    max_open_hold_s = self.d.timing.max_open_hold.as_secs(),
                    "offered while still open for writing: its writer kept it open longer than watch.max_open_hold_s"
                );
                self.d
                    .writer
                    .send(WriteOp::UpsertStillOpen(c.version))
                    .await?;
            } else {
                self.d.writer.send(WriteOp::Upsert(c.version)).await?;
            }
        }
        Ok(())
    }
}

/// Runs `work` on a blocking thread. A panic there is logged and gives `None`, so the
/// caller can put back or rescan what the work was about.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, task = what, "a blocking task failed");
            None
        }
    }
}

/// Checks (with `check`, on a blocking thread) the paths whose wait ran out by `now` and
/// returns the versions that are complete. `check(rel, probe)` stats a path and, if
/// `probe`, asks its writers once: every path is probed except those known to be open
/// (at their hold limit, offered anyway). One found open waits on
/// ([`Settler::found_open`]; `events`: a writer's close would be reported). If the check
/// fails, each path waits a quiet period again ([`Settler::retry`]) rather than staying
/// pending for good.
async fn settle_due(
    settler: &mut Settler,
    now: Instant,
    events: bool,
    check: impl Fn(&[u8], bool) -> (Option<FileVersion>, Option<Writers>) + Send + 'static,
) -> Vec<Complete> {
    let due = settler.due(now, DUE_BATCH);
    if due.is_empty() {
        return Vec::new();
    }
    let paths: Vec<(Vec<u8>, bool)> = due
        .iter()
        .map(|rel| {
            let open = matches!(settler.writer(rel), Some(Writer::Open { .. }));
            (rel.clone(), !open)
        })
        .collect();
    let looked = blocking("checking files whose quiet time ran out", move || {
        let mut seen = HashSet::new();
        paths
            .into_iter()
            .filter(|(rel, _)| seen.insert(rel.clone()))
            .map(|(rel, probe)| {
                let checked = check(&rel, probe);
                (rel, checked)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let now = Instant::now();
    let Some(looked) = looked else {
        for rel in &due {
            settler.retry(rel, now);
        }
        return Vec::new();
    };
    looked
        .into_iter()
        .filter_map(|(rel, checked)| match checked {
            (Some(cur), Some(Writers::Open)) => settler.found_open(&rel, cur, events, now),
            (current, probed) => {
                if let Some(Writers::Unknown(why)) = probed {
                    note_probe_unavailable(&why);
                }
                settler.confirm_complete(&rel, current, now)
            }
        })
        .collect()
}

/// Logs once that the writer probe cannot tell (no `CAP_LEASE`, or a file system without
/// leases): such files are complete after `watch.settle_ms` of quiet alone.
fn note_probe_unavailable(why: &writers::Unknown) {
    static NOTED: AtomicBool = AtomicBool::new(false);
    if matches!(
        why,
        writers::Unknown::NotPermitted | writers::Unknown::Unsupported
    ) && !NOTED.swap(true, Ordering::Relaxed)
    {
        tracing::info!(
            reason = %why,
            "cannot tell whether files are open for writing (no CAP_LEASE and not their owner, or no leases on this file system); files found by scans are complete after watch.settle_ms of quiet"
        );
    }
}

/// What an event said, as what it tells of the file's writer. A file that appears (created,
/// or moved into place after it was written under another name) has its writer probed
/// (blocking): open for writing is written; nobody writing counts as closed now (a rename
/// into place, a hard link, a `mknod`, a writer that already closed: none of these sends
/// another close); a probe that cannot tell leaves the quiet time to decide, and the
/// writes of a writer that has it open still mark it written when they come.
fn seen(path: &Path, said: Said) -> Seen {
    match said {
        Said::Written => Seen::Written,
        Said::Closed => Seen::Closed,
        Said::Touched => Seen::Changed,
        Said::Arrived | Said::MovedIn => match writers::probe_path(path) {
            Writers::NotOpen => Seen::Closed,
            Writers::Open => Seen::Written,
            Writers::Unknown(why) => {
                note_probe_unavailable(&why);
                Seen::Changed
            }
        },
    }
}

/// Stats one event's path (blocking).
fn look_at(root: &Path, filter: &Filter, recursive: bool, path: &Path, said: Said) -> Looked {
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
                let v = scan::version_of(rel, &m);
                Looked::File(v, seen(path, said))
            } else {
                Looked::Nothing
            }
        }
        Ok(m) if m.file_type().is_dir() => {
            if matches!(said, Said::Arrived | Said::MovedIn) && recursive && !filter.prunes_dir(rel)
            {
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

    #[test]
    fn settler_share_bounds_all_folders_together_but_leaves_each_its_even_part() {
        let shares = SettlerShare::split(8);
        assert_eq!(shares[0].room(), SETTLER_CAP);
        shares[1].publish(3_000);
        assert_eq!(shares[0].room(), SETTLER_CAP - 3_000);
        assert_eq!(
            shares[1].room(),
            SETTLER_CAP,
            "its own entries are not the others'"
        );
        shares[2].publish(1_000);
        assert_eq!(shares[0].room(), SETTLER_CAP / 8, "the even part stays");
        shares[1].publish(0);
        assert_eq!(shares[0].room(), SETTLER_CAP - 1_000);
        let one = SettlerShare::split(1);
        one[0].publish(SETTLER_CAP);
        assert_eq!(one[0].room(), SETTLER_CAP);
    }

    fn v(rel: &str) -> FileVersion {
        FileVersion {
            rel: rel.as_bytes().to_vec(),
            size: 1,
            mtime: Stamp(7),
            ino: 3,
        }
    }

    #[tokio::test]
    async fn due_files_are_confirmed_on_a_blocking_thread() {
        let mut s = Settler::new(Duration::ZERO);
        s.observe(v("a"), false, Instant::now());
        let complete = settle_due(&mut s, Instant::now(), true, |rel, probe| {
            assert!(probe, "a scanned file is probed");
            (
                Some(v(std::str::from_utf8(rel).unwrap())),
                Some(Writers::NotOpen),
            )
        })
        .await;
        assert_eq!(
            complete,
            vec![Complete {
                version: v("a"),
                still_open: false
            }]
        );
        assert!(s.is_empty());
    }

    #[tokio::test]
    async fn a_panic_while_checking_due_files_puts_them_back_instead_of_losing_them() {
        // It used to be `.unwrap_or_default()`: the paths were taken from the settler's
        // queue and stayed pending for good, never checked again.
        let mut s = Settler::new(Duration::ZERO);
        s.observe(v("a"), false, Instant::now());
        let complete = settle_due(&mut s, Instant::now(), true, |_, _| panic!("stat failed")).await;
        assert!(complete.is_empty());
        assert_eq!(s.due(Instant::now(), 10), vec![b"a".to_vec()]);
    }

    #[tokio::test]
    async fn a_due_file_found_open_is_held_as_written_with_events_and_waits_again_without() {
        let t0 = Instant::now();
        let open = |_: &[u8], _| (Some(v("a")), Some(Writers::Open));
        let mut s = Settler::new(Duration::ZERO);
        s.observe(v("a"), false, t0);
        assert!(settle_due(&mut s, t0, true, open).await.is_empty());
        assert!(matches!(s.writer(b"a"), Some(Writer::Open { .. })));

        let mut s = Settler::new(Duration::ZERO);
        s.observe(v("a"), false, t0);
        assert!(settle_due(&mut s, t0, false, open).await.is_empty());
        assert_eq!(s.writer(b"a"), Some(Writer::Unknown));
        assert!(s.contains(b"a"));
    }
}
