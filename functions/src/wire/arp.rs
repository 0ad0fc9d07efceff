//! ARP messages for Ethernet and IPv4 (RFC 826). Reading and answering them is
//! [`crate::arp`]; this is the view of the bytes.

use super::{be16, be32, WireError};
use crate::wire::MacAddr;

/// Length of an Ethernet/IPv4 ARP message.
pub const PACKET_LEN: usize = 28;

/// Where the fields are (for 6-byte hardware and 4-byte protocol addresses).
pub mod field {
    use std::ops::Range;
    /// Hardware type (1: Ethernet).
    pub const HTYPE: Range<usize> = 0..2;
    /// Protocol type (0x0800: IPv4).
    pub const PTYPE: Range<usize> = 2..4;
    /// Hardware address length.
    pub const HLEN: usize = 4;
    /// Protocol address length.
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Range<usize> = 6..8;
    /// Sender hardware address.
    pub const SHA: Range<usize> = 8..14;
    /// Sender protocol address.
    pub const SPA: Range<usize> = 14..18;
    /// Target hardware address.
    pub const THA: Range<usize> = 18..24;
    /// Target protocol address.
    pub const TPA: Range<usize> = 24..28;
}

/// A view of an ARP message with Ethernet and IPv4 address sizes:
/// [`new_checked`](Self::new_checked) refuses fewer than 28 bytes (the address types are
/// read, not checked: see [`is_ethernet_ipv4`](Self::is_ethernet_ipv4)). After it no getter
/// can panic.
#[derive(Debug)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// View `buffer` without checking its length; getters and setters may then panic. Use
    /// only on a buffer sized for the message (to build one).
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// View `buffer` as an ARP message: it must hold 28 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        Ok(ArpPacket { buffer })
    }

    /// Hardware type.
    #[inline]
    pub fn htype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE.start)
    }

    /// Protocol type.
    #[inline]
    pub fn ptype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE.start)
    }

    /// Hardware address length.
    #[inline]
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    #[inline]
    pub fn plen(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// True if the message is for Ethernet and IPv4 (types 1 and 0x0800, lengths 6 and 4).
    #[inline]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.buffer.as_ref()[..6] == [0, 1, 8, 0, 6, 4]
    }

    /// Operation (1: request, 2: reply).
    #[inline]
    pub fn oper(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER.start)
    }

    #[inline]
    fn mac(&self, r: std::ops::Range<usize>) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[r]);
        MacAddr(m)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sha(&self) -> MacAddr {
        self.mac(field::SHA)
    }

    /// Sender protocol address.
    #[inline]
    pub fn spa(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SPA.start)
    }

    /// Target hardware address.
    #[inline]
    pub fn tha(&self) -> MacAddr {
        self.mac(field::THA)
    }

    /// Target protocol address.
    #[inline]
    pub fn tpa(&self) -> u32 {
        be32(self.buffer.as_ref(), field::TPA.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Write the Ethernet/IPv4 types and address lengths.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        self.buffer.as_mut()[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
    }

    /// Set the operation.
    #[inline]
    pub fn set_oper(&mut self, op: u16) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&op.to_be_bytes());
    }

    /// Set the sender hardware address.
    #[inline]
    pub fn set_sha(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&m.0);
    }

    /// Set the sender protocol address.
    #[inline]
    pub fn set_spa(&mut self, a: u32) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.to_be_bytes());
    }

    /// Set the target hardware address.
    #[inline]
    pub fn set_tha(&mut self, m: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&m.0);
    }

    /// Set the target protocol address.
    #[inline]
    pub fn set_tpa(&mut self, a: u32) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prefixes_are_refused_and_fields_round_trip() {
        let mut b = [0u8; PACKET_LEN];
        for n in 0..PACKET_LEN {
            assert!(ArpPacket::new_checked(&b[..n]).is_err());
        }
        let mut a = ArpPacket::new_checked(&mut b[..]).expect("fits");
        assert!(!a.is_ethernet_ipv4());
        a.set_ethernet_ipv4();
        a.set_oper(2);
        a.set_sha(MacAddr([2, 0, 0, 0, 0, 1]));
        a.set_spa(0x0a00_0001);
        a.set_tha(MacAddr([2, 0, 0, 0, 0, 2]));
        a.set_tpa(0x0a00_0002);
        assert!(a.is_ethernet_ipv4());
        assert_eq!(
            (a.htype(), a.ptype(), a.hlen(), a.plen(), a.oper()),
            (1, 0x0800, 6, 4, 2)
        );
        assert_eq!(
            (a.sha(), a.spa()),
            (MacAddr([2, 0, 0, 0, 0, 1]), 0x0a00_0001)
        );
        assert_eq!(
            (a.tha(), a.tpa()),
            (MacAddr([2, 0, 0, 0, 0, 2]), 0x0a00_0002)
        );
    }
}
