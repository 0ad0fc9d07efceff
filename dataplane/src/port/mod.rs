//! Ports: where frames enter and leave the dataplane.
//!
//! A port receives and transmits in bursts. It counts what it receives, transmits and drops
//! in the [`PortCounters`] it is given; every packet handed to `tx_burst` is either sent or
//! dropped with a reason there, and its buffer goes back to the pool.
//!
//! Each port kind a topology file names is a folder here that owns its whole story: the
//! port, its settings schema and checks, its description and MTU, and how it is built
//! (`tap/`, `vhost/`, `null/`, `generator/`); `veth/` is how a `tap` port that moves into a
//! lab host is served by default. [`kind`] is the interface `nfv-control` learns
//! them through, and [`registry`] the one list of them. The in-memory [`ring`] port is a
//! test seam, not a kind of the file.

use std::os::fd::RawFd;

use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::packet::Pool;

pub mod generator;
pub mod kind;
pub mod null;
pub mod registry;
pub mod ring;
pub mod tap;
pub mod veth;
pub mod vhost;

pub use generator::{Addresses, GeneratorConfig, GeneratorPort, Proto, Sizes};
pub use kind::{BuildError, BuiltPort, Claim, PortKind, PortSettings, PortSpec, Traffic};
pub use null::{LatencyRecorder, NullConfig, NullPort};
pub use ring::{RingPeer, RingPort};
pub use tap::{Backing, TapConfig, TapPort};
pub use veth::VethPort;
pub use vhost::{SocketMode, VhostUserConfig, VhostUserPort};

/// How often the worker calls [`Port::refresh`].
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Length of an Ethernet header without VLAN tag.
pub const ETH_HEADER: usize = 14;
/// Length of one 802.1Q tag.
pub const VLAN_TAG: usize = 4;

/// A source and sink of Ethernet frames.
pub trait Port: Send {
    /// The port's kind, e.g. `"tap"`.
    fn kind(&self) -> &'static str;

    /// Receive up to `batch.room()` frames into buffers from `pool`, appending them to
    /// `batch`. Frames that cannot be taken (too short, too long) are counted and dropped.
    fn rx_burst(&mut self, pool: &mut Pool, batch: &mut Batch, counters: &PortCounters);

    /// Transmit every frame of `batch`, leaving it empty: each frame is sent or dropped with
    /// a counted reason, and its buffer goes back to `pool`. Never blocks.
    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters);

    /// A file descriptor that becomes readable when frames wait, for an idle worker to sleep
    /// on; `None` if the port has none.
    fn wait_fd(&self) -> Option<RawFd> {
        None
    }

    /// Called before an idle worker sleeps on `wait_fd`: ask the peer to signal it when
    /// frames arrive (a virtio guest is asked to kick again). Returns false if frames are
    /// already waiting, and the worker polls on instead of sleeping.
    fn prepare_sleep(&mut self) -> bool {
        true
    }

    /// Called when the worker wakes from its sleep: it polls again, so the peer may stop
    /// signalling.
    fn after_sleep(&mut self) {}

    /// Called every [`REFRESH_EVERY`] and once when the worker stops: read what the kernel
    /// counts for the port into `counters` (`rx_miss`), notice a device that went away,
    /// and push out frames a full device left waiting. Off the packet path; may make a few
    /// system calls.
    fn refresh(&mut self, _counters: &PortCounters) {}

    /// The largest frame the port sends or takes: MTU + Ethernet header + one VLAN tag.
    fn max_frame(&self) -> usize;

    /// True if the port takes frames that left work to their receiver (a begun checksum, a
    /// super-frame: see [`crate::offload`]) and may hand such frames to the graph. The
    /// graph makes every frame whole before a port that does not (the default).
    fn offloads(&self) -> bool {
        false
    }

    /// Give the buffers the port keeps between bursts (a spare super-frame buffer) back to
    /// `pool`, the worker's, before the port leaves the graph for good.
    fn release(&mut self, _pool: &mut Pool) {}
}
