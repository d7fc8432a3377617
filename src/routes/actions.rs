//! `POST /watches/NAME/move` and `DELETE /watches/NAME/files`: the actions that change
//! the watched folder (contract operations 9 and 10).
//!
//! Owns: the refusals in their order (`actions.allow_write` off: `403`; a bad or missing
//! parameter: `400`; not indexed: `404`; the indexed version is not the one named, or the
//! disk no longer holds it, or the target exists: `409`), acting on the disk only through
//! directory fds reached without a link (`confine`), and the order of index changes and
//! disk changes that keeps a moved file from ever being offered again (see
//! [`crate::index::MoveStep`]). Also the small query reader these routes and `wait` share,
//! and the disk side the clean-up after delivery shares ([`at_path`], [`move_begin`],
//! [`move_end`]).
//! Does not own: the index's tables (`index`), the path's text form (`offer::path_text`),
//! or the status of an error (`RequestError`, in `routes`).

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use hyper::{Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use rustix::fs::{renameat_with, statat, unlinkat, AtFlags, FileType, RenameFlags};
use rustix::io::Errno;

use super::{json, AppState, Body, RequestError};
use crate::folder::Folder;
use crate::index::{FileVersion, MoveStep, WriteOp};
use crate::offer::path_text;
use crate::stamp::{Stamp, EXAMPLE};

/// A request's query parameters: each pair raw (as sent) and decoded.
pub(super) struct Params<'a> {
    /// `(raw pair, decoded key, decoded value)`, in order.
    pairs: Vec<(&'a str, String, Vec<u8>)>,
}

impl<'a> Params<'a> {
    /// Splits and percent-decodes the query (`+` is taken literally, as by `trigger`).
    pub(super) fn of<B>(req: &'a Request<B>) -> Params<'a> {
        let raw = req.uri().query().unwrap_or("");
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let key = percent_decode_str(k).decode_utf8_lossy().into_owned();
                (pair, key, percent_decode_str(v).collect())
            })
            .collect();
        Params { pairs }
    }

    /// The value of `name` as bytes; a parameter given twice is refused.
    pub(super) fn bytes(&self, name: &'static str) -> Result<Option<&[u8]>, RequestError> {
        let mut found = self.pairs.iter().filter(|(_, k, _)| k == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(bad(name, format!("{name} is given more than once")));
        }
        Ok(first.map(|(_, _, v)| v.as_slice()))
    }

    /// The value of `name` as text.
    pub(super) fn text(&self, name: &'static str) -> Result<Option<&str>, RequestError> {
        self.bytes(name)?
            .map(|v| std::str::from_utf8(v).map_err(|_| bad(name, format!("{name} is not UTF-8"))))
            .transpose()
    }

    /// The value of `name`, which must be given.
    pub(super) fn required(&self, name: &'static str) -> Result<&[u8], RequestError> {
        match self.bytes(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(bad(name, format!("the query parameter {name} is required"))),
        }
    }

    /// The value of `name` as a stamp (RFC 3339).
    pub(super) fn stamp(&self, name: &'static str) -> Result<Option<Stamp>, RequestError> {
        self.text(name)?
            .map(|t| {
                Stamp::parse(t).map_err(|e| {
                    bad(
                        name,
                        format!("{name} is not an RFC 3339 time ({e}); e.g. {EXAMPLE}"),
                    )
                })
            })
            .transpose()
    }

    /// The raw pairs whose key is not one of `set` (kept as sent in a `Location`).
    pub(super) fn kept(&self, set: &[&str]) -> Vec<&'a str> {
        self.pairs
            .iter()
            .filter(|(_, k, _)| !set.contains(&k.as_str()))
            .map(|(raw, _, _)| *raw)
            .collect()
    }
}

/// `400` with the code `bad_NAME`, naming the parameter.
pub(super) fn bad(name: &'static str, message: String) -> RequestError {
    let code = match name {
        "path" | "to" => "bad_path",
        "version" => "bad_version",
        "glob" => "bad_glob",
        "timeout" => "bad_timeout",
        "content" => "bad_content",
        "since" => "bad_since",
        "deadline" => "bad_deadline",
        "consumer" => "bad_consumer",
        _ => "bad_parameter",
    };
    RequestError::BadParam { code, message }
}

/// `path` or `to` as the relative path's bytes, refused when it could leave the folder.
fn rel_path(params: &Params<'_>, name: &'static str) -> Result<Vec<u8>, RequestError> {
    let rel = params.required(name)?.to_vec();
    crate::confine::components(&rel).map_err(|_| {
        bad(
            name,
            format!(
                "{name} must be a relative path inside the folder: no leading /, no empty, . or .. component"
            ),
        )
    })?;
    Ok(rel)
}

/// What both actions check before touching anything: the version indexed at `path` is
/// the one named, and the disk still holds it. Returns it with the parent directory fd
/// (reached without a link) and the file's name in it.
struct Checked {
    version: FileVersion,
    stamp: Stamp,
    parent: OwnedFd,
    name: Vec<u8>,
}

/// Refuses unless writing is on; reads `path` and `version`; checks index and disk.
async fn check(
    state: &AppState,
    folder: &Folder,
    params: &Params<'_>,
) -> Result<Checked, RequestError> {
    if !state.actions.allow_write {
        return Err(RequestError::WritingDisabled);
    }
    let rel = rel_path(params, "path")?;
    let wanted = params.stamp("version")?.ok_or_else(|| {
        bad(
            "version",
            "the query parameter version (the File's indexedAt) is required".into(),
        )
    })?;
    let reader = folder.reader.clone();
    let root = folder.root.clone();
    let (shown, _) = path_text(&rel);
    tokio::task::spawn_blocking(move || {
        let snapshot = reader.snapshot().map_err(|e| {
            tracing::error!(error = %e, "index read failed");
            RequestError::Unavailable("the index cannot be read right now")
        })?;
        let read = |rel: &[u8]| {
            snapshot.indexed_at(rel).map_err(|e| {
                tracing::error!(error = %e, "index read failed");
                RequestError::Unavailable("the index cannot be read right now")
            })
        };
        let mut indexed = read(&rel)?;
        if indexed.is_none() && rel.contains(&b'%') {
            // A name that is not UTF-8, as the File body writes it (`pathEncoding`).
            let unescaped: Vec<u8> = percent_encoding::percent_decode(&rel).collect();
            indexed = read(&unescaped)?;
        }
        let Some((version, stamp)) = indexed else {
            return Err(RequestError::FileNotFound(format!("no file is indexed at {shown:?}")));
        };
        if stamp != wanted {
            return Err(RequestError::Conflict {
                code: "version_changed",
                message: format!(
                    "the version indexed at {shown:?} is {stamp}, not {wanted}: the file changed"
                ),
            });
        }
        match at_path(&root, &version) {
            Ok(AtPath::Same { parent, name }) => Ok(Checked {
                version,
                stamp,
                parent,
                name,
            }),
            Ok(AtPath::Gone) => Err(RequestError::FileNotFound(format!(
                "{shown:?} is gone from the folder"
            ))),
            Ok(AtPath::Changed) => Err(RequestError::Conflict {
                code: "version_changed",
                message: format!(
                    "{shown:?} on disk is no longer the version indexed at {stamp}: nothing was changed"
                ),
            }),
            Err(e) => Err(refused_path("path", &shown, Some(e.raw_os_error()), true)),
        }
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "action task failed");
        RequestError::Unavailable("internal error")
    })?
}

/// What the disk holds at an indexed version's path, reached without a link.
pub(crate) enum AtPath {
    /// Exactly that version (a regular file, same size, mtime and inode): its parent
    /// directory (an fd reached without a link) and its name there.
    Same {
        /// The parent directory.
        parent: OwnedFd,
        /// The file's name in it.
        name: Vec<u8>,
    },
    /// Something else: another version, or not a regular file.
    Changed,
    /// Nothing: the file, or a directory on the way, is missing.
    Gone,
}

/// Looks at `root/version.rel` without following a link anywhere on the way (blocking).
///
/// # Errors
/// The OS error when the path cannot be reached without a link (`ELOOP`, `ENOTDIR`), or
/// `EINVAL` for a path that climbs out.
pub(crate) fn at_path(root: &std::path::Path, version: &FileVersion) -> Result<AtPath, Errno> {
    let (parent, name) = match crate::confine::open_parent_beneath(root, &version.rel, false) {
        Ok(p) => p,
        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => return Ok(AtPath::Gone),
        Err(e) => {
            return Err(e
                .raw_os_error()
                .map_or(Errno::INVAL, Errno::from_raw_os_error))
        }
    };
    let name = name.to_vec();
    let st = match statat(
        &parent,
        std::ffi::OsStr::from_bytes(&name),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(AtPath::Gone),
        Err(e) => return Err(e),
    };
    let mtime = Stamp(
        (st.st_mtime as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_mtime_nsec as i64),
    );
    let is_file = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
    if !is_file || !version.same_version(st.st_size as u64, mtime, st.st_ino) {
        return Ok(AtPath::Changed);
    }
    Ok(AtPath::Same { parent, name })
}

/// Why [`move_begin`] moved nothing.
#[derive(Debug)]
pub(crate) enum MoveFailed {
    /// The index could not record the target first.
    Index(crate::error::IndexError),
    /// The rename failed (`EEXIST`: the target exists).
    Rename(Errno),
}

/// The first half of a move (see [`MoveStep`]): records the target `to_rel` as known
/// (committed), then renames `parent/name` to `to_dir/to_name` without replacing
/// anything; on a failed rename the record is dropped again. Returns the version at its
/// new path; [`move_end`] must follow.
///
/// # Errors
/// [`MoveFailed`]; nothing moved on disk.
pub(crate) async fn move_begin(
    writer: &crate::index::WriterHandle,
    from: &FileVersion,
    stamp: Stamp,
    (parent, name): (&OwnedFd, &[u8]),
    (to_dir, to_name): (&OwnedFd, &[u8]),
    to_rel: &[u8],
) -> Result<FileVersion, MoveFailed> {
    let target = FileVersion {
        rel: to_rel.to_vec(),
        ..from.clone()
    };
    let step = |step| WriteOp::Move {
        step,
        from: from.rel.clone(),
        to: target.clone(),
        stamp,
    };
    // 0. A file at the target stays and keeps its own index entry: adopting its path
    // would forget that entry (the rename below never replaces it either).
    match statat(
        to_dir,
        std::ffi::OsStr::from_bytes(to_name),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Err(Errno::NOENT) => {}
        Ok(_) => return Err(MoveFailed::Rename(Errno::EXIST)),
        Err(e) => return Err(MoveFailed::Rename(e)),
    }
    // 1. The target is known before it appears, so discovery never offers it.
    writer
        .apply(step(MoveStep::Adopt))
        .await
        .map_err(MoveFailed::Index)?;
    let renamed = renameat_with(
        parent,
        std::ffi::OsStr::from_bytes(name),
        to_dir,
        std::ffi::OsStr::from_bytes(to_name),
        RenameFlags::NOREPLACE,
    );
    if let Err(e) = renamed {
        if let Err(ie) = writer.apply(step(MoveStep::Undo)).await {
            tracing::warn!(error = %ie, "cannot drop the move target's record; a scan drops it");
        }
        return Err(MoveFailed::Rename(e));
    }
    Ok(target)
}

/// The second half of a move: the source is forgotten (a crash before this leaves an
/// entry a poll skips and a scan removes).
pub(crate) async fn move_end(
    writer: &crate::index::WriterHandle,
    from: &FileVersion,
    target: &FileVersion,
    stamp: Stamp,
) {
    let done = WriteOp::Move {
        step: MoveStep::Done,
        from: from.rel.clone(),
        to: target.clone(),
        stamp,
    };
    if let Err(e) = writer.apply(done).await {
        tracing::warn!(error = %e, "moved, but the index could not record it yet; a scan does");
    }
}

/// The answer to a path that could not be reached: a link or a file on the way is the
/// client's mistake (`400 bad_path`), a missing directory on the way of `path` means the
/// file is gone (`404`).
fn refused_path(name: &'static str, shown: &str, errno: Option<i32>, source: bool) -> RequestError {
    if source && errno == Some(Errno::NOENT.raw_os_error()) {
        return RequestError::FileNotFound(format!("{shown:?} is gone from the folder"));
    }
    bad(
        name,
        format!("{name} {shown:?} cannot be reached inside the folder without a symbolic link"),
    )
}

fn index_down(e: crate::error::IndexError) -> RequestError {
    tracing::error!(error = %e, "index write failed");
    RequestError::Unavailable("the index cannot be written right now")
}

/// `POST /watches/NAME/move?path=&version=&to=`.
pub(super) async fn move_file<B>(
    state: &AppState,
    folder: &Folder,
    req: &Request<B>,
) -> Response<Body> {
    match try_move(state, folder, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_move<B>(
    state: &AppState,
    folder: &Folder,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let params = Params::of(req);
    if !state.actions.allow_write {
        return Err(RequestError::WritingDisabled);
    }
    let to = rel_path(&params, "to")?;
    let checked = check(state, folder, &params).await?;
    let (to_shown, _) = path_text(&to);
    if to == checked.version.rel {
        return Err(RequestError::Conflict {
            code: "target_exists",
            message: format!("{to_shown:?} is the file itself"),
        });
    }
    let root = folder.root.clone();
    let to_blocking = to.clone();
    let shown = to_shown.clone();
    let (to_dir, to_name) = tokio::task::spawn_blocking(move || {
        let (dir, name) = match crate::confine::open_parent_beneath(&root, &to_blocking, true) {
            Ok((dir, name)) => (dir, name.to_vec()),
            Err(e) => return Err(refused_path("to", &shown, e.raw_os_error(), false)),
        };
        // Refused before the index adopts the target: adopting a path that holds a file
        // would forget that file's own entry (the rename below still never replaces).
        match statat(
            &dir,
            std::ffi::OsStr::from_bytes(&name),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(_) => Err(RequestError::Conflict {
                code: "target_exists",
                message: format!("{shown:?} exists already: nothing was moved"),
            }),
            Err(Errno::NOENT) => Ok((dir, name)),
            Err(e) => Err(bad("to", format!("{shown:?} cannot be a target: {e}"))),
        }
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "action task failed");
        RequestError::Unavailable("internal error")
    })??;
    let moved = move_begin(
        &folder.writer,
        &checked.version,
        checked.stamp,
        (&checked.parent, &checked.name),
        (&to_dir, &to_name),
        &to,
    )
    .await;
    let target = match moved {
        Ok(target) => target,
        Err(MoveFailed::Index(e)) => return Err(index_down(e)),
        Err(MoveFailed::Rename(e)) => {
            return Err(match e {
                Errno::EXIST => RequestError::Conflict {
                    code: "target_exists",
                    message: format!("{to_shown:?} exists already: nothing was moved"),
                },
                Errno::NOENT => RequestError::FileNotFound(format!(
                    "{:?} is gone from the folder",
                    path_text(&checked.version.rel).0
                )),
                Errno::ISDIR | Errno::NOTDIR | Errno::LOOP | Errno::NAMETOOLONG | Errno::INVAL => {
                    bad("to", format!("{to_shown:?} cannot be a target: {e}"))
                }
                Errno::ACCESS | Errno::PERM | Errno::ROFS => {
                    tracing::warn!(error = %e, "move refused by the file system");
                    RequestError::NotPermitted(format!(
                        "the file system refused the move: {e} (see the README on ReadWritePaths=)"
                    ))
                }
                e => {
                    tracing::error!(error = %e, "move failed");
                    RequestError::Unavailable("the file cannot be moved right now")
                }
            })
        }
    };
    tracing::info!(folder = %folder.name, from = %path_text(&checked.version.rel).0, to = %to_shown, "moved");
    // 2. The source is forgotten; a crash before this leaves an entry a poll skips.
    move_end(&folder.writer, &checked.version, &target, checked.stamp).await;
    let body = properties(&target, checked.stamp);
    Ok(json(StatusCode::OK, body.to_string()))
}

/// FileProperties of a version: the File body without content.
fn properties(v: &FileVersion, stamp: Stamp) -> serde_json::Value {
    let (path, escaped) = path_text(&v.rel);
    let name_bytes = v.rel.rsplit(|b| *b == b'/').next().unwrap_or(&v.rel);
    let (name, _) = path_text(name_bytes);
    let content_type = mime_guess::from_path(std::path::Path::new(std::ffi::OsStr::from_bytes(
        name_bytes,
    )))
    .first_raw()
    .unwrap_or("application/octet-stream");
    let mut body = serde_json::json!({
        "path": path,
        "name": name,
        "size": v.size,
        "lastModified": v.mtime.to_string(),
        "indexedAt": stamp.to_string(),
        "contentType": content_type,
    });
    if escaped {
        use base64::Engine;
        body["pathEncoding"] = "percent-escaped".into();
        body["pathBytes"] = base64::engine::general_purpose::STANDARD
            .encode(&v.rel)
            .into();
    }
    body
}

/// `DELETE /watches/NAME/files?path=&version=`.
pub(super) async fn delete_file<B>(
    state: &AppState,
    folder: &Folder,
    req: &Request<B>,
) -> Response<Body> {
    match try_delete(state, folder, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(state.retry_after),
    }
}

async fn try_delete<B>(
    state: &AppState,
    folder: &Folder,
    req: &Request<B>,
) -> Result<Response<Body>, RequestError> {
    let params = Params::of(req);
    let checked = check(state, folder, &params).await?;
    let (shown, _) = path_text(&checked.version.rel);
    // The file first: a crash after it leaves an entry a poll skips; the index first
    // would leave a file a scan offers again.
    match unlinkat(
        &checked.parent,
        std::ffi::OsStr::from_bytes(&checked.name),
        AtFlags::empty(),
    ) {
        Ok(()) => {}
        Err(Errno::NOENT) => {
            return Err(RequestError::FileNotFound(format!(
                "{shown:?} is gone from the folder"
            )))
        }
        Err(e @ (Errno::ACCESS | Errno::PERM | Errno::ROFS)) => {
            tracing::warn!(error = %e, "delete refused by the file system");
            return Err(RequestError::NotPermitted(format!(
                "the file system refused the delete: {e} (see the README on ReadWritePaths=)"
            )));
        }
        Err(e) => {
            tracing::error!(error = %e, "delete failed");
            return Err(RequestError::Unavailable(
                "the file cannot be deleted right now",
            ));
        }
    }
    tracing::info!(folder = %folder.name, path = %shown, "deleted");
    if let Err(e) = folder
        .writer
        .apply(WriteOp::Remove(
            checked.version.rel.clone(),
            Some(checked.stamp),
        ))
        .await
    {
        tracing::warn!(error = %e, "deleted, but the index could not record it yet; a scan does");
    }
    let body = serde_json::json!({ "deleted": shown, "version": checked.stamp.to_string() });
    Ok(json(StatusCode::OK, body.to_string()))
}
