//! Arbitrary frames into a DHCP server, raw or wrapped in valid Ethernet, IPv4 and UDP
//! headers addressed to port 67: no panic, every buffer back in the pool, and every reply
//! fits a 576-byte datagram.
#![no_main]

use std::net::Ipv4Addr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::testing::Harness;
use nfv_dataplane::{MacAddr, Timestamp, MAX_FRAME};
use nfv_functions::dhcp::{DhcpConfig, DhcpServer, Lease};
use nfv_functions::ip;

const POOL: usize = 64;

fuzz_target!(|data: &[u8]| {
    let cfg = DhcpConfig {
        mac: MacAddr([2, 0xd0, 0, 0, 0, 1]),
        address: Ipv4Addr::new(10, 0, 0, 2),
        prefix_len: 24,
        pools: vec![(Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 103))],
        reservations: vec![(MacAddr([2, 0, 0, 0, 0, 9]), Ipv4Addr::new(10, 0, 0, 50))],
        router: Some(Ipv4Addr::new(10, 0, 0, 1)),
        dns: vec![Ipv4Addr::new(10, 0, 0, 1)],
        domain: Some("fuzz.example".into()),
        lease: Duration::from_secs(60),
        renew: None,
        rebind: None,
        options: vec![(42, vec![10, 0, 0, 1])],
        offer_hold: Duration::from_secs(5),
        wall_at_zero: 1_700_000_000,
        gateway: None,
        subnets: vec![],
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
    // as the payload of a UDP datagram to 255.255.255.255:67.
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 4 {
        let wrap = rest[0] & 1 != 0;
        now += u64::from(rest[1]) * 100_000_000;
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(MAX_FRAME - 42);
        rest = &rest[4..];
        let take = len.min(rest.len());
        let body = &rest[..take];
        rest = &rest[take..];
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
            assert!(out.len() <= 14 + 576, "reply of {} bytes", out.len());
        }
        while rx.try_recv().is_ok() {}
    }
    assert_eq!(h.pool().available(), POOL, "a buffer leaked");
});
