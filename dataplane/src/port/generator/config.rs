//! A generator's settings: what the topology file says, checked. The settings are the
//! port's own [`GeneratorConfig`].

use std::net::IpAddr;

use serde::{Deserialize, Deserializer};

use super::{
    Addresses, GeneratorConfig, GeneratorPort, Proto, Sizes, MAX_SIZE, MIN_SIZE, MIN_SIZE_V6,
};
use crate::config::checks::ip;
use crate::config::schema::number_or_text;
use crate::config::Report;
use crate::port::kind::{self, BuildError, BuiltPort, PortKind, PortSpec, Traffic};

/// The keys, in the order of [`Raw`]'s fields.
pub(super) const KEYS: &[&str] = &[
    "flows",
    "size",
    "rate",
    "count",
    "src_mac",
    "dst_mac",
    "src_ip",
    "dst_ip",
    "dst_flows",
    "dst_step",
    "src_port",
    "dst_port",
    "proto",
];

/// The keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    flows: Option<u32>,
    size: Option<RawSize>,
    rate: Option<u64>,
    count: Option<u64>,
    src_mac: Option<String>,
    dst_mac: Option<String>,
    src_ip: Option<String>,
    dst_ip: Option<String>,
    dst_flows: Option<u32>,
    dst_step: Option<u64>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    proto: Option<String>,
}

/// A frame size as written: bytes or a name.
enum RawSize {
    Bytes(u32),
    Name(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = "a frame size in bytes, or `imix`";
        Ok(match number_or_text(d, u32::MAX.into(), expected)? {
            Ok(n) => RawSize::Bytes(n as u32),
            Err(t) => RawSize::Name(t),
        })
    }
}

/// Most flows, and most destinations.
const MAX_FLOWS: u32 = 16_777_216;

impl GeneratorConfig {
    /// Read and check `text`, reporting every problem (and keeping the default of a bad
    /// value); `None` only if it could not be read.
    pub fn load(text: &str, report: &mut dyn Report) -> Option<GeneratorConfig> {
        let p: Raw = kind::port_settings(&super::GeneratorKind, text, report)?;
        let mut g = GeneratorConfig::default();
        if let Some(f) = p.flows {
            if f == 0 || f > MAX_FLOWS {
                report.error(
                    "flows",
                    format!("{f} flows is out of range: expected 1 to {MAX_FLOWS}"),
                );
            } else {
                g.flows = f;
            }
        }
        match &p.size {
            None => {}
            Some(RawSize::Bytes(b)) if (MIN_SIZE as u32..=MAX_SIZE as u32).contains(b) => {
                g.sizes = Sizes::Fixed(*b as usize)
            }
            Some(RawSize::Name(n)) if n == "imix" => g.sizes = Sizes::Imix,
            Some(RawSize::Bytes(b)) => report.error(
                "size",
                format!("frame size {b} is out of range: expected {MIN_SIZE} to {MAX_SIZE} bytes, or `imix`"),
            ),
            Some(RawSize::Name(n)) => report.error(
                "size",
                format!("`{n}` is not a frame size: expected {MIN_SIZE} to {MAX_SIZE} bytes, or `imix`"),
            ),
        }
        g.rate_pps = p.rate.filter(|&r| r > 0);
        if p.count == Some(0) {
            report.error(
                "count",
                "a count of 0 sends nothing: leave `count` out for no end".into(),
            );
        }
        g.count = p.count;
        if let Some(m) = p
            .src_mac
            .as_deref()
            .and_then(|m| kind::unicast_mac(report, "src_mac", m))
        {
            g.src_mac = m;
        }
        if let Some(m) = p
            .dst_mac
            .as_deref()
            .and_then(|m| kind::mac(report, "dst_mac", m))
        {
            g.dst_mac = m;
        }
        let src = p.src_ip.as_deref().and_then(|a| ip(report, "src_ip", a));
        let dst = p.dst_ip.as_deref().and_then(|a| ip(report, "dst_ip", a));
        g.addresses = addresses(src, dst, report);
        match p.dst_flows {
            Some(0) | Some(16_777_217..) => report.error(
                "dst_flows",
                format!("expected 1 to {MAX_FLOWS} destinations"),
            ),
            Some(n) => g.dst_flows = n,
            None => {}
        }
        match p.dst_step {
            Some(0) => report.error("dst_step", "expected a step of at least 1".into()),
            Some(n) if n > u64::from(u32::MAX) && !g.addresses.is_ipv6() => report.error(
                "dst_step",
                format!(
                    "a step of {n} leaves IPv4's address space: expected at most {}",
                    u32::MAX
                ),
            ),
            Some(n) => g.dst_step = n,
            None => {}
        }
        if let Some(sp) = p.src_port {
            if sp < 1024 {
                report.error(
                    "src_port",
                    format!(
                        "source port {sp} is below 1024: flows count up from it within 1024..65535"
                    ),
                );
            } else {
                g.src_port = sp;
            }
        }
        if let Some(dp) = p.dst_port {
            g.dst_port = dp;
        }
        let (first, dst) = (g.src_mac.to_u64(), g.dst_mac.to_u64());
        if dst >= first && dst < first + u64::from(g.flows) {
            report.error(
                "dst_mac",
                "the flows' source MACs (src_mac counting up by `flows`) include dst_mac: a switch would learn the destination behind the generator".into(),
            );
        }
        match p.proto.as_deref() {
            None | Some("udp") => g.proto = Proto::Udp,
            Some("tcp") => g.proto = Proto::Tcp,
            Some(o) => report.error(
                "proto",
                format!("`{o}` is not a protocol: expected udp or tcp"),
            ),
        }
        if g.addresses.is_ipv6() {
            if g.proto == Proto::Tcp {
                report.error(
                    "proto",
                    "the generator sends TCP over IPv4 only: IPv6 frames are UDP".into(),
                );
            }
            match (&p.size, &g.sizes) {
                // 64 bytes, the default, cannot carry an IPv6 frame's stamp: the smallest
                // that can is IPv6's default.
                (None, _) => g.sizes = Sizes::Fixed(MIN_SIZE_V6),
                // (A size out of range was reported above and left the default.)
                (Some(RawSize::Bytes(n)), Sizes::Fixed(b))
                    if *n as usize == *b && *b < MIN_SIZE_V6 =>
                {
                    report.error(
                        "size",
                        format!(
                            "frame size {b} is too small for IPv6: Ethernet (14), IPv6 (40) and \
                             UDP (8) headers and the generator's stamp (20) take {MIN_SIZE_V6} bytes"
                        ),
                    )
                }
                _ => {}
            }
        }
        Some(g)
    }
}

/// The addresses of flow 0 from `src_ip` and `dst_ip`, of the family they give (one given
/// alone takes the other's default of its family; none, IPv4's defaults); two of different
/// families are reported at `dst_ip`.
fn addresses(src: Option<IpAddr>, dst: Option<IpAddr>, report: &mut dyn Report) -> Addresses {
    let ((s4, d4), (s6, d6)) = (Addresses::V4_DEFAULTS, Addresses::V6_DEFAULTS);
    match (src, dst) {
        (None, None) => Addresses::DEFAULT_V4,
        (Some(IpAddr::V4(src)), None) => Addresses::V4 { src, dst: d4 },
        (None, Some(IpAddr::V4(dst))) => Addresses::V4 { src: s4, dst },
        (Some(IpAddr::V4(src)), Some(IpAddr::V4(dst))) => Addresses::V4 { src, dst },
        (Some(IpAddr::V6(src)), None) => Addresses::V6 { src, dst: d6 },
        (None, Some(IpAddr::V6(dst))) => Addresses::V6 { src: s6, dst },
        (Some(IpAddr::V6(src)), Some(IpAddr::V6(dst))) => Addresses::V6 { src, dst },
        (Some(src), Some(dst)) => {
            let family = |a: &IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
            report.error(
                "dst_ip",
                format!(
                    "dst_ip {dst} is {} but src_ip {src} is {}: both must be of one family",
                    family(&dst),
                    family(&src)
                ),
            );
            Addresses::DEFAULT_V4
        }
    }
}

impl PortSpec for GeneratorConfig {
    fn kind(&self) -> &'static dyn PortKind {
        &super::GeneratorKind
    }

    fn describe(&self) -> String {
        format!(
            "generator, {} flow(s), {}{}, {}{}",
            self.flows,
            if self.addresses.is_ipv6() {
                "IPv6 "
            } else {
                ""
            },
            match &self.sizes {
                Sizes::Fixed(b) => format!("{b}-byte frames"),
                Sizes::Imix => "IMIX".to_string(),
            },
            self.rate_pps
                .map(|r| format!("{r} pps"))
                .unwrap_or_else(|| "as fast as possible".into()),
            self.count
                .map(|c| format!(", {c} frames"))
                .unwrap_or_default()
        )
    }

    fn build(&self, _name: &str) -> Result<BuiltPort, BuildError> {
        Ok(BuiltPort::new(GeneratorPort::new(self.clone())))
    }

    fn traffic(&self) -> Traffic {
        Traffic::Source
    }

    /// A generator sends at `pps`.
    fn set_rate(&mut self, pps: u64) -> bool {
        self.rate_pps = Some(pps);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    fn load(text: &str) -> (Option<GeneratorConfig>, Vec<(String, String)>) {
        let mut p = Problems::default();
        let c = GeneratorConfig::load(text, &mut p);
        (c, p.0)
    }

    #[test]
    fn settings_are_read() {
        let (g, p) = load("{ kind: generator, flows: 10, size: imix, rate: 1000, count: 50, src_mac: 02:00:00:00:01:00, dst_mac: 02:ff:00:00:00:01, src_ip: 10.1.0.1, dst_ip: 10.2.0.1, src_port: 2000, dst_port: 53, proto: tcp }");
        assert!(p.is_empty(), "{p:?}");
        let g = g.expect("loads");
        assert_eq!((g.flows, g.rate_pps, g.count), (10, Some(1000), Some(50)));
        assert_eq!(g.sizes, Sizes::Imix);
        assert_eq!((g.src_port, g.dst_port, g.proto), (2000, 53, Proto::Tcp));
        assert_eq!(
            g.describe(),
            "generator, 10 flow(s), IMIX, 1000 pps, 50 frames"
        );
        assert_eq!(
            load("{ kind: generator }").0,
            Some(GeneratorConfig::default())
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named_by_key() {
        let (g, p) = load("{ kind: generator, flow: 3 }");
        assert!(g.is_none());
        assert_eq!(p[0].0, "", "serde names an unknown key at its mapping");
        assert!(p[0].1.ends_with("; did you mean `flows`?"), "{p:?}");
        let (_, p) = load("{ kind: generator, flows: 0, size: jumbo, count: 0, proto: sctp, src_ip: 300.1.1.1, src_port: 80, mtu: 1500 }");
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["mtu", "flows", "size", "count", "src_ip", "src_port", "proto"],
            "{p:?}"
        );
        assert!(p[0].1.contains("takes no `mtu`"), "{p:?}");
        assert!(p[2].1.contains("not a frame size"), "{p:?}");
        let (_, p) = load("{ kind: generator, size: 99999999999 }");
        assert_eq!(p[0].0, "size");
        assert!(p[0].1.contains("expected a frame size"), "{p:?}");
        let (_, p) = load("{ kind: generator, flows: 300, src_mac: 02:00:00:00:00:01, dst_mac: 02:00:00:00:01:00 }");
        assert_eq!(p[0].0, "dst_mac");
    }

    #[test]
    fn ipv6_addresses_make_ipv6_frames_of_82_bytes_or_more() {
        let (g, p) = load("{ kind: generator, src_ip: \"fd00::10\", dst_ip: \"2001:db8::1\", dst_flows: 10, dst_step: 1099511627776 }");
        assert!(p.is_empty(), "{p:?}");
        let g = g.expect("loads");
        assert_eq!(
            g.addresses,
            Addresses::V6 {
                src: "fd00::10".parse().expect("IPv6"),
                dst: "2001:db8::1".parse().expect("IPv6"),
            }
        );
        assert_eq!(g.sizes, Sizes::Fixed(MIN_SIZE_V6), "IPv6's default size");
        assert_eq!(g.dst_step, 1 << 40, "IPv6 steps take 64 bits");
        assert_eq!(
            g.describe(),
            "generator, 1 flow(s), IPv6 82-byte frames, as fast as possible"
        );
        // One address alone chooses the family; the other takes that family's default.
        let (g, p) = load("{ kind: generator, dst_ip: 2001:db8::1, size: imix }");
        assert!(p.is_empty(), "{p:?}");
        let g = g.expect("loads");
        assert_eq!(
            g.addresses,
            Addresses::V6 {
                src: Addresses::V6_DEFAULTS.0,
                dst: "2001:db8::1".parse().expect("IPv6"),
            }
        );
        assert_eq!(g.sizes, Sizes::Imix);
        let (g, p) = load("{ kind: generator, src_ip: 10.9.0.1 }");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            g.expect("loads").addresses,
            Addresses::V4 {
                src: [10, 9, 0, 1].into(),
                dst: Addresses::V4_DEFAULTS.1,
            }
        );
    }

    #[test]
    fn mixed_families_small_ipv6_frames_ipv6_tcp_and_long_ipv4_steps_are_refused() {
        let (_, p) = load("{ kind: generator, src_ip: 10.0.0.1, dst_ip: 2001:db8::1 }");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "dst_ip");
        assert!(
            p[0].1
                .contains("is IPv6 but src_ip 10.0.0.1 is IPv4: both must be of one family"),
            "{p:?}"
        );
        let (_, p) = load("{ kind: generator, src_ip: \"fd00::1\", dst_ip: 10.0.0.1 }");
        assert_eq!(p[0].0, "dst_ip");
        assert!(
            p[0].1.contains("is IPv4 but src_ip fd00::1 is IPv6"),
            "{p:?}"
        );
        let (_, p) = load("{ kind: generator, dst_ip: 2001:db8::1, size: 81 }");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "size");
        assert!(p[0].1.contains("too small for IPv6"), "{p:?}");
        assert!(p[0].1.contains("take 82 bytes"), "{p:?}");
        let (g, p) = load("{ kind: generator, dst_ip: 2001:db8::1, size: 82 }");
        assert!(p.is_empty() && g.is_some(), "{p:?}");
        let (_, p) = load("{ kind: generator, dst_ip: 2001:db8::1, size: 20 }");
        assert_eq!(p.len(), 1, "one problem, not two: {p:?}");
        assert!(p[0].1.contains("out of range"), "{p:?}");
        let (_, p) = load("{ kind: generator, dst_ip: 2001:db8::1, proto: tcp }");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "proto");
        assert!(p[0].1.contains("IPv6 frames are UDP"), "{p:?}");
        let (_, p) = load("{ kind: generator, dst_step: 4294967296 }");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "dst_step");
        let (g, p) = load("{ kind: generator, dst_step: 4294967295 }");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(g.expect("loads").dst_step, u64::from(u32::MAX));
        let (_, p) = load("{ kind: generator, dst_ip: 2001:db8::g }");
        assert_eq!(p[0].0, "dst_ip");
        assert!(p[0].1.contains("not an IP address"), "{p:?}");
    }

    #[test]
    fn bench_sets_the_rate() {
        let mut g = GeneratorConfig::default();
        assert!(g.set_rate(5));
        assert_eq!(g.rate_pps, Some(5));
    }
}
