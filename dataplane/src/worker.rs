//! Workers: a thread that owns a graph and a pool and polls its ports in a loop.
//!
//! Each loop turn reads the clock once, takes at most one burst from every port (the burst
//! budget, so no port starves the others), runs it through the graph to completion, and
//! runs node timers about once a millisecond. When turns find nothing, the worker backs off
//! in three steps, driven by how many turns in a row were empty: it spins, then yields its
//! core, then sleeps in `poll(2)` on its ports' descriptors with a timeout that grows to a
//! few milliseconds; a frame ends the sleep at once, and a busy turn resets the back-off.
//! A busy worker never sleeps.

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

/// A worker: its graph, its pool and its clock.
pub struct Worker {
    id: WorkerId,
    graph: Graph,
    pool: Pool,
    clock: Clock,
    stop: Arc<AtomicBool>,
}

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
        Worker {
            id,
            graph,
            pool,
            clock: Clock::global(),
            stop: Arc::new(AtomicBool::new(false)),
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
        let counters = self.graph.counters().clone();
        let mut fds: Vec<libc::pollfd> = (0..self.graph.port_count())
            .filter_map(|p| self.graph.port(PortId(p as u16)).and_then(|p| p.wait_fd()))
            .map(sys::pollfd)
            .collect();
        let mut backoff = Backoff::default();
        let mut last_tick = Timestamp::ZERO;
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
    }

    /// Start the worker on a thread of its own.
    pub fn spawn(mut self) -> std::io::Result<WorkerHandle> {
        let stop = self.stop.clone();
        let counters = self.graph.counters().clone();
        let thread = std::thread::Builder::new()
            .name(format!("nfv-worker-{}", self.id))
            .spawn(move || {
                self.run();
                self
            })?;
        Ok(WorkerHandle {
            stop,
            counters,
            thread,
        })
    }
}

/// A running worker.
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
    counters: Arc<WorkerCounters>,
    thread: JoinHandle<Worker>,
}

impl WorkerHandle {
    /// The worker's counters, readable while it runs.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Ask the worker to stop after its current turn.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// True if the worker's thread has ended (stopped, or panicked).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Stop the worker and wait for it; gives the worker back (or the panic message).
    pub fn join(self) -> Result<Worker, String> {
        self.stop();
        self.thread.join().map_err(|e| {
            e.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "worker panicked".to_string())
        })
    }
}
