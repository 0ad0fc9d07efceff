//! The IPv4 functions of a topology file: `router` and `dhcp-server`.
//!
//! ```yaml
//! functions:
//!   gw:
//!     kind: router
//!     interfaces:                    # each one is a link end: gw.lan, gw.wan
//!       lan: { address: 192.168.1.1/24 }            # also `mac`, `mtu` (default 1500)
//!       wan: { address: 203.0.113.2/24 }
//!     routes:                        # static routes; the gateway is in a connected subnet
//!       - { to: 0.0.0.0/0, via: 203.0.113.1 }
//!     routes_file: table.txt         # more routes, one `PREFIX/LEN GATEWAY` a line (# comments)
//!     neighbors: { 203.0.113.1: 02:00:00:00:00:01 }  # static ARP entries (optional)
//!     arp_timeout: 5m                # learned ARP entries live this long (default 5m)
//!     arp_queue: 16                  # packets waiting per unresolved next hop (default 16)
//!     icmp_rate: 100                 # ICMP errors a second, and burst (default 100; 0: none)
//!   dhcp:
//!     kind: dhcp-server
//!     address: 192.168.1.2/24        # the server's own address and the subnet it serves
//!     pool: 192.168.1.100-192.168.1.199              # or a list of ranges
//!     router: 192.168.1.1            # option 3
//!     dns: [192.168.1.1]             # option 6 (one address or a list)
//!     domain: lab.example            # option 15
//!     lease: 1h                      # default 1h; `renew` (T1) and `rebind` (T2) optional
//!     reservations: { 02:00:00:00:00:0a: 192.168.1.10 }
//!     options: { 42: 192.168.1.1 }   # extra options by code: IPv4 list, 0x-hex, or text
//!     leases: /var/lib/nfv/home/dhcp.leases          # lease file (this is the default)
//! ```

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnetwork::Ipv4Network;
use nfv_dataplane::MacAddr;
use nfv_functions::kind::schema::parse_prefix;
use serde::Deserialize;

use super::{parse_cidr, valid_name, RawDuration, RawFunction, Validator};
use super::{MAX_MTU, MIN_MTU};

/// A router interface as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInterface {
    pub(super) address: Option<String>,
    mac: Option<String>,
    mtu: Option<u32>,
}

/// A static route as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    to: Option<String>,
    via: Option<String>,
}

/// A router's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Interfaces, in file order (gate order).
    pub interfaces: Vec<RouterInterface>,
    /// Static routes, in file order.
    pub routes: Vec<StaticRoute>,
    /// Static ARP entries.
    pub neighbors: Vec<(Ipv4Addr, MacAddr)>,
    /// Lifetime of learned ARP entries.
    pub arp_timeout: Duration,
    /// Packets that may wait for one unresolved next hop.
    pub arp_queue: usize,
    /// ICMP errors a second (and burst).
    pub icmp_rate: u32,
}

/// A router interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterInterface {
    /// Its name.
    pub name: String,
    /// Address and subnet.
    pub address: Ipv4Network,
    /// MAC address; derived from the names when not given.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: u16,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination prefix (host bits zero).
    pub to: Ipv4Network,
    /// Gateway.
    pub via: Ipv4Addr,
}

/// One line of a routes file: `PREFIX/LEN GATEWAY` or `PREFIX/LEN via GATEWAY`.
fn route_line(content: &str, interfaces: &[RouterInterface]) -> Result<StaticRoute, String> {
    let words: Vec<&str> = content.split_whitespace().collect();
    let (prefix, gw) = match words.as_slice() {
        [p, g] | [p, "via", g] => (*p, *g),
        _ => {
            return Err(format!(
                "`{content}`: expected `PREFIX/LEN GATEWAY`, like `10.0.0.0/8 192.168.1.254`"
            ))
        }
    };
    let to = parse_prefix(prefix)?;
    let via: Ipv4Addr = gw
        .parse()
        .map_err(|_| format!("`{gw}` is not an IPv4 address"))?;
    if !interfaces
        .iter()
        .any(|i| i.address.contains(via) && i.address.ip() != via)
    {
        return Err(format!(
            "gateway {via} is not another host in one of the router's interface subnets"
        ));
    }
    Ok(StaticRoute { to, via })
}

impl Validator<'_> {
    pub(super) fn duration_or(
        &mut self,
        key: &str,
        d: Option<&RawDuration>,
        default: Duration,
    ) -> Duration {
        nfv_functions::kind::schema::duration_or(self, key, d, default)
    }

    fn cidr(&mut self, key: &str, a: &str) -> Option<Ipv4Network> {
        match parse_cidr(a) {
            Ok(n) => Some(n),
            Err(m) => {
                self.error(key, m);
                None
            }
        }
    }

    /// A host address with its subnet: not the network or broadcast address.
    fn host_cidr(&mut self, key: &str, a: &str) -> Option<Ipv4Network> {
        let n = self.cidr(key, a)?;
        if n.prefix() < 31 && (n.ip() == n.network() || n.ip() == n.broadcast()) {
            self.error(
                key,
                format!("{n} is the subnet's network or broadcast address, not a host address"),
            );
            return None;
        }
        Some(n)
    }

    pub(super) fn router(&mut self, key: &str, f: &RawFunction) -> RouterConfig {
        let mut interfaces: Vec<RouterInterface> = Vec::new();
        if f.interfaces.0.is_empty() {
            self.error(
                format!("{key}.interfaces"),
                "missing: a router needs `interfaces`, like `interfaces: { lan: { address: 10.0.0.1/24 } }`",
            );
        }
        for (name, i) in &f.interfaces.0 {
            let ikey = format!("{key}.interfaces.{name}");
            if !valid_name(name) {
                self.error(
                    &ikey,
                    format!("`{name}` is not a valid name: expected letters, digits, `_` and `-`"),
                );
            }
            let Some(a) = i.address.as_deref() else {
                self.error(
                    format!("{ikey}.address"),
                    "missing: a router interface needs an `address`, like 10.0.0.1/24",
                );
                continue;
            };
            let Some(address) = self.host_cidr(&format!("{ikey}.address"), a) else {
                continue;
            };
            if let Some(other) = interfaces.iter().find(|o| {
                o.address.contains(address.network()) || address.contains(o.address.network())
            }) {
                self.error(
                    format!("{ikey}.address"),
                    format!(
                        "subnet {}/{} overlaps interface `{}` ({}): each interface needs its own subnet",
                        address.network(),
                        address.prefix(),
                        other.name,
                        other.address
                    ),
                );
            }
            let mac = i
                .mac
                .as_deref()
                .and_then(|m| self.unicast_mac(&format!("{ikey}.mac"), m));
            let mtu = match i.mtu {
                None => 1500,
                Some(m) if (MIN_MTU..=MAX_MTU).contains(&m) => m as u16,
                Some(m) => {
                    self.error(
                        format!("{ikey}.mtu"),
                        format!("MTU {m} is out of range: expected {MIN_MTU} to {MAX_MTU}"),
                    );
                    1500
                }
            };
            interfaces.push(RouterInterface {
                name: name.clone(),
                address,
                mac,
                mtu,
            });
        }
        let connected = |ip: Ipv4Addr| interfaces.iter().any(|i| i.address.contains(ip));
        let own = |ip: Ipv4Addr| interfaces.iter().any(|i| i.address.ip() == ip);
        let mut routes: Vec<StaticRoute> = Vec::new();
        let mut seen: HashSet<(Ipv4Addr, u8)> = HashSet::new();
        for (n, r) in f.routes.iter().flatten().enumerate() {
            let rkey = format!("{key}.routes[{n}]");
            let to = match r.to.as_deref() {
                None => {
                    self.error(
                        format!("{rkey}.to"),
                        "missing: a route needs `to`, a prefix like 0.0.0.0/0",
                    );
                    None
                }
                Some(t) => match parse_prefix(t) {
                    Ok(net) => Some(net),
                    Err(m) => {
                        self.error(format!("{rkey}.to"), m);
                        None
                    }
                },
            };
            let via = match r.via.as_deref() {
                None => {
                    self.error(
                        format!("{rkey}.via"),
                        "missing: a route needs `via`, the gateway's address",
                    );
                    None
                }
                Some(v) => self.ipv4(&format!("{rkey}.via"), v),
            };
            let (Some(to), Some(via)) = (to, via) else {
                continue;
            };
            if own(via) {
                self.error(
                    format!("{rkey}.via"),
                    format!("{via} is the router's own address: the gateway is another router"),
                );
                continue;
            }
            if !connected(via) {
                self.error(
                    format!("{rkey}.via"),
                    format!("gateway {via} is in none of the router's interface subnets (nfv resolves gateways directly, not through other routes)"),
                );
                continue;
            }
            if !seen.insert((to.network(), to.prefix())) {
                let i = routes.iter().position(|o| o.to == to).unwrap_or(0);
                self.error(
                    format!("{rkey}.to"),
                    format!(
                        "a route to {}/{} is already given at {key}.routes[{i}]",
                        to.network(),
                        to.prefix()
                    ),
                );
                continue;
            }
            routes.push(StaticRoute { to, via });
        }
        if let Some(file) = &f.routes_file {
            let path = self.relative(file);
            self.routes_file(key, &path, &interfaces, &mut seen, &mut routes);
        }
        let mut neighbors = Vec::new();
        for (ip, mac) in &f.neighbors.0 {
            let nkey = format!("{key}.neighbors.{ip}");
            let Some(addr) = self.ipv4(&nkey, ip) else {
                continue;
            };
            if !connected(addr) || own(addr) {
                self.error(
                    &nkey,
                    format!("{addr} is not another host in one of the router's interface subnets"),
                );
                continue;
            }
            if let Some(m) = self.unicast_mac(&nkey, mac) {
                neighbors.push((addr, m));
            }
        }
        let arp_timeout = self.duration_or(
            &format!("{key}.arp_timeout"),
            f.arp_timeout.as_ref(),
            Duration::from_secs(300),
        );
        let arp_queue = match f.arp_queue {
            None => 16,
            Some(n) if (1..=4096).contains(&n) => n as usize,
            Some(n) => {
                self.error(
                    format!("{key}.arp_queue"),
                    format!("{n} is out of range: expected 1 to 4096"),
                );
                16
            }
        };
        let icmp_rate = match f.icmp_rate {
            None => 100,
            Some(n) if n <= 1_000_000 => n as u32,
            Some(n) => {
                self.error(
                    format!("{key}.icmp_rate"),
                    format!("{n} is out of range: expected 0 to 1000000 a second"),
                );
                100
            }
        };
        RouterConfig {
            interfaces,
            routes,
            neighbors,
            arp_timeout,
            arp_queue,
            icmp_rate,
        }
    }

    /// A path from the file, relative to the topology file's directory.
    fn relative(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        match self.file.parent() {
            Some(d) if p.is_relative() => d.join(&p),
            _ => p,
        }
    }

    /// Read `PREFIX/LEN GATEWAY` lines (or `PREFIX/LEN via GATEWAY`; `#` starts a comment)
    /// from `path` into `routes`. Errors name the routes file and its line; after ten the
    /// rest of the file is not checked.
    fn routes_file(
        &mut self,
        key: &str,
        path: &Path,
        interfaces: &[RouterInterface],
        seen: &mut HashSet<(Ipv4Addr, u8)>,
        routes: &mut Vec<StaticRoute>,
    ) {
        let fkey = format!("{key}.routes_file");
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.error(&fkey, format!("cannot read {}: {e}", path.display()));
                return;
            }
        };
        let mut errors = 0;
        for (i, raw) in text.lines().enumerate() {
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            match route_line(content, interfaces) {
                Ok(r) if seen.insert((r.to.network(), r.to.prefix())) => routes.push(r),
                Ok(r) => {
                    errors += 1;
                    if errors <= 10 {
                        let m = format!(
                            "a route to {}/{} is already given",
                            r.to.network(),
                            r.to.prefix()
                        );
                        self.file_error(path, i + 1, &fkey, m);
                    }
                }
                Err(m) => {
                    errors += 1;
                    if errors <= 10 {
                        self.file_error(path, i + 1, &fkey, m);
                    }
                }
            }
        }
        if errors > 10 {
            let extra = errors - 10;
            self.error(
                &fkey,
                format!("{} has {extra} more bad line(s)", path.display()),
            );
        }
    }

    /// An error in another file than the topology (a routes file).
    fn file_error(&mut self, path: &Path, line: usize, key: &str, message: String) {
        self.errors.push(super::TopologyError {
            file: path.to_path_buf(),
            line,
            column: 1,
            key: key.to_string(),
            message,
        });
    }
}
