//! Identity and versions (issue 3, item 4), against the real daemon over real HTTP: what
//! is one file, and when is it a new one. PROTOCOL.md: the index holds one entry per path;
//! a path that was not there before is a new arrival (the write-then-rename pattern is
//! offered "under the final name"), and a file at a known path whose version changed is a
//! new version. A version is (size, mtime, inode), so an atomic replace is new even when
//! size and mtime are kept. Each case is offered exactly once, and nothing else is.
//!
//! Not repeated from tests/discovery.rs: plain delete-and-recreate, a single atomic
//! replace among other changes, and a populated directory moved in.

// Helpers outside #[test] functions panic on failure too, as in tests/common.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;

fn ino(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// Stops the daemon (SIGTERM), runs `while_down`, starts a new one on the same site and
/// points the poller's cursor at it.
fn restart(site: &Site, d: Daemon, p: &mut Poller, while_down: impl FnOnce()) -> Daemon {
    assert!(d.terminate().success());
    while_down();
    let d = site.daemon(SETTLE, &[]);
    p.next = d.rebase(&p.next);
    d
}

/// The next `n` files after what `p` has, checked to be exactly `want` (each once).
fn next_exactly(p: &mut Poller, want: &[String]) -> Vec<Got> {
    let before = p.got.len();
    p.drain(before + want.len(), WAIT);
    let new = p.got[before..].to_vec();
    assert_exactly_once(&new, want);
    new
}

// ---------------------------------------------------------------------------------------
// Inode reuse
// ---------------------------------------------------------------------------------------

/// Would fail if identity were the inode (a rename detector that takes a new file on a
/// reused inode for the deleted one moved, and offers nothing), or if a deletion left an
/// entry behind that a same-inode, same-size, same-mtime file then matched.
#[test]
fn a_new_name_on_a_reused_inode_is_a_new_file_each_time() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let first = write_direct(&site.inbox, "reuse/r0.csv", b"same bytes");
    next_exactly(&mut p, &strings(&["reuse/r0.csv"]));
    let (mut last, t) = (first.clone(), mtime(&first));
    let mut reused = 0;
    for i in 1..6 {
        let old_ino = ino(&last);
        std::fs::remove_file(&last).unwrap();
        let rel = format!("reuse/r{i}.csv");
        let path = write_direct(&site.inbox, &rel, b"same bytes");
        set_mtime(&path, t);
        reused += usize::from(ino(&path) == old_ino);
        next_exactly(&mut p, &[rel]);
        last = path;
    }
    if reused == 0 {
        eprintln!("note: this file system never reused an inode; tested new names only");
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(
        indexed(&d),
        1 + site.fences(),
        "deleted names left entries behind"
    );
}

/// Across a restart the start-up scan is all there is: would fail if it matched files by
/// inode (z.csv taken for x.csv, which is gone), if it compared only mtime and inode
/// (y.csv's new size missed), or if it kept the deleted x.csv's entry.
#[test]
fn inode_reuse_while_the_daemon_is_down_is_a_new_file_or_a_new_version() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let x = write_direct(&site.inbox, "x.csv", b"0123456789");
    let y = write_direct(&site.inbox, "y.csv", b"yyyy");
    next_exactly(&mut p, &strings(&["x.csv", "y.csv"]));
    let mut same_ino = Vec::new();
    let d = restart(&site, d, &mut p, || {
        // z.csv: x.csv's inode (where the file system reuses them), size and mtime.
        let (x_ino, x_mtime) = (ino(&x), mtime(&x));
        std::fs::remove_file(&x).unwrap();
        let z = write_direct(&site.inbox, "z.csv", b"9876543210");
        set_mtime(&z, x_mtime);
        same_ino.push(ino(&z) == x_ino);
        // y.csv: deleted and written again, with its old mtime and a new size.
        let (y_ino, y_mtime) = (ino(&y), mtime(&y));
        std::fs::remove_file(&y).unwrap();
        write_direct(&site.inbox, "y.csv", b"yyyyy");
        set_mtime(&y, y_mtime);
        same_ino.push(ino(&y) == y_ino);
    });
    if same_ino.contains(&false) {
        eprintln!("note: inodes were not reused ({same_ino:?}); the case is weaker");
    }
    let got = next_exactly(&mut p, &strings(&["z.csv", "y.csv"]));
    for g in &got {
        let want: &[u8] = if g.path == "z.csv" {
            b"9876543210"
        } else {
            b"yyyyy"
        };
        assert_eq!(g.content(), want, "{}", g.path);
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(
        indexed(&d),
        2 + site.fences(),
        "x.csv's entry outlived the restart"
    );
}

// ---------------------------------------------------------------------------------------
// Atomic replace
// ---------------------------------------------------------------------------------------

/// Writes `data` to a hidden temporary name with mtime `t`, then renames it over `path`.
fn replace_atomically(path: &Path, data: &[u8], t: SystemTime) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, data).unwrap();
    set_mtime(&tmp, t);
    std::fs::rename(&tmp, path).unwrap();
}

/// Would fail if a version were only (size, mtime): each replacement here keeps both, so
/// only the inode tells; also if a replace were offered twice (the temporary name, or the
/// rename's events) or if a restart lost one made while the daemon was down.
#[test]
fn an_atomic_replace_keeping_size_and_mtime_is_one_new_version_also_across_a_restart() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let path = site.put("ledger.json", b"{\"v\":0}");
    let t = mtime(&path);
    next_exactly(&mut p, &strings(&["ledger.json"]));
    for v in 1..4 {
        let data = format!("{{\"v\":{v}}}").into_bytes();
        replace_atomically(&path, &data, t);
        let got = next_exactly(&mut p, &strings(&["ledger.json"]));
        assert_eq!(got[0].content(), data);
        assert_eq!(mtime(&path), t, "the test must keep the mtime");
        p.expect_nothing_more(&site, quiet(SETTLE));
    }
    let d = restart(&site, d, &mut p, || {
        replace_atomically(&path, b"{\"v\":9}", t);
    });
    let got = next_exactly(&mut p, &strings(&["ledger.json"]));
    assert_eq!(got[0].content(), b"{\"v\":9}");
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), 1 + site.fences());
}

// ---------------------------------------------------------------------------------------
// Many empty files, identical content
// ---------------------------------------------------------------------------------------

/// Would fail if offers were keyed or de-duplicated by (size, mtime) or content (every
/// file here is empty with one mtime), if an empty file never counted as complete or its
/// empty content failed to read, or if a restart offered any of them again.
#[test]
fn five_hundred_empty_files_with_one_mtime_are_each_offered_once() {
    let site = Site::new();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut want = Vec::new();
    // Half are there at start-up (the scan) ...
    for i in 0..250 {
        let rel = format!("empty/{}/e{i:03}", i % 5);
        set_mtime(&write_direct(&site.inbox, &rel, b""), t);
        want.push(rel);
    }
    let d = site.daemon(SETTLE, &[]);
    let mut p = replay(&d);
    // ... and half arrive while it runs (the watcher).
    for i in 250..500 {
        let rel = format!("empty/{}/e{i:03}", i % 5);
        set_mtime(&write_direct(&site.inbox, &rel, b""), t);
        want.push(rel);
    }
    let got = p.drain(want.len(), WAIT).to_vec();
    assert_exactly_once(&got, &want);
    for g in &got {
        assert_eq!(g.body["size"], 0, "{}", g.path);
        assert_eq!(g.body["content"]["$content"], "", "{}", g.path);
        assert_eq!(g.body["lastModified"], "2023-11-14T22:13:20.000000000Z");
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
    let d = restart(&site, d, &mut p, || {});
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), 500 + site.fences());
}

/// Would fail if files were de-duplicated by content, by name, or by inode (hard links
/// share one), or if a new link re-offered its original (linking changes only its link
/// count and ctime, not its version).
#[test]
fn identical_content_in_different_files_and_hard_links_are_each_offered_once() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let data = b"%PDF-1.4 the very same bytes";
    let mut want = Vec::new();
    for dir in ["north", "south", "east", "west", "north/archive"] {
        for name in ["report.pdf", "copy.pdf"] {
            let rel = format!("{dir}/{name}");
            set_mtime(&write_direct(&site.inbox, &rel, data), t);
            want.push(rel);
        }
    }
    let got = next_exactly(&mut p, &want);
    for g in &got {
        assert_eq!(g.content(), data);
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
    // Hard links to an offered file: new paths, one inode.
    std::fs::create_dir_all(site.inbox.join("links")).unwrap();
    let original = site.inbox.join("north/report.pdf");
    std::fs::hard_link(&original, site.inbox.join("links/one.pdf")).unwrap();
    std::fs::hard_link(&original, site.inbox.join("links/two.pdf")).unwrap();
    assert_eq!(ino(&original), ino(&site.inbox.join("links/two.pdf")));
    let got = next_exactly(&mut p, &strings(&["links/one.pdf", "links/two.pdf"]));
    for g in &got {
        assert_eq!(g.content(), data);
    }
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), 12 + site.fences());
}

// ---------------------------------------------------------------------------------------
// Renames inside the tree
// ---------------------------------------------------------------------------------------

/// PROTOCOL.md: one entry per path, and a rename into place is offered under the final
/// name; so a renamed file is a new path, offered once there, and never again at its old
/// path. Would fail if the rename target were missed (only `RenameMode::From` handled),
/// if identity by inode suppressed the new path, if the old path stayed indexed, or if a
/// file renamed before it settled were offered under its first name.
#[test]
fn a_file_renamed_inside_the_tree_is_offered_once_under_each_new_path() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let inbox = &site.inbox;
    write_direct(inbox, "a.txt", b"alpha");
    write_direct(inbox, "keep.txt", b"kept");
    next_exactly(&mut p, &strings(&["a.txt", "keep.txt"]));

    // Same directory, then into another one.
    std::fs::rename(inbox.join("a.txt"), inbox.join("b.txt")).unwrap();
    let got = next_exactly(&mut p, &strings(&["b.txt"]));
    assert_eq!(got[0].content(), b"alpha");
    std::fs::create_dir_all(inbox.join("sub/deeper")).unwrap();
    std::fs::rename(inbox.join("b.txt"), inbox.join("sub/deeper/c.txt")).unwrap();
    next_exactly(&mut p, &strings(&["sub/deeper/c.txt"]));
    p.expect_nothing_more(&site, quiet(SETTLE));

    // To an excluded name: gone, nothing offered; and back out of it: a new path again.
    std::fs::rename(inbox.join("sub/deeper/c.txt"), inbox.join("sub/.c.txt")).unwrap();
    p.expect_nothing_more(&site, quiet(SETTLE));
    std::fs::rename(inbox.join("sub/.c.txt"), inbox.join("d.txt")).unwrap();
    next_exactly(&mut p, &strings(&["d.txt"]));

    // Renamed twice before it settled: only the last name.
    write_direct(inbox, "e1.txt", b"epsilon");
    std::fs::rename(inbox.join("e1.txt"), inbox.join("e2.txt")).unwrap();
    std::fs::rename(inbox.join("e2.txt"), inbox.join("e3.txt")).unwrap();
    let got = next_exactly(&mut p, &strings(&["e3.txt"]));
    assert_eq!(got[0].content(), b"epsilon");
    p.expect_nothing_more(&site, quiet(SETTLE));

    // Over another offered file: that path has a new version, the source path is gone.
    std::fs::rename(inbox.join("d.txt"), inbox.join("keep.txt")).unwrap();
    let got = next_exactly(&mut p, &strings(&["keep.txt"]));
    assert_eq!(got[0].content(), b"alpha");
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), 2 + site.fences(), "old paths stayed indexed");

    // Renamed while the daemon is down: the start-up scan finds the new path.
    let d = restart(&site, d, &mut p, || {
        std::fs::rename(inbox.join("e3.txt"), inbox.join("sub/e4.txt")).unwrap();
    });
    next_exactly(&mut p, &strings(&["sub/e4.txt"]));
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), 2 + site.fences());
    let counts = p.paths();
    assert_eq!(
        counts.iter().filter(|x| *x == "keep.txt").count(),
        2,
        "{counts:?}"
    );
}

/// Creates `n` files under `dir` (relative), half of them one level deeper.
fn plant(root: &Path, dir: &str, tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let rel = format!("{dir}/{}{tag}{i}.txt", ["", "deep/"][i % 2]);
            write_direct(root, &rel, tag.as_bytes());
            rel
        })
        .collect()
}

fn renamed(paths: &[String], from: &str, to: &str) -> Vec<String> {
    paths
        .iter()
        .map(|p| format!("{to}{}", p.strip_prefix(from).unwrap()))
        .collect()
}

/// A renamed directory's files are new paths (as a renamed file is): each is offered once
/// under the new name, never again under the old. Files added into it afterwards, at once
/// and after the dust settled, arrive once each. Would fail if events from inside a
/// renamed directory kept their old path (notify maps a watch to the path it was added
/// under; the subtree scan must re-add it under the new one) so later files are lost
/// until a periodic rescan (300 s here), if the renamed tree were missed, if files written
/// while its subtree scan ran came twice, or if the old paths stayed indexed.
#[test]
fn a_renamed_subdirectory_offers_its_files_once_under_the_new_paths_and_new_files_in_it() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let inbox = &site.inbox;
    let old = plant(inbox, "dept/a", "f", 8);
    next_exactly(&mut p, &old);

    std::fs::rename(inbox.join("dept/a"), inbox.join("dept/b")).unwrap();
    // Written at once, while the new name's subtree scan may be running.
    let mut want = renamed(&old, "dept/a", "dept/b");
    want.extend(plant(inbox, "dept/b", "now", 4));
    next_exactly(&mut p, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));

    // Written after every scan is over: only the watches can tell.
    let later = plant(inbox, "dept/b", "later", 4);
    write_direct(inbox, "dept/b/deep/new-sub/n.txt", b"n");
    let mut want_later = later.clone();
    want_later.push("dept/b/deep/new-sub/n.txt".into());
    next_exactly(&mut p, &want_later);
    p.expect_nothing_more(&site, quiet(SETTLE));

    // The parent renamed: every watch below it moved too.
    let all: Vec<String> = want.iter().chain(&want_later).cloned().collect();
    std::fs::rename(inbox.join("dept"), inbox.join("division")).unwrap();
    next_exactly(&mut p, &renamed(&all, "dept", "division"));
    p.expect_nothing_more(&site, quiet(SETTLE));
    write_direct(inbox, "division/b/deep/new-sub/m.txt", b"m");
    write_direct(inbox, "division/b/o.txt", b"o");
    next_exactly(
        &mut p,
        &strings(&["division/b/deep/new-sub/m.txt", "division/b/o.txt"]),
    );
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(
        indexed(&d),
        all.len() as u64 + 2 + site.fences(),
        "old paths stayed indexed"
    );
    assert!(
        !p.paths()
            .iter()
            .skip(old.len())
            .any(|x| x.starts_with("dept/a/")),
        "an old path was offered again: {:?}",
        p.paths()
    );
}

// ---------------------------------------------------------------------------------------
// Directories moved in
// ---------------------------------------------------------------------------------------

/// Beyond the plain move-in of tests/discovery.rs: files written into the moved-in tree at
/// once (before its watches can exist), the same tree moved out and back in once the
/// daemon saw it leave (a new arrival, as a re-created file is), and one moved in while
/// the daemon is down. Would fail if the subtree scan's snapshot or the follow-up missed
/// files written during the move, if a tree moved back in matched the stale entries of its
/// first visit, or if the start-up scan missed a tree that arrived during the outage.
#[test]
fn a_directory_moved_in_and_written_into_at_once_then_out_and_back_and_while_down() {
    let site = Site::new();
    let d = site.daemon(SETTLE, &[]);
    let mut p = Poller::start(&d.trigger_url());
    let outside = site.tmp.path().join("outside");
    let staged = plant(&outside, "batch", "s", 10);
    std::fs::rename(outside.join("batch"), site.inbox.join("batch")).unwrap();
    let mut want = staged.clone();
    want.extend(plant(&site.inbox, "batch", "w", 6));
    next_exactly(&mut p, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));

    std::fs::rename(site.inbox.join("batch"), outside.join("batch")).unwrap();
    wait_for("the move out indexed", WAIT, || {
        indexed(&d) == site.fences()
    });
    std::fs::rename(outside.join("batch"), site.inbox.join("batch")).unwrap();
    next_exactly(&mut p, &want);
    p.expect_nothing_more(&site, quiet(SETTLE));

    let late = plant(&outside, "late", "l", 6);
    let d = restart(&site, d, &mut p, || {
        std::fs::rename(outside.join("late"), site.inbox.join("late")).unwrap();
    });
    next_exactly(&mut p, &late);
    p.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(
        indexed(&d),
        (want.len() + late.len()) as u64 + site.fences()
    );
}
