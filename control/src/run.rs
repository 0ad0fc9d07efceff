//! Bringing a topology to life and taking it down again: claim the lab, create the TAP
//! devices, set up the hosts, build the graph, start the worker; on stop, the reverse.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nfv_dataplane::port::{
    GeneratorPort, LatencyRecorder, NullPort, TapPort, VhostUserConfig, VhostUserPort,
};
use nfv_dataplane::{
    DropReason, GraphBuilder, Pool, Port, Worker, WorkerCounters, WorkerHandle, WorkerId, BURST,
};
use nfv_functions::dhcp::{DhcpConfig, DhcpServer, DhcpStats};
use nfv_functions::firewall::{Firewall, FirewallStats};
use nfv_functions::nat::{Nat, NatStats};
use nfv_functions::router::Router;
use nfv_functions::{Switch, SwitchStats};

use crate::lab::{Lab, LabError};
use crate::plan::{FunctionPlan, Plan, PlanError, PortPlan};
use crate::topology::Topology;

/// Why a topology could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Wiring failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Namespaces or devices could not be set up.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// A TAP device could not be created.
    #[error("cannot create TAP device `{device}` for port `{port}`: {source} (nfv run needs root, or CAP_NET_ADMIN, and /dev/net/tun)")]
    Tap {
        /// The port.
        port: String,
        /// The device name.
        device: String,
        /// The error.
        source: std::io::Error,
    },
    /// A vhost-user port could not open its socket.
    #[error("cannot open vhost-user socket `{}` for port `{port}`: {source}", socket.display())]
    Vhost {
        /// The port.
        port: String,
        /// The socket's path.
        socket: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A lease file could not be read.
    #[error(transparent)]
    Leases(#[from] crate::leases::LeaseFileError),
    /// A function refused its configuration.
    #[error("function `{name}`: {message}")]
    Function {
        /// The function.
        name: String,
        /// What was wrong.
        message: String,
    },
    /// The worker thread could not start.
    #[error("cannot start the worker thread: {0}")]
    Worker(std::io::Error),
    /// The worker thread died.
    #[error("the worker stopped unexpectedly: {0}")]
    WorkerDied(String),
}

/// A running topology.
pub struct Running {
    /// What runs.
    pub plan: Plan,
    lab: Option<Lab>,
    worker: WorkerHandle,
    switch_stats: Vec<(String, Arc<SwitchStats>)>,
    dhcp_stats: Vec<(String, Arc<DhcpStats>)>,
    gateway_stats: Vec<(String, GatewayStats)>,
    /// Lease file writers: they finish once the worker (and with it every DHCP server, the
    /// senders of their channels) is gone.
    lease_writers: Vec<std::thread::JoinHandle<()>>,
    latency: Vec<(String, LatencyRecorder)>,
}

/// The counters of a NAT or a firewall.
#[derive(Clone)]
pub enum GatewayStats {
    /// A NAT's.
    Nat(Arc<NatStats>),
    /// A firewall's.
    Firewall(Arc<FirewallStats>),
}

/// Unix time in seconds at the worker clock's zero (DHCP lease files hold wall-clock times).
fn wall_at_zero() -> u64 {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let since_zero = nfv_dataplane::time::Clock::global().now().0 / 1_000_000_000;
    wall.saturating_sub(since_zero)
}

/// Buffers in the worker's pool: enough for every port's queue several times over.
fn pool_size(ports: usize) -> usize {
    (ports.max(1) * BURST * 8).max(4096)
}

/// Start `topo`: namespaces, devices, worker.
pub fn start(topo: &Topology) -> Result<Running, RunError> {
    let plan = Plan::new(topo, std::process::id())?;
    // Only topologies that touch the system (hosts, TAP devices) claim a lab; a benchmark
    // of generators and sinks runs anywhere, without root. Dropping `lab` on any error
    // below removes whatever was already created.
    let touches_system = !plan.hosts.is_empty()
        || plan
            .ports
            .iter()
            .any(|(_, p)| matches!(p, PortPlan::Tap { .. }));
    let mut lab = if touches_system {
        Some(Lab::claim(&plan.name, &plan.netns_names())?)
    } else {
        None
    };
    let root: Vec<String> = plan.root_devices().into_iter().map(|(d, _)| d).collect();
    Lab::check_free_devices(&root)?;

    let mut graph = GraphBuilder::new();
    let mut latency = Vec::new();
    for (name, p) in &plan.ports {
        let port: Box<dyn Port> = match p {
            PortPlan::Tap { device, mtu, .. } => {
                Box::new(TapPort::create(device, *mtu as usize).map_err(|source| {
                    RunError::Tap {
                        port: name.clone(),
                        device: device.clone(),
                        source,
                    }
                })?)
            }
            PortPlan::Null { announce } => {
                let rec = LatencyRecorder::new();
                latency.push((name.clone(), rec.clone()));
                let sink = NullPort::new().with_latency(rec);
                Box::new(match announce {
                    Some(m) => sink.announcing(*m),
                    None => sink,
                })
            }
            PortPlan::Generator(cfg) => Box::new(GeneratorPort::new(cfg.clone())),
            PortPlan::VhostUser { socket, mode, mtu } => Box::new(
                VhostUserPort::new(VhostUserConfig {
                    name: name.clone(),
                    socket: socket.clone(),
                    mode: *mode,
                    mtu: *mtu as usize,
                })
                .map_err(|source| RunError::Vhost {
                    port: name.clone(),
                    socket: socket.clone(),
                    source,
                })?,
            ),
        };
        graph.add_port(name.clone(), port);
    }
    let mut switch_stats = Vec::new();
    let mut dhcp_stats = Vec::new();
    let mut gateway_stats = Vec::new();
    let mut lease_writers = Vec::new();
    for (name, f) in &plan.functions {
        match f {
            FunctionPlan::Switch(cfg) => {
                let sw = Switch::new(cfg.clone());
                switch_stats.push((name.clone(), sw.stats()));
                graph.add_node(name.clone(), cfg.attachments.len(), Box::new(sw));
            }
            FunctionPlan::Router(cfg) => {
                let r = Router::new(cfg.clone()).map_err(|e| RunError::Function {
                    name: name.clone(),
                    message: e.to_string(),
                })?;
                graph.add_node(name.clone(), f.gates(), Box::new(r));
            }
            FunctionPlan::DhcpServer {
                config,
                mac,
                leases,
            } => {
                let known = crate::leases::load(leases)?;
                tracing::info!(function = %name, file = %leases.display(), leases = known.len(), "loaded DHCP leases");
                let (tx, rx) = crossbeam_channel::bounded(16);
                let writer =
                    crate::leases::spawn_writer(leases.clone(), rx).map_err(RunError::Worker)?;
                lease_writers.push(writer);
                let cfg = DhcpConfig {
                    mac: *mac,
                    address: config.address.ip(),
                    prefix_len: config.address.prefix(),
                    pools: config.pools.clone(),
                    reservations: config.reservations.clone(),
                    router: config.router,
                    dns: config.dns.clone(),
                    domain: config.domain.clone(),
                    lease: config.lease,
                    renew: config.renew,
                    rebind: config.rebind,
                    options: config.options.clone(),
                    offer_hold: Duration::from_secs(60),
                    wall_at_zero: wall_at_zero(),
                };
                let server = DhcpServer::new(cfg, known, Some(tx));
                dhcp_stats.push((name.clone(), server.stats()));
                graph.add_node(name.clone(), 1, Box::new(server));
            }
            FunctionPlan::Nat(cfg) => {
                let nat = Nat::new(cfg.clone()).map_err(|e| RunError::Function {
                    name: name.clone(),
                    message: e.to_string(),
                })?;
                gateway_stats.push((name.clone(), GatewayStats::Nat(nat.stats())));
                graph.add_node(name.clone(), 2, Box::new(nat));
            }
            FunctionPlan::Firewall(cfg) => {
                let fw = Firewall::new(cfg.clone());
                gateway_stats.push((name.clone(), GatewayStats::Firewall(fw.stats())));
                graph.add_node(name.clone(), 2, Box::new(fw));
            }
        }
    }
    for w in &plan.wires {
        graph.connect(w.a, w.b).map_err(|source| PlanError::Graph {
            line: w.line,
            source,
        })?;
    }

    if let Some(lab) = &mut lab {
        for (device, mtu) in plan.root_devices() {
            lab.add_root_device(&device, mtu)?;
        }
        for host in &plan.hosts {
            lab.add_host(host)?;
            tracing::info!(host = %host.name, netns = %host.netns, "host ready");
        }
    }

    let graph = graph.build(WorkerId(0));
    let pool = Pool::new(pool_size(plan.ports.len()));
    let worker = Worker::new(WorkerId(0), graph, pool)
        .spawn()
        .map_err(RunError::Worker)?;
    tracing::info!(topology = %plan.name, ports = plan.ports.len(), functions = plan.functions.len(), "dataplane running");
    Ok(Running {
        plan,
        lab,
        worker,
        switch_stats,
        dhcp_stats,
        gateway_stats,
        lease_writers,
        latency,
    })
}

impl Running {
    /// The worker's counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        self.worker.counters()
    }

    /// What the metrics endpoint reads: the counters and stats, shared (no copies).
    pub fn metrics_source(&self) -> crate::metrics::Source {
        crate::metrics::Source {
            ports: self.plan.ports.iter().map(|(n, _)| n.clone()).collect(),
            functions: self.plan.functions.iter().map(|(n, _)| n.clone()).collect(),
            workers: vec![self.worker.counters().clone()],
            switches: self.switch_stats.clone(),
            dhcp: self.dhcp_stats.clone(),
            gateways: self.gateway_stats.clone(),
        }
    }

    /// Each switch's name and counters.
    pub fn switch_stats(&self) -> &[(String, Arc<SwitchStats>)] {
        &self.switch_stats
    }

    /// Each DHCP server's name and counters.
    pub fn dhcp_stats(&self) -> &[(String, Arc<DhcpStats>)] {
        &self.dhcp_stats
    }

    /// Each NAT's and firewall's name and counters.
    pub fn gateway_stats(&self) -> &[(String, GatewayStats)] {
        &self.gateway_stats
    }

    /// NAT and firewall counters, for people: one line per NAT, one per firewall direction
    /// with the hits of each rule and of the default.
    pub fn gateway_summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        for (name, st) in &self.gateway_stats {
            match st {
                GatewayStats::Nat(n) => {
                    let _ = writeln!(
                        s,
                        "nat {name}: sessions={} created={} expired={} translated={} passed={} icmp_errors={} no_ports={} table_full={}",
                        n.sessions.get(),
                        n.created.get(),
                        n.expired.get(),
                        n.translated.get(),
                        n.passed.get(),
                        n.icmp_errors.get(),
                        n.no_ports.get(),
                        n.table_full.get()
                    );
                }
                GatewayStats::Firewall(f) => {
                    let hits = |v: &[nfv_dataplane::Counter]| {
                        v.iter()
                            .map(|c| c.get().to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let _ = writeln!(
                        s,
                        "firewall {name}: connections={} rejects_sent={} not_ipv4={} inbound_hits=[{}] outbound_hits=[{}] (the last is the default)",
                        f.connections.get(),
                        f.rejects_sent.get(),
                        f.not_ipv4.get(),
                        hits(&f.inbound),
                        hits(&f.outbound)
                    );
                }
            }
        }
        s
    }

    /// Latency recorders of the sink ports, by port name.
    pub fn latency(&self) -> &[(String, LatencyRecorder)] {
        &self.latency
    }

    /// The lab, if the topology has hosts or TAP devices.
    pub fn lab(&self) -> Option<&Lab> {
        self.lab.as_ref()
    }

    /// Block until `stop` is set (by a signal) or the worker dies.
    pub fn wait(&self, stop: &AtomicBool) -> Result<(), RunError> {
        while !stop.load(Ordering::Relaxed) {
            if self.worker.is_finished() {
                return Err(RunError::WorkerDied("worker thread ended".into()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stop the worker and remove every namespace and device; returns the final counters.
    pub fn stop(mut self) -> Result<Arc<WorkerCounters>, RunError> {
        let counters = self.worker.counters().clone();
        let joined = self.worker.join();
        // Namespaces first, then the TAP devices go when the worker (holding their fds) drops.
        let torn = self.lab.as_mut().map_or(Ok(()), Lab::teardown);
        let worker = joined.map_err(RunError::WorkerDied)?;
        drop(worker);
        for w in self.lease_writers.drain(..) {
            if w.join().is_err() {
                tracing::warn!("a lease file writer panicked");
            }
        }
        torn?;
        Ok(counters)
    }
}

/// Per-port counters and drops, for people.
pub fn summary(plan: &Plan, c: &WorkerCounters) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<12} {:>10} {:>12} {:>10} {:>12} {:>8}",
        "port", "rx pkts", "rx bytes", "tx pkts", "tx bytes", "drops"
    );
    for (i, (name, _)) in plan.ports.iter().enumerate() {
        let p = &c.ports[i];
        let _ = writeln!(
            s,
            "{:<12} {:>10} {:>12} {:>10} {:>12} {:>8}",
            name,
            p.rx_packets.get(),
            p.rx_bytes.get(),
            p.tx_packets.get(),
            p.tx_bytes.get(),
            p.drops.total()
        );
    }
    let mut drops = Vec::new();
    for r in DropReason::ALL {
        let n = c.drops(r);
        if n > 0 {
            drops.push(format!("{r}={n}"));
        }
    }
    if drops.is_empty() {
        let _ = writeln!(s, "drops: none");
    } else {
        let _ = writeln!(s, "drops: {}", drops.join(" "));
    }
    s
}
