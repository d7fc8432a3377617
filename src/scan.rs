//! Full and subtree scans of the watched directory (walkdir), and the deletion check.
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
use std::path::Path;

use tokio_util::sync::CancellationToken;
use walkdir::WalkDir;

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
pub fn scan(
    root: &Path,
    sub: &Path,
    recursive: bool,
    filter: &Filter,
    known: &Snapshot,
    cancel: &CancellationToken,
    mut emit: impl FnMut(FileVersion) -> bool,
) -> ScanReport {
    let mut report = ScanReport::default();
    let start = root.join(sub);
    let mut walk = WalkDir::new(&start).follow_links(false);
    if !recursive {
        walk = walk.max_depth(1);
    }
    let walker = walk.into_iter().filter_entry(|e| {
        if e.depth() == 0 || !e.file_type().is_dir() {
            return true;
        }
        match e.path().strip_prefix(root) {
            Ok(rel) => !filter.prunes_dir(rel),
            Err(_) => false,
        }
    });
    for entry in walker {
        if cancel.is_cancelled() {
            report.stopped = true;
            break;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                report.errors += 1;
                let path = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                tracing::warn!(path = %path, error = %e, "skipped an entry the scan could not read");
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        if !filter.offers_file(rel) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                // Usually deleted between readdir and stat.
                tracing::debug!(path = %entry.path().display(), error = %e, "skipped");
                continue;
            }
        };
        report.files += 1;
        if report.files.is_multiple_of(PROGRESS_EVERY) {
            tracing::info!(dir = %start.display(), files = report.files, "scanning");
        }
        let v = version_of(rel, &meta);
        match known.is_known(&v) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "index read failed during scan; treating the file as new");
            }
        }
        report.candidates += 1;
        if !emit(v) {
            report.stopped = true;
            break;
        }
    }
    report
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
