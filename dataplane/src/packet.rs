//! Packet buffers and the pool they come from.
//!
//! A [`Packet`] owns one buffer taken from a [`Pool`] that is filled at start-up; freeing a
//! packet puts its buffer back on the pool's free list, so steady-state forwarding
//! allocates nothing. The frame starts [`HEADROOM`] bytes into the buffer, which leaves room
//! to push a VLAN tag or a tunnel header in place.
//!
//! Buffers come in two classes: [`BUF_SIZE`] (2 KB, every frame up to an MTU of 1902) and
//! [`JUMBO_BUF_SIZE`] (10 KB, jumbo frames up to an MTU of [`MAX_JUMBO_MTU`]). A pool
//! holds jumbo buffers only when a port needs them; a port whose MTU needs them receives
//! into them (a veth port only for frames that need them), every other port into small
//! ones, so 64-byte frames only ever touch small buffers. (One
//! 10 KB class for everything measured 2-3% slower on 64-byte frames and five times the
//! memory. The handle now holds a boxed slice, its length telling the class: 1-4% on the
//! switch, within the noise of most runs; a one-word handle with the class in the
//! pointer's low bit cost 9%, the masking on every access more than the word saved.)

use crate::batch::Batch;
use crate::ids::PortId;

/// Size of a packet buffer in bytes.
pub const BUF_SIZE: usize = 2048;
/// Size of a jumbo packet buffer in bytes.
pub const JUMBO_BUF_SIZE: usize = 10240;
/// Size of a buffer for a super-frame (a TCP or UDP segment of up to 64 KB that a host's
/// kernel left to be cut into frames, see [`Offload`]).
pub const SUPER_BUF_SIZE: usize = 65536;
/// The largest super-frame a buffer holds when it starts at the default headroom.
pub const MAX_SUPER_FRAME: usize = SUPER_BUF_SIZE - HEADROOM;
/// Bytes kept free in front of a received frame for pushing headers (VLAN tags, tunnels).
pub const HEADROOM: usize = 128;
/// The largest frame a buffer holds when it starts at the default headroom.
pub const MAX_FRAME: usize = BUF_SIZE - HEADROOM;
/// The largest frame a jumbo buffer holds when it starts at the default headroom.
pub const MAX_JUMBO_FRAME: usize = JUMBO_BUF_SIZE - HEADROOM;
/// The largest MTU a port may have: its frames (with an Ethernet header and a VLAN tag) fit
/// a jumbo buffer.
pub const MAX_JUMBO_MTU: usize = 9216;
const _: () = assert!(MAX_JUMBO_MTU + 18 <= MAX_JUMBO_FRAME);

/// Per-packet metadata that travels with the buffer through the graph.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The port the packet was received on.
    pub rx_port: PortId,
    /// The packet's number in a running trace, or 0 if it is not traced. Copies inherit it.
    pub trace: u32,
    /// Where the frame's headers are, as the first node to parse it found them, so the next
    /// need not parse again. Copies inherit it; receiving and every change of the frame's
    /// extent ([`Packet::set_len`], [`Packet::push_front`], ...) clear it.
    pub offsets: Offsets,
    /// Nodes the packet has entered in this graph run since the run started counting (once
    /// it has made more node calls than the graph has wire ends, see `graph`'s module doc):
    /// the graph then adds one as it hands the packet to a node and drops it as
    /// [`DropReason::HopLimit`](crate::DropReason::HopLimit) past [`HOP_LIMIT`]. Receiving
    /// sets it to 0; copies inherit it, so a broadcast going round a loop of switches dies
    /// out however often it is flooded. (One byte that fits in the padding: the handle
    /// stays four words.)
    pub hops: u8,
    /// True if the frame left work to its receiver (a checksum to finish, segments to cut),
    /// described by the [`Offload`] record kept at the front of its buffer (see
    /// [`Packet::offload`]). The last byte of padding: the handle stays four words.
    pub offloaded: bool,
}

/// The most nodes a packet may enter in one graph run. A path through a loop-free topology
/// is far shorter (a chain of 32 functions is already unusual); a packet that needs more
/// is going round a loop.
pub const HOP_LIMIT: u8 = 32;

/// What the first parser of a frame found, carried so later nodes reuse it: four bytes the
/// dataplane only stores and clears. `functions::wire::classify` writes and reads them and
/// gives `kind` its meaning; 0 ([`Offsets::UNPARSED`]) means nobody has parsed the frame
/// since its layout last changed.
///
/// A node that rewrites headers in place without moving them (addresses, ports, TTL, with
/// their checksums kept right) leaves the record valid; one that moves or replaces them must
/// set it to [`Offsets::UNPARSED`] (the packet's own methods that move the frame do).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// Offset of the network header within `data()`.
    pub l3: u8,
    /// Offset of the transport header within `data()`.
    pub l4: u8,
    /// What was found (the parser's code); 0: not parsed.
    pub kind: u8,
    /// The transport protocol number (IPv4 protocol, IPv6 next header).
    pub proto: u8,
}

impl Offsets {
    /// Not parsed since the frame's layout last changed.
    pub const UNPARSED: Offsets = Offsets {
        l3: 0,
        l4: 0,
        kind: 0,
        proto: 0,
    };

    /// True if a parser has filled the record.
    #[inline]
    pub fn is_parsed(&self) -> bool {
        self.kind != 0
    }
}

/// What a frame left to its receiver, as the kernel's `virtio_net_hdr` describes it: a
/// transport checksum to finish (`needs_csum`: the field at `csum_start + csum_offset`
/// holds the pseudo-header's sum, and the sum over `[csum_start, end)` is to go there), and
/// for a super-frame (`gso` not [`Gso::None`]) the segments of `gso_size` payload bytes it
/// is to be cut into. Offsets are from the frame's first byte.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// The transport checksum is begun, not finished.
    pub needs_csum: bool,
    /// The kind of super-frame, or [`Gso::None`].
    pub gso: Gso,
    /// Where the transport header (the checksummed part) starts.
    pub csum_start: u16,
    /// Where its checksum field is, from `csum_start`.
    pub csum_offset: u16,
    /// Payload bytes per segment of a super-frame.
    pub gso_size: u16,
}

/// The kind of super-frame a frame is.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Gso {
    /// Not a super-frame.
    #[default]
    None = 0,
    /// TCP over IPv4 (`VIRTIO_NET_HDR_GSO_TCPV4`).
    Tcp4 = 1,
    /// TCP over IPv6 (`VIRTIO_NET_HDR_GSO_TCPV6`).
    Tcp6 = 4,
    /// UDP, each segment a datagram of its own (`VIRTIO_NET_HDR_GSO_UDP_L4`).
    Udp = 5,
}

impl Gso {
    /// The kind a `virtio_net_hdr`'s `gso_type` (without its ECN bit) names, which is also
    /// how a record stores it; `None` for a kind nfv cannot cut (legacy UFO, SCTP, ...).
    pub fn from_virtio(v: u8) -> Option<Gso> {
        match v {
            0 => Some(Gso::None),
            1 => Some(Gso::Tcp4),
            4 => Some(Gso::Tcp6),
            5 => Some(Gso::Udp),
            _ => None,
        }
    }
}

/// Bytes at the very front of every buffer that hold a packet's [`Offload`] record; the
/// frame never moves into them ([`Packet::push_front`] stops short).
pub const OFFLOAD_AREA: usize = 16;

/// The one place packet memory is handled raw: a buffer is one pointer, its size class in
/// the pointer's two low bits, so that a packet handle is three words and moves cheaply
/// (a boxed slice, pointer and length, made it four: 4-5% of the 64-byte switch).
#[allow(unsafe_code)]
mod buffer {
    use std::alloc::Layout;
    use std::ptr::NonNull;

    use super::{BUF_SIZE, JUMBO_BUF_SIZE, SUPER_BUF_SIZE};

    /// The sizes, by class (the pointer's low two bits); 3 is never made.
    const SIZES: [usize; 4] = [BUF_SIZE, JUMBO_BUF_SIZE, SUPER_BUF_SIZE, BUF_SIZE];
    /// Buffers are cache-line aligned, which leaves the low bits free.
    const ALIGN: usize = 64;

    /// One zeroed buffer of one of the three sizes, owned alone by its handle, freed with it.
    pub struct Buf(NonNull<u8>);

    // SAFETY: a `Buf` owns its allocation alone, as a `Box<[u8]>` does.
    unsafe impl Send for Buf {}
    // SAFETY: shared access only reads, as through a `&Box<[u8]>`.
    unsafe impl Sync for Buf {}

    impl Buf {
        /// A zeroed buffer of `size` bytes (one of the three sizes; any other panics: only
        /// the pool and tests make buffers).
        pub fn new(size: usize) -> Buf {
            let class = match size {
                BUF_SIZE => 0,
                JUMBO_BUF_SIZE => 1,
                SUPER_BUF_SIZE => 2,
                _ => panic!("no buffer class of {size} bytes"),
            };
            let layout = Layout::from_size_align(size, ALIGN).expect("a valid layout");
            // SAFETY: the layout's size is not zero.
            let p = unsafe { std::alloc::alloc_zeroed(layout) };
            let Some(p) = NonNull::new(p) else {
                std::alloc::handle_alloc_error(layout)
            };
            Buf(p.map_addr(|a| a | class))
        }

        #[inline(always)]
        fn ptr(&self) -> *mut u8 {
            self.0.as_ptr().map_addr(|a| a & !(ALIGN - 1))
        }

        /// Its size in bytes.
        #[inline(always)]
        pub fn len(&self) -> usize {
            SIZES[self.0.as_ptr().addr() & 3]
        }

        /// All its bytes.
        #[inline(always)]
        pub fn bytes(&self) -> &[u8] {
            // SAFETY: `ptr` is the start of an allocation of `len` bytes that this handle
            // owns; the borrow of `self` keeps it alive and unwritten.
            unsafe { std::slice::from_raw_parts(self.ptr(), self.len()) }
        }

        /// All its bytes, writable.
        #[inline(always)]
        pub fn bytes_mut(&mut self) -> &mut [u8] {
            // SAFETY: as for `bytes`; `&mut self` makes this the only reference.
            unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len()) }
        }

        /// Bytes `[off, off + len)`, unchecked: the caller (`Packet`) keeps
        /// `off + len <= self.len()`, checked in debug builds.
        #[inline(always)]
        pub fn window(&self, off: usize, len: usize) -> &[u8] {
            debug_assert!(off + len <= self.len());
            // SAFETY: inside the allocation by the caller's invariant; alive and unwritten
            // while `self` is borrowed.
            unsafe { std::slice::from_raw_parts(self.ptr().add(off), len) }
        }

        /// The same, writable.
        #[inline(always)]
        pub fn window_mut(&mut self, off: usize, len: usize) -> &mut [u8] {
            debug_assert!(off + len <= self.len());
            // SAFETY: as for `window`; `&mut self` makes this the only reference.
            unsafe { std::slice::from_raw_parts_mut(self.ptr().add(off), len) }
        }
    }

    impl Drop for Buf {
        fn drop(&mut self) {
            let layout = Layout::from_size_align(self.len(), ALIGN).expect("a valid layout");
            // SAFETY: allocated in `new` with this layout (the class gives the size back),
            // and freed only here, once.
            unsafe { std::alloc::dealloc(self.ptr(), layout) }
        }
    }
}

/// One frame in a pool buffer. Its bytes are `data()`, a window `[off, off+len)` of the buffer.
pub struct Packet {
    /// [`BUF_SIZE`], [`JUMBO_BUF_SIZE`] or [`SUPER_BUF_SIZE`] bytes. Invariant, kept by
    /// every method here: `off + len <= buf.len()`.
    buf: buffer::Buf,
    off: u16,
    len: u16,
    /// Metadata set by the receiving port and read by nodes.
    pub meta: Meta,
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("off", &self.off)
            .field("len", &self.len)
            .field("meta", &self.meta)
            .finish()
    }
}

impl Packet {
    /// A packet with a freshly allocated buffer of `size` bytes. Only the pool (at start-up)
    /// and tests call this.
    fn new_buffer(size: usize) -> Self {
        Packet {
            buf: buffer::Buf::new(size),
            off: HEADROOM as u16,
            len: 0,
            meta: Meta::default(),
        }
    }

    /// A packet holding a copy of `frame`, with a buffer of its own (allocates: for tests and
    /// slow paths outside the worker). Returns `None` if the frame does not fit.
    pub fn from_bytes(frame: &[u8]) -> Option<Self> {
        let size = if frame.len() <= MAX_FRAME {
            BUF_SIZE
        } else if frame.len() <= MAX_JUMBO_FRAME {
            JUMBO_BUF_SIZE
        } else {
            SUPER_BUF_SIZE
        };
        let mut p = Packet::new_buffer(size);
        p.set_frame(frame).then_some(p)
    }

    /// True if the buffer is a jumbo one.
    #[inline]
    pub fn is_jumbo(&self) -> bool {
        self.buf.len() > BUF_SIZE && self.buf.len() <= JUMBO_BUF_SIZE
    }

    /// Empty the packet and reset its headroom and metadata.
    #[inline]
    pub fn reset(&mut self) {
        self.off = HEADROOM as u16;
        self.len = 0;
        self.meta = Meta::default();
    }

    /// True if the buffer is a super-frame one.
    #[inline]
    pub fn is_super(&self) -> bool {
        self.buf.len() > JUMBO_BUF_SIZE
    }

    /// What the frame left to its receiver, if anything.
    #[inline]
    pub fn offload(&self) -> Option<Offload> {
        if !self.meta.offloaded {
            return None;
        }
        let b = &self.buf.bytes()[..8];
        Some(Offload {
            needs_csum: b[0] & 1 != 0,
            gso: Gso::from_virtio(b[1]).unwrap_or_default(),
            csum_start: u16::from_ne_bytes([b[2], b[3]]),
            csum_offset: u16::from_ne_bytes([b[4], b[5]]),
            gso_size: u16::from_ne_bytes([b[6], b[7]]),
        })
    }

    /// Record what the frame leaves to its receiver (`None`: nothing, a whole frame with
    /// its checksums).
    #[inline]
    pub fn set_offload(&mut self, o: Option<Offload>) {
        match o {
            Some(o) if o.needs_csum || o.gso != Gso::None => {
                let b = &mut self.buf.bytes_mut()[..8];
                b[0] = u8::from(o.needs_csum);
                b[1] = o.gso as u8;
                b[2..4].copy_from_slice(&o.csum_start.to_ne_bytes());
                b[4..6].copy_from_slice(&o.csum_offset.to_ne_bytes());
                b[6..8].copy_from_slice(&o.gso_size.to_ne_bytes());
                self.meta.offloaded = true;
            }
            _ => self.meta.offloaded = false,
        }
    }

    /// Move the offload record's `csum_start` by `by` bytes (the frame grew or shrank at
    /// the front); a record left pointing before the frame is dropped.
    #[cold]
    fn shift_csum_start(&mut self, by: isize) {
        let b = self.buf.bytes_mut();
        let at = u16::from_ne_bytes([b[2], b[3]]) as isize + by;
        match u16::try_from(at) {
            Ok(v) => b[2..4].copy_from_slice(&v.to_ne_bytes()),
            Err(_) => self.meta.offloaded = false,
        }
    }

    /// The length of the longest frame this one stands for on a wire: its own, or for a
    /// super-frame that of its first segment (its headers, through the transport header at
    /// `csum_start`, plus `gso_size`).
    #[inline]
    pub fn wire_len(&self) -> usize {
        match self.offload() {
            Some(o) if o.gso != Gso::None => {
                let l4 = o.csum_start as usize;
                let th = match o.gso {
                    Gso::Udp => 8,
                    _ => self
                        .data()
                        .get(l4 + 12)
                        .map_or(20, |b| usize::from(b >> 4) * 4),
                };
                (l4 + th + o.gso_size as usize).min(self.len())
            }
            _ => self.len(),
        }
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buf.window(self.off as usize, self.len as usize)
    }

    /// The frame's bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buf.window_mut(self.off as usize, self.len as usize)
    }

    /// Length of the frame in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True if the frame has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes free in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.off as usize
    }

    /// The whole writable area from the frame's start to the end of the buffer; a port reads a
    /// frame into it and then calls [`set_len`](Self::set_len).
    #[inline]
    pub fn room_mut(&mut self) -> &mut [u8] {
        let (off, size) = (self.off as usize, self.buf.len());
        self.buf.window_mut(off, size - off)
    }

    /// Set the frame's length; false (and no change) if it would run past the buffer.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if self.off as usize + len > self.buf.len() {
            return false;
        }
        self.len = len as u16;
        self.meta.offsets = Offsets::UNPARSED;
        true
    }

    /// Replace the frame with a copy of `frame`; false (and no change) if it does not fit.
    pub fn set_frame(&mut self, frame: &[u8]) -> bool {
        let off = self.off as usize;
        if off + frame.len() > self.buf.len() {
            return false;
        }
        self.buf.bytes_mut()[off..off + frame.len()].copy_from_slice(frame);
        self.len = frame.len() as u16;
        self.meta.offsets = Offsets::UNPARSED;
        true
    }

    /// Grow the frame by `n` bytes at the front (into the headroom) and return the frame.
    /// `None` (and no change) if there is not enough headroom.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n + OFFLOAD_AREA > self.off as usize {
            return None;
        }
        self.off -= n as u16;
        self.len += n as u16;
        if self.meta.offloaded {
            // The headers moved back with the frame's start: so did the checksummed part.
            self.shift_csum_start(n as isize);
        }
        self.meta.offsets = Offsets::UNPARSED;
        Some(self.data_mut())
    }

    /// Remove `n` bytes from the front of the frame; false (and no change) if it is shorter.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.off += n as u16;
        self.len -= n as u16;
        if self.meta.offloaded {
            self.shift_csum_start(-(n as isize));
        }
        self.meta.offsets = Offsets::UNPARSED;
        true
    }

    /// Make `self` a copy of `other` (frame bytes, headroom and metadata); false (and no
    /// change) if `other`'s frame does not fit `self`'s buffer.
    #[inline]
    #[must_use]
    pub fn copy_from(&mut self, other: &Packet) -> bool {
        if other.off as usize + other.len as usize > self.buf.len() {
            return false;
        }
        self.off = other.off;
        self.len = other.len;
        self.meta = other.meta;
        let (a, b) = (other.off as usize, other.off as usize + other.len as usize);
        self.buf.bytes_mut()[a..b].copy_from_slice(&other.buf.bytes()[a..b]);
        if other.meta.offloaded {
            self.buf.bytes_mut()[..8].copy_from_slice(&other.buf.bytes()[..8]);
        }
        true
    }
}

/// An empty packet off free list `list`, or `None` (counted in `exhausted`) if it is empty.
#[inline]
fn take(list: &mut Vec<Packet>, exhausted: &mut u64) -> Option<Packet> {
    match list.pop() {
        Some(mut p) => {
            p.reset();
            Some(p)
        }
        None => {
            *exhausted += 1;
            None
        }
    }
}

/// Back the buffers of `list` (allocated one after the other, so mostly side by side) with
/// huge pages where the kernel can: a burst touches 64 buffers, which on 4 KiB pages is
/// up to 64 TLB entries, on 2 MiB pages one or two.
fn huge_pages(list: &[Packet]) {
    let lo = list.iter().map(|p| p.buf.bytes().as_ptr() as usize).min();
    let hi = list
        .iter()
        .map(|p| p.buf.bytes().as_ptr() as usize + p.buf.len())
        .max();
    if let (Some(lo), Some(hi)) = (lo, hi) {
        // Only a range the buffers mostly fill: other allocations may sit between them.
        if hi - lo <= list.len() * (list[0].buf.len() + 64) {
            crate::sys::collapse_huge_pages(lo, hi);
        }
    }
}

/// A fixed set of packet buffers, allocated when the pool is made (jumbo ones also when
/// [`reserve_jumbo`](Pool::reserve_jumbo) asks for more).
///
/// `alloc` and `free` move buffers between the free lists and packets; neither allocates.
/// A pool belongs to one worker and is never shared.
pub struct Pool {
    free: Vec<Packet>,
    jumbo: Vec<Packet>,
    supers: Vec<Packet>,
    size: usize,
    /// Allocations that failed because the pool was empty.
    pub exhausted: u64,
}

impl Pool {
    /// A pool of `size` buffers of [`BUF_SIZE`] bytes, all allocated now, and no jumbo ones.
    pub fn new(size: usize) -> Self {
        let mut free = Vec::with_capacity(size);
        free.extend((0..size).map(|_| Packet::new_buffer(BUF_SIZE)));
        huge_pages(&free);
        Pool {
            free,
            jumbo: Vec::new(),
            supers: Vec::new(),
            size,
            exhausted: 0,
        }
    }

    /// Grow the pool to hold at least `n` jumbo buffers, allocating them now (at start-up or
    /// when a reload adds a port that needs them; never on the packet path).
    pub fn reserve_jumbo(&mut self, n: usize) {
        let have = self.jumbo.capacity();
        if n > have {
            let mut list = Vec::with_capacity(n);
            list.append(&mut self.jumbo);
            list.extend((have..n).map(|_| Packet::new_buffer(JUMBO_BUF_SIZE)));
            self.jumbo = list;
        }
    }

    /// Grow the pool to hold at least `n` super-frame buffers (as
    /// [`reserve_jumbo`](Pool::reserve_jumbo) does for jumbo ones). Their pages are only
    /// touched when a super-frame first lands in them.
    pub fn reserve_super(&mut self, n: usize) {
        let have = self.supers.capacity();
        if n > have {
            let mut list = Vec::with_capacity(n);
            list.append(&mut self.supers);
            list.extend((have..n).map(|_| Packet::new_buffer(SUPER_BUF_SIZE)));
            self.supers = list;
        }
    }

    /// Take an empty packet whose buffer holds a frame of `max_frame` bytes: a small one if
    /// that fits, else a jumbo one, else a super-frame one; `None` if there is none left.
    /// A frame for a jumbo buffer takes a super-frame one when no jumbo buffer is free: a
    /// super-frame of a few segments from a host on a 1500-byte port, where the pool has no
    /// jumbo buffers at all.
    #[inline]
    pub fn alloc_for(&mut self, max_frame: usize) -> Option<Packet> {
        if max_frame <= MAX_FRAME {
            return self.alloc();
        }
        if max_frame <= MAX_JUMBO_FRAME && !self.jumbo.is_empty() {
            return take(&mut self.jumbo, &mut self.exhausted);
        }
        take(&mut self.supers, &mut self.exhausted)
    }

    /// Take an empty packet, or `None` if every buffer is in use.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        take(&mut self.free, &mut self.exhausted)
    }

    /// Move up to `n` empty packets onto the end of `batch` at once (fewer if the pool or the
    /// batch runs out: each packet short is counted in `exhausted`); returns how many.
    #[inline]
    pub fn alloc_into(&mut self, batch: &mut Batch, n: usize) -> usize {
        let n = n.min(batch.room());
        let got = n.min(self.free.len());
        self.exhausted += (n - got) as u64;
        let start = batch.len();
        batch.take_from(&mut self.free, got);
        for p in batch.tail_mut(start) {
            p.reset();
        }
        got
    }

    /// Take a packet holding a copy of `other` (in a buffer of its class), or `None` if the
    /// pool has no such buffer.
    #[inline]
    pub fn clone_packet(&mut self, other: &Packet) -> Option<Packet> {
        let need = (other.off as usize + other.len as usize).saturating_sub(HEADROOM);
        let mut p = self.alloc_for(need)?;
        if p.copy_from(other) {
            Some(p)
        } else {
            // A frame moved so far back into its headroom that it no longer fits.
            self.free(p);
            None
        }
    }

    /// Give a packet's buffer back, to the free list of its class. A buffer from elsewhere
    /// (a test's ring handle) that would overfill the pool is released instead, so the free
    /// lists never grow.
    #[inline]
    pub fn free(&mut self, p: Packet) {
        let list = if p.is_super() {
            &mut self.supers
        } else if p.is_jumbo() {
            &mut self.jumbo
        } else {
            &mut self.free
        };
        if list.len() < list.capacity() {
            list.push(p);
        }
    }

    /// Give back the buffers of every packet in `batch`, leaving it empty.
    #[inline]
    pub fn free_batch(&mut self, batch: &mut Batch) {
        if self.jumbo.capacity() > 0 || self.supers.capacity() > 0 {
            // Bigger buffers are about: sort each back to its list.
            for p in batch.drain() {
                self.free(p);
            }
        } else if batch.len() <= self.free.capacity() - self.free.len() {
            batch.give_to(&mut self.free);
        } else {
            for p in batch.drain() {
                self.free(p);
            }
        }
    }

    /// Buffers free now.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Jumbo buffers free now.
    pub fn jumbo_available(&self) -> usize {
        self.jumbo.len()
    }

    /// Super-frame buffers free now.
    pub fn super_available(&self) -> usize {
        self.supers.len()
    }

    /// Buffers the pool was made with.
    pub fn size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets move by value through every queue: the handle is three words (the
    /// buffer's pointer, its window, its metadata).
    #[test]
    fn a_packet_handle_is_three_words() {
        assert_eq!(std::mem::size_of::<Packet>(), 24);
        assert_eq!(std::mem::size_of::<Option<Packet>>(), 24);
    }

    /// The carried offsets cost the metadata no more than 8 bytes.
    #[test]
    fn metadata_stays_small() {
        assert!(std::mem::size_of::<Meta>() <= 16);
        // The hop count lives in what was padding.
        assert_eq!(std::mem::size_of::<Meta>(), 12);
        assert_eq!(std::mem::size_of::<Offsets>(), 4);
    }

    /// Every change of the frame's extent forgets where its headers were; a copy keeps it.
    #[test]
    fn moving_the_frame_clears_the_offsets() {
        let parsed = Offsets {
            l3: 14,
            l4: 34,
            kind: 1,
            proto: 17,
        };
        let mut p = Packet::from_bytes(&[0; 60]).expect("fits");
        let changes: [fn(&mut Packet); 4] = [
            |p| assert!(p.push_front(4).is_some()),
            |p| assert!(p.pull_front(4)),
            |p| assert!(p.set_len(50)),
            |p| assert!(p.set_frame(&[1; 40])),
        ];
        for change in changes {
            p.meta.offsets = parsed;
            let mut copy = Packet::from_bytes(&[]).expect("fits");
            assert!(copy.copy_from(&p));
            assert_eq!(copy.meta.offsets, parsed);
            change(&mut p);
            assert_eq!(p.meta.offsets, Offsets::UNPARSED);
            assert!(!p.meta.offsets.is_parsed());
        }
    }

    #[test]
    fn alloc_free_round_trip() {
        let mut pool = Pool::new(4);
        let a = pool.alloc().expect("buffer");
        let b = pool.alloc().expect("buffer");
        assert_eq!(pool.available(), 2);
        pool.free(a);
        pool.free(b);
        assert_eq!(pool.available(), 4);
        let v: Vec<_> = (0..4).filter_map(|_| pool.alloc()).collect();
        assert_eq!(v.len(), 4);
        assert!(pool.alloc().is_none());
        assert_eq!(pool.exhausted, 1);
        for p in v {
            pool.free(p);
        }
        // A foreign buffer beyond the pool's size is released, not kept.
        pool.free(Packet::from_bytes(&[1, 2, 3]).expect("fits"));
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn a_burst_is_taken_and_given_back_whole() {
        let mut pool = Pool::new(8);
        let mut b = Batch::new();
        // A packet left over from before: the burst goes after it.
        let mut first = pool.alloc().expect("buffer");
        assert!(first.set_frame(&[7; 20]));
        assert!(b.push(first).is_ok());
        let mut used = pool.alloc().expect("buffer");
        assert!(used.set_frame(&[1; 60]));
        used.meta.rx_port = PortId(2);
        pool.free(used);
        assert_eq!(pool.alloc_into(&mut b, 5), 5);
        assert_eq!(b.len(), 6);
        assert_eq!(pool.available(), 2);
        assert_eq!(b.iter().next().map(Packet::len), Some(20));
        for p in b.tail_mut(1) {
            assert_eq!(
                (p.len(), p.headroom(), p.meta),
                (0, HEADROOM, Meta::default())
            );
        }
        // Asking for more than is free takes what there is and counts the rest.
        assert_eq!(pool.alloc_into(&mut b, 5), 2);
        assert_eq!((b.len(), pool.available(), pool.exhausted), (8, 0, 3));
        pool.free_batch(&mut b);
        assert!(b.is_empty());
        assert_eq!(pool.available(), 8);
        // Never more than a batch holds.
        let mut full = Batch::new();
        let mut big = Pool::new(2 * crate::batch::BURST);
        assert_eq!(
            big.alloc_into(&mut full, 2 * crate::batch::BURST),
            crate::batch::BURST
        );
        assert!(full.is_full());
        assert_eq!(big.exhausted, 0);
        big.free_batch(&mut full);
        assert_eq!(big.available(), 2 * crate::batch::BURST);
    }

    /// Jumbo buffers are a class of their own: taken only for frames that need them, given
    /// back to their own list, copied into their own class.
    #[test]
    fn jumbo_buffers_are_a_class_of_their_own() {
        let mut pool = Pool::new(4);
        assert!(
            pool.alloc_for(MAX_FRAME + 1).is_none(),
            "no jumbo buffers yet"
        );
        assert_eq!(pool.exhausted, 1);
        pool.reserve_jumbo(2);
        pool.reserve_jumbo(1);
        assert_eq!(pool.jumbo_available(), 2);
        let small = pool.alloc_for(MAX_FRAME).expect("small");
        assert!(!small.is_jumbo());
        let mut big = pool.alloc_for(MAX_JUMBO_FRAME).expect("jumbo");
        assert!(big.is_jumbo());
        assert_eq!(big.room_mut().len(), MAX_JUMBO_FRAME);
        assert!(big.set_len(9018));
        assert!(!big.set_len(MAX_JUMBO_FRAME + 1));
        big.data_mut()[9000] = 7;
        let copy = pool.clone_packet(&big).expect("a second jumbo buffer");
        assert!(copy.is_jumbo());
        assert_eq!((copy.len(), copy.data()[9000]), (9018, 7));
        assert!(
            pool.clone_packet(&big).is_none(),
            "both jumbo buffers in use"
        );
        // A small packet cannot take a jumbo frame.
        let mut small2 = pool.alloc().expect("small");
        assert!(!small2.copy_from(&big));
        assert_eq!(small2.len(), 0);
        let mut b = Batch::new();
        for p in [small, big, copy, small2] {
            assert!(b.push(p).is_ok());
        }
        pool.free_batch(&mut b);
        assert_eq!((pool.available(), pool.jumbo_available()), (4, 2));
        // A small frame never takes a jumbo buffer, whatever is free.
        let v: Vec<_> = (0..4).filter_map(|_| pool.alloc()).collect();
        assert!(v.iter().all(|p| !p.is_jumbo()) && pool.alloc().is_none());
        assert!(Packet::from_bytes(&[0; 9018]).is_some_and(|p| p.is_jumbo()));
        assert!(Packet::from_bytes(&[0; MAX_JUMBO_FRAME + 1]).is_some_and(|p| p.is_super()));
        assert!(Packet::from_bytes(&vec![0; MAX_SUPER_FRAME + 1]).is_none());
    }

    /// Without a free jumbo buffer (a pool with none: no port has a jumbo MTU), a frame a
    /// little too big for a small buffer, such as a host's super-frame of two segments,
    /// takes a super-frame buffer; with one free, it takes that.
    #[test]
    fn a_frame_for_a_jumbo_buffer_takes_a_super_one_when_there_is_none() {
        let mut pool = Pool::new(2);
        pool.reserve_super(1);
        let two = pool.alloc_for(2 * 1514).expect("a super-frame buffer");
        assert!(two.is_super());
        assert!(pool.alloc_for(2 * 1514).is_none(), "none of either left");
        assert_eq!(pool.exhausted, 1);
        pool.free(two);
        pool.reserve_jumbo(1);
        let j = pool.alloc_for(2 * 1514).expect("a jumbo buffer");
        assert!(j.is_jumbo());
        assert_eq!((pool.super_available(), pool.jumbo_available()), (1, 0));
    }

    /// A super-frame buffer is a third class, reserved apart; an offload record travels
    /// with copies, and the frame never grows into the bytes that keep it.
    #[test]
    fn super_frames_and_their_records() {
        let mut pool = Pool::new(2);
        pool.reserve_super(1);
        assert_eq!(pool.super_available(), 1);
        let mut big = pool.alloc_for(MAX_JUMBO_FRAME + 1).expect("a super buffer");
        assert!(big.is_super() && !big.is_jumbo());
        assert!(big.set_len(60_000));
        let o = Offload {
            needs_csum: true,
            gso: Gso::Tcp4,
            csum_start: 34,
            csum_offset: 16,
            gso_size: 1448,
        };
        big.set_offload(Some(o));
        assert!(pool.alloc_for(MAX_JUMBO_FRAME + 1).is_none(), "only one");
        let mut copy = Packet::from_bytes(&vec![0; MAX_JUMBO_FRAME + 1]).expect("fits");
        assert!(copy.copy_from(&big));
        assert_eq!(copy.offload(), Some(o));
        assert!(big.push_front(HEADROOM - OFFLOAD_AREA).is_some());
        assert!(
            big.push_front(1).is_none(),
            "the record's bytes stay its own"
        );
        // The headers moved with the frame's start, and the record with them.
        let moved = (HEADROOM - OFFLOAD_AREA) as u16;
        assert_eq!(
            big.offload().map(|r| r.csum_start),
            Some(o.csum_start + moved)
        );
        assert!(big.pull_front(usize::from(moved)));
        assert_eq!(big.offload(), Some(o));
        big.set_offload(None);
        assert_eq!(big.offload(), None);
        // A record with nothing to do is no record.
        big.set_offload(Some(Offload::default()));
        assert!(!big.meta.offloaded);
        pool.free(big);
        assert_eq!((pool.super_available(), pool.available()), (1, 2));
    }

    #[test]
    fn headroom_push_and_pull() {
        let mut p = Packet::from_bytes(&[1, 2, 3, 4]).expect("fits");
        assert_eq!(p.headroom(), HEADROOM);
        let front = p.push_front(2).expect("headroom");
        front[0] = 9;
        front[1] = 8;
        assert_eq!(p.data(), &[9, 8, 1, 2, 3, 4]);
        assert!(p.pull_front(3));
        assert_eq!(p.data(), &[2, 3, 4]);
        assert!(!p.pull_front(4));
        assert!(p.push_front(HEADROOM + 10).is_none());
    }

    #[test]
    fn bounds_are_checked() {
        let mut p = Packet::from_bytes(&[]).expect("fits");
        assert!(p.set_len(MAX_FRAME));
        assert!(!p.set_len(MAX_FRAME + 1));
        assert_eq!(p.room_mut().len(), MAX_FRAME);
        // A longer frame takes a jumbo buffer, and nothing takes more than that holds.
        assert!(Packet::from_bytes(&vec![0u8; MAX_FRAME + 1]).is_some_and(|p| p.is_jumbo()));
        assert!(Packet::from_bytes(&vec![0u8; MAX_SUPER_FRAME + 1]).is_none());
    }

    #[test]
    fn reset_clears_metadata_and_reused_buffers_start_clean() {
        let mut pool = Pool::new(1);
        let mut p = pool.alloc().expect("buffer");
        assert!(p.set_frame(&[1; 60]));
        p.meta.rx_port = PortId(3);
        assert!(p.pull_front(10));
        pool.free(p);
        let p = pool.alloc().expect("buffer");
        assert_eq!(p.len(), 0);
        assert_eq!(p.headroom(), HEADROOM);
        assert_eq!(p.meta, Meta::default());
    }
}
