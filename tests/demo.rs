//! End to end: `nfv demo` runs the home gateway: DHCP leases, pings across the LAN and
//! through the NAT, pages through the gateway, the port forward, the firewall, and (with
//! QEMU installed) a VM on a vhost-user port that takes a lease and pings; and it cleans up.

mod common;

use std::process::{Command, Stdio};

use common::{lab_available, netns_list, vm, NFV};

#[test]
fn the_demo_runs_the_home_gateway_and_leaves_nothing_behind() {
    if !lab_available(&["ping", "busybox"]) {
        return;
    }
    // The VM part runs when QEMU is installed (tests/run.sh installs it).
    let with_vm = Command::new("sh")
        .args(["-c", "command -v qemu-system-x86_64"])
        .output()
        .is_ok_and(|o| o.status.success());
    let demo = Command::new(NFV)
        .arg("demo")
        // The guest image the VM tests build (the demo builds it there if it must).
        .env("NFV_GUEST_DIR", vm::guest_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nfv demo");
    let vm_dir = std::env::temp_dir().join(format!("nfv-demo-vm.{}", demo.id()));
    let out = demo.wait_with_output().expect("nfv demo output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("nfv demo: OK"), "{stdout}");
    // Five pings between hosts, and the VM's two (the gateway, and the web through NAT).
    let pings = if with_vm { 7 } else { 5 };
    assert_eq!(stdout.matches("3/3 replies").count(), pings, "{stdout}");
    if with_vm {
        for line in [
            "joins the LAN on vhost-user port vm0",
            "vm -> gateway  192.168.1.1     3/3 replies",
            "vm -> web      198.51.100.10   3/3 replies",
            "the VM did too over its vhost-user port",
        ] {
            assert!(stdout.contains(line), "{line}: {stdout}");
        }
        let lease = stdout
            .lines()
            .find(|l| l.contains("port vm0") && l.contains("(from DHCP)"))
            .unwrap_or_else(|| panic!("no VM lease line: {stdout}"));
        assert!(lease.contains("eth0 192.168.1.1"), "{lease}");
        assert!(!stdout.contains("VM part skipped"), "{stdout}");
        // QEMU is gone, and the directory of its socket and console.
        let qemu = Command::new("pgrep")
            .args(["-f", &vm_dir.display().to_string()])
            .output()
            .expect("pgrep");
        assert!(
            qemu.stdout.is_empty(),
            "QEMU still runs: {}",
            String::from_utf8_lossy(&qemu.stdout)
        );
        assert!(!vm_dir.exists(), "{} left behind", vm_dir.display());
    } else {
        assert!(stdout.contains("VM part skipped: qemu-system-x86_64 is not installed"));
    }
    for line in [
        "web sees you as 203.0.113.2",
        "nas sees you as 198.51.100.20",
        "(hairpin NAT): nas sees you as 203.0.113.2",
        "dropped by the firewall",
        "Connection refused",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(!stdout.contains("FAILED"), "{stdout}");
    assert!(netns_list().iter().all(|n| !n.starts_with("nfv-demo-")));
}
