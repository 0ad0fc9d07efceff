//! Reading a request and writing its answer against one deadline for the whole exchange,
//! for the control socket and the metrics endpoint: a client that sends or reads one byte
//! at a time holds its connection until the deadline, not for as long as it keeps trickling
//! (a timeout per `read` alone would let it stay for hours).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// True if a line ended in `b`, looking only at what came from `new` on.
pub fn has_newline(b: &[u8], new: usize) -> bool {
    b[new.min(b.len())..].contains(&b'\n')
}

/// A stream whose reads and writes can time out.
pub trait Timed: Read + Write {
    /// As `set_read_timeout` of the std streams.
    fn read_timeout(&self, t: Duration) -> io::Result<()>;
    /// As `set_write_timeout` of the std streams.
    fn write_timeout(&self, t: Duration) -> io::Result<()>;
}

impl Timed for &UnixStream {
    fn read_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn write_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(t))
    }
}

impl Timed for TcpStream {
    fn read_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))
    }
    fn write_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_write_timeout(Some(t))
    }
}

/// The time left until `deadline`, or a `TimedOut` error naming `what` if none is.
fn left(deadline: Instant, what: &str) -> io::Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} not done in time"),
        ));
    }
    // A zero timeout means "none" to the std streams: never pass one.
    Ok((deadline - now).max(Duration::from_millis(1)))
}

/// After a read or write failed with `e`: `Ok` to try again (it was interrupted, or timed
/// out with time left before `deadline`), else the error (`TimedOut` naming `what` once the
/// deadline passed).
fn again(e: io::Error, deadline: Instant, what: &str) -> io::Result<()> {
    match e.kind() {
        io::ErrorKind::Interrupted => Ok(()),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => left(deadline, what).map(|_| ()),
        _ => Err(e),
    }
}

/// What a bounded read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The bytes up to and including the end `done` found (and any that came with them).
    Complete(Vec<u8>),
    /// More than `max` bytes without an end.
    TooLong,
    /// The peer closed before an end (what it sent).
    Closed(Vec<u8>),
}

/// Read from `s` until `done(bytes so far, where the last read's bytes start)` says the
/// request is whole (it need only look at the new bytes and a few before them), more than
/// `max` bytes came, or the peer closed; all before `deadline`, else a `TimedOut` error.
pub fn read_until<S: Timed + ?Sized>(
    s: &mut S,
    deadline: Instant,
    max: usize,
    done: impl Fn(&[u8], usize) -> bool,
) -> io::Result<Head> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut new = 0;
    loop {
        if done(&got, new) {
            return Ok(Head::Complete(got));
        }
        if got.len() > max {
            return Ok(Head::TooLong);
        }
        s.read_timeout(left(deadline, "the request")?)?;
        // Never more than one byte past `max`.
        let want = buf.len().min(max + 1 - got.len());
        match s.read(&mut buf[..want]) {
            Ok(0) => return Ok(Head::Closed(got)),
            Ok(n) => {
                new = got.len();
                got.extend_from_slice(&buf[..n]);
            }
            Err(e) => again(e, deadline, "the request")?,
        }
    }
}

/// Write all of `bytes` to `s` before `deadline`, else a `TimedOut` error.
pub fn write_all<S: Timed + ?Sized>(s: &mut S, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        s.write_timeout(left(deadline, "the answer")?)?;
        match s.write(&bytes[at..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "peer closed")),
            Ok(n) => at += n,
            Err(e) => again(e, deadline, "the answer")?,
        }
    }
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickling_client_is_cut_at_the_deadline_not_per_read() {
        let (server, mut client) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        // One byte every 50 ms: each read is quick, the request never ends.
        let writer = std::thread::spawn(move || {
            for _ in 0..40 {
                if client.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let start = Instant::now();
        let r = read_until(
            &mut &server,
            start + Duration::from_millis(300),
            1 << 20,
            has_newline,
        );
        let e = r.expect_err("a request that never ends must time out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        // Well before the 2 s the trickle lasts (generous for a loaded machine).
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
        drop(server);
        let _ = writer.join();
    }

    #[test]
    fn a_whole_request_is_read_and_a_long_one_refused() {
        let (server, mut client) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        client
            .write_all(b"{\"cmd\":\"show\"}\nrest")
            .unwrap_or_else(|e| panic!("{e}"));
        let soon = Instant::now() + Duration::from_secs(5);
        match read_until(&mut &server, soon, 100, has_newline) {
            Ok(Head::Complete(b)) => assert!(b.starts_with(b"{\"cmd\":\"show\"}\n")),
            other => panic!("{other:?}"),
        }
        let (server, mut client) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        client
            .write_all(&[b'a'; 300])
            .unwrap_or_else(|e| panic!("{e}"));
        let r = read_until(&mut &server, soon, 100, has_newline);
        assert!(matches!(r, Ok(Head::TooLong)), "{r:?}");
        drop(client);
        let (server, client) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        drop(client);
        let r = read_until(&mut &server, soon, 100, has_newline);
        assert!(
            matches!(r, Ok(Head::Closed(ref b)) if b.is_empty()),
            "{r:?}"
        );
    }

    #[test]
    fn an_answer_nobody_reads_is_given_up_at_the_deadline() {
        let (server, _client) = UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        let big = vec![0u8; 8 << 20];
        let start = Instant::now();
        let r = write_all(&mut &server, &big, start + Duration::from_millis(300));
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
    }
}
