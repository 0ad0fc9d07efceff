//! A firewall's metrics: one visit over its [`FirewallStats`].

use super::FirewallStats;
use crate::kind::{Metric, MetricType, Stats};

static CONNECTIONS: Metric = Metric {
    name: "nfv_firewall_connections",
    help: "Connections a firewall tracks.",
    kind: MetricType::Gauge,
    labels: &[],
    summary: Some("connections"),
};

static RULE_HITS: Metric = Metric {
    name: "nfv_firewall_rule_hits_total",
    help: "Packets decided by a firewall rule (rule is its index in the direction's list, or `default`).",
    kind: MetricType::Counter,
    labels: &["direction", "rule"],
    summary: Some("rule_hits"),
};

static REJECTS_SENT: Metric = Metric {
    name: "nfv_firewall_rejects_sent_total",
    help: "TCP RSTs and ICMP errors a firewall sent for `reject`.",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("rejects_sent"),
};

static NOT_IPV4: Metric = Metric {
    name: "nfv_firewall_not_ipv4_total",
    help: "Frames a firewall dropped for being neither IPv4, IPv6 nor ARP (or tagged).",
    kind: MetricType::Counter,
    labels: &[],
    summary: Some("not_ipv4"),
};

static ICMPV6_PASSED: Metric = Metric {
    name: "nfv_firewall_icmpv6_passed_total",
    help: "ICMPv6 messages a firewall passed whatever its rules say (RFC 4890): neighbor \
           discovery with hop limit 255, link-local MLD with hop limit 1, packet too big, and \
           errors about tracked connections.",
    kind: MetricType::Counter,
    labels: &["message"],
    summary: Some("icmpv6_passed"),
};

static FRAGMENTS: [Metric; 3] = crate::fragments::metrics!("firewall");

/// Every metric of a firewall.
pub(super) static METRICS: [&Metric; 8] = [
    &CONNECTIONS,
    &RULE_HITS,
    &REJECTS_SENT,
    &NOT_IPV4,
    &ICMPV6_PASSED,
    &FRAGMENTS[0],
    &FRAGMENTS[1],
    &FRAGMENTS[2],
];

impl Stats for FirewallStats {
    fn visit(&self, out: &mut dyn FnMut(&'static Metric, &[&str], u64)) {
        out(&CONNECTIONS, &[], self.connections.get());
        out(&REJECTS_SENT, &[], self.rejects_sent.get());
        out(&NOT_IPV4, &[], self.not_ipv4.get());
        for (message, c) in [
            ("neighbor_discovery", &self.icmpv6_nd),
            ("packet_too_big", &self.icmpv6_too_big),
            ("related_error", &self.icmpv6_related),
            ("mld", &self.icmpv6_mld),
        ] {
            out(&ICMPV6_PASSED, &[message], c.get());
        }
        self.fragments.visit(&FRAGMENTS, out);
        for (direction, rules) in [("inbound", &self.inbound), ("outbound", &self.outbound)] {
            for (i, c) in rules.iter().enumerate() {
                let rule = if i + 1 == rules.len() {
                    "default".to_string()
                } else {
                    i.to_string()
                };
                out(&RULE_HITS, &[direction, &rule], c.get());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{Firewall, FirewallConfig};

    #[test]
    fn the_visit_names_each_rule_and_the_default() {
        let fw = Firewall::new(FirewallConfig::default());
        let stats = fw.stats();
        let mut hits = Vec::new();
        let mut names = Vec::new();
        stats.visit(&mut |m, labels, _| {
            assert_eq!(labels.len(), m.labels.len(), "{}", m.name);
            names.push(m.name);
            if m.name == RULE_HITS.name {
                hits.push(labels.join(","));
            }
        });
        for m in METRICS {
            assert!(names.contains(&m.name), "{} never reported", m.name);
        }
        assert!(hits.contains(&"inbound,default".to_string()), "{hits:?}");
        assert!(hits.contains(&"outbound,default".to_string()), "{hits:?}");
    }
}
