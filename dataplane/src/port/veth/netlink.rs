#![allow(unsafe_code)]
//! The few rtnetlink and ethtool requests a veth port needs: make a pair, bring a device
//! up, turn its offloads off, delete it. One request and its acknowledgement each, on a
//! `NETLINK_ROUTE` socket of the calling thread's namespace (the root one for `nfv run`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINKINFO: u16 = 18;
const IFLA_GSO_MAX_SIZE: u16 = 41;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

/// A netlink request being built: the header, then attributes.
struct Request {
    buf: Vec<u8>,
    /// Offsets of the nested attributes still open.
    open: Vec<usize>,
}

impl Request {
    fn new(kind: u16, flags: u16) -> Request {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set at the end
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        Request {
            buf,
            open: Vec::new(),
        }
    }

    /// A `struct ifinfomsg` for device `index` (0: none), setting `flags` under `change`.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.extend_from_slice(&[0u8; 4]); // AF_UNSPEC, pad, type
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    fn align(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        self.align();
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
    }

    fn name(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v);
    }

    fn begin(&mut self, kind: u16) {
        self.align();
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    fn end(&mut self) {
        if let Some(at) = self.open.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// Send the request and wait for the kernel's acknowledgement.
    fn call(mut self) -> io::Result<()> {
        self.align();
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a descriptor we just opened and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: `self.buf` is valid for its length; a null address means the socket's
        // default destination, the kernel.
        let sent =
            unsafe { libc::send(fd.as_raw_fd(), self.buf.as_ptr().cast(), self.buf.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = [0u8; 1024];
        loop {
            // SAFETY: `reply` is a writable buffer of the length passed.
            let n =
                unsafe { libc::recv(fd.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            if n < 20 {
                return Err(io::Error::other("short netlink reply"));
            }
            let kind = u16::from_ne_bytes([reply[4], reply[5]]);
            if kind != NLMSG_ERROR {
                continue;
            }
            let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
            return if code == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(-code))
            };
        }
    }
}

/// Make veth pair `name` (MTU `mtu`) <-> `peer` (MTU `peer_mtu`) in the caller's namespace,
/// neither sending super-frames of `gso_max` bytes or more.
pub fn create_pair(
    name: &str,
    peer: &str,
    mtu: u32,
    peer_mtu: u32,
    gso_max: u32,
) -> io::Result<()> {
    let mut r = Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    r.ifinfo(0, 0, 0);
    r.name(IFLA_IFNAME, name);
    r.attr(IFLA_MTU, &mtu.to_ne_bytes());
    r.attr(IFLA_GSO_MAX_SIZE, &gso_max.to_ne_bytes());
    r.begin(IFLA_LINKINFO);
    r.name(IFLA_INFO_KIND, "veth");
    r.begin(IFLA_INFO_DATA);
    r.begin(VETH_INFO_PEER);
    r.ifinfo(0, 0, 0);
    r.name(IFLA_IFNAME, peer);
    r.attr(IFLA_MTU, &peer_mtu.to_ne_bytes());
    r.attr(IFLA_GSO_MAX_SIZE, &gso_max.to_ne_bytes());
    r.end();
    r.end();
    r.end();
    debug_assert!(r.open.is_empty());
    r.call()
}

/// Keep device `index` from sending super-frames of `gso_max` bytes or more.
pub fn set_gso_max(index: u32, gso_max: u32) -> io::Result<()> {
    let mut r = Request::new(RTM_NEWLINK, 0);
    r.ifinfo(index as i32, 0, 0);
    r.attr(IFLA_GSO_MAX_SIZE, &gso_max.to_ne_bytes());
    r.call()
}

/// Bring device `index` up.
pub fn set_up(index: u32) -> io::Result<()> {
    let mut r = Request::new(RTM_NEWLINK, 0);
    let up = libc::IFF_UP as u32;
    r.ifinfo(index as i32, up, up);
    r.call()
}

/// Delete device `index` (a veth pair goes with either end).
pub fn delete(index: u32) -> io::Result<()> {
    let mut r = Request::new(RTM_DELLINK, 0);
    r.ifinfo(index as i32, 0, 0);
    r.call()
}

/// The index of device `name` in the caller's namespace.
pub fn index_of(name: &str) -> io::Result<u32> {
    let c =
        std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// Turn off the checksum, segmentation and scatter-gather offloads of device `name`, so
/// that its kernel hands over whole frames with their checksums filled in (what a reader
/// of raw frames needs; the TAP devices nfv makes have none of them either).
pub fn offloads_off(name: &str) -> io::Result<()> {
    const ETHTOOL_STXCSUM: u32 = 0x17;
    const ETHTOOL_SSG: u32 = 0x19;
    const ETHTOOL_STSO: u32 = 0x1f;
    const ETHTOOL_SGSO: u32 = 0x24;
    const ETHTOOL_SGRO: u32 = 0x2c;
    #[repr(C)]
    struct Value {
        cmd: u32,
        data: u32,
    }
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor we just opened and own alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    for cmd in [
        ETHTOOL_STSO,
        ETHTOOL_SGSO,
        ETHTOOL_SGRO,
        ETHTOOL_SSG,
        ETHTOOL_STXCSUM,
    ] {
        let mut v = Value { cmd, data: 0 };
        // SAFETY: an all-zero `ifreq` is valid; the name is copied in bounded by its size.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes().take(15)) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut v as *mut Value).cast();
        // SAFETY: SIOCETHTOOL reads the `ifreq` and the `Value` it points to, both alive
        // for the call; it writes at most the `Value`.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_laid_out_as_the_kernel_reads_them() {
        let mut r = Request::new(RTM_NEWLINK, NLM_F_CREATE);
        r.ifinfo(0, 0, 0);
        r.begin(IFLA_LINKINFO);
        r.name(IFLA_INFO_KIND, "veth");
        r.end();
        // header 16 + ifinfomsg 16 + nest 4 + kind attr (4 + 5, padded to 12)
        assert_eq!(r.buf.len(), 16 + 16 + 4 + 9);
        r.align();
        assert_eq!(r.buf.len(), 48);
        let nest_len = u16::from_ne_bytes([r.buf[32], r.buf[33]]);
        assert_eq!(
            nest_len, 13,
            "a nest's length covers its attributes, unpadded"
        );
        let nest_kind = u16::from_ne_bytes([r.buf[34], r.buf[35]]);
        assert_eq!(nest_kind, IFLA_LINKINFO | NLA_F_NESTED);
    }
}
