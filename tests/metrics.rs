//! The Prometheus endpoint of `nfv run`: a scrape counts a ping between lab hosts and passes
//! `promtool check metrics`; a real Prometheus server scrapes nfv and answers a query about
//! its counters; a generator topology (no root needed) shows the counters moving; a taken
//! address is a clear error; the Grafana dashboard only asks for metrics nfv exports.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{lab_available, Lab, TempDir, NFV};

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// GET `path` from 127.0.0.1:`port`: (status code, body); None if nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    c.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Scrape nfv's /metrics, waiting up to 10 s for the server.
fn scrape(port: u16) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((200, body)) = get(port, "/metrics") {
            return body;
        }
        assert!(Instant::now() < end, "no metrics on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of the sample `series` (name with its labels, as printed) in a scrape.
fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{scrape}"))
}

/// True if `prog` is on PATH; otherwise says why the test is skipped (or, under `CI=true`,
/// panics: CI must not skip).
fn have(prog: &str, why: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = format!("{why} needs `{prog}` (Debian package prometheus)");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} (CI=true: install with tests/run.sh)");
        }
        eprintln!("skipping: {msg}");
    }
    ok
}

/// `promtool check metrics` on a scrape: its output if it complains.
fn promtool(scrape: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(scrape.as_bytes())
            .expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(text)
    }
}

/// The switch lab with its metrics on `port`.
fn switch_lab(port: u16) -> Lab {
    Lab::start_edited("switch-lab.yaml", "metrics", |text, _| {
        format!("{text}\nmetrics: {{ listen: 127.0.0.1:{port} }}\n")
    })
}

#[test]
fn a_scrape_counts_a_ping_and_passes_promtool() {
    if !lab_available(&["ping"]) || !have("promtool", "the metrics test") {
        return;
    }
    let port = free_port();
    let lab = switch_lab(port);
    assert!(
        lab.seen
            .iter()
            .any(|l| l.contains(&format!("http://127.0.0.1:{port}/metrics"))),
        "nfv did not say where its metrics are: {:?}",
        lab.seen
    );
    let before = scrape(port);
    assert_eq!(lab.ping("h1", "10.10.0.2", 5), (5, 5));
    let after = scrape(port);
    if let Err(e) = promtool(&after) {
        panic!("promtool check metrics complains:\n{e}\n{after}");
    }

    let delta = |series: &str| value(&after, series) - value(&before, series);
    // Five echo requests from h1 and five replies from h2, plus a little ARP; each echo
    // frame is 98 bytes (14 Ethernet + 20 IPv4 + 8 ICMP + 56 data).
    for (series, low, high) in [
        ("nfv_port_rx_packets_total{port=\"p1\"}", 5.0, 12.0),
        ("nfv_port_tx_packets_total{port=\"p2\"}", 5.0, 12.0),
        ("nfv_port_rx_packets_total{port=\"p2\"}", 5.0, 12.0),
        ("nfv_port_tx_packets_total{port=\"p1\"}", 5.0, 12.0),
        ("nfv_port_rx_bytes_total{port=\"p1\"}", 490.0, 12.0 * 98.0),
        ("nfv_port_tx_bytes_total{port=\"p2\"}", 490.0, 12.0 * 98.0),
        ("nfv_function_packets_in_total{function=\"sw\"}", 10.0, 24.0),
    ] {
        let d = delta(series);
        assert!(
            (low..=high).contains(&d),
            "{series} moved by {d}, expected {low} to {high}\nbefore:\n{before}\nafter:\n{after}"
        );
    }
    // What went in went out: the switch forwarded every frame of the ping.
    assert!(delta("nfv_function_packets_out_total{function=\"sw\"}") >= 10.0);
    assert!(value(&after, "nfv_switch_mac_entries{function=\"sw\"}") >= 2.0);
    assert!(value(&after, "nfv_worker_loops_total{worker=\"0\"}") > 0.0);
    assert!(value(&after, "nfv_worker_busy_loops_total{worker=\"0\"}") >= 1.0);
    // Packets received in busy turns are the ports' received packets.
    assert!(
        delta("nfv_worker_burst_packets_total{worker=\"0\"}")
            >= delta("nfv_port_rx_packets_total{port=\"p1\"}")
                + delta("nfv_port_rx_packets_total{port=\"p2\"}")
    );
    // Every drop reason has its series for every port, zero or not (so rate() works).
    for reason in ["runt", "hairpin", "tx_full", "guest_bad_chain"] {
        value(
            &after,
            &format!("nfv_drops_total{{kind=\"port\",reason=\"{reason}\",where=\"p3\"}}"),
        );
    }

    // Other paths are not found; nonsense gets a 400, and the server carries on.
    assert_eq!(get(port, "/").map(|r| r.0), Some(404));
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(b"\x00\x01garbage\r\n\r\n").expect("write");
    let mut r = String::new();
    let _ = c.read_to_string(&mut r);
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    scrape(port);

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    assert!(
        get(port, "/metrics").is_none(),
        "metrics still served after nfv stopped"
    );
}

/// A child process killed when dropped (also when the test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_prometheus_server_scrapes_nfv_and_answers_a_query() {
    if !lab_available(&["ping"]) || !have("prometheus", "the Prometheus server test") {
        return;
    }
    let port = free_port();
    let lab = switch_lab(port);
    let dir = TempDir::new("prometheus");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: nfv\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let web = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let prom_log =
        || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    assert_eq!(lab.ping("h1", "10.10.0.2", 3), (3, 3));
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    let seen = loop {
        if let Some((200, body)) = get(web, "/api/v1/query?query=nfv_port_rx_packets_total") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let results = v["data"]["result"].as_array().cloned().unwrap_or_default();
            let best = results
                .iter()
                .filter_map(|r| {
                    let port = r["metric"]["port"].as_str()?.to_string();
                    let n: f64 = r["value"][1].as_str()?.parse().ok()?;
                    Some((port, n))
                })
                .find(|(_, n)| *n > 0.0);
            if let Some(b) = best {
                break b;
            }
            last = body;
        }
        assert!(
            Instant::now() < end,
            "Prometheus never saw a non-zero nfv_port_rx_packets_total; last answer: {last}\nprometheus log:\n{}",
            prom_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "Prometheus sees nfv_port_rx_packets_total{{port=\"{}\"}} = {}",
        seen.0, seen.1
    );
    // The target is up as Prometheus judges it.
    let (code, body) = get(web, "/api/v1/query?query=up%7Bjob%3D%22nfv%22%7D").expect("query up");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"1\""), "nfv's target is not up: {body}");

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

/// `nfv run` on a topology of a rate-limited generator, a switch and a sink: no root needed.
fn generator_topology(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("gen.yaml");
    std::fs::write(
        &path,
        "name: metrics-gen\n\
         ports:\n  gen: { kind: generator, flows: 4, size: 64, rate: 2000, dst_mac: 02:ff:00:00:00:01 }\n  \
         sink: { kind: null, mac: 02:ff:00:00:00:01 }\n\
         functions:\n  sw: { kind: switch }\n\
         links:\n  - [gen, sw]\n  - [sink, sw]\n",
    )
    .expect("write topology");
    path
}

fn stop(child: &mut Child) -> Output {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let mut out = Output {
        status: child.wait().expect("wait"),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut out.stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut out.stderr);
    }
    out
}

#[test]
fn generator_counters_move_between_scrapes_without_root() {
    let dir = TempDir::new("metrics-gen");
    let port = free_port();
    let mut child = Killed(
        Command::new(NFV)
            .arg("run")
            .arg(generator_topology(dir.path()))
            .args(["--metrics", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nfv run"),
    );
    let first = scrape(port);
    std::thread::sleep(Duration::from_millis(600));
    let second = scrape(port);
    let out = stop(&mut child.0);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for series in [
        "nfv_port_rx_packets_total{port=\"gen\"}",
        "nfv_port_tx_packets_total{port=\"sink\"}",
        "nfv_port_tx_bytes_total{port=\"sink\"}",
        "nfv_function_packets_in_total{function=\"sw\"}",
        "nfv_worker_loops_total{worker=\"0\"}",
    ] {
        assert!(
            value(&second, series) > value(&first, series),
            "{series} did not move:\n{first}\n{second}"
        );
    }
    // 64-byte frames: bytes are 64 times the packets. The two counters are read one after
    // the other while the worker runs (a scrape is not a snapshot), so they may be a few
    // frames apart.
    let bytes = value(&second, "nfv_port_tx_bytes_total{port=\"sink\"}");
    let packets = value(&second, "nfv_port_tx_packets_total{port=\"sink\"}");
    assert_eq!(bytes % 64.0, 0.0, "{bytes} bytes of 64-byte frames");
    assert!(
        (bytes / 64.0 - packets).abs() <= 256.0,
        "{bytes} bytes for {packets} 64-byte frames"
    );
}

#[test]
fn a_taken_metrics_address_is_an_error_and_no_metrics_binds_nothing() {
    let dir = TempDir::new("metrics-taken");
    let topo = generator_topology(dir.path());
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = Command::new(NFV)
        .arg("run")
        .arg(&topo)
        .args(["--metrics", &addr])
        .output()
        .expect("run nfv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "nfv ran with its metrics address taken"
    );
    assert!(
        stderr.contains(&format!("cannot serve metrics on {addr}")),
        "{stderr}"
    );

    // --no-metrics runs without binding anything; --metrics and --no-metrics conflict.
    let port = free_port();
    let text = std::fs::read_to_string(&topo).expect("read");
    std::fs::write(
        &topo,
        format!("{text}metrics: {{ listen: 127.0.0.1:{port} }}\n"),
    )
    .expect("write");
    let mut child = Killed(
        Command::new(NFV)
            .arg("run")
            .arg(&topo)
            .arg("--no-metrics")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nfv run"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        get(port, "/metrics").is_none(),
        "--no-metrics still served metrics"
    );
    let out = stop(&mut child.0);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(NFV)
        .arg("run")
        .arg(&topo)
        .args(["--no-metrics", "--metrics", "127.0.0.1:1"])
        .output()
        .expect("run nfv");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

/// Every `expr` string in a JSON value.
fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboards_queries_are_valid_promql() {
    if !have("promtool", "checking the dashboard's PromQL") {
        return;
    }
    let text = std::fs::read_to_string(common::repo().join("control/grafana/nfv-dashboard.json"))
        .expect("read the dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dash, &mut exprs);
    assert!(!exprs.is_empty());
    // Grafana's variables replaced by what they stand for; each query a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&e).expect("quote");
        rules.push_str(&format!(
            "      - record: nfv_dashboard_query_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = TempDir::new("dashboard");
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, &rules).expect("write rules");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
