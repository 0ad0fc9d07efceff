//! ARP for Ethernet and IPv4 (RFC 826): reading a request or reply, answering a request in
//! place, and writing a request. Shared by every function that owns an IPv4 address (the
//! router's interfaces, the DHCP server). The bytes are read and written through
//! [`wire::ArpPacket`] and [`wire::EthernetFrame`]: the layout lives in [`wire::arp`].

use crate::ip::ETHERTYPE_ARP;
use crate::wire::{self, ArpPacket, EthernetFrame, MacAddr, ETH_HEADER_LEN};

/// ARP operation: request.
pub const REQUEST: u16 = 1;
/// ARP operation: reply.
pub const REPLY: u16 = 2;
/// Length of an Ethernet frame holding an Ethernet/IPv4 ARP message (no padding).
pub const FRAME_LEN: usize = ETH_HEADER_LEN + wire::arp::PACKET_LEN;

/// The fields of an Ethernet/IPv4 ARP message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Arp {
    /// [`REQUEST`] or [`REPLY`].
    pub op: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: u32,
    /// Target protocol address.
    pub tpa: u32,
}

/// Why a frame is not a usable ARP message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ArpError {
    /// Too short for one.
    Truncated,
    /// Not Ethernet/IPv4, an unknown operation, or a group sender address.
    BadHeader,
}

/// Read the ARP message in `frame` (an untagged Ethernet frame with EtherType ARP).
pub fn parse(frame: &[u8]) -> Result<Arp, ArpError> {
    let a = frame
        .get(ETH_HEADER_LEN..)
        .and_then(|m| ArpPacket::new_checked(m).ok())
        .ok_or(ArpError::Truncated)?;
    if !a.is_ethernet_ipv4() {
        return Err(ArpError::BadHeader);
    }
    let (op, sha) = (a.oper(), a.sha());
    if sha.is_multicast() || !(op == REQUEST || op == REPLY) {
        return Err(ArpError::BadHeader);
    }
    Ok(Arp {
        op,
        sha,
        spa: a.spa(),
        tpa: a.tpa(),
    })
}

/// Turn the request `req` held in `frame` (as [`parse`] read it) into the reply that
/// `our_mac` has `req.tpa`. A frame too short for the message is left as it is.
pub fn reply_in_place(frame: &mut [u8], req: &Arp, our_mac: MacAddr) {
    let Some(Ok(mut a)) = frame.get_mut(ETH_HEADER_LEN..).map(ArpPacket::new_checked) else {
        return;
    };
    a.set_oper(REPLY);
    a.set_sha(our_mac);
    a.set_spa(req.tpa);
    a.set_tha(req.sha);
    a.set_tpa(req.spa);
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_dst(req.sha);
    eth.set_src(our_mac);
}

/// A broadcast request from `mac`/`ip` for `target` (a gratuitous one when `target` is
/// `ip`).
pub fn request(mac: MacAddr, ip: u32, target: u32) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst(MacAddr::BROADCAST);
    eth.set_src(mac);
    eth.set_ethertype(ETHERTYPE_ARP);
    let mut a = ArpPacket::new_unchecked(&mut f[ETH_HEADER_LEN..]);
    a.set_ethernet_ipv4();
    a.set_oper(REQUEST);
    a.set_sha(mac);
    a.set_spa(ip);
    a.set_tha(MacAddr([0; 6]));
    a.set_tpa(target);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parses_and_reply_swaps_roles() {
        let us = [2, 0, 0, 0, 0, 1];
        let them = [2, 0, 0, 0, 0, 2];
        let mut f = request(MacAddr(them), 0x0a00_0002, 0x0a00_0001);
        let req = parse(&f).expect("valid");
        assert_eq!(req.op, REQUEST);
        assert_eq!((req.spa, req.tpa), (0x0a00_0002, 0x0a00_0001));
        reply_in_place(&mut f, &req, MacAddr(us));
        let rep = parse(&f).expect("valid");
        assert_eq!(rep.op, REPLY);
        assert_eq!(rep.sha, MacAddr(us));
        assert_eq!((rep.spa, rep.tpa), (0x0a00_0001, 0x0a00_0002));
        assert_eq!(&f[0..6], &them);
        assert_eq!(&f[32..38], &them);
    }

    /// The request and the reply made from it, read back through the views: every field
    /// of both headers.
    #[test]
    fn request_and_reply_read_back_through_the_views() {
        let (us, them) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let mut f = request(them, 0x0a00_0002, 0x0a00_0001);
        let eth = EthernetFrame::new_checked(&f[..]).expect("frame");
        assert_eq!(
            (eth.dst(), eth.src(), eth.ethertype()),
            (MacAddr::BROADCAST, them, ETHERTYPE_ARP)
        );
        let a = ArpPacket::new_checked(eth.payload()).expect("arp");
        assert!(a.is_ethernet_ipv4());
        assert_eq!((a.oper(), a.sha(), a.spa()), (REQUEST, them, 0x0a00_0002));
        assert_eq!((a.tha(), a.tpa()), (MacAddr([0; 6]), 0x0a00_0001));
        let req = parse(&f).expect("valid");
        reply_in_place(&mut f, &req, us);
        let eth = EthernetFrame::new_checked(&f[..]).expect("frame");
        assert_eq!(
            (eth.dst(), eth.src(), eth.ethertype()),
            (them, us, ETHERTYPE_ARP)
        );
        let a = ArpPacket::new_checked(eth.payload()).expect("arp");
        assert!(a.is_ethernet_ipv4());
        assert_eq!((a.oper(), a.sha(), a.spa()), (REPLY, us, 0x0a00_0001));
        assert_eq!((a.tha(), a.tpa()), (them, 0x0a00_0002));
        // Too short for a message: left alone, no panic.
        let mut short = [7u8; FRAME_LEN - 1];
        reply_in_place(&mut short, &req, us);
        assert_eq!(short, [7u8; FRAME_LEN - 1]);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let f = request(MacAddr([2, 0, 0, 0, 0, 2]), 1, 2);
        assert_eq!(parse(&f[..41]), Err(ArpError::Truncated));
        let mut bad = f;
        bad[17] = 0x86; // protocol type IPv6
        assert_eq!(parse(&bad), Err(ArpError::BadHeader));
        let mut bad = f;
        bad[21] = 9; // operation 9
        assert_eq!(parse(&bad), Err(ArpError::BadHeader));
        let mut bad = f;
        bad[22] = 1; // group sender
        assert_eq!(parse(&bad), Err(ArpError::BadHeader));
    }
}
