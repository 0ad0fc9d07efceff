//! IPv6 fixed headers (RFC 8200). The view's payload starts after the 40-byte fixed header
//! and `next_header` names what is there; [`Ipv6Packet::upper_layer`] walks the extension
//! headers (at most [`MAX_EXT_HEADERS`]) to the upper-layer header for those who need it.

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

/// Next-header values of the extension headers [`Ipv6Packet::upper_layer`] walks past, and
/// of ICMPv6 and "no next header".
pub mod next_header {
    /// Hop-by-hop options (only right after the fixed header).
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (RFC 4302; its length counts 4-byte words).
    pub const AUTH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No next header.
    pub const NO_NEXT: u8 = 59;
    /// Destination options.
    pub const DST_OPTS: u8 = 60;
}

/// Most extension headers [`Ipv6Packet::upper_layer`] walks: a longer chain is refused
/// ([`WireError::Malformed`]), so a crafted chain costs a bounded walk.
pub const MAX_EXT_HEADERS: usize = 8;

/// Length of a fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// Where a datagram's upper-layer header is, as [`Ipv6Packet::upper_layer`] found it past
/// the extension headers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol: the last header's next header (a transport protocol, 58
    /// for ICMPv6, 59 for none, or one that is not walked, like ESP).
    pub proto: u8,
    /// Offset of the upper-layer header from the start of the fixed header (at least 40;
    /// at most the end of the payload).
    pub offset: usize,
    /// The fragment header's offset (in 8-byte units) if the datagram is a fragment. A
    /// fragment whose offset is not 0 carries no upper-layer header: `offset` is then where
    /// its data starts and `proto` what the first fragment carries.
    pub fragment: Option<u16>,
    /// The fragment header's identification (0 without one).
    pub ident: u32,
    /// The fragment header's "more fragments" flag (false without one).
    pub more: bool,
    /// Extension headers walked past.
    pub ext_headers: u8,
}

impl UpperLayer {
    /// True for a fragment other than the first: it has no upper-layer header to read.
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        self.fragment.is_some_and(|o| o != 0)
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// View `buffer` as an IPv6 datagram that may be cut short, as an ICMPv6 error quotes
    /// one: at least the 40-byte fixed header and version 6, but the payload length is not
    /// checked against the buffer ([`payload`](Self::payload) is what the buffer holds).
    /// After it no getter can panic either.
    #[inline]
    pub fn new_quoted(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let p = Ipv6Packet { buffer };
        if p.version() != 6 {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    /// Walk the extension headers (hop-by-hop, routing, fragment, authentication,
    /// destination options) to the upper-layer header, within [`payload`](Self::payload).
    /// [`WireError::Truncated`] if a header runs past the payload; [`WireError::Malformed`]
    /// for more than [`MAX_EXT_HEADERS`] of them or a hop-by-hop header that is not the
    /// first. A fragment other than the first ends the walk at its fragment header. Reads
    /// two bytes of each header (eight of a fragment header); allocates nothing.
    pub fn upper_layer(&self) -> Result<UpperLayer, WireError> {
        use next_header::{AUTH, DST_OPTS, FRAGMENT, HOP_BY_HOP, ROUTING};
        let p = self.payload();
        let mut up = UpperLayer {
            proto: self.next_header(),
            offset: HEADER_LEN,
            fragment: None,
            ident: 0,
            more: false,
            ext_headers: 0,
        };
        let mut at = 0usize;
        loop {
            let len = match up.proto {
                HOP_BY_HOP if up.ext_headers != 0 => return Err(WireError::Malformed),
                HOP_BY_HOP | ROUTING | DST_OPTS | AUTH | FRAGMENT => {
                    if usize::from(up.ext_headers) == MAX_EXT_HEADERS {
                        return Err(WireError::Malformed);
                    }
                    let Some(&[_, hlen]) = p.get(at..at + 2).and_then(|b| b.first_chunk()) else {
                        return Err(WireError::Truncated);
                    };
                    match up.proto {
                        FRAGMENT => FRAGMENT_HEADER_LEN,
                        AUTH => (usize::from(hlen) + 2) * 4,
                        _ => (usize::from(hlen) + 1) * 8,
                    }
                }
                _ => return Ok(up),
            };
            let Some(h) = p.get(at..at + len) else {
                return Err(WireError::Truncated);
            };
            let was = up.proto;
            up.proto = h[0];
            up.ext_headers += 1;
            at += len;
            up.offset = HEADER_LEN + at;
            if was == FRAGMENT {
                let off = be16(h, 2) >> 3;
                up.fragment = Some(off);
                up.ident = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                up.more = h[3] & 1 != 0;
                if off != 0 {
                    return Ok(up);
                }
            }
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Set the version (6) and clear the traffic class and flow label.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let w = u32::from(v & 0x0f) << 28;
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Set the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }
}

/// The fixed header of a datagram a function makes (an ICMPv6 error, a TCP RST): traffic
/// class and flow label 0, no extension headers. For slow paths that build packets.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header (the payload's protocol).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Length of the payload.
    pub payload_len: u16,
}

impl Ipv6Repr {
    /// Length of the header it writes.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Write the header at the start of `packet` (a view over at least 40 bytes, made with
    /// [`Ipv6Packet::new_unchecked`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.set_version(6);
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

/// The IPv6 pseudo-header an upper-layer checksum covers (RFC 8200 §8.1): addresses, the
/// upper-layer length and next header, as an unfolded sum of 16-bit words (add the
/// message's [`crate::ip::sum`], then [`crate::ip::fold`]).
#[inline]
pub fn pseudo_header_sum(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: usize) -> u64 {
    let words = |a: &Ipv6Addr| a.segments().iter().map(|&w| u64::from(w)).sum::<u64>();
    let len = len as u64;
    words(src) + words(dst) + (len >> 16) + (len & 0xffff) + u64::from(next_header)
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

    /// A datagram whose payload is `chain` (its first header `first`).
    fn with_chain(first: u8, chain: &[u8]) -> Vec<u8> {
        let mut d = datagram()[..40].to_vec();
        d[4..6].copy_from_slice(&(chain.len() as u16).to_be_bytes());
        d[6] = first;
        d.extend_from_slice(chain);
        d
    }

    /// An options header (hop-by-hop, routing, destination) of `(units + 1) * 8` bytes.
    fn opts(next: u8, units: u8) -> Vec<u8> {
        let mut h = vec![0u8; (usize::from(units) + 1) * 8];
        h[0] = next;
        h[1] = units;
        h
    }

    #[test]
    fn upper_layer_walks_the_extension_headers() {
        use next_header::*;
        let udp = [0u8; 8];
        // None: the upper layer right after the fixed header.
        let d = with_chain(17, &udp);
        let up = Ipv6Packet::new_checked(&d[..]).expect("v6").upper_layer();
        assert_eq!(
            up,
            Ok(UpperLayer {
                proto: 17,
                offset: 40,
                fragment: None,
                ident: 0,
                more: false,
                ext_headers: 0
            })
        );
        // Hop-by-hop, routing (16 bytes), authentication ((1 + 2) * 4 = 12 bytes), a first
        // fragment, destination options, then TCP.
        let mut c = opts(ROUTING, 0);
        c.extend_from_slice(&opts(AUTH, 1));
        c.extend_from_slice(&[FRAGMENT, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        c.extend_from_slice(&[DST_OPTS, 0, 0, 1, 0, 0, 0, 9]);
        c.extend_from_slice(&opts(6, 0));
        c.extend_from_slice(&[0; 20]);
        let d = with_chain(HOP_BY_HOP, &c);
        let up = Ipv6Packet::new_checked(&d[..])
            .expect("v6")
            .upper_layer()
            .expect("walked");
        assert_eq!(
            (up.proto, up.offset, up.ext_headers),
            (6, 40 + 8 + 16 + 12 + 8 + 8, 5)
        );
        assert_eq!(up.fragment, Some(0));
        assert!(!up.is_later_fragment());
        // A later fragment stops the walk at its fragment header.
        let d = with_chain(FRAGMENT, &[17, 0, 0x01, 0x01, 0, 0, 0, 9, 0xaa, 0xbb]);
        let up = Ipv6Packet::new_checked(&d[..]).expect("v6").upper_layer();
        assert_eq!(
            up,
            Ok(UpperLayer {
                proto: 17,
                offset: 48,
                fragment: Some(0x20),
                ident: 9,
                more: true,
                ext_headers: 1
            })
        );
        assert!(up.is_ok_and(|u| u.is_later_fragment()));
        // No next header and protocols not walked end it too.
        for p in [NO_NEXT, 50, ICMPV6] {
            let d = with_chain(DST_OPTS, &opts(p, 0));
            let up = Ipv6Packet::new_checked(&d[..]).expect("v6").upper_layer();
            assert_eq!(up.map(|u| (u.proto, u.offset)), Ok((p, 48)));
        }
    }

    #[test]
    fn upper_layer_refuses_broken_and_long_chains() {
        use next_header::*;
        // Past the payload: a header cut short, or whose length runs past it.
        for chain in [&opts(17, 0)[..1], &opts(17, 2)[..16], &[FRAGMENT, 0, 0]] {
            let d = with_chain(DST_OPTS, chain);
            let p = Ipv6Packet::new_checked(&d[..]).expect("v6");
            assert_eq!(p.upper_layer(), Err(WireError::Truncated), "{chain:?}");
        }
        // Eight headers are walked, nine refused.
        let chain = |n: usize| {
            let mut c = Vec::new();
            for i in 0..n {
                c.extend_from_slice(&opts(if i + 1 == n { 17 } else { ROUTING }, 0));
            }
            with_chain(ROUTING, &c)
        };
        let d = chain(MAX_EXT_HEADERS);
        let up = Ipv6Packet::new_checked(&d[..]).expect("v6").upper_layer();
        assert_eq!(up.map(|u| u.ext_headers), Ok(8));
        let d = chain(MAX_EXT_HEADERS + 1);
        let p = Ipv6Packet::new_checked(&d[..]).expect("v6");
        assert_eq!(p.upper_layer(), Err(WireError::Malformed));
        // Hop-by-hop only first.
        let mut c = opts(HOP_BY_HOP, 0);
        c.extend_from_slice(&opts(17, 0));
        let d = with_chain(DST_OPTS, &c);
        let p = Ipv6Packet::new_checked(&d[..]).expect("v6");
        assert_eq!(p.upper_layer(), Err(WireError::Malformed));
        // A quote walks what it holds.
        let d = with_chain(DST_OPTS, &opts(17, 0));
        let q = Ipv6Packet::new_quoted(&d[..44]).expect("quoted");
        assert_eq!(q.upper_layer(), Err(WireError::Truncated));
        let q = Ipv6Packet::new_quoted(&d[..48]).expect("quoted");
        assert_eq!(q.upper_layer().map(|u| u.offset), Ok(48));
        assert!(
            Ipv6Packet::new_checked(&d[..44]).is_err(),
            "a quote is not a datagram"
        );
        assert_eq!(
            Ipv6Packet::new_quoted(&d[..39]).err(),
            Some(WireError::Truncated)
        );
        let mut v4 = d.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_quoted(&v4[..]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn a_repr_emits_a_header_the_view_reads_back() {
        let mut d = [0xffu8; 48];
        let repr = Ipv6Repr {
            src_addr: "2001:db8::1".parse().expect("addr"),
            dst_addr: "2001:db8::2".parse().expect("addr"),
            next_header: 6,
            hop_limit: 64,
            payload_len: 8,
        };
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut d[..]));
        let p = Ipv6Packet::new_checked(&d[..]).expect("v6");
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0, 0));
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (8, 6, 64)
        );
        assert_eq!((p.src_addr(), p.dst_addr()), (repr.src_addr, repr.dst_addr));
        // The pseudo-header sum, against the words written out.
        let mut words = Vec::new();
        words.extend_from_slice(&repr.src_addr.octets());
        words.extend_from_slice(&repr.dst_addr.octets());
        words.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 6]);
        let sum = pseudo_header_sum(&repr.src_addr, &repr.dst_addr, 6, 0x10002);
        assert_eq!(crate::ip::fold(sum), crate::ip::sum(&words));
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
