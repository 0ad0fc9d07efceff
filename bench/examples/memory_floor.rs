//! What one prefetched random cache-line access per item costs on this machine, with nothing
//! of nfv around it: the floor under the `switch-scale` scenario's 1M-MAC run, which needs one
//! such access (the source MAC's table slot) per frame.
//!
//! Items come in bursts of 64, like frames. Each item does a fixed amount of ALU work (four
//! independent chains, so that the core runs several instructions a cycle, as switching does)
//! and reads one random 16-byte slot of a table on transparent huge pages, either plainly or
//! prefetched `AHEAD` items ahead within its burst, as the switch does. The table sizes span
//! the caches (1 MiB) to the 1M-MAC table (64 MiB).
//!
//!   cargo run --release -p nfv-bench --example memory_floor [WORK ...]   (pin it: taskset -c 1)
//!
//! WORK is rounds of the ALU mix per item (default 10 and 20: about 17 and 30 ns on an EPYC
//! Zen 4 guest, the span of the switch's own work per frame).

use std::hint::black_box;
use std::time::Instant;

use nfv_dataplane::{advise_huge_pages, prefetch, BURST};

/// How far ahead the prefetching variant loads, as the switch's `WARM_AHEAD`.
const AHEAD: usize = 16;
/// Items per measurement.
const ITEMS: usize = BURST * 40_000;

/// `rounds` of a mix of four independent multiply, add, rotate and xor chains.
#[inline(always)]
fn work(seed: u64, rounds: u32) -> u64 {
    let (mut a, mut b, mut c, mut d) = (seed, seed ^ 1, seed ^ 2, seed ^ 3);
    for i in 0..u64::from(rounds) {
        a = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i;
        b = b.wrapping_add(0x9e37).rotate_left(7) ^ a;
        c = c.wrapping_mul(0x7f4a_7c15) ^ i;
        d = d.wrapping_add(b).rotate_left(3);
    }
    a ^ b ^ c ^ d
}

/// xorshift64.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// ns per item over `slots`, visiting `order`, prefetching `AHEAD` items ahead or not.
fn run(slots: &[[u64; 2]], order: &[usize], rounds: u32, ahead: bool) -> f64 {
    let start = Instant::now();
    let mut acc = 0u64;
    for burst in order.chunks(BURST) {
        if ahead {
            for &i in burst.iter().take(AHEAD) {
                prefetch(&slots[i]);
            }
        }
        for (j, &i) in burst.iter().enumerate() {
            if ahead {
                if let Some(&k) = burst.get(j + AHEAD) {
                    prefetch(&slots[k]);
                }
            }
            acc = work(acc ^ slots[i][0], rounds);
        }
    }
    black_box(acc);
    start.elapsed().as_nanos() as f64 / order.len() as f64
}

fn main() {
    let rounds: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = if rounds.is_empty() {
        vec![10, 20]
    } else {
        rounds
    };
    println!("work  table    plain ns  prefetched ns  prefetched vs 1 MiB");
    for &w in &rounds {
        let mut base = None;
        for mib in [1usize, 4, 16, 64] {
            let n = (mib << 20) / 16;
            let mut slots: Vec<[u64; 2]> = Vec::with_capacity(n);
            advise_huge_pages(slots.spare_capacity_mut());
            let mut x = 0x2545_f491_4f6c_dd1d_u64;
            slots.extend((0..n).map(|_| [next(&mut x), 0]));
            let order: Vec<usize> = (0..ITEMS).map(|_| next(&mut x) as usize % n).collect();
            // Best of three: the machine is shared, and the best run is the least disturbed.
            let best = |ahead| {
                (0..3)
                    .map(|_| run(&slots, &order, w, ahead))
                    .fold(f64::MAX, f64::min)
            };
            let (plain, ahead) = (best(false), best(true));
            let base = *base.get_or_insert(ahead);
            println!(
                "{w:4}  {mib:3} MiB  {plain:8.1}  {ahead:13.1}  {:+18.0}%",
                (ahead / base - 1.0) * 100.0
            );
        }
    }
}
