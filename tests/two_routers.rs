//! End to end: two nfv routers in a row between two hosts in namespaces. `traceroute`
//! lists each router, and an address no router has a route to gets ICMP destination
//! unreachable from the first router.

mod common;

use common::{drop_count, lab_available, Lab};

#[test]
fn traceroute_lists_both_routers_and_no_route_is_unreachable() {
    if !lab_available(&["ping", "traceroute"]) {
        return;
    }
    let lab = Lab::start("two-routers.yaml", "two-routers");

    let (sent, got) = lab.ping("h1", "192.168.2.10", 3);
    assert_eq!((sent, got), (3, 3), "h1 -> h2 across both routers");
    // Each router answers for both of its addresses, from either side.
    for addr in ["192.168.1.1", "10.255.0.1", "10.255.0.2", "192.168.2.1"] {
        assert_eq!(
            lab.ping("h1", addr, 1),
            (1, 1),
            "h1 -> router address {addr}"
        );
    }

    // UDP probes (traceroute's default), one per hop, numeric.
    let out = lab.exec(
        "h1",
        "traceroute",
        &["-n", "-q", "1", "-w", "2", "-m", "5", "192.168.2.10"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "traceroute failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hops: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        hops,
        vec!["192.168.1.1", "10.255.0.2", "192.168.2.10"],
        "traceroute output:\n{text}"
    );

    // r1 has no default route: ping gets "Destination Net Unreachable" from r1's address.
    let out = lab.exec("h1", "ping", &["-n", "-c", "1", "-W", "2", "198.51.100.1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("From 192.168.1.1") && text.contains("Destination Net Unreachable"),
        "ping output:\n{text}"
    );

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    assert!(drop_count(&summary, "no_route") >= 1, "{summary}");
    // traceroute's first probes: TTL 1 at r1, TTL 2 at r2.
    assert!(drop_count(&summary, "ttl_exceeded") >= 2, "{summary}");
}
