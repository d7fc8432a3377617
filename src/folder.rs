//! A watched folder as the routes see it: its name, its directory, and its view of the
//! index.
//!
//! Owns: what a route needs to serve one folder (`/trigger` serves the folder named
//! [`DEFAULT`], `/watches/NAME/...` the folder named NAME).
//! Does not own: discovering its files (`discover`), its index tables (`index`), or who
//! may use it (`auth`).

use std::path::PathBuf;

use crate::index::IndexReader;

/// The name of the folder configured by `[watch]`, served at `/trigger` too.
pub(crate) const DEFAULT: &str = "default";

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
}
