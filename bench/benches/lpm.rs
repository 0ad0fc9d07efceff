//! Longest-prefix match: lookups of random addresses in a table of 10 routes and in one of
//! a million Internet-like prefixes (`cargo bench -p nfv-bench --bench lpm`).

use std::net::Ipv4Addr;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nfv_functions::lpm::Lpm;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn table(prefixes: usize) -> Lpm {
    let mut t = Lpm::new();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    t.insert(Ipv4Addr::UNSPECIFIED, 0, 0).expect("default");
    while t.len() < prefixes {
        let x = r.next();
        let len = match x % 100 {
            0..=59 => 24,
            60..=94 => 16 + (x >> 8) as u8 % 8,
            95..=97 => 8 + (x >> 8) as u8 % 8,
            _ => 25 + (x >> 8) as u8 % 8,
        };
        let net = (x >> 32) as u32;
        t.insert(Ipv4Addr::from(net), len, (x % 4) as u32)
            .expect("insert");
    }
    t
}

fn lookups(c: &mut Criterion) {
    const N: usize = 4096;
    let mut g = c.benchmark_group("lpm");
    g.throughput(Throughput::Elements(N as u64));
    let mut r = Rng(42);
    let addrs: Vec<u32> = (0..N).map(|_| r.next() as u32).collect();
    for (name, size) in [("10_routes", 10), ("1m_routes", 1 << 20)] {
        let t = table(size);
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

criterion_group!(benches, lookups);
criterion_main!(benches);
