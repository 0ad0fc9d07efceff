//! Lab hosts as network namespaces.
//!
//! `nfv run` plays each lab host of a topology with a network namespace: the host's TAP
//! devices (created elsewhere, in the root namespace, under temporary names, their file
//! descriptors held by the dataplane) move into it and become `eth0`, `eth1`, ... with their
//! MTU, MAC, address and the default route. A [`Lab`] records everything it created and
//! removes it when it is torn down or dropped (Ctrl-C, SIGTERM, error, panic unwinding).
//!
//! A run claims its topology with a pid file (`/run/nfv/<topology>.pid`). Namespaces left by
//! a killed earlier run are found at the next claim and removed with a warning. Every
//! namespace nfv creates carries an ownership mark, the alias `nfv:<topology>` on its `lo`
//! device, so that a leftover is told apart from a namespace someone else made; a namespace
//! without the mark is only taken for a leftover when its name has the default form
//! `nfv-<topology>-<host>`.
//!
//! Everything goes through the `ip` command (iproute2), plus `sysctl` and `kill` (procps)
//! run by it or beside it; a failed command becomes a [`LabError::Command`] naming the full
//! command line and what the command wrote on stderr.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnetwork::{Ipv4Network, Ipv6Network};
use nfv_dataplane::MacAddr;

/// Where `nfv run` keeps its pid files.
pub const STATE_DIR: &str = "/run/nfv";

/// Where iproute2 keeps named network namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Prefix of the alias set on `lo` of every namespace nfv creates; the topology follows.
const MARK_PREFIX: &str = "nfv:";

/// How long processes inside a namespace get to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(200);

/// How long to wait for processes to vanish after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Pid files claimed by live [`Lab`]s of this process.
static CLAIMED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Errors of lab setup and teardown.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command ran and failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The full command line.
        command: String,
        /// What it wrote on stderr (or how it ended, if it wrote nothing).
        stderr: String,
    },
    /// A command could not be started.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The full command line.
        command: String,
        /// Why it could not start.
        source: io::Error,
    },
    /// Another nfv process runs the topology.
    #[error("topology `{topology}` is already running (pid {pid}); stop it first")]
    AlreadyRunning {
        /// The topology.
        topology: String,
        /// The process running it.
        pid: u32,
    },
    /// A namespace the topology needs exists and is not nfv's.
    #[error("network namespace `{0}` exists and was not created by nfv; remove it or choose another name")]
    ForeignNamespace(String),
    /// A device nfv is about to create exists already.
    #[error("network device `{0}` already exists in the root namespace")]
    DeviceExists(String),
    /// A state file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

/// One interface of a lab host: a TAP device that moves into the host's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfacePlan {
    /// The TAP's current name in the root namespace.
    pub tap: String,
    /// Its name inside the host: `eth0`, `eth1`, ...
    pub ifname: String,
    /// MTU.
    pub mtu: u16,
    /// MAC address; the kernel's random one if `None`.
    pub mac: Option<MacAddr>,
    /// IPv4 address and prefix; none (e.g. for DHCP) if `None`.
    pub address: Option<Ipv4Network>,
    /// IPv6 addresses and prefixes (added without duplicate address detection: the lab
    /// gave them).
    pub addresses6: Vec<Ipv6Network>,
}

/// One lab host: a network namespace with its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPlan {
    /// The host's name in the topology.
    pub name: String,
    /// The namespace's name (see [`netns_name`]).
    pub netns: String,
    /// Default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 default gateway, if any (else router advertisements give one).
    pub gateway6: Option<Ipv6Addr>,
    /// IPv6 on in the host (accepting router advertisements), or off.
    pub ipv6: bool,
    /// Interfaces, in `eth0`, `eth1`, ... order.
    pub interfaces: Vec<IfacePlan>,
}

/// Default namespace name of a host: `nfv-<topology>-<host>` (like containerlab's
/// clab-<lab>-<node>).
pub fn netns_name(topology: &str, host: &str) -> String {
    format!("nfv-{topology}-{host}")
}

/// Everything nfv created for one running topology; dropping it removes all of it (best
/// effort, logging failures, never panicking).
///
/// Root-namespace TAP devices are only configured here ([`Lab::add_root_device`]); they
/// vanish when the dataplane closes their file descriptors. TAPs moved into a host vanish
/// with its namespace.
#[derive(Debug)]
pub struct Lab {
    topology: String,
    pid_file: PathBuf,
    /// Whether the pid file is still ours to remove.
    claimed: bool,
    namespaces: Vec<String>,
    root_devices: Vec<String>,
    /// DHCP clients started in hosts (stopped with their namespaces, reaped here) and
    /// their log files (removed at teardown).
    clients: Vec<(std::process::Child, PathBuf)>,
}

/// What a pid file says.
enum PidFile {
    /// There is none.
    Missing,
    /// It names no live nfv process other than us (or is unreadable garbage).
    Stale(String),
    /// It names a live nfv process other than us.
    Live(u32),
}

impl Lab {
    /// Claim the topology, with the pid file in [`STATE_DIR`]; see [`Lab::claim_in`].
    pub fn claim(topology: &str, netns_names: &[String]) -> Result<Lab, LabError> {
        Self::claim_in(Path::new(STATE_DIR), topology, netns_names)
    }

    /// Claim the topology: check `<state_dir>/<topology>.pid` (creating `state_dir` with mode
    /// 0755 if missing). If it names a live process whose `/proc/PID/comm` is `nfv`, other
    /// than us, or this process holds the claim already -> [`LabError::AlreadyRunning`].
    ///
    /// Then for each existing namespace of `netns_names`:
    /// - one carrying the mark of this topology, or without mark but named
    ///   `nfv-<topology>-...`, is a leftover of an earlier run: the processes inside are
    ///   killed (SIGTERM, then SIGKILL after ~200 ms) and it is deleted, with a warning;
    /// - one carrying the mark of another topology is a leftover of that one unless that
    ///   topology runs ([`LabError::AlreadyRunning`] naming it);
    /// - any other is [`LabError::ForeignNamespace`], and is left alone.
    ///
    /// Finally writes our pid to the pid file (temporary file + rename).
    pub fn claim_in(
        state_dir: &Path,
        topology: &str,
        netns_names: &[String],
    ) -> Result<Lab, LabError> {
        let pid_file = state_dir.join(format!("{topology}.pid"));
        if !valid_name(topology) {
            return Err(LabError::Io {
                path: pid_file,
                source: io::Error::new(io::ErrorKind::InvalidInput, "invalid topology name"),
            });
        }
        if !state_dir.is_dir() {
            // 0755 whatever the umask: other users may read which topologies run.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(state_dir)
                .and_then(|()| {
                    std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o755))
                })
                .map_err(|source| LabError::Io {
                    path: state_dir.to_path_buf(),
                    source,
                })?;
        }
        let me = std::process::id();

        let mut claimed = claimed_set();
        if claimed.as_ref().is_some_and(|s| s.contains(&pid_file)) {
            return Err(LabError::AlreadyRunning {
                topology: topology.to_string(),
                pid: me,
            });
        }
        match read_pid_file(&pid_file)? {
            PidFile::Live(pid) => {
                return Err(LabError::AlreadyRunning {
                    topology: topology.to_string(),
                    pid,
                })
            }
            PidFile::Stale(what) => {
                tracing::info!(topology, pid_file = %pid_file.display(), %what, "stale pid file from an earlier run");
            }
            PidFile::Missing => {}
        }

        let prefix = format!("nfv-{topology}-");
        let mut seen = HashSet::new();
        for ns in netns_names {
            if !seen.insert(ns.as_str()) || !netns_exists(ns) {
                continue;
            }
            let leftover = match netns_mark(ns) {
                Some(owner) if owner == topology => true,
                Some(owner) if valid_name(&owner) => {
                    let other = state_dir.join(format!("{owner}.pid"));
                    if claimed.as_ref().is_some_and(|s| s.contains(&other)) {
                        return Err(LabError::AlreadyRunning {
                            topology: owner,
                            pid: me,
                        });
                    }
                    if let PidFile::Live(pid) = read_pid_file(&other)? {
                        return Err(LabError::AlreadyRunning {
                            topology: owner,
                            pid,
                        });
                    }
                    true
                }
                _ => ns.starts_with(&prefix),
            };
            if !leftover {
                return Err(LabError::ForeignNamespace(ns.clone()));
            }
            remove_netns(ns)?;
            tracing::warn!("removed leftover namespace {ns} from an earlier run");
        }

        let tmp = state_dir.join(format!(".{topology}.pid.{me}.tmp"));
        std::fs::write(&tmp, format!("{me}\n")).map_err(|source| LabError::Io {
            path: tmp.clone(),
            source,
        })?;
        if let Err(source) = std::fs::rename(&tmp, &pid_file) {
            let _ = std::fs::remove_file(&tmp);
            return Err(LabError::Io {
                path: pid_file,
                source,
            });
        }
        claimed
            .get_or_insert_with(HashSet::new)
            .insert(pid_file.clone());
        tracing::debug!(topology, pid_file = %pid_file.display(), "claimed");
        Ok(Lab {
            topology: topology.to_string(),
            pid_file,
            claimed: true,
            namespaces: Vec::new(),
            root_devices: Vec::new(),
            clients: Vec::new(),
        })
    }

    /// Check that none of `names` exists as a device in the root namespace (for TAPs we are
    /// about to create under fixed names) -> [`LabError::DeviceExists`].
    pub fn check_free_devices(names: &[String]) -> Result<(), LabError> {
        match names.iter().find(|n| device_exists(n)) {
            Some(n) => Err(LabError::DeviceExists(n.clone())),
            None => Ok(()),
        }
    }

    /// Create the host's namespace and record it (so that teardown removes it even if a
    /// later step fails); mark it as nfv's; turn IPv6 off in it unless the plan has it on
    /// (an IPv4-only host sends no router solicitations or MLD reports into the
    /// dataplane), and where on, accept router advertisements; bring `lo` up; then move
    /// each TAP in, rename it, set MTU and MAC, add the addresses, bring it up; then the
    /// default routes.
    pub fn add_host(&mut self, host: &HostPlan) -> Result<(), LabError> {
        let ns = host.netns.as_str();
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_string());
        tracing::info!(host = %host.name, netns = ns, "created namespace");

        let mark = format!("{MARK_PREFIX}{}", self.topology);
        ip(&["-n", ns, "link", "set", "dev", "lo", "alias", &mark])?;
        // Before any interface moves in: `default` covers the moved ones, `all` the rest.
        if Path::new("/proc/sys/net/ipv6").exists() {
            let off = if host.ipv6 { "0" } else { "1" };
            let all = format!("net.ipv6.conf.all.disable_ipv6={off}");
            let default = format!("net.ipv6.conf.default.disable_ipv6={off}");
            let mut args = vec!["netns", "exec", ns, "sysctl", "-q", "-w", &all, &default];
            if host.ipv6 {
                // A host, not a router: take advertisements (SLAAC, the default route).
                args.extend([
                    "net.ipv6.conf.all.forwarding=0",
                    "net.ipv6.conf.default.accept_ra=1",
                ]);
            }
            run("ip", &args)?;
        } else if host.ipv6 {
            return Err(LabError::Command {
                command: format!("IPv6 for host `{}`", host.name),
                stderr: "this kernel has no IPv6 (/proc/sys/net/ipv6 is missing)".into(),
            });
        }
        ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;

        for iface in &host.interfaces {
            let ifname = iface.ifname.as_str();
            ip(&["link", "set", "dev", &iface.tap, "netns", ns])?;
            // A device moved into a namespace is down, so it can be renamed.
            if iface.tap != iface.ifname {
                ip(&["-n", ns, "link", "set", "dev", &iface.tap, "name", ifname])?;
            }
            let mtu = iface.mtu.to_string();
            ip(&["-n", ns, "link", "set", "dev", ifname, "mtu", &mtu])?;
            if let Some(mac) = iface.mac {
                let mac = mac.to_string();
                ip(&["-n", ns, "link", "set", "dev", ifname, "address", &mac])?;
            }
            if let Some(addr) = iface.address {
                let cidr = addr.to_string();
                ip(&["-n", ns, "addr", "add", &cidr, "dev", ifname])?;
            }
            for addr in &iface.addresses6 {
                let cidr = addr.to_string();
                ip(&["-n", ns, "-6", "addr", "add", &cidr, "dev", ifname, "nodad"])?;
            }
            ip(&["-n", ns, "link", "set", "dev", ifname, "up"])?;
            tracing::debug!(netns = ns, tap = %iface.tap, ifname, "interface ready");
            if iface.address.is_none() && iface.addresses6.is_empty() {
                self.start_dhcp_client(ns, ifname, &host.name)?;
            }
        }

        if let Some(gw) = host.gateway {
            let gw = gw.to_string();
            ip(&["-n", ns, "route", "add", "default", "via", &gw])?;
        }
        if let Some(gw) = host.gateway6 {
            let via = gw.to_string();
            let mut args = vec!["-n", ns, "-6", "route", "add", "default", "via", &via];
            if gw.is_unicast_link_local() {
                // A link-local gateway needs its interface (the host's only one: checked).
                args.extend(["dev", host.interfaces.first().map_or("eth0", |i| &i.ifname)]);
            }
            ip(&args)?;
        }
        Ok(())
    }

    /// Run busybox's `udhcpc` on `ifname` inside `ns`, in the background, with nfv's event
    /// script: it takes a lease, sets the address and default route, and renews until the
    /// namespace is torn down (teardown stops every process inside). Its log goes to
    /// `/run/nfv/<netns>.<ifname>.dhcp.log`.
    fn start_dhcp_client(&mut self, ns: &str, ifname: &str, host: &str) -> Result<(), LabError> {
        if !in_path("busybox") {
            return Err(LabError::Command {
                command: format!("udhcpc for host `{host}`"),
                stderr: "busybox is not installed: hosts without a static address run busybox's DHCP client (apt-get install busybox)".into(),
            });
        }
        let script = udhcpc_script()?;
        let log_path = Path::new(STATE_DIR).join(format!("{ns}.{ifname}.dhcp.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| LabError::Command {
            command: format!("create {}", log_path.display()),
            stderr: e.to_string(),
        })?;
        let err = log.try_clone().map_err(|e| LabError::Command {
            command: format!("dup {}", log_path.display()),
            stderr: e.to_string(),
        })?;
        let hostname = format!("hostname:{host}");
        let script = script.to_string_lossy().into_owned();
        let args = [
            "netns", "exec", ns, "busybox", "udhcpc", "-f", "-i", ifname, "-s", &script, "-x",
            &hostname, "-t", "10", "-T", "1", "-A", "2",
        ];
        let child = Command::new("ip")
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::Command {
                command: command_line("ip", &args),
                stderr: format!("{e} (is busybox installed? apt-get install busybox)"),
            })?;
        tracing::info!(
            netns = ns,
            ifname,
            pid = child.id(),
            "started DHCP client (udhcpc)"
        );
        self.clients.push((child, log_path));
        Ok(())
    }

    /// For a TAP that stays in the root namespace: set its MTU and bring it up.
    pub fn add_root_device(&mut self, name: &str, mtu: u16) -> Result<(), LabError> {
        let mtu = mtu.to_string();
        ip(&["link", "set", "dev", name, "mtu", &mtu])?;
        ip(&["link", "set", "dev", name, "up"])?;
        self.root_devices.push(name.to_string());
        tracing::debug!(device = name, "root device ready");
        Ok(())
    }

    /// Remove one host's namespace now (a reload took the host away or sets it up again):
    /// the processes inside are killed, and the TAP devices inside vanish with it.
    pub fn remove_host(&mut self, netns: &str) -> Result<(), LabError> {
        remove_netns(netns)?;
        self.namespaces.retain(|n| n != netns);
        tracing::info!(netns, "removed namespace");
        Ok(())
    }

    /// Forget a root-namespace device that is gone (its port was closed).
    pub fn forget_root_device(&mut self, name: &str) {
        self.root_devices.retain(|d| d != name);
    }

    /// Names of namespaces created so far (and not yet removed).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Root-namespace devices configured so far.
    pub fn root_devices(&self) -> &[String] {
        &self.root_devices
    }

    /// The topology this lab belongs to.
    pub fn topology(&self) -> &str {
        &self.topology
    }

    /// The pid file claiming the topology.
    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }

    /// Remove everything now: kill the processes still running inside each namespace
    /// (SIGTERM, then SIGKILL), delete the namespaces (last created first), remove the pid
    /// file. Idempotent; returns the first error but goes on with the rest. A namespace that
    /// could not be removed stays recorded, so a later call (or drop) tries again.
    pub fn teardown(&mut self) -> Result<(), LabError> {
        let mut first: Option<LabError> = None;
        let mut kept = Vec::new();
        while let Some(ns) = self.namespaces.pop() {
            match remove_netns(&ns) {
                Ok(()) => tracing::info!(netns = %ns, "removed namespace"),
                Err(e) => {
                    tracing::warn!(netns = %ns, error = %e, "could not remove namespace");
                    first.get_or_insert(e);
                    kept.push(ns);
                }
            }
        }
        kept.reverse();
        self.namespaces = kept;
        for (mut c, log) in self.clients.drain(..) {
            // Stopped with its namespace; kill it anyway if it was somewhere else.
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::fs::remove_file(log);
        }
        self.root_devices.clear();

        if self.claimed {
            self.claimed = false;
            if let Some(set) = claimed_set().as_mut() {
                set.remove(&self.pid_file);
            }
            if let Err(e) = release_pid_file(&self.pid_file) {
                tracing::warn!(error = %e, "could not remove the pid file");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(topology = %self.topology, error = %e, "lab teardown incomplete");
        }
    }
}

/// The udhcpc event script: `deconfig` clears the interface's IPv4 addresses; `bound` and
/// `renew` set the leased address (unless it is already there, so a renewal never breaks
/// open connections) and the default route from the `router` option. It never touches
/// /etc/resolv.conf, which the namespace shares with the machine.
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# udhcpc event script, written by nfv for its lab hosts.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
  bound|renew)
    event=$1
    if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/$mask "; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/$mask" dev "$interface"
    fi
    if [ -n "$router" ]; then
      set -- $router
      ip route replace default via "$1" dev "$interface"
    fi
    echo "nfv-udhcpc: $event $interface $ip/$mask router=${router:-none} lease=${lease:-?}"
    ;;
esac
exit 0
"#;

/// True if `prog` is an executable file in one of `$PATH`'s directories.
fn in_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(prog))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Write the udhcpc event script into [`STATE_DIR`] (mode 0755) and return its path.
fn udhcpc_script() -> Result<PathBuf, LabError> {
    let path = Path::new(STATE_DIR).join("udhcpc.script");
    let fail = |e: io::Error| LabError::Command {
        command: format!("write {}", path.display()),
        stderr: e.to_string(),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(STATE_DIR)
        .map_err(fail)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, UDHCPC_SCRIPT).map_err(fail)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(path)
}

/// Run a command inside a namespace and capture its output: `ip netns exec NS prog args..`.
pub fn exec_in(netns: &str, prog: &str, args: &[&str]) -> io::Result<Output> {
    Command::new("ip")
        .args(["netns", "exec", netns, prog])
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// Does a namespace with this name exist (`/run/netns/NAME`)?
pub fn netns_exists(name: &str) -> bool {
    valid_name(name) && Path::new(NETNS_DIR).join(name).exists()
}

/// Does a device with this name exist in the root namespace (`/sys/class/net/NAME`)?
pub fn device_exists(name: &str) -> bool {
    valid_name(name) && Path::new("/sys/class/net").join(name).exists()
}

/// A name usable as one path component.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

fn claimed_set() -> MutexGuard<'static, Option<HashSet<PathBuf>>> {
    CLAIMED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The command line as one would type it.
fn command_line(prog: &str, args: &[&str]) -> String {
    let mut line = prog.to_string();
    for a in args {
        line.push(' ');
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.,:/=+@%".contains(c));
        if plain {
            line.push_str(a);
        } else {
            line.push('\'');
            line.push_str(&a.replace('\'', r"'\''"));
            line.push('\'');
        }
    }
    line
}

/// Run `prog args..`; its stdout if it succeeds.
fn run(prog: &str, args: &[&str]) -> Result<String, LabError> {
    let command = command_line(prog, args);
    tracing::debug!(%command, "running");
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.is_empty() {
        stderr = format!("{} (no message)", out.status);
    }
    Err(LabError::Command { command, stderr })
}

fn ip(args: &[&str]) -> Result<String, LabError> {
    run("ip", args)
}

/// The topology named by the mark on `lo` of namespace `ns`, if any.
fn netns_mark(ns: &str) -> Option<String> {
    // With -o, the lines of one device are joined by backslashes: "... \    alias nfv:x".
    let out = ip(&["-n", ns, "-o", "link", "show", "dev", "lo"]).ok()?;
    out.split('\\')
        .filter_map(|part| part.trim().strip_prefix("alias "))
        .find_map(|alias| alias.trim().strip_prefix(MARK_PREFIX))
        .map(str::to_string)
}

fn read_pid_file(path: &Path) -> Result<PidFile, LabError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PidFile::Missing),
        Err(source) => {
            return Err(LabError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let text = text.trim();
    Ok(match text.parse::<u32>() {
        Ok(pid) if pid != std::process::id() && is_nfv(pid) => PidFile::Live(pid),
        Ok(pid) => PidFile::Stale(format!("pid {pid} is not a running nfv")),
        Err(_) => PidFile::Stale(format!("unreadable content {text:?}")),
    })
}

/// Remove our pid file, unless it names another process by now.
fn release_pid_file(path: &Path) -> Result<(), LabError> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim() != std::process::id().to_string() => {
            tracing::debug!(pid_file = %path.display(), "pid file names another process; left alone");
            Ok(())
        }
        Ok(_) => std::fs::remove_file(path).or_else(|source| match source.kind() {
            io::ErrorKind::NotFound => Ok(()),
            _ => Err(LabError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LabError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Is `pid` a live (not zombie) process?
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (comm) S ...": the state follows the last ')'.
    match stat.rsplit_once(')') {
        Some((_, rest)) => !matches!(rest.trim_start().chars().next(), Some('Z' | 'X') | None),
        None => false,
    }
}

fn is_nfv(pid: u32) -> bool {
    alive(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "nfv")
}

/// Processes inside namespace `ns` (never us, never init).
fn netns_pids(ns: &str) -> Result<Vec<u32>, LabError> {
    let me = std::process::id();
    Ok(ip(&["netns", "pids", ns])?
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|&p| p > 1 && p != me)
        .collect())
}

fn signal(pids: &[u32], sig: &str) {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut args = vec!["-s", sig];
    args.extend(pids.iter().map(String::as_str));
    // Fails if one exited meanwhile; that is fine.
    if let Err(e) = run("kill", &args) {
        tracing::debug!(error = %e, "kill");
    }
}

/// Wait up to `grace` for `pids` to exit; those still alive.
fn wait_gone(pids: &[u32], grace: Duration) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || start.elapsed() >= grace {
            return left;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stop the processes inside `ns`: SIGTERM, then SIGKILL for those still there.
fn kill_inside(ns: &str) -> Result<(), LabError> {
    let pids = netns_pids(ns)?;
    if pids.is_empty() {
        return Ok(());
    }
    tracing::info!(netns = ns, ?pids, "stopping processes inside namespace");
    signal(&pids, "TERM");
    let left = wait_gone(&pids, TERM_GRACE);
    if left.is_empty() {
        return Ok(());
    }
    tracing::warn!(netns = ns, pids = ?left, "processes ignored SIGTERM; sending SIGKILL");
    signal(&left, "KILL");
    let left = wait_gone(&left, KILL_GRACE);
    if !left.is_empty() {
        tracing::warn!(netns = ns, pids = ?left, "processes still alive after SIGKILL; the namespace lives on until they exit");
    }
    Ok(())
}

/// Kill what runs inside `ns` and delete it; nothing to do if it does not exist.
fn remove_netns(ns: &str) -> Result<(), LabError> {
    if !netns_exists(ns) {
        return Ok(());
    }
    let killed = kill_inside(ns);
    if let Err(e) = &killed {
        tracing::warn!(netns = ns, error = %e, "could not list the processes inside");
    }
    ip(&["netns", "del", ns])?;
    killed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::{Child, ExitStatus};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// True if this machine can run the lab tests; otherwise prints why and returns false,
    /// except under `CI=true`, where it panics: CI must not skip them.
    fn need_root() -> bool {
        let mut missing = Vec::new();
        let root = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
            })
            .unwrap_or(false);
        if !root {
            missing.push("root".to_string());
        }
        if !Path::new("/dev/net/tun").exists() {
            missing.push("/dev/net/tun".to_string());
        }
        for (prog, arg) in [("ip", "-V"), ("sysctl", "--version"), ("kill", "-l")] {
            if Command::new(prog).arg(arg).output().is_err() {
                missing.push(format!("`{prog}`"));
            }
        }
        if missing.is_empty() {
            return true;
        }
        let why = format!("lab test needs {}", missing.join(", "));
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why} (CI=true: lab tests must not be skipped)");
        }
        eprintln!("skipping: {why}");
        false
    }

    static SEQ: AtomicU32 = AtomicU32::new(0);

    fn seq() -> u32 {
        SEQ.fetch_add(1, Ordering::Relaxed)
    }

    /// A topology name no other test (here or in another process) uses.
    fn unique_topology() -> String {
        format!("labt-{}-{}", std::process::id(), seq())
    }

    /// A device name (at most 15 characters) no other test uses.
    fn unique_device() -> String {
        format!("lt{}-{}", std::process::id(), seq())
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let p =
                std::env::temp_dir().join(format!("nfv-lab-test-{}-{}", std::process::id(), seq()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A namespace a test creates by hand; removed (with what runs inside) on drop.
    struct Netns(String);

    impl Netns {
        fn add(name: String) -> Self {
            ip(&["netns", "add", &name]).expect("ip netns add");
            Netns(name)
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = remove_netns(&self.0);
        }
    }

    /// A persistent TAP in the root namespace; deleted on drop if still there.
    struct Tap(String);

    impl Tap {
        fn add() -> Self {
            let name = unique_device();
            ip(&["tuntap", "add", "dev", &name, "mode", "tap"]).expect("ip tuntap add");
            Tap(name)
        }
    }

    impl Drop for Tap {
        fn drop(&mut self) {
            if device_exists(&self.0) {
                let _ = ip(&["link", "del", "dev", &self.0]);
            }
        }
    }

    /// A child process, killed on drop.
    struct Proc(Child);

    impl Proc {
        fn spawn(prog: &str, args: &[&str]) -> Self {
            let child = Command::new(prog)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            Proc(child)
        }

        /// Wait up to `limit` for the process to end.
        fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
            let start = Instant::now();
            while start.elapsed() < limit {
                if let Ok(Some(status)) = self.0.try_wait() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        }
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// `sleep 60` inside namespace `ns`, once it runs there.
    fn sleeper_in(ns: &str) -> Proc {
        let p = Proc::spawn("ip", &["netns", "exec", ns, "sleep", "60"]);
        let start = Instant::now();
        while !netns_pids(ns).unwrap_or_default().contains(&p.0.id()) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "sleep did not start in {ns}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        p
    }

    /// A pid that belonged to a process that has ended.
    fn dead_pid() -> u32 {
        let mut c = Command::new("true").spawn().expect("spawn true");
        let pid = c.id();
        c.wait().expect("wait true");
        pid
    }

    fn ip_out(args: &[&str]) -> String {
        ip(args).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn netns_name_is_nfv_topology_host() {
        assert_eq!(netns_name("home-gw", "alice"), "nfv-home-gw-alice");
        assert_eq!(netns_name("t1", "H_2"), "nfv-t1-H_2");
    }

    #[test]
    fn names_with_slashes_never_exist() {
        assert!(!netns_exists(""));
        assert!(!netns_exists("../netns"));
        assert!(!device_exists("."));
        assert!(!device_exists("lo/../eth0"));
    }

    #[test]
    fn command_lines_are_quoted_for_copy_and_paste() {
        assert_eq!(
            command_line("ip", &["-n", "nfv-a-b", "addr", "add", "10.0.0.1/24"]),
            "ip -n nfv-a-b addr add 10.0.0.1/24"
        );
        assert_eq!(
            command_line("sh", &["-c", "echo 'x'", ""]),
            r"sh -c 'echo '\''x'\''' ''"
        );
        assert_eq!(
            MacAddr([2, 0, 0, 0xaa, 0xbb, 0xc]).to_string(),
            "02:00:00:aa:bb:0c"
        );
    }

    #[test]
    fn failed_command_names_command_line_and_stderr() {
        if !need_root() {
            return;
        }
        let dev = unique_device();
        let err = ip(&["link", "set", "dev", &dev, "up"]).expect_err("no such device");
        match &err {
            LabError::Command { command, stderr } => {
                assert_eq!(command, &format!("ip link set dev {dev} up"));
                assert!(
                    stderr.contains(&dev) || stderr.contains("not exist"),
                    "{stderr}"
                );
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with(&format!("`ip link set dev {dev} up` failed: ")));
        let err = run("nfv-no-such-program", &["x"]).expect_err("no such program");
        assert!(matches!(err, LabError::Spawn { .. }), "{err:?}");
        assert!(err.to_string().contains("nfv-no-such-program x"), "{err}");
    }

    #[test]
    fn claim_writes_pid_file_and_teardown_removes_it() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let dir = tmp.0.join("state/nfv");
        let topo = unique_topology();
        let mut lab = Lab::claim_in(&dir, &topo, &[]).expect("claim");
        let mode = std::fs::metadata(&dir)
            .expect("state dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{mode:o}");
        let pid_file = dir.join(format!("{topo}.pid"));
        assert_eq!(lab.pid_file(), pid_file);
        assert_eq!(
            std::fs::read_to_string(&pid_file).expect("pid file"),
            format!("{}\n", std::process::id())
        );
        assert!(lab.namespaces().is_empty());
        assert_eq!(lab.topology(), topo);

        // This process holds the claim: a second one is refused.
        match Lab::claim_in(&dir, &topo, &[]) {
            Err(LabError::AlreadyRunning { topology, pid }) => {
                assert_eq!(topology, topo);
                assert_eq!(pid, std::process::id());
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }

        lab.teardown().expect("teardown");
        assert!(!pid_file.exists());
        lab.teardown().expect("teardown is idempotent");
        drop(lab);
        // Released: it can be claimed again, and dropping releases it too.
        let again = Lab::claim_in(&dir, &topo, &[]).expect("claim again");
        drop(again);
        assert!(!pid_file.exists());
        // No temporary files left behind.
        let left: Vec<_> = std::fs::read_dir(&dir).expect("read dir").collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn live_nfv_in_pid_file_is_already_running() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        // A process whose comm is `nfv`: `sleep` run through a symlink named nfv.
        let sleep = ["/usr/bin/sleep", "/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sleep");
        let fake = tmp.0.join("nfv");
        std::os::unix::fs::symlink(sleep, &fake).expect("symlink");
        let nfv = Proc::spawn(fake.to_str().expect("utf-8 path"), &["60"]);
        let pid = nfv.0.id();
        assert!(is_nfv(pid), "comm of the fake nfv is not `nfv`");
        std::fs::write(tmp.0.join(format!("{topo}.pid")), format!("{pid}\n")).expect("write");
        let ns = Netns::add(netns_name(&topo, "x"));

        match Lab::claim_in(&tmp.0, &topo, std::slice::from_ref(&ns.0)) {
            Err(e @ LabError::AlreadyRunning { .. }) => {
                assert_eq!(
                    e.to_string(),
                    format!("topology `{topo}` is already running (pid {pid}); stop it first")
                );
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        assert!(
            netns_exists(&ns.0),
            "the running topology's namespace was touched"
        );
        let content = std::fs::read_to_string(tmp.0.join(format!("{topo}.pid"))).expect("read");
        assert_eq!(content.trim(), pid.to_string());
    }

    #[test]
    fn leftover_of_dead_run_is_removed_and_its_processes_killed() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        std::fs::write(
            tmp.0.join(format!("{topo}.pid")),
            format!("{}\n", dead_pid()),
        )
        .expect("write");
        let ns = Netns::add(netns_name(&topo, "x"));
        let mut sleeper = sleeper_in(&ns.0);

        let lab =
            Lab::claim_in(&tmp.0, &topo, &[ns.0.clone(), netns_name(&topo, "y")]).expect("claim");
        assert!(!netns_exists(&ns.0), "leftover namespace still there");
        let status = sleeper
            .wait_for(Duration::from_secs(5))
            .expect("sleep killed");
        assert_eq!(status.signal(), Some(15), "{status:?}");
        let content = std::fs::read_to_string(lab.pid_file()).expect("pid file");
        assert_eq!(content.trim(), std::process::id().to_string());
    }

    #[test]
    fn leftover_without_pid_file_is_recognised_by_its_name() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        let ns = Netns::add(netns_name(&topo, "y"));
        let _lab = Lab::claim_in(&tmp.0, &topo, std::slice::from_ref(&ns.0)).expect("claim");
        assert!(!netns_exists(&ns.0));
    }

    #[test]
    fn unmarked_namespace_with_other_name_is_foreign() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        let pid_file = tmp.0.join(format!("{topo}.pid"));
        let dead = dead_pid().to_string();
        std::fs::write(&pid_file, &dead).expect("write");
        // A user-chosen name, and an `nfv-` name not of this topology: neither carries the mark.
        for name in [format!("{topo}-mine"), format!("nfv-{topo}x-h")] {
            let ns = Netns::add(name);
            match Lab::claim_in(&tmp.0, &topo, std::slice::from_ref(&ns.0)) {
                Err(e @ LabError::ForeignNamespace(_)) => assert_eq!(
                    e.to_string(),
                    format!(
                        "network namespace `{}` exists and was not created by nfv; remove it or choose another name",
                        ns.0
                    )
                ),
                other => panic!("expected ForeignNamespace, got {other:?}"),
            }
            assert!(netns_exists(&ns.0), "a foreign namespace was removed");
        }
        assert_eq!(std::fs::read_to_string(&pid_file).expect("read"), dead);
    }

    #[test]
    fn marked_namespace_is_a_leftover_whatever_its_name() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        let other = unique_topology();
        std::fs::write(tmp.0.join(format!("{topo}.pid")), dead_pid().to_string()).expect("write");
        let mine = Netns::add(format!("{topo}-own"));
        ip_out(&[
            "-n",
            &mine.0,
            "link",
            "set",
            "dev",
            "lo",
            "alias",
            &format!("nfv:{topo}"),
        ]);
        // Marked by another topology that is not running.
        let theirs = Netns::add(format!("{topo}-theirs"));
        ip_out(&[
            "-n",
            &theirs.0,
            "link",
            "set",
            "dev",
            "lo",
            "alias",
            &format!("nfv:{other}"),
        ]);
        assert_eq!(netns_mark(&mine.0).as_deref(), Some(topo.as_str()));

        let lab = Lab::claim_in(&tmp.0, &topo, &[mine.0.clone(), theirs.0.clone()]).expect("claim");
        assert!(!netns_exists(&mine.0));
        assert!(!netns_exists(&theirs.0));
        drop(lab);

        // Marked by a topology this process runs: refused, and left alone.
        let running = Lab::claim_in(&tmp.0, &other, &[]).expect("claim other");
        let busy = Netns::add(format!("{topo}-busy"));
        ip_out(&[
            "-n",
            &busy.0,
            "link",
            "set",
            "dev",
            "lo",
            "alias",
            &format!("nfv:{other}"),
        ]);
        match Lab::claim_in(&tmp.0, &topo, std::slice::from_ref(&busy.0)) {
            Err(LabError::AlreadyRunning { topology, .. }) => assert_eq!(topology, other),
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        assert!(netns_exists(&busy.0));
        drop(running);
    }

    #[test]
    fn add_host_configures_the_tap_and_drop_removes_the_namespace() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        let tap = Tap::add();
        let root_tap = Tap::add();
        let ns = netns_name(&topo, "h1");
        let host = HostPlan {
            name: "h1".into(),
            netns: ns.clone(),
            gateway: Some(Ipv4Addr::new(10, 77, 0, 1)),
            gateway6: None,
            ipv6: false,
            interfaces: vec![IfacePlan {
                tap: tap.0.clone(),
                ifname: "eth0".into(),
                mtu: 1400,
                mac: Some(MacAddr([0x02, 0, 0, 0xaa, 0xbb, 0xcc])),
                address: Some("10.77.0.2/24".parse().expect("cidr")),
                addresses6: vec![],
            }],
        };

        let mut lab = Lab::claim_in(&tmp.0, &topo, std::slice::from_ref(&ns)).expect("claim");
        assert!(matches!(
            Lab::check_free_devices(&[unique_device(), root_tap.0.clone()]),
            Err(LabError::DeviceExists(d)) if d == root_tap.0
        ));
        Lab::check_free_devices(&[unique_device()]).expect("free");

        lab.add_host(&host).expect("add_host");
        lab.add_root_device(&root_tap.0, 1300)
            .expect("add_root_device");
        assert_eq!(lab.namespaces(), std::slice::from_ref(&ns));
        assert_eq!(lab.root_devices(), std::slice::from_ref(&root_tap.0));
        assert!(netns_exists(&ns));
        assert!(
            !device_exists(&tap.0),
            "the TAP is still in the root namespace"
        );

        let addr = ip_out(&["-n", &ns, "addr", "show", "dev", "eth0"]);
        assert!(addr.contains("inet 10.77.0.2/24"), "{addr}");
        assert!(!addr.contains("inet6"), "IPv6 not disabled: {addr}");
        let link = ip_out(&["-n", &ns, "link", "show", "dev", "eth0"]);
        assert!(link.contains(",UP") || link.contains("<UP"), "{link}");
        assert!(link.contains("mtu 1400"), "{link}");
        assert!(link.contains("link/ether 02:00:00:aa:bb:cc"), "{link}");
        let route = ip_out(&["-n", &ns, "route", "show", "default"]);
        assert!(route.contains("default via 10.77.0.1 dev eth0"), "{route}");
        let lo = ip_out(&["-n", &ns, "link", "show", "dev", "lo"]);
        assert!(lo.contains(",UP"), "{lo}");
        assert_eq!(netns_mark(&ns).as_deref(), Some(topo.as_str()));
        if Path::new("/proc/sys/net/ipv6").exists() {
            let out = exec_in(&ns, "cat", &["/proc/sys/net/ipv6/conf/eth0/disable_ipv6"])
                .expect("exec_in");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
        }
        let root = ip_out(&["link", "show", "dev", &root_tap.0]);
        assert!(root.contains("mtu 1300") && root.contains(",UP"), "{root}");

        let pid_file = lab.pid_file().to_path_buf();
        drop(lab);
        assert!(!netns_exists(&ns), "namespace left after drop");
        assert!(!pid_file.exists(), "pid file left after drop");
        assert!(!device_exists(&tap.0));
        assert!(
            device_exists(&root_tap.0),
            "a root device is the dataplane's to remove"
        );
    }

    #[test]
    fn failed_add_host_is_reported_and_cleaned_up() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        let missing = unique_device();
        let ns = netns_name(&topo, "h2");
        let host = HostPlan {
            name: "h2".into(),
            netns: ns.clone(),
            gateway: None,
            gateway6: None,
            ipv6: false,
            interfaces: vec![IfacePlan {
                tap: missing.clone(),
                ifname: "eth0".into(),
                mtu: 1500,
                mac: None,
                address: None,
                addresses6: vec![],
            }],
        };
        let mut lab = Lab::claim_in(&tmp.0, &topo, std::slice::from_ref(&ns)).expect("claim");
        match lab.add_host(&host) {
            Err(LabError::Command { command, stderr }) => {
                assert_eq!(command, format!("ip link set dev {missing} netns {ns}"));
                assert!(!stderr.is_empty());
            }
            other => panic!("expected a command error, got {other:?}"),
        }
        assert_eq!(lab.namespaces(), std::slice::from_ref(&ns));
        // Adding the same namespace again fails and does not record it twice.
        assert!(lab.add_host(&host).is_err());
        assert_eq!(lab.namespaces().len(), 1);
        drop(lab);
        assert!(!netns_exists(&ns));
    }

    #[test]
    fn teardown_stops_processes_inside() {
        if !need_root() {
            return;
        }
        let tmp = TempDir::new();
        let topo = unique_topology();
        let ns = netns_name(&topo, "h3");
        let host = HostPlan {
            name: "h3".into(),
            netns: ns.clone(),
            gateway: None,
            gateway6: None,
            ipv6: false,
            interfaces: Vec::new(),
        };
        let mut lab = Lab::claim_in(&tmp.0, &topo, std::slice::from_ref(&ns)).expect("claim");
        lab.add_host(&host).expect("add_host");
        let mut sleeper = sleeper_in(&ns);
        let out = exec_in(&ns, "ip", &["-o", "link", "show"]).expect("exec_in");
        assert!(String::from_utf8_lossy(&out.stdout).contains("lo:"));
        lab.teardown().expect("teardown");
        assert!(lab.namespaces().is_empty());
        assert!(!netns_exists(&ns));
        let status = sleeper
            .wait_for(Duration::from_secs(5))
            .expect("sleep killed");
        assert_eq!(status.signal(), Some(15), "{status:?}");
    }
}
