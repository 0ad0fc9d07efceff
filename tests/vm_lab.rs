//! End to end with real VMs (`topologies/vm-lab.yaml`): busybox guests under QEMU (TCG) on
//! nfv's vhost-user ports take leases from nfv's DHCP server, ping nfv's router, each other
//! and a lab host in a namespace on a TAP port; in client mode a guest's pings resume when
//! nfv is stopped and started again, without the guest restarting; a guest migrates live
//! from one port to another (QEMU's `migrate`), also with nfv restarted during it. The guests report on
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

/// The lab host's sender: one connection on ADDR:PORT, N random bytes, a half-close, and
/// their SHA-256 once the guest closed too.
const TCP_SENDER: &str = r#"
import hashlib, os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(150)
c, _ = s.accept()
c.settimeout(60)
data = os.urandom(int(sys.argv[3]))
c.sendall(data)
c.shutdown(socket.SHUT_WR)
while c.recv(65536):
    pass
c.close()
print(len(data), hashlib.sha256(data).hexdigest())
"#;

/// TCP both ways between a guest and a lab host (behind a veth pair with offloads), with
/// checksum and segmentation offload negotiated on the vhost-user port: the guest's kernel
/// sends TCP super-frames that nfv hands to the lab host as they are, and takes the lab
/// host's the same way. The bytes' SHA-256 match on both ends, a capture on the port's wire
/// holds frames from the guest longer than its MTU allows, and the frames the port handed
/// the guest average more than an MTU's worth.
#[test]
fn a_guest_and_a_lab_host_move_tcp_in_super_frames() {
    if !vm::vm_available(&["python3"]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-tcp");
    let (path, name) = topology(dir.path(), |t| t);
    let lab = start(&path, &name);
    let pcap = dir.path().join("vm2.pcap");
    let mut capture = std::process::Command::new(common::NFV)
        .args(["capture", "vm2", "-w"])
        .arg(&pcap)
        .args(["-t", &lab.name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nfv capture");
    let bytes = (8u64 << 20).to_string();
    let receiver = lab.spawn_piped(
        "lab",
        "timeout",
        &[
            "200",
            "python3",
            "-c",
            common::TCP_RECEIVER,
            LAB_HOST,
            "6001",
            &bytes,
        ],
    );
    let sender = lab.spawn_piped(
        "lab",
        "timeout",
        &["200", "python3", "-c", TCP_SENDER, LAB_HOST, "6002", &bytes],
    );
    let mut g = Guest::boot(
        "vm2",
        &dir.path().join("vm2.sock"),
        Socket::Listen,
        VM2.0,
        &[
            ("ping", LAB_HOST),
            ("count", "1"),
            ("tcp", &format!("{LAB_HOST}:6001:8")),
            ("hold", "forever"),
        ],
    );
    assert_eq!(g.expect_lease(BOOT), VM2.1);
    g.expect_pass(Duration::from_secs(150));
    let sha = |line: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("sha="))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no sha in {line:?}"))
    };
    let sent_line = g.expect_marker("VMLAB-TCP-SENT ", Duration::from_secs(5));
    let done_line = g.expect_marker("VMLAB-TCP-SENT-DONE", Duration::from_secs(5));
    let got_line = g.expect_marker("VMLAB-TCP-RECEIVED", Duration::from_secs(5));
    let (guest_sent, guest_got) = (sha(&sent_line), sha(&got_line));
    // For the record (a test times nothing): the guest's own clock, under TCG here.
    let uptime = |line: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("uptime="))
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (t0, t1, t2) = (uptime(&sent_line), uptime(&done_line), uptime(&got_line));
    eprintln!(
        "guest -> lab host: 8 MiB in {:.2} s; lab host -> guest: 8 MiB in {:.2} s",
        t1 - t0,
        t2 - t1
    );
    let out = |c: std::process::Child| {
        let o = c.wait_with_output().expect("server");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let (received, sent) = (out(receiver), out(sender));
    assert_eq!(
        received,
        format!("{bytes} {guest_sent}"),
        "guest -> lab host"
    );
    assert_eq!(sent, format!("{bytes} {guest_got}"), "lab host -> guest");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let _ = capture.wait();
    // From the guest: frames longer than its MTU allows reached the wire.
    let (from_guest, _) = longest_frames(&pcap, VM2.0);
    assert!(from_guest > 1514, "the guest's longest frame: {from_guest}");
    // To the guest: the port handed super-frames over as they were (each counted once; cut
    // in software for a guest without the features, every frame would be at most 1514).
    let summary = stop(lab);
    let n = port_numbers(&summary, "vm2");
    let to_guest = n[3] / n[2].max(1);
    assert!(
        to_guest > 1514,
        "{to_guest} bytes per frame to the guest\n{summary}"
    );
}

/// The frames of pcap file `path`: (length on the wire, the bytes captured).
fn pcap_frames(path: &Path) -> Vec<(u32, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("the capture file");
    // The magic number tells the byte order the file was written in.
    // (0xa1b2c3d4, or 0xa1b23c4d with nanoseconds).
    let big_endian = bytes.first() == Some(&0xa1);
    let word = |i: usize| {
        let w: [u8; 4] = bytes[i..i + 4].try_into().expect("4 bytes");
        if big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let mut frames = Vec::new();
    let mut at = 24; // past the file header
    while at + 16 <= bytes.len() {
        let (incl, orig) = (word(at + 8) as usize, word(at + 12));
        let frame = &bytes[at + 16..(at + 16 + incl).min(bytes.len())];
        frames.push((orig, frame.to_vec()));
        at += 16 + incl;
    }
    frames
}

/// The bytes of MAC `mac` (`52:54:00:...`).
fn mac_bytes(mac: &str) -> Vec<u8> {
    mac.split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("hex"))
        .collect()
}

/// The longest frame (its length on the wire) from MAC `mac` and to anyone else in pcap
/// file `path`.
fn longest_frames(path: &Path, mac: &str) -> (u32, u32) {
    let mac = mac_bytes(mac);
    let (mut from, mut to) = (0, 0);
    for (orig, frame) in pcap_frames(path) {
        if frame.len() >= 12 && frame[6..12] == mac[..] {
            from = from.max(orig);
        } else {
            to = to.max(orig);
        }
    }
    (from, to)
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

/// The lab host's end of a migrating guest's TCP connection: accepts one connection on
/// ADDR:PORT and appends every line it reads to FILE (flushed), then `EOF` when the
/// connection ends; gives up after 300 s.
const TICK_SERVER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(300)
c, _ = s.accept()
c.settimeout(300)
with open(sys.argv[3], "a") as out:
    for line in c.makefile():
        out.write(line)
        out.flush()
    out.write("EOF\n")
"#;

/// The `seq=` of every ping reply a watching guest printed (`vmlab.watch`).
fn watch_seqs(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter(|l| l.contains("VMLAB-WATCH 64 bytes"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("seq="))
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

/// QEMU arguments for a guest's QMP socket `qmp` and, with `incoming`, for waiting for a
/// migration stream there.
fn migration_args(qmp: &Path, incoming: Option<&Path>) -> Vec<String> {
    let mut a = vec![
        "-qmp".to_string(),
        format!("unix:{},server=on,wait=off", qmp.display()),
    ];
    if let Some(p) = incoming {
        a.push("-incoming".into());
        a.push(format!("unix:{}", p.display()));
    }
    a
}

/// Migrate the guest behind QMP socket `qmp` to `stream`, where the destination behind QMP
/// socket `to` waits, at most `bandwidth` bytes/s if given, calling `during` once the
/// migration runs; the final `query-migrate` (status completed or failed), within 120 s.
fn migrate(
    qmp: &Path,
    to: &Path,
    stream: &Path,
    bandwidth: Option<u64>,
    during: impl FnOnce(),
) -> serde_json::Value {
    // The destination answers on QMP once it has set up everything, `-incoming` too.
    let state = vm::Qmp::connect(to).run("query-status", serde_json::json!({}));
    assert_eq!(
        state["status"], "inmigrate",
        "the destination waits: {state}"
    );
    let mut q = vm::Qmp::connect(qmp);
    if let Some(b) = bandwidth {
        q.run(
            "migrate-set-parameters",
            serde_json::json!({ "max-bandwidth": b }),
        );
    }
    let uri = format!("unix:{}", stream.display());
    q.run("migrate", serde_json::json!({ "uri": uri }));
    during();
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let r = q.run("query-migrate", serde_json::json!({}));
        if let Some("completed" | "failed" | "cancelled") = r["status"].as_str() {
            return r;
        }
        assert!(Instant::now() < until, "the migration did not end: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait for a watching guest's ping replies from console line `from` on: the first, then
/// one `more` lines further, each within 30 s; fails the test (`what`) without them.
fn expect_replies(g: &mut Guest, from: usize, more: usize, what: &str) {
    let reply = "VMLAB-WATCH 64 bytes";
    let (i, _) = g
        .wait_marker_from(from, reply, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{what}: no ping answered\n{}", g.report()));
    g.wait_marker_from(i + more, reply, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{what}: pings stopped\n{}", g.report()));
}

/// The two QEMUs of a migration, with their QMP sockets and the stream between them.
struct Migration {
    src: Guest,
    dst: Guest,
    src_qmp: PathBuf,
    dst_qmp: PathBuf,
    stream: PathBuf,
}

impl Migration {
    /// In `dir`: the source on port vm1, watching the lab host (`vmlab.watch`, TCP to port
    /// 6100), booted with its lease and `pings` ping replies printed; the destination on
    /// port vm2, the same guest's command line, waiting with `-incoming`.
    fn boot(dir: &Path, pings: usize) -> Migration {
        let watch = format!("{LAB_HOST}:6100");
        let vmlab = [("watch", watch.as_str())];
        let (src_qmp, dst_qmp) = (dir.join("src.qmp"), dir.join("dst.qmp"));
        let stream = dir.join("migrate");
        let mut src = Guest::boot_with(
            "source",
            &dir.join("vm1.sock"),
            Socket::Listen,
            VM1.0,
            &vmlab,
            &migration_args(&src_qmp, None),
        );
        assert_eq!(src.expect_lease(BOOT), VM1.1);
        expect_replies(&mut src, 0, pings.saturating_sub(1), "before the move");
        let dst = Guest::boot_with(
            "destination",
            &dir.join("vm2.sock"),
            Socket::Listen,
            VM1.0,
            &vmlab,
            &migration_args(&dst_qmp, Some(&stream)),
        );
        Migration {
            src,
            dst,
            src_qmp,
            dst_qmp,
            stream,
        }
    }

    /// Migrate (see [`migrate`]).
    fn run(&self, bandwidth: Option<u64>, during: impl FnOnce()) -> serde_json::Value {
        migrate(
            &self.src_qmp,
            &self.dst_qmp,
            &self.stream,
            bandwidth,
            during,
        )
    }
}

/// Live migration inside one nfv: a guest on port vm1 that pings the lab host every 100 ms
/// and holds a TCP connection to it moves to a QEMU on port vm2. Its address, its TCP
/// connection and its ping sequence carry on; at most a few pings are lost; the guest
/// announces itself on vm2 (a gratuitous ARP, asked for by QEMU through
/// `VIRTIO_NET_F_GUEST_ANNOUNCE`) and the switch has its MAC there.
#[test]
fn a_guest_migrates_to_another_port_and_keeps_its_address_and_tcp_connection() {
    if !vm::vm_available(&["python3"]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-migrate");
    let (path, name) = topology(dir.path(), |t| t);
    let lab = start(&path, &name);
    let ticks = dir.path().join("ticks.log");
    let ticks_arg = ticks.to_str().expect("utf-8 path");
    let mut server = lab.spawn(
        "lab",
        "python3",
        &["-c", TICK_SERVER, LAB_HOST, "6100", ticks_arg],
    );
    let mut m = Migration::boot(dir.path(), 21);
    let pcap = dir.path().join("vm2.pcap");
    let mut capture = std::process::Command::new(common::NFV)
        .args(["capture", "vm2", "-w"])
        .arg(&pcap)
        .args(["-t", &lab.name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nfv capture");
    let r = m.run(None, || {});
    assert_eq!(r["status"], "completed", "{r}\n{}", m.src.report());
    let moved_at = std::fs::read_to_string(&ticks).unwrap_or_default();
    // Two seconds of the guest on its new QEMU.
    expect_replies(&mut m.dst, 0, 20, "after the move");
    let (src, dst) = (&mut m.src, &mut m.dst);
    let before = watch_seqs(&src.lines());
    src.kill();
    let after = watch_seqs(&dst.lines());
    // The ping sequence carries on (the same process, migrated): count what is missing.
    let (first, last) = (before[0], after[after.len() - 1]);
    let got: std::collections::BTreeSet<u64> = before.iter().chain(&after).copied().collect();
    let lost = (first..=last).filter(|s| !got.contains(s)).count();
    eprintln!(
        "migrated: downtime {} ms (QEMU), total {} ms; pings lost: {lost} of {}",
        r["downtime"],
        r["total-time"],
        last - first + 1
    );
    assert!(
        after[0] > before[before.len() - 1],
        "the guest's ping went on where it was"
    );
    assert!(lost <= 5, "{lost} pings lost\n{}", dst.report());
    // The same address: no new lease on the destination, nothing restarted.
    let lines = dst.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("VMLAB-INIT") || l.contains("VMLAB-LEASE")),
        "the guest restarted or took a new lease\n{}",
        dst.report()
    );
    // The TCP connection survived: its ticks go on past the move, on the one connection.
    assert!(
        !lines.iter().any(|l| l.contains("VMLAB-WATCH-TCP-CLOSED")),
        "{}",
        dst.report()
    );
    let all = std::fs::read_to_string(&ticks).expect("the server's lines");
    let n = |t: &str| t.lines().filter(|l| l.starts_with("tick ")).count();
    assert!(
        n(&all) >= n(&moved_at) + 10 && !all.contains("EOF"),
        "ticks: {} at the move, {} now",
        n(&moved_at),
        n(&all)
    );
    let numbered: Vec<usize> = all
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(
        numbered.iter().enumerate().all(|(k, t)| k == *t),
        "every tick, in order, on one connection"
    );
    // The switch has the guest's MAC on vm2.
    let macs = common::show_json(&lab, "macs");
    let entry = macs
        .as_array()
        .and_then(|a| a.iter().find(|e| e["mac"] == VM1.0))
        .unwrap_or_else(|| panic!("{}: no entry in {macs}", VM1.0));
    assert_eq!(entry["gate"], "vm2", "{macs}");
    // And the guest announced itself there: a gratuitous ARP for its address.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let _ = capture.wait();
    let (mac, ip) = (
        mac_bytes(VM1.0),
        VM1.1.parse::<std::net::Ipv4Addr>().expect("ip"),
    );
    let garp = pcap_frames(&pcap).iter().any(|(_, f)| {
        f.len() >= 42
            && f[6..12] == mac[..]
            && f[12..14] == [0x08, 0x06]
            && f[28..32] == ip.octets()
            && f[38..42] == ip.octets()
    });
    assert!(garp, "no gratuitous ARP from the guest on vm2");
    drop(m);
    let _ = server.kill();
    let _ = server.wait();
    stop(lab);
}

/// nfv stopped and started again while a migration runs (both QEMUs hold their sockets;
/// nfv, in client mode, reconnects): the migration completes, or fails with the guest
/// still running on the source; either way its pings resume where it runs.
#[test]
fn a_migration_survives_nfv_restarting_during_it() {
    if !vm::vm_available(&["python3"]) {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vmlab-migrate-restart");
    let (path, name) = topology(dir.path(), |t| t);
    let lab = start(&path, &name);
    let mut m = Migration::boot(dir.path(), 1);
    // 20 MB/s: the guest's ~70 MB take a few seconds, and nfv goes away one second in.
    let mut lab = Some(lab);
    let r = m.run(Some(20 << 20), || {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(l) = lab.take() {
            stop(l);
        }
        lab = Some(start(&path, &name));
    });
    let lab = lab.expect("nfv runs again");
    let status = r["status"].as_str().unwrap_or_default().to_string();
    eprintln!("migration with nfv restarted during it: {r}");
    assert!(
        status == "completed" || !r.to_string().contains("Failed to connect"),
        "the migration never started: {r}"
    );
    // Where the guest runs now, its pings resume (the lab host is a new one: nfv made it
    // anew).
    let (runs, other, qmp) = if status == "completed" {
        (&mut m.dst, &mut m.src, &m.dst_qmp)
    } else {
        (&mut m.src, &mut m.dst, &m.src_qmp)
    };
    let state = vm::Qmp::connect(qmp).run("query-status", serde_json::json!({}));
    assert_eq!(state["status"], "running", "{status}: {state}");
    let from = runs.lines().len();
    expect_replies(runs, from, 5, &format!("{status}, after nfv restarted"));
    other.kill();
    drop(m);
    stop(lab);
}
