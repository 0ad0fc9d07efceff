//! The router's DHCP relay through a [`Harness`]: client broadcasts up to each server,
//! server replies down to the client, the hops limit, relays further down, what is not
//! relayed, and malformed messages.
//!
//! The router is `tests::config`'s: lan 10.0.0.1/24 (gate 0) relays to 10.0.1.9 (on wan,
//! gate 1) and 192.0.2.7 (through the static route via 10.0.1.254).

use std::net::Ipv4Addr;

use nfv_dataplane::testing::Harness;
use nfv_dataplane::{Cell, DropReason, Timestamp};

use super::tests::{config, harness, ip_frame, ip_of, t, teach, GW, H0, H1, R0, R1};
use super::*;
use crate::ip;
use crate::testframes::{column, text, Shared};

const SERVER: &str = "10.0.1.9";
const FAR_SERVER: &str = "192.0.2.7";

fn relay_config() -> RouterConfig {
    let mut c = config();
    c.interfaces[0].dhcp_relay = vec![SERVER.parse().expect("a"), FAR_SERVER.parse().expect("a")];
    c
}

/// A router that knows the server's and the gateway's MACs.
fn relay_router() -> Harness {
    let mut h = harness(relay_config());
    teach(&mut h, 1, H1, SERVER, t(0));
    teach(&mut h, 1, GW, "10.0.1.254", t(0));
    h
}

fn ipa(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().expect("address"))
}

/// A BOOTP message: `op`, `hops`, the broadcast flag, ciaddr, yiaddr, giaddr, chaddr H0,
/// a DHCP message type option.
fn bootp(op: u8, hops: u8, broadcast: bool, (ci, yi, gi): (&str, &str, &str)) -> Vec<u8> {
    let mut d = vec![0u8; 240];
    d[0] = op;
    d[1] = 1;
    d[2] = 6;
    d[3] = hops;
    d[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    if broadcast {
        d[10] = 0x80;
    }
    d[12..16].copy_from_slice(&ipa(ci).to_be_bytes());
    d[16..20].copy_from_slice(&ipa(yi).to_be_bytes());
    d[24..28].copy_from_slice(&ipa(gi).to_be_bytes());
    d[28..34].copy_from_slice(&H0);
    d[236..240].copy_from_slice(&0x6382_5363u32.to_be_bytes());
    d.extend_from_slice(&[53, 1, if op == 1 { 1 } else { 2 }, 255]);
    d
}

/// Ethernet + IPv4 + UDP (`ports`, no checksum) around `body`.
fn udp_frame(
    (dst_mac, src_mac): ([u8; 6], [u8; 6]),
    (src, dst): (&str, &str),
    ports: (u16, u16),
    body: &[u8],
) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&ports.0.to_be_bytes());
    u.extend_from_slice(&ports.1.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    ip_frame(dst_mac, src_mac, src, dst, 64, 17, &u)
}

/// A client's broadcast DISCOVER on the lan.
fn client_discover(hops: u8) -> Vec<u8> {
    let body = bootp(1, hops, false, ("0.0.0.0", "0.0.0.0", "0.0.0.0"));
    udp_frame(
        ([0xff; 6], H0),
        ("0.0.0.0", "255.255.255.255"),
        (68, 67),
        &body,
    )
}

/// A server's reply to the router's lan address.
fn server_reply(
    from: &str,
    to: &str,
    broadcast: bool,
    (ci, yi, gi): (&str, &str, &str),
) -> Vec<u8> {
    let body = bootp(2, 0, broadcast, (ci, yi, gi));
    udp_frame((R1, H1), (from, to), (67, 67), &body)
}

/// What a relayed frame says: MACs, IP addresses, TTL, UDP ports, and its BOOTP body,
/// both checksums checked.
struct Seen {
    macs: ([u8; 6], [u8; 6]),
    ips: (u32, u32),
    ttl: u8,
    ports: (u16, u16),
    body: Vec<u8>,
}

fn seen(f: &[u8]) -> Seen {
    let ipd = ip_of(f);
    assert!(ip::header_checksum_ok(&ipd[..20]), "IP checksum");
    assert_eq!(ipd[0], 0x45);
    let total = usize::from(ip::read_u16(ipd, 2));
    assert_eq!(total, ipd.len(), "no padding behind");
    let udp = &ipd[20..total];
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ipd[12..20]);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(udp);
    assert_eq!(ip::sum(&pseudo), 0xffff, "UDP checksum");
    let mut macs = ([0u8; 6], [0u8; 6]);
    macs.0.copy_from_slice(&f[0..6]);
    macs.1.copy_from_slice(&f[6..12]);
    Seen {
        macs,
        ips: (ip::read_u32(ipd, 12), ip::read_u32(ipd, 16)),
        ttl: ipd[8],
        ports: (ip::read_u16(udp, 0), ip::read_u16(udp, 2)),
        body: udp[8..].to_vec(),
    }
}

#[test]
fn a_client_broadcast_goes_to_each_server_with_giaddr_and_one_more_hop() {
    let r = Router::new(relay_config()).expect("router");
    let stats = r.stats();
    let mut h = Harness::new(Box::new(r), 2, 64);
    teach(&mut h, 1, H1, SERVER, t(0));
    teach(&mut h, 1, GW, "10.0.1.254", t(0));
    let sent = client_discover(0);
    h.send(0, &sent, t(1));
    assert!(h.recv(0).is_empty());
    let out = h.recv(1);
    assert_eq!(out.len(), 2, "one per server");
    let original = &sent[42..];
    for (f, (mac, server)) in out.iter().zip([(H1, SERVER), (GW, FAR_SERVER)]) {
        let s = seen(f);
        assert_eq!(s.macs, (mac, R1), "to the next hop toward {server}");
        assert_eq!(
            s.ips,
            (ipa("10.0.1.1"), ipa(server)),
            "from the outgoing interface"
        );
        assert_eq!((s.ttl, s.ports), (64, (67, 67)));
        assert_eq!(s.body.len(), original.len());
        assert_eq!(s.body[3], 1, "hops");
        assert_eq!(&s.body[24..28], &[10, 0, 0, 1], "giaddr: the lan's address");
        let unchanged = |b: &[u8]| [&b[..3], &b[4..24], &b[28..]].concat();
        assert_eq!(unchanged(&s.body), unchanged(original));
    }
    assert_eq!(stats.dhcp_relayed_to_server.get(), 2);
    // To the lan's broadcast address too.
    let body = bootp(1, 0, false, ("0.0.0.0", "0.0.0.0", "0.0.0.0"));
    h.send(
        0,
        &udp_frame(([0xff; 6], H0), ("0.0.0.0", "10.0.0.255"), (68, 67), &body),
        t(2),
    );
    assert_eq!(h.recv(1).len(), 2);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn a_servers_reply_goes_to_its_client_unicast_or_broadcast() {
    let r = Router::new(relay_config()).expect("router");
    let stats = r.stats();
    let mut h = Harness::new(Box::new(r), 2, 64);
    let cases = [
        // (broadcast flag, ciaddr, yiaddr) -> (MAC, IP)
        ((false, "0.0.0.0", "10.0.0.50"), (H0, "10.0.0.50")),
        (
            (true, "0.0.0.0", "10.0.0.50"),
            ([0xff; 6], "255.255.255.255"),
        ),
        ((false, "10.0.0.60", "0.0.0.0"), (H0, "10.0.0.60")),
        (
            (false, "0.0.0.0", "0.0.0.0"),
            ([0xff; 6], "255.255.255.255"),
        ),
    ];
    for (k, ((flag, ci, yi), (mac, ip))) in cases.into_iter().enumerate() {
        let f = server_reply(SERVER, "10.0.0.1", flag, (ci, yi, "10.0.0.1"));
        h.send(1, &f, t(k as u64));
        assert!(h.recv(1).is_empty());
        let out = h.recv(0);
        assert_eq!(out.len(), 1, "case {k}");
        let s = seen(&out[0]);
        assert_eq!(s.macs, (mac, R0), "case {k}");
        assert_eq!(s.ips, (ipa("10.0.0.1"), ipa(ip)), "case {k}");
        assert_eq!(s.ports, (67, 68), "case {k}");
        assert_eq!(s.body, f[42..].to_vec(), "the message unchanged, case {k}");
    }
    assert_eq!(stats.dhcp_relayed_to_client.get(), 4);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn replies_not_from_a_server_or_not_for_a_relay_are_not_relayed() {
    let mut h = relay_router();
    // From an address that is not a server: UDP to the router, port unreachable.
    let f = server_reply(
        "10.0.1.8",
        "10.0.0.1",
        false,
        ("0.0.0.0", "10.0.0.50", "10.0.0.1"),
    );
    h.send(1, &f, t(1));
    let back = h.recv(1);
    assert_eq!(back.len(), 1);
    assert_eq!((ip_of(&back[0])[20], ip_of(&back[0])[21]), (3, 3));
    // To the wan's address, which relays nothing: the same.
    let f = server_reply(
        SERVER,
        "10.0.1.1",
        false,
        ("0.0.0.0", "10.0.0.50", "10.0.1.1"),
    );
    h.send(1, &f, t(2));
    assert_eq!(h.recv(1).len(), 1);
    // From a server, to the lan's address, but for another relay's giaddr.
    let f = server_reply(
        SERVER,
        "10.0.0.1",
        false,
        ("0.0.0.0", "10.0.0.50", "10.0.0.99"),
    );
    h.send(1, &f, t(3));
    assert!(h.recv(1).is_empty());
    assert!(h.recv(0).is_empty());
    assert_eq!(h.node_drops(DropReason::NotForUs), 3);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn a_request_past_16_hops_is_dropped_and_one_at_16_goes_on() {
    let mut h = relay_router();
    h.send(0, &client_discover(17), t(1));
    assert!(h.recv(1).is_empty());
    assert_eq!(h.node_drops(DropReason::RelayHops), 1);
    h.send(0, &client_discover(16), t(2));
    let out = h.recv(1);
    assert_eq!(out.len(), 2);
    assert_eq!(seen(&out[0]).body[3], 17);
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn a_request_from_a_relay_further_down_keeps_its_giaddr() {
    let mut h = relay_router();
    let body = bootp(1, 1, false, ("0.0.0.0", "0.0.0.0", "10.5.0.1"));
    let f = udp_frame((R0, H0), ("10.0.0.77", "10.0.0.1"), (67, 67), &body);
    h.send(0, &f, t(1));
    let out = h.recv(1);
    assert_eq!(out.len(), 2);
    let s = seen(&out[0]);
    assert_eq!((s.body[3], &s.body[24..28]), (2, &[10, 5, 0, 1][..]));
}

#[test]
fn malformed_or_foreign_broadcasts_are_dropped_with_reasons() {
    let mut h = relay_router();
    let good = client_discover(0);
    // The message cut below BOOTP's fixed fields.
    let body = bootp(1, 0, false, ("0.0.0.0", "0.0.0.0", "0.0.0.0"));
    let short = udp_frame(
        ([0xff; 6], H0),
        ("0.0.0.0", "255.255.255.255"),
        (68, 67),
        &body[..100],
    );
    h.send(0, &short, t(1));
    // A BOOTREPLY broadcast by someone on the lan.
    let reply = bootp(2, 0, false, ("0.0.0.0", "0.0.0.0", "0.0.0.0"));
    h.send(
        0,
        &udp_frame(
            ([0xff; 6], H0),
            ("0.0.0.0", "255.255.255.255"),
            (68, 67),
            &reply,
        ),
        t(1),
    );
    // A UDP length past the datagram.
    let mut long = good.clone();
    long[38..40].copy_from_slice(&2000u16.to_be_bytes());
    h.send(0, &long, t(1));
    // Cut inside the UDP header: the IP length runs past the frame.
    h.send(0, &good[..40], t(1));
    assert_eq!(h.node_drops(DropReason::BadHeader), 4);
    let mut bad_sum = good.clone();
    bad_sum[24] ^= 1;
    h.send(0, &bad_sum, t(1));
    assert_eq!(h.node_drops(DropReason::BadChecksum), 1);
    // Not DHCP, and DHCP on the wan, which does not relay.
    let mut other_port = good.clone();
    other_port[36..38].copy_from_slice(&53u16.to_be_bytes());
    h.send(0, &other_port, t(1));
    h.send(1, &good, t(1));
    assert_eq!(h.node_drops(DropReason::NotForUs), 2);
    assert!(h.recv(0).is_empty() && h.recv(1).is_empty());
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn an_unresolved_server_waits_for_arp_and_its_failure_sends_no_icmp() {
    let mut cfg = relay_config();
    cfg.interfaces[0].dhcp_relay.truncate(1);
    let mut h = harness(cfg);
    h.send(0, &client_discover(0), t(1));
    let asked = h.recv(1);
    assert_eq!(asked.len(), 1, "an ARP request for the server");
    assert_eq!(&asked[0][12..14], &[8, 6]);
    for s in 1..=4 {
        h.tick(t(s * 1000));
    }
    h.recv(1);
    assert_eq!(h.node_drops(DropReason::ArpFailed), 1);
    let lan: Vec<Vec<u8>> = h
        .recv(0)
        .into_iter()
        .filter(|f| f[12..14] == [8, 0])
        .collect();
    assert!(
        lan.is_empty(),
        "no ICMP about the router's own datagram: {lan:?}"
    );
    assert_eq!(h.pool().available(), 64);
}

#[test]
fn the_interfaces_table_and_metrics_show_the_relay() {
    let r = Router::new(relay_config()).expect("router");
    let stats = r.stats();
    let r = Shared::new(r);
    let ifs = r.show("interfaces", Timestamp::ZERO).expect("interfaces");
    assert_eq!(
        column(&ifs, "dhcp_relay"),
        vec![text("10.0.1.9 192.0.2.7"), Cell::None]
    );
    stats.dhcp_relayed_to_client.add(3);
    let mut seen = Vec::new();
    crate::kind::Stats::visit(&*stats, &mut |m, labels, v| {
        if m.name == "nfv_router_dhcp_relayed_total" {
            seen.push((labels.join(","), v));
        }
    });
    assert_eq!(
        seen,
        [("to_server".into(), 0), ("to_client".to_string(), 3)]
    );
}
