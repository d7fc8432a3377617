//! `POST /watches/NAME/move` and `DELETE /watches/NAME/files`: the actions that change
//! the watched folder (contract operations 9 and 10).
//!
//! Owns: the refusals in their order (`actions.allow_write` off: `403`; a bad or missing
//! parameter: `400`; not indexed: `404`; the indexed version is not the one named, or the
//! disk no longer holds it, or the target exists: `409`), acting on the disk only through
//! directory fds reached without a link (`confine`), and the order of index changes and
//! disk changes that keeps a moved file from ever being offered again (see
//! [`crate::index::MoveStep`]). Also the small query reader these routes and `wait` share.
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
        let (parent, name) = match crate::confine::open_parent_beneath(&root, &version.rel, false) {
            Ok(p) => p,
            Err(e) => return Err(refused_path("path", &shown, e.raw_os_error(), true)),
        };
        let name = name.to_vec();
        let st = match statat(&parent, std::ffi::OsStr::from_bytes(&name), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => {
                return Err(RequestError::FileNotFound(format!("{shown:?} is gone from the folder")))
            }
            Err(e) => return Err(refused_path("path", &shown, Some(e.raw_os_error()), true)),
        };
        let mtime = Stamp(
            (st.st_mtime as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add(st.st_mtime_nsec as i64),
        );
        let is_file = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile;
        if !is_file || !version.same_version(st.st_size as u64, mtime, st.st_ino) {
            return Err(RequestError::Conflict {
                code: "version_changed",
                message: format!(
                    "{shown:?} on disk is no longer the version indexed at {stamp}: nothing was changed"
                ),
            });
        }
        Ok(Checked {
            version,
            stamp,
            parent,
            name,
        })
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "action task failed");
        RequestError::Unavailable("internal error")
    })?
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
        match crate::confine::open_parent_beneath(&root, &to_blocking, true) {
            Ok((dir, name)) => Ok((dir, name.to_vec())),
            Err(e) => Err(refused_path("to", &shown, e.raw_os_error(), false)),
        }
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "action task failed");
        RequestError::Unavailable("internal error")
    })??;
    let target = FileVersion {
        rel: to.clone(),
        ..checked.version.clone()
    };
    let step = |step| WriteOp::Move {
        step,
        from: checked.version.rel.clone(),
        to: target.clone(),
        stamp: checked.stamp,
    };
    // 1. The target is known before it appears, so discovery never offers it.
    folder
        .writer
        .apply(step(MoveStep::Adopt))
        .await
        .map_err(index_down)?;
    let renamed = renameat_with(
        &checked.parent,
        std::ffi::OsStr::from_bytes(&checked.name),
        &to_dir,
        std::ffi::OsStr::from_bytes(&to_name),
        RenameFlags::NOREPLACE,
    );
    if let Err(e) = renamed {
        if let Err(ie) = folder.writer.apply(step(MoveStep::Undo)).await {
            tracing::warn!(error = %ie, "cannot drop the move target's record; a scan drops it");
        }
        return Err(match e {
            Errno::EXIST => RequestError::Conflict {
                code: "target_exists",
                message: format!("{to_shown:?} exists already: nothing was moved"),
            },
            Errno::NOENT => RequestError::FileNotFound(format!(
                "{:?} is gone from the folder",
                path_text(&checked.version.rel).0
            )),
            Errno::ISDIR | Errno::NOTDIR | Errno::LOOP => {
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
        });
    }
    tracing::info!(folder = %folder.name, from = %path_text(&checked.version.rel).0, to = %to_shown, "moved");
    // 2. The source is forgotten; a crash before this leaves an entry a poll skips.
    if let Err(e) = folder.writer.apply(step(MoveStep::Done)).await {
        tracing::warn!(error = %e, "moved, but the index could not record it yet; a scan does");
    }
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
