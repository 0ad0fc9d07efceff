//! End to end with real VMs: busybox guests under QEMU (TCG) on vhost-user sockets, judged
//! by the marker lines they print on their serial console (`tests/common/vm.rs`,
//! `tests/vm/build-guest.sh`). The guests against nfv's vhost-user ports
//! (`topologies/vm-lab.yaml`) come next; here, the harness against a reference backend.
//!
//! One VM test runs at a time ([`vm::serial`]): the machine has 2 cores, and a guest
//! booting under TCG takes one.

mod common;

use std::time::{Duration, Instant};

use common::vm::{self, Guest, Socket, Testpmd};
use common::TempDir;

/// A guest boots in about 6 s under TCG; allow for a busy machine.
const BOOT: Duration = Duration::from_secs(90);
/// A MAC address for the guests.
const MAC: &str = "52:54:00:50:00:01";

/// The harness itself against a reference backend, DPDK testpmd (`net_vhost`, icmpecho:
/// it answers ARP and ping for any address), in both socket modes: when this passes and
/// a VM test against nfv fails, look at nfv, not at the guest.
#[test]
fn the_guest_pings_through_testpmd_in_both_socket_modes() {
    if !vm::vm_available(&["dpdk-testpmd"]) {
        return;
    }
    let _serial = vm::serial();
    assert!(
        Testpmd::available(),
        "dpdk-testpmd is installed, its vhost driver (librte-net-vhost23) is not"
    );
    let dir = TempDir::new("vm-testpmd");
    let sock = dir.path().join("tp.sock");
    let instructions = [("addr", "10.9.0.2/24"), ("ping", "10.9.0.1")];
    for mode in [Socket::Connect, Socket::Listen] {
        let log = dir.path().join(format!("testpmd-{mode:?}.log"));
        let (tp, mut g) = if mode == Socket::Connect {
            let tp = Testpmd::start(&sock, true, &log);
            assert!(
                tp.wait_for("socket created", Duration::from_secs(20)),
                "{}",
                tp.output()
            );
            let g = Guest::boot("tp", &sock, mode, MAC, &instructions);
            (tp, g)
        } else {
            let g = Guest::boot("tp", &sock, mode, MAC, &instructions);
            let end = Instant::now() + Duration::from_secs(10);
            while !sock.exists() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            (Testpmd::start(&sock, false, &log), g)
        };
        g.expect_pass(BOOT);
        drop(g);
        drop(tp);
    }
}
