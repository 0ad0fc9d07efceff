//! End to end: one nfv DHCP server for two routed segments. Hosts on two LANs run a real
//! DHCP client (busybox udhcpc); nfv's router relays their DHCP (`dhcp_relay`) to the
//! server on a third segment, which leases each host an address from its own segment's
//! pool (chosen by the relay's giaddr) with that segment's default route. The hosts then
//! ping across the router, and a renewal (a unicast REQUEST from the client straight to
//! the server, answered through the server's gateway) keeps the address.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{drop_count, lab_available, show_json, Lab};

/// Keep the lease file in the test's directory.
fn leases_in_test_dir(text: String, dir: &std::path::Path) -> String {
    text.replace(
        "    lease: 10m\n",
        &format!(
            "    lease: 10m\n    leases: {}/dhcp.leases\n",
            dir.display()
        ),
    )
}

/// The udhcpc log nfv keeps for `host`'s eth0.
fn dhcp_log(lab: &Lab, host: &str) -> String {
    std::fs::read_to_string(format!("/run/nfv/{}.eth0.dhcp.log", lab.netns(host)))
        .unwrap_or_default()
}

fn count(text: &str, what: &str) -> usize {
    text.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn hosts_behind_a_relaying_router_take_leases_from_one_server_and_renew_them() {
    if !lab_available(&["ping", "busybox"]) {
        return;
    }
    let lab = Lab::start_edited("relay-lab.yaml", "relay", leases_in_test_dir);
    let mut addrs = Vec::new();
    for (host, subnet) in [
        ("a1", "192.168.1."),
        ("a2", "192.168.1."),
        ("b1", "192.168.2."),
    ] {
        let a = lab.lease_in(host, subnet, || {
            format!("udhcpc:\n{}", dhcp_log(&lab, host))
        });
        addrs.push((host, a));
    }
    assert_ne!(addrs[0].1, addrs[1].1);

    // Across the router: host to host, and to the server on its own segment.
    assert_eq!(lab.ping("a1", &addrs[2].1, 2), (2, 2), "a1 -> b1");
    assert_eq!(lab.ping("b1", &addrs[1].1, 2), (2, 2), "b1 -> a2");
    assert_eq!(lab.ping("a2", "10.0.9.2", 1), (1, 1), "a2 -> the server");

    // The router shows its relays and counts what it relayed.
    let ifs = show_json(&lab, "interfaces");
    let relays: Vec<String> = ifs
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["dhcp_relay"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(relays, ["10.0.9.2", "10.0.9.2", "-"], "{ifs}");

    // Renewal: SIGUSR1 makes udhcpc send a unicast REQUEST to the server identifier.
    let host = "a1";
    let before = count(&dhcp_log(&lab, host), "nfv-udhcpc: renew");
    let pids = Command::new("ip")
        .args(["netns", "pids", &lab.netns(host)])
        .output()
        .expect("ip netns pids");
    let pids = String::from_utf8_lossy(&pids.stdout).into_owned();
    assert!(!pids.trim().is_empty(), "udhcpc runs in {host}");
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-USR1", pid]).status();
    }
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let log = dhcp_log(&lab, host);
        if count(&log, "nfv-udhcpc: renew") > before {
            assert!(
                log.lines()
                    .rev()
                    .find(|l| l.contains("nfv-udhcpc: renew"))
                    .is_some_and(|l| l.contains(&format!(" {}/", addrs[0].1))),
                "renewed with the same address: {log}"
            );
            break;
        }
        assert!(Instant::now() < end, "no renewal within 15 s:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        lab.wait_address(host, Duration::from_secs(1)).as_deref(),
        Some(addrs[0].1.as_str())
    );

    // One lease file, the three hosts in it (written at most once a second).
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let leases =
            std::fs::read_to_string(lab.dir.path().join("dhcp.leases")).unwrap_or_default();
        let missing: Vec<_> = addrs
            .iter()
            .filter(|(host, addr)| {
                !leases
                    .lines()
                    .any(|l| l.starts_with(&format!("{addr} ")) && l.ends_with(host))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "{missing:?} not in the lease file:\n{leases}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    assert_eq!(drop_count(&summary, "no_subnet"), 0, "{summary}");
    assert_eq!(drop_count(&summary, "relay_hops"), 0, "{summary}");
}
