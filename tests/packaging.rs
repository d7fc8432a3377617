//! The files an administrator installs: the hardened systemd units and the shipped
//! configuration, the completions and manual pages generated from the clap definition, and
//! what the .deb installs (lintian itself runs in .ci/run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// The overall exposure rating `systemd-analyze security --offline=yes` gives a unit.
fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .expect("systemd-analyze is needed for this test (apt-get install systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no rating for {}:\n{text}\n{}",
                unit.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let after = line.split(':').nth(1).unwrap().trim();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn the_units_rate_2_0_or_better() {
    let runs = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        let line = "skipped packaging::the_units_rate_2_0_or_better: needs systemd-analyze (apt-get install systemd)";
        assert!(
            std::env::var_os("FILETRIGGER_REQUIRE_ROOT_TESTS").is_none(),
            "{line} (FILETRIGGER_REQUIRE_ROOT_TESTS is set, so skipping is a failure)"
        );
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{line}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/filetrigger.service");
    // A template is rated as an instance.
    let instance = dir.path().join("filetrigger@invoices.service");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/filetrigger@.service"),
        &instance,
    )
    .unwrap();
    for unit in [main.as_path(), instance.as_path()] {
        let rating = exposure(unit);
        assert!(rating <= 2.0, "{} rates {rating}", unit.display());
    }
}

#[test]
fn the_template_differs_from_the_unit_only_in_its_instance_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let settings = |p: &str| -> Vec<String> {
        std::fs::read_to_string(root.join(p))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                l.replace("%i", "NAME")
                    .replace("/NAME.toml", "/filetrigger.toml")
            })
            .map(|l| {
                l.replace("filetrigger/NAME", "filetrigger")
                    .replace("filetrigger NAME", "filetrigger")
            })
            .collect()
    };
    assert_eq!(
        settings("systemd/filetrigger@.service"),
        settings("systemd/filetrigger.service")
    );
    let unit = std::fs::read_to_string(root.join("systemd/filetrigger.service")).unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "DynamicUser=yes",
        "StateDirectory=filetrigger",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        // The one capability: the writer probe (issue 10, README "The contract in brief").
        "CapabilityBoundingSet=CAP_LEASE\n",
        "AmbientCapabilities=CAP_LEASE\n",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=",
        "UMask=0077",
        "LoadCredential=",
        "Restart=on-failure",
        "ExecStart=/usr/bin/filetrigger --config /etc/filetrigger/filetrigger.toml",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed:?}");
    }
}

#[test]
fn the_shipped_configuration_loads_and_names_no_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("config/filetrigger.toml");
    let s = filetrigger::config::load(Some(&path), Vec::new()).unwrap();
    assert_eq!(s.watch.dir, Path::new("/srv/filetrigger/in"));
    assert!(s.server.listen.ip().is_loopback());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.to_lowercase().contains("password ="));
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["completions", "man"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            out.push(format!(
                "{sub}/{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn the_committed_completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_filetrigger"))
        .arg("generate-assets")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let committed = root.join("config/packaging");
    assert_eq!(files_under(dir.path()), files_under(&committed));
    for f in files_under(dir.path()) {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&f)).unwrap(),
            std::fs::read_to_string(committed.join(&f)).unwrap(),
            "config/packaging/{f} is stale: run `cargo run -- generate-assets config/packaging`"
        );
    }
    let man = std::fs::read_to_string(committed.join("man/filetrigger.1")).unwrap();
    for word in ["check", "status", "poll", "\\-\\-config"] {
        assert!(man.contains(word), "the man page lacks {word}");
    }
    assert!(
        !man.contains("generate"),
        "the hidden command is documented"
    );
}

#[test]
fn the_deb_installs_the_completions_man_pages_and_changelog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for asset in [
        "\"config/packaging/man/*.1\", \"usr/share/man/man1/\"",
        "usr/share/bash-completion/completions/filetrigger",
        "usr/share/zsh/vendor-completions/_filetrigger",
        "usr/share/fish/vendor_completions.d/filetrigger.fish",
        "changelog = \"config/packaging/changelog\"",
    ] {
        assert!(manifest.contains(asset), "Cargo.toml lacks {asset}");
    }
    let Some(deb) = std::fs::read_dir(root.join("target/debian"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
    else {
        // Built by `cargo deb` (.ci/run builds it, then runs lintian on it).
        return;
    };
    let Ok(out) = Command::new("dpkg-deb").arg("-c").arg(&deb).output() else {
        return;
    };
    let listing = String::from_utf8_lossy(&out.stdout);
    for path in [
        "./usr/share/man/man1/filetrigger.1.gz",
        "./usr/share/man/man1/filetrigger-check.1.gz",
        "./usr/share/bash-completion/completions/filetrigger",
        "./usr/share/zsh/vendor-completions/_filetrigger",
        "./usr/share/fish/vendor_completions.d/filetrigger.fish",
        "./usr/share/doc/filetrigger/changelog.Debian.gz",
        "./usr/share/doc/filetrigger/copyright",
    ] {
        assert!(
            listing.contains(path),
            "{} lacks {path}:\n{listing}",
            deb.display()
        );
    }
}
