//! A SIGBUS guard over guest memory mappings: a frontend that truncates its memory file under
//! nfv costs its own port, not the process.
//!
//! A frontend hands its guest memory as files. nfv seals them against shrinking where it can
//! (`backend.rs`), but some cannot be sealed (a memfd made without `MFD_ALLOW_SEALING`, as
//! DPDK's `virtio_user` makes it; hugetlbfs and tmpfs files). If the frontend truncates such
//! a file, the next access to the mapping beyond the new end raises SIGBUS, whose default
//! action kills the process, and with it every port. A seal does not cover everything
//! either: a hole punched in a hugetlbfs file (or a sealed `MFD_HUGETLB` memfd) faults with
//! SIGBUS too when the frontend has used up the huge page pool, and so does a memory error.
//!
//! So the host range of every guest memory mapping is registered here ([`guard`]), in a
//! process-wide, lock-free table of [`SLOTS`] slots, and a SIGBUS handler (installed once)
//! looks the fault address up: inside a guarded range, it replaces the whole range with
//! anonymous zero memory (`mmap(MAP_FIXED)`), counts the fault on the slot and in a
//! process-wide counter ([`faults`]), and returns; the faulting access runs again and reads
//! zeros. Rings of zeros hold nothing to do; the worker and the protocol thread see the
//! counters and stop serving that frontend (see the parent module). Any other SIGBUS goes to
//! the handler that was there before (Rust's own, which reports stack overflows), or, if
//! there was none, ends the process as it would have.
//!
//! The handler does only what is async-signal-safe: atomic loads and stores, `mmap`,
//! `sigaction` and `raise`; no allocation, no lock, no logging.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

/// How many ranges can be guarded at once, process-wide (one slot: 40 bytes, zeroed until
/// used). Every region of a memory table takes one, a table has at most 8 regions
/// (`backend::MAX_REGIONS`), and a port holds at most two tables at once (while a new one
/// replaces the old): at least 1,024 ports with the largest tables, and far more in
/// practice (QEMU and DPDK send one to a few). A range beyond that is refused, never left
/// unguarded.
pub(super) const SLOTS: usize = 16_384;

/// One guarded range.
struct Slot {
    /// Taken by a [`Guard`] (claimers race for it with a compare-exchange).
    taken: AtomicBool,
    /// Odd while the slot guards `start..start + len`, bumped when it starts and when it
    /// stops: a reader that finds the same odd value before and after reading the range read
    /// one range whole (a sequence lock; the handler cannot take a lock).
    seq: AtomicU64,
    start: AtomicUsize,
    len: AtomicUsize,
    /// SIGBUS faults the handler took in the range; the first one replaced it with zeros.
    faults: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            taken: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            faults: AtomicU64::new(0),
        }
    }
}

static REGISTRY: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// One past the highest slot ever taken: the handler looks no further.
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// Where the next claim starts looking (one past the last slot taken): claims go round the
/// table instead of searching it from the start each time.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Ranges replaced by zeros since the process started.
static FAULTS: AtomicU64 = AtomicU64::new(0);

static INSTALL: Once = Once::new();
/// The handler is in place.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The SIGBUS action that was in place before nfv's (its `sa_sigaction`), and whether it
/// took `siginfo_t` (`SA_SIGINFO`); valid once `PREV_READY` is set.
static PREV_ACTION: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREV_SIGINFO: AtomicBool = AtomicBool::new(false);
static PREV_READY: AtomicBool = AtomicBool::new(false);

/// Why a range could not be guarded.
#[derive(Debug)]
pub(super) enum GuardError {
    /// Every slot is taken.
    Full,
    /// The SIGBUS handler could not be installed.
    Handler(std::io::Error),
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardError::Full => write!(
                f,
                "{SLOTS} guest memory regions are mapped already, process-wide; no more can be guarded against truncation"
            ),
            GuardError::Handler(e) => write!(f, "the SIGBUS handler could not be installed: {e}"),
        }
    }
}

/// A guarded range: while it lives, a SIGBUS inside `start..start + len` replaces the range
/// with zeros instead of ending the process. Drop it only when nothing can access the range
/// any more, and before the range is unmapped (see `Memory` in the parent module).
pub(super) struct Guard {
    slot: usize,
}

impl Guard {
    /// Faults the handler took in the range (0 while the file was left alone).
    pub(super) fn faults(&self) -> u64 {
        REGISTRY[self.slot].faults.load(Ordering::Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &REGISTRY[self.slot];
        s.seq.fetch_add(1, Ordering::Release);
        s.taken.store(false, Ordering::Release);
    }
}

/// Guard `start..start + len` (a mapping of a guest memory file): install the SIGBUS
/// handler if it is not yet, and take a slot.
pub(super) fn guard(start: *const u8, len: usize) -> Result<Guard, GuardError> {
    install()?;
    let from = NEXT.load(Ordering::Relaxed);
    for i in (from..SLOTS).chain(0..from.min(SLOTS)) {
        let s = &REGISTRY[i];
        if s.taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        // The range is written while `seq` is even (readers skip the slot); a reader that
        // still held the previous odd value and reads the new range sees `seq` moved on
        // (this fence pairs with the reader's acquire fence).
        fence(Ordering::Release);
        s.start.store(start as usize, Ordering::Relaxed);
        s.len.store(len, Ordering::Relaxed);
        s.faults.store(0, Ordering::Relaxed);
        HIGH.fetch_max(i + 1, Ordering::Release);
        s.seq.fetch_add(1, Ordering::Release);
        NEXT.store(i + 1, Ordering::Relaxed);
        return Ok(Guard { slot: i });
    }
    Err(GuardError::Full)
}

/// Ranges replaced by zeros since the process started (any port's). Cheap to read: the
/// worker compares it once per burst, and looks at its own guards only when it moved.
pub(super) fn faults() -> u64 {
    FAULTS.load(Ordering::Relaxed)
}

/// The guarded slot whose range holds `addr`, with that range (async-signal-safe).
fn lookup(addr: usize) -> Option<(usize, usize, usize)> {
    let high = HIGH.load(Ordering::Acquire).min(SLOTS);
    for (i, s) in REGISTRY[..high].iter().enumerate() {
        let seq = s.seq.load(Ordering::Acquire);
        if seq & 1 == 0 {
            continue;
        }
        let start = s.start.load(Ordering::Relaxed);
        let len = s.len.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if s.seq.load(Ordering::Relaxed) != seq {
            continue; // released (and maybe taken again) meanwhile: not this range
        }
        if addr.wrapping_sub(start) < len {
            return Some((i, start, len));
        }
    }
    None
}

/// Install the handler, once; says whether it is in place.
#[allow(unsafe_code)]
fn install() -> Result<(), GuardError> {
    let mut failed = None;
    INSTALL.call_once(|| {
        // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask, no
        // restorer); the fields that matter are set below.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = on_sigbus as *const () as usize;
        // SA_ONSTACK: on the thread's alternate stack where it has one (Rust's threads do),
        // so that chaining to Rust's handler still works for a stack overflow. Not
        // SA_NODEFER: a SIGBUS inside the handler itself then ends the process.
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `new.sa_mask` is a valid, exclusively borrowed sigset_t.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: `new` and `old` are valid sigaction structs for the call; the handler is
        // an `extern "C"` function of the SA_SIGINFO signature that does only
        // async-signal-safe things.
        if unsafe { libc::sigaction(libc::SIGBUS, &new, &mut old) } != 0 {
            failed = Some(std::io::Error::last_os_error());
            return;
        }
        PREV_ACTION.store(old.sa_sigaction, Ordering::Relaxed);
        PREV_SIGINFO.store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::Relaxed);
        PREV_READY.store(true, Ordering::Release);
        INSTALLED.store(true, Ordering::Release);
    });
    if INSTALLED.load(Ordering::Acquire) {
        return Ok(());
    }
    Err(GuardError::Handler(failed.unwrap_or_else(|| {
        std::io::Error::other("an earlier attempt failed")
    })))
}

/// The SIGBUS handler.
#[allow(unsafe_code)]
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the location is valid for the thread's life. Saved and
    // restored so that the interrupted code never sees the handler's own errors.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno };
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler.
    if !unsafe { zero_out(info) } {
        // SAFETY: as above; `ctx` is passed on untouched.
        unsafe { chain(sig, info, ctx) };
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// If `info` is a fault inside a guarded range, replace the range with zeros and say so.
///
/// # Safety
/// `info` must be the `siginfo_t` of a SIGBUS delivered to the handler.
#[allow(unsafe_code)]
unsafe fn zero_out(info: *mut libc::siginfo_t) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: `info` is valid (the caller's contract).
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Only the kernel's own faults (si_code > 0) carry a fault address; a SIGBUS that a
    // process sent (kill, tgkill, sigqueue) is not a fault in guest memory.
    if code <= 0 {
        return false;
    }
    let Some((slot, start, len)) = lookup(addr) else {
        return false;
    };
    if REGISTRY[slot].faults.fetch_add(1, Ordering::AcqRel) > 0 {
        // Another thread replaced the range, or is replacing it: the access runs again.
        return true;
    }
    // SAFETY: `start..start + len` is the whole mapping of a guarded file: its guard lives,
    // so the mapping does (it is dropped only after nothing can access it, and the guard
    // before the mapping), and nfv owns it. MAP_FIXED swaps it, in one step, for private
    // zero pages of the same size and protection: every pointer into it stays valid, and
    // nothing is unmapped that was not this file's mapping. mmap is a plain system call.
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return false; // the process ends as it would have
    }
    FAULTS.fetch_add(1, Ordering::Release);
    true
}

/// Hand a SIGBUS nfv does not handle to the action that was there before.
///
/// # Safety
/// Called from the SIGBUS handler with the arguments it was given.
#[allow(unsafe_code)]
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev = if PREV_READY.load(Ordering::Acquire) {
        PREV_ACTION.load(Ordering::Relaxed)
    } else {
        libc::SIG_DFL
    };
    // SAFETY: `info` is the handler's (non-null where the kernel delivered the signal).
    let fault = !info.is_null() && unsafe { (*info).si_code } > 0;
    if prev == libc::SIG_DFL || prev == libc::SIG_IGN {
        if prev == libc::SIG_IGN && !fault {
            return; // a SIGBUS sent by a process, ignored as before
        }
        // SAFETY: an all-zero sigaction with SIG_DFL is the default action.
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: `dfl` is valid; sigaction is async-signal-safe.
        unsafe { libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut()) };
        if !fault {
            // SAFETY: raise is async-signal-safe; SIGBUS is blocked in the handler, so the
            // signal is delivered (with the default action) when the handler returns.
            unsafe { libc::raise(sig) };
        }
        // A fault: returning runs the access again, which faults again and ends the process
        // with SIGBUS, as it would have.
        return;
    }
    if PREV_SIGINFO.load(Ordering::Relaxed) {
        // SAFETY: the previous action was installed with SA_SIGINFO: its `sa_sigaction` is
        // a function of this signature, and it gets the arguments the kernel gave nfv's.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(prev) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO, `sa_sigaction` is an `sa_handler` of this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
        f(sig);
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A shared mapping of `len` bytes of a memfd that allows no seals (as DPDK's
    /// `virtio_user` makes it), and the file.
    fn mapped_memfd(len: usize) -> (*mut u8, std::fs::File) {
        // SAFETY: the name is a valid NUL-terminated string; the result is checked.
        let fd = unsafe { libc::memfd_create(c"nfv-sigbus".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create");
        // SAFETY: `fd` was just created and is owned by nobody else.
        let f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.set_len(len as u64).expect("size the memfd");
        // SAFETY: a new shared mapping of the file, at an address the kernel picks.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap");
        (p.cast(), f)
    }

    /// The whole registry in one test: the handler is process-wide, and the slots are
    /// shared with every other test of the process.
    #[test]
    fn a_truncated_file_under_a_guarded_mapping_reads_zeros() {
        const LEN: usize = 4 * 4096;
        let (p, file) = mapped_memfd(LEN);
        // SAFETY: `p..p + LEN` is the mapping just made; the file holds all of it.
        unsafe {
            p.write_volatile(7);
            p.add(LEN - 1).write_volatile(9);
        }
        let before = faults();
        let g = guard(p, LEN).expect("a guard");
        assert_eq!(g.faults(), 0);
        let at = p as usize;
        assert_eq!(lookup(at + 4096).map(|(_, s, l)| (s, l)), Some((at, LEN)));
        assert!(
            lookup(at + LEN).is_none(),
            "one past the end is not guarded"
        );
        let other = 0u8;
        assert!(
            lookup(&other as *const u8 as usize).is_none(),
            "another address goes on to the previous handler"
        );
        // The frontend's part: the file loses its pages under the mapping.
        file.set_len(0).expect("truncate");
        // SAFETY: the range is still mapped (now beyond the file's end, so the read
        // faults, and the handler replaces the mapping with zeros).
        let (first, last) = unsafe { (p.read_volatile(), p.add(LEN - 1).read_volatile()) };
        assert_eq!((first, last), (0, 0), "the range reads zeros");
        assert_eq!(g.faults(), 1, "one fault, which replaced the whole range");
        assert!(faults() > before);
        // SAFETY: as above; the range is now private anonymous memory.
        unsafe {
            p.add(100).write_volatile(5);
            assert_eq!(p.add(100).read_volatile(), 5, "and takes writes");
        }
        drop(g);
        assert!(lookup(at).is_none(), "released");

        // A full registry refuses a guard rather than leave a range unguarded; every
        // slot is free again afterwards.
        let mut many = Vec::new();
        let full = loop {
            match guard(p, LEN) {
                Ok(g) => many.push(g),
                Err(e) => break e,
            }
            assert!(many.len() <= SLOTS);
        };
        assert!(matches!(full, GuardError::Full), "{full}");
        drop(many);
        drop(guard(p, LEN).expect("free again"));
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(p.cast(), LEN) };
    }

    /// A SIGBUS outside every guarded range goes on to the handler that was there before
    /// (the test harness's: Rust's own), and the process ends with SIGBUS as it would have.
    /// Played in a forked child, which only makes system calls and the faulting read.
    #[test]
    fn a_fault_outside_every_guarded_range_still_ends_the_process() {
        const LEN: usize = 4096;
        install().expect("the handler");
        let (p, file) = mapped_memfd(LEN);
        assert!(lookup(p as usize).is_none());
        // SAFETY: fork in a test process; the child does no allocation and takes no lock:
        // system calls, one read of the mapping, and _exit.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork");
        if child == 0 {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain system calls on the child's own resources; the read is of the
            // mapping inherited from the parent, now beyond the file's end.
            unsafe {
                libc::setrlimit(libc::RLIMIT_CORE, &none); // no core file
                libc::ftruncate(file.as_raw_fd(), 0);
                let _ = p.read_volatile();
                libc::_exit(0); // survived: wrong
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; `status` is a valid out-parameter.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGBUS,
            "the child should have died of SIGBUS (status {status:#x})"
        );
        // SAFETY: the mapping made above; the parent never touches it after the truncation.
        unsafe { libc::munmap(p.cast(), LEN) };
    }
}
