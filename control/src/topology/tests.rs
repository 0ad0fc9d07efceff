//! Tests of the loader: the model a good file becomes, and every rule's line and key.

use super::*;
use std::time::Duration;

use nfv_functions::switch::SwitchSpec;

/// The settings of a switch.
fn switch_spec(k: &Settings) -> &SwitchSpec {
    k.downcast::<SwitchSpec>()
        .unwrap_or_else(|| panic!("not a switch: {k:?}"))
}

/// A TAP port's settings: host, interface name, MTU and MAC.
fn tap(p: &Port) -> (Option<&str>, &str, u16, Option<MacAddr>) {
    let t = p
        .settings
        .get::<TapConfig>()
        .unwrap_or_else(|| panic!("not a tap: {p:?}"));
    (t.host.as_deref(), t.ifname.as_str(), t.mtu, t.mac)
}

/// A device or a huge file is refused before it is read whole.
#[test]
fn a_topology_file_is_a_bounded_regular_file() {
    let e = load_file(Path::new("/dev/zero")).expect_err("a device");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let dir = std::env::temp_dir().join(format!("nfv-topo-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let big = dir.join("big.yaml");
    let line = "# padding\n".repeat(1024);
    let mut text = String::from("name: big\n");
    while (text.len() as u64) <= MAX_FILE {
        text.push_str(&line);
    }
    std::fs::write(&big, &text).unwrap_or_else(|e| panic!("{e}"));
    let e = load_file(&big).expect_err("too big");
    assert!(
        e.to_string().contains("the most a topology file may hold"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A deeply nested document is refused at the first level too deep, before serde_yaml's
/// scanner (quadratic in the depth of flow collections: 250 KB of `{a: ` took 11 s) reads it.
#[test]
fn a_document_nested_too_deep_is_refused_at_its_line() {
    let n = 60_000;
    let text = format!("name: x\nports: {}1{}\n", "{a: ".repeat(n), "}".repeat(n));
    let errors = load(&text).expect_err("too deep");
    assert_eq!(errors.len(), 1, "{}", list(&errors));
    assert_eq!(errors[0].line, 2);
    assert!(errors[0].key.starts_with("ports.a.a"), "{}", errors[0].key);
    assert!(
        errors[0].message.contains("nested deeper than 128 levels"),
        "{}",
        errors[0].message
    );
    let text = format!("name: x\nlinks: {}{}\n", "[".repeat(n), "]".repeat(n));
    assert!(load(&text).expect_err("too deep")[0]
        .message
        .contains("nested deeper"));
}

/// Many ports and links: each name, kind and wiring is looked up once per link end (80,000
/// linked ports took 93 s when each link end searched the lists and rebuilt a switch's
/// gates, and a file of 100,000 refused ports 34 s).
#[test]
fn many_ports_and_links_load() {
    let n = 5_000;
    let mut text = String::from("name: many\nports:\n");
    for i in 0..n {
        text += &format!("  p{i}: {{ kind: null }}\n");
    }
    text += "functions:\n  sw: { kind: switch }\nlinks:\n";
    for i in 0..n {
        text += &format!("  - [p{i}, sw]\n");
    }
    let t = load(&text).unwrap_or_else(|e| panic!("{}", list(&e)));
    assert_eq!((t.ports.len(), t.links.len()), (n, n));
    let plan = crate::plan::Plan::new(&t, 1).unwrap_or_else(|e| panic!("{e}"));
    assert!(plan
        .describe()
        .contains(&format!("p{} <-> sw[{}]", n - 1, n - 1)));
    // The same names twice: refused at the second.
    text += "  - [p0, sw]\n";
    let errors = load(&text).expect_err("p0 twice");
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("port `p0` is already linked")),
        "{}",
        list(&errors)
    );
}

/// More ports than one worker serves (and than 16-bit ids number) are refused up front.
#[test]
fn a_topology_holds_at_most_max_items_ports() {
    let mut text = String::from("name: many\nports:\n");
    for i in 0..=MAX_ITEMS {
        text += &format!("  p{i}: {{ kind: null }}\n");
    }
    assert_error(&text, 2, "ports", "a topology holds at most 16384");
}

fn load(text: &str) -> Result<Topology, Vec<TopologyError>> {
    match load_str(text, Path::new("t.yaml")) {
        Ok(t) => Ok(t),
        Err(LoadError::Invalid(e)) => Err(e),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn metrics_key() {
    let base = "name: m\nports:\n  a: { kind: null }\n  b: { kind: null }\nfunctions:\n  sw: { kind: switch }\nlinks: [[a, sw], [b, sw]]\n";
    let with = |m: &str| format!("{base}{m}\n");
    assert_eq!(load(base).expect("loads").metrics, Metrics::Default);
    assert_eq!(
        load(&with("metrics: off")).expect("off").metrics,
        Metrics::Off
    );
    assert_eq!(
        load(&with("metrics: { listen: 127.0.0.1:9999 }"))
            .expect("listen")
            .metrics,
        Metrics::Listen("127.0.0.1:9999".parse().expect("addr"))
    );
    assert_eq!(
        load(&with("metrics: { listen: \"[::1]:9464\" }"))
            .expect("v6")
            .metrics,
        Metrics::Listen("[::1]:9464".parse().expect("addr"))
    );
    assert_error(&with("metrics: on"), 8, "metrics", "expected `off`");
    assert_error(&with("metrics: {}"), 8, "metrics", "missing: `listen`");
    assert_error(
        &with("metrics:\n  listen: 127.0.0.1:0"),
        9,
        "metrics.listen",
        "other than 0",
    );
    assert_error(
        &with("metrics:\n  listen: 127.0.0.1"),
        9,
        "metrics.listen",
        "not an IP address and port",
    );
    assert_error(
        &with("metrics:\n  listen: 127.0.0.1:9464\n  port: 1"),
        10,
        "metrics.port",
        "takes only `listen`",
    );
}

#[track_caller]
fn assert_error(text: &str, line: usize, key: &str, contains: &str) {
    let errors = match load(text) {
        Ok(_) => panic!("loaded, expected an error at line {line} key {key}"),
        Err(e) => e,
    };
    assert!(
        errors
            .iter()
            .any(|e| e.line == line && e.key == key && e.message.contains(contains)),
        "no error at line {line} key {key:?} containing {contains:?} in:\n{}",
        list(&errors)
    );
}

const GOOD: &str = "\
name: lab-1
hosts:
  alice: { address: 10.0.0.1/24, gateway: 10.0.0.254 }
  bob: { netns: bobs-ns }
ports:
  a0: { kind: tap, host: alice, mac: 02:00:00:00:00:0a }
  b0: { kind: tap, host: bob, address: 10.0.0.2/24, mtu: 1400 }
  a1: { kind: tap, host: alice, address: 192.168.9.1/24 }
  t: { kind: tap, ifname: nfv-t }
  n: { kind: null }
functions:
  sw:
    kind: switch
    mac_table_size: 100
    ageing: 2m
    vlan: 7
    attachments:
      up: { trunk: [10, 20], native: 7 }
      red: { vlan: 10 }
  sw2: { kind: switch }
links:
  - [a0, sw]
  - [b0, sw.red]
  - [sw.up, sw2]
  - [a1, sw2, t]
  - [n, sw2]
";

#[test]
fn a_good_file_becomes_the_model() {
    let t = load(GOOD).unwrap_or_else(|e| panic!("{}", list(&e)));
    assert_eq!(t.name, "lab-1");
    let alice = &t.hosts[0];
    assert_eq!(alice.gateway, Some(Ipv4Addr::new(10, 0, 0, 254)));
    assert_eq!(alice.interfaces.len(), 2);
    assert_eq!(alice.interfaces[0].ifname, "eth0");
    assert_eq!(alice.interfaces[0].port, "a0");
    assert_eq!(
        alice.interfaces[0].address.map(|a| a.to_string()),
        Some("10.0.0.1/24".into())
    );
    assert_eq!(
        alice.interfaces[0].mac,
        Some(MacAddr([2, 0, 0, 0, 0, 0x0a]))
    );
    assert_eq!(alice.interfaces[1].ifname, "eth1");
    assert_eq!(
        alice.interfaces[1].address.map(|a| a.to_string()),
        Some("192.168.9.1/24".into())
    );
    assert_eq!(t.hosts[1].netns.as_deref(), Some("bobs-ns"));
    assert_eq!(
        t.hosts[1].interfaces[0].address.map(|a| a.to_string()),
        Some("10.0.0.2/24".into())
    );
    assert_eq!(t.hosts[1].line, 4);
    assert_eq!(tap(&t.ports[1]), (Some("bob"), "eth0", 1400, None));
    assert_eq!(tap(&t.ports[3]), (None, "nfv-t", 1500, None));
    assert_eq!(
        t.ports[4].settings.get::<NullConfig>(),
        Some(&NullConfig { announce: None })
    );
    let sw = switch_spec(&t.functions[0].settings);
    assert_eq!(sw.mac_table_size, 100);
    assert_eq!(sw.ageing, Duration::from_secs(120));
    assert_eq!(sw.vlan, 7);
    assert_eq!(
        sw.attachments,
        vec![
            (
                "up".to_string(),
                VlanMode::Trunk {
                    allowed: vec![10, 20],
                    native: Some(7)
                }
            ),
            ("red".to_string(), VlanMode::Access(10)),
        ]
    );
    assert_eq!(t.links.len(), 5);
    assert_eq!(t.links[1].line, 23);
    assert_eq!(
        t.links[3].ends,
        vec![
            LinkEnd::Port("a1".into()),
            LinkEnd::Function {
                name: "sw2".into(),
                attachment: None
            },
            LinkEnd::Port("t".into()),
        ]
    );
    assert_eq!(
        t.links[1].ends[1],
        LinkEnd::Function {
            name: "sw".into(),
            attachment: Some("red".into())
        }
    );
}

#[test]
fn defaults_apply() {
    let t = load("name: d\nports:\n  p: { kind: tap }\nfunctions:\n  s: { kind: switch }\nlinks:\n  - [p, s]\n")
            .unwrap_or_else(|e| panic!("{}", list(&e)));
    let sw = switch_spec(&t.functions[0].settings);
    assert_eq!(
        (sw.mac_table_size, sw.ageing, sw.vlan),
        (65536, Duration::from_secs(300), 1)
    );
    assert_eq!(tap(&t.ports[0]), (None, "p", 1500, None));
}

const BASE: &str = "name: x\nports:\n  a: { kind: null }\nfunctions:\n  sw: { kind: switch }\nlinks:\n  - [a, sw]\n";

#[test]
fn each_rule_names_line_and_key() {
    assert_error("name: Bad_Name\n", 1, "name", "not a valid topology name");
    assert_error(
        "name: x\nports:\n  a: { kind: tap, mtu: 40 }\nlinks:\n  - [a, a]\n",
        3,
        "ports.a.mtu",
        "out of range",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, mac: 01:00:00:00:00:01 }\n",
        3,
        "ports.a.mac",
        "multicast",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, mac: 02:00:00:00:01 }\n",
        3,
        "ports.a.mac",
        "not a MAC",
    );
    assert_error(
            "name: x\nports:\n  a: { kind: tap, mac: 02:00:00:00:00:01, ifname: x1 }\n  b: { kind: tap, mac: 02:00:00:00:00:01, ifname: x2 }\n",
            4,
            "ports.b.mac",
            "already used",
        );
    assert_error(
        "name: x\nports:\n  a-very-long-port-name: { kind: tap }\n",
        3,
        "ports.a-very-long-port-name",
        "not a usable device name",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, ifname: t0 }\n  b: { kind: tap, ifname: t0 }\n",
        4,
        "ports.b.ifname",
        "already used",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, address: 10.0.0.1/24 }\n",
        3,
        "ports.a.address",
        "needs `host`",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: null, mtu: 1500 }\n",
        3,
        "ports.a.mtu",
        "takes no",
    );
    assert_error("name: x\nhosts:\n  h: {}\n", 3, "hosts.h", "has no port");
    assert_error(
            "name: x\nhosts:\n  h: { address: 10.0.0.1/24 }\nports:\n  a: { kind: tap, host: h, address: 10.0.0.2/24 }\n",
            5,
            "ports.a.address",
            "give it in one place",
        );
    assert_error(
        "name: x\nhosts:\n  h: { address: 10.0.0.1 }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.address",
        "prefix length",
    );
    assert_error(
        "name: x\nhosts:\n  h: { address: 10.0.0.1/33 }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.address",
        "prefix length",
    );
    assert_error(
        "name: x\nhosts:\n  h: { address: 10.0.0.0/24 }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.address",
        "network or broadcast",
    );
    assert_error(
        "name: x\nhosts:\n  h: { gateway: 10.0.0.1 }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.gateway",
        "needs an address",
    );
    assert_error(
        "name: x\nhosts:\n  h: { address: [10.0.0.1/24, 10.0.1.1/24] }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.address[1]",
        "one IPv4 address",
    );
    assert_error(
        "name: x\nhosts:\n  h: { address: 2001:db8::1/64, gateway: 2001:db8:9::1 }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.gateway",
        "in none of host `h`'s IPv6 prefixes",
    );
    assert_error(
        "name: x\nhosts:\n  h: { address: [2001:db8::1/64, fe80::1/64] }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.address[1]",
        "link-local",
    );
    assert_error("name: x\nhosts:\n  h: { address: 10.0.0.1/24, gateway: fish }\nports:\n  a: { kind: tap, host: h }\n", 3, "hosts.h.gateway", "not an IPv4 or IPv6 address");
    assert_error(
        "name: x\nhosts:\n  h: { netns: ../etc }\nports:\n  a: { kind: tap, host: h }\n",
        3,
        "hosts.h.netns",
        "not a usable namespace name",
    );
    assert_error(
        "name: x\nports:\n  sw: { kind: null }\nfunctions:\n  sw: { kind: switch }\n",
        5,
        "functions.sw",
        "also the name of a port",
    );
    assert_error(
        "name: x\nports:\n  a.b: { kind: null }\n",
        3,
        "ports.a.b",
        "not a valid name",
    );
    assert_error(
        "name: x\nfunctions:\n  s: { kind: switch, vlan: 0 }\n",
        3,
        "functions.s.vlan",
        "out of range",
    );
    assert_error(
        "name: x\nfunctions:\n  s: { kind: switch, mac_table_size: 0 }\n",
        3,
        "functions.s.mac_table_size",
        "out of range",
    );
    assert_error(
        "name: x\nfunctions:\n  s: { kind: switch, attachments: { a: { vlan: 2, trunk: [3] } } }\n",
        3,
        "functions.s.attachments.a",
        "not both",
    );
    assert_error(
        "name: x\nfunctions:\n  s: { kind: switch, attachments: { a: {} } }\n",
        3,
        "functions.s.attachments.a",
        "expected `vlan",
    );
    assert_error("name: x\nfunctions:\n  s:\n    kind: switch\n    attachments:\n      a: { vlan: 2, native: 3 }\n", 6, "functions.s.attachments.a.native", "for trunks");
    assert_error("name: x\nfunctions:\n  s:\n    kind: switch\n    attachments:\n      a: { trunk: [2, 2] }\n", 6, "functions.s.attachments.a.trunk[1]", "listed twice");
    assert_error("name: x\nfunctions:\n  s:\n    kind: switch\n    attachments:\n      a: { trunk: [2], native: 5000 }\n", 6, "functions.s.attachments.a.native", "out of range");
    assert_error(
        &BASE.replace("  - [a, sw]\n", "  - [a, sw]\n  - [sw, sw]\n"),
        8,
        "links[1][1]",
        "`sw` is wired to itself",
    );
    assert_error(
        &BASE.replace("  - [a, sw]\n", "  - [a.x, sw]\n"),
        7,
        "links[0][0]",
        "has no sub-ends",
    );
    assert_error(
        &BASE.replace("  - [a, sw]\n", "  - [a, sw, a]\n"),
        7,
        "links[0][2]",
        "already linked",
    );
    assert_error(
            "name: x\nports:\n  a: { kind: null }\n  b: { kind: null }\nfunctions:\n  s: { kind: switch }\nlinks:\n  - [s, a, b]\n",
            8,
            "links[0][1]",
            "single wire end",
        );
    assert_error(
        &BASE.replace("kind: switch", "kind: switch, turbo: yes"),
        5,
        "functions.sw.turbo",
        "unknown key `turbo`: allowed keys are `kind`, `mac_table_size`",
    );
    assert_error(
        "name: x\nhosts:\n  h: { addres: 10.0.0.1/24 }\n",
        3,
        "hosts.h.addres",
        "unknown key `addres`: allowed keys are `address`, `gateway`, `netns`",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap }\n  a: { kind: null }\n",
        4,
        "ports.a",
        "the name `a` is given twice (first at line 3)",
    );
    assert_error(
        "name: x\nports:\n  a: { host: h }\n",
        3,
        "ports.a.kind",
        "a port needs a `kind`, one of `tap`, `vhost-user`, `null`",
    );
}

#[test]
fn vhost_user_ports() {
    let text = "name: v\nports:\n  vm1: { kind: vhost-user, socket: /run/nfv/vm1.sock }\n  vm2: { kind: vhost-user, socket: /run/nfv/vm2.sock, mode: client, mtu: 1400 }\nfunctions:\n  s: { kind: switch }\nlinks:\n  - [vm1, s, vm2]\n";
    let t = load(text).unwrap_or_else(|e| panic!("{}", list(&e)));
    use nfv_dataplane::port::SocketMode;
    assert_eq!(
        t.ports[0].settings.get::<VhostUserConfig>(),
        Some(&VhostUserConfig {
            name: "vm1".into(),
            socket: "/run/nfv/vm1.sock".into(),
            mode: SocketMode::Server,
            mtu: 1500
        })
    );
    assert_eq!(
        t.ports[1].settings.get::<VhostUserConfig>(),
        Some(&VhostUserConfig {
            name: "vm2".into(),
            socket: "/run/nfv/vm2.sock".into(),
            mode: SocketMode::Client,
            mtu: 1400
        })
    );
    assert_error(
        &text.replace("mtu: 1400", "mtu: 9300"),
        4,
        "ports.vm2.mtu",
        "MTU 9300 is out of range",
    );
}

#[test]
fn generator_and_sink_ports() {
    let text = "name: g\nports:\n  gen: { kind: generator, flows: 10, size: imix, rate: 1000, count: 50, src_mac: 02:00:00:00:01:00, dst_mac: 02:ff:00:00:00:01, src_ip: 10.1.0.1, dst_ip: 10.2.0.1, src_port: 2000, dst_port: 53, proto: tcp }\n  sink: { kind: null, mac: 02:ff:00:00:00:01 }\nfunctions:\n  s: { kind: switch }\nlinks:\n  - [gen, s, sink]\n";
    let t = load(text).unwrap_or_else(|e| panic!("{}", list(&e)));
    let Some(g) = t.ports[0].settings.get::<GeneratorConfig>() else {
        panic!("{:?}", t.ports[0].settings)
    };
    assert_eq!((g.flows, g.rate_pps, g.count), (10, Some(1000), Some(50)));
    assert_eq!(g.sizes, Sizes::Imix);
    assert_eq!((g.src_port, g.dst_port, g.proto), (2000, 53, Proto::Tcp));
    assert_eq!(
        g.addresses,
        Addresses::V4 {
            src: Ipv4Addr::new(10, 1, 0, 1),
            dst: Ipv4Addr::new(10, 2, 0, 1)
        }
    );
    assert_eq!(
        t.ports[1].settings.get::<NullConfig>(),
        Some(&NullConfig {
            announce: Some(MacAddr([2, 0xff, 0, 0, 0, 1]))
        })
    );
    let base = "name: g\nports:\n  gen: { kind: generator }\n  sink: { kind: null }\nfunctions:\n  s: { kind: switch }\nlinks:\n  - [gen, s, sink]\n";
    let with = |kv: &str| base.replace("kind: generator", &format!("kind: generator, {kv}"));
    assert_error(&with("size: 20"), 3, "ports.gen.size", "out of range");
    assert_error(
        &with("size: jumbo"),
        3,
        "ports.gen.size",
        "not a frame size",
    );
    assert_error(&with("flows: 0"), 3, "ports.gen.flows", "out of range");
    assert_error(&with("count: 0"), 3, "ports.gen.count", "sends nothing");
    assert_error(&with("proto: sctp"), 3, "ports.gen.proto", "udp or tcp");
    assert_error(
        &with("src_ip: 300.1.1.1"),
        3,
        "ports.gen.src_ip",
        "not an IP address",
    );
    assert_error(
        &with("src_ip: 10.0.0.1, dst_ip: 2001:db8::1"),
        3,
        "ports.gen.dst_ip",
        "both must be of one family",
    );
    assert_error(
        &with("dst_ip: 2001:db8::1, size: 64"),
        3,
        "ports.gen.size",
        "too small for IPv6",
    );
    assert_error(&with("src_port: 80"), 3, "ports.gen.src_port", "below 1024");
    assert_error(&with("mtu: 1500"), 3, "ports.gen.mtu", "takes no `mtu`");
    assert_error(
        &with("flows: 300, src_mac: 02:00:00:00:00:01, dst_mac: 02:00:00:00:01:00"),
        3,
        "ports.gen.dst_mac",
        "include dst_mac",
    );
    assert_error(
        &base.replace("kind: null", "kind: null, host: h"),
        4,
        "ports.sink.host",
        "takes no `host`",
    );
    assert_error(
        &base.replace("kind: null", "kind: null, mac: ff:ff:ff:ff:ff:ff"),
        4,
        "ports.sink.mac",
        "multicast",
    );
}

#[test]
fn more_rules_name_line_and_key() {
    // Keys and kinds.
    assert_error(
            "name: x\nfunctions:\n  s:\n    kind: switch\n    attachments:\n      a: { vlan: 2, colour: red }\n",
            6,
            "functions.s.attachments.a.colour",
            "unknown key `colour`: allowed keys are `vlan`, `trunk`, `native`",
        );
    assert_error(
        "name: x\nfunctions:\n  s: { vlan: 2 }\n",
        3,
        "functions.s.kind",
        "a function needs a `kind`, one of `switch`",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: vhost }\n",
        3,
        "ports.a.kind",
        "unknown port kind `vhost`: expected one of `tap`, `vhost-user`, `null`",
    );
    assert_error(
        "name: x\nfunctions:\n  s: { kind: nat9 }\n",
        3,
        "functions.s.kind",
        "unknown function kind `nat9`: expected one of `switch`, `router`, `dhcp-server`",
    );
    assert_error(
        "name: x\nfunctions:\n  s: { kind: switch }\n",
        1,
        "ports",
        "missing: every topology needs `ports`",
    );
    assert_error(
            "name: x\nports: {}\nfunctions:\n  s: { kind: switch }\n  t: { kind: switch }\nlinks:\n  - [s, t]\n",
            2,
            "ports",
            "no ports, but there are links",
        );
    assert!(load("name: x\nports: {}\n").is_ok());

    // Ports.
    assert_error(
        "name: x\nports:\n  a: { kind: tap, ifname: a/b }\n",
        3,
        "ports.a.ifname",
        "not a usable device name",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, mtu: 9300 }\n",
        3,
        "ports.a.mtu",
        &format!("expected 68 to {MAX_MTU}"),
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, mac: 00:00:00:00:00:00 }\n",
        3,
        "ports.a.mac",
        "all zeros",
    );
    assert_error(
        "name: x\nhosts:\n  alice: {}\nports:\n  a: { kind: tap, host: alcie }\n",
        5,
        "ports.a.host",
        "no host named `alcie` (declare it under `hosts`); did you mean `alice`?",
    );

    // Addresses.
    assert_error(
            "name: x\nhosts:\n  h: { address: 10.0.0.1/24 }\n  g: {}\nports:\n  a: { kind: tap, host: h }\n  b: { kind: tap, host: g, address: 10.0.0.1/24 }\n",
            7,
            "ports.b.address",
            "address 10.0.0.1 is already used at hosts.h.address",
        );
    assert_error(
            "name: x\nhosts:\n  h: { address: 10.0.0.1/24, gateway: 10.0.0.1 }\nports:\n  a: { kind: tap, host: h }\n",
            3,
            "hosts.h.gateway",
            "the host's own address",
        );
    assert_error(
            "name: x\nhosts:\n  h: { address: 10.0.0.1/24, gateway: 10.0.1.1 }\nports:\n  a: { kind: tap, host: h }\n",
            3,
            "hosts.h.gateway",
            "not in the host's subnet (10.0.0.0/24)",
        );
    // A /31 has no network or broadcast address (RFC 3021).
    let point = "name: x\nhosts:\n  h: { address: 10.0.0.0/31 }\nports:\n  a: { kind: tap, host: h }\n  b: { kind: null }\nlinks:\n  - [a, b]\n";
    assert!(load(point).is_ok());

    // Links.
    let sw = "name: x\nports:\n  a: { kind: null }\n  b: { kind: null }\nfunctions:\n  sw:\n    kind: switch\n    attachments:\n      red: { vlan: 10 }\nlinks:\n";
    assert_error(
        &format!("{sw}  - [a, sw.red]\n  - [b, sw.red]\n"),
        12,
        "links[1][1]",
        "attachment `sw.red` is already linked at links[0][1]",
    );
    assert_error(
        &format!("{sw}  - [a, sw]\n  - [b, sw]\n"),
        9,
        "functions.sw.attachments.red",
        "attachment `sw.red` is declared but not linked",
    );
    assert_error(
            &format!("{sw}  - [a, sw.rde]\n  - [b, sw]\n"),
            11,
            "links[0][1]",
            "function `sw` has no attachment `rde` (declare it under functions.sw.attachments); did you mean `red`?",
        );
    assert_error(
        &format!("{sw}  - [a, sw.red]\n  - [b, sw, lam]\n"),
        12,
        "links[1][2]",
        "`lam` is neither a port nor a function",
    );
    // A one-ended link is one error, not also "port not linked".
    let short = load(&format!("{sw}  - [a, sw.red]\n  - [b]\n")).err();
    assert_eq!(
        short
            .as_ref()
            .map(|e| (e.len(), e[0].key.as_str(), e[0].line)),
        Some((1, "links[1]", 12)),
        "{short:?}"
    );
}

#[test]
fn yaml_and_type_errors_name_their_key() {
    assert_error(
        "- a\n- b\n",
        1,
        "",
        "expected a topology: a mapping with keys `name`",
    );
    assert_error(
        "name: x\nname: y\nports: {}\n",
        2,
        "name",
        "the key `name` is given twice (first at line 1)",
    );
    assert_error(
            "name: x\nports:\n  a: { kind: null }\nfunctions:\n  s:\n    kind: switch\n    ageing: [1]\n",
            7,
            "functions.s.ageing",
            "expected a positive duration",
        );
    assert_error(
        "name: x\nports:\n  a:\n",
        3,
        "ports.a.kind",
        "missing: a port needs a `kind`",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: generator, size: 99999999999 }\n",
        3,
        "ports.a.size",
        "expected a frame size",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, mtu: -1 }\n",
        3,
        "ports.a.mtu",
        "expected a whole number",
    );
    assert_error(
        "name: x\nports:\n  a: null\n",
        3,
        "ports.a",
        "invalid type: empty value, expected a port",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: null }\nlinks: [a, b]\n",
        4,
        "links[0]",
        "each link is a list of its ends",
    );
    assert_error(
            "name: x\nports:\n  a: { kind: tap\nlinks: []\n",
            4,
            "ports.a",
            "did not find expected ',' or '}' (while parsing a flow mapping that starts at line 3 column 6)",
        );
    assert_error(
        "name: x\nports:\n  a: { kind: tap }\n\tb: { kind: tap }\n",
        4,
        "ports",
        "a tab: YAML indents with spaces only",
    );
    assert_error(
        "name: x\nports: {}\n---\nname: y\n",
        3,
        "",
        "a second one starts here",
    );
    assert_error(
        " name: x\nports: {}\n",
        2,
        "",
        "more text after the end of the top-level mapping: check the indentation",
    );
    // Quoted keys may hold spaces; values may hold anything.
    assert_error(
        "name: x\nports:\n  \"my port\": { kind: tap, x: 1 }\n",
        3,
        "ports.my port.x",
        "unknown key `x`",
    );
    assert_error(
        "name: x\nports:\n  a: { kind: tap, mtu: \"big, while parsing x\" }\n",
        3,
        "ports.a.mtu",
        "invalid type: string \"big, while parsing x\", expected a whole number",
    );
}

#[test]
fn a_host_without_address_and_the_lines_of_things() {
    let text = "name: dhcp-lab\nhosts:\n  carol: { gateway: none }\nports:\n  c0: { kind: tap, host: carol }\n  c1: { kind: tap, host: carol, address: 10.9.0.1/24 }\n  t: { kind: tap }\nfunctions:\n  lan: { kind: switch }\nlinks:\n  - [c0, lan, t]\n  - [c1, lan]\n";
    let t = load(text).unwrap_or_else(|e| panic!("{}", list(&e)));
    assert_eq!(t.file, Path::new("t.yaml"));
    let carol = &t.hosts[0];
    assert_eq!((carol.gateway, carol.line), (None, 3));
    let names: Vec<(&str, &str, Option<String>)> = carol
        .interfaces
        .iter()
        .map(|i| {
            (
                i.port.as_str(),
                i.ifname.as_str(),
                i.address.map(|a| a.to_string()),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("c0", "eth0", None),
            ("c1", "eth1", Some("10.9.0.1/24".to_string()))
        ]
    );
    let lines: Vec<usize> = t.ports.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![5, 6, 7]);
    assert_eq!((t.functions[0].line, t.links[1].line), (9, 12));
    assert_eq!(tap(&t.ports[2]), (None, "t", 1500, None));
    let err = load_str("name: x\nportz: 1\nlinks: 2\n", Path::new("f.yaml"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
            err.as_deref(),
            Some("f.yaml:2:1: portz: unknown key `portz`: allowed keys are `name`, `hosts`, `ports`, `functions`, `links`, `metrics`")
        );
    let two = load_str("ports:\n  a: { kind: null }\n", Path::new("f.yaml"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
            two.as_deref(),
            Some("f.yaml:1: name: missing: every topology needs a `name`\nf.yaml:2:3: ports.a: port `a` is not linked to anything (add it to `links`)")
        );
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    let text = "name: x\nhosts:\n  h: { address: 10.0.0.300/24 }\nports:\n  a: { kind: tap, host: h, mtu: 20 }\nfunctions:\n  s: { kind: hub }\nlinks:\n  - [a, nowhere]\n";
    let errors = load(text).err().unwrap_or_default();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for k in [
        "hosts.h.address",
        "ports.a.mtu",
        "functions.s.kind",
        "links[0][1]",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted, "errors come in file order");
}

#[test]
fn errors_print_file_line_column_key_and_message() {
    let e = TopologyError {
        file: "a.yaml".into(),
        line: 3,
        column: 5,
        key: "ports.a".into(),
        message: "bad".into(),
    };
    assert_eq!(e.to_string(), "a.yaml:3:5: ports.a: bad");
    let e = TopologyError {
        column: 0,
        key: String::new(),
        ..e
    };
    assert_eq!(e.to_string(), "a.yaml:3: bad");
    let missing = load_file(Path::new("/nonexistent/t.yaml"));
    assert!(matches!(missing, Err(LoadError::Io { .. })));
}

#[test]
fn every_broken_fixture_gives_its_expected_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bad-topologies");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.map(|e| e.path()).unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let first = text.lines().next().unwrap_or_default();
        let spec = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{}: no expect line", path.display()));
        let field = |name: &str| -> String {
            let start = spec
                .find(&format!("{name}="))
                .map(|i| i + name.len() + 1)
                .unwrap_or(spec.len());
            let rest = &spec[start..];
            if name == "contains" {
                rest.to_string()
            } else {
                rest.split(' ').next().unwrap_or_default().to_string()
            }
        };
        let line: usize = field("line").parse().unwrap_or(0);
        let errors = match load_file(&path) {
            Err(LoadError::Invalid(e)) => e,
            other => panic!("{}: expected errors, got {other:?}", path.display()),
        };
        assert!(
            errors.iter().any(|e| e.line == line
                && e.key == field("key")
                && e.message.contains(&field("contains"))),
            "{}: expected line {line} key {:?} containing {:?}, got:\n{}",
            path.display(),
            field("key"),
            field("contains"),
            list(&errors)
        );
        n += 1;
    }
    assert!(n >= 10, "only {n} fixtures");
}

/// Two null ports, `a` (linked to `s1` in `links[0]`) and `t`, the given functions, and
/// `links` from `links[1]` on; and the line of `links[0]`.
fn looped(functions: &str, links: &str) -> (String, usize) {
    let head = format!("name: x\nports:\n  a: {{ kind: null }}\n  t: {{ kind: null }}\nfunctions:\n{functions}links:\n");
    let line = head.lines().count() + 1;
    (format!("{head}  - [a, s1]\n{links}"), line)
}

#[test]
fn a_loop_of_switches_is_refused_at_the_link_that_closes_it() {
    const SPANNING: &str = "nfv has no spanning tree: remove one of these links";
    const SWITCHES: &str =
        "  s1: { kind: switch }\n  s2: { kind: switch }\n  s3: { kind: switch }\n";
    let all = format!("{SWITCHES}  fw: {{ kind: firewall }}\n  m: {{ kind: mirror }}\n");
    // A tree of switches, a firewall and a mirror loads.
    let (tree, _) = looped(
        &all,
        "  - [t, m.monitor]\n  - [s1, m, s2]\n  - [s2, fw, s3]\n",
    );
    if let Err(e) = load(&tree) {
        panic!("a tree loads: {}", list(&e));
    }
    let check = |functions: &str, links: &str, at: usize, through: &str, on_loop: &str| {
        let (text, line) = looped(functions, links);
        let message = format!("this link closes a loop through {through}: a broadcast a switch floods would go round it for ever (a firewall, NAT or mirror on the way passes broadcasts on); {SPANNING}: {on_loop}");
        assert_error(&text, line + at, &format!("links[{at}]"), &message);
    };
    let two = "  s1: { kind: switch }\n  s2: { kind: switch }\n";
    // Two links between the same two switches.
    check(
        two,
        "  - [t, s2]\n  - [s1, s2]\n  - [s2, s1]\n",
        3,
        "`s2`, `s1`",
        "links[2], links[3]",
    );
    // A switch linked to itself through two of its attachments.
    let attachments =
        "  s1:\n    kind: switch\n    attachments: { x: { vlan: 1 }, y: { vlan: 1 } }\n";
    check(
        attachments,
        "  - [t, s1]\n  - [s1.x, s1.y]\n",
        2,
        "`s1`",
        "links[2]",
    );
    // A ring of three switches, named with every link on it.
    let ring = "  - [t, s3]\n  - [s1, s2]\n  - [s2, s3]\n  - [s3, s1]\n";
    check(
        SWITCHES,
        ring,
        4,
        "`s3`, `s2`, `s1`",
        "links[2], links[3], links[4]",
    );
    // A firewall (or NAT) between the switches passes broadcasts on: the same loop.
    let fw = format!("{two}  fw: {{ kind: firewall }}\n");
    let through_fw = "  - [t, s2]\n  - [s1, fw, s2]\n  - [s1, s2]\n";
    check(&fw, through_fw, 3, "`s1`, `fw`, `s2`", "links[2], links[3]");
    let sides = "  - [t, s2]\n  - [s1, fw.inside]\n  - [fw.outside, s2]\n  - [s2, s1]\n";
    check(
        &fw,
        sides,
        4,
        "`s2`, `fw`, `s1`",
        "links[2], links[3], links[4]",
    );
    // A mirror's monitor gets a copy of what crosses it: linked back to the segment, each
    // broadcast comes round again (and is copied again).
    let m = format!("{two}  m: {{ kind: mirror }}\n");
    let monitor = "  - [t, s2]\n  - [s1, m, s2]\n  - [m.monitor, s1]\n";
    check(&m, monitor, 3, "`m`, `s1`", "links[2], links[3]");
}
