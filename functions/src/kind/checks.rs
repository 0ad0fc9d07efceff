//! Checks of single values that several kinds (and `nfv-control`'s own parts of the file)
//! share, each reporting a bad value at its key with the same words everywhere: those the
//! port kinds share too (MTUs, MAC and IPv4 addresses, from `nfv_dataplane::config::checks`),
//! host addresses with their subnet, and names.

use ipnetwork::Ipv4Network;

pub use nfv_dataplane::config::checks::{
    ipv4, mac, mtu, unicast_mac, DEFAULT_MTU, MAX_MTU, MIN_MTU,
};

use super::schema::parse_cidr;
use super::Report;

/// `a` as a host address with its subnet (`10.0.0.1/24`): not the subnet's network or
/// broadcast address.
pub fn host_cidr(r: &mut dyn Report, key: &str, a: &str) -> Option<Ipv4Network> {
    let n = match parse_cidr(a) {
        Ok(n) => n,
        Err(m) => {
            r.error(key, m);
            return None;
        }
    };
    if n.prefix() < 31 && (n.ip() == n.network() || n.ip() == n.broadcast()) {
        r.error(
            key,
            format!("{n} is the subnet's network or broadcast address, not a host address"),
        );
        return None;
    }
    Some(n)
}

/// A name that can stand in a link end and a key path: letters, digits, `_` and `-`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Problems;
    use std::net::Ipv4Addr;

    #[test]
    fn values_are_checked_and_reported_at_their_key() {
        let mut p = Problems::default();
        assert_eq!(
            ipv4(&mut p, "a", "10.0.0.1"),
            Some(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(ipv4(&mut p, "b", "10.0.0"), None);
        assert_eq!(unicast_mac(&mut p, "c", "01:00:5e:00:00:01"), None);
        assert_eq!(unicast_mac(&mut p, "d", "00:00:00:00:00:00"), None);
        assert_eq!(unicast_mac(&mut p, "e", "zz"), None);
        assert_eq!(host_cidr(&mut p, "f", "10.0.0.0/24"), None);
        assert!(host_cidr(&mut p, "g", "10.0.0.1/31").is_some());
        assert_eq!(mtu(&mut p, "h", Some(67)), 1500);
        assert_eq!(mtu(&mut p, "i", Some(70_000)), 1500);
        assert_eq!(mtu(&mut p, "j", None), 1500);
        let keys: Vec<&str> = p.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "c", "d", "e", "f", "h", "i"], "{:?}", p.0);
        assert!(p.0[1].1.contains("multicast"), "{:?}", p.0);
        assert!(p.0[4].1.contains("network or broadcast"), "{:?}", p.0);
        assert!(valid_name("lan-1_a") && !valid_name("") && !valid_name("a.b"));
    }
}
