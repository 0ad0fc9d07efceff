//! `router`: an IPv4 router with ARP and ICMP.
//!
//! Each interface is a gate (gate `i` is `interfaces[i]`) with a MAC address, one IPv4
//! address and prefix, and an MTU. The routing table is a longest-prefix-match table
//! ([`Lpm`]) whose values index a small table of next hops:
//! - each interface adds its connected subnet (delivered straight to the destination), its
//!   own address as a /32 to the router itself, and its subnet's broadcast address as a /32
//!   that is not forwarded;
//! - static routes add a prefix through a gateway, which must lie in a connected subnet;
//!   `0.0.0.0/0` is the default route. A connected subnet wins over a static route for the
//!   same prefix.
//!
//! For every IPv4 packet addressed to an interface's MAC it checks the header (version,
//! IHL, lengths, checksum: `bad_header`, `bad_checksum`, `runt`), looks up the destination
//! (`no_route`, with ICMP destination unreachable), delivers to itself what is addressed to
//! it (ICMP echo gets a reply, UDP gets ICMP port unreachable so that `traceroute` to the
//! router ends, the rest is `not_for_us`), and forwards the rest: TTL at most 1 is
//! `ttl_exceeded` with ICMP time exceeded; a datagram larger than the outgoing MTU is
//! `too_big` with ICMP fragmentation needed if it has DF set, and without DF it leaves as
//! fragments of the outgoing MTU ([`fragment`], RFC 1812; a TCP super-frame, which leaves
//! as segments, is `too_big` then); otherwise the TTL goes down by one with an incremental checksum update
//! (RFC 1624), the MAC addresses are rewritten for the next hop, and it goes out. A
//! Record Route option with room gets the outgoing interface's address (RFC 1812 5.3.13).
//!
//! ARP ([`arp`]): the router answers requests for its interface addresses, learns from
//! requests addressed to it and from replies, resolves next hops with a bounded queue of
//! waiting packets (per address, and [`neighbors::MAX_QUEUED`] across all addresses, so a
//! scan of a connected subnet cannot hold the worker's pool), sends its resolution requests
//! through a token bucket ([`neighbors::REQUEST_RATE`] a second), and sends a gratuitous ARP
//! on each wired interface when it starts. ICMP
//! errors are rate limited by one token bucket per router (`icmp_rate` a second, bursts of
//! the same size); the packet is dropped and counted either way.
//!
//! Tables ([`Node::show`]):
//! - `routes`: every prefix of the routing table, sorted by address and length. Columns:
//!   `prefix` (`a.b.c.d/n`), `via` (the gateway; none unless `kind` is `static`), `gate`
//!   (the interface it leads to, or the interface an own or broadcast address belongs to),
//!   `kind`: `connected` (an interface's subnet), `static` (a configured route), `local`
//!   (an interface's own address: delivered to the router) or `broadcast` (a subnet's
//!   broadcast address: not forwarded).
//! - `arp`: the neighbour table, sorted by interface and address. Columns: `ip`, `mac`
//!   (none while incomplete), `gate`, `state` (`static`, `reachable`, `incomplete`),
//!   `age_s` (seconds since a reachable entry was last confirmed), `expires_s` (seconds
//!   until a reachable entry goes unless confirmed again), both none for the other states,
//!   and `queued` (packets waiting for the address).
//! - `interfaces`: one row per interface: `gate`, `address` (`a.b.c.d/n`), `mac`, `mtu`,
//!   `dhcp_relay` (the servers it relays DHCP to, none if it does not).
//!
//! DHCP relay ([`relay`]): an interface with `dhcp_relay` servers relays its clients' DHCP
//! broadcasts to them by unicast and their replies back (RFC 1542, `ip helper-address`).
//!
//! [`RouterStats`] has two gauges besides its counters, `routes` and `arp_entries`, set when
//! the router is built and on every `tick`.

mod config;
mod config6;
mod fragment;
pub mod icmp;
pub mod icmp6;
mod metrics;
pub mod nd;
pub mod neighbors;
mod relay;
mod v6;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use nfv_dataplane::{Batch, Cell, Counter, Ctx, DropReason, Gate, Node, Packet, Table, Timestamp};

use crate::arp;
use crate::ip::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::lpm::{Lpm, LpmError};
use crate::show;
use crate::wire::{self, EthernetFrame, Headers, Ipv4Packet, MacAddr, L3};
pub use config::{InterfaceSpec, RouterSpec, StaticRoute, StaticRoute6};
pub use config6::RaSpec;
use icmp::RateLimit;
use neighbors::{Enqueued, Neighbors};
pub use neighbors::{Neighbor, NeighborConfig, NeighborState};

use crate::kind::{Kind, Metric, Report, Spec};

/// The `router` kind, for the registry.
pub struct RouterKind;

impl Kind for RouterKind {
    fn name(&self) -> &'static str {
        "router"
    }

    fn about(&self) -> &'static str {
        "an IPv4 router with ARP and ICMP: interfaces, routes, routes_file, neighbors, \
         arp_timeout, arp_queue, icmp_rate"
    }

    fn keys(&self) -> &'static [&'static str] {
        config::KEYS
    }

    fn tables(&self) -> &'static [&'static str] {
        &["routes", "arp", "neighbors", "interfaces"]
    }

    fn metrics(&self) -> &'static [&'static Metric] {
        &metrics::METRICS
    }

    fn load(&self, text: &str, report: &mut dyn Report) -> Option<Box<dyn Spec>> {
        RouterSpec::load(text, report).map(|s| Box::new(s) as Box<dyn Spec>)
    }
}

/// One interface of a router: a gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterInterface {
    /// Its name (`lan` in `gw.lan`).
    pub name: String,
    /// Its MAC address.
    pub mac: MacAddr,
    /// Its IPv4 address and the prefix length of its subnet, if it has one.
    pub address: Option<(Ipv4Addr, u8)>,
    /// Its IPv6 addresses and their prefix lengths (the link-local one is derived).
    pub addresses6: Vec<(Ipv6Addr, u8)>,
    /// Router advertisements it sends, if any.
    pub ra: Option<RaSpec>,
    /// Largest IPv4 datagram it sends.
    pub mtu: u16,
    /// A `nat` on this interface masquerades to its address: TCP and UDP addressed to it
    /// from another interface are sent out of this one, where the NAT claims them (port
    /// forwards reached from the inside: hairpin NAT), instead of being delivered here.
    pub nat_outside: bool,
    /// DHCP servers this interface relays its clients' requests to (none: no relay).
    pub dhcp_relay: Vec<Ipv4Addr>,
}

/// A static route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub prefix: Ipv4Addr,
    /// Its length.
    pub len: u8,
    /// The gateway, in a connected subnet.
    pub via: Ipv4Addr,
}

/// A static IPv6 route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route6 {
    /// Destination prefix.
    pub prefix: Ipv6Addr,
    /// Its length.
    pub len: u8,
    /// The gateway, in a connected prefix.
    pub via: Ipv6Addr,
}

/// A router's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Interfaces; gate `i` is `interfaces[i]`.
    pub interfaces: Vec<RouterInterface>,
    /// Static routes.
    pub routes: Vec<Route>,
    /// Static IPv6 routes.
    pub routes6: Vec<Route6>,
    /// Static neighbours: address and MAC, on the interface whose subnet holds the address.
    pub neighbors: Vec<(Ipv4Addr, MacAddr)>,
    /// Static IPv6 neighbours.
    pub neighbors6: Vec<(Ipv6Addr, MacAddr)>,
    /// ARP cache and queue settings.
    pub arp: NeighborConfig,
    /// ICMP errors a second (and the burst size); 0 sends none.
    pub icmp_rate: u32,
}

/// Why a router could not be built from its configuration (the topology loader checks
/// these first; this is the last line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// A route's gateway or a static neighbour is in no connected subnet.
    #[error("{0} is not in any interface's subnet")]
    NotConnected(Ipv4Addr),
    /// The routing table refused a prefix.
    #[error("route {0}/{1}: {2:?}")]
    Table(Ipv4Addr, u8, LpmError),
    /// An interface's prefix length is above 32.
    #[error("interface {0}: prefix length {1} is above 32")]
    PrefixLength(String, u8),
    /// An IPv6 route's gateway or a static neighbour is in no connected prefix.
    #[error("{0} is not in any interface's IPv6 prefixes")]
    NotConnected6(Ipv6Addr),
    /// The IPv6 table refused a prefix.
    #[error("route {0}/{1}: {2}")]
    Table6(Ipv6Addr, u8, String),
}

/// What a route leads to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum NextHop {
    /// One of the router's own addresses.
    Local,
    /// A connected subnet's broadcast address: not forwarded.
    Broadcast,
    /// A connected subnet on this gate: the destination itself is the next hop.
    Connected(u16),
    /// A gateway on this gate.
    Via(u16, u32),
}

/// What a router counts besides drops, shared with the control plane.
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Packets forwarded.
    pub forwarded: Counter,
    /// Datagrams forwarded as fragments (each fragment counts in `forwarded`).
    pub fragmented: Counter,
    /// ICMP echo replies sent.
    pub echo_replies: Counter,
    /// ICMP errors sent.
    pub icmp_errors: Counter,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_rate_limited: Counter,
    /// ARP requests sent (resolution and gratuitous).
    pub arp_requests: Counter,
    /// ARP requests not sent because of the rate limit (the entry's retry timer asks again).
    pub arp_rate_limited: Counter,
    /// ARP replies sent.
    pub arp_replies: Counter,
    /// Neighbor solicitations sent (resolution and probes).
    pub nd_solicits: Counter,
    /// Neighbor advertisements sent (answers and unsolicited ones at start).
    pub nd_adverts: Counter,
    /// Router advertisements sent.
    pub router_adverts: Counter,
    /// Neighbor solicitations not sent because of the rate limit (shared with ARP).
    pub nd_rate_limited: Counter,
    /// Entries in the IPv6 neighbour cache now (gauge, updated from `tick`).
    pub nd_entries: Counter,
    /// Entries in the neighbour table now, all states (gauge, updated from `tick`).
    pub arp_entries: Counter,
    /// Prefixes in the routing tables of both families: connected, static, own and
    /// broadcast addresses (gauge; the tables are fixed when the router is built).
    pub routes: Counter,
    /// DHCP requests relayed to a server (one per server each is sent to).
    pub dhcp_relayed_to_server: Counter,
    /// DHCP replies relayed from a server to a client.
    pub dhcp_relayed_to_client: Counter,
}

struct Iface {
    mac: MacAddr,
    /// Its IPv4 address (0 without one: `v4` says).
    addr: u32,
    v4: bool,
    prefix_len: u8,
    mtu: usize,
    nat_outside: bool,
}

/// The router node.
pub struct Router {
    ifaces: Vec<Iface>,
    lpm: Lpm,
    nexthops: Vec<NextHop>,
    /// Per next hop (same index): the gateway's MAC and the neighbour-table generation it
    /// was read in, so a forwarded packet through a gateway needs no hash lookup.
    nh_cache: Vec<(u64, MacAddr)>,
    neighbors: Neighbors,
    icmp: RateLimit,
    /// ARP requests for resolution (first ones and retries): [`neighbors::REQUEST_RATE`].
    arp_rate: RateLimit,
    stats: Arc<RouterStats>,
    last_expire: Timestamp,
    announced: bool,
    v6: v6::V6,
    relay: relay::Relay,
}

/// How often neighbour timers run.
const EXPIRE_EVERY: Duration = Duration::from_millis(100);

use crate::ip::prefix_mask as mask;

impl Router {
    /// A router for `cfg`.
    pub fn new(cfg: RouterConfig) -> Result<Router, RouterError> {
        let mut lpm = Lpm::new();
        let mut nexthops: Vec<NextHop> = Vec::new();
        let mut nh_index = |nh: NextHop| -> u32 {
            match nexthops.iter().position(|&n| n == nh) {
                Some(i) => i as u32,
                None => {
                    nexthops.push(nh);
                    (nexthops.len() - 1) as u32
                }
            }
        };
        let subnets: Vec<(u32, u32, bool)> = cfg
            .interfaces
            .iter()
            .map(|i| match i.address {
                Some((a, l)) => (u32::from(a), mask(l.min(32)), true),
                None => (0, 0, false),
            })
            .collect();
        let gate_of = |a: Ipv4Addr| -> Result<u16, RouterError> {
            let a = u32::from(a);
            subnets
                .iter()
                .enumerate()
                .filter(|(_, &(addr, m, v4))| v4 && a & m == addr & m)
                .max_by_key(|(_, &(_, m, _))| m)
                .map(|(g, _)| g as u16)
                .ok_or(RouterError::NotConnected(Ipv4Addr::from(a)))
        };
        let insert = |lpm: &mut Lpm, net: u32, len: u8, nh: u32| {
            lpm.insert(Ipv4Addr::from(net), len, nh)
                .map(|_| ())
                .map_err(|e| RouterError::Table(Ipv4Addr::from(net), len, e))
        };
        for r in &cfg.routes {
            let g = gate_of(r.via)?;
            let nh = nh_index(NextHop::Via(g, u32::from(r.via)));
            insert(&mut lpm, u32::from(r.prefix) & mask(r.len), r.len, nh)?;
        }
        for (g, i) in cfg.interfaces.iter().enumerate() {
            let Some((address, prefix_len)) = i.address else {
                continue;
            };
            if prefix_len > 32 {
                return Err(RouterError::PrefixLength(i.name.clone(), prefix_len));
            }
            let a = u32::from(address);
            let m = mask(prefix_len);
            let nh = nh_index(NextHop::Connected(g as u16));
            insert(&mut lpm, a & m, prefix_len, nh)?;
            if prefix_len < 31 {
                let nh = nh_index(NextHop::Broadcast);
                insert(&mut lpm, a | !m, 32, nh)?;
            }
        }
        // Own addresses last: nothing overrides them.
        for (a, _) in cfg.interfaces.iter().filter_map(|i| i.address) {
            let nh = nh_index(NextHop::Local);
            insert(&mut lpm, u32::from(a), 32, nh)?;
        }
        let v6 = v6::V6::new(
            &cfg.interfaces,
            &cfg.routes6,
            &cfg.neighbors6,
            cfg.arp.clone(),
        )?;
        let mut neighbors = Neighbors::new(cfg.arp.clone());
        for (ip, mac) in &cfg.neighbors {
            neighbors.add_static(gate_of(*ip)?, u32::from(*ip), *mac);
        }
        let stats = RouterStats::default();
        stats.routes.set((lpm.len() + v6.lpm.len()) as u64);
        stats.arp_entries.set(neighbors.len() as u64);
        Ok(Router {
            ifaces: cfg
                .interfaces
                .iter()
                .map(|i| Iface {
                    mac: i.mac,
                    addr: i.address.map_or(0, |(a, _)| u32::from(a)),
                    v4: i.address.is_some(),
                    prefix_len: i.address.map_or(0, |(_, l)| l),
                    mtu: usize::from(i.mtu),
                    nat_outside: i.nat_outside,
                })
                .collect(),
            lpm,
            nh_cache: vec![(0, MacAddr([0; 6])); nexthops.len()],
            nexthops,
            neighbors,
            icmp: RateLimit::new(cfg.icmp_rate, cfg.icmp_rate),
            arp_rate: RateLimit::new(neighbors::REQUEST_RATE, neighbors::REQUEST_RATE),
            stats: Arc::new(stats),
            last_expire: Timestamp::ZERO,
            announced: false,
            v6,
            relay: relay::Relay::new(&cfg.interfaces),
        })
    }

    /// The router's counters.
    pub fn stats(&self) -> Arc<RouterStats> {
        Arc::clone(&self.stats)
    }

    /// The neighbour table's entries.
    pub fn neighbors(&self) -> impl Iterator<Item = Neighbor> + '_ {
        self.neighbors.entries()
    }

    /// Number of prefixes in the routing tables (connected, own and static, both families).
    pub fn routes(&self) -> usize {
        self.lpm.len() + self.v6.lpm.len()
    }

    fn handle(&mut self, gate: u16, mut pkt: Packet, ctx: &mut Ctx<'_>) {
        let h = wire::classify(&mut pkt);
        match h.l3 {
            L3::Short => ctx.drop(pkt, DropReason::Runt),
            _ if h.tagged => ctx.drop(pkt, DropReason::NotForUs),
            L3::Ipv4 | L3::Ipv4Runt | L3::Ipv4Malformed | L3::Ipv4BadChecksum => {
                self.ipv4(gate, pkt, &h, ctx)
            }
            L3::Ipv6 | L3::Ipv6Runt | L3::Ipv6Malformed => self.ipv6(gate, pkt, &h, ctx),
            L3::Arp => self.arp(gate, pkt, ctx),
            _ => ctx.drop(pkt, DropReason::NotForUs),
        }
    }

    #[inline]
    fn ipv4(&mut self, gate: u16, mut pkt: Packet, h: &Headers, ctx: &mut Ctx<'_>) {
        let iface = &self.ifaces[gate as usize];
        let d = pkt.data();
        // An interface without an IPv4 address takes no IPv4 (as it answers no ARP).
        if d[0..6] != iface.mac.0 || !iface.v4 {
            if d[0..6] == MacAddr::BROADCAST.0 && self.relay.on(gate) {
                return self.relay_broadcast(gate, pkt, h, ctx);
            }
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        if let Some(reason) = h.l3.error() {
            return ctx.drop(pkt, reason);
        }
        // The fixed header, which `classify` checked (with its options and lengths): only
        // its fixed fields are read here, each within its 20 bytes.
        let Some(fixed) = d.get(h.l3_off..h.l3_off + wire::ipv4::HEADER_LEN) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        let ip = Ipv4Packet::new_unchecked(fixed);
        let (ihl, total) = (ip.header_len(), usize::from(ip.total_len()));
        let (dst, ttl, df) = (ip.dst_addr(), ip.ttl(), ip.dont_frag());
        let Some(v) = self.lpm.lookup(dst) else {
            return self.icmp_error(
                gate,
                pkt,
                ihl,
                total,
                (icmp::DEST_UNREACHABLE, icmp::CODE_NET_UNREACHABLE, 0),
                DropReason::NoRoute,
                ctx,
            );
        };
        let (out, next) = match self.nexthops.get(v as usize) {
            Some(&NextHop::Connected(g)) => (g, dst),
            Some(&NextHop::Via(g, ip)) => (g, ip),
            Some(NextHop::Local) => return self.local(gate, pkt, ihl, total, ctx),
            Some(NextHop::Broadcast) | None => return ctx.drop(pkt, DropReason::NotForUs),
        };
        if ttl <= 1 {
            return self.icmp_error(
                gate,
                pkt,
                ihl,
                total,
                (icmp::TIME_EXCEEDED, 0, 0),
                DropReason::TtlExceeded,
                ctx,
            );
        }
        if ihl > wire::ipv4::HEADER_LEN {
            // Options: a Record Route one gets the outgoing interface's address.
            let addr = self.ifaces[out as usize].addr;
            let l3 = h.l3_off;
            if let Some(header) = pkt.data_mut().get_mut(l3..l3 + ihl) {
                fragment::record_route(header, addr);
            }
        }
        let mtu = self.ifaces[out as usize].mtu;
        // A super-frame leaves as segments: each must fit (Linux's GSO check).
        let on_wire = if pkt.meta.offloaded {
            pkt.wire_len().saturating_sub(h.l3_off)
        } else {
            total
        };
        if on_wire > mtu {
            if df {
                return self.icmp_error(
                    gate,
                    pkt,
                    ihl,
                    total,
                    (
                        icmp::DEST_UNREACHABLE,
                        icmp::CODE_FRAG_NEEDED,
                        mtu.min(0xffff) as u32,
                    ),
                    DropReason::TooBig,
                    ctx,
                );
            }
            if pkt.meta.offloaded {
                return ctx.drop(pkt, DropReason::TooBig);
            }
            return self.fragment(gate, (out, next, v), pkt, (h.l3_off, ihl, total), mtu, ctx);
        }
        self.send(gate, (out, next, v), pkt, h.l3_off, ctx);
    }

    /// Cut datagram `pkt` (its header at `l3`, `ihl` bytes, `total` long) into fragments
    /// of at most `mtu` bytes and send each toward `next` (see [`fragment`]).
    #[cold]
    fn fragment(
        &mut self,
        gate: u16,
        hop: (u16, u32, u32),
        pkt: Packet,
        (l3, ihl, total): (usize, usize, usize),
        mtu: usize,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(header) = pkt.data().get(l3..l3 + ihl) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        let plan = fragment::Plan::new(header);
        let mut from = 0;
        while ihl + from < total {
            let Some(mut f) = ctx.alloc() else {
                return ctx.drop(pkt, DropReason::NoBuffers);
            };
            let room = f.room_mut().len();
            let len = plan
                .data_len(from == 0, ihl, mtu, l3, room)
                .min(total - ihl - from);
            if len == 0 || !plan.write(&mut f, pkt.data(), (l3, ihl, total), from, len) {
                ctx.consume(f);
                return ctx.drop(pkt, DropReason::TooBig);
            }
            self.send(gate, hop, f, l3, ctx);
            from += len;
        }
        self.stats.fragmented.add(1);
        ctx.consume(pkt);
    }

    /// Send `pkt` (its IPv4 header at `l3`) out of gate `out` to `next`, found through the
    /// route `v`: to the neighbour's MAC, or queued while it is resolved.
    #[inline(always)]
    fn send(
        &mut self,
        gate: u16,
        (out, next, v): (u16, u32, u32),
        pkt: Packet,
        l3: usize,
        ctx: &mut Ctx<'_>,
    ) {
        let generation = self.neighbors.generation();
        let cached = match self.nh_cache.get(v as usize) {
            Some(&(g, mac)) if g == generation => Some(mac),
            _ => None,
        };
        let found = cached.or_else(|| {
            let mac = self.neighbors.lookup(out, next)?;
            if let (Some(NextHop::Via(..)), Some(c)) = (
                self.nexthops.get(v as usize),
                self.nh_cache.get_mut(v as usize),
            ) {
                *c = (generation, mac);
            }
            Some(mac)
        });
        match found {
            Some(mac) => {
                let pkt = rewrite_at(pkt, l3, &self.ifaces[out as usize].mac, &mac);
                self.stats.forwarded.add(1);
                ctx.emit(Gate(out), pkt);
            }
            None => match self.neighbors.enqueue(out, next, gate, pkt, ctx.now) {
                Enqueued::Waiting { request: true } => {
                    // Over the rate the request waits for the entry's retry timer.
                    if self.arp_rate.allow(ctx.now) {
                        self.send_arp_request(out, next, ctx);
                    } else {
                        self.stats.arp_rate_limited.add(1);
                    }
                }
                Enqueued::Waiting { request: false } => {}
                Enqueued::QueueFull(p) | Enqueued::TableFull(p) => {
                    ctx.drop(p, DropReason::ArpQueueFull)
                }
            },
        }
    }

    fn local(&mut self, gate: u16, mut pkt: Packet, ihl: usize, total: usize, ctx: &mut Ctx<'_>) {
        let hdrs = wire::classify(&mut pkt);
        let Some(ip) = hdrs.ipv4(pkt.data()) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        let (proto, frag, dst) = (ip.protocol(), ip.is_fragment(), ip.dst_addr());
        // The first byte after the header, as the frame holds it (an ICMP type).
        let l4_first = pkt.data().get(hdrs.l4_off).copied();
        if proto == PROTO_ICMP && !frag && l4_first == Some(icmp::ECHO_REQUEST) {
            let mac = self.ifaces[gate as usize].mac;
            if icmp::make_echo_reply(&mut pkt, ihl, total, mac) {
                self.stats.echo_replies.add(1);
                return ctx.emit(Gate(gate), pkt);
            }
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        if proto == PROTO_UDP && !frag && self.relay.any() {
            // DHCP to a relay: a server's reply, or a request from a relay further down.
            match self.relay_local(gate, pkt, &hdrs, ctx) {
                Ok(()) => return,
                Err(p) => pkt = p,
            }
        }
        if proto == PROTO_TCP || proto == PROTO_UDP {
            // TCP and UDP to the address a NAT masquerades to belong to the NAT.
            let owner = self
                .ifaces
                .iter()
                .position(|i| i.nat_outside && i.addr == dst);
            if let Some(j) = owner.filter(|&j| j != usize::from(gate)) {
                let mac = self.ifaces[j].mac;
                if let Ok(mut eth) = EthernetFrame::new_checked(pkt.data_mut()) {
                    eth.set_dst(mac);
                    eth.set_src(mac);
                }
                self.stats.forwarded.add(1);
                return ctx.emit(Gate(j as u16), pkt);
            }
        }
        if proto == PROTO_UDP && !frag {
            return self.icmp_error(
                gate,
                pkt,
                ihl,
                total,
                (icmp::DEST_UNREACHABLE, icmp::CODE_PORT_UNREACHABLE, 0),
                DropReason::NotForUs,
                ctx,
            );
        }
        ctx.drop(pkt, DropReason::NotForUs)
    }

    /// Count `reason` for the packet and, if allowed and within the rate limit, send an
    /// ICMP error `(type, code, rest)` about it back where it came from, made from its own
    /// buffer. The drop is counted either way: the error is a new packet.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error(
        &mut self,
        gate: u16,
        mut pkt: Packet,
        ihl: usize,
        total: usize,
        (ty, code, rest): (u8, u8, u32),
        reason: DropReason,
        ctx: &mut Ctx<'_>,
    ) {
        let l3 = wire::classify(&mut pkt).l3_off;
        if !icmp::error_allowed(&pkt.data()[l3..], ihl) {
            return ctx.drop(pkt, reason);
        }
        if !self.icmp.allow(ctx.now) {
            self.stats.icmp_rate_limited.add(1);
            return ctx.drop(pkt, reason);
        }
        let iface = &self.ifaces[gate as usize];
        let (addr, mac) = (iface.addr, iface.mac);
        if icmp::make_error(&mut pkt, total, ty, code, rest, addr, mac) {
            // The packet is dropped and its buffer goes back out as the error.
            ctx.drop_reused(&pkt, reason);
            self.stats.icmp_errors.add(1);
            ctx.emit(Gate(gate), pkt);
        } else {
            ctx.drop(pkt, reason);
        }
    }

    fn arp(&mut self, gate: u16, mut pkt: Packet, ctx: &mut Ctx<'_>) {
        let a = match arp::parse(pkt.data()) {
            Ok(a) => a,
            Err(arp::ArpError::Truncated) => return ctx.drop(pkt, DropReason::Runt),
            Err(arp::ArpError::BadHeader) => return ctx.drop(pkt, DropReason::BadHeader),
        };
        let iface = &self.ifaces[gate as usize];
        if !iface.v4 {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        let (our_mac, our_ip) = (iface.mac, iface.addr);
        let for_us = a.tpa == our_ip;
        if a.spa != 0 && a.spa != our_ip {
            let stats = &self.stats;
            self.neighbors
                .learn(gate, a.spa, a.sha, ctx.now, for_us, |_, p| {
                    let p = pkt_rewrite(p, &our_mac, &a.sha);
                    stats.forwarded.add(1);
                    ctx.emit(Gate(gate), p);
                });
        }
        if !for_us {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        if a.op == arp::REPLY {
            return ctx.consume(pkt);
        }
        arp::reply_in_place(pkt.data_mut(), &a, our_mac);
        self.stats.arp_replies.add(1);
        ctx.emit(Gate(gate), pkt);
    }

    /// Broadcast an ARP request for `target` on `gate` (a gratuitous one when `target` is
    /// the interface's own address).
    fn send_arp_request(&mut self, gate: u16, target: u32, ctx: &mut Ctx<'_>) {
        let iface = &self.ifaces[gate as usize];
        let f = arp::request(iface.mac, iface.addr, target);
        if self.emit_frame(gate, &f, ctx) {
            self.stats.arp_requests.add(1);
        }
    }

    /// Send `frame` out of `gate` in a new buffer (an ARP or ND message the router makes);
    /// false, counted as a drop, if there is no buffer or it does not fit.
    fn emit_frame(&mut self, gate: u16, frame: &[u8], ctx: &mut Ctx<'_>) -> bool {
        let Some(mut p) = ctx.alloc() else {
            ctx.count_drop(DropReason::NoBuffers);
            return false;
        };
        if p.set_frame(frame) {
            ctx.emit(Gate(gate), p);
            true
        } else {
            ctx.drop(p, DropReason::Internal);
            false
        }
    }
}

/// Rewrite a waiting packet for the next hop `mac` out of an interface with `our_mac`.
/// The packet's headers are the ones it carries (it was checked on arrival: TTL above 1).
#[inline]
fn pkt_rewrite(mut p: Packet, our_mac: &MacAddr, mac: &MacAddr) -> Packet {
    let l3 = wire::classify(&mut p).l3_off;
    rewrite_at(p, l3, our_mac, mac)
}

/// Make `p`, whose IPv4 header is at `l3`, ready to leave for the next hop `mac` out of an
/// interface with `our_mac`: MAC addresses, and TTL down by one with its checksum.
#[inline(always)]
fn rewrite_at(mut p: Packet, l3: usize, our_mac: &MacAddr, mac: &MacAddr) -> Packet {
    let d = p.data_mut();
    // Only the fixed fields are written, each range checked to be there: the two MAC
    // addresses, and the TTL and checksum in the first 20 bytes of the IPv4 header (the
    // whole header was checked on arrival; checking it again per packet costs the router a
    // quarter of its rate).
    if let Some(addresses) = d.get_mut(..12) {
        let mut eth = EthernetFrame::new_unchecked(addresses);
        eth.set_dst(*mac);
        eth.set_src(*our_mac);
    }
    if let Some(header) = d.get_mut(l3..l3 + wire::ipv4::HEADER_LEN) {
        Ipv4Packet::new_unchecked(header).decrement_ttl();
    }
    p
}

impl Node for Router {
    fn kind(&self) -> &'static str {
        "router"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let gate = input.0;
        if gate as usize >= self.ifaces.len() {
            for pkt in batch.drain() {
                ctx.drop(pkt, DropReason::Unwired);
            }
            return;
        }
        for pkt in batch.drain() {
            self.handle(gate, pkt, ctx);
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let first = !self.announced;
        let expire = ctx.now.since(self.last_expire) >= EXPIRE_EVERY;
        self.tick6(first, expire, ctx);
        self.stats.nd_entries.set(self.v6.nd.len() as u64);
        if !self.announced {
            self.announced = true;
            for g in 0..self.ifaces.len() as u16 {
                if ctx.is_wired(Gate(g)) && self.ifaces[g as usize].v4 {
                    let own = self.ifaces[g as usize].addr;
                    self.send_arp_request(g, own, ctx);
                }
            }
        }
        self.stats.arp_entries.set(self.neighbors.len() as u64);
        if ctx.now.since(self.last_expire) < EXPIRE_EVERY {
            return;
        }
        self.last_expire = ctx.now;
        let mut requests: [(u16, u32); 32] = [(0, 0); 32];
        let mut n = 0;
        let mut failed: Vec<(u16, Packet)> = Vec::new();
        let (now, arp_rate, limited) = (ctx.now, &mut self.arp_rate, &self.stats.arp_rate_limited);
        self.neighbors.expire(
            ctx.now,
            |g, ip| {
                if n < requests.len() && arp_rate.allow(now) {
                    requests[n] = (g, ip);
                    n += 1;
                } else {
                    limited.add(1);
                }
            },
            |g, p| failed.push((g, p)),
        );
        for &(g, ip) in &requests[..n] {
            self.send_arp_request(g, ip, ctx);
        }
        for (g, mut pkt) in failed {
            let h = wire::classify(&mut pkt);
            // Packets the router made itself (relayed DHCP) get no ICMP error: it would be
            // addressed to the router.
            let Some((ihl, total)) = h
                .ipv4(pkt.data())
                .filter(|ip| !self.is_own(ip.src_addr()))
                .map(|ip| (ip.header_len(), usize::from(ip.total_len())))
            else {
                ctx.drop(pkt, DropReason::ArpFailed);
                continue;
            };
            self.icmp_error(
                g,
                pkt,
                ihl,
                total,
                (icmp::DEST_UNREACHABLE, icmp::CODE_HOST_UNREACHABLE, 0),
                DropReason::ArpFailed,
                ctx,
            );
        }
    }

    fn show(&self, table: &str, now: Timestamp) -> Option<Table> {
        match table {
            "routes" => Some(self.routes_table()),
            "arp" => Some(self.arp_table(now)),
            "neighbors" => {
                let mut t = self.arp_table(now);
                self.neighbors6_rows(&mut t, now);
                Some(t)
            }
            "interfaces" => Some(self.interfaces_table()),
            _ => None,
        }
    }
}

impl Router {
    /// The `routes` table (see the module documentation).
    fn routes_table(&self) -> Table {
        let mut t = Table::new(&["prefix", "via", "gate", "kind"]);
        for (net, len, v) in self.lpm.iter() {
            let net = u32::from(net);
            let owner = |f: &dyn Fn(&Iface) -> bool| -> Cell {
                self.ifaces
                    .iter()
                    .position(f)
                    .map_or(Cell::None, Cell::from)
            };
            let (via, gate, kind) = match self.nexthops.get(v as usize) {
                Some(&NextHop::Connected(g)) => (Cell::None, Cell::from(g), "connected"),
                Some(&NextHop::Via(g, ip)) => (show::ip(ip), Cell::from(g), "static"),
                Some(NextHop::Local) => (Cell::None, owner(&|i| i.addr == net), "local"),
                Some(NextHop::Broadcast) => (
                    Cell::None,
                    owner(&|i| i.prefix_len < 31 && i.addr | !mask(i.prefix_len) == net),
                    "broadcast",
                ),
                None => (Cell::None, Cell::None, "unknown"),
            };
            t.push(vec![show::prefix(net, len), via, gate, kind.into()]);
        }
        self.routes6_rows(&mut t);
        t
    }

    /// The `arp` table (see the module documentation).
    fn arp_table(&self, now: Timestamp) -> Table {
        let mut entries: Vec<Neighbor> = self.neighbors.entries().collect();
        entries.sort_unstable_by_key(|n| (n.gate, n.ip));
        let timeout = self.neighbors.timeout();
        let mut t = Table::new(&["ip", "mac", "gate", "state", "age_s", "expires_s", "queued"]);
        for n in entries {
            let (mac, state, age, expires) = match n.state {
                NeighborState::Static => (show::mac(n.mac), "static", Cell::None, Cell::None),
                NeighborState::Reachable(at) => (
                    show::mac(n.mac),
                    "reachable",
                    show::age_s(now, at),
                    show::expires_s(now, at.plus(timeout)),
                ),
                NeighborState::Incomplete(_) => (Cell::None, "incomplete", Cell::None, Cell::None),
            };
            t.push(vec![
                show::ip(n.ip),
                mac,
                n.gate.into(),
                state.into(),
                age,
                expires,
                n.queued.into(),
            ]);
        }
        t
    }

    /// Whether `ip` is one of the router's IPv4 addresses.
    fn is_own(&self, ip: u32) -> bool {
        self.ifaces.iter().any(|i| i.v4 && i.addr == ip)
    }

    /// The `interfaces` table (see the module documentation).
    fn interfaces_table(&self) -> Table {
        let mut t = Table::new(&["gate", "address", "mac", "mtu", "dhcp_relay"]);
        for (g, i) in self.ifaces.iter().enumerate() {
            let mut addresses: Vec<String> = Vec::new();
            if i.v4 {
                addresses.push(format!("{}/{}", Ipv4Addr::from(i.addr), i.prefix_len));
            }
            addresses.extend(self.addresses6(g));
            t.push(vec![
                g.into(),
                Cell::Text(addresses.join(" ")),
                show::mac(i.mac),
                i.mtu.into(),
                self.relay.servers_cell(g),
            ]);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip;
    use nfv_dataplane::testing::Harness;

    pub(super) const R0: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0];
    pub(super) const R1: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
    pub(super) const H0: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
    pub(super) const H1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x20];
    pub(super) const GW: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];

    fn ipa(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    pub(super) fn config() -> RouterConfig {
        RouterConfig {
            interfaces: vec![
                RouterInterface {
                    name: "lan".into(),
                    mac: MacAddr(R0),
                    address: Some((ipa("10.0.0.1"), 24)),
                    addresses6: vec![],
                    ra: None,
                    mtu: 1500,
                    nat_outside: false,
                    dhcp_relay: vec![],
                },
                RouterInterface {
                    name: "wan".into(),
                    mac: MacAddr(R1),
                    address: Some((ipa("10.0.1.1"), 24)),
                    addresses6: vec![],
                    ra: None,
                    mtu: 1400,
                    nat_outside: false,
                    dhcp_relay: vec![],
                },
            ],
            routes: vec![Route {
                prefix: ipa("192.0.2.0"),
                len: 24,
                via: ipa("10.0.1.254"),
            }],
            neighbors: vec![],
            routes6: vec![],
            neighbors6: vec![],
            arp: NeighborConfig {
                timeout: Duration::from_secs(60),
                queue_len: 2,
                max_entries: 64,
            },
            icmp_rate: 100,
        }
    }

    pub(super) fn harness(cfg: RouterConfig) -> Harness {
        let n = cfg.interfaces.len();
        let r = Router::new(cfg).expect("router");
        Harness::new(Box::new(r), n, 64)
    }

    pub(super) fn t(ms: u64) -> Timestamp {
        Timestamp((ms + 1000) * 1_000_000)
    }

    /// Ethernet + IPv4 (+ `payload`), checksum set.
    pub(super) fn ip_frame(
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        src: &str,
        dst: &str,
        ttl: u8,
        proto: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = 20 + payload.len();
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[6] = 0x40; // DF
        h[8] = ttl;
        h[9] = proto;
        h[12..16].copy_from_slice(&ipa(src).octets());
        h[16..20].copy_from_slice(&ipa(dst).octets());
        ip::set_header_checksum(&mut h);
        f.extend_from_slice(&h);
        f.extend_from_slice(payload);
        f
    }

    fn echo_request(id: u16) -> Vec<u8> {
        let mut m = vec![8, 0, 0, 0, 0, 0, 0, 1];
        m[4..6].copy_from_slice(&id.to_be_bytes());
        m.extend_from_slice(b"abcdefgh");
        let c = ip::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    fn arp_frame(
        op: u16,
        dst_mac: [u8; 6],
        sha: [u8; 6],
        spa: &str,
        tha: [u8; 6],
        tpa: &str,
    ) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&sha);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sha);
        f.extend_from_slice(&ipa(spa).octets());
        f.extend_from_slice(&tha);
        f.extend_from_slice(&ipa(tpa).octets());
        f
    }

    /// Teach the router that `ip` is at `mac` on `gate` with an ARP request to it.
    pub(super) fn teach(h: &mut Harness, gate: usize, mac: [u8; 6], ip: &str, now: Timestamp) {
        let our = if gate == 0 { "10.0.0.1" } else { "10.0.1.1" };
        h.send(gate, &arp_frame(1, [0xff; 6], mac, ip, [0; 6], our), now);
        let replies = h.recv(gate);
        assert_eq!(replies.len(), 1, "an ARP reply");
    }

    pub(super) fn ip_of(f: &[u8]) -> &[u8] {
        &f[14..]
    }

    #[test]
    fn answers_arp_for_its_address_only() {
        let mut h = harness(config());
        h.send(
            0,
            &arp_frame(1, [0xff; 6], H0, "10.0.0.5", [0; 6], "10.0.0.1"),
            t(0),
        );
        let out = h.recv(0);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(&r[0..6], &H0);
        assert_eq!(&r[6..12], &R0);
        assert_eq!(&r[20..22], &[0, 2], "a reply");
        assert_eq!(&r[22..28], &R0);
        assert_eq!(&r[28..32], &[10, 0, 0, 1]);
        assert_eq!(&r[32..38], &H0);
        assert_eq!(&r[38..42], &[10, 0, 0, 5]);
        // For someone else: not answered, counted.
        h.send(
            0,
            &arp_frame(1, [0xff; 6], H0, "10.0.0.5", [0; 6], "10.0.0.9"),
            t(1),
        );
        assert!(h.recv(0).is_empty());
        assert_eq!(h.node_drops(DropReason::NotForUs), 1);
        // Not IPv4-over-Ethernet ARP, and a truncated one.
        let mut bad = arp_frame(1, [0xff; 6], H0, "10.0.0.5", [0; 6], "10.0.0.1");
        bad[16] = 0x86;
        h.send(0, &bad, t(2));
        h.send(0, &bad[..30], t(2));
        assert_eq!(h.node_drops(DropReason::BadHeader), 1);
        assert_eq!(h.node_drops(DropReason::Runt), 1);
    }

    #[test]
    fn forwards_with_ttl_decrement_and_new_macs() {
        let mut h = harness(config());
        teach(&mut h, 1, H1, "10.0.1.7", t(0));
        let f = ip_frame(
            R0,
            H0,
            "10.0.0.5",
            "10.0.1.7",
            64,
            17,
            &[1, 2, 3, 4, 5, 6, 7, 8],
        );
        h.send(0, &f, t(1));
        let out = h.recv(1);
        assert_eq!(out.len(), 1);
        let o = &out[0];
        assert_eq!(&o[0..6], &H1);
        assert_eq!(&o[6..12], &R1);
        assert_eq!(ip_of(o)[8], 63);
        assert!(ip::header_checksum_ok(&ip_of(o)[..20]));
        assert_eq!(&o[34..], &f[34..], "payload untouched");
        assert!(h.recv(0).is_empty());
    }

    #[test]
    fn tcp_and_udp_to_a_nat_owned_address_go_out_to_the_nat() {
        let mut cfg = config();
        cfg.interfaces[1].nat_outside = true;
        let mut h = harness(cfg);
        // From the lan, TCP to the wan address: out on wan, to the NAT, not consumed.
        let f = ip_frame(R0, H0, "10.0.0.5", "10.0.1.1", 64, PROTO_TCP, &[0; 20]);
        h.send(0, &f, t(0));
        let out = h.recv(1);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][0..6], &R1);
        assert_eq!(&out[0][14..], &f[14..], "the datagram is untouched");
        // Arriving on wan itself (the NAT passed it: no session), it is the router's.
        let g = ip_frame(R1, GW, "10.0.1.9", "10.0.1.1", 64, PROTO_TCP, &[0; 20]);
        h.send(1, &g, t(1));
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::NotForUs), 1);
        // ICMP echo is still answered by the router.
        h.send(
            0,
            &ip_frame(R0, H0, "10.0.0.5", "10.0.1.1", 64, 1, &echo_request(7)),
            t(2),
        );
        assert_eq!(h.recv(0).len(), 1);
    }

    #[test]
    fn resolves_next_hop_queues_then_flushes() {
        let mut h = harness(config());
        // 192.0.2.0/24 via 10.0.1.254, not yet known: an ARP request goes out on wan.
        let f = ip_frame(R0, H0, "10.0.0.5", "192.0.2.9", 64, 17, &[0; 8]);
        h.send(0, &f, t(0));
        let req = h.recv(1);
        assert_eq!(req.len(), 1);
        assert_eq!(&req[0][0..6], &[0xff; 6]);
        assert_eq!(&req[0][20..22], &[0, 1]);
        assert_eq!(&req[0][38..42], &[10, 0, 1, 254]);
        // Two more: one waits (queue of 2), one is refused.
        h.send(0, &f, t(1));
        h.send(0, &f, t(2));
        assert!(h.recv(1).is_empty(), "no second request while one is out");
        assert_eq!(h.node_drops(DropReason::ArpQueueFull), 1);
        // The gateway answers: both waiting packets go, rewritten.
        h.send(1, &arp_frame(2, R1, GW, "10.0.1.254", R1, "10.0.1.1"), t(3));
        let out = h.recv(1);
        assert_eq!(out.len(), 2);
        for o in &out {
            assert_eq!(&o[0..6], &GW);
            assert_eq!(ip_of(o)[8], 63);
            assert!(ip::header_checksum_ok(&ip_of(o)[..20]));
        }
        // Now it is known.
        h.send(0, &f, t(4));
        assert_eq!(h.recv(1).len(), 1);
        assert_eq!(h.pool().available(), 64);
    }

    #[test]
    fn shows_routes_interfaces_and_gauges() {
        use crate::testframes::{column, text, Shared};
        let r = Router::new(config()).expect("router");
        let stats = r.stats();
        let r = Shared::new(r);
        let routes = r.show("routes", t(0)).expect("routes");
        assert_eq!(routes.columns, ["prefix", "via", "gate", "kind"]);
        let row = |p: &str, via: Option<&str>, g: u64, k: &str| {
            vec![text(p), via.map_or(Cell::None, text), Cell::Int(g), text(k)]
        };
        assert_eq!(
            routes.rows,
            vec![
                row("10.0.0.0/24", None, 0, "connected"),
                row("10.0.0.1/32", None, 0, "local"),
                row("10.0.0.255/32", None, 0, "broadcast"),
                row("10.0.1.0/24", None, 1, "connected"),
                row("10.0.1.1/32", None, 1, "local"),
                row("10.0.1.255/32", None, 1, "broadcast"),
                row("192.0.2.0/24", Some("10.0.1.254"), 1, "static"),
            ]
        );
        assert_eq!(stats.routes.get(), 7);
        let ifs = r.show("interfaces", t(0)).expect("interfaces");
        assert_eq!(ifs.columns, ["gate", "address", "mac", "mtu", "dhcp_relay"]);
        assert_eq!(
            ifs.rows[1],
            vec![
                Cell::Int(1),
                text("10.0.1.1/24"),
                text("02:aa:00:00:00:01"),
                Cell::Int(1400),
                Cell::None
            ]
        );
        assert_eq!(column(&ifs, "mtu"), vec![Cell::Int(1500), Cell::Int(1400)]);
        assert_eq!(r.show("macs", t(0)), None);
    }

    #[test]
    fn shows_neighbours_as_they_resolve() {
        use crate::testframes::{text, Shared};
        let mut cfg = config();
        cfg.neighbors = vec![(ipa("10.0.0.9"), MacAddr(H0))];
        let r = Router::new(cfg).expect("router");
        let stats = r.stats();
        assert_eq!(stats.arp_entries.get(), 1, "the static one");
        let r = Shared::new(r);
        let mut h = Harness::new(Box::new(r.clone()), 2, 64);
        h.tick(t(0)); // gratuitous ARPs out of the way
        h.recv_each();
        teach(&mut h, 1, H1, "10.0.1.7", t(1000));
        // 192.0.2.9 needs the gateway, which is not known: its packet waits.
        let f = ip_frame(R0, H0, "10.0.0.5", "192.0.2.9", 64, 17, &[0; 8]);
        h.send(0, &f, t(2000));
        h.recv_each();
        let arp = r.show("arp", t(5000)).expect("arp");
        assert_eq!(
            arp.columns,
            ["ip", "mac", "gate", "state", "age_s", "expires_s", "queued"]
        );
        assert_eq!(
            arp.rows,
            vec![
                vec![
                    text("10.0.0.9"),
                    text("02:00:00:00:00:10"),
                    Cell::Int(0),
                    text("static"),
                    Cell::None,
                    Cell::None,
                    Cell::Int(0),
                ],
                vec![
                    text("10.0.1.7"),
                    text("02:00:00:00:00:20"),
                    Cell::Int(1),
                    text("reachable"),
                    Cell::Int(4),
                    Cell::Int(56),
                    Cell::Int(0),
                ],
                vec![
                    text("10.0.1.254"),
                    Cell::None,
                    Cell::Int(1),
                    text("incomplete"),
                    Cell::None,
                    Cell::None,
                    Cell::Int(1),
                ],
            ]
        );
        h.tick(t(2001));
        assert_eq!(stats.arp_entries.get(), 3);
        // The gateway answers: resolved, its packet gone.
        h.send(
            1,
            &arp_frame(2, R1, GW, "10.0.1.254", R1, "10.0.1.1"),
            t(2500),
        );
        assert_eq!(h.recv(1).len(), 1);
        let arp = r.show("arp", t(2500)).expect("arp");
        assert_eq!(
            arp.rows[2],
            vec![
                text("10.0.1.254"),
                text("02:00:00:00:00:99"),
                Cell::Int(1),
                text("reachable"),
                Cell::Int(0),
                Cell::Int(60),
                Cell::Int(0),
            ]
        );
        // Learned entries age out; the gauge follows on the next tick.
        h.tick(t(70_000));
        h.tick(t(70_001));
        h.recv_each();
        assert_eq!(stats.arp_entries.get(), 1);
        assert_eq!(r.show("arp", t(70_001)).expect("arp").rows.len(), 1);
        assert_eq!(r.show("nat", t(0)), None);
    }

    #[test]
    fn a_gateway_that_changes_its_mac_is_followed_at_once() {
        let mut h = harness(config());
        h.tick(t(0)); // gratuitous ARPs out of the way
        h.recv_each();
        teach(&mut h, 1, GW, "10.0.1.254", t(0));
        let f = ip_frame(R0, H0, "10.0.0.5", "192.0.2.9", 64, 17, &[0; 8]);
        h.send(0, &f, t(1));
        h.send(0, &f, t(1));
        let out = h.recv(1);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|o| o[0..6] == GW), "cached next hop");
        // The gateway is replaced (a new MAC announces the same address).
        let new_gw = [0x02, 0, 0, 0, 0, 0x98];
        teach(&mut h, 1, new_gw, "10.0.1.254", t(2));
        h.send(0, &f, t(3));
        let out = h.recv(1);
        assert_eq!(&out[0][0..6], &new_gw);
        // Once the entry ages out, packets wait for ARP again.
        h.tick(t(2 + 60_000));
        h.send(0, &f, t(2 + 60_001));
        let out = h.recv(1);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][0..6], &[0xff; 6], "an ARP request, not the packet");
    }

    #[test]
    fn unanswered_arp_gives_host_unreachable_and_arp_failed() {
        let mut h = harness(config());
        h.tick(t(0)); // gratuitous ARPs
        assert_eq!(h.recv(0).len(), 1);
        assert_eq!(h.recv(1).len(), 1);
        let f = ip_frame(R0, H0, "10.0.0.5", "10.0.1.99", 64, 17, &[0; 8]);
        h.send(0, &f, t(0));
        assert_eq!(h.recv(1).len(), 1, "first request");
        h.tick(t(1000));
        h.tick(t(2000));
        assert_eq!(h.recv(1).len(), 2, "two retries");
        h.tick(t(3000));
        assert_eq!(h.node_drops(DropReason::ArpFailed), 1);
        let back = h.recv(0);
        assert_eq!(back.len(), 1);
        let e = ip_of(&back[0]);
        assert_eq!((e[20], e[21]), (3, 1), "host unreachable");
        assert_eq!(&e[12..16], &[10, 0, 0, 1]);
        assert_eq!(&e[16..20], &[10, 0, 0, 5]);
        assert_eq!(h.pool().available(), 64);
    }

    #[test]
    fn echo_reply_for_its_own_addresses() {
        let mut h = harness(config());
        // To the far interface's address too, through the near one.
        for dst in ["10.0.0.1", "10.0.1.1"] {
            let f = ip_frame(R0, H0, "10.0.0.5", dst, 64, 1, &echo_request(7));
            h.send(0, &f, t(0));
            let out = h.recv(0);
            assert_eq!(out.len(), 1, "{dst}");
            let o = &out[0];
            assert_eq!(&o[0..6], &H0);
            assert_eq!(&o[6..12], &R0);
            let ipd = ip_of(o);
            assert_eq!(&ipd[12..16], &ipa(dst).octets());
            assert_eq!(&ipd[16..20], &[10, 0, 0, 5]);
            assert!(ip::header_checksum_ok(&ipd[..20]));
            assert_eq!(ipd[20], 0, "echo reply");
            assert_eq!(ip::sum(&ipd[20..]), 0xffff, "ICMP checksum");
            assert_eq!(&ipd[24..], &echo_request(7)[4..], "id, seq and data kept");
        }
        assert_eq!(h.pool().available(), 64);
    }

    #[test]
    fn ttl_exceeded_and_no_route_send_icmp_errors() {
        let mut h = harness(config());
        let f = ip_frame(R0, H0, "10.0.0.5", "10.0.1.7", 1, 17, &[9; 12]);
        h.send(0, &f, t(0));
        let out = h.recv(0);
        assert_eq!(out.len(), 1);
        let e = ip_of(&out[0]);
        assert_eq!((e[20], e[21]), (11, 0), "time exceeded");
        assert_eq!(&e[12..16], &[10, 0, 0, 1], "from the ingress interface");
        assert_eq!(&e[16..20], &[10, 0, 0, 5]);
        assert!(ip::header_checksum_ok(&e[..20]));
        assert_eq!(ip::sum(&e[20..]), 0xffff);
        assert_eq!(&e[28..], &f[14..], "quotes the whole small datagram");
        assert_eq!(h.node_drops(DropReason::TtlExceeded), 1);

        let f = ip_frame(R0, H0, "10.0.0.5", "198.51.100.1", 64, 1, &echo_request(1));
        h.send(0, &f, t(1));
        let out = h.recv(0);
        assert_eq!(out.len(), 1);
        let e = ip_of(&out[0]);
        assert_eq!((e[20], e[21]), (3, 0), "net unreachable");
        assert_eq!(h.node_drops(DropReason::NoRoute), 1);
        // UDP to the router: port unreachable (traceroute's last hop).
        let f = ip_frame(R0, H0, "10.0.0.5", "10.0.0.1", 64, 17, &[0; 8]);
        h.send(0, &f, t(2));
        let e = h.recv(0);
        assert_eq!((ip_of(&e[0])[20], ip_of(&e[0])[21]), (3, 3));
        assert_eq!(h.pool().available(), 64);
    }

    #[test]
    fn a_default_route_catches_everything() {
        let mut cfg = config();
        cfg.routes.push(Route {
            prefix: ipa("0.0.0.0"),
            len: 0,
            via: ipa("10.0.1.254"),
        });
        cfg.neighbors.push((ipa("10.0.1.254"), MacAddr(GW)));
        let mut h = harness(cfg);
        let f = ip_frame(R0, H0, "10.0.0.5", "198.51.100.1", 64, 17, &[0; 8]);
        h.send(0, &f, t(0));
        let out = h.recv(1);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][0..6], &GW, "static neighbour, no ARP");
    }

    #[test]
    fn too_big_for_the_egress_mtu() {
        let mut h = harness(config());
        teach(&mut h, 1, H1, "10.0.1.7", t(0));
        // wan's MTU is 1400.
        let f = ip_frame(R0, H0, "10.0.0.5", "10.0.1.7", 64, 17, &[0; 1400]);
        h.send(0, &f, t(1));
        let e = h.recv(0);
        assert_eq!(e.len(), 1);
        let e = ip_of(&e[0]);
        assert_eq!((e[20], e[21]), (3, 4), "fragmentation needed");
        assert_eq!(ip::read_u16(e, 26), 1400, "next-hop MTU");
        assert_eq!(e.len(), 576, "quote cut to a 576-byte datagram");
        assert_eq!(h.node_drops(DropReason::TooBig), 1);
        assert!(h.recv(1).is_empty());
    }

    #[test]
    fn without_df_a_datagram_too_big_leaves_as_fragments() {
        let mut h = harness(config());
        teach(&mut h, 1, H1, "10.0.1.7", t(0));
        // wan's MTU is 1400: 1800 bytes of data go as 1376 + 424.
        let data: Vec<u8> = (0..1800).map(|i| i as u8).collect();
        let mut f = ip_frame(R0, H0, "10.0.0.5", "10.0.1.7", 64, 17, &data);
        f[20] = 0; // no DF
        ip::set_header_checksum(&mut f[14..34]);
        h.send(0, &f, t(1));
        let out = h.recv(1);
        assert_eq!(out.len(), 2, "two fragments");
        let mut got = Vec::new();
        for (k, fr) in out.iter().enumerate() {
            assert_eq!(&fr[0..6], &H1, "to the next hop");
            let ip = ip_of(fr);
            let total = usize::from(ip::read_u16(ip, 2));
            assert!(total <= 1400, "fragment {k}: {total} bytes");
            assert_eq!(ip[8], 63, "TTL down by one");
            assert!(ip::header_checksum_ok(&ip[..20]), "fragment {k}'s checksum");
            let field = ip::read_u16(ip, 6);
            assert_eq!(usize::from(field & 0x1fff) * 8, got.len());
            assert_eq!(
                field & 0x2000 != 0,
                k == 0,
                "more fragments but on the last"
            );
            got.extend_from_slice(&ip[20..total]);
        }
        assert_eq!(got, data);
        assert!(h.recv(0).is_empty(), "no ICMP error");
        assert_eq!(h.node_drops(DropReason::TooBig), 0);
    }

    #[test]
    fn bad_headers_are_dropped_with_reasons() {
        let mut h = harness(config());
        teach(&mut h, 1, H1, "10.0.1.7", t(0));
        let good = ip_frame(R0, H0, "10.0.0.5", "10.0.1.7", 64, 17, &[0; 8]);
        let mut bad_sum = good.clone();
        bad_sum[24] ^= 0xff;
        h.send(0, &bad_sum, t(1));
        assert_eq!(h.node_drops(DropReason::BadChecksum), 1);
        let mut short_ihl = good.clone();
        short_ihl[14] = 0x44;
        h.send(0, &short_ihl, t(1));
        let mut long_total = good.clone();
        long_total[16..18].copy_from_slice(&1000u16.to_be_bytes());
        h.send(0, &long_total, t(1));
        let mut v6 = good.clone();
        v6[14] = 0x65;
        h.send(0, &v6, t(1));
        assert_eq!(h.node_drops(DropReason::BadHeader), 3);
        h.send(0, &good[..30], t(1));
        assert_eq!(h.node_drops(DropReason::Runt), 1);
        let mut other_mac = good.clone();
        other_mac[5] = 0x77;
        h.send(0, &other_mac, t(1));
        let bcast = ip_frame([0xff; 6], H0, "0.0.0.0", "255.255.255.255", 64, 17, &[0; 8]);
        h.send(0, &bcast, t(1));
        let subnet_bcast = ip_frame(R0, H0, "10.0.0.5", "10.0.1.255", 64, 17, &[0; 8]);
        h.send(0, &subnet_bcast, t(1));
        assert_eq!(h.node_drops(DropReason::NotForUs), 3);
        assert!(h.recv(1).is_empty());
        assert!(h.recv(0).is_empty(), "no ICMP about any of these");
        assert_eq!(h.pool().available(), 64);
    }

    #[test]
    fn icmp_errors_are_rate_limited() {
        let mut cfg = config();
        cfg.icmp_rate = 5;
        let mut h = harness(cfg);
        let f = ip_frame(R0, H0, "10.0.0.5", "198.51.100.1", 64, 17, &[0; 8]);
        for _ in 0..20 {
            h.send(0, &f, t(0));
        }
        assert_eq!(h.recv(0).len(), 5);
        assert_eq!(h.node_drops(DropReason::NoRoute), 20);
        h.send(0, &f, t(200));
        assert_eq!(h.recv(0).len(), 1, "one token per 200 ms");
    }

    #[test]
    fn an_arp_scan_holds_at_most_the_cap_and_sends_requests_at_the_rate() {
        // The documented limits: 256 packets waiting, 100 requests a second in bursts of 100.
        const CAP: usize = 256;
        const BURST: usize = 100;
        const POOL: usize = 2048;
        let mut cfg = config();
        cfg.interfaces[1].address = Some((ipa("10.1.0.1"), 16));
        cfg.routes.clear();
        cfg.arp = NeighborConfig::default();
        let r = Router::new(cfg).expect("router");
        let stats = r.stats();
        let mut h = Harness::new(Box::new(r), 2, POOL);
        let before = h.pool().available();
        let mut requests = 0;
        for i in 0..10_000u32 {
            let dst = Ipv4Addr::from(u32::from(ipa("10.1.1.0")) + i);
            let f = ip_frame(R0, H0, "10.0.0.5", &dst.to_string(), 64, 17, &[0; 8]);
            h.send(0, &f, t(0));
            if i % 256 == 255 {
                requests += h.recv(1).len();
            }
        }
        requests += h.recv(1).len();
        assert!(h.recv(0).is_empty());
        let held = before as i64 - h.pool().available() as i64;
        assert!((0..=CAP as i64).contains(&held), "{held} buffers held");
        let held = held as usize;
        assert_eq!(
            h.node_drops(DropReason::ArpQueueFull) as usize,
            10_000 - held,
            "the rest are arp_queue_full"
        );
        assert!(requests > 0 && requests <= BURST, "{requests} requests");
        // The requests over the rate are counted as such.
        let limited = stats.arp_rate_limited.get() as usize;
        assert_eq!(limited, held - requests, "one per new entry not asked for");
        // One second later the retries get one more bucket's worth.
        h.tick(t(1000));
        let retries = h.recv(1).len();
        assert!(retries > 0 && retries <= BURST, "{retries} retries");
        // Given up: every held buffer comes back.
        h.tick(t(2000));
        h.tick(t(3000));
        h.recv_each();
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn gratuitous_arp_once_per_wired_interface() {
        let mut h = harness(config());
        h.tick(t(0));
        h.tick(t(500));
        for (g, ip) in [(0, [10, 0, 0, 1]), (1, [10, 0, 1, 1])] {
            let out = h.recv(g);
            assert_eq!(out.len(), 1);
            assert_eq!(&out[0][28..32], &ip);
            assert_eq!(&out[0][38..42], &ip);
        }
    }

    #[test]
    fn rejects_a_gateway_outside_its_subnets() {
        let mut cfg = config();
        cfg.routes[0].via = ipa("172.16.0.1");
        assert_eq!(
            Router::new(cfg).err(),
            Some(RouterError::NotConnected(ipa("172.16.0.1")))
        );
    }
}

#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod v6_tests;
