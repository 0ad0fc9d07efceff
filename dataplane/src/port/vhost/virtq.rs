//! Moving frames through a guest's split virtqueues, on the worker's thread.
//!
//! The guest is not trusted. Every descriptor is read and every buffer copied through
//! `vm-memory`, which refuses any address outside the memory the guest shared, and the
//! descriptor-chain walk of `virtio-queue` stops a chain that loops or runs longer than its
//! table. A frame from the guest is copied whole into a packet buffer the worker owns before
//! anything looks at it, so the guest cannot change a header after it was checked. A chain
//! that breaks a rule is given back used with length 0 and counted; the queue keeps serving.

use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, Permissions};

use crate::drop_reason::DropReason;

/// At most this many descriptors make up the buffers one frame goes into (more is a guest
/// that posts absurdly small buffers: the frame is dropped as `guest_bad_chain`).
const MAX_SEGS: usize = 64;
/// At most this many receive chains hold one frame (mergeable receive buffers).
const MAX_CHAINS: usize = 32;
/// The `VRING_AVAIL_F_NO_INTERRUPT` flag of the available ring.
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// How the negotiated features shape the frames on the rings.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bytes of `virtio_net_hdr` in front of every frame: 12 with VIRTIO_F_VERSION_1 or
    /// mergeable receive buffers, 10 for a legacy device without them.
    pub hdr_len: usize,
    /// VIRTIO_NET_F_MRG_RXBUF: a received frame may span several chains.
    pub mergeable: bool,
}

/// Take the next frame the guest transmitted: copy it (without its virtio-net header) into
/// `out` and give the chain back used. Returns `None` when the ring holds nothing new;
/// `Some(Ok(len))` for a frame, `Some(Err(reason))` for a chain that was dropped (counted by
/// the caller; the chain is given back used either way).
pub(crate) fn pop_frame<M: GuestMemory>(
    q: &mut Queue,
    mem: &M,
    layout: Layout,
    out: &mut [u8],
) -> Option<Result<usize, DropReason>> {
    let chain = q.pop_descriptor_chain(mem)?;
    let head = chain.head_index();
    let mut skip = layout.hdr_len;
    let mut len = 0usize;
    let mut descs = 0usize;
    let mut more = false;
    let mut verdict: Result<(), DropReason> = Ok(());
    for d in chain {
        descs += 1;
        more = d.has_next();
        if verdict.is_err() {
            continue; // walk on, so that a loop is still told apart from a bad buffer
        }
        if d.is_write_only() {
            verdict = Err(DropReason::GuestBadDescriptor);
            continue;
        }
        let dlen = d.len() as usize;
        let hdr = skip.min(dlen);
        skip -= hdr;
        let take = dlen - hdr;
        if take == 0 {
            if !mem.check_range(d.addr(), dlen, Permissions::Read) {
                verdict = Err(DropReason::GuestBadDescriptor);
            }
            continue;
        }
        if len + take > out.len() {
            verdict = Err(DropReason::Oversize);
            continue;
        }
        let Some(addr) = d.addr().checked_add(hdr as u64) else {
            verdict = Err(DropReason::GuestBadDescriptor);
            continue;
        };
        if mem.read_slice(&mut out[len..len + take], addr).is_err() {
            verdict = Err(DropReason::GuestBadDescriptor);
            continue;
        }
        len += take;
    }
    let verdict = if descs == 0 {
        // The head could not be read, or was an unusable indirect table.
        Err(DropReason::GuestBadDescriptor)
    } else if more {
        // The walk stopped while the last descriptor still pointed on: a loop, a chain longer
        // than its table, or a `next` outside it.
        Err(DropReason::GuestBadChain)
    } else if verdict.is_ok() && skip > 0 {
        Err(DropReason::GuestBadChain) // shorter than its own virtio-net header
    } else {
        verdict
    };
    let used = q.add_used(mem, head, 0);
    Some(match (verdict, used) {
        (Err(r), _) => Err(r),
        (Ok(()), Err(_)) => Err(DropReason::GuestBadDescriptor),
        (Ok(()), Ok(())) if len < crate::port::ETH_HEADER => Err(DropReason::Runt),
        (Ok(()), Ok(())) => Ok(len),
    })
}

/// Put one frame into the guest's receive queue, with a virtio-net header in front.
///
/// `Err(TxFull)` when the guest posted too few buffers: nothing is consumed and the frame is
/// dropped. A chain that breaks a rule (buffers outside guest memory, read-only buffers,
/// too short without mergeable buffers) is consumed with length 0 and the frame dropped.
pub(crate) fn push_frame<M: GuestMemory>(
    q: &mut Queue,
    mem: &M,
    layout: Layout,
    frame: &[u8],
) -> Result<(), DropReason> {
    let need = layout.hdr_len + frame.len();
    let mut segs = [(GuestAddress(0), 0u32); MAX_SEGS];
    let mut nsegs = 0usize;
    let mut chains = [(0u16, 0usize); MAX_CHAINS];
    let mut nchains = 0usize;
    let mut room = 0usize;
    let mut bad: Option<DropReason> = None;
    while room < need {
        if nchains == MAX_CHAINS || (nchains == 1 && !layout.mergeable) {
            bad = Some(DropReason::GuestBadChain);
            break;
        }
        let Some(chain) = q.pop_descriptor_chain(mem) else {
            // Too few buffers: give back what this frame took, untouched.
            for _ in 0..nchains {
                q.go_to_previous_position();
            }
            return Err(DropReason::TxFull);
        };
        let head = chain.head_index();
        let mut cap = 0usize;
        let mut descs = 0usize;
        let mut more = false;
        for d in chain {
            descs += 1;
            more = d.has_next();
            if bad.is_some() {
                continue;
            }
            if !d.is_write_only()
                || !mem.check_range(d.addr(), d.len() as usize, Permissions::Write)
            {
                bad = Some(DropReason::GuestBadDescriptor);
            } else if nsegs == MAX_SEGS {
                bad = Some(DropReason::GuestBadChain);
            } else if d.len() > 0 && room + cap < need {
                segs[nsegs] = (d.addr(), d.len());
                nsegs += 1;
                cap += d.len() as usize;
            }
        }
        if descs == 0 {
            bad = Some(DropReason::GuestBadDescriptor);
        } else if more {
            bad = bad.or(Some(DropReason::GuestBadChain));
        }
        chains[nchains] = (head, cap);
        nchains += 1;
        room += cap;
        if bad.is_some() {
            break;
        }
    }
    if let Some(reason) = bad {
        for &(head, _) in &chains[..nchains] {
            let _ = q.add_used(mem, head, 0);
        }
        return Err(reason);
    }
    let mut hdr = [0u8; 12];
    if layout.hdr_len == 12 {
        hdr[10..12].copy_from_slice(&(nchains as u16).to_le_bytes());
    }
    let mut w = Scatter {
        segs: &segs[..nsegs],
        seg: 0,
        off: 0,
    };
    let written = w.write(mem, &hdr[..layout.hdr_len]) && w.write(mem, frame);
    if !written {
        for &(head, _) in &chains[..nchains] {
            let _ = q.add_used(mem, head, 0);
        }
        return Err(DropReason::GuestBadDescriptor);
    }
    let mut left = need;
    for &(head, cap) in &chains[..nchains] {
        let n = cap.min(left);
        left -= n;
        if q.add_used(mem, head, n as u32).is_err() {
            return Err(DropReason::GuestBadDescriptor);
        }
    }
    Ok(())
}

/// A cursor over the guest buffers a frame is written into.
struct Scatter<'a> {
    segs: &'a [(GuestAddress, u32)],
    seg: usize,
    off: usize,
}

impl Scatter<'_> {
    /// Write `bytes` at the cursor; false if the buffers end first or a write fails.
    fn write<M: GuestMemory>(&mut self, mem: &M, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let Some(&(addr, len)) = self.segs.get(self.seg) else {
                return false;
            };
            let n = (len as usize - self.off).min(bytes.len());
            let Some(at) = addr.checked_add(self.off as u64) else {
                return false;
            };
            if mem.write_slice(&bytes[..n], at).is_err() {
                return false;
            }
            bytes = &bytes[n..];
            self.off += n;
            if self.off == len as usize {
                self.seg += 1;
                self.off = 0;
            }
        }
        true
    }
}

/// True if the guest wants an interrupt for what was just added to the used ring: with
/// event index, as it asked; without, unless it set `VRING_AVAIL_F_NO_INTERRUPT` (a polling
/// driver such as DPDK's sets it, which saves a system call per burst).
pub(crate) fn wants_interrupt<M: GuestMemory>(q: &mut Queue, mem: &M) -> bool {
    if q.event_idx_enabled() {
        return q.needs_notification(mem).unwrap_or(true);
    }
    match mem.load::<u16>(GuestAddress(q.avail_ring()), Ordering::Acquire) {
        Ok(flags) => u16::from_le(flags) & AVAIL_F_NO_INTERRUPT == 0,
        Err(_) => true,
    }
}

/// Entries the guest made available beyond what was taken, or `None` if the available index
/// is unreadable or claims more than the ring holds (a broken ring that cannot move).
pub(crate) fn pending<M: GuestMemory>(q: &Queue, mem: &M) -> Option<u16> {
    let idx = q.avail_idx(mem, Ordering::Acquire).ok()?;
    let n = (idx - std::num::Wrapping(q.next_avail())).0;
    (n <= q.size()).then_some(n)
}

#[cfg(test)]
mod tests {
    //! A hostile guest, played with `virtio-queue`'s mock split queue in real guest memory.
    use super::*;
    use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
    use virtio_queue::mock::MockSplitQueue;
    use vm_memory::GuestMemoryMmap;

    const F_NEXT: u16 = 1;
    const F_WRITE: u16 = 2;
    const F_INDIRECT: u16 = 4;
    const V1: Layout = Layout {
        hdr_len: 12,
        mergeable: true,
    };

    fn memory() -> GuestMemoryMmap<()> {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).expect("guest memory")
    }

    fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
        RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next))
    }

    fn frame(n: usize) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }

    /// Write a frame with its header at `addr` in guest memory.
    fn guest_frame(mem: &GuestMemoryMmap<()>, addr: u64, f: &[u8]) -> u32 {
        mem.write_slice(&[0u8; 12], GuestAddress(addr))
            .expect("hdr");
        mem.write_slice(f, GuestAddress(addr + 12)).expect("frame");
        (12 + f.len()) as u32
    }

    fn used(vq: &MockSplitQueue<GuestMemoryMmap<()>>, i: u16) -> (u32, u32) {
        let e = vq
            .used()
            .ring()
            .ref_at(i as usize)
            .expect("used elem")
            .load();
        (e.id(), e.len())
    }

    #[test]
    fn a_good_frame_is_copied_without_its_header() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        let f = frame(60);
        let n = guest_frame(&mem, 0x10_0000, &f);
        vq.add_desc_chains(&[desc(0x10_0000, n, 0, 0)], 0)
            .expect("chain");
        let mut q: Queue = vq.create_queue().expect("queue");
        let mut out = [0u8; 2048];
        assert_eq!(pop_frame(&mut q, &mem, V1, &mut out), Some(Ok(60)));
        assert_eq!(&out[..60], &f[..]);
        assert_eq!(used(&vq, 0), (0, 0));
        assert_eq!(vq.used().idx().load(), 1);
        assert_eq!(pop_frame(&mut q, &mem, V1, &mut out), None);
    }

    /// Make each of `descs` a chain head of its own, at table index `at + i`.
    fn heads(vq: &MockSplitQueue<GuestMemoryMmap<()>>, at: u16, descs: &[RawDescriptor]) {
        for (i, d) in descs.iter().enumerate() {
            vq.add_desc_chains(std::slice::from_ref(d), at + i as u16)
                .expect("chain");
        }
    }

    #[test]
    fn header_and_frame_in_separate_descriptors_and_indirect_tables() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        let f = frame(100);
        mem.write_slice(&[0u8; 12], GuestAddress(0x10_0000))
            .expect("hdr");
        mem.write_slice(&f[..30], GuestAddress(0x11_0000))
            .expect("part");
        mem.write_slice(&f[30..], GuestAddress(0x12_0000))
            .expect("part");
        vq.add_desc_chains(
            &[
                desc(0x10_0000, 12, F_NEXT, 1),
                desc(0x11_0000, 30, F_NEXT, 2),
                desc(0x12_0000, 70, 0, 0),
            ],
            0,
        )
        .expect("chain");
        // The same frame through an indirect table of two descriptors at 0x30_0000.
        let table = [desc(0x10_0000, 42, F_NEXT, 1), desc(0x12_0000, 70, 0, 0)];
        for (i, d) in table.iter().enumerate() {
            mem.write_obj(*d, GuestAddress(0x30_0000 + 16 * i as u64))
                .expect("indirect table");
        }
        heads(&vq, 3, &[desc(0x30_0000, 32, F_INDIRECT, 0)]);
        // An indirect table whose length is not a whole number of descriptors.
        heads(&vq, 4, &[desc(0x30_0000, 20, F_INDIRECT, 0)]);
        let mut q: Queue = vq.create_queue().expect("queue");
        let mut out = [0u8; 2048];
        assert_eq!(pop_frame(&mut q, &mem, V1, &mut out), Some(Ok(100)));
        assert_eq!(&out[..100], &f[..]);
        assert_eq!(pop_frame(&mut q, &mem, V1, &mut out), Some(Ok(100)));
        assert_eq!(
            &out[..30],
            &[0u8; 30][..],
            "the header's descriptor ran on into zeros"
        );
        assert_eq!(&out[30..100], &f[30..]);
        assert_eq!(
            pop_frame(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadDescriptor))
        );
        // A frame larger than the buffer it is copied into.
        let mut small = [0u8; 50];
        heads(&vq, 5, &[desc(0x10_0000, 112, 0, 0)]);
        assert_eq!(
            pop_frame(&mut q, &mem, V1, &mut small),
            Some(Err(DropReason::Oversize))
        );
        assert_eq!(vq.used().idx().load(), 4);
    }

    #[test]
    fn hostile_transmit_chains_are_counted_and_given_back() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        let good = guest_frame(&mem, 0x10_0000, &frame(64));
        heads(
            &vq,
            0,
            &[
                // 0: a buffer outside guest memory
                desc(0x4000_0000, 100, 0, 0),
                // 1: a buffer running past the end of guest memory
                desc(0x3f_ff00, 0x200, 0, 0),
                // 2 (-> 3 -> 2 ...): a loop
                desc(0x10_0000, good, F_NEXT, 3),
                // 3 is not a head: written below
            ],
        );
        vq.desc_table()
            .store(3, desc(0x10_0000, 8, F_NEXT, 2))
            .expect("loop");
        let mut q: Queue = vq.create_queue().expect("queue");
        let mut out = [0u8; 2048];
        assert_eq!(
            pop_frame(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadDescriptor))
        );
        assert_eq!(
            pop_frame(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadDescriptor))
        );
        assert_eq!(
            pop_frame(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadChain))
        );
        assert_eq!(pop_frame(&mut q, &mem, V1, &mut out), None);
        // Every bad chain went back used with length 0.
        assert_eq!(vq.used().idx().load(), 3);
        for i in 0..3 {
            assert_eq!(used(&vq, i), (i as u32, 0));
        }
    }

    #[test]
    fn more_hostile_transmit_chains() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        let good = guest_frame(&mem, 0x10_0000, &frame(64));
        heads(
            &vq,
            0,
            &[
                // 0: a device-writable buffer in a transmit chain
                desc(0x10_0000, good, F_WRITE, 0),
                // 1: `next` outside the table
                desc(0x10_0000, good, F_NEXT, 200),
                // 2: shorter than the virtio-net header
                desc(0x10_0000, 6, 0, 0),
                // 3: header only: a runt frame
                desc(0x10_0000, 12, 0, 0),
                // 4: an indirect table outside memory
                desc(0x7000_0000, 64, F_INDIRECT, 0),
                // 5: still served after all that
                desc(0x10_0000, good, 0, 0),
            ],
        );
        let mut q: Queue = vq.create_queue().expect("queue");
        let mut out = [0u8; 2048];
        let got: Vec<_> = (0..6)
            .map(|_| pop_frame(&mut q, &mem, V1, &mut out).expect("a chain"))
            .collect();
        assert_eq!(
            got,
            vec![
                Err(DropReason::GuestBadDescriptor),
                Err(DropReason::GuestBadChain),
                Err(DropReason::GuestBadChain),
                Err(DropReason::Runt),
                Err(DropReason::GuestBadDescriptor),
                Ok(64),
            ]
        );
        assert_eq!(vq.used().idx().load(), 6);
    }

    #[test]
    fn an_available_index_beyond_the_ring_is_seen_and_nothing_moves() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        let mut q: Queue = vq.create_queue().expect("queue");
        vq.avail().idx().store(100);
        assert_eq!(pending(&q, &mem), None);
        let mut out = [0u8; 2048];
        assert_eq!(pop_frame(&mut q, &mem, V1, &mut out), None);
        vq.avail().idx().store(2);
        assert_eq!(pending(&q, &mem), Some(2));
    }

    /// Post `n` receive buffers of `len` bytes at 0x20_0000 + i * 0x1000.
    fn post_rx(vq: &MockSplitQueue<GuestMemoryMmap<()>>, n: u16, len: u32) {
        let descs: Vec<_> = (0..n)
            .map(|i| desc(0x20_0000 + i as u64 * 0x1000, len, F_WRITE, 0))
            .collect();
        vq.add_desc_chains(&descs, 0).expect("rx chains");
    }

    #[test]
    fn receive_into_one_buffer_and_mergeable_buffers() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        post_rx(&vq, 4, 1024);
        let mut q: Queue = vq.create_queue().expect("queue");
        let small = frame(60);
        push_frame(&mut q, &mem, V1, &small).expect("fits one buffer");
        assert_eq!(used(&vq, 0), (0, 72));
        let mut got = vec![0u8; 72];
        mem.read_slice(&mut got, GuestAddress(0x20_0000))
            .expect("read");
        assert_eq!(&got[10..12], &1u16.to_le_bytes(), "num_buffers");
        assert_eq!(&got[12..], &small[..]);
        // 1500 bytes span two 1024-byte buffers: num_buffers 2, lengths 1024 + 488.
        let big = frame(1500);
        push_frame(&mut q, &mem, V1, &big).expect("two buffers");
        assert_eq!(used(&vq, 1), (1, 1024));
        assert_eq!(used(&vq, 2), (2, 488));
        let mut a = vec![0u8; 1024];
        mem.read_slice(&mut a, GuestAddress(0x20_1000))
            .expect("read");
        assert_eq!(&a[10..12], &2u16.to_le_bytes());
        assert_eq!(&a[12..], &big[..1012]);
        let mut b = vec![0u8; 488];
        mem.read_slice(&mut b, GuestAddress(0x20_2000))
            .expect("read");
        assert_eq!(&b[..], &big[1012..]);
        // One buffer left: a 1500-byte frame does not fit, nothing is consumed.
        assert_eq!(push_frame(&mut q, &mem, V1, &big), Err(DropReason::TxFull));
        assert_eq!(vq.used().idx().load(), 3);
        push_frame(&mut q, &mem, V1, &small).expect("the last buffer still serves");
        assert_eq!(vq.used().idx().load(), 4);
        assert_eq!(
            push_frame(&mut q, &mem, V1, &small),
            Err(DropReason::TxFull)
        );
    }

    #[test]
    fn without_mergeable_buffers_a_short_chain_is_returned_empty() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        post_rx(&vq, 2, 1024);
        let mut q: Queue = vq.create_queue().expect("queue");
        let legacy = Layout {
            hdr_len: 10,
            mergeable: false,
        };
        assert_eq!(
            push_frame(&mut q, &mem, legacy, &frame(1500)),
            Err(DropReason::GuestBadChain)
        );
        assert_eq!(used(&vq, 0), (0, 0));
        push_frame(&mut q, &mem, legacy, &frame(100)).expect("fits");
        assert_eq!(used(&vq, 1), (1, 110));
    }

    #[test]
    fn hostile_receive_chains() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        heads(
            &vq,
            0,
            &[
                // 0: read-only buffer in the receive queue
                desc(0x20_0000, 1024, 0, 0),
                // 1: outside guest memory
                desc(0x4000_0000, 1024, F_WRITE, 0),
                // 2 (-> 3 -> 2 ...): a loop
                desc(0x20_0000, 4, F_WRITE | F_NEXT, 3),
            ],
        );
        vq.desc_table()
            .store(3, desc(0x20_1000, 4, F_WRITE | F_NEXT, 2))
            .expect("loop");
        heads(&vq, 4, &[desc(0x20_2000, 2048, F_WRITE, 0)]);
        let mut q: Queue = vq.create_queue().expect("queue");
        let f = frame(60);
        assert_eq!(
            push_frame(&mut q, &mem, V1, &f),
            Err(DropReason::GuestBadDescriptor)
        );
        assert_eq!(
            push_frame(&mut q, &mem, V1, &f),
            Err(DropReason::GuestBadDescriptor)
        );
        assert_eq!(
            push_frame(&mut q, &mem, V1, &f),
            Err(DropReason::GuestBadChain)
        );
        push_frame(&mut q, &mem, V1, &f).expect("a good buffer after the bad ones");
        assert_eq!(vq.used().idx().load(), 4);
        assert_eq!(used(&vq, 3), (4, 72));
    }
}
