//! `conntrack`: the connection tracker that `nat` and `firewall` keep their flows in.
//!
//! A connection is an [`Entry`] with two [`Tuple`]s: the one its packets carry in the
//! original direction (the first packet's) and the one they carry in the reply direction
//! (for a NAT, the translated one). Each tuple includes the *zone* it arrives from (0 for
//! the inside gate, 1 for the outside gate), so a tuple seen inside never matches one seen
//! outside. Both tuples index the same entry in one hash table (ahash with random keys, so
//! a sender cannot choose colliding flows).
//!
//! What is tracked:
//! - TCP, with the states Linux names: SYN sent, SYN received, established, FIN wait (one
//!   side closed), last ACK (both closed), TIME_WAIT, and close (after a RST). A connection
//!   starts only with a SYN; other segments without a connection are *invalid*. A SYN on a
//!   closed or TIME_WAIT connection opens it anew. There is no full window tracking, but
//!   the end of what each side sent is kept, and a RST is accepted only if its sequence
//!   number is within [`RST_WINDOW`] of it ([`Conntrack::segment`]; RFC 5961's idea): a
//!   blind attacker cannot close a connection without guessing it.
//! - UDP, by addresses and ports; ICMP echo by identifier (a request carries it as its
//!   source port, a reply as its destination port, so a reply's tuple is the reverse of
//!   its request's and a request never matches a reply); any other protocol by addresses
//!   alone.
//! - ICMP errors (destination unreachable, source quench, redirect, time exceeded,
//!   parameter problem) are *related* to the flow whose packet they quote: [`Flow::inner`]
//!   holds the quoted tuple, and `lookup(inner.reverse())` finds the flow.
//! - IPv6 the same way: TCP, UDP, ICMPv6 echo (request 128 carries the identifier as its
//!   source port, reply 129 as its destination port) and any other protocol by addresses;
//!   ICMPv6 errors (types below 128: destination unreachable, packet too big, time
//!   exceeded, parameter problem) quote the packet they are about. [`flow6`] walks the
//!   extension headers (hop-by-hop, routing, fragment, authentication, destination options;
//!   at most [`MAX_EXT_HEADERS`](crate::wire::ipv6::MAX_EXT_HEADERS)) to the upper-layer
//!   header; a longer or broken chain is `bad_header`, and a fragment other than the first
//!   is [`FlowError::Fragment`] as for IPv4.
//!
//! The key is generic ([`FlowKey`]): an IPv4 tracker (`Conntrack<T>`, the default, what
//! `nat` uses) keys on the 16-byte [`Tuple`], an IPv6 one (`Conntrack<T, Tuple6>`) on the
//! 38-byte [`Tuple6`]. Each family has its own table, so IPv4 lookups hash two words and
//! compare 16 bytes in 32-byte slots as before; an IPv6 slot is 64 bytes (one cache line).
//!
//! The table is bounded (`max` entries, all memory reserved at start). When it is full a
//! new connection may evict an expired or half-open one (one not yet seen both ways) found
//! among the next few slots of the sweep (as Linux's `early_drop` does); if there is none it
//! is refused, and the caller counts `conntrack_full`. Expiry is driven by the worker's
//! clock: an expired entry found by a lookup is removed on the spot, and [`Conntrack::sweep`]
//! (from the node's `tick`) walks a bounded number of slots a call, so that the whole table
//! is visited about once a second.
//!
//! [`Conntrack::table`] is the `conntrack` table that both owners show: one row per live
//! connection, in its original direction (the tuple its first packet carried), with
//! columns `proto`, `src`, `dst` (see [`crate::show::endpoint`]), `state` (a TCP
//! connection's state as Linux names it, e.g. `ESTABLISHED`; for other protocols `NEW`
//! until a reply was seen, then `ESTABLISHED`: the state the firewall's rules match) and
//! `expires_s`. Connections already expired but not yet swept are left out.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use std::net::Ipv6Addr;

use nfv_dataplane::{Cell, DropReason, Packet, Table, Timestamp};

use crate::ip::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::show;
use crate::wire::{
    self, icmp, ipv6, Headers, Icmpv4Packet, Icmpv6Packet, Ipv4Packet, Ipv6Packet, Ports,
    TcpPacket, L3,
};

/// How long an idle connection is kept, by protocol and state. The defaults are Linux's
/// (`net.netfilter.nf_conntrack_*_timeout*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP while opening (SYN sent, SYN received): Linux's `tcp_timeout_syn_sent`, 2 min.
    pub tcp_syn: Duration,
    /// TCP established: 5 days.
    pub tcp_established: Duration,
    /// TCP closing (FIN seen, last ACK, TIME_WAIT): 2 min.
    pub tcp_fin: Duration,
    /// TCP after a RST: 10 s.
    pub tcp_close: Duration,
    /// UDP seen in one direction only: 30 s.
    pub udp: Duration,
    /// UDP seen in both directions: 2 min.
    pub udp_stream: Duration,
    /// ICMP echo: 30 s.
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn: Duration::from_secs(120),
            tcp_established: Duration::from_secs(5 * 24 * 3600),
            tcp_fin: Duration::from_secs(120),
            tcp_close: Duration::from_secs(10),
            udp: Duration::from_secs(30),
            udp_stream: Duration::from_secs(120),
            icmp: Duration::from_secs(30),
        }
    }
}

/// Names of the [`Timeouts`] fields, as the topology file spells them.
pub const TIMEOUT_NAMES: &[&str] = &[
    "tcp_syn",
    "tcp_established",
    "tcp_fin",
    "tcp_close",
    "udp",
    "udp_stream",
    "icmp",
];

impl Timeouts {
    /// Set the timeout named `name` (one of [`TIMEOUT_NAMES`]); false if there is none.
    pub fn set(&mut self, name: &str, d: Duration) -> bool {
        let slot = match name {
            "tcp_syn" => &mut self.tcp_syn,
            "tcp_established" => &mut self.tcp_established,
            "tcp_fin" => &mut self.tcp_fin,
            "tcp_close" => &mut self.tcp_close,
            "udp" => &mut self.udp,
            "udp_stream" => &mut self.udp_stream,
            "icmp" => &mut self.icmp,
            _ => return false,
        };
        *slot = d;
        true
    }
}

/// Default most connections a tracker holds.
pub const DEFAULT_MAX: usize = 65_536;

/// Slots [`Conntrack::sweep`] visits a call, at least.
const SWEEP_MIN: usize = 64;
/// Slots looked at for an entry to evict when the table is full.
const EVICT_SCAN: usize = 16;

/// A flow's identity as its packets carry it, plus the zone they arrive from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuple {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port (ICMP echo request: the identifier; other protocols: 0).
    pub sport: u16,
    /// Destination port (ICMP echo reply: the identifier; other protocols: 0).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// Where the packet arrives: 0 inside, 1 outside.
    pub zone: u8,
}

impl Hash for Tuple {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(u64::from(self.src) << 32 | u64::from(self.dst));
        h.write_u64(
            u64::from(self.sport) << 32
                | u64::from(self.dport) << 16
                | u64::from(self.proto) << 8
                | u64::from(self.zone),
        );
    }
}

impl Tuple {
    /// The tuple of a reply to this packet arriving from `zone`: addresses and ports
    /// swapped.
    #[inline]
    pub fn reverse(&self, zone: u8) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            zone,
        }
    }
}

/// A tracker's key: a flow's identity as its packets carry it, plus the zone they arrive
/// from. [`Tuple`] for IPv4, [`Tuple6`] for IPv6; a tracker holds one family.
pub trait FlowKey: Copy + Default + Eq + Hash + std::fmt::Debug {
    /// The family's ICMP protocol: 1, or 58 for ICMPv6.
    const ICMP: u8;
    /// The family's ICMP echo reply type: 0, or 129 for ICMPv6.
    const ECHO_REPLY: u8;
    /// What [`flow`](Self::flow) says of a frame that is not of this family.
    const OTHER: FlowError;

    /// IP protocol (IPv6: the upper-layer protocol).
    fn proto(&self) -> u8;

    /// The tuple of a reply to this packet arriving from `zone`: addresses and ports
    /// swapped.
    fn reverse(&self, zone: u8) -> Self;

    /// Read the flow of `frame`, whose headers are `h` (the family's parser: [`flow`] or
    /// [`flow6`]).
    fn flow(frame: &[u8], h: &Headers, zone: u8) -> Result<Flow<Self>, FlowError>;

    /// The source and destination as the `conntrack` table shows them (see
    /// [`show::endpoint`]).
    fn endpoints(&self) -> (Cell, Cell);

    /// The `conntrack` table's order: protocol, source, source port, destination,
    /// destination port, zone.
    fn order(&self) -> (u8, u128, u16, u128, u16, u8);
}

impl FlowKey for Tuple {
    const ICMP: u8 = PROTO_ICMP;
    const ECHO_REPLY: u8 = 0;
    const OTHER: FlowError = FlowError::NotIpv4;

    #[inline(always)]
    fn proto(&self) -> u8 {
        self.proto
    }

    #[inline(always)]
    fn reverse(&self, zone: u8) -> Tuple {
        Tuple::reverse(self, zone)
    }

    #[inline(always)]
    fn flow(frame: &[u8], h: &Headers, zone: u8) -> Result<Flow, FlowError> {
        flow(frame, h, zone)
    }

    fn endpoints(&self) -> (Cell, Cell) {
        (
            show::endpoint(self.proto, self.src, self.sport, true),
            show::endpoint(self.proto, self.dst, self.dport, false),
        )
    }

    fn order(&self) -> (u8, u128, u16, u128, u16, u8) {
        let (s, d) = (u128::from(self.src), u128::from(self.dst));
        (self.proto, s, self.sport, d, self.dport, self.zone)
    }
}

/// An IPv6 flow's identity as its packets carry it, plus the zone they arrive from: the
/// [`Tuple`] of IPv6 (38 bytes against 16; its table slot is 64 bytes against 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple6 {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Source port (ICMPv6 echo request: the identifier; other protocols: 0).
    pub sport: u16,
    /// Destination port (ICMPv6 echo reply: the identifier; other protocols: 0).
    pub dport: u16,
    /// Upper-layer protocol (past the extension headers).
    pub proto: u8,
    /// Where the packet arrives: 0 inside, 1 outside.
    pub zone: u8,
}

impl Default for Tuple6 {
    fn default() -> Self {
        Tuple6 {
            src: Ipv6Addr::UNSPECIFIED,
            dst: Ipv6Addr::UNSPECIFIED,
            sport: 0,
            dport: 0,
            proto: 0,
            zone: 0,
        }
    }
}

impl Hash for Tuple6 {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from(self.src));
        h.write_u128(u128::from(self.dst));
        h.write_u64(
            u64::from(self.sport) << 32
                | u64::from(self.dport) << 16
                | u64::from(self.proto) << 8
                | u64::from(self.zone),
        );
    }
}

impl FlowKey for Tuple6 {
    const ICMP: u8 = PROTO_ICMPV6;
    const ECHO_REPLY: u8 = icmp::v6::ECHO_REPLY;
    const OTHER: FlowError = FlowError::NotIpv6;

    #[inline(always)]
    fn proto(&self) -> u8 {
        self.proto
    }

    #[inline]
    fn reverse(&self, zone: u8) -> Tuple6 {
        Tuple6 {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
            zone,
        }
    }

    #[inline]
    fn flow(frame: &[u8], h: &Headers, zone: u8) -> Result<Flow6, FlowError> {
        flow6(frame, h, zone)
    }

    fn endpoints(&self) -> (Cell, Cell) {
        (
            show::endpoint6(self.proto, self.src, self.sport, true),
            show::endpoint6(self.proto, self.dst, self.dport, false),
        )
    }

    fn order(&self) -> (u8, u128, u16, u128, u16, u8) {
        let (s, d) = (u128::from(self.src), u128::from(self.dst));
        (self.proto, s, self.sport, d, self.dport, self.zone)
    }
}

/// The direction of a packet within its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// The direction of the connection's first packet.
    Orig = 0,
    /// The other one.
    Reply = 1,
}

impl Dir {
    /// The other direction.
    #[inline]
    pub fn other(self) -> Dir {
        match self {
            Dir::Orig => Dir::Reply,
            Dir::Reply => Dir::Orig,
        }
    }
}

/// TCP connection states (none for other protocols).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// Not TCP.
    None,
    /// The first SYN was seen.
    SynSent,
    /// The SYN-ACK (or a crossing SYN) was seen.
    SynRecv,
    /// The handshake finished.
    Established,
    /// One side sent a FIN.
    FinWait,
    /// Both sides sent a FIN.
    LastAck,
    /// The last FIN was acknowledged.
    TimeWait,
    /// A RST was seen.
    Close,
}

impl TcpState {
    /// The state's name, as Linux's conntrack prints it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
        }
    }
}

/// How far from the end of what a side sent (either way) the sequence number of a RST from
/// it may be: 64 KiB, the largest window without window scaling (which is not tracked).
pub const RST_WINDOW: u32 = 65_535;

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}
use tcp_flags::{ACK, FIN, RST, SYN};

/// A tracked connection: one cache line for IPv4 (for the owners' data so far), two for
/// IPv6.
#[derive(Clone, Copy, Debug)]
pub struct Entry<T, K = Tuple> {
    /// Its tuples, by [`Dir`].
    pub tuple: [K; 2],
    /// When it expires unless more packets come.
    pub expires: Timestamp,
    /// TCP state.
    pub tcp: TcpState,
    /// A packet was seen in the reply direction.
    pub seen_reply: bool,
    /// FIN seen, by direction.
    fin: [bool; 2],
    /// TCP: the sequence number after the last segment seen, by direction (valid once
    /// `seq_seen`).
    next: [u32; 2],
    /// TCP: a segment was seen in that direction since the connection (re)opened.
    seq_seen: [bool; 2],
    /// The owner's data (a NAT's port binding).
    pub data: T,
    live: bool,
}

impl<T: Default, K: Copy + Default> Default for Entry<T, K> {
    fn default() -> Self {
        Entry {
            tuple: [K::default(); 2],
            expires: Timestamp::ZERO,
            tcp: TcpState::None,
            seen_reply: false,
            fin: [false; 2],
            next: [0; 2],
            seq_seen: [false; 2],
            data: T::default(),
            live: false,
        }
    }
}

impl<T, K> Entry<T, K> {
    /// The connection's state for display: the TCP state's name, else `NEW` until a reply
    /// was seen and `ESTABLISHED` after.
    pub fn state_name(&self) -> &'static str {
        match self.tcp {
            TcpState::None if self.seen_reply => "ESTABLISHED",
            TcpState::None => "NEW",
            s => s.name(),
        }
    }
}

/// What a packet is, for the firewall's `state` match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtState {
    /// It opens a connection, or its connection was not yet seen both ways.
    New,
    /// Its connection was seen both ways.
    Established,
    /// An ICMP error about a tracked connection.
    Related,
    /// It cannot be tracked.
    Invalid,
}

/// Why an insert failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table is full.
    Full,
    /// One of the tuples is already tracked.
    Clash,
}

/// Counters of a tracker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConntrackStats {
    /// Connections created.
    pub created: u64,
    /// Connections removed because they expired.
    pub expired: u64,
    /// Connections evicted to make room.
    pub evicted: u64,
    /// New connections refused because the table was full.
    pub full: u64,
    /// TCP RSTs refused because their sequence number was out of the window.
    pub blind_rst: u64,
}

/// The tuple index: open addressing with linear probing over a power-of-two array at most
/// half full, each slot holding the tuple, its hash and the value; removal shifts the
/// following run back, so there are no tombstones and a lookup stops at the first empty
/// slot. Memory is all reserved at start. The slot of a hash can be prefetched, so a node
/// looks up a whole burst with its cache misses overlapping. The fragment table
/// ([`crate::fragments`]) indexes its datagrams with it too.
pub(crate) struct FlowTable<K> {
    slots: Vec<Slot<K>>,
    mask: usize,
    hasher: ahash::RandomState,
}

#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot<K> {
    key: K,
    /// The value plus one; 0 marks an empty slot.
    val: u32,
    hash: u64,
}

impl<K: Copy + Default + Eq + Hash> FlowTable<K> {
    /// A table for `keys` keys at most.
    pub(crate) fn new(keys: usize) -> Self {
        let n = (keys.max(1) * 2).next_power_of_two();
        let mut slots = Vec::with_capacity(n);
        nfv_dataplane::advise_huge_pages(slots.spare_capacity_mut());
        slots.resize(n, Slot::default());
        FlowTable {
            slots,
            mask: n - 1,
            hasher: ahash::RandomState::new(),
        }
    }

    #[inline]
    pub(crate) fn hash(&self, t: &K) -> u64 {
        self.hasher.hash_one(t)
    }

    #[inline]
    fn prefetch(&self, hash: u64) {
        nfv_dataplane::prefetch(&self.slots[hash as usize & self.mask]);
    }

    #[inline]
    fn find(&self, t: &K, hash: u64) -> Option<usize> {
        let mut i = hash as usize & self.mask;
        loop {
            let s = &self.slots[i];
            if s.val == 0 {
                return None;
            }
            if s.hash == hash && s.key == *t {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The value of `t` (of hash `hash`).
    #[inline]
    pub(crate) fn get(&self, t: &K, hash: u64) -> Option<u32> {
        self.find(t, hash).map(|i| self.slots[i].val - 1)
    }

    /// Insert a key that is not there (the table is never more than half full).
    pub(crate) fn insert(&mut self, t: K, val: u32) {
        let hash = self.hash(&t);
        let mut i = hash as usize & self.mask;
        while self.slots[i].val != 0 {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot {
            key: t,
            val: val + 1,
            hash,
        };
    }

    /// Remove `t` if it is there.
    pub(crate) fn remove(&mut self, t: &K) {
        let Some(mut i) = self.find(t, self.hash(t)) else {
            return;
        };
        // Shift back every following slot of the run that may move into the hole.
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            if self.slots[j].val == 0 {
                break;
            }
            let home = self.slots[j].hash as usize & self.mask;
            // `j` may fill the hole at `i` unless its home lies cyclically in (i, j].
            let in_between = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !in_between {
                self.slots[i] = self.slots[j];
                i = j;
            }
        }
        self.slots[i] = Slot::default();
    }
}

/// The table. `T` is the owner's per-connection data, `K` the key: [`Tuple`] (IPv4, the
/// default) or [`Tuple6`] (IPv6).
pub struct Conntrack<T, K = Tuple> {
    map: FlowTable<K>,
    entries: Vec<Entry<T, K>>,
    free: Vec<u32>,
    len: usize,
    cursor: usize,
    timeouts: Timeouts,
    /// Counters.
    pub stats: ConntrackStats,
}

impl<T: Copy + Default, K: FlowKey> Conntrack<T, K> {
    /// A table of at most `max` connections (at least 1), all memory reserved now.
    pub fn new(max: usize, timeouts: Timeouts) -> Self {
        let max = max.clamp(1, u32::MAX as usize / 2);
        Conntrack {
            map: FlowTable::new(2 * max),
            entries: {
                let mut v = Vec::with_capacity(max);
                nfv_dataplane::advise_huge_pages(v.spare_capacity_mut());
                v.resize(max, Entry::default());
                v
            },
            free: (0..max as u32).rev().collect(),
            len: 0,
            cursor: 0,
            timeouts,
            stats: ConntrackStats::default(),
        }
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most connections.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// The timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The entry in slot `idx`.
    #[inline]
    pub fn entry(&self, idx: u32) -> &Entry<T, K> {
        &self.entries[idx as usize]
    }

    /// The entry in slot `idx`, to change.
    #[inline]
    pub fn entry_mut(&mut self, idx: u32) -> &mut Entry<T, K> {
        &mut self.entries[idx as usize]
    }

    /// Live connections.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<T, K>> {
        self.entries.iter().filter(|e| e.live)
    }

    /// The connection a packet with tuple `t` belongs to and its direction. An expired
    /// connection is removed (through `on_remove`) and not found.
    #[inline]
    pub fn lookup(
        &mut self,
        t: &K,
        now: Timestamp,
        on_remove: &mut impl FnMut(&Entry<T, K>),
    ) -> Option<(u32, Dir)> {
        let hash = self.map.hash(t);
        self.lookup_hashed(t, Probe { hash, hint: 0 }, now, on_remove)
    }

    /// The hash of `t`, for [`prefetch`](Self::prefetch) and
    /// [`lookup_hashed`](Self::lookup_hashed).
    #[inline]
    pub fn hash(&self, t: &K) -> u64 {
        self.map.hash(t)
    }

    /// Start loading the table slot of `hash` into the cache.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.map.prefetch(hash);
    }

    /// Start loading the connection `t` (of hash `hash`) belongs to, if it has one; returns
    /// the hint for [`lookup_hashed`](Self::lookup_hashed) (0: none).
    #[inline]
    pub fn prefetch_entry(&self, t: &K, hash: u64) -> u32 {
        match self.map.get(t, hash) {
            Some(v) => {
                if let Some(e) = self.entries.get((v >> 1) as usize) {
                    nfv_dataplane::prefetch(e);
                }
                v + 1
            }
            None => 0,
        }
    }

    /// [`lookup`](Self::lookup) with the tuple's hash already computed.
    #[inline]
    pub fn lookup_hashed(
        &mut self,
        t: &K,
        probe: Probe,
        now: Timestamp,
        on_remove: &mut impl FnMut(&Entry<T, K>),
    ) -> Option<(u32, Dir)> {
        // The hint from the burst's prefetch pass holds unless an earlier packet of the
        // burst changed the table: check that its entry still carries this tuple.
        let hinted = probe.hint.checked_sub(1).filter(|&v| {
            self.entries
                .get((v >> 1) as usize)
                .is_some_and(|e| e.live && e.tuple[(v & 1) as usize] == *t)
        });
        let v = match hinted {
            Some(v) => v,
            None => self.map.get(t, probe.hash)?,
        };
        let idx = v >> 1;
        let e = &self.entries[idx as usize];
        if e.expires < now {
            self.stats.expired += 1;
            self.remove(idx, on_remove);
            return None;
        }
        Some((idx, if v & 1 == 0 { Dir::Orig } else { Dir::Reply }))
    }

    /// True if `t` is tracked (expired or not).
    #[inline]
    pub fn contains(&self, t: &K) -> bool {
        self.map.get(t, self.map.hash(t)).is_some()
    }

    /// True if no slot is free.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Track a new connection whose first packet is `orig` and whose replies will carry
    /// `reply`; the packet's TCP flags start the state machine. When the table is full an
    /// expired or half-open connection nearby is evicted (through `on_remove`) if there is
    /// one.
    pub fn insert(
        &mut self,
        orig: K,
        reply: K,
        flags: u8,
        data: T,
        now: Timestamp,
        on_remove: &mut impl FnMut(&Entry<T, K>),
    ) -> Result<u32, InsertError> {
        if self.contains(&orig) || self.contains(&reply) || orig == reply {
            return Err(InsertError::Clash);
        }
        if self.free.is_empty() && !self.evict(now, on_remove) {
            self.stats.full += 1;
            return Err(InsertError::Full);
        }
        let Some(idx) = self.free.pop() else {
            self.stats.full += 1;
            return Err(InsertError::Full);
        };
        let tcp = if orig.proto() == PROTO_TCP && flags & SYN != 0 {
            TcpState::SynSent
        } else if orig.proto() == PROTO_TCP {
            // The caller only inserts TCP on a SYN; anything else starts closed.
            TcpState::Close
        } else {
            TcpState::None
        };
        let mut e = Entry {
            tuple: [orig, reply],
            expires: now,
            tcp,
            seen_reply: false,
            fin: [false; 2],
            next: [0; 2],
            seq_seen: [false; 2],
            data,
            live: true,
        };
        e.expires = now.plus(timeout(&self.timeouts, &e));
        self.entries[idx as usize] = e;
        self.map.insert(orig, idx << 1);
        self.map.insert(reply, idx << 1 | 1);
        self.len += 1;
        self.stats.created += 1;
        Ok(idx)
    }

    /// A packet of connection `idx` went in direction `dir` with TCP `flags` (0 for other
    /// protocols): advance its state and its expiry. Returns the packet's state.
    #[inline(always)]
    pub fn update(&mut self, idx: u32, dir: Dir, flags: u8, now: Timestamp) -> CtState {
        let timeouts = self.timeouts;
        let e = &mut self.entries[idx as usize];
        if e.tcp != TcpState::None {
            tcp_step(e, dir, flags);
        }
        if dir == Dir::Reply {
            e.seen_reply = true;
        }
        e.expires = now.plus(timeout(&timeouts, e));
        if e.seen_reply {
            CtState::Established
        } else {
            CtState::New
        }
    }

    /// [`update`](Self::update) for a packet of flow `f`, checking a TCP RST against the
    /// sequence numbers seen: a RST from a side whose segments were seen is accepted only if
    /// its sequence number is within [`RST_WINDOW`] of the end of what that side sent.
    /// Otherwise (a blind RST) nothing changes and `None` is returned: the caller drops the
    /// packet as invalid. Other TCP segments move their side's end forward.
    #[inline]
    pub fn segment(&mut self, idx: u32, dir: Dir, f: &Flow<K>, now: Timestamp) -> Option<CtState> {
        let d = dir as usize;
        let tcp = f.tuple.proto() == PROTO_TCP;
        let rst = f.flags & RST != 0;
        if tcp && rst {
            let e = &self.entries[idx as usize];
            let off = f.seq.wrapping_sub(e.next[d]) as i32;
            if e.seq_seen[d] && off.unsigned_abs() > RST_WINDOW {
                self.stats.blind_rst += 1;
                return None;
            }
        }
        // One call of `update`, so that it stays inlined in the callers' per-packet loops.
        let state = self.update(idx, dir, f.flags, now);
        if tcp && !rst {
            let e = &mut self.entries[idx as usize];
            let end = f.seq.wrapping_add(f.seg_len);
            if !e.seq_seen[d] || (end.wrapping_sub(e.next[d]) as i32) > 0 {
                e.next[d] = end;
                e.seq_seen[d] = true;
            }
        }
        Some(state)
    }

    /// Remove connection `idx`, handing it to `on_remove` first.
    pub fn remove(&mut self, idx: u32, on_remove: &mut impl FnMut(&Entry<T, K>)) {
        let e = &mut self.entries[idx as usize];
        if !e.live {
            return;
        }
        on_remove(e);
        e.live = false;
        let [o, r] = e.tuple;
        self.map.remove(&o);
        self.map.remove(&r);
        self.free.push(idx);
        self.len -= 1;
    }

    /// Remove expired connections among the next slots (about `capacity / 1024`, at least
    /// 64): called from `tick`, about every millisecond. Returns how many were removed.
    pub fn sweep(&mut self, now: Timestamp, on_remove: &mut impl FnMut(&Entry<T, K>)) -> usize {
        let n = self.entries.len();
        let budget = (n / 1024).max(SWEEP_MIN).min(n);
        let mut removed = 0;
        for _ in 0..budget {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % n;
            let e = &self.entries[i];
            if e.live && e.expires < now {
                self.remove(i as u32, on_remove);
                removed += 1;
            }
        }
        self.stats.expired += removed as u64;
        removed
    }

    /// Make room: evict an expired or half-open connection among the next
    /// [`EVICT_SCAN`] slots from the sweep cursor.
    fn evict(&mut self, now: Timestamp, on_remove: &mut impl FnMut(&Entry<T, K>)) -> bool {
        let n = self.entries.len();
        for k in 0..EVICT_SCAN.min(n) {
            let i = (self.cursor + k) % n;
            let e = &self.entries[i];
            if e.live && (e.expires < now || !e.seen_reply) {
                self.remove(i as u32, on_remove);
                self.stats.evicted += 1;
                self.cursor = (i + 1) % n;
                return true;
            }
        }
        self.cursor = (self.cursor + EVICT_SCAN) % n;
        false
    }

    /// The `conntrack` table at `now` (see the module documentation), sorted by protocol
    /// and source.
    pub fn table(&self, now: Timestamp) -> Table {
        let mut live: Vec<&Entry<T, K>> = self.iter().filter(|e| e.expires >= now).collect();
        live.sort_unstable_by_key(|e| e.tuple[0].order());
        let mut t = Table::new(&["proto", "src", "dst", "state", "expires_s"]);
        for e in live {
            let o = e.tuple[0];
            let (src, dst) = o.endpoints();
            t.push(vec![
                show::proto(o.proto()),
                src,
                dst,
                e.state_name().into(),
                show::expires_s(now, e.expires),
            ]);
        }
        t
    }

    /// Remove every connection.
    pub fn clear(&mut self, on_remove: &mut impl FnMut(&Entry<T, K>)) {
        for i in 0..self.entries.len() {
            self.remove(i as u32, on_remove);
        }
    }
}

/// The timeout of `e` in its present state.
fn timeout<T, K: FlowKey>(t: &Timeouts, e: &Entry<T, K>) -> Duration {
    match e.tcp {
        TcpState::SynSent | TcpState::SynRecv => t.tcp_syn,
        TcpState::Established => t.tcp_established,
        TcpState::FinWait | TcpState::LastAck | TcpState::TimeWait => t.tcp_fin,
        TcpState::Close => t.tcp_close,
        TcpState::None => match (e.tuple[0].proto(), e.seen_reply) {
            (p, _) if p == K::ICMP => t.icmp,
            (_, true) => t.udp_stream,
            (_, false) => t.udp,
        },
    }
}

/// One step of the TCP state machine.
fn tcp_step<T, K>(e: &mut Entry<T, K>, dir: Dir, flags: u8) {
    use TcpState::*;
    if flags & RST != 0 {
        e.tcp = Close;
        return;
    }
    let syn = flags & SYN != 0;
    let ack = flags & ACK != 0;
    let fin = flags & FIN != 0;
    e.tcp = match (e.tcp, dir) {
        (SynSent, Dir::Reply) if syn => SynRecv,
        (SynRecv, Dir::Orig) if ack && !syn => Established,
        (TimeWait | Close, Dir::Orig) if syn && !ack => {
            // The port is used again: a new connection on the same tuples.
            e.fin = [false; 2];
            e.seq_seen = [false; 2];
            e.seen_reply = false;
            SynSent
        }
        (Established | FinWait, d) if fin => {
            e.fin[d as usize] = true;
            if e.fin[0] && e.fin[1] {
                LastAck
            } else {
                FinWait
            }
        }
        (LastAck, _) if ack && !fin => TimeWait,
        (s, _) => s,
    };
}

// ---------------------------------------------------------------------------------------
// Reading a packet's flow

/// What kind of ICMP message (if any) a packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    /// Not ICMP.
    None,
    /// An echo request or reply (the tuple's source or destination port holds the
    /// identifier).
    Echo,
    /// An error quoting another packet.
    Error,
    /// Another ICMP message.
    Other,
}

/// A packet's flow, read from an untagged Ethernet frame carrying IPv4 (`Flow`) or IPv6
/// ([`Flow6`]).
#[derive(Clone, Copy, Debug)]
pub struct Flow<K = Tuple> {
    /// Its tuple (the zone is the caller's).
    pub tuple: K,
    /// Where the IP header starts in the frame.
    pub l3: usize,
    /// IPv4 header length; IPv6: the fixed header's and the extension headers' (where the
    /// upper-layer header starts, from `l3`).
    pub ihl: usize,
    /// IPv4 total length; IPv6: 40 plus the payload length.
    pub total: usize,
    /// TCP flags (0 for other protocols).
    pub flags: u8,
    /// TCP sequence number (0 for other protocols).
    pub seq: u32,
    /// TCP: the sequence space the segment takes (payload bytes, plus one for a SYN and
    /// one for a FIN); 0 for other protocols.
    pub seg_len: u32,
    /// ICMP kind and, for an error, its type.
    pub icmp: IcmpKind,
    /// ICMP type (0 if not ICMP).
    pub icmp_type: u8,
    /// For an ICMP error: the quoted packet's tuple and where its IP header starts in the
    /// frame.
    pub inner: Option<(K, usize)>,
    /// The packet is the first fragment of a datagram (offset 0, more fragments follow):
    /// its later fragments follow its treatment ([`crate::fragments`]).
    pub fragment: bool,
}

/// An IPv6 packet's flow.
pub type Flow6 = Flow<Tuple6>;

/// Why a frame has no flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowError {
    /// Not an untagged IPv4 frame (what [`flow`] says of IPv6, ARP and the rest).
    NotIpv4,
    /// Not an untagged IPv6 frame (what [`flow6`] says of IPv4, ARP and the rest).
    NotIpv6,
    /// A non-first fragment: it has no transport header to match; `nat` and `firewall`
    /// give it its first fragment's treatment ([`crate::fragments`]).
    Fragment,
    /// Malformed: dropped for this reason.
    Bad(DropReason),
}

/// True if ICMP `ty` is an error message that quotes a packet.
#[inline]
pub fn icmp_is_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// Ports (or ICMP identifier) of the transport header `l4` of `proto`, if enough of it is
/// there for them (4 bytes of TCP or UDP, the 8-byte ICMP header).
#[inline(always)]
fn ports(l4: &[u8], proto: u8) -> Option<(u16, u16, IcmpKind, u8)> {
    match proto {
        PROTO_TCP | PROTO_UDP => {
            let p = Ports::new_checked(l4).ok()?;
            Some((p.src_port(), p.dst_port(), IcmpKind::None, 0))
        }
        PROTO_ICMP => {
            let m = Icmpv4Packet::new_checked(l4).ok()?;
            let ty = m.msg_type();
            match ty {
                8 => Some((m.echo_ident(), 0, IcmpKind::Echo, ty)),
                0 => Some((0, m.echo_ident(), IcmpKind::Echo, ty)),
                t if icmp_is_error(t) => Some((0, 0, IcmpKind::Error, ty)),
                _ => Some((0, 0, IcmpKind::Other, ty)),
            }
        }
        _ => Some((0, 0, IcmpKind::None, 0)),
    }
}

/// Read the flow of `frame`. IPv4 header checks as a router makes them (`bad_header`,
/// `bad_checksum`, `runt`); a transport header too short for its ports is `runt`.
#[inline]
pub fn parse(frame: &[u8], zone: u8) -> Result<Flow, FlowError> {
    flow(frame, &Headers::parse(frame), zone)
}

/// [`parse`] for a packet, through [`wire::classify`]: the headers a node before found
/// are reused, and the ones found here are left on the packet for the nodes after.
#[inline]
pub fn parse_packet(pkt: &mut Packet, zone: u8) -> Result<Flow, FlowError> {
    let h = wire::classify(pkt);
    flow(pkt.data(), &h, zone)
}

/// Read the flow of `frame`, whose headers are `h`.
#[inline]
pub fn flow(frame: &[u8], h: &Headers, zone: u8) -> Result<Flow, FlowError> {
    match h.l3 {
        _ if h.tagged => return Err(FlowError::NotIpv4),
        L3::Ipv4 => {}
        L3::Ipv4Runt | L3::Ipv4Malformed | L3::Ipv4BadChecksum => {
            return Err(FlowError::Bad(
                h.l3.error().unwrap_or(DropReason::BadHeader),
            ))
        }
        _ => return Err(FlowError::NotIpv4),
    }
    // Checked again in a few comparisons: a record that no longer fits is a bad header.
    let ip = h.ipv4(frame).ok_or(FlowError::Bad(DropReason::BadHeader))?;
    if ip.frag_offset() != 0 {
        return Err(FlowError::Fragment);
    }
    let (ihl, total) = (ip.header_len(), usize::from(ip.total_len()));
    let proto = ip.protocol();
    let l4 = ip.payload();
    let (sport, dport, icmp, icmp_type) =
        ports(l4, proto).ok_or(FlowError::Bad(DropReason::Runt))?;
    let (flags, seq, seg_len) = if proto == PROTO_TCP {
        let t = TcpPacket::new_checked(l4).map_err(|_| FlowError::Bad(DropReason::Runt))?;
        let flags = t.flags();
        let ends = u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        (flags, t.seq_number(), t.payload().len() as u32 + ends)
    } else {
        (0, 0, 0)
    };
    let tuple = Tuple {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        sport,
        dport,
        proto,
        zone,
    };
    let mut inner = None;
    if icmp == IcmpKind::Error {
        // The quoted header: at least 20 bytes, and 8 of its transport header.
        let quote = l4.get(icmp::HEADER_LEN..).unwrap_or(&[]);
        if let Ok(q) = Ipv4Packet::new_quoted(quote) {
            if let Some((s, d, _, _)) = ports(q.after_header(), q.protocol()) {
                inner = Some((
                    Tuple {
                        src: q.src_addr(),
                        dst: q.dst_addr(),
                        sport: s,
                        dport: d,
                        proto: q.protocol(),
                        zone,
                    },
                    h.l4_off + icmp::HEADER_LEN,
                ));
            }
        }
    }
    Ok(Flow {
        tuple,
        l3: h.l3_off,
        ihl,
        total,
        flags,
        seq,
        seg_len,
        icmp,
        icmp_type,
        inner,
        fragment: ip.more_frags(),
    })
}

/// Ports (or ICMPv6 echo identifier) of the upper-layer header `l4` of `proto`, if enough
/// of it is there for them (4 bytes of TCP or UDP, the 8-byte ICMPv6 header).
#[inline]
fn ports6(l4: &[u8], proto: u8) -> Option<(u16, u16, IcmpKind, u8)> {
    use icmp::v6::{ECHO_REPLY, ECHO_REQUEST};
    match proto {
        PROTO_TCP | PROTO_UDP => {
            let p = Ports::new_checked(l4).ok()?;
            Some((p.src_port(), p.dst_port(), IcmpKind::None, 0))
        }
        PROTO_ICMPV6 => {
            let m = Icmpv6Packet::new_checked(l4).ok()?;
            if m.len() < icmp::V6_MESSAGE_HEADER_LEN {
                return None;
            }
            let ty = m.msg_type();
            match ty {
                ECHO_REQUEST => Some((m.echo_ident(), 0, IcmpKind::Echo, ty)),
                ECHO_REPLY => Some((0, m.echo_ident(), IcmpKind::Echo, ty)),
                t if icmp::v6::is_error(t) => Some((0, 0, IcmpKind::Error, ty)),
                _ => Some((0, 0, IcmpKind::Other, ty)),
            }
        }
        _ => Some((0, 0, IcmpKind::None, 0)),
    }
}

/// Read the IPv6 flow of `frame`: [`parse`] for IPv6. The fixed header's checks as
/// [`wire::classify`] makes them (`runt`, `bad_header`); an extension header chain that
/// runs past the payload, is longer than
/// [`MAX_EXT_HEADERS`](crate::wire::ipv6::MAX_EXT_HEADERS) or has a hop-by-hop header
/// after the first is `bad_header`; an upper-layer header too short for its ports is
/// `runt`; a fragment other than the first is [`FlowError::Fragment`].
#[inline]
pub fn parse6(frame: &[u8], zone: u8) -> Result<Flow6, FlowError> {
    flow6(frame, &Headers::parse(frame), zone)
}

/// [`parse6`] for a packet, through [`wire::classify`] (as [`parse_packet`]).
#[inline]
pub fn parse_packet6(pkt: &mut Packet, zone: u8) -> Result<Flow6, FlowError> {
    let h = wire::classify(pkt);
    flow6(pkt.data(), &h, zone)
}

/// Read the IPv6 flow of `frame`, whose headers are `h` (see [`parse6`]).
pub fn flow6(frame: &[u8], h: &Headers, zone: u8) -> Result<Flow6, FlowError> {
    match h.l3 {
        _ if h.tagged => return Err(FlowError::NotIpv6),
        L3::Ipv6 => {}
        L3::Ipv6Runt | L3::Ipv6Malformed => {
            return Err(FlowError::Bad(
                h.l3.error().unwrap_or(DropReason::BadHeader),
            ))
        }
        _ => return Err(FlowError::NotIpv6),
    }
    let bad = FlowError::Bad(DropReason::BadHeader);
    let ip = h.ipv6(frame).ok_or(bad)?;
    let up = ip.upper_layer().map_err(|_| bad)?;
    if up.is_later_fragment() {
        return Err(FlowError::Fragment);
    }
    let total = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let l4 = ip
        .payload()
        .get(up.offset - ipv6::HEADER_LEN..)
        .unwrap_or(&[]);
    let proto = up.proto;
    let (sport, dport, icmp, icmp_type) =
        ports6(l4, proto).ok_or(FlowError::Bad(DropReason::Runt))?;
    let (flags, seq, seg_len) = if proto == PROTO_TCP {
        let t = TcpPacket::new_checked(l4).map_err(|_| FlowError::Bad(DropReason::Runt))?;
        let flags = t.flags();
        let ends = u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        (flags, t.seq_number(), t.payload().len() as u32 + ends)
    } else {
        (0, 0, 0)
    };
    let tuple = Tuple6 {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        sport,
        dport,
        proto,
        zone,
    };
    let mut inner = None;
    if icmp == IcmpKind::Error {
        // The quoted datagram: its fixed header, its extension headers and 4 bytes of its
        // upper-layer header (8 for ICMPv6), cut short wherever the quote ends.
        let quote = l4.get(icmp::V6_MESSAGE_HEADER_LEN..).unwrap_or(&[]);
        let quoted = Ipv6Packet::new_quoted(quote).ok().and_then(|q| {
            let u = q.upper_layer().ok().filter(|u| !u.is_later_fragment())?;
            let ql4 = q.payload().get(u.offset - ipv6::HEADER_LEN..)?;
            let (s, d, _, _) = ports6(ql4, u.proto)?;
            Some(Tuple6 {
                src: q.src_addr(),
                dst: q.dst_addr(),
                sport: s,
                dport: d,
                proto: u.proto,
                zone,
            })
        });
        inner = quoted.map(|t| (t, h.l3_off + up.offset + icmp::V6_MESSAGE_HEADER_LEN));
    }
    Ok(Flow {
        tuple,
        l3: h.l3_off,
        ihl: up.offset,
        total,
        flags,
        seq,
        seg_len,
        icmp,
        icmp_type,
        inner,
        fragment: up.more,
    })
}

/// The tuple whose connection a packet with flow `f` arriving from `zone` belongs to: its
/// own, or for an ICMP error the reverse of the quoted one. `None` for an error without a
/// usable quote.
#[inline]
pub fn key<K: FlowKey>(f: &Flow<K>, zone: u8) -> Option<K> {
    if f.icmp == IcmpKind::Error {
        f.inner.map(|(inner, _)| inner.reverse(zone))
    } else {
        Some(f.tuple)
    }
}

/// A burst's flows, read and their table slots prefetched before any is looked up: for
/// the IPv4 table (`Prefetched`, the default) or the IPv6 one (`Prefetched<Tuple6>`).
pub struct Prefetched<K = Tuple> {
    flows: Vec<(Result<Flow<K>, FlowError>, Probe)>,
    /// Packets of the last burst that are not of this family.
    others: usize,
    /// What [`get`](Self::get) gives past the burst.
    none: Result<Flow<K>, FlowError>,
}

/// Where a packet's tuple is in a table: its hash, and the table's value for it as the
/// burst's prefetch pass found it, plus one (0: not found then).
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe {
    /// The tuple's hash.
    pub hash: u64,
    /// The value found in the prefetch pass, plus one; 0 for none.
    pub hint: u32,
}

impl<K: FlowKey> Default for Prefetched<K> {
    fn default() -> Self {
        Prefetched {
            flows: Vec::with_capacity(nfv_dataplane::BURST),
            others: 0,
            none: Err(K::OTHER),
        }
    }
}

impl<K: FlowKey> Prefetched<K> {
    /// Read the flow of every packet of `batch` (arriving from `zone`) and prefetch its
    /// slot in `ct`.
    /// The headers each packet carries are reused, or found and left on it.
    pub fn fill<T: Copy + Default>(
        &mut self,
        batch: &mut nfv_dataplane::Batch,
        zone: u8,
        ct: &Conntrack<T, K>,
    ) {
        self.flows.clear();
        self.others = 0;
        for pkt in batch.iter_mut() {
            let h = wire::classify(pkt);
            let f = K::flow(pkt.data(), &h, zone);
            if matches!(f, Err(e) if e == K::OTHER) {
                self.others += 1;
            }
            let h = match f.as_ref().ok().and_then(|f| key(f, zone)) {
                Some(k) => {
                    let h = ct.hash(&k);
                    ct.prefetch(h);
                    h
                }
                None => 0,
            };
            self.flows.push((f, Probe { hash: h, hint: 0 }));
        }
        // Second pass, the slots now (mostly) in cache: find the connections they name and
        // prefetch them.
        for (f, probe) in &mut self.flows {
            if let Some(k) = f.as_ref().ok().and_then(|f| key(f, zone)) {
                probe.hint = ct.prefetch_entry(&k, probe.hash);
            }
        }
    }

    /// The flow and table probe of the `i`th packet (past the burst, or before any fill:
    /// not of this family).
    #[inline]
    pub fn get(&self, i: usize) -> (&Result<Flow<K>, FlowError>, Probe) {
        match self.flows.get(i) {
            Some((f, p)) => (f, *p),
            None => (&self.none, Probe::default()),
        }
    }

    /// How many packets of the last [`fill`](Self::fill) are not of this family (not IP,
    /// tagged, or the other IP version).
    #[inline]
    pub fn others(&self) -> usize {
        self.others
    }

    /// Forget the last burst: every packet reads as not of this family. Allocates nothing.
    #[inline]
    pub fn clear(&mut self) {
        self.flows.clear();
        self.others = 0;
    }

    /// Take the flows out (to read them while the owner changes), leaving none; give them
    /// back with [`restore`](Self::restore). Allocates nothing.
    pub fn take(&mut self) -> Prefetched<K> {
        Prefetched {
            flows: std::mem::take(&mut self.flows),
            others: self.others,
            none: Err(K::OTHER),
        }
    }

    /// Put back what [`take`](Self::take) took.
    pub fn restore(&mut self, p: Prefetched<K>) {
        self.flows = p.flows;
    }
}

/// True if a packet with this flow may open a connection: a TCP SYN without ACK, or any
/// packet of another protocol except ICMP errors and echo replies (ICMPv6 the same).
#[inline]
pub fn may_open<K: FlowKey>(f: &Flow<K>) -> bool {
    match f.tuple.proto() {
        PROTO_TCP => f.flags & (SYN | ACK | RST) == SYN,
        p if p == K::ICMP => {
            !(f.icmp == IcmpKind::Error || f.icmp_type == K::ECHO_REPLY && f.icmp == IcmpKind::Echo)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testframes::*;
    use nfv_dataplane::Cell;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(1000 + s)
    }

    fn tup(sport: u16) -> Tuple {
        Tuple {
            src: ipa("10.0.0.1"),
            dst: ipa("10.0.0.2"),
            sport,
            dport: 80,
            proto: PROTO_TCP,
            zone: 0,
        }
    }

    fn ct(max: usize) -> Conntrack<u8> {
        Conntrack::new(max, Timeouts::default())
    }

    fn none(_: &Entry<u8>) {}

    #[test]
    fn tcp_handshake_data_and_close_walk_the_states() {
        let mut c = ct(8);
        let o = tup(1000);
        let idx = c
            .insert(o, o.reverse(1), SYN, 0, t(0), &mut none)
            .expect("insert");
        let st = |c: &Conntrack<u8>| c.entry(idx).tcp;
        assert_eq!(st(&c), TcpState::SynSent);
        assert_eq!(c.entry(idx).expires, t(120), "tcp_syn");
        assert_eq!(
            c.update(idx, Dir::Orig, SYN, t(1)),
            CtState::New,
            "retransmitted SYN"
        );
        assert_eq!(st(&c), TcpState::SynSent);
        assert_eq!(
            c.lookup(&o.reverse(1), t(1), &mut none),
            Some((idx, Dir::Reply))
        );
        assert_eq!(
            c.update(idx, Dir::Reply, SYN | ACK, t(1)),
            CtState::Established
        );
        assert_eq!(st(&c), TcpState::SynRecv);
        c.update(idx, Dir::Orig, ACK, t(2));
        assert_eq!(st(&c), TcpState::Established);
        assert_eq!(c.entry(idx).expires, t(2 + 5 * 24 * 3600));
        c.update(idx, Dir::Orig, FIN | ACK, t(3));
        assert_eq!(st(&c), TcpState::FinWait);
        assert_eq!(c.entry(idx).expires, t(123));
        c.update(idx, Dir::Reply, ACK, t(3));
        assert_eq!(st(&c), TcpState::FinWait);
        c.update(idx, Dir::Reply, FIN | ACK, t(4));
        assert_eq!(st(&c), TcpState::LastAck);
        c.update(idx, Dir::Orig, ACK, t(5));
        assert_eq!(st(&c), TcpState::TimeWait);
        // The port is used again.
        assert_eq!(c.update(idx, Dir::Orig, SYN, t(6)), CtState::New);
        assert_eq!(st(&c), TcpState::SynSent);
        assert!(!c.entry(idx).seen_reply);
        // A RST closes whatever the state.
        c.update(idx, Dir::Reply, SYN | ACK, t(6));
        c.update(idx, Dir::Reply, RST, t(7));
        assert_eq!(st(&c), TcpState::Close);
        assert_eq!(c.entry(idx).expires, t(17), "tcp_close");
        assert_eq!(TcpState::Close.name(), "CLOSE");
    }

    /// A TCP segment of flow `o` (or its reply) as [`parse`] reads it.
    fn seg(tuple: Tuple, flags: u8, seq: u32, payload: u32) -> Flow {
        Flow {
            tuple,
            l3: 14,
            ihl: 20,
            total: 40 + payload as usize,
            flags,
            seq,
            seg_len: payload + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0),
            icmp: IcmpKind::None,
            icmp_type: 0,
            inner: None,
            fragment: false,
        }
    }

    #[test]
    fn a_blind_rst_out_of_the_window_leaves_an_established_connection_open() {
        let mut c = ct(8);
        let o = tup(1000);
        let r = o.reverse(1);
        let idx = c.insert(o, r, SYN, 0, t(0), &mut none).expect("insert");
        let step = |c: &mut Conntrack<u8>, dir, f: &Flow| c.segment(idx, dir, f, t(1));
        assert!(step(&mut c, Dir::Reply, &seg(r, SYN | ACK, 5_000, 0)).is_some());
        assert!(step(&mut c, Dir::Orig, &seg(o, ACK, 1_001, 0)).is_some());
        assert!(step(&mut c, Dir::Orig, &seg(o, ACK, 1_001, 100)).is_some());
        assert!(step(&mut c, Dir::Reply, &seg(r, ACK, 5_001, 1_000)).is_some());
        assert_eq!(c.entry(idx).tcp, TcpState::Established);
        // A blind RST with a sequence number far from either side's: refused, nothing
        // changes.
        for (dir, tuple) in [(Dir::Orig, o), (Dir::Reply, r)] {
            assert_eq!(step(&mut c, dir, &seg(tuple, RST, 0x8000_0000, 0)), None);
            assert_eq!(c.entry(idx).tcp, TcpState::Established);
        }
        assert_eq!(c.stats.blind_rst, 2);
        // Just past the window from the server's end (6_001): still refused.
        let far = 6_001 + RST_WINDOW + 1;
        assert_eq!(step(&mut c, Dir::Reply, &seg(r, RST, far, 0)), None);
        assert_eq!(c.entry(idx).tcp, TcpState::Established);
        // The server's RST at its next sequence number closes the connection.
        assert!(step(&mut c, Dir::Reply, &seg(r, RST | ACK, 6_001, 0)).is_some());
        assert_eq!(c.entry(idx).tcp, TcpState::Close);
    }

    #[test]
    fn the_table_lists_live_connections_with_states_and_expiry() {
        let mut c = ct(8);
        let o = tup(1000);
        let idx = c
            .insert(o, o.reverse(1), SYN, 0, t(0), &mut none)
            .expect("tcp");
        c.update(idx, Dir::Reply, SYN | ACK, t(1));
        c.update(idx, Dir::Orig, ACK, t(1));
        let u = Tuple {
            proto: PROTO_UDP,
            ..tup(53)
        };
        c.insert(u, u.reverse(1), 0, 0, t(0), &mut none)
            .expect("udp");
        let e = Tuple {
            src: ipa("10.0.0.9"),
            dst: ipa("192.0.2.1"),
            sport: 77,
            dport: 0,
            proto: PROTO_ICMP,
            zone: 0,
        };
        c.insert(e, e.reverse(1), 0, 0, t(0), &mut none)
            .expect("icmp");
        let table = c.table(t(10));
        assert_eq!(table.columns, ["proto", "src", "dst", "state", "expires_s"]);
        let row = |p: &str, s: &str, d: &str, st: &str, x: u64| {
            vec![text(p), text(s), text(d), text(st), Cell::Int(x)]
        };
        assert_eq!(
            table.rows,
            vec![
                row("icmp", "10.0.0.9 id 77", "192.0.2.1", "NEW", 20),
                row(
                    "tcp",
                    "10.0.0.1:1000",
                    "10.0.0.2:80",
                    "ESTABLISHED",
                    5 * 24 * 3600 - 9
                ),
                row("udp", "10.0.0.1:53", "10.0.0.2:80", "NEW", 20),
            ]
        );
        // Expired ones are gone from the table before the sweep removes them.
        assert_eq!(c.table(t(31)).rows.len(), 1);
    }

    #[test]
    fn simultaneous_open_reaches_established() {
        let mut c = ct(2);
        let o = tup(1);
        let idx = c
            .insert(o, o.reverse(1), SYN, 0, t(0), &mut none)
            .expect("insert");
        c.update(idx, Dir::Reply, SYN, t(0));
        assert_eq!(c.entry(idx).tcp, TcpState::SynRecv);
        c.update(idx, Dir::Orig, ACK, t(0));
        assert_eq!(c.entry(idx).tcp, TcpState::Established);
    }

    #[test]
    fn udp_and_icmp_timeouts_follow_a_fake_clock() {
        let mut c = ct(8);
        let mut removed = Vec::new();
        let mut on = |e: &Entry<u8>| removed.push(e.data);
        let u = Tuple {
            proto: PROTO_UDP,
            ..tup(53)
        };
        let i = c.insert(u, u.reverse(1), 0, 7, t(0), &mut on).expect("udp");
        assert_eq!(c.entry(i).expires, t(30), "unreplied udp");
        assert_eq!(c.update(i, Dir::Reply, 0, t(10)), CtState::Established);
        assert_eq!(c.entry(i).expires, t(130), "udp_stream");
        let e = Tuple {
            proto: PROTO_ICMP,
            sport: 9,
            dport: 0,
            ..tup(0)
        };
        let j = c
            .insert(e, e.reverse(1), 0, 8, t(0), &mut on)
            .expect("icmp");
        assert_eq!(c.entry(j).expires, t(30));
        // Still there at its expiry instant, gone just after, through lookup ...
        assert!(c.lookup(&e, t(30), &mut on).is_some());
        assert!(c.lookup(&e, Timestamp(t(30).0 + 1), &mut on).is_none());
        // ... or through the sweep.
        assert_eq!(c.sweep(t(131), &mut on), 1);
        assert!(c.is_empty());
        assert_eq!(removed, vec![8, 7]);
        assert_eq!(c.stats.expired, 2);
        assert!(!c.contains(&u) && !c.contains(&u.reverse(1)));
    }

    #[test]
    fn a_full_table_evicts_half_open_connections_first_and_then_refuses() {
        let mut c = ct(2);
        let a = c
            .insert(tup(1), tup(1).reverse(1), SYN, 1, t(0), &mut none)
            .expect("a");
        let b = c
            .insert(tup(2), tup(2).reverse(1), SYN, 2, t(0), &mut none)
            .expect("b");
        c.update(a, Dir::Reply, SYN | ACK, t(0));
        assert!(c.is_full());
        // b was never answered: it makes room.
        let mut gone = Vec::new();
        let x = c
            .insert(
                tup(3),
                tup(3).reverse(1),
                SYN,
                3,
                t(1),
                &mut |e: &Entry<u8>| gone.push(e.data),
            )
            .expect("evicts b");
        assert_eq!(gone, vec![2]);
        assert_eq!(c.stats.evicted, 1);
        assert!(c.lookup(&tup(2), t(1), &mut none).is_none());
        let _ = b;
        c.update(x, Dir::Reply, SYN | ACK, t(1));
        // Both answered now: a new one is refused, the old ones stay.
        assert_eq!(
            c.insert(tup(4), tup(4).reverse(1), SYN, 4, t(2), &mut none),
            Err(InsertError::Full)
        );
        assert_eq!(c.stats.full, 1);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.insert(tup(1), tup(9), SYN, 0, t(2), &mut none),
            Err(InsertError::Clash)
        );
        // Once expired, their slots are reused.
        let later = t(10 * 24 * 3600);
        assert!(c
            .insert(tup(4), tup(4).reverse(1), SYN, 4, later, &mut none)
            .is_ok());
    }

    #[test]
    fn parse_reads_tuples_flags_and_quoted_headers() {
        let f = tcp("10.0.0.1", 1234, "8.8.8.8", 80, SYN, b"");
        let fl = parse(&f, 0).expect("tcp");
        assert_eq!(
            fl.tuple,
            Tuple {
                src: ipa("10.0.0.1"),
                dst: ipa("8.8.8.8"),
                sport: 1234,
                dport: 80,
                proto: PROTO_TCP,
                zone: 0
            }
        );
        assert_eq!(fl.flags, SYN);
        assert!(may_open(&fl));
        assert!(!may_open(
            &parse(&tcp("10.0.0.1", 1, "8.8.8.8", 2, SYN | ACK, b""), 0).expect("syn-ack")
        ));
        let e = parse(&echo("10.0.0.1", "8.8.8.8", 8, 77), 1).expect("echo");
        assert_eq!(
            (e.tuple.sport, e.tuple.dport, e.icmp, e.tuple.zone),
            (77, 0, IcmpKind::Echo, 1)
        );
        assert!(may_open(&e));
        assert!(!may_open(
            &parse(&echo("10.0.0.1", "8.8.8.8", 0, 77), 1).expect("reply")
        ));
        let u = udp("10.0.0.1", 5, "8.8.8.8", 53, b"q", true);
        let err = parse(&icmp_error("1.1.1.1", "10.0.0.1", 11, 0, 0, &u, 28), 1).expect("error");
        assert_eq!(err.icmp, IcmpKind::Error);
        let (inner, at) = err.inner.expect("quoted");
        assert_eq!(
            (inner.src, inner.sport, inner.dport, at),
            (ipa("10.0.0.1"), 5, 53, 14 + 20 + 8)
        );
        assert!(!may_open(&err));
        // A quote too short for ports has no inner tuple.
        assert!(
            parse(&icmp_error("1.1.1.1", "10.0.0.1", 11, 0, 0, &u, 22), 1)
                .expect("e")
                .inner
                .is_none()
        );
        // Non-IPv4, fragments, runts, bad checksums.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse(&arp, 0).err(), Some(FlowError::NotIpv4));
        let mut frag = u.clone();
        frag[14 + 6..14 + 8].copy_from_slice(&[0x00, 0x10]);
        crate::ip::set_header_checksum(&mut frag[14..34]);
        assert_eq!(parse(&frag, 0).err(), Some(FlowError::Fragment));
        let short = &f[..14 + 20 + 10];
        assert!(parse(short, 0).is_err());
        let mut bad = f.clone();
        bad[14 + 10] ^= 1;
        assert_eq!(
            parse(&bad, 0).err(),
            Some(FlowError::Bad(DropReason::BadChecksum))
        );
    }
}

#[cfg(test)]
mod ipv6_tests {
    use super::*;
    use crate::testframes::*;

    /// The IPv4 key, slot and entry keep their sizes (the IPv4 path reads one 32-byte slot
    /// and compares 16 bytes a probe, as before IPv6); an IPv6 slot is a cache line.
    #[test]
    fn key_and_slot_sizes() {
        use std::mem::size_of;
        assert_eq!(size_of::<Tuple>(), 16);
        assert_eq!(size_of::<Slot<Tuple>>(), 32);
        assert_eq!(size_of::<Entry<(), Tuple>>(), 56, "the firewall's");
        assert_eq!(size_of::<Entry<(), Tuple6>>(), 104);
        assert_eq!(size_of::<Tuple6>(), 38);
        assert_eq!(size_of::<Slot<Tuple6>>(), 64);
    }

    #[test]
    fn parse6_reads_tuples_flags_echo_and_quoted_headers() {
        let (a, b) = ("2001:db8::1", "2001:db8::2");
        let f = parse6(&tcp6(a, 1234, b, 80, SYN, b"xy"), 0).expect("tcp");
        assert_eq!(
            f.tuple,
            Tuple6 {
                src: ip6a(a),
                dst: ip6a(b),
                sport: 1234,
                dport: 80,
                proto: PROTO_TCP,
                zone: 0
            }
        );
        assert_eq!((f.flags, f.seq, f.seg_len), (SYN, 1000, 3));
        assert_eq!((f.l3, f.ihl, f.total), (14, 40, 62));
        assert!(may_open(&f));
        let u = parse6(&udp6(a, 5, b, 53, b"q"), 1).expect("udp");
        assert_eq!((u.tuple.sport, u.tuple.dport, u.tuple.zone), (5, 53, 1));
        // Echo: the identifier as the request's source port, the reply's destination port.
        let req = parse6(&echo6(a, b, 128, 77), 0).expect("request");
        assert_eq!(
            (req.tuple.sport, req.tuple.dport, req.icmp),
            (77, 0, IcmpKind::Echo)
        );
        assert!(may_open(&req));
        let rep = parse6(&echo6(b, a, 129, 77), 1).expect("reply");
        assert_eq!(rep.tuple, req.tuple.reverse(1));
        assert!(!may_open(&rep));
        let ns = parse6(&nd6("fe80::1", "ff02::1:ff00:2", 135, 255), 0).expect("ns");
        assert_eq!((ns.icmp, ns.icmp_type), (IcmpKind::Other, 135));
        // Behind extension headers: hop-by-hop, routing, destination options, a first
        // fragment.
        let mut p = ext6(43, 1);
        p.extend_from_slice(&ext6(60, 0));
        p.extend_from_slice(&ext6(44, 2));
        p.extend_from_slice(&frag6(17, 0, true, 3));
        p.extend_from_slice(&udp6_datagram(a, 7, b, 8, b""));
        let f = parse6(&ipv6(a, b, 0, 64, &p), 0).expect("behind four");
        assert_eq!((f.tuple.proto, f.tuple.sport, f.tuple.dport), (17, 7, 8));
        assert_eq!(f.ihl, 40 + 16 + 8 + 24 + 8);
        // An error quoting a datagram: the quoted tuple, and where it starts.
        let e = parse6(
            &icmp6_error(b, a, 1, 4, 0, &udp6(a, 5, b, 53, b"q"), 1232),
            1,
        )
        .expect("error");
        assert_eq!((e.icmp, e.icmp_type), (IcmpKind::Error, 1));
        assert!(!may_open(&e));
        let (inner, at) = e.inner.expect("quoted");
        assert_eq!(
            (inner.src, inner.sport, inner.dport, at),
            (ip6a(a), 5, 53, 14 + 48)
        );
        assert_eq!(key(&e, 1), Some(inner.reverse(1)));
        // A quote too short for the ports, or of a later fragment: no inner tuple.
        let short = icmp6_error(b, a, 1, 4, 0, &udp6(a, 5, b, 53, b"q"), 43);
        assert!(parse6(&short, 1).expect("e").inner.is_none());
        let mut later = frag6(17, 9, false, 3);
        later.extend_from_slice(&[0; 8]);
        let quoted_later = icmp6_error(b, a, 3, 1, 0, &ipv6(a, b, 44, 64, &later), 1232);
        assert!(parse6(&quoted_later, 1).expect("e").inner.is_none());
        // Not IPv6, later fragments, runts, broken chains.
        assert_eq!(
            parse6(&udp("10.0.0.1", 1, "10.0.0.2", 2, b"", true), 0).err(),
            Some(FlowError::NotIpv6)
        );
        assert_eq!(
            parse(&udp6(a, 1, b, 2, b""), 0).err(),
            Some(FlowError::NotIpv4),
            "IPv4's parse, which NAT uses, leaves IPv6 alone"
        );
        assert_eq!(
            parse6(&ipv6(a, b, 44, 64, &later), 0).err(),
            Some(FlowError::Fragment)
        );
        assert_eq!(
            parse6(&ipv6(a, b, 17, 64, &[0; 3]), 0).err(),
            Some(FlowError::Bad(DropReason::Runt))
        );
        assert_eq!(
            parse6(&ipv6(a, b, 60, 64, &[17, 1, 0, 0]), 0).err(),
            Some(FlowError::Bad(DropReason::BadHeader))
        );
        let u = udp6(a, 5, b, 53, b"q");
        assert_eq!(
            parse6(&u[..50], 0).err(),
            Some(FlowError::Bad(DropReason::Runt))
        );
        assert_eq!(
            parse6(&u[..u.len() - 1], 0).err(),
            Some(FlowError::Bad(DropReason::BadHeader))
        );
    }

    #[test]
    fn an_ipv6_tracker_walks_the_same_states_and_timeouts() {
        let mut c: Conntrack<u8, Tuple6> = Conntrack::new(4, Timeouts::default());
        let t = |s: u64| Timestamp::from_secs(1000 + s);
        let syn = parse6(&tcp6("2001:db8::1", 1, "2001:db8::2", 80, SYN, b""), 0).expect("syn");
        let idx = c
            .insert(syn.tuple, syn.tuple.reverse(1), SYN, 7, t(0), &mut |_| {})
            .expect("insert");
        assert_eq!(c.entry(idx).tcp, TcpState::SynSent);
        let back = syn.tuple.reverse(1);
        assert_eq!(c.lookup(&back, t(1), &mut |_| {}), Some((idx, Dir::Reply)));
        c.update(idx, Dir::Reply, SYN | ACK, t(1));
        c.update(idx, Dir::Orig, ACK, t(1));
        assert_eq!(c.entry(idx).tcp, TcpState::Established);
        let ping = parse6(&echo6("2001:db8::1", "2001:db8::2", 128, 3), 0).expect("echo");
        let j = c
            .insert(ping.tuple, ping.tuple.reverse(1), 0, 8, t(0), &mut |_| {})
            .expect("echo");
        assert_eq!(c.entry(j).expires, t(30), "the icmp timeout for ICMPv6");
        let rows = c.table(t(2)).rows;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], text("[2001:db8::1]:1"));
        assert_eq!(rows[1][1], text("2001:db8::1 id 3"));
        let mut gone = Vec::new();
        assert_eq!(c.sweep(t(31), &mut |e| gone.push(e.data)), 1);
        assert_eq!(gone, vec![8]);
    }

    /// The IPv6 prefetch pass reads what the IPv4 one leaves: counts the packets that are
    /// not of its family, and gives them back as such.
    #[test]
    fn each_family_prefetch_counts_the_others() {
        let mut batch = nfv_dataplane::Batch::new();
        for f in [
            udp("10.0.0.1", 5, "8.8.8.8", 53, b"q", true),
            udp6("2001:db8::1", 5, "2001:db8::2", 53, b"q"),
            udp6("2001:db8::1", 6, "2001:db8::2", 53, b"q"),
        ] {
            assert!(batch
                .push(nfv_dataplane::Packet::from_bytes(&f).expect("fits"))
                .is_ok());
        }
        let ct4: Conntrack<()> = Conntrack::new(16, Timeouts::default());
        let ct6: Conntrack<(), Tuple6> = Conntrack::new(16, Timeouts::default());
        let mut p4 = Prefetched::default();
        let mut p6: Prefetched<Tuple6> = Prefetched::default();
        p4.fill(&mut batch, 0, &ct4);
        p6.fill(&mut batch, 0, &ct6);
        assert_eq!((p4.others(), p6.others()), (2, 1));
        assert!(p4.get(0).0.is_ok() && p6.get(1).0.is_ok() && p6.get(2).0.is_ok());
        assert_eq!(p4.get(1).0.as_ref().err(), Some(&FlowError::NotIpv4));
        assert_eq!(p6.get(0).0.as_ref().err(), Some(&FlowError::NotIpv6));
        p6.clear();
        assert_eq!(p6.get(1).0.as_ref().err(), Some(&FlowError::NotIpv6));
        assert_eq!(p6.others(), 0);
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn the_flow_table_agrees_with_a_hash_map_through_inserts_and_removals() {
        let mut t = FlowTable::new(512);
        let mut m = std::collections::HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct keys, so that runs form and removals shift them.
            let k = Tuple {
                src: (x % 700) as u32,
                dport: (x >> 20) as u16 % 3,
                ..Tuple::default()
            };
            let h = t.hash(&k);
            match (x >> 40) % 3 {
                0 | 1 if !m.contains_key(&k) && m.len() < 512 => {
                    t.insert(k, step);
                    m.insert(k, step);
                }
                _ => {
                    t.remove(&k);
                    m.remove(&k);
                }
            }
            assert_eq!(t.get(&k, h), m.get(&k).copied(), "step {step}");
        }
        for (k, v) in &m {
            assert_eq!(t.get(k, t.hash(k)), Some(*v));
        }
        assert_eq!(t.slots.iter().filter(|s| s.val != 0).count(), m.len());
    }

    /// A firewall then a NAT: the second owner's burst parse reuses the headers the first
    /// left on each packet. Shown by breaking the IPv4 checksum between the two: a fresh
    /// parse refuses the packet, the carried record still reads its flow.
    #[test]
    fn a_second_owner_reuses_the_headers_the_first_found() {
        let f = crate::testframes::udp("10.0.0.1", 5, "8.8.8.8", 53, b"q", true);
        let mut batch = nfv_dataplane::Batch::new();
        assert!(batch
            .push(nfv_dataplane::Packet::from_bytes(&f).expect("fits"))
            .is_ok());
        let ct: Conntrack<()> = Conntrack::new(16, Timeouts::default());
        let mut first = Prefetched::default();
        first.fill(&mut batch, 0, &ct);
        let want = first.get(0).0.as_ref().expect("a flow").tuple;
        for p in batch.iter_mut() {
            assert!(p.meta.offsets.is_parsed(), "the first parse is carried");
            p.data_mut()[14 + 10] ^= 0xff;
            assert_eq!(
                parse(p.data(), 0).err(),
                Some(FlowError::Bad(DropReason::BadChecksum)),
                "a parse from scratch would refuse it"
            );
        }
        let mut second = Prefetched::default();
        second.fill(&mut batch, 0, &ct);
        assert_eq!(second.get(0).0.as_ref().expect("carried").tuple, want);
    }
}
