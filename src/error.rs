//! Error types, one per layer.
//!
//! Owns: [`ConfigError`] (bad settings, exit code 2), [`IndexError`] (the persistent
//! store) with `StoreContext`, which maps the store's errors to it, and [`Error`] (what
//! stops the daemon), plus the exit-code mapping.
//! Does not own: per-request errors, which `routes` turns into JSON answers, or per-file
//! problems during a scan, which are logged where they happen and survived.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A setting that cannot be used. Start-up stops with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file cannot be used.
    #[error("--config {}: {problem}", path.display())]
    File {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A key with a bad value, or an unknown key.
    #[error("{key}: {problem}")]
    Invalid {
        /// `section.key`
        key: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// An error reported by the configuration loader (syntax, types); its text names the key.
    #[error("{0}")]
    Load(String),
}

impl ConfigError {
    /// Wraps the loader's error; its message already names the key and the origin.
    /// Multi-line messages (a TOML syntax error with its source excerpt) are folded into
    /// one line.
    pub(crate) fn from_config(e: config::ConfigError) -> ConfigError {
        let text = e.to_string();
        let line = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with('|')
                    && !l
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit() && l.contains(" | "))
            })
            .collect::<Vec<_>>()
            .join(": ");
        ConfigError::Load(line)
    }
}

/// A failure of the persistent index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Another process has the index open.
    #[error("the index {} is in use by another filetrigger process (only one daemon may use a state.dir)", path.display())]
    Locked {
        /// The index file.
        path: PathBuf,
    },
    /// The index cannot be opened or created.
    #[error("cannot open the index {}: {source}", path.display())]
    Open {
        /// The index file.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: redb::DatabaseError,
    },
    /// The index was written by an incompatible version.
    #[error("the index {} has schema version {found}, this filetrigger understands {expected}; move it away to start afresh", path.display())]
    Schema {
        /// The index file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this build writes.
        expected: u64,
    },
    /// A transaction failed.
    #[error("index {op}: {source}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// The store's error.
        #[source]
        source: redb::Error,
    },
    /// The store failed a write (a full or read-only `state.dir`) and is being reopened.
    #[error("the index is unavailable after a write failure (is state.dir full or read-only?)")]
    Unavailable,
    /// The index writer has stopped (shutdown or a fatal store error).
    #[error("the index writer has stopped")]
    WriterGone,
}

/// Names what the store was doing when it failed: `txn.commit().ctx("commit")?`. Every
/// redb error type converts into [`redb::Error`], so this one method maps them all to
/// [`IndexError::Store`].
pub(crate) trait StoreContext<T> {
    /// The error as [`IndexError::Store`] with `op` as its context.
    fn ctx(self, op: &'static str) -> Result<T, IndexError>;
}

impl<T, E: Into<redb::Error>> StoreContext<T> for Result<T, E> {
    fn ctx(self, op: &'static str) -> Result<T, IndexError> {
        self.map_err(|e| IndexError::Store {
            op,
            source: e.into(),
        })
    }
}

/// What stops the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad settings (exit code 2).
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The listening socket cannot be bound.
    #[error("cannot listen on {addr} (server.listen): {source}")]
    Bind {
        /// The address from `server.listen`.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file-system watcher cannot start.
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// `watch.dir`
        path: PathBuf,
        /// notify's error.
        #[source]
        source: notify::Error,
    },
    /// A task of the daemon failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error: 2 for configuration, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Bind { .. } => 2,
            _ => 1,
        }
    }
}
