//! End to end: TCP super-frames (the host kernel's TSO with checksum offload, see
//! `nfv_dataplane::offload`) from lab hosts behind veth pairs and TAP devices cross a switch
//! as they are, are cut into valid frames in software for a host whose port has no offloads
//! (whose kernel then verifies every checksum), and cross routers, the firewall and NAT with
//! their begun checksums kept right. Each transfer sends random bytes and compares their SHA-256 on
//! both ends; a segment with a wrong checksum would be dropped by the receiving kernel
//! again at every retransmission, and the transfer would never finish.

mod common;

use common::{lab_available, Lab, TCP_RECEIVER};

/// The sender: connects to ADDR:PORT (retrying while the server is not up), sends MB
/// megabytes of random bytes, prints the byte count and SHA-256. With a fourth argument
/// CHUNK, it sends that many bytes at a time with Nagle off and a millisecond between
/// writes, so each write leaves as a super-frame of its own (of two segments for 1870).
const CLIENT: &str = r#"
import hashlib, os, socket, sys, time
addr, port, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
for _ in range(100):
    try:
        s = socket.create_connection((addr, port), timeout=30)
        break
    except OSError:
        time.sleep(0.1)
if chunk < 1 << 20:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
h, n = hashlib.sha256(), 0
while n < mb << 20:
    b = os.urandom(min(chunk, (mb << 20) - n))
    s.sendall(b)
    h.update(b)
    n += len(b)
    if chunk < 1 << 20:
        time.sleep(0.001)
s.close()
print(n, h.hexdigest())
"#;

/// Send `mb` MB from `from` to `to` (at `addr`) over TCP, within a minute; returns what
/// each end printed.
fn transfer(lab: &Lab, from: &str, to: &str, addr: &str, mb: u32) -> (String, String) {
    transfer_in(lab, from, to, addr, mb, 1 << 20)
}

/// [`transfer`], written `chunk` bytes at a time (see [`CLIENT`]).
fn transfer_in(
    lab: &Lab,
    from: &str,
    to: &str,
    addr: &str,
    mb: u32,
    chunk: u32,
) -> (String, String) {
    let port = "5001";
    // Bounded: a transfer that stalls (segments the receiver keeps refusing) fails.
    let server = lab.spawn_piped(
        to,
        "timeout",
        &["60", "python3", "-c", TCP_RECEIVER, addr, port],
    );
    let client = lab.exec(
        from,
        "timeout",
        &[
            "60",
            "python3",
            "-c",
            CLIENT,
            addr,
            port,
            &mb.to_string(),
            &chunk.to_string(),
        ],
    );
    let got = server.wait_with_output().expect("server");
    let (sent, received) = (
        String::from_utf8_lossy(&client.stdout).trim().to_string(),
        String::from_utf8_lossy(&got.stdout).trim().to_string(),
    );
    assert!(
        client.status.success() && got.status.success(),
        "transfer {from} -> {to}: client {sent} {}; server {received} {}",
        String::from_utf8_lossy(&client.stderr),
        String::from_utf8_lossy(&got.stderr)
    );
    (sent, received)
}

/// (packets, bytes) a port received (`rx`) or sent.
fn traffic(lab: &Lab, port: &str, rx: bool) -> (u64, u64) {
    let row = common::port_row(lab, port);
    let dir = if rx { "rx" } else { "tx" };
    let n = |k: String| row[&k].as_u64().unwrap_or_else(|| panic!("{k} in {row}"));
    (n(format!("{dir}_packets")), n(format!("{dir}_bytes")))
}

fn available() -> bool {
    lab_available(&["python3"])
}

/// Asserts that `port` moved frames of more than 8000 bytes on average (super-frames) in
/// direction `rx` (or sent).
fn assert_super_frames(lab: &Lab, port: &str, rx: bool) {
    let (packets, bytes) = traffic(lab, port, rx);
    assert!(
        bytes / packets.max(1) > 8000,
        "{port} {} super-frames: {bytes} bytes in {packets} frames",
        if rx { "received" } else { "sent" }
    );
}

#[test]
fn super_frames_cross_a_switch_whole_and_are_cut_for_a_host_without_offloads() {
    if !available() {
        return;
    }
    // h1 and h2 behind veth pairs (the default), h3 behind a TAP device with the
    // virtio-net header, h4 behind a veth pair without offloads.
    let lab = Lab::start_edited("switch-lab.yaml", "offl", |t, _| {
        t.replace(
            "p3: { kind: tap, host: h3 }",
            "p3: { kind: tap, host: h3, device: tap }",
        )
        .replace(
            "p4: { kind: tap, host: h4 }",
            "p4: { kind: tap, host: h4, offloads: false }",
        )
    });
    assert_eq!(lab.ping("h1", "10.10.0.2", 1), (1, 1));
    let (sent, received) = transfer(&lab, "h1", "h2", "10.10.0.2", 64);
    assert_eq!(sent, received, "h1 -> h2: every byte, in order");
    assert_super_frames(&lab, "p1", true);
    // h2's kernel took them as they were.
    assert_super_frames(&lab, "p2", false);
    assert!(traffic(&lab, "p2", false).1 >= 64 << 20);

    // Super-frames of two short segments (1870 bytes: a little more than a small buffer
    // holds, less than a ring slot) cross whole too, on ports without jumbo buffers.
    let (sent, received) = transfer_in(&lab, "h1", "h2", "10.10.0.2", 1, 1870);
    assert_eq!(sent, received, "h1 -> h2 in two-segment writes");

    // A TAP host takes super-frames and hands them over too.
    let (sent, received) = transfer(&lab, "h1", "h3", "10.10.0.3", 32);
    assert_eq!(sent, received, "h1 -> h3: every byte, in order");
    assert_super_frames(&lab, "p3", false);
    let (sent, received) = transfer(&lab, "h3", "h2", "10.10.0.2", 32);
    assert_eq!(sent, received, "h3 -> h2");
    assert_super_frames(&lab, "p3", true);

    // To the host without offloads, every super-frame is cut into frames of its MTU,
    // checksums done.
    let (sent, received) = transfer(&lab, "h1", "h4", "10.10.0.4", 32);
    assert_eq!(sent, received, "h1 -> h4: every byte, in order");
    let (packets, bytes) = traffic(&lab, "p4", false);
    assert!(bytes >= 32 << 20, "{bytes}");
    assert!(
        bytes / packets <= 1514,
        "h4 got whole frames only: {bytes} bytes in {packets} frames"
    );
    // And back: its whole frames reach a veth host and a TAP host.
    let (sent, received) = transfer(&lab, "h4", "h1", "10.10.0.1", 16);
    assert_eq!(sent, received, "h4 -> h1");
    let (sent, received) = transfer(&lab, "h4", "h3", "10.10.0.3", 16);
    assert_eq!(sent, received, "h4 -> h3");
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    // Every super-frame was taken whole, also those of two segments only.
    for reason in ["bad_header", "oversize", "no_buffers"] {
        assert_eq!(common::drop_count(&out, reason), 0, "{reason}: {out}");
    }
}

#[test]
fn super_frames_cross_routers_a_firewall_and_nat_with_their_checksums_right() {
    if !available() {
        return;
    }
    // nas (veth) -> the LAN switch, router, firewall, NAT, a second router -> web behind a
    // TAP device without offloads, whose kernel checks each segment's checksum after NAT
    // changed the source address in the begun one.
    let lab = Lab::start_edited("home-gateway.yaml", "offgw", |t, _| {
        t.replace(
            "web0: { kind: tap, host: web }",
            "web0: { kind: tap, host: web, device: tap, offloads: false }",
        )
    });
    assert_eq!(lab.ping("nas", "198.51.100.10", 2).1, 2);
    let (sent, received) = transfer(&lab, "nas", "web", "198.51.100.10", 32);
    assert_eq!(sent, received, "nas -> web through NAT");
    assert_super_frames(&lab, "nas0", true);
    let (packets, bytes) = traffic(&lab, "web0", false);
    assert!(bytes / packets <= 1514, "{bytes} bytes in {packets} frames");
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
}

#[test]
fn a_router_in_front_of_a_smaller_mtu_answers_super_frames_by_their_segments() {
    if !available() {
        return;
    }
    // a sends super-frames of 8948-byte segments (MTU 9000) to c, whose own MTU is 9000
    // too (its MSS does not hold a back), but the router's interface to c keeps 1500
    // bytes: it answers "fragmentation needed" for the super-frame's segments, a's TCP
    // takes the smaller size, and the transfer completes. To b (MTU 9000 behind a TAP
    // without offloads) they are cut at 8948.
    let lab = Lab::start_edited("jumbo-lab.yaml", "offmtu", |t, _| {
        t.replace(
            "pc: { kind: tap, host: c }",
            "pc: { kind: tap, host: c, mtu: 9000 }",
        )
        .replace(
            "pb: { kind: tap, host: b, mtu: 9000, device: tap }",
            "pb: { kind: tap, host: b, mtu: 9000, device: tap, offloads: false }",
        )
    });
    assert_eq!(lab.ping("a", "10.3.0.10", 2).1, 2);
    let (sent, received) = transfer(&lab, "a", "c", "10.3.0.10", 16);
    assert_eq!(sent, received, "a -> c");
    let (sent, received) = transfer(&lab, "a", "b", "10.1.0.11", 16);
    assert_eq!(sent, received, "a -> b");
    let (packets, bytes) = traffic(&lab, "pb", false);
    assert!(
        bytes / packets > 4000 && bytes / packets <= 9018,
        "b got 9000-byte frames: {bytes} bytes in {packets} frames"
    );
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    assert!(common::drop_count(&out, "too_big") > 0, "{out}");
}
