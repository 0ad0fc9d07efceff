//! # nfv-dataplane
//!
//! The packet-moving core of nfv: packet buffers and their pool, batches, the [`Port`] trait
//! and its kinds (TAP, vhost-user, in-memory ring, null sink, packet generator), the node
//! graph runtime, the worker and its polling loop, the per-worker counters, and the MAC
//! address type every crate uses ([`MacAddr`]).
//!
//! What it owns and what it must not know:
//! - It knows no network function: a function is a [`Node`] that takes a batch and gives every
//!   packet a verdict (an output gate or a [`DropReason`]). The switch, router and the rest
//!   live in `nfv-functions`.
//! - It opens no topology file and talks to no operator: `nfv-control` builds a [`Graph`]
//!   from a topology file and hands it to a [`Worker`]. What it knows of the file is each
//!   port kind's own settings: `nfv-control` hands a port's mapping, as text, to its kind
//!   ([`port::kind`]), which reads and checks it with the shared machinery of [`config`]
//!   (also what the function kinds of `nfv-functions` read their settings with).
//!
//! The fast path (receive a burst, run it through the graph, transmit bursts) allocates
//! nothing and takes no lock: buffers come from a [`Pool`] allocated at start-up, batches
//! hold at most [`BURST`] packets in storage reserved when they are made, and counters are
//! per-worker atomics written by one thread only and summed by readers.
//!
//! Unsafe code is denied crate-wide and allowed only where marked `#[allow(unsafe_code)]`
//! (the `poll(2)` call an idle worker sleeps in, a batch's reserved storage, the SIGBUS
//! handler that guards guest memory nfv could not seal); each block carries a `// SAFETY:`
//! comment.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod batch;
pub mod config;
pub mod counters;
pub mod drop_reason;
pub mod graph;
pub mod ids;
pub mod mac;
pub mod offload;
pub mod packet;
pub mod port;
pub mod rand;
mod sys;
pub mod table;
pub mod testing;
pub mod time;
pub mod trace;
pub mod worker;

pub use batch::{Batch, BURST};
pub use counters::{Counter, NodeCounters, PortCounters, WorkerCounters};
pub use drop_reason::DropReason;
pub use graph::{Ctx, Endpoint, Graph, GraphBuilder, GraphParts, Node};
pub use ids::{Gate, NodeId, PortId, WorkerId};
pub use mac::{MacAddr, ParseMacError};
pub use packet::{
    Meta, Offsets, Packet, Pool, BUF_SIZE, HEADROOM, HOP_LIMIT, JUMBO_BUF_SIZE, MAX_FRAME,
    MAX_JUMBO_FRAME, MAX_JUMBO_MTU, MAX_SUPER_FRAME,
};
pub use port::Port;
pub use rand::XorShift;
pub use sys::{advise_huge_pages, effective_uid, peer_uid, prefetch};
pub use table::{Cell, Table};
pub use time::Timestamp;
pub use worker::{CallError, Command, Worker, WorkerHandle};
