#!/usr/bin/env bash
# Instructions per packet of nfv's worker between two vhost-user ports and a switch, counted
# by callgrind (repeatable on a noisy machine, unlike Mpps). DPDK testpmd plays the VM: two
# virtio_user ports in io mode, MACs set so the switch knows both, `start tx_first 8` (a
# closed loop). nfv runs under valgrind for SECONDS (10) of traffic.
#
#   bash bench/scripts/vhost-callgrind.sh        (root; needs valgrind, dpdk-dev, librte-net-vhost23)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "vhost-callgrind.sh: run as root" >&2; exit 1; }
for p in valgrind dpdk-dev librte-net-vhost23; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
    apt-get update -q >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" >&2; }
done
[ -x target/release/nfv ] || cargo build --release
dir=$(mktemp -d /tmp/nfv-vhost-cg.XXXXXX)
prefix="nfv-vhost-cg-$$"
vg=""
cleanup() {
  [ -n "$vg" ] && kill -INT "$vg" 2>/dev/null && wait "$vg" 2>/dev/null || true
  rm -rf "$dir" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
KEEP=${KEEP:-}
cat > "$dir/t.yaml" <<YAML
name: vhost-cg
ports:
  a: { kind: vhost-user, socket: $dir/a.sock }
  b: { kind: vhost-user, socket: $dir/b.sock }
functions:
  sw: { kind: switch }
links:
  - [a, sw]
  - [b, sw]
YAML
valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" target/release/nfv run "$dir/t.yaml" \
  > "$dir/nfv.out" 2> "$dir/nfv.err" &
vg=$!
for _ in $(seq 100); do [ -S "$dir/b.sock" ] && break; sleep 0.2; done
(sleep 3; echo "set fwd io"; echo "set eth-peer 0 02:00:00:00:00:0b"; echo "set eth-peer 1 02:00:00:00:00:0a"
 echo "start tx_first 8"; sleep "${SECONDS_MEASURED:-10}"; echo "stop"; sleep 1; echo quit) |
  timeout 60 dpdk-testpmd --lcores '(0,1)@0' --no-huge -m 512 --no-shconf --no-telemetry --no-pci \
    --file-prefix="$prefix" --vdev "virtio_user0,path=$dir/a.sock,queues=1,mac=02:00:00:00:00:0a" \
    --vdev "virtio_user1,path=$dir/b.sock,queues=1,mac=02:00:00:00:00:0b" \
    -- -i --nb-cores=1 --total-num-mbufs=8192 > "$dir/testpmd.out" 2>&1
kill -INT "$vg"; wait "$vg" || true; vg=""
packets=$(awk '$1=="a"||$1=="b"{s+=$2} END{print s+0}' "$dir/nfv.out")
[ "$packets" -gt 0 ] || { cat "$dir/nfv.err" >&2; echo "vhost-callgrind.sh: no packets" >&2; exit 1; }
echo "packets received by nfv: $packets"
report=$(cd / && callgrind_annotate --inclusive=yes "$dir/cg.out" 2>/dev/null | grep -v "=>")
per_packet() { # $1: label, $2: a pattern matching one function's inclusive line
  local n
  n=$(echo "$report" | grep -E "$2" | head -1 | awk "{print \$1}" | tr -d ,); [ -n "${DEBUG:-}" ] && echo "$report" | grep -E "$2" | head -1 >&2
  echo "${1}: $(( ${n:-0} / packets )) instructions/packet"
}
per_packet "whole worker" 'worker.rs:nfv_dataplane::worker::Worker::run \['
per_packet "vhost-user receive" 'vhost/mod.rs:<.*as nfv_dataplane::port::Port>::rx_burst \['
per_packet "vhost-user transmit" 'vhost/mod.rs:<.*as nfv_dataplane::port::Port>::tx_burst \['
per_packet "switch" 'switch.rs:<nfv_functions::switch::Switch as nfv_dataplane::graph::Node>::process \['
