//! End to end: namespaces left by a killed `nfv run` are found and removed by the next run.

mod common;

use common::{lab_available, topology_copy, unique_name, Lab, TempDir};

#[test]
fn a_killed_runs_namespaces_are_removed_by_the_next_run() {
    if !lab_available(&["ping"]) {
        return;
    }
    let dir = TempDir::new("leftovers");
    let name = unique_name("leftover");
    let path = topology_copy("switch-lab.yaml", &name, dir.path());
    let lab = Lab::start_path(&path, name.clone(), TempDir::new("leftovers-a"));
    assert_eq!(lab.namespaces_left().len(), 4);
    // A process inside a namespace, as a user's test would leave one.
    let mut sleeper = lab.spawn("h1", "sleep", &["300"]);
    let killed = lab.pid;
    assert_eq!(common::veth_ends(killed).len(), 4, "one veth pair per host");
    lab.kill();
    let left: Vec<_> = common::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("nfv-{name}-")))
        .collect();
    assert_eq!(left.len(), 4, "the killed run left its namespaces");

    let lab = Lab::start_path(&path, name.clone(), TempDir::new("leftovers-b"));
    assert!(
        lab.stderr().contains("leftover"),
        "the second run should report the leftovers: {}",
        lab.stderr()
    );
    assert_eq!(lab.ping("h1", "10.10.0.4", 2), (2, 2));
    // A pair goes with its host's end, which went with the leftover namespace.
    let left = common::veth_ends(killed);
    assert!(left.is_empty(), "the killed run's veth pairs: {left:?}");
    let status = sleeper.wait().expect("wait for sleeper");
    assert!(
        !status.success(),
        "the process in the leftover namespace was killed"
    );
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    assert!(common::netns_list()
        .iter()
        .all(|n| !n.starts_with(&format!("nfv-{name}-"))));
}

/// `nfv run ... | head -2`: the reader goes away after two lines. nfv must neither panic nor
/// skip its cleanup when it next prints (its summary at the end), and exits 0 on SIGTERM.
#[test]
fn a_closed_stdout_stops_nothing_and_skips_no_cleanup() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    if !lab_available(&["ping"]) {
        return;
    }
    let dir = TempDir::new("headpipe");
    let name = unique_name("headpipe");
    let path = topology_copy("switch-lab.yaml", &name, dir.path());
    let mut child = Command::new(common::NFV)
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nfv run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    // Up to the line that says it runs, then the reader goes (as `head` does).
    for l in lines.by_ref().map_while(Result::ok) {
        seen.push(l);
        if seen.last().is_some_and(|l| l.contains("running; Ctrl-C")) {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("running; Ctrl-C")),
        "nfv did not start: {seen:?}"
    );
    drop(lines);
    let ns = |n: &str| n.starts_with(&format!("nfv-{name}-"));
    assert_eq!(common::netns_list().iter().filter(|n| ns(n)).count(), 4);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("nfv did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(
        status.success(),
        "nfv failed with its stdout closed: {status}\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        common::netns_list().iter().all(|n| !ns(n)),
        "namespaces left behind"
    );
}
