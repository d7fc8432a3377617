//! Clean-up after delivery (`after_delivery = "delete" | "move"`): a task per folder that
//! deletes or moves each file version once every party required has acknowledged it.
//!
//! Owns: the low-water stamp of a folder (the least position among the consumers named in
//! `after_delivery_requires` and every active webhook subscription, the `subscription/*`
//! keys of the folder's `acks`; a required consumer that never polled holds everything
//! back; nothing required and no subscription: nothing is cleaned), the walk over the
//! live index entries at or below it and after the required consumers' origins (the
//! files indexed before a consumer's first call were never offered to it: kept), and what is done to each: only the exact version
//! indexed (a file changed since is a new version, left to be offered; a version still
//! open for writing is left too), through the link-free paths of `routes::actions`, a
//! move through [`crate::index::MoveStep`] so the moved file is never offered again.
//! The index is the record of what was cleaned: a cleaned entry leaves `offers`, so a
//! later pass never touches it again; a crash between the disk change and that record
//! leaves an entry whose file is gone, which the next pass (at start-up) completes
//! without touching the disk again.
//! Does not own: the acknowledgements (`routes::consumers`, the webhook subscriptions),
//! the index tables (`index`), or keeping `after_delivery_dir` out of discovery (`lib`
//! adds it to the folder's excludes, [`exclude_pattern`]).

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::AfterDelivery;
use crate::index::{Entry, FileVersion, IndexReader, WriteOp, WriterHandle};
use crate::offer::path_text;
use crate::routes::actions::{at_path, move_begin, move_end, AtPath, MoveFailed};
use crate::stamp::Stamp;

/// For tests only: `before` or `after` makes the clean-up stop for good just before (or
/// just after) its first change on disk, on the real path, so that a test can kill the
/// process there and check that the restart finishes the job, once.
const HALT_ENV: &str = "FILETRIGGER_TEST_HALT_CLEANUP";

/// Entries looked at per index snapshot.
const BATCH: usize = 256;

/// Every this often a pass starts again from the oldest entry, retrying what was left
/// (a file the file system refused to delete, for example).
const RETRY_EVERY: Duration = Duration::from_secs(300);

/// One folder's clean-up.
#[derive(Debug)]
pub(crate) struct Cleanup {
    /// The folder's name (for the log).
    pub(crate) folder: String,
    /// The watched directory, absolute.
    pub(crate) root: PathBuf,
    /// Its view of the index.
    pub(crate) reader: IndexReader,
    /// The index writer, for its tables.
    pub(crate) writer: WriterHandle,
    /// `delete` or `move` (`keep` runs no task).
    pub(crate) mode: AfterDelivery,
    /// `after_delivery_dir`, relative.
    pub(crate) dir: String,
    /// `after_delivery_requires`.
    pub(crate) requires: Vec<String>,
}

/// The exclude pattern that keeps `after_delivery_dir` out of discovery (matched against
/// the whole relative path).
pub(crate) fn exclude_pattern(dir: &str) -> String {
    format!("{}/**", globset::escape(dir.trim_end_matches('/')))
}

/// Runs the clean-up until `token` is cancelled: a pass at once (finishing what a crash
/// left), then one whenever an acknowledgement advances.
pub(crate) async fn run(c: Cleanup, token: CancellationToken) {
    if c.requires.is_empty() {
        tracing::warn!(
            folder = %c.folder,
            "after_delivery is on but after_delivery_requires is empty: only webhook subscriptions' acknowledgements count, and with none nothing is cleaned up"
        );
    }
    let halt = std::env::var(HALT_ENV).ok();
    let mut done_through = Stamp::MIN;
    let mut retry = tokio::time::interval(RETRY_EVERY);
    retry.tick().await;
    loop {
        if let Err(e) = pass(&c, &mut done_through, halt.as_deref()).await {
            tracing::warn!(folder = %c.folder, error = %e, "clean-up after delivery paused: the index cannot be used; retrying");
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = c.reader.acked().notified() => {}
            _ = retry.tick() => done_through = Stamp::MIN,
        }
    }
}

/// The stamps that may be cleaned: after the latest origin of the required consumers
/// (what was indexed before a consumer's first call was never offered to it) and at or
/// below the least acknowledged position over every party that must have acknowledged a
/// file. `None`: nothing may be cleaned.
fn window(
    c: &Cleanup,
    snapshot: &crate::index::Snapshot,
) -> Result<Option<(Stamp, Stamp)>, crate::error::IndexError> {
    let mut low: Option<Stamp> = None;
    let mut after = Stamp::MIN;
    for name in &c.requires {
        match snapshot.ack(&crate::routes::consumer_key(name))? {
            Some(at) => low = Some(low.map_or(at, |l| l.min(at))),
            // A required consumer that never polled holds everything back.
            None => return Ok(None),
        }
        if let Some(origin) = snapshot.ack(&crate::routes::consumer_origin_key(name))? {
            after = after.max(origin);
        }
    }
    for (key, at) in snapshot.acks_with_prefix("subscription/")? {
        low = Some(low.map_or(at, |l| l.min(at)));
        // What was indexed before the subscription began was never delivered to it.
        let id = key.trim_start_matches("subscription/");
        if let Some(origin) = snapshot.ack(&crate::hooks::origin_key(id))? {
            after = after.max(origin);
        }
    }
    Ok(low.map(|low| (after, low)))
}

/// Cleans every live entry after `done_through` and at or below the low-water stamp.
async fn pass(
    c: &Cleanup,
    done_through: &mut Stamp,
    halt: Option<&str>,
) -> Result<(), crate::error::IndexError> {
    loop {
        let snapshot = c.reader.snapshot()?;
        let Some((after, low)) = window(c, &snapshot)? else {
            return Ok(());
        };
        let mut batch = Vec::new();
        snapshot.for_each_after((*done_through).max(after), |e| {
            if e.stamp > low {
                return std::ops::ControlFlow::Break(());
            }
            batch.push(e);
            if batch.len() >= BATCH {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })?;
        drop(snapshot);
        if batch.is_empty() {
            return Ok(());
        }
        for entry in batch {
            *done_through = entry.stamp;
            clean_one(c, entry, halt).await;
        }
    }
}

/// Stops here for good when the test switch names `point`.
async fn halt_at(c: &Cleanup, halt: Option<&str>, point: &str, path: &str) {
    if halt == Some(point) {
        tracing::warn!(folder = %c.folder, path, point, "clean-up halted for a test ({HALT_ENV})");
        std::future::pending::<()>().await;
    }
}

/// Deletes or moves one entry's version, if the disk still holds exactly it.
async fn clean_one(c: &Cleanup, entry: Entry, halt: Option<&str>) {
    let (shown, _) = path_text(&entry.version.rel);
    if entry.still_open {
        tracing::debug!(folder = %c.folder, path = %shown, "offered while still open: not cleaned up");
        return;
    }
    let target = match c.mode {
        AfterDelivery::Move => Some(FileVersion {
            rel: [
                c.dir.trim_end_matches('/').as_bytes(),
                b"/",
                &entry.version.rel,
            ]
            .concat(),
            ..entry.version.clone()
        }),
        _ => None,
    };
    let root = c.root.clone();
    let version = entry.version.clone();
    let looked = tokio::task::spawn_blocking(move || at_path(&root, &version)).await;
    let at = match looked {
        Ok(Ok(at)) => at,
        Ok(Err(e)) => {
            tracing::warn!(folder = %c.folder, path = %shown, error = %e, "cannot reach it without a symbolic link: not cleaned up");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "clean-up task failed");
            return;
        }
    };
    match at {
        AtPath::Changed => {
            tracing::debug!(folder = %c.folder, path = %shown, "changed since it was offered: left, as a new version to offer");
        }
        AtPath::Gone => finish_gone(c, &entry, target.as_ref(), &shown).await,
        AtPath::Same { parent, name } => {
            halt_at(c, halt, "before", &shown).await;
            match target {
                None => {
                    if let Err(e) = rustix::fs::unlinkat(
                        &parent,
                        std::ffi::OsStr::from_bytes(&name),
                        rustix::fs::AtFlags::empty(),
                    ) {
                        tracing::warn!(folder = %c.folder, path = %shown, error = %e, "cannot delete it (see the README on ReadWritePaths=): left");
                        return;
                    }
                    halt_at(c, halt, "after", &shown).await;
                    forget(c, &entry).await;
                    tracing::info!(folder = %c.folder, path = %shown, version = %entry.stamp, action = "delete", "cleaned up after delivery");
                }
                Some(target) => {
                    let root = c.root.clone();
                    let rel = target.rel.clone();
                    let opened = tokio::task::spawn_blocking(move || {
                        crate::confine::open_parent_beneath(&root, &rel, true)
                            .map(|(dir, n)| (dir, n.to_vec()))
                    })
                    .await;
                    let (to_dir, to_name) = match opened {
                        Ok(Ok(t)) => t,
                        Ok(Err(e)) => {
                            tracing::warn!(folder = %c.folder, path = %shown, dir = %c.dir, error = %e, "cannot reach after_delivery_dir without a symbolic link: not moved");
                            return;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "clean-up task failed");
                            return;
                        }
                    };
                    let moved = move_begin(
                        &c.writer,
                        &entry.version,
                        entry.stamp,
                        (&parent, &name),
                        (&to_dir, &to_name),
                        &target.rel,
                    )
                    .await;
                    match moved {
                        Ok(moved_to) => {
                            halt_at(c, halt, "after", &shown).await;
                            move_end(&c.writer, &entry.version, &moved_to, entry.stamp).await;
                            tracing::info!(folder = %c.folder, path = %shown, to = %path_text(&moved_to.rel).0, version = %entry.stamp, action = "move", "cleaned up after delivery");
                        }
                        Err(MoveFailed::Index(e)) => {
                            tracing::warn!(folder = %c.folder, path = %shown, error = %e, "cannot record the move in the index: not moved");
                        }
                        Err(MoveFailed::Rename(e)) => {
                            tracing::warn!(folder = %c.folder, path = %shown, error = %e, "cannot move it (target exists? see the README on ReadWritePaths=): left");
                        }
                    }
                }
            }
        }
    }
}

/// The entry's file is gone: a clean-up a crash interrupted after its change on disk
/// (or someone else removed it). The index is brought up to date, the disk not touched.
async fn finish_gone(c: &Cleanup, entry: &Entry, target: Option<&FileVersion>, shown: &str) {
    if let Some(target) = target {
        let root = c.root.clone();
        let t = target.clone();
        let moved = tokio::task::spawn_blocking(move || at_path(&root, &t)).await;
        if let Ok(Ok(AtPath::Same { .. })) = moved {
            move_end(&c.writer, &entry.version, target, entry.stamp).await;
            tracing::info!(folder = %c.folder, path = %shown, to = %path_text(&target.rel).0, version = %entry.stamp, action = "move", "finished a clean-up after delivery that a stop interrupted");
            return;
        }
    }
    forget(c, entry).await;
    tracing::info!(folder = %c.folder, path = %shown, version = %entry.stamp, "gone already: finished a clean-up after delivery (or it was removed meanwhile)");
}

/// Forgets the entry's version (only if it is still the one indexed at its path).
async fn forget(c: &Cleanup, entry: &Entry) {
    let op = WriteOp::Remove(entry.version.rel.clone(), Some(entry.stamp));
    if let Err(e) = c.writer.apply(op).await {
        tracing::warn!(folder = %c.folder, error = %e, "cleaned up, but the index could not record it yet; a scan does");
    }
}
