//! Index stamps and the cursor (`triggerState`) format.
//!
//! Owns: the [`Stamp`] type (nanoseconds since the Unix epoch, UTC), its RFC 3339 text
//! form, and the [`StampClock`] that hands out unique, strictly increasing stamps that
//! never go backwards even when the wall clock does.
//! Does not own: persistence of the clock's floor (the index writer stores it) or the
//! HTTP handling of a bad cursor (`routes` maps [`StampParseError`] to a `400`).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time with nanosecond resolution, as `i64` nanoseconds since 1970-01-01 UTC.
///
/// This is the key of the index and the value of `triggerState`. The range is that of
/// `i64` nanoseconds (years 1677 to 2262); a cursor outside it is clamped to the nearest
/// end, which keeps "after T" meaning the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(pub i64);

/// Why a `triggerState` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not an RFC 3339 timestamp ({reason}); a valid value looks like 2026-11-25T16:47:00.123456789Z")]
pub struct StampParseError {
    /// The value as given (truncated when very long).
    pub value: String,
    /// The parser's complaint.
    pub reason: String,
}

/// An example of a valid cursor, for error messages.
pub const EXAMPLE: &str = "2026-11-25T16:47:00.123456789Z";

impl Stamp {
    /// The smallest representable stamp.
    pub const MIN: Stamp = Stamp(i64::MIN);

    /// Parses any RFC 3339 timestamp with an offset (`Z`, `+01:00`, ...).
    ///
    /// # Errors
    /// [`StampParseError`] when the text is not RFC 3339.
    pub fn parse(text: &str) -> Result<Stamp, StampParseError> {
        let parsed = DateTime::parse_from_rfc3339(text.trim()).map_err(|e| StampParseError {
            value: text.chars().take(80).collect(),
            reason: e.to_string(),
        })?;
        let utc = parsed.with_timezone(&Utc);
        Ok(match utc.timestamp_nanos_opt() {
            Some(n) => Stamp(n),
            None if utc.timestamp() < 0 => Stamp(i64::MIN),
            None => Stamp(i64::MAX),
        })
    }

    /// The stamp of a `SystemTime`, clamped to the representable range.
    pub fn from_system_time(t: std::time::SystemTime) -> Stamp {
        let utc: DateTime<Utc> = t.into();
        Stamp(utc.timestamp_nanos_opt().unwrap_or(if utc.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        }))
    }

    /// The current wall-clock time.
    pub fn now() -> Stamp {
        Stamp::from_system_time(std::time::SystemTime::now())
    }

    /// The next representable stamp (saturating).
    pub fn succ(self) -> Stamp {
        Stamp(self.0.saturating_add(1))
    }
}

impl fmt::Display for Stamp {
    /// RFC 3339 in UTC with nanoseconds: `2026-11-25T16:47:00.123456789Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = DateTime::<Utc>::from_timestamp_nanos(self.0);
        f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Nanos, true))
    }
}

/// A source of wall-clock time, injectable so tests can step it backwards.
pub trait WallClock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Stamp;
}

/// The real system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> Stamp {
        Stamp::now()
    }
}

/// Hands out stamps and first-call cursors that never go backwards.
///
/// The invariant: every stamp from [`StampClock::next_stamp`] is strictly greater than
/// every stamp and every cursor handed out before it, in this process and (through the
/// persisted floor and `reserved` ceiling) in every earlier run on the same index.
pub struct StampClock {
    wall: Arc<dyn WallClock>,
    /// The greatest stamp or cursor handed out so far.
    floor: Mutex<Stamp>,
    /// Cursors up to this value are covered by a durable reservation in the index, so they
    /// may be handed out without a write.
    reserved: AtomicI64,
}

impl fmt::Debug for StampClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StampClock")
            .field("floor", &self.floor())
            .field("reserved", &self.reserved())
            .finish()
    }
}

impl StampClock {
    /// A clock that will hand out nothing at or below `floor`, whose reservations already
    /// cover cursors up to `reserved`.
    pub fn new(wall: Arc<dyn WallClock>, floor: Stamp, reserved: Stamp) -> StampClock {
        StampClock {
            wall,
            floor: Mutex::new(floor.max(reserved)),
            reserved: AtomicI64::new(reserved.0),
        }
    }

    /// The next index stamp: the wall clock, or one nanosecond past the floor if the clock
    /// has not moved past it (a tie, or a clock that stepped backwards).
    pub fn next_stamp(&self) -> Stamp {
        let mut floor = self.floor.lock().unwrap_or_else(PoisonError::into_inner);
        let stamp = self.wall.now().max(floor.succ());
        *floor = stamp;
        stamp
    }

    /// A cursor meaning "now" for a first call: later than no stamp yet to come.
    ///
    /// The caller must make sure `reserved() >= ` the returned value before handing it
    /// out, so that it also holds across a restart: `cursor::FirstCursor` does both.
    pub fn cursor_now(&self) -> Stamp {
        let mut floor = self.floor.lock().unwrap_or_else(PoisonError::into_inner);
        let cursor = self.wall.now().max(*floor);
        *floor = cursor;
        cursor
    }

    /// The greatest stamp or cursor handed out so far.
    pub fn floor(&self) -> Stamp {
        *self.floor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cursors up to this value are durably covered.
    pub fn reserved(&self) -> Stamp {
        Stamp(self.reserved.load(Ordering::Acquire))
    }

    /// Records that cursors up to `upto` are now durably covered.
    ///
    /// This does not move the floor: within this run the floor already covers every
    /// cursor handed out, and a restart starts its floor at the persisted reservation.
    pub fn reserve(&self, upto: Stamp) {
        self.reserved.fetch_max(upto.0, Ordering::AcqRel);
    }

    /// The current wall-clock time, unadjusted.
    pub fn wall_now(&self) -> Stamp {
        self.wall.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock the test sets by hand.
    struct ManualClock(AtomicI64);
    impl WallClock for ManualClock {
        fn now(&self) -> Stamp {
            Stamp(self.0.load(Ordering::SeqCst))
        }
    }

    fn clock_at(t: i64) -> (Arc<ManualClock>, StampClock) {
        let wall = Arc::new(ManualClock(AtomicI64::new(t)));
        let clock = StampClock::new(wall.clone(), Stamp(0), Stamp(0));
        (wall, clock)
    }

    #[test]
    fn parse_and_format_round_trip_with_nanoseconds() {
        let s = Stamp::parse("2026-11-25T16:47:00.123456789Z").unwrap();
        assert_eq!(s.to_string(), "2026-11-25T16:47:00.123456789Z");
    }

    #[test]
    fn parse_accepts_offsets_and_normalises_to_utc() {
        let s = Stamp::parse("2026-11-25T17:47:00+01:00").unwrap();
        assert_eq!(s.to_string(), "2026-11-25T16:47:00.000000000Z");
    }

    #[test]
    fn parse_rejects_garbage_with_an_example() {
        for bad in [
            "",
            "yesterday",
            "2026-11-25",
            "2026-11-25T16:47:00",
            "1700000000",
        ] {
            let err = Stamp::parse(bad).unwrap_err();
            assert!(err.to_string().contains(EXAMPLE), "{err}");
        }
    }

    #[test]
    fn parse_clamps_out_of_range_years() {
        assert_eq!(Stamp::parse("1500-01-01T00:00:00Z").unwrap(), Stamp::MIN);
        assert_eq!(
            Stamp::parse("9999-01-01T00:00:00Z").unwrap(),
            Stamp(i64::MAX)
        );
    }

    #[test]
    fn stamps_are_unique_when_the_clock_stands_still() {
        let (_wall, clock) = clock_at(1_000);
        let a = clock.next_stamp();
        let b = clock.next_stamp();
        let c = clock.next_stamp();
        assert!(a < b && b < c, "{a:?} {b:?} {c:?}");
    }

    #[test]
    fn stamps_keep_rising_when_the_clock_steps_backwards() {
        let (wall, clock) = clock_at(10_000);
        let before = clock.next_stamp();
        wall.0.store(5_000, Ordering::SeqCst);
        let after = clock.next_stamp();
        assert!(after > before, "{before:?} then {after:?}");
    }

    #[test]
    fn stamps_come_after_every_cursor_handed_out_even_with_the_clock_stepped_back() {
        let (wall, clock) = clock_at(10_000);
        let cursor = clock.cursor_now();
        assert_eq!(cursor, Stamp(10_000));
        wall.0.store(1_000, Ordering::SeqCst);
        let cursor2 = clock.cursor_now();
        assert!(cursor2 >= cursor, "a cursor went backwards");
        assert!(clock.next_stamp() > cursor2);
    }

    #[test]
    fn a_restart_floor_at_the_reservation_keeps_stamps_after_old_cursors() {
        // Cursors up to 50_000 were reserved in an earlier run; the clock now reads 1_000.
        let wall = Arc::new(ManualClock(AtomicI64::new(1_000)));
        let clock = StampClock::new(wall, Stamp(20_000), Stamp(50_000));
        assert!(clock.next_stamp() > Stamp(50_000));
    }

    #[test]
    fn a_reservation_does_not_push_stamps_ahead_of_the_wall_clock() {
        let (_wall, clock) = clock_at(1_000);
        clock.reserve(Stamp(9_000));
        assert_eq!(clock.reserved(), Stamp(9_000));
        assert_eq!(clock.next_stamp(), Stamp(1_000));
    }
}
