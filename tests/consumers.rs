//! Named durable consumers (issue 12, part 1): `consumer=NAME` on the triggers keeps the
//! acknowledged position in the index, so a workflow that lost its cursor (disabled and
//! enabled, re-saved) continues where it stood; the listing, delete, and the CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// Follows the engine's way from `url` (with or without `triggerState`) until a `202`:
/// the paths received (fences too) and the `Location` of that `202`.
fn follow(url: &str) -> (Vec<String>, String) {
    let mut next = url.to_string();
    let mut got = Vec::new();
    for _ in 0..1000 {
        let r = get(&next).unwrap();
        match r.status {
            200 => {
                got.push(r.json()["path"].as_str().unwrap().to_string());
                next = r.location();
            }
            202 => return (got, r.location()),
            other => panic!(
                "{next} answered {other}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
    panic!("never reached a 202");
}

/// Puts `names` and waits until the daemon indexed `total` files in all.
fn put_all(site: &Site, d: &Daemon, names: &[&str], total: u64) {
    for n in names {
        site.put(n, n.as_bytes());
    }
    wait_for("the files to be indexed", WAIT, || indexed(d) >= total);
}

fn consumers(d: &Daemon) -> Value {
    let r = get(&format!("{}/watches/default/consumers", d.base())).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn a_consumer_that_lost_its_cursor_continues_where_it_stood_across_restarts_and_kill_9() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let first = format!("{}?consumer=invoices", d.trigger_url());
    let r = get(&first).unwrap();
    assert_eq!(r.status, 202);
    assert!(
        r.location().contains("consumer=invoices"),
        "{}",
        r.location()
    );
    put_all(&site, &d, &["a.txt", "b.txt"], 2);
    let (got, _) = follow(&r.location());
    assert_eq!(got, ["a.txt", "b.txt"]);
    // The workflow is disabled and enabled again: its next call carries no cursor.
    put_all(&site, &d, &["c.txt", "d.txt"], 4);
    let (got, at) = follow(&first);
    assert_eq!(got, ["c.txt", "d.txt"], "the files that came meanwhile");
    assert!(at.contains("consumer=invoices") && at.contains("triggerState="));
    // A clean restart, then files, then the cursor dropped again.
    drop(at);
    assert!(d.terminate().success());
    let d = site.daemon(SETTLE, &[]);
    put_all(&site, &d, &["e.txt"], 5);
    let (got, _) = follow(&format!("{}?consumer=invoices", d.trigger_url()));
    assert_eq!(got, ["e.txt"]);
    // kill -9 right after the acknowledgement: it was durable before the answer.
    d.kill9();
    let d = site.daemon(SETTLE, &[]);
    put_all(&site, &d, &["f.txt"], 6);
    let (got, at) = follow(&format!("{}?consumer=invoices", d.trigger_url()));
    assert_eq!(got, ["f.txt"]);
    // Nothing is delivered twice: from its position, nothing more waits.
    let mut p = Poller::at(at);
    p.expect_nothing_more(&site, quiet(SETTLE));
}

#[test]
fn an_older_cursor_replays_without_moving_the_position_back() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let first = format!("{}?consumer=c1", d.trigger_url());
    let r = get(&first).unwrap();
    put_all(&site, &d, &["a.txt", "b.txt"], 2);
    let (got, _) = follow(&r.location());
    assert_eq!(got, ["a.txt", "b.txt"]);
    let position = consumers(&d)["value"][0]["position"]
        .as_str()
        .unwrap()
        .to_string();
    // An old cursor (the engine replays): everything again, from the start.
    let (got, _) = follow(&format!(
        "{first}&triggerState=2000-01-01T00:00:00.000000000Z"
    ));
    assert_eq!(got, ["a.txt", "b.txt"]);
    let r = get(&format!(
        "{first}&triggerState=2000-01-01T00:00:00.000000000Z"
    ))
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        consumers(&d)["value"][0]["position"].as_str().unwrap(),
        position,
        "the stored position moved back"
    );
    // Without a cursor it goes on from the stored position: nothing waits.
    let r = get(&first).unwrap();
    assert_eq!(r.status, 202);
    assert_eq!(decode(&cursor_of(&r.location())), position);
}

#[test]
fn consumers_are_independent_and_anonymous_polls_unchanged() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let x = get(&format!("{}?consumer=x", d.trigger_url())).unwrap();
    let y = get(&format!("{}/watches/default/trigger?consumer=y", d.base())).unwrap();
    put_all(&site, &d, &["a.txt", "b.txt"], 2);
    let (got, _) = follow(&x.location());
    assert_eq!(got, ["a.txt", "b.txt"]);
    // y has acknowledged nothing yet: without a cursor it starts where it began.
    let (got, _) = follow(&format!("{}/watches/default/trigger?consumer=y", d.base()));
    assert_eq!(got, ["a.txt", "b.txt"]);
    drop(y);
    // The batch trigger takes a consumer too.
    put_all(&site, &d, &["c.txt"], 3);
    let b = get(&format!("{}/watches/default/batch?consumer=x", d.base())).unwrap();
    assert_eq!(b.status, 200, "{}", String::from_utf8_lossy(&b.body));
    assert_eq!(b.json()[0]["path"], "c.txt");
    // An anonymous first call is a 202 at "now", as always, and stores nothing.
    let r = get(&d.trigger_url()).unwrap();
    assert_eq!(r.status, 202);
    assert!(!r.location().contains("consumer"));
    let listed = consumers(&d);
    let names: Vec<&str> = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x", "y"]);
}

#[test]
fn the_listing_shows_position_and_waiting_and_delete_forgets() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let r = get(&format!("{}?consumer=inv", d.trigger_url())).unwrap();
    let start = decode(&cursor_of(&r.location()));
    put_all(&site, &d, &["a.txt", "b.txt", "c.txt"], 3);
    let listed = consumers(&d);
    assert_eq!(listed["value"][0]["name"], "inv");
    assert_eq!(listed["value"][0]["position"], start.as_str());
    assert_eq!(listed["value"][0]["waiting"], 3);
    // One file delivered and acknowledged (the next poll carries its stamp).
    let one = get(&r.location()).unwrap();
    assert_eq!(one.status, 200);
    get(&one.location()).unwrap();
    let listed = consumers(&d);
    assert_eq!(listed["value"][0]["waiting"], 2);
    assert_eq!(
        listed["value"][0]["position"],
        one.json()["indexedAt"].as_str().unwrap()
    );
    let url = format!("{}/watches/default/consumers/inv", d.base());
    let del = request("DELETE", &url).unwrap();
    assert_eq!(del.status, 200);
    assert_eq!(del.json()["deleted"], "inv");
    let again = request("DELETE", &url).unwrap();
    assert_eq!(again.status, 404);
    assert_eq!(again.json()["error"]["code"], "consumer_not_found");
    assert_eq!(consumers(&d)["value"], serde_json::json!([]));
    // Deleted: its next first call starts at "now" again.
    let r = get(&format!("{}?consumer=inv", d.trigger_url())).unwrap();
    assert_eq!(r.status, 202);
}

#[test]
fn a_bad_consumer_name_is_a_400_naming_it() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    for q in [
        "consumer=",
        "consumer=a%20b",
        "consumer=a/b",
        "consumer=a&consumer=b",
    ] {
        let r = get(&format!("{}?{q}", d.trigger_url())).unwrap();
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["error"]["code"], "bad_consumer", "{q}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("consumer"),
            "{q}"
        );
    }
    let long = "x".repeat(65);
    let r = get(&format!("{}?consumer={long}", d.trigger_url())).unwrap();
    assert_eq!(r.status, 400);
    let r = request(
        "DELETE",
        &format!("{}/watches/default/consumers/a%20b", d.base()),
    )
    .unwrap();
    assert_eq!(r.status, 400);
}

/// Runs `filetrigger ARGS` to completion: (exit code, stdout, stderr).
fn ft(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_lists_and_deletes_consumers() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let r = get(&format!("{}?consumer=invoices", d.trigger_url())).unwrap();
    let start = decode(&cursor_of(&r.location()));
    put_all(&site, &d, &["a.txt"], 1);
    let cwd = site.tmp.path();
    let base = d.base();
    let (code, out, err) = ft(cwd, &["consumers", "--url", &base, "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("invoices"), "{out}");
    assert!(out.contains(&start), "{out}");
    assert!(out.contains("waiting 1"), "{out}");
    let (code, out, err) = ft(
        cwd,
        &[
            "consumers",
            "--url",
            &base,
            "--folder",
            "default",
            "delete",
            "invoices",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted invoices"), "{out}");
    let (code, _, err) = ft(cwd, &["consumers", "--url", &base, "delete", "invoices"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("invoices"), "{err}");
    let (code, out, _) = ft(cwd, &["consumers", "--url", &base, "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("no consumers"), "{out}");
}
