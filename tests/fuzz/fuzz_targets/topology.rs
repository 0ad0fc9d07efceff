//! Arbitrary text into the topology loader: an error or a topology, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = nfv_control::topology::load_str(text, Path::new("fuzz.yaml"));
    }
});
