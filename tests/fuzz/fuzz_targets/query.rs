//! The request-only part of `GET /trigger` (`routes::fuzzing::decide`): query parsing with
//! percent-decoding, the base URL from `Host`, `X-Forwarded-*` or `server.public_url`,
//! and both `Location`s. A refusal is a 4xx; every `Location` is absolute, under 2 KB,
//! and following it is a poll with the intended cursor and the same other parameters.
#![no_main]

use filetrigger::routes::fuzzing;
use filetrigger_fuzz::{check_location, check_refusal, Daemon, Input};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let uri = input.request.uri();
    if uri.path() != "/trigger" {
        return; // routed elsewhere; the `request` target covers that
    }
    let query = uri.query().unwrap_or("");
    let state = Daemon::get().state(&input);
    let decision =
        match fuzzing::decide(&state, input.peer, input.secure, &input.request, input.next) {
            Ok(d) => d,
            Err(status) => return check_refusal(status, &input),
        };
    let (pairs, cursor) = fuzzing::parse_query(query)
        .unwrap_or_else(|s| panic!("decide accepted what parse_query refuses ({s}): {query:?}"));
    assert_eq!(cursor, decision.cursor, "{query:?}");
    match &decision.moved {
        Ok(location) => {
            let moved_to = check_location(location, Some(&pairs));
            assert_eq!(moved_to, Some(input.next), "{location:?}");
        }
        Err(status) => check_refusal(*status, &input),
    }
    if cursor.is_some() {
        match &decision.unchanged {
            Ok(location) => {
                let kept = check_location(location, Some(&pairs));
                assert_eq!(kept, cursor, "{location:?}");
            }
            Err(status) => check_refusal(*status, &input),
        }
    }
});
