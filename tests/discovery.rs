//! "What counts as a new file" (PROTOCOL.md), against the real daemon over real HTTP:
//! completeness (settle), the write-then-rename pattern, include/exclude globs, the race
//! between `mkdir -p` and the watch, directories moved in, new versions, the start-up
//! scan, odd names, symbolic links, `watch.recursive = false`, delete and re-create.

// Helpers outside #[test] functions panic on failure too, as in tests/common.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine;
use common::*;
use filetrigger::stamp::Stamp;

/// Asserts that every received file has the content recorded for its path.
fn assert_contents(got: &[Got], want: &HashMap<String, Vec<u8>>) {
    for g in got {
        let expected = want
            .get(&g.path)
            .unwrap_or_else(|| panic!("unexpected path {}", g.path));
        assert_eq!(g.body["size"], expected.len() as u64, "size of {}", g.path);
        assert_eq!(&g.content(), expected, "content of {}", g.path);
    }
}

// ---------------------------------------------------------------------------------------
// Completeness
// ---------------------------------------------------------------------------------------

#[test]
fn a_slow_writer_is_never_offered_half_written_and_is_offered_once_complete() {
    const SLOW_SETTLE: u64 = 1000;
    const PAUSE: Duration = Duration::from_millis(400);
    let site = Site::new();
    // Writer 2 closes the file between its appends: since issue 10 a close is trusted
    // after `settle_after_close_ms` (300 ms by default, shorter than its pauses), so a
    // writer like it needs that setting as long as its pauses (README, "The contract in
    // brief"). Writer 1 keeps its file open and needs nothing.
    let d = site.daemon(
        SLOW_SETTLE,
        &[("FILETRIGGER__WATCH__SETTLE_AFTER_CLOSE_MS", "1000")],
    );
    let mut p = Poller::start(&d.trigger_url());
    let chunks: Vec<Vec<u8>> = (0..6)
        .map(|i| format!("row {i};").repeat(200).into_bytes())
        .collect();
    let full: Vec<u8> = chunks.concat();
    let writing = AtomicBool::new(true);
    let polls = AtomicUsize::new(0);
    // After each chunk, a writer waits until the engine has polled: the half-written
    // file was really looked at, however slow the machine.
    let polled_since = |mark: usize| {
        wait_for("a poll after the chunk", WAIT, || {
            polls.load(Ordering::Acquire) > mark
        })
    };
    std::thread::scope(|s| {
        // The engine polls continuously (ignoring Retry-After) while the writers work.
        let poller = s.spawn(|| {
            while writing.load(Ordering::Acquire) {
                p.poll();
                polls.fetch_add(1, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // Writer 1 keeps one handle open under the final name.
        let w1 = s.spawn(|| {
            let mut f = std::fs::File::create(site.inbox.join("report.csv")).unwrap();
            for c in &chunks {
                f.write_all(c).unwrap();
                f.flush().unwrap();
                let mark = polls.load(Ordering::Acquire);
                std::thread::sleep(PAUSE);
                polled_since(mark);
            }
        });
        // Writer 2 opens, appends and closes for every chunk (a logger, an FTP resume).
        let w2 = s.spawn(|| {
            let path = site.inbox.join("slow/append.log");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            for c in &chunks {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(c).unwrap();
                drop(f);
                let mark = polls.load(Ordering::Acquire);
                std::thread::sleep(PAUSE);
                polled_since(mark);
            }
        });
        w1.join().unwrap();
        w2.join().unwrap();
        writing.store(false, Ordering::Release);
        poller.join().unwrap();
    });
    for g in &p.got {
        assert_eq!(
            g.body["size"],
            full.len() as u64,
            "{} offered half-written: {}",
            g.path,
            g.body["size"]
        );
        assert_eq!(g.content(), full, "{} offered half-written", g.path);
    }
    let got = p.drain(2, WAIT).to_vec();
    assert_exactly_once(&got, &strings(&["report.csv", "slow/append.log"]));
    for g in &got {
        assert_eq!(g.body["size"], full.len() as u64, "{}", g.path);
        assert_eq!(g.content(), full, "{}", g.path);
    }
    p.expect_nothing_more(&site, quiet(SLOW_SETTLE));
}

// ---------------------------------------------------------------------------------------
// Write to a temporary name, then rename into place
// ---------------------------------------------------------------------------------------

#[test]
fn write_then_rename_yields_one_offer_under_the_final_name_and_never_the_temporary_one() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let mut want: HashMap<String, Vec<u8>> = HashMap::new();
    // Phase 1: the temporary files stay well past the settle time before the rename, so
    // a daemon that did not exclude them would have offered them.
    let slow = [
        (".report.pdf.tmp", "report.pdf"),
        ("data.part", "data"),
        ("movie.mkv.crdownload", "movie.mkv"),
        ("sub/dir/.x.tmp", "sub/dir/x.txt"),
        ("sub/archive.zip.partial", "sub/archive.zip"),
    ];
    for (tmp, fin) in slow {
        let data = format!("final content of {fin}").into_bytes();
        write_direct(&site.inbox, tmp, &data);
        want.insert(fin.to_string(), data);
    }
    // The engine polls meanwhile: the temporary names must not come out.
    p.expect_nothing_more(&site, Duration::from_millis(SETTLE * 4));
    for (tmp, fin) in slow {
        std::fs::rename(site.inbox.join(tmp), site.inbox.join(fin)).unwrap();
    }
    // Phase 2: renamed at once, the usual fast pattern, a batch of them.
    for i in 0..10 {
        let fin = format!("fast/f{i}.json");
        let data = format!("{{\"i\":{i}}}").into_bytes();
        site.put(&fin, &data);
        want.insert(fin, data);
    }
    // Phase 3: a whole directory staged under a hidden name, then renamed into view.
    for i in 0..5 {
        let rel = format!("{}s{i}.txt", ["", "inner/"][i % 2]);
        let data = format!("staged {i}").into_bytes();
        write_direct(&site.inbox.join(".staging-42"), &rel, &data);
        want.insert(format!("upload/{rel}"), data);
    }
    std::fs::rename(site.inbox.join(".staging-42"), site.inbox.join("upload")).unwrap();
    let names: Vec<String> = want.keys().cloned().collect();
    let got = p.drain(names.len(), WAIT).to_vec();
    assert_exactly_once(&got, &names);
    assert_contents(&got, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_exactly_once(&p.got, &names);
}

// ---------------------------------------------------------------------------------------
// Include and exclude
// ---------------------------------------------------------------------------------------

const EXCLUDED_BY_DEFAULT: &[&str] = &[
    ".hidden",
    ".hidden.pdf",
    ".hiddendir/inner.txt",
    ".hiddendir/deeper/more.pdf",
    "sub/.git/config",
    "sub/.cache/x/y.csv",
    "a.tmp",
    "sub/b.tmp",
    "c.part",
    "d.partial",
    "e.iso.crdownload",
    "~$report.docx",
    "sub/~$budget.xlsx",
];

#[test]
fn default_excludes_are_never_offered_while_a_normal_file_written_afterwards_is() {
    let site = Site::new();
    // Some excluded files exist before start-up (the scan's filter) ...
    for rel in EXCLUDED_BY_DEFAULT {
        write_direct(&site.inbox, format!("before/{rel}"), b"excluded");
    }
    write_direct(&site.inbox, "before/normal.txt", b"normal before");
    let d = site.daemon(SETTLE, &[]);
    let mut p = replay(&d);
    // ... and the others arrive while it runs (the watcher's filter).
    for rel in EXCLUDED_BY_DEFAULT {
        write_direct(&site.inbox, rel, b"excluded");
    }
    // Proof that discovery ran past them: a normal file written afterwards.
    write_direct(&site.inbox, "after.txt", b"normal after");
    let want = strings(&["before/normal.txt", "after.txt"]);
    let got = p.drain(2, WAIT).to_vec();
    assert_exactly_once(&got, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_exactly_once(&p.got, &want);
    assert_eq!(
        indexed(&d),
        2 + site.fences(),
        "excluded files were indexed: {}",
        d.health()
    );
}

#[test]
fn custom_include_and_exclude_from_the_environment() {
    let site = Site::new();
    let d = site.daemon(
        SETTLE,
        &[
            ("FILETRIGGER__WATCH__INCLUDE", "*.pdf,invoices/**/*.xml"),
            ("FILETRIGGER__WATCH__EXCLUDE", "drafts/**,~*"),
        ],
    );
    // The fence files of `expect_nothing_more` must match `watch.include`.
    site.set_fence_ext("pdf");
    let mut p = Poller::start(&d.trigger_url());
    let offered = [
        "a.pdf",
        "sub/c.pdf",
        "invoices/2026/e.xml",
        "x/drafts/f.pdf",
    ];
    let not_offered = [
        "b.txt",
        "f.xml",
        "sub/g.xml",
        "drafts/d.pdf",
        "drafts/deep/er.pdf",
        "~g.pdf",
        "sub/~h.pdf",
        "a.pdf.txt",
    ];
    for rel in not_offered {
        write_direct(&site.inbox, rel, rel.as_bytes());
    }
    for rel in offered {
        write_direct(&site.inbox, rel, rel.as_bytes());
    }
    let want = strings(&offered);
    let got = p.drain(want.len(), WAIT).to_vec();
    assert_exactly_once(&got, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_exactly_once(&p.got, &want);
    // With `exclude` replaced, the default hidden-file exclusion no longer applies.
    write_direct(&site.inbox, ".now-visible.pdf", b"x");
    let got = p.drain(want.len() + 1, WAIT).to_vec();
    assert_eq!(got.last().unwrap().path, ".now-visible.pdf");
}

// ---------------------------------------------------------------------------------------
// New directories
// ---------------------------------------------------------------------------------------

#[test]
fn mkdir_p_then_immediately_writing_at_every_level_offers_every_file_once() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    std::fs::create_dir_all(site.inbox.join("a/b/c")).unwrap();
    let want = strings(&["a/b/c/1.txt", "a/b/2.txt", "a/3.txt"]);
    for w in &want {
        std::fs::write(site.inbox.join(w), w.as_bytes()).unwrap();
    }
    let got = p.drain(3, WAIT).to_vec();
    assert_exactly_once(&got, &want);
    for g in &got {
        assert_eq!(g.content(), g.path.as_bytes());
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
}

/// Creates `trees` trees `t{i}/d1/d2/d3` with two files at each of the four levels,
/// straight under their final names, from `threads` threads at once.
fn plant_trees(root: &Path, prefix: &str, trees: usize, threads: usize) -> Vec<String> {
    let per_thread: Vec<Vec<usize>> = (0..threads)
        .map(|t| (0..trees).filter(|i| i % threads == t).collect())
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .map(|ids| {
                s.spawn(move || {
                    let mut made = Vec::new();
                    for i in ids {
                        let deepest = format!("{prefix}/t{i}/d1/d2/d3");
                        std::fs::create_dir_all(root.join(&deepest)).unwrap();
                        let mut dir = deepest.clone();
                        loop {
                            for f in ["x.txt", "y.csv"] {
                                let rel = format!("{dir}/{f}");
                                std::fs::write(root.join(&rel), rel.as_bytes()).unwrap();
                                made.push(rel);
                            }
                            match dir.rsplit_once('/') {
                                Some((parent, _)) if parent != prefix => dir = parent.into(),
                                _ => break,
                            }
                        }
                    }
                    made
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn twenty_nested_trees_created_at_once_are_all_offered_once() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    // Round 1: one thread, as fast as it goes.
    let mut want = plant_trees(&site.inbox, "r1", 20, 1);
    assert_eq!(want.len(), 160);
    // Round 2: four threads at once, and the top directory itself is new.
    want.extend(plant_trees(&site.inbox, "r2/new", 20, 4));
    assert_eq!(want.len(), 320);
    let got = p.drain(want.len(), WAIT).to_vec();
    assert_exactly_once(&got, &want);
    for g in &got {
        assert_eq!(g.content(), g.path.as_bytes(), "{}", g.path);
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
}

#[test]
fn a_populated_directory_moved_in_from_outside_is_offered_in_full() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let outside = site.tmp.path().join("outside");
    let mut want = Vec::new();
    for i in 0..30 {
        let rel = format!("batch/{}/f{i}.txt", ["a", "b/c", "b/d/e"][i % 3]);
        write_direct(&outside, &rel, rel.as_bytes());
        want.push(rel);
    }
    write_direct(&outside, "batch/.hidden", b"excluded");
    write_direct(&outside, "batch/b/x.tmp", b"excluded");
    // Old mtimes, as unzip or `cp -p` would leave them.
    for w in &want {
        set_mtime(
            &outside.join(w),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
        );
    }
    std::fs::rename(outside.join("batch"), site.inbox.join("batch")).unwrap();
    // And one moved into an existing subdirectory.
    std::fs::create_dir_all(site.inbox.join("existing")).unwrap();
    write_direct(&outside, "second/one.pdf", b"one");
    write_direct(&outside, "second/deep/two.pdf", b"two");
    std::fs::rename(outside.join("second"), site.inbox.join("existing/second")).unwrap();
    want.push("existing/second/one.pdf".into());
    want.push("existing/second/deep/two.pdf".into());
    let got = p.drain(want.len(), WAIT).to_vec();
    assert_exactly_once(&got, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));
}

// ---------------------------------------------------------------------------------------
// New versions
// ---------------------------------------------------------------------------------------

#[test]
fn a_modified_file_is_offered_again_once_and_a_file_merely_opened_is_not() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let path = site.put("m.txt", b"version 1");
    let got = p.drain(1, WAIT).to_vec();
    assert_eq!(got[0].content(), b"version 1");
    p.expect_nothing_more(&site, quiet(SETTLE));

    // A new size: appended.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b" + more").unwrap();
    drop(f);
    let got = p.drain(2, WAIT).to_vec();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].path, "m.txt");
    assert_eq!(got[1].content(), b"version 1 + more");
    assert_eq!(got[1].body["size"], 16);
    assert!(Stamp::parse(&got[1].indexed_at).unwrap() > Stamp::parse(&got[0].indexed_at).unwrap());
    p.expect_nothing_more(&site, quiet(SETTLE));

    // Same size, new bytes, new mtime: rewritten in place.
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(b"VERSION 3 + MORE").unwrap();
    drop(f);
    let got = p.drain(3, WAIT).to_vec();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].content(), b"VERSION 3 + MORE");
    p.expect_nothing_more(&site, quiet(SETTLE));

    // Same content, only the mtime changes (a `touch`): a new version too.
    set_mtime(
        &path,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000),
    );
    let got = p.drain(4, WAIT).to_vec();
    assert_eq!(got.len(), 4);
    assert_eq!(
        got[3].body["lastModified"],
        "2020-09-13T12:26:40.000000000Z"
    );
    assert_eq!(got[3].content(), b"VERSION 3 + MORE");
    p.expect_nothing_more(&site, quiet(SETTLE));

    // Replaced atomically: a new file renamed over the old one.
    let tmp = site.inbox.join(".m.txt.tmp");
    std::fs::write(&tmp, b"VERSION 5, atomic").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let got = p.drain(5, WAIT).to_vec();
    assert_eq!(got.len(), 5);
    assert_eq!(got[4].path, "m.txt");
    assert_eq!(got[4].content(), b"VERSION 5, atomic");
    p.expect_nothing_more(&site, quiet(SETTLE));

    // Read, and opened for writing without writing (a close-write event, no change).
    let mut buf = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap();
    assert_eq!(buf, b"VERSION 5, atomic");
    drop(std::fs::OpenOptions::new().write(true).open(&path).unwrap());
    drop(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap(),
    );
    // A neighbour proves the events were processed.
    site.put("neighbour.txt", b"n");
    let got = p.drain(6, WAIT).to_vec();
    assert_eq!(got.len(), 6);
    assert_eq!(got[5].path, "neighbour.txt");
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(
        p.paths(),
        vec!["m.txt", "m.txt", "m.txt", "m.txt", "m.txt", "neighbour.txt"]
    );
}

#[test]
fn a_deleted_then_recreated_file_is_offered_again() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let path = write_direct(&site.inbox, "again.txt", b"one");
    p.drain(1, WAIT);
    std::fs::remove_file(&path).unwrap();
    // Re-created straight away with new content.
    write_direct(&site.inbox, "again.txt", b"second!");
    let got = p.drain(2, WAIT).to_vec();
    assert_eq!(p.paths(), vec!["again.txt", "again.txt"], "{got:?}");
    assert_eq!(got[1].content(), b"second!");
    p.expect_nothing_more(&site, quiet(SETTLE));
    // Deleted, the deletion seen, then re-created with the first content again (same
    // size; the inode may well be reused).
    std::fs::remove_file(&path).unwrap();
    wait_for("the deletion indexed", WAIT, || {
        indexed(&d) == site.fences()
    });
    write_direct(&site.inbox, "again.txt", b"one");
    let got = p.drain(3, WAIT).to_vec();
    assert_eq!(got.len(), 3, "{:?}", p.paths());
    assert_eq!(got[2].content(), b"one");
    p.expect_nothing_more(&site, quiet(SETTLE));
    // Delivered again as an exact copy (`cp -p`, `rsync -a`): same content, same mtime,
    // through a temporary name; after a deletion it is a new arrival all the same.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::remove_file(&path).unwrap();
    wait_for("the deletion indexed", WAIT, || {
        indexed(&d) == site.fences()
    });
    let tmp = site.inbox.join(".again.txt.tmp");
    std::fs::write(&tmp, b"one").unwrap();
    set_mtime(&tmp, mtime);
    std::fs::rename(&tmp, &path).unwrap();
    let got = p.drain(4, WAIT).to_vec();
    assert_eq!(got.len(), 4, "{:?}", p.paths());
    assert_eq!(got[3].content(), b"one");
    assert_eq!(got[3].body["lastModified"], got[2].body["lastModified"]);
    p.expect_nothing_more(&site, quiet(SETTLE));
}

// ---------------------------------------------------------------------------------------
// The start-up scan
// ---------------------------------------------------------------------------------------

#[test]
fn files_present_before_start_up_are_found_by_the_scan() {
    let site = Site::new();
    let mut want = Vec::new();
    for i in 0..25 {
        let rel = format!("{}pre{i}.dat", ["", "x/", "x/y/z/"][i % 3]);
        write_direct(&site.inbox, &rel, rel.as_bytes());
        set_mtime(
            &site.inbox.join(&rel),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_234_567_890),
        );
        want.push(rel);
    }
    write_direct(&site.inbox, ".pre-hidden", b"excluded");
    write_direct(&site.inbox, "x/pre.tmp", b"excluded");
    std::fs::create_dir_all(site.inbox.join("empty/dir")).unwrap();
    let d = site.daemon(SETTLE, &[]);
    let mut p = replay(&d);
    let got = p.drain(want.len(), WAIT).to_vec();
    assert_exactly_once(&got, &want);
    for g in &got {
        assert_eq!(g.content(), g.path.as_bytes());
        assert_eq!(g.body["lastModified"], "2009-02-13T23:31:30.000000000Z");
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), want.len() as u64 + site.fences());
}

// ---------------------------------------------------------------------------------------
// Odd names
// ---------------------------------------------------------------------------------------

#[test]
fn odd_names_are_offered_and_a_name_that_is_not_utf8_is_escaped_losslessly() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let utf8: &[(&str, &[u8])] = &[
        ("with space.txt", b"spaces"),
        ("Überweisung März €.pdf", b"%PDF-1.4 euro"),
        ("請求書 2026年.pdf", b"%PDF-1.4 japanese"),
        ("日本語/フォルダ/ファイル.txt", b"nested japanese"),
        ("empty.txt", b""),
        ("100% sure.txt", b"percent"),
        ("quote\"back\\slash.txt", b"quote"),
        ("line\nbreak.txt", b"newline"),
    ];
    for (rel, data) in utf8 {
        write_direct(&site.inbox, rel, data);
    }
    let raw: &[(&[u8], &[u8], &str)] = &[
        (b"caf\xe9.txt", b"latin-1 name", "caf%E9.txt"),
        (
            b"dir\xff/x 100%.txt",
            b"bad dir byte",
            "dir%FF/x 100%25.txt",
        ),
    ];
    for (rel, data, _) in raw {
        write_direct(&site.inbox, OsStr::from_bytes(rel), data);
    }
    let n = utf8.len() + raw.len();
    let got = p.drain(n, WAIT).to_vec();
    let mut want: Vec<String> = utf8.iter().map(|(r, _)| r.to_string()).collect();
    want.extend(raw.iter().map(|(_, _, esc)| esc.to_string()));
    assert_exactly_once(&got, &want);
    let by_path: HashMap<&str, &Got> = got.iter().map(|g| (g.path.as_str(), g)).collect();
    for (rel, data) in utf8 {
        let g = by_path[rel];
        assert_eq!(g.body["size"], data.len() as u64, "{rel}");
        assert_eq!(g.content(), *data, "{rel}");
        assert!(g.body.get("pathEncoding").is_none(), "{}", g.body);
        assert!(g.body.get("pathBytes").is_none(), "{}", g.body);
        assert_eq!(g.body["name"], rel.rsplit('/').next().unwrap(), "{rel}");
    }
    assert_eq!(
        by_path["Überweisung März €.pdf"].body["contentType"],
        "application/pdf"
    );
    assert_eq!(by_path["empty.txt"].body["size"], 0);
    assert_eq!(by_path["empty.txt"].body["content"]["$content"], "");
    for (rel, data, esc) in raw {
        let g = by_path[esc];
        assert_eq!(g.body["pathEncoding"], "percent-escaped", "{}", g.body);
        assert_eq!(
            g.body["pathBytes"],
            base64::engine::general_purpose::STANDARD.encode(rel),
            "{}",
            g.body
        );
        assert_eq!(g.content(), *data);
    }
    // Still serving: a later file arrives.
    site.put("later.txt", b"still alive");
    let got = p.drain(n + 1, WAIT).to_vec();
    assert_eq!(got.last().unwrap().path, "later.txt");
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(d.health()["status"], "ok");
}

// ---------------------------------------------------------------------------------------
// Symbolic links
// ---------------------------------------------------------------------------------------

#[test]
fn symbolic_links_and_other_non_regular_files_are_never_offered() {
    use std::os::unix::fs::symlink;
    let site = Site::new();
    let outside_file = site.tmp.path().join("outside.txt");
    std::fs::write(&outside_file, b"secret outside the watched dir").unwrap();
    let outside_dir = site.tmp.path().join("outside-dir");
    write_direct(&outside_dir, "a.txt", b"outside a");
    write_direct(&outside_dir, "sub/b.txt", b"outside b");
    // One set of links exists before start-up (the scan) ...
    symlink("/etc/hostname", site.inbox.join("pre-hostname")).unwrap();
    symlink(&outside_dir, site.inbox.join("pre-linked-dir")).unwrap();
    let d = site.daemon(SETTLE, &[]);
    let mut p = replay(&d);
    // ... and another appears while it runs (the watcher).
    symlink("/etc/hostname", site.inbox.join("hostname")).unwrap();
    symlink(&outside_file, site.inbox.join("outside.txt")).unwrap();
    symlink(&outside_dir, site.inbox.join("linked-dir")).unwrap();
    std::fs::create_dir_all(site.inbox.join("sub")).unwrap();
    symlink(&outside_file, site.inbox.join("sub/deep-link.txt")).unwrap();
    symlink("/nonexistent/target", site.inbox.join("dangling.txt")).unwrap();
    // A link to a file inside the watched directory: the file is offered, the link not.
    std::fs::write(site.inbox.join("real.txt"), b"real").unwrap();
    symlink(site.inbox.join("real.txt"), site.inbox.join("alias.txt")).unwrap();
    // Renamed into place, a link is still a link.
    symlink(&outside_file, site.inbox.join(".staged-link")).unwrap();
    std::fs::rename(
        site.inbox.join(".staged-link"),
        site.inbox.join("renamed-link.txt"),
    )
    .unwrap();
    // Not a regular file either: a named pipe (opening it would block a reader).
    let fifo = std::ffi::CString::new(site.inbox.join("pipe.csv").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // Written after all of them.
    site.put("regular.txt", b"regular");
    let want = strings(&["real.txt", "regular.txt"]);
    let got = p.drain(2, WAIT).to_vec();
    assert_exactly_once(&got, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_exactly_once(&p.got, &want);
    assert_eq!(indexed(&d), 2 + site.fences());
}

// ---------------------------------------------------------------------------------------
// watch.recursive = false
// ---------------------------------------------------------------------------------------

#[test]
fn non_recursive_watch_offers_top_level_files_only() {
    let site = Site::new();
    write_direct(&site.inbox, "pre-top.txt", b"top before");
    write_direct(&site.inbox, "old-sub/pre.txt", b"sub before");
    let d = site.daemon(SETTLE, &[("FILETRIGGER__WATCH__RECURSIVE", "false")]);
    let mut p = replay(&d);
    write_direct(&site.inbox, "old-sub/during.txt", b"sub during");
    write_direct(&site.inbox, "new-sub/x.txt", b"new sub");
    std::thread::sleep(Duration::from_millis(100));
    write_direct(&site.inbox, "new-sub/y.txt", b"new sub, later");
    let outside = site.tmp.path().join("moved");
    write_direct(&outside, "m.txt", b"moved in");
    std::fs::rename(&outside, site.inbox.join("moved")).unwrap();
    write_direct(&site.inbox, "top.txt", b"top during");
    let want = strings(&["pre-top.txt", "top.txt"]);
    let got = p.drain(2, WAIT).to_vec();
    assert_exactly_once(&got, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_exactly_once(&p.got, &want);
}

/// Whether a process holds an inotify instance.
fn has_inotify(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            std::fs::read_link(e.path())
                .map(|l| l.to_string_lossy().contains("inotify"))
                .unwrap_or(false)
        })
}

#[test]
fn poll_mode_finds_files_by_scanning_alone() {
    let site = Site::new();
    site.put("before.txt", b"before start");
    let d = site.daemon(
        200,
        &[
            ("FILETRIGGER__WATCH__MODE", "poll"),
            ("FILETRIGGER__WATCH__POLL_INTERVAL_S", "1"),
        ],
    );
    assert_eq!(d.health()["watcher"], "poll");
    assert!(!has_inotify(d.pid()), "poll mode must not use inotify");
    let mut p = Poller::at(format!(
        "{}?triggerState=2000-01-01T00:00:00Z",
        d.trigger_url()
    ));
    let mut want = vec!["before.txt".to_string()];
    for i in 0..10 {
        let rel = format!("share/{}/f{i}.dat", i % 3);
        site.put(&rel, format!("{i}").as_bytes());
        want.push(rel);
    }
    p.drain(want.len(), Duration::from_secs(30));
    assert_exactly_once(&p.got, &want);
    // A changed file is a new version, found by a later scan.
    std::fs::write(site.inbox.join("before.txt"), b"changed, longer").unwrap();
    let n = p.got.len();
    p.drain(n + 1, Duration::from_secs(30));
    assert_eq!(p.got[n].path, "before.txt");
    assert_eq!(p.got[n].content(), b"changed, longer");
    p.expect_nothing_more(&site, Duration::from_millis(2500));
}
