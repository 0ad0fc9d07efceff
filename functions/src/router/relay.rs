//! DHCP relay (RFC 1542 §4, RFC 2131 §4.1), what `ip helper-address` does on a router: an
//! interface with `dhcp_relay` servers takes its clients' DHCP and hands it to servers on
//! other segments, so that one server serves many.
//!
//! - Up: a BOOTREQUEST broadcast to UDP port 67 (to 255.255.255.255 or the interface's
//!   subnet broadcast) arriving on a relay interface, or sent to one of the router's
//!   addresses by a relay further down, goes by unicast to each of the interface's servers:
//!   `giaddr` becomes the interface's address if it was 0 (else it stays: the first relay's),
//!   `hops` goes up by one, and a request that had already crossed more than 16 relays is
//!   dropped as [`DropReason::RelayHops`]. The datagram is the router's own: from the
//!   address of the interface toward the server, port 67 to port 67, leaving with TTL 64
//!   through the forwarding path (route, ARP and its queue, MTU: `no_route`, `arp_failed`
//!   and the rest as for any packet, but no ICMP error, which would be the router's own).
//! - Down: a BOOTREPLY to the router's address at port 67 from one of the servers of the
//!   interface that address belongs to (and whose `giaddr` is that address) goes to the
//!   client on that interface (RFC 1542 §5.4): broadcast (`ff:ff:ff:ff:ff:ff`,
//!   255.255.255.255) if the server set the broadcast flag (which it does for a NAK), else
//!   to `yiaddr` at `chaddr`, else (an INFORM's answer) to `ciaddr` at `chaddr`, else
//!   broadcast; no ARP is needed. It comes from the interface's address, port 67 to 68.
//!   UDP to port 67 that is neither goes on as any UDP to the router (port unreachable).
//! - The relay adds no Relay Agent Information option (82), so it has none to take out.
//!
//! Messages shorter than BOOTP's fixed fields or of the wrong `op` are `bad_header`. Each
//! relayed message is counted ([`RouterStats::dhcp_relayed_to_server`],
//! [`RouterStats::dhcp_relayed_to_client`]) and, as it leaves through the forwarding path,
//! in `forwarded` too.
//!
//! [`RouterStats::dhcp_relayed_to_server`]: super::RouterStats::dhcp_relayed_to_server
//! [`RouterStats::dhcp_relayed_to_client`]: super::RouterStats::dhcp_relayed_to_client

use std::net::Ipv4Addr;

use nfv_dataplane::{Cell, Ctx, DropReason, Gate, Packet};

use super::{NextHop, Router, RouterInterface};
use crate::dhcp::reply::{bootp, udp_headers, UdpAddrs, CLIENT_PORT, DHCP_AT, SERVER_PORT};
use crate::wire::{self, udp, Headers, MacAddr, UdpPacket, ETH_HEADER_LEN};

/// RFC 1542 §4.1.1: a request that crossed more relays than this is dropped.
pub const MAX_HOPS: u8 = 16;

/// The relay settings of a router's interfaces.
pub(super) struct Relay {
    /// Per gate, the servers it relays to (empty: none).
    servers: Vec<Vec<u32>>,
    /// Whether any interface relays.
    any: bool,
}

impl Relay {
    pub(super) fn new(interfaces: &[RouterInterface]) -> Self {
        let servers: Vec<Vec<u32>> = interfaces
            .iter()
            .map(|i| {
                // An interface without IPv4 cannot relay (the loader refuses it).
                if i.address.is_some() {
                    i.dhcp_relay.iter().map(|&s| u32::from(s)).collect()
                } else {
                    Vec::new()
                }
            })
            .collect();
        let any = servers.iter().any(|s| !s.is_empty());
        Relay { servers, any }
    }

    /// Whether interface `gate` relays.
    #[inline]
    pub(super) fn on(&self, gate: u16) -> bool {
        self.servers
            .get(usize::from(gate))
            .is_some_and(|s| !s.is_empty())
    }

    /// Whether any interface relays.
    #[inline]
    pub(super) fn any(&self) -> bool {
        self.any
    }

    /// The `dhcp_relay` cell of the `interfaces` table for `gate`.
    pub(super) fn servers_cell(&self, gate: usize) -> Cell {
        match self.servers.get(gate) {
            Some(s) if !s.is_empty() => {
                let list: Vec<String> = s.iter().map(|&a| Ipv4Addr::from(a).to_string()).collect();
                Cell::Text(list.join(" "))
            }
            _ => Cell::None,
        }
    }
}

/// A DHCP datagram in a frame: the IPv4 source and destination, where the DHCP message
/// starts and its length. `Err(None)` if the frame is not UDP to port 67 (not relay
/// business); `Err(Some(reason))` if it is and its UDP header is broken.
fn dhcp_datagram(
    frame: &[u8],
    h: &Headers,
) -> Result<(u32, u32, usize, usize), Option<DropReason>> {
    let ip = h.ipv4(frame).ok_or(None)?;
    if ip.protocol() != crate::ip::PROTO_UDP || ip.is_fragment() {
        return Err(None);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let u = UdpPacket::new_checked(ip.payload()).map_err(|_| Some(DropReason::Runt))?;
    if u.dst_port() != SERVER_PORT {
        return Err(None);
    }
    let len = usize::from(u.len())
        .checked_sub(udp::HEADER_LEN)
        .filter(|&n| n <= u.payload().len())
        .ok_or(Some(DropReason::BadHeader))?;
    Ok((src, dst, h.l4_off + udp::HEADER_LEN, len))
}

impl Router {
    /// A broadcast frame on relay interface `gate`: a client's DHCP request is relayed, the
    /// rest is not for the router.
    #[cold]
    pub(super) fn relay_broadcast(
        &mut self,
        gate: u16,
        pkt: Packet,
        h: &Headers,
        ctx: &mut Ctx<'_>,
    ) {
        if let Some(reason) = h.l3.error() {
            return ctx.drop(pkt, reason);
        }
        let (_, dst, at, len) = match dhcp_datagram(pkt.data(), h) {
            Ok(d) => d,
            Err(reason) => return ctx.drop(pkt, reason.unwrap_or(DropReason::NotForUs)),
        };
        let iface = &self.ifaces[usize::from(gate)];
        let subnet_bcast = iface.addr | !super::mask(iface.prefix_len);
        if dst != u32::MAX && (iface.prefix_len >= 31 || dst != subnet_bcast) {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        self.relay_up(gate, pkt, at, len, ctx);
    }

    /// UDP to one of the router's addresses that came in on `gate`: a server's reply to a
    /// relay interface goes down to its client, a request from a relay further down on a
    /// relay interface goes up; anything else comes back (`Err`) for the usual handling.
    #[cold]
    pub(super) fn relay_local(
        &mut self,
        gate: u16,
        pkt: Packet,
        h: &Headers,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Packet> {
        let Ok((src, dst, at, len)) = dhcp_datagram(pkt.data(), h) else {
            return Err(pkt);
        };
        match pkt.data().get(at + bootp::OP).copied() {
            Some(bootp::BOOTREPLY) => {
                let Some(out) = self
                    .relay_gate(dst)
                    .filter(|&g| self.relay.servers[usize::from(g)].contains(&src))
                else {
                    return Err(pkt);
                };
                self.relay_down(out, pkt, at, len, ctx);
                Ok(())
            }
            Some(bootp::BOOTREQUEST) if self.relay.on(gate) => {
                self.relay_up(gate, pkt, at, len, ctx);
                Ok(())
            }
            _ => Err(pkt),
        }
    }

    /// The relay interface whose address is `ip`.
    fn relay_gate(&self, ip: u32) -> Option<u16> {
        let g = self.ifaces.iter().position(|i| i.v4 && i.addr == ip)?;
        let g = u16::try_from(g).ok()?;
        self.relay.on(g).then_some(g)
    }

    /// Relay the DHCP request at `at` (`len` bytes) of `pkt`, which came in on relay
    /// interface `gate`, to each of its servers.
    fn relay_up(&mut self, gate: u16, mut pkt: Packet, at: usize, len: usize, ctx: &mut Ctx<'_>) {
        let Some(body) = pkt.data().get(at..at + len) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        if len < bootp::FIXED_LEN || body[bootp::OP] != bootp::BOOTREQUEST {
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        let hops = body[bootp::HOPS];
        if hops > MAX_HOPS {
            return ctx.drop(pkt, DropReason::RelayHops);
        }
        let giaddr = crate::ip::read_u32(body, bootp::GIADDR);
        let own = self.ifaces[usize::from(gate)].addr;
        // The message alone behind 42 bytes of headers to be written.
        if !(pkt.pull_front(at - DHCP_AT) && pkt.set_len(DHCP_AT + len)) {
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        pkt.set_offload(None);
        wire::forget(&mut pkt);
        let d = pkt.data_mut();
        d[DHCP_AT + bootp::HOPS] = hops + 1;
        if giaddr == 0 {
            d[DHCP_AT + bootp::GIADDR..DHCP_AT + bootp::GIADDR + 4]
                .copy_from_slice(&own.to_be_bytes());
        }
        let n = self.relay.servers[usize::from(gate)].len();
        let mut pkt = Some(pkt);
        for k in 0..n {
            let server = self.relay.servers[usize::from(gate)][k];
            let p = if k + 1 == n {
                pkt.take()
            } else {
                self.relay_copy(pkt.as_ref(), ctx)
            };
            if let Some(p) = p {
                self.relay_to(gate, server, p, len, ctx);
            }
        }
    }

    /// A copy of `pkt` for one more server; `None` (counted) without a buffer.
    fn relay_copy(&mut self, pkt: Option<&Packet>, ctx: &mut Ctx<'_>) -> Option<Packet> {
        let pkt = pkt?;
        let Some(mut c) = ctx.alloc() else {
            ctx.count_drop(DropReason::NoBuffers);
            return None;
        };
        if c.copy_from(pkt) {
            Some(c)
        } else {
            ctx.drop(c, DropReason::Oversize);
            None
        }
    }

    /// Send `pkt` (a relayed request of `len` bytes at [`DHCP_AT`]) to `server` through
    /// the forwarding path, from the address of the interface it leaves by.
    fn relay_to(&mut self, gate: u16, server: u32, mut pkt: Packet, len: usize, ctx: &mut Ctx<'_>) {
        let Some(v) = self.lpm.lookup(server) else {
            return ctx.drop(pkt, DropReason::NoRoute);
        };
        let (out, next) = match self.nexthops.get(v as usize) {
            Some(&NextHop::Connected(g)) => (g, server),
            Some(&NextHop::Via(g, ip)) => (g, ip),
            _ => return ctx.drop(pkt, DropReason::NoRoute),
        };
        let iface = &self.ifaces[usize::from(out)];
        if DHCP_AT - ETH_HEADER_LEN + len > iface.mtu {
            return ctx.drop(pkt, DropReason::TooBig);
        }
        let addrs = UdpAddrs {
            macs: (iface.mac, iface.mac),
            ips: (iface.addr, server),
            ports: (SERVER_PORT, SERVER_PORT),
            // The forwarding path takes one off: it leaves with 64.
            ttl: 65,
        };
        if !udp_headers(pkt.data_mut(), addrs, len) {
            return ctx.drop(pkt, DropReason::Internal);
        }
        self.stats.dhcp_relayed_to_server.add(1);
        self.send(gate, (out, next, v), pkt, ETH_HEADER_LEN, ctx);
    }

    /// Relay the server's reply at `at` (`len` bytes) of `pkt` to its client on relay
    /// interface `out`.
    fn relay_down(&mut self, out: u16, mut pkt: Packet, at: usize, len: usize, ctx: &mut Ctx<'_>) {
        let Some(body) = pkt.data().get(at..at + len) else {
            return ctx.drop(pkt, DropReason::BadHeader);
        };
        if len < bootp::FIXED_LEN {
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        let iface = &self.ifaces[usize::from(out)];
        if crate::ip::read_u32(body, bootp::GIADDR) != iface.addr {
            return ctx.drop(pkt, DropReason::NotForUs);
        }
        let broadcast = crate::ip::read_u16(body, bootp::FLAGS) & bootp::BROADCAST != 0;
        let (yiaddr, ciaddr) = (
            crate::ip::read_u32(body, bootp::YIADDR),
            crate::ip::read_u32(body, bootp::CIADDR),
        );
        let ethernet = body[bootp::HTYPE] == 1 && body[bootp::HLEN] == 6;
        let mut chaddr = MacAddr([0; 6]);
        chaddr
            .0
            .copy_from_slice(&body[bootp::CHADDR..bootp::CHADDR + 6]);
        let unicast_ok = ethernet && !chaddr.is_multicast() && chaddr != MacAddr([0; 6]);
        let (dst_mac, dst_ip) = match (broadcast, yiaddr, ciaddr) {
            (false, y, _) if y != 0 && unicast_ok => (chaddr, y),
            (false, 0, c) if c != 0 && unicast_ok => (chaddr, c),
            _ => (MacAddr::BROADCAST, u32::MAX),
        };
        let addrs = UdpAddrs {
            macs: (iface.mac, dst_mac),
            ips: (iface.addr, dst_ip),
            ports: (SERVER_PORT, CLIENT_PORT),
            ttl: 64,
        };
        if !(pkt.pull_front(at - DHCP_AT) && pkt.set_len(DHCP_AT + len)) {
            return ctx.drop(pkt, DropReason::BadHeader);
        }
        pkt.set_offload(None);
        wire::forget(&mut pkt);
        if !udp_headers(pkt.data_mut(), addrs, len) {
            return ctx.drop(pkt, DropReason::Internal);
        }
        self.stats.dhcp_relayed_to_client.add(1);
        ctx.emit(Gate(out), pkt);
    }
}
