//! The durable first-call cursor: what a first call (no `triggerState`) gets as its
//! cursor, and the promise that survives a restart.
//!
//! Owns: the invariant "every stamp handed out later, in this run or after a restart, is
//! after every first-call cursor handed out", and the lease that keeps first calls from
//! writing on every call: a cursor is handed out only once a durable reservation in the
//! index covers it, and one reservation reaches [`LEASE`] ahead.
//! Does not own: the mechanics it uses, which are the clock's floor and its in-memory
//! `reserved` ceiling (`stamp::StampClock`), and the reservation's commit
//! (`index::WriterHandle::reserve`, which raises that ceiling once committed).

use std::sync::Arc;

use crate::error::IndexError;
use crate::index::WriterHandle;
use crate::stamp::{Stamp, StampClock};

/// How far ahead a first-call cursor reservation reaches, so first calls write at most
/// about once per this interval (nanoseconds).
const LEASE: i64 = 1_000_000_000;

/// Hands out first-call cursors that stay before every later stamp, across restarts.
#[derive(Debug, Clone)]
pub(crate) struct FirstCursor {
    clock: Arc<StampClock>,
    writer: WriterHandle,
}

impl FirstCursor {
    /// Over the index's clock and its writer.
    pub(crate) fn new(clock: Arc<StampClock>, writer: WriterHandle) -> FirstCursor {
        FirstCursor { clock, writer }
    }

    /// A cursor meaning "now", durably covered before it is returned: when the current
    /// reservation does not reach it, a new one up to [`LEASE`] ahead is committed first.
    ///
    /// # Errors
    /// The reservation's commit failed (the state disk is full or read-only, or the writer
    /// has stopped): no cursor may be handed out.
    pub(crate) async fn now(&self) -> Result<Stamp, IndexError> {
        let now = self.clock.cursor_now();
        if now > self.clock.reserved() {
            self.writer
                .reserve(Stamp(now.0.saturating_add(LEASE)))
                .await?;
        }
        Ok(now)
    }
}

impl FirstCursor {
    /// The greatest cursor handed out so far could be (the clock's floor or its durable
    /// reservation, whichever is later): an acknowledgement is never stored past it.
    pub(crate) fn horizon(&self) -> Stamp {
        self.clock.floor().max(self.clock.reserved())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use crate::stamp::WallClock;

    /// A wall clock stopped at one instant.
    struct Stopped(Stamp);
    impl WallClock for Stopped {
        fn now(&self) -> Stamp {
            self.0
        }
    }

    #[tokio::test]
    async fn a_first_call_cursor_is_before_every_stamp_after_a_restart_with_the_clock_back() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = {
            let index = Index::open(dir.path(), Arc::new(Stopped(Stamp(50 * LEASE)))).unwrap();
            let (writer, join) = index.start_writer(4).unwrap();
            let first = FirstCursor::new(index.clock(), writer.clone());
            let cursor = first.now().await.unwrap();
            assert_eq!(cursor, Stamp(50 * LEASE));
            assert!(index.clock().reserved() >= cursor, "handed out uncovered");
            assert!(
                first.now().await.unwrap() >= cursor,
                "a cursor went backwards"
            );
            drop(first);
            writer.stop().await;
            drop(writer);
            tokio::task::spawn_blocking(move || join.join().unwrap())
                .await
                .unwrap();
            cursor
        };
        // Restarted with the wall clock far behind: the reservation alone keeps new
        // stamps after the cursor the client holds.
        let index = Index::open(dir.path(), Arc::new(Stopped(Stamp(LEASE)))).unwrap();
        assert!(index.clock().next_stamp() > cursor);
    }
}
