//! End to end: a mirror on a lab host's wire copies her traffic to a monitor host, where a
//! real tcpdump captures it, while the traffic itself goes on unchanged.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{lab_available, Lab};
use serde_json::Value;

const NFV: &str = env!("CARGO_BIN_EXE_nfv");

/// tcpdump in `host`'s namespace, writing ICMP frames on eth0 to `file` as they come;
/// returns once it listens.
fn tcpdump(lab: &Lab, host: &str, file: &Path) -> Child {
    let log = lab.dir.path().join("tcpdump.log");
    let err = std::fs::File::create(&log).expect("tcpdump log");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.netns(host),
            "tcpdump",
            "-n",
            "-U",
            "--immediate-mode",
            "-i",
            "eth0",
        ])
        .arg("-w")
        .arg(file)
        .arg("icmp")
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("spawn tcpdump");
    let end = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(
            Instant::now() < end,
            "tcpdump did not start: {:?}",
            std::fs::read_to_string(&log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Stop tcpdump as Ctrl-C would (it then writes out what it holds).
fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let end = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
}

#[test]
fn a_ping_across_a_mirrored_wire_is_captured_on_the_monitor_by_tcpdump() {
    if !lab_available(&["ping", "tcpdump"]) {
        return;
    }
    let lab = Lab::start("mirror-lab.yaml", "mirror-lab");
    let pcap = lab.dir.path().join("monitor.pcap");
    let dump = tcpdump(&lab, "mon", &pcap);
    let (sent, got) = lab.ping("alice", "10.77.0.2", 4);
    assert_eq!(
        (sent, got),
        (4, 4),
        "the mirrored wire still carries the ping"
    );
    std::thread::sleep(Duration::from_millis(300));
    stop(dump);

    let out = Command::new("tcpdump")
        .arg("-nr")
        .arg(&pcap)
        .output()
        .expect("tcpdump -r");
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    let count = |what: &str| lines.lines().filter(|l| l.contains(what)).count();
    assert_eq!(
        count("10.77.0.1 > 10.77.0.2: ICMP echo request"),
        4,
        "the monitor saw alice's requests:\n{lines}{}\ntcpdump: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(lab.dir.path().join("tcpdump.log")).unwrap_or_default()
    );
    assert_eq!(
        count("10.77.0.2 > 10.77.0.1: ICMP echo reply"),
        4,
        "and bob's replies:\n{lines}"
    );

    let show = Command::new(NFV)
        .args(["show", "mirror", "--json", "-t", &lab.name])
        .output()
        .expect("nfv show mirror");
    assert!(show.status.success(), "{show:?}");
    let rows: Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let row = &rows[0];
    assert_eq!(row["function"], "span", "{rows}");
    assert_eq!(row["direction"], "both", "{rows}");
    assert!(row["copies"].as_u64().unwrap_or(0) >= 8, "{rows}");
    assert_eq!(row["missed_monitor_full"], 0, "{rows}");

    let (ok, out) = lab.stop();
    assert!(ok, "nfv run failed:\n{out}");
    assert!(out.contains("mirror span: copies="), "{out}");
}
