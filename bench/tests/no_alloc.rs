//! Zero heap allocations per packet in steady state: a counting global allocator watches
//! generator -> switch -> sink (with latency recording), generator -> router -> NAT ->
//! firewall -> sink, and IPv6 generator -> router -> sink (with latency recording) forward
//! millions of packets, timers included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use nfv_dataplane::port::{Addresses, GeneratorConfig, GeneratorPort, LatencyRecorder, NullPort};
use nfv_dataplane::{Endpoint, Gate, GraphBuilder, MacAddr, Pool, Timestamp, Worker, WorkerId};
use nfv_functions::conntrack::Timeouts;
use nfv_functions::firewall::{Firewall, FirewallConfig};
use nfv_functions::nat::{Nat, NatConfig, DEFAULT_PORTS};
use nfv_functions::router::{NeighborConfig, Route, Route6, Router, RouterConfig, RouterInterface};
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

/// Run `w` (whose sink is port `sink`) for 200 warm-up turns, then 50,000 counted turns
/// of 1 ms fake time each, timers included; assert that at least a million packets went
/// out, none was dropped, and nothing was allocated.
fn assert_steady_state_allocates_nothing(what: &str, mut w: Worker, sink: usize) {
    let mut now = Timestamp::from_secs(1);
    for _ in 0..200 {
        w.turn(now);
        w.tick(now);
        now.0 += 1_000_000;
    }
    let counters = w.graph().counters().clone();
    let before = counters.ports[sink].tx_packets.get();
    let allocs_before = ALLOCS.load(Relaxed);

    COUNTING.store(true, Relaxed);
    for _ in 0..50_000 {
        w.turn(now);
        w.tick(now);
        now.0 += 1_000_000;
    }
    COUNTING.store(false, Relaxed);

    let forwarded = counters.ports[sink].tx_packets.get() - before;
    assert!(
        forwarded >= 1_000_000,
        "{what}: only {forwarded} packets forwarded"
    );
    assert_eq!(counters.total_drops(), 0, "{what}");
    assert_eq!(
        ALLOCS.load(Relaxed) - allocs_before,
        0,
        "{what}: allocations while forwarding {forwarded} packets"
    );
}

/// One test, so that the chains never count at the same time.
#[test]
fn forwarding_allocates_nothing_per_packet() {
    switch_chain();
    gateway_chain();
    router6_chain();
}

fn switch_chain() {
    let sink_mac = MacAddr([0x02, 0xff, 0, 0, 0, 1]);
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
    let w = Worker::new(WorkerId(0), g.build(WorkerId(0)), Pool::new(1024));
    assert_steady_state_allocates_nothing("switch", w, 1);
    assert!(!rec.snapshot().is_empty(), "latency was recorded");
}

/// generator -> router -> NAT -> firewall -> sink, 1000 UDP flows: every packet is looked
/// up in both session tables, translated, and timed out by the sweep on each tick.
fn gateway_chain() {
    let ip = |s: &str| -> Ipv4Addr { s.parse().expect("address") };
    let lan_mac = MacAddr([0x02, 0xfe, 0, 0, 0, 1]);
    let mut g = GraphBuilder::new();
    let router = Router::new(RouterConfig {
        interfaces: vec![
            RouterInterface {
                name: "lan".into(),
                mac: lan_mac,
                address: Some((ip("10.0.0.1"), 24)),
                addresses6: vec![],
                ra: None,
                mtu: 1500,
                nat_outside: false,
                dhcp_relay: vec![],
            },
            RouterInterface {
                name: "wan".into(),
                mac: MacAddr([0x02, 0xfe, 0, 0, 0, 2]),
                address: Some((ip("203.0.113.2"), 24)),
                addresses6: vec![],
                ra: None,
                mtu: 1500,
                nat_outside: true,
                dhcp_relay: vec![],
            },
        ],
        routes: vec![Route {
            prefix: ip("0.0.0.0"),
            len: 0,
            via: ip("203.0.113.1"),
        }],
        neighbors: vec![(ip("203.0.113.1"), MacAddr([0x02, 0xff, 0, 0, 0, 1]))],
        routes6: vec![],
        neighbors6: vec![],
        arp: NeighborConfig::default(),
        icmp_rate: 100,
    })
    .expect("router");
    let nat = Nat::new(NatConfig {
        addresses: vec![ip("203.0.113.2")],
        ports: DEFAULT_PORTS,
        forwards: Vec::new(),
        max_sessions: 4096,
        timeouts: Timeouts::default(),
    })
    .expect("nat");
    let r = g.add_node("gw", 2, Box::new(router));
    let n = g.add_node("nat", 2, Box::new(nat));
    let f = g.add_node("fw", 2, Box::new(Firewall::new(FirewallConfig::default())));
    let gen = g.add_port(
        "gen",
        Box::new(GeneratorPort::new(GeneratorConfig {
            flows: 1000,
            dst_mac: lan_mac,
            addresses: Addresses::V4 {
                src: ip("10.0.0.10"),
                dst: ip("198.18.0.1"),
            },
            ..GeneratorConfig::default()
        })),
    );
    let sink = g.add_port("sink", Box::new(NullPort::new()));
    for (a, b) in [
        (Endpoint::Port(gen), Endpoint::Node(r, Gate(0))),
        (Endpoint::Node(r, Gate(1)), Endpoint::Node(n, Gate(0))),
        (Endpoint::Node(n, Gate(1)), Endpoint::Node(f, Gate(0))),
        (Endpoint::Node(f, Gate(1)), Endpoint::Port(sink)),
    ] {
        g.connect(a, b).expect("wire");
    }
    let w = Worker::new(WorkerId(0), g.build(WorkerId(0)), Pool::new(1024));
    assert_steady_state_allocates_nothing("gateway", w, 1);
}

/// IPv6 generator (1000 flows, 10 destinations, a UDP checksum per frame) -> router (an
/// IPv6 route, a static neighbour) -> sink with latency recording: `nfv bench router6`'s
/// path.
fn router6_chain() {
    let ip = |s: &str| -> Ipv6Addr { s.parse().expect("address") };
    let lan_mac = MacAddr([0x02, 0xfe, 0, 0, 0, 1]);
    let mut g = GraphBuilder::new();
    let interface = |name: &str, mac: MacAddr, address: &str| RouterInterface {
        name: name.into(),
        mac,
        address: None,
        addresses6: vec![(ip(address), 64)],
        ra: None,
        mtu: 1500,
        nat_outside: false,
        dhcp_relay: vec![],
    };
    let router = Router::new(RouterConfig {
        interfaces: vec![
            interface("lan", lan_mac, "fd00::1"),
            interface("wan", MacAddr([0x02, 0xfe, 0, 0, 0, 2]), "fd00:0:0:1::1"),
        ],
        routes: vec![],
        neighbors: vec![],
        routes6: vec![Route6 {
            prefix: ip("2001:db8::"),
            len: 32,
            via: ip("fd00:0:0:1::2"),
        }],
        neighbors6: vec![(ip("fd00:0:0:1::2"), MacAddr([0x02, 0xff, 0, 0, 0, 1]))],
        arp: NeighborConfig::default(),
        icmp_rate: 100,
    })
    .expect("router");
    let r = g.add_node("r", 2, Box::new(router));
    let gen = g.add_port(
        "gen",
        Box::new(GeneratorPort::new(GeneratorConfig {
            flows: 1000,
            dst_mac: lan_mac,
            addresses: Addresses::V6 {
                src: ip("fd00::10"),
                dst: ip("2001:db8::1"),
            },
            dst_flows: 10,
            dst_step: 65536,
            ..GeneratorConfig::default()
        })),
    );
    let rec = LatencyRecorder::new();
    let sink = g.add_port("sink", Box::new(NullPort::new().with_latency(rec.clone())));
    g.connect(Endpoint::Port(gen), Endpoint::Node(r, Gate(0)))
        .expect("wire");
    g.connect(Endpoint::Node(r, Gate(1)), Endpoint::Port(sink))
        .expect("wire");
    let w = Worker::new(WorkerId(0), g.build(WorkerId(0)), Pool::new(1024));
    assert_steady_state_allocates_nothing("router6", w, 1);
    assert!(!rec.snapshot().is_empty(), "latency was recorded");
}
