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

/// ICMPv6 message types (RFC 4443, RFC 4861).
pub mod v6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Multicast listener query (MLD, RFC 2710).
    pub const MLD_QUERY: u8 = 130;
    /// Multicast listener report (MLDv1).
    pub const MLD_REPORT: u8 = 131;
    /// Multicast listener done (MLDv1).
    pub const MLD_DONE: u8 = 132;
    /// Version 2 multicast listener report (MLDv2, RFC 3810).
    pub const MLD_V2_REPORT: u8 = 143;
    /// Router solicitation.
    pub const ROUTER_SOLICITATION: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERTISEMENT: u8 = 134;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICITATION: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
    /// Destination unreachable code: administratively prohibited.
    pub const CODE_ADMIN_PROHIBITED: u8 = 1;
    /// Destination unreachable code: port unreachable.
    pub const CODE_PORT_UNREACHABLE: u8 = 4;
    /// Largest ICMPv6 error datagram: the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
    pub const MAX_ERROR_DATAGRAM: usize = 1280;

    /// True if `ty` is an error message (types 0 to 127), which quotes the packet it is
    /// about.
    #[inline]
    pub fn is_error(ty: u8) -> bool {
        ty < 128
    }
}

/// Length of the ICMPv6 header of the messages nfv reads past type, code and checksum
/// (echo, errors): the second word (identifier and sequence, MTU, pointer or unused).
pub const V6_MESSAGE_HEADER_LEN: usize = 8;

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// View `buffer` without checking it; getters may then panic.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// The message's length.
    #[inline]
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// True if the message is empty (never, for a checked view).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buffer.as_ref().is_empty()
    }

    /// The second header word (echo identifier and sequence, an MTU, a pointer, or unused);
    /// 0 if the message is shorter than [`V6_MESSAGE_HEADER_LEN`] bytes.
    #[inline]
    pub fn rest(&self) -> u32 {
        match self.buffer.as_ref().get(field::REST) {
            Some(b) => be32(b, 0),
            None => 0,
        }
    }

    /// Echo identifier (of an echo request or reply); 0 if the message is shorter than
    /// [`V6_MESSAGE_HEADER_LEN`] bytes.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        (self.rest() >> 16) as u16
    }

    /// The data after the 8-byte header (for an error: the quoted datagram); empty if the
    /// message is shorter.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(V6_MESSAGE_HEADER_LEN..)
            .unwrap_or(&[])
    }

    /// True if the checksum over the whole message and its pseudo-header (from `src` to
    /// `dst`) is right.
    #[inline]
    pub fn verify_checksum(&self, src: &std::net::Ipv6Addr, dst: &std::net::Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let pseudo =
            super::ipv6::pseudo_header_sum(src, dst, super::ipv6::next_header::ICMPV6, b.len());
        ip::fold(pseudo + u64::from(ip::sum(b))) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Set the second header word (needs the 8-byte header: a view over a buffer sized for
    /// the message).
    #[inline]
    pub fn set_rest(&mut self, r: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&r.to_be_bytes());
    }

    /// Compute and store the checksum of the message (the whole buffer) from `src` to
    /// `dst`.
    #[inline]
    pub fn fill_checksum(&mut self, src: &std::net::Ipv6Addr, dst: &std::net::Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo =
            super::ipv6::pseudo_header_sum(src, dst, super::ipv6::next_header::ICMPV6, b.len());
        let c = !ip::fold(pseudo + u64::from(ip::sum(b)));
        self.set_checksum(c);
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

    #[test]
    fn icmpv6_second_word_data_and_checksum() {
        let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
            ("fe80::1".parse().expect("a"), "ff02::1".parse().expect("a"));
        let mut m = [128u8, 0, 0, 0, 0x12, 0x34, 0, 1, 0xaa, 0xbb, 0xcc];
        let mut p = Icmpv6Packet::new_checked(&mut m[..]).expect("header");
        assert_eq!(
            (p.rest(), p.echo_ident(), p.len()),
            (0x1234_0001, 0x1234, 11)
        );
        assert_eq!(p.data(), &[0xaa, 0xbb, 0xcc]);
        assert!(!p.verify_checksum(&src, &dst));
        p.fill_checksum(&src, &dst);
        assert!(p.verify_checksum(&src, &dst));
        assert!(!p.verify_checksum(&dst, &dst), "the pseudo-header counts");
        p.set_rest(1280);
        assert!(!p.verify_checksum(&src, &dst));
        // The pseudo-header written out: addresses, length, next header 58.
        p.fill_checksum(&src, &dst);
        let mut all = Vec::new();
        all.extend_from_slice(&src.octets());
        all.extend_from_slice(&dst.octets());
        all.extend_from_slice(&[0, 0, 0, 11, 0, 0, 0, 58]);
        all.extend_from_slice(&m);
        assert_eq!(ip::sum(&all), 0xffff);
        // Shorter than 8 bytes: the second word and data read as nothing, never a panic.
        let short = Icmpv6Packet::new_checked(&m[..5]).expect("4 bytes");
        assert_eq!(
            (short.rest(), short.echo_ident(), short.data().len()),
            (0, 0, 0)
        );
        assert!(v6::is_error(2) && !v6::is_error(128));
    }
}
