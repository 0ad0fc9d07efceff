#!/usr/bin/env bash
# Frames between lab namespaces, one core each side: nfv's host ports beside Open vSwitch's
# userspace datapath and the kernel's bridge, in one session on one machine, with the same
# generator. trafgen sends 64-byte UDP frames (198.18.0.1 -> 198.18.0.2, port 9) out of a
# namespace, pinned to CPU 0; the dataplane in the middle, pinned to CPU 1, passes them to a
# second namespace, whose kernel counts them (rx_packets) and drops them cheaply: they are
# addressed to a MAC that is not its own. Mpps = that rx_packets rate over the window.
#
#   ovs          OVS userspace (netdev) datapath, two TAP ports, one OpenFlow rule
#   bridge       the kernel's bridge between two veth pairs (softirq on CPU 0 with trafgen)
#   veth         one veth pair, no bridge: what the kernel alone allows
#   nfv-veth-wire    nfv run: two lab hosts' ports wired to each other, each a veth pair nfv
#                    serves through AF_PACKET rings (a host's port by default)
#   nfv-veth-switch  the same through a learning switch
#   nfv-veth-switch-nooffl  the same with `offloads: false` (no virtio-net header, the
#                    pair's offloads off: every frame whole)
#   nfv-tap-wire     the two ports as TAP devices (`device: tap`), wired
#   nfv-tap-switch   TAP devices through a learning switch (with the virtio-net header)
#   nfv-tap-switch-nooffl  the same with `offloads: false` (no virtio-net header)
#
# The lab hosts are given addresses: a host without one runs a DHCP client (busybox udhcpc)
# that, with no DHCP server on the segment, keeps a packet socket open which every frame
# nfv writes wakes (on this machine kind that halves nfv's rate).
#
#   bash bench/peers/hostports.sh
#
# Environment: ROUNDS (3), SECONDS_MEASURED (5), WARMUP (2), PEERS ("ovs bridge veth
# nfv-veth-wire nfv-veth-switch nfv-veth-switch-nooffl nfv-tap-wire nfv-tap-switch nfv-tap-switch-nooffl"), NFV (the nfv binary; default target/release/nfv, built first). Installs
# openvswitch-switch (without starting its service) and netsniff-ng (trafgen) if missing.
# Prints every measurement, the medians and nfv's ratios to OVS and to the bridge.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${ROUNDS:-3}
measured=${SECONDS_MEASURED:-5}
warmup=${WARMUP:-2}
read -r -a peers <<< "${PEERS:-ovs bridge veth nfv-veth-wire nfv-veth-switch nfv-veth-switch-nooffl nfv-tap-wire nfv-tap-switch nfv-tap-switch-nooffl}"

[ "$(id -u)" = 0 ] || { echo "hostports.sh: run as root" >&2; exit 1; }
missing=()
command -v trafgen >/dev/null 2>&1 || missing+=(netsniff-ng)
command -v ovs-vswitchd >/dev/null 2>&1 || missing+=(openvswitch-switch)
if [ ${#missing[@]} -gt 0 ]; then
  echo "hostports.sh: installing ${missing[*]}" >&2
  # The package must not start the machine's own OVS service.
  policy_made=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d; policy_made=1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  [ "$policy_made" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi
if [ -z "${NFV:-}" ]; then
  cargo build --release -q
  NFV=target/release/nfv
fi

tag=$(printf '%04x' $((RANDOM % 65536)))   # names of this run's namespaces and devices
work=$(mktemp -d /tmp/nfv-hostports.XXXXXX)
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

netns() { ip netns add "$1"; namespaces+=("$1"); ip -n "$1" link set lo up; }
counter() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

# The frame: to 02:00:00:00:00:99 (nobody's), from 02:00:00:00:00:01, IPv4 UDP, 64 bytes.
cat >"$work/udp64.cfg" <<'CFG'
{ 0x02,0x00,0x00,0x00,0x00,0x99, 0x02,0x00,0x00,0x00,0x00,0x01, c16(0x0800),
  0x45, 0, c16(50), c16(0), c16(0x4000), 64, 17, csumip(14, 33),
  198,18,0,1, 198,18,0,2,
  c16(9), c16(9), c16(30), c16(0),
  fill(0x00, 22) }
CFG

# measure PEER NS_GEN DEV_GEN NS_SINK DEV_SINK: trafgen on CPU 0 out of DEV_GEN, then the
# rx_packets rate of DEV_SINK over the window; appends "PEER MPPS" to the results.
measure() {
  local peer=$1 gen t0 t1 r0 r1
  ip netns exec "$2" taskset -c 0 trafgen -o "$3" -i "$work/udp64.cfg" -P 1 -Q -C \
    >"$work/trafgen.log" 2>&1 &
  gen=$!
  pids+=("$gen")
  sleep "$warmup"
  r0=$(counter "$4" "$5" rx_packets); t0=$(date +%s.%N)
  sleep "$measured"
  r1=$(counter "$4" "$5" rx_packets); t1=$(date +%s.%N)
  # trafgen's parent does not pass the signal to the child that sends.
  pkill -INT -P "$gen" 2>/dev/null || true
  kill -INT "$gen" 2>/dev/null || true
  wait "$gen" 2>/dev/null || true
  awk -v p="$peer" -v a="$r0" -v b="$r1" -v s="$t0" -v e="$t1" \
    'BEGIN {printf "%s %.3f\n", p, (b - a) / (e - s) / 1e6}' | tee -a "$results"
}

run_ovs() {
  local ns=nfvhp-ovs-$tag o=$work/ovs db dbd vs
  netns "$ns"
  mkdir -p "$o"
  # Every OVS tool finds the daemons' sockets in this run's own directories.
  export OVS_RUNDIR=$o OVS_LOGDIR=$o OVS_DBDIR=$o
  db=unix:$o/db.sock
  ovsdb-tool create "$o/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ip netns exec "$ns" ovsdb-server "$o/conf.db" \
    --remote="p$db" --pidfile="$o/db.pid" --log-file="$o/db.log" --no-chdir >/dev/null 2>&1 &
  dbd=$!
  pids+=("$dbd")
  for _ in $(seq 50); do [ -S "$o/db.sock" ] && break; sleep 0.1; done
  ip netns exec "$ns" ovs-vsctl --db="$db" --no-wait init
  ip netns exec "$ns" taskset -c 1 ovs-vswitchd "$db" \
    --pidfile="$o/vs.pid" --log-file="$o/vs.log" --no-chdir >/dev/null 2>&1 &
  vs=$!
  pids+=("$vs")
  ip netns exec "$ns" ovs-vsctl --db="$db" add-br hpbr0 -- set bridge hpbr0 datapath_type=netdev \
    -- add-port hpbr0 hpt0 -- set Interface hpt0 type=tap ofport_request=1 \
    -- add-port hpbr0 hpt1 -- set Interface hpt1 type=tap ofport_request=2
  ip netns exec "$ns" ovs-ofctl del-flows hpbr0
  ip netns exec "$ns" ovs-ofctl add-flow hpbr0 "in_port=1,actions=output:2"
  ip -n "$ns" link set hpt0 up
  ip -n "$ns" link set hpt1 up
  measure ovs "$ns" hpt0 "$ns" hpt1
  kill "$vs" "$dbd" 2>/dev/null || true
  wait "$vs" "$dbd" 2>/dev/null || true
  ip netns del "$ns"
  rm -rf "$o"
}

# Two namespaces joined by veth pairs to a middle one (with a bridge, or by one veth).
run_kernel() {
  local peer=$1 g=nfvhp-g-$tag s=nfvhp-s-$tag m=nfvhp-m-$tag
  netns "$g"
  netns "$s"
  if [ "$peer" = veth ]; then
    ip link add hpg0 netns "$g" type veth peer name hps0 netns "$s"
  else
    netns "$m"
    ip link add hpg0 netns "$g" type veth peer name hpm0 netns "$m"
    ip link add hps0 netns "$s" type veth peer name hpm1 netns "$m"
    ip -n "$m" link add hpbr type bridge
    ip -n "$m" link set hpm0 master hpbr
    ip -n "$m" link set hpm1 master hpbr
    ip -n "$m" link set hpm0 up
    ip -n "$m" link set hpm1 up
    ip -n "$m" link set hpbr up
  fi
  ip -n "$g" link set hpg0 up
  ip -n "$s" link set hps0 up
  measure "$peer" "$g" hpg0 "$s" hps0
  ip netns del "$g"
  ip netns del "$s"
  [ "$peer" = veth ] || ip netns del "$m"
}

run_nfv() {
  local peer=$1 f=$work/$1.yaml name=hp$tag g s pid dev offl=
  dev=${peer#nfv-}; dev=${dev%%-*}
  [[ $peer == *-nooffl ]] && offl=", offloads: false"
  g=nfvhp-ng-$tag
  s=nfvhp-ns-$tag
  cat >"$f" <<EOF
name: $name
hosts:
  gen:  { netns: $g, address: 198.18.0.1/24 }
  sink: { netns: $s, address: 198.18.0.2/24 }
ports:
  pgen:  { kind: tap, host: gen, mac: 02:00:00:00:00:01, device: $dev$offl }
  psink: { kind: tap, host: sink, mac: 02:00:00:00:00:02, device: $dev$offl }
metrics: off
EOF
  if [ "${peer##*-}" = wire ]; then
    printf 'links:\n  - [pgen, psink]\n' >>"$f"
  else
    printf 'functions:\n  sw: { kind: switch }\nlinks:\n  - [pgen, sw]\n  - [psink, sw]\n' >>"$f"
  fi
  taskset -c 1 "$NFV" run "$f" --control-socket "$work/nfv.sock" >"$work/nfv.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do grep -q "running; Ctrl-C" "$work/nfv.log" && break; sleep 0.1; done
  grep -q "running; Ctrl-C" "$work/nfv.log" || { cat "$work/nfv.log" >&2; echo "hostports.sh: nfv did not start" >&2; exit 1; }
  measure "$peer" "$g" eth0 "$s" eth0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

for r in $(seq "$rounds"); do
  for p in "${peers[@]}"; do
    case "$p" in
      ovs) run_ovs ;;
      bridge | veth) run_kernel "$p" ;;
      nfv-veth-wire | nfv-veth-switch | nfv-veth-switch-nooffl | nfv-tap-wire | nfv-tap-switch | nfv-tap-switch-nooffl) run_nfv "$p" ;;
      *) echo "hostports.sh: unknown peer $p" >&2; exit 1 ;;
    esac
  done
  echo "hostports.sh: round $r of $rounds done" >&2
done

median() { grep "^$1 " "$results" | awk '{print $2}' | sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print 0}'; }
echo "# $(date +%F)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; 64-byte UDP frames from trafgen (CPU 0), the dataplane on CPU 1; $rounds rounds of $measured s, medians"
printf '%-24s %-28s %7s\n' peer "Mpps (each round)" median
for p in "${peers[@]}"; do
  printf '%-24s %-28s %7s\n' "$p" "$(grep "^$p " "$results" | awk '{printf "%s ", $2}')" "$(median "$p")"
done
ovs=$(median ovs); bridge=$(median bridge)
for p in nfv-veth-wire nfv-veth-switch nfv-veth-switch-nooffl nfv-tap-wire nfv-tap-switch nfv-tap-switch-nooffl; do
  grep -q "^$p " "$results" || continue
  awk -v p="$p" -v n="$(median "$p")" -v o="$ovs" -v b="$bridge" 'BEGIN {
    printf "%s / ovs %s, / bridge %s\n", p, (o > 0 ? sprintf("%.2f", n / o) : "-"), (b > 0 ? sprintf("%.2f", n / b) : "-") }'
done
