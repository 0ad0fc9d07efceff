//! A vhost-user port driven through its real socket by the rust-vmm `vhost` crate's own
//! frontend, with guest memory in a shared file and rings laid out by `virtio-queue`'s mock.
//! The test thread plays the worker (it calls `rx_burst`/`tx_burst`); a second thread plays
//! QEMU. Covers: set-up in server and client mode, frames both ways, `GET_VRING_BASE`
//! answered with the worker's position, memory released at disconnect, a second frontend on
//! the same port, and a client-mode port reconnecting by itself.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nfv_dataplane::counters::PortCounters;
use nfv_dataplane::port::{Port, SocketMode, VhostUserConfig, VhostUserPort};
use nfv_dataplane::{Batch, DropReason, Packet, Pool};
use vhost::vhost_user::Frontend;
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_queue::desc::{split::Descriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

const MEM: usize = 4 << 20;
const TXQ_AT: u64 = 0; // the guest's transmit queue (index 1)
const RXQ_AT: u64 = 0x8000; // the guest's receive queue (index 0)
const VERSION_1: u64 = 1 << 32;
const MRG_RXBUF: u64 = 1 << 15;

/// Removes a file when dropped, also when the test fails.
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tmp(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nfv-vhost-{tag}-{}", std::process::id()));
    // (memory files are named nfv-vhost-TAG.mem-PID: see `mappings`)
    let _ = std::fs::remove_file(&p);
    p
}

/// Guest memory in a file both sides map, as QEMU's memfd is.
fn guest_memory(tag: &str) -> GuestMemoryMmap {
    let path = tmp(&format!("{tag}.mem"));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("memory file");
    let _ = std::fs::remove_file(&path);
    f.set_len(MEM as u64).expect("size");
    GuestMemoryMmap::from_ranges_with_files([(GuestAddress(0), MEM, Some(FileOffset::new(f, 0)))])
        .expect("guest memory")
}

/// Run the vhost-user set-up a VMM does: features, memory, both rings.
fn set_up(fe: &mut Frontend, g: &Guest, calls: &[EventFd; 2], kicks: &[EventFd; 2]) {
    let mem = g.mem;
    fe.set_owner().expect("SET_OWNER");
    let offered = fe.get_features().expect("GET_FEATURES");
    assert_eq!(offered & (VERSION_1 | MRG_RXBUF), VERSION_1 | MRG_RXBUF);
    fe.set_features(VERSION_1 | MRG_RXBUF)
        .expect("SET_FEATURES");
    let region = mem.iter().next().expect("a region");
    let info = VhostUserMemoryRegionInfo::from_guest_region(region).expect("region info");
    fe.set_mem_table(&[info]).expect("SET_MEM_TABLE");
    let host = region.as_ptr() as u64;
    for (q, vq) in [(0usize, &g.rxq), (1, &g.txq)] {
        fe.set_vring_num(q, 16).expect("SET_VRING_NUM");
        let cfg = VringConfigData {
            queue_max_size: 16,
            queue_size: 16,
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
}

fn eventfds() -> [EventFd; 2] {
    [
        EventFd::new(libc::EFD_NONBLOCK).expect("eventfd"),
        EventFd::new(libc::EFD_NONBLOCK).expect("eventfd"),
    ]
}

fn desc(addr: u64, len: u32, flags: u16) -> RawDescriptor {
    RawDescriptor::from(Descriptor::new(addr, len, flags, 0))
}

/// A guest's memory and its two queues (laid out by the mock: table, available ring, used
/// ring), made once: making a mock resets its ring indices.
struct Guest<'a> {
    mem: &'a GuestMemoryMmap,
    txq: MockSplitQueue<'a, GuestMemoryMmap>,
    rxq: MockSplitQueue<'a, GuestMemoryMmap>,
}

impl<'a> Guest<'a> {
    fn new(mem: &'a GuestMemoryMmap) -> Self {
        Guest {
            mem,
            txq: MockSplitQueue::create(mem, GuestAddress(TXQ_AT), 16),
            rxq: MockSplitQueue::create(mem, GuestAddress(RXQ_AT), 16),
        }
    }

    /// Put `n` frames of 64 bytes (with a virtio-net header) on the transmit queue.
    fn sends(&self, n: u16) {
        for i in 0..n {
            let at = 0x10_0000 + u64::from(i) * 0x800;
            let mut f = vec![0u8; 12 + 64];
            f[12..18].copy_from_slice(&[0xff; 6]);
            f[18..24].copy_from_slice(&[2, 0, 0, 0, 0, i as u8]);
            self.mem.write_slice(&f, GuestAddress(at)).expect("frame");
            self.txq
                .add_desc_chains(&[desc(at, f.len() as u32, 0)], i)
                .expect("chain");
        }
    }

    /// Post `n` receive buffers of 2 KiB.
    fn posts(&self, n: u16) {
        for i in 0..n {
            self.rxq
                .add_desc_chains(&[desc(0x20_0000 + u64::from(i) * 0x800, 2048, 2)], i)
                .expect("rx buffer");
        }
    }
}

/// The worker's side: poll until `done` says so, or fail after 10 s.
struct Worker {
    port: VhostUserPort,
    pool: Pool,
    counters: PortCounters,
    got: usize,
}

impl Worker {
    fn new(port: VhostUserPort) -> Self {
        Worker {
            port,
            pool: Pool::new(256),
            counters: PortCounters::default(),
            got: 0,
        }
    }

    fn poll_until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            let mut b = Batch::new();
            self.port.rx_burst(&mut self.pool, &mut b, &self.counters);
            self.got += b.len();
            for p in b.drain() {
                self.pool.free(p);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn send(&mut self, n: usize) {
        let mut b = Batch::new();
        for i in 0..n {
            let mut f = vec![0u8; 60];
            f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x10 + i as u8]);
            let _ = b.push(Packet::from_bytes(&f).expect("frame"));
        }
        self.port.tx_burst(&mut b, &mut self.pool, &self.counters);
    }
}

/// Frames both ways, then `GET_VRING_BASE` from the frontend while the worker polls.
fn exchange(w: &mut Worker, g: &Guest, fe: Frontend) -> Frontend {
    let before = w.got;
    w.poll_until("the rings to start", |w| w.port.is_running());
    g.sends(3);
    w.poll_until("3 frames from the guest", |w| w.got == before + 3);
    assert_eq!(g.txq.used().idx().load(), 3);
    g.posts(2);
    let tx = w.counters.tx_packets.get();
    let full = w.counters.drops.get(DropReason::TxFull);
    w.send(3);
    assert_eq!(w.counters.tx_packets.get(), tx + 2);
    assert_eq!(
        w.counters.drops.get(DropReason::TxFull),
        full + 1,
        "2 buffers for 3 frames"
    );
    assert_eq!(g.rxq.used().idx().load(), 2);
    let mut hdr = [0u8; 12];
    g.mem
        .read_slice(&mut hdr, GuestAddress(0x20_0000))
        .expect("header");
    assert_eq!(u16::from_le_bytes([hdr[10], hdr[11]]), 1, "num_buffers");
    // The frontend stops the transmit ring; the answer comes from the worker.
    let (tx_base, rx_base) = mpsc::channel();
    let fe = std::thread::spawn(move || {
        let base = fe.get_vring_base(1).expect("GET_VRING_BASE");
        tx_base.send(base).expect("send");
        fe
    });
    let mut base = None;
    w.poll_until("GET_VRING_BASE", |_| {
        base = rx_base.try_recv().ok();
        base.is_some()
    });
    assert_eq!(base, Some(3), "where the worker stopped the transmit ring");
    fe.join().expect("frontend thread")
}

/// How many mappings of guest memory file `tag` this process holds.
fn mappings(tag: &str) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let name = format!("nfv-vhost-{tag}.mem-{}", std::process::id());
    maps.lines().filter(|l| l.contains(&name)).count()
}

fn port(socket: &Path, mode: SocketMode) -> VhostUserPort {
    VhostUserPort::new(VhostUserConfig {
        name: "vm".into(),
        socket: socket.to_path_buf(),
        mode,
        mtu: 1500,
    })
    .expect("port")
}

#[test]
fn server_mode_set_up_traffic_stop_and_a_second_guest() {
    let sock = tmp("server.sock");
    let mut w = Worker::new(port(&sock, SocketMode::Server));
    for round in 0..2 {
        let mem = guest_memory(&format!("server{round}"));
        let g = Guest::new(&mem);
        let (calls, kicks) = (eventfds(), eventfds());
        let mut fe = Frontend::connect(&sock, 2).expect("connect");
        set_up(&mut fe, &g, &calls, &kicks);
        let fe = exchange(&mut w, &g, fe);
        assert_eq!(
            mappings(&format!("server{round}")),
            2,
            "the test's and the port's"
        );
        drop(fe);
        // The port lets go of the guest's memory (only the test's own mapping stays).
        w.poll_until("the guest's memory to be unmapped", |w| {
            !w.port.is_connected() && mappings(&format!("server{round}")) == 1
        });
        let down = w.counters.drops.get(DropReason::PortDown);
        w.send(1);
        assert_eq!(w.counters.drops.get(DropReason::PortDown), down + 1);
    }
    assert_eq!(w.got, 6);
    drop(w);
    assert!(!sock.exists(), "the socket is removed with the port");
}

#[test]
fn client_mode_reconnects_after_the_frontend_goes() {
    let sock = tmp("client.sock");
    let _remove = Remove(sock.clone());
    let listener = UnixListener::bind(&sock).expect("listen");
    let mut w = Worker::new(port(&sock, SocketMode::Client));
    for round in 0..2 {
        let mem = guest_memory(&format!("client{round}"));
        let g = Guest::new(&mem);
        let (calls, kicks) = (eventfds(), eventfds());
        // The port connects (again) by itself.
        let (stream, _) = listener.accept().expect("the port connects");
        let mut fe = Frontend::from_stream(stream, 2);
        set_up(&mut fe, &g, &calls, &kicks);
        let fe = exchange(&mut w, &g, fe);
        drop(fe);
        w.poll_until("the guest to be forgotten", |w| !w.port.is_running());
    }
    drop(w);
}
