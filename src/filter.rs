//! Which paths are candidates: `watch.include` and `watch.exclude`.
//!
//! Owns: compiling the globs and answering "is this relative path offered?" and "is this
//! directory pruned?". A pattern without `/` is matched against every single name in the
//! path; a pattern with `/` against the whole relative path.
//! Also [`PathGlob`], the glob of the wait action and the webhooks (`glob`).
//! Does not own: walking (`scan`) or events (`watch`); both ask this module.

use std::path::Path;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::error::ConfigError;

/// Compiled include and exclude patterns.
#[derive(Debug, Clone)]
pub struct Filter {
    include_path: GlobSet,
    include_name: GlobSet,
    exclude_path: GlobSet,
    exclude_name: GlobSet,
}

fn compile(key: &str, patterns: &[String]) -> Result<(GlobSet, GlobSet), ConfigError> {
    let mut by_path = GlobSetBuilder::new();
    let mut by_name = GlobSetBuilder::new();
    for p in patterns {
        let glob: Glob = GlobBuilder::new(p)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: key.to_string(),
                problem: format!("bad glob `{p}`: {}", e.kind()),
            })?;
        if p.contains('/') || p == "**" {
            by_path.add(glob);
        } else {
            by_name.add(glob);
        }
    }
    let build = |b: GlobSetBuilder| {
        b.build().map_err(|e| ConfigError::Invalid {
            key: key.to_string(),
            problem: e.to_string(),
        })
    };
    Ok((build(by_path)?, build(by_name)?))
}

impl Filter {
    /// Compiles the patterns.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `watch.include` or `watch.exclude` for a bad glob.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, ConfigError> {
        let (include_path, include_name) = compile("watch.include", include)?;
        let (exclude_path, exclude_name) = compile("watch.exclude", exclude)?;
        Ok(Filter {
            include_path,
            include_name,
            exclude_path,
            exclude_name,
        })
    }

    /// Whether a directory (relative path) is pruned: its name or path is excluded.
    /// Include patterns do not prune directories.
    pub fn prunes_dir(&self, rel: &Path) -> bool {
        rel.file_name()
            .is_some_and(|name| self.exclude_name.is_match(name))
            || self.exclude_path.is_match(rel)
    }

    /// Whether a regular file at `rel` (relative to `watch.dir`) is offered, checking
    /// its parent directories too.
    pub fn offers_file(&self, rel: &Path) -> bool {
        if rel.as_os_str().is_empty() {
            return false;
        }
        if rel
            .components()
            .any(|c| self.exclude_name.is_match(c.as_os_str()))
        {
            return false;
        }
        if self.exclude_path.is_match(rel) {
            return false;
        }
        // A parent directory excluded by a path pattern prunes the whole tree.
        if rel
            .ancestors()
            .skip(1)
            .any(|a| !a.as_os_str().is_empty() && self.exclude_path.is_match(a))
        {
            return false;
        }
        self.include_path.is_match(rel)
            || rel
                .file_name()
                .is_some_and(|name| self.include_name.is_match(name))
    }
}

/// A glob on the relative path: a pattern without `/` matches the file's name (as in
/// `watch.include`), one with `/` the whole relative path; `*` never crosses a `/`.
pub(crate) struct PathGlob {
    matcher: GlobMatcher,
    by_name: bool,
}

impl PathGlob {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// globset's, when the pattern is not a valid glob.
    pub(crate) fn new(pattern: &str) -> Result<PathGlob, globset::Error> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()?;
        Ok(PathGlob {
            matcher: glob.compile_matcher(),
            by_name: !pattern.contains('/'),
        })
    }

    /// Whether the relative path `rel` matches.
    pub(crate) fn matches(&self, rel: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let target = if self.by_name {
            rel.rsplit(|b| *b == b'/').next().unwrap_or(rel)
        } else {
            rel
        };
        self.matcher
            .is_match(std::path::Path::new(std::ffi::OsStr::from_bytes(target)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn defaults() -> Filter {
        let s = load(None, Vec::new()).unwrap();
        Filter::new(&s.watch.include, &s.watch.exclude).unwrap()
    }

    #[test]
    fn default_excludes_hidden_and_partial_files_anywhere() {
        let f = defaults();
        for p in [
            ".hidden",
            "a/.hidden",
            ".git/config",
            "a/.cache/b/c.pdf",
            "x.tmp",
            "deep/er/x.tmp",
            "x.part",
            "x.partial",
            "movie.mkv.crdownload",
            "~$report.docx",
            "a/~$report.docx",
        ] {
            assert!(!f.offers_file(Path::new(p)), "{p} should be excluded");
        }
        for p in [
            "a.pdf",
            "a/b/c.txt",
            "tmp/x.pdf",
            "file.tmp.pdf",
            "with space.pdf",
            "é.txt",
        ] {
            assert!(f.offers_file(Path::new(p)), "{p} should be offered");
        }
    }

    #[test]
    fn hidden_directories_are_pruned() {
        let f = defaults();
        assert!(f.prunes_dir(Path::new(".git")));
        assert!(f.prunes_dir(Path::new("a/.snapshot")));
        assert!(!f.prunes_dir(Path::new("a/b")));
    }

    #[test]
    fn path_patterns_match_the_whole_relative_path() {
        let f = Filter::new(
            &["invoices/**/*.pdf".to_string()],
            &["invoices/draft/**".to_string()],
        )
        .unwrap();
        assert!(f.offers_file(Path::new("invoices/2026/1.pdf")));
        assert!(!f.offers_file(Path::new("invoices/2026/1.txt")));
        assert!(!f.offers_file(Path::new("other/1.pdf")));
        assert!(!f.offers_file(Path::new("invoices/draft/1.pdf")));
        assert!(f.prunes_dir(Path::new("invoices/draft/x")));
    }

    #[test]
    fn name_patterns_in_include_match_in_any_directory() {
        let f = Filter::new(&["*.pdf".to_string()], &[]).unwrap();
        assert!(f.offers_file(Path::new("a/b/c.pdf")));
        assert!(!f.offers_file(Path::new("a/b/c.txt")));
    }

    #[test]
    fn non_utf8_names_are_matched_not_dropped() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let f = defaults();
        let name = OsStr::from_bytes(b"caf\xe9.txt");
        assert!(f.offers_file(Path::new(name)));
        let tmp = OsStr::from_bytes(b"caf\xe9.tmp");
        assert!(!f.offers_file(Path::new(tmp)));
    }

    #[test]
    fn a_glob_without_a_slash_matches_the_name_and_one_with_a_slash_the_path() {
        let g = PathGlob::new("*.csv").unwrap();
        assert!(g.matches(b"a.csv"));
        assert!(g.matches(b"sub/dir/a.csv"));
        assert!(!g.matches(b"a.txt"));
        let g = PathGlob::new("in/*.csv").unwrap();
        assert!(g.matches(b"in/a.csv"));
        assert!(!g.matches(b"in/x/a.csv"));
        assert!(!g.matches(b"a.csv"));
        let g = PathGlob::new("**/*.csv").unwrap();
        assert!(g.matches(b"in/x/a.csv"));
        assert!(PathGlob::new("a[").is_err());
    }
}
