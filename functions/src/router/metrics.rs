//! The metrics a router's counters are exported as.

use super::RouterStats;
use crate::kind::{Metric, MetricType, Stats};

static ROUTES: Metric = Metric {
    name: "nfv_router_routes",
    help:
        "Prefixes in a router's tables of both families (connected, static, local and broadcast).",
    kind: MetricType::Gauge,
    labels: &[],
    summary: None,
};

static ARP_ENTRIES: Metric = Metric {
    name: "nfv_router_arp_entries",
    help: "Entries in a router's ARP cache (resolved, static and incomplete).",
    kind: MetricType::Gauge,
    labels: &[],
    summary: None,
};

static ND_ENTRIES: Metric = Metric {
    name: "nfv_router_nd_entries",
    help: "Entries in a router's IPv6 neighbour cache (all states).",
    kind: MetricType::Gauge,
    labels: &[],
    summary: None,
};

static ND_SENT: Metric = Metric {
    name: "nfv_router_nd_sent_total",
    help: "Neighbor Discovery messages a router sent, by type.",
    kind: MetricType::Counter,
    labels: &["type"],
    summary: None,
};

static FORWARDED: Metric = Metric {
    name: "nfv_router_forwarded_packets_total",
    help: "Packets a router forwarded.",
    kind: MetricType::Counter,
    labels: &[],
    summary: None,
};

static FRAGMENTED: Metric = Metric {
    name: "nfv_router_fragmented_total",
    help: "Datagrams a router forwarded as fragments (too big for the next hop, no DF).",
    kind: MetricType::Counter,
    labels: &[],
    summary: None,
};

static ARP_REQUESTS: Metric = Metric {
    name: "nfv_router_arp_requests_total",
    help: "ARP requests a router sent.",
    kind: MetricType::Counter,
    labels: &[],
    summary: None,
};

static RATE_LIMITED: Metric = Metric {
    name: "nfv_router_rate_limited_total",
    help: "ARP requests, neighbor solicitations and ICMP errors a router did not send because of its rate limits.",
    kind: MetricType::Counter,
    labels: &["what"],
    summary: None,
};

static ICMP_ERRORS: Metric = Metric {
    name: "nfv_router_icmp_errors_total",
    help: "ICMP errors a router sent.",
    kind: MetricType::Counter,
    labels: &[],
    summary: None,
};

static DHCP_RELAYED: Metric = Metric {
    name: "nfv_router_dhcp_relayed_total",
    help: "DHCP messages a router relayed, by direction: requests to a server (one per server), replies to a client.",
    kind: MetricType::Counter,
    labels: &["direction"],
    summary: None,
};

/// Every metric of a router.
pub(super) static METRICS: [&Metric; 10] = [
    &ROUTES,
    &ARP_ENTRIES,
    &ND_ENTRIES,
    &ND_SENT,
    &FORWARDED,
    &FRAGMENTED,
    &ARP_REQUESTS,
    &ICMP_ERRORS,
    &RATE_LIMITED,
    &DHCP_RELAYED,
];

impl Stats for RouterStats {
    fn visit(&self, out: &mut dyn FnMut(&'static Metric, &[&str], u64)) {
        out(&ROUTES, &[], self.routes.get());
        out(&ARP_ENTRIES, &[], self.arp_entries.get());
        out(&ND_ENTRIES, &[], self.nd_entries.get());
        out(&ND_SENT, &["solicitation"], self.nd_solicits.get());
        out(&ND_SENT, &["advertisement"], self.nd_adverts.get());
        out(
            &ND_SENT,
            &["router_advertisement"],
            self.router_adverts.get(),
        );
        out(&FORWARDED, &[], self.forwarded.get());
        out(&FRAGMENTED, &[], self.fragmented.get());
        out(&ARP_REQUESTS, &[], self.arp_requests.get());
        out(&ICMP_ERRORS, &[], self.icmp_errors.get());
        out(&RATE_LIMITED, &["arp"], self.arp_rate_limited.get());
        out(&RATE_LIMITED, &["icmp"], self.icmp_rate_limited.get());
        out(&RATE_LIMITED, &["nd"], self.nd_rate_limited.get());
        out(
            &DHCP_RELAYED,
            &["to_server"],
            self.dhcp_relayed_to_server.get(),
        );
        out(
            &DHCP_RELAYED,
            &["to_client"],
            self.dhcp_relayed_to_client.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visit_reports_every_declared_metric() {
        let s = RouterStats::default();
        s.forwarded.add(7);
        let mut seen: Vec<(&str, u64)> = Vec::new();
        s.visit(&mut |m, labels, v| {
            assert_eq!(labels.len(), m.labels.len(), "{}", m.name);
            seen.push((m.name, v));
        });
        let mut names: Vec<&str> = seen.iter().map(|(n, _)| *n).collect();
        names.dedup();
        let declared: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(names, declared);
        assert!(seen.contains(&("nfv_router_forwarded_packets_total", 7)));
    }
}
