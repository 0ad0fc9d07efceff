//! End to end: `nfv demo` shows hosts pinging through the switch and cleans up.

mod common;

use std::process::Command;

use common::{lab_available, netns_list, NFV};

#[test]
fn the_demo_pings_every_pair_and_leaves_nothing_behind() {
    if !lab_available(&["ping"]) {
        return;
    }
    let out = Command::new(NFV)
        .arg("demo")
        .output()
        .expect("run nfv demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("nfv demo: OK"), "{stdout}");
    assert_eq!(stdout.matches("3/3 replies").count(), 6, "{stdout}");
    assert!(netns_list().iter().all(|n| !n.starts_with("nfv-demo-")));
}
