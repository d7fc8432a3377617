//! A slow disk holds only the polls that read from it: while several polls are held in a
//! file read (more of them than the daemon has async workers), `/healthz`, a first call
//! and a caught-up poll (`202`) are answered, before any held read has finished.
//!
//! The slow disk is the test-only read delay `FILETRIGGER_TEST_READ_DELAY_MS`, which
//! sits on the daemon's real read path: every file read waits that long, and the daemon
//! logs each held read, so the test knows when all of them are held. Ordering only, no
//! timed assertion: the fast answers must come while the held polls are still open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;

/// Held polls at once: more than the async workers of any machine this runs on (tokio
/// starts one per core), so a read done on a worker would stall every worker.
fn held() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2 + 2
}

const HOLD: &str = "test read delay: holding a file read";

#[test]
fn polls_held_in_a_slow_read_do_not_stall_healthz_or_202_answers() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[("FILETRIGGER_TEST_READ_DELAY_MS", "8000")]);
    site.put("slow.txt", b"from a slow disk");
    wait_for("slow.txt indexed", WAIT, || indexed(&d) >= 1);

    let n = held();
    let finished = Arc::new(AtomicUsize::new(0));
    let url = replay(&d).next;
    let slow: Vec<_> = (0..n)
        .map(|_| {
            let (url, finished) = (url.clone(), finished.clone());
            std::thread::spawn(move || {
                let r = get(&url).unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
                r
            })
        })
        .collect();
    wait_for("every slow poll held in its read", WAIT, || {
        d.log().matches(HOLD).count() >= n
    });

    // All n reads are held now. These must be answered before any of them ends.
    let health = get(&format!("{}/healthz", d.base())).unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    let mut p = Poller::start(&d.trigger_url());
    let caught_up = p.poll();
    assert_eq!(caught_up.status, 202, "{caught_up:?}");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "a held read finished before /healthz and the 202s were answered: the slow \
         reads stalled the other requests"
    );

    // And the held polls get their file, once the read is done.
    for t in slow {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["path"], "slow.txt");
        let got = Got {
            path: "slow.txt".into(),
            indexed_at: String::new(),
            retry_after: 0,
            body: r.json(),
        };
        assert_eq!(got.content(), b"from a slow disk");
    }
}
