//! When a file is complete: quiet for long enough, and not open for writing.
//!
//! Owns: the set of pending files, each with the version last seen, the instant it was
//! first seen in that state, and what is known of its writer ([`Writer`]: open for
//! writing, closed by its writer at some instant, or unknown); the rule that turns these
//! into "complete"; and a queue ordered by when each is next due for a check.
//! The rule, per writer state:
//! - open for writing (a write or create event, no writer's close since): held whatever
//!   its quiet time, until the close is seen or `max_open_hold` has passed since it was
//!   opened; then it is complete anyway, marked [`Complete::still_open`];
//! - closed by its writer: complete after `settle_after_close` of quiet after the close
//!   (a new write within it makes it open again; a change seen without an event drops
//!   the mark, as the close no longer tells anything);
//! - unknown (found by a scan, or after [`Settler::forget_writers`]): complete after
//!   `settle` of quiet.
//!
//! Also owns the same quiet-time rule for many files at once in constant memory per file
//! ([`Bulk`]: two scans at least `settle_ms` apart saw the same version).
//! Pure logic with the time passed in, so it is tested without sleeping.
//! Does not own: stat calls or writer probes (`discover` observes and passes versions and
//! [`Seen`] in, and stats each due path again before [`Settler::confirm_complete`]),
//! events, scans or the index (`discover` sends what is complete to the index writer).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::index::FileVersion;

/// How long a file waits, per writer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Quiet time of a file whose writer is unknown (`watch.settle_ms`).
    pub settle: Duration,
    /// Quiet time after its writer's close (`watch.settle_after_close_ms`). A close never
    /// makes a file wait longer than `settle`: the shorter of the two applies.
    pub settle_after_close: Duration,
    /// Longest a file open for writing is held, from its first write without a close
    /// since (`watch.max_open_hold_s`).
    pub max_open_hold: Duration,
}

#[cfg(test)]
impl Timing {
    /// The hold limit used by [`Timing::settle_only`].
    pub const DEFAULT_MAX_OPEN_HOLD: Duration = Duration::from_secs(3600);

    /// Only the settle time, as before writers were told apart: a close does not shorten
    /// the wait. What [`Settler::new`] uses.
    pub fn settle_only(settle: Duration) -> Timing {
        Timing {
            settle,
            settle_after_close: settle,
            max_open_hold: Timing::DEFAULT_MAX_OPEN_HOLD,
        }
    }
}

impl From<&crate::config::WatchSettings> for Timing {
    /// `watch.settle_ms`, `watch.settle_after_close_ms`, `watch.max_open_hold_s`.
    fn from(w: &crate::config::WatchSettings) -> Timing {
        Timing {
            settle: Duration::from_millis(w.settle_ms),
            settle_after_close: Duration::from_millis(w.settle_after_close_ms),
            max_open_hold: Duration::from_secs(w.max_open_hold_s),
        }
    }
}

/// What an observation tells about a file's writer.
///
/// With notify's inotify backend: `Create(_)` and `Modify(Data(_))` are
/// [`Seen::Written`]; `Access(Close(Write))` (IN_CLOSE_WRITE) is [`Seen::Closed`];
/// IN_OPEN (which also follows every read and every writer probe of our own) and
/// IN_CLOSE_NOWRITE say nothing of a writer: the watcher does not ask the kernel for
/// them (`watch::config`), and would drop them if they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Found by a scan or a stat: nothing is known of a writer. The quiet time starts
    /// again only if the version differs from the one seen before, and then a close seen
    /// earlier no longer tells anything (the file changed after it without an event: a
    /// lost event, or a writer through a shared mapping), so the mark is dropped.
    Scan,
    /// An event that is neither a write nor a writer's close (an attribute change such as
    /// `cp -p` setting the mtime after its close, a rename into place): the quiet time
    /// starts again; what is known of the writer is kept.
    Changed,
    /// A write or a create event: open for writing from now until its writer's close.
    /// A caller that learns from a writer probe that the file is open may say so too.
    Written,
    /// Its writer closed it now (IN_CLOSE_WRITE).
    Closed,
}

/// What is known of a pending file's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Found by a scan, or marks were dropped: only the quiet time tells.
    Unknown,
    /// Written to and not closed by its writer since `since`.
    Open {
        /// The first write with no close after it.
        since: Instant,
    },
    /// Closed by its writer at `at`, with no write since.
    Closed {
        /// When the close was seen.
        at: Instant,
    },
}

/// A file version that counts as complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complete {
    /// The version to index.
    pub version: FileVersion,
    /// Still open for writing: offered only because it was held for `max_open_hold`
    /// (the body says `"stillOpen": true` and the log warns).
    pub still_open: bool,
}

#[derive(Debug)]
struct Pending {
    seen: FileVersion,
    /// When the file was first seen in the state `seen` (or last touched by an event).
    since: Instant,
    writer: Writer,
    /// The one live queue entry of this file, if any: its ticket and instant. Other
    /// entries for the path (an earlier schedule, a forgotten and re-added path) are
    /// skipped when they come up.
    queued: Option<(u64, Instant)>,
    /// Without events (`poll` mode): when a writer probe first found it open for writing.
    probed_open: Option<Instant>,
}

/// The pending files.
#[derive(Debug)]
pub struct Settler {
    timing: Timing,
    pending: HashMap<Vec<u8>, Pending>,
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    next_ticket: u64,
}

impl Settler {
    /// A settler that wants `settle` of quiet before a file counts as complete, whatever
    /// is known of its writer ([`Timing::settle_only`]). The tests of the quiet-time rule
    /// alone use it.
    #[cfg(test)]
    pub fn new(settle: Duration) -> Settler {
        Settler::with_timing(Timing::settle_only(settle))
    }

    /// A settler that tells writers apart (see the module header for the rule).
    pub fn with_timing(timing: Timing) -> Settler {
        Settler {
            timing: Timing {
                settle_after_close: timing.settle_after_close.min(timing.settle),
                ..timing
            },
            pending: HashMap::new(),
            queue: BinaryHeap::new(),
            next_ticket: 0,
        }
    }

    /// How many files are waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether `rel` is waiting.
    pub fn contains(&self, rel: &[u8]) -> bool {
        self.pending.contains_key(rel)
    }

    /// Whether no file is waiting.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// What is known of the writer of `rel`, if it is waiting.
    pub fn writer(&self, rel: &[u8]) -> Option<Writer> {
        self.pending.get(rel).map(|p| p.writer)
    }

    /// A file was seen in state `v` (by a scan or after an event). If it is new, or its
    /// state differs from what was seen before, or `changed` says an event reported a
    /// write, its quiet period starts again now. Same as [`Settler::see`] with
    /// [`Seen::Changed`] or [`Seen::Scan`].
    pub fn observe(&mut self, v: FileVersion, changed: bool, now: Instant) {
        let seen = if changed { Seen::Changed } else { Seen::Scan };
        self.see(v, seen, now);
    }

    /// A file was seen in state `v`, and `seen` says what that tells of its writer.
    pub fn see(&mut self, v: FileVersion, seen: Seen, now: Instant) {
        let rel = v.rel.clone();
        match self.pending.get_mut(&rel) {
            None => {
                let writer = match seen {
                    Seen::Written => Writer::Open { since: now },
                    Seen::Closed => Writer::Closed { at: now },
                    Seen::Scan | Seen::Changed => Writer::Unknown,
                };
                self.pending.insert(
                    rel.clone(),
                    Pending {
                        seen: v,
                        since: now,
                        writer,
                        queued: None,
                        probed_open: None,
                    },
                );
            }
            Some(p) => {
                let differs = p.seen != v;
                match seen {
                    Seen::Scan => {
                        if differs {
                            p.drop_close_mark();
                            p.seen = v;
                            p.since = now;
                        }
                    }
                    Seen::Changed => {
                        p.seen = v;
                        p.since = now;
                    }
                    Seen::Written => {
                        if !matches!(p.writer, Writer::Open { .. }) {
                            p.writer = Writer::Open { since: now };
                        }
                        p.seen = v;
                        p.since = now;
                    }
                    Seen::Closed => {
                        p.writer = Writer::Closed { at: now };
                        p.seen = v;
                        p.since = now;
                    }
                }
            }
        }
        self.schedule(&rel);
    }

    /// Drops every writer mark back to unknown: after a watcher overflow or lost events a
    /// close may have been missed, so only the quiet time (or a fresh probe) can tell.
    pub fn forget_writers(&mut self) {
        let rels: Vec<Vec<u8>> = self
            .pending
            .iter_mut()
            .filter(|(_, p)| p.writer != Writer::Unknown)
            .map(|(rel, p)| {
                p.writer = Writer::Unknown;
                rel.clone()
            })
            .collect();
        for rel in rels {
            self.schedule(&rel);
        }
    }

    /// Forgets a path (deleted or renamed away).
    pub fn forget(&mut self, rel: &[u8]) {
        self.pending.remove(rel);
    }

    /// Forgets every path below directory `dir`.
    pub fn forget_tree(&mut self, dir: &[u8]) {
        self.pending.retain(|rel, _| {
            !(rel.len() > dir.len() && rel.starts_with(dir) && rel[dir.len()] == b'/')
        });
    }

    /// When the next check is due, if any file is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The paths whose wait has run out by `now`; each must be stat'ed and passed to
    /// [`Settler::confirm_complete`]. At most `limit` at a time.
    pub fn due(&mut self, now: Instant, limit: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(Reverse((at, _, _))) = self.queue.peek() else {
                break;
            };
            if *at > now {
                break;
            }
            let Some(Reverse((_, ticket, rel))) = self.queue.pop() else {
                break;
            };
            let Some(p) = self.pending.get_mut(&rel) else {
                continue;
            };
            if p.queued.map(|(t, _)| t) != Some(ticket) {
                continue;
            }
            p.queued = None;
            if self.timing.ready_at(p) > now {
                // Touched since it was queued: wait for the rest of its time.
                self.schedule(&rel);
            } else {
                out.push(rel);
            }
        }
        out
    }

    /// A due path could not be checked (the check failed): it waits a whole quiet period
    /// again from `now`, as if just seen.
    pub fn retry(&mut self, rel: &[u8], now: Instant) {
        if let Some(p) = self.pending.get_mut(rel) {
            p.since = now;
            self.schedule(rel);
        }
    }

    /// The result of stat'ing a due path: `None` if it is gone or no longer a regular
    /// file. Returns the version when it is complete (unchanged since it was seen, or
    /// held open for `max_open_hold`); otherwise it waits again.
    /// Same as [`Settler::confirm_complete`] without the `still_open` flag.
    #[cfg(test)]
    pub fn confirm(
        &mut self,
        rel: &[u8],
        current: Option<FileVersion>,
        now: Instant,
    ) -> Option<FileVersion> {
        self.confirm_complete(rel, current, now).map(|c| c.version)
    }

    /// The result of stat'ing a due path: `None` if it is gone or no longer a regular
    /// file. Returns the version when it is complete: for a file open for writing, once
    /// `max_open_hold` has passed since it was opened (whatever its quiet time, marked
    /// `still_open`); otherwise once it is unchanged since it was seen and quiet for its
    /// time. Otherwise it waits again (from now, if it changed).
    pub fn confirm_complete(
        &mut self,
        rel: &[u8],
        current: Option<FileVersion>,
        now: Instant,
    ) -> Option<Complete> {
        let p = self.pending.get_mut(rel)?;
        let Some(cur) = current else {
            self.pending.remove(rel);
            return None;
        };
        let ready = self.timing.ready_at(p) <= now;
        match p.writer {
            Writer::Open { .. } if ready => {
                self.pending.remove(rel);
                return Some(Complete {
                    version: cur,
                    still_open: true,
                });
            }
            Writer::Open { .. } => {
                if cur != p.seen {
                    p.seen = cur;
                    p.since = now;
                }
            }
            Writer::Unknown | Writer::Closed { .. } if ready && cur == p.seen => {
                self.pending.remove(rel);
                return Some(Complete {
                    version: cur,
                    still_open: false,
                });
            }
            Writer::Unknown | Writer::Closed { .. } => {
                if cur != p.seen {
                    p.drop_close_mark();
                    p.seen = cur;
                    p.since = now;
                }
            }
        }
        self.schedule(rel);
        None
    }

    /// A due path that a writer probe found open for writing, seen as `cur`. With events
    /// (`inotify` mode) it is held as written: until its writer's close is seen, or
    /// `max_open_hold` from now. Without (`poll` mode, where no close event comes) its
    /// quiet time starts again; once it has been found open for `max_open_hold`, it is
    /// complete anyway, marked `still_open`.
    pub fn found_open(
        &mut self,
        rel: &[u8],
        cur: FileVersion,
        events: bool,
        now: Instant,
    ) -> Option<Complete> {
        if events {
            self.see(cur, Seen::Written, now);
            return None;
        }
        let hold = self.timing.max_open_hold;
        let p = self.pending.get_mut(rel)?;
        let first = *p.probed_open.get_or_insert(now);
        if now.saturating_duration_since(first) >= hold {
            self.pending.remove(rel);
            return Some(Complete {
                version: cur,
                still_open: true,
            });
        }
        p.seen = cur;
        p.since = now;
        self.schedule(rel);
        None
    }

    /// Makes sure `rel` has a queue entry no later than its ready time.
    fn schedule(&mut self, rel: &[u8]) {
        let Some(p) = self.pending.get_mut(rel) else {
            return;
        };
        let at = self.timing.ready_at(p);
        if p.queued.is_some_and(|(_, q)| q <= at) {
            // The live entry comes up first; `due` then looks again.
            return;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        p.queued = Some((ticket, at));
        self.queue.push(Reverse((at, ticket, rel.to_vec())));
    }
}

impl Pending {
    /// A change seen without an event: a close seen before no longer tells anything.
    fn drop_close_mark(&mut self) {
        if matches!(self.writer, Writer::Closed { .. }) {
            self.writer = Writer::Unknown;
        }
    }
}

impl Timing {
    /// When `p` is due for a check.
    fn ready_at(&self, p: &Pending) -> Instant {
        match p.writer {
            Writer::Unknown => p.since + self.settle,
            Writer::Closed { .. } => p.since + self.settle_after_close,
            Writer::Open { since } => since + self.max_open_hold,
        }
    }
}

/// The settle check for many files at once (a start-up scan of a large tree, a big copy
/// found by a rescan), in constant memory per file.
///
/// Past the settler's capacity, a scan candidate is not held by the [`Settler`] but
/// remembered as a keyed 64-bit hash of its path and version. Once the scans feeding that
/// set are done, the set is sealed and a full scan is run `settle` later: a file it finds
/// with a version whose hash is in the sealed set was seen unchanged by two scans at least
/// `settle` apart, and is complete. Anything else (changed since, new) starts over as a
/// candidate; a file with an event in between is pending in the settler, which then
/// decides. Two different versions share a hash with probability 2⁻⁶⁴ per pair (the key
/// is random per process, so it cannot be aimed at).
#[derive(Debug)]
pub struct Bulk {
    settle: Duration,
    hasher: std::hash::RandomState,
    /// Hashes collected since the last seal.
    collecting: Vec<u64>,
    /// The sealed set (sorted), and the instant from which a scan may confirm it.
    sealed: Option<(Vec<u64>, Instant)>,
}

impl Bulk {
    /// Empty, with a hash key of its own.
    pub fn new(settle: Duration) -> Bulk {
        Bulk {
            settle,
            hasher: std::hash::RandomState::new(),
            collecting: Vec::new(),
            sealed: None,
        }
    }

    fn hash(&self, v: &FileVersion) -> u64 {
        use std::hash::BuildHasher;
        self.hasher
            .hash_one((v.rel.as_slice(), v.size, v.mtime.0, v.ino))
    }

    /// How many versions it remembers.
    pub fn len(&self) -> usize {
        self.collecting.len() + self.sealed.as_ref().map_or(0, |(h, _)| h.len())
    }

    /// Remembers a candidate seen by a scan, to be confirmed after the next seal.
    pub fn collect(&mut self, v: &FileVersion) {
        let h = self.hash(v);
        self.collecting.push(h);
    }

    /// Whether a scan that started at `started` saw `v` unchanged since the sealed set.
    pub fn confirms(&self, started: Instant, v: &FileVersion) -> bool {
        match &self.sealed {
            Some((hashes, from)) if started >= *from => hashes.binary_search(&self.hash(v)).is_ok(),
            _ => false,
        }
    }

    /// Seals what was collected, if nothing is sealed yet. Returns when the confirming
    /// full scan is due (`settle` from now), if it sealed.
    #[must_use = "the confirming scan must be scheduled"]
    pub fn seal(&mut self, now: Instant) -> Option<Instant> {
        if self.sealed.is_some() || self.collecting.is_empty() {
            return None;
        }
        let mut hashes = std::mem::take(&mut self.collecting);
        hashes.sort_unstable();
        hashes.dedup();
        hashes.shrink_to_fit();
        tracing::info!(
            files = hashes.len(),
            "many new files: a second scan confirms them after the settle time"
        );
        self.sealed = Some((hashes, now + self.settle));
        Some(now + self.settle)
    }

    /// A full walk that started at `started` is done: if it started after the seal, it
    /// has confirmed what it could and the sealed set is dropped. Then seals what was
    /// collected ([`Bulk::seal`]).
    #[must_use = "the confirming scan must be scheduled"]
    pub fn walked(&mut self, started: Instant, now: Instant) -> Option<Instant> {
        if matches!(&self.sealed, Some((_, from)) if started >= *from) {
            self.sealed = None;
        }
        self.seal(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::Stamp;

    const SETTLE: Duration = Duration::from_millis(2000);

    fn v(rel: &str, size: u64) -> FileVersion {
        FileVersion {
            rel: rel.as_bytes().to_vec(),
            size,
            mtime: Stamp(size as i64),
            ino: 1,
        }
    }

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn an_unchanged_file_is_complete_after_the_settle_time_and_not_before() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(v("a", 1), false, t0);
        assert!(s.due(ms(t0, 1999), 10).is_empty());
        assert_eq!(s.due(ms(t0, 2000), 10), vec![b"a".to_vec()]);
        assert_eq!(
            s.confirm(b"a", Some(v("a", 1)), ms(t0, 2000)),
            Some(v("a", 1))
        );
        assert!(s.is_empty());
    }

    #[test]
    fn a_slow_writer_that_pauses_for_less_than_the_settle_time_is_not_complete() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(v("a", 1), true, t0);
        // The writer appends at 1500 ms (an event and a new size).
        s.observe(v("a", 2), true, ms(t0, 1500));
        assert!(s.due(ms(t0, 2000), 10).is_empty(), "not quiet for 2 s yet");
        assert!(s.due(ms(t0, 3499), 10).is_empty());
        assert_eq!(s.due(ms(t0, 3500), 10), vec![b"a".to_vec()]);
        assert_eq!(
            s.confirm(b"a", Some(v("a", 2)), ms(t0, 3500)),
            Some(v("a", 2))
        );
    }

    #[test]
    fn a_change_seen_only_at_the_check_restarts_the_quiet_period() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(v("a", 1), false, t0);
        assert_eq!(s.due(ms(t0, 2000), 10).len(), 1);
        assert_eq!(s.confirm(b"a", Some(v("a", 5)), ms(t0, 2000)), None);
        assert!(s.due(ms(t0, 3999), 10).is_empty());
        assert_eq!(s.due(ms(t0, 4000), 10).len(), 1);
        assert_eq!(
            s.confirm(b"a", Some(v("a", 5)), ms(t0, 4000)),
            Some(v("a", 5))
        );
    }

    #[test]
    fn an_event_without_a_visible_change_still_restarts_the_quiet_period() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(v("a", 1), false, t0);
        s.observe(v("a", 1), true, ms(t0, 1000));
        assert!(s.due(ms(t0, 2500), 10).is_empty());
        assert_eq!(s.due(ms(t0, 3000), 10).len(), 1);
    }

    #[test]
    fn a_vanished_file_is_dropped() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(v("a", 1), false, t0);
        assert_eq!(s.due(ms(t0, 2000), 10).len(), 1);
        assert_eq!(s.confirm(b"a", None, ms(t0, 2000)), None);
        assert!(s.is_empty());
        assert!(s.due(ms(t0, 9000), 10).is_empty());
    }

    #[test]
    fn forgetting_a_tree_keeps_siblings_with_a_common_prefix() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        for p in ["d/x", "d/e/y", "d.txt", "dd/z"] {
            s.observe(v(p, 1), false, t0);
        }
        s.forget_tree(b"d");
        let mut left = s.due(ms(t0, 2000), 10);
        left.sort();
        assert_eq!(left, vec![b"d.txt".to_vec(), b"dd/z".to_vec()]);
    }

    #[test]
    fn a_re_added_path_is_due_once() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(v("a", 1), false, t0);
        s.forget(b"a");
        s.observe(v("a", 1), false, ms(t0, 100));
        assert!(s.due(ms(t0, 2000), 10).is_empty());
        assert_eq!(s.due(ms(t0, 2100), 10), vec![b"a".to_vec()]);
    }

    #[test]
    fn due_honours_its_limit_and_keeps_the_rest() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        for i in 0..10 {
            s.observe(v(&format!("f{i}"), 1), false, t0);
        }
        assert_eq!(s.due(ms(t0, 2000), 4).len(), 4);
        assert_eq!(s.due(ms(t0, 2000), 100).len(), 6);
    }

    #[test]
    fn a_due_path_whose_check_failed_is_due_again_a_quiet_period_later() {
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(v("a", 1), false, t0);
        assert_eq!(s.due(ms(t0, 2000), 10).len(), 1);
        s.retry(b"a", ms(t0, 2000));
        s.retry(b"gone", ms(t0, 2000));
        assert!(s.due(ms(t0, 3999), 10).is_empty());
        assert_eq!(s.due(ms(t0, 4000), 10), vec![b"a".to_vec()]);
    }

    #[test]
    fn bulk_confirms_only_the_same_version_seen_by_a_scan_started_a_settle_time_later() {
        let t0 = Instant::now();
        let mut b = Bulk::new(SETTLE);
        assert_eq!(b.seal(t0), None, "nothing collected, nothing sealed");
        b.collect(&v("a", 1));
        assert_eq!(b.seal(t0), Some(t0 + SETTLE));
        assert_eq!(b.len(), 1);
        // A scan that started before the settle time ran out confirms nothing.
        assert!(!b.confirms(ms(t0, 1999), &v("a", 1)));
        // One that started after it confirms the same version only.
        assert!(b.confirms(t0 + SETTLE, &v("a", 1)));
        assert!(!b.confirms(t0 + SETTLE, &v("a", 2)), "changed size");
        assert!(!b.confirms(t0 + SETTLE, &v("b", 1)), "another path");
        // What is collected meanwhile waits for the next seal.
        b.collect(&v("c", 1));
        assert_eq!(b.seal(t0 + SETTLE), None, "one sealed set at a time");
        assert!(!b.confirms(t0 + SETTLE * 3, &v("c", 1)));
        // A walk that started before the seal's instant keeps the sealed set.
        assert_eq!(b.walked(ms(t0, 1999), t0 + SETTLE), None);
        assert!(b.confirms(t0 + SETTLE, &v("a", 1)));
        // The confirming walk drops it and seals what was collected.
        let t1 = t0 + SETTLE * 2;
        assert_eq!(b.walked(t0 + SETTLE, t1), Some(t1 + SETTLE));
        assert!(!b.confirms(t1 + SETTLE, &v("a", 1)));
        assert!(b.confirms(t1 + SETTLE, &v("c", 1)));
    }

    // Issue 10: writers told apart.

    const AFTER_CLOSE: Duration = Duration::from_millis(300);
    const HOLD: Duration = Duration::from_secs(60);

    fn writers() -> Settler {
        Settler::with_timing(Timing {
            settle: SETTLE,
            settle_after_close: AFTER_CLOSE,
            max_open_hold: HOLD,
        })
    }

    fn complete(version: FileVersion) -> Option<Complete> {
        Some(Complete {
            version,
            still_open: false,
        })
    }

    #[test]
    fn issue10_a_writer_paused_longer_than_the_settle_time_is_held_until_its_close() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("scan.pdf", 0), Seen::Written, t0); // create
        s.see(v("scan.pdf", 1000), Seen::Written, ms(t0, 1));
        // The writer pauses 4 s: twice the settle time, and it is still not due.
        assert!(s.due(ms(t0, 4000), 10).is_empty());
        s.see(v("scan.pdf", 2000), Seen::Written, ms(t0, 4001));
        assert!(s.due(ms(t0, 30_000), 10).is_empty(), "a paused writer");
        s.see(v("scan.pdf", 2000), Seen::Closed, ms(t0, 30_000));
        assert!(s.due(ms(t0, 30_299), 10).is_empty());
        assert_eq!(s.due(ms(t0, 30_300), 10), vec![b"scan.pdf".to_vec()]);
        assert_eq!(
            s.confirm_complete(b"scan.pdf", Some(v("scan.pdf", 2000)), ms(t0, 30_300)),
            complete(v("scan.pdf", 2000))
        );
        assert!(s.is_empty());
    }

    #[test]
    fn without_writer_marks_the_same_paused_writer_is_due_after_the_settle_time() {
        // What `observe` (events without writer states) did before issue 10, and still does.
        let t0 = Instant::now();
        let mut s = writers();
        s.observe(v("scan.pdf", 1000), true, t0);
        assert_eq!(s.due(ms(t0, 2000), 10).len(), 1);
        assert_eq!(
            s.confirm(b"scan.pdf", Some(v("scan.pdf", 1000)), ms(t0, 2000)),
            Some(v("scan.pdf", 1000)),
            "offered truncated"
        );
    }

    #[test]
    fn a_closed_file_is_due_after_the_short_quiet_time() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("a", 5), Seen::Written, t0);
        s.see(v("a", 5), Seen::Closed, ms(t0, 10));
        assert_eq!(s.writer(b"a"), Some(Writer::Closed { at: ms(t0, 10) }));
        assert!(s.due(ms(t0, 309), 10).is_empty());
        assert_eq!(s.next_due(), Some(ms(t0, 310)));
        assert_eq!(s.due(ms(t0, 310), 10), vec![b"a".to_vec()]);
        assert_eq!(
            s.confirm_complete(b"a", Some(v("a", 5)), ms(t0, 310)),
            complete(v("a", 5))
        );
    }

    #[test]
    fn a_close_seen_for_a_file_first_found_by_a_scan_shortens_its_wait() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("a", 5), Seen::Scan, t0);
        s.see(v("a", 5), Seen::Closed, ms(t0, 100));
        assert_eq!(s.due(ms(t0, 400), 10), vec![b"a".to_vec()]);
        assert!(s.confirm(b"a", Some(v("a", 5)), ms(t0, 400)).is_some());
        assert!(s.due(ms(t0, 5000), 10).is_empty(), "due once");
    }

    #[test]
    fn a_reopen_and_write_within_the_quiet_time_after_a_close_holds_the_file_again() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("a", 1), Seen::Written, t0);
        s.see(v("a", 1), Seen::Closed, ms(t0, 100));
        s.see(v("a", 2), Seen::Written, ms(t0, 300)); // reopened for appending
        assert_eq!(s.writer(b"a"), Some(Writer::Open { since: ms(t0, 300) }));
        assert!(
            s.due(ms(t0, 400), 10).is_empty(),
            "the old close no longer counts"
        );
        assert!(s.due(ms(t0, 20_000), 10).is_empty(), "open, however quiet");
        s.see(v("a", 3), Seen::Closed, ms(t0, 20_000));
        assert_eq!(s.due(ms(t0, 20_300), 10), vec![b"a".to_vec()]);
        assert_eq!(
            s.confirm_complete(b"a", Some(v("a", 3)), ms(t0, 20_300)),
            complete(v("a", 3))
        );
    }

    #[test]
    fn a_change_at_the_check_after_a_close_falls_back_to_the_settle_time() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("a", 1), Seen::Closed, t0);
        assert_eq!(s.due(ms(t0, 300), 10).len(), 1);
        // Written after the close with no event (a shared mapping, or a lost event).
        assert_eq!(s.confirm_complete(b"a", Some(v("a", 2)), ms(t0, 300)), None);
        assert_eq!(s.writer(b"a"), Some(Writer::Unknown));
        assert!(s.due(ms(t0, 2299), 10).is_empty());
        assert_eq!(s.due(ms(t0, 2300), 10).len(), 1);
    }

    #[test]
    fn a_scan_that_sees_a_change_after_a_close_drops_the_close_but_an_event_keeps_it() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("a", 1), Seen::Closed, t0);
        s.see(v("a", 1), Seen::Scan, ms(t0, 100)); // same version: nothing changes
        assert_eq!(s.writer(b"a"), Some(Writer::Closed { at: t0 }));
        s.see(v("a", 2), Seen::Changed, ms(t0, 200)); // `cp -p` setting the mtime
        assert_eq!(s.writer(b"a"), Some(Writer::Closed { at: t0 }));
        assert!(
            s.due(ms(t0, 499), 10).is_empty(),
            "quiet again from the change"
        );
        assert_eq!(s.due(ms(t0, 500), 10).len(), 1);

        s.see(v("b", 1), Seen::Closed, t0);
        s.see(v("b", 2), Seen::Scan, ms(t0, 100));
        assert_eq!(s.writer(b"b"), Some(Writer::Unknown));
        assert!(s.due(ms(t0, 2099), 10).is_empty());
        assert_eq!(s.due(ms(t0, 2100), 10), vec![b"b".to_vec()]);
    }

    #[test]
    fn a_file_held_open_past_the_hold_limit_is_complete_and_marked_still_open() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("log", 1), Seen::Written, t0);
        for i in 1..60u64 {
            s.see(v("log", i + 1), Seen::Written, ms(t0, i * 1000));
        }
        assert!(s.due(ms(t0, 59_999), 10).is_empty());
        assert_eq!(s.due(ms(t0, 60_000), 10), vec![b"log".to_vec()]);
        // Not quiet at all (the stat sees yet another size): offered anyway, marked.
        assert_eq!(
            s.confirm_complete(b"log", Some(v("log", 99)), ms(t0, 60_000)),
            Some(Complete {
                version: v("log", 99),
                still_open: true,
            })
        );
        assert!(s.is_empty());
        // The writer goes on: a new version, held for another full hold from now.
        s.see(v("log", 100), Seen::Written, ms(t0, 61_000));
        assert!(s.due(ms(t0, 120_999), 10).is_empty());
        assert_eq!(s.due(ms(t0, 121_000), 10).len(), 1);
    }

    #[test]
    fn forgetting_writer_marks_falls_back_to_the_settle_time() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("open", 1), Seen::Written, t0);
        s.see(v("closed", 1), Seen::Closed, t0);
        s.see(v("scanned", 1), Seen::Scan, t0);
        s.forget_writers(); // a watcher overflow: a close may have been lost
        for rel in ["open", "closed", "scanned"] {
            assert_eq!(s.writer(rel.as_bytes()), Some(Writer::Unknown), "{rel}");
        }
        assert!(
            s.due(ms(t0, 1999), 10).is_empty(),
            "the close no longer counts"
        );
        let mut due = s.due(ms(t0, 2000), 10);
        due.sort();
        assert_eq!(
            due,
            vec![b"closed".to_vec(), b"open".to_vec(), b"scanned".to_vec()],
            "each once; the open one no longer waits for the hold limit"
        );
        assert!(
            s.due(ms(t0, 3_600_000), 10).is_empty(),
            "no stale entry comes up"
        );
    }

    #[test]
    fn the_quiet_time_after_a_close_is_never_longer_than_the_settle_time() {
        let t0 = Instant::now();
        let mut s = Settler::with_timing(Timing {
            settle: Duration::from_millis(200),
            settle_after_close: AFTER_CLOSE,
            max_open_hold: HOLD,
        });
        s.see(v("a", 1), Seen::Closed, t0);
        assert_eq!(s.due(ms(t0, 200), 10).len(), 1);
        // `new` (settle only): a close does not shorten the wait.
        let mut s = Settler::new(SETTLE);
        s.see(v("a", 1), Seen::Closed, t0);
        assert!(s.due(ms(t0, 1999), 10).is_empty());
        assert_eq!(s.due(ms(t0, 2000), 10).len(), 1);
    }

    #[test]
    fn the_default_settings_give_the_default_timing() {
        let settings = crate::config::load(None, Vec::new()).unwrap();
        assert_eq!(
            Timing::from(&settings.watch),
            Timing {
                settle: Duration::from_millis(2000),
                settle_after_close: Duration::from_millis(300),
                max_open_hold: Duration::from_secs(3600),
            }
        );
    }

    #[test]
    fn without_events_a_file_found_open_waits_again_until_the_hold_limit() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("a", 1), Seen::Scan, t0);
        assert_eq!(s.due(ms(t0, 2000), 10).len(), 1);
        assert_eq!(s.found_open(b"a", v("a", 2), false, ms(t0, 2000)), None);
        assert_eq!(s.writer(b"a"), Some(Writer::Unknown));
        assert!(s.due(ms(t0, 3999), 10).is_empty(), "quiet again from now");
        assert_eq!(s.due(ms(t0, 4000), 10).len(), 1);
        assert_eq!(s.found_open(b"a", v("a", 2), false, ms(t0, 4000)), None);
        assert_eq!(
            s.found_open(b"a", v("a", 3), false, ms(t0, 62_000)),
            Some(Complete {
                version: v("a", 3),
                still_open: true
            }),
            "found open for the hold limit (60 s) since the first probe"
        );
        assert!(s.is_empty());
        // With events it is held as written.
        s.see(v("b", 1), Seen::Scan, t0);
        assert_eq!(s.found_open(b"b", v("b", 1), true, ms(t0, 2000)), None);
        assert_eq!(
            s.writer(b"b"),
            Some(Writer::Open {
                since: ms(t0, 2000)
            })
        );
    }

    #[test]
    fn a_path_is_due_once_however_often_its_wait_moves_earlier() {
        let t0 = Instant::now();
        let mut s = writers();
        s.see(v("a", 1), Seen::Written, t0); // due at the hold limit
        s.see(v("a", 1), Seen::Closed, ms(t0, 10)); // due at 310
        s.forget_writers(); // due at 2010
        s.see(v("a", 1), Seen::Closed, ms(t0, 20)); // due at 320
        assert_eq!(s.due(ms(t0, 3_600_000), 10), vec![b"a".to_vec()]);
    }
}
