//! A watcher overflow loses nothing: with the kernel's inotify queue made tiny, a burst
//! of 20,000 files still ends with every file offered exactly once (the overflow is
//! reported, and a rescan finds what the events did not say).
//!
//! Needs root: it lowers `fs.inotify.max_queued_events` for the daemon it starts (the
//! limit is read when the daemon creates its inotify instance) and restores it at once.
//! This is the only test in its binary, so no other daemon sees the lowered limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

const SYSCTL: &str = "/proc/sys/fs/inotify/max_queued_events";

#[test]
fn a_burst_of_20000_files_through_a_tiny_inotify_queue_is_offered_exactly_once() {
    needs_root!("lower the sysctl fs.inotify.max_queued_events");
    let site = Site::new();
    let restore = Sysctl::set(SYSCTL, "32");
    let d = site.daemon(300, &[]);
    drop(restore);

    let mut p = Poller::start(&d.trigger_url());
    let want: Vec<String> = (0..20_000)
        .map(|i| format!("burst/{:02}/f{i:05}", i % 50))
        .collect();
    for w in &want {
        site.put(w, w.as_bytes());
    }
    // A generous limit: this is no speed test, and a shared machine can be slow.
    p.drain(want.len(), Duration::from_secs(600));
    assert_exactly_once(&p.got, &want);
    assert!(
        d.log().contains("overflowed") || d.log().contains("events were lost"),
        "the overflow was never reported, so this test did not test it:\n{}",
        d.log().lines().take(40).collect::<Vec<_>>().join("\n")
    );
    p.expect_nothing_more(&site, Duration::from_millis(1000));
}
