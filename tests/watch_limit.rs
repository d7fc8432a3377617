//! The inotify watch limit exhausted: a clear warning, `/healthz` says "degraded", the
//! unwatched part of the tree is covered by polling scans, nothing is lost, and once
//! watches are available again the daemon watches everything again.
//!
//! Needs root: it lowers `fs.inotify.max_user_watches` (per user, so for every root
//! process) for the length of the test, and restores it. It is the only test in its
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

const SYSCTL: &str = "/proc/sys/fs/inotify/max_user_watches";

/// Inotify watches held by all processes now (lines `inotify wd:` in /proc/*/fdinfo).
fn watches_in_use() -> usize {
    let mut n = 0;
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(text) = std::fs::read_to_string(fd.path()) {
                n += text
                    .lines()
                    .filter(|l| l.starts_with("inotify wd:"))
                    .count();
            }
        }
    }
    n
}

#[test]
fn past_the_watch_limit_polling_scans_cover_the_tree_until_watches_return() {
    needs_root!("lower the sysctl fs.inotify.max_user_watches");
    let site = Site::new();
    // Ten directories before the start; the daemon may add only a few watches.
    let before: Vec<String> = (0..10).map(|i| format!("d{i}/early.txt")).collect();
    for b in &before {
        site.put(b, b"early");
    }
    let restore = Sysctl::set(SYSCTL, &(watches_in_use() + 4).to_string());
    let d = site.daemon(
        200,
        &[
            ("FILETRIGGER__WATCH__POLL_INTERVAL_S", "1"),
            ("FILETRIGGER__WATCH__RESCAN_INTERVAL_S", "3600"),
        ],
    );
    wait_for("degraded", Duration::from_secs(30), || {
        d.health()["watcher"] == "degraded"
    });
    let h = d.health();
    assert_eq!(h["status"], "degraded");
    assert!(
        d.log().contains("max_user_watches"),
        "the warning says what to raise"
    );

    // Files in every directory still come, found by the polling scans.
    let mut p = Poller::at(format!(
        "{}?triggerState=2000-01-01T00:00:00Z",
        d.trigger_url()
    ));
    let during: Vec<String> = (0..10).map(|i| format!("d{i}/during.txt")).collect();
    for w in &during {
        site.put(w, b"during");
    }
    let all: Vec<String> = before.iter().chain(&during).cloned().collect();
    p.drain(all.len(), Duration::from_secs(60));
    assert_exactly_once(&p.got, &all);

    // Watches available again: the next scan watches everything, and the status is ok.
    drop(restore);
    wait_for("watched again", Duration::from_secs(30), || {
        d.health()["watcher"] == "inotify"
    });
    assert_eq!(d.health()["status"], "ok");
    site.put("d9/after.txt", b"after");
    p.drain(all.len() + 1, Duration::from_secs(30));
    assert_eq!(p.paths().last().unwrap(), "d9/after.txt");
    p.expect_nothing_more(&site, Duration::from_millis(1500));
}
