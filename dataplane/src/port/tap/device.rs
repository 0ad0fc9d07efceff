#![allow(unsafe_code)]
//! A TAP device's file: `/dev/net/tun` opened non-blocking and attached to a device with
//! `TUNSETIFF`, without the packet-information header and, if asked, with the virtio-net
//! header (`IFF_VNET_HDR`) in front of every frame each way and the offloads nfv can
//! follow switched on (`TUNSETOFFLOAD`: begun checksums, TCP segmentation over IPv4 and
//! IPv6, UDP segmentation where the kernel has it).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::offload::VIRTIO_HDR;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

/// An open TAP device.
pub struct Device {
    fd: OwnedFd,
    name: String,
}

impl Device {
    /// Create (or attach to) TAP device `name` (a pattern like `nfv%d` lets the kernel pick
    /// the number); with `vnet`, every frame each way carries a virtio-net header of
    /// [`VIRTIO_HDR`] bytes and the kernel may hand over super-frames and begun checksums.
    pub fn open(name: &str, vnet: bool) -> io::Result<Device> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a device name has 1 to 15 bytes",
            ));
        }
        // SAFETY: open(2) of a constant NUL-terminated path; the result is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just opened and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero `ifreq` is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI | if vnet { IFF_VNET_HDR } else { 0 };
        // SAFETY: TUNSETIFF reads and writes the `ifreq`, alive for the call.
        if unsafe { libc::ioctl(raw, TUNSETIFF, &mut ifr) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel wrote the device's name, NUL-terminated within IFNAMSIZ (the
        // last byte was zero and stays so).
        let name = unsafe { CStr::from_ptr(ifr.ifr_name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        if vnet {
            let size = VIRTIO_HDR as libc::c_int;
            // SAFETY: TUNSETVNETHDRSZ reads one int, alive for the call.
            if unsafe { libc::ioctl(raw, TUNSETVNETHDRSZ, &size) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: TUNSETOFFLOAD takes its argument by value.
            let offer =
                |flags: libc::c_uint| unsafe { libc::ioctl(raw, TUNSETOFFLOAD, flags) } == 0;
            let tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
            // A kernel older than 6.2 has no UDP segmentation offload: TCP alone then.
            if !offer(tso | TUN_F_USO4 | TUN_F_USO6) && !offer(tso) {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Device { fd, name })
    }

    /// The device's name as the kernel gave it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read one frame into the buffers of `iov` in turn (each a pointer and a length the
    /// caller keeps valid and writable); its whole length, which may be more than they hold
    /// (the kernel then cut it).
    fn readv(&self, iov: &[libc::iovec]) -> io::Result<usize> {
        // SAFETY: readv(2) writes only into the buffers `iov` names, valid for their lengths.
        let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// Read one frame into `buf`; its whole length (more than `buf` holds: cut).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.readv(&[iovec(buf)])
    }

    /// Read one frame with its virtio-net header: the header into `hdr`, the frame into
    /// `first` and what does not fit there into `rest`. The frame's whole length.
    pub fn recv_vnet(
        &self,
        hdr: &mut [u8; VIRTIO_HDR],
        first: &mut [u8],
        rest: &mut [u8],
    ) -> io::Result<usize> {
        let n = self.readv(&[iovec(hdr), iovec(first), iovec(rest)])?;
        n.checked_sub(VIRTIO_HDR)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }

    /// Write one frame, behind virtio-net header `hdr` if the device has them.
    pub fn send(&self, hdr: Option<&[u8; VIRTIO_HDR]>, frame: &[u8]) -> io::Result<()> {
        let hdr = hdr.map(|h| libc::iovec {
            iov_base: h.as_ptr() as *mut libc::c_void,
            iov_len: h.len(),
        });
        let data = libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        };
        let iov = match hdr {
            Some(h) => [h, data],
            None => [data, data],
        };
        let count = if hdr.is_some() { 2 } else { 1 };
        // SAFETY: writev(2) only reads the buffers `iov` names, valid for their lengths.
        let n = unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), count) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// The `iovec` for writing into `buf`.
fn iovec(buf: &mut [u8]) -> libc::iovec {
    libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
