//! Full and subtree scans of the watched directory, and the deletion check.
//!
//! Owns: walking a tree without following symbolic links, pruning excluded directories,
//! turning each regular file into a [`FileVersion`], and telling which versions the index
//! does not know yet. Blocking code: run it on a blocking thread; it checks the cancel
//! token between entries.
//! Also owns: telling the log about entries the service user cannot read (a directory it
//! cannot list, a file it cannot open), one warning per path however many scans meet it,
//! and one line when it can be read again. Such a file is not a candidate: it is looked
//! at again by later scans and offered once it can be read.
//! Does not own: deciding completeness (`settle`) or writing the index.

use std::collections::HashSet;
use std::fs::Metadata;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::error::IndexError;
use crate::filter::Filter;
use crate::index::{FileVersion, Snapshot};
use crate::stamp::Stamp;

/// How often a long scan logs its progress.
const PROGRESS_EVERY: u64 = 100_000;

/// Unreadable paths remembered at most. When full, the set is emptied: paths deleted
/// while unreadable are never seen again to be forgotten, and a stale set would silence
/// new ones. A path still unreadable then gets one more warning.
const WARNED_MAX: usize = 4096;

/// The absolute paths already warned about as unreadable.
static WARNED: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Default::default);
/// `WARNED.len()`, read without the lock on the hot path.
static WARNED_LEN: AtomicUsize = AtomicUsize::new(0);

/// An entry this process cannot read: a warning the first time for `path`, debug on later
/// scans. Returns whether it warned.
fn unreadable(path: &Path, error: &io::Error) -> bool {
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    if warned.contains(path) {
        tracing::debug!(path = %path.display(), error = %error, "still cannot be read; skipped");
        return false;
    }
    if warned.len() >= WARNED_MAX {
        warned.clear();
    }
    warned.insert(path.to_path_buf());
    WARNED_LEN.store(warned.len(), Ordering::Relaxed);
    tracing::warn!(path = %path.display(), error = %error, "skipped an entry the scan could not read; later scans retry it");
    true
}

/// An entry that could be read: if it was warned about, it is readable again (logged).
/// Returns whether it was.
fn readable(path: &Path) -> bool {
    if WARNED_LEN.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    let was = warned.remove(path);
    if was {
        WARNED_LEN.store(warned.len(), Ordering::Relaxed);
        tracing::info!(path = %path.display(), "readable again");
    }
    was
}

/// Whether the mode bits alone grant this process read access: to everyone, or to the
/// owner who is us. When they do not, the kernel is asked ([`access`]).
fn mode_grants_read(meta: &Metadata) -> bool {
    meta.mode() & 0o004 != 0
        || (meta.mode() & 0o400 != 0 && meta.uid() == rustix::process::geteuid().as_raw())
}

/// Whether this process may read the file at `path`, as the kernel decides it (groups,
/// ACLs, capabilities) for the effective user.
fn access(path: &Path) -> io::Result<()> {
    use rustix::fs::{accessat, Access, AtFlags, CWD};
    Ok(accessat(CWD, path, Access::READ_OK, AtFlags::EACCESS)?)
}

/// Whether the file at `root/rel` may be read; an unreadable one is reported (once).
fn check_readable(root: &Path, rel: &Path, meta: &Metadata) -> bool {
    let path = root.join(rel);
    let ok = if mode_grants_read(meta) {
        Ok(())
    } else {
        access(&path)
    };
    match ok {
        Ok(()) => {
            readable(&path);
            true
        }
        Err(e) => {
            unreadable(&path, &e);
            false
        }
    }
}

/// What a scan found.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanReport {
    /// Regular files that pass the filter.
    pub files: u64,
    /// Of those, versions the index does not know.
    pub candidates: u64,
    /// Entries that could not be read (a warning once per path, see [`unreadable`]).
    pub errors: u64,
    /// Whether the scan stopped early (cancelled, or the receiver went away).
    pub stopped: bool,
}

/// The version of a file from its metadata.
pub fn version_of(rel: &Path, meta: &Metadata) -> FileVersion {
    FileVersion {
        rel: rel.as_os_str().as_bytes().to_vec(),
        size: meta.len(),
        mtime: Stamp(
            meta.mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
        ),
        ino: meta.ino(),
    }
}

/// Looks at one path now: `Some` if it is a regular file that the filter offers and that
/// this process may read. Does not follow a symbolic link.
pub fn stat_file(root: &Path, rel: &Path, filter: &Filter) -> Option<FileVersion> {
    if !filter.offers_file(rel) {
        return None;
    }
    let meta = std::fs::symlink_metadata(root.join(rel)).ok()?;
    (meta.file_type().is_file() && check_readable(root, rel, &meta)).then(|| version_of(rel, &meta))
}

/// Walks `root/sub` (`sub` relative, empty for the whole tree) and calls `emit` with each
/// offered regular file whose version is not in `known`. `emit` returns `false` to stop.
///
/// `enter` is called with each directory (absolute path) that the walk is about to read,
/// before it reads it: discovery adds the directory's watch there, so that a file created
/// in it is either listed by the walk or reported by the watch.
///
/// The walk reads one directory at a time, stats its entries relative to the directory
/// (no path resolution from the root per file, as `find` does) and checks the whole
/// directory against the index in one ordered pass. Symbolic links are not followed.
#[allow(clippy::too_many_arguments)]
pub fn scan(
    root: &Path,
    sub: &Path,
    recursive: bool,
    filter: &Filter,
    known: &Snapshot,
    cancel: &CancellationToken,
    mut enter: impl FnMut(&Path) + Send,
    mut emit: impl FnMut(FileVersion) -> bool,
) -> ScanReport {
    let mut report = ScanReport::default();
    let start = root.join(sub);
    match std::fs::metadata(&start) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.is_file() => {
            // A subtree scan of a path that is a file by now: look at that one file.
            if let Some(v) = stat_file(root, sub, filter) {
                report.files += 1;
                if !known.is_known(&v).unwrap_or(false) {
                    report.candidates += 1;
                    report.stopped = !emit(v);
                }
            }
            return report;
        }
        Ok(_) => return report,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::debug!(path = %start.display(), "gone before its scan");
            return report;
        }
        Err(e) => {
            report.errors += 1;
            unreadable(&start, &e);
            return report;
        }
    }
    // Two threads: one adds each directory's watch, then hands the directory to this one,
    // which reads it and hands back its subdirectories. A directory is still read only
    // after its watch is in place, but the reads no longer wait on the watcher thread.
    std::thread::scope(|threads| {
        let (to_watch, watch_rx) = std::sync::mpsc::channel::<PathBuf>();
        let (to_read, read_rx) = std::sync::mpsc::channel::<PathBuf>();
        threads.spawn(move || {
            for dir in watch_rx {
                enter(&root.join(&dir));
                if to_read.send(dir).is_err() {
                    break;
                }
            }
        });
        let mut outstanding = 0usize;
        if to_watch.send(sub.to_path_buf()).is_ok() {
            outstanding += 1;
        }
        let mut subdirs: Vec<PathBuf> = Vec::new();
        let mut found: Vec<FileVersion> = Vec::new();
        let mut doubtful: HashSet<Vec<u8>> = HashSet::new();
        while outstanding > 0 {
            let Ok(dir) = read_rx.recv() else {
                break;
            };
            outstanding -= 1;
            if cancel.is_cancelled() {
                report.stopped = true;
                break;
            }
            read_one(
                root,
                &dir,
                recursive,
                filter,
                &mut report,
                &mut subdirs,
                &mut found,
                &mut doubtful,
            );
            for d in subdirs.drain(..) {
                if to_watch.send(d).is_ok() {
                    outstanding += 1;
                }
            }
            if found.is_empty() {
                continue;
            }
            if let Err(e) = known.retain_unknown(dir.as_os_str().as_bytes(), &mut found) {
                tracing::warn!(error = %e, "index read failed during scan; treating the files as new");
            }
            // Only new versions are checked for permission (a known one was readable when
            // it was indexed; the poll copes if it no longer is).
            if !doubtful.is_empty() || WARNED_LEN.load(Ordering::Relaxed) > 0 {
                found.retain(|v| {
                    let path = root.join(std::ffi::OsStr::from_bytes(&v.rel));
                    if doubtful.contains(&v.rel) {
                        if let Err(e) = access(&path) {
                            report.errors += 1;
                            unreadable(&path, &e);
                            return false;
                        }
                    }
                    readable(&path);
                    true
                });
                doubtful.clear();
            }
            for v in found.drain(..) {
                report.candidates += 1;
                if !emit(v) {
                    report.stopped = true;
                    return;
                }
            }
        }
    });
    report
}

/// Reads directory `dir` (relative): its offered regular files into `found`, and, when
/// `recursive`, its subdirectories that the filter does not prune into `subdirs`. Files
/// whose mode bits do not show that this process may read them also go to `doubtful`,
/// to be asked about if their version is new.
#[allow(clippy::too_many_arguments)]
fn read_one(
    root: &Path,
    dir: &Path,
    recursive: bool,
    filter: &Filter,
    report: &mut ScanReport,
    subdirs: &mut Vec<PathBuf>,
    found: &mut Vec<FileVersion>,
    doubtful: &mut HashSet<Vec<u8>>,
) {
    let abs = root.join(dir);
    let entries = match std::fs::read_dir(&abs) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::debug!(path = %abs.display(), "gone before it was read");
            return;
        }
        Err(e) => {
            report.errors += 1;
            unreadable(&abs, &e);
            return;
        }
    };
    let (subdirs_before, found_before) = (subdirs.len(), found.len());
    // Set when the directory can be listed but not searched (read without execute
    // permission): none of its entries can be stat'ed, so it counts as unreadable.
    let mut denied = None;
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                denied = Some(e);
                break;
            }
        };
        // From the directory entry (d_type): no stat for directories and links.
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                denied = Some(e);
                break;
            }
            Err(_) => continue,
        };
        let rel = dir.join(entry.file_name());
        if kind.is_dir() {
            if recursive && !filter.prunes_dir(&rel) {
                subdirs.push(rel);
            }
            continue;
        }
        if !kind.is_file() || !filter.offers_file(&rel) {
            continue;
        }
        // `fstatat` relative to the open directory, without following a link.
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                denied = Some(e);
                break;
            }
            Err(e) => {
                // Usually deleted between readdir and stat.
                tracing::debug!(path = %entry.path().display(), error = %e, "skipped");
                continue;
            }
        };
        if !meta.file_type().is_file() {
            continue;
        }
        report.files += 1;
        if report.files.is_multiple_of(PROGRESS_EVERY) {
            tracing::info!(dir = %root.display(), files = report.files, "scanning");
        }
        if !mode_grants_read(&meta) {
            doubtful.insert(rel.as_os_str().as_bytes().to_vec());
        }
        found.push(version_of(&rel, &meta));
    }
    match denied {
        Some(e) => {
            report.errors += 1;
            unreadable(&abs, &e);
            subdirs.truncate(subdirs_before);
            found.truncate(found_before);
            doubtful.clear();
        }
        None => {
            readable(&abs);
        }
    }
}

/// Whether a full scan that walked `root` and found `found` files may run its deletion
/// check ([`find_deleted`]) against an index holding `indexed` entries. Not when the
/// watched directory cannot be read: that is an outage, not the deletion of every file.
/// Nor when the tree is suddenly empty while the index is not: most likely an unmounted
/// share showing its empty mount point, and dropping every entry would offer every file
/// again after the remount (deletions seen as events are still applied). Says why in the
/// log when not.
pub fn deletion_check_allowed(root: &Path, found: u64, indexed: u64) -> bool {
    if let Err(e) = std::fs::read_dir(root) {
        tracing::warn!(dir = %root.display(), error = %e, "the watched directory cannot be read; deletion check skipped");
        return false;
    }
    if found == 0 && indexed > 0 {
        tracing::warn!(dir = %root.display(), "the watched directory is empty but the index is not; deletion check skipped");
        return false;
    }
    true
}

/// Calls `gone` with each indexed path (and its stamp) that no longer holds a regular
/// file. Files under excluded patterns are left alone.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub fn find_deleted(
    root: &Path,
    known: &Snapshot,
    cancel: &CancellationToken,
    mut gone: impl FnMut(Vec<u8>, Stamp) -> bool,
) -> Result<u64, IndexError> {
    let mut count = 0;
    known.for_each_path(|rel, stamp| {
        if cancel.is_cancelled() {
            return ControlFlow::Break(());
        }
        let path = root.join(std::ffi::OsStr::from_bytes(rel));
        let exists = match std::fs::symlink_metadata(&path) {
            Ok(m) => m.file_type().is_file(),
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        if !exists {
            count += 1;
            if !gone(rel.to_vec(), stamp) {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, WriteOp};
    use crate::stamp::SystemClock;
    use std::sync::{Arc, Mutex};

    fn filter() -> Filter {
        Filter::new(
            &["**".to_string()],
            &[".*".to_string(), "*.tmp".to_string()],
        )
        .unwrap()
    }

    #[test]
    fn an_unreadable_path_is_warned_once_until_it_is_readable_again_and_the_set_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("locked");
        let other = dir.path().join("other");
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(!readable(&p), "never warned, so not readable *again*");
        assert!(unreadable(&p, &e));
        assert!(!unreadable(&p, &e), "second scan: no second warning");
        assert!(unreadable(&other, &e), "another path has its own warning");
        assert!(readable(&p));
        assert!(!readable(&p));
        assert!(
            unreadable(&p, &e),
            "unreadable again after it was readable: warned"
        );
        assert!(readable(&p) && readable(&other));

        // Bounded (in the same test: the set is process-wide).
        for i in 0..WARNED_MAX + 10 {
            unreadable(&dir.path().join(i.to_string()), &e);
        }
        assert!(WARNED_LEN.load(Ordering::Relaxed) <= WARNED_MAX);
        for i in 0..WARNED_MAX + 10 {
            readable(&dir.path().join(i.to_string()));
        }
    }

    #[test]
    fn the_deletion_check_is_skipped_for_a_missing_or_suddenly_empty_tree() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        assert!(
            deletion_check_allowed(root, 0, 0),
            "empty tree, empty index"
        );
        assert!(!deletion_check_allowed(root, 0, 5), "suddenly empty");
        assert!(deletion_check_allowed(root, 1, 5));
        let gone = root.join("unmounted");
        assert!(!deletion_check_allowed(&gone, 1, 5), "cannot be read");
    }

    #[tokio::test]
    async fn a_scan_watches_each_directory_before_reading_it_and_skips_known_versions() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        for d in ["a/b", "a/c", ".hidden"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "top",
            "a/x",
            "a/b/y",
            "a/b/z",
            "a/c/w",
            "a/skip.tmp",
            ".hidden/h",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        let state = tempfile::tempdir().unwrap();
        let index = Index::open(state.path(), Arc::new(SystemClock)).unwrap();
        let (w, _join) = index.start_writer(16).unwrap();
        let known = stat_file(root, Path::new("a/b/y"), &filter()).unwrap();
        w.send(WriteOp::Upsert(known)).await.unwrap();
        w.reserve(Stamp::MIN).await.unwrap();

        let entered = Mutex::new(Vec::new());
        let mut found = Vec::new();
        let snap = index.reader().snapshot().unwrap();
        let report = scan(
            root,
            Path::new(""),
            true,
            &filter(),
            &snap,
            &CancellationToken::new(),
            |dir| {
                let rel = dir.strip_prefix(root).unwrap().display().to_string();
                entered.lock().unwrap().push(rel);
            },
            |v| {
                found.push(String::from_utf8(v.rel).unwrap());
                true
            },
        );
        found.sort();
        assert_eq!(found, vec!["a/b/z", "a/c/w", "a/x", "top"]);
        assert_eq!((report.files, report.candidates), (5, 4));
        let mut entered = entered.into_inner().unwrap();
        entered.sort();
        assert_eq!(
            entered,
            vec!["", "a", "a/b", "a/c"],
            "hidden ones are pruned"
        );

        // Not recursive: the top directory only.
        let mut top = Vec::new();
        scan(
            root,
            Path::new(""),
            false,
            &filter(),
            &snap,
            &CancellationToken::new(),
            |_| {},
            |v| {
                top.push(String::from_utf8(v.rel).unwrap());
                true
            },
        );
        assert_eq!(top, vec!["top"]);
    }
}
