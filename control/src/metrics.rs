//! The Prometheus endpoint of `nfv run`: `GET /metrics` in the text exposition format.
//!
//! Nothing here touches the packet path. At each scrape [`Source::render`] reads the
//! workers' counters (relaxed atomic loads, summed over workers) and the functions'
//! `Arc`'d stats, fills a fresh `prometheus` registry with them and encodes it. The server
//! is a small loop on a `std::net::TcpListener` in its own thread that answers one request
//! per connection: `GET /metrics` (or `HEAD`), 404 for other paths, 405 for other methods,
//! 400 for what is not HTTP; it never panics on what a client sends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nfv_dataplane::counters::DropCounters;
use nfv_dataplane::{DropReason, WorkerCounters};
use nfv_functions::kind::{Metric, MetricType};
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// The default address: loopback only, since the metrics describe the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// The source as the server holds it: a reload puts a new one in.
pub type Shared = Arc<std::sync::Mutex<Source>>;

/// Everything a scrape reads, shared with the running dataplane.
#[derive(Clone)]
pub struct Source {
    /// Port names, indexed like `WorkerCounters::ports`.
    pub ports: Vec<String>,
    /// Function names, indexed like `WorkerCounters::nodes`.
    pub functions: Vec<String>,
    /// Every worker's counters.
    pub workers: Vec<Arc<WorkerCounters>>,
    /// Each function's stats.
    pub kinds: Vec<(String, Arc<dyn nfv_functions::kind::Stats>)>,
}

/// A registry being filled for one scrape. Registration cannot fail here except for a bug
/// in the names below (caught by the unit tests), so errors are logged, not propagated.
struct Out {
    registry: Registry,
}

impl Out {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Option<IntCounterVec> {
        let c = IntCounterVec::new(Opts::new(name, help), labels).ok()?;
        match self.registry.register(Box::new(c.clone())) {
            Ok(()) => Some(c),
            Err(e) => {
                tracing::warn!("metric {name}: {e}");
                None
            }
        }
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Option<IntGaugeVec> {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).ok()?;
        match self.registry.register(Box::new(g.clone())) {
            Ok(()) => Some(g),
            Err(e) => {
                tracing::warn!("metric {name}: {e}");
                None
            }
        }
    }
}

fn add(c: &Option<IntCounterVec>, labels: &[&str], v: u64) {
    if let Some(c) = c {
        if let Ok(m) = c.get_metric_with_label_values(labels) {
            m.inc_by(v);
        }
    }
}

fn set(g: &Option<IntGaugeVec>, labels: &[&str], v: u64) {
    if let Some(g) = g {
        if let Ok(m) = g.get_metric_with_label_values(labels) {
            m.set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }
}

/// Every metric name nfv exports besides the registry's kinds' (see [`metric_names`]; the
/// dashboard test checks its queries against them).
pub const METRIC_NAMES: &[&str] = &[
    "nfv_port_rx_packets_total",
    "nfv_port_rx_bytes_total",
    "nfv_port_tx_packets_total",
    "nfv_port_tx_bytes_total",
    "nfv_port_rx_errors_total",
    "nfv_port_rx_miss_total",
    "nfv_port_drops_total",
    "nfv_drops_total",
    "nfv_function_packets_in_total",
    "nfv_function_packets_out_total",
    "nfv_function_packets_consumed_total",
    "nfv_function_drops_total",
    "nfv_worker_loops_total",
    "nfv_worker_busy_loops_total",
    "nfv_worker_burst_packets_total",
];

impl Source {
    /// Sum `f` over every worker.
    fn sum(&self, f: impl Fn(&WorkerCounters) -> u64) -> u64 {
        self.workers.iter().map(|w| f(w)).fold(0, u64::wrapping_add)
    }

    /// Drops by reason of port or node `i`, summed over workers.
    fn drops(
        &self,
        reason: DropReason,
        pick: impl Fn(&WorkerCounters) -> Option<&DropCounters>,
    ) -> u64 {
        self.sum(|w| pick(w).map_or(0, |d| d.get(reason)))
    }

    /// The text exposition of every metric, as of now.
    pub fn render(&self) -> String {
        let out = Out {
            registry: Registry::new(),
        };
        self.fill(&out);
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&out.registry.gather(), &mut buf) {
            tracing::warn!("cannot encode metrics: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn fill(&self, out: &Out) {
        let port = ["port"];
        let rx_p = out.counter(
            "nfv_port_rx_packets_total",
            "Frames received on a port and passed to the graph.",
            &port,
        );
        let rx_b = out.counter(
            "nfv_port_rx_bytes_total",
            "Bytes of the frames received on a port.",
            &port,
        );
        let tx_p = out.counter(
            "nfv_port_tx_packets_total",
            "Frames transmitted on a port.",
            &port,
        );
        let tx_b = out.counter(
            "nfv_port_tx_bytes_total",
            "Bytes of the frames transmitted on a port.",
            &port,
        );
        let rx_e = out.counter(
            "nfv_port_rx_errors_total",
            "Receive calls on a port that failed with an error other than nothing to read.",
            &port,
        );
        let rx_m = out.counter(
            "nfv_port_rx_miss_total",
            "Frames a port's peer sent that were lost before nfv read them (a full TAP queue or packet ring), as the kernel counts them.",
            &port,
        );
        let p_drops = out.counter(
            "nfv_port_drops_total",
            "Frames dropped at a port (receive or transmit), all reasons.",
            &port,
        );
        let drops = out.counter(
            "nfv_drops_total",
            "Packets dropped, by where (a port or function name), kind (port or function) and reason (nfv's DropReason set).",
            &["where", "kind", "reason"],
        );
        for (i, name) in self.ports.iter().enumerate() {
            let l = [name.as_str()];
            let get = |f: &dyn Fn(&nfv_dataplane::PortCounters) -> u64| {
                self.sum(|w| w.ports.get(i).map_or(0, f))
            };
            add(&rx_p, &l, get(&|p| p.rx_packets.get()));
            add(&rx_b, &l, get(&|p| p.rx_bytes.get()));
            add(&tx_p, &l, get(&|p| p.tx_packets.get()));
            add(&tx_b, &l, get(&|p| p.tx_bytes.get()));
            add(&rx_e, &l, get(&|p| p.rx_errors.get()));
            add(&rx_m, &l, get(&|p| p.rx_miss.get()));
            add(&p_drops, &l, get(&|p| p.drops.total()));
            for r in DropReason::ALL {
                let n = self.drops(r, |w| w.ports.get(i).map(|p| &p.drops));
                add(&drops, &[name, "port", r.name()], n);
            }
        }

        let function = ["function"];
        let f_in = out.counter(
            "nfv_function_packets_in_total",
            "Packets handed to a function.",
            &function,
        );
        let f_out = out.counter(
            "nfv_function_packets_out_total",
            "Packets a function emitted (flooded copies and packets it made itself count once each).",
            &function,
        );
        let f_used = out.counter(
            "nfv_function_packets_consumed_total",
            "Packets a function took in and used up without a drop (e.g. an ARP reply it learned from).",
            &function,
        );
        let f_drops = out.counter(
            "nfv_function_drops_total",
            "Packets a function dropped, all reasons.",
            &function,
        );
        for (i, name) in self.functions.iter().enumerate() {
            let l = [name.as_str()];
            let get = |f: &dyn Fn(&nfv_dataplane::NodeCounters) -> u64| {
                self.sum(|w| w.nodes.get(i).map_or(0, f))
            };
            add(&f_in, &l, get(&|n| n.packets_in.get()));
            add(&f_out, &l, get(&|n| n.packets_out.get()));
            add(&f_used, &l, get(&|n| n.consumed.get()));
            add(&f_drops, &l, get(&|n| n.drops.total()));
            for r in DropReason::ALL {
                let n = self.drops(r, |w| w.nodes.get(i).map(|n| &n.drops));
                add(&drops, &[name, "function", r.name()], n);
            }
        }

        let worker = ["worker"];
        let loops = out.counter(
            "nfv_worker_loops_total",
            "Turns of a worker's polling loop.",
            &worker,
        );
        let busy = out.counter(
            "nfv_worker_busy_loops_total",
            "Loop turns that received at least one packet.",
            &worker,
        );
        let burst = out.counter(
            "nfv_worker_burst_packets_total",
            "Packets received in busy loop turns (average burst = this / nfv_worker_busy_loops_total).",
            &worker,
        );
        for w in &self.workers {
            let id = w.worker.0.to_string();
            let l = [id.as_str()];
            add(&loops, &l, w.loops.get());
            add(&busy, &l, w.busy_loops.get());
            add(&burst, &l, w.burst_packets.get());
        }

        // The registry's kinds: each metric family registered once, at its first sample.
        let mut families: Vec<(&'static str, Family)> = Vec::new();
        for (name, stats) in &self.kinds {
            stats.visit(&mut |m: &'static Metric, labels: &[&str], v: u64| {
                let at = match families.iter().position(|(n, _)| *n == m.name) {
                    Some(i) => i,
                    None => {
                        let names: Vec<&str> = std::iter::once("function")
                            .chain(m.labels.iter().copied())
                            .collect();
                        let family = match m.kind {
                            MetricType::Counter => {
                                Family::Counter(out.counter(m.name, m.help, &names))
                            }
                            MetricType::Gauge => Family::Gauge(out.gauge(m.name, m.help, &names)),
                        };
                        families.push((m.name, family));
                        families.len() - 1
                    }
                };
                let values: Vec<&str> = std::iter::once(name.as_str())
                    .chain(labels.iter().copied())
                    .collect();
                match &families[at].1 {
                    Family::Counter(c) => add(c, &values, v),
                    Family::Gauge(g) => set(g, &values, v),
                }
            });
        }
    }
}

/// A registered kind's metric family in one scrape's registry.
enum Family {
    Counter(Option<IntCounterVec>),
    Gauge(Option<IntGaugeVec>),
}

/// Every metric name nfv exports: [`METRIC_NAMES`] and the registry's kinds' metrics.
pub fn metric_names() -> Vec<&'static str> {
    let registered = nfv_functions::registry::KINDS
        .iter()
        .flat_map(|k| k.metrics().iter().map(|m| m.name));
    METRIC_NAMES.iter().copied().chain(registered).collect()
}

/// A metrics server: its thread stops when this is stopped or dropped.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Bind `addr` (before the dataplane starts, so that a taken address is found early).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

impl Server {
    /// Serve `source` on `listener` in a new thread.
    pub fn spawn(listener: TcpListener, source: Shared) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nfv-metrics".into())
            .spawn(move || serve(&listener, &source, &flag))?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and wait for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::warn!("the metrics server thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Scrapes answered at once; a connection beyond them gets 503 at once.
const MAX_SCRAPES: usize = 8;
/// How long a client may take to send its request head, and to take the answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accept scrapes until `stop`, each answered on a thread of its own (at most
/// [`MAX_SCRAPES`] at once) within [`SCRAPE_TIMEOUT`] for the request and as much for the
/// answer: a client that trickles its request holds one place for seconds and never stops
/// the others.
fn serve(listener: &TcpListener, source: &Shared, stop: &AtomicBool) {
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut threads: Vec<std::thread::JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                threads.retain(|t| !t.is_finished());
                if live.load(Ordering::Relaxed) >= MAX_SCRAPES {
                    let _ = stream.set_nonblocking(false);
                    let _ = crate::deadline::write_all(
                        &mut stream,
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        Instant::now() + Duration::from_millis(200),
                    );
                    continue;
                }
                // What runs now (a reload replaces it); the lock is held only to copy it.
                let now = match source.lock() {
                    Ok(s) => s.clone(),
                    Err(p) => p.into_inner().clone(),
                };
                live.fetch_add(1, Ordering::Relaxed);
                let place = Place(live.clone());
                let spawned = std::thread::Builder::new()
                    .name("nfv-metrics-conn".into())
                    .spawn(move || {
                        let _place = place;
                        if let Err(e) = answer(stream, &now) {
                            tracing::debug!("metrics request: {e}");
                        }
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => tracing::warn!("cannot answer a scrape: {e}"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::debug!("metrics accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    // Each ends within its deadlines.
    for t in threads {
        let _ = t.join();
    }
}

/// One of the [`MAX_SCRAPES`] places, given back when dropped (a panic too).
struct Place(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Longest request head read; longer ones get 431.
const MAX_HEAD: usize = 8192;

/// What to answer to a request head (the bytes up to the blank line): status, body. Public
/// for the `metrics_http` fuzz target; the server calls it from [`Server::spawn`]'s thread.
pub fn respond(head: &[u8], source: &Source) -> (&'static str, String) {
    let text = String::from_utf8_lossy(head);
    let first = text.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", "bad request\n".into());
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return ("400 Bad Request", "bad request\n".into());
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return ("404 Not Found", "not found: nfv serves /metrics\n".into());
    }
    match method {
        "GET" | "HEAD" => ("200 OK", source.render()),
        _ => ("405 Method Not Allowed", "only GET /metrics\n".into()),
    }
}

fn answer(mut stream: TcpStream, source: &Source) -> std::io::Result<()> {
    use crate::deadline::{read_until, Head};
    stream.set_nonblocking(false)?;
    let by = Instant::now() + SCRAPE_TIMEOUT;
    // The head ends at a blank line; look only at the new bytes and three before them.
    let ended = |b: &[u8], new: usize| {
        let tail = &b[new.saturating_sub(3)..];
        tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n")
    };
    let (complete, head) = match read_until(&mut stream, by, MAX_HEAD, ended)? {
        Head::Complete(h) => (true, h),
        // Connected and closed without a word: nobody to answer.
        Head::Closed(h) if h.is_empty() => return Ok(()),
        Head::Closed(h) => (true, h),
        Head::TooLong => (false, Vec::new()),
    };
    let is_head = head.starts_with(b"HEAD ");
    let (status, body) = if complete {
        respond(&head, source)
    } else {
        (
            "431 Request Header Fields Too Large",
            "request too large\n".into(),
        )
    };
    let kind = if status.starts_with("200") {
        prometheus::TEXT_FORMAT
    } else {
        "text/plain; charset=utf-8"
    };
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !is_head {
        reply.extend_from_slice(body.as_bytes());
    }
    crate::deadline::write_all(&mut stream, &reply, Instant::now() + SCRAPE_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_dataplane::WorkerId;
    use nfv_functions::dhcp::DhcpStats;
    use nfv_functions::SwitchStats;
    use std::io::{Read as _, Write as _};

    fn source() -> Source {
        let w = Arc::new(WorkerCounters::new(WorkerId(0), 2, 1));
        w.ports[0].rx(100);
        w.ports[1].tx(60);
        w.ports[1].drops.add(DropReason::TxFull, 2);
        w.nodes[0].packets_in.add(1);
        w.nodes[0].drops.add(DropReason::Hairpin, 1);
        w.loops.add(10);
        w.busy_loops.add(1);
        w.burst_packets.add(1);
        let sw = Arc::new(SwitchStats::default());
        sw.entries.set(3);
        let mirror = Arc::new(nfv_functions::mirror::MirrorStats::default());
        mirror.copies.add(5);
        mirror.missed_monitor_full.add(2);
        Source {
            ports: vec!["a".into(), "b".into()],
            functions: vec!["sw".into()],
            workers: vec![w],
            kinds: vec![
                ("sw".into(), sw),
                ("span".into(), mirror),
                ("dhcp".into(), Arc::new(DhcpStats::default())),
            ],
        }
    }

    #[test]
    fn renders_the_counters() {
        let text = source().render();
        for line in [
            "nfv_port_rx_packets_total{port=\"a\"} 1",
            "nfv_port_rx_bytes_total{port=\"a\"} 100",
            "nfv_port_tx_bytes_total{port=\"b\"} 60",
            "nfv_drops_total{kind=\"port\",reason=\"tx_full\",where=\"b\"} 2",
            "nfv_drops_total{kind=\"function\",reason=\"hairpin\",where=\"sw\"} 1",
            "nfv_function_packets_in_total{function=\"sw\"} 1",
            "nfv_worker_loops_total{worker=\"0\"} 10",
            "nfv_switch_mac_entries{function=\"sw\"} 3",
            "nfv_dhcp_sent_total{function=\"dhcp\",type=\"offer\"} 0",
            "nfv_mirror_copies_total{function=\"span\"} 5",
            "nfv_mirror_missed_total{cause=\"monitor_full\",function=\"span\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        // Every family rendered is a known name, and every name in the list is valid.
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = l.split_whitespace().nth(2).unwrap_or("");
            assert!(
                metric_names().contains(&name),
                "{name} is not a known metric"
            );
        }
    }

    /// Every string under a key named `expr` in `v`.
    fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(s) if k == "expr" || k == "definition" => {
                            out.push(s.clone());
                        }
                        _ => exprs(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }

    /// The `nfv_...` names in a PromQL expression.
    fn names(expr: &str) -> Vec<&str> {
        let mut v = Vec::new();
        let mut rest = expr;
        while let Some(i) = rest.find("nfv_") {
            let before = rest[..i].chars().last();
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                v.push(&tail[..end]);
            }
            rest = &tail[end..];
        }
        v
    }

    #[test]
    fn the_grafana_dashboard_asks_only_for_exported_metrics() {
        let text = include_str!("../grafana/nfv-dashboard.json");
        let dash: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        let panels = dash["panels"].as_array().expect("panels");
        let mut titles = Vec::new();
        for p in panels {
            let title = p["title"].as_str().expect("every panel has a title");
            if p["type"] == "row" {
                continue;
            }
            titles.push(title);
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "panel {title} has no query");
            for t in targets {
                let e = t["expr"].as_str().expect("expr");
                assert!(
                    !names(e).is_empty(),
                    "panel {title}: {e} names no nfv metric"
                );
            }
        }
        let mut all = Vec::new();
        exprs(&dash, &mut all);
        assert!(all.len() > 20, "{all:?}");
        for e in &all {
            for n in names(e) {
                assert!(
                    metric_names().contains(&n),
                    "{n} (in `{e}`) is not exported"
                );
            }
        }
        for want in [
            "Port receive rate",
            "Drops by reason",
            "busy fraction",
            "burst size",
            "Table sizes",
            "DHCP leases",
        ] {
            assert!(
                titles.iter().any(|t| t.contains(want)),
                "no panel `{want}` in {titles:?}"
            );
        }
        assert_eq!(
            names("rate(nfv_a_total[1m]) / xnfv_b + nfv_c"),
            ["nfv_a_total", "nfv_c"]
        );
    }

    #[test]
    fn answers_only_get_metrics() {
        let s = source();
        assert_eq!(respond(b"GET /metrics HTTP/1.1\r\n\r\n", &s).0, "200 OK");
        assert_eq!(
            respond(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", &s).0,
            "200 OK"
        );
        assert_eq!(respond(b"GET / HTTP/1.1\r\n\r\n", &s).0, "404 Not Found");
        assert_eq!(
            respond(b"POST /metrics HTTP/1.1\r\n\r\n", &s).0,
            "405 Method Not Allowed"
        );
        for bad in [
            &b""[..],
            b"\xff\xfe\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /metrics FTP\r\n\r\n",
        ] {
            assert_eq!(respond(bad, &s).0, "400 Bad Request", "{bad:?}");
        }
    }

    #[test]
    fn serves_over_tcp_and_stops() {
        let l = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let server = Server::spawn(l, Arc::new(std::sync::Mutex::new(source()))).expect("spawn");
        let get = |req: &[u8]| {
            let mut c = TcpStream::connect(server.addr()).expect("connect");
            c.write_all(req).expect("write");
            let mut r = String::new();
            let _ = c.read_to_string(&mut r);
            r
        };
        let r = get(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("nfv_port_rx_packets_total{port=\"a\"} 1"), "{r}");
        assert!(get(b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(&[b'x'; 20_000]).starts_with("HTTP/1.1 431"));
        // A client that connects and says nothing does not stop the next one for long.
        let _idle = TcpStream::connect(server.addr()).expect("connect");
        assert!(get(b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        server.stop();
    }
}
