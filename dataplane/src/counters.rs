//! Per-worker counters: plain integers written by their worker alone and read by anyone.
//!
//! Each [`Counter`] has exactly one writer (the worker that owns the port or node), so an
//! increment is a relaxed load and store, no locked read-modify-write. Readers load with
//! relaxed ordering and sum across workers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::drop_reason::DropReason;
use crate::ids::WorkerId;

/// A monotonically increasing count with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Set the value (for gauges such as table sizes). Only the owning worker may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Drops by reason.
#[derive(Debug)]
pub struct DropCounters([Counter; DropReason::COUNT]);

// By hand: `Default` is derived for arrays of at most 32 elements.
impl Default for DropCounters {
    fn default() -> Self {
        DropCounters(std::array::from_fn(|_| Counter::default()))
    }
}

impl DropCounters {
    /// Count `n` drops for `reason`.
    #[inline]
    pub fn add(&self, reason: DropReason, n: u64) {
        self.0[reason.index()].add(n);
    }

    /// Drops counted for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()].get()
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().map(Counter::get).sum()
    }

    /// Take over the counts of `other` (a graph rebuilt around the same port or node).
    pub fn copy_from(&self, other: &DropCounters) {
        for (a, b) in self.0.iter().zip(&other.0) {
            a.set(b.get());
        }
    }

    /// (reason, count) for every reason with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }
}

/// Counters of one port on one worker.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Frames received and passed to the graph.
    pub rx_packets: Counter,
    /// Bytes of those frames.
    pub rx_bytes: Counter,
    /// Frames transmitted.
    pub tx_packets: Counter,
    /// Bytes of those frames.
    pub tx_bytes: Counter,
    /// Receive calls that failed with an error other than "nothing to read".
    pub rx_errors: Counter,
    /// Frames the port's peer sent that nfv never saw: lost before nfv could read them (a
    /// TAP device's queue or a packet socket's ring was full). The port reads them from the
    /// kernel every [`crate::port::Port::refresh`].
    pub rx_miss: Counter,
    /// Frames dropped at this port (on receive or transmit), by reason.
    pub drops: DropCounters,
}

impl PortCounters {
    /// Count one received frame of `bytes` bytes.
    #[inline]
    pub fn rx(&self, bytes: usize) {
        self.rx_packets.add(1);
        self.rx_bytes.add(bytes as u64);
    }

    /// Count one transmitted frame of `bytes` bytes.
    #[inline]
    pub fn tx(&self, bytes: usize) {
        self.tx_packets.add(1);
        self.tx_bytes.add(bytes as u64);
    }

    /// Count `packets` received frames of `bytes` bytes in all (a burst at once).
    #[inline]
    pub fn rx_many(&self, packets: usize, bytes: usize) {
        self.rx_packets.add(packets as u64);
        self.rx_bytes.add(bytes as u64);
    }

    /// Count `packets` transmitted frames of `bytes` bytes in all (a burst at once).
    #[inline]
    pub fn tx_many(&self, packets: usize, bytes: usize) {
        self.tx_packets.add(packets as u64);
        self.tx_bytes.add(bytes as u64);
    }

    /// Take over the counts of `other`: the same port in a graph that was rebuilt (by a
    /// reload) keeps counting from where it was. Only the owning worker may call this.
    pub fn copy_from(&self, other: &PortCounters) {
        for (a, b) in [
            (&self.rx_packets, &other.rx_packets),
            (&self.rx_bytes, &other.rx_bytes),
            (&self.tx_packets, &other.tx_packets),
            (&self.tx_bytes, &other.tx_bytes),
            (&self.rx_errors, &other.rx_errors),
            (&self.rx_miss, &other.rx_miss),
        ] {
            a.set(b.get());
        }
        self.drops.copy_from(&other.drops);
    }
}

/// Counters of one node on one worker.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Packets handed to the node.
    pub packets_in: Counter,
    /// Packets the node emitted (flooded copies and packets it made itself, such as ARP
    /// requests and ICMP errors, count once each).
    pub packets_out: Counter,
    /// Packets the node took in and used up without a drop: an ARP reply it learned from,
    /// a DHCP message it answered with a new packet.
    pub consumed: Counter,
    /// Packets the node dropped, by reason.
    pub drops: DropCounters,
}

impl NodeCounters {
    /// Take over the counts of `other` (see [`PortCounters::copy_from`]).
    pub fn copy_from(&self, other: &NodeCounters) {
        self.packets_in.set(other.packets_in.get());
        self.packets_out.set(other.packets_out.get());
        self.consumed.set(other.consumed.get());
        self.drops.copy_from(&other.drops);
    }
}

/// Everything one worker counts.
#[derive(Debug)]
pub struct WorkerCounters {
    /// The worker.
    pub worker: WorkerId,
    /// Indexed by `PortId`.
    pub ports: Vec<PortCounters>,
    /// Indexed by `NodeId`.
    pub nodes: Vec<NodeCounters>,
    /// Loop turns.
    pub loops: Counter,
    /// Loop turns that received at least one packet.
    pub busy_loops: Counter,
    /// Packets received in busy turns (busy-turn average burst = this / busy_loops).
    pub burst_packets: Counter,
}

impl WorkerCounters {
    /// Zeroed counters for `ports` ports and `nodes` nodes.
    pub fn new(worker: WorkerId, ports: usize, nodes: usize) -> Self {
        WorkerCounters {
            worker,
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
            nodes: (0..nodes).map(|_| NodeCounters::default()).collect(),
            loops: Counter::default(),
            busy_loops: Counter::default(),
            burst_packets: Counter::default(),
        }
    }

    /// Drops for `reason` over all ports and nodes.
    pub fn drops(&self, reason: DropReason) -> u64 {
        let p: u64 = self.ports.iter().map(|c| c.drops.get(reason)).sum();
        let n: u64 = self.nodes.iter().map(|c| c.drops.get(reason)).sum();
        p + n
    }

    /// All drops over all ports and nodes.
    pub fn total_drops(&self) -> u64 {
        DropReason::ALL.iter().map(|&r| self.drops(r)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sums() {
        let w = WorkerCounters::new(WorkerId(0), 2, 1);
        w.ports[0].rx(60);
        w.ports[0].rx(40);
        w.ports[1].drops.add(DropReason::TxFull, 3);
        w.nodes[0].drops.add(DropReason::TxFull, 1);
        w.nodes[0].drops.add(DropReason::Hairpin, 2);
        assert_eq!(w.ports[0].rx_packets.get(), 2);
        assert_eq!(w.ports[0].rx_bytes.get(), 100);
        assert_eq!(w.drops(DropReason::TxFull), 4);
        assert_eq!(w.total_drops(), 6);
        let nz: Vec<_> = w.nodes[0].drops.nonzero().collect();
        assert_eq!(nz, vec![(DropReason::Hairpin, 2), (DropReason::TxFull, 1)]);
    }
}
