//! `firewall`: a stateful firewall with ordered rules per direction.

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

use nfv_dataplane::{Batch, Counter, Ctx, DropReason, Gate, Node, Packet, Timestamp};

use crate::conntrack::{self, tcp_flags, Conntrack, CtState, Flow, FlowError, IcmpKind, Tuple};
use crate::ip::{self, field, ETHERTYPE_ARP, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::router::icmp;
use crate::wire::ETH_HEADER_LEN;

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
            && self.src_port.is_none_or(|r| {
                matches!(v.proto, PROTO_TCP | PROTO_UDP) && r.contains(v.sport)
            })
            && self.dst_port.is_none_or(|r| {
                matches!(v.proto, PROTO_TCP | PROTO_UDP) && r.contains(v.dport)
            })
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
/// the address it was sending to. ARP passes; other non-IPv4 frames (IPv6 among them) are
/// `fw_denied`: this firewall filters IPv4 only and lets nothing through it cannot filter.
pub struct Firewall {
    inbound: RuleSet,
    outbound: RuleSet,
    ct: Conntrack<()>,
    stats: Arc<FirewallStats>,
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
            inbound: cfg.inbound,
            outbound: cfg.outbound,
            ct: Conntrack::new(cfg.max_connections, cfg.timeouts),
            stats: Arc::new(stats),
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
    fn state(&mut self, f: &Flow, zone: u8, now: Timestamp) -> (StateSet, bool) {
        if f.icmp == IcmpKind::Error {
            let related = f
                .inner
                .and_then(|(inner, _)| self.ct.lookup(&inner.reverse(zone), now, &mut |_| {}))
                .is_some();
            return if related {
                (StateSet::RELATED, false)
            } else {
                (StateSet::INVALID, false)
            };
        }
        match self.ct.lookup(&f.tuple, now, &mut |_| {}) {
            Some((idx, dir)) => match self.ct.update(idx, dir, f.flags, now) {
                CtState::Established => (StateSet::ESTABLISHED, false),
                _ => (StateSet::NEW, false),
            },
            None if conntrack::may_open(f) => (StateSet::NEW, true),
            None => (StateSet::INVALID, false),
        }
    }

    fn handle(&mut self, pkt: &mut Packet, zone: u8, ctx: &mut Ctx<'_>) -> Verdict {
        let now = ctx.now;
        let (view, open) = match conntrack::parse(pkt.data(), zone) {
            Ok(f) => {
                let (state, open) = self.state(&f, zone, now);
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
                let d = pkt.data();
                if d.len() >= ETH_HEADER_LEN && ip::read_u16(d, 12) == ETHERTYPE_ARP {
                    return Verdict::Pass;
                }
                self.stats.not_ipv4.add(1);
                return Verdict::Drop(DropReason::FwDenied);
            }
            Err(FlowError::Fragment) => {
                let h = &pkt.data()[ETH_HEADER_LEN..];
                let view = View {
                    src: ip::read_u32(h, field::SRC),
                    dst: ip::read_u32(h, field::DST),
                    proto: h[field::PROTO],
                    sport: 0,
                    dport: 0,
                    icmp_type: None,
                    state: StateSet::INVALID,
                };
                (view, None)
            }
            Err(FlowError::Bad(r)) => return Verdict::Drop(r),
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
                if reject_in_place(pkt, &view) {
                    self.stats.rejects_sent.add(1);
                    Verdict::Reject
                } else {
                    Verdict::Drop(DropReason::FwRejected)
                }
            }
        }
    }
}

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
    let d = pkt.data();
    let Ok(f) = conntrack::parse(d, 0) else {
        return false;
    };
    let mut to_mac = [0u8; 6];
    to_mac.copy_from_slice(&d[6..12]);
    let mut from_mac = [0u8; 6];
    from_mac.copy_from_slice(&d[0..6]);
    if v.proto != PROTO_TCP {
        let h = &d[ETH_HEADER_LEN..];
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
    let l4 = ETH_HEADER_LEN + f.ihl;
    let doff = usize::from(d[l4 + 12] >> 4) * 4;
    let payload = f.total.saturating_sub(f.ihl + doff) as u32;
    let seq = ip::read_u32(d, l4 + 4);
    let ack = ip::read_u32(d, l4 + 8);
    let (rseq, rack, flags) = if f.flags & tcp_flags::ACK != 0 {
        (ack, 0, tcp_flags::RST)
    } else {
        let syn_fin = u32::from(f.flags & tcp_flags::SYN != 0) + u32::from(f.flags & tcp_flags::FIN != 0);
        (0, seq.wrapping_add(payload).wrapping_add(syn_fin), tcp_flags::RST | tcp_flags::ACK)
    };
    let t: Tuple = f.tuple;
    let len = ETH_HEADER_LEN + 40;
    if !pkt.set_len(len) {
        return false;
    }
    let d = pkt.data_mut();
    d[0..6].copy_from_slice(&to_mac);
    d[6..12].copy_from_slice(&from_mac);
    d[12..14].copy_from_slice(&ip::ETHERTYPE_IPV4.to_be_bytes());
    let h = &mut d[ETH_HEADER_LEN..];
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&40u16.to_be_bytes());
    h[4..8].fill(0);
    h[field::TTL] = icmp::TTL;
    h[field::PROTO] = PROTO_TCP;
    h[field::SRC..field::SRC + 4].copy_from_slice(&t.dst.to_be_bytes());
    h[field::DST..field::DST + 4].copy_from_slice(&t.src.to_be_bytes());
    ip::set_header_checksum(&mut h[..ip::HEADER_LEN]);
    let tcp = &mut h[ip::HEADER_LEN..40];
    tcp[0..2].copy_from_slice(&t.dport.to_be_bytes());
    tcp[2..4].copy_from_slice(&t.sport.to_be_bytes());
    tcp[4..8].copy_from_slice(&rseq.to_be_bytes());
    tcp[8..12].copy_from_slice(&rack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..20].fill(0);
    let c = tcp_checksum(t.dst, t.src, tcp);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    true
}

/// The TCP checksum of `seg` (its checksum field zero) from `src` to `dst`.
pub fn tcp_checksum(src: u32, dst: u32, seg: &[u8]) -> u16 {
    let pseudo = u64::from(src >> 16)
        + u64::from(src & 0xffff)
        + u64::from(dst >> 16)
        + u64::from(dst & 0xffff)
        + u64::from(PROTO_TCP)
        + seg.len() as u64;
    !ip::fold(pseudo + u64::from(ip::sum(seg)))
}

impl Node for Firewall {
    fn kind(&self) -> &'static str {
        "firewall"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let zone = if input == INSIDE { 0 } else { 1 };
        let other = if zone == 0 { OUTSIDE } else { INSIDE };
        for mut pkt in batch.drain() {
            match self.handle(&mut pkt, zone, ctx) {
                Verdict::Pass => ctx.emit(other, pkt),
                Verdict::Drop(r) => ctx.drop(pkt, r),
                Verdict::Reject => {
                    ctx.count_drop(DropReason::FwRejected);
                    ctx.emit(input, pkt);
                }
            }
        }
        self.stats.connections.set(self.ct.len() as u64);
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.ct.sweep(ctx.now, &mut |_| {});
        self.stats.connections.set(self.ct.len() as u64);
    }
}
