//! `mirror`: port mirroring (SPAN), as OVS and VPP have it.
//!
//! A mirror sits on a wire, `[a, span, b]`: frames pass between its gates `a` and `b` both
//! ways, unchanged, and a copy of each (or of those its settings select) goes out of its
//! third gate, `monitor`, wired to a port where tcpdump or Wireshark listens (a TAP) or to
//! a null port.
//!
//! ```yaml
//! functions:
//!   span:
//!     kind: mirror
//!     direction: both   # both (the default), a-to-b or b-to-a: which frames are copied
//!     vlan: [10, 20]    # only frames tagged with one of these VLANs (one or a list)
//!     sample: 1         # copy one frame in N of those selected (1, the default: all)
//! links:
//!   - [a, span, b]          # left neighbour on `a`, right one on `b`
//!   - [span.monitor, mon]   # every gate is linked exactly once
//! ```
//!
//! A copy costs a buffer from the pool and a place in the monitor's queue. When either is
//! missing the copy is not made and is counted (`nfv_mirror_missed_total`, by cause); the
//! mirrored frames go on as if no mirror were there. Frames the monitor port sends into the
//! mirror are dropped as `not_for_us`. A reload that changes only the settings keeps the
//! node and its counters.
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | the settings: schema, checks, wiring, reconfigure rule |
//! | `node.rs` | the node: forwarding, selection, copies, the `mirror` table |
//! | `stats.rs` | its counters and metrics |

mod config;
mod node;
mod stats;

pub use config::{Direction, MirrorConfig};
pub use node::Mirror;
pub use stats::MirrorStats;

use crate::kind::{Kind, Metric, Report, Spec};

/// The gate toward the left neighbour.
pub const GATE_A: u16 = 0;
/// The gate toward the right neighbour.
pub const GATE_B: u16 = 1;
/// The gate the copies leave on.
pub const GATE_MONITOR: u16 = 2;
/// Gate names, in gate order.
pub const GATES: [&str; 3] = ["a", "b", "monitor"];

/// The `mirror` kind, for the registry.
pub struct MirrorKind;

impl Kind for MirrorKind {
    fn name(&self) -> &'static str {
        "mirror"
    }

    fn about(&self) -> &'static str {
        "copies the frames crossing a wire to a monitor port (SPAN): direction, vlan, sample"
    }

    fn keys(&self) -> &'static [&'static str] {
        &["direction", "vlan", "sample"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["mirror"]
    }

    fn metrics(&self) -> &'static [&'static Metric] {
        &stats::METRICS
    }

    fn load(&self, text: &str, report: &mut dyn Report) -> Option<Box<dyn Spec>> {
        MirrorConfig::load(text, report).map(|c| Box::new(c) as Box<dyn Spec>)
    }
}
