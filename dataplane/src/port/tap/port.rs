//! TAP ports: Ethernet frames to and from a Linux TAP device, through the `tun-tap` crate.
//!
//! The device is opened without the packet-information header and non-blocking. The kernel
//! hands over one frame per `read` and takes one per `write`, so a burst is a loop of system
//! calls that stops at `EAGAIN` or at the burst's end. A full device is a counted `tx_full`
//! drop; a device that vanished (deleted, or its namespace removed) turns the port dead: it
//! stops reading and counts every frame sent to it as `port_down`, so it never spins.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};

use tun_tap::{Iface, Mode};

use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::drop_reason::DropReason;
use crate::packet::{Pool, MAX_JUMBO_FRAME};
use crate::port::veth::read_counter;
use crate::port::{Port, ETH_HEADER, VLAN_TAG};

/// A TAP device owned by the dataplane.
pub struct TapPort {
    iface: Iface,
    /// The device's `tx_dropped` counter (frames the host sent that its full queue
    /// dropped), opened before the device moves into a host (the open file follows it),
    /// and its value at the last refresh.
    dropped: Option<File>,
    dropped_seen: u64,
    max_frame: usize,
    dead: bool,
}

/// Errors that say the device is gone or unusable for good.
fn is_fatal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADFD) | Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EBADF)
    )
}

impl TapPort {
    /// Create TAP device `name` (the kernel may pick a name for patterns like `nfv%d`) with
    /// room for frames of `mtu` bytes of payload.
    pub fn create(name: &str, mtu: usize) -> std::io::Result<TapPort> {
        let iface = Iface::without_packet_info(name, Mode::Tap)?;
        iface.set_non_blocking()?;
        let dropped = File::open(format!(
            "/sys/class/net/{}/statistics/tx_dropped",
            iface.name()
        ))
        .ok();
        Ok(TapPort {
            iface,
            dropped_seen: dropped.as_ref().and_then(read_counter).unwrap_or(0),
            dropped,
            max_frame: (mtu + ETH_HEADER + VLAN_TAG).min(MAX_JUMBO_FRAME),
            dead: false,
        })
    }

    /// The device's name as the kernel gave it.
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// True once the device has vanished.
    pub fn is_dead(&self) -> bool {
        self.dead
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
            let Some(mut pkt) = pool.alloc_for(self.max_frame) else {
                counters.drops.add(DropReason::NoBuffers, 1);
                return;
            };
            match self.iface.recv(pkt.room_mut()) {
                Ok(n) if n < ETH_HEADER => {
                    counters.drops.add(DropReason::Runt, 1);
                    pool.free(pkt);
                }
                Ok(n) if n > self.max_frame => {
                    counters.drops.add(DropReason::Oversize, 1);
                    pool.free(pkt);
                }
                Ok(n) => {
                    pkt.set_len(n);
                    counters.rx(n);
                    if let Err(pkt) = batch.push(pkt) {
                        pool.free(pkt);
                    }
                }
                Err(e) => {
                    pool.free(pkt);
                    if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::Interrupted {
                        counters.rx_errors.add(1);
                        if is_fatal(&e) {
                            self.dead = true;
                        }
                    }
                    return;
                }
            }
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        for pkt in batch.drain() {
            let reason = if self.dead {
                Some(DropReason::PortDown)
            } else if pkt.len() > self.max_frame {
                Some(DropReason::Oversize)
            } else {
                match self.iface.send(pkt.data()) {
                    Ok(_) => {
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
        (!self.dead).then(|| self.iface.as_raw_fd())
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
}
