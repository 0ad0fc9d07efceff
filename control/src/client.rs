//! The operator's side of the control socket: `nfv show`, `nfv trace`, `nfv capture` and
//! `nfv reload` send one request each and print the answer, as a table for people or JSON
//! for scripts.

use crate::session::{errln, out, outln};
use std::io::{BufRead as _, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::ctl::{self, Request};

/// Which running topology a command talks to.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The topology's name (its socket is /run/nfv/NAME.sock); needed when several run.
    #[arg(short = 't', long = "topology", value_name = "NAME")]
    pub topology: Option<String>,
    /// The control socket's path.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

impl Target {
    /// The socket to talk to.
    pub fn path(&self) -> Result<PathBuf, String> {
        crate::ctl::find_socket(self.socket.as_deref(), self.topology.as_deref())
    }
}

fn fail(cmd: &str, e: impl std::fmt::Display) -> ExitCode {
    errln!("nfv {cmd}: {e}");
    ExitCode::FAILURE
}

fn ask(at: &Target, req: &Request) -> Result<(Value, BufReader<UnixStream>), String> {
    ctl::request(&at.path()?, req)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => (if *b { "yes" } else { "no" }).into(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell; numbers to the right.
pub fn render(columns: &[String], rows: &[Vec<Value>]) -> String {
    let mut width: Vec<usize> = columns.iter().map(String::len).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(text(c).len());
            }
        }
    }
    let numeric: Vec<bool> = (0..columns.len())
        .map(|i| {
            rows.iter().any(|r| r.get(i).is_some_and(Value::is_number))
                && rows
                    .iter()
                    .all(|r| r.get(i).is_none_or(|c| c.is_number() || c.is_null()))
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = width[i];
            if i > 0 {
                s.push_str("  ");
            }
            if numeric[i] {
                s.push_str(&format!("{c:>w$}"));
            } else if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}"));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(columns.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(text).collect()));
    }
    out
}

/// `nfv show TABLE`.
pub fn show(at: &Target, table: &str, json: bool) -> ExitCode {
    let req = Request::Show {
        table: table.to_string(),
    };
    let (answer, _) = match ask(at, &req) {
        Ok(a) => a,
        Err(e) => return fail("show", e),
    };
    let columns: Vec<String> = answer
        .get("columns")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(text).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<Value>> = answer
        .get("rows")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .map(|row| row.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    if json {
        let objects: Vec<Value> = rows
            .iter()
            .map(|r| {
                Value::Object(
                    columns
                        .iter()
                        .cloned()
                        .zip(r.iter().cloned())
                        .collect::<serde_json::Map<_, _>>(),
                )
            })
            .collect();
        outln!("{}", Value::Array(objects));
    } else if columns.is_empty() {
        outln!("(no function here has a `{table}` table)");
    } else {
        out!("{}", render(&columns, &rows));
    }
    ExitCode::SUCCESS
}

/// A trace answer, for people.
pub fn render_trace(answer: &Value) -> String {
    let mut out = String::new();
    let packets = answer
        .get("packets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let first = packets
        .first()
        .and_then(|p| p["time_ns"].as_u64())
        .unwrap_or(0);
    for p in &packets {
        // A packet's steps all happen in the worker turn that received it: one time each.
        let at = p["time_ns"].as_u64().unwrap_or(first).saturating_sub(first);
        out.push_str(&format!(
            "packet {} at +{:.6} s on {}: {}\n",
            text(&p["packet"]),
            at as f64 / 1e9,
            text(&p["port"]),
            text(&p["summary"])
        ));
        for s in p["steps"].as_array().cloned().unwrap_or_default() {
            let line = match s["event"].as_str().unwrap_or("?") {
                "rx" => format!("rx        port {}", text(&s["port"])),
                "tx" => format!("tx        port {}", text(&s["port"])),
                "node" => format!(
                    "function  {} ({}) in on {}",
                    text(&s["function"]),
                    text(&s["kind"]),
                    text(&s["gate"])
                ),
                "drop" => match s.get("function") {
                    Some(f) => format!(
                        "drop      by {} ({}): {}",
                        text(f),
                        text(&s["kind"]),
                        text(&s["reason"])
                    ),
                    None => format!(
                        "drop      at port {}: {}",
                        text(&s["port"]),
                        text(&s["reason"])
                    ),
                },
                "consumed" => format!(
                    "consumed  by {} ({})",
                    text(&s["function"]),
                    text(&s["kind"])
                ),
                other => other.to_string(),
            };
            out.push_str(&format!("  {line}\n"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{} of {} packets traced\n",
        text(&answer["traced"]),
        text(&answer["asked"])
    ));
    if answer["lost_steps"].as_u64().unwrap_or(0) > 0 {
        out.push_str(&format!(
            "{} steps not recorded (the trace's buffer was full)\n",
            text(&answer["lost_steps"])
        ));
    }
    out
}

/// `nfv trace`.
pub fn trace(at: &Target, port: Option<String>, count: u32, timeout: f64, json: bool) -> ExitCode {
    let timeout_ms = if timeout.is_finite() {
        (timeout.clamp(0.0, 600.0) * 1000.0) as u64
    } else {
        10_000
    };
    let req = Request::Trace {
        port,
        count,
        timeout_ms: Some(timeout_ms),
    };
    match ask(at, &req) {
        Ok((answer, _)) if json => {
            outln!("{answer}");
            ExitCode::SUCCESS
        }
        Ok((answer, _)) => {
            out!("{}", render_trace(&answer));
            ExitCode::SUCCESS
        }
        Err(e) => fail("trace", e),
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// `nfv capture AT -w FILE`.
pub fn capture(at: &Target, wire: &str, file: &Path, count: Option<u64>) -> ExitCode {
    let stop = crate::session::stop_flag();
    let req = Request::Capture {
        at: wire.to_string(),
        count,
    };
    let (first, mut reader) = match ask(at, &req) {
        Ok(a) => a,
        Err(e) => return fail("capture", e),
    };
    let out = match std::fs::File::create(file) {
        Ok(f) => f,
        Err(e) => return fail("capture", format!("cannot create {}: {e}", file.display())),
    };
    let header = pcap_file::pcap::PcapHeader {
        ts_resolution: pcap_file::TsResolution::NanoSecond,
        datalink: pcap_file::DataLink::ETHERNET,
        snaplen: 65535,
        ..Default::default()
    };
    let mut pcap =
        // Unbuffered: every frame is in the file once written, however the capture ends.
        match pcap_file::pcap::PcapWriter::with_header(out, header) {
            Ok(w) => w,
            Err(e) => return fail("capture", e),
        };
    let ends = first["capturing"]
        .as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" <-> "))
        .unwrap_or_default();
    errln!("capturing on {ends}; Ctrl-C to stop");
    // Read with a timeout, so that Ctrl-C is seen while nothing crosses the wire.
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)));
    let mut written = 0u64;
    let mut line = Vec::new();
    let mut end: Option<Value> = None;
    // After Ctrl-C: the dataplane is told (our sending half closes) and sends what it
    // copied before, then its last line; we read on until then, for a few seconds at most.
    let mut stopping: Option<std::time::Instant> = None;
    loop {
        if stopping.is_none() && stop.load(Ordering::Relaxed) {
            let _ = reader.get_ref().shutdown(std::net::Shutdown::Write);
            stopping = Some(std::time::Instant::now());
        }
        if stopping.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) if line.last() == Some(&b'\n') => {}
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue;
            }
            Err(e) => return fail("capture", e),
        }
        let v: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => return fail("capture", format!("bad line from the dataplane: {e}")),
        };
        line.clear();
        if v.get("end").is_some() {
            end = Some(v);
            break;
        }
        let Some(data) = v["data"].as_str().and_then(unhex) else {
            return fail("capture", "a frame without data");
        };
        let ns = v["time_ns"].as_u64().unwrap_or(0);
        let pkt =
            pcap_file::pcap::PcapPacket::new(Duration::from_nanos(ns), data.len() as u32, &data);
        if let Err(e) = pcap.write_packet(&pkt) {
            return fail("capture", e);
        }
        written += 1;
    }
    if let Err(e) = pcap.into_writer().sync_all() {
        return fail("capture", e);
    }
    let missed = end.as_ref().and_then(|e| e["missed"].as_u64()).unwrap_or(0);
    errln!(
        "{written} frames written to {}{}",
        file.display(),
        if missed > 0 {
            format!("; {missed} missed (the capture could not keep up)")
        } else {
            String::new()
        }
    );
    if end.as_ref().and_then(|e| e["end"].as_str()) == Some("reload") {
        errln!("the capture ended because the topology was reloaded");
    }
    ExitCode::SUCCESS
}

/// `nfv reload FILE`.
pub fn reload(at: &Target, file: &Path, json: bool) -> ExitCode {
    let yaml = match crate::topology::read_file(file) {
        Ok(t) => t,
        Err(e) => return fail("reload", format!("cannot read {}: {e}", file.display())),
    };
    let req = Request::Reload {
        file: file.display().to_string(),
        text: yaml,
    };
    let answer = match ask(at, &req) {
        Ok((a, _)) => a,
        Err(e) => {
            errln!("nfv reload: {e}");
            errln!("nfv reload: nothing changed");
            return ExitCode::FAILURE;
        }
    };
    if json {
        outln!("{answer}");
        return ExitCode::SUCCESS;
    }
    let list = |k: &str| {
        answer[k]
            .as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let mut any = false;
    for (what, key) in [
        ("ports added", "ports_added"),
        ("ports removed", "ports_removed"),
        ("ports rebuilt", "ports_changed"),
        ("functions added", "functions_added"),
        ("functions removed", "functions_removed"),
        ("functions rebuilt (state reset)", "functions_changed"),
        ("functions updated (state kept)", "functions_updated"),
        ("hosts added", "hosts_added"),
        ("hosts removed", "hosts_removed"),
        ("hosts set up again", "hosts_changed"),
    ] {
        let l = list(key);
        if !l.is_empty() {
            any = true;
            outln!("{what:<32} {}", l.join(", "));
        }
    }
    let kept = list("functions_kept");
    if !kept.is_empty() {
        outln!("{:<32} {}", "functions kept (state kept)", kept.join(", "));
    }
    if !any {
        outln!("nothing to change but the wires");
    }
    outln!("nfv reload: {} applied", file.display());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_line_up() {
        let cols = vec!["port".to_string(), "rx_packets".to_string()];
        let rows = vec![
            vec![json!("h1"), json!(5)],
            vec![json!("longer-name"), json!(12345)],
        ];
        let t = render(&cols, &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "port         rx_packets");
        assert_eq!(lines[1], "h1                    5");
        assert_eq!(lines[2], "longer-name       12345");
        assert_eq!(unhex("0aff"), Some(vec![10, 255]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
