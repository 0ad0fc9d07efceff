//! `nfv demo`: the built-in lab, a home gateway. Hosts in network namespaces take DHCP
//! leases, ping across the LAN and out through the NAT, fetch pages through the gateway
//! (busybox httpd and wget), reach the NAS through a port forward, and meet the firewall;
//! when QEMU is installed, a VM joins the LAN on a vhost-user port, takes a lease and pings
//! the gateway and the internet (see [`guest`]); the demo prints what it did and cleans up.

use crate::session::{errln, outln};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use crate::lab::exec_in;
use crate::run;
use crate::session::{finish, stop_flag};
use crate::topology;

/// The demo topology, embedded in the binary: `topologies/home-gateway.yaml`, run under the
/// name `demo` (so its namespaces are `nfv-demo-*` and it can run beside the lab).
pub const DEMO_TOPOLOGY: &str = include_str!("../../topologies/home-gateway.yaml");

/// What one `ping` run reported.
#[derive(Clone, Debug, PartialEq)]
pub struct PingResult {
    /// Echo requests sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
    /// Average round trip in milliseconds, if any reply came.
    pub avg_ms: Option<f64>,
}

/// Read `ping`'s summary lines ("3 packets transmitted, 3 received, ..." and
/// "rtt min/avg/max/mdev = 0.041/0.052/0.061/0.008 ms").
pub fn parse_ping(out: &str) -> Option<PingResult> {
    let stats = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = stats
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok());
    let sent = nums.next()??;
    let received = nums.next()??;
    let avg_ms = out
        .lines()
        .find(|l| l.starts_with("rtt") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse::<f64>().ok());
    Some(PingResult {
        sent,
        received,
        avg_ms,
    })
}

/// Ping `addr` from namespace `netns` `count` times.
pub fn ping(netns: &str, addr: &str, count: u32) -> std::io::Result<Option<PingResult>> {
    let count = count.to_string();
    let out = exec_in(
        netns,
        "ping",
        &["-n", "-c", &count, "-i", "0.2", "-W", "2", addr],
    )?;
    Ok(parse_ping(&String::from_utf8_lossy(&out.stdout)))
}

/// The IPv4 address on `ifname` inside `netns`, polled until `deadline` (a DHCP client
/// is taking a lease).
fn wait_for_address(
    netns: &str,
    ifname: &str,
    deadline: std::time::Instant,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<String> {
    loop {
        let out = std::process::Command::new("ip")
            .args(["-n", netns, "-4", "-o", "addr", "show", "dev", ifname])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(a) = parse_inet(&text) {
            return Some(a);
        }
        if std::time::Instant::now() > deadline || stop.load(Ordering::Relaxed) {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The first address of `ip -4 -o addr show` output ("2: eth0    inet 10.0.1.100/24 ...").
pub fn parse_inet(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == "inet")?;
    let cidr = words.next()?;
    Some(cidr.split('/').next()?.to_string())
}

/// A program in a lab namespace, killed when dropped.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serve `root` over HTTP on port 80 in `netns` with busybox httpd.
fn httpd(netns: &str, root: &Path) -> std::io::Result<Background> {
    let child = std::process::Command::new("ip")
        .args([
            "netns", "exec", netns, "busybox", "httpd", "-f", "-p", "80", "-h",
        ])
        .arg(root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    Ok(Background(child))
}

/// The web root of the demo's servers: a page and a CGI script that says who asked
/// (`REMOTE_ADDR`: the address the server sees).
fn web_root(host: &str) -> std::io::Result<tempdir::Dir> {
    let dir = tempdir::Dir::new(&format!("nfv-demo-www-{host}"))?;
    std::fs::write(
        dir.path().join("index.html"),
        format!("hello from {host}\n"),
    )?;
    let cgi = dir.path().join("cgi-bin");
    std::fs::create_dir(&cgi)?;
    let script = cgi.join("whoami");
    std::fs::write(
        &script,
        // httpd listens on IPv6 too and names IPv4 peers `[::ffff:A.B.C.D]`.
        format!(
            "#!/bin/sh\na=\"${{REMOTE_ADDR#[::ffff:}}\"\nprintf 'Content-Type: text/plain\\r\\n\\r\\n{host} sees you as %s\\n' \"${{a%]}}\"\n"
        ),
    )?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// A temporary directory, removed when dropped.
mod tempdir {
    use std::os::unix::fs::DirBuilderExt as _;
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        /// A new directory of our own under the system's temporary directory (mode 0700,
        /// made by one `mkdir` that fails if anything is at its name): never one someone
        /// else made there first, nor a link they planted.
        pub fn new(name: &str) -> std::io::Result<Dir> {
            let base = std::env::temp_dir();
            let mut last = None;
            for i in 0u32..64 {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let p = base.join(format!(
                    "{name}.{}.{:08x}",
                    std::process::id(),
                    nanos ^ i.wrapping_mul(0x9e37_79b9)
                ));
                match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                    Ok(()) => return Ok(Dir(p)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_temporary_directory_is_new_and_private_even_when_its_old_name_is_taken() {
            use std::os::unix::fs::MetadataExt as _;
            // What the old name scheme would have picked, made first by "someone else".
            let squatted = std::env::temp_dir().join(format!("nfv-sq.{}", std::process::id()));
            let _ = std::fs::create_dir(&squatted);
            let d = Dir::new("nfv-sq").unwrap_or_else(|e| panic!("{e}"));
            assert_ne!(d.path(), squatted.as_path());
            let m = std::fs::metadata(d.path()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.mode() & 0o777, 0o700);
            let other = Dir::new("nfv-sq").unwrap_or_else(|e| panic!("{e}"));
            assert_ne!(d.path(), other.path());
            let _ = std::fs::remove_dir(&squatted);
        }
    }
}

/// `GET path` from `host`:`port` in `netns` with busybox nc (timeout `secs`): Ok(body) or
/// Err(what nc said).
fn fetch(netns: &str, host: &str, port: u16, path: &str, secs: u32) -> Result<String, String> {
    let script = format!(
        "printf 'GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | busybox nc -w {secs} {host} {port}"
    );
    match exec_in(netns, "sh", &["-c", &script]) {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            match text.split_once("\r\n\r\n") {
                Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
                    Ok(body.to_string())
                }
                _ => Err(format!("unexpected answer: {text:?}")),
            }
        }
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(if err.is_empty() {
                "no answer".into()
            } else {
                err
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The demo's checks: a line each, counted when they fail.
struct Report {
    failures: u32,
}

impl Report {
    fn check(&mut self, ok: bool, line: &str) {
        if !ok {
            self.failures += 1;
        }
        outln!("  {line:<72} {}", if ok { "ok" } else { "FAILED" });
    }

    fn ping(&mut self, from: &str, netns: &str, to: &str, addr: &str) {
        match ping(netns, addr, 3) {
            Ok(Some(r)) => {
                let rtt = r
                    .avg_ms
                    .map(|a| format!(", avg {a:.3} ms"))
                    .unwrap_or_default();
                self.check(
                    r.received == r.sent && r.sent > 0,
                    &format!(
                        "{from:>7} -> {to:<8} {addr:<15} {}/{} replies{rtt}",
                        r.received, r.sent
                    ),
                );
            }
            _ => self.check(
                false,
                &format!("{from:>7} -> {to:<8} {addr:<15} ping did not run"),
            ),
        }
    }
}

/// The demo's VM: a busybox guest (built by `tests/vm/build-guest.sh`, embedded here)
/// booted by QEMU under TCG with its virtio-net NIC on one of nfv's vhost-user ports. Its
/// /init takes its instructions from the kernel command line (`vmlab.ping=ADDR,...`) and
/// reports on the serial console with marker lines (`VMLAB-LEASE`, `VMLAB-PING`,
/// `VMLAB-RESULT`). The VM tests (`tests/common/vm.rs`) boot the same guest with the same
/// QEMU options, from [`guest::qemu_args`].
pub mod guest {
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    /// The guest image builder: `build-guest.sh OUTDIR [--no-install]`.
    pub const BUILD_SCRIPT: &str = include_str!("../../tests/vm/build-guest.sh");

    /// Where `nfv demo` keeps the guest image, unless `NFV_GUEST_DIR` says otherwise.
    pub const DEFAULT_DIR: &str = "/var/cache/nfv/vm-guest";

    /// Memory of a guest, shared with nfv through a memfd.
    pub const MEMORY: &str = "256M";

    /// The guest's kernel (an uncompressed vmlinux, booted through its PVH entry point)
    /// and initramfs.
    #[derive(Clone, Debug)]
    pub struct Image {
        /// The kernel.
        pub kernel: PathBuf,
        /// The initramfs.
        pub initrd: PathBuf,
    }

    /// Whether `prog` is on the PATH.
    pub fn have(prog: &str) -> bool {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths)
                .any(|d| std::fs::metadata(d.join(prog)).is_ok_and(|m| m.is_file()))
        })
    }

    /// Build the image into `dir` (or find it up to date there) with the embedded script,
    /// installing no packages. Err: why not, in one line.
    pub fn build(dir: &Path) -> Result<Image, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let script = dir.join("build-guest.sh");
        std::fs::write(&script, BUILD_SCRIPT)
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir)
            .arg("--no-install")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let why = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .trim_start_matches("build-guest.sh: ")
                .to_string();
            return Err(format!("the guest image could not be built: {why}"));
        }
        Ok(Image {
            kernel: dir.join("vmlinux"),
            initrd: dir.join("initramfs.cpio.gz"),
        })
    }

    /// The arguments of `qemu-system-x86_64` for a guest with NIC `mac` on the vhost-user
    /// socket `socket`: QEMU creates it and the backend connects (`listen`, for a backend
    /// in client mode), or QEMU connects and reconnects to the backend's socket. The serial
    /// console goes to the file `console`; `append` ends the kernel command line.
    ///
    /// What matters: TCG (this machine kind has no usable KVM), guest memory in a shared
    /// memfd (the backend maps it), and `vectors=0` on the NIC (QEMU 7.2 under TCG segfaults
    /// when the guest starts a vhost-user NIC with MSI-X). QEMU boots the guest only once a
    /// backend has connected, in either mode.
    pub fn qemu_args(
        image: &Image,
        socket: &Path,
        listen: bool,
        mac: &str,
        console: &Path,
        append: &str,
    ) -> Vec<OsString> {
        let chardev = if listen {
            format!("socket,id=c0,path={},server=on,wait=off", socket.display())
        } else {
            format!("socket,id=c0,path={},reconnect=1", socket.display())
        };
        let mut args: Vec<OsString> = [
            "-accel", "tcg", "-M", "pc", "-cpu", "max", "-smp", "1", "-m", MEMORY, "-object",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.push(format!("memory-backend-memfd,id=mem,size={MEMORY},share=on").into());
        for a in [
            "-numa",
            "node,memdev=mem",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-serial",
        ] {
            args.push(a.into());
        }
        let mut serial = OsString::from("file:");
        serial.push(console);
        args.push(serial);
        args.push("-kernel".into());
        args.push(image.kernel.clone().into());
        args.push("-initrd".into());
        args.push(image.initrd.clone().into());
        args.push("-append".into());
        args.push(format!("console=ttyS0 panic=-1 quiet {append}").into());
        args.push("-chardev".into());
        args.push(chardev.into());
        args.push("-netdev".into());
        args.push("vhost-user,id=n0,chardev=c0,queues=1".into());
        args.push("-device".into());
        args.push(format!("virtio-net-pci,netdev=n0,mac={mac},romfile=,vectors=0").into());
        args
    }

    /// What a guest reported on its console.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Report {
        /// `A.B.C.D/NN` and how (`dhcp` or `static`), from `VMLAB-LEASE`.
        pub lease: Option<(String, String)>,
        /// Each `VMLAB-PING ADDR ok|fail sent=N received=M`: (address, sent, received).
        pub pings: Vec<(String, u32, u32)>,
        /// `VMLAB-RESULT PASS` (true) or `FAIL` (false).
        pub result: Option<bool>,
    }

    /// Read the marker lines of a console (they may sit anywhere in a line: kernel messages
    /// interleave).
    pub fn parse_console(text: &str) -> Report {
        let mut r = Report::default();
        let after = |line: &str, marker: &str| -> Option<Vec<String>> {
            let i = line.find(marker)?;
            Some(
                line[i + marker.len()..]
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            )
        };
        let value = |words: &[String], key: &str| -> Option<u32> {
            words
                .iter()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        };
        for line in text.lines() {
            if let Some(w) = after(line, "VMLAB-LEASE ") {
                if let (Some(addr), Some(how)) = (w.first(), w.get(1)) {
                    r.lease.get_or_insert((addr.clone(), how.clone()));
                }
            } else if let Some(w) = after(line, "VMLAB-PING ") {
                if let (Some(addr), Some(sent), Some(received)) =
                    (w.first(), value(&w, "sent"), value(&w, "received"))
                {
                    r.pings.push((addr.clone(), sent, received));
                }
            } else if let Some(w) = after(line, "VMLAB-RESULT ") {
                match w.first().map(String::as_str) {
                    Some("PASS") => r.result = r.result.or(Some(true)),
                    Some("FAIL") => r.result = r.result.or(Some(false)),
                    _ => {}
                }
            }
        }
        r
    }
}

/// The demo's VM while it runs: QEMU is killed and the directory with its socket and
/// console removed when dropped.
struct DemoVm {
    child: std::process::Child,
    dir: tempdir::Dir,
}

impl DemoVm {
    /// The guest's console so far.
    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// Wait until the guest printed its result (or QEMU exited, or `deadline`, or Ctrl-C).
    fn wait(
        &mut self,
        deadline: std::time::Instant,
        stop: &std::sync::atomic::AtomicBool,
    ) -> guest::Report {
        loop {
            let report = guest::parse_console(&self.console());
            let exited = !matches!(self.child.try_wait(), Ok(None));
            if report.result.is_some()
                || exited
                || std::time::Instant::now() > deadline
                || stop.load(Ordering::Relaxed)
            {
                // What the console says now (QEMU may have exited just after the last read).
                return guest::parse_console(&self.console());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for DemoVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo VM's port, MAC (a fixed one: the same lease every run) and what it pings.
const VM_PORT: &str = "vm0";
const VM_MAC: &str = "52:54:00:00:01:0c";
const VM_PINGS: [(&str, &str); 2] = [("gateway", "192.168.1.1"), ("web", "198.51.100.10")];

/// Why the demo runs without its VM, or the guest image to boot.
fn vm_image() -> Result<guest::Image, String> {
    if !guest::have("qemu-system-x86_64") {
        return Err(
            "qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)".into(),
        );
    }
    let dir = std::env::var_os("NFV_GUEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| guest::DEFAULT_DIR.into());
    guest::build(&dir)
}

/// The demo topology with a vhost-user port in client mode on `socket`, linked to the LAN
/// switch.
fn with_vm(text: &str, socket: &Path) -> Result<String, String> {
    let port = format!(
        "ports:\n  {VM_PORT}: {{ kind: vhost-user, socket: {}, mode: client }}\n",
        socket.display()
    );
    if !text.contains("\nports:\n") || !text.contains("\nlinks:\n") {
        return Err("the built-in topology has no ports or links section".into());
    }
    let mut out = text.replacen("\nports:\n", &format!("\n{port}"), 1);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("  - [{VM_PORT}, lan]\n"));
    Ok(out)
}

/// Start QEMU for the demo VM; its socket and console in a fresh directory. QEMU creates
/// the socket and waits; nfv (client mode) connects once it runs.
fn boot_vm(image: &guest::Image) -> Result<(DemoVm, std::path::PathBuf), String> {
    let dir = tempdir::Dir::new("nfv-demo-vm").map_err(|e| format!("temporary directory: {e}"))?;
    let socket = dir.path().join("vm0.sock");
    let append = format!(
        "vmlab.ping={} vmlab.count=3",
        VM_PINGS.map(|(_, a)| a).join(",")
    );
    let args = guest::qemu_args(
        image,
        &socket,
        true,
        VM_MAC,
        &dir.path().join("console.log"),
        &append,
    );
    let stderr =
        std::fs::File::create(dir.path().join("qemu.log")).map_err(|e| format!("QEMU log: {e}"))?;
    let child = std::process::Command::new("qemu-system-x86_64")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-x86_64: {e}"))?;
    Ok((DemoVm { child, dir }, socket))
}

/// Run the demo.
pub fn run() -> ExitCode {
    for (prog, package) in [("ping", "iputils-ping"), ("busybox", "busybox")] {
        if std::process::Command::new(prog)
            .arg("--help")
            .output()
            .is_err()
        {
            errln!("nfv demo: `{prog}` is not installed (Debian: apt-get install {package})");
            return ExitCode::FAILURE;
        }
    }
    let stop = stop_flag();
    let mut text = DEMO_TOPOLOGY.replacen("name: home\n", "name: demo\n", 1);
    // The VM, when QEMU is installed: booted now (QEMU waits for nfv to connect to its
    // socket), its port added to the topology.
    let mut vm = None;
    let vm_skipped = match vm_image().and_then(|image| {
        let (v, socket) = boot_vm(&image)?;
        Ok((v, with_vm(&text, &socket)?))
    }) {
        Ok((v, t)) => {
            vm = Some(v);
            text = t;
            None
        }
        Err(why) => Some(why),
    };
    let vm_started = std::time::Instant::now();
    let topo = match topology::load_str(&text, Path::new("<builtin demo>")) {
        Ok(t) => t,
        Err(e) => {
            errln!("nfv demo: the built-in topology is broken: {e}");
            return ExitCode::FAILURE;
        }
    };
    outln!(
        "nfv demo: a home gateway (topologies/home-gateway.yaml) with {} hosts in network\n\
         namespaces. alice and bob take addresses from nfv's DHCP server; the LAN reaches the\n\
         internet through nfv's router, NAT and stateful firewall; the NAS is reachable from\n\
         outside through a port forward.",
        topo.hosts.len()
    );
    match &vm_skipped {
        None => {
            outln!("A VM (QEMU, a busybox guest) joins the LAN on vhost-user port {VM_PORT}.\n")
        }
        Some(why) => outln!("VM part skipped: {why}.\n"),
    }
    let running = match run::start(&topo) {
        Ok(r) => r,
        Err(e) => {
            errln!("nfv demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report { failures: 0 };
    // Every host's address: static, or the lease its DHCP client took (wait for it).
    let mut hosts: Vec<(String, String, Option<String>)> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for h in &running.plan().hosts {
        let dhcp = h.interfaces.first().is_some_and(|i| i.address.is_none());
        let addr = match h.interfaces.first().and_then(|i| i.address) {
            Some(a) => Some(a.ip().to_string()),
            None => wait_for_address(&h.netns, "eth0", deadline, &stop),
        };
        let how = if dhcp { "from DHCP" } else { "static" };
        report.check(
            addr.is_some(),
            &format!(
                "host {:<7} namespace {:<17} eth0 {:<15} ({how})",
                h.name,
                h.netns,
                addr.as_deref().unwrap_or("no lease in 20 s")
            ),
        );
        hosts.push((h.name.clone(), h.netns.clone(), addr));
    }
    let ns = |name: &str| {
        hosts
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, ns, _)| ns.clone())
            .unwrap_or_default()
    };
    let addr = |name: &str| {
        hosts
            .iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, _, a)| a.clone())
    };

    outln!("\nOn the LAN, and out through the NAT (ip netns exec NS ping -c 3 ADDR):");
    for (from, to) in [
        ("alice", "bob"),
        ("bob", "nas"),
        ("alice", "web"),
        ("bob", "web"),
    ] {
        if let Some(a) = addr(to) {
            if !stop.load(Ordering::Relaxed) {
                report.ping(from, &ns(from), to, &a);
            }
        }
    }
    report.ping("visitor", &ns("visitor"), "gateway", "203.0.113.2");

    outln!("\nHTTP (busybox httpd and nc; /cgi-bin/whoami prints the address the server sees):");
    let servers = (|| -> std::io::Result<_> {
        let web_dir = web_root("web")?;
        let nas_dir = web_root("nas")?;
        let web = httpd(&ns("web"), web_dir.path())?;
        let nas = httpd(&ns("nas"), nas_dir.path())?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok((web, nas, web_dir, nas_dir))
    })();
    match servers {
        Err(e) => report.check(false, &format!("web servers did not start: {e}")),
        Ok(_servers) => {
            let got = fetch(&ns("alice"), "198.51.100.10", 80, "/cgi-bin/whoami", 3);
            report.check(
                got.as_deref() == Ok("web sees you as 203.0.113.2\n"),
                &format!(
                    "alice   -> web: {}",
                    got.as_deref().unwrap_or_else(|e| e).trim()
                ),
            );
            let got = fetch(&ns("visitor"), "203.0.113.2", 8080, "/cgi-bin/whoami", 3);
            report.check(
                got.as_deref() == Ok("nas sees you as 198.51.100.20\n"),
                &format!(
                    "visitor -> 203.0.113.2:8080 (forwarded to nas:80): {}",
                    got.as_deref().unwrap_or_else(|e| e).trim()
                ),
            );
            let got = fetch(&ns("bob"), "203.0.113.2", 8080, "/cgi-bin/whoami", 3);
            report.check(
                got.as_deref() == Ok("nas sees you as 203.0.113.2\n"),
                &format!(
                    "bob     -> 203.0.113.2:8080 (hairpin NAT): {}",
                    got.as_deref().unwrap_or_else(|e| e).trim()
                ),
            );
            let got = fetch(&ns("visitor"), "203.0.113.2", 80, "/", 1);
            report.check(
                got.is_err(),
                &format!(
                    "visitor -> 203.0.113.2:80 (not forwarded): {}",
                    match &got {
                        Ok(_) => "answered".to_string(),
                        Err(_) => "dropped by the firewall (timed out)".to_string(),
                    }
                ),
            );
            let got = fetch(&ns("bob"), "198.51.100.10", 25, "/", 3);
            report.check(
                got.as_ref().is_err_and(|e| e.contains("refused")),
                &format!(
                    "bob     -> web:25 (SMTP out is rejected): {}",
                    got.as_ref().err().map_or("answered", |e| e.as_str())
                ),
            );
        }
    }
    if let Some(mut v) = vm.take() {
        outln!(
            "\nA VM on vhost-user port {VM_PORT} (QEMU created the socket, nfv connected to it; \
             the guest says\non its serial console what it did):"
        );
        let r = v.wait(vm_started + std::time::Duration::from_secs(120), &stop);
        let lease = r.lease.as_ref().map(|(a, how)| {
            let how = if how == "dhcp" {
                "from DHCP"
            } else {
                how.as_str()
            };
            format!("{:<15} ({how})", a.split('/').next().unwrap_or(a))
        });
        report.check(
            lease.is_some(),
            &format!(
                "vm      port {VM_PORT:<6} mac {VM_MAC} eth0 {}",
                lease.as_deref().unwrap_or("no lease")
            ),
        );
        for (to, addr) in VM_PINGS {
            match r.pings.iter().find(|(a, _, _)| a == addr) {
                Some((_, sent, received)) => report.check(
                    sent == received && *sent > 0,
                    &format!(
                        "{:>7} -> {to:<8} {addr:<15} {received}/{sent} replies",
                        "vm"
                    ),
                ),
                None => report.check(
                    false,
                    &format!("{:>7} -> {to:<8} {addr:<15} no ping reported", "vm"),
                ),
            }
        }
        if r.result != Some(true) {
            report.check(false, "vm      the guest did not report success");
            errln!("nfv demo: the VM's console:\n{}", v.console());
        }
    }
    outln!();
    for (name, stats) in running.switch_stats() {
        outln!(
            "switch {name}: learned {} MAC addresses, flooded {} frames (broadcast ARP and unknown unicast)",
            stats.entries.get(),
            stats.flooded.get()
        );
    }
    for (name, stats) in running.dhcp_stats() {
        outln!(
            "dhcp-server {name}: {} discovers, {} offers, {} requests, {} acks, {} naks",
            stats.discovers.get(),
            stats.offers.get(),
            stats.requests.get(),
            stats.acks.get(),
            stats.naks.get()
        );
    }
    outln!("\nPort counters:");
    let code = finish(&running, Ok(()));
    if report.failures > 0 {
        outln!("nfv demo: {} checks FAILED", report.failures);
        return ExitCode::FAILURE;
    }
    if code == ExitCode::SUCCESS {
        let vm = if vm_skipped.is_none() {
            ", the VM did too over its vhost-user port"
        } else {
            ""
        };
        outln!(
            "nfv demo: OK, the LAN hosts got addresses from nfv's DHCP server and reached the \
             internet through nfv's router, NAT and firewall{vm}; the outside reached the NAS \
             only through the port forward"
        );
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_of_ip_addr_show() {
        let out = "2: eth0    inet 10.0.1.100/24 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(parse_inet(out).as_deref(), Some("10.0.1.100"));
        assert_eq!(parse_inet(""), None);
        assert_eq!(parse_inet("2: eth0    inet"), None);
    }

    #[test]
    fn reads_ping_summaries() {
        let out = "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.081 ms\n\n--- 10.0.0.2 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 405ms\nrtt min/avg/max/mdev = 0.061/0.072/0.081/0.008 ms\n";
        assert_eq!(
            parse_ping(out),
            Some(PingResult {
                sent: 3,
                received: 3,
                avg_ms: Some(0.072)
            })
        );
        let lost = "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2030ms\n";
        assert_eq!(
            parse_ping(lost),
            Some(PingResult {
                sent: 3,
                received: 0,
                avg_ms: None
            })
        );
        assert_eq!(parse_ping("garbage"), None);
    }

    #[test]
    fn reads_guest_consoles() {
        let console = "[    2.1] random kernel line\r\n\
            VMLAB-INIT kernel=6.1.0 addr=dhcp\n\
            VMLAB-LEASE 192.168.1.123/24 dhcp router=192.168.1.1 server=192.168.1.2\n\
            noise VMLAB-PING 192.168.1.1 ok sent=3 received=3 uptime=5.0\n\
            VMLAB-PING 198.51.100.10 fail sent=3 received=1 uptime=7.0\n\
            VMLAB-RESULT FAIL reason=no-reply:198.51.100.10 uptime=7.1\n";
        let r = guest::parse_console(console);
        assert_eq!(
            r.lease,
            Some(("192.168.1.123/24".to_string(), "dhcp".to_string()))
        );
        assert_eq!(
            r.pings,
            vec![
                ("192.168.1.1".to_string(), 3, 3),
                ("198.51.100.10".to_string(), 3, 1)
            ]
        );
        assert_eq!(r.result, Some(false));
        assert_eq!(guest::parse_console("VMLAB-RESULT PASS").result, Some(true));
        assert_eq!(
            guest::parse_console("garbage\nVMLAB-PING x"),
            guest::Report::default()
        );
    }

    #[test]
    fn the_builtin_topology_takes_a_vm() {
        let text = with_vm(DEMO_TOPOLOGY, Path::new("/tmp/nfv-demo-vm.1/vm0.sock"))
            .unwrap_or_else(|e| panic!("{e}"));
        let topo = topology::load_str(&text, Path::new("<builtin demo>"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(topo.ports.iter().any(|p| p.name == VM_PORT), "{text}");
    }

    #[test]
    fn the_builtin_topology_loads() {
        let topo = topology::load_str(DEMO_TOPOLOGY, Path::new("<builtin demo>"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(topo.hosts.len() >= 3);
    }
}
