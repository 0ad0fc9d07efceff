//! Arbitrary frames into a NAT and a stateful firewall, from both sides, with time going
//! by: no panic, and every buffer comes back (translated, passed, answered or dropped).
//! IPv4 and IPv6 (with extension header chains, ICMPv6 errors, neighbor discovery and
//! fragments) alike.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::testing::Harness;
use nfv_dataplane::{Timestamp, MAX_FRAME};
use nfv_functions::conntrack::Timeouts;
use nfv_functions::firewall::{
    Action, FirewallConfig, PortRange, Prefix, Rule, RuleSet, StateSet,
};
use nfv_functions::ip;
use nfv_functions::nat::{Nat, NatConfig, PortForward};

const POOL: usize = 64;
const OUTSIDE: [u8; 4] = [203, 0, 113, 2];

fuzz_target!(|data: &[u8]| {
    let Ok(nat) = Nat::new(NatConfig {
        addresses: vec![Ipv4Addr::from(OUTSIDE), Ipv4Addr::new(203, 0, 113, 3)],
        ports: PortRange { lo: 1024, hi: 1031 },
        forwards: vec![PortForward { proto: 6, port: 8080, to: Ipv4Addr::new(192, 168, 1, 10), to_port: 80 }],
        max_sessions: 16,
        timeouts: Timeouts::default(),
    }) else {
        panic!("nat config");
    };
    let rule = |action, state: Option<StateSet>, proto: Option<u8>, port: Option<u16>| Rule {
        action: Some(action),
        state,
        proto,
        dst_port: port.map(PortRange::one),
        src: Some(Prefix { addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED), len: 0 }),
        ..Rule::default()
    };
    let v6 = |r: Rule| Rule {
        src: Some(Prefix { addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)), len: 32 }),
        ..r
    };
    let fw = nfv_functions::firewall::Firewall::new(FirewallConfig {
        inbound: RuleSet {
            default: Action::Drop,
            rules: vec![
                rule(Action::Allow, Some(StateSet::ESTABLISHED.union(StateSet::RELATED)), None, None),
                rule(Action::Reject, None, Some(6), Some(23)),
                rule(Action::Reject, None, Some(17), None),
                v6(rule(Action::Reject, None, Some(6), Some(23))),
                v6(rule(Action::Reject, None, Some(17), None)),
                Rule { icmp_type: Some(128), ..v6(rule(Action::Allow, None, Some(58), None)) },
                Rule { src: None, ..rule(Action::Reject, Some(StateSet::INVALID), Some(58), None) },
            ],
        },
        outbound: RuleSet {
            default: Action::Allow,
            rules: vec![
                rule(Action::Reject, Some(StateSet::INVALID), None, None),
                Rule { src: None, ..rule(Action::Reject, Some(StateSet::INVALID), None, None) },
            ],
        },
        max_connections: 16,
        timeouts: Timeouts::default(),
    });
    let mut hs = [Harness::new(Box::new(nat), 2, POOL), Harness::new(Box::new(fw), 2, POOL)];
    // Input: repeated [flags, time, len_hi, len_lo, bytes...]. Flags help the fuzzer past
    // the first checks: bit 1 makes the frame IPv4, bit 2 fixes the IPv4 header checksum,
    // bit 3 aims it at (from the outside) or sends it from (inside) the NAT's address;
    // bit 4 makes the frame IPv6 (EtherType, version, and a payload length that fits, so
    // that the extension header walk and ICMPv6 are reached), bit 5 its source 2001:db8::;
    // bit 6 makes it a fragment (IPv4: "more fragments", the offset left to the input;
    // IPv6: a fragment header first, read from the input), so that the fragment tables are
    // reached (first and later fragments, held, released, timed out, full); bit 7 picks
    // the gate.
    let mut rest = data;
    let mut now = 0u64;
    let mut frame = [0u8; MAX_FRAME];
    while rest.len() >= 4 {
        let flags = rest[0];
        let gate = usize::from(flags >> 7);
        now += u64::from(rest[1]) * 1_000_000_000;
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(MAX_FRAME);
        rest = &rest[4..];
        let take = len.min(rest.len());
        let f = &mut frame[..take];
        f.copy_from_slice(&rest[..take]);
        rest = &rest[take..];
        if flags & 2 != 0 && f.len() >= 14 {
            f[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        if flags & 8 != 0 && f.len() >= 34 {
            let at = if gate == 1 { 30 } else { 26 };
            f[at..at + 4].copy_from_slice(&OUTSIDE);
        }
        if flags & 0x10 != 0 && f.len() >= 54 {
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f[14] = 0x60 | (f[14] & 0x0f);
            let len = (f.len() - 54) as u16;
            f[18..20].copy_from_slice(&len.to_be_bytes());
            if flags & 0x20 != 0 {
                f[22..26].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            }
        }
        if flags & 0x40 != 0 && f.len() >= 34 {
            if flags & 0x10 != 0 {
                f[20] = 44;
            } else {
                f[20] |= 0x20;
            }
        }
        if flags & 4 != 0 && f.len() >= 34 {
            let ihl = (usize::from(f[14] & 0x0f) * 4).clamp(20, f.len() - 14);
            ip::set_header_checksum(&mut f[14..14 + ihl]);
        }
        for h in &mut hs {
            h.send(gate, f, Timestamp(now));
            h.tick(Timestamp(now));
            h.recv_each();
        }
    }
    // Fragments still held time out (the table is swept an eighth a tick).
    for h in &mut hs {
        for k in 0..16 {
            h.tick(Timestamp(now + 10_000_000_000 + k * 1_000_000));
        }
        h.recv_each();
    }
    for h in &hs {
        assert_eq!(h.pool().available(), POOL, "a buffer leaked");
    }
});
