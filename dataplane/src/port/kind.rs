//! What a port kind is, to the rest of nfv: the one interface through which `nfv-control`
//! learns a port kind, so that a new kind is a folder of [`crate::port`] plus one line in
//! [`super::registry`].
//!
//! A port kind owns everything about itself, as a function kind does
//! (`nfv_functions::kind`):
//! - its **settings schema**: [`PortKind::load`] reads the port's keys (every key of its
//!   mapping but `kind`) with serde, refusing unknown ones, and runs its checks of meaning,
//!   reporting each problem by key path (relative to the port) through a [`Report`];
//! - its **description**: the line of `nfv check`'s plan ([`PortSpec::describe`]) and the
//!   "where" column of `nfv show ports` ([`PortSpec::location`]);
//! - its **MTU** ([`PortSpec::mtu`]);
//! - how it is **built** into a running [`Port`] ([`PortSpec::build`]) and when a reload
//!   must build it anew ([`PortSpec::identity`]).
//!
//! What looks across ports stays with `nfv-control`, and meets a kind only through the
//! documented hooks below: names only one port may use ([`PortSpec::claims`]), MAC
//! addresses no two ports may share ([`PortSpec::mac`]), the lab's TAP devices
//! ([`PortSpec::tap`]), and what `nfv bench` measures and overrides ([`PortSpec::traffic`],
//! [`PortSpec::set_rate`]).
//!
//! Dynamic dispatch is used at load, build and reload time only; the packet path calls the
//! built [`Port`] as it always did, one call per burst.

use std::any::Any;
use std::fmt::{self, Debug};

use serde::de::DeserializeOwned;

use super::{LatencyRecorder, Port, TapConfig};
pub use crate::config::checks::{
    mac, mtu, mtu_up_to, unicast_mac, DEFAULT_MTU, MAX_MTU, MIN_MTU, SMALL_MAX_MTU,
};
use crate::config::schema::did_you_mean;
use crate::config::{read_skipping, Report};
use crate::mac::MacAddr;

/// A port kind.
pub trait PortKind: Sync {
    /// The name a topology gives in `kind:`, e.g. `"tap"`.
    fn name(&self) -> &'static str;
    /// One line for the docs: what the kind is and its keys.
    fn about(&self) -> &'static str;
    /// The keys its settings take (besides `kind`), in the order its serde schema lists
    /// them; a registry test checks the two agree.
    fn keys(&self) -> &'static [&'static str];
    /// Read and check the settings of port `name`: `text` is the YAML of its mapping as the
    /// file writes it, `kind` key included (read it with [`port_settings`]). Every problem
    /// goes to `report`. A value that is read but wrong is reported and its default taken,
    /// and the spec still comes back, so that the checks across ports (lab hosts, names one
    /// port may use) still see the port; `None` when the mapping could not be read at all.
    fn load(&self, name: &str, text: &str, report: &mut dyn Report) -> Option<Box<dyn PortSpec>>;
}

/// A port's checked settings: what it becomes.
pub trait PortSpec: Debug + Send + Sync + PortSpecBase {
    /// Its kind.
    fn kind(&self) -> &'static dyn PortKind;

    /// Its MTU; [`DEFAULT_MTU`] (the default) for a port without one of its own.
    fn mtu(&self) -> u16 {
        DEFAULT_MTU
    }

    /// The port in a few words, for `nfv check`'s plan; starts with the kind's name
    /// (`tap nfv-t (root namespace), mtu 1500`, `null sink`).
    fn describe(&self) -> String;

    /// Where the port is, for the "where" column of `nfv show ports` (`alice:eth0`, a
    /// socket's path); `-` (the default) for a port that is nowhere but in nfv.
    fn location(&self) -> String {
        "-".to_string()
    }

    /// What, if it differs between two settings of the same port, means a reload must make
    /// the port anew. The default: all of it (its `Debug` form).
    fn identity(&self) -> String {
        format!("{self:?}")
    }

    /// Make the running port; `name` is the port's (for logs).
    fn build(&self, name: &str) -> Result<BuiltPort, BuildError>;

    /// Cross-port hook: names that only one port of a topology may use (a device name, a
    /// socket's path). `nfv-control` reports a second port that claims one.
    fn claims(&self) -> Vec<Claim> {
        Vec::new()
    }

    /// Cross-port hook: the MAC address the port's far side uses, given under its key
    /// `mac` (a TAP's host side, the address a sink announces). `nfv-control` reports two
    /// ports with the same one. `None` (the default) for the others.
    fn mac(&self) -> Option<MacAddr> {
        None
    }

    /// Cross-kind hook for the lab: a port that is a kernel TAP device, which `nfv-control`
    /// creates in the root namespace or moves into a lab host's. The lab names the
    /// device's interface in its host and the temporary device it is created as
    /// ([`PortSpec::tap_mut`]), checks the host exists, and gives the host's interface its
    /// address and MAC. Only the `tap` kind answers; `None` (the default) for the others.
    fn tap(&self) -> Option<&TapConfig> {
        None
    }

    /// The same TAP, for the lab to name (see [`PortSpec::tap`]).
    fn tap_mut(&mut self) -> Option<&mut TapConfig> {
        None
    }

    /// Cross-kind hook for `nfv bench`: what the port's counters measure.
    /// [`Traffic::Neither`] (the default) for a port that is not part of a measurement.
    fn traffic(&self) -> Traffic {
        Traffic::Neither
    }

    /// Cross-kind hook for `nfv bench --rate`: a port that offers traffic takes `pps` as
    /// its rate and says so; the default (every other port) ignores it and returns false.
    fn set_rate(&mut self, _pps: u64) -> bool {
        false
    }
}

/// What every [`PortSpec`] has by being `Clone` and `'static`: implemented for all of them.
pub trait PortSpecBase {
    /// A copy.
    fn clone_spec(&self) -> Box<dyn PortSpec>;
    /// Itself, to compare with another spec of its kind (and for tests to look inside).
    fn as_any(&self) -> &dyn Any;
}

impl<T: PortSpec + Clone + 'static> PortSpecBase for T {
    fn clone_spec(&self) -> Box<dyn PortSpec> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The settings of one port, as the topology model and the plan hold them: a [`PortSpec`]
/// that can be cloned and compared (two settings are equal when their kind and `Debug`
/// form are).
#[derive(Debug)]
pub struct PortSettings(pub Box<dyn PortSpec>);

impl PortSettings {
    /// The settings as the kind's own type, if they are of that type.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

impl Clone for PortSettings {
    fn clone(&self) -> Self {
        PortSettings(self.0.clone_spec())
    }
}

impl PartialEq for PortSettings {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind().name() == other.0.kind().name()
            && format!("{:?}", self.0) == format!("{:?}", other.0)
    }
}

impl Eq for PortSettings {}

/// A name only one port may use (see [`PortSpec::claims`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The key that gives it, relative to the port; `""` when the port's own name gives it
    /// (a TAP named after its port).
    pub key: &'static str,
    /// What it is, for messages: `device name`, `socket`.
    pub what: &'static str,
    /// The name.
    pub value: String,
}

/// What a port's counters measure in `nfv bench` (see [`PortSpec::traffic`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// It makes the offered traffic (a generator): what it receives is offered.
    Source,
    /// It takes the forwarded traffic (a sink): what it sends was forwarded.
    Sink,
    /// A guest's port (vhost-user): when the traffic comes from a peer outside nfv, what it
    /// receives is offered and what it sends was forwarded; else neither.
    Guest,
    /// Not part of a measurement.
    Neither,
}

/// A running port and what the control side keeps of it.
pub struct BuiltPort {
    /// The port.
    pub port: Box<dyn Port>,
    /// The latencies it records of the generators' stamped frames (a sink), if any.
    pub latency: Option<LatencyRecorder>,
}

impl BuiltPort {
    /// `port`, recording no latency.
    pub fn new<P: Port + 'static>(port: P) -> BuiltPort {
        BuiltPort {
            port: Box::new(port),
            latency: None,
        }
    }
}

/// Why a port could not be built: `nfv-control` words it as "cannot {action} for port
/// `NAME`: {source}{hint}".
#[derive(Debug)]
pub struct BuildError {
    /// What failed: `create TAP device `nfv-t``.
    pub action: String,
    /// The system's error.
    pub source: std::io::Error,
    /// What usually helps, with its leading space (` (nfv run needs root, ...)`), or `""`.
    pub hint: &'static str,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {}: {}{}", self.action, self.source, self.hint)
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Read a port's settings as [`crate::config::settings`] does, for `kind`: except that each
/// key only another registered port kind takes is reported (`a `tap` port takes no `flows`
/// (it takes: ...)`) and set aside, so that the rest is still read and checked. Keys no port
/// kind takes are serde's unknown fields.
pub fn port_settings<T: DeserializeOwned>(
    kind: &dyn PortKind,
    text: &str,
    report: &mut dyn Report,
) -> Option<T> {
    let own = kind.keys();
    let foreign = |key: &str| {
        !own.contains(&key)
            && super::registry::PORT_KINDS
                .iter()
                .any(|k| k.keys().contains(&key))
    };
    match read_skipping::<T>(text, &foreign) {
        Ok((t, aside)) => {
            for k in aside {
                report.error(&k, takes_no(kind, &k));
            }
            Some(t)
        }
        Err((path, mut message)) => {
            let unknown = message
                .strip_prefix("unknown field `")
                .and_then(|m| m.split_once('`'))
                .map(|(field, _)| field.to_string());
            if let Some(field) = unknown {
                message.push_str(&did_you_mean(&field, own.iter().copied()));
            }
            report.error(&path, message);
            None
        }
    }
}

/// "a `tap` port takes no `flows` (it takes: host, ifname, ...)".
fn takes_no(kind: &dyn PortKind, key: &str) -> String {
    format!(
        "a `{}` port takes no `{key}` (it takes: {})",
        kind.name(),
        kind.keys().join(", ")
    )
}
