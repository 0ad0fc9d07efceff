//! # nfv-control
//!
//! Everything that talks to the operator or the system around the dataplane: the topology
//! file (its schema, validation and errors), planning the graph from it, lab hosts in
//! network namespaces, and the `nfv` command line. It builds `nfv-dataplane` graphs out of
//! `nfv-functions` nodes; neither of those knows anything about it.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod client;
pub mod ctl;
mod deadline;
mod decode;
pub mod demo;
pub mod lab;
pub mod leases;
pub mod metrics;
pub mod plan;
pub mod run;
pub mod session;
pub mod stats;
pub mod topology;
