//! ICMP messages a router makes: echo replies, built in place from the request, and errors
//! (time exceeded, destination unreachable, fragmentation needed), built in place over the
//! packet they are about, quoting its IP header and as much of its data as fits in a
//! 576-byte datagram (RFC 1812 §4.3.2.3). Errors are rate limited by a token bucket.

use std::time::Duration;

use nfv_dataplane::{Packet, Timestamp};

use crate::ip::{self, field, PROTO_ICMP};
use crate::wire::{MacAddr, ETH_HEADER_LEN};

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
    let src = ip::read_u32(ipdata, field::SRC);
    let dst = ip::read_u32(ipdata, field::DST);
    let frag_offset = ip::read_u16(ipdata, field::FLAGS_FRAG) & 0x1fff;
    if frag_offset != 0 || src == 0 || src >> 28 >= 0xe || src >> 24 == 127 {
        return false;
    }
    if dst >> 28 == 0xe || dst == u32::MAX {
        return false;
    }
    if ipdata[field::PROTO] == PROTO_ICMP {
        // Only queries (echo, timestamp, ...) may cause errors; errors never do.
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
    let mut to_mac = [0u8; 6];
    to_mac.copy_from_slice(&data[6..12]);
    let to_ip = ip::read_u32(&quote, field::SRC);

    let icmp_len = 8 + n;
    let ip_len = ip::HEADER_LEN + icmp_len;
    if !pkt.set_len(ETH_HEADER_LEN + ip_len) {
        return false;
    }
    let d = pkt.data_mut();
    d[0..6].copy_from_slice(&to_mac);
    d[6..12].copy_from_slice(&src_mac.0);
    d[12..14].copy_from_slice(&ip::ETHERTYPE_IPV4.to_be_bytes());
    write_ip_header(&mut d[ETH_HEADER_LEN..], ip_len, src_ip, to_ip);
    let icmp = &mut d[ETH_HEADER_LEN + ip::HEADER_LEN..];
    icmp[0] = ty;
    icmp[1] = code;
    icmp[2..4].fill(0);
    icmp[4..8].copy_from_slice(&rest.to_be_bytes());
    icmp[8..8 + n].copy_from_slice(&quote[..n]);
    let c = ip::checksum(&icmp[..icmp_len]);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    true
}

/// Write a 20-byte IPv4 header (no options, DF clear, TTL [`TTL`], protocol ICMP) with its
/// checksum at the start of `d`.
fn write_ip_header(d: &mut [u8], total: usize, src: u32, dst: u32) {
    d[0] = 0x45;
    d[1] = 0;
    d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    d[4..8].fill(0);
    d[field::TTL] = TTL;
    d[field::PROTO] = PROTO_ICMP;
    d[field::SRC..field::SRC + 4].copy_from_slice(&src.to_be_bytes());
    d[field::DST..field::DST + 4].copy_from_slice(&dst.to_be_bytes());
    ip::set_header_checksum(&mut d[..ip::HEADER_LEN]);
}

/// Turn the echo request in `pkt` (Ethernet + IPv4 with a checked `ihl`-byte header and
/// `total` bytes, ICMP type 8) into its echo reply from `our_mac`, in place: addresses
/// swapped, type 0, checksums fixed. Returns false if the ICMP message is malformed.
pub fn make_echo_reply(pkt: &mut Packet, ihl: usize, total: usize, our_mac: MacAddr) -> bool {
    let d = pkt.data_mut();
    if total < ihl + 8 || ETH_HEADER_LEN + total > d.len() {
        return false;
    }
    let icmp = &d[ETH_HEADER_LEN + ihl..ETH_HEADER_LEN + total];
    if ip::sum(icmp) != 0xffff || icmp[1] != 0 {
        return false;
    }
    let mut peer_mac = [0u8; 6];
    peer_mac.copy_from_slice(&d[6..12]);
    d[0..6].copy_from_slice(&peer_mac);
    d[6..12].copy_from_slice(&our_mac.0);
    let h = &mut d[ETH_HEADER_LEN..ETH_HEADER_LEN + ihl];
    let mut src = [0u8; 4];
    src.copy_from_slice(&h[field::SRC..field::SRC + 4]);
    h.copy_within(field::DST..field::DST + 4, field::SRC);
    h[field::DST..field::DST + 4].copy_from_slice(&src);
    h[field::TTL] = TTL;
    ip::set_header_checksum(h);
    let icmp = &mut d[ETH_HEADER_LEN + ihl..ETH_HEADER_LEN + total];
    let old = ip::read_u16(icmp, 0);
    icmp[0] = ECHO_REPLY;
    let c = ip::update_checksum(ip::read_u16(icmp, 2), old, ip::read_u16(icmp, 0));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
