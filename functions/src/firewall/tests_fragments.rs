//! The firewall node with fragments (IPv4 and IPv6: later fragments follow their first
//! fragment's verdict, rule and connection; held when early, timed out, bounded) and with
//! RFC 4890's MLD exception. Real frames from [`crate::testframes`], cut by the test.

use super::tests::{harness, passes, t, IN, IN6, OUT, OUT6};
use super::tests_ipv6::drop_all;
use super::*;
use crate::conntrack::tcp_flags::SYN;
use crate::testframes::*;
use nfv_dataplane::testing::Harness;

fn hits(v: &[Counter]) -> Vec<u64> {
    v.iter().map(Counter::get).collect()
}

/// A UDP datagram of 1400 payload bytes in three IPv4 fragments (600, 600, 208 bytes).
fn udp_frags(src: &str, sport: u16, dst: &str, dport: u16, id: u16) -> Vec<Vec<u8>> {
    let f = fragments4(&udp(src, sport, dst, dport, &payload(1400), true), id, 600);
    assert_eq!(f.len(), 3);
    f
}

/// The same over IPv6.
fn udp6_frags(src: &str, sport: u16, dst: &str, dport: u16, id: u32) -> Vec<Vec<u8>> {
    let dgram = udp6_datagram(src, sport, dst, dport, &payload(1400));
    let f = fragments6(src, dst, PROTO_UDP, &dgram, id, 600);
    assert_eq!(f.len(), 3);
    f
}

#[test]
fn later_fragments_follow_their_first_fragments_verdict_rule_and_connection() {
    let (mut h, st) = harness(FirewallConfig::default());
    let out = udp_frags(IN, 5000, OUT, 53, 7);
    let got = send_each(&mut h, 0, &[&out[0], &out[1], &out[2]], t(0));
    assert_eq!(
        (&got[1], got[0].len()),
        (&out, 0),
        "all three pass, in order"
    );
    assert_eq!(
        st.connections.get(),
        1,
        "one connection, from the first fragment"
    );
    // The replies come in as established (the inbound rule 0), the three of them.
    let reply = udp_frags(OUT, 53, IN, 5000, 9);
    let got = send_each(&mut h, 1, &[&reply[0], &reply[1], &reply[2]], t(1));
    assert_eq!(got[0], reply);
    assert_eq!(hits(&st.inbound), vec![3, 0]);
    // An unsolicited datagram: the default drops its first fragment, and so its others.
    let other = udp_frags(OUT, 53, IN, 6000, 10);
    let got = send_each(&mut h, 1, &[&other[0], &other[1], &other[2]], t(2));
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(h.node_drops(DropReason::FwDenied), 3);
    assert_eq!(hits(&st.inbound), vec![3, 3], "each fragment counts a hit");
    assert_eq!(st.fragments.followed.get(), 6);
    assert_eq!(st.fragments.datagrams.get(), 3);
    assert_eq!(st.fragments.held.get(), 0);
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn a_later_fragment_keeps_its_connection_alive() {
    // UDP seen one way lives 30 s. The first fragment opens it at 0 s, the later ones come
    // at 1.5 s: the connection then lives to 31.5 s, and a reply at 31 s is established.
    let (mut h, _) = harness(FirewallConfig::default());
    let out = udp_frags(IN, 5000, OUT, 53, 7);
    assert!(passes(&mut h, 0, &out[0], t(0)));
    assert!(passes(&mut h, 0, &out[1], t(1500)));
    assert!(passes(&mut h, 0, &out[2], t(1500)));
    let reply = udp(OUT, 53, IN, 5000, b"a", true);
    assert!(passes(&mut h, 1, &reply, t(31_000)));
}

#[test]
fn early_fragments_wait_for_their_first_and_follow_it_out_in_order() {
    let (mut h, st) = harness(FirewallConfig::default());
    assert!(passes(&mut h, 0, &udp(IN, 5000, OUT, 53, b"q", true), t(0)));
    let reply = udp_frags(OUT, 53, IN, 5000, 9);
    let got = send_each(&mut h, 1, &[&reply[2], &reply[1]], t(1));
    assert!(got.iter().all(Vec::is_empty), "held: {got:?}");
    assert_eq!(st.fragments.held.get(), 2);
    let got = send_each(&mut h, 1, &[&reply[0]], t(2));
    assert_eq!(
        got[0],
        vec![reply[0].clone(), reply[2].clone(), reply[1].clone()]
    );
    assert_eq!(st.fragments.held.get(), 0);
    assert_eq!(hits(&st.inbound), vec![3, 0]);
    // Held fragments of a datagram the rules drop are dropped with their first.
    let other = udp_frags(OUT, 53, IN, 6000, 10);
    let got = send_each(&mut h, 1, &[&other[1], &other[2], &other[0]], t(3));
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(h.node_drops(DropReason::FwDenied), 3);
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn fragments_whose_first_never_comes_time_out() {
    let (mut h, st) = harness(FirewallConfig::default());
    assert!(passes(&mut h, 0, &udp(IN, 5000, OUT, 53, b"q", true), t(0)));
    let reply = udp_frags(OUT, 53, IN, 5000, 9);
    assert!(!passes(&mut h, 1, &reply[1], t(0)), "held");
    h.tick(t(1000));
    assert_eq!(h.node_drops(DropReason::FragmentTimeout), 0);
    assert_eq!(st.fragments.held.get(), 1);
    // The sweep visits an eighth of the table a tick.
    for ms in 0..8 {
        h.tick(t(2001 + ms));
    }
    assert_eq!(h.node_drops(DropReason::FragmentTimeout), 1);
    assert_eq!(
        (st.fragments.held.get(), st.fragments.datagrams.get()),
        (0, 0)
    );
    assert_eq!(h.pool().available(), h.pool().size());
    // A first fragment that comes later still passes, and the rest follow it.
    assert!(passes(&mut h, 1, &reply[0], t(2100)));
    assert!(passes(&mut h, 1, &reply[2], t(2100)));
}

#[test]
fn held_fragments_and_datagrams_are_bounded() {
    let fw = Firewall::new(FirewallConfig::default());
    let st = fw.stats();
    let mut h = Harness::new(Box::new(fw), 2, 512);
    assert!(passes(&mut h, 0, &udp(IN, 5000, OUT, 53, b"q", true), t(0)));
    let reply = udp_frags(OUT, 53, IN, 5000, 9);
    // 64 fragments wait for one datagram; the 65th is refused.
    for _ in 0..fragments::HELD_PER_DATAGRAM + 1 {
        h.send(1, &reply[1], t(1));
    }
    assert_eq!(h.node_drops(DropReason::FragmentsFull), 1);
    // 256 in all: 192 more of other datagrams are held, the next 8 refused.
    for id in 0..200 {
        let f = udp_frags(OUT, 53, IN, 5000, 100 + id);
        h.send(1, &f[1], t(1));
    }
    assert_eq!(st.fragments.held.get(), fragments::MAX_HELD as u64);
    assert_eq!(h.node_drops(DropReason::FragmentsFull), 9);
    assert!(h.recv_each().iter().all(Vec::is_empty));
    for ms in 0..16 {
        h.tick(t(3000 + ms));
    }
    assert_eq!(
        h.node_drops(DropReason::FragmentTimeout),
        fragments::MAX_HELD as u64
    );
    assert_eq!(h.pool().available(), h.pool().size());
    // 1024 datagrams decided: the next first fragment finds no room and is dropped.
    for id in 0..fragments::MAX_DATAGRAMS as u16 {
        let f = udp_frags(IN, 5000, OUT, 53, id);
        assert!(passes(&mut h, 0, &f[0], t(4000)));
    }
    let f = udp_frags(IN, 5000, OUT, 53, 5000);
    assert!(!passes(&mut h, 0, &f[0], t(4000)));
    assert_eq!(h.node_drops(DropReason::FragmentsFull), 10);
}

#[test]
fn a_tiny_first_fragment_is_a_runt_and_so_is_its_datagram() {
    let (mut h, _) = harness(FirewallConfig::default());
    // A SYN cut every 8 bytes: the first fragment holds the ports but not the TCP header
    // (RFC 1858's tiny fragment): runt. The second, at offset 1, would overwrite the
    // flags (the overlapping fragment): bad header. The third follows the first: runt.
    let f = fragments4(&tcp(IN, 40000, OUT, 80, SYN, b""), 11, 8);
    assert_eq!(f.len(), 3);
    for g in &f {
        assert!(!passes(&mut h, 0, g, t(0)));
    }
    assert_eq!(h.node_drops(DropReason::Runt), 2);
    assert_eq!(h.node_drops(DropReason::BadHeader), 1);
    // UDP's 8-byte header fits the same first fragment: it passes, and so do the others.
    let f = fragments4(&udp(IN, 5000, OUT, 53, &payload(16), true), 12, 8);
    assert_eq!(f.len(), 3);
    for g in &f {
        assert!(passes(&mut h, 0, g, t(0)));
    }
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn ipv6_fragments_follow_their_first_in_order_and_out_of_order() {
    let (mut h, st) = harness(FirewallConfig::default());
    let out = udp6_frags(IN6, 5000, OUT6, 53, 99);
    let got = send_each(&mut h, 0, &[&out[0], &out[1], &out[2]], t(0));
    assert_eq!(got[1], out);
    assert_eq!(st.connections.get(), 1);
    // The reply's later fragments first: held, then out behind their first.
    let reply = udp6_frags(OUT6, 53, IN6, 5000, 5);
    let got = send_each(&mut h, 1, &[&reply[1], &reply[2]], t(1));
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    let got = send_each(&mut h, 1, &[&reply[0]], t(1));
    assert_eq!(got[0], reply);
    // A later fragment of it behind a destination options header follows it too.
    let mut p = ext6(44, 0);
    p.extend_from_slice(&frag6(PROTO_UDP, 3, false, 5));
    p.extend_from_slice(&[1; 16]);
    assert!(passes(&mut h, 1, &ipv6(OUT6, IN6, 60, 64, &p), t(1)));
    assert_eq!(hits(&st.inbound), vec![4, 0]);
    // Unsolicited, from elsewhere: dropped, all of it.
    let other = udp6_frags("2001:db8:3::1", 53, IN6, 5000, 5);
    let got = send_each(&mut h, 1, &[&other[2], &other[0], &other[1]], t(2));
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(h.node_drops(DropReason::FwDenied), 3);
    // An atomic fragment (offset 0, no more) is a whole packet: tracked by its ports.
    let mut a = frag6(PROTO_UDP, 0, false, 77);
    a.extend_from_slice(&udp6_datagram(OUT6, 53, IN6, 5000, b"x"));
    assert!(passes(&mut h, 1, &ipv6(OUT6, IN6, 44, 64, &a), t(3)));
    assert_eq!(st.fragments.datagrams.get(), 3, "not a datagram to track");
    assert_eq!(h.pool().available(), h.pool().size());
}

/// RFC 4890 section 4.4.1: MLD from a link-local source with hop limit 1 passes whatever
/// the rules say; other MLD is for the rules.
#[test]
fn link_local_mld_with_hop_limit_1_passes_the_rules() {
    let (mut h, st) = harness(drop_all());
    let mld = |src: &str, dst: &str, ty: u8, hop: u8| icmp6(src, dst, hop, ty, 0, 0, &[0; 16]);
    for (ty, dst) in [
        (130, "ff02::1"),
        (131, "ff02::1:3"),
        (132, "ff02::2"),
        (143, "ff02::16"),
    ] {
        for gate in [0, 1] {
            assert!(
                passes(&mut h, gate, &mld("fe80::1", dst, ty, 1), t(0)),
                "type {ty}"
            );
        }
    }
    assert_eq!(st.icmpv6_mld.get(), 8);
    // Not link-local, another hop limit, or not MLD: the rules drop them.
    let refused = [
        mld("2001:db8:1::1", "ff02::16", 143, 1),
        mld("fe80::1", "ff02::16", 143, 2),
        mld("fe80::1", "ff02::16", 144, 1),
    ];
    assert!(refused.iter().all(|f| !passes(&mut h, 0, f, t(0))));
    assert_eq!(st.icmpv6_mld.get(), 8);
    assert_eq!(h.node_drops(DropReason::FwDenied), 3);
}
