//! Bringing a topology to life and taking it down again: claim the lab, create the TAP
//! devices, set up the hosts, build the graph, start the worker; on stop, the reverse.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nfv_dataplane::port::kind::SMALL_MAX_MTU;
use nfv_dataplane::port::{BuildError, LatencyRecorder, PortSettings};
use nfv_dataplane::{
    DropReason, Endpoint, Graph, GraphBuilder, Node, NodeId, Pool, Port, PortId, Worker,
    WorkerCounters, WorkerHandle, WorkerId, BURST,
};
use nfv_functions::dhcp::DhcpStats;
use nfv_functions::kind::Settings;
use nfv_functions::kind::{BuildContext, LeaseStore};
use nfv_functions::SwitchStats;

use crate::lab::HostPlan;
use crate::lab::{Lab, LabError};
use crate::plan::{Plan, PlanError};
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
    /// A port could not be made (a TAP device created, a vhost-user socket opened): its
    /// kind says what failed.
    #[error("cannot {} for port `{port}`: {}{}", source.action, source.source, source.hint)]
    Port {
        /// The port.
        port: String,
        /// What failed, and why.
        source: BuildError,
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
    /// A reload cannot be applied.
    #[error("{0}")]
    Reload(String),
}

pub use crate::stats::FunctionStats;

/// Unix time in seconds at the worker clock's zero (DHCP lease files hold wall-clock times).
pub fn wall_at_zero() -> u64 {
    wall_ns_at_zero() / 1_000_000_000
}

/// Unix time in nanoseconds at the worker clock's zero (for capture timestamps).
pub fn wall_ns_at_zero() -> u64 {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    wall.saturating_sub(nfv_dataplane::time::Clock::global().now().0)
}

/// Buffers in the worker's pool: enough for every port's queue several times over, and for
/// ports a reload may add; at most [`MAX_POOL`] (a topology of 20,000 ports asked for 10
/// million buffers, 24 GB, before).
fn pool_size(ports: usize) -> usize {
    (ports.max(1) * BURST * 8).clamp(8192, MAX_POOL)
}

/// Jumbo buffers a worker's pool holds for `plan`: as many per port whose frames need them
/// (an MTU over what a small buffer holds) as `pool_size` gives each port, at most
/// [`MAX_JUMBO_POOL`]; none without such a port.
fn jumbo_pool_size(plan: &Plan) -> usize {
    let jumbo = plan
        .ports
        .iter()
        .filter(|(_, p)| u32::from(p.0.mtu()) > SMALL_MAX_MTU)
        .count();
    (jumbo * BURST * 8).min(MAX_JUMBO_POOL)
}

/// Super-frame buffers a worker's pool holds for `plan`: [`BURST`] * 8 per port that may
/// hand super-frames over (a lab host's veth, a vhost-user guest's), at most
/// [`MAX_SUPER_POOL`]. Their pages are only touched when super-frames land in them.
fn super_pool_size(plan: &Plan) -> usize {
    let ports = plan
        .ports
        .iter()
        .filter(|(_, p)| p.0.tap().is_some_and(|t| t.offloads) || p.0.kind().name() == "vhost-user")
        .count();
    (ports * BURST * 8).min(MAX_SUPER_POOL)
}

/// The most super-frame buffers a worker's pool holds: 64 MB.
const MAX_SUPER_POOL: usize = 1024;

/// The most jumbo buffers a worker's pool holds: about 80 MB.
const MAX_JUMBO_POOL: usize = 8192;

/// The most buffers a worker's pool holds: about 150 MB.
const MAX_POOL: usize = 1 << 16;

/// Ports and functions made but not yet in a graph, by name.
#[derive(Default)]
struct Parts {
    ports: HashMap<String, Box<dyn Port>>,
    nodes: HashMap<String, Box<dyn Node>>,
}

/// What building functions leaves for the control side: stats, lease writers, latency.
#[derive(Default)]
struct Extras {
    stats: Vec<(String, FunctionStats)>,
    /// Lease file writers by DHCP server: each finishes once its server (the sender of its
    /// channel) is gone.
    lease_writers: Vec<(String, std::thread::JoinHandle<()>)>,
    latency: Vec<(String, LatencyRecorder)>,
}

fn function_error(name: &str, e: impl std::fmt::Display) -> RunError {
    RunError::Function {
        name: name.to_string(),
        message: e.to_string(),
    }
}

/// Make the port `name` as its kind's settings say, keeping the latencies it records.
fn build_port(
    name: &str,
    p: &PortSettings,
    extras: &mut Extras,
) -> Result<Box<dyn Port>, RunError> {
    let built = p.0.build(name).map_err(|source| RunError::Port {
        port: name.to_string(),
        source,
    })?;
    if let Some(rec) = built.latency {
        extras.latency.push((name.to_string(), rec));
    }
    Ok(built.port)
}

/// Make the function `name` as `settings` say.
fn build_function(
    topology_name: &str,
    name: &str,
    settings: &Settings,
    extras: &mut Extras,
) -> Result<Box<dyn Node>, RunError> {
    // The cross-kind hook: state kept in a file (a DHCP server's leases) is read
    // here, and written after every change by a thread of its own.
    let store = match settings.0.state_file() {
        None => None,
        Some(file) => {
            let known = crate::leases::load(&file)?;
            // Written once now, so that a path nfv cannot write is refused at start (or at
            // the reload that names it), not found out at the first lease and then lost.
            crate::leases::save(&file, &known).map_err(|source| {
                crate::leases::LeaseFileError::Io {
                    path: file.clone(),
                    source,
                }
            })?;
            tracing::info!(function = %name, file = %file.display(), leases = known.len(), "loaded DHCP leases");
            let (tx, rx) = crossbeam_channel::bounded(16);
            let writer = crate::leases::spawn_writer(file.clone(), rx).map_err(RunError::Worker)?;
            extras.lease_writers.push((name.to_string(), writer));
            Some(LeaseStore {
                known,
                updates: tx,
                wall_at_zero: wall_at_zero(),
            })
        }
    };
    let at = BuildContext {
        topology: topology_name,
        function: name,
        leases: store.as_ref(),
    };
    let built = settings.0.build(&at).map_err(|e| function_error(name, e))?;
    extras.stats.push((name.to_string(), built.stats));
    Ok(built.node)
}

/// Build the graph of `plan` from the ports and functions `parts` holds; what `parts` lacks
/// is left out, with every wire that touches it. Counters of ports and nodes that were in
/// the graph `old` counted for (by name) carry over.
fn assemble(plan: &Plan, parts: &mut Parts, old: Option<&OldCounters>) -> Graph {
    let mut b = GraphBuilder::new();
    let mut port_ids = HashMap::new();
    for (i, (name, _)) in plan.ports.iter().enumerate() {
        if let Some(p) = parts.ports.remove(name) {
            port_ids.insert(PortId(i as u16), b.add_port(name.clone(), p));
        }
    }
    let mut node_ids = HashMap::new();
    for (i, (name, f)) in plan.functions.iter().enumerate() {
        if let Some(n) = parts.nodes.remove(name) {
            node_ids.insert(NodeId(i as u16), b.add_node(name.clone(), f.gates(), n));
        }
    }
    let map = |e: Endpoint| match e {
        Endpoint::Port(p) => port_ids.get(&p).map(|&p| Endpoint::Port(p)),
        Endpoint::Node(n, g) => node_ids.get(&n).map(|&n| Endpoint::Node(n, g)),
    };
    for w in &plan.wires {
        if let (Some(a), Some(b2)) = (map(w.a), map(w.b)) {
            // Plan::check_wires ran on this plan: a failure here is a bug, logged.
            if let Err(e) = b.connect(a, b2) {
                tracing::error!(line = w.line, error = %e, "wire refused");
            }
        }
    }
    let g = b.build(WorkerId(0));
    if let Some(old) = old {
        old.carry_to(&g);
    }
    g
}

/// A graph's counters with the names they belong to, to carry over into a rebuilt graph.
struct OldCounters {
    ports: Vec<String>,
    nodes: Vec<String>,
    counters: Arc<WorkerCounters>,
}

impl OldCounters {
    fn carry_to(&self, g: &Graph) {
        let new = g.counters();
        let index = |names: &[String]| -> HashMap<String, usize> {
            names
                .iter()
                .enumerate()
                .map(|(j, n)| (n.clone(), j))
                .collect()
        };
        let (ports, nodes) = (index(&self.ports), index(&self.nodes));
        for (i, name) in g.port_names().iter().enumerate() {
            if let Some(&j) = ports.get(name.as_str()) {
                new.ports[i].copy_from(&self.counters.ports[j]);
            }
        }
        for (i, name) in g.node_names().iter().enumerate() {
            if let Some(&j) = nodes.get(name.as_str()) {
                new.nodes[i].copy_from(&self.counters.nodes[j]);
            }
        }
        new.loops.set(self.counters.loops.get());
        new.busy_loops.set(self.counters.busy_loops.get());
        new.burst_packets.set(self.counters.burst_packets.get());
    }
}

/// On the worker: take its graph apart, keep the parts `keep` says yes to, build the graph
/// of `plan` from those and `new` (carrying counters over) and run it. Gives back the
/// parts that were not kept, to be dropped off the worker (closing a vhost-user port waits
/// for its thread).
fn swap(
    w: &mut Worker,
    plan: &Plan,
    keep: &Keep,
    mut new: Parts,
    reconfigure: &[(String, Box<dyn Any + Send>)],
) -> (Parts, Arc<WorkerCounters>) {
    let empty = GraphBuilder::new().build(WorkerId(0));
    let old = w.replace_graph(empty);
    let pool = w.pool_mut();
    // A port added with a jumbo MTU brings its buffers (allocated here, once, not per packet).
    pool.reserve_jumbo(jumbo_pool_size(plan));
    pool.reserve_super(super_pool_size(plan));
    let parts = old.into_parts(pool);
    let old_counters = OldCounters {
        ports: parts.ports.iter().map(|(n, _)| n.clone()).collect(),
        nodes: parts.nodes.iter().map(|(n, _)| n.clone()).collect(),
        counters: parts.counters,
    };
    let mut gone = Parts::default();
    for (name, mut p) in parts.ports {
        if keep.ports.contains(&name) {
            new.ports.insert(name, p);
        } else {
            p.release(pool);
            gone.ports.insert(name, p);
        }
    }
    for (name, n) in parts.nodes {
        if keep.nodes.contains(&name) {
            new.nodes.insert(name, n);
        } else {
            gone.nodes.insert(name, n);
        }
    }
    // Kept nodes that take a new configuration in place do so before their gates are wired.
    for (name, config) in reconfigure {
        let taken = new
            .nodes
            .get_mut(name)
            .is_some_and(|n| n.reconfigure(&**config));
        if !taken {
            tracing::error!(function = %name, "refused its new configuration; it is left out");
            if let Some(n) = new.nodes.remove(name) {
                gone.nodes.insert(name.clone(), n);
            }
        }
    }
    let g = assemble(plan, &mut new, Some(&old_counters));
    // Parts the plan has no place for (none, unless a bug) go with the rest.
    gone.ports.extend(new.ports.drain());
    gone.nodes.extend(new.nodes.drain());
    let counters = g.counters().clone();
    w.replace_graph(g);
    (gone, counters)
}

/// Names of the ports and functions a rebuilt graph keeps from the running one.
#[derive(Default, Debug)]
struct Keep {
    ports: std::collections::HashSet<String>,
    nodes: std::collections::HashSet<String>,
}

/// What a reload changed, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// Ports added.
    pub ports_added: Vec<String>,
    /// Ports removed.
    pub ports_removed: Vec<String>,
    /// Ports rebuilt because they changed (or their host did).
    pub ports_changed: Vec<String>,
    /// Functions added.
    pub functions_added: Vec<String>,
    /// Functions removed.
    pub functions_removed: Vec<String>,
    /// Functions rebuilt because their configuration changed (their state starts afresh).
    pub functions_changed: Vec<String>,
    /// Functions that took their new configuration in place, keeping their state (a switch
    /// with attachments added).
    pub functions_updated: Vec<String>,
    /// Functions kept as they ran, with their state.
    pub functions_kept: Vec<String>,
    /// Hosts added.
    pub hosts_added: Vec<String>,
    /// Hosts removed.
    pub hosts_removed: Vec<String>,
    /// Hosts set up again (their namespace is new).
    pub hosts_changed: Vec<String>,
    /// Wires in the new graph.
    pub wires: usize,
}

impl ReloadReport {
    /// True if the reload changed nothing but maybe wires.
    pub fn is_empty(&self) -> bool {
        self.ports_added.is_empty()
            && self.ports_removed.is_empty()
            && self.ports_changed.is_empty()
            && self.functions_added.is_empty()
            && self.functions_removed.is_empty()
            && self.functions_changed.is_empty()
            && self.functions_updated.is_empty()
            && self.hosts_added.is_empty()
            && self.hosts_removed.is_empty()
            && self.hosts_changed.is_empty()
    }
}

/// The state of a running topology that a reload changes.
struct State {
    plan: Plan,
    lab: Option<Lab>,
    stats: Vec<(String, FunctionStats)>,
    lease_writers: Vec<(String, std::thread::JoinHandle<()>)>,
    latency: Vec<(String, LatencyRecorder)>,
    stopped: bool,
}

/// A running topology. Shared between the thread that waits for a signal, the metrics
/// server and the control socket; a reload changes it in place.
pub struct Running {
    state: Mutex<State>,
    worker: WorkerHandle,
    /// What the metrics endpoint reads, replaced by a reload.
    source: Arc<Mutex<crate::metrics::Source>>,
    /// The process id that named the plan's temporary devices.
    pid: u32,
}

/// How long a command on the worker may take before the operator is told it is stuck.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(5);

/// Start `topo`: namespaces, devices, worker.
pub fn start(topo: &Topology) -> Result<Running, RunError> {
    let pid = std::process::id();
    let plan = Plan::new(topo, pid)?;
    plan.check_wires()?;
    // Only topologies that touch the system (hosts, TAP devices) claim a lab; a benchmark
    // of generators and sinks runs anywhere, without root. Dropping `lab` on any error
    // below removes whatever was already created.
    let mut lab = if touches_system(&plan) {
        Some(Lab::claim(&plan.name, &plan.netns_names())?)
    } else {
        None
    };
    let root: Vec<String> = plan.root_devices().into_iter().map(|(d, _)| d).collect();
    Lab::check_free_devices(&root)?;

    let mut parts = Parts::default();
    let mut extras = Extras::default();
    for (name, p) in &plan.ports {
        parts
            .ports
            .insert(name.clone(), build_port(name, p, &mut extras)?);
    }
    for (name, f) in &plan.functions {
        parts.nodes.insert(
            name.clone(),
            build_function(&plan.name, name, f, &mut extras)?,
        );
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

    let graph = assemble(&plan, &mut parts, None);
    let counters = graph.counters().clone();
    let mut pool = Pool::new(pool_size(plan.ports.len()));
    pool.reserve_jumbo(jumbo_pool_size(&plan));
    pool.reserve_super(super_pool_size(&plan));
    let worker = Worker::new(WorkerId(0), graph, pool)
        .spawn()
        .map_err(RunError::Worker)?;
    tracing::info!(topology = %plan.name, ports = plan.ports.len(), functions = plan.functions.len(), "dataplane running");
    let source = Arc::new(Mutex::new(metrics_source(&plan, &extras.stats, counters)));
    Ok(Running {
        state: Mutex::new(State {
            plan,
            lab,
            stats: extras.stats,
            lease_writers: extras.lease_writers,
            latency: extras.latency,
            stopped: false,
        }),
        worker,
        source,
        pid,
    })
}

fn touches_system(plan: &Plan) -> bool {
    !plan.hosts.is_empty() || plan.ports.iter().any(|(_, p)| p.0.tap().is_some())
}

fn metrics_source(
    plan: &Plan,
    stats: &[(String, FunctionStats)],
    counters: Arc<WorkerCounters>,
) -> crate::metrics::Source {
    let mut source = crate::metrics::Source {
        ports: plan.ports.iter().map(|(n, _)| n.clone()).collect(),
        functions: plan.functions.iter().map(|(n, _)| n.clone()).collect(),
        workers: vec![counters],
        kinds: Vec::new(),
    };
    // In the plan's order, whatever order they were built in.
    let stats: HashMap<&str, _> = stats.iter().map(|(n, s)| (n.as_str(), s)).collect();
    for (name, _) in &plan.functions {
        if let Some(s) = stats.get(name.as_str()) {
            source.kinds.push((name.clone(), (*s).clone()));
        }
    }
    source
}

/// A port's identity for a reload: what, if it differs, means the port must be made anew,
/// as its kind says (a host TAP's temporary device name is not part of it: it changes with
/// the file's order).
fn port_identity(p: &PortSettings) -> String {
    format!("{} {}", p.0.kind().name(), p.0.identity())
}

/// A host's identity for a reload: its namespace, gateway and interfaces by port.
fn host_identity(h: &HostPlan, plan: &Plan) -> String {
    let port_of = |tap: &str| {
        plan.ports
            .iter()
            .find(|(_, p)| p.0.tap().is_some_and(|t| t.device == tap))
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    };
    let ifaces: Vec<String> = h
        .interfaces
        .iter()
        .map(|i| {
            format!(
                "{}:{}:{}:{:?}:{:?}",
                port_of(&i.tap),
                i.ifname,
                i.mtu,
                i.mac,
                i.address
            )
        })
        .collect();
    format!("{} {:?} {}", h.netns, h.gateway, ifaces.join(","))
}

impl Running {
    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// What runs now (a copy: a reload may change it).
    pub fn plan(&self) -> Plan {
        self.state().plan.clone()
    }

    /// The worker's counters (those of the graph running now).
    pub fn counters(&self) -> Arc<WorkerCounters> {
        self.worker.counters()
    }

    /// What the metrics endpoint reads; a reload replaces what is inside.
    pub fn metrics_source(&self) -> Arc<Mutex<crate::metrics::Source>> {
        self.source.clone()
    }

    /// Run `f` on the worker between turns, with the plan that describes its graph (no
    /// reload runs meanwhile).
    pub fn with_worker<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Worker, &Plan) -> R + Send + 'static,
    ) -> Result<R, nfv_dataplane::CallError> {
        let state = self.state();
        let plan = state.plan.clone();
        let r = self.worker.call(move |w| f(w, &plan), WORKER_TIMEOUT);
        drop(state);
        r
    }

    /// Each switch's name and counters.
    pub fn switch_stats(&self) -> Vec<(String, Arc<SwitchStats>)> {
        self.kind_stats()
    }

    /// Each DHCP server's name and counters.
    pub fn dhcp_stats(&self) -> Vec<(String, Arc<DhcpStats>)> {
        self.kind_stats()
    }

    /// Each function whose stats are a `T`, with those stats.
    fn kind_stats<T: Send + Sync + 'static>(&self) -> Vec<(String, Arc<T>)> {
        self.state()
            .stats
            .iter()
            .filter_map(|(n, s)| {
                let any: Arc<dyn Any + Send + Sync> = s.clone();
                any.downcast::<T>().ok().map(|s| (n.clone(), s))
            })
            .collect()
    }

    /// Function counters for the exit summary, for people: one line per function of a
    /// registered kind (its metrics that have a summary word).
    pub fn functions_summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let plan = self.plan();
        for (name, stats) in &self.state().stats {
            let kind = plan
                .functions
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, f)| f.0.kind().name())
                .unwrap_or("function");
            let _ = writeln!(s, "{}", crate::stats::kind_summary(kind, name, &**stats));
        }
        s
    }

    /// Latency recorders of the sink ports, by port name.
    pub fn latency(&self) -> Vec<(String, LatencyRecorder)> {
        self.state().latency.clone()
    }

    /// Names of the lab's namespaces, if the topology has hosts or TAP devices.
    pub fn namespaces(&self) -> Option<Vec<String>> {
        self.state().lab.as_ref().map(|l| l.namespaces().to_vec())
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

    /// Apply `topo`, a changed version of the running topology, between two bursts: ports,
    /// functions and hosts that are new appear, those gone are removed (with their
    /// namespaces and devices), changed ones are made anew, and unchanged functions keep
    /// their state. Everything that can be checked is checked before anything changes; an
    /// error then changes nothing. (Creating a device or a namespace can still fail
    /// afterwards; the error then says what runs.)
    pub fn reload(&self, topo: &Topology) -> Result<ReloadReport, RunError> {
        let mut state = self.state();
        if state.stopped {
            return Err(RunError::WorkerDied("the topology has stopped".into()));
        }
        let new = Plan::new(topo, self.pid)?;
        new.check_wires()?;
        if new.name != state.plan.name {
            return Err(RunError::Reload(format!(
                "the file describes topology `{}`, but `{}` runs; a reload keeps the name (stop and run the other one)",
                new.name, state.plan.name
            )));
        }
        if state.lab.is_none() && touches_system(&new) {
            return Err(RunError::Reload(
                "the running topology has no lab (no hosts, no TAP devices); adding them needs a restart".into(),
            ));
        }
        let old = state.plan.clone();
        let old = &old;
        let mut report = ReloadReport {
            wires: new.wires.len(),
            ..ReloadReport::default()
        };

        // Hosts: changed if their identity differs.
        let old_hosts: HashMap<&str, &HostPlan> =
            old.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let new_hosts: HashMap<&str, &HostPlan> =
            new.hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut hosts_redo: std::collections::HashSet<String> = Default::default();
        for h in &new.hosts {
            match old_hosts.get(h.name.as_str()) {
                None => report.hosts_added.push(h.name.clone()),
                Some(o) if host_identity(o, old) != host_identity(h, &new) => {
                    hosts_redo.insert(h.name.clone());
                }
                Some(_) => {}
            }
        }
        for h in &old.hosts {
            if !new_hosts.contains_key(h.name.as_str()) {
                report.hosts_removed.push(h.name.clone());
            }
        }
        // Ports: changed if their identity differs, or their host is set up again; a host
        // whose port changes is set up again.
        let host_of = |p: &PortSettings| p.0.tap().and_then(|t| t.host.clone());
        let old_ports: HashMap<&str, &PortSettings> =
            old.ports.iter().map(|(n, p)| (n.as_str(), p)).collect();
        for (name, p) in &new.ports {
            if let Some(o) = old_ports.get(name.as_str()) {
                if port_identity(o) != port_identity(p) {
                    hosts_redo.extend(host_of(o));
                    hosts_redo.extend(host_of(p));
                }
            }
        }
        hosts_redo
            .retain(|h| new_hosts.contains_key(h.as_str()) && old_hosts.contains_key(h.as_str()));
        report.hosts_changed = new
            .hosts
            .iter()
            .filter(|h| hosts_redo.contains(&h.name))
            .map(|h| h.name.clone())
            .collect();
        let gone_host = |h: &Option<String>| {
            h.as_ref()
                .is_some_and(|h| hosts_redo.contains(h) || report.hosts_removed.contains(h))
        };
        let mut keep = Keep::default();
        let mut ports_changed = Vec::new();
        let mut ports_added = Vec::new();
        for (name, p) in &new.ports {
            match old_ports.get(name.as_str()) {
                None => ports_added.push(name.clone()),
                Some(o) if port_identity(o) != port_identity(p) || gone_host(&host_of(o)) => {
                    ports_changed.push(name.clone())
                }
                Some(_) => {
                    keep.ports.insert(name.clone());
                }
            }
        }
        report.ports_added = ports_added;
        report.ports_changed = ports_changed;
        let new_ports: HashSet<&str> = new.ports.iter().map(|(n, _)| n.as_str()).collect();
        report.ports_removed = old
            .ports
            .iter()
            .filter(|(n, _)| !new_ports.contains(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect();
        let old_functions: HashMap<&str, &Settings> =
            old.functions.iter().map(|(n, f)| (n.as_str(), f)).collect();
        let gate_names = |plan: &Plan| -> HashMap<String, Vec<String>> {
            (plan.functions.iter().map(|(n, _)| n.clone()))
                .zip(plan.gate_names.iter().cloned())
                .collect()
        };
        let (old_gates, new_gates) = (gate_names(old), gate_names(&new));
        let gates_of = |gates: &HashMap<String, Vec<String>>, name: &str| {
            gates.get(name).cloned().unwrap_or_default()
        };
        let mut reconfigure: Vec<(String, Box<dyn Any + Send>)> = Vec::new();
        for (name, f) in &new.functions {
            match old_functions.get(name.as_str()) {
                None => report.functions_added.push(name.clone()),
                Some(o) if format!("{o:?}") != format!("{f:?}") => {
                    // The kind decides, if every old gate still faces what it faced (a
                    // switch given more attachments keeps its MAC table).
                    let (og, ng) = (gates_of(&old_gates, name), gates_of(&new_gates, name));
                    let grows = f.0.reconfigure_from(&*o.0).filter(|_| ng.starts_with(&og));
                    match grows {
                        Some(config) => {
                            keep.nodes.insert(name.clone());
                            report.functions_updated.push(name.clone());
                            reconfigure.push((name.clone(), config));
                        }
                        None => report.functions_changed.push(name.clone()),
                    }
                }
                Some(_) => {
                    keep.nodes.insert(name.clone());
                    report.functions_kept.push(name.clone());
                }
            }
        }
        let new_functions: HashSet<&str> = new.functions.iter().map(|(n, _)| n.as_str()).collect();
        report.functions_removed = old
            .functions
            .iter()
            .filter(|(n, _)| !new_functions.contains(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect();

        // Root TAP devices to be made must be free (unless the port they replace has them).
        let old_root: HashSet<String> = old.root_devices().into_iter().map(|(d, _)| d).collect();
        let made: Vec<String> = new
            .root_devices_outside(&keep.ports)
            .into_iter()
            .filter(|d| !old_root.contains(d))
            .collect();
        Lab::check_free_devices(&made)?;
        let new_netns: Vec<String> = new
            .hosts
            .iter()
            .filter(|h| report.hosts_added.contains(&h.name))
            .map(|h| h.netns.clone())
            .collect();
        if let Some(ns) = new_netns.iter().find(|ns| crate::lab::netns_exists(ns)) {
            return Err(RunError::Reload(format!(
                "namespace `{ns}` for a new host exists already"
            )));
        }

        // Phase one: a graph of what is kept only, with the new wiring between them.
        let mut interim = new.clone();
        interim.ports.retain(|(n, _)| keep.ports.contains(n));
        interim.functions.retain(|(n, _)| keep.nodes.contains(n));
        // Switches that grow do so in phase two: until then they run as they were.
        let grown: HashSet<&str> = reconfigure.iter().map(|(n, _)| n.as_str()).collect();
        for (name, f) in &mut interim.functions {
            if grown.contains(name.as_str()) {
                if let Some(o) = old_functions.get(name.as_str()) {
                    *f = (*o).clone();
                }
            }
        }
        let interim = renumbered(&new, &interim);
        let k = Keep {
            ports: keep.ports.clone(),
            nodes: keep.nodes.clone(),
        };
        let plan1 = interim.clone();
        let (gone, counters) = self
            .worker
            .call(
                move |w| swap(w, &plan1, &k, Parts::default(), &[]),
                WORKER_TIMEOUT,
            )
            .map_err(|e| RunError::Reload(format!("the worker did not take the new graph: {e}")))?;
        self.worker.set_counters(counters.clone());
        state.plan = interim;
        let kept_stats: Vec<(String, FunctionStats)> = state
            .stats
            .iter()
            .filter(|(n, _)| keep.nodes.contains(n))
            .cloned()
            .collect();
        state.stats = kept_stats;
        self.publish(&state, counters);

        // What was taken out goes now, off the worker: ports close, DHCP servers' lease
        // files are written out, hosts that go or are set up again lose their namespace.
        drop(gone);
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut state.lease_writers)
            .into_iter()
            .partition(|(n, _)| !keep.nodes.contains(n));
        state.lease_writers = running;
        for (name, w) in done {
            if w.join().is_err() {
                tracing::warn!(function = %name, "a lease file writer panicked");
            }
        }
        state.latency.retain(|(n, _)| keep.ports.contains(n));
        let doomed: Vec<String> = old
            .hosts
            .iter()
            .filter(|h| report.hosts_removed.contains(&h.name) || hosts_redo.contains(&h.name))
            .map(|h| h.netns.clone())
            .collect();
        let closed = old.root_devices_outside(&keep.ports);
        if let Some(lab) = &mut state.lab {
            for ns in &doomed {
                lab.remove_host(ns)?;
            }
            // Root TAPs that went are gone with their file descriptors.
            for d in &closed {
                lab.forget_root_device(d);
            }
        }

        // Phase two: make what is new, set up its hosts, and run the whole new graph.
        let mut parts = Parts::default();
        let mut extras = Extras::default();
        for (name, p) in &new.ports {
            if !keep.ports.contains(name) {
                parts
                    .ports
                    .insert(name.clone(), build_port(name, p, &mut extras)?);
            }
        }
        for (name, f) in &new.functions {
            if !keep.nodes.contains(name) {
                parts.nodes.insert(
                    name.clone(),
                    build_function(&new.name, name, f, &mut extras)?,
                );
            }
        }
        if let Some(lab) = &mut state.lab {
            for (device, mtu) in new.root_devices() {
                if made.contains(&device) {
                    lab.add_root_device(&device, mtu)?;
                }
            }
            for host in &new.hosts {
                if report.hosts_added.contains(&host.name) || hosts_redo.contains(&host.name) {
                    lab.add_host(host)?;
                    tracing::info!(host = %host.name, netns = %host.netns, "host ready");
                }
            }
        }
        let all = Keep {
            ports: new.ports.iter().map(|(n, _)| n.clone()).collect(),
            nodes: new.functions.iter().map(|(n, _)| n.clone()).collect(),
        };
        let plan2 = new.clone();
        let (gone, counters) = self
            .worker
            .call(
                move |w| swap(w, &plan2, &all, parts, &reconfigure),
                WORKER_TIMEOUT,
            )
            .map_err(|e| RunError::Reload(format!("the worker did not take the new graph: {e}")))?;
        drop(gone);
        self.worker.set_counters(counters.clone());
        state.plan = new;
        state.stats.extend(extras.stats);
        state.lease_writers.extend(extras.lease_writers);
        state.latency.extend(extras.latency);
        self.publish(&state, counters);
        tracing::info!(?report, "reloaded");
        Ok(report)
    }

    /// Show the metrics endpoint what runs now.
    fn publish(&self, state: &State, counters: Arc<WorkerCounters>) {
        let source = metrics_source(&state.plan, &state.stats, counters);
        match self.source.lock() {
            Ok(mut s) => *s = source,
            Err(p) => *p.into_inner() = source,
        }
    }

    /// Stop the worker and remove every namespace and device; returns the final counters.
    /// Only the first call stops; later ones find nothing to do.
    pub fn stop(&self) -> Result<Arc<WorkerCounters>, RunError> {
        let mut state = self.state();
        let counters = self.worker.counters();
        if state.stopped {
            return Ok(counters);
        }
        state.stopped = true;
        let joined = self.worker.join();
        // Namespaces first, then the TAP devices go when the worker (holding their fds) drops.
        let torn = state.lab.as_mut().map_or(Ok(()), Lab::teardown);
        let worker = joined.map_err(RunError::WorkerDied)?;
        let counters = worker.graph().counters().clone();
        drop(worker);
        for (name, w) in state.lease_writers.drain(..) {
            if w.join().is_err() {
                tracing::warn!(function = %name, "a lease file writer panicked");
            }
        }
        torn?;
        Ok(counters)
    }
}

/// `sub` (a copy of `full` with some ports and functions left out) with its wires
/// renumbered to its own ports and functions, dropping wires that touch what was left out.
fn renumbered(full: &Plan, sub: &Plan) -> Plan {
    let sub_ports: HashMap<&str, usize> = (sub.ports.iter().enumerate())
        .map(|(j, (n, _))| (n.as_str(), j))
        .collect();
    let kept: HashMap<&str, usize> = (sub.functions.iter().enumerate())
        .map(|(j, (n, _))| (n.as_str(), j))
        .collect();
    let port_map: HashMap<PortId, PortId> = (full.ports.iter().enumerate())
        .filter_map(|(i, (n, _))| {
            let j = sub_ports.get(n.as_str())?;
            Some((PortId(i as u16), PortId(*j as u16)))
        })
        .collect();
    let node_map: HashMap<NodeId, NodeId> = (full.functions.iter().enumerate())
        .filter_map(|(i, (n, _))| {
            let j = kept.get(n.as_str())?;
            Some((NodeId(i as u16), NodeId(*j as u16)))
        })
        .collect();
    // Only gates the function has in `sub` (a switch that grows later has fewer).
    let gates: Vec<usize> = sub.functions.iter().map(|(_, f)| f.gates()).collect();
    let map = |e: Endpoint| match e {
        Endpoint::Port(p) => port_map.get(&p).map(|&p| Endpoint::Port(p)),
        Endpoint::Node(n, g) => node_map
            .get(&n)
            .filter(|m| gates.get(m.index()).is_some_and(|&c| g.index() < c))
            .map(|&n| Endpoint::Node(n, g)),
    };
    let mut out = sub.clone();
    out.wires = full
        .wires
        .iter()
        .filter_map(|w| {
            Some(crate::plan::Wire {
                a: map(w.a)?,
                b: map(w.b)?,
                line: w.line,
            })
        })
        .collect();
    out.gate_names = full
        .functions
        .iter()
        .zip(&full.gate_names)
        .filter(|((n, _), _)| kept.contains_key(n.as_str()))
        .map(|(_, g)| g.clone())
        .collect();
    out
}

/// Per-port counters and drops, for people.
pub fn summary(plan: &Plan, c: &WorkerCounters) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<12} {:>10} {:>12} {:>10} {:>12} {:>8} {:>8}",
        "port", "rx pkts", "rx bytes", "tx pkts", "tx bytes", "rx miss", "drops"
    );
    for (i, (name, _)) in plan.ports.iter().enumerate() {
        let p = &c.ports[i];
        let _ = writeln!(
            s,
            "{:<12} {:>10} {:>12} {:>10} {:>12} {:>8} {:>8}",
            name,
            p.rx_packets.get(),
            p.rx_bytes.get(),
            p.tx_packets.get(),
            p.tx_bytes.get(),
            p.rx_miss.get(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool grows with the ports, up to a bound (20,000 ports asked for 24 GB).
    #[test]
    fn the_pool_is_bounded() {
        assert_eq!(pool_size(1), 8192);
        assert_eq!(pool_size(100), 100 * BURST * 8);
        assert_eq!(pool_size(20_000), MAX_POOL);
    }
}
