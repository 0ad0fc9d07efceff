//! End to end: IPv6 through nfv's router with real Linux hosts
//! (`topologies/dual-stack-lab.yaml`). Host a configures itself from the router's
//! advertisements (SLAAC: its address and default route), b and c have static addresses;
//! pings cross the router both ways and stay on the link through the switch; the router
//! answers with time exceeded, packet too big (after which the host's own fragmentation
//! gets through), no route; TCP crosses the 1280-byte hop; `nfv show` lists the IPv6
//! routes and neighbours. An IPv4-only topology keeps its hosts' IPv6 off.

mod common;

use std::time::{Duration, Instant};

use common::{drop_count, iperf3_client, lab_available, show_json, Lab};

/// Sends a router solicitation on eth0 from a raw ICMPv6 socket (the kernel fills in the
/// checksum) and prints what the first router advertisement that comes back says: its
/// lifetime, then its prefix, MTU and DNS server options, a line each.
const SOLICIT: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.settimeout(10)
s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, socket.if_nametoindex("eth0")))
while True:
    m, a = s.recvfrom(4096)
    if m[0] == 134:
        break
print("lifetime", struct.unpack("!H", m[6:8])[0])
o = 16
while o + 2 <= len(m) and m[o + 1]:
    t, n = m[o], m[o + 1] * 8
    b = m[o:o + n]
    if t == 3:
        print("prefix", socket.inet_ntop(socket.AF_INET6, b[16:32]) + "/" + str(b[2]), "flags", hex(b[3]))
    if t == 5:
        print("mtu", struct.unpack("!I", b[4:8])[0])
    if t == 25:
        for i in range(8, n, 16):
            print("rdnss", socket.inet_ntop(socket.AF_INET6, b[i:i + 16]))
    o += n
"#;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `ping -6` from `host` with `args` before the address; its whole output.
fn ping6(lab: &Lab, host: &str, args: &[&str], to: &str) -> String {
    let mut a = vec!["-6", "-n", "-W", "1"];
    a.extend_from_slice(args);
    a.push(to);
    text(&lab.exec(host, "ping", &a))
}

/// Host `host`'s global IPv6 address in `prefix` (like `2001:db8:1:`) on eth0, from router
/// advertisements, waiting up to 15 s for it (and its duplicate address detection).
fn wait_slaac(lab: &Lab, host: &str, prefix: &str) -> String {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let out = lab.exec(
            host,
            "ip",
            &["-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"],
        );
        let t = String::from_utf8_lossy(&out.stdout).into_owned();
        let found = t.lines().find(|l| !l.contains("tentative")).and_then(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .filter(|a| a.starts_with(prefix))
                .map(str::to_string)
        });
        if let Some(a) = found {
            return a;
        }
        assert!(
            Instant::now() < end,
            "{host} got no address in {prefix}: from SLAAC: {t}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_dual_stack_router_serves_slaac_hosts_answers_icmpv6_errors_and_carries_tcp() {
    if !lab_available(&["ping", "python3", "iperf3", "traceroute", "tracepath"]) {
        return;
    }
    let lab = Lab::start("dual-stack-lab.yaml", "ds");

    // SLAAC from the router's advertisements: an address in lan's /64, and the router's
    // link-local address as the default route.
    let a = wait_slaac(&lab, "a", "2001:db8:1:");
    let route = text(&lab.exec("a", "ip", &["-6", "route", "show", "default"]));
    assert!(
        route.contains("via fe80::") && route.contains("proto ra"),
        "a's default route: {route}"
    );
    // What the advertisement says, as a solicitation brings it.
    let ra = text(&lab.exec("a", "timeout", &["15", "python3", "-c", SOLICIT]));
    for want in [
        "lifetime 1800",
        "prefix 2001:db8:1::/64 flags 0xc0",
        "mtu 1500",
        "rdnss 2001:db8:1::53",
    ] {
        assert!(ra.contains(want), "{want} in the advertisement: {ra}");
    }

    // Across the router both ways (neighbour discovery on each side), on the link through
    // the switch, and to the router's own addresses.
    for (from, to) in [
        ("a", "2001:db8:2::10"),
        ("c", a.as_str()),
        ("a", "2001:db8:1::11"),
        ("c", "2001:db8:1::11"),
        ("b", "2001:db8:2::1"),
        ("a", "2001:db8:1::1"),
    ] {
        let out = ping6(&lab, from, &["-c", "2", "-i", "0.2"], to);
        assert!(out.contains(" 0% packet loss"), "{from} -> {to}: {out}");
    }
    let out = ping6(&lab, "a", &["-c", "1"], "ff02::2%eth0");
    assert!(
        out.contains("bytes from fe80::"),
        "all-routers answers from its link-local address: {out}"
    );

    // traceroute shows the router as the first hop; tracepath finds the far side's
    // smaller MTU (the router's packet too big), before anything else taught a it.
    let out = text(&lab.exec(
        "a",
        "traceroute",
        &["-6", "-n", "-q", "1", "-w", "2", "2001:db8:2::10"],
    ));
    let hops: Vec<&str> = out.lines().skip(1).collect();
    assert!(
        hops.first().is_some_and(|h| h.contains("2001:db8:1::1 "))
            && hops.get(1).is_some_and(|h| h.contains("2001:db8:2::10 ")),
        "traceroute -6: {out}"
    );
    let out = text(&lab.exec("a", "tracepath", &["-6", "-n", "2001:db8:2::10"]));
    assert!(
        out.contains("pmtu 1280") && out.contains("2001:db8:2::10"),
        "tracepath -6: {out}"
    );
    lab.exec("a", "ip", &["-6", "route", "flush", "cache"]);

    // ICMPv6 errors from the router, as ping reads them.
    let out = ping6(&lab, "a", &["-c", "1", "-t", "1"], "2001:db8:2::10");
    assert!(
        out.contains("From 2001:db8:1::1") && out.contains("Time exceeded"),
        "{out}"
    );
    let out = ping6(&lab, "a", &["-c", "1"], "2001:db8:99::1");
    assert!(out.contains("Destination unreachable: No route"), "{out}");
    let out = ping6(
        &lab,
        "a",
        &["-c", "1", "-s", "1400", "-M", "do"],
        "2001:db8:2::10",
    );
    assert!(out.contains("Packet too big: mtu=1280"), "{out}");
    // a learnt the path's MTU: now its own fragments of 1280 bytes get through.
    let out = ping6(
        &lab,
        "a",
        &["-c", "2", "-i", "0.2", "-s", "1400"],
        "2001:db8:2::10",
    );
    assert!(out.contains(" 0% packet loss"), "fragmented by a: {out}");

    // TCP over IPv6 across the 1280-byte hop.
    let server = lab.spawn("c", "iperf3", &["-s", "-1", "-B", "2001:db8:2::10"]);
    let report = iperf3_client(&lab, "a", &["-6", "-c", "2001:db8:2::10", "-t", "2"]);
    let mut server = server;
    let _ = server.wait();
    let bytes = report["end"]["sum_received"]["bytes"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(bytes > 1e6, "TCP over IPv6 moved {bytes} bytes: {report}");

    // The tables list IPv6.
    let routes = show_json(&lab, "routes").to_string();
    for want in ["2001:db8:2::/64", "2001:db8:1::1/128"] {
        assert!(routes.contains(want), "{want} in {routes}");
    }
    let neighbors = show_json(&lab, "neighbors");
    let c_row = neighbors
        .as_array()
        .and_then(|r| r.iter().find(|r| r["ip"] == "2001:db8:2::10"))
        .unwrap_or_else(|| panic!("c in {neighbors}"));
    assert!(
        ["reachable", "stale", "delay", "probe"].contains(&c_row["state"].as_str().unwrap_or("")),
        "{c_row}"
    );

    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    for reason in ["ttl_exceeded", "too_big", "no_route"] {
        assert!(drop_count(&out, reason) >= 1, "{reason}: {out}");
    }
}

/// An IPv4-only topology's hosts have IPv6 off, so they send nothing IPv6 into the
/// dataplane; `ipv6: true` turns it on for one host.
#[test]
fn hosts_of_an_ipv4_only_topology_keep_ipv6_off_unless_they_ask() {
    if !lab_available(&["ping"]) {
        return;
    }
    let lab = Lab::start_edited("switch-lab.yaml", "v6off", |t, _| {
        t.replace("h2: {", "h2: { ipv6: true,")
    });
    let sysctl = |host: &str| {
        text(&lab.exec(host, "sysctl", &["-n", "net.ipv6.conf.eth0.disable_ipv6"]))
            .trim()
            .to_string()
    };
    assert_eq!(sysctl("h1"), "1");
    assert_eq!(sysctl("h2"), "0");
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
}

/// A stateful firewall between the hosts' switch and the router, with its default inbound
/// policy (established and related pass, the rest is dropped): IPv6 still works for the
/// hosts behind it, because what RFC 4890 says must pass does (router advertisements for
/// SLAAC, neighbor discovery, packet too big), replies to their own flows come back, and a
/// host outside cannot open anything inside.
#[test]
fn a_default_drop_firewall_keeps_ipv6_working_inside_and_closed_from_outside() {
    if !lab_available(&["ping", "python3", "curl"]) {
        return;
    }
    let lab = Lab::start_edited("dual-stack-lab.yaml", "dsfw", |t, _| {
        t.replace(
            "  sw: { kind: switch }",
            "  sw: { kind: switch }\n  fw: { kind: firewall }",
        )
        .replace("  - [sw, r.lan]", "  - [sw, fw, r.lan]")
    });
    let a = wait_slaac(&lab, "a", "2001:db8:1:");
    let out = ping6(&lab, "a", &["-c", "2", "-i", "0.2"], "2001:db8:2::10");
    assert!(
        out.contains(" 0% packet loss"),
        "a -> c through the firewall: {out}"
    );
    let out = ping6(
        &lab,
        "a",
        &["-c", "1", "-s", "1400", "-M", "do"],
        "2001:db8:2::10",
    );
    assert!(
        out.contains("Packet too big: mtu=1280"),
        "packet too big passes inbound: {out}"
    );
    let out = ping6(&lab, "c", &["-c", "2", "-i", "0.2"], &a);
    assert!(
        out.contains("100% packet loss"),
        "c may not open a flow to a: {out}"
    );

    // A web page over IPv6 from inside to outside; none the other way. (Ports inside the
    // lab's own namespaces.)
    let mut web_c = lab.spawn(
        "c",
        "python3",
        &["-m", "http.server", "8080", "-b", "2001:db8:2::10"],
    );
    let mut web_a = lab.spawn("a", "python3", &["-m", "http.server", "8080", "-b", &a]);
    let curl = |from: &str, url: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = lab.exec(
                from,
                "curl",
                &[
                    "-6",
                    "-s",
                    "-m",
                    "3",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    url,
                ],
            );
            let code = String::from_utf8_lossy(&o.stdout).to_string();
            // A server still starting refuses (curl's 7); retried, as nothing else is.
            if code == "200" || o.status.code() != Some(7) || Instant::now() > deadline {
                return (code, o.status.code());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let (code, _) = curl("a", "http://[2001:db8:2::10]:8080/");
    assert_eq!(code, "200", "curl -6 from a to c through the firewall");
    // Inside, a's server answers its own link (b reaches it without the firewall)...
    let (code, _) = curl("b", &format!("http://[{a}]:8080/"));
    assert_eq!(code, "200", "a's server answers on its link");
    // ...but a connection from outside times out: its SYN is dropped (curl's 28).
    let (code, status) = curl("c", &format!("http://[{a}]:8080/"));
    assert!(
        code != "200" && status == Some(28),
        "c may not connect to a: http {code}, curl exit {status:?}"
    );
    let _ = web_c.kill();
    let _ = web_a.kill();
    let _ = web_c.wait();
    let _ = web_a.wait();

    // IPv4 in the same lab keeps working through the same firewall.
    let (sent, got) = lab.ping("a", "10.2.0.10", 2);
    assert_eq!((sent, got), (2, 2), "IPv4 a -> c");

    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
    assert!(drop_count(&out, "fw_denied") >= 2, "{out}");
}
