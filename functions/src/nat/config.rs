//! A NAT's settings as the topology file writes them, checked: the `nat` kind.
//!
//! ```yaml
//! functions:
//!   nat:
//!     kind: nat                      # two sides: `inside` (gate 0) and `outside` (gate 1)
//!     masquerade: gw.wan             # required: ROUTER.INTERFACE (that interface's address),
//!                                    # an address (203.0.113.2), a range
//!                                    # (198.51.100.1-198.51.100.32) or a prefix
//!                                    # (198.51.100.0/27: every address in it); at most 4096
//!     ports: 1024-65535              # outside ports handed out (this is the default); or `N`
//!     max_sessions: 65536            # 1 to 16777216 (default 65536)
//!     timeouts: { udp: 30s, tcp_established: 1h }  # idle timeouts, durations as elsewhere:
//!                                    # tcp_syn, tcp_established, tcp_fin, tcp_close, udp,
//!                                    # udp_stream, icmp (defaults: Linux's)
//!     forwards:                      # port forwards (DNAT) on the first masquerade address
//!       - { proto: tcp, port: 8080, to: 192.168.1.10:80 }
//!       - { proto: udp, port: 5000, to: 192.168.1.10 }   # the inside port defaults to `port`
//! links:
//!   - [gw.wan, nat, wan]             # in the middle of a chain the left neighbour is wired to
//!                                    # `inside`, the right one to `outside`
//!   - [lan, nat2.inside]             # at the end of a link, name the side
//! ```
//!
//! `masquerade: ROUTER.INTERFACE` is the one setting a NAT cannot check alone: it names
//! another function. The kind reads it as a [`Masquerade`] hook, and `nfv-control` resolves
//! it against the topology's routers ([`Spec::masquerade`], [`Spec::masquerade_resolved`]):
//! the NAT takes the interface's address, and the router treats that interface as a NAT's
//! outside.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde::Deserialize;

use super::{Nat, NatConfig, PortForward, DEFAULT_PORTS, MAX_ADDRESSES};
use crate::firewall::{raw_port_range, RawPorts, SIDES};
use crate::kind::schema::{max_entries, parse_prefix, timeouts, Ordered, RawDuration};
use crate::kind::{
    self, BuildContext, Built, Counting, Kind, Masquerade, Metric, Report, Spec, Wiring,
};

/// The `nat` kind, for the registry.
pub struct NatFunctionKind;

impl Kind for NatFunctionKind {
    fn name(&self) -> &'static str {
        "nat"
    }

    fn about(&self) -> &'static str {
        "masquerade (source NAT) from `inside` to `outside`, with port forwards: masquerade, \
         ports, max_sessions, timeouts, forwards"
    }

    fn keys(&self) -> &'static [&'static str] {
        &[
            "masquerade",
            "ports",
            "max_sessions",
            "timeouts",
            "forwards",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["nat"]
    }

    fn metrics(&self) -> &'static [&'static Metric] {
        &super::metrics::METRICS
    }

    fn load(&self, text: &str, report: &mut dyn Report) -> Option<Box<dyn Spec>> {
        let raw: RawNat = kind::settings(text, report)?;
        let mut c = Counting::new(report);
        let spec = nat(&mut c, &raw);
        match spec {
            Some(s) if c.errors == 0 => Some(Box::new(s)),
            _ => None,
        }
    }
}

/// A NAT as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNat {
    masquerade: Option<String>,
    ports: Option<RawPorts>,
    max_sessions: Option<u64>,
    timeouts: Option<Ordered<RawDuration>>,
    forwards: Option<Vec<RawForward>>,
}

/// A port forward as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    proto: Option<String>,
    port: Option<u64>,
    to: Option<String>,
}

/// A NAT's checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSpec {
    /// The node's configuration; `config.addresses` holds the resolved addresses (the
    /// interface's address, once resolved, when `masquerade` named one).
    pub config: NatConfig,
    /// `Some((router, interface))` when masquerade named a router interface.
    pub interface: Option<(String, String)>,
}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn nat(r: &mut Counting<'_>, f: &RawNat) -> Option<NatSpec> {
    let masquerade = match f.masquerade.as_deref() {
        None => {
            r.error(
                "masquerade",
                "missing: a nat needs `masquerade`, the outside address(es): ROUTER.INTERFACE \
                 (like gw.wan), an address (203.0.113.2), a range \
                 (198.51.100.1-198.51.100.32) or a prefix (198.51.100.0/27)"
                    .into(),
            );
            None
        }
        Some(m) => masquerade(r, m),
    };
    let ports = match &f.ports {
        None => DEFAULT_PORTS,
        Some(p) => match raw_port_range(p) {
            Ok(range) if range.lo == 0 => {
                r.error(
                    "ports",
                    format!(
                        "port 0 cannot be handed out: start the range at 1 or above (default {}-{})",
                        DEFAULT_PORTS.lo, DEFAULT_PORTS.hi
                    ),
                );
                DEFAULT_PORTS
            }
            Ok(range) => range,
            Err(m) => {
                r.error("ports", m);
                DEFAULT_PORTS
            }
        },
    };
    let forwards = forwards(r, f.forwards.as_deref().unwrap_or_default());
    let max_sessions = max_entries(r, "max_sessions", f.max_sessions);
    let timeouts = timeouts(r, "", f.timeouts.as_ref());
    let (addresses, interface) = masquerade?;
    Some(NatSpec {
        config: NatConfig {
            addresses,
            ports,
            forwards,
            max_sessions,
            timeouts,
        },
        interface,
    })
}

/// The addresses `masquerade` names, or the router interface it names (resolved later).
/// Resolved `masquerade`: the addresses, and `(router, interface)` if it named one (the
/// addresses are then filled in by the hook).
type Resolved = (Vec<Ipv4Addr>, Option<(String, String)>);

fn masquerade(r: &mut Counting<'_>, m: &str) -> Option<Resolved> {
    let m = m.trim();
    let address_like = !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'/'));
    if address_like {
        return match masquerade_addresses(m) {
            Ok(a) => Some((a, None)),
            Err(e) => {
                r.error("masquerade", e);
                None
            }
        };
    }
    match m.split_once('.') {
        Some((router, iface)) => Some((Vec::new(), Some((router.into(), iface.into())))),
        None => {
            r.error(
                "masquerade",
                format!(
                    "`{m}` is not a masquerade: expected ROUTER.INTERFACE (like gw.wan), an \
                     address (203.0.113.2), a range (198.51.100.1-198.51.100.32) or a prefix \
                     (198.51.100.0/27)"
                ),
            );
            None
        }
    }
}

fn forwards(r: &mut Counting<'_>, list: &[RawForward]) -> Vec<PortForward> {
    let mut out: Vec<PortForward> = Vec::new();
    let mut seen: HashMap<(u8, u16), usize> = HashMap::new();
    for (n, fw) in list.iter().enumerate() {
        let fkey = format!("forwards[{n}]");
        let proto = match fw.proto.as_deref() {
            None => {
                r.error(
                    &format!("{fkey}.proto"),
                    "missing: a forward needs `proto`, tcp or udp".into(),
                );
                None
            }
            Some("tcp") => Some(PROTO_TCP),
            Some("udp") => Some(PROTO_UDP),
            Some(o) => {
                r.error(
                    &format!("{fkey}.proto"),
                    format!("`{o}` is not a forward protocol: expected tcp or udp"),
                );
                None
            }
        };
        let port = match fw.port {
            None => {
                r.error(
                    &format!("{fkey}.port"),
                    "missing: a forward needs `port`, the outside port (1 to 65535)".into(),
                );
                None
            }
            Some(p) if (1..=65535).contains(&p) => Some(p as u16),
            Some(p) => {
                r.error(
                    &format!("{fkey}.port"),
                    format!("port {p} is out of range: expected 1 to 65535"),
                );
                None
            }
        };
        let to = match fw.to.as_deref() {
            None => {
                r.error(
                    &format!("{fkey}.to"),
                    "missing: a forward needs `to`, the inside address and port, like 192.168.1.10:80"
                        .into(),
                );
                None
            }
            Some(t) => match forward_target(t) {
                Ok(x) => Some(x),
                Err(m) => {
                    r.error(&format!("{fkey}.to"), m);
                    None
                }
            },
        };
        let (Some(proto), Some(port), Some((to, to_port))) = (proto, port, to) else {
            continue;
        };
        if let Some(first) = seen.get(&(proto, port)) {
            let name = if proto == PROTO_TCP { "tcp" } else { "udp" };
            r.error(
                &format!("{fkey}.port"),
                format!(
                    "a {name} forward of port {port} is already given at {}: forward each port once",
                    r.absolute(&format!("forwards[{first}]"))
                ),
            );
            continue;
        }
        seen.insert((proto, port), n);
        out.push(PortForward {
            proto,
            port,
            to,
            to_port: to_port.unwrap_or(port),
        });
    }
    out
}

/// The addresses of `masquerade` written as an address, a range or a prefix.
fn masquerade_addresses(m: &str) -> Result<Vec<Ipv4Addr>, String> {
    let parse = |a: &str| -> Result<Ipv4Addr, String> {
        a.trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 address"))
    };
    let (lo, hi) = if m.contains('/') {
        let net = parse_prefix(m)?;
        (u32::from(net.network()), u32::from(net.broadcast()))
    } else if let Some((a, b)) = m.split_once('-') {
        let (a, b) = (parse(a)?, parse(b)?);
        if u32::from(a) > u32::from(b) {
            return Err(format!(
                "`{m}`: the first address is above the last (write {b}-{a})"
            ));
        }
        (u32::from(a), u32::from(b))
    } else {
        let a = parse(m)?;
        (u32::from(a), u32::from(a))
    };
    let count = u64::from(hi - lo) + 1;
    if count > MAX_ADDRESSES as u64 {
        return Err(format!(
            "`{m}` holds {count} addresses: a nat masquerades to at most {MAX_ADDRESSES}"
        ));
    }
    Ok((lo..=hi).map(Ipv4Addr::from).collect())
}

/// A forward's `to`: `ADDRESS` or `ADDRESS:PORT`.
fn forward_target(t: &str) -> Result<(Ipv4Addr, Option<u16>), String> {
    let expected = "expected the inside address and port, like 192.168.1.10:80 (or 192.168.1.10 for the same port)";
    let (a, p) = match t.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (t, None),
    };
    let addr: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not an address: {expected}"))?;
    let port = match p {
        None => None,
        Some(p) => match p.trim().parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Some(n as u16),
            Ok(n) => {
                return Err(format!(
                    "`{t}`: port {n} is out of range: expected 1 to 65535"
                ))
            }
            Err(_) => return Err(format!("`{t}`: `{p}` is not a port: {expected}")),
        },
    };
    Ok((addr, port))
}

impl Spec for NatSpec {
    fn kind(&self) -> &'static dyn Kind {
        &NatFunctionKind
    }

    fn wiring(&self) -> Wiring {
        Wiring {
            noun: "side",
            ..Wiring::fixed(&SIDES, Some((0, 1)))
        }
    }

    fn build(&self, _at: &BuildContext<'_>) -> Result<Built, String> {
        let nat = Nat::new(self.config.clone()).map_err(|e| e.to_string())?;
        let stats = nat.stats();
        Ok(Built::new(nat, stats))
    }

    fn masquerade(&self) -> Option<Masquerade> {
        self.interface
            .clone()
            .map(|(router, interface)| Masquerade {
                key: "masquerade",
                router,
                interface,
            })
    }

    fn masquerade_resolved(&mut self, address: Ipv4Addr) {
        self.config.addresses = vec![address];
    }

    /// `nat to ADDRESSES, ports P, N forward(s), M sessions`, then the first 20 forwards.
    fn describe(&self) -> String {
        let c = &self.config;
        let addresses = match c.addresses.as_slice() {
            [] => "-".to_string(),
            [one] => one.to_string(),
            [first, .., last] => format!("{first}-{last} ({} addresses)", c.addresses.len()),
        };
        let mut s = format!(
            "nat to {addresses}, ports {}, {} forward(s), {} sessions",
            c.ports,
            c.forwards.len(),
            c.max_sessions
        );
        let first = c
            .addresses
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default();
        for fw in c.forwards.iter().take(20) {
            let proto = match fw.proto {
                PROTO_TCP => "tcp".to_string(),
                PROTO_UDP => "udp".to_string(),
                n => format!("proto {n}"),
            };
            s.push_str(&format!(
                "\nforward {proto} {first}:{} -> {}:{}",
                fw.port, fw.to, fw.to_port
            ));
        }
        if c.forwards.len() > 20 {
            s.push_str(&format!(
                "\n... and {} more forwards",
                c.forwards.len() - 20
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_targets_and_masquerade_ranges() {
        assert_eq!(
            forward_target("10.0.0.1:80"),
            Ok((Ipv4Addr::new(10, 0, 0, 1), Some(80)))
        );
        assert_eq!(
            forward_target("10.0.0.1"),
            Ok((Ipv4Addr::new(10, 0, 0, 1), None))
        );
        assert!(forward_target("10.0.0.1:0").is_err());
        assert!(forward_target("host:80").is_err());
        assert_eq!(masquerade_addresses("10.0.0.0/32").map(|a| a.len()), Ok(1));
        assert!(masquerade_addresses("10.0.0.0/19").is_err_and(|m| m.contains("8192")));
        assert!(masquerade_addresses("10.0.0.0/20").is_ok());
    }
}
