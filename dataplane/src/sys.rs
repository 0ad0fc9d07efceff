#![allow(unsafe_code)]
//! The system calls nfv makes without a safe wrapper: `poll(2)` on the worker's ports'
//! descriptors while idle (so a quiet dataplane sleeps and wakes as soon as a frame
//! arrives), memory hints, and the credentials of a control socket's peer.

use std::os::fd::RawFd;

/// Wait until one of `fds` is readable or `timeout_ms` passed. Errors (EINTR) count as a
/// wake-up: the caller simply polls its ports again.
pub fn wait_readable(fds: &mut [libc::pollfd], timeout_ms: i32) {
    if fds.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(timeout_ms.max(0) as u64));
        return;
    }
    // SAFETY: `fds` is a valid, exclusively borrowed slice of `pollfd` for the whole call and
    // its length is passed alongside; poll only writes the `revents` fields.
    let _ = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
}

/// A `pollfd` waiting for input on `fd`.
pub fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Ask the CPU to bring the cache line holding `r` closer (a hint: it never faults, blocks
/// or changes anything). Tables too big for the cache look up a whole burst's keys by
/// prefetching every slot first, so that the misses overlap.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint that never faults, on any address; `r` is valid anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Ask the kernel to back the 2 MiB-aligned part of `region` with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`; a hint, errors ignored). Big lookup tables call this before
/// they first touch their memory, so that random lookups miss the TLB far less (a 256 MiB
/// table is 65,536 small pages but 128 huge ones). Contents are not changed.
pub fn advise_huge_pages<T>(region: &mut [T]) {
    const HUGE: usize = 2 << 20;
    let start = region.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(region);
    let from = start.next_multiple_of(HUGE);
    let to = end - end % HUGE;
    if to > from {
        // SAFETY: [from, to) lies inside `region`, memory this process owns and that stays
        // mapped for the call; MADV_HUGEPAGE only changes how the kernel backs it, never
        // its contents or its validity.
        let _ = unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
    }
}

/// Back the 2 MiB-aligned part of the address range `[start, end)`, memory this process
/// has allocated and touched, with transparent huge pages now: `MADV_HUGEPAGE`, then
/// `MADV_COLLAPSE` (Linux 6.1), which copies the small pages already there into huge ones
/// whatever the system's THP setting. A hint, errors ignored (an older kernel, no huge page
/// free); contents are not changed. The packet pool calls it on its buffers, which the
/// allocator handed out one by one and so touched page by page.
pub fn collapse_huge_pages(start: usize, end: usize) {
    const HUGE: usize = 2 << 20;
    const MADV_COLLAPSE: libc::c_int = 25;
    let from = start.next_multiple_of(HUGE);
    let to = end - end % HUGE;
    if to > from {
        // SAFETY: the caller passes a range of memory the process owns and that stays
        // mapped for the call; both advices only change how the kernel backs it, never its
        // contents or validity.
        unsafe {
            let _ = libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
            let _ = libc::madvise(from as *mut libc::c_void, to - from, MADV_COLLAPSE);
        }
    }
}

/// Make `fd` non-blocking (errors ignored: a blocking eventfd is only read when readable).
pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl with F_GETFL/F_SETFL only reads and sets the file status flags of `fd`;
    // on an invalid descriptor it fails with EBADF and changes nothing.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// The user id of the process at the other end of the connected Unix socket `fd`, as the
/// kernel recorded it at `connect` (`SO_PEERCRED`): what a control socket grants by.
pub fn peer_uid(fd: RawFd) -> std::io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes for the whole call and `len` holds the
    // size of `cred`; getsockopt writes at most `len` bytes and fails with EBADF or
    // ENOTSOCK on a descriptor that is not a socket, changing nothing.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}
