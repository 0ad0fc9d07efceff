//! End to end: VLANs on nfv's switches keep hosts of one subnet apart.

mod common;

use common::{lab_available, Lab};

#[test]
fn hosts_on_the_same_vlan_reach_each_other_across_a_trunk_and_other_vlans_do_not() {
    if !lab_available(&["ping"]) {
        return;
    }
    let lab = Lab::start("vlan-lab.yaml", "vlan-lab");
    assert_eq!(lab.ping("red1", "10.20.0.12", 3), (3, 3), "red1 -> red2");
    assert_eq!(lab.ping("red2", "10.20.0.11", 3), (3, 3), "red2 -> red1");
    assert_eq!(lab.ping("blue1", "10.20.0.22", 3), (3, 3), "blue1 -> blue2");
    assert_eq!(lab.ping("blue2", "10.20.0.21", 3), (3, 3), "blue2 -> blue1");
    for (from, to) in [
        ("red1", "10.20.0.21"),
        ("red1", "10.20.0.22"),
        ("blue2", "10.20.0.12"),
        ("blue1", "10.20.0.11"),
    ] {
        let (sent, got) = lab.ping(from, to, 2);
        assert_eq!((sent, got), (2, 0), "{from} must not reach {to}");
    }
    // Once red's ARP was answered and blue's failed, no address learned on one VLAN was
    // ever used on the other: the red hosts' neighbour tables hold no blue address.
    let neigh = lab.exec("red1", "ip", &["neigh", "show", "10.20.0.21"]);
    let text = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        !text.contains("lladdr"),
        "red1 resolved a blue host: {text}"
    );
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
}
