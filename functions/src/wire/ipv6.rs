//! IPv6 fixed headers (RFC 8200). Extension headers are not walked: the payload starts
//! after the 40-byte fixed header and `next_header` names what is there.

use std::net::Ipv6Addr;

use super::{be16, be32, WireError};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// Where the fields are.
pub mod field {
    use std::ops::Range;
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    /// Length of what follows the fixed header.
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    /// Type of the next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: Range<usize> = 8..24;
    /// Destination address.
    pub const DST: Range<usize> = 24..40;
}

/// A view of an IPv6 datagram.
///
/// [`new_checked`](Self::new_checked) refuses fewer than 40 bytes ([`WireError::Truncated`])
/// and a version other than 6 or a payload length that runs past the buffer
/// ([`WireError::Malformed`]). After it no getter can panic.
#[derive(Debug)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// View `buffer` without checking it; getters may then panic.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// View `buffer` as an IPv6 datagram (see the type's checks).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = Ipv6Packet { buffer };
        if p.version() != 6 || HEADER_LEN + usize::from(p.payload_len()) > len {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    /// The bytes viewed.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn first_word(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW.start)
    }

    /// Version (6 for a checked view).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.first_word() >> 28) as u8
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.first_word() >> 20) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.first_word() & 0x000f_ffff
    }

    /// Length of what follows the fixed header.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN.start)
    }

    /// Type of the header after the fixed header (a transport protocol number, or an
    /// extension header).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    fn addr(&self, r: std::ops::Range<usize>) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[r]);
        Ipv6Addr::from(a)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        self.addr(field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        self.addr(field::DST)
    }

    /// What follows the fixed header, up to the payload length or the end of the buffer,
    /// whichever comes first (the same for a checked view).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(b.len());
        &b[HEADER_LEN.min(end)..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Set the hop limit (IPv6 has no header checksum).
    #[inline]
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = h;
    }

    /// Set the next header.
    #[inline]
    pub fn set_next_header(&mut self, n: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = n;
    }

    /// Set the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = (self.first_word() & !0x0ff0_0000) | (u32::from(tc) << 20);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Set the flow label (its low 20 bits).
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let w = (self.first_word() & !0x000f_ffff) | (label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram() -> [u8; 48] {
        let mut d = [0u8; 48];
        d[0..4].copy_from_slice(&0x6ab1_2345u32.to_be_bytes());
        d[4..6].copy_from_slice(&8u16.to_be_bytes());
        d[6] = 17;
        d[7] = 64;
        d[8..24].copy_from_slice(&"fe80::1".parse::<Ipv6Addr>().expect("addr").octets());
        d[24..40].copy_from_slice(&"ff02::2".parse::<Ipv6Addr>().expect("addr").octets());
        d
    }

    #[test]
    fn every_short_prefix_and_bad_lengths_are_refused() {
        let d = datagram();
        for n in 0..d.len() {
            assert!(Ipv6Packet::new_checked(&d[..n]).is_err(), "{n} bytes");
        }
        let mut v4 = d;
        v4[0] = 0x4a;
        assert_eq!(
            Ipv6Packet::new_checked(&v4[..]).err(),
            Some(WireError::Malformed)
        );
        let mut long = d;
        long[4..6].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(
            Ipv6Packet::new_checked(&long[..]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn getters_and_setters_round_trip() {
        let mut d = datagram();
        let mut p = Ipv6Packet::new_checked(&mut d[..]).expect("valid");
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0xab, 0x12345)
        );
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (8, 17, 64)
        );
        assert_eq!(p.src_addr().to_string(), "fe80::1");
        assert_eq!(p.dst_addr().to_string(), "ff02::2");
        assert_eq!(p.payload().len(), 8);
        p.set_hop_limit(1);
        p.set_next_header(58);
        p.set_traffic_class(0x12);
        p.set_flow_label(0xfffff);
        p.set_src_addr(Ipv6Addr::LOCALHOST);
        p.set_dst_addr(Ipv6Addr::UNSPECIFIED);
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0x12, 0xfffff)
        );
        assert_eq!((p.hop_limit(), p.next_header()), (1, 58));
        assert_eq!(
            (p.src_addr(), p.dst_addr()),
            (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED)
        );
    }
}
