//! A NAT's metrics: one visit over its [`NatStats`].

use super::NatStats;
use crate::kind::{Metric, MetricType, Stats};

macro_rules! metric {
    ($id:ident, $name:expr, $kind:ident, $summary:expr, $help:expr) => {
        static $id: Metric = Metric {
            name: $name,
            help: $help,
            kind: MetricType::$kind,
            labels: &[],
            summary: Some($summary),
        };
    };
}

metric!(
    SESSIONS,
    "nfv_nat_sessions",
    Gauge,
    "sessions",
    "Live NAT sessions."
);
metric!(
    CREATED,
    "nfv_nat_sessions_created_total",
    Counter,
    "created",
    "NAT sessions created."
);
metric!(
    EXPIRED,
    "nfv_nat_sessions_expired_total",
    Counter,
    "expired",
    "NAT sessions expired."
);
metric!(
    TRANSLATED,
    "nfv_nat_translated_packets_total",
    Counter,
    "translated",
    "Packets a NAT translated."
);
metric!(
    PASSED,
    "nfv_nat_passed_packets_total",
    Counter,
    "passed",
    "Packets a NAT passed without translation (ARP, non-IPv4, the router's own traffic)."
);
metric!(
    ICMP_ERRORS,
    "nfv_nat_icmp_errors_translated_total",
    Counter,
    "icmp_errors",
    "ICMP errors a NAT translated."
);
metric!(
    NO_PORTS,
    "nfv_nat_no_ports_total",
    Counter,
    "no_ports",
    "New flows a NAT refused for want of an outside port."
);
metric!(
    TABLE_FULL,
    "nfv_nat_table_full_total",
    Counter,
    "table_full",
    "New flows a NAT refused because its session table was full."
);

static FRAGMENTS: [Metric; 3] = crate::fragments::metrics!("nat");

/// Every metric of a NAT, in the exit summary's order.
pub(super) static METRICS: [&Metric; 11] = [
    &SESSIONS,
    &CREATED,
    &EXPIRED,
    &TRANSLATED,
    &PASSED,
    &ICMP_ERRORS,
    &NO_PORTS,
    &TABLE_FULL,
    &FRAGMENTS[0],
    &FRAGMENTS[1],
    &FRAGMENTS[2],
];

impl Stats for NatStats {
    fn visit(&self, out: &mut dyn FnMut(&'static Metric, &[&str], u64)) {
        out(&SESSIONS, &[], self.sessions.get());
        out(&CREATED, &[], self.created.get());
        out(&EXPIRED, &[], self.expired.get());
        out(&TRANSLATED, &[], self.translated.get());
        out(&PASSED, &[], self.passed.get());
        out(&ICMP_ERRORS, &[], self.icmp_errors.get());
        out(&NO_PORTS, &[], self.no_ports.get());
        out(&TABLE_FULL, &[], self.table_full.get());
        self.fragments.visit(&FRAGMENTS, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visit_reports_every_metric_once_in_order() {
        let s = NatStats::default();
        s.translated.add(3);
        let mut seen = Vec::new();
        s.visit(&mut |m, _, v| seen.push((m.name, v)));
        let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(), names);
        assert!(seen.contains(&("nfv_nat_translated_packets_total", 3)));
    }
}
