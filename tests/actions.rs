//! The actions that change the folder (move, delete) and the wait action, against the
//! real daemon over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const WRITE: (&str, &str) = ("FILETRIGGER__ACTIONS__ALLOW_WRITE", "true");

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Drains the trigger from the beginning until `rel` arrives; returns its `indexedAt`.
fn indexed_version(d: &Daemon, rel: &str) -> String {
    let mut p = replay(d);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(g) = p.got.iter().find(|g| g.path == rel) {
            return g.indexed_at.clone();
        }
        assert!(Instant::now() < deadline, "{rel} was never offered");
        let r = p.poll();
        if r.status == 202 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn move_url(d: &Daemon, path: &str, version: &str, to: &str) -> String {
    format!(
        "{}/watches/default/move?path={}&version={}&to={}",
        d.base(),
        enc(path),
        enc(version),
        enc(to)
    )
}

fn delete_url(d: &Daemon, path: &str, version: &str) -> String {
    format!(
        "{}/watches/default/files?path={}&version={}",
        d.base(),
        enc(path),
        enc(version)
    )
}

fn code(r: &Reply) -> String {
    r.json()["error"]["code"].as_str().unwrap().to_string()
}

/// Replays the whole index and asserts that no file but fences is offered.
fn nothing_offered(site: &Site, d: &Daemon) {
    let mut p = replay(d);
    p.expect_nothing_more(site, quiet(SETTLE));
    assert!(p.got.is_empty(), "offered: {:?}", p.paths());
}

#[test]
fn move_and_delete_are_refused_while_writing_is_off() {
    let site = Site::new();
    site.put("a.txt", b"keep me");
    let d = site.daemon(SETTLE, &[]);
    let v = indexed_version(&d, "a.txt");
    let r = request("POST", &move_url(&d, "a.txt", &v, "b.txt")).unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(code(&r), "writing_disabled");
    let r = request("DELETE", &delete_url(&d, "a.txt", &v)).unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(code(&r), "writing_disabled");
    assert_eq!(std::fs::read(site.inbox.join("a.txt")).unwrap(), b"keep me");
    assert!(!site.inbox.join("b.txt").exists());
}

#[test]
fn a_stale_version_is_refused_and_nothing_is_touched() {
    let site = Site::new();
    site.put("a.txt", b"first");
    let d = site.daemon(SETTLE, &[WRITE]);
    let v = indexed_version(&d, "a.txt");
    // A version that was never the indexed one.
    let other = "2001-01-01T00:00:00.000000000Z";
    let r = request("POST", &move_url(&d, "a.txt", other, "b.txt")).unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (409, "version_changed".into()),
        "{r:?}"
    );
    let r = request("DELETE", &delete_url(&d, "a.txt", other)).unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (409, "version_changed".into()),
        "{r:?}"
    );
    // The file changes on disk: the version named is gone, whether or not the daemon has
    // indexed the new one yet.
    std::fs::write(site.inbox.join("a.txt"), b"second, longer").unwrap();
    let r = request("POST", &move_url(&d, "a.txt", &v, "b.txt")).unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (409, "version_changed".into()),
        "{r:?}"
    );
    let r = request("DELETE", &delete_url(&d, "a.txt", &v)).unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (409, "version_changed".into()),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read(site.inbox.join("a.txt")).unwrap(),
        b"second, longer"
    );
    assert!(!site.inbox.join("b.txt").exists());
    // Unknown paths and missing parameters.
    let r = request("DELETE", &delete_url(&d, "nope.txt", &v)).unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (404, "file_not_found".into()),
        "{r:?}"
    );
    let r = request(
        "DELETE",
        &format!("{}/watches/default/files?path=a.txt", d.base()),
    )
    .unwrap();
    assert_eq!((r.status, code(&r)), (400, "bad_version".into()), "{r:?}");
    let r = request(
        "POST",
        &format!(
            "{}/watches/default/move?path=a.txt&version={}",
            d.base(),
            enc(&v)
        ),
    )
    .unwrap();
    assert_eq!((r.status, code(&r)), (400, "bad_path".into()), "{r:?}");
}

#[test]
fn a_moved_file_is_not_offered_again_also_after_a_restart() {
    let site = Site::new();
    site.put("in/a.txt", b"payload");
    let d = site.daemon(SETTLE, &[WRITE]);
    let v = indexed_version(&d, "in/a.txt");
    let r = request("POST", &move_url(&d, "in/a.txt", &v, "done/2026/a.txt")).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    assert_eq!(body["path"], "done/2026/a.txt");
    assert_eq!(body["name"], "a.txt");
    assert_eq!(body["indexedAt"], Value::String(v.clone()));
    assert_eq!(body["size"], 7);
    assert!(body.get("content").is_none());
    assert!(!site.inbox.join("in/a.txt").exists());
    assert_eq!(
        std::fs::read(site.inbox.join("done/2026/a.txt")).unwrap(),
        b"payload"
    );
    // The moved file is neither offered at its new path nor again at its old one.
    nothing_offered(&site, &d);
    // Not after an unclean stop and a start-up scan either.
    d.kill9();
    let d = site.daemon(SETTLE, &[WRITE]);
    nothing_offered(&site, &d);
    // A new file at the old path is a new file.
    site.put("in/a.txt", b"new");
    indexed_version(&d, "in/a.txt");
}

#[test]
fn delete_removes_the_file_and_it_is_not_offered() {
    let site = Site::new();
    site.put("x/gone.txt", b"bye");
    let d = site.daemon(SETTLE, &[WRITE]);
    let v = indexed_version(&d, "x/gone.txt");
    let r = request("DELETE", &delete_url(&d, "x/gone.txt", &v)).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["deleted"], "x/gone.txt");
    assert_eq!(r.json()["version"], Value::String(v.clone()));
    assert!(!site.inbox.join("x/gone.txt").exists());
    // Again: it is gone.
    let r = request("DELETE", &delete_url(&d, "x/gone.txt", &v)).unwrap();
    assert_eq!(
        (r.status, code(&r)),
        (404, "file_not_found".into()),
        "{r:?}"
    );
    nothing_offered(&site, &d);
}

#[test]
fn an_existing_target_is_refused() {
    let site = Site::new();
    site.put("a.txt", b"source");
    site.put("done/a.txt", b"already here");
    let d = site.daemon(SETTLE, &[WRITE]);
    let v = indexed_version(&d, "a.txt");
    let there = indexed_version(&d, "done/a.txt");
    let r = request("POST", &move_url(&d, "a.txt", &v, "done/a.txt")).unwrap();
    assert_eq!((r.status, code(&r)), (409, "target_exists".into()), "{r:?}");
    // The refused move left the target's own index entry alone: still indexed as the
    // version it was (not forgotten, so never offered again under a new stamp).
    let props = format!("{}/watches/default/properties?path=done%2Fa.txt", d.base());
    let r = get(&props).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["indexedAt"], there.as_str());
    assert_eq!(std::fs::read(site.inbox.join("a.txt")).unwrap(), b"source");
    assert_eq!(
        std::fs::read(site.inbox.join("done/a.txt")).unwrap(),
        b"already here"
    );
    // The refused move left the source offerable: it moves fine to a free name.
    let r = request("POST", &move_url(&d, "a.txt", &v, "done/a-2.txt")).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn no_path_escapes_the_folder() {
    let site = Site::new();
    let outside = site.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, site.inbox.join("link")).unwrap();
    site.put("in/a.txt", b"mine");
    site.put("sub/b.txt", b"b");
    let d = site.daemon(SETTLE, &[WRITE]);
    let v = indexed_version(&d, "in/a.txt");
    let vb = indexed_version(&d, "sub/b.txt");
    let long = "x".repeat(300);
    for to in [
        "../escaped.txt",
        "in/../../escaped.txt",
        "/tmp/escaped.txt",
        "link/escaped.txt",
        "link/new/escaped.txt",
        "in//a2.txt",
        "./a2.txt",
        // Names the file system refuses: the client's mistake, never a 5xx.
        long.as_str(),
        "a\0b.txt",
    ] {
        let r = request("POST", &move_url(&d, "in/a.txt", &v, to)).unwrap();
        assert_eq!(
            (r.status, code(&r)),
            (400, "bad_path".into()),
            "to={to}: {r:?}"
        );
    }
    for path in ["../outside/secret.txt", "link/secret.txt", "/etc/passwd"] {
        for r in [
            request("POST", &move_url(&d, path, &v, "stolen.txt")).unwrap(),
            request("DELETE", &delete_url(&d, path, &v)).unwrap(),
        ] {
            assert!([400, 404].contains(&r.status), "path={path}: {r:?}");
        }
    }
    // A directory on the way swapped for a link after indexing: the indexed path now
    // leads outside, to the very same file (same inode), and must not be followed.
    let moved_out = site.tmp.path().join("moved-out");
    std::fs::rename(site.inbox.join("sub"), &moved_out).unwrap();
    std::os::unix::fs::symlink(&moved_out, site.inbox.join("sub")).unwrap();
    for r in [
        request("POST", &move_url(&d, "sub/b.txt", &vb, "stolen.txt")).unwrap(),
        request("DELETE", &delete_url(&d, "sub/b.txt", &vb)).unwrap(),
    ] {
        assert!([400, 404].contains(&r.status), "{r:?}");
    }
    assert_eq!(std::fs::read(moved_out.join("b.txt")).unwrap(), b"b");
    assert_eq!(
        std::fs::read(outside.join("secret.txt")).unwrap(),
        b"secret"
    );
    assert_eq!(std::fs::read(site.inbox.join("in/a.txt")).unwrap(), b"mine");
    let mut left: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, vec!["secret.txt"]);
    assert!(!site.tmp.path().join("escaped.txt").exists());
    assert!(!site.inbox.join("stolen.txt").exists());
}

/// Follows a wait's `Location` (Retry-After scaled down) until a `200`; returns it. Every
/// `202` must carry an absolute Location on the wait route.
fn follow(d: &Daemon, start: &str) -> Reply {
    let mut next = d.rebase(start);
    let deadline = Instant::now() + WAIT;
    loop {
        let r = get(&next).unwrap();
        if r.status != 202 {
            return r;
        }
        let loc = r.location();
        assert!(
            loc.starts_with(&format!("{}/watches/default/wait?", d.base())),
            "{loc}"
        );
        assert!(Instant::now() < deadline, "the wait never ended");
        std::thread::sleep(Duration::from_millis(
            r.retry_after() * MS_PER_RETRY_SECOND + 20,
        ));
        next = loc;
    }
}

/// A query parameter of a URL (raw).
fn param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&')
        .find_map(|p| p.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// The first call of a wait: `202` with `since` and `deadline` in `Location`.
fn begin_wait(d: &Daemon, query: &str) -> String {
    let r = get(&format!("{}/watches/default/wait?{query}", d.base())).unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    let loc = r.location();
    assert!(loc.contains("since=") && loc.contains("deadline="), "{loc}");
    assert!(r.retry_after() <= 15);
    loc
}

#[test]
fn a_matching_file_arriving_after_the_wait_began_ends_it() {
    let site = Site::new();
    site.put("early.csv", b"before the wait");
    let d = site.daemon(SETTLE, &[]);
    indexed_version(&d, "early.csv");
    let loc = begin_wait(&d, "glob=*.csv&timeout=600&keep=me");
    assert!(loc.contains("keep=me"), "{loc}");
    // A non-matching file after the wait began, and the earlier match: neither ends it.
    site.put("other.txt", b"not a csv");
    indexed_version(&d, "other.txt");
    let r = get(&loc).unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    for key in ["since", "deadline", "glob", "timeout", "keep"] {
        assert_eq!(param(&r.location(), key), param(&loc, key), "{key} kept");
    }
    site.put("sub/late.csv", b"the one");
    let r = follow(&d, &loc);
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    assert_eq!(body["status"], "found");
    assert_eq!(body["file"]["path"], "sub/late.csv");
    let content = body["file"]["content"]["$content"].as_str().unwrap();
    assert_eq!(content, "dGhlIG9uZQ==");
    // The same wait with content=none: properties and a link, no content.
    let none = format!("{loc}&content=none");
    let r = follow(&d, &none);
    let file = &r.json()["file"];
    assert_eq!(file["path"], "sub/late.csv");
    assert!(file.get("content").is_none() && file.get("contentOmitted").is_none());
    let link = file["contentLink"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/watches/default/content?path=", d.base())),
        "{link}"
    );
    // A `since` given by the user includes earlier files.
    let r = get(&format!(
        "{}/watches/default/wait?glob=*.csv&since=2000-01-01T00:00:00Z",
        d.base()
    ))
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["file"]["path"], "early.csv");
}

#[test]
fn a_wait_times_out_with_its_own_answer() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let loc = begin_wait(&d, "glob=*.csv&timeout=1");
    site.put("not-matching.txt", b"x");
    let r = follow(&d, &loc);
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    assert_eq!(body["status"], "timedOut", "{body}");
    assert!(body["since"].is_string() && body["deadline"].is_string());
    assert!(body.get("file").is_none());
}

#[test]
fn a_wait_survives_a_restart() {
    let site = Site::new();
    site.put("old.csv", b"old");
    let d = site.daemon(SETTLE, &[]);
    indexed_version(&d, "old.csv");
    let loc = begin_wait(&d, "glob=**/*.csv&timeout=600");
    d.terminate();
    let d = site.daemon(SETTLE, &[]);
    let r = get(&d.rebase(&loc)).unwrap();
    assert_eq!(r.status, 202, "the earlier file must not end it: {r:?}");
    // Large enough to be streamed from disk inside the answer.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    site.put("new/after-restart.csv", &data);
    let r = follow(&d, &loc);
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    assert_eq!(body["file"]["path"], "new/after-restart.csv");
    let b64 = body["file"]["content"]["$content"].as_str().unwrap();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        data
    );
}

#[test]
fn bad_wait_parameters_are_400_naming_them() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[("FILETRIGGER__ACTIONS__MAX_WAIT_S", "100")]);
    for (query, want) in [
        ("", "bad_glob"),
        ("glob=", "bad_glob"),
        ("glob=a%5B", "bad_glob"),
        ("glob=*&glob=*", "bad_glob"),
        ("glob=*&timeout=0", "bad_timeout"),
        ("glob=*&timeout=abc", "bad_timeout"),
        ("glob=*&timeout=101", "bad_timeout"),
        ("glob=*&content=base64", "bad_content"),
        ("glob=*&since=yesterday", "bad_since"),
        ("glob=*&deadline=soon", "bad_deadline"),
        ("glob=*&deadline=2200-01-01T00:00:00Z", "bad_deadline"),
    ] {
        let r = get(&format!("{}/watches/default/wait?{query}", d.base())).unwrap();
        assert_eq!(
            (r.status, code(&r)),
            (400, want.to_string()),
            "{query}: {r:?}"
        );
        assert!(r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&want[4..]));
    }
    let r = get(&format!(
        "{}/watches/default/wait?glob=*&timeout=100",
        d.base()
    ))
    .unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    let r = request("POST", &format!("{}/watches/default/wait?glob=*", d.base())).unwrap();
    assert_eq!(r.status, 405, "{r:?}");
}
