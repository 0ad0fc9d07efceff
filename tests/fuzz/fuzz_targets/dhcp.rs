//! Arbitrary frames into a DHCP server that also serves a subnet through relays, raw or
//! wrapped in valid Ethernet, IPv4 and UDP headers addressed to port 67, some given a
//! relay's giaddr (on another subnet, reached through the gateway, or on the server's own
//! segment) and some the ARP that resolves the gateway: no panic, every buffer back in
//! the pool once ARP gives up, and every reply fits a 576-byte datagram (one to a relay
//! may carry the relay's option 82 past it).
#![no_main]

use std::net::Ipv4Addr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::testing::Harness;
use nfv_dataplane::{MacAddr, Timestamp, MAX_FRAME};
use nfv_functions::arp;
use nfv_functions::dhcp::{DhcpConfig, DhcpServer, DhcpSubnet, Lease};
use nfv_functions::ip;

const POOL: usize = 64;

fuzz_target!(|data: &[u8]| {
    let cfg = DhcpConfig {
        mac: MacAddr([2, 0xd0, 0, 0, 0, 1]),
        address: Ipv4Addr::new(10, 0, 0, 2),
        own: DhcpSubnet {
            network: Ipv4Addr::new(10, 0, 0, 0),
            prefix_len: 24,
            pools: vec![(Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 103))],
            router: Some(Ipv4Addr::new(10, 0, 0, 1)),
            dns: vec![Ipv4Addr::new(10, 0, 0, 1)],
            domain: Some("fuzz.example".into()),
            lease: Duration::from_secs(60),
            renew: None,
            rebind: None,
            options: vec![(42, vec![10, 0, 0, 1])],
        },
        reservations: vec![(MacAddr([2, 0, 0, 0, 0, 9]), Ipv4Addr::new(10, 0, 0, 50))],
        offer_hold: Duration::from_secs(5),
        wall_at_zero: 1_700_000_000,
        gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
        subnets: vec![DhcpSubnet {
            network: Ipv4Addr::new(10, 1, 0, 0),
            prefix_len: 24,
            pools: vec![(Ipv4Addr::new(10, 1, 0, 50), Ipv4Addr::new(10, 1, 0, 53))],
            router: Some(Ipv4Addr::new(10, 1, 0, 1)),
            dns: vec![],
            domain: None,
            lease: Duration::from_secs(30),
            renew: None,
            rebind: None,
            options: vec![(66, b"tftp".to_vec())],
        }],
    };
    let known = vec![Lease {
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        client_id: None,
        ip: Ipv4Addr::new(10, 0, 0, 100),
        expires_unix: 1_700_000_030,
        hostname: None,
    }];
    let (tx, rx) = crossbeam_channel::bounded(2);
    let mut h = Harness::new(Box::new(DhcpServer::new(cfg, known, Some(tx))), 1, POOL);
    // Input: repeated [flags, time, len_hi, len_lo, bytes...]; flag bit 0 wraps the bytes
    // as the payload of a UDP datagram to 255.255.255.255:67; bit 1 gives the message a
    // relay's giaddr (bit 2: 10.0.0.7 on the server's segment, else 10.1.0.1 behind the
    // gateway); bit 3 first sends the gateway's ARP request to the server (resolving it).
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 4 {
        let flags = rest[0];
        let wrap = flags & 1 != 0;
        now += u64::from(rest[1]) * 100_000_000;
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(MAX_FRAME - 42);
        rest = &rest[4..];
        let take = len.min(rest.len());
        let mut body = rest[..take].to_vec();
        rest = &rest[take..];
        if flags & 2 != 0 && body.len() >= 28 {
            let gi = if flags & 4 != 0 { [10, 0, 0, 7] } else { [10, 1, 0, 1] };
            body[24..28].copy_from_slice(&gi);
        }
        if flags & 8 != 0 {
            let a = arp::request(MacAddr([2, 0, 0, 0, 0, 1]), 0x0a00_0001, 0x0a00_0002);
            h.send(0, &a, Timestamp(now));
        }
        let body = &body[..];
        let frame = if wrap {
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&[2, 0, 0, 0, 0, 7, 0x08, 0x00]);
            let mut hd = [0u8; 20];
            hd[0] = 0x45;
            hd[2..4].copy_from_slice(&((28 + body.len()) as u16).to_be_bytes());
            hd[8] = 64;
            hd[9] = 17;
            hd[16..20].fill(0xff);
            ip::set_header_checksum(&mut hd);
            f.extend_from_slice(&hd);
            f.extend_from_slice(&[0, 68, 0, 67]);
            f.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[0, 0]);
            f.extend_from_slice(body);
            f
        } else {
            body.to_vec()
        };
        h.send(0, &frame, Timestamp(now));
        h.tick(Timestamp(now));
        for out in h.recv(0) {
            // To a relay (UDP port 67) the relay's option may come on top.
            let to_relay = out.len() > 37 && out[36..38] == [0, 67];
            let max = 14 + 576 + if to_relay { 257 } else { 0 };
            assert!(out.len() <= max, "reply of {} bytes", out.len());
        }
        while rx.try_recv().is_ok() {}
    }
    // Replies waiting for the gateway's MAC go once ARP gives up.
    for s in 1..=5 {
        h.tick(Timestamp(now + s * 1_000_000_000));
        h.recv(0);
    }
    assert_eq!(h.pool().available(), POOL, "a buffer leaked");
});
