//! Checks of single values that several kinds (and `nfv-control`'s own parts of the file)
//! share, each reporting a bad value at its key with the same words everywhere: IPv4
//! addresses, host addresses with their subnet, MAC addresses, names and MTUs.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use nfv_dataplane::MacAddr;

use super::schema::parse_cidr;
use super::Report;

/// The largest MTU a port or interface takes: a frame of it (with an Ethernet header and
/// one VLAN tag) must fit a packet buffer.
pub const MAX_MTU: u32 = (nfv_dataplane::MAX_FRAME - 14 - 4) as u32;
/// The smallest MTU IPv4 allows (RFC 791).
pub const MIN_MTU: u32 = 68;

/// `a` as an IPv4 address, or `None` with the problem reported at `key`.
pub fn ipv4(r: &mut dyn Report, key: &str, a: &str) -> Option<Ipv4Addr> {
    let ip = a.parse().ok();
    if ip.is_none() {
        r.error(key, format!("`{a}` is not an IPv4 address"));
    }
    ip
}

/// `m` as a MAC address, or `None` with the problem reported at `key`.
pub fn mac(r: &mut dyn Report, key: &str, m: &str) -> Option<MacAddr> {
    let mac = m.parse::<MacAddr>().ok();
    if mac.is_none() {
        r.error(
            key,
            format!("`{m}` is not a MAC address: expected six hex bytes like 02:00:00:00:00:01"),
        );
    }
    mac
}

/// `m` as a unicast MAC address (not all zeros, not a group address).
pub fn unicast_mac(r: &mut dyn Report, key: &str, m: &str) -> Option<MacAddr> {
    let mac = mac(r, key, m)?;
    if mac == MacAddr([0; 6]) {
        r.error(
            key,
            format!("`{m}` is all zeros: expected a unicast MAC like 02:00:00:00:00:01"),
        );
        return None;
    }
    if mac.is_multicast() {
        r.error(
            key,
            format!("`{m}` is a multicast address: expected a unicast MAC"),
        );
        return None;
    }
    Some(mac)
}

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

/// An MTU, 1500 when not given; one out of range is reported at `key`.
pub fn mtu_or_default(r: &mut dyn Report, key: &str, mtu: Option<u32>) -> u16 {
    match mtu {
        None => 1500,
        Some(m) if (MIN_MTU..=MAX_MTU).contains(&m) => m as u16,
        Some(m) => {
            r.error(
                key,
                format!("MTU {m} is out of range: expected {MIN_MTU} to {MAX_MTU}"),
            );
            1500
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Problems;

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
        assert_eq!(mtu_or_default(&mut p, "h", Some(67)), 1500);
        assert_eq!(mtu_or_default(&mut p, "i", Some(70_000)), 1500);
        assert_eq!(mtu_or_default(&mut p, "j", None), 1500);
        let keys: Vec<&str> = p.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "c", "d", "e", "f", "h", "i"], "{:?}", p.0);
        assert!(p.0[1].1.contains("multicast"), "{:?}", p.0);
        assert!(p.0[4].1.contains("network or broadcast"), "{:?}", p.0);
        assert!(valid_name("lan-1_a") && !valid_name("") && !valid_name("a.b"));
    }
}
