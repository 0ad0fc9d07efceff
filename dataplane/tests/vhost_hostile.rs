//! A hostile vhost-user frontend or guest costs at most its own port. Each test plays one
//! attack through the real code path (the port's socket and the `vhost` crate's frontend, or
//! a detached port over guest memory the test writes) and checks that the process lives, the
//! worker's burst returns in bounded work and time, and other ports go on forwarding:
//!
//! - a memory table whose region is larger than its file is refused (no SIGBUS), a
//!   sealable memfd is sealed against shrinking, and a frontend that truncates a memfd it
//!   made unsealable under the running port stops its own port only (the fault reads zeros;
//!   the process lives, and the port serves the next frontend);
//! - a full ring of chains that point outside guest memory or loop costs one burst at most
//!   the descriptor budget, every chain counted as a drop;
//! - a pipe as call or kick fd is refused; a kick eventfd whose `O_NONBLOCK` the frontend
//!   cleared and a saturated blocking call eventfd never block the worker (the interrupts
//!   wait, and come once the guest empties its call eventfd), a well-behaved frontend gets
//!   its interrupts, and a kick on a transmit ring that does not run cannot keep an idle
//!   worker awake;
//! - a frontend that stops in the middle of a message header, or sends requests and never
//!   reads the answers, cannot keep its port from being dropped (nfv stopping or reloading);
//! - a frontend that fills its call eventfd between nfv's check that a write fits and the
//!   write (the race won every time, through a stand-in for `poll(2)`) holds only its own
//!   port's interrupts: the worker's bursts go on, the write is let go when the frontend
//!   disconnects, and the port can be dropped.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nfv_dataplane::counters::PortCounters;
use nfv_dataplane::port::vhost::guest_memory_faults;
use nfv_dataplane::port::{Port, SocketMode, VhostUserConfig, VhostUserPort};
use nfv_dataplane::{Batch, DropReason, Packet, Pool};
use vhost::vhost_user::message::{VhostUserHeaderFlag, VhostUserProtocolFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserDirtyLogRegion, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

const VERSION_1: u64 = 1 << 32;
const MRG_RXBUF: u64 = 1 << 15;
const PROTOCOL_FEATURES: u64 = 1 << 30;
/// VHOST_F_LOG_ALL: dirty-page logging.
const LOG_ALL: u64 = 1 << 26;
/// What the test frontends ack.
const FEATURES: u64 = VERSION_1 | MRG_RXBUF | PROTOCOL_FEATURES;
/// The port's descriptor budget per burst (`virtq::BUDGET`).
const BUDGET: u64 = 1024;
/// Frames (chains) per burst at most (`nfv_dataplane::batch::BURST`).
const BURST: u64 = 64;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

fn socket(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nfv-hostile-{tag}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn server(sock: &Path) -> VhostUserPort {
    VhostUserPort::new(VhostUserConfig {
        name: "hostile".into(),
        socket: sock.to_path_buf(),
        mode: SocketMode::Server,
        mtu: 1500,
    })
    .expect("port")
}

/// A memfd of `len` bytes; `sealing` allows seals (`MFD_ALLOW_SEALING`).
fn memfd(len: u64, sealing: bool) -> File {
    let flags = libc::MFD_CLOEXEC | if sealing { libc::MFD_ALLOW_SEALING } else { 0 };
    // SAFETY: the name is a valid NUL-terminated string; the result is checked.
    let fd = unsafe { libc::memfd_create(c"nfv-hostile".as_ptr(), flags) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: `fd` was just created and is owned by nobody else.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.set_len(len).expect("size the memfd");
    f
}

/// A frontend that negotiated REPLY_ACK and asks for a reply to every request, so that a
/// refusal comes back as an error.
fn frontend(sock: &Path) -> Frontend {
    frontend_with(sock, VhostUserProtocolFeatures::empty())
}

/// [`frontend`], with protocol features `more` besides REPLY_ACK.
fn frontend_with(sock: &Path, more: VhostUserProtocolFeatures) -> Frontend {
    let until = Instant::now() + Duration::from_secs(10);
    let mut fe = loop {
        match Frontend::connect(sock, 2) {
            Ok(fe) => break fe,
            Err(e) => {
                assert!(Instant::now() < until, "connect: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    fe.set_owner().expect("SET_OWNER");
    let offered = fe.get_features().expect("GET_FEATURES");
    assert_ne!(offered & PROTOCOL_FEATURES, 0);
    fe.set_features(FEATURES).expect("SET_FEATURES");
    let proto = fe.get_protocol_features().expect("GET_PROTOCOL_FEATURES");
    let want = VhostUserProtocolFeatures::REPLY_ACK | more;
    assert!(proto.contains(want), "{proto:?}");
    fe.set_protocol_features(want)
        .expect("SET_PROTOCOL_FEATURES");
    fe.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
    fe
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
    RawDescriptor::from(Descriptor::new(addr, len, flags, next))
}

/// Poll `port` (receive side) until `done`, or fail after 10 s.
fn poll_until(port: &mut VhostUserPort, what: &str, mut done: impl FnMut(&VhostUserPort) -> bool) {
    let mut pool = Pool::new(64);
    let counters = PortCounters::default();
    let until = Instant::now() + Duration::from_secs(10);
    while !done(port) {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        let mut b = Batch::new();
        port.rx_burst(&mut pool, &mut b, &counters);
        for p in b.drain() {
            pool.free(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Another port of the same process, which must go on forwarding: a detached port whose
/// guest sent one frame.
fn another_port_forwards() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x40_0000)]).expect("mem");
    let txq = MockSplitQueue::create(&mem, GuestAddress(0), 16);
    let rxq = MockSplitQueue::create(&mem, GuestAddress(0x8000), 16);
    let mut f = vec![0u8; 12 + 60];
    f[12..18].copy_from_slice(&[0xff; 6]);
    mem.write_slice(&f, GuestAddress(0x10_0000)).expect("frame");
    txq.add_desc_chains(&[desc(0x10_0000, f.len() as u32, 0, 0)], 0)
        .expect("chain");
    let at = |q: &MockSplitQueue<GuestMemoryMmap>| {
        (16, q.desc_table_addr().0, q.avail_addr().0, q.used_addr().0)
    };
    let mut port = VhostUserPort::detached(mem.clone(), [at(&rxq), at(&txq)], true, false, 1500)
        .expect("port");
    let (mut pool, counters, mut b) = (Pool::new(64), PortCounters::default(), Batch::new());
    port.rx_burst(&mut pool, &mut b, &counters);
    assert_eq!(b.len(), 1, "the other port forwards");
    for p in b.drain() {
        pool.free(p);
    }
}

// ---------------------------------------------------------------------------------------
// 1. Memory regions against their files

#[test]
fn a_region_larger_than_its_file_is_refused_and_the_process_lives() {
    let sock = socket("bigregion");
    let mut port = server(&sock);
    let fe = frontend(&sock);
    let file = memfd(1 << 20, true);
    let uaddr = 0x7f00_0000_0000u64;
    let region = VhostUserMemoryRegionInfo {
        guest_phys_addr: 0,
        memory_size: 4 << 20, // four times the file
        userspace_addr: uaddr,
        mmap_offset: 0,
        mmap_handle: file.as_raw_fd(),
    };
    assert!(
        fe.set_mem_table(&[region]).is_err(),
        "a region beyond its file's end is refused"
    );
    // A region inside the file, but at an offset that runs past its end.
    let region = VhostUserMemoryRegionInfo {
        memory_size: 1 << 20,
        mmap_offset: 4096,
        ..region
    };
    assert!(fe.set_mem_table(&[region]).is_err(), "offset + size too");
    // The frontend goes on as if it had been accepted, rings beyond the file's end.
    let (call, kick) = (EventFd::new(0).expect("ev"), EventFd::new(0).expect("ev"));
    for q in 0..2 {
        let base = uaddr + (2 << 20) + q as u64 * 0x1_0000;
        fe.set_vring_num(q, 16).expect("SET_VRING_NUM");
        let cfg = VringConfigData {
            queue_max_size: 16,
            queue_size: 16,
            flags: 0,
            desc_table_addr: base,
            used_ring_addr: base + 0x2000,
            avail_ring_addr: base + 0x1000,
            log_addr: None,
        };
        fe.set_vring_addr(q, &cfg).expect("SET_VRING_ADDR");
        fe.set_vring_base(q, 0).expect("SET_VRING_BASE");
        fe.set_vring_call(q, &call).expect("SET_VRING_CALL");
        fe.set_vring_kick(q, &kick).expect("SET_VRING_KICK");
    }
    // The worker polls on: the port stays down, nothing touches the missing pages.
    let mut polls = 0;
    poll_until(&mut port, "a few polls", |_| {
        polls += 1;
        polls > 50
    });
    assert!(port.is_connected());
    assert!(!port.is_running(), "no memory, no rings");
    another_port_forwards();
}

#[test]
fn a_sealable_memfd_is_sealed_against_shrinking() {
    let sock = socket("seal");
    let mut port = server(&sock);
    let fe = frontend(&sock);
    let file = memfd(1 << 20, true);
    let region = VhostUserMemoryRegionInfo {
        guest_phys_addr: 0,
        memory_size: 1 << 20,
        userspace_addr: 0x7f00_0000_0000,
        mmap_offset: 0,
        mmap_handle: file.as_raw_fd(),
    };
    fe.set_mem_table(&[region]).expect("a good table");
    poll_until(&mut port, "a poll", |_| true);
    // The frontend cannot pull the pages from under the mapping any more.
    let err = file.set_len(4096).expect_err("shrinking a sealed memfd");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    file.set_len(2 << 20)
        .expect("growing is harmless and allowed");
}

// ---------------------------------------------------------------------------------------
// 2. The descriptor budget

/// Rings of 256 entries: the guest's transmit queue at 0, its receive queue at 0x8000.
const QSIZE: u16 = 256;

fn big_rings(
    mem: &GuestMemoryMmap,
) -> (
    MockSplitQueue<'_, GuestMemoryMmap>,
    MockSplitQueue<'_, GuestMemoryMmap>,
) {
    (
        MockSplitQueue::create(mem, GuestAddress(0x8000), QSIZE),
        MockSplitQueue::create(mem, GuestAddress(0), QSIZE),
    )
}

/// Fill every descriptor of `q` with a hostile chain: even ones loop on themselves (empty
/// buffers, so only the chain cap ends them), odd ones point outside guest memory; all
/// `QSIZE` made available.
fn hostile_ring(q: &MockSplitQueue<GuestMemoryMmap>, write: u16) {
    let descs: Vec<_> = (0..QSIZE)
        .map(|i| {
            if i % 2 == 0 {
                desc(0x10_0000, 0, write | F_NEXT, i)
            } else {
                desc(0x4000_0000, 64, write, 0)
            }
        })
        .collect();
    for (i, d) in descs.iter().enumerate() {
        q.add_desc_chains(std::slice::from_ref(d), i as u16)
            .expect("chain");
    }
}

#[test]
fn a_ring_full_of_failing_chains_costs_one_burst_its_budget() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x40_0000)]).expect("mem");
    let (rxq, txq) = big_rings(&mem);
    hostile_ring(&txq, 0);
    hostile_ring(&rxq, F_WRITE);
    let at = |q: &MockSplitQueue<GuestMemoryMmap>| {
        (
            QSIZE,
            q.desc_table_addr().0,
            q.avail_addr().0,
            q.used_addr().0,
        )
    };
    let mut port = VhostUserPort::detached(mem.clone(), [at(&rxq), at(&txq)], true, false, 1500)
        .expect("port");
    let (mut pool, counters) = (Pool::new(256), PortCounters::default());
    let bad = |c: &PortCounters| {
        c.drops.get(DropReason::GuestBadChain) + c.drops.get(DropReason::GuestBadDescriptor)
    };
    // One receive burst: bounded work, every consumed chain counted under its reason.
    let mut b = Batch::new();
    port.rx_burst(&mut pool, &mut b, &counters);
    let visited = port.descriptors_visited();
    assert!(b.is_empty());
    assert!(visited <= BUDGET, "{visited} descriptors in one burst");
    let used = u64::from(txq.used().idx().load());
    assert!(used > 0 && used <= BURST, "{used} chains in one burst");
    assert_eq!(
        bad(&counters),
        used,
        "every consumed chain is a counted drop"
    );
    // The guest's transmit ring drains over a few bursts, each bounded.
    for _ in 0..64 {
        let before = port.descriptors_visited();
        port.rx_burst(&mut pool, &mut b, &counters);
        assert!(port.descriptors_visited() - before <= BUDGET);
    }
    assert_eq!(txq.used().idx().load(), QSIZE, "every chain went back used");
    assert_eq!(bad(&counters), u64::from(QSIZE));
    assert!(
        counters.drops.get(DropReason::GuestBadChain) > 0,
        "the loops"
    );
    // One transmit burst of a full batch into a receive ring full of failing chains.
    for _ in 0..BURST {
        let _ = b.push(Packet::from_bytes(&[0u8; 60]).expect("frame"));
    }
    let before = port.descriptors_visited();
    port.tx_burst(&mut b, &mut pool, &counters);
    let visited = port.descriptors_visited() - before;
    assert!(
        visited <= BUDGET,
        "{visited} descriptors in one transmit burst"
    );
    assert_eq!(pool.available(), 256, "no buffer leaked");
    another_port_forwards();
}

// ---------------------------------------------------------------------------------------
// 3. Call and kick fds never block the worker

/// A pipe's two ends, as eventfds only by type (the port must see through that).
fn pipe() -> (EventFd, EventFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (EventFd::from_raw_fd(fds[0]), EventFd::from_raw_fd(fds[1])) }
}

#[test]
fn a_pipe_as_call_or_kick_fd_is_refused() {
    let sock = socket("pipe");
    let mut port = server(&sock);
    let fe = frontend(&sock);
    let (r, w) = pipe();
    assert!(fe.set_vring_call(0, &w).is_err(), "a pipe as call fd");
    assert!(fe.set_vring_kick(1, &r).is_err(), "a pipe as kick fd");
    let ev = EventFd::new(0).expect("eventfd");
    fe.set_vring_call(0, &ev).expect("an eventfd as call fd");
    fe.set_vring_kick(1, &ev).expect("an eventfd as kick fd");
    poll_until(&mut port, "a poll", |_| true);
    assert!(port.is_connected());
}

/// Clear `O_NONBLOCK` on `fd` (file status flags are shared with the port's copy).
fn make_blocking(fd: &EventFd) {
    // SAFETY: F_GETFL/F_SETFL only read and set the status flags of a valid descriptor.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK),
            0
        );
    }
}

/// Ring size of the guests played through a frontend.
const QLEN: u16 = 16;
/// The largest eventfd counter a write still fits: one more and the write waits.
const FULL: u64 = 0xffff_ffff_ffff_fffe;

/// Bytes of guest memory played through a frontend.
const MEM: usize = 4 << 20;

/// [`MEM`] of guest memory in a memfd (`sealing`: made with `MFD_ALLOW_SEALING`, as QEMU
/// makes it; DPDK's `virtio_user` without hugepages does not), as a frontend shares it.
fn guest_memory(sealing: bool) -> GuestMemoryMmap {
    guest_memory_in(memfd(MEM as u64, sealing))
}

/// [`MEM`] of guest memory in `file`.
fn guest_memory_in(file: File) -> GuestMemoryMmap {
    GuestMemoryMmap::<()>::from_ranges_with_files([(
        GuestAddress(0),
        MEM,
        Some(FileOffset::new(file, 0)),
    )])
    .expect("guest memory")
}

/// Set the port up as a frontend does: `mem` as its memory table, `rxq` and `txq` as the
/// guest's receive and transmit rings, each with a call and a kick eventfd of its own.
/// Gives back the call and the kick eventfds, by ring.
fn attach(
    fe: &Frontend,
    mem: &GuestMemoryMmap,
    rxq: &MockSplitQueue<GuestMemoryMmap>,
    txq: &MockSplitQueue<GuestMemoryMmap>,
) -> ([EventFd; 2], [EventFd; 2]) {
    let region = mem.iter().next().expect("a region");
    let info = VhostUserMemoryRegionInfo::from_guest_region(region).expect("region info");
    fe.set_mem_table(&[info]).expect("SET_MEM_TABLE");
    let host = region.as_ptr() as u64;
    let calls = [EventFd::new(0).expect("ev"), EventFd::new(0).expect("ev")];
    let kicks = [EventFd::new(0).expect("ev"), EventFd::new(0).expect("ev")];
    for (q, vq) in [(0usize, rxq), (1, txq)] {
        fe.set_vring_num(q, QLEN).expect("SET_VRING_NUM");
        let cfg = VringConfigData {
            queue_max_size: QLEN,
            queue_size: QLEN,
            flags: 0,
            desc_table_addr: host + vq.desc_table_addr().0,
            used_ring_addr: host + vq.used_addr().0,
            avail_ring_addr: host + vq.avail_addr().0,
            log_addr: None,
        };
        fe.set_vring_addr(q, &cfg).expect("SET_VRING_ADDR");
        fe.set_vring_base(q, 0).expect("SET_VRING_BASE");
        fe.set_vring_call(q, &calls[q]).expect("SET_VRING_CALL");
        fe.set_vring_kick(q, &kicks[q]).expect("SET_VRING_KICK");
    }
    (calls, kicks)
}

/// Make descriptor `d` the guest's `n`th available chain on `q` (any `n`: the ring wraps).
fn offer(q: &MockSplitQueue<GuestMemoryMmap>, n: u16, d: RawDescriptor) {
    let slot = n % QLEN;
    q.desc_table().store(slot, d).expect("descriptor");
    q.avail()
        .ring()
        .ref_at(slot.into())
        .expect("avail slot")
        .store(slot);
    q.avail().idx().store(n.wrapping_add(1));
}

/// The guest puts frame `i` (broadcast, 64 bytes) on its transmit ring and a receive
/// buffer on its receive ring (the `i`th available chain of each; frames at 1 MiB, buffers
/// at 2 MiB).
fn guest_sends(
    mem: &GuestMemoryMmap,
    rxq: &MockSplitQueue<GuestMemoryMmap>,
    txq: &MockSplitQueue<GuestMemoryMmap>,
    i: u16,
) {
    let at = 0x10_0000 + u64::from(i % QLEN) * 0x800;
    let mut f = vec![0u8; 12 + 64];
    f[12..18].copy_from_slice(&[0xff; 6]);
    mem.write_slice(&f, GuestAddress(at)).expect("frame");
    let rx = 0x20_0000 + u64::from(i % QLEN) * 0x800;
    offer(rxq, i, desc(rx, 2048, F_WRITE, 0));
    // The receive buffer is there before the frame that needs it: the worker runs on
    // another thread and may take the frame at once.
    std::sync::atomic::fence(Ordering::SeqCst);
    offer(txq, i, desc(at, f.len() as u32, 0, 0));
}

/// One receive and one transmit burst of `port` (what it receives goes back to the guest);
/// returns the frames received.
fn bursts(port: &mut VhostUserPort, pool: &mut Pool, counters: &PortCounters) -> usize {
    let mut b = Batch::new();
    port.rx_burst(pool, &mut b, counters);
    let got = b.len();
    port.tx_burst(&mut b, pool, counters);
    got
}

/// The worker, on a thread of its own: polls the port (frames from the guest go straight
/// back to it, as the worker's bursts and sleeps would) until stopped.
struct Worker {
    stop: Arc<AtomicBool>,
    counters: Arc<PortCounters>,
    port: mpsc::Receiver<VhostUserPort>,
}

impl Worker {
    fn start(mut port: VhostUserPort) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(PortCounters::default());
        let (give, back) = mpsc::channel();
        let (s, c) = (stop.clone(), counters.clone());
        std::thread::spawn(move || {
            let mut pool = Pool::new(64);
            while !s.load(Ordering::Relaxed) {
                let mut b = Batch::new();
                port.rx_burst(&mut pool, &mut b, &c); // wants an interrupt: call
                port.tx_burst(&mut b, &mut pool, &c); // back to the guest: call
                let _ = port.prepare_sleep(); // drains the kick fd
                port.after_sleep();
                std::thread::sleep(Duration::from_micros(200));
            }
            let _ = give.send(port);
        });
        Worker {
            stop,
            counters,
            port: back,
        }
    }

    /// Stop the worker and take the port back; fails if its bursts no longer return.
    fn stop(self) -> VhostUserPort {
        self.stop.store(true, Ordering::Relaxed);
        self.port
            .recv_timeout(Duration::from_secs(10))
            .expect("the worker's bursts return")
    }
}

/// Play the guest for frames `from..from + n`, three at a time: each sent on the guest's
/// transmit ring, with a buffer on its receive ring for the worker to send it back into.
/// Fails if the worker does not send a round back within 10 s: its bursts stopped returning.
fn traffic(
    mem: &GuestMemoryMmap,
    rxq: &MockSplitQueue<GuestMemoryMmap>,
    txq: &MockSplitQueue<GuestMemoryMmap>,
    worker: &Worker,
    from: u16,
    n: u16,
) {
    for round in (from..from + n).step_by(3) {
        for i in round..(round + 3).min(from + n) {
            guest_sends(mem, rxq, txq, i);
        }
        let want = u64::from((round + 3).min(from + n));
        let until = Instant::now() + Duration::from_secs(10);
        while worker.counters.tx_packets.get() < want {
            let c = &worker.counters;
            assert!(
                Instant::now() < until,
                "the worker stalled: {} of {want} frames back to the guest ({} received; \
                 dropped: {})",
                c.tx_packets.get(),
                c.rx_packets.get(),
                DropReason::ALL
                    .iter()
                    .filter(|r| c.drops.get(**r) > 0)
                    .map(|r| format!("{} {}", r.name(), c.drops.get(*r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// True if `fd` becomes readable (an interrupt came) within `limit`.
fn readable(fd: &EventFd, limit: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = limit.as_millis() as libc::c_int;
    // SAFETY: `p` is one valid pollfd, `ms` a bounded timeout.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

#[test]
fn a_blocking_kick_and_a_saturated_call_never_block_the_worker() {
    let sock = socket("block");
    let port = server(&sock);
    let fe = frontend(&sock);
    let mem = guest_memory(true);
    let txq = MockSplitQueue::create(&mem, GuestAddress(0), QLEN);
    let rxq = MockSplitQueue::create(&mem, GuestAddress(0x8000), QLEN);
    let (calls, kicks) = attach(&fe, &mem, &rxq, &txq);
    // The hostile part: the kick fd blocks again (the port made it non-blocking), and the
    // call fd blocks and is one short of its maximum: a write of 1 would wait for a reader.
    for k in &kicks {
        make_blocking(k);
    }
    for c in &calls {
        make_blocking(c);
        c.write(FULL).expect("saturate");
    }
    // Frames flow both ways, every burst wanting an interrupt the call fd cannot take.
    let worker = Worker::start(port);
    traffic(&mem, &rxq, &txq, &worker, 0, 60);
    // The interrupts were held back, not lost: once the guest empties its call eventfd,
    // the one wanted meanwhile comes.
    for (q, c) in calls.iter().enumerate() {
        assert_eq!(c.read().expect("read"), FULL, "ring {q}: nothing written");
        assert!(
            readable(c, Duration::from_secs(5)),
            "ring {q}: the interrupt held back never came"
        );
    }
    let port = worker.stop();
    assert!(
        drops_within(port, Duration::from_secs(2)),
        "dropping the port hung"
    );
    drop(fe);
}

#[test]
fn a_well_behaved_frontend_gets_its_interrupts() {
    let sock = socket("calls");
    let port = server(&sock);
    let fe = frontend(&sock);
    let mem = guest_memory(true);
    let txq = MockSplitQueue::create(&mem, GuestAddress(0), QLEN);
    let rxq = MockSplitQueue::create(&mem, GuestAddress(0x8000), QLEN);
    let (calls, _kicks) = attach(&fe, &mem, &rxq, &txq);
    let worker = Worker::start(port);
    for round in 0..4 {
        // Frames taken from the guest's transmit ring and put in its receive ring: an
        // interrupt on each.
        traffic(&mem, &rxq, &txq, &worker, round * 3, 3);
        for (q, c) in calls.iter().enumerate() {
            assert!(
                readable(c, Duration::from_secs(5)),
                "round {round}, ring {q}: no interrupt"
            );
            c.read().expect("read");
        }
    }
    let port = worker.stop();
    assert!(
        drops_within(port, Duration::from_secs(2)),
        "dropping the port hung"
    );
    drop(fe);
}

#[test]
fn a_kick_on_a_ring_that_does_not_run_lets_an_idle_worker_sleep() {
    let sock = socket("idlekick");
    let mut port = server(&sock);
    let fe = frontend(&sock);
    // A kick fd for the transmit ring, but no memory table: the ring cannot run. The guest
    // kicks anyway.
    let kick = EventFd::new(0).expect("eventfd");
    fe.set_vring_kick(1, &kick).expect("SET_VRING_KICK");
    kick.write(1).expect("kick");
    let mut polls = 0;
    poll_until(&mut port, "a few polls", |_| {
        polls += 1;
        polls > 3
    });
    assert!(!port.is_running());
    // The worker is idle and may sleep: its wait fd must then be quiet, or it would spin.
    assert!(port.prepare_sleep(), "nothing to do, the worker may sleep");
    let mut p = libc::pollfd {
        fd: port.wait_fd().expect("wait fd"),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd; a zero timeout returns at once.
    unsafe { libc::poll(&mut p, 1, 0) };
    assert_eq!(
        p.revents, 0,
        "the wait fd is ready: an idle worker would spin"
    );
    port.after_sleep();
    drop(fe);
}

// ---------------------------------------------------------------------------------------
// 4. A frontend cannot hold the port's protocol thread

/// Drop `port` on a thread of its own; true if that returned within `limit`.
fn drops_within(port: VhostUserPort, limit: Duration) -> bool {
    let (done, dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(port);
        let _ = done.send(());
    });
    dropped.recv_timeout(limit).is_ok()
}

/// A raw connection to the port's socket.
fn raw(sock: &Path) -> UnixStream {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(sock) {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < until, "connect: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[test]
fn a_frontend_stalled_mid_header_cannot_keep_its_port_from_being_dropped() {
    let sock = socket("stall");
    let port = server(&sock);
    let mut s = raw(&sock);
    // GET_FEATURES, version 1: the first 4 of its 12 header bytes, then nothing.
    s.write_all(&1u32.to_le_bytes()).expect("write");
    std::thread::sleep(Duration::from_millis(500)); // the protocol thread waits for the rest
    assert!(
        drops_within(port, Duration::from_secs(10)),
        "dropping the port hung on a frontend stalled mid-header"
    );
    drop(s);
}

#[test]
fn a_frontend_that_reads_no_answers_cannot_keep_its_port_from_being_dropped() {
    let sock = socket("noread");
    let port = server(&sock);
    let mut s = raw(&sock);
    s.set_nonblocking(true).expect("non-blocking");
    // GET_FEATURES requests, each answered, none of the answers read: the protocol thread
    // fills the socket and waits to write; then the requests fill it the other way.
    let mut req = Vec::new();
    for v in [1u32, 1, 0] {
        req.extend_from_slice(&v.to_le_bytes());
    }
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match s.write(&req) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Full, or the protocol thread is still reading: give it a moment.
                std::thread::sleep(Duration::from_millis(200));
                if s.write(&req).is_err() {
                    break;
                }
            }
            Err(e) => panic!("write: {e}"),
        }
        assert!(Instant::now() < until, "the socket never filled");
    }
    assert!(
        drops_within(port, Duration::from_secs(10)),
        "dropping the port hung on a frontend that reads no answers"
    );
    drop(s);
}

// ---------------------------------------------------------------------------------------
// 5. A frontend racing on its call eventfd
//
// The race: nfv checks that a write of 1 to the call eventfd fits (`poll`), and the
// frontend, sharing the eventfd and with `O_NONBLOCK` cleared, fills it before the write,
// which then waits for a reader. Won by chance, it is a rare event; here the test wins it
// every time by standing in for `poll(2)` in this process.

/// The port's fd of the call eventfd the test races on; -1 while no test races.
static RACE_PORT_FD: AtomicI32 = AtomicI32::new(-1);
/// The frontend's (the test's) fd of that eventfd.
static RACE_OWN_FD: AtomicI32 = AtomicI32::new(-1);
/// Races won.
static RACES: AtomicU64 = AtomicU64::new(0);

/// `poll(2)` for the whole test binary (it takes the C library's place at link time, for
/// nfv's code too): the real one, and then, when it says that `RACE_PORT_FD` takes a write,
/// the frontend wins the race: it fills the eventfd before that write is made. Every other
/// `poll` is passed through untouched.
///
/// # Safety
///
/// As `poll(2)`: `fds` points to `nfds` valid `pollfd`s.
#[no_mangle]
pub unsafe extern "C" fn poll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: libc::c_int,
) -> libc::c_int {
    let ts = libc::timespec {
        tv_sec: (timeout / 1000) as libc::time_t,
        tv_nsec: (timeout % 1000) as libc::c_long * 1_000_000,
    };
    let tsp: *const libc::timespec = if timeout >= 0 { &ts } else { std::ptr::null() };
    // SAFETY: ppoll(2) with the caller's pollfds, a timespec that lives for the call (or
    // none: no timeout) and no signal mask.
    let n = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds,
            nfds,
            tsp,
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    } as libc::c_int;
    let race = RACE_PORT_FD.load(Ordering::SeqCst);
    if n > 0 && race >= 0 {
        // SAFETY: `n > 0`, so `fds` points to the caller's `nfds` pollfds.
        let fds = unsafe { std::slice::from_raw_parts(fds, nfds as usize) };
        if fds
            .iter()
            .any(|p| p.fd == race && p.revents & libc::POLLOUT != 0)
        {
            fill(RACE_OWN_FD.load(Ordering::SeqCst));
            RACES.fetch_add(1, Ordering::SeqCst);
        }
    }
    n
}

/// Bring the eventfd `fd` to one short of its maximum: empty it, then write that much.
fn fill(fd: RawFd) {
    let mut buf = [0u8; 8];
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` describes `buf`, 8 writable bytes that live for the call; RWF_NOWAIT
    // makes an empty eventfd answer EAGAIN instead of waiting.
    unsafe { libc::preadv2(fd, &iov, 1, -1, libc::RWF_NOWAIT) };
    let full = FULL.to_ne_bytes();
    // SAFETY: `full` is 8 readable bytes; the eventfd is empty, so the write fits at once.
    unsafe { libc::write(fd, full.as_ptr().cast(), full.len()) };
}

/// Ends the race however the test ends: `RACE_PORT_FD` must not outlive the port's fd, or
/// another test's fd of the same number would be raced on.
struct Racing;

impl Drop for Racing {
    fn drop(&mut self) {
        RACE_PORT_FD.store(-1, Ordering::SeqCst);
    }
}

/// A line of `/proc/self/fdinfo/<fd>` (`eventfd-id`, `eventfd-count`), its value.
fn fdinfo(fd: RawFd, key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| Some(l.strip_prefix(key)?.strip_prefix(':')?.trim().to_string()))
}

/// The other fds of this process on the same eventfd as `fd`.
fn twins(fd: RawFd) -> Vec<RawFd> {
    let Some(id) = fdinfo(fd, "eventfd-id") else {
        return Vec::new();
    };
    std::fs::read_dir("/proc/self/fdinfo")
        .expect("fdinfo")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&f| f != fd && fdinfo(f, "eventfd-id").as_deref() == Some(id.as_str()))
        .collect()
}

/// The eventfd counter of `fd`, as fdinfo shows it (hex).
fn counter(fd: &EventFd) -> Option<String> {
    fdinfo(fd.as_raw_fd(), "eventfd-count")
}

/// Wait (10 s at most) until the counter of `fd` reads `want`.
fn counter_becomes(fd: &EventFd, want: &str, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while counter(fd).as_deref() != Some(want) {
        assert!(Instant::now() < until, "{what} (counter {:?})", counter(fd));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What lets go of the write waiting on the raced call eventfd.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LetGo {
    /// The frontend disconnects.
    Disconnect,
    /// The port is dropped, the frontend still connected.
    Drop,
}

/// Race on the receive ring's call eventfd while frames flow, then let the waiting write
/// go as `how` says. False if this kernel cannot tell which fd the port holds.
fn race(how: LetGo) -> bool {
    let sock = socket(&format!("race-{how:?}"));
    let port = server(&sock);
    let fe = frontend(&sock);
    let mem = guest_memory(true);
    let txq = MockSplitQueue::create(&mem, GuestAddress(0), QLEN);
    let rxq = MockSplitQueue::create(&mem, GuestAddress(0x8000), QLEN);
    let (calls, _kicks) = attach(&fe, &mem, &rxq, &txq);
    // The receive ring's call fd: blocking, and raced on whenever nfv's `poll` says it
    // takes a write.
    let call = &calls[0];
    make_blocking(call);
    if fdinfo(call.as_raw_fd(), "eventfd-id").is_none() {
        return false;
    }
    let theirs = twins(call.as_raw_fd());
    assert_eq!(theirs.len(), 1, "the port holds one fd of the call eventfd");
    let racing = Racing;
    let races = RACES.load(Ordering::SeqCst);
    RACE_OWN_FD.store(call.as_raw_fd(), Ordering::SeqCst);
    RACE_PORT_FD.store(theirs[0], Ordering::SeqCst);
    // Frames flow both ways while the write of the first interrupt to the guest's receive
    // ring waits for a reader that never comes.
    let worker = Worker::start(port);
    traffic(&mem, &rxq, &txq, &worker, 0, 60);
    assert!(RACES.load(Ordering::SeqCst) > races, "the race was played");
    drop(racing);
    // Full: the write of 1 made after the frontend filled it has not landed.
    assert_eq!(counter(call).as_deref(), Some("fffffffffffffffe"));
    // nfv empties the eventfd, which lets the write waiting in it land: the counter reads 1.
    match how {
        LetGo::Disconnect => {
            drop(fe);
            counter_becomes(
                call,
                "1",
                "the frontend left, the waiting write was not let go",
            );
            let port = worker.stop();
            assert!(
                drops_within(port, Duration::from_secs(2)),
                "dropping the port hung"
            );
        }
        LetGo::Drop => {
            let port = worker.stop();
            assert!(
                drops_within(port, Duration::from_secs(2)),
                "dropping the port hung on the write waiting on its call fd"
            );
            counter_becomes(
                call,
                "1",
                "the port was dropped, the waiting write was not let go",
            );
            drop(fe);
        }
    }
    true
}

#[test]
fn a_frontend_racing_on_its_call_eventfd_holds_only_its_ports_interrupts() {
    // One after the other: there is one race (`RACE_PORT_FD`) at a time.
    for how in [LetGo::Disconnect, LetGo::Drop] {
        if !race(how) {
            eprintln!("skipped: this kernel shows no eventfd-id in fdinfo");
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. Memory truncated under the port

#[test]
fn a_frontend_that_truncates_unsealable_memory_costs_only_its_own_port() {
    let sock = socket("truncate");
    let mut port = server(&sock);
    let fe = frontend(&sock);
    // DPDK's virtio_user without hugepages: a memfd made without MFD_ALLOW_SEALING, which
    // nfv cannot seal and takes anyway.
    let file = memfd(MEM as u64, false);
    let truncate = file.try_clone().expect("dup");
    let mem = guest_memory_in(file);
    let txq = MockSplitQueue::create(&mem, GuestAddress(0), QLEN);
    let rxq = MockSplitQueue::create(&mem, GuestAddress(0x8000), QLEN);
    let _fds = attach(&fe, &mem, &rxq, &txq);
    guest_sends(&mem, &rxq, &txq, 0);
    guest_sends(&mem, &rxq, &txq, 1);
    let (mut pool, counters) = (Pool::new(64), PortCounters::default());
    let until = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while got < 2 {
        assert!(Instant::now() < until, "the rings never ran");
        got += bursts(&mut port, &mut pool, &counters);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        counters.tx_packets.get(),
        2,
        "both frames went back to the guest"
    );
    // The guest has one more frame waiting when the frontend pulls the pages from under
    // the mapping. From here on the test must not touch `mem` itself (its own mapping of
    // the file is not nfv's, and would SIGBUS the test).
    guest_sends(&mem, &rxq, &txq, 2);
    let faults = guest_memory_faults();
    truncate.set_len(0).expect("truncate the memfd");
    // The worker polls on: its next read of the rings faults, which must cost this port
    // only: the rings stop and the frontend is let go.
    let until = Instant::now() + Duration::from_secs(10);
    while port.is_running() || port.is_connected() {
        assert!(
            Instant::now() < until,
            "the port went on serving the frontend that truncated its memory"
        );
        bursts(&mut port, &mut pool, &counters);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        guest_memory_faults() > faults,
        "the fault was taken (and papered over)"
    );
    assert_eq!(counters.rx_packets.get(), 2, "no frame of zeros went in");
    drop(fe);
    // The same port serves a well-behaved frontend next.
    let fe = frontend(&sock);
    let mem2 = guest_memory(true);
    let txq = MockSplitQueue::create(&mem2, GuestAddress(0), QLEN);
    let rxq = MockSplitQueue::create(&mem2, GuestAddress(0x8000), QLEN);
    let _fds = attach(&fe, &mem2, &rxq, &txq);
    guest_sends(&mem2, &rxq, &txq, 0);
    let until = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while got < 1 {
        assert!(Instant::now() < until, "the next frontend is not served");
        got += bursts(&mut port, &mut pool, &counters);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rxq.used().idx().load(), 1, "its frame went back to it");
    assert_eq!(pool.available(), 64, "no buffer leaked");
    drop(fe);
    // And every other port forwards on.
    another_port_forwards();
}

// ---------------------------------------------------------------------------------------
// 7. The dirty-page log of a migrating guest

/// Bytes of log for [`MEM`] of guest memory: a bit per 4 KiB page.
const LOG: u64 = (MEM as u64) / 4096 / 8;

/// The log region of `len` bytes in `file`, as a frontend hands it over.
fn log_region(file: &impl AsRawFd, len: u64) -> VhostUserDirtyLogRegion {
    VhostUserDirtyLogRegion {
        mmap_size: len,
        mmap_offset: 0,
        mmap_handle: file.as_raw_fd(),
    }
}

/// True if the log in `file` has the page of guest-physical `gpa` marked.
fn logged(file: &File, gpa: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let page = gpa / 4096;
    let mut w = [0u8; 8];
    file.read_exact_at(&mut w, page / 64 * 8)
        .expect("read the log");
    u64::from_le_bytes(w) & (1 << (page % 64)) != 0
}

/// Pages marked in the log in `file`.
fn marked(file: &File) -> u32 {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().expect("fstat").len();
    let mut b = vec![0u8; len as usize];
    file.read_exact_at(&mut b, 0).expect("read the log");
    b.iter().map(|x| x.count_ones()).sum()
}

/// The page of frame `i`'s receive buffer (see [`guest_sends`]).
fn rx_buffer(i: u16) -> u64 {
    0x20_0000 + u64::from(i % QLEN) * 0x800
}

/// A port serving a frontend with `LOG_SHMFD` and its rings, polled by a worker.
struct Migrating {
    fe: Frontend,
    mem: GuestMemoryMmap,
    worker: Worker,
    _fds: ([EventFd; 2], [EventFd; 2]),
}

impl Migrating {
    fn start(tag: &str, mem: GuestMemoryMmap) -> Migrating {
        let sock = socket(tag);
        let port = server(&sock);
        let fe = frontend_with(&sock, VhostUserProtocolFeatures::LOG_SHMFD);
        let fds = {
            let txq = MockSplitQueue::create(&mem, GuestAddress(0), QLEN);
            let rxq = MockSplitQueue::create(&mem, GuestAddress(0x8000), QLEN);
            attach(&fe, &mem, &rxq, &txq)
        };
        Migrating {
            fe,
            mem,
            worker: Worker::start(port),
            _fds: fds,
        }
    }

    /// Hand the port `log` (of [`LOG`] bytes) and switch logging on.
    fn log_on(&self, log: &File) {
        self.fe
            .set_log_base(0, Some(log_region(log, LOG)))
            .expect("SET_LOG_BASE");
        self.fe
            .set_features(FEATURES | LOG_ALL)
            .expect("logging on");
    }

    /// Stop the worker and wait until the port let the frontend go.
    fn let_go(self) -> VhostUserPort {
        let port = self.worker.stop();
        let until = Instant::now() + Duration::from_secs(10);
        while port.is_connected() {
            assert!(Instant::now() < until, "the frontend was not let go");
            std::thread::sleep(Duration::from_millis(10));
        }
        port
    }

    /// Frames `from..from + n` from the guest and back.
    fn traffic(&self, from: u16, n: u16) {
        // The rings as `start` made them (the mock keeps no state of its own).
        let txq = MockSplitQueue::create(&self.mem, GuestAddress(0), QLEN);
        let rxq = MockSplitQueue::create(&self.mem, GuestAddress(0x8000), QLEN);
        traffic(&self.mem, &rxq, &txq, &self.worker, from, n);
    }
}

#[test]
fn logging_marks_the_pages_the_worker_writes_and_stops_when_switched_off() {
    let m = Migrating::start("log", guest_memory(true));
    m.traffic(0, 3);
    let log = memfd(LOG, true);
    m.fe.set_log_base(0, Some(log_region(&log, LOG)))
        .expect("SET_LOG_BASE");
    assert_eq!(marked(&log), 0, "nothing logged before logging is on");
    m.fe.set_features(FEATURES | LOG_ALL)
        .expect("logging on, under traffic");
    m.traffic(3, 6);
    // Receive buffers filled, both used rings: the worker's writes, all marked.
    for i in 3..9 {
        assert!(logged(&log, rx_buffer(i)), "frame {i}'s receive buffer");
    }
    let (txq, rxq) = (
        MockSplitQueue::create(&m.mem, GuestAddress(0), QLEN),
        MockSplitQueue::create(&m.mem, GuestAddress(0x8000), QLEN),
    );
    assert!(
        logged(&log, rxq.used_addr().0),
        "the receive ring's used ring"
    );
    assert!(
        logged(&log, txq.used_addr().0),
        "the transmit ring's used ring"
    );
    // And nothing the worker only read: the guest's frames.
    assert!(
        !logged(&log, 0x10_0000),
        "the transmit buffers were only read"
    );
    let pages = marked(&log);
    assert!(pages <= 8, "{pages} pages marked for 6 frames");

    // Off: nothing more is marked.
    m.fe.set_features(FEATURES).expect("logging off");
    // (Sealed against shrinking by nfv: cleared by writing zeros, as QEMU clears it.)
    std::os::unix::fs::FileExt::write_all_at(&log, &[0u8; LOG as usize], 0).expect("clear");
    m.traffic(9, 6);
    assert_eq!(marked(&log), 0, "nothing logged once logging is off");
    // On again, with the log it has.
    m.fe.set_features(FEATURES | LOG_ALL)
        .expect("logging on again");
    m.traffic(15, 3);
    assert!(logged(&log, rx_buffer(15)) && logged(&log, rx_buffer(17)));
    let port = m.worker.stop();
    assert!(port.is_connected());
}

#[test]
fn a_log_too_small_or_unmappable_is_refused_and_logging_with_it() {
    let m = Migrating::start("badlog", guest_memory(true));
    m.traffic(0, 3);
    // Each is answered (SET_LOG_BASE carries no status) and leaves no log: the request to
    // start logging is refused, and the frontend's migration would fail there.
    let small = memfd(8, true); // 64 pages of 1,024
    let short = memfd(LOG / 2, true); // a file shorter than the log it claims
    let ev = EventFd::new(0).expect("eventfd"); // not a file at all
    let candidates: [(&str, VhostUserDirtyLogRegion); 3] = [
        ("a log smaller than guest memory", log_region(&small, 8)),
        ("a log past its file's end", log_region(&short, LOG)),
        ("an eventfd as the log", log_region(&ev, LOG)),
    ];
    for (what, region) in candidates {
        m.fe.set_log_base(0, Some(region))
            .unwrap_or_else(|e| panic!("{what}: SET_LOG_BASE answered: {e}"));
        assert!(
            m.fe.set_features(FEATURES | LOG_ALL).is_err(),
            "{what}: logging refused"
        );
    }
    assert_eq!(marked(&small), 0);
    // The guest's traffic goes on, unlogged.
    m.traffic(3, 3);
    // A good log is taken.
    let log = memfd(LOG, true);
    m.log_on(&log);
    m.traffic(6, 3);
    assert!(logged(&log, rx_buffer(6)));
    // While logging, a bad log can no longer be refused by refusing the start: the port
    // lets the frontend go (it would otherwise log into a log nobody reads).
    assert!(
        m.fe.set_log_base(0, Some(log_region(&small, 8))).is_err(),
        "the connection ends"
    );
    m.let_go();
    another_port_forwards();
}

#[test]
fn a_frontend_that_truncates_its_log_costs_only_its_own_port() {
    let m = Migrating::start("truncatelog", guest_memory(true));
    // A log nfv cannot seal (made without MFD_ALLOW_SEALING).
    let log = memfd(LOG, false);
    m.log_on(&log);
    m.traffic(0, 3);
    assert!(logged(&log, rx_buffer(0)));
    let faults = guest_memory_faults();
    log.set_len(0).expect("truncate the log");
    // The next frame's marks fault: papered over, and the port stops serving this
    // frontend.
    let txq = MockSplitQueue::create(&m.mem, GuestAddress(0), QLEN);
    let rxq = MockSplitQueue::create(&m.mem, GuestAddress(0x8000), QLEN);
    guest_sends(&m.mem, &rxq, &txq, 3);
    let until = Instant::now() + Duration::from_secs(10);
    while guest_memory_faults() == faults {
        assert!(Instant::now() < until, "the worker never wrote to the log");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!m.let_go().is_running());
    another_port_forwards();
}
