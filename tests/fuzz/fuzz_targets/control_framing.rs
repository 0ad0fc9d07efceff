//! Arbitrary bytes on the control socket (`nfv_control::ctl`), through its real server: one
//! `ControlServer` on a socket in a private directory, serving a running dataplane (a
//! generator into a switch and a sink: no root needed). Each input (up to 64 KiB: many
//! lines, invalid UTF-8, no newline at all) is sent on a connection of its own, which is
//! then half-closed: the first answer line comes at once and is one JSON object with an
//! `ok` field; then a well-formed `show` request on a new connection still gets `ok: true`.
//!
//! The fuzzer runs as root, so the server would apply a reload: inputs whose request (the
//! first line, as the server reads it) is a reload are skipped, so that the fuzzer makes no
//! files or sockets; so are traces that could wait more than 50 ms for their packets.
#![no_main]

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nfv_control::ctl::{self, ControlServer, Request};

/// The most of an input sent.
const MAX_INPUT: usize = 64 << 10;

fn socket() -> &'static Path {
    static S: OnceLock<ControlServer> = OnceLock::new();
    S.get_or_init(|| {
        common::ignore_sigpipe();
        let path = common::private_dir().join("control.sock");
        let listener: UnixListener = ctl::bind(&path, None).expect("bind the control socket");
        // Blocking, so that the accept loop takes each connection at once rather than
        // polling every 20 ms (it then never looks at its stop flag: nothing stops it here).
        listener
            .set_nonblocking(false)
            .expect("a blocking listener");
        ControlServer::spawn(listener, path, common::running().clone())
            .expect("the control server starts")
    })
    .path()
}

/// Send `request` on a new connection, half-close it, and read the first answer line.
fn exchange(path: &Path, request: &[u8]) -> String {
    let mut c = UnixStream::connect(path).expect("connect to the control socket");
    let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = c.set_write_timeout(Some(Duration::from_secs(3)));
    // The server stops reading at the end of the first line and may close before all of
    // the input is written.
    let _ = c.write_all(request);
    let _ = c.shutdown(Shutdown::Write);
    let mut line = String::new();
    if let Err(e) = BufReader::new(c).read_line(&mut line) {
        panic!("no answer line ({e}), got {line:?}");
    }
    line
}

/// The answer `line`, checked: one JSON object with `ok`, on a line of its own.
fn check(line: &str) -> serde_json::Value {
    assert!(line.ends_with('\n'), "an unfinished answer: {line:?}");
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert!(v.get("ok").is_some_and(|ok| ok.is_boolean()), "no ok: {v}");
    v
}

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_INPUT)];
    // The request the server decodes: the first line, or everything if there is no end.
    let first = match data.iter().position(|&b| b == b'\n') {
        Some(end) => &data[..=end],
        None => data,
    };
    match serde_json::from_slice::<Request>(first) {
        Ok(Request::Reload { .. }) => return,
        Ok(Request::Trace { timeout_ms, .. }) if timeout_ms.is_none_or(|t| t > 50) => return,
        _ => {}
    }
    let path = socket();
    check(&exchange(path, data));
    // The server still answers.
    let v = check(&exchange(path, b"{\"cmd\":\"show\",\"table\":\"ports\"}\n"));
    assert_eq!(v["ok"], serde_json::Value::Bool(true), "{v}");
});
