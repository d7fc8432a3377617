//! The `triggerState` parser: any text either parses or is refused with a message that
//! shows a valid value; what parses prints as RFC 3339 UTC with nanoseconds, fits in a
//! header, and parses back to the same stamp.
#![no_main]

use filetrigger::stamp::{Stamp, EXAMPLE};
use hyper::header::HeaderValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Stamp::parse(text) {
        Ok(stamp) => {
            let shown = stamp.to_string();
            // 2026-11-25T16:47:00.123456789Z: four-digit years over the whole i64 range.
            assert_eq!(shown.len(), 30, "{text:?} shows as {shown:?}");
            assert!(shown.ends_with('Z'), "{text:?} shows as {shown:?}");
            assert!(HeaderValue::from_str(&shown).is_ok(), "{shown:?}");
            let again = Stamp::parse(&shown)
                .unwrap_or_else(|e| panic!("{text:?} shows as {shown:?}, which is refused: {e}"));
            assert_eq!(again, stamp, "{text:?} -> {shown:?} -> {again:?}");
        }
        Err(e) => {
            assert!(
                e.value.chars().count() <= 80,
                "the echoed value is not truncated"
            );
            assert!(e.to_string().contains(EXAMPLE), "{e}");
        }
    }
});
