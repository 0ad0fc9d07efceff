//! End to end: broken frames sent into a TAP are counted and dropped, and the dataplane
//! keeps forwarding.

mod common;

use common::{drop_count, lab_available, Lab};

/// Sends hand-made frames from `eth0` of the namespace through an AF_PACKET socket.
const SEND_RAW: &str = r#"
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
bcast = b"\xff" * 6
src = bytes.fromhex("020000000099")
# 802.1Q type with the tag cut off: truncated (runt)
s.send(bcast + src + b"\x81\x00" + b"\x00")
# a multicast source address: bad header
s.send(bcast + bytes.fromhex("030000000001") + b"\x08\x00" + bytes(46))
# a tagged frame on an access attachment: vlan denied
s.send(bcast + src + b"\x81\x00\x00\x0a\x08\x00" + bytes(46))
print("sent")
"#;

/// Send the hand-made frames from `host`, then one oversized frame after raising its MTU
/// past the port's 1500 (its side of the port takes it, so the frame reaches nfv, which must
/// drop it), and check that small frames still pass.
fn send_broken_frames(lab: &Lab, host: &str) {
    let out = lab.exec(host, "python3", &["-c", SEND_RAW]);
    assert!(
        out.status.success(),
        "raw send from {host} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mtu = lab.exec(host, "ip", &["link", "set", "eth0", "mtu", "4000"]);
    assert!(mtu.status.success());
    let (_, got) = lab.ping(host, "10.10.0.2", 1);
    let big = lab.exec(
        host,
        "ping",
        &[
            "-n",
            "-c",
            "2",
            "-W",
            "1",
            "-s",
            "3000",
            "-M",
            "do",
            "10.10.0.2",
        ],
    );
    assert!(
        !big.status.success(),
        "an oversized frame from {host} got through"
    );
    assert_eq!(got, 1, "small frames from {host} still pass");
}

#[test]
fn truncated_oversized_and_malformed_frames_are_counted_and_dropped() {
    if !lab_available(&["ping", "python3"]) {
        return;
    }
    // h1 behind a TAP device, h3 behind a veth pair (the default).
    let lab = Lab::start_edited("switch-lab.yaml", "malformed", |t, _| {
        t.replace(
            "p1: { kind: tap, host: h1 }",
            "p1: { kind: tap, host: h1, device: tap }",
        )
    });
    assert_eq!(lab.ping("h1", "10.10.0.2", 2), (2, 2));
    send_broken_frames(&lab, "h1");
    send_broken_frames(&lab, "h3");

    // And it still forwards, both ways.
    assert_eq!(lab.ping("h1", "10.10.0.3", 3), (3, 3));
    assert_eq!(lab.ping("h3", "10.10.0.1", 3), (3, 3));

    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    // The runt only from the TAP: a veth's receive path frees an 802.1Q frame whose tag is
    // cut off (while taking the tag off) before any socket sees it, and counts it nowhere.
    assert_eq!(drop_count(&out, "runt"), 1, "{out}");
    assert_eq!(drop_count(&out, "bad_header"), 2, "{out}");
    assert_eq!(drop_count(&out, "vlan_denied"), 2, "{out}");
    assert!(drop_count(&out, "oversize") >= 4, "{out}");
}

#[test]
fn a_vanished_tap_is_a_counted_drop_and_the_rest_keeps_forwarding() {
    if !lab_available(&["ping"]) {
        return;
    }
    let lab = Lab::start("switch-lab.yaml", "vanish");
    assert_eq!(lab.ping("h1", "10.10.0.4", 1), (1, 1));
    // Deleting h4's namespace destroys the TAP device nfv holds open.
    let del = std::process::Command::new("ip")
        .args(["netns", "del", &lab.netns("h4")])
        .status()
        .expect("ip netns del");
    assert!(del.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(lab.ping("h1", "10.10.0.4", 2).1, 0, "h4 is gone");
    assert_eq!(
        lab.ping("h1", "10.10.0.2", 3),
        (3, 3),
        "the others still forward"
    );
    assert_eq!(lab.ping("h3", "10.10.0.1", 3), (3, 3));
    let (ok, out) = lab.stop();
    assert!(ok, "nfv must stop cleanly with a port gone:\n{out}");
    assert!(drop_count(&out, "port_down") >= 1, "{out}");
}
