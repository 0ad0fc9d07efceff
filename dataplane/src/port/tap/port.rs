//! TAP ports: Ethernet frames to and from a Linux TAP device.
//!
//! The device is opened non-blocking, without the packet-information header and, with
//! offloads (the default), with the virtio-net header: the host's kernel then hands over
//! TCP (and UDP) super-frames of up to 64 KB with their checksums begun, and takes them
//! back the same way (see [`crate::offload`]). The kernel hands over one frame per read
//! and takes one per write, so a burst is a loop of system calls that stops at `EAGAIN` or
//! at the burst's end. A frame is read into a buffer of its port's size; only what does not
//! fit there goes on into a spare super-frame buffer, which then takes the frame (its first
//! part copied over), so frames up to the MTU cost no copy. A full device is a counted
//! `tx_full` drop; a device that vanished (deleted, or its namespace removed) turns the port
//! dead: it stops reading and counts every frame sent to it as `port_down`, so it never
//! spins.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};

use super::device::Device;
use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::drop_reason::DropReason;
use crate::offload::{self, VIRTIO_HDR};
use crate::packet::{Packet, Pool, MAX_JUMBO_FRAME, MAX_SUPER_FRAME};
use crate::port::veth::{netlink, read_counter, GSO_MAX};
use crate::port::{Port, ETH_HEADER, VLAN_TAG};

/// A TAP device owned by the dataplane.
pub struct TapPort {
    dev: Device,
    /// The device's `tx_dropped` counter (frames the host sent that its full queue
    /// dropped), opened before the device moves into a host (the open file follows it),
    /// and its value at the last refresh.
    dropped: Option<File>,
    dropped_seen: u64,
    max_frame: usize,
    /// Frames carry the virtio-net header each way.
    vnet: bool,
    /// The super-frame buffer the rest of a frame longer than its first buffer goes into.
    spare: Option<Packet>,
    dead: bool,
}

/// Errors that say the device is gone or unusable for good.
fn is_fatal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADFD) | Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EBADF)
    )
}

/// What became of one read.
enum Read {
    /// A frame for the graph.
    Frame(Packet),
    /// A frame dropped for this reason.
    Dropped(DropReason),
    /// Nothing more to read now.
    Empty,
    /// The read failed (a counted receive error).
    Failed,
}

impl TapPort {
    /// Create TAP device `name` (the kernel may pick a name for patterns like `nfv%d`) with
    /// room for frames of `mtu` bytes of payload, and with `offloads` the virtio-net header
    /// (super-frames and begun checksums each way).
    pub fn create(name: &str, mtu: usize, offloads: bool) -> std::io::Result<TapPort> {
        let dev = Device::open(name, offloads)?;
        if offloads {
            // Super-frames from the host must fit a super-frame buffer.
            netlink::set_gso_max(netlink::index_of(dev.name())?, GSO_MAX)?;
        }
        let dropped = File::open(format!(
            "/sys/class/net/{}/statistics/tx_dropped",
            dev.name()
        ))
        .ok();
        Ok(TapPort {
            dev,
            dropped_seen: dropped.as_ref().and_then(read_counter).unwrap_or(0),
            dropped,
            max_frame: (mtu + ETH_HEADER + VLAN_TAG).min(MAX_JUMBO_FRAME),
            vnet: offloads,
            spare: None,
            dead: false,
        })
    }

    /// The device's name as the kernel gave it.
    pub fn name(&self) -> &str {
        self.dev.name()
    }

    /// True once the device has vanished.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Read one frame into `pkt` (and the spare buffer, for a super-frame).
    fn read(&mut self, mut pkt: Packet, pool: &mut Pool) -> Read {
        let mut hdr = [0u8; VIRTIO_HDR];
        let got = if self.vnet {
            if self.spare.is_none() {
                self.spare = pool.alloc_for(MAX_SUPER_FRAME);
            }
            let first = pkt.room_mut();
            let rest = match &mut self.spare {
                Some(s) => s.room_mut().get_mut(first.len()..).unwrap_or_default(),
                None => &mut [],
            };
            self.dev.recv_vnet(&mut hdr, first, rest)
        } else {
            self.dev.recv(pkt.room_mut())
        };
        let n = match got {
            Ok(n) => n,
            Err(e) => {
                pool.free(pkt);
                if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted {
                    return Read::Empty;
                }
                if is_fatal(&e) {
                    self.dead = true;
                }
                return Read::Failed;
            }
        };
        let first = pkt.room_mut().len();
        if n > first {
            // Longer than its buffer: only a super-frame may be, and it must fit the spare.
            let room = self.spare.as_mut().map_or(0, |s| s.room_mut().len());
            match self.spare.take() {
                Some(mut big) if n <= room => {
                    big.room_mut()[..first].copy_from_slice(pkt.room_mut());
                    pool.free(pkt);
                    pkt = big;
                }
                spare => {
                    self.spare = spare;
                    pool.free(pkt);
                    return Read::Dropped(DropReason::Oversize);
                }
            }
        }
        pkt.set_len(n);
        if self.vnet {
            match offload::from_virtio(&hdr, 0) {
                Ok(o) => pkt.set_offload(o),
                Err(r) => {
                    pool.free(pkt);
                    return Read::Dropped(r);
                }
            }
        }
        let reason = if n < ETH_HEADER {
            Some(DropReason::Runt)
        } else if pkt.wire_len() > self.max_frame {
            // Its own length, or a super-frame's segments'.
            Some(DropReason::Oversize)
        } else {
            None
        };
        match reason {
            Some(r) => {
                pool.free(pkt);
                Read::Dropped(r)
            }
            None => Read::Frame(pkt),
        }
    }
}

impl Port for TapPort {
    fn kind(&self) -> &'static str {
        "tap"
    }

    fn rx_burst(&mut self, pool: &mut Pool, batch: &mut Batch, counters: &PortCounters) {
        if self.dead {
            return;
        }
        while !batch.is_full() {
            let Some(pkt) = pool.alloc_for(self.max_frame) else {
                counters.drops.add(DropReason::NoBuffers, 1);
                return;
            };
            match self.read(pkt, pool) {
                Read::Frame(pkt) => {
                    counters.rx(pkt.len());
                    if let Err(pkt) = batch.push(pkt) {
                        pool.free(pkt);
                    }
                }
                Read::Failed => {
                    counters.rx_errors.add(1);
                    return;
                }
                Read::Dropped(r) => counters.drops.add(r, 1),
                Read::Empty => return,
            }
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        for pkt in batch.drain() {
            let reason = if self.dead {
                Some(DropReason::PortDown)
            } else if pkt.wire_len() > self.max_frame {
                Some(DropReason::Oversize)
            } else {
                let hdr = self.vnet.then(|| offload::to_virtio(pkt.offload()));
                match self.dev.send(hdr.as_ref(), pkt.data()) {
                    Ok(()) => {
                        counters.tx(pkt.len());
                        None
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => Some(DropReason::TxFull),
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Some(DropReason::TxFull),
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => Some(DropReason::PortDown),
                    Err(e) if is_fatal(&e) => {
                        self.dead = true;
                        Some(DropReason::PortDown)
                    }
                    Err(_) => Some(DropReason::TxError),
                }
            };
            if let Some(r) = reason {
                counters.drops.add(r, 1);
            }
            pool.free(pkt);
        }
    }

    fn wait_fd(&self) -> Option<RawFd> {
        (!self.dead).then(|| self.dev.as_raw_fd())
    }

    fn refresh(&mut self, counters: &PortCounters) {
        if let Some(now) = self.dropped.as_ref().and_then(read_counter) {
            counters.rx_miss.add(now.saturating_sub(self.dropped_seen));
            self.dropped_seen = now;
        }
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn offloads(&self) -> bool {
        self.vnet
    }

    fn release(&mut self, pool: &mut Pool) {
        if let Some(p) = self.spare.take() {
            pool.free(p);
        }
    }
}
