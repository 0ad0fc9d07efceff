//! `nat`: masquerade (source NAT) with port forwards (destination NAT).

use std::net::Ipv4Addr;

use crate::conntrack::Timeouts;
use crate::firewall::PortRange;

/// A port forward: connections to the NAT's first address on `proto`/`port` go to
/// `to`:`to_port` inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortForward {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// The outside port.
    pub port: u16,
    /// The inside address.
    pub to: Ipv4Addr,
    /// The inside port.
    pub to_port: u16,
}

/// A NAT's settings. Gate 0 is the inside, gate 1 the outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatConfig {
    /// The outside addresses flows are masqueraded to (at least one); port forwards are on
    /// the first.
    pub addresses: Vec<Ipv4Addr>,
    /// Outside ports (and ICMP echo identifiers) handed out, per address and protocol.
    pub ports: PortRange,
    /// Port forwards.
    pub forwards: Vec<PortForward>,
    /// Most sessions.
    pub max_sessions: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
}

/// Default outside port range.
pub const DEFAULT_PORTS: PortRange = PortRange {
    lo: 1024,
    hi: 65535,
};

// ---------------------------------------------------------------------------------------
// The node

use std::sync::Arc;

use nfv_dataplane::{Batch, Counter, Ctx, DropReason, Gate, Node, Packet, Timestamp};

use crate::conntrack::{self, Conntrack, Dir, Entry, Flow, FlowError, IcmpKind, InsertError, Tuple};
use crate::ip::{self, field, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::wire::ETH_HEADER_LEN;

/// The inside gate.
pub const INSIDE: Gate = Gate(0);
/// The outside gate.
pub const OUTSIDE: Gate = Gate(1);

/// How a session translates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NatKind {
    /// Not translated: a flow from the outside to an inside address that is routed, not
    /// forwarded.
    #[default]
    Pass,
    /// Masquerade: an inside client's flow to the outside.
    Snat,
    /// A port forward: an outside client's flow to an inside server.
    Dnat,
    /// An inside client reaching a port forward on an outside address: both translations,
    /// and the packets go back inside.
    Hairpin,
}

/// A session's binding: what it translates, and the outside port it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// How it translates.
    pub kind: NatKind,
    /// Index of the outside address whose port it holds, if it holds one.
    pub addr: Option<u16>,
    /// The port (or ICMP identifier) it holds.
    pub port: u16,
}

/// A NAT's counters.
#[derive(Debug, Default)]
pub struct NatStats {
    /// Live sessions.
    pub sessions: Counter,
    /// Sessions created.
    pub created: Counter,
    /// Sessions expired.
    pub expired: Counter,
    /// Packets translated.
    pub translated: Counter,
    /// Packets passed without translation (ARP, non-IPv4, the router's own traffic).
    pub passed: Counter,
    /// New flows refused for want of an outside port.
    pub no_ports: Counter,
    /// New flows refused because the session table was full.
    pub table_full: Counter,
    /// ICMP errors translated.
    pub icmp_errors: Counter,
}

/// Protocol classes with their own port space.
const CLASSES: usize = 3;

fn class(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(0),
        PROTO_UDP => Some(1),
        PROTO_ICMP => Some(2),
        _ => None,
    }
}

/// Outside ports per address and protocol class: a bitmap each, with a count and a cursor.
struct PortPool {
    lo: u16,
    n: u32,
    words: usize,
    bits: Vec<u64>,
    used: Vec<u32>,
    cursor: Vec<u32>,
}

impl PortPool {
    fn new(addresses: usize, range: PortRange) -> Self {
        let n = u32::from(range.hi.saturating_sub(range.lo)) + 1;
        let words = n.div_ceil(64) as usize;
        let sets = addresses * CLASSES;
        PortPool {
            lo: range.lo,
            n,
            words,
            bits: vec![0; sets * words],
            used: vec![0; sets],
            cursor: vec![0; sets],
        }
    }

    fn set(&self, addr: usize, class: usize) -> usize {
        addr * CLASSES + class
    }

    /// Take `port` if it is in the range and free.
    fn take(&mut self, set: usize, port: u16) -> bool {
        if port < self.lo || u32::from(port - self.lo) >= self.n {
            return false;
        }
        let i = u32::from(port - self.lo);
        let w = set * self.words + (i / 64) as usize;
        let b = 1u64 << (i % 64);
        if self.bits[w] & b != 0 {
            return false;
        }
        self.bits[w] |= b;
        self.used[set] += 1;
        true
    }

    /// A free port of `set`, `want` if it is free.
    fn alloc(&mut self, set: usize, want: u16) -> Option<u16> {
        if self.used[set] >= self.n {
            return None;
        }
        if self.take(set, want) {
            return Some(want);
        }
        let base = set * self.words;
        let start = self.cursor[set] as usize;
        for k in 0..=self.words {
            let wi = (start + k) % self.words;
            let mut free = !self.bits[base + wi];
            if wi == self.words - 1 && self.n % 64 != 0 {
                free &= (1u64 << (self.n % 64)) - 1;
            }
            if free != 0 {
                let bit = free.trailing_zeros();
                self.bits[base + wi] |= 1 << bit;
                self.used[set] += 1;
                self.cursor[set] = wi as u32;
                return Some(self.lo + (wi as u32 * 64 + bit) as u16);
            }
        }
        None
    }

    fn free(&mut self, set: usize, port: u16) {
        if port < self.lo || u32::from(port - self.lo) >= self.n {
            return;
        }
        let i = u32::from(port - self.lo);
        let w = set * self.words + (i / 64) as usize;
        let b = 1u64 << (i % 64);
        if self.bits[w] & b != 0 {
            self.bits[w] &= !b;
            self.used[set] -= 1;
        }
    }
}

/// Why a NAT could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NatError {
    /// No outside address.
    #[error("a NAT needs at least one outside address")]
    NoAddress,
    /// Too many outside addresses.
    #[error("a NAT takes at most {MAX_ADDRESSES} outside addresses")]
    TooManyAddresses,
}

/// Most outside addresses.
pub const MAX_ADDRESSES: usize = 4096;

/// The `nat` node: gate 0 inside, gate 1 outside.
///
/// Packets from the inside open *masquerade* sessions: the source becomes one of the
/// outside addresses (chosen by a hash of the inside address, so a host keeps its outside
/// address) and a port from the range, the original port when it is free. Packets from the
/// outside to a port forward open *DNAT* sessions. An inside client reaching a port forward
/// on an outside address gets both translations and its packets go back inside (hairpin);
/// a router masquerading to its own interface address sends such packets out to the NAT
/// (`RouterInterface::nat_outside`). ICMP errors about a session are translated, the quoted
/// header too, so traceroute and path-MTU discovery work through the NAT.
///
/// What is passed untouched: non-IPv4 frames (ARP), the outside addresses' own traffic
/// (a router's echo replies and ICMP errors), and outside packets that match no session
/// and no forward (a router behind it answers or drops them). Dropped: inside TCP segments
/// without a session that are not a SYN, inside packets to an outside address that is not
/// forwarded, and ICMP errors from the inside about no session (`nat_no_session`, so inside
/// addresses never leak); new flows without a free port (`nat_no_ports`) or table room
/// (`conntrack_full`). Non-first fragments are not reassembled (`nat_no_session`).
pub struct Nat {
    addresses: Vec<u32>,
    forwards: Vec<PortForward>,
    pool: PortPool,
    ct: Conntrack<Binding>,
    stats: Arc<NatStats>,
}

impl Nat {
    /// A NAT for `cfg`. Forwarded ports are reserved on the first address.
    pub fn new(cfg: NatConfig) -> Result<Nat, NatError> {
        if cfg.addresses.is_empty() {
            return Err(NatError::NoAddress);
        }
        if cfg.addresses.len() > MAX_ADDRESSES {
            return Err(NatError::TooManyAddresses);
        }
        let mut pool = PortPool::new(cfg.addresses.len(), cfg.ports);
        for f in &cfg.forwards {
            if let Some(c) = class(f.proto) {
                let s = pool.set(0, c);
                pool.take(s, f.port);
            }
        }
        Ok(Nat {
            addresses: cfg.addresses.iter().map(|a| u32::from(*a)).collect(),
            forwards: cfg.forwards,
            pool,
            ct: Conntrack::new(cfg.max_sessions, cfg.timeouts),
            stats: Arc::new(NatStats::default()),
        })
    }

    /// The NAT's counters.
    pub fn stats(&self) -> Arc<NatStats> {
        Arc::clone(&self.stats)
    }

    /// The session table.
    pub fn sessions(&self) -> &Conntrack<Binding> {
        &self.ct
    }

    #[inline]
    fn is_ours(&self, a: u32) -> bool {
        self.addresses.contains(&a)
    }

    fn forward(&self, t: &Tuple) -> Option<PortForward> {
        if t.dst != self.addresses[0] {
            return None;
        }
        self.forwards
            .iter()
            .find(|f| f.proto == t.proto && f.port == t.dport)
            .copied()
    }

    /// Allocate an outside address and port for a flow from `src` wanting port `want`.
    fn alloc(&mut self, proto: u8, src: u32, want: u16) -> Option<(u16, u16)> {
        let n = self.addresses.len();
        let start = (src.wrapping_mul(0x9e37_79b1) >> 8) as usize % n;
        let c = class(proto)?;
        for k in 0..n {
            let a = (start + k) % n;
            let s = self.pool.set(a, c);
            if let Some(p) = self.pool.alloc(s, want) {
                return Some((a as u16, p));
            }
        }
        None
    }

    /// A new session for `f` arriving in `zone`; its index, or the drop reason.
    fn open(&mut self, f: &Flow, now: Timestamp) -> Result<Option<u32>, DropReason> {
        let t = f.tuple;
        let (reply, binding) = if t.zone == 0 {
            let (to, to_port, kind) = if self.is_ours(t.dst) {
                let Some(fw) = self.forward(&t) else {
                    return Err(DropReason::NatNoSession);
                };
                (u32::from(fw.to), fw.to_port, NatKind::Hairpin)
            } else {
                (t.dst, t.dport, NatKind::Snat)
            };
            let (addr, port, reply_zone) = if class(t.proto).is_some() {
                let Some((a, p)) = self.alloc(t.proto, t.src, t.sport) else {
                    self.stats.no_ports.add(1);
                    return Err(DropReason::NatNoPorts);
                };
                (Some(a), p, if kind == NatKind::Hairpin { 0 } else { 1 })
            } else {
                (None, 0, 1)
            };
            let outside = self.addresses[usize::from(addr.unwrap_or(0))];
            let reply = Tuple {
                src: to,
                dst: outside,
                sport: if t.proto == PROTO_ICMP { port } else { to_port },
                dport: port,
                proto: t.proto,
                zone: reply_zone,
            };
            (reply, Binding { kind, addr, port })
        } else if let Some(fw) = self.forward(&t) {
            let reply = Tuple {
                src: u32::from(fw.to),
                dst: t.src,
                sport: fw.to_port,
                dport: t.sport,
                proto: t.proto,
                zone: 0,
            };
            (
                reply,
                Binding {
                    kind: NatKind::Dnat,
                    addr: None,
                    port: 0,
                },
            )
        } else if self.is_ours(t.dst) {
            // For a router behind the NAT (its own address), or nobody.
            return Ok(None);
        } else {
            (
                t.reverse(0),
                Binding {
                    kind: NatKind::Pass,
                    addr: None,
                    port: 0,
                },
            )
        };
        let (pool, stats) = (&mut self.pool, &self.stats);
        let mut release = |e: &Entry<Binding>| release(pool, stats, e);
        match self.ct.insert(t, reply, f.flags, binding, now, &mut release) {
            Ok(idx) => {
                self.stats.created.add(1);
                self.stats.sessions.set(self.ct.len() as u64);
                Ok(Some(idx))
            }
            Err(e) => {
                if let (Some(a), Some(c)) = (binding.addr, class(t.proto)) {
                    let s = self.pool.set(usize::from(a), c);
                    self.pool.free(s, binding.port);
                }
                match e {
                    InsertError::Full => {
                        self.stats.table_full.add(1);
                        Err(DropReason::ConntrackFull)
                    }
                    InsertError::Clash => {
                        self.stats.no_ports.add(1);
                        Err(DropReason::NatNoPorts)
                    }
                }
            }
        }
    }

    /// Handle one packet from `zone`: the gate to send it to, or why it is dropped.
    fn handle(&mut self, pkt: &mut Packet, zone: u8, now: Timestamp) -> Result<Gate, DropReason> {
        let other = if zone == 0 { OUTSIDE } else { INSIDE };
        let f = match conntrack::parse(pkt.data(), zone) {
            Ok(f) => f,
            Err(FlowError::NotIpv4) => {
                self.stats.passed.add(1);
                return Ok(other);
            }
            Err(FlowError::Fragment) => return Err(DropReason::NatNoSession),
            Err(FlowError::Bad(r)) => return Err(r),
        };
        if f.icmp == IcmpKind::Error {
            return self.handle_error(pkt, &f, zone, now);
        }
        let (pool, stats) = (&mut self.pool, &self.stats);
        let mut release = |e: &Entry<Binding>| release(pool, stats, e);
        let found = self.ct.lookup(&f.tuple, now, &mut release);
        let (idx, dir) = match found {
            Some(x) => x,
            None => {
                if zone == 0 && self.is_ours(f.tuple.src) {
                    self.stats.passed.add(1);
                    return Ok(other);
                }
                if !conntrack::may_open(&f) {
                    if zone == 1 || f.tuple.proto == PROTO_ICMP && f.icmp_type == 0 {
                        self.stats.passed.add(1);
                        return Ok(other);
                    }
                    return Err(DropReason::NatNoSession);
                }
                match self.open(&f, now)? {
                    Some(idx) => (idx, Dir::Orig),
                    None => {
                        self.stats.passed.add(1);
                        return Ok(other);
                    }
                }
            }
        };
        self.ct.update(idx, dir, f.flags, now);
        let e = self.ct.entry(idx);
        let to = e.tuple[dir.other() as usize].reverse(0);
        let kind = e.data.kind;
        if kind != NatKind::Pass {
            let l3 = ETH_HEADER_LEN;
            let end = l3 + f.total;
            translate(pkt.data_mut(), l3, f.ihl, end, &f.tuple, &to, f.icmp == IcmpKind::Echo);
            self.stats.translated.add(1);
        }
        if kind == NatKind::Hairpin {
            swap_macs(pkt.data_mut());
            return Ok(if zone == 0 { INSIDE } else { OUTSIDE });
        }
        Ok(other)
    }

    /// An ICMP error: translate it for the session whose packet it quotes.
    fn handle_error(
        &mut self,
        pkt: &mut Packet,
        f: &Flow,
        zone: u8,
        now: Timestamp,
    ) -> Result<Gate, DropReason> {
        let other = if zone == 0 { OUTSIDE } else { INSIDE };
        let found = match f.inner {
            Some((inner, _)) => {
                let (pool, stats) = (&mut self.pool, &self.stats);
                let mut release = |e: &Entry<Binding>| release(pool, stats, e);
                self.ct.lookup(&inner.reverse(zone), now, &mut release)
            }
            None => None,
        };
        let (Some((idx, dir)), Some((inner, at))) = (found, f.inner) else {
            // About no session: the outside's errors go to whoever owns the address; the
            // inside's would leak inside addresses, unless they come from the NAT's own
            // address (a router's).
            if zone == 1 || self.is_ours(f.tuple.src) {
                self.stats.passed.add(1);
                return Ok(other);
            }
            return Err(DropReason::NatNoSession);
        };
        let e = *self.ct.entry(idx);
        if e.data.kind == NatKind::Pass {
            return Ok(other);
        }
        // The quoted packet went the other way: it becomes the other direction's tuple as
        // its own side saw it.
        let new_inner = e.tuple[dir.other() as usize];
        let new_inner = Tuple { zone: 0, ..new_inner };
        let out_gate = if e.data.kind == NatKind::Hairpin {
            if zone == 0 {
                INSIDE
            } else {
                OUTSIDE
            }
        } else {
            other
        };
        let d = pkt.data_mut();
        let l3 = ETH_HEADER_LEN;
        let end = l3 + f.total;
        let qihl = usize::from(d[at] & 0x0f) * 4;
        translate(d, at, qihl, end, &inner, &new_inner, inner.proto == PROTO_ICMP);
        // The outer header: to the quoted packet's (new) source; from the quoted packet's
        // (new) destination when it goes outside or was sent by that destination.
        let old_src = f.tuple.src;
        let new_src = if out_gate == OUTSIDE || old_src == inner.dst {
            new_inner.dst
        } else {
            old_src
        };
        let outer_to = Tuple {
            src: new_src,
            dst: new_inner.src,
            ..f.tuple
        };
        set_addresses(d, l3, &f.tuple, &outer_to);
        // The ICMP checksum covers everything changed inside: recompute it.
        let icmp = l3 + f.ihl;
        d[icmp + 2..icmp + 4].fill(0);
        let c = ip::checksum(&d[icmp..end]);
        d[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
        self.stats.icmp_errors.add(1);
        self.stats.translated.add(1);
        if e.data.kind == NatKind::Hairpin {
            swap_macs(d);
        }
        Ok(out_gate)
    }
}

/// Give back the port a session held.
fn release(pool: &mut PortPool, stats: &NatStats, e: &Entry<Binding>) {
    if let (Some(a), Some(c)) = (e.data.addr, class(e.tuple[0].proto)) {
        let s = pool.set(usize::from(a), c);
        pool.free(s, e.data.port);
    }
    stats.expired.add(1);
}

fn swap_macs(d: &mut [u8]) {
    let mut a = [0u8; 6];
    a.copy_from_slice(&d[0..6]);
    d.copy_within(6..12, 0);
    d[6..12].copy_from_slice(&a);
}

#[inline]
fn write_u16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn write_u32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// A checksum after a 32-bit word of the summed data changed.
#[inline]
fn update32(c: u16, old: u32, new: u32) -> u16 {
    let c = ip::update_checksum(c, (old >> 16) as u16, (new >> 16) as u16);
    ip::update_checksum(c, old as u16, new as u16)
}

/// Rewrite only the IPv4 addresses of the header at `l3` from `old` to `new`, with the
/// header checksum (not the transport's).
fn set_addresses(d: &mut [u8], l3: usize, old: &Tuple, new: &Tuple) {
    let mut c = ip::read_u16(d, l3 + field::CHECKSUM);
    if old.src != new.src {
        write_u32(d, l3 + field::SRC, new.src);
        c = update32(c, old.src, new.src);
    }
    if old.dst != new.dst {
        write_u32(d, l3 + field::DST, new.dst);
        c = update32(c, old.dst, new.dst);
    }
    write_u16(d, l3 + field::CHECKSUM, c);
}

/// Rewrite the IPv4 packet at `l3` (header `ihl` bytes, data up to `end`; it may be a
/// quote cut short) from tuple `old` to `new`: addresses, ports or the ICMP echo
/// identifier, and every checksum incrementally (RFC 1624): the IPv4 header's, TCP's and
/// UDP's (their pseudo-header holds the addresses; a UDP checksum of 0 means none and stays
/// 0, and a computed 0 is sent as 0xffff), ICMP's. A transport checksum that is not within
/// `end` (a quote) is left alone.
pub fn translate(
    d: &mut [u8],
    l3: usize,
    ihl: usize,
    end: usize,
    old: &Tuple,
    new: &Tuple,
    echo: bool,
) {
    set_addresses(d, l3, old, new);
    let l4 = l3 + ihl;
    let csum_at = match old.proto {
        PROTO_TCP => Some(l4 + 16),
        PROTO_UDP => Some(l4 + 6).filter(|&at| at + 2 <= end && ip::read_u16(d, at) != 0),
        PROTO_ICMP => Some(l4 + 2),
        _ => None,
    }
    .filter(|&at| at + 2 <= end);
    let mut c = csum_at.map(|at| ip::read_u16(d, at));
    if old.proto != PROTO_ICMP {
        if old.src != new.src {
            c = c.map(|c| update32(c, old.src, new.src));
        }
        if old.dst != new.dst {
            c = c.map(|c| update32(c, old.dst, new.dst));
        }
    }
    match old.proto {
        PROTO_TCP | PROTO_UDP => {
            if old.sport != new.sport {
                write_u16(d, l4, new.sport);
                c = c.map(|c| ip::update_checksum(c, old.sport, new.sport));
            }
            if old.dport != new.dport {
                write_u16(d, l4 + 2, new.dport);
                c = c.map(|c| ip::update_checksum(c, old.dport, new.dport));
            }
        }
        PROTO_ICMP if echo && old.sport != new.sport => {
            write_u16(d, l4 + 4, new.sport);
            c = c.map(|c| ip::update_checksum(c, old.sport, new.sport));
        }
        _ => {}
    }
    if let (Some(at), Some(mut c)) = (csum_at, c) {
        if old.proto == PROTO_UDP && c == 0 {
            c = 0xffff;
        }
        write_u16(d, at, c);
    }
}

impl Node for Nat {
    fn kind(&self) -> &'static str {
        "nat"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let zone = if input == INSIDE { 0 } else { 1 };
        let now = ctx.now;
        for mut pkt in batch.drain() {
            match self.handle(&mut pkt, zone, now) {
                Ok(g) => ctx.emit(g, pkt),
                Err(r) => ctx.drop(pkt, r),
            }
        }
        self.stats.sessions.set(self.ct.len() as u64);
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let (pool, stats) = (&mut self.pool, &self.stats);
        let mut release = |e: &Entry<Binding>| release(pool, stats, e);
        self.ct.sweep(ctx.now, &mut release);
        self.stats.sessions.set(self.ct.len() as u64);
    }
}
