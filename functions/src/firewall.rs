//! `firewall`: a stateful firewall with ordered rules per direction.

use std::net::Ipv4Addr;

use crate::conntrack::Timeouts;

/// What a rule (or a direction's default) does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Let it through.
    Allow,
    /// Drop it silently (`fw_denied`).
    Drop,
    /// Drop it (`fw_rejected`) and answer: a TCP RST for TCP, ICMP port unreachable else.
    Reject,
}

/// A set of connection states a rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StateSet(pub u8);

impl StateSet {
    /// The packet opens a connection, or belongs to one not yet seen both ways.
    pub const NEW: StateSet = StateSet(1);
    /// The packet belongs to a connection seen in both directions.
    pub const ESTABLISHED: StateSet = StateSet(2);
    /// An ICMP error about a tracked connection.
    pub const RELATED: StateSet = StateSet(4);
    /// A packet that cannot be tracked (a TCP segment with no connection and no SYN, a
    /// malformed header, a full table).
    pub const INVALID: StateSet = StateSet(8);
    /// State names as the topology file spells them, with their sets.
    pub const NAMES: &'static [(&'static str, StateSet)] = &[
        ("new", StateSet::NEW),
        ("established", StateSet::ESTABLISHED),
        ("related", StateSet::RELATED),
        ("invalid", StateSet::INVALID),
    ];

    /// Both sets.
    pub const fn union(self, other: StateSet) -> StateSet {
        StateSet(self.0 | other.0)
    }

    /// True if the sets share a state.
    pub const fn intersects(self, other: StateSet) -> bool {
        self.0 & other.0 != 0
    }
}

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// One port.
    pub const fn one(p: u16) -> Self {
        PortRange { lo: p, hi: p }
    }

    /// True if `p` is in the range.
    #[inline]
    pub const fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

/// An IPv4 prefix (host bits clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub addr: Ipv4Addr,
    /// Its length, 0 to 32.
    pub len: u8,
}

impl Prefix {
    /// True if `ip` lies in the prefix.
    #[inline]
    pub fn contains(&self, ip: u32) -> bool {
        let mask = crate::ip::prefix_mask(self.len);
        ip & mask == u32::from(self.addr) & mask
    }
}

/// One rule: every field that is set must match; the first matching rule decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// What it does.
    pub action: Option<Action>,
    /// Source prefix.
    pub src: Option<Prefix>,
    /// Destination prefix.
    pub dst: Option<Prefix>,
    /// IP protocol number (1 ICMP, 6 TCP, 17 UDP, ...).
    pub proto: Option<u8>,
    /// TCP/UDP source ports.
    pub src_port: Option<PortRange>,
    /// TCP/UDP destination ports.
    pub dst_port: Option<PortRange>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// Connection states.
    pub state: Option<StateSet>,
}

/// The rules of one direction and what happens when none matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSet {
    /// Action when no rule matches.
    pub default: Action,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// A firewall's settings. Gate 0 is the inside, gate 1 the outside: `outbound` rules see
/// packets going from inside to outside, `inbound` ones the other way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallConfig {
    /// Rules for packets from the outside.
    pub inbound: RuleSet,
    /// Rules for packets from the inside.
    pub outbound: RuleSet,
    /// Most tracked connections.
    pub max_connections: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
}

impl Default for FirewallConfig {
    /// Inbound: allow established and related, drop the rest; outbound: allow.
    fn default() -> Self {
        FirewallConfig {
            inbound: RuleSet {
                default: Action::Drop,
                rules: vec![Rule {
                    action: Some(Action::Allow),
                    state: Some(StateSet::ESTABLISHED.union(StateSet::RELATED)),
                    ..Rule::default()
                }],
            },
            outbound: RuleSet {
                default: Action::Allow,
                rules: Vec::new(),
            },
            max_connections: crate::conntrack::DEFAULT_MAX,
            timeouts: Timeouts::default(),
        }
    }
}
