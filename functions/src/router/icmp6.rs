//! ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) messages as the router reads and
//! writes them: checksums over the IPv6 pseudo-header, echo replies made in place, errors
//! that quote the invoking packet, and the ND messages (solicitations, advertisements,
//! router advertisements with their prefix, MTU and RDNSS options of RFC 8106).
//!
//! Addresses are `u128` (big-endian: the first byte of the address is the top byte).
//! Builders write whole frames (Ethernet + IPv6 + ICMPv6) into a caller's buffer and return
//! their length; nothing here allocates.

use nfv_dataplane::Packet;

use crate::ip;
use crate::wire::{ipv6, MacAddr, ETHERTYPE_IPV6, ETH_HEADER_LEN};

/// Next-header number of ICMPv6.
pub use crate::ip::PROTO_ICMPV6;
/// Destination unreachable.
pub const DEST_UNREACHABLE: u8 = 1;
/// Packet too big.
pub const PACKET_TOO_BIG: u8 = 2;
/// Time exceeded.
pub const TIME_EXCEEDED: u8 = 3;
/// Parameter problem.
pub const PARAM_PROBLEM: u8 = 4;
/// Echo request.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ECHO_REPLY: u8 = 129;
/// Router solicitation.
pub const ROUTER_SOLICIT: u8 = 133;
/// Router advertisement.
pub const ROUTER_ADVERT: u8 = 134;
/// Neighbor solicitation.
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// Neighbor advertisement.
pub const NEIGHBOR_ADVERT: u8 = 136;
/// Redirect.
pub const REDIRECT: u8 = 137;

/// Destination unreachable: no route to the destination.
pub const CODE_NO_ROUTE: u8 = 0;
/// Destination unreachable: beyond the scope of the source address.
pub const CODE_BEYOND_SCOPE: u8 = 2;
/// Destination unreachable: address unreachable (neighbor discovery failed).
pub const CODE_ADDR_UNREACHABLE: u8 = 3;
/// Destination unreachable: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 4;

/// Hop limit of the packets the router makes (other than ND, which uses 255).
pub const HOP_LIMIT: u8 = 64;
/// Hop limit every ND message carries and must arrive with (RFC 4861 §7.1).
pub const ND_HOP_LIMIT: u8 = 255;
/// Largest ICMPv6 error: the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
pub const MIN_MTU: usize = 1280;

/// Neighbor advertisement flags.
pub const NA_ROUTER: u8 = 0x80;
/// Solicited.
pub const NA_SOLICITED: u8 = 0x40;
/// Override.
pub const NA_OVERRIDE: u8 = 0x20;

/// ND option: source link-layer address.
const OPT_SLL: u8 = 1;
/// ND option: target link-layer address.
const OPT_TLL: u8 = 2;
/// ND option: prefix information.
const OPT_PREFIX: u8 = 3;
/// ND option: MTU.
const OPT_MTU: u8 = 5;
/// ND option: recursive DNS servers (RFC 8106).
const OPT_RDNSS: u8 = 25;

/// All-nodes link-local multicast, ff02::1.
pub const ALL_NODES: u128 = 0xff02 << 112 | 1;
/// All-routers link-local multicast, ff02::2.
pub const ALL_ROUTERS: u128 = 0xff02 << 112 | 2;

/// The link-local address made from a MAC (modified EUI-64, RFC 4291 appendix A).
pub fn link_local(mac: MacAddr) -> u128 {
    let m = mac.0;
    let iid = [m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
    (0xfe80u128 << 112) | u128::from(u64::from_be_bytes(iid))
}

/// The solicited-node multicast address of `addr`: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1).
pub fn solicited_node(addr: u128) -> u128 {
    (0xff02u128 << 112) | (1 << 32) | (0xff << 24) | (addr & 0xff_ffff)
}

/// The Ethernet multicast address of an IPv6 multicast address: 33:33 and its last 32 bits
/// (RFC 2464 §7).
pub fn multicast_mac(addr: u128) -> MacAddr {
    let b = (addr as u32).to_be_bytes();
    MacAddr([0x33, 0x33, b[0], b[1], b[2], b[3]])
}

/// True for a link-local unicast address (fe80::/10), given as a `u128`.
#[inline]
pub fn is_link_local(a: u128) -> bool {
    std::net::Ipv6Addr::from(a).is_unicast_link_local()
}

/// True for a multicast address (ff00::/8).
pub fn is_multicast(a: u128) -> bool {
    a >> 120 == 0xff
}

/// The address read at `at` in `b` (which must hold 16 bytes there).
#[inline]
pub fn addr_at(b: &[u8], at: usize) -> Option<u128> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(u128::from_be_bytes(s))
}

/// The unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer message
/// of `len` bytes and protocol `next` ([`ipv6::pseudo_header_sum`] on `u128` addresses).
pub fn pseudo_sum(src: u128, dst: u128, len: usize, next: u8) -> u64 {
    ipv6::pseudo_header_sum(&src.into(), &dst.into(), next, len)
}

/// The ICMPv6 checksum of `msg` (its checksum field zero) from `src` to `dst`.
pub fn checksum(src: u128, dst: u128, msg: &[u8]) -> u16 {
    !ip::fold(pseudo_sum(src, dst, msg.len(), PROTO_ICMPV6) + u64::from(ip::sum(msg)))
}

/// True if `msg` (checksum field included) sums to zero with its pseudo-header.
pub fn checksum_ok(src: u128, dst: u128, msg: &[u8]) -> bool {
    ip::fold(pseudo_sum(src, dst, msg.len(), PROTO_ICMPV6) + u64::from(ip::sum(msg))) == 0xffff
}

/// The options of an ND message that the router reads.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NdOptions {
    /// Source link-layer address.
    pub sll: Option<MacAddr>,
    /// Target link-layer address.
    pub tll: Option<MacAddr>,
}

/// Read the options in `b`; `None` if one has length zero or runs past the end (RFC 4861
/// §7.1.1: the message is then invalid).
pub fn options(mut b: &[u8]) -> Option<NdOptions> {
    let mut o = NdOptions::default();
    while !b.is_empty() {
        let (&ty, &len) = (b.first()?, b.get(1)?);
        let n = usize::from(len) * 8;
        if n == 0 || n > b.len() {
            return None;
        }
        let mac = || -> Option<MacAddr> { Some(MacAddr(b.get(2..8)?.try_into().ok()?)) };
        match ty {
            OPT_SLL => o.sll = mac(),
            OPT_TLL => o.tll = mac(),
            _ => {}
        }
        b = &b[n..];
    }
    Some(o)
}

/// Write an Ethernet + IPv6 header for an ICMPv6 message of `len` bytes into `f` (which
/// holds at least 54 bytes); returns where the message starts.
fn headers(
    f: &mut [u8],
    (dst_mac, src_mac): (MacAddr, MacAddr),
    (src, dst): (u128, u128),
    hop_limit: u8,
    len: usize,
) -> usize {
    f[0..6].copy_from_slice(&dst_mac.0);
    f[6..12].copy_from_slice(&src_mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    let h = &mut f[ETH_HEADER_LEN..ETH_HEADER_LEN + ipv6::HEADER_LEN];
    h[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
    h[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    h[6] = PROTO_ICMPV6;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src.to_be_bytes());
    h[24..40].copy_from_slice(&dst.to_be_bytes());
    ETH_HEADER_LEN + ipv6::HEADER_LEN
}

/// Fill in the checksum of the message at `f[at..at + len]`.
fn seal(f: &mut [u8], at: usize, len: usize, src: u128, dst: u128) {
    f[at + 2..at + 4].fill(0);
    let c = checksum(src, dst, &f[at..at + len]);
    f[at + 2..at + 4].copy_from_slice(&c.to_be_bytes());
}

/// A link-layer address option of type `ty` at `f[at..at + 8]`.
fn ll_option(f: &mut [u8], at: usize, ty: u8, mac: MacAddr) {
    f[at] = ty;
    f[at + 1] = 1;
    f[at + 2..at + 8].copy_from_slice(&mac.0);
}

/// A neighbor solicitation for `target` from `src` (with our MAC as its source
/// link-layer address) to `dst`: the solicited-node group of `target` when resolving, the
/// neighbour itself when probing (`dst_mac` its MAC). Returns the frame's length (86).
pub fn solicitation(
    f: &mut [u8; 128],
    our_mac: MacAddr,
    src: u128,
    (dst, dst_mac): (u128, MacAddr),
    target: u128,
) -> usize {
    let len = 32;
    let at = headers(f, (dst_mac, our_mac), (src, dst), ND_HOP_LIMIT, len);
    let m = &mut f[at..at + len];
    m.fill(0);
    m[0] = NEIGHBOR_SOLICIT;
    m[8..24].copy_from_slice(&target.to_be_bytes());
    ll_option(f, at + 24, OPT_SLL, our_mac);
    seal(f, at, len, src, dst);
    at + len
}

/// A neighbor advertisement for `target` (ours) from `src` to `dst` at `dst_mac`, with
/// `flags` ([`NA_ROUTER`], [`NA_SOLICITED`], [`NA_OVERRIDE`]) and our MAC as its target
/// link-layer address. Returns the frame's length (86).
pub fn advertisement(
    f: &mut [u8; 128],
    our_mac: MacAddr,
    src: u128,
    (dst, dst_mac): (u128, MacAddr),
    target: u128,
    flags: u8,
) -> usize {
    let len = 32;
    let at = headers(f, (dst_mac, our_mac), (src, dst), ND_HOP_LIMIT, len);
    let m = &mut f[at..at + len];
    m.fill(0);
    m[0] = NEIGHBOR_ADVERT;
    m[4] = flags;
    m[8..24].copy_from_slice(&target.to_be_bytes());
    ll_option(f, at + 24, OPT_TLL, our_mac);
    seal(f, at, len, src, dst);
    at + len
}

/// What a router advertisement says (RFC 4861 §4.2, RFC 8106).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advert {
    /// Router lifetime in seconds (0: not a default router).
    pub lifetime: u16,
    /// The link's MTU (the MTU option), if announced.
    pub mtu: Option<u32>,
    /// On-link prefixes for address autoconfiguration: (prefix, length).
    pub prefixes: Vec<(u128, u8)>,
    /// Valid and preferred lifetimes of the prefixes, in seconds.
    pub prefix_lifetimes: (u32, u32),
    /// Recursive DNS servers and their lifetime in seconds.
    pub rdnss: Vec<u128>,
    /// RDNSS lifetime, seconds.
    pub rdnss_lifetime: u32,
}

/// Largest router advertisement frame: 8 prefixes and 8 DNS servers fit.
pub const MAX_ADVERT: usize = 512;

/// The most prefixes and DNS servers one advertisement carries.
pub const MAX_ADVERT_ITEMS: usize = 8;

/// A router advertisement `a` from `src` (our link-local address) to `dst` at `dst_mac`.
/// Returns the frame's length.
pub fn router_advert(
    f: &mut [u8; MAX_ADVERT],
    our_mac: MacAddr,
    src: u128,
    (dst, dst_mac): (u128, MacAddr),
    a: &Advert,
) -> usize {
    let prefixes = a.prefixes.len().min(MAX_ADVERT_ITEMS);
    let dns = a.rdnss.len().min(MAX_ADVERT_ITEMS);
    let len = 16
        + 8
        + if a.mtu.is_some() { 8 } else { 0 }
        + 32 * prefixes
        + if dns > 0 { 8 + 16 * dns } else { 0 };
    let at = headers(f, (dst_mac, our_mac), (src, dst), ND_HOP_LIMIT, len);
    f[at..at + len].fill(0);
    let m = &mut f[at..at + len];
    m[0] = ROUTER_ADVERT;
    m[4] = HOP_LIMIT; // Cur Hop Limit hosts should use.
    m[6..8].copy_from_slice(&a.lifetime.to_be_bytes());
    // Reachable time and retrans timer: 0, unspecified.
    let mut o = 16;
    ll_option(m, o, OPT_SLL, our_mac);
    o += 8;
    if let Some(mtu) = a.mtu {
        m[o] = OPT_MTU;
        m[o + 1] = 1;
        m[o + 4..o + 8].copy_from_slice(&mtu.to_be_bytes());
        o += 8;
    }
    for &(p, l) in &a.prefixes[..prefixes] {
        m[o] = OPT_PREFIX;
        m[o + 1] = 4;
        m[o + 2] = l;
        m[o + 3] = 0xc0; // On-link, autonomous.
        m[o + 4..o + 8].copy_from_slice(&a.prefix_lifetimes.0.to_be_bytes());
        m[o + 8..o + 12].copy_from_slice(&a.prefix_lifetimes.1.to_be_bytes());
        m[o + 16..o + 32].copy_from_slice(&p.to_be_bytes());
        o += 32;
    }
    if dns > 0 {
        m[o] = OPT_RDNSS;
        m[o + 1] = (1 + 2 * dns) as u8;
        m[o + 4..o + 8].copy_from_slice(&a.rdnss_lifetime.to_be_bytes());
        o += 8;
        for s in &a.rdnss[..dns] {
            m[o..o + 16].copy_from_slice(&s.to_be_bytes());
            o += 16;
        }
    }
    seal(f, at, len, src, dst);
    at + len
}

/// True if RFC 4443 §2.4 (e) allows an ICMPv6 error about the IPv6 packet `ipdata` (its
/// fixed header checked): not about an ICMPv6 error or an ND message, not to a source that
/// is not a unicast address, and not about a packet sent to a multicast group (except a
/// packet too big, `too_big`). The upper layer is found after hop-by-hop, routing and
/// destination options headers; a packet whose chain of them cannot be read (cut short, or
/// more than 8) gets no error.
pub fn error_allowed(ipdata: &[u8], too_big: bool) -> bool {
    let (Some(src), Some(dst)) = (addr_at(ipdata, 8), addr_at(ipdata, 24)) else {
        return false;
    };
    if src == 0 || is_multicast(src) || src == 1 {
        return false;
    }
    if is_multicast(dst) && !too_big {
        return false;
    }
    // The quoted upper layer, past the extension headers: an error is never about an
    // ICMPv6 error or ND message (types below 128, and ND's), nor about a chain that cannot
    // be read.
    let Ok(up) = ipv6::Ipv6Packet::new_quoted(ipdata).and_then(|p| p.upper_layer()) else {
        return false;
    };
    if up.proto == PROTO_ICMPV6 && !up.is_later_fragment() {
        return matches!(ipdata.get(up.offset), Some(&t) if t == ECHO_REQUEST || t == ECHO_REPLY);
    }
    true
}

/// Turn the frame in `pkt` (Ethernet + an IPv6 packet whose fixed header was checked) into
/// an ICMPv6 error `ty`/`code` with `rest` as its second word (the MTU for packet too big),
/// from `src_ip`/`src_mac` back to the packet's source, quoting as much of the packet as
/// keeps the error within [`MIN_MTU`] bytes.
pub fn make_error(
    pkt: &mut Packet,
    (ty, code, rest): (u8, u8, u32),
    src_ip: u128,
    src_mac: MacAddr,
) -> bool {
    const ROOM: usize = MIN_MTU - ipv6::HEADER_LEN - 8;
    let mut quote = [0u8; ROOM];
    let data = pkt.data();
    let Some(ipdata) = data.get(ETH_HEADER_LEN..) else {
        return false;
    };
    let Some(&[hi, lo]) = ipdata.get(4..6) else {
        return false;
    };
    let total = ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([hi, lo]));
    let n = total.min(ROOM).min(ipdata.len());
    quote[..n].copy_from_slice(&ipdata[..n]);
    let (Some(to_ip), Some(to_mac)) = (
        addr_at(ipdata, 8),
        data.get(6..12).and_then(|m| <[u8; 6]>::try_from(m).ok()),
    ) else {
        return false;
    };
    let len = 8 + n;
    if !pkt.set_len(ETH_HEADER_LEN + ipv6::HEADER_LEN + len) {
        return false;
    }
    // A new packet in the old buffer: the quoted one's offload record (a super-frame's
    // segmentation, a checksum the host left to finish) is not this one's.
    pkt.set_offload(None);
    let f = pkt.data_mut();
    let at = headers(
        f,
        (MacAddr(to_mac), src_mac),
        (src_ip, to_ip),
        HOP_LIMIT,
        len,
    );
    let m = &mut f[at..at + len];
    m[0] = ty;
    m[1] = code;
    m[2..4].fill(0);
    m[4..8].copy_from_slice(&rest.to_be_bytes());
    m[8..].copy_from_slice(&quote[..n]);
    seal(f, at, len, src_ip, to_ip);
    true
}

/// Turn the echo request in `pkt` (Ethernet + IPv6 whose fixed header was checked, the
/// ICMPv6 message right after it, `len` bytes) into its echo reply from `src_ip` (the
/// address it was sent to, or ours when it went to a group) and `our_mac`, in place.
/// Returns false if the message's checksum or code is wrong.
pub fn make_echo_reply(pkt: &mut Packet, len: usize, src_ip: u128, our_mac: MacAddr) -> bool {
    let at = ETH_HEADER_LEN + ipv6::HEADER_LEN;
    let f = pkt.data_mut();
    let (Some(src), Some(dst)) = (
        addr_at(f, ETH_HEADER_LEN + 8),
        addr_at(f, ETH_HEADER_LEN + 24),
    ) else {
        return false;
    };
    let Some(m) = f.get(at..at + len) else {
        return false;
    };
    if len < 8 || m[1] != 0 || !checksum_ok(src, dst, m) {
        return false;
    }
    let peer: [u8; 6] = [f[6], f[7], f[8], f[9], f[10], f[11]];
    f[0..6].copy_from_slice(&peer);
    f[6..12].copy_from_slice(&our_mac.0);
    let h = &mut f[ETH_HEADER_LEN..at];
    h[7] = HOP_LIMIT;
    h[8..24].copy_from_slice(&src_ip.to_be_bytes());
    h[24..40].copy_from_slice(&src.to_be_bytes());
    f[at] = ECHO_REPLY;
    seal(f, at, len, src_ip, src);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn a(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn addresses_derived_from_macs_and_targets() {
        let mac = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(link_local(mac), a("fe80::11:22ff:fe33:4455"));
        assert_eq!(solicited_node(a("2001:db8::1:2:3")), a("ff02::1:ff02:3"));
        assert_eq!(
            multicast_mac(a("ff02::1:ff02:3")),
            MacAddr([0x33, 0x33, 0xff, 0x02, 0, 3])
        );
        assert!(is_link_local(a("fe80::1")) && is_link_local(a("febf::1")));
        assert!(!is_link_local(a("fec0::1")) && !is_link_local(a("2001:db8::1")));
        assert!(is_multicast(ALL_NODES) && !is_multicast(a("fe80::1")));
    }

    /// The checksum of a known message: an echo request from `ping -6` as captured.
    #[test]
    fn checksums_match_a_captured_echo_request() {
        let (src, dst) = (a("2001:db8:1::2"), a("2001:db8:1::1"));
        let mut m = vec![128u8, 0, 0, 0, 0x12, 0x34, 0, 1];
        m.extend_from_slice(b"abcdefgh");
        let c = checksum(src, dst, &m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(checksum_ok(src, dst, &m));
        m[9] ^= 1;
        assert!(!checksum_ok(src, dst, &m));
        // The pseudo-header counts the addresses: swapping them keeps the sum, changing
        // one does not.
        m[9] ^= 1;
        assert!(checksum_ok(dst, src, &m));
        assert!(!checksum_ok(src, a("2001:db8:1::3"), &m));
    }

    #[test]
    fn options_are_read_and_bad_lengths_refused() {
        let mut o = vec![1u8, 1, 2, 0, 0, 0, 0, 7];
        o.extend_from_slice(&[9, 1, 0, 0, 0, 0, 0, 0]);
        o.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 8]);
        let r = options(&o).expect("valid");
        assert_eq!(r.sll, Some(MacAddr([2, 0, 0, 0, 0, 7])));
        assert_eq!(r.tll, Some(MacAddr([2, 0, 0, 0, 0, 8])));
        assert_eq!(options(&[]), Some(NdOptions::default()));
        assert_eq!(options(&[1, 0, 0, 0, 0, 0, 0, 0]), None, "length 0");
        assert_eq!(options(&[1, 2, 0, 0, 0, 0, 0, 0]), None, "past the end");
        assert_eq!(options(&[1]), None);
    }

    #[test]
    fn nd_messages_are_well_formed() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let ll = link_local(mac);
        let target = a("2001:db8::9");
        let mut f = [0u8; 128];
        let group = solicited_node(target);
        let n = solicitation(&mut f, mac, ll, (group, multicast_mac(group)), target);
        assert_eq!(n, 86);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0, 0, 9]);
        let ip = &f[14..n];
        assert_eq!((ip[6], ip[7]), (PROTO_ICMPV6, 255));
        assert!(checksum_ok(ll, group, &ip[40..]));
        assert_eq!(options(&ip[64..]).and_then(|o| o.sll), Some(mac));
        let n = advertisement(
            &mut f,
            mac,
            target,
            (ll, MacAddr([2, 0, 0, 0, 0, 2])),
            target,
            NA_SOLICITED | NA_OVERRIDE | NA_ROUTER,
        );
        let ip = &f[14..n];
        assert_eq!(ip[40], NEIGHBOR_ADVERT);
        assert_eq!(ip[44], 0xe0);
        assert!(checksum_ok(target, ll, &ip[40..]));
        assert_eq!(options(&ip[64..]).and_then(|o| o.tll), Some(mac));
        let mut ra = [0u8; MAX_ADVERT];
        let adv = Advert {
            lifetime: 1800,
            mtu: Some(1500),
            prefixes: vec![(a("2001:db8:1::"), 64)],
            prefix_lifetimes: (86400, 14400),
            rdnss: vec![a("2001:db8:1::53"), a("2001:db8:1::54")],
            rdnss_lifetime: 1800,
        };
        let n = router_advert(
            &mut ra,
            mac,
            ll,
            (ALL_NODES, multicast_mac(ALL_NODES)),
            &adv,
        );
        let ip = &ra[14..n];
        let m = &ip[40..];
        assert_eq!(m.len(), 16 + 8 + 8 + 32 + 8 + 32);
        assert!(checksum_ok(ll, ALL_NODES, m));
        assert_eq!(u16::from_be_bytes([m[6], m[7]]), 1800);
        // Options after the 16-byte header: SLL, MTU, prefix, RDNSS.
        assert_eq!((m[16], m[24], m[32], m[64]), (1, 5, 3, 25));
        assert_eq!((m[34], m[35]), (64, 0xc0));
        assert_eq!(m[65], 5, "RDNSS of two servers is 5 units of 8 bytes");
        assert_eq!(options(&m[16..]).and_then(|o| o.sll), Some(mac));
    }

    /// An error made in the buffer of a super-frame (packet too big about a host's TSO
    /// frame) does not keep the super-frame's offload record: the egress port would cut or
    /// "finish" the error as if it were the TCP segment.
    #[test]
    fn an_error_drops_the_quoted_packets_offload_record() {
        let mut f = vec![0u8; 14 + 40 + 20 + 3000];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f[14] = 0x60;
        f[18..20].copy_from_slice(&3020u16.to_be_bytes());
        f[20] = 6;
        f[22..38].copy_from_slice(&a("2001:db8::2").to_be_bytes());
        f[38..54].copy_from_slice(&a("2001:db8:9::1").to_be_bytes());
        let mut pkt = Packet::from_bytes(&f).expect("fits");
        pkt.set_offload(Some(nfv_dataplane::packet::Offload {
            needs_csum: true,
            gso: nfv_dataplane::packet::Gso::Tcp6,
            csum_start: 54,
            csum_offset: 16,
            gso_size: 1440,
        }));
        assert!(pkt.offload().is_some());
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        assert!(make_error(
            &mut pkt,
            (PACKET_TOO_BIG, 0, 1280),
            a("2001:db8::1"),
            mac
        ));
        assert_eq!(pkt.offload(), None);
        assert_eq!(pkt.len(), 14 + MIN_MTU);
    }

    #[test]
    fn errors_are_not_about_errors_nd_or_groups() {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = PROTO_ICMPV6;
        p[8..24].copy_from_slice(&a("2001:db8::2").to_be_bytes());
        p[24..40].copy_from_slice(&a("2001:db8:9::1").to_be_bytes());
        p[40] = ECHO_REQUEST;
        assert!(error_allowed(&p, false));
        for t in [
            DEST_UNREACHABLE,
            PACKET_TOO_BIG,
            NEIGHBOR_SOLICIT,
            ROUTER_ADVERT,
        ] {
            p[40] = t;
            assert!(!error_allowed(&p, false), "type {t}");
        }
        p[6] = 17;
        p[24..40].copy_from_slice(&ALL_NODES.to_be_bytes());
        assert!(!error_allowed(&p, false));
        assert!(error_allowed(&p, true), "packet too big may answer a group");
        p[8..24].fill(0);
        assert!(!error_allowed(&p, true), "never to ::");
        assert!(!error_allowed(&p[..20], true));
    }
}
