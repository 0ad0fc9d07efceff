//! A test seam for nodes: a [`Harness`] wires every gate of one node to an in-memory ring
//! port, so a test sends frames into gate N and reads what came out of each gate, with time
//! given by the test (a fake clock that never sleeps).

use crate::counters::WorkerCounters;
use crate::drop_reason::DropReason;
use crate::graph::{Endpoint, Graph, GraphBuilder, Node};
use crate::ids::{Gate, NodeId, PortId, WorkerId};
use crate::packet::{Packet, Pool};
use crate::port::{RingPeer, RingPort};
use crate::time::Timestamp;

/// One node with a ring port on each of its gates.
pub struct Harness {
    graph: Graph,
    pool: Pool,
    peers: Vec<RingPeer>,
}

impl Harness {
    /// Wire `node`, which has `gates` gates, to `gates` ring ports (port N on gate N), with a
    /// pool of `pool_size` buffers.
    pub fn new(node: Box<dyn Node>, gates: usize, pool_size: usize) -> Self {
        let mut b = GraphBuilder::new();
        let mut peers = Vec::with_capacity(gates);
        let n = b.add_node("under-test", gates, node);
        for g in 0..gates {
            let (port, peer) = RingPort::new(1024);
            let p = b.add_port(format!("ring{g}"), Box::new(port));
            if let Err(e) = b.connect(Endpoint::Port(p), Endpoint::Node(n, Gate(g as u16))) {
                panic!("harness wiring: {e}");
            }
            peers.push(peer);
        }
        Harness {
            graph: b.build(WorkerId(0)),
            pool: Pool::new(pool_size),
            peers,
        }
    }

    /// Send `frame` into gate `gate` at time `now` and run the graph.
    pub fn send(&mut self, gate: usize, frame: &[u8], now: Timestamp) {
        self.queue(gate, frame);
        self.graph
            .poll_port(PortId(gate as u16), &mut self.pool, now);
    }

    /// Send `frames` into gate `gate` at time `now` as one burst (up to a burst's worth),
    /// and run the graph.
    pub fn send_burst(&mut self, gate: usize, frames: &[Vec<u8>], now: Timestamp) {
        for frame in frames {
            self.queue(gate, frame);
        }
        self.graph
            .poll_port(PortId(gate as u16), &mut self.pool, now);
    }

    /// Put `frame` on gate `gate`'s ring, without running the graph.
    fn queue(&mut self, gate: usize, frame: &[u8]) {
        // Take the buffer from the node's own pool (so a test can check that every buffer
        // comes back); only an empty pool makes the harness allocate one.
        let pkt = match self.pool.alloc() {
            Some(mut p) => {
                assert!(
                    p.set_frame(frame),
                    "frame of {} bytes does not fit",
                    frame.len()
                );
                p
            }
            None => match Packet::from_bytes(frame) {
                Some(p) => p,
                None => panic!("frame of {} bytes does not fit a buffer", frame.len()),
            },
        };
        assert!(self.peers[gate].send_packet(pkt).is_ok(), "ring full");
    }

    /// Every frame that came out of gate `gate` since the last call.
    /// Their buffers go back to the pool.
    pub fn recv(&mut self, gate: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(p) = self.peers[gate].recv_packet() {
            out.push(p.data().to_vec());
            self.pool.free(p);
        }
        out
    }

    /// For each gate, the frames that came out of it since the last call.
    pub fn recv_each(&mut self) -> Vec<Vec<Vec<u8>>> {
        (0..self.peers.len()).map(|g| self.recv(g)).collect()
    }

    /// Run the node's timers at `now`.
    pub fn tick(&mut self, now: Timestamp) {
        self.graph.tick(&mut self.pool, now);
    }

    /// The counters.
    pub fn counters(&self) -> &WorkerCounters {
        self.graph.counters()
    }

    /// Drops the node counted for `reason`.
    pub fn node_drops(&self, reason: DropReason) -> u64 {
        self.graph.counters().nodes[NodeId(0).index()]
            .drops
            .get(reason)
    }

    /// The pool: once every gate's output was read with [`recv`](Self::recv), all its
    /// buffers are free again unless the node leaked one.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}
