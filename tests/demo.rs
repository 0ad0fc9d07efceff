//! End to end: `nfv demo` runs the home gateway: DHCP leases, pings across the LAN and
//! through the NAT, pages through the gateway, the port forward, the firewall; and it
//! cleans up.

mod common;

use std::process::Command;

use common::{lab_available, netns_list, NFV};

#[test]
fn the_demo_runs_the_home_gateway_and_leaves_nothing_behind() {
    if !lab_available(&["ping", "busybox"]) {
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
    assert_eq!(stdout.matches("3/3 replies").count(), 5, "{stdout}");
    for line in [
        "web sees you as 203.0.113.2",
        "nas sees you as 198.51.100.20",
        "(hairpin NAT): nas sees you as 203.0.113.2",
        "dropped by the firewall",
        "Connection refused",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(netns_list().iter().all(|n| !n.starts_with("nfv-demo-")));
}
