//! The node graph and its run-to-completion scheduler.
//!
//! A graph holds ports and nodes. Every port has one wire end, every node a fixed number of
//! [`Gate`]s, and a wire joins two ends: packets that a port receives go to the node gate (or
//! port) at the other end of its wire, and packets a node emits on a gate go to whatever is
//! at the other end of that gate's wire. Wires are bidirectional.
//!
//! Scheduling follows VPP's idea of passing whole frames between nodes: each node gate and
//! each port has a queue of at most one burst. Emitting a packet appends it to the queue at
//! the far end of the wire; a queue that turns non-empty is pushed on a stack of pending
//! ends. [`Graph::run`] pops ends from the stack (last in, first out, so a burst travels
//! depth-first to the ports before the next queue of the same node is taken) and either
//! calls the node with the queued batch or transmits the batch on the port. Nothing is
//! allocated: queues, the stack and the scratch batch are all reserved when the graph is
//! built.
//!
//! A run ends however the graph is wired. nfv has no spanning tree, and a broadcast that
//! switches flood round a loop (two links between the same two switches, a ring) would
//! otherwise circulate for ever inside one run. Two bounds contain it, both checked once
//! per node call or per packet entering a node, never allocating:
//! - a hop count per packet ([`Meta::hops`](crate::Meta::hops)), counted once a run has made
//!   more node calls than the graph has wire ends (what no loop-free run needs, so a normal
//!   run pays one compare per node call): a packet then entering [`HOP_LIMIT`]+1 more nodes
//!   is dropped as [`DropReason::HopLimit`]. This bounds any one packet's path, and the
//!   copies a switch makes inherit the count;
//! - a budget of node calls per run ([`Graph::run`]): a loop with more than one flooding
//!   branch (three links between two switches) turns every copy into two at each turn, so
//!   the hop limit alone still allows about 2^[`HOP_LIMIT`] calls. Past
//!   [`HOP_LIMIT`] calls per wire end, every batch still queued for a node is dropped as
//!   [`DropReason::HopLimit`] without calling the node, which ends the run. A loop-free
//!   graph stays far below it: a burst reaches each end a few times at most.

use std::sync::Arc;

use crate::batch::Batch;
use crate::counters::{NodeCounters, PortCounters, WorkerCounters};
use crate::drop_reason::DropReason;
use crate::ids::{Gate, NodeId, PortId, WorkerId};
use crate::packet::{Packet, Pool, HOP_LIMIT};
use crate::port::Port;
use crate::time::Timestamp;
use crate::trace::{Capture, Trace, TraceEvent};

/// One end of a wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A port (its single wire end).
    Port(PortId),
    /// A gate of a node.
    Node(NodeId, Gate),
}

/// A network function in the graph: it takes a batch that arrived on one of its gates and
/// gives every packet a verdict through the [`Ctx`]: emitted on a gate (once, or several
/// times as copies), or dropped with a [`DropReason`].
pub trait Node: Send {
    /// The node's kind, e.g. `"switch"`.
    fn kind(&self) -> &'static str;

    /// Handle `batch`, which arrived on `input`. Every packet must leave the batch through
    /// `ctx.emit` or `ctx.drop`; the runtime drops any left behind as
    /// [`DropReason::Internal`].
    fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>);

    /// Called now and then (about every millisecond while busy, and at least every few
    /// milliseconds while idle) to run timers: ageing, retransmissions.
    fn tick(&mut self, _ctx: &mut Ctx<'_>) {}

    /// Take a changed configuration in place, keeping the node's state (a switch given
    /// more attachments keeps its MAC table). `config` is the node's own configuration
    /// type. Returns false (the default) if the node cannot; it is then made anew. Called
    /// on the worker between bursts, before the node's new gates are wired.
    fn reconfigure(&mut self, _config: &dyn std::any::Any) -> bool {
        false
    }

    /// The node's state as table `table` (`"macs"`, `"arp"`, `"routes"`, `"nat"`,
    /// `"conntrack"`, `"leases"`, `"firewall"`, ...), or `None` if the node has no such
    /// table. Called on the worker between bursts, at `now`; see [`crate::table`].
    fn show(&self, _table: &str, _now: Timestamp) -> Option<crate::Table> {
        None
    }
}

/// Queues at every wire end and the stack of ends that have work.
struct Queues {
    node_in: Vec<Vec<Batch>>,
    port_out: Vec<Batch>,
    pending: Vec<Endpoint>,
}

impl Queues {
    /// Move all of `batch` onto the empty queue at `to` (by swapping their storage), and
    /// leave `batch` empty; if the queue is not empty, do nothing.
    #[inline]
    fn enqueue_all(&mut self, to: Endpoint, batch: &mut Batch) {
        let q = match to {
            Endpoint::Port(p) => &mut self.port_out[p.index()],
            Endpoint::Node(n, g) => &mut self.node_in[n.index()][g.index()],
        };
        if q.is_empty() && !batch.is_empty() {
            std::mem::swap(q, batch);
            self.pending.push(to);
        }
    }

    #[inline(always)]
    fn enqueue(&mut self, to: Endpoint, pkt: Packet) -> Result<(), Packet> {
        let q = match to {
            Endpoint::Port(p) => &mut self.port_out[p.index()],
            Endpoint::Node(n, g) => &mut self.node_in[n.index()][g.index()],
        };
        let was_empty = q.is_empty();
        q.push(pkt)?;
        if was_empty {
            self.pending.push(to);
        }
        Ok(())
    }
}

/// What a node sees while it runs: the time, its outputs, the pool for copies, its counters.
pub struct Ctx<'a> {
    /// The worker's clock, read once per loop turn.
    pub now: Timestamp,
    wires: &'a [Option<Endpoint>],
    queues: &'a mut Queues,
    pool: &'a mut Pool,
    counters: &'a NodeCounters,
    /// Packets emitted in this call, added to `counters.packets_out` once at the end.
    emitted: u64,
    /// The node running, and the trace if one is recording (for drops of traced packets).
    node: NodeId,
    trace: Option<&'a mut Trace>,
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        self.counters.packets_out.add(self.emitted);
    }
}

impl<'a> Ctx<'a> {
    /// Send `pkt` out of `gate`.
    #[inline(always)]
    pub fn emit(&mut self, gate: Gate, pkt: Packet) {
        match self.wires.get(gate.index()).copied().flatten() {
            None => self.drop(pkt, DropReason::Unwired),
            Some(to) => match self.queues.enqueue(to, pkt) {
                Ok(()) => self.emitted += 1,
                Err(pkt) => self.drop(pkt, DropReason::QueueFull),
            },
        }
    }

    /// Send every packet of `batch` out of `gate`, in order, leaving `batch` empty. When the
    /// queue behind the gate is empty (the usual case) the whole batch moves at once.
    #[inline]
    pub fn emit_all(&mut self, gate: Gate, batch: &mut Batch) {
        let Some(to) = self.wires.get(gate.index()).copied().flatten() else {
            for pkt in batch.drain() {
                self.drop(pkt, DropReason::Unwired);
            }
            return;
        };
        let n = batch.len();
        self.queues.enqueue_all(to, batch);
        self.emitted += (n - batch.len()) as u64;
        for pkt in batch.drain() {
            match self.queues.enqueue(to, pkt) {
                Ok(()) => self.emitted += 1,
                Err(pkt) => self.drop(pkt, DropReason::QueueFull),
            }
        }
    }

    /// Drop `pkt`, counting it under `reason`, and return its buffer to the pool.
    #[inline]
    pub fn drop(&mut self, pkt: Packet, reason: DropReason) {
        self.counters.drops.add(reason, 1);
        if pkt.meta.trace != 0 {
            self.traced(&pkt, TraceEvent::Drop(self.node, reason));
        }
        self.pool.free(pkt);
    }

    #[cold]
    fn traced(&mut self, pkt: &Packet, event: TraceEvent) {
        if let Some(t) = self.trace.as_deref_mut() {
            let now = self.now.max(crate::time::Clock::global().now());
            t.record(pkt.meta.trace, now, event);
        }
    }

    /// Take `pkt` in for good: the node used it (an ARP reply it learned from, a request it
    /// answered with a new packet). Counted as consumed, not as a drop.
    #[inline]
    pub fn consume(&mut self, pkt: Packet) {
        self.counters.consumed.add(1);
        if pkt.meta.trace != 0 {
            self.traced(&pkt, TraceEvent::Consumed(self.node));
        }
        self.pool.free(pkt);
    }

    /// A fresh, empty packet from the pool (for a packet the node makes itself: an ARP
    /// request, an ICMP error, a DHCP reply), or `None` if the pool is empty.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        self.pool.alloc()
    }

    /// Count `pkt` as dropped for `reason` while its buffer lives on as a new packet the node
    /// answers with (an ICMP error, a TCP reset, built in place). A trace records the drop
    /// and goes on following the answer.
    #[inline]
    pub fn drop_reused(&mut self, pkt: &Packet, reason: DropReason) {
        self.counters.drops.add(reason, 1);
        if pkt.meta.trace != 0 {
            self.traced(pkt, TraceEvent::Drop(self.node, reason));
        }
    }

    /// Count a drop for a packet that was never made (a copy the pool had no buffer for).
    #[inline]
    pub fn count_drop(&mut self, reason: DropReason) {
        self.counters.drops.add(reason, 1);
    }

    /// A copy of `pkt` in a new buffer, or `None` if the pool is empty.
    #[inline]
    pub fn clone_packet(&mut self, pkt: &Packet) -> Option<Packet> {
        self.pool.clone_packet(pkt)
    }

    /// Packets the queue behind `gate` can still take in this run (0 if the gate is not
    /// wired): a node that makes optional copies (a mirror) makes no more than fit, so that
    /// a full receiver costs it nothing.
    #[inline]
    pub fn room(&self, gate: Gate) -> usize {
        match self.wires.get(gate.index()).copied().flatten() {
            None => 0,
            Some(Endpoint::Port(p)) => self.queues.port_out[p.index()].room(),
            Some(Endpoint::Node(n, g)) => self.queues.node_in[n.index()][g.index()].room(),
        }
    }

    /// Number of gates the node has.
    #[inline]
    pub fn gates(&self) -> usize {
        self.wires.len()
    }

    /// True if `gate` has a wire.
    #[inline]
    pub fn is_wired(&self, gate: Gate) -> bool {
        matches!(self.wires.get(gate.index()), Some(Some(_)))
    }
}

/// Errors found while wiring a graph (a bug in the caller, normally caught by validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// The endpoint names a port or node that does not exist, or a gate past the node's last.
    NoSuchEndpoint(Endpoint),
    /// The endpoint already has a wire.
    AlreadyWired(Endpoint),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::NoSuchEndpoint(e) => write!(f, "no such endpoint {e:?}"),
            GraphError::AlreadyWired(e) => write!(f, "endpoint {e:?} is already wired"),
        }
    }
}

impl std::error::Error for GraphError {}

/// Builds a [`Graph`]: add ports and nodes, then wire their ends.
#[derive(Default)]
pub struct GraphBuilder {
    ports: Vec<(String, Box<dyn Port>)>,
    nodes: Vec<(String, Box<dyn Node>)>,
    port_wires: Vec<Option<Endpoint>>,
    node_wires: Vec<Vec<Option<Endpoint>>>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a port.
    pub fn add_port(&mut self, name: impl Into<String>, port: Box<dyn Port>) -> PortId {
        self.ports.push((name.into(), port));
        self.port_wires.push(None);
        PortId((self.ports.len() - 1) as u16)
    }

    /// Add a node with `gates` gates.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        gates: usize,
        node: Box<dyn Node>,
    ) -> NodeId {
        self.nodes.push((name.into(), node));
        self.node_wires.push(vec![None; gates]);
        NodeId((self.nodes.len() - 1) as u16)
    }

    fn slot(&mut self, e: Endpoint) -> Result<&mut Option<Endpoint>, GraphError> {
        match e {
            Endpoint::Port(p) => self.port_wires.get_mut(p.index()),
            Endpoint::Node(n, g) => self
                .node_wires
                .get_mut(n.index())
                .and_then(|w| w.get_mut(g.index())),
        }
        .ok_or(GraphError::NoSuchEndpoint(e))
    }

    /// Wire `a` to `b` (both ways).
    pub fn connect(&mut self, a: Endpoint, b: Endpoint) -> Result<(), GraphError> {
        for e in [a, b] {
            if self.slot(e)?.is_some() {
                return Err(GraphError::AlreadyWired(e));
            }
        }
        *self.slot(a)? = Some(b);
        *self.slot(b)? = Some(a);
        Ok(())
    }

    /// Finish the graph; its counters belong to worker `worker`.
    pub fn build(self, worker: WorkerId) -> Graph {
        let ends = self.ports.len() + self.node_wires.iter().map(Vec::len).sum::<usize>();
        let queues = Queues {
            node_in: self
                .node_wires
                .iter()
                .map(|w| (0..w.len()).map(|_| Batch::new()).collect())
                .collect(),
            port_out: (0..self.ports.len()).map(|_| Batch::new()).collect(),
            pending: Vec::with_capacity(ends),
        };
        let counters = Arc::new(WorkerCounters::new(
            worker,
            self.ports.len(),
            self.nodes.len(),
        ));
        let (port_names, ports): (Vec<String>, Vec<Box<dyn Port>>) = self.ports.into_iter().unzip();
        let (node_names, nodes) = self.nodes.into_iter().unzip();
        let takes_offloads: Vec<bool> = ports.iter().map(|p| p.offloads()).collect();
        Graph {
            offloading: takes_offloads.contains(&true),
            takes_offloads,
            gso_in: Batch::new(),
            ports,
            port_names,
            port_wires: self.port_wires,
            nodes,
            node_names,
            node_wires: self.node_wires,
            queues,
            scratch: Batch::new(),
            ends: ends.max(1),
            budget: ends.max(1) * usize::from(HOP_LIMIT),
            counters,
            trace: None,
            capture: None,
        }
    }
}

/// A graph taken apart (to build another around some of its ports and nodes).
pub struct GraphParts {
    /// The ports, by name, in `PortId` order.
    pub ports: Vec<(String, Box<dyn Port>)>,
    /// The nodes, by name, in `NodeId` order.
    pub nodes: Vec<(String, Box<dyn Node>)>,
    /// The graph's counters.
    pub counters: Arc<WorkerCounters>,
}

/// Ports and nodes wired together, with the queues to run them. Owned by one worker.
pub struct Graph {
    ports: Vec<Box<dyn Port>>,
    port_names: Vec<String>,
    port_wires: Vec<Option<Endpoint>>,
    nodes: Vec<Box<dyn Node>>,
    node_names: Vec<String>,
    node_wires: Vec<Vec<Option<Endpoint>>>,
    queues: Queues,
    scratch: Batch,
    /// Whether each port takes frames that left work to it ([`Port::offloads`]); only such
    /// ports make them, so a graph without one (`offloading` false) never looks.
    takes_offloads: Vec<bool>,
    offloading: bool,
    /// The batch for a port that does not take them, while the graph finishes its frames.
    gso_in: Batch,
    /// Wire ends: node calls a run makes before it counts hops (see the module doc).
    ends: usize,
    /// Node calls one run may make ([`HOP_LIMIT`] per wire end) before what is still queued
    /// for nodes is dropped (see the module doc).
    budget: usize,
    counters: Arc<WorkerCounters>,
    /// A trace being recorded, if any (checked once per burst, never per packet).
    trace: Option<Box<Trace>>,
    /// A capture on one wire, if any (checked once per burst).
    capture: Option<Capture>,
}

/// Make every frame of `batch` whole for `port`, which takes no offloads (see
/// [`crate::offload`]): finish begun checksums, cut super-frames into segments. Segments
/// that overfill the batch are sent on the way; what is left stays in `batch` to send.
#[cold]
fn finish_offloads(
    port: &mut dyn Port,
    batch: &mut Batch,
    spare: &mut Batch,
    pool: &mut Pool,
    counters: &PortCounters,
) {
    std::mem::swap(batch, spare);
    for pkt in spare.drain() {
        crate::offload::make_whole(pkt, pool, &counters.drops, |p, pool| {
            push_or_send(port, batch, p, pool, counters)
        });
    }
}

/// Append `pkt` to `batch`, sending the batch first if it is full.
fn push_or_send(
    port: &mut dyn Port,
    batch: &mut Batch,
    pkt: Packet,
    pool: &mut Pool,
    counters: &PortCounters,
) {
    if batch.is_full() {
        port.tx_burst(batch, pool, counters);
    }
    if let Err(pkt) = batch.push(pkt) {
        counters.drops.add(DropReason::Internal, 1);
        pool.free(pkt);
    }
}

/// Trace and capture the batch queued at `end`, about to be handed over there.
#[cold]
fn observe(
    trace: &mut Option<Box<Trace>>,
    capture: &mut Option<Capture>,
    end: Endpoint,
    batch: &Batch,
    now: Timestamp,
) {
    // The turn's time is the same for every step of a burst; a trace or capture reads the
    // clock itself (only while one runs), so that a reply is seen after its request.
    let now = now.max(crate::time::Clock::global().now());
    if let Some(t) = trace {
        let event = match end {
            Endpoint::Port(p) => TraceEvent::Tx(p),
            Endpoint::Node(n, g) => TraceEvent::Node(n, g),
        };
        for pkt in batch.iter() {
            if pkt.meta.trace != 0 {
                t.record(pkt.meta.trace, now, event);
            }
        }
    }
    if let Some(c) = capture {
        if c.watches(end) {
            for pkt in batch.iter() {
                c.copy(pkt, end, now);
            }
        }
    }
}

/// Count a hop for every packet of `batch` (queued for node `node`) and drop those past the
/// hop limit, or all of them if `all`, as [`DropReason::HopLimit`]; the rest stay in order.
#[cold]
#[inline(never)]
fn hop_limit(
    batch: &mut Batch,
    all: bool,
    pool: &mut Pool,
    counters: &NodeCounters,
    node: NodeId,
    trace: &mut Option<Box<Trace>>,
    now: Timestamp,
) {
    for pkt in batch.take_if(|p| {
        p.meta.hops = p.meta.hops.saturating_add(1);
        all || p.meta.hops > HOP_LIMIT
    }) {
        counters.drops.add(DropReason::HopLimit, 1);
        if pkt.meta.trace != 0 {
            if let Some(t) = trace.as_deref_mut() {
                let now = now.max(crate::time::Clock::global().now());
                t.record(
                    pkt.meta.trace,
                    now,
                    TraceEvent::Drop(node, DropReason::HopLimit),
                );
            }
        }
        pool.free(pkt);
    }
}

impl Graph {
    /// Take the graph apart. Its queues must be empty (they are between turns); a packet
    /// left in one would be lost with the queue, so they are freed to `pool` first.
    pub fn into_parts(mut self, pool: &mut Pool) -> GraphParts {
        for q in self.queues.node_in.iter_mut().flatten() {
            for pkt in q.drain() {
                pool.free(pkt);
            }
        }
        for q in &mut self.queues.port_out {
            for pkt in q.drain() {
                pool.free(pkt);
            }
        }
        GraphParts {
            ports: self.port_names.into_iter().zip(self.ports).collect(),
            nodes: self.node_names.into_iter().zip(self.nodes).collect(),
            counters: self.counters,
        }
    }

    /// Start recording `trace`, replacing any trace being recorded.
    pub fn set_trace(&mut self, trace: Option<Box<Trace>>) -> Option<Box<Trace>> {
        std::mem::replace(&mut self.trace, trace)
    }

    /// The trace being recorded.
    pub fn trace(&self) -> Option<&Trace> {
        self.trace.as_deref()
    }

    /// Start `capture` (replacing any capture running), or stop capturing with `None`.
    pub fn set_capture(&mut self, capture: Option<Capture>) -> Option<Capture> {
        std::mem::replace(&mut self.capture, capture)
    }

    /// The capture running.
    pub fn capture(&self) -> Option<&Capture> {
        self.capture.as_ref()
    }

    /// The far end of the wire at `end`, if it is wired.
    pub fn peer(&self, end: Endpoint) -> Option<Endpoint> {
        match end {
            Endpoint::Port(p) => self.port_wires.get(p.index()).copied().flatten(),
            Endpoint::Node(n, g) => self
                .node_wires
                .get(n.index())
                .and_then(|w| w.get(g.index()))
                .copied()
                .flatten(),
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of gates of node `id`.
    pub fn gate_count(&self, id: NodeId) -> usize {
        self.node_wires.get(id.index()).map_or(0, Vec::len)
    }

    /// The graph's counters (shared with readers).
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Number of ports.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// Port names, indexed by `PortId`.
    pub fn port_names(&self) -> &[String] {
        &self.port_names
    }

    /// Node names, indexed by `NodeId`.
    pub fn node_names(&self) -> &[String] {
        &self.node_names
    }

    /// The port with id `id`.
    pub fn port(&self, id: PortId) -> Option<&dyn Port> {
        self.ports.get(id.index()).map(|p| p.as_ref())
    }

    /// Ask every port to signal its wait descriptor before the worker sleeps; false if one
    /// has frames waiting already (every port is asked either way).
    pub fn prepare_sleep(&mut self) -> bool {
        let mut ok = true;
        for p in &mut self.ports {
            ok &= p.prepare_sleep();
        }
        ok
    }

    /// Let every port read the kernel's counts of it ([`Port::refresh`]).
    pub fn refresh_ports(&mut self) {
        for (p, c) in self.ports.iter_mut().zip(self.counters.ports.iter()) {
            p.refresh(c);
        }
    }

    /// Tell every port the worker woke up.
    pub fn after_sleep(&mut self) {
        for p in &mut self.ports {
            p.after_sleep();
        }
    }

    /// The node with id `id` (e.g. to read its state after the worker stopped).
    pub fn node(&self, id: NodeId) -> Option<&dyn Node> {
        self.nodes.get(id.index()).map(|n| n.as_ref())
    }

    /// Receive up to a burst from `port`, run it through the graph and transmit what comes
    /// out. Returns the number of packets received.
    pub fn poll_port(&mut self, port: PortId, pool: &mut Pool, now: Timestamp) -> usize {
        let p = port.index();
        let counters = &self.counters.ports[p];
        let rx = &mut self.scratch;
        self.ports[p].rx_burst(pool, rx, counters);
        let n = rx.len();
        if n == 0 {
            return 0;
        }
        if let Some(t) = &mut self.trace {
            for pkt in rx.iter_mut() {
                t.pick(pkt, port, now);
            }
        }
        match self.port_wires[p] {
            None => {
                for pkt in rx.drain() {
                    counters.drops.add(DropReason::Unwired, 1);
                    if let Some(t) = &mut self.trace {
                        let e = TraceEvent::PortDrop(port, DropReason::Unwired);
                        t.record(pkt.meta.trace, now, e);
                    }
                    pool.free(pkt);
                }
            }
            Some(to) => {
                for pkt in rx.iter_mut() {
                    pkt.meta.rx_port = port;
                    pkt.meta.offsets = crate::packet::Offsets::UNPARSED;
                    pkt.meta.hops = 0;
                }
                // The common case: the queue is empty and takes the whole burst at once.
                self.queues.enqueue_all(to, rx);
                for pkt in rx.drain() {
                    if let Err(pkt) = self.queues.enqueue(to, pkt) {
                        counters.drops.add(DropReason::QueueFull, 1);
                        if let Some(t) = &mut self.trace {
                            let e = TraceEvent::PortDrop(port, DropReason::QueueFull);
                            t.record(pkt.meta.trace, now, e);
                        }
                        pool.free(pkt);
                    }
                }
            }
        }
        self.run(pool, now);
        n
    }

    /// Run every node's timers, then deliver whatever they emitted.
    pub fn tick(&mut self, pool: &mut Pool, now: Timestamp) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let mut ctx = Ctx {
                now,
                wires: &self.node_wires[i],
                queues: &mut self.queues,
                pool,
                counters: &self.counters.nodes[i],
                emitted: 0,
                node: NodeId(i as u16),
                trace: self.trace.as_deref_mut(),
            };
            node.tick(&mut ctx);
        }
        self.run(pool, now);
    }

    /// Inject one packet as if `port` had received it, and run the graph (slow path: tests
    /// and control-plane injection).
    pub fn inject(&mut self, port: PortId, mut pkt: Packet, pool: &mut Pool, now: Timestamp) {
        let Some(Some(to)) = self.port_wires.get(port.index()).copied() else {
            pool.free(pkt);
            return;
        };
        pkt.meta.rx_port = port;
        pkt.meta.offsets = crate::packet::Offsets::UNPARSED;
        pkt.meta.hops = 0;
        if let Some(t) = &mut self.trace {
            t.pick(&mut pkt, port, now);
        }
        self.counters.ports[port.index()].rx(pkt.len());
        if let Err(pkt) = self.queues.enqueue(to, pkt) {
            self.counters.ports[port.index()]
                .drops
                .add(DropReason::QueueFull, 1);
            pool.free(pkt);
        }
        self.run(pool, now);
    }

    /// Deliver every queued batch until no queue has work. Packets past the hop limit, and
    /// every batch queued for a node once the run has made `budget` node calls, are dropped
    /// as [`DropReason::HopLimit`] at the node (see the module doc).
    fn run(&mut self, pool: &mut Pool, now: Timestamp) {
        let mut calls = 0usize;
        while let Some(end) = self.queues.pending.pop() {
            match end {
                Endpoint::Port(p) => {
                    let i = p.index();
                    let batch = &mut self.queues.port_out[i];
                    if self.trace.is_some() || self.capture.is_some() {
                        observe(&mut self.trace, &mut self.capture, end, batch, now);
                    }
                    if self.offloading
                        && !self.takes_offloads[i]
                        && batch.iter().any(|p| p.meta.offloaded)
                    {
                        finish_offloads(
                            &mut *self.ports[i],
                            batch,
                            &mut self.gso_in,
                            pool,
                            &self.counters.ports[i],
                        );
                    }
                    self.ports[i].tx_burst(batch, pool, &self.counters.ports[i]);
                    for pkt in batch.drain() {
                        self.counters.ports[i].drops.add(DropReason::Internal, 1);
                        pool.free(pkt);
                    }
                }
                Endpoint::Node(n, g) => {
                    let i = n.index();
                    std::mem::swap(&mut self.queues.node_in[i][g.index()], &mut self.scratch);
                    if self.trace.is_some() || self.capture.is_some() {
                        observe(&mut self.trace, &mut self.capture, end, &self.scratch, now);
                    }
                    let counters = &self.counters.nodes[i];
                    counters.packets_in.add(self.scratch.len() as u64);
                    calls += 1;
                    // A loop-free run calls each wire end's node a few times at most; only a
                    // run past one call per wire end counts hops (one compare per call
                    // otherwise).
                    if calls > self.ends {
                        hop_limit(
                            &mut self.scratch,
                            calls > self.budget,
                            pool,
                            counters,
                            n,
                            &mut self.trace,
                            now,
                        );
                        if self.scratch.is_empty() {
                            continue;
                        }
                    }
                    let mut ctx = Ctx {
                        now,
                        wires: &self.node_wires[i],
                        queues: &mut self.queues,
                        pool,
                        counters,
                        emitted: 0,
                        node: n,
                        trace: self.trace.as_deref_mut(),
                    };
                    self.nodes[i].process(g, &mut self.scratch, &mut ctx);
                    drop(ctx);
                    for pkt in self.scratch.drain() {
                        counters.drops.add(DropReason::Internal, 1);
                        pool.free(pkt);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::{RingPeer, RingPort};

    /// Sends everything from gate 0 to gate 1 and back; drops frames starting with 0xdd;
    /// "forgets" frames starting with 0xee (a buggy node).
    struct Cross;

    impl Node for Cross {
        fn kind(&self) -> &'static str {
            "cross"
        }

        fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
            let mut keep = Vec::new();
            for pkt in batch.drain() {
                match pkt.data()[0] {
                    0xdd => ctx.drop(pkt, DropReason::BadHeader),
                    0xee => keep.push(pkt),
                    _ => ctx.emit(Gate(1 - input.0), pkt),
                }
            }
            for p in keep {
                let _ = batch.push(p);
            }
        }
    }

    /// Sends its first frame out of gate 1 alone, then the rest as one batch.
    struct Gather;

    impl Node for Gather {
        fn kind(&self) -> &'static str {
            "gather"
        }

        fn process(&mut self, _input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
            let mut rest = Batch::new();
            for (i, pkt) in batch.drain().enumerate() {
                if i == 0 {
                    ctx.emit(Gate(1), pkt);
                } else if let Err(pkt) = rest.push(pkt) {
                    ctx.drop(pkt, DropReason::Internal);
                }
            }
            ctx.emit_all(Gate(1), &mut rest);
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn a_whole_batch_follows_what_the_queue_holds_in_order_or_is_dropped_unwired() {
        for wired in [true, false] {
            let (mut g, a, peer_b) = two_ports_with(Box::new(Gather), wired);
            let ia = PortId(0);
            let mut pool = Pool::new(128);
            for i in 0..64u8 {
                let mut f = frame(1);
                f[2] = i;
                assert!(a.send(&f));
            }
            assert_eq!(g.poll_port(ia, &mut pool, Timestamp::ZERO), 64);
            let c = g.counters().clone();
            let got: Vec<u8> = peer_b.recv_all().iter().map(|f| f[2]).collect();
            if wired {
                assert_eq!(got, (0..64).collect::<Vec<u8>>());
                assert_eq!(c.nodes[0].packets_out.get(), 64);
                assert_eq!(c.total_drops(), 0);
            } else {
                assert!(got.is_empty());
                assert_eq!(c.nodes[0].packets_out.get(), 0);
                assert_eq!(c.nodes[0].drops.get(DropReason::Unwired), 64);
            }
            assert_eq!(pool.available(), 128, "every buffer is back");
        }
    }

    fn frame(first: u8) -> Vec<u8> {
        let mut f = vec![first; 60];
        f[1] = 0;
        f
    }

    fn two_ports(wire_b: bool) -> (Graph, RingPeer, RingPeer) {
        two_ports_with(Box::new(Cross), wire_b)
    }

    /// Ports a and b around `node` (two gates): a into gate 0, gate 1 out to b if `wire_b`.
    fn two_ports_with(node: Box<dyn Node>, wire_b: bool) -> (Graph, RingPeer, RingPeer) {
        let mut b = GraphBuilder::new();
        let (pa, a) = RingPort::new(256);
        let (pb, bb) = RingPort::new(256);
        let n = b.add_node("x", 2, node);
        let ia = b.add_port("a", Box::new(pa));
        let ib = b.add_port("b", Box::new(pb));
        b.connect(Endpoint::Port(ia), Endpoint::Node(n, Gate(0)))
            .expect("wire a");
        if wire_b {
            b.connect(Endpoint::Node(n, Gate(1)), Endpoint::Port(ib))
                .expect("wire b");
        }
        (b.build(WorkerId(0)), a, bb)
    }

    #[test]
    fn wiring_errors_are_reported() {
        let mut b = GraphBuilder::new();
        let (p, _) = RingPort::new(4);
        let port = b.add_port("a", Box::new(p));
        let n = b.add_node("x", 1, Box::new(Cross));
        assert_eq!(
            b.connect(Endpoint::Port(port), Endpoint::Node(n, Gate(1))),
            Err(GraphError::NoSuchEndpoint(Endpoint::Node(n, Gate(1))))
        );
        b.connect(Endpoint::Port(port), Endpoint::Node(n, Gate(0)))
            .expect("first wire");
        assert_eq!(
            b.connect(Endpoint::Node(n, Gate(0)), Endpoint::Port(port)),
            Err(GraphError::AlreadyWired(Endpoint::Node(n, Gate(0))))
        );
    }

    #[test]
    fn packets_cross_the_graph_in_order_and_buffers_return() {
        let (mut g, a, b) = two_ports(true);
        let mut pool = Pool::new(128);
        for i in 0..100u8 {
            let mut f = frame(1);
            f[2] = i;
            assert!(a.send(&f));
        }
        // Bursts of at most 64: two polls take 100 frames.
        assert_eq!(g.poll_port(PortId(0), &mut pool, Timestamp::ZERO), 64);
        assert_eq!(g.poll_port(PortId(0), &mut pool, Timestamp::ZERO), 36);
        assert_eq!(g.poll_port(PortId(0), &mut pool, Timestamp::ZERO), 0);
        let got: Vec<u8> = b.recv_all().iter().map(|f| f[2]).collect();
        assert_eq!(got, (0..100).collect::<Vec<u8>>());
        let c = g.counters();
        assert_eq!(c.ports[0].rx_packets.get(), 100);
        assert_eq!(c.ports[1].tx_packets.get(), 100);
        assert_eq!(c.ports[1].tx_bytes.get(), 6000);
        assert_eq!(c.nodes[0].packets_in.get(), 100);
        assert_eq!(c.nodes[0].packets_out.get(), 100);
        assert_eq!(c.total_drops(), 0);
    }

    #[test]
    fn every_packet_gets_a_verdict_or_is_counted() {
        let (mut g, a, b) = two_ports(false);
        let mut pool = Pool::new(16);
        for first in [1, 0xdd, 0xee] {
            assert!(a.send(&frame(first)));
        }
        g.poll_port(PortId(0), &mut pool, Timestamp::ZERO);
        assert!(b.recv().is_none());
        let c = g.counters().clone();
        assert_eq!(c.nodes[0].drops.get(DropReason::Unwired), 1);
        assert_eq!(c.nodes[0].drops.get(DropReason::BadHeader), 1);
        assert_eq!(c.nodes[0].drops.get(DropReason::Internal), 1);
        // An unwired port's frames are dropped at the port.
        assert!(b.send(&frame(1)));
        g.poll_port(PortId(1), &mut pool, Timestamp::ZERO);
        assert_eq!(c.ports[1].drops.get(DropReason::Unwired), 1);
        assert_eq!(c.total_drops(), 4);
    }

    /// Floods like a switch that has learned nothing: a copy of every packet out of every
    /// other wired gate.
    struct Flood;

    impl Node for Flood {
        fn kind(&self) -> &'static str {
            "flood"
        }

        fn process(&mut self, input: Gate, batch: &mut Batch, ctx: &mut Ctx<'_>) {
            for pkt in batch.drain() {
                for g in (0..ctx.gates() as u16).map(Gate) {
                    if g != input && ctx.is_wired(g) {
                        match ctx.clone_packet(&pkt) {
                            Some(copy) => ctx.emit(g, copy),
                            None => ctx.count_drop(DropReason::NoBuffers),
                        }
                    }
                }
                ctx.consume(pkt);
            }
        }
    }

    /// Free what the dataplane sent to `peer` back to `pool`; how many.
    fn give_back(peer: &RingPeer, pool: &mut Pool) -> usize {
        std::iter::from_fn(|| peer.recv_packet())
            .map(|p| pool.free(p))
            .count()
    }

    /// Two flooding nodes with a port each (on gate 0) and `wires` wires between them (gates
    /// 1..=wires of each).
    fn flood_loop(wires: u16) -> (Graph, RingPeer, RingPeer) {
        let mut b = GraphBuilder::new();
        let (pa, a) = RingPort::new(4096);
        let (pb, bb) = RingPort::new(4096);
        let x = b.add_node("x", 1 + usize::from(wires), Box::new(Flood));
        let y = b.add_node("y", 1 + usize::from(wires), Box::new(Flood));
        let ia = b.add_port("a", Box::new(pa));
        let ib = b.add_port("b", Box::new(pb));
        b.connect(Endpoint::Port(ia), Endpoint::Node(x, Gate(0)))
            .expect("wire a");
        b.connect(Endpoint::Port(ib), Endpoint::Node(y, Gate(0)))
            .expect("wire b");
        for w in 1..=wires {
            b.connect(Endpoint::Node(x, Gate(w)), Endpoint::Node(y, Gate(w)))
                .expect("loop wire");
        }
        (b.build(WorkerId(0)), a, bb)
    }

    #[test]
    fn a_broadcast_round_a_loop_dies_at_the_hop_limit() {
        let (mut g, a, b) = flood_loop(2);
        let mut pool = Pool::new(256);
        assert!(a.send(&frame(1)));
        // Without a hop limit this call never returns: each of the two copies x floods goes
        // round x -> y -> x for ever.
        assert_eq!(g.poll_port(PortId(0), &mut pool, Timestamp::ZERO), 1);
        let c = g.counters().clone();
        let hop_drops =
            c.nodes[0].drops.get(DropReason::HopLimit) + c.nodes[1].drops.get(DropReason::HopLimit);
        assert_eq!(hop_drops, 2, "each circulating copy is dropped once");
        assert_eq!(c.total_drops(), 2, "and nothing else is");
        // Each copy went round until the run had made one call per wire end, then HOP_LIMIT
        // more: y sent one to b at each of its calls, x one to a at each of its calls but
        // the first.
        // The calls alternate x, y: half of the first `ends` are y's.
        let (limit, half) = (usize::from(HOP_LIMIT), g.ends / 2);
        assert_eq!(give_back(&b, &mut pool), half + limit);
        assert_eq!(give_back(&a, &mut pool), half - 1 + limit);
        assert_eq!(pool.available(), 256, "every buffer is back");
    }

    #[test]
    fn a_loop_that_multiplies_copies_ends_within_the_run_budget() {
        // Three wires: every copy comes back as two, so the hop limit alone would allow
        // about 2^32 node calls; the run's budget ends it.
        let (mut g, a, b) = flood_loop(3);
        let mut pool = Pool::new(1024);
        assert!(a.send(&frame(1)));
        assert_eq!(g.poll_port(PortId(0), &mut pool, Timestamp::ZERO), 1);
        let c = g.counters().clone();
        let calls = c.nodes[0].packets_in.get() + c.nodes[1].packets_in.get();
        let ends = 2 + 2 * 4;
        assert!(c.nodes[0].drops.get(DropReason::HopLimit) > 0);
        assert!(c.nodes[1].drops.get(DropReason::HopLimit) > 0);
        // Packets in, not calls, are counted: at most a burst per call within the budget.
        assert!(calls <= (ends * usize::from(HOP_LIMIT) * crate::BURST) as u64 + 10_000);
        give_back(&a, &mut pool);
        give_back(&b, &mut pool);
        assert_eq!(pool.available(), 1024, "every buffer is back");
    }

    #[test]
    fn the_hop_count_starts_at_zero_for_every_received_packet() {
        // A packet that went round before (a hop count from a previous run) starts afresh.
        let (mut g, a, b) = two_ports(true);
        let mut pool = Pool::new(16);
        let mut pkt = Packet::from_bytes(&frame(1)).expect("fits");
        pkt.meta.hops = HOP_LIMIT;
        g.inject(PortId(0), pkt, &mut pool, Timestamp::ZERO);
        assert!(a.send(&frame(1)));
        g.poll_port(PortId(0), &mut pool, Timestamp::ZERO);
        assert_eq!(b.recv_all().len(), 2);
        assert_eq!(g.counters().total_drops(), 0);
    }

    #[test]
    fn a_full_ring_is_a_tx_full_drop() {
        let mut b = GraphBuilder::new();
        let (pa, a) = RingPort::new(128);
        let (pb, peer_b) = RingPort::new(10);
        let n = b.add_node("x", 2, Box::new(Cross));
        let ia = b.add_port("a", Box::new(pa));
        let ib = b.add_port("b", Box::new(pb));
        b.connect(Endpoint::Port(ia), Endpoint::Node(n, Gate(0)))
            .expect("wire");
        b.connect(Endpoint::Port(ib), Endpoint::Node(n, Gate(1)))
            .expect("wire");
        let mut g = b.build(WorkerId(0));
        let mut pool = Pool::new(64);
        for _ in 0..30 {
            assert!(a.send(&frame(1)));
        }
        g.poll_port(ia, &mut pool, Timestamp::ZERO);
        assert_eq!(peer_b.recv_all().len(), 10);
        assert_eq!(g.counters().ports[1].drops.get(DropReason::TxFull), 20);
    }
}
