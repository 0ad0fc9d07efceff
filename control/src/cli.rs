//! The `nfv` command line.

use crate::session::{errln, out, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::Target;
use crate::plan::Plan;
use crate::run;
use crate::session::{finish, stop_flag};
use crate::topology::{self, Topology};

/// nfv: a network-functions dataplane. Write a topology file; `nfv run` brings it to life.
#[derive(Debug, Parser)]
#[command(name = "nfv", version, about, long_about = None, after_help = kinds_help())]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The operator's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a topology file and print its graph, without touching the system.
    Check {
        /// The topology file (YAML).
        file: PathBuf,
    },
    /// Run a topology in the foreground until Ctrl-C or SIGTERM, then remove every namespace
    /// and device it created.
    Run {
        /// The topology file (YAML).
        file: PathBuf,
        /// Serve Prometheus metrics at ADDR (IP:PORT), overriding the topology's `metrics`
        /// key (default 127.0.0.1:9464).
        #[arg(long, value_name = "ADDR", conflicts_with = "no_metrics")]
        metrics: Option<std::net::SocketAddr>,
        /// Serve no metrics.
        #[arg(long)]
        no_metrics: bool,
        /// The control socket that nfv show, trace, capture and reload talk to (default
        /// /run/nfv/<topology>.sock).
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
        /// Let this group use the control socket (mode 0660 instead of root's 0600).
        #[arg(long, value_name = "GROUP")]
        control_group: Option<String>,
    },
    /// Show a table of the running dataplane: ports, functions, workers, drops, captures,
    /// and the functions' own (macs, routes, arp, neighbors, interfaces, nat, conntrack, leases,
    /// firewall, mirror).
    Show {
        /// The table.
        table: String,
        /// Print JSON (an array of objects, one per row) instead of a table.
        #[arg(long)]
        json: bool,
        /// Which running topology to talk to.
        #[command(flatten)]
        at: Target,
    },
    /// Record the path of the next packets through the graph: every function they visit,
    /// where they leave, why they are dropped.
    Trace {
        /// Only packets received on this port.
        #[arg(long)]
        port: Option<String>,
        /// How many packets.
        #[arg(long, default_value_t = 10)]
        count: u32,
        /// Seconds to wait for them.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Which running topology to talk to.
        #[command(flatten)]
        at: Target,
    },
    /// Write the frames crossing a port's wire, or a function gate's (gw.lan, nat.outside),
    /// to a pcap file that tcpdump and Wireshark read. Ctrl-C ends it.
    Capture {
        /// A port, or FUNCTION.GATE.
        at_wire: String,
        /// The pcap file to write.
        #[arg(short = 'w', value_name = "FILE")]
        write: PathBuf,
        /// Stop after this many frames.
        #[arg(long)]
        count: Option<u64>,
        /// Which running topology to talk to.
        #[command(flatten)]
        at: Target,
    },
    /// Apply a changed topology file to the running dataplane: what is new appears, what
    /// is gone goes, changed functions are rebuilt, unchanged ones keep their state. A file
    /// that does not validate changes nothing.
    Reload {
        /// The topology file (YAML).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Which running topology to talk to.
        #[command(flatten)]
        at: Target,
    },
    /// Measure a topology with generator ports (or a built-in scenario): Mpps, ns per
    /// packet, drops by reason and latency percentiles.
    Bench {
        /// A scenario name (see --list) or a topology file with generator and sink ports.
        #[arg(default_value = "switch")]
        target: String,
        /// List the built-in scenarios.
        #[arg(long)]
        list: bool,
        /// Seconds to measure.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Seconds to run before measuring.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Packets per second for every generator (default: as set in the topology,
        /// else as fast as possible).
        #[arg(long)]
        rate: Option<u64>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Bring up the built-in demo lab, a home gateway: hosts in namespaces take DHCP leases,
    /// ping and fetch pages through the NAT, meet the firewall and the port forward (and,
    /// with QEMU installed, a VM joins on a vhost-user port); then clean up.
    Demo,
}

/// The function kinds a topology may use, for `nfv --help`.
fn kinds_help() -> String {
    let mut s = String::from("Function kinds (a topology's `functions.NAME.kind`):");
    for k in nfv_functions::registry::KINDS {
        s.push_str(&format!("\n  {:<12} {}", k.name(), k.about()));
    }
    s
}

/// Parse the command line and run it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Run {
            file,
            metrics,
            no_metrics,
            control_socket,
            control_group,
        } => {
            let flag = if no_metrics {
                Some(topology::Metrics::Off)
            } else {
                metrics.map(topology::Metrics::Listen)
            };
            run_file(&file, flag, control_socket, control_group.as_deref())
        }
        Command::Show { table, json, at } => crate::client::show(&at, &table, json),
        Command::Trace {
            port,
            count,
            timeout,
            json,
            at,
        } => crate::client::trace(&at, port, count, timeout, json),
        Command::Capture {
            at_wire,
            write,
            count,
            at,
        } => crate::client::capture(&at, &at_wire, &write, count),
        Command::Reload { file, json, at } => crate::client::reload(&at, &file, json),
        Command::Demo => crate::demo::run(),
        Command::Bench {
            target,
            list,
            duration,
            warmup,
            rate,
            json,
        } => {
            if list {
                return crate::bench::list();
            }
            let secs = |s: f64| {
                Duration::from_secs_f64(if s.is_finite() {
                    s.clamp(0.0, 86_400.0)
                } else {
                    0.0
                })
            };
            crate::bench::main(
                &target,
                &crate::bench::Options {
                    duration: secs(duration),
                    warmup: secs(warmup),
                    rate,
                    json,
                },
            )
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NFV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Load and resolve a topology; errors are printed, one per line.
fn load(file: &Path) -> Option<(Topology, Plan)> {
    let topo = match topology::load_file(file) {
        Ok(t) => t,
        Err(e) => {
            errln!("{e}");
            return None;
        }
    };
    match Plan::new(&topo, std::process::id()) {
        Ok(plan) => Some((topo, plan)),
        Err(e) => {
            errln!("{}: {e}", file.display());
            None
        }
    }
}

fn check(file: &Path) -> ExitCode {
    match load(file) {
        Some((_, plan)) => {
            out!("{}", plan.describe());
            outln!("{}: OK", file.display());
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

/// Bind the metrics address that `flag` (the command line) or else the topology asks for.
/// An address asked for explicitly that cannot be bound is an error (the operator wants
/// metrics there); the default address taken (say by another `nfv run`) is a warning, and
/// the topology runs without metrics: the dataplane matters more than its metrics.
fn metrics_listener(
    topo: &Topology,
    flag: Option<topology::Metrics>,
) -> Result<Option<std::net::TcpListener>, String> {
    let (addr, explicit) = match flag.unwrap_or(topo.metrics) {
        topology::Metrics::Off => return Ok(None),
        topology::Metrics::Listen(a) => (a, true),
        topology::Metrics::Default => match crate::metrics::DEFAULT_LISTEN.parse() {
            Ok(a) => (a, false),
            Err(_) => return Ok(None),
        },
    };
    match crate::metrics::bind(addr) {
        Ok(l) => Ok(Some(l)),
        Err(e) if explicit => Err(format!(
            "cannot serve metrics on {addr}: {e} (choose another address with --metrics ADDR or `metrics: {{ listen: ADDR }}`, or turn them off with --no-metrics)"
        )),
        Err(e) => {
            tracing::warn!(
                "cannot serve metrics on the default address {addr}: {e}; running without metrics (--metrics ADDR picks another address)"
            );
            Ok(None)
        }
    }
}

fn run_file(
    file: &Path,
    metrics: Option<topology::Metrics>,
    control_socket: Option<PathBuf>,
    control_group: Option<&str>,
) -> ExitCode {
    let stop = stop_flag();
    let Some((topo, _)) = load(file) else {
        return ExitCode::FAILURE;
    };
    let gid = match control_group {
        None => None,
        Some(g) => match crate::ctl::group_id(g) {
            Some(id) => Some(id),
            None => {
                errln!("nfv run: no group `{g}` (--control-group takes a name from /etc/group or a number)");
                return ExitCode::FAILURE;
            }
        },
    };
    let socket_path = control_socket.unwrap_or_else(|| crate::ctl::default_socket(&topo.name));
    // Bound before anything is set up, so that a socket in use changes nothing.
    let control = match crate::ctl::bind(&socket_path, gid) {
        Ok(l) => l,
        Err(e) => {
            errln!(
                "nfv run: cannot create the control socket {}: {e} (is this topology running already? --control-socket PATH picks another)",
                socket_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    // Bound before anything is set up, so that a taken address changes nothing.
    let listener = match metrics_listener(&topo, metrics) {
        Ok(l) => l,
        Err(e) => {
            errln!("nfv run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let running = match run::start(&topo) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            let _ = std::fs::remove_file(&socket_path);
            errln!("nfv run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let control =
        match crate::ctl::ControlServer::spawn(control, socket_path.clone(), running.clone()) {
            Ok(c) => {
                outln!("control      {}", c.path().display());
                Some(c)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&socket_path);
                tracing::warn!("cannot serve the control socket: {e}");
                None
            }
        };
    let server =
        listener.and_then(
            |l| match crate::metrics::Server::spawn(l, running.metrics_source()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("cannot start the metrics server: {e}");
                    None
                }
            },
        );
    if let Some(s) = &server {
        outln!("metrics      http://{}/metrics", s.addr());
        if !s.addr().ip().is_loopback() {
            tracing::warn!(
                "metrics served on {}, not loopback: anyone who reaches it sees the counters",
                s.addr()
            );
        }
    }
    for h in &running.plan().hosts {
        outln!("host {:<12} ip netns exec {} ...", h.name, h.netns);
    }
    outln!(
        "nfv: topology {} running; Ctrl-C to stop",
        running.plan().name
    );
    let waited = running.wait(&stop);
    if let Some(c) = control {
        c.stop();
    }
    if let Some(s) = server {
        s.stop();
    }
    finish(&running, waited)
}
