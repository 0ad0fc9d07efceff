//! A router's settings: what the topology file says, checked.
//!
//! ```yaml
//! functions:
//!   gw:
//!     kind: router
//!     interfaces:                    # each one is a gate, linked as gw.lan, gw.wan
//!       lan: { address: 192.168.1.1/24 }            # also `mac`, `mtu` (default 1500)
//!       wan: { address: 203.0.113.2/24 }
//!     routes:                        # static routes; the gateway is in a connected subnet
//!       - { to: 0.0.0.0/0, via: 203.0.113.1 }
//!     routes_file: table.txt         # more routes, one `PREFIX/LEN GATEWAY` a line (# comments)
//!     neighbors: { 203.0.113.1: 02:00:00:00:00:01 }  # static ARP entries (optional)
//!     arp_timeout: 5m                # learned ARP entries live this long (default 5m)
//!     arp_queue: 16                  # packets waiting per unresolved next hop (default 16)
//!     icmp_rate: 100                 # ICMP errors a second, and burst (default 100; 0: none)
//! ```
//!
//! The routes file is read when the topology is loaded, relative to the topology file
//! ([`Report::path`]); its problems name its own lines ([`Report::error_in`]).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use nfv_dataplane::MacAddr;
use serde::Deserialize;

use super::{NeighborConfig, Route, Router, RouterConfig, RouterInterface};
use crate::kind::checks::{host_cidr, ipv4, mtu, unicast_mac, valid_name};
use crate::kind::schema::{duration_or, fmt_duration, parse_prefix, Ordered, RawDuration};
use crate::kind::{self, derived_mac, BuildContext, Built, Counting, Kind, Report, Spec, Wiring};

/// A router interface as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    address: Option<String>,
    mac: Option<String>,
    mtu: Option<u32>,
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
    /// Static routes, in file order, those of the routes file after those of `routes`.
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

/// A router interface's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Its name.
    pub name: String,
    /// Address and subnet.
    pub address: Ipv4Network,
    /// MAC address; derived from the names ([`Spec::complete`]) when not given.
    pub mac: Option<MacAddr>,
    /// MTU.
    pub mtu: u16,
    /// A NAT masquerades to its address (the cross-kind hook [`Spec::masqueraded_on`]).
    pub nat_outside: bool,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination prefix (host bits zero).
    pub to: Ipv4Network,
    /// Gateway.
    pub via: Ipv4Addr,
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
                    address: i.address.ip(),
                    prefix_len: i.address.prefix(),
                    mtu: i.mtu,
                    nat_outside: i.nat_outside,
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
            neighbors: self.neighbors.clone(),
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
        let Some(a) = i.address.as_deref() else {
            r.error(
                &format!("{ikey}.address"),
                "missing: a router interface needs an `address`, like 10.0.0.1/24".into(),
            );
            continue;
        };
        let Some(address) = host_cidr(r, &format!("{ikey}.address"), a) else {
            continue;
        };
        if let Some(other) = interfaces.iter().find(|o| {
            o.address.contains(address.network()) || address.contains(o.address.network())
        }) {
            r.error(
                &format!("{ikey}.address"),
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
            .and_then(|m| unicast_mac(r, &format!("{ikey}.mac"), m));
        let mtu = mtu(r, &format!("{ikey}.mtu"), i.mtu);
        interfaces.push(InterfaceSpec {
            name: name.clone(),
            address,
            mac,
            mtu,
            nat_outside: false,
        });
    }
    let connected = |ip: Ipv4Addr| host_on(&interfaces, ip);
    let own = |ip: Ipv4Addr| interfaces.iter().any(|i| i.address.ip() == ip);
    let mut routes: Vec<StaticRoute> = Vec::new();
    let mut seen: HashSet<(Ipv4Addr, u8)> = HashSet::new();
    for (n, rt) in f.routes.iter().flatten().enumerate() {
        let rkey = format!("routes[{n}]");
        let to = match rt.to.as_deref() {
            None => {
                r.error(
                    &format!("{rkey}.to"),
                    "missing: a route needs `to`, a prefix like 0.0.0.0/0".into(),
                );
                None
            }
            Some(t) => match parse_prefix(t) {
                Ok(net) => Some(net),
                Err(m) => {
                    r.error(&format!("{rkey}.to"), m);
                    None
                }
            },
        };
        let via = match rt.via.as_deref() {
            None => {
                r.error(
                    &format!("{rkey}.via"),
                    "missing: a route needs `via`, the gateway's address".into(),
                );
                None
            }
            Some(v) => ipv4(r, &format!("{rkey}.via"), v),
        };
        let (Some(to), Some(via)) = (to, via) else {
            continue;
        };
        if own(via) {
            r.error(
                &format!("{rkey}.via"),
                format!("{via} is the router's own address: the gateway is another router"),
            );
            continue;
        }
        if !connected(via) {
            r.error(
                &format!("{rkey}.via"),
                format!("gateway {via} is no host address in the router's interface subnets (nfv resolves gateways directly, not through other routes)"),
            );
            continue;
        }
        if !seen.insert((to.network(), to.prefix())) {
            let i = routes.iter().position(|o| o.to == to).unwrap_or(0);
            let first = r.absolute(&format!("routes[{i}]"));
            r.error(
                &format!("{rkey}.to"),
                format!(
                    "a route to {}/{} is already given at {first}",
                    to.network(),
                    to.prefix()
                ),
            );
            continue;
        }
        routes.push(StaticRoute { to, via });
    }
    if let Some(file) = &f.routes_file {
        let path = r.path(file);
        routes_file(r, &path, &interfaces, &mut seen, &mut routes);
    }
    let mut neighbors = Vec::new();
    for (ip, mac) in &f.neighbors.0 {
        let nkey = format!("neighbors.{ip}");
        let Some(addr) = ipv4(r, &nkey, ip) else {
            continue;
        };
        if !connected(addr) || own(addr) {
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
        neighbors,
        arp_timeout,
        arp_queue,
        icmp_rate,
    }
}

/// Whether `ip` is a host address in one of the interfaces' subnets: inside one, and not
/// its network or broadcast address (a /31 and a /32 have neither).
fn host_on(interfaces: &[InterfaceSpec], ip: Ipv4Addr) -> bool {
    interfaces.iter().any(|i| {
        let a = i.address;
        a.contains(ip) && (a.prefix() >= 31 || (ip != a.network() && ip != a.broadcast()))
    })
}

/// One line of a routes file: `PREFIX/LEN GATEWAY` or `PREFIX/LEN via GATEWAY`.
fn route_line(content: &str, interfaces: &[InterfaceSpec]) -> Result<StaticRoute, String> {
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
    if !host_on(interfaces, via) || interfaces.iter().any(|i| i.address.ip() == via) {
        return Err(format!(
            "gateway {via} is not another host in one of the router's interface subnets"
        ));
    }
    Ok(StaticRoute { to, via })
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
    seen: &mut HashSet<(Ipv4Addr, u8)>,
    routes: &mut Vec<StaticRoute>,
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
            Ok(rt) if seen.insert((rt.to.network(), rt.to.prefix())) => {
                routes.push(rt);
                continue;
            }
            Ok(rt) => format!(
                "a route to {}/{} is already given",
                rt.to.network(),
                rt.to.prefix()
            ),
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
        let mut s = format!(
            "router, {} route(s), arp timeout {}, icmp {}/s",
            self.routes.len(),
            fmt_duration(self.arp_timeout),
            self.icmp_rate
        );
        for rt in self.routes.iter().take(20) {
            s.push_str(&format!(
                "\nroute {}/{} via {}",
                rt.to.network(),
                rt.to.prefix(),
                rt.via
            ));
        }
        if self.routes.len() > 20 {
            s.push_str(&format!("\n... and {} more routes", self.routes.len() - 20));
        }
        s
    }

    fn gate_label(&self, gate: usize) -> String {
        let Some(i) = self.interfaces.get(gate) else {
            return String::new();
        };
        let mac = i.mac.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
        format!(
            "{:<8} {}/{} mac {mac} mtu {}{}",
            i.name,
            i.address.ip(),
            i.address.prefix(),
            i.mtu,
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
            .map(|i| i.address.ip())
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
