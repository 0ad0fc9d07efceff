//! Frames for unit tests: TCP, UDP and ICMP over IPv4, and TCP, UDP and ICMPv6 over IPv6
//! (with extension headers if wanted), with correct checksums, and checkers that recompute
//! every checksum in full (to test incremental updates and built answers against).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ip::{self, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// MAC of the inside neighbour (a router's interface).
pub const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC of the outside neighbour.
pub const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An address from text.
pub fn ipa(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().expect("address"))
}

/// Ethernet + IPv4 around `l4` (TTL 64, DF).
pub fn ipv4(src: u32, dst: u32, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&OUT_MAC);
    f.extend_from_slice(&IN_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip_packet(src, dst, proto, l4));
    f
}

/// An IPv4 packet (no Ethernet) around `l4`.
pub fn ip_packet(src: u32, dst: u32, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    h[6] = 0x40;
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    ip::set_header_checksum(&mut h);
    h.extend_from_slice(l4);
    h
}

fn pseudo(src: u32, dst: u32, proto: u8, len: usize) -> u64 {
    u64::from(src >> 16)
        + u64::from(src & 0xffff)
        + u64::from(dst >> 16)
        + u64::from(dst & 0xffff)
        + u64::from(proto)
        + len as u64
}

fn l4_checksum(src: u32, dst: u32, proto: u8, seg: &[u8]) -> u16 {
    !ip::fold(pseudo(src, dst, proto, seg.len()) + u64::from(ip::sum(seg)))
}

/// A TCP segment in a frame.
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp_seq(src, sport, dst, dport, flags, 1000, 0, payload)
}

/// A TCP segment with sequence and acknowledgment numbers.
#[allow(clippy::too_many_arguments)]
pub fn tcp_seq(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let (s, d) = (ipa(src), ipa(dst));
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&seq.to_be_bytes());
    seg[8..12].copy_from_slice(&ack.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg[14..16].copy_from_slice(&1024u16.to_be_bytes());
    seg.extend_from_slice(payload);
    let c = l4_checksum(s, d, PROTO_TCP, &seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(s, d, PROTO_TCP, &seg)
}

/// A UDP datagram in a frame; `checksum` false sends checksum 0 (none).
pub fn udp(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    payload: &[u8],
    checksum: bool,
) -> Vec<u8> {
    let (s, d) = (ipa(src), ipa(dst));
    let mut seg = vec![0u8; 8];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    seg.extend_from_slice(payload);
    if checksum {
        let mut c = l4_checksum(s, d, PROTO_UDP, &seg);
        if c == 0 {
            c = 0xffff;
        }
        seg[6..8].copy_from_slice(&c.to_be_bytes());
    }
    ipv4(s, d, PROTO_UDP, &seg)
}

/// An ICMP echo request (`ty` 8) or reply (0).
pub fn echo(src: &str, dst: &str, ty: u8, id: u16) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0, 0, 0, 0, 7];
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m.extend_from_slice(b"payload!");
    let c = ip::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(ipa(src), ipa(dst), PROTO_ICMP, &m)
}

/// An ICMP error from `src` to `dst` quoting the IPv4 packet of `frame` (up to `quote`
/// bytes of it).
pub fn icmp_error(
    src: &str,
    dst: &str,
    ty: u8,
    code: u8,
    rest: u32,
    frame: &[u8],
    quote: usize,
) -> Vec<u8> {
    let inner = &frame[14..];
    let n = quote.min(inner.len());
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(&inner[..n]);
    let c = ip::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(ipa(src), ipa(dst), PROTO_ICMP, &m)
}

/// (src, sport, dst, dport) of a frame's IPv4 packet (ports: TCP/UDP ports, or the ICMP
/// identifier twice).
pub fn tuple(f: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let h = &f[14..];
    let ihl = usize::from(h[0] & 15) * 4;
    let (sp, dp) = match h[9] {
        PROTO_ICMP => (ip::read_u16(h, ihl + 4), ip::read_u16(h, ihl + 4)),
        _ => (ip::read_u16(h, ihl), ip::read_u16(h, ihl + 2)),
    };
    (
        Ipv4Addr::from(ip::read_u32(h, 12)),
        sp,
        Ipv4Addr::from(ip::read_u32(h, 16)),
        dp,
    )
}

/// Check every checksum of the IPv4 packet `p` in full: the header's, TCP's, UDP's (0 is
/// none), ICMP's, and for an ICMP error the quoted header's (and the quoted UDP or ICMP
/// checksum when `quoted_l4` and it is all there). Panics with what is wrong.
pub fn check_packet(p: &[u8], quoted_l4: bool) {
    let ihl = usize::from(p[0] & 15) * 4;
    let total = usize::from(ip::read_u16(p, 2));
    assert!(ip::header_checksum_ok(&p[..ihl]), "IPv4 header checksum");
    let (s, d, proto) = (ip::read_u32(p, 12), ip::read_u32(p, 16), p[9]);
    let seg = &p[ihl..total];
    match proto {
        PROTO_TCP => assert_eq!(
            ip::fold(pseudo(s, d, proto, seg.len()) + u64::from(ip::sum(seg))),
            0xffff,
            "TCP checksum"
        ),
        PROTO_UDP if ip::read_u16(seg, 6) != 0 => assert_eq!(
            ip::fold(pseudo(s, d, proto, seg.len()) + u64::from(ip::sum(seg))),
            0xffff,
            "UDP checksum"
        ),
        PROTO_ICMP => {
            assert_eq!(ip::sum(seg), 0xffff, "ICMP checksum");
            if crate::conntrack::icmp_is_error(seg[0]) && seg.len() >= 28 {
                let q = &seg[8..];
                let qihl = usize::from(q[0] & 15) * 4;
                assert!(
                    ip::header_checksum_ok(&q[..qihl]),
                    "quoted IPv4 header checksum"
                );
                if quoted_l4 && ip::read_u16(q, 2) as usize == q.len() {
                    check_packet(q, false);
                }
            }
        }
        _ => {}
    }
}

/// [`check_packet`] on a frame.
pub fn check(f: &[u8]) {
    check_packet(&f[14..], true)
}

/// An IPv6 address from text.
pub fn ip6a(s: &str) -> Ipv6Addr {
    s.parse().expect("IPv6 address")
}

/// Ethernet + IPv6 (traffic class and flow label 0) around `payload` (extension headers, if
/// any, then the upper-layer message), whose first header is `next`, with hop limit `hop`.
pub fn ipv6(src: &str, dst: &str, next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&OUT_MAC);
    f.extend_from_slice(&IN_MAC);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, hop]);
    f.extend_from_slice(&ip6a(src).octets());
    f.extend_from_slice(&ip6a(dst).octets());
    f.extend_from_slice(payload);
    f
}

/// The IPv6 pseudo-header's sum (RFC 8200 §8.1), written out.
fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, len: usize) -> u64 {
    let words = |a: Ipv6Addr| a.segments().iter().map(|&w| u64::from(w)).sum::<u64>();
    words(src) + words(dst) + (len as u64 >> 16) + (len as u64 & 0xffff) + u64::from(next)
}

/// The checksum of upper-layer message `seg` (its checksum field 0) of protocol `next`.
fn l4_checksum6(src: &str, dst: &str, next: u8, seg: &[u8]) -> u16 {
    !ip::fold(pseudo6(ip6a(src), ip6a(dst), next, seg.len()) + u64::from(ip::sum(seg)))
}

/// A TCP segment (header without options, window 1024) from `src` to `dst`, checksum
/// included.
#[allow(clippy::too_many_arguments)]
pub fn tcp6_segment(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&seq.to_be_bytes());
    seg[8..12].copy_from_slice(&ack.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg[14..16].copy_from_slice(&1024u16.to_be_bytes());
    seg.extend_from_slice(payload);
    let c = l4_checksum6(src, dst, PROTO_TCP, &seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    seg
}

/// A TCP segment over IPv6 in a frame (sequence number 1000, no acknowledgment).
pub fn tcp6(src: &str, sport: u16, dst: &str, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp6_seq(src, sport, dst, dport, flags, 1000, 0, payload)
}

/// A TCP segment over IPv6 in a frame, with sequence and acknowledgment numbers.
#[allow(clippy::too_many_arguments)]
pub fn tcp6_seq(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let seg = tcp6_segment(src, sport, dst, dport, flags, seq, ack, payload);
    ipv6(src, dst, PROTO_TCP, 64, &seg)
}

/// A UDP datagram from `src` to `dst`, checksum included (it is mandatory over IPv6).
pub fn udp6_datagram(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut seg = vec![0u8; 8];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    seg.extend_from_slice(payload);
    let mut c = l4_checksum6(src, dst, PROTO_UDP, &seg);
    if c == 0 {
        c = 0xffff;
    }
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    seg
}

/// A UDP datagram over IPv6 in a frame.
pub fn udp6(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv6(
        src,
        dst,
        PROTO_UDP,
        64,
        &udp6_datagram(src, sport, dst, dport, payload),
    )
}

/// An ICMPv6 message (type, code, the second word `rest`, then `data`), checksum included.
pub fn icmp6_message(src: &str, dst: &str, ty: u8, code: u8, rest: u32, data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(data);
    let c = l4_checksum6(src, dst, 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 message over IPv6 in a frame, with hop limit `hop`.
#[allow(clippy::too_many_arguments)]
pub fn icmp6(src: &str, dst: &str, hop: u8, ty: u8, code: u8, rest: u32, data: &[u8]) -> Vec<u8> {
    ipv6(
        src,
        dst,
        58,
        hop,
        &icmp6_message(src, dst, ty, code, rest, data),
    )
}

/// An ICMPv6 echo request (`ty` 128) or reply (129) with identifier `id`, sequence 7.
pub fn echo6(src: &str, dst: &str, ty: u8, id: u16) -> Vec<u8> {
    let rest = u32::from(id) << 16 | 7;
    icmp6(src, dst, 64, ty, 0, rest, b"payload!")
}

/// A neighbor discovery message of type `ty` (133 router solicitation, 134 router
/// advertisement, 135 neighbor solicitation, 136 neighbor advertisement, 137 redirect)
/// with hop limit `hop` (255 as RFC 4861 sends them): the second word 0 and a target
/// address (for a router advertisement: reachable and retransmit times) in the body.
pub fn nd6(src: &str, dst: &str, ty: u8, hop: u8) -> Vec<u8> {
    let body = ip6a("fe80::1").octets();
    icmp6(src, dst, hop, ty, 0, 0, &body)
}

/// An ICMPv6 error from `src` to `dst` quoting the IPv6 datagram of `frame` (up to `quote`
/// bytes of it); `rest` is the second word (an MTU for packet too big).
#[allow(clippy::too_many_arguments)]
pub fn icmp6_error(
    src: &str,
    dst: &str,
    ty: u8,
    code: u8,
    rest: u32,
    frame: &[u8],
    quote: usize,
) -> Vec<u8> {
    let inner = &frame[14..];
    let n = quote.min(inner.len());
    icmp6(src, dst, 64, ty, code, rest, &inner[..n])
}

/// An extension header (hop-by-hop, routing or destination options: they share the
/// layout) of `(units + 1) * 8` bytes whose next header is `next`, padded with a PadN
/// option.
pub fn ext6(next: u8, units: u8) -> Vec<u8> {
    let len = (usize::from(units) + 1) * 8;
    let mut h = vec![0u8; len];
    h[0] = next;
    h[1] = units;
    h[2] = 1; // PadN
    h[3] = (len - 4) as u8;
    h
}

/// A fragment header whose next header is `next`, at `offset` 8-byte units, with the more
/// fragments flag `more` and identification `id`.
pub fn frag6(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&(offset << 3 | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// `n` bytes of data that differ from one another (for datagrams to cut in fragments).
pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Send each of `frames` into `gate` of `h` at `now`, one by one: the frames out of each
/// gate.
pub fn send_each(
    h: &mut nfv_dataplane::testing::Harness,
    gate: usize,
    frames: &[&Vec<u8>],
    now: nfv_dataplane::Timestamp,
) -> Vec<Vec<Vec<u8>>> {
    for f in frames {
        h.send(gate, f, now);
    }
    h.recv_each()
}

/// Cut the IPv4 frame `f` (Ethernet and a 20-byte header) into fragments of at most `size`
/// data bytes (a multiple of 8) with identification `id`, in order, each with its header
/// checksum.
pub fn fragments4(f: &[u8], id: u16, size: usize) -> Vec<Vec<u8>> {
    let data = &f[34..];
    data.chunks(size)
        .enumerate()
        .map(|(i, c)| {
            let mut g = f[..34].to_vec();
            let more = (i + 1) * size < data.len();
            let field = (i * size / 8) as u16 | if more { 0x2000 } else { 0 };
            g[16..18].copy_from_slice(&((20 + c.len()) as u16).to_be_bytes());
            g[18..20].copy_from_slice(&id.to_be_bytes());
            g[20..22].copy_from_slice(&field.to_be_bytes());
            ip::set_header_checksum(&mut g[14..34]);
            g.extend_from_slice(c);
            g
        })
        .collect()
}

/// The IPv4 frame whose fragments (frames of a 20-byte header, any order) are `frags`, put
/// back together with the first one's Ethernet and IPv4 headers: to [`check`] what was
/// done to the fragments against the whole datagram. Asserts that each fragment's header
/// checksum is right and that they all have the same addresses.
pub fn reassemble4(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted: Vec<&Vec<u8>> = frags.iter().collect();
    sorted.sort_by_key(|g| ip::read_u16(&g[14..], 6) & 0x1fff);
    let mut f = sorted[0][..34].to_vec();
    for g in &sorted {
        assert!(
            ip::header_checksum_ok(&g[14..34]),
            "fragment header checksum"
        );
        assert_eq!(g[26..34], f[26..34], "fragment addresses");
        let at = 34 + usize::from(ip::read_u16(&g[14..], 6) & 0x1fff) * 8;
        assert_eq!(f.len(), at, "fragments end to end");
        f.extend_from_slice(&g[34..]);
    }
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[20..22].copy_from_slice(&[0, 0]);
    ip::set_header_checksum(&mut f[14..34]);
    f
}

/// Cut the upper-layer message `upper` (protocol `next`) from `src` to `dst` into IPv6
/// fragments of at most `size` bytes (a multiple of 8) with identification `id`, in order.
pub fn fragments6(
    src: &str,
    dst: &str,
    next: u8,
    upper: &[u8],
    id: u32,
    size: usize,
) -> Vec<Vec<u8>> {
    upper
        .chunks(size)
        .enumerate()
        .map(|(i, c)| {
            let more = (i + 1) * size < upper.len();
            let mut p = frag6(next, (i * size / 8) as u16, more, id);
            p.extend_from_slice(c);
            ipv6(src, dst, 44, 64, &p)
        })
        .collect()
}

/// Check the upper-layer checksum of the IPv6 frame `f` (no extension headers: TCP, UDP or
/// ICMPv6) in full, and that its payload length is the frame's. Panics with what is wrong.
pub fn check6(f: &[u8]) {
    let p = &f[14..];
    assert_eq!(p[0] >> 4, 6, "version");
    let len = usize::from(ip::read_u16(p, 4));
    assert_eq!(40 + len, p.len(), "payload length");
    let mut a = [0u8; 16];
    a.copy_from_slice(&p[8..24]);
    let src = Ipv6Addr::from(a);
    a.copy_from_slice(&p[24..40]);
    let dst = Ipv6Addr::from(a);
    let next = p[6];
    assert!(
        matches!(next, PROTO_TCP | PROTO_UDP | 58),
        "next header {next}"
    );
    let seg = &p[40..];
    assert_eq!(
        ip::fold(pseudo6(src, dst, next, seg.len()) + u64::from(ip::sum(seg))),
        0xffff,
        "upper-layer checksum (next header {next})"
    );
}

/// A small fast random number generator (xorshift64) for tests, seeded by the test.
pub use nfv_dataplane::XorShift as Rng;

/// A node the test keeps a handle on while a [`Harness`](nfv_dataplane::testing::Harness)
/// owns it: give the harness `Box::new(shared.clone())`, drive frames through it, then
/// read the node's tables with [`Shared::show`].
pub struct Shared<N>(pub std::sync::Arc<std::sync::Mutex<N>>);

impl<N> Shared<N> {
    /// Share `node`.
    pub fn new(node: N) -> Self {
        Shared(std::sync::Arc::new(std::sync::Mutex::new(node)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, N> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node's table `table` at `now`.
    pub fn show(&self, table: &str, now: nfv_dataplane::Timestamp) -> Option<nfv_dataplane::Table>
    where
        N: nfv_dataplane::Node,
    {
        self.lock().show(table, now)
    }
}

impl<N> Clone for Shared<N> {
    fn clone(&self) -> Self {
        Shared(std::sync::Arc::clone(&self.0))
    }
}

impl<N: nfv_dataplane::Node> nfv_dataplane::Node for Shared<N> {
    fn kind(&self) -> &'static str {
        self.lock().kind()
    }

    fn process(
        &mut self,
        input: nfv_dataplane::Gate,
        batch: &mut nfv_dataplane::Batch,
        ctx: &mut nfv_dataplane::Ctx<'_>,
    ) {
        self.lock().process(input, batch, ctx)
    }

    fn tick(&mut self, ctx: &mut nfv_dataplane::Ctx<'_>) {
        self.lock().tick(ctx)
    }

    fn show(&self, table: &str, now: nfv_dataplane::Timestamp) -> Option<nfv_dataplane::Table> {
        self.lock().show(table, now)
    }
}

/// The cells of column `col` in `t`, one per row (panics if there is no such column).
pub fn column(t: &nfv_dataplane::Table, col: &str) -> Vec<nfv_dataplane::Cell> {
    let Some(i) = t.column(col) else {
        panic!("no column {col} in {:?}", t.columns)
    };
    t.rows.iter().map(|r| r[i].clone()).collect()
}

/// A text cell.
pub fn text(s: &str) -> nfv_dataplane::Cell {
    nfv_dataplane::Cell::Text(s.into())
}
