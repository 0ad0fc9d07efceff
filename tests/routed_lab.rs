//! End to end: two LAN segments joined by nfv's router, each with nfv's DHCP server; the
//! hosts run a real DHCP client (busybox udhcpc), take leases, and reach each other and
//! the router. A pool of two leaves a third client without a lease.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{drop_count, lab_available, Lab};

/// Keep the lease files in the test's directory.
fn leases_in_test_dir(text: String, dir: &std::path::Path) -> String {
    text.replace(
        "    lease: 10m\n",
        &format!("    lease: 10m\n    leases: {}/LEASES\n", dir.display()),
    )
    .replacen("LEASES", "dhcp1.leases", 1)
    .replacen("LEASES", "dhcp2.leases", 1)
}

#[test]
fn hosts_on_two_segments_take_leases_and_reach_each_other_through_the_router() {
    if !lab_available(&["ping", "busybox"]) {
        return;
    }
    let lab = Lab::start_edited("routed-lab.yaml", "routed", leases_in_test_dir);
    let mut addrs = Vec::new();
    for (host, subnet) in [
        ("a1", "192.168.1."),
        ("a2", "192.168.1."),
        ("b1", "192.168.2."),
        ("b2", "192.168.2."),
    ] {
        addrs.push((host, lab.lease_in(host, subnet, String::new)));
    }
    let distinct: HashSet<_> = addrs.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(distinct.len(), 4, "{addrs:?}");

    for (from, _) in &addrs {
        for (to, addr) in &addrs {
            if from != to {
                assert_eq!(lab.ping(from, addr, 2), (2, 2), "{from} -> {to} ({addr})");
            }
        }
        for router in ["192.168.1.1", "192.168.2.1"] {
            assert_eq!(
                lab.ping(from, router, 1),
                (1, 1),
                "{from} -> router {router}"
            );
        }
    }
    // Across the router, TTL 64 arrives as 63.
    let out = lab.exec("a1", "ping", &["-n", "-c", "1", &addrs[2].1]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ttl=63"));

    // The servers wrote their leases.
    let one = std::fs::read_to_string(lab.dir.path().join("dhcp1.leases")).expect("lease file");
    for (host, addr) in &addrs[..2] {
        assert!(
            one.lines()
                .any(|l| l.starts_with(&format!("{addr} ")) && l.ends_with(host)),
            "{host} {addr} not in:\n{one}"
        );
    }
    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

#[test]
fn a_pool_of_two_leaves_the_third_client_without_a_lease_and_counts_it() {
    if !lab_available(&["ping", "busybox"]) {
        return;
    }
    let lab = Lab::start_edited("routed-lab.yaml", "pool2", |text, dir| {
        leases_in_test_dir(text, dir)
            .replace("192.168.1.100-192.168.1.199", "192.168.1.100-192.168.1.101")
            // The second segment's clients move to the first: a1, a2 and b1 share its pool.
            .replace(
                "  b1p: { kind: tap, host: b1 }",
                "  b1p: { kind: tap, host: b1 }\n  b3p: { kind: tap, host: b3 }",
            )
            .replace("  - [b1p, lan2]", "  - [b1p, lan1]\n  - [b3p, lan2]")
            .replace("  b2: {}", "  b2: {}\n  b3: {}")
    });
    let got: Vec<Option<String>> = ["a1", "a2", "b1"]
        .iter()
        .map(|h| lab.wait_address(h, Duration::from_secs(8)))
        .collect();
    let leased: Vec<&String> = got.iter().flatten().collect();
    assert_eq!(
        leased.len(),
        2,
        "exactly two leases from a pool of two: {got:?}"
    );
    let set: HashSet<&String> = leased.iter().copied().collect();
    assert_eq!(
        set,
        HashSet::from([&"192.168.1.100".to_string(), &"192.168.1.101".to_string()])
    );
    // The other segment is unaffected.
    assert!(lab.wait_address("b2", Duration::from_secs(10)).is_some());
    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    assert!(
        drop_count(&summary, "pool_exhausted") >= 1,
        "the third client's DISCOVERs are counted: {summary}"
    );
}
