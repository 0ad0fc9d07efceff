//! Arbitrary bytes as an HTTP request to the metrics endpoint (`nfv_control::metrics`), a
//! running dataplane's counters (a generator into a switch and a sink: no root needed).
//!
//! Every input goes to `respond`, the request head -> status and body function the server
//! uses: a status `NNN Reason`, a body, and the counters for 200. One input in 16 (by a hash
//! of its bytes, so a crash reproduces) also goes through the real server, one `Server` on
//! 127.0.0.1, on a connection of its own that is then half-closed: the answer comes at once
//! (no 5 s wait), is one HTTP/1.1 response with a three-digit status and a `Content-Length`
//! that is the length of its body (none for `HEAD`); then a well-formed `GET /metrics` on a
//! new connection still gets 200 and the counters. (Every input through the socket ran at
//! about 50 a second: a scrape renders every counter, some milliseconds in a fuzz build.)
#![no_main]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use nfv_control::metrics::{self, Server};

fn server() -> SocketAddr {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        common::ignore_sigpipe();
        let addr = "127.0.0.1:0".parse().expect("an address");
        let listener = metrics::bind(addr).expect("bind a loopback port");
        // Blocking, so that the accept loop takes each connection at once rather than
        // polling every 50 ms (it then never looks at its stop flag: nothing stops it here).
        listener
            .set_nonblocking(false)
            .expect("a blocking listener");
        Server::spawn(listener, common::running().metrics_source()).expect("the server starts")
    })
    .addr()
}

/// Send `request` on a new connection, half-close it, and read the whole answer.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).expect("connect to the metrics server");
    let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = c.set_write_timeout(Some(Duration::from_secs(3)));
    // The server stops reading at the end of the head, or past its limit, and may close
    // before all of it is written.
    let _ = c.write_all(request);
    let _ = c.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let by = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 16384];
    while Instant::now() < by {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset after the answer (the server closed with bytes unread), or a timeout.
            Err(_) => break,
        }
    }
    answer
}

/// The status of `answer`, a complete HTTP/1.1 response to `request`.
fn check(answer: &[u8], request: &[u8]) -> u16 {
    let shown = || String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
    let status = answer
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|r| r.get(..4))
        .filter(|s| s[..3].iter().all(u8::is_ascii_digit) && s[3] == b' ')
        .map(|s| (s[0] - b'0') as u16 * 100 + (s[1] - b'0') as u16 * 10 + (s[2] - b'0') as u16)
        .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {:?}", shown()));
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of the head: {:?}", shown()));
    let head = String::from_utf8_lossy(&answer[..end]);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length: {head:?}"));
    let body = answer.len() - end - 4;
    // A request the server could not read whole (431) is answered with a body.
    let head_only = request.starts_with(b"HEAD ") && status != 431;
    let want = if head_only { 0 } else { length };
    assert_eq!(body, want, "a body of {body} bytes: {head:?}");
    status
}

/// Inputs that also go through the socket: one in this many.
const SOCKET_EVERY: u64 = 16;

/// FNV-1a of `data`: which inputs go through the socket, the same on every run.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fuzz_target!(|data: &[u8]| {
    let source = common::running()
        .metrics_source()
        .lock()
        .map(|s| s.clone())
        .expect("the metrics source");
    let (status, body) = metrics::respond(data, &source);
    let (code, reason) = status
        .split_once(' ')
        .unwrap_or_else(|| panic!("status {status:?}"));
    assert!(
        code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) && !reason.is_empty(),
        "status {status:?}"
    );
    assert!(!body.is_empty(), "{status} without a body");
    if status.starts_with("200") {
        assert!(body.contains("nfv_port_rx_packets_total{port=\"gen\"}"));
    }
    if !hash(data).is_multiple_of(SOCKET_EVERY) {
        return;
    }
    let addr = server();
    check(&exchange(addr, data), data);
    // The server still answers.
    let get = b"GET /metrics HTTP/1.1\r\nHost: fuzz\r\n\r\n";
    let answer = exchange(addr, get);
    assert_eq!(check(&answer, get), 200);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.contains("nfv_port_rx_packets_total{port=\"gen\"}"),
        "no counters in {text}"
    );
});
