//! Fragments through `nat` and `firewall`: shallow virtual reassembly, the idea of VPP's
//! `ip4_sv_reass` and `ip6_sv_reass`.
//!
//! Only the first fragment of a datagram (offset 0) carries its transport header, so only
//! it can be matched, tracked and translated. A function that must see whole packets
//! decides on the first fragment as on any packet and records its decision here, keyed by
//! the datagram ([`FragKey`]: source, destination, protocol and identification for IPv4;
//! source, destination and the fragment header's 32-bit identification for IPv6; and the
//! zone it arrives from). Later fragments look the datagram up and get the same treatment
//! (the same verdict, the same rewrite), as Linux's conntrack does after its defragmentation,
//! without reassembling anything: fragments leave as they came, one by one.
//!
//! A later fragment that arrives before its first fragment is held (at most
//! [`Limits::per_datagram`] a datagram and [`Limits::held`] in all, like the router's ARP
//! queue) and released, in the order it came, right after the first fragment's decision.
//! A fragment that cannot be held (those bounds, or no room for a new datagram: at most
//! [`Limits::datagrams`]) is dropped as `fragments_full`; one still held when its datagram
//! expires is dropped as `fragment_timeout`. A datagram's entry lives [`Limits::timeout`]
//! from its first fragment's decision (or its first held fragment), then goes.
//!
//! The timeout is [`TIMEOUT`], 2 s, against Linux's 30 s `ipfrag_time` (VPP's shallow
//! reassembly uses 100 ms): a datagram's fragments leave their sender back to back, so a
//! fragment seconds late is lost anyway; a long lifetime holds pool buffers longer and lets
//! a fast sender's 16-bit IPv4 identification wrap onto a live entry (RFC 4963), giving a
//! new datagram an old one's treatment.
//!
//! What is not a fragment: a packet without "more fragments" at offset 0, including an IPv6
//! atomic fragment (a fragment header with offset 0 and M clear, RFC 6946), which is
//! treated as the whole packet it is. A first fragment too short for its transport ports is
//! still dropped by the function's parse (`runt`, RFC 1858's tiny fragment), and its
//! datagram gets that verdict; an IPv4 TCP fragment at offset 1 (8 bytes, which would
//! overwrite the first fragment's TCP flags, RFC 1858's overlapping fragment) is dropped as
//! `bad_header` ([`Fragment::overlaps_tcp_header`]).
//!
//! Memory is reserved when the table is made: the datagram entries, their index (the
//! connection tracker's [`FlowTable`]) and the slots of held packets, which the datagrams
//! chain into lists. Nothing is allocated per packet.

use std::time::Duration;

use std::sync::Arc;

use nfv_dataplane::{Counter, DropReason, Packet, Timestamp};

use crate::conntrack::{Flow, FlowError, FlowKey, FlowTable};
use crate::ip::PROTO_TCP;
use crate::wire::ipv6::next_header;
use crate::wire::{self, Headers, L3};

/// How long a datagram's entry lives (see the module documentation for why 2 s).
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Most datagrams a table tracks (VPP's default too).
pub const MAX_DATAGRAMS: usize = 1024;
/// Most fragments held across all datagrams of a table (as the router's ARP queues, 256).
pub const MAX_HELD: usize = 256;
/// Most fragments held for one datagram: a 64 KiB datagram over IPv6's minimum MTU of 1280
/// bytes is 52 fragments.
pub const HELD_PER_DATAGRAM: usize = 64;

/// Slots [`Fragments::expire`] visits a call, at least.
const SWEEP_MIN: usize = 64;
/// No held packet (the end of a datagram's list, or of the free list).
const NIL: u32 = u32::MAX;
/// `FragKey::family` of IPv4 and IPv6.
const V4: u8 = 4;
const V6: u8 = 6;

/// The bounds of a fragment table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most datagrams tracked.
    pub datagrams: usize,
    /// Most fragments held in all.
    pub held: usize,
    /// Most fragments held for one datagram.
    pub per_datagram: usize,
    /// How long a datagram's entry lives.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            datagrams: MAX_DATAGRAMS,
            held: MAX_HELD,
            per_datagram: HELD_PER_DATAGRAM,
            timeout: TIMEOUT,
        }
    }
}

/// A datagram's identity, as all its fragments carry it, plus the zone they arrive from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address (an IPv4 one in the low 32 bits).
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// IPv4 protocol (0 for IPv6, whose later fragments do not say it).
    pub proto: u8,
    /// Where the fragments arrive: 0 inside, 1 outside.
    pub zone: u8,
    /// 4 or 6.
    pub family: u8,
}

/// A packet that is a fragment, as [`fragment`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Its datagram.
    pub key: FragKey,
    /// Where its data goes in the datagram, in 8-byte units (0: the first fragment).
    pub offset: u16,
}

impl Fragment {
    /// True for the first fragment, which carries the transport header.
    #[inline]
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }

    /// True for an IPv4 TCP fragment at offset 1: its data would overwrite the first
    /// fragment's TCP flags at the receiver (RFC 1858 section 4, the overlapping fragment
    /// attack), so it is dropped.
    #[inline]
    pub fn overlaps_tcp_header(&self) -> bool {
        self.offset == 1 && self.key.family == V4 && self.key.proto == PROTO_TCP
    }
}

/// The fragment `frame` (whose headers are `h`, arriving from `zone`) is, if it is one:
/// untagged IPv4 with "more fragments" or an offset, or untagged IPv6 with a fragment
/// header that is not atomic. Reads two bytes of an IPv4 header; walks the IPv6 extension
/// headers only when there are some.
#[inline]
pub fn fragment(frame: &[u8], h: &Headers, zone: u8) -> Option<Fragment> {
    if h.tagged {
        return None;
    }
    match h.l3 {
        L3::Ipv4 => {
            let ip = h.ipv4(frame)?;
            if !ip.is_fragment() {
                return None;
            }
            Some(Fragment {
                key: FragKey {
                    src: u128::from(ip.src_addr()),
                    dst: u128::from(ip.dst_addr()),
                    id: u32::from(ip.ident()),
                    proto: ip.protocol(),
                    zone,
                    family: V4,
                },
                offset: ip.frag_offset(),
            })
        }
        L3::Ipv6 => {
            use next_header::{AUTH, DST_OPTS, FRAGMENT, HOP_BY_HOP, ROUTING};
            if !matches!(h.proto, HOP_BY_HOP | ROUTING | DST_OPTS | AUTH | FRAGMENT) {
                return None;
            }
            let ip = h.ipv6(frame)?;
            let up = ip.upper_layer().ok()?;
            let offset = up.fragment?;
            if offset == 0 && !up.more {
                return None;
            }
            Some(Fragment {
                key: FragKey {
                    src: u128::from(ip.src_addr()),
                    dst: u128::from(ip.dst_addr()),
                    id: up.ident,
                    proto: 0,
                    zone,
                    family: V6,
                },
                offset,
            })
        }
        _ => None,
    }
}

/// The datagram `pkt` (arriving from `zone`, with flow `parsed`) is the first fragment of:
/// one read ([`Flow::fragment`]) or refused by its parse (a tiny first fragment, `runt`),
/// whose datagram gets that refusal too. `None` for anything else (most packets: one test
/// of a flag).
#[inline(always)]
pub fn first_of<K: FlowKey>(
    pkt: &mut Packet,
    parsed: &Result<Flow<K>, FlowError>,
    zone: u8,
) -> Option<FragKey> {
    match parsed {
        Ok(f) if !f.fragment => None,
        Ok(_) | Err(FlowError::Bad(_)) => {
            let h = wire::classify(pkt);
            fragment(pkt.data(), &h, zone)
                .filter(Fragment::is_first)
                .map(|f| f.key)
        }
        Err(_) => None,
    }
}

/// The later fragment `pkt` (arriving from `zone`) is, as its parse found it
/// ([`FlowError::Fragment`]); `bad_header` if it cannot be read so or overlaps a TCP
/// header ([`Fragment::overlaps_tcp_header`]).
#[inline]
pub fn later_of(pkt: &mut Packet, zone: u8) -> Result<FragKey, DropReason> {
    let h = wire::classify(pkt);
    match fragment(pkt.data(), &h, zone) {
        Some(f) if !f.is_first() && !f.overlaps_tcp_header() => Ok(f.key),
        _ => Err(DropReason::BadHeader),
    }
}

/// A tracked datagram.
#[derive(Clone, Copy, Debug)]
struct Datagram<V> {
    key: FragKey,
    /// What its first fragment was given, once it came.
    decision: Option<V>,
    expires: Timestamp,
    /// Its held fragments: a list through `Fragments::held`, oldest first.
    head: u32,
    tail: u32,
    count: usize,
    live: bool,
}

impl<V> Default for Datagram<V> {
    fn default() -> Self {
        Datagram {
            key: FragKey::default(),
            decision: None,
            expires: Timestamp::ZERO,
            head: NIL,
            tail: NIL,
            count: 0,
            live: false,
        }
    }
}

/// A slot for a held fragment.
struct Held {
    pkt: Option<Packet>,
    /// The next slot of its datagram's list, or of the free list.
    next: u32,
}

/// Counters of a fragment table, for its owner's metrics (see [`metrics!`]).
#[derive(Debug, Default)]
pub struct FragStats {
    /// Datagrams tracked now (a gauge).
    pub datagrams: Counter,
    /// Fragments held now (a gauge).
    pub held: Counter,
    /// Later fragments given their first fragment's treatment (at once, or released after
    /// being held).
    pub followed: Counter,
}

impl FragStats {
    /// Report the counters through `out` as `metrics` (from [`metrics!`]).
    pub fn visit(
        &self,
        metrics: &'static [crate::kind::Metric; 3],
        out: &mut dyn FnMut(&'static crate::kind::Metric, &[&str], u64),
    ) {
        out(&metrics[0], &[], self.datagrams.get());
        out(&metrics[1], &[], self.held.get());
        out(&metrics[2], &[], self.followed.get());
    }
}

/// The three metrics of a function's fragment table (a [`FragStats`]), named for its kind:
/// `metrics!("nat")` gives `nfv_nat_fragment_datagrams`, `nfv_nat_fragments_held` (gauges)
/// and `nfv_nat_fragments_followed_total`.
macro_rules! metrics {
    ($kind:literal) => {
        [
            $crate::fragments::metrics!(@ $kind, "_fragment_datagrams", Gauge,
                "fragment_datagrams",
                "Fragmented datagrams being tracked (their first fragment's decision, or fragments waiting for it)."),
            $crate::fragments::metrics!(@ $kind, "_fragments_held", Gauge, "fragments_held",
                "Fragments held until their datagram's first fragment comes."),
            $crate::fragments::metrics!(@ $kind, "_fragments_followed_total", Counter,
                "fragments_followed", "Later fragments given their first fragment's treatment."),
        ]
    };
    (@ $kind:literal, $name:literal, $type:ident, $summary:literal, $help:literal) => {
        $crate::kind::Metric {
            name: concat!("nfv_", $kind, $name),
            help: $help,
            kind: $crate::kind::MetricType::$type,
            labels: &[],
            summary: Some($summary),
        }
    };
}
pub(crate) use metrics;

/// A fragment table: what the first fragment of each datagram was given (`V`, the owner's
/// decision), and the later fragments waiting for it.
pub struct Fragments<V> {
    index: FlowTable<FragKey>,
    datagrams: Vec<Datagram<V>>,
    free: Vec<u32>,
    held: Vec<Held>,
    /// The first free slot of `held`.
    free_held: u32,
    n_held: usize,
    cursor: usize,
    limits: Limits,
    stats: Arc<FragStats>,
}

impl<V: Copy> Fragments<V> {
    /// A table within `limits`, all its memory reserved now.
    pub fn new(limits: Limits) -> Self {
        let n = limits.datagrams.clamp(1, u32::MAX as usize / 4);
        let h = limits.held.min(u32::MAX as usize / 4);
        Fragments {
            index: FlowTable::new(n),
            datagrams: (0..n).map(|_| Datagram::default()).collect(),
            free: (0..n as u32).rev().collect(),
            held: (0..h)
                .map(|i| Held {
                    pkt: None,
                    next: if i + 1 < h { i as u32 + 1 } else { NIL },
                })
                .collect(),
            free_held: if h > 0 { 0 } else { NIL },
            n_held: 0,
            cursor: 0,
            limits,
            stats: Arc::default(),
        }
    }

    /// Its counters (shared with the owner's metrics).
    pub fn stats(&self) -> Arc<FragStats> {
        Arc::clone(&self.stats)
    }

    /// Datagrams tracked.
    pub fn len(&self) -> usize {
        self.datagrams.len() - self.free.len()
    }

    /// True if none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fragments held.
    pub fn held(&self) -> usize {
        self.n_held
    }

    #[inline]
    fn find(&self, key: &FragKey) -> Option<u32> {
        self.index.get(key, self.index.hash(key))
    }

    /// What the first fragment of `key`'s datagram was given, if it came and its entry has
    /// not expired at `now`; counts the fragment as followed.
    #[inline]
    pub fn decision(&mut self, key: &FragKey, now: Timestamp) -> Option<V> {
        let d = &self.datagrams[self.find(key)? as usize];
        let v = d.decision.filter(|_| d.expires >= now)?;
        self.stats.followed.add(1);
        Some(v)
    }

    /// A new entry for `key` at `now`, if there is room.
    fn add(&mut self, key: FragKey, now: Timestamp) -> Option<u32> {
        let i = self.free.pop()?;
        self.datagrams[i as usize] = Datagram {
            key,
            expires: now.plus(self.limits.timeout),
            live: true,
            ..Datagram::default()
        };
        self.index.insert(key, i);
        Some(i)
    }

    /// Record that the first fragment of `key`'s datagram was given `v` at `now`; the
    /// fragments held for it go to `release`, oldest first (each counted as followed), to be
    /// given `v` too. False if there is no room for a new datagram: the caller drops the
    /// first fragment (`fragments_full`).
    pub fn record(
        &mut self,
        key: FragKey,
        v: V,
        now: Timestamp,
        mut release: impl FnMut(Packet),
    ) -> bool {
        let i = match self.find(&key) {
            Some(i) => i,
            None => match self.add(key, now) {
                Some(i) => i,
                None => {
                    self.gauges();
                    return false;
                }
            },
        };
        let d = &mut self.datagrams[i as usize];
        d.decision = Some(v);
        d.expires = now.plus(self.limits.timeout);
        let n = self.take_held(i, &mut release);
        self.stats.followed.add(n as u64);
        self.gauges();
        true
    }

    /// Hold `pkt`, a later fragment of `key`'s datagram whose first fragment has not been
    /// decided (or whose decision expired, which starts the datagram anew) at `now`. Gives
    /// the packet back if it cannot be held: the caller drops it (`fragments_full`).
    pub fn hold(&mut self, key: FragKey, pkt: Packet, now: Timestamp) -> Result<(), Packet> {
        let i = match self.find(&key) {
            Some(i) => {
                let d = &mut self.datagrams[i as usize];
                if d.decision.is_some() {
                    // Decided but expired (a live decision is followed, not held).
                    d.decision = None;
                    d.expires = now.plus(self.limits.timeout);
                }
                i
            }
            None if self.free_held == NIL => return Err(pkt),
            None => match self.add(key, now) {
                Some(i) => i,
                None => return Err(pkt),
            },
        };
        let d = &mut self.datagrams[i as usize];
        if d.count >= self.limits.per_datagram || self.free_held == NIL {
            if d.count == 0 && d.decision.is_none() {
                // Made for this packet, which cannot stay: no empty entry is left behind.
                self.remove(i, &mut |_| {});
            }
            return Err(pkt);
        }
        let at = self.free_held;
        let slot = &mut self.held[at as usize];
        self.free_held = slot.next;
        slot.pkt = Some(pkt);
        slot.next = NIL;
        let d = &mut self.datagrams[i as usize];
        if d.tail == NIL {
            d.head = at;
        } else {
            self.held[d.tail as usize].next = at;
        }
        d.tail = at;
        d.count += 1;
        self.n_held += 1;
        self.gauges();
        Ok(())
    }

    /// Remove datagram `i`, its held fragments to `drop`.
    fn remove(&mut self, i: u32, drop: &mut impl FnMut(Packet)) {
        let d = &mut self.datagrams[i as usize];
        if !d.live {
            return;
        }
        d.live = false;
        d.decision = None;
        let key = d.key;
        self.take_held(i, drop);
        self.index.remove(&key);
        self.free.push(i);
    }

    /// Hand the fragments held for datagram `i` to `f`, oldest first, and free their slots;
    /// returns how many there were.
    fn take_held(&mut self, i: u32, f: &mut impl FnMut(Packet)) -> usize {
        let d = &mut self.datagrams[i as usize];
        let (mut at, n) = (d.head, d.count);
        (d.head, d.tail, d.count) = (NIL, NIL, 0);
        while at != NIL {
            let slot = &mut self.held[at as usize];
            let next = slot.next;
            if let Some(p) = slot.pkt.take() {
                f(p);
            }
            slot.next = self.free_held;
            self.free_held = at;
            at = next;
        }
        self.n_held -= n;
        n
    }

    /// Remove the datagrams expired at `now` among the next slots (an eighth of the table,
    /// at least 64, a call: from the owner's `tick`, so about every millisecond); their
    /// held fragments go to `timed_out` (the caller drops them, `fragment_timeout`).
    pub fn expire(&mut self, now: Timestamp, mut timed_out: impl FnMut(Packet)) {
        let n = self.datagrams.len();
        if self.free.len() == n {
            return;
        }
        for _ in 0..(n / 8).max(SWEEP_MIN).min(n) {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % n;
            let d = &self.datagrams[i];
            if d.live && d.expires < now {
                self.remove(i as u32, &mut timed_out);
            }
        }
        self.gauges();
    }

    fn gauges(&self) {
        self.stats.datagrams.set(self.len() as u64);
        self.stats.held.set(self.n_held as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_dataplane::Pool;

    fn t(ms: u64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    fn key(id: u32) -> FragKey {
        FragKey {
            src: 1,
            dst: 2,
            id,
            proto: 17,
            zone: 0,
            family: V4,
        }
    }

    fn pkt(pool: &mut Pool, tag: u8) -> Packet {
        let mut p = pool.alloc().expect("pool");
        assert!(p.set_frame(&[tag; 60]));
        p
    }

    fn limits(datagrams: usize, held: usize, per_datagram: usize) -> Limits {
        Limits {
            datagrams,
            held,
            per_datagram,
            timeout: Duration::from_millis(100),
        }
    }

    #[test]
    fn held_fragments_are_released_in_order_when_the_first_is_decided() {
        let mut pool = Pool::new(16);
        let mut f: Fragments<u8> = Fragments::new(limits(4, 8, 4));
        assert_eq!(f.decision(&key(1), t(0)), None);
        for tag in [3, 1, 2] {
            assert!(f.hold(key(1), pkt(&mut pool, tag), t(0)).is_ok());
        }
        assert_eq!((f.len(), f.held()), (1, 3));
        assert_eq!(f.decision(&key(1), t(1)), None, "held, not decided");
        let mut out = Vec::new();
        assert!(f.record(key(1), 7, t(1), |p| {
            out.push(p.data()[0]);
            pool.free(p);
        }));
        assert_eq!(out, vec![3, 1, 2]);
        assert_eq!(f.held(), 0);
        assert_eq!(f.decision(&key(1), t(2)), Some(7));
        assert_eq!(f.decision(&key(2), t(2)), None, "another datagram");
        assert_eq!(f.stats().followed.get(), 4);
        assert_eq!(f.stats().datagrams.get(), 1);
        assert_eq!(pool.available(), 16);
    }

    #[test]
    fn bounds_per_datagram_in_all_and_of_datagrams_give_packets_back() {
        let mut pool = Pool::new(32);
        let mut f: Fragments<u8> = Fragments::new(limits(2, 3, 2));
        let mut refused = 0;
        let mut hold = |f: &mut Fragments<u8>, id, pool: &mut Pool| {
            let p = pkt(pool, id as u8);
            match f.hold(key(id), p, t(0)) {
                Ok(()) => true,
                Err(p) => {
                    pool.free(p);
                    refused += 1;
                    false
                }
            }
        };
        assert!(hold(&mut f, 1, &mut pool));
        assert!(hold(&mut f, 1, &mut pool));
        assert!(!hold(&mut f, 1, &mut pool), "two a datagram");
        assert!(hold(&mut f, 2, &mut pool));
        assert!(!hold(&mut f, 2, &mut pool), "three in all");
        assert!(!hold(&mut f, 3, &mut pool), "two datagrams");
        assert_eq!((f.len(), f.held()), (2, 3));
        // Deciding one frees its slots; a full table refuses to record a new datagram.
        assert!(!f.record(key(4), 9, t(0), |_| unreachable!()));
        assert!(f.record(key(2), 9, t(0), |p| pool.free(p)));
        assert_eq!(f.held(), 2);
        assert!(!hold(&mut f, 1, &mut pool), "still two for datagram 1");
        assert!(!hold(&mut f, 5, &mut pool), "still two datagrams");
        assert_eq!(f.len(), 2, "no entry left for a refused fragment");
        assert_eq!(refused, 5);
        f.expire(t(1000), |p| pool.free(p));
        assert!(f.is_empty());
        assert_eq!(pool.available(), 32);
    }

    #[test]
    fn entries_expire_and_their_held_fragments_time_out() {
        let mut pool = Pool::new(8);
        let mut f: Fragments<u8> = Fragments::new(limits(4, 8, 4));
        assert!(f.record(key(1), 5, t(0), |_| unreachable!()));
        assert!(f.hold(key(2), pkt(&mut pool, 1), t(50)).is_ok());
        f.expire(t(100), |_| panic!("not yet"));
        assert_eq!(f.decision(&key(1), t(100)), Some(5));
        assert_eq!(f.decision(&key(1), t(101)), None, "expired, not yet swept");
        let mut timed_out = 0;
        f.expire(t(101), |p| {
            timed_out += 1;
            pool.free(p)
        });
        assert_eq!((f.len(), timed_out), (1, 0));
        f.expire(t(151), |p| {
            timed_out += 1;
            pool.free(p)
        });
        assert_eq!((f.len(), f.held(), timed_out), (0, 0, 1));
        assert_eq!(f.stats().held.get(), 0);
        // An expired decision found before the sweep starts the datagram anew.
        assert!(f.record(key(3), 5, t(200), |_| unreachable!()));
        assert!(f.hold(key(3), pkt(&mut pool, 2), t(400)).is_ok());
        assert_eq!(f.decision(&key(3), t(400)), None);
        f.expire(t(600), |p| pool.free(p));
        assert_eq!(pool.available(), 8);
    }

    #[test]
    fn fragments_are_read_from_both_families() {
        use crate::testframes::*;
        // IPv4: a first fragment (MF), a later one, a whole packet.
        let mut first = udp("10.0.0.1", 5, "10.0.0.2", 6, &[0; 40], true);
        first[14 + 4..14 + 8].copy_from_slice(&[0x12, 0x34, 0x20, 0x00]);
        let mut later = first.clone();
        later[14 + 6..14 + 8].copy_from_slice(&[0x00, 0x01]);
        for f in [&mut first, &mut later] {
            crate::ip::set_header_checksum(&mut f[14..34]);
        }
        let read = |f: &[u8]| fragment(f, &Headers::parse(f), 1);
        let a = read(&first).expect("first");
        assert!(a.is_first() && !a.overlaps_tcp_header());
        assert_eq!((a.key.id, a.key.proto, a.key.zone), (0x1234, 17, 1));
        let b = read(&later).expect("later");
        assert_eq!((b.key, b.offset), (a.key, 1));
        assert_eq!(read(&udp("10.0.0.1", 5, "10.0.0.2", 6, b"x", true)), None);
        // IPv6: first and later fragments share a key; an atomic fragment is none.
        let v6 = |off, more| {
            let mut p = frag6(17, off, more, 0xdead_beef);
            p.extend_from_slice(&[0; 16]);
            ipv6("2001:db8::1", "2001:db8::2", 44, 64, &p)
        };
        let (a, b) = (read(&v6(0, true)), read(&v6(2, false)));
        assert!(a.is_some_and(|a| a.is_first() && a.key.id == 0xdead_beef));
        assert_eq!(a.map(|a| a.key), b.map(|b| b.key));
        assert_eq!(read(&v6(0, false)), None, "atomic");
        assert_eq!(read(&udp6("2001:db8::1", 1, "2001:db8::2", 2, b"x")), None);
    }
}
