//! Bounded state: many create/delete cycles leave the store (`state.dir/index.redb`) about
//! the size it had after the first rounds, and the daemon still offers a new file once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

const SETTLE: u64 = 100;
const WAIT: Duration = Duration::from_secs(300);
/// Files created (then deleted) per round at most.
const MAX_BATCH: usize = 10_000;
/// Rounds at least, so that the first rounds' size is a steady state to compare with.
const MIN_ROUNDS: usize = 20;

/// How many create/delete cycles the soak does: 20,000 in the normal suite; the long
/// version is `FILETRIGGER_SOAK_CYCLES=1000000 cargo test --release --test soak -- --nocapture`.
fn cycles_wanted() -> usize {
    std::env::var("FILETRIGGER_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn store_bytes(site: &Site) -> u64 {
    std::fs::metadata(site.state.join("index.redb"))
        .map(|m| m.len())
        .unwrap_or_else(|e| panic!("no store in {}: {e}", site.state.display()))
}

fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn indexed(d: &Daemon) -> (u64, u64) {
    let h = d.health();
    (
        h["filesIndexed"].as_u64().unwrap(),
        h["pending"].as_u64().unwrap(),
    )
}

#[test]
fn twenty_thousand_create_delete_cycles_keep_the_store_bounded() {
    let cycles = cycles_wanted();
    let batch = (cycles / MIN_ROUNDS).clamp(1, MAX_BATCH);
    let rounds = cycles.div_ceil(batch);
    let site = Site::new();
    // One file stays throughout: a full scan of an empty tree keeps the index as it is
    // (an unmounted share looks like that), which is not what this test is about.
    site.put("anchor.txt", b"stays");
    let d = site.daemon(SETTLE, &[]);
    wait_for("the anchor indexed", WAIT, || indexed(&d) == (1, 0));
    // A workflow that made its first call before the soak and polls only after it.
    let mut p = Poller::start(&d.trigger_url());
    let started = Instant::now();
    let initial = store_bytes(&site);
    eprintln!("soak: {cycles} create/delete cycles, {rounds} rounds of up to {batch} files");
    eprintln!(
        "soak: store before: {initial} bytes, daemon RSS {:?} KiB",
        rss_kib(d.pid())
    );
    eprintln!(
        "{:>6} {:>9} {:>12} {:>12} {:>8} {:>8}",
        "round", "cycles", "bytes_full", "bytes_empty", "rss_kib", "secs"
    );
    // (store bytes with the round's files indexed, store bytes once they are removed)
    let mut sizes: Vec<(u64, u64)> = Vec::with_capacity(rounds);
    let mut done = 0;
    for round in 0..rounds {
        let n = batch.min(cycles - done);
        let paths: Vec<_> = (done..done + n)
            .map(|i| site.inbox.join(format!("s{i:07}.dat")))
            .collect();
        for (k, path) in paths.iter().enumerate() {
            std::fs::write(path, format!("cycle {}", done + k)).unwrap();
        }
        wait_for("the round's files indexed", WAIT, || {
            indexed(&d) == (n as u64 + 1, 0)
        });
        let full = store_bytes(&site);
        for path in &paths {
            std::fs::remove_file(path).unwrap();
        }
        wait_for("the round's deletions indexed", WAIT, || {
            indexed(&d) == (1, 0)
        });
        let empty = store_bytes(&site);
        done += n;
        sizes.push((full, empty));
        eprintln!(
            "{:>6} {:>9} {:>12} {:>12} {:>8} {:>8.1}",
            round + 1,
            done,
            full,
            empty,
            rss_kib(d.pid()).unwrap_or(0),
            started.elapsed().as_secs_f64()
        );
    }
    let elapsed = started.elapsed();
    let rss = rss_kib(d.pid());
    let log = d.log();
    eprintln!(
        "soak: the daemon ran {} full scans, {} of them after lost events",
        log.matches("full scan walked").count(),
        log.matches("events were lost").count()
    );

    // The daemon still works: the old cursor gets exactly the one new file, and none of
    // the deleted ones.
    site.put("after-soak.txt", b"still here");
    p.drain(1, WAIT);
    assert_exactly_once(&p.got, &["after-soak.txt".into()]);
    p.expect_nothing_more(&site, Duration::from_millis(SETTLE * 4));

    let first = sizes[0].1;
    let last = sizes[sizes.len() - 1].1;
    let peak = sizes.iter().map(|(f, e)| *f.max(e)).max().unwrap();
    // The steady state: the largest size seen in the first two rounds.
    let steady = sizes.iter().take(2).map(|(f, e)| *f.max(e)).max().unwrap();
    eprintln!(
        "soak: {done} cycles in {:.1} s; store after round 1: {first} bytes, after the last \
         round: {last} bytes, peak {peak} bytes, steady state (rounds 1-2) {steady} bytes; \
         daemon RSS at the end {rss:?} KiB",
        elapsed.as_secs_f64()
    );
    // redb grows its file by doubling (below 4 GiB) and frees pages for reuse, trimming
    // a free tail on commit; so one doubling over the steady state is allocator noise, and
    // anything past it is state that grows with the number of cycles.
    assert!(
        peak <= 2 * steady,
        "the store grew from {steady} bytes (rounds 1-2) to {peak} bytes over {done} \
         create/delete cycles: {sizes:?}"
    );
}
