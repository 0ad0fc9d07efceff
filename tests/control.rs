//! End to end through the control socket of a running home gateway
//! (`topologies/home-gateway.yaml`): every `nfv show` table has real content after DHCP and
//! a ping through NAT; the socket is root's alone and shrugs off bad requests; `nfv trace`
//! follows a ping through every function and shows a firewall drop; `nfv capture` writes
//! pcap files that tcpdump reads; `nfv reload` adds and removes hosts and changes the
//! firewall under a ping flood without losing a packet, a lease or a NAT session.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{lab_available, Lab, NFV};

const PROGRAMS: &[&str] = &["ping", "tcpdump", "bash"];
const WAN: &str = "203.0.113.2";
const WEB: &str = "198.51.100.10";
const NAS: &str = "192.168.1.10";
const ALICE_MAC: &str = "02:00:00:00:01:0a";
const BOB_MAC: &str = "02:00:00:00:01:0b";
const TABLES: &[&str] = &[
    "ports",
    "functions",
    "workers",
    "drops",
    "macs",
    "routes",
    "arp",
    "interfaces",
    "nat",
    "conntrack",
    "leases",
    "firewall",
    "captures",
    "mirror",
];

/// The home gateway with its DHCP lease file in the test's directory.
fn start(base: &str) -> Lab {
    Lab::start_edited("home-gateway.yaml", base, |text, dir| {
        text.replace(
            "    lease: 1h\n",
            &format!("    lease: 1h\n    leases: {}/dhcp.leases\n", dir.display()),
        )
    })
}

/// The leased addresses of alice and bob.
fn leases(lab: &Lab) -> (String, String) {
    let get = |host: &str| {
        lab.wait_address(host, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{host} got no lease; nfv stderr:\n{}", lab.stderr()))
    };
    (get("alice"), get("bob"))
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `nfv ARGS -t NAME`.
fn nfv(lab: &Lab, args: &[&str]) -> Output {
    Command::new(NFV)
        .args(args)
        .args(["-t", &lab.name])
        .output()
        .expect("run nfv")
}

/// `nfv show TABLE --json`: its rows.
fn show(lab: &Lab, table: &str) -> Vec<Value> {
    let out = nfv(lab, &["show", table, "--json"]);
    assert!(out.status.success(), "nfv show {table}: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("nfv show {table} --json is not JSON ({e}): {}", text(&out)));
    v.as_array()
        .unwrap_or_else(|| panic!("nfv show {table} --json is not an array: {v}"))
        .clone()
}

/// A field as text (strings as they are, numbers and the rest as JSON).
fn s(row: &Value, key: &str) -> String {
    match &row[key] {
        Value::String(t) => t.clone(),
        v => v.to_string(),
    }
}

fn n(row: &Value, key: &str) -> f64 {
    row[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {row}"))
}

/// Rows whose fields equal all of `want`.
fn rows<'a>(table: &'a [Value], want: &[(&str, &str)]) -> Vec<&'a Value> {
    table
        .iter()
        .filter(|r| want.iter().all(|(k, v)| s(r, k) == *v))
        .collect()
}

/// The one row whose fields equal `want`.
fn row<'a>(table: &'a [Value], name: &str, want: &[(&str, &str)]) -> &'a Value {
    let found = rows(table, want);
    assert!(
        found.len() == 1,
        "{name}: expected one row with {want:?}, found {}:\n{table:#?}",
        found.len()
    );
    found[0]
}

/// A process killed when dropped (also when the test fails).
struct Bg(Child);

impl Bg {
    /// Wait up to `timeout` for it to exit; its exit code.
    fn wait(&mut self, what: &str, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.0.try_wait().expect("try_wait") {
                return s.code();
            }
            assert!(
                Instant::now() < end,
                "{what} did not end within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `nfv ARGS -t NAME` in the background, its stdout and stderr to files in the lab's dir.
fn nfv_bg(lab: &Lab, tag: &str, args: &[&str]) -> (Bg, PathBuf, PathBuf) {
    let out = lab.dir.path().join(format!("{tag}.out"));
    let err = lab.dir.path().join(format!("{tag}.err"));
    let child = Command::new(NFV)
        .args(args)
        .args(["-t", &lab.name])
        .stdout(std::fs::File::create(&out).expect("out file"))
        .stderr(std::fs::File::create(&err).expect("err file"))
        .spawn()
        .expect("spawn nfv");
    (Bg(child), out, err)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Wait until the dataplane has no capture running (a capture that just ended may still
/// be registered for a moment).
fn no_capture(lab: &Lab) {
    let end = Instant::now() + Duration::from_secs(5);
    while !show(lab, "captures").is_empty() {
        assert!(Instant::now() < end, "a capture is still registered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until `nfv trace` (or capture) is registered in the dataplane. There is no table
/// for traces, so give the request a moment to arrive.
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn every_show_table_has_real_content() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start("ctlshow");
    let (alice, bob) = leases(&lab);
    assert_eq!(lab.ping("alice", WEB, 3), (3, 3));

    let ports = show(&lab, "ports");
    let mut names: Vec<String> = ports.iter().map(|r| s(r, "port")).collect();
    names.sort();
    assert_eq!(
        names,
        ["alice0", "bob0", "nas0", "visitor0", "web0"],
        "{ports:#?}"
    );
    let a = row(&ports, "ports", &[("port", "alice0")]);
    assert_eq!(
        s(a, "kind"),
        "veth",
        "a host's port is a veth pair by default: {a}"
    );
    assert_eq!(s(a, "where"), "alice:eth0", "{a}");
    assert_eq!(s(a, "peer"), "lan.alice0", "{a}");
    assert!(n(a, "rx_packets") >= 3.0, "{a}");
    assert!(n(a, "tx_packets") >= 3.0, "{a}");
    assert!(n(a, "rx_bytes") >= 3.0 * 98.0, "{a}");
    assert_eq!(n(a, "rx_errors"), 0.0, "{a}");

    let functions = show(&lab, "functions");
    let kinds: Vec<(String, String)> = functions
        .iter()
        .map(|r| (s(r, "function"), s(r, "kind")))
        .collect();
    let want: Vec<(String, String)> = [
        ("lan", "switch"),
        ("dhcp", "dhcp-server"),
        ("gw", "router"),
        ("nat", "nat"),
        ("fw", "firewall"),
        ("isp", "router"),
        ("net", "switch"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, want, "{functions:#?}");
    for f in ["gw", "nat", "fw", "isp"] {
        let r = row(&functions, "functions", &[("function", f)]);
        assert!(n(r, "packets_in") >= 6.0, "{f} saw the pings: {r}");
    }
    let gw = row(&functions, "functions", &[("function", "gw")]);
    assert_eq!(s(gw, "gates"), "lan,wan", "{gw}");

    let workers = show(&lab, "workers");
    assert_eq!(workers.len(), 1, "{workers:#?}");
    let w = &workers[0];
    assert!(n(w, "loops") > 0.0, "{w}");
    assert!(n(w, "busy_loops") > 0.0, "{w}");
    assert_eq!((n(w, "ports"), n(w, "functions")), (5.0, 7.0), "{w}");
    assert!(
        n(w, "pool_size") > 0.0 && n(w, "pool_free") <= n(w, "pool_size"),
        "{w}"
    );

    let macs = show(&lab, "macs");
    row(
        &macs,
        "macs",
        &[("function", "lan"), ("mac", ALICE_MAC), ("gate", "alice0")],
    );
    row(
        &macs,
        "macs",
        &[("function", "lan"), ("mac", BOB_MAC), ("gate", "bob0")],
    );
    assert!(
        !rows(&macs, &[("function", "net"), ("gate", "web0")]).is_empty(),
        "net learned web's MAC: {macs:#?}"
    );

    let routes = show(&lab, "routes");
    row(
        &routes,
        "routes",
        &[
            ("function", "gw"),
            ("prefix", "0.0.0.0/0"),
            ("via", "203.0.113.1"),
            ("gate", "wan"),
        ],
    );
    row(
        &routes,
        "routes",
        &[
            ("function", "isp"),
            ("prefix", "198.51.100.0/24"),
            ("gate", "net"),
        ],
    );

    let arp = show(&lab, "arp");
    row(
        &arp,
        "arp",
        &[
            ("function", "gw"),
            ("ip", &alice),
            ("mac", ALICE_MAC),
            ("gate", "lan"),
        ],
    );
    row(
        &arp,
        "arp",
        &[("function", "gw"), ("ip", "203.0.113.1"), ("gate", "wan")],
    );
    row(
        &arp,
        "arp",
        &[("function", "isp"), ("ip", WEB), ("gate", "net")],
    );

    let interfaces = show(&lab, "interfaces");
    row(
        &interfaces,
        "interfaces",
        &[
            ("function", "gw"),
            ("gate", "lan"),
            ("address", "192.168.1.1/24"),
        ],
    );
    row(
        &interfaces,
        "interfaces",
        &[
            ("function", "gw"),
            ("gate", "wan"),
            ("address", "203.0.113.2/24"),
        ],
    );
    assert_eq!(interfaces.len(), 4, "{interfaces:#?}");

    let leases = show(&lab, "leases");
    let l = row(
        &leases,
        "leases",
        &[("function", "dhcp"), ("ip", &alice), ("mac", ALICE_MAC)],
    );
    assert_eq!(
        (s(l, "hostname"), s(l, "state")),
        ("alice".into(), "bound".into()),
        "{l}"
    );
    assert!(n(l, "expires_s") > 3000.0, "{l}");
    row(
        &leases,
        "leases",
        &[
            ("ip", &bob),
            ("mac", BOB_MAC),
            ("hostname", "bob"),
            ("state", "bound"),
        ],
    );

    let nat = show(&lab, "nat");
    let snat: Vec<&Value> = rows(
        &nat,
        &[("proto", "icmp"), ("kind", "snat"), ("remote", WEB)],
    )
    .into_iter()
    .filter(|r| {
        s(r, "inside").split_whitespace().next() == Some(alice.as_str())
            && s(r, "outside").split_whitespace().next() == Some(WAN)
    })
    .collect();
    assert_eq!(snat.len(), 1, "alice's ping session: {nat:#?}");
    row(
        &nat,
        "nat",
        &[
            ("kind", "dnat"),
            ("proto", "tcp"),
            ("inside", "192.168.1.10:80"),
            ("outside", "203.0.113.2:8080"),
        ],
    );

    let conntrack = show(&lab, "conntrack");
    for f in ["nat", "fw"] {
        assert!(
            !rows(
                &conntrack,
                &[("function", f), ("proto", "icmp"), ("dst", WEB)]
            )
            .is_empty(),
            "{f} tracks the ping: {conntrack:#?}"
        );
    }

    let firewall = show(&lab, "firewall");
    let reject = row(
        &firewall,
        "firewall",
        &[
            ("function", "fw"),
            ("direction", "outbound"),
            ("rule", "proto tcp dst_port 25"),
        ],
    );
    assert_eq!(
        (s(reject, "action"), n(reject, "hits")),
        ("reject".into(), 0.0),
        "{reject}"
    );
    let established = row(
        &firewall,
        "firewall",
        &[
            ("direction", "inbound"),
            ("index", "0"),
            ("action", "allow"),
        ],
    );
    assert!(
        s(established, "rule").contains("established"),
        "{established}"
    );
    assert!(n(established, "hits") >= 3.0, "the replies: {established}");
    let outbound_default = row(
        &firewall,
        "firewall",
        &[("direction", "outbound"), ("rule", "default")],
    );
    assert!(n(outbound_default, "hits") >= 3.0, "{outbound_default}");

    // DHCP broadcasts flood to the router, which is not their destination.
    let drops = show(&lab, "drops");
    row(
        &drops,
        "drops",
        &[
            ("where", "gw"),
            ("kind", "router"),
            ("reason", "not_for_us"),
        ],
    );
    assert!(drops.iter().all(|r| n(r, "packets") > 0.0), "{drops:#?}");

    assert_eq!(show(&lab, "captures"), Vec::<Value>::new());

    // People's output: a header, then one aligned row per port (text to the left of its
    // column, numbers to the right).
    let out = nfv(&lab, &["show", "ports"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    let columns = [
        "port",
        "kind",
        "where",
        "peer",
        "rx_packets",
        "rx_bytes",
        "tx_packets",
        "tx_bytes",
        "rx_errors",
        "rx_miss",
        "drops",
    ];
    assert_eq!(
        lines
            .first()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(columns.to_vec()),
        "{table}"
    );
    assert_eq!(lines.len(), 6, "{table}");
    let spans = |l: &str| -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut start = None;
        for (i, c) in l.char_indices().chain(std::iter::once((l.len(), ' '))) {
            match (c == ' ', start) {
                (false, None) => start = Some(i),
                (true, Some(s0)) => {
                    v.push((s0, i));
                    start = None;
                }
                _ => {}
            }
        }
        v
    };
    let head = spans(lines[0]);
    for l in &lines[1..] {
        let cells = spans(l);
        assert_eq!(cells.len(), head.len(), "{table}");
        for (c, h) in cells.iter().zip(&head) {
            assert!(
                c.0 == h.0 || c.1 == h.1,
                "cell {:?} is not aligned with its header {:?}:\n{table}",
                &l[c.0..c.1],
                &lines[0][h.0..h.1]
            );
        }
    }

    // An unknown table: exit 1, and the error lists the tables there are.
    let out = nfv(&lab, &["show", "bogus"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus"), "{}", text(&out));
    for t in TABLES {
        assert!(err.contains(t), "the error names {t}: {}", text(&out));
    }

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

/// One request line on the socket; the answer line, parsed.
fn ask_raw(sock: &Path, request: &[u8]) -> Value {
    let mut c = UnixStream::connect(sock).expect("connect to the control socket");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let writer = {
        let mut c = c.try_clone().expect("clone");
        let request = request.to_vec();
        // The server stops reading an over-long line; a write it never reads must not hang
        // the test.
        std::thread::spawn(move || {
            let _ = c.write_all(&request);
        })
    };
    let mut line = String::new();
    BufReader::new(&mut c)
        .read_line(&mut line)
        .expect("read the answer");
    drop(c);
    let _ = writer.join();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {line:?}"))
}

#[test]
fn the_socket_is_roots_alone_and_bad_requests_are_answered() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start("ctlsock");
    let sock = PathBuf::from(format!("/run/nfv/{}.sock", lab.name));
    let meta = std::fs::metadata(&sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    assert!(meta.file_type().is_socket(), "{}", sock.display());
    assert_eq!(meta.mode() & 0o7777, 0o600, "mode {:o}", meta.mode());
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "owner");
    assert_eq!(lab.ping("nas", "192.168.1.1", 2), (2, 2));

    // Another user (nobody) is refused by the socket's mode, and told why.
    let o = Command::new(NFV)
        .args(["show", "ports", "--socket"])
        .arg(&sock)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run nfv show as nobody");
    assert!(!o.status.success(), "nobody read the socket: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ermission denied") && err.contains("--control-group"),
        "{err}"
    );

    let too_long = {
        let mut v = vec![b'x'; nfv_control::ctl::MAX_REQUEST + 100];
        v.push(b'\n');
        v
    };
    let cases: [(&str, &[u8]); 5] = [
        ("garbage", b"garbage\n"),
        ("an unknown cmd", b"{\"cmd\":\"explode\"}\n"),
        (
            "an unknown key",
            b"{\"cmd\":\"show\",\"table\":\"ports\",\"x\":1}\n",
        ),
        ("a wrong type", b"{\"cmd\":\"trace\",\"count\":\"many\"}\n"),
        ("an over-long line", &too_long),
    ];
    for (what, req) in cases {
        let v = ask_raw(&sock, req);
        assert_eq!(v["ok"], Value::Bool(false), "{what}: {v}");
        let e = v["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("bad request") || e.contains("longer than"),
            "{what}: {v}"
        );
    }
    // A good request on the same socket still works, and so does forwarding.
    let v = ask_raw(&sock, b"{\"cmd\":\"show\",\"table\":\"workers\"}\n");
    assert_ne!(v["ok"], Value::Bool(false), "{v}");
    assert_eq!(lab.ping("nas", "192.168.1.1", 3), (3, 3));
    assert_eq!(show(&lab, "ports").len(), 5);

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    assert!(!sock.exists(), "the socket is removed at exit");
}

#[test]
fn a_control_group_member_may_look_but_not_reload_and_slow_clients_do_not_lock_out() {
    if !lab_available(PROGRAMS) {
        return;
    }
    // nogroup (65534): its member here is nobody.
    let lab = Lab::start_args("mirror-lab.yaml", "ctlgrp", &["--control-group", "65534"]);
    let sock = PathBuf::from(format!("/run/nfv/{}.sock", lab.name));
    let meta = std::fs::metadata(&sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    assert_eq!(meta.mode() & 0o7777, 0o660, "mode {:o}", meta.mode());
    assert_eq!(meta.gid(), 65534, "group");
    let as_member = |args: &[&str]| {
        Command::new(NFV)
            .args(args)
            .arg("--socket")
            .arg(&sock)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run nfv as a group member")
    };
    // Looking is what the group is for.
    let o = as_member(&["show", "ports"]);
    assert!(o.status.success(), "a member cannot show: {}", text(&o));
    // A reload would make root open what the file names (here /etc/shadow as a routes
    // file): refused before the file is read, and nothing of it is echoed.
    let evil = std::env::temp_dir().join(format!("nfv-evil-{}.yaml", std::process::id()));
    std::fs::write(
        &evil,
        format!(
            "name: {}\nports:\n  n: {{ kind: null }}\nfunctions:\n  gw: {{ kind: router, interfaces: {{ x: {{ address: 10.9.9.1/24 }} }}, routes_file: /etc/shadow }}\nlinks:\n  - [n, gw.x]\n",
            lab.name
        ),
    )
    .expect("write");
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = as_member(&["reload", evil.to_str().expect("utf-8 path")]);
    assert!(!o.status.success(), "a member reloaded: {}", text(&o));
    let _ = std::fs::remove_file(&evil);
    let out = text(&o);
    assert!(out.contains("reload is for root"), "{out}");
    // /etc/shadow's lines start `root:` and `daemon:`; a routes-file error quotes its line.
    assert!(
        !out.contains("`root:") && !out.contains("daemon:"),
        "a file's content was echoed: {out}"
    );

    // Sixteen clients that trickle their requests hold every place, for seconds only: the
    // operator gets an answer once their whole-request deadline has passed.
    let mut slow = Vec::new();
    for _ in 0..nfv_control::ctl::MAX_CONNECTIONS {
        let mut c = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        let _ = c.write_all(b"{");
        slow.push(std::thread::spawn(move || {
            for _ in 0..60 {
                std::thread::sleep(Duration::from_millis(500));
                if c.write_all(b" ").is_err() {
                    break;
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = std::time::Instant::now();
    let answered = loop {
        let o = nfv(&lab, &["show", "workers"]);
        if o.status.success() {
            break true;
        }
        if start.elapsed() > nfv_control::ctl::REQUEST_TIMEOUT * 4 {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        answered,
        "the operator was locked out for {:?} by slow clients",
        start.elapsed()
    );
    for t in slow {
        let _ = t.join();
    }
    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

/// The traced packets of `nfv trace --json`, after it ended.
fn trace_packets(bg: &mut Bg, out: &Path, err: &Path) -> Vec<Value> {
    let code = bg.wait("nfv trace", Duration::from_secs(15));
    let got = read(out);
    assert_eq!(code, Some(0), "nfv trace: {got}\n{}", read(err));
    let v: Value = serde_json::from_str(&got)
        .unwrap_or_else(|e| panic!("nfv trace --json is not JSON ({e}): {got}"));
    assert_eq!(v["ok"], Value::Bool(true), "{v}");
    v["packets"].as_array().cloned().unwrap_or_default()
}

/// A step as `rx alice0`, `lan (switch) in alice0`, `tx web0`, `drop fw: reason`.
fn step(s0: &Value) -> String {
    match s0["event"].as_str().unwrap_or_default() {
        "rx" => format!("rx {}", s(s0, "port")),
        "tx" => format!("tx {}", s(s0, "port")),
        "node" => format!(
            "{} ({}) in {}",
            s(s0, "function"),
            s(s0, "kind"),
            s(s0, "gate")
        ),
        "drop" => format!("drop {}: {}", s(s0, "function"), s(s0, "reason")),
        other => format!("{other} {s0}"),
    }
}

#[test]
fn trace_follows_a_ping_through_every_function_and_shows_a_drop() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start("ctltrace");
    let (alice, _) = leases(&lab);
    // ARP is resolved all the way, so the traced packets are echo requests.
    assert_eq!(lab.ping("alice", WEB, 1), (1, 1));

    let (mut bg, out, err) = nfv_bg(
        &lab,
        "trace1",
        &[
            "trace",
            "--port",
            "alice0",
            "--count",
            "3",
            "--timeout",
            "10",
            "--json",
        ],
    );
    settle();
    assert_eq!(lab.ping("alice", WEB, 3), (3, 3));
    let packets = trace_packets(&mut bg, &out, &err);
    let echo = packets
        .iter()
        .find(|p| s(p, "summary").contains("echo request"))
        .unwrap_or_else(|| panic!("no echo request traced: {packets:#?}"));
    let summary = s(echo, "summary");
    assert!(
        summary.contains(&format!("IPv4 {alice} > {WEB}")) && summary.contains("ICMP"),
        "{summary}"
    );
    assert_eq!(s(echo, "port"), "alice0", "{echo}");
    let steps: Vec<String> = echo["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(step)
        .collect();
    assert_eq!(
        steps,
        [
            "rx alice0",
            "lan (switch) in alice0",
            "gw (router) in lan",
            "nat (nat) in inside",
            "fw (firewall) in inside",
            "isp (router) in home",
            "net (switch) in isp",
            "tx web0",
        ],
        "{echo:#}"
    );

    // People's output of the same.
    let (mut bg, out, err) = nfv_bg(
        &lab,
        "trace2",
        &[
            "trace",
            "--port",
            "alice0",
            "--count",
            "1",
            "--timeout",
            "10",
        ],
    );
    settle();
    assert_eq!(lab.ping("alice", WEB, 1), (1, 1));
    assert_eq!(bg.wait("nfv trace", Duration::from_secs(15)), Some(0));
    let t = read(&out);
    assert!(
        t.contains("on alice0:") && t.contains("echo request") && t.contains("tx        port web0"),
        "{t}\n{}",
        read(&err)
    );
    assert!(t.contains("1 of 1 packets traced"), "{t}");

    // A drop: UDP from the outside to a port the firewall does not let in.
    let (mut bg, out, err) = nfv_bg(
        &lab,
        "trace3",
        &[
            "trace",
            "--port",
            "visitor0",
            "--count",
            "2",
            "--timeout",
            "10",
            "--json",
        ],
    );
    settle();
    for _ in 0..2 {
        let o = lab.exec(
            "visitor",
            "bash",
            &["-c", &format!("echo hi > /dev/udp/{WAN}/9999")],
        );
        assert!(o.status.success(), "{}", text(&o));
        std::thread::sleep(Duration::from_millis(200));
    }
    let packets = trace_packets(&mut bg, &out, &err);
    let udp = packets
        .iter()
        .find(|p| s(p, "summary").contains("UDP"))
        .unwrap_or_else(|| panic!("no UDP packet traced: {packets:#?}"));
    let steps: Vec<String> = udp["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(step)
        .collect();
    assert_eq!(
        steps,
        [
            "rx visitor0",
            "net (switch) in visitor0",
            "isp (router) in net",
            "fw (firewall) in outside",
            "drop fw: fw_denied",
        ],
        "{udp:#}"
    );

    // A trace with nothing to trace ends at its timeout with nothing.
    let out = nfv(
        &lab,
        &[
            "trace",
            "--port",
            "nas0",
            "--count",
            "1",
            "--timeout",
            "1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["asked"].as_u64(), v["traced"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

/// `tcpdump -nr FILE` lines (and its stderr in the panic message if it fails).
fn tcpdump(file: &Path) -> Vec<String> {
    let out = Command::new("tcpdump")
        .arg("-nr")
        .arg(file)
        .output()
        .expect("tcpdump");
    assert!(
        out.status.success(),
        "tcpdump -nr {}: {}",
        file.display(),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn count(lines: &[String], what: &str) -> usize {
    lines.iter().filter(|l| l.contains(what)).count()
}

#[test]
fn captures_are_pcap_files_that_tcpdump_reads() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start("ctlcap");
    let (alice, _) = leases(&lab);
    assert_eq!(lab.ping("alice", WEB, 1), (1, 1));

    // Both sides of the NAT: gw.wan (before it) and fw.outside (after it).
    for (at, from) in [("gw.wan", alice.as_str()), ("fw.outside", WAN)] {
        no_capture(&lab);
        let file = lab.dir.path().join(format!("{at}.pcap"));
        let f = file.to_str().expect("utf-8 path");
        let (mut bg, _out, err) = nfv_bg(&lab, at, &["capture", at, "-w", f, "--count", "4"]);
        settle();
        assert_eq!(lab.ping("alice", WEB, 2), (2, 2));
        let code = bg.wait("nfv capture --count 4", Duration::from_secs(10));
        assert_eq!(code, Some(0), "{}", read(&err));
        assert!(read(&err).contains("4 frames written"), "{}", read(&err));
        let lines = tcpdump(&file);
        assert_eq!(lines.len(), 4, "{at}: {lines:#?}");
        assert_eq!(
            count(&lines, &format!("IP {from} > {WEB}: ICMP echo request")),
            2,
            "{at}: {lines:#?}"
        );
        assert_eq!(
            count(&lines, &format!("IP {WEB} > {from}: ICMP echo reply")),
            2,
            "{at}: {lines:#?}"
        );
    }

    // A port, until Ctrl-C, which comes a while after the pings.
    let lines = capture_until_ctrl_c(&lab, "alice0", Duration::from_secs(1));
    assert_eq!(
        count(&lines, &format!("IP {alice} > {NAS}: ICMP echo request")),
        3,
        "{lines:#?}"
    );
    assert_eq!(
        count(&lines, &format!("IP {NAS} > {alice}: ICMP echo reply")),
        3,
        "{lines:#?}"
    );
    no_capture(&lab);

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

/// Capture on `at` while alice pings the NAS 3 times; Ctrl-C `pause` after the last reply.
/// The file as tcpdump reads it.
fn capture_until_ctrl_c(lab: &Lab, at: &str, pause: Duration) -> Vec<String> {
    no_capture(lab);
    let file = lab.dir.path().join(format!("{at}-int.pcap"));
    let f = file.to_str().expect("utf-8 path");
    let (mut bg, _out, err) = nfv_bg(lab, at, &["capture", at, "-w", f]);
    settle();
    let c = show(lab, "captures");
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(lab.ping("alice", NAS, 3), (3, 3));
    std::thread::sleep(pause);
    let pid = bg.0.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let code = bg.wait("nfv capture after SIGINT", Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", read(&err));
    let mut lines = tcpdump(&file);
    lines.push(read(&err));
    lines
}

/// Every frame that crossed the wire before Ctrl-C is in the file: here Ctrl-C comes as
/// soon as ping has its last reply, which crossed alice0 before.
#[test]
fn a_capture_ended_by_ctrl_c_keeps_the_frames_that_crossed_before() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start("ctlint");
    let (alice, _) = leases(&lab);
    assert_eq!(lab.ping("alice", NAS, 1), (1, 1));
    for round in 1..=5 {
        let lines = capture_until_ctrl_c(&lab, "alice0", Duration::ZERO);
        let replies = count(&lines, &format!("IP {NAS} > {alice}: ICMP echo reply"));
        let requests = count(&lines, &format!("IP {alice} > {NAS}: ICMP echo request"));
        assert_eq!(
            (requests, replies),
            (3, 3),
            "round {round}: every request and reply alice saw crossed alice0 before Ctrl-C: {lines:#?}"
        );
    }
    no_capture(&lab);
    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

/// `nfv reload FILE --json`, which must succeed; its report.
fn reload(lab: &Lab, file: &Path) -> Value {
    let f = file.to_str().expect("utf-8 path");
    let out = nfv(lab, &["reload", f, "--json"]);
    assert!(out.status.success(), "nfv reload {f}: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("nfv reload --json is not JSON ({e}): {}", text(&out)));
    assert_eq!(v["ok"], Value::Bool(true), "{v}");
    v
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list {key} in {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Alice's and bob's leases are in `show leases`.
fn leases_kept(lab: &Lab, alice: &str, bob: &str, when: &str) {
    let leases = show(lab, "leases");
    row(
        &leases,
        when,
        &[("ip", alice), ("mac", ALICE_MAC), ("state", "bound")],
    );
    row(
        &leases,
        when,
        &[("ip", bob), ("mac", BOB_MAC), ("state", "bound")],
    );
}

/// The NAT session of alice's UDP flow from `inside`.
fn nat_session(lab: &Lab, inside: &str, when: &str) -> Value {
    let nat = show(lab, "nat");
    row(
        &nat,
        when,
        &[("proto", "udp"), ("kind", "snat"), ("inside", inside)],
    )
    .clone()
}

/// A table without its counters (the columns that count packets, bytes or hits).
fn without_counters(t: &[Value]) -> Vec<Value> {
    t.iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(o) = r.as_object_mut() {
                for k in ["packets_in", "packets_out", "consumed", "drops"] {
                    o.remove(k);
                }
            }
            r
        })
        .collect()
}

#[test]
fn reload_adds_and_removes_hosts_and_changes_the_firewall_under_load() {
    if !lab_available(PROGRAMS) {
        return;
    }
    let lab = start("ctlreload");
    let (alice, bob) = leases(&lab);
    let base = lab.dir.path().join("home-gateway.yaml");
    let original = std::fs::read_to_string(&base).expect("topology");

    // (a): a guest switch with carol and dave, and an extra outbound rule in fw.
    let added = original
        .replace(
            "  visitor: { address: 198.51.100.20/24, gateway: 198.51.100.1 }\n",
            "  visitor: { address: 198.51.100.20/24, gateway: 198.51.100.1 }\n  carol: { address: 10.5.0.1/24 }\n  dave: { address: 10.5.0.2/24 }\n",
        )
        .replace(
            "  visitor0: { kind: tap, host: visitor }\n",
            "  visitor0: { kind: tap, host: visitor }\n  carol0: { kind: tap, host: carol }\n  dave0: { kind: tap, host: dave }\n",
        )
        .replace(
            "  net: { kind: switch }\n",
            "  net: { kind: switch }\n  guest: { kind: switch }\n",
        )
        .replace(
            "        - { action: reject, proto: tcp, dst_port: 25 }\n",
            "        - { action: reject, proto: tcp, dst_port: 25 }\n        - { action: reject, proto: tcp, dst_port: 23 }\n",
        )
        .replace(
            "  - [visitor0, net]\n",
            "  - [visitor0, net]\n  - [carol0, guest]\n  - [dave0, guest]\n",
        );
    assert!(added.contains("carol0, guest") && added.contains("dst_port: 23"));
    let file_a = lab.dir.path().join("added.yaml");
    std::fs::write(&file_a, &added).expect("write");
    // (b): back to the original.
    let file_b = lab.dir.path().join("original.yaml");
    std::fs::write(&file_b, &original).expect("write");
    // (c): an unknown key.
    let broken = original.replace(
        "  lan: { kind: switch }",
        "  lan: { kind: switch, bogus: 1 }",
    );
    assert_ne!(broken, original);
    let file_c = lab.dir.path().join("broken.yaml");
    std::fs::write(&file_c, &broken).expect("write");

    // A NAT session that nothing refreshes: one UDP datagram (30 s idle timeout).
    let o = lab.exec(
        "alice",
        "bash",
        &["-c", &format!("echo hi > /dev/udp/{WEB}/5353")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let nat = show(&lab, "nat");
    let session = rows(&nat, &[("proto", "udp"), ("kind", "snat")])
        .into_iter()
        .find(|r| s(r, "inside").starts_with(&format!("{alice}:")))
        .unwrap_or_else(|| panic!("no UDP session for alice: {nat:#?}"))
        .clone();
    let inside = s(&session, "inside");

    // The flood: 2500 pings across the LAN switch, about 5 s.
    let flood_out = lab.dir.path().join("flood.out");
    let mut flood = Bg(Command::new("ip")
        .args(["netns", "exec", &lab.netns("alice"), "ping", "-n", "-q"])
        .args(["-i", "0.002", "-c", "2500", "-W", "1", NAS])
        .stdout(std::fs::File::create(&flood_out).expect("flood out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("ping flood"));
    std::thread::sleep(Duration::from_millis(500));

    // (a)
    let v = reload(&lab, &file_a);
    assert_eq!(names(&v, "ports_added"), ["carol0", "dave0"], "{v}");
    assert_eq!(names(&v, "hosts_added"), ["carol", "dave"], "{v}");
    assert_eq!(names(&v, "functions_added"), ["guest"], "{v}");
    assert_eq!(names(&v, "functions_changed"), ["fw"], "{v}");
    let kept = names(&v, "functions_kept");
    for f in ["lan", "dhcp", "gw", "nat", "isp", "net"] {
        assert!(kept.iter().any(|k| k == f), "{f} kept: {v}");
    }
    assert!(!kept.iter().any(|k| k == "fw"), "{v}");
    leases_kept(&lab, &alice, &bob, "leases after (a)");
    assert_eq!(
        nat_session(&lab, &inside, "nat after (a)")["outside"],
        session["outside"]
    );
    let ports = show(&lab, "ports");
    assert_eq!(ports.len(), 7, "{ports:#?}");
    // Every host's port is a veth pair, whose other end nfv keeps in the root namespace.
    let veths = rows(&ports, &[("kind", "veth")]).len();
    assert!(
        rows(&ports, &[("port", "carol0"), ("kind", "veth")]).len() == 1 && veths >= 4,
        "{ports:#?}"
    );
    assert_eq!(common::veth_ends(lab.pid).len(), veths);
    let wait_carol = Instant::now() + Duration::from_secs(5);
    loop {
        let (sent, got) = lab.ping("carol", "10.5.0.2", 2);
        if got == sent {
            break;
        }
        assert!(
            Instant::now() < wait_carol,
            "carol cannot ping dave through guest"
        );
    }
    let firewall = show(&lab, "firewall");
    row(
        &firewall,
        "firewall after (a)",
        &[("direction", "outbound"), ("rule", "proto tcp dst_port 23")],
    );

    // (b)
    let v = reload(&lab, &file_b);
    assert_eq!(names(&v, "ports_removed"), ["carol0", "dave0"], "{v}");
    assert_eq!(names(&v, "hosts_removed"), ["carol", "dave"], "{v}");
    assert_eq!(names(&v, "functions_removed"), ["guest"], "{v}");
    assert_eq!(names(&v, "functions_changed"), ["fw"], "{v}");
    let kept = names(&v, "functions_kept");
    for f in ["lan", "dhcp", "nat"] {
        assert!(kept.iter().any(|k| k == f), "{f} kept: {v}");
    }
    let left = lab.namespaces_left();
    assert!(
        !left
            .iter()
            .any(|n| n.ends_with("-carol") || n.ends_with("-dave")),
        "{left:?}"
    );
    assert_eq!(left.len(), 5, "{left:?}");
    let ports = show(&lab, "ports");
    assert!(
        rows(&ports, &[("port", "carol0")]).is_empty() && ports.len() == 5,
        "{ports:#?}"
    );
    assert_eq!(
        common::veth_ends(lab.pid).len(),
        veths - 2,
        "removed pairs left"
    );
    leases_kept(&lab, &alice, &bob, "leases after (b)");
    assert_eq!(
        nat_session(&lab, &inside, "nat after (b)")["outside"],
        session["outside"]
    );
    let firewall = show(&lab, "firewall");
    assert!(
        rows(&firewall, &[("rule", "proto tcp dst_port 23")]).is_empty(),
        "{firewall:#?}"
    );

    // (c)
    let functions = show(&lab, "functions");
    let f = file_c.to_str().expect("utf-8");
    let out = nfv(&lab, &["reload", f]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.yaml:")
            && err.contains("functions.lan.bogus")
            && err.contains("nothing changed"),
        "{}",
        text(&out)
    );
    assert_eq!(
        without_counters(&show(&lab, "functions")),
        without_counters(&functions)
    );
    assert_eq!(show(&lab, "ports").len(), 5);

    // The flood went through all three without a loss.
    let code = flood.wait("the ping flood", Duration::from_secs(30));
    let report = read(&flood_out);
    assert_eq!(code, Some(0), "{report}");
    let r = nfv_control::demo::parse_ping(&report)
        .unwrap_or_else(|| panic!("no ping summary: {report}"));
    assert_eq!((r.sent, r.received), (2500, 2500), "{report}");
    // And so does traffic through the rebuilt firewall.
    assert_eq!(lab.ping("alice", WEB, 2), (2, 2));

    let prefix = format!("nfv-{}-", lab.name);
    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    let left: Vec<String> = common::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
}
