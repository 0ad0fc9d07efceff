//! One test per [`DropReason`]: each makes its drop really happen, through the real graph
//! runtime (`GraphBuilder`), the real functions of `nfv-functions` and real ports (in-memory
//! rings, TAP devices, a vhost-user port played by a hostile guest), and checks that the
//! counter of exactly that reason moved, where it should, by the expected amount, with no
//! other drop counted anywhere, and that the packet did not come out where it should not.
//!
//! [`every_reason_has_a_test`] names the test of every variant in an exhaustive `match`: a
//! new variant does not build until it has a test here.
//!
//! The TAP tests (`port_down`, `tx_error`) need root and `/dev/net/tun`: without them they
//! print why and pass, except under `CI=true`, where they fail. The devices they make are
//! left down (nothing reaches the kernel's stack), carry the process id in their names and
//! are removed also when the test fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nfv_dataplane::port::{RingPeer, RingPort, TapPort, VhostUserPort};
use nfv_dataplane::{
    Batch, Ctx, DropReason, Endpoint, Gate, Graph, GraphBuilder, MacAddr, Node, NodeId, Packet,
    Pool, Port, PortId, Timestamp, WorkerCounters, WorkerId,
};
use nfv_functions::dhcp::{DhcpConfig, DhcpServer, DhcpSubnet};
use nfv_functions::firewall::{Action, Firewall, FirewallConfig, PortRange, RuleSet};
use nfv_functions::ip;
use nfv_functions::nat::{Nat, NatConfig};
use nfv_functions::router::{NeighborConfig, Router, RouterConfig, RouterInterface};
use nfv_functions::{Switch, SwitchConfig, VlanMode};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

// ---------------------------------------------------------------------------------------
// The check that every reason has a test

/// `(name, test)` pairs: the test's name must be the reason's metric name.
macro_rules! test_of {
    ($f:ident) => {
        (stringify!($f), $f as fn())
    };
}

/// The test that makes `reason` happen. No wildcard arm: a new variant breaks the build
/// until a test for it is written and named here.
fn test_for(reason: DropReason) -> (&'static str, fn()) {
    match reason {
        DropReason::Runt => test_of!(runt),
        DropReason::Oversize => test_of!(oversize),
        DropReason::BadHeader => test_of!(bad_header),
        DropReason::VlanDenied => test_of!(vlan_denied),
        DropReason::Hairpin => test_of!(hairpin),
        DropReason::NoDestination => test_of!(no_destination),
        DropReason::NoBuffers => test_of!(no_buffers),
        DropReason::TxFull => test_of!(tx_full),
        DropReason::PortDown => test_of!(port_down),
        DropReason::TxError => test_of!(tx_error),
        DropReason::Unwired => test_of!(unwired),
        DropReason::QueueFull => test_of!(queue_full),
        DropReason::Internal => test_of!(internal),
        DropReason::BadChecksum => test_of!(bad_checksum),
        DropReason::NotForUs => test_of!(not_for_us),
        DropReason::NoRoute => test_of!(no_route),
        DropReason::TtlExceeded => test_of!(ttl_exceeded),
        DropReason::TooBig => test_of!(too_big),
        DropReason::ArpQueueFull => test_of!(arp_queue_full),
        DropReason::ArpFailed => test_of!(arp_failed),
        DropReason::PoolExhausted => test_of!(pool_exhausted),
        DropReason::FwDenied => test_of!(fw_denied),
        DropReason::FwRejected => test_of!(fw_rejected),
        DropReason::ConntrackFull => test_of!(conntrack_full),
        DropReason::NatNoPorts => test_of!(nat_no_ports),
        DropReason::NatNoSession => test_of!(nat_no_session),
        DropReason::GuestBadDescriptor => test_of!(guest_bad_descriptor),
        DropReason::GuestBadChain => test_of!(guest_bad_chain),
        DropReason::HopLimit => test_of!(hop_limit),
        DropReason::FragmentTimeout => test_of!(fragment_timeout),
        DropReason::FragmentsFull => test_of!(fragments_full),
        DropReason::NoSubnet => test_of!(no_subnet),
        DropReason::RelayHops => test_of!(relay_hops),
    }
}

#[test]
fn every_reason_has_a_test() {
    assert_eq!(DropReason::ALL.len(), DropReason::COUNT);
    let mut seen = Vec::new();
    for r in DropReason::ALL {
        let (name, _test) = test_for(r);
        assert_eq!(name, r.name(), "the test of {r:?} must be named after it");
        seen.push(name);
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), DropReason::COUNT, "one test per reason");
}

// ---------------------------------------------------------------------------------------
// A graph of ring ports around real nodes, and how to check its drop counters

const T0: Timestamp = Timestamp::from_secs(10);

/// A built graph, its pool, and the far end of each ring port (by port index; `None` for
/// ports that are not rings).
struct Net {
    graph: Graph,
    pool: Pool,
    peers: Vec<Option<RingPeer>>,
}

/// Builds a [`Net`]: ports and nodes are added in order, so their ids are their indices.
struct NetBuilder {
    b: GraphBuilder,
    peers: Vec<Option<RingPeer>>,
}

impl NetBuilder {
    fn new() -> Self {
        NetBuilder {
            b: GraphBuilder::new(),
            peers: Vec::new(),
        }
    }

    /// A ring port whose queues hold `capacity` packets.
    fn ring(&mut self, capacity: usize) -> PortId {
        let (port, peer) = RingPort::new(capacity);
        let id = self
            .b
            .add_port(format!("ring{}", self.peers.len()), Box::new(port));
        self.peers.push(Some(peer));
        id
    }

    /// Any other port.
    fn port(&mut self, port: Box<dyn Port>) -> PortId {
        let id = self.b.add_port(format!("port{}", self.peers.len()), port);
        self.peers.push(None);
        id
    }

    fn node(&mut self, gates: usize, node: Box<dyn Node>) -> NodeId {
        self.b.add_node("under-test", gates, node)
    }

    fn wire(&mut self, a: Endpoint, b: Endpoint) {
        if let Err(e) = self.b.connect(a, b) {
            panic!("wiring {a:?} to {b:?}: {e}");
        }
    }

    /// Wire `port` to gate `gate` of `node`.
    fn attach(&mut self, port: PortId, node: NodeId, gate: u16) {
        self.wire(Endpoint::Port(port), Endpoint::Node(node, Gate(gate)));
    }

    fn build(self, pool: usize) -> Net {
        Net {
            graph: self.b.build(WorkerId(0)),
            pool: Pool::new(pool),
            peers: self.peers,
        }
    }
}

/// One node with a ring port (of `capacity`) on each of its `gates` gates: port N on gate N.
fn single(node: Box<dyn Node>, gates: usize, capacity: usize, pool: usize) -> Net {
    let mut b = NetBuilder::new();
    let n = b.node(gates, node);
    for g in 0..gates {
        let p = b.ring(capacity);
        b.attach(p, n, g as u16);
    }
    b.build(pool)
}

impl Net {
    fn peer(&self, port: usize) -> &RingPeer {
        match &self.peers[port] {
            Some(p) => p,
            None => panic!("port {port} is not a ring port"),
        }
    }

    /// Put `frames` on port `port`'s ring and poll the port until it is empty (a burst of
    /// up to 64 frames at a time), at `now`.
    fn send(&mut self, port: usize, frames: &[Vec<u8>], now: Timestamp) {
        for f in frames {
            assert!(self.peer(port).send(f), "ring of port {port} full");
        }
        self.poll(port, now);
    }

    fn send1(&mut self, port: usize, frame: &[u8], now: Timestamp) {
        self.send(port, &[frame.to_vec()], now);
    }

    /// Poll port `port` until it receives nothing more.
    fn poll(&mut self, port: usize, now: Timestamp) {
        let id = PortId(port as u16);
        while self.graph.poll_port(id, &mut self.pool, now) > 0 {}
    }

    /// Every frame port `port` transmitted since the last call.
    fn recv(&self, port: usize) -> Vec<Vec<u8>> {
        self.peer(port).recv_all()
    }

    /// Every frame each ring port transmitted since the last call (empty for other ports).
    fn recv_each(&self) -> Vec<Vec<Vec<u8>>> {
        self.peers
            .iter()
            .map(|p| p.as_ref().map(RingPeer::recv_all).unwrap_or_default())
            .collect()
    }

    fn tick(&mut self, now: Timestamp) {
        self.graph.tick(&mut self.pool, now);
    }

    fn counters(&self) -> &WorkerCounters {
        self.graph.counters()
    }
}

/// Where a drop is counted.
#[derive(Copy, Clone, Debug)]
enum At {
    Port(usize),
    Node(usize),
}

/// Every non-zero drop counter: (where, reason, count).
fn all_drops(c: &WorkerCounters) -> Vec<(At, DropReason, u64)> {
    let mut v = Vec::new();
    for (i, p) in c.ports.iter().enumerate() {
        v.extend(p.drops.nonzero().map(|(r, n)| (At::Port(i), r, n)));
    }
    for (i, n) in c.nodes.iter().enumerate() {
        v.extend(n.drops.nonzero().map(|(r, k)| (At::Node(i), r, k)));
    }
    v
}

/// Assert that `reason` was counted exactly `expect` (where, count) and that nothing else
/// was dropped anywhere, for any reason.
fn assert_drops(c: &WorkerCounters, reason: DropReason, expect: &[(At, u64)]) {
    let all = all_drops(c);
    for &(at, n) in expect {
        let got = match at {
            At::Port(i) => c.ports[i].drops.get(reason),
            At::Node(i) => c.nodes[i].drops.get(reason),
        };
        assert_eq!(got, n, "{reason} drops at {at:?}; all drops: {all:?}");
    }
    let want: u64 = expect.iter().map(|&(_, n)| n).sum();
    assert!(want > 0, "a test must expect at least one drop");
    assert_eq!(c.drops(reason), want, "{reason} drops in all; all: {all:?}");
    assert_eq!(
        c.total_drops(),
        want,
        "drops of other reasons were counted: {all:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Frames

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

const BCAST: [u8; 6] = [0xff; 6];

/// An Ethernet frame, tagged with `vlan` if given, with a 46-byte payload.
fn eth(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>) -> Vec<u8> {
    eth_len(dst, src, vlan, 60 + if vlan.is_some() { 4 } else { 0 })
}

/// An Ethernet frame of `len` bytes in all.
fn eth_len(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x88, 0xb5]);
    let start = f.len();
    while f.len() < len {
        f.push((f.len() - start) as u8);
    }
    f
}

fn ipa(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().expect("address"))
}

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Ethernet + IPv4 (TTL `ttl`, DF set) around `l4`, header checksum set.
fn ipv4(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: u32,
    dst: u32,
    ttl: u8,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    h[6] = 0x40;
    h[8] = ttl;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    ip::set_header_checksum(&mut h);
    f.extend_from_slice(&h);
    f.extend_from_slice(l4);
    f
}

/// The TCP or UDP checksum of `seg` from `src` to `dst`.
fn l4_checksum(src: u32, dst: u32, proto: u8, seg: &[u8]) -> u16 {
    let pseudo = u64::from(src >> 16)
        + u64::from(src & 0xffff)
        + u64::from(dst >> 16)
        + u64::from(dst & 0xffff)
        + u64::from(proto)
        + seg.len() as u64;
    !ip::fold(pseudo + u64::from(ip::sum(seg)))
}

/// A UDP datagram from `src`:`sport` to `dst`:`dport` with an 18-byte payload.
fn udp(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
) -> Vec<u8> {
    let (s, d) = (ipa(src), ipa(dst));
    let mut seg = vec![0u8; 8];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg.extend_from_slice(b"drop-reasons-test!");
    let len = seg.len() as u16;
    seg[4..6].copy_from_slice(&len.to_be_bytes());
    let c = l4_checksum(s, d, PROTO_UDP, &seg);
    seg[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(dst_mac, src_mac, s, d, 64, PROTO_UDP, &seg)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// A TCP segment without payload.
fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let (s, d) = (ipa(src), ipa(dst));
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    seg[4..8].copy_from_slice(&1000u32.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg[14..16].copy_from_slice(&1024u16.to_be_bytes());
    let c = l4_checksum(s, d, PROTO_TCP, &seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4(mac(2), mac(1), s, d, 64, PROTO_TCP, &seg)
}

/// An Ethernet/IPv4 ARP message.
fn arp(op: u16, dst: [u8; 6], sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ipa(spa).to_be_bytes());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&ipa(tpa).to_be_bytes());
    f
}

/// (EtherType, IP protocol, ICMP type, ICMP code) of a frame, as far as it has them.
fn kind(f: &[u8]) -> (u16, u8, u8, u8) {
    let et = ip::read_u16(f, 12);
    if et != 0x0800 || f.len() < 36 {
        return (et, 0, 0, 0);
    }
    (et, f[23], f[34], f[35])
}

fn is_arp_request_for(f: &[u8], target: &str) -> bool {
    f.len() >= 42
        && ip::read_u16(f, 12) == 0x0806
        && ip::read_u16(f, 20) == 1
        && ip::read_u32(f, 38) == ipa(target)
}

// ---------------------------------------------------------------------------------------
// The functions under test

fn switch(attachments: Vec<VlanMode>) -> Box<Switch> {
    Box::new(Switch::new(SwitchConfig {
        mac_table_size: 1024,
        ageing: Duration::from_secs(300),
        attachments,
    }))
}

fn access(n: usize) -> Vec<VlanMode> {
    vec![VlanMode::Access(1); n]
}

/// The router's interface MACs: lan (gate 0) and wan (gate 1).
const R_LAN: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0];
const R_WAN: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
/// A host on the router's lan.
const HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];

/// A router with lan 10.0.0.1/24 (MTU 1500) on gate 0 and wan 10.0.1.1/24 (MTU 1400) on
/// gate 1, no static routes, ARP queues of `queue_len` packets.
fn router(queue_len: usize, icmp_rate: u32) -> Box<Router> {
    router_relaying(queue_len, icmp_rate, vec![])
}

/// The same router, its lan relaying DHCP to `servers`.
fn router_relaying(
    queue_len: usize,
    icmp_rate: u32,
    servers: Vec<std::net::Ipv4Addr>,
) -> Box<Router> {
    let iface = |name: &str, mac: MacAddr, addr: &str, mtu: u16| RouterInterface {
        name: name.into(),
        mac,
        address: Some((addr.parse().expect("address"), 24)),
        addresses6: vec![],
        ra: None,
        mtu,
        nat_outside: false,
        dhcp_relay: vec![],
    };
    let mut lan = iface("lan", MacAddr(R_LAN), "10.0.0.1", 1500);
    lan.dhcp_relay = servers;
    let r = Router::new(RouterConfig {
        interfaces: vec![lan, iface("wan", MacAddr(R_WAN), "10.0.1.1", 1400)],
        routes: vec![],
        neighbors: vec![],
        routes6: vec![],
        neighbors6: vec![],
        arp: NeighborConfig {
            timeout: Duration::from_secs(60),
            queue_len,
            max_entries: 1024,
        },
        icmp_rate,
    });
    Box::new(r.expect("router"))
}

/// A UDP datagram from a lan host to `dst` through the router.
fn to_router(dst: &str, ttl: u8) -> Vec<u8> {
    let mut f = udp(R_LAN, HOST, "10.0.0.10", 40000, dst, 33434);
    f[22] = ttl;
    f[24..26].fill(0);
    ip::set_header_checksum(&mut f[14..34]);
    f
}

// ---------------------------------------------------------------------------------------
// Ports and the switch

#[test]
fn runt() {
    let mut net = single(switch(access(2)), 2, 64, 64);
    // Shorter than an Ethernet header: the ring port drops it on receive.
    net.send1(0, &[0xff; 10], T0);
    // A VLAN tag cut off: long enough for the port, not for the switch.
    let mut cut = eth(BCAST, mac(1), Some(1));
    cut.truncate(16);
    net.send1(0, &cut, T0);
    assert_drops(
        net.counters(),
        DropReason::Runt,
        &[(At::Port(0), 1), (At::Node(0), 1)],
    );
    assert_eq!(
        net.counters().ports[0].rx_packets.get(),
        1,
        "only the cut frame was taken"
    );
    assert!(net.recv(1).is_empty(), "nothing is forwarded");
}

#[test]
fn oversize() {
    // An access attachment in VLAN 10 and a trunk carrying it tagged: the tag the switch
    // pushes makes a largest-size frame 4 bytes too long for the outgoing port.
    let sw = switch(vec![
        VlanMode::Access(10),
        VlanMode::Trunk {
            allowed: vec![10],
            native: None,
        },
    ]);
    let mut net = single(sw, 2, 64, 64);
    let max = nfv_dataplane::MAX_FRAME;
    let fits = eth_len(BCAST, mac(1), None, max - 4);
    net.send1(0, &fits, T0);
    let out = net.recv(1);
    assert_eq!(out.len(), 1, "a frame that still fits once tagged goes out");
    assert_eq!(out[0].len(), max);
    net.send1(0, &eth_len(BCAST, mac(1), None, max), T0);
    assert_drops(net.counters(), DropReason::Oversize, &[(At::Port(1), 1)]);
    assert!(net.recv(1).is_empty());
    assert_eq!(net.counters().ports[1].tx_packets.get(), 1);
}

#[test]
fn bad_header() {
    let mut net = single(switch(access(3)), 3, 64, 64);
    // A multicast source address.
    net.send1(0, &eth(BCAST, [0x03, 0, 0, 0, 0, 1], None), T0);
    assert_drops(net.counters(), DropReason::BadHeader, &[(At::Node(0), 1)]);
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

#[test]
fn vlan_denied() {
    // Gate 0: access VLAN 10; gate 1: trunk of VLAN 20 without a native VLAN; gate 2: access
    // VLAN 20.
    let sw = switch(vec![
        VlanMode::Access(10),
        VlanMode::Trunk {
            allowed: vec![20],
            native: None,
        },
        VlanMode::Access(20),
    ]);
    let mut net = single(sw, 3, 64, 64);
    net.send1(0, &eth(BCAST, mac(1), Some(10)), T0); // tagged on an access attachment
    net.send1(1, &eth(BCAST, mac(2), Some(10)), T0); // a VLAN the trunk does not carry
    net.send1(1, &eth(BCAST, mac(2), None), T0); // untagged on a trunk without native VLAN
    assert_drops(net.counters(), DropReason::VlanDenied, &[(At::Node(0), 3)]);
    assert!(net.recv_each().iter().all(Vec::is_empty));
    // A frame the trunk does carry goes through, untagged to the access attachment.
    net.send1(1, &eth(BCAST, mac(2), Some(20)), T0);
    assert_eq!(net.recv(2), vec![eth(BCAST, mac(2), None)]);
}

#[test]
fn hairpin() {
    let mut net = single(switch(access(3)), 3, 64, 64);
    // mac(2) announces itself on gate 1.
    net.send1(1, &eth(BCAST, mac(2), None), T0);
    assert_eq!(
        net.recv_each().iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 0, 1]
    );
    // mac(3), also behind gate 1, sends to mac(2): it would go back where it came from.
    net.send1(1, &eth(mac(2), mac(3), None), T0);
    assert_drops(net.counters(), DropReason::Hairpin, &[(At::Node(0), 1)]);
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

#[test]
fn no_destination() {
    // Alone in VLAN 5: a broadcast has nowhere to go.
    let sw = switch(vec![VlanMode::Access(5), VlanMode::Access(6)]);
    let mut net = single(sw, 2, 64, 64);
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    assert_drops(
        net.counters(),
        DropReason::NoDestination,
        &[(At::Node(0), 1)],
    );
    assert!(net.recv(1).is_empty());
}

#[test]
fn no_buffers() {
    // An empty pool: a broadcast to three other attachments goes out once, as itself; the
    // two copies cannot be made.
    let mut net = single(switch(access(4)), 4, 64, 0);
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    assert_drops(net.counters(), DropReason::NoBuffers, &[(At::Node(0), 2)]);
    let got: Vec<usize> = net.recv_each().iter().map(Vec::len).collect();
    assert_eq!(got, [0, 0, 0, 1]);
}

#[test]
fn tx_full() {
    let mut b = NetBuilder::new();
    let sw = b.node(2, switch(access(2)));
    let a = b.ring(64);
    let small = b.ring(10);
    b.attach(a, sw, 0);
    b.attach(small, sw, 1);
    let mut net = b.build(64);
    // One burst of 30 frames into a ring with room for 10.
    let frames: Vec<Vec<u8>> = (0..30).map(|_| eth(BCAST, mac(1), None)).collect();
    net.send(0, &frames, T0);
    assert_drops(net.counters(), DropReason::TxFull, &[(At::Port(1), 20)]);
    assert_eq!(net.recv(1).len(), 10);
    assert_eq!(net.counters().ports[1].tx_packets.get(), 10);
}

#[test]
fn unwired() {
    let mut b = NetBuilder::new();
    let sw = b.node(3, switch(access(3)));
    let p0 = b.ring(64);
    let p1 = b.ring(64);
    let loose = b.ring(64);
    b.attach(p0, sw, 0);
    b.attach(p1, sw, 1);
    // Gate 2 of the switch and port 2 have no wire.
    let mut net = b.build(64);
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    assert_eq!(net.recv(1).len(), 1, "the wired attachment gets the flood");
    net.send1(loose.index(), &eth(BCAST, mac(2), None), T0);
    assert_drops(
        net.counters(),
        DropReason::Unwired,
        &[(At::Node(0), 1), (At::Port(2), 1)],
    );
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

/// Leaves every packet in its batch: the runtime must count them.
struct Forgetful;

impl Node for Forgetful {
    fn kind(&self) -> &'static str {
        "forgetful"
    }

    fn process(&mut self, _input: Gate, _batch: &mut Batch, _ctx: &mut Ctx<'_>) {}
}

#[test]
fn internal() {
    let mut net = single(Box::new(Forgetful), 2, 64, 64);
    // Frames in buffers of the graph's own pool, to see them come back.
    for i in 0..3 {
        let mut p = net.pool.alloc().expect("a buffer");
        assert!(p.set_frame(&eth(BCAST, mac(i), None)));
        assert!(net.peer(0).send_packet(p).is_ok());
    }
    assert_eq!(net.pool.available(), 64 - 3);
    net.poll(0, T0);
    assert_drops(net.counters(), DropReason::Internal, &[(At::Node(0), 3)]);
    assert_eq!(net.counters().nodes[0].packets_in.get(), 3);
    assert!(net.recv_each().iter().all(Vec::is_empty));
    assert_eq!(
        net.pool.available(),
        64,
        "their buffers went back to the pool"
    );
}

// ---------------------------------------------------------------------------------------
// The graph runtime

#[test]
fn queue_full() {
    // A router's ARP queues hold 2 packets for each of 64 unresolved wan neighbours. One
    // burst of 64 ARP replies releases 128 packets onto the wan gate in one call of the
    // node: its queue holds a burst (64), the other 64 are dropped there.
    let mut net = single(router(2, 0), 2, 256, 1024);
    let hosts: Vec<String> = (0..64).map(|i| format!("10.0.1.{}", 10 + i)).collect();
    let datagrams: Vec<Vec<u8>> = hosts.iter().map(|h| to_router(h, 64)).collect();
    net.send(0, &datagrams, T0);
    let requests = net.recv(1);
    assert_eq!(requests.len(), 64, "one ARP request per neighbour");
    net.send(0, &datagrams, T0);
    assert!(net.recv(1).is_empty(), "the second packets wait too");
    let replies: Vec<Vec<u8>> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            arp(
                2,
                R_WAN,
                [0x02, 0xbb, 0, 0, 0, i as u8],
                h,
                R_WAN,
                "10.0.1.1",
            )
        })
        .collect();
    net.send(1, &replies, T0);
    assert_drops(net.counters(), DropReason::QueueFull, &[(At::Node(0), 64)]);
    let out = net.recv(1);
    assert_eq!(out.len(), 64, "a burst's worth went out");
    assert!(out.iter().all(|f| kind(f).1 == PROTO_UDP));
    assert!(net.recv(0).is_empty());
}

#[test]
fn hop_limit() {
    // Two switches wired twice (attachments 1 and 2 of each), a ring port on attachment 0 of
    // each: a loop the loader refuses, built in code. One broadcast: the copy each switch
    // sends round the loop comes back as one copy at every turn. Once the run has made one
    // node call per wire end (8 here: two ports, three gates on each switch), hops are
    // counted, and each circulating copy is dropped as it would enter its HOP_LIMIT+1st
    // node after that: one at x, one at y.
    let mut nb = NetBuilder::new();
    let (x, y) = (nb.node(3, switch(access(3))), nb.node(3, switch(access(3))));
    let (a, b) = (nb.ring(1024), nb.ring(1024));
    nb.attach(a, x, 0);
    nb.attach(b, y, 0);
    for g in [1, 2] {
        nb.wire(Endpoint::Node(x, Gate(g)), Endpoint::Node(y, Gate(g)));
    }
    let mut net = nb.build(256);
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    assert_drops(
        net.counters(),
        DropReason::HopLimit,
        &[(At::Node(0), 1), (At::Node(1), 1)],
    );
    let limit = usize::from(nfv_dataplane::HOP_LIMIT);
    let out = net.recv_each();
    // The calls alternate x, y: 4 of the first 8 are y's, then HOP_LIMIT more hops.
    assert_eq!(
        out[1].len(),
        4 + limit,
        "y sent b a copy at each of its calls"
    );
    assert_eq!(
        out[0].len(),
        3 + limit,
        "x sent a a copy at each of its calls but the first"
    );
}

// ---------------------------------------------------------------------------------------
// The router

#[test]
fn bad_checksum() {
    let mut net = single(router(4, 100), 2, 64, 64);
    let mut f = to_router("10.0.1.10", 64);
    f[24] ^= 0x55;
    net.send1(0, &f, T0);
    assert_drops(net.counters(), DropReason::BadChecksum, &[(At::Node(0), 1)]);
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

#[test]
fn not_for_us() {
    let mut net = single(router(4, 100), 2, 64, 64);
    // Unicast to another MAC on the segment.
    let mut f = to_router("10.0.1.10", 64);
    f[0..6].copy_from_slice(&mac(77));
    net.send1(0, &f, T0);
    assert_drops(net.counters(), DropReason::NotForUs, &[(At::Node(0), 1)]);
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

#[test]
fn no_route() {
    let mut net = single(router(4, 100), 2, 64, 64);
    net.send1(0, &to_router("203.0.113.9", 64), T0);
    assert_drops(net.counters(), DropReason::NoRoute, &[(At::Node(0), 1)]);
    let back = net.recv(0);
    assert_eq!(back.len(), 1, "ICMP destination unreachable");
    assert_eq!(kind(&back[0]), (0x0800, PROTO_ICMP, 3, 0));
    assert!(net.recv(1).is_empty());
}

#[test]
fn ttl_exceeded() {
    let mut net = single(router(4, 100), 2, 64, 64);
    net.send1(0, &to_router("10.0.1.10", 1), T0);
    assert_drops(net.counters(), DropReason::TtlExceeded, &[(At::Node(0), 1)]);
    let back = net.recv(0);
    assert_eq!(back.len(), 1, "ICMP time exceeded");
    assert_eq!(kind(&back[0]), (0x0800, PROTO_ICMP, 11, 0));
    assert!(net.recv(1).is_empty());
}

#[test]
fn too_big() {
    let mut net = single(router(4, 100), 2, 64, 64);
    // 1500 bytes with DF towards the wan, whose MTU is 1400.
    let mut f = to_router("10.0.1.10", 64);
    let grow = 1500 - (f.len() - 14);
    f.resize(f.len() + grow, 0x5a);
    f[16..18].copy_from_slice(&1500u16.to_be_bytes());
    f[24..26].fill(0);
    ip::set_header_checksum(&mut f[14..34]);
    net.send1(0, &f, T0);
    assert_drops(net.counters(), DropReason::TooBig, &[(At::Node(0), 1)]);
    let back = net.recv(0);
    assert_eq!(back.len(), 1, "ICMP fragmentation needed");
    assert_eq!(kind(&back[0]), (0x0800, PROTO_ICMP, 3, 4));
    assert_eq!(ip::read_u16(&back[0], 34 + 6), 1400, "next-hop MTU");
    assert!(net.recv(1).is_empty());
}

#[test]
fn arp_queue_full() {
    let mut net = single(router(2, 100), 2, 64, 64);
    let f = to_router("10.0.1.10", 64);
    net.send(0, &[f.clone(), f.clone(), f], T0);
    assert_drops(
        net.counters(),
        DropReason::ArpQueueFull,
        &[(At::Node(0), 1)],
    );
    let wan = net.recv(1);
    assert_eq!(wan.len(), 1);
    assert!(is_arp_request_for(&wan[0], "10.0.1.10"));
    assert!(net.recv(0).is_empty());
}

#[test]
fn arp_failed() {
    let mut net = single(router(4, 100), 2, 64, 64);
    net.tick(T0); // the gratuitous ARPs of a starting router
    net.recv_each();
    net.send1(0, &to_router("10.0.1.10", 64), T0);
    // Nobody answers: a request now, two more a second apart, then the packet fails.
    for s in 1..=3 {
        net.tick(T0.plus(Duration::from_secs(s)));
    }
    assert_drops(net.counters(), DropReason::ArpFailed, &[(At::Node(0), 1)]);
    let wan = net.recv(1);
    assert_eq!(wan.len(), 3);
    assert!(wan.iter().all(|f| is_arp_request_for(f, "10.0.1.10")));
    let back = net.recv(0);
    assert_eq!(back.len(), 1, "ICMP host unreachable");
    assert_eq!(kind(&back[0]), (0x0800, PROTO_ICMP, 3, 1));
}

// ---------------------------------------------------------------------------------------
// The DHCP server

/// A DHCPDISCOVER from `client`, broadcast.
fn discover(client: [u8; 6], xid: u32) -> Vec<u8> {
    let mut d = vec![0u8; 240];
    d[0] = 1; // BOOTREQUEST
    d[1] = 1; // Ethernet
    d[2] = 6;
    d[4..8].copy_from_slice(&xid.to_be_bytes());
    d[28..34].copy_from_slice(&client);
    d[236..240].copy_from_slice(&0x6382_5363u32.to_be_bytes());
    d.extend_from_slice(&[53, 1, 1, 255]);
    d.resize(300, 0);
    let mut seg = vec![0u8; 8];
    seg[0..2].copy_from_slice(&68u16.to_be_bytes());
    seg[2..4].copy_from_slice(&67u16.to_be_bytes());
    seg[4..6].copy_from_slice(&((8 + d.len()) as u16).to_be_bytes());
    seg.extend_from_slice(&d);
    ipv4(BCAST, client, 0, u32::MAX, 64, PROTO_UDP, &seg)
}

/// A DHCP server at 10.0.0.2/24 whose pool runs from 10.0.0.100 to `last`.
fn dhcp_config(last: &str) -> DhcpConfig {
    DhcpConfig {
        mac: MacAddr([0x02, 0xd0, 0, 0, 0, 1]),
        address: "10.0.0.2".parse().expect("address"),
        own: DhcpSubnet {
            network: "10.0.0.0".parse().expect("a"),
            prefix_len: 24,
            pools: vec![("10.0.0.100".parse().expect("a"), last.parse().expect("a"))],
            router: None,
            dns: vec![],
            domain: None,
            lease: Duration::from_secs(600),
            renew: None,
            rebind: None,
            options: vec![],
        },
        reservations: vec![],
        offer_hold: Duration::from_secs(30),
        wall_at_zero: 1_700_000_000,
        gateway: None,
        subnets: vec![],
    }
}

#[test]
fn pool_exhausted() {
    let cfg = dhcp_config("10.0.0.100");
    let server = DhcpServer::new(cfg, vec![], None);
    let stats = server.stats();
    // Two clients and the server on a switch.
    let mut b = NetBuilder::new();
    let sw = b.node(3, switch(access(3)));
    let dhcp = b.node(1, Box::new(server));
    let c1 = b.ring(64);
    let c2 = b.ring(64);
    b.attach(c1, sw, 0);
    b.attach(c2, sw, 1);
    b.wire(Endpoint::Node(sw, Gate(2)), Endpoint::Node(dhcp, Gate(0)));
    let mut net = b.build(64);
    net.send1(0, &discover(mac(1), 1), T0);
    let offer = net.recv(0);
    assert_eq!(offer.len(), 1, "the first client gets the one address");
    assert_eq!(
        ip::read_u32(&offer[0], 14 + 20 + 8 + 16),
        ipa("10.0.0.100"),
        "yiaddr"
    );
    assert_eq!(
        net.recv(1).len(),
        1,
        "the second client saw the broadcast DISCOVER"
    );
    net.send1(1, &discover(mac(2), 2), T0.plus(Duration::from_secs(1)));
    assert_drops(
        net.counters(),
        DropReason::PoolExhausted,
        &[(At::Node(dhcp.index()), 1)],
    );
    assert_eq!(stats.pool_exhausted.get(), 1);
    assert!(net.recv(1).is_empty(), "no offer for the second client");
    assert_eq!(net.recv(0).len(), 1, "only its broadcast DISCOVER");
}

#[test]
fn no_subnet() {
    let mut cfg = dhcp_config("10.0.0.110");
    cfg.gateway = Some("10.0.0.1".parse().expect("a"));
    let server = DhcpServer::new(cfg, vec![], None);
    let stats = server.stats();
    let mut net = single(Box::new(server), 1, 64, 64);
    // Relayed from 10.9.0.1, a subnet the server does not serve.
    let mut f = discover(mac(1), 1);
    f[14 + 20 + 8 + 24..14 + 20 + 8 + 28].copy_from_slice(&[10, 9, 0, 1]);
    net.send1(0, &f, T0);
    assert_drops(net.counters(), DropReason::NoSubnet, &[(At::Node(0), 1)]);
    assert_eq!(stats.relayed.get(), 1);
    assert!(net.recv(0).is_empty(), "no offer, no ARP");
}

#[test]
fn relay_hops() {
    let mut net = single(
        router_relaying(4, 100, vec!["10.0.1.9".parse().expect("a")]),
        2,
        64,
        64,
    );
    net.tick(T0); // the gratuitous ARPs of a starting router
    net.recv_each();
    // A DISCOVER that says it crossed 17 relays already.
    let mut f = discover(HOST, 1);
    f[14 + 20 + 8 + 3] = 17;
    net.send1(0, &f, T0);
    assert_drops(net.counters(), DropReason::RelayHops, &[(At::Node(0), 1)]);
    assert!(
        net.recv(1).is_empty(),
        "nothing relayed (no ARP for the server either)"
    );
    // With 16 it goes on: the router asks for the server's MAC.
    f[14 + 20 + 8 + 3] = 16;
    net.send1(0, &f, T0);
    assert_eq!(net.recv(1).len(), 1);
}

// ---------------------------------------------------------------------------------------
// The firewall and the NAT (gate 0 inside, gate 1 outside)

const INSIDE_HOST: &str = "192.168.1.10";
const OUTSIDE_HOST: &str = "198.51.100.7";

#[test]
fn fw_denied() {
    // By default nothing unsolicited comes in.
    let mut net = single(
        Box::new(Firewall::new(FirewallConfig::default())),
        2,
        64,
        64,
    );
    net.send1(1, &tcp(OUTSIDE_HOST, 5555, INSIDE_HOST, 22, SYN), T0);
    assert_drops(net.counters(), DropReason::FwDenied, &[(At::Node(0), 1)]);
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

#[test]
fn fw_rejected() {
    let cfg = FirewallConfig {
        outbound: RuleSet {
            default: Action::Reject,
            rules: vec![],
        },
        ..FirewallConfig::default()
    };
    let mut net = single(Box::new(Firewall::new(cfg)), 2, 64, 64);
    net.send1(
        0,
        &udp(mac(2), mac(1), INSIDE_HOST, 9999, OUTSIDE_HOST, 53),
        T0,
    );
    assert_drops(net.counters(), DropReason::FwRejected, &[(At::Node(0), 1)]);
    let back = net.recv(0);
    assert_eq!(back.len(), 1, "ICMP port unreachable to the sender");
    assert_eq!(kind(&back[0]), (0x0800, PROTO_ICMP, 3, 3));
    assert!(net.recv(1).is_empty());
}

#[test]
fn conntrack_full() {
    let cfg = FirewallConfig {
        max_connections: 1,
        ..FirewallConfig::default()
    };
    let mut net = single(Box::new(Firewall::new(cfg)), 2, 64, 64);
    // One connection, seen both ways (so it is not half-open and cannot be evicted).
    let out1 = udp(mac(2), mac(1), INSIDE_HOST, 1111, OUTSIDE_HOST, 53);
    net.send1(0, &out1, T0);
    assert_eq!(net.recv(1), vec![out1]);
    let reply = udp(mac(1), mac(2), OUTSIDE_HOST, 53, INSIDE_HOST, 1111);
    net.send1(1, &reply, T0);
    assert_eq!(net.recv(0), vec![reply]);
    // A second one finds the table full.
    net.send1(
        0,
        &udp(mac(2), mac(1), INSIDE_HOST, 2222, OUTSIDE_HOST, 53),
        T0,
    );
    assert_drops(
        net.counters(),
        DropReason::ConntrackFull,
        &[(At::Node(0), 1)],
    );
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

fn nat(ports: PortRange) -> Box<Nat> {
    let cfg = NatConfig {
        addresses: vec!["203.0.113.2".parse().expect("address")],
        ports,
        forwards: vec![],
        max_sessions: 1024,
        timeouts: Default::default(),
    };
    Box::new(Nat::new(cfg).expect("nat"))
}

#[test]
fn nat_no_ports() {
    // One outside port: the first flow takes it, the second finds none.
    let mut net = single(nat(PortRange::one(5000)), 2, 64, 64);
    net.send1(
        0,
        &udp(mac(2), mac(1), "192.168.1.10", 40000, OUTSIDE_HOST, 53),
        T0,
    );
    let out = net.recv(1);
    assert_eq!(out.len(), 1);
    assert_eq!(ip::read_u32(&out[0], 26), ipa("203.0.113.2"), "masqueraded");
    assert_eq!(ip::read_u16(&out[0], 34), 5000);
    net.send1(
        0,
        &udp(mac(2), mac(1), "192.168.1.11", 40000, OUTSIDE_HOST, 53),
        T0,
    );
    assert_drops(net.counters(), DropReason::NatNoPorts, &[(At::Node(0), 1)]);
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

#[test]
fn nat_no_session() {
    // A TCP segment from the inside of a connection the NAT never saw open (no SYN): it
    // has no session to be translated by and may not open one.
    let mut net = single(nat(nfv_functions::nat::DEFAULT_PORTS), 2, 64, 64);
    net.send1(0, &tcp(INSIDE_HOST, 40000, OUTSIDE_HOST, 80, ACK), T0);
    assert_drops(
        net.counters(),
        DropReason::NatNoSession,
        &[(At::Node(0), 1)],
    );
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

/// The later fragment (offset 8 bytes, the last) of the IPv4 datagram in frame `f` (an
/// untagged frame with a 20-byte header), identification `id`: its data after the first 8.
fn later_fragment(f: &[u8], id: u16) -> Vec<u8> {
    let mut g = f[..34].to_vec();
    g.extend_from_slice(&f[42..]);
    let total = (g.len() - 14) as u16;
    g[16..18].copy_from_slice(&total.to_be_bytes());
    g[18..20].copy_from_slice(&id.to_be_bytes());
    g[20..22].copy_from_slice(&1u16.to_be_bytes());
    ip::set_header_checksum(&mut g[14..34]);
    g
}

#[test]
fn fragment_timeout() {
    // A firewall holds a later fragment whose first fragment has not come; it never comes.
    let mut net = single(
        Box::new(Firewall::new(FirewallConfig::default())),
        2,
        64,
        64,
    );
    let reply = udp(mac(1), mac(2), OUTSIDE_HOST, 53, INSIDE_HOST, 1111);
    net.send1(1, &later_fragment(&reply, 7), T0);
    net.tick(T0.plus(Duration::from_secs(1)));
    assert!(
        all_drops(net.counters()).is_empty(),
        "held, not yet dropped"
    );
    // The table is swept an eighth a tick.
    for ms in 0..8 {
        net.tick(T0.plus(Duration::from_millis(2001 + ms)));
    }
    assert_drops(
        net.counters(),
        DropReason::FragmentTimeout,
        &[(At::Node(0), 1)],
    );
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

#[test]
fn fragments_full() {
    // A NAT holds at most 64 early fragments of one datagram: the 65th is refused.
    let mut net = single(nat(nfv_functions::nat::DEFAULT_PORTS), 2, 128, 256);
    let reply = udp(mac(1), mac(2), OUTSIDE_HOST, 53, "203.0.113.2", 1111);
    let later = later_fragment(&reply, 7);
    for _ in 0..=nfv_functions::fragments::HELD_PER_DATAGRAM {
        net.send1(1, &later, T0);
    }
    assert_drops(
        net.counters(),
        DropReason::FragmentsFull,
        &[(At::Node(0), 1)],
    );
    assert!(net.recv_each().iter().all(Vec::is_empty));
}

// ---------------------------------------------------------------------------------------
// A vhost-user port and a hostile guest

/// The guest's transmit queue (the port receives from it): 16 entries.
const TXQ_DESC: u64 = 0x0000;
const TXQ_AVAIL: u64 = 0x1000;
const TXQ_USED: u64 = 0x2000;
/// The guest's receive queue (unused here).
const RXQ_DESC: u64 = 0x8000;
const RXQ_AVAIL: u64 = 0x9000;
const RXQ_USED: u64 = 0xa000;
const QSIZE: u16 = 16;
/// Where the guest keeps its frames.
const BUFS: u64 = 0x10_0000;
/// The size of the guest's memory.
const GUEST_MEM: usize = 0x40_0000;
const F_NEXT: u16 = 1;
/// Bytes of `virtio_net_hdr` before each frame (mergeable receive buffers).
const VNET_HDR: usize = 12;

/// A guest: its memory and how many chains it made available on its transmit queue.
struct Guest {
    mem: GuestMemoryMmap,
    avail: u16,
}

impl Guest {
    fn new() -> Self {
        let mem =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), GUEST_MEM)]).expect("guest memory");
        Guest { mem, avail: 0 }
    }

    fn write(&self, at: u64, bytes: &[u8]) {
        self.mem
            .write_slice(bytes, GuestAddress(at))
            .expect("write guest memory");
    }

    /// Write descriptor `idx` of the transmit queue.
    fn desc(&self, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.write(TXQ_DESC + 16 * u64::from(idx), &d);
    }

    /// Put a frame (behind its header) at `at`; returns the bytes the descriptor covers.
    fn frame(&self, at: u64, frame: &[u8]) -> u32 {
        self.write(at, &[0u8; VNET_HDR]);
        self.write(at + VNET_HDR as u64, frame);
        (VNET_HDR + frame.len()) as u32
    }

    /// Make the chain at `head` available on the transmit queue.
    fn make_available(&mut self, head: u16) {
        let slot = TXQ_AVAIL + 4 + 2 * u64::from(self.avail % QSIZE);
        self.write(slot, &head.to_le_bytes());
        self.avail = self.avail.wrapping_add(1);
        self.write(TXQ_AVAIL + 2, &self.avail.to_le_bytes());
    }

    /// The transmit queue's used index and the (head, length) of used entry `i`.
    fn used(&self, i: u16) -> (u16, (u32, u32)) {
        let idx: u16 = self
            .mem
            .read_obj(GuestAddress(TXQ_USED + 2))
            .expect("used idx");
        let at = TXQ_USED + 4 + 8 * u64::from(i % QSIZE);
        let id: u32 = self.mem.read_obj(GuestAddress(at)).expect("used id");
        let len: u32 = self.mem.read_obj(GuestAddress(at + 4)).expect("used len");
        (u16::from_le(idx), (u32::from_le(id), u32::from_le(len)))
    }

    /// A port attached to this guest (port 0), wired straight to a ring port (port 1).
    fn attach(&self) -> Net {
        let port = VhostUserPort::detached(
            self.mem.clone(),
            [
                (QSIZE, RXQ_DESC, RXQ_AVAIL, RXQ_USED),
                (QSIZE, TXQ_DESC, TXQ_AVAIL, TXQ_USED),
            ],
            true,
            false,
            1500,
        )
        .expect("detached vhost-user port");
        let mut b = NetBuilder::new();
        let v = b.port(Box::new(port));
        let r = b.ring(64);
        b.wire(Endpoint::Port(v), Endpoint::Port(r));
        b.build(64)
    }
}

#[test]
fn guest_bad_descriptor() {
    let mut g = Guest::new();
    let good = eth(BCAST, mac(1), None);
    let n = g.frame(BUFS, &good);
    // Chain 0: a buffer far outside the guest's memory. Chain 1: a good frame.
    g.desc(0, 0x4000_0000, 100, 0, 0);
    g.desc(1, BUFS, n, 0, 0);
    g.make_available(0);
    g.make_available(1);
    let mut net = g.attach();
    net.poll(0, T0);
    assert_drops(
        net.counters(),
        DropReason::GuestBadDescriptor,
        &[(At::Port(0), 1)],
    );
    assert_eq!(net.recv(1), vec![good], "the good frame still passes");
    assert_eq!(
        g.used(0),
        (2, (0, 0)),
        "the bad chain went back used, empty"
    );
    assert_eq!(g.used(1).1, (1, 0));
}

#[test]
fn guest_bad_chain() {
    let mut g = Guest::new();
    let good = eth(BCAST, mac(1), None);
    let n = g.frame(BUFS, &good);
    // Chain 0: a descriptor whose next is itself, a loop. Chain 1: a good frame.
    g.desc(0, BUFS, n, F_NEXT, 0);
    g.desc(1, BUFS, n, 0, 0);
    g.make_available(0);
    g.make_available(1);
    let mut net = g.attach();
    net.poll(0, T0);
    assert_drops(
        net.counters(),
        DropReason::GuestBadChain,
        &[(At::Port(0), 1)],
    );
    assert_eq!(net.recv(1), vec![good], "the good frame still passes");
    assert_eq!(
        g.used(0),
        (2, (0, 0)),
        "the looping chain went back used, empty"
    );
}

// ---------------------------------------------------------------------------------------
// TAP devices (root)

static TAPS: AtomicU32 = AtomicU32::new(0);

/// A TAP device name unique to this process and test.
fn tap_name() -> String {
    let n = TAPS.fetch_add(1, Ordering::Relaxed);
    // At most 15 characters: "nfvdr" + 2 + 6.
    format!("nfvdr{n}p{}", std::process::id() % 1_000_000)
}

fn device_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn ip_link(args: &[&str]) {
    let st = Command::new("ip")
        .arg("link")
        .args(args)
        .status()
        .expect("run ip");
    assert!(st.success(), "ip link {args:?} failed");
}

/// Removes the TAP device when dropped, also when the test fails.
struct TapGuard(String);

impl Drop for TapGuard {
    fn drop(&mut self) {
        if device_exists(&self.0) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
}

/// A TAP port on a new device whose link is down (so nothing reaches the kernel's stack).
fn tap() -> Option<(TapGuard, TapPort)> {
    if !common::lab_available(&[]) {
        return None;
    }
    let name = tap_name();
    let port = TapPort::create(&name, 1500, true).expect("create TAP device");
    let guard = TapGuard(port.name().to_string());
    assert_eq!(port.name(), name);
    ip_link(&["set", "dev", &name, "down"]);
    Some((guard, port))
}

#[test]
fn port_down() {
    let Some((guard, port)) = tap() else { return };
    // ring -> switch -> TAP.
    let mut b = NetBuilder::new();
    let sw = b.node(2, switch(access(2)));
    let r = b.ring(64);
    let t = b.port(Box::new(port));
    b.attach(r, sw, 0);
    b.attach(t, sw, 1);
    let mut net = b.build(64);
    // The link is down: the kernel refuses the frame with EIO.
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    assert_drops(net.counters(), DropReason::PortDown, &[(At::Port(1), 1)]);
    // The device is deleted under the port: EBADFD, and the port stays dead.
    ip_link(&["del", &guard.0]);
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    net.poll(1, T0);
    assert_drops(net.counters(), DropReason::PortDown, &[(At::Port(1), 3)]);
    assert_eq!(net.counters().ports[1].tx_packets.get(), 0);
    assert_eq!(net.counters().ports[1].rx_packets.get(), 0);
}

/// A TAP port with offloads keeps a spare super-frame buffer between bursts; a port that
/// leaves the graph gives it back (else every reload that removes one would leak 64 KB out
/// of the pool, and super-frames would end up dropped for want of buffers).
#[test]
fn a_port_that_leaves_gives_its_spare_buffer_back() {
    let Some((_guard, mut port)) = tap() else {
        return;
    };
    let mut pool = Pool::new(8);
    pool.reserve_super(2);
    let all = pool.super_available();
    let counters = nfv_dataplane::counters::PortCounters::default();
    let mut batch = Batch::new();
    port.rx_burst(&mut pool, &mut batch, &counters);
    assert_eq!(batch.len(), 0, "nothing to read");
    assert_eq!(pool.super_available(), all - 1, "the spare is taken");
    port.release(&mut pool);
    assert_eq!(pool.super_available(), all, "and given back");
}

#[test]
fn tx_error() {
    let Some((guard, port)) = tap() else { return };
    // A ring port wired straight to the TAP port. A frame shorter than an Ethernet header
    // cannot arrive through a port (they drop it as `runt`), but the control plane may
    // inject one; the kernel refuses it with EINVAL, which is no known condition.
    let mut b = NetBuilder::new();
    let r = b.ring(64);
    let t = b.port(Box::new(port));
    b.wire(Endpoint::Port(r), Endpoint::Port(t));
    let mut net = b.build(64);
    let pkt = Packet::from_bytes(&[0xff; 10]).expect("packet");
    net.graph.inject(r, pkt, &mut net.pool, T0);
    assert_drops(net.counters(), DropReason::TxError, &[(At::Port(1), 1)]);
    assert_eq!(net.counters().ports[1].tx_packets.get(), 0);
    // The port is not dead: a real frame is refused for the link being down, not as an error.
    net.send1(0, &eth(BCAST, mac(1), None), T0);
    assert_eq!(net.counters().ports[1].drops.get(DropReason::PortDown), 1);
    assert_eq!(net.counters().ports[1].drops.get(DropReason::TxError), 1);
    assert!(device_exists(&guard.0));
}
