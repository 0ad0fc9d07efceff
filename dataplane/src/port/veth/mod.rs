//! veth ports: how a `tap` port that moves into a lab host is served unless its file asks
//! for a TAP device (`device: tap`).
//!
//! nfv makes a veth pair: one end moves into the host as its `eth0` (as a TAP device
//! would), the other stays in the root namespace, where nfv reads and writes it through
//! two `AF_PACKET` sockets whose `TPACKET_V2` rings are mapped into its memory. Frames the
//! host sends appear in the receive ring without a system call; a burst to the host is
//! written into the transmit ring and handed over with one `sendto` (past the queueing
//! discipline, `PACKET_QDISC_BYPASS`). The worker sleeps on the receive socket when idle.
//!
//! Why `TPACKET_V2` and not `TPACKET_V3` or `AF_XDP` (measured on this machine kind; the
//! figures are in `bench/peers/README.md`): a V3 ring hands frames over a block at a time,
//! and a block that is not full waits for its timer, a jiffy at least (4 ms here): every
//! ping through nfv would take milliseconds. `AF_XDP` on veth runs in copy mode and was no
//! faster than V2 rings.
//!
//! | file | what |
//! | --- | --- |
//! | `port.rs` | the port: bursts to and from the rings, the kernel's drop counts |
//! | `ring.rs` | packet sockets and their mapped rings |
//! | `netlink.rs` | making, raising and deleting the pair; its offloads |
//! | `filter.rs` | keeping the root namespace's stack off nfv's end |

mod filter;
pub(super) mod netlink;
mod port;
mod ring;

pub use port::VethPort;
pub(crate) use port::{read_counter, GSO_MAX};
