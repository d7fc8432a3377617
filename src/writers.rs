//! Whether a file is open for writing by any process: a read-lease probe.
//!
//! Owns: asking the kernel, with `fcntl(F_SETLEASE, F_RDLCK)` on a read-only descriptor,
//! whether any process (this one included) has a file open for writing, which the kernel
//! refuses with `EAGAIN` while one has; releasing the lease at once; and keeping the
//! lease's break signal (SIGIO) from killing the daemon ([`init`]).
//! Does not own: what the answer means for a file (`settle`, `discover`), which files are
//! probed, or when.
//!
//! Never blocking or slowing a writer: a writer's `open(O_WRONLY)` that meets our lease
//! is held by the kernel until we release it (up to `fs.lease-break-time`, 45 s), and
//! the kernel sends us SIGIO, whose default action ends the process. So the lease is
//! taken and released in two consecutive system calls with nothing in between, on a
//! descriptor opened `O_NONBLOCK` (our own open never waits for another holder's lease),
//! and SIGIO is ignored process-wide before the first lease. A writer that opens during
//! those microseconds waits for them only (or, if it opened with `O_NONBLOCK`, gets
//! `EWOULDBLOCK` once, as it would from any lease holder).
//!
//! Unknown: without ownership of the file or `CAP_LEASE` (`EACCES`/`EPERM`), on file
//! systems without leases (`EINVAL`: NFS, SMB/CIFS, FUSE, or `fs.leases-enable = 0`),
//! for anything but a regular file, and when the open fails. The caller then falls back
//! to the settle time.
//!
//! Events: the probe's open and close would cause IN_OPEN and IN_CLOSE_NOWRITE in a
//! watched directory; the watcher leaves both out of the kernel's mask
//! ([`crate::watch::config`]), so neither arrives. Only IN_CLOSE_WRITE
//! (`Access(Close(Write))`) is a writer's close.
//!
//! `rustix` (1.1) has no `F_SETLEASE` and no stable way to set a signal's disposition,
//! so the two calls go through `libc`, each in one `unsafe` block.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

/// What the kernel says about a file's writers.
#[derive(Debug)]
pub enum Writers {
    /// Some process has it open for writing (or a writable shared mapping of it).
    Open,
    /// Nobody has it open for writing at this instant.
    NotOpen,
    /// The probe cannot tell.
    Unknown(Unknown),
}

/// Why a probe cannot tell.
#[derive(Debug)]
pub enum Unknown {
    /// Not the file's owner and no `CAP_LEASE` (`EACCES`/`EPERM`).
    NotPermitted,
    /// No leases on this file system (`EINVAL`: NFS, SMB/CIFS, FUSE), or leases are
    /// switched off (`fs.leases-enable = 0`).
    Unsupported,
    /// Not a regular file.
    NotRegular,
    /// The open failed (gone, a symbolic link, another holder's lease being broken), or
    /// SIGIO could not be ignored, or another error.
    Io(io::Error),
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unknown::NotPermitted => f.write_str("not the owner and no CAP_LEASE"),
            Unknown::Unsupported => f.write_str("no leases on this file system"),
            Unknown::NotRegular => f.write_str("not a regular file"),
            Unknown::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Ignores SIGIO for the whole process, once; call it at start-up. Every probe calls it
/// too, so no lease is ever taken while SIGIO could end the process.
///
/// # Errors
/// The OS error if the disposition cannot be set (not expected for SIGIO).
pub fn init() -> io::Result<()> {
    static IGNORED: OnceLock<Result<(), i32>> = OnceLock::new();
    let done = IGNORED.get_or_init(|| {
        // SAFETY: setting SIGIO's disposition to SIG_IGN installs no handler, so no code
        // of ours runs in signal context; `signal` touches no memory of ours.
        let old = unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
        if old == libc::SIG_ERR {
            Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL))
        } else {
            Ok(())
        }
    });
    done.map_err(io::Error::from_raw_os_error)
}

/// Probes `root/rel`, opened as [`crate::confine::open_beneath`] opens files to serve
/// them (no symbolic link on the way, read-only, non-blocking).
pub fn probe_beneath(root: &Path, rel: &[u8]) -> Writers {
    match crate::confine::open_beneath(root, rel) {
        Ok(file) => probe_file(file),
        Err(e) => Writers::Unknown(Unknown::Io(e)),
    }
}

/// Probes `path` (not followed if it is a symbolic link).
pub fn probe_path(path: &Path) -> Writers {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(file) => probe_file(file),
        Err(e) => Writers::Unknown(Unknown::Io(e)),
    }
}

/// Takes and at once drops a read lease on `file`, which must be open read-only (a
/// descriptor of ours open for writing would make the answer `Open`). The descriptor is
/// closed on return, which would release the lease too.
fn probe_file(file: File) -> Writers {
    if let Err(e) = init() {
        return Writers::Unknown(Unknown::Io(e));
    }
    match file.metadata() {
        Ok(meta) if meta.file_type().is_file() => {}
        Ok(_) => return Writers::Unknown(Unknown::NotRegular),
        Err(e) => return Writers::Unknown(Unknown::Io(e)),
    }
    match set_lease(&file, libc::F_RDLCK) {
        Ok(()) => {
            if let Err(e) = set_lease(&file, libc::F_UNLCK) {
                // Not expected; closing the descriptor below releases it as well.
                tracing::debug!(error = %e, "releasing a read lease failed");
            }
            Writers::NotOpen
        }
        Err(e) => match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) => Writers::Open,
            Some(libc::EACCES) | Some(libc::EPERM) => Writers::Unknown(Unknown::NotPermitted),
            Some(libc::EINVAL) => Writers::Unknown(Unknown::Unsupported),
            _ => Writers::Unknown(Unknown::Io(e)),
        },
    }
}

/// `fcntl(fd, F_SETLEASE, arg)`.
fn set_lease(file: &File, arg: libc::c_int) -> io::Result<()> {
    // SAFETY: F_SETLEASE takes an int argument and reads or writes no memory of ours;
    // `file` keeps the descriptor open for the duration of the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    /// Held by every test here: a child being spawned holds a copy of every descriptor of
    /// this process until its exec, so a file another test has just closed after writing
    /// would still be open for writing (the daemon spawns no processes).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_open(w: &Writers) -> bool {
        matches!(w, Writers::Open)
    }

    fn is_not_open(w: &Writers) -> bool {
        matches!(w, Writers::NotOpen)
    }

    fn euid() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_file_nobody_writes_is_not_open_and_one_open_for_writing_here_is() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"done").unwrap();
        assert!(is_not_open(&probe_path(&p)), "{:?}", probe_path(&p));
        assert!(is_not_open(&probe_beneath(dir.path(), b"a")));
        let w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        assert!(is_open(&probe_path(&p)), "{:?}", probe_path(&p));
        assert!(is_open(&probe_beneath(dir.path(), b"a")));
        drop(w);
        assert!(is_not_open(&probe_path(&p)));
        // Reading it does not count.
        let _r = File::open(&p).unwrap();
        assert!(is_not_open(&probe_path(&p)));
        if euid() == 0 {
            // Someone else's file: root has CAP_LEASE.
            std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
            assert!(is_not_open(&probe_path(&p)));
        }
    }

    #[test]
    fn another_process_holding_the_file_open_for_writing_makes_it_open_until_it_closes() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scan.pdf");
        let closed = dir.path().join("closed");
        // Opens the file for appending, writes, waits for a line on stdin, closes it and
        // says so in another file, then lives on.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3>>"$1"; echo page1 >&3; read x; exec 3>&-; : > "$2"; exec sleep 30"#)
            .arg("sh")
            .arg(&p)
            .arg(&closed)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the first write", || {
            std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false)
        });
        assert!(is_open(&probe_path(&p)), "{:?}", probe_path(&p));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            is_open(&probe_path(&p)),
            "still open while the writer pauses"
        );
        writeln!(child.stdin.as_mut().unwrap()).unwrap();
        wait_until("the writer's close", || closed.exists());
        let after = probe_path(&p);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            is_not_open(&after),
            "closed, process still running: {after:?}"
        );
        assert!(is_not_open(&probe_path(&p)));
    }

    #[test]
    fn a_held_lease_blocks_a_writer_until_it_is_released_and_sigio_does_not_kill_us() {
        let _serial = serial();
        // Why the lease must never be held: the kernel makes the writer wait.
        init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"x").unwrap();
        let f = File::open(&p).unwrap();
        // A child process spawned meanwhile by another test holds copies of our
        // descriptors until its exec, which can make the lease fail for a moment.
        let mut tries = 0;
        while let Err(e) = set_lease(&f, libc::F_RDLCK) {
            tries += 1;
            assert!(tries < 100, "cannot take a read lease: {e}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (started_tx, started_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let wp = p.clone();
        let writer = std::thread::spawn(move || {
            let t = Instant::now();
            started_tx.send(()).unwrap();
            let w = std::fs::OpenOptions::new().append(true).open(&wp);
            tx.send(t.elapsed()).unwrap();
            w.unwrap();
        });
        // Wait until the writer is about to open (on a loaded machine the thread may
        // start late), then give it time to finish if nothing held it.
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the writer's open waits while the lease is held"
        );
        // The kernel has sent SIGIO to break the lease; we are still here.
        set_lease(&f, libc::F_UNLCK).unwrap();
        let waited = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        writer.join().unwrap();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
    }

    /// Opens, appends to and closes `p` in a loop until `stop`; returns the number of
    /// opens, the longest and the mean time an open took.
    fn writer_loop(p: PathBuf, stop: Arc<AtomicBool>) -> (u32, Duration, Duration) {
        let (mut n, mut max, mut total) = (0u32, Duration::ZERO, Duration::ZERO);
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
            let took = t.elapsed();
            f.write_all(b"x").unwrap();
            drop(f);
            n += 1;
            max = max.max(took);
            total += took;
        }
        (n, max, total / n.max(1))
    }

    #[test]
    fn a_writer_opening_the_file_during_a_loop_of_probes_is_not_held_up() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("busy");
        std::fs::write(&p, b"").unwrap();
        let run = Duration::from_millis(1000);

        // The same writer without probes, for comparison.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let (p, stop) = (p.clone(), stop.clone());
            move || writer_loop(p, stop)
        });
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
        let (opens0, max0, mean0) = writer.join().unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let writer = std::thread::spawn({
            let (p, stop) = (p.clone(), stop.clone());
            move || writer_loop(p, stop)
        });
        let (mut open, mut not_open, mut probes) = (0u32, 0u32, 0u32);
        let t = Instant::now();
        while t.elapsed() < run {
            match probe_path(&p) {
                Writers::Open => open += 1,
                Writers::NotOpen => not_open += 1,
                other => panic!("{other:?}"),
            }
            probes += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let (opens, max, mean) = writer.join().unwrap();
        eprintln!(
            "alone: {opens0} writer opens, mean {mean0:?}, max {max0:?}; with {probes} probes \
             ({open} open, {not_open} not open): {opens} writer opens, mean {mean:?}, max {max:?}"
        );
        assert!(open > 0 && not_open > 0, "the loops overlapped");
        // A writer stuck behind a lease would wait up to fs.lease-break-time (45 s);
        // the bound leaves room for a loaded machine's scheduling.
        assert!(max < Duration::from_millis(500), "writer open took {max:?}");
    }

    #[test]
    fn what_the_probe_cannot_tell_is_unknown() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let missing = probe_path(&dir.path().join("missing"));
        assert!(
            matches!(&missing, Writers::Unknown(Unknown::Io(e)) if e.kind() == io::ErrorKind::NotFound),
            "{missing:?}"
        );
        std::fs::write(dir.path().join("target"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("target"), dir.path().join("link")).unwrap();
        let link = probe_path(&dir.path().join("link"));
        assert!(
            matches!(&link, Writers::Unknown(Unknown::Io(e)) if e.raw_os_error() == Some(libc::ELOOP)),
            "{link:?}"
        );
        assert!(matches!(
            probe_beneath(dir.path(), b"link"),
            Writers::Unknown(Unknown::Io(_))
        ));
        let status = Command::new("mkfifo")
            .arg(dir.path().join("fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        let fifo = probe_path(&dir.path().join("fifo"));
        assert!(
            matches!(fifo, Writers::Unknown(Unknown::NotRegular)),
            "{fifo:?}"
        );
    }

    /// Run by [`a_probe_without_the_right_to_a_lease_is_unknown`] as another user.
    #[test]
    #[ignore = "a helper run by another test as an unprivileged user"]
    fn probe_as_child() {
        let Some(p) = std::env::var_os("FILETRIGGER_TEST_PROBE") else {
            return;
        };
        println!("answer: {:?}", probe_path(Path::new(&p)));
    }

    #[test]
    fn a_probe_without_the_right_to_a_lease_is_unknown() {
        let _serial = serial();
        if euid() != 0 {
            eprintln!("skipped: needs root to run the probe as another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let p = dir.path().join("roots");
        std::fs::write(&p, b"x").unwrap();
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "writers::tests::probe_as_child",
                "--ignored",
                "--nocapture",
            ])
            .env("FILETRIGGER_TEST_PROBE", &p)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let answer = stdout
            .lines()
            .find(|l| l.starts_with("answer: "))
            .unwrap_or_else(|| {
                panic!(
                    "no answer: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert_eq!(answer, "answer: Unknown(NotPermitted)");
    }

    /// What notify's inotify backend reports, with the watcher's own configuration, for a
    /// writer and for a probe (the wiring relies on it): the writer's close is
    /// `Access(Close(Write))`; neither the writer's open nor the probe's open and close
    /// are reported at all (the kernel is not asked for them).
    #[test]
    fn notify_reports_a_writer_and_a_probe_as_expected() {
        let _serial = serial();
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, EventKind, ModifyKind,
        };
        use notify::{RecursiveMode, Watcher};

        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut w = notify::RecommendedWatcher::new(
            move |res| {
                let _ = tx.send(res);
            },
            crate::watch::config(),
        )
        .unwrap();
        w.watch(dir.path(), RecursiveMode::NonRecursive).unwrap();
        let p = dir.path().join("f");
        let events_until = |sentinel: &Path| {
            let mut kinds = Vec::new();
            loop {
                let ev: notify::Event = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
                if ev.paths.iter().any(|q| q == sentinel) {
                    return kinds;
                }
                if ev.paths.iter().any(|q| q == &p) {
                    kinds.push(ev.kind);
                }
            }
        };
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let close_write = EventKind::Access(AccessKind::Close(AccessMode::Write));

        let mut f = File::create(&p).unwrap();
        f.write_all(b"page 1").unwrap();
        drop(f);
        File::create(dir.path().join("s1")).unwrap();
        assert_eq!(
            events_until(&dir.path().join("s1")),
            vec![EventKind::Create(CreateKind::File), write, close_write]
        );

        assert!(is_not_open(&probe_path(&p)));
        File::create(dir.path().join("s2")).unwrap();
        assert_eq!(events_until(&dir.path().join("s2")), vec![]);

        // Reopened for appending, and truncated.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"page 2").unwrap();
        drop(f);
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        File::create(dir.path().join("s3")).unwrap();
        assert_eq!(
            events_until(&dir.path().join("s3")),
            vec![write, close_write, write, close_write]
        );
    }
}
