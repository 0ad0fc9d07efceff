//! vhost-user ports: the virtio-net device of a QEMU VM (or of DPDK's `virtio_user`), served
//! from nfv's worker.
//!
//! Three threads share a port, each with its own part:
//! - The **protocol thread** (`backend`) owns the Unix socket and speaks the vhost-user
//!   protocol through the rust-vmm `vhost` crate: features, the guest's memory table (mapped
//!   with `vm-memory`), ring addresses, kick and call eventfds. It never touches a ring. When
//!   the frontend changes something, it writes the wanted device state under a mutex, bumps a
//!   generation counter and wakes the worker.
//! - The **worker** polls the rings (`virtio-queue` split rings) in `rx_burst`/`tx_burst`. It
//!   reads the generation once per burst (one relaxed atomic load) and only when it moved does
//!   it take the mutex to pick the new state up, then acknowledges it. So the packet path takes
//!   no lock, and a ring is only ever touched by the one thread that polls it.
//! - The **caller** (`caller`) writes the guest's interrupts to its call eventfds when the
//!   worker asks for them, so that the worker never writes to a file the frontend shares
//!   (see "Kick and call fds").
//!
//! Stopping a ring (`GET_VRING_BASE`) needs the ring's position, which only the worker knows:
//! the protocol thread asks for the stop and waits (bounded) for the acknowledgement, in which
//! the worker reports where it stopped. When the frontend disconnects, the wanted state drops
//! the guest memory; once the worker acknowledged, its mappings are gone. A new frontend can
//! attach to the same port; in client mode the port reconnects by itself.
//!
//! Guest notifications: while the worker polls, the guest is asked not to kick (used-ring flag
//! or event index). Before an idle worker sleeps, [`Port::prepare_sleep`] turns kicks back on
//! (and declines the sleep if frames arrived meanwhile); the kick eventfds and the protocol
//! thread's wake-up eventfd sit in one epoll set, the port's [`Port::wait_fd`]. Interrupts
//! to the guest are asked for at most once per burst, and only if the guest asked for them;
//! the caller writes them, several asked for before it got to them as one.
//!
//! ## What a frontend can at most do
//!
//! nfv runs as root and serves many VMs from one worker; a hostile frontend (or guest) must
//! cost at most its own port. What it can do, and where that ends:
//!
//! - **Memory table.** Every region is checked against its file before it is mapped
//!   (`backend.rs`): a regular file holding offset + size, or the whole table is refused and
//!   the port stays down. Against truncation afterwards a file gets `F_SEAL_SHRINK` if it is
//!   not sealed yet and allows seals (QEMU's `memory-backend-memfd` is sealed by default).
//!   A file that cannot be sealed (DPDK's `virtio_user` without hugepages makes its memfd
//!   without `MFD_ALLOW_SEALING`; hugetlbfs and tmpfs files, QEMU's `memory-backend-file`)
//!   is still taken, since refusing it would refuse those frontends. Instead every mapping
//!   is guarded (`sigbus.rs`; sealed ones too: a hole punched in a hugetlbfs file faults
//!   when the frontend used up the huge pages): if the frontend truncates the file, the
//!   worker's next access beyond the new end raises SIGBUS, and nfv's handler replaces the
//!   whole region with zeros instead of letting the process die; the access reads zeros
//!   (rings of zeros hold nothing to do). The worker sees that at its next burst (a
//!   process-wide fault counter, one load per burst) and stops the port's rings; the
//!   protocol thread logs a warning and lets the frontend go. Its port serves the next
//!   frontend as usual. A table has at most 8 regions, and at most 16,384 are mapped at
//!   once, process-wide; a table beyond either is refused.
//! - **Rings.** Every chain the worker takes counts against the burst (at most a batch), a
//!   chain is capped at 64 descriptors (a loop ends there), and each ring has a budget of
//!   1024 descriptor reads per burst (`virtq.rs`); malformed chains are given back used and
//!   counted as `guest_bad_descriptor` / `guest_bad_chain`. A guest full of bad chains costs
//!   its port's bursts bounded work, and gets no more of its frames through.
//! - **Kick and call fds.** Must be eventfds (checked at `SET_VRING_KICK`/`CALL`). Kicks are
//!   drained with `preadv2(RWF_NOWAIT)`, which ignores `O_NONBLOCK` (the frontend shares the
//!   file status flags and can clear it), before every sleep, also while the ring does not
//!   run (else an idle worker would spin on it). The worker never writes a call fd: it sets
//!   the ring's "interrupt wanted" flag and rings an eventfd of the port's own (non-blocking,
//!   shared with nobody, so that write cannot wait; and none at all while an interrupt asked
//!   for earlier is still to be written). The port's caller thread writes the call fd when
//!   `poll` says the write fits. A call eventfd kept full, blocking or not, or a frontend
//!   that fills it between that `poll` and the `write` (the write then waits for a reader),
//!   holds only the caller: that port's interrupts, no burst of any port. nfv empties the
//!   eventfd to free the caller when the frontend disconnects and when the port is dropped;
//!   a frontend that keeps filling it against that leaves the caller blocked, detached from
//!   the dropped port (a thread and a few fds, until the eventfd is read), and the drop ends
//!   within a second (`caller.rs`). Left: on kernels without `RWF_NOWAIT` for eventfds, a
//!   kick read is made after a zero-timeout `poll`, and a frontend reading its own kick fd
//!   between the two could make it wait.
//! - **Protocol.** The protocol thread is the port's own, and the worker never waits on it.
//!   A frontend that stalls in a message's body is dropped after a read timeout; one that
//!   stalls inside a header, or never reads the answers, holds the thread (the `vhost` crate
//!   retries such reads and writes), so its own port only: dropping the port (nfv stopping,
//!   a reload) shuts the connection down under the thread, which then ends.
//!
//! In a topology file:
//!
//! ```yaml
//! ports:
//!   vm1: { kind: vhost-user, socket: /run/nfv/vm1.sock }          # nfv listens, the VM connects
//!   vm2: { kind: vhost-user, socket: /run/nfv/vm2.sock, mode: client, mtu: 1400 }
//! ```
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | the settings: schema, checks, description, how the port is built |
//! | `mod.rs` | the port: the worker's side of the rings |
//! | `backend.rs` | the protocol thread |
//! | `caller.rs` | the caller: the thread that writes the guest's interrupts |
//! | `virtq.rs` | split rings over guest memory |
//! | `sigbus.rs` | guest memory's SIGBUS guard: a truncated memory file costs the port, not the process |

mod backend;
mod caller;
mod config;
mod log;
mod sigbus;
mod virtq;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vm_memory::{GuestAddress, GuestMemoryMmap};
use vmm_sys_util::epoll::Epoll;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::{Port, ETH_HEADER, VLAN_TAG};
use crate::batch::{Batch, BURST};
use crate::counters::PortCounters;
use crate::drop_reason::DropReason;
use crate::offload::{self, VIRTIO_HDR};
use crate::packet::{Gso, Packet, Pool, MAX_JUMBO_FRAME, MAX_SUPER_FRAME};
use caller::Caller;
use log::DirtyLog;
use virtq::{Layout, SplitRing};

/// Index of the guest's receive queue (frames nfv transmits to the guest).
const RXQ: usize = 0;
/// Index of the guest's transmit queue (frames nfv receives from the guest).
const TXQ: usize = 1;

/// Who creates the socket.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SocketMode {
    /// nfv creates and listens on the socket; the VM connects (QEMU `reconnect=1`).
    Server,
    /// The VM listens (QEMU `server=on,wait=off`); nfv connects, and reconnects after either
    /// side restarts. The mode to recommend: nfv can restart without touching the VM.
    Client,
}

/// What a vhost-user port is made from: its settings, as its kind ([`VhostUserKind`]) reads
/// them from the topology file (`socket`, `mode`, `mtu`), and its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VhostUserConfig {
    /// The port's name (for logs).
    pub name: String,
    /// The Unix socket's path.
    pub socket: PathBuf,
    /// Server or client.
    pub mode: SocketMode,
    /// The MTU: the largest frame taken or sent is MTU + Ethernet header + one VLAN tag.
    pub mtu: usize,
}

/// The `vhost-user` kind.
pub struct VhostUserKind;

impl super::kind::PortKind for VhostUserKind {
    fn name(&self) -> &'static str {
        "vhost-user"
    }

    fn about(&self) -> &'static str {
        "a VM's virtio-net (or DPDK's virtio_user) on a Unix socket: socket, mode, mtu"
    }

    fn keys(&self) -> &'static [&'static str] {
        config::KEYS
    }

    fn load(
        &self,
        name: &str,
        text: &str,
        report: &mut dyn crate::config::Report,
    ) -> Option<Box<dyn super::kind::PortSpec>> {
        VhostUserConfig::load(name, text, report)
            .map(|c| Box::new(c) as Box<dyn super::kind::PortSpec>)
    }
}

/// A guest's memory as nfv mapped it, with the guards ([`sigbus::Guard`]) of its regions (none
/// for a detached port's): the protocol thread and the worker share it, and the guards live
/// exactly as long as the mapping.
struct Memory {
    /// Dropped first, before `mem` unmaps the regions. Dropping `Memory` means nothing can
    /// access them any more (it is the last reference, and every access borrows from it), so
    /// no fault can come between the two. The other order would leave the registry guarding
    /// addresses nfv no longer maps, where the handler would paper over (with zeros) a SIGBUS
    /// of whatever is mapped there next.
    guards: Vec<sigbus::Guard>,
    mem: GuestMemoryMmap,
}

impl Memory {
    fn new(mem: GuestMemoryMmap, guards: Vec<sigbus::Guard>) -> Memory {
        Memory { guards, mem }
    }

    /// True once a region's file was truncated under the mapping: the region reads zeros
    /// now (see [`sigbus`]), and the port must stop serving this guest.
    fn faulted(&self) -> bool {
        self.guards.iter().any(|g| g.faults() > 0)
    }
}

impl std::ops::Deref for Memory {
    type Target = GuestMemoryMmap;

    fn deref(&self) -> &GuestMemoryMmap {
        &self.mem
    }
}

/// Times a frontend truncated its guest memory file under nfv's mapping since the process
/// started (any port's; each cost its own port only). For tests.
#[doc(hidden)]
pub fn guest_memory_faults() -> u64 {
    sigbus::faults()
}

/// What the protocol thread wants the worker to run. Cloned by the worker when the
/// generation moved; cheap (reference counts).
#[derive(Clone, Default)]
struct Wanted {
    mem: Option<Arc<Memory>>,
    /// The dirty-page log, while the guest migrates.
    log: Option<Arc<DirtyLog>>,
    layout: Option<Layout>,
    queues: [Option<RingWanted>; 2],
    /// The transmit ring's kick fd: in the worker's epoll set from SET_VRING_KICK on,
    /// whether or not the ring runs, so the worker empties it before every sleep.
    kick: Option<Arc<File>>,
}

/// One running ring, as the protocol thread wants it.
#[derive(Clone)]
struct RingWanted {
    /// Changes whenever the ring is (re)started: the worker then builds it anew at `base`.
    epoch: u64,
    size: u16,
    desc: GuestAddress,
    avail: GuestAddress,
    used: GuestAddress,
    base: u16,
    event_idx: bool,
    call: Option<Arc<File>>,
}

/// State shared between a port's worker and its protocol thread.
struct Shared {
    /// Bumped by the protocol thread after every change to `wanted`.
    generation: AtomicU64,
    /// The last generation the worker applied.
    acked: AtomicU64,
    wanted: Mutex<Wanted>,
    /// Where each ring stood when the worker last stopped it (its next available index).
    stopped_at: [AtomicU64; 2],
    /// The epoll set an idle worker sleeps on: kick eventfds and `wake`.
    epoll: Epoll,
    /// Written by the protocol thread to wake a sleeping worker.
    wake: EventFd,
    /// Tells the protocol thread to end.
    stop: AtomicBool,
    /// A frontend is connected.
    connected: AtomicBool,
    /// The frontend's connection while the protocol thread serves it: dropping the port
    /// shuts it down, which ends whatever read or write the thread waits in.
    conn: Mutex<Option<UnixStream>>,
}

impl Shared {
    /// Fresh state: nothing wanted yet, the epoll set empty.
    fn new(connected: bool) -> std::io::Result<Shared> {
        Ok(Shared {
            generation: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            wanted: Mutex::new(Wanted::default()),
            stopped_at: [AtomicU64::new(0), AtomicU64::new(0)],
            epoll: Epoll::new()?,
            wake: EventFd::new(EFD_NONBLOCK)?,
            stop: AtomicBool::new(false),
            connected: AtomicBool::new(connected),
            conn: Mutex::new(None),
        })
    }

    fn wanted(&self) -> std::sync::MutexGuard<'_, Wanted> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Option<UnixStream>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A ring the worker runs.
struct Ring {
    queue: SplitRing,
    epoch: u64,
    call: Option<Arc<File>>,
}

/// The device as the worker runs it.
struct Device {
    mem: Arc<Memory>,
    /// Every write into guest memory is reported here while the guest migrates.
    log: Option<Arc<DirtyLog>>,
    layout: Layout,
    rings: [Option<Ring>; 2],
}

/// A vhost-user port (see the module documentation).
pub struct VhostUserPort {
    shared: Arc<Shared>,
    seen: u64,
    /// [`sigbus::faults`] when the worker last looked.
    faults_seen: u64,
    dev: Option<Device>,
    /// The transmit ring's kick fd (see [`Wanted::kick`]).
    kick: Option<Arc<File>>,
    max_frame: usize,
    /// A super-frame buffer waiting for the guest's next super-frame (only while the guest
    /// may send them).
    spare: Option<Packet>,
    thread: Option<JoinHandle<()>>,
    /// The thread that writes the guest's interrupts to its call fds (none for a detached
    /// port, which has no call fds).
    caller: Option<Caller>,
    socket: PathBuf,
}

impl VhostUserPort {
    /// Create the port: bind the socket (server) or start connecting (client), on a protocol
    /// thread of its own. A server socket left over from a killed run is replaced.
    pub fn new(config: VhostUserConfig) -> std::io::Result<VhostUserPort> {
        let shared = Arc::new(Shared::new(false)?);
        backend::watch(&shared.epoll, shared.wake.as_raw_fd(), true)?;
        let caller = Caller::spawn(&config.name)?;
        let thread = backend::spawn(config.clone(), shared.clone())?;
        Ok(VhostUserPort {
            shared,
            seen: 0,
            faults_seen: 0,
            dev: None,
            kick: None,
            max_frame: max_frame(config.mtu),
            spare: None,
            thread: Some(thread),
            caller: Some(caller),
            socket: config.socket,
        })
    }

    /// The same port with checksum and segmentation offload negotiated both ways, as a
    /// Linux guest negotiates them (for tests and fuzzing).
    #[doc(hidden)]
    pub fn with_offloads(mut self) -> Self {
        if let Some(d) = &mut self.dev {
            d.layout = d.layout.with_offloads(true, true, d.layout.mergeable);
        }
        self
    }

    /// A port already attached to a guest: `mem` is its memory and `rings` the guest's
    /// receive and transmit queues as (size, descriptor table, available ring, used ring)
    /// guest addresses, all starting at index 0. No socket, no protocol thread: for tests
    /// and fuzzing, which play the guest by writing its memory.
    #[doc(hidden)]
    pub fn detached(
        mem: GuestMemoryMmap,
        rings: [(u16, u64, u64, u64); 2],
        mergeable: bool,
        event_idx: bool,
        mtu: usize,
    ) -> std::io::Result<VhostUserPort> {
        let shared = Arc::new(Shared::new(true)?);
        let ring = |(size, desc, avail, used): (u16, u64, u64, u64)| {
            Some(build_ring(&RingWanted {
                epoch: 1,
                size,
                desc: GuestAddress(desc),
                avail: GuestAddress(avail),
                used: GuestAddress(used),
                base: 0,
                event_idx,
                call: None,
            }))
        };
        Ok(VhostUserPort {
            shared,
            seen: 0,
            faults_seen: 0,
            kick: None,
            dev: Some(Device {
                mem: Arc::new(Memory::new(mem, Vec::new())),
                log: None,
                layout: Layout::new(false, mergeable),
                rings: [ring(rings[0]), ring(rings[1])],
            }),
            max_frame: max_frame(mtu),
            spare: None,
            thread: None,
            caller: None,
            socket: PathBuf::new(),
        })
    }

    /// True while a frontend (a VM, testpmd) is connected.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// True while both rings run (the guest's driver is up).
    pub fn is_running(&self) -> bool {
        self.dev
            .as_ref()
            .is_some_and(|d| d.rings.iter().all(Option::is_some))
    }

    /// Descriptors the worker read from the guest's rings so far (both rings): how much
    /// work a guest made it do. For tests.
    #[doc(hidden)]
    pub fn descriptors_visited(&self) -> u64 {
        self.dev.as_ref().map_or(0, |d| {
            d.rings.iter().flatten().map(|r| r.queue.visited()).sum()
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Pick up what the protocol thread changed, if anything did; stop serving a guest whose
    /// memory file was truncated under the mapping (a process-wide counter moves then).
    #[inline]
    fn sync(&mut self, counters: &PortCounters) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.seen {
            self.apply(generation, counters);
        }
        let faults = sigbus::faults();
        if faults != self.faults_seen {
            self.check_memory(faults);
        }
    }

    /// Some guarded guest memory (this port's or another's) was replaced by zeros: if it
    /// was this port's, drop the device, so that the worker stops reading rings of zeros and
    /// sending frames of zeros. The protocol thread sees it too and lets the frontend go;
    /// [`VhostUserPort::apply`] never runs that memory again.
    #[cold]
    fn check_memory(&mut self, faults: u64) {
        self.faults_seen = faults;
        if self
            .dev
            .as_ref()
            .is_some_and(|d| d.mem.faulted() || d.log.as_ref().is_some_and(|l| l.faulted()))
        {
            self.dev = None;
        }
    }

    #[cold]
    fn apply(&mut self, generation: u64, counters: &PortCounters) {
        let wanted = self.shared.wanted().clone();
        drain(&self.shared.wake);
        self.kick = wanted.kick;
        let mut old = self.dev.take();
        // Report where every ring that stops (or restarts) stood.
        if let Some(d) = &old {
            for (i, r) in d.rings.iter().enumerate() {
                let Some(r) = r else { continue };
                let keeps = wanted.mem.is_some()
                    && wanted.queues[i]
                        .as_ref()
                        .is_some_and(|w| w.epoch == r.epoch);
                if !keeps {
                    self.shared.stopped_at[i]
                        .store(u64::from(r.queue.next_avail()), Ordering::Relaxed);
                }
            }
        }
        // Memory whose file was truncated under it is not run again (see `check_memory`).
        let mem = wanted.mem.filter(|m| !m.faulted());
        let log_arc = wanted.log.filter(|l| !l.faulted());
        let log = log_arc.as_deref();
        if let (Some(mem), Some(layout)) = (mem, wanted.layout) {
            let mut rings: [Option<Ring>; 2] = [None, None];
            for (i, w) in wanted.queues.iter().enumerate() {
                let Some(w) = w else { continue };
                let kept = old
                    .as_mut()
                    .and_then(|d| d.rings[i].take())
                    .filter(|r| r.epoch == w.epoch);
                let mut ring = match kept {
                    Some(mut r) => {
                        r.call = w.call.clone();
                        r
                    }
                    None => build_ring(w),
                };
                // A ring outside the guest's memory (or malformed) is never run.
                match ring.queue.view(mem.as_ref()).map(|v| v.logged(log)) {
                    Some(v) => {
                        // The worker polls: no kicks, for frames or for receive buffers.
                        ring.queue.suppress_kicks(&v);
                        rings[i] = Some(ring);
                    }
                    None => counters.drops.add(DropReason::GuestBadDescriptor, 1),
                }
            }
            self.dev = Some(Device {
                mem,
                log: log_arc.clone(),
                layout,
                rings,
            });
        }
        if let Some(caller) = &self.caller {
            let dev = self.dev.as_ref();
            caller
                .set_calls([RXQ, TXQ].map(|i| dev.and_then(|d| d.rings[i].as_ref()?.call.clone())));
            // A frontend gone can no longer hold the caller in a write to its call fd.
            if !self.shared.connected.load(Ordering::Relaxed) {
                caller.unstick();
            }
        }
        self.seen = generation;
        self.shared.acked.store(generation, Ordering::Release);
    }
}

/// A ring built from what the protocol thread wants.
fn build_ring(w: &RingWanted) -> Ring {
    Ring {
        queue: SplitRing::new(w.size, w.desc, w.avail, w.used, w.base, w.event_idx),
        epoch: w.epoch,
        call: w.call.clone(),
    }
}

/// The largest frame a port of `mtu` takes or sends: MTU + Ethernet header + one VLAN tag,
/// at most what a jumbo packet buffer holds.
fn max_frame(mtu: usize) -> usize {
    (mtu + ETH_HEADER + VLAN_TAG).min(MAX_JUMBO_FRAME)
}

/// Empty an eventfd (non-blocking; nothing to read is fine).
fn drain(fd: &EventFd) {
    let _ = fd.read();
}

/// True if `fd` is ready for `events` now (`poll` with a zero timeout: never waits).
#[allow(unsafe_code)]
fn ready(fd: RawFd, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: `p` is one valid, exclusively borrowed `pollfd`; a zero timeout returns at once.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & events != 0
}

/// Empty a kick eventfd received from the frontend, without ever blocking: the frontend
/// shares the file's status flags and may have cleared `O_NONBLOCK`. `preadv2` with
/// `RWF_NOWAIT` ignores those flags (an empty eventfd answers `EAGAIN`); a kernel without it
/// for eventfds gets a zero-timeout `poll` first (a frontend that reads its own kick fd
/// between the two could still make that read wait; see the module documentation).
#[allow(unsafe_code)]
fn drain_file(mut f: &File) {
    let mut buf = [0u8; 8];
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` describes `buf`, 8 writable bytes that live for the call; offset -1 reads
    // at the file position as read(2) does; RWF_NOWAIT makes the call return EAGAIN instead
    // of waiting.
    let n = unsafe { libc::preadv2(f.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
    if n < 0
        && matches!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS)
        )
        && ready(f.as_raw_fd(), libc::POLLIN)
    {
        let _ = f.read(&mut buf);
    }
}

impl Port for VhostUserPort {
    fn kind(&self) -> &'static str {
        "vhost-user"
    }

    fn rx_burst(&mut self, pool: &mut Pool, batch: &mut Batch, counters: &PortCounters) {
        self.sync(counters);
        let Some(dev) = self.dev.as_mut() else { return };
        let Some(ring) = dev.rings[TXQ].as_mut() else {
            return;
        };
        let Some(v) = ring.queue.view(dev.mem.as_ref()) else {
            return;
        };
        let v = v.logged(dev.log.as_deref());
        // Every chain taken counts, good or dropped: at most a burst of them, and at most
        // the ring's descriptor budget (`pop_frame` stops when it is spent).
        ring.queue.start_burst();
        let mut done = 0usize;
        let from_guest = dev.layout.from_guest;
        while !batch.is_full() && done < BURST {
            let Some(mut pkt) = pool.alloc_for(self.max_frame) else {
                counters.drops.add(DropReason::NoBuffers, 1);
                break;
            };
            if from_guest && self.spare.is_none() {
                // Without one, a super-frame does not fit and is dropped as oversize.
                self.spare = pool.alloc_for(MAX_SUPER_FRAME);
            }
            let mut hdr = [0u8; VIRTIO_HDR];
            let room = &mut pkt.room_mut()[..self.max_frame];
            let big = match &mut self.spare {
                Some(b) if from_guest => Some(b.room_mut()),
                _ => None,
            };
            match ring.queue.pop_frame(&v, dev.layout, &mut hdr, room, big) {
                None => {
                    pool.free(pkt);
                    break;
                }
                Some(Ok((n, in_big))) => {
                    done += 1;
                    if in_big {
                        if let Some(b) = self.spare.take() {
                            pool.free(std::mem::replace(&mut pkt, b));
                        }
                    }
                    pkt.set_len(n);
                    if from_guest {
                        match offload::from_virtio(&hdr, 0) {
                            Ok(o) => pkt.set_offload(o),
                            Err(r) => {
                                counters.drops.add(r, 1);
                                pool.free(pkt);
                                continue;
                            }
                        }
                        if pkt.wire_len() > self.max_frame {
                            counters.drops.add(DropReason::Oversize, 1);
                            pool.free(pkt);
                            continue;
                        }
                    }
                    counters.rx(n);
                    if let Err(pkt) = batch.push(pkt) {
                        pool.free(pkt);
                    }
                }
                Some(Err(reason)) => {
                    done += 1;
                    counters.drops.add(reason, 1);
                    pool.free(pkt);
                }
            }
        }
        if done == 0 {
            // Nothing moved: tell a ring that cannot move (an available index beyond its
            // size) from an idle one, and count it.
            if ring.queue.pending(&v).is_none() {
                counters.drops.add(DropReason::GuestBadChain, 1);
            }
            return;
        }
        ring.queue.flush(&v);
        if ring.call.is_some() && ring.queue.wants_interrupt(&v) {
            if let Some(caller) = &self.caller {
                caller.interrupt(TXQ);
            }
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        self.sync(counters);
        let ring = self.dev.as_mut().and_then(|d| {
            let layout = d.layout;
            let (mem, log) = (d.mem.as_ref(), d.log.as_deref());
            d.rings[RXQ]
                .as_mut()
                .and_then(|r| r.queue.view(mem).map(|v| (r, v.logged(log), layout)))
        });
        let Some((ring, v, layout)) = ring else {
            for pkt in batch.drain() {
                counters.drops.add(DropReason::PortDown, 1);
                pool.free(pkt);
            }
            return;
        };
        ring.queue.start_burst();
        let mut used = false;
        let mut push = |frame: &[u8], hdr: &[u8; VIRTIO_HDR]| match ring
            .queue
            .push_frame(&v, layout, frame, hdr)
        {
            Ok(()) => {
                used = true;
                counters.tx(frame.len());
            }
            Err(reason) => {
                used |= reason != DropReason::TxFull; // a chain was consumed
                counters.drops.add(reason, 1);
            }
        };
        const WHOLE: [u8; VIRTIO_HDR] = [0; VIRTIO_HDR];
        for pkt in batch.drain() {
            if pkt.wire_len() > self.max_frame {
                counters.drops.add(DropReason::Oversize, 1);
                pool.free(pkt);
                continue;
            }
            let Some(o) = pkt.offload() else {
                push(pkt.data(), &WHOLE);
                pool.free(pkt);
                continue;
            };
            // As it is if the guest takes it; else finished (and cut) here.
            let as_is = match o.gso {
                Gso::None => layout.guest_csum,
                Gso::Tcp4 | Gso::Tcp6 => layout.guest_tso,
                Gso::Udp => false,
            };
            if as_is {
                push(pkt.data(), &offload::to_virtio(Some(o)));
                pool.free(pkt);
            } else {
                offload::make_whole(pkt, pool, &counters.drops, |p, pool| {
                    push(p.data(), &WHOLE);
                    pool.free(p);
                });
            }
        }
        if used {
            ring.queue.flush(&v);
            if ring.call.is_some() && ring.queue.wants_interrupt(&v) {
                if let Some(caller) = &self.caller {
                    caller.interrupt(RXQ);
                }
            }
        }
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.shared.epoll.as_raw_fd())
    }

    fn prepare_sleep(&mut self) -> bool {
        drain(&self.shared.wake);
        if self.shared.generation.load(Ordering::Acquire) != self.seen {
            return false;
        }
        // Also when the ring does not run (no memory yet, disabled, refused): a kick left
        // in the epoll set would keep the worker from sleeping.
        if let Some(kick) = &self.kick {
            drain_file(kick);
        }
        let Some(dev) = self.dev.as_mut() else {
            return true;
        };
        let Some(ring) = dev.rings[TXQ].as_mut() else {
            return true;
        };
        let Some(v) = ring.queue.view(dev.mem.as_ref()) else {
            return true;
        };
        let v = v.logged(dev.log.as_deref());
        if ring.queue.enable_kicks(&v) {
            // Frames arrived meanwhile (or the ring is unreadable): poll on.
            ring.queue.suppress_kicks(&v);
            return false;
        }
        true
    }

    fn after_sleep(&mut self) {
        if let Some(dev) = self.dev.as_mut() {
            if let Some(ring) = dev.rings[TXQ].as_mut() {
                if let Some(v) = ring.queue.view(dev.mem.as_ref()) {
                    ring.queue.suppress_kicks(&v.logged(dev.log.as_deref()));
                }
            }
        }
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The port finishes what the guest cannot take itself (it learns that only when the
    /// guest's driver negotiates), so the graph hands it every frame as it is.
    fn offloads(&self) -> bool {
        true
    }

    fn release(&mut self, pool: &mut Pool) {
        if let Some(p) = self.spare.take() {
            pool.free(p);
        }
    }
}

impl Drop for VhostUserPort {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The protocol thread no longer waits for this worker's acknowledgements.
        self.shared.acked.store(u64::MAX, Ordering::Release);
        // Nor for the frontend: a read or write it waits in ends.
        if let Some(c) = self.shared.conn().take() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The caller ends when its field is dropped, next: within a second even if a
        // frontend holds it in a write (see `caller.rs`).
    }
}

#[cfg(test)]
mod tests {
    //! A hostile guest against the whole port: every malformed chain is counted under its
    //! reason, and the port keeps serving the good ones. Guest memory and rings come from
    //! `virtio-queue`'s mock; the device is installed as the protocol thread would.
    use super::virtq::tests::{desc, frame, guest_frame, heads, memory, F_NEXT, F_WRITE};
    use super::*;
    use virtio_queue::mock::MockSplitQueue;

    /// A port whose device is `mem` with the mock's rings, without a socket.
    fn port(
        mem: GuestMemoryMmap,
        rx: &MockSplitQueue<GuestMemoryMmap>,
        tx: &MockSplitQueue<GuestMemoryMmap>,
    ) -> VhostUserPort {
        let at = |q: &MockSplitQueue<GuestMemoryMmap>| {
            (16, q.desc_table_addr().0, q.avail_addr().0, q.used_addr().0)
        };
        VhostUserPort::detached(mem, [at(rx), at(tx)], true, false, 1500).expect("port")
    }

    #[test]
    fn a_hostile_guest_is_counted_and_the_port_keeps_serving() {
        let mem = memory();
        // Two queues in one guest memory: transmit at 0, receive at 0x8000.
        let txq = MockSplitQueue::new(&mem, 16);
        let rxq = MockSplitQueue::create(&mem, GuestAddress(0x8000), 16);
        let good = guest_frame(&mem, 0x10_0000, &frame(64));
        heads(
            &txq,
            0,
            &[
                desc(0x4000_0000, 100, 0, 0),      // outside memory
                desc(0x10_0000, good, F_WRITE, 0), // wrong direction
                desc(0x10_0000, good, 0, 0),       // good
                desc(0x10_0000, good, F_NEXT, 3),  // 3 -> 3 -> ...: a loop
                desc(0x10_0000, 5000, 0, 0),       // longer than the port's MTU
                desc(0x10_0000, good, 0, 0),       // good
            ],
        );
        heads(
            &rxq,
            0,
            &[
                desc(0x20_0000, 2048, 0, 0),         // read-only receive buffer
                desc(0x5000_0000, 2048, F_WRITE, 0), // outside memory
                desc(0x20_1000, 2048, F_WRITE, 0),   // good
            ],
        );
        let mut p = port(mem.clone(), &rxq, &txq);
        let counters = PortCounters::default();
        let mut pool = Pool::new(64);
        let mut batch = Batch::new();
        p.rx_burst(&mut pool, &mut batch, &counters);
        assert_eq!(batch.len(), 2, "the two good frames");
        assert_eq!(counters.rx_packets.get(), 2);
        assert_eq!(counters.drops.get(DropReason::GuestBadDescriptor), 2);
        assert_eq!(counters.drops.get(DropReason::GuestBadChain), 1);
        assert_eq!(counters.drops.get(DropReason::Oversize), 1);
        assert_eq!(txq.used().idx().load(), 6, "every chain went back used");
        // Back to the guest: the two bad receive buffers are counted, the third frame
        // finds the good one, the fourth finds none (the guest's ring is full).
        let mut out = Batch::new();
        for pkt in batch.drain() {
            let _ = out.push(pkt);
        }
        let _ = out.push(Packet::from_bytes(&frame(60)).expect("frame"));
        let _ = out.push(Packet::from_bytes(&frame(60)).expect("frame"));
        let _ = out.push(Packet::from_bytes(&frame(60)).expect("frame"));
        p.tx_burst(&mut out, &mut pool, &counters);
        assert_eq!(counters.drops.get(DropReason::GuestBadDescriptor), 4);
        assert_eq!(counters.tx_packets.get(), 1);
        assert_eq!(counters.drops.get(DropReason::TxFull), 2);
        assert_eq!(rxq.used().idx().load(), 3);
        assert_eq!(pool.available(), 64, "no buffer leaked");
        // A broken available index is seen and counted, and nothing moves.
        txq.avail().idx().store(200);
        p.rx_burst(&mut pool, &mut batch, &counters);
        assert!(batch.is_empty());
        assert_eq!(counters.drops.get(DropReason::GuestBadChain), 2);
    }
}
