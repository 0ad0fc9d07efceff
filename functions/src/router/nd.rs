//! The router's IPv6 neighbour cache: Neighbor Discovery's states (RFC 4861 §7.3.2).
//!
//! - **incomplete**: a packet needs the address; a solicitation went to its solicited-node
//!   group and the packets wait in a bounded queue. Solicitations repeat every
//!   [`RETRANS_TIMER`] up to [`MAX_MULTICAST_SOLICIT`] times; then the waiting packets come
//!   back as failed (ICMPv6 address unreachable) and the entry goes.
//! - **reachable**: a solicited advertisement confirmed it; used for [`REACHABLE_TIME`],
//!   then it turns stale.
//! - **stale**: learned without confirmation (an unsolicited advertisement, a solicitation
//!   or router solicitation carrying the sender's link-layer address) or no longer
//!   confirmed. Still used: the first packet sent turns it to delay. A stale entry unused
//!   for the table's `timeout` goes.
//! - **delay**: used while stale; after [`DELAY_FIRST_PROBE_TIME`] without confirmation it
//!   turns to probe.
//! - **probe**: unicast solicitations every [`RETRANS_TIMER`], up to
//!   [`MAX_UNICAST_SOLICIT`]; unanswered, the entry goes.
//! - **static**: configured; never changes.
//!
//! The same bounds as the ARP table hold ([`super::neighbors`]): at most `max_entries`
//! entries, `queue_len` packets per unresolved address and [`MAX_QUEUED`] across all, so a
//! scan of a /64 cannot hold the worker's pool.

use std::collections::HashMap;
use std::time::Duration;

use nfv_dataplane::{Packet, Timestamp};

use super::neighbors::{Enqueued, NeighborConfig, MAX_QUEUED};
use crate::wire::MacAddr;

/// Time between solicitations (RFC 4861 §10 RETRANS_TIMER).
pub const RETRANS_TIMER: Duration = Duration::from_secs(1);
/// Solicitations to the group before an address is given up.
pub const MAX_MULTICAST_SOLICIT: u8 = 3;
/// Unicast probes before a stale neighbour is given up.
pub const MAX_UNICAST_SOLICIT: u8 = 3;
/// How long a confirmation lasts (RFC 4861 REACHABLE_TIME).
pub const REACHABLE_TIME: Duration = Duration::from_secs(30);
/// How long a used stale entry waits for a confirmation before probing.
pub const DELAY_FIRST_PROBE_TIME: Duration = Duration::from_secs(5);

/// An entry's state (see the module documentation).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NdState {
    /// Configured.
    Static,
    /// Being resolved: solicitations sent so far.
    Incomplete(u8),
    /// Confirmed at the given time.
    Reachable(Timestamp),
    /// Not confirmed since the given time.
    Stale(Timestamp),
    /// Used while stale, at the given time.
    Delay(Timestamp),
    /// Being probed: probes sent so far.
    Probe(u8),
}

impl NdState {
    /// Its name as `nfv show neighbors` writes it.
    pub fn name(self) -> &'static str {
        match self {
            NdState::Static => "static",
            NdState::Incomplete(_) => "incomplete",
            NdState::Reachable(_) => "reachable",
            NdState::Stale(_) => "stale",
            NdState::Delay(_) => "delay",
            NdState::Probe(_) => "probe",
        }
    }
}

struct Entry {
    mac: MacAddr,
    state: NdState,
    /// When the last solicitation went out (incomplete, probe).
    sent: Timestamp,
    queue: Vec<(u16, Packet)>,
}

/// An entry as listed by [`NdCache::entries`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Neighbor6 {
    /// The interface (gate).
    pub gate: u16,
    /// The IPv6 address.
    pub ip: u128,
    /// The MAC address (zero while incomplete).
    pub mac: MacAddr,
    /// Its state.
    pub state: NdState,
    /// Packets waiting for it.
    pub queued: usize,
}

/// What an arriving message tells about a neighbour.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A solicitation, router solicitation or advertisement from the neighbour carrying its
    /// link-layer address (RFC 4861 §7.2.3, §6.2.6): it may make a stale entry.
    Sender(MacAddr),
    /// A neighbor advertisement for the address (§7.2.5).
    Advert {
        /// Its target link-layer address, if it carried one.
        mac: Option<MacAddr>,
        /// The solicited flag.
        solicited: bool,
        /// The override flag.
        override_: bool,
    },
}

/// The IPv6 neighbour cache of one router.
pub struct NdCache {
    cfg: NeighborConfig,
    generation: u64,
    map: HashMap<(u16, u128), Entry, ahash::RandomState>,
    queued: usize,
}

impl NdCache {
    /// An empty cache.
    pub fn new(cfg: NeighborConfig) -> Self {
        NdCache {
            cfg,
            generation: 1,
            map: HashMap::with_hasher(ahash::RandomState::new()),
            queued: 0,
        }
    }

    /// The generation: a MAC found in it stays right until it changes.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The MAC address of `ip` on `gate` to send a packet to now, if known; a stale entry
    /// used turns to delay.
    #[inline]
    pub fn lookup(&mut self, gate: u16, ip: u128, now: Timestamp) -> Option<MacAddr> {
        let e = self.map.get_mut(&(gate, ip))?;
        match e.state {
            NdState::Incomplete(_) => None,
            NdState::Stale(_) => {
                e.state = NdState::Delay(now);
                Some(e.mac)
            }
            _ => Some(e.mac),
        }
    }

    /// Add a static entry.
    pub fn add_static(&mut self, gate: u16, ip: u128, mac: MacAddr) {
        self.generation += 1;
        let old = self.map.insert(
            (gate, ip),
            Entry {
                mac,
                state: NdState::Static,
                sent: Timestamp::ZERO,
                queue: Vec::new(),
            },
        );
        if let Some(old) = old {
            self.queued -= old.queue.len();
        }
    }

    /// A message told `what` about `ip` on `gate` (RFC 4861 §7.2.3 to §7.2.5). Packets that
    /// waited for the address go to `flush` with the gate they came in on.
    pub fn learn(
        &mut self,
        gate: u16,
        ip: u128,
        what: Learned,
        now: Timestamp,
        mut flush: impl FnMut(u16, Packet, MacAddr),
    ) {
        let room = self.map.len() < self.cfg.max_entries;
        let Some(e) = self.map.get_mut(&(gate, ip)) else {
            // Only a sender's own address makes a new entry; an advertisement nobody
            // asked for is silently discarded (§7.2.5).
            if let (Learned::Sender(mac), true) = (what, room) {
                self.map.insert(
                    (gate, ip),
                    Entry {
                        mac,
                        state: NdState::Stale(now),
                        sent: Timestamp::ZERO,
                        queue: Vec::new(),
                    },
                );
            }
            return;
        };
        if e.state == NdState::Static {
            return;
        }
        let was = (e.mac, e.state);
        match what {
            Learned::Sender(mac) => {
                if e.mac != mac || matches!(e.state, NdState::Incomplete(_)) {
                    e.mac = mac;
                    e.state = NdState::Stale(now);
                }
            }
            Learned::Advert {
                mac,
                solicited,
                override_,
            } => {
                if let NdState::Incomplete(_) = e.state {
                    let Some(mac) = mac else { return };
                    e.mac = mac;
                    e.state = if solicited {
                        NdState::Reachable(now)
                    } else {
                        NdState::Stale(now)
                    };
                } else {
                    let differs = mac.is_some_and(|m| m != e.mac);
                    if !override_ && differs {
                        // Keep the known address; only a reachable entry loses its
                        // confirmation.
                        if let NdState::Reachable(_) = e.state {
                            e.state = NdState::Stale(now);
                        }
                    } else {
                        if let Some(m) = mac {
                            e.mac = m;
                        }
                        if solicited {
                            e.state = NdState::Reachable(now);
                        } else if differs {
                            e.state = NdState::Stale(now);
                        }
                    }
                }
            }
        }
        let mac = e.mac;
        if !matches!(e.state, NdState::Incomplete(_)) {
            self.queued -= e.queue.len();
            for (g, p) in e.queue.drain(..) {
                flush(g, p, mac);
            }
        }
        // An entry that turned stale must be looked up again (to turn to delay when
        // used), as when it ages out in `expire`.
        let turned_stale =
            matches!(e.state, NdState::Stale(_)) && !matches!(was.1, NdState::Stale(_));
        if was.0 != e.mac || matches!(was.1, NdState::Incomplete(_)) || turned_stale {
            self.generation += 1;
        }
    }

    /// `pkt` (in on `ingress`) needs `ip` on `gate`, unresolved: keep it until it is (the
    /// same bounds as [`super::neighbors::Neighbors::enqueue`]).
    pub fn enqueue(
        &mut self,
        gate: u16,
        ip: u128,
        ingress: u16,
        pkt: Packet,
        now: Timestamp,
    ) -> Enqueued {
        let full = self.queued >= MAX_QUEUED;
        if let Some(e) = self.map.get_mut(&(gate, ip)) {
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
            (gate, ip),
            Entry {
                mac: MacAddr([0; 6]),
                state: NdState::Incomplete(1),
                sent: now,
                queue,
            },
        );
        Enqueued::Waiting { request: true }
    }

    /// Run the timers at `now`: `solicit(gate, ip, to)` sends a solicitation (to the
    /// solicited-node group when `to` is `None`, else to that MAC: a probe); packets of an
    /// address given up go to `failed`.
    pub fn expire(
        &mut self,
        now: Timestamp,
        mut solicit: impl FnMut(u16, u128, Option<MacAddr>),
        mut failed: impl FnMut(u16, Packet),
    ) {
        let gc = self.cfg.timeout;
        let mut changed = false;
        let queued = &mut self.queued;
        self.map.retain(|&(gate, ip), e| match e.state {
            NdState::Static => true,
            NdState::Incomplete(n) => {
                if now.since(e.sent) < RETRANS_TIMER {
                    return true;
                }
                if n >= MAX_MULTICAST_SOLICIT {
                    *queued -= e.queue.len();
                    for (g, p) in e.queue.drain(..) {
                        failed(g, p);
                    }
                    return false;
                }
                e.state = NdState::Incomplete(n + 1);
                e.sent = now;
                solicit(gate, ip, None);
                true
            }
            NdState::Reachable(at) => {
                if now.since(at) >= REACHABLE_TIME {
                    // Users must look it up again, to turn it to delay.
                    e.state = NdState::Stale(now);
                    changed = true;
                }
                true
            }
            NdState::Stale(at) => {
                let keep = now.since(at) < gc;
                changed |= !keep;
                keep
            }
            NdState::Delay(at) => {
                if now.since(at) >= DELAY_FIRST_PROBE_TIME {
                    e.state = NdState::Probe(1);
                    e.sent = now;
                    solicit(gate, ip, Some(e.mac));
                }
                true
            }
            NdState::Probe(n) => {
                if now.since(e.sent) < RETRANS_TIMER {
                    return true;
                }
                if n >= MAX_UNICAST_SOLICIT {
                    changed = true;
                    return false;
                }
                e.state = NdState::Probe(n + 1);
                e.sent = now;
                solicit(gate, ip, Some(e.mac));
                true
            }
        });
        if changed {
            self.generation += 1;
        }
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = Neighbor6> + '_ {
        self.map.iter().map(|(&(gate, ip), e)| Neighbor6 {
            gate,
            ip,
            mac: e.mac,
            state: e.state,
            queued: e.queue.len(),
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Hand every waiting packet to `f`.
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

    const M1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const M2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn t(ms: u64) -> Timestamp {
        Timestamp::ZERO.plus(Duration::from_millis(ms))
    }

    fn pkt() -> Packet {
        Packet::from_bytes(&[0u8; 60]).unwrap_or_else(|| panic!("a packet"))
    }

    fn state(c: &NdCache, ip: u128) -> Option<NdState> {
        c.entries().find(|e| e.ip == ip).map(|e| e.state)
    }

    fn advert(mac: Option<MacAddr>, solicited: bool, override_: bool) -> Learned {
        Learned::Advert {
            mac,
            solicited,
            override_,
        }
    }

    #[test]
    fn resolution_queues_then_a_solicited_advert_makes_it_reachable() {
        let mut c = NdCache::new(NeighborConfig::default());
        assert!(matches!(
            c.enqueue(0, 9, 1, pkt(), t(0)),
            Enqueued::Waiting { request: true }
        ));
        assert!(matches!(
            c.enqueue(0, 9, 1, pkt(), t(1)),
            Enqueued::Waiting { request: false }
        ));
        assert_eq!(c.lookup(0, 9, t(2)), None);
        // An advertisement without a link-layer address cannot complete it.
        c.learn(0, 9, advert(None, true, true), t(3), |_, _, _| {
            panic!("no flush")
        });
        let mut flushed = Vec::new();
        let g = c.generation();
        c.learn(0, 9, advert(Some(M1), true, false), t(4), |g, _, m| {
            flushed.push((g, m))
        });
        assert_eq!(flushed, [(1, M1), (1, M1)]);
        assert!(c.generation() > g);
        assert_eq!(state(&c, 9), Some(NdState::Reachable(t(4))));
        assert_eq!(c.lookup(0, 9, t(5)), Some(M1));
    }

    #[test]
    fn reachable_turns_stale_then_delay_on_use_then_probes_and_goes() {
        let mut c = NdCache::new(NeighborConfig::default());
        c.enqueue(0, 9, 1, pkt(), t(0));
        c.learn(0, 9, advert(Some(M1), true, false), t(0), |_, _, _| {});
        let mut sent = Vec::new();
        c.expire(t(29_000), |g, ip, to| sent.push((g, ip, to)), |_, _| {});
        assert_eq!(state(&c, 9), Some(NdState::Reachable(t(0))));
        let g = c.generation();
        c.expire(t(30_000), |g, ip, to| sent.push((g, ip, to)), |_, _| {});
        assert_eq!(state(&c, 9), Some(NdState::Stale(t(30_000))));
        assert!(c.generation() > g, "users must look it up again");
        assert_eq!(c.lookup(0, 9, t(31_000)), Some(M1), "stale is still used");
        assert_eq!(state(&c, 9), Some(NdState::Delay(t(31_000))));
        c.expire(t(35_999), |g, ip, to| sent.push((g, ip, to)), |_, _| {});
        assert!(sent.is_empty());
        c.expire(t(36_000), |g, ip, to| sent.push((g, ip, to)), |_, _| {});
        assert_eq!(sent, [(0, 9, Some(M1))], "a unicast probe");
        assert_eq!(state(&c, 9), Some(NdState::Probe(1)));
        // A solicited advertisement confirms it.
        c.learn(0, 9, advert(Some(M1), true, false), t(36_100), |_, _, _| {});
        assert_eq!(state(&c, 9), Some(NdState::Reachable(t(36_100))));
        // Stale, used, probed three times unanswered: gone.
        c.expire(t(66_100), |_, _, _| {}, |_, _| {});
        c.lookup(0, 9, t(66_100));
        for s in [71_100, 72_100, 73_100, 74_100] {
            c.expire(t(s), |_, _, _| {}, |_, _| {});
        }
        assert_eq!(state(&c, 9), None);
    }

    #[test]
    fn unanswered_resolution_fails_its_packets() {
        let mut c = NdCache::new(NeighborConfig::default());
        c.enqueue(0, 9, 3, pkt(), t(0));
        let (mut sent, mut failed) = (0, Vec::new());
        for s in 1..=3 {
            c.expire(
                t(s * 1000),
                |_, _, to| {
                    assert_eq!(to, None);
                    sent += 1
                },
                |g, _| failed.push(g),
            );
        }
        assert_eq!((sent, failed.as_slice()), (2, &[3u16][..]));
        assert!(c.is_empty());
    }

    #[test]
    fn senders_make_stale_entries_and_adverts_follow_the_override_rules() {
        let mut c = NdCache::new(NeighborConfig::default());
        c.learn(0, 5, advert(Some(M1), false, true), t(0), |_, _, _| {});
        assert!(c.is_empty(), "an unasked advertisement makes nothing");
        c.learn(0, 5, Learned::Sender(M1), t(0), |_, _, _| {});
        assert_eq!(state(&c, 5), Some(NdState::Stale(t(0))));
        c.learn(0, 5, advert(Some(M1), true, false), t(1), |_, _, _| {});
        assert_eq!(state(&c, 5), Some(NdState::Reachable(t(1))));
        // Without override, another address only takes the confirmation away.
        c.learn(0, 5, advert(Some(M2), false, false), t(2), |_, _, _| {});
        assert_eq!(
            c.entries().next().map(|e| (e.mac, e.state)),
            Some((M1, NdState::Stale(t(2))))
        );
        // With override it moves.
        let g = c.generation();
        c.learn(0, 5, advert(Some(M2), false, true), t(3), |_, _, _| {});
        assert_eq!(c.lookup(0, 5, t(3)), Some(M2));
        assert!(c.generation() > g);
        // Static entries never change.
        c.add_static(1, 6, M1);
        c.learn(1, 6, Learned::Sender(M2), t(4), |_, _, _| {});
        assert_eq!(c.lookup(1, 6, t(4)), Some(M1));
        // A stale entry unused for the timeout goes.
        c.learn(0, 5, Learned::Sender(M1), t(5), |_, _, _| {});
        c.expire(t(5 + 300_000), |_, _, _| {}, |_, _| {});
        assert_eq!(state(&c, 5), None);
        assert_eq!(state(&c, 6), Some(NdState::Static));
    }

    #[test]
    fn queues_and_the_table_are_bounded() {
        let mut c = NdCache::new(NeighborConfig {
            queue_len: 2,
            max_entries: 4,
            ..NeighborConfig::default()
        });
        c.enqueue(0, 1, 0, pkt(), t(0));
        c.enqueue(0, 1, 0, pkt(), t(0));
        assert!(matches!(
            c.enqueue(0, 1, 0, pkt(), t(0)),
            Enqueued::QueueFull(_)
        ));
        for ip in 2..=4 {
            c.enqueue(0, ip, 0, pkt(), t(0));
        }
        assert!(matches!(
            c.enqueue(0, 5, 0, pkt(), t(0)),
            Enqueued::TableFull(_)
        ));
        let mut n = 0;
        c.drain_queued(|_| n += 1);
        assert_eq!(n, 5);
    }
}
