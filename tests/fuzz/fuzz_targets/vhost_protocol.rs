//! A hostile vhost-user frontend: sequences of protocol messages, with file descriptors,
//! through a port's real socket to its protocol thread, the worker's bursts running between
//! them. Messages: SET_OWNER, RESET_OWNER, GET/SET_FEATURES and GET/SET_PROTOCOL_FEATURES
//! (any bits), SET_MEM_TABLE with 0 to 3 regions (memfds of input-made sizes; regions larger
//! than their file, overlapping, zero-sized, at any guest, user and file offset, or backed by
//! an eventfd or a pipe), SET_VRING_NUM/ADDR/BASE, GET_VRING_BASE, SET_VRING_KICK/CALL/ERR
//! (an eventfd, blocking or saturated, a pipe end, a memfd or none, and fds that disagree
//! with the no-fd flag), SET_VRING_ENABLE, SET_LOG_BASE (a 4 KiB memfd, sizes and offsets
//! that fit it or not; with LOG_ALL among the features the worker then logs), raw messages of any code, flags and
//! body with up to three fds, a whole well-formed set-up, disconnects. The guest meanwhile
//! writes its memory (raw bytes, or descriptors and frames on a ring) and kicks.
//!
//! One port serves every input (made once: a port's protocol thread takes up to 250 ms to
//! end), on a socket in a private directory (mode 0700, random name) removed at exit. Each
//! request is followed by a GET_FEATURES whose answer says the protocol thread is done with
//! it, while this thread plays the worker (it takes up every change the protocol thread
//! publishes, as the worker does between bursts). Checked: no panic; no hang (every request
//! answered, or the connection closed, within 10 s); every buffer back in the pool and no
//! burst over the descriptor budget; and after each input, once the hostile frontend is gone,
//! a well-behaved one gets the port running and one frame through each way.
#![no_main]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use nfv_dataplane::counters::PortCounters;
use nfv_dataplane::port::{Port, SocketMode, VhostUserConfig, VhostUserPort};
use nfv_dataplane::{Batch, Pool};

// Requests (vhost-user specification).
const GET_FEATURES: u32 = 1;
const SET_FEATURES: u32 = 2;
const SET_OWNER: u32 = 3;
const RESET_OWNER: u32 = 4;
const SET_MEM_TABLE: u32 = 5;
const SET_LOG_BASE: u32 = 6;
const SET_VRING_NUM: u32 = 8;
const SET_VRING_ADDR: u32 = 9;
const SET_VRING_BASE: u32 = 10;
const GET_VRING_BASE: u32 = 11;
const SET_VRING_KICK: u32 = 12;
const SET_VRING_CALL: u32 = 13;
const SET_VRING_ERR: u32 = 14;
const GET_PROTOCOL_FEATURES: u32 = 15;
const SET_PROTOCOL_FEATURES: u32 = 16;
const SET_VRING_ENABLE: u32 = 18;
const RESET_DEVICE: u32 = 34;
/// Header flags: version 1, and "reply" / "need reply".
const VERSION: u32 = 1;
const REPLY: u32 = 4;
const NEED_REPLY: u32 = 8;
/// SET_VRING_KICK/CALL/ERR: no fd attached.
const NOFD: u64 = 0x100;
// Feature bits.
const MRG_RXBUF: u64 = 1 << 15;
const EVENT_IDX: u64 = 1 << 29;
const PROTOCOL_FEATURES: u64 = 1 << 30;
const VERSION_1: u64 = 1 << 32;
/// VHOST_F_LOG_ALL: dirty-page logging (a migration).
const LOG_ALL: u64 = 1 << 26;
/// What the port offers (`backend::FEATURES`) that this target acks: ring features and
/// logging.
const OFFERED: u64 = MRG_RXBUF | 1 << 28 | EVENT_IDX | PROTOCOL_FEATURES | VERSION_1 | LOG_ALL;
const REPLY_ACK: u64 = 1 << 3;
const POOL: usize = 64;
/// The port's descriptor budget per burst and ring (`virtq::BUDGET`).
const BUDGET: u64 = 1024;
/// The longest any request may take to be answered, or the worker to see a change.
const WAIT: Duration = Duration::from_secs(10);
/// The frontend's "virtual address" of its memory: the port only translates these.
const UADDR: u64 = 0x7f00_0000_0000;
/// A well-formed guest's memory: its rings at the standard layout, buffers above.
const GOOD_MEM: u64 = 256 << 10;
const F_WRITE: u16 = 2;

/// The private directory of this run (removed at exit).
static DIR: OnceLock<PathBuf> = OnceLock::new();
static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();

extern "C" fn clean_up() {
    if let Some(d) = DIR.get() {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A directory only this process can use, under the system's temporary directory.
fn private_dir() -> PathBuf {
    let mut seed = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .expect("random bytes");
    let dir = std::env::temp_dir().join(format!(
        "nfv-fuzz-vhost-{}-{:016x}",
        std::process::id(),
        u64::from_ne_bytes(seed)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .expect("private directory");
    dir
}

/// The port and the worker's side of it, kept across inputs.
struct Harness {
    port: VhostUserPort,
    sock: PathBuf,
    pool: Pool,
    counters: PortCounters,
    /// The well-behaved guest's memory.
    good: File,
}

impl Harness {
    fn new() -> Harness {
        // A write to a closed socket must fail with EPIPE, not end the process (as in nfv,
        // whose Rust `main` ignores SIGPIPE).
        // SAFETY: setting a signal's disposition to "ignore" has no other effect.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let dir = DIR.get_or_init(private_dir);
        // SAFETY: `clean_up` is an `extern "C" fn()` that lives for the whole program.
        unsafe { libc::atexit(clean_up) };
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            clean_up();
            hook(info);
        }));
        let sock = dir.join("port.sock");
        let port = VhostUserPort::new(VhostUserConfig {
            name: "fuzz".into(),
            socket: sock.clone(),
            mode: SocketMode::Server,
            mtu: 1500,
        })
        .expect("port");
        Harness {
            port,
            sock,
            pool: Pool::new(POOL),
            counters: PortCounters::default(),
            good: memfd(GOOD_MEM, true),
        }
    }

    /// Take up what the protocol thread published (what a burst does first), moving no frame.
    fn sync(&mut self) {
        let mut b = Batch::new();
        self.port.tx_burst(&mut b, &mut self.pool, &self.counters);
    }

    /// One round of the worker: frames from the guest, sent back to it with one of ours.
    /// Checks the descriptor budget of each burst and that every buffer comes back.
    fn burst(&mut self) -> usize {
        self.sync();
        let mut b = Batch::new();
        let before = self.port.descriptors_visited();
        self.port.rx_burst(&mut self.pool, &mut b, &self.counters);
        let visited = self.port.descriptors_visited().saturating_sub(before);
        assert!(visited <= BUDGET, "rx burst read {visited} descriptors");
        let got = b.len();
        if let Some(mut p) = self.pool.alloc() {
            p.set_frame(&frame(60, 0));
            if let Err(p) = b.push(p) {
                self.pool.free(p);
            }
        }
        self.sync();
        let before = self.port.descriptors_visited();
        self.port.tx_burst(&mut b, &mut self.pool, &self.counters);
        let visited = self.port.descriptors_visited().saturating_sub(before);
        assert!(visited <= BUDGET, "tx burst read {visited} descriptors");
        assert!(b.is_empty());
        assert_eq!(self.pool.available(), POOL, "a buffer leaked");
        got
    }

    /// An idle port lets the worker sleep: once the port agreed to it, its wait fd is quiet
    /// (an fd left ready in it, say a kick nobody drains, would make an idle worker spin).
    fn sleeps(&mut self) {
        if self.port.prepare_sleep() {
            let mut p = libc::pollfd {
                fd: self
                    .port
                    .wait_fd()
                    .expect("a vhost-user port has a wait fd"),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `p` is one valid pollfd; a zero timeout returns at once.
            unsafe { libc::poll(&mut p, 1, 0) };
            assert_eq!(
                p.revents, 0,
                "the port let the worker sleep on a ready wait fd: an idle worker would spin"
            );
            self.port.after_sleep();
        }
    }

    /// Wait (bounded) for `fd` to be ready for `events`, taking up the protocol thread's
    /// changes meanwhile (it may be waiting for the worker). False if `fd` is not ready yet.
    fn wait(&mut self, fd: RawFd, events: libc::c_short) -> bool {
        let mut fds = [
            libc::pollfd {
                fd,
                events,
                revents: 0,
            },
            libc::pollfd {
                fd: self
                    .port
                    .wait_fd()
                    .expect("a vhost-user port has a wait fd"),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is an array of two valid pollfds, borrowed for the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
        if fds[1].revents != 0 {
            // A change published, or a kick: what the worker does when woken.
            self.sync();
            if self.port.prepare_sleep() {
                self.port.after_sleep();
            }
        }
        fds[0].revents != 0
    }
}

/// A memfd of `len` bytes; `sealing` allows seals (the port then seals it against shrinking).
fn memfd(len: u64, sealing: bool) -> File {
    let flags = libc::MFD_CLOEXEC | if sealing { libc::MFD_ALLOW_SEALING } else { 0 };
    // SAFETY: the name is a valid NUL-terminated string; the result is checked.
    let fd = unsafe { libc::memfd_create(c"nfv-fuzz".as_ptr(), flags) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: `fd` was just created and is owned by nobody else.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(len).expect("size the memfd");
    f
}

fn eventfd(flags: libc::c_int) -> File {
    // SAFETY: eventfd(2) takes no pointers; the result is checked.
    let fd = unsafe { libc::eventfd(0, flags | libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd");
    // SAFETY: `fd` was just created and is owned by nobody else.
    unsafe { File::from_raw_fd(fd) }
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2(2) writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// `sendmsg` without waiting and without SIGPIPE, `fds` attached as SCM_RIGHTS.
fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> std::io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let bytes = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(bytes) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: `msg` has a control buffer of `space` bytes (8-aligned), room for one
        // header and `fds`; CMSG_FIRSTHDR points into it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: `msg` points at `iov` (describing `data`) and `control`, all alive for the call.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A connection to the port, as a frontend.
struct Conn {
    s: UnixStream,
    /// Bytes read and not yet parsed into answers.
    inbox: Vec<u8>,
    /// GET_FEATURES sent and answered: equal once the protocol thread caught up.
    asked: u64,
    answered: u64,
    alive: bool,
}

impl Conn {
    fn connect(h: &Harness) -> Conn {
        let s = UnixStream::connect(&h.sock).expect("connect to the port");
        s.set_nonblocking(true).expect("non-blocking");
        Conn {
            s,
            inbox: Vec::new(),
            asked: 0,
            answered: 0,
            alive: true,
        }
    }

    /// Read what the port answered, without waiting.
    fn read(&mut self) {
        let mut buf = [0u8; 4096];
        while self.alive {
            match self.s.read(&mut buf) {
                Ok(0) => self.alive = false,
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.alive = false,
            }
        }
        while self.inbox.len() >= 12 {
            let word = |i: usize| u32::from_le_bytes(self.inbox[i..i + 4].try_into().unwrap());
            let (code, flags, size) = (word(0), word(4), word(8) as usize);
            if self.inbox.len() < 12 + size {
                break;
            }
            if code == GET_FEATURES && flags & REPLY != 0 {
                self.answered += 1;
            }
            self.inbox.drain(..12 + size);
        }
    }

    /// Send one message (header, body, fds); a closed connection is noted, not an error.
    fn send(&mut self, h: &mut Harness, code: u32, flags: u32, body: &[u8], fds: &[RawFd]) {
        let mut msg = Vec::with_capacity(12 + body.len());
        for w in [code, flags, body.len() as u32] {
            msg.extend_from_slice(&w.to_le_bytes());
        }
        msg.extend_from_slice(body);
        let until = Instant::now() + WAIT;
        let mut at = 0;
        while self.alive && at < msg.len() {
            let fds = if at == 0 { fds } else { &[] };
            match send_with_fds(self.s.as_raw_fd(), &msg[at..], fds) {
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(Instant::now() < until, "hang: the port reads no requests");
                    self.read();
                    h.wait(self.s.as_raw_fd(), libc::POLLOUT);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.alive = false,
            }
        }
        if self.alive && code == GET_FEATURES {
            self.asked += 1;
        }
    }

    /// Wait until the protocol thread handled everything sent so far (its answer to a
    /// GET_FEATURES sent last), or closed the connection.
    fn barrier(&mut self, h: &mut Harness) {
        self.send(h, GET_FEATURES, VERSION, &[], &[]);
        let until = Instant::now() + WAIT;
        loop {
            self.read();
            if !self.alive || self.answered == self.asked {
                break;
            }
            assert!(
                Instant::now() < until,
                "hang: the port answered no request for {WAIT:?}"
            );
            h.wait(self.s.as_raw_fd(), libc::POLLIN);
        }
        h.sync();
    }
}

/// A frame of `len` bytes (at least 14): broadcast, from a locally administered address.
fn frame(len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![tag; len.max(14)];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, tag]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// A region of the memory table, as the frontend sent it.
#[derive(Clone, Copy)]
struct Region {
    gpa: u64,
    size: u64,
    uaddr: u64,
    offset: u64,
    /// The memfd behind it (an index into `Frontend::mems`), if it is one.
    mem: Option<usize>,
}

/// A ring as the frontend set it up: size and the three areas' frontend addresses.
#[derive(Clone, Copy, Default)]
struct Ring {
    size: u32,
    desc: u64,
    avail: u64,
    used: u64,
}

/// The standard layout of ring `q` in a region at frontend address `base`: table, available
/// and used ring 4 KiB apart, the two rings 32 KiB apart (room for 256 entries).
fn ring_at(q: usize, base: u64, size: u32) -> Ring {
    let at = base.wrapping_add(q as u64 * 0x8000);
    Ring {
        size,
        desc: at,
        avail: at.wrapping_add(0x1000),
        used: at.wrapping_add(0x2000),
    }
}

/// The hostile frontend and its guest, one input long.
#[derive(Default)]
struct Frontend {
    conn: Option<Conn>,
    /// The guest's memory files.
    mems: Vec<File>,
    /// The memory table and rings last sent.
    regions: Vec<Region>,
    rings: [Ring; 2],
    /// Eventfds sent as kick fds, to kick.
    kicks: Vec<File>,
    /// The other ends of pipes sent, kept open.
    keep: Vec<File>,
}

impl Frontend {
    /// The connection, made anew if the last one closed (the model of what was sent goes
    /// with it).
    fn conn(&mut self, h: &Harness) -> &mut Conn {
        if !self.conn.as_ref().is_some_and(|c| c.alive) {
            self.conn = Some(Conn::connect(h));
            self.regions.clear();
            self.rings = [Ring::default(); 2];
        }
        self.conn.as_mut().expect("just made")
    }

    fn send(&mut self, h: &mut Harness, code: u32, flags: u32, body: &[u8], fds: &[RawFd]) {
        self.conn(h).send(h, code, flags, body, fds);
    }

    /// Frontend address `uaddr` as (memfd, file offset) and guest address, by the table.
    fn locate(&self, uaddr: u64) -> Option<(usize, u64, u64)> {
        self.regions.iter().find_map(|r| {
            let off = uaddr.checked_sub(r.uaddr).filter(|&o| o < r.size)?;
            Some((r.mem?, r.offset.checked_add(off)?, r.gpa.checked_add(off)?))
        })
    }

    /// Write `bytes` at frontend address `uaddr`, if the table maps it to a memfd (never
    /// beyond the file's end: the file must not grow or shrink under the port).
    fn poke(&self, uaddr: u64, bytes: &[u8]) {
        if let Some((m, off, _)) = self.locate(uaddr) {
            let f = &self.mems[m];
            let len = f.metadata().map_or(0, |m| m.len());
            if off
                .checked_add(bytes.len() as u64)
                .is_some_and(|end| end <= len)
            {
                let _ = f.write_all_at(bytes, off);
            }
        }
    }

    fn peek16(&self, uaddr: u64) -> u16 {
        let mut b = [0u8; 2];
        if let Some((m, off, _)) = self.locate(uaddr) {
            let _ = self.mems[m].read_exact_at(&mut b, off);
        }
        u16::from_le_bytes(b)
    }

    /// The region holding frontend address `uaddr`.
    fn region_of(&self, uaddr: u64) -> Option<Region> {
        self.regions
            .iter()
            .find(|r| uaddr.checked_sub(r.uaddr).is_some_and(|o| o < r.size))
            .copied()
    }

    /// The guest puts `n` buffers on ring `q` (0: its receive ring, buffers for nfv to
    /// fill; 1: its transmit ring, frames of `len` bytes after a 12-byte header), each one
    /// descriptor, 2 KiB apart in the region of the ring's table (from 64 KiB in for the
    /// receive ring, 128 KiB for the transmit ring), and makes them available.
    fn post(&self, q: usize, n: u16, len: u32) {
        let r = self.rings[q];
        let Some(region) = self.region_of(r.desc).filter(|_| r.size > 0) else {
            return;
        };
        let mut idx = self.peek16(r.avail.wrapping_add(2));
        for _ in 0..n {
            let slot = u32::from(idx) % r.size;
            let off = 0x1_0000 + q as u64 * 0x1_0000 + u64::from(slot % 32) * 0x800;
            let flags = if q == 0 { F_WRITE } else { 0 };
            if q == 1 {
                // The frame written is at most 2 KiB, whatever length the descriptor says.
                let mut f = vec![0u8; 12];
                f.extend_from_slice(&frame(
                    len.saturating_sub(12).min(2048) as usize,
                    slot as u8,
                ));
                f.truncate(len as usize);
                self.poke(region.uaddr.wrapping_add(off), &f);
            }
            let mut d = [0u8; 16];
            d[0..8].copy_from_slice(&region.gpa.wrapping_add(off).to_le_bytes());
            d[8..12].copy_from_slice(&len.to_le_bytes());
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            self.poke(r.desc.wrapping_add(16 * u64::from(slot)), &d);
            self.poke(
                r.avail.wrapping_add(4 + 2 * u64::from(slot)),
                &(slot as u16).to_le_bytes(),
            );
            idx = idx.wrapping_add(1);
            self.poke(r.avail.wrapping_add(2), &idx.to_le_bytes());
        }
    }
}

/// Header flags: version 1, sometimes asking for a reply, rarely anything.
fn flags(u: &mut Unstructured) -> Result<u32> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => VERSION | NEED_REPLY,
        1 => u.arbitrary()?,
        _ => VERSION,
    })
}

/// A ring index: mostly one of the two, sometimes any.
fn index(u: &mut Unstructured) -> Result<u32> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => u.arbitrary()?,
        1 => 2,
        i => u32::from(i & 1),
    })
}

/// An fd for SET_VRING_KICK/CALL/ERR: `None` or an fd to attach (the frontend keeps what
/// it needs of it).
fn vring_fd(u: &mut Unstructured, f: &mut Frontend) -> Result<Option<File>> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => None,
        1 => Some(eventfd(0)),
        2 => {
            // Saturated and blocking: a write of 1 would wait.
            let e = eventfd(0);
            let _ = (&e).write(&0xffff_ffff_ffff_fffeu64.to_ne_bytes());
            Some(e)
        }
        3 => {
            let (r, w) = pipe();
            f.keep.push(w);
            Some(r)
        }
        4 => {
            let (r, w) = pipe();
            f.keep.push(r);
            Some(w)
        }
        5 => Some(memfd(4096, false)),
        _ => {
            let e = eventfd(libc::EFD_NONBLOCK);
            if let Ok(k) = e.try_clone() {
                f.kicks.push(k);
            }
            Some(e)
        }
    })
}

/// SET_VRING_KICK, CALL or ERR with an fd, none, or one that disagrees with the flag.
fn set_vring_fd(h: &mut Harness, f: &mut Frontend, u: &mut Unstructured, code: u32) -> Result<()> {
    let i = u64::from(index(u)? & 0xff);
    let fd = vring_fd(u, f)?;
    let nofd = match u.int_in_range(0..=9u8)? {
        0 => fd.is_some(), // fd and flag disagree
        _ => fd.is_none(),
    };
    let high = if u.ratio(1, 16)? {
        u.arbitrary::<u64>()? & !0x1ff
    } else {
        0
    };
    let value = i | if nofd { NOFD } else { 0 } | high;
    let fds: Vec<RawFd> = fd.iter().map(AsRawFd::as_raw_fd).collect();
    let fl = flags(u)?;
    f.send(h, code, fl, &value.to_le_bytes(), &fds);
    Ok(())
}

/// A frontend address for a ring area: in the table's regions (aligned or not), or any.
fn ring_addr(u: &mut Unstructured, f: &Frontend) -> Result<u64> {
    let base = if f.regions.is_empty() {
        UADDR
    } else {
        f.regions[u.choose_index(f.regions.len())?].uaddr
    };
    Ok(match u.int_in_range(0..=3u8)? {
        0 => u.arbitrary()?,
        1 => base.wrapping_add(u.arbitrary::<u16>()?.into()),
        _ => base.wrapping_add(u64::from(u.int_in_range(0..=63u16)?) * 0x1000),
    })
}

/// SET_MEM_TABLE with 0 to 3 regions.
fn set_mem_table(h: &mut Harness, f: &mut Frontend, u: &mut Unstructured) -> Result<()> {
    let n = u.int_in_range(0..=3usize)?;
    let mut regions = Vec::new();
    let mut fds: Vec<File> = Vec::new();
    for i in 0..n {
        // The file: a new memfd, one already made, or not a regular file.
        let (fd, mem) = match u.int_in_range(0..=7u8)? {
            0 if !f.mems.is_empty() => {
                let m = u.choose_index(f.mems.len())?;
                (f.mems[m].try_clone().expect("dup"), Some(m))
            }
            1 => (eventfd(0), None),
            2 => {
                let (r, w) = pipe();
                f.keep.push(w);
                (r, None)
            }
            _ => {
                let len = match u.int_in_range(0..=3u8)? {
                    0 => u64::from(u.int_in_range(1..=4096u16)?),
                    1 => GOOD_MEM,
                    _ => 4096 * u64::from(u.int_in_range(1..=256u16)?),
                };
                f.mems.push(memfd(len, u.arbitrary()?));
                (
                    f.mems.last().expect("pushed").try_clone().expect("dup"),
                    Some(f.mems.len() - 1),
                )
            }
        };
        let file_len = fd.metadata().map_or(0, |m| m.len());
        let offset = match u.int_in_range(0..=7u8)? {
            0 => u.arbitrary()?,
            1 => 4096 * u64::from(u.int_in_range(1..=16u8)?),
            2 => u64::from(u.arbitrary::<u16>()?),
            _ => 0,
        };
        let size = match u.int_in_range(0..=9u8)? {
            0 => u.arbitrary()?,
            1 => 0,
            2 => file_len + 4096 * u64::from(u.int_in_range(1..=16u8)?),
            3 => file_len.saturating_sub(offset),
            4 => u64::from(u.int_in_range(1..=0x1_0000u32)?),
            _ => file_len,
        };
        let gpa = match u.int_in_range(0..=5u8)? {
            0 => u.arbitrary()?,
            1 => 0,
            2 => regions
                .last()
                .map_or(0, |r: &Region| r.gpa.wrapping_add(r.size / 2)),
            _ => i as u64 * (1 << 20),
        };
        let uaddr = match u.int_in_range(0..=5u8)? {
            0 => u.arbitrary()?,
            1 => UADDR,
            _ => UADDR + i as u64 * (1 << 20),
        };
        regions.push(Region {
            gpa,
            size,
            uaddr,
            offset,
            mem,
        });
        fds.push(fd);
    }
    let mut body = Vec::new();
    body.extend_from_slice(&(n as u32).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    for r in &regions {
        for v in [r.gpa, r.size, r.uaddr, r.offset] {
            body.extend_from_slice(&v.to_le_bytes());
        }
    }
    match u.int_in_range(0..=15u8)? {
        0 => {
            fds.pop(); // one fd short
        }
        1 => fds.push(eventfd(0)), // one too many
        _ => {}
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let fl = flags(u)?;
    f.send(h, SET_MEM_TABLE, fl, &body, &raw);
    f.regions = regions;
    Ok(())
}

/// A well-formed set-up on `f`'s connection: features, one memory region (a memfd of
/// `GOOD_MEM` bytes at guest address 0), both rings of `size` entries at the standard
/// layout, eventfds for kicks and calls.
fn set_up(h: &mut Harness, f: &mut Frontend, mem: File, features: u64, size: u32) {
    f.send(h, SET_OWNER, VERSION, &[], &[]);
    f.send(h, SET_FEATURES, VERSION, &features.to_le_bytes(), &[]);
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    for v in [0, GOOD_MEM, UADDR, 0] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    f.send(h, SET_MEM_TABLE, VERSION, &body, &[mem.as_raw_fd()]);
    f.regions = vec![Region {
        gpa: 0,
        size: GOOD_MEM,
        uaddr: UADDR,
        offset: 0,
        mem: Some(f.mems.len()),
    }];
    f.mems.push(mem);
    for q in 0..2 {
        let r = ring_at(q, UADDR, size);
        let mut state = Vec::new();
        state.extend_from_slice(&(q as u32).to_le_bytes());
        state.extend_from_slice(&size.to_le_bytes());
        f.send(h, SET_VRING_NUM, VERSION, &state, &[]);
        let mut addr = Vec::new();
        addr.extend_from_slice(&(q as u32).to_le_bytes());
        addr.extend_from_slice(&0u32.to_le_bytes());
        for v in [r.desc, r.used, r.avail, 0] {
            addr.extend_from_slice(&v.to_le_bytes());
        }
        f.send(h, SET_VRING_ADDR, VERSION, &addr, &[]);
        state[4..8].copy_from_slice(&0u32.to_le_bytes());
        f.send(h, SET_VRING_BASE, VERSION, &state, &[]);
        f.rings[q] = r;
        let (call, kick) = (eventfd(libc::EFD_NONBLOCK), eventfd(libc::EFD_NONBLOCK));
        let index = (q as u64).to_le_bytes();
        f.send(h, SET_VRING_CALL, VERSION, &index, &[call.as_raw_fd()]);
        f.send(h, SET_VRING_KICK, VERSION, &index, &[kick.as_raw_fd()]);
        f.kicks.push(kick);
    }
}

/// One operation of the hostile frontend or its guest.
fn op(h: &mut Harness, f: &mut Frontend, u: &mut Unstructured) -> Result<()> {
    let vring_state = |u: &mut Unstructured, num: u32| -> Result<Vec<u8>> {
        let mut b = index(u)?.to_le_bytes().to_vec();
        b.extend_from_slice(&num.to_le_bytes());
        Ok(b)
    };
    f.conn(h);
    match u.int_in_range(0..=25u8)? {
        0 => {
            let fl = flags(u)?;
            f.send(h, SET_OWNER, fl, &[], &[]);
        }
        1 => {
            let fl = flags(u)?;
            f.send(h, RESET_OWNER, fl, &[], &[]);
        }
        2 => f.send(h, GET_FEATURES, VERSION, &[], &[]),
        3 => {
            let v: u64 = match u.int_in_range(0..=3u8)? {
                0 => u.arbitrary()?,
                1 => VERSION_1 | MRG_RXBUF | PROTOCOL_FEATURES,
                _ => OFFERED & u.arbitrary::<u64>()?,
            };
            let fl = flags(u)?;
            f.send(h, SET_FEATURES, fl, &v.to_le_bytes(), &[]);
        }
        4 => f.send(h, GET_PROTOCOL_FEATURES, VERSION, &[], &[]),
        5 => {
            let v: u64 = match u.int_in_range(0..=2u8)? {
                0 => u.arbitrary()?,
                1 => 0,
                _ => REPLY_ACK,
            };
            let fl = flags(u)?;
            f.send(h, SET_PROTOCOL_FEATURES, fl, &v.to_le_bytes(), &[]);
        }
        6 | 7 => set_mem_table(h, f, u)?,
        8 => {
            let num = match u.int_in_range(0..=5u8)? {
                0 => u.arbitrary()?,
                1 => 0,
                2 => 65536,
                _ => 1 << u.int_in_range(0..=15u32)?,
            };
            let b = vring_state(u, num)?;
            let q = u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize;
            if let Some(r) = f.rings.get_mut(q) {
                r.size = num;
            }
            let fl = flags(u)?;
            f.send(h, SET_VRING_NUM, fl, &b, &[]);
        }
        9 | 10 => {
            let q = index(u)?;
            let ring = if u.arbitrary()? {
                let base = if f.regions.is_empty() {
                    UADDR
                } else {
                    f.regions[0].uaddr
                };
                let size = f.rings.get(q as usize).map_or(0, |r| r.size);
                ring_at(q as usize & 1, base, size)
            } else {
                Ring {
                    size: f.rings.get(q as usize).map_or(0, |r| r.size),
                    desc: ring_addr(u, f)?,
                    avail: ring_addr(u, f)?,
                    used: ring_addr(u, f)?,
                }
            };
            let fl: u32 = match u.int_in_range(0..=5u8)? {
                0 => u.arbitrary()?,
                1 => 1, // VHOST_VRING_F_LOG
                _ => 0,
            };
            let log: u64 = if u.ratio(1, 8)? { u.arbitrary()? } else { 0 };
            let mut b = q.to_le_bytes().to_vec();
            b.extend_from_slice(&fl.to_le_bytes());
            for v in [ring.desc, ring.used, ring.avail, log] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            if let Some(r) = f.rings.get_mut(q as usize) {
                *r = ring;
            }
            let hf = flags(u)?;
            f.send(h, SET_VRING_ADDR, hf, &b, &[]);
        }
        11 => {
            let base = if u.ratio(1, 4)? {
                u.arbitrary()?
            } else {
                u32::from(u.arbitrary::<u16>()?)
            };
            let b = vring_state(u, base)?;
            let fl = flags(u)?;
            f.send(h, SET_VRING_BASE, fl, &b, &[]);
        }
        12 => {
            let b = vring_state(u, 0)?;
            let fl = flags(u)?;
            f.send(h, GET_VRING_BASE, fl, &b, &[]);
        }
        13 => set_vring_fd(h, f, u, SET_VRING_KICK)?,
        14 => set_vring_fd(h, f, u, SET_VRING_CALL)?,
        15 => set_vring_fd(h, f, u, SET_VRING_ERR)?,
        16 => {
            let num = if u.ratio(1, 8)? {
                u.arbitrary()?
            } else {
                u32::from(u.arbitrary::<bool>()?)
            };
            let b = vring_state(u, num)?;
            let fl = flags(u)?;
            f.send(h, SET_VRING_ENABLE, fl, &b, &[]);
        }
        17 => {
            // Size and offset: any, or a log that fits its 4 KiB file (the port takes it when
            // it covers the memory table, and logging can start).
            let (size, offset) = if u.arbitrary()? {
                (u.arbitrary::<u64>()?, u.arbitrary::<u64>()?)
            } else {
                let words = u.int_in_range(1..=512u64)?;
                (8 * words, 8 * u.int_in_range(0..=512 - words)?)
            };
            let mut b = Vec::new();
            for v in [size, offset] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            let log = if u.arbitrary()? {
                Some(memfd(4096, false))
            } else {
                None
            };
            let fds: Vec<RawFd> = log.iter().map(AsRawFd::as_raw_fd).collect();
            let fl = flags(u)?;
            f.send(h, SET_LOG_BASE, fl, &b, &fds);
        }
        18 => {
            // Any message but GET_FEATURES (whose answers mark the protocol thread's
            // progress): a code up to 50, the body its size says, up to three fds.
            let mut code = u.int_in_range(0..=50u32)?;
            if code == GET_FEATURES {
                code = RESET_DEVICE;
            }
            let fl = flags(u)?;
            let len = u.int_in_range(0..=96usize)?.min(u.len());
            let body = u.bytes(len)?.to_vec();
            let mut files = Vec::new();
            for _ in 0..u.int_in_range(0..=3u8)? {
                if let Some(fd) = vring_fd(u, f)? {
                    files.push(fd);
                }
            }
            let fds: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
            f.send(h, code, fl, &body, &fds);
        }
        19 => {
            // Disconnect, and connect anew (the barrier after this operation then waits
            // until the port is done with the old connection).
            f.conn = None;
            f.conn(h);
        }
        20 => {
            for _ in 0..u.int_in_range(1..=4u8)? {
                h.burst();
            }
        }
        21 => {
            // The guest writes anywhere in one of its memory files.
            if !f.mems.is_empty() {
                let m = &f.mems[u.choose_index(f.mems.len())?];
                let len = m.metadata().map_or(0, |m| m.len());
                let n = u.int_in_range(1..=64usize)?.min(u.len());
                let bytes = u.bytes(n)?;
                let at = u64::from(u.arbitrary::<u32>()?) % len.max(1);
                if at + n as u64 <= len {
                    let _ = m.write_all_at(bytes, at);
                }
            }
        }
        22 => {
            // The guest writes into one of its rings (table, available or used).
            let r = f.rings[u.int_in_range(0..=1usize)?];
            let area = [r.desc, r.avail, r.used][u.int_in_range(0..=2usize)?];
            let at = area.wrapping_add(u64::from(u.int_in_range(0..=0x1000u16)?));
            let n = u.int_in_range(1..=16usize)?.min(u.len());
            let bytes = u.bytes(n)?.to_vec();
            f.poke(at, &bytes);
        }
        23 => {
            let q = u.int_in_range(0..=1usize)?;
            let n = u.int_in_range(1..=8u16)?;
            let len = match u.int_in_range(0..=3u8)? {
                0 => u.arbitrary()?,
                1 => u32::from(u.arbitrary::<u16>()?),
                _ => {
                    if q == 0 {
                        2048
                    } else {
                        12 + 64
                    }
                }
            };
            f.post(q, n, len);
        }
        24 => {
            for mut k in &f.kicks {
                let _ = k.write(&1u64.to_ne_bytes());
            }
        }
        _ => {
            let features = match u.int_in_range(0..=3u8)? {
                0 => OFFERED & u.arbitrary::<u64>()?,
                _ => VERSION_1 | MRG_RXBUF,
            };
            let size = 1 << u.int_in_range(0..=8u32)?;
            set_up(h, f, memfd(GOOD_MEM, u.arbitrary()?), features, size);
        }
    }
    Ok(())
}

/// The hostile frontend is gone: a well-behaved one gets the port running and one frame
/// through each way, then leaves, and the port goes back to waiting.
fn a_good_frontend_gets_the_port_running(h: &mut Harness) {
    let mem = h.good.try_clone().expect("dup");
    // Rings and buffers start clean (the port keeps nothing of the last guest).
    let _ = mem.write_all_at(&vec![0u8; 0x4_0000], 0);
    let mut f = Frontend::default();
    set_up(h, &mut f, mem, VERSION_1 | MRG_RXBUF, 16);
    let c = f.conn.as_mut().expect("connected");
    c.barrier(h);
    assert!(c.alive, "the port dropped a well-behaved frontend");
    assert!(h.port.is_connected());
    assert!(
        h.port.is_running(),
        "a well-behaved frontend did not get the port running"
    );
    f.post(1, 1, 12 + 64);
    f.post(0, 1, 2048);
    assert_eq!(h.burst(), 1, "the good guest's frame did not come through");
    // Ours and the guest's own frame back: one receive buffer for two.
    assert_eq!(
        f.peek16(ring_at(0, UADDR, 16).used + 2),
        1,
        "no frame reached the good guest"
    );
    drop(f);
    let until = Instant::now() + WAIT;
    while h.port.is_connected() || h.port.is_running() {
        assert!(
            Instant::now() < until,
            "hang: the port never saw the frontend go"
        );
        h.wait(-1, 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = HARNESS
        .get_or_init(|| Mutex::new(Harness::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let h = &mut *h;
    assert!(
        !h.port.is_connected(),
        "the last input's frontend is still there"
    );
    let mut u = Unstructured::new(data);
    let mut f = Frontend::default();
    for _ in 0..64 {
        if u.is_empty() || op(h, &mut f, &mut u).is_err() {
            break;
        }
        if let Some(c) = f.conn.as_mut() {
            c.barrier(h);
        }
        h.burst();
        h.sleeps();
    }
    drop(f);
    a_good_frontend_gets_the_port_running(h);
});
