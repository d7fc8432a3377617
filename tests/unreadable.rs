//! Unreadable entries (issue 3, item 8): "permission denied for the service user: skipped
//! with one warning naming the path, retried on later scans, never blocking other files."
//!
//! The daemon runs as `nobody` (uid 65534), since mode bits deny root nothing; so these
//! tests need root to start it, and skip (with a message) without it. The site is handed
//! to that user; the files are written by root, readable by others unless a test says so.

// Helpers outside #[test] functions panic on failure too, as in tests/common.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

const NOBODY: u32 = 65534;

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A site that `nobody` can use: it owns the temporary directory, the watched directory
/// and the state directory.
fn site_for_nobody() -> Site {
    let site = Site::new();
    std::fs::create_dir_all(&site.state).unwrap();
    for p in [site.tmp.path(), &site.inbox, &site.state] {
        chown(p, NOBODY);
    }
    site
}

/// Starts the daemon as `nobody`, with a full rescan every second.
fn daemon_as_nobody(site: &Site) -> Daemon {
    let mut env = site.env(SETTLE);
    env.push(("FILETRIGGER__WATCH__RESCAN_INTERVAL_S".into(), "1".into()));
    Daemon::start_as(site.tmp.path(), &env, NOBODY, NOBODY)
}

/// Log lines at WARN level whose `path` field is exactly `path`.
fn warnings_naming(log: &str, path: &Path) -> usize {
    let want = path.display().to_string();
    log.lines()
        .filter(|l| l.contains(" WARN "))
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.strip_prefix("path=") == Some(want.as_str()))
        })
        .count()
}

fn full_scans(d: &Daemon) -> usize {
    d.log().matches("full scan walked the tree").count()
}

/// Waits until `n` more full scans than now have walked the tree.
fn wait_for_scans(d: &Daemon, n: usize) {
    let target = full_scans(d) + n;
    wait_for("periodic rescans", WAIT, || full_scans(d) >= target);
}

/// Unreadable from the start (found by the start-up scan) and made unreadable while the
/// daemon runs (found by the watcher): a directory with mode 000, one with read but no
/// search permission (listed, but its entries cannot be stat'ed), and files with mode 000.
/// The readable files around them are offered, each once; each unreadable path gets one
/// warning however many rescans see it; once readable again, each file in them is
/// offered once. Would fail if an unreadable file were indexed (then offered without
/// content, and never again once readable: its version does not change with chmod), if
/// a poll answered 5xx or stopped at it, if the warning came on every scan, or if a
/// later scan did not retry.
#[test]
fn unreadable_entries_are_skipped_with_one_warning_each_and_offered_once_readable() {
    needs_root!("run the daemon as uid 65534 (nobody)");
    let site = site_for_nobody();
    let inbox = &site.inbox;
    // Among readable files, in the same directories, before and after them in name order.
    let mut readable = strings(&["a.txt", "m.txt", "z.txt", "open/a.txt", "open/z.txt"]);
    for r in &readable {
        write_direct(inbox, r, r.as_bytes());
    }
    for f in ["locked/in.txt", "locked/deeper/in2.txt", "noexec/in.txt"] {
        write_direct(inbox, f, f.as_bytes());
    }
    write_direct(inbox, "m-secret.txt", b"secret");
    write_direct(inbox, "open/n-secret.txt", b"secret too");
    // Readable, though not by everyone: through the group (the kernel is asked), and as
    // the owner (the mode bits say so).
    write_direct(inbox, "group-only.txt", b"group");
    std::os::unix::fs::chown(inbox.join("group-only.txt"), Some(0), Some(NOBODY)).unwrap();
    chmod(&inbox.join("group-only.txt"), 0o640);
    write_direct(inbox, "owner-only.txt", b"owner");
    chown(&inbox.join("owner-only.txt"), NOBODY);
    chmod(&inbox.join("owner-only.txt"), 0o400);
    readable.extend(strings(&["group-only.txt", "owner-only.txt"]));
    let locked = [
        (inbox.join("locked"), 0o000),
        (inbox.join("noexec"), 0o644),
        (inbox.join("m-secret.txt"), 0o000),
        (inbox.join("open/n-secret.txt"), 0o000),
    ];
    for (p, mode) in &locked {
        chmod(p, *mode);
    }
    let d = daemon_as_nobody(&site);
    let mut p = replay(&d);
    p.drain(readable.len(), WAIT);
    for g in &p.got {
        assert!(
            g.body.get("contentOmitted").is_none(),
            "offered unreadable: {}",
            g.body
        );
    }
    assert_exactly_once(&p.got, &readable);

    // While it runs: new readable files, and a new file nobody may read.
    for r in ["b.txt", "open/b.txt"] {
        write_direct(inbox, r, r.as_bytes());
        readable.push(r.to_string());
    }
    let late = inbox.join("open/late-secret.txt");
    std::fs::write(&late, b"late secret").unwrap();
    chmod(&late, 0o000);
    p.drain(readable.len(), WAIT);
    wait_for_scans(&d, 3);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_exactly_once(&p.got, &readable);

    // One warning per unreadable path, after several scans.
    let log = d.log();
    let mut named: Vec<&Path> = locked.iter().map(|(p, _)| p.as_path()).collect();
    named.push(&late);
    for path in &named {
        assert_eq!(
            warnings_naming(&log, path),
            1,
            "warnings naming {}:\n{log}",
            path.display()
        );
    }

    // Readable again: offered by the next scan (or event), each once.
    for (p, _) in &locked {
        chmod(p, 0o755);
    }
    chmod(&late, 0o644);
    let back = strings(&[
        "locked/in.txt",
        "locked/deeper/in2.txt",
        "noexec/in.txt",
        "m-secret.txt",
        "open/n-secret.txt",
        "open/late-secret.txt",
    ]);
    let n = p.got.len();
    p.drain(n + back.len(), WAIT);
    assert_exactly_once(&p.got[n..], &back);
    for g in &p.got[n..] {
        assert!(g.body.get("contentOmitted").is_none(), "{}", g.body);
    }
    wait_for_scans(&d, 2);
    p.expect_nothing_more(&site, quiet(SETTLE));
    let log = d.log();
    for path in &named {
        assert_eq!(warnings_naming(&log, path), 1, "{}", path.display());
    }
    assert_eq!(
        indexed(&d),
        (readable.len() + back.len()) as u64 + site.fences()
    );
}

/// A file or directory that turns unreadable after it was indexed. A poll reaching such
/// a file neither fails (a 5xx would hold the cursor there for good) nor skips it (its
/// version does not change with chmod, so it would never come again): it is offered with
/// its metadata and `contentOmitted`, and the file after it follows. A directory that
/// cannot be listed any more does not count as deleted, so its files are not offered
/// again once it can. Would fail on a 5xx, on a poll that stops at the file, or on a
/// deletion check that dropped the unlisted entries.
#[test]
fn entries_that_turn_unreadable_after_indexing_never_block_and_are_not_offered_twice() {
    needs_root!("run the daemon as uid 65534 (nobody)");
    let site = site_for_nobody();
    let inbox = &site.inbox;
    let d = daemon_as_nobody(&site);
    let mut p = Poller::start(&d.trigger_url());
    let files = strings(&["1-first.txt", "2-turns-secret.txt", "3-after.txt"]);
    let dir_files = strings(&["dir/x.txt", "dir/y/z.txt"]);
    // In this order, each indexed before the next is written.
    for (i, f) in files.iter().chain(&dir_files).enumerate() {
        write_direct(inbox, f, f.as_bytes());
        wait_for("indexed", WAIT, || indexed(&d) == i as u64 + 1);
    }
    chmod(&inbox.join("2-turns-secret.txt"), 0o000);
    chmod(&inbox.join("dir"), 0o000);
    let mut all = files.clone();
    all.extend(dir_files.iter().cloned());
    p.drain(all.len(), WAIT);
    assert_exactly_once(&p.got, &all);
    let secret = p
        .got
        .iter()
        .find(|g| g.path == "2-turns-secret.txt")
        .unwrap();
    assert!(
        secret.body["contentOmitted"]
            .as_str()
            .is_some_and(|why| why.contains("ermission denied")),
        "{}",
        secret.body
    );
    assert!(secret.body.get("content").is_none(), "{}", secret.body);
    assert_eq!(p.got[2].path, "3-after.txt");
    assert_eq!(p.got[2].content(), b"3-after.txt");

    wait_for_scans(&d, 3);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(
        indexed(&d),
        all.len() as u64 + site.fences(),
        "unlisted entries were dropped"
    );
    let log = d.log();
    assert_eq!(warnings_naming(&log, &inbox.join("dir")), 1, "{log}");

    chmod(&inbox.join("2-turns-secret.txt"), 0o644);
    chmod(&inbox.join("dir"), 0o755);
    wait_for_scans(&d, 2);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), all.len() as u64 + site.fences());
}
