//! Moving frames through a guest's split virtqueues, on the worker's thread.
//!
//! The ring areas (descriptor table, available and used rings) are located once per burst as
//! `vm-memory` volatile slices, each checked to lie inside the memory the guest shared; every
//! buffer a descriptor names is checked the same way before it is read or written. Accesses go
//! straight to those slices: `vm-memory`'s generic `Bytes` accessors (and `virtio-queue`'s
//! `Queue`, built on them) walk an iterator of memory slices on every access, which cost ten
//! times more per packet than the rest of the path together. `virtio-queue` still validates
//! the ring set-up and supplies the descriptor layout; its mock queue drives the tests.
//!
//! The guest is not trusted. A chain that loops or runs longer than its table is stopped, an
//! indirect table must be well formed, and a frame from the guest is copied whole into a
//! packet buffer the worker owns before anything looks at it, so the guest cannot change a
//! header after it was checked. A chain that breaks a rule is given back used with length 0
//! and counted; the queue keeps serving.

use std::num::Wrapping;
use std::sync::atomic::{fence, Ordering};

use std::cell::Cell;
use virtio_queue::desc::split::Descriptor;

use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MemoryRegionAddress, VolatileSlice,
};

use super::log::DirtyLog;
use crate::drop_reason::DropReason;
use crate::offload::VIRTIO_HDR;

/// At most this many receive chains hold one frame (mergeable receive buffers): a 64 KB
/// super-frame in Linux's smallest mergeable buffers (1,518 bytes) takes 44.
const MAX_CHAINS: usize = 48;
/// At most this many buffer descriptors in one chain (direct, or in its indirect table).
/// A frame is at most `MAX_JUMBO_FRAME` (10,112) bytes plus a 12-byte header; Linux's virtio-net
/// sends one in at most `MAX_SKB_FRAGS + 2` (19) descriptors and fills receive chains of one
/// (mergeable buffers) or of up to 19 (big packets), DPDK's in one or two. 64 leaves room
/// for any sane driver and is 512 times less than the largest ring: a chain that loops
/// (`next` pointing back) or runs on is stopped here (or at the ring's size, if smaller) as
/// `guest_bad_chain`, after at most [`MAX_WALK`] descriptor reads, whatever the ring's size.
pub(crate) const MAX_CHAIN: usize = 64;
/// Descriptor reads one chain can cost at most: its buffers and one indirect descriptor.
const MAX_WALK: u64 = MAX_CHAIN as u64 + 1;
/// Descriptor reads one burst may cost, per ring (Linux's `vhost_exceeds_weight` bounds a
/// vhost-net turn the same way). A good burst of 64 frames reads 64 to 128; 1024 is eight
/// times that, and bounds what a ring full of failing chains can cost: a chain starts only
/// if its worst case still fits, so a burst never reads more. What is left waits for the
/// next burst.
pub(crate) const BUDGET: u64 = 1024;
/// `VRING_AVAIL_F_NO_INTERRUPT`.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VRING_USED_F_NO_NOTIFY`.
const USED_F_NO_NOTIFY: u16 = 1;
/// Size of a split-ring descriptor.
const DESC: usize = 16;

/// A slice of guest memory.
type Slice<'a> = VolatileSlice<'a, ()>;

/// How the negotiated features shape the frames on the rings.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bytes of `virtio_net_hdr` in front of every frame: 12 with VIRTIO_F_VERSION_1 or
    /// mergeable receive buffers, 10 for a legacy device without them.
    pub hdr_len: usize,
    /// VIRTIO_NET_F_MRG_RXBUF: a received frame may span several chains.
    pub mergeable: bool,
    /// VIRTIO_NET_F_CSUM: the guest's frames may leave their checksum (and, with
    /// HOST_TSO4/6, their segmentation) to nfv; their header is read.
    pub from_guest: bool,
    /// VIRTIO_NET_F_GUEST_CSUM: frames with a begun checksum may go to the guest as they
    /// are.
    pub guest_csum: bool,
    /// GUEST_TSO4 and GUEST_TSO6 (with GUEST_CSUM and mergeable buffers): TCP
    /// super-frames may go to the guest as they are.
    pub guest_tso: bool,
}

impl Layout {
    /// The layout for the negotiated VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MRG_RXBUF.
    pub fn new(version_1: bool, mergeable: bool) -> Self {
        Layout {
            hdr_len: if version_1 || mergeable { 12 } else { 10 },
            mergeable,
            from_guest: false,
            guest_csum: false,
            guest_tso: false,
        }
    }

    /// The same with the negotiated offloads (see the fields).
    pub fn with_offloads(self, from_guest: bool, guest_csum: bool, guest_tso: bool) -> Self {
        Layout {
            from_guest,
            guest_csum,
            guest_tso,
            ..self
        }
    }
}

/// Descriptor `idx` of `table`: two aligned 8-byte loads where the table allows (ring
/// tables are 16-byte aligned), else a plain copy (an indirect table may lie anywhere).
#[inline]
fn read_desc(table: &Slice, idx: usize) -> Option<Descriptor> {
    let off = idx * DESC;
    match (
        table.load::<u64>(off, Ordering::Relaxed),
        table.load::<u64>(off + 8, Ordering::Relaxed),
    ) {
        (Ok(addr), Ok(rest)) => {
            let rest = u64::from_le(rest);
            Some(Descriptor::new(
                u64::from_le(addr),
                rest as u32,
                (rest >> 32) as u16,
                (rest >> 48) as u16,
            ))
        }
        _ => table.read_obj(off).ok(),
    }
}

/// One split virtqueue as the device side runs it: where it lies and how far it got.
#[derive(Debug)]
pub(crate) struct SplitRing {
    size: u16,
    /// `size - 1`: ring slots are taken modulo a power of two (checked by `view`, which
    /// every access goes through) with a mask, not a division.
    mask: u16,
    desc: GuestAddress,
    avail: GuestAddress,
    used: GuestAddress,
    event_idx: bool,
    next_avail: Wrapping<u16>,
    next_used: Wrapping<u16>,
    /// The guest's available index as last read.
    avail_seen: Wrapping<u16>,
    /// `next_used` when the guest was last considered for an interrupt.
    signalled: Wrapping<u16>,
    /// Descriptors read so far, over the ring's life (one add per descriptor).
    visited: u64,
    /// The longest chain taken: [`MAX_CHAIN`], or the ring's size if smaller (no chain may
    /// be longer than its queue).
    max_chain: usize,
    /// Where `visited` may reach in this burst: set by [`start_burst`](Self::start_burst).
    budget_end: u64,
}

/// The ring's three areas in guest memory, for one burst.
pub(crate) struct View<'a> {
    mem: &'a GuestMemoryMmap,
    desc: Slice<'a>,
    avail: Slice<'a>,
    used: Slice<'a>,
    /// The region the last buffer was found in: buffers cluster, so most lookups end here.
    last: Cell<Option<&'a GuestRegionMmap>>,
    /// The dirty-page log every write into guest memory is reported to, while the guest
    /// migrates.
    log: Option<&'a DirtyLog>,
}

impl<'a> View<'a> {
    /// The same view, reporting its writes to `log` (if any).
    #[inline]
    pub fn logged(mut self, log: Option<&'a DirtyLog>) -> View<'a> {
        self.log = log;
        self
    }

    /// Report `len` bytes written at guest-physical `gpa` to the log, if logging.
    #[inline]
    fn mark(&self, gpa: u64, len: usize) {
        if let Some(log) = self.log {
            log.mark(gpa, len);
        }
    }

    /// `len` bytes of guest memory at `addr`, if they lie inside one region.
    #[inline]
    fn buffer(&self, addr: GuestAddress, len: usize) -> Result<Slice<'a>, DropReason> {
        let hit = self
            .last
            .get()
            .filter(|r| addr.0.wrapping_sub(r.start_addr().0) < r.len());
        let region = match hit {
            Some(r) => r,
            None => {
                let r = self
                    .mem
                    .find_region(addr)
                    .ok_or(DropReason::GuestBadDescriptor)?;
                self.last.set(Some(r));
                r
            }
        };
        region
            .get_slice(MemoryRegionAddress(addr.0 - region.start_addr().0), len)
            .map_err(|_| DropReason::GuestBadDescriptor)
    }
}

impl SplitRing {
    /// A ring of `size` entries (a power of two) at the given guest-physical addresses,
    /// starting at `base` (where the previous owner of the ring stopped).
    pub fn new(
        size: u16,
        desc: GuestAddress,
        avail: GuestAddress,
        used: GuestAddress,
        base: u16,
        event_idx: bool,
    ) -> Self {
        SplitRing {
            size,
            mask: size.wrapping_sub(1),
            desc,
            avail,
            used,
            event_idx,
            next_avail: Wrapping(base),
            next_used: Wrapping(base),
            avail_seen: Wrapping(base),
            signalled: Wrapping(base),
            visited: 0,
            max_chain: MAX_CHAIN.min(size as usize),
            budget_end: BUDGET,
        }
    }

    /// The ring's areas, or `None` if one lies (partly) outside guest memory or the ring
    /// is malformed (size not a power of two, misaligned areas).
    #[inline]
    pub fn view<'a>(&self, mem: &'a GuestMemoryMmap) -> Option<View<'a>> {
        let n = self.size as usize;
        if n == 0
            || !n.is_power_of_two()
            || !self.desc.0.is_multiple_of(16)
            || !self.avail.0.is_multiple_of(2)
            || !self.used.0.is_multiple_of(4)
        {
            return None;
        }
        Some(View {
            mem,
            desc: mem.get_slice(self.desc, DESC * n).ok()?,
            avail: mem.get_slice(self.avail, 6 + 2 * n).ok()?,
            used: mem.get_slice(self.used, 6 + 8 * n).ok()?,
            last: Cell::new(None),
            log: None,
        })
    }

    /// Descriptors read so far, over the ring's life.
    pub fn visited(&self) -> u64 {
        self.visited
    }

    /// A new burst: [`BUDGET`] descriptor reads from here.
    #[inline]
    pub fn start_burst(&mut self) {
        self.budget_end = self.visited + BUDGET;
    }

    /// True while the burst's budget still holds one more chain at its worst.
    #[inline]
    pub fn has_budget(&self) -> bool {
        self.visited + MAX_WALK <= self.budget_end
    }

    /// The next available index the ring will take.
    pub fn next_avail(&self) -> u16 {
        self.next_avail.0
    }

    /// Entries the guest made available beyond what was taken, or `None` if its available
    /// index is unreadable or claims more than the ring holds (a broken ring that cannot move).
    pub fn pending(&self, v: &View) -> Option<u16> {
        let idx = v.avail.load::<u16>(2, Ordering::Acquire).ok()?;
        let n = (Wrapping(u16::from_le(idx)) - self.next_avail).0;
        (n <= self.size).then_some(n)
    }

    /// The head of the next available chain, if any.
    #[inline]
    fn pop_head(&mut self, v: &View) -> Option<u16> {
        if self.next_avail == self.avail_seen {
            let idx = Wrapping(u16::from_le(
                v.avail.load::<u16>(2, Ordering::Acquire).ok()?,
            ));
            if (idx - self.next_avail).0 > self.size {
                return None; // broken: counted by the caller through `pending`
            }
            self.avail_seen = idx;
            if idx == self.next_avail {
                return None;
            }
        }
        let slot = 4 + 2 * (self.next_avail.0 & self.mask) as usize;
        let head = u16::from_le(v.avail.load::<u16>(slot, Ordering::Relaxed).ok()?);
        self.next_avail += Wrapping(1);
        Some(head)
    }

    /// Put the last taken head back (the frame it was for did not go out).
    fn unpop(&mut self) {
        self.next_avail -= Wrapping(1);
    }

    /// Give a chain back to the guest as used, with `len` bytes written. The guest sees it
    /// once [`flush`](Self::flush) publishes the used index.
    #[inline]
    fn put_used(&mut self, v: &View, head: u16, len: u32) {
        let off = 4 + 8 * (self.next_used.0 & self.mask) as usize;
        let _ = v
            .used
            .store(u32::from(head).to_le(), off, Ordering::Relaxed);
        let _ = v.used.store(len.to_le(), off + 4, Ordering::Relaxed);
        self.mark_used(v, off, 8);
        self.next_used += Wrapping(1);
    }

    /// Report `len` bytes written at `off` in the used ring to the log, if logging.
    #[inline]
    fn mark_used(&self, v: &View, off: usize, len: usize) {
        v.mark(self.used.0 + off as u64, len);
    }

    /// Publish the used entries written so far.
    #[inline]
    pub fn flush(&mut self, v: &View) {
        let _ = v.used.store(self.next_used.0.to_le(), 2, Ordering::Release);
        self.mark_used(v, 2, 2);
    }

    /// Walk the chain at `head`, handing every buffer to `f(slice, writable, gpa)`; stops at
    /// the first error. Loops, chains longer than their table, `next` outside it and malformed
    /// indirect tables are `guest_bad_chain` / `guest_bad_descriptor`.
    #[inline]
    fn walk<'a>(
        &mut self,
        v: &View<'a>,
        head: u16,
        mut f: impl FnMut(Slice<'a>, bool, u64) -> Result<(), DropReason>,
    ) -> Result<(), DropReason> {
        let mut table = v.desc;
        let mut len = self.size as usize;
        let mut idx = head as usize;
        let mut seen = 0usize;
        let mut indirect = false;
        loop {
            if idx >= len {
                return Err(DropReason::GuestBadChain);
            }
            self.visited += 1;
            let d = read_desc(&table, idx).ok_or(DropReason::GuestBadDescriptor)?;
            if d.refers_to_indirect_table() {
                let n = d.len() as usize;
                if indirect || d.has_next() || n == 0 || !n.is_multiple_of(DESC) {
                    return Err(DropReason::GuestBadDescriptor);
                }
                if n / DESC > self.size as usize {
                    // No chain may be longer than the queue (VIRTIO 1.1, 2.6.5.3.1); the walk
                    // ends at `max_chain` descriptors anyway.
                    return Err(DropReason::GuestBadChain);
                }
                table = v.buffer(d.addr(), n)?;
                len = n / DESC;
                idx = 0;
                indirect = true;
                continue;
            }
            seen += 1;
            if seen > self.max_chain {
                return Err(DropReason::GuestBadChain); // a loop, or longer than any frame needs
            }
            let buf = v.buffer(d.addr(), d.len() as usize)?;
            f(buf, d.is_write_only(), d.addr().0)?;
            if !d.has_next() {
                return Ok(());
            }
            idx = d.next() as usize;
        }
    }

    /// Take the next frame the guest transmitted: copy its virtio-net header's first
    /// [`VIRTIO_HDR`] bytes into `hdr` and the frame into `out`, or into `big` if the
    /// header announces a super-frame (GSO) and `big` is given, and give the chain back
    /// used. `None` when the ring holds nothing new or the burst's descriptor budget is
    /// spent; `Some(Ok((len, in_big)))` for a frame, `Some(Err(reason))` for a chain that
    /// was dropped.
    #[inline]
    pub fn pop_frame(
        &mut self,
        v: &View,
        layout: Layout,
        hdr: &mut [u8; VIRTIO_HDR],
        out: &mut [u8],
        mut big: Option<&mut [u8]>,
    ) -> Option<Result<(usize, bool), DropReason>> {
        if !self.has_budget() {
            return None;
        }
        let head = self.pop_head(v)?;
        let mut skip = layout.hdr_len;
        let mut len = 0usize;
        let mut in_big = false;
        let walked = self.walk(v, head, |buf, writable, _| {
            if writable {
                return Err(DropReason::GuestBadDescriptor);
            }
            let h = skip.min(buf.len());
            if h > 0 {
                // Header bytes: keep the first ten (`num_buffers` is not the guest's to send).
                let at = layout.hdr_len - skip;
                let end = (at + h).min(VIRTIO_HDR);
                if at < end {
                    buf.subslice(0, end - at)
                        .map_err(|_| DropReason::GuestBadDescriptor)?
                        .copy_to(&mut hdr[at..end]);
                }
                skip -= h;
                if skip == 0 && hdr[1] != 0 && big.is_some() {
                    in_big = true;
                }
            }
            let take = buf.len() - h;
            if take == 0 {
                return Ok(());
            }
            let to: &mut [u8] = match (&mut big, in_big) {
                (Some(b), true) => b,
                _ => out,
            };
            if len + take > to.len() {
                return Err(DropReason::Oversize);
            }
            let data = buf.offset(h).map_err(|_| DropReason::GuestBadDescriptor)?;
            data.copy_to(&mut to[len..len + take]);
            len += take;
            Ok(())
        });
        self.put_used(v, head, 0);
        Some(match walked {
            Err(r) => Err(r),
            Ok(()) if skip > 0 => Err(DropReason::GuestBadChain), // shorter than its header
            Ok(()) if len < crate::port::ETH_HEADER => Err(DropReason::Runt),
            Ok(()) => Ok((len, in_big)),
        })
    }

    /// Put one frame into the guest's receive queue, with a virtio-net header in front.
    ///
    /// `Err(TxFull)` when the guest posted too few buffers, or when the burst's descriptor
    /// budget is spent before the frame found room: nothing is consumed. A chain that
    /// breaks a rule (buffers outside guest memory, read-only buffers, too short without
    /// mergeable buffers) is consumed with length 0 and the frame dropped.
    #[inline]
    pub fn push_frame(
        &mut self,
        v: &View,
        layout: Layout,
        frame: &[u8],
        vhdr: &[u8; VIRTIO_HDR],
    ) -> Result<(), DropReason> {
        let need = layout.hdr_len + frame.len();
        // Used entries are written as chains fill (the guest sees none of them before
        // `flush`), so that nothing per chain needs remembering.
        let first_used = self.next_used;
        let mut nchains = 0usize;
        // The header, then the frame, written as the buffers come; num_buffers (the last
        // two header bytes) is patched at the end, when the count is known.
        let mut hdr = [0u8; 12];
        hdr[..VIRTIO_HDR].copy_from_slice(vhdr);
        hdr[10] = 1; // num_buffers = 1 unless patched
        let hdr = &hdr[..layout.hdr_len];
        let mut done = 0usize; // bytes of header + frame written
                               // Where num_buffers' two bytes lie: their slices and guest-physical addresses.
        let mut num_buffers: [Option<(Slice, u64)>; 2] = [None, None];
        let mut bad: Option<DropReason> = None;
        while done < need {
            if nchains == MAX_CHAINS || (nchains == 1 && !layout.mergeable) {
                bad = Some(DropReason::GuestBadChain);
                break;
            }
            let head = if self.has_budget() {
                self.pop_head(v)
            } else {
                None
            };
            let Some(head) = head else {
                // Too few buffers: give back what this frame took, unused.
                for _ in 0..nchains {
                    self.unpop();
                }
                self.next_used = first_used;
                return Err(DropReason::TxFull);
            };
            let start = done;
            let walked = self.walk(v, head, |buf, writable, gpa| {
                if !writable {
                    return Err(DropReason::GuestBadDescriptor);
                }
                if done == 0 && buf.len() >= need {
                    // The common case: header and frame fit the first buffer.
                    let b = buf
                        .subslice(0, need)
                        .map_err(|_| DropReason::GuestBadDescriptor)?;
                    b.copy_from(hdr);
                    let rest = b
                        .offset(hdr.len())
                        .map_err(|_| DropReason::GuestBadDescriptor)?;
                    rest.copy_from(frame);
                    v.mark(gpa, need);
                    if hdr.len() == 12 {
                        num_buffers = [
                            b.subslice(10, 1).ok().map(|s| (s, gpa + 10)),
                            b.subslice(11, 1).ok().map(|s| (s, gpa + 11)),
                        ];
                    }
                    done = need;
                    return Ok(());
                }
                let mut at = 0usize;
                while at < buf.len() && done < need {
                    let (src, from) = if done < hdr.len() {
                        (hdr, done)
                    } else {
                        (frame, done - hdr.len())
                    };
                    let n = (buf.len() - at).min(src.len() - from);
                    let dst = buf
                        .subslice(at, n)
                        .map_err(|_| DropReason::GuestBadDescriptor)?;
                    dst.copy_from(&src[from..from + n]);
                    if layout.hdr_len == 12 && done < 12 && done + n > 10 {
                        for b in 10.max(done)..12.min(done + n) {
                            let at = at + b - done;
                            num_buffers[b - 10] =
                                buf.subslice(at, 1).ok().map(|s| (s, gpa + at as u64));
                        }
                    }
                    at += n;
                    done += n;
                }
                v.mark(gpa, at);
                Ok(())
            });
            self.put_used(v, head, (done - start) as u32);
            nchains += 1;
            if let Err(r) = walked {
                bad = Some(r);
                break;
            }
            if done == start {
                bad = Some(DropReason::GuestBadChain); // a chain with no room at all
                break;
            }
        }
        if let Some(reason) = bad {
            // Every chain this frame took goes back with length 0.
            for k in 0..nchains {
                let slot = (first_used + Wrapping(k as u16)).0 & self.mask;
                let _ = v
                    .used
                    .store(0u32, 4 + 8 * slot as usize + 4, Ordering::Relaxed);
                self.mark_used(v, 4 + 8 * slot as usize + 4, 4);
            }
            return Err(reason);
        }
        if layout.hdr_len == 12 && nchains > 1 {
            let count = (nchains as u16).to_le_bytes();
            for (slot, byte) in num_buffers.iter().zip(count) {
                if let Some((s, gpa)) = slot {
                    let _ = s.store(byte, 0, Ordering::Relaxed);
                    v.mark(*gpa, 1);
                }
            }
        }
        Ok(())
    }

    /// True if the guest wants an interrupt for what was added to the used ring since the
    /// last call: with event index, as it asked; without, unless it set
    /// `VRING_AVAIL_F_NO_INTERRUPT` (a polling driver such as DPDK's does, which saves a
    /// system call per burst).
    pub fn wants_interrupt(&mut self, v: &View) -> bool {
        let old = self.signalled;
        let new = self.next_used;
        self.signalled = new;
        if old == new {
            return false;
        }
        fence(Ordering::SeqCst);
        if self.event_idx {
            let off = 4 + 2 * self.size as usize;
            let Ok(event) = v.avail.load::<u16>(off, Ordering::Relaxed) else {
                return true;
            };
            let event = Wrapping(u16::from_le(event));
            // vring_need_event: the guest's used_event lies in [old, new).
            return (new - event - Wrapping(1)) < (new - old);
        }
        match v.avail.load::<u16>(0, Ordering::Relaxed) {
            Ok(flags) => u16::from_le(flags) & AVAIL_F_NO_INTERRUPT == 0,
            Err(_) => true,
        }
    }

    /// Ask the guest not to kick for new entries (the worker polls).
    pub fn suppress_kicks(&mut self, v: &View) {
        if !self.event_idx {
            let _ = v.used.store(USED_F_NO_NOTIFY.to_le(), 0, Ordering::Relaxed);
            self.mark_used(v, 0, 2);
        }
        // With event index the guest kicks only when it passes `avail_event`, which is left
        // where it was: at most one more kick.
    }

    /// Ask the guest to kick for the next entry; true if entries arrived meanwhile (then
    /// the caller polls instead of sleeping).
    pub fn enable_kicks(&mut self, v: &View) -> bool {
        if self.event_idx {
            let off = 4 + 8 * self.size as usize;
            let _ = v
                .used
                .store(self.next_avail.0.to_le(), off, Ordering::Relaxed);
            self.mark_used(v, off, 2);
        } else {
            let _ = v.used.store(0u16, 0, Ordering::Relaxed);
            self.mark_used(v, 0, 2);
        }
        fence(Ordering::SeqCst);
        self.pending(v) != Some(0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! A hostile guest, played with `virtio-queue`'s mock split queue in real guest memory.
    use super::*;
    use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
    use virtio_queue::mock::MockSplitQueue;

    pub(crate) const F_NEXT: u16 = 1;
    pub(crate) const F_WRITE: u16 = 2;
    const F_INDIRECT: u16 = 4;
    const V1: Layout = Layout {
        hdr_len: 12,
        mergeable: true,
        from_guest: false,
        guest_csum: false,
        guest_tso: false,
    };

    pub(crate) fn ring(vq: &MockSplitQueue<GuestMemoryMmap<()>>) -> SplitRing {
        SplitRing::new(
            16,
            vq.desc_table_addr(),
            vq.avail_addr(),
            vq.used_addr(),
            0,
            false,
        )
    }

    fn pop(
        r: &mut SplitRing,
        mem: &GuestMemoryMmap,
        layout: Layout,
        out: &mut [u8],
    ) -> Option<Result<usize, DropReason>> {
        let v = r.view(mem).expect("ring inside guest memory");
        let mut hdr = [0u8; VIRTIO_HDR];
        let got = r.pop_frame(&v, layout, &mut hdr, out, None);
        r.flush(&v);
        got.map(|g| g.map(|(n, _)| n))
    }

    /// A frame taken: its length, whether it went to the big buffer, its header.
    type Popped = Result<(usize, bool, [u8; VIRTIO_HDR]), DropReason>;

    /// Take a frame with its header, into `big` if the header announces a super-frame.
    fn pop_with(
        r: &mut SplitRing,
        mem: &GuestMemoryMmap,
        layout: Layout,
        out: &mut [u8],
        big: &mut [u8],
    ) -> Option<Popped> {
        let v = r.view(mem).expect("ring inside guest memory");
        let mut hdr = [0u8; VIRTIO_HDR];
        let got = r.pop_frame(&v, layout, &mut hdr, out, Some(big));
        r.flush(&v);
        got.map(|g| g.map(|(n, b)| (n, b, hdr)))
    }

    fn push(
        r: &mut SplitRing,
        mem: &GuestMemoryMmap,
        layout: Layout,
        frame: &[u8],
    ) -> Result<(), DropReason> {
        let v = r.view(mem).expect("ring inside guest memory");
        let got = r.push_frame(&v, layout, frame, &[0; VIRTIO_HDR]);
        r.flush(&v);
        got
    }

    pub(crate) fn memory() -> GuestMemoryMmap<()> {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).expect("guest memory")
    }

    pub(crate) fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
        RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next))
    }

    pub(crate) fn frame(n: usize) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }

    /// Write a frame with its header at `addr` in guest memory.
    pub(crate) fn guest_frame(mem: &GuestMemoryMmap<()>, addr: u64, f: &[u8]) -> u32 {
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
        let mut q = ring(&vq);
        let mut out = [0u8; 2048];
        assert_eq!(pop(&mut q, &mem, V1, &mut out), Some(Ok(60)));
        assert_eq!(&out[..60], &f[..]);
        assert_eq!(used(&vq, 0), (0, 0));
        assert_eq!(vq.used().idx().load(), 1);
        assert_eq!(pop(&mut q, &mem, V1, &mut out), None);
    }

    /// With offloads negotiated, a frame whose header announces a super-frame goes to the
    /// big buffer, its header kept (also when split over two descriptors); one that
    /// announces none goes to the small one.
    #[test]
    fn a_super_frames_header_is_kept_and_the_frame_goes_big() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        let f = frame(3000);
        // Header: NEEDS_CSUM, TCPv4, hdr_len 54, gso_size 1448, csum 34 + 16.
        let mut h = [0u8; 12];
        h[0] = 1;
        h[1] = 1;
        h[2..4].copy_from_slice(&54u16.to_le_bytes());
        h[4..6].copy_from_slice(&1448u16.to_le_bytes());
        h[6..8].copy_from_slice(&34u16.to_le_bytes());
        h[8..10].copy_from_slice(&16u16.to_le_bytes());
        mem.write_slice(&h[..5], GuestAddress(0x10_0000))
            .expect("hdr");
        mem.write_slice(&h[5..], GuestAddress(0x11_0000))
            .expect("hdr");
        mem.write_slice(&f, GuestAddress(0x11_0007)).expect("frame");
        vq.add_desc_chains(
            &[
                desc(0x10_0000, 5, F_NEXT, 1),
                desc(0x11_0000, 7 + 3000, 0, 0),
            ],
            0,
        )
        .expect("chain");
        let small = guest_frame(&mem, 0x12_0000, &frame(60));
        heads(&vq, 2, &[desc(0x12_0000, small, 0, 0)]);
        let mut q = ring(&vq);
        let offl = V1.with_offloads(true, true, true);
        let (mut out, mut big) = ([0u8; 2048], vec![0u8; 65536]);
        let (n, in_big, hdr) = pop_with(&mut q, &mem, offl, &mut out, &mut big)
            .expect("a frame")
            .expect("good");
        assert_eq!((n, in_big), (3000, true));
        assert_eq!(&hdr[..], &h[..10]);
        assert_eq!(&big[..3000], &f[..]);
        let (n, in_big, hdr) = pop_with(&mut q, &mem, offl, &mut out, &mut big)
            .expect("a frame")
            .expect("good");
        assert_eq!((n, in_big, hdr), (60, false, [0; VIRTIO_HDR]));
    }

    /// Make each of `descs` a chain head of its own, at table index `at + i`.
    pub(crate) fn heads(
        vq: &MockSplitQueue<GuestMemoryMmap<()>>,
        at: u16,
        descs: &[RawDescriptor],
    ) {
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
        let mut q = ring(&vq);
        let mut out = [0u8; 2048];
        assert_eq!(pop(&mut q, &mem, V1, &mut out), Some(Ok(100)));
        assert_eq!(&out[..100], &f[..]);
        assert_eq!(pop(&mut q, &mem, V1, &mut out), Some(Ok(100)));
        assert_eq!(
            &out[..30],
            &[0u8; 30][..],
            "the header's descriptor ran on into zeros"
        );
        assert_eq!(&out[30..100], &f[30..]);
        assert_eq!(
            pop(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadDescriptor))
        );
        // A frame larger than the buffer it is copied into.
        let mut small = [0u8; 50];
        heads(&vq, 5, &[desc(0x10_0000, 112, 0, 0)]);
        assert_eq!(
            pop(&mut q, &mem, V1, &mut small),
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
        let mut q = ring(&vq);
        let mut out = [0u8; 2048];
        assert_eq!(
            pop(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadDescriptor))
        );
        assert_eq!(
            pop(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadDescriptor))
        );
        assert_eq!(
            pop(&mut q, &mem, V1, &mut out),
            Some(Err(DropReason::GuestBadChain))
        );
        assert_eq!(pop(&mut q, &mem, V1, &mut out), None);
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
        let mut q = ring(&vq);
        let mut out = [0u8; 2048];
        let got: Vec<_> = (0..6)
            .map(|_| pop(&mut q, &mem, V1, &mut out).expect("a chain"))
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
        let mut q = ring(&vq);
        vq.avail().idx().store(100);
        assert_eq!(q.pending(&q.view(&mem).expect("view")), None);
        let mut out = [0u8; 2048];
        assert_eq!(pop(&mut q, &mem, V1, &mut out), None);
        vq.avail().idx().store(2);
        assert_eq!(q.pending(&q.view(&mem).expect("view")), Some(2));
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
        let mut q = ring(&vq);
        let small = frame(60);
        push(&mut q, &mem, V1, &small).expect("fits one buffer");
        assert_eq!(used(&vq, 0), (0, 72));
        let mut got = vec![0u8; 72];
        mem.read_slice(&mut got, GuestAddress(0x20_0000))
            .expect("read");
        assert_eq!(&got[10..12], &1u16.to_le_bytes(), "num_buffers");
        assert_eq!(&got[12..], &small[..]);
        // 1500 bytes span two 1024-byte buffers: num_buffers 2, lengths 1024 + 488.
        let big = frame(1500);
        push(&mut q, &mem, V1, &big).expect("two buffers");
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
        assert_eq!(push(&mut q, &mem, V1, &big), Err(DropReason::TxFull));
        assert_eq!(vq.used().idx().load(), 3);
        push(&mut q, &mem, V1, &small).expect("the last buffer still serves");
        assert_eq!(vq.used().idx().load(), 4);
        assert_eq!(push(&mut q, &mem, V1, &small), Err(DropReason::TxFull));
    }

    #[test]
    fn every_write_into_guest_memory_is_logged_while_a_log_is_given() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        post_rx(&vq, 4, 1024);
        let mut q = ring(&vq);
        let log = DirtyLog::for_tests(0x40_0000 / 4096 / 8);
        let v = q.view(&mem).expect("view").logged(Some(&log));
        // 1500 bytes over two mergeable buffers (pages 0x200 and 0x201), num_buffers
        // patched into the first after both were written.
        q.push_frame(&v, V1, &frame(1500), &[0; VIRTIO_HDR])
            .expect("two buffers");
        q.flush(&v);
        for page in [0x200, 0x201] {
            assert!(log.is_marked(page * 4096), "buffer page {page:#x}");
        }
        assert!(!log.is_marked(0x202 * 4096), "a buffer not written");
        assert!(log.is_marked(vq.used_addr().0), "the used ring");
        // Without a log, nothing changes in it.
        let v = q.view(&mem).expect("view");
        q.push_frame(&v, V1, &frame(60), &[0; VIRTIO_HDR])
            .expect("one buffer");
        assert!(!log.is_marked(0x202 * 4096));
    }

    #[test]
    fn without_mergeable_buffers_a_short_chain_is_returned_empty() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, 16);
        post_rx(&vq, 2, 1024);
        let mut q = ring(&vq);
        let legacy = Layout {
            hdr_len: 10,
            mergeable: false,
            ..V1
        };
        assert_eq!(
            push(&mut q, &mem, legacy, &frame(1500)),
            Err(DropReason::GuestBadChain)
        );
        assert_eq!(used(&vq, 0), (0, 0));
        push(&mut q, &mem, legacy, &frame(100)).expect("fits");
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
        let mut q = ring(&vq);
        let f = frame(60);
        assert_eq!(
            push(&mut q, &mem, V1, &f),
            Err(DropReason::GuestBadDescriptor)
        );
        assert_eq!(
            push(&mut q, &mem, V1, &f),
            Err(DropReason::GuestBadDescriptor)
        );
        assert_eq!(push(&mut q, &mem, V1, &f), Err(DropReason::GuestBadChain));
        push(&mut q, &mem, V1, &f).expect("a good buffer after the bad ones");
        assert_eq!(vq.used().idx().load(), 4);
        assert_eq!(used(&vq, 3), (4, 72));
    }
}
