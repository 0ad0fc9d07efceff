//! A packet generator port and the latency stamp it writes.
//!
//! The generator "receives" frames it builds itself: for each packet it takes a pool
//! buffer, copies a template frame of the chosen size into it (Ethernet + IPv4 + UDP or TCP,
//! or Ethernet + IPv6 + UDP), and patches the fields that vary per flow (source MAC, source
//! and destination address, source port, and the checksum they enter: the IPv4 header's, or
//! IPv6's UDP checksum) and the stamp: a magic word, a sequence number and the send time.
//! Flows take turns; the rate is a token bucket over the generator's own clock; an optional
//! count ends the stream. Frames sent *to* a generator are discarded.
//!
//! The address family is chosen once, when the port is built: each family has its own
//! templates and its own loop ([`Family`], monomorphised), so an IPv4 frame costs what it
//! did before IPv6 came and neither loop asks which family it is in.
//!
//! IPv6 frames have no extension headers, traffic class and flow label 0, hop limit 64, and
//! a UDP checksum (IPv6 requires one, RFC 8200 section 8.1), computed like the IPv4 header
//! checksum: a per-template sum of the words that never change, plus the words of what
//! changes per frame (addresses, source port, sequence number and time), folded. The stamp
//! follows the UDP header in both families; as a 64-byte IPv6 frame leaves 2 bytes after
//! its headers (Ethernet 14, IPv6 40, UDP 8), the smallest IPv6 frame is [`MIN_SIZE_V6`]
//! (82) bytes. Flow `i` takes source address `src + i` (IPv6: in the low 64 bits);
//! destination `j` is `dst + j * step` (IPv6: `step` counts /64 networks, added to the
//! upper 64 bits, so that destinations fall under different routes).
//!
//! Any sink can read the stamp back with [`read_stamp`] to measure latency.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::drop_reason::DropReason;
use crate::mac::MacAddr;
use crate::packet::{Packet, Pool, MAX_FRAME};
use crate::port::{Port, ETH_HEADER};
use crate::time::Clock;

/// Marks a frame as carrying a generator stamp.
pub const STAMP_MAGIC: u32 = 0x6e66_7631; // "nfv1"
/// Where the stamp starts in an IPv4 frame: after Ethernet (14), IPv4 (20) and UDP (8).
const STAMP_OFFSET: usize = ETH_HEADER + IPV4_HEADER + 8;
/// Where the stamp starts in an IPv6 frame: after Ethernet (14), IPv6 (40) and UDP (8).
const STAMP_OFFSET_V6: usize = ETH_HEADER + IPV6_HEADER + 8;
/// Magic (4) + sequence (8) + time (8).
const STAMP_LEN: usize = 20;
/// The shortest frame the generator builds (IPv4, with its stamp).
pub const MIN_SIZE: usize = STAMP_OFFSET + STAMP_LEN;
/// The shortest IPv6 frame the generator builds: 82 bytes, headers (62) and stamp (20). A
/// 64-byte IPv6 frame has no room for the stamp, and a benchmark's latency needs it.
pub const MIN_SIZE_V6: usize = STAMP_OFFSET_V6 + STAMP_LEN;
/// The longest frame the generator builds.
pub const MAX_SIZE: usize = MAX_FRAME;

const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const PROTO_UDP: u8 = 17;
const PROTO_TCP: u8 = 6;

/// Transport of generated frames.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP (IPv4: checksum 0, none, which IPv4 allows; IPv6: a correct checksum).
    Udp,
    /// TCP with the ACK flag (checksum not computed: the frames are for forwarding tests).
    /// IPv4 only: the settings refuse it with IPv6 addresses, and an IPv6 port built with
    /// it anyway sends UDP.
    Tcp,
}

/// Frame sizes: one size, or a repeating mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Every frame this long (bytes as software sees them, without FCS). IPv6 frames are at
    /// least [`MIN_SIZE_V6`] long: a smaller size is raised to it.
    Fixed(usize),
    /// Simple IMIX: 7 frames of 64 bytes, 4 of 576, 1 of 1500, repeating (IPv6: 82 bytes,
    /// [`MIN_SIZE_V6`], in place of 64).
    Imix,
}

/// The source and destination address of flow 0, of one family.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// IPv4 frames.
    V4 {
        /// Source address of flow 0.
        src: Ipv4Addr,
        /// The first destination.
        dst: Ipv4Addr,
    },
    /// IPv6 frames (UDP).
    V6 {
        /// Source address of flow 0.
        src: Ipv6Addr,
        /// The first destination.
        dst: Ipv6Addr,
    },
}

impl Addresses {
    /// IPv4's default source and destination: 198.18.0.1 and 198.19.0.1 (RFC 2544's
    /// benchmarking range, 198.18.0.0/15).
    pub const V4_DEFAULTS: (Ipv4Addr, Ipv4Addr) =
        (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 0, 1));
    /// IPv6's: 2001:2::1 and 2001:2:0:1::1 (RFC 5180's benchmarking range, 2001:2::/48).
    pub const V6_DEFAULTS: (Ipv6Addr, Ipv6Addr) = (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1),
    );
    /// IPv4 frames between [`V4_DEFAULTS`](Self::V4_DEFAULTS).
    pub const DEFAULT_V4: Addresses = Addresses::V4 {
        src: Self::V4_DEFAULTS.0,
        dst: Self::V4_DEFAULTS.1,
    };
    /// IPv6 frames between [`V6_DEFAULTS`](Self::V6_DEFAULTS).
    pub const DEFAULT_V6: Addresses = Addresses::V6 {
        src: Self::V6_DEFAULTS.0,
        dst: Self::V6_DEFAULTS.1,
    };

    /// Whether the frames are IPv6.
    pub fn is_ipv6(&self) -> bool {
        matches!(self, Addresses::V6 { .. })
    }

    /// The shortest frame of this family: [`MIN_SIZE`] or [`MIN_SIZE_V6`].
    pub fn min_size(&self) -> usize {
        match self {
            Addresses::V4 { .. } => MIN_SIZE,
            Addresses::V6 { .. } => MIN_SIZE_V6,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Number of flows; flow `i` has source MAC, address and port `base + i` (IPv6: the
    /// address's low 64 bits count).
    pub flows: u32,
    /// Frame sizes.
    pub sizes: Sizes,
    /// Packets per second; `None` for as fast as possible.
    pub rate_pps: Option<u64>,
    /// Stop after this many packets; `None` for no end.
    pub count: Option<u64>,
    /// Source MAC of flow 0.
    pub src_mac: MacAddr,
    /// Destination MAC of every frame.
    pub dst_mac: MacAddr,
    /// Source address of flow 0 and the first destination, which choose the family.
    pub addresses: Addresses,
    /// Number of destinations: frame `i` goes to destination `i mod dst_flows` (for
    /// routers: spread the lookups over many routes).
    pub dst_flows: u32,
    /// Distance between consecutive destinations. IPv4: added to the address (its low 32
    /// bits count; the settings refuse more). IPv6: a number of /64 networks, added to the
    /// upper 64 bits (wrapping within them), so that destination `j` is `dst + j * step`
    /// /64s on, with `dst`'s interface identifier.
    pub dst_step: u64,
    /// Source port of flow 0 (flows wrap within 1024..=65535).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// UDP or TCP (TCP with IPv4 only).
    pub proto: Proto,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            flows: 1,
            sizes: Sizes::Fixed(64),
            rate_pps: None,
            count: None,
            src_mac: MacAddr([0x02, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([0x02, 0xff, 0, 0, 0, 0x01]),
            addresses: Addresses::DEFAULT_V4,
            dst_flows: 1,
            dst_step: 1,
            src_port: 1024,
            dst_port: 5001,
            proto: Proto::Udp,
        }
    }
}

const IMIX: [usize; 12] = [64, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1500];

/// Internet checksum of `data` (RFC 1071): the reference the tests hold the fast path to.
#[cfg(test)]
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let word = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += word as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The one's-complement sum (unfolded) of a 20-byte IPv4 header's words, leaving out the
/// checksum and both addresses: the part of the checksum that is the same for every frame
/// of a template.
fn ipv4_fixed_sum(h: &[u8]) -> u32 {
    (0..10)
        .filter(|&w| !matches!(w, 5..=9))
        .map(|w| u32::from(u16::from_be_bytes([h[2 * w], h[2 * w + 1]])))
        .sum()
}

/// The IPv4 header checksum from the fixed part's sum and the two addresses.
#[inline]
fn ipv4_checksum(fixed: u32, src: u32, dst: u32) -> u16 {
    let mut sum = fixed + (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// The one's-complement sum (unfolded) of what an IPv6 UDP frame's checksum covers and that
/// is the same for every frame of its template (`f`, the whole frame): the pseudo-header's
/// length and next header, the UDP header's destination port and length, and the payload
/// but the stamp's sequence number and time. Left out: the addresses, the source port, the
/// checksum itself, the sequence number and the time.
fn udp6_fixed_sum(f: &[u8]) -> u32 {
    let udp = &f[ETH_HEADER + IPV6_HEADER..];
    // The pseudo-header's upper-layer length is 32 bits and its next header is the last of
    // four bytes: as words, 0 and the length, then 0 and 17.
    let mut sum = udp.len() as u32 + u32::from(PROTO_UDP);
    let varies = |at: usize| at < 2 || (6..8).contains(&at) || (12..28).contains(&at);
    for (i, c) in udp.chunks(2).enumerate() {
        if !varies(2 * i) {
            sum += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
        }
    }
    sum
}

/// The words of `x` summed as two 32-bit halves: congruent, modulo 0xffff, with the
/// one's-complement sum of its four 16-bit words (2^16 is 1 modulo 0xffff).
#[inline(always)]
fn sum64(x: u64) -> u64 {
    (x >> 32) + (x & 0xffff_ffff)
}

/// The same for a 128-bit address.
#[inline(always)]
fn sum128(x: u128) -> u64 {
    sum64((x >> 64) as u64) + sum64(x as u64)
}

/// The UDP checksum of an IPv6 frame from its template's fixed sum, its addresses, its
/// source port, and the sum of its sequence number and time ([`sum64`] of each). A computed
/// 0 goes out as 0xffff (RFC 8200 section 8.1: 0 would say "no checksum", which IPv6 does
/// not allow).
#[inline(always)]
fn udp6_checksum(fixed: u32, src: u128, dst: u128, port: u16, stamp: u64) -> u16 {
    // At most 2^26 + 8 * 2^32 + 2^16 + 4 * 2^32: no overflow.
    let mut s = u64::from(fixed) + sum128(src) + sum128(dst) + u64::from(port) + stamp;
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    match !(s as u16) {
        0 => 0xffff,
        c => c,
    }
}

/// Build the IPv4 frame of `size` bytes for flow 0.
fn template(cfg: &GeneratorConfig, (src, dst): (Ipv4Addr, Ipv4Addr), size: usize) -> Vec<u8> {
    let size = size.clamp(MIN_SIZE, MAX_SIZE);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&cfg.dst_mac.0);
    f[6..12].copy_from_slice(&cfg.src_mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4);
    let ip_len = (size - ETH_HEADER) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = match cfg.proto {
        Proto::Udp => PROTO_UDP,
        Proto::Tcp => PROTO_TCP,
    };
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let l4 = &mut f[34..];
    l4[0..2].copy_from_slice(&cfg.src_port.to_be_bytes());
    l4[2..4].copy_from_slice(&cfg.dst_port.to_be_bytes());
    if cfg.proto == Proto::Udp {
        l4[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    }
    // (For TCP the stamp overlays sequence/ack numbers: the frames only need forwarding.)
    f[STAMP_OFFSET..STAMP_OFFSET + 4].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
    f
}

/// Build the IPv6 UDP frame of `size` bytes for flow 0 (its UDP checksum is left 0: each
/// frame gets its own).
fn template6(cfg: &GeneratorConfig, (src, dst): (Ipv6Addr, Ipv6Addr), size: usize) -> Vec<u8> {
    let size = size.clamp(MIN_SIZE_V6, MAX_SIZE);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&cfg.dst_mac.0);
    f[6..12].copy_from_slice(&cfg.src_mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV6);
    let payload = (size - ETH_HEADER - IPV6_HEADER) as u16;
    let ip = &mut f[ETH_HEADER..ETH_HEADER + IPV6_HEADER];
    ip[0] = 0x60; // version 6, traffic class and flow label 0
    ip[4..6].copy_from_slice(&payload.to_be_bytes());
    ip[6] = PROTO_UDP;
    ip[7] = 64; // hop limit
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
    let udp = &mut f[ETH_HEADER + IPV6_HEADER..];
    udp[0..2].copy_from_slice(&cfg.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&cfg.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&payload.to_be_bytes());
    f[STAMP_OFFSET_V6..STAMP_OFFSET_V6 + 4].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
    f
}

/// Bytes of an IPv4 template copied as one fixed-size block (no call to `memcpy`).
const HEAD: usize = 64;
/// The same for IPv6: its shortest frame is 82 bytes.
const HEAD_V6: usize = 96;

/// A template frame, split for copying: its first `H` bytes (zero-padded) as one block, and
/// the rest.
struct Template<const H: usize> {
    head: [u8; H],
    rest: Vec<u8>,
    len: usize,
    /// The sum of its checksummed words that no frame changes: [`ipv4_fixed_sum`] of its
    /// IPv4 header, or [`udp6_fixed_sum`].
    fixed: u32,
}

impl<const H: usize> Template<H> {
    fn new(frame: Vec<u8>, fixed: u32) -> Self {
        let mut head = [0u8; H];
        let n = frame.len().min(H);
        head[..n].copy_from_slice(&frame[..n]);
        Template {
            head,
            rest: frame.get(H..).unwrap_or_default().to_vec(),
            len: frame.len(),
            fixed,
        }
    }

    /// Write the frame into the empty packet `pkt` and return its first `N` bytes (`N` at
    /// most `H`), where the fields that vary are.
    #[inline(always)]
    fn write<'a, const N: usize>(&self, pkt: &'a mut Packet) -> &'a mut [u8; N] {
        let room = pkt.room_mut();
        // Every buffer has room for the largest frame (MAX_SIZE), so these cannot fail.
        room[..H].copy_from_slice(&self.head);
        if !self.rest.is_empty() {
            room[H..self.len].copy_from_slice(&self.rest);
        }
        pkt.set_len(self.len);
        let f: &mut [u8; H] = (&mut pkt.room_mut()[..H]).try_into().expect("H bytes");
        f.first_chunk_mut::<N>().expect("N <= H")
    }
}

/// What varies from frame to frame in both families: the flow (with its source MAC and
/// port), the destination's number, the template and the sequence number.
struct Walk {
    flows: u32,
    dst_flows: u32,
    first_mac: u64,
    first_port: u16,
    /// The next frame's flow, and that flow's source MAC (as a number) and port.
    flow: u32,
    mac: u64,
    port: u16,
    /// The next frame's destination number.
    dst: u32,
    /// The next frame's template.
    next_size: usize,
    seq: u64,
}

impl Walk {
    /// Step to the next frame's flow and destination; `family` follows with its addresses.
    #[inline(always)]
    fn advance<F: Family>(&mut self, family: &mut F) {
        self.flow += 1;
        if self.flow >= self.flows {
            self.flow = 0;
            self.mac = self.first_mac;
            family.first_flow();
            self.port = self.first_port;
        } else {
            self.mac = self.mac.wrapping_add(1) & 0xffff_ffff_ffff;
            family.next_flow();
            self.port = if self.port == u16::MAX {
                1024
            } else {
                self.port + 1
            };
        }
        if self.dst_flows > 1 {
            self.dst += 1;
            if self.dst >= self.dst_flows {
                self.dst = 0;
            }
            family.to_dst(self.dst);
        }
    }
}

/// The send time of a burst's frames, as bytes and as its [`sum64`].
struct Now {
    bytes: [u8; 8],
    sum: u64,
}

/// One address family's half of a generator: its templates and the next frame's addresses.
trait Family {
    /// Number of templates (frame sizes), taken in turn.
    fn templates(&self) -> usize;
    /// Write the frame of template `t` into `pkt` for `walk`'s flow, destination and
    /// sequence number, sent `now`; its length.
    fn frame(&self, t: usize, pkt: &mut Packet, walk: &Walk, now: &Now) -> usize;
    /// Back to flow 0's source address.
    fn first_flow(&mut self);
    /// The next flow's source address.
    fn next_flow(&mut self);
    /// The address of destination `dst`.
    fn to_dst(&mut self, dst: u32);
}

/// IPv4 frames.
struct V4 {
    templates: Vec<Template<HEAD>>,
    first_src: u32,
    first_dst: u32,
    step: u32,
    /// The next frame's source and destination.
    src: u32,
    dst: u32,
}

impl Family for V4 {
    fn templates(&self) -> usize {
        self.templates.len()
    }

    #[inline(always)]
    fn frame(&self, t: usize, pkt: &mut Packet, w: &Walk, now: &Now) -> usize {
        let t = &self.templates[t];
        let f: &mut [u8; MIN_SIZE] = t.write(pkt);
        // Flow `flow` has the source MAC, address and port of flow 0 plus `flow` (ports
        // wrap within 1024..=65535).
        f[6..12].copy_from_slice(&w.mac.to_be_bytes()[2..]);
        f[26..30].copy_from_slice(&self.src.to_be_bytes());
        f[30..34].copy_from_slice(&self.dst.to_be_bytes());
        f[34..36].copy_from_slice(&w.port.to_be_bytes());
        let sum = ipv4_checksum(t.fixed, self.src, self.dst);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        // The magic word is in the template.
        let s = &mut f[STAMP_OFFSET + 4..STAMP_OFFSET + STAMP_LEN];
        s[0..8].copy_from_slice(&w.seq.to_be_bytes());
        s[8..16].copy_from_slice(&now.bytes);
        t.len
    }

    #[inline(always)]
    fn first_flow(&mut self) {
        self.src = self.first_src;
    }

    #[inline(always)]
    fn next_flow(&mut self) {
        self.src = self.src.wrapping_add(1);
    }

    #[inline(always)]
    fn to_dst(&mut self, dst: u32) {
        self.dst = self.first_dst.wrapping_add(dst.wrapping_mul(self.step));
    }
}

/// IPv6 UDP frames.
struct V6 {
    templates: Vec<Template<HEAD_V6>>,
    first_src: u128,
    first_dst: u128,
    step: u64,
    /// The next frame's source and destination.
    src: u128,
    dst: u128,
}

/// The low 64 bits of an IPv6 address.
const LOW64: u128 = u64::MAX as u128;

impl Family for V6 {
    fn templates(&self) -> usize {
        self.templates.len()
    }

    #[inline(always)]
    fn frame(&self, t: usize, pkt: &mut Packet, w: &Walk, now: &Now) -> usize {
        const SRC: usize = ETH_HEADER + 8;
        const DST: usize = ETH_HEADER + 24;
        const UDP: usize = ETH_HEADER + IPV6_HEADER;
        let t = &self.templates[t];
        let f: &mut [u8; MIN_SIZE_V6] = t.write(pkt);
        f[6..12].copy_from_slice(&w.mac.to_be_bytes()[2..]);
        f[SRC..SRC + 16].copy_from_slice(&self.src.to_be_bytes());
        f[DST..DST + 16].copy_from_slice(&self.dst.to_be_bytes());
        f[UDP..UDP + 2].copy_from_slice(&w.port.to_be_bytes());
        let s = &mut f[STAMP_OFFSET_V6 + 4..STAMP_OFFSET_V6 + STAMP_LEN];
        s[0..8].copy_from_slice(&w.seq.to_be_bytes());
        s[8..16].copy_from_slice(&now.bytes);
        let stamp = sum64(w.seq) + now.sum;
        let sum = udp6_checksum(t.fixed, self.src, self.dst, w.port, stamp);
        f[UDP + 6..UDP + 8].copy_from_slice(&sum.to_be_bytes());
        t.len
    }

    #[inline(always)]
    fn first_flow(&mut self) {
        self.src = self.first_src;
    }

    /// One more in the low 64 bits, wrapping within them.
    #[inline(always)]
    fn next_flow(&mut self) {
        self.src = (self.src & !LOW64) | u128::from((self.src as u64).wrapping_add(1));
    }

    /// `dst` times the step in /64s on from the first, wrapping within the upper 64 bits.
    #[inline(always)]
    fn to_dst(&mut self, dst: u32) {
        let net =
            ((self.first_dst >> 64) as u64).wrapping_add(u64::from(dst).wrapping_mul(self.step));
        self.dst = (u128::from(net) << 64) | (self.first_dst & LOW64);
    }
}

/// The port's family, chosen when it is built.
enum Families {
    V4(V4),
    V6(V6),
}

/// Build `walk`'s next frames into `pkts` (empty packets); (frames, bytes).
#[inline(always)]
fn fill<F: Family>(family: &mut F, w: &mut Walk, pkts: &mut [Packet], now: &Now) -> (usize, usize) {
    let sizes = family.templates();
    let mut bytes = 0;
    let mut made = 0;
    for pkt in pkts {
        let t = w.next_size;
        w.next_size += 1;
        if w.next_size == sizes {
            w.next_size = 0;
        }
        bytes += family.frame(t, pkt, w, now);
        w.seq += 1;
        w.advance(family);
        made += 1;
    }
    (made, bytes)
}

/// A port that generates frames; see the module documentation.
pub struct GeneratorPort {
    cfg: GeneratorConfig,
    family: Families,
    walk: Walk,
    clock: Clock,
    start_ns: Option<u64>,
}

impl GeneratorPort {
    /// A generator for `cfg`.
    pub fn new(cfg: GeneratorConfig) -> Self {
        let sizes: Vec<usize> = match &cfg.sizes {
            Sizes::Fixed(s) => vec![*s],
            Sizes::Imix => IMIX.to_vec(),
        };
        let family = match cfg.addresses {
            Addresses::V4 { src, dst } => Families::V4(V4 {
                templates: sizes
                    .iter()
                    .map(|&s| {
                        let f = template(&cfg, (src, dst), s);
                        let fixed = ipv4_fixed_sum(&f[ETH_HEADER..ETH_HEADER + IPV4_HEADER]);
                        Template::new(f, fixed)
                    })
                    .collect(),
                first_src: src.into(),
                first_dst: dst.into(),
                // The settings refuse IPv4 steps of 2^32 or more.
                step: cfg.dst_step as u32,
                src: src.into(),
                dst: dst.into(),
            }),
            Addresses::V6 { src, dst } => Families::V6(V6 {
                templates: sizes
                    .iter()
                    .map(|&s| {
                        let f = template6(&cfg, (src, dst), s);
                        let fixed = udp6_fixed_sum(&f);
                        Template::new(f, fixed)
                    })
                    .collect(),
                first_src: src.into(),
                first_dst: dst.into(),
                step: cfg.dst_step,
                src: src.into(),
                dst: dst.into(),
            }),
        };
        let mac = cfg.src_mac.to_u64();
        GeneratorPort {
            family,
            walk: Walk {
                flows: cfg.flows.max(1),
                dst_flows: cfg.dst_flows,
                first_mac: mac,
                first_port: cfg.src_port,
                flow: 0,
                mac,
                port: cfg.src_port,
                dst: 0,
                next_size: 0,
                seq: 0,
            },
            cfg,
            clock: Clock::global(),
            start_ns: None,
        }
    }

    /// Frames generated so far.
    pub fn generated(&self) -> u64 {
        self.walk.seq
    }

    /// How many frames may go now, by count and rate.
    fn allowance(&mut self, room: usize) -> usize {
        let mut n = room as u64;
        if let Some(c) = self.cfg.count {
            n = n.min(c.saturating_sub(self.walk.seq));
        }
        if let Some(rate) = self.cfg.rate_pps {
            let now = self.clock.now().0;
            let start = *self.start_ns.get_or_insert(now);
            let due = ((now - start) as u128 * rate as u128 / 1_000_000_000) as u64;
            n = n.min(due.saturating_sub(self.walk.seq));
        }
        n as usize
    }
}

impl Port for GeneratorPort {
    fn kind(&self) -> &'static str {
        "generator"
    }

    fn rx_burst(&mut self, pool: &mut Pool, batch: &mut Batch, counters: &PortCounters) {
        let n = self.allowance(batch.room());
        if n == 0 {
            return;
        }
        // Take the burst's buffers at once, then build each frame in place.
        let start = batch.len();
        if pool.alloc_into(batch, n) < n {
            counters.drops.add(DropReason::NoBuffers, 1);
        }
        let now = self.clock.now().0;
        let now = Now {
            bytes: now.to_be_bytes(),
            sum: sum64(now),
        };
        let pkts = batch.tail_mut(start);
        // One choice per burst; each loop is the family's own.
        let (made, bytes) = match &mut self.family {
            Families::V4(f) => fill(f, &mut self.walk, pkts, &now),
            Families::V6(f) => fill(f, &mut self.walk, pkts, &now),
        };
        counters.rx_many(made, bytes);
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        for pkt in batch.drain() {
            counters.tx(pkt.len());
            pool.free(pkt);
        }
    }

    fn max_frame(&self) -> usize {
        MAX_FRAME
    }
}

/// The (sequence, send time in ns of [`Clock::global`]) stamp of a generated frame, if it
/// carries one: untagged IPv4 or IPv6 with the magic word right after the UDP header (IPv4
/// without options, IPv6 without extension headers, as the generator sends them).
#[inline]
pub fn read_stamp(frame: &[u8]) -> Option<(u64, u64)> {
    let at = match frame.get(12..14)? {
        t if t == ETHERTYPE_IPV4 => STAMP_OFFSET,
        t if t == ETHERTYPE_IPV6 => STAMP_OFFSET_V6,
        _ => return None,
    };
    let s = frame.get(at..at + STAMP_LEN)?;
    if s[0..4] != STAMP_MAGIC.to_be_bytes() {
        return None;
    }
    let mut seq = [0u8; 8];
    let mut t = [0u8; 8];
    seq.copy_from_slice(&s[4..12]);
    t.copy_from_slice(&s[12..20]);
    Some((u64::from_be_bytes(seq), u64::from_be_bytes(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(cfg: GeneratorConfig, pool: &mut Pool) -> Vec<Vec<u8>> {
        let mut g = GeneratorPort::new(cfg);
        let mut b = Batch::new();
        let c = PortCounters::default();
        g.rx_burst(pool, &mut b, &c);
        let v: Vec<Vec<u8>> = b.iter().map(|p| p.data().to_vec()).collect();
        for p in b.drain() {
            pool.free(p);
        }
        v
    }

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Addresses {
        Addresses::V4 {
            src: src.into(),
            dst: dst.into(),
        }
    }

    fn v6(src: &str, dst: &str) -> Addresses {
        Addresses::V6 {
            src: src.parse().expect("IPv6"),
            dst: dst.parse().expect("IPv6"),
        }
    }

    #[test]
    fn source_ports_wrap_within_1024_and_destinations_step() {
        let mut pool = Pool::new(64);
        let frames = generate(
            GeneratorConfig {
                flows: 3,
                src_port: 65534,
                dst_flows: 2,
                dst_step: 256,
                count: Some(7),
                ..GeneratorConfig::default()
            },
            &mut pool,
        );
        let ports: Vec<u16> = frames
            .iter()
            .map(|f| u16::from_be_bytes([f[34], f[35]]))
            .collect();
        assert_eq!(ports, [65534, 65535, 1024, 65534, 65535, 1024, 65534]);
        let dsts: Vec<[u8; 4]> = frames
            .iter()
            .map(|f| [f[30], f[31], f[32], f[33]])
            .collect();
        let (a, b) = ([198, 19, 0, 1], [198, 19, 1, 1]);
        assert_eq!(dsts, [a, b, a, b, a, b, a]);
        for f in &frames {
            assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
        }
    }

    #[test]
    fn frames_are_valid_ipv4_udp_with_stamps_and_flows() {
        let mut pool = Pool::new(64);
        let frames = generate(
            GeneratorConfig {
                flows: 3,
                count: Some(5),
                ..GeneratorConfig::default()
            },
            &mut pool,
        );
        assert_eq!(frames.len(), 5);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.len(), 64);
            assert_eq!(f[12..14], ETHERTYPE_IPV4);
            assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum of frame {i}");
            let mut h = f[14..34].to_vec();
            h[10..12].copy_from_slice(&[0, 0]);
            let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            assert_eq!(
                ipv4_checksum(ipv4_fixed_sum(&h), word(12), word(16)),
                checksum(&h),
                "fast and reference sums agree"
            );
            assert_eq!(u16::from_be_bytes([f[16], f[17]]), 50, "IPv4 total length");
            assert_eq!(u16::from_be_bytes([f[38], f[39]]), 30, "UDP length");
            let flow = (i % 3) as u8;
            assert_eq!(f[11], 1 + flow, "source MAC of flow {flow}");
            assert_eq!(f[29], 1 + flow, "source IP of flow {flow}");
            let (seq, _) = read_stamp(f).expect("stamp");
            assert_eq!(seq, i as u64);
        }
        assert_eq!(pool.available(), 64);
    }

    /// An IPv6 UDP frame as a receiver checks it; (source address, destination address,
    /// source port).
    fn parse_ipv6_udp(f: &[u8]) -> (u128, u128, u16) {
        assert_eq!(f[12..14], ETHERTYPE_IPV6, "EtherType");
        let ip = &f[14..54];
        assert_eq!(ip[0] >> 4, 6, "version");
        assert_eq!(
            (ip[0] & 0xf, ip[1], ip[2], ip[3]),
            (0, 0, 0, 0),
            "traffic class, flow label"
        );
        let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        assert_eq!(payload, f.len() - 54, "payload length");
        assert_eq!((ip[6], ip[7]), (PROTO_UDP, 64), "next header, hop limit");
        let udp = &f[54..];
        assert_eq!(usize::from(u16::from_be_bytes([udp[4], udp[5]])), payload);
        let sent = u16::from_be_bytes([udp[6], udp[7]]);
        assert_ne!(sent, 0, "IPv6 requires a UDP checksum");
        // The pseudo-header (RFC 8200 section 8.1), then the UDP header and data.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[8..40]);
        pseudo.extend_from_slice(&(payload as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, PROTO_UDP]);
        pseudo.extend_from_slice(udp);
        assert_eq!(checksum(&pseudo), 0, "UDP checksum verifies");
        let mut zeroed = pseudo.clone();
        zeroed[40 + 6..40 + 8].copy_from_slice(&[0, 0]);
        let expect = match checksum(&zeroed) {
            0 => 0xffff,
            c => c,
        };
        assert_eq!(sent, expect, "the checksum a sender computes");
        let addr = |b: &[u8]| u128::from_be_bytes(b.try_into().expect("16 bytes"));
        (
            addr(&ip[8..24]),
            addr(&ip[24..40]),
            u16::from_be_bytes([udp[0], udp[1]]),
        )
    }

    #[test]
    fn frames_are_valid_ipv6_udp_with_stamps_and_flows() {
        let mut pool = Pool::new(64);
        let frames = generate(
            GeneratorConfig {
                flows: 3,
                count: Some(7),
                addresses: v6("fd00::10", "2001:db8::1"),
                src_port: 2000,
                dst_port: 53,
                ..GeneratorConfig::default()
            },
            &mut pool,
        );
        assert_eq!(frames.len(), 7);
        let src0: u128 = "fd00::10".parse::<Ipv6Addr>().expect("IPv6").into();
        let dst: u128 = "2001:db8::1".parse::<Ipv6Addr>().expect("IPv6").into();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(
                f.len(),
                MIN_SIZE_V6,
                "the default size is raised to IPv6's least"
            );
            let (src, to, port) = parse_ipv6_udp(f);
            let flow = (i % 3) as u16;
            assert_eq!(
                src,
                src0 + u128::from(flow),
                "source address of flow {flow}"
            );
            assert_eq!(to, dst);
            assert_eq!(port, 2000 + flow);
            assert_eq!(u16::from_be_bytes([f[56], f[57]]), 53, "destination port");
            assert_eq!(f[11], 1 + flow as u8, "source MAC of flow {flow}");
            let (seq, _) = read_stamp(f).expect("stamp");
            assert_eq!(seq, i as u64);
        }
        // Frames differ only in what varies: the same flow's frames differ in the stamp
        // and so in the checksum.
        assert_ne!(frames[0][60..62], frames[3][60..62]);
        assert_eq!(pool.available(), 64);
    }

    #[test]
    fn ipv6_destinations_step_by_64s_and_source_addresses_wrap_in_the_low_64_bits() {
        let mut pool = Pool::new(64);
        let frames = generate(
            GeneratorConfig {
                flows: 2,
                count: Some(6),
                addresses: v6("fd00::ffff:ffff:ffff:ffff", "2001:db8:0:ffff::1"),
                dst_flows: 3,
                dst_step: 65536 + 1,
                ..GeneratorConfig::default()
            },
            &mut pool,
        );
        let parsed: Vec<(u128, u128, u16)> = frames.iter().map(|f| parse_ipv6_udp(f)).collect();
        let a = |s: &str| u128::from(s.parse::<Ipv6Addr>().expect("IPv6"));
        let srcs: Vec<u128> = parsed.iter().map(|p| p.0).collect();
        let (s0, s1) = (a("fd00::ffff:ffff:ffff:ffff"), a("fd00::"));
        assert_eq!(
            srcs,
            [s0, s1, s0, s1, s0, s1],
            "flow 1 wraps within the low 64 bits"
        );
        let dsts: Vec<u128> = parsed.iter().map(|p| p.1).collect();
        let (d0, d1, d2) = (
            a("2001:db8:0:ffff::1"),
            a("2001:db8:2::1"),
            a("2001:db8:3:1::1"),
        );
        assert_eq!(dsts, [d0, d1, d2, d0, d1, d2], "one /48 and one /64 apart");
        // The upper 64 bits wrap within themselves.
        let mut pool = Pool::new(64);
        let frames = generate(
            GeneratorConfig {
                count: Some(2),
                addresses: v6("fd00::1", "ffff:ffff:ffff:ffff::1"),
                dst_flows: 2,
                dst_step: 2,
                ..GeneratorConfig::default()
            },
            &mut pool,
        );
        assert_eq!(parse_ipv6_udp(&frames[1]).1, a("0:0:0:1::1"));
    }

    #[test]
    fn ipv6_checksums_hold_for_any_words_and_a_computed_zero_goes_out_as_ffff() {
        let mut pool = Pool::new(64);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let (src, dst) = (
                Ipv6Addr::from((u128::from(next()) << 64) | u128::from(next())),
                Ipv6Addr::from((u128::from(next()) << 64) | u128::from(next())),
            );
            let r = next();
            for f in generate(
                GeneratorConfig {
                    flows: 1 + (r % 5) as u32,
                    count: Some(4),
                    sizes: Sizes::Fixed(MIN_SIZE_V6 + (r >> 8) as usize % 200),
                    addresses: Addresses::V6 { src, dst },
                    src_port: 1024 + (r >> 16) as u16 % 60000,
                    dst_port: (r >> 32) as u16,
                    dst_flows: 3,
                    dst_step: r >> 3,
                    ..GeneratorConfig::default()
                },
                &mut pool,
            ) {
                parse_ipv6_udp(&f);
            }
        }
        // A frame whose words sum to 0xffff: its checksum computes to 0 and goes out as
        // 0xffff. Adding a frame's checksum to a word (the destination's last, 0) makes
        // its sum 0xffff.
        let base = GeneratorConfig {
            addresses: v6("fd00::1", "2001:db8::"),
            ..GeneratorConfig::default()
        };
        let tpl = template6(
            &base,
            (
                "fd00::1".parse().expect("IPv6"),
                "2001:db8::".parse().expect("IPv6"),
            ),
            MIN_SIZE_V6,
        );
        let fixed = udp6_fixed_sum(&tpl);
        let src = u128::from("fd00::1".parse::<Ipv6Addr>().expect("IPv6"));
        let dst0 = u128::from("2001:db8::".parse::<Ipv6Addr>().expect("IPv6"));
        let stamp = sum64(7) + sum64(12345);
        let c0 = udp6_checksum(fixed, src, dst0, 1024, stamp);
        let dst = dst0 + u128::from(c0);
        assert_eq!(udp6_checksum(fixed, src, dst, 1024, stamp), 0xffff);
        let mut frame = tpl.clone();
        frame[38..54].copy_from_slice(&dst.to_be_bytes());
        frame[66..74].copy_from_slice(&7u64.to_be_bytes());
        frame[74..82].copy_from_slice(&12345u64.to_be_bytes());
        frame[60..62].copy_from_slice(&0xffffu16.to_be_bytes());
        parse_ipv6_udp(&frame);
    }

    #[test]
    fn ipv6_sizes_and_imix() {
        let mut pool = Pool::new(64);
        for size in [MIN_SIZE_V6, 83, 128, 1500] {
            let frames = generate(
                GeneratorConfig {
                    sizes: Sizes::Fixed(size),
                    count: Some(2),
                    addresses: Addresses::DEFAULT_V6,
                    ..GeneratorConfig::default()
                },
                &mut pool,
            );
            for f in &frames {
                assert_eq!(f.len(), size);
                parse_ipv6_udp(f);
                assert!(read_stamp(f).is_some());
            }
        }
        let frames = generate(
            GeneratorConfig {
                sizes: Sizes::Imix,
                count: Some(12),
                addresses: Addresses::DEFAULT_V6,
                ..GeneratorConfig::default()
            },
            &mut pool,
        );
        let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
        let expect: Vec<usize> = IMIX.iter().map(|&s| s.max(MIN_SIZE_V6)).collect();
        assert_eq!(sizes, expect);
        for (i, f) in frames.iter().enumerate() {
            parse_ipv6_udp(f);
            assert_eq!(read_stamp(f).map(|s| s.0), Some(i as u64));
        }
        assert_eq!(pool.available(), 64);
    }

    #[test]
    fn count_and_rate_limit_the_stream() {
        let mut pool = Pool::new(256);
        let mut g = GeneratorPort::new(GeneratorConfig {
            count: Some(100),
            ..GeneratorConfig::default()
        });
        let c = PortCounters::default();
        let mut total = 0;
        for _ in 0..5 {
            let mut b = Batch::new();
            g.rx_burst(&mut pool, &mut b, &c);
            total += b.len();
            for p in b.drain() {
                pool.free(p);
            }
        }
        assert_eq!(total, 100);
        assert_eq!(c.rx_packets.get(), 100);

        let mut slow = GeneratorPort::new(GeneratorConfig {
            rate_pps: Some(1000),
            ..GeneratorConfig::default()
        });
        let mut b = Batch::new();
        slow.rx_burst(&mut pool, &mut b, &c);
        assert!(b.len() <= 1, "nothing is due at the start");
        for p in b.drain() {
            pool.free(p);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        slow.rx_burst(&mut pool, &mut b, &c);
        assert!(
            (10..=30).contains(&b.len()),
            "about 20 due after 20 ms, got {}",
            b.len()
        );
        for p in b.drain() {
            pool.free(p);
        }
    }

    #[test]
    fn imix_cycles_sizes_and_stamps_survive_reading() {
        let mut pool = Pool::new(64);
        let frames = generate(
            GeneratorConfig {
                sizes: Sizes::Imix,
                count: Some(12),
                ..GeneratorConfig::default()
            },
            &mut pool,
        );
        let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
        assert_eq!(sizes, IMIX.to_vec());
        assert!(read_stamp(&frames[0][..40]).is_none());
        let mut not_ip = frames[0].clone();
        not_ip[12] = 0x88;
        assert!(read_stamp(&not_ip).is_none());
        assert!(read_stamp(&frames[0][..12]).is_none());
    }

    #[test]
    fn stamps_are_read_in_both_families_and_only_where_each_puts_them() {
        let mut pool = Pool::new(64);
        let four = generate(
            GeneratorConfig {
                count: Some(1),
                addresses: v4([10, 0, 0, 1], [10, 0, 0, 2]),
                ..GeneratorConfig::default()
            },
            &mut pool,
        )
        .remove(0);
        let six = generate(
            GeneratorConfig {
                count: Some(1),
                addresses: Addresses::DEFAULT_V6,
                ..GeneratorConfig::default()
            },
            &mut pool,
        )
        .remove(0);
        let (s4, t4) = read_stamp(&four).expect("IPv4 stamp");
        let (s6, t6) = read_stamp(&six).expect("IPv6 stamp");
        assert_eq!((s4, s6), (0, 0));
        assert!(t4 > 0 && t6 > 0);
        // Each family's stamp is at its own place: the other EtherType misses it.
        let mut swapped = six.clone();
        swapped[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        assert!(read_stamp(&swapped).is_none());
        let mut swapped = four.clone();
        swapped[12..14].copy_from_slice(&ETHERTYPE_IPV6);
        assert!(read_stamp(&swapped).is_none());
        // Cut short of the stamp's end.
        assert!(read_stamp(&six[..MIN_SIZE_V6 - 1]).is_none());
        assert!(read_stamp(&four[..MIN_SIZE - 1]).is_none());
    }
}
