//! Arbitrary request lines into the control socket's handler, against a running
//! dataplane (a slow generator into a switch and a sink: no root needed): every line gets
//! a JSON answer, `"ok": false` for bad ones, and forwarding goes on. Reload requests
//! whose file, as YAML decodes it, mentions vhost-user, a DHCP server's lease file or a
//! routes file are skipped: a fuzzer must not create sockets or files on the machine (a
//! topology without a lab refuses TAP ports and hosts by itself).
#![no_main]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nfv_control::ctl::{handle, Request};
use nfv_control::run::Running;

const TOPOLOGY: &str = "name: fuzz-control
ports:
  gen:  { kind: generator, flows: 16, size: 64, rate: 1000, dst_mac: 02:ff:00:00:00:01 }
  sink: { kind: null, mac: 02:ff:00:00:00:01 }
functions:
  sw: { kind: switch }
links:
  - [gen, sw]
  - [sink, sw]
";

fn running() -> &'static Running {
    static R: OnceLock<Running> = OnceLock::new();
    R.get_or_init(|| {
        let topo = nfv_control::topology::load_str(TOPOLOGY, Path::new("fuzz.yaml"))
            .expect("the fuzz topology loads");
        nfv_control::run::start(&topo).expect("the fuzz topology starts")
    })
}

/// Whether a topology text could name a socket or a file: any key or string, as YAML
/// decodes it (escapes, anchors and merge keys resolved), that mentions vhost-user ports,
/// DHCP servers, leases or routes files; for a text that serde_yaml cannot read as a
/// `Value` (the loader refuses it at its serde stage, before any kind sees a path), the
/// words anywhere in the raw text.
fn names_files(text: &str) -> bool {
    const WORDS: [&str; 4] = ["vhost", "dhcp", "lease", "routes"];
    fn mentions(v: &serde_yaml::Value) -> bool {
        use serde_yaml::Value;
        match v {
            Value::String(s) => {
                let s = s.to_ascii_lowercase();
                WORDS.iter().any(|w| s.contains(w))
            }
            Value::Sequence(items) => items.iter().any(mentions),
            Value::Mapping(m) => m.iter().any(|(k, v)| mentions(k) || mentions(v)),
            Value::Tagged(t) => mentions(&t.value),
            _ => false,
        }
    }
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(mut v) => {
            let _ = v.apply_merge();
            mentions(&v)
        }
        Err(_) => {
            let raw = text.to_ascii_lowercase();
            WORDS.iter().any(|w| raw.contains(w))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut req) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    match &mut req {
        Request::Capture { .. } => return,
        // No sockets, and no files: a DHCP server writes its lease file when it is built
        // (any path the text names), and a router reads its routes file.
        Request::Reload { text, .. } if names_files(text) => return,
        Request::Trace { timeout_ms, .. } => *timeout_ms = Some(timeout_ms.unwrap_or(0).min(30)),
        _ => {}
    }
    let r = running();
    let answer = handle(r, req, &AtomicBool::new(false));
    assert!(answer.get("ok").is_some(), "an answer without ok: {answer}");
    // The worker still answers.
    let table = handle(
        r,
        Request::Show {
            table: "ports".into(),
        },
        &AtomicBool::new(false),
    );
    assert_eq!(table["ok"], serde_json::Value::Bool(true), "{table}");
});
