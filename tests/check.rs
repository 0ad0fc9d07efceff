//! `nfv check`: every shipped topology passes; every broken one fails with file, line and
//! key. Needs no root.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{repo, NFV};

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_topology_checks_and_prints_its_graph() {
    let files = yaml_files("topologies");
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        let out = Command::new(NFV)
            .arg("check")
            .arg(&f)
            .output()
            .expect("run nfv check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}{}",
            f.display(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        for part in ["ports:", "functions:", "wires:", ": OK"] {
            assert!(
                stdout.contains(part),
                "{}: no {part:?} in\n{stdout}",
                f.display()
            );
        }
    }
}

/// `# expect: line=N key=PATH contains=TEXT` from the first line of a fixture.
fn expectation(text: &str) -> (usize, String, String) {
    let first = text.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix("# expect:")
        .unwrap_or_else(|| panic!("fixture must start with `# expect:`: {first}"));
    let mut line = 0;
    let mut key = String::new();
    let mut contains = String::new();
    let mut field = "";
    for word in rest.split_whitespace() {
        if let Some(v) = word.strip_prefix("line=") {
            line = v.parse().expect("line number");
            field = "";
        } else if let Some(v) = word.strip_prefix("key=") {
            key = v.to_string();
            field = "";
        } else if let Some(v) = word.strip_prefix("contains=") {
            contains = v.to_string();
            field = "contains";
        } else if field == "contains" {
            contains.push(' ');
            contains.push_str(word);
        }
    }
    (line, key, contains)
}

#[test]
fn broken_topologies_fail_with_file_line_and_key() {
    let files = yaml_files("tests/bad-topologies");
    assert!(
        files.len() >= 10,
        "need at least ten broken files, have {}",
        files.len()
    );
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read fixture");
        let (line, key, contains) = expectation(&text);
        let out = Command::new(NFV)
            .arg("check")
            .arg(&f)
            .output()
            .expect("run nfv check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} passed nfv check", f.display());
        assert!(
            out.stdout.is_empty(),
            "{}: printed a graph for a broken file",
            f.display()
        );
        let at = format!("{}:{line}", f.display());
        let hit = stderr
            .lines()
            .find(|l| l.starts_with(&at) && l.contains(&key));
        let hit = hit.unwrap_or_else(|| {
            panic!(
                "{}: no error at line {line} for key {key:?}:\n{stderr}",
                f.display()
            )
        });
        assert!(
            hit.contains(&contains),
            "{}: {hit:?} lacks {contains:?}",
            f.display()
        );
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(NFV)
        .args(["check", "/nonexistent/topo.yaml"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/topo.yaml"));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["run", "--help"],
        &["demo", "--help"],
    ] {
        let out = Command::new(NFV).args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}
