//! # nfv-functions
//!
//! The network functions of nfv, one module each, every one a [`Node`](nfv_dataplane::Node)
//! of the dataplane graph: it takes a batch that arrived on one of its gates and gives each
//! packet a verdict (an output gate, copies on several gates, or a drop with a reason).
//!
//! What it owns and what it must not know:
//! - Functions open no file or socket and read no clock: time comes in through the context
//!   (`ctx.now`), so every timer is testable with a fake clock.
//! - Functions know nothing of the topology file: `nfv-control` turns the file into each
//!   function's plain configuration struct (e.g. [`switch::SwitchConfig`]).
//! - Header access goes through checked views in [`wire`]: after the checked constructor no
//!   getter can panic, whatever the frame holds.
//! - Every function shows its state as tables (`Node::show`: `macs`, `routes`, `arp`,
//!   `interfaces`, `nat`, `conntrack`, `firewall`, `leases`), each documented on its node;
//!   addresses, endpoints and times are spelled once, in [`show`].

#![deny(unsafe_code)]

pub mod arp;
pub mod conntrack;
pub mod dhcp;
pub mod firewall;
pub mod ip;
pub mod lpm;
pub mod mactable;
pub mod nat;
pub mod router;
pub mod show;
pub mod switch;
#[cfg(test)]
pub(crate) mod testframes;
pub mod wire;

pub use switch::{Switch, SwitchConfig, SwitchStats, VlanMode};
