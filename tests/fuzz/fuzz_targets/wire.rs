//! Arbitrary bytes into every checked view of `nfv_functions::wire` (Ethernet, ARP, IPv4
//! whole and quoted, IPv6, UDP, TCP and its ports, ICMPv4, ICMPv6) and all their getters,
//! then into `classify` through a packet twice (the second time from the carried offsets):
//! no panic, and the carried record gives back what the parse found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::Packet;
use nfv_functions::wire;

fuzz_target!(|data: &[u8]| {
    // The bytes as a frame, and every offset into them as the start of a header.
    for start in 0..data.len().min(80) {
        std::hint::black_box(wire::exercise(&data[start..]));
    }
    if let Some(mut pkt) = Packet::from_bytes(data) {
        let first = wire::classify(&mut pkt);
        assert_eq!(first, wire::Headers::parse(data));
        assert_eq!(wire::classify(&mut pkt), first);
    }
});
