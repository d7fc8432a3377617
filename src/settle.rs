//! When a file is complete: unchanged (size, mtime, inode) for `watch.settle_ms`.
//!
//! Owns: the set of pending files ([`Settler`]), each with the version last seen and the
//! instant it was first seen in that state, and a queue ordered by when each is next due
//! for a check; and the same rule for many files at once in constant memory per file
//! ([`Bulk`]: two scans at least `settle_ms` apart saw the same version). Pure logic with
//! the time passed in, so it is tested without sleeping.
//! Does not own: stat calls (`discover` observes and passes versions in, and stats each
//! due path again before [`Settler::confirm`]), events, scans or the index (`discover`
//! sends what is complete to the index writer).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::index::FileVersion;

#[derive(Debug)]
struct Pending {
    seen: FileVersion,
    /// When the file was first seen in the state `seen` (or last touched by an event).
    since: Instant,
    /// Identifies this pending record in the queue (a forgotten and re-added path gets a
    /// new one, so old queue entries are ignored).
    generation: u64,
}

/// The pending files.
#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    pending: HashMap<Vec<u8>, Pending>,
    queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    next_generation: u64,
}

impl Settler {
    /// A settler that wants `settle` of quiet before a file counts as complete.
    pub fn new(settle: Duration) -> Settler {
        Settler {
            settle,
            pending: HashMap::new(),
            queue: BinaryHeap::new(),
            next_generation: 0,
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
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// A file was seen in state `v` (by a scan or after an event). If it is new, or its
    /// state differs from what was seen before, or `changed` says an event reported a
    /// write, its quiet period starts again now.
    pub fn observe(&mut self, v: FileVersion, changed: bool, now: Instant) {
        match self.pending.get_mut(&v.rel) {
            Some(p) => {
                if changed || p.seen != v {
                    p.seen = v;
                    p.since = now;
                }
            }
            None => {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.queue
                    .push(Reverse((now + self.settle, generation, v.rel.clone())));
                self.pending.insert(
                    v.rel.clone(),
                    Pending {
                        seen: v,
                        since: now,
                        generation,
                    },
                );
            }
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

    /// The paths whose quiet period has run out by `now`; each must be stat'ed and passed
    /// to [`Settler::confirm`]. At most `limit` at a time.
    pub fn due(&mut self, now: Instant, limit: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(Reverse((at, _, _))) = self.queue.peek() else {
                break;
            };
            if *at > now {
                break;
            }
            let Some(Reverse((_, generation, rel))) = self.queue.pop() else {
                break;
            };
            let Some(p) = self.pending.get(&rel) else {
                continue;
            };
            if p.generation != generation {
                continue;
            }
            let ready_at = p.since + self.settle;
            if ready_at > now {
                // Touched since it was queued: wait for the rest of its quiet period.
                self.queue.push(Reverse((ready_at, generation, rel)));
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
            self.queue
                .push(Reverse((now + self.settle, p.generation, rel.to_vec())));
        }
    }

    /// The result of stat'ing a due path: `None` if it is gone or no longer a regular
    /// file. Returns the version when it is complete (unchanged since it was seen);
    /// otherwise the quiet period starts again.
    pub fn confirm(
        &mut self,
        rel: &[u8],
        current: Option<FileVersion>,
        now: Instant,
    ) -> Option<FileVersion> {
        let p = self.pending.get_mut(rel)?;
        match current {
            None => {
                self.pending.remove(rel);
                None
            }
            Some(cur) if cur == p.seen && p.since + self.settle <= now => {
                self.pending.remove(rel);
                Some(cur)
            }
            Some(cur) => {
                p.seen = cur;
                p.since = now;
                self.queue
                    .push(Reverse((now + self.settle, p.generation, rel.to_vec())));
                None
            }
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

    /// Whether it remembers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}
