//! A switch's settings as the topology file writes them, checked: the `switch` kind.
//!
//! ```yaml
//! functions:
//!   lan:
//!     kind: switch          # mac_table_size, ageing (300, 300s, 5m, 1h), vlan, attachments
//!     mac_table_size: 65536 # 1 to 16777216 (default 65536)
//!     ageing: 5m            # how long a MAC entry lives unseen (default 5m)
//!     vlan: 1               # the VLAN of anonymous attachments (default 1)
//!     attachments:          # named switch ports: access (`vlan`) or trunk (`trunk`, `native`)
//!       red: { vlan: 10 }
//!       up: { trunk: [10, 20], native: 1 }
//! links:
//!   - [a, lan]              # a bare function name: a new anonymous attachment
//!   - [t, lan.red]          # FUNCTION.ATTACHMENT: a declared one, linked exactly once
//! ```
//!
//! Named attachments take gates 0..n in the order they are declared; each bare mention in
//! a link adds an anonymous attachment after them. A reload that only adds attachments
//! keeps the switch and its MAC table.

use std::any::Any;
use std::time::Duration;

use serde::Deserialize;

use super::{Switch, SwitchConfig, VlanMode};
use crate::kind::schema::{duration_or, fmt_duration, Ordered, RawDuration};
use crate::kind::{self, BuildContext, Built, Counting, Kind, Metric, Report, Spec, Wiring};

/// The `switch` kind, for the registry.
pub struct SwitchKind;

impl Kind for SwitchKind {
    fn name(&self) -> &'static str {
        "switch"
    }

    fn about(&self) -> &'static str {
        "a learning switch with VLANs: mac_table_size, ageing, vlan, attachments"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["mac_table_size", "ageing", "vlan", "attachments"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["macs"]
    }

    fn metrics(&self) -> &'static [&'static Metric] {
        &super::metrics::METRICS
    }

    fn load(&self, text: &str, report: &mut dyn Report) -> Option<Box<dyn Spec>> {
        let raw: RawSwitch = kind::settings(text, report)?;
        let mut c = Checked {
            report: Counting::new(report),
        };
        let spec = c.switch(&raw);
        (c.report.errors == 0).then(|| Box::new(spec) as Box<dyn Spec>)
    }
}

/// A switch as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwitch {
    mac_table_size: Option<u64>,
    ageing: Option<RawDuration>,
    vlan: Option<u32>,
    #[serde(default)]
    attachments: Ordered<RawAttachment>,
}

/// An attachment as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttachment {
    vlan: Option<u32>,
    trunk: Option<Vec<u32>>,
    native: Option<u32>,
}

/// A switch's checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchSpec {
    /// Most MAC table entries.
    pub mac_table_size: usize,
    /// MAC ageing time.
    pub ageing: Duration,
    /// VLAN of anonymous attachments.
    pub vlan: u16,
    /// Attachments in gate order: the named ones as declared, then the anonymous ones
    /// (named ``) that links added.
    pub attachments: Vec<(String, VlanMode)>,
}

impl SwitchSpec {
    /// The node's configuration.
    pub fn config(&self) -> SwitchConfig {
        SwitchConfig {
            mac_table_size: self.mac_table_size,
            ageing: self.ageing,
            attachments: self.attachments.iter().map(|(_, m)| m.clone()).collect(),
        }
    }
}

/// A name of letters, digits, `_` and `-`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

struct Checked<'r> {
    /// Where problems go, counted: the settings are good when none went.
    report: Counting<'r>,
}

impl Checked<'_> {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.report.error(key, message.into());
    }

    fn vlan_id(&mut self, key: &str, v: u32) -> Option<u16> {
        if (1..=4094).contains(&v) {
            Some(v as u16)
        } else {
            self.error(key, format!("VLAN {v} is out of range: expected 1 to 4094"));
            None
        }
    }

    fn switch(&mut self, f: &RawSwitch) -> SwitchSpec {
        let mac_table_size = match f.mac_table_size {
            None => 65536,
            Some(n) if (1..=16_777_216).contains(&n) => n as usize,
            Some(n) => {
                self.error(
                    "mac_table_size",
                    format!("{n} is out of range: expected 1 to 16777216"),
                );
                65536
            }
        };
        let default = Duration::from_secs(300);
        let ageing = duration_or(&mut self.report, "ageing", f.ageing.as_ref(), default);
        let vlan = f
            .vlan
            .map_or(Some(1), |v| self.vlan_id("vlan", v))
            .unwrap_or(1);
        let mut attachments = Vec::new();
        for (a, att) in &f.attachments.0 {
            let akey = format!("attachments.{a}");
            if !valid_name(a) {
                self.error(
                    &akey,
                    format!("`{a}` is not a valid name: expected letters, digits, `_` and `-`"),
                );
            }
            if let Some(mode) = self.vlan_mode(&akey, att) {
                attachments.push((a.clone(), mode));
            }
        }
        SwitchSpec {
            mac_table_size,
            ageing,
            vlan,
            attachments,
        }
    }

    fn vlan_mode(&mut self, akey: &str, att: &RawAttachment) -> Option<VlanMode> {
        match (att.vlan, &att.trunk) {
            (Some(_), Some(_)) => {
                self.error(
                    akey,
                    "give either `vlan` (access) or `trunk` (tagged), not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    akey,
                    "expected `vlan: ID` (access) or `trunk: [ID, ...]` (tagged)",
                );
                None
            }
            (Some(v), None) => {
                if att.native.is_some() {
                    self.error(
                        &format!("{akey}.native"),
                        "`native` is for trunks: an access attachment is untagged in its `vlan`",
                    );
                }
                self.vlan_id(&format!("{akey}.vlan"), v)
                    .map(VlanMode::Access)
            }
            (None, Some(list)) => {
                if list.is_empty() {
                    self.error(
                        &format!("{akey}.trunk"),
                        "a trunk needs at least one VLAN, like `trunk: [10, 20]`",
                    );
                }
                let mut allowed = Vec::new();
                for (i, v) in list.iter().enumerate() {
                    let ikey = format!("{akey}.trunk[{i}]");
                    if let Some(id) = self.vlan_id(&ikey, *v) {
                        if allowed.contains(&id) {
                            self.error(&ikey, format!("VLAN {id} is listed twice"));
                        } else {
                            allowed.push(id);
                        }
                    }
                }
                let native = att
                    .native
                    .and_then(|n| self.vlan_id(&format!("{akey}.native"), n));
                Some(VlanMode::Trunk { allowed, native })
            }
        }
    }
}

/// An attachment's VLANs for people: `access vlan 10`, `trunk vlans 10,20 native 1`.
pub fn fmt_vlan(v: &VlanMode) -> String {
    match v {
        VlanMode::Access(id) => format!("access vlan {id}"),
        VlanMode::Trunk { allowed, native } => {
            let list: Vec<String> = allowed.iter().map(u16::to_string).collect();
            match native {
                Some(n) => format!("trunk vlans {} native {n}", list.join(",")),
                None => format!("trunk vlans {}", list.join(",")),
            }
        }
    }
}

impl Spec for SwitchSpec {
    fn kind(&self) -> &'static dyn Kind {
        &SwitchKind
    }

    fn wiring(&self) -> Wiring {
        Wiring {
            gates: self.attachments.iter().map(|(a, _)| a.clone()).collect(),
            through: None,
            grows: true,
            single: false,
            noun: "attachment",
            declared_under: Some("attachments"),
        }
    }

    fn gate_count(&self) -> usize {
        self.attachments.len()
    }

    /// A switch floods broadcasts, multicast and unknown unicast.
    fn floods(&self) -> bool {
        true
    }

    fn build(&self, _at: &BuildContext<'_>) -> Result<Built, String> {
        let sw = Switch::new(self.config());
        let stats = sw.stats();
        Ok(Built::new(sw, stats))
    }

    /// A switch given more attachments keeps its MAC table.
    fn reconfigure_from(&self, old: &dyn Spec) -> Option<Box<dyn Any + Send>> {
        let old = old.as_any().downcast_ref::<SwitchSpec>()?;
        let (o, n) = (old.config(), self.config());
        n.grows_from(&o).then(|| Box::new(n) as Box<dyn Any + Send>)
    }

    fn add_gate(&mut self) -> u16 {
        self.attachments
            .push((String::new(), VlanMode::Access(self.vlan)));
        (self.attachments.len() - 1) as u16
    }

    fn gate_label(&self, gate: usize) -> String {
        self.attachments
            .get(gate)
            .map(|(_, m)| fmt_vlan(m))
            .unwrap_or_default()
    }

    fn describe(&self) -> String {
        format!(
            "switch, mac table {}, ageing {}",
            self.mac_table_size,
            fmt_duration(self.ageing)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Problems;

    fn load(text: &str) -> Result<SwitchSpec, Vec<(String, String)>> {
        let mut p = Problems::default();
        match SwitchKind.load(text, &mut p) {
            Some(s) => Ok(s
                .as_any()
                .downcast_ref::<SwitchSpec>()
                .cloned()
                .unwrap_or_else(|| panic!("not a switch"))),
            None => Err(p.0),
        }
    }

    #[test]
    fn bare_mentions_add_access_attachments_in_the_default_vlan() {
        let mut s = load("{ vlan: 7, attachments: { up: { trunk: [7, 8] } } }")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.add_gate(), 1);
        assert_eq!(s.attachments[1], (String::new(), VlanMode::Access(7)));
        assert_eq!(s.gate_label(0), "trunk vlans 7,8");
        assert_eq!(s.wiring().gates, vec!["up".to_string(), String::new()]);
    }

    #[test]
    fn growing_is_taken_in_place_and_anything_else_is_not() {
        let old = load("{}").unwrap_or_else(|e| panic!("{e:?}"));
        let mut grown = old.clone();
        grown.add_gate();
        assert!(grown.reconfigure_from(&old).is_some());
        let smaller = SwitchSpec {
            mac_table_size: 10,
            ..grown.clone()
        };
        assert!(smaller.reconfigure_from(&old).is_none());
    }

    #[test]
    fn problems_are_reported_by_key() {
        let e = load("{ vlan: 0, attachments: { up: { trunk: [] }, x: { vlan: 1, trunk: [2] } } }")
            .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["vlan", "attachments.up.trunk", "attachments.x"],
            "{e:?}"
        );
    }
}
