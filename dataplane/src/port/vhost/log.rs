#![allow(unsafe_code)]
//! The dirty-page log of a migrating guest (`VHOST_F_LOG_ALL`, `VHOST_USER_SET_LOG_BASE`
//! with `VHOST_USER_PROTOCOL_F_LOG_SHMFD`).
//!
//! While a VM migrates, its frontend (QEMU) copies guest memory to the destination and copies
//! again every page written since. Pages the guest's CPU writes it tracks itself; pages the
//! backend writes (receive buffers, used rings) the backend must report: one bit per 4 KiB
//! guest-physical page in a bitmap the frontend shares as a file. QEMU reads and clears it
//! 64 bits at a time with an atomic exchange, so bits are set with an atomic OR on the same
//! 64-bit words, after the write they report (a bit seen before its data would let the old
//! page through).
//!
//! The file comes from the frontend and is treated like a guest memory file: a regular file
//! holding the whole area, sealed against shrinking where it allows, the mapping guarded
//! against SIGBUS ([`super::sigbus`]). A log must cover every page of the memory table; one
//! that does not is refused (and logging with it), never written past its end.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use super::sigbus;

/// Guest pages are logged in units of this many bytes.
pub(super) const PAGE: u64 = 4096;

/// A mapped dirty-page log.
pub(super) struct DirtyLog {
    /// Dropped first, before the mapping goes (see `Memory` in the parent module).
    guard: sigbus::Guard,
    base: *mut AtomicU64,
    words: usize,
    len: usize,
    /// Bits that could not be set: pages beyond the log (none while the log covers the
    /// memory table, which the protocol thread checks).
    missed: AtomicU64,
}

// SAFETY: the mapping is shared memory accessed only through atomic operations (and by the
// frontend, which is outside Rust's model and may write anything there); the pointer is not
// tied to any thread.
unsafe impl Send for DirtyLog {}
// SAFETY: as above: every access from any thread is an atomic operation.
unsafe impl Sync for DirtyLog {}

impl DirtyLog {
    /// Map `size` bytes of `file` at `offset` as a log: checked as a memory region is
    /// (see `backend::check_region`), a whole number of 64-bit words.
    pub(super) fn map(file: &File, offset: u64, size: u64) -> Result<DirtyLog, &'static str> {
        if size == 0 || !size.is_multiple_of(8) {
            return Err("the log's size is not a whole number of 64-bit words");
        }
        if !offset.is_multiple_of(8) {
            return Err("the log's offset is not 64-bit aligned");
        }
        super::backend::check_region(file, offset, size)?;
        let len = usize::try_from(size).map_err(|_| "the log is too large")?;
        let off = libc::off_t::try_from(offset).map_err(|_| "the log's offset is too large")?;
        // The mapping must start on a page; the offset need not.
        let skip = (offset % PAGE) as usize;
        let whole = len.checked_add(skip).ok_or("the log is too large")?;
        // SAFETY: a new shared mapping of `whole` bytes of a file we checked holds them; the
        // kernel picks the address. Its result is checked.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                whole,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                off - skip as libc::off_t,
            )
        };
        if at == libc::MAP_FAILED {
            return Err("the log could not be mapped");
        }
        let guard = match sigbus::guard(at.cast(), whole) {
            Ok(g) => g,
            Err(_) => {
                // SAFETY: unmaps exactly the mapping made above, which nothing else uses.
                unsafe { libc::munmap(at, whole) };
                return Err("no SIGBUS guard slot is free for the log");
            }
        };
        Ok(DirtyLog {
            guard,
            // SAFETY: `skip` < a page, inside the mapping; the result is 8-byte aligned
            // (page-aligned mapping, 8-aligned offset).
            base: unsafe { at.cast::<u8>().add(skip) }.cast(),
            words: len / 8,
            len: whole,
            missed: AtomicU64::new(0),
        })
    }

    /// True if the log has a bit for every page below guest-physical address `end`.
    pub(super) fn covers(&self, end: u64) -> bool {
        end.div_ceil(PAGE).div_ceil(64) <= self.words as u64
    }

    /// Report `len` bytes at guest-physical `gpa` as written. Call after the write.
    #[inline]
    pub(super) fn mark(&self, gpa: u64, len: usize) {
        if len == 0 {
            return;
        }
        let first = gpa / PAGE;
        let last = gpa.saturating_add(len as u64 - 1) / PAGE;
        for page in first..=last {
            let word = (page / 64) as usize;
            if word >= self.words {
                self.missed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // SAFETY: `word` < `words`: inside the mapping, which lives as long as `self`;
            // an aligned 64-bit atomic. Release: the write it reports is visible first.
            unsafe { &*self.base.add(word) }.fetch_or(1 << (page % 64), Ordering::Release);
        }
    }

    /// True if the page of `gpa` is marked (for tests).
    #[cfg(test)]
    pub(super) fn is_marked(&self, gpa: u64) -> bool {
        let page = gpa / PAGE;
        let word = (page / 64) as usize;
        // SAFETY: bounds-checked against `words`, inside the mapping; an atomic load.
        word < self.words
            && unsafe { &*self.base.add(word) }.load(Ordering::Relaxed) & (1 << (page % 64)) != 0
    }

    /// A log of `len` bytes in a memfd of its own (for tests).
    #[cfg(test)]
    pub(super) fn for_tests(len: u64) -> DirtyLog {
        DirtyLog::map(&tests::memfd(len), 0, len).expect("map a test log")
    }

    /// Pages that could not be logged (beyond the log's end).
    #[cfg(test)]
    pub(super) fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// True once the frontend truncated the log's file under the mapping (it reads zeros
    /// now, and marks made there are lost: the port stops serving that frontend).
    pub(super) fn faulted(&self) -> bool {
        self.guard.faults() > 0
    }
}

impl Drop for DirtyLog {
    fn drop(&mut self) {
        let start = self.base.cast::<u8>() as usize;
        let at = start - start % PAGE as usize;
        // SAFETY: the mapping made in `map` (its page-aligned start and whole length); nothing
        // can access it any more (`self` is going). The guard goes after, as a field; a fault
        // cannot come in between because nothing touches the range.
        unsafe { libc::munmap(at as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::os::fd::{FromRawFd, OwnedFd};

    pub(in crate::port::vhost) fn memfd(len: u64) -> File {
        // SAFETY: a NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(c"nfv-log-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create");
        // SAFETY: `fd` was just created and is owned by nobody else.
        let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.set_len(len).expect("size");
        f
    }

    fn word(f: &File, i: u64) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, i * 8).expect("read");
        u64::from_le_bytes(b)
    }

    #[test]
    fn pages_written_are_the_bits_set() {
        let f = memfd(4096);
        let log = DirtyLog::map(&f, 0, 4096).expect("map");
        assert!(
            log.covers(4096 * 8 * 4096),
            "4 KiB of bits: 128 MiB of guest memory"
        );
        assert!(!log.covers(4096 * 8 * 4096 + 1));
        log.mark(0, 1);
        log.mark(5 * PAGE + 4000, 200); // crosses into page 6
        log.mark(64 * PAGE, 0); // nothing written: nothing logged
        log.mark(65 * PAGE, 1);
        assert_eq!(word(&f, 0), 1 | 1 << 5 | 1 << 6);
        assert_eq!(word(&f, 1), 1 << 1);
        // Beyond the log: counted, never written.
        log.mark(4096 * 8 * PAGE, 1);
        assert_eq!(log.missed(), 1);
        assert!(!log.faulted());
    }

    #[test]
    fn a_log_that_its_file_does_not_hold_is_refused() {
        let f = memfd(4096);
        assert!(DirtyLog::map(&f, 0, 8192).is_err(), "past the file's end");
        assert!(DirtyLog::map(&f, 0, 12).is_err(), "not whole words");
        assert!(DirtyLog::map(&f, 4, 8).is_err(), "misaligned");
        assert!(DirtyLog::map(&f, 0, 0).is_err(), "empty");
        let log = DirtyLog::map(&f, 2048, 2048).expect("an offset inside a page");
        log.mark(0, 1);
        assert_eq!(word(&f, 256), 1);
    }
}
