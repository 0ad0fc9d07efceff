//! The protocol thread of a vhost-user port: the socket, the vhost-user messages (through
//! the `vhost` crate's backend request handler), the guest's memory table, and the hand-over
//! of ring state to the worker (see the parent module).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{
    Backend as FrontendChannel, BackendReqHandler, Error, GpuBackend, Result,
    VhostUserBackendReqHandlerMut,
};
use vhost::VhostUserMemoryRegionBase;
use vm_memory::mmap::MmapRegion;
use vm_memory::{FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use super::log::DirtyLog;
use super::virtq::Layout;
use super::{sigbus, Memory, RingWanted, Shared, SocketMode, VhostUserConfig, Wanted, RXQ, TXQ};

/// VIRTIO_NET_F_CSUM: the guest may send frames with a begun checksum.
const F_CSUM: u64 = 1 << 0;
/// VIRTIO_NET_F_GUEST_CSUM: the guest takes frames with a begun checksum.
const F_GUEST_CSUM: u64 = 1 << 1;
/// VIRTIO_NET_F_GUEST_TSO4 and _TSO6: the guest takes TCP super-frames.
const F_GUEST_TSO4: u64 = 1 << 7;
const F_GUEST_TSO6: u64 = 1 << 8;
/// VIRTIO_NET_F_HOST_TSO4 and _TSO6: the guest may send TCP super-frames.
const F_HOST_TSO4: u64 = 1 << 11;
const F_HOST_TSO6: u64 = 1 << 12;
/// VIRTIO_NET_F_MRG_RXBUF.
const F_MRG_RXBUF: u64 = 1 << 15;
/// VIRTIO_NET_F_GUEST_ANNOUNCE: after a migration the guest announces itself (gratuitous
/// ARP, unsolicited neighbour advertisements) when QEMU asks it to, through the control
/// queue QEMU serves; the switch learns its MAC's new port from that.
const F_GUEST_ANNOUNCE: u64 = 1 << 21;
/// VHOST_F_LOG_ALL: log every guest page written (a migration is under way).
pub(super) const F_LOG_ALL: u64 = 1 << 26;
/// VIRTIO_RING_F_INDIRECT_DESC.
const F_INDIRECT_DESC: u64 = 1 << 28;
/// VIRTIO_RING_F_EVENT_IDX.
const F_EVENT_IDX: u64 = 1 << 29;
/// VHOST_USER_F_PROTOCOL_FEATURES.
const F_PROTOCOL_FEATURES: u64 = 1 << 30;
/// VIRTIO_F_VERSION_1.
const F_VERSION_1: u64 = 1 << 32;
/// What nfv offers: checksum and TCP segmentation offload both ways (frames that leave
/// that work undone cross the graph with their record, see `crate::offload`, and are
/// finished in software for a receiver that cannot take them), mergeable receive buffers
/// (which super-frames to the guest need), indirect descriptors, event index, and what live
/// migration needs: dirty-page logging and the guest's announcement.
const FEATURES: u64 = F_CSUM
    | F_GUEST_CSUM
    | F_GUEST_TSO4
    | F_GUEST_TSO6
    | F_HOST_TSO4
    | F_HOST_TSO6
    | F_MRG_RXBUF
    | F_GUEST_ANNOUNCE
    | F_LOG_ALL
    | F_INDIRECT_DESC
    | F_EVENT_IDX
    | F_PROTOCOL_FEATURES
    | F_VERSION_1;
/// The largest ring the spec allows.
const MAX_RING: u32 = 32768;
/// How long the protocol thread waits for the worker to acknowledge a change it must see
/// done (a ring stop, a memory release). A worker wakes from its deepest sleep in a few ms.
const ACK_WAIT: Duration = Duration::from_secs(2);
/// How often a client-mode port tries to connect, and how often the thread checks `stop`.
const RETRY: Duration = Duration::from_millis(250);
/// The most regions a memory table may have: the vhost-user specification's
/// `VHOST_MEMORY_BASELINE_NREGIONS`, which QEMU and DPDK keep to without
/// `CONFIGURE_MEM_SLOTS` (not offered); the `vhost` crate would take 32. Each takes a slot of
/// the process-wide SIGBUS guard table ([`sigbus::SLOTS`]).
const MAX_REGIONS: usize = 8;

/// Add `fd` to (or, with `add` false, remove it from) the worker's epoll set.
pub(super) fn watch(epoll: &Epoll, fd: RawFd, add: bool) -> std::io::Result<()> {
    let op = if add {
        ControlOperation::Add
    } else {
        ControlOperation::Delete
    };
    epoll.ctl(op, fd, EpollEvent::new(EventSet::IN, fd as u64))
}

/// Start the protocol thread of a port.
pub(super) fn spawn(
    config: VhostUserConfig,
    shared: Arc<Shared>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = match config.mode {
        SocketMode::Server => {
            // A socket file left by a killed run would make bind fail.
            if std::fs::symlink_metadata(&config.socket).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(&config.socket);
            }
            if let Some(dir) = config.socket.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let l = UnixListener::bind(&config.socket)?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        SocketMode::Client => None,
    };
    std::thread::Builder::new()
        .name(format!("nfv-vhost-{}", config.name))
        .spawn(move || run(config, shared, listener))
}

/// The thread: one frontend at a time, until the port is dropped.
fn run(config: VhostUserConfig, shared: Arc<Shared>, listener: Option<UnixListener>) {
    let backend = Arc::new(Mutex::new(Backend::new(
        shared.clone(),
        config.name.clone(),
    )));
    let mut announced = false;
    while !shared.stop.load(Ordering::Relaxed) {
        let stream = match &listener {
            Some(l) => match l.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    wait_readable(l.as_raw_fd(), RETRY);
                    continue;
                }
            },
            None => match UnixStream::connect(&config.socket) {
                Ok(s) => s,
                Err(e) => {
                    if !announced {
                        tracing::info!(port = %config.name, socket = %config.socket.display(), "vhost-user: waiting for the VM's socket ({e})");
                        announced = true;
                    }
                    std::thread::sleep(RETRY);
                    continue;
                }
            },
        };
        announced = false;
        // A frontend that stops in the middle of a message body is dropped after a read
        // timeout. Inside a header the `vhost` crate retries the read (and a write the
        // frontend never reads), so a stopping port shuts the connection down: see `conn`.
        if stream.set_nonblocking(false).is_err()
            || stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .is_err()
        {
            continue;
        }
        // Kept where dropping the port finds it (see `VhostUserPort::drop`); a port already
        // stopping serves nobody.
        let Ok(conn) = stream.try_clone() else {
            continue;
        };
        {
            let mut c = shared.conn();
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
            *c = Some(conn);
        }
        tracing::info!(port = %config.name, "vhost-user: frontend connected");
        shared.connected.store(true, Ordering::Relaxed);
        let mut handler = BackendReqHandler::from_stream(stream, backend.clone());
        let why = serve(&mut handler, &backend, &shared);
        shared.conn().take();
        shared.connected.store(false, Ordering::Relaxed);
        lock(&backend).disconnect();
        tracing::info!(port = %config.name, "vhost-user: frontend gone ({why})");
    }
    drop(listener);
    if config.mode == SocketMode::Server {
        let _ = std::fs::remove_file(&config.socket);
    }
}

/// Handle requests until the frontend goes, the port stops or the frontend truncated its
/// guest memory under the mapping (checked before every request, and every `RETRY` while
/// the frontend is quiet); says why it ended.
fn serve(
    handler: &mut BackendReqHandler<Mutex<Backend>>,
    backend: &Mutex<Backend>,
    shared: &Shared,
) -> String {
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return "port stopped".into();
        }
        if lock(backend).truncated() {
            return "it truncated its guest memory".into();
        }
        if !wait_readable(handler.as_raw_fd(), RETRY) {
            continue;
        }
        match handler.handle_request() {
            Ok(()) => {}
            // QEMU enables rings before it acks features (see `RingSetup::default`).
            Err(e @ Error::InactiveFeature(_)) => {
                tracing::debug!("vhost-user: request refused: {e}");
            }
            // A request nfv refused: the frontend was told (or will see the error); go on.
            Err(
                e @ (Error::InvalidParam
                | Error::InvalidOperation(_)
                | Error::InactiveOperation(_)
                | Error::ReqHandlerError(_)
                | Error::BackendInternalError),
            ) => {
                tracing::warn!("vhost-user: request refused: {e}");
            }
            Err(Error::Disconnected) => return "disconnected".into(),
            Err(e) => return format!("protocol error: {e}"),
        }
    }
}

/// Wait up to `timeout` for `fd` to become readable (or hung up).
fn wait_readable(fd: RawFd, timeout: Duration) -> bool {
    let mut fds = [crate::sys::pollfd(fd)];
    crate::sys::wait_readable(&mut fds, timeout.as_millis() as i32);
    fds[0].revents != 0
}

/// Check a memory-table region against its file before it is mapped: the file must be a
/// regular file (memfd, hugetlbfs, tmpfs) holding the whole region, or touching the part
/// beyond its end would SIGBUS the process. Then make sure it cannot shrink later (see
/// [`seal_against_shrinking`]).
pub(super) fn check_region(
    file: &File,
    offset: u64,
    size: u64,
) -> std::result::Result<(), &'static str> {
    let meta = file.metadata().map_err(|_| "fstat failed")?;
    if !meta.file_type().is_file() {
        return Err("not a regular file");
    }
    let end = offset.checked_add(size).ok_or("offset + size overflows")?;
    if size == 0 || end > meta.len() {
        return Err("the region runs past the end of its file");
    }
    // A huge page mapping can be replaced (see `sigbus`) only in whole huge pages: a region
    // that ends inside one could not be guarded. QEMU and DPDK send whole huge pages.
    if huge_page_size(file).is_some_and(|p| p > 0 && !size.is_multiple_of(p)) {
        return Err("the region is not a whole number of huge pages");
    }
    seal_against_shrinking(file)
}

/// The huge page size of `file` if it lives on hugetlbfs (a hugetlbfs file, or a memfd made
/// with `MFD_HUGETLB`).
#[allow(unsafe_code)]
fn huge_page_size(file: &File) -> Option<u64> {
    // SAFETY: an all-zero `statfs` is a valid value, overwritten by the call below.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes one `statfs` into `st`, exclusively borrowed for the call, for
    // the descriptor `file` owns.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    (st.f_type as u32 == libc::HUGETLBFS_MAGIC as u32).then_some(st.f_bsize as u64)
}

/// Make sure the frontend cannot truncate a memory file under the mapping (a later access
/// beyond the new end would SIGBUS the worker):
/// - a file already sealed with `F_SEAL_SHRINK` (QEMU's `memory-backend-memfd`, `seal=on`
///   by default) is taken;
/// - a file that still allows seals (a memfd made with `MFD_ALLOW_SEALING`) gets
///   `F_SEAL_SHRINK` added; growing stays allowed (harmless);
/// - a memfd that allows no seals is taken unsealed, like any other file that cannot be
///   sealed (hugetlbfs or tmpfs files, QEMU's `memory-backend-file`): refusing them would
///   refuse DPDK's `virtio_user` without hugepages (its memfd is made without
///   `MFD_ALLOW_SEALING`) and QEMU on hugepage files.
///
/// Every mapping is guarded anyway ([`sigbus`]): if the frontend truncates an unsealed file
/// (or faults a sealed one otherwise, see there), the worker's SIGBUS replaces the region
/// with zeros instead of killing the process, and the port stops serving that frontend
/// (see the parent module's "What a frontend can at most do"). A seal keeps the VM working:
/// its frontend cannot pull the pages at all.
#[allow(unsafe_code)]
fn seal_against_shrinking(file: &File) -> std::result::Result<(), &'static str> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GET_SEALS only reads the seals of `fd`, a descriptor `file` owns; it fails
    // (EINVAL) for a file that cannot carry seals.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_SHRINK != 0 {
        return Ok(());
    }
    if seals >= 0 && seals & libc::F_SEAL_SEAL == 0 {
        // SAFETY: F_ADD_SEALS only adds seals to the file `fd` refers to; on failure
        // nothing changes.
        if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } == 0 {
            return Ok(());
        }
        return Err("the memfd allows seals but F_SEAL_SHRINK could not be added");
    }
    let what = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    tracing::info!(file = %what, "vhost-user: guest memory file cannot be sealed against shrinking (its mapping is guarded: a frontend that truncates it stops its own port)");
    Ok(())
}

/// True if `file` is an eventfd (`/proc/self/fd/N` reads `anon_inode:[eventfd]`): kick and
/// call fds must be, so that reading and writing them has bounded, known behaviour.
fn is_eventfd(file: &File) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .is_ok_and(|p| p.as_os_str() == "anon_inode:[eventfd]")
}

fn lock(b: &Mutex<Backend>) -> std::sync::MutexGuard<'_, Backend> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// A ring as the frontend set it up (addresses in the frontend's own address space).
struct RingSetup {
    size: u32,
    desc: u64,
    avail: u64,
    used: u64,
    base: u16,
    kick: Option<Arc<File>>,
    call: Option<Arc<File>>,
    started: bool,
    enabled: bool,
    epoch: u64,
}

impl Default for RingSetup {
    /// Rings start enabled. The spec has them start disabled once protocol features are
    /// negotiated, until `SET_VRING_ENABLE(1)`; but QEMU 7.2 sends that enable before
    /// `SET_FEATURES`, when the `vhost` crate must refuse it (the feature is not acked yet),
    /// and never again. So a ring runs once started (kicked) unless the frontend disables it
    /// later, which is what DPDK's vhost library does too.
    fn default() -> Self {
        RingSetup {
            size: 0,
            desc: 0,
            avail: 0,
            used: 0,
            base: 0,
            kick: None,
            call: None,
            started: false,
            enabled: true,
            epoch: 0,
        }
    }
}

/// One region of the memory table: guest-physical, size, frontend virtual address.
#[derive(Copy, Clone)]
struct Region {
    gpa: u64,
    size: u64,
    uaddr: u64,
}

/// The frontend-facing state machine.
struct Backend {
    shared: Arc<Shared>,
    name: String,
    acked: u64,
    protocol: u64,
    regions: Vec<Region>,
    mem: Option<Arc<Memory>>,
    /// The dirty-page log the frontend gave (`SET_LOG_BASE`); written while `F_LOG_ALL` is
    /// acked.
    log: Option<Arc<DirtyLog>>,
    /// The warning that `mem` was truncated was logged.
    warned: bool,
    rings: [RingSetup; 2],
    epochs: u64,
}

impl Backend {
    fn new(shared: Arc<Shared>, name: String) -> Self {
        Backend {
            shared,
            name,
            acked: 0,
            protocol: 0,
            regions: Vec::new(),
            mem: None,
            log: None,
            warned: false,
            rings: Default::default(),
            epochs: 0,
        }
    }

    /// Refuse a request that would forget a truncated memory table before the protocol thread
    /// let the frontend go (it checks before every request; this closes the window of a
    /// fault during the request).
    fn refuse_if_truncated(&mut self) -> Result<()> {
        if self.truncated() {
            return Err(Error::InvalidOperation("guest memory truncated"));
        }
        Ok(())
    }

    fn ring(&mut self, index: u32) -> Result<&mut RingSetup> {
        self.rings
            .get_mut(index as usize)
            .ok_or(Error::InvalidParam)
    }

    /// A frontend virtual address as a guest-physical one, through the memory table.
    fn to_gpa(&self, uaddr: u64) -> Option<GuestAddress> {
        self.regions
            .iter()
            .find(|r| uaddr >= r.uaddr && uaddr - r.uaddr < r.size)
            .map(|r| GuestAddress(r.gpa + (uaddr - r.uaddr)))
    }

    /// The end of guest-physical memory as the memory table has it (what a log must cover).
    fn memory_end(&self) -> u64 {
        self.regions
            .iter()
            .map(|r| r.gpa.saturating_add(r.size))
            .max()
            .unwrap_or(0)
    }

    /// True if there is a dirty-page log and it covers guest memory up to `end`.
    fn log_covers(&self, end: u64) -> bool {
        self.log.as_ref().is_some_and(|l| l.covers(end))
    }

    /// True while the frontend has dirty-page logging on.
    fn logging(&self) -> bool {
        self.acked & F_LOG_ALL != 0
    }

    fn layout(&self) -> Layout {
        let has = |f: u64| self.acked & f == f;
        Layout::new(has(F_VERSION_1), has(F_MRG_RXBUF)).with_offloads(
            has(F_CSUM),
            has(F_GUEST_CSUM),
            has(F_GUEST_CSUM | F_GUEST_TSO4 | F_GUEST_TSO6 | F_MRG_RXBUF),
        )
    }

    /// Tell the worker what to run now; with `wait`, until it has taken it up.
    fn publish(&mut self, wait: bool) {
        let mut wanted = Wanted {
            mem: self.mem.clone(),
            log: if self.logging() {
                self.log.clone()
            } else {
                None
            },
            layout: Some(self.layout()),
            queues: [None, None],
            kick: self.rings[TXQ].kick.clone(),
        };
        if self.mem.is_some() {
            for i in [RXQ, TXQ] {
                let r = &self.rings[i];
                if !(r.started && r.enabled) || r.size == 0 {
                    continue;
                }
                let (Some(desc), Some(avail), Some(used)) = (
                    self.to_gpa(r.desc),
                    self.to_gpa(r.avail),
                    self.to_gpa(r.used),
                ) else {
                    tracing::warn!(port = %self.name, ring = i, "vhost-user: ring outside the memory table; not started");
                    continue;
                };
                wanted.queues[i] = Some(RingWanted {
                    epoch: r.epoch,
                    size: r.size as u16,
                    desc,
                    avail,
                    used,
                    base: r.base,
                    event_idx: self.acked & F_EVENT_IDX != 0,
                    call: r.call.clone(),
                });
            }
        }
        let generation = {
            let mut w = self.shared.wanted();
            *w = wanted;
            self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1
        };
        let _ = self.shared.wake.write(1);
        if wait {
            let until = Instant::now() + ACK_WAIT;
            while self.shared.acked.load(Ordering::Acquire) < generation
                && Instant::now() < until
                && !self.shared.stop.load(Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Change ring `i` with `change`; if that stops a running ring, wait for the worker to
    /// let go of it and learn where it stopped (the base `GET_VRING_BASE` answers).
    fn halt(&mut self, i: usize, change: impl FnOnce(&mut RingSetup)) {
        let running = |r: &RingSetup| r.started && r.enabled;
        let was = running(&self.rings[i]);
        change(&mut self.rings[i]);
        if !was || running(&self.rings[i]) {
            self.publish(false);
            return;
        }
        let base = self.rings[i].base;
        self.shared.stopped_at[i].store(u64::from(base), Ordering::Relaxed);
        self.publish(true);
        self.rings[i].base = self.shared.stopped_at[i].load(Ordering::Relaxed) as u16;
    }

    /// True if the frontend truncated a guest memory file under the mapping (the region
    /// reads zeros now, see [`sigbus`]): then the port stops serving it. Warns once.
    fn truncated(&mut self) -> bool {
        let memory = self.mem.as_ref().is_some_and(|m| m.faulted());
        if !memory && !self.log.as_ref().is_some_and(|l| l.faulted()) {
            return false;
        }
        if !self.warned {
            self.warned = true;
            let what = if memory {
                "guest memory"
            } else {
                "dirty-page log"
            };
            tracing::warn!(port = %self.name, "vhost-user: {what} file truncated under the mapping: region replaced by zeros; the port stops serving this frontend");
        }
        true
    }

    /// The frontend went away: forget it all and let the worker drop the guest's memory.
    fn disconnect(&mut self) {
        if let Some(k) = self.rings[TXQ].kick.take() {
            let _ = watch(&self.shared.epoll, k.as_raw_fd(), false);
        }
        self.rings = Default::default();
        self.mem = None;
        self.log = None;
        self.warned = false;
        self.regions.clear();
        self.acked = 0;
        self.protocol = 0;
        self.publish(true);
    }
}

impl VhostUserBackendReqHandlerMut for Backend {
    fn set_owner(&mut self) -> Result<()> {
        Ok(())
    }

    fn reset_owner(&mut self) -> Result<()> {
        self.refuse_if_truncated()?;
        self.disconnect();
        Ok(())
    }

    fn reset_device(&mut self) -> Result<()> {
        self.refuse_if_truncated()?;
        self.disconnect();
        Ok(())
    }

    fn get_features(&mut self) -> Result<u64> {
        Ok(FEATURES)
    }

    fn set_features(&mut self, features: u64) -> Result<()> {
        if features & !FEATURES != 0 {
            return Err(Error::InvalidParam);
        }
        let logging = features & F_LOG_ALL != 0;
        if logging {
            // Logging starts only with a log that covers the guest's memory: refused, the
            // frontend's migration fails and the guest runs on here.
            if !self.log_covers(self.memory_end()) {
                tracing::warn!(port = %self.name, "vhost-user: dirty-page logging refused: no log, or one smaller than the guest's memory");
                return Err(Error::InvalidParam);
            }
        }
        let was = self.logging();
        self.acked = features;
        // The frontend takes the answer as "logging from now on" (or "no more"): the
        // worker must have picked the change up before it goes.
        self.publish(logging != was);
        if logging != was {
            let now = if logging {
                "on (the VM migrates)"
            } else {
                "off"
            };
            tracing::info!(port = %self.name, "vhost-user: dirty-page logging {now}");
        }
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy_listening: Option<bool>,
    ) -> Result<Option<Vec<VhostUserMemoryRegionBase>>> {
        if ctx.len() != files.len() {
            return Err(Error::InvalidParam);
        }
        if ctx.len() > MAX_REGIONS {
            tracing::warn!(port = %self.name, regions = ctx.len(), "vhost-user: memory table refused: more than {MAX_REGIONS} regions");
            return Err(Error::InvalidParam);
        }
        self.refuse_if_truncated()?;
        if self.logging() {
            let end = ctx
                .iter()
                .map(|r| r.guest_phys_addr.saturating_add(r.memory_size))
                .max()
                .unwrap_or(0);
            if !self.log_covers(end) {
                tracing::warn!(port = %self.name, "vhost-user: memory table refused: the dirty-page log does not cover it");
                return Err(Error::InvalidParam);
            }
        }
        let mut regions = Vec::with_capacity(ctx.len());
        let mut mapped = Vec::with_capacity(ctx.len());
        // Declared after `mapped`, so dropped before it if the table is refused.
        let mut guards = Vec::with_capacity(ctx.len());
        for (r, file) in ctx.iter().zip(files) {
            let size = usize::try_from(r.memory_size).map_err(|_| Error::InvalidParam)?;
            // Checked before anything is mapped: a refused table changes nothing.
            let (gpa, len, offset) = (r.guest_phys_addr, r.memory_size, r.mmap_offset);
            if let Err(why) = check_region(&file, offset, len) {
                tracing::warn!(port = %self.name, gpa, size = len, offset, "vhost-user: memory table refused: {why}");
                return Err(Error::InvalidParam);
            }
            let mmap = MmapRegion::from_file(FileOffset::new(file, r.mmap_offset), size)
                .map_err(|_| Error::InvalidParam)?;
            let region = GuestRegionMmap::new(mmap, GuestAddress(r.guest_phys_addr))
                .ok_or(Error::InvalidParam)?;
            // Guarded before anything can touch it (the worker gets it only below): never
            // mapped unguarded, sealed or not (see `seal_against_shrinking`).
            match sigbus::guard(region.as_ptr(), region.size()) {
                Ok(g) => guards.push(g),
                Err(why) => {
                    tracing::warn!(port = %self.name, gpa, size = len, offset, "vhost-user: memory table refused: {why}");
                    return Err(Error::InvalidParam);
                }
            }
            mapped.push(region);
            regions.push(Region {
                gpa: r.guest_phys_addr,
                size: r.memory_size,
                uaddr: r.user_addr,
            });
        }
        let mem = GuestMemoryMmap::from_regions(mapped).map_err(|_| Error::InvalidParam)?;
        self.mem = Some(Arc::new(Memory::new(mem, guards)));
        self.warned = false;
        self.regions = regions;
        self.publish(false);
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> Result<()> {
        if num == 0 || num > MAX_RING || !num.is_power_of_two() {
            return Err(Error::InvalidParam);
        }
        self.ring(index)?.size = num;
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> Result<()> {
        let r = self.ring(index)?;
        r.desc = descriptor;
        r.used = used;
        r.avail = available;
        Ok(())
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> Result<()> {
        let base = u16::try_from(base).map_err(|_| Error::InvalidParam)?;
        self.ring(index)?.base = base;
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> Result<VhostUserVringState> {
        let i = index as usize;
        if i >= self.rings.len() {
            return Err(Error::InvalidParam);
        }
        self.halt(i, |r| r.started = false);
        if let Some(k) = self.rings[i].kick.take() {
            if i == TXQ {
                let _ = watch(&self.shared.epoll, k.as_raw_fd(), false);
            }
        }
        Ok(VhostUserVringState::new(
            index,
            u32::from(self.rings[i].base),
        ))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        let i = index as usize;
        if i >= self.rings.len() {
            return Err(Error::InvalidParam);
        }
        if fd.as_ref().is_some_and(|f| !is_eventfd(f)) {
            tracing::warn!(port = %self.name, ring = i, "vhost-user: kick fd refused: not an eventfd");
            return Err(Error::InvalidParam);
        }
        if let Some(k) = self.rings[i].kick.take() {
            if i == TXQ {
                let _ = watch(&self.shared.epoll, k.as_raw_fd(), false);
            }
        }
        let kick = fd.map(Arc::new);
        if let Some(k) = &kick {
            // Only the transmit ring's kicks wake a sleeping worker (frames to receive); a
            // guest adding receive buffers need not. Non-blocking, so draining never waits.
            if i == TXQ {
                crate::sys::set_nonblocking(k.as_raw_fd());
                let _ = watch(&self.shared.epoll, k.as_raw_fd(), true);
            }
        }
        self.epochs += 1;
        let epoch = self.epochs;
        let r = &mut self.rings[i];
        r.kick = kick;
        r.started = true;
        r.epoch = epoch;
        self.publish(false);
        Ok(())
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        if fd.as_ref().is_some_and(|f| !is_eventfd(f)) {
            tracing::warn!(port = %self.name, ring = index, "vhost-user: call fd refused: not an eventfd");
            return Err(Error::InvalidParam);
        }
        self.ring(u32::from(index))?.call = fd.map(Arc::new);
        self.publish(false);
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, _fd: Option<File>) -> Result<()> {
        self.ring(u32::from(index)).map(|_| ())
    }

    fn get_protocol_features(&mut self) -> Result<VhostUserProtocolFeatures> {
        Ok(VhostUserProtocolFeatures::REPLY_ACK | VhostUserProtocolFeatures::LOG_SHMFD)
    }

    fn set_protocol_features(&mut self, features: u64) -> Result<()> {
        self.protocol = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> Result<u64> {
        Ok(self.rings.len() as u64)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> Result<()> {
        let i = index as usize;
        if i >= self.rings.len() {
            return Err(Error::InvalidParam);
        }
        self.halt(i, |r| r.enabled = enable);
        Ok(())
    }

    fn get_config(&mut self, _: u32, _: u32, _: VhostUserConfigFlags) -> Result<Vec<u8>> {
        Err(Error::InvalidOperation("no device configuration space"))
    }

    fn set_config(&mut self, _: u32, _: &[u8], _: VhostUserConfigFlags) -> Result<()> {
        Err(Error::InvalidOperation("no device configuration space"))
    }

    fn set_backend_req_fd(&mut self, _backend: FrontendChannel) {}

    fn set_gpu_socket(&mut self, _: GpuBackend) -> Result<()> {
        Err(Error::InvalidOperation("not a GPU"))
    }

    fn get_shared_object(&mut self, _: VhostUserSharedMsg) -> Result<File> {
        Err(Error::InvalidOperation("no shared objects"))
    }

    fn get_inflight_fd(&mut self, _: &VhostUserInflight) -> Result<(VhostUserInflight, File)> {
        Err(Error::InvalidOperation("no inflight tracking"))
    }

    fn set_inflight_fd(&mut self, _: &VhostUserInflight, _: File) -> Result<()> {
        Err(Error::InvalidOperation("no inflight tracking"))
    }

    fn get_max_mem_slots(&mut self) -> Result<u64> {
        Err(Error::InvalidOperation("memory slots not offered"))
    }

    fn add_mem_region(
        &mut self,
        _: &VhostUserSingleMemoryRegion,
        _: File,
        _: Option<bool>,
    ) -> Result<Option<VhostUserMemoryRegionBase>> {
        Err(Error::InvalidOperation("memory slots not offered"))
    }

    fn remove_mem_region(&mut self, _: &VhostUserSingleMemoryRegion) -> Result<()> {
        Err(Error::InvalidOperation("memory slots not offered"))
    }

    fn set_device_state_fd(
        &mut self,
        _: VhostTransferStateDirection,
        _: VhostTransferStatePhase,
        _: File,
    ) -> Result<Option<File>> {
        Err(Error::InvalidOperation("no device state transfer"))
    }

    fn check_device_state(&mut self) -> Result<()> {
        Err(Error::InvalidOperation("no device state transfer"))
    }

    fn get_shmem_config(&mut self) -> Result<VhostUserShMemConfig> {
        Err(Error::InvalidOperation("no shared memory regions"))
    }

    /// A new dirty-page log. One that cannot be used (not a file holding it, not covering
    /// the guest's memory) is dropped with a warning; the frontend is still answered (the
    /// answer carries no status), and its request to start logging is then refused. Once
    /// logging runs, a bad log cannot be refused that way, and the old one is no longer
    /// read: the frontend is let go (`InvalidMessage` ends the connection), which fails its
    /// migration.
    fn set_log_base(&mut self, log: &VhostUserLog, file: File) -> Result<()> {
        self.refuse_if_truncated()?;
        let end = self.memory_end();
        let mapped = DirtyLog::map(&file, log.mmap_offset, log.mmap_size).and_then(|l| {
            if l.covers(end) {
                Ok(l)
            } else {
                Err("the log is smaller than the guest's memory")
            }
        });
        match mapped {
            Ok(l) => {
                self.log = Some(Arc::new(l));
                if self.logging() {
                    self.publish(true);
                }
                Ok(())
            }
            Err(why) => {
                let (size, offset) = (log.mmap_size, log.mmap_offset);
                tracing::warn!(port = %self.name, size, offset, "vhost-user: dirty-page log refused: {why}");
                self.log = None;
                if self.logging() {
                    return Err(Error::InvalidMessage);
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, OwnedFd};

    /// A memfd made with `flags`, or None where the kernel refuses them.
    fn memfd(flags: libc::c_uint) -> Option<File> {
        // SAFETY: the name is a valid NUL-terminated string; the result is checked.
        let fd = unsafe { libc::memfd_create(c"nfv-backend".as_ptr(), libc::MFD_CLOEXEC | flags) };
        // SAFETY: `fd` was just created and is owned by nobody else.
        (fd >= 0).then(|| File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    #[test]
    fn a_huge_page_region_is_whole_huge_pages() {
        let plain = memfd(0).expect("memfd");
        assert_eq!(huge_page_size(&plain), None, "a plain memfd is on tmpfs");
        let Some(huge) = memfd(libc::MFD_HUGETLB) else {
            return; // no hugetlbfs in this kernel: nothing to check
        };
        let page = huge_page_size(&huge).expect("an MFD_HUGETLB memfd is on hugetlbfs");
        huge.set_len(2 * page).expect("size the memfd");
        assert_eq!(
            check_region(&huge, 0, page + 4096),
            Err("the region is not a whole number of huge pages")
        );
        assert_eq!(check_region(&huge, 0, 2 * page), Ok(()));
    }
}
