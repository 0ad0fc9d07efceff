//! Placeholder longest-prefix match (a linear per-length scan), replaced by the DIR-24-8
//! table on the `lpm` branch.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Why a prefix could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LpmError {
    /// Prefix length above 32.
    PrefixLength(u8),
    /// Value above [`Lpm::MAX_VALUE`].
    ValueTooLarge(u32),
}

/// An IPv4 longest-prefix-match table.
#[derive(Default)]
pub struct Lpm {
    by_len: Vec<HashMap<u32, u32>>,
}

impl Lpm {
    /// Largest value.
    pub const MAX_VALUE: u32 = (1 << 24) - 1;
    /// An empty table.
    pub fn new() -> Lpm {
        Lpm {
            by_len: vec![HashMap::new(); 33],
        }
    }
    fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        }
    }
    /// Insert or replace.
    pub fn insert(&mut self, net: Ipv4Addr, len: u8, value: u32) -> Result<Option<u32>, LpmError> {
        if len > 32 {
            return Err(LpmError::PrefixLength(len));
        }
        if value > Self::MAX_VALUE {
            return Err(LpmError::ValueTooLarge(value));
        }
        Ok(self.by_len[len as usize].insert(u32::from(net) & Self::mask(len), value))
    }
    /// Remove.
    pub fn remove(&mut self, net: Ipv4Addr, len: u8) -> Option<u32> {
        self.by_len
            .get_mut(len as usize)?
            .remove(&(u32::from(net) & Self::mask(len)))
    }
    /// Look up.
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        (0..=32u8).rev().find_map(|l| {
            self.by_len[l as usize]
                .get(&(addr & Self::mask(l)))
                .copied()
        })
    }
    /// Look up.
    pub fn lookup_ip(&self, addr: Ipv4Addr) -> Option<u32> {
        self.lookup(u32::from(addr))
    }
    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.by_len.iter().map(HashMap::len).sum()
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
