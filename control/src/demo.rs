//! `nfv demo`: the built-in lab. Hosts in network namespaces on one learning switch ping
//! each other through the dataplane; the demo prints what it did and cleans up.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use crate::cli::{finish, stop_flag};
use crate::lab::exec_in;
use crate::run;
use crate::topology;

/// The demo topology, embedded in the binary (also `topologies/demo.yaml`).
pub const DEMO_TOPOLOGY: &str = include_str!("../../topologies/demo.yaml");

/// What one `ping` run reported.
#[derive(Clone, Debug, PartialEq)]
pub struct PingResult {
    /// Echo requests sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
    /// Average round trip in milliseconds, if any reply came.
    pub avg_ms: Option<f64>,
}

/// Read `ping`'s summary lines ("3 packets transmitted, 3 received, ..." and
/// "rtt min/avg/max/mdev = 0.041/0.052/0.061/0.008 ms").
pub fn parse_ping(out: &str) -> Option<PingResult> {
    let stats = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = stats
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok());
    let sent = nums.next()??;
    let received = nums.next()??;
    let avg_ms = out
        .lines()
        .find(|l| l.starts_with("rtt") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse::<f64>().ok());
    Some(PingResult {
        sent,
        received,
        avg_ms,
    })
}

/// Ping `addr` from namespace `netns` `count` times.
pub fn ping(netns: &str, addr: &str, count: u32) -> std::io::Result<Option<PingResult>> {
    let count = count.to_string();
    let out = exec_in(
        netns,
        "ping",
        &["-n", "-c", &count, "-i", "0.2", "-W", "2", addr],
    )?;
    Ok(parse_ping(&String::from_utf8_lossy(&out.stdout)))
}

/// The IPv4 address on `ifname` inside `netns`, polled until `deadline` (a DHCP client
/// is taking a lease).
fn wait_for_address(
    netns: &str,
    ifname: &str,
    deadline: std::time::Instant,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<String> {
    loop {
        let out = std::process::Command::new("ip")
            .args(["-n", netns, "-4", "-o", "addr", "show", "dev", ifname])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(a) = parse_inet(&text) {
            return Some(a);
        }
        if std::time::Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The first address of `ip -4 -o addr show` output ("2: eth0    inet 10.0.1.100/24 ...").
pub fn parse_inet(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == "inet")?;
    let cidr = words.next()?;
    Some(cidr.split('/').next()?.to_string())
}

/// Run the demo.
pub fn run() -> ExitCode {
    if std::process::Command::new("ping")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("nfv demo: `ping` is not installed (Debian: apt-get install iputils-ping)");
        return ExitCode::FAILURE;
    }
    let stop = stop_flag();
    let topo = match topology::load_str(DEMO_TOPOLOGY, Path::new("<builtin demo>")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nfv demo: the built-in topology is broken: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "nfv demo: {} hosts in network namespaces; alice and bob take addresses from nfv's DHCP\n\
         server on their LAN, and reach the server on another subnet through nfv's router\n",
        topo.hosts.len()
    );
    let running = match run::start(&topo) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nfv demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Every host's address: static, or the lease its DHCP client took (wait for it).
    let mut hosts: Vec<(String, String, Option<String>, bool)> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for h in &running.plan.hosts {
        let dhcp = h.interfaces.first().is_some_and(|i| i.address.is_none());
        let addr = match h.interfaces.first().and_then(|i| i.address) {
            Some(a) => Some(a.ip().to_string()),
            None => wait_for_address(&h.netns, "eth0", deadline, &stop),
        };
        hosts.push((h.name.clone(), h.netns.clone(), addr, dhcp));
    }
    let mut failures = 0;
    for (name, netns, addr, dhcp) in &hosts {
        let how = if *dhcp { "from DHCP" } else { "static" };
        match addr {
            Some(a) => println!("  host {name:<7} namespace {netns:<18} eth0 {a:<11} ({how})"),
            None => {
                failures += 1;
                println!("  host {name:<7} namespace {netns:<18} eth0 no address: no DHCP lease within 20 s  FAILED");
            }
        }
    }
    println!("\nEvery host pings every other host (ip netns exec NS ping -c 3 ADDR):");
    'outer: for (from, netns, _, _) in &hosts {
        for (to, _, addr, _) in &hosts {
            let Some(addr) = addr else { continue };
            if from == to {
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            match ping(netns, addr, 3) {
                Ok(Some(r)) => {
                    let rtt = r
                        .avg_ms
                        .map(|a| format!("avg rtt {a:.3} ms"))
                        .unwrap_or_default();
                    let ok = r.received == r.sent && r.sent > 0;
                    if !ok {
                        failures += 1;
                    }
                    println!(
                        "  {from:>7} -> {to:<7} {addr:<11} {}/{} replies  {rtt}  {}",
                        r.received,
                        r.sent,
                        if ok { "ok" } else { "FAILED" }
                    );
                }
                Ok(None) | Err(_) => {
                    failures += 1;
                    println!("  {from:>7} -> {to:<7} {addr:<11} ping did not run  FAILED");
                }
            }
        }
    }
    println!();
    for (name, stats) in running.switch_stats() {
        println!(
            "switch {name}: learned {} MAC addresses, flooded {} frames (broadcast ARP and unknown unicast)",
            stats.entries.get(),
            stats.flooded.get()
        );
    }
    for (name, stats) in running.dhcp_stats() {
        println!(
            "dhcp-server {name}: {} discovers, {} offers, {} requests, {} acks, {} naks",
            stats.discovers.get(),
            stats.offers.get(),
            stats.requests.get(),
            stats.acks.get(),
            stats.naks.get()
        );
    }
    println!("\nPort counters:");
    let code = finish(running, Ok(()));
    if failures > 0 {
        println!("nfv demo: {failures} ping runs FAILED");
        return ExitCode::FAILURE;
    }
    if code == ExitCode::SUCCESS {
        println!(
            "nfv demo: OK, the hosts got addresses from nfv's DHCP server and every host \
             reached every other one through nfv's switches and router"
        );
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_of_ip_addr_show() {
        let out = "2: eth0    inet 10.0.1.100/24 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(parse_inet(out).as_deref(), Some("10.0.1.100"));
        assert_eq!(parse_inet(""), None);
        assert_eq!(parse_inet("2: eth0    inet"), None);
    }

    #[test]
    fn reads_ping_summaries() {
        let out = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.081 ms\n\n--- 10.0.0.2 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 405ms\nrtt min/avg/max/mdev = 0.061/0.072/0.081/0.008 ms\n";
        assert_eq!(
            parse_ping(out),
            Some(PingResult {
                sent: 3,
                received: 3,
                avg_ms: Some(0.072)
            })
        );
        let lost = "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2030ms\n";
        assert_eq!(
            parse_ping(lost),
            Some(PingResult {
                sent: 3,
                received: 0,
                avg_ms: None
            })
        );
        assert_eq!(parse_ping("garbage"), None);
    }

    #[test]
    fn the_builtin_topology_loads() {
        let topo = topology::load_str(DEMO_TOPOLOGY, Path::new("<builtin demo>"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(topo.hosts.len() >= 3);
    }
}
