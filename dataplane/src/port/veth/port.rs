//! The veth port: frames to and from nfv's end of a veth pair through packet-socket rings.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::ring::{self, Geometry, RingSocket, TP_STATUS_AVAILABLE, TP_STATUS_COPY};
use super::ring::{TP_STATUS_KERNEL, TP_STATUS_SEND_REQUEST, TP_STATUS_USER};
use super::ring::{TP_STATUS_WRONG_FORMAT, TX_DATA, VNET_HDR};
use super::{filter, netlink};
use crate::batch::Batch;
use crate::counters::PortCounters;
use crate::drop_reason::DropReason;
use crate::offload;
use crate::packet::{Gso, Packet, Pool, MAX_JUMBO_FRAME, MAX_SUPER_FRAME};
use crate::port::{Port, ETH_HEADER, VLAN_TAG};

/// A veth pair whose far end belongs to a lab host, served through packet-socket rings on
/// the near end. Dropping the port deletes the pair.
pub struct VethPort {
    rx: RingSocket,
    tx: RingSocket,
    /// With offloads: the socket super-frames leave through (no slot holds them).
    big: Option<OwnedFd>,
    /// The longest frame a transmit slot holds.
    slot_room: usize,
    /// The next receive slot to look at, and the next transmit slot to fill.
    rx_next: usize,
    tx_next: usize,
    /// Slots were handed to the kernel to send but the last `sendto` did not take them.
    pending: bool,
    /// nfv's end of the pair.
    index: u32,
    /// Keeps the root namespace's stack off nfv's end (see [`filter`]).
    _filter: OwnedFd,
    /// nfv's end's `rx_dropped` counter (frames the kernel's backlog dropped before the
    /// socket saw them) and its value at the last refresh.
    dropped: Option<File>,
    dropped_seen: u64,
    max_frame: usize,
    dead: bool,
    /// The device name of nfv's end (for messages).
    inner: String,
}

/// Errors that say the device is gone for good.
fn is_fatal(e: i32) -> bool {
    matches!(
        e,
        libc::ENETDOWN | libc::ENODEV | libc::ENXIO | libc::EBADF | libc::EBADFD
    )
}

/// A number read from a sysfs counter file, from its start.
pub(crate) fn read_counter(f: &File) -> Option<u64> {
    let mut buf = [0u8; 24];
    let n = f.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// Write `1` to `/proc/sys/net/ipv6/conf/DEV/disable_ipv6`, if the kernel has IPv6.
fn ipv6_off(dev: &str) -> io::Result<()> {
    match std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1") {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The MTU of nfv's end. The kernel drops a frame longer than the receiving end's MTU
/// before any socket sees it; with the largest MTU a veth takes, every frame the lab host
/// sends reaches the ring, and one longer than the port's MTU is counted as `oversize` as a
/// TAP port counts it, not lost unseen.
const INNER_MTU: u32 = 65_535;

/// Super-frames the host's kernel sends are shorter than this (with their Ethernet
/// header), so that one with a VLAN tag put back still fits a super-frame buffer.
pub(crate) const GSO_MAX: u32 = (MAX_SUPER_FRAME - VLAN_TAG) as u32;

impl VethPort {
    /// Make veth pair `outer` (the end a lab host takes) <-> an end of nfv's, which stays in
    /// the caller's namespace with IPv6 off and every arriving frame kept from its stack,
    /// with MTU `mtu`, and serve nfv's end. On an error nothing is left behind.
    ///
    /// nfv's end is named `nfv<pid>v<n>`, `n` counting the pairs this process made (a name
    /// a leftover of another run holds is skipped).
    ///
    /// With `offloads`, the pair keeps the offloads a veth has: the host's kernel sends
    /// TCP and UDP super-frames of up to 64 KB and frames with checksums only begun, and
    /// takes them (see [`crate::offload`]); without, every frame is whole, as a TAP device
    /// without offloads hands them over.
    pub fn create(outer: &str, mtu: usize, offloads: bool) -> io::Result<VethPort> {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let pid = std::process::id() % 1_000_000;
        let inner = loop {
            let n = MADE.fetch_add(1, Relaxed) % 100_000;
            let inner = format!("nfv{pid}v{n}");
            match netlink::create_pair(outer, &inner, mtu as u32, INNER_MTU, GSO_MAX) {
                Ok(()) => break inner,
                // Another run's leftover, or ours under a name `outer` does not have.
                Err(e)
                    if e.raw_os_error() == Some(libc::EEXIST)
                        && netlink::index_of(outer).is_err() =>
                {
                    if n % 100_000 == 99_999 {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let inner = inner.as_str();
        let index = match netlink::index_of(inner) {
            Ok(i) => i,
            Err(e) => {
                // Not ours to find: delete by the name we made.
                if let Ok(i) = netlink::index_of(outer) {
                    let _ = netlink::delete(i);
                }
                return Err(e);
            }
        };
        Self::serve(outer, inner, index, mtu, offloads).inspect_err(|_| {
            let _ = netlink::delete(index);
        })
    }

    fn serve(
        outer: &str,
        inner: &str,
        index: u32,
        mtu: usize,
        offloads: bool,
    ) -> io::Result<VethPort> {
        if !offloads {
            // Whole frames with their checksums filled in, as a TAP device without
            // offloads hands over: no 64 KB super-frames, no checksums left for the
            // receiver.
            netlink::offloads_off(outer)?;
            netlink::offloads_off(inner)?;
        }
        ipv6_off(inner)?;
        let filter = filter::drop_after_taps(index)?;
        // Up before the sockets bind: binding to a device that is down leaves the socket
        // an ENETDOWN error.
        netlink::set_up(index)?;
        let max_frame = (mtu + ETH_HEADER + VLAN_TAG).min(MAX_JUMBO_FRAME);
        let geometry = Geometry::for_frame(max_frame);
        let rx = ring::open(index, true, geometry, offloads)?;
        let tx = ring::open(index, false, geometry, offloads)?;
        let big = if offloads {
            Some(ring::open_big_tx(index)?)
        } else {
            None
        };
        let slot_room = geometry.slot - TX_DATA - if offloads { VNET_HDR } else { 0 };
        let dropped = File::open(format!("/sys/class/net/{inner}/statistics/rx_dropped")).ok();
        Ok(VethPort {
            rx,
            tx,
            big,
            slot_room,
            rx_next: 0,
            tx_next: 0,
            pending: false,
            index,
            _filter: filter,
            dropped_seen: dropped.as_ref().and_then(read_counter).unwrap_or(0),
            dropped,
            max_frame: max_frame.min(slot_room),
            dead: false,
            inner: inner.to_string(),
        })
    }

    /// True once the device has vanished.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The name of nfv's end.
    pub fn inner(&self) -> &str {
        &self.inner
    }

    /// Ask the kernel to send what the ring holds; what it did not take waits for the next
    /// burst or refresh.
    fn kick(&mut self) {
        match self.tx.kick() {
            Ok(()) => self.pending = false,
            Err(e) => {
                self.dead = is_fatal(e.raw_os_error().unwrap_or(0));
                if self.dead {
                    tracing::warn!(device = %self.inner, "veth port: the device went away ({e})");
                }
                self.pending = !self.dead;
            }
        }
    }
}

/// Why a received frame did not become a packet.
enum Lost {
    /// Dropped with a reason.
    Dropped(DropReason),
    /// Lost before nfv could read it (counted in `rx_miss`).
    Missed,
}

impl VethPort {
    /// The frame in receive slot `i` (status `st`) as a packet from `pool`.
    fn receive(&self, i: usize, st: u32, pool: &mut Pool) -> Result<Packet, Lost> {
        let Some((frame, len, tag)) = self.rx.ring.received(i, st) else {
            return Err(Lost::Dropped(DropReason::Runt));
        };
        let shift = if tag.is_some() { VLAN_TAG } else { 0 };
        let whole = len + shift;
        let offload = match self.big {
            Some(_) => match self.rx.ring.vnet_hdr(i) {
                Some(h) => offload::from_virtio(&h, shift).map_err(Lost::Dropped)?,
                None => return Err(Lost::Dropped(DropReason::BadHeader)),
            },
            None => None,
        };
        if frame.len() < ETH_HEADER {
            return Err(Lost::Dropped(DropReason::Runt));
        }
        if self.big.is_some() && len != frame.len() && st & TP_STATUS_COPY == 0 {
            // Too big for the slot, and the socket's queue was too full to keep it whole.
            return Err(Lost::Missed);
        }
        // A super-frame that fits a slot is checked by its segments' length, below.
        let gso = offload.is_some_and(|o| o.gso != Gso::None);
        if st & TP_STATUS_COPY != 0 || len != frame.len() || (whole > self.max_frame && !gso) {
            return Err(Lost::Dropped(DropReason::Oversize));
        }
        let mut pkt = pool
            .alloc_for(whole)
            .ok_or(Lost::Dropped(DropReason::NoBuffers))?;
        let room = pkt.room_mut();
        match tag {
            None => room[..len].copy_from_slice(frame),
            Some((tpid, tci)) => {
                // The kernel took the tag off: put it back after the MACs.
                room[..12].copy_from_slice(&frame[..12]);
                room[12..14].copy_from_slice(&tpid.to_be_bytes());
                room[14..16].copy_from_slice(&tci.to_be_bytes());
                room[16..whole].copy_from_slice(&frame[12..]);
            }
        }
        pkt.set_len(whole);
        pkt.set_offload(offload);
        if gso && pkt.wire_len() > self.max_frame {
            pool.free(pkt);
            return Err(Lost::Dropped(DropReason::Oversize));
        }
        Ok(pkt)
    }

    /// The frame too big for its slot (tagged `tag`, as its slot says) off the receive
    /// socket's queue, as a packet in a super-frame buffer from `pool`.
    fn receive_big(&self, pool: &mut Pool, tag: Option<(u16, u16)>) -> Result<Packet, Lost> {
        let mut hdr = [0u8; VNET_HDR];
        let Some(mut pkt) = pool.alloc_for(MAX_SUPER_FRAME) else {
            // Take it off the queue all the same, so the next slot's frame is the next.
            let _ = self.rx.recv_big(&mut hdr, &mut [0u8; 64]);
            return Err(Lost::Dropped(DropReason::NoBuffers));
        };
        let shift = if tag.is_some() { VLAN_TAG } else { 0 };
        let room = pkt.room_mut();
        let Some(n) = self.rx.recv_big(&mut hdr, &mut room[shift..]) else {
            pool.free(pkt);
            return Err(Lost::Dropped(DropReason::Oversize));
        };
        if let Some((tpid, tci)) = tag {
            room.copy_within(VLAN_TAG..VLAN_TAG + 12, 0);
            room[12..14].copy_from_slice(&tpid.to_be_bytes());
            room[14..16].copy_from_slice(&tci.to_be_bytes());
        }
        pkt.set_len(n + shift);
        let offload = match offload::from_virtio(&hdr, shift) {
            Ok(o) => o,
            Err(r) => {
                pool.free(pkt);
                return Err(Lost::Dropped(r));
            }
        };
        pkt.set_offload(offload);
        if n < ETH_HEADER || pkt.wire_len() > self.max_frame || pkt.offload().is_none() {
            // Only a super-frame may be longer than a slot.
            pool.free(pkt);
            return Err(Lost::Dropped(DropReason::Oversize));
        }
        Ok(pkt)
    }

    /// Send super-frame `pkt` through the socket for them; the drop reason if it could
    /// not go.
    fn send_big(&mut self, pkt: &Packet) -> Option<DropReason> {
        let fd = self.big.as_ref()?.as_raw_fd();
        match ring::send_big(fd, &offload::to_virtio(pkt.offload()), pkt.data()) {
            Ok(()) => None,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOBUFS) => Some(DropReason::TxFull),
                Some(e) if is_fatal(e) => {
                    self.dead = true;
                    Some(DropReason::PortDown)
                }
                _ => Some(DropReason::TxError),
            },
        }
    }
}

impl Drop for VethPort {
    fn drop(&mut self) {
        // Either end takes the pair with it; gone already if the host's namespace went.
        let _ = netlink::delete(self.index);
    }
}

impl Port for VethPort {
    fn kind(&self) -> &'static str {
        "veth"
    }

    fn rx_burst(&mut self, pool: &mut Pool, batch: &mut Batch, counters: &PortCounters) {
        if self.dead {
            return;
        }
        let vnet = self.big.is_some();
        let (mut packets, mut bytes) = (0, 0);
        while !batch.is_full() {
            let i = self.rx_next;
            let status = self.rx.ring.status(i);
            let st = status.load(Acquire);
            if st & TP_STATUS_USER == 0 {
                break;
            }
            let got = if vnet && st & TP_STATUS_COPY != 0 {
                // Too big for its slot: the whole frame waits on the socket's queue.
                let tag = self.rx.ring.received(i, st).and_then(|r| r.2);
                self.receive_big(pool, tag)
            } else {
                self.receive(i, st, pool)
            };
            match got {
                Ok(pkt) => {
                    packets += 1;
                    bytes += pkt.len();
                    if let Err(pkt) = batch.push(pkt) {
                        pool.free(pkt);
                    }
                }
                Err(Lost::Dropped(r)) => counters.drops.add(r, 1),
                Err(Lost::Missed) => counters.rx_miss.add(1),
            }
            status.store(TP_STATUS_KERNEL, Release);
            self.rx_next = self.rx_next.wrapping_add(1);
        }
        if packets > 0 {
            counters.rx_many(packets, bytes);
        }
    }

    fn tx_burst(&mut self, batch: &mut Batch, pool: &mut Pool, counters: &PortCounters) {
        let (mut packets, mut bytes, mut queued) = (0, 0, false);
        let vnet = self.big.is_some();
        let data = TX_DATA + if vnet { VNET_HDR } else { 0 };
        for pkt in batch.drain() {
            let reason = if self.dead {
                Some(DropReason::PortDown)
            } else if pkt.wire_len() > self.max_frame {
                Some(DropReason::Oversize)
            } else if pkt.len() > self.slot_room {
                // A super-frame: past the ring, after what the ring holds.
                if queued {
                    self.kick();
                    queued = false;
                }
                let r = self.send_big(&pkt);
                if r.is_none() {
                    packets += 1;
                    bytes += pkt.len();
                }
                r
            } else {
                let i = self.tx_next;
                let status = self.tx.ring.status(i);
                let mut st = status.load(Acquire);
                if st == TP_STATUS_WRONG_FORMAT {
                    // Only without PACKET_LOSS; take the slot back all the same.
                    st = TP_STATUS_AVAILABLE;
                }
                if st != TP_STATUS_AVAILABLE {
                    Some(DropReason::TxFull)
                } else {
                    let n = pkt.len();
                    let slot = self.tx.ring.slot_mut(i);
                    if vnet {
                        slot[TX_DATA..data].copy_from_slice(&offload::to_virtio(pkt.offload()));
                    }
                    slot[data..data + n].copy_from_slice(pkt.data());
                    self.tx.ring.set_len(i, (data - TX_DATA + n) as u32);
                    self.tx
                        .ring
                        .status(i)
                        .store(TP_STATUS_SEND_REQUEST, Release);
                    self.tx_next = self.tx_next.wrapping_add(1);
                    packets += 1;
                    bytes += n;
                    queued = true;
                    None
                }
            };
            if let Some(r) = reason {
                counters.drops.add(r, 1);
            }
            pool.free(pkt);
        }
        if queued || self.pending {
            self.kick();
        }
        if packets > 0 {
            counters.tx_many(packets, bytes);
        }
    }

    fn wait_fd(&self) -> Option<RawFd> {
        (!self.dead).then(|| self.rx.fd.as_raw_fd())
    }

    fn refresh(&mut self, counters: &PortCounters) {
        if self.dead {
            return;
        }
        if let Some(e) = self.rx.take_error() {
            // Down is not gone: a device set down and up again is served again.
            if is_fatal(e) && netlink::index_of(&self.inner).is_err() {
                tracing::warn!(device = %self.inner, "veth port: the device went away ({})", io::Error::from_raw_os_error(e));
                self.dead = true;
                return;
            }
        }
        if let Ok(n) = self.rx.drops() {
            counters.rx_miss.add(u64::from(n));
        }
        if let Some(now) = self.dropped.as_ref().and_then(read_counter) {
            counters.rx_miss.add(now.saturating_sub(self.dropped_seen));
            self.dropped_seen = now;
        }
        if self.pending {
            self.kick();
        }
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn offloads(&self) -> bool {
        self.big.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(unsafe_code)]
    use super::*;
    use crate::packet::Pool;

    /// Root only: skips elsewhere, fails under `CI=true`.
    fn root() -> bool {
        if crate::sys::effective_uid() == 0 {
            return true;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: veth tests need root"
        );
        eprintln!("skipped: veth ports need root");
        false
    }

    /// A raw socket on device `name`, to play the lab host.
    struct Host {
        fd: OwnedFd,
        index: u32,
    }

    impl Host {
        fn on(name: &str) -> Host {
            let index = netlink::index_of(name).expect("outer end");
            netlink::set_up(index).expect("up");
            // SAFETY: test-only raw socket, checked below.
            let fd = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_NONBLOCK,
                    (libc::ETH_P_ALL as u16).to_be() as i32,
                )
            };
            assert!(fd >= 0, "{}", io::Error::last_os_error());
            // SAFETY: just opened.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            // SAFETY: zeroed sockaddr_ll is valid.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = index as i32;
            // SAFETY: valid address of the size passed.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(r, 0, "{}", io::Error::last_os_error());
            Host { fd, index }
        }

        fn send(&self, frame: &[u8]) {
            // SAFETY: `frame` is valid for its length.
            let r =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            assert_eq!(r, frame.len() as isize, "{}", io::Error::last_os_error());
        }

        /// The next frame of the test's EtherType (0x88b5) the host's end sees; the
        /// kernel's own (IPv6 router solicitations, which a packet socket also sees going
        /// out) are skipped.
        fn recv(&self) -> Option<Vec<u8>> {
            let mut buf = vec![0u8; 4096];
            for _ in 0..200 {
                // SAFETY: `buf` is writable for its length.
                let r = unsafe {
                    libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                };
                if r > 0 {
                    let n = r as usize;
                    if n >= 14 && buf[12..14] == [0x88, 0xb5] {
                        buf.truncate(n);
                        return Some(buf);
                    }
                    continue;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            None
        }
    }

    fn frame(len: usize, tag: u8) -> Vec<u8> {
        let mut f = vec![tag; len];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f
    }

    #[test]
    fn frames_cross_the_rings_both_ways_and_the_pair_goes_with_the_port() {
        if !root() {
            return;
        }
        let outer = format!("nfvut{}", std::process::id() % 1_000_000);
        let mut port = VethPort::create(&outer, 1500, false).expect("veth port");
        let inner = port.inner().to_string();
        let host = Host::on(&outer);
        let mut pool = Pool::new(256);
        let counters = PortCounters::default();
        port.refresh(&counters);
        assert!(!port.is_dead(), "a new port is alive");
        let sent: Vec<Vec<u8>> = (0..40).map(|i| frame(60 + i * 30, i as u8)).collect();
        for f in &sent {
            host.send(f);
        }
        let mut got = Vec::new();
        for _ in 0..200 {
            let mut b = Batch::new();
            port.rx_burst(&mut pool, &mut b, &counters);
            for p in b.drain() {
                // Only ours: the kernel may send its own (IPv6 router solicitations).
                if p.data()[12..14] == [0x88, 0xb5] {
                    got.push(p.data().to_vec());
                }
                pool.free(p);
            }
            if got.len() >= sent.len() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            got == sent,
            "every frame arrives whole and in order: {} of {}",
            got.len(),
            sent.len()
        );
        assert!(counters.rx_packets.get() >= 40);

        // And back: a burst leaves with one kick.
        let mut b = Batch::new();
        for i in 0..5 {
            let mut p = pool.alloc().expect("buffer");
            let f = frame(100, 0xa0 + i);
            p.room_mut()[..100].copy_from_slice(&f);
            p.set_len(100);
            assert!(b.push(p).is_ok(), "room");
        }
        port.tx_burst(&mut b, &mut pool, &counters);
        assert_eq!(counters.tx_packets.get(), 5);
        for i in 0..5 {
            assert_eq!(host.recv(), Some(frame(100, 0xa0 + i)));
        }
        // Too big for the MTU: counted, not sent.
        let mut p = pool.alloc().expect("buffer");
        p.set_len(1500 + 14 + 4 + 1);
        assert!(b.push(p).is_ok(), "room");
        port.tx_burst(&mut b, &mut pool, &counters);
        assert_eq!(counters.drops.get(DropReason::Oversize), 1);
        let _ = host.index;
        drop(port);
        assert!(netlink::index_of(&inner).is_err(), "nfv's end is gone");
        assert!(netlink::index_of(&outer).is_err(), "and the host's with it");
    }
}
