//! `dhcp-server`: a DHCPv4 server (RFC 2131, options of RFC 2132) in the dataplane.
//!
//! The server is a node with one gate, linked to the switch of the segment it serves. It
//! owns an IPv4 address and a MAC address: it answers ARP for its address (clients renew
//! by unicast to the server identifier) and ICMP echo, and serves DHCP on UDP port 67.
//!
//! It hands out addresses in subnets: its own (the subnet of its `address`, with the
//! top-level pools and options) and any number of others reached through DHCP relays
//! ([`DhcpConfig::subnets`], each with its own pools, router, DNS, domain, lease times and
//! options). A message picks its subnet as RFC 2131 §4.3.1 says: by `giaddr` when a relay
//! set it (a `giaddr` in no subnet the server serves is dropped as
//! [`DropReason::NoSubnet`]), else by `ciaddr` when a client renewing by unicast from one
//! of the other subnets gives it, else the server's own subnet (which serves no one when
//! it has neither a pool nor a reservation: [`DropReason::NoSubnet`] too).
//!
//! - DISCOVER → OFFER: a reservation for the client's MAC in the subnet, else the client's
//!   current or last address, else the address it asks for, else the first never-used
//!   address of the subnet's pools, else the address whose lease ended longest ago. The
//!   offer holds the address for `offer_hold`; past it the address is anyone's, so a flood
//!   of DISCOVERs from made-up MACs holds the pool for `offer_hold` at most. No address
//!   left: no offer, counted (`pool_exhausted`, and the DISCOVER is dropped as
//!   [`DropReason::PoolExhausted`]) and logged. Choosing an address costs amortised
//!   O(log n), never a walk over the pool or the leases: per subnet, a cursor over the
//!   never-used addresses, a set of addresses that became free again behind it, and the
//!   leases ordered by expiry.
//! - REQUEST → ACK or NAK: SELECTING (our server identifier: ACK the offered address;
//!   another server's: forget our offer), INIT-REBOOT (requested address, no server
//!   identifier: ACK if the address is this client's or free for it, NAK if not),
//!   RENEWING/REBINDING (ciaddr: ACK if it is the client's lease or free for it, else NAK).
//! - RELEASE frees the address; DECLINE marks it unusable for [`DECLINE_HOLD`]; INFORM gets
//!   an ACK with the options and no lease.
//! - Replies go as RFC 2131 §4.1 asks ([`reply`]): through a relay (`giaddr` set) to the
//!   relay's address at UDP port 67, a NAK with the broadcast bit set so that the relay
//!   broadcasts it; else a NAK is broadcast; to ciaddr if the client has one; to the
//!   broadcast address if the client set the broadcast flag; else to yiaddr at chaddr. A
//!   relay's Relay Agent Information option (82) comes back as the reply's last option
//!   (RFC 3046 §2.2). The reply's `giaddr` is the request's, its `hops` 0.
//! - An address outside the server's own subnet (a relay elsewhere, a client renewing from
//!   another subnet) is reached through [`DhcpConfig::gateway`], as an IP host would; the
//!   next hop's MAC (the gateway's, or a relay's on the server's own segment) is found with
//!   ARP: the router's table ([`Neighbors`]: replies wait in a bounded queue, at most
//!   [`neighbors::REQUEST_RATE`] requests a second, entries learned from ARP addressed to
//!   the server). A reply whose next hop never answers is dropped as `arp_failed`; one
//!   for another subnet without a `gateway` as `no_route`.
//! - Clients are told apart by their client identifier (option 61), else their MAC.
//!
//! Leases outlive the process: the control plane loads them from a file into
//! [`DhcpServer::new`] and the server sends the whole list of bound leases through a
//! channel after a change ([`LeaseUpdate`]): at once after a quiet spell, and at most once
//! every [`PUBLISH_EVERY`], so that a burst of ACKs builds one list, not one each (the
//! rest goes from `tick`, as does a list a full channel refused; the worker never blocks). Times in the file are Unix seconds; the node only reads its
//! monotonic `ctx.now`, and [`DhcpConfig::wall_at_zero`] maps one to the other.
//!
//! Table `leases` ([`Node::show`]): one row per address the server knows of, sorted by
//! address. Columns: `ip`, `mac`, `hostname` (option 12, if the client gave one), `state`
//! and `expires_s` (signed: seconds until the state ends, negative once past):
//! - `bound`: leased, until `expires_s`;
//! - `expired`: the lease ended (`expires_s` negative); the address stays the client's
//!   until someone else needs it;
//! - `offered`: offered, waiting for the client's REQUEST until `expires_s`;
//! - `reserved`: a reservation not leased now (`expires_s` none);
//! - `declined`: a client declined it; not offered again until `expires_s` (`mac` none).
//!
//! The DHCP path is not the fast path: the Ethernet, IPv4 and UDP headers go through the
//! views of [`crate::wire`] like every function's, but the DHCP message itself (BOOTP and
//! its options) is read with smoltcp's `DhcpPacket` view, and a message may allocate
//! (client keys, the lease list).

mod config;
mod metrics;
pub(crate) mod reply;

pub use config::{option_bytes, DhcpKind, DhcpSpec, LEASE_DIR};

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use nfv_dataplane::{Batch, Cell, Counter, Ctx, DropReason, Gate, Node, Packet, Table, Timestamp};
use smoltcp::wire::{DhcpMessageType, DhcpPacket};

use crate::arp;
use crate::ip::{self, PROTO_ICMP, PROTO_UDP};
use crate::router::icmp::{self, RateLimit};
use crate::router::neighbors::{self, NeighborConfig, Neighbors};
use crate::show;
use crate::wire::{self, udp, EthernetFrame, Headers, MacAddr, UdpPacket, L3};
use reply::{bootp, MAGIC, SERVER_PORT};

/// How long a declined address is not offered again.
pub const DECLINE_HOLD: Duration = Duration::from_secs(600);
/// Lease lists go to the lease writer at most this often: the first change after a quiet
/// spell at once, the changes of a burst together from `tick`.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// Most next hops (relays, the gateway) a server keeps ARP entries for.
const MAX_NEIGHBORS: usize = 1024;
/// How often ARP timers run.
const EXPIRE_EVERY: Duration = Duration::from_millis(100);

/// A DHCP server's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpConfig {
    /// The server's MAC address.
    pub mac: MacAddr,
    /// The server's IPv4 address (its server identifier).
    pub address: Ipv4Addr,
    /// The server's own subnet (`address`'s, of `own.prefix_len`; its `network` is read
    /// from `address`) and what it hands out there: no pools when it serves only relayed
    /// subnets.
    pub own: DhcpSubnet,
    /// Fixed addresses by MAC, in any subnet served.
    pub reservations: Vec<(MacAddr, Ipv4Addr)>,
    /// How long an offered address waits for the client's REQUEST.
    pub offer_hold: Duration,
    /// Unix time in seconds at `Timestamp::ZERO` of the worker's clock.
    pub wall_at_zero: u64,
    /// The next hop toward addresses outside the server's own subnet (relays, clients
    /// renewing from other subnets), in that subnet.
    pub gateway: Option<Ipv4Addr>,
    /// Further subnets, served through relays: a request's `giaddr` picks one.
    pub subnets: Vec<DhcpSubnet>,
}

/// A subnet a server hands addresses out in, with its settings: its own, or one it serves
/// through relays (the topology file's `subnets` entries, their missing keys taken from
/// the server's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpSubnet {
    /// The subnet's network address (host bits zero).
    pub network: Ipv4Addr,
    /// Its prefix length (the subnet mask option).
    pub prefix_len: u8,
    /// Inclusive address ranges to hand out.
    pub pools: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Default gateway (option 3): the relay's router, usually.
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6).
    pub dns: Vec<Ipv4Addr>,
    /// Domain name (option 15).
    pub domain: Option<String>,
    /// Lease time (option 51).
    pub lease: Duration,
    /// Renewal time T1 (option 58); half the lease if `None`.
    pub renew: Option<Duration>,
    /// Rebinding time T2 (option 59); 7/8 of the lease if `None`.
    pub rebind: Option<Duration>,
    /// Extra options by code, sent as given.
    pub options: Vec<(u8, Vec<u8>)>,
}

/// A bound lease, as kept in the lease file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The client's hardware address.
    pub mac: MacAddr,
    /// Its client identifier (option 61), if it sent one.
    pub client_id: Option<Vec<u8>>,
    /// The leased address.
    pub ip: Ipv4Addr,
    /// When the lease ends, in Unix seconds.
    pub expires_unix: u64,
    /// The host name the client gave (option 12).
    pub hostname: Option<String>,
}

/// What the server tells the control plane after a change: every bound lease.
pub type LeaseUpdate = Vec<Lease>;

/// A DHCP server's counters, shared with the control plane.
#[derive(Debug, Default)]
pub struct DhcpStats {
    /// DISCOVERs received.
    pub discovers: Counter,
    /// OFFERs sent.
    pub offers: Counter,
    /// REQUESTs received.
    pub requests: Counter,
    /// ACKs sent (INFORM answers included).
    pub acks: Counter,
    /// NAKs sent.
    pub naks: Counter,
    /// RELEASEs received.
    pub releases: Counter,
    /// DECLINEs received.
    pub declines: Counter,
    /// INFORMs received.
    pub informs: Counter,
    /// Messages that came through a relay (`giaddr` set), served or not.
    pub relayed: Counter,
    /// DISCOVERs left without an offer: no free address.
    pub pool_exhausted: Counter,
    /// Messages not served: for another server, or of an unknown type.
    pub ignored: Counter,
    /// ARP requests sent to find a next hop (a relay, the gateway).
    pub arp_requests: Counter,
    /// Lease lists the channel could not take at once (sent later).
    pub updates_deferred: Counter,
    /// Bound leases now, expired ones kept for their client included (gauge, updated once
    /// a second).
    pub leases_bound: Counter,
    /// Addresses offered and not yet requested (gauge, updated once a second).
    pub leases_offered: Counter,
    /// Pool addresses neither bound, offered nor declined (gauge, updated once a second).
    pub pool_free: Counter,
}

/// A client: its identifier option, or its MAC tagged so the two never collide.
type ClientKey = Vec<u8>;

#[derive(Clone, Debug)]
struct Binding {
    key: ClientKey,
    mac: MacAddr,
    client_id: Option<Vec<u8>>,
    expires: Timestamp,
    bound: bool,
    hostname: Option<String>,
}

/// The fields of a request the server uses.
struct Request {
    msg: u8,
    xid: u32,
    broadcast: bool,
    ciaddr: u32,
    giaddr: u32,
    chaddr: MacAddr,
    client_id: Option<Vec<u8>>,
    requested: Option<u32>,
    server_id: Option<u32>,
    hostname: Option<String>,
    /// A relay's Relay Agent Information option (82), echoed in the reply.
    relay_info: Option<Vec<u8>>,
}

impl Request {
    fn key(&self) -> ClientKey {
        match &self.client_id {
            Some(id) => id.clone(),
            None => {
                let mut k = vec![0xff];
                k.extend_from_slice(&self.chaddr.0);
                k
            }
        }
    }
}

/// A subnet being served: its settings and its free-address search.
struct Served {
    cfg: DhcpSubnet,
    net: u32,
    mask: u32,
    /// True if it has anything to hand out (a pool or a reservation in it).
    serves: bool,
    /// The next pool address never looked at by the free-address search: (pool index,
    /// address). Everything from here to the end of the pools that is not bound is free.
    cursor: (usize, u64),
    /// Addresses the cursor has passed that may be free again (unbound, or their decline
    /// ended), by [`order`](DhcpServer::order): the free-address search takes the first of
    /// these, else the cursor's.
    returned: BTreeSet<(usize, u32)>,
    /// The bindings of addresses in [`order`](DhcpServer::order), by expiry: the address
    /// whose lease ended longest ago is the first.
    by_expiry: BTreeSet<(Timestamp, u32)>,
}

impl Served {
    fn new(cfg: DhcpSubnet, reservations: &[(MacAddr, Ipv4Addr)]) -> Self {
        let mask = mask(cfg.prefix_len);
        let net = u32::from(cfg.network) & mask;
        let serves = !cfg.pools.is_empty()
            || reservations
                .iter()
                .any(|&(_, ip)| u32::from(ip) & mask == net);
        let cursor = (
            0,
            cfg.pools
                .first()
                .map_or(0, |&(a, _)| u64::from(u32::from(a))),
        );
        Served {
            cfg,
            net,
            mask,
            serves,
            cursor,
            returned: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    fn contains(&self, ip: u32) -> bool {
        ip & self.mask == self.net
    }

    /// The index of the first of its pools that holds `ip`.
    fn pool_of(&self, ip: u32) -> Option<usize> {
        self.cfg
            .pools
            .iter()
            .position(|&(a, b)| (u32::from(a)..=u32::from(b)).contains(&ip))
    }

    /// The cursor's address (moved on past the ends of pools), or none at the end.
    fn cursor_at(&mut self) -> Option<u32> {
        while let Some(&(_, b)) = self.cfg.pools.get(self.cursor.0) {
            if self.cursor.1 <= u64::from(u32::from(b)) {
                return Some(self.cursor.1 as u32);
            }
            self.cursor.0 += 1;
            self.cursor.1 = self
                .cfg
                .pools
                .get(self.cursor.0)
                .map_or(0, |&(a, _)| u64::from(u32::from(a)));
        }
        None
    }
}

/// The shortest time between two warnings of one DHCP server.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The DHCP server node.
pub struct DhcpServer {
    cfg: DhcpConfig,
    addr: u32,
    /// The subnets served; the server's own is the first.
    subnets: Vec<Served>,
    bindings: HashMap<u32, Binding>,
    by_client: HashMap<ClientKey, u32>,
    declined: HashMap<u32, Timestamp>,
    /// Reservations by MAC and by address (the first in the list wins, for both).
    res_by_mac: HashMap<MacAddr, u32>,
    res_by_ip: HashMap<u32, MacAddr>,
    /// Next hops' MACs (relays on the server's segment, the gateway), with replies waiting.
    neighbors: Neighbors,
    /// ARP requests: [`neighbors::REQUEST_RATE`] a second.
    arp_rate: RateLimit,
    last_expire: Timestamp,
    stats: Arc<DhcpStats>,
    updates: Option<Sender<LeaseUpdate>>,
    dirty: bool,
    last_publish: Option<Timestamp>,
    last_sweep: Timestamp,
    /// Warnings from the worker (pool exhausted, address declined): at most one per
    /// [`WARN_EVERY`], so that a flood neither fills the log nor slows the worker.
    warned: Option<Timestamp>,
    /// Warnings held back since the last one logged.
    unwarned: u64,
    /// Addresses examined while choosing or checking one (tests count the work of a flood).
    #[cfg(test)]
    examined: Arc<Counter>,
}

use crate::ip::prefix_mask as mask;

impl DhcpServer {
    /// A server for `cfg` that starts with `leases` (those outside its subnets are ignored)
    /// and reports changes on `updates`.
    pub fn new(cfg: DhcpConfig, leases: Vec<Lease>, updates: Option<Sender<LeaseUpdate>>) -> Self {
        let addr = u32::from(cfg.address);
        let mut res_by_mac = HashMap::new();
        let mut res_by_ip = HashMap::new();
        for &(mac, ip) in &cfg.reservations {
            res_by_mac.entry(mac).or_insert(u32::from(ip));
            res_by_ip.entry(u32::from(ip)).or_insert(mac);
        }
        let own = DhcpSubnet {
            network: Ipv4Addr::from(addr & mask(cfg.own.prefix_len)),
            ..cfg.own.clone()
        };
        let subnets: Vec<Served> = std::iter::once(own)
            .chain(cfg.subnets.iter().cloned())
            .map(|s| Served::new(s, &cfg.reservations))
            .collect();
        let mut s = DhcpServer {
            addr,
            subnets,
            bindings: HashMap::new(),
            by_client: HashMap::new(),
            declined: HashMap::new(),
            warned: None,
            unwarned: 0,
            res_by_mac,
            res_by_ip,
            neighbors: Neighbors::new(NeighborConfig {
                max_entries: MAX_NEIGHBORS,
                ..NeighborConfig::default()
            }),
            arp_rate: RateLimit::new(neighbors::REQUEST_RATE, neighbors::REQUEST_RATE),
            last_expire: Timestamp::ZERO,
            stats: Arc::new(DhcpStats::default()),
            updates,
            dirty: false,
            last_publish: None,
            last_sweep: Timestamp::ZERO,
            #[cfg(test)]
            examined: Arc::default(),
            cfg,
        };
        for l in leases {
            let ip = u32::from(l.ip);
            if s.subnet_of(ip).is_none() || ip == addr {
                continue;
            }
            let secs = l.expires_unix.saturating_sub(s.cfg.wall_at_zero);
            let key = match &l.client_id {
                Some(id) => id.clone(),
                None => {
                    let mut k = vec![0xff];
                    k.extend_from_slice(&l.mac.0);
                    k
                }
            };
            s.by_client.insert(key.clone(), ip);
            s.set_binding(
                ip,
                Binding {
                    key,
                    mac: l.mac,
                    client_id: l.client_id,
                    expires: Timestamp(secs.saturating_mul(1_000_000_000)),
                    bound: true,
                    hostname: l.hostname,
                },
            );
        }
        s.update_gauges();
        s
    }

    /// Set the lease gauges of [`DhcpStats`] from the bindings.
    fn update_gauges(&self) {
        let pool: u64 = self
            .subnets
            .iter()
            .flat_map(|s| s.cfg.pools.iter())
            .map(|&(a, b)| {
                let (a, b) = (u32::from(a), u32::from(b));
                let own = u64::from((a..=b).contains(&self.addr));
                u64::from(b.saturating_sub(a)) + u64::from(a <= b) - own
            })
            .sum();
        let bound = self.bindings.values().filter(|b| b.bound).count() as u64;
        let offered = self.bindings.len() as u64 - bound;
        let used = self.bindings.keys().filter(|&&ip| self.in_pool(ip)).count() as u64;
        let declined = self
            .declined
            .keys()
            .filter(|&&ip| self.in_pool(ip) && !self.bindings.contains_key(&ip))
            .count() as u64;
        self.stats.leases_bound.set(bound);
        self.stats.leases_offered.set(offered);
        self.stats
            .pool_free
            .set(pool.saturating_sub(used).saturating_sub(declined));
    }

    /// The server's counters.
    pub fn stats(&self) -> Arc<DhcpStats> {
        Arc::clone(&self.stats)
    }

    /// Every bound lease (expired ones included: they keep the address for the client
    /// until someone else needs it), sorted by address.
    pub fn leases(&self) -> Vec<Lease> {
        let mut v: Vec<Lease> = self
            .bindings
            .iter()
            .filter(|(_, b)| b.bound)
            .map(|(&ip, b)| Lease {
                mac: b.mac,
                client_id: b.client_id.clone(),
                ip: Ipv4Addr::from(ip),
                expires_unix: self.cfg.wall_at_zero + b.expires.0 / 1_000_000_000,
                hostname: b.hostname.clone(),
            })
            .collect();
        v.sort_by_key(|l| u32::from(l.ip));
        v
    }

    /// Send the lease list after a change at `now`, unless one went less than
    /// [`PUBLISH_EVERY`] ago: then `tick` sends it, so a burst of changes costs one list.
    fn publish(&mut self, now: Timestamp) {
        if self.updates.is_some()
            && self
                .last_publish
                .is_some_and(|t| now.since(t) < PUBLISH_EVERY)
        {
            self.dirty = true;
            return;
        }
        self.send_leases(now);
    }

    fn send_leases(&mut self, now: Timestamp) {
        let Some(tx) = &self.updates else { return };
        match tx.try_send(self.leases()) {
            Ok(()) => {
                self.dirty = false;
                self.last_publish = Some(now);
            }
            Err(TrySendError::Full(_)) => {
                self.stats.updates_deferred.add(1);
                self.dirty = true;
            }
            Err(TrySendError::Disconnected(_)) => self.dirty = false,
        }
    }

    /// The subnet `ip` lies in, if the server serves it.
    fn subnet_of(&self, ip: u32) -> Option<usize> {
        self.subnets.iter().position(|s| s.contains(ip))
    }

    /// The subnet a request is served in (see the module documentation), if any.
    fn select(&self, req: &Request) -> Option<usize> {
        let s = if req.giaddr != 0 {
            self.subnet_of(req.giaddr)?
        } else if req.ciaddr != 0 {
            self.subnet_of(req.ciaddr).unwrap_or(0)
        } else {
            0
        };
        self.subnets.get(s).filter(|sub| sub.serves).map(|_| s)
    }

    fn in_pool(&self, ip: u32) -> bool {
        self.subnets
            .iter()
            .any(|s| s.contains(ip) && s.pool_of(ip).is_some())
    }

    fn reserved_for(&self, ip: u32) -> Option<MacAddr> {
        self.res_by_ip.get(&ip).copied()
    }

    /// Where `ip` stands in the free-address search, if the search may hand it out: its
    /// subnet and (the first pool of the subnet it is in, the address). Not the server's
    /// own address, nothing outside the subnets, no reserved address (those go to their MAC
    /// only, before any search).
    fn order(&self, ip: u32) -> Option<(usize, (usize, u32))> {
        if ip == self.addr || self.res_by_ip.contains_key(&ip) {
            return None;
        }
        let s = self.subnet_of(ip)?;
        let pool = self.subnets[s].pool_of(ip)?;
        Some((s, (pool, ip)))
    }

    /// `ip`, not bound now, may be free again: if the cursor of its subnet has passed it,
    /// the search must find it among the returned addresses.
    fn give_back(&mut self, ip: u32) {
        if let Some((s, o)) = self.order(ip) {
            let sub = &mut self.subnets[s];
            if (o.0, u64::from(o.1)) < sub.cursor {
                sub.returned.insert(o);
            }
        }
    }

    /// Set the binding of `ip`, keeping the indexes.
    fn set_binding(&mut self, ip: u32, b: Binding) {
        let expires = b.expires;
        if let Some(old) = self.bindings.insert(ip, b) {
            if let Some(s) = self.subnet_of(ip) {
                self.subnets[s].by_expiry.remove(&(old.expires, ip));
            }
        }
        if let Some((s, o)) = self.order(ip) {
            let sub = &mut self.subnets[s];
            sub.returned.remove(&o);
            sub.by_expiry.insert((expires, ip));
        }
    }

    /// Remove the binding of `ip`, keeping the indexes.
    fn remove_binding(&mut self, ip: u32) -> Option<Binding> {
        let b = self.bindings.remove(&ip)?;
        if let Some(s) = self.subnet_of(ip) {
            self.subnets[s].by_expiry.remove(&(b.expires, ip));
        }
        self.give_back(ip);
        Some(b)
    }

    /// The client's reservation, if it has one in subnet `s`.
    fn reservation_in(&self, s: usize, mac: MacAddr) -> Option<u32> {
        self.res_by_mac
            .get(&mac)
            .copied()
            .filter(|&r| self.subnets[s].contains(r))
    }

    /// True if `ip` may be given to the client `key` with MAC `mac` in subnet `s` now.
    fn free_for(&self, s: usize, ip: u32, key: &ClientKey, mac: MacAddr, now: Timestamp) -> bool {
        #[cfg(test)]
        self.examined.add(1);
        let sub = &self.subnets[s];
        if ip == self.addr || !sub.contains(ip) {
            return false;
        }
        match self.reserved_for(ip) {
            Some(m) if m != mac => return false,
            Some(_) => {}
            None if sub.pool_of(ip).is_none() => return false,
            None => {}
        }
        if self.declined.get(&ip).is_some_and(|&t| t > now) {
            return false;
        }
        match self.bindings.get(&ip) {
            Some(b) => &b.key == key || b.expires <= now,
            None => true,
        }
    }

    /// An address in subnet `s` for the client, by the order in the module documentation.
    /// Amortised O(log n): the search for a never-used address resumes where it stopped
    /// (an address it passed comes back through `returned` when it is free again), and the
    /// oldest ended lease is the first of `by_expiry`.
    fn allocate(
        &mut self,
        s: usize,
        req: &Request,
        key: &ClientKey,
        now: Timestamp,
    ) -> Option<u32> {
        if let Some(r) = self.reservation_in(s, req.chaddr) {
            return Some(r);
        }
        if let Some(&ip) = self.by_client.get(key) {
            if self.free_for(s, ip, key, req.chaddr, now) {
                return Some(ip);
            }
        }
        if let Some(ip) = req.requested {
            if self.subnets[s].pool_of(ip).is_some() && self.free_for(s, ip, key, req.chaddr, now) {
                return Some(ip);
            }
        }
        loop {
            let sub = &mut self.subnets[s];
            let (ip, returned) = match sub.returned.first() {
                Some(&(_, ip)) => (ip, true),
                None => match sub.cursor_at() {
                    Some(ip) => (ip, false),
                    None => break,
                },
            };
            if self.bindings.contains_key(&ip) {
                #[cfg(test)]
                self.examined.add(1);
            } else if self.free_for(s, ip, key, req.chaddr, now) {
                return Some(ip);
            }
            // Bound or declined: it comes back when that ends (own address: never).
            let sub = &mut self.subnets[s];
            if returned {
                sub.returned.pop_first();
            } else {
                sub.cursor.1 += 1;
            }
        }
        self.subnets[s]
            .by_expiry
            .iter()
            .take_while(|&&(t, _)| t <= now)
            .find(|&&(_, ip)| self.free_for(s, ip, key, req.chaddr, now))
            .map(|&(_, ip)| ip)
    }

    /// Record `ip` for the client, offered (until `offer_hold`) or bound (for the lease of
    /// subnet `s`).
    fn bind(
        &mut self,
        s: usize,
        req: &Request,
        key: ClientKey,
        ip: u32,
        bound: bool,
        now: Timestamp,
    ) {
        if let Some(old) = self.by_client.insert(key.clone(), ip) {
            if old != ip {
                self.remove_binding(old);
            }
        }
        if let Some(prev) = self.bindings.get(&ip) {
            if prev.key != key {
                self.by_client.remove(&prev.key);
            }
        }
        let hold = if bound {
            self.subnets[s].cfg.lease
        } else {
            self.cfg.offer_hold
        };
        let was_bound = self
            .bindings
            .get(&ip)
            .is_some_and(|b| b.bound && b.key == key);
        self.set_binding(
            ip,
            Binding {
                key,
                mac: req.chaddr,
                client_id: req.client_id.clone(),
                expires: now.plus(hold),
                bound: bound || was_bound,
                hostname: req.hostname.clone(),
            },
        );
    }

    /// Whether a warning may be logged at `now` (at most one per [`WARN_EVERY`]): `Some`
    /// with how many were held back since the last, or `None` (counted as held back).
    fn may_warn(&mut self, now: Timestamp) -> Option<u64> {
        if self.warned.is_some_and(|w| now.since(w) < WARN_EVERY) {
            self.unwarned += 1;
            return None;
        }
        self.warned = Some(now);
        Some(std::mem::take(&mut self.unwarned))
    }

    fn forget(&mut self, key: &ClientKey) -> bool {
        match self.by_client.remove(key) {
            Some(ip) => self.remove_binding(ip).is_some_and(|b| b.bound),
            None => false,
        }
    }

    fn handle(&mut self, mut pkt: Packet, ctx: &mut Ctx<'_>) {
        let h = wire::classify(&mut pkt);
        match h.l3 {
            L3::Short => ctx.drop(pkt, DropReason::Runt),
            _ if h.tagged => ctx.drop(pkt, DropReason::NotForUs),
            L3::Arp => self.arp(pkt, ctx),
            L3::Ipv4 | L3::Ipv4Runt | L3::Ipv4Malformed | L3::Ipv4BadChecksum => {
                let dst = match EthernetFrame::new_checked(pkt.data()) {
                    Ok(eth) => eth.dst(),
                    Err(_) => return ctx.drop(pkt, DropReason::Runt),
                };
                if dst == self.cfg.mac || dst == MacAddr::BROADCAST {
                    self.ipv4(pkt, &h, ctx)
                } else {
                    ctx.drop(pkt, DropReason::NotForUs)
                }
            }
            _ => ctx.drop(pkt, DropReason::NotForUs),
        }
    }

    /// ARP: answer requests for the server's address; learn next hops from what is
    /// addressed to it (and send the replies that waited for them).
    fn arp(&mut self, mut pkt: Packet, ctx: &mut Ctx<'_>) {
        let a = match arp::parse(pkt.data()) {
            Ok(a) => a,
            Err(arp::ArpError::Truncated) => return ctx.drop(pkt, DropReason::Runt),
            Err(arp::ArpError::BadHeader) => return ctx.drop(pkt, DropReason::BadHeader),
        };
        let for_us = a.tpa == self.addr;
        if a.spa != 0 && a.spa != self.addr {
            self.neighbors
                .learn(0, a.spa, a.sha, ctx.now, for_us, |_, mut p| {
                    if let Ok(mut eth) = EthernetFrame::new_checked(p.data_mut()) {
                        eth.set_dst(a.sha);
                    }
                    ctx.emit(Gate(0), p);
                });
        }
        if !for_us {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        match a.op {
            arp::REQUEST => {
                arp::reply_in_place(pkt.data_mut(), &a, self.cfg.mac);
                ctx.emit(Gate(0), pkt)
            }
            arp::REPLY => ctx.consume(pkt),
            _ => ctx.drop(pkt, DropReason::NotForUs),
        }
    }

    /// An IPv4 packet to our MAC or broadcast, whose headers are `h`: its IPv4 and UDP
    /// headers through the views, the DHCP message through smoltcp's `DhcpPacket`.
    fn ipv4(&mut self, mut pkt: Packet, h: &Headers, ctx: &mut Ctx<'_>) {
        if let Some(reason) = h.l3.error() {
            return ctx.drop(pkt, reason);
        }
        let d = pkt.data();
        let Some(ip) = h.ipv4(d) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        let (ihl, total) = (ip.header_len(), usize::from(ip.total_len()));
        let (dst, fragmented, proto) = (ip.dst_addr(), ip.is_fragment(), ip.protocol());
        let l4_first = d.get(h.l4_off).copied();
        if dst == self.addr && proto == PROTO_ICMP && !fragmented && l4_first == Some(8) {
            if icmp::make_echo_reply(&mut pkt, ihl, total, self.cfg.mac) {
                return ctx.emit(Gate(0), pkt);
            }
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        if proto != PROTO_UDP || fragmented || !(dst == self.addr || dst == u32::MAX) {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
            return ctx.drop(pkt, DropReason::Runt);
        };
        let ulen = usize::from(udp.len());
        let Some(body) = ulen
            .checked_sub(udp::HEADER_LEN)
            .and_then(|n| udp.payload().get(..n))
        else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        if udp.dst_port() != SERVER_PORT {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        let Some(req) = parse_request(body) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        self.dhcp(req, pkt, ctx);
    }

    fn dhcp(&mut self, req: Request, pkt: Packet, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if req.giaddr != 0 {
            self.stats.relayed.add(1);
        }
        let Some(s) = self.select(&req) else {
            return ctx.drop(pkt, DropReason::NoSubnet);
        };
        let key = req.key();
        let reply = match DhcpMessageType::from(req.msg) {
            DhcpMessageType::Discover => {
                self.stats.discovers.add(1);
                match self.allocate(s, &req, &key, now) {
                    Some(ip) => {
                        self.bind(s, &req, key, ip, false, now);
                        self.stats.offers.add(1);
                        Some((DhcpMessageType::Offer, ip))
                    }
                    None => {
                        self.stats.pool_exhausted.add(1);
                        if let Some(held_back) = self.may_warn(now) {
                            tracing::warn!(
                                server = %self.cfg.address,
                                subnet = %self.subnets[s].cfg.network,
                                client = %req.chaddr,
                                held_back,
                                "DHCP pool exhausted: no address to offer"
                            );
                        }
                        return ctx.drop(pkt, DropReason::PoolExhausted);
                    }
                }
            }
            DhcpMessageType::Request => {
                self.stats.requests.add(1);
                self.request(s, &req, key, now)
            }
            DhcpMessageType::Release => {
                self.stats.releases.add(1);
                if req.server_id == Some(self.addr)
                    && self.by_client.get(&key) == Some(&req.ciaddr)
                    && self.forget(&key)
                {
                    self.publish(now);
                }
                None
            }
            DhcpMessageType::Decline => {
                self.stats.declines.add(1);
                if let Some(ip) = req.requested.filter(|_| req.server_id == Some(self.addr)) {
                    if self.by_client.get(&key) == Some(&ip) {
                        let bound = self.forget(&key);
                        self.declined.insert(ip, now.plus(DECLINE_HOLD));
                        if let Some(held_back) = self.may_warn(now) {
                            tracing::warn!(address = %Ipv4Addr::from(ip), held_back, "DHCP address declined by its client: in use?");
                        }
                        if bound {
                            self.publish(now);
                        }
                    }
                }
                None
            }
            DhcpMessageType::Inform => {
                self.stats.informs.add(1);
                Some((DhcpMessageType::Ack, 0))
            }
            _ => {
                self.stats.ignored.add(1);
                return ctx.drop(pkt, DropReason::NotForUs);
            }
        };
        match reply {
            None => ctx.consume(pkt),
            Some((msg, yiaddr)) => {
                match msg {
                    DhcpMessageType::Ack => self.stats.acks.add(1),
                    DhcpMessageType::Nak => self.stats.naks.add(1),
                    _ => {}
                }
                let inform = req.msg == u8::from(DhcpMessageType::Inform);
                self.send(s, &req, (msg, yiaddr, inform), pkt, ctx);
            }
        }
    }

    fn request(
        &mut self,
        s: usize,
        req: &Request,
        key: ClientKey,
        now: Timestamp,
    ) -> Option<(DhcpMessageType, u32)> {
        let nak = Some((DhcpMessageType::Nak, 0));
        if let Some(sid) = req.server_id {
            if sid != self.addr {
                // The client took another server's offer.
                if self
                    .bindings
                    .get(self.by_client.get(&key)?)
                    .is_some_and(|b| !b.bound)
                {
                    self.forget(&key);
                }
                self.stats.ignored.add(1);
                return None;
            }
            // SELECTING: the address we offered.
            let ip = req.requested.or((req.ciaddr != 0).then_some(req.ciaddr))?;
            if self.by_client.get(&key) == Some(&ip) && self.free_for(s, ip, &key, req.chaddr, now)
            {
                return Some(self.ack(s, req, key, ip, now));
            }
            return nak;
        }
        let ip = match (req.requested, req.ciaddr) {
            (Some(ip), _) => ip,         // INIT-REBOOT
            (None, ip) if ip != 0 => ip, // RENEWING or REBINDING
            _ => return nak,
        };
        if !self.subnets[s].contains(ip) {
            return nak;
        }
        let reserved = self.reservation_in(s, req.chaddr);
        if reserved.is_some_and(|r| r != ip) || !self.free_for(s, ip, &key, req.chaddr, now) {
            return nak;
        }
        Some(self.ack(s, req, key, ip, now))
    }

    fn ack(
        &mut self,
        s: usize,
        req: &Request,
        key: ClientKey,
        ip: u32,
        now: Timestamp,
    ) -> (DhcpMessageType, u32) {
        self.bind(s, req, key, ip, true, now);
        if let Some(b) = self.bindings.get_mut(&ip) {
            b.bound = true;
        }
        self.publish(now);
        (DhcpMessageType::Ack, ip)
    }
}

/// A hostname as nfv keeps it (a client's option 12, a lease file's field): 1 to 63
/// letters, digits, `-`, `_` and `.`, what a lease file, a table and a terminal show as it
/// is. A client's other names are not kept.
pub fn safe_hostname(h: &str) -> bool {
    (1..=63).contains(&h.len())
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Read a BOOTREQUEST; `None` if it is not a well-formed Ethernet DHCP request.
fn parse_request(data: &[u8]) -> Option<Request> {
    let p = DhcpPacket::new_checked(data).ok()?;
    if data[bootp::OP] != bootp::BOOTREQUEST
        || data[1] != 1
        || data[2] != 6
        || p.magic_number() != MAGIC
    {
        return None;
    }
    let mut r = Request {
        msg: 0,
        xid: p.transaction_id(),
        broadcast: ip::read_u16(data, bootp::FLAGS) & bootp::BROADCAST != 0,
        ciaddr: ip::read_u32(data, bootp::CIADDR),
        giaddr: ip::read_u32(data, bootp::GIADDR),
        chaddr: MacAddr([0; 6]),
        client_id: None,
        requested: None,
        server_id: None,
        hostname: None,
        relay_info: None,
    };
    r.chaddr
        .0
        .copy_from_slice(&data[bootp::CHADDR..bootp::CHADDR + 6]);
    let addr = |d: &[u8]| -> Option<u32> { (d.len() == 4).then(|| ip::read_u32(d, 0)) };
    for o in p.options() {
        match o.kind {
            53 if o.data.len() == 1 => r.msg = o.data[0],
            61 if !o.data.is_empty() => r.client_id = Some(o.data.to_vec()),
            50 => r.requested = addr(o.data),
            54 => r.server_id = addr(o.data),
            82 => r.relay_info = Some(o.data.to_vec()),
            12 => {
                r.hostname = std::str::from_utf8(o.data)
                    .ok()
                    .filter(|h| safe_hostname(h))
                    .map(str::to_string)
            }
            _ => {}
        }
    }
    (r.msg != 0).then_some(r)
}

impl Node for DhcpServer {
    fn kind(&self) -> &'static str {
        "dhcp-server"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        for pkt in batch.drain() {
            if input.0 != 0 {
                ctx.drop(pkt, DropReason::Unwired);
            } else {
                self.handle(pkt, ctx);
            }
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !self.neighbors.is_empty() && ctx.now.since(self.last_expire) >= EXPIRE_EVERY {
            self.last_expire = ctx.now;
            self.expire_neighbors(ctx);
        }
        if ctx.now.since(self.last_sweep) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep = ctx.now;
        let now = ctx.now;
        // Offers that were never taken up go; bound leases stay (expired ones too).
        let stale: Vec<u32> = self
            .bindings
            .iter()
            .filter(|(_, b)| !b.bound && b.expires <= now)
            .map(|(&ip, _)| ip)
            .collect();
        for ip in stale {
            if let Some(b) = self.remove_binding(ip) {
                self.by_client.remove(&b.key);
            }
        }
        let ended: Vec<u32> = self
            .declined
            .iter()
            .filter(|(_, &t)| t <= now)
            .map(|(&ip, _)| ip)
            .collect();
        for ip in ended {
            self.declined.remove(&ip);
            if !self.bindings.contains_key(&ip) {
                self.give_back(ip);
            }
        }
        self.update_gauges();
        if self.dirty {
            self.send_leases(now);
        }
    }

    fn show(&self, table: &str, now: Timestamp) -> Option<Table> {
        (table == "leases").then(|| self.leases_table(now))
    }
}

impl Drop for DhcpServer {
    /// Send the changes `tick` has not sent yet.
    fn drop(&mut self) {
        if self.dirty {
            let now = self.last_publish.unwrap_or(Timestamp::ZERO);
            self.send_leases(now);
        }
    }
}

impl DhcpServer {
    /// The `leases` table (see the module documentation).
    fn leases_table(&self, now: Timestamp) -> Table {
        let mut rows: Vec<(u32, Vec<Cell>)> = Vec::with_capacity(self.bindings.len());
        for (&ip, b) in &self.bindings {
            let state = match (b.bound, b.expires > now) {
                (true, true) => "bound",
                (true, false) => "expired",
                (false, _) => "offered",
            };
            rows.push((
                ip,
                vec![
                    show::ip(ip),
                    show::mac(b.mac),
                    b.hostname.clone().into(),
                    state.into(),
                    show::expires_signed_s(now, b.expires),
                ],
            ));
        }
        for (m, r) in &self.cfg.reservations {
            let ip = u32::from(*r);
            if !self.bindings.contains_key(&ip) {
                rows.push((
                    ip,
                    vec![
                        show::ip(ip),
                        show::mac(*m),
                        Cell::None,
                        "reserved".into(),
                        Cell::None,
                    ],
                ));
            }
        }
        for (&ip, &until) in &self.declined {
            if until > now && !self.bindings.contains_key(&ip) {
                rows.push((
                    ip,
                    vec![
                        show::ip(ip),
                        Cell::None,
                        Cell::None,
                        "declined".into(),
                        show::expires_signed_s(now, until),
                    ],
                ));
            }
        }
        rows.sort_by_key(|(ip, _)| *ip);
        let mut t = Table::new(&["ip", "mac", "hostname", "state", "expires_s"]);
        for (_, row) in rows {
            t.push(row);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::reply::{BOOTP_LEN, CLIENT_PORT};
    use super::*;
    use crate::ip::ETHERTYPE_IPV4;
    use crate::wire::Ipv4Packet;
    use nfv_dataplane::testing::Harness;

    pub(super) const SRV_MAC: MacAddr = MacAddr([0x02, 0xd0, 0, 0, 0, 1]);
    pub(super) const POOL: usize = 64;

    pub(super) fn ipa(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    pub(super) fn mac(n: u8) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, n])
    }

    pub(super) fn config() -> DhcpConfig {
        DhcpConfig {
            mac: SRV_MAC,
            address: ipa("10.0.0.2"),
            own: DhcpSubnet {
                network: ipa("10.0.0.0"),
                prefix_len: 24,
                pools: vec![(ipa("10.0.0.100"), ipa("10.0.0.102"))],
                router: Some(ipa("10.0.0.1")),
                dns: vec![ipa("10.0.0.1"), ipa("9.9.9.9")],
                domain: Some("lab.example".into()),
                lease: Duration::from_secs(600),
                renew: None,
                rebind: None,
                options: vec![(42, vec![10, 0, 0, 1])],
            },
            reservations: vec![(mac(9), ipa("10.0.0.50"))],
            offer_hold: Duration::from_secs(30),
            wall_at_zero: 1_700_000_000,
            gateway: None,
            subnets: vec![],
        }
    }

    pub(super) fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s + 10)
    }

    pub(super) struct Msg<'a> {
        pub ty: DhcpMessageType,
        pub mac: MacAddr,
        pub xid: u32,
        pub ciaddr: &'a str,
        pub requested: Option<&'a str>,
        pub server: Option<&'a str>,
        pub broadcast: bool,
        pub dst_ip: &'a str,
        /// A relay's address: the frame comes from it (its MAC [`RELAY_MAC`], UDP port 67).
        pub giaddr: &'a str,
        pub hops: u8,
        /// A Relay Agent Information option (82) the relay added.
        pub relay_info: Option<&'a [u8]>,
    }

    /// The MAC relayed frames come from (the router's).
    pub(super) const RELAY_MAC: MacAddr = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);

    pub(super) fn msg(ty: DhcpMessageType, n: u8) -> Msg<'static> {
        Msg {
            ty,
            mac: mac(n),
            xid: 0x1000 + u32::from(n),
            ciaddr: "0.0.0.0",
            requested: None,
            server: None,
            broadcast: false,
            dst_ip: "255.255.255.255",
            giaddr: "0.0.0.0",
            hops: 0,
            relay_info: None,
        }
    }

    /// A client's frame: Ethernet, IPv4, UDP 68 -> 67, BOOTREQUEST with options (from a
    /// relay, UDP 67 -> 67, when `giaddr` is set).
    pub(super) fn frame(m: &Msg<'_>) -> Vec<u8> {
        let relayed = m.giaddr != "0.0.0.0";
        let mut d = vec![0u8; BOOTP_LEN];
        d[0] = 1;
        d[1] = 1;
        d[2] = 6;
        d[3] = m.hops;
        d[4..8].copy_from_slice(&m.xid.to_be_bytes());
        if m.broadcast {
            d[10] = 0x80;
        }
        d[12..16].copy_from_slice(&ipa(m.ciaddr).octets());
        d[24..28].copy_from_slice(&ipa(m.giaddr).octets());
        d[28..34].copy_from_slice(&m.mac.0);
        d[236..240].copy_from_slice(&MAGIC.to_be_bytes());
        d.extend_from_slice(&[53, 1, u8::from(m.ty)]);
        if let Some(r) = m.requested {
            d.extend_from_slice(&[50, 4]);
            d.extend_from_slice(&ipa(r).octets());
        }
        if let Some(s) = m.server {
            d.extend_from_slice(&[54, 4]);
            d.extend_from_slice(&ipa(s).octets());
        }
        d.extend_from_slice(&[12, 5]);
        d.extend_from_slice(b"alice");
        d.extend_from_slice(&[55, 4, 1, 3, 6, 15]);
        if let Some(info) = m.relay_info {
            d.extend_from_slice(&[82, info.len() as u8]);
            d.extend_from_slice(info);
        }
        d.push(255);
        let src = if relayed {
            ipa(m.giaddr).octets()
        } else {
            ipa(m.ciaddr).octets()
        };
        let dst = ipa(m.dst_ip).octets();
        let dst_mac = if m.dst_ip == "255.255.255.255" {
            MacAddr::BROADCAST
        } else {
            SRV_MAC
        };
        let mut f = Vec::new();
        f.extend_from_slice(&dst_mac.0);
        f.extend_from_slice(if relayed { &RELAY_MAC.0 } else { &m.mac.0 });
        f.extend_from_slice(&[0x08, 0x00]);
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((28 + d.len()) as u16).to_be_bytes());
        h[8] = 64;
        h[9] = 17;
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        ip::set_header_checksum(&mut h);
        f.extend_from_slice(&h);
        f.extend_from_slice(&(if relayed { 67u16 } else { 68 }).to_be_bytes());
        f.extend_from_slice(&67u16.to_be_bytes());
        f.extend_from_slice(&((8 + d.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&d);
        f
    }

    /// What a reply says.
    #[derive(Debug)]
    pub(super) struct Reply {
        pub eth_dst: MacAddr,
        pub ip_src: Ipv4Addr,
        pub ip_dst: Ipv4Addr,
        pub udp_dst: u16,
        pub ciaddr: Ipv4Addr,
        pub yiaddr: Ipv4Addr,
        pub giaddr: Ipv4Addr,
        pub hops: u8,
        pub broadcast: bool,
        pub ty: u8,
        pub options: HashMap<u8, Vec<u8>>,
        /// The option codes in the order sent.
        pub order: Vec<u8>,
    }

    pub(super) fn parse_reply(f: &[u8]) -> Reply {
        assert!(ip::header_checksum_ok(&f[14..34]));
        let udp_len = usize::from(ip::read_u16(f, 38));
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[26..34]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
        pseudo.extend_from_slice(&f[34..34 + udp_len]);
        assert_eq!(ip::sum(&pseudo), 0xffff, "UDP checksum");
        let udp_dst = ip::read_u16(f, 36);
        assert_eq!(ip::read_u16(f, 34), 67);
        assert!(udp_dst == 68 || udp_dst == 67, "to a client or a relay");
        let d = &f[42..34 + udp_len];
        let p = DhcpPacket::new_checked(d).expect("dhcp");
        let options: HashMap<u8, Vec<u8>> =
            p.options().map(|o| (o.kind, o.data.to_vec())).collect();
        let order: Vec<u8> = p.options().map(|o| o.kind).collect();
        let relay_info = options.get(&82).map_or(0, |o| o.len() + 2);
        assert!(
            d.len() + 28 - relay_info <= 576,
            "fits a 576-byte datagram but for a relay's option"
        );
        let mut eth_dst = [0u8; 6];
        eth_dst.copy_from_slice(&f[0..6]);
        Reply {
            eth_dst: MacAddr(eth_dst),
            ip_src: Ipv4Addr::from(ip::read_u32(f, 26)),
            ip_dst: Ipv4Addr::from(ip::read_u32(f, 30)),
            udp_dst,
            ciaddr: Ipv4Addr::from(ip::read_u32(d, 12)),
            yiaddr: Ipv4Addr::from(ip::read_u32(d, 16)),
            giaddr: Ipv4Addr::from(ip::read_u32(d, 24)),
            hops: d[3],
            broadcast: ip::read_u16(d, 10) & 0x8000 != 0,
            ty: options.get(&53).map_or(0, |v| v[0]),
            options,
            order,
        }
    }

    fn server(
        leases: Vec<Lease>,
    ) -> (
        Harness,
        Arc<DhcpStats>,
        crossbeam_channel::Receiver<LeaseUpdate>,
    ) {
        let (tx, rx) = crossbeam_channel::bounded(64);
        let s = DhcpServer::new(config(), leases, Some(tx));
        let stats = s.stats();
        (Harness::new(Box::new(s), 1, POOL), stats, rx)
    }

    pub(super) fn exchange(h: &mut Harness, m: &Msg<'_>, now: Timestamp) -> Option<Reply> {
        h.send(0, &frame(m), now);
        let mut out = h.recv(0);
        assert!(out.len() <= 1);
        out.pop().map(|f| parse_reply(&f))
    }

    /// DISCOVER and REQUEST: the client's bound address.
    fn lease(h: &mut Harness, n: u8, now: Timestamp) -> Ipv4Addr {
        let offer = exchange(h, &msg(DhcpMessageType::Discover, n), now).expect("offer");
        assert_eq!(offer.ty, u8::from(DhcpMessageType::Offer));
        let y = offer.yiaddr.to_string();
        let mut req = msg(DhcpMessageType::Request, n);
        req.requested = Some(&y);
        req.server = Some("10.0.0.2");
        let ack = exchange(h, &req, now).expect("ack");
        assert_eq!(ack.ty, u8::from(DhcpMessageType::Ack));
        assert_eq!(ack.yiaddr, offer.yiaddr);
        ack.yiaddr
    }

    /// An offer read back through the views: Ethernet, IPv4 and UDP headers, both
    /// checksums, and a DHCP message where the UDP length says.
    #[test]
    fn a_reply_reads_back_through_the_views() {
        let (mut h, _, _) = server(vec![]);
        h.send(0, &frame(&msg(DhcpMessageType::Discover, 1)), t(0));
        let out = h.recv(0);
        let [offer] = out.as_slice() else {
            panic!("one offer: {out:?}")
        };
        let eth = EthernetFrame::new_checked(&offer[..]).expect("frame");
        assert_eq!(
            (eth.dst(), eth.src(), eth.ethertype()),
            (mac(1), SRV_MAC, ETHERTYPE_IPV4)
        );
        let iph = Ipv4Packet::new_checked(eth.payload()).expect("ip");
        assert!(iph.verify_checksum());
        assert_eq!(usize::from(iph.total_len()), eth.payload().len());
        assert_eq!(
            (
                iph.header_len(),
                iph.ttl(),
                iph.protocol(),
                iph.flags_frag()
            ),
            (20, 64, PROTO_UDP, 0)
        );
        assert_eq!(iph.src_addr(), u32::from(ipa("10.0.0.2")));
        assert_eq!(iph.dst_addr(), u32::from(ipa("10.0.0.100")));
        let u = UdpPacket::new_checked(iph.payload()).expect("udp");
        assert_ne!(u.checksum(), 0, "a checksum is sent");
        assert!(u.verify_checksum(iph.src_addr(), iph.dst_addr()));
        assert_eq!((u.src_port(), u.dst_port()), (SERVER_PORT, CLIENT_PORT));
        assert_eq!(usize::from(u.len()), iph.payload().len());
        let p = DhcpPacket::new_checked(u.payload()).expect("dhcp");
        assert_eq!(p.your_ip().octets(), ipa("10.0.0.100").octets());
    }

    #[test]
    fn shows_leases_offers_and_reservations() {
        use crate::testframes::{text, Shared};
        let s = Shared::new(DhcpServer::new(config(), vec![], None));
        let mut h = Harness::new(Box::new(s.clone()), 1, POOL);
        assert_eq!(lease(&mut h, 1, t(0)), ipa("10.0.0.100"));
        let offer = exchange(&mut h, &msg(DhcpMessageType::Discover, 2), t(5)).expect("offer");
        assert_eq!(offer.yiaddr, ipa("10.0.0.101"));
        let tbl = s.show("leases", t(10)).expect("leases");
        assert_eq!(tbl.columns, ["ip", "mac", "hostname", "state", "expires_s"]);
        let row = |ip: &str, m: &str, host: Option<&str>, st: &str, x: Option<i64>| {
            vec![
                text(ip),
                text(m),
                host.map_or(Cell::None, text),
                text(st),
                x.map_or(Cell::None, Cell::Signed),
            ]
        };
        assert_eq!(
            tbl.rows,
            vec![
                row("10.0.0.50", "02:00:00:00:00:09", None, "reserved", None),
                row(
                    "10.0.0.100",
                    "02:00:00:00:00:01",
                    Some("alice"),
                    "bound",
                    Some(590)
                ),
                row(
                    "10.0.0.101",
                    "02:00:00:00:00:02",
                    Some("alice"),
                    "offered",
                    Some(25)
                ),
            ]
        );
        // Past its end the lease shows as expired, with the seconds since.
        let tbl = s.show("leases", t(700)).expect("leases");
        assert_eq!(
            tbl.rows[1],
            row(
                "10.0.0.100",
                "02:00:00:00:00:01",
                Some("alice"),
                "expired",
                Some(-100)
            )
        );
        assert_eq!(s.show("arp", t(10)), None);
    }

    #[test]
    fn discover_offer_request_ack_with_every_option() {
        let (mut h, stats, rx) = server(vec![]);
        let offer = exchange(&mut h, &msg(DhcpMessageType::Discover, 1), t(0)).expect("offer");
        assert_eq!(offer.ty, 2);
        assert_eq!(offer.yiaddr, ipa("10.0.0.100"));
        assert_eq!(
            offer.eth_dst,
            mac(1),
            "no broadcast flag: unicast to chaddr"
        );
        assert_eq!(offer.ip_dst, ipa("10.0.0.100"));
        let o = &offer.options;
        assert_eq!(o[&54], vec![10, 0, 0, 2]);
        assert_eq!(o[&51], 600u32.to_be_bytes().to_vec());
        assert_eq!(o[&58], 300u32.to_be_bytes().to_vec());
        assert_eq!(o[&59], 525u32.to_be_bytes().to_vec());
        assert_eq!(o[&1], vec![255, 255, 255, 0]);
        assert_eq!(o[&3], vec![10, 0, 0, 1]);
        assert_eq!(o[&6], vec![10, 0, 0, 1, 9, 9, 9, 9]);
        assert_eq!(o[&15], b"lab.example".to_vec());
        assert_eq!(o[&42], vec![10, 0, 0, 1]);
        // With the broadcast flag, the ACK is broadcast.
        let mut req = msg(DhcpMessageType::Request, 1);
        req.requested = Some("10.0.0.100");
        req.server = Some("10.0.0.2");
        req.broadcast = true;
        let ack = exchange(&mut h, &req, t(1)).expect("ack");
        assert_eq!(ack.ty, 5);
        assert_eq!(ack.eth_dst, MacAddr::BROADCAST);
        assert_eq!(ack.ip_dst, Ipv4Addr::BROADCAST);
        assert_eq!(ack.yiaddr, ipa("10.0.0.100"));
        assert_eq!(
            (
                stats.discovers.get(),
                stats.offers.get(),
                stats.requests.get(),
                stats.acks.get()
            ),
            (1, 1, 1, 1)
        );
        let update = rx.try_recv().expect("lease list sent");
        assert_eq!(update.len(), 1);
        assert_eq!(update[0].ip, ipa("10.0.0.100"));
        assert_eq!(update[0].mac, mac(1));
        assert_eq!(update[0].hostname.as_deref(), Some("alice"));
        assert_eq!(update[0].expires_unix, 1_700_000_000 + 11 + 600);
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn init_reboot_acks_its_own_address_and_naks_others() {
        let (mut h, stats, _rx) = server(vec![]);
        let a = lease(&mut h, 1, t(0));
        let b = lease(&mut h, 2, t(0));
        let own = a.to_string();
        let mut reboot = msg(DhcpMessageType::Request, 1);
        reboot.requested = Some(&own);
        let r = exchange(&mut h, &reboot, t(5)).expect("reply");
        assert_eq!((r.ty, r.yiaddr), (5, a));
        // Client 1 asks for client 2's address: NAK, broadcast.
        let other = b.to_string();
        reboot.requested = Some(&other);
        let r = exchange(&mut h, &reboot, t(6)).expect("reply");
        assert_eq!(r.ty, 6);
        assert_eq!(r.eth_dst, MacAddr::BROADCAST);
        assert_eq!(r.yiaddr, Ipv4Addr::UNSPECIFIED);
        // An address from another subnet (the client moved): NAK.
        reboot.requested = Some("192.168.7.7");
        assert_eq!(exchange(&mut h, &reboot, t(7)).expect("reply").ty, 6);
        assert_eq!(stats.naks.get(), 2);
    }

    #[test]
    fn renew_is_answered_by_unicast_to_ciaddr_and_rebind_too() {
        let (mut h, _stats, _rx) = server(vec![]);
        let a = lease(&mut h, 1, t(0));
        let ci = a.to_string();
        let mut renew = msg(DhcpMessageType::Request, 1);
        renew.ciaddr = &ci;
        renew.dst_ip = "10.0.0.2";
        let r = exchange(&mut h, &renew, t(300)).expect("ack");
        assert_eq!(r.ty, 5);
        assert_eq!((r.eth_dst, r.ip_dst), (mac(1), a));
        assert_eq!((r.ciaddr, r.yiaddr), (a, a));
        let mut rebind = msg(DhcpMessageType::Request, 1);
        rebind.ciaddr = &ci;
        rebind.broadcast = true;
        let r = exchange(&mut h, &rebind, t(530)).expect("ack");
        assert_eq!(
            (r.ty, r.ip_dst),
            (5, a),
            "ciaddr wins over the broadcast flag"
        );
        // Renewing an address that is someone else's: NAK.
        let b = lease(&mut h, 2, t(531)).to_string();
        renew.ciaddr = &b;
        assert_eq!(exchange(&mut h, &renew, t(532)).expect("nak").ty, 6);
    }

    #[test]
    fn release_frees_and_decline_blocks_the_address() {
        let (mut h, stats, _rx) = server(vec![]);
        let a = lease(&mut h, 1, t(0));
        let ci = a.to_string();
        let mut rel = msg(DhcpMessageType::Release, 1);
        rel.ciaddr = &ci;
        rel.server = Some("10.0.0.2");
        rel.dst_ip = "10.0.0.2";
        assert!(
            exchange(&mut h, &rel, t(1)).is_none(),
            "no answer to RELEASE"
        );
        assert_eq!(stats.releases.get(), 1);
        // Free again: the next client gets the first address.
        assert_eq!(lease(&mut h, 2, t(2)), a);
        // Client 2 finds it in use and declines it.
        let mut dec = msg(DhcpMessageType::Decline, 2);
        dec.requested = Some(&ci);
        dec.server = Some("10.0.0.2");
        assert!(exchange(&mut h, &dec, t(3)).is_none());
        assert_eq!(stats.declines.get(), 1);
        let next = lease(&mut h, 2, t(4));
        assert_ne!(next, a, "a declined address is not offered");
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn inform_gets_options_without_a_lease() {
        let (mut h, stats, _rx) = server(vec![]);
        let mut inf = msg(DhcpMessageType::Inform, 7);
        inf.ciaddr = "10.0.0.77";
        let r = exchange(&mut h, &inf, t(0)).expect("ack");
        assert_eq!(r.ty, 5);
        assert_eq!(
            (r.ip_dst, r.ciaddr, r.yiaddr),
            (ipa("10.0.0.77"), ipa("10.0.0.77"), Ipv4Addr::UNSPECIFIED)
        );
        assert!(!r.options.contains_key(&51), "no lease time");
        assert_eq!(r.options[&3], vec![10, 0, 0, 1]);
        assert_eq!(stats.informs.get(), 1);
    }

    #[test]
    fn reservations_go_to_their_mac_only() {
        let (mut h, _stats, _rx) = server(vec![]);
        assert_eq!(lease(&mut h, 9, t(0)), ipa("10.0.0.50"));
        let mut ask = msg(DhcpMessageType::Discover, 1);
        ask.requested = Some("10.0.0.50");
        let r = exchange(&mut h, &ask, t(1)).expect("offer");
        assert_eq!(
            r.yiaddr,
            ipa("10.0.0.100"),
            "the reserved address is not given away"
        );
    }

    #[test]
    fn an_exhausted_pool_makes_no_offer_and_counts() {
        let mut cfg = config();
        cfg.own.pools = vec![(ipa("10.0.0.100"), ipa("10.0.0.101"))];
        let s = DhcpServer::new(cfg, vec![], None);
        let stats = s.stats();
        assert_eq!((stats.leases_bound.get(), stats.pool_free.get()), (0, 2));
        let mut h = Harness::new(Box::new(s), 1, POOL);
        let a = lease(&mut h, 1, t(0));
        let b = lease(&mut h, 2, t(100));
        assert_ne!(a, b);
        h.tick(t(102));
        assert_eq!((stats.leases_bound.get(), stats.pool_free.get()), (2, 0));
        assert_eq!(stats.leases_offered.get(), 0);
        assert!(exchange(&mut h, &msg(DhcpMessageType::Discover, 3), t(101)).is_none());
        assert_eq!(stats.pool_exhausted.get(), 1);
        assert_eq!(h.node_drops(DropReason::PoolExhausted), 1);
        // Once client 1's lease has run out, client 3 can have it.
        let r = exchange(&mut h, &msg(DhcpMessageType::Discover, 3), t(601)).expect("offer");
        assert_eq!(r.yiaddr, a);
    }

    #[test]
    fn a_discover_flood_from_random_macs_costs_little_per_message_and_leaves_room() {
        // A 1,000-address pool in a /16, offers held 30 s.
        let mut cfg = config();
        cfg.own.prefix_len = 16;
        cfg.own.pools = vec![(ipa("10.0.1.0"), ipa("10.0.4.231"))];
        let s = DhcpServer::new(cfg, vec![], None);
        let (stats, examined) = (s.stats(), Arc::clone(&s.examined));
        let mut h = Harness::new(Box::new(s), 1, POOL);
        // 100,000 DISCOVERs from random MACs, 1,000 a second for 100 s.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut offers = 0u64;
        for i in 0..100_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_be_bytes();
            let mut m = msg(DhcpMessageType::Discover, 0);
            m.mac = MacAddr([0x12, b[1], b[2], b[3], b[4], b[5]]);
            m.xid = x as u32;
            let now = Timestamp::from_secs(10).plus(Duration::from_millis(i));
            if i % 1000 == 0 {
                h.tick(now);
            }
            h.send(0, &frame(&m), now);
            offers += h.recv(0).len() as u64;
            assert!(
                i % 1000 != 999 || examined.get() <= 4 * (i + 1),
                "{} addresses examined for {} messages",
                examined.get(),
                i + 1
            );
        }
        assert_eq!(stats.discovers.get(), 100_000);
        assert_eq!(stats.offers.get(), offers);
        // Offers expire after their hold: the flood got more than the pool's worth.
        assert!(offers > 1000, "{offers} offers");
        assert_eq!(stats.pool_exhausted.get(), 100_000 - offers);
        // Once the hold has passed, a real client still gets an address.
        let later = Timestamp::from_secs(10 + 100 + 31);
        h.tick(later);
        let a = lease(&mut h, 1, later);
        assert!(a >= ipa("10.0.1.0") && a <= ipa("10.0.4.231"), "{a}");
    }

    #[test]
    fn a_burst_of_acks_sends_one_lease_list_then_the_rest_from_tick() {
        let mut cfg = config();
        cfg.own.pools = vec![(ipa("10.0.0.100"), ipa("10.0.0.200"))];
        let (tx, rx) = crossbeam_channel::bounded(64);
        let mut h = Harness::new(Box::new(DhcpServer::new(cfg, vec![], Some(tx))), 1, POOL);
        // The first ACK after a quiet spell is written at once.
        lease(&mut h, 1, t(0));
        let first: Vec<Vec<Lease>> = rx.try_iter().collect();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].len(), 1);
        // 49 more within the second: no list rebuilt per ACK...
        for n in 2..=50 {
            lease(&mut h, n, t(0));
        }
        assert_eq!(rx.try_iter().count(), 0, "one lease list a second at most");
        // ...the next tick sends them all in one.
        h.tick(t(1));
        let rest: Vec<Vec<Lease>> = rx.try_iter().collect();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].len(), 50);
        h.tick(t(2));
        assert_eq!(rx.try_iter().count(), 0, "nothing new: nothing sent");
    }

    #[test]
    fn an_offer_not_taken_up_is_released_after_its_hold() {
        let mut cfg = config();
        cfg.own.pools = vec![(ipa("10.0.0.100"), ipa("10.0.0.100"))];
        let mut h = Harness::new(Box::new(DhcpServer::new(cfg, vec![], None)), 1, POOL);
        let r = exchange(&mut h, &msg(DhcpMessageType::Discover, 1), t(0)).expect("offer");
        assert_eq!(r.yiaddr, ipa("10.0.0.100"));
        assert!(exchange(&mut h, &msg(DhcpMessageType::Discover, 2), t(10)).is_none());
        h.tick(t(31));
        let r = exchange(&mut h, &msg(DhcpMessageType::Discover, 2), t(31)).expect("offer");
        assert_eq!(r.yiaddr, ipa("10.0.0.100"));
    }

    #[test]
    fn another_servers_id_withdraws_our_offer() {
        let (mut h, stats, _rx) = server(vec![]);
        exchange(&mut h, &msg(DhcpMessageType::Discover, 1), t(0)).expect("offer");
        let mut req = msg(DhcpMessageType::Request, 1);
        req.requested = Some("10.0.0.200");
        req.server = Some("10.0.0.3");
        assert!(exchange(&mut h, &req, t(1)).is_none());
        assert_eq!(stats.ignored.get(), 1);
        // The address is free for the next client at once.
        let r = exchange(&mut h, &msg(DhcpMessageType::Discover, 2), t(2)).expect("offer");
        assert_eq!(r.yiaddr, ipa("10.0.0.100"));
    }

    #[test]
    fn leases_survive_a_restart_and_renewals_keep_their_address() {
        let (mut h, _stats, rx) = server(vec![]);
        let a = lease(&mut h, 1, t(0));
        let saved = rx.try_iter().last().expect("an update");
        // A new server (a restarted nfv: its clock starts again, a minute later in wall
        // time) from the saved list.
        let mut cfg = config();
        cfg.wall_at_zero += 60;
        let mut h2 = Harness::new(Box::new(DhcpServer::new(cfg, saved, None)), 1, POOL);
        // Another client does not get client 1's address...
        let r = exchange(&mut h2, &msg(DhcpMessageType::Discover, 2), t(0)).expect("offer");
        assert_ne!(r.yiaddr, a);
        // ...and client 1's renewal is acknowledged with it.
        let ci = a.to_string();
        let mut renew = msg(DhcpMessageType::Request, 1);
        renew.ciaddr = &ci;
        renew.dst_ip = "10.0.0.2";
        let r = exchange(&mut h2, &renew, t(1)).expect("ack");
        assert_eq!((r.ty, r.yiaddr), (5, a));
    }

    #[test]
    fn answers_arp_and_ping_for_its_address() {
        let (mut h, _stats, _rx) = server(vec![]);
        let req = arp::request(
            mac(1),
            u32::from(ipa("10.0.0.100")),
            u32::from(ipa("10.0.0.2")),
        );
        h.send(0, &req, t(0));
        let out = h.recv(0);
        assert_eq!(out.len(), 1);
        let rep = arp::parse(&out[0]).expect("arp");
        assert_eq!((rep.op, rep.sha), (arp::REPLY, SRV_MAC));
        // For another address: dropped.
        let req = arp::request(
            mac(1),
            u32::from(ipa("10.0.0.100")),
            u32::from(ipa("10.0.0.1")),
        );
        h.send(0, &req, t(0));
        assert!(h.recv(0).is_empty());
        assert_eq!(h.node_drops(DropReason::NotForUs), 1);
        // Ping.
        let mut f = Vec::new();
        f.extend_from_slice(&SRV_MAC.0);
        f.extend_from_slice(&mac(1).0);
        f.extend_from_slice(&[0x08, 0x00]);
        let mut hd = [0u8; 20];
        hd[0] = 0x45;
        hd[2..4].copy_from_slice(&28u16.to_be_bytes());
        hd[8] = 64;
        hd[9] = 1;
        hd[12..16].copy_from_slice(&[10, 0, 0, 100]);
        hd[16..20].copy_from_slice(&[10, 0, 0, 2]);
        ip::set_header_checksum(&mut hd);
        f.extend_from_slice(&hd);
        let mut icmp_msg = [8u8, 0, 0, 0, 0, 1, 0, 1];
        let c = ip::checksum(&icmp_msg);
        icmp_msg[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&icmp_msg);
        h.send(0, &f, t(0));
        let out = h.recv(0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0][34], 0, "echo reply");
    }

    #[test]
    fn malformed_frames_are_dropped_with_reasons() {
        let (mut h, stats, _rx) = server(vec![]);
        let good = frame(&msg(DhcpMessageType::Discover, 1));
        // Cut short: the IP header's total length runs past the frame.
        h.send(0, &good[..40], t(0));
        let mut bad_udp_len = good.clone();
        bad_udp_len[38..40].copy_from_slice(&2000u16.to_be_bytes());
        h.send(0, &bad_udp_len, t(0));
        let mut bad_magic = good.clone();
        bad_magic[42 + 236] = 0;
        h.send(0, &bad_magic, t(0));
        let mut no_type = good.clone();
        no_type[42 + 240] = 0; // option 53 becomes padding
        h.send(0, &no_type, t(0));
        let mut short_bootp = good.clone();
        short_bootp.truncate(42 + 100);
        let ip_len = (short_bootp.len() - 14) as u16;
        short_bootp[16..18].copy_from_slice(&ip_len.to_be_bytes());
        short_bootp[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
        let mut hd = [0u8; 20];
        hd.copy_from_slice(&short_bootp[14..34]);
        ip::set_header_checksum(&mut hd);
        short_bootp[14..34].copy_from_slice(&hd);
        h.send(0, &short_bootp, t(0));
        assert_eq!(h.node_drops(DropReason::BadHeader), 5);
        let mut bad_sum = good.clone();
        bad_sum[24] ^= 1;
        h.send(0, &bad_sum, t(0));
        assert_eq!(h.node_drops(DropReason::BadChecksum), 1);
        let mut other_port = good.clone();
        other_port[36..38].copy_from_slice(&53u16.to_be_bytes());
        h.send(0, &other_port, t(0));
        assert_eq!(h.node_drops(DropReason::NotForUs), 1);
        // Relayed from a subnet the server does not serve.
        let mut relayed = good.clone();
        relayed[42 + 24] = 10;
        relayed[42 + 25] = 9;
        h.send(0, &relayed, t(0));
        assert_eq!(h.node_drops(DropReason::NoSubnet), 1);
        assert_eq!(stats.relayed.get(), 1);
        assert_eq!(stats.ignored.get(), 0);
        assert!(h.recv(0).is_empty());
        assert_eq!(stats.offers.get(), 0);
        assert_eq!(h.pool().available(), POOL);
    }
    /// A client's hostname is kept only if it is safe to write to a lease file and show:
    /// escape sequences, spaces, shell characters or a name too long are dropped.
    #[test]
    fn only_safe_hostnames_are_kept() {
        let msg = |name: &[u8]| {
            let mut d = vec![0u8; 240];
            d[0] = 1;
            d[1] = 1;
            d[2] = 6;
            d[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
            d[236..240].copy_from_slice(&MAGIC.to_be_bytes());
            d.extend_from_slice(&[53, 1, 1, 12, name.len() as u8]);
            d.extend_from_slice(name);
            d.push(255);
            d
        };
        let name = |n: &[u8]| parse_request(&msg(n)).and_then(|r| r.hostname);
        assert_eq!(name(b"alice-2.lab").as_deref(), Some("alice-2.lab"));
        for bad in [&b"\x1b[31mred"[..], b"a b", b"x;rm", b"", &[b'a'; 64]] {
            assert_eq!(name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn warnings_are_logged_at_most_once_per_ten_seconds() {
        let mut d = DhcpServer::new(config(), vec![], None);
        let t = |s: u64| Timestamp(s * 1_000_000_000 + 1);
        assert_eq!(d.may_warn(t(0)), Some(0));
        for s in 0..10 {
            assert_eq!(d.may_warn(t(s)), None);
        }
        assert_eq!(d.may_warn(t(10)), Some(10), "the ten held back");
        assert_eq!(d.may_warn(t(11)), None);
    }
}

#[cfg(test)]
mod relay_tests;
