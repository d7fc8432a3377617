//! The state disk on a bad day: `state.dir` on a small tmpfs (mounted by the test, as root)
//! that fills up while the daemon runs, or is full or read-only when it starts. Running,
//! the daemon must say so (`/healthz` 503), keep its index intact, answer polls with
//! 200/202 or a 503 that asks to retry (never another error), and index what arrived
//! meanwhile once the disk takes writes again. Starting, it must exit 1 with one clear
//! line (systemd retries; exit 2 would be a configuration error and not retried).
//!
//! A read-only remount while the daemon runs cannot be staged here: the kernel refuses
//! it (EBUSY) while the index is open for writing; only its own error handling does it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A tmpfs mounted over a directory for the test, unmounted when dropped.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount(8) is needed");
        assert!(ok.success(), "this test needs root to mount a tmpfs");
        Tmpfs {
            at: at.to_path_buf(),
        }
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.at)
            .status()
            .unwrap();
        assert!(ok.success(), "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Fills the file system holding `dir` with one file, until it refuses more.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    path
}

fn status(d: &Daemon) -> (u16, String) {
    let r = get(&format!("{}/healthz", d.base())).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    (r.status, body["status"].as_str().unwrap_or("").to_string())
}

/// Polls `url` once; a 503 must carry Retry-After, anything but 200/202/503 fails the test.
fn poll_tolerating_503(url: &str) -> u16 {
    let r = get(url).unwrap();
    match r.status {
        200 | 202 => {}
        503 => assert!(
            r.header("retry-after").is_some(),
            "a 503 without Retry-After"
        ),
        other => panic!(
            "a poll during the outage answered {other}: {}",
            String::from_utf8_lossy(&r.body)
        ),
    }
    r.status
}

/// Puts files `prefix-0..n` with names long enough that their entries need new pages.
fn put_batch(site: &Site, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let rel = format!("{prefix}/{prefix}-{i:04}-{}.csv", "x".repeat(120));
            site.put(&rel, format!("{prefix} {i}\n").as_bytes());
            rel
        })
        .collect()
}

#[test]
fn a_state_disk_that_fills_up_is_reported_and_recovered_from_without_loss() {
    needs_root!("mount a small tmpfs as the state disk");
    let site = Site::new();
    let disk = Tmpfs::mount(&site.state, "2m");
    let d = site.daemon(100, &[]);
    let mut poller = Poller::start(&d.trigger_url());
    let mut want = put_batch(&site, "before", 20);
    poller.drain(want.len(), Duration::from_secs(30));
    assert_exactly_once(&poller.got, &want);

    // 1. The disk fills up: the next commits fail.
    let filler = fill(&site.state);
    let during_full = put_batch(&site, "full", 300);
    want.extend(during_full.iter().cloned());
    wait_for(
        "/healthz to report the failing index",
        Duration::from_secs(30),
        || status(&d) == (503, "index_failing".into()),
    );
    assert!(
        d.log().contains("index commit failed"),
        "no error logged:\n{}",
        d.log()
    );
    // Polls go on: the cursor chain so far answers from what is committed (202, or 200
    // when redb still fitted a small batch into pages it had freed before the disk
    // filled; or 503 while the store is being reopened), never an error of another kind.
    // Until one is answered (not a fixed number of tries: a loaded machine may spend a
    // while reopening the store). The poller's cursor is not moved here, so a file
    // answered now is still counted by its drain below.
    wait_for(
        "a poll answered while the disk is full",
        Duration::from_secs(30),
        || matches!(poll_tolerating_503(&poller.next), 200 | 202),
    );
    // A first call too: 202, or 503 with Retry-After when its cursor must be recorded. A
    // 202 hands out a cursor, which must then hold: checked once the disk takes writes.
    let first_call = get(&d.trigger_url()).unwrap();
    let late_starter = match first_call.status {
        202 => Some(Poller::at(first_call.location())),
        503 => {
            assert!(
                first_call.header("retry-after").is_some(),
                "a 503 without Retry-After"
            );
            None
        }
        other => panic!(
            "a first call during the outage answered {other}: {}",
            String::from_utf8_lossy(&first_call.body)
        ),
    };

    // Space returns: the index recovers by itself and offers what arrived meanwhile.
    std::fs::remove_file(&filler).unwrap();
    wait_for(
        "/healthz ok after space returned",
        Duration::from_secs(60),
        || status(&d).0 == 200,
    );
    poller.drain(want.len(), Duration::from_secs(60));
    assert_exactly_once(&poller.got, &want);
    assert!(
        d.log().contains("the index takes writes again"),
        "recovery not logged:\n{}",
        d.log()
    );
    // The cursor of a first call answered during the outage: it gets exactly the files
    // stamped after it, in the same order as the poller that was there all along.
    match late_starter {
        Some(mut late) => {
            let cursor = filetrigger::stamp::Stamp::parse(&decode(&cursor_of(&late.next))).unwrap();
            let after: Vec<String> = poller
                .got
                .iter()
                .filter(|g| filetrigger::stamp::Stamp::parse(&g.indexed_at).unwrap() > cursor)
                .map(|g| g.path.clone())
                .collect();
            late.drain(after.len(), Duration::from_secs(60));
            assert_eq!(
                late.paths(),
                after,
                "the first call's cursor during the outage"
            );
        }
        // Refused during the outage: a first call now is answered.
        None => assert_eq!(get(&d.trigger_url()).unwrap().status, 202),
    }

    // No corruption: a restart opens the same store and offers nothing again.
    let code = d.terminate();
    assert!(code.success(), "exit status {code:?}");
    let d = site.daemon(100, &[]);
    let mut again = Poller::at(d.rebase(&poller.next));
    again.expect_nothing_more(&site, Duration::from_millis(1500));
    let late = put_batch(&site, "after", 5);
    again.drain(late.len(), Duration::from_secs(30));
    assert_exactly_once(&again.got, &late);
    drop(d);
    drop(disk);
}

/// The exit and the one error line of a daemon that cannot open its index.
fn refused_start(site: &Site) -> String {
    let out = run_to_exit(site.tmp.path(), &[], &site.env(100));
    assert_eq!(out.status.code(), Some(1), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let index = site.state.join("index.redb").display().to_string();
    assert!(
        out.stderr.contains(&index),
        "the error does not name {index}: {}",
        out.stderr
    );
    out.stderr
}

#[test]
fn a_read_only_or_full_state_disk_at_start_up_is_a_clear_error_and_nothing_is_lost() {
    needs_root!("mount a small tmpfs as the state disk");
    let site = Site::new();
    let disk = Tmpfs::mount(&site.state, "2m");
    let d = site.daemon(100, &[]);
    let mut poller = Poller::start(&d.trigger_url());
    let first = put_batch(&site, "first", 10);
    poller.drain(first.len(), Duration::from_secs(30));
    assert_exactly_once(&poller.got, &first);
    assert!(d.terminate().success());

    // Read-only (as after disk errors): a clear error, exit 1.
    disk.remount("ro");
    let err = refused_start(&site);
    assert!(err.contains("Read-only file system"), "{err}");
    disk.remount("rw");

    // Full, and the index gone (a fresh state.dir on a full disk): the same.
    let saved = site.tmp.path().join("saved.redb");
    std::fs::copy(site.state.join("index.redb"), &saved).unwrap();
    std::fs::remove_file(site.state.join("index.redb")).unwrap();
    let filler = fill(&site.state);
    let err = refused_start(&site);
    assert!(err.contains("No space left on device"), "{err}");
    std::fs::remove_file(filler).unwrap();

    // Space back and the store restored: the old cursor chain goes on without repeats.
    std::fs::copy(&saved, site.state.join("index.redb")).unwrap();
    let d = site.daemon(100, &[]);
    let mut again = Poller::at(d.rebase(&poller.next));
    let later = put_batch(&site, "later", 5);
    again.drain(later.len(), Duration::from_secs(30));
    again.expect_nothing_more(&site, Duration::from_millis(1500));
    assert_exactly_once(&again.got, &later);
    drop(d);
    drop(disk);
}
