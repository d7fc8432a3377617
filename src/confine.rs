//! Confinement: opening an indexed file without ever leaving the watched directory.
//!
//! Owns: resolving a relative path one component at a time with `openat` and
//! `O_NOFOLLOW`, so that a symbolic link anywhere on the way (even one swapped in after the
//! file was indexed) fails the open instead of leading outside `watch.dir`.
//! Does not own: deciding what to do when the open fails (`offer` skips the file).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn open_at(dir: Option<&OwnedFd>, name: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dirfd = dir.map_or(libc::AT_FDCWD, std::os::fd::AsRawFd::as_raw_fd);
    // SAFETY: `c` is a valid NUL-terminated string and `dirfd` an open descriptor (or
    // AT_FDCWD); the returned descriptor is owned by nobody else.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `root/rel` for reading. Every directory on the way and the file itself must be
/// reached without a symbolic link; `.`/`..` components are refused.
///
/// # Errors
/// The OS error (`ELOOP`/`ENOTDIR` for a link on the way), or `InvalidInput` for a path
/// that tries to climb out.
pub fn open_beneath(root: &Path, rel: &[u8]) -> io::Result<File> {
    let parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == b"." || *p == b"..")
    {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY;
    let mut dir = open_at(None, root.as_os_str().as_bytes(), dir_flags)?;
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    for d in dirs {
        dir = open_at(Some(&dir), d, dir_flags | libc::O_NOFOLLOW)?;
    }
    let fd = open_at(
        Some(&dir),
        last,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
    )?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_plain_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f.txt"), b"ok").unwrap();
        let mut s = String::new();
        open_beneath(dir.path(), b"a/b/f.txt")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "ok");
    }

    #[test]
    fn links_on_the_way_or_at_the_end_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("dirlink")).unwrap();
        assert!(open_beneath(&root, b"link").is_err());
        assert!(open_beneath(&root, b"dirlink/secret").is_err());
        assert!(open_beneath(&root, b"../secret").is_err());
        assert!(open_beneath(&root, b"/etc/passwd").is_err());
    }
}
