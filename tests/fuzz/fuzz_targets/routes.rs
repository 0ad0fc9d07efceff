//! Arbitrary text as a router's routes file (`routes_file`, one `PREFIX/LEN GATEWAY` a
//! line), read the way `nfv` reads it: a topology in a private directory whose router names
//! the file relatively. No panic; when the topology loads, every line of the file that is
//! not blank or a comment is a route, every route's prefix has no host bits, no prefix is
//! routed twice, and every gateway is another host in one of the router's interface
//! subnets; when it does not, every error names a line within the routes file, or is about
//! the `routes_file` key itself (unreadable, or more bad lines than are listed).
#![no_main]

mod common;

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use nfv_control::topology::{load_str, LoadError};
use nfv_functions::router::RouterSpec;

/// A router with subnets of every shape: /24, /30, /31 (two hosts, no network address)
/// and /32 (no other host), and one route of its own that the file may not repeat.
const TOPOLOGY: &str = "name: fuzz-routes
ports:
  a: { kind: null }
  b: { kind: null }
  c: { kind: null }
  d: { kind: null }
functions:
  gw:
    kind: router
    interfaces:
      lan: { address: 10.0.0.1/24 }
      wan: { address: 192.168.1.2/30 }
      p2p: { address: 172.16.0.0/31 }
      lo: { address: 10.255.255.1/32 }
    routes:
      - { to: 0.0.0.0/0, via: 192.168.1.1 }
    routes_file: routes.txt
links:
  - [a, gw.lan]
  - [b, gw.wan]
  - [c, gw.p2p]
  - [d, gw.lo]
";

fuzz_target!(|data: &[u8]| {
    let dir = common::private_dir();
    let file = dir.join("routes.txt");
    let topology = dir.join("topology.yaml");
    std::fs::write(&file, data).expect("write the routes file");
    let text = std::str::from_utf8(data).ok();
    match load_str(TOPOLOGY, &topology) {
        Ok(topo) => {
            let text = text.expect("a routes file that is not UTF-8 loaded");
            let gw = topo
                .functions
                .iter()
                .find(|f| f.name == "gw")
                .and_then(|f| f.settings.downcast::<RouterSpec>())
                .expect("the router");
            let lines = text
                .lines()
                .filter(|l| !l.split('#').next().unwrap_or("").trim().is_empty())
                .count();
            assert_eq!(
                gw.routes.len() + gw.routes6.len(),
                1 + lines,
                "a line of the file is no route"
            );
            let mut seen = std::collections::HashSet::new();
            for r in &gw.routes {
                assert_eq!(r.to.ip(), r.to.network(), "host bits in {}", r.to);
                assert!(
                    seen.insert((r.to.network(), r.to.prefix())),
                    "{} routed twice",
                    r.to
                );
                let other_host = |ip: Ipv4Addr| {
                    gw.interfaces
                        .iter()
                        .filter_map(|i| i.address)
                        .any(|a| a.contains(ip) && a.ip() != ip)
                };
                assert!(other_host(r.via), "gateway {} is not a neighbour", r.via);
            }
            // IPv6 lines (the router has no IPv6 prefix here, so none can load).
            assert!(gw.routes6.is_empty(), "an IPv6 route without an IPv6 interface");
        }
        Err(LoadError::Invalid(errors)) => {
            assert!(!errors.is_empty());
            let lines = text.map_or(0, |t| t.lines().count());
            for e in &errors {
                assert!(e.line > 0, "{e}: no line");
                if e.file == file {
                    assert!(
                        (1..=lines).contains(&e.line),
                        "{e}: line {} of a file of {lines} lines",
                        e.line
                    );
                } else {
                    assert_eq!(e.file, topology, "{e}");
                    assert_eq!(e.key, "functions.gw.routes_file", "{e}");
                }
            }
        }
        Err(e) => panic!("the topology text was given, yet: {e}"),
    }
});
