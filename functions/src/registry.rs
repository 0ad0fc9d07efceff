//! The function kinds nfv knows, by the name a topology gives in `kind:`. A new kind is its
//! folder and one line here; `nfv-control` learns everything else from the [`Kind`].

use crate::kind::Kind;

/// Every registered kind.
pub static KINDS: &[&dyn Kind] = &[
    &crate::switch::SwitchKind,
    &crate::router::RouterKind,
    &crate::dhcp::DhcpKind,
    &crate::nat::NatFunctionKind,
    &crate::firewall::FirewallKind,
    &crate::mirror::MirrorKind,
];

/// The kind named `name`, if registered.
pub fn find(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::MetricType;

    #[test]
    fn kinds_have_unique_names_and_well_formed_metrics() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "two kinds share a name");
        let mut metrics = Vec::new();
        for k in KINDS {
            assert!(find(k.name()).is_some());
            assert!(!k.about().is_empty(), "{} has no help line", k.name());
            // `nfv_` and the kind's first word: `nfv_switch_`, `nfv_dhcp_` (dhcp-server).
            let word = k.name().split('-').next().unwrap_or_default();
            let prefix = format!("nfv_{word}_");
            for m in k.metrics() {
                assert!(m.name.starts_with(&prefix), "{} of {}", m.name, k.name());
                assert_eq!(
                    m.name.ends_with("_total"),
                    m.kind == MetricType::Counter,
                    "{}: counters, and only they, end in _total",
                    m.name
                );
                assert!(!m.labels.contains(&"function"), "{}", m.name);
                metrics.push(m.name);
            }
        }
        let n = metrics.len();
        metrics.sort_unstable();
        metrics.dedup();
        assert_eq!(metrics.len(), n, "a metric name is declared twice");
        assert!(find("no-such-kind").is_none());
    }

    #[test]
    fn each_kind_declares_exactly_the_keys_its_schema_reads() {
        for k in KINDS {
            let mut p = crate::kind::Problems::default();
            let text = format!("{{ kind: {}, no-such-key: 1 }}", k.name());
            assert!(k.load(&text, &mut p).is_none());
            let message = p.0.first().map(|(_, m)| m.clone()).unwrap_or_default();
            let listed = message
                .split_once("expected ")
                .map(|(_, l)| l.trim_start_matches("one of ").replace('`', ""))
                .unwrap_or_default();
            let listed: Vec<&str> = listed.split(", ").collect();
            assert_eq!(listed, k.keys(), "{}: {message}", k.name());
        }
    }
}
