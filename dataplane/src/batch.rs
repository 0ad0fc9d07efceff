//! Batches: up to [`BURST`] packets that move through the graph together.

use crate::packet::Packet;

/// The largest number of packets a port receives in one call and a batch holds.
pub const BURST: usize = 64;

/// Up to [`BURST`] packets, in order. Its storage is reserved when made; pushing never
/// allocates (a push onto a full batch hands the packet back).
pub struct Batch {
    pkts: Vec<Packet>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch with room for [`BURST`] packets.
    pub fn new() -> Self {
        Batch {
            pkts: Vec::with_capacity(BURST),
        }
    }

    /// Append a packet, or give it back if the batch is full.
    #[inline]
    pub fn push(&mut self, p: Packet) -> Result<(), Packet> {
        if self.pkts.len() >= BURST {
            return Err(p);
        }
        self.pkts.push(p);
        Ok(())
    }

    /// Number of packets.
    #[inline]
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    /// True if there are no packets.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// True if no more packets fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.pkts.len() >= BURST
    }

    /// Room left.
    #[inline]
    pub fn room(&self) -> usize {
        BURST - self.pkts.len()
    }

    /// Take every packet out, in order. The batch keeps its storage.
    #[inline]
    pub fn drain(&mut self) -> std::vec::Drain<'_, Packet> {
        self.pkts.drain(..)
    }

    /// The packets, in order.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Packet> {
        self.pkts.iter()
    }

    /// The packets, in order, writable.
    #[inline]
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Packet> {
        self.pkts.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_a_burst_and_keeps_order() {
        let mut b = Batch::new();
        for i in 0..BURST {
            assert!(b
                .push(Packet::from_bytes(&[i as u8]).expect("fits"))
                .is_ok());
        }
        assert!(b.is_full());
        assert!(b.push(Packet::from_bytes(&[0]).expect("fits")).is_err());
        let order: Vec<u8> = b.drain().map(|p| p.data()[0]).collect();
        assert_eq!(order, (0..BURST as u8).collect::<Vec<_>>());
        assert!(b.is_empty());
        assert_eq!(b.room(), BURST);
    }
}
