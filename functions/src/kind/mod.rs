//! What a function kind is, to the rest of nfv: the one interface through which
//! `nfv-control` learns a kind, so that a new kind is a folder of this crate plus one line in
//! [`crate::registry`].
//!
//! A kind owns everything about itself:
//! - its **settings schema**: [`Kind::load`] reads the function's keys (every key of its
//!   mapping but `kind`) with serde, refusing unknown ones, and runs its semantic checks,
//!   reporting each problem by key path (relative to the function) through a [`Report`];
//! - its **gates** and how links name them ([`Wiring`]);
//! - its **node** ([`Spec::build`]) and the stats the node shares ([`Stats`]);
//! - its **reconfigure-in-place rule** ([`Spec::reconfigure_from`]);
//! - its **`nfv show` tables** ([`Kind::tables`], answered by the node's
//!   [`Node::show`](nfv_dataplane::Node::show));
//! - its **metrics** ([`Kind::metrics`] declares them; [`Stats::visit`] reads them, once, for
//!   Prometheus, the exit summary and the tests that check metric names alike).
//!
//! Dynamic dispatch is used at load, build, reload and scrape time only; the packet path is
//! the node's own `process`, one call per batch, monomorphic inside.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use nfv_dataplane::Node;

pub mod checks;
pub mod schema;

/// Reading a kind's settings, shared with the port kinds of the dataplane: re-exported
/// under the names every kind uses.
pub use nfv_dataplane::config::{read, settings, Counting, Problems, Report, SkipKeys};

/// A function kind.
pub trait Kind: Sync {
    /// The name a topology gives in `kind:`, e.g. `"mirror"`.
    fn name(&self) -> &'static str;
    /// One line for `nfv --help` and the docs: what the kind does and its keys.
    fn about(&self) -> &'static str;
    /// The keys its settings take (besides `kind`), as its serde schema reads them; a
    /// registry test checks the two agree.
    fn keys(&self) -> &'static [&'static str];
    /// The `nfv show` tables its nodes answer.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
    /// Every metric its [`Stats`] report.
    fn metrics(&self) -> &'static [&'static Metric] {
        &[]
    }
    /// Read and check a function's settings: `text` is the YAML of its mapping as the file
    /// writes it, `kind` key included (read it with [`settings`]). Every problem goes to
    /// `report`; `None` if there was one.
    fn load(&self, text: &str, report: &mut dyn Report) -> Option<Box<dyn Spec>>;
}

/// How a function's gates are named and linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wiring {
    /// Gate names in gate order; a link names gate `g` of function `f` as `f.g`. Each named
    /// gate is linked exactly once; a gate with an empty name is one that a bare mention
    /// added ([`Spec::add_gate`]) and is linked where it was mentioned.
    pub gates: Vec<String>,
    /// The two gates a bare mention of the function in the middle of a chain links: the one
    /// facing its left neighbour and the one facing its right one. `None`: the function
    /// can only be linked by gate name (or grows, below).
    pub through: Option<(u16, u16)>,
    /// Each bare mention adds a gate of its own ([`Spec::add_gate`]), at either end of a
    /// link or (one per side) in the middle of a chain: a switch's anonymous attachments.
    pub grows: bool,
    /// What a named gate is called in messages (`gate`, `attachment`).
    pub noun: &'static str,
    /// One unnamed gate, linked by the function's bare name at one end of one link (a DHCP
    /// server).
    pub single: bool,
    /// The key the named gates are declared under in the settings (`attachments`), if any.
    pub declared_under: Option<&'static str>,
}

impl Wiring {
    /// Fixed named gates, called gates, not declared in the settings.
    pub fn fixed(gates: &[&str], through: Option<(u16, u16)>) -> Wiring {
        Wiring {
            gates: gates.iter().map(|g| g.to_string()).collect(),
            through,
            grows: false,
            single: false,
            noun: "gate",
            declared_under: None,
        }
    }
}

/// What building a node needs to know besides the settings.
#[derive(Clone, Copy, Debug)]
pub struct BuildContext<'a> {
    /// The topology's name.
    pub topology: &'a str,
    /// The function's name.
    pub function: &'a str,
    /// Cross-kind hook: the state `nfv-control` keeps in the file [`Spec::state_file`]
    /// names (a DHCP server's leases), when there is one.
    pub leases: Option<&'a LeaseStore>,
}

/// A DHCP server's leases as `nfv-control` keeps them (see [`BuildContext::leases`]).
#[derive(Clone, Debug)]
pub struct LeaseStore {
    /// The leases read from the file at start.
    pub known: Vec<crate::dhcp::Lease>,
    /// Where the server sends its leases after every change (a writer thread saves them).
    pub updates: crossbeam_channel::Sender<crate::dhcp::LeaseUpdate>,
    /// Unix time in seconds at the worker clock's zero (lease files hold wall-clock times).
    pub wall_at_zero: u64,
}

/// A stable, locally administered unicast MAC address for `parts` (topology, function and
/// interface names): the same names give the same address in every run, so hosts' ARP
/// caches and DHCP clients see the same router and server after a restart.
pub fn derived_mac(parts: &[&str]) -> nfv_dataplane::MacAddr {
    // FNV-1a, 64 bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let b = h.to_be_bytes();
    nfv_dataplane::MacAddr([0x0a, b[0], b[1], b[2], b[3], b[4]])
}

/// A node and the stats it shares with the control side.
pub struct Built {
    /// The node.
    pub node: Box<dyn Node>,
    /// Its stats.
    pub stats: Arc<dyn Stats>,
}

impl Built {
    /// `node`, sharing `stats`.
    pub fn new<N: Node + 'static, S: Stats>(node: N, stats: Arc<S>) -> Built {
        Built {
            node: Box::new(node),
            stats,
        }
    }
}

/// A function's checked settings: what it becomes, and how it is wired and reconfigured.
pub trait Spec: Debug + Send + Sync + SpecBase {
    /// Its kind.
    fn kind(&self) -> &'static dyn Kind;
    /// Its gates.
    fn wiring(&self) -> Wiring;
    /// Make its node.
    fn build(&self, at: &BuildContext<'_>) -> Result<Built, String>;
    /// The configuration a running node built from `old` takes in place
    /// ([`Node::reconfigure`]) to behave as this spec says, keeping its state and counters;
    /// `None` (the default) if it must be made anew. The caller has checked that every
    /// gate of `old` still faces what it faced (new gates may follow).
    fn reconfigure_from(&self, _old: &dyn Spec) -> Option<Box<dyn Any + Send>> {
        None
    }
    /// The function in a few words, for `nfv check`'s plan: a first line that starts with
    /// the kind's name (`nat to 203.0.113.2, ...`, `firewall, 65536 connections`), then any
    /// number of detail lines (printed indented, after the gates).
    fn describe(&self) -> String;

    /// Fill in what the settings leave to the names (a derived MAC, a default file), before
    /// the plan describes and builds the function. The default does nothing.
    fn complete(&mut self, _at: &BuildContext<'_>) {}

    /// Cross-kind hook: the file whose state `nfv-control` reads at start and writes after
    /// every change, handing it to the node in [`BuildContext::leases`] (a DHCP server's
    /// leases). `None` (the default) for every other kind.
    fn state_file(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// True if the node floods: sends a frame it has no single destination for (a
    /// broadcast, an unknown unicast) out of every other gate, as a switch does. nfv has no
    /// spanning tree, so `nfv-control` refuses links that close a loop of flooding functions
    /// (directly, or through the two gates of pass-through functions, [`Wiring::through`],
    /// which pass broadcasts on). False (the default) for every other kind.
    fn floods(&self) -> bool {
        false
    }

    /// Add a gate for a bare mention (only called when [`Wiring::grows`]); its index.
    fn add_gate(&mut self) -> u16 {
        0
    }

    /// How many gates the function has: the length of [`Spec::wiring`]'s gate list, which
    /// a kind whose gates grow overrides to count without building that list (the plan
    /// asks once per wire).
    fn gate_count(&self) -> usize {
        self.wiring().gates.len()
    }

    /// Gate `gate` described for `nfv check`'s plan (the default: its name).
    fn gate_label(&self, gate: usize) -> String {
        self.wiring().gates.get(gate).cloned().unwrap_or_default()
    }

    /// Cross-kind hook: a router interface these settings name (a NAT masquerading to
    /// `ROUTER.INTERFACE`). `nfv-control` checks it against the topology's routers, gives
    /// the interface's address to [`Spec::masquerade_resolved`], and marks the interface as
    /// a NAT's outside on the router. `None` (the default) for every other kind.
    fn masquerade(&self) -> Option<Masquerade> {
        None
    }

    /// The address of the interface [`Spec::masquerade`] named.
    fn masquerade_resolved(&mut self, _address: std::net::Ipv4Addr) {}

    /// Cross-kind hook, the other end of [`Spec::masquerade`]: the address of this
    /// function's interface `interface`, if it has such an interface (a router's). `None`
    /// (the default) for every other kind.
    fn interface_address(&self, _interface: &str) -> Option<std::net::Ipv4Addr> {
        None
    }

    /// Cross-kind hook: a NAT masquerades to this function's interface `interface`, which
    /// is therefore that NAT's outside (a router then sends TCP and UDP addressed to it from
    /// its other interfaces out of it). False if there is no such interface (the default).
    fn masqueraded_on(&mut self, _interface: &str) -> bool {
        false
    }

    /// Whether this function speaks IPv6 (a router with IPv6 addresses or advertisements):
    /// lab hosts of a topology with IPv6 anywhere keep IPv6 on. False by default.
    fn speaks_ipv6(&self) -> bool {
        false
    }
}

/// A router interface a function's settings name (see [`Spec::masquerade`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masquerade {
    /// The key (relative to the function) that names it, for messages.
    pub key: &'static str,
    /// The router.
    pub router: String,
    /// Its interface.
    pub interface: String,
}

/// What every [`Spec`] has by being `Clone` and `'static`: implemented for all of them.
pub trait SpecBase {
    /// A copy.
    fn clone_spec(&self) -> Box<dyn Spec>;
    /// Itself, to compare with another spec of its kind.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Spec + Clone + 'static> SpecBase for T {
    fn clone_spec(&self) -> Box<dyn Spec> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The settings of one function, as the topology model holds them: a [`Spec`] that can be
/// cloned and compared (two settings are equal when their kind and `Debug` form are).
#[derive(Debug)]
pub struct Settings(pub Box<dyn Spec>);

impl Settings {
    /// How many gates the function has.
    pub fn gates(&self) -> usize {
        self.0.gate_count()
    }

    /// The settings as the kind's own type `T`, if they are of that kind (for tests and
    /// the documented cross-kind hooks).
    pub fn downcast<T: Spec + 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }
}

impl Clone for Settings {
    fn clone(&self) -> Self {
        Settings(self.0.clone_spec())
    }
}

impl PartialEq for Settings {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind().name() == other.0.kind().name()
            && format!("{:?}", self.0) == format!("{:?}", other.0)
    }
}

impl Eq for Settings {}

/// Counter or gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up (names end in `_total`).
    Counter,
    /// A current value.
    Gauge,
}

/// One metric a kind exports. Every sample is labelled with `function` (the function's
/// name) first, then `labels`.
#[derive(Debug)]
pub struct Metric {
    /// Prometheus name, `nfv_KIND_...`.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricType,
    /// Labels besides `function`.
    pub labels: &'static [&'static str],
    /// The word the exit summary uses for it (`copies`); `None` leaves it out.
    pub summary: Option<&'static str>,
}

/// The stats a node shares with the control side (atomics the node updates).
pub trait Stats: Send + Sync + Any {
    /// Hand every sample to `out`: the metric, its label values (one per
    /// [`Metric::labels`]) and the value.
    fn visit(&self, out: &mut dyn FnMut(&'static Metric, &[&str], u64));
}
