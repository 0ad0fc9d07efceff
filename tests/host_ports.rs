//! End to end: a lab host's port, as a veth pair nfv serves through packet rings (the
//! default) and as a TAP device (`device: tap`). Frames a host sends while nfv cannot read
//! them are counted as `rx_miss`, root's own stack never sees a host's frames, and TCP
//! crosses between the two kinds of port.

mod common;

use common::{lab_available, Lab};
use std::process::Command;
use std::time::Duration;

/// h1 behind a TAP device, the others behind veth pairs.
fn start(base: &str) -> Lab {
    Lab::start_edited("switch-lab.yaml", base, |t, _| {
        t.replace(
            "p1: { kind: tap, host: h1 }",
            "p1: { kind: tap, host: h1, device: tap }",
        )
    })
}

/// `nfv show ports --json`: (rx packets, rx miss) of `port`, and its kind.
fn port_counters(lab: &Lab, port: &str) -> (u64, u64, String) {
    let row = common::port_row(lab, port);
    let n = |k: &str| {
        row[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no number {k} in {row}"))
    };
    (
        n("rx_packets"),
        n("rx_miss"),
        row["kind"].as_str().unwrap_or_default().to_string(),
    )
}

/// Sends `n` 60-byte frames to a MAC nobody has out of `eth0`, as fast as a raw socket can.
fn flood(n: u32) -> String {
    format!(
        r#"
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
f = bytes.fromhex("020000000099" "020000000077" "88b5") + bytes(46)
for _ in range({n}):
    s.send(f)
"#
    )
}

fn signal(lab: &Lab, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &lab.pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} nfv");
}

#[test]
fn frames_sent_while_nfv_cannot_read_them_are_counted_as_rx_miss() {
    if !lab_available(&["ping", "python3"]) {
        return;
    }
    const SENT: u64 = 4000;
    let lab = start("rxmiss");
    assert_eq!(lab.ping("h1", "10.10.0.3", 1), (1, 1));
    let before: Vec<_> = ["p1", "p3"]
        .iter()
        .map(|p| port_counters(&lab, p))
        .collect();
    assert_eq!(before[0].2, "tap");
    assert_eq!(before[1].2, "veth");

    // While nfv is stopped nothing reads the TAP's queue (500 frames) or the veth's ring
    // (2048 slots): the rest of each host's burst is lost on the host side.
    signal(&lab, "-STOP");
    let sent: Vec<_> = ["h1", "h3"]
        .iter()
        .map(|h| lab.exec(h, "python3", &["-c", &flood(SENT as u32)]))
        .collect();
    signal(&lab, "-CONT");
    for (h, out) in ["h1", "h3"].iter().zip(&sent) {
        assert!(
            out.status.success(),
            "flood from {h}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Counters of the host side are read every 100 ms.
    std::thread::sleep(Duration::from_millis(500));

    for (port, (rx0, miss0, _)) in ["p1", "p3"].iter().zip(&before) {
        let (rx, miss, kind) = port_counters(&lab, port);
        let (rx, miss) = (rx - rx0, miss - miss0);
        assert!(
            miss >= SENT / 4,
            "{kind} port {port}: only {miss} of {SENT} frames missed, {rx} read"
        );
        // Every frame is either read or counted missed; a few more (a router solicitation)
        // may have been sent meanwhile.
        assert!(
            (SENT..SENT + 10).contains(&(rx + miss)),
            "{kind} port {port}: {rx} read + {miss} missed, {SENT} sent"
        );
    }
    // And forwarding goes on.
    assert_eq!(lab.ping("h1", "10.10.0.3", 2), (2, 2));
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    assert!(out.contains("rx miss"), "{out}");
}

/// Runs `f` with a veth pair `a` (in root's namespace) <-> `b` (in namespace `ns`), both
/// removed afterwards.
struct Pair {
    a: String,
    ns: String,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let id = std::process::id() % 100_000;
        let (a, ns) = (format!("nfvt{id}{tag}"), format!("nfv-test-{id}-{tag}"));
        let ok = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("ip");
            assert!(st.success(), "ip {args:?}");
        };
        ok(&["netns", "add", &ns]);
        let pair = Pair { a, ns };
        ok(&[
            "link", "add", &pair.a, "type", "veth", "peer", "name", "eth0", "netns", &pair.ns,
        ]);
        ok(&["link", "set", &pair.a, "up"]);
        pair
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Whether a host behind `eth0` in `run`'s namespace gets an ARP answer for `addr`.
fn arp_answered(run: impl Fn(&[&str]) -> std::process::Output, addr: &str) -> bool {
    let route = run(&[
        "ip",
        "route",
        "replace",
        &format!("{addr}/32"),
        "dev",
        "eth0",
    ]);
    assert!(route.status.success(), "route to {addr}");
    // The ping itself goes unanswered (root routes its reply elsewhere); the ARP does not.
    let _ = run(&["ping", "-n", "-c", "2", "-W", "1", addr]);
    let neigh = run(&["ip", "neigh", "show", addr, "dev", "eth0"]);
    let text = String::from_utf8_lossy(&neigh.stdout).into_owned();
    text.contains("lladdr")
}

#[test]
fn roots_stack_never_sees_a_lab_hosts_frames() {
    if !lab_available(&["ping"]) {
        return;
    }
    // An address of root's own, which root's ARP answers on every interface it has.
    let id = std::process::id() % 200 + 20;
    let mine = format!("10.255.{id}.1");
    let local = Pair::new("l");
    let add = Command::new("ip")
        .args(["addr", "add", &format!("{mine}/32"), "dev", &local.a])
        .status()
        .expect("ip addr");
    assert!(add.success());

    // The control: a namespace joined to root by a plain veth pair is answered.
    let plain = Pair::new("p");
    let up = plain.exec(&["ip", "link", "set", "eth0", "up"]);
    assert!(up.status.success());
    let addr = plain.exec(&["ip", "addr", "add", "10.10.0.9/24", "dev", "eth0"]);
    assert!(addr.status.success());
    assert!(
        arp_answered(|a| plain.exec(a), &mine),
        "root's stack did not answer ARP over a plain veth pair: the check below would prove nothing"
    );

    // A lab host behind nfv's veth port is not: its frames reach nfv alone.
    let lab = start("rootstack");
    assert!(
        !arp_answered(|a| lab.exec("h2", a[0], &a[1..]), &mine),
        "root's stack answered a lab host's ARP"
    );
    assert_eq!(lab.ping("h2", "10.10.0.3", 1), (1, 1));
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
}

#[test]
fn tcp_crosses_between_a_tap_host_and_a_veth_host() {
    if !lab_available(&["iperf3"]) {
        return;
    }
    let lab = start("hosttcp");
    let mut server = lab.spawn("h3", "iperf3", &["-s", "-1", "-B", "10.10.0.3"]);
    let v = common::iperf3_client(
        &lab,
        "h1",
        &["-c", "10.10.0.3", "-n", "20M", "--connect-timeout", "1000"],
    );
    let _ = server.kill();
    let _ = server.wait();
    // The receiver's count is taken when the sender ends, with the last segments still in
    // flight; every byte was sent and most had arrived.
    let sent = v["end"]["sum_sent"]["bytes"].as_f64().unwrap_or(0.0);
    let got = v["end"]["sum_received"]["bytes"].as_f64().unwrap_or(0.0);
    assert!(
        sent >= 20.0 * 1024.0 * 1024.0 && got >= 10e6,
        "h1 sent {sent} bytes, h3 received {got}: {v}"
    );
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
}
