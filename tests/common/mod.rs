//! Shared pieces of the end-to-end tests: a guard that skips (or, under `CI=true`, fails)
//! when the machine cannot run them, and [`Lab`], which runs the real `nfv run` on a copy of
//! a topology file under a unique name and removes everything when dropped, also when the
//! test fails.

#![allow(dead_code)]

pub mod testpmd;
pub mod vm;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const NFV: &str = env!("CARGO_BIN_EXE_nfv");

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True if this machine can run lab tests needing `programs`. Otherwise prints why and
/// returns false, except under `CI=true`, where it panics: CI must not skip.
pub fn lab_available(programs: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    if !Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun".to_string());
    }
    for p in ["ip"].iter().chain(programs) {
        if !have(p) {
            missing.push(format!("`{p}`"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("lab test needs {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (CI=true: lab tests must run; install with tests/run.sh)");
    }
    eprintln!("skipping: {why}");
    false
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("nfv-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A topology name no other test uses: `BASE-<pid%10000><seq>`.
pub fn unique_name(base: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{base}-{}{n}", std::process::id() % 10000)
}

/// Copy `topologies/FILE` into `dir` with its `name:` replaced by `name`.
pub fn topology_copy(file: &str, name: &str, dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("topologies").join(file)).expect("read topology");
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.starts_with("name:") {
            out.push_str(&format!("name: {name}\n"));
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(done, "{file} has no top-level name");
    let path = dir.join(file);
    std::fs::write(&path, out).expect("write topology copy");
    path
}

pub fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The ends of veth pairs `nfv run` with process id `pid` serves (`nfv<pid>v<n>`), in the
/// root namespace.
pub fn veth_ends(pid: u32) -> Vec<String> {
    let ours = format!("nfv{}v", pid % 1_000_000);
    root_devices()
        .into_iter()
        .filter(|d| {
            d.strip_prefix(&ours)
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect()
}

pub fn root_devices() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A running `nfv run` on a uniquely named copy of a topology.
pub struct Lab {
    pub name: String,
    pub pid: u32,
    child: Option<Child>,
    stdout: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    pub dir: TempDir,
    /// Leave the namespaces behind on drop (a test of leftover handling; a later `Lab` of
    /// the same name removes them).
    leave_namespaces: bool,
}

impl Lab {
    /// Start `nfv run` on a copy of `topologies/FILE` and wait until it is running.
    pub fn start(file: &str, base: &str) -> Lab {
        let dir = TempDir::new(base);
        let name = unique_name(base);
        let path = topology_copy(file, &name, dir.path());
        Self::start_path(&path, name, dir)
    }

    /// Start `nfv run` on a copy of `topologies/FILE` changed by `edit` (e.g. to keep DHCP
    /// lease files in the test's directory, given as the argument).
    pub fn start_edited(file: &str, base: &str, edit: impl Fn(String, &Path) -> String) -> Lab {
        let dir = TempDir::new(base);
        let name = unique_name(base);
        let path = topology_copy(file, &name, dir.path());
        let text = std::fs::read_to_string(&path).expect("read copy");
        std::fs::write(&path, edit(text, dir.path())).expect("write edited copy");
        Self::start_path(&path, name, dir)
    }

    /// The IPv4 address of `host`'s eth0, waiting up to `timeout` for a DHCP lease.
    pub fn wait_address(&self, host: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let out = self.exec(host, "ip", &["-4", "-o", "addr", "show", "dev", "eth0"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(a) = nfv_control::demo::parse_inet(&text) {
                return Some(a);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The address `host` leased over DHCP, waiting up to 20 s: checked to be `subnet`x
    /// (`subnet` like `192.168.1.`) with x from 100 to 199 (the labs' pools), and the
    /// default route to be `subnet`1 (the router option). `why` adds to the message when
    /// no lease comes (a client's log, say).
    pub fn lease_in(&self, host: &str, subnet: &str, why: impl Fn() -> String) -> String {
        let a = self
            .wait_address(host, Duration::from_secs(20))
            .unwrap_or_else(|| {
                panic!(
                    "{host} got no lease; nfv stderr:\n{}\n{}",
                    self.stderr(),
                    why()
                )
            });
        assert!(a.starts_with(subnet), "{host} got {a}, expected {subnet}x");
        let last: u8 = a
            .rsplit('.')
            .next()
            .and_then(|o| o.parse().ok())
            .expect("octet");
        assert!(
            (100..=199).contains(&last),
            "{host}: {a} is outside the pool"
        );
        let out = self.exec(host, "ip", &["-4", "route", "show", "default"]);
        let route = String::from_utf8_lossy(&out.stdout);
        assert!(
            route.contains(&format!("via {subnet}1")),
            "{host}: the router option: {route}"
        );
        a
    }

    /// Start `nfv run` on `path` (whose topology is called `name`).
    pub fn start_path(path: &Path, name: String, dir: TempDir) -> Lab {
        Self::start_path_args(path, name, dir, &[])
    }

    /// Start `nfv run` on a copy of `topologies/FILE` with the options `args` too.
    pub fn start_args(file: &str, base: &str, args: &[&str]) -> Lab {
        let dir = TempDir::new(base);
        let name = unique_name(base);
        let path = topology_copy(file, &name, dir.path());
        Self::start_path_args(&path, name, dir, args)
    }

    /// Start `nfv run` on `path` (whose topology is called `name`) with the options `args`.
    pub fn start_path_args(path: &Path, name: String, dir: TempDir, args: &[&str]) -> Lab {
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
        let mut child = Command::new(NFV)
            .arg("run")
            .arg(path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn nfv run");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lab = Lab {
            name,
            pid: child.id(),
            child: Some(child),
            stdout: rx,
            seen: Vec::new(),
            dir,
            leave_namespaces: false,
        };
        lab.wait_for_line("running; Ctrl-C", Duration::from_secs(30));
        lab
    }

    /// Wait until nfv printed a line containing `what`.
    pub fn wait_for_line(&mut self, what: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            if self.seen.iter().any(|l| l.contains(what)) {
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "nfv did not print {what:?} within {timeout:?}; stdout so far: {:#?}\nstderr: {}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn netns(&self, host: &str) -> String {
        format!("nfv-{}-{host}", self.name)
    }

    /// Run a program inside a host's namespace.
    pub fn exec(&self, host: &str, prog: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns(host), prog])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Spawn a program inside a host's namespace, its output discarded.
    pub fn spawn(&self, host: &str, prog: &str, args: &[&str]) -> Child {
        self.spawn_with(host, prog, args, Stdio::null)
    }

    /// Spawn a program inside a host's namespace, its output kept (for `wait_with_output`).
    pub fn spawn_piped(&self, host: &str, prog: &str, args: &[&str]) -> Child {
        self.spawn_with(host, prog, args, Stdio::piped)
    }

    fn spawn_with(&self, host: &str, prog: &str, args: &[&str], out: fn() -> Stdio) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.netns(host), prog])
            .args(args)
            .stdout(out())
            .stderr(out())
            .spawn()
            .expect("spawn in netns")
    }

    /// Ping `addr` from `host` `count` times; returns (sent, received).
    pub fn ping(&self, host: &str, addr: &str, count: u32) -> (u32, u32) {
        let c = count.to_string();
        let out = self.exec(
            host,
            "ping",
            &["-n", "-c", &c, "-i", "0.2", "-W", "1", addr],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let r = nfv_control::demo::parse_ping(&text)
            .unwrap_or_else(|| panic!("no ping summary from {host} to {addr}: {text}"));
        (r.sent, r.received)
    }

    /// Namespaces of this lab that exist now.
    pub fn namespaces_left(&self) -> Vec<String> {
        let prefix = format!("nfv-{}-", self.name);
        netns_list()
            .into_iter()
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    /// Stop nfv with SIGTERM; returns its exit status success and everything it printed.
    pub fn stop(mut self) -> (bool, String) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("nfv did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = self.stdout.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(l);
        }
        (status.success(), self.seen.join("\n"))
    }

    /// Kill nfv with SIGKILL, leaving its namespaces behind (to test leftover handling).
    pub fn kill(mut self) {
        self.leave_namespaces = true;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.leave_namespaces {
            return;
        }
        // Whatever a killed run (or a failing test) left behind.
        for ns in self.namespaces_left() {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        let _ = std::fs::remove_file(format!("/run/nfv/{}.pid", self.name));
    }
}

/// The drop counts from nfv's final summary line `drops: runt=1 oversize=2`.
pub fn summary_drops(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .find_map(|l| l.strip_prefix("drops: "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn drop_count(out: &str, reason: &str) -> u64 {
    summary_drops(out)
        .into_iter()
        .find(|(k, _)| k == reason)
        .map(|(_, v)| v)
        .unwrap_or(0)
}

/// `nfv show ports --json` of `lab`: the row of `port`.
pub fn port_row(lab: &Lab, port: &str) -> serde_json::Value {
    let rows = show_json(lab, "ports");
    rows.as_array()
        .and_then(|r| r.iter().find(|r| r["port"] == port))
        .cloned()
        .unwrap_or_else(|| panic!("no port {port} in {rows}"))
}

/// `nfv show TABLE --json` of a running lab.
pub fn show_json(lab: &Lab, table: &str) -> serde_json::Value {
    let out = Command::new(NFV)
        .args(["show", table, "--json", "-t", &lab.name])
        .output()
        .expect("run nfv show");
    assert!(
        out.status.success(),
        "nfv show {table}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("show --json is JSON")
}

/// A TCP receiver for a lab host (python3; arguments ADDR PORT [BYTES]): takes one
/// connection on ADDR:PORT, reads until the peer closes or, given BYTES, until it has them
/// (then closes, which ends a peer such as busybox `nc` that would not close first), and
/// prints the byte count and their SHA-256.
pub const TCP_RECEIVER: &str = r#"
import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(150)
c, _ = s.accept()
c.settimeout(60)
want = int(sys.argv[3]) if len(sys.argv) > 3 else None
h, n = hashlib.sha256(), 0
while want is None or n < want:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(n, h.hexdigest())
"#;

/// Run the iperf3 client in `host` with `args` (`-J` is added) and give its JSON report,
/// retrying for up to 10 s while the server is not listening yet; any other error fails.
pub fn iperf3_client(lab: &Lab, host: &str, args: &[&str]) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let mut a = vec!["-J"];
        a.extend_from_slice(args);
        let out = lab.exec(host, "iperf3", &a);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "iperf3 printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        match v.get("error").and_then(|e| e.as_str()) {
            Some(e) if e.contains("refused") && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Some(e) => panic!("iperf3 {args:?} from {host} failed: {e}"),
            None => return v,
        }
    }
}
