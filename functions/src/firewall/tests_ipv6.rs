//! The firewall node with IPv6: tracked flows, the RFC 4890 exceptions, rules with IPv6
//! prefixes, `reject`'s answers and malformed datagrams (fragments: `tests_fragments.rs`). Real frames from
//! [`crate::testframes`].

use super::tests::{harness, passes, prefix, rule, send, t, IN, IN6, OUT, OUT6};
use super::*;
use crate::conntrack::tcp_flags::{ACK, RST, SYN};
use crate::testframes::*;
use nfv_dataplane::testing::Harness;

const ROUTER6: &str = "2001:db8:ffff::1";

fn hits(v: &[Counter]) -> Vec<u64> {
    v.iter().map(Counter::get).collect()
}

/// Inbound and outbound drop everything the rules see: only what passes whatever the rules
/// say gets through.
pub(super) fn drop_all() -> FirewallConfig {
    let none = RuleSet {
        default: Action::Drop,
        rules: Vec::new(),
    };
    FirewallConfig {
        inbound: none.clone(),
        outbound: none,
        ..FirewallConfig::default()
    }
}

#[test]
fn an_outbound_ipv6_tcp_flow_is_allowed_and_its_replies_are_established() {
    let (mut h, st) = harness(FirewallConfig::default());
    assert!(passes(
        &mut h,
        0,
        &tcp6(IN6, 40000, OUT6, 80, SYN, b""),
        t(0)
    ));
    assert!(passes(
        &mut h,
        1,
        &tcp6(OUT6, 80, IN6, 40000, SYN | ACK, b""),
        t(1)
    ));
    assert!(passes(
        &mut h,
        0,
        &tcp6(IN6, 40000, OUT6, 80, ACK, b"GET"),
        t(2)
    ));
    assert!(passes(
        &mut h,
        1,
        &tcp6(OUT6, 80, IN6, 40000, ACK, b"200"),
        t(3)
    ));
    // Unsolicited: a SYN from the outside, and an ACK that belongs to nothing.
    assert!(!passes(
        &mut h,
        1,
        &tcp6(OUT6, 5555, IN6, 22, SYN, b""),
        t(3)
    ));
    assert!(!passes(
        &mut h,
        1,
        &tcp6(OUT6, 80, IN6, 40001, ACK, b""),
        t(3)
    ));
    // UDP and echo the same way.
    assert!(passes(&mut h, 0, &udp6(IN6, 9999, OUT6, 53, b"q"), t(4)));
    assert!(passes(&mut h, 1, &udp6(OUT6, 53, IN6, 9999, b"a"), t(5)));
    assert!(!passes(&mut h, 1, &udp6(OUT6, 53, IN6, 9998, b"a"), t(5)));
    assert!(passes(&mut h, 0, &echo6(IN6, OUT6, 128, 9), t(6)));
    assert!(passes(&mut h, 1, &echo6(OUT6, IN6, 129, 9), t(7)));
    assert!(
        !passes(&mut h, 1, &echo6(OUT6, IN6, 129, 10), t(7)),
        "no request"
    );
    assert!(
        !passes(&mut h, 1, &echo6(OUT6, IN6, 128, 9), t(7)),
        "ping in"
    );
    assert_eq!(h.node_drops(DropReason::FwDenied), 5);
    assert_eq!(st.connections.get(), 3);
    assert_eq!(hits(&st.inbound), vec![4, 5]);
    assert_eq!(hits(&st.outbound), vec![4]);
    // The IPv6 connections are in the table, after the IPv4 ones.
    assert!(passes(&mut h, 0, &udp(IN, 1, OUT, 2, b"", true), t(8)));
    let f = Shared::new(Firewall::new(FirewallConfig::default()));
    let mut h2 = nfv_dataplane::testing::Harness::new(Box::new(f.clone()), 2, 64);
    assert!(passes(
        &mut h2,
        0,
        &tcp6(IN6, 40000, OUT6, 80, SYN, b""),
        t(0)
    ));
    assert!(passes(&mut h2, 0, &echo6(IN6, OUT6, 128, 9), t(0)));
    assert!(passes(&mut h2, 0, &udp(IN, 1, OUT, 2, b"", true), t(0)));
    let ct = f.show("conntrack", t(0)).expect("conntrack");
    assert_eq!(
        column(&ct, "src"),
        vec![
            text("192.168.1.10:1"),
            text("[2001:db8:1::10]:40000"),
            text("2001:db8:1::10 id 9")
        ]
    );
    assert_eq!(
        column(&ct, "proto"),
        vec![text("udp"), text("tcp"), text("icmpv6")]
    );
    assert_eq!(column(&ct, "dst")[1], text("[2001:db8:2::7]:80"));
}

/// A burst with IPv4, IPv6 and ARP frames: each family's pass reads its own packets.
#[test]
fn a_mixed_burst_is_read_by_both_families() {
    let (mut h, st) = harness(FirewallConfig::default());
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&IN_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let out = vec![
        udp(IN, 1, OUT, 2, b"", true),
        udp6(IN6, 1, OUT6, 2, b""),
        arp.clone(),
        tcp6(IN6, 3, OUT6, 4, SYN, b""),
        tcp(IN, 3, OUT, 4, SYN, b""),
    ];
    h.send_burst(0, &out, t(0));
    assert_eq!(h.recv(1), out);
    assert_eq!(st.connections.get(), 4);
    let back = vec![
        udp6(OUT6, 2, IN6, 1, b""),
        tcp(OUT, 4, IN, 3, SYN | ACK, b""),
        tcp6(OUT6, 4, IN6, 3, SYN | ACK, b""),
        udp(OUT, 2, IN, 1, b"", true),
        udp6(OUT6, 2, IN6, 9, b""),
    ];
    h.send_burst(1, &back, t(1));
    assert_eq!(h.recv(1), Vec::<Vec<u8>>::new());
    assert_eq!(h.recv(0), back[..4].to_vec(), "all but the unsolicited one");
    assert_eq!(h.node_drops(DropReason::FwDenied), 1);
    assert_eq!(h.pool().available(), h.pool().size());
}

#[test]
fn neighbor_discovery_with_hop_limit_255_passes_whatever_the_rules_say() {
    let (mut h, st) = harness(drop_all());
    for ty in [133, 134, 135, 136] {
        for gate in [0, 1] {
            assert!(
                passes(&mut h, gate, &nd6("fe80::1", "ff02::1", ty, 255), t(0)),
                "type {ty} into gate {gate}"
            );
        }
    }
    assert_eq!(st.icmpv6_nd.get(), 8);
    // Forwarded (another hop limit), or a redirect: the rules decide.
    assert!(!passes(
        &mut h,
        1,
        &nd6("fe80::1", "ff02::1", 135, 64),
        t(0)
    ));
    assert!(!passes(
        &mut h,
        1,
        &nd6("fe80::1", "fe80::2", 137, 255),
        t(0)
    ));
    assert_eq!(st.icmpv6_nd.get(), 8);
    assert_eq!(h.node_drops(DropReason::FwDenied), 2);
    assert_eq!(st.connections.get(), 0, "not tracked");
    assert_eq!(
        hits(&st.inbound),
        vec![2],
        "no rule hit for those that pass"
    );
    assert_eq!(hits(&st.outbound), vec![0]);
}

#[test]
fn packet_too_big_passes_and_other_errors_pass_when_related() {
    let cfg = FirewallConfig {
        outbound: RuleSet {
            default: Action::Allow,
            rules: Vec::new(),
        },
        ..drop_all()
    };
    let (mut h, st) = harness(cfg);
    let flow = udp6(IN6, 5000, OUT6, 53, b"query");
    let syn = tcp6(IN6, 40000, OUT6, 443, SYN, &[0x5a; 1200]);
    assert!(passes(&mut h, 0, &flow, t(0)));
    assert!(passes(&mut h, 0, &syn, t(0)));
    let untracked = udp6(IN6, 6000, OUT6, 53, b"x");
    // Packet too big, about a tracked flow (the quote cut to fit 1280 bytes) or not.
    let ptb = icmp6_error(ROUTER6, IN6, 2, 0, 1280, &syn, 1232);
    assert_eq!(ptb.len(), 14 + 1280);
    assert!(passes(&mut h, 1, &ptb, t(1)));
    let ptb = icmp6_error(ROUTER6, IN6, 2, 0, 1280, &untracked, 1232);
    assert!(passes(&mut h, 1, &ptb, t(1)));
    assert_eq!(st.icmpv6_too_big.get(), 2);
    // Destination unreachable, time exceeded, parameter problem: related ones pass, even
    // with a quote of the fixed header and the ports only.
    for (ty, code) in [(1, 4), (3, 0), (4, 0)] {
        let e = icmp6_error(ROUTER6, IN6, ty, code, 0, &flow, 48);
        assert!(passes(&mut h, 1, &e, t(2)), "type {ty} related");
        let e = icmp6_error(ROUTER6, IN6, ty, code, 0, &syn, 1232);
        assert!(passes(&mut h, 1, &e, t(2)), "type {ty} about the TCP flow");
    }
    assert_eq!(st.icmpv6_related.get(), 6);
    // About nothing tracked, or with a quote too short for the ports: the rules drop them.
    let stray = icmp6_error(ROUTER6, IN6, 1, 4, 0, &untracked, 1232);
    assert!(!passes(&mut h, 1, &stray, t(3)));
    let short = icmp6_error(ROUTER6, IN6, 1, 4, 0, &flow, 43);
    assert!(!passes(&mut h, 1, &short, t(3)));
    assert_eq!(st.icmpv6_related.get(), 6);
    assert_eq!(h.node_drops(DropReason::FwDenied), 2);
    assert_eq!(hits(&st.inbound), vec![2]);
}

/// The quoted datagram of an error is walked like any other: one with a fragment header
/// (a first fragment) before its ports is related to its flow.
#[test]
fn an_error_quoting_a_first_fragment_is_related() {
    let (mut h, st) = harness(drop_all_but_outbound());
    let dgram = udp6_datagram(IN6, 5000, OUT6, 53, &[7; 100]);
    let mut payload = frag6(17, 0, true, 99);
    payload.extend_from_slice(&dgram);
    let first = ipv6(IN6, OUT6, 44, 64, &payload);
    assert!(
        passes(&mut h, 0, &first, t(0)),
        "a first fragment opens the flow"
    );
    assert_eq!(st.connections.get(), 1);
    let e = icmp6_error(ROUTER6, IN6, 3, 1, 0, &first, 1232);
    assert!(passes(&mut h, 1, &e, t(1)));
    assert_eq!(st.icmpv6_related.get(), 1);
}

fn drop_all_but_outbound() -> FirewallConfig {
    FirewallConfig {
        outbound: RuleSet {
            default: Action::Allow,
            rules: Vec::new(),
        },
        ..drop_all()
    }
}

#[test]
fn rules_with_ipv6_prefixes_match_ipv6_only_and_rules_without_match_both() {
    let cfg = FirewallConfig {
        inbound: RuleSet {
            default: Action::Drop,
            rules: vec![
                Rule {
                    src: Some(prefix("2001:db8:2::", 48)),
                    proto: Some(PROTO_TCP),
                    dst_port: Some(PortRange::one(22)),
                    ..rule(Action::Allow)
                },
                Rule {
                    src: Some(prefix("::", 0)),
                    proto: Some(PROTO_UDP),
                    ..rule(Action::Allow)
                },
                Rule {
                    dst: Some(prefix("0.0.0.0", 0)),
                    proto: Some(PROTO_ICMP),
                    ..rule(Action::Allow)
                },
                Rule {
                    proto: Some(PROTO_TCP),
                    dst_port: Some(PortRange::one(80)),
                    ..rule(Action::Allow)
                },
                Rule {
                    proto: Some(PROTO_ICMPV6),
                    icmp_type: Some(128),
                    ..rule(Action::Allow)
                },
                Rule {
                    dst: Some(prefix(IN6, 128)),
                    ..rule(Action::Allow)
                },
            ],
        },
        ..FirewallConfig::default()
    };
    let (mut h, st) = harness(cfg);
    assert!(passes(
        &mut h,
        1,
        &tcp6(OUT6, 1000, IN6, 22, SYN, b""),
        t(0)
    ));
    assert!(
        !passes(
            &mut h,
            1,
            &tcp6("2001:db8:3::7", 1000, "2001:db8:1::11", 22, SYN, b""),
            t(0)
        ),
        "src outside the prefix"
    );
    assert!(
        !passes(&mut h, 1, &tcp(OUT, 1000, IN, 22, SYN, b""), t(0)),
        "an IPv6 rule never matches IPv4"
    );
    assert!(passes(
        &mut h,
        1,
        &udp6(OUT6, 1, "2001:db8:1::11", 2, b""),
        t(0)
    ));
    assert!(
        !passes(&mut h, 1, &udp(OUT, 1, IN, 2, b"", true), t(0)),
        "::/0 holds no IPv4 address"
    );
    assert!(passes(&mut h, 1, &echo(OUT, IN, 8, 1), t(0)));
    assert!(
        passes(&mut h, 1, &echo6(OUT6, "2001:db8:1::11", 128, 1), t(0)),
        "icmpv6 rule"
    );
    assert!(
        !passes(&mut h, 1, &echo6(OUT6, "2001:db8:1::11", 129, 1), t(0)),
        "another ICMPv6 type"
    );
    assert!(passes(&mut h, 1, &tcp(OUT, 1000, IN, 80, SYN, b""), t(0)));
    assert!(passes(
        &mut h,
        1,
        &tcp6(OUT6, 1000, "2001:db8:1::11", 80, SYN, b""),
        t(0)
    ));
    // A /128 from an address alone.
    assert!(passes(&mut h, 1, &tcp6(OUT6, 1, IN6, 9, SYN, b""), t(0)));
    assert!(!passes(&mut h, 1, &tcp(OUT, 1, IN, 9, SYN, b""), t(0)));
    assert_eq!(hits(&st.inbound), vec![1, 1, 1, 2, 1, 1, 5]);
}

/// `reject` over IPv6: a RST for TCP, an ICMPv6 destination unreachable (port
/// unreachable) else, each read back field by field with its checksum recomputed.
#[test]
fn reject_answers_ipv6_tcp_with_a_rst_and_the_rest_with_dest_unreachable() {
    let cfg = FirewallConfig {
        outbound: RuleSet {
            default: Action::Reject,
            rules: Vec::new(),
        },
        ..FirewallConfig::default()
    };
    let (mut h, st) = harness(cfg);
    let syn = tcp6_seq(IN6, 40000, OUT6, 80, SYN, 5000, 0, b"abc");
    let got = send(&mut h, 0, &syn, t(0));
    assert!(got[1].is_empty());
    let [rst] = got[0].as_slice() else {
        panic!("one RST back: {got:?}")
    };
    check6(rst);
    let eth = EthernetFrame::new_checked(&rst[..]).expect("frame");
    assert_eq!(
        (eth.dst(), eth.src(), eth.ethertype()),
        (MacAddr(IN_MAC), MacAddr(OUT_MAC), ETHERTYPE_IPV6)
    );
    let ip = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (ip6a(OUT6), ip6a(IN6)));
    assert_eq!(
        (ip.next_header(), ip.hop_limit(), ip.payload_len()),
        (PROTO_TCP, 64, 20)
    );
    assert_eq!((ip.traffic_class(), ip.flow_label()), (0, 0));
    let seg = TcpPacket::new_checked(ip.payload()).expect("tcp");
    assert!(seg.verify_checksum_v6(&ip6a(OUT6), &ip6a(IN6)));
    assert_eq!((seg.src_port(), seg.dst_port()), (80, 40000));
    assert_eq!((seg.seq_number(), seg.ack_number()), (0, 5004));
    assert_eq!((seg.header_len(), seg.flags()), (20, RST | ACK));
    assert_eq!((seg.window(), seg.urgent()), (0, 0));
    // A segment with ACK gets a RST at its acknowledgment number; a RST gets nothing.
    let got = send(
        &mut h,
        0,
        &tcp6_seq(IN6, 40000, OUT6, 80, ACK, 7, 99, b"xy"),
        t(1),
    );
    let [rst] = got[0].as_slice() else {
        panic!("one RST back")
    };
    check6(rst);
    let seg = TcpPacket::new_checked(&rst[54..]).expect("tcp");
    assert_eq!(
        (seg.seq_number(), seg.ack_number(), seg.flags()),
        (99, 0, RST)
    );
    assert!(send(&mut h, 0, &tcp6(IN6, 1, OUT6, 2, RST, b""), t(2))
        .iter()
        .all(Vec::is_empty));
    // UDP: destination unreachable, port unreachable, quoting the datagram.
    let dgram = udp6(IN6, 9999, OUT6, 53, b"query");
    let got = send(&mut h, 0, &dgram, t(3));
    let [err] = got[0].as_slice() else {
        panic!("one ICMPv6 error back")
    };
    check6(err);
    let ip = Ipv6Packet::new_checked(&err[14..]).expect("ipv6");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (ip6a(OUT6), ip6a(IN6)));
    assert_eq!((ip.next_header(), ip.hop_limit()), (PROTO_ICMPV6, 64));
    let m = Icmpv6Packet::new_checked(ip.payload()).expect("icmpv6");
    assert!(m.verify_checksum(&ip6a(OUT6), &ip6a(IN6)));
    assert_eq!((m.msg_type(), m.code(), m.rest()), (1, 4, 0));
    assert_eq!(m.data(), &dgram[14..], "the whole datagram quoted");
    // A large datagram: the answer is 1280 bytes, the quote cut to fit.
    let big = udp6(IN6, 9999, OUT6, 53, &[0xa5; 1400]);
    let got = send(&mut h, 0, &big, t(4));
    let [err] = got[0].as_slice() else {
        panic!("one ICMPv6 error back")
    };
    check6(err);
    assert_eq!(err.len(), 14 + 1280);
    assert_eq!(&err[14 + 48..], &big[14..14 + 1232]);
    // Other protocols (an echo request) get the same error.
    let got = send(&mut h, 0, &echo6(IN6, OUT6, 128, 3), t(5));
    assert_eq!(got[0].len(), 1);
    check6(&got[0][0]);
    assert_eq!(got[0][0][54], 1);
    assert_eq!(st.rejects_sent.get(), 5);
    // Not answered (RFC 4443 §2.4 (e)): an error, a packet to a multicast address, or
    // from the unspecified address.
    let unanswered = [
        icmp6_error(IN6, OUT6, 1, 4, 0, &udp6(OUT6, 1, IN6, 2, b""), 1232),
        udp6(IN6, 1, "ff0e::1", 2, b""),
        udp6("::", 1, OUT6, 2, b""),
    ];
    for f in &unanswered {
        assert!(send(&mut h, 0, f, t(6)).iter().all(Vec::is_empty));
    }
    assert_eq!(st.rejects_sent.get(), 5);
    assert_eq!(h.node_drops(DropReason::FwRejected), 9);
    assert_eq!(st.connections.get(), 0, "rejected flows are not tracked");
    assert_eq!(h.pool().available(), h.pool().size());
}

/// A rejected packet that left its checksum to finish (a veth host's TCP segment): the
/// answer carries no offload record, so nothing "finishes" its correct checksum.
#[test]
fn a_reject_answer_drops_the_offload_record_of_the_rejected_packet() {
    use nfv_dataplane::packet::{Gso, Offload};
    let view = |f: &[u8]| -> View {
        let v6 = f[12] == 0x86;
        let (src, dst, proto) = if v6 {
            let ip = Ipv6Packet::new_checked(&f[14..]).expect("v6");
            (
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                ip.next_header(),
            )
        } else {
            let ip = Ipv4Packet::new_checked(&f[14..]).expect("v4");
            (
                IpAddr::V4(ip.src_addr().into()),
                IpAddr::V4(ip.dst_addr().into()),
                ip.protocol(),
            )
        };
        View {
            src,
            dst,
            proto,
            sport: 0,
            dport: 0,
            icmp_type: None,
            state: StateSet::NEW,
        }
    };
    for (f, l3) in [
        (tcp(IN, 40000, OUT, 80, SYN, b""), 20),
        (tcp6(IN6, 40000, OUT6, 80, SYN, b""), 40),
        (udp(IN, 1, OUT, 2, b"x", true), 20),
        (udp6(IN6, 1, OUT6, 2, b"x"), 40),
    ] {
        let mut pkt = Packet::from_bytes(&f).expect("fits");
        pkt.set_offload(Some(Offload {
            needs_csum: true,
            gso: Gso::None,
            csum_start: (14 + l3) as u16,
            csum_offset: 16,
            gso_size: 0,
        }));
        assert!(reject_in_place(&mut pkt, &view(&f)));
        assert!(pkt.offload().is_none());
        if l3 == 40 {
            check6(pkt.data());
        } else {
            check(pkt.data());
        }
    }
}

/// Malformed IPv6 is dropped with a reason, never a panic: every cut and every byte
/// flipped of a few datagrams with extension headers, into both sides.
#[test]
fn malformed_ipv6_is_dropped_with_a_reason() {
    let (mut h, st) = harness(FirewallConfig::default());
    let good = udp6(IN6, 1, OUT6, 2, b"x");
    let dgram = udp6_datagram(IN6, 1, OUT6, 2, b"x");
    let drops = |h: &Harness, r| h.node_drops(r);
    // Cut inside the fixed header: runt.
    assert!(!passes(&mut h, 0, &good[..14 + 39], t(0)));
    assert_eq!(drops(&h, DropReason::Runt), 1);
    // A payload length past the frame: bad header.
    assert!(!passes(&mut h, 0, &good[..good.len() - 1], t(0)));
    assert_eq!(drops(&h, DropReason::BadHeader), 1);
    // An extension header running past the payload.
    let mut p = ext6(17, 4);
    p.truncate(16);
    assert!(!passes(&mut h, 0, &ipv6(IN6, OUT6, 0, 64, &p), t(0)));
    assert_eq!(drops(&h, DropReason::BadHeader), 2);
    // Nine extension headers (a loop of routing headers, each naming the next): refused;
    // eight are walked.
    let chain = |n: usize, kind: u8| {
        let mut p = Vec::new();
        for i in 0..n {
            p.extend_from_slice(&ext6(if i + 1 == n { 17 } else { kind }, 0));
        }
        p.extend_from_slice(&dgram);
        ipv6(IN6, OUT6, kind, 64, &p)
    };
    assert!(!passes(&mut h, 0, &chain(9, 43), t(0)));
    assert!(!passes(&mut h, 0, &chain(9, 60), t(0)));
    assert_eq!(drops(&h, DropReason::BadHeader), 4);
    assert!(passes(&mut h, 0, &chain(8, 43), t(0)));
    assert!(passes(&mut h, 0, &chain(8, 60), t(0)));
    // A hop-by-hop header after the first.
    let mut p = ext6(0, 0);
    p.extend_from_slice(&ext6(17, 0));
    p.extend_from_slice(&dgram);
    assert!(!passes(&mut h, 0, &ipv6(IN6, OUT6, 60, 64, &p), t(0)));
    assert_eq!(drops(&h, DropReason::BadHeader), 5);
    // Upper-layer headers too short for their ports: runt.
    assert!(!passes(&mut h, 0, &ipv6(IN6, OUT6, 6, 64, &[0; 3]), t(0)));
    assert!(!passes(
        &mut h,
        0,
        &ipv6(IN6, OUT6, 58, 64, &[128, 0, 0, 0, 0]),
        t(0)
    ));
    assert_eq!(drops(&h, DropReason::Runt), 3);
    // A TCP header shorter than 20 bytes but with its ports: runt as for IPv4.
    assert!(!passes(&mut h, 0, &ipv6(IN6, OUT6, 6, 64, &[0; 12]), t(0)));
    assert_eq!(drops(&h, DropReason::Runt), 4);
    assert_eq!(st.not_ipv4.get(), 0);

    // Every prefix and every single byte changed, from both sides: no panic, no leak.
    let mut samples = vec![
        chain(3, 60),
        tcp6(IN6, 1, OUT6, 2, SYN, b"abc"),
        icmp6_error(ROUTER6, IN6, 2, 0, 1280, &chain(2, 43), 1232),
        nd6("fe80::1", "ff02::1", 134, 255),
    ];
    let mut fr = frag6(6, 0, true, 1);
    fr.extend_from_slice(&[0; 8]);
    samples.push(ipv6(IN6, OUT6, 44, 64, &fr));
    let mut rng = Rng(0x1234_5678_9abc_def0);
    for f in &samples {
        for n in 0..f.len().min(200) {
            for gate in [0, 1] {
                send(&mut h, gate, &f[..n], t(1));
            }
        }
        for i in 14..f.len().min(200) {
            let mut g = f.clone();
            g[i] ^= (rng.next() as u8) | 1;
            for gate in [0, 1] {
                send(&mut h, gate, &g, t(1));
            }
        }
    }
    // Fragments held for a first fragment that never came time out.
    for ms in 0..64 {
        h.tick(t(1 + 3000 + ms));
    }
    assert_eq!(h.pool().available(), h.pool().size());
}
