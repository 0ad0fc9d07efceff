//! nfv's vhost-user ports driven by a real vhost-user frontend: DPDK testpmd's `virtio_user`
//! device (the role QEMU plays for a VM). A topology with a switch between two vhost-user
//! ports; one testpmd sends a known number of frames into one port (`start tx_first N`:
//! N bursts of the `txonly` engine, then nothing), another receives on the other port
//! (`rxonly`), and every frame is accounted for exactly, packets and bytes:
//!
//! - frames the sender sent = frames nfv received on the sending port;
//! - frames nfv sent on the receiving port + nfv's counted drops = frames nfv received;
//! - frames the receiver got = frames nfv sent on the receiving port.
//!
//! The frames go in rounds smaller than the receiver's ring and each round is drained before
//! the next, so that drops stay rare on two cores shared by three pollers; the assertion is
//! the accounting, not the absence of drops.
//!
//! The first test runs the same harness against testpmd's own vhost-user backend
//! (`net_vhost`, io forwarding) in place of nfv: the reference the harness was built on.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::testpmd::{self, PortStats, Testpmd, Vdev};
use common::{unique_name, Lab, TempDir};

const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0b:01";

/// Frames per round: 4 bursts of 32, half the receiver's 256-entry ring.
const BURSTS_PER_ROUND: u32 = 4;
const BURST: u16 = 32;

/// The frames the sender sends.
#[derive(Clone, Copy, Debug)]
enum Frames {
    /// All of one length (bytes, without FCS).
    Fixed(u16),
    /// Lengths 64, 164, 464, 964 and 1514 at random (`set txpkts 64,100,300,500,550`,
    /// `set txsplit rand`: each frame takes the first 1 to 5 segments).
    Mix,
}

/// Which port the sender is on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dir {
    AtoB,
    BtoA,
}

/// The counters of one nfv port from `nfv run`'s stop summary.
#[derive(Clone, Copy, Debug, Default)]
struct NfvPort {
    rx: u64,
    rx_bytes: u64,
    tx: u64,
    tx_bytes: u64,
    drops: u64,
}

/// The row of port `name` in the summary table
/// (`port rx-pkts rx-bytes tx-pkts tx-bytes rx-miss drops`).
fn nfv_port(out: &str, name: &str) -> NfvPort {
    let row: Vec<u64> = out
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.filter_map(|x| x.parse().ok()).collect())
        })
        .unwrap_or_else(|| panic!("no row for port {name} in nfv's summary:\n{out}"));
    assert_eq!(row.len(), 6, "port row {name}: {row:?} in\n{out}");
    // A guest's ring never loses a frame before nfv reads it: it waits instead.
    assert_eq!(row[4], 0, "rx miss of port {name} in\n{out}");
    NfvPort {
        rx: row[0],
        rx_bytes: row[1],
        tx: row[2],
        tx_bytes: row[3],
        drops: row[5],
    }
}

/// The topology: a switch between vhost-user ports `a` and `b` with sockets in `dir`;
/// `client` makes both ports connect to sockets the frontend listens on.
fn write_topology(dir: &Path, name: &str, client: bool) -> PathBuf {
    let mode = if client { ", mode: client" } else { "" };
    let text = format!(
        "name: {name}\n\
         ports:\n  \
           a: {{ kind: vhost-user, socket: {a}{mode} }}\n  \
           b: {{ kind: vhost-user, socket: {b}{mode} }}\n\
         functions:\n  \
           sw: {{ kind: switch }}\n\
         links:\n  \
           - [a, sw]\n  \
           - [b, sw]\n",
        a = dir.join("a.sock").display(),
        b = dir.join("b.sock").display(),
    );
    let path = dir.join("vhost.yaml");
    std::fs::write(&path, text).expect("write topology");
    path
}

/// Put every thread of process `pid` on CPU `cpu` (testpmd's pollers sit on the other).
fn pin(pid: u32, cpu: usize) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "taskset -a -p -c {cpu} {pid}");
}

/// The sender: `rxonly` (it forwards nothing), frames from `txonly` through `tx_first`.
fn sender(tp: &mut Testpmd, frames: Frames, peer: &str) {
    tp.set_fwd("rxonly");
    tp.set_eth_peer(0, peer);
    tp.set_burst(BURST);
    match frames {
        Frames::Fixed(len) => tp.set_txpkts(&[len]),
        Frames::Mix => {
            tp.set_txpkts(&[64, 100, 300, 500, 550]);
            tp.set_txsplit("rand");
        }
    }
}

/// What the two frontends counted.
struct Sent {
    sender: PortStats,
    receiver: PortStats,
}

/// Send `rounds` rounds from `tx` (its port `tx_port`) and wait after each until `rx`
/// (port `rx_port`) received as many as were sent, or its counters settled.
fn send_rounds(
    tx: &mut Testpmd,
    tx_port: usize,
    rx: &mut Testpmd,
    rx_port: usize,
    rounds: u32,
) -> Sent {
    for _ in 0..rounds {
        tx.start_tx_first(BURSTS_PER_ROUND);
        tx.stop_fwd();
        let sent = tx.stats()[tx_port].tx_packets;
        rx.stats_settled(Duration::from_millis(300), Duration::from_secs(5), |s| {
            s[rx_port].rx_packets >= sent
        });
    }
    let sender = tx.stats()[tx_port];
    let receiver = rx.stats_settled(Duration::from_millis(500), Duration::from_secs(5), |_| {
        false
    })[rx_port];
    Sent { sender, receiver }
}

/// The harness itself, against testpmd's own vhost-user backend: two `net_vhost` ports in
/// io mode (a two-port "switch"), a `virtio_user` sender and a `virtio_user` receiver.
#[test]
fn harness_counts_add_up_through_testpmd_net_vhost() {
    if !testpmd::testpmd_available() {
        return;
    }
    let _serial = testpmd::serial();
    let dir = TempDir::new("vhost-ref");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let mut sw = Testpmd::start("sw", 1, &[Vdev::vhost(&a), Vdev::vhost(&b)]);
    sw.set_fwd("io");
    sw.start_fwd();
    let mut rx = Testpmd::start("rx", 0, &[Vdev::virtio_user(&b).with_mac(MAC_B)]);
    rx.set_fwd("rxonly");
    rx.start_fwd();
    let mut tx = Testpmd::start("tx", 0, &[Vdev::virtio_user(&a).with_mac(MAC_A)]);
    sender(&mut tx, Frames::Mix, MAC_B);
    tx.wait_link_up(0, Duration::from_secs(10));
    rx.wait_link_up(0, Duration::from_secs(10));
    let s = send_rounds(&mut tx, 0, &mut rx, 0, 20);
    let stop = sw.stop_fwd();
    let st = sw.stats();
    // io forwarding drops what port 1 could not send ("TX-dropped" of its forward stats).
    let dropped: u64 = stop
        .split("Forward statistics for port 1")
        .nth(1)
        .and_then(|t| t.split("TX-dropped:").nth(1))
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no TX-dropped for port 1 in {stop}"));
    eprintln!(
        "sent {}, switch rx {} tx {} dropped {dropped}, received {}",
        s.sender.tx_packets, st[0].rx_packets, st[1].tx_packets, s.receiver.rx_packets
    );
    assert_eq!(s.sender.tx_packets, st[0].rx_packets, "{st:?}");
    assert_eq!(s.sender.tx_bytes, st[0].rx_bytes, "{st:?}");
    assert_eq!(st[1].tx_packets + dropped, st[0].rx_packets, "{st:?}");
    assert_eq!(s.receiver.rx_packets, st[1].tx_packets, "{st:?}");
    assert_eq!(s.receiver.rx_bytes, st[1].tx_bytes, "{st:?}");
    assert!(s.receiver.rx_packets > 0);
}

/// One run through nfv.
#[derive(Clone, Copy, Debug)]
struct Case {
    dir: Dir,
    frames: Frames,
    /// nfv connects to sockets the testpmds listen on (`server=1`).
    client: bool,
    rounds: u32,
    /// The receiver polls only after the sender is done: its ring fills and nfv must drop
    /// (and count) the rest.
    stalled_receiver: bool,
}

impl Case {
    fn new(dir: Dir, frames: Frames, rounds: u32) -> Case {
        Case {
            dir,
            frames,
            client: false,
            rounds,
            stalled_receiver: false,
        }
    }
}

/// What nfv counted in a run.
struct NfvCounts {
    /// The sending side's port and the receiving side's port.
    tx_side: NfvPort,
    rx_side: NfvPort,
    /// Every drop nfv counted, by reason.
    drops: Vec<(String, u64)>,
    summary: String,
}

/// nfv with two vhost-user ports and a switch; a `virtio_user` sender on one port and a
/// `virtio_user` receiver on the other, each its own testpmd on CPU 0, nfv on CPU 1. Checks
/// the accounting; returns the counts for more checks.
fn through_nfv(case: Case) -> Option<(Sent, NfvCounts)> {
    if !testpmd::testpmd_available() {
        return None;
    }
    let _serial = testpmd::serial();
    let t0 = Instant::now();
    let dir = TempDir::new("vhost");
    let name = unique_name("vhost");
    let path = write_topology(dir.path(), &name, case.client);
    let (sock_a, sock_b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let (tx_sock, tx_mac, rx_sock, rx_mac, tx_port, rx_port) = match case.dir {
        Dir::AtoB => (&sock_a, MAC_A, &sock_b, MAC_B, "a", "b"),
        Dir::BtoA => (&sock_b, MAC_B, &sock_a, MAC_A, "b", "a"),
    };
    let vdev = |sock: &Path, mac: &str| {
        if case.client {
            Vdev::virtio_user_server(sock).with_mac(mac)
        } else {
            Vdev::virtio_user(sock).with_mac(mac)
        }
    };
    // Whoever listens comes first: in client mode the testpmds (a `virtio_user` with
    // `server=1` waits for the backend before its first prompt), else nfv.
    let spawn = || {
        (
            Testpmd::spawn("rx", 0, &[vdev(rx_sock, rx_mac)], &[]),
            Testpmd::spawn("tx", 0, &[vdev(tx_sock, tx_mac)], &[]),
        )
    };
    let early = case.client.then(spawn);
    let lab = Lab::start_path(&path, name, dir);
    pin(lab.pid, 1);
    let (mut rx, mut tx) = early.unwrap_or_else(spawn);
    rx.ready();
    tx.ready();
    rx.set_fwd("rxonly");
    if !case.stalled_receiver {
        rx.start_fwd();
    }
    sender(&mut tx, case.frames, rx_mac);
    tx.wait_link_up(0, Duration::from_secs(15));
    rx.wait_link_up(0, Duration::from_secs(15));
    let up = t0.elapsed();

    if case.stalled_receiver {
        for _ in 0..case.rounds {
            tx.start_tx_first(BURSTS_PER_ROUND);
            tx.stop_fwd();
        }
        // Let nfv take everything in (and drop what the full ring cannot hold), then drain.
        std::thread::sleep(Duration::from_millis(500));
        rx.start_fwd();
    }
    let s = send_rounds(
        &mut tx,
        0,
        &mut rx,
        0,
        if case.stalled_receiver {
            0
        } else {
            case.rounds
        },
    );
    let (ok, out) = lab.stop();
    assert!(ok, "nfv run did not exit cleanly:\n{out}");
    let n = NfvCounts {
        tx_side: nfv_port(&out, tx_port),
        rx_side: nfv_port(&out, rx_port),
        drops: common::summary_drops(&out),
        summary: out,
    };
    let (p_tx, p_rx, out) = (&n.tx_side, &n.rx_side, &n.summary);
    let drops: u64 = n.drops.iter().map(|(_, d)| d).sum();
    eprintln!(
        "{case:?}: up in {up:?}, done in {:?}; sent {} ({} B), nfv {tx_port} rx {} ({} B), \
         nfv {rx_port} tx {} ({} B), nfv drops {:?}, received {} ({} B)",
        t0.elapsed(),
        s.sender.tx_packets,
        s.sender.tx_bytes,
        p_tx.rx,
        p_tx.rx_bytes,
        p_rx.tx,
        p_rx.tx_bytes,
        n.drops,
        s.receiver.rx_packets,
        s.receiver.rx_bytes
    );
    assert!(s.sender.tx_packets > 0, "the sender sent nothing:\n{out}");
    assert_eq!(s.sender.tx_packets, p_tx.rx, "sent vs nfv rx:\n{out}");
    assert_eq!(
        s.sender.tx_bytes, p_tx.rx_bytes,
        "bytes sent vs nfv rx:\n{out}"
    );
    assert_eq!(p_rx.tx + drops, p_tx.rx, "nfv tx + drops vs rx:\n{out}");
    assert_eq!(s.receiver.rx_packets, p_rx.tx, "received vs nfv tx:\n{out}");
    assert_eq!(
        s.receiver.rx_bytes, p_rx.tx_bytes,
        "bytes received vs nfv tx:\n{out}"
    );
    // Nothing goes the other way: the receiver sends nothing, the switch floods nothing back.
    assert_eq!((p_tx.tx, p_rx.rx), (0, 0), "{out}");
    assert_eq!(s.receiver.tx_packets + s.sender.rx_packets, 0);
    assert!(s.receiver.rx_packets > 0, "nothing arrived:\n{out}");
    let sent = s.sender.tx_packets;
    match case.frames {
        Frames::Fixed(len) => assert_eq!(s.sender.tx_bytes, sent * u64::from(len)),
        Frames::Mix => assert!(
            s.sender.tx_bytes > sent * 64 && s.sender.tx_bytes < sent * 1514,
            "not a mix: {sent} frames, {} bytes",
            s.sender.tx_bytes
        ),
    }
    drop((tx, rx));
    Some((s, n))
}

/// A receiver that keeps up: almost nothing may be lost (rounds of half its ring, each
/// drained before the next).
fn keeps_up(case: Case) {
    if let Some((s, n)) = through_nfv(case) {
        assert!(
            s.receiver.rx_packets * 2 > s.sender.tx_packets,
            "most frames were dropped:\n{}",
            n.summary
        );
    }
}

#[test]
fn a_to_b_64_byte_frames() {
    keeps_up(Case::new(Dir::AtoB, Frames::Fixed(64), 40));
}

#[test]
fn a_to_b_1500_byte_frames() {
    keeps_up(Case::new(Dir::AtoB, Frames::Fixed(1500), 20));
}

#[test]
fn a_to_b_mixed_sizes() {
    keeps_up(Case::new(Dir::AtoB, Frames::Mix, 20));
}

#[test]
fn b_to_a_64_byte_frames() {
    keeps_up(Case::new(Dir::BtoA, Frames::Fixed(64), 40));
}

#[test]
fn b_to_a_mixed_sizes() {
    keeps_up(Case::new(Dir::BtoA, Frames::Mix, 20));
}

#[test]
fn nfv_as_client_mixed_sizes() {
    keeps_up(Case {
        client: true,
        ..Case::new(Dir::AtoB, Frames::Mix, 20)
    });
}

/// The receiver does not poll while 1024 frames come: its 256-entry ring fills, nfv drops
/// the rest as `tx_full` on the receiving port, and the counts still add up.
#[test]
fn a_receiver_that_does_not_poll_costs_counted_drops() {
    let Some((s, n)) = through_nfv(Case {
        stalled_receiver: true,
        ..Case::new(Dir::AtoB, Frames::Fixed(64), 8)
    }) else {
        return;
    };
    let tx_full = n
        .drops
        .iter()
        .find(|(r, _)| r == "tx_full")
        .map_or(0, |(_, d)| *d);
    assert!(tx_full > 0, "no tx_full drops:\n{}", n.summary);
    assert_eq!(
        n.rx_side.drops, tx_full,
        "drops not on the receiving port:\n{}",
        n.summary
    );
    assert!(
        s.receiver.rx_packets <= 256,
        "more than a ring: {}",
        s.receiver.rx_packets
    );
}
