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
    #[inline(always)]
    #[allow(unsafe_code)]
    pub fn push(&mut self, p: Packet) -> Result<(), Packet> {
        let len = self.pkts.len();
        if len >= BURST || len >= self.pkts.capacity() {
            return Err(p);
        }
        // SAFETY: `len < capacity`, so slot `len` is allocated and unused; writing it and then
        // counting it is what `Vec::push` does without its growth path.
        unsafe {
            self.pkts.as_mut_ptr().add(len).write(p);
            self.pkts.set_len(len + 1);
        }
        Ok(())
    }

    /// Move the last `n` packets of `from` (all of them if fewer) onto the end, as far as
    /// they fit.
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) fn take_from(&mut self, from: &mut Vec<Packet>, n: usize) {
        let n = n.min(from.len()).min(self.room());
        let (len, at) = (self.pkts.len(), from.len() - n);
        if self.pkts.capacity() - len < n {
            return;
        }
        // SAFETY: `from[at..]` holds `n` initialised packets, and `self.pkts` has room for `n`
        // more after its `len` (checked above). The packets are copied bitwise, then `from`
        // forgets them (its length drops to `at`) and `self.pkts` counts them: each packet
        // is owned by exactly one vector afterwards, as `Vec::append` does for a whole vector.
        unsafe {
            std::ptr::copy_nonoverlapping(
                from.as_ptr().add(at),
                self.pkts.as_mut_ptr().add(len),
                n,
            );
            from.set_len(at);
            self.pkts.set_len(len + n);
        }
    }

    /// Move every packet onto the end of `to` (which must have room: what does not fit is
    /// left in the batch).
    #[inline]
    pub(crate) fn give_to(&mut self, to: &mut Vec<Packet>) {
        if to.capacity() - to.len() >= self.pkts.len() {
            to.append(&mut self.pkts);
        }
    }

    /// The packets from `start` on, writable.
    #[inline]
    pub fn tail_mut(&mut self, start: usize) -> &mut [Packet] {
        self.pkts.get_mut(start..).unwrap_or_default()
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

    /// Take out, in order, the packets for which `pred` is true; the rest stay, in order,
    /// and the batch keeps its storage.
    #[inline]
    pub fn take_if<'a, F: FnMut(&mut Packet) -> bool + 'a>(
        &'a mut self,
        pred: F,
    ) -> impl Iterator<Item = Packet> + 'a {
        self.pkts.extract_if(.., pred)
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
