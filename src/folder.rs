//! A watched folder as the routes see it: its name, its directory, its view of the index
//! and its status.
//!
//! Owns: what a route needs to serve one folder (`/trigger` serves the folder named
//! [`DEFAULT`], `/watches/NAME/...` the folder named NAME), and its JSON form in the
//! folder listing ([`Folder::listing`], the contract's `Folder` schema).
//! Does not own: discovering its files (`discover`), its index tables (`index`), or who
//! may use it (`auth.folders`, applied by `routes`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::health::Health;
use crate::index::{IndexReader, WriterHandle};

/// The name of the folder configured by `[watch]`, served at `/trigger` too.
pub(crate) const DEFAULT: &str = crate::config::DEFAULT_FOLDER;

/// One watched folder, ready to serve.
#[derive(Debug)]
pub(crate) struct Folder {
    /// Its name: `default` for `[watch]`, NAME for `[folders.NAME]`.
    pub(crate) name: String,
    /// The watched directory, absolute.
    pub(crate) root: PathBuf,
    /// Its view of the index.
    pub(crate) reader: IndexReader,
    /// `trigger.max_content_bytes` for this folder.
    pub(crate) max_content: u64,
    /// Whether `root` is on a local file system ([`crate::confine::is_local_fs`], asked
    /// once at start): then a poll checks cached files on its async worker, not on the
    /// blocking pool (`offer::try_next_after`).
    pub(crate) local: bool,
    /// Whether subdirectories are watched too (`recursive`).
    pub(crate) recursive: bool,
    /// The index writer, for this folder's tables (the move and delete actions).
    pub(crate) writer: WriterHandle,
    /// Its discovery's status (readiness, watcher, pending, scans).
    pub(crate) health: Arc<Health>,
}

impl Folder {
    /// `{"name": ..., "recursive": ...}`: one entry of `GET /watches`.
    pub(crate) fn listing(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name, "recursive": self.recursive })
    }
}
