//! End to end: a DHCP client keeps its address when nfv restarts. The client runs in a
//! namespace the test owns, behind a veth pair and a bridge, so that it outlives nfv; nfv's
//! TAP (in the root namespace) is moved into the bridge after each start. After the
//! restart the client renews (SIGUSR1 makes udhcpc send a unicast REQUEST to the server
//! identifier) and the new nfv process, which read the lease file, acknowledges the same
//! address.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{lab_available, unique_name, Lab, TempDir};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces and the client the test made; removed whatever happens.
struct Setup {
    client_ns: String,
    bridge_ns: String,
    client: Option<Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut c) = self.client.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.client_ns, &self.bridge_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

const SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set dev "$interface" up ;;
  bound|renew)
    ip -4 addr show dev "$interface" | grep -q "inet $ip/$mask " || { ip -4 addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface"; }
    echo "EVENT $1 $ip" ;;
esac
"#;

fn attach(tap: &str, bridge_ns: &str) {
    ip(&["link", "set", "dev", tap, "netns", bridge_ns]);
    ip(&[
        "-n", bridge_ns, "link", "set", "dev", tap, "master", "br0", "up",
    ]);
}

fn events(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("EVENT "))
        .map(str::to_string)
        .collect()
}

fn wait_events(log: &std::path::Path, n: usize, what: &str) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let e = events(log);
        if e.len() >= n {
            return e;
        }
        assert!(
            Instant::now() < end,
            "{what}: udhcpc log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_client_renewing_after_a_restart_keeps_its_address() {
    if !lab_available(&["busybox"]) {
        return;
    }
    let dir = TempDir::new("dhcp-restart");
    let name = unique_name("renew");
    let tag = name.rsplit('-').next().unwrap_or("0").to_string();
    let tap = format!("nfvt{tag}");
    let topo = dir.path().join("renew.yaml");
    std::fs::write(
        &topo,
        format!(
            "name: {name}\nports:\n  t: {{ kind: tap, ifname: {tap} }}\nfunctions:\n  lan: {{ kind: switch }}\n  dhcp:\n    kind: dhcp-server\n    address: 10.77.0.2/24\n    pool: 10.77.0.100-10.77.0.120\n    lease: 1h\n    leases: {}/dhcp.leases\nlinks:\n  - [t, lan]\n  - [dhcp, lan]\n",
            dir.path().display()
        ),
    )
    .expect("write topology");

    let mut setup = Setup {
        client_ns: format!("nfvt-{tag}-c"),
        bridge_ns: format!("nfvt-{tag}-b"),
        client: None,
    };
    let (c, b) = (setup.client_ns.clone(), setup.bridge_ns.clone());
    ip(&["netns", "add", &c]);
    ip(&["netns", "add", &b]);
    ip(&["-n", &b, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &b, "link", "set", "br0", "up"]);
    ip(&[
        "-n", &c, "link", "add", "eth0", "type", "veth", "peer", "name", "p0", "netns", &b,
    ]);
    ip(&["-n", &b, "link", "set", "p0", "master", "br0", "up"]);
    ip(&["-n", &c, "link", "set", "lo", "up"]);
    ip(&["-n", &c, "link", "set", "eth0", "up"]);

    let lab = Lab::start_path(&topo, name.clone(), TempDir::new("dhcp-restart-run1"));
    attach(&tap, &b);
    let script = dir.path().join("udhcpc.sh");
    std::fs::write(&script, SCRIPT).expect("script");
    let _ = Command::new("chmod").args(["755"]).arg(&script).status();
    let log = dir.path().join("udhcpc.log");
    let out = std::fs::File::create(&log).expect("log");
    let script_path = script.to_string_lossy().into_owned();
    setup.client = Some(
        Command::new("ip")
            .args([
                "netns", "exec", &c, "busybox", "udhcpc", "-f", "-i", "eth0", "-s",
            ])
            .arg(&script_path)
            .args(["-t", "20", "-T", "1", "-A", "1"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("udhcpc"),
    );
    let first = wait_events(&log, 1, "no lease from the first nfv");
    let addr = first[0].rsplit(' ').next().expect("address").to_string();
    assert!(first[0].starts_with("EVENT bound 10.77.0."), "{first:?}");

    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
    let saved = std::fs::read_to_string(dir.path().join("dhcp.leases")).expect("lease file");
    assert!(
        saved.lines().any(|l| l.starts_with(&format!("{addr} "))),
        "{saved}"
    );

    // A new nfv process: the TAP is new, the lease file the same.
    let lab = Lab::start_path(&topo, name, TempDir::new("dhcp-restart-run2"));
    attach(&tap, &b);
    let pid = setup.client.as_ref().map(Child::id).expect("client");
    let _ = Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status();
    let after = wait_events(&log, 2, "no answer to the renewal from the restarted nfv");
    assert_eq!(after[1], format!("EVENT renew {addr}"), "{after:?}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("sending renew") && text.matches("obtained from 10.77.0.2").count() >= 2,
        "the renewal went to the server and was acknowledged:\n{text}"
    );
    let (ok, summary) = lab.stop();
    assert!(ok, "{summary}");
}

/// A lease file nfv cannot write is refused when `nfv run` starts, with the reason, and
/// nothing is left behind; before, the server ran and silently kept no lease.
#[test]
fn an_unwritable_lease_file_is_refused_at_start() {
    if !lab_available(&[]) {
        return;
    }
    let dir = TempDir::new("dhcp-unwritable");
    let name = unique_name("dhcpro");
    let file = dir.path().join("t.yaml");
    // Reading finds no file (as on a first start), but nothing can be made under /proc,
    // even by root.
    std::fs::write(
        &file,
        format!(
            "name: {name}\nports:\n  n: {{ kind: null }}\nfunctions:\n  lan: {{ kind: switch }}\n  dhcp:\n    kind: dhcp-server\n    address: 10.77.0.2/24\n    pool: 10.77.0.100-10.77.0.120\n    leases: /proc/nfv-no-such-dir/dhcp.leases\nlinks:\n  - [n, lan]\n  - [dhcp, lan]\n"
        ),
    )
    .expect("write topology");
    let mut child = Command::new(common::NFV)
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nfv");
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > end {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            panic!("nfv ran with a lease file it cannot write");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("lease file /proc/nfv-no-such-dir/dhcp.leases"),
        "{err}"
    );
    assert!(!std::path::Path::new(&format!("/run/nfv/{name}.sock")).exists());
}
