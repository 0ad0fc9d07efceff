#![allow(unsafe_code)]
//! `AF_PACKET` sockets with `TPACKET_V2` rings mapped into nfv's memory: frames arrive in
//! the receive ring without a system call, and a burst leaves through the transmit ring with
//! one `sendto`.
//!
//! Each ring is an array of fixed-size slots. A slot starts with a `tpacket2_hdr` whose
//! `tp_status` word says who owns it: the kernel hands a received frame over by setting
//! `TP_STATUS_USER` (after writing the frame), and nfv hands it back by writing
//! `TP_STATUS_KERNEL`; nfv hands a frame to send over by writing `TP_STATUS_SEND_REQUEST`
//! (after writing the frame), and the kernel gives the slot back as `TP_STATUS_AVAILABLE`.
//! Those status words are the only memory both sides write; they are read and written as
//! atomics with acquire and release ordering. Everything the kernel wrote (offsets,
//! lengths) is checked against the slot before it is used: a value that points outside
//! the slot is counted and dropped, never followed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

const TPACKET_V2: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_LOSS: libc::c_int = 14;
const PACKET_TX_RING: libc::c_int = 13;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_COPY_THRESH: libc::c_int = 7;
const PACKET_VNET_HDR: libc::c_int = 15;

/// Length of the `virtio_net_hdr` a socket with `PACKET_VNET_HDR` puts in front of each
/// frame (received) and expects there (sent).
pub const VNET_HDR: usize = 10;
/// Receive buffer for frames too big for a slot, which wait on the socket's queue (4 MiB:
/// 64 super-frames).
const BIG_QUEUE: libc::c_int = 4 << 20;

/// `tp_status` values.
pub const TP_STATUS_KERNEL: u32 = 0;
pub const TP_STATUS_USER: u32 = 1;
pub const TP_STATUS_COPY: u32 = 2;
pub const TP_STATUS_VLAN_VALID: u32 = 0x10;
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 0x40;
pub const TP_STATUS_AVAILABLE: u32 = 0;
pub const TP_STATUS_SEND_REQUEST: u32 = 1;
pub const TP_STATUS_WRONG_FORMAT: u32 = 4;

/// Size of a slot for frames that fit a small packet buffer (an MTU up to 1902, its tag
/// and the kernel's header).
pub const SLOT: usize = 2048;
/// Slots per ring of such slots: 2,048 (4 MiB), room for about a millisecond of traffic at
/// full rate.
pub const SLOTS: usize = 2048;
/// What a slot holds beside the frame: the kernel's header and the alignment in front of
/// a received frame (its `tp_mac` is under 100).
const SLOT_OVERHEAD: usize = 128;
/// The least number of slots a ring of jumbo slots has.
const MIN_SLOTS: usize = 256;

/// The shape of a ring: `slots` slots of `slot` bytes, in blocks of `block` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub slot: usize,
    pub slots: usize,
    block: usize,
}

impl Geometry {
    /// A ring whose slots hold a frame of `max_frame` bytes: 2,048 slots of [`SLOT`] bytes
    /// when they do, else slots of whole pages, at least [`MIN_SLOTS`] of them and about as
    /// many bytes as the small ring.
    pub fn for_frame(max_frame: usize) -> Geometry {
        let need = max_frame + SLOT_OVERHEAD;
        if need <= SLOT {
            return Geometry {
                slot: SLOT,
                slots: SLOTS,
                block: 64 << 10,
            };
        }
        let slot = need.next_multiple_of(4096);
        Geometry {
            slot,
            slots: (SLOT * SLOTS / slot).max(MIN_SLOTS),
            block: slot,
        }
    }
}
/// Where a frame to send starts in its slot: `TPACKET2_HDRLEN - sizeof(sockaddr_ll)`.
pub const TX_DATA: usize = 32;

/// The fields of `struct tpacket2_hdr` nfv reads, at their offsets.
mod hdr {
    pub const STATUS: usize = 0;
    pub const LEN: usize = 4;
    pub const SNAPLEN: usize = 8;
    pub const MAC: usize = 12;
    pub const VLAN_TCI: usize = 24;
    pub const VLAN_TPID: usize = 26;
}

/// A received frame: its bytes as captured, its length on the wire, and the VLAN tag the
/// kernel took off it (TPID, TCI), if any.
pub type Received<'a> = (&'a [u8], usize, Option<(u16, u16)>);

/// One mapped ring of `geometry.slots` slots of `geometry.slot` bytes.
pub struct Ring {
    base: NonNull<u8>,
    len: usize,
    slot: usize,
    slots: usize,
}

// SAFETY: the mapping is owned by the ring and used by one thread at a time (the port's
// owner); the kernel's side of it is synchronised through the status words.
unsafe impl Send for Ring {}

impl Ring {
    /// The status word of slot `i` (taken modulo the slot count).
    #[inline]
    pub fn status(&self, i: usize) -> &AtomicU32 {
        let off = (i % self.slots) * self.slot + hdr::STATUS;
        // SAFETY: the offset is inside the mapping and 4-aligned (slots are 2,048 bytes or
        // whole pages, in a page-aligned mapping); the mapping lives as long as `self`. The kernel writes
        // this word concurrently, so it is only touched as an atomic.
        unsafe { &*(self.base.as_ptr().add(off) as *const AtomicU32) }
    }

    /// The 32-bit field at `at` of slot `i`'s header (written by the kernel before it set
    /// the status this thread read with acquire ordering).
    #[inline]
    fn field32(&self, i: usize, at: usize) -> u32 {
        let off = (i % self.slots) * self.slot + at;
        // SAFETY: inside the mapping and 4-aligned; a plain read of memory the kernel no
        // longer writes while the slot is ours.
        unsafe { std::ptr::read_volatile(self.base.as_ptr().add(off) as *const u32) }
    }

    #[inline]
    fn field16(&self, i: usize, at: usize) -> u16 {
        let off = (i % self.slots) * self.slot + at;
        // SAFETY: as for `field32`, 2-aligned.
        unsafe { std::ptr::read_volatile(self.base.as_ptr().add(off) as *const u16) }
    }

    /// Slot `i`'s bytes.
    #[inline]
    pub fn slot(&self, i: usize) -> &[u8] {
        // SAFETY: the slot lies inside the mapping, which lives as long as `self`; nfv only
        // reads a slot it owns (status read with acquire).
        unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add((i % self.slots) * self.slot),
                self.slot,
            )
        }
    }

    /// Slot `i`'s bytes, to fill.
    #[inline]
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        // SAFETY: as for `slot`; `&mut self` makes this the only reference nfv holds.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.base.as_ptr().add((i % self.slots) * self.slot),
                self.slot,
            )
        }
    }

    /// The received frame in slot `i` (which must be the user's): its bytes, its length on
    /// the wire, and the VLAN tag the kernel took off it, if any. `None` if the kernel's
    /// offsets do not fit the slot.
    pub fn received(&self, i: usize, status: u32) -> Option<Received<'_>> {
        let len = self.field32(i, hdr::LEN) as usize;
        let snap = self.field32(i, hdr::SNAPLEN) as usize;
        let mac = usize::from(self.field16(i, hdr::MAC));
        let slot = self.slot(i);
        let frame = slot.get(mac..mac.checked_add(snap)?)?;
        let tag = (status & TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                self.field16(i, hdr::VLAN_TPID)
            } else {
                0x8100
            };
            (tpid, self.field16(i, hdr::VLAN_TCI))
        });
        Some((frame, len, tag))
    }

    /// The `virtio_net_hdr` in front of the received frame in slot `i` (of a socket opened
    /// with `vnet`), `None` if the kernel's offset leaves no room for it in the slot.
    pub fn vnet_hdr(&self, i: usize) -> Option<[u8; VNET_HDR]> {
        let mac = usize::from(self.field16(i, hdr::MAC));
        let at = mac.checked_sub(VNET_HDR)?;
        // The slot's header and the address after it end at 52; the vnet header is after.
        if at < 52 {
            return None;
        }
        self.slot(i).get(at..mac)?.try_into().ok()
    }

    /// Set slot `i`'s frame length (before handing it to the kernel to send).
    #[inline]
    pub fn set_len(&mut self, i: usize, len: u32) {
        let s = self.slot_mut(i);
        s[hdr::LEN..hdr::LEN + 4].copy_from_slice(&len.to_ne_bytes());
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping `map` made; nothing borrows it any more.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// A packet socket with its ring.
pub struct RingSocket {
    pub fd: OwnedFd,
    pub ring: Ring,
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid `T` for the call and its size is passed alongside.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
}

/// `struct tpacket_req`.
#[repr(C)]
struct TpacketReq {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
}

/// A new packet socket that receives nothing (protocol 0) until it is bound.
fn socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and own alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Bind `fd` to device `ifindex`, receiving every protocol (`rx`) or none.
fn bind(fd: RawFd, ifindex: u32, rx: bool) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_ll is valid; the fields are filled in below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = if rx {
        (libc::ETH_P_ALL as u16).to_be()
    } else {
        0
    };
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and its size is passed.
    check(unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
}

/// A packet socket without a ring that sends frames with a `virtio_net_hdr` in front on
/// device `ifindex`, past its queueing discipline: for super-frames, which no slot holds.
pub fn open_big_tx(ifindex: u32) -> io::Result<OwnedFd> {
    let fd = socket()?;
    let one: libc::c_int = 1;
    setsockopt(fd.as_raw_fd(), PACKET_VNET_HDR, &one)?;
    setsockopt(fd.as_raw_fd(), PACKET_QDISC_BYPASS, &one)?;
    bind(fd.as_raw_fd(), ifindex, false)?;
    Ok(fd)
}

/// Open a packet socket on device `ifindex` with a ring of shape `g`: a receive ring (it
/// takes every frame arriving at the device, none it sends) or a transmit ring (it receives
/// nothing, and sends past the device's queueing discipline). With `vnet`, each frame has
/// a `virtio_net_hdr` in front (see [`VNET_HDR`]), and a received frame too big for its
/// slot also waits whole on the socket's queue (`TP_STATUS_COPY`), to be read with
/// [`RingSocket::recv_big`].
pub fn open(ifindex: u32, rx: bool, g: Geometry, vnet: bool) -> io::Result<RingSocket> {
    // Protocol 0: the socket receives nothing until it is bound, below, with its ring.
    let fd = socket()?;
    let raw = fd.as_raw_fd();
    setsockopt(raw, PACKET_VERSION, &TPACKET_V2)?;
    let one: libc::c_int = 1;
    if vnet {
        // Before the ring: the kernel refuses it after.
        setsockopt(raw, PACKET_VNET_HDR, &one)?;
    }
    if rx {
        setsockopt(raw, PACKET_IGNORE_OUTGOING, &one)?;
        if vnet {
            setsockopt(raw, PACKET_COPY_THRESH, &one)?;
            // Root may pass rmem_max; anyone else gets what it allows.
            let q = &BIG_QUEUE;
            // SAFETY: an int option of the size passed.
            let forced = unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (q as *const libc::c_int).cast(),
                    4,
                )
            };
            if forced < 0 {
                // SAFETY: as above.
                check(unsafe {
                    libc::setsockopt(
                        raw,
                        libc::SOL_SOCKET,
                        libc::SO_RCVBUF,
                        (q as *const libc::c_int).cast(),
                        4,
                    )
                })?;
            }
        }
    } else {
        setsockopt(raw, PACKET_QDISC_BYPASS, &one)?;
        // A frame the kernel will not send is dropped, not left blocking the ring.
        setsockopt(raw, PACKET_LOSS, &one)?;
    }
    let req = TpacketReq {
        block_size: g.block as u32,
        block_nr: (g.slots * g.slot / g.block) as u32,
        frame_size: g.slot as u32,
        frame_nr: g.slots as u32,
    };
    setsockopt(raw, if rx { PACKET_RX_RING } else { PACKET_TX_RING }, &req)?;
    let len = g.slots * g.slot;
    // SAFETY: maps the ring the kernel just made for `fd`, shared, at a place it chooses.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            raw,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ring = Ring {
        base: NonNull::new(base.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?,
        len,
        slot: g.slot,
        slots: g.slots,
    };
    bind(raw, ifindex, rx)?;
    Ok(RingSocket { fd, ring })
}

/// Send `frame` with virtio-net header `hdr` in front through socket `fd` (one made by
/// [`open_big_tx`]).
pub fn send_big(fd: RawFd, hdr: &[u8; VNET_HDR], frame: &[u8]) -> io::Result<()> {
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut libc::c_void,
            iov_len: VNET_HDR,
        },
        libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        },
    ];
    // SAFETY: an all-zero msghdr is valid; it points at `iov`, which lives across the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = 2;
    // SAFETY: sendmsg(2) reads the buffers `msg` names, all valid for their lengths.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl RingSocket {
    /// Read the next frame waiting on the queue of a receive socket opened with `vnet`
    /// (one too big for its slot): its header into `hdr`, the frame into `buf`. The
    /// frame's length, `None` if nothing waits or it did not fit `buf` whole.
    pub fn recv_big(&self, hdr: &mut [u8; VNET_HDR], buf: &mut [u8]) -> Option<usize> {
        let iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: VNET_HDR,
            },
            libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            },
        ];
        // SAFETY: an all-zero msghdr is valid; it points at `iov`, which lives across the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = 2;
        // SAFETY: recvmsg(2) writes at most the lengths of the buffers `msg` names, both
        // writable and alive across the call.
        let r = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if r < VNET_HDR as isize || msg.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        Some(r as usize - VNET_HDR)
    }

    /// Ask the kernel to send every slot marked for sending; `Ok` if it took them (or had
    /// nothing to take).
    pub fn kick(&self) -> io::Result<()> {
        // SAFETY: sendto(2) with no buffer: a transmit ring's socket sends what its ring holds.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Frames the kernel dropped because the receive ring was full since the last call
    /// (`PACKET_STATISTICS`, which resets as it is read).
    pub fn drops(&self) -> io::Result<u32> {
        #[repr(C)]
        #[derive(Default)]
        struct Stats {
            packets: u32,
            drops: u32,
        }
        let mut s = Stats::default();
        let mut len = std::mem::size_of::<Stats>() as libc::socklen_t;
        // SAFETY: `s` is writable for `len` bytes, which is passed.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&mut s as *mut Stats).cast(),
                &mut len,
            )
        })?;
        Ok(s.drops)
    }

    /// The socket's pending error (`SO_ERROR`, which clears it): `ENETDOWN` once its device
    /// went away.
    pub fn take_error(&self) -> Option<i32> {
        let mut e: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `e` is writable for `len` bytes, which is passed.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut e as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0 && e != 0).then_some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small frames keep the 2,048-byte slots; jumbo ones get whole pages, with room for
    /// the frame and the kernel's header, and the ring stays about 4 MiB.
    #[test]
    fn slots_fit_the_largest_frame() {
        let small = Geometry::for_frame(1518);
        assert_eq!((small.slot, small.slots), (SLOT, SLOTS));
        assert_eq!(Geometry::for_frame(1920), small);
        let jumbo = Geometry::for_frame(9018);
        assert_eq!(jumbo.slot, 12288);
        assert!(jumbo.slot >= 9018 + SLOT_OVERHEAD);
        assert_eq!(jumbo.slots, SLOT * SLOTS / 12288);
        assert_eq!(jumbo.slot % 4096, 0);
        assert_eq!(jumbo.block % 4096, 0);
        assert!(Geometry::for_frame(crate::packet::MAX_JUMBO_FRAME).slots >= MIN_SLOTS);
    }
}
