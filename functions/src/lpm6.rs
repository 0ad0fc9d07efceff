//! IPv6 longest-prefix match: a poptrie (Asai and Ohara, "Poptrie: A Compressed Trie with
//! Population Count for Fast and Scalable Software IP Routing Table Lookup", SIGCOMM 2015).
//!
//! Structure. A direct-pointing top level of 65,536 entries is indexed by the first 16 bits
//! of the address; an entry is either a value (a leaf) or the index of a node. A node
//! covers the next 6 bits (stride 6, 64 children) with two 64-bit bitmaps:
//! - `vector`: bit `i` set means child `i` is a node, the one at
//!   `base1 + popcount(vector & ((2 << i) - 1)) - 1` in the flat node array: the children
//!   of a node are contiguous, so one base index and a population count find any of them;
//! - `leafvec`: bit `i` set means a run of equal leaves starts at child `i`; a leaf child
//!   `i` holds the value at `base0 + popcount(leafvec & ((2 << i) - 1)) - 1` in the flat
//!   leaf array. Consecutive leaf children with the same value (child nodes between them
//!   skipped) share one leaf entry, so the node where a /48 ends inside a /32 stores at
//!   most 3 leaves (the /32 before it, the /48, the /32 after it), not 64.
//!
//! The 112 bits after the top level take `ceil(112 / 6) = 19` nodes at most; the last node
//! sees the last 4 bits of the address and 2 zero bits after them (a /128 fills 4 of its
//! children, which leaf compression folds into one entry). A lookup is one top-level read,
//! then a loop of at most 19 steps (one node read, one population count) that ends at the
//! first leaf: no allocation, no recursion, no lock. Addresses under a /48 take 6 steps
//! (16 + 6 * 6 = 52 bits), under a /32 3.
//!
//! The population count is one instruction only if the build targets a CPU that has it
//! (`-C target-feature=+popcnt`, or `target-cpu=x86-64-v2` and later); for the default
//! `x86-64` target the compiler spells it out in a dozen instructions on every step,
//! which about doubles the time of a lookup (the bench: 27 against 13 ns in a table of 10
//! routes, 37 against 24 ns in one of 200,000 prefixes).
//!
//! Memory: the top level is 256 KiB of `u32`; a node is 24 bytes (two bitmaps, two `u32`
//! bases), a leaf 4. A subtree whose every address would get the same value as the child
//! entry above it (a more specific prefix with its covering prefix's value) is not built:
//! the entry stays a leaf. [`Lpm6::memory_bytes`] gives the total; the bench reports it
//! for a 200,000-prefix table (`cargo bench -p nfv-bench --bench lpm6`).
//!
//! Updates. A poptrie is not updated in place here: [`Lpm6Builder`] keeps the prefixes in
//! a sorted map (`insert` and `remove` only change the map) and [`Lpm6Builder::build`]
//! compiles an immutable [`Lpm6`] in one pass over the sorted prefixes (linear in the
//! number of prefixes times the depth: well under a second for a full Internet table).
//! Only an [`Lpm6`] can be looked up, so a lookup can never see a table that is out of
//! date with its prefixes: a router compiles its table at start and at each reload
//! ([`Lpm6::to_builder`] starts from a table's prefixes) and swaps the result in.
//!
//! Values are `u32` up to [`Lpm6::MAX_VALUE`] (2^31 - 2): bit 31 of a top-level entry
//! marks a node, and 2^31 - 1 stands for "no route".

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv6Addr;

use nfv_dataplane::XorShift;

/// Largest number of prefixes a table holds: 16,777,216 (80 times a full Internet table).
/// Within it, node and leaf indices fit their `u32` fields (below `2^31`): a prefix passes
/// through at most 19 nodes, so there are at most 19 nodes a prefix, and a node has at
/// most one leaf run plus two for each prefix that ends in it.
pub const MAX_PREFIXES: usize = 1 << 24;

/// Bits resolved by the top level.
const TOP_BITS: u32 = 16;
/// Bits resolved by a node.
const STRIDE: u32 = 6;
/// A top-level entry with this bit set is a node index.
const NODE: u32 = 1 << 31;
/// The value of addresses that no prefix covers.
const NO_ROUTE: u32 = NODE - 1;

/// Why a prefix could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lpm6Error {
    /// Prefix length above 128.
    PrefixLength(u8),
    /// Value above [`Lpm6::MAX_VALUE`].
    ValueTooLarge(u32),
    /// The table already holds [`MAX_PREFIXES`] prefixes.
    Full,
}

impl std::fmt::Display for Lpm6Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lpm6Error::PrefixLength(l) => write!(f, "prefix length {l} is above 128"),
            Lpm6Error::ValueTooLarge(v) => write!(f, "value {v} is above {}", Lpm6::MAX_VALUE),
            Lpm6Error::Full => write!(f, "more than {MAX_PREFIXES} IPv6 prefixes"),
        }
    }
}

impl std::error::Error for Lpm6Error {}

#[inline]
fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// One node: 64 children, each a leaf or a node.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// Bit `i`: child `i` is a node.
    vector: u64,
    /// Bit `i`: a run of equal leaves starts at child `i`.
    leafvec: u64,
    /// Index of the node's first leaf run in `leaves`.
    base0: u32,
    /// Index of the node's first child node in `nodes`.
    base1: u32,
}

/// The rank mask of child `i`: bits `0..=i`.
#[inline]
fn upto(i: u32) -> u64 {
    // 2 << 63 is 0, and 0 - 1 is all ones: every bit.
    (2u64 << i).wrapping_sub(1)
}

/// The prefixes of a table, to change and then [`build`](Self::build) into an [`Lpm6`].
#[derive(Debug, Clone, Default)]
pub struct Lpm6Builder {
    rules: BTreeMap<(u128, u8), u32>,
}

impl Lpm6Builder {
    /// No prefixes.
    pub fn new() -> Lpm6Builder {
        Lpm6Builder::default()
    }

    /// Map `net/len` (host bits ignored) to `value`; returns the value it had.
    pub fn insert(&mut self, net: Ipv6Addr, len: u8, value: u32) -> Result<Option<u32>, Lpm6Error> {
        if len > 128 {
            return Err(Lpm6Error::PrefixLength(len));
        }
        if value > Lpm6::MAX_VALUE {
            return Err(Lpm6Error::ValueTooLarge(value));
        }
        let key = (u128::from(net) & mask(len), len);
        if self.rules.len() >= MAX_PREFIXES && !self.rules.contains_key(&key) {
            return Err(Lpm6Error::Full);
        }
        Ok(self.rules.insert(key, value))
    }

    /// Remove `net/len` (host bits ignored); returns its value. Once built, addresses it
    /// covered fall back to the next shorter prefix that covers them.
    pub fn remove(&mut self, net: Ipv6Addr, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        self.rules.remove(&(u128::from(net) & mask(len), len))
    }

    /// The value of exactly `net/len`.
    pub fn get(&self, net: Ipv6Addr, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        self.rules.get(&(u128::from(net) & mask(len), len)).copied()
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every prefix with its value, sorted by (address, length).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv6Addr, u8, u32)> + '_ {
        self.rules
            .iter()
            .map(|(&(n, l), &v)| (Ipv6Addr::from(n), l, v))
    }

    /// Compile the prefixes into a table to look up.
    pub fn build(&self) -> Lpm6 {
        let rules: Vec<Rule> = self
            .rules
            .iter()
            .map(|(&(net, len), &value)| Rule { net, len, value })
            .collect();
        let mut c = Compiler {
            nodes: Vec::new(),
            leaves: Vec::new(),
        };
        let top = c.top(&rules);
        Lpm6 {
            top,
            nodes: settle(c.nodes),
            leaves: settle(c.leaves),
            rules,
        }
    }
}

/// `v` in an allocation of its exact size that asked for huge pages before it was written:
/// the nodes of a big table are read at random.
fn settle<T: Copy>(v: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    nfv_dataplane::advise_huge_pages(out.spare_capacity_mut());
    out.extend_from_slice(&v);
    out
}

/// A prefix as the compiler and [`Lpm6`] keep it: `net` masked, sorted by (net, len).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    net: u128,
    len: u8,
    value: u32,
}

/// Child `i` of the node that starts at bit `off` (`off < 128`) for `addr`: the 6 bits
/// from `off`, zero past bit 127.
#[inline]
fn child(addr: u128, off: u32) -> usize {
    ((addr << off) >> (128 - STRIDE)) as usize
}

/// True if every prefix of `rules` maps to `value`: the subtree they would make gives
/// every address `value`, so it need not be built.
fn uniform(rules: &[Rule], value: u32) -> bool {
    rules.iter().all(|r| r.value == value)
}

/// The runs of `rules` in the same `slot`, each with its slot.
fn runs<'a, F: Fn(&Rule) -> usize + 'a>(
    rules: &'a [Rule],
    slot: F,
) -> impl Iterator<Item = (usize, &'a [Rule])> + 'a {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = rules.get(i)?;
        let s = slot(first);
        let n = rules[i..].iter().take_while(|r| slot(r) == s).count();
        let run = &rules[i..i + n];
        i += n;
        Some((s, run))
    })
}

/// Builds the nodes and leaves. Rules are sorted by (net, len): a prefix comes before every
/// longer prefix inside it, so painting children in that order leaves each one with its
/// longest match; and the prefixes under one child are contiguous, the ones that end in
/// this node (shorter, starting at the child's first address) first.
struct Compiler {
    nodes: Vec<Node>,
    leaves: Vec<u32>,
}

impl Compiler {
    /// The top level for `rules` (all of them), building the nodes under it.
    fn top(&mut self, rules: &[Rule]) -> Vec<u32> {
        let mut top = vec![NO_ROUTE; 1 << TOP_BITS];
        for r in rules.iter().filter(|r| u32::from(r.len) <= TOP_BITS) {
            let first = (r.net >> (128 - TOP_BITS)) as usize;
            let n = 1usize << (TOP_BITS - u32::from(r.len));
            top[first..first + n].fill(r.value);
        }
        for (slot, run) in runs(rules, |r| (r.net >> (128 - TOP_BITS)) as usize) {
            let below = run
                .iter()
                .position(|r| u32::from(r.len) > TOP_BITS)
                .map_or(&[][..], |p| &run[p..]);
            if !below.is_empty() && !uniform(below, top[slot]) {
                let idx = self.nodes.len();
                self.nodes.push(Node::default());
                self.node(idx, below, TOP_BITS, top[slot]);
                top[slot] = NODE | idx as u32;
            }
        }
        top
    }

    /// Build node `idx` (already allocated) for the bits from `off`: `rules` are the
    /// prefixes under it, all longer than `off`; `inherited` is the value of the longest
    /// prefix above that covers it.
    fn node(&mut self, idx: usize, rules: &[Rule], off: u32, inherited: u32) {
        let end = off + STRIDE;
        let mut slots = [inherited; 64];
        for r in rules.iter().filter(|r| u32::from(r.len) <= end) {
            let first = child(r.net, off);
            let n = 1usize << (end - u32::from(r.len));
            slots[first..first + n].fill(r.value);
        }
        // The children that hold longer prefixes, in order.
        let mut kids: [(usize, &[Rule]); 64] = [(0, &[]); 64];
        let mut nkids = 0;
        let mut vector = 0u64;
        for (slot, run) in runs(rules, move |r| child(r.net, off)) {
            let below = run
                .iter()
                .position(|r| u32::from(r.len) > end)
                .map_or(&[][..], |p| &run[p..]);
            if !below.is_empty() && !uniform(below, slots[slot]) {
                kids[nkids] = (slot, below);
                nkids += 1;
                vector |= 1 << slot;
            }
        }
        // Leaf runs: a new one wherever a leaf child differs from the leaf child before it.
        let base0 = self.leaves.len();
        let mut leafvec = 0u64;
        let mut last = None;
        for (i, &v) in slots.iter().enumerate() {
            if vector & (1 << i) == 0 && last != Some(v) {
                leafvec |= 1 << i;
                self.leaves.push(v);
                last = Some(v);
            }
        }
        let base1 = self.nodes.len();
        self.nodes.resize(base1 + nkids, Node::default());
        self.nodes[idx] = Node {
            vector,
            leafvec,
            base0: base0 as u32,
            base1: base1 as u32,
        };
        for (k, &(slot, below)) in kids[..nkids].iter().enumerate() {
            self.node(base1 + k, below, end, slots[slot]);
        }
    }
}

/// An IPv6 longest-prefix-match table mapping prefixes to values, immutable: build one
/// with [`Lpm6Builder`] or [`Lpm6::from_routes`].
#[derive(Clone)]
pub struct Lpm6 {
    top: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<u32>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lpm6")
            .field("prefixes", &self.len())
            .field("nodes", &self.nodes())
            .field("leaves", &self.leaves())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl Default for Lpm6 {
    fn default() -> Self {
        Self::new()
    }
}

impl Lpm6 {
    /// Largest value a prefix can map to.
    pub const MAX_VALUE: u32 = NO_ROUTE - 1;

    /// An empty table.
    pub fn new() -> Lpm6 {
        Lpm6Builder::new().build()
    }

    /// A table of `routes` (`net`, `len`, `value`); a prefix given twice keeps the last value.
    pub fn from_routes(
        routes: impl IntoIterator<Item = (Ipv6Addr, u8, u32)>,
    ) -> Result<Lpm6, Lpm6Error> {
        let mut b = Lpm6Builder::new();
        for (net, len, value) in routes {
            b.insert(net, len, value)?;
        }
        Ok(b.build())
    }

    /// A builder that holds this table's prefixes, to change them and build anew.
    pub fn to_builder(&self) -> Lpm6Builder {
        Lpm6Builder {
            rules: self
                .rules
                .iter()
                .map(|r| ((r.net, r.len), r.value))
                .collect(),
        }
    }

    /// The value of the longest prefix holding `addr` (host byte order).
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        let e = self.top[(addr >> (128 - TOP_BITS)) as usize];
        let v = if e & NODE == 0 {
            e
        } else {
            let mut n = &self.nodes[(e & !NODE) as usize];
            let mut a = addr << TOP_BITS;
            // At most 19 steps: each moves 6 bits down, and a node at bit 124 has no child
            // nodes.
            loop {
                let i = (a >> (128 - STRIDE)) as u32;
                if n.vector & (1 << i) == 0 {
                    let k = (n.leafvec & upto(i)).count_ones() as usize;
                    break self.leaves[n.base0 as usize + k - 1];
                }
                let k = (n.vector & upto(i)).count_ones() as usize;
                n = &self.nodes[n.base1 as usize + k - 1];
                a <<= STRIDE;
            }
        };
        (v != NO_ROUTE).then_some(v)
    }

    /// [`lookup`](Self::lookup) for an `Ipv6Addr`.
    #[inline]
    pub fn lookup_ip(&self, addr: Ipv6Addr) -> Option<u32> {
        self.lookup(u128::from(addr))
    }

    /// The value of exactly `net/len` (host bits ignored).
    pub fn get(&self, net: Ipv6Addr, len: u8) -> Option<u32> {
        if len > 128 {
            return None;
        }
        let key = (u128::from(net) & mask(len), len);
        let i = self
            .rules
            .binary_search_by(|r| (r.net, r.len).cmp(&key))
            .ok()?;
        Some(self.rules[i].value)
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every prefix with its value, sorted by (address, length).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv6Addr, u8, u32)> + '_ {
        self.rules
            .iter()
            .map(|r| (Ipv6Addr::from(r.net), r.len, r.value))
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Number of leaf entries (runs of equal leaves).
    pub fn leaves(&self) -> usize {
        self.leaves.len()
    }

    /// Bytes of the lookup structure: top level, nodes and leaves (not the prefix list
    /// kept for [`get`](Self::get) and [`iter`](Self::iter)).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(self.top.as_slice())
            + std::mem::size_of_val(self.nodes.as_slice())
            + std::mem::size_of_val(self.leaves.as_slice())
    }
}

/// `n` distinct prefixes shaped like the IPv6 Internet table, the same for the same `seed`
/// (for benchmarks: the `lpm6` bench and the `router6-full` scenario).
///
/// All lie in 2000::/3, under the regional registries' blocks (2001::/16, 2400::/12,
/// 2600::/12, 2800::/12, 2a00::/12, 2c00::/12). As in the real table they come in
/// allocations with more specifics inside: one draw in eight makes a new allocation (a /32,
/// a quarter of them a /29-/31), announced itself seven times in ten; every other draw is a
/// more specific inside a random allocation: a /48 17 times in 30, a /44 3 in 30, a /40 or
/// a /36 1 in 30, any of /33-/47 5 in 30, any of /56-/64 3 in 30. Overall about half /48,
/// a tenth /29-/32, three tenths /33-/47 and a tenth /56-/64. The list is in the order
/// drawn (not sorted); a prefix appears once.
pub fn internet_like(n: usize, seed: u64) -> Vec<(Ipv6Addr, u8)> {
    const REGIONS: [(u128, u8); 6] = [
        (0x2001 << 112, 16),
        (0x2400 << 112, 12),
        (0x2600 << 112, 12),
        (0x2800 << 112, 12),
        (0x2a00 << 112, 12),
        (0x2c00 << 112, 12),
    ];
    // xorshift never leaves 0: start elsewhere.
    let mut r = XorShift(seed | 1);
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut allocs: Vec<(u128, u8)> = Vec::new();
    while out.len() < n {
        let (d, bits) = (r.next(), r.wide());
        let (net, len) = if allocs.is_empty() || d % 8 == 0 {
            let (base, blen) = REGIONS[(d >> 8) as usize % REGIONS.len()];
            let len = match (d >> 16) % 16 {
                0..=1 => 29,
                2 => 30 + (d >> 24) as u8 % 2,
                3 => 31,
                _ => 32,
            };
            let net = (base | (bits >> blen)) & mask(len);
            allocs.push((net, len));
            if (d >> 32) % 10 >= 7 {
                continue;
            }
            (net, len)
        } else {
            let (base, blen) = allocs[(d >> 8) as usize % allocs.len()];
            let len = match (d >> 40) % 30 {
                0..=16 => 48,
                17..=19 => 44,
                20 => 40,
                21 => 36,
                22..=26 => 33 + (d >> 48) as u8 % 15,
                _ => 56 + (d >> 48) as u8 % 9,
            };
            ((base | (bits >> blen)) & mask(len), len)
        };
        if seen.insert((net, len)) {
            out.push((Ipv6Addr::from(net), len));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().expect("address")
    }

    fn at(t: &Lpm6, s: &str) -> Option<u32> {
        t.lookup_ip(ip(s))
    }

    fn table(routes: &[(&str, u8, u32)]) -> Lpm6 {
        Lpm6::from_routes(routes.iter().map(|&(n, l, v)| (ip(n), l, v))).expect("routes")
    }

    #[test]
    fn empty_table() {
        let t = Lpm6::new();
        assert!(t.is_empty());
        assert_eq!(at(&t, "::"), None);
        assert_eq!(at(&t, "2001:db8::1"), None);
        assert_eq!(t.lookup(u128::MAX), None);
        assert_eq!(t.nodes(), 0);
        assert_eq!(t.memory_bytes(), 4 << 16);
        assert_eq!(
            format!("{t:?}"),
            "Lpm6 { prefixes: 0, nodes: 0, leaves: 0, memory_bytes: 262144 }"
        );
    }

    #[test]
    fn default_route_and_host_routes() {
        let mut b = Lpm6Builder::new();
        assert_eq!(b.insert(Ipv6Addr::UNSPECIFIED, 0, 7), Ok(None));
        let t = b.build();
        assert_eq!(at(&t, "::"), Some(7));
        assert_eq!(at(&t, "2001:db8::1"), Some(7));
        assert_eq!(t.lookup(u128::MAX), Some(7));
        assert_eq!(t.nodes(), 0, "a /0 is the top level only");
        for h in [
            "2001:db8::1",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::5",
        ] {
            assert_eq!(b.insert(ip(h), 128, 9), Ok(None));
        }
        let t = b.build();
        assert_eq!(
            t.nodes(),
            3 * 19,
            "a host route is a chain of 19 nodes (:: and ::5 share theirs)"
        );
        for h in [
            "2001:db8::1",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::5",
        ] {
            let a = u128::from(ip(h));
            assert_eq!(t.lookup(a), Some(9), "{h}");
            assert_eq!(t.lookup(a ^ 1), Some(7), "{h} last bit flipped");
            assert_eq!(t.lookup(a ^ 2), Some(7), "{h} bit 126 flipped");
            assert_eq!(t.lookup(a ^ (1 << 127)), Some(7), "{h} first bit flipped");
        }
        assert_eq!(at(&t, "::2"), Some(7));
        assert_eq!(b.remove(Ipv6Addr::UNSPECIFIED, 0), Some(7));
        let t = b.build();
        assert_eq!(at(&t, "2001:db8::1"), Some(9));
        assert_eq!(at(&t, "2001:db8::2"), None);
        assert_eq!(at(&t, "::5"), Some(9));
        assert_eq!(at(&t, "::1"), None);
    }

    /// Prefixes nested at every kind of boundary: the top level's (16), a node's (22 =
    /// 16 + 6), the last node's (124) and the address's end.
    #[test]
    fn nested_prefixes_at_every_boundary() {
        let base = u128::from(ip("2001:db8:aaaa:5555:ffff:0:1234:5678"));
        let lens = [
            0u8, 15, 16, 17, 21, 22, 23, 28, 29, 48, 121, 122, 123, 124, 125, 127, 128,
        ];
        // Forwards, backwards, shuffled: the build does not depend on insertion order, but
        // the builder's map must not either.
        let orders: [Vec<usize>; 3] = [
            (0..lens.len()).collect(),
            (0..lens.len()).rev().collect(),
            (0..lens.len()).map(|i| (i * 7) % lens.len()).collect(),
        ];
        for order in &orders {
            let mut b = Lpm6Builder::new();
            for &i in order {
                let l = lens[i];
                assert_eq!(
                    b.insert(Ipv6Addr::from(base), l, 100 + u32::from(l)),
                    Ok(None)
                );
            }
            let t = b.build();
            check_nested(&t, base, &lens);
            // Take them away one by one, from the middle out; each time the addresses it
            // held fall back to the next shorter prefix.
            let mut left = lens.to_vec();
            while !left.is_empty() {
                let l = left.remove(left.len() / 2);
                assert_eq!(b.remove(Ipv6Addr::from(base), l), Some(100 + u32::from(l)));
                assert_eq!(b.remove(Ipv6Addr::from(base), l), None, "already gone");
                check_nested(&b.build(), base, &left);
            }
            assert!(b.is_empty());
        }
    }

    /// The address at `base` with bit `b` (0 = the first) flipped has the value of the
    /// longest of `lens` no longer than `b`.
    fn check_nested(t: &Lpm6, base: u128, lens: &[u8]) {
        let want = |bits: u32| {
            lens.iter()
                .filter(|&&l| u32::from(l) <= bits)
                .max()
                .map(|&l| 100 + u32::from(l))
        };
        assert_eq!(t.lookup(base), want(128));
        for b in 0..128u32 {
            let a = base ^ (1 << (127 - b));
            assert_eq!(t.lookup(a), want(b), "bit {b} flipped, lengths {lens:?}");
        }
        // Every host bit of a prefix changed: still inside it.
        for &l in lens {
            assert!(
                t.lookup(base ^ !mask(l)) >= Some(100 + u32::from(l)),
                "the host bits of /{l} changed still match at least /{l}"
            );
        }
    }

    #[test]
    fn longer_prefix_inside_shorter_and_back_out() {
        let t = table(&[
            ("2001:db8::", 32, 1),
            ("2001:db8:1::", 48, 2),
            ("2001:db8:1:2::", 64, 3),
            ("2001:db8:1:2:3::", 80, 2),
            ("2001:db8:1:4::", 62, 4),
        ]);
        assert_eq!(at(&t, "2001:db8::1"), Some(1));
        assert_eq!(at(&t, "2001:db8:0:ffff::"), Some(1));
        assert_eq!(at(&t, "2001:db8:1::"), Some(2));
        assert_eq!(at(&t, "2001:db8:1:1:ffff:ffff:ffff:ffff"), Some(2));
        assert_eq!(at(&t, "2001:db8:1:2::"), Some(3));
        assert_eq!(at(&t, "2001:db8:1:2:2:ffff:ffff:ffff"), Some(3));
        assert_eq!(at(&t, "2001:db8:1:2:3::9"), Some(2));
        assert_eq!(at(&t, "2001:db8:1:2:4::"), Some(3));
        assert_eq!(at(&t, "2001:db8:1:3::"), Some(2));
        assert_eq!(at(&t, "2001:db8:1:4::"), Some(4));
        assert_eq!(at(&t, "2001:db8:1:7:ffff::"), Some(4));
        assert_eq!(at(&t, "2001:db8:1:8::"), Some(2));
        assert_eq!(at(&t, "2001:db8:2::"), Some(1));
        assert_eq!(at(&t, "2001:db9::"), None);
        assert_eq!(at(&t, "2001:db7:ffff::"), None);
    }

    #[test]
    fn a_more_specific_with_its_covering_value_builds_nothing() {
        let t = table(&[("2001:db8::", 32, 1), ("2001:db8:1::", 48, 1)]);
        let lone = table(&[("2001:db8::", 32, 1)]);
        assert_eq!(t.nodes(), lone.nodes());
        assert_eq!(t.memory_bytes(), lone.memory_bytes());
        assert_eq!(at(&t, "2001:db8:1::1"), Some(1));
        assert_eq!(t.len(), 2, "both are kept as prefixes");
    }

    #[test]
    fn leaf_runs_are_shared() {
        // A /48 in a /32: nodes at bits 16, 22, 28 (where the /32 ends), 34, 40, 46 (where
        // the /48 ends).
        let t = table(&[("2001:db8::", 32, 1), ("2001:db8:1234::", 48, 2)]);
        assert_eq!(at(&t, "2001:db8:1234::"), Some(2));
        assert_eq!(at(&t, "2001:db8:1233:ffff::"), Some(1));
        assert_eq!(at(&t, "2001:db8:1235::"), Some(1));
        assert_eq!(t.nodes(), 6);
        // Leaf runs skip the child between them: the nodes at 16, 22, 34 and 40 have one
        // run (no route, no route, the /32, the /32) around their child; the one at 28 has
        // three (no route, the /32 after its child, no route); the one at 46 two (the /48
        // on its first 4 children, the /32). Not 6 * 64 - 5.
        assert_eq!(t.leaves(), 1 + 1 + 3 + 1 + 1 + 2);
    }

    #[test]
    fn replace_host_bits_get_iter_and_errors() {
        let mut b = Lpm6Builder::new();
        assert_eq!(b.insert(ip("2001:db8::77"), 32, 1), Ok(None));
        assert_eq!(b.get(ip("2001:db8::"), 32), Some(1));
        assert_eq!(
            b.get(ip("2001:db8:ffff::"), 32),
            Some(1),
            "host bits ignored"
        );
        assert_eq!(b.insert(ip("2001:db8::"), 32, 2), Ok(Some(1)));
        assert_eq!(
            b.insert(ip("2001:db8::"), 129, 1),
            Err(Lpm6Error::PrefixLength(129))
        );
        assert_eq!(
            b.insert(ip("2001:db8::"), 48, Lpm6::MAX_VALUE + 1),
            Err(Lpm6Error::ValueTooLarge(Lpm6::MAX_VALUE + 1))
        );
        assert_eq!(b.insert(ip("2001:db8:1::"), 48, Lpm6::MAX_VALUE), Ok(None));
        assert_eq!(b.insert(ip("::1"), 128, 0), Ok(None));
        assert_eq!(
            b.insert(ip("2001:db8::"), 16, 5),
            Ok(None),
            "stored as 2001::/16"
        );
        assert_eq!(b.len(), 4);
        assert_eq!(b.remove(ip("2001:db8::"), 129), None);
        assert_eq!(b.get(ip("2001:db8::"), 129), None);
        let t = b.build();
        assert_eq!(at(&t, "2001:db8:1::5"), Some(Lpm6::MAX_VALUE));
        assert_eq!(at(&t, "2001:db8:2::5"), Some(2));
        assert_eq!(at(&t, "2001:db9::"), Some(5));
        assert_eq!(at(&t, "::1"), Some(0), "value 0 is a value");
        assert_eq!(t.len(), 4);
        assert!(!t.is_empty());
        assert_eq!(t.get(ip("2001:db8:1:2::"), 48), Some(Lpm6::MAX_VALUE));
        assert_eq!(t.get(ip("2001:db8:1::"), 47), None);
        assert_eq!(t.get(ip("2001::"), 16), Some(5));
        assert_eq!(t.get(ip("::"), 200), None);
        let all = vec![
            (ip("::1"), 128, 0),
            (ip("2001::"), 16, 5),
            (ip("2001:db8::"), 32, 2),
            (ip("2001:db8:1::"), 48, Lpm6::MAX_VALUE),
        ];
        assert_eq!(t.iter().collect::<Vec<_>>(), all);
        assert_eq!(b.iter().collect::<Vec<_>>(), all);
        let mut again = t.to_builder();
        assert_eq!(again.remove(ip("2001:db8::"), 32), Some(2));
        let t2 = again.build();
        assert_eq!(at(&t2, "2001:db8:2::5"), Some(5));
        assert_eq!(
            at(&t, "2001:db8:2::5"),
            Some(2),
            "the old table is unchanged"
        );
        assert_eq!(
            Lpm6::from_routes([(ip("::"), 130, 1)]).map(|t| t.len()),
            Err(Lpm6Error::PrefixLength(130))
        );
        assert_eq!(
            Lpm6Error::PrefixLength(130).to_string(),
            "prefix length 130 is above 128"
        );
    }

    use XorShift as Rng;

    /// The longest of `rules` holding `a`, by a scan of them all.
    fn naive(rules: &[(u128, u8, u32)], a: u128) -> Option<u32> {
        rules
            .iter()
            .filter(|&&(n, l, _)| a & mask(l) == n)
            .max_by_key(|&&(_, l, _)| l)
            .map(|&(_, _, v)| v)
    }

    /// Random prefixes of every length, clustered so that they nest: a few short ones,
    /// the rest inside earlier ones.
    fn random_rules(r: &mut Rng, n: usize) -> Vec<(u128, u8, u32)> {
        let mut b = Lpm6Builder::new();
        let mut rules: Vec<(u128, u8, u32)> = Vec::new();
        while rules.len() < n {
            let x = r.next();
            let len = match x % 10 {
                0 => (x >> 8) as u8 % 129,
                1..=3 => 16 + (x >> 8) as u8 % 16,
                4..=7 => 32 + (x >> 8) as u8 % 33,
                _ => 64 + (x >> 8) as u8 % 65,
            };
            let bits = r.wide();
            let net = if rules.is_empty() || (x >> 40) & 3 == 0 {
                bits
            } else {
                // Inside (or beside) an earlier prefix.
                let (n, l, _) = rules[(x >> 16) as usize % rules.len()];
                n | bits.checked_shr(u32::from(l)).unwrap_or(0)
            } & mask(len);
            // Few values, so that runs and equal subtrees are common.
            let v = (r.next() % 5) as u32;
            if b.insert(Ipv6Addr::from(net), len, v)
                .expect("insert")
                .is_none()
            {
                rules.push((net, len, v));
            }
        }
        rules
    }

    fn compare(t: &Lpm6, rules: &[(u128, u8, u32)], r: &mut Rng) {
        for _ in 0..2000 {
            let a = r.wide();
            assert_eq!(t.lookup(a), naive(rules, a), "{}", Ipv6Addr::from(a));
        }
        for &(n, l, _) in rules {
            let last = n | !mask(l);
            let inside = n | (r.wide() & !mask(l));
            let mut probes = vec![n, last, inside];
            if l > 0 {
                probes.push(n.wrapping_sub(1)); // just before
                probes.push(last.wrapping_add(1)); // just after
                probes.push(inside ^ (1 << (128 - u32::from(l)))); // the sibling prefix
            }
            for a in probes {
                assert_eq!(
                    t.lookup(a),
                    naive(rules, a),
                    "{} near {}/{l}",
                    Ipv6Addr::from(a),
                    Ipv6Addr::from(n)
                );
            }
        }
    }

    #[test]
    fn random_prefixes_agree_with_a_naive_table() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut rules = random_rules(&mut r, 4000);
        let mut b = Lpm6Builder::new();
        for &(n, l, v) in &rules {
            b.insert(Ipv6Addr::from(n), l, v).expect("insert");
        }
        let t = b.build();
        assert_eq!(t.len(), rules.len());
        let mut sorted = rules.clone();
        sorted.sort_unstable_by_key(|&(n, l, _)| (n, l));
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            sorted
                .iter()
                .map(|&(n, l, v)| (Ipv6Addr::from(n), l, v))
                .collect::<Vec<_>>()
        );
        for &(n, l, v) in &rules {
            assert_eq!(t.get(Ipv6Addr::from(n), l), Some(v));
        }
        compare(&t, &rules, &mut r);
        // Remove a random half (the default route too if it is there), then add a default.
        let mut kept = Vec::new();
        for (n, l, v) in rules {
            if r.next().is_multiple_of(2) {
                assert_eq!(b.remove(Ipv6Addr::from(n), l), Some(v));
            } else {
                kept.push((n, l, v));
            }
        }
        rules = kept;
        let t = b.build();
        assert_eq!(t.len(), rules.len());
        compare(&t, &rules, &mut r);
        if b.insert(Ipv6Addr::UNSPECIFIED, 0, 4242)
            .expect("default")
            .is_none()
        {
            rules.push((0, 0, 4242));
        } else if let Some(d) = rules.iter_mut().find(|d| d.1 == 0) {
            d.2 = 4242;
        }
        compare(&b.build(), &rules, &mut r);
    }

    #[test]
    fn internet_like_tables() {
        let list = internet_like(20_000, 7);
        assert_eq!(list, internet_like(20_000, 7), "the same for the same seed");
        assert_ne!(list, internet_like(20_000, 8));
        let distinct: HashSet<_> = list.iter().collect();
        assert_eq!(distinct.len(), list.len());
        let mut by_len = [0usize; 129];
        for &(net, len) in &list {
            assert_eq!(u128::from(net) >> 125, 1, "{net}/{len} in 2000::/3");
            assert_eq!(u128::from(net) & !mask(len), 0, "{net}/{len} host bits");
            by_len[len as usize] += 1;
        }
        let share = |lens: std::ops::RangeInclusive<usize>| {
            lens.map(|l| by_len[l]).sum::<usize>() * 100 / list.len()
        };
        assert!((40..=60).contains(&share(48..=48)), "{by_len:?}");
        assert!(share(29..=32) >= 5, "{by_len:?}");
        assert!(share(33..=47) >= 15, "{by_len:?}");
        assert!(share(56..=64) >= 2, "{by_len:?}");
        assert_eq!(share(0..=28) + share(65..=128), 0, "{by_len:?}");
        // And the table agrees with the naive one on a sample.
        let rules: Vec<(u128, u8, u32)> = list
            .iter()
            .take(3000)
            .enumerate()
            .map(|(i, &(n, l))| (u128::from(n), l, i as u32 % 16))
            .collect();
        let t = Lpm6::from_routes(rules.iter().map(|&(n, l, v)| (Ipv6Addr::from(n), l, v)))
            .expect("routes");
        compare(&t, &rules, &mut Rng(99));
    }
}
