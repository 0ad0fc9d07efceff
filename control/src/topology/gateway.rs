//! The `nat` of a topology file, a two-sided function (the `firewall`, the other one, is
//! a kind of the registry: `nfv_functions::firewall`).
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

use std::collections::HashMap;
use std::net::Ipv4Addr;

use nfv_functions::firewall::raw_port_range;
use nfv_functions::kind::schema::{did_you_mean, max_entries, parse_cidr, parse_prefix, timeouts};
use nfv_functions::nat::{NatConfig, PortForward, DEFAULT_PORTS};
use serde::Deserialize;

use super::{RawFunction, RawTopology, Validator};

/// The two sides of a nat (as of a firewall), in gate order.
pub use nfv_functions::firewall::SIDES;

/// Most addresses a nat masquerades to.
pub const MAX_MASQUERADE: u64 = 4096;

/// A nat's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatFunction {
    /// The function's configuration; `config.addresses` holds the resolved addresses (the
    /// interface's address when `masquerade` named one).
    pub config: NatConfig,
    /// `Some((router, interface))` when masquerade named a router interface.
    pub interface: Option<(String, String)>,
}

/// Resolved `masquerade`: the addresses, and `(router, interface)` if it named one.
type Masquerade = (Vec<Ipv4Addr>, Option<(String, String)>);

/// A port forward as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForward {
    proto: Option<String>,
    port: Option<u64>,
    to: Option<String>,
}

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Protocol names, for messages.
fn proto_name(p: u8) -> String {
    match p {
        PROTO_ICMP => "icmp".into(),
        PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        n => n.to_string(),
    }
}

impl Validator<'_> {
    pub(super) fn nat(
        &mut self,
        key: &str,
        f: &RawFunction,
        raw: &RawTopology,
    ) -> Option<NatFunction> {
        let masquerade = match f.masquerade.as_deref() {
            None => {
                self.error(
                    format!("{key}.masquerade"),
                    "missing: a nat needs `masquerade`, the outside address(es): ROUTER.INTERFACE \
                     (like gw.wan), an address (203.0.113.2), a range \
                     (198.51.100.1-198.51.100.32) or a prefix (198.51.100.0/27)",
                );
                None
            }
            Some(m) => self.masquerade(&format!("{key}.masquerade"), m, raw),
        };
        let ports = match &f.ports {
            None => DEFAULT_PORTS,
            Some(p) => match raw_port_range(p) {
                Ok(r) if r.lo == 0 => {
                    self.error(
                        format!("{key}.ports"),
                        format!(
                            "port 0 cannot be handed out: start the range at 1 or above (default {}-{})",
                            DEFAULT_PORTS.lo, DEFAULT_PORTS.hi
                        ),
                    );
                    DEFAULT_PORTS
                }
                Ok(r) => r,
                Err(m) => {
                    self.error(format!("{key}.ports"), m);
                    DEFAULT_PORTS
                }
            },
        };
        let forwards = self.forwards(key, f.forwards.as_deref().unwrap_or_default());
        let max_sessions = max_entries(self, &format!("{key}.max_sessions"), f.max_sessions);
        let timeouts = timeouts(self, key, f.timeouts.as_ref());
        let (addresses, interface) = masquerade?;
        Some(NatFunction {
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

    /// The addresses `masquerade` names, and the router interface if it names one.
    fn masquerade(&mut self, key: &str, m: &str, raw: &RawTopology) -> Option<Masquerade> {
        let m = m.trim();
        let address_like = !m.is_empty()
            && m.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'/'));
        if address_like {
            return match masquerade_addresses(m) {
                Ok(a) => Some((a, None)),
                Err(e) => {
                    self.error(key, e);
                    None
                }
            };
        }
        let Some((r, i)) = m.split_once('.') else {
            self.error(
                key,
                format!(
                    "`{m}` is not a masquerade: expected ROUTER.INTERFACE (like gw.wan), an \
                     address (203.0.113.2), a range (198.51.100.1-198.51.100.32) or a prefix \
                     (198.51.100.0/27)"
                ),
            );
            return None;
        };
        let routers: Vec<&(String, RawFunction)> = raw
            .functions
            .0
            .iter()
            .filter(|(_, rf)| rf.kind.as_deref() == Some("router"))
            .collect();
        let Some((_, rf)) = routers.iter().find(|(n, _)| n == r) else {
            let hint = did_you_mean(r, routers.iter().map(|(n, _)| n.as_str()));
            let what = match raw.functions.0.iter().find(|(n, _)| n == r) {
                Some((_, other)) => format!(
                    "`{r}` is a {}, not a router",
                    other.kind.as_deref().unwrap_or("function without a kind")
                ),
                None => format!("no router named `{r}`"),
            };
            self.error(
                key,
                format!("`{m}`: {what}; ROUTER.INTERFACE names an interface of a router under `functions`{hint}"),
            );
            return None;
        };
        let names: Vec<&str> = rf.interfaces.0.iter().map(|(n, _)| n.as_str()).collect();
        let Some((_, ri)) = rf.interfaces.0.iter().find(|(n, _)| n == i) else {
            let hint = did_you_mean(i, names.iter().copied());
            self.error(
                key,
                format!(
                    "`{m}`: router `{r}` has no interface `{i}` (its interfaces: {}){hint}",
                    names.join(", ")
                ),
            );
            return None;
        };
        // A missing or bad interface address is reported at the router.
        let address = ri.address.as_deref().and_then(|a| parse_cidr(a).ok())?;
        Some((vec![address.ip()], Some((r.to_string(), i.to_string()))))
    }

    fn forwards(&mut self, key: &str, list: &[RawForward]) -> Vec<PortForward> {
        let mut out: Vec<PortForward> = Vec::new();
        let mut seen: HashMap<(u8, u16), usize> = HashMap::new();
        for (n, fw) in list.iter().enumerate() {
            let fkey = format!("{key}.forwards[{n}]");
            let proto = match fw.proto.as_deref() {
                None => {
                    self.error(
                        format!("{fkey}.proto"),
                        "missing: a forward needs `proto`, tcp or udp",
                    );
                    None
                }
                Some("tcp") => Some(PROTO_TCP),
                Some("udp") => Some(PROTO_UDP),
                Some(o) => {
                    self.error(
                        format!("{fkey}.proto"),
                        format!("`{o}` is not a forward protocol: expected tcp or udp"),
                    );
                    None
                }
            };
            let port = match fw.port {
                None => {
                    self.error(
                        format!("{fkey}.port"),
                        "missing: a forward needs `port`, the outside port (1 to 65535)",
                    );
                    None
                }
                Some(p) if (1..=65535).contains(&p) => Some(p as u16),
                Some(p) => {
                    self.error(
                        format!("{fkey}.port"),
                        format!("port {p} is out of range: expected 1 to 65535"),
                    );
                    None
                }
            };
            let to = match fw.to.as_deref() {
                None => {
                    self.error(
                        format!("{fkey}.to"),
                        "missing: a forward needs `to`, the inside address and port, like 192.168.1.10:80",
                    );
                    None
                }
                Some(t) => match forward_target(t) {
                    Ok(x) => Some(x),
                    Err(m) => {
                        self.error(format!("{fkey}.to"), m);
                        None
                    }
                },
            };
            let (Some(proto), Some(port), Some((to, to_port))) = (proto, port, to) else {
                continue;
            };
            if let Some(first) = seen.get(&(proto, port)) {
                self.error(
                    format!("{fkey}.port"),
                    format!(
                        "a {} forward of port {port} is already given at {key}.forwards[{first}]: forward each port once",
                        proto_name(proto)
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
    if count > MAX_MASQUERADE {
        return Err(format!(
            "`{m}` holds {count} addresses: a nat masquerades to at most {MAX_MASQUERADE}"
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
