//! The mirror node: frames pass between `a` and `b`; copies of the selected ones go to
//! `monitor`.

use std::any::Any;
use std::sync::Arc;

use nfv_dataplane::{Batch, Cell, Ctx, DropReason, Gate, Node, Table, Timestamp};

use super::{MirrorConfig, MirrorStats, GATE_A, GATE_B, GATE_MONITOR};
use crate::wire::EthernetFrame;

/// A mirror.
pub struct Mirror {
    config: MirrorConfig,
    /// Selected frames seen since the last copy, for sampling.
    since_copy: u32,
    stats: Arc<MirrorStats>,
}

impl Mirror {
    /// A mirror with these settings.
    pub fn new(config: MirrorConfig) -> Self {
        Mirror {
            config,
            since_copy: 0,
            stats: Arc::new(MirrorStats::default()),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<MirrorStats> {
        self.stats.clone()
    }

    /// Does the VLAN filter select `frame`? A frame too short for its tag is not selected
    /// (it is still forwarded: the mirror never judges what it passes on).
    #[inline]
    fn selects(&self, frame: &[u8]) -> bool {
        if self.config.vlans.is_empty() {
            return true;
        }
        EthernetFrame::new_checked(frame)
            .ok()
            .and_then(|f| f.vlan())
            .is_some_and(|v| self.config.vlans.binary_search(&v).is_ok())
    }

    /// Copy the selected frames of `batch` to the monitor, as far as buffers and the
    /// monitor's queue allow.
    fn copy(&mut self, batch: &Batch, ctx: &mut Ctx<'_>) {
        let monitor = Gate(GATE_MONITOR);
        let mut room = ctx.room(monitor);
        let wired = ctx.is_wired(monitor);
        let (mut copies, mut bytes) = (0, 0);
        for pkt in batch.iter() {
            if !self.selects(pkt.data()) {
                continue;
            }
            self.since_copy += 1;
            if self.since_copy < self.config.sample {
                continue;
            }
            self.since_copy = 0;
            if !wired {
                self.stats.missed_unwired.add(1);
            } else if room == 0 {
                self.stats.missed_monitor_full.add(1);
            } else if let Some(copy) = ctx.clone_packet(pkt) {
                bytes += copy.len() as u64;
                copies += 1;
                room -= 1;
                ctx.emit(monitor, copy);
            } else {
                self.stats.missed_no_buffers.add(1);
            }
        }
        self.stats.copies.add(copies);
        self.stats.copied_bytes.add(bytes);
    }
}

impl Node for Mirror {
    fn kind(&self) -> &'static str {
        "mirror"
    }

    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
        let out = match input.0 {
            GATE_A => GATE_B,
            GATE_B => GATE_A,
            _ => {
                // The monitor only listens.
                for pkt in batch.drain() {
                    ctx.drop(pkt, DropReason::NotForUs);
                }
                return;
            }
        };
        if self.config.direction.copies_from(input.0) {
            self.copy(batch, ctx);
        }
        ctx.emit_all(Gate(out), batch);
    }

    fn reconfigure(&mut self, config: &dyn Any) -> bool {
        match config.downcast_ref::<MirrorConfig>() {
            Some(c) => {
                self.config = c.clone();
                self.since_copy = 0;
                true
            }
            None => false,
        }
    }

    /// `mirror`: one row, the settings and the counters.
    fn show(&self, table: &str, _now: Timestamp) -> Option<Table> {
        if table != "mirror" {
            return None;
        }
        let mut t = Table::new(&[
            "direction",
            "vlan",
            "sample",
            "copies",
            "missed_no_buffers",
            "missed_monitor_full",
        ]);
        let vlans: Vec<String> = self.config.vlans.iter().map(u16::to_string).collect();
        t.push(vec![
            self.config.direction.name().into(),
            if vlans.is_empty() {
                Cell::Text("all".into())
            } else {
                Cell::Text(vlans.join(","))
            },
            self.config.sample.into(),
            self.stats.copies.get().into(),
            self.stats.missed_no_buffers.get().into(),
            self.stats.missed_monitor_full.get().into(),
        ]);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::Direction;
    use crate::testframes::udp;
    use nfv_dataplane::port::{RingPeer, RingPort};
    use nfv_dataplane::{Endpoint, Graph, GraphBuilder, Packet, Pool, PortId, WorkerId};

    const T0: Timestamp = Timestamp(1_000_000_000);

    /// A mirror between ring ports `a` (0) and `b` (1), its monitor on ring port 2 whose
    /// queue holds `monitor_ring` frames.
    struct Lab {
        graph: Graph,
        pool: Pool,
        peers: Vec<RingPeer>,
        stats: Arc<MirrorStats>,
    }

    impl Lab {
        fn new(config: MirrorConfig, monitor_ring: usize, pool: usize) -> Lab {
            let m = Mirror::new(config);
            let stats = m.stats();
            let mut b = GraphBuilder::new();
            let n = b.add_node("span", 3, Box::new(m));
            let mut peers = Vec::new();
            for (g, ring) in [(0, 1024), (1, 1024), (2, monitor_ring)] {
                let (port, peer) = RingPort::new(ring);
                let p = b.add_port(format!("p{g}"), Box::new(port));
                let wired = b.connect(Endpoint::Port(p), Endpoint::Node(n, Gate(g)));
                assert!(wired.is_ok(), "{wired:?}");
                peers.push(peer);
            }
            Lab {
                graph: b.build(WorkerId(0)),
                pool: Pool::new(pool),
                peers,
                stats,
            }
        }

        /// Send `frames` into port `port` as one burst.
        fn send(&mut self, port: usize, frames: &[Vec<u8>]) {
            for f in frames {
                let p = Packet::from_bytes(f).expect("frame fits");
                assert!(self.peers[port].send_packet(p).is_ok(), "ring full");
            }
            self.graph
                .poll_port(PortId(port as u16), &mut self.pool, T0);
        }

        fn recv(&mut self, port: usize) -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            while let Some(p) = self.peers[port].recv_packet() {
                out.push(p.data().to_vec());
                self.pool.free(p);
            }
            out
        }
    }

    /// Distinct frames: UDP from port 1000 + i, tagged with `vlan` if given.
    fn frames(n: usize, vlan: Option<u16>) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let f = udp(
                    "10.0.0.1",
                    1000 + i as u16,
                    "10.0.0.2",
                    53,
                    b"mirrored",
                    true,
                );
                match vlan {
                    None => f,
                    Some(v) => {
                        let mut t = f[..12].to_vec();
                        t.extend_from_slice(&[0x81, 0x00]);
                        t.extend_from_slice(&(v & 0xfff).to_be_bytes());
                        t.extend_from_slice(&f[12..]);
                        t
                    }
                }
            })
            .collect()
    }

    #[test]
    fn frames_pass_unchanged_both_ways_and_copies_reach_the_monitor_in_order() {
        let mut lab = Lab::new(MirrorConfig::default(), 1024, 1024);
        let ab = frames(10, None);
        let ba = frames(5, Some(7));
        lab.send(0, &ab);
        assert_eq!(lab.recv(1), ab);
        lab.send(1, &ba);
        assert_eq!(lab.recv(0), ba);
        let mut both = ab.clone();
        both.extend(ba.iter().cloned());
        assert_eq!(lab.recv(2), both);
        assert_eq!(lab.stats.copies.get(), 15);
        let bytes: usize = both.iter().map(Vec::len).sum();
        assert_eq!(lab.stats.copied_bytes.get(), bytes as u64);
    }

    #[test]
    fn direction_vlan_and_sample_select_the_copies() {
        let one_way = MirrorConfig {
            direction: Direction::AToB,
            ..MirrorConfig::default()
        };
        let mut lab = Lab::new(one_way, 1024, 1024);
        lab.send(0, &frames(3, None));
        lab.send(1, &frames(4, None));
        assert_eq!(lab.recv(2), frames(3, None));
        assert_eq!(lab.recv(0).len(), 4);

        let vlans = MirrorConfig {
            vlans: vec![10, 30],
            ..MirrorConfig::default()
        };
        let mut lab = Lab::new(vlans, 1024, 1024);
        lab.send(0, &frames(2, Some(10)));
        lab.send(0, &frames(2, Some(20)));
        lab.send(0, &frames(2, None));
        lab.send(1, &frames(1, Some(30)));
        let mut want = frames(2, Some(10));
        want.extend(frames(1, Some(30)));
        assert_eq!(lab.recv(2), want);
        assert_eq!(lab.recv(1).len(), 6, "every frame passes, selected or not");

        let sampled = MirrorConfig {
            sample: 4,
            ..MirrorConfig::default()
        };
        let mut lab = Lab::new(sampled, 1024, 1024);
        let f = frames(10, None);
        lab.send(0, &f);
        assert_eq!(lab.recv(2), vec![f[3].clone(), f[7].clone()]);
    }

    #[test]
    fn a_full_monitor_never_costs_the_mirrored_traffic() {
        // The monitor's ring holds 4 frames and is never read; a burst of 64 goes by, 10
        // times.
        let mut lab = Lab::new(MirrorConfig::default(), 4, 4096);
        let f = frames(64, None);
        for _ in 0..10 {
            lab.send(0, &f);
            assert_eq!(lab.recv(1), f, "every mirrored frame arrives, in order");
        }
        let c = lab.graph.counters().clone();
        assert_eq!(c.nodes[0].drops.total(), 0, "the mirror dropped nothing");
        assert_eq!(c.ports[1].drops.total(), 0);
        // The monitor port took 4 and refused the rest of each burst's copies (TxFull at
        // the port), or the mirror never made them: both counted, neither touched `b`.
        assert_eq!(lab.recv(2), f[..4].to_vec());
        let refused = c.ports[2].drops.get(DropReason::TxFull);
        assert_eq!(
            lab.stats.copies.get() + lab.stats.missed_monitor_full.get(),
            640
        );
        assert_eq!(lab.stats.copies.get(), 4 + refused);
    }

    #[test]
    fn an_empty_pool_costs_copies_only() {
        // Only the frames' own buffers exist: the pool has none left for copies.
        let mut lab = Lab::new(MirrorConfig::default(), 1024, 0);
        let f = frames(8, None);
        lab.send(0, &f);
        assert_eq!(lab.recv(1), f);
        assert!(lab.recv(2).is_empty());
        assert_eq!(lab.stats.missed_no_buffers.get(), 8);
        assert_eq!(lab.graph.counters().nodes[0].drops.total(), 0);
    }

    #[test]
    fn frames_from_the_monitor_are_dropped_and_settings_change_in_place() {
        let mut lab = Lab::new(MirrorConfig::default(), 1024, 1024);
        lab.send(2, &frames(3, None));
        assert!(lab.recv(0).is_empty() && lab.recv(1).is_empty());
        let c = lab.graph.counters();
        assert_eq!(c.nodes[0].drops.get(DropReason::NotForUs), 3);

        let mut m = Mirror::new(MirrorConfig::default());
        let new = MirrorConfig {
            sample: 2,
            ..MirrorConfig::default()
        };
        assert!(m.reconfigure(&new));
        assert!(!m.reconfigure(&7u32));
        let t = m.show("mirror", T0).expect("a mirror table");
        assert_eq!(t.rows[0][2], Cell::Int(2));
        assert!(m.show("macs", T0).is_none());
    }
}
