//! Packet trace and packet capture: what the operator's `nfv trace` and `nfv capture` see.
//!
//! Both are installed on a running graph between bursts (through the worker's command
//! mailbox) and cost nothing while absent: the graph checks for them once per burst, never
//! per packet. While present, a trace marks the next packets it picks (a number in
//! [`crate::packet::Meta::trace`] that copies inherit) and records every step they take:
//! received, handed to a node gate, sent to a port, dropped with a reason, consumed. A
//! capture copies every frame that crosses one wire (both ways) into buffers that a reader
//! on another thread drains through lock-free queues; it never blocks the worker, and a
//! reader that falls behind costs frames (counted), not forwarding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::drop_reason::DropReason;
use crate::graph::Endpoint;
use crate::ids::{Gate, NodeId, PortId};
use crate::packet::Packet;
use crate::time::Timestamp;

/// Bytes of each traced packet kept as it was received (enough for Ethernet, a VLAN tag,
/// IPv4 with options and the start of TCP/UDP/ICMP).
pub const TRACE_SNAP: usize = 128;

/// One step of a traced packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// Received on a port.
    Rx(PortId),
    /// Handed to a node on a gate.
    Node(NodeId, Gate),
    /// Handed to a port for transmission.
    Tx(PortId),
    /// Dropped by a node (or at its output) for a reason.
    Drop(NodeId, DropReason),
    /// Dropped at a port (receive side, or an unwired port) for a reason.
    PortDrop(PortId, DropReason),
    /// Used up by a node without a drop (an ARP reply learned from, a request answered).
    Consumed(NodeId),
}

/// A step with its packet and time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// The traced packet's number ([`TracedPacket::id`]).
    pub packet: u32,
    /// When, on the worker's clock.
    pub time: Timestamp,
    /// What happened.
    pub event: TraceEvent,
}

/// A packet the trace picked: where and when it came in and its first bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedPacket {
    /// Its number (unique in the process; the first packet of a trace has the lowest).
    pub id: u32,
    /// The port it was received on.
    pub port: PortId,
    /// When.
    pub time: Timestamp,
    /// Its length.
    pub len: usize,
    /// Its first bytes (at most [`TRACE_SNAP`]).
    pub head: Vec<u8>,
}

/// A trace being recorded: which packets to pick and what happened to them.
#[derive(Debug)]
pub struct Trace {
    port: Option<PortId>,
    want: u32,
    /// Number of this trace's first packet: numbers are never reused across traces, so a
    /// packet marked by an earlier trace (held in an ARP queue meanwhile) is not mistaken
    /// for one of this trace's.
    base: u32,
    /// The packets picked so far.
    pub packets: Vec<TracedPacket>,
    /// Their steps, in order.
    pub records: Vec<TraceRecord>,
    /// Steps not recorded because the record buffer was full.
    pub lost: u64,
}

/// Steps kept per traced packet, at most (a flood through a big switch makes many).
const RECORDS_PER_PACKET: usize = 64;

impl Trace {
    /// A trace of the next `count` packets received on `port` (any port if `None`). All
    /// its memory is taken now.
    pub fn new(port: Option<PortId>, count: u32) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let count = count.clamp(1, 100_000);
        let mut base = NEXT.fetch_add(count, Ordering::Relaxed);
        if base == 0 || base.checked_add(count).is_none() {
            // Wrapped (after four billion traced packets): start again.
            NEXT.store(count + 1, Ordering::Relaxed);
            base = 1;
        }
        Trace {
            port,
            want: count,
            base,
            packets: Vec::with_capacity(count as usize),
            records: Vec::with_capacity(count as usize * RECORDS_PER_PACKET),
            lost: 0,
        }
    }

    /// Packets picked so far.
    pub fn picked(&self) -> u32 {
        self.packets.len() as u32
    }

    /// True once every packet asked for has been picked.
    pub fn is_full(&self) -> bool {
        self.picked() >= self.want
    }

    /// Maybe pick `pkt`, just received on `port` at `now`: give it a number and record it.
    #[inline]
    pub(crate) fn pick(&mut self, pkt: &mut Packet, port: PortId, now: Timestamp) {
        pkt.meta.trace = 0;
        if self.is_full() || self.port.is_some_and(|p| p != port) {
            return;
        }
        let id = self.base + self.picked();
        pkt.meta.trace = id;
        let head = &pkt.data()[..pkt.len().min(TRACE_SNAP)];
        self.packets.push(TracedPacket {
            id,
            port,
            time: now,
            len: pkt.len(),
            head: head.to_vec(),
        });
        self.record(id, now, TraceEvent::Rx(port));
    }

    /// Record a step of packet `id` (0: not traced, nothing recorded).
    #[inline]
    pub(crate) fn record(&mut self, id: u32, time: Timestamp, event: TraceEvent) {
        if id < self.base || id - self.base >= self.want {
            return;
        }
        if self.records.len() < self.records.capacity() {
            self.records.push(TraceRecord {
                packet: id,
                time,
                event,
            });
        } else {
            self.lost += 1;
        }
    }
}

/// A frame copied by a capture.
#[derive(Debug, Default)]
pub struct CapturedFrame {
    /// When the worker saw it (worker clock).
    pub time: Timestamp,
    /// The wire end it was going to: which way it crossed the wire.
    pub to: Option<Endpoint>,
    /// Its bytes (the whole frame).
    pub data: Vec<u8>,
}

/// The reader's side of a capture: frames to take and empty buffers to give back.
#[derive(Debug, Clone)]
pub struct CaptureReader {
    /// Frames captured, oldest first.
    pub frames: Arc<ArrayQueue<CapturedFrame>>,
    /// Empty buffers for the worker to fill; give each frame's buffer back here.
    pub free: Arc<ArrayQueue<CapturedFrame>>,
    /// Frames not captured because no empty buffer was left (the reader fell behind).
    pub missed: Arc<AtomicU64>,
}

impl CaptureReader {
    /// Give a frame's buffer back for reuse.
    pub fn recycle(&self, mut f: CapturedFrame) {
        f.data.clear();
        let _ = self.free.push(f);
    }

    /// Frames missed so far.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
}

/// A capture on one wire, as the worker holds it.
#[derive(Debug)]
pub struct Capture {
    ends: [Endpoint; 2],
    remaining: u64,
    reader: CaptureReader,
}

/// Buffers a capture preallocates (about 2 MiB).
pub const CAPTURE_BUFFERS: usize = 1024;

impl Capture {
    /// A capture of the wire between `a` and `b` (both ways), of at most `count` frames
    /// (`None`: until removed); and the reader's handle. Its buffers are allocated now.
    pub fn new(a: Endpoint, b: Endpoint, count: Option<u64>) -> (Self, CaptureReader) {
        let frames = Arc::new(ArrayQueue::new(CAPTURE_BUFFERS));
        let free = Arc::new(ArrayQueue::new(CAPTURE_BUFFERS));
        for _ in 0..CAPTURE_BUFFERS {
            let _ = free.push(CapturedFrame {
                time: Timestamp::ZERO,
                to: None,
                // A jumbo frame grows its buffer once (it is reused after): bounded by
                // `CAPTURE_BUFFERS` jumbo buffers, and only while a capture runs.
                data: Vec::with_capacity(crate::packet::BUF_SIZE),
            });
        }
        let reader = CaptureReader {
            frames,
            free,
            missed: Arc::new(AtomicU64::new(0)),
        };
        (
            Capture {
                ends: [a, b],
                remaining: count.unwrap_or(u64::MAX),
                reader: reader.clone(),
            },
            reader,
        )
    }

    /// True if frames queued at `end` cross the captured wire.
    #[inline]
    pub(crate) fn watches(&self, end: Endpoint) -> bool {
        self.remaining > 0 && (self.ends[0] == end || self.ends[1] == end)
    }

    /// Copy `pkt`, about to be handed to `to`, at `now`.
    #[inline]
    pub(crate) fn copy(&mut self, pkt: &Packet, to: Endpoint, now: Timestamp) {
        if self.remaining == 0 {
            return;
        }
        self.remaining -= 1;
        match self.reader.free.pop() {
            Some(mut f) => {
                f.time = now;
                f.to = Some(to);
                f.data.clear();
                f.data.extend_from_slice(pkt.data());
                if let Err(f) = self.reader.frames.push(f) {
                    let _ = self.reader.free.push(f);
                    self.reader.missed.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.reader.missed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The two ends of the captured wire.
    pub fn ends(&self) -> [Endpoint; 2] {
        self.ends
    }

    /// Frames the reader missed so far.
    pub fn missed(&self) -> u64 {
        self.reader.missed()
    }

    /// True if this capture feeds `reader`.
    pub fn feeds(&self, reader: &CaptureReader) -> bool {
        Arc::ptr_eq(&self.reader.frames, &reader.frames)
    }

    /// Frames still to capture.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_picks_only_its_port_and_count() {
        let mut t = Trace::new(Some(PortId(1)), 2);
        let mut p = Packet::from_bytes(&[1u8; 60]).expect("fits");
        t.pick(&mut p, PortId(0), Timestamp(5));
        assert_eq!(p.meta.trace, 0);
        let first = t.base;
        for want in [first, first + 1] {
            t.pick(&mut p, PortId(1), Timestamp(6));
            assert_eq!(p.meta.trace, want);
        }
        t.pick(&mut p, PortId(1), Timestamp(7));
        assert_eq!(p.meta.trace, 0, "a full trace picks no more");
        assert!(t.is_full());
        assert_eq!(t.records.len(), 2);
        assert_eq!(t.packets[1].head.len(), 60);
        // Another trace never takes these numbers for its own.
        let mut u = Trace::new(None, 1);
        u.record(first, Timestamp(8), TraceEvent::Tx(PortId(0)));
        assert!(u.records.is_empty());
    }

    #[test]
    fn a_capture_counts_what_a_slow_reader_misses() {
        let a = Endpoint::Port(PortId(0));
        let b = Endpoint::Node(NodeId(0), Gate(1));
        let (mut c, r) = Capture::new(a, b, Some(CAPTURE_BUFFERS as u64 + 10));
        assert!(c.watches(a) && c.watches(b));
        assert!(!c.watches(Endpoint::Port(PortId(1))));
        let p = Packet::from_bytes(&[7u8; 64]).expect("fits");
        for _ in 0..CAPTURE_BUFFERS + 20 {
            c.copy(&p, b, Timestamp(1));
        }
        assert_eq!(r.frames.len(), CAPTURE_BUFFERS);
        assert_eq!(
            r.missed(),
            10,
            "ten past the free buffers, then the count ran out"
        );
        assert!(!c.watches(a));
        let f = r.frames.pop().expect("a frame");
        assert_eq!(f.data, vec![7u8; 64]);
        assert_eq!(f.to, Some(b));
        r.recycle(f);
        assert_eq!(r.free.len(), 1);
    }
}
