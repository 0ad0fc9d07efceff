//! A mirror's counters, and the metrics they are exported as.

use nfv_dataplane::Counter;

use crate::kind::{Metric, MetricType, Stats};

/// A mirror's counters, written by its worker.
#[derive(Debug, Default)]
pub struct MirrorStats {
    /// Copies sent to the monitor.
    pub copies: Counter,
    /// Bytes of those copies.
    pub copied_bytes: Counter,
    /// Copies not made: the pool had no buffer.
    pub missed_no_buffers: Counter,
    /// Copies not made: the monitor's queue was full.
    pub missed_monitor_full: Counter,
    /// Copies not made: the monitor gate was not wired (during a reload).
    pub missed_unwired: Counter,
}

static COPIES: Metric = Metric {
    name: "nfv_mirror_copies_total",
    help: "Copies a mirror sent to its monitor.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("copies"),
};

static COPIED_BYTES: Metric = Metric {
    name: "nfv_mirror_copied_bytes_total",
    help: "Bytes of the copies a mirror sent to its monitor.",
    kind: MetricType::Counter,
    labels: &[],
    summary: None,
};

static MISSED: Metric = Metric {
    name: "nfv_mirror_missed_total",
    help: "Copies a mirror did not make, by cause (no_buffers: the pool was empty; monitor_full: the monitor's queue was full; unwired: the monitor was not linked). The mirrored frames themselves went on.",
    kind: MetricType::Counter,
    labels: &["cause"],
    summary: Some("missed"),
};

/// Every metric of a mirror.
pub(super) static METRICS: [&Metric; 3] = [&COPIES, &COPIED_BYTES, &MISSED];

impl Stats for MirrorStats {
    fn visit(&self, out: &mut dyn FnMut(&'static Metric, &[&str], u64)) {
        out(&COPIES, &[], self.copies.get());
        out(&COPIED_BYTES, &[], self.copied_bytes.get());
        out(&MISSED, &["no_buffers"], self.missed_no_buffers.get());
        out(&MISSED, &["monitor_full"], self.missed_monitor_full.get());
        out(&MISSED, &["unwired"], self.missed_unwired.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visit_reports_every_declared_metric_with_its_labels() {
        let s = MirrorStats::default();
        s.missed_no_buffers.add(4);
        let mut seen: Vec<(&str, Vec<String>, u64)> = Vec::new();
        s.visit(&mut |m, labels, v| {
            assert_eq!(labels.len(), m.labels.len(), "{}", m.name);
            seen.push((m.name, labels.iter().map(|l| l.to_string()).collect(), v));
        });
        for m in METRICS {
            assert!(
                seen.iter().any(|(n, ..)| *n == m.name),
                "{} never reported",
                m.name
            );
        }
        assert!(seen.contains(&("nfv_mirror_missed_total", vec!["no_buffers".into()], 4)));
    }
}
