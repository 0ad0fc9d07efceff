//! `nat`: masquerade (source NAT) with port forwards (destination NAT).
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the configuration types and the node |
//! | `config.rs` | the `nat` kind: its keys in a topology file, checked |
//! | `metrics.rs` | its metrics |
//! | `tests_fragments.rs` | the node's tests of fragments |

mod config;
mod metrics;
#[cfg(test)]
mod tests_fragments;

pub use config::{NatFunctionKind, NatSpec};

use std::collections::HashMap;
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

use nfv_dataplane::{Batch, Cell, Counter, Ctx, DropReason, Gate, Node, Packet, Table, Timestamp};

use crate::conntrack::{
    self, Conntrack, Dir, Entry, Flow, FlowError, IcmpKind, InsertError, Prefetched, Probe, Tuple,
};
use crate::fragments::{self, FragStats, Fragments};
use crate::ip::{self, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::show;
use crate::wire::{self, EthernetFrame, Icmpv4Packet, Ipv4Packet, Ports, TcpPacket, UdpPacket};

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
    /// Packets passed without translation (ARP, non-IPv4 such as IPv6, the router's own
    /// traffic).
    pub passed: Counter,
    /// New flows refused for want of an outside port.
    pub no_ports: Counter,
    /// New flows refused because the session table was full.
    pub table_full: Counter,
    /// ICMP errors translated.
    pub icmp_errors: Counter,
    /// The fragment table's counters.
    pub fragments: Arc<FragStats>,
}

/// What a NAT did with the first fragment of a datagram, for its later fragments.
#[derive(Clone, Copy, Debug)]
struct FragRewrite {
    /// The gate it went out of, or why it was dropped.
    result: Result<Gate, DropReason>,
    /// Its IPv4 source and destination as it left.
    to: (u32, u32),
    /// It went back out of the gate it came in on (hairpin): its MAC addresses swapped.
    hairpin: bool,
}

/// Protocol classes with their own port space.
const CLASSES: usize = 3;

/// The class of ICMP echo identifiers (one per session: no endpoint mapping).
const CLASS_ICMP: usize = 2;

fn class(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(0),
        PROTO_UDP => Some(1),
        PROTO_ICMP => Some(2),
        _ => None,
    }
}

/// Outside ports per address and protocol class: a bitmap each, with a count and a cursor;
/// and the endpoint-independent mappings that hold TCP and UDP ports.
struct PortPool {
    lo: u16,
    n: u32,
    words: usize,
    bits: Vec<u64>,
    used: Vec<u32>,
    cursor: Vec<u32>,
    /// Inside endpoint (class, address, port) -> (outside address index, port, sessions
    /// using it): every masqueraded TCP or UDP session of one inside endpoint leaves from
    /// the same outside endpoint, whatever its remote (RFC 4787 REQ-1, RFC 5382 REQ-1).
    mappings: HashMap<(u8, u32, u16), (u16, u16, u32), ahash::RandomState>,
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
            mappings: HashMap::with_hasher(ahash::RandomState::new()),
        }
    }

    /// The outside endpoint of inside endpoint `(class, src, sport)`, taken once more, if
    /// it has one.
    fn mapped(&mut self, class: usize, src: u32, sport: u16) -> Option<(u16, u16)> {
        let m = self.mappings.get_mut(&(class as u8, src, sport))?;
        m.2 += 1;
        Some((m.0, m.1))
    }

    /// Record that inside endpoint `(class, src, sport)` leaves as outside port `port` of
    /// address `addr` (taken by one session).
    fn map(&mut self, class: usize, src: u32, sport: u16, (addr, port): (u16, u16)) {
        self.mappings
            .insert((class as u8, src, sport), (addr, port, 1));
    }

    /// A session of inside endpoint `(class, src, sport)` holding `port` of `addr` ended:
    /// the port goes back once no session uses the mapping (or if it had none).
    fn unmap(&mut self, class: usize, src: u32, sport: u16, (addr, port): (u16, u16)) {
        let key = (class as u8, src, sport);
        if let Some(m) = self.mappings.get_mut(&key) {
            if (m.0, m.1) == (addr, port) {
                m.2 = m.2.saturating_sub(1);
                if m.2 > 0 {
                    return;
                }
                self.mappings.remove(&key);
            }
        }
        let set = self.set(usize::from(addr), class);
        self.free(set, port);
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
            if wi == self.words - 1 && !self.n.is_multiple_of(64) {
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
/// address) and a port from the range, the original port when it is free. The mapping is
/// endpoint-independent (RFC 4787 REQ-1, RFC 5382 REQ-1): every TCP or UDP session of one
/// inside address and port leaves from the same outside address and port, whatever its
/// remote, and that port goes back when the last of them ends; ICMP echo identifiers are
/// taken per session. Packets from the
/// outside to a port forward open *DNAT* sessions. An inside client reaching a port forward
/// on an outside address gets both translations and its packets go back inside (hairpin);
/// a router masquerading to its own interface address sends such packets out to the NAT
/// (`RouterInterface::nat_outside`). ICMP errors about a session are translated, the quoted
/// header too, so traceroute and path-MTU discovery work through the NAT.
///
/// What is passed untouched: non-IPv4 frames (ARP, and IPv6, well formed or not: this NAT
/// translates IPv4 only and neither tracks nor checks IPv6), the outside addresses' own traffic
/// (a router's echo replies and ICMP errors), and outside packets that match no session
/// and no forward (a router behind it answers or drops them). Dropped: inside TCP segments
/// without a session that are not a SYN, inside packets to an outside address that is not
/// forwarded, and ICMP errors from the inside about no session (`nat_no_session`, so inside
/// addresses never leak); new flows without a free port (`nat_no_ports`) or table room
/// (`conntrack_full`).
///
/// Fragments ([`crate::fragments`]): a datagram's first fragment is translated as any
/// packet (its transport checksum, which covers the whole datagram, is fixed there), and
/// its later fragments get the same addresses, with their IPv4 header checksum, and go
/// out of the same gate (or are dropped for the same reason). Later fragments that come
/// before their first fragment wait for it (in bounds, else `fragments_full`; too long,
/// `fragment_timeout`) and follow it out.
///
/// Tables ([`Node::show`]):
/// - `nat`: one row per port forward, then one per live session. Columns: `proto`;
///   `kind` (`snat` masquerade, `dnat` port forward, `hairpin`, `pass` for an untranslated
///   flow from the outside to a routed inside address); `inside` (the inside host's end as
///   it sees it), `outside` (that end as the outside sees it, translated), `remote` (the
///   other end), each `ip:port` (see [`crate::show::endpoint`]); `state` (the session's
///   connection state, as in `conntrack`; `forward` for a port forward); `expires_s`
///   (none for a port forward). A port forward's `remote` is none.
/// - `conntrack`: the sessions as the tracker sees them, untranslated (see
///   [`Conntrack::table`]).
pub struct Nat {
    addresses: Vec<u32>,
    forwards: Vec<PortForward>,
    pool: PortPool,
    ct: Conntrack<Binding>,
    stats: Arc<NatStats>,
    pre: Prefetched,
    frags: Fragments<FragRewrite>,
    /// Held fragments a first fragment released, to follow it out (allocated once).
    released: Vec<Packet>,
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
        let frags = Fragments::new(fragments::Limits::default());
        Ok(Nat {
            addresses: cfg.addresses.iter().map(|a| u32::from(*a)).collect(),
            forwards: cfg.forwards,
            pool,
            ct: Conntrack::new(cfg.max_sessions, cfg.timeouts),
            stats: Arc::new(NatStats {
                fragments: frags.stats(),
                ..NatStats::default()
            }),
            pre: Prefetched::default(),
            frags,
            released: Vec::with_capacity(fragments::HELD_PER_DATAGRAM),
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
            let (addr, port, reply_zone) = if let Some(c) = class(t.proto) {
                // A masqueraded TCP or UDP endpoint keeps the outside endpoint it has.
                let eim = kind == NatKind::Snat && c != CLASS_ICMP;
                let mapped = if eim {
                    self.pool.mapped(c, t.src, t.sport)
                } else {
                    None
                };
                let Some((a, p)) = mapped.or_else(|| self.alloc(t.proto, t.src, t.sport)) else {
                    self.stats.no_ports.add(1);
                    return Err(DropReason::NatNoPorts);
                };
                if eim && mapped.is_none() {
                    self.pool.map(c, t.src, t.sport, (a, p));
                }
                (Some(a), p, if kind == NatKind::Hairpin { 0 } else { 1 })
            } else {
                (None, 0, 1)
            };
            let outside = self.addresses[usize::from(addr.unwrap_or(0))];
            let reply = Tuple {
                src: to,
                dst: outside,
                sport: to_port,
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
        match self
            .ct
            .insert(t, reply, f.flags, binding, now, &mut release)
        {
            Ok(idx) => {
                self.stats.created.add(1);
                self.stats.sessions.set(self.ct.len() as u64);
                Ok(Some(idx))
            }
            Err(e) => {
                unbind(&mut self.pool, &t, &binding);
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
    fn handle(
        &mut self,
        pkt: &mut Packet,
        zone: u8,
        now: Timestamp,
        (parsed, hash): (&Result<Flow, FlowError>, Probe),
    ) -> Result<Gate, DropReason> {
        let other = if zone == 0 { OUTSIDE } else { INSIDE };
        let f = match parsed {
            Ok(f) => f,
            // IPv6 among them: its parse is IPv4's, which does not read IPv6.
            Err(FlowError::NotIpv4 | FlowError::NotIpv6) => {
                self.stats.passed.add(1);
                return Ok(other);
            }
            // Later fragments are followed (or held) before: none comes here.
            Err(FlowError::Fragment) => return Err(DropReason::Internal),
            Err(FlowError::Bad(r)) => return Err(*r),
        };
        if f.icmp == IcmpKind::Error {
            return self.handle_error(pkt, f, zone, now, hash);
        }
        let (pool, stats) = (&mut self.pool, &self.stats);
        let mut release = |e: &Entry<Binding>| release(pool, stats, e);
        let found = self.ct.lookup_hashed(&f.tuple, hash, now, &mut release);
        let (idx, dir) = match found {
            Some(x) => x,
            None => {
                if zone == 0 && self.is_ours(f.tuple.src) {
                    self.stats.passed.add(1);
                    return Ok(other);
                }
                if !conntrack::may_open(f) {
                    if zone == 1 || f.tuple.proto == PROTO_ICMP && f.icmp_type == 0 {
                        self.stats.passed.add(1);
                        return Ok(other);
                    }
                    return Err(DropReason::NatNoSession);
                }
                match self.open(f, now)? {
                    Some(idx) => (idx, Dir::Orig),
                    None => {
                        self.stats.passed.add(1);
                        return Ok(other);
                    }
                }
            }
        };
        if self.ct.segment(idx, dir, f, now).is_none() {
            // A RST out of the window (a blind reset): the session stays, the RST goes no
            // further.
            return Err(DropReason::NatNoSession);
        }
        let e = self.ct.entry(idx);
        let to = e.tuple[dir.other() as usize].reverse(0);
        let kind = e.data.kind;
        if kind != NatKind::Pass {
            let l3 = f.l3;
            let end = l3 + f.total;
            let begun = pkt.offload().is_some_and(|o| o.needs_csum);
            translate(
                pkt.data_mut(),
                l3,
                f.ihl,
                end,
                &f.tuple,
                &to,
                f.icmp == IcmpKind::Echo,
                begun,
            );
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
        hash: Probe,
    ) -> Result<Gate, DropReason> {
        let other = if zone == 0 { OUTSIDE } else { INSIDE };
        let found = match f.inner {
            Some((inner, _)) => {
                let (pool, stats) = (&mut self.pool, &self.stats);
                let mut release = |e: &Entry<Binding>| release(pool, stats, e);
                self.ct
                    .lookup_hashed(&inner.reverse(zone), hash, now, &mut release)
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
        let new_inner = Tuple {
            zone: 0,
            ..new_inner
        };
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
        let l3 = f.l3;
        let end = l3 + f.total;
        let Some(qihl) = d
            .get(at..end)
            .and_then(|q| Ipv4Packet::new_quoted(q).ok())
            .map(|q| q.header_len())
        else {
            return Err(DropReason::BadHeader);
        };
        translate(
            d,
            at,
            qihl,
            end,
            &inner,
            &new_inner,
            inner.proto == PROTO_ICMP,
            false,
        );
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
        if let Ok(mut outer) = Ipv4Packet::new_checked(&mut d[l3..end]) {
            let _ = set_addresses(&mut outer, &f.tuple, &outer_to);
            // The ICMP checksum covers everything changed inside: recompute it.
            if let Ok(mut m) = Icmpv4Packet::new_checked(outer.payload_mut()) {
                m.fill_checksum();
            }
        }
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
    unbind(pool, &e.tuple[0], &e.data);
    stats.expired.add(1);
}

/// A session of the flow `t` (as it left its inside host) with `binding` is gone: its
/// port, or its share of its inside endpoint's mapping.
fn unbind(pool: &mut PortPool, t: &Tuple, binding: &Binding) {
    let (Some(a), Some(c)) = (binding.addr, class(t.proto)) else {
        return;
    };
    if binding.kind == NatKind::Snat && c != CLASS_ICMP {
        pool.unmap(c, t.src, t.sport, (a, binding.port));
    } else {
        let s = pool.set(usize::from(a), c);
        pool.free(s, binding.port);
    }
}

fn swap_macs(d: &mut [u8]) {
    if let Ok(mut eth) = EthernetFrame::new_checked(d) {
        eth.swap_addresses();
    }
}

/// What a checksum's ones'-complement sum gains when a 16-bit word goes from `old` to
/// `new` (RFC 1624: `~m + m'`); several changes add up and are folded once by [`apply`].
#[inline(always)]
fn delta16(old: u16, new: u16) -> u64 {
    u64::from(!old) + u64::from(new)
}

/// [`delta16`] for a 32-bit word (an address).
#[inline(always)]
fn delta32(old: u32, new: u32) -> u64 {
    delta16((old >> 16) as u16, (new >> 16) as u16) + delta16(old as u16, new as u16)
}

/// RFC 1624 eqn. 3 for all the changes in `delta` at once: `HC' = ~(~HC + delta)`.
#[inline(always)]
fn apply(check: u16, delta: u64) -> u16 {
    !ip::fold(u64::from(!check) + delta)
}

/// Rewrite only the IPv4 addresses of the header `ip` from `old` to `new`, with the
/// header checksum; returns the change to the sum of the addresses (for a transport
/// checksum's pseudo-header).
fn set_addresses<T: AsRef<[u8]> + AsMut<[u8]>>(
    ip: &mut Ipv4Packet<T>,
    old: &Tuple,
    new: &Tuple,
) -> u64 {
    let mut delta = 0;
    if old.src != new.src {
        ip.set_src_addr(new.src);
        delta += delta32(old.src, new.src);
    }
    if old.dst != new.dst {
        ip.set_dst_addr(new.dst);
        delta += delta32(old.dst, new.dst);
    }
    if delta != 0 {
        let c = ip.checksum();
        ip.set_checksum(apply(c, delta));
    }
    delta
}

/// Rewrite the IPv4 packet at `l3` (header `ihl` bytes, data up to `end`; it may be a
/// quote cut short) from tuple `old` to `new`: addresses, ports or the ICMP echo
/// identifier, and every checksum incrementally (RFC 1624): the IPv4 header's, TCP's and
/// UDP's (their pseudo-header holds the addresses; a UDP checksum of 0 means none and stays
/// 0, and a computed 0 is sent as 0xffff), ICMP's. A transport checksum that is not within
/// `end` (a quote) is left alone, and so is a packet whose header does not fit.
///
/// With `begun`, the TCP or UDP checksum is one the sender's kernel only began (its field
/// holds the pseudo-header's sum, uncomplemented, and the receiver sums the rest: see
/// `nfv_dataplane::offload`): only the addresses' change goes into it, added, as Linux's
/// `inet_proto_csum_replace4` does for such a packet.
#[allow(clippy::too_many_arguments)]
pub fn translate(
    d: &mut [u8],
    l3: usize,
    ihl: usize,
    end: usize,
    old: &Tuple,
    new: &Tuple,
    echo: bool,
    begun: bool,
) {
    let Some((header, l4)) = d
        .get_mut(l3..end)
        .filter(|p| p.len() >= ihl)
        .map(|p| p.split_at_mut(ihl))
    else {
        return;
    };
    let Ok(mut ip) = Ipv4Packet::new_quoted(header) else {
        return;
    };
    let addresses = set_addresses(&mut ip, old, new);
    match old.proto {
        PROTO_TCP | PROTO_UDP => {
            let mut delta = addresses;
            if let Ok(mut p) = Ports::new_checked(&mut *l4) {
                if old.sport != new.sport {
                    p.set_src_port(new.sport);
                    delta += delta16(old.sport, new.sport);
                }
                if old.dport != new.dport {
                    p.set_dst_port(new.dport);
                    delta += delta16(old.dport, new.dport);
                }
            }
            if begun {
                let at = if old.proto == PROTO_TCP { 16 } else { 6 };
                if addresses != 0 {
                    if let Some(f) = l4.get_mut(at..at + 2) {
                        let seed = u16::from_be_bytes([f[0], f[1]]);
                        let c = ip::fold(u64::from(seed) + addresses);
                        f.copy_from_slice(&c.to_be_bytes());
                    }
                }
                return;
            }
            if delta == 0 {
                return;
            }
            if old.proto == PROTO_TCP {
                if let Ok(mut t) = TcpPacket::new_checked(l4) {
                    t.set_checksum(apply(t.checksum(), delta));
                }
            } else if let Ok(mut u) = UdpPacket::new_checked(l4) {
                if u.checksum() != 0 {
                    let c = apply(u.checksum(), delta);
                    u.set_checksum(if c == 0 { 0xffff } else { c });
                }
            }
        }
        PROTO_ICMP => {
            let Ok(mut m) = Icmpv4Packet::new_checked(l4) else {
                return;
            };
            if !echo {
                return;
            }
            // A request carries its identifier as the source port, a reply as the
            // destination port.
            let (o, n) = if m.msg_type() == 8 {
                (old.sport, new.sport)
            } else {
                (old.dport, new.dport)
            };
            if o != n {
                m.set_echo_ident(n);
                m.set_checksum(apply(m.checksum(), delta16(o, n)));
            }
        }
        _ => {}
    }
}

impl Nat {
    /// A later fragment from `input`: its first fragment's rewrite, or held until that
    /// comes.
    fn later(&mut self, mut pkt: Packet, input: Gate, now: Timestamp, ctx: &mut Ctx<'_>) {
        let zone = if input == INSIDE { 0 } else { 1 };
        match fragments::later_of(&mut pkt, zone) {
            Err(r) => ctx.drop(pkt, r),
            Ok(key) => match self.frags.decision(&key, now) {
                Some(d) => {
                    let r = self.follow(&mut pkt, d);
                    deliver(pkt, r, ctx);
                }
                None => {
                    if let Err(pkt) = self.frags.hold(key, pkt, now) {
                        ctx.drop(pkt, DropReason::FragmentsFull);
                    }
                }
            },
        }
    }

    /// Give a later fragment its first fragment's rewrite `d`: the same addresses (with
    /// the header checksum), the same way out.
    fn follow(&self, pkt: &mut Packet, d: FragRewrite) -> Result<Gate, DropReason> {
        let gate = d.result?;
        let h = wire::classify(pkt);
        let l3 = h.l3_off;
        let d2 = pkt.data_mut();
        let Ok(mut ip) = Ipv4Packet::new_checked(&mut d2[l3..]) else {
            return Err(DropReason::BadHeader);
        };
        let old = Tuple {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            ..Tuple::default()
        };
        let new = Tuple {
            src: d.to.0,
            dst: d.to.1,
            ..old
        };
        if set_addresses(&mut ip, &old, &new) != 0 {
            self.stats.translated.add(1);
        }
        if d.hairpin {
            swap_macs(d2);
        }
        Ok(gate)
    }

    /// What the later fragments of the first fragment `pkt` from `input` follow, after it
    /// was handled with `result`.
    fn frag_rewrite(
        pkt: &mut Packet,
        input: Gate,
        result: Result<Gate, DropReason>,
    ) -> FragRewrite {
        let h = wire::classify(pkt);
        let to = h
            .ipv4(pkt.data())
            .map_or((0, 0), |ip| (ip.src_addr(), ip.dst_addr()));
        FragRewrite {
            result,
            to,
            hairpin: result == Ok(input),
        }
    }
}

/// Send `pkt` out of the gate `r` names, or drop it for its reason.
#[inline(always)]
fn deliver(pkt: Packet, r: Result<Gate, DropReason>, ctx: &mut Ctx<'_>) {
    match r {
        Ok(g) => ctx.emit(g, pkt),
        Err(r) => ctx.drop(pkt, r),
    }
}

impl Node for Nat {
    fn kind(&self) -> &'static str {
        "nat"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let zone = if input == INSIDE { 0 } else { 1 };
        let now = ctx.now;
        self.pre.fill(batch, zone, &self.ct);
        let pre = self.pre.take();
        for (i, mut pkt) in batch.drain().enumerate() {
            let parsed = pre.get(i).0;
            if let Err(FlowError::Fragment) = parsed {
                self.later(pkt, input, now, ctx);
                continue;
            }
            let first = fragments::first_of(&mut pkt, parsed, zone);
            let mut r = self.handle(&mut pkt, zone, now, pre.get(i));
            let Some(key) = first else {
                deliver(pkt, r, ctx);
                continue;
            };
            // A first fragment: its later fragments follow it, those held right after it.
            let d = Self::frag_rewrite(&mut pkt, input, r);
            let released = &mut self.released;
            if !self.frags.record(key, d, now, |p| released.push(p)) && r.is_ok() {
                r = Err(DropReason::FragmentsFull);
            }
            deliver(pkt, r, ctx);
            let mut released = std::mem::take(&mut self.released);
            for mut p in released.drain(..) {
                let r = self.follow(&mut p, d);
                deliver(p, r, ctx);
            }
            self.released = released;
        }
        self.pre.restore(pre);
        self.stats.sessions.set(self.ct.len() as u64);
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.frags
            .expire(ctx.now, |p| ctx.drop(p, DropReason::FragmentTimeout));
        let (pool, stats) = (&mut self.pool, &self.stats);
        let mut release = |e: &Entry<Binding>| release(pool, stats, e);
        self.ct.sweep(ctx.now, &mut release);
        self.stats.sessions.set(self.ct.len() as u64);
    }

    fn show(&self, table: &str, now: Timestamp) -> Option<Table> {
        match table {
            "nat" => Some(self.nat_table(now)),
            "conntrack" => Some(self.ct.table(now)),
            _ => None,
        }
    }
}

impl Nat {
    /// The `nat` table: port forwards, then sessions (see [`Nat`]).
    fn nat_table(&self, now: Timestamp) -> Table {
        let mut t = Table::new(&[
            "proto",
            "kind",
            "inside",
            "outside",
            "remote",
            "state",
            "expires_s",
        ]);
        for f in &self.forwards {
            t.push(vec![
                show::proto(f.proto),
                "dnat".into(),
                show::endpoint(f.proto, u32::from(f.to), f.to_port, true),
                show::endpoint(f.proto, self.addresses[0], f.port, true),
                Cell::None,
                "forward".into(),
                Cell::None,
            ]);
        }
        let mut live: Vec<&Entry<Binding>> = self.ct.iter().filter(|e| e.expires >= now).collect();
        live.sort_unstable_by_key(|e| {
            let o = e.tuple[0];
            (o.proto, o.src, o.sport, o.dst, o.dport, o.zone)
        });
        for e in live {
            let [o, r] = e.tuple;
            let p = o.proto;
            let ep = |a: u32, port: u16, id: bool| show::endpoint(p, a, port, id);
            let (kind, inside, outside, remote) = match e.data.kind {
                NatKind::Snat | NatKind::Hairpin => (
                    if e.data.kind == NatKind::Snat {
                        "snat"
                    } else {
                        "hairpin"
                    },
                    ep(o.src, o.sport, true),
                    ep(r.dst, r.dport, true),
                    ep(o.dst, o.dport, false),
                ),
                NatKind::Dnat => (
                    "dnat",
                    ep(r.src, r.sport, false),
                    ep(o.dst, o.dport, false),
                    ep(o.src, o.sport, true),
                ),
                NatKind::Pass => (
                    "pass",
                    ep(o.dst, o.dport, false),
                    ep(o.dst, o.dport, false),
                    ep(o.src, o.sport, true),
                ),
            };
            t.push(vec![
                show::proto(p),
                kind.into(),
                inside,
                outside,
                remote,
                e.state_name().into(),
                show::expires_s(now, e.expires),
            ]);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::tcp_flags::{ACK, FIN, RST, SYN};
    use crate::testframes::*;
    use nfv_dataplane::testing::Harness;
    use nfv_dataplane::Cell;
    use std::net::Ipv4Addr;

    pub(super) const P: &str = "203.0.113.2";
    pub(super) const H: &str = "192.168.1.10";
    const H2: &str = "192.168.1.11";
    pub(super) const S: &str = "198.51.100.7";

    pub(super) fn t(ms: u64) -> Timestamp {
        Timestamp((ms + 1000) * 1_000_000)
    }

    fn a(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    pub(super) fn config() -> NatConfig {
        NatConfig {
            addresses: vec![a(P)],
            ports: DEFAULT_PORTS,
            forwards: vec![PortForward {
                proto: PROTO_TCP,
                port: 8080,
                to: a(H),
                to_port: 80,
            }],
            max_sessions: 64,
            timeouts: Timeouts::default(),
        }
    }

    pub(super) fn harness(cfg: NatConfig) -> (Harness, Arc<NatStats>) {
        let n = Nat::new(cfg).expect("nat");
        let s = n.stats();
        (Harness::new(Box::new(n), 2, 64), s)
    }

    /// Send `f` into `gate` and return the one frame that came out of `out`, checked.
    fn pass(h: &mut Harness, gate: usize, f: &[u8], out: usize, now: Timestamp) -> Vec<u8> {
        h.send(gate, f, now);
        let mut got = h.recv_each();
        assert_eq!(
            got.iter().map(Vec::len).sum::<usize>(),
            1,
            "one frame out: {got:?}"
        );
        assert_eq!(got[out].len(), 1, "out of gate {out}");
        let f = got[out].remove(0);
        check(&f);
        f
    }

    fn tup(f: &[u8]) -> (String, u16, String, u16) {
        let (s, sp, d, dp) = tuple(f);
        (s.to_string(), sp, d.to_string(), dp)
    }

    fn s(x: &str, p: u16, y: &str, q: u16) -> (String, u16, String, u16) {
        (x.to_string(), p, y.to_string(), q)
    }

    fn no_leak(h: &Harness) {
        assert_eq!(h.pool().available(), h.pool().size(), "buffers leaked");
    }

    use crate::testframes::Rng;

    #[test]
    fn incremental_checksums_match_a_full_recomputation() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        for i in 0..20_000 {
            let payload: Vec<u8> = (0..(r.next() % 40) as usize)
                .map(|_| r.next() as u8)
                .collect();
            let (sp, dp) = (r.next() as u16, r.next() as u16);
            let src = Ipv4Addr::from(r.next() as u32).to_string();
            let dst = Ipv4Addr::from(r.next() as u32).to_string();
            let mut f = match i % 4 {
                0 => tcp(&src, sp, &dst, dp, ACK, &payload),
                1 => udp(&src, sp, &dst, dp, &payload, true),
                2 => udp(&src, sp, &dst, dp, &payload, false),
                _ => echo(&src, &dst, 8, sp),
            };
            let fl = conntrack::parse(&f, 0).expect("parse");
            let mut new = fl.tuple;
            if r.next().is_multiple_of(2) {
                new.src = r.next() as u32;
            }
            if r.next().is_multiple_of(2) {
                new.dst = r.next() as u32;
            }
            if r.next().is_multiple_of(2) {
                new.sport = r.next() as u16;
            }
            if r.next().is_multiple_of(2) && fl.icmp != IcmpKind::Echo {
                new.dport = r.next() as u16;
            }
            let end = f.len();
            translate(
                &mut f,
                14,
                20,
                end,
                &fl.tuple,
                &new,
                fl.icmp == IcmpKind::Echo,
                false,
            );
            check(&f);
            let after = conntrack::parse(&f, 0).expect("parse again").tuple;
            assert_eq!(
                (after.src, after.dst, after.sport, after.dport),
                (new.src, new.dst, new.sport, new.dport)
            );
            if i % 4 == 2 {
                assert_eq!(&f[14 + 26..14 + 28], &[0, 0], "UDP checksum 0 stays 0");
            }
        }
    }

    /// A checksum the sender's kernel only began (a veth host's with offloads) comes out of
    /// a translation still begun, and right once the receiver finishes it.
    #[test]
    fn a_begun_checksum_is_translated_as_begun() {
        use nfv_dataplane::offload;
        use nfv_dataplane::packet::{Gso, Offload};
        for (proto, at) in [(PROTO_TCP, 16usize), (PROTO_UDP, 6)] {
            let mut f = if proto == PROTO_TCP {
                tcp("192.168.1.10", 40000, S, 443, 0x18, &[7; 333])
            } else {
                udp("192.168.1.10", 40000, S, 53, &[7; 333], true)
            };
            let l4len = f.len() - 34;
            // Begin it as Linux does: the pseudo-header's sum, uncomplemented.
            let pseudo = offload::sum(&f[26..34]) + l4len as u64 + u64::from(proto);
            let seed = offload::fold(pseudo).to_be_bytes();
            f[34 + at..34 + at + 2].copy_from_slice(&seed);
            let fl = conntrack::parse(&f, 0).expect("parse");
            let new = Tuple {
                src: 0xc633_6401,
                sport: 61000,
                ..fl.tuple
            };
            let end = f.len();
            translate(&mut f, 14, 20, end, &fl.tuple, &new, false, true);
            let o = Offload {
                needs_csum: true,
                gso: Gso::None,
                csum_start: 34,
                csum_offset: at as u16,
                gso_size: 0,
            };
            assert!(offload::finish_checksum(&mut f, &o));
            check(&f);
            let after = conntrack::parse(&f, 0).expect("parse again").tuple;
            assert_eq!((after.src, after.sport), (new.src, new.sport));
        }
    }

    #[test]
    fn a_udp_checksum_that_computes_to_zero_is_sent_as_ffff() {
        // Search a translation whose result sums to zero.
        let f0 = udp("10.0.0.1", 1000, S, 53, b"x", true);
        let fl = conntrack::parse(&f0, 0).expect("parse");
        let mut found = false;
        for port in 0..=u16::MAX {
            let mut f = f0.clone();
            let new = Tuple {
                sport: port,
                ..fl.tuple
            };
            let end = f.len();
            translate(&mut f, 14, 20, end, &fl.tuple, &new, false, false);
            if ip::read_u16(&f, 14 + 26) == 0xffff {
                check(&f);
                found = true;
                break;
            }
            assert_ne!(ip::read_u16(&f, 14 + 26), 0);
        }
        assert!(found);
    }

    #[test]
    fn shows_forwards_and_sessions_with_their_translated_addresses() {
        let n = Shared::new(Nat::new(config()).expect("nat"));
        let mut h = Harness::new(Box::new(n.clone()), 2, 64);
        pass(&mut h, 0, &udp(H, 5000, S, 53, b"q", true), 1, t(0));
        let out = pass(&mut h, 0, &udp(H2, 5000, S, 53, b"q", true), 1, t(0));
        let p2 = tup(&out).1;
        pass(&mut h, 1, &udp(S, 53, P, p2, b"a", true), 0, t(1));
        pass(&mut h, 0, &echo(H, S, 8, 4242), 1, t(2));
        pass(&mut h, 1, &tcp(S, 40000, P, 8080, SYN, b""), 0, t(3));
        let now = Timestamp::from_secs(11);
        let tbl = n.show("nat", now).expect("nat");
        assert_eq!(
            tbl.columns,
            [
                "proto",
                "kind",
                "inside",
                "outside",
                "remote",
                "state",
                "expires_s"
            ]
        );
        let row = |p: &str, k: &str, i: &str, o: &str, r: &str, st: &str, x: u64| {
            vec![
                text(p),
                text(k),
                text(i),
                text(o),
                text(r),
                text(st),
                Cell::Int(x),
            ]
        };
        let forward = vec![
            text("tcp"),
            text("dnat"),
            text("192.168.1.10:80"),
            text("203.0.113.2:8080"),
            Cell::None,
            text("forward"),
            Cell::None,
        ];
        let p2_out = format!("203.0.113.2:{p2}");
        assert_eq!(
            tbl.rows,
            vec![
                forward,
                row(
                    "icmp",
                    "snat",
                    "192.168.1.10 id 4242",
                    "203.0.113.2 id 4242",
                    "198.51.100.7",
                    "NEW",
                    20
                ),
                row(
                    "tcp",
                    "dnat",
                    "192.168.1.10:80",
                    "203.0.113.2:8080",
                    "198.51.100.7:40000",
                    "SYN_SENT",
                    110
                ),
                row(
                    "udp",
                    "snat",
                    "192.168.1.10:5000",
                    "203.0.113.2:5000",
                    "198.51.100.7:53",
                    "NEW",
                    20
                ),
                row(
                    "udp",
                    "snat",
                    "192.168.1.11:5000",
                    &p2_out,
                    "198.51.100.7:53",
                    "ESTABLISHED",
                    110
                ),
            ]
        );
        let ct = n.show("conntrack", now).expect("conntrack");
        assert_eq!(ct.rows.len(), 4);
        assert_eq!(ct.rows[1][1], text("198.51.100.7:40000"), "untranslated");
        assert_eq!(n.show("leases", now), None);
    }

    #[test]
    fn masquerade_keeps_the_port_when_free_and_translates_replies_back() {
        let (mut h, st) = harness(config());
        let out = pass(&mut h, 0, &udp(H, 5000, S, 53, b"q", true), 1, t(0));
        assert_eq!(tup(&out), s(P, 5000, S, 53));
        let back = pass(&mut h, 1, &udp(S, 53, P, 5000, b"a", true), 0, t(1));
        assert_eq!(tup(&back), s(S, 53, H, 5000));
        // A second host wanting the same port gets another one.
        let out2 = pass(&mut h, 0, &udp(H2, 5000, S, 53, b"q", true), 1, t(2));
        let (_, p2, _, _) = tup(&out2);
        assert_ne!(p2, 5000);
        assert!(p2 >= 1024);
        let back2 = pass(&mut h, 1, &udp(S, 53, P, p2, b"a", true), 0, t(3));
        assert_eq!(tup(&back2), s(S, 53, H2, 5000));
        // The forwarded port is never handed out.
        let out3 = pass(&mut h, 0, &tcp(H2, 8080, S, 80, SYN, b""), 1, t(4));
        assert_ne!(tup(&out3).1, 8080);
        // ICMP echo: the identifier is the port.
        let e = pass(&mut h, 0, &echo(H, S, 8, 4242), 1, t(5));
        assert_eq!(tup(&e), s(P, 4242, S, 4242));
        let r = pass(&mut h, 1, &echo(S, P, 0, 4242), 0, t(6));
        assert_eq!(tup(&r), s(S, 4242, H, 4242));
        assert_eq!(st.sessions.get(), 4);
        assert_eq!(st.translated.get(), 7);
        no_leak(&h);
    }

    /// RFC 4787 REQ-1 (and RFC 5382 REQ-1 for TCP): one inside endpoint talking to several
    /// remotes leaves from one outside endpoint, even with its own port taken by another
    /// host; replies from each remote come back to it; the port goes back only when the
    /// last of its sessions ends.
    #[test]
    fn an_inside_endpoint_keeps_one_outside_endpoint_for_every_remote() {
        let cfg = NatConfig {
            ports: PortRange { lo: 6000, hi: 6001 },
            ..config()
        };
        let (mut h, st) = harness(cfg);
        let s2 = "203.0.113.77";
        // H2 holds 6000 first, so H's mapping is another port: the same for both remotes.
        pass(&mut h, 0, &udp(H2, 6000, S, 53, b"q", true), 1, t(0));
        let o1 = tup(&pass(&mut h, 0, &udp(H, 6000, S, 53, b"q", true), 1, t(1)));
        let o2 = tup(&pass(
            &mut h,
            0,
            &udp(H, 6000, s2, 123, b"q", true),
            1,
            t(2),
        ));
        assert_eq!((o1.0.as_str(), o1.1), (P, 6001));
        assert_eq!(
            (o2.0.as_str(), o2.1),
            (P, 6001),
            "the same outside endpoint"
        );
        let b1 = pass(&mut h, 1, &udp(S, 53, P, 6001, b"a", true), 0, t(3));
        let b2 = pass(&mut h, 1, &udp(s2, 123, P, 6001, b"a", true), 0, t(3));
        assert_eq!(tup(&b1), s(S, 53, H, 6000));
        assert_eq!(tup(&b2), s(s2, 123, H, 6000));
        // TCP too, in its own port space.
        let c1 = tup(&pass(&mut h, 0, &tcp(H, 7000, S, 80, SYN, b""), 1, t(4)));
        let c2 = tup(&pass(&mut h, 0, &tcp(H, 7000, s2, 443, SYN, b""), 1, t(4)));
        assert_eq!(c1.1, c2.1);
        assert_eq!(st.sessions.get(), 5);
        // The pool is spent: a third host gets nothing...
        h.send(0, &udp("192.168.1.99", 1, S, 53, b"q", true), t(5));
        assert_eq!(h.node_drops(DropReason::NatNoPorts), 1);
        // ...until the UDP sessions expire: H's mapping frees its port with the last one.
        for k in 0..4 {
            h.tick(t(31_000 + k));
        }
        let o3 = tup(&pass(
            &mut h,
            0,
            &udp("192.168.1.99", 1, S, 53, b"q", true),
            1,
            t(31_010),
        ));
        assert!((6000..=6001).contains(&o3.1));
        no_leak(&h);
    }

    #[test]
    fn ports_run_out_under_pressure_and_come_back_when_sessions_expire() {
        let cfg = NatConfig {
            ports: PortRange { lo: 6000, hi: 6003 },
            ..config()
        };
        let (mut h, st) = harness(cfg);
        let mut used = Vec::new();
        for i in 0..4 {
            let src = format!("192.168.1.{}", 20 + i);
            let out = pass(&mut h, 0, &udp(&src, 7000, S, 53, b"q", true), 1, t(0));
            used.push(tup(&out).1);
        }
        used.sort_unstable();
        assert_eq!(used, vec![6000, 6001, 6002, 6003], "every port once");
        h.send(0, &udp("192.168.1.99", 7000, S, 53, b"q", true), t(1));
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::NatNoPorts), 1);
        assert_eq!(st.no_ports.get(), 1);
        // An existing flow keeps working.
        pass(
            &mut h,
            0,
            &udp("192.168.1.20", 7000, S, 53, b"q", true),
            1,
            t(2),
        );
        // After the UDP timeout (30 s) the sweep frees them.
        for k in 0..4 {
            h.tick(t(31_000 + k));
        }
        assert_eq!(st.sessions.get(), 0);
        let out = pass(
            &mut h,
            0,
            &udp("192.168.1.99", 7000, S, 53, b"q", true),
            1,
            t(31_010),
        );
        assert!((6000..=6003).contains(&tup(&out).1));
        no_leak(&h);
    }

    #[test]
    fn several_addresses_hold_more_flows_and_keep_a_host_on_one_address() {
        let cfg = NatConfig {
            addresses: vec![a("198.51.100.1"), a("198.51.100.2")],
            ports: PortRange { lo: 2000, hi: 2000 },
            forwards: Vec::new(),
            ..config()
        };
        let (mut h, _) = harness(cfg);
        let o1 = pass(&mut h, 0, &udp(H, 9, S, 53, b"q", true), 1, t(0));
        let o2 = pass(&mut h, 0, &udp(H2, 9, S, 53, b"q", true), 1, t(0));
        let mut addrs = vec![tup(&o1).0, tup(&o2).0];
        addrs.sort();
        assert_eq!(addrs, vec!["198.51.100.1", "198.51.100.2"]);
        h.send(0, &udp("192.168.1.50", 9, S, 53, b"q", true), t(0));
        assert_eq!(h.node_drops(DropReason::NatNoPorts), 1);
    }

    #[test]
    fn port_forwards_reach_the_inside_server_and_its_replies_go_out() {
        let (mut h, _) = harness(config());
        let c = "198.51.100.9";
        let i = pass(&mut h, 1, &tcp(c, 40000, P, 8080, SYN, b""), 0, t(0));
        assert_eq!(tup(&i), s(c, 40000, H, 80));
        let o = pass(&mut h, 0, &tcp(H, 80, c, 40000, SYN | ACK, b""), 1, t(1));
        assert_eq!(tup(&o), s(P, 8080, c, 40000));
        let i2 = pass(&mut h, 1, &tcp(c, 40000, P, 8080, ACK, b"GET /"), 0, t(2));
        assert_eq!(tup(&i2), s(c, 40000, H, 80));
        // An unforwarded port is passed (to the router that owns the address).
        let x = pass(&mut h, 1, &tcp(c, 40001, P, 22, SYN, b""), 0, t(3));
        assert_eq!(tup(&x), s(c, 40001, P, 22));
        no_leak(&h);
    }

    #[test]
    fn hairpin_sends_an_inside_client_back_inside_to_the_forwarded_server() {
        let (mut h, st) = harness(config());
        let syn = tcp(H2, 33000, P, 8080, SYN, b"");
        let i = pass(&mut h, 0, &syn, 0, t(0));
        let (src, x, dst, dp) = tup(&i);
        assert_eq!((src.as_str(), dst.as_str(), dp), (P, H, 80));
        assert_eq!(&i[0..6], &syn[6..12], "back to the router's MAC");
        let r = pass(&mut h, 0, &tcp(H, 80, P, x, SYN | ACK, b""), 0, t(1));
        assert_eq!(tup(&r), s(P, 8080, H2, 33000));
        // Nothing forwarded there: dropped, never sent out.
        h.send(0, &tcp(H2, 33001, P, 9999, SYN, b""), t(2));
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::NatNoSession), 1);
        assert!(st.sessions.get() >= 1);
        no_leak(&h);
    }

    #[test]
    fn icmp_errors_are_translated_with_their_quoted_header() {
        let (mut h, st) = harness(config());
        // traceroute-like UDP probe and a time exceeded from a hop outside.
        let probe = udp(H, 40000, S, 33434, b"probe", true);
        let out = pass(&mut h, 0, &probe, 1, t(0));
        let hop = "203.0.113.1";
        let err = icmp_error(hop, P, 11, 0, 0, &out, 28 + 5);
        let back = pass(&mut h, 1, &err, 0, t(1));
        assert_eq!(tup(&back).0, hop, "the hop's address stays");
        assert_eq!(tup(&back).2, H);
        let inner = &back[14 + 20 + 8..];
        assert_eq!(&inner[12..16], &a(H).octets(), "quoted source");
        assert_eq!(ip::read_u16(inner, 20), 40000, "quoted port");
        // Fragmentation needed about a TCP segment (a 28-byte quote), MTU kept.
        let syn = pass(&mut h, 0, &tcp(H, 41000, S, 443, SYN, b""), 1, t(2));
        let ptb = icmp_error(hop, P, 3, 4, 1400, &syn, 28);
        let back = pass(&mut h, 1, &ptb, 0, t(3));
        assert_eq!(ip::read_u32(&back, 14 + 20 + 4), 1400);
        assert_eq!(ip::read_u16(&back, 14 + 28 + 20), 41000);
        // Port unreachable from the inside server about a forwarded flow: from P.
        let c = "198.51.100.9";
        let i = pass(&mut h, 1, &udp(c, 5353, P, 8080, b"x", true), 0, t(4));
        assert_eq!(tup(&i).2, P, "UDP 8080 is not forwarded: passed");
        let fwd = pass(&mut h, 1, &tcp(c, 5353, P, 8080, SYN, b""), 0, t(5));
        let unreach = icmp_error(H, c, 3, 3, 0, &fwd, 28);
        let out = pass(&mut h, 0, &unreach, 1, t(6));
        assert_eq!(tup(&out).0, P, "the inside address does not leak");
        assert_eq!(&out[14 + 28 + 16..14 + 28 + 20], &a(P).octets());
        assert_eq!(st.icmp_errors.get(), 3);
        // An inside error about nothing tracked is dropped.
        let stray = icmp_error(H, c, 3, 3, 0, &udp(c, 1, H, 2, b"", true), 28);
        h.send(0, &stray, t(7));
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::NatNoSession), 1);
        no_leak(&h);
    }

    #[test]
    fn tcp_sessions_follow_their_state_and_unknown_inside_segments_are_dropped() {
        let (mut h, st) = harness(config());
        h.send(0, &tcp(H, 1, S, 80, ACK, b"late"), t(0));
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::NatNoSession), 1);
        pass(&mut h, 0, &tcp(H, 40002, S, 80, SYN, b""), 1, t(0));
        pass(&mut h, 1, &tcp(S, 80, P, 40002, SYN | ACK, b""), 0, t(1));
        pass(&mut h, 0, &tcp(H, 40002, S, 80, ACK, b""), 1, t(2));
        pass(&mut h, 1, &tcp(S, 80, P, 40002, RST, b""), 0, t(3));
        assert_eq!(st.sessions.get(), 1);
        // Closed: expires after tcp_close (10 s).
        for k in 0..3 {
            h.tick(t(11_000 + k));
        }
        assert_eq!(st.sessions.get(), 0);
        let _ = FIN;
    }

    #[test]
    fn non_ipv4_and_the_routers_own_traffic_pass_untouched() {
        let (mut h, st) = harness(config());
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&IN_MAC);
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        h.send(0, &arp, t(0));
        assert_eq!(h.recv(1), vec![arp.clone()]);
        let own = echo(P, S, 0, 5);
        assert_eq!(pass(&mut h, 0, &own, 1, t(0)), own);
        assert_eq!(st.passed.get(), 2);
        assert_eq!(st.sessions.get(), 0);
    }

    /// This NAT translates IPv4 only: IPv6 crosses it untouched both ways (well formed,
    /// with extension headers, an ICMPv6 error, or malformed), untracked, each counted as
    /// passed.
    #[test]
    fn ipv6_passes_untouched_both_ways() {
        let (mut h, st) = harness(config());
        let (inside, outside) = ("2001:db8:1::10", "2001:db8:2::7");
        let mut chain = ext6(44, 0);
        chain.extend_from_slice(&frag6(17, 0, true, 1));
        chain.extend_from_slice(&udp6_datagram(inside, 1, outside, 2, b"x"));
        let syn = tcp6(inside, 40000, outside, 80, SYN, b"");
        let frames = [
            (0, syn.clone()),
            (1, tcp6(outside, 80, inside, 40000, SYN | ACK, b"")),
            (0, udp6(inside, 5353, outside, 53, b"q")),
            (0, echo6(inside, outside, 128, 7)),
            (0, ipv6(inside, outside, 60, 64, &chain)),
            (
                1,
                icmp6_error("2001:db8:ffff::1", inside, 2, 0, 1280, &syn, 1232),
            ),
            (1, tcp6(outside, 1, "2001:db8:1::99", 22, SYN, b"")),
            (1, syn[..40].to_vec()),
            (0, syn[..syn.len() - 1].to_vec()),
        ];
        for (gate, f) in &frames {
            h.send(*gate, f, t(0));
            let got = h.recv_each();
            assert_eq!(got[1 - gate], vec![f.clone()], "untouched through");
            assert!(got[*gate].is_empty());
        }
        assert_eq!(st.passed.get(), frames.len() as u64);
        assert_eq!(st.sessions.get(), 0);
        assert_eq!(st.translated.get(), 0);
        no_leak(&h);
    }

    #[test]
    fn a_full_session_table_refuses_new_flows() {
        let (mut h, st) = harness(NatConfig {
            max_sessions: 2,
            ..config()
        });
        for i in 0..2u16 {
            pass(&mut h, 0, &udp(H, 10100 + i, S, 53, b"", true), 1, t(0));
            pass(&mut h, 1, &udp(S, 53, P, 10100 + i, b"", true), 0, t(0));
        }
        h.send(0, &udp(H, 10200, S, 53, b"", true), t(1));
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::ConntrackFull), 1);
        assert_eq!(st.table_full.get(), 1);
        // Its port went back: the next flow after expiry gets port 10200.
        for k in 0..3 {
            h.tick(t(200_000 + k));
        }
        let o = pass(&mut h, 0, &udp(H, 10200, S, 53, b"", true), 1, t(200_010));
        assert_eq!(tup(&o).1, 10200);
        no_leak(&h);
    }

    #[test]
    fn malformed_frames_are_dropped_with_a_reason() {
        let (mut h, _) = harness(config());
        let mut bad = udp(H, 1, S, 2, b"", true);
        bad[14 + 10] ^= 0xff;
        h.send(0, &bad, t(0));
        assert_eq!(h.node_drops(DropReason::BadChecksum), 1);
        let f = tcp(H, 1, S, 2, SYN, b"");
        let mut short = f[..14 + 20 + 8].to_vec();
        short[14 + 2..14 + 4].copy_from_slice(&28u16.to_be_bytes());
        ip::set_header_checksum(&mut short[14..34]);
        h.send(0, &short, t(0));
        assert_eq!(h.node_drops(DropReason::Runt), 1);
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert!(Nat::new(NatConfig {
            addresses: vec![],
            ..config()
        })
        .is_err());
        no_leak(&h);
    }
}
