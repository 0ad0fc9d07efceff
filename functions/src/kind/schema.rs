//! Pieces of topology-file schema that several function kinds (and `nfv-control`'s own
//! parts of the file) share. The generic ones (ordered mappings, one-or-many values,
//! numbers or words, durations, the wording of messages) live in
//! [`nfv_dataplane::config::schema`], where port kinds read them too, and are re-exported
//! here under the same names; the ones about IPv4 prefixes, connection-table sizes and idle
//! timeouts are the functions' own.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnetwork::{Ipv4Network, Ipv6Network};

pub use nfv_dataplane::config::schema::{
    did_you_mean, duration_or, edit_distance, fmt_duration, join, number_or_text, one_of,
    parse_duration, Names, OneOrMany, Ordered, RawDuration, DURATION,
};

use super::Report;
use crate::conntrack::{Timeouts, DEFAULT_MAX, TIMEOUT_NAMES};

/// A value written as a whole number (`Ok`) or a word (`Err`), whose error message expects
/// `$expected`: `number_or_word!(RawProto, "a protocol: tcp, udp, ...")`.
#[macro_export]
macro_rules! number_or_word {
    ($vis:vis $name:ident, $expected:expr) => {
        #[doc = concat!("A whole number (`Ok`) or a word (`Err`): ", $expected, ".")]
        #[derive(Debug)]
        $vis struct $name(pub Result<u64, String>);

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::kind::schema::number_or_text(d, u64::MAX, $expected).map($name)
            }
        }
    };
}

/// `ADDRESS/LEN`.
pub fn parse_cidr(s: &str) -> Result<Ipv4Network, String> {
    let Some((ip, prefix)) = s.split_once('/') else {
        return Err(format!(
            "`{s}` is not an IPv4 address with a prefix length, like 10.0.0.1/24"
        ));
    };
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IPv4 address (expected like 10.0.0.1/24)"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("`/{prefix}` is not a prefix length from 0 to 32"))?;
    Ipv4Network::new(ip, prefix).map_err(|e| e.to_string())
}

/// `a` as an IPv6 host address with its prefix (`2001:db8::1/64`), or the problem: not
/// multicast, loopback, unspecified, link-local (derived from the MAC) or a subnet's
/// subnet-router anycast address.
pub fn parse_cidr6(a: &str) -> Result<Ipv6Network, String> {
    let Some((ip, len)) = a.split_once('/') else {
        return Err(format!(
            "`{a}` is not an address with a prefix length, like 2001:db8::1/64"
        ));
    };
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IPv6 address (expected like 2001:db8::1/64)"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| format!("`/{len}` is not a prefix length from 0 to 128"))?;
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return Err(format!("{ip} is not a unicast address"));
    }
    if ip.is_unicast_link_local() {
        return Err(format!(
            "{ip} is link-local: an interface's link-local address is derived from its MAC"
        ));
    }
    let n = Ipv6Network::new(ip, len).map_err(|e| e.to_string())?;
    if len < 127 && ip == n.network() {
        return Err(format!(
            "{ip} is the subnet-router anycast address of {}/{len}, not a host address",
            n.network()
        ));
    }
    Ok(n)
}

/// `s` as an IPv6 prefix without host bits.
pub fn parse_prefix6(s: &str) -> Result<Ipv6Network, String> {
    let Some((ip, len)) = s.split_once('/') else {
        return Err(format!("`{s}` is not a prefix, like 2001:db8::/32"));
    };
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IPv6 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 128)
        .ok_or_else(|| format!("`/{len}` is not a prefix length from 0 to 128"))?;
    let n = Ipv6Network::new(ip, len).map_err(|e| e.to_string())?;
    if n.network() != ip {
        return Err(format!(
            "`{s}` has host bits set: did you mean {}/{len}?",
            n.network()
        ));
    }
    Ok(n)
}

/// A network prefix: `ADDRESS/LEN` without host bits.
pub fn parse_prefix(s: &str) -> Result<Ipv4Network, String> {
    let net = parse_cidr(s)?;
    if net.ip() != net.network() {
        return Err(format!(
            "`{s}` has host bits set: did you mean {}/{}?",
            net.network(),
            net.prefix()
        ));
    }
    Ok(net)
}

/// Most sessions (nat) or connections (firewall).
pub const MAX_ENTRIES: u64 = 16_777_216;

/// `max_sessions` or `max_connections` at `key`: 1 to [`MAX_ENTRIES`], else reported.
pub fn max_entries(report: &mut dyn Report, key: &str, v: Option<u64>) -> usize {
    match v {
        None => DEFAULT_MAX,
        Some(n) if (1..=MAX_ENTRIES).contains(&n) => n as usize,
        Some(n) => {
            report.error(
                key,
                format!("{n} is out of range: expected 1 to {MAX_ENTRIES}"),
            );
            DEFAULT_MAX
        }
    }
}

/// Idle timeouts (`key` is the function's, `timeouts` below it): the defaults with the ones
/// named set.
pub fn timeouts(report: &mut dyn Report, key: &str, t: Option<&Ordered<RawDuration>>) -> Timeouts {
    let mut out = Timeouts::default();
    for (name, d) in t.map(|t| t.0.as_slice()).unwrap_or_default() {
        let tkey = join(key, &format!("timeouts.{name}"));
        if !TIMEOUT_NAMES.contains(&name.as_str()) {
            let hint = did_you_mean(name, TIMEOUT_NAMES.iter().copied());
            report.error(
                &tkey,
                format!(
                    "unknown timeout `{name}`: expected one of {}{hint}",
                    one_of(TIMEOUT_NAMES)
                ),
            );
            continue;
        }
        let zero = Duration::ZERO;
        let dur = duration_or(report, &tkey, Some(d), zero);
        if dur > zero {
            out.set(name, dur);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_addresses() {
        assert!(parse_prefix("10.0.0.1/8").is_err_and(|m| m.contains("host bits")));
        assert!(parse_cidr("10.0.0.1").is_err());
        assert_eq!(parse_cidr("10.0.0.1/24").map(|n| n.prefix()), Ok(24));
    }
}
