#!/usr/bin/env bash
# TCP between two lab hosts, as a new user measures it: iperf3, one stream, 10 s, in one run:
#   veth          a plain veth pair between two namespaces (the kernel's offloads on)
#   veth-nooffl   the same pair with TSO/GSO/GRO and checksum offload off (every segment
#                 costs the kernel what it costs when nfv is in the middle)
#   nfv-switch    two hosts through nfv's switch (topologies/switch-lab.yaml, the default
#                 host port kind: veth pairs with their offloads, super-frames through nfv)
#   nfv-switch-nooffl  the same with `offloads: false` on both hosts' ports (every frame
#                 whole, as before nfv carried super-frames)
#   nfv-switch-tap  the same two hosts behind TAP devices (`device: tap`, with the
#                 virtio-net header: super-frames through nfv)
#   nfv-switch-tap-nooffl  TAP devices with `offloads: false` (as TAP ports were before)
#   nfv-gateway   nas -> web through topologies/home-gateway.yaml: switch, router, firewall,
#                 NAT, a second router and switch
#   nfv-jumbo     a -> b at MTU 9000 through topologies/jumbo-lab.yaml (a veth host to a TAP
#                 host, through a switch)
# Prints Gbit/s (receiver's) of each round, the medians and each one's ratio to `veth`.
# Two VMs on vhost-user ports are not measured: on this machine kind guests run under TCG
# (no KVM) and the test guest is busybox (no iperf3). Its TCP over nfv's vhost-user port
# (tests/vm_lab.rs, `a_guest_and_a_lab_host_move_tcp_in_super_frames -- --nocapture`) runs
# at 0.1-0.3 Gbit/s, no slower than over QEMU's own TAP backend without nfv: the guest's
# emulated CPU is the limit, not the port.
#
#   bash bench/scripts/tcp.sh
#
# Environment: ROUNDS (1), SECONDS_MEASURED (10), NFV (default target/release/nfv, built
# first). Needs root, iproute2 and python3; installs iperf3 and ethtool if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${ROUNDS:-1}
secs=${SECONDS_MEASURED:-10}
[ "$(id -u)" = 0 ] || { echo "tcp.sh: run as root" >&2; exit 1; }
missing=()
for p in iperf3 ethtool; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tcp.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
if [ -z "${NFV:-}" ]; then
  cargo build --release -q
  NFV=target/release/nfv
fi

tag=$(printf '%04x' $((RANDOM % 65536)))
work=$(mktemp -d /tmp/nfv-tcp.XXXXXX)
results=$work/results
pids=()
namespaces=()
cleanup() {
  local p n
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# iperf3 WHAT NS_CLIENT NS_SERVER SERVER_ADDR: one run; appends "WHAT GBPS".
iperf() {
  local what=$1 c=$2 s=$3 addr=$4 srv out
  ip netns exec "$s" iperf3 -s -1 -B "$addr" >/dev/null 2>&1 &
  srv=$!
  pids+=("$srv")
  for _ in $(seq 50); do
    out=$(ip netns exec "$c" iperf3 -c "$addr" -t "$secs" -J 2>/dev/null || true)
    grep -q '"error"' <<<"$out" || break
    sleep 0.1
  done
  wait "$srv" 2>/dev/null || true
  python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
if "error" in v:
    sys.exit("tcp.sh: iperf3: " + v["error"])
print("%s %.2f" % (sys.argv[1], v["end"]["sum_received"]["bits_per_second"] / 1e9))
' "$what" <<<"$out" | tee -a "$results"
}

run_veth() {
  local what=$1 a=nfvtcp-a-$tag b=nfvtcp-b-$tag
  ip netns add "$a"; namespaces+=("$a")
  ip netns add "$b"; namespaces+=("$b")
  ip link add eth0 netns "$a" type veth peer name eth0 netns "$b"
  ip -n "$a" addr add 10.99.0.1/24 dev eth0
  ip -n "$b" addr add 10.99.0.2/24 dev eth0
  ip -n "$a" link set eth0 up
  ip -n "$b" link set eth0 up
  if [ "$what" = veth-nooffl ]; then
    for n in "$a" "$b"; do
      ip netns exec "$n" ethtool -K eth0 tso off gso off gro off tx off rx off >/dev/null 2>&1
    done
  fi
  iperf "$what" "$a" "$b" 10.99.0.2
  ip netns del "$a"
  ip netns del "$b"
}

# run_nfv WHAT FILE CLIENT SERVER SERVER_ADDR
run_nfv() {
  local what=$1 name=tcp$tag pid
  sed "s/^name: .*/name: $name/" "topologies/$2" >"$work/t.yaml"
  if [[ $what == nfv-switch-tap* ]]; then
    sed -i 's/\(kind: tap, host: h[12]\) }/\1, device: tap }/' "$work/t.yaml"
  fi
  if [[ $what == *-nooffl ]]; then
    sed -i 's/\(kind: tap, host: h[12][^}]*\) }/\1, offloads: false }/' "$work/t.yaml"
    grep -q "offloads: false" "$work/t.yaml" || { echo "tcp.sh: no host port to turn offloads off on" >&2; exit 1; }
  fi
  "$NFV" run "$work/t.yaml" --control-socket "$work/nfv.sock" >"$work/nfv.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do grep -q "running; Ctrl-C" "$work/nfv.log" && break; sleep 0.1; done
  grep -q "running; Ctrl-C" "$work/nfv.log" || { cat "$work/nfv.log" >&2; echo "tcp.sh: nfv did not start" >&2; exit 1; }
  # First contact: ARP and the router's neighbours.
  ip netns exec "nfv-$name-$3" ping -c 2 -W 1 -q "$5" >/dev/null || true
  iperf "$what" "nfv-$name-$3" "nfv-$name-$4" "$5"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

for r in $(seq "$rounds"); do
  run_veth veth
  run_veth veth-nooffl
  run_nfv nfv-switch switch-lab.yaml h1 h2 10.10.0.2
  run_nfv nfv-switch-nooffl switch-lab.yaml h1 h2 10.10.0.2
  run_nfv nfv-switch-tap switch-lab.yaml h1 h2 10.10.0.2
  run_nfv nfv-switch-tap-nooffl switch-lab.yaml h1 h2 10.10.0.2
  run_nfv nfv-gateway home-gateway.yaml nas web 198.51.100.10
  run_nfv nfv-jumbo jumbo-lab.yaml a b 10.1.0.11
  echo "tcp.sh: round $r of $rounds done" >&2
done

median() { grep "^$1 " "$results" | awk '{print $2}' | sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print 0}'; }
echo "# $(date +%F)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; iperf3 TCP, one stream, ${secs} s; $rounds round(s)"
printf '%-22s %-24s %7s %9s\n' what "Gbit/s (each round)" median "/ veth"
base=$(median veth)
for w in veth veth-nooffl nfv-switch nfv-switch-nooffl nfv-switch-tap nfv-switch-tap-nooffl nfv-gateway nfv-jumbo; do
  m=$(median "$w")
  printf '%-22s %-24s %7s %9s\n' "$w" "$(grep "^$w " "$results" | awk '{printf "%s ", $2}')" "$m" \
    "$(awk -v m="$m" -v b="$base" 'BEGIN {if (b > 0) printf "%.2f", m / b; else print "-"}')"
done
