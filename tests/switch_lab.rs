//! End to end: hosts in namespaces talk through nfv's switch over real TAP devices.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{lab_available, Lab};

const HOSTS: [(&str, &str); 4] = [
    ("h1", "10.10.0.1"),
    ("h2", "10.10.0.2"),
    ("h3", "10.10.0.3"),
    ("h4", "10.10.0.4"),
];

#[test]
fn four_hosts_on_one_switch_ping_every_other_host_and_nothing_is_left_after_stop() {
    if !lab_available(&["ping"]) {
        return;
    }
    let lab = Lab::start("switch-lab.yaml", "switch-lab");
    for (from, _) in HOSTS {
        for (to, addr) in HOSTS {
            if from != to {
                let (sent, got) = lab.ping(from, addr, 3);
                assert_eq!((sent, got), (3, 3), "{from} -> {to} ({addr})");
            }
        }
    }
    let name = lab.name.clone();
    let pid = lab.pid;
    let prefix = format!("nfv-{name}-");
    assert_eq!(lab.namespaces_left().len(), 4);
    let (ok, out) = lab.stop();
    assert!(ok, "nfv run exited with failure:\n{out}");
    assert!(out.contains("namespaces and devices removed"), "{out}");
    let left: Vec<_> = common::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let pid_file = format!("/run/nfv/{name}.pid");
    assert!(!std::path::Path::new(&pid_file).exists(), "{pid_file} left");
    // nfv created its TAP devices as nfv<pid>.<n> before moving them into the hosts; none
    // may survive it, in the root namespace or anywhere.
    let ours = format!("nfv{}.", pid % 10_000_000);
    let devices: Vec<_> = common::root_devices()
        .into_iter()
        .filter(|d| d.starts_with(&ours))
        .collect();
    assert!(devices.is_empty(), "devices left: {devices:?}");
    let veths = common::veth_ends(pid);
    assert!(veths.is_empty(), "veth pairs left: {veths:?}");
}

fn sha256(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_20_mb_tcp_transfer_between_two_hosts_arrives_intact() {
    if !lab_available(&["nc", "sha256sum"]) {
        return;
    }
    let lab = Lab::start("switch-lab.yaml", "switch-lab");
    let sent = lab.dir.path().join("sent.bin");
    let recv = lab.dir.path().join("recv.bin");
    let mut data = vec![0u8; 20 * 1024 * 1024];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&sent, &data).expect("write data");

    let mut server = Command::new("ip")
        .args(["netns", "exec", &lab.netns("h2"), "sh", "-c"])
        .arg(format!("exec nc -l 5001 > {}", recv.display()))
        .spawn()
        .expect("nc -l");
    // Retry until the listener is up.
    let start = Instant::now();
    loop {
        let out = lab.exec(
            "h1",
            "sh",
            &[
                "-c",
                &format!("nc -N -w 10 10.10.0.2 5001 < {}", sent.display()),
            ],
        );
        if out.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "could not connect: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let end = Instant::now() + Duration::from_secs(30);
    while server.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < end, "receiver did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = std::fs::metadata(&recv).map(|m| m.len()).unwrap_or(0);
    assert_eq!(got, data.len() as u64, "received length");
    assert_eq!(sha256(&recv), sha256(&sent), "checksums differ");
    let (ok, out) = lab.stop();
    assert!(ok, "{out}");
}
