//! A learning Ethernet switch with MAC ageing and 802.1Q VLANs.
//!
//! Each gate of the node is one attachment (a switch port). An attachment is either
//! - **access**: untagged frames, all in one VLAN; a tagged frame arriving is dropped
//!   (`vlan_denied`), except a priority tag (VLAN 0), which is taken as untagged; or
//! - **trunk**: 802.1Q-tagged frames of the allowed VLANs; untagged frames belong to the
//!   native VLAN if one is set and are dropped otherwise.
//!
//! For each frame the switch finds its VLAN, learns (VLAN, source MAC) -> attachment, and
//! looks up (VLAN, destination MAC): a known unicast destination gets the frame, unless it
//! is the attachment the frame came in on (`hairpin` drop); broadcast, multicast and unknown
//! unicast are flooded to every other attachment in the VLAN. Within a burst, the last
//! destination found is remembered, so a run of frames to one address (a gateway, a
//! server) looks it up in the table once. Frames leave trunks tagged (untagged in the
//! native VLAN) and access attachments untagged; tags are stripped and pushed in place, in
//! the buffer's headroom.
//!
//! The MAC table is bounded: when it is full, new addresses are not learned (counted as
//! `table_full`) and frames to them are flooded. Entries older than the ageing time are
//! ignored at lookup and swept by the timer. Its hash is keyed at random per table, so a
//! guest cannot choose addresses that collide.
//!
//! Table `macs` ([`Node::show`]): one row per live entry, sorted by VLAN and address, with
//! columns `mac`, `vlan`, `gate` (the attachment it was learned on) and `age_s` (seconds
//! since the address was last seen). The switch has no static entries.

mod config;
mod metrics;

pub use config::{fmt_vlan, SwitchKind, SwitchSpec};

use std::sync::Arc;
use std::time::Duration;

use nfv_dataplane::{Batch, Counter, Ctx, DropReason, Gate, Node, Packet, Table, Timestamp};

use crate::mactable::MacTable;
use crate::show;
use crate::wire::{
    ethernet_macs, insert_vlan_in_place, is_multicast_u64, strip_vlan_in_place, MacAddr,
    VLAN_TAG_LEN,
};

/// How many frames ahead of the one being switched a big table's slots are prefetched.
const WARM_AHEAD: usize = 16;

/// VLAN ids are 12 bits; 0 and 4095 are reserved.
const VLAN_IDS: usize = 4096;

/// How an attachment carries VLANs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged frames, in this VLAN.
    Access(u16),
    /// Tagged frames of the `allowed` VLANs; untagged frames in `native`, if set.
    Trunk {
        /// VLANs carried tagged.
        allowed: Vec<u16>,
        /// VLAN of untagged frames.
        native: Option<u16>,
    },
}

impl VlanMode {
    /// The VLAN an arriving frame belongs to, given its tag (`None` = untagged, `Some(0)` =
    /// priority-tagged), or `None` if this attachment does not take it.
    fn ingress(&self, tag: Option<u16>) -> Option<u16> {
        match (self, tag) {
            (VlanMode::Access(v), None | Some(0)) => Some(*v),
            (VlanMode::Access(_), Some(_)) => None,
            (VlanMode::Trunk { native, .. }, None | Some(0)) => *native,
            (VlanMode::Trunk { allowed, .. }, Some(v)) => allowed.contains(&v).then_some(v),
        }
    }

    /// Is `vlan` carried here, and tagged?
    fn egress(&self, vlan: u16) -> Option<bool> {
        match self {
            VlanMode::Access(v) => (*v == vlan).then_some(false),
            VlanMode::Trunk { allowed, native } => {
                if *native == Some(vlan) {
                    Some(false)
                } else {
                    allowed.contains(&vlan).then_some(true)
                }
            }
        }
    }
}

/// A switch's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// Most MAC table entries.
    pub mac_table_size: usize,
    /// How long an entry lives after the address was last seen.
    pub ageing: Duration,
    /// One entry per gate: how that attachment carries VLANs.
    pub attachments: Vec<VlanMode>,
}

/// What a switch counts beyond drops. Written by its worker, readable anywhere.
#[derive(Debug, Default)]
pub struct SwitchStats {
    /// Addresses learned (new entries).
    pub learned: Counter,
    /// Addresses seen again on another attachment (entry moved).
    pub moved: Counter,
    /// Entries removed by ageing.
    pub aged: Counter,
    /// Addresses not learned because the table was full.
    pub table_full: Counter,
    /// Frames flooded (once per frame, not per copy).
    pub flooded: Counter,
    /// Entries in the table now (gauge).
    pub entries: Counter,
}

#[inline]
fn ms(t: Timestamp) -> u32 {
    (t.0 / 1_000_000) as u32
}

/// True if an entry last seen at `last_seen_ms` has not aged by `now_ms` (both in the
/// wrapping milliseconds of [`ms`]).
#[inline]
fn fresh(last_seen_ms: u32, now_ms: u32, ageing_ms: u32) -> bool {
    now_ms.wrapping_sub(last_seen_ms) < ageing_ms
}

/// A learning switch; see the module documentation.
pub struct Switch {
    /// The configuration it runs (for [`Node::reconfigure`]).
    config: SwitchConfig,
    attachments: Vec<VlanMode>,
    /// For each VLAN id, the gates that carry it.
    members: Vec<Vec<u16>>,
    table: MacTable,
    ageing_ns: u64,
    ageing_ms: u32,
    /// How stale an entry's `last_seen_ms` may get before a frame from it rewrites it:
    /// an eighth of the ageing time, at most a second (entries age that much late at worst).
    refresh_ms: u32,
    last_sweep: Timestamp,
    /// The slot the sweep goes on from.
    sweep_at: usize,
    stats: Arc<SwitchStats>,
    /// One batch per attachment: a burst's frames are gathered here by the gate they leave
    /// on, and each gate's batch goes out whole at the end of the burst.
    out: Vec<Batch>,
    /// The last destination a lookup found in the burst being switched, as (key, gate), or
    /// key 0: a run of frames to one address (a gateway, a server) looks it up once a burst.
    /// Emptied at the start of every burst, and changed when that address moves.
    last_dst: (u64, u16),
}

/// Put `pkt` (untagged inside the switch) on `gate`'s batch in `out`, tagged with `vlan` if
/// the gate's attachment carries that VLAN tagged; drop it if the gate does not carry it.
#[inline(always)]
fn send(
    attachments: &[VlanMode],
    out: &mut [Batch],
    ctx: &mut Ctx<'_>,
    gate: u16,
    vlan: u16,
    mut pkt: Packet,
) {
    let (Some(a), Some(batch)) = (attachments.get(gate as usize), out.get_mut(gate as usize))
    else {
        return ctx.drop(pkt, DropReason::Unwired);
    };
    match a.egress(vlan) {
        Some(false) => {}
        Some(true) => match pkt.push_front(VLAN_TAG_LEN) {
            Some(frame) => insert_vlan_in_place(frame, vlan),
            None => return ctx.drop(pkt, DropReason::NoBuffers),
        },
        None => return ctx.drop(pkt, DropReason::VlanDenied),
    }
    // A burst brings at most BURST frames and each leaves on a gate at most once, so the
    // gate's batch has room; were it full, the frame would be dropped, not lost.
    if let Err(pkt) = batch.push(pkt) {
        ctx.drop(pkt, DropReason::QueueFull);
    }
}

#[inline]
fn key(vlan: u16, mac: u64) -> u64 {
    ((vlan as u64) << 48) | mac
}

/// For each VLAN id, the gates among `attachments` that carry it.
fn vlan_members(attachments: &[VlanMode]) -> Vec<Vec<u16>> {
    let mut members = vec![Vec::new(); VLAN_IDS];
    for (g, a) in attachments.iter().enumerate() {
        for (vlan, m) in members.iter_mut().enumerate().skip(1) {
            if a.egress(vlan as u16).is_some() {
                m.push(g as u16);
            }
        }
    }
    members
}

impl SwitchConfig {
    /// True if a switch running `old` can take `self` in place, keeping its MAC table:
    /// the same table size and ageing, and `old`'s attachments followed by new ones (so
    /// every learned gate means what it meant).
    pub fn grows_from(&self, old: &SwitchConfig) -> bool {
        self.mac_table_size == old.mac_table_size
            && self.ageing == old.ageing
            && self.attachments.len() >= old.attachments.len()
            && self.attachments[..old.attachments.len()] == old.attachments[..]
    }
}

impl Switch {
    /// A switch with `config.attachments.len()` gates.
    pub fn new(config: SwitchConfig) -> Self {
        let members = vlan_members(&config.attachments);
        let out = (0..config.attachments.len())
            .map(|_| Batch::new())
            .collect();
        let capacity = config.mac_table_size.max(1);
        let ageing_ms = u32::try_from(config.ageing.as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        Switch {
            config: config.clone(),
            attachments: config.attachments,
            members,
            table: MacTable::new(capacity),
            ageing_ns: u64::try_from(config.ageing.as_nanos()).unwrap_or(u64::MAX),
            ageing_ms,
            refresh_ms: (ageing_ms / 8).min(1000),
            last_sweep: Timestamp::ZERO,
            sweep_at: 0,
            stats: Arc::new(SwitchStats::default()),
            out,
            last_dst: (0, 0),
        }
    }

    /// The switch's counters.
    pub fn stats(&self) -> Arc<SwitchStats> {
        self.stats.clone()
    }

    /// Live entries: (VLAN, MAC, gate).
    pub fn entries(&self, now: Timestamp) -> Vec<(u16, MacAddr, Gate)> {
        let now_ms = ms(now);
        let mut v: Vec<_> = self
            .table
            .iter()
            .filter(|e| self.fresh(e.last_seen_ms, now_ms))
            .map(|e| ((e.key >> 48) as u16, MacAddr::from_u64(e.key), Gate(e.gate)))
            .collect();
        v.sort_unstable();
        v
    }

    #[inline]
    fn fresh(&self, last_seen_ms: u32, now_ms: u32) -> bool {
        fresh(last_seen_ms, now_ms, self.ageing_ms)
    }

    #[inline]
    fn learn(&mut self, vlan: u16, mac: u64, gate: u16, now_ms: u32) {
        let k = key(vlan, mac);
        if let Some(e) = self.table.get_mut(k) {
            if e.gate != gate {
                e.gate = gate;
                e.last_seen_ms = now_ms;
                self.stats.moved.add(1);
                if self.last_dst.0 == k {
                    self.last_dst.1 = gate;
                }
            } else if now_ms.wrapping_sub(e.last_seen_ms) >= self.refresh_ms {
                // Written only now and then: a busy address does not dirty its cache line
                // with every frame.
                e.last_seen_ms = now_ms;
            }
            return;
        }
        if !self.table.insert(k, gate, now_ms) {
            self.stats.table_full.add(1);
            return;
        }
        self.stats.learned.add(1);
        self.stats.entries.set(self.table.len() as u64);
    }

    /// The gate `mac` in `vlan` was learned on, if it is live: the burst's last destination
    /// without looking at the table.
    #[inline]
    fn lookup(&mut self, vlan: u16, mac: u64, now_ms: u32) -> Option<u16> {
        let k = key(vlan, mac);
        if k == self.last_dst.0 {
            return Some(self.last_dst.1);
        }
        let gate = self
            .table
            .get(k)
            .filter(|e| self.fresh(e.last_seen_ms, now_ms))
            .map(|e| e.gate)?;
        self.last_dst = (k, gate);
        Some(gate)
    }

    /// Remove entries older than the ageing time, in steps: each call looks at the share of
    /// the table that the time since the last call is of the sweep period (an eighth of the
    /// ageing time, between 1 ms and 1 s), so the whole table is swept once a period
    /// without stopping the worker for a long pass (a million-entry table is 64 MiB).
    fn sweep(&mut self, now: Timestamp) {
        let every = (self.ageing_ns / 8).clamp(1_000_000, 1_000_000_000);
        let elapsed = now.0.saturating_sub(self.last_sweep.0);
        let slots = self.table.slots();
        let share = (slots as u128 * u128::from(elapsed)).div_ceil(u128::from(every));
        let count = usize::try_from(share).unwrap_or(slots).min(slots);
        if count == 0 {
            return;
        }
        let (now_ms, ageing) = (ms(now), self.ageing_ms);
        let (aged, next) = self.table.retain_range(self.sweep_at, count, |e| {
            fresh(e.last_seen_ms, now_ms, ageing)
        });
        self.sweep_at = next;
        self.stats.aged.add(aged as u64);
        self.stats.entries.set(self.table.len() as u64);
        self.last_sweep = now;
    }

    /// Prefetch the table slots that `p` will look up. `last_dst` is the key of the
    /// destination whose slot the look-ahead warmed last: a run of frames to one address
    /// warms its slot once (and then finds it as the burst's last destination).
    #[inline]
    fn warm(&self, ingress: u16, p: &Packet, last_dst: &mut u64) {
        let Some((dst, src, tag)) = ethernet_macs(p.data()) else {
            return;
        };
        let Some(vlan) = self.attachments[ingress as usize].ingress(tag) else {
            return;
        };
        self.table.warm(key(vlan, src));
        let k = key(vlan, dst);
        if !is_multicast_u64(dst) && k != *last_dst {
            self.table.warm(k);
            *last_dst = k;
        }
    }

    /// Flood `pkt` to every attachment of `vlan` but `ingress`.
    fn flood(&mut self, ctx: &mut Ctx<'_>, ingress: u16, vlan: u16, pkt: Packet) {
        self.stats.flooded.add(1);
        let members = &self.members[vlan as usize];
        let mut outs = members.iter().copied().filter(|&g| g != ingress);
        let Some(mut current) = outs.next() else {
            ctx.drop(pkt, DropReason::NoDestination);
            return;
        };
        for next in outs {
            match ctx.clone_packet(&pkt) {
                Some(copy) => send(&self.attachments, &mut self.out, ctx, current, vlan, copy),
                None => ctx.count_drop(DropReason::NoBuffers),
            }
            current = next;
        }
        send(&self.attachments, &mut self.out, ctx, current, vlan, pkt);
    }

    /// Switch one frame that came in on `ingress`, whose untagged frames belong to
    /// `untagged` (if it takes them), at `now`.
    #[inline]
    fn forward(
        &mut self,
        ingress: u16,
        untagged: Option<u16>,
        mut pkt: Packet,
        ctx: &mut Ctx<'_>,
        now_ms: u32,
    ) {
        let Some((dst, src, tag)) = ethernet_macs(pkt.data()) else {
            return ctx.drop(pkt, DropReason::Runt);
        };
        let vlan = match tag {
            None => untagged,
            Some(_) => self.attachments[ingress as usize].ingress(tag),
        };
        let Some(vlan) = vlan else {
            return ctx.drop(pkt, DropReason::VlanDenied);
        };
        if is_multicast_u64(src) {
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        if tag.is_some() {
            let off = strip_vlan_in_place(pkt.data_mut());
            pkt.pull_front(off);
        }
        self.learn(vlan, src, ingress, now_ms);
        if is_multicast_u64(dst) {
            return self.flood(ctx, ingress, vlan, pkt);
        }
        match self.lookup(vlan, dst, now_ms) {
            Some(g) if g == ingress => ctx.drop(pkt, DropReason::Hairpin),
            Some(g) => send(&self.attachments, &mut self.out, ctx, g, vlan, pkt),
            None => self.flood(ctx, ingress, vlan, pkt),
        }
    }
}

impl Node for Switch {
    fn reconfigure(&mut self, config: &dyn std::any::Any) -> bool {
        let Some(c) = config.downcast_ref::<SwitchConfig>() else {
            return false;
        };
        if !c.grows_from(&self.config) {
            return false;
        }
        self.members = vlan_members(&c.attachments);
        self.attachments = c.attachments.clone();
        self.out.resize_with(c.attachments.len(), Batch::new);
        self.config = c.clone();
        true
    }

    fn kind(&self) -> &'static str {
        "switch"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let ingress = input.0;
        if ingress as usize >= self.attachments.len() {
            for pkt in batch.drain() {
                ctx.drop(pkt, DropReason::Unwired);
            }
            return;
        }
        let untagged = self.attachments[ingress as usize].ingress(None);
        // The time in milliseconds, as the table keeps it: divided once per burst.
        let now = ms(ctx.now);
        self.last_dst = (0, 0);
        // A table bigger than the caches: prefetch the slots of the frame WARM_AHEAD places
        // ahead of the one being switched, so that a steady number of misses is in flight.
        let large = self.table.is_large();
        let mut warm_dst = 0;
        if large {
            for p in batch.iter().take(WARM_AHEAD) {
                self.warm(ingress, p, &mut warm_dst);
            }
        }
        let mut frames = batch.drain();
        while let Some(pkt) = frames.next() {
            if large {
                if let Some(ahead) = frames.as_slice().get(WARM_AHEAD - 1) {
                    self.warm(ingress, ahead, &mut warm_dst);
                }
            }
            self.forward(ingress, untagged, pkt, ctx, now);
        }
        drop(frames);
        for (g, out) in self.out.iter_mut().enumerate() {
            if !out.is_empty() {
                ctx.emit_all(Gate(g as u16), out);
            }
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.sweep(ctx.now);
    }

    fn show(&self, table: &str, now: Timestamp) -> Option<Table> {
        if table != "macs" {
            return None;
        }
        let now_ms = ms(now);
        let mut live: Vec<_> = self
            .table
            .iter()
            .filter(|e| self.fresh(e.last_seen_ms, now_ms))
            .map(|e| (e.key, e.gate, now_ms.wrapping_sub(e.last_seen_ms) / 1000))
            .collect();
        live.sort_unstable();
        let mut t = Table::new(&["mac", "vlan", "gate", "age_s"]);
        for (k, gate, age) in live {
            t.push(vec![
                show::mac(MacAddr::from_u64(k)),
                ((k >> 48) as u16).into(),
                gate.into(),
                age.into(),
            ]);
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_dataplane::testing::Harness;
    use nfv_dataplane::Cell;

    const POOL: usize = 256;

    fn mac(n: u8) -> [u8; 6] {
        [0x02, 0, 0, 0, 0, n]
    }

    /// A frame from `src` to `dst`, tagged with `vlan` if given, with a recognisable payload.
    fn frame(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        if let Some(v) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend((0..46u8).map(|i| i ^ src[5]));
        f
    }

    fn switch(
        attachments: Vec<VlanMode>,
        size: usize,
        ageing_s: u64,
    ) -> (Harness, Arc<SwitchStats>) {
        let gates = attachments.len();
        let sw = Switch::new(SwitchConfig {
            mac_table_size: size,
            ageing: Duration::from_secs(ageing_s),
            attachments,
        });
        let stats = sw.stats();
        (Harness::new(Box::new(sw), gates, POOL), stats)
    }

    fn access(n: usize) -> Vec<VlanMode> {
        vec![VlanMode::Access(1); n]
    }

    /// Which gates got exactly one frame each, and that frame's bytes equal `expect`.
    fn delivered(h: &mut Harness, expect: &[u8]) -> Vec<usize> {
        let mut got = Vec::new();
        for (g, frames) in h.recv_each().into_iter().enumerate() {
            assert!(frames.len() <= 1, "gate {g} got {} frames", frames.len());
            if let Some(f) = frames.first() {
                assert_eq!(f, expect, "frame out of gate {g}");
                got.push(g);
            }
        }
        got
    }

    const T0: Timestamp = Timestamp::from_secs(1);

    #[test]
    fn more_attachments_are_taken_in_place_and_the_mac_table_is_kept() {
        use crate::testframes::Shared;
        let config = |a: Vec<VlanMode>, size| SwitchConfig {
            mac_table_size: size,
            ageing: Duration::from_secs(300),
            attachments: a,
        };
        let sw = Shared::new(Switch::new(config(access(2), 64)));
        let mut h = Harness::new(Box::new(sw.clone()), 2, POOL);
        let from_a = frame([0xff; 6], mac(1), None);
        h.send(0, &from_a, T0);
        assert_eq!(delivered(&mut h, &from_a), vec![1]);
        let mut node =
            sw.0.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(
            !node.reconfigure(&config(access(1), 64)),
            "fewer attachments"
        );
        assert!(
            !node.reconfigure(&config(access(3), 128)),
            "another table size"
        );
        let trunk = vec![
            VlanMode::Access(1),
            VlanMode::Trunk {
                allowed: vec![2],
                native: None,
            },
        ];
        assert!(!node.reconfigure(&config(trunk, 64)), "gate 1 changed");
        assert!(!node.reconfigure(&"not a switch config"));
        assert!(node.reconfigure(&config(access(3), 64)));
        drop(node);
        // Three gates now: the learned entry is still there, and floods reach gate 2.
        let mut h = Harness::new(Box::new(sw.clone()), 3, POOL);
        let to_a = frame(mac(1), mac(2), None);
        h.send(2, &to_a, T0);
        assert_eq!(
            delivered(&mut h, &to_a),
            vec![0],
            "mac 1 was kept on gate 0"
        );
        let from_c = frame([0xff; 6], mac(3), None);
        h.send(2, &from_c, T0);
        assert_eq!(delivered(&mut h, &from_c), vec![0, 1]);
    }

    #[test]
    fn learns_and_then_forwards_unicast_only_to_the_learned_attachment() {
        let (mut h, stats) = switch(access(4), 1024, 300);
        let a_to_b = frame(mac(2), mac(1), None);
        h.send(0, &a_to_b, T0);
        assert_eq!(
            delivered(&mut h, &a_to_b),
            vec![1, 2, 3],
            "unknown unicast floods"
        );
        let b_to_a = frame(mac(1), mac(2), None);
        h.send(1, &b_to_a, T0);
        assert_eq!(
            delivered(&mut h, &b_to_a),
            vec![0],
            "A was learned on gate 0"
        );
        h.send(0, &a_to_b, T0);
        assert_eq!(
            delivered(&mut h, &a_to_b),
            vec![1],
            "B was learned on gate 1"
        );
        assert_eq!(stats.learned.get(), 2);
        assert_eq!(stats.entries.get(), 2);
        assert_eq!(stats.flooded.get(), 1);
        assert_eq!(h.pool().available(), POOL, "no buffer leaked");
    }

    #[test]
    fn floods_broadcast_and_multicast_but_never_back_to_the_ingress() {
        let (mut h, _) = switch(access(3), 1024, 300);
        let bcast = frame([0xff; 6], mac(1), None);
        h.send(1, &bcast, T0);
        assert_eq!(delivered(&mut h, &bcast), vec![0, 2]);
        let mcast = frame([0x01, 0x00, 0x5e, 0, 0, 1], mac(1), None);
        h.send(2, &mcast, T0);
        assert_eq!(delivered(&mut h, &mcast), vec![0, 1]);
        // Even a learned broadcast-source attachment does not get its own broadcast back.
        h.send(0, &bcast, T0);
        assert_eq!(delivered(&mut h, &bcast), vec![1, 2]);
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn a_destination_on_the_ingress_attachment_is_a_hairpin_drop() {
        let (mut h, _) = switch(access(3), 1024, 300);
        h.send(1, &frame([0xff; 6], mac(2), None), T0);
        h.recv_each();
        h.send(1, &frame(mac(2), mac(3), None), T0);
        assert!(delivered(&mut h, &[]).is_empty());
        assert_eq!(h.node_drops(DropReason::Hairpin), 1);
    }

    #[test]
    fn a_moved_address_follows_its_new_attachment() {
        let (mut h, stats) = switch(access(3), 1024, 300);
        h.send(0, &frame([0xff; 6], mac(1), None), T0);
        h.send(2, &frame([0xff; 6], mac(1), None), T0);
        h.recv_each();
        let to_a = frame(mac(1), mac(9), None);
        h.send(1, &to_a, T0);
        assert_eq!(delivered(&mut h, &to_a), vec![2]);
        assert_eq!(stats.moved.get(), 1);
    }

    /// The burst's last destination is remembered, so an address that moves in the middle
    /// of a burst must be followed at once: here onto the burst's own gate (a hairpin).
    #[test]
    fn a_destination_that_moves_within_a_burst_is_followed_at_once() {
        let (mut h, stats) = switch(access(3), 1024, 300);
        h.send(1, &frame([0xff; 6], mac(2), None), T0);
        h.recv_each();
        let to_b = frame(mac(2), mac(1), None);
        let b_here = frame([0xff; 6], mac(2), None);
        let burst = [to_b.clone(), to_b.clone(), b_here.clone(), to_b.clone()];
        h.send_burst(0, &burst, T0);
        assert_eq!(
            h.recv(1),
            vec![to_b.clone(), to_b, b_here.clone()],
            "two before the move, then the moving frame's flood"
        );
        assert_eq!(h.recv(2), vec![b_here]);
        assert_eq!(stats.moved.get(), 1);
        assert_eq!(h.node_drops(DropReason::Hairpin), 1, "after the move");
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn entries_age_out_with_the_fake_clock() {
        let (mut h, stats) = switch(access(3), 1024, 300);
        h.send(0, &frame([0xff; 6], mac(1), None), Timestamp::from_secs(0));
        h.recv_each();
        let to_a = frame(mac(1), mac(2), None);
        // mac(2) is learned at 299 s, so only mac(1) is stale at 301 s.
        h.send(1, &to_a, Timestamp::from_secs(299));
        assert_eq!(delivered(&mut h, &to_a), vec![0], "still fresh at 299 s");
        h.send(1, &to_a, Timestamp::from_secs(301));
        assert_eq!(
            delivered(&mut h, &to_a),
            vec![0, 2],
            "stale at 301 s: flooded"
        );
        h.tick(Timestamp::from_secs(400));
        assert_eq!(stats.aged.get(), 1, "mac(1) swept");
        assert_eq!(
            stats.entries.get(),
            1,
            "mac(2) (seen at 301 s) is still there"
        );
        h.tick(Timestamp::from_secs(700));
        assert_eq!(stats.aged.get(), 2);
        assert_eq!(stats.entries.get(), 0);
    }

    /// Seen-times are rewritten at most once a second (an eighth of the ageing time if
    /// that is less): an address that keeps sending never ages, one that stops ages at most
    /// that much late.
    #[test]
    fn busy_addresses_stay_and_quiet_ones_age_at_most_a_second_late() {
        let (mut h, _) = switch(access(3), 1024, 4);
        h.send(0, &frame([0xff; 6], mac(1), None), Timestamp::from_secs(0));
        h.recv_each();
        let to_a = frame(mac(1), mac(2), None);
        let ms = |m: u64| Timestamp(m * 1_000_000);
        // mac(1) sends every 300 ms for 10 s, far past the 4 s ageing time.
        for t in (300..10_000).step_by(300) {
            h.send(0, &frame([0xff; 6], mac(1), None), ms(t));
            h.recv_each();
            h.send(1, &to_a, ms(t + 1));
            assert_eq!(delivered(&mut h, &to_a), vec![0], "known at {t} ms");
        }
        // Last seen at 9900 ms, its entry written 500 ms before that at worst: stale by 13.9 s.
        h.send(1, &to_a, ms(13_000));
        assert_eq!(delivered(&mut h, &to_a), vec![0], "fresh 3.1 s after");
        h.send(1, &to_a, ms(14_400));
        assert_eq!(delivered(&mut h, &to_a), vec![0, 2], "aged 4.5 s after");
    }

    #[test]
    fn a_full_table_floods_and_counts() {
        let (mut h, stats) = switch(access(3), 2, 300);
        for (g, m) in [(0, 1), (1, 2), (2, 3)] {
            h.send(g, &frame([0xff; 6], mac(m), None), T0);
        }
        h.recv_each();
        assert_eq!(stats.entries.get(), 2);
        assert_eq!(stats.table_full.get(), 1);
        let to_third = frame(mac(3), mac(1), None);
        h.send(0, &to_third, T0);
        assert_eq!(
            delivered(&mut h, &to_third),
            vec![1, 2],
            "unlearned: flooded"
        );
        let to_second = frame(mac(2), mac(1), None);
        h.send(0, &to_second, T0);
        assert_eq!(
            delivered(&mut h, &to_second),
            vec![1],
            "learned ones still work"
        );
    }

    /// g0, g1: access VLAN 10; g2: access VLAN 20; g3: trunk 10,20 (no native);
    /// g4: trunk 20 with native 10.
    fn vlan_switch() -> Harness {
        switch(
            vec![
                VlanMode::Access(10),
                VlanMode::Access(10),
                VlanMode::Access(20),
                VlanMode::Trunk {
                    allowed: vec![10, 20],
                    native: None,
                },
                VlanMode::Trunk {
                    allowed: vec![20],
                    native: Some(10),
                },
            ],
            1024,
            300,
        )
        .0
    }

    #[test]
    fn vlans_separate_access_attachments_and_tag_on_trunks() {
        let mut h = vlan_switch();
        let b = frame([0xff; 6], mac(1), None);
        h.send(0, &b, T0);
        let out = h.recv_each();
        assert_eq!(out[1], vec![b.clone()], "same VLAN, untagged");
        assert!(out[2].is_empty(), "VLAN 20 must not see VLAN 10");
        assert_eq!(
            out[3],
            vec![frame([0xff; 6], mac(1), Some(10))],
            "tagged on trunk"
        );
        assert_eq!(out[4], vec![b.clone()], "native VLAN 10 leaves untagged");

        let b20 = frame([0xff; 6], mac(2), None);
        h.send(2, &b20, T0);
        let out = h.recv_each();
        assert!(out[0].is_empty() && out[1].is_empty());
        assert_eq!(out[3], vec![frame([0xff; 6], mac(2), Some(20))]);
        assert_eq!(out[4], vec![frame([0xff; 6], mac(2), Some(20))]);

        // Unicast between VLANs is impossible even to a learned address.
        h.send(0, &frame(mac(2), mac(1), None), T0);
        let out = h.recv_each();
        assert!(out[2].is_empty(), "mac(2) lives in VLAN 20");
    }

    #[test]
    fn tagged_frames_from_a_trunk_reach_access_attachments_untagged_and_intact() {
        let mut h = vlan_switch();
        h.send(2, &frame([0xff; 6], mac(2), None), T0);
        h.recv_each();
        h.send(3, &frame(mac(2), mac(7), Some(20)), T0);
        let out = h.recv_each();
        assert_eq!(out[2], vec![frame(mac(2), mac(7), None)]);
        assert!(out.iter().enumerate().all(|(g, f)| g == 2 || f.is_empty()));
        // Native VLAN: an untagged frame on g4 is VLAN 10.
        h.send(4, &frame([0xff; 6], mac(8), None), T0);
        let out = h.recv_each();
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[3], vec![frame([0xff; 6], mac(8), Some(10))]);
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn frames_outside_an_attachments_vlans_are_denied_and_counted() {
        let mut h = vlan_switch();
        h.send(0, &frame([0xff; 6], mac(1), Some(10)), T0); // tagged on access
        h.send(3, &frame([0xff; 6], mac(1), Some(30)), T0); // VLAN not on trunk
        h.send(3, &frame([0xff; 6], mac(1), None), T0); // untagged, trunk without native
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::VlanDenied), 3);
        // A priority tag (VLAN 0) on an access attachment is taken as untagged.
        h.send(0, &frame([0xff; 6], mac(1), Some(0)), T0);
        let out = h.recv_each();
        assert_eq!(out[1], vec![frame([0xff; 6], mac(1), None)]);
        assert_eq!(out[3], vec![frame([0xff; 6], mac(1), Some(10))]);
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn malformed_frames_are_counted_and_dropped() {
        let (mut h, stats) = switch(access(2), 1024, 300);
        // A ring port drops frames shorter than an Ethernet header itself.
        h.send(0, &[0xff; 10], T0);
        assert_eq!(h.counters().ports[0].drops.get(DropReason::Runt), 1);
        // A tag cut short passes the port but not the switch.
        let mut cut = frame([0xff; 6], mac(1), Some(10));
        cut.truncate(16);
        h.send(0, &cut, T0);
        assert_eq!(h.node_drops(DropReason::Runt), 1);
        h.send(0, &frame([0xff; 6], [0x03, 0, 0, 0, 0, 1], None), T0);
        assert_eq!(h.node_drops(DropReason::BadHeader), 1);
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(stats.learned.get(), 0);
        // And the switch still forwards.
        let ok = frame([0xff; 6], mac(1), None);
        h.send(0, &ok, T0);
        assert_eq!(h.recv(1), vec![ok]);
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn a_lone_attachment_in_its_vlan_drops_broadcasts_as_no_destination() {
        let (mut h, _) = switch(vec![VlanMode::Access(5), VlanMode::Access(6)], 16, 300);
        h.send(0, &frame([0xff; 6], mac(1), None), T0);
        assert!(h.recv_each().iter().all(Vec::is_empty));
        assert_eq!(h.node_drops(DropReason::NoDestination), 1);
    }

    #[test]
    fn floods_count_copies_the_pool_cannot_make() {
        let sw = Switch::new(SwitchConfig {
            mac_table_size: 16,
            ageing: Duration::from_secs(300),
            attachments: access(4),
        });
        // One buffer only: the frame itself; no copy can be made for the other two gates.
        let mut h = Harness::new(Box::new(sw), 4, 0);
        h.send(0, &frame([0xff; 6], mac(1), None), T0);
        let got: usize = h.recv_each().iter().map(Vec::len).sum();
        assert_eq!(got, 1);
        assert_eq!(h.node_drops(DropReason::NoBuffers), 2);
    }

    #[test]
    fn whole_bursts_learn_once_per_address_and_forward_by_what_they_learned() {
        // 64 hosts behind gate 0 talk, in one burst each way, to 64 hosts behind gate 1.
        let (mut h, stats) = switch(access(2), 1024, 300);
        let left: Vec<_> = (0..64u8).map(|i| [0x02, 0, 0, 1, 0, i]).collect();
        let right: Vec<_> = (0..64u8).map(|i| [0x02, 0, 0, 2, 0, i]).collect();
        let there: Vec<_> = (0..64).map(|i| frame(right[i], left[i], None)).collect();
        let back: Vec<_> = (0..64).map(|i| frame(left[i], right[i], None)).collect();
        h.send_burst(0, &there, T0);
        assert_eq!(
            h.recv(1).len(),
            64,
            "flooded: nothing learned yet on the right"
        );
        h.send_burst(1, &back, T0);
        assert_eq!(h.recv(0), back, "forwarded to the learned side, in order");
        h.send_burst(0, &there, T0);
        assert_eq!(h.recv(1), there);
        assert_eq!(stats.entries.get(), 128, "each address learned once");
        assert_eq!(stats.flooded.get(), 64);
        assert_eq!(h.pool().available(), POOL);
    }

    /// Past 8192 entries the switch prefetches ahead within a burst; it must switch
    /// exactly as before: mixed bursts of known, unknown and broadcast destinations, runts
    /// and tagged frames among them.
    #[test]
    fn a_big_table_prefetching_ahead_switches_every_frame_the_same() {
        let (mut h, stats) = switch(access(3), 20_000, 300);
        let host = |side: u8, i: u16| [0x02, side, 0, 0, (i >> 8) as u8, i as u8];
        for chunk in (0..10_000u16).collect::<Vec<_>>().chunks(64) {
            let frames: Vec<_> = chunk
                .iter()
                .map(|&i| frame([0xff; 6], host(1, i), None))
                .collect();
            h.send_burst(1, &frames, T0);
            h.recv_each();
        }
        assert_eq!(stats.entries.get(), 10_000);
        assert!(h.node_drops(DropReason::Runt) == 0);
        // A burst from gate 0: to known hosts (gate 1), unknown ones (flooded to 1 and 2),
        // broadcast, a runt and a tagged frame (denied on an access attachment).
        let mut burst = Vec::new();
        let mut want_1 = Vec::new();
        let mut want_2 = Vec::new();
        for i in 0..60u16 {
            let f = match i % 4 {
                0 | 1 => frame(host(1, i * 97), host(0, i), None),
                2 => frame(host(3, i), host(0, i), None),
                _ => frame([0xff; 6], host(0, i), None),
            };
            if i % 4 != 0 && i % 4 != 1 {
                want_2.push(f.clone());
            }
            want_1.push(f.clone());
            burst.push(f);
        }
        let mut cut = frame(host(1, 5), host(0, 998), Some(7));
        cut.truncate(16); // a tag with no room for the inner type: a runt
        burst.insert(10, cut);
        burst.insert(20, frame(host(1, 5), host(0, 999), Some(7)));
        // Prefetched before the burst learned anything, switched after: to a source that
        // frame 3 taught the table in this burst (a hairpin back to gate 0), and from a
        // source first seen here to one that is known.
        burst.push(frame(host(0, 3), host(0, 997), None));
        burst.push(frame(host(1, 7), host(0, 996), None));
        want_1.push(burst[burst.len() - 1].clone());
        h.send_burst(0, &burst, T0);
        assert_eq!(h.recv(1), want_1, "known and flooded frames, in order");
        assert_eq!(h.recv(2), want_2, "only the flooded ones");
        assert_eq!(h.node_drops(DropReason::Runt), 1);
        assert_eq!(h.node_drops(DropReason::VlanDenied), 1);
        assert_eq!(h.node_drops(DropReason::Hairpin), 1);
        assert_eq!(stats.entries.get(), 10_062);
        assert_eq!(h.pool().available(), POOL);
    }

    #[test]
    fn shows_learned_macs_with_their_gates_and_ages() {
        use crate::testframes::{column, text, Shared};
        let sw = Shared::new(Switch::new(SwitchConfig {
            mac_table_size: 16,
            ageing: Duration::from_secs(300),
            attachments: vec![
                VlanMode::Access(10),
                VlanMode::Access(10),
                VlanMode::Access(10),
            ],
        }));
        let mut h = Harness::new(Box::new(sw.clone()), 3, POOL);
        h.send(2, &frame([0xff; 6], mac(7), None), Timestamp::from_secs(5));
        h.send(0, &frame(mac(7), mac(1), None), Timestamp::from_secs(10));
        h.recv_each();
        let t = sw.show("macs", Timestamp(12_500_000_000)).expect("macs");
        assert_eq!(t.columns, ["mac", "vlan", "gate", "age_s"]);
        assert_eq!(
            t.rows,
            vec![
                vec![
                    text("02:00:00:00:00:01"),
                    Cell::Int(10),
                    Cell::Int(0),
                    Cell::Int(2)
                ],
                vec![
                    text("02:00:00:00:00:07"),
                    Cell::Int(10),
                    Cell::Int(2),
                    Cell::Int(7)
                ],
            ]
        );
        // Stale entries are not shown even before the sweep removes them.
        let t = sw.show("macs", Timestamp::from_secs(306)).expect("macs");
        assert_eq!(column(&t, "mac"), vec![text("02:00:00:00:00:01")]);
        assert_eq!(sw.show("arp", T0), None);
        assert_eq!(sw.show("nope", T0), None);
    }

    #[test]
    fn lists_live_entries() {
        let mut sw = Switch::new(SwitchConfig {
            mac_table_size: 16,
            ageing: Duration::from_secs(300),
            attachments: access(2),
        });
        sw.learn(1, MacAddr(mac(4)).to_u64(), 1, ms(T0));
        assert_eq!(sw.entries(T0), vec![(1, MacAddr(mac(4)), Gate(1))]);
        assert!(sw.entries(Timestamp::from_secs(1000)).is_empty());
    }
}
