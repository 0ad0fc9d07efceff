//! Ethernet II frames, with at most one 802.1Q tag.

use super::{be16, WireError};
use crate::wire::MacAddr;

/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Length of an Ethernet header without tag.
pub const ETH_HEADER_LEN: usize = 14;
/// Length of one 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// Where the fields are.
pub mod field {
    use std::ops::Range;
    /// Destination address.
    pub const DST: Range<usize> = 0..6;
    /// Source address.
    pub const SRC: Range<usize> = 6..12;
    /// EtherType (0x8100 when a tag follows).
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// The tag's control information (PCP, DEI, VLAN id), if tagged.
    pub const TCI: Range<usize> = 14..16;
    /// The payload's EtherType, if tagged.
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
}

/// An Ethernet header read in two 8-byte loads: destination and source MAC as numbers
/// (the 48 bits of [`MacAddr::to_u64`]) and the VLAN id if the frame is 802.1Q-tagged
/// (`Some(0)` for a priority tag). `None` if the frame is too short for its header (14
/// bytes, 18 when tagged): the switch's per-frame parse.
#[inline]
pub fn ethernet_macs(frame: &[u8]) -> Option<(u64, u64, Option<u16>)> {
    let h: &[u8; 14] = frame.get(..ETH_HEADER_LEN)?.try_into().ok()?;
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, t0, t1] = *h;
    let dst = u64::from_be_bytes([0, 0, d0, d1, d2, d3, d4, d5]);
    let src = u64::from_be_bytes([0, 0, s0, s1, s2, s3, s4, s5]);
    if u16::from_be_bytes([t0, t1]) != ETHERTYPE_VLAN {
        return Some((dst, src, None));
    }
    let tci = frame.get(ETH_HEADER_LEN..ETH_HEADER_LEN + VLAN_TAG_LEN)?;
    Some((
        dst,
        src,
        Some(u16::from_be_bytes([tci[0], tci[1]]) & 0x0fff),
    ))
}

/// True if the MAC number `mac` ([`MacAddr::to_u64`]) is a group (multicast or broadcast)
/// address.
#[inline]
pub fn is_multicast_u64(mac: u64) -> bool {
    mac & (1 << 40) != 0
}

/// A view of an Ethernet II frame, possibly carrying one 802.1Q tag.
#[derive(Debug)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// View `buffer` as a frame without checking its length; getters may then panic. Use
    /// only on bytes already checked.
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// View `buffer` as a frame: it must hold an Ethernet header, and a whole tag if the
    /// EtherType says one follows.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < ETH_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let f = EthernetFrame { buffer };
        if f.ethertype() == ETHERTYPE_VLAN
            && f.buffer.as_ref().len() < ETH_HEADER_LEN + VLAN_TAG_LEN
        {
            return Err(WireError::Truncated);
        }
        Ok(f)
    }

    #[inline]
    fn mac(&self, r: std::ops::Range<usize>) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[r]);
        MacAddr(m)
    }

    #[inline]
    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        be16(self.buffer.as_ref(), r.start)
    }

    /// Length of the header: 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.ethertype() == ETHERTYPE_VLAN {
            ETH_HEADER_LEN + VLAN_TAG_LEN
        } else {
            ETH_HEADER_LEN
        }
    }

    /// The bytes after the header (and tag).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// The bytes viewed.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        self.mac(field::DST)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        self.mac(field::SRC)
    }

    /// The outer EtherType (0x8100 for a tagged frame).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        self.u16_at(field::ETHERTYPE)
    }

    /// The VLAN id of the tag, if the frame is tagged (0 means priority-tagged only).
    #[inline]
    pub fn vlan(&self) -> Option<u16> {
        (self.ethertype() == ETHERTYPE_VLAN).then(|| self.u16_at(field::TCI) & 0x0fff)
    }

    /// The EtherType of the payload (after the tag, if any).
    #[inline]
    pub fn payload_ethertype(&self) -> u16 {
        if self.ethertype() == ETHERTYPE_VLAN {
            self.u16_at(field::INNER_ETHERTYPE)
        } else {
            self.ethertype()
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Set the destination address.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Set the source address.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Set the outer EtherType. Setting or clearing 0x8100 changes where the payload
    /// starts: only on a buffer long enough for a tag.
    #[inline]
    pub fn set_ethertype(&mut self, ty: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&ty.to_be_bytes());
    }

    /// Swap source and destination (a reply to the sender).
    #[inline]
    pub fn swap_addresses(&mut self) {
        let (dst, src) = (self.dst(), self.src());
        self.set_dst(src);
        self.set_src(dst);
    }
}

/// Remove the 802.1Q tag of a tagged frame in place: the addresses move forward over the tag.
/// `frame` must be a checked, tagged frame; returns the new start offset (4).
#[inline]
pub fn strip_vlan_in_place(frame: &mut [u8]) -> usize {
    frame.copy_within(0..12, VLAN_TAG_LEN);
    VLAN_TAG_LEN
}

/// Write an 802.1Q tag for `vlan` into a frame that was just grown by 4 bytes at the front:
/// the addresses move back to the new start and the tag follows them.
#[inline]
pub fn insert_vlan_in_place(frame: &mut [u8], vlan: u16) {
    frame.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + 12, 0);
    frame[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
    frame[14..16].copy_from_slice(&(vlan & 0x0fff).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_short_prefix_is_refused_and_setters_round_trip() {
        let mut b = [0u8; 18];
        b[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        b[14..16].copy_from_slice(&7u16.to_be_bytes());
        b[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
        for n in 0..b.len() {
            assert_eq!(
                EthernetFrame::new_checked(&b[..n]).err(),
                Some(WireError::Truncated),
                "{n} bytes"
            );
        }
        let mut f = EthernetFrame::new_checked(&mut b[..]).expect("tagged header");
        assert_eq!(
            (f.header_len(), f.vlan(), f.payload_ethertype()),
            (18, Some(7), 0x0800)
        );
        f.set_dst(MacAddr([2, 0, 0, 0, 0, 9]));
        f.set_src(MacAddr([2, 0, 0, 0, 0, 8]));
        f.swap_addresses();
        assert_eq!(f.dst(), MacAddr([2, 0, 0, 0, 0, 8]));
        assert_eq!(f.src(), MacAddr([2, 0, 0, 0, 0, 9]));
        f.set_ethertype(0x0806);
        assert_eq!(
            (f.header_len(), f.vlan(), f.payload_ethertype()),
            (14, None, 0x0806)
        );
        assert_eq!(f.payload().len(), 4);
    }

    #[test]
    fn checked_view_rejects_truncated_frames() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).err(),
            Some(WireError::Truncated)
        );
        let mut tagged = [0u8; 17];
        tagged[12] = 0x81;
        assert_eq!(
            EthernetFrame::new_checked(&tagged[..]).err(),
            Some(WireError::Truncated)
        );
        let f = EthernetFrame::new_checked(&[0u8; 14][..]).expect("header fits");
        assert_eq!(f.vlan(), None);
    }

    /// The switch's two-load parse agrees with the checked view on every length and
    /// tag, and refuses exactly what it refuses.
    #[test]
    fn ethernet_macs_agrees_with_the_checked_view() {
        let mut x: u32 = 0x1234_5678;
        for round in 0..4000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = (x % 24) as usize;
            let mut b: Vec<u8> = (0..len).map(|i| (x >> (i % 24)) as u8 ^ i as u8).collect();
            if round % 2 == 0 && len >= 14 {
                b[12..14].copy_from_slice(&[0x81, 0x00]);
            }
            let fast = ethernet_macs(&b);
            match EthernetFrame::new_checked(&b[..]) {
                Ok(f) => {
                    let want = (f.dst().to_u64(), f.src().to_u64(), f.vlan());
                    assert_eq!(fast, Some(want), "{b:02x?}");
                    assert_eq!(is_multicast_u64(want.0), f.dst().is_multicast());
                    assert_eq!(is_multicast_u64(want.1), f.src().is_multicast());
                }
                Err(_) => assert_eq!(fast, None, "{b:02x?}"),
            }
        }
    }

    #[test]
    fn reads_fields_and_tags() {
        let mut b = [0u8; 18];
        b[0..6].copy_from_slice(&[0xff; 6]);
        b[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        b[12..14].copy_from_slice(&[0x81, 0x00]);
        b[14..16].copy_from_slice(&[0x20, 0x0a]); // PCP 1, VLAN 10
        b[16..18].copy_from_slice(&[0x08, 0x06]);
        let f = EthernetFrame::new_checked(&b[..]).expect("valid");
        assert!(f.dst().is_multicast());
        assert_eq!(f.src().to_string(), "02:00:00:00:00:01");
        assert_eq!(f.vlan(), Some(10));
        assert_eq!(f.payload_ethertype(), 0x0806);
        assert_eq!(MacAddr::from_u64(f.src().to_u64()), f.src());
    }

    #[test]
    fn tag_strip_and_insert_round_trip() {
        let orig: Vec<u8> = (0..20).collect();
        let mut grown = vec![0u8; 4];
        grown.extend_from_slice(&orig);
        insert_vlan_in_place(&mut grown, 42);
        assert_eq!(&grown[0..12], &orig[0..12]);
        assert_eq!(&grown[12..16], &[0x81, 0x00, 0x00, 42]);
        assert_eq!(&grown[16..], &orig[12..]);
        let off = strip_vlan_in_place(&mut grown);
        assert_eq!(&grown[off..], &orig[..]);
    }
}
