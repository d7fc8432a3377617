//! Restarts, SIGTERM and `kill -9`: nothing indexed is offered again along a cursor
//! chain, nothing is lost, and cursors from before a restart keep working.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const SETTLE: u64 = 150;
const WAIT: Duration = Duration::from_secs(60);

#[test]
fn after_sigterm_the_old_cursor_works_and_files_created_while_stopped_come_once() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    // A second workflow that made its first call but has seen nothing yet.
    let idle = Poller::start(&d.trigger_url());
    let before: Vec<String> = (0..3).map(|i| format!("before-{i}.txt")).collect();
    for b in &before {
        site.put(b, b"1");
    }
    p.drain(3, WAIT);
    assert!(d.terminate().success(), "SIGTERM is a clean exit");

    let during: Vec<String> = (0..4).map(|i| format!("while-stopped/{i}.txt")).collect();
    for w in &during {
        site.put(w, b"2");
    }
    let d = site.daemon(SETTLE, &[]);
    p.next = d.rebase(&p.next);
    let n = p.got.len();
    p.drain(n + 4, WAIT);
    assert_exactly_once(&p.got[n..], &during);
    p.expect_nothing_more(&site, Duration::from_millis(SETTLE * 4));

    let mut idle = Poller::at(d.rebase(&idle.next));
    let all: Vec<String> = before.iter().chain(&during).cloned().collect();
    idle.drain(7, WAIT);
    assert_exactly_once(&idle.got, &all);
}

/// How many `kill -9` the crash test does: 3 in the normal suite; the long version is
/// `FILETRIGGER_TEST_KILLS=50 cargo test --release --test durability kill_9`.
fn kills_wanted() -> usize {
    std::env::var("FILETRIGGER_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
fn kill_9_during_a_burst_of_writes_loses_nothing_and_repeats_nothing() {
    let site = Arc::new(Site::new());
    let wanted = kills_wanted();
    let total = 400.max(wanted * 40);
    let want: Vec<String> = (0..total)
        .map(|i| format!("k/{:02}/f{i:04}.dat", i % 7))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let site = site.clone();
        let want = want.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for (i, w) in want.iter().enumerate() {
                site.put(w, format!("payload {i}").as_bytes());
                std::thread::sleep(Duration::from_millis(4));
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let mut kills = 0;
    // Poll along one chain, killing the daemon at moments that vary from round to round.
    while !done.load(Ordering::SeqCst) || kills < wanted {
        // Kill at moments that vary from round to round: 150 ms to about 700 ms after a start.
        let until = Instant::now() + Duration::from_millis(150 + (kills as u64 * 137) % 550);
        while Instant::now() < until {
            let r = p.poll();
            if r.retry_after() > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        d.kill9();
        kills += 1;
        d = site.daemon(SETTLE, &[]);
        p.next = d.rebase(&p.next);
    }
    writer.join().unwrap();
    p.drain(total, WAIT);
    assert!(kills >= wanted);
    eprintln!(
        "survived {kills} kill -9, {} files, 0 lost, 0 repeated",
        p.got.len()
    );
    assert_exactly_once(&p.got, &want);
    for g in &p.got {
        let i: usize = g
            .path
            .rsplit('f')
            .next()
            .unwrap()
            .trim_end_matches(".dat")
            .parse()
            .unwrap();
        assert_eq!(g.content(), format!("payload {i}").as_bytes(), "{}", g.path);
    }
    p.expect_nothing_more(&site, Duration::from_millis(SETTLE * 4));
}

#[test]
fn a_restart_does_not_re_offer_files_to_a_new_first_call() {
    let site = Site::new();
    for i in 0..5 {
        site.put(&format!("old-{i}.txt"), b"old");
    }
    let d = site.daemon(SETTLE, &[]);
    wait_for("indexed", WAIT, || d.health()["filesIndexed"] == 5);
    d.kill9();
    let d = site.daemon(SETTLE, &[]);
    assert_eq!(d.health()["filesIndexed"], 5, "the index survived kill -9");
    let mut p = Poller::start(&d.trigger_url());
    p.expect_nothing_more(&site, Duration::from_millis(SETTLE * 4));
    site.put("new.txt", b"new");
    p.drain(1, WAIT);
    assert_eq!(p.paths(), vec!["new.txt"]);
}

#[test]
fn the_watched_directory_deleted_or_unreadable_is_survived_and_resumed() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[("FILETRIGGER__WATCH__RESCAN_INTERVAL_S", "1")]);
    let mut p = Poller::start(&d.trigger_url());
    site.put("one.txt", b"1");
    p.drain(1, WAIT);

    // Moved away (as an unmount or a careless rename would): unhealthy, still serving.
    let aside = site.tmp.path().join("inbox.moved");
    std::fs::rename(&site.inbox, &aside).unwrap();
    wait_for("503", WAIT, || {
        get(&format!("{}/healthz", d.base())).unwrap().status == 503
    });
    assert_eq!(d.health()["status"], "watched_dir_unavailable");
    assert_eq!(p.poll().status, 202, "polls are still answered");

    // Re-created with new files, and the old one back: healthy again, new files offered,
    // the old file not offered a second time.
    std::fs::rename(&aside, &site.inbox).unwrap();
    site.put("two.txt", b"2");
    site.put("deep/three.txt", b"3");
    wait_for("healthy", WAIT, || {
        get(&format!("{}/healthz", d.base())).unwrap().status == 200
    });
    p.drain(3, WAIT);
    assert_exactly_once(
        &p.got,
        &["one.txt".into(), "two.txt".into(), "deep/three.txt".into()],
    );
    // Files created now are seen through the watch again.
    site.put("four.txt", b"4");
    p.drain(4, WAIT);
    assert_eq!(p.paths().last().unwrap(), "four.txt");
    p.expect_nothing_more(&site, Duration::from_millis(1500));
    assert!(d.log().contains("unavailable") && d.log().contains("is back"));
}

#[test]
fn the_watched_directory_deleted_and_re_created_is_watched_again_from_scratch() {
    let site = Site::new();
    // No periodic rescan within the test: what arrives later comes through the watch.
    let d = site.daemon(SETTLE, &[("FILETRIGGER__WATCH__RESCAN_INTERVAL_S", "3600")]);
    let mut p = Poller::start(&d.trigger_url());
    site.put("old/one.txt", b"1");
    site.put("two.txt", b"2");
    p.drain(2, WAIT);

    // Deleted with everything in it: unhealthy, still serving.
    std::fs::remove_dir_all(&site.inbox).unwrap();
    wait_for("503", WAIT, || {
        d.health()["status"] == "watched_dir_unavailable"
    });
    assert_eq!(p.poll().status, 202, "polls are still answered");

    // Re-created (a new inode: the old watch is useless) with new files, one of them under
    // a name used before: each offered once, as new versions.
    std::fs::create_dir(&site.inbox).unwrap();
    wait_for("healthy", WAIT, || d.health()["status"] == "ok");
    site.put("two.txt", b"two, again");
    site.put("new/three.txt", b"3");
    p.drain(4, WAIT);
    assert_eq!(p.paths()[2..].len(), 2);
    let mut later: Vec<String> = p.paths()[2..].to_vec();
    later.sort();
    assert_eq!(later, vec!["new/three.txt", "two.txt"]);
    // Seen through the new directory's watch, and the deleted files' entries gone.
    site.put("four.txt", b"4");
    p.drain(5, WAIT);
    assert_eq!(p.paths().last().unwrap(), "four.txt");
    p.expect_nothing_more(&site, Duration::from_millis(1500));
}

#[test]
fn retention_drops_old_entries_without_offering_their_files_again() {
    let site = Site::new();
    let d = site.daemon(
        SETTLE,
        &[
            ("FILETRIGGER__STATE__RETENTION", "2s"),
            ("FILETRIGGER__WATCH__RESCAN_INTERVAL_S", "1"),
        ],
    );
    site.put("old.txt", b"old");
    wait_for("indexed", WAIT, || d.health()["filesIndexed"] == 1);
    wait_for("pruned", WAIT, || d.health()["filesIndexed"] == 0);
    site.put("new.txt", b"new");
    // A cursor older than the retention continues from the oldest entry kept.
    let mut replay = Poller::at(format!(
        "{}?triggerState=2000-01-01T00:00:00Z",
        d.trigger_url()
    ));
    replay.drain(1, WAIT);
    assert_eq!(replay.paths(), vec!["new.txt"]);
    // old.txt is still on disk; rescans run every second and must not offer it again.
    replay.expect_nothing_more(&site, Duration::from_millis(2500));
}

#[test]
fn an_unmounted_share_showing_an_empty_mount_point_does_not_cause_re_offers() {
    needs_root!("mount a tmpfs over the watched directory");
    let site = Site::new();
    let d = site.daemon(SETTLE, &[("FILETRIGGER__WATCH__RESCAN_INTERVAL_S", "1")]);
    let mut p = Poller::start(&d.trigger_url());
    let want: Vec<String> = (0..5).map(|i| format!("share/f{i}.txt")).collect();
    for w in &want {
        site.put(w, b"on the share");
    }
    p.drain(5, WAIT);
    // Hide the tree behind an empty file system, as an unmount leaves an empty mount
    // point (needs root: mount(8)).
    let inbox = site.inbox.display().to_string();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", &inbox])
        .status()
        .expect("mount(8) is needed");
    assert!(mounted.success(), "this test needs root to mount a tmpfs");
    let scans_before = d.log().matches("full scan walked").count();
    wait_for("two rescans of the empty tree", WAIT, || {
        d.log().matches("full scan walked").count() >= scans_before + 2
    });
    let unmounted = std::process::Command::new("umount")
        .arg(&inbox)
        .status()
        .unwrap();
    assert!(unmounted.success());
    assert_eq!(d.health()["filesIndexed"], 5, "the index kept its entries");
    p.expect_nothing_more(&site, Duration::from_millis(2500));
    assert_exactly_once(&p.got, &want);
}
