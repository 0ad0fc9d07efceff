//! `firewall`: a stateful firewall with ordered rules per direction.
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the configuration types and the node |
//! | `config.rs` | the `firewall` kind: its keys in a topology file, checked |
//! | `metrics.rs` | its metrics |
//! | `tests_ipv6.rs` | the node's IPv6 tests |
//! | `tests_fragments.rs` | the node's tests of fragments (IPv4 and IPv6) and of MLD |

mod config;
mod metrics;
#[cfg(test)]
mod tests_fragments;
#[cfg(test)]
mod tests_ipv6;

pub use config::{fmt_rule, port_range, raw_port_range, FirewallKind, RawPorts, SIDES};

use std::net::IpAddr;

use crate::conntrack::Timeouts;

/// What a rule (or a direction's default) does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Let it through.
    Allow,
    /// Drop it silently (`fw_denied`).
    Drop,
    /// Drop it (`fw_rejected`) and answer: a TCP RST for TCP, ICMP port unreachable else.
    Reject,
}

impl Action {
    /// Its name as the topology file spells it: `allow`, `drop` or `reject`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Drop => "drop",
            Action::Reject => "reject",
        }
    }
}

/// A set of connection states a rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StateSet(pub u8);

impl StateSet {
    /// The packet opens a connection, or belongs to one not yet seen both ways.
    pub const NEW: StateSet = StateSet(1);
    /// The packet belongs to a connection seen in both directions.
    pub const ESTABLISHED: StateSet = StateSet(2);
    /// An ICMP error about a tracked connection.
    pub const RELATED: StateSet = StateSet(4);
    /// A packet that cannot be tracked (a TCP segment with no connection and no SYN, a
    /// malformed header, a full table).
    pub const INVALID: StateSet = StateSet(8);
    /// State names as the topology file spells them, with their sets.
    pub const NAMES: &'static [(&'static str, StateSet)] = &[
        ("new", StateSet::NEW),
        ("established", StateSet::ESTABLISHED),
        ("related", StateSet::RELATED),
        ("invalid", StateSet::INVALID),
    ];

    /// Both sets.
    pub const fn union(self, other: StateSet) -> StateSet {
        StateSet(self.0 | other.0)
    }

    /// True if the sets share a state.
    pub const fn intersects(self, other: StateSet) -> bool {
        self.0 & other.0 != 0
    }
}

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// One port.
    pub const fn one(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }

    /// True if `p` is in the range.
    #[inline]
    pub const fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// `25`, or `1024-65535`: as the topology file writes it.
impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// The states' names joined by commas, e.g. `established,related`: as the topology file
/// writes them.
impl std::fmt::Display for StateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = StateSet::NAMES
            .iter()
            .filter(|(_, s)| self.intersects(*s))
            .map(|(n, _)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// An IPv4 or IPv6 prefix (host bits clear). It holds addresses of its own family only:
/// an IPv6 prefix contains no IPv4 address, even `::/0`, and the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub addr: IpAddr,
    /// Its length, 0 to 32 (IPv4) or 0 to 128 (IPv6).
    pub len: u8,
}

impl Prefix {
    /// True if `ip` lies in the prefix (and is of its family).
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = crate::ip::prefix_mask(self.len);
                u32::from(a) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = prefix_mask6(self.len);
                u128::from(a) & mask == u128::from(net) & mask
            }
            _ => false,
        }
    }

    /// True for an IPv6 prefix.
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

/// The netmask of an IPv6 prefix of `len` bits (0 to 128).
#[inline]
fn prefix_mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// One rule: every field that is set must match; the first matching rule decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// What it does.
    pub action: Option<Action>,
    /// Source prefix.
    pub src: Option<Prefix>,
    /// Destination prefix.
    pub dst: Option<Prefix>,
    /// IP protocol number (1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6, ...; for IPv6 the upper-layer
    /// protocol past the extension headers).
    pub proto: Option<u8>,
    /// TCP/UDP source ports.
    pub src_port: Option<PortRange>,
    /// TCP/UDP destination ports.
    pub dst_port: Option<PortRange>,
    /// ICMP type (with `proto` 1) or ICMPv6 type (with `proto` 58).
    pub icmp_type: Option<u8>,
    /// Connection states.
    pub state: Option<StateSet>,
}

impl Rule {
    /// What the rule matches, in the topology file's keys and values, e.g.
    /// `proto tcp dst_port 25` or `state established,related`; `any` if it matches
    /// everything.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = self.proto {
            parts.push(format!("proto {}", crate::show::proto_name(p)));
        }
        let prefix = |p: &Prefix| format!("{}/{}", p.addr, p.len);
        if let Some(p) = &self.src {
            parts.push(format!("src {}", prefix(p)));
        }
        if let Some(p) = &self.dst {
            parts.push(format!("dst {}", prefix(p)));
        }
        if let Some(r) = &self.src_port {
            parts.push(format!("src_port {r}"));
        }
        if let Some(r) = &self.dst_port {
            parts.push(format!("dst_port {r}"));
        }
        if let Some(t) = self.icmp_type {
            parts.push(format!(
                "icmp_type {}",
                config::icmp_type_name(self.proto, t)
            ));
        }
        if let Some(set) = self.state {
            parts.push(format!("state {set}"));
        }
        if parts.is_empty() {
            return "any".into();
        }
        parts.join(" ")
    }
}

/// The rules of one direction and what happens when none matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSet {
    /// Action when no rule matches.
    pub default: Action,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// A firewall's settings. Gate 0 is the inside, gate 1 the outside: `outbound` rules see
/// packets going from inside to outside, `inbound` ones the other way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallConfig {
    /// Rules for packets from the outside.
    pub inbound: RuleSet,
    /// Rules for packets from the inside.
    pub outbound: RuleSet,
    /// Most tracked connections.
    pub max_connections: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
}

impl Default for FirewallConfig {
    /// Inbound: allow established and related, drop the rest; outbound: allow.
    fn default() -> Self {
        FirewallConfig {
            inbound: RuleSet {
                default: Action::Drop,
                rules: vec![Rule {
                    action: Some(Action::Allow),
                    state: Some(StateSet::ESTABLISHED.union(StateSet::RELATED)),
                    ..Rule::default()
                }],
            },
            outbound: RuleSet {
                default: Action::Allow,
                rules: Vec::new(),
            },
            max_connections: crate::conntrack::DEFAULT_MAX,
            timeouts: Timeouts::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The node

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use nfv_dataplane::{Batch, Cell, Counter, Ctx, DropReason, Gate, Node, Packet, Table, Timestamp};

use crate::conntrack::{
    self, tcp_flags, Conntrack, CtState, Flow, Flow6, FlowError, FlowKey, IcmpKind, Prefetched,
    Probe, Tuple, Tuple6,
};
use crate::fragments::{self, FragKey, FragStats, Fragments};
use crate::ip::{self, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::router::icmp;
use crate::router::icmp::RateLimit;
use crate::wire::icmp::v6 as icmp6;
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::{
    self, EthernetFrame, Icmpv6Packet, Ipv4Packet, Ipv6Packet, MacAddr, TcpPacket, ETHERTYPE_IPV6,
    ETH_HEADER_LEN, L3,
};

/// The inside gate.
pub const INSIDE: Gate = Gate(0);
/// The outside gate.
pub const OUTSIDE: Gate = Gate(1);

/// A firewall's counters.
#[derive(Debug)]
pub struct FirewallStats {
    /// Tracked connections (IPv4 and IPv6).
    pub connections: Counter,
    /// Hits per inbound rule; the last one counts the default.
    pub inbound: Vec<Counter>,
    /// Hits per outbound rule; the last one counts the default.
    pub outbound: Vec<Counter>,
    /// Frames that are neither IPv4, IPv6 nor ARP (dropped as `fw_denied`).
    pub not_ipv4: Counter,
    /// RSTs and ICMP or ICMPv6 errors sent for `reject`.
    pub rejects_sent: Counter,
    /// ICMPv6 neighbor discovery (router solicitations and advertisements, neighbor
    /// solicitations and advertisements with hop limit 255) passed past the rules.
    pub icmpv6_nd: Counter,
    /// ICMPv6 packet too big passed past the rules.
    pub icmpv6_too_big: Counter,
    /// ICMPv6 errors (destination unreachable, time exceeded, parameter problem) about a
    /// tracked connection passed past the rules.
    pub icmpv6_related: Counter,
    /// MLD messages (types 130, 131, 132, 143) from a link-local source with hop limit 1
    /// passed past the rules.
    pub icmpv6_mld: Counter,
    /// The fragment table's counters.
    pub fragments: Arc<FragStats>,
}

/// What a rule sees of a packet.
#[derive(Clone, Copy, Debug)]
struct View {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    icmp_type: Option<u8>,
    state: StateSet,
}

impl Rule {
    /// True if every field that is set matches `v`.
    #[inline]
    fn matches(&self, v: &View) -> bool {
        self.state.is_none_or(|s| s.intersects(v.state))
            && self.proto.is_none_or(|p| p == v.proto)
            && self.src.is_none_or(|p| p.contains(v.src))
            && self.dst.is_none_or(|p| p.contains(v.dst))
            && self
                .src_port
                .is_none_or(|r| matches!(v.proto, PROTO_TCP | PROTO_UDP) && r.contains(v.sport))
            && self
                .dst_port
                .is_none_or(|r| matches!(v.proto, PROTO_TCP | PROTO_UDP) && r.contains(v.dport))
            && self.icmp_type.is_none_or(|t| v.icmp_type == Some(t))
    }
}

impl RuleSet {
    /// The action for `v` and the index of the rule that decided (`rules.len()` for the
    /// default).
    #[inline]
    fn decide(&self, v: &View) -> (Action, usize) {
        for (i, r) in self.rules.iter().enumerate() {
            if r.matches(v) {
                return (r.action.unwrap_or(Action::Allow), i);
            }
        }
        (self.default, self.rules.len())
    }
}

/// A flow in its family's table (with its TCP flags): the connection an allowed packet
/// opens, or the one a first fragment belongs to.
#[derive(Clone, Copy, Debug)]
enum Open {
    V4(Tuple, u8),
    V6(Tuple6, u8),
}

/// What a firewall gave the first fragment of a datagram, for its later fragments.
#[derive(Clone, Copy, Debug)]
struct FragVerdict {
    /// Why it was dropped; `None`: it passed.
    drop: Option<DropReason>,
    /// The rule (index in its direction's list; the default at its end) that decided.
    rule: Option<usize>,
    /// The connection it passed in, kept alive by its fragments.
    flow: Option<Open>,
}

/// The `firewall` node: gate 0 inside, gate 1 outside.
///
/// Every IPv4 and IPv6 packet gets a connection state from the tracker ([`conntrack`]):
/// *new*, *established* (its connection was seen both ways), *related* (an ICMP or ICMPv6
/// error about a tracked connection) or *invalid* (a TCP segment without a connection that
/// is not a SYN, an ICMP error about nothing tracked). Each family
/// has its own table of `max_connections`. The rules of its direction (`outbound` for
/// packets from the inside, `inbound` from the outside) are tried in order and the first
/// that matches decides; none matching, the direction's default does. A rule with an IPv4
/// prefix matches IPv4 packets only, one with an IPv6 prefix IPv6 only, one without either
/// family; an IPv6 packet's protocol is the upper-layer one, past its extension headers.
/// Every rule counts its hits. An allowed new packet starts a tracked connection; when the
/// table is full it is dropped (`conntrack_full`). `drop` is `fw_denied`; `reject` is
/// `fw_rejected`, and the sender gets a TCP RST (for TCP) or an ICMP port unreachable
/// (ICMPv6 destination unreachable, code 4 port unreachable, for IPv6, at most 1280
/// bytes), from the address it was sending to, within [`REJECT_RATE`] answers a second
/// (bursts of [`REJECT_BURST`]): past it the packet is still `fw_rejected`, unanswered, so
/// a flood of rejected packets cannot make the firewall send as many.
///
/// IPv6 cannot work without some ICMPv6, so whatever the rules say (RFC 4890's advice for
/// a transit firewall), in both directions and without counting a rule hit:
/// - router solicitations and advertisements and neighbor solicitations and
///   advertisements (types 133 to 136) with hop limit 255 pass (a firewall in nfv is a
///   bump in the wire, so the link-local ones it sees are its link's); with another hop
///   limit they were forwarded, which neighbor discovery never is, and the rules decide;
/// - packet too big (type 2) passes, related or not: path MTU discovery needs it;
/// - destination unreachable, time exceeded and parameter problem (1, 3, 4) pass when they
///   are *related* (about a tracked connection); else the rules decide, with the state
///   *invalid*.
///
/// - multicast listener discovery (MLD: query 130, reports 131 and 143, done 132) from a
///   link-local source with hop limit 1 passes: it never leaves its link, and a link
///   without it loses its multicast (RFC 4890 section 4.4.1); other MLD the rules decide.
///
/// Echo requests and replies are flows like any other. Each exception counts
/// (`nfv_firewall_icmpv6_passed_total`). IPv6 that cannot be read is dropped with a reason:
/// shorter than its fixed header or its upper-layer ports (`runt`), a payload length past
/// the frame, an extension header chain that runs past the payload or is longer than
/// [`MAX_EXT_HEADERS`](crate::wire::ipv6::MAX_EXT_HEADERS) (`bad_header`). ARP passes;
/// other frames, and tagged ones, are `fw_denied`: this firewall lets nothing through it
/// cannot filter.
///
/// Fragments ([`crate::fragments`]): a datagram's first fragment is matched, tracked and
/// decided as any packet, and its later fragments (which carry no ports) get the same
/// verdict, count a hit of the same rule and keep the same connection alive, IPv4 and
/// IPv6 alike. Later fragments that come before their first fragment wait for it (in
/// bounds, else `fragments_full`; too long, `fragment_timeout`) and follow it out.
///
/// Tables ([`Node::show`]): `conntrack`, the tracked connections (see
/// [`Conntrack::table`]), IPv4 first; `firewall`, one row per rule and per direction's
/// default, outbound first, with columns `direction` (`inbound` or `outbound`), `index`
/// (the rule's position; the default comes last, at the number of rules), `rule` (what it
/// matches, see [`Rule::describe`]; `default` for the default), `action` (`allow`, `drop`,
/// `reject`) and `hits` (packets it decided).
pub struct Firewall {
    /// The answers `reject` may send.
    rejects: RateLimit,
    inbound: RuleSet,
    outbound: RuleSet,
    ct: Conntrack<()>,
    ct6: Conntrack<(), Tuple6>,
    stats: Arc<FirewallStats>,
    pre: Prefetched,
    pre6: Prefetched<Tuple6>,
    frags: Fragments<FragVerdict>,
    /// Held fragments a first fragment released, to follow it out (allocated once).
    released: Vec<Packet>,
}

/// The state of `f` in `ct` and, for a new connection the rules may let open, that it may.
#[inline(always)]
fn track<K: FlowKey>(
    ct: &mut Conntrack<(), K>,
    f: &Flow<K>,
    zone: u8,
    now: Timestamp,
    hash: Probe,
) -> (StateSet, bool) {
    if f.icmp == IcmpKind::Error {
        let related = f
            .inner
            .and_then(|(inner, _)| ct.lookup_hashed(&inner.reverse(zone), hash, now, &mut |_| {}))
            .is_some();
        return if related {
            (StateSet::RELATED, false)
        } else {
            (StateSet::INVALID, false)
        };
    }
    match ct.lookup_hashed(&f.tuple, hash, now, &mut |_| {}) {
        Some((idx, dir)) => match ct.segment(idx, dir, f, now) {
            Some(CtState::Established) => (StateSet::ESTABLISHED, false),
            Some(_) => (StateSet::NEW, false),
            // A RST out of the window (a blind reset): invalid, the connection stays.
            None => (StateSet::INVALID, false),
        },
        None if conntrack::may_open(f) => (StateSet::NEW, true),
        None => (StateSet::INVALID, false),
    }
}

/// Track the connection that `t` (with TCP `flags`) opens from `zone`; false if the table
/// is full. A clash (the same flow opened from both sides at once) passes untracked.
#[inline]
fn start<K: FlowKey>(ct: &mut Conntrack<(), K>, t: K, flags: u8, zone: u8, now: Timestamp) -> bool {
    let reply = t.reverse(1 - zone);
    ct.insert(t, reply, flags, (), now, &mut |_| {}) != Err(conntrack::InsertError::Full)
}

impl Firewall {
    /// A firewall for `cfg`.
    pub fn new(cfg: FirewallConfig) -> Firewall {
        let counters = |n: usize| (0..=n).map(|_| Counter::default()).collect();
        let frags = Fragments::new(fragments::Limits::default());
        let stats = FirewallStats {
            connections: Counter::default(),
            inbound: counters(cfg.inbound.rules.len()),
            outbound: counters(cfg.outbound.rules.len()),
            not_ipv4: Counter::default(),
            rejects_sent: Counter::default(),
            icmpv6_nd: Counter::default(),
            icmpv6_too_big: Counter::default(),
            icmpv6_related: Counter::default(),
            icmpv6_mld: Counter::default(),
            fragments: frags.stats(),
        };
        Firewall {
            rejects: RateLimit::new(REJECT_RATE, REJECT_BURST),
            inbound: cfg.inbound,
            outbound: cfg.outbound,
            ct: Conntrack::new(cfg.max_connections, cfg.timeouts),
            ct6: Conntrack::new(cfg.max_connections, cfg.timeouts),
            stats: Arc::new(stats),
            pre: Prefetched::default(),
            pre6: Prefetched::default(),
            frags,
            released: Vec::with_capacity(fragments::HELD_PER_DATAGRAM),
        }
    }

    /// The firewall's counters.
    pub fn stats(&self) -> Arc<FirewallStats> {
        Arc::clone(&self.stats)
    }

    /// The IPv4 connection table.
    pub fn connections(&self) -> &Conntrack<()> {
        &self.ct
    }

    /// The IPv6 connection table.
    pub fn connections6(&self) -> &Conntrack<(), Tuple6> {
        &self.ct6
    }

    /// The view of an IPv6 packet with flow `f` and the connection it may open; or its
    /// verdict when an RFC 4890 exception lets it past the rules (see [`Firewall`]).
    fn ipv6(
        &mut self,
        pkt: &Packet,
        f: &Flow6,
        zone: u8,
        now: Timestamp,
        hash: Probe,
    ) -> Result<(View, Option<Open>), Verdict> {
        let icmp = f.tuple.proto == PROTO_ICMPV6;
        if icmp {
            match f.icmp_type {
                icmp6::ROUTER_SOLICITATION..=icmp6::NEIGHBOR_ADVERTISEMENT
                    if hop_limit(pkt, f) == Some(255) =>
                {
                    self.stats.icmpv6_nd.add(1);
                    return Err(Verdict::Pass);
                }
                icmp6::PACKET_TOO_BIG => {
                    self.stats.icmpv6_too_big.add(1);
                    return Err(Verdict::Pass);
                }
                icmp6::MLD_QUERY | icmp6::MLD_REPORT | icmp6::MLD_DONE | icmp6::MLD_V2_REPORT
                    if f.tuple.src.is_unicast_link_local() && hop_limit(pkt, f) == Some(1) =>
                {
                    self.stats.icmpv6_mld.add(1);
                    return Err(Verdict::Pass);
                }
                _ => {}
            }
        }
        let (state, open) = track(&mut self.ct6, f, zone, now, hash);
        if icmp
            && state == StateSet::RELATED
            && matches!(
                f.icmp_type,
                icmp6::DEST_UNREACHABLE | icmp6::TIME_EXCEEDED | icmp6::PARAMETER_PROBLEM
            )
        {
            self.stats.icmpv6_related.add(1);
            return Err(Verdict::Pass);
        }
        let view = View {
            src: IpAddr::V6(f.tuple.src),
            dst: IpAddr::V6(f.tuple.dst),
            proto: f.tuple.proto,
            sport: f.tuple.sport,
            dport: f.tuple.dport,
            icmp_type: icmp.then_some(f.icmp_type),
            state,
        };
        Ok((view, open.then_some(Open::V6(f.tuple, f.flags))))
    }

    /// The verdict of a packet and the rule that decided it, if one did. One function with
    /// early returns: a helper returning the view or a verdict (a `Result` of both) made
    /// LLVM build that value with narrow stores and read it back wide, a stalled store
    /// forward on every packet (`nfv bench gateway`: 10.2-11.3 -> 8.6-9.0 Mpps).
    fn handle(
        &mut self,
        pkt: &mut Packet,
        zone: u8,
        now: Timestamp,
        (parsed, hash): (&Result<Flow, FlowError>, Probe),
        pre6: &Prefetched<Tuple6>,
        i: usize,
    ) -> (Verdict, Option<usize>) {
        let (view, open) = match parsed {
            Ok(f) => {
                let (state, open) = track(&mut self.ct, f, zone, now, hash);
                let view = View {
                    src: IpAddr::V4(Ipv4Addr::from(f.tuple.src)),
                    dst: IpAddr::V4(Ipv4Addr::from(f.tuple.dst)),
                    proto: f.tuple.proto,
                    sport: f.tuple.sport,
                    dport: f.tuple.dport,
                    icmp_type: (f.tuple.proto == PROTO_ICMP).then_some(f.icmp_type),
                    state,
                };
                (view, open.then_some(Open::V4(f.tuple, f.flags)))
            }
            Err(FlowError::NotIpv4 | FlowError::NotIpv6) => match pre6.get(i) {
                (Ok(f), hash6) => match self.ipv6(pkt, f, zone, now, hash6) {
                    Ok(v) => v,
                    Err(verdict) => return (verdict, None),
                },
                (Err(FlowError::Fragment), _) => return (self.later(pkt, zone, now), None),
                (Err(FlowError::Bad(r)), _) => return (Verdict::Drop(*r), None),
                (Err(FlowError::NotIpv4 | FlowError::NotIpv6), _) => {
                    // The headers the burst's parse left on the packet: no second parse.
                    let h = wire::classify(pkt);
                    if h.l3 == L3::Arp && !h.tagged {
                        return (Verdict::Pass, None);
                    }
                    self.stats.not_ipv4.add(1);
                    return (Verdict::Drop(DropReason::FwDenied), None);
                }
            },
            Err(FlowError::Fragment) => return (self.later(pkt, zone, now), None),
            Err(FlowError::Bad(r)) => return (Verdict::Drop(*r), None),
        };
        let (rules, hits) = if zone == 0 {
            (&self.outbound, &self.stats.outbound)
        } else {
            (&self.inbound, &self.stats.inbound)
        };
        let (action, i) = rules.decide(&view);
        hits[i].add(1);
        let verdict = match action {
            Action::Allow => {
                let opened = match open {
                    Some(Open::V4(t, flags)) => start(&mut self.ct, t, flags, zone, now),
                    Some(Open::V6(t, flags)) => start(&mut self.ct6, t, flags, zone, now),
                    None => true,
                };
                if opened {
                    Verdict::Pass
                } else {
                    Verdict::Drop(DropReason::ConntrackFull)
                }
            }
            Action::Drop => Verdict::Drop(DropReason::FwDenied),
            Action::Reject => {
                if self.rejects.allow(now) && reject_in_place(pkt, &view) {
                    self.stats.rejects_sent.add(1);
                    Verdict::Reject
                } else {
                    Verdict::Drop(DropReason::FwRejected)
                }
            }
        };
        (verdict, Some(i))
    }

    /// A later fragment: its first fragment's verdict, or held until that comes.
    fn later(&mut self, pkt: &mut Packet, zone: u8, now: Timestamp) -> Verdict {
        match fragments::later_of(pkt, zone) {
            Err(r) => Verdict::Drop(r),
            Ok(key) => match self.frags.decision(&key, now) {
                Some(d) => self.follow(d, zone, now),
                None => Verdict::Hold(key),
            },
        }
    }

    /// Give a later fragment its first fragment's verdict `d`: the same rule counts a hit,
    /// the same connection stays alive.
    fn follow(&mut self, d: FragVerdict, zone: u8, now: Timestamp) -> Verdict {
        let hits = if zone == 0 {
            &self.stats.outbound
        } else {
            &self.stats.inbound
        };
        if let Some(c) = d.rule.and_then(|i| hits.get(i)) {
            c.add(1);
        }
        match d.flow {
            Some(Open::V4(t, _)) => keep_alive(&mut self.ct, &t, now),
            Some(Open::V6(t, _)) => keep_alive(&mut self.ct6, &t, now),
            None => {}
        }
        d.drop.map_or(Verdict::Pass, Verdict::Drop)
    }

    /// The verdict the later fragments of a first fragment with flow `parsed` (or `parsed6`
    /// for IPv6) follow, given its own `verdict` by `rule`.
    fn frag_verdict(
        verdict: &Verdict,
        rule: Option<usize>,
        parsed: &Result<Flow, FlowError>,
        parsed6: &Result<Flow6, FlowError>,
    ) -> FragVerdict {
        let drop = match verdict {
            Verdict::Pass => None,
            Verdict::Drop(r) => Some(*r),
            Verdict::Reject => Some(DropReason::FwRejected),
            Verdict::Hold(_) => Some(DropReason::Internal),
        };
        let flow = match (parsed, parsed6) {
            (Ok(f), _) if f.icmp != IcmpKind::Error => Some(Open::V4(f.tuple, 0)),
            (Err(_), Ok(f)) if f.icmp != IcmpKind::Error => Some(Open::V6(f.tuple, 0)),
            _ => None,
        };
        FragVerdict {
            drop,
            rule,
            flow: flow.filter(|_| drop.is_none()),
        }
    }

    /// Send `pkt` where `verdict` says.
    #[inline(always)]
    fn deliver(
        &mut self,
        pkt: Packet,
        verdict: Verdict,
        input: Gate,
        now: Timestamp,
        ctx: &mut Ctx<'_>,
    ) {
        let other = if input == INSIDE { OUTSIDE } else { INSIDE };
        match verdict {
            Verdict::Pass => ctx.emit(other, pkt),
            Verdict::Drop(r) => ctx.drop(pkt, r),
            Verdict::Reject => {
                ctx.drop_reused(&pkt, DropReason::FwRejected);
                ctx.emit(input, pkt);
            }
            Verdict::Hold(key) => {
                if let Err(pkt) = self.frags.hold(key, pkt, now) {
                    ctx.drop(pkt, DropReason::FragmentsFull);
                }
            }
        }
    }
}

/// A later fragment of connection `t` passed: the connection stays alive, as for any of its
/// packets (a fragment carries no TCP flags to move its state).
fn keep_alive<K: FlowKey>(ct: &mut Conntrack<(), K>, t: &K, now: Timestamp) {
    if let Some((idx, dir)) = ct.lookup(t, now, &mut |_| {}) {
        ct.update(idx, dir, 0, now);
    }
}

/// The hop limit of the IPv6 packet whose flow is `f`.
#[inline]
fn hop_limit(pkt: &Packet, f: &Flow6) -> Option<u8> {
    let ip = Ipv6Packet::new_checked(pkt.data().get(f.l3..)?).ok()?;
    Some(ip.hop_limit())
}

/// Answers (TCP RSTs, ICMP port unreachables) a firewall's `reject` sends a second at
/// most, as Linux's `icmp_msgs_per_sec`.
pub const REJECT_RATE: u32 = 1000;
/// The burst of answers allowed at once (Linux's `icmp_msgs_burst`).
pub const REJECT_BURST: u32 = 50;

/// What happens to a packet.
enum Verdict {
    Pass,
    Drop(DropReason),
    /// The packet became the answer to its sender.
    Reject,
    /// A later fragment whose datagram's first fragment is not decided yet: it waits.
    Hold(FragKey),
}

/// The sequence number, acknowledgment number and flags of the RST that answers a TCP
/// segment with `flags`, sequence number `seq`, acknowledgment number `ack` and `payload`
/// bytes (RFC 9293 §3.10.7.1).
fn rst_for(flags: u8, seq: u32, ack: u32, payload: u32) -> (u32, u32, u8) {
    if flags & tcp_flags::ACK != 0 {
        (ack, 0, tcp_flags::RST)
    } else {
        let syn_fin =
            u32::from(flags & tcp_flags::SYN != 0) + u32::from(flags & tcp_flags::FIN != 0);
        (
            0,
            seq.wrapping_add(payload).wrapping_add(syn_fin),
            tcp_flags::RST | tcp_flags::ACK,
        )
    }
}

/// Write a 20-byte RST from `sport` to `dport` with `(seq, ack, flags)` from [`rst_for`]
/// into `seg` (its checksum left to the caller).
fn write_rst(seg: &mut [u8], sport: u16, dport: u16, (seq, ack, flags): (u32, u32, u8)) {
    let mut seg = TcpPacket::new_unchecked(seg);
    seg.set_src_port(sport);
    seg.set_dst_port(dport);
    seg.set_seq_number(seq);
    seg.set_ack_number(ack);
    seg.set_header_len(wire::tcp::HEADER_LEN);
    seg.set_flags(flags);
    seg.set_window(0);
    seg.set_checksum(0);
    seg.set_urgent(0);
}

/// Turn `pkt` into the answer to a rejected IPv4 or IPv6 packet (see [`reject4_in_place`]
/// and [`reject6_in_place`]).
fn reject_in_place(pkt: &mut Packet, v: &View) -> bool {
    let answered = match v.dst {
        IpAddr::V4(dst) => reject4_in_place(pkt, v.proto, u32::from(dst)),
        IpAddr::V6(_) => reject6_in_place(pkt),
    };
    if answered {
        // A whole frame with its checksums: whatever the rejected one left to its receiver
        // (a begun checksum, a super-frame to cut) is not the answer's.
        pkt.set_offload(None);
    }
    answered
}

/// Turn `pkt` into the answer to a rejected IPv4 packet of protocol `proto` sent to `dst`:
/// a TCP RST, or an ICMP port unreachable, back to its sender from the address it was sent
/// to. False if no answer is due (a RST is not answered, nor is what ICMP may not answer).
fn reject4_in_place(pkt: &mut Packet, proto: u8, dst: u32) -> bool {
    // The flow again from the headers the packet carries (found by this burst's parse).
    let Ok(f) = conntrack::parse_packet(pkt, 0) else {
        return false;
    };
    let d = pkt.data();
    let Ok(eth) = EthernetFrame::new_checked(d) else {
        return false;
    };
    let (to_mac, from_mac) = (eth.src(), eth.dst());
    if proto != PROTO_TCP {
        let h = &d[f.l3..];
        if !icmp::error_allowed(h, f.ihl) {
            return false;
        }
        return icmp::make_error(
            pkt,
            f.total,
            icmp::DEST_UNREACHABLE,
            icmp::CODE_PORT_UNREACHABLE,
            0,
            dst,
            from_mac,
        );
    }
    if f.flags & tcp_flags::RST != 0 {
        return false;
    }
    let Ok(seg) = TcpPacket::new_checked(&d[f.l3 + f.ihl..f.l3 + f.total]) else {
        return false;
    };
    let payload = f.total.saturating_sub(f.ihl + seg.header_len()) as u32;
    let rst = rst_for(f.flags, seg.seq_number(), seg.ack_number(), payload);
    let t: Tuple = f.tuple;
    let seg_len = wire::tcp::HEADER_LEN;
    if !pkt.set_len(ETH_HEADER_LEN + Ipv4Repr::HEADER_LEN + seg_len) {
        return false;
    }
    let d = pkt.data_mut();
    let (eth_bytes, rest) = d.split_at_mut(ETH_HEADER_LEN);
    let mut eth = EthernetFrame::new_unchecked(eth_bytes);
    eth.set_dst(to_mac);
    eth.set_src(from_mac);
    eth.set_ethertype(ip::ETHERTYPE_IPV4);
    let (ip_bytes, seg_bytes) = rest.split_at_mut(Ipv4Repr::HEADER_LEN);
    let repr = Ipv4Repr {
        src_addr: t.dst,
        dst_addr: t.src,
        protocol: PROTO_TCP,
        ttl: icmp::TTL,
        payload_len: seg_len,
    };
    repr.emit(&mut Ipv4Packet::new_unchecked(ip_bytes));
    write_rst(seg_bytes, t.dport, t.sport, rst);
    TcpPacket::new_unchecked(seg_bytes).fill_checksum(t.dst, t.src);
    true
}

/// The longest quote of the rejected datagram an ICMPv6 error carries: the error is at
/// most 1280 bytes (RFC 4443 §2.4 (c)).
const MAX_QUOTE6: usize =
    icmp6::MAX_ERROR_DATAGRAM - Ipv6Repr::HEADER_LEN - wire::icmp::V6_MESSAGE_HEADER_LEN;

/// True if RFC 4443 §2.4 (e) lets an ICMPv6 error answer the IPv6 packet with flow `f`
/// sent to link-layer address `to_mac`: not an ICMPv6 error or redirect, not to a multicast
/// address (IPv6 or link-layer), not from the unspecified or a multicast address.
fn error6_allowed(f: &Flow6, to_mac: MacAddr) -> bool {
    let t = &f.tuple;
    if t.proto == PROTO_ICMPV6 && (icmp6::is_error(f.icmp_type) || f.icmp_type == icmp6::REDIRECT) {
        return false;
    }
    !(t.src.is_unspecified()
        || t.src.is_multicast()
        || t.dst.is_multicast()
        || to_mac.is_multicast())
}

/// Turn `pkt` into the answer to a rejected IPv6 packet: a TCP RST for TCP, else an ICMPv6
/// destination unreachable (code 4, port unreachable, as IPv4's reject) quoting as much of
/// the packet as fits in 1280 bytes, back to its sender from the address it was sent to,
/// hop limit 64. False if no answer is due (a RST, a fragment other than the first, what
/// RFC 4443 forbids answering: see [`error6_allowed`]).
fn reject6_in_place(pkt: &mut Packet) -> bool {
    let Ok(f) = conntrack::parse_packet6(pkt, 0) else {
        return false;
    };
    let d = pkt.data();
    let Ok(eth) = EthernetFrame::new_checked(d) else {
        return false;
    };
    let (to_mac, from_mac) = (eth.src(), eth.dst());
    let t = f.tuple;
    // The datagram as the frame holds it (its payload length was checked against it).
    let Some(datagram) = d.get(f.l3..f.l3 + f.total) else {
        return false;
    };
    let l4_len;
    let mut quote = [0u8; MAX_QUOTE6];
    let mut rst = None;
    if t.proto == PROTO_TCP {
        if f.flags & tcp_flags::RST != 0 {
            return false;
        }
        let Ok(seg) = TcpPacket::new_checked(datagram.get(f.ihl..).unwrap_or(&[])) else {
            return false;
        };
        let payload = (f.total - f.ihl).saturating_sub(seg.header_len()) as u32;
        rst = Some(rst_for(
            f.flags,
            seg.seq_number(),
            seg.ack_number(),
            payload,
        ));
        l4_len = wire::tcp::HEADER_LEN;
    } else {
        if !error6_allowed(&f, to_mac) {
            return false;
        }
        let n = datagram.len().min(MAX_QUOTE6);
        quote[..n].copy_from_slice(&datagram[..n]);
        l4_len = wire::icmp::V6_MESSAGE_HEADER_LEN + n;
    }
    if !pkt.set_len(ETH_HEADER_LEN + Ipv6Repr::HEADER_LEN + l4_len) {
        return false;
    }
    let d = pkt.data_mut();
    let (eth_bytes, rest) = d.split_at_mut(ETH_HEADER_LEN);
    let mut eth = EthernetFrame::new_unchecked(eth_bytes);
    eth.set_dst(to_mac);
    eth.set_src(from_mac);
    eth.set_ethertype(ETHERTYPE_IPV6);
    let (ip_bytes, l4) = rest.split_at_mut(Ipv6Repr::HEADER_LEN);
    let repr = Ipv6Repr {
        src_addr: t.dst,
        dst_addr: t.src,
        next_header: if rst.is_some() {
            PROTO_TCP
        } else {
            PROTO_ICMPV6
        },
        hop_limit: icmp::TTL,
        payload_len: l4_len as u16,
    };
    repr.emit(&mut Ipv6Packet::new_unchecked(ip_bytes));
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (t.dst, t.src);
    match rst {
        Some(rst) => {
            write_rst(l4, t.dport, t.sport, rst);
            TcpPacket::new_unchecked(l4).fill_checksum_v6(&src, &dst);
        }
        None => {
            let (head, data) = l4.split_at_mut(wire::icmp::V6_MESSAGE_HEADER_LEN);
            data.copy_from_slice(&quote[..data.len()]);
            let mut m = Icmpv6Packet::new_unchecked(head);
            m.set_msg_type(icmp6::DEST_UNREACHABLE);
            m.set_code(icmp6::CODE_PORT_UNREACHABLE);
            m.set_rest(0);
            Icmpv6Packet::new_unchecked(l4).fill_checksum(&src, &dst);
        }
    }
    true
}

impl Node for Firewall {
    fn kind(&self) -> &'static str {
        "firewall"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let zone = if input == INSIDE { 0 } else { 1 };
        let now = ctx.now;
        self.pre.fill(batch, zone, &self.ct);
        // IPv6 (and the rest that is not IPv4) is read in a second pass, for bursts that
        // have any: an IPv4 burst pays nothing for it.
        if self.pre.others() > 0 {
            self.pre6.fill(batch, zone, &self.ct6);
        } else {
            self.pre6.clear();
        }
        let pre = self.pre.take();
        let pre6 = self.pre6.take();
        for (i, mut pkt) in batch.drain().enumerate() {
            let (parsed, parsed6) = (pre.get(i).0, pre6.get(i).0);
            let first = match parsed {
                Err(FlowError::NotIpv4 | FlowError::NotIpv6) => {
                    fragments::first_of(&mut pkt, parsed6, zone)
                }
                p => fragments::first_of(&mut pkt, p, zone),
            };
            let (mut verdict, rule) = self.handle(&mut pkt, zone, now, pre.get(i), &pre6, i);
            let Some(key) = first else {
                self.deliver(pkt, verdict, input, now, ctx);
                continue;
            };
            // A first fragment: its later fragments follow it, those held right after it.
            let d = Self::frag_verdict(&verdict, rule, parsed, parsed6);
            let released = &mut self.released;
            if !self.frags.record(key, d, now, |p| released.push(p))
                && matches!(verdict, Verdict::Pass)
            {
                verdict = Verdict::Drop(DropReason::FragmentsFull);
            }
            self.deliver(pkt, verdict, input, now, ctx);
            let mut released = std::mem::take(&mut self.released);
            for p in released.drain(..) {
                let v = self.follow(d, zone, now);
                self.deliver(p, v, input, now, ctx);
            }
            self.released = released;
        }
        self.pre.restore(pre);
        self.pre6.restore(pre6);
        self.stats
            .connections
            .set((self.ct.len() + self.ct6.len()) as u64);
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.ct.sweep(ctx.now, &mut |_| {});
        self.ct6.sweep(ctx.now, &mut |_| {});
        self.frags
            .expire(ctx.now, |p| ctx.drop(p, DropReason::FragmentTimeout));
        self.stats
            .connections
            .set((self.ct.len() + self.ct6.len()) as u64);
    }

    fn show(&self, table: &str, now: Timestamp) -> Option<Table> {
        match table {
            "conntrack" => {
                let mut t = self.ct.table(now);
                t.rows.extend(self.ct6.table(now).rows);
                Some(t)
            }
            "firewall" => Some(self.rules_table()),
            _ => None,
        }
    }
}

impl Firewall {
    /// The `firewall` table: every rule and default with its hits.
    fn rules_table(&self) -> Table {
        let mut t = Table::new(&["direction", "index", "rule", "action", "hits"]);
        let dirs = [
            ("outbound", &self.outbound, &self.stats.outbound),
            ("inbound", &self.inbound, &self.stats.inbound),
        ];
        for (name, set, hits) in dirs {
            let hit = |i: usize| Cell::Int(hits.get(i).map_or(0, Counter::get));
            for (i, r) in set.rules.iter().enumerate() {
                let action = r.action.unwrap_or(Action::Allow);
                t.push(vec![
                    name.into(),
                    i.into(),
                    r.describe().into(),
                    action.name().into(),
                    hit(i),
                ]);
            }
            let i = set.rules.len();
            t.push(vec![
                name.into(),
                i.into(),
                "default".into(),
                set.default.name().into(),
                hit(i),
            ]);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::tcp_flags::{ACK, RST, SYN};
    use crate::testframes::*;
    use crate::wire::MacAddr;
    use nfv_dataplane::testing::Harness;

    pub(super) const IN: &str = "192.168.1.10";
    pub(super) const OUT: &str = "198.51.100.7";
    pub(super) const IN6: &str = "2001:db8:1::10";
    pub(super) const OUT6: &str = "2001:db8:2::7";

    pub(super) fn t(ms: u64) -> Timestamp {
        Timestamp((ms + 1000) * 1_000_000)
    }

    pub(super) fn harness(cfg: FirewallConfig) -> (Harness, Arc<FirewallStats>) {
        let f = Firewall::new(cfg);
        let s = f.stats();
        (Harness::new(Box::new(f), 2, 64), s)
    }

    /// Send `f` into `gate`; the frames out of each gate.
    pub(super) fn send(
        h: &mut Harness,
        gate: usize,
        f: &[u8],
        now: Timestamp,
    ) -> Vec<Vec<Vec<u8>>> {
        h.send(gate, f, now);
        h.recv_each()
    }

    pub(super) fn passes(h: &mut Harness, gate: usize, f: &[u8], now: Timestamp) -> bool {
        let got = send(h, gate, f, now);
        match got[1 - gate].as_slice() {
            [one] if one == f && got[gate].is_empty() => true,
            [] if got[gate].is_empty() => false,
            _ => panic!("unexpected output {got:?}"),
        }
    }

    pub(super) fn rule(action: Action) -> Rule {
        Rule {
            action: Some(action),
            ..Rule::default()
        }
    }

    pub(super) fn prefix(s: &str, len: u8) -> Prefix {
        Prefix {
            addr: s.parse().expect("address"),
            len,
        }
    }

    #[test]
    fn by_default_replies_come_in_and_unsolicited_packets_do_not() {
        let (mut h, st) = harness(FirewallConfig::default());
        assert!(passes(&mut h, 0, &tcp(IN, 40000, OUT, 80, SYN, b""), t(0)));
        assert!(passes(
            &mut h,
            1,
            &tcp(OUT, 80, IN, 40000, SYN | ACK, b""),
            t(1)
        ));
        assert!(passes(
            &mut h,
            0,
            &tcp(IN, 40000, OUT, 80, ACK, b"GET"),
            t(2)
        ));
        assert!(!passes(&mut h, 1, &tcp(OUT, 5555, IN, 22, SYN, b""), t(3)));
        assert!(!passes(&mut h, 1, &udp(OUT, 53, IN, 9999, b"", true), t(3)));
        assert!(passes(&mut h, 0, &udp(IN, 9999, OUT, 53, b"", true), t(4)));
        assert!(passes(&mut h, 1, &udp(OUT, 53, IN, 9999, b"", true), t(5)));
        assert!(passes(&mut h, 0, &echo(IN, OUT, 8, 3), t(6)));
        assert!(passes(&mut h, 1, &echo(OUT, IN, 0, 3), t(7)));
        assert!(
            !passes(&mut h, 1, &echo(OUT, IN, 8, 3), t(7)),
            "ping from outside"
        );
        assert_eq!(h.node_drops(DropReason::FwDenied), 3);
        assert_eq!(st.connections.get(), 3);
        // inbound: rule 0 (established) hit 3 times, the default 3 times.
        assert_eq!(
            st.inbound.iter().map(Counter::get).collect::<Vec<_>>(),
            vec![3, 3]
        );
        assert_eq!(st.outbound[0].get(), 4, "outbound default");
    }

    #[test]
    fn shows_rules_with_their_hits_and_the_tracked_connections() {
        let cfg = FirewallConfig {
            inbound: RuleSet {
                default: Action::Drop,
                rules: vec![
                    Rule {
                        state: Some(StateSet::ESTABLISHED.union(StateSet::RELATED)),
                        ..rule(Action::Allow)
                    },
                    Rule {
                        proto: Some(PROTO_TCP),
                        src: Some(prefix("198.51.100.0", 24)),
                        dst_port: Some(PortRange::one(25)),
                        ..rule(Action::Reject)
                    },
                ],
            },
            outbound: RuleSet {
                default: Action::Allow,
                rules: vec![Rule {
                    proto: Some(PROTO_ICMP),
                    icmp_type: Some(8),
                    ..rule(Action::Drop)
                }],
            },
            ..FirewallConfig::default()
        };
        let f = Shared::new(Firewall::new(cfg));
        let mut h = Harness::new(Box::new(f.clone()), 2, 64);
        assert!(passes(&mut h, 0, &tcp(IN, 40000, OUT, 80, SYN, b""), t(0)));
        assert!(passes(
            &mut h,
            1,
            &tcp(OUT, 80, IN, 40000, SYN | ACK, b""),
            t(1)
        ));
        assert!(passes(&mut h, 0, &udp(IN, 5353, OUT, 53, b"", true), t(2)));
        assert!(!passes(&mut h, 0, &echo(IN, OUT, 8, 9), t(3)));
        send(&mut h, 1, &tcp(OUT, 777, IN, 25, SYN, b""), t(4)); // rejected
        assert!(!passes(&mut h, 1, &udp(OUT, 1, IN, 2, b"", true), t(5)));

        let fw = f.show("firewall", t(5)).expect("firewall");
        assert_eq!(fw.columns, ["direction", "index", "rule", "action", "hits"]);
        let row = |d: &str, i: u64, r: &str, a: &str, n: u64| {
            vec![text(d), Cell::Int(i), text(r), text(a), Cell::Int(n)]
        };
        assert_eq!(
            fw.rows,
            vec![
                row(
                    "outbound",
                    0,
                    "proto icmp icmp_type echo-request",
                    "drop",
                    1
                ),
                row("outbound", 1, "default", "allow", 2),
                row("inbound", 0, "state established,related", "allow", 1),
                row(
                    "inbound",
                    1,
                    "proto tcp src 198.51.100.0/24 dst_port 25",
                    "reject",
                    1
                ),
                row("inbound", 2, "default", "drop", 1),
            ]
        );

        let ct = f.show("conntrack", t(5)).expect("conntrack");
        assert_eq!(ct.columns, ["proto", "src", "dst", "state", "expires_s"]);
        assert_eq!(
            ct.rows,
            vec![
                vec![
                    text("tcp"),
                    text("192.168.1.10:40000"),
                    text("198.51.100.7:80"),
                    text("SYN_RECV"),
                    Cell::Int(119),
                ],
                vec![
                    text("udp"),
                    text("192.168.1.10:5353"),
                    text("198.51.100.7:53"),
                    text("NEW"),
                    Cell::Int(29),
                ],
            ]
        );
        assert_eq!(f.show("nat", t(5)), None);
    }

    #[test]
    fn states_new_established_related_invalid() {
        let state_rule = |s: StateSet| Rule {
            state: Some(s),
            ..rule(Action::Allow)
        };
        let cfg = FirewallConfig {
            inbound: RuleSet {
                default: Action::Drop,
                rules: vec![state_rule(StateSet::RELATED), state_rule(StateSet::INVALID)],
            },
            outbound: RuleSet {
                default: Action::Drop,
                rules: vec![state_rule(StateSet::NEW), state_rule(StateSet::ESTABLISHED)],
            },
            ..FirewallConfig::default()
        };
        let (mut h, st) = harness(cfg);
        let probe = udp(IN, 40000, OUT, 33434, b"", true);
        assert!(passes(&mut h, 0, &probe, t(0)), "new");
        // The reply is established, which inbound does not allow.
        assert!(!passes(
            &mut h,
            1,
            &udp(OUT, 33434, IN, 40000, b"", true),
            t(1)
        ));
        // An error about it is related.
        let err = icmp_error("203.0.113.1", IN, 11, 0, 0, &probe, 28);
        assert!(passes(&mut h, 1, &err, t(2)));
        // An error about nothing, and a TCP ACK without a connection, are invalid.
        let stray = icmp_error(
            "203.0.113.1",
            IN,
            3,
            1,
            0,
            &udp(IN, 1, OUT, 2, b"", true),
            28,
        );
        assert!(passes(&mut h, 1, &stray, t(3)));
        assert!(passes(&mut h, 1, &tcp(OUT, 1, IN, 2, ACK, b""), t(3)));
        // Outbound: established (after the reply) passes by rule 1.
        assert!(passes(&mut h, 0, &probe, t(4)));
        let hits = |v: &[Counter]| v.iter().map(Counter::get).collect::<Vec<_>>();
        assert_eq!(hits(&st.inbound), vec![1, 2, 1]);
        assert_eq!(hits(&st.outbound), vec![1, 1, 0]);
    }

    #[test]
    fn match_fields_prefixes_protocols_ports_and_icmp_types() {
        let cfg = FirewallConfig {
            inbound: RuleSet {
                default: Action::Drop,
                rules: vec![
                    Rule {
                        src: Some(prefix("198.51.100.0", 24)),
                        dst: Some(prefix(IN, 32)),
                        proto: Some(PROTO_TCP),
                        src_port: Some(PortRange { lo: 1000, hi: 2000 }),
                        dst_port: Some(PortRange::one(22)),
                        ..rule(Action::Allow)
                    },
                    Rule {
                        proto: Some(PROTO_ICMP),
                        icmp_type: Some(8),
                        ..rule(Action::Allow)
                    },
                    Rule {
                        proto: Some(PROTO_UDP),
                        dst_port: Some(PortRange { lo: 5000, hi: 5010 }),
                        ..rule(Action::Allow)
                    },
                ],
            },
            ..FirewallConfig::default()
        };
        let (mut h, st) = harness(cfg);
        assert!(passes(&mut h, 1, &tcp(OUT, 1500, IN, 22, SYN, b""), t(0)));
        assert!(
            !passes(&mut h, 1, &tcp(OUT, 999, IN, 22, SYN, b""), t(0)),
            "src port"
        );
        assert!(
            !passes(&mut h, 1, &tcp(OUT, 1500, IN, 23, SYN, b""), t(0)),
            "dst port"
        );
        assert!(
            !passes(
                &mut h,
                1,
                &tcp("198.51.101.7", 1500, IN, 22, SYN, b""),
                t(0)
            ),
            "src"
        );
        assert!(
            !passes(
                &mut h,
                1,
                &tcp(OUT, 1500, "192.168.1.11", 22, SYN, b""),
                t(0)
            ),
            "dst"
        );
        assert!(
            !passes(&mut h, 1, &udp(OUT, 1500, IN, 22, b"", true), t(0)),
            "proto"
        );
        assert!(passes(&mut h, 1, &echo(OUT, IN, 8, 1), t(0)));
        assert!(
            !passes(&mut h, 1, &echo(OUT, "192.168.1.12", 0, 1), t(0)),
            "icmp type"
        );
        assert!(passes(&mut h, 1, &udp(OUT, 1, IN, 5010, b"", true), t(0)));
        assert!(!passes(&mut h, 1, &udp(OUT, 1, IN, 5011, b"", true), t(0)));
        assert_eq!(
            st.inbound.iter().map(Counter::get).collect::<Vec<_>>(),
            vec![1, 1, 1, 7]
        );
    }

    /// The RST read back through the views: every field of the three headers, and both
    /// checksums.
    #[test]
    fn a_reject_rst_reads_back_through_the_views() {
        let cfg = FirewallConfig {
            outbound: RuleSet {
                default: Action::Reject,
                rules: Vec::new(),
            },
            ..FirewallConfig::default()
        };
        let (mut h, _) = harness(cfg);
        let syn = tcp_seq(IN, 40000, OUT, 80, SYN, 5000, 0, b"abc");
        let got = send(&mut h, 0, &syn, t(0));
        let [rst] = got[0].as_slice() else {
            panic!("one RST back: {got:?}")
        };
        let eth = EthernetFrame::new_checked(&rst[..]).expect("frame");
        assert_eq!(
            (eth.dst(), eth.src(), eth.ethertype()),
            (MacAddr(IN_MAC), MacAddr(OUT_MAC), ip::ETHERTYPE_IPV4)
        );
        let iph = Ipv4Packet::new_checked(eth.payload()).expect("ip");
        assert!(iph.verify_checksum());
        assert_eq!((iph.src_addr(), iph.dst_addr()), (ipa(OUT), ipa(IN)));
        assert_eq!((iph.header_len(), iph.total_len()), (20, 40));
        assert_eq!(
            (iph.protocol(), iph.ttl(), iph.flags_frag()),
            (PROTO_TCP, icmp::TTL, 0)
        );
        let seg = TcpPacket::new_checked(iph.payload()).expect("tcp");
        assert!(seg.verify_checksum(ipa(OUT), ipa(IN)));
        assert_eq!((seg.src_port(), seg.dst_port()), (80, 40000));
        assert_eq!((seg.seq_number(), seg.ack_number()), (0, 5004));
        assert_eq!((seg.header_len(), seg.flags()), (20, RST | ACK));
        assert_eq!((seg.window(), seg.urgent()), (0, 0));
        assert!(seg.payload().is_empty());
    }

    #[test]
    fn a_flood_of_rejected_packets_gets_answers_within_the_rate_limit() {
        let cfg = FirewallConfig {
            outbound: RuleSet {
                default: Action::Reject,
                rules: Vec::new(),
            },
            ..FirewallConfig::default()
        };
        let (mut h, st) = harness(cfg);
        let mut answers = 0;
        for i in 0..1000u16 {
            let syn = tcp_seq(IN, 1000 + i, OUT, 80, SYN, 5000, 0, b"");
            let got = send(&mut h, 0, &syn, t(10));
            assert!(got[1].is_empty(), "nothing passes");
            answers += got[0].len();
        }
        assert_eq!(answers, REJECT_BURST as usize, "a burst's worth at once");
        assert_eq!(
            h.node_drops(DropReason::FwRejected),
            1000,
            "each is rejected"
        );
        assert_eq!(st.rejects_sent.get(), u64::from(REJECT_BURST));
        // A millisecond later, one more token (1000 a second).
        let later = t(11);
        let got = send(&mut h, 0, &tcp_seq(IN, 9, OUT, 80, SYN, 1, 0, b""), later);
        assert_eq!(got[0].len(), 1);
        let got = send(&mut h, 0, &tcp_seq(IN, 9, OUT, 80, SYN, 1, 0, b""), later);
        assert!(got[0].is_empty());
        assert_eq!(h.pool().available(), h.pool().size());
    }

    #[test]
    fn reject_answers_tcp_with_a_rst_and_udp_with_port_unreachable() {
        let cfg = FirewallConfig {
            outbound: RuleSet {
                default: Action::Reject,
                rules: Vec::new(),
            },
            ..FirewallConfig::default()
        };
        let (mut h, st) = harness(cfg);
        let syn = tcp_seq(IN, 40000, OUT, 80, SYN, 5000, 0, b"");
        let got = send(&mut h, 0, &syn, t(0));
        assert!(got[1].is_empty());
        let [rst] = got[0].as_slice() else {
            panic!("one RST back: {got:?}")
        };
        check(rst);
        assert_eq!(&rst[0..6], &syn[6..12], "to the sender's MAC");
        assert_eq!(tuple(rst).0.to_string(), OUT);
        assert_eq!(tuple(rst).2.to_string(), IN);
        assert_eq!((tuple(rst).1, tuple(rst).3), (80, 40000));
        let seg = &rst[34..];
        assert_eq!(seg[13], RST | ACK);
        assert_eq!(ip::read_u32(seg, 4), 0);
        assert_eq!(ip::read_u32(seg, 8), 5001, "acknowledges the SYN");
        // A segment with ACK gets a RST at its acknowledgment number.
        let got = send(
            &mut h,
            0,
            &tcp_seq(IN, 40000, OUT, 80, ACK, 7, 99, b"xy"),
            t(1),
        );
        assert_eq!(got[0][0][34 + 13], RST);
        assert_eq!(ip::read_u32(&got[0][0][34..], 4), 99);
        // A RST is not answered.
        assert!(send(&mut h, 0, &tcp(IN, 1, OUT, 2, RST, b""), t(2))
            .iter()
            .all(Vec::is_empty));
        // UDP: port unreachable quoting the datagram.
        let dgram = udp(IN, 9999, OUT, 53, b"query", true);
        let got = send(&mut h, 0, &dgram, t(3));
        let [icmp] = got[0].as_slice() else {
            panic!("one ICMP back")
        };
        check(icmp);
        assert_eq!((icmp[34], icmp[35]), (3, 3));
        assert_eq!(&icmp[34 + 8..34 + 8 + 28], &dgram[14..14 + 28]);
        assert_eq!(h.node_drops(DropReason::FwRejected), 4);
        assert_eq!(st.rejects_sent.get(), 3);
        assert_eq!(st.connections.get(), 0, "rejected flows are not tracked");
        assert_eq!(h.pool().available(), h.pool().size());
    }

    #[test]
    fn arp_passes_other_non_ip_is_denied() {
        let (mut h, st) = harness(FirewallConfig::default());
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&IN_MAC);
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert!(passes(&mut h, 1, &arp, t(0)));
        let mut lldp = arp.clone();
        lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
        assert!(!passes(&mut h, 0, &lldp, t(0)));
        // Tagged IP is not filtered, so it does not pass either.
        let v4 = udp(IN, 1, OUT, 2, b"", true);
        let v6 = udp6(IN6, 1, OUT6, 2, b"");
        for f in [&v4, &v6] {
            let mut tagged = f[..12].to_vec();
            tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
            tagged.extend_from_slice(&f[12..]);
            assert!(!passes(&mut h, 0, &tagged, t(0)));
        }
        assert_eq!(st.not_ipv4.get(), 3);
        assert_eq!(h.node_drops(DropReason::FwDenied), 3);
        // An IPv6 EtherType over bytes that are not IPv6: a bad header.
        let mut v6 = arp.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(!passes(&mut h, 0, &v6, t(0)));
        assert_eq!(h.node_drops(DropReason::Runt), 1);
        assert_eq!(st.not_ipv4.get(), 3);
    }

    #[test]
    fn a_full_table_drops_new_connections_and_timeouts_free_it() {
        let cfg = FirewallConfig {
            max_connections: 1,
            ..FirewallConfig::default()
        };
        let (mut h, st) = harness(cfg);
        assert!(passes(&mut h, 0, &udp(IN, 1, OUT, 53, b"", true), t(0)));
        assert!(passes(&mut h, 1, &udp(OUT, 53, IN, 1, b"", true), t(0)));
        assert!(!passes(&mut h, 0, &udp(IN, 2, OUT, 53, b"", true), t(1)));
        assert_eq!(h.node_drops(DropReason::ConntrackFull), 1);
        h.tick(t(121_000));
        assert_eq!(st.connections.get(), 0);
        assert!(passes(
            &mut h,
            0,
            &udp(IN, 2, OUT, 53, b"", true),
            t(121_001)
        ));
    }
}
