//! The `nfv` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::plan::Plan;
use crate::run::{self, Running};
use crate::topology::{self, Topology};

/// nfv: a network-functions dataplane. Write a topology file; `nfv run` brings it to life.
#[derive(Debug, Parser)]
#[command(name = "nfv", version, about, long_about = None)]
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
    /// Bring up the built-in demo lab (hosts in namespaces on a learning switch), show the
    /// hosts pinging each other, and clean up.
    Demo,
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
        } => {
            let flag = if no_metrics {
                Some(topology::Metrics::Off)
            } else {
                metrics.map(topology::Metrics::Listen)
            };
            run_file(&file, flag)
        }
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
            eprintln!("{e}");
            return None;
        }
    };
    match Plan::new(&topo, std::process::id()) {
        Ok(plan) => Some((topo, plan)),
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            None
        }
    }
}

fn check(file: &Path) -> ExitCode {
    match load(file) {
        Some((_, plan)) => {
            print!("{}", plan.describe());
            println!("{}: OK", file.display());
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

/// Install handlers so that SIGINT and SIGTERM set the returned flag instead of killing us.
pub fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            tracing::warn!("cannot handle signal {sig}: {e}");
        }
    }
    stop
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

fn run_file(file: &Path, metrics: Option<topology::Metrics>) -> ExitCode {
    let stop = stop_flag();
    let Some((topo, _)) = load(file) else {
        return ExitCode::FAILURE;
    };
    // Bound before anything is set up, so that a taken address changes nothing.
    let listener = match metrics_listener(&topo, metrics) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nfv run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let running = match run::start(&topo) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nfv run: {e}");
            return ExitCode::FAILURE;
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
        println!("metrics      http://{}/metrics", s.addr());
        if !s.addr().ip().is_loopback() {
            tracing::warn!(
                "metrics served on {}, not loopback: anyone who reaches it sees the counters",
                s.addr()
            );
        }
    }
    for h in &running.plan.hosts {
        println!("host {:<12} ip netns exec {} ...", h.name, h.netns);
    }
    println!(
        "nfv: topology {} running; Ctrl-C to stop",
        running.plan.name
    );
    let waited = running.wait(&stop);
    if let Some(s) = server {
        s.stop();
    }
    finish(running, waited)
}

/// Stop `running`, print its counters, and turn the outcome into an exit code.
pub fn finish(running: Running, waited: Result<(), run::RunError>) -> ExitCode {
    let plan = running.plan.clone();
    let gateways = running.gateway_summary();
    let stopped = running.stop();
    let mut ok = true;
    if let Err(e) = waited {
        eprintln!("nfv: {e}");
        ok = false;
    }
    match stopped {
        Ok(counters) => print!("{}{gateways}", run::summary(&plan, &counters)),
        Err(e) => {
            eprintln!("nfv: while stopping: {e}");
            ok = false;
        }
    }
    println!("nfv: stopped; namespaces and devices removed");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
