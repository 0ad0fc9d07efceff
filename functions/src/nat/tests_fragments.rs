//! The NAT node with fragments: later fragments get their first fragment's addresses (with
//! their IPv4 header checksum) and way out, also when they come first; the transport
//! checksum, fixed in the first fragment, is checked over the datagram put back together.
//! Real frames from [`crate::testframes`], cut by the test.

use super::tests::{config, harness, t, H, P, S};
use super::*;
use crate::conntrack::tcp_flags::{ACK, SYN};
use crate::testframes::*;
use nfv_dataplane::testing::Harness;

/// Source and destination address of an IPv4 frame.
fn addresses(f: &[u8]) -> (u32, u32) {
    (ip::read_u32(f, 26), ip::read_u32(f, 30))
}

/// The fragment offsets (8-byte units) of IPv4 frames, in their order.
fn offsets(frames: &[Vec<u8>]) -> Vec<u16> {
    frames
        .iter()
        .map(|f| ip::read_u16(f, 20) & 0x1fff)
        .collect()
}

#[test]
fn every_fragment_is_masqueraded_and_the_replies_come_back_translated() {
    let (mut h, st) = harness(config());
    let out = fragments4(&udp(H, 5000, S, 53, &payload(1400), true), 7, 600);
    let got = send_each(&mut h, 0, &[&out[0], &out[1], &out[2]], t(0));
    assert_eq!((got[0].len(), got[1].len()), (0, 3));
    for f in &got[1] {
        assert_eq!(addresses(f), (ipa(P), ipa(S)), "every fragment from {P}");
    }
    // Checked whole: header checksums (by `reassemble4`), UDP's over the datagram.
    let whole = reassemble4(&got[1]);
    check(&whole);
    assert_eq!(tuple(&whole), (a(P), 5000, a(S), 53));
    assert_eq!(&whole[42..], &payload(1400)[..], "the data untouched");
    // The replies, fragmented by the server, go to the inside host.
    let reply = fragments4(&udp(S, 53, P, 5000, &payload(1400), true), 9, 600);
    let got = send_each(&mut h, 1, &[&reply[0], &reply[1], &reply[2]], t(1));
    assert_eq!((got[0].len(), got[1].len()), (3, 0));
    let whole = reassemble4(&got[0]);
    check(&whole);
    assert_eq!(tuple(&whole), (a(S), 53, a(H), 5000));
    assert_eq!(st.translated.get(), 6);
    assert_eq!(st.fragments.followed.get(), 4);
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn early_fragments_wait_for_their_first_and_are_translated_after_it() {
    let (mut h, st) = harness(config());
    let out = udp(H, 5000, S, 53, b"q", true);
    h.send(0, &out, t(0));
    assert_eq!(h.recv(1).len(), 1);
    let reply = fragments4(&udp(S, 53, P, 5000, &payload(1400), true), 9, 600);
    let got = send_each(&mut h, 1, &[&reply[2], &reply[1]], t(1));
    assert!(got.iter().all(Vec::is_empty), "held: {got:?}");
    assert_eq!(st.fragments.held.get(), 2);
    let got = send_each(&mut h, 1, &[&reply[0]], t(2));
    assert_eq!(
        offsets(&got[0]),
        vec![0, 150, 75],
        "the first, then in arrival order"
    );
    check(&reassemble4(&got[0]));
    assert!(got[0].iter().all(|f| addresses(f) == (ipa(S), ipa(H))));
    assert_eq!(st.fragments.held.get(), 0);
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn fragments_of_a_dropped_first_fragment_are_dropped_for_its_reason() {
    let (mut h, _) = harness(config());
    // An inside TCP segment of no session (not a SYN): nat_no_session, all three.
    let f = fragments4(&tcp(H, 40000, S, 80, ACK, &payload(100)), 3, 48);
    assert_eq!(f.len(), 3);
    let got = send_each(&mut h, 0, &[&f[1], &f[0], &f[2]], t(0));
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(h.node_drops(DropReason::NatNoSession), 3);
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn hairpinned_fragments_go_back_inside_translated() {
    let (mut h, _) = harness(config());
    let f = fragments4(
        &tcp("192.168.1.11", 40000, P, 8080, SYN, &payload(100)),
        4,
        64,
    );
    assert_eq!(f.len(), 2);
    let got = send_each(&mut h, 0, &[&f[0], &f[1]], t(0));
    assert_eq!((got[0].len(), got[1].len()), (2, 0), "back inside");
    for g in &got[0] {
        assert_eq!(addresses(g), (ipa(P), ipa(H)));
        assert_eq!(
            (&g[0..6], &g[6..12]),
            (&IN_MAC[..], &OUT_MAC[..]),
            "MACs swapped"
        );
    }
    let whole = reassemble4(&got[0]);
    check(&whole);
    assert_eq!(tuple(&whole).2, a(H));
}

#[test]
fn early_fragments_time_out_or_find_no_room() {
    let fwd = Nat::new(config()).expect("nat");
    let mut h = Harness::new(Box::new(fwd), 2, 128);
    let reply = fragments4(&udp(S, 53, P, 5000, &payload(1400), true), 9, 600);
    for _ in 0..fragments::HELD_PER_DATAGRAM + 1 {
        h.send(1, &reply[1], t(0));
    }
    assert!(h.recv_each().iter().all(Vec::is_empty));
    assert_eq!(h.node_drops(DropReason::FragmentsFull), 1);
    for ms in 0..8 {
        h.tick(t(1000 + ms));
    }
    assert_eq!(h.node_drops(DropReason::FragmentTimeout), 0);
    for ms in 0..8 {
        h.tick(t(2001 + ms));
    }
    assert_eq!(
        h.node_drops(DropReason::FragmentTimeout),
        fragments::HELD_PER_DATAGRAM as u64
    );
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn ipv6_fragments_pass_untouched_and_are_never_held() {
    let (mut h, st) = harness(config());
    let dgram = udp6_datagram("2001:db8:1::10", 5000, "2001:db8:2::7", 53, &payload(1400));
    let f = fragments6("2001:db8:1::10", "2001:db8:2::7", PROTO_UDP, &dgram, 5, 600);
    for gate in [0, 1] {
        let got = send_each(&mut h, gate, &[&f[2], &f[1], &f[0]], t(0));
        assert_eq!(
            got[1 - gate],
            vec![f[2].clone(), f[1].clone(), f[0].clone()]
        );
    }
    assert_eq!(st.fragments.datagrams.get(), 0);
}

fn a(s: &str) -> std::net::Ipv4Addr {
    s.parse().expect("address")
}
