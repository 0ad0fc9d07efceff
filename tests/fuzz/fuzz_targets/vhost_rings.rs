//! A hostile guest with full-size rings: up to 32768 entries each way, every descriptor,
//! available entry and buffer made from the input (repeated over the guest's memory, so
//! that a short input fills a whole ring). No panic, no hang, no buffer leak, and no burst
//! reads more than the descriptor budget.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::counters::PortCounters;
use nfv_dataplane::port::{Port, VhostUserPort};
use nfv_dataplane::{Batch, Pool};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: usize = 2 << 20;
const POOL: usize = 64;
/// The port's descriptor budget per burst and ring (`virtq::BUDGET`).
const BUDGET: u64 = 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, pattern)) = data.split_first() else {
        return;
    };
    if pattern.is_empty() {
        return;
    }
    let Ok(mem) = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]) else {
        return;
    };
    // The guest's memory is the pattern, over and over.
    let mut page = vec![0u8; 64 << 10];
    for (i, b) in page.iter_mut().enumerate() {
        *b = pattern[i % pattern.len()];
    }
    for at in (0..MEM).step_by(page.len()) {
        let _ = mem.write_slice(&page, GuestAddress(at as u64));
    }
    // Transmit ring: table at 0, available at 0x8_0000, used at 0x9_0000; receive ring the
    // same 1 MiB higher. Sizes from 256 to 32768.
    let size = 256u16 << (flags & 7);
    let rings = [
        (size, 0x10_0000, 0x18_0000, 0x19_0000),
        (size, 0, 0x8_0000, 0x9_0000),
    ];
    let Ok(mut port) = VhostUserPort::detached(mem, rings, flags & 8 != 0, flags & 16 != 0, 1500)
    else {
        return;
    };
    // With offloads the guest's headers are read (super-frames into their own buffers) and
    // frames may go back with headers of their own.
    if flags & 32 != 0 {
        port = port.with_offloads();
    }
    let counters = PortCounters::default();
    let mut pool = Pool::new(POOL);
    pool.reserve_super(4);
    for _ in 0..4 {
        let mut b = Batch::new();
        let before = port.descriptors_visited();
        port.rx_burst(&mut pool, &mut b, &counters);
        assert!(
            port.descriptors_visited() - before <= BUDGET,
            "rx over budget"
        );
        let before = port.descriptors_visited();
        port.tx_burst(&mut b, &mut pool, &counters);
        assert!(
            port.descriptors_visited() - before <= BUDGET,
            "tx over budget"
        );
        assert!(b.is_empty());
    }
    assert_eq!(pool.available(), POOL, "a buffer leaked");
});
