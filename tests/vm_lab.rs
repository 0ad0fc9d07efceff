//! End to end with real VMs: busybox guests under QEMU (TCG) on vhost-user sockets, judged
//! by the marker lines they print on their serial console (`tests/common/vm.rs`,
//! `tests/vm/build-guest.sh`). The guests against nfv's vhost-user ports
//! (`topologies/vm-lab.yaml`) come next; here, the harness against a reference backend.
//!
//! One VM test runs at a time ([`vm::serial`]): the machine has 2 cores, and a guest
//! booting under TCG takes one.

mod common;

use std::time::Duration;

use common::testpmd::{self, Testpmd, Vdev};
use common::vm::{self, Guest, Socket};
use common::TempDir;

/// A guest boots in about 6 s under TCG; allow for a busy machine.
const BOOT: Duration = Duration::from_secs(90);
/// The guest's MAC address.
const MAC: &str = "52:54:00:50:00:01";

/// The harness itself against a reference backend, DPDK testpmd (`net_vhost`, icmpecho:
/// it answers ARP and ping for any address), in both socket modes: when this passes and
/// a VM test against nfv fails, look at nfv, not at the guest.
#[test]
fn the_guest_pings_through_testpmd_in_both_socket_modes() {
    if !vm::vm_available(&[]) || !testpmd::testpmd_available() {
        return;
    }
    let _serial = vm::serial();
    let dir = TempDir::new("vm-testpmd");
    let sock = dir.path().join("tp.sock");
    let instructions = [("addr", "10.9.0.2/24"), ("ping", "10.9.0.1")];
    for mode in [Socket::Connect, Socket::Listen] {
        let vdev = Vdev::Vhost {
            iface: sock.clone(),
            client: mode == Socket::Listen,
        };
        // testpmd listens first, or connects (and reconnects) once QEMU listens.
        let (mut tp, mut g) = if mode == Socket::Connect {
            let tp = Testpmd::start("vm-ref", 0, &[vdev]);
            (tp, Guest::boot("tp", &sock, mode, MAC, &instructions))
        } else {
            let g = Guest::boot("tp", &sock, mode, MAC, &instructions);
            (Testpmd::start("vm-ref", 0, &[vdev]), g)
        };
        tp.set_fwd("icmpecho");
        tp.start_fwd();
        g.expect_pass(BOOT);
        // The replies came from testpmd: it counted the guest's frames.
        let stats = tp.stats();
        assert!(
            stats
                .first()
                .is_some_and(|p| p.rx_packets >= 4 && p.tx_packets >= 4),
            "{mode:?}: testpmd port stats {stats:?}"
        );
    }
}
