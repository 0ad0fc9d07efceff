//! A hostile guest that changes its rings while the port reads them: full-size rings (256
//! to 32768 entries each way) over guest memory made from the input (as `vhost_rings`),
//! and a second thread, the guest's vCPU, that keeps writing input-made bytes over the
//! descriptor tables, the available rings (index, entries, used event) and the used rings
//! of both queues and over the buffers, and keeps moving the available indices, while this
//! thread runs the port's receive and transmit bursts (frames taken are sent back). Guest
//! memory is shared between the two as between a guest and nfv. No panic, no hang, no burst
//! reads more than the descriptor budget, and no buffer leaks; the writer is joined before
//! the input ends.
#![no_main]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use nfv_dataplane::counters::PortCounters;
use nfv_dataplane::port::{Port, VhostUserPort};
use nfv_dataplane::{Batch, Pool};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: usize = 2 << 20;
const POOL: usize = 64;
/// The port's descriptor budget per burst and ring (`virtq::BUDGET`).
const BUDGET: u64 = 1024;
/// Bursts each way per input: at least `ROUNDS`, and on (up to `MAX_ROUNDS`) until the guest
/// made `STEPS` writes meanwhile.
const ROUNDS: usize = 8;
const MAX_ROUNDS: usize = 64;
const STEPS: usize = 64;
/// Where each ring lies (as in `vhost_rings`): the guest's transmit ring (table, available,
/// used) and its receive ring 1 MiB higher.
const TX: (u64, u64, u64) = (0, 0x8_0000, 0x9_0000);
const RX: (u64, u64, u64) = (0x10_0000, 0x18_0000, 0x19_0000);

/// The guest's vCPU: applies the script's writes, over and over, until told to stop,
/// counting them in `steps`. Each step is an opcode byte and its arguments; `size` is the
/// rings' size.
fn guest(mem: &GuestMemoryMmap, script: &[u8], size: u16, stop: &AtomicBool, steps: &AtomicUsize) {
    let mut at = 0usize;
    let mut next = || {
        let b = script.get(at % script.len().max(1)).copied().unwrap_or(1);
        at += 1;
        b
    };
    let n = u64::from(size);
    while !stop.load(Ordering::Relaxed) {
        steps.fetch_add(1, Ordering::Relaxed);
        let op = next();
        let ring = if op & 8 == 0 { TX } else { RX };
        let word = u16::from_le_bytes([next(), next()]);
        let bytes: Vec<u8> = (0..=(op >> 4) as usize % 16).map(|_| next()).collect();
        let idx = GuestAddress(ring.1 + 2);
        let _ = match op & 7 {
            // Anywhere in a descriptor table.
            0 => mem.write_slice(
                &bytes,
                GuestAddress(ring.0 + u64::from(word) * 16 % (n * 16)),
            ),
            // The available index moves on by a few (entries become "available").
            1 => mem
                .read_obj::<u16>(idx)
                .and_then(|i| mem.write_obj(i.wrapping_add(u16::from(next() % 8)), idx)),
            // The available index set to anything.
            2 => mem.write_obj(word, idx),
            // An available entry (a head index), or the used-event field after them.
            3 => mem.write_obj(
                u16::from_le_bytes([bytes[0], next()]),
                GuestAddress(ring.1 + 4 + 2 * (u64::from(word) % (n + 1))),
            ),
            // The used ring: flags, index, entries, the available-event field.
            4 => mem.write_slice(&bytes, GuestAddress(ring.2 + u64::from(word) % (8 * n + 6))),
            // A whole descriptor: address, length, flags, next.
            5 => {
                let mut d = [0u8; 16];
                for b in &mut d {
                    *b = next();
                }
                mem.write_slice(&d, GuestAddress(ring.0 + u64::from(word) % n * 16))
            }
            // The available ring's flags (interrupt suppression).
            6 => mem.write_obj(word, GuestAddress(ring.1)),
            // Anywhere in memory: buffers, indirect tables.
            _ => mem.write_slice(
                &bytes,
                GuestAddress((u64::from(word) << 5 | u64::from(next())) % MEM as u64),
            ),
        };
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, script_len, rest @ ..] = data else {
        return;
    };
    let (script, pattern) = rest.split_at((usize::from(*script_len) * 4).min(rest.len()));
    let pattern = if pattern.is_empty() {
        &[0u8][..]
    } else {
        pattern
    };
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
    let size = 256u16 << (flags & 7);
    let rings = [(size, RX.0, RX.1, RX.2), (size, TX.0, TX.1, TX.2)];
    let Ok(mut port) =
        VhostUserPort::detached(mem.clone(), rings, flags & 8 != 0, flags & 16 != 0, 1500)
    else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let steps = Arc::new(AtomicUsize::new(0));
    let script = script.to_vec();
    let writer = {
        let (stop, steps) = (stop.clone(), steps.clone());
        std::thread::spawn(move || guest(&mem, &script, size, &stop, &steps))
    };
    // Both run at once: the bursts start once the guest does.
    while steps.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    let first = steps.load(Ordering::Relaxed);
    let counters = PortCounters::default();
    let mut pool = Pool::new(POOL);
    let mut over = None;
    for round in 0..MAX_ROUNDS {
        let mut b = Batch::new();
        let before = port.descriptors_visited();
        port.rx_burst(&mut pool, &mut b, &counters);
        let rx = port.descriptors_visited() - before;
        let before = port.descriptors_visited();
        port.tx_burst(&mut b, &mut pool, &counters);
        let tx = port.descriptors_visited() - before;
        assert!(b.is_empty());
        if rx > BUDGET || tx > BUDGET {
            over = Some((rx, tx));
            break;
        }
        if round + 1 >= ROUNDS && steps.load(Ordering::Relaxed) - first >= STEPS {
            break;
        }
    }
    // The writer is joined before anything is checked (a failed check aborts).
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the guest's writer thread");
    assert_eq!(over, None, "a burst (rx, tx) read more than the budget");
    assert_eq!(pool.available(), POOL, "a buffer leaked");
});
