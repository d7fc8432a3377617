//! A whole request through `routes::handle` (limits, routing, the poll) against a real
//! index holding one file: never a 5xx, an error is JSON, and a poll's answer has a
//! `Retry-After` and a `Location` that is absolute, under 2 KB, and carries the right
//! cursor (the file's stamp on `200`, the one sent on "nothing new").
#![no_main]

use filetrigger::routes::{self, fuzzing};
use filetrigger_fuzz::{check_location, check_refusal, Daemon, Input};
use hyper::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let daemon = Daemon::get();
    let state = daemon.state(&input);
    let response = daemon.runtime.block_on(routes::handle(
        &state,
        input.peer,
        input.secure,
        input.request(),
    ));
    let status = response.status();
    let headers = response.headers();
    let uri = input.request.uri();
    let is_poll = input.request.method() == Method::GET && uri.path() == "/trigger";
    if !status.is_success() {
        check_refusal(status, &input);
        assert_eq!(
            headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(b"application/json".as_slice()),
            "{status} for {input:?}"
        );
        return;
    }
    if !is_poll {
        return;
    }
    let location = headers
        .get(LOCATION)
        .unwrap_or_else(|| panic!("{status} without Location for {input:?}"));
    let moved_to = check_location(location, None);
    let retry = headers
        .get(RETRY_AFTER)
        .unwrap_or_else(|| panic!("{status} without Retry-After for {input:?}"));
    assert!(
        !retry.is_empty() && retry.as_bytes().iter().all(u8::is_ascii_digit),
        "Retry-After {retry:?}"
    );
    let (_, sent) = fuzzing::parse_query(uri.query().unwrap_or(""))
        .unwrap_or_else(|s| panic!("{status} for a query that parse_query refuses ({s})"));
    match (status, sent) {
        (StatusCode::OK, _) => assert_eq!(moved_to, Some(daemon.file_stamp), "{location:?}"),
        (StatusCode::ACCEPTED, Some(_)) => assert_eq!(moved_to, sent, "{location:?}"),
        (StatusCode::ACCEPTED, None) => assert!(moved_to.is_some(), "{location:?}"),
        _ => panic!("a poll answered {status}"),
    }
});
