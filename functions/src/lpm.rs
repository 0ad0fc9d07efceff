//! IPv4 longest-prefix match: the DIR-24-8 table (as in DPDK's `rte_lpm`).
//!
//! A first-level table of 2^24 entries is indexed by the top 24 bits of the address. An
//! entry holds a value and the length (depth) of the prefix that set it, or points to a
//! second-level group of 256 entries indexed by the last 8 bits, for the /24s that hold a
//! longer prefix. A lookup is one read, or two for addresses under a prefix longer than
//! /24: no loop, no allocation, no lock.
//!
//! Memory: the first level is 64 MiB of `u32` allocated zeroed (`vec![0; N]`, so the
//! kernel maps pages only when an insert first writes them: a table of a few routes costs
//! a few pages); each second-level group is 1 KiB, at most [`MAX_GROUPS`] of them, reused
//! through a free list.
//!
//! Updates keep every prefix in a rule store (one hash map per length) so that removing a
//! prefix can restore what the next shorter covering prefix says. Inserting or removing a
//! prefix of length `l <= 24` writes `2^(24-l)` first-level entries (a /8: 65536); longer
//! prefixes write at most 256 second-level entries. Entries of longer prefixes are never
//! overwritten by shorter ones: each entry remembers its depth.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Largest number of second-level groups (/24s holding a longer prefix): 64 MiB of them.
pub const MAX_GROUPS: usize = 1 << 16;

const EXT: u32 = 1 << 31;
const VALID: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 24;
const VALUE_MASK: u32 = (1 << 24) - 1;

/// Why a prefix could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LpmError {
    /// Prefix length above 32.
    PrefixLength(u8),
    /// Value above [`Lpm::MAX_VALUE`].
    ValueTooLarge(u32),
    /// Every second-level group is in use ([`MAX_GROUPS`] /24s hold longer prefixes).
    Full,
}

impl std::fmt::Display for LpmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LpmError::PrefixLength(l) => write!(f, "prefix length {l} is above 32"),
            LpmError::ValueTooLarge(v) => write!(f, "value {v} is above {}", Lpm::MAX_VALUE),
            LpmError::Full => write!(
                f,
                "more than {MAX_GROUPS} /24s hold prefixes longer than /24"
            ),
        }
    }
}

impl std::error::Error for LpmError {}

/// An IPv4 longest-prefix-match table mapping prefixes to values.
pub struct Lpm {
    tbl24: Vec<u32>,
    tbl8: Vec<u32>,
    free_groups: Vec<u32>,
    rules: Vec<HashMap<u32, u32, ahash::RandomState>>,
}

impl Default for Lpm {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

#[inline]
fn entry(len: u8, value: u32) -> u32 {
    VALID | (u32::from(len) << DEPTH_SHIFT) | value
}

#[inline]
fn depth(e: u32) -> u8 {
    ((e >> DEPTH_SHIFT) & 0x3f) as u8
}

impl Lpm {
    /// Largest value a prefix can map to.
    pub const MAX_VALUE: u32 = VALUE_MASK;

    /// An empty table.
    pub fn new() -> Lpm {
        Lpm {
            tbl24: {
                // Zeroed memory comes untouched from the kernel: advise before first use.
                let mut t = vec![0; 1 << 24];
                nfv_dataplane::advise_huge_pages(&mut t);
                t
            },
            tbl8: Vec::new(),
            free_groups: Vec::new(),
            rules: (0..=32)
                .map(|_| HashMap::with_hasher(ahash::RandomState::new()))
                .collect(),
        }
    }

    /// Map `net/len` (host bits ignored) to `value`; returns the value it had.
    pub fn insert(&mut self, net: Ipv4Addr, len: u8, value: u32) -> Result<Option<u32>, LpmError> {
        if len > 32 {
            return Err(LpmError::PrefixLength(len));
        }
        if value > Self::MAX_VALUE {
            return Err(LpmError::ValueTooLarge(value));
        }
        let net = u32::from(net) & mask(len);
        if len > 24
            && self.tbl24[(net >> 8) as usize] & EXT == 0
            && self.free_groups.is_empty()
            && self.tbl8.len() / 256 >= MAX_GROUPS
        {
            return Err(LpmError::Full);
        }
        let old = self.rules[len as usize].insert(net, value);
        self.write(net, len, entry(len, value), |e| {
            e & VALID == 0 || depth(e) <= len
        });
        Ok(old)
    }

    /// Remove `net/len`; returns its value. Addresses it covered fall back to the next
    /// shorter prefix that covers them.
    pub fn remove(&mut self, net: Ipv4Addr, len: u8) -> Option<u32> {
        if len > 32 {
            return None;
        }
        let net = u32::from(net) & mask(len);
        let old = self.rules[len as usize].remove(&net)?;
        let cover = (0..len)
            .rev()
            .find_map(|l| {
                self.rules[l as usize]
                    .get(&(net & mask(l)))
                    .map(|&v| entry(l, v))
            })
            .unwrap_or(0);
        self.write(net, len, cover, |e| e & VALID != 0 && depth(e) == len);
        Some(old)
    }

    /// Set every entry of `net/len` for which `replace` says yes to `new`, then give back
    /// second-level groups that no longer hold anything longer than /24.
    fn write(&mut self, net: u32, len: u8, new: u32, replace: impl Fn(u32) -> bool) {
        if len <= 24 {
            let first = (net >> 8) as usize;
            let n = 1usize << (24 - len);
            for i in first..first + n {
                let e = self.tbl24[i];
                if e & EXT != 0 {
                    let g = (e & VALUE_MASK) as usize;
                    for x in &mut self.tbl8[g * 256..g * 256 + 256] {
                        if replace(*x) {
                            *x = new;
                        }
                    }
                    self.collapse(i);
                } else if replace(e) {
                    self.tbl24[i] = new;
                }
            }
        } else {
            let i = (net >> 8) as usize;
            let e = self.tbl24[i];
            let g = if e & EXT != 0 {
                (e & VALUE_MASK) as usize
            } else {
                if new & VALID == 0 {
                    return; // removing from a /24 that holds nothing longer
                }
                let g = match self.free_groups.pop() {
                    Some(g) => g as usize,
                    None => {
                        self.tbl8.resize(self.tbl8.len() + 256, 0);
                        self.tbl8.len() / 256 - 1
                    }
                };
                self.tbl8[g * 256..g * 256 + 256].fill(e);
                self.tbl24[i] = EXT | g as u32;
                g
            };
            let first = (net & 0xff) as usize;
            let n = 1usize << (32 - len);
            for x in &mut self.tbl8[g * 256 + first..g * 256 + first + n] {
                if replace(*x) {
                    *x = new;
                }
            }
            self.collapse(i);
        }
    }

    /// If the group behind `tbl24[i]` holds no prefix longer than /24, fold it back.
    fn collapse(&mut self, i: usize) {
        let e = self.tbl24[i];
        if e & EXT == 0 {
            return;
        }
        let g = (e & VALUE_MASK) as usize;
        let group = &self.tbl8[g * 256..g * 256 + 256];
        let first = group[0];
        if depth(first) <= 24 && group.iter().all(|&x| x == first) {
            self.tbl24[i] = first;
            self.free_groups.push(g as u32);
        }
    }

    /// The value of the longest prefix holding `addr` (host byte order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let mut e = self.tbl24[(addr >> 8) as usize];
        if e & EXT != 0 {
            let g = (e & VALUE_MASK) as usize;
            e = self.tbl8[g * 256 + (addr & 0xff) as usize];
        }
        (e & VALID != 0).then_some(e & VALUE_MASK)
    }

    /// [`lookup`](Self::lookup) for an `Ipv4Addr`.
    #[inline]
    pub fn lookup_ip(&self, addr: Ipv4Addr) -> Option<u32> {
        self.lookup(u32::from(addr))
    }

    /// The value of exactly `net/len`.
    pub fn get(&self, net: Ipv4Addr, len: u8) -> Option<u32> {
        self.rules
            .get(len as usize)?
            .get(&(u32::from(net) & mask(len)))
            .copied()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.rules.iter().map(HashMap::len).sum()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Second-level groups in use.
    pub fn groups(&self) -> usize {
        self.tbl8.len() / 256 - self.free_groups.len()
    }

    /// Every prefix with its value, sorted by (address, length).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, u8, u32)> + '_ {
        let mut v: Vec<(u32, u8, u32)> = self
            .rules
            .iter()
            .enumerate()
            .flat_map(|(l, m)| m.iter().map(move |(&n, &v)| (n, l as u8, v)))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(n, l, v)| (Ipv4Addr::from(n), l, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    fn at(t: &Lpm, s: &str) -> Option<u32> {
        t.lookup_ip(ip(s))
    }

    #[test]
    fn default_route_and_host_route() {
        let mut t = Lpm::new();
        assert_eq!(at(&t, "1.2.3.4"), None);
        assert_eq!(t.insert(ip("0.0.0.0"), 0, 7), Ok(None));
        assert_eq!(at(&t, "1.2.3.4"), Some(7));
        assert_eq!(at(&t, "255.255.255.255"), Some(7));
        assert_eq!(t.insert(ip("9.9.9.9"), 32, 9), Ok(None));
        assert_eq!(at(&t, "9.9.9.9"), Some(9));
        assert_eq!(at(&t, "9.9.9.8"), Some(7));
        assert_eq!(t.remove(ip("0.0.0.0"), 0), Some(7));
        assert_eq!(at(&t, "1.2.3.4"), None);
        assert_eq!(at(&t, "9.9.9.9"), Some(9));
        assert_eq!(t.remove(ip("9.9.9.9"), 32), Some(9));
        assert_eq!(t.groups(), 0, "the group went back");
        assert!(t.is_empty());
    }

    #[test]
    fn nested_prefixes_in_any_order() {
        let nets = [
            ("0.0.0.0", 0, 1),
            ("10.0.0.0", 8, 2),
            ("10.1.0.0", 16, 3),
            ("10.1.2.0", 24, 4),
            ("10.1.2.128", 25, 5),
            ("10.1.2.200", 32, 6),
        ];
        let probes = [
            ("11.0.0.1", 1),
            ("10.9.0.1", 2),
            ("10.1.9.1", 3),
            ("10.1.2.1", 4),
            ("10.1.2.130", 5),
            ("10.1.2.200", 6),
            ("10.1.2.201", 5),
        ];
        // Insert forwards and backwards; remove from the middle out.
        for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [3, 5, 0, 4, 1, 2]] {
            let mut t = Lpm::new();
            for &i in &order {
                let (n, l, v) = nets[i];
                assert_eq!(t.insert(ip(n), l, v), Ok(None));
            }
            for (a, v) in probes {
                assert_eq!(at(&t, a), Some(v), "{a} after inserting in {order:?}");
            }
            assert_eq!(t.remove(ip("10.1.2.128"), 25), Some(5));
            assert_eq!(at(&t, "10.1.2.130"), Some(4));
            assert_eq!(at(&t, "10.1.2.200"), Some(6));
            assert_eq!(t.remove(ip("10.1.0.0"), 16), Some(3));
            assert_eq!(at(&t, "10.1.9.1"), Some(2));
            assert_eq!(at(&t, "10.1.2.1"), Some(4));
            assert_eq!(t.remove(ip("10.1.2.0"), 24), Some(4));
            assert_eq!(at(&t, "10.1.2.1"), Some(2));
            assert_eq!(at(&t, "10.1.2.200"), Some(6));
            assert_eq!(t.remove(ip("10.1.2.200"), 32), Some(6));
            assert_eq!(t.groups(), 0);
            assert_eq!(at(&t, "10.1.2.200"), Some(2));
            assert_eq!(t.remove(ip("10.1.2.200"), 32), None, "already gone");
        }
    }

    #[test]
    fn replace_host_bits_and_errors() {
        let mut t = Lpm::new();
        assert_eq!(t.insert(ip("192.168.1.77"), 24, 1), Ok(None));
        assert_eq!(t.get(ip("192.168.1.0"), 24), Some(1));
        assert_eq!(t.insert(ip("192.168.1.0"), 24, 2), Ok(Some(1)));
        assert_eq!(at(&t, "192.168.1.5"), Some(2));
        assert_eq!(
            t.insert(ip("1.0.0.0"), 33, 1),
            Err(LpmError::PrefixLength(33))
        );
        assert_eq!(
            t.insert(ip("1.0.0.0"), 8, Lpm::MAX_VALUE + 1),
            Err(LpmError::ValueTooLarge(Lpm::MAX_VALUE + 1))
        );
        assert_eq!(t.insert(ip("1.0.0.0"), 8, Lpm::MAX_VALUE), Ok(None));
        assert_eq!(at(&t, "1.2.3.4"), Some(Lpm::MAX_VALUE));
        let all: Vec<_> = t.iter().collect();
        assert_eq!(
            all,
            vec![
                (ip("1.0.0.0"), 8, Lpm::MAX_VALUE),
                (ip("192.168.1.0"), 24, 2)
            ]
        );
    }

    use crate::testframes::Rng;

    /// Internet-like lengths: mostly /24, many /16-/23, some longer, few shorter.
    fn prefix(r: &mut Rng) -> (u32, u8) {
        let x = r.next();
        let len = match x % 1000 {
            0..=599 => 24,
            600..=949 => 16 + (x >> 10) as u8 % 8,
            950..=989 => 25 + (x >> 10) as u8 % 8,
            _ => 8 + (x >> 10) as u8 % 8,
        };
        ((x >> 32) as u32 & mask(len), len)
    }

    fn naive(rules: &[HashMap<u32, u32>], a: u32) -> Option<u32> {
        (0..=32u8)
            .rev()
            .find_map(|l| rules[l as usize].get(&(a & mask(l))).copied())
    }

    #[test]
    fn a_million_random_prefixes_agree_with_a_naive_table() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut t = Lpm::new();
        let mut rules: Vec<HashMap<u32, u32>> = vec![HashMap::new(); 33];
        let mut list = Vec::new();
        while list.len() < 1_000_000 {
            let (n, l) = prefix(&mut r);
            let v = (r.next() % 1000) as u32;
            if rules[l as usize].insert(n, v).is_none() {
                list.push((n, l));
            }
            t.insert(Ipv4Addr::from(n), l, v).expect("insert");
        }
        t.insert(Ipv4Addr::UNSPECIFIED, 0, 4242).expect("default");
        rules[0].insert(0, 4242);
        assert_eq!(t.len(), list.len() + 1);
        let check = |t: &Lpm, rules: &[HashMap<u32, u32>], r: &mut Rng, list: &[(u32, u8)]| {
            for _ in 0..200_000 {
                let a = r.next() as u32;
                assert_eq!(t.lookup(a), naive(rules, a), "{}", Ipv4Addr::from(a));
            }
            for &(n, l) in list.iter().step_by(7) {
                let last = n | !mask(l);
                assert_eq!(t.lookup(n), naive(rules, n));
                assert_eq!(t.lookup(last), naive(rules, last));
            }
        };
        check(&t, &rules, &mut r, &list);
        // Remove a random half.
        let mut kept = Vec::new();
        for (n, l) in list {
            if r.next().is_multiple_of(2) {
                let v = rules[l as usize].remove(&n);
                assert_eq!(t.remove(Ipv4Addr::from(n), l), v);
            } else {
                kept.push((n, l));
            }
        }
        check(&t, &rules, &mut r, &kept);
    }
}
