//! `filetrigger poll`: the Logic Apps engine's side of the polling exchange, against the
//! running daemon, printing one JSON line per file.
//!
//! Owns: the engine's loop (first call without `triggerState` or from `--since`, follow
//! `Location` exactly as given, wait `Retry-After`, stop at the first `202` unless
//! `--follow`), the printed line (the `200` body, without `content` unless `--content`),
//! what a failed poll does (retry the same URL when following, else exit 1), and a clean
//! stop on SIGINT/SIGTERM (exit 0, never half a line).
//! Does not own: the exchange's rules (`routes::trigger` on the daemon's side) or HTTP
//! (`cli::client`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::client::{Client, Reply};
use super::PollArgs;
use crate::stamp::Stamp;

/// The engine waits at least its recurrence after a `202`; this stands in for it, so a
/// daemon configured with `Retry-After: 0` is not polled in a tight loop.
const MIN_WAIT_AFTER_202: Duration = Duration::from_secs(1);

/// Wait before retrying a failed poll when the answer gave no `Retry-After`.
const RETRY_FAILED: Duration = Duration::from_secs(5);

/// What to do after one answer.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Call this URL after this wait.
    Call(String, Duration),
    /// Stop with this exit status.
    Stop(u8),
}

/// Runs `poll`.
pub async fn run(config: Option<&Path>, args: PollArgs) -> ExitCode {
    let settings = match super::client_settings(config, &args.remote) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let base = match super::base_url(settings.as_ref(), &args.remote) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("filetrigger: {e}");
            return ExitCode::from(2);
        }
    };
    let mut url = format!("{base}/trigger");
    if let Some(since) = &args.since {
        match Stamp::parse(since) {
            Ok(s) => url.push_str(&format!("?triggerState={s}")),
            Err(e) => {
                eprintln!("filetrigger: --since: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut client = match super::client(settings.as_ref(), &args.remote) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("filetrigger: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = CancellationToken::new();
    if let Err(e) = crate::shutdown::cancel_on_signals(stop.clone()) {
        eprintln!("filetrigger: cannot handle signals: {e}");
        return ExitCode::from(1);
    }
    ExitCode::from(poll_loop(&mut client, url, &args, &stop).await)
}

async fn poll_loop(
    client: &mut Client,
    mut url: String,
    args: &PollArgs,
    stop: &CancellationToken,
) -> u8 {
    let mut out = std::io::stdout();
    loop {
        let reply = tokio::select! {
            r = client.get(&url) => r,
            _ = stop.cancelled() => return 0,
        };
        let next = match reply {
            Ok(reply) => answer(&url, &reply, args, &mut out),
            Err(e) if args.follow => {
                eprintln!(
                    "filetrigger: poll failed ({e}); retrying in {} s",
                    RETRY_FAILED.as_secs()
                );
                Next::Call(url.clone(), RETRY_FAILED)
            }
            Err(e) => {
                eprintln!("filetrigger: poll failed: {e}");
                Next::Stop(1)
            }
        };
        let wait = match next {
            Next::Stop(code) => return code,
            Next::Call(next, wait) => {
                url = next;
                wait
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return 0,
            }
        }
    }
}

/// Handles one answer: prints a file, and says what comes next.
fn answer(url: &str, reply: &Reply, args: &PollArgs, out: &mut impl Write) -> Next {
    let retry_after = reply
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let location = reply.header("location").map(str::to_string);
    match reply.status {
        StatusCode::OK | StatusCode::ACCEPTED => {
            let Some(location) = location.filter(|l| l.contains("://")) else {
                eprintln!(
                    "filetrigger: a {} without an absolute Location: is this a filetrigger trigger?",
                    reply.status
                );
                return Next::Stop(1);
            };
            let wait = retry_after.unwrap_or(Duration::ZERO);
            let nothing_more = |location: &str| {
                match cursor_of(location) {
                    Some(c) => eprintln!("filetrigger: nothing more; resume with --since {c}"),
                    None => eprintln!("filetrigger: nothing more"),
                }
                Next::Stop(0)
            };
            if reply.status == StatusCode::ACCEPTED {
                if !args.follow {
                    return nothing_more(&location);
                }
                return Next::Call(location, wait.max(MIN_WAIT_AFTER_202));
            }
            match print_file(&reply.body, args.content, out) {
                // A 200 with a Retry-After other than 0 says no other file waits now: the
                // next call, after that wait, would be the 202 a run without --follow
                // stops at.
                Ok(()) if !args.follow && !wait.is_zero() => nothing_more(&location),
                Ok(()) => Next::Call(location, wait),
                // stdout closed (`| head`): the reader has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Next::Stop(0),
                Err(e) => {
                    eprintln!("filetrigger: {e}");
                    Next::Stop(1)
                }
            }
        }
        status
            if args.follow
                && (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) =>
        {
            let wait = retry_after.unwrap_or(RETRY_FAILED);
            eprintln!(
                "filetrigger: the daemon answered {status}; retrying in {} s: {}",
                wait.as_secs(),
                brief(&reply.body)
            );
            Next::Call(url.to_string(), wait)
        }
        status => {
            eprintln!(
                "filetrigger: the daemon answered {status}: {}",
                brief(&reply.body)
            );
            if status == StatusCode::UNAUTHORIZED {
                eprintln!("filetrigger: give credentials with --user or --api-key (see --help)");
            }
            Next::Stop(1)
        }
    }
}

/// Writes one file's line: the body, without `content` unless asked for, in one write.
fn print_file(body: &[u8], content: bool, out: &mut impl Write) -> std::io::Result<()> {
    let mut v: Ordered = serde_json::from_slice(body)
        .map_err(|e| std::io::Error::other(format!("a 200 whose body is not JSON: {e}")))?;
    if !content {
        v.0.retain(|(k, _)| k != "content");
    }
    let mut line = serde_json::to_vec(&v).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// A JSON object with its fields in the daemon's order (`path` first), which
/// `serde_json::Map` would sort.
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}

impl serde::Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The `triggerState` in a Location, decoded.
fn cursor_of(location: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("triggerState="))?;
    Some(
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// An error body, short, on one line.
fn brief(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderMap, HeaderValue};

    fn reply(status: u16, location: Option<&str>, retry: Option<&str>, body: &str) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(l) = location {
            headers.insert("location", HeaderValue::from_str(l).unwrap());
        }
        if let Some(r) = retry {
            headers.insert("retry-after", HeaderValue::from_str(r).unwrap());
        }
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn args(follow: bool, content: bool) -> PollArgs {
        PollArgs {
            remote: super::super::Remote {
                url: None,
                user: None,
                api_key: None,
                cacert: None,
            },
            since: None,
            follow,
            content,
        }
    }

    const L: &str = "http://h/trigger?triggerState=2026-11-25T16%3A47%3A00Z";

    #[test]
    fn a_file_is_printed_without_content_and_location_followed_after_retry_after() {
        let mut out = Vec::new();
        let body = r#"{"path":"a.txt","size":1,"content":{"$content":"YQ=="}}"#;
        let next = answer(
            "u",
            &reply(200, Some(L), Some("0"), body),
            &args(false, false),
            &mut out,
        );
        assert_eq!(next, Next::Call(L.into(), Duration::ZERO));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"path\":\"a.txt\",\"size\":1}\n"
        );
        let mut out = Vec::new();
        answer(
            "u",
            &reply(200, Some(L), Some("15"), body),
            &args(false, true),
            &mut out,
        );
        assert!(String::from_utf8(out).unwrap().contains("YQ=="));
    }

    #[test]
    fn a_202_stops_unless_following_and_a_failure_is_retried_only_when_following() {
        let mut out = Vec::new();
        assert_eq!(
            answer(
                "u",
                &reply(202, Some(L), Some("15"), ""),
                &args(false, false),
                &mut out
            ),
            Next::Stop(0)
        );
        assert_eq!(
            answer(
                "u",
                &reply(202, Some(L), Some("0"), ""),
                &args(true, false),
                &mut out
            ),
            Next::Call(L.into(), MIN_WAIT_AFTER_202)
        );
        assert_eq!(
            answer(
                "u",
                &reply(503, None, Some("2"), "{}"),
                &args(true, false),
                &mut out
            ),
            Next::Call("u".into(), Duration::from_secs(2))
        );
        assert_eq!(
            answer(
                "u",
                &reply(503, None, None, "{}"),
                &args(false, false),
                &mut out
            ),
            Next::Stop(1)
        );
        assert_eq!(
            answer(
                "u",
                &reply(400, None, None, "{}"),
                &args(true, false),
                &mut out
            ),
            Next::Stop(1)
        );
        assert!(out.is_empty());
        assert_eq!(cursor_of(L).as_deref(), Some("2026-11-25T16:47:00Z"));
    }
}
