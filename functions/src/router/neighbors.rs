//! The router's neighbour table: IPv4 address → MAC address per interface, learned with ARP.
//!
//! An entry is one of:
//! - **static**, given in the configuration: never ages, never replaced by ARP;
//! - **reachable**, learned from an ARP reply or request: used until `timeout` after it was
//!   last confirmed, then removed (the next packet resolves it again);
//! - **incomplete**: a packet needed it, an ARP request went out and the packets wait in a
//!   bounded queue (`queue_len` per entry). The request is repeated every
//!   [`RETRY_INTERVAL`] up to [`REQUESTS`] times; then the waiting packets are handed back as
//!   failed (the router drops them as `arp_failed` and answers with ICMP host unreachable)
//!   and the entry goes.
//!
//! The table holds at most `max_entries` entries, so a scan of a large connected subnet
//! cannot grow it without bound; a packet that would need a new entry in a full table is
//! refused. The packets waiting across all entries are capped too ([`MAX_QUEUED`]), so a
//! scan cannot hold more than that many of the worker's pool buffers: beyond it a packet is
//! refused (and makes no new entry). Queues are allocated once per incomplete entry (the slow path), never per
//! packet, and kept for reuse while the entry lives.

use std::collections::HashMap;
use std::time::Duration;

use nfv_dataplane::{Packet, Timestamp};

use crate::wire::MacAddr;

/// How many ARP requests go out for an unresolved address before it is given up.
pub const REQUESTS: u8 = 3;
/// Time between those requests.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Most packets waiting for resolution across all entries of one table (see
/// [`NeighborConfig`]).
pub const MAX_QUEUED: usize = 256;
/// ARP requests (first ones and retries) a router sends per second, and its burst (see
/// [`NeighborConfig`]).
pub const REQUEST_RATE: u32 = 100;

/// Settings of a neighbour table.
///
/// Two limits are fixed rather than configured, so that a scan of a large connected subnet
/// cannot drain the worker's pool or flood the link whatever the settings:
/// - at most [`MAX_QUEUED`] (256) packets wait across all unresolved addresses of a table,
///   whatever `queue_len` and `max_entries` allow; more are refused (`arp_queue_full`);
/// - the router sends at most [`REQUEST_RATE`] (100) ARP requests a second, in bursts of as
///   many; a request over the rate is not sent, the entry stays incomplete and its retry
///   timer asks again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborConfig {
    /// How long a learned entry is used after it was last confirmed.
    pub timeout: Duration,
    /// Packets that may wait for one unresolved address.
    pub queue_len: usize,
    /// Most entries (all states together).
    pub max_entries: usize,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            timeout: Duration::from_secs(300),
            queue_len: 16,
            max_entries: 16384,
        }
    }
}

/// The state of an entry, for display.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NeighborState {
    /// Configured.
    Static,
    /// Learned, confirmed at the given time.
    Reachable(Timestamp),
    /// Being resolved: requests sent so far.
    Incomplete(u8),
}

struct Entry {
    mac: MacAddr,
    state: NeighborState,
    /// When the last request went out (incomplete entries).
    requested: Timestamp,
    /// Packets waiting, with the gate each came in on.
    queue: Vec<(u16, Packet)>,
}

/// What happened to a packet handed to [`Neighbors::enqueue`].
#[derive(Debug)]
pub enum Enqueued {
    /// It waits; send an ARP request for the address now if `request` is true.
    Waiting {
        /// True when this packet created the entry: the first request is due.
        request: bool,
    },
    /// The address's queue is full: the packet comes back to be dropped.
    QueueFull(Packet),
    /// The table is full: the packet comes back to be dropped.
    TableFull(Packet),
}

/// An entry as listed by [`Neighbors::entries`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// The interface (gate).
    pub gate: u16,
    /// The IPv4 address.
    pub ip: u32,
    /// The MAC address (zero while incomplete).
    pub mac: MacAddr,
    /// Its state.
    pub state: NeighborState,
    /// Packets waiting for it.
    pub queued: usize,
}

/// The neighbour table of one router.
pub struct Neighbors {
    cfg: NeighborConfig,
    /// Bumped whenever a resolved address changes or goes, so that callers may cache
    /// lookups and know when the cache is stale.
    generation: u64,
    map: HashMap<u64, Entry, ahash::RandomState>,
    /// Packets waiting across all entries (at most [`MAX_QUEUED`]).
    queued: usize,
}

#[inline]
fn key(gate: u16, ip: u32) -> u64 {
    (u64::from(gate) << 32) | u64::from(ip)
}

impl Neighbors {
    /// An empty table.
    pub fn new(cfg: NeighborConfig) -> Self {
        Neighbors {
            cfg,
            generation: 1,
            map: HashMap::with_hasher(ahash::RandomState::new()),
            queued: 0,
        }
    }

    /// The MAC address of `ip` on `gate`, if resolved.
    #[inline]
    pub fn lookup(&self, gate: u16, ip: u32) -> Option<MacAddr> {
        match self.map.get(&key(gate, ip)) {
            Some(e) if !matches!(e.state, NeighborState::Incomplete(_)) => Some(e.mac),
            _ => None,
        }
    }

    /// The current generation: a lookup made in this generation stays right until it
    /// changes.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Add a static entry (replacing whatever was there).
    pub fn add_static(&mut self, gate: u16, ip: u32, mac: MacAddr) {
        self.generation += 1;
        let old = self.map.insert(
            key(gate, ip),
            Entry {
                mac,
                state: NeighborState::Static,
                requested: Timestamp::ZERO,
                queue: Vec::new(),
            },
        );
        if let Some(old) = old {
            self.queued -= old.queue.len();
        }
    }

    /// ARP told us that `ip` on `gate` is at `mac`. An existing entry is updated (static
    /// ones excepted); a new one is made only if `create` (the ARP packet was addressed to
    /// us, as RFC 826 asks). Packets that waited for the address are passed to `flush`
    /// with the gate they came in on.
    pub fn learn(
        &mut self,
        gate: u16,
        ip: u32,
        mac: MacAddr,
        now: Timestamp,
        create: bool,
        mut flush: impl FnMut(u16, Packet),
    ) {
        let k = key(gate, ip);
        let room = self.map.len() < self.cfg.max_entries;
        match self.map.get_mut(&k) {
            Some(e) => {
                if e.state == NeighborState::Static {
                    return;
                }
                if e.mac != mac || matches!(e.state, NeighborState::Incomplete(_)) {
                    self.generation += 1;
                }
                e.mac = mac;
                e.state = NeighborState::Reachable(now);
                self.queued -= e.queue.len();
                for (g, p) in e.queue.drain(..) {
                    flush(g, p);
                }
            }
            None if create && room => {
                self.map.insert(
                    k,
                    Entry {
                        mac,
                        state: NeighborState::Reachable(now),
                        requested: Timestamp::ZERO,
                        queue: Vec::new(),
                    },
                );
            }
            None => {}
        }
    }

    /// `pkt` (which came in on `ingress`) needs `ip` on `gate`, which is not resolved: keep
    /// it until it is. With [`MAX_QUEUED`] packets waiting already it is refused
    /// (`QueueFull`), and no entry is made for it.
    pub fn enqueue(
        &mut self,
        gate: u16,
        ip: u32,
        ingress: u16,
        pkt: Packet,
        now: Timestamp,
    ) -> Enqueued {
        let k = key(gate, ip);
        let full = self.queued >= MAX_QUEUED;
        if let Some(e) = self.map.get_mut(&k) {
            if full || e.queue.len() >= self.cfg.queue_len {
                return Enqueued::QueueFull(pkt);
            }
            e.queue.push((ingress, pkt));
            self.queued += 1;
            return Enqueued::Waiting { request: false };
        }
        if full {
            return Enqueued::QueueFull(pkt);
        }
        if self.map.len() >= self.cfg.max_entries || self.cfg.queue_len == 0 {
            return Enqueued::TableFull(pkt);
        }
        let mut queue = Vec::with_capacity(self.cfg.queue_len);
        queue.push((ingress, pkt));
        self.queued += 1;
        self.map.insert(
            k,
            Entry {
                mac: MacAddr([0; 6]),
                state: NeighborState::Incomplete(1),
                requested: now,
                queue,
            },
        );
        Enqueued::Waiting { request: true }
    }

    /// Run timers at `now`: learned entries past their timeout go; incomplete ones get
    /// another request through `request(gate, ip)`, or after the last one give their
    /// packets to `failed(ingress, pkt)` and go.
    pub fn expire(
        &mut self,
        now: Timestamp,
        mut request: impl FnMut(u16, u32),
        mut failed: impl FnMut(u16, Packet),
    ) {
        let timeout = self.cfg.timeout;
        let before = self.map.len();
        let queued = &mut self.queued;
        self.map.retain(|&k, e| match e.state {
            NeighborState::Static => true,
            NeighborState::Reachable(at) => now.since(at) < timeout,
            NeighborState::Incomplete(sent) => {
                if now.since(e.requested) < RETRY_INTERVAL {
                    return true;
                }
                if sent >= REQUESTS {
                    *queued -= e.queue.len();
                    for (g, p) in e.queue.drain(..) {
                        failed(g, p);
                    }
                    return false;
                }
                e.state = NeighborState::Incomplete(sent + 1);
                e.requested = now;
                request((k >> 32) as u16, k as u32);
                true
            }
        });
        if self.map.len() != before {
            self.generation += 1;
        }
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = Neighbor> + '_ {
        self.map.iter().map(|(&k, e)| Neighbor {
            gate: (k >> 32) as u16,
            ip: k as u32,
            mac: e.mac,
            state: e.state,
            queued: e.queue.len(),
        })
    }

    /// How long a learned entry is used after it was last confirmed.
    pub fn timeout(&self) -> Duration {
        self.cfg.timeout
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Packets waiting across all entries.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Hand every waiting packet to `f` (when the router goes away).
    pub fn drain_queued(&mut self, mut f: impl FnMut(Packet)) {
        self.queued = 0;
        for e in self.map.values_mut() {
            for (_, p) in e.queue.drain(..) {
                f(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_dataplane::Pool;

    fn t(ms: u64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    fn table(queue_len: usize, max_entries: usize) -> Neighbors {
        Neighbors::new(NeighborConfig {
            timeout: Duration::from_secs(60),
            queue_len,
            max_entries,
        })
    }

    fn pkt(pool: &mut Pool, tag: u8) -> Packet {
        let mut p = pool.alloc().expect("pool");
        assert!(p.set_frame(&[tag; 60]));
        p
    }

    #[test]
    fn queue_is_bounded_and_flushed_in_order_on_resolution() {
        let mut pool = Pool::new(16);
        let mut n = table(3, 10);
        let r = n.enqueue(1, 7, 0, pkt(&mut pool, 1), t(0));
        assert!(matches!(r, Enqueued::Waiting { request: true }));
        assert!(matches!(
            n.enqueue(1, 7, 0, pkt(&mut pool, 2), t(1)),
            Enqueued::Waiting { request: false }
        ));
        assert!(matches!(
            n.enqueue(1, 7, 2, pkt(&mut pool, 3), t(1)),
            Enqueued::Waiting { request: false }
        ));
        match n.enqueue(1, 7, 0, pkt(&mut pool, 4), t(2)) {
            Enqueued::QueueFull(p) => pool.free(p),
            other => panic!("expected QueueFull, got {other:?}"),
        }
        assert_eq!(n.lookup(1, 7), None);
        let mut out = Vec::new();
        n.learn(1, 7, MacAddr([2, 0, 0, 0, 0, 7]), t(5), false, |g, p| {
            out.push((g, p.data()[0]));
            pool.free(p);
        });
        assert_eq!(out, vec![(0, 1), (0, 2), (2, 3)]);
        assert_eq!(n.lookup(1, 7), Some(MacAddr([2, 0, 0, 0, 0, 7])));
        // Another gate is another entry.
        assert_eq!(n.lookup(2, 7), None);
        assert_eq!(pool.available(), 16);
    }

    #[test]
    fn unresolved_entry_retries_then_fails_its_packets() {
        let mut pool = Pool::new(8);
        let mut n = table(4, 10);
        let _ = n.enqueue(0, 9, 1, pkt(&mut pool, 1), t(0));
        let _ = n.enqueue(0, 9, 1, pkt(&mut pool, 2), t(10));
        let mut requests = Vec::new();
        let mut failed = Vec::new();
        let mut run = |n: &mut Neighbors, now, pool: &mut Pool| {
            n.expire(
                now,
                |g, ip| requests.push((g, ip, now)),
                |g, p| {
                    failed.push((g, p.data()[0]));
                    pool.free(p);
                },
            )
        };
        run(&mut n, t(500), &mut pool); // too early for a retry
        run(&mut n, t(1000), &mut pool); // second request
        run(&mut n, t(2000), &mut pool); // third
        run(&mut n, t(2500), &mut pool);
        assert_eq!(n.len(), 1);
        run(&mut n, t(3000), &mut pool); // given up
        assert_eq!(requests, vec![(0, 9, t(1000)), (0, 9, t(2000))]);
        assert_eq!(failed, vec![(1, 1), (1, 2)]);
        assert!(n.is_empty());
        assert_eq!(pool.available(), 8);
    }

    #[test]
    fn learned_entries_age_out_and_static_ones_stay() {
        let mut n = table(4, 10);
        n.learn(0, 1, MacAddr([2, 0, 0, 0, 0, 1]), t(0), true, |_, _| {});
        n.learn(0, 2, MacAddr([2, 0, 0, 0, 0, 2]), t(0), false, |_, _| {});
        n.add_static(0, 3, MacAddr([2, 0, 0, 0, 0, 3]));
        assert_eq!(n.lookup(0, 1), Some(MacAddr([2, 0, 0, 0, 0, 1])));
        assert_eq!(n.lookup(0, 2), None, "not created when not addressed to us");
        // Confirmation at 30 s keeps it to 90 s.
        n.learn(
            0,
            1,
            MacAddr([2, 0, 0, 0, 0, 1]),
            t(30_000),
            false,
            |_, _| {},
        );
        n.learn(
            0,
            3,
            MacAddr([2, 0, 0, 0, 0, 9]),
            t(30_000),
            true,
            |_, _| {},
        );
        n.expire(t(89_999), |_, _| {}, |_, _| {});
        assert!(n.lookup(0, 1).is_some());
        n.expire(t(90_000), |_, _| {}, |_, _| {});
        assert_eq!(n.lookup(0, 1), None);
        assert_eq!(
            n.lookup(0, 3),
            Some(MacAddr([2, 0, 0, 0, 0, 3])),
            "static: kept, not replaced"
        );
    }

    #[test]
    fn a_full_table_refuses_new_addresses() {
        let mut pool = Pool::new(4);
        let mut n = table(4, 2);
        n.learn(0, 1, MacAddr([2; 6]), t(0), true, |_, _| {});
        let _ = n.enqueue(0, 2, 0, pkt(&mut pool, 1), t(0));
        match n.enqueue(0, 3, 0, pkt(&mut pool, 2), t(0)) {
            Enqueued::TableFull(p) => pool.free(p),
            other => panic!("expected TableFull, got {other:?}"),
        }
        n.learn(0, 4, MacAddr([4; 6]), t(0), true, |_, _| {});
        assert_eq!(n.lookup(0, 4), None);
        let mut freed = 0;
        n.drain_queued(|p| {
            freed += 1;
            pool.free(p)
        });
        assert_eq!(freed, 1);
        assert_eq!(pool.available(), 4);
    }
}
