//! Tests of the registry's kinds read through the loader (`nat`, `firewall`): the model
//! they become and each rule's line and key.

use super::*;
use nfv_functions::conntrack::Timeouts;
use nfv_functions::firewall::{Action, PortRange, Prefix, Rule, RuleSet, StateSet};
use nfv_functions::nat::NatSpec as NatFunction;
use nfv_functions::nat::{NatConfig, PortForward};
use std::time::Duration;

use super::l3_tests::{expect, load};

fn function<'a>(t: &'a Topology, name: &str) -> &'a Settings {
    match t.functions.iter().find(|f| f.name == name) {
        Some(f) => &f.settings,
        None => panic!("no function {name}"),
    }
}

/// The settings of nat `name`.
fn nat<'a>(t: &'a Topology, name: &str) -> &'a NatFunction {
    let f = function(t, name);
    f.downcast::<NatFunction>()
        .unwrap_or_else(|| panic!("{name} is not a nat: {f:?}"))
}

/// The settings of firewall `name`.
fn firewall<'a>(t: &'a Topology, name: &str) -> &'a FirewallConfig {
    let f = function(t, name);
    f.downcast::<FirewallConfig>()
        .unwrap_or_else(|| panic!("{name} is not a firewall: {f:?}"))
}

const GATEWAY: &str = "\
name: g
ports:
  lan: { kind: tap }
  wan: { kind: tap }
functions:
  gw:
    kind: router
    interfaces:
      lan: { address: 192.168.1.1/24 }
      wan: { address: 203.0.113.2/24 }
  nat:
    kind: nat
    masquerade: gw.wan
    ports: 2000-3000
    max_sessions: 1000
    timeouts: { udp: 45s, tcp_established: 1h }
    forwards:
      - { proto: tcp, port: 8080, to: 192.168.1.10:80 }
      - { proto: udp, port: 5000, to: 192.168.1.10 }
  fw:
    kind: firewall
    max_connections: 500
    timeouts: { icmp: 10s }
    inbound:
      default: reject
      allow: [established, icmp, icmpv6, tcp/22, udp/5000-5010]
    outbound:
      rules:
        - { action: allow, state: [established, related] }
        - { action: reject, proto: tcp, dst_port: 23 }
        - { action: drop, src: 192.168.1.0/24, dst: 10.0.0.0/8, proto: udp, src_port: 1000-2000 }
        - { action: allow, proto: icmp, icmp_type: echo-request }
        - { action: drop, dst: 10.1.2.3, proto: 47, state: new }
        - { action: drop, src: 2001:db8:1::/48, dst: 2001:db8::5, proto: tcp, dst_port: 25 }
        - action: allow
          dst: fe80::/10
          proto: icmpv6
          icmp_type: neighbor-solicitation
links:
  - [lan, gw.lan]
  - [gw.wan, nat, fw, wan]
";

fn allow() -> Rule {
    Rule {
        action: Some(Action::Allow),
        ..Rule::default()
    }
}

#[test]
fn a_nat_becomes_the_model() {
    let t = load(GATEWAY).unwrap_or_else(|e| panic!("{}", list(&e)));
    let timeouts = Timeouts {
        udp: Duration::from_secs(45),
        tcp_established: Duration::from_secs(3600),
        ..Timeouts::default()
    };
    let inside = Ipv4Addr::new(192, 168, 1, 10);
    assert_eq!(
        nat(&t, "nat"),
        &(NatFunction {
            config: NatConfig {
                addresses: vec![Ipv4Addr::new(203, 0, 113, 2)],
                ports: PortRange { lo: 2000, hi: 3000 },
                forwards: vec![
                    PortForward {
                        proto: 6,
                        port: 8080,
                        to: inside,
                        to_port: 80
                    },
                    PortForward {
                        proto: 17,
                        port: 5000,
                        to: inside,
                        to_port: 5000
                    },
                ],
                max_sessions: 1000,
                timeouts,
            },
            interface: Some(("gw".into(), "wan".into())),
        })
    );
    assert_eq!(
        function(&t, "nat").0.wiring().gates,
        vec!["inside", "outside"]
    );
    assert_eq!(
        t.links[1].ends[1],
        LinkEnd::Function {
            name: "nat".into(),
            attachment: None
        }
    );
}

#[test]
fn a_firewall_becomes_the_model() {
    let t = load(GATEWAY).unwrap_or_else(|e| panic!("{}", list(&e)));
    let timeouts = Timeouts {
        icmp: Duration::from_secs(10),
        ..Timeouts::default()
    };
    let prefix = |a: [u8; 4], len: u8| Prefix {
        addr: Ipv4Addr::from(a).into(),
        len,
    };
    let prefix6 = |a: &str, len: u8| Prefix {
        addr: a.parse().unwrap_or_else(|e| panic!("{a}: {e}")),
        len,
    };
    let expected = FirewallConfig {
        inbound: RuleSet {
            default: Action::Reject,
            rules: vec![
                Rule {
                    state: Some(StateSet::ESTABLISHED.union(StateSet::RELATED)),
                    ..allow()
                },
                Rule {
                    proto: Some(1),
                    ..allow()
                },
                Rule {
                    proto: Some(58),
                    ..allow()
                },
                Rule {
                    proto: Some(6),
                    dst_port: Some(PortRange::one(22)),
                    ..allow()
                },
                Rule {
                    proto: Some(17),
                    dst_port: Some(PortRange { lo: 5000, hi: 5010 }),
                    ..allow()
                },
            ],
        },
        outbound: RuleSet {
            default: Action::Allow,
            rules: vec![
                Rule {
                    state: Some(StateSet::ESTABLISHED.union(StateSet::RELATED)),
                    ..allow()
                },
                Rule {
                    action: Some(Action::Reject),
                    proto: Some(6),
                    dst_port: Some(PortRange::one(23)),
                    ..Rule::default()
                },
                Rule {
                    action: Some(Action::Drop),
                    src: Some(prefix([192, 168, 1, 0], 24)),
                    dst: Some(prefix([10, 0, 0, 0], 8)),
                    proto: Some(17),
                    src_port: Some(PortRange { lo: 1000, hi: 2000 }),
                    ..Rule::default()
                },
                Rule {
                    proto: Some(1),
                    icmp_type: Some(8),
                    ..allow()
                },
                Rule {
                    action: Some(Action::Drop),
                    dst: Some(prefix([10, 1, 2, 3], 32)),
                    proto: Some(47),
                    state: Some(StateSet::NEW),
                    ..Rule::default()
                },
                Rule {
                    action: Some(Action::Drop),
                    src: Some(prefix6("2001:db8:1::", 48)),
                    dst: Some(prefix6("2001:db8::5", 128)),
                    proto: Some(6),
                    dst_port: Some(PortRange::one(25)),
                    ..Rule::default()
                },
                Rule {
                    dst: Some(prefix6("fe80::", 10)),
                    proto: Some(58),
                    icmp_type: Some(135),
                    ..allow()
                },
            ],
        },
        max_connections: 500,
        timeouts,
    };
    assert_eq!(firewall(&t, "fw"), &expected);
}

/// A file with ports `a` and `b` and `[a, NAME, b]`, NAME declared as `decl`.
fn chain(name: &str, decl: &str) -> String {
    format!(
            "name: c\nports:\n  a: {{ kind: null }}\n  b: {{ kind: null }}\nfunctions:\n  {name}: {decl}\nlinks:\n  - [a, {name}, b]\n"
        )
}

#[test]
fn shorthand_expands_in_order() {
    let t = load(&chain(
            "fw",
            "{ kind: firewall, outbound: { default: drop, allow: [new, established, related, invalid, icmp, tcp, udp, tcp/1-1023, udp/53] } }",
        ))
        .unwrap_or_else(|e| panic!("{}", list(&e)));
    let state = |s| Rule {
        state: Some(s),
        ..allow()
    };
    let proto = |p| Rule {
        proto: Some(p),
        ..allow()
    };
    let c = firewall(&t, "fw");
    assert_eq!(
        c.outbound,
        RuleSet {
            default: Action::Drop,
            rules: vec![
                state(StateSet::NEW),
                state(StateSet::ESTABLISHED.union(StateSet::RELATED)),
                state(StateSet::RELATED),
                state(StateSet::INVALID),
                proto(1),
                proto(6),
                proto(17),
                Rule {
                    dst_port: Some(PortRange { lo: 1, hi: 1023 }),
                    ..proto(6)
                },
                Rule {
                    dst_port: Some(PortRange::one(53)),
                    ..proto(17)
                },
            ],
        }
    );
    assert_eq!(c.inbound, FirewallConfig::default().inbound);
}

#[test]
fn absent_directions_take_the_defaults() {
    let t = load(&chain("fw", "{ kind: firewall }")).unwrap_or_else(|e| panic!("{}", list(&e)));
    assert_eq!(firewall(&t, "fw"), &FirewallConfig::default());
    // A direction given without rules has none; its default is per direction.
    let t = load(&chain(
        "fw",
        "{ kind: firewall, inbound: {}, outbound: { default: reject } }",
    ))
    .unwrap_or_else(|e| panic!("{}", list(&e)));
    let c = firewall(&t, "fw");
    assert_eq!(
        (&c.inbound, &c.outbound),
        (
            &RuleSet {
                default: Action::Drop,
                rules: Vec::new()
            },
            &RuleSet {
                default: Action::Reject,
                rules: Vec::new()
            }
        )
    );
    let t = load(&chain("nat", "{ kind: nat, masquerade: 203.0.113.9 }"))
        .unwrap_or_else(|e| panic!("{}", list(&e)));
    assert_eq!(
        nat(&t, "nat"),
        &(NatFunction {
            config: NatConfig {
                addresses: vec![Ipv4Addr::new(203, 0, 113, 9)],
                ports: nfv_functions::nat::DEFAULT_PORTS,
                forwards: Vec::new(),
                max_sessions: nfv_functions::conntrack::DEFAULT_MAX,
                timeouts: Timeouts::default(),
            },
            interface: None,
        })
    );
}

#[test]
fn masquerade_forms() {
    let addresses = |m: &str| -> Vec<Ipv4Addr> {
        let t = load(&chain("nat", &format!("{{ kind: nat, masquerade: {m} }}")))
            .unwrap_or_else(|e| panic!("{m}: {}", list(&e)));
        let n = nat(&t, "nat");
        assert_eq!(n.interface, None);
        n.config.addresses.clone()
    };
    let ip = |d: u8| Ipv4Addr::new(198, 51, 100, d);
    assert_eq!(addresses("198.51.100.7"), vec![ip(7)]);
    assert_eq!(
        addresses("198.51.100.1-198.51.100.4"),
        vec![ip(1), ip(2), ip(3), ip(4)]
    );
    assert_eq!(
        addresses("198.51.100.0/30"),
        vec![ip(0), ip(1), ip(2), ip(3)]
    );
    assert_eq!(addresses("198.51.96.0/20").len(), 4096);
    // The interface form is also in `a_nat_becomes_the_model`; the router may come later.
    let later = "name: c\nports:\n  a: { kind: null }\nfunctions:\n  nat: { kind: nat, masquerade: r.up }\n  r: { kind: router, interfaces: { up: { address: 10.9.0.1/16 } } }\nlinks:\n  - [a, nat.inside]\n  - [nat.outside, r.up]\n";
    let t = load(later).unwrap_or_else(|e| panic!("{}", list(&e)));
    let n = nat(&t, "nat");
    assert_eq!(
        (n.config.addresses.clone(), n.interface.clone()),
        (
            vec![Ipv4Addr::new(10, 9, 0, 1)],
            Some(("r".to_string(), "up".to_string()))
        )
    );
}

#[test]
fn nat_rules_name_line_and_key() {
    let with = |extra: &str| {
        chain(
            "nat",
            &format!("{{ kind: nat, masquerade: 203.0.113.2, {extra} }}"),
        )
    };
    expect(
        &with("ports: 0-100"),
        "functions.nat.ports",
        "port 0 cannot be handed out",
    );
    let one = load(&with("ports: 80")).unwrap_or_else(|e| panic!("{}", list(&e)));
    let n = nat(&one, "nat");
    assert_eq!(n.config.ports, PortRange::one(80));
    expect(
        &with("ports: 100000"),
        "functions.nat.ports",
        "out of range",
    );
    expect(
        &with("max_sessions: 0"),
        "functions.nat.max_sessions",
        "expected 1 to 16777216",
    );
    expect(
        &with("timeouts: { udpp: 5s }"),
        "functions.nat.timeouts.udpp",
        "unknown timeout `udpp`: expected one of `tcp_syn`",
    );
    expect(
        &with("timeouts: { udp: 0s }"),
        "functions.nat.timeouts.udp",
        "positive duration",
    );
    expect(
        &with("vlan: 3"),
        "functions.nat.vlan",
        "a `nat` takes no `vlan`",
    );
    expect(
        &with("inbound: {}"),
        "functions.nat.inbound",
        "a `nat` takes no `inbound`",
    );
    expect(
        &with("forwards: [{ proto: icmp, port: 1, to: 10.0.0.1 }]"),
        "functions.nat.forwards[0].proto",
        "expected tcp or udp",
    );
    expect(
        &with("forwards: [{ proto: tcp, port: 0, to: 10.0.0.1 }]"),
        "functions.nat.forwards[0].port",
        "expected 1 to 65535",
    );
    expect(
        &with("forwards: [{ proto: tcp, port: 80, to: 10.0.0.1:0 }]"),
        "functions.nat.forwards[0].to",
        "out of range",
    );
    expect(
        &with("forwards: [{ proto: tcp, port: 80 }]"),
        "functions.nat.forwards[0].to",
        "missing",
    );
    expect(
        &with("forwards: [{ proto: tcp, port: 80, to: x, via: y }]"),
        "functions.nat.forwards[0].via",
        "unknown key `via`",
    );
    let m = |m: &str| chain("nat", &format!("{{ kind: nat, masquerade: {m} }}"));
    expect(
        &m("198.51.96.0/19"),
        "functions.nat.masquerade",
        "holds 8192 addresses",
    );
    expect(
        &m("198.51.100.1/24"),
        "functions.nat.masquerade",
        "did you mean 198.51.100.0/24?",
    );
    expect(
        &m("198.51.100.9-198.51.100.1"),
        "functions.nat.masquerade",
        "the first address is above the last",
    );
    expect(
        &m("198.51.300.1"),
        "functions.nat.masquerade",
        "not an IPv4 address",
    );
    expect(
        &m("wan"),
        "functions.nat.masquerade",
        "expected ROUTER.INTERFACE",
    );
    expect(
        &m("gq.wan"),
        "functions.nat.masquerade",
        "no router named `gq`",
    );
    let t = "name: c\nports:\n  a: { kind: null }\nfunctions:\n  s: { kind: switch }\n  nat: { kind: nat, masquerade: s.x }\nlinks:\n  - [a, s, nat.inside]\n";
    expect(
        t,
        "functions.nat.masquerade",
        "`s` is a switch, not a router",
    );
    // Links.
    expect(
        &chain("nat", "{ kind: nat, masquerade: 203.0.113.2 }")
            .replace("[a, nat, b]", "[a, nat.inside, b]"),
        "links[0][1]",
        "single wire end",
    );
    expect(
        &chain("nat", "{ kind: nat, masquerade: 203.0.113.2 }")
            .replace("[a, nat, b]", "[a, nat.inner]"),
        "links[0][1]",
        "a nat has two sides",
    );
    expect(
        &chain("nat", "{ kind: nat, masquerade: 203.0.113.2 }")
            .replace("[a, nat, b]", "[a, nat.insdie]\n  - [nat.outside, b]"),
        "links[0][1]",
        "did you mean `inside`?",
    );
    expect(
        &chain("nat", "{ kind: nat, masquerade: 203.0.113.2 }").replace("[a, nat, b]", "[a, b]"),
        "functions.nat",
        "nat `nat` is not linked: put it in the middle of a chain",
    );
    let three = chain("nat", "{ kind: nat, masquerade: 203.0.113.2 }").replace(
        "  b: { kind: null }\n",
        "  b: { kind: null }\n  c: { kind: null }\n",
    ) + "  - [nat.outside, c]\n";
    expect(
        &three,
        "links[1][0]",
        "`nat.outside` is already linked at links[0][1]",
    );
    // Both sides named at link ends, in any order.
    let sides = chain("fw", "{ kind: firewall }")
        .replace("[a, fw, b]", "[a, fw.outside]\n  - [fw.inside, b]");
    assert!(load(&sides).is_ok(), "{sides}");
}

#[test]
fn firewall_rules_name_line_and_key() {
    let rule = |r: &str| {
        chain(
            "fw",
            &format!("{{ kind: firewall, outbound: {{ rules: [{r}] }} }}"),
        )
    };
    let k = "functions.fw.outbound.rules[0]";
    expect(
        &rule("{ proto: tcp }"),
        &format!("{k}.action"),
        "missing: a rule needs an `action`",
    );
    expect(
        &rule("{ action: allow, dst_port: 22 }"),
        &format!("{k}.dst_port"),
        "needs `proto: tcp` or `proto: udp`",
    );
    expect(
        &rule("{ action: allow, proto: udp, src_port: 9-1 }"),
        &format!("{k}.src_port"),
        "the first port is above the last",
    );
    expect(
        &rule("{ action: allow, proto: tcp, icmp_type: 8 }"),
        &format!("{k}.icmp_type"),
        "needs `proto: icmp` or `proto: icmpv6`; this rule's proto is tcp",
    );
    expect(
        &rule("{ action: allow, proto: icmp, icmp_type: echo }"),
        &format!("{k}.icmp_type"),
        "not an ICMP type",
    );
    expect(
        &rule("{ action: allow, proto: icmp, icmp_type: router-advertisement }"),
        &format!("{k}.icmp_type"),
        "is an ICMPv6 type, but this rule's proto is icmp",
    );
    expect(
        &rule("{ action: allow, src: 10.0.0.0/8, dst: 2001:db8::/32 }"),
        &format!("{k}.dst"),
        "`dst` is an IPv6 prefix but `src` is IPv4",
    );
    expect(
        &rule("{ action: allow, src: 2001:db8::/32, proto: icmp }"),
        &format!("{k}.proto"),
        "use `proto: icmpv6`",
    );
    expect(
        &rule("{ action: allow, src: 2001:db8::1/32 }"),
        &format!("{k}.src"),
        "did you mean 2001:db8::/32?",
    );
    expect(
        &rule("{ action: allow, proto: sctp }"),
        &format!("{k}.proto"),
        "not a protocol",
    );
    expect(
        &rule("{ action: allow, proto: 256 }"),
        &format!("{k}.proto"),
        "out of range",
    );
    expect(
        &rule("{ action: allow, src: 10.0.0 }"),
        &format!("{k}.src"),
        "not an address or prefix",
    );
    expect(
        &rule("{ action: allow, state: [] }"),
        &format!("{k}.state"),
        "matches nothing",
    );
    expect(
        &rule("{ action: allow, state: old }"),
        &format!("{k}.state"),
        "not a connection state",
    );
    expect(
        &rule("{ action: allow, port: 22 }"),
        &format!("{k}.port"),
        "unknown key `port`",
    );
    expect(
        &chain("fw", "{ kind: firewall, inbound: { allow: [ssh] } }"),
        "functions.fw.inbound.allow[0]",
        "`ssh` is not an allow item",
    );
    expect(
        &chain("fw", "{ kind: firewall, inbound: { allow: tcp/99999 } }"),
        "functions.fw.inbound.allow",
        "`tcp/99999`: port 99999 is out of range",
    );
    expect(
        &chain("fw", "{ kind: firewall, inbound: { default: deny } }"),
        "functions.fw.inbound.default",
        "expected allow, drop or reject",
    );
    expect(
        &chain("fw", "{ kind: firewall, masquerade: 1.2.3.4 }"),
        "functions.fw.masquerade",
        "a `firewall` takes no `masquerade`",
    );
    expect(
        &chain("fw", "{ kind: firewall, max_connections: 99999999 }"),
        "functions.fw.max_connections",
        "out of range",
    );
}
