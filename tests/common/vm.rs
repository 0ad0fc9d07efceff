//! Real VMs for the vhost-user tests: a busybox guest (built by `tests/vm/build-guest.sh`,
//! once, under the cargo target directory) booted by QEMU under TCG with one virtio-net NIC
//! on a vhost-user socket. The guest's /init takes its instructions from the kernel command
//! line (`vmlab.addr=`, `vmlab.ping=`, ...; see the script) and reports on the serial
//! console with marker lines (`VMLAB-LEASE`, `VMLAB-PING`, `VMLAB-RESULT PASS|FAIL`), which
//! is how a guest is judged: never by QEMU's exit code (a kernel panic also exits 0).
//!
//! [`Guest`] kills QEMU and removes its files when dropped, also when the test fails.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use nfv_control::demo::guest::qemu_args;
pub use nfv_control::demo::guest::Image;

use super::{have, is_root, repo, TempDir, NFV};

/// True if this machine can run VM tests needing `programs` (besides QEMU). Otherwise
/// prints why and returns false, except under `CI=true`, where it panics: CI must not skip.
pub fn vm_available(programs: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    if !Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun".to_string());
    }
    for p in ["ip", "qemu-system-x86_64"].iter().chain(programs) {
        if !have(p) {
            missing.push(format!("`{p}`"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("VM test needs {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (CI=true: VM tests must run; install with tests/run.sh)");
    }
    eprintln!("skipping: {why}");
    false
}

/// One VM test at a time in a test process: the machine has 2 cores, and a TCG guest
/// booting takes one. Hold the guard for the whole test.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the VM tests (and `nfv demo` under test, through `NFV_GUEST_DIR`) keep the guest
/// image: `<target dir>/vm-guest`.
pub fn guest_dir() -> PathBuf {
    // NFV is <target>/<profile>/nfv.
    Path::new(NFV)
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo().join("target"))
        .join("vm-guest")
}

/// The guest image, built (or found up to date) once per test process by
/// `tests/vm/build-guest.sh` into [`guest_dir`].
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
    let built = IMAGE.get_or_init(|| {
        let out_dir = guest_dir();
        let out = Command::new("bash")
            .arg(repo().join("tests/vm/build-guest.sh"))
            .arg(&out_dir)
            .output()
            .map_err(|e| format!("cannot run build-guest.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tests/vm/build-guest.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Image {
            kernel: out_dir.join("vmlinux"),
            initrd: out_dir.join("initramfs.cpio.gz"),
        })
    });
    match built {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

/// Which end of the vhost-user socket QEMU is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Socket {
    /// QEMU connects, and reconnects, to the backend's socket (`reconnect=1`): for a
    /// backend in server mode (nfv's default).
    Connect,
    /// QEMU creates the socket and the backend connects (`server=on,wait=off`): for a
    /// backend in client mode. QEMU removes the socket file when it exits.
    Listen,
}

/// A QEMU guest on a vhost-user socket; killed and its files removed when dropped.
pub struct Guest {
    pub name: String,
    pub mac: String,
    child: Option<Child>,
    dir: TempDir,
    socket: PathBuf,
    mode: Socket,
}

impl Guest {
    /// Boot a guest named `name` (for messages) with NIC `mac` on `socket`, its /init
    /// instructed by `vmlab` (`[("addr", "dhcp"), ("ping", "10.0.0.1")]` becomes
    /// `vmlab.addr=dhcp vmlab.ping=10.0.0.1`). Returns at once; QEMU itself waits for the
    /// backend before it boots the guest. QEMU dies with the thread that booted it (so
    /// also when the test process is killed).
    pub fn boot(
        name: &str,
        socket: &Path,
        mode: Socket,
        mac: &str,
        vmlab: &[(&str, &str)],
    ) -> Guest {
        Guest::boot_with(name, socket, mode, mac, vmlab, &[])
    }

    /// [`Guest::boot`] with more arguments for QEMU (`extra`), e.g. `-incoming`.
    pub fn boot_with(
        name: &str,
        socket: &Path,
        mode: Socket,
        mac: &str,
        vmlab: &[(&str, &str)],
        extra: &[String],
    ) -> Guest {
        let image = image();
        let dir = TempDir::new(&format!("vm-{name}"));
        let console = dir.path().join("console.log");
        let append: Vec<String> = vmlab
            .iter()
            .map(|(k, v)| format!("vmlab.{k}={v}"))
            .collect();
        if mode == Socket::Listen {
            // A file left behind would make QEMU's bind fail.
            let _ = std::fs::remove_file(socket);
        }
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(qemu_args(
            image,
            socket,
            mode == Socket::Listen,
            mac,
            &console,
            &append.join(" "),
        ))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("qemu.log")).expect("qemu log"))
        .stderr(std::fs::File::create(dir.path().join("qemu.err")).expect("qemu log"));
        std::fs::write(dir.path().join("qemu.cmd"), format!("{cmd:?}\n")).expect("qemu.cmd");
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent. If the
        // test process dies without dropping the guest, the kernel kills QEMU too.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start qemu-system-x86_64");
        Guest {
            name: name.to_string(),
            mac: mac.to_string(),
            child: Some(child),
            dir,
            socket: socket.to_path_buf(),
            mode,
        }
    }

    /// The console so far, one entry per line (carriage returns removed).
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("console.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    }

    /// Whether QEMU still runs.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The first console line from line `from` on that contains `pattern`, and its index,
    /// waiting up to `timeout`; None if it did not come in time or QEMU exited without it.
    pub fn wait_marker_from(
        &mut self,
        from: usize,
        pattern: &str,
        timeout: Duration,
    ) -> Option<(usize, String)> {
        let end = Instant::now() + timeout;
        loop {
            let alive = self.running();
            let found = self
                .lines()
                .into_iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| l.contains(pattern));
            if found.is_some() {
                return found;
            }
            if !alive || Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The first console line that contains `pattern`, waiting up to `timeout`.
    pub fn wait_marker(&mut self, pattern: &str, timeout: Duration) -> Option<String> {
        self.wait_marker_from(0, pattern, timeout).map(|(_, l)| l)
    }

    /// Like [`Guest::wait_marker`], but a missing marker fails the test with the console
    /// and QEMU's output.
    pub fn expect_marker(&mut self, pattern: &str, timeout: Duration) -> String {
        match self.wait_marker(pattern, timeout) {
            Some(l) => l,
            None => panic!(
                "guest {} printed no {pattern:?} within {timeout:?}\n{}",
                self.name,
                self.report()
            ),
        }
    }

    /// The guest's result: waits for `VMLAB-RESULT` and fails the test unless it is PASS.
    pub fn expect_pass(&mut self, timeout: Duration) {
        let line = self.expect_marker("VMLAB-RESULT", timeout);
        assert!(
            line.contains("VMLAB-RESULT PASS"),
            "guest {}: {line}\n{}",
            self.name,
            self.report()
        );
    }

    /// The address the guest took: `A.B.C.D` of its `VMLAB-LEASE A.B.C.D/NN` line.
    pub fn expect_lease(&mut self, timeout: Duration) -> String {
        let line = self.expect_marker("VMLAB-LEASE ", timeout);
        lease_address(&line)
            .unwrap_or_else(|| panic!("guest {}: bad lease line {line:?}", self.name))
    }

    /// Console and QEMU output, for failure messages.
    pub fn report(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "--- {} console:\n{}\n--- qemu stderr:\n{}--- qemu stdout:\n{}--- command:\n{}",
            self.name,
            self.lines().join("\n"),
            read("qemu.err"),
            read("qemu.log"),
            read("qemu.cmd")
        )
    }

    /// A path for a socket of this guest's own (a QMP monitor, a migration stream).
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Kill QEMU now (SIGKILL) and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
        if self.mode == Socket::Listen {
            let _ = std::fs::remove_file(&self.socket);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// `A.B.C.D` from a `VMLAB-LEASE A.B.C.D/NN ...` line.
pub fn lease_address(line: &str) -> Option<String> {
    let rest = &line[line.find("VMLAB-LEASE ")? + "VMLAB-LEASE ".len()..];
    let cidr = rest.split_whitespace().next()?;
    let addr = cidr.split('/').next()?;
    addr.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|a| a.to_string())
}

/// The `VMLAB-PING ADDR ok|fail` lines of the console from line `from` on, as (index, ok).
pub fn ping_markers(lines: &[String], from: usize, addr: &str) -> Vec<(usize, bool)> {
    let prefix = format!("VMLAB-PING {addr} ");
    lines
        .iter()
        .enumerate()
        .skip(from)
        .filter_map(|(i, l)| {
            let rest = &l[l.find(&prefix)? + prefix.len()..];
            match rest.split_whitespace().next()? {
                "ok" => Some((i, true)),
                "fail" => Some((i, false)),
                _ => None,
            }
        })
        .collect()
}

/// A QEMU machine protocol (QMP) connection, to a guest started with
/// `-qmp unix:PATH,server=on,wait=off`.
pub struct Qmp {
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl Qmp {
    /// Connect to the QMP socket at `path` (retrying for up to 30 s while QEMU starts) and
    /// leave capabilities negotiation.
    pub fn connect(path: &Path) -> Qmp {
        use std::io::BufRead;
        let until = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < until, "QMP {}: {e}", path.display());
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("QMP timeout");
        let writer = stream.try_clone().expect("QMP stream");
        let mut q = Qmp {
            reader: std::io::BufReader::new(stream),
            writer,
        };
        let mut greeting = String::new();
        q.reader.read_line(&mut greeting).expect("QMP greeting");
        q.run("qmp_capabilities", serde_json::json!({}));
        q
    }

    /// Run `command` with `arguments`; its `return` value. Fails the test on an `error`.
    pub fn run(&mut self, command: &str, arguments: serde_json::Value) -> serde_json::Value {
        use std::io::{BufRead, Write};
        let req = serde_json::json!({"execute": command, "arguments": arguments});
        writeln!(self.writer, "{req}").expect("QMP write");
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("QMP read");
            assert!(n > 0, "QMP: QEMU closed the connection during {command}");
            let v: serde_json::Value = serde_json::from_str(&line).expect("QMP JSON");
            if let Some(r) = v.get("return") {
                return r.clone();
            }
            assert!(v.get("error").is_none(), "QMP {command}: {v}");
            // An asynchronous event: not the answer.
        }
    }
}
