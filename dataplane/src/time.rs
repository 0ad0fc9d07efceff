//! Time as an argument: the worker reads the clock once per loop turn and passes it to every
//! node, so that ageing and timeouts are testable with a fake clock that never sleeps.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Duration;

/// Nanoseconds since the dataplane's clock started. Monotonic.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Zero: the clock's start.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp from whole seconds (for tests and configuration).
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000))
    }

    /// The time `d` after `self`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// The time source under every [`Clock`]: the CPU's time-stamp counter scaled to
/// nanoseconds where it ticks at one rate on every core (x86 invariant TSC, calibrated once
/// against the OS's monotonic clock when first used, in 10-20 ms), else the OS's monotonic
/// clock itself. Reading the TSC costs a few ns without stopping the pipeline, where
/// `clock_gettime` waits for earlier instructions to finish (`lfence; rdtsc`) and takes 6% of
/// a worker's time at 50 Mpps with three readings a burst. DPDK times its loops the same way
/// (`rte_rdtsc`); quanta does the detection and calibration.
fn source() -> &'static quanta::Clock {
    static SOURCE: OnceLock<quanta::Clock> = OnceLock::new();
    SOURCE.get_or_init(quanta::Clock::new)
}

/// The raw reading that [`Clock::global`] clocks count from.
static EPOCH: OnceLock<u64> = OnceLock::new();

/// A monotonic clock that starts at zero when made.
///
/// Each clock never goes back: a reading below the one before (counters of two cores a few
/// cycles apart, for a thread that moved) returns the one before.
#[derive(Clone, Debug)]
pub struct Clock {
    source: &'static quanta::Clock,
    start: u64,
    last: Cell<u64>,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock::counting_from(source().raw())
    }

    /// The process-wide clock: every clock made this way shares one start, so times taken
    /// on one (a generator's stamp) can be compared with times on another (a sink's).
    pub fn global() -> Self {
        Clock::counting_from(*EPOCH.get_or_init(|| source().raw()))
    }

    /// A clock counting from the raw reading `start`.
    fn counting_from(start: u64) -> Self {
        Clock {
            source: source(),
            start,
            last: Cell::new(0),
        }
    }

    /// The current time.
    #[inline]
    pub fn now(&self) -> Timestamp {
        let t = self
            .source
            .delta_as_nanos(self.start, self.source.raw())
            .max(self.last.get());
        self.last.set(t);
        Timestamp(t)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_secs(10);
        assert_eq!(t.plus(Duration::from_secs(5)), Timestamp::from_secs(15));
        assert_eq!(t.since(Timestamp::from_secs(4)), Duration::from_secs(6));
        assert_eq!(t.since(Timestamp::from_secs(40)), Duration::ZERO);
        assert_eq!(
            Timestamp(u64::MAX).plus(Duration::from_secs(1)),
            Timestamp(u64::MAX)
        );
    }

    #[test]
    fn clocks_count_nanoseconds_from_a_shared_start_and_never_go_back() {
        let (a, b) = (Clock::global(), Clock::global());
        // Bracketed by the standard library's clock on both sides, so a thread that is
        // descheduled anywhere in between cannot make the check fail.
        let outer = std::time::Instant::now();
        let t0 = a.now();
        let inner = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(100));
        let inner = inner.elapsed();
        let t1 = a.now();
        let outer = outer.elapsed();
        let counted = t1.since(t0);
        assert!(
            counted.as_secs_f64() >= inner.as_secs_f64() * 0.99
                && counted.as_secs_f64() <= outer.as_secs_f64() * 1.01,
            "counted {counted:?}, at least {inner:?}, at most {outer:?}"
        );
        assert!(b.now() >= t1, "global clocks share one start");
        assert!(Clock::new().now() < t1, "a new clock starts at zero");
        let mut last = a.now();
        for _ in 0..100_000 {
            let t = a.now();
            assert!(t >= last);
            last = t;
        }
    }
}
