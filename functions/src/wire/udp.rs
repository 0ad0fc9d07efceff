//! UDP headers (RFC 768).

use super::{be16, WireError};

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
    }
}
