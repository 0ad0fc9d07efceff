//! A firewall's settings as the topology file writes them, checked: the `firewall` kind.
//!
//! ```yaml
//! functions:
//!   fw:
//!     kind: firewall                 # two sides: `inside` (gate 0) and `outside` (gate 1)
//!     max_connections: 65536         # 1 to 16777216 (default 65536), per family: IPv4 and
//!                                    # IPv6 have a table each, both reserved at start
//!     timeouts: { icmp: 10s }        # idle timeouts: tcp_syn, tcp_established, tcp_fin,
//!                                    # tcp_close, udp, udp_stream, icmp (defaults: Linux's)
//!     inbound:                       # packets from the outside side; absent: allow
//!                                    # established and related, drop the rest
//!       default: drop                # allow, drop or reject when no rule matches (default drop)
//!       allow: [established, icmp, icmpv6, tcp/22, udp/5000-5010]   # shorthand, below
//!     outbound:                      # packets from the inside side; absent: allow everything
//!       default: allow               # (default allow)
//!       rules:                       # in order; the first rule that matches decides
//!         - { action: allow, state: [established, related] }
//!         - { action: reject, proto: tcp, dst_port: 23 }   # IPv4 and IPv6
//!         - { action: drop, src: 192.168.1.0/24, dst: 10.0.0.0/8, proto: udp, src_port: 1000-2000 }
//!         - { action: drop, src: 2001:db8:1::/48, proto: tcp, dst_port: 25 }   # IPv6 only
//!         - { action: allow, proto: icmp, icmp_type: echo-request }
//!         - { action: allow, proto: icmpv6, icmp_type: echo-request }
//! links:
//!   - [lan, fw, wan]                 # in the middle of a chain the left neighbour is wired to
//!                                    # `inside`, the right one to `outside`
//!   - [lan2, fw2.inside]             # at the end of a link, name the side
//! ```
//!
//! Rule keys: `action` (required: allow, drop or reject); `src` and `dst` (an IPv4 prefix
//! like 10.0.0.0/8 or an IPv6 one like 2001:db8::/32; an address alone is a /32 or a /128;
//! a rule with a prefix matches packets of the prefix's family only, so `src` and `dst` of
//! one rule are of one family; a rule without either matches IPv4 and IPv6); `proto` (tcp,
//! udp, icmp, icmpv6 or a number from 0 to 255: 1 is ICMP, for IPv4 packets only; 58 is
//! ICMPv6, for IPv6 only; for IPv6 the protocol is the upper-layer one, past the extension
//! headers); `src_port` and `dst_port` (`N` or `FIRST-LAST`, with `proto` tcp or udp, of
//! either family); `icmp_type` (a number from 0 to 255, or a name: with `proto: icmp`
//! echo-reply, dest-unreachable, echo-request, time-exceeded; with `proto: icmpv6`
//! dest-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request,
//! echo-reply, router-solicitation, router-advertisement, neighbor-solicitation,
//! neighbor-advertisement); `state` (one or a list of new, established, related, invalid).
//! A direction that is given but has neither `allow` nor `rules` has no rules.
//!
//! `allow` items are allow rules, in order: `new`, `established` (established and related),
//! `related`, `invalid` match the connection state; `icmp`, `icmpv6`, `tcp`, `udp` the
//! protocol; `tcp/N`, `udp/N`, `tcp/FIRST-LAST`, `udp/FIRST-LAST` the protocol and
//! destination port (IPv4 and IPv6). A direction takes `allow` or `rules`, not both.
//!
//! Whatever the rules say, some ICMPv6 passes (neighbor discovery with hop limit 255,
//! packet too big, and errors about tracked connections): see
//! [`Firewall`](super::Firewall).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use super::{Action, Firewall, FirewallConfig, PortRange, Prefix, Rule, RuleSet, StateSet};
use crate::ip::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::kind::schema::{
    did_you_mean, max_entries, one_of, parse_prefix, timeouts, OneOrMany, Ordered, RawDuration,
};
use crate::kind::{self, BuildContext, Built, Counting, Kind, Metric, Report, Spec, Wiring};

/// The two sides, in gate order.
pub const SIDES: [&str; 2] = ["inside", "outside"];

/// The `firewall` kind, for the registry.
pub struct FirewallKind;

impl Kind for FirewallKind {
    fn name(&self) -> &'static str {
        "firewall"
    }

    fn about(&self) -> &'static str {
        "a stateful firewall between `inside` and `outside`: inbound and outbound rules, \
         max_connections, timeouts"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["max_connections", "timeouts", "inbound", "outbound"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["firewall", "conntrack"]
    }

    fn metrics(&self) -> &'static [&'static Metric] {
        &super::metrics::METRICS
    }

    fn load(&self, text: &str, report: &mut dyn Report) -> Option<Box<dyn Spec>> {
        let raw: RawFirewall = kind::settings(text, report)?;
        let mut checked = Checked {
            report: Counting::new(report),
        };
        let config = checked.firewall(&raw);
        (checked.report.errors == 0).then(|| Box::new(config) as Box<dyn Spec>)
    }
}

/// A firewall as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirewall {
    max_connections: Option<u64>,
    timeouts: Option<Ordered<RawDuration>>,
    inbound: Option<RawDirection>,
    outbound: Option<RawDirection>,
}

/// One direction of a firewall as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirection {
    default: Option<String>,
    allow: Option<OneOrMany>,
    rules: Option<Vec<RawRule>>,
}

/// A firewall rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: Option<String>,
    src: Option<String>,
    dst: Option<String>,
    proto: Option<RawProto>,
    src_port: Option<RawPorts>,
    dst_port: Option<RawPorts>,
    icmp_type: Option<RawIcmpType>,
    state: Option<OneOrMany>,
}

crate::number_or_word!(
    RawProto,
    "a protocol: tcp, udp, icmp, icmpv6 or a number from 0 to 255"
);
crate::number_or_word!(pub RawPorts, "a port or a range of ports, like 22 or 1000-2000");
crate::number_or_word!(
    RawIcmpType,
    "an ICMP or ICMPv6 type: a number from 0 to 255, or a name like echo-request"
);

/// ICMP type names (`proto: icmp`).
const ICMP_TYPES: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("dest-unreachable", 3),
    ("echo-request", 8),
    ("time-exceeded", 11),
];

/// ICMPv6 type names (`proto: icmpv6`).
const ICMPV6_TYPES: &[(&str, u8)] = &[
    ("dest-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("router-solicitation", 133),
    ("router-advertisement", 134),
    ("neighbor-solicitation", 135),
    ("neighbor-advertisement", 136),
];

/// Protocol names, for messages.
fn proto_name(p: u8) -> String {
    match p {
        PROTO_ICMP => "icmp".into(),
        PROTO_ICMPV6 => "icmpv6".into(),
        PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        n => n.to_string(),
    }
}

/// The type names of ICMP protocol `proto` (1 or 58), if it is one.
fn icmp_types(proto: u8) -> Option<&'static [(&'static str, u8)]> {
    match proto {
        PROTO_ICMP => Some(ICMP_TYPES),
        PROTO_ICMPV6 => Some(ICMPV6_TYPES),
        _ => None,
    }
}

/// ICMP type `t` of a rule with `proto` as the topology file names it: its name for
/// ICMP or ICMPv6 if it has one, else its number.
pub(super) fn icmp_type_name(proto: Option<u8>, t: u8) -> String {
    proto
        .and_then(icmp_types)
        .and_then(|names| names.iter().find(|(_, ty)| *ty == t))
        .map_or_else(|| t.to_string(), |(n, _)| (*n).to_string())
}

/// `N` or `FIRST-LAST`, ports 0 to 65535.
pub fn port_range(text: &str) -> Result<PortRange, String> {
    let port = |p: &str| -> Result<u16, String> {
        let p = p.trim();
        match p.parse::<u64>() {
            Ok(n) if n <= 65535 => Ok(n as u16),
            Ok(n) => Err(format!("port {n} is out of range: expected 0 to 65535")),
            Err(_) => Err(format!(
                "`{text}` is not a port or range: expected N or FIRST-LAST, like 22 or 1000-2000"
            )),
        }
    };
    match text.split_once('-') {
        None => port(text).map(PortRange::one),
        Some((a, b)) => {
            let (lo, hi) = (port(a)?, port(b)?);
            if lo > hi {
                return Err(format!(
                    "`{text}`: the first port is above the last (write {hi}-{lo})"
                ));
            }
            Ok(PortRange { lo, hi })
        }
    }
}

/// A port range as written: a number or text.
pub fn raw_port_range(r: &RawPorts) -> Result<PortRange, String> {
    match &r.0 {
        Ok(n) if *n <= 65535 => Ok(PortRange::one(*n as u16)),
        Ok(n) => Err(format!("port {n} is out of range: expected 0 to 65535")),
        Err(t) => port_range(t),
    }
}

/// An `allow` shorthand item as an allow rule.
fn shorthand(item: &str) -> Result<Rule, String> {
    let allow = Rule {
        action: Some(Action::Allow),
        ..Rule::default()
    };
    if let Some(&(_, s)) = StateSet::NAMES.iter().find(|(n, _)| *n == item) {
        let state = if s == StateSet::ESTABLISHED {
            s.union(StateSet::RELATED)
        } else {
            s
        };
        return Ok(Rule {
            state: Some(state),
            ..allow
        });
    }
    let proto = |p: &str| match p {
        "icmp" => Some(PROTO_ICMP),
        "icmpv6" => Some(PROTO_ICMPV6),
        "tcp" => Some(PROTO_TCP),
        "udp" => Some(PROTO_UDP),
        _ => None,
    };
    if let Some(p) = proto(item) {
        return Ok(Rule {
            proto: Some(p),
            ..allow
        });
    }
    if let Some((p, ports)) = item.split_once('/') {
        if let Some(p @ (PROTO_TCP | PROTO_UDP)) = proto(p) {
            let range = port_range(ports).map_err(|m| format!("`{item}`: {m}"))?;
            return Ok(Rule {
                proto: Some(p),
                dst_port: Some(range),
                ..allow
            });
        }
    }
    Err(format!(
        "`{item}` is not an allow item: expected a state (new, established, related, invalid), \
         a protocol (icmp, icmpv6, tcp, udp), or tcp/PORT, udp/PORT, tcp/FIRST-LAST, udp/FIRST-LAST \
         (like tcp/22 or udp/5000-5010)"
    ))
}

/// An IPv6 prefix (`2001:db8::/32`, no host bits) or address (a /128).
fn parse_prefix6(s: &str) -> Result<(Ipv6Addr, u8), String> {
    let (a, len) = match s.split_once('/') {
        Some((a, len)) => (a, Some(len)),
        None => (s, None),
    };
    let addr: Ipv6Addr = a.trim().parse().map_err(|_| {
        format!("`{a}` is not an IPv6 address (expected like 2001:db8::/32, or 2001:db8::1 for one address)")
    })?;
    let Some(len) = len else {
        return Ok((addr, 128));
    };
    let len: u8 = len
        .trim()
        .parse()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| format!("`/{len}` is not an IPv6 prefix length from 0 to 128"))?;
    let net = Ipv6Addr::from(u128::from(addr) & super::prefix_mask6(len));
    if net != addr {
        return Err(format!(
            "`{s}` has host bits set: did you mean {net}/{len}?"
        ));
    }
    Ok((addr, len))
}

/// The semantic checks, reporting by key path below the function.
struct Checked<'r> {
    /// Where problems go, counted: the settings are good when none went.
    report: Counting<'r>,
}

impl Checked<'_> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.report.error(key, message.into());
    }

    fn firewall(&mut self, f: &RawFirewall) -> FirewallConfig {
        let defaults = FirewallConfig::default();
        let inbound = self.direction(
            "inbound",
            f.inbound.as_ref(),
            defaults.inbound,
            Action::Drop,
        );
        let outbound = self.direction(
            "outbound",
            f.outbound.as_ref(),
            defaults.outbound,
            Action::Allow,
        );
        let max_connections = max_entries(&mut self.report, "max_connections", f.max_connections);
        let timeouts = timeouts(&mut self.report, "", f.timeouts.as_ref());
        FirewallConfig {
            inbound,
            outbound,
            max_connections,
            timeouts,
        }
    }

    /// One direction's rules: `absent` when not given; else its `default` (or
    /// `default_action`) and its `allow` or `rules`.
    fn direction(
        &mut self,
        key: &str,
        d: Option<&RawDirection>,
        absent: RuleSet,
        default_action: Action,
    ) -> RuleSet {
        let Some(d) = d else {
            return absent;
        };
        let default = match d.default.as_deref() {
            None => default_action,
            Some(a) => self
                .action(&format!("{key}.default"), a)
                .unwrap_or(default_action),
        };
        if d.allow.is_some() && d.rules.is_some() {
            self.error(
                &format!("{key}.rules"),
                "give either `allow` (the shorthand list) or `rules`, not both: use `rules`, \
                 which can do everything `allow` does (e.g. `- { action: allow, proto: tcp, dst_port: 22 }`)",
            );
        }
        let mut rules = Vec::new();
        if let Some(allow) = &d.allow {
            let akey = format!("{key}.allow");
            for (i, item) in allow.items.iter().enumerate() {
                match shorthand(item.trim()) {
                    Ok(r) => rules.push(r),
                    Err(m) => self.error(&allow.key(&akey, i), m),
                }
            }
        }
        for (i, r) in d.rules.iter().flatten().enumerate() {
            if let Some(rule) = self.rule(&format!("{key}.rules[{i}]"), r) {
                rules.push(rule);
            }
        }
        RuleSet { default, rules }
    }

    fn action(&mut self, key: &str, a: &str) -> Option<Action> {
        match a {
            "allow" => Some(Action::Allow),
            "drop" => Some(Action::Drop),
            "reject" => Some(Action::Reject),
            _ => {
                let hint = did_you_mean(a, ["allow", "drop", "reject"]);
                self.error(
                    key,
                    format!("`{a}` is not an action: expected allow, drop or reject{hint}"),
                );
                None
            }
        }
    }

    /// `src` or `dst`: an IPv4 or IPv6 prefix, or an address for a /32 or a /128.
    fn rule_prefix(&mut self, key: &str, s: &str) -> Option<Prefix> {
        let s = s.trim();
        let parsed = if s.contains(':') {
            parse_prefix6(s).map(|(addr, len)| Prefix {
                addr: IpAddr::V6(addr),
                len,
            })
        } else if s.contains('/') {
            parse_prefix(s).map(|net| Prefix {
                addr: IpAddr::V4(net.network()),
                len: net.prefix(),
            })
        } else {
            s.parse::<Ipv4Addr>()
                .map(|addr| Prefix {
                    addr: IpAddr::V4(addr),
                    len: 32,
                })
                .map_err(|_| {
                    format!(
                        "`{s}` is not an address or prefix: expected an IPv4 or IPv6 prefix like \
                         10.0.0.0/8 or 2001:db8::/32, or one address (10.0.0.1, 2001:db8::1)"
                    )
                })
        };
        parsed.map_err(|m| self.error(key, m)).ok()
    }

    /// `icmp_type` (a number or a name, as written) of a rule whose protocol is `proto`
    /// (`proto_ok`: the protocol was not given or is good, so its absence is worth saying).
    fn icmp_type(
        &mut self,
        tkey: &str,
        t: &Result<u64, String>,
        proto: Option<u8>,
        proto_ok: bool,
    ) -> Option<u8> {
        let names = match proto {
            Some(p) => match icmp_types(p) {
                Some(names) => names,
                None => {
                    self.error(
                        tkey,
                        format!(
                            "`icmp_type` needs `proto: icmp` or `proto: icmpv6`; this rule's proto is {}",
                            proto_name(p)
                        ),
                    );
                    return None;
                }
            },
            None => {
                if proto_ok {
                    self.error(
                        tkey,
                        "`icmp_type` needs `proto: icmp` (IPv4) or `proto: icmpv6` (IPv6)",
                    );
                }
                return None;
            }
        };
        let (what, other, other_proto) = if proto == Some(PROTO_ICMPV6) {
            ("an ICMPv6", ICMP_TYPES, "icmp")
        } else {
            ("an ICMP", ICMPV6_TYPES, "icmpv6")
        };
        match t {
            Ok(n) if *n <= 255 => Some(*n as u8),
            Ok(n) => {
                self.error(
                    tkey,
                    format!("{what} type {n} is out of range: expected 0 to 255"),
                );
                None
            }
            Err(name) => {
                if let Some(&(_, ty)) = names.iter().find(|(n, _)| n == name) {
                    return Some(ty);
                }
                let list: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                let proto = proto_name(proto.unwrap_or(PROTO_ICMP));
                let message = if other.iter().any(|(n, _)| n == name) {
                    let (this, that) = if other_proto == "icmp" {
                        ("an ICMP (IPv4)", "ICMPv6")
                    } else {
                        ("an ICMPv6", "ICMP (IPv4)")
                    };
                    format!(
                        "`{name}` is {this} type, but this rule's proto is {proto} ({that}): use \
                         `proto: {other_proto}`, or with `proto: {proto}` a number from 0 to 255 \
                         or one of {}",
                        one_of(&list)
                    )
                } else {
                    let hint = did_you_mean(name, list.iter().copied());
                    format!(
                        "`{name}` is not {what} type: with `proto: {proto}` expected a number \
                         from 0 to 255 or one of {}{hint}",
                        one_of(&list)
                    )
                };
                self.error(tkey, message);
                None
            }
        }
    }

    fn rule(&mut self, key: &str, r: &RawRule) -> Option<Rule> {
        let mut ok = true;
        let action = match r.action.as_deref() {
            None => {
                self.error(
                    &format!("{key}.action"),
                    "missing: a rule needs an `action`: allow, drop or reject",
                );
                None
            }
            Some(a) => self.action(&format!("{key}.action"), a),
        };
        ok &= action.is_some();
        let mut prefix = |v: &mut Self, name: &str, s: &Option<String>| -> Option<Prefix> {
            let p = v.rule_prefix(&format!("{key}.{name}"), s.as_deref()?);
            ok &= p.is_some();
            p
        };
        let src = prefix(self, "src", &r.src);
        let dst = prefix(self, "dst", &r.dst);
        // The family the prefixes give the rule: `(is IPv6, the key that says so)`.
        let family = match (src, dst) {
            (Some(s), Some(d)) if s.is_ipv6() != d.is_ipv6() => {
                let fam = |p: Prefix| if p.is_ipv6() { "IPv6" } else { "IPv4" };
                self.error(
                    &format!("{key}.dst"),
                    format!(
                        "`dst` is an {} prefix but `src` is {}: a rule with prefixes matches \
                         one address family; write one rule per family",
                        fam(d),
                        fam(s)
                    ),
                );
                ok = false;
                None
            }
            (Some(s), _) => Some((s.is_ipv6(), "src")),
            (None, Some(d)) => Some((d.is_ipv6(), "dst")),
            (None, None) => None,
        };
        let proto = match &r.proto {
            None => None,
            Some(RawProto(Ok(n))) if *n <= 255 => Some(*n as u8),
            Some(RawProto(Ok(n))) => {
                self.error(
                    &format!("{key}.proto"),
                    format!("protocol {n} is out of range: expected 0 to 255"),
                );
                ok = false;
                None
            }
            Some(RawProto(Err(t))) => match t.as_str() {
                "icmp" => Some(PROTO_ICMP),
                "icmpv6" => Some(PROTO_ICMPV6),
                "tcp" => Some(PROTO_TCP),
                "udp" => Some(PROTO_UDP),
                _ => {
                    // `icmp6`, `ipv6-icmp` (/etc/protocols): as close to `icmp` as to
                    // `icmpv6` by spelling, but meant the second.
                    let hint = if t.contains("icmp") && t.contains('6') {
                        "; did you mean `icmpv6`?".to_string()
                    } else {
                        did_you_mean(t, ["tcp", "udp", "icmp", "icmpv6"])
                    };
                    self.error(
                        &format!("{key}.proto"),
                        format!("`{t}` is not a protocol: expected tcp, udp, icmp, icmpv6 or a number from 0 to 255{hint}"),
                    );
                    ok = false;
                    None
                }
            },
        };
        // ICMP is IPv4's and ICMPv6 IPv6's: with a prefix of the other family the rule
        // would match nothing.
        match (proto, family) {
            (Some(PROTO_ICMP), Some((true, by))) => {
                self.error(
                    &format!("{key}.proto"),
                    format!(
                        "`proto: icmp` is ICMP for IPv4, which this rule's IPv6 `{by}` never \
                         carries: use `proto: icmpv6`"
                    ),
                );
                ok = false;
            }
            (Some(PROTO_ICMPV6), Some((false, by))) => {
                self.error(
                    &format!("{key}.proto"),
                    format!(
                        "`proto: icmpv6` is carried by IPv6 only, and this rule's `{by}` is \
                         IPv4: use `proto: icmp`, or an IPv6 prefix"
                    ),
                );
                ok = false;
            }
            _ => {}
        }
        let proto_ok = r.proto.is_none() || proto.is_some();
        let mut ports = |v: &mut Self, name: &str, p: &Option<RawPorts>| -> Option<PortRange> {
            let p = p.as_ref()?;
            let pkey = format!("{key}.{name}");
            let range = match raw_port_range(p) {
                Ok(range) => range,
                Err(m) => {
                    v.error(&pkey, m);
                    ok = false;
                    return None;
                }
            };
            match proto {
                Some(PROTO_TCP | PROTO_UDP) => Some(range),
                Some(other) => {
                    v.error(
                        &pkey,
                        format!(
                            "`{name}` matches TCP and UDP only, but this rule's proto is {}: give `proto: tcp` or `proto: udp`, or remove `{name}`",
                            proto_name(other)
                        ),
                    );
                    ok = false;
                    None
                }
                None if proto_ok => {
                    v.error(
                        &pkey,
                        format!("`{name}` needs `proto: tcp` or `proto: udp` (ports are TCP and UDP fields)"),
                    );
                    ok = false;
                    None
                }
                None => None,
            }
        };
        let src_port = ports(self, "src_port", &r.src_port);
        let dst_port = ports(self, "dst_port", &r.dst_port);
        let icmp_type = match &r.icmp_type {
            None => None,
            Some(RawIcmpType(t)) => self.icmp_type(&format!("{key}.icmp_type"), t, proto, proto_ok),
        };
        ok &= r.icmp_type.is_none() || icmp_type.is_some();
        let state = match &r.state {
            None => None,
            Some(names) => {
                let skey = format!("{key}.state");
                if names.items.is_empty() {
                    self.error(
                        &skey,
                        "an empty state list matches nothing: name states, or leave `state` out",
                    );
                }
                let mut set = StateSet::default();
                for (i, n) in names.items.iter().enumerate() {
                    match StateSet::NAMES.iter().find(|(s, _)| s == n) {
                        Some(&(_, s)) => set = set.union(s),
                        None => {
                            let all: Vec<&str> = StateSet::NAMES.iter().map(|(s, _)| *s).collect();
                            let hint = did_you_mean(n, all.iter().copied());
                            self.error(
                                &names.key(&skey, i),
                                format!(
                                    "`{n}` is not a connection state: expected one of {}{hint}",
                                    one_of(&all)
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                (set != StateSet::default()).then_some(set)
            }
        };
        ok &= r.state.is_none() || state.is_some();
        ok.then_some(Rule {
            action,
            src,
            dst,
            proto,
            src_port,
            dst_port,
            icmp_type,
            state,
        })
    }
}

impl Spec for FirewallConfig {
    fn kind(&self) -> &'static dyn Kind {
        &FirewallKind
    }

    fn wiring(&self) -> Wiring {
        Wiring {
            noun: "side",
            ..Wiring::fixed(&SIDES, Some((0, 1)))
        }
    }

    fn build(&self, _at: &BuildContext<'_>) -> Result<Built, String> {
        let fw = Firewall::new(self.clone());
        let stats = fw.stats();
        Ok(Built::new(fw, stats))
    }

    /// `65536 connections a family (IPv4, IPv6)`, then each direction's default and rules (the
    /// first 20).
    fn describe(&self) -> String {
        let mut s = format!(
            "firewall, {} connections a family (IPv4, IPv6)",
            self.max_connections
        );
        for (dir, set) in [("inbound", &self.inbound), ("outbound", &self.outbound)] {
            s.push_str(&format!(
                "\n{dir}: {} rule(s), default {}",
                set.rules.len(),
                set.default.name()
            ));
            for r in set.rules.iter().take(20) {
                s.push_str(&format!("\n  {}", fmt_rule(r)));
            }
            if set.rules.len() > 20 {
                s.push_str(&format!("\n  ... and {} more rules", set.rules.len() - 20));
            }
        }
        s
    }
}

/// A rule as one line, in the file's own words: `allow tcp dst_port 22`.
pub fn fmt_rule(r: &Rule) -> String {
    let mut parts: Vec<String> = vec![r.action.map_or("allow", Action::name).to_string()];
    if let Some(p) = r.proto {
        parts.push(match p {
            PROTO_ICMP | PROTO_ICMPV6 | PROTO_TCP | PROTO_UDP => proto_name(p),
            n => format!("proto {n}"),
        });
    }
    if let Some(p) = r.src {
        parts.push(format!("src {}/{}", p.addr, p.len));
    }
    if let Some(p) = r.src_port {
        parts.push(format!("src_port {p}"));
    }
    if let Some(p) = r.dst {
        parts.push(format!("dst {}/{}", p.addr, p.len));
    }
    if let Some(p) = r.dst_port {
        parts.push(format!("dst_port {p}"));
    }
    if let Some(t) = r.icmp_type {
        parts.push(format!("icmp_type {t}"));
    }
    if let Some(set) = r.state {
        parts.push(format!("state {set}"));
    }
    if parts.len() == 1 {
        parts.push("everything".into());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Problems;

    /// The settings of a firewall written `text`, or its problems (key, message).
    fn load(text: &str) -> Result<FirewallConfig, Vec<(String, String)>> {
        let mut p = Problems::default();
        match FirewallKind.load(text, &mut p) {
            Some(s) => Ok(s
                .as_any()
                .downcast_ref::<FirewallConfig>()
                .cloned()
                .unwrap_or_else(|| panic!("not a firewall"))),
            None => Err(p.0),
        }
    }

    /// The outbound rules of a firewall whose outbound rules are `rules` (YAML).
    fn rules(rules: &str) -> Result<Vec<Rule>, Vec<(String, String)>> {
        load(&format!("{{ outbound: {{ rules: [{rules}] }} }}")).map(|c| c.outbound.rules)
    }

    /// The one problem of `rules`: its key below `outbound.rules[0]`, and its message.
    fn problem(r: &str) -> (String, String) {
        match rules(r) {
            Ok(r) => panic!("loaded: {r:?}"),
            Err(p) => match p.as_slice() {
                [(k, m)] => (
                    k.trim_start_matches("outbound.rules[0].").to_string(),
                    m.clone(),
                ),
                _ => panic!("not one problem: {p:?}"),
            },
        }
    }

    fn v6(s: &str, len: u8) -> Option<Prefix> {
        Some(Prefix {
            addr: IpAddr::V6(s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))),
            len,
        })
    }

    #[test]
    fn ipv6_prefixes_icmpv6_and_its_type_names_load() {
        let r = rules(
            "{ action: drop, src: 2001:db8::/32, dst: 2001:db8:1::5, proto: tcp, dst_port: 25 },\
             { action: allow, proto: icmpv6, icmp_type: router-advertisement },\
             { action: allow, proto: 58, icmp_type: packet-too-big, src: '::/0' },\
             { action: allow, dst: \"fe80::/10\", proto: icmpv6, icmp_type: 136 },\
             { action: reject, proto: icmp, icmp_type: dest-unreachable }",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r[0].src, v6("2001:db8::", 32));
        assert_eq!(r[0].dst, v6("2001:db8:1::5", 128), "an address is a /128");
        assert_eq!(
            (r[1].proto, r[1].icmp_type),
            (Some(PROTO_ICMPV6), Some(134))
        );
        assert_eq!((r[2].proto, r[2].icmp_type), (Some(58), Some(2)));
        assert_eq!(r[2].src, v6("::", 0));
        assert_eq!(r[3].dst, v6("fe80::", 10));
        assert_eq!(
            (r[4].proto, r[4].icmp_type),
            (Some(PROTO_ICMP), Some(3)),
            "IPv4's names"
        );
        assert_eq!(
            r[0].describe(),
            "proto tcp src 2001:db8::/32 dst 2001:db8:1::5/128 dst_port 25"
        );
        assert_eq!(
            r[1].describe(),
            "proto icmpv6 icmp_type router-advertisement"
        );
        assert_eq!(r[4].describe(), "proto icmp icmp_type dest-unreachable");
        assert_eq!(
            fmt_rule(&r[2]),
            "allow icmpv6 src ::/0 icmp_type 2",
            "the file's own words"
        );
        // The shorthand.
        let c =
            load("{ inbound: { allow: [icmpv6, tcp/22] } }").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.inbound.rules[0].proto, Some(PROTO_ICMPV6));
        assert_eq!(shorthand("icmpv6").map(|r| r.proto), Ok(Some(58)));
    }

    #[test]
    fn family_mistakes_are_errors_that_name_the_key() {
        let (k, m) = problem("{ action: allow, proto: icmp, icmp_type: router-advertisement }");
        assert_eq!(k, "icmp_type");
        assert!(
            m.contains("is an ICMPv6 type, but this rule's proto is icmp"),
            "{m}"
        );
        assert!(m.contains("use `proto: icmpv6`"), "{m}");
        let (k, m) = problem("{ action: allow, proto: icmpv6, icmp_type: echo }");
        assert_eq!(k, "icmp_type");
        assert!(
            m.contains("not an ICMPv6 type") && m.contains("echo-request"),
            "{m}"
        );
        let (k, m) = problem("{ action: allow, proto: udp, icmp_type: 1 }");
        assert_eq!(k, "icmp_type");
        assert!(m.contains("needs `proto: icmp` or `proto: icmpv6`"), "{m}");
        let (k, m) = problem("{ action: allow, src: 10.0.0.0/8, dst: 2001:db8::/32 }");
        assert_eq!(k, "dst");
        assert!(
            m.contains("`dst` is an IPv6 prefix but `src` is IPv4"),
            "{m}"
        );
        let (k, m) = problem("{ action: allow, src: 2001:db8::/32, proto: icmp }");
        assert_eq!(k, "proto");
        assert!(m.contains("use `proto: icmpv6`"), "{m}");
        let (k, m) = problem("{ action: allow, dst: 10.0.0.1, proto: icmpv6 }");
        assert_eq!(k, "proto");
        assert!(m.contains("use `proto: icmp`"), "{m}");
        let (k, m) = problem("{ action: allow, src: 2001:db8::1/32 }");
        assert_eq!(k, "src");
        assert!(m.contains("did you mean 2001:db8::/32?"), "{m}");
        let (k, m) = problem("{ action: allow, src: 2001:db8::/129 }");
        assert_eq!(k, "src");
        assert!(m.contains("from 0 to 128"), "{m}");
        let (k, m) = problem("{ action: allow, dst: 2001:db8::g }");
        assert_eq!(k, "dst");
        assert!(m.contains("not an IPv6 address"), "{m}");
        let (k, m) = problem("{ action: allow, src: host }");
        assert_eq!(k, "src");
        assert!(m.contains("2001:db8::/32"), "{m}");
        let (k, m) = problem("{ action: allow, proto: icmp6 }");
        assert_eq!(k, "proto");
        assert!(m.contains("did you mean `icmpv6`?"), "{m}");
    }

    #[test]
    fn port_ranges_and_shorthand() {
        assert_eq!(port_range("22"), Ok(PortRange::one(22)));
        assert_eq!(
            port_range("1000-2000"),
            Ok(PortRange { lo: 1000, hi: 2000 })
        );
        assert!(port_range("2000-1000").is_err_and(|m| m.contains("above the last")));
        assert!(port_range("70000").is_err_and(|m| m.contains("out of range")));
        assert!(port_range("x").is_err());
        assert!(shorthand("tcp/0-x").is_err());
        assert!(shorthand("icmp/3").is_err());
        assert!(shorthand("ssh").is_err_and(|m| m.contains("tcp/PORT")));
    }
}
