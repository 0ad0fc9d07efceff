//! End to end through a home gateway (`topologies/home-gateway.yaml`): LAN hosts with DHCP
//! leases reach an "internet" namespace through nfv's router, NAT and stateful firewall
//! with real programs (curl against python's http.server, iperf3, traceroute); an outside
//! client reaches the inside only through the port forward; a reject rule refuses at once.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{drop_count, lab_available, Lab};

const PROGRAMS: &[&str] = &["ping", "busybox", "curl", "iperf3", "python3", "traceroute"];
const WAN: &str = "203.0.113.2";
const WEB: &str = "198.51.100.10";
const NAS: &str = "192.168.1.10";

/// A server in a lab namespace, killed when dropped (also when the test fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// python's http.server on port 80 in `host`, serving a page that names the host; its
/// request log goes to `LOG` in the lab's directory. Waits until it answers.
fn web_server(lab: &Lab, host: &str) -> (Server, std::path::PathBuf) {
    let root = lab.dir.path().join(format!("www-{host}"));
    std::fs::create_dir_all(&root).expect("web root");
    std::fs::write(root.join("index.html"), format!("hello from {host}\n")).expect("page");
    let log = lab.dir.path().join(format!("{host}-http.log"));
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.netns(host),
            "python3",
            "-m",
            "http.server",
            "80",
        ])
        .arg("--directory")
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start http.server");
    let server = Server(child);
    let end = Instant::now() + Duration::from_secs(10);
    while !lab
        .exec(
            host,
            "curl",
            &["-s", "-o", "/dev/null", "http://127.0.0.1:80/"],
        )
        .status
        .success()
    {
        assert!(Instant::now() < end, "http.server in {host} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, log)
}

/// curl `url` from `host`: (exit code, body, stderr).
fn curl(lab: &Lab, host: &str, url: &str, max_time: u32) -> (i32, String, String) {
    let t = max_time.to_string();
    let out = lab.exec(host, "curl", &["-sS", "-m", &t, url]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A number after `key=` in the line of nfv's summary that starts with `prefix`.
fn summary_value(summary: &str, prefix: &str, key: &str) -> u64 {
    summary
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= on the `{prefix}` line of:\n{summary}"))
}

/// A field of iperf3's JSON report, by path.
fn json_number(v: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_f64()
        .unwrap_or_else(|| panic!("no {path:?} in iperf3's report: {v}"))
}

/// iperf3 from `host` to the web server with `args`; its JSON report.
fn iperf3(lab: &Lab, host: &str, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["-c", WEB];
    a.extend_from_slice(args);
    common::iperf3_client(lab, host, &a)
}

fn start() -> Lab {
    let lab = Lab::start_edited("home-gateway.yaml", "home", |text, dir| {
        text.replace(
            "    lease: 1h\n",
            &format!("    lease: 1h\n    leases: {}/dhcp.leases\n", dir.display()),
        )
    });
    lab
}

#[test]
fn lan_hosts_reach_the_internet_through_masquerade_and_the_firewall() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start();
    let alice = lab
        .wait_address("alice", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("alice got no lease; nfv stderr:\n{}", lab.stderr()));
    assert!(alice.starts_with("192.168.1.1"), "{alice}");
    let (_web, web_log) = web_server(&lab, "web");

    // A page from the internet; the server sees the masquerade address, not alice's.
    let (code, body, err) = curl(&lab, "alice", &format!("http://{WEB}/"), 5);
    assert_eq!((code, body.as_str()), (0, "hello from web\n"), "{err}");
    let log = std::fs::read_to_string(&web_log).expect("web log");
    assert!(
        log.lines()
            .any(|l| l.starts_with(&format!("{WAN} ")) && l.contains("GET / ")),
        "the web server should see {WAN}:\n{log}"
    );
    assert!(!log.contains(&alice), "alice's address leaked:\n{log}");

    // Ping through NAT (ICMP identifiers), and traceroute shows the hops beyond it.
    assert_eq!(lab.ping("alice", WEB, 3), (3, 3));
    let out = lab.exec("alice", "traceroute", &["-n", "-q", "1", "-w", "2", WEB]);
    let text = String::from_utf8_lossy(&out.stdout);
    let hops: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(hops, vec!["192.168.1.1", "203.0.113.1", WEB], "{text}");

    // iperf3: 10 s of TCP, then UDP, through router, NAT and firewall.
    let _iperf = Server(
        Command::new("ip")
            .args(["netns", "exec", &lab.netns("web"), "iperf3", "-s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 -s"),
    );
    let tcp = iperf3(&lab, "alice", &["-t", "10"]);
    let received = json_number(&tcp, &["end", "sum_received", "bytes"]);
    let secs = json_number(&tcp, &["end", "sum_received", "seconds"]);
    assert!(secs >= 9.5, "{secs} s");
    assert!(received > 10e6, "only {received} bytes in 10 s");
    println!(
        "iperf3 TCP through the gateway: {:.0} Mbit/s",
        received * 8.0 / secs / 1e6
    );
    let udp = iperf3(&lab, "alice", &["-u", "-b", "20M", "-t", "3"]);
    let packets = json_number(&udp, &["end", "sum", "packets"]);
    let lost = json_number(&udp, &["end", "sum", "lost_percent"]);
    assert!(packets > 1000.0, "{packets} UDP packets");
    assert!(lost < 20.0, "{lost}% of UDP lost");
    println!("iperf3 UDP through the gateway: {packets} packets, {lost}% lost");

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    assert!(
        summary_value(&summary, "nat nat:", "translated") > 10_000,
        "{summary}"
    );
    assert!(
        summary_value(&summary, "nat nat:", "icmp_errors") >= 2,
        "{summary}"
    );
    assert_eq!(
        summary_value(&summary, "nat nat:", "no_ports"),
        0,
        "{summary}"
    );
    assert!(
        summary_value(&summary, "firewall fw:", "connections") >= 3,
        "{summary}"
    );
}

#[test]
fn the_outside_reaches_the_inside_only_through_the_port_forward() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start();
    let bob = lab
        .wait_address("bob", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("bob got no lease; nfv stderr:\n{}", lab.stderr()));
    let (_nas, nas_log) = web_server(&lab, "nas");
    let (_web, _) = web_server(&lab, "web");

    // The forward: visitor -> 203.0.113.2:8080 -> nas:80, and the NAS sees the visitor.
    let (code, body, err) = curl(&lab, "visitor", &format!("http://{WAN}:8080/"), 5);
    assert_eq!((code, body.as_str()), (0, "hello from nas\n"), "{err}");
    let log = std::fs::read_to_string(&nas_log).expect("nas log");
    assert!(
        log.lines().any(|l| l.starts_with("198.51.100.20 ")),
        "{log}"
    );

    // Unsolicited: a port that is not forwarded is dropped by the firewall (curl times
    // out, code 28), and the inside address is not reachable at all.
    let (code, _, err) = curl(&lab, "visitor", &format!("http://{WAN}:80/"), 2);
    assert_eq!(code, 28, "expected a timeout: {err}");
    let (code, _, err) = curl(&lab, "visitor", &format!("http://{NAS}/"), 2);
    assert_ne!(code, 0, "{err}");
    // The router's outside address answers ping (an allowed inbound rule).
    assert_eq!(lab.ping("visitor", WAN, 2), (2, 2));

    // Hairpin: an inside host uses the outside address and port; the NAS sees the
    // gateway's address, so its replies come back through the NAT.
    let (code, body, err) = curl(&lab, "bob", &format!("http://{WAN}:8080/"), 5);
    assert_eq!((code, body.as_str()), (0, "hello from nas\n"), "{err}");
    let log = std::fs::read_to_string(&nas_log).expect("nas log");
    assert!(
        log.lines().any(|l| l.starts_with(&format!("{WAN} "))),
        "{log}"
    );
    assert!(!log.contains(&bob), "{log}");

    // Reject: SMTP out is refused at once (curl code 7, not a timeout).
    let (code, _, err) = curl(&lab, "bob", &format!("http://{WEB}:25/"), 5);
    assert_eq!(code, 7, "expected connection refused: {err}");
    assert!(
        err.contains("Couldn't connect") || err.contains("refused"),
        "{err}"
    );

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    assert!(drop_count(&summary, "fw_denied") >= 1, "{summary}");
    assert_eq!(drop_count(&summary, "fw_rejected"), 1, "{summary}");
    assert_eq!(
        summary_value(&summary, "firewall fw:", "rejects_sent"),
        1,
        "{summary}"
    );
}

/// A UDP echo for an outside host (python3; argument ADDR): answers one datagram on
/// ADDR:5353 with the source it saw, `ip:port`, and prints the same.
const UDP_SEEN: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5353))
s.settimeout(20)
d, a = s.recvfrom(100)
seen = "%s:%d" % a
s.sendto(seen.encode(), a)
print(seen)
"#;

/// One UDP socket (port 40000) sends to each ADDR given on port 5353 and prints each
/// answer, retrying while the servers are not up.
const UDP_ASK: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 40000))
s.settimeout(0.2)
for addr in sys.argv[1:]:
    for _ in range(50):
        s.sendto(b"?", (addr, 5353))
        try:
            print(s.recvfrom(100)[0].decode())
            break
        except socket.timeout:
            pass
"#;

/// RFC 4787 REQ-1 through the gateway's NAT: one inside UDP socket talking to two outside
/// servers is seen by both from the same outside address and port (endpoint-independent
/// mapping), so peer-to-peer protocols that learn their outside endpoint from one server
/// can give it to another.
#[test]
fn one_inside_socket_is_one_outside_endpoint_to_every_server() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start();
    let servers: Vec<_> = [("web", WEB), ("visitor", "198.51.100.20")]
        .iter()
        .map(|(host, addr)| {
            lab.spawn_piped(host, "timeout", &["30", "python3", "-c", UDP_SEEN, addr])
        })
        .collect();
    let ask = lab.exec(
        "nas",
        "timeout",
        &["30", "python3", "-c", UDP_ASK, WEB, "198.51.100.20"],
    );
    let answers = String::from_utf8_lossy(&ask.stdout).to_string();
    let seen: Vec<String> = servers
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("server");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    assert_eq!(
        answers.lines().count(),
        2,
        "both servers answered: {answers}"
    );
    assert!(seen[0].starts_with("203.0.113.2:"), "masqueraded: {seen:?}");
    assert_eq!(seen[0], seen[1], "one outside endpoint for both servers");
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
}

/// A UDP echo for an outside host (python3; argument ADDR): sends every datagram that
/// comes to ADDR:5354 back to its sender, whole, for 30 s.
const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5354))
s.settimeout(30)
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
"#;

/// Sends one datagram of SIZE bytes to ADDR:5354 (arguments ADDR SIZE) until it comes back
/// (at most 50 tries); prints the length of what came back and whether it is the same.
const UDP_BIG: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
msg = bytes(i % 251 for i in range(int(sys.argv[2])))
for _ in range(50):
    s.sendto(msg, (sys.argv[1], 5354))
    try:
        d = s.recv(65535)
        print(len(d), d == msg)
        break
    except socket.timeout:
        pass
"#;

/// Fragments through the NAT and the firewall (inbound default drop): a 4000-byte ping,
/// cut by the inside host's kernel on the way out and by the outside host's on the way
/// back, gets its replies; a 5000-byte UDP datagram goes out and comes back whole. Before
/// fragments followed their first fragment, the NAT dropped every later fragment
/// (`nat_no_session`) and the firewall the inbound ones (`fw_denied`), so neither came
/// through.
#[test]
fn fragmented_datagrams_cross_the_nat_and_the_firewall_both_ways() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start();
    lab.wait_address("alice", Duration::from_secs(20))
        .unwrap_or_else(|| panic!("alice got no lease; nfv stderr:\n{}", lab.stderr()));
    // A small ping first, so ARP is settled and only fragments are left to test.
    assert_eq!(lab.ping("alice", WEB, 2), (2, 2));
    let out = lab.exec(
        "alice",
        "ping",
        &["-n", "-c", "3", "-i", "0.2", "-W", "2", "-s", "4000", WEB],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let r =
        nfv_control::demo::parse_ping(&text).unwrap_or_else(|| panic!("no ping summary: {text}"));
    assert_eq!((r.sent, r.received), (3, 3), "{text}");

    let _echo = Server(lab.spawn("web", "python3", &["-c", UDP_ECHO, WEB]));
    let out = lab.exec("alice", "python3", &["-c", UDP_BIG, WEB, "5000"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        "5000 True",
        "the datagram came back whole; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    // Two later fragments a ping each way, three a datagram each way.
    for line in ["nat nat:", "firewall fw:"] {
        assert!(
            summary_value(&summary, line, "fragments_followed") >= 18,
            "{summary}"
        );
    }
    assert_eq!(drop_count(&summary, "nat_no_session"), 0, "{summary}");
    assert_eq!(drop_count(&summary, "fragments_full"), 0, "{summary}");
}
