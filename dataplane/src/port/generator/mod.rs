//! `generator`: a port that "receives" frames it builds itself (UDP or TCP over IPv4, UDP
//! over IPv6, many flows, a rate, a count), each stamped with its send time so that a sink
//! can measure latency. `nfv bench` drives it.
//!
//! ```yaml
//! ports:
//!   gen: { kind: generator, flows: 1000, size: 64, rate: 1000000, count: 5000000 }
//!   gen6: { kind: generator, src_ip: "fd00::10", dst_ip: "2001:db8::1", dst_flows: 10, dst_step: 65536 }
//! ```
//!
//! Keys: `flows`, `size` (bytes, or `imix`; default 64, for IPv6 82), `rate` (packets per
//! second; none: as fast as possible), `count` (none: no end), `src_mac`, `dst_mac`,
//! `src_ip`, `dst_ip` (IPv4 or IPv6, both of one family: IPv6 addresses make IPv6 UDP
//! frames), `dst_flows`, `dst_step` (IPv6: in /64 networks, added to the upper 64 bits),
//! `src_port`, `dst_port`, `proto` (`udp` or `tcp`; IPv6 is UDP only).
//!
//! IPv6 frames are at least 82 bytes: Ethernet (14), IPv6 (40) and UDP (8) headers leave 2
//! bytes of a 64-byte frame, and the stamp takes 20 (`port.rs` says more).
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | the settings: schema, checks, description, how the port is built |
//! | `port.rs` | the port: templates, per-flow patches, the rate, the stamp |

mod config;
mod port;

pub use port::{
    read_stamp, Addresses, GeneratorConfig, GeneratorPort, Proto, Sizes, MAX_SIZE, MIN_SIZE,
    MIN_SIZE_V6, STAMP_MAGIC,
};

use super::kind::{PortKind, PortSpec};
use crate::config::Report;

/// The `generator` kind.
pub struct GeneratorKind;

impl PortKind for GeneratorKind {
    fn name(&self) -> &'static str {
        "generator"
    }

    fn about(&self) -> &'static str {
        "a packet generator for benchmarks: flows, size, rate, count, src_mac, dst_mac, \
         src_ip, dst_ip, dst_flows, dst_step, src_port, dst_port, proto"
    }

    fn keys(&self) -> &'static [&'static str] {
        config::KEYS
    }

    fn load(&self, _name: &str, text: &str, report: &mut dyn Report) -> Option<Box<dyn PortSpec>> {
        GeneratorConfig::load(text, report).map(|c| Box::new(c) as Box<dyn PortSpec>)
    }
}
