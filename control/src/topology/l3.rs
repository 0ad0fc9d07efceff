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
use nfv_functions::kind::schema::{parse_prefix, OneOrMany};
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

/// A DHCP server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpServerConfig {
    /// The server's address and the subnet it serves.
    pub address: Ipv4Network,
    /// Its MAC address; derived from the names when not given.
    pub mac: Option<MacAddr>,
    /// Inclusive address ranges.
    pub pools: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Default gateway handed out.
    pub router: Option<Ipv4Addr>,
    /// DNS servers handed out.
    pub dns: Vec<Ipv4Addr>,
    /// Domain name handed out.
    pub domain: Option<String>,
    /// Lease time.
    pub lease: Duration,
    /// Renewal time (T1).
    pub renew: Option<Duration>,
    /// Rebinding time (T2).
    pub rebind: Option<Duration>,
    /// Fixed addresses by MAC.
    pub reservations: Vec<(MacAddr, Ipv4Addr)>,
    /// Extra options by code.
    pub options: Vec<(u8, Vec<u8>)>,
    /// The lease file, if given (relative paths resolved against the topology file's
    /// directory); the default is chosen by the plan.
    pub leases: Option<PathBuf>,
}

/// Option codes the server fills from its own keys.
const MANAGED_OPTIONS: &[(u8, &str)] = &[
    (1, "the subnet mask comes from `address`"),
    (3, "use `router`"),
    (6, "use `dns`"),
    (15, "use `domain`"),
    (50, "the client asks for its address"),
    (51, "use `lease`"),
    (53, "the message type is the server's"),
    (54, "the server identifier is `address`"),
    (58, "use `renew`"),
    (59, "use `rebind`"),
    (61, "the client identifier is the client's"),
];

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

/// The bytes of an extra option value: a comma-separated IPv4 list, `0x` and hex digits, or
/// text.
fn option_bytes(v: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = v.strip_prefix("0x") {
        if hex.is_empty() || hex.len() % 2 != 0 {
            return Err(format!(
                "`{v}`: hex needs an even number of digits, like 0x0a0b"
            ));
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16)
                    .map_err(|_| format!("`{v}`: `{}` is not a hex byte", &hex[i..i + 2]))
            })
            .collect();
    }
    let ips: Option<Vec<Ipv4Addr>> = v.split(',').map(|p| p.trim().parse().ok()).collect();
    let bytes = match ips {
        Some(ips) => ips.iter().flat_map(|ip| ip.octets()).collect(),
        None => v.as_bytes().to_vec(),
    };
    if bytes.is_empty() || bytes.len() > 255 {
        return Err(format!(
            "`{v}`: an option holds 1 to 255 bytes, this one {}",
            bytes.len()
        ));
    }
    Ok(bytes)
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

    pub(super) fn dhcp_server(&mut self, key: &str, f: &RawFunction) -> Option<DhcpServerConfig> {
        let address = match f.address.as_deref() {
            None => {
                self.error(
                    format!("{key}.address"),
                    "missing: a dhcp-server needs its own `address` with the subnet it serves, like 192.168.1.2/24 (it is the server identifier clients renew with)",
                );
                None
            }
            Some(a) => self.host_cidr(&format!("{key}.address"), a),
        };
        let mac = f
            .mac
            .as_deref()
            .and_then(|m| self.unicast_mac(&format!("{key}.mac"), m));
        let in_subnet = |ip: Ipv4Addr| address.is_none_or(|n| n.contains(ip));
        let subnet = address
            .map(|n| format!("{}/{}", n.network(), n.prefix()))
            .unwrap_or_default();

        let mut pools: Vec<(Ipv4Addr, Ipv4Addr)> = Vec::new();
        match &f.pool {
            None => self.error(
                format!("{key}.pool"),
                "missing: a dhcp-server needs a `pool` of addresses, like 192.168.1.100-192.168.1.199",
            ),
            Some(OneOrMany { items: list, .. }) => {
                if list.is_empty() {
                    self.error(format!("{key}.pool"), "the pool list is empty");
                }
                for (i, r) in list.iter().enumerate() {
                    let pkey = if list.len() == 1 && self.index.get(&format!("{key}.pool[0]")).is_none() {
                        format!("{key}.pool")
                    } else {
                        format!("{key}.pool[{i}]")
                    };
                    let parsed = r.split_once('-').and_then(|(a, b)| {
                        Some((a.trim().parse::<Ipv4Addr>().ok()?, b.trim().parse::<Ipv4Addr>().ok()?))
                    });
                    let Some((a, b)) = parsed else {
                        self.error(&pkey, format!("`{r}` is not a range: expected FIRST-LAST, like 192.168.1.100-192.168.1.199"));
                        continue;
                    };
                    if u32::from(a) > u32::from(b) {
                        self.error(&pkey, format!("`{r}`: the first address is above the last"));
                        continue;
                    }
                    if !in_subnet(a) || !in_subnet(b) {
                        self.error(&pkey, format!("`{r}` is not inside the server's subnet {subnet}"));
                        continue;
                    }
                    if let Some(n) = address {
                        let (lo, hi) = (u32::from(a), u32::from(b));
                        let inside = |x: Ipv4Addr| (lo..=hi).contains(&u32::from(x));
                        if n.prefix() < 31 && (inside(n.network()) || inside(n.broadcast())) {
                            self.error(&pkey, format!("`{r}` holds the subnet's network or broadcast address"));
                            continue;
                        }
                        if inside(n.ip()) {
                            self.error(&pkey, format!("`{r}` holds the server's own address {}", n.ip()));
                            continue;
                        }
                    }
                    if let Some(&(oa, ob)) = pools.iter().find(|&&(oa, ob)| u32::from(a) <= u32::from(ob) && u32::from(oa) <= u32::from(b)) {
                        self.error(&pkey, format!("`{r}` overlaps the range {oa}-{ob}"));
                        continue;
                    }
                    pools.push((a, b));
                }
            }
        }
        let router = f.router.as_deref().and_then(|r| {
            let ip = self.ipv4(&format!("{key}.router"), r)?;
            if !in_subnet(ip) {
                self.error(
                    format!("{key}.router"),
                    format!("router {ip} is not in the served subnet {subnet}"),
                );
            }
            Some(ip)
        });
        let mut dns = Vec::new();
        if let Some(OneOrMany { items: list, .. }) = &f.dns {
            for (i, d) in list.iter().enumerate() {
                let dkey = if self.index.get(&format!("{key}.dns[0]")).is_some() {
                    format!("{key}.dns[{i}]")
                } else {
                    format!("{key}.dns")
                };
                if let Some(ip) = self.ipv4(&dkey, d) {
                    dns.push(ip);
                }
            }
        }
        if let Some(d) = &f.domain {
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                self.error(
                    format!("{key}.domain"),
                    format!("`{d}` is not a domain name like lab.example"),
                );
            }
        }
        let lease = self.duration_or(
            &format!("{key}.lease"),
            f.lease.as_ref(),
            Duration::from_secs(3600),
        );
        let renew = f
            .renew
            .as_ref()
            .map(|d| self.duration_or(&format!("{key}.renew"), Some(d), lease / 2));
        let rebind = f
            .rebind
            .as_ref()
            .map(|d| self.duration_or(&format!("{key}.rebind"), Some(d), lease * 7 / 8));
        let t1 = renew.unwrap_or(lease / 2);
        let t2 = rebind.unwrap_or(lease * 7 / 8);
        if t1 >= t2 || t2 >= lease {
            let k = if rebind.is_some() { "rebind" } else { "renew" };
            self.error(
                format!("{key}.{k}"),
                format!(
                    "expected renew < rebind < lease; here renew {}s, rebind {}s, lease {}s",
                    t1.as_secs(),
                    t2.as_secs(),
                    lease.as_secs()
                ),
            );
        }
        let mut reservations: Vec<(MacAddr, Ipv4Addr)> = Vec::new();
        for (m, ip) in &f.reservations.0 {
            let rkey = format!("{key}.reservations.{m}");
            let Some(mac) = self.unicast_mac(&rkey, m) else {
                continue;
            };
            let Some(ip) = self.ipv4(&rkey, ip) else {
                continue;
            };
            if !in_subnet(ip) || address.is_some_and(|n| n.ip() == ip) {
                self.error(
                    &rkey,
                    format!("{ip} is not a free address in the served subnet {subnet}"),
                );
                continue;
            }
            if let Some((other, _)) = reservations.iter().find(|(_, o)| *o == ip) {
                self.error(&rkey, format!("{ip} is already reserved for {other}"));
                continue;
            }
            reservations.push((mac, ip));
        }
        let mut options = Vec::new();
        for (code, v) in &f.options.0 {
            let okey = format!("{key}.options.{code}");
            let Some(c) = code.parse::<u8>().ok().filter(|c| (1..=254).contains(c)) else {
                self.error(
                    &okey,
                    format!("`{code}` is not an option code: expected 1 to 254"),
                );
                continue;
            };
            if let Some((_, why)) = MANAGED_OPTIONS.iter().find(|(m, _)| *m == c) {
                self.error(&okey, format!("option {c} is set by the server: {why}"));
                continue;
            }
            match option_bytes(v) {
                Ok(b) => options.push((c, b)),
                Err(m) => self.error(&okey, m),
            }
        }
        let leases = f.leases.as_deref().map(|p| self.relative(p));
        Some(DhcpServerConfig {
            address: address?,
            mac,
            pools,
            router,
            dns,
            domain: f.domain.clone(),
            lease,
            renew,
            rebind,
            reservations,
            options,
            leases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::option_bytes;

    #[test]
    fn option_values() {
        assert_eq!(
            option_bytes("10.0.0.1, 10.0.0.2"),
            Ok(vec![10, 0, 0, 1, 10, 0, 0, 2])
        );
        assert_eq!(option_bytes("0x0a0B"), Ok(vec![10, 11]));
        assert_eq!(option_bytes("hello"), Ok(b"hello".to_vec()));
        assert!(option_bytes("0x0").is_err());
        assert!(option_bytes("0xzz").is_err());
        assert!(option_bytes(&"x".repeat(256)).is_err());
    }
}
