//! The port's caller: a thread of the port's own that interrupts the guest, so that the
//! worker never writes to a file the frontend shares.
//!
//! A write of 1 to an eventfd one short of its maximum (`0xffff_ffff_ffff_fffe`) waits for a
//! reader unless `O_NONBLOCK` is set, and the frontend shares the call eventfd's file status
//! flags: it can clear that flag, and fill the counter between any check nfv makes and its
//! write (`RWF_NOWAIT` is not honoured for eventfd writes, and the eventfd cannot be reopened
//! with flags of nfv's own: `/proc/self/fd/N` answers `ENXIO`). Such a write must not be the
//! worker's, which serves every port.
//!
//! How the two threads meet:
//! - The worker, after a burst whose ring wants an interrupt, sets that ring's `wanted` flag
//!   and, only if the flag was clear, writes 1 to `bell`: an eventfd of the port's own,
//!   non-blocking and never shared, so that write cannot wait (its counter stays tiny: one
//!   write per flag the caller cleared). Repeated interrupts the caller has not delivered
//!   yet cost the worker one atomic swap and no system call.
//! - The caller sleeps in `poll` on `bell`, `stop`, and the call fd of every ring whose flag
//!   is set (`POLLOUT`). A ring's flag is cleared only right before a write to its call fd,
//!   and the worker rings `bell` whenever it sets a clear flag: so after every burst that
//!   wanted one, an interrupt is written after that burst's used-ring update.
//! - The call fds are those the worker runs the rings with: the worker hands them over in
//!   `apply` (rare) under `calls`, a lock the caller holds only to clone two `Arc`s; the
//!   caller writes after letting go of it.
//!
//! What a hostile call fd costs now: a call eventfd kept full waits in the caller's `poll`
//! (no interrupts for that port, nothing else); a frontend that fills it between the caller's
//! `poll` and its `write` holds the caller in that write, which again holds back only that
//! port's interrupts (both rings'). Such a write is released by reading the eventfd, which
//! the frontend normally does, and which nfv does itself (without ever blocking: `preadv2`
//! with `RWF_NOWAIT`) when the frontend disconnects and when the port is dropped. Dropping
//! the port waits at most [`LET_GO`] for the caller; a frontend that keeps the eventfd full
//! against that too leaves the caller behind, detached and blocked on the eventfd (a thread
//! and a few fds), until something reads it: the drop itself never hangs.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// How long dropping a port waits for its caller to end, freeing it from a write to a full
/// call eventfd meanwhile; then the caller is left behind.
const LET_GO: Duration = Duration::from_secs(1);
/// How often, while dropping the port, a caller still writing is freed again.
const NUDGE: Duration = Duration::from_millis(20);

/// The call fds, by ring (`RXQ`, `TXQ`).
type Calls = [Option<Arc<File>>; 2];

/// What the worker and the caller share.
struct Inner {
    /// Rung by the worker when it sets a clear `wanted` flag (and by `set_calls`).
    bell: EventFd,
    /// Written once, when the port is dropped: the caller ends.
    stop: EventFd,
    /// Per ring: the worker wants an interrupt the caller has not written yet.
    wanted: [AtomicBool; 2],
    /// The call fds the worker runs the rings with.
    calls: Mutex<Calls>,
    /// The call fd the caller is writing to, while it does.
    writing: Mutex<Option<Arc<File>>>,
}

impl Inner {
    /// The current call fds (a clone: the lock is let go at once).
    fn calls(&self) -> Calls {
        lock(&self.calls).clone()
    }

    /// Interrupt the guest through `f`. May wait, if the frontend raced on its eventfd.
    fn write_call(&self, f: &Arc<File>) {
        *lock(&self.writing) = Some(f.clone());
        let _ = (&**f).write(&1u64.to_ne_bytes());
        *lock(&self.writing) = None;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The worker's handle on the port's caller thread (see the module documentation).
pub(super) struct Caller {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends.
    ended: mpsc::Receiver<()>,
    /// The port's name, for the log.
    name: String,
}

impl Caller {
    /// Start the caller of port `name`.
    pub(super) fn spawn(name: &str) -> std::io::Result<Caller> {
        let inner = Arc::new(Inner {
            bell: EventFd::new(EFD_NONBLOCK | libc::EFD_CLOEXEC)?,
            stop: EventFd::new(EFD_NONBLOCK | libc::EFD_CLOEXEC)?,
            wanted: [AtomicBool::new(false), AtomicBool::new(false)],
            calls: Mutex::new([None, None]),
            writing: Mutex::new(None),
        });
        let (end, ended) = mpsc::channel();
        let thread = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(format!("nfv-call-{name}"))
                .spawn(move || {
                    run(&inner);
                    drop(end);
                })?
        };
        Ok(Caller {
            inner,
            thread: Some(thread),
            ended,
            name: name.to_string(),
        })
    }

    /// Ask for an interrupt on `ring` (the worker, after a burst that wants one). Never
    /// waits: at most one write to the port's own non-blocking eventfd, none while an
    /// interrupt asked for earlier is still to be written.
    #[inline]
    pub(super) fn interrupt(&self, ring: usize) {
        // A swap, not a load: it reads the latest value, so a set flag seen here is one the
        // caller has yet to clear, and its write will come after this burst's flush.
        if !self.inner.wanted[ring].swap(true, Ordering::AcqRel) {
            let _ = self.inner.bell.write(1);
        }
    }

    /// The call fds the worker now runs the rings with (the worker, in `apply`). The
    /// caller picks them up at once; an interrupt still wanted goes to the new fd.
    pub(super) fn set_calls(&self, calls: Calls) {
        let same = |a: &Option<Arc<File>>, b: &Option<Arc<File>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        {
            let mut c = lock(&self.inner.calls);
            if c.iter().zip(calls.iter()).all(|(a, b)| same(a, b)) {
                return;
            }
            *c = calls;
        }
        let _ = self.inner.bell.write(1);
    }

    /// Free the caller from a write to a full call eventfd, if it waits in one, by reading
    /// that eventfd (emptying it, without ever blocking). For when the frontend is gone or
    /// the port is dropped: the guest's pending interrupts no longer matter then.
    pub(super) fn unstick(&self) {
        let f = lock(&self.inner.writing).clone();
        if let Some(f) = f {
            read_nowait(&f);
        }
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        let _ = self.inner.stop.write(1);
        let until = Instant::now() + LET_GO;
        loop {
            if !matches!(
                self.ended.recv_timeout(NUDGE),
                Err(mpsc::RecvTimeoutError::Timeout)
            ) {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                return;
            }
            if Instant::now() >= until {
                tracing::warn!(port = %self.name, "vhost-user: the frontend keeps its call eventfd full; the port's interrupt thread is left waiting on it");
                return; // the thread is detached
            }
            self.unstick();
        }
    }
}

/// The caller thread: until `stop`, write the interrupts the worker wants.
#[allow(unsafe_code)]
fn run(inner: &Inner) {
    let pollfd = |fd, events| libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let calls = inner.calls();
        let mut fds = [
            pollfd(inner.stop.as_raw_fd(), libc::POLLIN),
            pollfd(inner.bell.as_raw_fd(), libc::POLLIN),
            pollfd(-1, libc::POLLOUT), // a negative fd is ignored
            pollfd(-1, libc::POLLOUT),
        ];
        // A ring whose flag is set but has no call fd keeps its flag: a call fd handed over
        // later rings the bell, and gets the interrupt.
        for (i, call) in calls.iter().enumerate() {
            if let Some(f) = call {
                if inner.wanted[i].load(Ordering::Acquire) {
                    fds[2 + i].fd = f.as_raw_fd();
                }
            }
        }
        // SAFETY: `fds` is an array of valid, exclusively borrowed `pollfd`s whose length is
        // passed; the fds stay open for the call (`inner` and `calls` hold them).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                std::thread::sleep(Duration::from_millis(10)); // ENOMEM: do not spin
            }
            continue;
        }
        if fds[0].revents != 0 {
            return;
        }
        if fds[1].revents != 0 {
            let _ = inner.bell.read();
        }
        for (i, call) in calls.iter().enumerate() {
            let Some(f) = call else { continue };
            // Cleared before the write: an interrupt wanted from now on sets it again.
            if fds[2 + i].revents != 0 && inner.wanted[i].swap(false, Ordering::AcqRel) {
                inner.write_call(f);
            }
        }
    }
}

/// Read (empty) an eventfd without ever waiting, whatever its `O_NONBLOCK`: `preadv2` with
/// `RWF_NOWAIT`. On a kernel without it for eventfds, nothing is read.
#[allow(unsafe_code)]
fn read_nowait(f: &File) {
    let mut buf = [0u8; 8];
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` describes `buf`, 8 writable bytes that live for the call; offset -1 reads
    // at the file position as read(2) does; RWF_NOWAIT makes the call return EAGAIN instead
    // of waiting.
    let _ = unsafe { libc::preadv2(f.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
}
