//! The switch's MAC table: open addressing with linear probing over 16-byte slots.
//!
//! Built for the switch's access pattern: lookups in bursts of up to 64, whose slots can be
//! prefetched a few frames ahead ([`MacTable::warm`]) when the table outgrows the caches
//! ([`MacTable::is_large`]), so that their cache misses overlap instead of following one
//! another. Keys are `(VLAN << 48) | MAC`; a VLAN is never 0 inside the switch, so key 0
//! marks an empty slot. The hash is one keyed folded multiply (the mixing step of ahash and
//! wyhash, done once: a MAC key is a single word) with two random 64-bit keys drawn per
//! table: a guest cannot choose MACs that collide without knowing them. Deletion shifts the
//! rest of a probe run back (no tombstones), so lookups never slow down as entries come and
//! go.

/// One slot: key, attachment, last seen (ms of the worker clock, wrapping).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// `(vlan << 48) | mac`; 0 when empty.
    pub key: u64,
    /// Milliseconds of the worker clock when last seen.
    pub last_seen_ms: u32,
    /// The gate the address was learned on.
    pub gate: u16,
}

/// A fixed-size table of at most `capacity` entries.
pub struct MacTable {
    slots: Box<[Slot]>,
    mask: usize,
    len: usize,
    capacity: usize,
    /// Hash keys: `key ^ k0` is multiplied by `k1` (odd).
    k0: u64,
    k1: u64,
}

/// Two random words from the standard library's per-process random hash keys.
fn random_keys() -> (u64, u64) {
    use std::hash::BuildHasher;
    let s = std::collections::hash_map::RandomState::new();
    (s.hash_one(0x6e66_7631u64), s.hash_one(0x6d61_6373u64) | 1)
}

impl MacTable {
    /// A table for up to `capacity` entries (slots: the next power of two of twice that).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let n = (capacity * 2).next_power_of_two().max(16);
        let (k0, k1) = random_keys();
        MacTable {
            slots: {
                let mut v = Vec::with_capacity(n);
                nfv_dataplane::advise_huge_pages(v.spare_capacity_mut());
                v.resize(n, Slot::default());
                v.into_boxed_slice()
            },
            mask: n - 1,
            len: 0,
            capacity,
            k0,
            k1,
        }
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the entries are too many to stay in a core's own caches (at worst one cache
    /// line each, more than 512 KiB): then loading a burst's slots ahead
    /// ([`MacTable::warm`]) pays for its extra pass.
    pub fn is_large(&self) -> bool {
        self.len * 64 > 512 << 10
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        let p = u128::from(key ^ self.k0) * u128::from(self.k1);
        ((p as u64) ^ ((p >> 64) as u64)) as usize & self.mask
    }

    /// Prefetch the home slot of `key`: called for a whole burst before the lookups, the
    /// cache misses overlap.
    #[inline]
    pub fn warm(&self, key: u64) {
        nfv_dataplane::prefetch(&self.slots[self.home(key)]);
    }

    #[inline]
    fn find(&self, key: u64) -> Result<usize, usize> {
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].key;
            if k == key {
                return Ok(i);
            }
            if k == 0 {
                return Err(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The entry for `key`.
    #[inline]
    pub fn get(&self, key: u64) -> Option<&Slot> {
        self.find(key).ok().map(|i| &self.slots[i])
    }

    /// The entry for `key`, writable.
    #[inline]
    pub fn get_mut(&mut self, key: u64) -> Option<&mut Slot> {
        match self.find(key) {
            Ok(i) => Some(&mut self.slots[i]),
            Err(_) => None,
        }
    }

    /// Add or update the entry for `key`; false (and no change) if it is new and the table
    /// is full, or if `key` is 0.
    #[inline]
    pub fn insert(&mut self, key: u64, gate: u16, last_seen_ms: u32) -> bool {
        if key == 0 {
            return false;
        }
        match self.find(key) {
            Ok(i) => {
                self.slots[i].gate = gate;
                self.slots[i].last_seen_ms = last_seen_ms;
            }
            Err(_) if self.len >= self.capacity => return false,
            Err(i) => {
                self.slots[i] = Slot {
                    key,
                    last_seen_ms,
                    gate,
                };
                self.len += 1;
            }
        }
        true
    }

    /// Empty slot `hole` and shift the rest of its probe run back.
    fn remove_at(&mut self, mut hole: usize) {
        let mut j = (hole + 1) & self.mask;
        loop {
            let s = self.slots[j];
            if s.key == 0 {
                break;
            }
            let home = self.home(s.key);
            // `s` may fill the hole if the hole lies on its probe path: home .. j.
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = s;
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.slots[hole] = Slot::default();
        self.len -= 1;
    }

    /// Remove every entry for which `keep` is false; returns how many went. Entries only
    /// ever move back into the slot being looked at (which is looked at again) or from slots
    /// already passed, so one pass over every slot sees every entry.
    pub fn retain(&mut self, keep: impl FnMut(&Slot) -> bool) -> usize {
        self.retain_range(0, self.slots.len(), keep).0
    }

    /// Slots in the table (a power of two).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Like [`retain`](Self::retain), but only over the `count` slots from slot `start` on
    /// (wrapping at the end): a sweep in steps. Returns how many went and the slot the next
    /// step starts at. An entry that a removal moves back from further on is looked at in this
    /// step if it lands on the slot being looked at, else (it lands further on) in a later
    /// one: a series of steps that covers every slot sees every entry.
    pub fn retain_range(
        &mut self,
        start: usize,
        count: usize,
        mut keep: impl FnMut(&Slot) -> bool,
    ) -> (usize, usize) {
        let before = self.len;
        let count = count.min(self.slots.len());
        let mut i = start & self.mask;
        for _ in 0..count {
            loop {
                let s = self.slots[i];
                if s.key == 0 || keep(&s) {
                    break;
                }
                self.remove_at(i);
            }
            i = (i + 1) & self.mask;
        }
        (before - self.len, i)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|s| s.key != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn insert_get_and_full() {
        let mut t = MacTable::new(3);
        assert!(t.insert((1 << 48) | 5, 1, 10));
        assert!(t.insert(1 << 48 | 6, 2, 10));
        assert!(t.insert(2 << 48 | 5, 3, 10));
        assert!(!t.insert(2 << 48 | 9, 4, 10), "full");
        assert!(!t.insert(0, 4, 10), "key 0 is never stored");
        assert_eq!(t.get(1 << 48 | 5).map(|s| s.gate), Some(1));
        assert_eq!(t.get(2 << 48 | 5).map(|s| s.gate), Some(3));
        assert!(t.get(3 << 48 | 5).is_none());
        assert_eq!(t.len(), 3);
    }

    /// Random inserts and removals against a HashMap, in a table small enough that probe
    /// runs are long and wrap around the end.
    #[test]
    fn matches_a_reference_map_under_churn() {
        let mut t = MacTable::new(48);
        let mut r: HashMap<u64, u16> = HashMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = ((1 + (x % 3)) << 48) | ((x >> 20) % 80);
            if x % 5 < 3 {
                let ok = t.insert(key, (round % 7) as u16, round);
                if ok {
                    r.insert(key, (round % 7) as u16);
                } else {
                    assert!(r.len() >= 48 && !r.contains_key(&key));
                }
            } else {
                let victim = key;
                let removed = t.retain(|s| s.key != victim);
                assert_eq!(removed, usize::from(r.remove(&victim).is_some()));
            }
            assert_eq!(t.len(), r.len());
            if round % 97 == 0 {
                for (k, g) in &r {
                    assert_eq!(t.get(*k).map(|s| s.gate), Some(*g), "key {k:x}");
                }
                assert_eq!(t.iter().count(), r.len());
            }
        }
        // A sweep in uneven steps that wrap around the end removes what a whole sweep would.
        let (mut removed, mut at, mut step) = (0, 5, 1);
        let mut covered = 0;
        while covered < t.slots() {
            let (gone, next) = t.retain_range(at, step, |s| s.gate % 2 == 0);
            assert_eq!(next, (at + step) % t.slots());
            removed += gone;
            covered += step;
            at = next;
            step = step * 2 + 1;
        }
        r.retain(|_, g| *g % 2 == 0);
        assert!(removed > 0);
        for (k, g) in &r {
            assert_eq!(t.get(*k).map(|s| s.gate), Some(*g));
        }
        assert_eq!(t.len(), r.len());
    }
}
