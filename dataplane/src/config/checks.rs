//! Checks of single values that port kinds and function kinds share, each reporting a bad
//! value at its key with the same words everywhere: MTUs, MAC addresses, IP addresses.

use std::net::{IpAddr, Ipv4Addr};

use super::Report;
use crate::mac::MacAddr;
use crate::packet::{MAX_FRAME, MAX_JUMBO_MTU};

/// Largest MTU a port takes: a frame of MTU + Ethernet header (14) + one VLAN tag (4) fits a
/// jumbo packet buffer.
pub const MAX_MTU: u32 = MAX_JUMBO_MTU as u32;
/// Largest MTU whose frames fit a small packet buffer ([`MAX_FRAME`] bytes): what a port
/// kind that takes no jumbo frames allows.
pub const SMALL_MAX_MTU: u32 = (MAX_FRAME - 14 - 4) as u32;
/// Smallest MTU (IPv4's minimum).
pub const MIN_MTU: u32 = 68;
/// The MTU of a port that gives none.
pub const DEFAULT_MTU: u16 = 1500;

/// A port's MTU at `key`: [`DEFAULT_MTU`] unless given, from [`MIN_MTU`] to [`MAX_MTU`].
pub fn mtu(report: &mut dyn Report, key: &str, mtu: Option<u32>) -> u16 {
    mtu_up_to(
        report,
        key,
        mtu,
        MAX_MTU,
        "the largest jumbo frame nfv takes",
    )
}

/// A port's MTU at `key`: [`DEFAULT_MTU`] unless given, from [`MIN_MTU`] to `max`; `why`
/// says where the upper bound comes from.
pub fn mtu_up_to(report: &mut dyn Report, key: &str, mtu: Option<u32>, max: u32, why: &str) -> u16 {
    match mtu {
        None => DEFAULT_MTU,
        Some(m) if (MIN_MTU..=max).contains(&m) => m as u16,
        Some(m) => {
            report.error(
                key,
                format!("MTU {m} is out of range: expected {MIN_MTU} to {max} ({why})"),
            );
            DEFAULT_MTU
        }
    }
}

/// A MAC address at `key`, as written (`m`); reported if it is not one.
pub fn mac(report: &mut dyn Report, key: &str, m: &str) -> Option<MacAddr> {
    let mac = m.parse::<MacAddr>().ok();
    if mac.is_none() {
        report.error(
            key,
            format!("`{m}` is not a MAC address: expected six hex bytes like 02:00:00:00:00:01"),
        );
    }
    mac
}

/// A unicast MAC address at `key`: not all zeros, not multicast; reported if it is not one.
pub fn unicast_mac(report: &mut dyn Report, key: &str, m: &str) -> Option<MacAddr> {
    let mac = mac(report, key, m)?;
    if mac == MacAddr([0; 6]) {
        report.error(
            key,
            format!("`{m}` is all zeros: expected a unicast MAC like 02:00:00:00:00:01"),
        );
        return None;
    }
    if mac.is_multicast() {
        report.error(
            key,
            format!("`{m}` is a multicast address: expected a unicast MAC"),
        );
        return None;
    }
    Some(mac)
}

/// `a` as an IPv4 address, or `None` with the problem reported at `key`.
pub fn ipv4(report: &mut dyn Report, key: &str, a: &str) -> Option<Ipv4Addr> {
    let ip = a.parse().ok();
    if ip.is_none() {
        report.error(key, format!("`{a}` is not an IPv4 address"));
    }
    ip
}

/// `a` as an IPv4 or IPv6 address, or `None` with the problem reported at `key`.
pub fn ip(report: &mut dyn Report, key: &str, a: &str) -> Option<IpAddr> {
    let ip = a.parse().ok();
    if ip.is_none() {
        report.error(
            key,
            format!("`{a}` is not an IP address (IPv4 like 10.0.0.1, or IPv6 like 2001:db8::1)"),
        );
    }
    ip
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    #[test]
    fn mtus_and_macs_are_checked_where_they_are_given() {
        let mut p = Problems::default();
        assert_eq!(mtu(&mut p, "mtu", None), DEFAULT_MTU);
        assert_eq!(mtu(&mut p, "mtu", Some(9000)), 9000);
        assert_eq!(mtu(&mut p, "mtu", Some(9217)), DEFAULT_MTU);
        assert_eq!(mtu(&mut p, "mtu", Some(67)), DEFAULT_MTU);
        let small = "a vhost-user port takes none";
        assert_eq!(
            mtu_up_to(&mut p, "m", Some(1902), SMALL_MAX_MTU, small),
            1902
        );
        assert_eq!(
            mtu_up_to(&mut p, "m", Some(1903), SMALL_MAX_MTU, small),
            DEFAULT_MTU
        );
        assert_eq!(p.0.len(), 3);
        assert_eq!(p.0[0].0, "mtu");
        assert!(p.0[0]
            .1
            .starts_with("MTU 9217 is out of range: expected 68 to 9216"));
        assert!(p.0[2]
            .1
            .starts_with("MTU 1903 is out of range: expected 68 to 1902 (a vhost-user"));
        let mut p = Problems::default();
        assert_eq!(unicast_mac(&mut p, "mac", "01:00:00:00:00:01"), None);
        assert_eq!(unicast_mac(&mut p, "mac", "00:00:00:00:00:00"), None);
        assert_eq!(unicast_mac(&mut p, "mac", "02:00:00:00:01"), None);
        let said: Vec<&str> = p.0.iter().map(|(_, m)| m.as_str()).collect();
        assert!(said[0].contains("multicast"), "{said:?}");
        assert!(said[1].contains("all zeros"), "{said:?}");
        assert!(said[2].contains("not a MAC address"), "{said:?}");
    }
}
