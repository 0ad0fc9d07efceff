//! Arbitrary frames into a router with two interfaces, two static routes, a static neighbour
//! and a tiny ARP table: no panic, and once every pending ARP resolution has timed out,
//! every buffer is back in the pool.
#![no_main]

use std::net::Ipv4Addr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::testing::Harness;
use nfv_dataplane::{MacAddr, Timestamp, MAX_FRAME};
use nfv_functions::ip;
use nfv_functions::router::{NeighborConfig, Route, Router, RouterConfig, RouterInterface};

const POOL: usize = 64;
const MACS: [MacAddr; 2] = [
    MacAddr([2, 0xaa, 0, 0, 0, 0]),
    MacAddr([2, 0xaa, 0, 0, 0, 1]),
];

fuzz_target!(|data: &[u8]| {
    let iface = |i: usize, addr: [u8; 4], mtu: u16| RouterInterface {
        name: format!("i{i}"),
        mac: MACS[i],
        address: Some((Ipv4Addr::from(addr), 24)),
        addresses6: vec![],
        ra: None,
        mtu,
        nat_outside: false,
    };
    let Ok(r) = Router::new(RouterConfig {
        interfaces: vec![iface(0, [10, 0, 0, 1], 1500), iface(1, [10, 0, 1, 1], 576)],
        // Not a default route: it would fill all 16M first-level entries of the LPM table
        // for every input (about one input a second). A /8 and a /25 (second level) instead.
        routes: vec![
            Route { prefix: Ipv4Addr::new(192, 0, 0, 0), len: 8, via: Ipv4Addr::new(10, 0, 1, 9) },
            Route { prefix: Ipv4Addr::new(10, 0, 2, 128), len: 25, via: Ipv4Addr::new(10, 0, 1, 9) },
        ],
        neighbors: vec![(Ipv4Addr::new(10, 0, 1, 9), MacAddr([2, 0, 0, 0, 0, 9]))],
        routes6: vec![],
        neighbors6: vec![],
        arp: NeighborConfig { timeout: Duration::from_secs(5), queue_len: 3, max_entries: 8 },
        icmp_rate: 50,
    }) else {
        panic!("router config");
    };
    let mut h = Harness::new(Box::new(r), 2, POOL);
    // Input: repeated [flags, time, len_hi, len_lo, bytes...]. Flags help the fuzzer past
    // the first checks: bit 0 addresses the frame to the interface's MAC, bit 1 makes it
    // IPv4 and bit 2 fixes the IPv4 header checksum; bit 7 picks the gate.
    let mut rest = data;
    let mut now = 0u64;
    let mut frame = [0u8; MAX_FRAME];
    while rest.len() >= 4 {
        let flags = rest[0];
        let gate = usize::from(flags >> 7);
        now += u64::from(rest[1]) * 10_000_000;
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(MAX_FRAME);
        rest = &rest[4..];
        let take = len.min(rest.len());
        let f = &mut frame[..take];
        f.copy_from_slice(&rest[..take]);
        rest = &rest[take..];
        if flags & 1 != 0 && f.len() >= 6 {
            f[0..6].copy_from_slice(&MACS[gate].0);
        }
        if flags & 2 != 0 && f.len() >= 14 {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        if flags & 4 != 0 && f.len() >= 34 {
            let ihl = (usize::from(f[14] & 0x0f) * 4).clamp(20, f.len() - 14);
            ip::set_header_checksum(&mut f[14..14 + ihl]);
        }
        h.send(gate, f, Timestamp(now));
        h.tick(Timestamp(now));
        h.recv_each();
    }
    // Let every unresolved next hop give up (three requests a second apart).
    for s in 1..=5 {
        h.tick(Timestamp(now + s * 1_000_000_000));
        h.recv_each();
    }
    assert_eq!(h.pool().available(), POOL, "a buffer leaked");
});
