//! `filetrigger status`: asks the running daemon's `/healthz` and prints a short summary
//! for a person.
//!
//! Owns: the summary's wording and the exit status (0 serving, 1 answering but not
//! serving, 3 no answer, 2 unusable settings).
//! Does not own: what the daemon reports (`health` on the daemon's side) or the HTTP
//! client (`cli::client`).

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::Remote;
use crate::stamp::Stamp;

/// What each status word means, and what to do about it.
fn advice(status: &str) -> Option<&'static str> {
    Some(match status {
        "ok" => "serving",
        "starting" => "the start-up scan is running; polls wait until it is done",
        "degraded" => {
            "serving, but part of the tree is covered by periodic scans only (inotify watch limit?); see the log"
        }
        "index_failing" => {
            "the index cannot be written (state.dir full or read-only?); polls serve what is committed"
        }
        "watched_dir_unavailable" => {
            "the watched directory is gone or cannot be listed (unmounted share? permissions?)"
        }
        _ => return None,
    })
}

/// Runs `status`.
pub async fn run(config: Option<&Path>, remote: Remote) -> ExitCode {
    let settings = match super::client_settings(config, &remote) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let base = match super::base_url(settings.as_ref(), &remote) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("filetrigger: {e}");
            return ExitCode::from(2);
        }
    };
    let mut client = match super::client(settings.as_ref(), &remote) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("filetrigger: {e}");
            return ExitCode::from(2);
        }
    };
    let reply = match client.get(&format!("{base}/healthz")).await {
        Ok(r) => r,
        Err(e) => {
            println!("filetrigger at {base}: not answering ({e})");
            return ExitCode::from(3);
        }
    };
    let body: Value = match serde_json::from_slice(&reply.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            println!(
                "filetrigger at {base}: answered {} with no status (is it filetrigger?)",
                reply.status
            );
            return ExitCode::from(3);
        }
    };
    print!(
        "{}",
        summary(&base, reply.status.as_u16(), &body, Stamp::now())
    );
    if reply.status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The summary, one fact per line.
fn summary(base: &str, code: u16, body: &Value, now: Stamp) -> String {
    let status = body["status"].as_str().unwrap_or("unknown");
    let mut out = format!("filetrigger at {base}: {status} ({code})\n");
    if let Some(a) = advice(status) {
        out.push_str(&format!("  {:<14} {a}\n", "meaning:"));
    }
    let number = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    out.push_str(&format!(
        "  {:<14} {}\n",
        "files indexed:",
        number(&body["filesIndexed"])
    ));
    out.push_str(&format!(
        "  {:<14} {}\n",
        "pending:",
        number(&body["pending"])
    ));
    let last = match body["lastRescan"].as_str() {
        None => "not yet".to_string(),
        Some(t) => match Stamp::parse(t) {
            Ok(s) => format!("{t} ({} ago)", age(now.0.saturating_sub(s.0))),
            Err(_) => t.to_string(),
        },
    };
    out.push_str(&format!("  {:<14} {last}\n", "last scan:"));
    out.push_str(&format!(
        "  {:<14} {}\n",
        "watcher:",
        number(&body["watcher"])
    ));
    // Whatever else the daemon reports (fields added by later versions).
    if let Value::Object(map) = body {
        for (k, v) in map {
            if !["status", "filesIndexed", "pending", "lastRescan", "watcher"].contains(&k.as_str())
            {
                out.push_str(&format!("  {:<14} {}\n", format!("{k}:"), number(v)));
            }
        }
    }
    out
}

/// A duration in nanoseconds, roughly, for a person.
fn age(ns: i64) -> String {
    let s = ns.max(0) / 1_000_000_000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_fact_and_explains_the_state() {
        let body = serde_json::json!({
            "status": "degraded", "filesIndexed": 12, "pending": 1,
            "watcher": "degraded", "lastRescan": "2026-11-25T16:47:00Z",
            "scan": {"files": 3}
        });
        let now = Stamp::parse("2026-11-25T16:52:00Z").unwrap();
        let text = summary("http://127.0.0.1:8080", 200, &body, now);
        assert!(text.starts_with("filetrigger at http://127.0.0.1:8080: degraded (200)\n"));
        assert!(text.contains("files indexed: 12\n"), "{text}");
        assert!(text.contains("pending:       1\n"), "{text}");
        assert!(
            text.contains("last scan:     2026-11-25T16:47:00Z (5 min ago)"),
            "{text}"
        );
        assert!(text.contains("watcher:       degraded\n"), "{text}");
        assert!(text.contains("scan:"), "{text}");
        assert!(text.contains("periodic scans"), "{text}");
    }

    #[test]
    fn every_status_word_of_healthz_has_advice() {
        for w in [
            "ok",
            "starting",
            "degraded",
            "index_failing",
            "watched_dir_unavailable",
        ] {
            assert!(advice(w).is_some(), "{w}");
        }
    }
}
