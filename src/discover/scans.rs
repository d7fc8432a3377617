//! What runs on a scan thread, for discovery.
//!
//! Owns: one scan from start to end on a blocking thread ([`ScanJob::run`]): the walk
//! (`scan::scan`), adding each directory's watch just before the walk reads it, sending
//! the versions the index does not know back to discovery in batches ([`Found`]), and,
//! after a full walk, the deletion check behind its guards
//! (`scan::deletion_check_allowed`); marking a full scan as running for its progress
//! (`health::ScanProgress`) and recording each walk in the metrics.
//! Does not own: when scans run (`schedule`), what is done with what they find (the
//! discovery task in `discover.rs`), or walking itself (`scan`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::filter::Filter;
use crate::health::Health;
use crate::index::{FileVersion, IndexReader, Snapshot};
use crate::metrics::Metrics;
use crate::scan::{self, ScanReport, WalkCounts};
use crate::schedule::{Scan, ScanKind};
use crate::stamp::Stamp;
use crate::watch::{AddError, Watches};

/// Candidates are handed from a scan thread in batches of this size.
const BATCH: usize = 512;

/// What scan threads send back.
pub(super) enum Found {
    /// New versions, stat'ed by a scan that started at this instant.
    Candidates(Instant, Vec<FileVersion>),
    /// Indexed paths (with their stamps) that no longer hold a file.
    Gone(Vec<(Vec<u8>, Stamp)>),
    /// A full scan that started at this instant has walked the whole tree (its deletion
    /// check may still run).
    Walked(Instant, ScanReport),
    /// A scan could not add a directory watch because the OS limit is reached.
    WatchLimit(String),
}

/// What a scan thread needs: cheap clones of discovery's handles.
#[derive(Clone)]
pub(super) struct ScanJob {
    pub(super) root: PathBuf,
    pub(super) recursive: bool,
    pub(super) filter: Arc<Filter>,
    pub(super) reader: IndexReader,
    pub(super) tx: mpsc::Sender<Found>,
    pub(super) cancel: CancellationToken,
    pub(super) watches: Watches,
    pub(super) health: Arc<Health>,
    pub(super) metrics: Arc<Metrics>,
}

impl ScanJob {
    /// Runs one scan (blocking): walks the tree, or one new directory, and sends back the
    /// versions the index does not know; a full scan then reports its walk and runs the
    /// deletion check.
    pub(super) fn run(self, scan: Scan) {
        let snapshot = match self.reader.snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the index; scan skipped");
                return;
            }
        };
        let sub = match &scan {
            Scan::Full(_) => PathBuf::new(),
            Scan::Subtree(rel) => PathBuf::from(OsStr::from_bytes(rel)),
        };
        let kind = scan.kind();
        let subtree = WalkCounts::default();
        let running = (kind == ScanKind::Full).then(|| self.health.scan().begin());
        let counts = running.as_ref().map_or(&subtree, |r| r.counts());
        let Some((started, report)) = self.walk(&sub, &snapshot, counts) else {
            return;
        };
        drop(running);
        self.metrics.scanned(kind, started.elapsed(), report.files);
        if kind == ScanKind::Full {
            self.after_full_walk(started, report, &snapshot);
        }
    }

    /// Walks `root/sub`, watching each directory before reading it, and sends the new
    /// versions in batches. Returns when the walk started (every stat came after it) and
    /// what it found; `None` if discovery stopped listening.
    fn walk(
        &self,
        sub: &Path,
        snapshot: &Snapshot,
        counts: &WalkCounts,
    ) -> Option<(Instant, ScanReport)> {
        let mut batch = Vec::with_capacity(BATCH);
        let started = Instant::now();
        let mut watching = self.recursive;
        let (watches, tx, root) = (&self.watches, &self.tx, self.root.as_path());
        let report = scan::scan(
            root,
            sub,
            self.recursive,
            &self.filter,
            snapshot,
            &self.cancel,
            counts,
            |dir| watch_dir(watches, tx, root, dir, &mut watching),
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
            return None;
        }
        Some((started, report))
    }

    /// After a full walk: reports it, then sends what the index holds but the disk no
    /// longer does, unless [`scan::deletion_check_allowed`] says this walk cannot tell.
    fn after_full_walk(&self, started: Instant, report: ScanReport, snapshot: &Snapshot) {
        tracing::info!(
            files = report.files,
            new = report.candidates,
            errors = report.errors,
            ms = started.elapsed().as_millis() as u64,
            "full scan walked the tree"
        );
        if self
            .tx
            .blocking_send(Found::Walked(started, report))
            .is_err()
            || report.stopped
        {
            return;
        }
        let indexed = self.reader.files();
        if !scan::deletion_check_allowed(&self.root, report.files, indexed) {
            return;
        }
        let mut gone = Vec::new();
        let result = scan::find_deleted(&self.root, snapshot, &self.cancel, |rel, stamp| {
            gone.push((rel, stamp));
            if gone.len() >= BATCH {
                let full = std::mem::take(&mut gone);
                return self.tx.blocking_send(Found::Gone(full)).is_ok();
            }
            true
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "deletion check failed");
        }
        if !gone.is_empty() {
            let _ = self.tx.blocking_send(Found::Gone(gone));
        }
    }
}

/// Watches directory `dir` just before a walk reads it (the watched directory has its
/// watch already). Past the OS limit the rest of this walk goes on without adding any
/// (`watching` turns false), and discovery is told.
fn watch_dir(
    watches: &Watches,
    tx: &mpsc::Sender<Found>,
    root: &Path,
    dir: &Path,
    watching: &mut bool,
) {
    if !*watching || dir == root {
        return;
    }
    match watches.add(dir) {
        Ok(()) => {}
        Err(AddError::Limit(message)) => {
            *watching = false;
            let _ = tx.blocking_send(Found::WatchLimit(message));
        }
        Err(AddError::Other(message)) => {
            tracing::debug!(dir = %dir.display(), error = %message, "no watch added");
        }
    }
}
