//! # nfv-bench
//!
//! Benchmarks of nfv. For now: criterion micro-benchmarks of the hot pieces (`benches/`):
//! the buffer pool and the switch forwarding path through in-memory ring ports. The packet
//! generator port, `nfv bench` scenarios and the side-by-side runs with DPDK's testpmd
//! build on this crate.
//!
//! It may use every other crate of the workspace; nothing depends on it.

#![deny(missing_docs)]

use nfv_dataplane::port::{RingPeer, RingPort};
use nfv_dataplane::{Endpoint, Gate, Graph, GraphBuilder, MacAddr, Packet, Pool, PortId, WorkerId};
use nfv_functions::{Switch, SwitchConfig, VlanMode};

/// A switch with two access attachments, each wired to a ring port, and frames circulating
/// from port A through the switch to port B and back to A's input: a closed loop that
/// reuses the same buffers, so a measured turn allocates nothing.
pub struct SwitchLoop {
    /// The graph.
    pub graph: Graph,
    /// The worker's pool.
    pub pool: Pool,
    a: RingPeer,
    b: RingPeer,
}

/// MAC address number `n` (locally administered).
pub fn mac(n: u32) -> MacAddr {
    let b = n.to_be_bytes();
    MacAddr([0x02, 0, b[0], b[1], b[2], b[3]])
}

/// A 64-byte frame from `src` to `dst`.
pub fn frame(dst: MacAddr, src: MacAddr) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&dst.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

impl SwitchLoop {
    /// `frames` frames in flight from `macs` distinct sources behind A to one destination
    /// behind B (learned first).
    pub fn new(frames: usize, macs: u32, table: usize) -> Self {
        let sw = Switch::new(SwitchConfig {
            mac_table_size: table,
            ageing: std::time::Duration::from_secs(300),
            attachments: vec![VlanMode::Access(1), VlanMode::Access(1)],
        });
        let mut g = GraphBuilder::new();
        let n = g.add_node("sw", 2, Box::new(sw));
        let (pa, a) = RingPort::new(frames.max(64) * 2);
        let (pb, b) = RingPort::new(frames.max(64) * 2);
        let ia = g.add_port("a", Box::new(pa));
        let ib = g.add_port("b", Box::new(pb));
        for (p, gate) in [(ia, 0), (ib, 1)] {
            if let Err(e) = g.connect(Endpoint::Port(p), Endpoint::Node(n, Gate(gate))) {
                panic!("bench wiring: {e}");
            }
        }
        let mut lp = SwitchLoop {
            graph: g.build(WorkerId(0)),
            pool: Pool::new(frames + 256),
            a,
            b,
        };
        // Learn the destination behind B, then put the frames in flight.
        let dst = mac(u32::MAX);
        assert!(lp.b.send(&frame(MacAddr::BROADCAST, dst)));
        lp.graph
            .poll_port(PortId(1), &mut lp.pool, nfv_dataplane::Timestamp::ZERO);
        while lp.a.recv_packet().is_some() {}
        for i in 0..frames {
            let f = frame(dst, mac(i as u32 % macs.max(1)));
            let Some(p) = Packet::from_bytes(&f) else {
                panic!("frame does not fit")
            };
            if lp.a.send_packet(p).is_err() {
                panic!("ring full");
            }
        }
        lp
    }

    /// Forward one burst from A to B and move what B sent back to A's input; returns the
    /// number of frames forwarded.
    #[inline]
    pub fn turn(&mut self, now: nfv_dataplane::Timestamp) -> usize {
        let n = self.graph.poll_port(PortId(0), &mut self.pool, now);
        while let Some(p) = self.b.recv_packet() {
            if let Err(p) = self.a.send_packet(p) {
                self.pool.free(p);
            }
        }
        n
    }
}
