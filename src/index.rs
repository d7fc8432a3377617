//! The persistent index: which file versions exist, and the stamp each one got.
//!
//! Owns: the redb store under `state.dir`, its schema, the single writer (one thread that
//! drains a channel and commits in batches), the read side used by polls and scans, and
//! the durable part of the stamp clock (its floor and cursor reservations), and the
//! counters it publishes in [`IndexStats`] (files, commit latency and failures), and
//! tightening the file at close ([`Index::close`]: a table filled out of key order is
//! rewritten in order and the file compacted, once after a first scan of a large tree).
//! Does not own: deciding when a file is complete (`settle`), reading file contents
//! (`offer`), or the cursor's text form (`stamp`).
//!
//! Tables:
//! - `offers`: stamp → (relative path bytes, size, mtime ns, inode). One entry per
//!   current file version; "next after cursor" is one B-tree range step.
//! - `files`: relative path bytes → (size, mtime ns, inode, stamp). The version last
//!   indexed at each path, so a scan can tell new versions from known ones.
//! - `still_open`: stamp → (). The offers made while the file was still open for writing
//!   (held for `watch.max_open_hold_s`). Added after schema 1 without changing it: an
//!   older index gets the empty table on open, so its entries read as not still open.
//!   A file moved by the move action keeps its stamp here under its new path, with no
//!   `offers` entry (see [`MoveStep`]).
//! - `acks`: party (`consumer/NAME`, `subscription/ID`) → stamp: everything stamped at or
//!   before it has been acknowledged by that party (named consumers, webhook
//!   subscriptions); the clean-up after delivery reads it. Also `origin/consumer/NAME`:
//!   the first-call cursor a consumer started from (written by the same [`WriteOp::Ack`]). Added after schema 1 like
//!   `still_open` (an older index gets the empty table). An ack that advances wakes the
//!   folder's clean-up ([`IndexReader::acked`]).
//! - `subscriptions`, `waits` (global, not per folder): id → JSON bytes, the webhook
//!   subscriptions and webhook waits ([`Registry`]; what the JSON holds is `hooks`'
//!   business). Created on first write like the others; an older index reads as empty.
//! - `meta`: `schema_version`, `floor` (greatest stamp handed out), `reserved` (cursors
//!   up to here may have been handed out).
//!
//! Folders: the three tables above belong to the folder `default` (`[watch]`); a folder
//! NAME (`[folders.NAME]`) has its own `offers@NAME`, `files@NAME`, `still_open@NAME` and `acks@NAME`
//! ([`FolderIndex`]), created when it is first opened (an older index keeps its tables and
//! gains the new ones, with no schema change). `meta`, the stamp clock and the writer are
//! shared: stamps are unique and increasing across folders, and each write operation
//! carries its folder (a [`WriterHandle`] is one folder's).
//!
//! The index file is kept `0600` and `state.dir` `0700` when they are this user's: the
//! webhook records hold secrets.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{
    Database, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, TableHandle, WriteTransaction,
};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::error::{IndexError, StoreContext};
use crate::stamp::{Stamp, StampClock, WallClock};
use crate::swap::Swap;

/// The schema this build reads and writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

type OfferValue = (&'static [u8], u64, i64, u64);
type FileValue = (u64, i64, u64, i64);

const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// The folder whose tables keep the first release's names.
const DEFAULT_FOLDER: &str = "default";

/// One folder's tables (their names) and counters.
#[derive(Debug)]
pub(crate) struct FolderIndex {
    name: String,
    offers: String,
    files: String,
    still_open: String,
    acks: String,
    /// Entries in its `offers`.
    count: AtomicU64,
    /// Greatest stamp in its `offers` (an upper bound on every key there).
    last_stamp: AtomicI64,
    /// Notified by the writer when the store takes writes again after a failure: the
    /// changes dropped meanwhile are found again by a full scan of this folder, which its
    /// discovery starts when it is woken here.
    needs_rescan: tokio::sync::Notify,
    /// Notified by the writer after a commit that advanced an ack of this folder.
    acked: tokio::sync::Notify,
    /// Bumped by the writer after every commit (and before the store is reopened): a
    /// snapshot made under an older generation may miss a commit.
    generation: AtomicU64,
    /// The snapshot polls share ([`IndexReader::shared_snapshot`]) and its generation;
    /// emptied by the writer after every commit, so it never outlives one (an old read
    /// transaction would keep redb from reusing the pages that commits free).
    shared: std::sync::Mutex<Option<(u64, Arc<Snapshot>)>>,
}

impl FolderIndex {
    /// The folder `name`'s table names: the first release's for `default`, `TABLE@NAME`
    /// for the others.
    fn new(name: &str) -> FolderIndex {
        let table = |base: &str| {
            if name == DEFAULT_FOLDER {
                base.to_string()
            } else {
                format!("{base}@{name}")
            }
        };
        FolderIndex {
            name: name.to_string(),
            offers: table("offers"),
            files: table("files"),
            still_open: table("still_open"),
            acks: table("acks"),
            count: AtomicU64::new(0),
            last_stamp: AtomicI64::new(i64::MIN),
            needs_rescan: tokio::sync::Notify::new(),
            acked: tokio::sync::Notify::new(),
            generation: AtomicU64::new(0),
            shared: std::sync::Mutex::new(None),
        }
    }

    /// The shared snapshot may miss what was just committed: drop it. The writer calls
    /// this after each commit, before it publishes the new counts.
    fn forget_snapshot(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let old = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(old);
    }

    fn offers(&self) -> TableDefinition<'_, i64, OfferValue> {
        TableDefinition::new(&self.offers)
    }

    fn files(&self) -> TableDefinition<'_, &'static [u8], FileValue> {
        TableDefinition::new(&self.files)
    }

    fn still_open(&self) -> TableDefinition<'_, i64, ()> {
        TableDefinition::new(&self.still_open)
    }

    fn acks(&self) -> TableDefinition<'_, &'static str, i64> {
        TableDefinition::new(&self.acks)
    }

    /// Publishes the counts read in a committed transaction.
    fn publish(&self, count: u64, last: i64) {
        self.count.store(count, Ordering::Relaxed);
        self.last_stamp.fetch_max(last, Ordering::AcqRel);
    }
}

/// redb's page cache (its default is 1 GiB, which a large index fills: about 150 MB at
/// 1,000,000 files). Polls touch a few pages each and scans read in key order, so a small
/// cache keeps the branch pages and the hot leaves; the rest comes from the OS page cache.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// How many queued operations the writer commits in one transaction at most.
const MAX_BATCH: usize = 4096;

/// After a failed commit, the first retry comes after this; each failed retry doubles the
/// wait, up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// One version of one file: what the index records and a poll re-checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    /// The path relative to `watch.dir`, as raw bytes (`/`-separated).
    pub rel: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub mtime: Stamp,
    /// Inode number.
    pub ino: u64,
}

impl FileVersion {
    /// Whether two observations describe the same version.
    pub(crate) fn same_version(&self, size: u64, mtime: Stamp, ino: u64) -> bool {
        self.size == size && self.mtime == mtime && self.ino == ino
    }
}

/// A change for the writer.
#[derive(Debug)]
pub enum WriteOp {
    /// A settled file: indexed with a new stamp unless this exact version is known.
    Upsert(FileVersion),
    /// As [`WriteOp::Upsert`], for a version offered while still open for writing (its
    /// offer says `"stillOpen": true`). A later `Upsert` of the same version (its writer
    /// closed it without writing more) is indexed again, with a new stamp and unmarked.
    UpsertStillOpen(FileVersion),
    /// A path that no longer holds a file; with a stamp, only if that is still the
    /// version indexed there (a scan's late verdict must not remove a newer version).
    Remove(Vec<u8>, Option<Stamp>),
    /// A directory that is gone: every indexed path below it (all of them for `b""`).
    RemoveTree(Vec<u8>),
    /// Make cursors up to this stamp durable before the reply.
    Reserve(Stamp, oneshot::Sender<Result<(), IndexError>>),
    /// Commit everything queued before this and stop; later sends fail. Shutdown uses it
    /// so that a straggling connection holding a handle cannot keep the writer alive.
    Stop,
    /// Drops offer entries stamped before this (`state.retention`). The `files` table is
    /// kept, so a file still on disk is not offered again.
    Prune(Stamp),
    /// One step of the move action, moving the version `to` describes (stamped `stamp`,
    /// indexed at `from`) to `to.rel`.
    Move {
        /// Which step.
        step: MoveStep,
        /// The source path.
        from: Vec<u8>,
        /// The version at its new path (same size, mtime and inode).
        to: FileVersion,
        /// The version's stamp.
        stamp: Stamp,
    },
    /// A party (`consumer/NAME`, `subscription/ID`) acknowledged everything stamped up to
    /// `stamp`: its stored position becomes the greater of the two.
    Ack {
        /// The party's key in `acks`.
        key: String,
        /// The position acknowledged.
        stamp: Stamp,
    },
    /// Forgets a party's position (a deleted consumer, an ended subscription).
    Unack(String),
    /// Stores (`Some`) or removes (`None`) the record `id` of a global [`Registry`] table.
    Record {
        /// Which table.
        registry: Registry,
        /// The record's key.
        id: String,
        /// Its JSON bytes; `None` removes it.
        value: Option<Vec<u8>>,
    },
}

/// The global tables of records kept for `hooks` (webhook subscriptions and waits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// `subscriptions`
    Subscriptions,
    /// `waits`
    Waits,
}

impl Registry {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Registry::Subscriptions => TableDefinition::new("subscriptions"),
            Registry::Waits => TableDefinition::new("waits"),
        }
    }
}

/// The steps of a move, each committed before the next happens on disk, so that a crash
/// at any point neither offers the target nor offers the source again:
/// 1. [`MoveStep::Adopt`] before the rename: the target path is recorded in `files` as a
///    known version with the source's stamp and no `offers` entry, so discovery, seeing
///    it appear, finds it known. (Crash now: the source is still on disk and indexed; the
///    target path holds nothing, and a scan drops the record.)
/// 2. After the rename, [`MoveStep::Done`]: the source is forgotten (its `offers` entry
///    with it) and the target's record asserted again, in case a scan that looked before
///    the rename dropped it meanwhile. (Crash before it: the source's entry points at a
///    missing file, which a poll skips and a scan removes.)
/// 3. If the rename fails, [`MoveStep::Undo`] drops the target's record again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveStep {
    /// Record the target as known (before the rename).
    Adopt,
    /// Forget the source, keep the target (after the rename).
    Done,
    /// Drop the target's record (the rename failed).
    Undo,
}

/// Counters shared with `/healthz` and the poll fast path. Only the index writes them.
#[derive(Debug, Default)]
pub struct IndexStats {
    /// Entries in every folder's `offers`.
    files: AtomicU64,
    /// Greatest stamp committed so far (an upper bound on every key in `offers`).
    last_stamp: AtomicI64,
    /// Whether the last commit failed (and the writer is waiting for the store to take
    /// writes again).
    failing: AtomicBool,
    /// How long each commit of a batch took (for `/metrics`).
    commit_seconds: crate::metrics::Seconds,
    /// Commits of a batch that failed (for `/metrics`).
    commit_failures: AtomicU64,
}

impl IndexStats {
    /// Entries in every folder's `offers`: the file versions a poll can be offered.
    pub(crate) fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    /// The greatest stamp committed so far (no entry has a later one).
    pub fn last_stamp(&self) -> Stamp {
        Stamp(self.last_stamp.load(Ordering::Acquire))
    }

    /// Whether the last commit failed and the writer waits for the store to take writes.
    pub(crate) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// How long each commit of a batch took: the histogram `/metrics` shows.
    pub(crate) fn commit_seconds(&self) -> &crate::metrics::Seconds {
        &self.commit_seconds
    }

    /// Commits of a batch that failed so far.
    pub(crate) fn commit_failures(&self) -> u64 {
        self.commit_failures.load(Ordering::Relaxed)
    }

    /// Marks the index as failing, as a failed commit does.
    #[cfg(test)]
    pub(crate) fn set_failing(&self) {
        self.failing.store(true, Ordering::Relaxed);
    }

    /// Sets the entry count, as commits do.
    #[cfg(test)]
    pub(crate) fn set_files(&self, n: u64) {
        self.files.store(n, Ordering::Relaxed);
    }
}

/// The open store. After an I/O error (a full or read-only disk) redb fails every later
/// operation, reads included, until the file is closed and opened again: the writer does
/// that here, and readers take whichever database is current.
struct Store {
    path: PathBuf,
    /// `None` while it cannot be opened.
    slot: Swap<Option<Arc<Database>>>,
}

impl Store {
    /// The current database, or [`IndexError::Unavailable`] while it cannot be opened.
    fn db(&self) -> Result<Arc<Database>, IndexError> {
        self.slot
            .get()
            .as_ref()
            .clone()
            .ok_or(IndexError::Unavailable)
    }

    /// Closes the database and opens it again (redb checks and repairs it on open). The
    /// old one closes once the last read that began on it ends, so a busy moment is
    /// retried a few times.
    fn reopen(&self) -> Result<(), IndexError> {
        self.slot.set(None);
        let mut tries = 0;
        loop {
            match open_db(&self.path) {
                Ok(db) => {
                    self.slot.set(Some(Arc::new(db)));
                    return Ok(());
                }
                Err(IndexError::Locked { .. }) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Opens (or creates) the redb file.
fn open_db(path: &Path) -> Result<Database, IndexError> {
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => IndexError::Locked {
                path: path.to_path_buf(),
            },
            source => IndexError::Open {
                path: path.to_path_buf(),
                source,
            },
        })
}

/// [`Index::close`] tightens the file only when it is larger than this many bytes beyond
/// what a tight one would take (`1.25 ×` the bytes its entries need).
const TIGHTEN_SLACK: u64 = 1024 * 1024;

/// What [`tighten`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tightened {
    /// The file's size before.
    pub before: u64,
    /// The file's size after.
    pub after: u64,
    /// The tables rewritten in key order.
    pub rebuilt: usize,
}

/// Shrinks the index file when it holds much more than its entries (after a first scan
/// of a large tree: measured 285 B per file at 1,000,000 files, of which about 120 B are
/// entries): rewrites in key order each `files`/`offers` table whose leaves are mostly
/// free space (a table filled out of key order keeps half-full leaves, which redb never
/// merges back: the start-up scan's settler and its confirming scan insert the same
/// key ranges in two passes), then compacts the file (which returns the free pages at
/// its end to the file system). `Ok(None)` when the file is tight enough already.
///
/// The rewrite is one transaction (all or nothing); compaction is redb's, which a crash
/// in the middle leaves for the repair on the next open. Needs the database to itself.
fn tighten(db: &mut Database, path: &Path, slack: u64) -> Result<Option<Tightened>, IndexError> {
    let before = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let txn = db.begin_write().ctx("tighten")?;
    let stats = txn.stats().ctx("tighten stats")?;
    let needed = stats.stored_bytes() + stats.metadata_bytes();
    if before <= needed + needed / 4 + slack {
        txn.abort().ctx("tighten")?;
        return Ok(None);
    }
    let names: Vec<String> = txn
        .list_tables()
        .ctx("tighten tables")?
        .map(|t| t.name().to_string())
        .collect();
    let mut rebuilt = 0;
    for name in &names {
        let (offers, files) = (
            name == "offers" || name.starts_with("offers@"),
            name == "files" || name.starts_with("files@"),
        );
        if !(offers || files) {
            continue;
        }
        let spare = format!("{name}~");
        let done = if offers {
            rebuild(
                &txn,
                TableDefinition::<i64, OfferValue>::new(name),
                TableDefinition::<i64, OfferValue>::new(&spare),
                |old, new| {
                    for e in old.iter().ctx("tighten read")? {
                        let (k, v) = e.ctx("tighten read")?;
                        new.insert(k.value(), v.value()).ctx("tighten write")?;
                    }
                    Ok(())
                },
            )?
        } else {
            rebuild(
                &txn,
                TableDefinition::<&[u8], FileValue>::new(name),
                TableDefinition::<&[u8], FileValue>::new(&spare),
                |old, new| {
                    for e in old.iter().ctx("tighten read")? {
                        let (k, v) = e.ctx("tighten read")?;
                        new.insert(k.value(), v.value()).ctx("tighten write")?;
                    }
                    Ok(())
                },
            )?
        };
        rebuilt += usize::from(done);
    }
    txn.commit().ctx("tighten commit")?;
    // Each round moves what it can towards the start; a few suffice (one, measured).
    for _ in 0..4 {
        if !db.compact().map_err(|e| IndexError::Store {
            op: "compact",
            source: e.into(),
        })? {
            break;
        }
    }
    let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(before);
    Ok(Some(Tightened {
        before,
        after,
        rebuilt,
    }))
}

/// Rewrites `table` in key order through `spare` (with `copy`) when its leaves hold more
/// free bytes than half the bytes of its entries; returns whether it did.
fn rebuild<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<'_, K, V>,
    spare: TableDefinition<'_, K, V>,
    copy: impl FnOnce(&Table<'_, K, V>, &mut Table<'_, K, V>) -> Result<(), IndexError>,
) -> Result<bool, IndexError> {
    let old = txn.open_table(table).ctx("tighten open")?;
    let stats = old.stats().ctx("tighten stats")?;
    let used = stats.stored_bytes() + stats.metadata_bytes();
    // Leaves at least two thirds full are left as they are (appends fill them).
    if stats.fragmented_bytes() * 2 <= used {
        return Ok(false);
    }
    txn.delete_table(spare).ctx("tighten spare")?;
    {
        let mut new = txn.open_table(spare).ctx("tighten spare")?;
        copy(&old, &mut new)?;
    }
    drop(old);
    txn.delete_table(table).ctx("tighten delete")?;
    txn.rename_table(spare, table).ctx("tighten rename")?;
    Ok(true)
}

/// Takes the store's database from every reader (they answer
/// [`IndexError::Unavailable`] from now on), waits briefly for the reads in flight to end,
/// and [`tighten`]s it; logs the result.
fn close_tightened(store: &Store, folders: &Folders, slack: u64) -> Option<Tightened> {
    let began = Instant::now();
    // The snapshots polls shared hold read transactions, which compaction refuses.
    for folder in folders.iter() {
        folder.forget_snapshot();
    }
    let current = store.slot.get();
    store.slot.set(None);
    let mut db = current.as_ref().clone()?;
    drop(current);
    let mut tries = 0;
    let mut db = loop {
        match Arc::try_unwrap(db) {
            Ok(db) => break db,
            Err(shared) if tries < 20 => {
                db = shared;
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => {
                tracing::info!("index not tightened at close: a read still holds it");
                return None;
            }
        }
    };
    let result = tighten(&mut db, &store.path, slack);
    // Closing writes the last of it: the size to report is the closed file's.
    drop(db);
    match result {
        Ok(Some(mut t)) => {
            if let Ok(m) = std::fs::metadata(&store.path) {
                t.after = m.len();
            }
            tracing::info!(
                before_bytes = t.before,
                after_bytes = t.after,
                tables_rewritten = t.rebuilt,
                ms = began.elapsed().as_millis() as u64,
                "index file tightened at close"
            );
            Some(t)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "index not tightened at close; it stays usable as it is");
            None
        }
    }
}

/// Takes the group's and others' access away from `path` (to `mode`) when it has any and
/// belongs to this process's user; a failure is logged, not fatal.
fn keep_private(path: &Path, mode: u32) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.mode() & 0o077 == 0 || meta.uid() != rustix::process::geteuid().as_raw() {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Ok(()) => {
            tracing::info!(path = %path.display(), mode = format!("{mode:o}"), "made readable by the service user only")
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict the permissions")
        }
    }
}

/// Looks at `state_dir/index.redb` without changing a byte (`filetrigger check`): opens
/// it read-only and checks its schema. `Ok(None)` when there is no index yet, else the
/// number of files it holds.
///
/// # Errors
/// [`IndexError::Locked`] while a daemon has it open; [`IndexError::Open`] when it cannot
/// be read (with redb's `RepairAborted` after an unclean stop, which a start repairs);
/// [`IndexError::Schema`]; [`IndexError::Store`].
pub fn inspect(state_dir: &Path) -> Result<Option<u64>, IndexError> {
    let path = state_dir.join("index.redb");
    if !path.try_exists().unwrap_or(true) {
        return Ok(None);
    }
    let db = redb::ReadOnlyDatabase::open(&path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => IndexError::Locked { path: path.clone() },
        source => IndexError::Open {
            path: path.clone(),
            source,
        },
    })?;
    let txn = db.begin_read().ctx("inspect")?;
    match meta_get(&txn.open_table(META).ctx("inspect meta")?, "schema_version")? {
        Some(found) if found != SCHEMA_VERSION => Err(IndexError::Schema {
            path,
            found: found as u64,
            expected: SCHEMA_VERSION as u64,
        }),
        _ => {
            // Every folder's `offers` (`offers`, `offers@NAME`).
            let mut total = 0;
            for table in txn.list_tables().ctx("inspect tables")? {
                let name = table.name();
                if name == "offers" || name.starts_with("offers@") {
                    let def: TableDefinition<i64, OfferValue> = TableDefinition::new(name);
                    total += txn
                        .open_table(def)
                        .ctx("inspect offers")?
                        .len()
                        .ctx("count")?;
                }
            }
            Ok(Some(total))
        }
    }
}

/// A value of the `meta` table.
fn meta_get(
    meta: &impl ReadableTable<&'static str, i64>,
    key: &str,
) -> Result<Option<i64>, IndexError> {
    Ok(meta.get(key).ctx("read meta")?.map(|g| g.value()))
}

/// The `files` keys below a directory (relative, `/`-separated, empty for the watched
/// directory itself): from `dir/` up to, not including, `dir0` (`0` is the byte after
/// `/`), so neither `dir.txt` nor `dir0/x` is below `dir`. Every key is below `""`.
struct Below {
    /// `dir/`, or empty for the watched directory.
    prefix: Vec<u8>,
    /// The first key after them, `None` for the watched directory.
    end: Option<Vec<u8>>,
}

impl Below {
    fn new(dir: &[u8]) -> Below {
        let top = dir.is_empty();
        Below {
            prefix: if top {
                Vec::new()
            } else {
                [dir, b"/"].concat()
            },
            end: (!top).then(|| Below::end_of(dir)),
        }
    }

    /// The first key after every key below `dir`.
    fn end_of(dir: &[u8]) -> Vec<u8> {
        [dir, &[b'/' + 1]].concat()
    }

    /// The bounds of the keys below the directory, starting at `from`.
    fn from<'a>(&'a self, from: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
        let end = self
            .end
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Excluded);
        (Bound::Included(from), end)
    }
}

/// One folder's tables in one write transaction, with one method per [`WriteOp`] that
/// changes them.
struct WriteTables<'t> {
    offers: Table<'t, i64, OfferValue>,
    files: Table<'t, &'static [u8], FileValue>,
    still_open: Table<'t, i64, ()>,
    acks: Table<'t, &'static str, i64>,
    /// Whether an ack advanced in this transaction.
    acked: bool,
}

impl<'t> WriteTables<'t> {
    fn open(
        txn: &'t WriteTransaction,
        folder: &FolderIndex,
    ) -> Result<WriteTables<'t>, IndexError> {
        Ok(WriteTables {
            offers: txn.open_table(folder.offers()).ctx("offers")?,
            files: txn.open_table(folder.files()).ctx("files")?,
            still_open: txn.open_table(folder.still_open()).ctx("still_open")?,
            acks: txn.open_table(folder.acks()).ctx("acks")?,
            acked: false,
        })
    }

    /// [`WriteOp::Upsert`] and [`WriteOp::UpsertStillOpen`]: a new stamp for `v` unless
    /// this exact version is indexed (and, for a plain upsert, not marked still open: the
    /// same version closed is indexed again only to drop the mark); the path's previous
    /// version loses its offer entry. Returns whether `v` got a stamp.
    fn upsert(
        &mut self,
        v: &FileVersion,
        still_open: bool,
        clock: &StampClock,
    ) -> Result<bool, IndexError> {
        let known = self
            .files
            .get(v.rel.as_slice())
            .ctx("get")?
            .map(|g| g.value());
        if let Some((size, mtime, ino, old)) = known {
            let was_open = self.still_open.get(old).ctx("get")?.is_some();
            if v.same_version(size, Stamp(mtime), ino) && (still_open || !was_open) {
                return Ok(false);
            }
            self.drop_offer(&v.rel, old)?;
        }
        let stamp = clock.next_stamp();
        self.offers
            .insert(stamp.0, (v.rel.as_slice(), v.size, v.mtime.0, v.ino))
            .ctx("insert")?;
        if still_open {
            self.still_open.insert(stamp.0, ()).ctx("insert")?;
        }
        self.files
            .insert(v.rel.as_slice(), (v.size, v.mtime.0, v.ino, stamp.0))
            .ctx("insert")?;
        Ok(true)
    }

    /// [`WriteOp::Remove`]: forgets `rel`, with `only` just if that is its current stamp.
    fn remove(&mut self, rel: &[u8], only: Option<Stamp>) -> Result<(), IndexError> {
        let old = self.files.get(rel).ctx("get")?.map(|g| g.value().3);
        match old {
            Some(old) if only.is_none_or(|want| want.0 == old) => self.forget(rel, old),
            _ => Ok(()),
        }
    }

    /// [`WriteOp::RemoveTree`]: forgets every path below `dir`.
    fn remove_tree(&mut self, dir: &[u8]) -> Result<(), IndexError> {
        let below = Below::new(dir);
        let gone = self
            .files
            .range::<&[u8]>(below.from(&below.prefix))
            .ctx("range")?
            .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().3)))
            .collect::<Result<Vec<_>, _>>()
            .ctx("range")?;
        for (rel, old) in gone {
            self.forget(&rel, old)?;
        }
        Ok(())
    }

    /// [`WriteOp::Prune`]: drops the offer entries stamped before `before`.
    fn prune(&mut self, before: Stamp) -> Result<(), IndexError> {
        self.offers
            .retain_in(..before.0, |_, _| false)
            .ctx("prune")?;
        self.still_open
            .retain_in(..before.0, |_, _| false)
            .ctx("prune")
    }

    /// [`WriteOp::Move`]: one step of a move (see [`MoveStep`]).
    fn move_step(
        &mut self,
        step: MoveStep,
        from: &[u8],
        to: &FileVersion,
        stamp: Stamp,
    ) -> Result<(), IndexError> {
        let at_target = self
            .files
            .get(to.rel.as_slice())
            .ctx("get")?
            .map(|g| g.value().3);
        match step {
            MoveStep::Adopt | MoveStep::Done => {
                if step == MoveStep::Done {
                    self.remove(from, Some(stamp))?;
                }
                match at_target {
                    Some(old) if old == stamp.0 => {}
                    // A stale record of a path that holds nothing now (the move checked).
                    Some(old) => self.forget(&to.rel, old)?,
                    None => {}
                }
                self.files
                    .insert(to.rel.as_slice(), (to.size, to.mtime.0, to.ino, stamp.0))
                    .ctx("insert")?;
            }
            MoveStep::Undo => {
                if at_target == Some(stamp.0) {
                    self.files.remove(to.rel.as_slice()).ctx("remove")?;
                }
            }
        }
        Ok(())
    }

    /// [`WriteOp::Ack`]: raises `key`'s position to `stamp`.
    fn ack(&mut self, key: &str, stamp: Stamp) -> Result<(), IndexError> {
        let old = self.acks.get(key).ctx("get")?.map(|g| g.value());
        if old.is_none_or(|old| old < stamp.0) {
            self.acks.insert(key, stamp.0).ctx("insert")?;
            self.acked = true;
        }
        Ok(())
    }

    /// [`WriteOp::Unack`]: forgets `key`'s position (which may free the clean-up).
    fn unack(&mut self, key: &str) -> Result<(), IndexError> {
        if self.acks.remove(key).ctx("remove")?.is_some() {
            self.acked = true;
        }
        Ok(())
    }

    /// Removes `rel` (indexed with `stamp`) from both tables.
    fn forget(&mut self, rel: &[u8], stamp: i64) -> Result<(), IndexError> {
        self.files.remove(rel).ctx("remove")?;
        self.drop_offer(rel, stamp)
    }

    /// Removes the offer entry `stamp` if it is `rel`'s. A moved file's new path shares
    /// its stamp with the source's entry while the move runs ([`MoveStep`]): dropping the
    /// target's record (a scan that ran before the rename, or a crash before it) must not
    /// take the source's entry with it. Costs nothing in the usual case: the removed
    /// value is checked, and put back only when it belongs to another path.
    fn drop_offer(&mut self, rel: &[u8], stamp: i64) -> Result<(), IndexError> {
        let removed = self.offers.remove(stamp).ctx("remove")?.map(|g| {
            let (path, size, mtime, ino) = g.value();
            (path.to_vec(), size, mtime, ino)
        });
        match removed {
            Some((path, size, mtime, ino)) if path != rel => {
                self.offers
                    .insert(stamp, (path.as_slice(), size, mtime, ino))
                    .ctx("insert")?;
            }
            _ => {
                self.still_open.remove(stamp).ctx("remove")?;
            }
        }
        Ok(())
    }

    /// The entry count and the greatest stamp of `offers`, to publish after the commit.
    fn counts(&self) -> Result<(u64, i64), IndexError> {
        let last = self
            .offers
            .last()
            .ctx("read offers")?
            .map_or(i64::MIN, |(k, _)| k.value());
        Ok((self.offers.len().ctx("count")?, last))
    }
}

/// Records the clock's `floor` in `meta` and raises `reserved` to `reserve` (unless it is
/// [`Stamp::MIN`], no reservation).
fn record_clock(
    meta: &mut Table<'_, &'static str, i64>,
    floor: Stamp,
    reserve: Stamp,
) -> Result<(), IndexError> {
    meta.insert("floor", floor.0).ctx("meta")?;
    if reserve > Stamp::MIN {
        let old = meta_get(meta, "reserved")?.unwrap_or(i64::MIN);
        meta.insert("reserved", old.max(reserve.0)).ctx("meta")?;
    }
    Ok(())
}

/// The open index: hands out readers and the writer.
pub struct Index {
    store: Arc<Store>,
    clock: Arc<StampClock>,
    stats: Arc<IndexStats>,
    /// The folders opened, in the order given to [`Index::open_folders`].
    folders: Folders,
}

/// The folders of an open index; a write operation names one by its position here.
type Folders = Arc<Vec<Arc<FolderIndex>>>;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.store.path)
            .finish()
    }
}

impl Index {
    /// Opens (or creates) `state_dir/index.redb` with the folder `default` only; see
    /// [`Index::open_folders`].
    ///
    /// # Errors
    /// As [`Index::open_folders`].
    pub fn open(state_dir: &Path, wall: Arc<dyn WallClock>) -> Result<Index, IndexError> {
        Index::open_folders(state_dir, wall, &[DEFAULT_FOLDER])
    }

    /// Opens (or creates) `state_dir/index.redb`, checks its schema, creates the tables of
    /// each folder in `folders` that has none yet and restores the clock. [`Index::reader`]
    /// and [`Index::start_writer`] serve the first folder, [`Index::reader_for`] and
    /// [`WriterHandle::for_folder`] any of them.
    ///
    /// # Errors
    /// [`IndexError::Locked`] when another process has it open, [`IndexError::Schema`] for
    /// an incompatible file, [`IndexError::Open`]/[`IndexError::Store`] otherwise.
    pub fn open_folders(
        state_dir: &Path,
        wall: Arc<dyn WallClock>,
        folders: &[&str],
    ) -> Result<Index, IndexError> {
        let mut names: Vec<&str> = Vec::with_capacity(folders.len().max(1));
        for name in folders {
            if !names.contains(name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            names.push(DEFAULT_FOLDER);
        }
        let folders: Folders = Arc::new(
            names
                .iter()
                .map(|n| Arc::new(FolderIndex::new(n)))
                .collect(),
        );
        let path = state_dir.join("index.redb");
        let db = open_db(&path)?;
        // The index holds webhook callback URLs, whose signatures are secrets.
        keep_private(state_dir, 0o700);
        keep_private(&path, 0o600);
        let txn = db.begin_write().ctx("open")?;
        let (floor, reserved, files, last) = {
            let mut meta = txn.open_table(META).ctx("open meta")?;
            let mut files = 0;
            let mut last = i64::MIN;
            for folder in folders.iter() {
                let (count, folder_last) = WriteTables::open(&txn, folder)?.counts()?;
                folder.publish(count, folder_last);
                files += count;
                last = last.max(folder_last);
            }
            match meta_get(&meta, "schema_version")? {
                Some(SCHEMA_VERSION) => {}
                Some(found) => {
                    return Err(IndexError::Schema {
                        path,
                        found: found as u64,
                        expected: SCHEMA_VERSION as u64,
                    })
                }
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)
                        .ctx("write meta")?;
                }
            }
            let floor = meta_get(&meta, "floor")?.unwrap_or(i64::MIN);
            let reserved = meta_get(&meta, "reserved")?.unwrap_or(i64::MIN);
            (floor, reserved, files, last)
        };
        txn.commit().ctx("open commit")?;
        let clock = Arc::new(StampClock::new(
            wall,
            Stamp(floor.max(last)),
            Stamp(reserved),
        ));
        let stats = Arc::new(IndexStats::default());
        stats.files.store(files, Ordering::Relaxed);
        stats.last_stamp.store(floor.max(last), Ordering::Release);
        Ok(Index {
            store: Arc::new(Store {
                path,
                slot: Swap::new(Some(Arc::new(db))),
            }),
            clock,
            stats,
            folders,
        })
    }

    /// Closes the index at shutdown, after the writer has stopped, and tightens the file
    /// when it holds much more than its entries ([`tighten`]): once after a first scan of
    /// a large tree, about 3 s at 1,000,000 files. Readers still around answer
    /// [`IndexError::Unavailable`] from here on; skipped (with a line) when a read still
    /// holds the store after a second. Errors are logged: the index stays usable either way.
    pub fn close(self) {
        close_tightened(&self.store, &self.folders, TIGHTEN_SLACK);
    }

    /// The index file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.store.path
    }

    /// The stamp clock, restored from the index.
    pub fn clock(&self) -> Arc<StampClock> {
        self.clock.clone()
    }

    /// Shared counters.
    pub fn stats(&self) -> Arc<IndexStats> {
        self.stats.clone()
    }

    /// A read handle for polls and scans of the first folder opened (`default` for
    /// [`Index::open`]).
    pub fn reader(&self) -> IndexReader {
        self.reader_at(0)
    }

    /// A read handle for the folder `name`, if it was opened.
    pub fn reader_for(&self, name: &str) -> Option<IndexReader> {
        let at = self.folders.iter().position(|f| f.name == name)?;
        Some(self.reader_at(at))
    }

    fn reader_at(&self, at: usize) -> IndexReader {
        IndexReader {
            store: self.store.clone(),
            stats: self.stats.clone(),
            folder: self.folders[at].clone(),
        }
    }

    /// Starts the single writer (for every folder) on its own thread; the handle returned
    /// writes to the first folder, [`WriterHandle::for_folder`] gives the others'. It stops
    /// when every [`WriterHandle`] is dropped, after committing what was queued.
    ///
    /// # Errors
    /// An I/O error when the thread cannot be spawned.
    pub fn start_writer(
        &self,
        queue: usize,
    ) -> std::io::Result<(WriterHandle, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let writer = Writer {
            store: self.store.clone(),
            clock: self.clock.clone(),
            stats: self.stats.clone(),
            folders: self.folders.clone(),
            retry: RETRY_FIRST,
        };
        let join = std::thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok((
            WriterHandle {
                tx,
                folder: 0,
                folders: self.folders.clone(),
            },
            join,
        ))
    }
}

/// Sends changes to the writer, for one folder.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<(usize, WriteOp)>,
    /// The folder its operations apply to (a position in `folders`).
    folder: usize,
    folders: Folders,
}

impl std::fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterHandle")
            .field("folder", &self.folders[self.folder].name)
            .finish()
    }
}

impl WriterHandle {
    /// The same writer, for the folder `name` (if the index opened it).
    pub fn for_folder(&self, name: &str) -> Option<WriterHandle> {
        let folder = self.folders.iter().position(|f| f.name == name)?;
        Some(WriterHandle {
            tx: self.tx.clone(),
            folder,
            folders: self.folders.clone(),
        })
    }

    /// Queues a change to this handle's folder, waiting for room (back-pressure on
    /// discovery). [`WriteOp::Prune`] applies to every folder.
    ///
    /// # Errors
    /// [`IndexError::WriterGone`] after shutdown.
    pub async fn send(&self, op: WriteOp) -> Result<(), IndexError> {
        self.tx
            .send((self.folder, op))
            .await
            .map_err(|_| IndexError::WriterGone)
    }

    /// Asks the writer to commit what is queued and stop.
    pub(crate) async fn stop(&self) {
        let _ = self.send(WriteOp::Stop).await;
    }

    /// Queues a change and returns once it is committed (the actions use it: their
    /// answer promises the change is durable).
    ///
    /// # Errors
    /// The commit's error, or [`IndexError::WriterGone`].
    pub(crate) async fn apply(&self, op: WriteOp) -> Result<(), IndexError> {
        self.send(op).await?;
        // A reservation is answered after the commit of everything queued before it, and
        // with an error when that commit failed (or was dropped while the store fails).
        self.reserve(Stamp::MIN).await
    }

    /// Queues a change and returns once it is queued, with a receiver that answers once
    /// it is committed (with the commit's error when that failed): for a caller that goes
    /// on meanwhile and lets the writer group its changes into one transaction.
    ///
    /// # Errors
    /// [`IndexError::WriterGone`].
    pub(crate) async fn send_committed(
        &self,
        op: WriteOp,
    ) -> Result<oneshot::Receiver<Result<(), IndexError>>, IndexError> {
        self.send(op).await?;
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::Reserve(Stamp::MIN, reply)).await?;
        Ok(rx)
    }

    /// Makes cursors up to `upto` durable; returns once committed.
    ///
    /// # Errors
    /// The commit's error, or [`IndexError::WriterGone`].
    pub async fn reserve(&self, upto: Stamp) -> Result<(), IndexError> {
        let (reply, rx) = oneshot::channel();
        self.send(WriteOp::Reserve(upto, reply)).await?;
        rx.await.map_err(|_| IndexError::WriterGone)?
    }
}

struct Writer {
    store: Arc<Store>,
    clock: Arc<StampClock>,
    stats: Arc<IndexStats>,
    folders: Folders,
    /// How long to wait before the next retry after a failure.
    retry: Duration,
}

/// Whether the writer goes on after [`Writer::recover`].
enum Flow {
    Go,
    Stop,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<(usize, WriteOp)>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut stop = false;
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let mut replies = Vec::new();
            let mut reserve = Stamp::MIN;
            let mut ops = Vec::with_capacity(batch.len());
            for (folder, op) in batch.drain(..) {
                match op {
                    _ if stop => {}
                    WriteOp::Reserve(upto, reply) => {
                        reserve = reserve.max(upto);
                        replies.push(reply);
                    }
                    WriteOp::Stop => stop = true,
                    other => ops.push((folder, other)),
                }
            }
            let began = Instant::now();
            let result = self.commit(&ops, reserve);
            match &result {
                Ok(added) => {
                    self.stats.commit_seconds.observe(began.elapsed());
                    if *added > 0 {
                        tracing::debug!(added, "indexed");
                    }
                    if reserve > Stamp::MIN {
                        self.clock.reserve(reserve);
                    }
                    if !ops.is_empty() {
                        self.retry = RETRY_FIRST;
                    }
                }
                Err(e) => {
                    self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                    self.stats.failing.store(true, Ordering::Relaxed);
                    tracing::error!(
                        error = %e,
                        dir = %self.store.path.parent().unwrap_or(Path::new("")).display(),
                        ops = ops.len(),
                        "index commit failed (is state.dir full or read-only?); retrying, and rescanning once it works"
                    );
                }
            }
            for reply in replies {
                let _ = reply.send(match &result {
                    Ok(_) => Ok(()),
                    Err(_) => Err(IndexError::Unavailable),
                });
            }
            if stop {
                break;
            }
            if result.is_err() {
                if let Flow::Stop = self.recover(&mut rx) {
                    break;
                }
            }
        }
        tracing::debug!("index writer stopped");
    }

    /// After a failed commit: reopens the store at once, so that polls are answered from
    /// what is durable, then tries a write every `retry` (doubling up to [`RETRY_MAX`]).
    /// Changes queued meanwhile are dropped, not kept in memory: none of them is in the
    /// index, so the full scan requested on recovery finds them all again. Cursor
    /// reservations are refused (the poll answers 503). Returns on recovery or `Stop`.
    fn recover(&mut self, rx: &mut mpsc::Receiver<(usize, WriteOp)>) -> Flow {
        if let Err(e) = self.reopen() {
            tracing::warn!(error = %e, "cannot reopen the index; polls answer 503 until it opens");
        }
        let mut dropped = 0u64;
        let mut next = Instant::now() + self.retry;
        loop {
            loop {
                match rx.try_recv() {
                    Ok((_, WriteOp::Stop)) | Err(TryRecvError::Disconnected) => return Flow::Stop,
                    Ok((_, WriteOp::Reserve(_, reply))) => {
                        let _ = reply.send(Err(IndexError::Unavailable));
                    }
                    Ok(_) => dropped += 1,
                    Err(TryRecvError::Empty) => break,
                }
            }
            if Instant::now() >= next {
                let probed = self.probe();
                // Doubled on success too: a disk that takes this one write but fails the
                // rescan's batch is retried less often each time (a batch that commits
                // resets it).
                self.retry = (self.retry * 2).min(RETRY_MAX);
                match probed {
                    Ok(()) => {
                        self.stats.failing.store(false, Ordering::Relaxed);
                        for folder in self.folders.iter() {
                            folder.needs_rescan.notify_one();
                        }
                        tracing::info!(
                            dropped,
                            "the index takes writes again; rescanning for the changes dropped meanwhile"
                        );
                        return Flow::Go;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_s = self.retry.as_secs(), "the index still cannot be written");
                        if let Err(e) = self.reopen() {
                            tracing::debug!(error = %e, "cannot reopen the index");
                        }
                        next = Instant::now() + self.retry;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Tries one write (the clock's floor), opening the store first if it is closed; on
    /// success also refreshes the counters from the store.
    fn probe(&self) -> Result<(), IndexError> {
        if self.store.db().is_err() {
            self.reopen()?;
        }
        self.commit(&[], Stamp::MIN)?;
        Ok(())
    }

    /// Reopens the store, after dropping the shared snapshots (each holds a read
    /// transaction of the old database, which would keep it from closing).
    fn reopen(&self) -> Result<(), IndexError> {
        for folder in self.folders.iter() {
            folder.forget_snapshot();
        }
        self.store.reopen()
    }

    /// Applies one batch in one transaction. Returns how many versions got a stamp.
    fn commit(&self, ops: &[(usize, WriteOp)], reserve: Stamp) -> Result<usize, IndexError> {
        let txn = self.store.db()?.begin_write().ctx("begin")?;
        let mut added = 0;
        let (counts, last) = {
            let mut meta = txn.open_table(META).ctx("meta")?;
            let mut tables = self
                .folders
                .iter()
                .map(|f| WriteTables::open(&txn, f))
                .collect::<Result<Vec<_>, _>>()?;
            for (folder, op) in ops {
                if let WriteOp::Record {
                    registry,
                    id,
                    value,
                } = op
                {
                    let mut t = txn.open_table(registry.table()).ctx("records")?;
                    match value {
                        Some(v) => t.insert(id.as_str(), v.as_slice()).ctx("insert")?,
                        None => t.remove(id.as_str()).ctx("remove")?,
                    };
                    continue;
                }
                if let WriteOp::Prune(before) = op {
                    for t in &mut tables {
                        t.prune(*before)?;
                    }
                    continue;
                }
                let Some(t) = tables.get_mut(*folder) else {
                    continue;
                };
                match op {
                    WriteOp::Upsert(v) => added += usize::from(t.upsert(v, false, &self.clock)?),
                    WriteOp::UpsertStillOpen(v) => {
                        added += usize::from(t.upsert(v, true, &self.clock)?)
                    }
                    WriteOp::Remove(rel, only) => t.remove(rel, *only)?,
                    WriteOp::RemoveTree(dir) => t.remove_tree(dir)?,
                    WriteOp::Move {
                        step,
                        from,
                        to,
                        stamp,
                    } => t.move_step(*step, from, to, *stamp)?,
                    WriteOp::Ack { key, stamp } => t.ack(key, *stamp)?,
                    WriteOp::Unack(key) => t.unack(key)?,
                    WriteOp::Prune(_)
                    | WriteOp::Reserve(..)
                    | WriteOp::Stop
                    | WriteOp::Record { .. } => {}
                }
            }
            let floor = self.clock.floor();
            record_clock(&mut meta, floor, reserve)?;
            let counts = tables
                .iter()
                .map(|t| t.counts().map(|(count, last)| (count, last, t.acked)))
                .collect::<Result<Vec<_>, _>>()?;
            (counts, floor)
        };
        txn.commit().ctx("commit")?;
        for folder in self.folders.iter() {
            folder.forget_snapshot();
        }
        // Publish only after the commit: a poll never sees a stamp that is not durable.
        for (folder, (count, folder_last, acked)) in self.folders.iter().zip(&counts) {
            folder.publish(*count, *folder_last);
            if *acked {
                folder.acked.notify_one();
            }
        }
        let files_len = counts.iter().map(|(count, _, _)| count).sum();
        self.stats.files.store(files_len, Ordering::Relaxed);
        self.stats.last_stamp.fetch_max(last.0, Ordering::AcqRel);
        Ok(added)
    }
}

/// Read access to one folder for polls and scans. Cheap to clone.
#[derive(Clone)]
pub struct IndexReader {
    store: Arc<Store>,
    stats: Arc<IndexStats>,
    folder: Arc<FolderIndex>,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("folder", &self.folder.name)
            .finish()
    }
}

/// A snapshot of the index for one poll or one scan.
pub struct Snapshot {
    offers: ReadOnlyTable<i64, OfferValue>,
    files: ReadOnlyTable<&'static [u8], FileValue>,
    /// `None` for an index that never had the table (it reads as empty).
    still_open: Option<ReadOnlyTable<i64, ()>>,
    /// `None` for an index that never had the table (it reads as empty).
    acks: Option<ReadOnlyTable<&'static str, i64>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl IndexReader {
    /// Shared counters (of every folder).
    pub(crate) fn stats(&self) -> &IndexStats {
        &self.stats
    }

    /// Entries in this folder's `offers`.
    pub(crate) fn files(&self) -> u64 {
        self.folder.count.load(Ordering::Relaxed)
    }

    /// Woken when this folder needs a full scan (the store takes writes again after a
    /// failure, and the changes dropped meanwhile must be found again).
    pub(crate) fn needs_rescan(&self) -> &tokio::sync::Notify {
        &self.folder.needs_rescan
    }

    /// Woken after a commit that advanced (or forgot) an ack of this folder: the
    /// clean-up after delivery may have work.
    pub(crate) fn acked(&self) -> &tokio::sync::Notify {
        &self.folder.acked
    }

    /// Whether anything may have been indexed in this folder after `cursor` (a lock-free
    /// check that lets "nothing new" skip the store).
    pub(crate) fn maybe_after(&self, cursor: Stamp) -> bool {
        Stamp(self.folder.last_stamp.load(Ordering::Acquire)) > cursor
    }

    /// Every record of the global table `registry`, in key order.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub(crate) fn records(&self, registry: Registry) -> Result<Vec<(String, Vec<u8>)>, IndexError> {
        let txn = self.store.db()?.begin_read().ctx("begin read")?;
        let table = match txn.open_table(registry.table()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e).ctx("records"),
        };
        let mut out = Vec::new();
        for entry in table.iter().ctx("records")? {
            let (k, v) = entry.ctx("records")?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// A consistent read snapshot.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub fn snapshot(&self) -> Result<Snapshot, IndexError> {
        self.new_snapshot()
    }

    /// A snapshot as [`IndexReader::snapshot`], shared by the polls that come before
    /// the next commit: beginning a read transaction and opening its four tables cost
    /// about 9% of a poll's CPU (redb checks each table's type by name on every open).
    /// It always holds every commit published before the call (the writer empties the
    /// share before it publishes). For short reads only: polls, batches, the wait.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub fn shared_snapshot(&self) -> Result<Arc<Snapshot>, IndexError> {
        let lock = || {
            self.folder
                .shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let generation = self.folder.generation.load(Ordering::SeqCst);
        if let Some((g, snap)) = lock().as_ref() {
            if *g == generation {
                return Ok(Arc::clone(snap));
            }
        }
        let snap = Arc::new(self.new_snapshot()?);
        let mut shared = lock();
        // Shared only if no commit came since the generation was read: else it may be
        // older than that commit (the writer bumps the generation before it empties
        // the share, both before it publishes).
        if self.folder.generation.load(Ordering::SeqCst) == generation {
            *shared = Some((generation, Arc::clone(&snap)));
        }
        Ok(snap)
    }

    fn new_snapshot(&self) -> Result<Snapshot, IndexError> {
        let txn = self.store.db()?.begin_read().ctx("begin read")?;
        let folder = &self.folder;
        Ok(Snapshot {
            offers: txn.open_table(folder.offers()).ctx("offers")?,
            files: txn.open_table(folder.files()).ctx("files")?,
            still_open: match txn.open_table(folder.still_open()) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e).ctx("still_open"),
            },
            acks: match txn.open_table(folder.acks()) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e).ctx("acks"),
            },
        })
    }
}

/// What [`Snapshot::first_after`] found.
#[derive(Debug)]
pub struct Found<T> {
    /// The entry's stamp.
    pub stamp: Stamp,
    /// The version indexed.
    pub version: FileVersion,
    /// What the check returned for it.
    pub checked: T,
    /// Whether another entry follows it.
    pub more: bool,
    /// Offered while still open for writing ([`WriteOp::UpsertStillOpen`]).
    pub still_open: bool,
}

/// What [`Snapshot::scan_after`] found, and how far it walked.
#[derive(Debug)]
pub(crate) struct Scanned<T> {
    /// What was found (a [`Found`] entry, its `more` not computed: always false).
    pub(crate) found: Option<T>,
    /// The last entry examined.
    pub(crate) last: Option<Stamp>,
    /// Whether the walk reached the end (else the budget stopped it).
    pub(crate) complete: bool,
}

impl Snapshot {
    /// The oldest entry after `cursor` for which `check` returns `Some`, walking at most
    /// `max_skip` entries for which it returns `None` (files gone or changed since).
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub fn first_after<T>(
        &self,
        cursor: Stamp,
        max_skip: usize,
        mut check: impl FnMut(&FileVersion) -> Option<T>,
    ) -> Result<Option<Found<T>>, IndexError> {
        if cursor.0 == i64::MAX {
            return Ok(None);
        }
        let mut range = self.offers.range(cursor.0 + 1..).ctx("range")?;
        let mut skipped = 0;
        while let Some(entry) = range.next() {
            let (k, v) = entry.ctx("range")?;
            let (rel, size, mtime, ino) = v.value();
            let version = FileVersion {
                rel: rel.to_vec(),
                size,
                mtime: Stamp(mtime),
                ino,
            };
            if let Some(checked) = check(&version) {
                let more = range.next().is_some();
                let still_open = match &self.still_open {
                    Some(t) => t.get(k.value()).ctx("still_open")?.is_some(),
                    None => false,
                };
                return Ok(Some(Found {
                    stamp: Stamp(k.value()),
                    version,
                    checked,
                    more,
                    still_open,
                }));
            }
            skipped += 1;
            if skipped >= max_skip {
                break;
            }
        }
        Ok(None)
    }

    /// The version indexed at `rel` and its stamp.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub(crate) fn indexed_at(
        &self,
        rel: &[u8],
    ) -> Result<Option<(FileVersion, Stamp)>, IndexError> {
        Ok(self.files.get(rel).ctx("get")?.map(|g| {
            let (size, mtime, ino, stamp) = g.value();
            (
                FileVersion {
                    rel: rel.to_vec(),
                    size,
                    mtime: Stamp(mtime),
                    ino,
                },
                Stamp(stamp),
            )
        }))
    }

    /// Like [`Snapshot::first_after`], but a bounded walk that says how far it got: the
    /// oldest entry after `cursor` for which `check` returns `Some`, examining at most
    /// `budget` entries. Without a find, [`Scanned::last`] is the last entry examined, so a
    /// later walk may resume after it.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub(crate) fn scan_after<T>(
        &self,
        cursor: Stamp,
        budget: usize,
        mut check: impl FnMut(&FileVersion) -> Option<T>,
    ) -> Result<Scanned<Found<T>>, IndexError> {
        let mut out = Scanned {
            found: None,
            last: None,
            complete: true,
        };
        if cursor.0 == i64::MAX {
            return Ok(out);
        }
        for (seen, entry) in self.offers.range(cursor.0 + 1..).ctx("range")?.enumerate() {
            if seen >= budget {
                out.complete = false;
                break;
            }
            let (k, v) = entry.ctx("range")?;
            let (rel, size, mtime, ino) = v.value();
            let version = FileVersion {
                rel: rel.to_vec(),
                size,
                mtime: Stamp(mtime),
                ino,
            };
            out.last = Some(Stamp(k.value()));
            if let Some(checked) = check(&version) {
                let still_open = match &self.still_open {
                    Some(t) => t.get(k.value()).ctx("still_open")?.is_some(),
                    None => false,
                };
                out.found = Some(Found {
                    stamp: Stamp(k.value()),
                    version,
                    checked,
                    more: false,
                    still_open,
                });
                break;
            }
        }
        Ok(out)
    }

    /// Whether exactly this version of `rel` is indexed already.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub fn is_known(&self, v: &FileVersion) -> Result<bool, IndexError> {
        Ok(self
            .files
            .get(v.rel.as_slice())
            .ctx("get")?
            .is_some_and(|g| {
                let (size, mtime, ino, _) = g.value();
                v.same_version(size, Stamp(mtime), ino)
            }))
    }

    /// Keeps in `vs` only the versions that are not indexed yet. Every entry of `vs` must
    /// lie directly in directory `dir` (relative, empty for the watched directory itself).
    /// Reads that directory's part of `files` in one ordered pass (jumping over
    /// subdirectories) instead of one lookup from the root per file. Reorders `vs`.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read; `vs` is then left whole.
    pub(crate) fn retain_unknown(
        &self,
        dir: &[u8],
        vs: &mut Vec<FileVersion>,
    ) -> Result<(), IndexError> {
        if vs.len() < 4 {
            let mut known = Vec::with_capacity(vs.len());
            for v in vs.iter() {
                known.push(self.is_known(v)?);
            }
            let mut k = known.into_iter();
            vs.retain(|_| !k.next().unwrap_or(false));
            return Ok(());
        }
        vs.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
        let below = Below::new(dir);
        let prefix = below.prefix.as_slice();
        let mut keep = vec![true; vs.len()];
        let mut i = 0;
        let mut from = prefix.to_vec();
        'pass: loop {
            let range = self.files.range::<&[u8]>(below.from(&from)).ctx("range")?;
            let mut jump = None;
            for entry in range {
                let (k, v) = entry.ctx("range")?;
                let key = k.value();
                let Some(rest) = key.get(prefix.len()..) else {
                    continue;
                };
                if let Some(slash) = rest.iter().position(|b| *b == b'/') {
                    // A subdirectory's entries: continue after all of them.
                    jump = Some(Below::end_of(&key[..prefix.len() + slash]));
                    break;
                }
                while i < vs.len() && vs[i].rel.as_slice() < key {
                    i += 1;
                }
                if i == vs.len() {
                    break 'pass;
                }
                if vs[i].rel.as_slice() == key {
                    let (size, mtime, ino, _) = v.value();
                    keep[i] = !vs[i].same_version(size, Stamp(mtime), ino);
                    i += 1;
                }
            }
            match jump {
                Some(next) => from = next,
                None => break,
            }
        }
        let mut k = keep.into_iter();
        vs.retain(|_| k.next().unwrap_or(true));
        Ok(())
    }

    /// Calls `f` with every indexed path and its stamp, in key order, until it breaks.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub(crate) fn for_each_path(
        &self,
        mut f: impl FnMut(&[u8], Stamp) -> std::ops::ControlFlow<()>,
    ) -> Result<(), IndexError> {
        for entry in self.files.iter().ctx("iter")? {
            let (k, v) = entry.ctx("iter")?;
            if f(k.value(), Stamp(v.value().3)).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// One entry of `offers`, as [`Snapshot::for_each_after`] walks them (not checked
/// against the disk).
#[derive(Debug)]
pub struct Entry {
    /// Its stamp (the version's `indexedAt`).
    pub stamp: Stamp,
    /// The version indexed.
    pub version: FileVersion,
    /// Offered while still open for writing ([`WriteOp::UpsertStillOpen`]).
    pub still_open: bool,
}

/// Reads for the connector's actions: one path's version, and the entries after a cursor
/// several at a time.
impl Snapshot {
    /// The version indexed at `rel` (relative path bytes), with its stamp and whether it
    /// was indexed while still open; `None` when nothing is indexed there.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub fn lookup(&self, rel: &[u8]) -> Result<Option<Entry>, IndexError> {
        let Some((size, mtime, ino, stamp)) = self.files.get(rel).ctx("get")?.map(|g| g.value())
        else {
            return Ok(None);
        };
        Ok(Some(Entry {
            stamp: Stamp(stamp),
            version: FileVersion {
                rel: rel.to_vec(),
                size,
                mtime: Stamp(mtime),
                ino,
            },
            still_open: self.is_still_open(stamp)?,
        }))
    }

    /// Calls `f` with each entry stamped after `cursor`, in stamp order, until it breaks
    /// or the entries end. The caller decides what is live and when a page is full.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub fn for_each_after(
        &self,
        cursor: Stamp,
        mut f: impl FnMut(Entry) -> std::ops::ControlFlow<()>,
    ) -> Result<(), IndexError> {
        if cursor.0 == i64::MAX {
            return Ok(());
        }
        for entry in self.offers.range(cursor.0 + 1..).ctx("range")? {
            let (k, v) = entry.ctx("range")?;
            let (rel, size, mtime, ino) = v.value();
            let entry = Entry {
                stamp: Stamp(k.value()),
                version: FileVersion {
                    rel: rel.to_vec(),
                    size,
                    mtime: Stamp(mtime),
                    ino,
                },
                still_open: self.is_still_open(k.value())?,
            };
            if f(entry).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The position stored for `key` in `acks`.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub(crate) fn ack(&self, key: &str) -> Result<Option<Stamp>, IndexError> {
        match &self.acks {
            Some(t) => Ok(t.get(key).ctx("acks")?.map(|g| Stamp(g.value()))),
            None => Ok(None),
        }
    }

    /// Every `(key, position)` in `acks` whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub(crate) fn acks_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, Stamp)>, IndexError> {
        let Some(t) = &self.acks else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in t.range::<&str>(prefix..).ctx("acks")? {
            let (k, v) = entry.ctx("acks")?;
            let Some(rest) = k.value().strip_prefix(prefix) else {
                break;
            };
            out.push((rest.to_string(), Stamp(v.value())));
        }
        Ok(out)
    }

    /// How many entries of `offers` are stamped after `cursor`, counting at most `cap`
    /// (not checked against the disk).
    ///
    /// # Errors
    /// [`IndexError::Store`] when the store cannot be read.
    pub(crate) fn count_after(&self, cursor: Stamp, cap: u64) -> Result<u64, IndexError> {
        if cursor.0 == i64::MAX {
            return Ok(0);
        }
        let mut n = 0;
        for entry in self.offers.range(cursor.0 + 1..).ctx("range")? {
            entry.ctx("range")?;
            n += 1;
            if n >= cap {
                break;
            }
        }
        Ok(n)
    }

    /// Whether the entry stamped `stamp` was indexed while still open for writing.
    fn is_still_open(&self, stamp: i64) -> Result<bool, IndexError> {
        Ok(match &self.still_open {
            Some(t) => t.get(stamp).ctx("still_open")?.is_some(),
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::SystemClock;

    fn version(rel: &str, size: u64) -> FileVersion {
        FileVersion {
            rel: rel.as_bytes().to_vec(),
            size,
            mtime: Stamp(1_000),
            ino: 7,
        }
    }

    async fn apply(w: &WriterHandle, ops: Vec<WriteOp>) {
        for op in ops {
            w.send(op).await.unwrap();
        }
        // A reservation is answered after the commit of everything queued before it.
        w.reserve(Stamp::MIN).await.unwrap();
    }

    fn all_after(r: &IndexReader, cursor: Stamp) -> Vec<(Stamp, String)> {
        let snap = r.snapshot().unwrap();
        let mut out = Vec::new();
        let mut c = cursor;
        while let Some(f) = snap.first_after(c, 10, |_| Some(())).unwrap() {
            out.push((f.stamp, String::from_utf8(f.version.rel.clone()).unwrap()));
            c = f.stamp;
        }
        out
    }

    /// An index filled out of key order (as a first scan's two passes do) is rewritten and
    /// compacted at close; reopened, it answers the same offers with the same stamps, and
    /// the versions it knew get no new stamp (a restarted daemon offers nothing twice).
    #[tokio::test]
    async fn tightening_at_close_keeps_every_offer_and_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20_000u64;
        // Every key range filled in two passes: the first every third path, then the rest.
        let paths: Vec<String> = (0..n)
            .filter(|i| i % 3 == 0)
            .chain((0..n).filter(|i| i % 3 != 0))
            .map(|i| format!("t{:02}/d{:04}/f{i:06}.dat", i / 1000, i / 100))
            .collect();
        let (offered, size) = {
            let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
            let (w, join) = index.start_writer(1024).unwrap();
            for chunk in paths.chunks(512) {
                apply(
                    &w,
                    chunk
                        .iter()
                        .map(|p| WriteOp::Upsert(version(p, 1)))
                        .collect(),
                )
                .await;
            }
            apply(
                &w,
                vec![WriteOp::Remove(paths[5].as_bytes().to_vec(), None)],
            )
            .await;
            drop(w);
            join.join().unwrap();
            let offered = all_after(&index.reader(), Stamp::MIN);
            assert_eq!(offered.len() as u64, n - 1);
            let size = std::fs::metadata(index.path()).unwrap().len();
            // A snapshot the polls shared is let go by the close.
            drop(index.reader().shared_snapshot().unwrap());
            let t = close_tightened(&index.store, &index.folders, 0).expect("tightened");
            assert_eq!(t.before, size);
            assert!(t.after < t.before, "{t:?}");
            assert_eq!(
                t.rebuilt, 1,
                "files, filled out of order; offers is in order"
            );
            assert!(
                matches!(index.reader().snapshot(), Err(IndexError::Unavailable)),
                "readers left over after the close see no store"
            );
            (offered, t.after)
        };
        assert_eq!(
            std::fs::metadata(dir.path().join("index.redb"))
                .unwrap()
                .len(),
            size
        );
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let r = index.reader();
        assert_eq!(all_after(&r, Stamp::MIN), offered);
        let snap = r.snapshot().unwrap();
        for (stamp, path) in offered.iter().step_by(97) {
            assert_eq!(snap.indexed_at(path.as_bytes()).unwrap().unwrap().1, *stamp);
        }
        let (w, _join) = index.start_writer(1024).unwrap();
        apply(
            &w,
            paths
                .iter()
                .map(|p| WriteOp::Upsert(version(p, 1)))
                .collect(),
        )
        .await;
        let again = all_after(&r, Stamp::MIN);
        assert_eq!(
            again.len(),
            offered.len() + 1,
            "only the removed one is new"
        );
        assert_eq!(&again[..offered.len()], &offered[..]);
        assert!(again[offered.len()].0 > offered[offered.len() - 1].0);
        // Tight now: nothing to do at the next close.
        drop((w, _join));
        assert_eq!(close_tightened(&index.store, &index.folders, 0), None);
    }

    #[tokio::test]
    async fn a_known_version_is_not_stamped_twice_and_a_new_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        apply(
            &w,
            vec![
                WriteOp::Upsert(version("a", 1)),
                WriteOp::Upsert(version("a", 1)),
            ],
        )
        .await;
        let r = index.reader();
        let first = all_after(&r, Stamp::MIN);
        assert_eq!(first.len(), 1);
        apply(&w, vec![WriteOp::Upsert(version("a", 2))]).await;
        let second = all_after(&r, Stamp::MIN);
        assert_eq!(second.len(), 1, "the old version's entry is gone");
        assert!(second[0].0 > first[0].0);
        assert_eq!(r.stats().files(), 1);
    }

    fn open_marks(r: &IndexReader) -> Vec<(String, bool)> {
        let snap = r.snapshot().unwrap();
        let mut out = Vec::new();
        let mut c = Stamp::MIN;
        while let Some(f) = snap.first_after(c, 10, |_| Some(())).unwrap() {
            out.push((String::from_utf8(f.version.rel).unwrap(), f.still_open));
            c = f.stamp;
        }
        out
    }

    #[tokio::test]
    async fn a_still_open_offer_is_marked_and_the_same_version_closed_is_offered_again() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        let r = index.reader();
        apply(
            &w,
            vec![
                WriteOp::UpsertStillOpen(version("log", 1)),
                WriteOp::UpsertStillOpen(version("log", 1)),
                WriteOp::Upsert(version("plain", 1)),
            ],
        )
        .await;
        assert_eq!(
            open_marks(&r),
            vec![("log".into(), true), ("plain".into(), false)]
        );
        // Its writer closed it without writing more: indexed again, unmarked.
        apply(&w, vec![WriteOp::Upsert(version("log", 1))]).await;
        assert_eq!(
            open_marks(&r),
            vec![("plain".into(), false), ("log".into(), false)]
        );
        apply(&w, vec![WriteOp::Upsert(version("log", 1))]).await;
        assert_eq!(open_marks(&r).len(), 2, "not again");
    }

    #[tokio::test]
    async fn removing_a_tree_removes_only_paths_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        apply(
            &w,
            vec![
                WriteOp::Upsert(version("d/x", 1)),
                WriteOp::Upsert(version("d/e/y", 1)),
                WriteOp::Upsert(version("d.txt", 1)),
                WriteOp::Upsert(version("dd/z", 1)),
                WriteOp::Upsert(version("d0/w", 1)),
            ],
        )
        .await;
        apply(&w, vec![WriteOp::RemoveTree(b"d".to_vec())]).await;
        let left = || -> Vec<String> {
            all_after(&index.reader(), Stamp::MIN)
                .into_iter()
                .map(|(_, p)| p)
                .collect()
        };
        assert_eq!(left(), vec!["d.txt", "dd/z", "d0/w"]);
        assert_eq!(index.stats().files(), 3);
        // The watched directory itself: everything.
        apply(&w, vec![WriteOp::RemoveTree(Vec::new())]).await;
        assert!(left().is_empty());
        assert_eq!(index.stats().files(), 0);
    }

    #[tokio::test]
    async fn retain_unknown_reads_one_directory_and_keeps_new_and_changed_versions() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(64).unwrap();
        let indexed = [
            "d/a", "d/b", "d/c", "d/e/x", "d/e/y", "d/f", "d.txt", "dd/z", "top1", "top2",
        ];
        apply(
            &w,
            indexed
                .iter()
                .map(|p| WriteOp::Upsert(version(p, 1)))
                .collect(),
        )
        .await;
        let snap = index.reader().snapshot().unwrap();
        let names = |vs: &[FileVersion]| {
            let mut n: Vec<String> = vs
                .iter()
                .map(|v| String::from_utf8(v.rel.clone()).unwrap())
                .collect();
            n.sort();
            n
        };
        // In `d`: a and f known, b changed, g and h new; e/ entries are skipped over.
        let mut vs = vec![
            version("d/h", 1),
            version("d/a", 1),
            version("d/b", 2),
            version("d/f", 1),
            version("d/g", 1),
        ];
        snap.retain_unknown(b"d", &mut vs).unwrap();
        assert_eq!(names(&vs), vec!["d/b", "d/g", "d/h"]);
        // At the top: only direct entries count, not d/ or dd/ below.
        let mut vs = vec![
            version("top1", 1),
            version("top2", 5),
            version("d.txt", 1),
            version("new", 1),
        ];
        snap.retain_unknown(b"", &mut vs).unwrap();
        assert_eq!(names(&vs), vec!["new", "top2"]);
        // Few entries take the point lookups.
        let mut vs = vec![version("d/e/x", 1), version("d/e/q", 1)];
        snap.retain_unknown(b"d/e", &mut vs).unwrap();
        assert_eq!(names(&vs), vec!["d/e/q"]);
    }

    /// The ordered pass (ranges below a directory, jumps over subdirectories) must agree
    /// with one lookup per file, also for names whose bytes sort next to `/` (`.`, `0`).
    #[tokio::test]
    async fn retain_unknown_agrees_with_point_lookups_next_to_the_slash() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(64).unwrap();
        let names = [
            "a", "a-", "a.b", "a0", "a/b", "a/b/c", "a/b0", "a/b.c", "a0/x", "b",
        ];
        let tops = ["", "a", "a/b", "a0"];
        let all: std::collections::BTreeSet<String> = tops
            .iter()
            .flat_map(|t| {
                names.iter().map(move |n| match *t {
                    "" => n.to_string(),
                    t => format!("{t}/{n}"),
                })
            })
            .collect();
        // Every other path indexed; of those, every third one with another size.
        apply(
            &w,
            all.iter()
                .step_by(2)
                .enumerate()
                .map(|(i, p)| WriteOp::Upsert(version(p, 1 + u64::from(i % 3 == 0))))
                .collect(),
        )
        .await;
        let snap = index.reader().snapshot().unwrap();
        for t in tops {
            let mut direct: Vec<FileVersion> = all
                .iter()
                .filter(|p| match t {
                    "" => !p.contains('/'),
                    t => p
                        .strip_prefix(t)
                        .and_then(|r| r.strip_prefix('/'))
                        .is_some_and(|r| !r.contains('/')),
                })
                .map(|p| version(p, 1))
                .collect();
            let mut want: Vec<Vec<u8>> = direct
                .iter()
                .filter(|v| !snap.is_known(v).unwrap())
                .map(|v| v.rel.clone())
                .collect();
            assert!(direct.len() >= 4, "{t}: too few for the ordered pass");
            snap.retain_unknown(t.as_bytes(), &mut direct).unwrap();
            let mut got: Vec<Vec<u8>> = direct.into_iter().map(|v| v.rel).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "in {t:?}");
        }
    }

    #[tokio::test]
    async fn lookup_finds_the_current_version_and_for_each_after_walks_in_stamp_order() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        apply(
            &w,
            vec![
                WriteOp::Upsert(version("b", 1)),
                WriteOp::UpsertStillOpen(version("a", 1)),
                WriteOp::Upsert(version("b", 2)),
                WriteOp::Upsert(version("gone", 1)),
                WriteOp::Remove(b"gone".to_vec(), None),
            ],
        )
        .await;
        let snap = index.reader().snapshot().unwrap();
        let b = snap.lookup(b"b").unwrap().unwrap();
        assert_eq!(b.version, version("b", 2));
        assert!(!b.still_open);
        assert!(snap.lookup(b"a").unwrap().unwrap().still_open);
        assert!(snap.lookup(b"gone").unwrap().is_none());
        let mut walked = Vec::new();
        snap.for_each_after(Stamp::MIN, |e| {
            walked.push((String::from_utf8(e.version.rel).unwrap(), e.stamp));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            walked.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(walked[1].1, b.stamp);
        let mut after = Vec::new();
        snap.for_each_after(walked[0].1, |e| {
            after.push(e.stamp);
            std::ops::ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(after, vec![b.stamp]);
    }

    /// Polls share one snapshot until the next commit: a commit that lands while one is
    /// shared is seen by the next call, and the snapshot shared before it is not kept.
    #[tokio::test]
    async fn the_shared_snapshot_never_outlives_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        let r = index.reader();
        let first_of = |snap: &Snapshot| {
            snap.first_after(Stamp::MIN, 10, |_| Some(()))
                .unwrap()
                .map(|f| String::from_utf8(f.version.rel).unwrap())
        };
        let empty = r.shared_snapshot().unwrap();
        assert_eq!(first_of(&empty), None);
        assert!(
            Arc::ptr_eq(&empty, &r.shared_snapshot().unwrap()),
            "no commit in between: the same snapshot"
        );
        apply(&w, vec![WriteOp::Upsert(version("a", 1))]).await;
        let after = r.shared_snapshot().unwrap();
        assert!(!Arc::ptr_eq(&empty, &after));
        assert_eq!(first_of(&after).as_deref(), Some("a"));
        assert_eq!(first_of(&empty), None, "an old holder keeps its own view");
        drop(empty);
        assert_eq!(
            Arc::strong_count(&after),
            2,
            "the share and this caller hold it; the one before the commit is gone"
        );
    }

    #[tokio::test]
    async fn a_move_keeps_the_stamp_under_the_new_path_and_offers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        let r = index.reader();
        apply(&w, vec![WriteOp::Upsert(version("in/a", 1))]).await;
        let stamp = all_after(&r, Stamp::MIN)[0].0;
        let to = version("done/a", 1);
        let step = |step| WriteOp::Move {
            step,
            from: b"in/a".to_vec(),
            to: to.clone(),
            stamp,
        };
        // Adopted: the target is known (discovery finds it so), the source still offered.
        w.apply(step(MoveStep::Adopt)).await.unwrap();
        let snap = r.snapshot().unwrap();
        assert!(snap.is_known(&to).unwrap());
        assert_eq!(snap.indexed_at(b"done/a").unwrap().unwrap().1, stamp);
        assert_eq!(all_after(&r, Stamp::MIN), vec![(stamp, "in/a".to_string())]);
        // An upsert of the same version at the target (discovery seeing it): no stamp.
        apply(&w, vec![WriteOp::Upsert(to.clone())]).await;
        w.apply(step(MoveStep::Done)).await.unwrap();
        assert!(all_after(&r, Stamp::MIN).is_empty(), "nothing is offered");
        let snap = r.snapshot().unwrap();
        assert!(snap.indexed_at(b"in/a").unwrap().is_none());
        assert_eq!(snap.indexed_at(b"done/a").unwrap().unwrap().1, stamp);
        // Undo after a failed rename drops only the target's record.
        apply(&w, vec![WriteOp::Upsert(version("in/b", 2))]).await;
        let b = all_after(&r, Stamp::MIN)[0].0;
        let undo = |step| WriteOp::Move {
            step,
            from: b"in/b".to_vec(),
            to: version("done/b", 2),
            stamp: b,
        };
        w.apply(undo(MoveStep::Adopt)).await.unwrap();
        // A scan that saw no file at the target yet (or the start-up scan after a crash
        // before the rename) drops the target's record: the source's offer stays.
        apply(&w, vec![WriteOp::Remove(b"done/b".to_vec(), Some(b))]).await;
        assert_eq!(all_after(&r, Stamp::MIN), vec![(b, "in/b".to_string())]);
        w.apply(undo(MoveStep::Adopt)).await.unwrap();
        // Another file appearing at the target (the rename will fail): the same.
        apply(&w, vec![WriteOp::Upsert(version("done/b", 9))]).await;
        assert_eq!(all_after(&r, Stamp::MIN)[0], (b, "in/b".to_string()));
        apply(&w, vec![WriteOp::Remove(b"done/b".to_vec(), None)]).await;
        w.apply(undo(MoveStep::Adopt)).await.unwrap();
        w.apply(undo(MoveStep::Undo)).await.unwrap();
        let snap = r.snapshot().unwrap();
        assert!(snap.indexed_at(b"done/b").unwrap().is_none());
        assert_eq!(all_after(&r, Stamp::MIN), vec![(b, "in/b".to_string())]);
    }

    #[tokio::test]
    async fn a_bounded_scan_resumes_after_the_last_entry_it_examined() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(64).unwrap();
        apply(
            &w,
            (0..10)
                .map(|i| WriteOp::Upsert(version(&format!("f{i}"), 1)))
                .collect(),
        )
        .await;
        let snap = index.reader().snapshot().unwrap();
        let want = |v: &FileVersion| (v.rel == b"f8").then_some(());
        let mut cursor = Stamp::MIN;
        let mut calls = 0;
        let found = loop {
            calls += 1;
            let s = snap.scan_after(cursor, 3, want).unwrap();
            if let Some(f) = s.found {
                break f;
            }
            assert!(!s.complete, "stopped by the budget, not at the end");
            cursor = s.last.unwrap();
        };
        assert_eq!(found.version.rel, b"f8");
        assert_eq!(calls, 3, "3 + 3 entries, then f6..f8");
        let end = snap.scan_after(found.stamp, 3, |_| None::<()>).unwrap();
        assert!(end.complete && end.found.is_none());
        assert!(end.last.is_some(), "f9 was examined");
        let none = snap
            .scan_after(end.last.unwrap(), 3, |_| None::<()>)
            .unwrap();
        assert!(none.complete && none.last.is_none());
    }

    #[tokio::test]
    async fn folders_keep_their_own_tables_and_share_one_clock() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index =
                Index::open_folders(dir.path(), Arc::new(SystemClock), &["default", "docs"])
                    .unwrap();
            let (w, join) = index.start_writer(16).unwrap();
            let docs = w.for_folder("docs").unwrap();
            assert!(w.for_folder("nope").is_none());
            apply(&w, vec![WriteOp::Upsert(version("a", 1))]).await;
            apply(&docs, vec![WriteOp::Upsert(version("a", 1))]).await;
            apply(&docs, vec![WriteOp::Upsert(version("b", 1))]).await;
            let (main, other) = (index.reader(), index.reader_for("docs").unwrap());
            let (m, o) = (all_after(&main, Stamp::MIN), all_after(&other, Stamp::MIN));
            assert_eq!(m.len(), 1);
            assert_eq!(o.len(), 2);
            assert!(o[0].0 > m[0].0, "one clock: stamps increase across folders");
            assert!(
                !main.maybe_after(m[0].0),
                "the other folder's stamps do not count"
            );
            assert!(other.maybe_after(m[0].0));
            assert_eq!(
                (main.files(), other.files(), index.stats().files()),
                (1, 2, 3)
            );
            // Removing the whole tree of one folder leaves the other alone.
            apply(&docs, vec![WriteOp::RemoveTree(Vec::new())]).await;
            assert_eq!((main.files(), other.files()), (1, 0));
            apply(&docs, vec![WriteOp::Upsert(version("c", 1))]).await;
            drop((w, docs));
            join.join().unwrap();
        }
        // Reopened with the folder `default` only (as Index::open): its table is the first
        // release's `offers`; the other folder's entries are kept but not read.
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        assert_eq!(all_after(&index.reader(), Stamp::MIN).len(), 1);
        assert_eq!(inspect_after_close(dir.path(), index), Some(2));
    }

    fn inspect_after_close(dir: &Path, index: Index) -> Option<u64> {
        drop(index);
        inspect(dir).unwrap()
    }

    #[tokio::test]
    async fn acks_only_rise_wake_the_folder_and_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let index =
            Index::open_folders(dir.path(), Arc::new(SystemClock), &["default", "b"]).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        let r = index.reader();
        let ack = |key: &str, s: i64| WriteOp::Ack {
            key: key.into(),
            stamp: Stamp(s),
        };
        apply(&w, vec![ack("consumer/x", 10), ack("consumer/x", 5)]).await;
        tokio::time::timeout(Duration::from_secs(5), r.acked().notified())
            .await
            .expect("an advancing ack wakes the folder");
        apply(&w, vec![ack("consumer/y", 7), ack("subscription/s", 3)]).await;
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.ack("consumer/x").unwrap(), Some(Stamp(10)));
        assert_eq!(
            snap.acks_with_prefix("consumer/").unwrap(),
            vec![("x".to_string(), Stamp(10)), ("y".to_string(), Stamp(7))]
        );
        let other = index.reader_for("b").unwrap().snapshot().unwrap();
        assert_eq!(other.ack("consumer/x").unwrap(), None, "per folder");
        apply(&w, vec![WriteOp::Unack("consumer/x".into())]).await;
        assert_eq!(r.snapshot().unwrap().ack("consumer/x").unwrap(), None);
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_state_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let err = Index::open(dir.path(), Arc::new(SystemClock)).unwrap_err();
        assert!(matches!(err, IndexError::Locked { .. }), "{err}");
    }

    #[tokio::test]
    async fn the_clock_floor_and_reservations_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let far = Stamp::now().0 + 3_600_000_000_000;
        {
            let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
            let (w, join) = index.start_writer(16).unwrap();
            w.reserve(Stamp(far)).await.unwrap();
            drop(w);
            join.join().unwrap();
        }
        let index = Index::open(dir.path(), Arc::new(SystemClock)).unwrap();
        assert!(index.clock().next_stamp() > Stamp(far));
    }
}
