//! The work a frame left to its receiver, done in software for an egress that cannot take it.
//!
//! A host's kernel that may leave work to its link's far side (a veth port with offloads,
//! see `port::veth`) hands nfv frames whose transport checksum is only begun (the field
//! holds the pseudo-header's sum) and TCP or UDP super-frames of up to 64 KB that are still
//! to be cut into segments of `gso_size` bytes, described by an [`Offload`] record. They
//! cross the graph as they are (a switch forwards one super-frame, not forty-five
//! segments) and leave as they are through a port that takes them ([`Port::offloads`]).
//! Before any other port, the graph finishes the checksum ([`finish_checksum`]) and cuts a
//! super-frame into whole frames ([`Segments`]), each with its own lengths and checksums,
//! as Linux's GSO does.
//!
//! [`Port::offloads`]: crate::port::Port::offloads

use crate::drop_reason::DropReason;
use crate::packet::{Gso, Offload, Packet, Pool};

/// The ones'-complement sum of `data` (as big-endian 16-bit words, an odd last byte padded
/// with zero), not yet folded to 16 bits.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    acc
}

/// `acc` folded to 16 bits (not complemented).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Length of a `virtio_net_hdr` without its `num_buffers` field.
pub const VIRTIO_HDR: usize = 10;

/// The record a `virtio_net_hdr` (its first [`VIRTIO_HDR`] bytes, little-endian as
/// VIRTIO 1 and x86 have it) describes, with `csum_start` moved by `shift` bytes (a VLAN tag
/// put back in front of the frame); `None` for a whole frame. `Err` for a GSO type nfv
/// cannot follow (legacy UFO, SCTP, ...). Nothing in it is trusted yet: the offsets are
/// checked where they are used ([`finish_checksum`], [`Segments::of`]).
pub fn from_virtio(h: &[u8; VIRTIO_HDR], shift: usize) -> Result<Option<Offload>, DropReason> {
    const NEEDS_CSUM: u8 = 1;
    let gso = Gso::from_virtio(h[1] & 0x7f).ok_or(DropReason::BadHeader)?;
    let needs_csum = h[0] & NEEDS_CSUM != 0;
    if !needs_csum && gso == Gso::None {
        return Ok(None);
    }
    let field = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
    Ok(Some(Offload {
        needs_csum,
        gso,
        gso_size: field(4),
        csum_start: field(6)
            .checked_add(shift as u16)
            .ok_or(DropReason::BadHeader)?,
        csum_offset: field(8),
    }))
}

/// The `virtio_net_hdr` (without `num_buffers`) to hand a frame with record `o` over under.
pub fn to_virtio(o: Option<Offload>) -> [u8; VIRTIO_HDR] {
    let mut h = [0u8; VIRTIO_HDR];
    if let Some(o) = o {
        h[0] = u8::from(o.needs_csum);
        h[1] = o.gso as u8;
        if o.needs_csum {
            let hdr_len = o.csum_start.saturating_add(o.csum_offset).saturating_add(2);
            h[2..4].copy_from_slice(&hdr_len.to_le_bytes());
        }
        h[4..6].copy_from_slice(&o.gso_size.to_le_bytes());
        h[6..8].copy_from_slice(&o.csum_start.to_le_bytes());
        h[8..10].copy_from_slice(&o.csum_offset.to_le_bytes());
    }
    h
}

/// Finish a begun transport checksum in place: the sum over `[csum_start, end)` (the field
/// holds the pseudo-header's sum) goes, complemented, into the field. A UDP checksum that
/// comes out 0 is written as 0xffff (0 means "none"). False if the record points outside
/// the frame.
pub fn finish_checksum(d: &mut [u8], o: &Offload) -> bool {
    let (start, at) = (
        o.csum_start as usize,
        o.csum_start as usize + o.csum_offset as usize,
    );
    if at + 2 > d.len() || start > at {
        return false;
    }
    let mut c = !fold(sum(&d[start..]));
    if c == 0 && o.csum_offset == 6 {
        c = 0xffff;
    }
    d[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Make `pkt` a whole frame with its checksums if it only left a checksum to finish. A
/// super-frame is left alone (cut it with [`Segments`]). `Err` if its record is bad.
pub fn finish(pkt: &mut Packet) -> Result<(), DropReason> {
    let Some(o) = pkt.offload() else {
        return Ok(());
    };
    if o.gso != Gso::None {
        return Ok(());
    }
    if o.needs_csum && !finish_checksum(pkt.data_mut(), &o) {
        return Err(DropReason::BadHeader);
    }
    pkt.set_offload(None);
    Ok(())
}

/// Make `pkt` whole for a receiver that takes no offloads: finish a begun checksum, or cut
/// a super-frame into segments, handing each whole frame to `out` (with the pool, which the
/// caller may send with between segments). What cannot be made whole is counted in `drops`
/// and its buffer given back.
pub fn make_whole(
    mut pkt: Packet,
    pool: &mut Pool,
    drops: &crate::counters::DropCounters,
    mut out: impl FnMut(Packet, &mut Pool),
) {
    let gso = pkt.offload().is_some_and(|o| o.gso != Gso::None);
    if !gso {
        match finish(&mut pkt) {
            Ok(()) => out(pkt, pool),
            Err(r) => {
                drops.add(r, 1);
                pool.free(pkt);
            }
        }
        return;
    }
    match Segments::of(&pkt) {
        Err(r) => drops.add(r, 1),
        Ok(mut cut) => {
            while let Some(seg) = cut.next(&pkt, pool) {
                match seg {
                    Ok(seg) => out(seg, pool),
                    Err(r) => drops.add(r, 1),
                }
            }
        }
    }
    pool.free(pkt);
}

/// Where a super-frame's headers are.
#[derive(Clone, Copy, Debug)]
struct Layout {
    l3: usize,
    l4: usize,
    /// Headers' length: up to the end of the transport header.
    hdr: usize,
    v6: bool,
    udp: bool,
    mss: usize,
}

/// The segments a super-frame is cut into, one at a time (each in a buffer from the pool
/// the caller passes to [`Segments::next`], so the caller may send between them).
pub struct Segments {
    layout: Layout,
    /// Payload bytes already cut.
    done: usize,
    /// Segments made.
    n: u32,
}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

impl Segments {
    /// The segments of super-frame `pkt`; `Err` (the drop reason) if its record or headers
    /// do not describe a TCP or UDP segment over IPv4 or IPv6 that can be cut.
    pub fn of(pkt: &Packet) -> Result<Segments, DropReason> {
        let o = pkt.offload().ok_or(DropReason::Internal)?;
        let d = pkt.data();
        let bad = DropReason::BadHeader;
        // Past the Ethernet header and any VLAN tags.
        let mut l3 = 12;
        let ether = loop {
            let t = d.get(l3..l3 + 2).ok_or(bad)?;
            let t = u16::from_be_bytes([t[0], t[1]]);
            if matches!(t, 0x8100 | 0x88a8 | 0x9100) {
                l3 += 4;
                continue;
            }
            l3 += 2;
            break t;
        };
        let l4 = o.csum_start as usize;
        let (v6, proto) = match (ether, o.gso) {
            (0x0800, Gso::Tcp4 | Gso::Udp) => {
                let ihl = usize::from(d.get(l3).ok_or(bad)? & 0x0f) * 4;
                if d[l3] >> 4 != 4 || ihl < 20 || l3 + ihl != l4 {
                    return Err(bad);
                }
                (false, *d.get(l3 + 9).ok_or(bad)?)
            }
            (0x86dd, Gso::Tcp6 | Gso::Udp) => {
                if d.get(l3).ok_or(bad)? >> 4 != 6 || l4 < l3 + 40 {
                    return Err(bad);
                }
                // The next header is the transport one, or extension headers lead to it:
                // the record says where it is, and its kind by the GSO type.
                (
                    true,
                    if o.gso == Gso::Udp {
                        PROTO_UDP
                    } else {
                        PROTO_TCP
                    },
                )
            }
            _ => return Err(bad),
        };
        let udp = o.gso == Gso::Udp;
        if proto != if udp { PROTO_UDP } else { PROTO_TCP } {
            return Err(bad);
        }
        let th = if udp {
            8
        } else {
            usize::from(d.get(l4 + 12).ok_or(bad)? >> 4) * 4
        };
        let hdr = l4 + th;
        if th < if udp { 8 } else { 20 } || hdr > d.len() || o.gso_size == 0 {
            return Err(bad);
        }
        Ok(Segments {
            layout: Layout {
                l3,
                l4,
                hdr,
                v6,
                udp,
                mss: o.gso_size as usize,
            },
            done: 0,
            n: 0,
        })
    }

    /// The next segment of `pkt` (the super-frame [`of`](Segments::of) was given), in a
    /// buffer from `pool`: `None` when every segment has been made, `Some(Err)` if the
    /// pool has no buffer for it.
    pub fn next(&mut self, pkt: &Packet, pool: &mut Pool) -> Option<Result<Packet, DropReason>> {
        let Layout {
            l3,
            l4,
            hdr,
            v6,
            udp,
            mss,
        } = self.layout;
        let d = pkt.data();
        let payload = d.len() - hdr;
        if self.done >= payload && !(payload == 0 && self.n == 0) {
            return None;
        }
        let chunk = mss.min(payload - self.done);
        let last = self.done + chunk >= payload;
        let len = hdr + chunk;
        let Some(mut seg) = pool.alloc_for(len) else {
            self.done = payload;
            self.n += 1;
            return Some(Err(DropReason::NoBuffers));
        };
        seg.meta = pkt.meta;
        seg.meta.offloaded = false;
        seg.meta.offsets = crate::packet::Offsets::UNPARSED;
        let room = seg.room_mut();
        room[..hdr].copy_from_slice(&d[..hdr]);
        room[hdr..len].copy_from_slice(&d[hdr + self.done..hdr + self.done + chunk]);
        let s = &mut room[..len];
        if v6 {
            let plen = (len - l3 - 40) as u16;
            s[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
        } else {
            let ihl = usize::from(s[l3] & 0x0f) * 4;
            s[l3 + 2..l3 + 4].copy_from_slice(&((len - l3) as u16).to_be_bytes());
            if !udp {
                let id = u16::from_be_bytes([s[l3 + 4], s[l3 + 5]]).wrapping_add(self.n as u16);
                s[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
            }
            s[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
            let c = !fold(sum(&s[l3..l3 + ihl]));
            s[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        let l4len = len - l4;
        let field = if udp {
            s[l4 + 4..l4 + 6].copy_from_slice(&(l4len as u16).to_be_bytes());
            l4 + 6
        } else {
            let seq = u32::from_be_bytes([s[l4 + 4], s[l4 + 5], s[l4 + 6], s[l4 + 7]])
                .wrapping_add(self.done as u32);
            s[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
            let flags = &mut s[l4 + 13];
            if !last {
                *flags &= !0x09; // FIN, PSH: the last segment's
            }
            if self.n > 0 {
                *flags &= !0x80; // CWR: the first's
            }
            l4 + 16
        };
        s[field..field + 2].copy_from_slice(&[0, 0]);
        let proto = if udp { PROTO_UDP } else { PROTO_TCP };
        let pseudo = if v6 {
            sum(&s[l3 + 8..l3 + 40]) + l4len as u64 + u64::from(proto)
        } else {
            sum(&s[l3 + 12..l3 + 20]) + l4len as u64 + u64::from(proto)
        };
        let mut c = !fold(pseudo + sum(&s[l4..]));
        if udp && c == 0 {
            c = 0xffff;
        }
        s[field..field + 2].copy_from_slice(&c.to_be_bytes());
        seg.set_len(len);
        self.done += chunk;
        self.n += 1;
        Some(Ok(seg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Offload;

    /// A TCP/IPv4 super-frame of `payload` bytes (payload byte i = i % 251), its checksum
    /// begun as Linux begins it, cut at `mss`.
    pub(crate) fn tcp4_super(payload: usize, mss: u16, flags: u8) -> Packet {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let c = !fold(sum(ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xffff_ff00u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let pseudo = sum(&f[26..34]) + (20 + payload) as u64 + 6;
        f[50..52].copy_from_slice(&fold(pseudo).to_be_bytes());
        let mut p = Packet::from_bytes(&f).expect("fits");
        p.set_offload(Some(Offload {
            needs_csum: true,
            gso: Gso::Tcp4,
            csum_start: 34,
            csum_offset: 16,
            gso_size: mss,
        }));
        p
    }

    /// A parser of the test's own: the segment is a valid TCP/IPv4 frame (lengths, both
    /// checksums), and gives its sequence number, flags and payload.
    fn check_tcp4(f: &[u8]) -> (u32, u8, Vec<u8>) {
        assert_eq!(&f[12..14], &[8, 0]);
        let ip = &f[14..34];
        assert_eq!(fold(sum(ip)), 0xffff, "IPv4 header checksum");
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        assert_eq!(total, f.len() - 14, "IPv4 total length");
        let tcp = &f[34..];
        let pseudo = sum(&ip[12..20]) + tcp.len() as u64 + 6;
        assert_eq!(fold(pseudo + sum(tcp)), 0xffff, "TCP checksum");
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        (seq, tcp[13], tcp[20..].to_vec())
    }

    #[test]
    fn a_tcp_super_frame_is_cut_into_valid_segments() {
        let mut pool = Pool::new(64);
        let payload = 10_000;
        let big = tcp4_super(payload, 1448, 0x18 | 0x80 | 0x01); // PSH ACK CWR FIN
        let mut cut = Segments::of(&big).expect("a TCP super-frame");
        let mut got = Vec::new();
        let mut ids = Vec::new();
        while let Some(seg) = cut.next(&big, &mut pool) {
            let seg = seg.expect("buffers");
            assert!(seg.offload().is_none(), "a whole frame");
            assert!(seg.len() <= 14 + 40 + 1448);
            ids.push(u16::from_be_bytes([seg.data()[18], seg.data()[19]]));
            got.push(check_tcp4(seg.data()));
            pool.free(seg);
        }
        assert_eq!(got.len(), payload.div_ceil(1448));
        let mut bytes = Vec::new();
        for (i, (seq, flags, data)) in got.iter().enumerate() {
            assert_eq!(*seq, 0xffff_ff00u32.wrapping_add(bytes.len() as u32), "seq");
            let last = i == got.len() - 1;
            assert_eq!(flags & 0x09 != 0, last, "FIN and PSH on the last only");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only");
            assert!(flags & 0x10 != 0, "ACK on all");
            bytes.extend_from_slice(data);
        }
        let want: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
        assert_eq!(bytes, want, "the payload, in order, once");
        assert_eq!(ids[1], ids[0] + 1, "IP ids count up");
    }

    #[test]
    fn a_begun_checksum_is_finished() {
        // A frame that is no super-frame (one segment's worth) with its checksum begun.
        let mut p = tcp4_super(100, 1448, 0x10);
        let mut o = p.offload().expect("record");
        o.gso = Gso::None;
        p.set_offload(Some(o));
        assert!(finish(&mut p).is_ok());
        assert!(p.offload().is_none());
        check_tcp4(p.data());
    }

    #[test]
    fn a_bad_record_is_refused() {
        let mut pool = Pool::new(4);
        let mut p = tcp4_super(3000, 1000, 0x10);
        let o = p.offload().expect("record");
        for bad in [
            Offload { gso_size: 0, ..o },
            Offload {
                csum_start: 30,
                ..o
            },
            Offload {
                csum_start: 60000,
                ..o
            },
            Offload {
                gso: Gso::Tcp6,
                ..o
            },
        ] {
            p.set_offload(Some(bad));
            assert!(Segments::of(&p).is_err(), "{bad:?}");
        }
        // A TCP header shorter than TCP's least (the fuzzer's find).
        let mut short = tcp4_super(3000, 1000, 0x10);
        short.data_mut()[34 + 12] = 2 << 4;
        assert_eq!(Segments::of(&short).err(), Some(DropReason::BadHeader));
        p.set_offload(Some(Offload {
            gso: Gso::None,
            csum_offset: 60000,
            ..o
        }));
        assert_eq!(finish(&mut p), Err(DropReason::BadHeader));
        // Out of buffers: the segments that do not get one are counted, and it stops.
        let p = tcp4_super(3000, 1000, 0x10);
        let mut small = Pool::new(1);
        let mut cut = Segments::of(&p).expect("ok");
        let first = cut.next(&p, &mut small).expect("one").expect("a buffer");
        assert_eq!(
            cut.next(&p, &mut small).map(|r| r.err()),
            Some(Some(DropReason::NoBuffers))
        );
        assert!(cut.next(&p, &mut small).is_none());
        small.free(first);
        let _ = &mut pool;
    }
}
