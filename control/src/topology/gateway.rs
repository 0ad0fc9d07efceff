//! The two-sided functions of a topology file: `nat` and `firewall`.
//!
//! ```yaml
//! functions:
//!   nat:
//!     kind: nat                      # two sides: `inside` (gate 0) and `outside` (gate 1)
//!     masquerade: gw.wan             # required: ROUTER.INTERFACE (that interface's address),
//!                                    # an address (203.0.113.2), a range
//!                                    # (198.51.100.1-198.51.100.32) or a prefix
//!                                    # (198.51.100.0/27: every address in it); at most 4096
//!     ports: 1024-65535              # outside ports handed out (this is the default); or `N`
//!     max_sessions: 65536            # 1 to 16777216 (default 65536)
//!     timeouts: { udp: 30s, tcp_established: 1h }  # idle timeouts, durations as elsewhere:
//!                                    # tcp_syn, tcp_established, tcp_fin, tcp_close, udp,
//!                                    # udp_stream, icmp (defaults: Linux's)
//!     forwards:                      # port forwards (DNAT) on the first masquerade address
//!       - { proto: tcp, port: 8080, to: 192.168.1.10:80 }
//!       - { proto: udp, port: 5000, to: 192.168.1.10 }   # the inside port defaults to `port`
//!   fw:
//!     kind: firewall                 # two sides: `inside` (gate 0) and `outside` (gate 1)
//!     max_connections: 65536         # 1 to 16777216 (default 65536)
//!     timeouts: { icmp: 10s }        # as for nat
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
//!   - [gw.wan, nat, fw, wan]         # in the middle of a chain the left neighbour is wired to
//!                                    # `inside`, the right one to `outside`
//!   - [lan, fw2.inside]              # at the end of a link, name the side
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

use std::collections::HashMap;
use std::net::Ipv4Addr;

use nfv_functions::conntrack::{Timeouts, DEFAULT_MAX, TIMEOUT_NAMES};
use nfv_functions::firewall::{Action, FirewallConfig, PortRange, Prefix, Rule, RuleSet, StateSet};
use nfv_functions::nat::{NatConfig, PortForward, DEFAULT_PORTS};
use serde::de::Deserializer;
use serde::Deserialize;

use super::l3::{parse_prefix, OneOrMany};
use super::{
    did_you_mean, number_or_text, one_of, parse_cidr, Ordered, RawDuration, RawFunction,
    RawTopology, Validator,
};

/// The two sides of a nat or firewall, in gate order.
pub const SIDES: [&str; 2] = ["inside", "outside"];

/// Most addresses a nat masquerades to.
pub const MAX_MASQUERADE: u64 = 4096;

/// Most sessions (nat) or connections (firewall).
const MAX_ENTRIES: u64 = 16_777_216;

/// A nat's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatFunction {
    /// The function's configuration; `config.addresses` holds the resolved addresses (the
    /// interface's address when `masquerade` named one).
    pub config: NatConfig,
    /// `Some((router, interface))` when masquerade named a router interface.
    pub interface: Option<(String, String)>,
}

/// Resolved `masquerade`: the addresses, and `(router, interface)` if it named one.
type Masquerade = (Vec<Ipv4Addr>, Option<(String, String)>);

/// A port forward as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForward {
    proto: Option<String>,
    port: Option<u64>,
    to: Option<String>,
}

/// One direction of a firewall as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirection {
    default: Option<String>,
    allow: Option<OneOrMany>,
    rules: Option<Vec<RawRule>>,
}

/// A firewall rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    action: Option<String>,
    src: Option<String>,
    dst: Option<String>,
    proto: Option<RawProto>,
    src_port: Option<RawPorts>,
    dst_port: Option<RawPorts>,
    icmp_type: Option<RawIcmpType>,
    state: Option<OneOrMany>,
}

/// A value written as a whole number (`Ok`) or a word (`Err`).
macro_rules! number_or_word {
    ($name:ident, $expected:expr) => {
        #[derive(Debug)]
        pub(super) struct $name(Result<u64, String>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                number_or_text(d, u64::MAX, $expected).map($name)
            }
        }
    };
}

number_or_word!(
    RawProto,
    "a protocol: tcp, udp, icmp or a number from 0 to 255"
);
number_or_word!(RawPorts, "a port or a range of ports, like 22 or 1000-2000");
number_or_word!(
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
fn port_range(text: &str) -> Result<PortRange, String> {
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
fn raw_port_range(r: &RawPorts) -> Result<PortRange, String> {
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

impl Validator<'_> {
    /// The key of item `i` of a value written as one item or a list.
    fn item_key(&self, key: &str, i: usize) -> String {
        let k = format!("{key}[{i}]");
        if self.index.get(&k).is_some() {
            k
        } else {
            key.to_string()
        }
    }

    /// Idle timeouts: the defaults with the ones named in `timeouts` set.
    fn timeouts(&mut self, key: &str, t: Option<&Ordered<RawDuration>>) -> Timeouts {
        let mut out = Timeouts::default();
        for (name, d) in t.map(|t| t.0.as_slice()).unwrap_or_default() {
            let tkey = format!("{key}.timeouts.{name}");
            if !TIMEOUT_NAMES.contains(&name.as_str()) {
                let hint = did_you_mean(name, TIMEOUT_NAMES.iter().copied());
                self.error(
                    &tkey,
                    format!(
                        "unknown timeout `{name}`: expected one of {}{hint}",
                        one_of(TIMEOUT_NAMES)
                    ),
                );
                continue;
            }
            let zero = std::time::Duration::ZERO;
            let dur = self.duration_or(&tkey, Some(d), zero);
            if dur > zero {
                out.set(name, dur);
            }
        }
        out
    }

    /// `max_sessions` or `max_connections`.
    fn max_entries(&mut self, key: &str, v: Option<u64>) -> usize {
        match v {
            None => DEFAULT_MAX,
            Some(n) if (1..=MAX_ENTRIES).contains(&n) => n as usize,
            Some(n) => {
                self.error(
                    key,
                    format!("{n} is out of range: expected 1 to {MAX_ENTRIES}"),
                );
                DEFAULT_MAX
            }
        }
    }

    pub(super) fn nat(
        &mut self,
        key: &str,
        f: &RawFunction,
        raw: &RawTopology,
    ) -> Option<NatFunction> {
        let masquerade = match f.masquerade.as_deref() {
            None => {
                self.error(
                    format!("{key}.masquerade"),
                    "missing: a nat needs `masquerade`, the outside address(es): ROUTER.INTERFACE \
                     (like gw.wan), an address (203.0.113.2), a range \
                     (198.51.100.1-198.51.100.32) or a prefix (198.51.100.0/27)",
                );
                None
            }
            Some(m) => self.masquerade(&format!("{key}.masquerade"), m, raw),
        };
        let ports = match &f.ports {
            None => DEFAULT_PORTS,
            Some(p) => match raw_port_range(p) {
                Ok(r) if r.lo == 0 => {
                    self.error(
                        format!("{key}.ports"),
                        format!(
                            "port 0 cannot be handed out: start the range at 1 or above (default {}-{})",
                            DEFAULT_PORTS.lo, DEFAULT_PORTS.hi
                        ),
                    );
                    DEFAULT_PORTS
                }
                Ok(r) => r,
                Err(m) => {
                    self.error(format!("{key}.ports"), m);
                    DEFAULT_PORTS
                }
            },
        };
        let forwards = self.forwards(key, f.forwards.as_deref().unwrap_or_default());
        let max_sessions = self.max_entries(&format!("{key}.max_sessions"), f.max_sessions);
        let timeouts = self.timeouts(key, f.timeouts.as_ref());
        let (addresses, interface) = masquerade?;
        Some(NatFunction {
            config: NatConfig {
                addresses,
                ports,
                forwards,
                max_sessions,
                timeouts,
            },
            interface,
        })
    }

    /// The addresses `masquerade` names, and the router interface if it names one.
    fn masquerade(&mut self, key: &str, m: &str, raw: &RawTopology) -> Option<Masquerade> {
        let m = m.trim();
        let address_like = !m.is_empty()
            && m.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'/'));
        if address_like {
            return match masquerade_addresses(m) {
                Ok(a) => Some((a, None)),
                Err(e) => {
                    self.error(key, e);
                    None
                }
            };
        }
        let Some((r, i)) = m.split_once('.') else {
            self.error(
                key,
                format!(
                    "`{m}` is not a masquerade: expected ROUTER.INTERFACE (like gw.wan), an \
                     address (203.0.113.2), a range (198.51.100.1-198.51.100.32) or a prefix \
                     (198.51.100.0/27)"
                ),
            );
            return None;
        };
        let routers: Vec<&(String, RawFunction)> = raw
            .functions
            .0
            .iter()
            .filter(|(_, rf)| rf.kind.as_deref() == Some("router"))
            .collect();
        let Some((_, rf)) = routers.iter().find(|(n, _)| n == r) else {
            let hint = did_you_mean(r, routers.iter().map(|(n, _)| n.as_str()));
            let what = match raw.functions.0.iter().find(|(n, _)| n == r) {
                Some((_, other)) => format!(
                    "`{r}` is a {}, not a router",
                    other.kind.as_deref().unwrap_or("function without a kind")
                ),
                None => format!("no router named `{r}`"),
            };
            self.error(
                key,
                format!("`{m}`: {what}; ROUTER.INTERFACE names an interface of a router under `functions`{hint}"),
            );
            return None;
        };
        let names: Vec<&str> = rf.interfaces.0.iter().map(|(n, _)| n.as_str()).collect();
        let Some((_, ri)) = rf.interfaces.0.iter().find(|(n, _)| n == i) else {
            let hint = did_you_mean(i, names.iter().copied());
            self.error(
                key,
                format!(
                    "`{m}`: router `{r}` has no interface `{i}` (its interfaces: {}){hint}",
                    names.join(", ")
                ),
            );
            return None;
        };
        // A missing or bad interface address is reported at the router.
        let address = ri.address.as_deref().and_then(|a| parse_cidr(a).ok())?;
        Some((vec![address.ip()], Some((r.to_string(), i.to_string()))))
    }

    fn forwards(&mut self, key: &str, list: &[RawForward]) -> Vec<PortForward> {
        let mut out: Vec<PortForward> = Vec::new();
        let mut seen: HashMap<(u8, u16), usize> = HashMap::new();
        for (n, fw) in list.iter().enumerate() {
            let fkey = format!("{key}.forwards[{n}]");
            let proto = match fw.proto.as_deref() {
                None => {
                    self.error(
                        format!("{fkey}.proto"),
                        "missing: a forward needs `proto`, tcp or udp",
                    );
                    None
                }
                Some("tcp") => Some(PROTO_TCP),
                Some("udp") => Some(PROTO_UDP),
                Some(o) => {
                    self.error(
                        format!("{fkey}.proto"),
                        format!("`{o}` is not a forward protocol: expected tcp or udp"),
                    );
                    None
                }
            };
            let port = match fw.port {
                None => {
                    self.error(
                        format!("{fkey}.port"),
                        "missing: a forward needs `port`, the outside port (1 to 65535)",
                    );
                    None
                }
                Some(p) if (1..=65535).contains(&p) => Some(p as u16),
                Some(p) => {
                    self.error(
                        format!("{fkey}.port"),
                        format!("port {p} is out of range: expected 1 to 65535"),
                    );
                    None
                }
            };
            let to = match fw.to.as_deref() {
                None => {
                    self.error(
                        format!("{fkey}.to"),
                        "missing: a forward needs `to`, the inside address and port, like 192.168.1.10:80",
                    );
                    None
                }
                Some(t) => match forward_target(t) {
                    Ok(x) => Some(x),
                    Err(m) => {
                        self.error(format!("{fkey}.to"), m);
                        None
                    }
                },
            };
            let (Some(proto), Some(port), Some((to, to_port))) = (proto, port, to) else {
                continue;
            };
            if let Some(first) = seen.get(&(proto, port)) {
                self.error(
                    format!("{fkey}.port"),
                    format!(
                        "a {} forward of port {port} is already given at {key}.forwards[{first}]: forward each port once",
                        proto_name(proto)
                    ),
                );
                continue;
            }
            seen.insert((proto, port), n);
            out.push(PortForward {
                proto,
                port,
                to,
                to_port: to_port.unwrap_or(port),
            });
        }
        out
    }

    pub(super) fn firewall(&mut self, key: &str, f: &RawFunction) -> FirewallConfig {
        let defaults = FirewallConfig::default();
        let inbound = self.direction(
            &format!("{key}.inbound"),
            f.inbound.as_ref(),
            defaults.inbound,
            Action::Drop,
        );
        let outbound = self.direction(
            &format!("{key}.outbound"),
            f.outbound.as_ref(),
            defaults.outbound,
            Action::Allow,
        );
        FirewallConfig {
            inbound,
            outbound,
            max_connections: self.max_entries(&format!("{key}.max_connections"), f.max_connections),
            timeouts: self.timeouts(key, f.timeouts.as_ref()),
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
                format!("{key}.rules"),
                "give either `allow` (the shorthand list) or `rules`, not both: use `rules`, \
                 which can do everything `allow` does (e.g. `- { action: allow, proto: tcp, dst_port: 22 }`)",
            );
        }
        let mut rules = Vec::new();
        if let Some(OneOrMany(items)) = &d.allow {
            let akey = format!("{key}.allow");
            for (i, item) in items.iter().enumerate() {
                match shorthand(item.trim()) {
                    Ok(r) => rules.push(r),
                    Err(m) => {
                        let k = self.item_key(&akey, i);
                        self.error(k, m);
                    }
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
                    format!("{key}.action"),
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
                    format!("{key}.proto"),
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
                        format!("{key}.proto"),
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
            Some(OneOrMany(names)) => {
                let skey = format!("{key}.state");
                if names.is_empty() {
                    self.error(
                        &skey,
                        "an empty state list matches nothing: name states, or leave `state` out",
                    );
                }
                let mut set = StateSet::default();
                for (i, n) in names.iter().enumerate() {
                    match StateSet::NAMES.iter().find(|(s, _)| s == n) {
                        Some(&(_, s)) => set = set.union(s),
                        None => {
                            let all: Vec<&str> = StateSet::NAMES.iter().map(|(s, _)| *s).collect();
                            let hint = did_you_mean(n, all.iter().copied());
                            let k = self.item_key(&skey, i);
                            self.error(
                                k,
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

/// The addresses of `masquerade` written as an address, a range or a prefix.
fn masquerade_addresses(m: &str) -> Result<Vec<Ipv4Addr>, String> {
    let parse = |a: &str| -> Result<Ipv4Addr, String> {
        a.trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 address"))
    };
    let (lo, hi) = if m.contains('/') {
        let net = parse_prefix(m)?;
        (u32::from(net.network()), u32::from(net.broadcast()))
    } else if let Some((a, b)) = m.split_once('-') {
        let (a, b) = (parse(a)?, parse(b)?);
        if u32::from(a) > u32::from(b) {
            return Err(format!(
                "`{m}`: the first address is above the last (write {b}-{a})"
            ));
        }
        (u32::from(a), u32::from(b))
    } else {
        let a = parse(m)?;
        (u32::from(a), u32::from(a))
    };
    let count = u64::from(hi - lo) + 1;
    if count > MAX_MASQUERADE {
        return Err(format!(
            "`{m}` holds {count} addresses: a nat masquerades to at most {MAX_MASQUERADE}"
        ));
    }
    Ok((lo..=hi).map(Ipv4Addr::from).collect())
}

/// A forward's `to`: `ADDRESS` or `ADDRESS:PORT`.
fn forward_target(t: &str) -> Result<(Ipv4Addr, Option<u16>), String> {
    let expected = "expected the inside address and port, like 192.168.1.10:80 (or 192.168.1.10 for the same port)";
    let (a, p) = match t.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (t, None),
    };
    let addr: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not an address: {expected}"))?;
    let port = match p {
        None => None,
        Some(p) => match p.trim().parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Some(n as u16),
            Ok(n) => {
                return Err(format!(
                    "`{t}`: port {n} is out of range: expected 1 to 65535"
                ))
            }
            Err(_) => return Err(format!("`{t}`: `{p}` is not a port: {expected}")),
        },
    };
    Ok((addr, port))
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
        assert_eq!(
            forward_target("10.0.0.1:80"),
            Ok((Ipv4Addr::new(10, 0, 0, 1), Some(80)))
        );
        assert_eq!(
            forward_target("10.0.0.1"),
            Ok((Ipv4Addr::new(10, 0, 0, 1), None))
        );
        assert!(forward_target("10.0.0.1:0").is_err());
        assert!(forward_target("host:80").is_err());
        assert_eq!(masquerade_addresses("10.0.0.0/32").map(|a| a.len()), Ok(1));
        assert!(masquerade_addresses("10.0.0.0/19").is_err_and(|m| m.contains("8192")));
        assert!(masquerade_addresses("10.0.0.0/20").is_ok());
    }
}
