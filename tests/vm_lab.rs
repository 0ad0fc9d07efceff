//! End to end with real VMs (`topologies/vm-lab.yaml`): busybox guests under QEMU (TCG) on
//! nfv's vhost-user ports take leases from nfv's DHCP server, ping nfv's router, each other
//! and a lab host in a namespace on a TAP port; in client mode a guest's pings resume when
//! nfv is stopped and started again, without the guest restarting. The guests report on
//! their serial console (`tests/common/vm.rs`, `tests/vm/build-guest.sh`).
//!
//! One VM test runs at a time ([`vm::serial`]): the machine has 2 cores, and a guest
//! booting under TCG takes one.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::testpmd::{self, Testpmd, Vdev};
use common::vm::{self, ping_markers, Guest, Socket};
use common::{topology_copy, unique_name, Lab, TempDir};

const ROUTER: &str = "10.50.0.1";
const DHCP_SERVER: &str = "10.50.0.2";
const LAB_HOST: &str = "10.50.0.10";
/// The MACs with DHCP reservations in vm-lab.yaml, and their addresses.
const VM1: (&str, &str) = ("52:54:00:50:00:01", "10.50.0.11");
const VM2: (&str, &str) = ("52:54:00:50:00:02", "10.50.0.12");
/// A MAC without a reservation: its address comes from the pool.
const VM_POOL_MAC: &str = "52:54:00:50:00:77";

/// A guest boots in about 6 s under TCG; allow for a busy machine.
const BOOT: Duration = Duration::from_secs(90);

/// A copy of vm-lab.yaml in `dir` (which outlives nfv restarts) under a unique name, its
/// sockets and its lease file in `dir` too, changed by `edit`. Returns (path, name).
fn topology(dir: &Path, edit: impl Fn(String) -> String) -> (PathBuf, String) {
    let name = unique_name("vmlab");
    let path = topology_copy("vm-lab.yaml", &name, dir);
    let text = std::fs::read_to_string(&path).expect("read copy");
    let text = text
        .replace("/run/nfv/vm-lab/", &format!("{}/", dir.display()))
        .replace(
            "    lease: 1h\n",
            &format!("    lease: 1h\n    leases: {}/dhcp.leases\n", dir.display()),
        );
    assert!(text.contains(&format!("socket: {}/vm1.sock", dir.display())));
    std::fs::write(&path, edit(text)).expect("write copy");
    (path, name)
}

/// Start `nfv run` on `path`.
fn start(path: &Path, name: &str) -> Lab {
    Lab::start_path(path, name.to_string(), TempDir::new("vmlab-run"))
}

/// A port's counters in nfv's summary at exit: rx packets, rx bytes, tx packets, tx
/// bytes, ...
fn port_numbers(summary: &str, port: &str) -> Vec<u64> {
    let line = summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some(port))
        .unwrap_or_else(|| panic!("no line for port {port} in:\n{summary}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(n.len() >= 4, "bad port line {line:?}");
    n
}

/// A port's (rx, tx) packets from nfv's summary at exit.
fn port_packets(summary: &str, port: &str) -> (u64, u64) {
    let n = port_numbers(summary, port);
    (n[0], n[2])
}

fn stop(lab: Lab) -> String {
    let (ok, out) = lab.stop();
    assert!(ok, "nfv run failed:\n{out}");
    out
}

#[test]
fn a_guest_takes_a_lease_from_nfv_and_pings_the_router() {
    if !vm::vm_available(&[]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-lease");
    // vm1 in server mode (nfv creates the socket, QEMU connects): the other tests use
    // client mode.
    let (path, name) = topology(dir.path(), |t| {
        t.replacen(".sock, mode: client }", ".sock }", 1)
    });
    let lab = start(&path, &name);
    let sock = dir.path().join("vm1.sock");
    assert!(sock.exists(), "nfv did not create {}", sock.display());
    let mut g = Guest::boot(
        "vm1",
        &sock,
        Socket::Connect,
        VM_POOL_MAC,
        &[("ping", &format!("{ROUTER},{DHCP_SERVER}")), ("count", "3")],
    );
    let lease = g.expect_marker("VMLAB-LEASE", BOOT);
    let addr = vm::lease_address(&lease).expect("lease address");
    let last: u8 = addr
        .strip_prefix("10.50.0.")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("lease {addr} outside 10.50.0.0/24"));
    assert!((100..=199).contains(&last), "lease {addr} outside the pool");
    assert!(
        lease.contains(&format!("router={ROUTER} server={DHCP_SERVER}")),
        "{lease}"
    );
    g.expect_pass(Duration::from_secs(60));
    drop(g);
    let out = stop(lab);
    // DHCP (2), ARP (2) and 6 pings at least, each way, through the vhost-user port.
    let (rx, tx) = port_packets(&out, "vm1");
    assert!(rx >= 10 && tx >= 8, "vm1 rx={rx} tx={tx}:\n{out}");
    assert!(!sock.exists(), "nfv left its socket {}", sock.display());
}

#[test]
fn two_guests_on_one_switch_ping_each_other() {
    if !vm::vm_available(&[]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-two");
    let (path, name) = topology(dir.path(), |t| t);
    let _lab = start(&path, &name);
    // Each waits (up to 60 s) for the other to answer before counting replies.
    let mut guests: Vec<Guest> = [("vm1", VM1, VM2), ("vm2", VM2, VM1)]
        .iter()
        .map(|(port, me, peer)| {
            Guest::boot(
                port,
                &dir.path().join(format!("{port}.sock")),
                Socket::Listen,
                me.0,
                &[("ping", peer.1), ("count", "5"), ("wait", "60")],
            )
        })
        .collect();
    for (g, me) in guests.iter_mut().zip([VM1, VM2]) {
        assert_eq!(g.expect_lease(BOOT), me.1, "{}: reserved address", g.name);
    }
    for g in &mut guests {
        g.expect_pass(Duration::from_secs(90));
    }
}

#[test]
fn a_guest_and_a_lab_host_ping_each_other() {
    if !vm::vm_available(&["ping"]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-host");
    let (path, name) = topology(dir.path(), |t| t);
    let lab = start(&path, &name);
    let mut g = Guest::boot(
        "vm2",
        &dir.path().join("vm2.sock"),
        Socket::Listen,
        VM2.0,
        &[("ping", LAB_HOST), ("count", "3"), ("hold", "forever")],
    );
    assert_eq!(g.expect_lease(BOOT), VM2.1);
    g.expect_pass(Duration::from_secs(60));
    // The guest stays up: the lab host pings it back.
    assert_eq!(lab.ping("lab", VM2.1, 3), (3, 3), "{}", g.report());
}

/// Jumbo frames between a guest and a lab host: the guest's eth0 and both ports at MTU
/// 9000, 9000-byte pings both ways, unfragmented (the lab host's with DF set).
#[test]
fn a_guest_and_a_lab_host_exchange_jumbo_frames() {
    if !vm::vm_available(&["ping"]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-jumbo");
    let (path, name) = topology(dir.path(), |t| {
        t.replace(
            "vm2.sock, mode: client }",
            "vm2.sock, mode: client, mtu: 9000 }",
        )
        .replace(
            "lab0: { kind: tap, host: lab }",
            "lab0: { kind: tap, host: lab, mtu: 9000 }",
        )
    });
    let lab = start(&path, &name);
    let mut g = Guest::boot(
        "vm2",
        &dir.path().join("vm2.sock"),
        Socket::Listen,
        VM2.0,
        &[
            ("ping", LAB_HOST),
            ("count", "3"),
            ("mtu", "9000"),
            ("size", "8972"),
            ("hold", "forever"),
        ],
    );
    assert_eq!(g.expect_lease(BOOT), VM2.1);
    g.expect_pass(Duration::from_secs(60));
    let out = lab.exec(
        "lab",
        "ping",
        &["-n", "-c", "3", "-W", "2", "-s", "8972", "-M", "do", VM2.1],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 received") && text.contains("8980 bytes from"),
        "{text}\n{}",
        g.report()
    );
    let summary = stop(lab);
    // The guest's six 9000-byte frames (three requests, three replies), none cut up.
    let (rx, tx) = port_packets(&summary, "vm2");
    assert!(rx >= 6 && tx >= 6, "{summary}");
    let rx_bytes = port_numbers(&summary, "vm2")[1];
    assert!(rx_bytes >= 6 * 9000, "{summary}");
    assert!(!summary.contains("oversize"), "{summary}");
}

#[test]
fn pings_resume_after_nfv_restarts_in_client_mode() {
    if !vm::vm_available(&[]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-restart");
    let (path, name) = topology(dir.path(), |t| t);
    let lab = start(&path, &name);
    let mut g = Guest::boot(
        "vm1",
        &dir.path().join("vm1.sock"),
        Socket::Listen,
        VM1.0,
        &[("ping", ROUTER), ("forever", "1")],
    );
    let ok = format!("VMLAB-PING {ROUTER} ok");
    let fail = format!("VMLAB-PING {ROUTER} fail");
    let (i, _) = g
        .wait_marker_from(0, &ok, BOOT)
        .unwrap_or_else(|| panic!("no ping answered\n{}", g.report()));
    // A second reply: the guest pings steadily.
    g.wait_marker_from(i + 1, &ok, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("pings stopped\n{}", g.report()));

    stop(lab);
    // Without nfv, pings fail (counted from when it had gone).
    let gone = g.lines().len();
    let (i, _) = g
        .wait_marker_from(gone, &fail, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("pings still answered without nfv\n{}", g.report()));
    let started = Instant::now();
    let lab = start(&path, &name);
    let left = Duration::from_secs(15).saturating_sub(started.elapsed());
    let resumed = g.wait_marker_from(i + 1, &ok, left);
    let lines = g.lines();
    assert!(
        resumed.is_some(),
        "pings did not resume within 15 s of nfv's start (markers since: {:?})\n{}",
        ping_markers(&lines, i, ROUTER),
        g.report()
    );
    eprintln!(
        "pings resumed {:.1} s after nfv was started again",
        started.elapsed().as_secs_f64()
    );
    assert!(g.running(), "QEMU exited\n{}", g.report());
    assert_eq!(
        lines.iter().filter(|l| l.contains("VMLAB-INIT")).count(),
        1,
        "the guest restarted\n{}",
        g.report()
    );
    drop(g);
    stop(lab);
}

/// The harness itself against a reference backend, DPDK testpmd (`net_vhost`, icmpecho:
/// it answers ARP and ping for any address), in both socket modes: when this passes and
/// a VM test against nfv fails, look at nfv, not at the guest.
#[test]
fn the_guest_pings_through_testpmd_in_both_socket_modes() {
    if !vm::vm_available(&[]) || !testpmd::testpmd_available() {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vm-testpmd");
    let sock = dir.path().join("tp.sock");
    let instructions = [("addr", "10.9.0.2/24"), ("ping", "10.9.0.1")];
    for mode in [Socket::Connect, Socket::Listen] {
        let vdev = Vdev::Vhost {
            iface: sock.clone(),
            client: mode == Socket::Listen,
        };
        // testpmd listens first, or connects (and reconnects) once QEMU listens.
        let (mut tp, mut g) = if mode == Socket::Connect {
            let tp = Testpmd::start("vm-ref", 0, &[vdev]);
            (tp, Guest::boot("tp", &sock, mode, VM1.0, &instructions))
        } else {
            let g = Guest::boot("tp", &sock, mode, VM1.0, &instructions);
            (Testpmd::start("vm-ref", 0, &[vdev]), g)
        };
        tp.set_fwd("icmpecho");
        tp.start_fwd();
        g.expect_pass(BOOT);
        // The replies came from testpmd: it counted the guest's frames.
        let stats = tp.stats();
        assert!(
            stats
                .first()
                .is_some_and(|p| p.rx_packets >= 4 && p.tx_packets >= 4),
            "{mode:?}: testpmd port stats {stats:?}"
        );
    }
}
