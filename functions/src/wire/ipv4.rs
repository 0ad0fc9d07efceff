//! IPv4 headers (RFC 791).

use super::{be16, be32, WireError};
use crate::ip;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// Where the fields are.
pub mod field {
    use std::ops::Range;
    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub const VER_IHL: usize = 0;
    /// DSCP and ECN.
    pub const DSCP_ECN: usize = 1;
    /// Total length of the datagram.
    pub const TOTAL_LEN: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits).
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC: Range<usize> = 12..16;
    /// Destination address.
    pub const DST: Range<usize> = 16..20;
}

/// A view of an IPv4 datagram.
///
/// [`new_checked`](Self::new_checked) refuses fewer than 20 bytes
/// ([`WireError::Truncated`]), a version other than 4, a header length below 20 bytes, and a
/// total length that does not cover the header or runs past the buffer
/// ([`WireError::Malformed`]). It does not verify the checksum
/// ([`verify_checksum`](Self::verify_checksum) does). After it no getter can panic.
#[derive(Debug)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// View `buffer` without checking it; getters may then panic.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// View `buffer` as an IPv4 datagram (see the type's checks).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_quoted(buffer)?;
        let total = usize::from(p.total_len());
        if total < p.header_len() || total > p.buffer.as_ref().len() {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    /// View `buffer` as an IPv4 header that may be cut short after its options, as an ICMP
    /// error quotes one: version 4 and a whole header of at least 20 bytes, but the total
    /// length is not checked against the buffer (the payload is what the buffer holds).
    /// After it no getter can panic either.
    #[inline]
    pub fn new_quoted(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = Ipv4Packet { buffer };
        let hl = p.header_len();
        if p.version() != 4 || hl < HEADER_LEN || hl > p.buffer.as_ref().len() {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    /// The bytes viewed.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4 for a checked view).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN.
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length of the datagram.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN.start)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }

    /// Flags and fragment offset as one word.
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG.start)
    }

    /// The don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & 0x4000 != 0
    }

    /// The more-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & 0x2000 != 0
    }

    /// Fragment offset in 8-byte units (non-zero: not the first fragment).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag() & 0x1fff
    }

    /// True if the datagram is a fragment (more follow, or not the first).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & 0x3fff != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Source address (host byte order).
    #[inline]
    pub fn src_addr(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SRC.start)
    }

    /// Destination address (host byte order).
    #[inline]
    pub fn dst_addr(&self) -> u32 {
        be32(self.buffer.as_ref(), field::DST.start)
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// True if the header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        ip::header_checksum_ok(self.header())
    }

    /// Everything after the header, whatever the total length says (for a quoted header,
    /// whose datagram is cut short or padded).
    #[inline]
    pub fn after_header(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// The payload: after the header, up to the total length or the end of the buffer,
    /// whichever comes first (they are the same for a checked view).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).clamp(self.header_len(), b.len());
        &b[self.header_len()..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Set version 4 and the header length in bytes (a multiple of 4, 20 to 60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }

    /// Set DSCP and ECN (the checksum is not updated).
    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Set the total length (the checksum is not updated).
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::TOTAL_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Set the identification (the checksum is not updated).
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&id.to_be_bytes());
    }

    /// Set the flags and fragment offset as one word (the checksum is not updated).
    #[inline]
    pub fn set_flags_frag(&mut self, v: u16) {
        self.buffer.as_mut()[field::FLAGS_FRAG].copy_from_slice(&v.to_be_bytes());
    }

    /// Swap source and destination addresses (a reply to the sender; the checksum does not
    /// change, the sum being the same).
    #[inline]
    pub fn swap_addresses(&mut self) {
        let (src, dst) = (self.src_addr(), self.dst_addr());
        self.set_src_addr(dst);
        self.set_dst_addr(src);
    }

    /// Set the time to live (the checksum is not updated).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Set the protocol (the checksum is not updated).
    #[inline]
    pub fn set_protocol(&mut self, proto: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = proto;
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Set the source address (the checksum is not updated).
    #[inline]
    pub fn set_src_addr(&mut self, a: u32) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.to_be_bytes());
    }

    /// Set the destination address (the checksum is not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, a: u32) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.to_be_bytes());
    }

    /// Compute and store the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        ip::set_header_checksum(&mut self.buffer.as_mut()[..hl]);
    }

    /// Decrement the TTL and update the checksum incrementally (RFC 1624); the caller has
    /// checked that the TTL is above 1.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        ip::decrement_ttl(&mut self.buffer.as_mut()[..HEADER_LEN]);
    }

    /// The payload, writable (see [`payload`](Ipv4Packet::payload)).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        let b = self.buffer.as_mut();
        let end = total.clamp(hl, b.len());
        &mut b[hl..end]
    }
}

/// The fixed header of a datagram a function makes (an ICMP error, a TCP RST, a DHCP
/// reply): no options, DSCP and ECN 0, identification 0, no flags. For slow paths that
/// build packets; forwarding patches fields in place instead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: u32,
    /// Destination address.
    pub dst_addr: u32,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Length of the payload (the total length is 20 more).
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Length of the header it writes.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Write the header at the start of `packet` (a view over at least 20 bytes, made with
    /// [`Ipv4Packet::new_unchecked`] over a buffer sized for the datagram), checksum
    /// included.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp_ecn(0);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(0);
        packet.set_flags_frag(0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram() -> [u8; 28] {
        let mut d = [0u8; 28];
        d[..20].copy_from_slice(&[
            0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0,
            0, 2,
        ]);
        ip::set_header_checksum(&mut d[..20]);
        d
    }

    #[test]
    fn every_short_prefix_and_every_bad_length_is_refused() {
        let d = datagram();
        for n in 0..d.len() {
            assert!(Ipv4Packet::new_checked(&d[..n]).is_err(), "{n} bytes");
        }
        for n in 0..20 {
            assert_eq!(
                Ipv4Packet::new_quoted(&d[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        for ihl in 0..5u8 {
            let mut bad = d;
            bad[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&bad[..]).err(),
                Some(WireError::Malformed),
                "ihl {ihl}"
            );
        }
        let mut long = d;
        long[2..4].copy_from_slice(&29u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&long[..]).err(),
            Some(WireError::Malformed),
            "total length beyond the buffer"
        );
        assert!(
            Ipv4Packet::new_quoted(&long[..]).is_ok(),
            "a quote may be cut"
        );
        let mut short = d;
        short[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert!(Ipv4Packet::new_checked(&short[..]).is_err());
        let mut v6 = d;
        v6[0] = 0x65;
        assert!(Ipv4Packet::new_checked(&v6[..]).is_err());
        let mut opts = d;
        opts[0] = 0x48; // 32-byte header in a 28-byte buffer
        assert!(Ipv4Packet::new_quoted(&opts[..]).is_err());
    }

    #[test]
    fn getters_and_setters_round_trip() {
        let mut d = datagram();
        let mut p = Ipv4Packet::new_checked(&mut d[..]).expect("valid");
        assert_eq!(
            (p.version(), p.header_len(), p.total_len(), p.ident()),
            (4, 20, 28, 0x1234)
        );
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!((p.ttl(), p.protocol(), p.frag_offset()), (64, 17, 0));
        assert_eq!((p.src_addr(), p.dst_addr()), (0x0a00_0001, 0x0a00_0002));
        assert!(p.verify_checksum());
        p.decrement_ttl();
        assert!(p.verify_checksum());
        assert_eq!(p.ttl(), 63);
        p.set_src_addr(0xc0a8_0001);
        p.set_dst_addr(0xc0a8_0002);
        p.set_ttl(9);
        p.set_protocol(6);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.src_addr(), p.dst_addr(), p.ttl(), p.protocol()),
            (0xc0a8_0001, 0xc0a8_0002, 9, 6)
        );
        p.payload_mut().fill(7);
        assert_eq!(p.payload(), &[7; 8]);
        p.set_checksum(0xbeef);
        assert_eq!(p.checksum(), 0xbeef);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.header().len(), 20);
        p.set_header_len(24);
        assert_eq!((p.version(), p.header_len()), (4, 24));
        p.set_header_len(20);
        p.set_dscp_ecn(0xb8);
        p.set_total_len(26);
        p.set_ident(0xabcd);
        p.set_flags_frag(0x2001);
        assert_eq!(
            (p.dscp_ecn(), p.total_len(), p.ident(), p.flags_frag()),
            (0xb8, 26, 0xabcd, 0x2001)
        );
        assert!(p.more_frags() && p.is_fragment() && p.frag_offset() == 1);
        p.fill_checksum();
        p.swap_addresses();
        assert_eq!((p.src_addr(), p.dst_addr()), (0xc0a8_0002, 0xc0a8_0001));
        assert!(p.verify_checksum(), "swapping keeps the sum");
    }

    #[test]
    fn repr_emits_a_header_the_checked_view_accepts() {
        let mut d = [0xeeu8; 28];
        let repr = Ipv4Repr {
            src_addr: 0x0a00_0001,
            dst_addr: 0x0a00_0002,
            protocol: ip::PROTO_UDP,
            ttl: 64,
            payload_len: 8,
        };
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut d[..]));
        let p = Ipv4Packet::new_checked(&d[..]).expect("valid");
        assert!(p.verify_checksum());
        assert_eq!(
            (p.header_len(), p.dscp_ecn(), p.total_len(), p.ident()),
            (20, 0, 28, 0)
        );
        assert_eq!((p.flags_frag(), p.ttl(), p.protocol()), (0, 64, 17));
        assert_eq!((p.src_addr(), p.dst_addr()), (0x0a00_0001, 0x0a00_0002));
        assert_eq!(p.payload(), &[0xee; 8], "the payload is not touched");
    }
}
