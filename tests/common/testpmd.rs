//! DPDK `dpdk-testpmd` as a vhost-user peer for the tests: its `virtio_user` device is a
//! vhost-user frontend (the role QEMU plays for a VM), its `net_vhost` device a vhost-user
//! backend (the reference nfv's own vhost-user ports are measured against).
//!
//! [`Testpmd`] runs testpmd interactively with its commands on a stdin pipe (testpmd quits at
//! the end of its input, so the write end stays open for the whole run), without hugepages,
//! with its lcores pinned to one CPU and a file prefix of its own. Commands wait for the next
//! `testpmd> ` prompt and return what testpmd printed; [`Testpmd::stats`] parses
//! `show port stats all`. Dropping it closes stdin (testpmd quits), kills it if it does not
//! go within a few seconds, and removes its `/var/run/dpdk/PREFIX` directory (and
//! `/var/run/dpdk` itself if it was not there before the first testpmd) and the sockets
//! it listened on, also when the test fails. Should the test process die instead, testpmd
//! reads the end of its input (and is sent SIGKILL when the spawning thread goes).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{have, is_root};

/// The testpmd prompt, printed once at start-up and once after every command.
const PROMPT: &str = "testpmd> ";

/// Where Debian's DPDK 22.11 keeps its PMDs (`librte-net-vhost23`, `librte-net-virtio23`).
fn pmd_present(name: &str) -> bool {
    let Ok(lib) = std::fs::read_dir("/usr/lib") else {
        return false;
    };
    lib.filter_map(|e| e.ok())
        .map(|e| e.path().join("dpdk"))
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|d| d.filter_map(|e| e.ok()))
        .any(|pmds| pmds.path().join(format!("librte_net_{name}.so")).exists())
}

/// True if this machine can run testpmd against vhost-user ports: root, `dpdk-testpmd`
/// (Debian `dpdk-dev`) and the vhost and virtio PMDs (`librte-net-vhost23`, pulled in with
/// `librte-net-virtio23` by `dpdk-dev`). Otherwise prints why and returns false, except
/// under `CI=true`, where it panics: CI must not skip.
pub fn testpmd_available() -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for p in ["dpdk-testpmd", "stdbuf"] {
        if !have(p) {
            missing.push(format!("`{p}`"));
        }
    }
    for pmd in ["vhost", "virtio"] {
        if !pmd_present(pmd) {
            missing.push(format!("DPDK's {pmd} PMD (librte_net_{pmd}.so)"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("testpmd test needs {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (CI=true: testpmd tests must run; install with tests/run.sh: dpdk-dev librte-net-vhost23)");
    }
    eprintln!("skipping: {why}");
    false
}

/// One testpmd test at a time in a test process: every testpmd busy-polls a core, and the
/// machine has two. Hold the guard for the whole test.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A testpmd port.
#[derive(Clone, Debug)]
pub enum Vdev {
    /// `virtio_user`: a vhost-user frontend on `path`. With `server`, testpmd creates and
    /// listens on the socket and the backend connects; otherwise testpmd connects.
    VirtioUser {
        path: PathBuf,
        server: bool,
        /// The port's MAC address (else random).
        mac: Option<String>,
        /// Ring size (virtio_user's default is 256).
        queue_size: Option<u16>,
    },
    /// `net_vhost`: a vhost-user backend on `iface`; testpmd listens unless `client`.
    Vhost { iface: PathBuf, client: bool },
}

impl Vdev {
    /// A `virtio_user` port that connects to a backend listening on `path`.
    pub fn virtio_user(path: &Path) -> Vdev {
        Vdev::VirtioUser {
            path: path.to_path_buf(),
            server: false,
            mac: None,
            queue_size: None,
        }
    }

    /// A `virtio_user` port that listens on `path` (`server=1`) for the backend.
    pub fn virtio_user_server(path: &Path) -> Vdev {
        Vdev::VirtioUser {
            path: path.to_path_buf(),
            server: true,
            mac: None,
            queue_size: None,
        }
    }

    /// A `net_vhost` backend port listening on `iface`.
    pub fn vhost(iface: &Path) -> Vdev {
        Vdev::Vhost {
            iface: iface.to_path_buf(),
            client: false,
        }
    }

    /// The same port with MAC address `mac` (`virtio_user` only).
    pub fn with_mac(mut self, m: &str) -> Vdev {
        if let Vdev::VirtioUser { mac, .. } = &mut self {
            *mac = Some(m.to_string());
        }
        self
    }

    /// The same port with `n`-entry rings (`virtio_user` only).
    pub fn with_queue_size(mut self, n: u16) -> Vdev {
        if let Vdev::VirtioUser { queue_size, .. } = &mut self {
            *queue_size = Some(n);
        }
        self
    }

    /// The `--vdev` argument for port number `i`.
    fn arg(&self, i: usize) -> String {
        match self {
            Vdev::VirtioUser {
                path,
                server,
                mac,
                queue_size,
            } => {
                let mut s = format!("virtio_user{i},path={},queues=1", path.display());
                if *server {
                    s.push_str(",server=1");
                }
                if let Some(m) = mac {
                    s.push_str(&format!(",mac={m}"));
                }
                if let Some(n) = queue_size {
                    s.push_str(&format!(",queue_size={n}"));
                }
                s
            }
            Vdev::Vhost { iface, client } => {
                let mut s = format!("net_vhost{i},iface={},queues=1", iface.display());
                if *client {
                    s.push_str(",client=1");
                }
                s
            }
        }
    }

    /// The socket testpmd creates, if it is the listening side.
    fn listens_on(&self) -> Option<&Path> {
        match self {
            Vdev::VirtioUser {
                path, server: true, ..
            } => Some(path),
            Vdev::Vhost {
                iface,
                client: false,
            } => Some(iface),
            _ => None,
        }
    }
}

/// One port's counters from `show port stats all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub port: u16,
    pub rx_packets: u64,
    pub rx_missed: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_nombuf: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_bytes: u64,
}

/// Parse every `NIC statistics for port N` block of `show port stats all`.
pub fn parse_stats(text: &str) -> Vec<PortStats> {
    let mut out: Vec<PortStats> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.split("NIC statistics for port").nth(1) {
            let port = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("port number in {line:?}"));
            out.push(PortStats {
                port,
                ..PortStats::default()
            });
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        // "RX-packets: 512        RX-missed: 0          RX-bytes:  314068"
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            let Some(key) = pair[0].strip_suffix(':') else {
                continue;
            };
            let Ok(v) = pair[1].parse::<u64>() else {
                continue;
            };
            match key {
                "RX-packets" => cur.rx_packets = v,
                "RX-missed" => cur.rx_missed = v,
                "RX-bytes" => cur.rx_bytes = v,
                "RX-errors" => cur.rx_errors = v,
                "RX-nombuf" => cur.rx_nombuf = v,
                "TX-packets" => cur.tx_packets = v,
                "TX-errors" => cur.tx_errors = v,
                "TX-bytes" => cur.tx_bytes = v,
                _ => {}
            }
        }
    }
    out
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// What testpmd printed so far, and a signal for readers.
#[derive(Default)]
struct Printed {
    /// Its standard output: prompts and command output. (Kept apart from stderr: a message
    /// there can arrive in the middle of a prompt.)
    stdout: Vec<u8>,
    /// Standard output and error as they came, for people.
    all: Vec<u8>,
}

type Output = Arc<(Mutex<Printed>, Condvar)>;

/// A running interactive `dpdk-testpmd`.
pub struct Testpmd {
    pub name: String,
    /// Its `--file-prefix`.
    pub prefix: String,
    /// Its DPDK runtime directories, removed when it ends.
    dirs: nfv_control::bench::DpdkRunDirs,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: Output,
    /// Bytes of stdout up to and including the last prompt a command waited for.
    seen: usize,
    /// Sockets it listens on (removed on drop).
    sockets: Vec<PathBuf>,
}

impl Testpmd {
    /// Start testpmd with `vdevs` (ports 0, 1, ... in this order), its main and forwarding
    /// lcores both on CPU `cpu`, one forwarding core, 8192 mbufs without hugepages; waits
    /// for its first prompt. Panics with testpmd's output if it does not come up.
    pub fn start(name: &str, cpu: usize, vdevs: &[Vdev]) -> Testpmd {
        Self::start_with(name, cpu, vdevs, &[])
    }

    /// [`Testpmd::start`] with more application arguments (after `--`).
    pub fn start_with(name: &str, cpu: usize, vdevs: &[Vdev], app_args: &[&str]) -> Testpmd {
        let mut tp = Self::spawn(name, cpu, vdevs, app_args);
        tp.ready();
        tp
    }

    /// Wait (up to 60 s) until testpmd is up: its first prompt.
    pub fn ready(&mut self) {
        if self.seen == 0 {
            self.wait_prompt(Duration::from_secs(60));
        }
    }

    /// Start testpmd like [`Testpmd::start_with`] without waiting for it to come up: a
    /// `virtio_user` with `server=1` waits in start-up until the backend connected. Call
    /// [`Testpmd::ready`] before the first command.
    pub fn spawn(name: &str, cpu: usize, vdevs: &[Vdev], app_args: &[&str]) -> Testpmd {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("nfv-tp-{}-{name}-{n}", std::process::id());
        let sockets: Vec<PathBuf> = vdevs
            .iter()
            .filter_map(|v| v.listens_on().map(Path::to_path_buf))
            .collect();
        // A socket left by a killed server makes the bind fail.
        for s in &sockets {
            let _ = std::fs::remove_file(s);
        }
        let vdevs: Vec<String> = vdevs.iter().enumerate().map(|(i, v)| v.arg(i)).collect();
        let (mut cmd, dirs) = nfv_control::bench::testpmd_command(cpu, &prefix, &vdevs);
        cmd.args(app_args);
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the
        // parent; it makes testpmd die with the thread that spawned it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn dpdk-testpmd");
        let out: Output = Arc::new((Mutex::new(Printed::default()), Condvar::new()));
        let stdout = child.stdout.take().expect("testpmd stdout");
        let stderr = child.stderr.take().expect("testpmd stderr");
        for (mut r, is_stdout) in [
            (Box::new(stdout) as Box<dyn Read + Send>, true),
            (Box::new(stderr), false),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let (m, cv) = &*out;
                    let mut p = m.lock().unwrap_or_else(|e| e.into_inner());
                    p.all.extend_from_slice(&buf[..n]);
                    if is_stdout {
                        p.stdout.extend_from_slice(&buf[..n]);
                    }
                    cv.notify_all();
                }
            });
        }
        let stdin = child.stdin.take();
        Testpmd {
            name: name.to_string(),
            prefix,
            dirs,
            child: Some(child),
            stdin,
            out,
            seen: 0,
            sockets,
        }
    }

    /// Everything testpmd printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        let (m, _) = &*self.out;
        String::from_utf8_lossy(&m.lock().unwrap_or_else(|e| e.into_inner()).all).into_owned()
    }

    /// Wait for the next prompt; returns the text before it (since the previous one).
    fn wait_prompt(&mut self, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        let (m, cv) = &*self.out;
        let mut buf = m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let rest = &buf.stdout[self.seen..];
            if let Some(at) = rest
                .windows(PROMPT.len())
                .position(|w| w == PROMPT.as_bytes())
            {
                let text = String::from_utf8_lossy(&rest[..at]).into_owned();
                self.seen += at + PROMPT.len();
                return text;
            }
            let exited = match self.child.as_mut() {
                Some(c) => matches!(c.try_wait(), Ok(Some(_))),
                None => true,
            };
            let left = end.saturating_duration_since(Instant::now());
            if exited || left.is_zero() {
                let text = String::from_utf8_lossy(&buf.all).into_owned();
                drop(buf);
                panic!(
                    "testpmd {} {}; its output:\n{text}",
                    self.name,
                    if exited {
                        "exited"
                    } else {
                        "gave no prompt in time"
                    }
                );
            }
            buf = cv
                .wait_timeout(buf, left.min(Duration::from_millis(200)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Send one command and wait for testpmd to finish it; returns what it printed.
    pub fn cmd(&mut self, line: &str) -> String {
        self.cmd_timeout(line, Duration::from_secs(30))
    }

    /// [`Testpmd::cmd`] with a timeout.
    pub fn cmd_timeout(&mut self, line: &str, timeout: Duration) -> String {
        self.ready();
        let stdin = self.stdin.as_mut().expect("testpmd stdin open");
        writeln!(stdin, "{line}").expect("write a testpmd command");
        stdin.flush().expect("flush testpmd stdin");
        self.wait_prompt(timeout)
    }

    /// `set fwd MODE` (`txonly`, `rxonly`, `io`, ...).
    pub fn set_fwd(&mut self, mode: &str) {
        let out = self.cmd(&format!("set fwd {mode}"));
        assert!(
            out.contains(&format!("Set {mode} packet forwarding mode")),
            "{out}"
        );
    }

    /// `set txpkts`: the segment lengths of every frame `txonly` sends (their sum is its
    /// length); with `set txsplit rand`, each frame takes a random number of the first
    /// segments, so lengths vary among the running sums.
    pub fn set_txpkts(&mut self, segments: &[u16]) {
        let list: Vec<String> = segments.iter().map(u16::to_string).collect();
        let out = self.cmd(&format!("set txpkts {}", list.join(",")));
        assert!(
            !out.to_lowercase().contains("error") && !out.contains("bad"),
            "{out}"
        );
    }

    /// `set txsplit on|off|rand`.
    pub fn set_txsplit(&mut self, mode: &str) {
        let out = self.cmd(&format!("set txsplit {mode}"));
        assert!(!out.to_lowercase().contains("error"), "{out}");
    }

    /// `set burst N`.
    pub fn set_burst(&mut self, n: u16) {
        let out = self.cmd(&format!("set burst {n}"));
        assert!(!out.to_lowercase().contains("error"), "{out}");
    }

    /// `set eth-peer PORT MAC`: the destination MAC of what `txonly` sends on PORT.
    pub fn set_eth_peer(&mut self, port: u16, mac: &str) {
        let out = self.cmd(&format!("set eth-peer {port} {mac}"));
        assert!(!out.to_lowercase().contains("error"), "{out}");
    }

    /// `start`.
    pub fn start_fwd(&mut self) {
        let out = self.cmd("start");
        assert!(out.contains("packet forwarding"), "{out}");
    }

    /// `start tx_first N`: every forwarding port first sends N bursts of the `txonly`
    /// engine (`set burst` frames each, as `set txpkts`/`set txsplit` say), then the
    /// forwarding mode runs.
    pub fn start_tx_first(&mut self, bursts: u32) {
        let out = self.cmd_timeout(&format!("start tx_first {bursts}"), Duration::from_secs(60));
        assert!(out.contains("packet forwarding"), "{out}");
    }

    /// `stop`.
    pub fn stop_fwd(&mut self) -> String {
        self.cmd("stop")
    }

    /// `clear port stats all`.
    pub fn clear_stats(&mut self) {
        self.cmd("clear port stats all");
    }

    /// `show port stats all`, parsed; one entry per port, in port order.
    pub fn stats(&mut self) -> Vec<PortStats> {
        let out = self.cmd("show port stats all");
        let s = parse_stats(&out);
        assert!(!s.is_empty(), "no port stats in {out:?}");
        s
    }

    /// Whether `show port info PORT` says the link is up.
    pub fn link_up(&mut self, port: u16) -> bool {
        let out = self.cmd(&format!("show port info {port}"));
        out.lines()
            .any(|l| l.contains("Link status") && l.trim_end().ends_with("up"))
    }

    /// Wait up to `timeout` until PORT's link is up (the backend attached its rings).
    pub fn wait_link_up(&mut self, port: u16, timeout: Duration) {
        let end = Instant::now() + timeout;
        while !self.link_up(port) {
            assert!(
                Instant::now() < end,
                "testpmd {} port {port}: link not up within {timeout:?}; output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Poll `show port stats all` until `pred` holds of it, or until the counters stop
    /// moving for `quiet`; returns the last stats.
    pub fn stats_settled(
        &mut self,
        quiet: Duration,
        timeout: Duration,
        pred: impl Fn(&[PortStats]) -> bool,
    ) -> Vec<PortStats> {
        let end = Instant::now() + timeout;
        let mut last = self.stats();
        let mut since = Instant::now();
        loop {
            if pred(&last) || since.elapsed() >= quiet || Instant::now() >= end {
                return last;
            }
            std::thread::sleep(Duration::from_millis(20));
            let now = self.stats();
            if now != last {
                since = Instant::now();
                last = now;
            }
        }
    }

    /// Quit testpmd and wait for it (at most 10 s, then SIGKILL).
    pub fn quit(mut self) -> String {
        self.shutdown();
        self.output()
    }

    fn shutdown(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "quit");
            // Dropping the write end: testpmd also quits at the end of its input.
        }
        if let Some(mut c) = self.child.take() {
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < end => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
        self.dirs.remove();
        for s in &self.sockets {
            let _ = std::fs::remove_file(s);
        }
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        self.shutdown();
    }
}
