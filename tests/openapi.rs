//! The connector's OpenAPI definition (issue 11): the committed `connector/` definition is
//! what the binary generates; the served document validates as Swagger 2.0
//! (`openapi-spec-validator`); `schemathesis` runs every operation against a live daemon
//! with files and authentication and finds no server error and no undocumented answer;
//! every `Location`, `nextLink` and `contentLink` the daemon emits is a URL of a declared
//! operation.
//!
//! The two Python tools come from PyPI; `.ci/run` installs them (pinned) in a virtual
//! environment under `/opt/filetrigger-ci-venv`. Without them the checks that need them
//! skip with one line, unless `FILETRIGGER_REQUIRE_ROOT_TESTS` is set (CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use common::*;
use serde_json::Value;

const USER: &str = "alice";
const PASSWORD: &str = "open-sesame";
/// Where `.ci/run` installs the Python tools.
const VENV_BIN: &str = "/opt/filetrigger-ci-venv/bin";
/// The environment `connector/apiDefinition.swagger.json` is generated with (the README
/// of `connector/` gives the same command): the default configuration with Basic
/// authentication on.
const CONNECTOR_ENV: &[(&str, &str)] =
    &[("FILETRIGGER__AUTH__BASIC_FILE", "/etc/filetrigger/htpasswd")];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `Authorization` for the test user.
fn basic() -> String {
    let raw = format!("{USER}:{PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A site with an htpasswd file, a few files of different kinds already in place, and the
/// daemon started on it with them indexed.
fn secured() -> (Site, Daemon) {
    let site = Site::new();
    let hash = bcrypt::hash_with_result(PASSWORD, 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let htpasswd = site.tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let files: &[(&str, &[u8])] = &[
        ("a.txt", b"hello\n"),
        ("reports/2026/b.csv", b"x,y\n1,2\n"),
        ("empty.bin", b""),
        ("image.png", &[0x89, b'P', b'N', b'G', 0, 1, 2, 3]),
        ("with space/n\u{e4}me.json", b"{\"k\":1}"),
    ];
    for (rel, data) in files {
        site.put(rel, data);
    }
    let mut env = site.env(SETTLE);
    env.push((
        "FILETRIGGER__AUTH__BASIC_FILE".into(),
        htpasswd.display().to_string(),
    ));
    // Move and delete answer past their 403, so schemathesis reaches their other answers.
    env.push(("FILETRIGGER__ACTIONS__ALLOW_WRITE".into(), "true".into()));
    let d = Daemon::start(site.tmp.path(), &env);
    wait_for("the files to be indexed", WAIT, || {
        indexed(&d) >= files.len() as u64
    });
    (site, d)
}

/// A GET with the test user's credentials.
fn get_auth(url: &str) -> Reply {
    send(&agent(), "GET", url, &[("Authorization", &basic())]).unwrap()
}

/// The document the daemon serves.
fn served(d: &Daemon) -> Value {
    let r = get_auth(&format!("{}/openapi.json", d.base()));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// The program `name` from the CI virtual environment, else from `PATH`; `None` (after
/// one line saying what to install) when neither runs. Under `FILETRIGGER_REQUIRE_ROOT_TESTS`
/// a missing tool fails the test.
fn python_tool(name: &str, test: &str) -> Option<PathBuf> {
    let runs = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let venv = Path::new(VENV_BIN).join(name);
    if runs(&venv) {
        return Some(venv);
    }
    if runs(Path::new(name)) {
        return Some(PathBuf::from(name));
    }
    let line = format!(
        "skipped {test}: needs {name} (python3 -m venv {venv_dir} && {venv_dir}/bin/pip install \
         openapi-spec-validator==0.9.0 schemathesis==4.32.5, as .ci/run does)",
        venv_dir = Path::new(VENV_BIN).parent().unwrap().display()
    );
    assert!(
        std::env::var_os("FILETRIGGER_REQUIRE_ROOT_TESTS").is_none(),
        "{line} (FILETRIGGER_REQUIRE_ROOT_TESTS is set, so skipping is a failure)"
    );
    eprintln!("{line}");
    None
}

#[test]
fn the_committed_connector_definition_is_what_the_binary_generates() {
    let out = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .arg("openapi")
        .current_dir(std::env::temp_dir())
        .env_clear()
        .envs(CONNECTOR_ENV.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(repo().join("connector/apiDefinition.swagger.json")).unwrap();
    assert!(
        generated == committed,
        "connector/apiDefinition.swagger.json is not what the binary generates; regenerate it \
         (connector/README.md): FILETRIGGER__AUTH__BASIC_FILE=/etc/filetrigger/htpasswd \
         cargo run -- openapi > connector/apiDefinition.swagger.json"
    );
    // apiProperties.json asks for what the definition requires: Basic credentials.
    let doc: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(doc["security"], serde_json::json!([{"basic_auth": []}]));
    let props: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("connector/apiProperties.json")).unwrap(),
    )
    .unwrap();
    let params = &props["properties"]["connectionParameters"];
    assert!(params["username"].is_object() && params["password"].is_object());
    assert_eq!(params["authType"]["allowedValues"][0]["value"], "basic");
}

#[test]
fn openapi_takes_the_host_from_url_then_public_url_then_listen() {
    let run = |args: &[&str], env: &[(&str, &str)]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
            .arg("openapi")
            .args(args)
            .current_dir(std::env::temp_dir())
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let d = run(&["--url", "https://files.example/ft/"], &[]);
    assert_eq!(
        (d["host"].as_str(), d["basePath"].as_str()),
        (Some("files.example"), Some("/ft"))
    );
    assert_eq!(d["schemes"], serde_json::json!(["https"]));
    let public = [("FILETRIGGER__SERVER__PUBLIC_URL", "http://gw.example:81")];
    let d = run(&[], &public);
    assert_eq!(
        (d["host"].as_str(), d["basePath"].as_str()),
        (Some("gw.example:81"), Some("/"))
    );
    let d = run(&[], &[("FILETRIGGER__SERVER__LISTEN", "127.0.0.1:9123")]);
    assert_eq!(d["host"], "127.0.0.1:9123");
    assert_eq!(d["security"], serde_json::json!([]));
    // An API key alone: its header, no Basic.
    let d = run(
        &[],
        &[
            ("FILETRIGGER__AUTH__API_KEY_FILE", "/etc/filetrigger/keys"),
            ("FILETRIGGER__AUTH__API_KEY_HEADER", "X-Token"),
        ],
    );
    assert_eq!(d["security"], serde_json::json!([{"api_key": []}]));
    assert_eq!(d["securityDefinitions"]["api_key"]["name"], "X-Token");
    assert!(d["securityDefinitions"]["basic_auth"].is_null());
}

#[test]
fn openapi_into_a_closed_pipe_does_not_panic() {
    // `filetrigger openapi | head`: the reader is gone before the document is written.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .arg("openapi")
        .current_dir(std::env::temp_dir())
        .env_clear()
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn openapi_refuses_a_url_that_is_no_base_url() {
    // The same rules as server.public_url: the document's host and basePath come from
    // it, so a query, another scheme or credentials in it would make a broken (or
    // secret-bearing) definition.
    for bad in [
        "ftp://files.example",
        "https://files.example/ft?a=b",
        "https://user:secret@files.example/ft",
        "files.example",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
            .args(["openapi", "--url", bad])
            .current_dir(std::env::temp_dir())
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--url {bad}: {out:?}");
        assert!(out.stdout.is_empty(), "--url {bad}: {out:?}");
    }
}

#[test]
fn the_served_document_follows_the_configuration_and_validates_as_swagger_2() {
    let (site, d) = secured();
    // Behind the same authentication as every route.
    let r = get(&format!("{}/openapi.json", d.base())).unwrap();
    assert_eq!(r.status, 401);
    let doc = served(&d);
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["host"], d.addr.to_string());
    assert_eq!(doc["basePath"], "/");
    assert_eq!(doc["schemes"], serde_json::json!(["http"]));
    assert_eq!(doc["security"], serde_json::json!([{"basic_auth": []}]));
    assert_eq!(doc["securityDefinitions"]["basic_auth"]["type"], "basic");
    assert_eq!(doc["parameters"]["folder"]["default"], "default");
    assert_eq!(
        doc["parameters"]["folder"]["x-ms-dynamic-values"]["operationId"],
        "ListFolders"
    );
    // The host a client sees through a public URL.
    drop(d);
    let mut env = site.env(SETTLE);
    env.push((
        "FILETRIGGER__SERVER__PUBLIC_URL".into(),
        "https://gw.example:8443/files".into(),
    ));
    let d2 = Daemon::start(site.tmp.path(), &env);
    let r = get(&format!("{}/openapi.json", d2.base())).unwrap();
    assert_eq!(r.status, 200, "no auth configured this time");
    let doc2 = r.json();
    assert_eq!(doc2["host"], "gw.example:8443");
    assert_eq!(doc2["basePath"], "/files");
    assert_eq!(doc2["schemes"], serde_json::json!(["https"]));
    assert_eq!(doc2["security"], serde_json::json!([]));

    let Some(validator) = python_tool("openapi-spec-validator", "the Swagger 2.0 validation")
    else {
        return;
    };
    for (name, doc) in [("served.json", &doc), ("public.json", &doc2)] {
        let path = site.tmp.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
        let out = Command::new(&validator)
            .args(["--schema", "2.0"])
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("openapi-spec-validator {name}: {}", text.trim());
        assert!(out.status.success() && text.contains("OK"), "{text}");
    }
}

/// A custom check, registered through `SCHEMATHESIS_HOOKS`: `content_type_conformance`
/// for answers that have content. An answer without content (a `202` of the polling
/// pattern, a `304`) carries no `Content-Type` (RFC 9110 8.3: it describes content), but a
/// Swagger 2.0 `produces` applies to every answer of an operation, so the stock check
/// would ask one of it.
const HOOKS: &str = r#"
import schemathesis
from schemathesis.specs.openapi.checks import content_type_conformance as stock


@schemathesis.check
def content_type_conformance_with_content(ctx, response, case):
    if not response.content:
        return None
    return stock(ctx, response, case)
"#;

#[test]
fn schemathesis_runs_every_operation_without_server_errors_or_undocumented_answers() {
    let Some(st) = python_tool("schemathesis", "the schemathesis run") else {
        return;
    };
    let (site, d) = secured();
    let mut doc = served(&d);
    // Realistic values for the examples phase (the test's copy only: the served document
    // cannot know the files), so it reaches a real file besides the fuzzed 404s.
    let first = get_auth(&format!(
        "{}/trigger?triggerState=2000-01-01T00:00:00Z&content=none",
        d.base()
    ));
    assert_eq!(first.status, 200);
    let first = first.json();
    for (name, value) in [
        ("path", first["path"].clone()),
        ("version", first["indexedAt"].clone()),
    ] {
        doc["parameters"][name]["x-example"] = value;
    }
    let schema = site.tmp.path().join("openapi.json");
    std::fs::write(&schema, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let hooks = site.tmp.path().join("ft_hooks.py");
    std::fs::write(&hooks, HOOKS).unwrap();
    let out = Command::new(&st)
        .current_dir(site.tmp.path())
        .env("PYTHONPATH", site.tmp.path())
        .env("SCHEMATHESIS_HOOKS", "ft_hooks")
        .env("NO_COLOR", "1")
        .arg("run")
        .arg(&schema)
        .args(["--url", &d.base()])
        .args(["--auth", &format!("{USER}:{PASSWORD}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,\
             response_headers_conformance,content_type_conformance_with_content",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: with two, hypothesis's threads parse Python sources at the same time
        // and CPython 3.11's AST constructor, whose recursion bookkeeping is shared, fails
        // with "AST constructor recursion depth mismatch" (python/cpython#106905), which
        // schemathesis reports as a runtime error of whichever operation it was generating.
        .args(["--max-examples", "100", "--seed", "1", "--workers", "1"])
        .args(["--request-timeout", "20", "--no-shrink"])
        .args(["--suppress-health-check", "all"])
        .arg("--report-dir")
        .arg(site.tmp.path().join("report"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary, for the record (operations, cases, failures).
    let summary: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .filter(|l| {
            ["Selected:", "Tested:", "generated", "❌", "✅"]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect();
    eprintln!("schemathesis summary:\n{}", summary.join("\n"));
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
}

/// The operation a URL calls: the declared path template it matches (under `basePath`)
/// and the operation of `method` there; panics with the URL when there is none.
fn operation_of<'a>(doc: &'a Value, base: &str, method: &str, url: &str) -> &'a Value {
    let rest = url
        .strip_prefix(base)
        .unwrap_or_else(|| panic!("{url} is not under the daemon's base URL {base}"));
    let (path, _) = rest.split_once('?').unwrap_or((rest, ""));
    let base_path = doc["basePath"].as_str().unwrap().trim_end_matches('/');
    let path = path
        .strip_prefix(base_path)
        .unwrap_or_else(|| panic!("{url} is not under basePath"));
    for (template, item) in doc["paths"].as_object().unwrap() {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.split('/').collect();
        let matches = t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p);
        if matches {
            return item
                .get(method)
                .unwrap_or_else(|| panic!("{url}: {template} declares no {method}"));
        }
    }
    panic!("{url} matches no declared path");
}

/// The names of an operation's declared parameters (shared ones resolved).
fn parameter_names(doc: &Value, op: &Value) -> Vec<String> {
    op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| match p["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                doc["parameters"][name]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
            None => p["name"].as_str().unwrap().to_string(),
        })
        .collect()
}

#[test]
fn every_location_next_link_and_content_link_is_a_declared_operation() {
    let (_site, d) = secured();
    let doc = served(&d);
    let base = d.base();
    let old = "2000-01-01T00:00:00Z";
    // Every call that can emit a link, with the links followed a few steps.
    let starts = [
        "/trigger".to_string(),
        format!("/trigger?triggerState={old}"),
        "/watches/default/trigger".to_string(),
        format!("/watches/default/trigger?triggerState={old}&content=none"),
        "/watches/default/batch?maxFileCount=2".to_string(),
        format!("/watches/default/batch?triggerState={old}&maxFileCount=2&content=none"),
        "/watches/default/files?top=2".to_string(),
        "/watches/default/wait?glob=nothing-matches-this&timeout=60".to_string(),
    ];
    let mut links: Vec<String> = Vec::new();
    for start in &starts {
        let mut url = format!("{base}{start}");
        for _ in 0..6 {
            let r = get_auth(&url);
            assert!(r.status < 500, "{url}: {}", r.status);
            let mut found = Vec::new();
            if let Some(loc) = r.header("location") {
                found.push(loc.to_string());
            }
            if r.header("content-type") == Some("application/json") && !r.body.is_empty() {
                let body = r.json();
                if let Some(next) = body["nextLink"].as_str() {
                    found.push(next.to_string());
                }
                let items: Vec<&Value> = match &body {
                    Value::Array(a) => a.iter().collect(),
                    v => vec![v, &v["file"]],
                };
                for item in items {
                    if let Some(c) = item["contentLink"].as_str() {
                        found.push(c.to_string());
                    }
                }
            }
            links.extend(found.iter().cloned());
            // Follow Location, else nextLink.
            match found.first() {
                Some(next) if next.contains("triggerState=") || next.contains("after=") => {
                    url = next.clone()
                }
                Some(next) if next.contains("since=") => url = next.clone(),
                _ => break,
            }
        }
    }
    // Today's /trigger emits links on any branch: at least its first-call Location and
    // the Locations of the files.
    assert!(links.len() >= 4, "too few links: {links:?}");
    for link in &links {
        assert!(link.len() < 2048, "{link} is 2048 bytes or longer");
        let op = operation_of(&doc, &base, "get", link);
        let declared = parameter_names(&doc, op);
        let query = link.split_once('?').map(|(_, q)| q).unwrap_or("");
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let key = decode(pair.split_once('=').map(|(k, _)| k).unwrap_or(pair));
            assert!(
                declared.contains(&key),
                "{link}: parameter {key} is not declared by {}",
                op["operationId"]
            );
        }
    }
    eprintln!("{} links checked", links.len());
}
