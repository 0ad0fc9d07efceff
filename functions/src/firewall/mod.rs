//! `firewall`: a stateful firewall with ordered rules per direction.
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the configuration types and the node |
//! | `config.rs` | the `firewall` kind: its keys in a topology file, checked |
//! | `metrics.rs` | its metrics |

mod config;
mod metrics;

pub use config::{fmt_rule, port_range, raw_port_range, FirewallKind, RawPorts, SIDES};

use std::net::Ipv4Addr;

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

/// An IPv4 prefix (host bits clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub addr: Ipv4Addr,
    /// Its length, 0 to 32.
    pub len: u8,
}

impl Prefix {
    /// True if `ip` lies in the prefix.
    #[inline]
    pub fn contains(&self, ip: u32) -> bool {
        let mask = crate::ip::prefix_mask(self.len);
        ip & mask == u32::from(self.addr) & mask
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
    /// IP protocol number (1 ICMP, 6 TCP, 17 UDP, ...).
    pub proto: Option<u8>,
    /// TCP/UDP source ports.
    pub src_port: Option<PortRange>,
    /// TCP/UDP destination ports.
    pub dst_port: Option<PortRange>,
    /// ICMP type.
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
            let name = match t {
                0 => "echo-reply".to_string(),
                3 => "dest-unreachable".to_string(),
                8 => "echo-request".to_string(),
                11 => "time-exceeded".to_string(),
                n => n.to_string(),
            };
            parts.push(format!("icmp_type {name}"));
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

use std::sync::Arc;

use nfv_dataplane::{Batch, Cell, Counter, Ctx, DropReason, Gate, Node, Packet, Table, Timestamp};

use crate::conntrack::{
    self, tcp_flags, Conntrack, CtState, Flow, FlowError, IcmpKind, Prefetched, Probe, Tuple,
};
use crate::ip::{self, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::router::icmp;
use crate::router::icmp::RateLimit;
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{self, EthernetFrame, Ipv4Packet, TcpPacket, ETH_HEADER_LEN, L3};

/// The inside gate.
pub const INSIDE: Gate = Gate(0);
/// The outside gate.
pub const OUTSIDE: Gate = Gate(1);

/// A firewall's counters.
#[derive(Debug)]
pub struct FirewallStats {
    /// Tracked connections.
    pub connections: Counter,
    /// Hits per inbound rule; the last one counts the default.
    pub inbound: Vec<Counter>,
    /// Hits per outbound rule; the last one counts the default.
    pub outbound: Vec<Counter>,
    /// Frames that are neither IPv4 nor ARP (dropped as `fw_denied`).
    pub not_ipv4: Counter,
    /// RSTs and ICMP errors sent for `reject`.
    pub rejects_sent: Counter,
}

/// What a rule sees of a packet.
#[derive(Clone, Copy, Debug)]
struct View {
    src: u32,
    dst: u32,
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

/// The `firewall` node: gate 0 inside, gate 1 outside.
///
/// Every IPv4 packet gets a connection state from the tracker ([`conntrack`]): *new*,
/// *established* (its connection was seen both ways), *related* (an ICMP error about a
/// tracked connection) or *invalid* (a TCP segment without a connection that is not a SYN,
/// a non-first fragment, an ICMP error about nothing tracked). The rules of its direction
/// (`outbound` for packets from the inside, `inbound` from the outside) are tried in order
/// and the first that matches decides; none matching, the direction's default does. Every
/// rule counts its hits. An allowed new packet starts a tracked connection; when the table
/// is full it is dropped (`conntrack_full`). `drop` is `fw_denied`; `reject` is
/// `fw_rejected`, and the sender gets a TCP RST (for TCP) or an ICMP port unreachable, from
/// the address it was sending to, within [`REJECT_RATE`] answers a second (bursts of
/// [`REJECT_BURST`]): past it the packet is still `fw_rejected`, unanswered, so a flood of
/// rejected packets cannot make the firewall send as many. ARP passes; other non-IPv4 frames (IPv6 among them) are
/// `fw_denied`: this firewall filters IPv4 only and lets nothing through it cannot filter.
///
/// Tables ([`Node::show`]): `conntrack`, the tracked connections (see
/// [`Conntrack::table`]); `firewall`, one row per rule and per direction's default,
/// outbound first, with columns `direction` (`inbound` or `outbound`), `index` (the rule's
/// position; the default comes last, at the number of rules), `rule` (what it matches, see
/// [`Rule::describe`]; `default` for the default), `action` (`allow`, `drop`, `reject`) and
/// `hits` (packets it decided).
pub struct Firewall {
    /// The answers `reject` may send.
    rejects: RateLimit,
    inbound: RuleSet,
    outbound: RuleSet,
    ct: Conntrack<()>,
    stats: Arc<FirewallStats>,
    pre: Prefetched,
}

impl Firewall {
    /// A firewall for `cfg`.
    pub fn new(cfg: FirewallConfig) -> Firewall {
        let counters = |n: usize| (0..=n).map(|_| Counter::default()).collect();
        let stats = FirewallStats {
            connections: Counter::default(),
            inbound: counters(cfg.inbound.rules.len()),
            outbound: counters(cfg.outbound.rules.len()),
            not_ipv4: Counter::default(),
            rejects_sent: Counter::default(),
        };
        Firewall {
            rejects: RateLimit::new(REJECT_RATE, REJECT_BURST),
            inbound: cfg.inbound,
            outbound: cfg.outbound,
            ct: Conntrack::new(cfg.max_connections, cfg.timeouts),
            stats: Arc::new(stats),
            pre: Prefetched::default(),
        }
    }

    /// The firewall's counters.
    pub fn stats(&self) -> Arc<FirewallStats> {
        Arc::clone(&self.stats)
    }

    /// The connection table.
    pub fn connections(&self) -> &Conntrack<()> {
        &self.ct
    }

    /// The state of `f` and, for a new connection the rules may let open, that it may.
    fn state(&mut self, f: &Flow, zone: u8, now: Timestamp, hash: Probe) -> (StateSet, bool) {
        if f.icmp == IcmpKind::Error {
            let related = f
                .inner
                .and_then(|(inner, _)| {
                    self.ct
                        .lookup_hashed(&inner.reverse(zone), hash, now, &mut |_| {})
                })
                .is_some();
            return if related {
                (StateSet::RELATED, false)
            } else {
                (StateSet::INVALID, false)
            };
        }
        match self.ct.lookup_hashed(&f.tuple, hash, now, &mut |_| {}) {
            Some((idx, dir)) => match self.ct.segment(idx, dir, f, now) {
                Some(CtState::Established) => (StateSet::ESTABLISHED, false),
                Some(_) => (StateSet::NEW, false),
                // A RST out of the window (a blind reset): invalid, the connection stays.
                None => (StateSet::INVALID, false),
            },
            None if conntrack::may_open(f) => (StateSet::NEW, true),
            None => (StateSet::INVALID, false),
        }
    }

    fn handle(
        &mut self,
        pkt: &mut Packet,
        zone: u8,
        now: Timestamp,
        (parsed, hash): (&Result<Flow, FlowError>, Probe),
    ) -> Verdict {
        let (view, open) = match parsed {
            Ok(f) => {
                let (state, open) = self.state(f, zone, now, hash);
                let view = View {
                    src: f.tuple.src,
                    dst: f.tuple.dst,
                    proto: f.tuple.proto,
                    sport: f.tuple.sport,
                    dport: f.tuple.dport,
                    icmp_type: (f.tuple.proto == PROTO_ICMP).then_some(f.icmp_type),
                    state,
                };
                (view, open.then_some((f.tuple, f.flags)))
            }
            Err(FlowError::NotIpv4) => {
                // The headers the burst's parse left on the packet: no second parse.
                let h = wire::classify(pkt);
                if h.l3 == L3::Arp && !h.tagged {
                    return Verdict::Pass;
                }
                self.stats.not_ipv4.add(1);
                return Verdict::Drop(DropReason::FwDenied);
            }
            Err(FlowError::Fragment) => {
                let h = wire::classify(pkt);
                let Some(ip) = h.ipv4(pkt.data()) else {
                    return Verdict::Drop(DropReason::BadHeader);
                };
                let view = View {
                    src: ip.src_addr(),
                    dst: ip.dst_addr(),
                    proto: ip.protocol(),
                    sport: 0,
                    dport: 0,
                    icmp_type: None,
                    state: StateSet::INVALID,
                };
                (view, None)
            }
            Err(FlowError::Bad(r)) => return Verdict::Drop(*r),
        };
        let (rules, hits) = if zone == 0 {
            (&self.outbound, &self.stats.outbound)
        } else {
            (&self.inbound, &self.stats.inbound)
        };
        let (action, i) = rules.decide(&view);
        hits[i].add(1);
        match action {
            Action::Allow => {
                if let Some((t, flags)) = open {
                    let reply = t.reverse(1 - zone);
                    let r = self.ct.insert(t, reply, flags, (), now, &mut |_| {});
                    if r == Err(conntrack::InsertError::Full) {
                        return Verdict::Drop(DropReason::ConntrackFull);
                    }
                    // A clash (the same flow opened from both sides at once) passes
                    // untracked.
                    self.stats.connections.set(self.ct.len() as u64);
                }
                Verdict::Pass
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
        }
    }
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
}

/// Turn `pkt` into the answer to a rejected packet: a TCP RST, or an ICMP port
/// unreachable, back to its sender from the address it was sent to. False if no answer
/// is due (a RST is not answered, nor is what ICMP may not answer).
fn reject_in_place(pkt: &mut Packet, v: &View) -> bool {
    // The flow again from the headers the packet carries (found by this burst's parse).
    let Ok(f) = conntrack::parse_packet(pkt, 0) else {
        return false;
    };
    let d = pkt.data();
    let Ok(eth) = EthernetFrame::new_checked(d) else {
        return false;
    };
    let (to_mac, from_mac) = (eth.src(), eth.dst());
    if v.proto != PROTO_TCP {
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
            v.dst,
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
    let (seq, ack) = (seg.seq_number(), seg.ack_number());
    let (rseq, rack, flags) = if f.flags & tcp_flags::ACK != 0 {
        (ack, 0, tcp_flags::RST)
    } else {
        let syn_fin =
            u32::from(f.flags & tcp_flags::SYN != 0) + u32::from(f.flags & tcp_flags::FIN != 0);
        (
            0,
            seq.wrapping_add(payload).wrapping_add(syn_fin),
            tcp_flags::RST | tcp_flags::ACK,
        )
    };
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
    let mut seg = TcpPacket::new_unchecked(seg_bytes);
    seg.set_src_port(t.dport);
    seg.set_dst_port(t.sport);
    seg.set_seq_number(rseq);
    seg.set_ack_number(rack);
    seg.set_header_len(seg_len);
    seg.set_flags(flags);
    seg.set_window(0);
    seg.set_urgent(0);
    seg.fill_checksum(t.dst, t.src);
    true
}

impl Node for Firewall {
    fn kind(&self) -> &'static str {
        "firewall"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let zone = if input == INSIDE { 0 } else { 1 };
        let other = if zone == 0 { OUTSIDE } else { INSIDE };
        let now = ctx.now;
        self.pre.fill(batch, zone, &self.ct);
        let pre = self.pre.take();
        for (i, mut pkt) in batch.drain().enumerate() {
            match self.handle(&mut pkt, zone, now, pre.get(i)) {
                Verdict::Pass => ctx.emit(other, pkt),
                Verdict::Drop(r) => ctx.drop(pkt, r),
                Verdict::Reject => {
                    ctx.drop_reused(&pkt, DropReason::FwRejected);
                    ctx.emit(input, pkt);
                }
            }
        }
        self.pre.restore(pre);
        self.stats.connections.set(self.ct.len() as u64);
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.ct.sweep(ctx.now, &mut |_| {});
        self.stats.connections.set(self.ct.len() as u64);
    }

    fn show(&self, table: &str, now: Timestamp) -> Option<Table> {
        match table {
            "conntrack" => Some(self.ct.table(now)),
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

    const IN: &str = "192.168.1.10";
    const OUT: &str = "198.51.100.7";

    fn t(ms: u64) -> Timestamp {
        Timestamp((ms + 1000) * 1_000_000)
    }

    fn harness(cfg: FirewallConfig) -> (Harness, Arc<FirewallStats>) {
        let f = Firewall::new(cfg);
        let s = f.stats();
        (Harness::new(Box::new(f), 2, 64), s)
    }

    /// Send `f` into `gate`; the frames out of each gate.
    fn send(h: &mut Harness, gate: usize, f: &[u8], now: Timestamp) -> Vec<Vec<Vec<u8>>> {
        h.send(gate, f, now);
        h.recv_each()
    }

    fn passes(h: &mut Harness, gate: usize, f: &[u8], now: Timestamp) -> bool {
        let got = send(h, gate, f, now);
        match got[1 - gate].as_slice() {
            [one] if one == f && got[gate].is_empty() => true,
            [] if got[gate].is_empty() => false,
            _ => panic!("unexpected output {got:?}"),
        }
    }

    fn rule(action: Action) -> Rule {
        Rule {
            action: Some(action),
            ..Rule::default()
        }
    }

    fn prefix(s: &str, len: u8) -> Prefix {
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
    fn arp_passes_other_non_ipv4_is_denied() {
        let (mut h, st) = harness(FirewallConfig::default());
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&IN_MAC);
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert!(passes(&mut h, 1, &arp, t(0)));
        let mut v6 = arp.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(!passes(&mut h, 0, &v6, t(0)));
        assert_eq!(st.not_ipv4.get(), 1);
        assert_eq!(h.node_drops(DropReason::FwDenied), 1);
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
