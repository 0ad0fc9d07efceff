//! DHCP lease files: the leases a `dhcp-server` has handed out, kept across restarts.
//!
//! One lease per line, fields separated by spaces, `#` starts a comment:
//!
//! ```text
//! # nfv dhcp leases: address mac expires(unix seconds) client-id(hex or -) hostname(or -)
//! 192.168.1.100 02:00:00:00:00:01 1795000000 01020000000001 alice
//! ```
//!
//! [`save`] writes atomically: a temporary file in the same directory, fsync, rename over
//! the old one, fsync the directory; a crash leaves the old file or the new one, never half
//! of one. [`spawn_writer`] runs a thread that saves each lease list a server sends (the
//! newest of a burst), and once more when every sender is gone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use nfv_dataplane::MacAddr;
use nfv_functions::dhcp::{Lease, LeaseUpdate};

/// A lease file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LeaseFileError {
    /// It cannot be read, or written where it must be.
    #[error("lease file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line is not a lease.
    #[error("{path}:{line}: {message} (fix or remove the line; nfv does not start with a lease file it cannot read, so as not to lose leases)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

const HEADER: &str =
    "# nfv dhcp leases: address mac expires(unix seconds) client-id(hex or -) hostname(or -)";

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The largest lease file read: 16 MiB (a /16 pool fully leased is about 5 MiB).
pub const MAX_FILE: u64 = 16 << 20;

pub use nfv_functions::dhcp::safe_hostname;

fn parse_line(l: &str) -> Result<Lease, String> {
    let f: Vec<&str> = l.split_whitespace().collect();
    let [ip, mac, expires, client_id, hostname] = f.as_slice() else {
        return Err(format!(
            "expected 5 fields (address mac expires client-id hostname), found {}",
            f.len()
        ));
    };
    Ok(Lease {
        ip: ip
            .parse()
            .map_err(|_| format!("`{ip}` is not an IPv4 address"))?,
        mac: mac
            .parse::<MacAddr>()
            .map_err(|_| format!("`{mac}` is not a MAC address"))?,
        expires_unix: expires
            .parse()
            .map_err(|_| format!("`{expires}` is not a time in Unix seconds"))?,
        client_id: match *client_id {
            "-" => None,
            h => Some(parse_hex(h).ok_or_else(|| format!("`{h}` is not a hex client id"))?),
        },
        hostname: match *hostname {
            "-" => None,
            h if safe_hostname(h) => Some(h.to_string()),
            h => {
                return Err(format!(
                    "`{}` is not a hostname (1 to 63 letters, digits, `-`, `_`, `.`)",
                    h.escape_default()
                ))
            }
        },
    })
}

/// The text of the lease file `path` (`None` if there is none): a regular file of at most
/// [`MAX_FILE`] bytes.
fn read(path: &Path) -> io::Result<Option<String>> {
    match nfv_dataplane::config::read_bounded(path, MAX_FILE, "a lease file") {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The leases in `path`; a missing file is none. The file is checked as wire input: its
/// size, every field, hostnames, and no address or MAC leased twice.
pub fn load(path: &Path) -> Result<Vec<Lease>, LeaseFileError> {
    let io_error = |source| LeaseFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let Some(text) = read(path).map_err(io_error)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut ips = std::collections::HashMap::new();
    let mut macs = std::collections::HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let malformed = |message| LeaseFileError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let lease = parse_line(l).map_err(malformed)?;
        if let Some(first) = ips.insert(lease.ip, i + 1) {
            return Err(malformed(format!(
                "{} is leased twice (also line {first})",
                lease.ip
            )));
        }
        if let Some(first) = macs.insert(lease.mac, i + 1) {
            return Err(malformed(format!(
                "{} holds two leases (also line {first})",
                lease.mac
            )));
        }
        out.push(lease);
    }
    Ok(out)
}

/// Write `leases` to `path` atomically (mode 0600), creating its directory (0700).
pub fn save(path: &Path, leases: &[Lease]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "leases".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut text = String::from(HEADER);
    text.push('\n');
    for l in leases {
        let cid = l.client_id.as_ref().map_or("-".to_string(), |c| {
            c.iter().map(|b| format!("{b:02x}")).collect()
        });
        let host = l
            .hostname
            .as_deref()
            .filter(|h| safe_hostname(h))
            .unwrap_or("-");
        text.push_str(&format!(
            "{} {} {} {cid} {host}\n",
            l.ip, l.mac, l.expires_unix
        ));
    }
    // A new file of our own: whatever is at the temporary name (a stale one, or a link
    // someone planted) is removed, never written through.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A thread that saves every lease list `rx` brings to `path` (at most one save per
/// 100 ms: the newest list of a burst wins) and returns when every sender is gone.
pub fn spawn_writer(path: PathBuf, rx: Receiver<LeaseUpdate>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("nfv-leases".into())
        .spawn(move || {
            let mut pending: Option<LeaseUpdate> = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(u) => {
                        pending = Some(u);
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        if let Some(u) = pending.take() {
                            write(&path, &u);
                        }
                        return;
                    }
                }
                if let Some(u) = pending.take() {
                    write(&path, &u);
                }
            }
        })
}

fn write(path: &Path, leases: &[Lease]) {
    match save(path, leases) {
        Ok(()) => tracing::debug!(file = %path.display(), leases = leases.len(), "saved leases"),
        Err(e) => tracing::warn!(file = %path.display(), error = %e, "could not save leases"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("nfv-leases-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn leases() -> Vec<Lease> {
        vec![
            Lease {
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                client_id: Some(vec![1, 2, 0, 0, 0, 0, 1]),
                ip: Ipv4Addr::new(10, 0, 0, 100),
                expires_unix: 1_800_000_000,
                hostname: Some("alice".into()),
            },
            Lease {
                mac: MacAddr([2, 0, 0, 0, 0, 2]),
                client_id: None,
                ip: Ipv4Addr::new(10, 0, 0, 101),
                expires_unix: 1_800_000_001,
                hostname: Some("has space".into()),
            },
        ]
    }

    #[test]
    fn round_trip_and_missing_file() {
        let d = Dir::new("rt");
        let path = d.0.join("sub/dhcp.leases");
        assert_eq!(load(&path).expect("missing is empty"), vec![]);
        save(&path, &leases()).expect("save");
        let back = load(&path).expect("load");
        assert_eq!(back[0], leases()[0]);
        assert_eq!(
            back[1].hostname, None,
            "a name that cannot be written is left out"
        );
        let names: Vec<_> = fs::read_dir(d.0.join("sub"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["dhcp.leases"], "no temporary file left");
    }

    /// A lease file is wire input: duplicates, unsafe hostnames, a device or a huge file
    /// are refused with the line or the reason, never taken.
    #[test]
    fn a_corrupted_lease_file_is_refused_like_wire_input() {
        let d = Dir::new("hostile");
        fs::create_dir_all(&d.0).expect("dir");
        let path = d.0.join("x.leases");
        for (text, want) in [
            (
                "10.0.0.1 02:00:00:00:00:01 5 - a\n10.0.0.1 02:00:00:00:00:02 5 - b\n",
                ":2: 10.0.0.1 is leased twice (also line 1)",
            ),
            (
                "10.0.0.1 02:00:00:00:00:01 5 - a\n10.0.0.2 02:00:00:00:00:01 5 - b\n",
                ":2: 02:00:00:00:00:01 holds two leases",
            ),
            (
                "10.0.0.1 02:00:00:00:00:01 5 - \x1b[31mred\n",
                ":1: `\\u{1b}[31mred` is not a hostname",
            ),
        ] {
            fs::write(&path, text).expect("write");
            let e = load(&path).expect_err("refused").to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = load(Path::new("/dev/zero"))
            .expect_err("a device")
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let big = "# padding padding padding padding padding padding padding padding\n"
            .repeat((MAX_FILE as usize / 64) + 2);
        fs::write(&path, big).expect("write");
        let e = load(&path).expect_err("too big").to_string();
        assert!(e.contains("the most a lease file may hold"), "{e}");
    }

    /// The temporary file is made anew: a link planted at its name is not written through.
    #[test]
    fn a_planted_link_at_the_temporary_name_is_not_followed() {
        let d = Dir::new("link");
        fs::create_dir_all(&d.0).expect("dir");
        let path = d.0.join("dhcp.leases");
        let victim = d.0.join("victim");
        fs::write(&victim, "precious").expect("write");
        let tmp = d.0.join(format!(".dhcp.leases.tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).expect("symlink");
        save(&path, &leases()).expect("save");
        assert_eq!(
            fs::read_to_string(&victim).ok().as_deref(),
            Some("precious")
        );
        assert_eq!(load(&path).expect("load").len(), 2);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let d = Dir::new("bad");
        fs::create_dir_all(&d.0).expect("dir");
        let path = d.0.join("x.leases");
        fs::write(
            &path,
            "# c\n10.0.0.1 02:00:00:00:00:01 5 - -\n10.0.0.2 02:00:00:00:01 5 - -\n",
        )
        .expect("write");
        let e = load(&path).expect_err("malformed");
        let text = e.to_string();
        assert!(
            text.contains("x.leases:3:") && text.contains("not a MAC"),
            "{text}"
        );
        fs::write(&path, "10.0.0.1 02:00:00:00:00:01 soon - -\n").expect("write");
        assert!(load(&path)
            .expect_err("bad time")
            .to_string()
            .contains(":1: `soon`"));
        fs::write(&path, "10.0.0.1 02:00:00:00:00:01\n").expect("write");
        assert!(load(&path)
            .expect_err("short")
            .to_string()
            .contains("expected 5 fields"));
    }

    #[test]
    fn the_writer_saves_updates_and_once_more_at_close() {
        let d = Dir::new("writer");
        let path = d.0.join("w.leases");
        let (tx, rx) = crossbeam_channel::bounded(4);
        let t = spawn_writer(path.clone(), rx).expect("thread");
        tx.send(leases()[..1].to_vec()).expect("send");
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while load(&path).map(|l| l.len()).unwrap_or(0) != 1 {
            assert!(std::time::Instant::now() < end, "not saved within 5 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        tx.send(leases()).expect("send");
        drop(tx);
        t.join().expect("writer");
        assert_eq!(load(&path).expect("load").len(), 2);
    }
}
