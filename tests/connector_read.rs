//! The batch trigger and the read actions (issue 11 parts 2 and 3): against the real
//! daemon over real HTTP, as the Logic Apps engine and the actions it calls use them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] functions

mod common;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use common::*;
use filetrigger::stamp::Stamp;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

/// A cursor before every stamp: replays the whole index.
const BEGINNING: &str = "2000-01-01T00:00:00.000000000Z";

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn folder_url(d: &Daemon, op: &str) -> String {
    format!("{}/watches/default/{op}", d.base())
}

/// Writes `n` small files named `f0000.txt`... straight into the watched directory.
fn many(site: &Site, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let rel = format!("f{i:04}.txt");
            write_direct(&site.inbox, &rel, format!("file {i}\n").as_bytes());
            rel
        })
        .collect()
}

/// The engine's view of a batch trigger: follows `Location` and `Retry-After`, starts one
/// run per item (`splitOn`), and checks the protocol on every answer.
struct BatchEngine {
    next: String,
    /// Every item received, in order (one run each).
    runs: Vec<Value>,
    calls: usize,
    /// The item counts of the `200` answers, with their `Retry-After`.
    answers: Vec<(usize, u64, usize)>,
}

impl BatchEngine {
    fn at(url: String) -> BatchEngine {
        BatchEngine {
            next: url,
            runs: Vec::new(),
            calls: 0,
            answers: Vec::new(),
        }
    }

    /// One call; returns its status.
    fn call(&mut self) -> Reply {
        let r = get(&self.next).unwrap();
        self.calls += 1;
        let loc = r.location();
        assert!(loc.starts_with("http://"), "Location not absolute: {loc}");
        match r.status {
            200 => {
                let items = r.json();
                let items = items.as_array().expect("a batch is an array").clone();
                assert!(!items.is_empty(), "a 200 batch is never empty");
                let mut before = Stamp::parse(&decode(&cursor_of(&self.next))).unwrap();
                for item in &items {
                    let at = Stamp::parse(item["indexedAt"].as_str().unwrap()).unwrap();
                    assert!(at > before, "not in stamp order after the cursor: {item}");
                    before = at;
                }
                assert_eq!(
                    decode(&cursor_of(&loc)),
                    items.last().unwrap()["indexedAt"].as_str().unwrap(),
                    "the cursor is the last item's stamp"
                );
                self.answers
                    .push((items.len(), r.retry_after(), r.body.len()));
                self.runs.extend(items);
            }
            202 => assert_eq!(
                cursor_of(&loc),
                cursor_of(&self.next),
                "202 keeps the cursor"
            ),
            other => panic!(
                "batch answered {other}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
        let _ = r.retry_after();
        self.next = loc;
        r
    }

    /// Calls until `n` runs in total, or a `202`.
    fn drain(&mut self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.runs.len() < n && Instant::now() < deadline {
            let r = self.call();
            if r.status == 202 {
                std::thread::sleep(Duration::from_millis(r.retry_after() * MS_PER_RETRY_SECOND));
            }
        }
    }

    fn paths(&self) -> Vec<String> {
        self.runs
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_string())
            .collect()
    }
}

#[test]
fn a_batch_drain_of_1000_files_runs_each_once_in_stamp_order_across_a_restart() {
    let site = Site::new();
    let want = many(&site, 1000);
    let d = site.daemon(SETTLE, &[]);
    wait_for("1000 files indexed", WAIT, || indexed(&d) >= 1000);
    let mut engine = BatchEngine::at(format!(
        "{}?maxFileCount=100&wf=7&triggerState={BEGINNING}",
        folder_url(&d, "batch")
    ));
    engine.drain(450);
    assert!(engine.runs.len() >= 450 && engine.runs.len() < 1000);
    assert!(engine.next.contains("maxFileCount=100") && engine.next.contains("wf=7"));
    d.terminate();
    let d = site.daemon(SETTLE, &[]);
    engine.next = d.rebase(&engine.next);
    engine.drain(1000);
    // Nothing more: the cursor rests.
    let r = engine.call();
    assert_eq!(r.status, 202);
    let paths = engine.paths();
    assert_eq!(paths.len(), 1000, "each file exactly once");
    assert_eq!(paths.iter().collect::<HashSet<_>>().len(), 1000);
    assert_eq!(
        paths.iter().collect::<HashSet<_>>(),
        want.iter().collect::<HashSet<_>>()
    );
    let at: Vec<Stamp> = engine
        .runs
        .iter()
        .map(|i| Stamp::parse(i["indexedAt"].as_str().unwrap()).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "stamp order");
    for item in &engine.runs {
        let n: usize = item["path"].as_str().unwrap()[1..5].parse().unwrap();
        let got = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            item["content"]["$content"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(got, format!("file {n}\n").as_bytes());
    }
    // Full batches while more wait (Retry-After 0), the last one with the usual wait.
    let (last, rest) = engine.answers.split_last().unwrap();
    assert!(
        rest.iter().all(|(n, retry, _)| *n == 100 && *retry == 0),
        "{rest:?}"
    );
    assert_eq!(last.1, 15);
    assert_eq!(
        engine.calls,
        10 + 1,
        "1000 files in 10 calls, plus the resting one"
    );
}

#[test]
fn a_batch_keeps_to_its_byte_budget_and_omits_a_file_that_alone_exceeds_it() {
    const BUDGET: usize = 65536;
    let site = Site::new();
    let data = |n: usize, seed: u8| -> Vec<u8> { (0..n).map(|i| (i as u8) ^ seed).collect() };
    let files = vec![
        ("a.bin", data(20_000, 1)),
        ("b.bin", data(20_000, 2)),
        ("big.bin", data(100_000, 3)),
        ("c.bin", data(20_000, 4)),
        ("d.txt", b"small".to_vec()),
        ("e.bin", data(30_000, 5)),
    ];
    for (name, bytes) in &files {
        write_direct(&site.inbox, name, bytes);
    }
    let d = site.daemon(
        SETTLE,
        &[("FILETRIGGER__TRIGGER__BATCH_MAX_BYTES", "65536")],
    );
    wait_for("indexed", WAIT, || indexed(&d) >= files.len() as u64);
    let mut engine = BatchEngine::at(format!(
        "{}?maxFileCount=100&triggerState={BEGINNING}",
        folder_url(&d, "batch")
    ));
    engine.drain(files.len());
    assert_eq!(engine.runs.len(), files.len(), "{:?}", engine.paths());
    for (n, _, len) in &engine.answers {
        assert!(
            *len <= BUDGET + 1024,
            "a batch of {n} has {len} bytes, over the budget"
        );
    }
    assert!(
        engine.answers.iter().any(|(_, retry, _)| *retry == 0),
        "the budget split the files into several batches: {:?}",
        engine.answers
    );
    for (name, bytes) in &files {
        let item = engine
            .runs
            .iter()
            .find(|i| i["path"] == *name)
            .unwrap_or_else(|| panic!("{name} missing"));
        if *name == "big.bin" {
            assert!(item.get("content").is_none(), "{item}");
            let why = item["contentOmitted"].as_str().unwrap();
            assert!(why.contains("trigger.batch_max_bytes"), "{why}");
            assert_eq!(item["size"], 100_000);
        } else {
            let got = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                item["content"]["$content"].as_str().unwrap(),
            )
            .unwrap();
            assert_eq!(&got, bytes, "{name}");
        }
    }
}

#[test]
fn a_batch_streams_large_files_between_small_ones_as_valid_json() {
    let site = Site::new();
    let data = |n: usize, seed: u8| -> Vec<u8> { (0..n).map(|i| (i as u8) ^ seed).collect() };
    let files = vec![
        ("1.txt", b"one".to_vec()),
        ("2.bin", data(1_000_001, 7)),
        ("3.txt", Vec::new()),
        ("4.bin", data(300_000, 9)),
        ("5.txt", b"five".to_vec()),
    ];
    for (name, bytes) in &files {
        write_direct(&site.inbox, name, bytes);
    }
    let d = site.daemon(SETTLE, &[]);
    wait_for("indexed", WAIT, || indexed(&d) >= files.len() as u64);
    let mut engine = BatchEngine::at(format!(
        "{}?triggerState={BEGINNING}",
        folder_url(&d, "batch")
    ));
    engine.drain(files.len());
    assert_eq!(engine.answers.len(), 1, "one batch: {:?}", engine.answers);
    assert_eq!(engine.answers[0].1, 15, "nothing more waits");
    for (name, bytes) in &files {
        let item = engine.runs.iter().find(|i| i["path"] == *name).unwrap();
        let got = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            item["content"]["$content"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(&got, bytes, "{name}");
    }
}

/// The single trigger (both routes) and the batch with `content=none`: no content, no
/// `contentOmitted`, and a `contentLink` that gives the exact bytes, a name that is not
/// UTF-8 included.
#[test]
fn content_none_links_to_the_exact_bytes() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let odd = b"caf\xe9 100%.txt";
    let files: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"dir/a b+c.pdf".to_vec(), b"%PDF-1.7 hello".to_vec()),
        (odd.to_vec(), b"latin-1 name".to_vec()),
        (
            b"big.bin".to_vec(),
            (0..300_000u32).map(|i| i as u8).collect(),
        ),
    ];
    for (rel, data) in &files {
        write_direct(&site.inbox, OsStr::from_bytes(rel), data);
    }
    wait_for("indexed", WAIT, || indexed(&d) >= 3);
    let check = |item: &Value| {
        assert!(item.get("content").is_none(), "{item}");
        assert!(item.get("contentOmitted").is_none(), "{item}");
        let link = item["contentLink"].as_str().unwrap();
        assert!(link.starts_with(&format!("{}/watches/default/content?", d.base())));
        let r = get(link).unwrap();
        assert_eq!(r.status, 200, "{link}");
        let rel: Vec<u8> = match item["pathBytes"].as_str() {
            Some(b) => {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).unwrap()
            }
            None => item["path"].as_str().unwrap().as_bytes().to_vec(),
        };
        let (_, data) = files.iter().find(|(p, _)| *p == rel).unwrap();
        assert_eq!(&r.body, data, "{link}");
        assert_eq!(
            r.header("etag").unwrap(),
            format!("\"{}\"", item["indexedAt"].as_str().unwrap())
        );
        assert_eq!(
            r.header("content-type").unwrap(),
            item["contentType"].as_str().unwrap()
        );
        // The properties of the same path, as the body spells it.
        let props = get(&format!(
            "{}?path={}",
            folder_url(&d, "properties"),
            enc(item["path"].as_str().unwrap())
        ))
        .unwrap();
        assert_eq!(props.status, 200);
        let mut without = item.clone();
        without.as_object_mut().unwrap().remove("contentLink");
        assert_eq!(props.json(), without);
    };
    for trigger in [d.trigger_url(), folder_url(&d, "trigger")] {
        let mut p = Poller::at(format!("{trigger}?content=none&triggerState={BEGINNING}"));
        p.drain(3, WAIT);
        assert_eq!(p.got.len(), 3);
        for g in &p.got {
            check(&g.body);
        }
    }
    let mut engine = BatchEngine::at(format!(
        "{}?content=none&triggerState={BEGINNING}",
        folder_url(&d, "batch")
    ));
    engine.drain(3);
    assert_eq!(engine.runs.len(), 3);
    assert_eq!(engine.answers.len(), 1, "one batch of the default 10");
    for item in &engine.runs {
        check(item);
    }
}

#[test]
fn ranges_give_the_exact_bytes_and_an_empty_file_is_whole() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    site.put("r.bin", &data);
    site.put("empty.txt", b"");
    wait_for("indexed", WAIT, || indexed(&d) >= 2);
    let url = |p: &str| format!("{}?path={p}", folder_url(&d, "content"));
    let ranged =
        |p: &str, range: &str| send(&agent(), "GET", &url(p), &[("Range", range)]).unwrap();
    let size = data.len();
    let whole = get(&url("r.bin")).unwrap();
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, data);
    assert_eq!(whole.header("content-length").unwrap(), size.to_string());
    assert_eq!(whole.header("accept-ranges").unwrap(), "bytes");
    for (range, start, end) in [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-99999", 1000, 99_999),
        ("bytes=-1", size - 1, size - 1),
        ("bytes=150000-", 150_000, size - 1),
        ("bytes=199990-300000", 199_990, size - 1),
    ] {
        let r = ranged("r.bin", range);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, &data[start..=end], "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {start}-{end}/{size}"),
            "{range}"
        );
        assert_eq!(
            r.header("content-length").unwrap(),
            (end - start + 1).to_string()
        );
    }
    let several = ranged("r.bin", "bytes=0-1,5-6");
    assert_eq!((several.status, several.body.len()), (200, size));
    let past = ranged("r.bin", &format!("bytes={size}-"));
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range").unwrap(),
        format!("bytes */{size}")
    );
    assert_eq!(past.json()["error"]["code"], "range_not_satisfiable");
    let empty = get(&url("empty.txt")).unwrap();
    assert_eq!(empty.status, 200);
    assert!(empty.body.is_empty());
    assert_eq!(empty.header("content-length").unwrap(), "0");
    let r = ranged("empty.txt", "bytes=0-");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").unwrap(), "bytes */0");
}

#[test]
fn the_etag_is_the_version_and_a_changed_file_is_a_409() {
    let site = Site::new();
    // A long quiet time: the change below is not indexed again while the test asks.
    let d = site.daemon(3000, &[]);
    let path = site.put("doc.txt", b"version one");
    wait_for("indexed", WAIT, || indexed(&d) >= 1);
    let props = get(&format!("{}?path=doc.txt", folder_url(&d, "properties"))).unwrap();
    assert_eq!(props.status, 200);
    let at = props.json()["indexedAt"].as_str().unwrap().to_string();
    let url = format!("{}?path=doc.txt", folder_url(&d, "content"));
    let r = get(&url).unwrap();
    assert_eq!(r.header("etag").unwrap(), format!("\"{at}\""));
    let etag = format!("\"{at}\"");
    let cached = send(&agent(), "GET", &url, &[("If-None-Match", &etag)]).unwrap();
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag").unwrap(), etag);
    let other = send(&agent(), "GET", &url, &[("If-None-Match", "\"x\"")]).unwrap();
    assert_eq!(other.status, 200);
    let same = get(&format!("{url}&version={}", enc(&at))).unwrap();
    assert_eq!(
        (same.status, same.body.as_slice()),
        (200, &b"version one"[..])
    );
    // Changed on disk (another mtime), not indexed again yet: what is there now is not
    // the indexed version.
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    set_mtime(&path, before - Duration::from_secs(3600));
    let r = get(&url).unwrap();
    let r2 = get(&format!("{url}&version={}", enc(&at))).unwrap();
    for r in [&r, &r2] {
        assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["error"]["code"], "version_changed");
    }
    // A version that never was this file's.
    let wrong = get(&format!("{url}&version=2001-01-01T00:00:00Z")).unwrap();
    assert_eq!(wrong.status, 409);
    let missing = get(&format!("{}?path=nope.txt", folder_url(&d, "content"))).unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "file_not_found");
    let missing = get(&format!("{}?path=nope.txt", folder_url(&d, "properties"))).unwrap();
    assert_eq!(missing.status, 404);
}

#[test]
fn listing_follows_next_link_to_the_end_and_sees_every_file_once() {
    let site = Site::new();
    let want = many(&site, 250);
    let d = site.daemon(SETTLE, &[]);
    wait_for("indexed", WAIT, || indexed(&d) >= 250);
    // One file gone since it was indexed: not listed.
    std::fs::remove_file(site.inbox.join("f0100.txt")).unwrap();
    let mut next = Some(format!("{}?top=100", folder_url(&d, "files")));
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(url) = next {
        let r = get(&url).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let page = r.json();
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= 100);
        for i in items {
            assert!(
                i.get("content").is_none() && i.get("contentLink").is_none(),
                "{i}"
            );
            seen.push((
                i["path"].as_str().unwrap().to_string(),
                Stamp::parse(i["indexedAt"].as_str().unwrap()).unwrap(),
            ));
        }
        next = page["nextLink"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(
                n.starts_with(&format!("{}/watches/default/files?", d.base())),
                "{n}"
            );
            assert!(n.contains("top=100"), "{n}");
        }
        pages += 1;
        assert!(pages < 10, "nextLink never ends");
    }
    assert_eq!(pages, 3);
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "stamp order");
    let paths: HashSet<&String> = seen.iter().map(|(p, _)| p).collect();
    assert_eq!(paths.len(), seen.len(), "each file once");
    let expected: HashSet<&String> = want.iter().filter(|p| *p != "f0100.txt").collect();
    assert_eq!(paths, expected);
    // `after` starts after a stamp.
    let from = seen[9].1.to_string();
    let r = get(&format!(
        "{}?after={}&top=5",
        folder_url(&d, "files"),
        enc(&from)
    ))
    .unwrap();
    let page = r.json();
    let first = page["value"][0]["path"].as_str().unwrap();
    assert_eq!(first, seen[10].0);
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
}

#[test]
fn bad_parameters_are_a_400_that_names_them() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let cases = [
        ("batch?maxFileCount=0", "maxFileCount"),
        ("batch?maxFileCount=101", "maxFileCount"),
        ("batch?maxFileCount=ten", "maxFileCount"),
        ("batch?maxFileCount=1&maxFileCount=2", "maxFileCount"),
        ("batch?content=base64", "content"),
        ("trigger?content=", "content"),
        ("files?top=0", "top"),
        ("files?top=1001", "top"),
        ("files?after=yesterday", "after"),
        ("properties", "path"),
        ("content?path=", "path"),
        ("content?path=a&version=v1", "version"),
    ];
    for (q, name) in cases {
        let r = get(&format!("{}/watches/default/{q}", d.base())).unwrap();
        assert_eq!(r.status, 400, "{q}");
        let e = r.json();
        assert_eq!(e["error"]["code"], "bad_parameter", "{q}");
        assert!(
            e["error"]["message"].as_str().unwrap().starts_with(name),
            "{q}: {e}"
        );
    }
    let r = get(&format!("{}?content=all", d.trigger_url())).unwrap();
    assert_eq!(r.status, 400);
    let r = request("POST", &folder_url(&d, "batch")).unwrap();
    assert_eq!(r.status, 405);
}

/// Not a test of behaviour: the numbers for the closing note. Run with
/// `cargo test --release --test connector_read -- --ignored --nocapture measure`.
#[test]
#[ignore]
fn measure_draining_2000_files_single_vs_batch() {
    const N: usize = 2000;
    let site = Site::new();
    many(&site, N);
    let d = site.daemon(SETTLE, &[]);
    wait_for("indexed", Duration::from_secs(120), || {
        indexed(&d) >= N as u64
    });
    let began = Instant::now();
    let mut p = Poller::at(format!("{}?triggerState={BEGINNING}", d.trigger_url()));
    while p.got.len() < N {
        let r = p.poll();
        assert_eq!(r.status, 200);
    }
    let single = began.elapsed();
    let single_calls = p.polls;
    let began = Instant::now();
    let mut e = BatchEngine::at(format!(
        "{}?maxFileCount=100&triggerState={BEGINNING}",
        folder_url(&d, "batch")
    ));
    while e.runs.len() < N {
        assert_eq!(e.call().status, 200);
    }
    let batch = began.elapsed();
    println!(
        "single trigger: {N} files in {single_calls} calls ({:.1} files/call), {:.2} s, {:.0} files/s",
        N as f64 / single_calls as f64,
        single.as_secs_f64(),
        N as f64 / single.as_secs_f64()
    );
    println!(
        "batch trigger (maxFileCount=100): {N} files in {} calls ({:.1} files/call), {:.2} s, {:.0} files/s",
        e.calls,
        N as f64 / e.calls as f64,
        batch.as_secs_f64(),
        N as f64 / batch.as_secs_f64()
    );
}
