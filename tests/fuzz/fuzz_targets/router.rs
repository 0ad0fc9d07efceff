//! Arbitrary frames into a dual-stack router with two interfaces (one sending router
//! advertisements and relaying DHCP to two servers), static routes and neighbours of both
//! families and tiny neighbour tables: no panic, and once every pending ARP and ND resolution has timed out, every
//! buffer is back in the pool.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::testing::Harness;
use nfv_dataplane::{MacAddr, Timestamp, MAX_FRAME};
use nfv_functions::ip;
use nfv_functions::router::icmp6;
use nfv_functions::router::{
    NeighborConfig, RaSpec, Route, Route6, Router, RouterConfig, RouterInterface,
};

const POOL: usize = 64;
const MACS: [MacAddr; 2] = [
    MacAddr([2, 0xaa, 0, 0, 0, 0]),
    MacAddr([2, 0xaa, 0, 0, 0, 1]),
];

fuzz_target!(|data: &[u8]| {
    let v6 = |s: &str| -> Ipv6Addr { s.parse().expect("v6") };
    let iface = |i: usize, addr: [u8; 4], mtu: u16| RouterInterface {
        name: format!("i{i}"),
        mac: MACS[i],
        address: Some((Ipv4Addr::from(addr), 24)),
        addresses6: vec![(v6(&format!("2001:db8:{i}::1")), 64)],
        ra: (i == 0).then(|| RaSpec { rdnss: vec![v6("2001:db8::53")], ..RaSpec::default() }),
        mtu,
        nat_outside: false,
        // Interface 0 relays DHCP: to a neighbour and to a server behind a route.
        dhcp_relay: if i == 0 {
            vec![Ipv4Addr::new(10, 0, 1, 9), Ipv4Addr::new(192, 0, 2, 7)]
        } else {
            vec![]
        },
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
        routes6: vec![Route6 { prefix: v6("2001:db8:100::"), len: 40, via: v6("2001:db8:1::9") }],
        neighbors6: vec![(v6("2001:db8:1::9"), MacAddr([2, 0, 0, 0, 0, 9]))],
        arp: NeighborConfig { timeout: Duration::from_secs(5), queue_len: 3, max_entries: 8 },
        icmp_rate: 50,
    }) else {
        panic!("router config");
    };
    let mut h = Harness::new(Box::new(r), 2, POOL);
    // Input: repeated [flags, time, len_hi, len_lo, bytes...]. Flags help the fuzzer past
    // the first checks: bit 0 addresses the frame to the interface's MAC, bit 1 makes it
    // IPv4 and bit 2 fixes the IPv4 header checksum; bit 3 makes it IPv6 (EtherType,
    // version and a payload length that fits), bit 4 gives it ND's hop limit and bit 5
    // fixes an ICMPv6 checksum; bit 6 makes it a DHCP datagram (IPv4, UDP to port 67, the
    // lengths fitting the frame), broadcast unless bit 0 is set; bit 7 picks the gate.
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
        if flags & 64 != 0 && f.len() >= 42 {
            let n = f.len();
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x45;
            f[16..18].copy_from_slice(&((n - 14) as u16).to_be_bytes());
            f[20..22].fill(0);
            f[23] = 17;
            f[36..38].copy_from_slice(&67u16.to_be_bytes());
            let ulen = u16::from_be_bytes([f[38], f[39]]).min((n - 34) as u16);
            f[38..40].copy_from_slice(&ulen.to_be_bytes());
            if flags & 1 == 0 {
                f[0..6].fill(0xff);
                f[30..34].fill(0xff);
            }
            ip::set_header_checksum(&mut f[14..34]);
        }
        if flags & 4 != 0 && f.len() >= 34 {
            let ihl = (usize::from(f[14] & 0x0f) * 4).clamp(20, f.len() - 14);
            ip::set_header_checksum(&mut f[14..14 + ihl]);
        }
        if flags & 8 != 0 && f.len() >= 54 {
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f[14] = 0x60 | (f[14] & 0x0f);
            let payload = ((f.len() - 54) as u16).min(u16::from_be_bytes([f[18], f[19]]));
            f[18..20].copy_from_slice(&payload.to_be_bytes());
            if flags & 16 != 0 {
                f[21] = 255;
            }
            if flags & 32 != 0 && f[20] == icmp6::PROTO_ICMPV6 && payload >= 4 {
                let at = |o: usize| u128::from_be_bytes(f[o..o + 16].try_into().expect("16"));
                let (src, dst) = (at(22), at(38));
                let m = &mut f[54..54 + usize::from(payload)];
                m[2..4].fill(0);
                let c = icmp6::checksum(src, dst, m);
                m[2..4].copy_from_slice(&c.to_be_bytes());
            }
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
