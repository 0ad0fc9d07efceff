//! The topology file: parsing, validation, and the resolved model the rest of nfv uses.
//!
//! ```yaml
//! name: lab                 # required; [a-z0-9][a-z0-9-]*, at most 24 characters
//! hosts:                    # lab hosts, one network namespace each (optional)
//!   alice: { address: 10.0.0.1/24, gateway: 10.0.0.254 }   # also `netns: NAME`
//!   carol: {}               # no address
//! ports:                    # required; tap, null or generator, each with its own keys
//!   a: { kind: tap, host: alice }            # in alice as eth0 (her ports in file order)
//!   t: { kind: tap, ifname: nfv-t, mtu: 1500, mac: 02:00:00:00:00:01 }  # root namespace
//!   c: { kind: tap, host: carol }
//!   n: { kind: null }
//! functions:                # optional; `kind` picks the function, the other keys its settings
//!   lan:
//!     kind: switch          # mac_table_size, ageing (300, 300s, 5m, 1h), vlan, attachments
//!     attachments:          # named switch ports: access (`vlan`) or trunk (`trunk`, `native`)
//!       red: { vlan: 10 }
//!       up: { trunk: [10, 20], native: 1 }
//! links:                    # 2+ ends each; a chain wires each end to the next
//!   - [a, lan]              # a bare function name: a new anonymous attachment
//!   - [t, lan.red]          # FUNCTION.ATTACHMENT: a declared one, linked exactly once
//!   - [c, lan.up]
//!   - [n, lan]
//! metrics: { listen: 127.0.0.1:9464 }   # optional: where `nfv run` serves Prometheus
//!                           # metrics (this is the default), or `metrics: off`
//! ```
//!
//! Every function kind (`switch`, `router`, `dhcp-server`, `nat`, `firewall`, `mirror`: see
//! `nfv_functions::registry`) describes itself; the one setting that names another function
//! (a nat's `masquerade: ROUTER.INTERFACE`) is resolved in `hooks.rs`.
//!
//! Loading has three steps: serde_yaml reads the text into the raw structs below (types and
//! unknown keys; it stops at the first such error), a [`LineIndex`] records where every key
//! path is, and one validation pass (`Validator`) checks the meaning (names, references,
//! addresses, VLANs) and builds the model, collecting every error with its file, line and
//! key path. A new function kind is a folder of `nfv-functions` and a line in its registry
//! (`nfv_functions::registry`): its function is kept as YAML while the file is read, the
//! kind reads and checks it, and [`Function::settings`] holds the result.
//!
//! Ports work the same way with the dataplane's registry (`nfv_dataplane::port::registry`):
//! each port's mapping is kept as its text, the kind named by its `kind` reads and checks
//! it, and [`Port::settings`] holds the result. What looks across ports stays here, and
//! meets a kind only through the hooks `nfv_dataplane::port::PortSpec` documents: names one
//! port may use (device names, sockets), MAC addresses no two ports share, and the TAP a lab
//! host takes as its interface (the host must exist; its interfaces are named eth0, eth1,
//! ... in file order; its address is read with the host's).

mod hooks;
mod lines;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnetwork::{Ipv4Network, Ipv6Network};
pub use nfv_dataplane::port::{
    Addresses, GeneratorConfig, NullConfig, PortSettings, Proto, Sizes, TapConfig, VhostUserConfig,
};
use nfv_dataplane::MacAddr;
use nfv_functions::kind::schema::{
    did_you_mean, join, one_of, parse_cidr, parse_cidr6, Names, OneOrMany, Ordered,
};
use nfv_functions::kind::{Kind, Report, Settings, Wiring};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

pub use lines::LineIndex;

/// The MTUs a port (and a router interface) takes: what a dataplane packet buffer holds.
pub use nfv_dataplane::port::kind::{MAX_MTU, MIN_MTU};

/// Every port kind, in the order messages list them: the dataplane's registry
/// (`nfv_dataplane::port::registry`).
pub fn port_kinds() -> Vec<&'static str> {
    nfv_dataplane::port::registry::names()
}

/// Every function kind, in the registry's order ([`nfv_functions::registry`]).
pub fn function_kinds() -> Vec<&'static str> {
    nfv_functions::registry::KINDS
        .iter()
        .map(|k| k.name())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Errors

/// One thing wrong with a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    /// The file (or a label such as `<builtin demo>`).
    pub file: PathBuf,
    /// 1-based line; 0 if unknown.
    pub line: usize,
    /// 1-based column; 0 if unknown.
    pub column: usize,
    /// Key path such as `functions.lan.attachments.red1.vlan` or `links[2][1]`; empty for
    /// the whole document.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if self.column > 0 {
            write!(f, ":{}", self.column)?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// Why a topology did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid topology.
    #[error("{}", list(.0))]
    Invalid(Vec<TopologyError>),
}

fn list(errors: &[TopologyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// The model

/// A validated topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Its name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Lab hosts, in file order.
    pub hosts: Vec<Host>,
    /// Ports, in file order.
    pub ports: Vec<Port>,
    /// Functions, in file order.
    pub functions: Vec<Function>,
    /// Links, in file order.
    pub links: Vec<Link>,
    /// Where `nfv run` serves Prometheus metrics.
    pub metrics: Metrics,
}

/// The topology's `metrics` key: where `nfv run` serves Prometheus metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metrics {
    /// Not given: [`crate::metrics::DEFAULT_LISTEN`], and a taken address is only a warning.
    #[default]
    Default,
    /// `metrics: off`.
    Off,
    /// `metrics: { listen: ADDR }`: this address, and failing to bind it is an error.
    Listen(std::net::SocketAddr),
}

/// A lab host: a network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name.
    pub name: String,
    /// Namespace name, if not the default.
    pub netns: Option<String>,
    /// Default route.
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 default route (else the one router advertisements give).
    pub gateway6: Option<Ipv6Addr>,
    /// IPv6 on: given as `ipv6`, else on when the topology has IPv6 anywhere (see
    /// [`Topology::ipv6`]); with it the host accepts router advertisements.
    pub ipv6: Option<bool>,
    /// Its interfaces (its ports, in file order).
    pub interfaces: Vec<HostInterface>,
    /// Line in the file.
    pub line: usize,
}

impl Topology {
    /// Whether the topology has IPv6 anywhere: a host with an IPv6 address or gateway, or a
    /// function that speaks it (a router with IPv6 addresses). Lab hosts then keep IPv6 on
    /// unless they say `ipv6: false`; in an IPv4-only topology they have it off (so they
    /// send no router solicitations or multicast listener reports into the dataplane)
    /// unless they say `ipv6: true`.
    pub fn ipv6(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.gateway6.is_some() || h.interfaces.iter().any(|i| !i.addresses6.is_empty()))
            || self.functions.iter().any(|f| f.settings.0.speaks_ipv6())
    }
}

impl Host {
    /// True if some interface takes its address from DHCP.
    pub fn uses_dhcp(&self) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.address.is_none() && i.addresses6.is_empty())
    }
}

/// A host's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    /// The port behind it.
    pub port: String,
    /// `eth0`, `eth1`, ...
    pub ifname: String,
    /// Static address; `None` (and no IPv6 address) means the host runs a DHCP client on
    /// this interface.
    pub address: Option<Ipv4Network>,
    /// Static IPv6 addresses (more come from router advertisements where IPv6 is on).
    pub addresses6: Vec<Ipv6Network>,
    /// MAC address.
    pub mac: Option<MacAddr>,
}

/// A port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its name.
    pub name: String,
    /// What it is: its kind's checked settings (`settings.0.kind()` names the kind).
    pub settings: PortSettings,
    /// Line in the file.
    pub line: usize,
}

/// A function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// Its settings, as its kind read and checked them.
    pub settings: Settings,
    /// Line in the file.
    pub line: usize,
}
/// A firewall's settings: the function's own type.
pub use nfv_functions::firewall::FirewallConfig;
pub use nfv_functions::firewall::SIDES;

/// How an attachment carries VLANs: the switch's own type.
pub use nfv_functions::VlanMode;

/// A link: two or more ends, each wired to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its ends.
    pub ends: Vec<LinkEnd>,
    /// Line in the file.
    pub line: usize,
}

/// One end of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEnd {
    /// A port.
    Port(String),
    /// A function, or one of its named attachments.
    Function {
        /// The function.
        name: String,
        /// The attachment (`name.attachment`), if named.
        attachment: Option<String>,
    },
}

// ---------------------------------------------------------------------------------------
// The raw layer: what serde_yaml reads

/// A topology as written. Read through [`TopologySeed`], which reads each function by its
/// kind.
#[derive(Debug, Default)]
struct RawTopology {
    name: Option<String>,
    hosts: Ordered<Option<RawHost>>,
    ports: Ordered<RawPort>,
    functions: Ordered<RawFunction>,
    links: Vec<Vec<String>>,
    /// `off` or `{ listen: ADDR }`; checked by `Validator::metrics`.
    metrics: Option<serde_yaml::Value>,
}

/// The keys of a topology.
const TOPOLOGY_KEYS: &[&str] = &["name", "hosts", "ports", "functions", "links", "metrics"];

/// Reads a [`RawTopology`] as `#[derive(Deserialize)]` with `deny_unknown_fields` would,
/// except that each function is kept as its own text for its kind to read (so that its
/// scalars are read as written: `0x0a0b` stays text).
struct TopologySeed<'a> {
    /// The file's text and its index, for the text of each function.
    text: &'a str,
    index: &'a LineIndex,
}

impl<'de> serde::de::DeserializeSeed<'de> for TopologySeed<'_> {
    type Value = RawTopology;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawTopology, D::Error> {
        d.deserialize_struct("RawTopology", TOPOLOGY_KEYS, self)
    }
}

impl<'de> Visitor<'de> for TopologySeed<'_> {
    type Value = RawTopology;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct RawTopology")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawTopology, A::Error> {
        use serde::de::Error;
        let mut raw = RawTopology::default();
        let mut seen: Vec<&'static str> = Vec::new();
        while let Some(k) = m.next_key::<String>()? {
            let Some(&key) = TOPOLOGY_KEYS.iter().find(|t| **t == k) else {
                return Err(A::Error::unknown_field(&k, TOPOLOGY_KEYS));
            };
            if seen.contains(&key) {
                return Err(A::Error::duplicate_field(key));
            }
            seen.push(key);
            match key {
                "name" => raw.name = m.next_value()?,
                "hosts" => raw.hosts = m.next_value()?,
                "ports" => {
                    raw.ports = m.next_value_seed(PortsSeed {
                        text: self.text,
                        index: self.index,
                    })?
                }
                "functions" => {
                    raw.functions = m.next_value_seed(FunctionsSeed {
                        text: self.text,
                        index: self.index,
                    })?
                }
                "links" => raw.links = m.next_value::<Option<_>>()?.unwrap_or_default(),
                _ => raw.metrics = m.next_value()?,
            }
        }
        Ok(raw)
    }
}

/// The `functions` mapping: [`Ordered`], each function kept for its kind to read (see
/// [`TopologySeed`]).
struct FunctionsSeed<'a> {
    text: &'a str,
    index: &'a LineIndex,
}

impl<'de> serde::de::DeserializeSeed<'de> for FunctionsSeed<'_> {
    type Value = Ordered<RawFunction>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FunctionsSeed<'_> {
    type Value = Ordered<RawFunction>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of names")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ordered(Vec::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut v: Vec<(String, RawFunction)> = Vec::new();
        let mut seen = Names::default();
        while let Some(k) = m.next_key::<String>()? {
            seen.first(&k)?;
            let value = m.next_value_seed(FunctionSeed)?;
            // Its own text, so that its scalars read as written; re-written from the value
            // where the text has none of its own (a YAML alias).
            let text = self
                .index
                .text_of(self.text, &format!("functions.{k}"))
                .or_else(|| serde_yaml::to_string(&value).ok())
                .unwrap_or_default();
            v.push((k, RawFunction::new(&value, text)));
        }
        Ok(Ordered(v))
    }
}

/// One function: a mapping, kept as YAML (its kind reads it). Anything else is refused as
/// not a function.
struct FunctionSeed;

impl<'de> serde::de::DeserializeSeed<'de> for FunctionSeed {
    type Value = serde_yaml::Mapping;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FunctionSeed {
    type Value = serde_yaml::Mapping;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct RawFunction")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut map = serde_yaml::Mapping::new();
        while let Some((k, v)) = m.next_entry::<serde_yaml::Value, serde_yaml::Value>()? {
            map.insert(k, v);
        }
        Ok(map)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    address: Option<OneOrMany>,
    gateway: Option<OneOrMany>,
    netns: Option<String>,
    ipv6: Option<bool>,
}

/// A `kind` value. `kind: null` is YAML's null, which names the `null` port kind here.
fn kind_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a kind name")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Some("null".to_string()))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_any(V)
}

/// A port as written: its `kind`, and its mapping's text for that kind to read
/// ([`nfv_dataplane::port::PortKind::load`]).
#[derive(Debug, Default)]
struct RawPort {
    kind: Option<String>,
    /// The port's mapping as the file writes it.
    text: String,
}

/// The `ports` mapping: [`Ordered`], each port read as a [`RawPort`].
struct PortsSeed<'a> {
    text: &'a str,
    index: &'a LineIndex,
}

impl<'de> serde::de::DeserializeSeed<'de> for PortsSeed<'_> {
    type Value = Ordered<RawPort>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PortsSeed<'_> {
    type Value = Ordered<RawPort>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of names")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ordered(Vec::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut v: Vec<(String, RawPort)> = Vec::new();
        let mut seen = Names::default();
        while let Some(k) = m.next_key::<String>()? {
            seen.first(&k)?;
            let (kind, value) = m.next_value_seed(PortSeed)?;
            // Its own text, so that its scalars read as written; re-written from the value
            // where the text has none of its own (a YAML alias).
            let text = self
                .index
                .text_of(self.text, &format!("ports.{k}"))
                .or_else(|| serde_yaml::to_string(&value).ok())
                .unwrap_or_default();
            v.push((k, RawPort { kind, text }));
        }
        Ok(Ordered(v))
    }
}

/// One port: its `kind` (YAML's null names the `null` kind), and its other keys as YAML
/// values, each key given once. An empty value is a port without keys; an explicit `null`
/// is not a port.
struct PortSeed;

impl<'de> serde::de::DeserializeSeed<'de> for PortSeed {
    type Value = (Option<String>, serde_yaml::Mapping);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_struct("RawPort", &["kind"], self)
    }
}

impl<'de> Visitor<'de> for PortSeed {
    type Value = (Option<String>, serde_yaml::Mapping);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct RawPort")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        struct Kind;
        impl<'de> serde::de::DeserializeSeed<'de> for Kind {
            type Value = Option<String>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                kind_or_null(d)
            }
        }
        let mut kind = None;
        let mut seen: Vec<String> = Vec::new();
        let mut rest = serde_yaml::Mapping::new();
        while let Some(k) = m.next_key::<String>()? {
            if seen.contains(&k) {
                return Err(serde::de::Error::custom(format!("duplicate field `{k}`")));
            }
            seen.push(k.clone());
            if k == "kind" {
                kind = m.next_value_seed(Kind)?;
            } else {
                let value: serde_yaml::Value = m.next_value()?;
                rest.insert(k.into(), value);
            }
        }
        Ok((kind, rest))
    }
}

/// A function as written: its `kind`, and its settings as written for that kind to read.
#[derive(Debug, Default)]
struct RawFunction {
    /// The `kind` value, if it is text.
    kind: Option<String>,
    /// Its kind in the registry, with its settings as written: the kind reads them itself.
    registered: Option<Registered>,
}

/// A function of a registered kind, before its kind has read it.
struct Registered {
    kind: &'static dyn Kind,
    /// The function's mapping as the file writes it.
    text: String,
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind.name(), self.text)
    }
}

impl RawFunction {
    /// A function as written: `value` is its mapping as YAML read it, `text` as the file
    /// writes it.
    fn new(value: &serde_yaml::Mapping, text: String) -> RawFunction {
        // `kind: null` is no kind; a kind that is not text is named as written.
        let kind = match value.get("kind") {
            None | Some(serde_yaml::Value::Null) => None,
            Some(serde_yaml::Value::String(k)) => Some(k.clone()),
            Some(other) => serde_yaml::to_string(other)
                .ok()
                .map(|k| k.trim().to_string()),
        };
        let registered = kind
            .as_deref()
            .and_then(nfv_functions::registry::find)
            .map(|kind| Registered { kind, text });
        RawFunction { kind, registered }
    }
}

// ---------------------------------------------------------------------------------------
// Loading

/// Load and validate the topology in `path`.
pub fn load_file(path: &Path) -> Result<Topology, LoadError> {
    let text = read_file(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// The most ports, functions, hosts or links one topology holds: the graph numbers ports,
/// functions and gates with 16 bits, and one worker polls every port.
pub const MAX_ITEMS: usize = 16_384;

/// The largest topology file: what `nfv reload` can send over the control socket
/// ([`crate::ctl::MAX_REQUEST`] less room for the request around it).
pub const MAX_FILE: u64 = (crate::ctl::MAX_REQUEST as u64) - (64 << 10);

/// The text of the topology file `path`: a regular file of at most [`MAX_FILE`] bytes (not
/// a device, a pipe or a file that keeps growing), so that loading is bounded.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    nfv_dataplane::config::read_bounded(path, MAX_FILE, "a topology file")
}

/// Load and validate `text`; `file` names it in messages.
pub fn load_str(text: &str, file: &Path) -> Result<Topology, LoadError> {
    let index = LineIndex::new(text);
    if let Some((key, (line, column))) = index.too_deep() {
        return Err(LoadError::Invalid(vec![TopologyError {
            file: file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: format!(
                "nested deeper than {} levels (a topology needs a handful)",
                lines::MAX_DEPTH
            ),
        }]));
    }
    let seed = TopologySeed {
        text,
        index: &index,
    };
    let raw = match serde::de::DeserializeSeed::deserialize(
        seed,
        serde_yaml::Deserializer::from_str(text),
    ) {
        Ok(r) => r,
        Err(e) => {
            return Err(LoadError::Invalid(vec![serde_error(
                &e, text, &index, file,
            )]))
        }
    };
    let mut v = Validator {
        file,
        index: &index,
        errors: Vec::new(),
        unread_ports: false,
    };
    let topo = v.topology(raw);
    if v.errors.is_empty() {
        Ok(topo)
    } else {
        v.errors.sort_by_key(|e| (e.line, e.column));
        Err(LoadError::Invalid(v.errors))
    }
}

/// Turn a serde_yaml error into ours. serde_yaml writes `PATH: MESSAGE at line L column C`
/// for type and key errors (no PATH at the top level) and libyaml's `PROBLEM at line L column
/// C, while parsing CONTEXT at line L2 column C2` for syntax errors. We keep the position,
/// move PATH into `key` (for a syntax error, the path the index was reading when it stopped),
/// point unknown and repeated keys at themselves, and word what was expected in the file's
/// terms rather than Rust's.
fn serde_error(e: &serde_yaml::Error, text: &str, index: &LineIndex, file: &Path) -> TopologyError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut full = e.to_string();
    if line > 0 {
        full = full.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    humanize(full, line, column, text, index, file)
}

/// A serde message `PATH: MESSAGE` (or a syntax error) at `line` and `column`, in the file's
/// terms: `key` is the path (the key itself for unknown and repeated keys, whose position
/// it takes), and the message says what was expected without Rust's names.
fn humanize(
    full: String,
    mut line: usize,
    mut column: usize,
    text: &str,
    index: &LineIndex,
    file: &Path,
) -> TopologyError {
    // The path ends at the first ": " that a serde message follows (keys may hold spaces).
    let path_end = full.match_indices(": ").map(|(i, _)| i).find(|&i| {
        let rest = &full[i + 2..];
        SERDE_MESSAGES.iter().any(|m| rest.starts_with(m))
    });
    let (mut key, mut message) = match path_end {
        Some(i) => (full[..i].to_string(), full[i + 2..].to_string()),
        None => (String::new(), full.clone()),
    };
    let syntax = path_end.is_none() && !SERDE_MESSAGES.iter().any(|m| message.starts_with(m));
    if let Some((problem, context)) = message
        .split_once(", while ")
        .filter(|(_, c)| syntax && (c.starts_with("parsing ") || c.starts_with("scanning ")))
    {
        let context = context.replacen(" at line ", " that starts at line ", 1);
        message = format!("{problem} (while {context})");
    }
    let quoted = |m: &str, prefix: &str| -> Option<(String, String)> {
        let (name, rest) = m.strip_prefix(prefix)?.split_once('`')?;
        Some((name.to_string(), rest.to_string()))
    };
    // serde_yaml's path stops at the mapping; serde_path_to_error's (a function's keys)
    // already ends with the unknown key.
    let with_field = |key: &str, field: &str| {
        if key == field || key.ends_with(&format!(".{field}")) {
            key.to_string()
        } else {
            join(key, field)
        }
    };
    if let Some((field, rest)) = quoted(&message, "unknown field `") {
        key = with_field(&key, &field);
        if let Some(at) = index.get(&key) {
            (line, column) = at;
        }
        message = match rest.strip_prefix(", expected ") {
            Some(allowed) => format!(
                "unknown key `{field}`: allowed keys are {}",
                allowed.trim_start_matches("one of ")
            ),
            None => format!("unknown key `{field}`: this mapping takes no keys"),
        };
    } else if let Some((field, _)) = quoted(&message, "missing field `") {
        key = join(&key, &field);
        message = format!("missing: `{field}` is required here");
    } else if let Some((field, what)) = quoted(&message, "duplicate field `")
        .map(|(f, _)| (f, "key"))
        .or_else(|| quoted(&message, "duplicate name `").map(|(f, _)| (f, "name")))
    {
        key = join(&key, &field);
        let first = index.get(&key).map(|(l, _)| l);
        if let Some(at) = index.repeated(&key) {
            (line, column) = at;
        }
        message = match first {
            Some(l) if l != line => {
                format!("the {what} `{field}` is given twice (first at line {l}): give it once")
            }
            _ => format!("the {what} `{field}` is given twice: give it once"),
        };
    } else if message.contains("more than one document") {
        if let Some(at) = index.second_document().or_else(|| second_document(text)) {
            (line, column) = at;
            message = "a topology file holds one YAML document, and a second one starts \
                       here: remove the `---` line"
                .into();
        } else {
            // libyaml found more text after the top-level mapping ended: an indentation slip.
            (line, column) = index.stopped_at().unwrap_or((1, 1));
            message = "more text after the end of the top-level mapping: check the \
                       indentation (top-level keys start in column 1)"
                .into();
        }
    }
    for (rust, ours) in [
        (
            "expected struct RawTopology",
            "expected a topology: a mapping with keys `name`, `hosts`, `ports`, `functions`, `links`, `metrics`",
        ),
        (
            "expected struct RawHost",
            "expected a host: a mapping with optional keys `address`, `gateway`, `netns`",
        ),
        (
            "expected struct RawPort",
            "expected a port: a mapping with `kind` and that kind's keys",
        ),
        (
            "expected struct RawFunction",
            "expected a function: a mapping with `kind` and that kind's keys",
        ),
        (
            "expected struct RawAttachment",
            "expected an attachment: `{ vlan: ID }` or `{ trunk: [ID, ...] }`",
        ),
        (
            "expected struct RawForward",
            "expected a forward: `{ proto: tcp, port: 8080, to: 192.168.1.10:80 }`",
        ),
        (
            "expected struct RawDirection",
            "expected a direction: a mapping with optional keys `default`, `allow`, `rules`",
        ),
        (
            "expected struct RawRule",
            "expected a rule: a mapping like `{ action: allow, proto: tcp, dst_port: 22 }`",
        ),
        ("expected a sequence", "expected a list"),
        ("expected field identifier", "expected a plain key name"),
        ("unit value", "empty value"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
    ] {
        message = message.replace(rust, ours);
    }
    if message.ends_with("expected a list") && key.starts_with("links[") && !key.contains("][") {
        message.push_str(": each link is a list of its ends, like `- [a, lan]`");
    }
    if message.starts_with("did not find expected key") {
        message.push_str("; check this line's indentation");
    } else if message.starts_with("mapping values are not allowed") {
        message.push_str("; check the indentation, or quote a value that contains `: `");
    } else if message.starts_with("found character that cannot start any token")
        && text
            .lines()
            .nth(line.saturating_sub(1))
            .and_then(|l| l.chars().nth(column.saturating_sub(1)))
            == Some('\t')
    {
        message = "a tab: YAML indents with spaces only".into();
    }
    if key.is_empty() {
        key = index.open_path().unwrap_or_default().to_string();
    }
    TopologyError {
        file: file.to_path_buf(),
        line,
        column,
        key,
        message,
    }
}

/// How serde's own messages start (after serde_yaml's `PATH: `).
const SERDE_MESSAGES: &[&str] = &[
    "invalid type: ",
    "invalid value: ",
    "invalid length ",
    "unknown field `",
    "unknown variant `",
    "missing field `",
    "duplicate field `",
    "duplicate name `",
];

/// Where a second document starts, by its `---` line, for texts the index could not read
/// that far: the first `---` after some content.
fn second_document(text: &str) -> Option<(usize, usize)> {
    let mut content = false;
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("---") {
            if content {
                return Some((i + 1, 1));
            }
        } else if !l.trim().is_empty() && !l.trim_start().starts_with('#') && !l.starts_with('%') {
            content = true;
        }
    }
    None
}

/// The validation pass: checks the raw file's meaning and builds the model, collecting every
/// error.
struct Validator<'a> {
    file: &'a Path,
    index: &'a LineIndex,
    errors: Vec<TopologyError>,
    /// Some port's settings could not be read (its kind reported why).
    unread_ports: bool,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_topology_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 24
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// `300`, `300s`, `5m`, `1h`.
/// The two sides of a two-sided wiring (two gates, a bare mention in a chain linking the
/// first to the left neighbour and the second to the right one), worded as sides.
fn two_sided(w: &Wiring) -> Option<[&str; 2]> {
    match (w.gates.as_slice(), w.through) {
        ([a, b], Some((0, 1))) => Some([a.as_str(), b.as_str()]),
        _ => None,
    }
}

/// The functions on the path from `from` to `to` through the wires of `adjacent` (a forest:
/// at most one path), in order, and the links it takes.
fn path(adjacent: &[Vec<(usize, usize)>], from: usize, to: usize) -> (Vec<usize>, Vec<usize>) {
    // Breadth first from `from`, remembering how each function was reached.
    let mut came: Vec<Option<(usize, usize)>> = vec![None; adjacent.len()];
    let mut seen = vec![false; adjacent.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    seen[from] = true;
    while let Some(f) = queue.pop_front() {
        if f == to {
            break;
        }
        for &(n, link) in &adjacent[f] {
            if !seen[n] {
                seen[n] = true;
                came[n] = Some((f, link));
                queue.push_back(n);
            }
        }
    }
    let (mut names, mut links) = (vec![to], Vec::new());
    let mut at = to;
    while let Some((prev, link)) = came[at] {
        links.push(link);
        names.push(prev);
        at = prev;
    }
    names.reverse();
    (names, links)
}

/// How a registered kind reports problems with a function's settings: at the key below
/// `functions.NAME`, serde's messages worded as the loader words its own.
struct KindReport<'v, 'a> {
    v: &'v mut Validator<'a>,
    /// `functions.NAME`.
    key: &'v str,
    /// The kind's name.
    kind: &'static str,
}

impl nfv_functions::kind::Report for KindReport<'_, '_> {
    fn absolute(&self, key: &str) -> String {
        join(self.key, key)
    }

    fn path(&self, written: &str) -> PathBuf {
        self.v.relative(written)
    }

    fn error_in(&mut self, file: &Path, line: usize, key: &str, message: String) {
        self.v.errors.push(TopologyError {
            file: file.to_path_buf(),
            line,
            column: 1,
            key: join(self.key, key),
            message,
        });
    }

    fn error(&mut self, key: &str, message: String) {
        // A key of another kind, or of none, at the function's top level.
        if let Some((key, allowed)) = unknown_own_key(key, &message) {
            let of_a_kind = nfv_functions::registry::KINDS
                .iter()
                .any(|k| k.keys().contains(&key));
            let message = if of_a_kind {
                let allowed = allowed.replace('`', "");
                format!("a `{}` takes no `{key}` (it takes: {allowed})", self.kind)
            } else {
                format!("unknown key `{key}`: allowed keys are `kind`, {allowed}")
            };
            return self.v.error(join(self.key, key), message);
        }
        self.v.settings_error(below(self.key, key), message);
    }
}

/// serde's `unknown field `F`, expected ...` about a kind's own mapping (`key` is `""`:
/// serde names an unknown key at the mapping that holds it): `F` and the allowed keys as
/// serde lists them, without its "one of ".
fn unknown_own_key<'m>(key: &str, message: &'m str) -> Option<(&'m str, &'m str)> {
    let (field, allowed) = message
        .strip_prefix("unknown field `")?
        .split_once("`, expected ")?;
    key.is_empty()
        .then(|| (field, allowed.trim_start_matches("one of ")))
}

/// The key path of `key` (relative to the function or port at `under`), `under` itself
/// for `""`.
fn below(under: &str, key: &str) -> String {
    if key.is_empty() {
        under.to_string()
    } else {
        join(under, key)
    }
}

/// How a port kind reports problems with a port's settings: at the key below `ports.NAME`,
/// serde's messages worded as the loader words its own. (A key only another port kind takes
/// the kind itself reports: `a `null` port takes no `mtu` (...)`.)
struct PortReport<'v, 'a> {
    v: &'v mut Validator<'a>,
    /// `ports.NAME`.
    key: &'v str,
}

impl Report for PortReport<'_, '_> {
    fn absolute(&self, key: &str) -> String {
        join(self.key, key)
    }

    fn error(&mut self, key: &str, message: String) {
        // The port's own keys also include `kind`.
        if let Some((field, allowed)) = unknown_own_key(key, &message) {
            let message = format!("unknown key `{field}`: allowed keys are `kind`, {allowed}");
            return self.v.error(join(self.key, field), message);
        }
        self.v.settings_error(below(self.key, key), message);
    }
}

/// The loader's own checks share the registry's schema helpers, which report this way.
impl Report for Validator<'_> {
    fn error(&mut self, key: &str, message: String) {
        Validator::error(self, key, message);
    }
}

impl Validator<'_> {
    /// A path from the file, relative to the topology file's directory.
    fn relative(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        match self.file.parent() {
            Some(d) if p.is_relative() => d.join(&p),
            _ => p,
        }
    }

    /// A problem a kind found in its settings at `key` (a full key path): serde's messages
    /// worded as the loader words its own, the kind's as they are.
    fn settings_error(&mut self, key: String, message: String) {
        if SERDE_MESSAGES.iter().any(|m| message.starts_with(m)) {
            let (line, column) = self.index.find(&key);
            let e = humanize(
                format!("{key}: {message}"),
                line,
                column,
                "",
                self.index,
                self.file,
            );
            self.errors.push(e);
        } else {
            self.error(key, message);
        }
    }

    fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let (line, column) = self.index.find(&key);
        self.errors.push(TopologyError {
            file: self.file.to_path_buf(),
            line,
            column,
            key,
            message: message.into(),
        });
    }

    fn line(&self, key: &str) -> usize {
        self.index.find(key).0
    }

    fn topology(&mut self, raw: RawTopology) -> Topology {
        let name = match raw.name.clone() {
            None => {
                self.error("name", "missing: every topology needs a `name`");
                String::new()
            }
            Some(n) if !valid_topology_name(&n) => {
                self.error(
                    "name",
                    format!("`{n}` is not a valid topology name: expected lowercase letters, digits and `-`, starting with a letter or digit, at most 24 characters"),
                );
                n
            }
            Some(n) => n,
        };

        // Names.
        for (section, names) in [
            (
                "hosts",
                raw.hosts
                    .0
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>(),
            ),
            (
                "ports",
                raw.ports.0.iter().map(|(n, _)| n.clone()).collect(),
            ),
            (
                "functions",
                raw.functions.0.iter().map(|(n, _)| n.clone()).collect(),
            ),
        ] {
            for n in names {
                if !valid_name(&n) {
                    self.error(
                        format!("{section}.{n}"),
                        format!("`{n}` is not a valid name: expected letters, digits, `_` and `-`"),
                    );
                }
            }
        }
        for (section, count) in [
            ("ports", raw.ports.0.len()),
            ("functions", raw.functions.0.len()),
            ("hosts", raw.hosts.0.len()),
            ("links", raw.links.len()),
        ] {
            if count > MAX_ITEMS {
                self.error(
                    section,
                    format!("{count} {section}: a topology holds at most {MAX_ITEMS} (one worker serves them all)"),
                );
            }
        }
        let port_names: HashSet<&str> = raw.ports.0.iter().map(|(n, _)| n.as_str()).collect();
        for (f, _) in &raw.functions.0 {
            if port_names.contains(f.as_str()) {
                self.error(
                    format!("functions.{f}"),
                    format!(
                        "`{f}` is also the name of a port; links name both, so names must differ"
                    ),
                );
            }
        }

        // serde fills a missing `ports` with an empty mapping; the index tells them apart.
        if self.index.get("ports").is_none() {
            self.error(
                "ports",
                "missing: every topology needs `ports`, a mapping of port names (e.g. `ports: { a: { kind: tap } }`)",
            );
        } else if raw.ports.0.is_empty() && !raw.links.is_empty() {
            self.error(
                "ports",
                "no ports, but there are links: frames enter and leave only through ports",
            );
        }
        let ports = self.ports(&raw);
        let hosts = self.hosts(&raw, &ports);
        let functions = self.functions(&raw);
        let links = self.links(&raw, &ports, &functions);
        if self.errors.is_empty() {
            // Every link was kept, so `links[i]` is the file's `links[i]`.
            self.loops(&links, &functions);
        }
        self.addresses(&hosts);
        self.macs(&ports);
        let metrics = self.metrics(raw.metrics.as_ref());

        Topology {
            name,
            file: self.file.to_path_buf(),
            hosts,
            ports,
            functions,
            links,
            metrics,
        }
    }

    /// The `metrics` key: `off`, or a mapping `{ listen: ADDR }` with ADDR an IP address
    /// and a port other than 0 (`127.0.0.1:9464`, `[::1]:9464`).
    fn metrics(&mut self, raw: Option<&serde_yaml::Value>) -> Metrics {
        use serde_yaml::Value;
        const SHAPE: &str =
            "expected `off`, or `{ listen: ADDRESS:PORT }` such as `{ listen: 127.0.0.1:9464 }`";
        let Some(v) = raw else {
            return Metrics::Default;
        };
        match v {
            Value::String(s) if s == "off" => Metrics::Off,
            Value::Bool(false) => Metrics::Off,
            Value::Mapping(m) => {
                let mut listen = None;
                for (k, val) in m {
                    let Some(k) = k.as_str() else {
                        self.error("metrics", format!("keys are names: {SHAPE}"));
                        continue;
                    };
                    if k != "listen" {
                        self.error(
                            format!("metrics.{k}"),
                            format!(
                                "unknown key `{k}`: `metrics` takes only `listen`{}",
                                did_you_mean(k, ["listen"])
                            ),
                        );
                        continue;
                    }
                    let text = match val {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    match text.parse::<std::net::SocketAddr>() {
                        Ok(a) if a.port() == 0 => self.error(
                            "metrics.listen",
                            format!("`{text}`: give a port other than 0, such as 127.0.0.1:9464"),
                        ),
                        Ok(a) => listen = Some(a),
                        Err(_) => self.error(
                            "metrics.listen",
                            format!("`{text}` is not an IP address and port, like 127.0.0.1:9464 or [::1]:9464"),
                        ),
                    }
                }
                match listen {
                    Some(a) => Metrics::Listen(a),
                    None => {
                        if m.is_empty() {
                            self.error("metrics", format!("missing: `listen`; {SHAPE}"));
                        }
                        Metrics::Default
                    }
                }
            }
            _ => {
                self.error("metrics", SHAPE);
                Metrics::Default
            }
        }
    }

    fn ports(&mut self, raw: &RawTopology) -> Vec<Port> {
        let host_names: HashSet<&str> = raw.hosts.0.iter().map(|(n, _)| n.as_str()).collect();
        let mut ports = Vec::new();
        let mut per_host: HashMap<String, usize> = HashMap::new();
        // Names only one port may use, by what they are: the port that claimed each.
        let mut claimed: HashMap<(&'static str, String), String> = HashMap::new();
        for (name, p) in &raw.ports.0 {
            let key = format!("ports.{name}");
            let Some(kind_name) = p.kind.as_deref() else {
                self.error(
                    format!("{key}.kind"),
                    format!(
                        "missing: a port needs a `kind`, one of {}",
                        one_of(&port_kinds())
                    ),
                );
                continue;
            };
            let Some(kind) = nfv_dataplane::port::registry::find(kind_name) else {
                self.error(
                    format!("{key}.kind"),
                    format!(
                        "unknown port kind `{kind_name}`: expected one of {}",
                        one_of(&port_kinds())
                    ),
                );
                continue;
            };
            let mut report = PortReport { v: self, key: &key };
            let Some(mut spec) = kind.load(name, &p.text, &mut report) else {
                self.unread_ports = true;
                continue;
            };
            // The lab's hook: a TAP that moves into a host names a host that exists, and
            // is its host's eth0, eth1, ... in file order.
            if let Some(tap) = spec.tap_mut() {
                if let Some(h) = tap.host.clone() {
                    if !host_names.contains(h.as_str()) {
                        let hint = did_you_mean(&h, host_names.iter().copied());
                        self.error(
                            format!("{key}.host"),
                            format!("no host named `{h}` (declare it under `hosts`){hint}"),
                        );
                    }
                    let n = per_host.entry(h).or_insert(0);
                    tap.ifname = format!("eth{n}");
                    *n += 1;
                }
            }
            for c in spec.claims() {
                let ckey = if c.key.is_empty() {
                    key.clone()
                } else {
                    join(&key, c.key)
                };
                if let Some(other) = claimed.insert((c.what, c.value.clone()), name.clone()) {
                    self.error(
                        ckey,
                        format!("{} `{}` is already used by port `{other}`", c.what, c.value),
                    );
                }
            }
            ports.push(Port {
                name: name.clone(),
                settings: PortSettings(spec),
                line: self.line(&key),
            });
        }
        ports
    }

    fn hosts(&mut self, raw: &RawTopology, ports: &[Port]) -> Vec<Host> {
        let mut hosts = Vec::new();
        // The lab's hook: the TAPs that move into each host, in file order.
        let mut taps_of: HashMap<&str, Vec<(&String, &TapConfig)>> = HashMap::new();
        for p in ports {
            if let Some(t) = p.settings.0.tap() {
                if let Some(host) = t.host.as_deref() {
                    taps_of.entry(host).or_default().push((&p.name, t));
                }
            }
        }
        for (name, h) in &raw.hosts.0 {
            let key = format!("hosts.{name}");
            let empty = RawHost::default();
            let h = h.as_ref().unwrap_or(&empty);
            let taps = taps_of.remove(name.as_str()).unwrap_or_default();
            // A port whose settings could not be read may have been this host's.
            if taps.is_empty() && !self.unread_ports {
                self.error(&key, format!("host `{name}` has no port: give it one with `ports: {{ NAME: {{ kind: tap, host: {name} }} }}`"));
            }
            // The host's `address`: one IPv4 and any IPv6 addresses, for its first interface.
            let written: Vec<(String, &str)> = h
                .address
                .iter()
                .flat_map(|list| {
                    let k = format!("{key}.address");
                    list.items
                        .iter()
                        .enumerate()
                        .map(move |(n, a)| (list.key(&k, n), a.as_str()))
                })
                .collect();
            let (host_address, host_addresses6) = self.host_addresses(&written);
            let mut interfaces = Vec::new();
            for (i, (pname, tap)) in taps.iter().enumerate() {
                let pkey = format!("ports.{pname}");
                let written: Vec<(String, &str)> = tap
                    .address
                    .iter()
                    .map(|a| (format!("{pkey}.address"), a.as_str()))
                    .collect();
                let (mut address, mut addresses6) = self.host_addresses(&written);
                if i == 0 && h.address.is_some() {
                    if tap.address.is_some() {
                        self.error(format!("{pkey}.address"), format!("host `{name}` already gives its first interface an address; give it in one place"));
                    }
                    address = host_address;
                    addresses6 = host_addresses6.clone();
                }
                interfaces.push(HostInterface {
                    port: (*pname).clone(),
                    ifname: tap.ifname.clone(),
                    address,
                    addresses6,
                    mac: tap.mac,
                });
            }
            let (mut gateway, mut gateway6) = (None, None);
            if let Some(list) = &h.gateway {
                for (n, g) in list.items.iter().enumerate() {
                    let gkey = list.key(&format!("{key}.gateway"), n);
                    if g == "none" {
                        continue;
                    }
                    if g.contains(':') {
                        match self.host_gateway6(&gkey, name, g, &interfaces) {
                            Some(_) if gateway6.is_some() => {
                                self.error(gkey, "one IPv6 gateway per host".to_string())
                            }
                            Some(gw) => gateway6 = Some(gw),
                            None => {}
                        }
                        continue;
                    }
                    match self.host_gateway(&gkey, name, g, &interfaces) {
                        Some(_) if gateway.is_some() => {
                            self.error(gkey, "one IPv4 gateway per host".to_string())
                        }
                        Some(gw) => gateway = Some(gw),
                        None => {}
                    }
                }
            }
            if let Some(ns) = &h.netns {
                if ns.is_empty()
                    || ns.len() > 64
                    || !ns
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    || ns.starts_with('.')
                {
                    self.error(format!("{key}.netns"), format!("`{ns}` is not a usable namespace name: letters, digits, `_`, `-` and `.`, at most 64"));
                }
            }
            hosts.push(Host {
                name: name.clone(),
                netns: h.netns.clone(),
                gateway,
                gateway6,
                ipv6: h.ipv6,
                interfaces,
                line: self.line(&key),
            });
        }
        hosts
    }

    /// A host interface's addresses as written (each with its key): at most one IPv4 and any
    /// IPv6 ones; each problem reported at its key.
    fn host_addresses(
        &mut self,
        written: &[(String, &str)],
    ) -> (Option<Ipv4Network>, Vec<Ipv6Network>) {
        let (mut v4, mut v6) = (None, Vec::new());
        for (k, a) in written {
            if a.contains(':') {
                match parse_cidr6(a) {
                    Ok(net) => v6.push(net),
                    Err(m) => self.error(k, m),
                }
                continue;
            }
            match parse_cidr(a) {
                Ok(_) if v4.is_some() => self.error(
                    k,
                    "a host interface has one IPv4 address (IPv6 ones as many as needed)"
                        .to_string(),
                ),
                Ok(net) => v4 = Some(net),
                Err(m) => self.error(k, m),
            }
        }
        (v4, v6)
    }

    /// The IPv4 gateway `g` of host `name` at `key`, checked against its interfaces.
    fn host_gateway(
        &mut self,
        key: &str,
        name: &str,
        g: &str,
        interfaces: &[HostInterface],
    ) -> Option<Ipv4Addr> {
        let Ok(gw) = g.parse::<Ipv4Addr>() else {
            self.error(
                key,
                format!("`{g}` is not an IPv4 or IPv6 address or `none`"),
            );
            return None;
        };
        let nets: Vec<Ipv4Network> = interfaces.iter().filter_map(|i| i.address).collect();
        if nets.is_empty() {
            self.error(key, format!("gateway {gw} needs an address on host `{name}` in its subnet: give the host an `address`, or write `gateway: none`"));
        } else if !nets.iter().any(|n| n.contains(gw)) {
            let list: Vec<String> = nets
                .iter()
                .map(|n| format!("{}/{}", n.network(), n.prefix()))
                .collect();
            self.error(
                key,
                format!(
                    "gateway {gw} is not in the host's subnet ({})",
                    list.join(", ")
                ),
            );
        } else if nets.iter().any(|n| n.ip() == gw) {
            self.error(key, format!("gateway {gw} is the host's own address"));
        }
        Some(gw)
    }

    /// The IPv6 gateway `g` of host `name` at `key`: link-local, or in one of its prefixes.
    fn host_gateway6(
        &mut self,
        key: &str,
        name: &str,
        g: &str,
        interfaces: &[HostInterface],
    ) -> Option<Ipv6Addr> {
        let Ok(gw) = g.parse::<Ipv6Addr>() else {
            self.error(
                key,
                format!("`{g}` is not an IPv4 or IPv6 address or `none`"),
            );
            return None;
        };
        let link_local = gw.is_unicast_link_local();
        let nets: Vec<&Ipv6Network> = interfaces.iter().flat_map(|i| &i.addresses6).collect();
        if link_local {
            if interfaces.len() > 1 {
                self.error(key, format!("a link-local gateway ({gw}) names no interface on host `{name}`, which has several: give a global address"));
            }
        } else if !nets.iter().any(|n| n.contains(gw)) {
            self.error(key, format!("gateway {gw} is in none of host `{name}`'s IPv6 prefixes: give the host an IPv6 `address` there, or a link-local gateway"));
        } else if nets.iter().any(|n| n.ip() == gw) {
            self.error(key, format!("gateway {gw} is the host's own address"));
        }
        Some(gw)
    }

    fn functions(&mut self, raw: &RawTopology) -> Vec<Function> {
        let mut out = Vec::new();
        for (name, f) in &raw.functions.0 {
            let key = format!("functions.{name}");
            let kind = match f.kind.as_deref() {
                None => {
                    self.error(
                        format!("{key}.kind"),
                        format!(
                            "missing: a function needs a `kind`, one of {}",
                            one_of(&function_kinds())
                        ),
                    );
                    continue;
                }
                Some(_) if f.registered.is_some() => {
                    let Some(r) = &f.registered else { continue };
                    let mut report = KindReport {
                        v: self,
                        key: &key,
                        kind: r.kind.name(),
                    };
                    match r.kind.load(&r.text, &mut report) {
                        Some(spec) => Settings(spec),
                        None => continue,
                    }
                }
                Some(other) => {
                    self.error(
                        format!("{key}.kind"),
                        format!(
                            "unknown function kind `{other}`: expected one of {}",
                            one_of(&function_kinds())
                        ),
                    );
                    continue;
                }
            };
            out.push(Function {
                name: name.clone(),
                settings: kind,
                line: self.line(&key),
            });
        }
        // The cross-kind hook: a function that names ROUTER.INTERFACE (a NAT's masquerade)
        // gets that interface's address, or is left out with the problem reported.
        let masquerading: Vec<(usize, nfv_functions::kind::Masquerade)> = out
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.settings.0.masquerade().map(|m| (i, m)))
            .collect();
        let mut refused = Vec::new();
        for (i, m) in masquerading {
            let key = format!("functions.{}.{}", out[i].name, m.key);
            match self.masquerade_address(&key, &m, raw, &out) {
                Some(address) => out[i].settings.0.masquerade_resolved(address),
                None => refused.push(i),
            }
        }
        let mut i = 0;
        out.retain(|_| {
            i += 1;
            !refused.contains(&(i - 1))
        });
        out
    }

    fn links(&mut self, raw: &RawTopology, ports: &[Port], functions: &[Function]) -> Vec<Link> {
        // Names, kinds and wirings looked up once per link end: a file of many links
        // loads in time linear in its size.
        let port_names: HashSet<&str> = raw.ports.0.iter().map(|(n, _)| n.as_str()).collect();
        let fn_names: HashSet<&str> = raw.functions.0.iter().map(|(n, _)| n.as_str()).collect();
        let kinds: HashMap<&str, &'static dyn Kind> = raw
            .functions
            .0
            .iter()
            .filter_map(|(n, rf)| Some((n.as_str(), rf.registered.as_ref()?.kind)))
            .collect();
        let registered = |f: &str| -> Option<&'static dyn Kind> { kinds.get(f).copied() };
        let wirings: HashMap<&str, Wiring> = functions
            .iter()
            .map(|f| (f.name.as_str(), f.settings.0.wiring()))
            .collect();
        let mut port_used: HashMap<String, String> = HashMap::new();
        let mut att_used: HashMap<String, String> = HashMap::new();
        // Two-sided functions with a wrong link end: not also reported as not linked.
        let mut wrong_ends: HashSet<String> = HashSet::new();
        let mut links = Vec::new();
        for (li, ends) in raw.links.iter().enumerate() {
            let lkey = format!("links[{li}]");
            let mut ok = true;
            if ends.len() < 2 {
                self.error(
                    &lkey,
                    format!(
                        "a link needs at least two ends, like `[a, lan]`; this one has {}",
                        ends.len()
                    ),
                );
                ok = false;
            }
            // Resolved ends with their index in the link.
            let mut resolved: Vec<(usize, LinkEnd)> = Vec::new();
            for (ei, end) in ends.iter().enumerate() {
                let ekey = format!("{lkey}[{ei}]");
                let (head, sub) = match end.split_once('.') {
                    Some((h, s)) => (h, Some(s)),
                    None => (end.as_str(), None),
                };
                let middle = ei > 0 && ei + 1 < ends.len();
                if middle && (port_names.contains(&head) || sub.is_some()) {
                    self.error(&ekey, format!("`{end}` is a single wire end; it can only be the first or last end of a link"));
                    ok = false;
                    continue;
                }
                if port_names.contains(&head) {
                    if sub.is_some() {
                        self.error(
                            &ekey,
                            format!("`{end}`: port `{head}` has no sub-ends; write `{head}`"),
                        );
                        ok = false;
                        continue;
                    }
                    if let Some(prev) = port_used.insert(head.to_string(), ekey.clone()) {
                        self.error(&ekey, format!("port `{head}` is already linked at {prev}; a port is a single wire end"));
                        ok = false;
                    }
                    resolved.push((ei, LinkEnd::Port(head.to_string())));
                } else if fn_names.contains(&head) {
                    // A function whose settings were refused is reported already.
                    let linked = match (registered(head), wirings.get(head)) {
                        (Some(reg), Some(w)) => {
                            self.gated_end(head, reg.name(), w, sub, middle, &ekey, &mut att_used)
                        }
                        _ => false,
                    };
                    if linked {
                        resolved.push((
                            ei,
                            LinkEnd::Function {
                                name: head.to_string(),
                                attachment: sub.map(str::to_string),
                            },
                        ));
                    } else {
                        wrong_ends.insert(head.to_string());
                        ok = false;
                    }
                } else {
                    let names = raw.ports.0.iter().map(|(n, _)| n.as_str());
                    let names = names.chain(raw.functions.0.iter().map(|(n, _)| n.as_str()));
                    let hint = did_you_mean(head, names);
                    self.error(
                        &ekey,
                        format!("`{head}` is neither a port nor a function{hint}"),
                    );
                    ok = false;
                }
            }
            // A port or attachment twice is reported above; this is a function's anonymous
            // attachments wired to each other.
            for w in resolved.windows(2) {
                if let [(
                    _,
                    a @ LinkEnd::Function {
                        attachment: None,
                        name,
                    },
                ), (ei, b)] = w
                {
                    if a == b {
                        self.error(
                            format!("{lkey}[{ei}]"),
                            format!(
                                "`{name}` is wired to itself: a link joins two different things"
                            ),
                        );
                        ok = false;
                    }
                }
            }
            if ok {
                links.push(Link {
                    ends: resolved.into_iter().map(|(_, e)| e).collect(),
                    line: self.line(&lkey),
                });
            }
        }
        for p in ports {
            if !port_used.contains_key(&p.name) {
                self.error(
                    format!("ports.{}", p.name),
                    format!(
                        "port `{}` is not linked to anything (add it to `links`)",
                        p.name
                    ),
                );
            }
        }
        for f in functions.iter().filter(|f| !wrong_ends.contains(&f.name)) {
            self.gates_linked(&f.name, &f.settings, &att_used);
        }
        links
    }

    /// Refuse links that close a loop of functions that pass a broadcast on: those that
    /// flood ([`Spec::floods`](nfv_functions::kind::Spec::floods): switches) and those that
    /// pass frames between two gates ([`Wiring::through`]: a firewall, NAT or mirror between
    /// switches passes ARP broadcasts on, so it is part of the loop). nfv has no spanning
    /// tree: such a loop would carry a broadcast round for ever (the dataplane's hop limit
    /// contains it, dropping the traffic). Each wire between two such ends joins them; the
    /// wire that joins two already connected is reported, with every link of the loop.
    /// Every gate of a pass-through function counts: a mirror's `monitor` gets a copy of
    /// what crosses it, so a monitor linked back to the segment brings broadcasts round
    /// again. (A mirror that copies one direction only, looped through its other gate and
    /// its monitor, is refused although copies would not come round: a rare, odd case.)
    fn loops(&mut self, links: &[Link], functions: &[Function]) {
        let index: HashMap<&str, usize> = functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        let carries: Vec<bool> = functions
            .iter()
            .map(|f| f.settings.0.floods() || f.settings.0.wiring().through.is_some())
            .collect();
        // The function a link end belongs to, if a broadcast crosses it there.
        let carrier = |end: &LinkEnd| -> Option<usize> {
            let LinkEnd::Function { name, .. } = end else {
                return None;
            };
            let i = *index.get(name.as_str())?;
            carries[i].then_some(i)
        };
        let mut root: Vec<usize> = (0..functions.len()).collect();
        fn find(root: &mut [usize], mut i: usize) -> usize {
            while root[i] != i {
                root[i] = root[root[i]];
                i = root[i];
            }
            i
        }
        // The wires kept so far: (function, neighbour, link index).
        let mut adjacent: Vec<Vec<(usize, usize)>> = vec![Vec::new(); functions.len()];
        for (li, link) in links.iter().enumerate() {
            for pair in link.ends.windows(2) {
                let (Some(u), Some(v)) = (carrier(&pair[0]), carrier(&pair[1])) else {
                    continue;
                };
                let (ru, rv) = (find(&mut root, u), find(&mut root, v));
                if ru != rv {
                    root[ru] = rv;
                    adjacent[u].push((v, li));
                    adjacent[v].push((u, li));
                    continue;
                }
                // Already connected: the path from u to v through the kept wires, plus this.
                let (names, mut on_loop) = path(&adjacent, u, v);
                on_loop.push(li);
                on_loop.sort_unstable();
                on_loop.dedup();
                let names = names
                    .iter()
                    .map(|&i| format!("`{}`", functions[i].name))
                    .collect::<Vec<_>>()
                    .join(", ");
                let list = on_loop
                    .iter()
                    .map(|l| format!("links[{l}]"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.error(
                    format!("links[{li}]"),
                    format!(
                        "this link closes a loop through {names}: a broadcast a switch floods would go round it for ever (a firewall, NAT or mirror on the way passes broadcasts on); nfv has no spanning tree: remove one of these links: {list}"
                    ),
                );
            }
        }
    }

    /// Check one link end naming a nat or firewall `head` (of kind `k`) and record the sides
    /// it links in `used`; false if it is wrong. `NAME.inside` and `NAME.outside` are single
    /// wire ends (the caller refuses them in the middle of a chain); a bare `NAME` in the
    /// middle of a chain links both sides.
    /// Check the link end `head` or `head.SUB` of a function of a registered kind (`k`)
    /// against its wiring, and record the gates it links in `used`. False if refused.
    #[allow(clippy::too_many_arguments)]
    fn gated_end(
        &mut self,
        head: &str,
        k: &str,
        wiring: &Wiring,
        sub: Option<&str>,
        middle: bool,
        ekey: &str,
        used: &mut HashMap<String, String>,
    ) -> bool {
        if let Some(sides) = two_sided(wiring) {
            return self.two_sided_end(head, k, sides, sub, middle, ekey, used);
        }
        // A bare mention of a growing function is a gate of its own (added by the plan).
        if sub.is_none() && wiring.grows {
            return true;
        }
        if wiring.single {
            let end = sub.map_or(head.to_string(), |s| format!("{head}.{s}"));
            if sub.is_some() {
                self.error(
                    ekey,
                    format!("`{end}`: a {k} has one wire end and no sub-ends; write `{head}`"),
                );
                return false;
            }
            if middle {
                self.error(ekey, format!("`{head}` is a {k}, a single wire end; it can only be the first or last end of a link"));
                return false;
            }
            if let Some(prev) = used.insert(head.to_string(), ekey.to_string()) {
                self.error(ekey, format!("{k} `{head}` is already linked at {prev}; it has a single wire end (link it to a switch that serves several ports)"));
                return false;
            }
            return true;
        }
        let names: Vec<&str> = wiring
            .gates
            .iter()
            .map(String::as_str)
            .filter(|g| !g.is_empty())
            .collect();
        let noun = wiring.noun;
        if let (Some(s), Some(under)) = (sub, wiring.declared_under) {
            if !names.contains(&s) {
                let hint = did_you_mean(s, names.iter().copied());
                self.error(ekey, format!("`{head}.{s}`: function `{head}` has no {noun} `{s}` (declare it under functions.{head}.{under}){hint}"));
                return false;
            }
        }
        let listed = names
            .iter()
            .map(|g| format!("`{head}.{g}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let chain = |(l, r): (u16, u16)| {
            let name = |g: u16| names.get(usize::from(g)).copied().unwrap_or("?");
            format!(
                "in the middle of a chain its left neighbour is on `{}` and its right one on `{}`",
                name(l),
                name(r)
            )
        };
        let gates: Vec<&str> = match (sub, wiring.through) {
            (Some(s), _) if !names.contains(&s) => {
                let hint = did_you_mean(s, names.iter().copied());
                self.error(
                    ekey,
                    format!("`{head}.{s}`: a {k} has the gates {listed}{hint}"),
                );
                return false;
            }
            (Some(s), _) => vec![s],
            (None, Some(through)) if middle => {
                let name = |g: u16| names.get(usize::from(g)).copied().unwrap_or_default();
                vec![name(through.0), name(through.1)]
            }
            (None, None) if wiring.declared_under.is_some() => {
                let under = wiring.declared_under.unwrap_or_default();
                let example = names.first().copied().unwrap_or("lan");
                self.error(
                    ekey,
                    format!(
                        "a {k} is linked by {noun}: write `{head}.{example}` (its {under}: {})",
                        names.join(", ")
                    ),
                );
                return false;
            }
            (None, through) => {
                let how = through
                    .map(|t| format!("; {}", chain(t)))
                    .unwrap_or_default();
                self.error(
                    ekey,
                    format!(
                        "`{head}` is a {k}: at the end of a link name its gate ({listed}){how}"
                    ),
                );
                return false;
            }
        };
        self.link_once(head, &gates, ekey, used, |full, prev| {
            if wiring.declared_under.is_some() {
                format!("{noun} `{full}` is already linked at {prev}; an {noun} is a single wire end")
            } else if sub.is_some() {
                format!("{noun} `{full}` is already linked at {prev}; each {noun} of a {k} is linked exactly once")
            } else {
                format!("`{head}` in the middle of a chain links `{full}`, but it is already linked at {prev}; each {noun} of a {k} is linked exactly once")
            }
        })
    }

    /// Record that the link end `ekey` links gates `gates` of `head` in `used`; a gate
    /// linked already is reported with `message(full name, where)` and refuses the end.
    fn link_once(
        &mut self,
        head: &str,
        gates: &[&str],
        ekey: &str,
        used: &mut HashMap<String, String>,
        message: impl Fn(&str, &str) -> String,
    ) -> bool {
        let mut ok = true;
        for g in gates {
            let full = format!("{head}.{g}");
            if let Some(prev) = used.get(&full) {
                let m = message(&full, prev);
                self.error(ekey, m);
                ok = false;
            } else {
                used.insert(full, ekey.to_string());
            }
        }
        ok
    }

    /// Report the sides of the two-sided function `name` (of kind `k`) that no link names.
    fn sides_linked(
        &mut self,
        name: &str,
        k: &str,
        [a, b]: [&str; 2],
        used: &HashMap<String, String>,
    ) {
        let missing: Vec<&str> = [a, b]
            .into_iter()
            .filter(|s| !used.contains_key(&format!("{name}.{s}")))
            .collect();
        match missing.as_slice() {
            [] => {}
            [side] => self.error(
                format!("functions.{name}"),
                format!(
                    "the {side} side of {k} `{name}` is not linked: link it as `{name}.{side}` at the end of a link, or put `{name}` in the middle of a chain (its left neighbour is the {a})"
                ),
            ),
            _ => self.error(
                format!("functions.{name}"),
                format!(
                    "{k} `{name}` is not linked: put it in the middle of a chain, like `[lan, {name}, wan]` (the left neighbour is the {a}), or link `{name}.{a}` and `{name}.{b}` at the ends of links"
                ),
            ),
        }
    }

    /// Report the gates of the registered-kind function `name` that no link names.
    fn gates_linked(&mut self, name: &str, settings: &Settings, used: &HashMap<String, String>) {
        let wiring = settings.0.wiring();
        let k = settings.0.kind().name();
        if let Some(sides) = two_sided(&wiring) {
            return self.sides_linked(name, k, sides, used);
        }
        if wiring.single {
            if !used.contains_key(name) {
                self.error(
                    format!("functions.{name}"),
                    format!("{k} `{name}` is not linked: link it to the switch of the segment it serves, like `[{name}, lan]`"),
                );
            }
            return;
        }
        if let Some(under) = wiring.declared_under {
            for g in wiring.gates.iter().filter(|g| !g.is_empty()) {
                let full = format!("{name}.{g}");
                if !used.contains_key(&full) {
                    let noun = wiring.noun;
                    self.error(
                        format!("functions.{name}.{under}.{g}"),
                        format!("{noun} `{full}` is declared but not linked (link it as `{full}`, or remove it)"),
                    );
                }
            }
            return;
        }
        let missing: Vec<String> = wiring
            .gates
            .iter()
            .map(|g| format!("{name}.{g}"))
            .filter(|full| !used.contains_key(full))
            .collect();
        if missing.is_empty() {
            return;
        }
        let list = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let through = wiring
            .through
            .map(|(l, r)| {
                let g = |i: u16| {
                    wiring
                        .gates
                        .get(usize::from(i))
                        .cloned()
                        .unwrap_or_default()
                };
                format!(
                    "; `[x, {name}, y]` links `{name}.{}` and `{name}.{}`",
                    g(l),
                    g(r)
                )
            })
            .unwrap_or_default();
        self.error(
            format!("functions.{name}"),
            format!("{k} `{name}`: {list} not linked (each gate of a {k} is linked exactly once{through})"),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn two_sided_end(
        &mut self,
        head: &str,
        k: &str,
        [a, b]: [&str; 2],
        sub: Option<&str>,
        middle: bool,
        ekey: &str,
        used: &mut HashMap<String, String>,
    ) -> bool {
        let sides: Vec<&str> = match sub {
            Some(s) if s != a && s != b => {
                let hint = did_you_mean(s, [a, b]);
                self.error(
                    ekey,
                    format!("`{head}.{s}`: a {k} has two sides, `{a}` and `{b}`; write `{head}.{a}` or `{head}.{b}`{hint}"),
                );
                return false;
            }
            Some(s) => vec![s],
            None if !middle => {
                self.error(
                    ekey,
                    format!("`{head}` is a {k}: at the end of a link write `{head}.{a}` or `{head}.{b}`; in the middle of a chain the left side is {a}"),
                );
                return false;
            }
            None => vec![a, b],
        };
        self.link_once(head, &sides, ekey, used, |full, prev| {
            if sub.is_some() {
                format!("side `{full}` is already linked at {prev}; each side of a {k} is linked exactly once")
            } else {
                format!("`{head}` in the middle of a chain links both its sides, but `{full}` is already linked at {prev}; each side of a {k} is linked exactly once")
            }
        })
    }

    fn addresses(&mut self, hosts: &[Host]) {
        let mut seen: HashMap<Ipv4Addr, String> = HashMap::new();
        for h in hosts {
            for (i, iface) in h.interfaces.iter().enumerate() {
                let Some(a) = iface.address else { continue };
                let key = if i == 0
                    && self
                        .index
                        .get(&format!("hosts.{}.address", h.name))
                        .is_some()
                {
                    format!("hosts.{}.address", h.name)
                } else {
                    format!("ports.{}.address", iface.port)
                };
                if a.prefix() < 31 && (a.ip() == a.network() || a.ip() == a.broadcast()) {
                    self.error(
                        &key,
                        format!(
                            "{a} is the subnet's network or broadcast address, not a host address"
                        ),
                    );
                }
                if let Some(prev) = seen.insert(a.ip(), key.clone()) {
                    self.error(
                        &key,
                        format!("address {} is already used at {prev}", a.ip()),
                    );
                }
            }
        }
    }

    /// No two ports share a MAC address (the hook `PortSpec::mac`: a TAP's host side, the
    /// address a sink announces).
    fn macs(&mut self, ports: &[Port]) {
        let mut seen: HashMap<MacAddr, String> = HashMap::new();
        for p in ports {
            if let Some(mac) = p.settings.0.mac() {
                let key = format!("ports.{}.mac", p.name);
                if let Some(prev) = seen.insert(mac, key.clone()) {
                    self.error(&key, format!("MAC {mac} is already used at {prev}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod l3_tests;

#[cfg(test)]
mod kind_tests;
