//! `null`: a sink that discards what it is sent, measures the latency of generated frames,
//! and may announce a MAC address once so that a switch learns where it is.
//!
//! ```yaml
//! ports:
//!   sink: { kind: null, mac: 02:ff:00:00:00:01 }   # `mac`: the address it announces
//! ```
//!
//! | file | what |
//! | --- | --- |
//! | `config.rs` | the settings: schema, checks, description, how the port is built |
//! | `port.rs` | the port and its latency recorder |

mod config;
mod port;

pub use config::NullConfig;
pub use port::{LatencyRecorder, NullPort};

use super::kind::{PortKind, PortSpec};
use crate::config::Report;

/// The `null` kind.
pub struct NullKind;

impl PortKind for NullKind {
    fn name(&self) -> &'static str {
        "null"
    }

    fn about(&self) -> &'static str {
        "a sink that measures the latency of generated frames: mac (announced once)"
    }

    fn keys(&self) -> &'static [&'static str] {
        config::KEYS
    }

    fn load(&self, _name: &str, text: &str, report: &mut dyn Report) -> Option<Box<dyn PortSpec>> {
        NullConfig::load(text, report).map(|c| Box::new(c) as Box<dyn PortSpec>)
    }
}
