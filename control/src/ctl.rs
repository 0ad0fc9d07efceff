//! The control socket: how `nfv show`, `nfv trace`, `nfv capture` and `nfv reload` talk to
//! a running `nfv run`.
//!
//! A Unix stream socket, by default `/run/nfv/<topology>.sock`, owned by root with mode
//! 0600 (0660 and a group's with `--control-group`). A client sends one request, a JSON
//! object on one line, and reads the answer: one JSON line (`{"ok": true, ...}` or
//! `{"ok": false, "error": "..."}`), or for a capture a stream of lines that ends with one
//! holding `"end"`. A request that is not valid JSON, names an unknown command, or is
//! longer than [`MAX_REQUEST`] gets an error answer; nothing it says reaches the packet
//! path except through the worker's mailbox, between bursts.
//!
//! What a client may do depends on who it is, as the kernel says (`SO_PEERCRED`): root (or
//! the user nfv runs as) may do everything; anyone else who can open the socket (a
//! `--control-group` member) may show, trace and capture, but not `reload`, which makes nfv
//! open the files and sockets a topology names. A client has [`REQUEST_TIMEOUT`] to send its
//! whole request and [`ANSWER_TIMEOUT`] to take a one-line answer, however it trickles, so
//! [`MAX_CONNECTIONS`] slow clients hold their places seconds, not hours. The socket is made
//! in a directory only root may write ([`bind`]), and only a socket is ever removed there.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nfv_dataplane::trace::{Capture, CaptureReader, Trace, TraceEvent};
use nfv_dataplane::{Cell, Endpoint, NodeId, PortId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::deadline::{self, has_newline, Head};
use crate::plan::Plan;
use crate::run::Running;
use nfv_dataplane::port::PortSettings;

/// Longest request line (a reload carries the whole topology file).
pub const MAX_REQUEST: usize = 4 << 20;
/// Connections served at once; more are refused with an error answer.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read a one-line answer (a table, a trace).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a trace waits for its packets.
const MAX_TRACE_WAIT: Duration = Duration::from_secs(600);

/// The default socket of topology `name`.
pub fn default_socket(name: &str) -> PathBuf {
    Path::new(crate::lab::STATE_DIR).join(format!("{name}.sock"))
}

/// A request, as a client sends it.
#[derive(Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// A table: ports, functions, workers, drops, captures, or one that functions answer
    /// (macs, routes, arp, neighbors, interfaces, nat, conntrack, leases, firewall).
    Show {
        /// Which.
        table: String,
    },
    /// Record the path of the next `count` packets (received on `port`, or any).
    Trace {
        /// Only packets received on this port.
        #[serde(default)]
        port: Option<String>,
        /// How many.
        count: u32,
        /// How long to wait for them, in milliseconds (default 10 s).
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Stream the frames crossing a wire: a port's, or a function gate's (`gw.lan`).
    Capture {
        /// Where.
        at: String,
        /// Stop after this many frames.
        #[serde(default)]
        count: Option<u64>,
    },
    /// Apply a changed topology file.
    Reload {
        /// The file's name, for error messages.
        file: String,
        /// Its text.
        text: String,
    },
}

/// The tables `nfv show` answers itself; the functions' kinds add theirs (see [`tables`]).
pub const TABLES: [&str; 5] = ["ports", "functions", "workers", "drops", "captures"];

/// Every table `nfv show` knows: [`TABLES`], then each registered kind's.
pub fn tables() -> Vec<&'static str> {
    let mut t = TABLES.to_vec();
    for k in nfv_functions::registry::KINDS {
        for name in k.tables() {
            if !t.contains(name) {
                t.push(name);
            }
        }
    }
    t
}

/// The control socket's server.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Create the socket at `path`, owned by root (or whoever runs nfv) with mode 0600, or
/// 0660 with group `gid`. A socket left by a dead nfv is replaced; one that answers is an
/// error (another nfv serves it); anything else at `path` is left alone and refused. The
/// directory is made if missing (0700), and refused if someone other than nfv's user may
/// write in it. With a control group `gid` the directory must let members reach the socket:
/// it is made, or opened up to, 0711 (anyone may pass through, nobody else may list or
/// write; each socket's own mode, 0600 or 0660 and its group's, decides who may connect),
/// since one directory (`/run/nfv`) serves runs with and without groups, and with
/// different groups. The socket is bound under a temporary name and renamed into place once its mode is
/// set, so no client ever sees it with looser permissions.
pub fn bind(path: &Path, gid: Option<u32>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, MetadataExt as _};
    let refuse = |m: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, m);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let d = std::fs::metadata(dir)?;
    let me = nfv_dataplane::effective_uid();
    if d.uid() != me && d.uid() != 0 {
        return Err(refuse(format!(
            "{} belongs to user {}, not to root: choose a directory only root may write (--control-socket PATH)",
            dir.display(),
            d.uid()
        )));
    }
    if d.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "others may write in {} (mode {:o}): choose a directory only root may write (--control-socket PATH)",
            dir.display(),
            d.mode() & 0o7777
        )));
    }
    if gid.is_some() && d.mode() & 0o011 != 0o011 {
        let mode = (d.mode() & 0o7777) | 0o011;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is served by a running nfv", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket: nfv removes only sockets",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "nfv.sock".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    if std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(&tmp);
    }
    let listener = UnixListener::bind(&tmp)?;
    let placed = (|| {
        let mode = if gid.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        if let Some(g) = gid {
            std::os::unix::fs::chown(&tmp, None, Some(g))?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The id of group `name` (a name from /etc/group, or a number).
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
    })
}

impl ControlServer {
    /// Serve `running` on `listener` (from [`bind`] at `path`) in a new thread.
    pub fn spawn(
        listener: UnixListener,
        path: PathBuf,
        running: Arc<Running>,
    ) -> std::io::Result<ControlServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("nfv-control".into())
            .spawn(move || accept_loop(&listener, &running, &flag))?;
        Ok(ControlServer {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop serving: refuse new connections, end the ones open (a capture ends with its
    /// last line), wait for them, remove the socket.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::warn!("the control socket thread panicked");
            }
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn accept_loop(listener: &UnixListener, running: &Arc<Running>, stop: &Arc<AtomicBool>) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                threads.retain(|t| !t.is_finished());
                if live.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let _ = stream.set_nonblocking(false);
                    let _ = reply(&stream, &error("too many control connections; try again"));
                    continue;
                }
                live.fetch_add(1, Ordering::Relaxed);
                let (running, stop, live2) = (running.clone(), stop.clone(), live.clone());
                let spawned = std::thread::Builder::new()
                    .name("nfv-control-conn".into())
                    .spawn(move || {
                        // The place is given back however the request ends, a panic too.
                        let _place = Place(live2);
                        if let Err(e) = serve(stream, &running, &stop) {
                            tracing::debug!("control connection: {e}");
                        }
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => {
                        live.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!("cannot serve a control connection: {e}");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::debug!("control accept: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

/// One of the [`MAX_CONNECTIONS`] places, given back when dropped.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn error(msg: impl std::fmt::Display) -> Value {
    json!({"ok": false, "error": msg.to_string()})
}

fn reply(mut stream: &UnixStream, v: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    line.push(b'\n');
    deadline::write_all(&mut stream, &line, Instant::now() + ANSWER_TIMEOUT)
}

/// Read one request line of at most [`MAX_REQUEST`] bytes.
fn read_request(mut stream: &UnixStream) -> Result<Request, String> {
    let by = Instant::now() + REQUEST_TIMEOUT;
    let line = match deadline::read_until(&mut stream, by, MAX_REQUEST, has_newline) {
        Ok(Head::Complete(mut b)) => {
            // One line: what follows its end is not read.
            if let Some(end) = b.iter().position(|&c| c == b'\n') {
                b.truncate(end + 1);
            }
            b
        }
        Ok(Head::Closed(b)) if b.is_empty() => return Err("empty request".into()),
        Ok(Head::Closed(b)) => b,
        Ok(Head::TooLong) => return Err(format!("request longer than {MAX_REQUEST} bytes")),
        Err(e) => return Err(format!("cannot read the request: {e}")),
    };
    serde_json::from_slice(&line).map_err(|e| format!("bad request: {e}"))
}

/// May the peer of `stream` change what runs (`reload`)? Root and nfv's own user may;
/// anyone else the socket lets in (a `--control-group` member) may only look.
fn may_change(stream: &UnixStream) -> bool {
    use std::os::fd::AsRawFd as _;
    match nfv_dataplane::peer_uid(stream.as_raw_fd()) {
        Ok(uid) => uid == 0 || uid == nfv_dataplane::effective_uid(),
        Err(_) => false,
    }
}

fn serve(stream: UnixStream, running: &Running, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    let req = match read_request(&stream) {
        Ok(r) => r,
        Err(e) => return reply(&stream, &error(e)),
    };
    tracing::debug!(?req, "control request");
    if matches!(req, Request::Reload { .. }) && !may_change(&stream) {
        return reply(
            &stream,
            &error("reload is for root: members of the control group may show, trace and capture, but a reload makes nfv open the files and sockets a topology names"),
        );
    }
    match req {
        Request::Capture { at, count } => capture(&stream, running, &at, count, stop),
        other => reply(&stream, &handle(running, other, stop)),
    }
}

/// Answer a request that has one answer (anything but a capture, which streams).
pub fn handle(running: &Running, req: Request, stop: &AtomicBool) -> Value {
    let answer = match req {
        Request::Show { table } => show(running, &table),
        Request::Trace {
            port,
            count,
            timeout_ms,
        } => trace(
            running,
            port.as_deref(),
            count,
            timeout_ms.map_or(Duration::from_secs(10), Duration::from_millis),
            stop,
        ),
        Request::Capture { .. } => Err("a capture streams its answer; use the socket".into()),
        Request::Reload { file, text } => reload(running, &file, &text),
    };
    answer.unwrap_or_else(error)
}

fn cell(c: &Cell) -> Value {
    match c {
        Cell::Text(s) => Value::from(s.as_str()),
        Cell::Int(n) => Value::from(*n),
        Cell::Signed(n) => Value::from(*n),
        Cell::Bool(b) => Value::from(*b),
        Cell::None => Value::Null,
    }
}

/// A table answer: column names and rows of values.
fn table(columns: &[&str], rows: Vec<Vec<Value>>) -> Value {
    json!({"ok": true, "columns": columns, "rows": rows})
}

/// A port's kind and where it is, for `nfv show ports`: as its kind says.
fn port_kind(p: &PortSettings) -> (&'static str, String) {
    (p.0.kind().name(), p.0.location())
}

fn show(running: &Running, name: &str) -> Result<Value, String> {
    let name = name.to_string();
    let called = running.with_worker(move |w, plan| {
        let now = w.now();
        let pool = (
            w.pool_mut().available(),
            w.pool_mut().size(),
            w.pool_mut().exhausted,
        );
        let g = w.graph_mut();
        let c = g.counters().clone();
        match name.as_str() {
            "ports" => Ok(table(
                &[
                    "port",
                    "kind",
                    "where",
                    "peer",
                    "rx_packets",
                    "rx_bytes",
                    "tx_packets",
                    "tx_bytes",
                    "rx_errors",
                    "rx_miss",
                    "drops",
                ],
                plan.ports
                    .iter()
                    .enumerate()
                    .map(|(i, (n, p))| {
                        let pc = &c.ports[i];
                        let (kind, at) = port_kind(p);
                        // What was built: a host's `tap` port may be a veth pair.
                        let kind = g.port(PortId(i as u16)).map_or(kind, |p| p.kind());
                        let peer = g
                            .peer(Endpoint::Port(PortId(i as u16)))
                            .map(|e| plan.end_label(e));
                        vec![
                            n.as_str().into(),
                            kind.into(),
                            at.into(),
                            peer.into(),
                            pc.rx_packets.get().into(),
                            pc.rx_bytes.get().into(),
                            pc.tx_packets.get().into(),
                            pc.tx_bytes.get().into(),
                            pc.rx_errors.get().into(),
                            pc.rx_miss.get().into(),
                            pc.drops.total().into(),
                        ]
                    })
                    .collect(),
            )),
            "functions" => Ok(table(
                &[
                    "function",
                    "kind",
                    "gates",
                    "packets_in",
                    "packets_out",
                    "consumed",
                    "drops",
                ],
                plan.functions
                    .iter()
                    .enumerate()
                    .map(|(i, (n, f))| {
                        let nc = &c.nodes[i];
                        vec![
                            n.as_str().into(),
                            f.0.kind().name().into(),
                            plan.gate_names
                                .get(i)
                                .map_or(String::new(), |g| g.join(","))
                                .into(),
                            nc.packets_in.get().into(),
                            nc.packets_out.get().into(),
                            nc.consumed.get().into(),
                            nc.drops.total().into(),
                        ]
                    })
                    .collect(),
            )),
            "workers" => {
                let busy = c.busy_loops.get();
                let loops = c.loops.get();
                Ok(table(
                    &[
                        "worker",
                        "ports",
                        "functions",
                        "loops",
                        "busy_loops",
                        "busy_percent",
                        "average_burst",
                        "pool_free",
                        "pool_size",
                        "pool_exhausted",
                    ],
                    vec![vec![
                        u64::from(c.worker.0).into(),
                        plan.ports.len().into(),
                        plan.functions.len().into(),
                        loops.into(),
                        busy.into(),
                        json!((busy as f64 * 1000.0 / loops.max(1) as f64).round() / 10.0),
                        json!(
                            (c.burst_packets.get() as f64 * 10.0 / busy.max(1) as f64).round()
                                / 10.0
                        ),
                        pool.0.into(),
                        pool.1.into(),
                        pool.2.into(),
                    ]],
                ))
            }
            "drops" => {
                let mut rows = Vec::new();
                for (i, (n, _)) in plan.ports.iter().enumerate() {
                    for (r, k) in c.ports[i].drops.nonzero() {
                        rows.push(vec![
                            n.as_str().into(),
                            "port".into(),
                            r.to_string().into(),
                            k.into(),
                        ]);
                    }
                }
                for (i, (n, f)) in plan.functions.iter().enumerate() {
                    for (r, k) in c.nodes[i].drops.nonzero() {
                        rows.push(vec![
                            n.as_str().into(),
                            f.0.kind().name().into(),
                            r.to_string().into(),
                            k.into(),
                        ]);
                    }
                }
                Ok(table(&["where", "kind", "reason", "packets"], rows))
            }
            "captures" => Ok(table(
                &["at", "peer", "remaining", "missed"],
                g.capture()
                    .map(|c| {
                        let [a, b] = c.ends();
                        let remaining = (c.remaining() != u64::MAX).then_some(c.remaining());
                        vec![vec![
                            plan.end_label(a).into(),
                            plan.end_label(b).into(),
                            remaining.into(),
                            c.missed().into(),
                        ]]
                    })
                    .unwrap_or_default(),
            )),
            other => {
                let mut columns: Vec<&str> = vec!["function"];
                let mut rows = Vec::new();
                for i in 0..g.node_count() {
                    let id = NodeId(i as u16);
                    let Some(t) = g.node(id).and_then(|n| n.show(other, now)) else {
                        continue;
                    };
                    if columns.len() == 1 {
                        columns.extend(t.columns.iter().copied());
                    }
                    let gate = t.column("gate");
                    let fname = g.node_names().get(i).cloned().unwrap_or_default();
                    for r in &t.rows {
                        let mut row = vec![Value::from(fname.as_str())];
                        for (k, c) in r.iter().enumerate() {
                            row.push(match (Some(k) == gate, c) {
                                (true, Cell::Int(n)) => {
                                    Value::from(plan.gate_name(id, nfv_dataplane::Gate(*n as u16)))
                                }
                                _ => cell(c),
                            });
                        }
                        // Tables of one name from different kinds may differ in width.
                        row.resize(columns.len(), Value::Null);
                        rows.push(row);
                    }
                }
                let known = tables();
                if columns.len() == 1 && !known.contains(&other) {
                    return Err(format!("no table `{other}`; tables: {}", known.join(", ")));
                }
                Ok(table(&columns, rows))
            }
        }
    });
    called.map_err(|e| e.to_string())?
}

fn step(plan: &Plan, start: u64, r: &nfv_dataplane::trace::TraceRecord) -> Value {
    let t = r.time.0.saturating_sub(start);
    let node = |n: NodeId| {
        plan.functions
            .get(n.index())
            .map(|(name, f)| (name.clone(), f.0.kind().name()))
            .unwrap_or_else(|| (n.to_string(), "?"))
    };
    let port = |p: PortId| {
        plan.ports
            .get(p.index())
            .map_or_else(|| p.to_string(), |(n, _)| n.clone())
    };
    match r.event {
        TraceEvent::Rx(p) => json!({"t_ns": t, "event": "rx", "port": port(p)}),
        TraceEvent::Tx(p) => json!({"t_ns": t, "event": "tx", "port": port(p)}),
        TraceEvent::Node(n, g) => {
            let (name, kind) = node(n);
            json!({"t_ns": t, "event": "node", "function": name, "kind": kind, "gate": plan.gate_name(n, g)})
        }
        TraceEvent::Drop(n, reason) => {
            let (name, kind) = node(n);
            json!({"t_ns": t, "event": "drop", "function": name, "kind": kind, "reason": reason.to_string()})
        }
        TraceEvent::PortDrop(p, reason) => {
            json!({"t_ns": t, "event": "drop", "port": port(p), "reason": reason.to_string()})
        }
        TraceEvent::Consumed(n) => {
            let (name, kind) = node(n);
            json!({"t_ns": t, "event": "consumed", "function": name, "kind": kind})
        }
    }
}

fn hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn trace(
    running: &Running,
    port: Option<&str>,
    count: u32,
    wait: Duration,
    stop: &AtomicBool,
) -> Result<Value, String> {
    if count == 0 || count > 10_000 {
        return Err("count must be 1 to 10000".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            running
                .plan()
                .port_id(p)
                .ok_or_else(|| format!("no port `{p}`"))?,
        ),
    };
    let trace = Box::new(Trace::new(port, count));
    running
        .with_worker(move |w, _| {
            w.graph_mut().set_trace(Some(trace));
        })
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + wait.min(MAX_TRACE_WAIT);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let done = Instant::now() >= deadline || stop.load(Ordering::Relaxed);
        // Packets picked in a turn have finished their path when the next command runs.
        let taken = running
            .with_worker(move |w, plan| {
                let g = w.graph_mut();
                let full = g.trace().is_none_or(Trace::is_full);
                (done || full).then(|| (g.set_trace(None), plan.clone()))
            })
            .map_err(|e| e.to_string())?;
        let Some((trace, plan)) = taken else { continue };
        let Some(trace) = trace else {
            return Err("the trace ended early: the topology was reloaded".into());
        };
        let wall = crate::run::wall_ns_at_zero();
        let packets: Vec<Value> = trace
            .packets
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let steps: Vec<Value> = trace
                    .records
                    .iter()
                    .filter(|r| r.packet == p.id)
                    .map(|r| step(&plan, p.time.0, r))
                    .collect();
                json!({
                    "packet": i + 1,
                    "port": plan.ports.get(p.port.index()).map(|(n, _)| n.clone()),
                    "time_ns": wall.saturating_add(p.time.0),
                    "length": p.len,
                    "summary": crate::decode::summary(&p.head),
                    "head": hex(&p.head),
                    "steps": steps,
                })
            })
            .collect();
        return Ok(json!({
            "ok": true,
            "asked": count,
            "traced": packets.len(),
            "lost_steps": trace.lost,
            "packets": packets,
        }));
    }
}

/// True if the client closed its sending half (it is done, and may still read), or the
/// socket broke.
fn client_done(stream: &UnixStream) -> bool {
    let mut b = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    // The client sends nothing after its request: end of stream means it left.
    let gone = match (&*stream).read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    gone
}

fn capture(
    stream: &UnixStream,
    running: &Running,
    at: &str,
    count: Option<u64>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    if count == Some(0) {
        return reply(stream, &error("count must be at least 1"));
    }
    let plan = running.plan();
    let Some(end) = plan.find_end(at) else {
        return reply(
            stream,
            &error(format!(
                "no port or function gate `{at}` (name a port, or FUNCTION.GATE such as gw.lan or nat.outside)"
            )),
        );
    };
    let installed = running.with_worker(move |w, plan| {
        let g = w.graph_mut();
        let peer = g.peer(end).unwrap_or(end);
        if g.capture().is_some() {
            return Err("a capture is running already (one at a time)".to_string());
        }
        let (c, reader) = Capture::new(end, peer, count);
        g.set_capture(Some(c));
        Ok((reader, plan.end_label(end), plan.end_label(peer)))
    });
    let (reader, a, b) = match installed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return reply(stream, &error(e)),
        Err(e) => return reply(stream, &error(e)),
    };
    let wall = crate::run::wall_ns_at_zero();
    let streamed = stream_frames(stream, &reader, &plan, wall, count, stop, (&a, &b));
    // Take the capture away first, if it is still ours (a reload may have ended it), so
    // that a new capture may start as soon as the client has the last line.
    let r2 = reader.clone();
    let _ = running.with_worker(move |w, _| {
        let g = w.graph_mut();
        if g.capture().is_some_and(|c| c.feeds(&r2)) {
            g.set_capture(None);
        }
    });
    let (why, mut sent) = streamed?;
    // Then what was copied before it went, and the end.
    sent += send_frames(stream, &reader, &plan, wall, usize::MAX)?;
    reply(
        stream,
        &json!({"end": why, "captured": sent, "missed": reader.missed()}),
    )
}

/// Send up to `max` frames waiting in `reader` to the client; how many were sent.
fn send_frames(
    stream: &UnixStream,
    reader: &CaptureReader,
    plan: &Plan,
    wall: u64,
    max: usize,
) -> std::io::Result<u64> {
    let mut out = Vec::new();
    let mut n = 0u64;
    while (n as usize) < max {
        let Some(f) = reader.frames.pop() else { break };
        let v = json!({
            "time_ns": wall.saturating_add(f.time.0),
            "to": f.to.map(|e| plan.end_label(e)),
            "data": hex(&f.data),
        });
        reader.recycle(f);
        serde_json::to_writer(&mut out, &v).map_err(std::io::Error::other)?;
        out.push(b'\n');
        n += 1;
    }
    if n > 0 {
        (&*stream).write_all(&out)?;
    }
    Ok(n)
}

/// Stream captured frames until the count is reached, the capture is gone (a reload),
/// nfv stops, or the client closes its sending half (Ctrl-C: it still reads the rest).
/// Gives why it ended and the frames sent.
fn stream_frames(
    stream: &UnixStream,
    reader: &CaptureReader,
    plan: &Plan,
    wall: u64,
    count: Option<u64>,
    stop: &AtomicBool,
    (a, b): (&str, &str),
) -> std::io::Result<(&'static str, u64)> {
    reply(
        stream,
        &json!({"ok": true, "capturing": [a, b], "snaplen": nfv_dataplane::MAX_SUPER_FRAME}),
    )?;
    let mut sent = 0u64;
    loop {
        let n = send_frames(stream, reader, plan, wall, 256)?;
        sent += n;
        if n > 0 {
            continue;
        }
        if count.is_some_and(|c| sent + reader.missed() >= c) {
            return Ok(("count", sent));
        }
        // The worker's half is gone: a reload rebuilt the graph.
        if Arc::strong_count(&reader.frames) == 1 && reader.frames.is_empty() {
            return Ok(("reload", sent));
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(("stopped", sent));
        }
        if client_done(stream) {
            return Ok(("client", sent));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn reload(running: &Running, file: &str, text: &str) -> Result<Value, String> {
    let topo = crate::topology::load_str(text, Path::new(file)).map_err(|e| e.to_string())?;
    let report = running.reload(&topo).map_err(|e| format!("{file}: {e}"))?;
    let mut v = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        o.insert("ok".into(), Value::from(true));
    }
    Ok(v)
}

/// The client side: send `req` to the socket at `path` and give back the first answer
/// line, and the stream for the lines that follow (a capture's frames).
pub fn request(path: &Path, req: &Request) -> Result<(Value, BufReader<UnixStream>), String> {
    let mut stream = UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the dataplane at {}: {e}{}",
            path.display(),
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (the control socket is root's: run as root, or start nfv with --control-group)"
            } else {
                " (is `nfv run` running?)"
            }
        )
    })?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let first = next_line(&mut reader)?.ok_or("the dataplane closed the connection")?;
    if first.get("ok") == Some(&Value::Bool(false)) {
        return Err(first
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_string());
    }
    Ok((first, reader))
}

/// The next JSON line, or `None` at the end of the stream.
pub fn next_line(reader: &mut BufReader<UnixStream>) -> Result<Option<Value>, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| format!("bad answer from the dataplane: {e}")),
        Err(e) => Err(format!("reading the answer: {e}")),
    }
}

/// The socket to talk to: `--socket`, else the topology's default socket if `--topology`
/// names one, else the only socket in /run/nfv.
pub fn find_socket(socket: Option<&Path>, topology: Option<&str>) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s.to_path_buf());
    }
    if let Some(t) = topology {
        return Ok(default_socket(t));
    }
    let dir = Path::new(crate::lab::STATE_DIR);
    let mut socks: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "sock")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    socks.sort();
    match socks.len() {
        0 => Err(format!(
            "no running topology: no control socket in {} (start one with `nfv run FILE`)",
            dir.display()
        )),
        1 => Ok(socks.remove(0)),
        _ => Err(format!(
            "several topologies run; choose one with -t NAME: {}",
            socks
                .iter()
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {

    /// A fresh directory of the test's own, mode 0755, removed by the caller.
    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nfv-ctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        d
    }

    #[test]
    fn bind_removes_only_a_dead_socket_and_wants_a_directory_only_root_writes() {
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
        let d = scratch("bind");
        // Something else at the path is left alone.
        let path = d.join("t.sock");
        std::fs::write(&path, b"precious").unwrap_or_else(|e| panic!("{e}"));
        let e = bind(&path, None).expect_err("a file is not replaced");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).ok().as_deref(), Some(&b"precious"[..]));
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
        // A socket nobody serves (a dead nfv's) is replaced; a served one is not.
        drop(UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}")));
        let l = bind(&path, None).unwrap_or_else(|e| panic!("{e}"));
        let m = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.file_type().is_socket());
        assert_eq!(m.mode() & 0o777, 0o600);
        let e = bind(&path, None).expect_err("a served socket is kept");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        drop(l);
        // A missing directory is made for root alone.
        let sub = d.join("run").join("nfv");
        drop(bind(&sub.join("x.sock"), None).unwrap_or_else(|e| panic!("{e}")));
        let m = std::fs::metadata(&sub).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.mode() & 0o777, 0o700, "{:o}", m.mode());
        // A run with a control group, in the directory a run without one made: the
        // directory lets members pass (0711, not list), the socket is the group's.
        let group = std::fs::metadata(&d).map(|m| m.gid()).unwrap_or(0);
        drop(bind(&sub.join("g.sock"), Some(group)).unwrap_or_else(|e| panic!("{e}")));
        let m = std::fs::metadata(&sub).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.mode() & 0o777, 0o711, "{:o}", m.mode());
        let s = std::fs::metadata(sub.join("g.sock")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.mode() & 0o777, s.gid()), (0o660, group));
        // A directory others may write is refused, and nothing is made in it.
        let open = d.join("open");
        std::fs::create_dir(&open).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = bind(&open.join("x.sock"), None).expect_err("a world-writable directory");
        assert!(e.to_string().contains("others may write"), "{e}");
        assert_eq!(std::fs::read_dir(&open).map(|r| r.count()).ok(), Some(0));
        let _ = std::fs::remove_dir_all(&d);
    }
    use super::*;

    #[test]
    fn port_rows_name_the_kind_and_where_it_is() {
        let text = "name: p\nhosts:\n  alice: {}\nports:\n  a: { kind: tap, host: alice }\n  t: { kind: tap, ifname: nfv-t }\n  vm: { kind: vhost-user, socket: /run/nfv/vm.sock, mode: client }\n  n: { kind: null }\n  g: { kind: generator }\nfunctions:\n  s: { kind: switch }\nlinks:\n  - [a, s, t]\n  - [vm, s, n]\n  - [g, s]\n";
        let topo = crate::topology::load_str(text, std::path::Path::new("p.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::new(&topo, 7).unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<(&str, String)> = plan.ports.iter().map(|(_, p)| port_kind(p)).collect();
        assert_eq!(
            rows,
            [
                ("tap", "alice:eth0".to_string()),
                ("tap", "nfv-t".to_string()),
                ("vhost-user", "/run/nfv/vm.sock (client)".to_string()),
                ("null", "-".to_string()),
                ("generator", "-".to_string()),
            ]
        );
    }

    #[test]
    fn requests_parse_and_bad_ones_are_refused() {
        let r: Request = serde_json::from_str(r#"{"cmd":"show","table":"macs"}"#).expect("show");
        assert_eq!(
            r,
            Request::Show {
                table: "macs".into()
            }
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"trace","count":3}"#).expect("trace");
        assert_eq!(
            r,
            Request::Trace {
                port: None,
                count: 3,
                timeout_ms: None
            }
        );
        for bad in [
            "",
            "{",
            r#"{"cmd":"format-disk"}"#,
            r#"{"cmd":"show"}"#,
            r#"{"cmd":"show","table":"macs","extra":1}"#,
            r#"{"cmd":"trace","count":-1}"#,
            "[1,2,3]",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn group_ids_come_from_names_or_numbers() {
        assert_eq!(group_id("0"), Some(0));
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-nfv"), None);
    }

    #[test]
    fn the_socket_is_private_and_a_live_one_is_not_taken_over() {
        let dir = std::env::temp_dir().join(format!("nfv-ctl-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.sock");
        let l = bind(&path, None).expect("bind");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            bind(&path, None).is_err(),
            "a served socket is not replaced"
        );
        drop(l);
        // Stale now: replaced.
        let l = bind(&path, Some(0)).expect("rebind");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
