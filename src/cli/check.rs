//! `filetrigger check`: would `serve` start with these settings? Checked without serving
//! and without changing anything but a probe file in `state.dir` (the index is opened
//! read-only, never written).
//!
//! Owns: the list of checks, their order, one line per finding (a problem, or a note that
//! needs no fix), and the exit status (0 no problem, 2 problems).
//! Does not own: what is valid (`config` loads and validates every key and value, `auth`
//! and `tls` parse their files, `index::inspect` reads the index).

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use crate::config::Settings;
use crate::error::IndexError;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Finding {
    /// Must be fixed before `serve` can start (or work).
    Problem(String),
    /// Worth knowing; nothing to fix.
    Note(String),
}

/// Runs `check` and prints its findings.
pub fn run(config: Option<&Path>) -> ExitCode {
    let from = match config {
        Some(p) => format!("{} and the environment", p.display()),
        None => "the built-in defaults and the environment".into(),
    };
    let (findings, facts) = match crate::config::load(config, std::env::vars()) {
        Ok(settings) => check(&settings),
        Err(e) => (vec![Finding::Problem(e.to_string())], None),
    };
    let mut problems = 0;
    for f in &findings {
        match f {
            Finding::Problem(p) => {
                problems += 1;
                println!("filetrigger: {p}");
            }
            Finding::Note(n) => println!("filetrigger: note: {n}"),
        }
    }
    if problems == 0 {
        println!(
            "filetrigger: settings from {from} are ok{}",
            facts.map(|f| format!(" ({f})")).unwrap_or_default()
        );
        ExitCode::SUCCESS
    } else {
        let s = if problems == 1 { "" } else { "s" };
        println!("filetrigger: settings from {from}: {problems} problem{s}");
        ExitCode::from(2)
    }
}

/// Every check on loaded settings; also a one-line summary of what serve would do.
pub(super) fn check(s: &Settings) -> (Vec<Finding>, Option<String>) {
    let mut out = Vec::new();
    let watched = s.watched();
    for f in &watched {
        watched_dir(&f.dir_key(), &f.watch.dir, &mut out);
    }
    // As serve does at start: the resolved directories (a symlink can make two names one).
    let resolved: Vec<(String, std::path::PathBuf)> = watched
        .iter()
        .filter_map(|f| Some((f.dir_key(), std::fs::canonicalize(&f.watch.dir).ok()?)))
        .collect();
    if let Err(e) = crate::config::check_overlap(&resolved) {
        out.push(Finding::Problem(e.to_string()));
    }
    let index = state_dir(s, &mut out);
    if let Err(e) = crate::auth::Auth::load(&s.auth) {
        out.push(Finding::Problem(e.to_string()));
    }
    if let Err(e) = crate::tls::load(&s.server.tls) {
        out.push(Finding::Problem(e.to_string()));
    }
    listen(s, index == Index::InUse, &mut out);
    if let Some(uid) = effective_uid().filter(|u| *u == 0) {
        out.push(Finding::Note(format!(
            "checked as root (uid {uid}): run check as the service user to check that user's access"
        )));
    }
    let index_fact = match index {
        Index::Files(n) => format!("index: {n} files"),
        Index::None => "no index yet".into(),
        Index::InUse => "index in use".into(),
        Index::Unknown => "index not checked".into(),
    };
    let watching = match watched.as_slice() {
        [one] if one.section == "watch" => one.watch.dir.display().to_string(),
        all => format!(
            "{} folder{}: {}",
            all.len(),
            if all.len() == 1 { "" } else { "s" },
            all.iter()
                .map(|f| format!("{} {}", f.name, f.watch.dir.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let facts = format!(
        "watching {watching}, {index_fact}, serving {}://{}",
        if s.server.tls.cert.is_some() {
            "https"
        } else {
            "http"
        },
        s.server.listen
    );
    (out, Some(facts))
}

/// A watched directory (`key`: `watch.dir` or `folders.NAME.dir`): exists, is a
/// directory, and this user can list it.
fn watched_dir(key: &str, dir: &Path, out: &mut Vec<Finding>) {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => out.push(Finding::Problem(format!(
            "{key}: {} is not a directory",
            dir.display()
        ))),
        Ok(_) => {
            if let Err(e) = std::fs::read_dir(dir) {
                out.push(Finding::Problem(format!(
                    "{key}: {} cannot be listed by this user{}: {e}",
                    dir.display(),
                    uid_text()
                )));
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => match creatable(dir) {
            // Serve creates it (the default ./inbox in a new directory): nothing to fix,
            // but a misspelt path would be watched empty, so say it.
            Ok(()) => out.push(Finding::Note(format!(
                "{key}: {} does not exist yet; serve creates it empty (is the path right?)",
                dir.display()
            ))),
            Err(why) => out.push(Finding::Problem(format!(
                "{key}: {} does not exist and serve cannot create it: {why}",
                dir.display()
            ))),
        },
        Err(e) => out.push(Finding::Problem(format!(
            "{key}: cannot use {}: {e}",
            dir.display()
        ))),
    }
}

/// What the index check found.
#[derive(Debug, PartialEq, Eq)]
enum Index {
    None,
    Files(u64),
    InUse,
    Unknown,
}

/// `state.dir`: a writable directory (or one serve can create), and its index opens.
fn state_dir(s: &Settings, out: &mut Vec<Finding>) -> Index {
    let dir = &s.state.dir;
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            out.push(Finding::Problem(format!(
                "state.dir: {} is not a directory",
                dir.display()
            )));
            return Index::Unknown;
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            match creatable(dir) {
                Ok(()) => out.push(Finding::Note(format!(
                    "state.dir: {} does not exist yet; serve creates it",
                    dir.display()
                ))),
                Err(why) => out.push(Finding::Problem(format!(
                    "state.dir: {} does not exist and serve cannot create it: {why}",
                    dir.display()
                ))),
            }
            return Index::None;
        }
        Err(e) => {
            out.push(Finding::Problem(format!(
                "state.dir: cannot use {}: {e}",
                dir.display()
            )));
            return Index::Unknown;
        }
    }
    let probe = dir.join(format!(".filetrigger-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        // As at start: a full or read-only disk is a state that passes (serve starts, or
        // exits 1 and systemd retries), not a setting to fix.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            out.push(Finding::Note(format!(
                "state.dir: {} cannot be written to right now ({e}); the index serves what it has",
                dir.display()
            )))
        }
        Err(e) => out.push(Finding::Problem(format!(
            "state.dir: {} is not writable by this user{}: {e}",
            dir.display(),
            uid_text()
        ))),
    }
    match crate::index::inspect(dir) {
        Ok(None) => Index::None,
        Ok(Some(n)) => Index::Files(n),
        Err(IndexError::Locked { path }) => {
            out.push(Finding::Note(format!(
                "state.dir: the index {} is in use by a running filetrigger (only one daemon may use a state.dir; stop it before starting another)",
                path.display()
            )));
            Index::InUse
        }
        Err(IndexError::Open {
            path,
            source: redb::DatabaseError::RepairAborted,
        }) => {
            out.push(Finding::Note(format!(
                "state.dir: the index {} was not closed cleanly; serve repairs it when it starts",
                path.display()
            )));
            Index::Unknown
        }
        Err(e) => {
            out.push(Finding::Problem(format!("state.dir: {e}")));
            Index::Unknown
        }
    }
}

/// `server.listen`: the address can be bound now.
fn listen(s: &Settings, index_in_use: bool, out: &mut Vec<Finding>) {
    let addr = s.server.listen;
    match TcpListener::bind(addr) {
        Ok(l) => drop(l),
        Err(e) if e.kind() == ErrorKind::AddrInUse && index_in_use => {
            out.push(Finding::Note(format!(
                "server.listen: {addr} is in use, presumably by the running filetrigger that holds the index"
            )))
        }
        Err(e) if e.kind() == ErrorKind::AddrInUse => out.push(Finding::Problem(format!(
            "server.listen: {addr} is in use by another program"
        ))),
        Err(e) => out.push(Finding::Problem(format!(
            "server.listen: cannot listen on {addr}: {e}"
        ))),
    }
}

/// This process's effective user id (the owner of `/proc/self`).
fn effective_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Whether serve could create the missing directory `dir` (`create_dir_all`): its
/// nearest existing ancestor is a directory this user may write to and search.
fn creatable(dir: &Path) -> Result<(), String> {
    use rustix::fs::{accessat, Access, AtFlags, CWD};
    let absolute = std::path::absolute(dir).map_err(|e| e.to_string())?;
    let Some(parent) = absolute.ancestors().skip(1).find(|a| a.exists()) else {
        return Err("no existing parent directory".into());
    };
    if !parent.is_dir() {
        return Err(format!("{} is not a directory", parent.display()));
    }
    accessat(
        CWD,
        parent,
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::EACCESS,
    )
    .map_err(|e| {
        format!(
            "{} is not writable by this user{}: {e}",
            parent.display(),
            uid_text()
        )
    })
}

fn uid_text() -> String {
    effective_uid()
        .map(|u| format!(" (uid {u})"))
        .unwrap_or_default()
}
