//! Arbitrary bytes as a DHCP lease file (`nfv_control::leases`): `load` takes it or refuses
//! it, never panics; a malformed line is named by its number within the file; and leases it
//! takes are saved to another file and load again the same (the round trip a DHCP server's
//! leases make across restarts). The files live in a private directory (0700) made once.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use nfv_control::leases::{self, LeaseFileError};

fuzz_target!(|data: &[u8]| {
    let dir = common::private_dir();
    let input = dir.join("input.leases");
    std::fs::write(&input, data).expect("write the input file");
    match leases::load(&input) {
        Ok(taken) => {
            let saved = dir.join("saved.leases");
            leases::save(&saved, &taken).expect("save what loaded");
            let back = leases::load(&saved).expect("what nfv saved loads");
            assert_eq!(back, taken, "the leases changed across save and load");
        }
        Err(LeaseFileError::Malformed { path, line, .. }) => {
            assert_eq!(path, input);
            let text = std::str::from_utf8(data).expect("a malformed line of a UTF-8 file");
            let lines = text.lines().count();
            assert!(
                (1..=lines).contains(&line),
                "line {line} of a file of {lines} lines"
            );
        }
        // Not UTF-8 (the size cap is far above libFuzzer's inputs).
        Err(LeaseFileError::Io { path, source }) => {
            assert_eq!(path, input);
            assert!(
                std::str::from_utf8(data).is_err(),
                "a text file refused: {source}"
            );
        }
    }
});
