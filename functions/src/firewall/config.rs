//! A firewall's settings as the topology file writes them, checked: the `firewall` kind.
//!
//! ```yaml
//! functions:
//!   fw:
//!     kind: firewall                 # two sides: `inside` (gate 0) and `outside` (gate 1)
//!     max_connections: 65536         # 1 to 16777216 (default 65536)
//!     timeouts: { icmp: 10s }        # idle timeouts: tcp_syn, tcp_established, tcp_fin,
//!                                    # tcp_close, udp, udp_stream, icmp (defaults: Linux's)
//!     inbound:                       # packets from the outside side; absent: allow
//!                                    # established and related, drop the rest
//!       default: drop                # allow, drop or reject when no rule matches (default drop)
//!       allow: [established, icmp, tcp/22, udp/5000-5010]   # shorthand, below
//!     outbound:                      # packets from the inside side; absent: allow everything
//!       default: allow               # (default allow)
//!       rules:                       # in order; the first rule that matches decides
//!         - { action: allow, state: [established, related] }
//!         - { action: reject, proto: tcp, dst_port: 23 }
//!         - { action: drop, src: 192.168.1.0/24, dst: 10.0.0.0/8, proto: udp, src_port: 1000-2000 }
//!         - { action: allow, proto: icmp, icmp_type: echo-request }
//! links:
//!   - [lan, fw, wan]                 # in the middle of a chain the left neighbour is wired to
//!                                    # `inside`, the right one to `outside`
//!   - [lan2, fw2.inside]             # at the end of a link, name the side
//! ```
//!
//! Rule keys: `action` (required: allow, drop or reject); `src` and `dst` (a prefix like
//! 10.0.0.0/8, or an address for a /32); `proto` (tcp, udp, icmp or a number from 0 to
//! 255); `src_port` and `dst_port` (`N` or `FIRST-LAST`, with `proto` tcp or udp);
//! `icmp_type` (a number from 0 to 255 or echo-reply, dest-unreachable, echo-request,
//! time-exceeded, with `proto: icmp`); `state` (one or a list of new, established, related,
//! invalid). A direction that is given but has neither `allow` nor `rules` has no rules.
//!
//! `allow` items are allow rules, in order: `new`, `established` (established and related),
//! `related`, `invalid` match the connection state; `icmp`, `tcp`, `udp` the protocol;
//! `tcp/N`, `udp/N`, `tcp/FIRST-LAST`, `udp/FIRST-LAST` the protocol and destination port.
//! A direction takes `allow` or `rules`, not both.

use std::net::Ipv4Addr;

use serde::Deserialize;

use super::{Action, Firewall, FirewallConfig, PortRange, Prefix, Rule, RuleSet, StateSet};
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
    "a protocol: tcp, udp, icmp or a number from 0 to 255"
);
crate::number_or_word!(pub RawPorts, "a port or a range of ports, like 22 or 1000-2000");
crate::number_or_word!(
    RawIcmpType,
    "an ICMP type: a number from 0 to 255, or echo-reply, dest-unreachable, echo-request or time-exceeded"
);

/// ICMP type names.
const ICMP_TYPES: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("dest-unreachable", 3),
    ("echo-request", 8),
    ("time-exceeded", 11),
];

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Protocol names, for messages.
fn proto_name(p: u8) -> String {
    match p {
        PROTO_ICMP => "icmp".into(),
        PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        n => n.to_string(),
    }
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
         a protocol (icmp, tcp, udp), or tcp/PORT, udp/PORT, tcp/FIRST-LAST, udp/FIRST-LAST \
         (like tcp/22 or udp/5000-5010)"
    ))
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

    /// `src` or `dst`: a prefix, or an address for a /32.
    fn rule_prefix(&mut self, key: &str, s: &str) -> Option<Prefix> {
        if s.contains('/') {
            match parse_prefix(s) {
                Ok(net) => Some(Prefix {
                    addr: net.network(),
                    len: net.prefix(),
                }),
                Err(m) => {
                    self.error(key, m);
                    None
                }
            }
        } else {
            match s.trim().parse::<Ipv4Addr>() {
                Ok(addr) => Some(Prefix { addr, len: 32 }),
                Err(_) => {
                    self.error(
                        key,
                        format!("`{s}` is not an address or prefix: expected like 10.0.0.0/8, or 10.0.0.1 for one address"),
                    );
                    None
                }
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
                "tcp" => Some(PROTO_TCP),
                "udp" => Some(PROTO_UDP),
                _ => {
                    self.error(
                        &format!("{key}.proto"),
                        format!("`{t}` is not a protocol: expected tcp, udp, icmp or a number from 0 to 255"),
                    );
                    ok = false;
                    None
                }
            },
        };
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
            Some(RawIcmpType(t)) => {
                let tkey = format!("{key}.icmp_type");
                let ty = match t {
                    Ok(n) if *n <= 255 => Some(*n as u8),
                    Ok(n) => {
                        self.error(
                            &tkey,
                            format!("ICMP type {n} is out of range: expected 0 to 255"),
                        );
                        None
                    }
                    Err(name) => match ICMP_TYPES.iter().find(|(n, _)| n == name) {
                        Some(&(_, ty)) => Some(ty),
                        None => {
                            let names: Vec<&str> = ICMP_TYPES.iter().map(|(n, _)| *n).collect();
                            let hint = did_you_mean(name, names.iter().copied());
                            self.error(
                                &tkey,
                                format!(
                                    "`{name}` is not an ICMP type: expected a number from 0 to 255 or one of {}{hint}",
                                    one_of(&names)
                                ),
                            );
                            None
                        }
                    },
                };
                match (ty, proto) {
                    (Some(ty), Some(PROTO_ICMP)) => Some(ty),
                    (Some(_), Some(other)) => {
                        self.error(
                            &tkey,
                            format!(
                                "`icmp_type` needs `proto: icmp`; this rule's proto is {}",
                                proto_name(other)
                            ),
                        );
                        None
                    }
                    (Some(_), None) if proto_ok => {
                        self.error(&tkey, "`icmp_type` needs `proto: icmp`");
                        None
                    }
                    _ => None,
                }
            }
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

    /// `65536 connections`, then each direction's default and rules (the first 20).
    fn describe(&self) -> String {
        let mut s = format!("firewall, {} connections", self.max_connections);
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
            PROTO_ICMP | PROTO_TCP | PROTO_UDP => proto_name(p),
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
