//! # nfv-functions
//!
//! The network functions of nfv, one module each, every one a [`Node`](nfv_dataplane::Node)
//! of the dataplane graph: it takes a batch that arrived on one of its gates and gives each
//! packet a verdict (an output gate, copies on several gates, or a drop with a reason).
//!
//! What it owns and what it must not know:
//! - Functions open no file or socket and read no clock: time comes in through the context
//!   (`ctx.now`), so every timer is testable with a fake clock.
//! - A function kind owns its part of the topology file: [`kind::Kind`] reads and checks its
//!   keys, names its gates, builds its node and exports its metrics, and [`registry`] lists
//!   the kinds, so that `nfv-control` is generic machinery (`switch`, `dhcp-server`, `nat`,
//!   `firewall` and [`mirror`] are made that way; `router` is still described by
//!   `nfv-control` and moves into the registry next). Functions still open no file: I/O such
//!   as a DHCP lease file stays in `nfv-control` (a documented hook of [`kind::Spec`]).
//! - Header access: [`wire`] is the one layer of checked views (after `new_checked` no
//!   getter can panic, whatever the frame holds; fields are named ranges), and
//!   [`wire::classify`] leaves where a packet's headers are on the packet, so the next node
//!   reuses it: a firewall before a NAT parses each packet once. Conntrack (for NAT and
//!   firewall), the router and the DHCP server read headers through them; DHCP keeps
//!   smoltcp's `DhcpPacket` for the message body.
//! - Fragments: `nat` and `firewall` decide a datagram on its first fragment and give its
//!   later ones the same treatment through one fragment table ([`fragments`]).
//! - Every function shows its state as tables (`Node::show`: `macs`, `routes`, `arp`,
//!   `interfaces`, `nat`, `conntrack`, `firewall`, `leases`, `mirror`), each documented on its node;
//!   addresses, endpoints and times are spelled once, in [`show`].

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod arp;
pub mod conntrack;
pub mod dhcp;
pub mod firewall;
pub mod fragments;
pub mod ip;
pub mod kind;
pub mod lpm;
pub mod lpm6;
pub mod mactable;
pub mod mirror;
pub mod nat;
pub mod registry;
pub mod router;
pub mod show;
pub mod switch;
#[cfg(test)]
pub(crate) mod testframes;
pub mod wire;

pub use switch::{Switch, SwitchConfig, SwitchStats, VlanMode};
