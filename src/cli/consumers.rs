//! `filetrigger consumers list|delete NAME`: a folder's named consumers, over HTTP.
//!
//! Owns: the two requests (`GET /watches/F/consumers`, `DELETE /watches/F/consumers/NAME`),
//! the lines printed, and the exit status (0 done, 1 refused by the daemon, 2 unusable
//! settings, 3 no answer).
//! Does not own: what a consumer is (`routes::consumers` on the daemon's side) or the
//! HTTP client (`cli::client`).

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::{ConsumersAction, ConsumersArgs};

/// Runs `consumers`.
pub async fn run(config: Option<&Path>, args: ConsumersArgs) -> ExitCode {
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
    let mut client = match super::client(settings.as_ref(), &args.remote) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("filetrigger: {e}");
            return ExitCode::from(2);
        }
    };
    let folder = utf8_percent(&args.folder);
    let (method, url) = match &args.action {
        ConsumersAction::List => (
            hyper::Method::GET,
            format!("{base}/watches/{folder}/consumers"),
        ),
        ConsumersAction::Delete { name } => (
            hyper::Method::DELETE,
            format!("{base}/watches/{folder}/consumers/{}", utf8_percent(name)),
        ),
    };
    let reply = match client.request(method, &url).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("filetrigger at {base}: not answering ({e})");
            return ExitCode::from(3);
        }
    };
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    if !reply.status.is_success() {
        let message = body["error"]["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&reply.body).into_owned(),
            str::to_string,
        );
        eprintln!("filetrigger: {}: {message}", reply.status);
        return ExitCode::from(1);
    }
    match args.action {
        ConsumersAction::List => {
            let empty = Vec::new();
            let list = body["value"].as_array().unwrap_or(&empty);
            if list.is_empty() {
                println!("no consumers in the folder {}", args.folder);
            }
            for c in list {
                println!(
                    "{}\tposition {}\twaiting {}",
                    c["name"].as_str().unwrap_or("?"),
                    c["position"].as_str().unwrap_or("?"),
                    c["waiting"]
                );
            }
        }
        ConsumersAction::Delete { name } => println!("deleted {name}"),
    }
    ExitCode::SUCCESS
}

/// What a path segment keeps as it is: letters, digits and `-._~`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment.
fn utf8_percent(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}
