//! Tests of `router` and `dhcp-server` in topology files.

use super::*;
use nfv_functions::router::RouterSpec;
use std::time::Duration;

pub(super) fn load(text: &str) -> Result<Topology, Vec<TopologyError>> {
    match load_str(text, Path::new("dir/t.yaml")) {
        Ok(t) => Ok(t),
        Err(LoadError::Invalid(e)) => Err(e),
        Err(e) => panic!("{e}"),
    }
}

const ROUTED: &str = "\
name: r
hosts:
  alice: {}
  srv: { address: 10.0.2.10/24, gateway: 10.0.2.1 }
ports:
  a: { kind: tap, host: alice }
  s: { kind: tap, host: srv }
functions:
  lan: { kind: switch }
  gw:
    kind: router
    interfaces:
      lan: { address: 10.0.1.1/24 }
      wan: { address: 10.0.2.1/24, mtu: 1400, mac: 02:00:00:00:00:aa }
    routes:
      - { to: 0.0.0.0/0, via: 10.0.2.254 }
      - { to: 172.16.0.0/12, via: 10.0.1.9 }
    neighbors: { 10.0.2.254: 02:00:00:00:00:fe }
    icmp_rate: 5
  dhcp:
    kind: dhcp-server
    address: 10.0.1.2/24
    pool: [10.0.1.100-10.0.1.149, 10.0.1.200-10.0.1.201]
    router: 10.0.1.1
    dns: 10.0.1.1
    domain: lab.example
    lease: 10m
    reservations: { 02:00:00:00:00:0a: 10.0.1.10 }
    options: { 42: 10.0.1.1, 252: 0x0a0b }
    leases: state/dhcp.leases
links:
  - [a, lan]
  - [dhcp, lan]
  - [lan, gw.lan]
  - [gw.wan, s]
";

#[test]
fn a_routed_file_becomes_the_model() {
    let t = load(ROUTED).unwrap_or_else(|e| panic!("{}", list(&e)));
    assert!(t.hosts[0].uses_dhcp());
    assert!(!t.hosts[1].uses_dhcp());
    let Some(r) = t.functions[1].settings.downcast::<RouterSpec>() else {
        panic!("not a router")
    };
    assert_eq!(r.interfaces.len(), 2);
    assert_eq!(r.interfaces[1].mtu, 1400);
    assert_eq!(r.interfaces[1].mac, Some(MacAddr([2, 0, 0, 0, 0, 0xaa])));
    assert_eq!(r.routes[0].to.prefix(), 0);
    assert_eq!(r.routes[1].via, "10.0.1.9".parse::<Ipv4Addr>().unwrap());
    assert_eq!(r.neighbors.len(), 1);
    assert_eq!(r.icmp_rate, 5);
    assert_eq!(r.arp_queue, 16);
    let d = t.functions[2]
        .settings
        .downcast::<nfv_functions::dhcp::DhcpSpec>()
        .unwrap_or_else(|| panic!("not a dhcp server"));
    assert_eq!(d.own.pools.len(), 2);
    assert_eq!(d.own.lease, Duration::from_secs(600));
    assert_eq!(d.own.dns.len(), 1);
    assert_eq!(
        d.own.options,
        vec![(42, vec![10, 0, 1, 1]), (252, vec![10, 11])]
    );
    assert_eq!(d.leases, Some(PathBuf::from("dir/state/dhcp.leases")));
    assert_eq!(d.reservations.len(), 1);
    assert_eq!(
        t.links[2].ends[1],
        LinkEnd::Function {
            name: "gw".into(),
            attachment: Some("lan".into())
        }
    );
}

#[track_caller]
pub(super) fn expect(text: &str, key: &str, contains: &str) {
    let errors = match load(text) {
        Ok(_) => panic!("loaded; expected an error at {key}"),
        Err(e) => e,
    };
    assert!(
        errors
            .iter()
            .any(|e| e.key == key && e.line > 0 && e.message.contains(contains)),
        "no error at {key:?} containing {contains:?} in:\n{}",
        list(&errors)
    );
}

#[test]
fn router_rules_name_line_and_key() {
    let r = |from: &str, to: &str| ROUTED.replacen(from, to, 1);
    expect(
        &r(
            "lan: { address: 10.0.1.1/24 }",
            "lan: { address: 10.0.2.5/16 }",
        ),
        "functions.gw.interfaces.wan.address",
        "overlaps interface `lan`",
    );
    expect(
        &r(
            "lan: { address: 10.0.1.1/24 }",
            "lan: { address: 10.0.1.0/24 }",
        ),
        "functions.gw.interfaces.lan.address",
        "network or broadcast",
    );
    expect(
        &r("lan: { address: 10.0.1.1/24 }", "lan: { mtu: 1500 }"),
        "functions.gw.interfaces.lan.address",
        "missing",
    );
    expect(
        &r("mtu: 1400", "mtu: 9300"),
        "functions.gw.interfaces.wan.mtu",
        "out of range",
    );
    expect(
        &r(
            "to: 0.0.0.0/0, via: 10.0.2.254",
            "to: 0.0.0.0/0, via: 192.0.2.1",
        ),
        "functions.gw.routes[0].via",
        "is no host address in the router's interface subnets",
    );
    expect(
        &r(
            "to: 0.0.0.0/0, via: 10.0.2.254",
            "to: 0.0.0.0/0, via: 10.0.2.1",
        ),
        "functions.gw.routes[0].via",
        "own address",
    );
    // The subnet's network and broadcast addresses are no gateway either.
    for via in ["10.0.2.0", "10.0.2.255"] {
        expect(
            &r(
                "to: 0.0.0.0/0, via: 10.0.2.254",
                &format!("to: 0.0.0.0/0, via: {via}"),
            ),
            "functions.gw.routes[0].via",
            "is no host address",
        );
    }
    expect(
        &r("172.16.0.0/12", "172.16.0.1/12"),
        "functions.gw.routes[1].to",
        "did you mean 172.16.0.0/12",
    );
    expect(
        &r("172.16.0.0/12", "0.0.0.0/0"),
        "functions.gw.routes[1].to",
        "already given",
    );
    expect(
        &r("{ to: 0.0.0.0/0, via: 10.0.2.254 }", "{ via: 10.0.2.254 }"),
        "functions.gw.routes[0].to",
        "missing",
    );
    expect(
        &r(
            "{ to: 0.0.0.0/0, via: 10.0.2.254 }",
            "{ to: 0.0.0.0/0, gw: 1.1.1.1 }",
        ),
        "functions.gw.routes[0].gw",
        "unknown key",
    );
    expect(
        &r("10.0.2.254: 02", "10.9.2.254: 02"),
        "functions.gw.neighbors.10.9.2.254",
        "not another host",
    );
    expect(
        &r("icmp_rate: 5", "icmp_rate: 5\n    vlan: 3"),
        "functions.gw.vlan",
        "a `router` takes no `vlan`",
    );
    expect(
        &r("[lan, gw.lan]", "[lan, gw]"),
        "links[2][1]",
        "a router is linked by interface: write `gw.lan`",
    );
    expect(
        &r("[lan, gw.lan]", "[lan, gw.lna]"),
        "links[2][1]",
        "has no interface `lna`",
    );
    expect(
        &r("  - [gw.wan, s]\n", "  - [s, lan]\n"),
        "functions.gw.interfaces.wan",
        "declared but not linked",
    );
}

#[test]
fn dhcp_rules_name_line_and_key() {
    let r = |from: &str, to: &str| ROUTED.replacen(from, to, 1);
    expect(
        &r("    address: 10.0.1.2/24\n", ""),
        "functions.dhcp.address",
        "missing",
    );
    expect(
        &r(
            "[10.0.1.100-10.0.1.149, 10.0.1.200-10.0.1.201]",
            "10.0.1.100-10.0.2.1",
        ),
        "functions.dhcp.pool",
        "not inside the server's subnet",
    );
    expect(
        &r("10.0.1.100-10.0.1.149, ", "10.0.1.1-10.0.1.5, "),
        "functions.dhcp.pool[0]",
        "",
    );
    expect(
        &r("10.0.1.100-10.0.1.149, ", "10.0.1.2-10.0.1.5, "),
        "functions.dhcp.pool[0]",
        "server's own address",
    );
    expect(
        &r("10.0.1.200-10.0.1.201", "10.0.1.140-10.0.1.160"),
        "functions.dhcp.pool[1]",
        "overlaps",
    );
    expect(
        &r("10.0.1.100-10.0.1.149, ", "10.0.1.149-10.0.1.100, "),
        "functions.dhcp.pool[0]",
        "above the last",
    );
    expect(
        &r("10.0.1.100-10.0.1.149, ", "10.0.1.100, "),
        "functions.dhcp.pool[0]",
        "not a range",
    );
    expect(
        &r("router: 10.0.1.1\n", "router: 10.0.9.1\n"),
        "functions.dhcp.router",
        "not in the served subnet",
    );
    expect(
        &r("lease: 10m", "lease: 10m\n    renew: 20m"),
        "functions.dhcp.renew",
        "renew < rebind < lease",
    );
    expect(
        &r("domain: lab.example", "domain: lab..example"),
        "functions.dhcp.domain",
        "not a domain name",
    );
    expect(
        &r(
            "02:00:00:00:00:0a: 10.0.1.10",
            "02:00:00:00:00:0a: 10.0.7.10",
        ),
        "functions.dhcp.reservations.02:00:00:00:00:0a",
        "not a free address",
    );
    expect(
        &r("42: 10.0.1.1", "3: 10.0.1.1"),
        "functions.dhcp.options.3",
        "use `router`",
    );
    expect(
        &r("42: 10.0.1.1", "300: 10.0.1.1"),
        "functions.dhcp.options.300",
        "not an option code",
    );
    expect(
        &r("leases: state", "vlan: 4\n    leases: state"),
        "functions.dhcp.vlan",
        "a `dhcp-server` takes no `vlan`",
    );
    expect(
        &r("  - [dhcp, lan]\n", ""),
        "functions.dhcp",
        "is not linked",
    );
    expect(
        &r("  - [dhcp, lan]\n", "  - [dhcp, lan]\n  - [dhcp, gw.wan]\n"),
        "links[2][0]",
        "already linked",
    );
    expect(
        &r("[dhcp, lan]", "[dhcp.x, lan]"),
        "links[1][0]",
        "no sub-ends",
    );
}
