//! IPv4 header arithmetic: the Internet checksum (RFC 1071) and its incremental update
//! (RFC 1624), and the TTL decrement a router makes on every forwarded packet.
//!
//! Offsets are into an IPv4 header (its first byte is version and IHL). The functions take
//! slices the caller has checked to hold the header; none of them can panic on a slice of
//! at least [`HEADER_LEN`] bytes (`checksum` takes any length).
//!
//! Functions read and write headers through the checked views of [`crate::wire`] (and
//! build them with their setters and [`wire::ipv4::Ipv4Repr`](crate::wire::ipv4::Ipv4Repr));
//! the offsets in `field` are private to the crate and serve only this module's arithmetic
//! and tests. The views' `field` modules are where header layouts are named.

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// IP protocol numbers.
pub const PROTO_ICMP: u8 = 1;
/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;
/// ICMPv6 (an IPv6 next header).
pub const PROTO_ICMPV6: u8 = 58;

/// The three IPv4 header offsets this module's arithmetic (and its tests) index with, as
/// [`crate::wire::ipv4::field`] names them; functions use the views.
pub(crate) mod field {
    use crate::wire::ipv4::field as wire;
    /// Time to live.
    pub const TTL: usize = wire::TTL;
    /// Protocol.
    pub const PROTO: usize = wire::PROTOCOL;
    /// Header checksum (2 bytes).
    pub const CHECKSUM: usize = wire::CHECKSUM.start;
}

/// The ones'-complement sum of `data` as 16-bit big-endian words (an odd last byte is
/// padded with zero), folded to 16 bits, not yet complemented.
#[inline(always)]
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    fold(acc)
}

/// Fold a wide ones'-complement accumulator to 16 bits.
#[inline(always)]
pub fn fold(acc: u64) -> u16 {
    // Without branches: 64 -> 33 -> 17 -> 16 bits (each step's carry fits the next).
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The Internet checksum of `data`: the value to store in a checksum field that was zero
/// while summing.
#[inline(always)]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// True if `header` (the whole header, options included) carries a correct checksum.
#[inline(always)]
pub fn header_checksum_ok(header: &[u8]) -> bool {
    if let Some(h) = header
        .first_chunk::<HEADER_LEN>()
        .filter(|_| header.len() == HEADER_LEN)
    {
        // The common header without options: five 32-bit words (the ones'-complement sum
        // folds the same from any word size).
        let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
        return fold(w(0) + w(4) + w(8) + w(12) + w(16)) == 0xffff;
    }
    sum(header) == 0xffff
}

/// Store the checksum of `header` (options included) in its checksum field.
pub fn set_header_checksum(header: &mut [u8]) {
    header[field::CHECKSUM..field::CHECKSUM + 2].fill(0);
    let c = checksum(header);
    header[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
}

/// The IPv4 pseudo-header a TCP or UDP checksum covers (RFC 768, RFC 9293): addresses,
/// protocol and the segment's length, as an unfolded sum of 16-bit words (add the
/// segment's [`sum`], then [`fold`]).
#[inline]
pub fn pseudo_header_sum(src: u32, dst: u32, proto: u8, len: usize) -> u64 {
    u64::from(src >> 16)
        + u64::from(src & 0xffff)
        + u64::from(dst >> 16)
        + u64::from(dst & 0xffff)
        + u64::from(proto)
        + len as u64
}

/// RFC 1624 eqn. 3: the new checksum `HC' = ~(~HC + ~m + m')` after a 16-bit word of the
/// summed data changed from `old` to `new`.
#[inline(always)]
pub fn update_checksum(check: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!check) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// Decrement the TTL of the IPv4 header at the start of `header` and update its checksum
/// incrementally. The caller has checked that the TTL is above 1.
#[inline]
pub fn decrement_ttl(header: &mut [u8]) {
    let ttl = header[field::TTL];
    let proto = header[field::PROTO];
    let old = u16::from_be_bytes([ttl, proto]);
    let new = u16::from_be_bytes([ttl.wrapping_sub(1), proto]);
    header[field::TTL] = ttl.wrapping_sub(1);
    let check = u16::from_be_bytes([header[field::CHECKSUM], header[field::CHECKSUM + 1]]);
    let c = update_checksum(check, old, new);
    header[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
}

/// Check the IPv4 header at the start of `h` (the frame after its Ethernet header):
/// version 4, IHL at least 5, a total length that covers the header and fits the frame, a
/// correct checksum. Returns (header length, total length), or why it is dropped. The
/// checks are [`Ipv4Packet::new_checked`](crate::wire::Ipv4Packet::new_checked)'s and
/// its checksum's, as [`wire::classify`](crate::wire::classify) makes them.
#[inline]
pub fn check_header(h: &[u8]) -> Result<(usize, usize), nfv_dataplane::DropReason> {
    use nfv_dataplane::DropReason;
    let p = match crate::wire::Ipv4Packet::new_checked(h) {
        Ok(p) => p,
        Err(crate::wire::WireError::Truncated) => return Err(DropReason::Runt),
        Err(crate::wire::WireError::Malformed) => return Err(DropReason::BadHeader),
    };
    if !p.verify_checksum() {
        return Err(DropReason::BadChecksum);
    }
    Ok((p.header_len(), usize::from(p.total_len())))
}

/// The netmask of a prefix of `len` bits (0 to 32) in host byte order.
#[inline(always)]
pub fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// Read a big-endian u32 at `at` (an IPv4 address).
#[inline(always)]
pub fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Read a big-endian u16 at `at`.
#[inline(always)]
pub fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example header of RFC 1071's worked examples style: a real captured header.
    fn header() -> [u8; 20] {
        [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ]
    }

    #[test]
    fn known_header_verifies_and_recomputes() {
        let mut h = header();
        assert!(header_checksum_ok(&h));
        set_header_checksum(&mut h);
        assert_eq!(&h[10..12], &[0xb8, 0x61]);
        h[15] ^= 1;
        assert!(!header_checksum_ok(&h));
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x01]), 0x0100);
        assert_eq!(sum(&[0x01, 0x02, 0x03]), 0x0402);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn ttl_decrement_matches_full_recompute_for_every_ttl_and_protocol() {
        for ttl in 2..=255u8 {
            for proto in [0u8, 1, 6, 17, 255] {
                let mut h = header();
                h[field::TTL] = ttl;
                h[field::PROTO] = proto;
                set_header_checksum(&mut h);
                let mut inc = h;
                decrement_ttl(&mut inc);
                let mut full = h;
                full[field::TTL] = ttl - 1;
                set_header_checksum(&mut full);
                assert_eq!(inc[field::TTL], ttl - 1);
                assert!(header_checksum_ok(&inc), "ttl {ttl} proto {proto}");
                assert_eq!(
                    &inc[10..12],
                    &full[10..12],
                    "ttl {ttl} proto {proto}: incremental and full checksums differ"
                );
            }
        }
    }

    #[test]
    fn incremental_update_agrees_with_recompute_on_random_words() {
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..10_000 {
            let mut h = header();
            for b in h.iter_mut() {
                *b = next() as u8;
            }
            h[0] = 0x45;
            set_header_checksum(&mut h);
            let at = (next() % 10) as usize * 2;
            if at == field::CHECKSUM {
                continue;
            }
            let old = read_u16(&h, at);
            let new = next() as u16;
            h[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let c = update_checksum(read_u16(&h, field::CHECKSUM), old, new);
            h[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
            assert!(header_checksum_ok(&h));
        }
    }
}
