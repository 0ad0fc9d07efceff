//! A mirror's settings: what the topology file says, checked.

use std::any::Any;

use serde::Deserialize;

use super::{Mirror, GATES, GATE_A, GATE_B};
use crate::kind::{self, BuildContext, Built, Kind, Report, Spec, Wiring};

/// Which frames crossing the wire are copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Both ways.
    #[default]
    Both,
    /// Those that came in on `a` (and leave on `b`).
    AToB,
    /// Those that came in on `b`.
    BToA,
}

impl Direction {
    /// The name the topology file uses.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::AToB => "a-to-b",
            Direction::BToA => "b-to-a",
        }
    }

    /// Are frames that came in on `gate` copied?
    #[inline]
    pub fn copies_from(self, gate: u16) -> bool {
        match self {
            Direction::Both => true,
            Direction::AToB => gate == GATE_A,
            Direction::BToA => gate == GATE_B,
        }
    }
}

/// A mirror's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorConfig {
    /// Which way frames are copied.
    pub direction: Direction,
    /// Only frames tagged with one of these VLANs (sorted); empty: every frame.
    pub vlans: Vec<u16>,
    /// One selected frame in `sample` is copied (1: all).
    pub sample: u32,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            direction: Direction::Both,
            vlans: Vec::new(),
            sample: 1,
        }
    }
}

/// The keys as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    direction: Direction,
    vlan: Option<serde_yaml::Value>,
    sample: Option<u64>,
}

/// The largest sampling rate: one frame in a million.
pub const MAX_SAMPLE: u64 = 1_000_000;

impl MirrorConfig {
    /// Read and check `settings`, reporting every problem.
    pub fn load(text: &str, report: &mut dyn Report) -> Option<MirrorConfig> {
        let raw: Raw = kind::settings(text, report)?;
        let mut ok = true;
        let mut vlans = Vec::new();
        let mut one = |key: String, v: &serde_yaml::Value, report: &mut dyn Report| match v
            .as_u64()
            .filter(|n| (1..=4094).contains(n))
        {
            Some(n) => {
                if vlans.contains(&(n as u16)) {
                    report.error(&key, format!("VLAN {n} is listed twice: list it once"));
                    ok = false;
                }
                vlans.push(n as u16);
            }
            None => {
                report.error(
                    &key,
                    format!(
                        "`{}` is not a VLAN ID: expected a whole number from 1 to 4094",
                        show(v)
                    ),
                );
                ok = false;
            }
        };
        match &raw.vlan {
            None => {}
            Some(serde_yaml::Value::Sequence(list)) if list.is_empty() => {
                report.error(
                    "vlan",
                    "an empty list selects nothing: list VLAN IDs, or leave `vlan` out to copy \
                     every frame"
                        .into(),
                );
                ok = false;
            }
            Some(serde_yaml::Value::Sequence(list)) => {
                for (i, v) in list.iter().enumerate() {
                    one(format!("vlan[{i}]"), v, report);
                }
            }
            Some(v) => one("vlan".into(), v, report),
        }
        vlans.sort_unstable();
        let sample = match raw.sample {
            None => 1,
            Some(n @ 1..=MAX_SAMPLE) => n as u32,
            Some(n) => {
                report.error(
                    "sample",
                    format!(
                        "`{n}`: sample copies one frame in N, N from 1 (every frame) to {MAX_SAMPLE}"
                    ),
                );
                ok = false;
                1
            }
        };
        ok.then_some(MirrorConfig {
            direction: raw.direction,
            vlans,
            sample,
        })
    }
}

/// A YAML value as the file spelled it, for messages.
fn show(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

impl Spec for MirrorConfig {
    fn kind(&self) -> &'static dyn Kind {
        &super::MirrorKind
    }

    fn wiring(&self) -> Wiring {
        Wiring::fixed(&GATES, Some((GATE_A, GATE_B)))
    }

    fn build(&self, _at: &BuildContext<'_>) -> Result<Built, String> {
        let node = Mirror::new(self.clone());
        let stats = node.stats();
        Ok(Built::new(node, stats))
    }

    /// Every setting can change in place: the gates stay the same three.
    fn reconfigure_from(&self, old: &dyn Spec) -> Option<Box<dyn Any + Send>> {
        old.as_any()
            .is::<MirrorConfig>()
            .then(|| Box::new(self.clone()) as Box<dyn Any + Send>)
    }

    fn describe(&self) -> String {
        let vlans = if self.vlans.is_empty() {
            "all".to_string()
        } else {
            let v: Vec<String> = self.vlans.iter().map(u16::to_string).collect();
            v.join(",")
        };
        format!(
            "mirror, direction {}, vlan {vlans}, sample 1 in {}",
            self.direction.name(),
            self.sample
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Problems;

    fn load(text: &str) -> Result<MirrorConfig, Vec<(String, String)>> {
        let mut p = Problems::default();
        MirrorConfig::load(text, &mut p).ok_or(p.0)
    }

    #[test]
    fn defaults_copy_every_frame_both_ways() {
        assert_eq!(load("{}"), Ok(MirrorConfig::default()));
        assert_eq!(load("").map(|c| c.sample), Ok(1));
    }

    #[test]
    fn settings_are_read() {
        let c = load("{ direction: a-to-b, vlan: [20, 10], sample: 4 }");
        assert_eq!(
            c,
            Ok(MirrorConfig {
                direction: Direction::AToB,
                vlans: vec![10, 20],
                sample: 4
            })
        );
        assert_eq!(load("vlan: 7").map(|c| c.vlans), Ok(vec![7]));
    }

    #[test]
    fn problems_are_reported_by_key() {
        let e = load("{ vlan: [10, 4095, x, 10], sample: 0 }").unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["vlan[1]", "vlan[2]", "vlan[3]", "sample"], "{e:?}");
        assert!(e[0].1.contains("`4095` is not a VLAN ID"), "{e:?}");
        assert!(e[1].1.contains("`x` is not a VLAN ID"), "{e:?}");
        assert!(e[2].1.contains("listed twice"), "{e:?}");
        let e = load("{ vlan: [] }").unwrap_err();
        assert_eq!(e[0].0, "vlan");
        let e = load("{ direction: sideways }").unwrap_err();
        assert_eq!(e[0].0, "direction");
        assert!(e[0].1.contains("unknown variant `sideways`"), "{e:?}");
        let e = load("{ monitor: mon }").unwrap_err();
        assert!(e[0].1.contains("unknown field `monitor`"), "{e:?}");
    }

    #[test]
    fn any_change_is_taken_in_place() {
        let old = MirrorConfig::default();
        let new = MirrorConfig {
            sample: 8,
            ..MirrorConfig::default()
        };
        let took = new.reconfigure_from(&old);
        assert_eq!(
            took.and_then(|b| b.downcast::<MirrorConfig>().ok())
                .map(|c| c.sample),
            Some(8)
        );
    }
}
