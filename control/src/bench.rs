//! `nfv bench`: drive generator ports through a topology and report what came out.
//!
//! A run starts the topology, lets it warm up, then measures a window: offered and
//! forwarded packets per second (generator ports' receive counters and sink ports' transmit
//! counters), Gbit/s, ns per packet of the one worker, drops by reason, and the latency of
//! the frames the sinks saw (the generator stamps each frame with its send time). After the
//! worker stops, the totals must balance exactly: every packet that entered (generated,
//! received, or copied by a flood) left through a port or was dropped with a reason.
//!
//! A scenario can also take its traffic from a [`Peer`], a program outside nfv: `vhost`
//! starts DPDK testpmd as a VM with two `virtio_user` ports on the topology's vhost-user
//! sockets, forwarding in a closed loop. Offered and forwarded are then what the vhost-user
//! ports received and transmitted.

use crate::session::{errln, outln};
use std::io::IsTerminal;
use std::io::Write as _;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nfv_dataplane::{DropReason, WorkerCounters};
use nfv_functions::lpm6::internet_like;
use serde_json::json;

use crate::run::{self, Running};
use crate::topology::{self, Topology};
use nfv_dataplane::port::{PortSettings, Traffic};

/// Writes a file a scenario needs at the given path.
pub type WriteFile = fn(&Path) -> std::io::Result<()>;

/// A built-in scenario: one or more topologies run one after another.
pub struct Scenario {
    /// Its name, for `nfv bench NAME`.
    pub name: &'static str,
    /// What it measures.
    pub about: &'static str,
    /// (label, topology) of each run.
    pub runs: Vec<(String, String)>,
    /// Files the topologies name, written before they are loaded: (path, writer).
    pub files: Vec<(PathBuf, WriteFile)>,
    /// The program that offers the traffic, if not the topology's generator ports.
    pub peer: Option<Peer>,
}

/// A program outside nfv that offers a scenario's traffic, started after the topology and
/// stopped before it.
#[derive(Clone, Debug)]
pub enum Peer {
    /// DPDK testpmd as a VM: one `virtio_user` port per socket (port 0 on the first),
    /// forwarding `io` (what comes in on one port goes out of the other), seeded with
    /// `start tx_first 8`, 64-byte frames: a closed loop that runs as fast as the slower of
    /// testpmd and nfv.
    TestpmdLoop {
        /// The vhost-user sockets nfv listens on.
        sockets: Vec<PathBuf>,
    },
}

const SWITCH: &str = include_str!("../../topologies/bench-switch.yaml");
const ROUTER: &str = include_str!("../../topologies/bench-router.yaml");
const ROUTER6: &str = include_str!("../../topologies/bench-router6.yaml");
const GATEWAY: &str = include_str!("../../topologies/bench-gateway.yaml");

/// The `gateway-1m` topology: a million flows (2^20, to 16 destinations), masqueraded to 32 addresses (64512 ports
/// each: a NAT never gives one outside port to two live flows, so a million flows need
/// more than 16 addresses), with tables for two million.
fn gateway_1m() -> String {
    GATEWAY
        .replace("name: bench-gateway", "name: bench-gateway-1m")
        .replace("flows: 1000\n", "flows: 1048576\n")
        // Frame i goes to destination i mod dst_flows: with a flow count that is a multiple
        // of it, each flow keeps one destination (one session), as in the 1k scenario.
        .replace("dst_flows: 10\n", "dst_flows: 16\n")
        .replace("masquerade: r.wan", "masquerade: 198.51.100.0/27")
        .replace("max_sessions: 65536", "max_sessions: 2097152")
        .replace("max_connections: 65536", "max_connections: 2097152")
}

/// Prefixes in the `router-1m` table.
const ROUTES_1M: u32 = 1 << 20;

/// The `router-1m` topology: the router scenario plus a routes file of [`ROUTES_1M`]
/// prefixes at `file`, with destinations spread over the whole table.
fn router_1m(file: &Path) -> String {
    ROUTER
        .replace("name: bench-router", "name: bench-router-1m")
        .replace(
            "    routes:\n",
            &format!("    routes_file: {}\n    routes:\n", file.display()),
        )
        .replace("dst_ip: 198.18.0.1", "dst_ip: 1.0.0.1")
        .replace("dst_flows: 10", "dst_flows: 65536")
        .replace("dst_step: 256", "dst_step: 52981")
}

/// Write a table of [`ROUTES_1M`] distinct prefixes with an Internet-like mix of lengths
/// (about 60% /24, most of the rest /16 to /23, a few shorter and longer), drawn from a
/// fixed seed so that every run measures the same table, each through one of four
/// gateways, plus a default route.
fn write_routes_1m(path: &Path) -> std::io::Result<()> {
    let mut rng = nfv_dataplane::XorShift(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next();
    let mut seen = std::collections::HashSet::with_capacity(ROUTES_1M as usize);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "# {ROUTES_1M} prefixes for nfv bench router-1m (generated)"
    )?;
    writeln!(out, "0.0.0.0/0 10.1.0.2")?;
    seen.insert((0u32, 0u8));
    while seen.len() < ROUTES_1M as usize + 1 {
        let r = next();
        let len: u8 = match r % 100 {
            0..=59 => 24,
            60..=94 => 16 + (r >> 8) as u8 % 8,
            95..=97 => 8 + (r >> 8) as u8 % 8,
            _ => 25 + (r >> 8) as u8 % 8,
        };
        // 1.0.0.0 to 223.255.255.255, outside 10/8 (the router's own subnets) and outside
        // the scenario's own routes.
        let addr = (((r >> 16) as u32) % (223 << 24)) + (1 << 24);
        if addr >> 24 == 10 {
            continue;
        }
        let net = addr & (u32::MAX << (32 - u32::from(len)));
        // 198.18.0.0/15 holds the scenario's own ten routes.
        if len >= 15 && net >> 17 == u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) >> 17 {
            continue;
        }
        if !seen.insert((net, len)) {
            continue;
        }
        let gw = 2 + (r >> 48) % 4;
        writeln!(out, "{}/{len} 10.1.0.{gw}", std::net::Ipv4Addr::from(net))?;
    }
    out.flush()
}

/// Prefixes in the `router6-full` table, drawn by [`internet_like`] from [`ROUTES6_SEED`].
const ROUTES6_FULL: usize = 200_000;
/// The seed of the `router6-full` table.
const ROUTES6_SEED: u64 = 6;
/// Every prefix [`internet_like`] draws lies within one /29 (none is shorter): the table's
/// blocks, moved as wholes.
const BLOCK6_LEN: u32 = 29;
/// Block `j` of the `router6-full` table starts `j` /24s after [`BLOCKS6_AT`]: one /29 in
/// each /24, about how far apart allocations lie in a registry's /12 of the real table.
const BLOCK6_SPACING: u32 = 24;
/// Where the moved blocks start: 2400::/8 holds 65536 of them.
const BLOCKS6_AT: u128 = 0x2400 << 112;
/// Destinations of `router6-full`: one per block of its table (a unit test holds this to
/// the table that [`internet_like`] draws).
const ROUTER6_FULL_DESTINATIONS: u32 = 23_771;

/// The `router6-full` table: [`ROUTES6_FULL`] prefixes of [`internet_like`] (its mix of
/// lengths and its allocations with more specifics inside), moved so that the generator's
/// regular walk (one destination per /24 from 2400::1) lands in them, in the order drawn;
/// and the number of blocks.
///
/// A linear walk cannot hit prefixes scattered at random over 2000::/3 (a walk over
/// 2001::/16 would find an allocation one time in eight and a /48 almost never), so the
/// table comes to the walk: each /29 block of the drawn table (the prefixes sharing their
/// first 29 bits) is moved whole to block `j`'s place, `BLOCKS6_AT + j` /24s, in the order
/// the blocks were first drawn into, and mirrored: every prefix's bits below the block's 29
/// are XORed (as far as its length) with those of one of the block's prefixes chosen at
/// random, which so starts at the block's first address. Moving and mirroring change no
/// length and no nesting: the blocks keep their shape, and each destination,
/// `BLOCKS6_AT + j` /24s + ::1, falls in the chosen prefix (or in a more specific one within
/// it that held the chosen prefix's first address): of the 23,771 destinations, 44% match a
/// /48, 26% a /33-/47, 20% a /29-/32 and 8% a /49-/64 (the unit test prints the mix).
fn routes6_full() -> (Vec<(Ipv6Addr, u8)>, u32) {
    let list = internet_like(ROUTES6_FULL, ROUTES6_SEED);
    let within: u128 = (1u128 << (128 - BLOCK6_LEN)) - 1;
    let mask = |len: u8| u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    let mut order: Vec<u128> = Vec::new();
    let mut blocks: std::collections::HashMap<u128, Vec<usize>> = Default::default();
    for (i, &(net, len)) in list.iter().enumerate() {
        assert!(
            u32::from(len) >= BLOCK6_LEN,
            "internet_like drew {net}/{len}, shorter than a block"
        );
        let key = u128::from(net) >> (128 - BLOCK6_LEN);
        blocks
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(i);
    }
    assert!(
        order.len() <= 1 << (BLOCK6_SPACING - 8),
        "blocks beyond 2400::/8"
    );
    let mut rng = nfv_dataplane::XorShift(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next();
    let mut out = vec![(Ipv6Addr::UNSPECIFIED, 0); list.len()];
    for (j, key) in order.iter().enumerate() {
        let members = &blocks[key];
        let chosen = members[(next() % members.len() as u64) as usize];
        let flip = u128::from(list[chosen].0) & within;
        let base = BLOCKS6_AT + ((j as u128) << (128 - BLOCK6_SPACING));
        for &i in members {
            let (net, len) = list[i];
            let net = base | ((u128::from(net) & within) ^ (flip & mask(len)));
            out[i] = (Ipv6Addr::from(net), len);
        }
    }
    (out, order.len() as u32)
}

/// The `router6-full` topology: the router6 scenario plus a routes file of [`ROUTES6_FULL`]
/// prefixes at `file` ([`routes6_full`]), with one destination in each block of the table.
fn router6_full(file: &Path) -> String {
    ROUTER6
        .replace("name: bench-router6", "name: bench-router6-full")
        .replace(
            "    routes:\n",
            &format!("    routes_file: {}\n    routes:\n", file.display()),
        )
        .replace(
            "dst_ip: 2001:db8::1\n",
            &format!("dst_ip: {}\n", Ipv6Addr::from(BLOCKS6_AT | 1)),
        )
        .replace(
            "dst_flows: 10\n",
            &format!("dst_flows: {ROUTER6_FULL_DESTINATIONS}\n"),
        )
        // The step counts /64s: one /24 is 2^40 of them.
        .replace(
            "dst_step: 65536\n",
            &format!("dst_step: {}\n", 1u64 << (64 - BLOCK6_SPACING)),
        )
}

/// Write the [`routes6_full`] table, each prefix through one of the four neighbours in
/// turn.
fn write_routes6_full(path: &Path) -> std::io::Result<()> {
    let (table, _) = routes6_full();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "# {ROUTES6_FULL} IPv6 prefixes for nfv bench router6-full (generated: internet_like, blocks moved to the walk)"
    )?;
    for (i, (net, len)) in table.iter().enumerate() {
        writeln!(out, "{net}/{len} fd00:0:0:1::{}", 2 + i % 4)?;
    }
    out.flush()
}

/// The scale runs: the switch topology with `macs` source MACs and a table that fits them.
fn switch_with(macs: u32) -> String {
    SWITCH
        .replace("flows: 1000", &format!("flows: {macs}"))
        .replace(
            "mac_table_size: 4096",
            &format!("mac_table_size: {}", (macs as u64 * 2).max(4096)),
        )
        .replace("name: bench-switch", &format!("name: bench-switch-{macs}"))
}

/// The sockets of the `vhost` scenario's two ports.
fn vhost_sockets() -> Vec<PathBuf> {
    ["a", "b"]
        .iter()
        .map(|p| {
            std::env::temp_dir().join(format!("nfv-bench-vhost.{}.{p}.sock", std::process::id()))
        })
        .collect()
}

/// The `vhost` topology: a switch between two vhost-user ports (nfv listens).
fn vhost_topology(sockets: &[PathBuf]) -> String {
    let mut t = String::from("name: bench-vhost\nports:\n");
    for (name, sock) in ["a", "b"].iter().zip(sockets) {
        t.push_str(&format!(
            "  {name}: {{ kind: vhost-user, socket: {} }}\n",
            sock.display()
        ));
    }
    t.push_str("functions:\n  sw: { kind: switch }\nlinks:\n  - [a, sw]\n  - [b, sw]\n");
    t
}

/// Every built-in scenario.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "switch",
            about: "generator -> learning switch (1k source MACs, destination learned) -> sink; 64-byte frames",
            runs: vec![("1k MACs".into(), SWITCH.to_string())],
            files: vec![],
            peer: None,
        },
        Scenario {
            name: "switch-scale",
            about: "the switch scenario with 1k, 64k and 1M source MACs in the table",
            runs: [1_000u32, 65_536, 1_048_576]
                .iter()
                .map(|&m| (format!("{} MACs", human(m as u64)), switch_with(m)))
                .collect(),
            files: vec![],
            peer: None,
        },
        Scenario {
            name: "router",
            about: "generator -> router (10 static routes, static neighbours) -> sink; 64-byte frames, 10 destinations",
            runs: vec![("10 routes".into(), ROUTER.to_string())],
            files: vec![],
            peer: None,
        },
        Scenario {
            name: "router-1m",
            about: "the router scenario with 1M routes (Internet-like prefix lengths) and 64k destinations over them",
            runs: vec![("1M routes".into(), router_1m(&routes_1m_path()))],
            files: vec![(routes_1m_path(), write_routes_1m)],
            peer: None,
        },
        Scenario {
            name: "router6",
            about: "the router scenario over IPv6: 10 static /48 routes, static neighbours; 82-byte frames (the smallest IPv6 frame with the latency stamp)",
            runs: vec![("10 routes".into(), ROUTER6.to_string())],
            files: vec![],
            peer: None,
        },
        Scenario {
            name: "router6-full",
            about: "the router6 scenario with 200k Internet-like IPv6 routes and a destination in each /29 block of them",
            runs: vec![("200k routes".into(), router6_full(&routes6_full_path()))],
            files: vec![(routes6_full_path(), write_routes6_full)],
            peer: None,
        },
        Scenario {
            name: "gateway",
            about: "generator -> router -> NAT (masquerade) -> stateful firewall -> sink; 1k flows, 64-byte frames",
            runs: vec![("1k flows".into(), GATEWAY.to_string())],
            files: vec![],
            peer: None,
        },
        Scenario {
            name: "gateway-1m",
            about: "the gateway scenario with 1M flows: 1M NAT sessions and 1M firewall connections",
            runs: vec![("1M flows".into(), gateway_1m())],
            files: vec![],
            peer: None,
        },
        Scenario {
            name: "vhost",
            about: "DPDK testpmd as a VM (2 virtio_user ports, io, closed loop) -> vhost-user -> switch -> vhost-user -> back; 64-byte frames; needs dpdk-testpmd (Debian dpdk-dev, librte-net-vhost23)",
            runs: vec![("2 ports".into(), vhost_topology(&vhost_sockets()))],
            files: vec![],
            peer: Some(Peer::TestpmdLoop {
                sockets: vhost_sockets(),
            }),
        },
    ]
}

/// Where `router-1m` keeps its generated table.
fn routes_1m_path() -> PathBuf {
    std::env::temp_dir().join(format!("nfv-bench-router-1m.{}.routes", std::process::id()))
}

/// Where `router6-full` keeps its generated table.
fn routes6_full_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "nfv-bench-router6-full.{}.routes",
        std::process::id()
    ))
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1000 && n % 1024 == 0 => format!("{}k", n >> 10),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

/// Options of one bench invocation.
#[derive(Clone, Debug)]
pub struct Options {
    /// Measured window.
    pub duration: Duration,
    /// Warm-up before it.
    pub warmup: Duration,
    /// Override every generator's rate (packets per second).
    pub rate: Option<u64>,
    /// JSON instead of a table.
    pub json: bool,
}

/// Counter totals at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    offered: u64,
    offered_bytes: u64,
    forwarded: u64,
    forwarded_bytes: u64,
}

/// Where a port's counters go: offered (what it received), forwarded (what it sent), or
/// neither, as its kind says (`PortSpec::traffic`). Generators offer and sinks forward;
/// with a peer outside nfv, its vhost-user ports do both.
fn role(p: &PortSettings, peer: bool) -> (bool, bool) {
    match p.0.traffic() {
        Traffic::Source => (true, false),
        Traffic::Sink => (false, true),
        Traffic::Guest => (peer, peer),
        Traffic::Neither => (false, false),
    }
}

fn totals(running: &Running, c: &WorkerCounters, peer: bool) -> Totals {
    let mut t = Totals::default();
    for (i, (_, p)) in running.plan().ports.iter().enumerate() {
        let pc = &c.ports[i];
        let (offers, forwards) = role(p, peer);
        if offers {
            t.offered += pc.rx_packets.get();
            t.offered_bytes += pc.rx_bytes.get();
        }
        if forwards {
            t.forwarded += pc.tx_packets.get();
            t.forwarded_bytes += pc.tx_bytes.get();
        }
    }
    t
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Label.
    pub label: String,
    /// Seconds measured.
    pub seconds: f64,
    /// Offered Mpps.
    pub offered_mpps: f64,
    /// Forwarded Mpps.
    pub forwarded_mpps: f64,
    /// Forwarded Gbit/s (frame bytes, no preamble or FCS).
    pub gbps: f64,
    /// Nanoseconds of the worker per forwarded packet.
    pub ns_per_packet: f64,
    /// Latency percentiles (p50, p99, p99.9) in ns, if any stamped frame arrived.
    pub latency_ns: Option<(u64, u64, u64)>,
    /// Totals after the worker stopped.
    pub generated: u64,
    /// Frames that reached sinks, in total.
    pub sunk: u64,
    /// Drops by reason, in total.
    pub drops: Vec<(DropReason, u64)>,
    /// Whether every packet is accounted for.
    pub balanced: bool,
    /// The accounting: (in: generated + other rx + flood copies, out: sunk + other tx + drops).
    pub accounting: (u64, u64),
    /// The traffic came from a peer outside nfv: `generated` is what nfv received from it,
    /// `sunk` what nfv sent back.
    pub peer: bool,
}

impl RunReport {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "label": self.label,
            "seconds": self.seconds,
            "offered_mpps": self.offered_mpps,
            "forwarded_mpps": self.forwarded_mpps,
            "gbps": self.gbps,
            "ns_per_packet": self.ns_per_packet,
            "latency_ns": self.latency_ns.map(|(a, b, c)| json!({"p50": a, "p99": b, "p999": c})),
            "generated": self.generated,
            "sunk": self.sunk,
            "drops": self.drops.iter().map(|(r, n)| (r.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "balanced": self.balanced,
            "packets_in": self.accounting.0,
            "packets_out": self.accounting.1,
        })
    }
}

fn run_one(
    label: &str,
    topo: &Topology,
    opts: &Options,
    stop: &AtomicBool,
    peer: Option<&Peer>,
) -> Result<RunReport, String> {
    if peer.is_some() && opts.rate.is_some() {
        return Err("--rate applies to generator ports; this scenario's traffic comes from a closed loop outside nfv".into());
    }
    let mut topo = topo.clone();
    if let Some(rate) = opts.rate {
        for p in &mut topo.ports {
            // Generators take the rate; other ports ignore it.
            p.settings.0.set_rate(rate);
        }
    }
    let running = run::start(&topo).map_err(|e| e.to_string())?;
    let peer_process = match peer.map(Peer::start).transpose() {
        Ok(p) => p,
        Err(e) => {
            let _ = running.stop();
            return Err(e);
        }
    };
    let external = peer.is_some();
    let roles: Vec<(bool, bool)> = running
        .plan()
        .ports
        .iter()
        .map(|(_, p)| role(p, external))
        .collect();
    let counters = running.counters().clone();
    let sleep_until = |end: Instant| {
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    sleep_until(Instant::now() + opts.warmup);
    for (_, rec) in running.latency() {
        rec.reset();
    }
    let start = Instant::now();
    let a = totals(&running, &counters, external);
    let bar = (!opts.json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b.set_prefix(label.to_string());
        b
    });
    let end = start + opts.duration;
    let mut last = (start, a);
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(
            Duration::from_millis(200).min(end.saturating_duration_since(Instant::now())),
        );
        if let Some(b) = &bar {
            let now = (Instant::now(), totals(&running, &counters, external));
            let dt = now.0.duration_since(last.0).as_secs_f64().max(1e-9);
            b.set_message(format!(
                "{:.2} Mpps offered, {:.2} Mpps forwarded",
                (now.1.offered - last.1.offered) as f64 / dt / 1e6,
                (now.1.forwarded - last.1.forwarded) as f64 / dt / 1e6
            ));
            b.tick();
            last = now;
        }
    }
    let b_tot = totals(&running, &counters, external);
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut hist: Option<Histogram<u64>> = None;
    for (_, rec) in running.latency() {
        let h = rec.snapshot();
        match &mut hist {
            None => hist = Some(h),
            Some(acc) => {
                let _ = acc.add(&h);
            }
        }
    }
    // The peer goes first: nfv then stops with nothing arriving.
    drop(peer_process);
    let finals = running.stop().map_err(|e| e.to_string())?;
    let forwarded = b_tot.forwarded - a.forwarded;
    let drops: Vec<(DropReason, u64)> = DropReason::ALL
        .iter()
        .map(|&r| (r, finals.drops(r)))
        .filter(|&(_, n)| n > 0)
        .collect();
    let generated: u64 = finals
        .ports
        .iter()
        .zip(&roles)
        .filter(|(_, r)| r.0)
        .map(|(c, _)| c.rx_packets.get())
        .sum();
    let sunk: u64 = finals
        .ports
        .iter()
        .zip(&roles)
        .filter(|(_, r)| r.1)
        .map(|(c, _)| c.tx_packets.get())
        .sum();
    Ok(RunReport {
        label: label.to_string(),
        seconds,
        offered_mpps: (b_tot.offered - a.offered) as f64 / seconds / 1e6,
        forwarded_mpps: forwarded as f64 / seconds / 1e6,
        gbps: (b_tot.forwarded_bytes - a.forwarded_bytes) as f64 * 8.0 / seconds / 1e9,
        ns_per_packet: if forwarded > 0 {
            seconds * 1e9 / forwarded as f64
        } else {
            0.0
        },
        latency_ns: hist.filter(|h| !h.is_empty()).map(|h| {
            (
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
            )
        }),
        generated,
        sunk,
        drops,
        balanced: {
            let (i, o) = accounting(&finals);
            i == o
        },
        accounting: accounting(&finals),
        peer: external,
    })
}

/// Every packet in equals every packet out once the worker has stopped (run to completion
/// leaves nothing in flight): (port receives + packets nodes made, port transmits + drops +
/// packets nodes consumed). A node that emits, drops and consumes more than it was given
/// made packets (flood copies, ARP requests, ICMP errors). Frames a port could not take in
/// (pool empty) never entered, so those drops are not counted.
fn accounting(c: &WorkerCounters) -> (u64, u64) {
    let rx: u64 = c.ports.iter().map(|p| p.rx_packets.get()).sum();
    let tx: u64 = c.ports.iter().map(|p| p.tx_packets.get()).sum();
    let port_drops: u64 = c
        .ports
        .iter()
        .map(|p| p.drops.total() - p.drops.get(DropReason::NoBuffers))
        .sum();
    let made: u64 = c
        .nodes
        .iter()
        .map(|n| {
            (n.packets_out.get() + n.drops.total() + n.consumed.get())
                .saturating_sub(n.packets_in.get())
        })
        .sum();
    let node_drops: u64 = c.nodes.iter().map(|n| n.drops.total()).sum();
    let consumed: u64 = c.nodes.iter().map(|n| n.consumed.get()).sum();
    (rx + made, tx + port_drops + node_drops + consumed)
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{model}, {cpus} CPUs")
}

fn print_table(name: &str, reports: &[RunReport]) {
    outln!("nfv bench {name} ({}; one worker)", machine());
    outln!(
        "{:<12} {:>9} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9}  drops",
        "run",
        "offered",
        "forwarded",
        "Gbit/s",
        "ns/pkt",
        "p50 us",
        "p99 us",
        "p99.9 us"
    );
    for r in reports {
        let (p50, p99, p999) = r
            .latency_ns
            .map(|(a, b, c)| (a as f64 / 1e3, b as f64 / 1e3, c as f64 / 1e3))
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let drops = if r.drops.is_empty() {
            "none".to_string()
        } else {
            r.drops
                .iter()
                .map(|(d, n)| format!("{d}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        outln!(
            "{:<12} {:>7.2}M {:>7.2}M {:>7.2} {:>8.1} {:>9.1} {:>9.1} {:>9.1}  {}",
            r.label,
            r.offered_mpps,
            r.forwarded_mpps,
            r.gbps,
            r.ns_per_packet,
            p50,
            p99,
            p999,
            drops
        );
    }
    for r in reports {
        let (made, went) = if r.peer {
            ("received from the peer", "sent back to it")
        } else {
            ("generated", "reached sinks")
        };
        outln!(
            "{}: {} {made}, {} {went}; accounting {} in = {} out: {}",
            r.label,
            r.generated,
            r.sunk,
            r.accounting.0,
            r.accounting.1,
            if r.balanced {
                "balanced"
            } else {
                "NOT BALANCED"
            }
        );
    }
}

impl Peer {
    /// Start the peer; it runs until the returned process is dropped.
    fn start(&self) -> Result<PeerProcess, String> {
        match self {
            Peer::TestpmdLoop { sockets } => {
                let mut t = PeerProcess::testpmd(sockets)?;
                t.command("set fwd io", "Set io packet forwarding mode")?;
                t.command("start tx_first 8", "io packet forwarding")?;
                Ok(t)
            }
        }
    }
}

/// A peer program: stopped (asked to quit, then killed) when dropped, with whatever it left
/// behind.
struct PeerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its standard output (prompts and command output) and standard error, as read so far.
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Bytes of stdout up to the end of the last prompt a command waited for.
    seen: usize,
    /// Its DPDK runtime directories, removed when it ends.
    dirs: DpdkRunDirs,
}

/// testpmd's prompt, printed when it is ready for the next command.
const TESTPMD_PROMPT: &[u8] = b"testpmd> ";

/// The CPUs in a Linux CPU list (`0-3,5`).
fn cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            cpus.extend(a..=b);
        }
    }
    cpus
}

/// A CPU for a peer: the first online CPU this process may not run on (so that the peer
/// and nfv's worker do not share one; `taskset -c 1 nfv bench vhost` leaves CPU 0), else
/// CPU 0.
fn peer_cpu() -> (usize, bool) {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|t| cpu_list(&t))
        .unwrap_or_default();
    let allowed = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(cpu_list))
        })
        .unwrap_or_default();
    match online.iter().find(|c| !allowed.contains(c)) {
        Some(&c) => (c, true),
        None => (0, false),
    }
}

/// An interactive `dpdk-testpmd` (under `stdbuf -oL`, so that a command's output is
/// complete when the next prompt comes) on CPU `cpu` (main and forwarding lcore), without
/// hugepages, with file prefix `prefix` and the given `--vdev`s; one forwarding core, 8192
/// mbufs (what `--no-huge` fits), events not printed. Its stdin, stdout and stderr are
/// pipes; more application arguments may follow. The one place nfv and its tests spell out
/// how testpmd is started (see `../shared/LAB.md` for why each flag). With it come the DPDK
/// runtime directories the run will leave, to [`DpdkRunDirs::remove`] after it ends.
pub fn testpmd_command(cpu: usize, prefix: &str, vdevs: &[String]) -> (Command, DpdkRunDirs) {
    let mut cmd = Command::new("stdbuf");
    cmd.args(["-oL", "dpdk-testpmd"])
        .arg(format!("--lcores=(0,1)@{cpu}"))
        .args([
            "--no-huge",
            "-m",
            "256",
            "--no-shconf",
            "--no-telemetry",
            "--no-pci",
            // Warnings and errors only: EAL logs go to stdout from any thread, and the
            // prompt is written a character at a time, so that a log line could split it.
            "--log-level=5",
        ])
        .arg(format!("--file-prefix={prefix}"));
    for v in vdevs {
        cmd.arg("--vdev").arg(v);
    }
    // Events (link up/down) are printed asynchronously too: not at all.
    cmd.args([
        "--",
        "-i",
        "--nb-cores=1",
        "--total-num-mbufs=8192",
        "--mask-event=all",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    (cmd, DpdkRunDirs::before_start(prefix))
}

/// Append everything `r` yields to `buf`, on a thread of its own, until its end.
fn read_into(mut r: impl std::io::Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
}

impl PeerProcess {
    /// DPDK testpmd (interactive, commands on stdin) with a `virtio_user` port on each
    /// socket, both its lcores on one CPU, no hugepages; waits until it is ready.
    fn testpmd(sockets: &[PathBuf]) -> Result<PeerProcess, String> {
        let (cpu, apart) = peer_cpu();
        if !apart {
            errln!(
                "nfv bench: testpmd runs on CPU {cpu}, which nfv's worker may share; pin nfv to another CPU (taskset -c 1 nfv bench ...) for meaningful numbers"
            );
        }
        let prefix = format!("nfv-bench-{}", std::process::id());
        let vdevs: Vec<String> = sockets
            .iter()
            .enumerate()
            .map(|(i, sock)| {
                // testpmd sends on port P to 02:00:00:00:00:0P: each port has the other's
                // destination address, so a switch learns both and forwards by lookup.
                let mac = if i < 2 { 1 - i } else { i };
                format!(
                    "virtio_user{i},path={},queues=1,mac=02:00:00:00:00:{mac:02x}",
                    sock.display()
                )
            })
            .collect();
        let (mut cmd, dirs) = testpmd_command(cpu, &prefix, &vdevs);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start dpdk-testpmd under stdbuf: {e}"))?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(r) = child.stdout.take() {
            read_into(r, stdout.clone());
        }
        if let Some(r) = child.stderr.take() {
            read_into(r, stderr.clone());
        }
        let mut p = PeerProcess {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            seen: 0,
            dirs,
        };
        p.wait_prompt(Duration::from_secs(60))
            .map_err(|e| format!("{e}\n(dpdk-testpmd and its vhost and virtio drivers come with Debian's dpdk-dev and librte-net-vhost23)"))?;
        Ok(p)
    }

    /// What it printed, for an error message: the last lines of stdout and stderr.
    fn tail(&self) -> String {
        let mut all = String::new();
        for b in [&self.stdout, &self.stderr] {
            let b = b.lock().unwrap_or_else(|e| e.into_inner());
            all.push_str(&String::from_utf8_lossy(&b));
        }
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Wait for the next prompt; returns what came before it.
    fn wait_prompt(&mut self, timeout: Duration) -> Result<String, String> {
        let end = Instant::now() + timeout;
        loop {
            {
                let out = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
                let rest = &out[self.seen.min(out.len())..];
                if let Some(at) = rest
                    .windows(TESTPMD_PROMPT.len())
                    .position(|w| w == TESTPMD_PROMPT)
                {
                    let text = String::from_utf8_lossy(&rest[..at]).into_owned();
                    self.seen += at + TESTPMD_PROMPT.len();
                    return Ok(text);
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("dpdk-testpmd exited ({status}):\n{}", self.tail()));
            }
            if Instant::now() >= end {
                return Err(format!(
                    "dpdk-testpmd not ready within {timeout:?}:\n{}",
                    self.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send a command; its output must contain `expect`.
    fn command(&mut self, line: &str, expect: &str) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or("dpdk-testpmd's input is closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("dpdk-testpmd: cannot send `{line}`: {e}"))?;
        let out = self.wait_prompt(Duration::from_secs(30))?;
        if out.contains(expect) {
            Ok(())
        } else {
            Err(format!(
                "dpdk-testpmd: `{line}` failed:\n{out}\n{}",
                self.tail()
            ))
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // testpmd also quits at the end of its input, when stdin closes here.
            let _ = writeln!(stdin, "quit");
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dirs.remove();
    }
}

/// What a testpmd run with a `--file-prefix` leaves behind under DPDK's runtime directory
/// (`/var/run/dpdk`): its own directory, and the runtime directory itself if DPDK made it
/// for this run. [`testpmd_command`] records it before the start; [`DpdkRunDirs::remove`]
/// after the end.
pub struct DpdkRunDirs {
    own: PathBuf,
    parent_was_there: bool,
}

impl DpdkRunDirs {
    /// Before starting a testpmd with `prefix`. Whether the runtime directory was there is
    /// taken once per process, before its first testpmd, so that of several testpmds at once
    /// the last to end removes it.
    fn before_start(prefix: &str) -> Self {
        static PARENT_WAS_THERE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let parent = Path::new("/var/run/dpdk");
        DpdkRunDirs {
            own: parent.join(prefix),
            parent_was_there: *PARENT_WAS_THERE.get_or_init(|| parent.exists()),
        }
    }

    /// Remove the run's own directory, and the runtime directory if it was not there before
    /// and is empty now (another DPDK program may be using it).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.own);
        if !self.parent_was_there {
            if let Some(parent) = self.own.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// Removes the files a scenario wrote, whatever happens.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `nfv bench --list`.
pub fn list() -> ExitCode {
    for s in scenarios() {
        outln!("{:<14} {}", s.name, s.about);
    }
    ExitCode::SUCCESS
}

/// `nfv bench TARGET`: TARGET is a scenario name or a topology file.
pub fn main(target: &str, opts: &Options) -> ExitCode {
    let stop = crate::session::stop_flag();
    let mut peer = None;
    let runs: Vec<(String, Topology)> = match scenarios().into_iter().find(|s| s.name == target) {
        Some(s) => {
            peer = s.peer.clone();
            let mut v = Vec::new();
            for (path, write) in &s.files {
                if let Err(e) = write(path) {
                    errln!("nfv bench: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            let _cleanup = RemoveOnDrop(s.files.iter().map(|(p, _)| p.clone()).collect());
            for (label, text) in s.runs {
                match topology::load_str(&text, Path::new(&format!("<scenario {}>", s.name))) {
                    Ok(t) => v.push((label, t)),
                    Err(e) => {
                        errln!("nfv bench: built-in scenario {} is broken: {e}", s.name);
                        return ExitCode::FAILURE;
                    }
                }
            }
            v
        }
        None => match topology::load_file(Path::new(target)) {
            Ok(t) => vec![(t.name.clone(), t)],
            Err(e) => {
                errln!("{e}");
                errln!("nfv bench: `{target}` is neither a topology file nor a scenario (nfv bench --list)");
                return ExitCode::FAILURE;
            }
        },
    };
    let mut reports = Vec::new();
    for (label, topo) in &runs {
        if peer.is_none()
            && !topo
                .ports
                .iter()
                .any(|p| p.settings.0.traffic() == Traffic::Source)
        {
            errln!("nfv bench: topology {} has no generator port", topo.name);
            return ExitCode::FAILURE;
        }
        match run_one(label, topo, opts, &stop, peer.as_ref()) {
            Ok(r) => reports.push(r),
            Err(e) => {
                errln!("nfv bench: {label}: {e}");
                return ExitCode::FAILURE;
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if opts.json {
        let out = json!({
            "scenario": target,
            "machine": machine(),
            "duration_s": opts.duration.as_secs_f64(),
            "warmup_s": opts.warmup.as_secs_f64(),
            "runs": reports.iter().map(RunReport::to_json).collect::<Vec<_>>(),
            "forwarded_mpps": reports.first().map(|r| r.forwarded_mpps),
            "ns_per_packet": reports.first().map(|r| r.ns_per_packet),
        });
        outln!("{out}");
    } else {
        print_table(target, &reports);
    }
    if reports.iter().all(|r| r.balanced) {
        ExitCode::SUCCESS
    } else {
        errln!("nfv bench: packet accounting does not balance");
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_dataplane::port::{Addresses, GeneratorConfig};
    use nfv_functions::lpm6::Lpm6;
    use nfv_functions::router::RouterSpec;

    #[test]
    fn router6_full_walk_lands_in_its_table_one_block_each() {
        let (table, blocks) = routes6_full();
        assert_eq!(
            blocks, ROUTER6_FULL_DESTINATIONS,
            "the walk has one destination per block of the table"
        );
        // The drawn table's shape: the same lengths, in the same order, all distinct.
        let drawn = internet_like(ROUTES6_FULL, ROUTES6_SEED);
        assert!(table.iter().map(|p| p.1).eq(drawn.iter().map(|p| p.1)));
        let distinct: std::collections::HashSet<_> = table.iter().collect();
        assert_eq!(distinct.len(), ROUTES6_FULL);
        // The walk as the generator takes it: j * step /64s on from the first.
        let lpm = Lpm6::from_routes(
            table
                .iter()
                .enumerate()
                .map(|(i, &(net, len))| (net, len, i as u32)),
        )
        .expect("table");
        let first = BLOCKS6_AT | 1;
        let step = 1u64 << (64 - BLOCK6_SPACING);
        let mut hit = std::collections::HashSet::new();
        let mut by_len = [0usize; 129];
        for j in 0..u64::from(blocks) {
            let net = ((first >> 64) as u64).wrapping_add(j.wrapping_mul(step));
            let d = (u128::from(net) << 64) | (first & u128::from(u64::MAX));
            let v = lpm
                .lookup(d)
                .unwrap_or_else(|| panic!("destination {j} ({}) has no route", Ipv6Addr::from(d)));
            hit.insert(v);
            by_len[table[v as usize].1 as usize] += 1;
        }
        assert_eq!(
            hit.len(),
            blocks as usize,
            "each destination its own prefix"
        );
        // Mostly deep: /48 is the most common length of the table and of the matches.
        let share = |lens: std::ops::RangeInclusive<usize>| {
            lens.map(|l| by_len[l]).sum::<usize>() * 100 / blocks as usize
        };
        assert!(share(48..=64) >= 30, "{by_len:?}");
        assert!(share(29..=32) >= 10, "{by_len:?}");
        eprintln!(
            "router6-full: {blocks} destinations; matched /29-/32 {}%, /33-/47 {}%, /48 {}%, /49-/64 {}%",
            share(29..=32),
            share(33..=47),
            share(48..=48),
            share(49..=64)
        );
    }

    fn generator(t: &Topology) -> &GeneratorConfig {
        t.ports
            .iter()
            .find_map(|p| p.settings.get::<GeneratorConfig>())
            .expect("a generator")
    }

    fn router(t: &Topology) -> &RouterSpec {
        t.functions
            .iter()
            .find_map(|f| f.settings.downcast::<RouterSpec>())
            .expect("a router")
    }

    #[test]
    fn router6_scenarios_load_as_the_ipv6_twins_of_router() {
        let names: Vec<&str> = scenarios().iter().map(|s| s.name).collect();
        assert!(names.contains(&"router6") && names.contains(&"router6-full"));
        let t = topology::load_str(ROUTER6, Path::new("<router6>")).expect("router6 loads");
        let g = generator(&t);
        let four = topology::load_str(ROUTER, Path::new("<router>")).expect("router loads");
        let g4 = generator(&four);
        assert!(matches!(g.addresses, Addresses::V6 { .. }));
        assert_eq!((g.flows, g.dst_flows), (g4.flows, g4.dst_flows));
        assert_eq!(g.sizes, nfv_dataplane::port::Sizes::Fixed(82));
        assert_eq!(router(&t).routes6.len(), 10);

        let dir = std::env::temp_dir().join(format!("nfv-bench-test.{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("router6-full.routes");
        write_routes6_full(&file).expect("write");
        let full = topology::load_str(&router6_full(&file), Path::new("<router6-full>"));
        let _ = std::fs::remove_dir_all(&dir);
        let full = full.expect("router6-full loads");
        assert_eq!(full.name, "bench-router6-full");
        let g = generator(&full);
        assert_eq!(g.dst_flows, ROUTER6_FULL_DESTINATIONS);
        assert_eq!(g.dst_step, 1 << 40);
        assert_eq!(
            g.addresses,
            Addresses::V6 {
                src: "fd00::10".parse().expect("IPv6"),
                dst: "2400::1".parse().expect("IPv6"),
            }
        );
        assert_eq!(router(&full).routes6.len(), ROUTES6_FULL + 10);
    }
}
