//! What several targets share: a private directory for the files and sockets they make,
//! and a small running dataplane that needs no root.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once, OnceLock};

use nfv_control::run::Running;

static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_dir() {
    if let Some(d) = DIR.get() {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A directory of this process's own: a new one (mode 0700, a random name under the
/// temporary directory, never one that was there), made at the first call and removed
/// when the fuzzer exits (a crash leaves it, with the input that caused it).
pub fn private_dir() -> &'static Path {
    DIR.get_or_init(|| {
        use std::hash::{BuildHasher as _, Hasher as _};
        use std::os::unix::fs::DirBuilderExt as _;
        for _ in 0..16 {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let p =
                std::env::temp_dir().join(format!("nfv-fuzz-{}-{random:016x}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => {
                    // SAFETY: registers a plain function that only removes the directory.
                    unsafe { libc::atexit(remove_dir) };
                    return p;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot make a directory in {}: {e}", p.display()),
            }
        }
        panic!("no new directory name in the temporary directory")
    })
}

/// As `nfv` itself runs (Rust's `main` does it, libFuzzer's does not): a write to a peer
/// that left is an error, not a SIGPIPE that kills the process.
pub fn ignore_sigpipe() {
    static ONCE: Once = Once::new();
    // SAFETY: setting a signal's disposition to ignore.
    ONCE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
}

/// A slow generator into a switch and a sink: forwarding, no root needed.
pub const TOPOLOGY: &str = "name: fuzz-net
ports:
  gen:  { kind: generator, flows: 16, size: 64, rate: 1000, dst_mac: 02:ff:00:00:00:01 }
  sink: { kind: null, mac: 02:ff:00:00:00:01 }
functions:
  sw: { kind: switch }
links:
  - [gen, sw]
  - [sink, sw]
";

/// [`TOPOLOGY`], running (started at the first call).
pub fn running() -> &'static Arc<Running> {
    static R: OnceLock<Arc<Running>> = OnceLock::new();
    R.get_or_init(|| {
        let topo = nfv_control::topology::load_str(TOPOLOGY, Path::new("fuzz.yaml"))
            .expect("the fuzz topology loads");
        Arc::new(nfv_control::run::start(&topo).expect("the fuzz topology starts"))
    })
}
