//! The router's IPv6 half: forwarding, Neighbor Discovery, router advertisements and
//! ICMPv6 (see the module documentation of [`super`]).
//!
//! Each interface has its link-local address (from its MAC) and the IPv6 addresses the
//! topology gives it. The table ([`Lpm6`]) holds each address's prefix as connected, each
//! address as local, and the static routes. The router listens to the all-nodes and
//! all-routers groups and to the solicited-node group of each of its addresses; any other
//! multicast is not for it (nfv does not route multicast).

use std::time::Duration;

use nfv_dataplane::{Cell, Ctx, DropReason, Gate, Packet, Table, Timestamp, XorShift};

use super::icmp6::{self, Advert};
use super::nd::{Learned, NdCache, NdState};
use super::neighbors::{Enqueued, NeighborConfig};
use super::{Router, RouterError, RouterInterface};
use crate::ip::{PROTO_TCP, PROTO_UDP};
use crate::lpm6::{Lpm6, Lpm6Builder};
use crate::show;
use crate::wire::{ipv6, Headers, MacAddr, ETH_HEADER_LEN};

/// What an IPv6 route leads to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum NextHop6 {
    /// One of the router's own addresses.
    Local,
    /// A connected prefix on this gate.
    Connected(u16),
    /// A gateway on this gate.
    Via(u16, u128),
}

/// Router advertisement state of one interface.
struct RaState {
    advert: Advert,
    interval: Duration,
    /// When the next unsolicited (or solicited) advertisement is due.
    next: Timestamp,
    /// Unsolicited advertisements sent so far (the first three come fast).
    sent: u32,
    /// When the last multicast advertisement went.
    last: Timestamp,
}

/// The first advertisements come this far apart at most (RFC 4861 §6.2.4).
const MAX_INITIAL_INTERVAL: Duration = Duration::from_secs(16);
/// How many of them.
const MAX_INITIAL_ADVERTS: u32 = 3;
/// Multicast advertisements are at least this far apart (§10 MIN_DELAY_BETWEEN_RAS).
const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// Valid and preferred lifetimes of advertised prefixes (radvd's defaults: 1 day, 4 h).
const PREFIX_LIFETIMES: (u32, u32) = (86_400, 14_400);

/// One interface's IPv6 side.
pub(super) struct Iface6 {
    /// Its link-local address.
    pub ll: u128,
    /// Its other addresses and their prefix lengths.
    pub addrs: Vec<(u128, u8)>,
    ra: Option<RaState>,
    /// IPv6 is on: the interface has an IPv6 address or advertises (else IPv6 packets
    /// are not for it, as on an IPv4-only router).
    enabled: bool,
}

impl Iface6 {
    fn owns(&self, a: u128) -> bool {
        a == self.ll || self.addrs.iter().any(|&(x, _)| x == a)
    }

    /// The address to answer `peer` from: one in the peer's prefix, else the first
    /// global one (the link-local one when the peer is link-local or there is none).
    fn source_for(&self, peer: u128) -> u128 {
        if icmp6::is_link_local(peer) {
            return self.ll;
        }
        self.addrs
            .iter()
            .find(|&&(a, l)| same_prefix(a, peer, l))
            .or(self.addrs.first())
            .map_or(self.ll, |&(a, _)| a)
    }

    /// True for a multicast group the interface listens to.
    fn listens(&self, group: u128) -> bool {
        group == icmp6::ALL_NODES
            || group == icmp6::ALL_ROUTERS
            || group == icmp6::solicited_node(self.ll)
            || self
                .addrs
                .iter()
                .any(|&(a, _)| group == icmp6::solicited_node(a))
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

fn same_prefix(a: u128, b: u128, len: u8) -> bool {
    (a ^ b) & mask6(len) == 0
}

/// The IPv6 state of a router.
pub(super) struct V6 {
    pub ifaces: Vec<Iface6>,
    pub lpm: Lpm6,
    pub nexthops: Vec<NextHop6>,
    nh_cache: Vec<(u64, MacAddr)>,
    pub nd: NdCache,
    rng: XorShift,
}

impl V6 {
    /// The IPv6 state for `interfaces`, `routes` and static `neighbors`.
    pub fn new(
        interfaces: &[RouterInterface],
        routes: &[super::Route6],
        neighbors: &[(std::net::Ipv6Addr, MacAddr)],
        nd: NeighborConfig,
    ) -> Result<V6, RouterError> {
        let mut nexthops: Vec<NextHop6> = Vec::new();
        let mut index = |nh: NextHop6| -> u32 {
            match nexthops.iter().position(|&n| n == nh) {
                Some(i) => i as u32,
                None => {
                    nexthops.push(nh);
                    (nexthops.len() - 1) as u32
                }
            }
        };
        let prefixes: Vec<(u16, u128, u8)> = interfaces
            .iter()
            .enumerate()
            .flat_map(|(g, i)| {
                i.addresses6
                    .iter()
                    .map(move |&(a, l)| (g as u16, u128::from(a), l))
            })
            .collect();
        let gate_of = |a: std::net::Ipv6Addr| -> Result<u16, RouterError> {
            let x = u128::from(a);
            prefixes
                .iter()
                .filter(|&&(_, p, l)| same_prefix(p, x, l))
                .max_by_key(|&&(_, _, l)| l)
                .map(|&(g, _, _)| g)
                .ok_or(RouterError::NotConnected6(a))
        };
        let mut b = Lpm6Builder::new();
        let mut insert = |net: u128, len: u8, nh: u32| {
            let ip = std::net::Ipv6Addr::from(net);
            b.insert(ip, len, nh)
                .map(|_| ())
                .map_err(|e| RouterError::Table6(ip, len, e.to_string()))
        };
        for r in routes {
            let g = gate_of(r.via)?;
            let nh = index(NextHop6::Via(g, u128::from(r.via)));
            insert(u128::from(r.prefix) & mask6(r.len), r.len, nh)?;
        }
        for &(g, a, l) in &prefixes {
            let nh = index(NextHop6::Connected(g));
            insert(a & mask6(l), l, nh)?;
        }
        for &(_, a, _) in &prefixes {
            let nh = index(NextHop6::Local);
            insert(a, 128, nh)?;
        }
        let mut cache = NdCache::new(nd);
        for (ip, mac) in neighbors {
            cache.add_static(gate_of(*ip)?, u128::from(*ip), *mac);
        }
        let ifaces = interfaces
            .iter()
            .map(|i| Iface6 {
                enabled: !i.addresses6.is_empty() || i.ra.is_some(),
                ll: icmp6::link_local(i.mac),
                addrs: i
                    .addresses6
                    .iter()
                    .map(|&(a, l)| (u128::from(a), l))
                    .collect(),
                ra: i.ra.as_ref().map(|ra| RaState {
                    advert: Advert {
                        lifetime: ra.lifetime.as_secs().min(9000) as u16,
                        mtu: ra.mtu.then_some(u32::from(i.mtu)),
                        prefixes: i
                            .addresses6
                            .iter()
                            .filter(|&&(_, l)| l == 64)
                            .map(|&(a, l)| (u128::from(a) & mask6(l), l))
                            .collect(),
                        prefix_lifetimes: PREFIX_LIFETIMES,
                        rdnss: ra.rdnss.iter().map(|&a| u128::from(a)).collect(),
                        rdnss_lifetime: (3 * ra.interval.as_secs()).min(u64::from(u32::MAX)) as u32,
                    },
                    interval: ra.interval,
                    next: Timestamp::ZERO,
                    sent: 0,
                    last: Timestamp::ZERO,
                }),
            })
            .collect();
        let seed = interfaces.iter().fold(0x9e37_79b9_7f4a_7c15u64, |s, i| {
            i.mac
                .0
                .iter()
                .fold(s, |s, &b| (s ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
        }) | 1;
        Ok(V6 {
            ifaces,
            lpm: b.build(),
            nh_cache: vec![(0, MacAddr([0; 6])); nexthops.len()],
            nexthops,
            nd: cache,
            rng: XorShift(seed),
        })
    }

    /// A number from 0 to `n - 1` (for the advertisement timers' jitter).
    fn random(&mut self, n: u64) -> u64 {
        self.rng.next() % n.max(1)
    }
}

/// The address at `at` in `d` (16 bytes there, checked by the caller's view).
#[inline(always)]
fn addr(d: &[u8], at: usize) -> u128 {
    icmp6::addr_at(d, at).unwrap_or(0)
}

impl Router {
    /// An IPv6 packet that came in on `gate` (the module documentation says what happens).
    /// Never inlined into the router's dispatch: inlined, it cost the IPv4 path 28%
    /// (37.64 -> 26.78 Mpps in `compare.sh router`, same session; 37.05 out of line).
    #[inline(never)]
    pub(super) fn ipv6(&mut self, gate: u16, pkt: Packet, h: &Headers, ctx: &mut Ctx<'_>) {
        let g = gate as usize;
        let d = pkt.data();
        let group_mac = d[0] & 1 == 1;
        if !self.v6.ifaces[g].enabled || (!group_mac && d[0..6] != self.ifaces[g].mac.0) {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        if let Some(reason) = h.l3.error() {
            return ctx.drop(pkt, reason);
        }
        let l3 = h.l3_off;
        let Some(fixed) = d.get(l3..l3 + ipv6::HEADER_LEN) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        let (src, dst, hops) = (addr(fixed, 8), addr(fixed, 24), fixed[7]);
        let total = ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
        // Never from a group or the loopback address, and from the unspecified address
        // only to a group (duplicate address detection, router solicitation): such a
        // packet is never forwarded (RFC 4291 2.5.2, 2.5.3).
        if icmp6::is_multicast(src) || src == 1 || (src == 0 && !icmp6::is_multicast(dst)) {
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        // Nor to the loopback or unspecified address: dropped, not answered.
        if dst <= 1 {
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        if group_mac || icmp6::is_multicast(dst) {
            if icmp6::is_multicast(dst) && self.v6.ifaces[g].listens(dst) {
                return self.local6(gate, pkt, l3, ctx);
            }
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        if icmp6::is_link_local(dst) {
            if dst == self.v6.ifaces[g].ll {
                return self.local6(gate, pkt, l3, ctx);
            }
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        let Some(v) = self.v6.lpm.lookup(dst) else {
            let e = (icmp6::DEST_UNREACHABLE, icmp6::CODE_NO_ROUTE, 0);
            return self.icmp6_error(gate, pkt, e, DropReason::NoRoute, ctx);
        };
        let (out, next) = match self.v6.nexthops.get(v as usize) {
            Some(&NextHop6::Connected(o)) => (o, dst),
            Some(&NextHop6::Via(o, ip)) => (o, ip),
            Some(NextHop6::Local) => return self.local6(gate, pkt, l3, ctx),
            None => return ctx.drop(pkt, DropReason::NotForUs),
        };
        if hops <= 1 {
            let e = (icmp6::TIME_EXCEEDED, 0, 0);
            return self.icmp6_error(gate, pkt, e, DropReason::TtlExceeded, ctx);
        }
        if icmp6::is_link_local(src) {
            let e = (icmp6::DEST_UNREACHABLE, icmp6::CODE_BEYOND_SCOPE, 0);
            return self.icmp6_error(gate, pkt, e, DropReason::NoRoute, ctx);
        }
        let mtu = self.ifaces[out as usize].mtu;
        let on_wire = if pkt.meta.offloaded {
            pkt.wire_len().saturating_sub(l3)
        } else {
            total
        };
        if on_wire > mtu {
            // IPv6 routers never fragment: the source learns the path's MTU.
            let e = (icmp6::PACKET_TOO_BIG, 0, mtu.min(u32::MAX as usize) as u32);
            return self.icmp6_error(gate, pkt, e, DropReason::TooBig, ctx);
        }
        self.send6(gate, (out, next, v), pkt, l3, ctx);
    }

    /// Send `pkt` (its IPv6 header at `l3`) out of `out` to `next`, found through route
    /// `v`: to the neighbour's MAC, or queued while it is resolved.
    #[inline(always)]
    fn send6(
        &mut self,
        gate: u16,
        (out, next, v): (u16, u128, u32),
        pkt: Packet,
        l3: usize,
        ctx: &mut Ctx<'_>,
    ) {
        let v6 = &mut self.v6;
        let generation = v6.nd.generation();
        let cached = match v6.nh_cache.get(v as usize) {
            Some(&(g, mac)) if g == generation => Some(mac),
            _ => None,
        };
        let found = cached.or_else(|| {
            let mac = v6.nd.lookup(out, next, ctx.now)?;
            if let (Some(NextHop6::Via(..)), Some(c)) =
                (v6.nexthops.get(v as usize), v6.nh_cache.get_mut(v as usize))
            {
                // A stale entry just turned to delay, which keeps the generation.
                *c = (v6.nd.generation(), mac);
            }
            Some(mac)
        });
        match found {
            Some(mac) => {
                let pkt = rewrite6(pkt, l3, &self.ifaces[out as usize].mac, &mac);
                self.stats.forwarded.add(1);
                ctx.emit(Gate(out), pkt);
            }
            None => match v6.nd.enqueue(out, next, gate, pkt, ctx.now) {
                Enqueued::Waiting { request: true } => {
                    if self.arp_rate.allow(ctx.now) {
                        self.send_solicitation(out, next, None, ctx);
                    } else {
                        self.stats.nd_rate_limited.add(1);
                    }
                }
                Enqueued::Waiting { request: false } => {}
                Enqueued::QueueFull(p) | Enqueued::TableFull(p) => {
                    ctx.drop(p, DropReason::ArpQueueFull)
                }
            },
        }
    }

    /// A packet for the router itself (or a group it listens to): ICMPv6 echo and ND are
    /// answered, UDP gets port unreachable, the rest is not for it.
    fn local6(&mut self, gate: u16, pkt: Packet, l3: usize, ctx: &mut Ctx<'_>) {
        let d = pkt.data();
        let end = l3 + ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]));
        let (src, dst, hops) = (addr(d, l3 + 8), addr(d, l3 + 24), d[l3 + 7]);
        // The upper layer, past the extension headers (a bad chain is refused; a later
        // fragment has none: not for the router, which reassembles nothing).
        let up = match ipv6::Ipv6Packet::new_checked(&d[l3..]).and_then(|p| p.upper_layer()) {
            Ok(up) if !up.is_later_fragment() && up.fragment.is_none() => up,
            Ok(_) => return ctx.drop(pkt, DropReason::NotForUs),
            Err(_) => return ctx.drop(pkt, DropReason::BadHeader),
        };
        let (next, off) = (up.proto, l3 + up.offset);
        match next {
            icmp6::PROTO_ICMPV6 => {}
            PROTO_UDP if !icmp6::is_multicast(dst) => {
                let e = (icmp6::DEST_UNREACHABLE, icmp6::CODE_PORT_UNREACHABLE, 0);
                return self.icmp6_error(gate, pkt, e, DropReason::NotForUs, ctx);
            }
            PROTO_TCP | PROTO_UDP => return ctx.drop(pkt, DropReason::NotForUs),
            _ => return ctx.drop(pkt, DropReason::NotForUs),
        }
        let Some(m) = d.get(off..end).filter(|m| m.len() >= 4) else {
            return ctx.drop(pkt, DropReason::Runt);
        };
        if !icmp6::checksum_ok(src, dst, m) {
            return ctx.drop(pkt, DropReason::BadChecksum);
        }
        let ty = m[0];
        let nd = matches!(
            ty,
            icmp6::ROUTER_SOLICIT
                | icmp6::ROUTER_ADVERT
                | icmp6::NEIGHBOR_SOLICIT
                | icmp6::NEIGHBOR_ADVERT
                | icmp6::REDIRECT
        );
        if nd && (hops != icmp6::ND_HOP_LIMIT || m[1] != 0) {
            // RFC 4861 §6.1, §7.1: not from this link, or malformed.
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        match ty {
            icmp6::ECHO_REQUEST => {
                if src == 0 || off != l3 + ipv6::HEADER_LEN || l3 != ETH_HEADER_LEN {
                    return ctx.drop(pkt, DropReason::NotForUs);
                }
                let from = if icmp6::is_multicast(dst) {
                    self.v6.ifaces[gate as usize].source_for(src)
                } else {
                    dst
                };
                let (mac, len) = (self.ifaces[gate as usize].mac, end - off);
                let mut pkt = pkt;
                if icmp6::make_echo_reply(&mut pkt, len, from, mac) {
                    self.stats.echo_replies.add(1);
                    ctx.emit(Gate(gate), pkt);
                } else {
                    ctx.drop(pkt, DropReason::BadHeader);
                }
            }
            icmp6::NEIGHBOR_SOLICIT => {
                let eth_src = MacAddr(d[6..12].try_into().unwrap_or([0; 6]));
                let ok = self.solicited(gate, src, dst, m, eth_src, ctx);
                if ok {
                    ctx.consume(pkt);
                } else {
                    ctx.drop(pkt, DropReason::BadHeader);
                }
            }
            icmp6::NEIGHBOR_ADVERT => {
                if self.advertised(gate, dst, m, ctx) {
                    ctx.consume(pkt);
                } else {
                    ctx.drop(pkt, DropReason::BadHeader);
                }
            }
            icmp6::ROUTER_SOLICIT => {
                let Some(opts) = m.get(8..).and_then(icmp6::options) else {
                    return ctx.drop(pkt, DropReason::BadHeader);
                };
                if src != 0 {
                    if let Some(mac) = opts.sll {
                        self.learn6(gate, src, Learned::Sender(mac), ctx);
                    }
                }
                let now = ctx.now;
                if let Some(ra) = self.v6.ifaces[gate as usize].ra.as_mut() {
                    // Answered to all nodes, at most one multicast advertisement per
                    // MIN_DELAY_BETWEEN_RAS.
                    let soonest = if ra.sent == 0 {
                        now
                    } else {
                        now.max(ra.last.plus(MIN_DELAY_BETWEEN_RAS))
                    };
                    ra.next = ra.next.min(soonest);
                }
                ctx.consume(pkt);
            }
            icmp6::ROUTER_ADVERT | icmp6::REDIRECT => ctx.consume(pkt),
            _ => ctx.drop(pkt, DropReason::NotForUs),
        }
    }

    /// A neighbor solicitation `m` from `src` to `dst` on `gate`: learn the sender, and
    /// answer if the target is ours. False if the message is invalid.
    fn solicited(
        &mut self,
        gate: u16,
        src: u128,
        dst: u128,
        m: &[u8],
        eth_src: MacAddr,
        ctx: &mut Ctx<'_>,
    ) -> bool {
        let Some(target) = icmp6::addr_at(m, 8) else {
            return false;
        };
        let Some(opts) = m.get(24..).and_then(icmp6::options) else {
            return false;
        };
        if icmp6::is_multicast(target) {
            return false;
        }
        let dad = src == 0;
        if dad && (dst != icmp6::solicited_node(target) || opts.sll.is_some()) {
            return false;
        }
        if !dad {
            if let Some(mac) = opts.sll {
                self.learn6(gate, src, Learned::Sender(mac), ctx);
            }
        }
        let iface = &self.v6.ifaces[gate as usize];
        if !iface.owns(target) {
            return true;
        }
        let mac = self.ifaces[gate as usize].mac;
        let (to, to_mac, flags) = if dad {
            // Defend the address (RFC 4862 §5.4.3): to all nodes, not solicited.
            (
                icmp6::ALL_NODES,
                icmp6::multicast_mac(icmp6::ALL_NODES),
                icmp6::NA_ROUTER | icmp6::NA_OVERRIDE,
            )
        } else {
            (
                src,
                opts.sll.unwrap_or(eth_src),
                icmp6::NA_ROUTER | icmp6::NA_SOLICITED | icmp6::NA_OVERRIDE,
            )
        };
        let mut f = [0u8; 128];
        let n = icmp6::advertisement(&mut f, mac, target, (to, to_mac), target, flags);
        if self.emit_frame(gate, &f[..n], ctx) {
            self.stats.nd_adverts.add(1);
        }
        true
    }

    /// A neighbor advertisement `m` to `dst` on `gate`. False if invalid.
    fn advertised(&mut self, gate: u16, dst: u128, m: &[u8], ctx: &mut Ctx<'_>) -> bool {
        let (Some(target), Some(&flags)) = (icmp6::addr_at(m, 8), m.get(4)) else {
            return false;
        };
        let Some(opts) = m.get(24..).and_then(icmp6::options) else {
            return false;
        };
        let solicited = flags & icmp6::NA_SOLICITED != 0;
        if icmp6::is_multicast(target) || (icmp6::is_multicast(dst) && solicited) {
            return false;
        }
        let what = Learned::Advert {
            mac: opts.tll,
            solicited,
            override_: flags & icmp6::NA_OVERRIDE != 0,
        };
        self.learn6(gate, target, what, ctx);
        true
    }

    /// Tell the cache `what` about `ip` on `gate`; packets that waited for it leave.
    fn learn6(&mut self, gate: u16, ip: u128, what: Learned, ctx: &mut Ctx<'_>) {
        let our_mac = self.ifaces[gate as usize].mac;
        let stats = &self.stats;
        self.v6.nd.learn(gate, ip, what, ctx.now, |_, p, mac| {
            let l3 = ETH_HEADER_LEN;
            let p = rewrite6(p, l3, &our_mac, &mac);
            stats.forwarded.add(1);
            ctx.emit(Gate(gate), p);
        });
    }

    /// Send a neighbor solicitation for `target` out of `gate`: to its solicited-node group,
    /// or to `to` (a probe).
    fn send_solicitation(
        &mut self,
        gate: u16,
        target: u128,
        to: Option<MacAddr>,
        ctx: &mut Ctx<'_>,
    ) {
        let iface = &self.v6.ifaces[gate as usize];
        let src = iface.source_for(target);
        let (dst, dst_mac) = match to {
            Some(mac) => (target, mac),
            None => {
                let g = icmp6::solicited_node(target);
                (g, icmp6::multicast_mac(g))
            }
        };
        let mut f = [0u8; 128];
        let n = icmp6::solicitation(
            &mut f,
            self.ifaces[gate as usize].mac,
            src,
            (dst, dst_mac),
            target,
        );
        if self.emit_frame(gate, &f[..n], ctx) {
            self.stats.nd_solicits.add(1);
        }
    }

    /// Count `reason` for `pkt` and, if allowed and within the rate limit (shared with
    /// ICMP), answer with the ICMPv6 error `(type, code, rest)` made from its buffer.
    pub(super) fn icmp6_error(
        &mut self,
        gate: u16,
        mut pkt: Packet,
        (ty, code, rest): (u8, u8, u32),
        reason: DropReason,
        ctx: &mut Ctx<'_>,
    ) {
        let l3 = crate::wire::classify(&mut pkt).l3_off;
        let allowed = l3 == ETH_HEADER_LEN
            && pkt
                .data()
                .get(l3..)
                .is_some_and(|ip| icmp6::error_allowed(ip, ty == icmp6::PACKET_TOO_BIG));
        if !allowed {
            return ctx.drop(pkt, reason);
        }
        if !self.icmp.allow(ctx.now) {
            self.stats.icmp_rate_limited.add(1);
            return ctx.drop(pkt, reason);
        }
        let peer = addr(pkt.data(), l3 + 8);
        let from = self.v6.ifaces[gate as usize].source_for(peer);
        let mac = self.ifaces[gate as usize].mac;
        if icmp6::make_error(&mut pkt, (ty, code, rest), from, mac) {
            ctx.drop_reused(&pkt, reason);
            self.stats.icmp_errors.add(1);
            ctx.emit(Gate(gate), pkt);
        } else {
            ctx.drop(pkt, reason);
        }
    }

    /// IPv6 timers: unsolicited advertisements of our addresses once at start, router
    /// advertisements when due, and the neighbour cache's timers (when `expire`).
    pub(super) fn tick6(&mut self, first: bool, expire: bool, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if first {
            for g in 0..self.v6.ifaces.len() as u16 {
                if !ctx.is_wired(Gate(g)) {
                    continue;
                }
                let iface = &self.v6.ifaces[g as usize];
                if !iface.enabled {
                    continue;
                }
                let own: Vec<u128> = std::iter::once(iface.ll)
                    .chain(iface.addrs.iter().map(|&(a, _)| a))
                    .collect();
                let mac = self.ifaces[g as usize].mac;
                for a in own {
                    let mut f = [0u8; 128];
                    let to = (icmp6::ALL_NODES, icmp6::multicast_mac(icmp6::ALL_NODES));
                    let flags = icmp6::NA_ROUTER | icmp6::NA_OVERRIDE;
                    let n = icmp6::advertisement(&mut f, mac, a, to, a, flags);
                    if self.emit_frame(g, &f[..n], ctx) {
                        self.stats.nd_adverts.add(1);
                    }
                }
            }
        }
        for g in 0..self.v6.ifaces.len() {
            let due = self.v6.ifaces[g]
                .ra
                .as_ref()
                .is_some_and(|ra| now >= ra.next);
            if due && ctx.is_wired(Gate(g as u16)) {
                self.send_router_advert(g as u16, ctx);
            }
        }
        if !expire {
            return;
        }
        let mut solicits: [(u16, u128, Option<MacAddr>); 32] = [(0, 0, None); 32];
        let mut n = 0;
        let mut failed: Vec<(u16, Packet)> = Vec::new();
        let (rate, limited) = (&mut self.arp_rate, &self.stats.nd_rate_limited);
        self.v6.nd.expire(
            now,
            |g, ip, to| {
                if n < solicits.len() && rate.allow(now) {
                    solicits[n] = (g, ip, to);
                    n += 1;
                } else {
                    limited.add(1);
                }
            },
            |g, p| failed.push((g, p)),
        );
        for &(g, ip, to) in &solicits[..n] {
            self.send_solicitation(g, ip, to, ctx);
        }
        for (g, pkt) in failed {
            let e = (icmp6::DEST_UNREACHABLE, icmp6::CODE_ADDR_UNREACHABLE, 0);
            self.icmp6_error(g, pkt, e, DropReason::ArpFailed, ctx);
        }
    }

    /// Send gate `g`'s router advertisement to all nodes and plan the next.
    fn send_router_advert(&mut self, g: u16, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        let jitter = self.v6.random(1 << 20);
        let ll = self.v6.ifaces[g as usize].ll;
        let mac = self.ifaces[g as usize].mac;
        let Some(ra) = self.v6.ifaces[g as usize].ra.as_mut() else {
            return;
        };
        let mut f = [0u8; icmp6::MAX_ADVERT];
        let to = (icmp6::ALL_NODES, icmp6::multicast_mac(icmp6::ALL_NODES));
        let n = icmp6::router_advert(&mut f, mac, ll, to, &ra.advert);
        ra.sent += 1;
        ra.last = now;
        // Uniform in [interval / 3, interval] (RFC 4861 §6.2.4), the first few sooner.
        let max = if ra.sent <= MAX_INITIAL_ADVERTS {
            ra.interval.min(MAX_INITIAL_INTERVAL)
        } else {
            ra.interval
        };
        let min = max / 3;
        let wait = min + (max - min).mul_f64(jitter as f64 / f64::from(1u32 << 20));
        ra.next = now.plus(wait.max(MIN_DELAY_BETWEEN_RAS));
        if self.emit_frame(g, &f[..n], ctx) {
            self.stats.router_adverts.add(1);
        }
    }

    /// The IPv6 rows of the `routes` table.
    pub(super) fn routes6_rows(&self, t: &mut Table) {
        for (net, len, v) in self.v6.lpm.iter() {
            let a = u128::from(net);
            let (via, gate, kind) = match self.v6.nexthops.get(v as usize) {
                Some(&NextHop6::Connected(g)) => (Cell::None, Cell::from(g), "connected"),
                Some(&NextHop6::Via(g, ip)) => (show::ip6(ip), Cell::from(g), "static"),
                Some(NextHop6::Local) => (
                    Cell::None,
                    self.v6
                        .ifaces
                        .iter()
                        .position(|i| i.owns(a))
                        .map_or(Cell::None, Cell::from),
                    "local",
                ),
                None => (Cell::None, Cell::None, "unknown"),
            };
            t.push(vec![show::prefix6(a, len), via, gate, kind.into()]);
        }
    }

    /// The IPv6 rows of the `neighbors` table.
    pub(super) fn neighbors6_rows(&self, t: &mut Table, now: Timestamp) {
        let mut entries: Vec<_> = self.v6.nd.entries().collect();
        entries.sort_unstable_by_key(|n| (n.gate, n.ip));
        for n in entries {
            let (mac, age, expires) = match n.state {
                NdState::Incomplete(_) => (Cell::None, Cell::None, Cell::None),
                NdState::Reachable(at) => (
                    show::mac(n.mac),
                    show::age_s(now, at),
                    show::expires_s(now, at.plus(super::nd::REACHABLE_TIME)),
                ),
                NdState::Stale(at) | NdState::Delay(at) => {
                    (show::mac(n.mac), show::age_s(now, at), Cell::None)
                }
                _ => (show::mac(n.mac), Cell::None, Cell::None),
            };
            t.push(vec![
                show::ip6(n.ip),
                mac,
                n.gate.into(),
                n.state.name().into(),
                age,
                expires,
                n.queued.into(),
            ]);
        }
    }

    /// The IPv6 addresses of gate `g` for the `interfaces` table.
    pub(super) fn addresses6(&self, g: usize) -> Vec<String> {
        let Some(i) = self.v6.ifaces.get(g).filter(|i| i.enabled) else {
            return Vec::new();
        };
        std::iter::once((i.ll, 64))
            .chain(i.addrs.iter().copied())
            .map(|(a, l)| format!("{}/{l}", std::net::Ipv6Addr::from(a)))
            .collect()
    }
}

/// Make `p`, whose IPv6 header is at `l3`, ready to leave for `mac` out of an interface
/// with `our_mac`: MAC addresses, and the hop limit down by one (IPv6 has no header
/// checksum).
#[inline(always)]
fn rewrite6(mut p: Packet, l3: usize, our_mac: &MacAddr, mac: &MacAddr) -> Packet {
    let d = p.data_mut();
    if let Some(addresses) = d.get_mut(..12) {
        addresses[..6].copy_from_slice(&mac.0);
        addresses[6..].copy_from_slice(&our_mac.0);
    }
    if let Some(h) = d.get_mut(l3 + 7) {
        *h = h.saturating_sub(1);
    }
    p
}
