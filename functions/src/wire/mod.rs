//! Zero-copy views over frame bytes, one layer for every function (smoltcp's `wire` is the
//! model).
//!
//! Each header has a view over any `T: AsRef<[u8]>`: `new_checked` verifies once what its
//! getters need (lengths, and for IP the length fields against the buffer), after which no
//! getter can panic, whatever the bytes hold; field positions are named `Range<usize>` (or
//! `usize` for one byte) constants in the module's `field`; setters exist on
//! `T: AsMut<[u8]>` where functions write. Views keep no copy and allocate nothing.
//!
//! | module | view |
//! | --- | --- |
//! | [`ethernet`] | [`EthernetFrame`] (Ethernet II, at most one 802.1Q tag), the switch's two-load parse |
//! | [`arp`] | [`ArpPacket`] (Ethernet/IPv4) |
//! | [`ipv4`] | [`Ipv4Packet`] |
//! | [`ipv6`] | [`Ipv6Packet`] (the fixed header) |
//! | [`udp`] | [`UdpPacket`] |
//! | [`tcp`] | [`TcpPacket`], and [`Ports`]: the two ports TCP and UDP start with |
//! | [`icmp`] | [`Icmpv4Packet`], [`Icmpv6Packet`] (type, code, checksum) |
//!
//! [`classify`] finds where a packet's headers are once and records it in the packet's
//! metadata ([`nfv_dataplane::Offsets`]): the next node that asks gets the record back
//! without parsing (a firewall before a NAT reads each packet once). The record is
//! [`Headers`].

pub mod arp;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use arp::ArpPacket;
pub use ethernet::{
    ethernet_macs, insert_vlan_in_place, is_multicast_u64, strip_vlan_in_place, EthernetFrame,
    ETHERTYPE_VLAN, ETH_HEADER_LEN, VLAN_TAG_LEN,
};
pub use icmp::{Icmpv4Packet, Icmpv6Packet};
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use tcp::{Ports, TcpPacket};
pub use udp::UdpPacket;

/// The MAC address type lives in `nfv-dataplane`; this keeps `wire::MacAddr` paths working.
pub use nfv_dataplane::MacAddr;

use nfv_dataplane::{DropReason, Offsets, Packet};

use crate::ip::{ETHERTYPE_ARP, ETHERTYPE_IPV4};

/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Why bytes cannot be viewed as a header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than its header.
    Truncated,
    /// A length or version field that does not fit the buffer or the protocol.
    Malformed,
}

/// A big-endian u16 at `at`.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// A big-endian u32 at `at`.
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// What a frame's network layer is, as [`classify`] found it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum L3 {
    /// Shorter than an Ethernet header.
    Short = 1,
    /// An EtherType nfv does not read, or a tag cut short.
    Other = 2,
    /// ARP (the message itself is checked by [`crate::arp::parse`]).
    Arp = 3,
    /// IPv4 whose header passed [`Ipv4Packet::new_checked`] and whose checksum is right.
    Ipv4 = 4,
    /// IPv6 whose fixed header passed [`Ipv6Packet::new_checked`].
    Ipv6 = 5,
    /// IPv4 EtherType but fewer than 20 bytes after the Ethernet header.
    Ipv4Runt = 6,
    /// IPv4 with a wrong version, header length or total length.
    Ipv4Malformed = 7,
    /// IPv4 with a wrong header checksum.
    Ipv4BadChecksum = 8,
    /// IPv6 EtherType but fewer than 40 bytes after the Ethernet header.
    Ipv6Runt = 9,
    /// IPv6 with a wrong version or a payload length past the frame.
    Ipv6Malformed = 10,
}

impl L3 {
    #[inline]
    fn from_code(c: u8) -> Option<L3> {
        Some(match c {
            1 => L3::Short,
            2 => L3::Other,
            3 => L3::Arp,
            4 => L3::Ipv4,
            5 => L3::Ipv6,
            6 => L3::Ipv4Runt,
            7 => L3::Ipv4Malformed,
            8 => L3::Ipv4BadChecksum,
            9 => L3::Ipv6Runt,
            10 => L3::Ipv6Malformed,
            _ => return None,
        })
    }

    /// Why a malformed IP header is dropped (`runt`, `bad_header`, `bad_checksum`, as a
    /// router drops it); `None` for the other kinds.
    #[inline]
    pub fn error(self) -> Option<DropReason> {
        match self {
            L3::Ipv4Runt | L3::Ipv6Runt => Some(DropReason::Runt),
            L3::Ipv4Malformed | L3::Ipv6Malformed => Some(DropReason::BadHeader),
            L3::Ipv4BadChecksum => Some(DropReason::BadChecksum),
            _ => None,
        }
    }
}

/// Marks a tagged frame in the carried kind byte.
const TAGGED: u8 = 0x80;

/// Where a frame's headers are: what [`classify`] finds and carries on the packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// What the network layer is.
    pub l3: L3,
    /// Offset of the network header (after the Ethernet header and tag).
    pub l3_off: usize,
    /// Offset of the transport header: after the IPv4 header and its options, or the IPv6
    /// fixed header; `l3_off` for other kinds.
    pub l4_off: usize,
    /// The transport protocol (IPv4 protocol, IPv6 next header; 0 for other kinds).
    pub proto: u8,
    /// True if the frame has an 802.1Q tag (`l3_off` is then 18).
    pub tagged: bool,
}

impl Headers {
    /// Find the headers of `frame`: the Ethernet header and tag, and for IPv4 and IPv6 the
    /// network header's checks (for IPv4 its checksum too). Reads every byte of an IPv4
    /// header once; allocates nothing.
    #[inline(always)]
    pub fn parse(frame: &[u8]) -> Headers {
        let mut h = Headers {
            l3: L3::Short,
            l3_off: 0,
            l4_off: 0,
            proto: 0,
            tagged: false,
        };
        // The EtherType is read once, and the inner one of a tagged frame (what
        // `EthernetFrame::new_checked` and its getters check, without reading it again:
        // this is every packet's first parse).
        let Some(header) = frame.first_chunk::<ETH_HEADER_LEN>() else {
            return h;
        };
        let mut ethertype = u16::from_be_bytes([header[12], header[13]]);
        h.l3_off = ETH_HEADER_LEN;
        if ethertype == ETHERTYPE_VLAN {
            h.tagged = true;
            let Some(inner) = frame.get(ETH_HEADER_LEN + 2..ETH_HEADER_LEN + VLAN_TAG_LEN) else {
                // A tag cut short: nothing after it is read.
                h.l3 = L3::Other;
                h.l4_off = ETH_HEADER_LEN;
                return h;
            };
            ethertype = u16::from_be_bytes([inner[0], inner[1]]);
            h.l3_off = ETH_HEADER_LEN + VLAN_TAG_LEN;
        }
        h.l4_off = h.l3_off;
        let net = &frame[h.l3_off..];
        match ethertype {
            ETHERTYPE_IPV4 => match Ipv4Packet::new_checked(net) {
                Ok(ip) if ip.verify_checksum() => {
                    h.l3 = L3::Ipv4;
                    h.l4_off = h.l3_off + ip.header_len();
                    h.proto = ip.protocol();
                }
                Ok(_) => h.l3 = L3::Ipv4BadChecksum,
                Err(WireError::Truncated) => h.l3 = L3::Ipv4Runt,
                Err(WireError::Malformed) => h.l3 = L3::Ipv4Malformed,
            },
            ETHERTYPE_IPV6 => match Ipv6Packet::new_checked(net) {
                Ok(ip) => {
                    h.l3 = L3::Ipv6;
                    h.l4_off = h.l3_off + ipv6::HEADER_LEN;
                    h.proto = ip.next_header();
                }
                Err(WireError::Truncated) => h.l3 = L3::Ipv6Runt,
                Err(WireError::Malformed) => h.l3 = L3::Ipv6Malformed,
            },
            ETHERTYPE_ARP => h.l3 = L3::Arp,
            _ => h.l3 = L3::Other,
        }
        h
    }

    /// The record as the packet carries it.
    #[inline]
    pub fn offsets(&self) -> Offsets {
        Offsets {
            // Both fit: at most 18 + 60.
            l3: self.l3_off as u8,
            l4: self.l4_off as u8,
            kind: self.l3 as u8 | if self.tagged { TAGGED } else { 0 },
            proto: self.proto,
        }
    }

    /// The record a packet carries, if it carries one.
    #[inline]
    pub fn from_offsets(o: Offsets) -> Option<Headers> {
        Some(Headers {
            l3: L3::from_code(o.kind & !TAGGED)?,
            l3_off: usize::from(o.l3),
            l4_off: usize::from(o.l4),
            proto: o.proto,
            tagged: o.kind & TAGGED != 0,
        })
    }

    /// True if the frame is untagged IPv4 with a good header.
    #[inline]
    pub fn is_untagged_ipv4(&self) -> bool {
        self.l3 == L3::Ipv4 && !self.tagged
    }

    /// The IPv4 datagram of `frame` (the frame these headers were found in), if it is one.
    /// The view is checked again (a few comparisons, not the checksum), so a record that no
    /// longer fits its frame gives `None`, never a panic.
    #[inline]
    pub fn ipv4<'a>(&self, frame: &'a [u8]) -> Option<Ipv4Packet<&'a [u8]>> {
        if self.l3 != L3::Ipv4 {
            return None;
        }
        Ipv4Packet::new_checked(frame.get(self.l3_off..)?).ok()
    }

    /// [`ipv4`](Self::ipv4), writable.
    #[inline]
    pub fn ipv4_mut<'a>(&self, frame: &'a mut [u8]) -> Option<Ipv4Packet<&'a mut [u8]>> {
        if self.l3 != L3::Ipv4 {
            return None;
        }
        Ipv4Packet::new_checked(frame.get_mut(self.l3_off..)?).ok()
    }

    /// The IPv6 datagram of `frame`, if it is one (checked again, as for [`ipv4`](Self::ipv4)).
    #[inline]
    pub fn ipv6<'a>(&self, frame: &'a [u8]) -> Option<Ipv6Packet<&'a [u8]>> {
        if self.l3 != L3::Ipv6 {
            return None;
        }
        Ipv6Packet::new_checked(frame.get(self.l3_off..)?).ok()
    }
}

/// Where `pkt`'s headers are: the record the packet carries if a node before found it, else
/// found now (see [`Headers::parse`]) and recorded on the packet for the nodes after.
/// Idempotent, and free the second time.
///
/// The record stays valid while nodes rewrite fields in place and keep checksums right;
/// the packet forgets it when its extent changes ([`Packet::push_front`],
/// [`Packet::pull_front`], [`Packet::set_len`], [`Packet::set_frame`]), and a node that
/// rewrites headers into another layout in place calls [`forget`].
#[inline(always)]
pub fn classify(pkt: &mut Packet) -> Headers {
    if let Some(h) = Headers::from_offsets(pkt.meta.offsets) {
        return h;
    }
    let h = Headers::parse(pkt.data());
    pkt.meta.offsets = h.offsets();
    h
}

/// Forget the headers `pkt` carries (after rewriting them into another layout in place).
#[inline]
pub fn forget(pkt: &mut Packet) {
    pkt.meta.offsets = Offsets::UNPARSED;
}

/// Run every view's checked constructor over `bytes` (and, where it succeeds, every getter),
/// and [`Headers::parse`] with the views it leads to. For the fuzz target and the tests:
/// it must not panic on any input.
#[doc(hidden)]
pub fn exercise(bytes: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut add = |v: u64| acc = acc.wrapping_mul(31).wrapping_add(v);
    if let Ok(f) = EthernetFrame::new_checked(bytes) {
        add(f.dst().to_u64() ^ f.src().to_u64());
        add(u64::from(f.ethertype()) + u64::from(f.payload_ethertype()));
        add(f.vlan().map_or(0, u64::from) + f.header_len() as u64 + f.payload().len() as u64);
    }
    add(ethernet_macs(bytes).map_or(0, |(d, s, v)| d ^ s ^ v.map_or(1, u64::from)));
    if let Ok(a) = ArpPacket::new_checked(bytes) {
        add(u64::from(a.htype()) + u64::from(a.ptype()) + u64::from(a.hlen() ^ a.plen()));
        add(u64::from(a.oper()) + u64::from(a.spa()) + u64::from(a.tpa()));
        add(a.sha().to_u64() ^ a.tha().to_u64() ^ u64::from(a.is_ethernet_ipv4()));
    }
    for ip in [
        Ipv4Packet::new_checked(bytes),
        Ipv4Packet::new_quoted(bytes),
    ]
    .into_iter()
    .flatten()
    {
        add(u64::from(ip.version()) + ip.header_len() as u64 + u64::from(ip.dscp_ecn()));
        add(u64::from(ip.total_len()) + u64::from(ip.ident()) + u64::from(ip.flags_frag()));
        add(u64::from(ip.dont_frag()) + u64::from(ip.more_frags()) + u64::from(ip.is_fragment()));
        add(u64::from(ip.frag_offset()) + u64::from(ip.ttl()) + u64::from(ip.protocol()));
        add(u64::from(ip.checksum()) + u64::from(ip.src_addr()) + u64::from(ip.dst_addr()));
        add(u64::from(ip.verify_checksum()) + ip.header().len() as u64 + ip.payload().len() as u64);
    }
    if let Ok(ip) = Ipv6Packet::new_checked(bytes) {
        add(u64::from(ip.version()) + u64::from(ip.traffic_class()) + u64::from(ip.flow_label()));
        add(u64::from(ip.payload_len()) + u64::from(ip.next_header()) + u64::from(ip.hop_limit()));
        add(u64::from(ip.src_addr().octets()[15]) + u64::from(ip.dst_addr().octets()[0]));
        add(ip.payload().len() as u64);
    }
    for ip in [
        Ipv6Packet::new_checked(bytes),
        Ipv6Packet::new_quoted(bytes),
    ]
    .into_iter()
    .flatten()
    {
        match ip.upper_layer() {
            Ok(u) => {
                assert!(u.offset >= ipv6::HEADER_LEN && u.offset <= bytes.len());
                add(u64::from(u.proto) + u.offset as u64 + u64::from(u.ext_headers));
                add(u.fragment.map_or(1, u64::from) + u64::from(u.is_later_fragment()));
            }
            Err(e) => add(e as u64),
        }
    }
    if let Ok(u) = UdpPacket::new_checked(bytes) {
        add(u64::from(u.src_port()) + u64::from(u.dst_port()) + u64::from(u.len()));
        add(u64::from(u.checksum()) + u64::from(u.is_empty()) + u.payload().len() as u64);
        add(u64::from(u.verify_checksum(0x0a00_0001, 0x0a00_0002)));
    }
    if let Ok(t) = TcpPacket::new_checked(bytes) {
        add(u64::from(t.src_port()) + u64::from(t.dst_port()) + u64::from(t.seq_number()));
        add(u64::from(t.ack_number()) + t.header_len() as u64 + u64::from(t.flags()));
        add(u64::from(t.window()) + u64::from(t.checksum()) + u64::from(t.urgent()));
        add(t.payload().len() as u64 + u64::from(t.verify_checksum(0x0a00_0001, 0x0a00_0002)));
    }
    if let Ok(p) = Ports::new_checked(bytes) {
        add(u64::from(p.src_port()) + u64::from(p.dst_port()));
    }
    if let Ok(m) = Icmpv4Packet::new_checked(bytes) {
        add(u64::from(m.msg_type()) + u64::from(m.code()) + u64::from(m.checksum()));
        add(u64::from(m.rest()) + u64::from(m.echo_ident()) + u64::from(m.echo_seq()));
        add(u64::from(m.verify_checksum()) + m.data().len() as u64);
    }
    if let Ok(m) = Icmpv6Packet::new_checked(bytes) {
        add(u64::from(m.msg_type()) + u64::from(m.code()) + u64::from(m.checksum()));
        add(m.body().len() as u64);
        add(u64::from(m.rest()) + u64::from(m.echo_ident()) + m.data().len() as u64);
        let a = std::net::Ipv6Addr::LOCALHOST;
        add(u64::from(m.verify_checksum(&a, &a)) + m.len() as u64);
    }
    let h = Headers::parse(bytes);
    add(h.l3 as u64 + h.l3_off as u64 + h.l4_off as u64 + u64::from(h.proto));
    assert_eq!(Headers::from_offsets(h.offsets()), Some(h));
    if let Some(ip) = h.ipv4(bytes) {
        add(ip.payload().len() as u64);
    }
    if let Some(ip) = h.ipv6(bytes) {
        add(ip.payload().len() as u64);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testframes::*;

    #[test]
    fn classify_finds_each_kind_and_its_offsets() {
        let udp = udp("10.0.0.2", 5000, "8.8.8.8", 53, b"hi", true);
        let h = Headers::parse(&udp);
        assert_eq!((h.l3, h.l3_off, h.l4_off, h.proto), (L3::Ipv4, 14, 34, 17));
        assert!(h.is_untagged_ipv4());
        assert_eq!(Headers::parse(&udp[..13]).l3, L3::Short);
        assert_eq!(Headers::parse(&udp[..20]).l3, L3::Ipv4Runt);
        assert_eq!(Headers::parse(&udp[..40]).l3, L3::Ipv4Malformed);
        let mut bad = udp.clone();
        bad[14 + 12] ^= 1;
        assert_eq!(Headers::parse(&bad).l3, L3::Ipv4BadChecksum);
        assert_eq!(L3::Ipv4BadChecksum.error(), Some(DropReason::BadChecksum));
        let mut arp = udp.clone();
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert_eq!(Headers::parse(&arp).l3, L3::Arp);
        // Tagged: the same datagram four bytes further on.
        let mut tagged = udp[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&udp[12..]);
        let h = Headers::parse(&tagged);
        assert_eq!(
            (h.l3, h.l3_off, h.l4_off, h.tagged),
            (L3::Ipv4, 18, 38, true)
        );
        assert!(!h.is_untagged_ipv4());
        let h = Headers::parse(&tagged[..16]);
        assert_eq!((h.l3, h.tagged), (L3::Other, true));
        // IPv6: a fixed header and 8 bytes of UDP.
        let mut v6 = udp[..14].to_vec();
        v6[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let mut ip6 = [0u8; 48];
        ip6[0] = 0x60;
        ip6[4..6].copy_from_slice(&8u16.to_be_bytes());
        ip6[6] = 17;
        v6.extend_from_slice(&ip6);
        let h = Headers::parse(&v6);
        assert_eq!((h.l3, h.l4_off, h.proto), (L3::Ipv6, 54, 17));
        assert!(h.ipv6(&v6).is_some());
        assert_eq!(Headers::parse(&v6[..40]).l3, L3::Ipv6Runt);
        assert_eq!(Headers::parse(&v6[..60]).l3, L3::Ipv6Malformed);
        // Every record survives the trip through the packet's four bytes.
        for f in [
            &udp[..],
            &udp[..13],
            &bad,
            &arp,
            &tagged,
            &tagged[..16],
            &v6,
        ] {
            let h = Headers::parse(f);
            assert_eq!(Headers::from_offsets(h.offsets()), Some(h));
        }
        assert_eq!(Headers::from_offsets(Offsets::UNPARSED), None);
    }

    /// A second `classify` takes the record the packet carries and does not parse: bytes
    /// changed behind its back (so that a parse would say something else) do not change
    /// the answer.
    #[test]
    fn classify_reuses_the_carried_offsets() {
        let udp = udp("10.0.0.2", 5000, "8.8.8.8", 53, b"hi", true);
        let mut pkt = Packet::from_bytes(&udp).expect("fits");
        assert!(!pkt.meta.offsets.is_parsed());
        let first = classify(&mut pkt);
        assert!(pkt.meta.offsets.is_parsed());
        assert_eq!(first.l3, L3::Ipv4);
        // Now an ARP EtherType and a broken checksum: a parse would not call it IPv4.
        pkt.data_mut()[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        pkt.data_mut()[14 + 10] ^= 0xff;
        assert_eq!(Headers::parse(pkt.data()).l3, L3::Arp);
        assert_eq!(classify(&mut pkt), first, "the carried record is used");
        forget(&mut pkt);
        assert_eq!(
            classify(&mut pkt).l3,
            L3::Arp,
            "parsed again once forgotten"
        );
        // A copy carries the record with it.
        let mut copy = Packet::from_bytes(&[]).expect("fits");
        assert!(copy.copy_from(&pkt));
        assert_eq!(copy.meta.offsets, pkt.meta.offsets);
    }

    /// Pushing and popping a VLAN tag (as the switch does) forgets the record, and the next
    /// classify finds the network header where it now is.
    #[test]
    fn vlan_push_and_pop_invalidate_the_offsets() {
        let udp = udp("10.0.0.2", 5000, "8.8.8.8", 53, b"hi", true);
        let mut pkt = Packet::from_bytes(&udp).expect("fits");
        assert_eq!(classify(&mut pkt).l3_off, 14);
        let frame = pkt.push_front(VLAN_TAG_LEN).expect("headroom");
        insert_vlan_in_place(frame, 7);
        assert!(!pkt.meta.offsets.is_parsed(), "push forgets");
        let h = classify(&mut pkt);
        assert_eq!(
            (h.l3, h.l3_off, h.l4_off, h.tagged),
            (L3::Ipv4, 18, 38, true)
        );
        let off = strip_vlan_in_place(pkt.data_mut());
        assert!(pkt.pull_front(off));
        assert!(!pkt.meta.offsets.is_parsed(), "pop forgets");
        let h = classify(&mut pkt);
        assert_eq!((h.l3, h.l3_off, h.tagged), (L3::Ipv4, 14, false));
        assert_eq!(pkt.data(), &udp[..]);
    }

    /// Every view's checked constructor and every getter, on every prefix of arbitrary
    /// bytes: no panic (the fuzz target `wire` does the same on its inputs).
    #[test]
    fn no_getter_panics_on_arbitrary_bytes() {
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..300 {
            let b: Vec<u8> = (0..80)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for n in 0..b.len() {
                exercise(&b[..n]);
            }
        }
    }
}
