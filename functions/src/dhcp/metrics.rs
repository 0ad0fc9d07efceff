//! A DHCP server's metrics: one visit over its [`DhcpStats`].

use super::DhcpStats;
use crate::kind::{Metric, MetricType, Stats};

static RECEIVED: Metric = Metric {
    name: "nfv_dhcp_received_total",
    help: "DHCP messages a server received, by type.",
    kind: MetricType::Counter,
    labels: &["type"],
    summary: Some("received"),
};

static SENT: Metric = Metric {
    name: "nfv_dhcp_sent_total",
    help: "DHCP messages a server sent, by type.",
    kind: MetricType::Counter,
    labels: &["type"],
    summary: Some("sent"),
};

static EXHAUSTED: Metric = Metric {
    name: "nfv_dhcp_pool_exhausted_total",
    help: "DISCOVERs left without an offer: no free address.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("pool_exhausted"),
};

static IGNORED: Metric = Metric {
    name: "nfv_dhcp_ignored_total",
    help: "DHCP messages not served: for another server, or of an unknown type.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("ignored"),
};

static LEASES: Metric = Metric {
    name: "nfv_dhcp_leases",
    help: "DHCP leases by state: bound (expired ones kept for their client included) or offered.",
    kind: MetricType::Gauge,
    labels: &["state"],
    summary: None,
};

static FREE: Metric = Metric {
    name: "nfv_dhcp_pool_free_addresses",
    help: "Pool addresses neither bound, offered nor declined.",
    kind: MetricType::Gauge,
    labels: &[],
    summary: Some("pool_free"),
};

static RELAYED: Metric = Metric {
    name: "nfv_dhcp_relayed_total",
    help: "DHCP messages a server received through a relay (giaddr set), served or not.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("relayed"),
};

static ARP_REQUESTS: Metric = Metric {
    name: "nfv_dhcp_arp_requests_total",
    help: "ARP requests a DHCP server sent for a next hop (a relay, its gateway).",
    kind: MetricType::Counter,
    labels: &[],
    summary: None,
};

/// Every metric of a DHCP server.
pub(super) static METRICS: [&Metric; 8] = [
    &RECEIVED,
    &SENT,
    &EXHAUSTED,
    &IGNORED,
    &RELAYED,
    &ARP_REQUESTS,
    &LEASES,
    &FREE,
];

impl Stats for DhcpStats {
    fn visit(&self, out: &mut dyn FnMut(&'static Metric, &[&str], u64)) {
        out(&LEASES, &["bound"], self.leases_bound.get());
        out(&LEASES, &["offered"], self.leases_offered.get());
        out(&FREE, &[], self.pool_free.get());
        for (t, c) in [
            ("discover", &self.discovers),
            ("request", &self.requests),
            ("release", &self.releases),
            ("decline", &self.declines),
            ("inform", &self.informs),
        ] {
            out(&RECEIVED, &[t], c.get());
        }
        for (t, c) in [
            ("offer", &self.offers),
            ("ack", &self.acks),
            ("nak", &self.naks),
        ] {
            out(&SENT, &[t], c.get());
        }
        out(&EXHAUSTED, &[], self.pool_exhausted.get());
        out(&IGNORED, &[], self.ignored.get());
        out(&RELAYED, &[], self.relayed.get());
        out(&ARP_REQUESTS, &[], self.arp_requests.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visit_reports_every_metric_with_its_labels() {
        let s = DhcpStats::default();
        s.offers.add(2);
        let mut seen = Vec::new();
        s.visit(&mut |m, labels, v| {
            assert_eq!(labels.len(), m.labels.len(), "{}", m.name);
            seen.push((m.name, labels.join(","), v));
        });
        for m in METRICS {
            assert!(seen.iter().any(|(n, ..)| *n == m.name), "{}", m.name);
        }
        assert!(seen.contains(&("nfv_dhcp_sent_total", "offer".to_string(), 2)));
    }
}
