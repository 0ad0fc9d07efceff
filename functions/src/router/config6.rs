//! The IPv6 parts of a router's settings: interface addresses, router advertisements.
//!
//! ```yaml
//! interfaces:
//!   lan:
//!     address: [192.168.1.1/24, 2001:db8:1::1/64]   # one IPv4 at most, IPv6 ones as many
//!     ra: { rdnss: [2001:db8:1::53], lifetime: 30m, interval: 10m, mtu: true }
//!   wan: { address: 2001:db8:ff::2/64, ra: false }
//! ```
//!
//! `ra` is `true`, `false` or its settings (which turn it on): `rdnss` (DNS servers, one or
//! a list, RFC 8106), `lifetime` (how long hosts keep the router as their default: 30m;
//! 0s advertises prefixes without being a default router), `interval` (the longest time
//! between unsolicited advertisements: 10m; the shortest is a third of it), `mtu` (announce
//! the interface's MTU: true). Without `ra`, an interface advertises when it has an IPv6
//! /64 (hosts need one for SLAAC) and no static route's gateway lies on it (an interface
//! that faces other routers stays quiet).

use std::fmt;
use std::net::Ipv6Addr;
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::kind::schema::{duration_or, OneOrMany, RawDuration};
use crate::kind::{Counting, Report};

/// Router advertisement settings as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRaSettings {
    rdnss: Option<OneOrMany>,
    lifetime: Option<RawDuration>,
    interval: Option<RawDuration>,
    mtu: Option<bool>,
}

/// `ra` as written: a switch or settings.
#[derive(Debug)]
pub(super) enum RawRa {
    Switch(bool),
    Settings(RawRaSettings),
}

impl<'de> Deserialize<'de> for RawRa {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRa;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or settings like { rdnss: [2001:db8::53] }")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawRa, E> {
                Ok(RawRa::Switch(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<RawRa, A::Error> {
                RawRaSettings::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(RawRa::Settings)
            }
        }
        d.deserialize_any(V)
    }
}

/// What an interface's router advertisements say, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaSpec {
    /// DNS servers (RFC 8106).
    pub rdnss: Vec<Ipv6Addr>,
    /// Router lifetime.
    pub lifetime: Duration,
    /// Longest time between unsolicited advertisements.
    pub interval: Duration,
    /// Whether the MTU option is sent.
    pub mtu: bool,
}

impl Default for RaSpec {
    fn default() -> Self {
        RaSpec {
            rdnss: Vec::new(),
            lifetime: Duration::from_secs(1800),
            interval: Duration::from_secs(600),
            mtu: true,
        }
    }
}

/// The longest router lifetime (RFC 4861 §6.2.1: 9000 s).
const MAX_LIFETIME: Duration = Duration::from_secs(9000);

/// Check `ra` at `key`: `None` for off, `Some(settings)` for on, and `default` when not
/// written (the caller decides it once the routes are known).
pub(super) fn ra(r: &mut Counting<'_>, key: &str, raw: Option<&RawRa>) -> Option<Option<RaSpec>> {
    let s = match raw? {
        RawRa::Switch(false) => return Some(None),
        RawRa::Switch(true) => return Some(Some(RaSpec::default())),
        RawRa::Settings(s) => s,
    };
    let d = RaSpec::default();
    let mut rdnss = Vec::new();
    if let Some(list) = &s.rdnss {
        for (i, a) in list.items.iter().enumerate() {
            let k = list.key(&format!("{key}.rdnss"), i);
            match a.parse::<Ipv6Addr>() {
                Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => rdnss.push(ip),
                _ => r.error(&k, format!("`{a}` is not a unicast IPv6 address")),
            }
        }
        if rdnss.len() > super::icmp6::MAX_ADVERT_ITEMS {
            r.error(
                &format!("{key}.rdnss"),
                format!(
                    "{} servers: an advertisement carries at most {}",
                    rdnss.len(),
                    super::icmp6::MAX_ADVERT_ITEMS
                ),
            );
        }
    }
    let lifetime = duration_or(
        r,
        &format!("{key}.lifetime"),
        s.lifetime.as_ref(),
        d.lifetime,
    );
    if lifetime > MAX_LIFETIME {
        r.error(
            &format!("{key}.lifetime"),
            "at most 2h30m (9000 s, RFC 4861)".into(),
        );
    }
    let interval = duration_or(
        r,
        &format!("{key}.interval"),
        s.interval.as_ref(),
        d.interval,
    );
    if !(Duration::from_secs(4)..=Duration::from_secs(1800)).contains(&interval) {
        r.error(
            &format!("{key}.interval"),
            "expected 4s to 30m (RFC 4861 MaxRtrAdvInterval)".into(),
        );
    }
    Some(Some(RaSpec {
        rdnss,
        lifetime,
        interval,
        mtu: s.mtu.unwrap_or(true),
    }))
}

pub(super) use crate::kind::schema::{parse_cidr6 as host_cidr6, parse_prefix6};

/// Whether `a` is written as IPv6 (it holds a colon).
pub(super) fn is_v6(a: &str) -> bool {
    a.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_prefixes_are_checked() {
        assert!(host_cidr6("2001:db8::1/64").is_ok());
        for bad in [
            "2001:db8::1",
            "2001:db8::/64",
            "fe80::1/64",
            "ff02::1/64",
            "::/0",
            "2001:db8::1/129",
            "nonsense/64",
        ] {
            assert!(host_cidr6(bad).is_err(), "{bad}");
        }
        assert!(parse_prefix6("2001:db8::/32").is_ok());
        assert!(parse_prefix6("::/0").is_ok());
        let e = parse_prefix6("2001:db8::1/32").unwrap_err();
        assert!(e.contains("did you mean 2001:db8::/32"), "{e}");
    }
}
