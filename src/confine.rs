//! Confinement: opening an indexed file without ever leaving the watched directory.
//!
//! Owns: resolving a relative path beneath `watch.dir` so that a symbolic link anywhere
//! on the way (even one swapped in after the file was indexed) fails the open instead of
//! leading outside: one `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (Linux
//! 5.6+), or, where the kernel or a seccomp filter lacks it, one `openat` with
//! `O_NOFOLLOW` per component. Both through `rustix`, without `unsafe`.
//! Also owns the directory side of the move and delete actions: opening (and, for a move
//! target, creating) the parent directory of a relative path the same way, so that
//! `statat`/`renameat`/`unlinkat` act on a name relative to a directory fd that was
//! reached without a link: a link swapped in afterwards cannot redirect them.
//! Also the same open from the kernel's caches only ([`open_beneath_cached`]:
//! `RESOLVE_CACHED`), which a poll may do on an async worker because it never waits on a
//! disk for the path.
//! Does not own: deciding what to do when the open fails (`offer` skips the file), or
//! whether a move or delete is allowed (`routes::actions`).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{mkdirat, openat, openat2, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

/// Cleared once `openat2` turned out to be missing, so later opens go straight to the
/// per-component walk.
static HAVE_OPENAT2: AtomicBool = AtomicBool::new(true);
/// Cleared once `RESOLVE_CACHED` (Linux 5.12) turned out to be missing.
static HAVE_CACHED: AtomicBool = AtomicBool::new(true);

/// Directories on the way are only searched, never read (`O_PATH`): like `openat2`'s own
/// resolution, this needs search permission only, whichever way the file is opened.
const DIR: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
/// The file itself: never a link, and a FIFO swapped in does not block the open.
const FILE: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// Opens `root/rel` for reading. Every directory on the way and the file itself must be
/// reached without a symbolic link; `.`/`..` components are refused.
///
/// # Errors
/// The OS error (`ELOOP`/`ENOTDIR`/`EXDEV` for a link on the way), or `InvalidInput` for
/// a path that tries to climb out.
pub fn open_beneath(root: &Path, rel: &[u8]) -> io::Result<File> {
    if HAVE_OPENAT2.load(Ordering::Relaxed) && valid(rel) {
        match open_whole(root, rel, ResolveFlags::empty()) {
            Ok(fd) => return Ok(File::from(fd)),
            // A link on the way (perhaps above the root), or a rename raced the
            // resolution: the two-step open decides.
            Err(Errno::LOOP | Errno::AGAIN) => {}
            Err(Errno::NOSYS | Errno::PERM) => HAVE_OPENAT2.store(false, Ordering::Relaxed),
            Err(e) => return Err(e.into()),
        }
    }
    Root::new(root)?.open(rel)
}

/// Whether `rel` is a relative path without empty, `.` or `..` components.
fn valid(rel: &[u8]) -> bool {
    !rel.is_empty()
        && !rel
            .split(|b| *b == b'/')
            .any(|p| p.is_empty() || p == b"." || p == b"..")
}

/// `root/rel` opened in one resolution with `NO_SYMLINKS` (and `extra`): without a link
/// anywhere and with no `..` in `rel` (see [`valid`]), what it reaches lies beneath
/// `root`, as `RESOLVE_BENEATH` from the root's descriptor would ensure, at one open and
/// one close less. `ELOOP` for a link anywhere on the way, also above the root, which the
/// root's own open may follow: the caller then opens in two steps.
fn open_whole(root: &Path, rel: &[u8], extra: ResolveFlags) -> Result<OwnedFd, Errno> {
    let mut full = Vec::with_capacity(root.as_os_str().len() + 1 + rel.len());
    full.extend_from_slice(root.as_os_str().as_bytes());
    full.push(b'/');
    full.extend_from_slice(rel);
    let how = ResolveFlags::NO_SYMLINKS | extra;
    openat2(CWD, OsStr::from_bytes(&full), FILE, Mode::empty(), how)
}

/// The watched directory, opened once (`O_PATH`) for several files in a row: a batch, a
/// page of the list, the wait's walk. Each [`Root::open`] resolves beneath this
/// descriptor exactly as [`open_beneath`] does beneath the path, without opening and
/// closing the directory again for every file (two of the six system calls a file cost).
/// Held for one request only, so a watched directory replaced meanwhile is seen by the
/// next one.
#[derive(Debug)]
pub struct Root(OwnedFd);

impl Root {
    /// Opens the directory `root`.
    ///
    /// # Errors
    /// The OS error.
    pub fn new(root: &Path) -> io::Result<Root> {
        Ok(Root(openat(CWD, root, DIR, Mode::empty())?))
    }

    /// Opens `rel` beneath this directory for reading, as [`open_beneath`].
    ///
    /// # Errors
    /// As [`open_beneath`].
    pub fn open(&self, rel: &[u8]) -> io::Result<File> {
        if !valid(rel) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        if HAVE_OPENAT2.load(Ordering::Relaxed) {
            let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
            match openat2(&self.0, OsStr::from_bytes(rel), FILE, Mode::empty(), how) {
                Ok(fd) => return Ok(File::from(fd)),
                // Not in this kernel, or refused by a seccomp filter.
                Err(Errno::NOSYS | Errno::PERM) => HAVE_OPENAT2.store(false, Ordering::Relaxed),
                // The kernel could not rule out an escape raced by a rename: the walk decides.
                Err(Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        walk(self.0.try_clone()?, &components(rel)?)
    }
}

/// Opens `root/rel` like [`open_beneath`], but only if the kernel can resolve the root
/// and every component from its dentry cache (`openat2` with `RESOLVE_CACHED`), so the
/// call never waits on a disk or a network for the path. `Ok(None)`: it would have had to
/// (or the kernel lacks `openat2` or `RESOLVE_CACHED`): use [`open_beneath`], off the
/// async workers.
///
/// # Errors
/// As [`open_beneath`], for a file that is known not to open (gone, a link on the way).
pub fn open_beneath_cached(root: &Path, rel: &[u8]) -> io::Result<Option<File>> {
    if !HAVE_OPENAT2.load(Ordering::Relaxed) || !HAVE_CACHED.load(Ordering::Relaxed) {
        return Ok(None);
    }
    if !valid(rel) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let unsupported = |e: Errno| -> io::Result<Option<File>> {
        match e {
            // Would have to wait (or a rename raced the resolution): the slow way decides.
            Errno::AGAIN => Ok(None),
            Errno::NOSYS | Errno::PERM => {
                HAVE_OPENAT2.store(false, Ordering::Relaxed);
                Ok(None)
            }
            // An unknown resolve flag: this kernel has no RESOLVE_CACHED.
            Errno::INVAL => {
                HAVE_CACHED.store(false, Ordering::Relaxed);
                Ok(None)
            }
            e => Err(e.into()),
        }
    };
    // First the whole path in one resolution ([`open_whole`]); on a link, in two steps.
    match open_whole(root, rel, ResolveFlags::CACHED) {
        Ok(fd) => return Ok(Some(File::from(fd))),
        Err(Errno::LOOP) => {}
        Err(e) => return unsupported(e),
    }
    let root = match openat2(CWD, root, DIR, Mode::empty(), ResolveFlags::CACHED) {
        Ok(fd) => fd,
        Err(e) => return unsupported(e),
    };
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::CACHED;
    match openat2(&root, OsStr::from_bytes(rel), FILE, Mode::empty(), how) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(e) => unsupported(e),
    }
}

/// File systems whose opens, stats and reads never wait on a network or another
/// process (their `statfs` magic numbers): ext2/3/4, XFS, Btrfs, tmpfs, F2FS, ZFS,
/// overlayfs, bcachefs, ramfs.
const LOCAL_FS: [u64; 9] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0xF2F5_2010,
    0x2FC1_2FC1,
    0x794C_7630,
    0xCA45_1A4E,
    0x8584_58F6,
];

/// Whether `dir` lies on a local file system (one of a known list), where opening and
/// stating a file whose path is in the dentry cache does not wait on a network. Anything
/// else (NFS, SMB, FUSE, an unknown type, or `statfs` failing) says no.
pub fn is_local_fs(dir: &Path) -> bool {
    rustix::fs::statfs(dir).is_ok_and(|st| LOCAL_FS.contains(&((st.f_type as u64) & 0xFFFF_FFFF)))
}

/// One `openat` per component, each without following a link.
fn walk(mut dir: OwnedFd, parts: &[&[u8]]) -> io::Result<File> {
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    for d in dirs {
        dir = openat(
            &dir,
            OsStr::from_bytes(d),
            DIR | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
    }
    Ok(File::from(openat(
        &dir,
        OsStr::from_bytes(last),
        FILE,
        Mode::empty(),
    )?))
}

/// Splits a relative path into its components, refusing an empty path, an empty
/// component (a leading `/` or `//`), `.` and `..`.
///
/// # Errors
/// `InvalidInput` for such a path.
pub fn components(rel: &[u8]) -> io::Result<Vec<&[u8]>> {
    let parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    if rel.is_empty()
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == b"." || *p == b"..")
    {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    Ok(parts)
}

/// The parent directory of `root/rel`, opened `O_PATH` without a link on the way, and the
/// last component's name. With `create`, missing directories on the way are created
/// (mode 0755, less the umask), each one relative to the directory fd above it.
///
/// # Errors
/// `InvalidInput` for a path that is empty or climbs out (see [`components`]); the OS
/// error otherwise (`ELOOP`/`ENOTDIR` for a link or a file on the way, `ENOENT` for a
/// missing directory without `create`).
pub fn open_parent_beneath<'r>(
    root: &Path,
    rel: &'r [u8],
    create: bool,
) -> io::Result<(OwnedFd, &'r [u8])> {
    let parts = components(rel)?;
    let (last, dirs) = parts
        .split_last()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut dir = openat(CWD, root, DIR, Mode::empty())?;
    for d in dirs {
        let name = OsStr::from_bytes(d);
        dir = match openat(&dir, name, DIR | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                openat(&dir, name, DIR | OFlags::NOFOLLOW, Mode::empty())?
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok((dir, last))
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
        // From the caches only: refused alike (or "not cached", never opened).
        for rel in [
            &b"link"[..],
            b"dirlink/secret",
            b"../secret",
            b"/etc/passwd",
        ] {
            assert!(!matches!(open_beneath_cached(&root, rel), Ok(Some(_))));
        }
    }

    #[test]
    fn a_temporary_directory_is_on_a_local_file_system() {
        // /tmp and the build directory are local here; /proc is not in the list.
        assert!(is_local_fs(&std::env::temp_dir()));
        assert!(!is_local_fs(Path::new("/proc")));
        assert!(!is_local_fs(Path::new("/no/such/dir")));
    }

    #[test]
    fn a_cached_path_opens_from_the_caches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f.txt"), b"ok").unwrap();
        // Just written, so every component is in the dentry cache.
        let mut s = String::new();
        match open_beneath_cached(dir.path(), b"a/f.txt").unwrap() {
            Some(mut f) => {
                f.read_to_string(&mut s).unwrap();
                assert_eq!(s, "ok");
            }
            None => assert!(
                !HAVE_OPENAT2.load(Ordering::Relaxed) || !HAVE_CACHED.load(Ordering::Relaxed),
                "a path just written was not resolved from the cache"
            ),
        }
        assert!(!matches!(
            open_beneath_cached(dir.path(), b"a/gone.txt"),
            Ok(Some(_))
        ));
    }

    /// `watch.dir` may be reached through a link above it (`/srv -> /data/srv`): the
    /// one-resolution open of the whole path refuses that link, and the two-step open
    /// (the root, then the file beneath it) decides; a link below the root is refused by
    /// every way of opening.
    #[test]
    fn a_root_reached_through_a_link_still_opens_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("root/a")).unwrap();
        std::fs::write(real.join("root/a/f.txt"), b"ok").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), real.join("root/a/link")).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("via")).unwrap();
        let root = dir.path().join("via/root");
        let read = |f: File| {
            let mut s = String::new();
            (&f).read_to_string(&mut s).unwrap();
            s
        };
        assert_eq!(read(open_beneath(&root, b"a/f.txt").unwrap()), "ok");
        assert_eq!(
            read(Root::new(&root).unwrap().open(b"a/f.txt").unwrap()),
            "ok"
        );
        match open_beneath_cached(&root, b"a/f.txt").unwrap() {
            Some(f) => assert_eq!(read(f), "ok"),
            None => assert!(
                !HAVE_OPENAT2.load(Ordering::Relaxed) || !HAVE_CACHED.load(Ordering::Relaxed),
                "a path just written was not resolved from the cache"
            ),
        }
        assert!(open_beneath(&root, b"a/link").is_err());
        assert!(Root::new(&root).unwrap().open(b"a/link").is_err());
        assert!(!matches!(
            open_beneath_cached(&root, b"a/link"),
            Ok(Some(_))
        ));
    }

    #[test]
    fn the_per_component_walk_refuses_links_too() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f"), b"ok").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("dirlink")).unwrap();
        let walk_to =
            |parts: &[&[u8]]| walk(openat(CWD, &root, DIR, Mode::empty()).unwrap(), parts);
        let mut s = String::new();
        walk_to(&[b"a", b"f"])
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "ok");
        assert!(walk_to(&[b"link"]).is_err());
        assert!(walk_to(&[b"dirlink", b"secret"]).is_err());
    }

    #[test]
    fn parents_are_opened_and_created_without_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("dirlink")).unwrap();
        let (_, name) = open_parent_beneath(&root, b"a/f", false).unwrap();
        assert_eq!(name, b"f");
        assert!(open_parent_beneath(&root, b"x/y/f", false).is_err());
        open_parent_beneath(&root, b"x/y/f", true).unwrap();
        assert!(root.join("x/y").is_dir());
        assert!(open_parent_beneath(&root, b"dirlink/f", true).is_err());
        assert!(open_parent_beneath(&root, b"dirlink/new/f", true).is_err());
        assert!(!dir.path().join("new").exists(), "created outside");
        for bad in [&b""[..], b"/etc/passwd", b"a/../f", b"a//f", b"./f", b"a/"] {
            assert!(open_parent_beneath(&root, bad, true).is_err(), "{bad:?}");
        }
    }
}
