//! ICMP messages a router makes: echo replies, built in place from the request, and errors
//! (time exceeded, destination unreachable, fragmentation needed), built in place over the
//! packet they are about, quoting its IP header and as much of its data as fits in a
//! 576-byte datagram (RFC 1812 §4.3.2.3). Errors are rate limited by a token bucket.

use std::time::Duration;

use nfv_dataplane::{Packet, Timestamp};

use crate::ip::{self, PROTO_ICMP};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{EthernetFrame, Icmpv4Packet, Ipv4Packet, MacAddr, ETH_HEADER_LEN};

/// ICMP type: echo reply.
pub const ECHO_REPLY: u8 = 0;
/// ICMP type: destination unreachable.
pub const DEST_UNREACHABLE: u8 = 3;
/// ICMP type: echo request.
pub const ECHO_REQUEST: u8 = 8;
/// ICMP type: time exceeded.
pub const TIME_EXCEEDED: u8 = 11;
/// Destination unreachable codes.
pub const CODE_NET_UNREACHABLE: u8 = 0;
/// Host unreachable (ARP failed).
pub const CODE_HOST_UNREACHABLE: u8 = 1;
/// Port unreachable (UDP to the router itself).
pub const CODE_PORT_UNREACHABLE: u8 = 3;
/// Fragmentation needed and DF set.
pub const CODE_FRAG_NEEDED: u8 = 4;

/// Largest ICMP error datagram (IP header + ICMP header + quote).
const MAX_ERROR_DATAGRAM: usize = 576;
/// Largest quote of the original datagram.
const MAX_QUOTE: usize = MAX_ERROR_DATAGRAM - ip::HEADER_LEN - 8;
/// TTL of packets the router makes.
pub const TTL: u8 = 64;

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Clone, Debug)]
pub struct RateLimit {
    /// Tokens times 1e9 (so refill is exact in nanoseconds).
    nanotokens: u128,
    rate: u128,
    cap: u128,
    last: Timestamp,
}

impl RateLimit {
    /// `rate` per second with bursts of `burst`; a rate of 0 allows nothing.
    pub fn new(rate: u32, burst: u32) -> Self {
        let cap = u128::from(burst.max(1)) * 1_000_000_000;
        RateLimit {
            nanotokens: cap,
            rate: u128::from(rate),
            cap,
            last: Timestamp::ZERO,
        }
    }

    /// Take a token at `now` if there is one.
    pub fn allow(&mut self, now: Timestamp) -> bool {
        let elapsed = now.since(self.last);
        self.last = Timestamp(self.last.0.max(now.0));
        self.nanotokens = (self.nanotokens + elapsed.as_nanos() * self.rate).min(self.cap);
        if self.rate > 0 && self.nanotokens >= 1_000_000_000 {
            self.nanotokens -= 1_000_000_000;
            true
        } else {
            false
        }
    }

    /// The refill interval of one token (for documentation and tests).
    pub fn interval(&self) -> Option<Duration> {
        (self.rate > 0).then(|| Duration::from_nanos((1_000_000_000 / self.rate) as u64))
    }
}

/// True if RFC 1812 §4.3.2.7 allows an ICMP error about the IPv4 datagram `ipdata` (its
/// header has been checked): not about an ICMP error, not about a non-first fragment, not
/// to a source that is not a unicast host.
pub fn error_allowed(ipdata: &[u8], ihl: usize) -> bool {
    let Ok(h) = Ipv4Packet::new_quoted(ipdata) else {
        return false;
    };
    let (src, dst) = (h.src_addr(), h.dst_addr());
    if h.frag_offset() != 0 || src == 0 || src >> 28 >= 0xe || src >> 24 == 127 {
        return false;
    }
    if dst >> 28 == 0xe || dst == u32::MAX {
        return false;
    }
    if h.protocol() == PROTO_ICMP {
        // Only queries (echo, timestamp, ...) may cause errors; errors never do. The
        // message type is the first byte after the header.
        return match ipdata.get(ihl) {
            Some(&t) => matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18),
            None => false,
        };
    }
    true
}

/// Turn the frame in `pkt` (Ethernet + an IPv4 datagram whose header was checked, `ihl`
/// bytes long and `total` bytes in all) into an ICMP error of `ty`/`code` about it, from
/// `src_ip`/`src_mac` back to the frame's sender. `rest` is the second header word (the
/// next-hop MTU for fragmentation needed, else 0).
#[allow(clippy::too_many_arguments)]
pub fn make_error(
    pkt: &mut Packet,
    total: usize,
    ty: u8,
    code: u8,
    rest: u32,
    src_ip: u32,
    src_mac: MacAddr,
) -> bool {
    let mut quote = [0u8; MAX_QUOTE];
    let data = pkt.data();
    let n = total.min(MAX_QUOTE).min(data.len() - ETH_HEADER_LEN);
    quote[..n].copy_from_slice(&data[ETH_HEADER_LEN..ETH_HEADER_LEN + n]);
    let Ok(eth) = EthernetFrame::new_checked(data) else {
        return false;
    };
    let to_mac = eth.src();
    // The quoted header was checked by the caller; the quote buffer holds its 20 bytes
    // whatever `n` is.
    let to_ip = Ipv4Packet::new_unchecked(&quote[..]).src_addr();

    let icmp_len = 8 + n;
    let ip_len = ip::HEADER_LEN + icmp_len;
    if !pkt.set_len(ETH_HEADER_LEN + ip_len) {
        return false;
    }
    // A new packet in the old buffer: the quoted one's offload record (a super-frame's
    // segmentation, a checksum the host left to finish) is not this one's.
    pkt.set_offload(None);
    let d = pkt.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(to_mac);
    eth.set_src(src_mac);
    eth.set_ethertype(ip::ETHERTYPE_IPV4);
    let (ip_bytes, icmp_bytes) = d[ETH_HEADER_LEN..].split_at_mut(ip::HEADER_LEN);
    write_ip_header(ip_bytes, ip_len, src_ip, to_ip);
    let mut icmp = Icmpv4Packet::new_unchecked(icmp_bytes);
    icmp.set_msg_type(ty);
    icmp.set_code(code);
    icmp.set_rest(rest);
    icmp.data_mut()[..n].copy_from_slice(&quote[..n]);
    icmp.fill_checksum();
    true
}

/// Write a 20-byte IPv4 header (no options, DF clear, TTL [`TTL`], protocol ICMP) with its
/// checksum at the start of `d`.
fn write_ip_header(d: &mut [u8], total: usize, src: u32, dst: u32) {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: PROTO_ICMP,
        ttl: TTL,
        payload_len: total - ip::HEADER_LEN,
    };
    repr.emit(&mut Ipv4Packet::new_unchecked(d));
}

/// Turn the echo request in `pkt` (Ethernet + IPv4 with a checked `ihl`-byte header and
/// `total` bytes, ICMP type 8) into its echo reply from `our_mac`, in place: addresses
/// swapped, type 0, checksums fixed. Returns false if the ICMP message is malformed.
pub fn make_echo_reply(pkt: &mut Packet, ihl: usize, total: usize, our_mac: MacAddr) -> bool {
    let d = pkt.data_mut();
    if total < ihl + 8 || ETH_HEADER_LEN + total > d.len() {
        return false;
    }
    let (eth_bytes, rest) = d.split_at_mut(ETH_HEADER_LEN);
    let (ip_bytes, icmp_bytes) = rest[..total].split_at_mut(ihl);
    let mut icmp = Icmpv4Packet::new_unchecked(icmp_bytes);
    if !icmp.verify_checksum() || icmp.code() != 0 {
        return false;
    }
    let mut eth = EthernetFrame::new_unchecked(eth_bytes);
    let peer_mac = eth.src();
    eth.set_dst(peer_mac);
    eth.set_src(our_mac);
    // The header was checked by the caller (`ihl` is its length, options included).
    let mut h = Ipv4Packet::new_unchecked(ip_bytes);
    h.swap_addresses();
    h.set_ttl(TTL);
    h.fill_checksum();
    // Only the type changes: the checksum is updated for the first word (RFC 1624).
    let old = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
    icmp.set_msg_type(ECHO_REPLY);
    let new = u16::from_be_bytes([icmp.msg_type(), icmp.code()]);
    icmp.set_checksum(ip::update_checksum(icmp.checksum(), old, new));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::field;
    use crate::testframes::{echo, ipa, udp, IN_MAC, OUT_MAC};

    #[test]
    fn rate_limit_allows_burst_then_rate() {
        let mut r = RateLimit::new(10, 3);
        let t0 = Timestamp::from_secs(5);
        assert!(r.allow(t0));
        assert!(r.allow(t0));
        assert!(r.allow(t0));
        assert!(!r.allow(t0), "burst spent");
        assert!(!r.allow(t0.plus(Duration::from_millis(99))));
        assert!(
            r.allow(t0.plus(Duration::from_millis(100))),
            "one per 100 ms"
        );
        assert!(!r.allow(t0.plus(Duration::from_millis(100))));
        assert_eq!(r.interval(), Some(Duration::from_millis(100)));
        let mut none = RateLimit::new(0, 5);
        assert!(!none.allow(t0));
    }

    fn datagram(src: u32, dst: u32, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 20];
        write_ip_header(&mut d, 20 + payload.len(), src, dst);
        d[field::PROTO] = proto;
        d[6..8].copy_from_slice(&frag.to_be_bytes());
        d.extend_from_slice(payload);
        d
    }

    #[test]
    fn errors_are_not_sent_about_errors_fragments_or_broadcasts() {
        let a = 0x0a00_0001;
        let b = 0x0a00_0002;
        assert!(error_allowed(&datagram(a, b, 17, 0, &[0; 8]), 20));
        assert!(error_allowed(&datagram(a, b, 1, 0, &[8, 0, 0, 0]), 20));
        assert!(!error_allowed(&datagram(a, b, 1, 0, &[11, 0, 0, 0]), 20));
        assert!(!error_allowed(&datagram(a, b, 1, 0, &[3, 0, 0, 0]), 20));
        assert!(!error_allowed(&datagram(a, b, 1, 0, &[]), 20));
        assert!(!error_allowed(&datagram(a, b, 17, 0x0001, &[0; 8]), 20));
        assert!(error_allowed(&datagram(a, b, 17, 0x4000, &[0; 8]), 20));
        assert!(!error_allowed(&datagram(0, b, 17, 0, &[0; 8]), 20));
        assert!(!error_allowed(
            &datagram(0xe000_0001, b, 17, 0, &[0; 8]),
            20
        ));
        assert!(!error_allowed(&datagram(a, u32::MAX, 17, 0, &[0; 8]), 20));
        assert!(!error_allowed(
            &datagram(a, 0xe000_00fb, 17, 0, &[0; 8]),
            20
        ));
    }

    /// An error about a short datagram and one about a long one (its quote cut to fit 576
    /// bytes), read back through the views: addresses, lengths and both checksums.
    #[test]
    fn make_error_builds_a_frame_the_views_accept() {
        let us = MacAddr([2, 0, 0, 0, 0, 9]);
        for payload_len in [5, 1000] {
            let f = udp(
                "10.0.0.2",
                5000,
                "8.8.8.8",
                53,
                &vec![0x5a; payload_len],
                true,
            );
            let total = f.len() - ETH_HEADER_LEN;
            let mut pkt = Packet::from_bytes(&f).expect("fits");
            let (ty, code) = (DEST_UNREACHABLE, CODE_FRAG_NEEDED);
            assert!(make_error(
                &mut pkt,
                total,
                ty,
                code,
                1400,
                ipa("10.0.0.1"),
                us
            ));
            let quoted = total.min(MAX_QUOTE);
            let d = pkt.data();
            assert_eq!(d.len(), ETH_HEADER_LEN + 28 + quoted);
            let eth = EthernetFrame::new_checked(d).expect("frame");
            assert_eq!(
                (eth.dst(), eth.src(), eth.ethertype()),
                (MacAddr(IN_MAC), us, ip::ETHERTYPE_IPV4),
                "back to the sender"
            );
            let h = Ipv4Packet::new_checked(eth.payload()).expect("ip");
            assert!(h.verify_checksum());
            assert_eq!(
                (h.header_len(), usize::from(h.total_len())),
                (20, 28 + quoted)
            );
            assert_eq!(
                (h.src_addr(), h.dst_addr()),
                (ipa("10.0.0.1"), ipa("10.0.0.2"))
            );
            assert_eq!(
                (h.protocol(), h.ttl(), h.flags_frag()),
                (PROTO_ICMP, TTL, 0)
            );
            let m = Icmpv4Packet::new_checked(h.payload()).expect("icmp");
            assert!(m.verify_checksum());
            assert_eq!((m.msg_type(), m.code(), m.rest()), (ty, code, 1400));
            assert_eq!(m.data(), &f[ETH_HEADER_LEN..ETH_HEADER_LEN + quoted]);
        }
    }

    /// An echo reply read back through the views; a request with a bad checksum is
    /// refused and left as it was.
    #[test]
    fn make_echo_reply_builds_a_frame_the_views_accept() {
        let us = MacAddr(OUT_MAC);
        let req = echo("10.0.0.2", "10.0.0.1", ECHO_REQUEST, 77);
        let total = req.len() - ETH_HEADER_LEN;
        let mut pkt = Packet::from_bytes(&req).expect("fits");
        assert!(make_echo_reply(&mut pkt, 20, total, us));
        let eth = EthernetFrame::new_checked(pkt.data()).expect("frame");
        assert_eq!(
            (eth.dst(), eth.src(), eth.ethertype()),
            (MacAddr(IN_MAC), us, ip::ETHERTYPE_IPV4)
        );
        let h = Ipv4Packet::new_checked(eth.payload()).expect("ip");
        assert!(h.verify_checksum());
        assert_eq!(
            (h.src_addr(), h.dst_addr()),
            (ipa("10.0.0.1"), ipa("10.0.0.2"))
        );
        assert_eq!(
            (h.ttl(), h.protocol(), usize::from(h.total_len())),
            (TTL, 1, total)
        );
        assert!(h.dont_frag(), "the request's flags are kept");
        let m = Icmpv4Packet::new_checked(h.payload()).expect("icmp");
        assert!(m.verify_checksum());
        assert_eq!((m.msg_type(), m.code()), (ECHO_REPLY, 0));
        assert_eq!((m.echo_ident(), m.echo_seq()), (77, 7));
        assert_eq!(m.data(), b"payload!");
        let mut bad = req.clone();
        *bad.last_mut().expect("data") ^= 1;
        let mut pkt = Packet::from_bytes(&bad).expect("fits");
        assert!(!make_echo_reply(&mut pkt, 20, total, us));
        assert_eq!(pkt.data(), &bad[..]);
    }
}
