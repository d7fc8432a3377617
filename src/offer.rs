//! Offers: finding the next live file (or the next batch, or a page of a listing) after a
//! cursor, and the bodies that carry them.
//!
//! Owns: checking an indexed version against the disk ([`open_version`]: gone or changed
//! files are skipped), a batch's byte budget, the File body with Logic Apps'
//! `$content-type`/`$content` convention (and its FileProperties form), the lossless text
//! form of a path that is not UTF-8 and its inverse, and the bodies ready to send
//! (streaming base64 content, or a file's raw bytes, from disk without holding a large
//! file in memory).
//! Does not own: the cursor in `Location`, query parameters, links, status codes or
//! headers (`routes::trigger`, `routes::read`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::IndexError;
use crate::index::{FileVersion, IndexReader};
use crate::stamp::Stamp;

/// Files up to this size are read whole at poll time; larger ones are streamed.
const INLINE_MAX: u64 = 256 * 1024;
/// Streaming chunk: a multiple of 3, so no base64 padding appears mid-stream.
const CHUNK: usize = 3 * 16 * 1024;
/// Entries whose file is gone or changed that one poll walks past at most.
const MAX_SKIP: usize = 10_000;

/// The content of an offer, as found at poll time.
#[derive(Debug)]
pub enum Content {
    /// Read whole (small files).
    Inline(Vec<u8>),
    /// Opened and checked, to be streamed.
    Stream(File),
    /// Not included; the reason is given in `contentOmitted`.
    Omitted(String),
    /// Not asked for (`content=none`): neither `content` nor `contentOmitted`; the body
    /// links to the content instead.
    NotAsked,
}

/// The next file for a cursor.
#[derive(Debug)]
pub struct Offer {
    /// Its index stamp (the next cursor).
    pub stamp: Stamp,
    /// The version indexed.
    pub version: FileVersion,
    /// Its content.
    pub content: Content,
    /// Whether more entries follow it.
    pub more: bool,
    /// Offered while still open for writing (`"stillOpen": true` in the body).
    pub still_open: bool,
}

/// Finds the oldest live file indexed after `cursor` (blocking).
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub fn next_after(
    reader: &IndexReader,
    root: &Path,
    cursor: Stamp,
    max_content: u64,
) -> Result<Option<Offer>, IndexError> {
    let snapshot = reader.shared_snapshot()?;
    Ok(snapshot
        .first_after(cursor, MAX_SKIP, |v| {
            match check(&Dir::path(root), v, max_content, Wait::Allowed) {
                Checked::Use(content) => Some(content),
                Checked::Skip | Checked::WouldWait => None,
            }
        })?
        .map(|f| Offer {
            stamp: f.stamp,
            version: f.version,
            content: f.checked,
            more: f.more,
            still_open: f.still_open,
        }))
}

/// Finds the oldest live file indexed after `cursor` whose relative path `matches`,
/// examining at most `budget` entries (blocking). The wait action's walk.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub(crate) fn next_matching(
    reader: &IndexReader,
    root: &Path,
    cursor: Stamp,
    max_content: u64,
    budget: usize,
    matches: impl Fn(&[u8]) -> bool,
) -> Result<crate::index::Scanned<Offer>, IndexError> {
    let snapshot = reader.snapshot()?;
    let dir = Dir::series(root);
    let s = snapshot.scan_after(cursor, budget, |v| {
        if matches(&v.rel) {
            open_checked(&dir, v, max_content)
        } else {
            None
        }
    })?;
    Ok(crate::index::Scanned {
        found: s.found.map(|f| Offer {
            stamp: f.stamp,
            version: f.version,
            content: f.checked,
            more: false,
            still_open: f.still_open,
        }),
        last: s.last,
        complete: s.complete,
    })
}

/// What [`try_next_after`] found without waiting on a disk.
#[derive(Debug)]
pub enum Attempt {
    /// The answer, as [`next_after`] would have given it.
    Done(Option<Offer>),
    /// A file on the way is not in the kernel's caches (its path or its content): ask
    /// [`next_after`], off the async workers.
    WouldWait,
}

/// [`next_after`] for an async worker: the index lookup (a B-tree step; `state.dir` is
/// local), and each file's open, stat and small read only from the kernel's caches
/// (`RESOLVE_CACHED`, `RWF_NOWAIT`), so nothing here waits on a slow disk. Call it only
/// for a folder on a local file system ([`crate::confine::is_local_fs`]): elsewhere an
/// open or a stat may wait on a network even with a cached path.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub fn try_next_after(
    reader: &IndexReader,
    root: &Path,
    cursor: Stamp,
    max_content: u64,
) -> Result<Attempt, IndexError> {
    let snapshot = reader.shared_snapshot()?;
    let found = snapshot.first_after(cursor, MAX_SKIP, |v| {
        match check(&Dir::path(root), v, max_content, Wait::Never) {
            Checked::Use(content) => Some(Some(content)),
            Checked::Skip => None,
            Checked::WouldWait => Some(None),
        }
    })?;
    Ok(match found {
        None => Attempt::Done(None),
        Some(f) => match f.checked {
            Some(content) => Attempt::Done(Some(Offer {
                stamp: f.stamp,
                version: f.version,
                content,
                more: f.more,
                still_open: f.still_open,
            })),
            None => Attempt::WouldWait,
        },
    })
}

/// Whether checking a file may wait on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Blocking calls are fine (a blocking-pool thread).
    Allowed,
    /// Only what the kernel has cached (an async worker).
    Never,
}

/// What checking one indexed version gave.
enum Checked {
    /// Offer it with this content.
    Use(Content),
    /// Gone, not a regular file, or changed since: walk past it.
    Skip,
    /// Cannot tell without waiting on the disk ([`Wait::Never`] only).
    WouldWait,
}

/// Opens the indexed version if it is still what is on disk (blocking). `None` skips it:
/// the file is gone, replaced by something that is not a regular file, or changed since
/// (a changed file is a new version with its own, later stamp).
fn open_checked(dir: &Dir<'_>, v: &FileVersion, max_content: u64) -> Option<Content> {
    match check(dir, v, max_content, Wait::Allowed) {
        Checked::Use(content) => Some(content),
        Checked::Skip | Checked::WouldWait => None,
    }
}

/// Checks the indexed version against the disk ([`open_version`]) and reads a small one.
fn check(dir: &Dir<'_>, v: &FileVersion, max_content: u64, wait: Wait) -> Checked {
    let on_disk = match wait {
        Wait::Allowed => same_version(dir.open(&v.rel), v),
        Wait::Never => match crate::confine::open_beneath_cached(dir.path, &v.rel) {
            Ok(Some(f)) => same_version(Ok(f), v),
            Ok(None) => return Checked::WouldWait,
            Err(e) => same_version(Err(e), v),
        },
    };
    let mut file = match on_disk {
        OnDisk::Same(f) => f,
        OnDisk::Unreadable(e) => {
            let path = dir.path.join(std::ffi::OsStr::from_bytes(&v.rel));
            tracing::warn!(path = %path.display(), "offered without content: permission denied");
            return Checked::Use(Content::Omitted(format!("the file cannot be read: {e}")));
        }
        OnDisk::Gone | OnDisk::Changed => return Checked::Skip,
    };
    if v.size > max_content {
        return Checked::Use(Content::Omitted(format!(
            "the file has {} bytes, more than trigger.max_content_bytes ({max_content})",
            v.size
        )));
    }
    if v.size > INLINE_MAX {
        return Checked::Use(Content::Stream(file));
    }
    let read = match wait {
        Wait::Allowed => {
            hold_for_test();
            read_exactly(&mut file, v.size as usize)
        }
        Wait::Never => match read_cached(&file, v.size as usize) {
            Some(read) => read,
            None => return Checked::WouldWait,
        },
    };
    match read {
        Ok(Some(buf)) => Checked::Use(Content::Inline(buf)),
        Ok(None) => Checked::Skip,
        Err(e) => Checked::Use(Content::Omitted(format!("the file cannot be read: {e}"))),
    }
}

/// [`read_exactly`] from the page cache only (`preadv2` with `RWF_NOWAIT`): `None` when
/// the content is not all cached, the file system cannot say (`EOPNOTSUPP`), or the read
/// was short (a partly cached file looks the same as one that shrank: the blocking read
/// decides). Also `None` under the test-only read delay, which stands for a disk whose
/// data is never cached ([`hold_for_test`]).
fn read_cached(file: &File, size: usize) -> Option<std::io::Result<Option<Vec<u8>>>> {
    if test_read_delay().is_some() {
        return None;
    }
    let mut buf = vec![0u8; size + 1];
    let flags = rustix::io::ReadWriteFlags::NOWAIT;
    let n = loop {
        match rustix::io::preadv2(file, &mut [std::io::IoSliceMut::new(&mut buf)], 0, flags) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    };
    match n.cmp(&size) {
        std::cmp::Ordering::Less => None,
        // Grew since it was indexed: a new version with its own stamp.
        std::cmp::Ordering::Greater => Some(Ok(None)),
        std::cmp::Ordering::Equal => {
            buf.truncate(size);
            Some(Ok(Some(buf)))
        }
    }
}

/// The test-only read delay: `FILETRIGGER_TEST_READ_DELAY_MS`, read once. Not a setting
/// (not in the configuration, the README's table or `check`): an environment variable a
/// test sets on the daemon it starts, to stand for a slow or network disk on the real
/// read path.
fn test_read_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        let ms = std::env::var("FILETRIGGER_TEST_READ_DELAY_MS").ok()?;
        let ms = ms.trim().parse::<u64>().ok().filter(|ms| *ms > 0)?;
        tracing::warn!(
            ms,
            "FILETRIGGER_TEST_READ_DELAY_MS is set: every file read waits this long (for tests only)"
        );
        Some(std::time::Duration::from_millis(ms))
    })
}

/// Under the test-only read delay, waits it out before a blocking read (on a blocking-pool
/// thread, as every blocking read is).
fn hold_for_test() {
    if let Some(delay) = test_read_delay() {
        tracing::info!(
            ms = delay.as_millis() as u64,
            "test read delay: holding a file read"
        );
        std::thread::sleep(delay);
    }
}

/// The indexed version as found on disk now.
#[derive(Debug)]
pub enum OnDisk {
    /// Still exactly that version, opened for reading.
    Same(File),
    /// No regular file at the path any more (or one reached through a link).
    Gone,
    /// Another version is there now (size, mtime or inode differ).
    Changed,
    /// It cannot be opened: permission denied.
    Unreadable(std::io::Error),
}

/// Where the files of one request are opened: beneath the watched directory's path (one
/// file), or beneath the directory opened once for a series of files (a batch, a page of
/// the list, the wait's walk; [`crate::confine::Root`]). When that open fails, each file
/// is opened through the path, so each one fails (or not) for its own reason, as before.
pub(crate) struct Dir<'a> {
    path: &'a Path,
    fd: Option<crate::confine::Root>,
}

impl<'a> Dir<'a> {
    /// For one file.
    pub(crate) fn path(path: &'a Path) -> Dir<'a> {
        Dir { path, fd: None }
    }

    /// For a series of files.
    pub(crate) fn series(path: &'a Path) -> Dir<'a> {
        Dir {
            path,
            fd: crate::confine::Root::new(path).ok(),
        }
    }

    fn open(&self, rel: &[u8]) -> std::io::Result<File> {
        match &self.fd {
            Some(root) => root.open(rel),
            None => crate::confine::open_beneath(self.path, rel),
        }
    }
}

/// Opens the indexed version `v` under `root` and checks it is still that version
/// (blocking), like a poll does, without reading it.
pub fn open_version(root: &Path, v: &FileVersion) -> OnDisk {
    same_version(crate::confine::open_beneath(root, &v.rel), v)
}

/// What an open of `v`'s path found: that version, another one, none, or no access.
fn same_version(opened: std::io::Result<File>, v: &FileVersion) -> OnDisk {
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return OnDisk::Unreadable(e),
        Err(_) => return OnDisk::Gone,
    };
    let Ok(meta) = file.metadata() else {
        return OnDisk::Gone;
    };
    let mtime = Stamp(
        meta.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
    );
    if !meta.file_type().is_file() {
        OnDisk::Gone
    } else if !v.same_version(meta.len(), mtime, meta.ino()) {
        OnDisk::Changed
    } else {
        OnDisk::Same(file)
    }
}

/// What one batch may hold.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// `maxFileCount`.
    pub max_files: usize,
    /// `trigger.batch_max_bytes`: the body's byte budget.
    pub budget: u64,
    /// `trigger.max_content_bytes` of the folder.
    pub max_content: u64,
    /// `content=inline` (else `none`: no content read, [`Content::NotAsked`]).
    pub inline: bool,
}

/// The live files after a cursor, for a batch.
#[derive(Debug)]
pub struct Batch {
    /// In stamp order, each with its `contentLink` (`content=none` only).
    pub offers: Vec<(Offer, Option<String>)>,
    /// Whether further entries wait after the last one taken (or after those walked
    /// past: a batch stops after [`MAX_SKIP`] gone or changed files, like a poll).
    pub more: bool,
    /// The last entry taken or walked past (gone, changed, or not matching): a reader
    /// that found nothing to take may move its position here.
    pub walked: Option<Stamp>,
    /// Each offer's JSON head ([`head`]), made once while the batch was measured against
    /// its byte budget, so [`Batch::into_body`] does not make it again.
    heads: Vec<String>,
}

impl Batch {
    /// The body of the batch: a JSON array of the offers' File bodies, in order, each
    /// with its `contentLink` (`content=none`). Streams like [`body`]: only content
    /// already read (small files, within the batch's byte budget) is held in memory.
    pub fn into_body(self) -> Body {
        let mut segs = vec![Segment::Bytes(Bytes::from_static(b"["))];
        for (i, ((offer, _), head)) in self.offers.into_iter().zip(self.heads).enumerate() {
            if i > 0 {
                segs.push(Segment::Bytes(Bytes::from_static(b",")));
            }
            segs.extend(render_head(offer, head));
        }
        segs.push(Segment::Bytes(Bytes::from_static(b"]")));
        from_segments(segs)
    }
}

/// The oldest live files indexed after `cursor`, at most `limits.max_files`, within the
/// byte budget (blocking): the batch stops before a file whose body would not fit in
/// what is left (it comes first in the next batch), and a file whose inline content alone
/// exceeds the budget comes without content, `contentOmitted` saying why. Content is
/// read as [`next_after`] reads it: small files whole, larger ones opened to be streamed,
/// so what is held in memory stays within the budget. With `content=none`, `link` gives
/// each offer's `contentLink`, which counts against the budget too.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub fn batch_after(
    reader: &IndexReader,
    root: &Path,
    cursor: Stamp,
    limits: BatchLimits,
    link: impl Fn(Stamp, &FileVersion) -> Option<String>,
) -> Result<Batch, IndexError> {
    batch_after_matching(reader, root, cursor, limits, link, |_| true)
}

/// As [`batch_after`], taking only the files whose relative path `matches` (the others
/// are walked past, counted like gone files): a webhook subscription's `glob`.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub(crate) fn batch_after_matching(
    reader: &IndexReader,
    root: &Path,
    cursor: Stamp,
    limits: BatchLimits,
    link: impl Fn(Stamp, &FileVersion) -> Option<String>,
    matches: impl Fn(&[u8]) -> bool,
) -> Result<Batch, IndexError> {
    let batch = batch_after_waiting(reader, root, cursor, limits, link, matches, Wait::Allowed)?;
    // Only `Wait::Never` gives up on a file.
    #[allow(clippy::expect_used)]
    Ok(batch.expect("a batch that may wait on the disk always comes to an end"))
}

/// [`batch_after_matching`] for an async worker, as [`try_next_after`] is for
/// [`next_after`]: each file's open, stat and small read only from the kernel's caches.
/// `None`: a file on the way is not cached; ask [`batch_after_matching`], off the async
/// workers. Call it only for a folder on a local file system.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub(crate) fn try_batch_after_matching(
    reader: &IndexReader,
    root: &Path,
    cursor: Stamp,
    limits: BatchLimits,
    link: impl Fn(Stamp, &FileVersion) -> Option<String>,
    matches: impl Fn(&[u8]) -> bool,
) -> Result<Option<Batch>, IndexError> {
    batch_after_waiting(reader, root, cursor, limits, link, matches, Wait::Never)
}

/// [`batch_after_matching`], waiting on the disk or not (`None` then, when it would have
/// to).
fn batch_after_waiting(
    reader: &IndexReader,
    root: &Path,
    cursor: Stamp,
    limits: BatchLimits,
    link: impl Fn(Stamp, &FileVersion) -> Option<String>,
    matches: impl Fn(&[u8]) -> bool,
    wait: Wait,
) -> Result<Option<Batch>, IndexError> {
    use std::ops::ControlFlow::{Break, Continue};
    let snapshot = reader.shared_snapshot()?;
    // From the caches only, nothing is opened ahead (the root's open could wait).
    let dir = match wait {
        Wait::Allowed => Dir::series(root),
        Wait::Never => Dir::path(root),
    };
    let mut would_wait = false;
    let mut offers: Vec<(Offer, Option<String>)> = Vec::new();
    let mut heads: Vec<String> = Vec::new();
    let mut used = 2u64; // the brackets
    let mut skipped = 0;
    let mut more = false;
    let mut walked = None;
    snapshot.for_each_after(cursor, |e| {
        if offers.len() >= limits.max_files || skipped >= MAX_SKIP {
            more = true;
            return Break(());
        }
        if !matches(&e.version.rel) {
            skipped += 1;
            walked = Some(e.stamp);
            return Continue(());
        }
        let stamp = e.stamp;
        let mut offer = Offer {
            stamp: e.stamp,
            version: e.version,
            content: Content::NotAsked,
            more: false,
            still_open: e.still_open,
        };
        let comma = u64::from(!offers.is_empty());
        // `None`: cannot tell without waiting on the disk.
        let live = |v: &FileVersion| {
            let on_disk = match wait {
                Wait::Allowed => same_version(dir.open(&v.rel), v),
                Wait::Never => match crate::confine::open_beneath_cached(root, &v.rel) {
                    Ok(Some(f)) => same_version(Ok(f), v),
                    Ok(None) => return None,
                    Err(e) => same_version(Err(e), v),
                },
            };
            Some(!matches!(on_disk, OnDisk::Gone | OnDisk::Changed))
        };
        if !limits.inline {
            let l = link(offer.stamp, &offer.version);
            let h = head(&offer, l.as_deref());
            let len = h.len() as u64;
            if !offers.is_empty() && used + comma + len > limits.budget {
                more = true;
                return Break(());
            }
            match live(&offer.version) {
                None => {
                    would_wait = true;
                    return Break(());
                }
                Some(false) => {
                    walked = Some(stamp);
                    skipped += 1;
                    return Continue(());
                }
                Some(true) => walked = Some(stamp),
            }
            used += comma + len;
            offers.push((offer, l));
            heads.push(h);
            return Continue(());
        }
        // Its length with content, known before anything is read: the head, the base64
        // content and the tail.
        let size = offer.version.size;
        let mut inline_head = None;
        let inline_len = (size <= limits.max_content).then(|| {
            offer.content = Content::Inline(Vec::new());
            let h = head(&offer, None);
            let len = h.len() as u64 + size.div_ceil(3) * 4 + TAIL.len() as u64;
            inline_head = Some(h);
            len
        });
        let alone_too_big = inline_len.is_some_and(|n| n + 2 > limits.budget);
        let wanted = if alone_too_big {
            0
        } else {
            inline_len.unwrap_or(0)
        };
        if !offers.is_empty() && used + comma + wanted > limits.budget {
            // It would not fit in what is left: it comes first in the next batch.
            more = true;
            return Break(());
        }
        if alone_too_big {
            match live(&offer.version) {
                None => {
                    would_wait = true;
                    return Break(());
                }
                Some(false) => {
                    walked = Some(stamp);
                    skipped += 1;
                    return Continue(());
                }
                Some(true) => walked = Some(stamp),
            }
            offer.content = Content::Omitted(format!(
                "the file has {size} bytes, {} as base64: more than one batch answer may \
                 carry (trigger.batch_max_bytes = {}); fetch it with GetFileContent, or \
                 use the single trigger",
                size.div_ceil(3) * 4,
                limits.budget
            ));
        } else {
            match check(&dir, &offer.version, limits.max_content, wait) {
                Checked::Use(c) => {
                    walked = Some(stamp);
                    offer.content = c;
                }
                Checked::Skip => {
                    walked = Some(stamp);
                    skipped += 1;
                    return Continue(());
                }
                Checked::WouldWait => {
                    would_wait = true;
                    return Break(());
                }
            }
        }
        // The head made for the estimate is the head of content read (inline or
        // streamed); content omitted after all has its own.
        let h = match (&offer.content, inline_head) {
            (Content::Inline(_) | Content::Stream(_), Some(h)) => h,
            _ => head(&offer, None),
        };
        used += comma + item_len_with(&offer, h.len() as u64);
        offers.push((offer, None));
        heads.push(h);
        Continue(())
    })?;
    if would_wait {
        return Ok(None);
    }
    Ok(Some(Batch {
        offers,
        more,
        walked,
        heads,
    }))
}

/// One page of ListFiles.
#[derive(Debug)]
pub struct Page {
    /// FileProperties of the live files, in stamp order.
    pub items: Vec<serde_json::Value>,
    /// Where the next page begins (`after`), when more entries follow.
    pub next: Option<Stamp>,
}

/// The properties of at most `top` live files indexed after `after`, in stamp order
/// (blocking). Files gone or changed since are skipped, like a poll skips them; after
/// [`MAX_SKIP`] of them the page ends early and `next` continues after the last one.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub fn list_after(
    reader: &IndexReader,
    root: &Path,
    after: Stamp,
    top: usize,
) -> Result<Page, IndexError> {
    use std::ops::ControlFlow::{Break, Continue};
    let snapshot = reader.snapshot()?;
    let dir = Dir::series(root);
    let mut items = Vec::new();
    let mut skipped = 0;
    let mut last = after;
    let mut more = false;
    snapshot.for_each_after(after, |e| {
        if items.len() >= top || skipped >= MAX_SKIP {
            more = true;
            return Break(());
        }
        last = e.stamp;
        match same_version(dir.open(&e.version.rel), &e.version) {
            OnDisk::Same(_) | OnDisk::Unreadable(_) => {
                items.push(properties(e.stamp, &e.version, e.still_open));
            }
            OnDisk::Gone | OnDisk::Changed => skipped += 1,
        }
        Continue(())
    })?;
    Ok(Page {
        items,
        next: more.then_some(last),
    })
}

/// Reads the whole file if it holds exactly `size` bytes (`None` if it is shorter or
/// longer now). Asks for one byte more than expected, so the usual case is one `read`: a
/// regular file returns less than asked only at its end.
fn read_exactly(file: &mut File, size: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; size + 1];
    let mut got = 0;
    loop {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                // Past the size: the file grew. At the size: this read returned less than
                // asked (one byte more was), so it hit the end.
                if got >= size {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got != size {
        return Ok(None);
    }
    buf.truncate(size);
    Ok(Some(buf))
}

/// The text form of a relative path: UTF-8 as is; otherwise every byte that is not part of
/// valid UTF-8 as `%XX` and `%` itself as `%25`, so the form is lossless. Returns whether
/// it was escaped.
pub fn path_text(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() * 2);
            for chunk in bytes.utf8_chunks() {
                out.push_str(&chunk.valid().replace('%', "%25"));
                for b in chunk.invalid() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            (out, true)
        }
    }
}

/// The path bytes whose escaped text form ([`path_text`] of a name that is not UTF-8) is
/// `text`: every `%XX` undone. `None` when `text` is not such a form (no escape, a `%`
/// without two hex digits, or bytes that are valid UTF-8 once undone, which
/// [`path_text`] would not have escaped): `text` then names the UTF-8 path it spells.
pub fn path_from_text(text: &str) -> Option<Vec<u8>> {
    if !text.contains('%') {
        return None;
    }
    let t = text.as_bytes();
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        if t[i] == b'%' {
            let hex = std::str::from_utf8(t.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(t[i]);
            i += 1;
        }
    }
    std::str::from_utf8(&out).is_err().then_some(out)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    path: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes: Option<String>,
    size: u64,
    last_modified: String,
    indexed_at: String,
    content_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_omitted: Option<&'a str>,
    /// Present (true) only for a file offered while still open for writing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    still_open: bool,
    /// Only with `content=none`: where the content is fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_link: Option<&'a str>,
}

/// A `200` body, ready to send: the whole JSON, or a JSON head and tail around base64
/// content that a blocking task streams from the open file. Its length is always exact
/// (`size_hint`), so the answer carries a `Content-Length`.
#[derive(Debug)]
pub struct Body {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// The whole JSON, until sent.
    Full(Option<Bytes>),
    /// Chunks from the streaming task, and how many bytes are still to come.
    Stream {
        rx: mpsc::Receiver<std::io::Result<Bytes>>,
        left: u64,
    },
}

impl Body {
    fn full(bytes: Bytes) -> Body {
        Body {
            inner: Inner::Full(Some(bytes)),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream { rx, left } => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    *left = left.saturating_sub(bytes.len() as u64);
                    Poll::Ready(Some(Ok(Frame::data(bytes))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) if *left > 0 => Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file ended before its indexed size",
                )))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(match &self.inner {
            Inner::Full(bytes) => bytes.as_ref().map_or(0, |b| b.len() as u64),
            Inner::Stream { left, .. } => *left,
        })
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Inner::Stream { left, .. } => *left == 0,
        }
    }
}

/// Builds the body of an offer. A large file's content is streamed by a task on tokio's
/// blocking pool, so this must be called inside the runtime.
pub fn body(offer: Offer) -> Body {
    from_segments(render(offer, None))
}

/// [`body`] for an offer made with `content=none` ([`Content::NotAsked`]): the File with
/// `contentLink` = `link` (none when it could not be built).
pub fn body_with_link(offer: Offer, link: Option<&str>) -> Body {
    from_segments(render(offer, link))
}

/// Raw bytes `start..start + len` of `file` (GetFileContent), streamed from disk by a
/// task on tokio's blocking pool. A file shorter than that fails the body.
pub fn raw_body(file: File, start: u64, len: u64) -> Body {
    from_segments(vec![Segment::File {
        file,
        start,
        len,
        base64: false,
    }])
}

/// A part of a body: bytes at hand, or a file's bytes to be read when sent.
enum Segment {
    Bytes(Bytes),
    File {
        file: File,
        /// Where to begin reading (0: the file was just opened, so no seek).
        start: u64,
        len: u64,
        /// Sent as base64 (a File body's `$content`) rather than as they are.
        base64: bool,
    },
}

impl Segment {
    /// How many bytes it sends.
    fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::File { len, base64, .. } if *base64 => len.div_ceil(3) * 4,
            Segment::File { len, .. } => *len,
        }
    }
}

/// The name and content type of a version, as its File body gives them.
fn name_and_type(v: &FileVersion) -> (String, &'static str) {
    let name_bytes = v.rel.rsplit(|b| *b == b'/').next().unwrap_or(&v.rel);
    let (name, _) = path_text(name_bytes);
    let content_type = mime_guess::from_path(Path::new(std::ffi::OsStr::from_bytes(name_bytes)))
        .first_raw()
        .unwrap_or("application/octet-stream");
    (name, content_type)
}

/// The content type of a version (guessed from its name), as its File body gives it.
pub fn content_type(v: &FileVersion) -> &'static str {
    name_and_type(v).1
}

/// The metadata of a File body, without `content`.
fn meta<'a>(
    stamp: Stamp,
    v: &FileVersion,
    still_open: bool,
    omitted: Option<&'a str>,
    link: Option<&'a str>,
) -> Meta<'a> {
    let (path, escaped) = path_text(&v.rel);
    let (name, content_type) = name_and_type(v);
    Meta {
        path,
        name,
        path_encoding: escaped.then_some("percent-escaped"),
        path_bytes: escaped.then(|| B64.encode(&v.rel)),
        size: v.size,
        last_modified: v.mtime.to_string(),
        indexed_at: stamp.to_string(),
        content_type,
        content_omitted: omitted,
        still_open,
        content_link: link,
    }
}

/// The FileProperties of a version: its File body without `content`, `contentOmitted`
/// or `contentLink`.
pub fn properties(stamp: Stamp, v: &FileVersion, still_open: bool) -> serde_json::Value {
    // An invariant, not a fallback: a struct of strings, numbers and bools.
    #[allow(clippy::expect_used)]
    serde_json::to_value(meta(stamp, v, still_open, None, None))
        .expect("a struct of strings, numbers and bools with string keys always serializes")
}

/// The JSON text of a File body's metadata, and, when content follows, the text that
/// opens it (the closing brace left off).
fn head(offer: &Offer, link: Option<&str>) -> String {
    let omitted = match &offer.content {
        Content::Omitted(why) => Some(why.as_str()),
        _ => None,
    };
    let m = meta(offer.stamp, &offer.version, offer.still_open, omitted, link);
    let content_type = m.content_type;
    // An invariant, not a fallback: `{}` here would be a 200 without the file's path.
    #[allow(clippy::expect_used)]
    let mut json = serde_json::to_string(&m)
        .expect("a struct of strings, numbers and bools with string keys always serializes");
    if matches!(offer.content, Content::Inline(_) | Content::Stream(_)) {
        json.pop(); // the closing brace
        #[allow(clippy::expect_used)]
        let ct = serde_json::to_string(content_type).expect("a string always serializes");
        json.push_str(&format!(
            ",\"content\":{{\"$content-type\":{ct},\"$content\":\""
        ));
    }
    json
}

/// What closes a File body after its base64 content.
const TAIL: &str = "\"}}";

/// How many bytes the File body of `offer` has, whose [`head`] has `head_len` bytes.
fn item_len_with(offer: &Offer, head_len: u64) -> u64 {
    let content = match &offer.content {
        Content::Inline(data) => data.len() as u64,
        Content::Stream(_) => offer.version.size,
        Content::Omitted(_) | Content::NotAsked => return head_len,
    };
    head_len + content.div_ceil(3) * 4 + TAIL.len() as u64
}

/// One File body in segments.
fn render(offer: Offer, link: Option<&str>) -> Vec<Segment> {
    let json = head(&offer, link);
    render_head(offer, json)
}

/// [`render`] with its head made.
fn render_head(offer: Offer, mut json: String) -> Vec<Segment> {
    match offer.content {
        Content::Inline(data) => {
            json.reserve(data.len().div_ceil(3) * 4 + TAIL.len());
            B64.encode_string(&data, &mut json);
            json.push_str(TAIL);
            vec![Segment::Bytes(Bytes::from(json))]
        }
        Content::Stream(file) => vec![
            Segment::Bytes(Bytes::from(json)),
            Segment::File {
                file,
                start: 0,
                len: offer.version.size,
                base64: true,
            },
            Segment::Bytes(Bytes::from_static(TAIL.as_bytes())),
        ],
        Content::Omitted(_) | Content::NotAsked => vec![Segment::Bytes(Bytes::from(json))],
    }
}

/// A body of segments: whole when all are at hand, else streamed by a blocking task.
fn from_segments(mut segs: Vec<Segment>) -> Body {
    let left: u64 = segs.iter().map(Segment::len).sum();
    if segs.iter().all(|s| matches!(s, Segment::Bytes(_))) {
        if segs.len() == 1 {
            if let Some(Segment::Bytes(b)) = segs.pop() {
                return Body::full(b);
            }
        }
        let mut all = Vec::with_capacity(left as usize);
        for s in &segs {
            if let Segment::Bytes(b) = s {
                all.extend_from_slice(b);
            }
        }
        return Body::full(Bytes::from(all));
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || stream_segments(segs, tx));
    Body {
        inner: Inner::Stream { rx, left },
    }
}

/// Sends `segs` into `tx` in order, reading files in chunks (blocking). A short read ends
/// the stream with an error, so the client sees a failed request (and a trigger polls the
/// same cursor again).
fn stream_segments(segs: Vec<Segment>, tx: mpsc::Sender<std::io::Result<Bytes>>) {
    hold_for_test();
    let mut buf = vec![0u8; CHUNK];
    for seg in segs {
        match seg {
            Segment::Bytes(b) => {
                if tx.blocking_send(Ok(b)).is_err() {
                    return;
                }
            }
            Segment::File {
                mut file,
                start,
                len,
                base64,
            } => {
                if start > 0 {
                    if let Err(e) = file.seek(SeekFrom::Start(start)) {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
                let mut left = len;
                while left > 0 {
                    let want = (left as usize).min(CHUNK);
                    if let Err(e) = file.read_exact(&mut buf[..want]) {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                    left -= want as u64;
                    let chunk = if base64 {
                        Bytes::from(B64.encode(&buf[..want]))
                    } else {
                        Bytes::copy_from_slice(&buf[..want])
                    };
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_paths_are_kept_as_they_are() {
        assert_eq!(
            path_text("a b/ü%20.pdf".as_bytes()),
            ("a b/ü%20.pdf".into(), false)
        );
    }

    #[test]
    fn non_utf8_paths_are_escaped_losslessly() {
        let (text, escaped) = path_text(b"dir/caf\xe9 100%.txt");
        assert!(escaped);
        assert_eq!(text, "dir/caf%E9 100%25.txt");
        // Undo the escape and get the bytes back.
        let mut back = Vec::new();
        let t = text.as_bytes();
        let mut i = 0;
        while i < t.len() {
            if t[i] == b'%' {
                back.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                back.push(t[i]);
                i += 1;
            }
        }
        assert_eq!(back, b"dir/caf\xe9 100%.txt");
    }

    #[test]
    fn path_from_text_undoes_the_escape_of_a_name_that_is_not_utf8() {
        for bytes in [&b"dir/caf\xe9 100%.txt"[..], b"\xff", b"a%b\x80/%25"] {
            let (text, escaped) = path_text(bytes);
            assert!(escaped);
            assert_eq!(path_from_text(&text).as_deref(), Some(bytes), "{text}");
        }
        // UTF-8 names are spelled as they are, `%` and all.
        for text in ["plain.txt", "100%.txt", "a%25b", "%zz", "%4"] {
            assert_eq!(path_from_text(text), None, "{text}");
        }
    }

    #[test]
    fn a_small_file_is_read_only_when_it_has_exactly_its_indexed_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let read = |size| read_exactly(&mut File::open(&path).unwrap(), size).unwrap();
        assert_eq!(read(5), Some(b"hello".to_vec()));
        assert_eq!(read(4), None, "the file is longer than indexed");
        assert_eq!(read(6), None, "the file is shorter than indexed");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(read(0), Some(Vec::new()));
    }

    #[test]
    fn a_cached_small_file_is_read_without_waiting_and_checked_alike() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let read = |size| read_cached(&File::open(&path).unwrap(), size);
        // Just written, so in the page cache (a file system without RWF_NOWAIT says None).
        if let Some(got) = read(5) {
            assert_eq!(got.unwrap(), Some(b"hello".to_vec()));
            assert_eq!(read(4).unwrap().unwrap(), None, "longer than indexed");
        }
        assert!(read(6).is_none(), "shorter: the blocking read decides");
    }

    #[tokio::test]
    async fn a_streamed_body_has_the_announced_length_and_valid_json() {
        use http_body::Body as _;
        use http_body_util::BodyExt;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..CHUNK * 2 + 7).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big.bin"), &data).unwrap();
        let file = File::open(dir.path().join("big.bin")).unwrap();
        let offer = Offer {
            stamp: Stamp(5),
            version: FileVersion {
                rel: b"big.bin".to_vec(),
                size: data.len() as u64,
                mtime: Stamp(1),
                ino: 1,
            },
            content: Content::Stream(file),
            more: false,
            still_open: false,
        };
        let body = body(offer);
        assert!(
            matches!(body.inner, Inner::Stream { .. }),
            "expected a stream"
        );
        let len = body.size_hint().exact().unwrap();
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all.len() as u64, len);
        let v: serde_json::Value = serde_json::from_slice(&all).unwrap();
        let content = B64
            .decode(v["content"]["$content"].as_str().unwrap())
            .unwrap();
        assert_eq!(content, data);
        assert_eq!(v["content"]["$content-type"], "application/octet-stream");
    }

    #[tokio::test]
    async fn a_file_that_shrinks_while_streamed_fails_the_body() {
        use http_body_util::BodyExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, vec![7u8; CHUNK * 2]).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let offer = Offer {
            stamp: Stamp(5),
            version: FileVersion {
                rel: b"big.bin".to_vec(),
                size: (CHUNK * 2) as u64,
                mtime: Stamp(1),
                ino: 1,
            },
            content: Content::Stream(file),
            more: false,
            still_open: false,
        };
        assert!(body(offer).collect().await.is_err());
    }
}
