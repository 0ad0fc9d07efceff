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

#[test]
fn truncated_oversized_and_malformed_frames_are_counted_and_dropped() {
    if !lab_available(&["ping", "python3"]) {
        return;
    }
    let lab = Lab::start("switch-lab.yaml", "malformed");
    assert_eq!(lab.ping("h1", "10.10.0.2", 2), (2, 2));

    let out = lab.exec("h1", "python3", &["-c", SEND_RAW]);
    assert!(
        out.status.success(),
        "raw send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Oversized: h1's side of the TAP takes a larger MTU than the port's 1500, so one
    // 3042-byte frame reaches nfv, which must drop it.
    let mtu = lab.exec("h1", "ip", &["link", "set", "eth0", "mtu", "4000"]);
    assert!(mtu.status.success());
    let (_, got) = lab.ping("h1", "10.10.0.2", 1);
    let big = lab.exec(
        "h1",
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
    assert!(!big.status.success(), "an oversized frame got through");
    assert_eq!(got, 1, "small frames still pass");

    // And it still forwards, both ways.
    assert_eq!(lab.ping("h1", "10.10.0.3", 3), (3, 3));
    assert_eq!(lab.ping("h3", "10.10.0.1", 3), (3, 3));

    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    assert_eq!(drop_count(&out, "runt"), 1, "{out}");
    assert_eq!(drop_count(&out, "bad_header"), 1, "{out}");
    assert_eq!(drop_count(&out, "vlan_denied"), 1, "{out}");
    assert!(drop_count(&out, "oversize") >= 2, "{out}");
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
