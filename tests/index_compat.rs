//! An index written by an earlier build opens and continues (the on-disk format must not
//! change under it).
//!
//! `tests/fixtures/index-fc17110.redb` was written by the daemon built from commit
//! fc17110: it indexed the three files in [`OLD`] (content and mtime as given there) and
//! was stopped with SIGTERM. This test recreates those files, starts the current daemon
//! on a copy of that store, and checks that the old files are not offered again, that a
//! replay from before them gives them in order with their old stamps, and that a new file
//! gets a later stamp and is offered once.
//!
//! An inode cannot be chosen, so the recreated files have other inode numbers than the
//! ones recorded, and the daemon would rightly take them for new versions. Before the
//! start, the test therefore points the inode fields of the store at the recreated files
//! (through redb, in the two tables that hold them) and changes nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use filetrigger::stamp::Stamp;
use redb::{ReadableTable, ReadableTableMetadata};

/// The fixture's files: path, content, and the stamp fc17110 gave each (in that order).
const OLD: [(&str, &[u8], &str); 3] = [
    ("a.txt", b"first\n", "2026-12-03T15:07:27.198537890Z"),
    ("sub/b.csv", b"x,y\n1,2\n", "2026-12-03T15:07:27.198727512Z"),
    (
        "sub/deeper/c.pdf",
        b"%PDF-1.7 third\n",
        "2026-12-03T15:07:27.198756475Z",
    ),
];
/// Their mtime: 2026-01-02T03:04:05.123456789Z.
const OLD_MTIME_NS: u64 = 1_767_323_045_123_456_789;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/index-fc17110.redb"
);

type OfferValue = (&'static [u8], u64, i64, u64);
type FileValue = (u64, i64, u64, i64);
const OFFERS: redb::TableDefinition<i64, OfferValue> = redb::TableDefinition::new("offers");
const FILES: redb::TableDefinition<&[u8], FileValue> = redb::TableDefinition::new("files");

/// Sets the inode recorded for each of [`OLD`] to the recreated file's, and checks on the
/// way that the store holds exactly the entries described above.
fn point_inodes_at(store: &Path, inbox: &Path) {
    let db = redb::Database::open(store).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut files = txn.open_table(FILES).unwrap();
        let mut offers = txn.open_table(OFFERS).unwrap();
        for (rel, data, stamp) in OLD {
            let ino = std::fs::metadata(inbox.join(rel)).unwrap().ino();
            let stamp = Stamp::parse(stamp).unwrap().0;
            let (size, mtime, _, at) = files.get(rel.as_bytes()).unwrap().unwrap().value();
            assert_eq!(
                (size, mtime, at),
                (data.len() as u64, OLD_MTIME_NS as i64, stamp)
            );
            let (size, mtime) = {
                let guard = offers.get(stamp).unwrap().unwrap();
                let (path, size, mtime, _) = guard.value();
                assert_eq!(path, rel.as_bytes());
                (size, mtime)
            };
            offers
                .insert(stamp, (rel.as_bytes(), size, mtime, ino))
                .unwrap();
            files
                .insert(rel.as_bytes(), (size, mtime, ino, stamp))
                .unwrap();
        }
        assert_eq!(files.len().unwrap(), 3);
        assert_eq!(offers.len().unwrap(), 3);
    }
    txn.commit().unwrap();
}

#[test]
fn an_index_written_by_the_previous_build_opens_and_continues() {
    let site = Site::new();
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_nanos(OLD_MTIME_NS);
    for (rel, data, _) in OLD {
        set_mtime(&write_direct(&site.inbox, rel, data), mtime);
    }
    std::fs::create_dir_all(&site.state).unwrap();
    let store = site.state.join("index.redb");
    std::fs::copy(FIXTURE, &store).unwrap();
    point_inodes_at(&store, &site.inbox);

    let d = site.daemon(SETTLE, &[]);
    assert_eq!(indexed(&d), 3, "{}", d.health());
    // A workflow that had seen all three (its cursor is the last old stamp), and one that
    // makes its first call now: neither gets an old file again; both get the new one.
    let mut seen_all = Poller::at(format!("{}?triggerState={}", d.trigger_url(), OLD[2].2));
    let mut fresh = Poller::start(&d.trigger_url());
    site.put("new.txt", b"after the upgrade");
    for p in [&mut seen_all, &mut fresh] {
        p.drain(1, WAIT);
        assert_eq!(p.paths(), vec!["new.txt"]);
        p.expect_nothing_more(&site, quiet(SETTLE));
    }
    let new_stamp = Stamp::parse(&fresh.got[0].indexed_at).unwrap();
    assert!(new_stamp > Stamp::parse(OLD[2].2).unwrap());

    // A replay from before them: the old files in their order with their old stamps and
    // content, then the new one.
    let mut r = Poller::at(format!(
        "{}?triggerState=2026-12-03T15:07:27Z",
        d.trigger_url()
    ));
    r.drain(4, WAIT);
    assert_eq!(
        r.paths(),
        vec!["a.txt", "sub/b.csv", "sub/deeper/c.pdf", "new.txt"]
    );
    for (g, (rel, data, stamp)) in r.got.iter().zip(OLD) {
        assert_eq!(g.indexed_at, stamp, "{rel}");
        assert_eq!(g.content(), data, "{rel}");
        assert_eq!(g.body["lastModified"], "2026-01-02T03:04:05.123456789Z");
    }
    assert_eq!(r.got[3].indexed_at, fresh.got[0].indexed_at);
    r.expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(indexed(&d), 4 + site.fences());
}
