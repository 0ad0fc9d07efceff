//! TCP headers (RFC 9293), and the four bytes every port-carrying transport starts with.

use super::{be16, be32, WireError};
use crate::ip;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// TCP flags.
pub mod flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is significant.
    pub const ACK: u8 = 0x10;
}

/// Where the fields are.
pub mod field {
    use std::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ: Range<usize> = 4..8;
    /// Acknowledgment number.
    pub const ACK: Range<usize> = 8..12;
    /// Data offset (high nibble, in 32-bit words).
    pub const DATA_OFF: usize = 12;
    /// Flags.
    pub const FLAGS: usize = 13;
    /// Window.
    pub const WINDOW: Range<usize> = 14..16;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Urgent pointer.
    pub const URGENT: Range<usize> = 18..20;
}

/// A view of a TCP segment: [`new_checked`](Self::new_checked) refuses fewer than the
/// 20 bytes of the fixed header. The data offset is read, not trusted:
/// [`header_len`](Self::header_len) reports it and [`payload`](Self::payload) is empty when
/// it points past the buffer. After it no getter can panic.
#[derive(Debug)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// View `buffer` without checking it; getters may then panic.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// View `buffer` as a TCP segment: it must hold the fixed header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(TcpPacket { buffer })
    }

    /// The bytes viewed.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ.start)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK.start)
    }

    /// Header length in bytes as the data offset says (not checked against the buffer).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flags byte (see the [`flags`](mod@flags) constants).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Window.
    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW.start)
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The data after the header (empty if the data offset points past the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len().clamp(HEADER_LEN, b.len())..]
    }

    /// True if the checksum is right for the segment (the whole buffer) from `src` to
    /// `dst` (IPv4).
    #[inline]
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = ip::pseudo_header_sum(src, dst, ip::PROTO_TCP, b.len());
        ip::fold(pseudo + u64::from(ip::sum(b))) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Set the source port (the checksum is not updated).
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&p.to_be_bytes());
    }

    /// Set the destination port (the checksum is not updated).
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&p.to_be_bytes());
    }

    /// Set the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, n: u32) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&n.to_be_bytes());
    }

    /// Set the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, n: u32) {
        self.buffer.as_mut()[field::ACK].copy_from_slice(&n.to_be_bytes());
    }

    /// Set the header length in bytes (a multiple of 4, 20 to 60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Set the flags.
    #[inline]
    pub fn set_flags(&mut self, f: u8) {
        self.buffer.as_mut()[field::FLAGS] = f;
    }

    /// Set the window.
    #[inline]
    pub fn set_window(&mut self, w: u16) {
        self.buffer.as_mut()[field::WINDOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Set the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, u: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&u.to_be_bytes());
    }

    /// Compute and store the checksum of the segment (the whole buffer) from `src` to
    /// `dst` (IPv4).
    #[inline]
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = ip::pseudo_header_sum(src, dst, ip::PROTO_TCP, b.len());
        let c = !ip::fold(pseudo + u64::from(ip::sum(b)));
        self.set_checksum(c);
    }
}

/// The source and destination ports every TCP and UDP header starts with: all a flow's
/// tuple needs, and all that is sure to be there in the 8 bytes of transport header an ICMP
/// error quotes. [`new_checked`](Self::new_checked) refuses fewer than 4 bytes.
#[derive(Debug)]
pub struct Ports<T: AsRef<[u8]>> {
    buffer: T,
}

/// Length of the two ports.
pub const PORTS_LEN: usize = 4;

impl<T: AsRef<[u8]>> Ports<T> {
    /// View the ports at the start of `buffer`: it must hold both.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < PORTS_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Ports { buffer })
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ports<T> {
    /// Set the source port.
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&p.to_be_bytes());
    }

    /// Set the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&p.to_be_bytes());
    }
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// True if the checksum is right for the segment (the whole buffer) from `src` to
    /// `dst` (IPv6).
    #[inline]
    pub fn verify_checksum_v6(&self, src: &std::net::Ipv6Addr, dst: &std::net::Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = super::ipv6::pseudo_header_sum(src, dst, ip::PROTO_TCP, b.len());
        ip::fold(pseudo + u64::from(ip::sum(b))) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Compute and store the checksum of the segment (the whole buffer) from `src` to
    /// `dst` (IPv6).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &std::net::Ipv6Addr, dst: &std::net::Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = super::ipv6::pseudo_header_sum(src, dst, ip::PROTO_TCP, b.len());
        let c = !ip::fold(pseudo + u64::from(ip::sum(b)));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prefixes_are_refused_and_fields_round_trip() {
        let mut d = [0u8; 24];
        for n in 0..HEADER_LEN {
            assert_eq!(
                TcpPacket::new_checked(&d[..n]).err(),
                Some(WireError::Truncated)
            );
        }
        for n in 0..PORTS_LEN {
            assert!(Ports::new_checked(&d[..n]).is_err());
        }
        let mut t = TcpPacket::new_checked(&mut d[..]).expect("header");
        t.set_src_port(1);
        t.set_dst_port(2);
        t.set_seq_number(3);
        t.set_ack_number(4);
        t.set_header_len(24);
        t.set_flags(flags::SYN | flags::ACK);
        t.set_window(5);
        t.set_checksum(6);
        t.set_urgent(7);
        assert_eq!((t.src_port(), t.dst_port()), (1, 2));
        assert_eq!((t.seq_number(), t.ack_number()), (3, 4));
        assert_eq!((t.header_len(), t.flags()), (24, 0x12));
        assert_eq!((t.window(), t.checksum(), t.urgent()), (5, 6, 7));
        assert!(t.payload().is_empty());
        t.set_header_len(60);
        assert!(t.payload().is_empty(), "an offset past the buffer");
        t.set_header_len(20);
        assert_eq!(t.payload().len(), 4);
        let mut p = Ports::new_checked(&mut d[..4]).expect("ports");
        assert_eq!((p.src_port(), p.dst_port()), (1, 2));
        p.set_src_port(9);
        p.set_dst_port(8);
        assert_eq!((p.src_port(), p.dst_port()), (9, 8));
    }

    #[test]
    fn fill_checksum_matches_a_written_out_sum() {
        let (src, dst) = (0x0a00_0001u32, 0xc0a8_0102u32);
        let mut d = [0u8; 23];
        d[HEADER_LEN..].copy_from_slice(b"abc");
        let mut t = TcpPacket::new_checked(&mut d[..]).expect("header");
        t.set_src_port(80);
        t.set_dst_port(40000);
        t.set_header_len(HEADER_LEN);
        t.set_flags(flags::RST | flags::ACK);
        assert!(!t.verify_checksum(src, dst));
        t.fill_checksum(src, dst);
        assert!(t.verify_checksum(src, dst));
        assert!(!t.verify_checksum(dst, src + 1), "the pseudo-header counts");
        let mut all = Vec::new();
        all.extend_from_slice(&src.to_be_bytes());
        all.extend_from_slice(&dst.to_be_bytes());
        all.extend_from_slice(&[0, ip::PROTO_TCP, 0, 23]);
        all.extend_from_slice(&d);
        assert_eq!(ip::sum(&all), 0xffff);
    }

    #[test]
    fn fill_checksum_v6_matches_a_written_out_sum() {
        let src: std::net::Ipv6Addr = "2001:db8::1".parse().expect("addr");
        let dst: std::net::Ipv6Addr = "2001:db8::2".parse().expect("addr");
        let mut d = [0u8; 21];
        d[HEADER_LEN] = b'x';
        let mut t = TcpPacket::new_checked(&mut d[..]).expect("header");
        t.set_src_port(80);
        t.set_header_len(HEADER_LEN);
        t.set_flags(flags::RST);
        t.fill_checksum_v6(&src, &dst);
        assert!(t.verify_checksum_v6(&src, &dst));
        assert!(
            !t.verify_checksum_v6(&dst, &dst),
            "the pseudo-header counts"
        );
        let mut all = Vec::new();
        all.extend_from_slice(&src.octets());
        all.extend_from_slice(&dst.octets());
        all.extend_from_slice(&[0, 0, 0, 21, 0, 0, 0, ip::PROTO_TCP]);
        all.extend_from_slice(&d);
        assert_eq!(ip::sum(&all), 0xffff);
    }
}
