#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs the system packages
# the tests use, then runs format and lint checks, unit tests and the end-to-end lab tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2: namespaces and devices; iputils-ping, netcat-openbsd: real traffic in the labs;
# python3: raw frames for the malformed-frame test; coreutils: sha256sum; busybox: udhcpc,
# the DHCP client of lab hosts; traceroute: the two-router and gateway tests; curl, iperf3:
# real TCP and UDP through the gateway (python3's http.server is the web server).
# qemu-system-x86, linux-image-amd64, cpio, kmod, xz-utils: the VM tests and the demo's VM
# (tests/vm/build-guest.sh builds the guest; its static busybox is unpacked from the
# busybox-static .deb, since installing that package would remove busybox); dpdk-dev,
# librte-net-vhost23: DPDK testpmd, the reference vhost-user peer; prometheus: promtool
# (checks nfv's /metrics and the dashboard's queries) and a real Prometheus server that
# scrapes nfv in tests/metrics.rs (installed without recommends, so no node exporter; the
# tests run it on their own loopback ports, and no service is started where policy-rc.d
# forbids it). tcpdump reads the pcap files of `nfv capture` in tests/control.rs.
packages="iproute2 iputils-ping netcat-openbsd python3 coreutils procps busybox traceroute iputils-tracepath curl iperf3 qemu-system-x86 linux-image-amd64 cpio kmod xz-utils dpdk-dev librte-net-vhost23 prometheus tcpdump"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "tests/run.sh: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"

# A short fuzz run of every target (cargo-fuzz drives libFuzzer; RUSTC_BOOTSTRAP lets the
# stable toolchain take its sanitizer flags).
fuzz_seconds=${FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" -gt 0 ]; then
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
  mkdir -p tests/fuzz/corpus/frames tests/fuzz/corpus/topology tests/fuzz/corpus/router tests/fuzz/corpus/dhcp tests/fuzz/corpus/gateway tests/fuzz/corpus/vhost tests/fuzz/corpus/vhost_rings tests/fuzz/corpus/control tests/fuzz/corpus/wire \
    tests/fuzz/corpus/vhost_protocol tests/fuzz/corpus/vhost_race \
    tests/fuzz/corpus/leases tests/fuzz/corpus/routes tests/fuzz/corpus/metrics_http tests/fuzz/corpus/control_framing tests/fuzz/corpus/lines tests/fuzz/corpus/offload
  cp tests/fuzz/seeds/topology/* tests/fuzz/corpus/topology/
  cp tests/fuzz/seeds/vhost/* tests/fuzz/corpus/vhost/
  cp tests/fuzz/seeds/control/* tests/fuzz/corpus/control/
  for seeded in vhost_protocol vhost_race leases routes metrics_http control_framing lines offload gateway; do
    cp tests/fuzz/seeds/$seeded/* tests/fuzz/corpus/$seeded/
  done
  flog=$(mktemp)
  for target in frames wire topology router dhcp gateway vhost vhost_rings vhost_race vhost_protocol control control_framing metrics_http leases routes lines offload; do
    # What a target needs besides the time: inputs longer than libFuzzer's default 4 KiB
    # (a request head past the metrics server's 8 KiB limit, many control lines), or, for
    # the texts `lines` grows to 512 KiB, a tight time and memory limit, so that work or
    # memory growing faster than the text fails the run.
    case "$target" in
      metrics_http) extra=(-max_len=20000) ;;
      control_framing) extra=(-max_len=65536) ;;
      lines) extra=(-max_len=4096 -rss_limit_mb=1024 -timeout=10) ;;
      *) extra=() ;;
    esac
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz "$target" "tests/fuzz/corpus/$target" -- \
      -max_total_time="$fuzz_seconds" -print_final_stats=1 "${extra[@]}" > "$flog" 2>&1; then
      tail -n 60 "$flog"
      echo "tests/run.sh: fuzz target $target failed"
      exit 1
    fi
    grep -E "^Done|stat::number_of_executed_units" "$flog" || tail -n 3 "$flog"
  done
  rm -f "$flog"
fi
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
