//! Clean-up after delivery (issue 12, part 4): with `after_delivery = "delete" | "move"`
//! a file version is cleaned up once every consumer in `after_delivery_requires` has
//! acknowledged it; never a version changed since it was offered; a crash between the
//! acknowledgement and the clean-up is finished after the restart, once; a moved file is
//! never offered again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

const HALT: &str = "FILETRIGGER_TEST_HALT_CLEANUP";

/// Follows the engine's way from `url` until a `202`: the paths received and the
/// `Location` of that `202` (every file received is acknowledged by then).
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

fn start(site: &Site, mode: &str, extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![
        ("FILETRIGGER__WATCH__AFTER_DELIVERY", mode),
        ("FILETRIGGER__WATCH__AFTER_DELIVERY_REQUIRES", "a,b"),
        ("FILETRIGGER__WATCH__AFTER_DELIVERY_DIR", "done"),
    ];
    env.extend_from_slice(extra);
    site.daemon(SETTLE, &env)
}

/// The first calls of the consumers `a` and `b`: their Locations.
fn first_calls(d: &Daemon) -> (String, String) {
    let a = get(&format!("{}?consumer=a", d.trigger_url())).unwrap();
    let b = get(&format!("{}?consumer=b", d.trigger_url())).unwrap();
    assert_eq!((a.status, b.status), (202, 202));
    (a.location(), b.location())
}

fn lines_with(log: &str, a: &str, b: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(a) && l.contains(b))
        .count()
}

#[test]
fn a_file_is_deleted_only_after_both_required_consumers_acknowledged_it() {
    let site = Site::new();
    let d = start(&site, "delete", &[]);
    let (a, b) = first_calls(&d);
    let x = site.put("x.txt", b"x");
    wait_for("x indexed", WAIT, || indexed(&d) >= 1);
    let (got, _) = follow(&a);
    assert_eq!(got, ["x.txt"]);
    // Only a acknowledged it: it stays (b must still be offered it, with its content).
    std::thread::sleep(quiet(SETTLE));
    assert!(x.exists(), "deleted before b acknowledged it");
    let (got, _) = follow(&b);
    assert_eq!(got, ["x.txt"]);
    wait_for("x deleted and logged", WAIT, || {
        !x.exists() && lines_with(&d.log(), "cleaned up after delivery", "x.txt") > 0
    });
    assert_eq!(
        lines_with(&d.log(), "cleaned up after delivery", "x.txt"),
        1
    );
    // Forgotten by the index too: a replay from the start offers nothing but the fence.
    replay(&d).expect_nothing_more(&site, quiet(SETTLE));
}

#[test]
fn a_file_is_moved_after_both_acknowledged_and_never_offered_again() {
    let site = Site::new();
    let d = start(&site, "move", &[]);
    let (a, b) = first_calls(&d);
    let x = site.put("sub/x.txt", b"x");
    wait_for("x indexed", WAIT, || indexed(&d) >= 1);
    let (got, _) = follow(&b);
    assert_eq!(got, ["sub/x.txt"]);
    std::thread::sleep(quiet(SETTLE));
    assert!(x.exists(), "moved before a acknowledged it");
    let (got, a_at) = follow(&a);
    assert_eq!(got, ["sub/x.txt"]);
    let moved = site.inbox.join("done/sub/x.txt");
    wait_for("x moved", WAIT, || moved.exists() && !x.exists());
    assert_eq!(std::fs::read(&moved).unwrap(), b"x");
    // Neither the consumer nor a replay from the start is offered it again.
    Poller::at(a_at).expect_nothing_more(&site, quiet(SETTLE));
    replay(&d).expect_nothing_more(&site, quiet(SETTLE));
}

#[test]
fn files_indexed_before_the_consumers_first_calls_are_kept() {
    let site = Site::new();
    let old = site.put("old.txt", b"old");
    let d = start(&site, "delete", &[]);
    wait_for("old indexed", WAIT, || indexed(&d) >= 1);
    // Both consumers start at "now": old.txt is never offered to them.
    let (a, b) = first_calls(&d);
    let x = site.put("x.txt", b"x");
    wait_for("x indexed", WAIT, || indexed(&d) >= 2);
    assert_eq!(follow(&a).0, ["x.txt"]);
    assert_eq!(follow(&b).0, ["x.txt"]);
    wait_for("x deleted", WAIT, || !x.exists());
    std::thread::sleep(quiet(SETTLE));
    assert!(
        old.exists(),
        "a file never offered to the consumers was cleaned up"
    );
}

#[test]
fn a_file_changed_after_it_was_offered_is_not_deleted() {
    let site = Site::new();
    let d = start(&site, "delete", &[]);
    let (a, b) = first_calls(&d);
    let x = site.put("x.txt", b"v1");
    wait_for("x indexed", WAIT, || indexed(&d) >= 1);
    let offered_a = get(&a).unwrap();
    let offered_b = get(&b).unwrap();
    assert_eq!((offered_a.status, offered_b.status), (200, 200));
    // Changed after it was offered (a longer content: another size).
    write_direct(&site.inbox, "x.txt", b"version two");
    // Both acknowledge the version they were offered (one poll each, not further).
    let next_a = get(&offered_a.location()).unwrap();
    let next_b = get(&offered_b.location()).unwrap();
    std::thread::sleep(quiet(SETTLE));
    assert_eq!(
        std::fs::read(&x).unwrap(),
        b"version two",
        "the new version was touched"
    );
    // The new version is offered to both (a 200 above was it already: then from the
    // old cursor again), and once they acknowledge it, deleted.
    let mut pa = Poller::at(if next_a.status == 200 {
        a.clone()
    } else {
        next_a.location()
    });
    let mut pb = Poller::at(if next_b.status == 200 {
        b.clone()
    } else {
        next_b.location()
    });
    pa.drain(1, WAIT);
    pb.drain(1, WAIT);
    let v2 = |p: &Poller| {
        p.got
            .iter()
            .any(|g| g.path == "x.txt" && g.content() == b"version two")
    };
    assert!(v2(&pa) && v2(&pb), "the new version was not offered");
    pa.poll();
    pb.poll();
    wait_for("the new version deleted", WAIT, || !x.exists());
}

#[test]
fn a_crash_between_the_acknowledgement_and_the_delete_is_finished_after_the_restart_once() {
    let site = Site::new();
    let d = start(&site, "delete", &[(HALT, "before")]);
    let (a, b) = first_calls(&d);
    let x = site.put("x.txt", b"x");
    wait_for("x indexed", WAIT, || indexed(&d) >= 1);
    follow(&a);
    follow(&b);
    wait_for("the clean-up to halt", WAIT, || {
        d.log().contains("clean-up halted for a test")
    });
    assert!(x.exists());
    let first_log = d.log();
    d.kill9();
    let d = start(&site, "delete", &[]);
    wait_for("x deleted after the restart", WAIT, || {
        !x.exists() && lines_with(&d.log(), "cleaned up after delivery", "x.txt") > 0
    });
    assert!(!first_log.contains("cleaned up after delivery"));
    let both = first_log + &d.log();
    assert_eq!(
        lines_with(&both, "cleaned up after delivery", "x.txt"),
        1,
        "{both}"
    );
    replay(&d).expect_nothing_more(&site, quiet(SETTLE));
}

#[test]
fn a_crash_between_the_move_and_its_record_is_finished_after_the_restart_once() {
    let site = Site::new();
    let d = start(&site, "move", &[(HALT, "after")]);
    let (a, b) = first_calls(&d);
    let x = site.put("x.txt", b"x");
    wait_for("x indexed", WAIT, || indexed(&d) >= 1);
    follow(&a);
    let (_, b_at) = follow(&b);
    wait_for("the clean-up to halt", WAIT, || {
        d.log().contains("clean-up halted for a test")
    });
    let moved = site.inbox.join("done/x.txt");
    assert!(moved.exists() && !x.exists(), "renamed before the halt");
    d.kill9();
    let d = start(&site, "move", &[]);
    // The moved file stays where it is, is moved nowhere else, and is never offered.
    let b_at = d.rebase(&b_at);
    Poller::at(b_at).expect_nothing_more(&site, quiet(SETTLE));
    replay(&d).expect_nothing_more(&site, quiet(SETTLE));
    assert_eq!(std::fs::read(&moved).unwrap(), b"x");
    assert!(!x.exists());
    let done: Vec<_> = std::fs::read_dir(site.inbox.join("done"))
        .unwrap()
        .collect();
    assert_eq!(done.len(), 1, "{done:?}");
}
