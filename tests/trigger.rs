//! The polling exchange of PROTOCOL.md, against the real daemon over real HTTP.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use filetrigger::stamp::Stamp;

#[test]
fn the_first_call_is_a_202_with_an_absolute_location_at_now_and_keeps_other_parameters() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let before = Stamp::now();
    let r = get(&format!("{}?folder=in%2Fbox&x=1", d.trigger_url())).unwrap();
    let after = Stamp::now();
    assert_eq!(r.status, 202);
    assert_eq!(r.retry_after(), 15);
    let loc = r.location();
    let prefix = format!("http://{}/trigger?", d.addr);
    assert!(loc.starts_with(&prefix), "{loc}");
    assert!(loc.contains("folder=in%2Fbox"), "{loc}");
    assert!(loc.contains("x=1"), "{loc}");
    let cursor = Stamp::parse(&cursor_of(&loc)).unwrap();
    assert!(
        cursor >= before && cursor <= after,
        "{cursor:?} not between {before:?} and {after:?}"
    );
    assert!(
        cursor_of(&loc).ends_with('Z') && cursor_of(&loc).len() == 30,
        "{loc}"
    );
    // Nothing new: the same cursor comes back.
    let r2 = get(&loc).unwrap();
    assert_eq!(r2.status, 202);
    assert_eq!(r2.location(), loc);
    assert_eq!(r2.retry_after(), 15);
}

#[test]
fn one_file_is_offered_once_with_its_metadata_and_content() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&format!("{}?wf=1", d.trigger_url()));
    let data = b"%PDF-1.7\nhello\n";
    let path = site.put("invoices/2026/0042.pdf", data);
    let got = p.drain(1, WAIT).to_vec();
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g.path, "invoices/2026/0042.pdf");
    assert_eq!(g.body["name"], "0042.pdf");
    assert_eq!(g.body["size"], data.len() as u64);
    assert_eq!(g.body["contentType"], "application/pdf");
    assert_eq!(g.body["content"]["$content-type"], "application/pdf");
    assert_eq!(g.content(), data);
    assert_eq!(
        g.retry_after, 15,
        "the last file waiting gets the normal Retry-After"
    );
    let mtime: chrono::DateTime<chrono::Utc> =
        std::fs::metadata(&path).unwrap().modified().unwrap().into();
    assert_eq!(
        g.body["lastModified"],
        mtime.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    );
    assert!(
        p.next.contains("wf=1"),
        "other parameters survive a 200: {}",
        p.next
    );
    p.expect_nothing_more(&site, Duration::from_millis(SETTLE * 3));
}

#[test]
fn a_burst_of_300_files_drains_with_retry_after_zero_until_the_last() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let want: Vec<String> = (0..300).map(|i| format!("burst/f{i:03}.txt")).collect();
    for w in &want {
        site.put(w, w.as_bytes());
    }
    // Let all of them be indexed before draining, so the backlog is known in full.
    wait_for("300 indexed", WAIT, || d.health()["filesIndexed"] == 300);
    let got = p.drain(300, WAIT).to_vec();
    assert_exactly_once(&got, &want);
    let (last, rest) = got.split_last().unwrap();
    assert!(
        rest.iter().all(|g| g.retry_after == 0),
        "Retry-After: 0 while more wait"
    );
    assert_eq!(last.retry_after, 15);
    for g in &got {
        assert_eq!(g.content(), g.path.as_bytes());
    }
    // The drain was one poll per file: no 202s in between once all were indexed.
    assert_eq!(p.polls, 301);
}

#[test]
fn forty_files_sharing_one_mtime_all_arrive() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let want: Vec<String> = (0..40).map(|i| format!("same-{i}.csv")).collect();
    for w in &want {
        let tmp = site.inbox.join(format!(".{w}"));
        std::fs::write(&tmp, b"a,b\n").unwrap();
        set_mtime(&tmp, t);
        std::fs::rename(&tmp, site.inbox.join(w)).unwrap();
    }
    let got = p.drain(40, WAIT).to_vec();
    assert_exactly_once(&got, &want);
    let stamps: std::collections::HashSet<_> = got.iter().map(|g| g.indexed_at.clone()).collect();
    assert_eq!(stamps.len(), 40, "every file has its own stamp");
    assert!(got
        .iter()
        .all(|g| g.body["lastModified"] == "2023-11-14T22:13:20.000000000Z"));
}

#[test]
fn a_file_moved_in_with_an_old_mtime_is_offered() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let outside = site.tmp.path().join("old.txt");
    std::fs::write(&outside, b"from 2001").unwrap();
    set_mtime(
        &outside,
        SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200),
    );
    std::fs::rename(&outside, site.inbox.join("old.txt")).unwrap();
    let got = p.drain(1, WAIT).to_vec();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "old.txt");
    assert_eq!(
        got[0].body["lastModified"],
        "2001-01-01T00:00:00.000000000Z"
    );
    assert!(
        Stamp::parse(&got[0].indexed_at).unwrap() > Stamp::parse("2026-01-01T00:00:00Z").unwrap()
    );
}

#[test]
fn replay_from_an_old_timestamp_returns_everything_indexed_since() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let want: Vec<String> = (0..5).map(|i| format!("r{i}.txt")).collect();
    for w in &want {
        site.put(w, b"x");
    }
    let first = p.drain(5, WAIT).to_vec();
    assert_exactly_once(&first, &want);
    // A person replays from yesterday, with an offset written as is.
    let mut replay = Poller::at(format!(
        "{}?triggerState=2020-01-01T00:00:00+01:00",
        d.trigger_url()
    ));
    let again = replay.drain(5, WAIT).to_vec();
    assert_eq!(
        again.iter().map(|g| &g.path).collect::<Vec<_>>(),
        first.iter().map(|g| &g.path).collect::<Vec<_>>(),
        "a replay sees the same files in the same order"
    );
    // Replaying from the middle gives the rest.
    let mut mid = Poller::at(format!(
        "{}?triggerState={}",
        d.trigger_url(),
        first[1].indexed_at
    ));
    let rest = mid.drain(3, WAIT).to_vec();
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[0].path, first[2].path);
}

#[test]
fn bad_trigger_states_are_a_400_with_an_example() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    for bad in [
        "yesterday",
        "",
        "2026-13-01T00:00:00Z",
        "2026-11-25",
        "1700000000",
        "2026-11-25T16:47:00",
        "%FF%FE",
        "2026-11-25T16:47:00Z&triggerState=2026-11-25T16:47:00Z",
    ] {
        let r = get(&format!("{}?triggerState={bad}", d.trigger_url())).unwrap();
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains("2026-11-25T16:47:00.123456789Z") || msg.contains("more than once"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn other_methods_get_405_and_unknown_paths_a_json_404() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    for m in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = request(m, &d.trigger_url()).unwrap();
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET"));
    }
    let r = get(&format!("{}/nothing/here", d.base())).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
}

#[test]
fn healthz_reports_a_json_status() {
    let site = Site::new();
    site.put("pre.txt", b"there before start");
    let d = site.daemon(SETTLE, &[]);
    wait_for("the file indexed", WAIT, || d.health()["filesIndexed"] == 1);
    let h = d.health();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["watcher"], "inotify");
    assert!(Stamp::parse(h["lastRescan"].as_str().unwrap()).is_ok());
}

#[test]
fn twenty_independent_pollers_each_get_every_file_exactly_once() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let url = d.trigger_url();
    let pollers: Vec<Poller> = (0..20)
        .map(|i| Poller::start(&format!("{url}?wf={i}")))
        .collect();
    let want: Vec<String> = (0..50).map(|i| format!("shared/{i}.json")).collect();
    let writer_site = &site;
    std::thread::scope(|s| {
        let handles: Vec<_> = pollers
            .into_iter()
            .map(|mut p| {
                s.spawn(move || {
                    p.drain(50, Duration::from_secs(60));
                    p
                })
            })
            .collect();
        for (i, w) in want.iter().enumerate() {
            writer_site.put(w, format!("{{\"n\":{i}}}").as_bytes());
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for h in handles {
            let p = h.join().unwrap();
            assert_exactly_once(&p.got, &want);
        }
    });
}

#[test]
fn a_file_over_the_content_limit_comes_without_content_and_says_why() {
    let site = Site::new();
    let d = site.daemon(
        SETTLE,
        &[("FILETRIGGER__TRIGGER__MAX_CONTENT_BYTES", "1000")],
    );
    let mut p = Poller::start(&d.trigger_url());
    site.put("big.bin", &vec![7u8; 5000]);
    site.put("small.bin", &[1, 2, 3]);
    let got = p.drain(2, WAIT).to_vec();
    let big = got.iter().find(|g| g.path == "big.bin").unwrap();
    assert!(big.body.get("content").is_none(), "{}", big.body);
    assert!(big.body["contentOmitted"]
        .as_str()
        .unwrap()
        .contains("max_content_bytes"));
    assert_eq!(big.body["size"], 5000);
    let small = got.iter().find(|g| g.path == "small.bin").unwrap();
    assert_eq!(small.content(), vec![1, 2, 3]);
}

#[test]
fn a_large_file_is_streamed_intact() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let data: Vec<u8> = (0..3_000_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    site.put("large.bin", &data);
    let got = p.drain(1, WAIT).to_vec();
    assert_eq!(got[0].content(), data);
    assert_eq!(got[0].body["contentType"], "application/octet-stream");
}

/// A file deleted after it was indexed, before any poll and before discovery noticed:
/// the poll itself finds it gone and walks past it to the next file. The second daemon
/// runs in poll mode with a one-hour interval and starts while the file is still there,
/// so no event and no scan removes its entry before the poll (the entry is still counted
/// after it): only `offer`'s check at poll time keeps it out. Fails if that check is
/// removed (the deleted file is then offered).
#[test]
fn a_file_deleted_before_the_poll_is_skipped() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let doomed = site.put("doomed.txt", b"bye");
    wait_for("doomed indexed", WAIT, || indexed(&d) == 1);
    site.put("kept.txt", b"hi");
    wait_for("kept indexed", WAIT, || indexed(&d) == 2);
    assert!(d.terminate().success());

    let d = site.daemon(
        SETTLE,
        &[
            ("FILETRIGGER__WATCH__MODE", "poll"),
            ("FILETRIGGER__WATCH__POLL_INTERVAL_S", "3600"),
            ("FILETRIGGER__WATCH__RESCAN_INTERVAL_S", "3600"),
        ],
    );
    wait_for("the start-up scan", WAIT, || {
        d.log().contains("full scan walked the tree")
    });
    std::fs::remove_file(&doomed).unwrap();
    let mut p = replay(&d);
    let r = p.poll();
    assert_eq!(r.status, 200);
    assert_eq!(
        p.paths(),
        vec!["kept.txt"],
        "the first poll walks past doomed.txt"
    );
    assert_eq!(p.poll().status, 202);
    assert_eq!(
        indexed(&d),
        2,
        "discovery removed the entry, so the poll-time check was not reached"
    );
}

#[test]
fn location_follows_server_public_url() {
    let site = Site::new();
    let d = site.daemon(
        SETTLE,
        &[(
            "FILETRIGGER__SERVER__PUBLIC_URL",
            "https://gw.example.com/ft/",
        )],
    );
    let r = get(&format!("{}?a=b", d.trigger_url())).unwrap();
    assert!(
        r.location()
            .starts_with("https://gw.example.com/ft/trigger?a=b&triggerState="),
        "{}",
        r.location()
    );
}

#[test]
fn nothing_new_echoes_the_cursor_exactly_as_sent() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    for q in [
        "triggerState=2000-01-01T00:00:00Z&x=1",
        "a=1&triggerState=2999-01-01T00:00:00%2B01:00",
    ] {
        let r = get(&format!("{}?{q}", d.trigger_url())).unwrap();
        assert_eq!(r.status, 202, "{q}");
        assert_eq!(r.location(), format!("{}?{q}", d.trigger_url()));
    }
}
