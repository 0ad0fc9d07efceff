//! What the control side keeps of each running function: the stats its node shares. Both
//! `run` (which builds the nodes) and `metrics` (which reads the stats at each scrape) use
//! these types; neither depends on the other for them.

use std::sync::Arc;

use nfv_functions::kind::{Metric, MetricType, Stats};

/// A running function's stats: its kind reports its own metrics.
pub type FunctionStats = Arc<dyn Stats>;

/// One line for the exit summary of a registered kind's function `name` of kind `kind`:
/// its metrics that have a summary word, summed over their labels, with the labels of
/// those that are not zero (`mirror span: copies=12 missed=3 (monitor_full=3)`).
pub fn kind_summary(kind: &str, name: &str, stats: &dyn Stats) -> String {
    let mut parts: Vec<(&'static str, u64, Vec<String>)> = Vec::new();
    stats.visit(&mut |m: &'static Metric, labels: &[&str], v: u64| {
        let Some(word) = m.summary else { return };
        let at = match parts.iter().position(|(w, ..)| *w == word) {
            Some(i) => i,
            None => {
                parts.push((word, 0, Vec::new()));
                parts.len() - 1
            }
        };
        let part = &mut parts[at];
        part.1 = if m.kind == MetricType::Counter {
            part.1.wrapping_add(v)
        } else {
            v
        };
        if !labels.is_empty() && v != 0 {
            part.2.push(format!("{}={v}", labels.join("/")));
        }
    });
    let mut line = format!("{kind} {name}:");
    for (word, total, detail) in parts {
        line.push_str(&format!(" {word}={total}"));
        if !detail.is_empty() {
            line.push_str(&format!(" ({})", detail.join(" ")));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_functions::mirror::MirrorStats;

    #[test]
    fn a_kind_summary_sums_each_word_and_names_the_labels_that_counted() {
        let s = MirrorStats::default();
        s.copies.add(12);
        s.missed_monitor_full.add(3);
        assert_eq!(
            kind_summary("mirror", "span", &s),
            "mirror span: copies=12 missed=3 (monitor_full=3)"
        );
    }
}
