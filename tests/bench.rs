//! `nfv bench` runs every built-in scenario and its packet accounting balances. Not a
//! performance test: no rate is asserted, only that packets flowed and every one is counted.

mod common;

use std::process::Command;

use common::NFV;

fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(NFV)
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run nfv bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nfv bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Scenarios whose traffic comes from DPDK testpmd (a peer outside nfv) rather than
/// generator ports: no latency stamps, and they need testpmd.
const PEER_SCENARIOS: &[&str] = &["vhost"];

fn check_runs(v: &serde_json::Value, expect_runs: usize) {
    let peer = v["scenario"]
        .as_str()
        .is_some_and(|s| PEER_SCENARIOS.contains(&s));
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), expect_runs, "{v}");
    for r in runs {
        assert_eq!(r["balanced"], true, "{r}");
        assert_eq!(r["packets_in"], r["packets_out"], "{r}");
        let generated = r["generated"].as_u64().expect("generated");
        let sunk = r["sunk"].as_u64().expect("sunk");
        let drops: u64 = r["drops"]
            .as_object()
            .expect("drops")
            .values()
            .filter_map(|n| n.as_u64())
            .sum();
        assert!(generated > 0 && sunk > 0, "{r}");
        // Offered = forwarded + dropped: the generator's frames all reach the sink or a
        // counted drop (the sink's one announce frame goes the other way). A router adds
        // frames of its own on the sink's side: the gratuitous ARP of its IPv4 address, or
        // the unsolicited neighbour advertisements of its IPv6 ones (link-local and global).
        assert!(
            (generated..=generated + 2).contains(&(sunk + drops)),
            "generated {generated}, sunk {sunk}, drops {drops}: {r}"
        );
        assert!(r["forwarded_mpps"].as_f64().is_some_and(|m| m > 0.0), "{r}");
        if peer {
            // A closed loop through a switch: whatever nfv received it sent back or dropped.
            assert_eq!(generated, sunk + drops, "{r}");
        } else {
            // The sinks saw stamped frames: a latency was recorded (not an empty histogram).
            assert!(
                r["latency_ns"]["p99"].as_u64().is_some_and(|p| p > 0),
                "{r}"
            );
        }
    }
}

#[test]
fn every_scenario_runs_and_its_counts_add_up() {
    let list = Command::new(NFV)
        .args(["bench", "--list"])
        .output()
        .expect("list");
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    for expected in [
        "switch",
        "switch-scale",
        "router",
        "router-1m",
        "router6",
        "router6-full",
        "gateway",
        "gateway-1m",
        "vhost",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    for name in names {
        if PEER_SCENARIOS.contains(&name.as_str()) && !common::testpmd::testpmd_available() {
            continue;
        }
        let v = bench_json(&[&name, "--duration", "1", "--warmup", "0.3"]);
        check_runs(&v, if name == "switch-scale" { 3 } else { 1 });
    }
}

#[test]
fn a_rate_limited_generator_offers_about_its_rate() {
    let v = bench_json(&[
        "switch",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--rate",
        "100000",
    ]);
    check_runs(&v, 1);
    let offered = v["runs"][0]["offered_mpps"].as_f64().expect("offered");
    // Loose bounds: this checks the rate limiter works at all, not the machine's speed.
    assert!(
        (0.05..0.15).contains(&offered),
        "offered {offered} Mpps at a 0.1 Mpps rate"
    );
}

#[test]
fn a_topology_file_can_be_benchmarked() {
    let v = bench_json(&[
        common::repo()
            .join("topologies/bench-switch.yaml")
            .to_str()
            .expect("path"),
        "--duration",
        "0.5",
        "--warmup",
        "0.1",
    ]);
    check_runs(&v, 1);
    let bad = Command::new(NFV)
        .args(["bench", "no-such-scenario"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither a topology file nor a scenario"));
}
