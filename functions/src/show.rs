//! Text and cells for the tables that functions show (`nfv show macs`, `arp`, `nat`, ...).
//!
//! Every function's [`Node::show`](nfv_dataplane::Node::show) builds its rows from these, so
//! that an address, an endpoint or a time reads the same in every table:
//! - a MAC address is `aa:bb:cc:dd:ee:ff`, an IPv4 address dotted, a prefix `a.b.c.d/n`;
//!   an IPv6 address in its short form (RFC 5952);
//! - a TCP or UDP endpoint is `ip:port` (`[ip]:port` for IPv6); an ICMP or ICMPv6 echo endpoint that carries the identifier
//!   is `ip id N` (the tracker keeps no identifier for other ICMP messages, which it tracks
//!   by addresses alone, so an identifier of 0 is not shown); any other protocol's endpoint
//!   is the address alone;
//! - a protocol is `tcp`, `udp`, `icmp`, `icmpv6`, or its number;
//! - times are whole seconds from the worker's `now` (columns ending in `_s`): an age counts
//!   up from when something was last seen, an expiry down to when it ends; both round down.
//!
//! Showing is not the packet path: these allocate.

use std::net::{Ipv4Addr, Ipv6Addr};

use nfv_dataplane::{Cell, Timestamp};

use crate::ip::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::wire::MacAddr;

/// A MAC address as text.
pub fn mac(m: MacAddr) -> Cell {
    Cell::Text(m.to_string())
}

/// An IPv4 address as text.
pub fn ip(a: u32) -> Cell {
    Cell::Text(Ipv4Addr::from(a).to_string())
}

/// A prefix as `a.b.c.d/n`.
pub fn prefix(net: u32, len: u8) -> Cell {
    Cell::Text(format!("{}/{len}", Ipv4Addr::from(net)))
}

/// An IPv6 address (`u128`, big-endian) as text.
pub fn ip6(a: u128) -> Cell {
    Cell::Text(std::net::Ipv6Addr::from(a).to_string())
}

/// An IPv6 prefix as `2001:db8::/32`.
pub fn prefix6(net: u128, len: u8) -> Cell {
    Cell::Text(format!("{}/{len}", std::net::Ipv6Addr::from(net)))
}

/// A protocol's name: `tcp`, `udp`, `icmp`, `icmpv6`, or its number.
pub fn proto(p: u8) -> Cell {
    Cell::Text(proto_name(p))
}

/// A protocol's name as text (see [`proto`]).
pub fn proto_name(p: u8) -> String {
    match p {
        PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        PROTO_ICMP => "icmp".into(),
        PROTO_ICMPV6 => "icmpv6".into(),
        n => n.to_string(),
    }
}

/// One end of a flow of protocol `p`: `ip:port` for TCP and UDP; for ICMP `ip id N` when
/// `id` is true (the side that carries the echo identifier) and `port` (the identifier) is
/// not 0, else the address; for other protocols the address.
pub fn endpoint(p: u8, addr: u32, port: u16, id: bool) -> Cell {
    let a = Ipv4Addr::from(addr);
    Cell::Text(match p {
        PROTO_TCP | PROTO_UDP => format!("{a}:{port}"),
        PROTO_ICMP if id && port != 0 => format!("{a} id {port}"),
        _ => a.to_string(),
    })
}

/// [`endpoint`] for IPv6: `[ip]:port` for TCP and UDP; for ICMPv6 `ip id N` when `id` is
/// true and `port` (the echo identifier) is not 0, else the address.
pub fn endpoint6(p: u8, a: Ipv6Addr, port: u16, id: bool) -> Cell {
    Cell::Text(match p {
        PROTO_TCP | PROTO_UDP => format!("[{a}]:{port}"),
        PROTO_ICMPV6 if id && port != 0 => format!("{a} id {port}"),
        _ => a.to_string(),
    })
}

/// Whole seconds from `then` to `now` (0 if `then` is later).
pub fn age_s(now: Timestamp, then: Timestamp) -> Cell {
    Cell::Int(now.since(then).as_secs())
}

/// Whole seconds from `now` until `at` (0 if `at` is past).
pub fn expires_s(now: Timestamp, at: Timestamp) -> Cell {
    Cell::Int(at.since(now).as_secs())
}

/// Whole seconds from `now` until `at`, negative if `at` is past.
pub fn expires_signed_s(now: Timestamp, at: Timestamp) -> Cell {
    let s = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    if at >= now {
        Cell::Signed(s(at.since(now)))
    } else {
        Cell::Signed(-s(now.since(at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_the_same_everywhere() {
        let t = |s: &str| Cell::Text(s.into());
        assert_eq!(
            mac(MacAddr([0xaa, 0xbb, 0xcc, 0, 1, 0xff])),
            t("aa:bb:cc:00:01:ff")
        );
        assert_eq!(ip(0x0a00_0001), t("10.0.0.1"));
        assert_eq!(prefix(0x0a00_0000, 8), t("10.0.0.0/8"));
        assert_eq!(proto(6), t("tcp"));
        assert_eq!(proto(47), t("47"));
        assert_eq!(endpoint(17, 0x0a00_0001, 53, true), t("10.0.0.1:53"));
        assert_eq!(endpoint(1, 0x0a00_0001, 7, true), t("10.0.0.1 id 7"));
        assert_eq!(endpoint(1, 0x0a00_0001, 7, false), t("10.0.0.1"));
        assert_eq!(endpoint(1, 0x0a00_0001, 0, true), t("10.0.0.1"));
        assert_eq!(endpoint(47, 0x0a00_0001, 0, true), t("10.0.0.1"));
        let (a, b) = (Timestamp::from_secs(10), Timestamp(12_900_000_000));
        assert_eq!(age_s(b, a), Cell::Int(2));
        assert_eq!(age_s(a, b), Cell::Int(0));
        assert_eq!(expires_s(a, b), Cell::Int(2));
        assert_eq!(expires_s(b, a), Cell::Int(0));
        assert_eq!(expires_signed_s(a, b), Cell::Signed(2));
        assert_eq!(expires_signed_s(b, a), Cell::Signed(-2));
    }
}
