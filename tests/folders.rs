//! Several watched folders in one daemon (issue 11, part 4): each folder offers only its
//! own files, exactly once, across a restart; `GET /watches` lists them; `auth.folders`
//! limits a Basic user and a named API key; `/trigger` still serves `default`; an index
//! of the previous release opens with a folder added; bad folder settings stop start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use common::*;
use filetrigger::stamp::Stamp;
use redb::ReadableTable;
use serde_json::Value;

const PASSWORD: &str = "correct horse";
const DOCS_KEY: &str = "docs-key-0123456789abcdef";
const ANY_KEY: &str = "any-key-0123456789abcdef";

/// The environment of a daemon over `site` (folder `default`) and `docs` (folder `docs`).
fn two_folder_env(site: &Site, docs: &Site) -> Vec<(String, String)> {
    let mut env = site.env(SETTLE);
    env.push((
        "FILETRIGGER__FOLDERS__DOCS__DIR".into(),
        docs.inbox.display().to_string(),
    ));
    env
}

fn folder_trigger(d: &Daemon, name: &str) -> String {
    format!("{}/watches/{name}/trigger", d.base())
}

#[test]
fn two_folders_each_offer_only_their_own_files_exactly_once_across_a_restart() {
    let site = Site::new();
    let docs = Site::new();
    let env = two_folder_env(&site, &docs);
    let d = Daemon::start(site.tmp.path(), &env);
    let mut main = Poller::start(&d.trigger_url());
    let mut other = Poller::start(&folder_trigger(&d, "docs"));
    // The same relative name in both: two files, one per folder.
    site.put("same.txt", b"in default");
    docs.put("same.txt", b"in docs");
    site.put("a/one.csv", b"1");
    docs.put("d/two.csv", b"2");
    main.drain(2, WAIT);
    other.drain(2, WAIT);
    assert_exactly_once(&main.got, &strings(&["same.txt", "a/one.csv"]));
    assert_exactly_once(&other.got, &strings(&["same.txt", "d/two.csv"]));
    let content = |p: &Poller, path: &str| {
        p.got
            .iter()
            .find(|g| g.path == path)
            .map(Got::content)
            .unwrap()
    };
    assert_eq!(content(&main, "same.txt"), b"in default");
    assert_eq!(content(&other, "same.txt"), b"in docs");
    // Stamps are one clock: never equal across folders.
    assert_ne!(main.got[0].indexed_at, other.got[0].indexed_at);
    let health = d.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["folders"]["docs"]["filesIndexed"], 2, "{health}");
    assert_eq!(health["folders"]["default"]["status"], "ok", "{health}");
    assert_eq!(health["filesIndexed"], 4, "{health}");
    let metrics = String::from_utf8(get(&format!("{}/metrics", d.base())).unwrap().body).unwrap();
    for line in [
        "filetrigger_files_indexed{folder=\"default\"} 2",
        "filetrigger_files_indexed{folder=\"docs\"} 2",
        "filetrigger_files_offered_total{folder=\"default\"} 2",
        "filetrigger_files_offered_total{folder=\"docs\"} 2",
        "filetrigger_healthy 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }

    // Stopped: files arrive in both; after the restart each folder offers its new ones
    // once and nothing again.
    assert!(d.terminate().success());
    site.put("later.txt", b"3");
    docs.put("later-docs.txt", b"4");
    let d = Daemon::start(site.tmp.path(), &env);
    main.next = d.rebase(&main.next);
    other.next = d.rebase(&other.next);
    main.drain(3, WAIT);
    other.drain(3, WAIT);
    assert_exactly_once(&main.got, &strings(&["same.txt", "a/one.csv", "later.txt"]));
    assert_exactly_once(
        &other.got,
        &strings(&["same.txt", "d/two.csv", "later-docs.txt"]),
    );
    main.expect_nothing_more(&site, quiet(SETTLE));
    other.expect_nothing_more(&docs, quiet(SETTLE));
    // /trigger and /watches/default/trigger are one folder.
    let mut replay_default = Poller::at(format!(
        "{}/watches/default/trigger?triggerState=2000-01-01T00:00:00Z",
        d.base()
    ));
    replay_default.drain(3, WAIT);
    assert_exactly_once(
        &replay_default.got,
        &strings(&["same.txt", "a/one.csv", "later.txt"]),
    );
}

/// More folders than full scans may walk at once (at most eight) and more found files in
/// one folder than its even part of the settler's cap: every folder's files, present
/// before the start, are offered exactly once, and the daemon stops on SIGTERM.
#[test]
fn ten_folders_found_at_start_each_offer_all_their_files_exactly_once() {
    let site = Site::new();
    let others: Vec<Site> = (0..9).map(|_| Site::new()).collect();
    let mut env = site.env(SETTLE);
    let mut want: Vec<(String, Vec<String>)> = Vec::new();
    let many: Vec<String> = (0..700).map(|i| format!("many/{i:04}.csv")).collect();
    for rel in &many {
        site.put(rel, rel.as_bytes());
    }
    want.push(("default".into(), many));
    for (i, other) in others.iter().enumerate() {
        let name = format!("f{i}");
        env.push((
            format!("FILETRIGGER__FOLDERS__{}__DIR", name.to_uppercase()),
            other.inbox.display().to_string(),
        ));
        let files: Vec<String> = (0..20).map(|j| format!("{name}/{j}.txt")).collect();
        for rel in &files {
            other.put(rel, name.as_bytes());
        }
        want.push((name, files));
    }
    let d = Daemon::start(site.tmp.path(), &env);
    for (name, files) in &want {
        // From the start of time: a trigger's first poll without a state begins at now.
        let mut p = Poller::at(format!(
            "{}?triggerState=2000-01-01T00:00:00Z",
            folder_trigger(&d, name)
        ));
        p.drain(files.len(), WAIT);
        assert_exactly_once(&p.got, files);
        assert!(
            p.got
                .iter()
                .all(|g| g.content() == g.path.as_bytes() || g.content() == name.as_bytes()),
            "folder {name} offered another folder's content"
        );
    }
    wait_for("every folder ready", WAIT, || d.health()["status"] == "ok");
    assert_eq!(d.health()["filesIndexed"], 700 + 9 * 20);
    assert!(d.terminate().success());
}

#[test]
fn watch_dir_empty_serves_named_folders_only() {
    let site = Site::new();
    let docs = Site::new();
    let mut env = two_folder_env(&site, &docs);
    env.push(("FILETRIGGER__WATCH__DIR".into(), String::new()));
    let d = Daemon::start(site.tmp.path(), &env);
    let r = get(&format!("{}/watches", d.base())).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"value": [{"name": "docs", "recursive": true}]})
    );
    let r = get(&d.trigger_url()).unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "unknown_folder");
    // One folder: /healthz keeps the one-folder shape.
    assert!(d.health().get("folders").is_none(), "{}", d.health());
    let mut p = Poller::start(&folder_trigger(&d, "docs"));
    docs.put("x.txt", b"x");
    p.drain(1, WAIT);
    assert_eq!(p.paths(), vec!["x.txt"]);
}

/// An `Authorization: Basic` value.
fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"))
    )
}

/// Starts the daemon with `--config file` and waits for `/healthz` to answer 200.
fn start_with_config(site: &Site, env: &[(String, String)], file: &Path) -> Daemon {
    let d = Daemon::spawn_with(site.tmp.path(), env, |cmd| {
        cmd.arg("--config").arg(file);
    });
    wait_for("healthy", WAIT, || {
        get(&format!("{}/healthz", d.base())).is_ok_and(|r| r.status == 200)
    });
    d
}

fn names(r: &Reply) -> Vec<String> {
    r.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_credential_limited_to_one_folder_gets_403_elsewhere_and_sees_only_its_folder() {
    let site = Site::new();
    let docs = Site::new();
    let hash = |pw: &str| {
        bcrypt::hash_with_result(pw, 5)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY)
    };
    let htpasswd = site.tmp.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\nbob:{}\n", hash(PASSWORD), hash(PASSWORD)),
    )
    .unwrap();
    let keys = site.tmp.path().join("api-keys");
    std::fs::write(&keys, format!("team-docs:{DOCS_KEY}\n{ANY_KEY}\n")).unwrap();
    let file = site.tmp.path().join("filetrigger.toml");
    std::fs::write(
        &file,
        format!(
            "[auth]\nbasic_file = {:?}\napi_key_file = {:?}\n[auth.folders]\nbob = [\"docs\"]\nteam-docs = [\"docs\"]\n",
            htpasswd.display().to_string(),
            keys.display().to_string()
        ),
    )
    .unwrap();
    let env = two_folder_env(&site, &docs);
    let d = start_with_config(&site, &env, &file);
    let agent = agent();
    let call = |path: &str, header: (&str, &str)| {
        send(&agent, "GET", &format!("{}{path}", d.base()), &[header]).unwrap()
    };
    let alice = basic("alice");
    let bob = basic("bob");
    let unlimited = [("Authorization", alice.as_str()), ("X-API-Key", ANY_KEY)];
    let limited = [("Authorization", bob.as_str()), ("X-API-Key", DOCS_KEY)];

    for who in unlimited {
        let r = call("/watches", who);
        assert_eq!(r.status, 200, "{who:?}: {r:?}");
        assert_eq!(names(&r), vec!["default", "docs"], "{who:?}");
        assert_eq!(call("/trigger", who).status, 202, "{who:?}");
        assert_eq!(call("/watches/docs/trigger", who).status, 202, "{who:?}");
        let doc: Value = call("/openapi.json", who).json();
        assert_eq!(doc["parameters"]["folder"]["default"], "default", "{who:?}");
    }
    for who in limited {
        let r = call("/watches", who);
        assert_eq!(r.status, 200, "{who:?}: {r:?}");
        assert_eq!(names(&r), vec!["docs"], "{who:?}");
        assert_eq!(
            r.json()["value"][0],
            serde_json::json!({"name": "docs", "recursive": true})
        );
        for path in ["/trigger", "/watches/default/trigger"] {
            let r = call(path, who);
            assert_eq!(r.status, 403, "{who:?} {path}: {r:?}");
            let body: Value = r.json();
            assert_eq!(body["error"]["code"], "folder_forbidden", "{body}");
        }
        assert_eq!(call("/watches/docs/trigger", who).status, 202, "{who:?}");
        // The served definition does not preselect a folder it may not use.
        let doc: Value = call("/openapi.json", who).json();
        assert!(
            doc["parameters"]["folder"]["default"].is_null(),
            "{who:?}: {}",
            doc["parameters"]["folder"]
        );
        // An unknown folder is unknown to everyone.
        let r = call("/watches/nope/trigger", who);
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(r.json()["error"]["code"], "unknown_folder");
    }
    // Authentication still comes first.
    let r = get(&format!("{}/watches", d.base())).unwrap();
    assert_eq!(r.status, 401, "{r:?}");
    let r = get(&format!("{}/watches/docs/trigger", d.base())).unwrap();
    assert_eq!(r.status, 401, "{r:?}");
    let r = send(
        &agent,
        "POST",
        &format!("{}/watches", d.base()),
        &unlimited[..1],
    )
    .unwrap();
    assert_eq!(r.status, 405, "{r:?}");
}

// An index written by the previous release (tests/index_compat.rs has the fixture's story).
const OLD: [(&str, &[u8], &str); 3] = [
    ("a.txt", b"first\n", "2026-12-03T15:07:27.198537890Z"),
    ("sub/b.csv", b"x,y\n1,2\n", "2026-12-03T15:07:27.198727512Z"),
    (
        "sub/deeper/c.pdf",
        b"%PDF-1.7 third\n",
        "2026-12-03T15:07:27.198756475Z",
    ),
];
const OLD_MTIME_NS: u64 = 1_767_323_045_123_456_789;
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/index-fc17110.redb"
);
type OfferValue = (&'static [u8], u64, i64, u64);
type FileValue = (u64, i64, u64, i64);
const OFFERS: redb::TableDefinition<i64, OfferValue> = redb::TableDefinition::new("offers");
const FILES: redb::TableDefinition<&[u8], FileValue> = redb::TableDefinition::new("files");

/// Points the inodes the fixture recorded at the recreated files (as index_compat does).
fn point_inodes_at(store: &Path, inbox: &Path) {
    let db = redb::Database::open(store).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut files = txn.open_table(FILES).unwrap();
        let mut offers = txn.open_table(OFFERS).unwrap();
        for (rel, _, stamp) in OLD {
            let ino = std::fs::metadata(inbox.join(rel)).unwrap().ino();
            let stamp = Stamp::parse(stamp).unwrap().0;
            let (size, mtime, _, _) = files.get(rel.as_bytes()).unwrap().unwrap().value();
            offers
                .insert(stamp, (rel.as_bytes(), size, mtime, ino))
                .unwrap();
            files
                .insert(rel.as_bytes(), (size, mtime, ino, stamp))
                .unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn an_index_of_the_previous_release_opens_with_a_named_folder_added() {
    let site = Site::new();
    let docs = Site::new();
    let mtime = SystemTime::UNIX_EPOCH + Duration::from_nanos(OLD_MTIME_NS);
    for (rel, data, _) in OLD {
        set_mtime(&write_direct(&site.inbox, rel, data), mtime);
    }
    // Already in the new folder's directory before the start: indexed by its start-up scan.
    write_direct(&docs.inbox, "waiting.txt", b"before the start");
    std::fs::create_dir_all(&site.state).unwrap();
    let store = site.state.join("index.redb");
    std::fs::copy(FIXTURE, &store).unwrap();
    point_inodes_at(&store, &site.inbox);

    let d = Daemon::start(site.tmp.path(), &two_folder_env(&site, &docs));
    let health = d.health();
    assert_eq!(health["folders"]["default"]["filesIndexed"], 3, "{health}");
    // Found by the start-up scan, indexed once it has settled.
    wait_for("the new folder's file indexed", WAIT, || {
        d.health()["folders"]["docs"]["filesIndexed"] == 1
    });
    // The default folder keeps its position: a workflow that had seen all three gets
    // only what is new in default, never the new folder's files.
    let mut seen_all = Poller::at(format!("{}?triggerState={}", d.trigger_url(), OLD[2].2));
    site.put("new.txt", b"after the upgrade");
    seen_all.drain(1, WAIT);
    assert_eq!(seen_all.paths(), vec!["new.txt"]);
    seen_all.expect_nothing_more(&site, quiet(SETTLE));
    // The old files keep their stamps.
    let mut r = Poller::at(format!(
        "{}?triggerState=2026-12-03T15:07:27Z",
        d.trigger_url()
    ));
    r.drain(4, WAIT);
    assert_eq!(
        r.paths(),
        vec!["a.txt", "sub/b.csv", "sub/deeper/c.pdf", "new.txt"]
    );
    for (g, (_, _, stamp)) in r.got.iter().zip(OLD) {
        assert_eq!(g.indexed_at, stamp);
    }
    // The new folder: its file, stamped after everything the old index held.
    let mut p = Poller::at(format!(
        "{}?triggerState=2000-01-01T00:00:00Z",
        folder_trigger(&d, "docs")
    ));
    p.drain(1, WAIT);
    assert_eq!(p.paths(), vec!["waiting.txt"]);
    assert!(
        Stamp::parse(&p.got[0].indexed_at).unwrap() > Stamp::parse(OLD[2].2).unwrap(),
        "{}",
        p.got[0].indexed_at
    );
    p.expect_nothing_more(&docs, quiet(SETTLE));
}

/// Runs `filetrigger --config FILE` (serve) to its exit.
fn serve_with(site: &Site, toml: &str) -> Output {
    let file = site.tmp.path().join("bad.toml");
    std::fs::write(&file, toml).unwrap();
    let mut env = site.env(SETTLE);
    env.retain(|(k, _)| k != "FILETRIGGER__WATCH__DIR");
    run_to_exit(site.tmp.path(), &["--config", file.to_str().unwrap()], &env)
}

#[test]
fn bad_folder_settings_stop_the_start_naming_the_key() {
    let site = Site::new();
    let inbox = site.inbox.display().to_string();
    let elsewhere: PathBuf = site.tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let link = site.tmp.path().join("link-to-inbox");
    std::os::unix::fs::symlink(&site.inbox, &link).unwrap();
    let cases = [
        (
            format!("[watch]\ndir = {inbox:?}\n[folders.Bad]\ndir = \"x\"\n"),
            "folders.Bad",
            2,
        ),
        (
            format!("[watch]\ndir = {inbox:?}\n[folders.sub]\ndir = \"{inbox}/sub\"\n"),
            "folders.sub.dir",
            2,
        ),
        (
            format!(
                "[watch]\ndir = {:?}\n[folders.up]\ndir = {inbox:?}\n",
                format!("{inbox}/below")
            ),
            "folders.up.dir",
            2,
        ),
        (
            format!("[watch]\ndir = {inbox:?}\n[folders.nodir]\nrecursive = false\n"),
            "folders.nodir.dir",
            2,
        ),
        (
            format!(
                "[watch]\ndir = {:?}\n[folders.alias]\ndir = {:?}\n[folders.real]\ndir = {inbox:?}\n",
                elsewhere.display().to_string(),
                link.display().to_string()
            ),
            "folders.real.dir",
            2,
        ),
    ];
    for (toml, key, code) in cases {
        let out = serve_with(&site, &toml);
        assert_eq!(out.status.code(), Some(code), "{toml}: {}", out.stderr);
        assert!(out.stderr.contains(key), "{toml}: {}", out.stderr);
    }
}

/// `filetrigger check` with `env`: (exit code, stdout).
fn check(site: &Site, env: &[(String, String)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .arg("check")
        .current_dir(site.tmp.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_reports_every_folder_and_a_symlinked_overlap() {
    let site = Site::new();
    let docs = Site::new();
    let mut env = two_folder_env(&site, &docs);
    env.push((
        "FILETRIGGER__FOLDERS__LATER__DIR".into(),
        site.tmp.path().join("later").display().to_string(),
    ));
    let (code, out) = check(&site, &env);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("3 folders: default "), "{out}");
    assert!(
        out.contains(&format!("docs {}", docs.inbox.display())),
        "{out}"
    );
    assert!(
        out.contains("note: folders.later.dir:") && out.contains("does not exist yet"),
        "{out}"
    );
    // A second name for the default folder's tree, through a symlink.
    let link = site.tmp.path().join("alias");
    std::os::unix::fs::symlink(&site.inbox, &link).unwrap();
    env.push((
        "FILETRIGGER__FOLDERS__ALIAS__DIR".into(),
        link.display().to_string(),
    ));
    let (code, out) = check(&site, &env);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("folders.alias.dir") && out.contains("is the same directory as watch.dir"),
        "{out}"
    );
}
