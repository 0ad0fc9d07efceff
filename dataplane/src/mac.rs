//! The Ethernet MAC address: one type for configuration, tables, logs and `show` output.
//!
//! Frame code keeps reading and writing the six bytes directly ([`MacAddr::octets`] or the
//! public field); a `MacAddr` is a plain `[u8; 6]` with no other state, so converting costs
//! nothing on the packet path.

use std::fmt;
use std::str::FromStr;

/// An Ethernet MAC address. Displays (and parses) as six lowercase hex pairs separated by
/// colons, `02:00:00:00:00:01`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The six bytes, in wire order.
    #[inline]
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// True for group (multicast and broadcast) addresses.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// True for individual (unicast) addresses: the group bit is clear.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The address in the low 48 bits of a u64.
    #[inline]
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The address from the low 48 bits of a u64.
    pub fn from_u64(v: u64) -> Self {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl From<[u8; 6]> for MacAddr {
    #[inline]
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl From<MacAddr> for [u8; 6] {
    #[inline]
    fn from(m: MacAddr) -> Self {
        m.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address: it must be six groups of exactly two hex digits
/// (either case) separated by colons, `aa:bb:cc:dd:ee:ff`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ParseMacError;

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address (expected six two-digit hex groups like 02:00:00:00:00:01)")
    }
}

impl std::error::Error for ParseMacError {}

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut groups = s.split(':');
        for b in &mut out {
            let g = groups.next().ok_or(ParseMacError)?.as_bytes();
            let [hi, lo] = *g else {
                return Err(ParseMacError);
            };
            *b = (hex_digit(hi).ok_or(ParseMacError)? << 4) | hex_digit(lo).ok_or(ParseMacError)?;
        }
        if groups.next().is_some() {
            return Err(ParseMacError);
        }
        Ok(MacAddr(out))
    }
}

/// The value of one ASCII hex digit (either case).
fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lowercase_colon_separated() {
        let m = MacAddr([0x02, 0xAB, 0, 0x0f, 0x10, 0xff]);
        assert_eq!(m.to_string(), "02:ab:00:0f:10:ff");
        assert_eq!(format!("{m:?}"), "02:ab:00:0f:10:ff");
        assert_eq!(MacAddr::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
    }

    #[test]
    fn parse_round_trips() {
        for m in [
            MacAddr([0; 6]),
            MacAddr::BROADCAST,
            MacAddr([0x02, 0xaa, 0, 0, 0, 1]),
            MacAddr([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]),
        ] {
            assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
            assert_eq!(MacAddr::from_u64(m.to_u64()), m);
            assert_eq!(MacAddr::from(m.octets()), m);
        }
    }

    #[test]
    fn parse_accepts_either_case() {
        assert_eq!(
            "AA:bb:Cc:dD:0e:F0".parse::<MacAddr>(),
            Ok(MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0x0e, 0xf0]))
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for s in [
            "",
            ":",
            ":::::",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02:00:00:00:00:01:",
            ":02:00:00:00:00:01",
            "2:00:00:00:00:01",
            "002:00:00:00:00:01",
            "02-00-00-00-00-01",
            "0200.0000.0001",
            "g2:00:00:00:00:01",
            "02:00:00:00:00:0x",
            "+2:00:00:00:00:01",
            " 02:00:00:00:00:01",
            "é2:00:00:00:00:01",
            "02:00:00:00:00:é",
            "\u{0}\u{0}:00:00:00:00:01",
        ] {
            assert_eq!(s.parse::<MacAddr>(), Err(ParseMacError), "{s:?}");
        }
        assert!(!ParseMacError.to_string().is_empty());
    }

    #[test]
    fn group_bit() {
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_unicast());
        assert!(!MacAddr([0x02, 0, 0, 0, 0, 1]).is_multicast());
    }
}
