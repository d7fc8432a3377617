//! Full and subtree scans of the watched directory, and the deletion check.
//!
//! Owns: walking a tree without following symbolic links, pruning excluded directories,
//! turning each regular file into a [`FileVersion`], and telling which versions the index
//! does not know yet. Blocking code: run it on a blocking thread; it checks the cancel
//! token between entries.
//! Does not own: deciding completeness (`settle`) or writing the index.

use std::fs::Metadata;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::error::IndexError;
use crate::filter::Filter;
use crate::index::{FileVersion, Snapshot};
use crate::stamp::Stamp;

/// How often a long scan logs its progress.
const PROGRESS_EVERY: u64 = 100_000;

/// What a scan found.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScanReport {
    /// Regular files that pass the filter.
    pub files: u64,
    /// Of those, versions the index does not know.
    pub candidates: u64,
    /// Entries that could not be read (logged one by one).
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

/// Looks at one path now: `Some` if it is a regular file that the filter offers.
/// Does not follow a symbolic link.
pub fn stat_file(root: &Path, rel: &Path, filter: &Filter) -> Option<FileVersion> {
    if !filter.offers_file(rel) {
        return None;
    }
    let meta = std::fs::symlink_metadata(root.join(rel)).ok()?;
    meta.file_type().is_file().then(|| version_of(rel, &meta))
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
        Err(e) => {
            report.errors += 1;
            tracing::warn!(path = %start.display(), error = %e, "skipped an entry the scan could not read");
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
/// `recursive`, its subdirectories that the filter does not prune into `subdirs`.
fn read_one(
    root: &Path,
    dir: &Path,
    recursive: bool,
    filter: &Filter,
    report: &mut ScanReport,
    subdirs: &mut Vec<PathBuf>,
    found: &mut Vec<FileVersion>,
) {
    let abs = root.join(dir);
    let entries = match std::fs::read_dir(&abs) {
        Ok(rd) => rd,
        Err(e) => {
            report.errors += 1;
            tracing::warn!(path = %abs.display(), error = %e, "skipped an entry the scan could not read");
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                report.errors += 1;
                tracing::warn!(path = %abs.display(), error = %e, "skipped an entry the scan could not read");
                continue;
            }
        };
        // From the directory entry (d_type): no stat for directories and links.
        let Ok(kind) = entry.file_type() else {
            continue;
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
        found.push(version_of(&rel, &meta));
    }
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
