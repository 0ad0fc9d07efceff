//! A router's settings: what the topology file says, checked.
//!
//! ```yaml
//! functions:
//!   gw:
//!     kind: router
//!     interfaces:                    # each one is a gate, linked as gw.lan, gw.wan
//!       lan: { address: 192.168.1.1/24 }            # also `mac`, `mtu` (default 1500)
//!       wan: { address: [203.0.113.2/24, 2001:db8:ff::2/64] }   # IPv6 too; `ra`: below
//!     routes:                        # static routes; the gateway is in a connected subnet
//!       - { to: 0.0.0.0/0, via: 203.0.113.1 }
//!       - { to: "::/0", via: 2001:db8:ff::1 }  # quoted: YAML reads a leading `:` as syntax
//!     routes_file: table.txt         # more routes, one `PREFIX/LEN GATEWAY` a line (# comments)
//!     neighbors: { 203.0.113.1: 02:00:00:00:00:01 }  # static ARP/ND entries (optional)
//!     arp_timeout: 5m                # learned ARP entries live this long (default 5m)
//!     arp_queue: 16                  # packets waiting per unresolved next hop (default 16)
//!     icmp_rate: 100                 # ICMP errors a second, and burst (default 100; 0: none)
//! ```
//!
//! An interface with `dhcp_relay: [10.0.9.2, ...]` relays DHCP (like `ip helper-address`):
//! client broadcasts to UDP port 67 arriving on it go by unicast to each server, and the
//! servers' replies back to its clients ([`relay`](super::relay)). It needs an IPv4
//! address (the relayed requests' `giaddr`); each server is a unicast address the router
//! has a route to, not its own.
//!
//! An interface's `address` is one address or a list: at most one IPv4 address, and IPv6
//! addresses as many as needed (its link-local address is derived from its MAC). Router
//! advertisements (`ra`) are described in [`config6`](super::config6).
//!
//! The routes file is read when the topology is loaded, relative to the topology file
//! ([`Report::path`]); its problems name its own lines ([`Report::error_in`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use ipnetwork::{Ipv4Network, Ipv6Network};
use nfv_dataplane::MacAddr;
use serde::Deserialize;

use super::config6::{self, RaSpec, RawRa};
use super::{NeighborConfig, Route, Route6, Router, RouterConfig, RouterInterface};
use crate::kind::checks::{host_cidr, ipv4, mtu, unicast_mac, valid_name};
use crate::kind::schema::{
    duration_or, fmt_duration, parse_prefix, OneOrMany, Ordered, RawDuration,
};
use crate::kind::{self, derived_mac, BuildContext, Built, Counting, Kind, Report, Spec, Wiring};

/// A router interface as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    address: Option<OneOrMany>,
    mac: Option<String>,
    mtu: Option<u32>,
    ra: Option<RawRa>,
    dhcp_relay: Option<OneOrMany>,
}

/// A static route as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    to: Option<String>,
    via: Option<String>,
}

/// The keys as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    interfaces: Ordered<RawInterface>,
    routes: Option<Vec<RawRoute>>,
    routes_file: Option<String>,
    #[serde(default)]
    neighbors: Ordered<String>,
    arp_timeout: Option<RawDuration>,
    arp_queue: Option<u64>,
    icmp_rate: Option<u64>,
}

/// The keys a router takes.
pub(super) const KEYS: &[&str] = &[
    "interfaces",
    "routes",
    "routes_file",
    "neighbors",
    "arp_timeout",
    "arp_queue",
    "icmp_rate",
];

/// A router's checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSpec {
    /// Interfaces, in file order (gate order).
    pub interfaces: Vec<InterfaceSpec>,
    /// Static IPv4 routes, in file order, those of the routes file after those of `routes`.
    pub routes: Vec<StaticRoute>,
    /// Static IPv6 routes, in the same order.
    pub routes6: Vec<StaticRoute6>,
    /// Static ARP entries.
    pub neighbors: Vec<(Ipv4Addr, MacAddr)>,
    /// Static IPv6 neighbours.
    pub neighbors6: Vec<(Ipv6Addr, MacAddr)>,
    /// Lifetime of learned ARP entries.
    pub arp_timeout: Duration,
    /// Packets that may wait for one unresolved next hop.
    pub arp_queue: usize,
    /// ICMP errors a second (and burst).
    pub icmp_rate: u32,
}

/// A router interface's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Its name.
    pub name: String,
    /// IPv4 address and subnet, if it has one.
    pub address: Option<Ipv4Network>,
    /// IPv6 addresses and their prefixes.
    pub addresses6: Vec<Ipv6Network>,
    /// Router advertisements, if sent.
    pub ra: Option<RaSpec>,
    /// MAC address; derived from the names ([`Spec::complete`]) when not given.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: u16,
    /// A NAT masquerades to its address (the cross-kind hook [`Spec::masqueraded_on`]).
    pub nat_outside: bool,
    /// DHCP servers the interface relays its clients' requests to.
    pub dhcp_relay: Vec<Ipv4Addr>,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination prefix (host bits zero).
    pub to: Ipv4Network,
    /// Gateway.
    pub via: Ipv4Addr,
}

/// A static IPv6 route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute6 {
    /// Destination prefix (host bits zero).
    pub to: Ipv6Network,
    /// Gateway.
    pub via: Ipv6Addr,
}

/// A route of either family, as a line of a routes file or a `routes` item gives it.
enum AnyRoute {
    V4(StaticRoute),
    V6(StaticRoute6),
}

impl RouterSpec {
    /// Read and check `text`, reporting every problem.
    pub fn load(text: &str, report: &mut dyn Report) -> Option<RouterSpec> {
        let raw: Raw = kind::settings(text, report)?;
        let mut r = Counting::new(report);
        let spec = check(&mut r, &raw);
        (r.errors == 0).then_some(spec)
    }

    /// The node's configuration: an interface without a MAC gets the one derived from the
    /// names `at` gives (as [`Spec::complete`] does).
    pub fn config(&self, at: &BuildContext<'_>) -> RouterConfig {
        RouterConfig {
            interfaces: self
                .interfaces
                .iter()
                .map(|i| RouterInterface {
                    name: i.name.clone(),
                    mac: i
                        .mac
                        .unwrap_or_else(|| derived_mac(&[at.topology, at.function, &i.name])),
                    address: i.address.map(|a| (a.ip(), a.prefix())),
                    addresses6: i.addresses6.iter().map(|a| (a.ip(), a.prefix())).collect(),
                    ra: i.ra.clone(),
                    mtu: i.mtu,
                    nat_outside: i.nat_outside,
                    dhcp_relay: i.dhcp_relay.clone(),
                })
                .collect(),
            routes: self
                .routes
                .iter()
                .map(|rt| Route {
                    prefix: rt.to.network(),
                    len: rt.to.prefix(),
                    via: rt.via,
                })
                .collect(),
            routes6: self
                .routes6
                .iter()
                .map(|rt| Route6 {
                    prefix: rt.to.network(),
                    len: rt.to.prefix(),
                    via: rt.via,
                })
                .collect(),
            neighbors: self.neighbors.clone(),
            neighbors6: self.neighbors6.clone(),
            arp: NeighborConfig {
                timeout: self.arp_timeout,
                queue_len: self.arp_queue,
                ..NeighborConfig::default()
            },
            icmp_rate: self.icmp_rate,
        }
    }
}

fn check(r: &mut Counting<'_>, f: &Raw) -> RouterSpec {
    let mut interfaces: Vec<InterfaceSpec> = Vec::new();
    let mut ras: Vec<Option<Option<RaSpec>>> = Vec::new();
    // Each interface's relay servers with their keys, checked against routes at the end.
    let mut relays: Vec<Vec<(String, Ipv4Addr)>> = Vec::new();
    if f.interfaces.0.is_empty() {
        r.error(
            "interfaces",
            "missing: a router needs `interfaces`, like `interfaces: { lan: { address: 10.0.0.1/24 } }`".into(),
        );
    }
    for (name, i) in &f.interfaces.0 {
        let ikey = format!("interfaces.{name}");
        if !valid_name(name) {
            r.error(
                &ikey,
                format!("`{name}` is not a valid name: expected letters, digits, `_` and `-`"),
            );
        }
        let akey = format!("{ikey}.address");
        let Some(list) = i.address.as_ref().filter(|l| !l.items.is_empty()) else {
            r.error(
                &akey,
                "missing: a router interface needs an `address`, like 10.0.0.1/24 or 2001:db8::1/64".into(),
            );
            continue;
        };
        let mut address: Option<Ipv4Network> = None;
        let mut addresses6: Vec<Ipv6Network> = Vec::new();
        for (n, a) in list.items.iter().enumerate() {
            let key = list.key(&akey, n);
            if config6::is_v6(a) {
                match config6::host_cidr6(a) {
                    Ok(net) => {
                        let clash = interfaces
                            .iter()
                            .flat_map(|o| o.addresses6.iter().map(move |x| (o, x)))
                            .chain(addresses6.iter().map(|x| (&DUMMY, x)))
                            .find(|(_, x)| x.contains(net.network()) || net.contains(x.network()));
                        match clash {
                            Some((o, x)) if !std::ptr::eq(o, &DUMMY) => r.error(
                                &key,
                                format!("prefix {}/{} overlaps interface `{}` ({x}): each interface needs its own prefixes", net.network(), net.prefix(), o.name),
                            ),
                            Some((_, x)) => r.error(
                                &key,
                                format!("prefix {}/{} overlaps this interface's {x}", net.network(), net.prefix()),
                            ),
                            None => addresses6.push(net),
                        }
                    }
                    Err(m) => r.error(&key, m),
                }
                continue;
            }
            let Some(net) = host_cidr(r, &key, a) else {
                continue;
            };
            if address.is_some() {
                r.error(
                    &key,
                    "an interface has one IPv4 address (IPv6 ones as many as needed)".into(),
                );
                continue;
            }
            if let Some((other, o)) = interfaces.iter().find_map(|o| {
                o.address
                    .filter(|x| x.contains(net.network()) || net.contains(x.network()))
                    .map(|x| (o, x))
            }) {
                r.error(
                    &key,
                    format!(
                        "subnet {}/{} overlaps interface `{}` ({}): each interface needs its own subnet",
                        net.network(),
                        net.prefix(),
                        other.name,
                        o
                    ),
                );
                continue;
            }
            address = Some(net);
        }
        let mac = i
            .mac
            .as_deref()
            .and_then(|m| unicast_mac(r, &format!("{ikey}.mac"), m));
        let mtu = mtu(r, &format!("{ikey}.mtu"), i.mtu);
        if !addresses6.is_empty() && mtu < 1280 {
            r.error(
                &format!("{ikey}.mtu"),
                format!("{mtu} is below 1280, the least an IPv6 link carries (RFC 8200)"),
            );
        }
        ras.push(config6::ra(r, &format!("{ikey}.ra"), i.ra.as_ref()));
        relays.push(relay_servers(r, &ikey, i.dhcp_relay.as_ref(), address));
        interfaces.push(InterfaceSpec {
            name: name.clone(),
            address,
            addresses6,
            ra: None,
            mac,
            mtu,
            nat_outside: false,
            dhcp_relay: Vec::new(),
        });
    }
    let mut routes: Vec<StaticRoute> = Vec::new();
    let mut routes6: Vec<StaticRoute6> = Vec::new();
    let mut seen: HashSet<(IpAddr, u8)> = HashSet::new();
    for (n, rt) in f.routes.iter().flatten().enumerate() {
        let rkey = format!("routes[{n}]");
        let (Some(to), Some(via)) = (rt.to.as_deref(), rt.via.as_deref()) else {
            if rt.to.is_none() {
                r.error(
                    &format!("{rkey}.to"),
                    "missing: a route needs `to`, a prefix like 0.0.0.0/0 or ::/0".into(),
                );
            }
            if rt.via.is_none() {
                r.error(
                    &format!("{rkey}.via"),
                    "missing: a route needs `via`, the gateway's address".into(),
                );
            }
            continue;
        };
        match route(to, via, &interfaces) {
            Ok(rt) => {
                let (net, len) = rt.prefix();
                if !seen.insert((net, len)) {
                    let first = r.absolute(&format!("routes[{}]", first_route(f, net, len)));
                    r.error(
                        &format!("{rkey}.to"),
                        format!("a route to {net}/{len} is already given at {first}"),
                    );
                    continue;
                }
                match rt {
                    AnyRoute::V4(rt) => routes.push(rt),
                    AnyRoute::V6(rt) => routes6.push(rt),
                }
            }
            Err((field, m)) => r.error(&format!("{rkey}.{field}"), m),
        }
    }
    if let Some(file) = &f.routes_file {
        let path = r.path(file);
        routes_file(
            r,
            &path,
            &interfaces,
            &mut seen,
            (&mut routes, &mut routes6),
        );
    }
    // An interface advertises by default when hosts could configure themselves from it
    // (it has a /64) and no gateway of ours lies on it (it does not face other routers).
    for (i, ra) in interfaces.iter_mut().zip(ras) {
        i.ra = match ra {
            Some(explicit) => explicit,
            None => {
                let slaac = i.addresses6.iter().any(|a| a.prefix() == 64);
                let faces_routers = routes6
                    .iter()
                    .any(|rt| i.addresses6.iter().any(|a| a.contains(rt.via)));
                (slaac && !faces_routers).then(RaSpec::default)
            }
        };
    }
    let mut neighbors = Vec::new();
    let mut neighbors6 = Vec::new();
    for (ip, mac) in &f.neighbors.0 {
        let nkey = format!("neighbors.{ip}");
        if config6::is_v6(ip) {
            let Ok(addr) = ip.parse::<Ipv6Addr>() else {
                r.error(&nkey, format!("`{ip}` is not an IPv6 address"));
                continue;
            };
            if !host_on6(&interfaces, addr) {
                r.error(
                    &nkey,
                    format!("{addr} is not another host in one of the router's IPv6 prefixes"),
                );
                continue;
            }
            if let Some(m) = unicast_mac(r, &nkey, mac) {
                neighbors6.push((addr, m));
            }
            continue;
        }
        let Some(addr) = ipv4(r, &nkey, ip) else {
            continue;
        };
        if !host_on(&interfaces, addr) {
            r.error(
                &nkey,
                format!("{addr} is not another host in one of the router's interface subnets"),
            );
            continue;
        }
        if let Some(m) = unicast_mac(r, &nkey, mac) {
            neighbors.push((addr, m));
        }
    }
    let found: Vec<Vec<Ipv4Addr>> = relays
        .into_iter()
        .map(|servers| {
            servers
                .into_iter()
                .filter(|(key, ip)| match relay_route(*ip, &interfaces, &routes) {
                    Ok(()) => true,
                    Err(m) => {
                        r.error(key, m);
                        false
                    }
                })
                .map(|(_, ip)| ip)
                .collect()
        })
        .collect();
    for (i, servers) in interfaces.iter_mut().zip(found) {
        i.dhcp_relay = servers;
    }
    let arp_timeout = duration_or(
        r,
        "arp_timeout",
        f.arp_timeout.as_ref(),
        Duration::from_secs(300),
    );
    let arp_queue = match f.arp_queue {
        None => 16,
        Some(n) if (1..=4096).contains(&n) => n as usize,
        Some(n) => {
            r.error(
                "arp_queue",
                format!("{n} is out of range: expected 1 to 4096"),
            );
            16
        }
    };
    let icmp_rate = match f.icmp_rate {
        None => 100,
        Some(n) if n <= 1_000_000 => n as u32,
        Some(n) => {
            r.error(
                "icmp_rate",
                format!("{n} is out of range: expected 0 to 1000000 a second"),
            );
            100
        }
    };
    RouterSpec {
        interfaces,
        routes,
        routes6,
        neighbors,
        neighbors6,
        arp_timeout,
        arp_queue,
        icmp_rate,
    }
}

/// Most DHCP servers one interface relays to.
const MAX_RELAY_SERVERS: usize = 8;

/// An interface's `dhcp_relay` servers as written, with the key of each: unicast IPv4
/// addresses, no one twice, on an interface that has an IPv4 address (`address`) for the
/// relayed requests' `giaddr`.
fn relay_servers(
    r: &mut Counting<'_>,
    ikey: &str,
    list: Option<&OneOrMany>,
    address: Option<Ipv4Network>,
) -> Vec<(String, Ipv4Addr)> {
    let Some(list) = list else {
        return Vec::new();
    };
    let key = format!("{ikey}.dhcp_relay");
    if address.is_none() {
        r.error(
            &key,
            "this interface has no IPv4 address: a DHCP relay gives its own as the requests' giaddr, where the servers send their replies".into(),
        );
        return Vec::new();
    }
    if list.items.is_empty() {
        r.error(&key, "the list of DHCP servers is empty".into());
    }
    if list.items.len() > MAX_RELAY_SERVERS {
        r.error(
            &key,
            format!(
                "{} servers: an interface relays to at most {MAX_RELAY_SERVERS}",
                list.items.len()
            ),
        );
        return Vec::new();
    }
    let mut out: Vec<(String, Ipv4Addr)> = Vec::new();
    for (n, a) in list.items.iter().enumerate() {
        let k = list.key(&key, n);
        let Some(ip) = ipv4(r, &k, a) else {
            continue;
        };
        if ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_loopback()
            || u32::from(ip) >> 28 == 0xf
        {
            r.error(
                &k,
                format!("{ip} is not a unicast address: a DHCP relay sends to each server's own address"),
            );
            continue;
        }
        if out.iter().any(|(_, o)| *o == ip) {
            r.error(&k, format!("{ip} is given twice"));
            continue;
        }
        out.push((k, ip));
    }
    out
}

/// Whether the router can relay to `server`: not one of its own addresses or a connected
/// subnet's network or broadcast address, and in a connected subnet or a static route.
fn relay_route(
    server: Ipv4Addr,
    interfaces: &[InterfaceSpec],
    routes: &[StaticRoute],
) -> Result<(), String> {
    let connected = interfaces.iter().filter_map(|i| i.address);
    for a in connected.clone() {
        if a.ip() == server {
            return Err(format!(
                "{server} is the router's own address: a DHCP relay sends to a server elsewhere"
            ));
        }
        if a.prefix() < 31
            && (server == a.network() || server == a.broadcast())
            && a.contains(server)
        {
            return Err(format!(
                "{server} is the network or broadcast address of {a}, not a server's address"
            ));
        }
    }
    if connected.clone().any(|a| a.contains(server))
        || routes.iter().any(|rt| rt.to.contains(server))
    {
        return Ok(());
    }
    Err(format!(
        "no route to {server}: it is in no interface's subnet and no static route leads there"
    ))
}

/// An interface standing in for "this one" while its own addresses are checked.
static DUMMY: InterfaceSpec = InterfaceSpec {
    name: String::new(),
    address: None,
    addresses6: Vec::new(),
    ra: None,
    mac: None,
    mtu: 0,
    nat_outside: false,
    dhcp_relay: Vec::new(),
};

/// Whether `ip` is another host in one of the interfaces' IPv4 subnets: inside one, not
/// its network or broadcast address (a /31 and a /32 have neither), not the router's own.
fn host_on(interfaces: &[InterfaceSpec], ip: Ipv4Addr) -> bool {
    interfaces.iter().filter_map(|i| i.address).any(|a| {
        a.contains(ip)
            && a.ip() != ip
            && (a.prefix() >= 31 || (ip != a.network() && ip != a.broadcast()))
    }) && !interfaces
        .iter()
        .any(|i| i.address.is_some_and(|a| a.ip() == ip))
}

/// Whether `ip` is another host in one of the interfaces' IPv6 prefixes.
fn host_on6(interfaces: &[InterfaceSpec], ip: Ipv6Addr) -> bool {
    let all = || interfaces.iter().flat_map(|i| i.addresses6.iter());
    all().any(|a| a.contains(ip) && (a.prefix() >= 127 || ip != a.network()))
        && !all().any(|a| a.ip() == ip)
}

impl AnyRoute {
    fn prefix(&self) -> (IpAddr, u8) {
        match self {
            AnyRoute::V4(r) => (IpAddr::V4(r.to.network()), r.to.prefix()),
            AnyRoute::V6(r) => (IpAddr::V6(r.to.network()), r.to.prefix()),
        }
    }
}

/// The `routes` item of the first route to `net`/`len` (for a duplicate's message).
fn first_route(f: &Raw, net: IpAddr, len: u8) -> usize {
    f.routes
        .iter()
        .flatten()
        .position(|rt| {
            rt.to.as_deref().is_some_and(|t| match net {
                IpAddr::V4(_) => {
                    parse_prefix(t).is_ok_and(|p| p.network() == net && p.prefix() == len)
                }
                IpAddr::V6(_) => config6::parse_prefix6(t)
                    .is_ok_and(|p| IpAddr::V6(p.network()) == net && p.prefix() == len),
            })
        })
        .unwrap_or(0)
}

/// A route to `to` through `via`, of either family; else the key (`to` or `via`) at fault
/// and the problem.
fn route(
    to: &str,
    via: &str,
    interfaces: &[InterfaceSpec],
) -> Result<AnyRoute, (&'static str, String)> {
    if config6::is_v6(to) {
        let to = config6::parse_prefix6(to).map_err(|m| ("to", m))?;
        let Ok(via) = via.parse::<Ipv6Addr>() else {
            return Err(("via", format!("`{via}` is not an IPv6 address (a route to an IPv6 prefix goes through an IPv6 gateway)")));
        };
        if !host_on6(interfaces, via) {
            return Err(("via", format!("gateway {via} is not another host in one of the router's IPv6 prefixes (nfv resolves gateways directly, not through other routes)")));
        }
        return Ok(AnyRoute::V6(StaticRoute6 { to, via }));
    }
    let to = parse_prefix(to).map_err(|m| ("to", m))?;
    let Ok(via) = via.parse::<Ipv4Addr>() else {
        return Err(("via", format!("`{via}` is not an IPv4 address (a route to an IPv4 prefix goes through an IPv4 gateway)")));
    };
    if interfaces
        .iter()
        .any(|i| i.address.is_some_and(|a| a.ip() == via))
    {
        return Err((
            "via",
            format!("{via} is the router's own address: the gateway is another router"),
        ));
    }
    if !host_on(interfaces, via) {
        return Err(("via", format!("gateway {via} is no host address in the router's interface subnets (nfv resolves gateways directly, not through other routes)")));
    }
    Ok(AnyRoute::V4(StaticRoute { to, via }))
}

/// One line of a routes file: `PREFIX/LEN GATEWAY` or `PREFIX/LEN via GATEWAY`.
fn route_line(content: &str, interfaces: &[InterfaceSpec]) -> Result<AnyRoute, String> {
    let words: Vec<&str> = content.split_whitespace().collect();
    let (prefix, gw) = match words.as_slice() {
        [p, g] | [p, "via", g] => (*p, *g),
        _ => {
            return Err(format!(
                "`{content}`: expected `PREFIX/LEN GATEWAY`, like `10.0.0.0/8 192.168.1.254`"
            ))
        }
    };
    route(prefix, gw, interfaces).map_err(|(_, m)| m)
}

/// The largest routes file read: 256 MiB (a full Internet table of a million routes is
/// about 25 MiB).
pub const MAX_ROUTES_FILE: u64 = 256 << 20;

/// The most bad lines of a routes file reported one by one.
const MAX_FILE_ERRORS: usize = 10;

/// Read `PREFIX/LEN GATEWAY` lines (or `PREFIX/LEN via GATEWAY`; `#` starts a comment) from
/// `path` into `routes`. Errors name the routes file and its line; after ten the rest of the
/// file is counted, not reported line by line.
fn routes_file(
    r: &mut Counting<'_>,
    path: &Path,
    interfaces: &[InterfaceSpec],
    seen: &mut HashSet<(IpAddr, u8)>,
    (routes, routes6): (&mut Vec<StaticRoute>, &mut Vec<StaticRoute6>),
) {
    let key = "routes_file";
    let text = match nfv_dataplane::config::read_bounded(path, MAX_ROUTES_FILE, "a routes file") {
        Ok(t) => t,
        Err(e) => {
            r.error(key, format!("cannot read {}: {e}", path.display()));
            return;
        }
    };
    let mut errors = 0;
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let problem = match route_line(content, interfaces) {
            Ok(rt) if seen.insert(rt.prefix()) => {
                match rt {
                    AnyRoute::V4(rt) => routes.push(rt),
                    AnyRoute::V6(rt) => routes6.push(rt),
                }
                continue;
            }
            Ok(rt) => {
                let (net, len) = rt.prefix();
                format!("a route to {net}/{len} is already given")
            }
            Err(m) => m,
        };
        errors += 1;
        if errors <= MAX_FILE_ERRORS {
            r.error_in(path, i + 1, key, problem);
        }
    }
    if errors > MAX_FILE_ERRORS {
        let extra = errors - MAX_FILE_ERRORS;
        r.error(
            key,
            format!("{} has {extra} more bad line(s)", path.display()),
        );
    }
}

impl Spec for RouterSpec {
    fn kind(&self) -> &'static dyn Kind {
        &super::RouterKind
    }

    /// One gate per interface, linked by name (`gw.lan`) only.
    fn wiring(&self) -> Wiring {
        Wiring {
            gates: self.interfaces.iter().map(|i| i.name.clone()).collect(),
            through: None,
            grows: false,
            single: false,
            noun: "interface",
            declared_under: Some("interfaces"),
        }
    }

    fn build(&self, at: &BuildContext<'_>) -> Result<Built, String> {
        let node = Router::new(self.config(at)).map_err(|e| e.to_string())?;
        let stats = node.stats();
        Ok(Built::new(node, stats))
    }

    fn describe(&self) -> String {
        let total = self.routes.len() + self.routes6.len();
        let mut s = format!(
            "router, {total} route(s), arp timeout {}, icmp {}/s",
            fmt_duration(self.arp_timeout),
            self.icmp_rate
        );
        let v4 = self
            .routes
            .iter()
            .map(|rt| (rt.to.to_string(), rt.via.to_string()));
        let v6 = self
            .routes6
            .iter()
            .map(|rt| (rt.to.to_string(), rt.via.to_string()));
        for (to, via) in v4.chain(v6).take(20) {
            s.push_str(&format!("\nroute {to} via {via}"));
        }
        if total > 20 {
            s.push_str(&format!("\n... and {} more routes", total - 20));
        }
        s
    }

    fn gate_label(&self, gate: usize) -> String {
        let Some(i) = self.interfaces.get(gate) else {
            return String::new();
        };
        let mac = i.mac.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
        let addresses: Vec<String> = i
            .address
            .iter()
            .map(|a| a.to_string())
            .chain(i.addresses6.iter().map(|a| a.to_string()))
            .collect();
        let relay = if i.dhcp_relay.is_empty() {
            String::new()
        } else {
            let servers: Vec<String> = i.dhcp_relay.iter().map(|s| s.to_string()).collect();
            format!(", dhcp relay to {}", servers.join(" "))
        };
        format!(
            "{:<8} {} mac {mac} mtu {}{}{}{relay}",
            i.name,
            addresses.join(" "),
            i.mtu,
            if i.ra.is_some() { ", ra" } else { "" },
            if i.nat_outside { ", nat outside" } else { "" }
        )
    }

    /// Interfaces without a MAC get one derived from the topology's, the router's and the
    /// interface's names.
    fn complete(&mut self, at: &BuildContext<'_>) {
        for i in &mut self.interfaces {
            i.mac
                .get_or_insert_with(|| derived_mac(&[at.topology, at.function, &i.name]));
        }
    }

    fn interface_address(&self, interface: &str) -> Option<Ipv4Addr> {
        self.interfaces
            .iter()
            .find(|i| i.name == interface)
            .and_then(|i| i.address.map(|a| a.ip()))
    }

    fn speaks_ipv6(&self) -> bool {
        self.interfaces
            .iter()
            .any(|i| !i.addresses6.is_empty() || i.ra.is_some())
    }

    fn masqueraded_on(&mut self, interface: &str) -> bool {
        match self.interfaces.iter_mut().find(|i| i.name == interface) {
            Some(i) => {
                i.nat_outside = true;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Problems;

    fn load(text: &str) -> Result<RouterSpec, Vec<(String, String)>> {
        let mut p = Problems::default();
        RouterSpec::load(text, &mut p).ok_or(p.0)
    }

    #[test]
    fn settings_are_read_with_their_defaults() {
        let s = load("{ interfaces: { lan: { address: 10.0.0.1/24 }, wan: { address: 10.0.1.1/24, mtu: 1400 } }, routes: [{ to: 0.0.0.0/0, via: 10.0.1.254 }] }")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.interfaces.len(), 2);
        assert_eq!(s.interfaces[1].mtu, 1400);
        assert_eq!(s.routes[0].via, Ipv4Addr::new(10, 0, 1, 254));
        assert_eq!(s.arp_timeout, Duration::from_secs(300));
        assert_eq!((s.arp_queue, s.icmp_rate), (16, 100));
        assert_eq!(s.wiring().gates, ["lan", "wan"]);
    }

    #[test]
    fn problems_are_reported_by_key() {
        let e = load("{ interfaces: { lan: { address: 10.0.0.0/24 }, wan: { address: 10.0.1.1/24, mac: 01:00:5e:00:00:01 } }, routes: [{ to: 10.9.0.1/16, via: 10.0.1.2 }, { to: 0.0.0.0/0, via: 192.168.0.1 }], arp_queue: 0 }")
            .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "interfaces.lan.address",
                "interfaces.wan.mac",
                "routes[0].to",
                "routes[1].via",
                "arp_queue"
            ],
            "{e:?}"
        );
        let e = load("{}").unwrap_err();
        assert_eq!(e[0].0, "interfaces");
        let e = load("{ vlan: 5 }").unwrap_err();
        assert!(e[0].1.contains("unknown field `vlan`"), "{e:?}");
    }

    #[test]
    fn dual_stack_interfaces_routes_and_advertisements() {
        let s = load("{ interfaces: { lan: { address: [10.0.0.1/24, 2001:db8:1::1/64, 2001:db8:5::1/48] }, wan: { address: 2001:db8:ff::2/64 }, v6only: { address: 2001:db8:7::1/64, ra: { rdnss: [2001:db8::53], interval: 30s } }, quiet: { address: 2001:db8:8::1/64, ra: false } }, routes: [{ to: \"::/0\", via: 2001:db8:ff::1 }, { to: 0.0.0.0/0, via: 10.0.0.254 }], neighbors: { 2001:db8:1::9: 02:00:00:00:00:09 } }")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let lan = &s.interfaces[0];
        assert_eq!(
            lan.address.map(|a| a.to_string()),
            Some("10.0.0.1/24".into())
        );
        assert_eq!(lan.addresses6.len(), 2);
        assert!(
            lan.ra.is_some(),
            "a /64 facing no gateway advertises by default"
        );
        assert!(
            s.interfaces[1].ra.is_none(),
            "wan faces the default gateway"
        );
        assert_eq!(s.interfaces[1].address, None);
        let v6only = s.interfaces[2].ra.as_ref().expect("on");
        assert_eq!(v6only.interval, Duration::from_secs(30));
        assert_eq!(
            v6only.rdnss,
            ["2001:db8::53".parse::<Ipv6Addr>().expect("ip")]
        );
        assert!(s.interfaces[3].ra.is_none());
        assert_eq!(
            (s.routes.len(), s.routes6.len(), s.neighbors6.len()),
            (1, 1, 1)
        );
        assert!(s.speaks_ipv6());
        let e = load("{ interfaces: { lan: { address: [10.0.0.1/24, 10.0.1.1/24, 2001:db8::/64] }, wan: { address: [2001:db8:0:0:1::1/80], mtu: 1200 } }, routes: [{ to: \"::/0\", via: 10.0.0.9 }, { to: 10.9.0.0/16, via: 2001:db8::9 }, { to: 2001:db8:9::/48, via: 2001:db8:7::1 }], neighbors: { 2001:db8:9::1: 02:00:00:00:00:01 } }")
            .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "interfaces.lan.address[1]",
                "interfaces.lan.address[2]",
                "interfaces.wan.mtu",
                "routes[0].via",
                "routes[1].via",
                "routes[2].via",
                "neighbors.2001:db8:9::1"
            ],
            "{e:?}"
        );
        let e = load(
            "{ interfaces: { a: { address: 2001:db8::1/64 }, b: { address: 2001:db8::2/48 } } }",
        )
        .unwrap_err();
        assert!(e[0].1.contains("overlaps interface `a`"), "{e:?}");
        let e = load("{ interfaces: { a: { address: 2001:db8::1/64, ra: { rdnss: ff02::1, interval: 1s, bogus: 1 } } } }")
            .unwrap_err();
        assert!(e[0].1.contains("unknown field `bogus`"), "{e:?}");
        assert!(!load("{ interfaces: { a: { address: 10.0.0.1/24 } } }")
            .unwrap_or_else(|e| panic!("{e:?}"))
            .speaks_ipv6());
    }

    #[test]
    fn a_routes_file_is_read_and_its_bad_lines_named() {
        let dir = std::env::temp_dir().join(format!("nfv-routes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("table.txt");
        std::fs::write(
            &file,
            "# table\n10.8.0.0/16 10.0.0.9\n10.9.0.0/16 via 10.0.0.9\nnonsense\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{{ interfaces: {{ lan: {{ address: 10.0.0.1/24 }} }}, routes_file: {} }}",
            file.display()
        );
        let mut p = Problems::default();
        assert!(RouterSpec::load(&text, &mut p).is_none());
        assert_eq!(p.0.len(), 1, "{:?}", p.0);
        assert_eq!(p.0[0].0, "routes_file");
        assert!(p.0[0].1.contains("table.txt:4: `nonsense`"), "{:?}", p.0);
        std::fs::write(&file, "10.8.0.0/16 10.0.0.9\n").unwrap_or_else(|e| panic!("{e}"));
        let s = load(&text).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.routes.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `routes_file: /dev/zero` used to read until memory ran out: a device or a pipe is
    /// refused at once.
    #[test]
    fn a_routes_file_that_is_not_a_regular_file_is_refused() {
        let e = load("{ interfaces: { lan: { address: 10.0.0.1/24 } }, routes_file: /dev/zero }")
            .unwrap_err();
        assert_eq!(e[0].0, "routes_file");
        assert!(e[0].1.contains("not a regular file"), "{e:?}");
        let dir = std::env::temp_dir().join(format!("nfv-routes-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("big.txt");
        std::fs::write(&file, "10.8.0.0/16 10.0.0.9\n").unwrap_or_else(|e| panic!("{e}"));
        let read = |max| nfv_dataplane::config::read_bounded(&file, max, "a routes file");
        assert!(read(8).is_err_and(|e| e.to_string().contains("larger than")));
        assert!(read(64).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dhcp_relay_servers_are_read_and_their_problems_named() {
        let s = load("{ interfaces: { lan: { address: 10.0.0.1/24, dhcp_relay: [10.0.1.9, 192.0.2.7] }, wan: { address: 10.0.1.1/24, dhcp_relay: 10.0.1.9 } }, routes: [{ to: 192.0.2.0/24, via: 10.0.1.254 }] }")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            s.interfaces[0].dhcp_relay,
            [Ipv4Addr::new(10, 0, 1, 9), Ipv4Addr::new(192, 0, 2, 7)]
        );
        assert_eq!(s.interfaces[1].dhcp_relay, [Ipv4Addr::new(10, 0, 1, 9)]);
        assert!(
            s.gate_label(0)
                .ends_with("dhcp relay to 10.0.1.9 192.0.2.7"),
            "{}",
            s.gate_label(0)
        );
        let e = load("{ interfaces: { lan: { address: 10.0.0.1/24, dhcp_relay: [224.0.0.1, 255.255.255.255, 10.0.1.1, 10.0.1.255, 172.16.0.1, 10.0.1.9, 10.0.1.9, x] }, wan: { address: 10.0.1.1/24 }, v6: { address: 2001:db8::1/64, dhcp_relay: 10.0.1.9 } } }")
            .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "interfaces.lan.dhcp_relay[0]",
                "interfaces.lan.dhcp_relay[1]",
                "interfaces.lan.dhcp_relay[6]",
                "interfaces.lan.dhcp_relay[7]",
                "interfaces.v6.dhcp_relay",
                "interfaces.lan.dhcp_relay[2]",
                "interfaces.lan.dhcp_relay[3]",
                "interfaces.lan.dhcp_relay[4]",
            ],
            "{e:?}"
        );
        let says = |k: &str, what: &str| {
            assert!(
                e.iter().any(|(key, m)| key == k && m.contains(what)),
                "{k}: {what}: {e:?}"
            )
        };
        says("interfaces.lan.dhcp_relay[0]", "not a unicast address");
        says("interfaces.lan.dhcp_relay[6]", "given twice");
        says("interfaces.v6.dhcp_relay", "no IPv4 address");
        says("interfaces.lan.dhcp_relay[2]", "the router's own address");
        says("interfaces.lan.dhcp_relay[3]", "broadcast address");
        says("interfaces.lan.dhcp_relay[4]", "no route to 172.16.0.1");
        for list in ["[]", "[10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, 10.0.0.9, 10.0.0.10]"] {
            let e = load(&format!("{{ interfaces: {{ lan: {{ address: 10.0.0.1/24, dhcp_relay: {list} }} }} }}"))
                .unwrap_err();
            assert_eq!(e[0].0, "interfaces.lan.dhcp_relay", "{list}");
        }
    }

    #[test]
    fn macs_are_derived_and_masquerade_marks_the_interface() {
        let mut s = load("{ interfaces: { lan: { address: 10.0.0.1/24 }, wan: { address: 10.0.1.1/24, mac: 02:00:00:00:00:aa } } }")
            .unwrap_or_else(|e| panic!("{e:?}"));
        let at = BuildContext {
            topology: "t",
            function: "gw",
            leases: None,
        };
        assert_eq!(
            s.config(&at).interfaces[0].mac,
            derived_mac(&["t", "gw", "lan"])
        );
        s.complete(&at);
        assert_eq!(s.interfaces[0].mac, Some(derived_mac(&["t", "gw", "lan"])));
        assert_eq!(s.interfaces[1].mac, Some(MacAddr([2, 0, 0, 0, 0, 0xaa])));
        assert_eq!(s.interface_address("wan"), Some(Ipv4Addr::new(10, 0, 1, 1)));
        assert!(s.masqueraded_on("wan") && !s.masqueraded_on("dmz"));
        assert!(s.config(&at).interfaces[1].nat_outside);
        assert!(
            s.gate_label(1).ends_with("mtu 1500, nat outside"),
            "{}",
            s.gate_label(1)
        );
    }
}
