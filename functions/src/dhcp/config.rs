//! A DHCP server's settings as the topology file writes them, checked: the `dhcp-server`
//! kind.
//!
//! ```yaml
//! functions:
//!   dhcp:
//!     kind: dhcp-server           # one wire end: link it to the switch of its segment
//!     address: 192.168.1.2/24     # its own address and the subnet it serves (required)
//!     mac: 02:00:00:00:00:02      # derived from the names when not given
//!     pool: 192.168.1.100-192.168.1.199   # one range or a list (required)
//!     router: 192.168.1.1
//!     dns: [192.168.1.1]
//!     domain: lab.example
//!     lease: 1h                   # and renew, rebind (defaults: half and 7/8 of lease)
//!     reservations: { 02:00:00:00:01:0a: 192.168.1.10 }
//!     options: { 42: 10.0.1.1, 252: 0x0a0b }   # extra options: addresses, 0x hex or text
//!     leases: dhcp.leases         # the lease file (relative to the topology file);
//!                                 # default /var/lib/nfv/TOPOLOGY/NAME.leases
//!     gateway: 192.168.1.1        # the router toward relays on other subnets
//!     subnets:                    # more subnets, served through relays (giaddr picks one)
//!       - subnet: 10.0.1.0/24
//!         pool: 10.0.1.100-10.0.1.199           # required; a range or a list
//!         router: 10.0.1.1                      # not inherited
//!         dns: [10.0.1.1]         # dns, domain, lease (with renew and rebind) and options:
//!         lease: 30m              # the server's own when not given
//! ```
//!
//! With `subnets`, `pool` may be left out: the server then hands out no address on its
//! own segment. A `subnets` entry that sets `lease` takes its own `renew` and `rebind` (or
//! their defaults); one that does not takes the server's three.
//!
//! The lease file is the one part of a DHCP server that is not the kind's own: its path is
//! read relative to the topology file ([`Report::path`]) and kept by `nfv-control`
//! ([`Spec::state_file`]), which reads
//! the leases at start and writes them after every change, on a thread of its own; the
//! server gets them through [`BuildContext::leases`].

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use nfv_dataplane::MacAddr;
use serde::Deserialize;

use super::{DhcpConfig, DhcpServer, DhcpSubnet};
use crate::kind::checks::{host_cidr, ipv4, unicast_mac};
use crate::kind::schema::{
    duration_or, fmt_duration, parse_prefix, OneOrMany, Ordered, RawDuration,
};
use crate::kind::{
    self, derived_mac, BuildContext, Built, Counting, Kind, Metric, Report, Spec, Wiring,
};

/// The `dhcp-server` kind, for the registry.
pub struct DhcpKind;

/// Where lease files go when a dhcp-server names none.
pub const LEASE_DIR: &str = "/var/lib/nfv";

impl Kind for DhcpKind {
    fn name(&self) -> &'static str {
        "dhcp-server"
    }

    fn about(&self) -> &'static str {
        "a DHCPv4 server for its segment and, through relays, for other subnets: address, \
         pool, router, dns, domain, lease, renew, rebind, reservations, options, leases, \
         gateway, subnets"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "address",
            "mac",
            "pool",
            "router",
            "dns",
            "domain",
            "lease",
            "renew",
            "rebind",
            "reservations",
            "options",
            "leases",
            "gateway",
            "subnets",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["leases"]
    }

    fn metrics(&self) -> &'static [&'static Metric] {
        &super::metrics::METRICS
    }

    fn load(&self, text: &str, report: &mut dyn Report) -> Option<Box<dyn Spec>> {
        let raw: RawDhcp = kind::settings(text, report)?;
        let mut c = Counting::new(report);
        let spec = dhcp(&mut c, &raw);
        match spec {
            Some(s) if c.errors == 0 => Some(Box::new(s)),
            _ => None,
        }
    }
}

/// A DHCP server as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDhcp {
    address: Option<String>,
    mac: Option<String>,
    pool: Option<OneOrMany>,
    router: Option<String>,
    dns: Option<OneOrMany>,
    domain: Option<String>,
    lease: Option<RawDuration>,
    renew: Option<RawDuration>,
    rebind: Option<RawDuration>,
    #[serde(default)]
    reservations: Ordered<String>,
    #[serde(default)]
    options: Ordered<String>,
    leases: Option<String>,
    gateway: Option<String>,
    #[serde(default)]
    subnets: Vec<RawSubnet>,
}

/// A `subnets` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubnet {
    subnet: Option<String>,
    pool: Option<OneOrMany>,
    router: Option<String>,
    dns: Option<OneOrMany>,
    domain: Option<String>,
    lease: Option<RawDuration>,
    renew: Option<RawDuration>,
    rebind: Option<RawDuration>,
    #[serde(default)]
    options: Ordered<String>,
}

/// A DHCP server's checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSpec {
    /// The server's address and the subnet it serves.
    pub address: Ipv4Network,
    /// Its MAC address; derived from the names when not given.
    pub mac: Option<MacAddr>,
    /// What it hands out in its own subnet: the top-level keys (no pools: it serves only
    /// `subnets`).
    pub own: DhcpSubnet,
    /// Fixed addresses by MAC.
    pub reservations: Vec<(MacAddr, Ipv4Addr)>,
    /// The lease file, if given (relative to the topology file's directory, [`Report::path`]).
    pub leases: Option<PathBuf>,
    /// The router toward relays on other subnets.
    pub gateway: Option<Ipv4Addr>,
    /// Subnets served through relays, with the server's settings filled in.
    pub subnets: Vec<DhcpSubnet>,
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

/// The bytes of an extra option value: a comma-separated IPv4 list, `0x` and hex digits, or
/// text.
pub fn option_bytes(v: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = v.strip_prefix("0x") {
        if hex.is_empty() || hex.len() % 2 != 0 {
            return Err(format!(
                "`{v}`: hex needs an even number of digits, like 0x0a0b"
            ));
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
                    .ok_or_else(|| {
                        format!(
                            "`{v}`: `{}` is not a hex byte",
                            hex.get(i..i + 2).unwrap_or("")
                        )
                    })
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

/// The keys a subnet's settings share, at the top level (the server's own subnet) and in
/// each `subnets` entry.
struct RawSettings<'a> {
    pool: Option<&'a OneOrMany>,
    router: Option<&'a str>,
    dns: Option<&'a OneOrMany>,
    domain: Option<&'a String>,
    lease: Option<&'a RawDuration>,
    renew: Option<&'a RawDuration>,
    rebind: Option<&'a RawDuration>,
    options: &'a Ordered<String>,
}

/// Check the settings `f` of the subnet `net` (`at`: their key prefix, `""` or
/// `subnets[i].`), the server's `own` address if it lies in it; the settings of the
/// server's own subnet fill what a `subnets` entry leaves out (`inherit`), but its router
/// and pools.
fn settings(
    r: &mut Counting<'_>,
    at: &str,
    f: &RawSettings<'_>,
    net: Option<Ipv4Network>,
    own: Option<Ipv4Addr>,
    inherit: Option<&DhcpSubnet>,
) -> DhcpSubnet {
    let key = |k: &str| format!("{at}{k}");
    let in_subnet = |ip: Ipv4Addr| net.is_none_or(|n| n.contains(ip));
    let subnet = net
        .map(|n| format!("{}/{}", n.network(), n.prefix()))
        .unwrap_or_default();
    let mut pools: Vec<(Ipv4Addr, Ipv4Addr)> = Vec::new();
    if let Some(list) = f.pool {
        if list.items.is_empty() {
            r.error(&key("pool"), "the pool list is empty".into());
        }
        for (i, range) in list.items.iter().enumerate() {
            let pkey = list.key(&key("pool"), i);
            let parsed = range.split_once('-').and_then(|(a, b)| {
                Some((
                    a.trim().parse::<Ipv4Addr>().ok()?,
                    b.trim().parse::<Ipv4Addr>().ok()?,
                ))
            });
            let Some((a, b)) = parsed else {
                r.error(&pkey, format!("`{range}` is not a range: expected FIRST-LAST, like 192.168.1.100-192.168.1.199"));
                continue;
            };
            if u32::from(a) > u32::from(b) {
                r.error(
                    &pkey,
                    format!("`{range}`: the first address is above the last"),
                );
                continue;
            }
            if !in_subnet(a) || !in_subnet(b) {
                let whose = if inherit.is_some() { "" } else { "server's " };
                r.error(
                    &pkey,
                    format!("`{range}` is not inside the {whose}subnet {subnet}"),
                );
                continue;
            }
            let (lo, hi) = (u32::from(a), u32::from(b));
            let inside = |x: Ipv4Addr| (lo..=hi).contains(&u32::from(x));
            if let Some(n) = net {
                if n.prefix() < 31 && (inside(n.network()) || inside(n.broadcast())) {
                    r.error(
                        &pkey,
                        format!("`{range}` holds the subnet's network or broadcast address"),
                    );
                    continue;
                }
            }
            if let Some(ip) = own.filter(|&ip| inside(ip)) {
                r.error(
                    &pkey,
                    format!("`{range}` holds the server's own address {ip}"),
                );
                continue;
            }
            if let Some(&(oa, ob)) = pools
                .iter()
                .find(|&&(oa, ob)| lo <= u32::from(ob) && u32::from(oa) <= hi)
            {
                r.error(&pkey, format!("`{range}` overlaps the range {oa}-{ob}"));
                continue;
            }
            pools.push((a, b));
        }
    }
    let router = f.router.and_then(|a| {
        let ip = ipv4(r, &key("router"), a)?;
        if !in_subnet(ip) {
            r.error(
                &key("router"),
                format!("router {ip} is not in the served subnet {subnet}"),
            );
        }
        Some(ip)
    });
    let mut dns = Vec::new();
    match f.dns {
        Some(list) => {
            for (i, d) in list.items.iter().enumerate() {
                if let Some(ip) = ipv4(r, &list.key(&key("dns"), i), d) {
                    dns.push(ip);
                }
            }
        }
        None => dns = inherit.map(|s| s.dns.clone()).unwrap_or_default(),
    }
    if let Some(d) = f.domain {
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            r.error(
                &key("domain"),
                format!("`{d}` is not a domain name like lab.example"),
            );
        }
    }
    let domain = f
        .domain
        .cloned()
        .or_else(|| inherit.and_then(|s| s.domain.clone()));
    // A subnet that sets its own lease takes its own renew and rebind times (or their
    // defaults) too, so that they stay below it.
    let own_times = inherit.is_none() || f.lease.is_some();
    let lease = duration_or(
        r,
        &key("lease"),
        f.lease,
        inherit.map_or(Duration::from_secs(3600), |s| s.lease),
    );
    let renew = match f.renew {
        Some(d) => Some(duration_or(r, &key("renew"), Some(d), lease / 2)),
        None if own_times => None,
        None => inherit.and_then(|s| s.renew),
    };
    let rebind = match f.rebind {
        Some(d) => Some(duration_or(r, &key("rebind"), Some(d), lease * 7 / 8)),
        None if own_times => None,
        None => inherit.and_then(|s| s.rebind),
    };
    let t1 = renew.unwrap_or(lease / 2);
    let t2 = rebind.unwrap_or(lease * 7 / 8);
    if t1 >= t2 || t2 >= lease {
        let k = if f.rebind.is_some() {
            "rebind"
        } else {
            "renew"
        };
        r.error(
            &key(k),
            format!(
                "expected renew < rebind < lease; here renew {}s, rebind {}s, lease {}s",
                t1.as_secs(),
                t2.as_secs(),
                lease.as_secs()
            ),
        );
    }
    let mut options = Vec::new();
    for (code, v) in &f.options.0 {
        let okey = key(&format!("options.{code}"));
        let Some(c) = code.parse::<u8>().ok().filter(|c| (1..=254).contains(c)) else {
            r.error(
                &okey,
                format!("`{code}` is not an option code: expected 1 to 254"),
            );
            continue;
        };
        if let Some((_, why)) = MANAGED_OPTIONS.iter().find(|(m, _)| *m == c) {
            r.error(&okey, format!("option {c} is set by the server: {why}"));
            continue;
        }
        match option_bytes(v) {
            Ok(b) => options.push((c, b)),
            Err(m) => r.error(&okey, m),
        }
    }
    if f.options.0.is_empty() {
        options = inherit.map(|s| s.options.clone()).unwrap_or_default();
    }
    DhcpSubnet {
        network: net.map_or(Ipv4Addr::UNSPECIFIED, |n| n.network()),
        prefix_len: net.map_or(0, |n| n.prefix()),
        pools,
        router,
        dns,
        domain,
        lease,
        renew,
        rebind,
        options,
    }
}

fn dhcp(r: &mut Counting<'_>, f: &RawDhcp) -> Option<DhcpSpec> {
    let address = match f.address.as_deref() {
        None => {
            r.error(
                "address",
                "missing: a dhcp-server needs its own `address` with the subnet it serves, like 192.168.1.2/24 (it is the server identifier clients renew with)".into(),
            );
            None
        }
        Some(a) => host_cidr(r, "address", a),
    };
    let mac = f.mac.as_deref().and_then(|m| unicast_mac(r, "mac", m));
    if f.pool.is_none() && f.subnets.is_empty() {
        r.error(
            "pool",
            "missing: a dhcp-server needs a `pool` of addresses, like 192.168.1.100-192.168.1.199 (or `subnets` it serves through relays)"
                .into(),
        );
    }
    let top = RawSettings {
        pool: f.pool.as_ref(),
        router: f.router.as_deref(),
        dns: f.dns.as_ref(),
        domain: f.domain.as_ref(),
        lease: f.lease.as_ref(),
        renew: f.renew.as_ref(),
        rebind: f.rebind.as_ref(),
        options: &f.options,
    };
    let own = settings(r, "", &top, address, address.map(|n| n.ip()), None);
    let in_own = |ip: Ipv4Addr| address.is_none_or(|n| n.contains(ip));
    let gateway = f.gateway.as_deref().and_then(|g| {
        let ip = ipv4(r, "gateway", g)?;
        let n = address?;
        if !n.contains(ip) || ip == n.ip() || (n.prefix() < 31 && (ip == n.network() || ip == n.broadcast())) {
            r.error(
                "gateway",
                format!("gateway {ip} is not another host in the server's subnet {}/{}: it is the router the server reaches other subnets through", n.network(), n.prefix()),
            );
            return None;
        }
        Some(ip)
    });
    if !f.subnets.is_empty() && f.gateway.is_none() {
        r.error(
            "gateway",
            "missing: a dhcp-server with `subnets` answers their relays through a `gateway` in its own subnet, like the router that relays to it".into(),
        );
    }
    let mut subnets: Vec<DhcpSubnet> = Vec::new();
    for (i, raw) in f.subnets.iter().enumerate() {
        let at = format!("subnets[{i}].");
        let Some(text) = raw.subnet.as_deref() else {
            r.error(
                &format!("{at}subnet"),
                "missing: a `subnets` entry needs its `subnet`, like 10.0.1.0/24 (relays whose giaddr lies in it are served from it)".into(),
            );
            continue;
        };
        let net = match parse_prefix(text) {
            Ok(n) => n,
            Err(m) => {
                r.error(&format!("{at}subnet"), m);
                continue;
            }
        };
        let overlaps = |o: &Ipv4Network| o.contains(net.network()) || net.contains(o.network());
        if let Some(n) = address.filter(overlaps) {
            r.error(
                &format!("{at}subnet"),
                format!(
                    "{net} overlaps the server's own subnet {}/{}",
                    n.network(),
                    n.prefix()
                ),
            );
            continue;
        }
        if let Some(o) = subnets
            .iter()
            .find(|o| overlaps(&Ipv4Network::new(o.network, o.prefix_len).unwrap_or(net)))
        {
            r.error(
                &format!("{at}subnet"),
                format!(
                    "{net} overlaps the subnet {}/{} given before",
                    o.network, o.prefix_len
                ),
            );
            continue;
        }
        if raw.pool.is_none() {
            r.error(
                &format!("{at}pool"),
                "missing: a `subnets` entry needs a `pool` of addresses in its subnet".into(),
            );
        }
        let s = RawSettings {
            pool: raw.pool.as_ref(),
            router: raw.router.as_deref(),
            dns: raw.dns.as_ref(),
            domain: raw.domain.as_ref(),
            lease: raw.lease.as_ref(),
            renew: raw.renew.as_ref(),
            rebind: raw.rebind.as_ref(),
            options: &raw.options,
        };
        subnets.push(settings(r, &at, &s, Some(net), None, Some(&own)));
    }
    let served = |ip: Ipv4Addr| {
        in_own(ip)
            || subnets.iter().any(|s| {
                u32::from(ip) & crate::ip::prefix_mask(s.prefix_len) == u32::from(s.network)
            })
    };
    let mut reservations: Vec<(MacAddr, Ipv4Addr)> = Vec::new();
    for (m, ip) in &f.reservations.0 {
        let rkey = format!("reservations.{m}");
        let Some(mac) = unicast_mac(r, &rkey, m) else {
            continue;
        };
        let Some(ip) = ipv4(r, &rkey, ip) else {
            continue;
        };
        if !served(ip) || address.is_some_and(|n| n.ip() == ip) {
            r.error(
                &rkey,
                format!("{ip} is not a free address in a subnet the server serves"),
            );
            continue;
        }
        if let Some((other, _)) = reservations.iter().find(|(_, o)| *o == ip) {
            r.error(&rkey, format!("{ip} is already reserved for {other}"));
            continue;
        }
        reservations.push((mac, ip));
    }
    Some(DhcpSpec {
        address: address?,
        mac,
        own,
        reservations,
        leases: f.leases.as_deref().map(|p| r.path(p)),
        gateway,
        subnets,
    })
}

impl DhcpSpec {
    /// The server's configuration, its MAC derived from the names when not given.
    pub fn config(&self, at: &BuildContext<'_>, wall_at_zero: u64) -> DhcpConfig {
        DhcpConfig {
            mac: self
                .mac
                .unwrap_or_else(|| derived_mac(&[at.topology, at.function])),
            address: self.address.ip(),
            own: self.own.clone(),
            reservations: self.reservations.clone(),
            offer_hold: Duration::from_secs(60),
            wall_at_zero,
            gateway: self.gateway,
            subnets: self.subnets.clone(),
        }
    }
}

impl Spec for DhcpSpec {
    fn kind(&self) -> &'static dyn Kind {
        &DhcpKind
    }

    fn wiring(&self) -> Wiring {
        Wiring {
            single: true,
            ..Wiring::fixed(&[""], None)
        }
    }

    fn build(&self, at: &BuildContext<'_>) -> Result<Built, String> {
        let store = at.leases;
        let wall = store.map_or(0, |s| s.wall_at_zero);
        let known = store.map(|s| s.known.clone()).unwrap_or_default();
        let updates = store.map(|s| s.updates.clone());
        let server = DhcpServer::new(self.config(at, wall), known, updates);
        let stats = server.stats();
        Ok(Built::new(server, stats))
    }

    /// The MAC derived from the names and the default lease file, where not given.
    fn complete(&mut self, at: &BuildContext<'_>) {
        self.mac
            .get_or_insert_with(|| derived_mac(&[at.topology, at.function]));
        self.leases.get_or_insert_with(|| {
            PathBuf::from(LEASE_DIR)
                .join(at.topology)
                .join(format!("{}.leases", at.function))
        });
    }

    fn state_file(&self) -> Option<PathBuf> {
        self.leases.clone()
    }

    fn describe(&self) -> String {
        let pools: Vec<String> = self
            .own
            .pools
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect();
        let mac = self
            .mac
            .map(|m| m.to_string())
            .unwrap_or_else(|| "-".into());
        let router = self
            .own
            .router
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into());
        let leases = self
            .leases
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let pools = if pools.is_empty() {
            "none".to_string()
        } else {
            pools.join(", ")
        };
        let mut s = format!(
            "dhcp-server {} mac {mac}, pool {pools}, lease {}\nrouter {router}, {} reservation(s), leases in {leases}",
            self.address,
            fmt_duration(self.own.lease),
            self.reservations.len(),
        );
        if let Some(g) = self.gateway {
            s.push_str(&format!("\ngateway {g}"));
        }
        for sub in &self.subnets {
            let pools: Vec<String> = sub.pools.iter().map(|(a, b)| format!("{a}-{b}")).collect();
            let router = sub
                .router
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into());
            s.push_str(&format!(
                "\nsubnet {}/{} (relayed): pool {}, router {router}, lease {}",
                sub.network,
                sub.prefix_len,
                pools.join(", "),
                fmt_duration(sub.lease)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(option_bytes("0xé1").is_err());
    }

    fn load(text: &str) -> Result<DhcpSpec, Vec<(String, String)>> {
        let mut p = crate::kind::Problems::default();
        let raw: RawDhcp = match crate::kind::settings(text, &mut p) {
            Some(r) => r,
            None => return Err(p.0),
        };
        let mut c = Counting::new(&mut p);
        let spec = dhcp(&mut c, &raw);
        let errors = c.errors;
        match spec {
            Some(s) if errors == 0 => Ok(s),
            _ => Err(p.0),
        }
    }

    #[test]
    fn subnets_take_the_servers_settings_they_leave_out() {
        let s = load("{ address: 10.0.0.2/24, gateway: 10.0.0.1, pool: 10.0.0.100-10.0.0.199, dns: [10.0.0.53], domain: lab.example, lease: 2h, renew: 1h, rebind: 90m, options: { 42: 10.0.0.1 }, reservations: { 02:00:00:00:00:09: 10.1.0.9 }, subnets: [{ subnet: 10.1.0.0/24, pool: [10.1.0.10-10.1.0.20, 10.1.0.30-10.1.0.40], router: 10.1.0.1 }, { subnet: 10.2.0.0/16, pool: 10.2.1.0-10.2.9.255, dns: 10.2.0.53, domain: far.example, lease: 10m, options: { 66: tftp } }] }")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        let [a, b] = s.subnets.as_slice() else {
            panic!("two subnets: {:?}", s.subnets)
        };
        assert_eq!((a.network, a.prefix_len), (Ipv4Addr::new(10, 1, 0, 0), 24));
        assert_eq!(a.pools.len(), 2);
        assert_eq!(a.router, Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(a.dns, [Ipv4Addr::new(10, 0, 0, 53)], "inherited");
        assert_eq!(a.domain.as_deref(), Some("lab.example"));
        assert_eq!(
            (a.lease, a.renew, a.rebind),
            (
                Duration::from_secs(7200),
                Some(Duration::from_secs(3600)),
                Some(Duration::from_secs(5400))
            ),
            "the server's three times"
        );
        assert_eq!(a.options, [(42, vec![10, 0, 0, 1])]);
        assert_eq!(b.router, None, "a router is not inherited");
        assert_eq!(b.dns, [Ipv4Addr::new(10, 2, 0, 53)]);
        assert_eq!(b.domain.as_deref(), Some("far.example"));
        assert_eq!(
            (b.lease, b.renew, b.rebind),
            (Duration::from_secs(600), None, None),
            "its own lease: its own renew and rebind"
        );
        assert_eq!(b.options, [(66, b"tftp".to_vec())]);
        assert!(s.describe().contains("subnet 10.1.0.0/24 (relayed)"));
        // Without a pool of its own the server serves only its subnets.
        let s = load("{ address: 10.0.0.2/24, gateway: 10.0.0.1, subnets: [{ subnet: 10.1.0.0/24, pool: 10.1.0.10-10.1.0.20 }] }")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(s.own.pools.is_empty());
    }

    #[test]
    fn subnet_and_gateway_problems_are_named_by_key() {
        let e = load("{ address: 10.0.0.2/24, gateway: 10.0.1.1, pool: 10.0.0.100-10.0.0.199, reservations: { 02:00:00:00:00:09: 10.7.0.9 }, subnets: [{ subnet: 10.1.0.0/24, pool: 10.1.1.10-10.1.1.20, router: 10.3.0.1 }, { subnet: 10.0.0.0/16, pool: 10.0.5.1-10.0.5.9 }, { subnet: 10.1.0.0/25, pool: 10.1.0.1-10.1.0.9 }, { subnet: 10.4.0.1/24, pool: 10.4.0.1-10.4.0.9 }, { pool: 10.5.0.1-10.5.0.9 }, { subnet: 10.6.0.0/24 }, { subnet: 10.8.0.0/24, pool: 10.8.0.0-10.8.0.9, lease: 10m, renew: 20m }] }")
            .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gateway",
                "subnets[0].pool",
                "subnets[0].router",
                "subnets[1].subnet",
                "subnets[2].subnet",
                "subnets[3].subnet",
                "subnets[4].subnet",
                "subnets[5].pool",
                "subnets[6].pool",
                "subnets[6].renew",
                "reservations.02:00:00:00:00:09",
            ],
            "{e:?}"
        );
        let e = load("{ address: 10.0.0.2/24, subnets: [{ subnet: 10.1.0.0/24, pool: 10.1.0.10-10.1.0.20 }], bogus: 1 }")
            .unwrap_err();
        assert!(e[0].1.contains("unknown field `bogus`"), "{e:?}");
        let e = load("{ address: 10.0.0.2/24, subnets: [{ subnet: 10.1.0.0/24, pool: 10.1.0.10-10.1.0.20 }] }")
            .unwrap_err();
        assert_eq!(e[0].0, "gateway");
        assert!(e[0].1.contains("missing"), "{e:?}");
        let e = load("{ address: 10.0.0.2/24 }").unwrap_err();
        assert_eq!(e[0].0, "pool");
    }

    /// A lease of u64::MAX seconds used to panic in `lease * 7 / 8` (the default rebind
    /// time): it is refused at its key, like any duration past 2^32-1 seconds.
    #[test]
    fn an_endless_lease_is_refused_not_a_panic() {
        for lease in ["18446744073709551615", "99999999999d", "49711d"] {
            let text =
                format!("{{ address: 10.0.0.2/24, pool: 10.0.0.10-10.0.0.20, lease: {lease} }}");
            let mut p = crate::kind::Problems::default();
            assert!(DhcpKind.load(&text, &mut p).is_none(), "{lease}");
            assert!(
                p.0.iter()
                    .any(|(k, m)| k == "lease" && m.contains("at most 49710d")),
                "{lease}: {p:?}"
            );
        }
    }
}
