//! IPv4 fragmentation (RFC 791 section 3.2, RFC 1812 section 4.2.2.7): a datagram without
//! DF that is larger than the next hop's MTU leaves as fragments, each a new packet of at
//! most the MTU. The first fragment carries the whole header; later ones only the options
//! marked "copied" (the option type's top bit), padded to a multiple of four bytes. A
//! datagram that is itself a fragment is cut further: offsets add to its own, and its "more
//! fragments" flag stays on its last piece.

use nfv_dataplane::Packet;

/// The most option bytes an IPv4 header holds.
const MAX_OPTIONS: usize = 40;
/// The fixed header.
const FIXED: usize = 20;
/// "More fragments" in the flags and offset field.
const MF: u16 = 0x2000;
/// The offset in 8-byte units.
const OFFSET: u16 = 0x1fff;

/// How a datagram is cut: the header of its later fragments.
pub(super) struct Plan {
    /// The options later fragments carry, padded.
    options: [u8; MAX_OPTIONS],
    options_len: usize,
}

impl Plan {
    /// The plan for a datagram with IPv4 header `header` (its whole, checked length).
    pub(super) fn new(header: &[u8]) -> Plan {
        let mut options = [0u8; MAX_OPTIONS];
        let mut n = 0;
        for (at, len) in options_of(header) {
            if header[at] & 0x80 != 0 && n + len <= MAX_OPTIONS {
                options[n..n + len].copy_from_slice(&header[at..at + len]);
                n += len;
            }
        }
        // Padded with end-of-options (zeros) to whole 32-bit words.
        Plan {
            options,
            options_len: n.div_ceil(4) * 4,
        }
    }

    /// The header length of the first fragment (`ihl`, the datagram's own) or of a later
    /// one.
    fn header_len(&self, first: bool, ihl: usize) -> usize {
        if first {
            ihl
        } else {
            FIXED + self.options_len
        }
    }

    /// Data bytes the fragment starting the datagram (`first`) or a later one may carry:
    /// a multiple of 8 that fits `mtu` and a frame of at most `room` bytes behind an L2
    /// header of `l3` bytes; 0 if none.
    pub(super) fn data_len(
        &self,
        first: bool,
        ihl: usize,
        mtu: usize,
        l3: usize,
        room: usize,
    ) -> usize {
        let hdr = self.header_len(first, ihl);
        let fits = mtu.min(room.saturating_sub(l3)).saturating_sub(hdr);
        fits & !7
    }

    /// Write into `out` the fragment of the datagram in `frame` (its IPv4 header at `l3`,
    /// `ihl` bytes, the datagram `total` bytes long) that carries its data bytes
    /// `from..from + len`, with "more fragments" set unless it is the datagram's last piece.
    /// False if `out` cannot hold it or the range lies outside the datagram.
    pub(super) fn write(
        &self,
        out: &mut Packet,
        frame: &[u8],
        (l3, ihl, total): (usize, usize, usize),
        from: usize,
        len: usize,
    ) -> bool {
        let first = from == 0;
        let hdr = self.header_len(first, ihl);
        let (Some(l2), Some(header), Some(data)) = (
            frame.get(..l3),
            frame.get(l3..l3 + ihl),
            frame.get(l3 + ihl + from..l3 + ihl + from + len),
        ) else {
            return false;
        };
        if ihl + from + len > total || header.len() < FIXED {
            return false;
        }
        let field = u16::from_be_bytes([header[6], header[7]]);
        let offset = usize::from(field & OFFSET) * 8 + from;
        let more = ihl + from + len < total || field & MF != 0;
        let Ok(offset) = u16::try_from(offset / 8) else {
            return false;
        };
        let Ok(length) = u16::try_from(hdr + len) else {
            return false;
        };
        let size = l3 + hdr + len;
        let room = out.room_mut();
        if room.len() < size {
            return false;
        }
        room[..l3].copy_from_slice(l2);
        let ip = &mut room[l3..l3 + hdr];
        ip[..FIXED].copy_from_slice(&header[..FIXED]);
        if first {
            ip[FIXED..].copy_from_slice(&header[FIXED..]);
        } else {
            ip[FIXED..].copy_from_slice(&self.options[..self.options_len]);
        }
        ip[0] = 0x40 | (hdr / 4) as u8;
        ip[2..4].copy_from_slice(&length.to_be_bytes());
        let flags = (field & !(OFFSET | MF)) | if more { MF } else { 0 };
        ip[6..8].copy_from_slice(&(flags | offset).to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let sum = crate::ip::checksum(ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        room[l3 + hdr..size].copy_from_slice(data);
        out.set_len(size)
    }
}

/// Record `addr` (the outgoing interface's address) in the Record Route option of the IPv4
/// header `header` (its whole length, options included), if it has one with room left
/// (RFC 791, RFC 1812 section 5.3.13.1), and fix the header checksum. Options that do not
/// parse end the search; nothing else changes.
pub(super) fn record_route(header: &mut [u8], addr: u32) {
    const RECORD_ROUTE: u8 = 7;
    let Some((at, len)) = options_of(header).find(|&(at, _)| header[at] == RECORD_ROUTE) else {
        return;
    };
    // The pointer counts from the option's first byte, from 1; at least 4.
    let ptr = header.get(at + 2).map_or(0, |&p| usize::from(p));
    if ptr >= 4 && ptr + 3 <= len {
        let slot = at + ptr - 1;
        header[slot..slot + 4].copy_from_slice(&addr.to_be_bytes());
        header[at + 2] += 4;
        crate::ip::set_header_checksum(header);
    }
}

/// The options of IPv4 header `header` (its whole length) but no-operations, as (offset in
/// `header`, length), up to the end of options or the first one that does not parse.
fn options_of(header: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = FIXED;
    std::iter::from_fn(move || loop {
        match *header.get(at)? {
            0 => return None,
            1 => at += 1,
            _ => {
                let len = usize::from(*header.get(at + 1)?);
                if len < 2 || at + len > header.len() {
                    return None;
                }
                at += len;
                return Some((at - len, len));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 datagram: header with `options`, `data` bytes of
    /// payload numbered 0, 1, 2, ...
    fn datagram(options: &[u8], data: usize, field: u16) -> Vec<u8> {
        let ihl = FIXED + options.len();
        let total = ihl + data;
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut h = vec![0u8; ihl];
        h[0] = 0x40 | (ihl / 4) as u8;
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        h[6..8].copy_from_slice(&field.to_be_bytes());
        h[8] = 64;
        h[9] = 17;
        h[12..16].copy_from_slice(&[10, 0, 0, 5]);
        h[16..20].copy_from_slice(&[10, 0, 1, 7]);
        h[FIXED..].copy_from_slice(options);
        let sum = crate::ip::checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend((0..data).map(|i| i as u8));
        f
    }

    /// Cut `frame` for `mtu` into fragments as the router does.
    fn cut(frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let ihl = usize::from(frame[14] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        let plan = Plan::new(&frame[14..14 + ihl]);
        let mut out = Vec::new();
        let mut from = 0;
        while ihl + from < total {
            let mut p = Packet::from_bytes(&[0]).expect("a packet");
            let n = plan
                .data_len(from == 0, ihl, mtu, 14, p.room_mut().len())
                .min(total - ihl - from);
            assert!(n > 0);
            assert!(plan.write(&mut p, frame, (14, ihl, total), from, n));
            out.push(p.data().to_vec());
            from += n;
        }
        out
    }

    #[test]
    fn a_datagram_is_cut_into_fragments_that_reassemble_to_it() {
        let f = datagram(&[], 3000, 0);
        let frags = cut(&f, 1500);
        assert_eq!(frags.len(), 3);
        let mut data = Vec::new();
        for (k, fr) in frags.iter().enumerate() {
            let ip = &fr[14..];
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            assert_eq!(total, fr.len() - 14);
            assert!(total <= 1500);
            assert_eq!(crate::ip::checksum(&ip[..20]), 0, "fragment {k}'s checksum");
            assert_eq!(&ip[4..6], &[0x12, 0x34], "the datagram's id");
            let field = u16::from_be_bytes([ip[6], ip[7]]);
            assert_eq!(usize::from(field & OFFSET) * 8, data.len(), "offset");
            assert_eq!(field & MF != 0, k < 2, "more fragments but on the last");
            if k < 2 {
                assert_eq!((total - 20) % 8, 0);
            }
            data.extend_from_slice(&ip[20..total]);
        }
        assert_eq!(data, f[34..].to_vec(), "the data, whole and in order");
    }

    #[test]
    fn later_fragments_carry_only_copied_options_and_a_fragment_is_cut_further() {
        // Record route (7, not copied), then a no-op and a copied option (0x83, loose
        // source route), then end of options.
        let mut opts = vec![7, 7, 4, 0, 0, 0, 0, 1, 0x83, 7, 4, 1, 2, 3, 4, 0];
        opts.resize(16, 0);
        let f = datagram(&opts, 2000, 0);
        let frags = cut(&f, 1000);
        assert_eq!(
            usize::from(frags[0][14] & 0xf) * 4,
            36,
            "first: the whole header"
        );
        for fr in &frags[1..] {
            assert_eq!(
                usize::from(fr[14] & 0xf) * 4,
                28,
                "later: the copied option only"
            );
            assert_eq!(&fr[34..41], &[0x83, 7, 4, 1, 2, 3, 4]);
            assert_eq!(crate::ip::checksum(&fr[14..42]), 0);
        }
        // A fragment (offset 800, more to come) cut again keeps its place and its flag.
        let g = datagram(&[], 1600, MF | 100);
        let frags = cut(&g, 1000);
        let fields: Vec<u16> = frags
            .iter()
            .map(|fr| u16::from_be_bytes([fr[20], fr[21]]))
            .collect();
        assert_eq!(fields, vec![MF | 100, MF | (100 + 976 / 8)]);
    }

    #[test]
    fn record_route_takes_the_address_while_it_has_room() {
        // A no-op, then record route with room for two addresses.
        let f = datagram(&[1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0], 0, 0);
        let mut h = f[14..46].to_vec();
        record_route(&mut h, 0x0a00_0101);
        assert_eq!(&h[21..25], &[7, 11, 8, 10], "pointer moved by 4");
        assert_eq!(&h[24..28], &[10, 0, 1, 1]);
        assert_eq!(crate::ip::checksum(&h), 0, "checksum fixed");
        record_route(&mut h, 0x0a00_0201);
        assert_eq!(&h[28..32], &[10, 0, 2, 1]);
        assert_eq!(h[23], 12);
        // Full: nothing changes.
        let before = h.clone();
        record_route(&mut h, 0x0a00_0301);
        assert_eq!(h, before);
        // Malformed options: nothing changes either.
        let mut bad = f[14..46].to_vec();
        bad[22] = 40; // length past the header
        let before = bad.clone();
        record_route(&mut bad, 1);
        assert_eq!(bad, before);
    }

    #[test]
    fn a_fragment_that_does_not_fit_its_buffer_is_refused() {
        let f = datagram(&[], 3000, 0);
        let plan = Plan::new(&f[14..34]);
        let mut p = Packet::from_bytes(&[0]).expect("a packet");
        assert!(
            !plan.write(&mut p, &f, (14, 20, 3020), 0, 2960),
            "beyond the buffer"
        );
        assert!(
            !plan.write(&mut p, &f, (14, 20, 3020), 2000, 1200),
            "beyond the datagram"
        );
    }
}
