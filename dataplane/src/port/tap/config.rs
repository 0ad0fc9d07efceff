//! A TAP port's settings: what the topology file says, checked.

use serde::Deserialize;

use super::TapPort;
use crate::config::Report;
use crate::mac::MacAddr;
use crate::port::kind::{self, BuildError, BuiltPort, Claim, PortKind, PortSpec};
use crate::port::VethPort;

/// The keys, in the order of [`Raw`]'s fields.
pub(super) const KEYS: &[&str] = &[
    "host", "ifname", "mtu", "mac", "address", "device", "offloads",
];

/// The keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    host: Option<String>,
    ifname: Option<String>,
    mtu: Option<u32>,
    mac: Option<String>,
    address: Option<String>,
    device: Option<String>,
    offloads: Option<bool>,
}

/// What kernel device serves a port: what a lab host sees is an `eth0` either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A TAP device that nfv reads and writes a frame per system call.
    Tap,
    /// A veth pair whose near end nfv serves through packet-socket rings
    /// ([`crate::port::veth`]); the default for a lab host's port.
    Veth,
}

impl Backing {
    /// Its name in the file's `device` key.
    pub fn name(self) -> &'static str {
        match self {
            Backing::Tap => "tap",
            Backing::Veth => "veth",
        }
    }
}

/// A TAP port's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapConfig {
    /// The lab host it moves into; `None`: it stays in the root namespace.
    pub host: Option<String>,
    /// Its interface name: in the root namespace, the device's name (`ifname`, else the
    /// port's name); in a host, `eth0`, `eth1`, ... in the order of the host's ports, which
    /// `nfv-control` gives (empty until then).
    pub ifname: String,
    /// `ifname` was given (else the root device is named after the port).
    pub ifname_given: bool,
    /// The name the device is created under: `ifname` in the root namespace; for a host's
    /// TAP, a temporary name `nfv-control`'s plan gives until the lab moves it in and renames
    /// it (empty until then).
    pub device: String,
    /// MTU.
    pub mtu: u16,
    /// The host side's MAC address; the kernel's random one if `None`.
    pub mac: Option<MacAddr>,
    /// The host's address on this interface, as written (`10.0.0.1/24`): `nfv-control`
    /// reads it with the host's own settings. Only with `host`.
    pub address: Option<String>,
    /// The device that serves it (`device`): a veth pair for a host's port unless the
    /// file asks for `tap`; a TAP device in the root namespace.
    pub backing: Backing,
    /// The port's offloads (`offloads`, default true): the host's kernel hands over
    /// super-frames and begun checksums, and takes them (see `crate::offload`), through a
    /// veth's packet rings or a TAP's virtio-net header. Off, every frame is whole, which
    /// costs TCP two thirds of its rate and saves 64-byte frames about 18% of theirs.
    pub offloads: bool,
}

/// A device name the kernel takes: at most 15 characters of letters, digits, `_`, `-`, `.`.
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl TapConfig {
    /// Read and check the settings of TAP port `name`, reporting every problem; `None` only
    /// if they could not be read.
    pub fn load(name: &str, text: &str, report: &mut dyn Report) -> Option<TapConfig> {
        let raw: Raw = kind::port_settings(&super::TapKind, text, report)?;
        let mtu = kind::mtu(report, "mtu", raw.mtu);
        let mac = raw
            .mac
            .as_deref()
            .and_then(|m| kind::unicast_mac(report, "mac", m));
        let ifname_given = raw.ifname.is_some();
        let backing = match (raw.device.as_deref(), &raw.host) {
            (None, Some(_)) | (Some("veth"), Some(_)) => Backing::Veth,
            (None, None) | (Some("tap"), _) => Backing::Tap,
            (Some("veth"), None) => {
                report.error(
                    "device",
                    "`device: veth` needs `host`: in the root namespace nfv makes a TAP device"
                        .into(),
                );
                Backing::Tap
            }
            (Some(other), _) => {
                report.error("device", format!("`device: {other}` is not a device nfv makes: expected `veth` (a lab host's default) or `tap`"));
                Backing::Tap
            }
        };
        let (ifname, device) = match &raw.host {
            Some(_) => {
                if let Some(i) = &raw.ifname {
                    report.error("ifname", format!("`ifname: {i}` is only for TAPs in the root namespace; a host's interfaces are named eth0, eth1, ... in file order"));
                }
                (String::new(), String::new())
            }
            None => {
                if raw.address.is_some() {
                    report.error(
                        "address",
                        "`address` needs `host`: a TAP in the root namespace gets no address from nfv".into(),
                    );
                }
                let ifname = raw.ifname.clone().unwrap_or_else(|| name.to_string());
                if !valid_ifname(&ifname) {
                    report.error(
                        if ifname_given { "ifname" } else { "" },
                        format!("`{ifname}` is not a usable device name: at most 15 characters of letters, digits, `_`, `-` and `.` (give a shorter `ifname`)"),
                    );
                }
                (ifname.clone(), ifname)
            }
        };
        Some(TapConfig {
            host: raw.host,
            ifname,
            ifname_given,
            device,
            mtu,
            mac,
            address: raw.address,
            backing,
            offloads: raw.offloads.unwrap_or(true),
        })
    }
}

impl PortSpec for TapConfig {
    fn kind(&self) -> &'static dyn PortKind {
        &super::TapKind
    }

    fn mtu(&self) -> u16 {
        self.mtu
    }

    fn describe(&self) -> String {
        match &self.host {
            Some(h) => format!(
                "tap -> host {h} as {}, mtu {}{}",
                self.ifname,
                self.mtu,
                match self.backing {
                    Backing::Veth => " (a veth pair served through packet rings)",
                    Backing::Tap => " (a TAP device)",
                }
            ),
            None => format!("tap {} (root namespace), mtu {}", self.device, self.mtu),
        }
    }

    fn location(&self) -> String {
        match &self.host {
            Some(h) => format!("{h}:{}", self.ifname),
            None => self.device.clone(),
        }
    }

    /// The device, its host and MTU; not a host TAP's temporary device name (it changes
    /// with the file's order), nor the host side's MAC and address (a change of those sets
    /// the host up again, which makes its TAPs anew).
    fn identity(&self) -> String {
        match &self.host {
            Some(h) => format!(
                "tap host={h} ifname={} mtu={} device={} offloads={}",
                self.ifname,
                self.mtu,
                self.backing.name(),
                self.offloads
            ),
            None => format!(
                "tap device={} mtu={} offloads={}",
                self.device, self.mtu, self.offloads
            ),
        }
    }

    fn build(&self, name: &str) -> Result<BuiltPort, BuildError> {
        if self.backing == Backing::Veth {
            match VethPort::create(&self.device, usize::from(self.mtu), self.offloads) {
                Ok(p) => return Ok(BuiltPort::new(p)),
                // A kernel without veth, packet rings or tcx still has TAP devices.
                Err(e) => tracing::warn!(
                    port = name,
                    "cannot serve `{}` through a veth pair ({e}); making a TAP device instead",
                    self.location()
                ),
            }
        }
        TapPort::create(&self.device, usize::from(self.mtu), self.offloads)
            .map(BuiltPort::new)
            .map_err(|source| BuildError {
                action: format!("create TAP device `{}`", self.device),
                source,
                hint: " (nfv run needs root, or CAP_NET_ADMIN, and /dev/net/tun)",
            })
    }

    /// A root-namespace device's name (a host's are named inside the host).
    fn claims(&self) -> Vec<Claim> {
        if self.host.is_some() || !valid_ifname(&self.ifname) {
            return Vec::new();
        }
        vec![Claim {
            key: if self.ifname_given { "ifname" } else { "" },
            what: "device name",
            value: self.ifname.clone(),
        }]
    }

    fn mac(&self) -> Option<MacAddr> {
        self.mac
    }

    fn tap(&self) -> Option<&TapConfig> {
        Some(self)
    }

    fn tap_mut(&mut self) -> Option<&mut TapConfig> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    fn load(name: &str, text: &str) -> (Option<TapConfig>, Vec<(String, String)>) {
        let mut p = Problems::default();
        let c = TapConfig::load(name, text, &mut p);
        (c, p.0)
    }

    #[test]
    fn a_root_tap_is_named_after_its_port_unless_given_a_name() {
        let (c, p) = load("t", "{ kind: tap }");
        assert!(p.is_empty(), "{p:?}");
        let c = c.expect("loads");
        assert_eq!(
            (c.ifname.as_str(), c.device.as_str(), c.mtu),
            ("t", "t", 1500)
        );
        assert_eq!(c.describe(), "tap t (root namespace), mtu 1500");
        assert_eq!(c.claims()[0].key, "");
        let (c, _) = load(
            "t",
            "{ kind: tap, ifname: nfv-t, mtu: 1400, mac: 02:00:00:00:00:01 }",
        );
        let c = c.expect("loads");
        assert_eq!((c.device.as_str(), c.mtu), ("nfv-t", 1400));
        assert_eq!(c.mac(), Some(MacAddr([2, 0, 0, 0, 0, 1])));
        assert_eq!(c.location(), "nfv-t");
        assert_eq!(
            c.claims(),
            vec![Claim {
                key: "ifname",
                what: "device name",
                value: "nfv-t".into()
            }]
        );
    }

    #[test]
    fn a_host_tap_waits_for_its_names() {
        let (c, p) = load("a", "kind: tap\nhost: alice\naddress: 10.0.0.1/24\n");
        assert!(p.is_empty(), "{p:?}");
        let mut c = c.expect("loads");
        assert_eq!(c.host.as_deref(), Some("alice"));
        assert_eq!(c.address.as_deref(), Some("10.0.0.1/24"));
        assert!(c.claims().is_empty());
        c.ifname = "eth0".into();
        assert_eq!(c.location(), "alice:eth0");
        assert_eq!(
            c.describe(),
            "tap -> host alice as eth0, mtu 1500 (a veth pair served through packet rings)"
        );
    }

    #[test]
    fn a_host_port_is_a_veth_pair_unless_it_asks_for_a_tap() {
        let backing = |text: &str| {
            let (c, p) = load("a", text);
            (c.map(|c| c.backing), p)
        };
        assert_eq!(
            backing("{ kind: tap, host: h }"),
            (Some(Backing::Veth), vec![])
        );
        assert_eq!(
            backing("{ kind: tap, host: h, device: veth }"),
            (Some(Backing::Veth), vec![])
        );
        assert_eq!(
            backing("{ kind: tap, host: h, device: tap }"),
            (Some(Backing::Tap), vec![])
        );
        assert_eq!(backing("{ kind: tap }"), (Some(Backing::Tap), vec![]));
        let (b, p) = backing("{ kind: tap, device: veth }");
        assert_eq!(b, Some(Backing::Tap));
        assert_eq!(p[0].0, "device");
        assert!(p[0].1.contains("needs `host`"), "{p:?}");
        let (_, p) = backing("{ kind: tap, host: h, device: xdp }");
        assert_eq!(p[0].0, "device");
        assert!(p[0].1.contains("expected `veth`"), "{p:?}");
        let (c, _) = load("a", "{ kind: tap, host: h, device: tap }");
        let mut c = c.expect("loads");
        c.ifname = "eth0".into();
        assert_eq!(
            c.describe(),
            "tap -> host h as eth0, mtu 1500 (a TAP device)"
        );
        assert_ne!(
            c.identity(),
            TapConfig {
                backing: Backing::Veth,
                ..c.clone()
            }
            .identity(),
            "a change of device makes the port anew"
        );
        // Offloads: on unless turned off, for either device.
        let (c, p) = load("a", "{ kind: tap, host: h }");
        assert!(c.expect("loads").offloads && p.is_empty());
        let (c, p) = load("a", "{ kind: tap, host: h, offloads: false }");
        let c = c.expect("loads");
        assert!(!c.offloads && p.is_empty());
        let (c2, _) = load("a", "{ kind: tap, host: h }");
        assert_ne!(c.identity(), c2.expect("loads").identity(), "made anew");
        for text in ["{ kind: tap, host: h, device: tap }", "{ kind: tap }"] {
            let (c, p) = load("a", text);
            assert!(c.expect("loads").offloads && p.is_empty(), "{text}");
        }
        let (c, p) = load("a", "{ kind: tap, offloads: false }");
        let c = c.expect("loads");
        assert!(!c.offloads && p.is_empty());
        let (c2, _) = load("a", "{ kind: tap }");
        assert_ne!(c.identity(), c2.expect("loads").identity(), "made anew");
    }

    #[test]
    fn unknown_and_foreign_keys_are_refused() {
        let (c, p) = load("a", "{ kind: tap, hots: alice }");
        assert!(c.is_none());
        assert_eq!(p[0].0, "", "serde names an unknown key at its mapping");
        assert!(
            p[0].1
                .starts_with("unknown field `hots`, expected one of `host`"),
            "{p:?}"
        );
        assert!(p[0].1.ends_with("; did you mean `host`?"), "{p:?}");
        let (c, p) = load("a", "{ kind: tap, flows: 3, socket: /s }");
        assert!(
            c.is_some(),
            "keys of other kinds are reported, the rest still read"
        );
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["flows", "socket"]);
        assert_eq!(
            p[0].1,
            "a `tap` port takes no `flows` (it takes: host, ifname, mtu, mac, address, device, offloads)"
        );
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let (c, p) = load(
            "a-very-long-port-name",
            "{ kind: tap, mtu: 40, mac: 01:00:00:00:00:01 }",
        );
        assert!(c.is_some());
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["mtu", "mac", ""], "{p:?}");
        assert!(p[2].1.contains("not a usable device name"), "{p:?}");
        let (_, p) = load("a", "{ kind: tap, mtu: big }");
        assert_eq!(p[0].0, "mtu");
        assert!(
            p[0].1
                .starts_with("invalid type: string \"big\", expected u32"),
            "{p:?}"
        );
        let (_, p) = load("a", "{ kind: tap, host: h, ifname: x }");
        assert_eq!(p[0].0, "ifname");
        let (_, p) = load("a", "{ kind: tap, address: 10.0.0.1/24 }");
        assert_eq!(p[0].0, "address");
        assert!(p[0].1.contains("needs `host`"));
    }
}
