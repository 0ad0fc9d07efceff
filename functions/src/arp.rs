//! ARP for Ethernet and IPv4 (RFC 826): reading a request or reply, answering a request in
//! place, and writing a request. Shared by every function that owns an IPv4 address (the
//! router's interfaces, the DHCP server).

use crate::ip::{read_u16, read_u32, ETHERTYPE_ARP};
use crate::wire::MacAddr;
use crate::wire::ETH_HEADER_LEN;

/// ARP operation: request.
pub const REQUEST: u16 = 1;
/// ARP operation: reply.
pub const REPLY: u16 = 2;
/// Length of an Ethernet frame holding an Ethernet/IPv4 ARP message (no padding).
pub const FRAME_LEN: usize = ETH_HEADER_LEN + 28;

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
        .get(ETH_HEADER_LEN..FRAME_LEN)
        .ok_or(ArpError::Truncated)?;
    if a[0..6] != [0, 1, 8, 0, 6, 4] {
        return Err(ArpError::BadHeader);
    }
    let op = read_u16(a, 6);
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&a[8..14]);
    if sha[0] & 1 == 1 || !(op == REQUEST || op == REPLY) {
        return Err(ArpError::BadHeader);
    }
    Ok(Arp {
        op,
        sha: MacAddr(sha),
        spa: read_u32(a, 14),
        tpa: read_u32(a, 24),
    })
}

/// Turn the request `req` held in `frame` into the reply that `our_mac` has `req.tpa`.
pub fn reply_in_place(frame: &mut [u8], req: &Arp, our_mac: MacAddr) {
    frame[0..6].copy_from_slice(&req.sha.0);
    frame[6..12].copy_from_slice(&our_mac.0);
    let a = &mut frame[ETH_HEADER_LEN..FRAME_LEN];
    a[6..8].copy_from_slice(&REPLY.to_be_bytes());
    a[8..14].copy_from_slice(&our_mac.0);
    a[14..18].copy_from_slice(&req.tpa.to_be_bytes());
    a[18..24].copy_from_slice(&req.sha.0);
    a[24..28].copy_from_slice(&req.spa.to_be_bytes());
}

/// A broadcast request from `mac`/`ip` for `target` (a gratuitous one when `target` is
/// `ip`).
pub fn request(mac: MacAddr, ip: u32, target: u32) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].fill(0xff);
    f[6..12].copy_from_slice(&mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac.0);
    f[28..32].copy_from_slice(&ip.to_be_bytes());
    f[38..42].copy_from_slice(&target.to_be_bytes());
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
