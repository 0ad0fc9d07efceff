//! End to end: jumbo frames (MTU 9000) between a host behind a veth pair and a host behind
//! a TAP device, through a switch and a router, and "fragmentation needed" from the router
//! where the next hop keeps 1500 bytes, or fragments when the datagram allows them
//! (`topologies/jumbo-lab.yaml`).

mod common;

use common::{drop_count, lab_available, Lab};

/// Two pings of `size` bytes of payload from `host` to `to`, with path-MTU discovery
/// `pmtu` (`do`: DF set, `dont`), each waited for `wait` seconds.
fn ping(
    lab: &Lab,
    host: &str,
    size: &str,
    pmtu: &str,
    wait: &str,
    to: &str,
) -> std::process::Output {
    lab.exec(
        host,
        "ping",
        &["-n", "-c", "2", "-W", wait, "-s", size, "-M", pmtu, to],
    )
}

/// `ping -s 8972 -M do` (one 9000-byte IPv4 packet that may not be fragmented) from `host`.
fn big_ping(lab: &Lab, host: &str, to: &str) -> std::process::Output {
    ping(lab, host, "8972", "do", "1", to)
}

#[test]
fn jumbo_frames_cross_a_9000_byte_path_and_a_1500_byte_hop_answers_frag_needed() {
    if !lab_available(&["ping"]) {
        return;
    }
    let lab = Lab::start("jumbo-lab.yaml", "jumbo");
    // Without DF the router cuts the datagram for c's 1500-byte segment (RFC 1812), and
    // c's reply comes back in the fragments c's own stack made. First, while a knows no
    // smaller path MTU to c (a "fragmentation needed" below teaches it one, and a would
    // then fragment itself).
    let out = ping(&lab, "a", "3000", "dont", "2", "10.3.0.10");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("2 received"),
        "3028-byte ping without DF through the 1500-byte hop:\n{text}"
    );
    // veth host -> TAP host, TAP host -> veth host, and the router's own address.
    for (from, to) in [("a", "10.1.0.11"), ("b", "10.1.0.10"), ("a", "10.1.0.1")] {
        let out = big_ping(&lab, from, to);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("2 received"),
            "9000-byte ping {from} -> {to}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("8980 bytes from"), "{text}");
    }
    // c's segment keeps 1500 bytes: the router answers with the next hop's MTU.
    let out = big_ping(&lab, "a", "10.3.0.10");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("From 10.1.0.1")
            && text.contains("Frag needed")
            && text.contains("mtu = 1500"),
        "{text}"
    );
    // Record route (RFC 1812 5.3.13): the router puts its outgoing address in each way.
    let out = lab.exec(
        "a",
        "ping",
        &["-n", "-c", "1", "-W", "2", "-R", "10.3.0.10"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let route: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("RR:"))
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim_start_matches("RR:").trim())
        .collect();
    assert!(
        route.contains(&"10.3.0.1") && route.contains(&"10.1.0.1"),
        "the router's addresses in the recorded route:\n{text}"
    );
    // Small packets still pass everywhere.
    assert_eq!(lab.ping("a", "10.3.0.10", 2), (2, 2));
    assert_eq!(lab.ping("c", "10.1.0.11", 2), (2, 2));

    // TCP in 9000-byte segments, veth host to TAP host.
    if lab_available(&["iperf3"]) {
        let mut server = lab.spawn("b", "iperf3", &["-s", "-1", "-B", "10.1.0.11"]);
        let v = common::iperf3_client(
            &lab,
            "a",
            &["-c", "10.1.0.11", "-n", "20M", "--connect-timeout", "1000"],
        );
        let _ = server.kill();
        let _ = server.wait();
        let sent = v["end"]["sum_sent"]["bytes"].as_f64().unwrap_or(0.0);
        assert!(sent >= 20.0 * 1024.0 * 1024.0, "iperf3 a -> b: {v}");
        let mss = v["start"]["tcp_mss_default"].as_f64().unwrap_or(0.0);
        assert!(mss > 8000.0, "segments of a 9000-byte MTU: {v}");
    }

    // Past the port's MTU is still too big: a raises its own to 9200 and is not heard.
    let mtu = lab.exec("a", "ip", &["link", "set", "eth0", "mtu", "9200"]);
    assert!(mtu.status.success());
    let out = ping(&lab, "a", "9100", "do", "1", "10.1.0.11");
    assert!(
        !out.status.success(),
        "a 9128-byte frame crossed a 9000-byte port"
    );

    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    assert!(drop_count(&out, "too_big") >= 1, "{out}");
    assert_eq!(drop_count(&out, "oversize"), 2, "{out}");
    assert_eq!(drop_count(&out, "no_buffers"), 0, "{out}");
}

/// A reload that gives two hosts' ports a jumbo MTU brings the buffers they need: the pool
/// of a topology started without jumbo frames has none.
#[test]
fn a_reload_that_raises_the_mtu_brings_jumbo_buffers() {
    if !lab_available(&["ping"]) {
        return;
    }
    let lab = Lab::start("switch-lab.yaml", "jumboreload");
    assert_eq!(big_ping(&lab, "h1", "10.10.0.2").status.code(), Some(1));
    let path = lab.dir.path().join("switch-lab.yaml");
    let text = std::fs::read_to_string(&path).expect("the topology's copy");
    let jumbo = text
        .replace(
            "p1: { kind: tap, host: h1 }",
            "p1: { kind: tap, host: h1, mtu: 9000 }",
        )
        .replace(
            "p2: { kind: tap, host: h2 }",
            "p2: { kind: tap, host: h2, mtu: 9000, device: tap }",
        );
    assert_ne!(jumbo, text);
    let edited = lab.dir.path().join("jumbo.yaml");
    std::fs::write(&edited, jumbo).expect("write the edited topology");
    let out = std::process::Command::new(common::NFV)
        .args(["reload", edited.to_str().expect("utf-8"), "-t", &lab.name])
        .output()
        .expect("nfv reload");
    assert!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = big_ping(&lab, "h1", "10.10.0.2");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 received"), "after the reload: {text}");
    // h3 kept its 1500 bytes.
    assert_eq!(lab.ping("h3", "10.10.0.1", 1), (1, 1));
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    assert_eq!(drop_count(&out, "no_buffers"), 0, "{out}");
}
