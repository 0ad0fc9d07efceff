//! Where a DHCP server's reply goes and how it gets there: the addressing of RFC 2131 §4.1
//! (through a relay, to ciaddr, broadcast, or to yiaddr at chaddr), the next hop for an
//! address outside the server's own subnet (its `gateway`), ARP for that next hop, and the
//! reply message itself. The BOOTP field offsets and the frame builder are shared with the
//! router's DHCP relay ([`crate::router`]).

use nfv_dataplane::{Ctx, DropReason, Gate, Packet};
use smoltcp::wire::DhcpMessageType;

use super::{mask, DhcpServer, Request};
use crate::arp;
use crate::ip::{ETHERTYPE_IPV4, PROTO_UDP};
use crate::router::neighbors::Enqueued;
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::{udp, EthernetFrame, Ipv4Packet, MacAddr, UdpPacket, ETH_HEADER_LEN};

/// The DHCP server port (servers and relays listen on it).
pub(crate) const SERVER_PORT: u16 = 67;
/// The DHCP client port.
pub(crate) const CLIENT_PORT: u16 = 68;
/// The fixed BOOTP header and the options' magic cookie (RFC 2131 §2).
pub(crate) const BOOTP_LEN: usize = 240;
/// The magic cookie.
pub(crate) const MAGIC: u32 = 0x6382_5363;

/// Offsets and values of the BOOTP fields that servers and relays read or write.
pub(crate) mod bootp {
    /// `op`: [`BOOTREQUEST`] or [`BOOTREPLY`].
    pub const OP: usize = 0;
    /// `htype`, 1 for Ethernet.
    pub const HTYPE: usize = 1;
    /// `hlen`, 6 for Ethernet.
    pub const HLEN: usize = 2;
    /// `hops`: relays the message crossed.
    pub const HOPS: usize = 3;
    /// `flags`; its top bit is [`BROADCAST`].
    pub const FLAGS: usize = 10;
    /// `ciaddr`: the client's address, if it has one.
    pub const CIADDR: usize = 12;
    /// `yiaddr`: the address the server gives.
    pub const YIADDR: usize = 16;
    /// `giaddr`: the first relay's address.
    pub const GIADDR: usize = 24;
    /// `chaddr`: the client's hardware address.
    pub const CHADDR: usize = 28;
    /// The fixed fields, before `sname`'s end and the options' cookie.
    pub const FIXED_LEN: usize = 236;
    /// A client's message.
    pub const BOOTREQUEST: u8 = 1;
    /// A server's message.
    pub const BOOTREPLY: u8 = 2;
    /// The broadcast flag.
    pub const BROADCAST: u16 = 0x8000;
}

/// The UDP header's offset in a frame with a 20-byte IPv4 header.
pub(crate) const UDP_AT: usize = ETH_HEADER_LEN + Ipv4Repr::HEADER_LEN;
/// The DHCP message's offset in such a frame.
pub(crate) const DHCP_AT: usize = UDP_AT + udp::HEADER_LEN;
/// Largest DHCP message the server sends a client: a 576-byte datagram (RFC 2131 §2).
const MAX_MESSAGE: usize = 548;
/// Room past that for a relay's Relay Agent Information option, echoed to the relay (which
/// takes it out before the client sees it, RFC 3046 §2.1).
const RELAY_INFO_ROOM: usize = 2 + 255;
/// Largest reply frame.
const MAX_REPLY: usize = DHCP_AT + MAX_MESSAGE + RELAY_INFO_ROOM;
/// Relay Agent Information (RFC 3046).
const OPTION_RELAY_INFO: u8 = 82;

/// The addresses of a UDP datagram a server or relay sends.
#[derive(Copy, Clone, Debug)]
pub(crate) struct UdpAddrs {
    /// Source and destination MAC.
    pub macs: (MacAddr, MacAddr),
    /// Source and destination IPv4 address.
    pub ips: (u32, u32),
    /// Source and destination UDP port.
    pub ports: (u16, u16),
    /// The IPv4 TTL.
    pub ttl: u8,
}

/// Write Ethernet, IPv4 (20 bytes) and UDP headers, with both checksums, in front of the
/// `len` bytes of payload at [`DHCP_AT`] of `f`; false if `f` is too short for them.
pub(crate) fn udp_headers(f: &mut [u8], a: UdpAddrs, len: usize) -> bool {
    let udp_len = udp::HEADER_LEN + len;
    let Some(f) = f.get_mut(..DHCP_AT + len) else {
        return false;
    };
    let Ok(udp_len16) = u16::try_from(udp_len) else {
        return false;
    };
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst(a.macs.1);
    eth.set_src(a.macs.0);
    eth.set_ethertype(ETHERTYPE_IPV4);
    let repr = Ipv4Repr {
        src_addr: a.ips.0,
        dst_addr: a.ips.1,
        protocol: PROTO_UDP,
        ttl: a.ttl,
        payload_len: udp_len,
    };
    repr.emit(&mut Ipv4Packet::new_unchecked(
        &mut f[ETH_HEADER_LEN..UDP_AT],
    ));
    let mut u = UdpPacket::new_unchecked(&mut f[UDP_AT..]);
    u.set_src_port(a.ports.0);
    u.set_dst_port(a.ports.1);
    u.set_len(udp_len16);
    u.fill_checksum(a.ips.0, a.ips.1);
    true
}

/// How a reply reaches its destination on the link.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum LinkDst {
    /// To this MAC (the client's, or broadcast).
    Mac(MacAddr),
    /// To the MAC of this next hop, found with ARP.
    Resolve(u32),
}

impl DhcpServer {
    /// The next hop toward `ip`: itself on the server's own subnet, else the gateway.
    fn next_hop(&self, ip: u32) -> Option<u32> {
        let own = mask(self.cfg.own.prefix_len);
        if ip & own == self.addr & own {
            Some(ip)
        } else {
            self.cfg.gateway.map(u32::from)
        }
    }

    /// Where the reply to `req` goes (RFC 2131 §4.1): its IPv4 destination, UDP port and
    /// how it reaches it; `None` if it cannot (another subnet and no gateway).
    fn reply_to(&self, req: &Request, nak: bool, yiaddr: u32) -> Option<(u32, u16, LinkDst)> {
        const BCAST: (u32, u16, LinkDst) =
            (u32::MAX, CLIENT_PORT, LinkDst::Mac(MacAddr::BROADCAST));
        Some(if req.giaddr != 0 {
            let hop = self.next_hop(req.giaddr)?;
            (req.giaddr, SERVER_PORT, LinkDst::Resolve(hop))
        } else if nak {
            BCAST
        } else if req.ciaddr != 0 {
            let hop = self.next_hop(req.ciaddr)?;
            let link = if hop == req.ciaddr {
                LinkDst::Mac(req.chaddr)
            } else {
                LinkDst::Resolve(hop)
            };
            (req.ciaddr, CLIENT_PORT, link)
        } else if req.broadcast {
            BCAST
        } else {
            (yiaddr, CLIENT_PORT, LinkDst::Mac(req.chaddr))
        })
    }

    /// Build the reply (`msg` giving `yiaddr`; an INFORM's answer if `inform`), from the
    /// settings of subnet `s`, in `pkt`'s buffer and send it.
    pub(super) fn send(
        &mut self,
        s: usize,
        req: &Request,
        (msg, yiaddr, inform): (DhcpMessageType, u32, bool),
        mut pkt: Packet,
        ctx: &mut Ctx<'_>,
    ) {
        let nak = msg == DhcpMessageType::Nak;
        let Some((dst_ip, port, link)) = self.reply_to(req, nak, yiaddr) else {
            return ctx.drop(pkt, DropReason::NoRoute);
        };
        let mut f = [0u8; MAX_REPLY];
        let Some(dlen) = self.build_dhcp(s, req, (msg, yiaddr, inform), &mut f[DHCP_AT..]) else {
            return ctx.drop(pkt, DropReason::Internal);
        };
        let dst_mac = match link {
            LinkDst::Mac(m) => m,
            // Resolved below; the queue rewrites it when ARP answers.
            LinkDst::Resolve(hop) => self.neighbors.lookup(0, hop).unwrap_or(MacAddr([0; 6])),
        };
        let addrs = UdpAddrs {
            macs: (self.cfg.mac, dst_mac),
            ips: (self.addr, dst_ip),
            ports: (SERVER_PORT, port),
            ttl: 64,
        };
        if !udp_headers(&mut f, addrs, dlen) || !pkt.set_frame(&f[..DHCP_AT + dlen]) {
            return ctx.drop(pkt, DropReason::Internal);
        }
        pkt.set_offload(None);
        crate::wire::forget(&mut pkt);
        match link {
            LinkDst::Resolve(hop) if dst_mac == MacAddr([0; 6]) => self.wait_for(hop, pkt, ctx),
            _ => ctx.emit(Gate(0), pkt),
        }
    }

    /// Keep `pkt` until ARP finds `hop`'s MAC (asking now if it is new).
    fn wait_for(&mut self, hop: u32, pkt: Packet, ctx: &mut Ctx<'_>) {
        match self.neighbors.enqueue(0, hop, 0, pkt, ctx.now) {
            Enqueued::Waiting { request: true } => {
                if self.arp_rate.allow(ctx.now) {
                    self.send_arp_request(hop, ctx);
                }
            }
            Enqueued::Waiting { request: false } => {}
            Enqueued::QueueFull(p) | Enqueued::TableFull(p) => {
                ctx.drop(p, DropReason::ArpQueueFull)
            }
        }
    }

    /// Broadcast an ARP request for `target`.
    fn send_arp_request(&mut self, target: u32, ctx: &mut Ctx<'_>) {
        let f = arp::request(self.cfg.mac, self.addr, target);
        let Some(mut p) = ctx.alloc() else {
            return ctx.count_drop(DropReason::NoBuffers);
        };
        if p.set_frame(&f) {
            self.stats.arp_requests.add(1);
            ctx.emit(Gate(0), p);
        } else {
            ctx.drop(p, DropReason::Internal);
        }
    }

    /// ARP timers: ask again for unresolved next hops (within the rate), drop the replies
    /// that waited for one that never answered (`arp_failed`).
    pub(super) fn expire_neighbors(&mut self, ctx: &mut Ctx<'_>) {
        let mut again: Vec<u32> = Vec::new();
        let mut failed: Vec<Packet> = Vec::new();
        let (now, rate) = (ctx.now, &mut self.arp_rate);
        self.neighbors.expire(
            now,
            |_, ip| {
                if rate.allow(now) {
                    again.push(ip);
                }
            },
            |_, p| failed.push(p),
        );
        for ip in again {
            self.send_arp_request(ip, ctx);
        }
        for p in failed {
            ctx.drop(p, DropReason::ArpFailed);
        }
    }

    /// Write the DHCP message into `out`; its length, or `None` if it does not fit.
    fn build_dhcp(
        &self,
        s: usize,
        req: &Request,
        (msg, yiaddr, inform): (DhcpMessageType, u32, bool),
        out: &mut [u8],
    ) -> Option<usize> {
        let sub = &self.subnets.get(s)?.cfg;
        let nak = msg == DhcpMessageType::Nak;
        out.get_mut(..BOOTP_LEN)?.fill(0);
        out[bootp::OP] = bootp::BOOTREPLY;
        out[bootp::HTYPE] = 1;
        out[bootp::HLEN] = 6;
        out[4..8].copy_from_slice(&req.xid.to_be_bytes());
        // A NAK through a relay is broadcast by the relay (RFC 2131 §4.3.2).
        if req.broadcast || (nak && req.giaddr != 0) {
            out[bootp::FLAGS..bootp::FLAGS + 2].copy_from_slice(&bootp::BROADCAST.to_be_bytes());
        }
        if inform || msg == DhcpMessageType::Ack {
            out[bootp::CIADDR..bootp::CIADDR + 4].copy_from_slice(&req.ciaddr.to_be_bytes());
        }
        if !nak {
            out[bootp::YIADDR..bootp::YIADDR + 4].copy_from_slice(&yiaddr.to_be_bytes());
        }
        out[bootp::GIADDR..bootp::GIADDR + 4].copy_from_slice(&req.giaddr.to_be_bytes());
        out[bootp::CHADDR..bootp::CHADDR + 6].copy_from_slice(&req.chaddr.0);
        out[236..240].copy_from_slice(&MAGIC.to_be_bytes());
        let mut o = BOOTP_LEN;
        // Options up to the client's 576-byte datagram, one byte kept for the end; a relay's
        // option past it.
        let mut put = |code: u8, data: &[u8], limit: usize| -> Option<()> {
            let end = o + 2 + data.len();
            if data.len() > 255 || end + 1 > limit.min(out.len()) {
                return None;
            }
            out[o] = code;
            out[o + 1] = data.len() as u8;
            out[o + 2..end].copy_from_slice(data);
            o = end;
            Some(())
        };
        let m = MAX_MESSAGE;
        put(53, &[u8::from(msg)], m)?;
        put(54, &self.addr.to_be_bytes(), m)?;
        if !nak {
            if !inform {
                let lease = sub.lease;
                let t1 = sub.renew.unwrap_or(lease / 2);
                let t2 = sub.rebind.unwrap_or(lease * 7 / 8);
                for (code, d) in [(51u8, lease), (58, t1), (59, t2)] {
                    let secs = u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
                    put(code, &secs.to_be_bytes(), m)?;
                }
            }
            put(1, &mask(sub.prefix_len).to_be_bytes(), m)?;
            if let Some(r) = sub.router {
                put(3, &r.octets(), m)?;
            }
            if !sub.dns.is_empty() {
                let mut b = [0u8; 4 * 16];
                let n = sub.dns.len().min(16);
                for (i, d) in sub.dns.iter().take(n).enumerate() {
                    b[i * 4..i * 4 + 4].copy_from_slice(&d.octets());
                }
                put(6, &b[..n * 4], m)?;
            }
            if let Some(dom) = &sub.domain {
                put(15, dom.as_bytes(), m)?;
            }
            for (code, data) in &sub.options {
                put(*code, data, m)?;
            }
        }
        if let Some(info) = &req.relay_info {
            put(OPTION_RELAY_INFO, info, MAX_MESSAGE + RELAY_INFO_ROOM)?;
        }
        *out.get_mut(o)? = 255;
        Some(o + 1)
    }
}
