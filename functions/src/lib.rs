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
//! - Header access: [`wire`] has checked views (after the checked constructor no getter can
//!   panic, whatever the frame holds), but most functions still read fields by offset after
//!   their own length checks, and NAT and firewall each parse every packet; one layer of
//!   checked views, with the offsets carried on the packet, is still to come.
//! - Every function shows its state as tables (`Node::show`: `macs`, `routes`, `arp`,
//!   `interfaces`, `nat`, `conntrack`, `firewall`, `leases`, `mirror`), each documented on its node;
//!   addresses, endpoints and times are spelled once, in [`show`].

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod arp;
pub mod conntrack;
pub mod dhcp;
pub mod firewall;
pub mod ip;
pub mod kind;
pub mod lpm;
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
