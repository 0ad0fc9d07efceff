//! `nat`: masquerade (source NAT) with port forwards (destination NAT).

use std::net::Ipv4Addr;

use crate::conntrack::Timeouts;
use crate::firewall::PortRange;

/// A port forward: connections to the NAT's first address on `proto`/`port` go to
/// `to`:`to_port` inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortForward {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// The outside port.
    pub port: u16,
    /// The inside address.
    pub to: Ipv4Addr,
    /// The inside port.
    pub to_port: u16,
}

/// A NAT's settings. Gate 0 is the inside, gate 1 the outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatConfig {
    /// The outside addresses flows are masqueraded to (at least one); port forwards are on
    /// the first.
    pub addresses: Vec<Ipv4Addr>,
    /// Outside ports (and ICMP echo identifiers) handed out, per address and protocol.
    pub ports: PortRange,
    /// Port forwards.
    pub forwards: Vec<PortForward>,
    /// Most sessions.
    pub max_sessions: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
}

/// Default outside port range.
pub const DEFAULT_PORTS: PortRange = PortRange {
    lo: 1024,
    hi: 65535,
};
