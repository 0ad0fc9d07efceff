//! `tap`: a Linux TAP device, in the root namespace or moved into a lab host.
//!
//! ```yaml
//! ports:
//!   t: { kind: tap, ifname: nfv-t, mtu: 1500, mac: 02:00:00:00:00:01 }  # root namespace
//!   a: { kind: tap, host: alice, address: 10.0.0.1/24 }  # alice's eth0 (her ports in order)
//! ```
//!
//! Keys: `host` (the lab host it moves into), `ifname` (its device name in the root
//! namespace; the port's name unless given), `mtu` (1500 unless given), `mac` (the host
//! side's address), `address` (the host's address on it, with `host` only), `device` (what
//! serves a host's port: `veth`, the default, a veth pair nfv serves through packet rings
//! ([`crate::port::veth`]); or `tap`, a TAP device; in the root namespace always a TAP).
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | the settings: schema, checks, description, how the port is built |
//! | `device.rs` | the device's file: opened, reads and writes with or without the virtio-net header |
//! | `port.rs` | the port: bursts to and from the device |

mod config;
mod device;
mod port;

pub use config::{Backing, TapConfig};
pub use port::TapPort;

use super::kind::{PortKind, PortSpec};
use crate::config::Report;

/// The `tap` kind.
pub struct TapKind;

impl PortKind for TapKind {
    fn name(&self) -> &'static str {
        "tap"
    }

    fn about(&self) -> &'static str {
        "a lab host's interface (a veth pair served through packet rings, or a TAP device) \
         or a TAP device in the root namespace: host, ifname, mtu, mac, address, device, offloads"
    }

    fn keys(&self) -> &'static [&'static str] {
        config::KEYS
    }

    fn load(&self, name: &str, text: &str, report: &mut dyn Report) -> Option<Box<dyn PortSpec>> {
        TapConfig::load(name, text, report).map(|c| Box::new(c) as Box<dyn PortSpec>)
    }
}
