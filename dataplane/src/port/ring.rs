//! An in-memory port over two lock-free bounded queues, for tests and benchmarks.
//!
//! [`RingPort::new`] returns the port (given to the dataplane) and a [`RingPeer`], the far
//! end: what the peer sends, the port receives, and what the port transmits, the peer
//! receives. Packets move between the two without copying.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::{Port, ETH_HEADER};
use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::drop_reason::DropReason;
use crate::packet::{Packet, Pool, MAX_FRAME};

/// The dataplane's end of a ring pair.
pub struct RingPort {
    rx: Arc<ArrayQueue<Packet>>,
    tx: Arc<ArrayQueue<Packet>>,
    max_frame: usize,
}

/// The far end of a ring port: a test or generator sends frames into the dataplane and
/// takes the ones it transmits.
#[derive(Clone)]
pub struct RingPeer {
    to_port: Arc<ArrayQueue<Packet>>,
    from_port: Arc<ArrayQueue<Packet>>,
}

impl RingPort {
    /// A ring port whose queues hold `capacity` packets each, and its peer.
    pub fn new(capacity: usize) -> (RingPort, RingPeer) {
        let a = Arc::new(ArrayQueue::new(capacity.max(1)));
        let b = Arc::new(ArrayQueue::new(capacity.max(1)));
        (
            RingPort {
                rx: a.clone(),
                tx: b.clone(),
                max_frame: MAX_FRAME,
            },
            RingPeer {
                to_port: a,
                from_port: b,
            },
        )
    }
}

impl Port for RingPort {
    fn kind(&self) -> &'static str {
        "ring"
    }

    fn rx_burst(&mut self, pool: &mut Pool, batch: &mut Batch, counters: &PortCounters) {
        while !batch.is_full() {
            let Some(pkt) = self.rx.pop() else { break };
            if pkt.len() < ETH_HEADER {
                counters.drops.add(DropReason::Runt, 1);
                pool.free(pkt);
                continue;
            }
            counters.rx(pkt.len());
            if let Err(pkt) = batch.push(pkt) {
                pool.free(pkt);
            }
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        for pkt in batch.drain() {
            if pkt.len() > self.max_frame {
                counters.drops.add(DropReason::Oversize, 1);
                pool.free(pkt);
                continue;
            }
            let len = pkt.len();
            match self.tx.push(pkt) {
                Ok(()) => counters.tx(len),
                Err(pkt) => {
                    counters.drops.add(DropReason::TxFull, 1);
                    pool.free(pkt);
                }
            }
        }
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl RingPeer {
    /// Send a copy of `frame` into the dataplane (allocates a buffer: test side). False if
    /// the ring is full or the frame does not fit a buffer.
    pub fn send(&self, frame: &[u8]) -> bool {
        Packet::from_bytes(frame).is_some_and(|p| self.to_port.push(p).is_ok())
    }

    /// Send a packet into the dataplane; gives it back if the ring is full.
    pub fn send_packet(&self, pkt: Packet) -> Result<(), Packet> {
        self.to_port.push(pkt)
    }

    /// Take the next frame the dataplane transmitted, as bytes.
    pub fn recv(&self) -> Option<Vec<u8>> {
        self.from_port.pop().map(|p| p.data().to_vec())
    }

    /// Take the next packet the dataplane transmitted.
    pub fn recv_packet(&self) -> Option<Packet> {
        self.from_port.pop()
    }

    /// Take every frame waiting, as bytes.
    pub fn recv_all(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.recv()).collect()
    }
}
