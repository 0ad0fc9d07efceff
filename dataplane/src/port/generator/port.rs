//! A packet generator port and the latency stamp it writes.
//!
//! The generator "receives" frames it builds itself: for each packet it takes a pool
//! buffer, copies a template frame (Ethernet + IPv4 + UDP or TCP) of the chosen size into
//! it, and patches the fields that vary per flow (source MAC, source IPv4 address and its
//! header checksum, source port) and the stamp: a magic word, a sequence number and the
//! send time. Flows take turns; the rate is a token bucket over the generator's own clock;
//! an optional count ends the stream. Frames sent *to* a generator are discarded.
//!
//! Any sink can read the stamp back with [`read_stamp`] to measure latency.

use std::net::Ipv4Addr;

use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::drop_reason::DropReason;
use crate::mac::MacAddr;
use crate::packet::{Packet, Pool, MAX_FRAME};
use crate::port::{Port, ETH_HEADER};
use crate::time::Clock;

/// Marks a frame as carrying a generator stamp.
pub const STAMP_MAGIC: u32 = 0x6e66_7631; // "nfv1"
/// Where the stamp starts: after Ethernet (14), IPv4 (20) and UDP (8) headers.
const STAMP_OFFSET: usize = ETH_HEADER + 20 + 8;
/// Magic (4) + sequence (8) + time (8).
const STAMP_LEN: usize = 20;
/// The shortest frame the generator builds (with its stamp), and the longest.
pub const MIN_SIZE: usize = STAMP_OFFSET + STAMP_LEN;
/// The longest frame the generator builds.
pub const MAX_SIZE: usize = MAX_FRAME;

/// Transport of generated frames.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP (checksum 0: none, which IPv4 allows).
    Udp,
    /// TCP with the ACK flag (checksum not computed: the frames are for forwarding tests).
    Tcp,
}

/// Frame sizes: one size, or a repeating mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Every frame this long (bytes as software sees them, without FCS).
    Fixed(usize),
    /// Simple IMIX: 7 frames of 64 bytes, 4 of 576, 1 of 1500, repeating.
    Imix,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Number of flows; flow `i` has source MAC, IPv4 address and port `base + i`.
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
    /// Source IPv4 address of flow 0.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address of the first destination.
    pub dst_ip: Ipv4Addr,
    /// Number of destinations: frame `i` goes to `dst_ip + (i mod dst_flows) * dst_step`
    /// (for routers: spread the lookups over many routes).
    pub dst_flows: u32,
    /// Distance between consecutive destination addresses.
    pub dst_step: u32,
    /// Source port of flow 0 (flows wrap within 1024..=65535).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// UDP or TCP.
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
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 19, 0, 1),
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

/// Build the frame of `size` bytes for flow 0.
fn template(cfg: &GeneratorConfig, size: usize) -> Vec<u8> {
    let size = size.clamp(MIN_SIZE, MAX_SIZE);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&cfg.dst_mac.0);
    f[6..12].copy_from_slice(&cfg.src_mac.0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (size - ETH_HEADER) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = match cfg.proto {
        Proto::Udp => 17,
        Proto::Tcp => 6,
    };
    ip[12..16].copy_from_slice(&cfg.src_ip.octets());
    ip[16..20].copy_from_slice(&cfg.dst_ip.octets());
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

/// Bytes of a template copied as one fixed-size block (no call to `memcpy`).
const HEAD: usize = 64;

/// A template frame, split for copying: its first [`HEAD`] bytes (zero-padded) as one
/// block, and the rest.
struct Template {
    head: [u8; HEAD],
    rest: Vec<u8>,
    len: usize,
    /// Its IPv4 header's fixed sum ([`ipv4_fixed_sum`]).
    fixed: u32,
}

impl Template {
    fn new(frame: Vec<u8>) -> Self {
        let mut head = [0u8; HEAD];
        let n = frame.len().min(HEAD);
        head[..n].copy_from_slice(&frame[..n]);
        Template {
            head,
            rest: frame.get(HEAD..).unwrap_or_default().to_vec(),
            len: frame.len(),
            fixed: ipv4_fixed_sum(&frame[ETH_HEADER..ETH_HEADER + 20]),
        }
    }

    /// Write the frame into the empty packet `pkt` and return its first [`MIN_SIZE`] bytes,
    /// where the fields that vary are.
    #[inline(always)]
    fn write<'a>(&self, pkt: &'a mut Packet) -> &'a mut [u8; MIN_SIZE] {
        let room = pkt.room_mut();
        // Every buffer has room for the largest frame (MAX_SIZE), so these cannot fail.
        room[..HEAD].copy_from_slice(&self.head);
        if !self.rest.is_empty() {
            room[HEAD..self.len].copy_from_slice(&self.rest);
        }
        pkt.set_len(self.len);
        let f: &mut [u8; HEAD] = (&mut pkt.room_mut()[..HEAD])
            .try_into()
            .expect("HEAD bytes");
        f.first_chunk_mut::<MIN_SIZE>().expect("MIN_SIZE <= HEAD")
    }
}

/// A port that generates frames; see the module documentation.
pub struct GeneratorPort {
    cfg: GeneratorConfig,
    /// One frame per size, for flow 0.
    templates: Vec<Template>,
    next_size: usize,
    /// The next frame's flow, and that flow's source MAC (as a number), address and port.
    flow: u32,
    mac: u64,
    ip: u32,
    port: u16,
    /// The next frame's destination number and address.
    dst: u32,
    dst_ip: u32,
    seq: u64,
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
        let templates = sizes
            .iter()
            .map(|&s| Template::new(template(&cfg, s)))
            .collect();
        let mac = cfg.src_mac.to_u64();
        GeneratorPort {
            templates,
            next_size: 0,
            flow: 0,
            mac,
            ip: u32::from(cfg.src_ip),
            port: cfg.src_port,
            dst: 0,
            dst_ip: u32::from(cfg.dst_ip),
            cfg,
            seq: 0,
            clock: Clock::global(),
            start_ns: None,
        }
    }

    /// Frames generated so far.
    pub fn generated(&self) -> u64 {
        self.seq
    }

    /// How many frames may go now, by count and rate.
    fn allowance(&mut self, room: usize) -> usize {
        let mut n = room as u64;
        if let Some(c) = self.cfg.count {
            n = n.min(c.saturating_sub(self.seq));
        }
        if let Some(rate) = self.cfg.rate_pps {
            let now = self.clock.now().0;
            let start = *self.start_ns.get_or_insert(now);
            let due = ((now - start) as u128 * rate as u128 / 1_000_000_000) as u64;
            n = n.min(due.saturating_sub(self.seq));
        }
        n as usize
    }

    /// Step to the next frame's flow and destination.
    #[inline]
    fn next_flow(&mut self, flows: u32) {
        self.flow += 1;
        if self.flow >= flows {
            self.flow = 0;
            self.mac = self.cfg.src_mac.to_u64();
            self.ip = u32::from(self.cfg.src_ip);
            self.port = self.cfg.src_port;
        } else {
            self.mac = self.mac.wrapping_add(1) & 0xffff_ffff_ffff;
            self.ip = self.ip.wrapping_add(1);
            self.port = if self.port == u16::MAX {
                1024
            } else {
                self.port + 1
            };
        }
        if self.cfg.dst_flows > 1 {
            self.dst += 1;
            if self.dst >= self.cfg.dst_flows {
                self.dst = 0;
            }
            self.dst_ip =
                u32::from(self.cfg.dst_ip).wrapping_add(self.dst.wrapping_mul(self.cfg.dst_step));
        }
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
        let now = self.clock.now().0.to_be_bytes();
        let flows = self.cfg.flows.max(1);
        let mut bytes = 0;
        let mut made = 0;
        for pkt in batch.tail_mut(start) {
            let t = &self.templates[self.next_size];
            self.next_size += 1;
            if self.next_size == self.templates.len() {
                self.next_size = 0;
            }
            let (f, fixed) = (t.write(pkt), t.fixed);
            bytes += t.len;
            // Flow `flow` has the source MAC, address and port of flow 0 plus `flow` (ports
            // wrap within 1024..=65535); the next flow's values follow by one step.
            f[6..12].copy_from_slice(&self.mac.to_be_bytes()[2..]);
            f[26..30].copy_from_slice(&self.ip.to_be_bytes());
            f[30..34].copy_from_slice(&self.dst_ip.to_be_bytes());
            f[34..36].copy_from_slice(&self.port.to_be_bytes());
            let sum = ipv4_checksum(fixed, self.ip, self.dst_ip);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
            // The magic word is in the template.
            let s = &mut f[STAMP_OFFSET + 4..STAMP_OFFSET + STAMP_LEN];
            s[0..8].copy_from_slice(&self.seq.to_be_bytes());
            s[8..16].copy_from_slice(&now);
            self.seq += 1;
            self.next_flow(flows);
            made += 1;
        }
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
/// carries one (untagged IPv4 with the magic word at its place).
#[inline]
pub fn read_stamp(frame: &[u8]) -> Option<(u64, u64)> {
    let s = frame.get(STAMP_OFFSET..STAMP_OFFSET + STAMP_LEN)?;
    if frame[12..14] != [0x08, 0x00] || s[0..4] != STAMP_MAGIC.to_be_bytes() {
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
        let mut not_ipv4 = frames[0].clone();
        not_ipv4[12] = 0x86;
        assert!(read_stamp(&not_ipv4).is_none());
    }
}
