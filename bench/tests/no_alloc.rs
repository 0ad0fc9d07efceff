//! Zero heap allocations per packet in steady state: a counting global allocator watches
//! generator -> switch -> sink (with latency recording) forward millions of packets,
//! timers included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use nfv_dataplane::port::{GeneratorConfig, GeneratorPort, LatencyRecorder, NullPort};
use nfv_dataplane::{Endpoint, Gate, GraphBuilder, Pool, Timestamp, Worker, WorkerId};
use nfv_functions::{Switch, SwitchConfig, VlanMode};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn forwarding_allocates_nothing_per_packet() {
    let sink_mac = [0x02, 0xff, 0, 0, 0, 1];
    let mut g = GraphBuilder::new();
    let sw = g.add_node(
        "sw",
        2,
        Box::new(Switch::new(SwitchConfig {
            mac_table_size: 4096,
            ageing: Duration::from_secs(300),
            attachments: vec![VlanMode::Access(1), VlanMode::Access(1)],
        })),
    );
    let gen = g.add_port(
        "gen",
        Box::new(GeneratorPort::new(GeneratorConfig {
            flows: 1000,
            dst_mac: sink_mac,
            ..GeneratorConfig::default()
        })),
    );
    let rec = LatencyRecorder::new();
    let sink = g.add_port(
        "sink",
        Box::new(
            NullPort::new()
                .with_latency(rec.clone())
                .announcing(sink_mac),
        ),
    );
    g.connect(Endpoint::Port(gen), Endpoint::Node(sw, Gate(0)))
        .expect("wire");
    g.connect(Endpoint::Port(sink), Endpoint::Node(sw, Gate(1)))
        .expect("wire");
    let mut w = Worker::new(WorkerId(0), g.build(WorkerId(0)), Pool::new(1024));

    // Warm up: every flow learned, the histogram's buckets touched.
    let mut now = Timestamp::from_secs(1);
    for _ in 0..200 {
        w.turn(now);
        w.tick(now);
        now.0 += 1_000_000;
    }
    let counters = w.graph().counters().clone();
    let before = counters.ports[1].tx_packets.get();

    COUNTING.store(true, Relaxed);
    for _ in 0..50_000 {
        w.turn(now);
        w.tick(now);
        now.0 += 1_000_000;
    }
    COUNTING.store(false, Relaxed);

    let forwarded = counters.ports[1].tx_packets.get() - before;
    assert!(forwarded >= 1_000_000, "only {forwarded} packets forwarded");
    assert_eq!(counters.total_drops(), 0);
    assert_eq!(
        ALLOCS.load(Relaxed),
        0,
        "allocations while forwarding {forwarded} packets"
    );
    assert!(!rec.snapshot().is_empty(), "latency was recorded");
}
