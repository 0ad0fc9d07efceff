//! ICMPv4 (RFC 792) and the common header of ICMPv6 (RFC 4443).

use super::{be16, be32, WireError};
use crate::ip;

/// Where the fields are (the same for ICMPv4 and ICMPv6).
pub mod field {
    use std::ops::Range;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// The rest of the header: the echo identifier and sequence number, a next-hop MTU, or
    /// unused.
    pub const REST: Range<usize> = 4..8;
    /// Echo identifier.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQ: Range<usize> = 6..8;
}

/// Length of an ICMPv4 header.
pub const HEADER_LEN: usize = 8;

/// A view of an ICMPv4 message: [`new_checked`](Self::new_checked) refuses fewer than the
/// 8 bytes of its header. After it no getter can panic.
#[derive(Debug)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// View `buffer` without checking it; getters may then panic.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// View `buffer` as an ICMPv4 message: it must hold the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv4Packet { buffer })
    }

    /// The bytes viewed.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The second header word (a next-hop MTU, a pointer, or unused).
    #[inline]
    pub fn rest(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST.start)
    }

    /// Echo identifier (of an echo request or reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number (of an echo request or reply).
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQ.start)
    }

    /// True if the checksum over the whole message is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        ip::sum(self.buffer.as_ref()) == 0xffff
    }

    /// The data after the header (for an error: the quoted datagram).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Set the message type (the checksum is not updated).
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
    }

    /// Set the code (the checksum is not updated).
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Set the second header word.
    #[inline]
    pub fn set_rest(&mut self, r: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&r.to_be_bytes());
    }

    /// Set the echo identifier (the checksum is not updated).
    #[inline]
    pub fn set_echo_ident(&mut self, id: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&id.to_be_bytes());
    }

    /// Compute and store the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = ip::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// The data after the header, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// Length of the part of an ICMPv6 header common to every message.
pub const V6_HEADER_LEN: usize = 4;

/// A view of an ICMPv6 message's common header (type, code, checksum):
/// [`new_checked`](Self::new_checked) refuses fewer than 4 bytes. Its checksum covers an
/// IPv6 pseudo-header, which this view does not compute.
#[derive(Debug)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// View `buffer` as an ICMPv6 message: it must hold type, code and checksum.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < V6_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The message body after type, code and checksum.
    #[inline]
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[V6_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Set the message type.
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
    }

    /// Set the code.
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prefixes_are_refused_and_fields_round_trip() {
        let mut m = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, 0xaa, 0xbb];
        for n in 0..HEADER_LEN {
            assert!(Icmpv4Packet::new_checked(&m[..n]).is_err());
        }
        for n in 0..V6_HEADER_LEN {
            assert!(Icmpv6Packet::new_checked(&m[..n]).is_err());
        }
        let mut p = Icmpv4Packet::new_checked(&mut m[..]).expect("header");
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.msg_type(), p.code(), p.echo_ident(), p.echo_seq()),
            (8, 0, 0x1234, 1)
        );
        assert_eq!(p.data(), &[0xaa, 0xbb]);
        p.set_echo_ident(7);
        assert!(!p.verify_checksum());
        p.set_msg_type(3);
        p.set_code(4);
        p.set_rest(1400);
        p.data_mut()[0] = 1;
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!((p.msg_type(), p.code(), p.rest()), (3, 4, 1400));
        let mut v6 = Icmpv6Packet::new_checked(&mut m[..]).expect("header");
        v6.set_msg_type(128);
        v6.set_code(0);
        v6.set_checksum(0x1111);
        assert_eq!((v6.msg_type(), v6.code(), v6.checksum()), (128, 0, 0x1111));
        assert_eq!(v6.body().len(), 6);
    }
}
