//! A switch's metrics: one visit over its [`SwitchStats`].

use super::SwitchStats;
use crate::kind::{Metric, MetricType, Stats};

static ENTRIES: Metric = Metric {
    name: "nfv_switch_mac_entries",
    help: "Entries in a switch's MAC table.",
    kind: MetricType::Gauge,
    labels: &[],
    summary: Some("entries"),
};

static LEARNED: Metric = Metric {
    name: "nfv_switch_mac_learned_total",
    help: "MAC addresses a switch learned (new entries).",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("learned"),
};

static MOVED: Metric = Metric {
    name: "nfv_switch_mac_moved_total",
    help: "MAC addresses seen again on another attachment.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("moved"),
};

static AGED: Metric = Metric {
    name: "nfv_switch_mac_aged_total",
    help: "MAC table entries removed by ageing.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("aged"),
};

static TABLE_FULL: Metric = Metric {
    name: "nfv_switch_mac_table_full_total",
    help: "MAC addresses not learned because the table was full.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("table_full"),
};

static FLOODED: Metric = Metric {
    name: "nfv_switch_flooded_packets_total",
    help: "Frames a switch flooded (once per frame, not per copy).",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("flooded"),
};

/// Every metric of a switch.
pub(super) static METRICS: [&Metric; 6] =
    [&ENTRIES, &LEARNED, &MOVED, &AGED, &TABLE_FULL, &FLOODED];

impl Stats for SwitchStats {
    fn visit(&self, out: &mut dyn FnMut(&'static Metric, &[&str], u64)) {
        out(&ENTRIES, &[], self.entries.get());
        out(&LEARNED, &[], self.learned.get());
        out(&MOVED, &[], self.moved.get());
        out(&AGED, &[], self.aged.get());
        out(&TABLE_FULL, &[], self.table_full.get());
        out(&FLOODED, &[], self.flooded.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visit_reports_every_metric_once() {
        let s = SwitchStats::default();
        s.entries.set(3);
        let mut seen = Vec::new();
        s.visit(&mut |m, _, v| seen.push((m.name, v)));
        let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(), names);
        assert!(seen.contains(&("nfv_switch_mac_entries", 3)));
    }
}
