//! A sink that discards what it is sent and measures the latency of generated frames.
//!
//! Optionally it announces a MAC address once (a broadcast frame from that address, as a
//! host would send), so that a switch in front of it learns where it is.

use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

use crate::batch::Batch;
use crate::counters::{Counter, PortCounters};
use crate::mac::MacAddr;
use crate::packet::{Packet, Pool, MAX_FRAME};
use crate::port::generator::read_stamp;
use crate::port::Port;
use crate::time::Clock;

/// EtherType of the announce frame (IEEE 802 local experimental).
const ANNOUNCE_ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// Latencies of stamped frames, in nanoseconds, shared between a sink and its reader.
///
/// The sink records a whole burst under one `try_lock`; if a reader holds the lock just
/// then, the burst is not recorded (and counted in `skipped`), so the worker never waits.
/// The histogram (about 200 KB) is made at the first stamped frame: a topology of
/// thousands of sinks that see no generated traffic holds none.
#[derive(Clone)]
pub struct LatencyRecorder {
    hist: Arc<Mutex<Option<Histogram<u64>>>>,
    /// Frames not recorded because the histogram was busy.
    pub skipped: Arc<Counter>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder for 1 ns .. 100 s at 3 significant digits.
    pub fn new() -> Self {
        LatencyRecorder {
            hist: Arc::new(Mutex::new(None)),
            skipped: Arc::new(Counter::default()),
        }
    }

    fn empty() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 100_000_000_000, 3)
            .expect("constant histogram bounds are valid")
    }

    /// A copy of the histogram so far.
    pub fn snapshot(&self) -> Histogram<u64> {
        let h = match self.hist.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        h.unwrap_or_else(Self::empty)
    }

    /// Forget everything recorded (e.g. after a warm-up).
    pub fn reset(&self) {
        let mut h = match self.hist.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        if let Some(h) = h.as_mut() {
            h.reset();
        }
    }
}

/// Discards every frame it transmits (counting it as sent).
#[derive(Default)]
pub struct NullPort {
    latency: Option<LatencyRecorder>,
    announce: Option<MacAddr>,
    clock: Option<Clock>,
}

impl NullPort {
    /// A plain sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink that records the latency of stamped frames into `rec`.
    pub fn with_latency(mut self, rec: LatencyRecorder) -> Self {
        self.latency = Some(rec);
        self.clock = Some(Clock::global());
        self
    }

    /// A sink that announces `mac` once, on its first poll.
    pub fn announcing(mut self, mac: MacAddr) -> Self {
        self.announce = Some(mac);
        self
    }
}

impl Port for NullPort {
    fn kind(&self) -> &'static str {
        "null"
    }

    fn rx_burst(&mut self, pool: &mut Pool, batch: &mut Batch, counters: &PortCounters) {
        let Some(mac) = self.announce.take() else {
            return;
        };
        let mut f = [0u8; 60];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac.0);
        f[12..14].copy_from_slice(&ANNOUNCE_ETHERTYPE);
        if let Some(mut p) = pool.alloc() {
            if p.set_frame(&f) {
                counters.rx(p.len());
                if let Err(p) = batch.push(p) {
                    pool.free(p);
                }
            } else {
                pool.free(p);
            }
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        if let (Some(rec), Some(clock)) = (&self.latency, &self.clock) {
            let now = clock.now().0;
            match rec.hist.try_lock() {
                Ok(mut h) => {
                    // Every 8th frame of a burst: latency percentiles from an eighth of
                    // millions of frames are as good, at an eighth of the cost.
                    for p in batch.iter().step_by(8) {
                        if let Some((_, sent)) = read_stamp(p.data()) {
                            let h = h.get_or_insert_with(LatencyRecorder::empty);
                            let _ = h.record(now.saturating_sub(sent).max(1));
                        }
                    }
                }
                Err(_) => rec.skipped.add(batch.len() as u64),
            }
        }
        let bytes = batch.iter().map(Packet::len).sum();
        counters.tx_many(batch.len(), bytes);
        pool.free_batch(batch);
    }

    fn max_frame(&self) -> usize {
        MAX_FRAME
    }
}
