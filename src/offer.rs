//! One offer: finding the next live file after a cursor, and its `200` body.
//!
//! Owns: checking an indexed version against the disk at poll time (gone or changed files
//! are skipped), the JSON body with Logic Apps' `$content-type`/`$content` convention,
//! the lossless text form of a path that is not UTF-8, and the body ready to send
//! (streaming base64 content from disk without holding a large file in memory).
//! Does not own: the cursor in `Location`, status codes or headers (`routes::trigger`).

use std::fs::File;
use std::io::Read;
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
    let snapshot = reader.snapshot()?;
    Ok(snapshot
        .first_after(cursor, MAX_SKIP, |v| {
            match check(root, v, max_content, Wait::Allowed) {
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
    let snapshot = reader.snapshot()?;
    let found = snapshot.first_after(cursor, MAX_SKIP, |v| {
        match check(root, v, max_content, Wait::Never) {
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

/// Checks the indexed version against the disk: opens it if it is still what is on disk,
/// and reads a small one. Skipped: the file is gone, replaced by something that is not a
/// regular file, or changed since (a changed file is a new version with its own, later
/// stamp).
fn check(root: &Path, v: &FileVersion, max_content: u64, wait: Wait) -> Checked {
    let file = match wait {
        Wait::Allowed => crate::confine::open_beneath(root, &v.rel),
        Wait::Never => match crate::confine::open_beneath_cached(root, &v.rel) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => return Checked::WouldWait,
            Err(e) => Err(e),
        },
    };
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let path = root.join(std::ffi::OsStr::from_bytes(&v.rel));
            tracing::warn!(path = %path.display(), "offered without content: permission denied");
            return Checked::Use(Content::Omitted(format!("the file cannot be read: {e}")));
        }
        Err(_) => return Checked::Skip,
    };
    let Ok(meta) = file.metadata() else {
        return Checked::Skip;
    };
    let mtime = Stamp(
        meta.mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
    );
    if !meta.file_type().is_file() || !v.same_version(meta.len(), mtime, meta.ino()) {
        return Checked::Skip;
    }
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
    let v = &offer.version;
    let (path, escaped) = path_text(&v.rel);
    let name_bytes = v.rel.rsplit(|b| *b == b'/').next().unwrap_or(&v.rel);
    let (name, _) = path_text(name_bytes);
    let content_type = mime_guess::from_path(Path::new(std::ffi::OsStr::from_bytes(name_bytes)))
        .first_raw()
        .unwrap_or("application/octet-stream");
    let omitted = match &offer.content {
        Content::Omitted(why) => Some(why.as_str()),
        _ => None,
    };
    let meta = Meta {
        path,
        name,
        path_encoding: escaped.then_some("percent-escaped"),
        path_bytes: escaped.then(|| B64.encode(&v.rel)),
        size: v.size,
        last_modified: v.mtime.to_string(),
        indexed_at: offer.stamp.to_string(),
        content_type,
        content_omitted: omitted,
        still_open: offer.still_open,
    };
    // An invariant, not a fallback: `{}` here would be a 200 without the file's path.
    #[allow(clippy::expect_used)]
    let mut json = serde_json::to_string(&meta)
        .expect("a struct of strings, numbers and bools with string keys always serializes");
    if omitted.is_some() {
        return Body::full(Bytes::from(json));
    }
    json.pop(); // the closing brace
    #[allow(clippy::expect_used)]
    let ct = serde_json::to_string(content_type).expect("a string always serializes");
    json.push_str(&format!(
        ",\"content\":{{\"$content-type\":{ct},\"$content\":\""
    ));
    let tail = "\"}}";
    match offer.content {
        Content::Inline(data) => {
            json.reserve(data.len().div_ceil(3) * 4 + tail.len());
            B64.encode_string(&data, &mut json);
            json.push_str(tail);
            Body::full(Bytes::from(json))
        }
        Content::Stream(file) => {
            let b64_len = v.size.div_ceil(3) * 4;
            let left = json.len() as u64 + b64_len + tail.len() as u64;
            let head = Bytes::from(json);
            let tail = Bytes::from_static(tail.as_bytes());
            let size = v.size;
            let (tx, rx) = mpsc::channel(4);
            tokio::task::spawn_blocking(move || stream_into(head, file, size, tail, tx));
            Body {
                inner: Inner::Stream { rx, left },
            }
        }
        Content::Omitted(_) => Body::full(Bytes::new()),
    }
}

/// Streams `size` bytes of `file` as base64 into `tx`, between `head` and `tail`
/// (blocking). A short read ends the stream with an error, so the client sees a failed
/// request and polls the same cursor again.
fn stream_into(
    head: Bytes,
    mut file: File,
    size: u64,
    tail: Bytes,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
) {
    if tx.blocking_send(Ok(head)).is_err() {
        return;
    }
    hold_for_test();
    let mut left = size;
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let want = (left as usize).min(CHUNK);
        if let Err(e) = file.read_exact(&mut buf[..want]) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        left -= want as u64;
        if tx
            .blocking_send(Ok(Bytes::from(B64.encode(&buf[..want]))))
            .is_err()
        {
            return;
        }
    }
    let _ = tx.blocking_send(Ok(tail));
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
