//! Workers: a thread that owns a graph and a pool and polls its ports in a loop.
//!
//! Each loop turn reads the clock once, takes at most one burst from every port (the burst
//! budget, so no port starves the others), runs it through the graph to completion, and
//! runs node timers about once a millisecond. When turns find nothing, the worker backs off
//! in three steps, driven by how many turns in a row were empty: it spins, then yields its
//! core, then sleeps in `poll(2)` on its ports' descriptors with a timeout that grows to a
//! few milliseconds; a frame ends the sleep at once, and a busy turn resets the back-off.
//! A busy worker never sleeps.
//!
//! The rest of the process talks to a running worker through its command mailbox: a
//! closure sent with [`WorkerHandle::call`] runs on the worker between two turns (with the
//! graph idle, every queue empty), so reading a node's state or replacing part of the graph
//! needs no lock on the packet path. The mailbox is looked at when node timers run, about
//! once a millisecond.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::counters::WorkerCounters;
use crate::graph::Graph;
use crate::ids::{PortId, WorkerId};
use crate::packet::Pool;
use crate::sys;
use crate::time::{Clock, Timestamp};

/// Empty turns spent spinning before the worker starts yielding.
const SPIN_TURNS: u32 = 2_000;
/// Empty turns spent yielding before the worker starts sleeping.
const YIELD_TURNS: u32 = 200;
/// The longest sleep of an idle worker, in milliseconds (it still wakes at once on input).
const MAX_SLEEP_MS: i32 = 5;
/// How often node timers run.
const TICK_EVERY: Duration = Duration::from_millis(1);

/// Work for a worker, run between two turns.
pub type Command = Box<dyn FnOnce(&mut Worker) + Send>;

/// Commands waiting at most; a sender finds the mailbox full and waits for room.
const MAILBOX: usize = 64;

/// A worker: its graph, its pool and its clock.
pub struct Worker {
    id: WorkerId,
    graph: Graph,
    pool: Pool,
    clock: Clock,
    stop: Arc<AtomicBool>,
    commands: crossbeam_channel::Receiver<Command>,
    mailbox: crossbeam_channel::Sender<Command>,
}

/// Why a command could not be run on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The worker has stopped (or died).
    Stopped,
    /// The worker did not answer in time (it may be stuck; the command may still run).
    Timeout,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Stopped => f.write_str("the worker has stopped"),
            CallError::Timeout => f.write_str("the worker did not answer in time"),
        }
    }
}

impl std::error::Error for CallError {}

/// Back-off state of an idle worker.
#[derive(Debug, Default)]
struct Backoff {
    empty_turns: u32,
}

impl Backoff {
    /// What to do after a turn that received `got` packets: `Some(ms)` to sleep that long.
    fn after_turn(&mut self, got: usize) -> Option<i32> {
        if got > 0 {
            self.empty_turns = 0;
            return None;
        }
        self.empty_turns = self.empty_turns.saturating_add(1);
        if self.empty_turns < SPIN_TURNS {
            std::hint::spin_loop();
        } else if self.empty_turns < SPIN_TURNS + YIELD_TURNS {
            std::thread::yield_now();
        } else {
            let sleeps = self.empty_turns - SPIN_TURNS - YIELD_TURNS;
            return Some((1 + sleeps as i32 / 16).min(MAX_SLEEP_MS));
        }
        None
    }
}

impl Worker {
    /// A worker that will run `graph` with buffers from `pool`.
    pub fn new(id: WorkerId, graph: Graph, pool: Pool) -> Self {
        let (mailbox, commands) = crossbeam_channel::bounded(MAILBOX);
        Worker {
            id,
            graph,
            pool,
            clock: Clock::global(),
            stop: Arc::new(AtomicBool::new(false)),
            commands,
            mailbox,
        }
    }

    /// The graph, to change it between turns (from a command).
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Put `graph` in place of the running one and give the old one back; `counters` are
    /// then the new graph's (see [`WorkerHandle::counters`]).
    pub fn replace_graph(&mut self, graph: Graph) -> Graph {
        std::mem::replace(&mut self.graph, graph)
    }

    /// The pool, to make buffers for a new graph's ports or to check on its level.
    pub fn pool_mut(&mut self) -> &mut Pool {
        &mut self.pool
    }

    /// The worker's clock, now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Run the commands waiting in the mailbox.
    pub fn run_commands(&mut self) {
        while let Ok(cmd) = self.commands.try_recv() {
            cmd(self);
        }
    }

    /// The worker's id.
    pub fn id(&self) -> WorkerId {
        self.id
    }

    /// The graph (to read node state once the worker has stopped).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Poll every port once with time `now`; returns the packets received.
    pub fn turn(&mut self, now: Timestamp) -> usize {
        let mut got = 0;
        for p in 0..self.graph.port_count() {
            got += self.graph.poll_port(PortId(p as u16), &mut self.pool, now);
        }
        got
    }

    /// Run node timers with time `now`.
    pub fn tick(&mut self, now: Timestamp) {
        self.graph.tick(&mut self.pool, now);
    }

    /// Poll until `stop` is set.
    pub fn run(&mut self) {
        let mut counters = self.graph.counters().clone();
        let mut fds = self.wait_fds();
        let mut backoff = Backoff::default();
        let mut last_tick = Timestamp::ZERO;
        let mut last_refresh = Timestamp::ZERO;
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.clock.now();
            let got = self.turn(now);
            counters.loops.add(1);
            if got > 0 {
                counters.busy_loops.add(1);
                counters.burst_packets.add(got as u64);
            }
            if now.since(last_tick) >= TICK_EVERY {
                self.tick(now);
                last_tick = now;
                if now.since(last_refresh) >= crate::port::REFRESH_EVERY {
                    self.graph.refresh_ports();
                    last_refresh = now;
                    // A port whose device went away no longer offers a descriptor.
                    fds = self.wait_fds();
                }
                if !self.commands.is_empty() {
                    self.run_commands();
                    // A command may have replaced the graph: its ports and counters.
                    if !Arc::ptr_eq(&counters, self.graph.counters()) {
                        counters = self.graph.counters().clone();
                        fds = self.wait_fds();
                    }
                }
            }
            if let Some(timeout) = backoff.after_turn(got) {
                // Ports whose peer must be asked to signal (virtio guests) are asked now;
                // if frames slipped in meanwhile, the worker polls on.
                if self.graph.prepare_sleep() {
                    sys::wait_readable(&mut fds, timeout);
                }
                self.graph.after_sleep();
            }
        }
        // The last counts the kernel has, for the exit summary.
        self.graph.refresh_ports();
    }

    fn wait_fds(&self) -> Vec<libc::pollfd> {
        (0..self.graph.port_count())
            .filter_map(|p| self.graph.port(PortId(p as u16)).and_then(|p| p.wait_fd()))
            .map(sys::pollfd)
            .collect()
    }

    /// Start the worker on a thread of its own.
    pub fn spawn(mut self) -> std::io::Result<WorkerHandle> {
        let stop = self.stop.clone();
        let mailbox = self.mailbox.clone();
        let counters = Arc::new(std::sync::Mutex::new(self.graph.counters().clone()));
        let thread = std::thread::Builder::new()
            .name(format!("nfv-worker-{}", self.id))
            .spawn(move || {
                self.run();
                self
            })?;
        Ok(WorkerHandle {
            stop,
            counters,
            mailbox,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }
}

/// A running worker.
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
    /// The running graph's counters; replaced (by [`WorkerHandle::set_counters`]) when a
    /// command replaces the graph. Locked only by readers, never by the worker.
    counters: Arc<std::sync::Mutex<Arc<WorkerCounters>>>,
    mailbox: crossbeam_channel::Sender<Command>,
    /// The thread, until joined.
    thread: std::sync::Mutex<Option<JoinHandle<Worker>>>,
}

impl WorkerHandle {
    /// The running graph's counters, readable while it runs.
    pub fn counters(&self) -> Arc<WorkerCounters> {
        match self.counters.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Record that the worker now runs a graph with `counters` (after a command replaced
    /// its graph).
    pub fn set_counters(&self, counters: Arc<WorkerCounters>) {
        match self.counters.lock() {
            Ok(mut c) => *c = counters,
            Err(p) => *p.into_inner() = counters,
        }
    }

    /// Run `f` on the worker between two turns and give back what it returns; waits at most
    /// `timeout` for the worker to take the command and answer.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Worker) -> R + Send + 'static,
        timeout: Duration,
    ) -> Result<R, CallError> {
        if self.is_finished() {
            return Err(CallError::Stopped);
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let cmd: Command = Box::new(move |w: &mut Worker| {
            let _ = tx.send(f(w));
        });
        match self.mailbox.send_timeout(cmd, timeout) {
            Ok(()) => {}
            Err(crossbeam_channel::SendTimeoutError::Timeout(_)) => return Err(CallError::Timeout),
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                return Err(CallError::Stopped)
            }
        }
        match rx.recv_timeout(timeout) {
            Ok(r) => Ok(r),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if self.is_finished() {
                    Err(CallError::Stopped)
                } else {
                    Err(CallError::Timeout)
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(CallError::Stopped),
        }
    }

    /// Ask the worker to stop after its current turn.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True if the worker's thread has ended (stopped, or panicked), or was joined.
    pub fn is_finished(&self) -> bool {
        let t = match self.thread.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        match t.as_ref() {
            Some(t) => t.is_finished(),
            None => true,
        }
    }

    /// Stop the worker and wait for it; gives the worker back (or the panic message). Only
    /// the first call gets the worker.
    pub fn join(&self) -> Result<Worker, String> {
        self.stop();
        let thread = match self.thread.lock() {
            Ok(mut t) => t.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some(thread) = thread else {
            return Err("the worker was joined already".to_string());
        };
        thread.join().map_err(|e| {
            e.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "worker panicked".to_string())
        })
    }
}
