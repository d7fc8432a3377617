//! When to scan, and the watcher's state: pure logic with the time passed in.
//!
//! Owns: which scans are wanted and when they may start: full scans coalesced to one
//! running and at most one waiting (the latest reason kept), subtree scans of new
//! directories (a queue without duplicates, at most [`MAX_SUBTREE_SCANS`] at once, and a
//! second look [`NEW_DIR_FOLLOW_UP`] later), the periodic safety-net rescan, a full scan
//! wanted at a later instant (the bulk confirmation), and the degraded mode: while part of
//! the tree is unwatched, a full scan every `watch.poll_interval_s`. It also owns the
//! watcher's state that `/healthz` shows ([`Watcher`]) and the start-up readiness (the
//! first full walk).
//! Does not own: running scans (`discover` spawns what [`Schedule::next_start`] hands
//! out, `scan` walks), timers (`discover` sleeps until [`Schedule::next_due`] and calls
//! [`Schedule::tick`]), or publishing the state (`discover`, into `health`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::health::Watcher;

/// Subtree scans that may run at once.
pub const MAX_SUBTREE_SCANS: usize = 2;
/// A new directory is scanned again after this delay. Its subtree scan adds the watches
/// before it reads each directory, so nothing should be missed; the second look is a
/// cheap safety net for what was written while the first scan was being scheduled.
pub const NEW_DIR_FOLLOW_UP: Duration = Duration::from_millis(500);

/// Which kind of scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanKind {
    /// The whole tree, then the deletion check.
    Full,
    /// One new directory and everything below it.
    Subtree,
}

/// A scan to start now.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// The whole tree, for this reason.
    Full(&'static str),
    /// The directory at this relative path.
    Subtree(Vec<u8>),
}

impl Scan {
    /// Its kind.
    pub fn kind(&self) -> ScanKind {
        match self {
            Scan::Full(_) => ScanKind::Full,
            Scan::Subtree(_) => ScanKind::Subtree,
        }
    }
}

/// What a finished full walk changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Walked {
    /// It was the first: the start-up scan is done, the daemon is ready.
    pub first: bool,
    /// It added every directory watch after the watch limit had been reached: every
    /// directory is watched again.
    pub watched_again: bool,
}

/// The scan schedule and the watcher's state.
#[derive(Debug)]
pub struct Schedule {
    /// `watch.mode = "poll"`: no watcher at all.
    poll: bool,
    rescan_every: Duration,
    poll_every: Duration,
    /// A full scan is wanted, for this reason (the latest one).
    full_wanted: Option<&'static str>,
    full_running: bool,
    next_periodic: Instant,
    /// A full scan wanted at a later instant.
    full_at: Option<(Instant, &'static str)>,
    subtrees_running: usize,
    subtree_queue: VecDeque<Vec<u8>>,
    follow_ups: VecDeque<(Instant, Vec<u8>)>,
    walked_once: bool,
    /// Part of the tree is unwatched because the watch limit was reached.
    limit: bool,
    /// The watch limit was reached since the running full scan started.
    limit_seen: bool,
    /// The watched directory's own watch could not be added again.
    root_unwatched: bool,
    /// The watcher's channel closed: no more events.
    watcher_stopped: bool,
    /// While degraded: when the next polling scan is due.
    next_degraded_poll: Option<Instant>,
}

impl Schedule {
    /// A schedule at `now` that wants the start-up full scan. `rescan_every` is the
    /// periodic rescan (`watch.poll_interval_s` in poll mode), `poll_every` the scan
    /// interval while degraded.
    pub fn new(poll: bool, rescan_every: Duration, poll_every: Duration, now: Instant) -> Self {
        Schedule {
            poll,
            rescan_every,
            poll_every,
            full_wanted: Some("start-up"),
            full_running: false,
            next_periodic: now + rescan_every,
            full_at: None,
            subtrees_running: 0,
            subtree_queue: VecDeque::new(),
            follow_ups: VecDeque::new(),
            walked_once: false,
            limit: false,
            limit_seen: false,
            root_unwatched: false,
            watcher_stopped: false,
            next_degraded_poll: None,
        }
    }

    /// The watcher's state, for `/healthz`.
    pub fn watcher(&self) -> Watcher {
        if self.poll {
            Watcher::Poll
        } else if self.degraded() {
            Watcher::Degraded
        } else {
            Watcher::Inotify
        }
    }

    /// Whether events are expected from the watcher.
    pub fn listening(&self) -> bool {
        !self.poll && !self.watcher_stopped
    }

    /// Whether the watched directory's own watch must be added again.
    pub fn root_unwatched(&self) -> bool {
        self.root_unwatched
    }

    fn degraded(&self) -> bool {
        !self.poll && (self.limit || self.root_unwatched || self.watcher_stopped)
    }

    /// A full scan is wanted now (it starts when the running one, if any, is done).
    pub fn want_full(&mut self, why: &'static str) {
        self.full_wanted = Some(why);
    }

    /// A full scan is wanted at `at` (the earliest of those asked for).
    pub fn want_full_at(&mut self, at: Instant, why: &'static str) {
        if self.full_at.is_none_or(|(t, _)| at < t) {
            self.full_at = Some((at, why));
        }
    }

    /// The directory at `rel` is to be scanned (once, however often it is asked for
    /// before its scan starts).
    pub fn want_subtree(&mut self, rel: Vec<u8>) {
        if !self.subtree_queue.contains(&rel) {
            self.subtree_queue.push_back(rel);
        }
    }

    /// A new directory appeared at `now`: scanned now and again [`NEW_DIR_FOLLOW_UP`] later.
    pub fn new_dir(&mut self, rel: Vec<u8>, now: Instant) {
        self.want_subtree(rel.clone());
        self.follow_ups.push_back((now + NEW_DIR_FOLLOW_UP, rel));
    }

    /// The next scan to start, if one is wanted and may run now; the caller starts it and
    /// reports its end with [`Schedule::finished`]. Call until `None`.
    pub fn next_start(&mut self) -> Option<Scan> {
        if !self.full_running {
            if let Some(why) = self.full_wanted.take() {
                self.full_running = true;
                self.limit_seen = false;
                return Some(Scan::Full(why));
            }
        }
        if self.subtrees_running < MAX_SUBTREE_SCANS {
            if let Some(rel) = self.subtree_queue.pop_front() {
                self.subtrees_running += 1;
                return Some(Scan::Subtree(rel));
            }
        }
        None
    }

    /// A scan ended; `ok` is false when it failed (panicked): a full scan is wanted then.
    pub fn finished(&mut self, kind: ScanKind, ok: bool) {
        match kind {
            ScanKind::Full => self.full_running = false,
            ScanKind::Subtree => self.subtrees_running = self.subtrees_running.saturating_sub(1),
        }
        if !ok {
            self.want_full("a scan failed");
        }
    }

    /// When [`Schedule::tick`] has something to do next.
    pub fn next_due(&self) -> Instant {
        [
            self.follow_ups.front().map(|(t, _)| *t),
            self.full_at.map(|(t, _)| t),
            self.next_degraded_poll,
        ]
        .into_iter()
        .flatten()
        .fold(self.next_periodic, Instant::min)
    }

    /// Turns what is due by `now` into wanted scans.
    pub fn tick(&mut self, now: Instant) {
        while let Some((at, _)) = self.follow_ups.front() {
            if *at > now {
                break;
            }
            if let Some((_, rel)) = self.follow_ups.pop_front() {
                self.want_subtree(rel);
            }
        }
        if let Some((at, why)) = self.full_at {
            if at <= now {
                self.full_at = None;
                self.want_full(why);
            }
        }
        if self.next_periodic <= now {
            self.next_periodic = now + self.rescan_every;
            self.want_full(if self.poll {
                "poll interval"
            } else {
                "periodic rescan"
            });
        }
        if self.next_degraded_poll.is_some_and(|at| at <= now) {
            self.next_degraded_poll = Some(now + self.poll_every);
            self.want_full("unwatched directories: polling");
        }
    }

    /// A full walk that started after the last [`Schedule::next_start`] of a full scan has
    /// walked the whole tree (`stopped`: it ended early). One that could add every
    /// directory watch ends the degraded mode of the watch limit.
    pub fn walked(&mut self, stopped: bool, now: Instant) -> Walked {
        let watched_again = self.limit && !self.limit_seen && !stopped;
        if watched_again {
            self.limit = false;
            self.update_degraded(now);
        }
        let first = !std::mem::replace(&mut self.walked_once, true);
        Walked {
            first,
            watched_again,
        }
    }

    /// A directory watch could not be added: the inotify watch limit is reached (seen by a
    /// scan, or reported by the watcher). Returns whether this starts the degraded mode.
    pub fn watch_limit(&mut self, now: Instant) -> bool {
        self.limit_seen = true;
        let new = !self.limit;
        self.limit = true;
        self.update_degraded(now);
        new
    }

    /// Whether the watched directory's own watch is in place (after it came back).
    pub fn root_watch(&mut self, ok: bool, now: Instant) {
        self.root_unwatched = !ok;
        self.update_degraded(now);
    }

    /// The watcher stopped for good: scans only from now on.
    pub fn watcher_stopped(&mut self, now: Instant) {
        self.watcher_stopped = true;
        self.update_degraded(now);
    }

    /// Starts the degraded polling (first scan `poll_every` from now) or stops it.
    fn update_degraded(&mut self, now: Instant) {
        if !self.degraded() {
            self.next_degraded_poll = None;
        } else if self.next_degraded_poll.is_none() {
            self.next_degraded_poll = Some(now + self.poll_every);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESCAN: Duration = Duration::from_secs(300);
    const POLL: Duration = Duration::from_secs(10);

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    fn starts(s: &mut Schedule) -> Vec<Scan> {
        std::iter::from_fn(|| s.next_start()).collect()
    }

    /// A schedule whose start-up scan has run and walked without trouble.
    fn started(t0: Instant) -> Schedule {
        let mut s = Schedule::new(false, RESCAN, POLL, t0);
        assert_eq!(starts(&mut s), vec![Scan::Full("start-up")]);
        assert_eq!(
            s.walked(false, t0),
            Walked {
                first: true,
                watched_again: false
            }
        );
        s.finished(ScanKind::Full, true);
        s
    }

    #[test]
    fn full_scans_are_coalesced_to_one_running_and_one_waiting_with_the_latest_reason() {
        let t0 = Instant::now();
        let mut s = Schedule::new(false, RESCAN, POLL, t0);
        s.want_full("overflow");
        assert_eq!(starts(&mut s), vec![Scan::Full("overflow")]);
        s.want_full("a");
        s.want_full("b");
        assert!(starts(&mut s).is_empty(), "one full scan at a time");
        assert!(!s.walked(false, t0).watched_again);
        s.finished(ScanKind::Full, true);
        assert_eq!(starts(&mut s), vec![Scan::Full("b")]);
        s.finished(ScanKind::Full, true);
        assert!(starts(&mut s).is_empty());
    }

    #[test]
    fn readiness_comes_with_the_first_full_walk_only() {
        let t0 = Instant::now();
        let mut s = started(t0);
        s.want_full("again");
        starts(&mut s);
        assert!(!s.walked(false, t0).first);
    }

    #[test]
    fn subtree_scans_run_two_at_a_time_without_duplicates_and_look_again_later() {
        let t0 = Instant::now();
        let mut s = started(t0);
        for d in ["a", "b", "c", "c"] {
            s.new_dir(d.into(), t0);
        }
        s.want_subtree("c".into());
        assert_eq!(
            starts(&mut s),
            vec![Scan::Subtree("a".into()), Scan::Subtree("b".into())]
        );
        s.finished(ScanKind::Subtree, true);
        assert_eq!(starts(&mut s), vec![Scan::Subtree("c".into())]);
        s.finished(ScanKind::Subtree, true);
        s.finished(ScanKind::Subtree, true);
        assert!(starts(&mut s).is_empty(), "c was queued once");
        // The follow-ups, half a second later.
        assert_eq!(s.next_due(), ms(t0, 500));
        s.tick(ms(t0, 499));
        assert!(starts(&mut s).is_empty());
        s.tick(ms(t0, 500));
        let again = starts(&mut s);
        assert_eq!(
            again,
            vec![Scan::Subtree("a".into()), Scan::Subtree("b".into())]
        );
        s.finished(ScanKind::Subtree, true);
        assert_eq!(starts(&mut s), vec![Scan::Subtree("c".into())]);
    }

    #[test]
    fn the_periodic_rescan_and_a_later_full_scan_come_due() {
        let t0 = Instant::now();
        let mut s = started(t0);
        s.want_full_at(ms(t0, 2000), "confirming");
        s.want_full_at(ms(t0, 5000), "later");
        assert_eq!(s.next_due(), ms(t0, 2000));
        s.tick(ms(t0, 1999));
        assert!(starts(&mut s).is_empty());
        s.tick(ms(t0, 2000));
        assert_eq!(starts(&mut s), vec![Scan::Full("confirming")]);
        s.finished(ScanKind::Full, true);
        assert_eq!(s.next_due(), t0 + RESCAN);
        s.tick(t0 + RESCAN);
        assert_eq!(starts(&mut s), vec![Scan::Full("periodic rescan")]);
        assert_eq!(s.next_due(), t0 + RESCAN * 2);

        let mut p = Schedule::new(true, POLL, POLL, t0);
        starts(&mut p);
        p.finished(ScanKind::Full, true);
        p.tick(t0 + POLL);
        assert_eq!(starts(&mut p), vec![Scan::Full("poll interval")]);
        assert_eq!(p.watcher(), Watcher::Poll);
        assert!(!p.listening());
    }

    #[test]
    fn past_the_watch_limit_the_tree_is_polled_until_a_full_walk_adds_every_watch() {
        let t0 = Instant::now();
        let mut s = started(t0);
        assert_eq!(s.watcher(), Watcher::Inotify);
        // A subtree scan meets the limit.
        assert!(s.watch_limit(t0));
        assert!(!s.watch_limit(t0), "said once");
        assert_eq!(s.watcher(), Watcher::Degraded);
        assert_eq!(s.next_due(), t0 + POLL);
        s.tick(t0 + POLL);
        assert_eq!(
            starts(&mut s),
            vec![Scan::Full("unwatched directories: polling")]
        );
        // This walk meets the limit again: still degraded.
        s.watch_limit(t0 + POLL);
        assert!(!s.walked(false, t0 + POLL).watched_again);
        s.finished(ScanKind::Full, true);
        s.tick(t0 + POLL * 2);
        assert_eq!(starts(&mut s).len(), 1);
        // A walk that stopped early proves nothing.
        assert!(!s.walked(true, t0 + POLL * 2).watched_again);
        s.finished(ScanKind::Full, true);
        assert_eq!(s.watcher(), Watcher::Degraded);
        s.tick(t0 + POLL * 3);
        assert_eq!(starts(&mut s).len(), 1);
        // This one added every watch.
        assert!(s.walked(false, t0 + POLL * 3).watched_again);
        s.finished(ScanKind::Full, true);
        assert_eq!(s.watcher(), Watcher::Inotify);
        assert_eq!(s.next_due(), t0 + RESCAN, "no more polling scans");
    }

    #[test]
    fn the_watch_limit_reported_by_the_watcher_is_cleared_like_any_other() {
        // It used to set "degraded" for good, without the polling scans.
        let t0 = Instant::now();
        let mut s = started(t0);
        s.watch_limit(t0);
        s.want_full("watcher error");
        assert_eq!(s.watcher(), Watcher::Degraded);
        assert_eq!(starts(&mut s), vec![Scan::Full("watcher error")]);
        assert!(s.walked(false, t0).watched_again);
        assert_eq!(s.watcher(), Watcher::Inotify);
    }

    #[test]
    fn an_unwatched_root_is_degraded_until_its_watch_is_back() {
        // It used to set "degraded" for good.
        let t0 = Instant::now();
        let mut s = started(t0);
        s.root_watch(false, t0);
        assert!(s.root_unwatched());
        assert_eq!(s.watcher(), Watcher::Degraded);
        assert!(
            !s.walked(false, t0).watched_again,
            "a walk does not re-add it"
        );
        assert_eq!(s.watcher(), Watcher::Degraded);
        s.root_watch(true, t0);
        assert_eq!(s.watcher(), Watcher::Inotify);
        // Both at once: each must clear.
        s.root_watch(false, t0);
        s.watch_limit(t0);
        s.root_watch(true, t0);
        assert_eq!(s.watcher(), Watcher::Degraded);
    }

    #[test]
    fn a_stopped_watcher_is_degraded_for_good_and_polled() {
        let t0 = Instant::now();
        let mut s = started(t0);
        assert!(s.listening());
        s.watcher_stopped(t0);
        assert!(!s.listening());
        assert_eq!(s.watcher(), Watcher::Degraded);
        assert_eq!(s.next_due(), t0 + POLL);
        s.tick(t0 + POLL);
        starts(&mut s);
        assert!(!s.walked(false, t0 + POLL).watched_again);
        s.finished(ScanKind::Full, true);
        assert_eq!(s.watcher(), Watcher::Degraded);
    }

    #[test]
    fn a_failed_scan_of_either_kind_frees_its_slot_and_wants_a_full_scan() {
        let t0 = Instant::now();
        let mut s = started(t0);
        s.new_dir("a".into(), t0);
        s.new_dir("b".into(), t0);
        assert_eq!(starts(&mut s).len(), 2);
        s.finished(ScanKind::Subtree, false);
        s.finished(ScanKind::Subtree, false);
        assert_eq!(starts(&mut s), vec![Scan::Full("a scan failed")]);
        s.new_dir("c".into(), t0);
        s.new_dir("d".into(), t0);
        assert_eq!(starts(&mut s).len(), 2, "both subtree slots are free");
        s.finished(ScanKind::Full, false);
        assert_eq!(starts(&mut s), vec![Scan::Full("a scan failed")]);
    }
}
