//! Micro-benchmarks of the hot pieces: buffer pool, and a burst through the switch.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nfv_bench::SwitchLoop;
use nfv_dataplane::{Pool, Timestamp, BURST};

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut pool = Pool::new(4096);
    let mut held = Vec::with_capacity(BURST);
    g.bench_function("alloc_free_burst", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                if let Some(p) = pool.alloc() {
                    held.push(p);
                }
            }
            for p in held.drain(..) {
                pool.free(black_box(p));
            }
        })
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut pool = Pool::new(4096);
    let mut b = nfv_dataplane::Batch::new();
    g.bench_function("push_drain_burst", |bn| {
        bn.iter(|| {
            while let Some(p) = pool.alloc() {
                if let Err(p) = b.push(p) {
                    pool.free(p);
                    break;
                }
            }
            for p in b.drain() {
                pool.free(black_box(p));
            }
        })
    });
    g.finish();
}

fn switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch");
    g.throughput(Throughput::Elements(BURST as u64));
    for (name, macs, table) in [
        ("1_mac", 1, 1024),
        ("1k_macs", 1000, 4096),
        ("64k_macs", 65536, 131072),
    ] {
        let mut lp = SwitchLoop::new(1024.max(macs as usize).min(65536), macs, table);
        let now = Timestamp::from_secs(1);
        g.bench_function(name, |b| b.iter(|| black_box(lp.turn(now))));
    }
    g.finish();
}

criterion_group!(benches, pool, batch, switch);
criterion_main!(benches);
