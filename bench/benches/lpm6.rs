//! IPv6 longest-prefix match (poptrie): lookups of addresses inside random prefixes of a
//! table of 10 routes and of one of 200,000 Internet-like prefixes, and the time to build
//! the big one (`cargo bench -p nfv-bench --bench lpm6`). Prints the big table's memory.

use std::net::Ipv6Addr;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nfv_functions::lpm6::{internet_like, Lpm6, Lpm6Builder};

use nfv_dataplane::XorShift as Rng;

const BIG: usize = 200_000;

/// `prefixes` Internet-like prefixes, each to one of 16 next hops.
fn builder(prefixes: usize) -> Lpm6Builder {
    let mut b = Lpm6Builder::new();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for (net, len) in internet_like(prefixes, 0x5eed) {
        b.insert(net, len, (r.next() % 16) as u32).expect("insert");
    }
    b
}

/// `n` addresses, each inside a random prefix of `t` (host bits random).
fn hits(t: &Lpm6, n: usize, r: &mut Rng) -> Vec<u128> {
    let all: Vec<(Ipv6Addr, u8, u32)> = t.iter().collect();
    (0..n)
        .map(|_| {
            let (net, len, _) = all[r.next() as usize % all.len()];
            let host = r.wide().checked_shr(u32::from(len)).unwrap_or(0);
            u128::from(net) | host
        })
        .collect()
}

fn lookups(c: &mut Criterion) {
    const N: usize = 4096;
    let mut g = c.benchmark_group("lpm6");
    g.throughput(Throughput::Elements(N as u64));
    let mut r = Rng(42);
    for (name, size) in [("10_routes", 10), ("200k_routes", BIG)] {
        let t = builder(size).build();
        println!(
            "lpm6 {name}: {} prefixes, {} nodes, {} leaves, {} bytes ({:.1} MiB)",
            t.len(),
            t.nodes(),
            t.leaves(),
            t.memory_bytes(),
            t.memory_bytes() as f64 / f64::from(1 << 20)
        );
        let addrs = hits(&t, N, &mut r);
        assert!(addrs.iter().all(|&a| t.lookup(a).is_some()), "all hit");
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut s = 0u32;
                for &a in &addrs {
                    s = s.wrapping_add(t.lookup(black_box(a)).unwrap_or(0));
                }
                s
            })
        });
    }
    g.finish();
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("lpm6_build");
    g.sample_size(10);
    let routes: Vec<(Ipv6Addr, u8, u32)> = builder(BIG).iter().collect();
    let b = builder(BIG);
    // Compiling the prefixes a builder holds, and the whole of it from a list of routes.
    g.bench_function("build_200k", |x| x.iter(|| b.build()));
    g.bench_function("from_routes_200k", |x| {
        x.iter(|| Lpm6::from_routes(routes.iter().copied()).expect("routes"))
    });
    g.finish();
}

criterion_group!(benches, lookups, build);
criterion_main!(benches);
