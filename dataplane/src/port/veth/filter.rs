#![allow(unsafe_code)]
//! Keep the root namespace's own network stack away from nfv's end of a veth pair.
//!
//! nfv's end is a device in the root namespace. Its packet socket gets a copy of every frame
//! a lab host sends, but the kernel would then hand the same frame to the root namespace's
//! IPv4 and ARP code as well: a host could reach root's services with a broadcast (a DHCP
//! discover reaches any server listening on 0.0.0.0:67), or have root answer its ARP
//! requests for root's own addresses. A two-instruction BPF program attached at the
//! device's ingress with tcx (`BPF_TCX_INGRESS`, which runs after packet sockets took their
//! copy, before the protocols) drops every frame there. The link lives as long as its file
//! descriptor: the port holds it, and closing the port detaches it.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_TCX_INGRESS: u32 = 46;

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> io::Result<OwnedFd> {
    // SAFETY: bpf(2) reads (and for some commands writes) `attr`, which is valid and
    // writable for the size passed; the result is a new descriptor or an error.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Drop every frame arriving at device `ifindex` after packet sockets have seen it; the
/// returned link keeps the program attached until it is closed.
pub fn drop_after_taps(ifindex: u32) -> io::Result<OwnedFd> {
    // r0 = TC_ACT_SHOT (2); exit.
    let insns: [u64; 2] = [
        u64::from_le_bytes([0xb7, 0, 0, 0, 2, 0, 0, 0]),
        u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
    ];
    let license = b"GPL\0";
    let mut attr = [0u64; 16];
    // union bpf_attr, BPF_PROG_LOAD: prog_type u32, insn_cnt u32, insns u64, license u64.
    attr[0] = u64::from(BPF_PROG_TYPE_SCHED_CLS) | (2u64 << 32);
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    let prog = bpf(BPF_PROG_LOAD, &mut attr)?;
    let mut attr = [0u64; 16];
    // BPF_LINK_CREATE: prog_fd u32, target_ifindex u32, attach_type u32, flags u32.
    let prog_fd = std::os::fd::AsRawFd::as_raw_fd(&prog) as u32;
    attr[0] = u64::from(prog_fd) | (u64::from(ifindex) << 32);
    attr[1] = u64::from(BPF_TCX_INGRESS);
    bpf(BPF_LINK_CREATE, &mut attr)
}
