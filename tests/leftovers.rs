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
