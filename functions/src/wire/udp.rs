//! UDP headers (RFC 768).

use super::{be16, WireError};
use crate::ip;

/// Length of the header.
pub const HEADER_LEN: usize = 8;

/// Where the fields are.
pub mod field {
    use std::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header and data.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum (0: none).
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram: [`new_checked`](Self::new_checked) refuses fewer than 8 bytes;
/// the length field is read, not trusted (`payload` is what the buffer holds after the
/// header). After it no getter can panic.
#[derive(Debug)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// View `buffer` without checking it; getters may then panic.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// View `buffer` as a UDP datagram: it must hold the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(UdpPacket { buffer })
    }

    /// The bytes viewed.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field (header and data).
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// True if the length field says there is not even a header.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) < HEADER_LEN
    }

    /// Checksum (0: the sender computed none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The bytes after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The datagram as its length field says, cut to the buffer (at least the header).
    #[inline]
    fn datagram(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..usize::from(self.len()).clamp(HEADER_LEN, b.len())]
    }

    /// True if the checksum is right for a datagram from `src` to `dst` (IPv4), or is 0
    /// (none was computed).
    #[inline]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.datagram();
        let pseudo = ip::pseudo_header_sum(src, dst, ip::PROTO_UDP, d.len());
        ip::fold(pseudo + u64::from(ip::sum(d))) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Set the source port (the checksum is not updated).
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&p.to_be_bytes());
    }

    /// Set the destination port (the checksum is not updated).
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&p.to_be_bytes());
    }

    /// Set the length field.
    #[inline]
    pub fn set_len(&mut self, l: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&l.to_be_bytes());
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Compute and store the checksum of the datagram (as long as its length field says,
    /// cut to the buffer) from `src` to `dst` (IPv4); a sum of 0 is sent as 0xffff, 0
    /// meaning none (RFC 768).
    #[inline]
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let d = self.datagram();
        let pseudo = ip::pseudo_header_sum(src, dst, ip::PROTO_UDP, d.len());
        let c = match !ip::fold(pseudo + u64::from(ip::sum(d))) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prefixes_are_refused_and_fields_round_trip() {
        let mut d = [0u8; 10];
        for n in 0..HEADER_LEN {
            assert_eq!(
                UdpPacket::new_checked(&d[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        let mut u = UdpPacket::new_checked(&mut d[..]).expect("header");
        u.set_src_port(67);
        u.set_dst_port(68);
        u.set_len(10);
        u.set_checksum(0xffff);
        u.payload_mut().copy_from_slice(&[1, 2]);
        assert_eq!(
            (u.src_port(), u.dst_port(), u.len(), u.checksum()),
            (67, 68, 10, 0xffff)
        );
        assert!(!u.is_empty());
        assert_eq!(u.payload(), &[1, 2]);
        let (src, dst) = (0x0a00_0002, 0x0a00_0001);
        assert!(!u.verify_checksum(src, dst));
        u.fill_checksum(src, dst);
        assert!(u.verify_checksum(src, dst));
        assert!(!u.verify_checksum(src, dst + 1), "the pseudo-header counts");
        u.set_checksum(0);
        assert!(u.verify_checksum(src, dst + 1), "0: no checksum");
    }

    /// The checksum agrees with a full sum over pseudo-header and datagram written out
    /// byte by byte, only as long as the length field says, and never sends 0.
    #[test]
    fn fill_checksum_matches_a_written_out_sum() {
        let (src, dst) = (0xc0a8_0001u32, 0x0a00_0063u32);
        let mut d = [0u8; 14];
        d[HEADER_LEN..13].copy_from_slice(b"hello");
        d[13] = 0x55; // past the length field: not summed
        let mut u = UdpPacket::new_checked(&mut d[..]).expect("header");
        u.set_src_port(67);
        u.set_dst_port(68);
        u.set_len(13);
        u.fill_checksum(src, dst);
        let c = u.checksum();
        let mut all = Vec::new();
        all.extend_from_slice(&src.to_be_bytes());
        all.extend_from_slice(&dst.to_be_bytes());
        all.extend_from_slice(&[0, ip::PROTO_UDP, 0, 13]);
        all.extend_from_slice(&d[..13]);
        assert_eq!(ip::sum(&all), 0xffff);
        assert_ne!(c, 0);
        // A datagram whose sum is 0xffff before the checksum sends 0xffff, not 0.
        let mut z = [0u8; 8];
        let mut u = UdpPacket::new_checked(&mut z[..]).expect("header");
        u.set_len(8);
        // Protocol 17 and length 8 in the pseudo-header, length 8 in the header: a source
        // address of 0xffff less those sums to 0xffff.
        let src = 0xffff - 17 - 8 - 8;
        u.fill_checksum(src, 0);
        assert_eq!(u.checksum(), 0xffff);
        assert!(u.verify_checksum(src, 0));
    }
}
