//! Deterministic pseudo-random numbers where a fixed seed must give the same sequence
//! (generated tables, timer jitter, tests): Marsaglia's xorshift64. Not for anything that
//! must be unpredictable.

/// Xorshift64 (Marsaglia, 13/7/17). The seed must not be 0 (0 stays 0).
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number (never ends, so not an `Iterator`'s `Option`).
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// 128 bits from two numbers, the first in the high half.
    #[inline]
    pub fn wide(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_marsaglias() {
        let mut r = XorShift(1);
        assert_eq!(r.next(), 1_082_269_761);
        let mut a = XorShift(7);
        let mut b = XorShift(7);
        let (x, y) = (a.next(), a.next());
        assert_eq!(b.wide(), (u128::from(x) << 64) | u128::from(y));
    }
}
