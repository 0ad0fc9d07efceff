//! `conntrack`: a connection tracker, the state that `nat` and `firewall` keep per flow.
//!
//! (Implementation follows below the configuration types.)

use std::time::Duration;

/// How long an idle connection is kept, by protocol and state. The defaults are Linux's
/// (`net.netfilter.nf_conntrack_*_timeout*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP while opening (SYN sent, SYN received): Linux's `tcp_timeout_syn_sent`, 2 min.
    pub tcp_syn: Duration,
    /// TCP established: 5 days.
    pub tcp_established: Duration,
    /// TCP closing (FIN seen, last ACK, TIME_WAIT): 2 min.
    pub tcp_fin: Duration,
    /// TCP after a RST: 10 s.
    pub tcp_close: Duration,
    /// UDP seen in one direction only: 30 s.
    pub udp: Duration,
    /// UDP seen in both directions: 2 min.
    pub udp_stream: Duration,
    /// ICMP echo: 30 s.
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn: Duration::from_secs(120),
            tcp_established: Duration::from_secs(5 * 24 * 3600),
            tcp_fin: Duration::from_secs(120),
            tcp_close: Duration::from_secs(10),
            udp: Duration::from_secs(30),
            udp_stream: Duration::from_secs(120),
            icmp: Duration::from_secs(30),
        }
    }
}

/// Names of the [`Timeouts`] fields, as the topology file spells them.
pub const TIMEOUT_NAMES: &[&str] = &[
    "tcp_syn",
    "tcp_established",
    "tcp_fin",
    "tcp_close",
    "udp",
    "udp_stream",
    "icmp",
];

impl Timeouts {
    /// Set the timeout named `name` (one of [`TIMEOUT_NAMES`]); false if there is none.
    pub fn set(&mut self, name: &str, d: Duration) -> bool {
        let slot = match name {
            "tcp_syn" => &mut self.tcp_syn,
            "tcp_established" => &mut self.tcp_established,
            "tcp_fin" => &mut self.tcp_fin,
            "tcp_close" => &mut self.tcp_close,
            "udp" => &mut self.udp,
            "udp_stream" => &mut self.udp_stream,
            "icmp" => &mut self.icmp,
            _ => return false,
        };
        *slot = d;
        true
    }
}

/// Default most connections a tracker holds.
pub const DEFAULT_MAX: usize = 65_536;
