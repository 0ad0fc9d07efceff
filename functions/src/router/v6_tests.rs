//! The router's IPv6 half driven through a [`Harness`] with frames built by hand: Neighbor
//! Discovery, forwarding, ICMPv6 errors and echo, router advertisements, the neighbour
//! cache's states, the tables, and malformed input.
//!
//! The router is the one a topology file gives (so the advertisement defaults are the
//! loader's): `lan` 2001:db8:0::1/64, which advertises (a /64 facing no gateway), and `wan`
//! 2001:db8:1::1/64 with MTU 1400 and a static route 2001:db8:2::/48 via 2001:db8:1::fe,
//! which does not (it faces a router).

use std::net::Ipv6Addr;

use nfv_dataplane::testing::Harness;
use nfv_dataplane::{Cell, DropReason, Node, Timestamp};

use super::icmp6::{self, ALL_NODES};
use super::tests::{config, harness, ip_frame, t, GW, H0, H1, R0, R1};
use super::*;
use crate::ip;
use crate::kind::{BuildContext, Problems};
use crate::testframes::{column, text, Rng, Shared};

/// The router's IPv6 settings as a topology file writes them.
const TOPOLOGY: &str = r#"{
  interfaces: {
    lan: { address: "2001:db8:0::1/64", mac: "02:aa:00:00:00:00" },
    wan: { address: "2001:db8:1::1/64", mac: "02:aa:00:00:00:01", mtu: 1400 }
  },
  routes: [{ to: "2001:db8:2::/48", via: "2001:db8:1::fe" }]
}"#;

fn a(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap_or_else(|e| panic!("{s}: {e}")))
}

fn spec() -> RouterSpec {
    let mut p = Problems::default();
    RouterSpec::load(TOPOLOGY, &mut p).unwrap_or_else(|| panic!("{:?}", p.0))
}

fn config6() -> RouterConfig {
    spec().config(&BuildContext {
        topology: "t",
        function: "gw",
        leases: None,
    })
}

/// The router's addresses and the hosts around it.
fn lan_ip() -> u128 {
    a("2001:db8::1")
}
fn wan_ip() -> u128 {
    a("2001:db8:1::1")
}
fn gw_ip() -> u128 {
    a("2001:db8:1::fe")
}
/// A host on lan (MAC H0).
fn host() -> u128 {
    a("2001:db8::5")
}
/// The same host's link-local address.
fn host_ll() -> u128 {
    a("fe80::10")
}
/// Behind the gateway.
fn far() -> u128 {
    a("2001:db8:2::5")
}
/// A host on wan (MAC H1).
fn near() -> u128 {
    a("2001:db8:1::9")
}
fn ll0() -> u128 {
    icmp6::link_local(MacAddr(R0))
}
fn ll1() -> u128 {
    icmp6::link_local(MacAddr(R1))
}

fn mac_of(group: u128) -> [u8; 6] {
    icmp6::multicast_mac(group).0
}

/// A router for `cfg` whose start (unsolicited advertisements) is out of the way.
fn started(cfg: RouterConfig) -> Harness {
    let mut h = harness(cfg);
    h.tick(t(0));
    h.recv_each();
    h
}

/// The same, shared so its tables can be read.
fn started_shared(cfg: RouterConfig) -> (Harness, Shared<Router>, Arc<RouterStats>) {
    let r = Router::new(cfg).expect("router");
    let stats = r.stats();
    let r = Shared::new(r);
    let mut h = Harness::new(Box::new(r.clone()), 2, 64);
    h.tick(t(0));
    h.recv_each();
    (h, r, stats)
}

/// Ethernet + IPv6 + `payload` (the payload length is the payload's).
fn v6_frame(
    (dst_mac, src_mac): ([u8; 6], [u8; 6]),
    (src, dst): (u128, u128),
    hops: u8,
    next: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(next);
    f.push(hops);
    f.extend_from_slice(&src.to_be_bytes());
    f.extend_from_slice(&dst.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ICMPv6 message `ty`/`code` with `body` after its checksum, sealed for `src` to `dst`.
fn icmp_msg(src: u128, dst: u128, ty: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(body);
    let c = icmp6::checksum(src, dst, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// A UDP datagram with its checksum.
fn udp(src: u128, dst: u128, data: &[u8]) -> Vec<u8> {
    let len = 8 + data.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&4000u16.to_be_bytes());
    m.extend_from_slice(&33434u16.to_be_bytes());
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(data);
    let c = !ip::fold(icmp6::pseudo_sum(src, dst, len, PROTO_UDP) + u64::from(ip::sum(&m)));
    m[6..8].copy_from_slice(&c.to_be_bytes());
    m
}

/// Ethernet + IPv6 + UDP from `src` to `dst`.
fn udp_frame(macs: ([u8; 6], [u8; 6]), src: u128, dst: u128, hops: u8, data: &[u8]) -> Vec<u8> {
    v6_frame(macs, (src, dst), hops, PROTO_UDP, &udp(src, dst, data))
}

/// Ethernet + IPv6 + ICMPv6 with hop limit `hops`.
fn icmp_frame(
    macs: ([u8; 6], [u8; 6]),
    (src, dst): (u128, u128),
    hops: u8,
    (ty, code): (u8, u8),
    body: &[u8],
) -> Vec<u8> {
    let m = icmp_msg(src, dst, ty, code, body);
    v6_frame(macs, (src, dst), hops, icmp6::PROTO_ICMPV6, &m)
}

/// A link-layer address option.
fn ll_opt(ty: u8, mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![ty, 1];
    o.extend_from_slice(&mac);
    o
}

/// The body of a neighbor solicitation for `target` (after the checksum).
fn ns_body(target: u128, sll: Option<[u8; 6]>) -> Vec<u8> {
    let mut b = vec![0; 4];
    b.extend_from_slice(&target.to_be_bytes());
    if let Some(m) = sll {
        b.extend_from_slice(&ll_opt(1, m));
    }
    b
}

/// A neighbor solicitation from `src` (`src_mac`, carried as its SLL unless DAD) for
/// `target`, to `target`'s solicited-node group.
fn ns_frame(src_mac: [u8; 6], src: u128, target: u128) -> Vec<u8> {
    let group = icmp6::solicited_node(target);
    let sll = (src != 0).then_some(src_mac);
    icmp_frame(
        (mac_of(group), src_mac),
        (src, group),
        255,
        (icmp6::NEIGHBOR_SOLICIT, 0),
        &ns_body(target, sll),
    )
}

/// A neighbor advertisement from `src` at `src_mac` for `target` (= `src`) with `flags`,
/// to `dst` at `dst_mac`, carrying `src_mac` as its TLL.
fn na_frame(dst: (u128, [u8; 6]), src: (u128, [u8; 6]), flags: u8) -> Vec<u8> {
    let mut b = vec![flags, 0, 0, 0];
    b.extend_from_slice(&src.0.to_be_bytes());
    b.extend_from_slice(&ll_opt(2, src.1));
    icmp_frame(
        (dst.1, src.1),
        (src.0, dst.0),
        255,
        (icmp6::NEIGHBOR_ADVERT, 0),
        &b,
    )
}

/// A router solicitation from `src` to all routers.
fn rs_frame(src_mac: [u8; 6], src: u128) -> Vec<u8> {
    let mut b = vec![0; 4];
    if src != 0 {
        b.extend_from_slice(&ll_opt(1, src_mac));
    }
    icmp_frame(
        (mac_of(icmp6::ALL_ROUTERS), src_mac),
        (src, icmp6::ALL_ROUTERS),
        255,
        (icmp6::ROUTER_SOLICIT, 0),
        &b,
    )
}

/// An echo request body: id 0x1234, sequence 7, some data.
fn echo_body() -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0, 7];
    b.extend_from_slice(b"abcdefghijklmnop");
    b
}

fn src_of(f: &[u8]) -> u128 {
    icmp6::addr_at(f, 22).expect("source")
}

fn dst_of(f: &[u8]) -> u128 {
    icmp6::addr_at(f, 38).expect("destination")
}

/// The ICMPv6 message of frame `f`, after checking the headers around it (EtherType,
/// version, next header, payload length) and its checksum.
fn icmp_of(f: &[u8]) -> &[u8] {
    assert_eq!(&f[12..14], &[0x86, 0xdd], "an IPv6 frame");
    assert_eq!(f[14] >> 4, 6);
    assert_eq!(f[20], icmp6::PROTO_ICMPV6, "ICMPv6");
    let len = usize::from(u16::from_be_bytes([f[18], f[19]]));
    assert_eq!(f.len(), 54 + len, "payload length");
    let m = &f[54..];
    assert!(icmp6::checksum_ok(src_of(f), dst_of(f), m), "checksum");
    m
}

/// The (type, body) of each ND option in `b`.
fn nd_options(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = usize::from(b[1]) * 8;
        assert!(n > 0 && n <= b.len(), "option length {n}");
        out.push((b[0], b[2..n].to_vec()));
        b = &b[n..];
    }
    out
}

/// The ICMPv6 types of the frames in `frames` (0 for frames that are not ICMPv6).
fn types(frames: &[Vec<u8>]) -> Vec<u8> {
    frames
        .iter()
        .map(|f| {
            if f.len() > 54 && f[12..14] == [0x86, 0xdd] && f[20] == icmp6::PROTO_ICMPV6 {
                f[54]
            } else {
                0
            }
        })
        .collect()
}

/// The rows of `show neighbors` for IPv6 addresses: (ip, mac, gate, state).
fn neighbors6(r: &Shared<Router>, now: Timestamp) -> Vec<(Cell, Cell, Cell, Cell)> {
    let n = r.show("neighbors", now).expect("neighbors");
    let cols = ["ip", "mac", "gate", "state"].map(|c| column(&n, c));
    (0..n.rows.len())
        .filter(|&i| matches!(&cols[0][i], Cell::Text(s) if s.contains(':')))
        .map(|i| {
            (
                cols[0][i].clone(),
                cols[1][i].clone(),
                cols[2][i].clone(),
                cols[3][i].clone(),
            )
        })
        .collect()
}

fn mac_text(m: [u8; 6]) -> Cell {
    text(&MacAddr(m).to_string())
}

fn ip_text(ip: u128) -> Cell {
    text(&Ipv6Addr::from(ip).to_string())
}

/// Check the solicited advertisement in `f` for `target`, from the router at `our_mac` to
/// `to` at `to_mac`.
fn assert_solicited_na(f: &[u8], our_mac: [u8; 6], target: u128, (to, to_mac): (u128, [u8; 6])) {
    assert_eq!(&f[0..6], &to_mac, "unicast to the asker");
    assert_eq!(&f[6..12], &our_mac);
    assert_eq!(f[21], 255, "hop limit");
    assert_eq!((src_of(f), dst_of(f)), (target, to));
    let m = icmp_of(f);
    assert_eq!((m[0], m[1]), (icmp6::NEIGHBOR_ADVERT, 0));
    assert_eq!(
        m[4],
        icmp6::NA_ROUTER | icmp6::NA_SOLICITED | icmp6::NA_OVERRIDE,
        "R, S and O"
    );
    assert_eq!(icmp6::addr_at(m, 8), Some(target));
    assert_eq!(nd_options(&m[24..]), vec![(2, our_mac.to_vec())], "TLL");
}

/// Check that `f` is a neighbor solicitation for `target` from `src` out of the
/// interface at `our_mac`, to `dst_mac` (and `dst`).
fn assert_ns(f: &[u8], our_mac: [u8; 6], src: u128, (dst, dst_mac): (u128, [u8; 6]), target: u128) {
    assert_eq!(&f[0..6], &dst_mac);
    assert_eq!(&f[6..12], &our_mac);
    assert_eq!(f[21], 255, "hop limit");
    assert_eq!((src_of(f), dst_of(f)), (src, dst));
    let m = icmp_of(f);
    assert_eq!((m[0], m[1]), (icmp6::NEIGHBOR_SOLICIT, 0));
    assert_eq!(icmp6::addr_at(m, 8), Some(target));
    assert_eq!(nd_options(&m[24..]), vec![(1, our_mac.to_vec())], "SLL");
}

/// Check that `f` is the ICMPv6 error `ty`/`code` from `from` to the lan host, quoting
/// (the start of) `about`; returns the message.
fn assert_error<'f>(f: &'f [u8], (ty, code): (u8, u8), from: u128, about: &[u8]) -> &'f [u8] {
    assert_eq!(&f[0..6], &H0, "back to the sender's MAC");
    assert_eq!(&f[6..12], &R0);
    assert_eq!(f[21], 64, "hop limit");
    assert_eq!(dst_of(f), src_of(about), "to the packet's source");
    assert_eq!(src_of(f), from, "from");
    let m = icmp_of(f);
    assert_eq!((m[0], m[1]), (ty, code));
    let quoted = &m[8..];
    let n = quoted.len();
    assert!(n > 40, "quotes the packet");
    assert_eq!(quoted, &about[14..14 + n], "the packet as it came");
    assert!(f.len() - 14 <= icmp6::MIN_MTU, "within the minimum MTU");
    m
}

/// The gateway answers the router's solicitation (solicited, override, router).
fn gw_answers(h: &mut Harness, now: Timestamp) {
    let na = na_frame(
        (wan_ip(), R1),
        (gw_ip(), GW),
        icmp6::NA_ROUTER | icmp6::NA_SOLICITED | icmp6::NA_OVERRIDE,
    );
    h.send(1, &na, now);
}

// 0. Configuration.

#[test]
fn lan_advertises_by_default_and_wan_facing_a_gateway_does_not() {
    let s = spec();
    assert_eq!(s.interfaces[0].ra, Some(RaSpec::default()));
    assert_eq!(s.interfaces[1].ra, None);
    let cfg = config6();
    assert_eq!(
        cfg.interfaces[0].addresses6,
        [(Ipv6Addr::from(lan_ip()), 64)]
    );
    assert_eq!(cfg.routes6.len(), 1);
    assert_eq!(cfg.interfaces[1].mtu, 1400);
}

// 1. Neighbor solicitations for the router's addresses.

#[test]
fn solicitations_for_our_addresses_get_solicited_adverts_and_the_asker_is_stale() {
    let (mut h, r, stats) = started_shared(config6());
    // For the global address, from the host's global address.
    let ns = ns_frame(H0, host(), lan_ip());
    assert_eq!(&ns[0..6], &[0x33, 0x33, 0xff, 0, 0, 1]);
    h.send(0, &ns, t(100));
    let out = h.recv(0);
    assert_eq!(out.len(), 1, "one advertisement");
    assert_solicited_na(&out[0], R0, lan_ip(), (host(), H0));
    // For the link-local address, from the host's link-local address.
    let ns = ns_frame(H0, host_ll(), ll0());
    assert_eq!(&ns[0..6], &[0x33, 0x33, 0xff, 0, 0, 0]);
    h.send(0, &ns, t(200));
    let out = h.recv(0);
    assert_eq!(out.len(), 1);
    assert_solicited_na(&out[0], R0, ll0(), (host_ll(), H0));
    // A unicast solicitation (a host checking the router is still there) too.
    let probe = icmp_frame(
        (R0, H0),
        (host(), lan_ip()),
        255,
        (icmp6::NEIGHBOR_SOLICIT, 0),
        &ns_body(lan_ip(), None),
    );
    h.send(0, &probe, t(300));
    let out = h.recv(0);
    assert_eq!(out.len(), 1);
    assert_solicited_na(&out[0], R0, lan_ip(), (host(), H0));
    assert!(h.recv(1).is_empty());
    assert_eq!(stats.nd_adverts.get(), 4 + 3, "4 at start, 3 answers");
    // Both senders are in the cache, unconfirmed.
    assert_eq!(
        neighbors6(&r, t(300)),
        vec![
            (ip_text(host()), mac_text(H0), Cell::Int(0), text("stale")),
            (
                ip_text(host_ll()),
                mac_text(H0),
                Cell::Int(0),
                text("stale")
            ),
        ]
    );
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn a_solicitation_for_another_address_is_not_answered() {
    let mut h = started(config6());
    // Not ours, and wan's address asked on lan.
    for target in [a("2001:db8::7"), wan_ip()] {
        h.send(0, &ns_frame(H0, host(), target), t(100));
    }
    assert!(h.recv_each().iter().all(Vec::is_empty));
    assert_eq!(h.pool().available(), 64);
}

// 2. Invalid solicitations, and duplicate address detection.

#[test]
fn a_solicitation_with_hop_limit_below_255_is_bad_header() {
    let mut h = started(config6());
    let mut ns = ns_frame(H0, host(), lan_ip());
    ns[21] = 64;
    h.send(0, &ns, t(100));
    assert!(h.recv(0).is_empty());
    assert_eq!(h.node_drops(DropReason::BadHeader), 1);
}

#[test]
fn a_solicitation_with_a_bad_checksum_is_bad_checksum() {
    let mut h = started(config6());
    let mut ns = ns_frame(H0, host(), lan_ip());
    ns[57] ^= 0x40;
    h.send(0, &ns, t(100));
    assert!(h.recv(0).is_empty());
    assert_eq!(h.node_drops(DropReason::BadChecksum), 1);
    assert_eq!(h.node_drops(DropReason::BadHeader), 0);
}

#[test]
fn a_dad_solicitation_for_our_address_is_defended_to_all_nodes() {
    let (mut h, r, _) = started_shared(config6());
    for target in [lan_ip(), ll0()] {
        let dad = ns_frame(H0, 0, target);
        h.send(0, &dad, t(100));
        let out = h.recv(0);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1], "to all nodes' MAC");
        assert_eq!(&f[6..12], &R0);
        assert_eq!(f[21], 255);
        assert_eq!((src_of(f), dst_of(f)), (target, ALL_NODES));
        let m = icmp_of(f);
        assert_eq!(m[0], icmp6::NEIGHBOR_ADVERT);
        assert_eq!(m[4], icmp6::NA_ROUTER | icmp6::NA_OVERRIDE, "not solicited");
        assert_eq!(icmp6::addr_at(m, 8), Some(target));
        assert_eq!(nd_options(&m[24..]), vec![(2, R0.to_vec())]);
    }
    assert!(neighbors6(&r, t(100)).is_empty(), "nothing learned from ::");
    // A DAD solicitation must not carry a source link-layer address.
    let group = icmp6::solicited_node(lan_ip());
    let bad = icmp_frame(
        (mac_of(group), H0),
        (0, group),
        255,
        (icmp6::NEIGHBOR_SOLICIT, 0),
        &ns_body(lan_ip(), Some(H0)),
    );
    h.send(0, &bad, t(200));
    assert!(h.recv(0).is_empty());
    assert_eq!(h.node_drops(DropReason::BadHeader), 1);
}

// 3. Forwarding through the gateway.

#[test]
fn forwarding_resolves_the_gateway_then_sends_with_hop_limit_down_and_new_macs() {
    let (mut h, r, stats) = started_shared(config6());
    let f = udp_frame((R0, H0), host(), far(), 64, b"payload!");
    h.send(0, &f, t(100));
    assert!(h.recv(0).is_empty());
    let out = h.recv(1);
    assert_eq!(out.len(), 1, "a solicitation, not the packet");
    let group = icmp6::solicited_node(gw_ip());
    assert_eq!(group, a("ff02::1:ff00:fe"));
    assert_ns(&out[0], R1, wan_ip(), (group, mac_of(group)), gw_ip());
    // A second packet waits too, without another solicitation.
    h.send(0, &f, t(150));
    assert!(h.recv(1).is_empty());
    assert_eq!(
        neighbors6(&r, t(150)),
        vec![(
            ip_text(gw_ip()),
            Cell::None,
            Cell::Int(1),
            text("incomplete")
        )]
    );
    gw_answers(&mut h, t(200));
    let out = h.recv(1);
    assert_eq!(out.len(), 2, "both waiting packets leave");
    for o in &out {
        assert_eq!(&o[0..6], &GW);
        assert_eq!(&o[6..12], &R1);
        assert_eq!(o[21], 63, "hop limit down by one");
        assert_eq!(&o[12..21], &f[12..21]);
        assert_eq!(&o[22..], &f[22..], "addresses and payload untouched");
    }
    assert_eq!(
        neighbors6(&r, t(200)),
        vec![(
            ip_text(gw_ip()),
            mac_text(GW),
            Cell::Int(1),
            text("reachable")
        )]
    );
    // Known now: the next packets leave at once.
    for k in 0..3 {
        h.send(0, &f, t(300 + k));
        let out = h.recv(1);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][0..6], &GW);
        assert_eq!(out[0][21], 63);
    }
    assert!(h.recv(0).is_empty());
    assert_eq!(stats.forwarded.get(), 5);
    assert_eq!(stats.nd_solicits.get(), 1);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn a_default_route_and_a_static_neighbour_forward_without_solicitation() {
    let mut cfg = config6();
    cfg.routes6.push(Route6 {
        prefix: Ipv6Addr::UNSPECIFIED,
        len: 0,
        via: Ipv6Addr::from(gw_ip()),
    });
    cfg.neighbors6.push((Ipv6Addr::from(gw_ip()), MacAddr(GW)));
    let (mut h, r, stats) = started_shared(cfg);
    for dst in ["2001:db8:99::1", "2001:db8:2::5", "2600::1"] {
        let f = udp_frame((R0, H0), host(), a(dst), 64, &[0; 8]);
        h.send(0, &f, t(100));
        let out = h.recv(1);
        assert_eq!(out.len(), 1, "{dst}");
        assert_eq!(&out[0][0..6], &GW, "static neighbour, no solicitation");
        assert_eq!(out[0][21], 63);
    }
    // The connected prefixes still win over the default route.
    let f = udp_frame((R0, H0), host(), near(), 64, &[0; 8]);
    h.send(0, &f, t(200));
    assert_eq!(types(&h.recv(1)), [icmp6::NEIGHBOR_SOLICIT]);
    assert!(h.recv(0).is_empty());
    assert_eq!(h.node_drops(DropReason::NoRoute), 0);
    h.tick(t(300));
    assert_eq!(
        neighbors6(&r, t(300))[0],
        (
            ip_text(near()),
            Cell::None,
            Cell::Int(1),
            text("incomplete")
        )
    );
    assert_eq!(
        neighbors6(&r, t(300))[1],
        (ip_text(gw_ip()), mac_text(GW), Cell::Int(1), text("static"))
    );
    assert_eq!(stats.nd_entries.get(), 2, "the gauge, on tick");
}

#[test]
fn packets_waiting_for_a_neighbour_are_bounded_by_arp_queue() {
    let mut cfg = config6();
    cfg.arp.queue_len = 2;
    let mut h = started(cfg);
    let f = udp_frame((R0, H0), host(), far(), 64, &[0; 8]);
    for k in 0..4 {
        h.send(0, &f, t(100 + k));
    }
    assert_eq!(h.recv(1).len(), 1, "one solicitation");
    assert_eq!(h.node_drops(DropReason::ArpQueueFull), 2);
    gw_answers(&mut h, t(200));
    assert_eq!(h.recv(1).len(), 2);
    assert_eq!(h.pool().available(), 64);
}

// 4. A connected destination, answered and not.

#[test]
fn a_connected_destination_is_solicited_and_resolved_the_same_way() {
    let mut h = started(config6());
    let f = udp_frame((R0, H0), host(), near(), 64, b"to the wan host");
    h.send(0, &f, t(100));
    let out = h.recv(1);
    assert_eq!(out.len(), 1);
    let group = icmp6::solicited_node(near());
    assert_ns(&out[0], R1, wan_ip(), (group, mac_of(group)), near());
    let na = na_frame(
        (wan_ip(), R1),
        (near(), H1),
        icmp6::NA_SOLICITED | icmp6::NA_OVERRIDE,
    );
    h.send(1, &na, t(200));
    let out = h.recv(1);
    assert_eq!(out.len(), 1);
    assert_eq!((&out[0][0..6], &out[0][6..12]), (&H1[..], &R1[..]));
    assert_eq!(out[0][21], 63);
    h.send(0, &f, t(300));
    assert_eq!(h.recv(1).len(), 1, "at once");
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn an_unanswered_neighbour_gives_address_unreachable_after_three_solicitations() {
    let (mut h, _r, stats) = started_shared(config6());
    let f = udp_frame((R0, H0), host(), near(), 64, b"nobody home");
    h.send(0, &f, t(100));
    assert_eq!(types(&h.recv(1)), [icmp6::NEIGHBOR_SOLICIT]);
    h.tick(t(600));
    assert!(h.recv(1).is_empty(), "not before the retransmission timer");
    h.tick(t(1100));
    h.tick(t(2100));
    let retries = h.recv(1);
    assert_eq!(retries.len(), 2, "two more");
    let group = icmp6::solicited_node(near());
    for s in &retries {
        assert_ns(s, R1, wan_ip(), (group, mac_of(group)), near());
    }
    assert!(h.recv(0).is_empty());
    assert_eq!(h.node_drops(DropReason::ArpFailed), 0);
    h.tick(t(3100));
    assert!(h.recv(1).is_empty(), "no fourth");
    assert_eq!(h.node_drops(DropReason::ArpFailed), 1);
    let back = h.recv(0);
    assert_eq!(back.len(), 1);
    let m = assert_error(
        &back[0],
        (icmp6::DEST_UNREACHABLE, icmp6::CODE_ADDR_UNREACHABLE),
        lan_ip(),
        &f,
    );
    assert_eq!(&m[8..], &f[14..], "the whole packet, hop limit as it came");
    assert_eq!(stats.nd_solicits.get(), 3);
    assert_eq!(stats.icmp_errors.get(), 1);
    assert_eq!(h.pool().available(), 64);
}

// 5. ICMPv6 errors.

#[test]
fn hop_limit_1_gets_time_exceeded_from_the_ingress_address() {
    let mut h = started(config6());
    for (k, hops) in [1u8, 0].into_iter().enumerate() {
        let f = udp_frame((R0, H0), host(), far(), hops, &[9; 12]);
        h.send(0, &f, t(100 + k as u64));
        let out = h.recv(0);
        assert_eq!(out.len(), 1, "hop limit {hops}");
        let m = assert_error(&out[0], (icmp6::TIME_EXCEEDED, 0), lan_ip(), &f);
        assert_eq!(&m[4..8], &[0; 4], "unused");
        assert_eq!(&m[8..], &f[14..], "quotes the whole small packet");
    }
    assert!(h.recv(1).is_empty(), "nothing forwarded, nothing solicited");
    assert_eq!(h.node_drops(DropReason::TtlExceeded), 2);
    // From the link-local address to a link-local source.
    let f = udp_frame((R0, H0), host_ll(), far(), 1, &[9; 12]);
    h.send(0, &f, t(200));
    let out = h.recv(0);
    assert_eq!(src_of(&out[0]), ll0());
    assert_eq!(dst_of(&out[0]), host_ll());
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn no_route_gets_destination_unreachable_no_route() {
    let mut h = started(config6());
    let f = udp_frame((R0, H0), host(), a("2001:db8:99::1"), 64, &[1; 8]);
    h.send(0, &f, t(100));
    let out = h.recv(0);
    assert_eq!(out.len(), 1);
    assert_error(
        &out[0],
        (icmp6::DEST_UNREACHABLE, icmp6::CODE_NO_ROUTE),
        lan_ip(),
        &f,
    );
    assert_eq!(h.node_drops(DropReason::NoRoute), 1);
    assert!(h.recv(1).is_empty());
}

#[test]
fn packets_to_the_loopback_or_unspecified_address_are_dropped_unanswered() {
    let mut h = started(config6());
    for dst in [a("::1"), a("::")] {
        let f = udp_frame((R0, H0), host(), dst, 64, &[1; 8]);
        h.send(0, &f, t(100));
        assert!(h.recv(0).is_empty() && h.recv(1).is_empty());
    }
    assert_eq!(h.node_drops(DropReason::BadHeader), 2);
    assert_eq!(h.node_drops(DropReason::NoRoute), 0);
}

#[test]
fn too_big_for_wan_gets_packet_too_big_with_its_mtu() {
    let mut h = started(config6());
    // 40 + 8 + 1353 = 1401 bytes: one too many for wan's 1400.
    let f = udp_frame((R0, H0), host(), far(), 64, &[7; 1353]);
    h.send(0, &f, t(100));
    let out = h.recv(0);
    assert_eq!(out.len(), 1);
    let m = assert_error(&out[0], (icmp6::PACKET_TOO_BIG, 0), lan_ip(), &f);
    assert_eq!(u32::from_be_bytes([m[4], m[5], m[6], m[7]]), 1400, "MTU");
    assert_eq!(out[0].len() - 14, icmp6::MIN_MTU, "quote cut to 1280 bytes");
    assert_eq!(h.node_drops(DropReason::TooBig), 1);
    assert!(h.recv(1).is_empty());
    // 1400 bytes fit: forwarded (it waits for the gateway).
    let f = udp_frame((R0, H0), host(), far(), 64, &[7; 1352]);
    h.send(0, &f, t(200));
    assert_eq!(types(&h.recv(1)), [icmp6::NEIGHBOR_SOLICIT]);
    gw_answers(&mut h, t(300));
    let out = h.recv(1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 14 + 1400);
    assert_eq!(h.node_drops(DropReason::TooBig), 1);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn no_error_is_sent_about_an_icmpv6_error() {
    let mut h = started(config6());
    let nowhere = a("2001:db8:99::1");
    let quoted = udp_frame((R0, H0), host(), far(), 64, &[0; 8]);
    let mut body = vec![0; 4];
    body.extend_from_slice(&quoted[14..]);
    for (ty, code) in [
        (icmp6::DEST_UNREACHABLE, 0),
        (icmp6::PACKET_TOO_BIG, 0),
        (icmp6::TIME_EXCEEDED, 0),
        (icmp6::PARAM_PROBLEM, 1),
    ] {
        // No route, and hop limit 1.
        let f = icmp_frame((R0, H0), (host(), nowhere), 64, (ty, code), &body);
        h.send(0, &f, t(100));
        let f = icmp_frame((R0, H0), (host(), far()), 1, (ty, code), &body);
        h.send(0, &f, t(100));
    }
    // Behind extension headers too.
    let err = icmp_msg(host(), nowhere, icmp6::DEST_UNREACHABLE, 0, &body);
    for k in [1, 3] {
        let (next, p) = with_extensions(k, icmp6::PROTO_ICMPV6, &err);
        let f = v6_frame((R0, H0), (host(), nowhere), 64, next, &p);
        h.send(0, &f, t(100));
    }
    assert!(h.recv_each().iter().all(Vec::is_empty));
    assert_eq!(h.node_drops(DropReason::NoRoute), 4 + 2);
    assert_eq!(h.node_drops(DropReason::TtlExceeded), 4);
    // An echo request is not an error: it gets one.
    let f = icmp_frame(
        (R0, H0),
        (host(), nowhere),
        64,
        (icmp6::ECHO_REQUEST, 0),
        &echo_body(),
    );
    h.send(0, &f, t(200));
    assert_eq!(types(&h.recv(0)), [icmp6::DEST_UNREACHABLE]);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn icmpv6_errors_share_the_icmp_rate_limit_with_icmp() {
    let mut cfg = config6();
    cfg.icmp_rate = 5;
    cfg.interfaces[0].address = Some((std::net::Ipv4Addr::new(10, 0, 0, 1), 24));
    let (mut h, _r, stats) = started_shared(cfg);
    let nowhere = udp_frame((R0, H0), host(), a("2001:db8:99::1"), 64, &[0; 8]);
    let expired = udp_frame((R0, H0), host(), far(), 1, &[0; 8]);
    let big = udp_frame((R0, H0), host(), far(), 64, &[0; 1400]);
    for f in [&nowhere, &expired, &big] {
        h.send(0, f, t(100));
        h.send(0, f, t(100));
    }
    let out = h.recv(0);
    assert_eq!(types(&out), [1, 1, 3, 3, 2], "five tokens");
    assert_eq!(stats.icmp_rate_limited.get(), 1);
    // IPv4's errors take from the same bucket.
    let v4 = ip_frame(R0, H0, "10.0.0.5", "198.51.100.1", 64, 17, &[0; 8]);
    h.send(0, &v4, t(100));
    assert!(h.recv(0).is_empty());
    assert_eq!(stats.icmp_rate_limited.get(), 2);
    // One token every 200 ms, for either family.
    h.send(0, &nowhere, t(300));
    h.send(0, &v4, t(300));
    assert_eq!(h.recv(0).len(), 1);
    h.send(0, &v4, t(500));
    h.send(0, &nowhere, t(500));
    let out = h.recv(0);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][12..14], &[0x08, 0x00], "IPv4's turn");
    assert_eq!(h.node_drops(DropReason::NoRoute), 7);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn an_unspecified_or_loopback_source_is_never_forwarded() {
    let mut h = started(config6());
    for src in [0, 1] {
        let f = udp_frame((R0, H0), src, far(), 64, &[0; 8]);
        h.send(0, &f, t(100));
        let f = udp_frame((R0, H0), src, near(), 64, &[0; 8]);
        h.send(0, &f, t(100));
    }
    assert!(
        h.recv_each().iter().all(Vec::is_empty),
        "not forwarded, no error"
    );
    assert_eq!(h.node_drops(DropReason::BadHeader), 4);
    // Nor answered: an echo reply to :: has nowhere to go.
    for dst in [lan_ip(), ALL_NODES] {
        let f = icmp_frame(
            (if dst == ALL_NODES { mac_of(dst) } else { R0 }, H0),
            (0, dst),
            64,
            (icmp6::ECHO_REQUEST, 0),
            &echo_body(),
        );
        h.send(0, &f, t(200));
    }
    assert!(h.recv_each().iter().all(Vec::is_empty), "no reply to ::");
    assert_eq!(h.pool().available(), 64);
}

// 6. Echo, and the scope of link-local sources.

#[test]
fn echo_requests_to_our_addresses_are_answered_from_them() {
    let (mut h, _r, stats) = started_shared(config6());
    // lan's global address, wan's through lan, and lan's link-local address.
    for (src, dst) in [
        (host(), lan_ip()),
        (host(), wan_ip()),
        (host_ll(), ll0()),
        (host(), ll0()),
    ] {
        let f = icmp_frame(
            (R0, H0),
            (src, dst),
            64,
            (icmp6::ECHO_REQUEST, 0),
            &echo_body(),
        );
        h.send(0, &f, t(100));
        let out = h.recv(0);
        assert_eq!(out.len(), 1, "to {}", Ipv6Addr::from(dst));
        let o = &out[0];
        assert_eq!((&o[0..6], &o[6..12]), (&H0[..], &R0[..]));
        assert_eq!((src_of(o), dst_of(o)), (dst, src), "from the address asked");
        assert_eq!(o[21], 64);
        let m = icmp_of(o);
        assert_eq!((m[0], m[1]), (icmp6::ECHO_REPLY, 0));
        assert_eq!(&m[4..], &echo_body()[..], "id, sequence and data kept");
    }
    assert_eq!(stats.echo_replies.get(), 4);
    // wan's link-local address is not reachable from lan.
    let f = icmp_frame(
        (R0, H0),
        (host_ll(), ll1()),
        64,
        (icmp6::ECHO_REQUEST, 0),
        &echo_body(),
    );
    h.send(0, &f, t(200));
    assert!(h.recv_each().iter().all(Vec::is_empty));
    assert_eq!(h.node_drops(DropReason::NotForUs), 1);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn echo_to_all_nodes_is_answered_from_the_link_local_or_global_address() {
    let mut h = started(config6());
    for (src, from) in [(host_ll(), ll0()), (host(), lan_ip())] {
        let f = icmp_frame(
            (mac_of(ALL_NODES), H0),
            (src, ALL_NODES),
            1,
            (icmp6::ECHO_REQUEST, 0),
            &echo_body(),
        );
        h.send(0, &f, t(100));
        let out = h.recv(0);
        assert_eq!(out.len(), 1);
        let o = &out[0];
        assert_eq!(&o[0..6], &H0, "unicast back");
        assert_eq!((src_of(o), dst_of(o)), (from, src));
        let m = icmp_of(o);
        assert_eq!(m[0], icmp6::ECHO_REPLY);
    }
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn a_link_local_source_is_not_forwarded_off_link() {
    let mut h = started(config6());
    let f = udp_frame((R0, H0), host_ll(), near(), 64, &[0; 8]);
    h.send(0, &f, t(100));
    assert!(
        h.recv(1).is_empty(),
        "nothing on wan, not even a solicitation"
    );
    let out = h.recv(0);
    assert_eq!(out.len(), 1);
    assert_error(
        &out[0],
        (icmp6::DEST_UNREACHABLE, icmp6::CODE_BEYOND_SCOPE),
        ll0(),
        &f,
    );
    assert_eq!(h.node_drops(DropReason::NoRoute), 1);
}

// 7. Router advertisements.

/// Check the router advertisement `f` out of lan; returns its options.
fn assert_ra(f: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(&f[6..12], &R0);
    assert_eq!(f[21], 255, "hop limit");
    assert_eq!(
        (src_of(f), dst_of(f)),
        (ll0(), ALL_NODES),
        "from link-local"
    );
    let m = icmp_of(f);
    assert_eq!((m[0], m[1]), (icmp6::ROUTER_ADVERT, 0));
    assert_eq!(m[4], 64, "current hop limit for hosts");
    assert_eq!(m[5], 0, "no M or O flag");
    assert_eq!(u16::from_be_bytes([m[6], m[7]]), 1800, "router lifetime");
    assert_eq!(
        &m[8..16],
        &[0; 8],
        "reachable time and retrans timer unspecified"
    );
    nd_options(&m[16..])
}

#[test]
fn a_router_solicitation_gets_an_advertisement_with_its_options() {
    let mut cfg = config6();
    cfg.interfaces[0].ra = Some(RaSpec {
        rdnss: vec![Ipv6Addr::from(a("2001:db8::53"))],
        ..RaSpec::default()
    });
    let (mut h, r, stats) = started_shared(cfg);
    // The advertisement at start went at t(0); the next may go 3 s later.
    assert_eq!(stats.router_adverts.get(), 1);
    h.send(0, &rs_frame(H0, host_ll()), t(10_000));
    assert!(h.recv(0).is_empty(), "answered on the next tick");
    h.tick(t(10_100));
    let out = h.recv(0);
    assert_eq!(types(&out), [icmp6::ROUTER_ADVERT]);
    let opts = assert_ra(&out[0]);
    let kinds: Vec<u8> = opts.iter().map(|o| o.0).collect();
    assert_eq!(kinds, [1, 5, 3, 25], "SLL, MTU, prefix, RDNSS");
    assert_eq!(opts[0].1, R0);
    assert_eq!(&opts[1].1[2..6], &1500u32.to_be_bytes(), "lan's MTU");
    let p = &opts[2].1;
    assert_eq!(p.len(), 30);
    assert_eq!((p[0], p[1]), (64, 0xc0), "a /64, on-link and autonomous");
    assert_eq!(&p[2..6], &86_400u32.to_be_bytes(), "valid lifetime");
    assert_eq!(&p[6..10], &14_400u32.to_be_bytes(), "preferred lifetime");
    assert_eq!(icmp6::addr_at(p, 14), Some(a("2001:db8::")));
    let d = &opts[3].1;
    assert_eq!(d.len(), 22);
    assert_eq!(&d[2..6], &1800u32.to_be_bytes(), "RDNSS lifetime");
    assert_eq!(icmp6::addr_at(d, 6), Some(a("2001:db8::53")));
    // The soliciting host is learned (stale).
    assert_eq!(
        neighbors6(&r, t(10_100)),
        vec![(
            ip_text(host_ll()),
            mac_text(H0),
            Cell::Int(0),
            text("stale")
        )]
    );
    // More solicitations within 3 s get no more than one more advertisement, 3 s later.
    h.send(0, &rs_frame(H0, host_ll()), t(10_500));
    h.send(0, &rs_frame(H0, 0), t(11_000));
    for ms in (10_600..13_100).step_by(500) {
        h.tick(t(ms));
    }
    assert!(h.recv(0).is_empty(), "none within 3 s");
    h.tick(t(13_100));
    assert_eq!(types(&h.recv(0)), [icmp6::ROUTER_ADVERT]);
    h.tick(t(13_200));
    assert!(h.recv(0).is_empty());
    assert_eq!(stats.router_adverts.get(), 3);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn without_rdnss_or_mtu_the_advertisement_leaves_them_out() {
    let mut cfg = config6();
    cfg.interfaces[0].ra = Some(RaSpec {
        mtu: false,
        ..RaSpec::default()
    });
    let mut h = harness(cfg);
    h.tick(t(0));
    let out = h.recv(0);
    let ra: Vec<&Vec<u8>> = out
        .iter()
        .filter(|f| f.len() > 54 && f[54] == icmp6::ROUTER_ADVERT)
        .collect();
    assert_eq!(ra.len(), 1);
    let kinds: Vec<u8> = assert_ra(ra[0]).iter().map(|o| o.0).collect();
    assert_eq!(kinds, [1, 3], "SLL and prefix");
}

#[test]
fn advertisements_go_at_start_and_then_on_their_timer_on_lan_only() {
    let r = Router::new(config6()).expect("router");
    let stats = r.stats();
    let mut h = Harness::new(Box::new(r), 2, 64);
    h.tick(t(0));
    // At start: an unsolicited advertisement of each address, and lan's first RA.
    let lan = h.recv(0);
    assert_eq!(
        types(&lan),
        [
            icmp6::NEIGHBOR_ADVERT,
            icmp6::NEIGHBOR_ADVERT,
            icmp6::ROUTER_ADVERT
        ]
    );
    for (f, ip) in lan.iter().zip([ll0(), lan_ip()]) {
        assert_eq!((src_of(f), dst_of(f)), (ip, ALL_NODES));
        let m = icmp_of(f);
        assert_eq!(m[4], icmp6::NA_ROUTER | icmp6::NA_OVERRIDE);
        assert_eq!(icmp6::addr_at(m, 8), Some(ip));
    }
    assert_ra(&lan[2]);
    let wan = h.recv(1);
    assert_eq!(
        types(&wan),
        [icmp6::NEIGHBOR_ADVERT, icmp6::NEIGHBOR_ADVERT]
    );
    assert_eq!(
        (src_of(&wan[0]), src_of(&wan[1])),
        (ll1(), wan_ip()),
        "wan's own addresses"
    );
    // Then every second for 150 s: three more within 16 s of each other, then none for
    // at least 200 s (a third of the 600 s interval).
    let mut sent = vec![0u64];
    for s in 1..=150u64 {
        h.tick(t(s * 1000));
        if s % 60 == 0 {
            // A solicitation on wan is not answered: it does not advertise.
            h.send(1, &rs_frame(H1, a("fe80::20")), t(s * 1000));
        }
        let lan = h.recv(0);
        assert!(
            types(&lan).iter().all(|&ty| ty == icmp6::ROUTER_ADVERT),
            "only RAs"
        );
        if !lan.is_empty() {
            assert_eq!(lan.len(), 1);
            assert_ra(&lan[0]);
            sent.push(s);
        }
        assert!(h.recv(1).is_empty(), "wan sends none");
    }
    assert_eq!(sent.len(), 4, "{sent:?}");
    for w in sent.windows(2) {
        assert!((5..=17).contains(&(w[1] - w[0])), "{sent:?}");
    }
    assert_eq!(stats.router_adverts.get(), 4);
    assert_eq!(stats.nd_adverts.get(), 4);
}

#[test]
fn an_ipv4_only_router_answers_no_ipv6_and_announces_none() {
    let mut h = harness(config());
    h.tick(t(0));
    for g in 0..2 {
        let out = h.recv(g);
        assert_eq!(out.len(), 1, "a gratuitous ARP only");
        assert_eq!(&out[0][12..14], &[0x08, 0x06]);
    }
    let ll = ll0();
    let frames = [
        ns_frame(H0, host_ll(), ll),
        rs_frame(H0, host_ll()),
        icmp_frame(
            (R0, H0),
            (host_ll(), ll),
            64,
            (icmp6::ECHO_REQUEST, 0),
            &echo_body(),
        ),
        udp_frame((R0, H0), host(), far(), 64, &[0; 8]),
    ];
    for f in &frames {
        h.send(0, f, t(100));
    }
    for s in 1..=20 {
        h.tick(t(s * 1000));
    }
    assert!(h.recv_each().iter().all(Vec::is_empty));
    assert_eq!(h.node_drops(DropReason::NotForUs), 4);
    assert_eq!(h.pool().available(), 64);
}

// 8. The neighbour cache's states through the router.

/// A router whose gateway was resolved at t(200) by forwarding `f`, and used at t(250).
fn with_reachable_gateway(f: &[u8]) -> (Harness, Shared<Router>) {
    let (mut h, r, _) = started_shared(config6());
    h.send(0, f, t(100));
    assert_eq!(types(&h.recv(1)), [icmp6::NEIGHBOR_SOLICIT]);
    gw_answers(&mut h, t(200));
    assert_eq!(h.recv(1).len(), 1);
    // One more, sent at once (the next hop's MAC is now cached for the route).
    h.send(0, f, t(250));
    assert_eq!(h.recv(1).len(), 1);
    (h, r)
}

fn gw_state(r: &Shared<Router>, now: Timestamp) -> Cell {
    let rows = neighbors6(r, now);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, ip_text(gw_ip()));
    rows[0].3.clone()
}

#[test]
fn a_reachable_gateway_turns_stale_then_delay_then_is_probed_by_unicast() {
    let f = udp_frame((R0, H0), host(), far(), 64, b"x");
    let (mut h, r) = with_reachable_gateway(&f);
    assert_eq!(gw_state(&r, t(200)), text("reachable"));
    for ms in (1200..=29_200).step_by(1000) {
        h.tick(t(ms));
    }
    assert_eq!(gw_state(&r, t(29_200)), text("reachable"), "29 s after");
    h.tick(t(30_200));
    assert_eq!(gw_state(&r, t(30_200)), text("stale"), "30 s after");
    assert!(h.recv(1).is_empty(), "no solicitation for a stale entry");
    h.recv(0);
    // Used: it still carries the packet, and turns to delay.
    h.send(0, &f, t(30_500));
    let out = h.recv(1);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &GW);
    assert_eq!(gw_state(&r, t(30_500)), text("delay"));
    // Packets keep leaving while it waits.
    h.send(0, &f, t(31_000));
    assert_eq!(h.recv(1).len(), 1);
    for ms in (31_500..=35_400).step_by(300) {
        h.tick(t(ms));
    }
    assert!(h.recv(1).is_empty(), "no probe within 5 s");
    assert_eq!(gw_state(&r, t(35_400)), text("delay"));
    h.tick(t(35_500));
    let probe = h.recv(1);
    assert_eq!(probe.len(), 1, "5 s after its use");
    assert_ns(&probe[0], R1, wan_ip(), (gw_ip(), GW), gw_ip());
    assert_eq!(gw_state(&r, t(35_500)), text("probe"));
    // Still used while probed.
    h.send(0, &f, t(35_600));
    assert_eq!(h.recv(1).len(), 1);
    // The gateway confirms: reachable again, no more probes.
    gw_answers(&mut h, t(35_700));
    assert_eq!(gw_state(&r, t(35_700)), text("reachable"));
    for ms in (36_000..=40_000).step_by(1000) {
        h.tick(t(ms));
    }
    assert!(h.recv(1).is_empty());
    h.recv(0);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn an_unanswered_probe_forgets_the_gateway_and_resolves_it_again() {
    let f = udp_frame((R0, H0), host(), far(), 64, b"x");
    let (mut h, r) = with_reachable_gateway(&f);
    for ms in (1200..=30_200).step_by(1000) {
        h.tick(t(ms));
    }
    h.send(0, &f, t(30_500));
    assert_eq!(h.recv(1).len(), 1);
    h.tick(t(35_500));
    h.tick(t(36_500));
    h.tick(t(37_500));
    let probes = h.recv(1);
    assert_eq!(probes.len(), 3, "three unicast probes");
    for p in &probes {
        assert_eq!(&p[0..6], &GW);
        assert_eq!(dst_of(p), gw_ip());
    }
    assert_eq!(gw_state(&r, t(37_500)), text("probe"));
    h.tick(t(38_500));
    assert!(neighbors6(&r, t(38_500)).is_empty(), "forgotten");
    assert!(h.recv(1).is_empty());
    // The next packet waits for a multicast solicitation again.
    h.send(0, &f, t(39_000));
    let out = h.recv(1);
    assert_eq!(types(&out), [icmp6::NEIGHBOR_SOLICIT]);
    let group = icmp6::solicited_node(gw_ip());
    assert_ns(&out[0], R1, wan_ip(), (group, mac_of(group)), gw_ip());
    h.recv(0);
    assert_eq!(gw_state(&r, t(39_000)), text("incomplete"));
}

#[test]
fn an_unsolicited_advert_with_a_new_mac_is_followed_and_one_without_override_is_not() {
    let f = udp_frame((R0, H0), host(), far(), 64, b"x");
    let (mut h, r) = with_reachable_gateway(&f);
    let new_gw = [0x02, 0, 0, 0, 0, 0x98];
    // Without override: the known MAC stays, the entry loses its confirmation.
    let na = na_frame(
        (ALL_NODES, mac_of(ALL_NODES)),
        (gw_ip(), new_gw),
        icmp6::NA_ROUTER,
    );
    h.send(1, &na, t(300));
    assert_eq!(gw_state(&r, t(300)), text("stale"));
    h.send(0, &f, t(400));
    assert_eq!(&h.recv(1)[0][0..6], &GW);
    assert_eq!(gw_state(&r, t(400)), text("delay"), "used while stale");
    // With override: the new MAC at once.
    let na = na_frame(
        (ALL_NODES, mac_of(ALL_NODES)),
        (gw_ip(), new_gw),
        icmp6::NA_ROUTER | icmp6::NA_OVERRIDE,
    );
    h.send(1, &na, t(500));
    h.send(0, &f, t(600));
    assert_eq!(&h.recv(1)[0][0..6], &new_gw);
    // A solicited advertisement to a group is invalid.
    let na = na_frame(
        (ALL_NODES, mac_of(ALL_NODES)),
        (gw_ip(), GW),
        icmp6::NA_SOLICITED | icmp6::NA_OVERRIDE,
    );
    h.send(1, &na, t(700));
    assert_eq!(h.node_drops(DropReason::BadHeader), 1);
    h.send(0, &f, t(800));
    assert_eq!(&h.recv(1)[0][0..6], &new_gw);
}

#[test]
fn an_interface_without_ipv4_takes_no_ipv4() {
    let mut cfg = config6();
    cfg.interfaces[1].address = Some((std::net::Ipv4Addr::new(10, 0, 1, 1), 24));
    let mut h = started(cfg);
    // lan has no IPv4 address (it answers no ARP there): IPv4 arriving on it is not for
    // the router, neither to forward nor to answer (its errors would come from 0.0.0.0).
    for dst in ["10.0.1.7", "198.51.100.1", "10.0.1.1"] {
        let f = ip_frame(R0, H0, "10.0.0.5", dst, 64, PROTO_UDP, &[0; 8]);
        h.send(0, &f, t(100));
    }
    assert!(h.recv_each().iter().all(Vec::is_empty));
    assert_eq!(h.node_drops(DropReason::NotForUs), 3);
    // wan, which has one, still answers.
    let f = ip_frame(R1, H1, "10.0.1.7", "10.0.1.1", 64, PROTO_UDP, &[0; 8]);
    h.send(1, &f, t(200));
    let out = h.recv(1);
    assert_eq!(out.len(), 1);
    assert_eq!(
        &out[0][26..30],
        &[10, 0, 1, 1],
        "port unreachable from wan's address"
    );
    assert_eq!(h.pool().available(), 64);
}

// 9. Tables.

#[test]
fn shows_ipv6_routes_and_interface_addresses() {
    let r = Router::new(config6()).expect("router");
    let stats = r.stats();
    let routes = r.show("routes", t(0)).expect("routes");
    let row = |p: &str, via: Option<&str>, g: u64, k: &str| {
        vec![text(p), via.map_or(Cell::None, text), Cell::Int(g), text(k)]
    };
    assert_eq!(
        routes.rows,
        vec![
            row("2001:db8::/64", None, 0, "connected"),
            row("2001:db8::1/128", None, 0, "local"),
            row("2001:db8:1::/64", None, 1, "connected"),
            row("2001:db8:1::1/128", None, 1, "local"),
            row("2001:db8:2::/48", Some("2001:db8:1::fe"), 1, "static"),
        ]
    );
    assert_eq!(stats.routes.get(), 5);
    let ifs = r.show("interfaces", t(0)).expect("interfaces");
    assert_eq!(
        column(&ifs, "address"),
        vec![
            text("fe80::aa:ff:fe00:0/64 2001:db8::1/64"),
            text("fe80::aa:ff:fe00:1/64 2001:db8:1::1/64"),
        ]
    );
    assert_eq!(column(&ifs, "mtu"), vec![Cell::Int(1500), Cell::Int(1400)]);
    // Dual stack: the IPv4 address first.
    let mut cfg = config6();
    cfg.interfaces[0].address = Some((std::net::Ipv4Addr::new(10, 0, 0, 1), 24));
    let r = Router::new(cfg).expect("router");
    let ifs = r.show("interfaces", t(0)).expect("interfaces");
    assert_eq!(
        column(&ifs, "address")[0],
        text("10.0.0.1/24 fe80::aa:ff:fe00:0/64 2001:db8::1/64")
    );
    let routes = r.show("routes", t(0)).expect("routes");
    assert_eq!(routes.rows.len(), 3 + 5);
}

// 10. Malformed input.

/// `k` destination-options headers (8 bytes each) before `last` and `upper`.
fn with_extensions(k: usize, last: u8, upper: &[u8]) -> (u8, Vec<u8>) {
    let mut p = Vec::new();
    for i in 0..k {
        let next = if i + 1 == k { last } else { 60 };
        p.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    p.extend_from_slice(upper);
    (if k == 0 { last } else { 60 }, p)
}

#[test]
fn malformed_ipv6_is_dropped_with_reasons() {
    let mut h = started(config6());
    let good = udp_frame((R0, H0), host(), lan_ip(), 64, &[0; 8]);
    // Truncated inside the fixed header.
    h.send(0, &good[..14 + 20], t(100));
    assert_eq!(h.node_drops(DropReason::Runt), 1);
    // A payload length past the frame.
    let mut long = good.clone();
    long[18..20].copy_from_slice(&200u16.to_be_bytes());
    h.send(0, &long, t(100));
    assert_eq!(h.node_drops(DropReason::BadHeader), 1);
    // Extension headers: eight are walked, nine are too many, and one running past the
    // end is refused.
    let dg = udp(host(), lan_ip(), &[0; 8]);
    let (next, p) = with_extensions(8, PROTO_UDP, &dg);
    h.send(
        0,
        &v6_frame((R0, H0), (host(), lan_ip()), 64, next, &p),
        t(100),
    );
    assert_eq!(
        types(&h.recv(0)),
        [icmp6::DEST_UNREACHABLE],
        "port unreachable"
    );
    let (next, p) = with_extensions(9, PROTO_UDP, &dg);
    h.send(
        0,
        &v6_frame((R0, H0), (host(), lan_ip()), 64, next, &p),
        t(100),
    );
    assert_eq!(h.node_drops(DropReason::BadHeader), 2);
    let (next, mut p) = with_extensions(1, PROTO_UDP, &dg);
    p[1] = 10;
    h.send(
        0,
        &v6_frame((R0, H0), (host(), lan_ip()), 64, next, &p),
        t(100),
    );
    assert_eq!(h.node_drops(DropReason::BadHeader), 3);
    // A header cut off before its length byte.
    h.send(
        0,
        &v6_frame((R0, H0), (host(), lan_ip()), 64, 0, &[17]),
        t(100),
    );
    assert_eq!(h.node_drops(DropReason::BadHeader), 4);
    // ND options of length zero, in each ND message.
    let zero = [1u8, 0, 0, 0, 0, 0, 0, 0];
    let group = icmp6::solicited_node(lan_ip());
    let mut b = ns_body(lan_ip(), None);
    b.extend_from_slice(&zero);
    let ns = icmp_frame(
        (mac_of(group), H0),
        (host(), group),
        255,
        (icmp6::NEIGHBOR_SOLICIT, 0),
        &b,
    );
    let mut b = vec![icmp6::NA_OVERRIDE, 0, 0, 0];
    b.extend_from_slice(&near().to_be_bytes());
    b.extend_from_slice(&zero);
    let na = icmp_frame(
        (R0, H0),
        (host(), lan_ip()),
        255,
        (icmp6::NEIGHBOR_ADVERT, 0),
        &b,
    );
    let mut b = vec![0u8; 4];
    b.extend_from_slice(&zero);
    let rs = icmp_frame(
        (mac_of(icmp6::ALL_ROUTERS), H0),
        (host(), icmp6::ALL_ROUTERS),
        255,
        (icmp6::ROUTER_SOLICIT, 0),
        &b,
    );
    for f in [&ns, &na, &rs] {
        h.send(0, f, t(100));
    }
    assert_eq!(h.node_drops(DropReason::BadHeader), 7);
    // ND messages too short for their fixed part.
    for ty in [icmp6::NEIGHBOR_SOLICIT, icmp6::NEIGHBOR_ADVERT] {
        let f = icmp_frame((R0, H0), (host(), lan_ip()), 255, (ty, 0), &[0; 8]);
        h.send(0, f.as_slice(), t(100));
    }
    let f = icmp_frame(
        (R0, H0),
        (host(), lan_ip()),
        255,
        (icmp6::ROUTER_SOLICIT, 0),
        &[],
    );
    h.send(0, &f, t(100));
    assert_eq!(h.node_drops(DropReason::BadHeader), 10);
    // An ICMPv6 message shorter than its header.
    let f = v6_frame((R0, H0), (host(), lan_ip()), 64, 58, &[128, 0]);
    h.send(0, &f, t(100));
    assert_eq!(h.node_drops(DropReason::Runt), 2);
    assert!(h.recv_each().iter().all(Vec::is_empty), "no answer to any");
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn malformed_ipv6_never_panics() {
    const POOL: usize = 4096;
    let mut cfg = config6();
    cfg.neighbors6 = vec![(Ipv6Addr::from(gw_ip()), MacAddr(GW))];
    let mut h = Harness::new(Box::new(Router::new(cfg).expect("router")), 2, POOL);
    h.tick(t(0));
    h.recv_each();
    let dg = udp(host(), lan_ip(), &[0; 8]);
    let seeds: Vec<Vec<u8>> = vec![
        ns_frame(H0, host(), lan_ip()),
        ns_frame(H0, 0, lan_ip()),
        na_frame((lan_ip(), R0), (host(), H0), icmp6::NA_SOLICITED),
        rs_frame(H0, host_ll()),
        icmp_frame(
            (R0, H0),
            (host(), lan_ip()),
            64,
            (icmp6::ECHO_REQUEST, 0),
            &echo_body(),
        ),
        icmp_frame(
            (mac_of(ALL_NODES), H0),
            (host(), ALL_NODES),
            64,
            (icmp6::ECHO_REQUEST, 0),
            &echo_body(),
        ),
        udp_frame((R0, H0), host(), far(), 64, &[1; 40]),
        udp_frame((R0, H0), host(), near(), 2, &[1; 40]),
        {
            let (next, p) = with_extensions(3, PROTO_UDP, &dg);
            v6_frame((R0, H0), (host(), lan_ip()), 64, next, &p)
        },
        {
            let (next, p) = with_extensions(2, 58, &icmp_msg(host(), lan_ip(), 128, 0, &[0; 8]));
            v6_frame((R0, H0), (host(), lan_ip()), 64, next, &p)
        },
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut now = 100;
    for seed in &seeds {
        // Every truncation, with its payload length kept and made to fit.
        for n in 0..seed.len() {
            h.send(0, &seed[..n], t(now));
            let mut fit = seed[..n].to_vec();
            if n >= 20 {
                let len = n.saturating_sub(54) as u16;
                fit[18..20].copy_from_slice(&len.to_be_bytes());
            }
            h.send(0, &fit, t(now));
        }
        // Random bytes changed, more and more of them.
        for round in 0..400 {
            let mut f = seed.clone();
            for _ in 0..1 + round % 8 {
                let i = 14 + (rng.next() as usize) % (f.len() - 14);
                f[i] = rng.next() as u8;
            }
            let gate = (rng.next() % 2) as usize;
            h.send(gate, &f, t(now));
            if round % 50 == 0 {
                now += 150;
                h.tick(t(now));
                h.recv_each();
            }
        }
    }
    // Everything waiting gives up; every buffer comes back.
    for s in 1..=5 {
        h.tick(t(now + s * 1000));
    }
    h.recv_each();
    assert_eq!(h.pool().available(), POOL);
}
