//! Issue 10, black-box: a file still open for writing is never offered half-written,
//! however long its writer pauses; a writer's close gets it offered after the short quiet
//! time (`watch.settle_after_close_ms`); a writer that never closes is offered after
//! `watch.max_open_hold_s`, marked `"stillOpen": true` and logged once; a file already
//! open when the daemon starts is held while the lease probe can tell, and falls back to
//! `watch.settle_ms` where it cannot (the daemon as `nobody`).
//!
//! Pollers follow Location and Retry-After like the engine, with `Retry-After: 20` scaled
//! to 200 ms (`common::MS_PER_RETRY_SECOND`): a poll every 200 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Daemon, Got, Poller, Site};

const NOBODY: u32 = 65534;
/// A poll every 200 ms.
const POLL_EVERY: (&str, &str) = ("FILETRIGGER__TRIGGER__RETRY_AFTER_S", "20");

/// `n` bytes of `b` followed by newlines, as the helper script writes them.
fn lines(byte: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| if i % 2 == 0 { byte } else { b'\n' })
        .collect()
}

fn body_size(g: &Got) -> u64 {
    g.body["size"].as_u64().unwrap()
}

fn still_open(g: &Got) -> Option<bool> {
    g.body.get("stillOpen").map(|v| v.as_bool().unwrap())
}

/// Asserts `g` is `path` with exactly `content`, not marked still open.
fn assert_complete(g: &Got, path: &str, content: &[u8]) {
    assert_eq!(g.path, path);
    assert_eq!(body_size(g), content.len() as u64, "size of {path}");
    assert!(g.content() == content, "content of {path}");
    assert_eq!(still_open(g), None, "stillOpen is absent: {}", g.body);
}

/// A helper process that opens `path` for writing, writes 1,000 bytes ("a\n"...), waits
/// `pause_s`, writes 1,000 more ("b\n"...) and closes it.
fn slow_writer(path: &Path, pause_s: u64) -> Child {
    let script = format!(
        "exec 3>\"$1\"; yes a | head -c 1000 >&3; sleep {pause_s}; yes b | head -c 1000 >&3; exec 3>&-"
    );
    Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(path)
        .spawn()
        .unwrap()
}

fn wait_size(path: &Path, size: u64) {
    common::wait_for("the helper's first write", Duration::from_secs(10), || {
        std::fs::metadata(path).is_ok_and(|m| m.len() == size)
    });
}

fn slow_content() -> Vec<u8> {
    let mut want = lines(b'a', 1000);
    want.extend(lines(b'b', 1000));
    want
}

#[test]
fn issue10_a_writer_pausing_4_s_is_offered_once_with_its_complete_content() {
    // Before issue 10: a 200 with size 1000 at about 2 s, then another with size 2000.
    let site = Site::new();
    let d = site.daemon(2000, &[POLL_EVERY]);
    let mut p = Poller::start(&d.trigger_url());
    let path = site.inbox.join("scan.pdf");
    let started = Instant::now();
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&lines(b'a', 1000)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    f.write_all(&lines(b'b', 1000)).unwrap();
    drop(f);
    let closed = started.elapsed();
    p.drain(1, Duration::from_secs(10));
    assert_eq!(p.got.len(), 1, "nothing offered: {}", d.log());
    assert_complete(&p.got[0], "scan.pdf", &slow_content());
    assert!(
        started.elapsed() < closed + Duration::from_millis(1900),
        "offered after the short quiet time, not after settle_ms"
    );
    p.expect_nothing_more(&site, Duration::from_secs(3));
}

#[test]
fn a_writer_holding_a_file_past_the_hold_limit_is_offered_marked_and_logged_once() {
    let site = Site::new();
    let d = site.daemon(
        2000,
        &[POLL_EVERY, ("FILETRIGGER__WATCH__MAX_OPEN_HOLD_S", "5")],
    );
    let mut p = Poller::start(&d.trigger_url());
    let path = site.inbox.join("app.log");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&lines(b'a', 1000)).unwrap();
    let opened = Instant::now();
    p.drain(1, Duration::from_secs(15));
    assert_eq!(p.got.len(), 1, "nothing offered: {}", d.log());
    let held = opened.elapsed();
    assert!(held >= Duration::from_secs(5), "offered after {held:?}");
    let g = &p.got[0];
    assert_eq!(body_size(g), 1000);
    assert_eq!(g.content(), lines(b'a', 1000));
    assert_eq!(still_open(g), Some(true), "{}", g.body);
    let warned = || {
        d.log()
            .matches("offered while still open for writing")
            .count()
    };
    assert_eq!(warned(), 1, "{}", d.log());
    assert!(d.log().contains("app.log"), "the warning names the file");

    // The writer pauses 30 s in all, then writes more and closes.
    std::thread::sleep(Duration::from_secs(30).saturating_sub(opened.elapsed()));
    f.write_all(&lines(b'b', 1000)).unwrap();
    drop(f);
    p.drain(2, Duration::from_secs(5));
    assert_eq!(p.got.len(), 2, "{}", d.log());
    assert_complete(&p.got[1], "app.log", &slow_content());
    p.expect_nothing_more(&site, Duration::from_secs(1));
    assert_eq!(warned(), 1, "one warning only: {}", d.log());
}

#[test]
fn a_write_and_close_is_offered_before_a_file_that_needs_the_settle_time() {
    let site = Site::new();
    // Found by the start-up scan: no close was seen, so it waits settle_ms (3 s).
    std::fs::write(site.inbox.join("scanned.txt"), b"found by a scan").unwrap();
    let d = site.daemon(3000, &[POLL_EVERY]);
    let mut p = Poller::start(&d.trigger_url());
    let written = Instant::now();
    std::fs::write(site.inbox.join("closed.txt"), b"written and closed").unwrap();
    p.drain(1, Duration::from_secs(10));
    let first = written.elapsed();
    p.drain(2, Duration::from_secs(10));
    assert_eq!(p.paths(), vec!["closed.txt", "scanned.txt"], "{}", d.log());
    assert_complete(&p.got[0], "closed.txt", b"written and closed");
    assert!(
        first < Duration::from_millis(2000),
        "offered after {first:?}"
    );
}

#[test]
fn a_hard_link_into_the_folder_is_offered_without_waiting_for_a_close_that_never_comes() {
    // A hard link sends a create event and no write or close. It must not be held as open
    // for writing until `max_open_hold_s` (an hour): the probe finds no writer, so it is
    // offered after the short quiet time, before a file found by the start-up scan.
    let site = Site::new();
    let outside = site.tmp.path().join("outside.txt");
    std::fs::write(&outside, b"linked in").unwrap();
    std::fs::write(site.inbox.join("scanned.txt"), b"found by a scan").unwrap();
    let d = site.daemon(3000, &[POLL_EVERY]);
    let mut p = Poller::start(&d.trigger_url());
    std::fs::hard_link(&outside, site.inbox.join("linked.txt")).unwrap();
    p.drain(2, Duration::from_secs(20));
    assert_eq!(p.paths(), vec!["linked.txt", "scanned.txt"], "{}", d.log());
    assert_complete(&p.got[0], "linked.txt", b"linked in");
}

#[test]
fn a_writer_that_closes_and_reopens_at_once_to_append_is_offered_once_complete() {
    let site = Site::new();
    let d = site.daemon(2000, &[POLL_EVERY]);
    let mut p = Poller::start(&d.trigger_url());
    let path = site.inbox.join("report.csv");
    std::fs::write(&path, lines(b'a', 1000)).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // within settle_after_close_ms (300)
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&lines(b'b', 1000)).unwrap();
    drop(f);
    p.drain(1, Duration::from_secs(10));
    assert_eq!(p.got.len(), 1, "{}", d.log());
    assert_complete(&p.got[0], "report.csv", &slow_content());
    p.expect_nothing_more(&site, Duration::from_secs(3));
}

#[test]
fn a_rename_into_place_cp_and_rsync_are_each_offered_once_complete() {
    let site = Site::new();
    let d = site.daemon(2000, &[POLL_EVERY]);
    let mut p = Poller::start(&d.trigger_url());
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let src = site.tmp.path().join("source.bin");
    std::fs::write(&src, &big).unwrap();
    site.put("renamed.bin", &big);
    let status = Command::new("cp")
        .arg(&src)
        .arg(site.inbox.join("cp.bin"))
        .status()
        .unwrap();
    assert!(status.success());
    // rsync writes a hidden temporary name (excluded by `.*`) and renames it into place.
    let mut want = vec!["cp.bin", "renamed.bin"];
    if common::tool_or_skip("rsync", "writers::a_rename_into_place_cp_and_rsync_...") {
        let status = Command::new("rsync")
            .arg(&src)
            .arg(site.inbox.join("rsync.bin"))
            .status()
            .unwrap();
        assert!(status.success());
        want.push("rsync.bin");
    }
    p.drain(want.len(), Duration::from_secs(10));
    let mut paths = p.paths();
    paths.sort();
    assert_eq!(paths, want, "{}", d.log());
    for g in &p.got.clone() {
        assert_complete(g, &g.path, &big);
    }
    p.expect_nothing_more(&site, Duration::from_secs(3));
}

#[test]
fn a_file_truncated_and_rewritten_and_one_appended_after_its_offer_are_new_complete_versions() {
    let site = Site::new();
    let d = site.daemon(2000, &[POLL_EVERY]);
    let mut p = Poller::start(&d.trigger_url());
    let path = site.inbox.join("t.txt");
    std::fs::write(&path, lines(b'a', 1000)).unwrap();
    p.drain(1, Duration::from_secs(10));
    assert_complete(&p.got[0], "t.txt", &lines(b'a', 1000));

    // Truncated and rewritten slowly: a pause longer than settle_ms mid-way.
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&lines(b'b', 500)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    f.write_all(&lines(b'c', 500)).unwrap();
    drop(f);
    let mut want = lines(b'b', 500);
    want.extend(lines(b'c', 500));
    p.drain(2, Duration::from_secs(10));
    assert_eq!(p.got.len(), 2, "{}", d.log());
    assert_complete(&p.got[1], "t.txt", &want);

    // Reopened for appending after it was offered.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&lines(b'd', 1000)).unwrap();
    drop(f);
    want.extend(lines(b'd', 1000));
    p.drain(3, Duration::from_secs(10));
    assert_eq!(p.got.len(), 3, "{}", d.log());
    assert_complete(&p.got[2], "t.txt", &want);
    p.expect_nothing_more(&site, Duration::from_secs(3));
}

#[test]
fn a_file_open_for_writing_before_the_start_is_offered_once_when_its_writer_closes() {
    needs_root!("run a helper as another process whose file the probe may lease");
    let site = Site::new();
    let path = site.inbox.join("early.dat");
    let mut writer = slow_writer(&path, 7);
    wait_size(&path, 1000);
    let d = site.daemon(2000, &[POLL_EVERY]);
    let mut p = Poller::start(&d.trigger_url());
    p.drain(1, Duration::from_secs(15));
    assert!(writer.wait().unwrap().success());
    assert_eq!(p.got.len(), 1, "{}", d.log());
    assert_complete(&p.got[0], "early.dat", &slow_content());
    p.expect_nothing_more(&site, Duration::from_secs(3));
}

#[test]
fn without_the_probe_a_file_open_before_the_start_falls_back_to_the_settle_time() {
    needs_root!("run the daemon as uid 65534, without the right to a lease");
    let site = Site::new();
    for p in [site.tmp.path(), &site.inbox] {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::fs::create_dir_all(&site.state).unwrap();
    std::os::unix::fs::chown(&site.state, Some(NOBODY), Some(NOBODY)).unwrap();
    // Owned by root: `nobody` may read it but not take a lease on it.
    let path: PathBuf = site.inbox.join("early.dat");
    let mut writer = slow_writer(&path, 8);
    wait_size(&path, 1000);
    let mut env = site.env(2000);
    env.push((POLL_EVERY.0.into(), POLL_EVERY.1.into()));
    let d = Daemon::start_as(site.tmp.path(), &env, NOBODY, NOBODY);
    let mut p = Poller::start(&d.trigger_url());
    // The documented fallback: quiet for settle_ms is complete, as before issue 10.
    p.drain(1, Duration::from_secs(8));
    assert_eq!(p.got.len(), 1, "{}", d.log());
    assert_complete(&p.got[0], "early.dat", &lines(b'a', 1000));
    assert!(
        d.log()
            .contains("cannot tell whether files are open for writing"),
        "{}",
        d.log()
    );
    // Its writer's close is still seen: the whole file follows as a new version.
    p.drain(2, Duration::from_secs(15));
    assert!(writer.wait().unwrap().success());
    assert_eq!(p.got.len(), 2, "{}", d.log());
    assert_complete(&p.got[1], "early.dat", &slow_content());
}

#[test]
fn poll_mode_with_two_scans_offers_a_file_once_two_scans_saw_it_unchanged() {
    let site = Site::new();
    let d = site.daemon(
        1000,
        &[
            POLL_EVERY,
            ("FILETRIGGER__WATCH__MODE", "poll"),
            ("FILETRIGGER__WATCH__POLL_INTERVAL_S", "1"),
            ("FILETRIGGER__WATCH__POLL_CONFIRM", "two_scans"),
        ],
    );
    let mut p = Poller::start(&d.trigger_url());
    let path = site.inbox.join("share.dat");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&lines(b'a', 1000)).unwrap();
    // Growing at every scan: never seen unchanged by two scans a second apart.
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        f.write_all(&lines(b'a', 1000)).unwrap();
    }
    p.poll();
    assert!(p.got.is_empty(), "offered while growing: {:?}", p.got);
    drop(f);
    p.drain(1, Duration::from_secs(10));
    assert_eq!(p.got.len(), 1, "{}", d.log());
    assert_complete(&p.got[0], "share.dat", &lines(b'a', 5000));
    assert!(
        d.log().contains("a second scan confirms them"),
        "{}",
        d.log()
    );
}
