//! A hostile guest: arbitrary guest memory (available and used rings, descriptors, indirect
//! tables, buffers) under a vhost-user port, with frames taken from the guest and sent back
//! into its receive queue. No panic, no hang, and every buffer comes back to the pool.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::counters::PortCounters;
use nfv_dataplane::port::{Port, VhostUserPort};
use nfv_dataplane::{Batch, Pool};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: usize = 64 << 10;
const POOL: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, memory)) = data.split_first() else {
        return;
    };
    let Ok(mem) = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]) else {
        return;
    };
    // The input is the guest's memory: its transmit ring at 0 (table), 0x800 (available),
    // 0xa00 (used); its receive ring at 0x1000, 0x1800, 0x1a00; buffers anywhere.
    let _ = mem.write_slice(&memory[..memory.len().min(MEM)], GuestAddress(0));
    let size = 1u16 << (flags & 7);
    let rings = [(size, 0x1000, 0x1800, 0x1a00), (size, 0, 0x800, 0xa00)];
    let Ok(mut port) =
        VhostUserPort::detached(mem, rings, flags & 8 != 0, flags & 16 != 0, 1500)
    else {
        return;
    };
    let counters = PortCounters::default();
    let mut pool = Pool::new(POOL);
    for _ in 0..4 {
        let mut b = Batch::new();
        port.rx_burst(&mut pool, &mut b, &counters);
        port.tx_burst(&mut b, &mut pool, &counters);
        assert!(b.is_empty());
    }
    assert_eq!(pool.available(), POOL, "a buffer leaked");
});
