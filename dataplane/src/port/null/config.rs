//! A null port's settings: what the topology file says, checked.

use serde::Deserialize;

use super::{LatencyRecorder, NullPort};
use crate::config::Report;
use crate::mac::MacAddr;
use crate::port::kind::{self, BuildError, BuiltPort, PortKind, PortSpec, Traffic};

/// The keys, in the order of [`Raw`]'s fields.
pub(super) const KEYS: &[&str] = &["mac"];

/// The keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    mac: Option<String>,
}

/// A null port's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NullConfig {
    /// The MAC address it announces once, if any.
    pub announce: Option<MacAddr>,
}

impl NullConfig {
    /// Read and check `text`, reporting every problem; `None` only if it could not be read.
    pub fn load(text: &str, report: &mut dyn Report) -> Option<NullConfig> {
        let raw: Raw = kind::port_settings(&super::NullKind, text, report)?;
        let announce = raw
            .mac
            .as_deref()
            .and_then(|m| kind::unicast_mac(report, "mac", m));
        Some(NullConfig { announce })
    }
}

impl PortSpec for NullConfig {
    fn kind(&self) -> &'static dyn PortKind {
        &super::NullKind
    }

    fn describe(&self) -> String {
        match self.announce {
            None => "null sink".to_string(),
            Some(m) => format!("null sink, announces {m}"),
        }
    }

    fn build(&self, _name: &str) -> Result<BuiltPort, BuildError> {
        let rec = LatencyRecorder::new();
        let sink = NullPort::new().with_latency(rec.clone());
        let sink = match self.announce {
            Some(m) => sink.announcing(m),
            None => sink,
        };
        Ok(BuiltPort {
            port: Box::new(sink),
            latency: Some(rec),
        })
    }

    fn mac(&self) -> Option<MacAddr> {
        self.announce
    }

    fn traffic(&self) -> Traffic {
        Traffic::Sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    fn load(text: &str) -> (Option<NullConfig>, Vec<(String, String)>) {
        let mut p = Problems::default();
        let c = NullConfig::load(text, &mut p);
        (c, p.0)
    }

    #[test]
    fn a_sink_may_announce_a_mac() {
        assert_eq!(load("{ kind: null }").0, Some(NullConfig::default()));
        assert_eq!(load("").0, Some(NullConfig::default()));
        let (c, _) = load("{ kind: null, mac: 02:ff:00:00:00:01 }");
        let c = c.expect("loads");
        assert_eq!(c.announce, Some(MacAddr([2, 0xff, 0, 0, 0, 1])));
        assert_eq!(c.describe(), "null sink, announces 02:ff:00:00:00:01");
        assert_eq!((c.location().as_str(), c.mtu()), ("-", 1500));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named_by_key() {
        let (c, p) = load("{ kind: null, mca: 02:00:00:00:00:01 }");
        assert!(c.is_none());
        assert_eq!(p[0].0, "", "serde names an unknown key at its mapping");
        assert!(p[0].1.starts_with("unknown field `mca`"), "{p:?}");
        assert!(p[0].1.ends_with("; did you mean `mac`?"), "{p:?}");
        let (_, p) = load("{ kind: null, mtu: 1500, host: h }");
        assert_eq!(
            p[0],
            (
                "mtu".to_string(),
                "a `null` port takes no `mtu` (it takes: mac)".to_string()
            )
        );
        assert_eq!(p[1].0, "host");
        let (_, p) = load("{ kind: null, mac: ff:ff:ff:ff:ff:ff }");
        assert_eq!(p[0].0, "mac");
        assert!(p[0].1.contains("multicast"), "{p:?}");
    }
}
