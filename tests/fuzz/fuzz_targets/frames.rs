//! Arbitrary frames into a switch with access and trunk attachments: no panic, and every
//! buffer comes back to the pool.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::testing::Harness;
use nfv_dataplane::{Timestamp, MAX_FRAME};
use nfv_functions::{Switch, SwitchConfig, VlanMode};

const POOL: usize = 64;

fuzz_target!(|data: &[u8]| {
    let sw = Switch::new(SwitchConfig {
        mac_table_size: 8,
        ageing: Duration::from_secs(2),
        attachments: vec![
            VlanMode::Access(1),
            VlanMode::Access(2),
            VlanMode::Trunk { allowed: vec![1, 2, 3], native: Some(1) },
            VlanMode::Trunk { allowed: vec![2], native: None },
        ],
    });
    let mut h = Harness::new(Box::new(sw), 4, POOL);
    // Input: repeated [gate, time, len_hi, len_lo, bytes...].
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 4 {
        let gate = (rest[0] % 4) as usize;
        now += rest[1] as u64 * 100_000_000;
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(MAX_FRAME);
        rest = &rest[4..];
        let take = len.min(rest.len());
        h.send(gate, &rest[..take], Timestamp(now));
        rest = &rest[take..];
        h.tick(Timestamp(now));
        h.recv_each();
    }
    assert_eq!(h.pool().available(), POOL, "a buffer leaked");
});
