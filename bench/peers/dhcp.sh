#!/usr/bin/env bash
# DHCP exchanges per second: nfv's dhcp-server beside dnsmasq, in one session on one machine,
# measured by Kea's perfdhcp. perfdhcp speaks as a relay: it sends from its own address as
# giaddr (hops 1) to the server's port 67, and takes the replies on its port 67, so the
# server under test serves a relayed request, chooses the subnet by giaddr and answers the
# relay. perfdhcp runs in a namespace of its own, pinned to CPU 0, single-threaded; the
# server in another, pinned to CPU 1:
#
#   dnsmasq          dnsmasq on one end of a veth pair, its lease file written as it goes
#                    (its default), no ping before an offer (--no-ping), room for every
#                    client's lease (--dhcp-lease-max; its default of 1000 would cap it)
#   dnsmasq-ro       the same with --leasefile-ro: leases in memory only (its ceiling)
#   nfv              `nfv run` of a lab whose host (perfdhcp's namespace) is wired straight
#                    to a dhcp-server (the host's port: a veth pair nfv serves through
#                    rings), its lease file written at most once a second by another thread
#
# Each server serves the same /16 (65,000 addresses) to CLIENTS simulated clients (perfdhcp
# -R), with full DORA exchanges. The rate is found, not guessed: perfdhcp runs for SECONDS
# at each rate of RATES in turn (-r RATE -p SECONDS) until a step sees fewer than 90% of
# the exchanges it started completed (the server is saturated); the figure is the highest
# completed rate (perfdhcp's "Rate: N 4-way exchanges/second") of any step. A last run
# with no -r (perfdhcp as fast as it can send: the rate completed under overload) is
# printed beside it.
#
#   bash bench/peers/dhcp.sh
#
# Environment: SECONDS_MEASURED (5), CLIENTS (10000), RATES ("500 1000 2000 4000 8000 16000
# 32000 64000"), PEERS ("dnsmasq dnsmasq-ro nfv"), NFV (the nfv binary; default
# target/release/nfv, built first). Installs kea-admin (which holds perfdhcp on Debian 12)
# and dnsmasq-base if missing. Every namespace, device and process it makes carries this
# run's tag and goes at exit, also on failure. Prints each step, the figures and nfv's
# ratio to each dnsmasq.
set -euo pipefail
cd "$(dirname "$0")/../.."

measured=${SECONDS_MEASURED:-5}
clients=${CLIENTS:-10000}
read -r -a rates <<< "${RATES:-500 1000 2000 4000 8000 16000 32000 64000}"
read -r -a peers <<< "${PEERS:-dnsmasq dnsmasq-ro nfv}"

[ "$(id -u)" = 0 ] || { echo "dhcp.sh: run as root" >&2; exit 1; }
missing=()
command -v perfdhcp >/dev/null 2>&1 || missing+=(kea-admin)
command -v dnsmasq >/dev/null 2>&1 || missing+=(dnsmasq-base)
if [ ${#missing[@]} -gt 0 ]; then
  echo "dhcp.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
if [ -z "${NFV:-}" ]; then
  cargo build --release -q
  NFV=target/release/nfv
fi

tag=$(printf '%04x' $((RANDOM % 65536)))   # names of this run's namespaces and devices
net=10.$((100 + RANDOM % 100))             # this run's /16
work=$(mktemp -d /tmp/nfv-dhcpbench.XXXXXX)
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

# perf PEER NS: the rate search from namespace NS (perfdhcp at $net.0.10) against the
# server at $net.0.2; appends "PEER RATE" to the results.
perf() {
  local peer=$1 ns=$2 r out achieved best=0 counted
  for r in "${rates[@]}"; do
    out=$(ip netns exec "$ns" taskset -c 0 perfdhcp -4 -g single -r "$r" -p "$measured" \
      -R "$clients" -l "$net.0.10" "$net.0.2" 2>&1 || true)
    achieved=$(sed -n 's/^Rate: \([0-9.]*\) 4-way.*/\1/p' <<<"$out" | head -1)
    [ -n "$achieved" ] || { echo "dhcp.sh: perfdhcp reported no rate for $peer:" >&2; echo "$out" >&2; exit 1; }
    counted=$(awk -v a="$achieved" -v r="$r" 'BEGIN {print (a >= 0.9 * r) ? "yes" : "no"}')
    printf '%-12s -r %-6s completed %10.1f exchanges/s %s\n' "$peer" "$r" "$achieved" \
      "$([ "$counted" = yes ] && echo "" || echo "(under 90% of -r: saturated, the search stops)")" >&2
    best=$(awk -v a="$achieved" -v b="$best" 'BEGIN {print (a > b) ? a : b}')
    [ "$counted" = yes ] || break
  done
  out=$(ip netns exec "$ns" taskset -c 0 perfdhcp -4 -g single -p "$measured" \
    -R "$clients" -l "$net.0.10" "$net.0.2" 2>&1 || true)
  achieved=$(sed -n 's/^Rate: \([0-9.]*\) 4-way.*/\1/p' <<<"$out" | head -1)
  printf '%-12s no -r     completed %10.1f exchanges/s (as fast as perfdhcp sends)\n' \
    "$peer" "${achieved:-0}" >&2
  echo "$peer $best ${achieved:-0}" >> "$results"
}

run_dnsmasq() {
  local peer=$1 s=nfvdh-s-$tag c=nfvdh-c-$tag d extra=()
  [ "$peer" = dnsmasq-ro ] && extra=(--leasefile-ro)
  netns "$s"
  netns "$c"
  ip link add "dhs$tag" type veth peer name "dhc$tag"
  ip link set "dhs$tag" netns "$s"
  ip link set "dhc$tag" netns "$c"
  ip -n "$s" addr add "$net.0.2/16" dev "dhs$tag"
  ip -n "$c" addr add "$net.0.10/16" dev "dhc$tag"
  ip -n "$s" link set "dhs$tag" up
  ip -n "$c" link set "dhc$tag" up
  ip netns exec "$s" taskset -c 1 dnsmasq --keep-in-foreground --port=0 \
    --interface="dhs$tag" --bind-interfaces --dhcp-authoritative --no-ping --quiet-dhcp \
    --dhcp-range="$net.1.0,$net.255.250,255.255.0.0,1h" --dhcp-lease-max=65536 \
    --dhcp-leasefile="$work/dnsmasq.leases" --pid-file="$work/dnsmasq.pid" \
    --log-facility="$work/dnsmasq.log" "${extra[@]}" &
  d=$!
  pids+=("$d")
  sleep 1
  kill -0 "$d" 2>/dev/null || { echo "dhcp.sh: dnsmasq did not start:" >&2; cat "$work/dnsmasq.log" >&2; exit 1; }
  perf "$peer" "$c"
  kill "$d" 2>/dev/null || true
  wait "$d" 2>/dev/null || true
  ip netns del "$s"
  ip netns del "$c"
  rm -f "$work/dnsmasq.leases"
}

run_nfv() {
  local name=dhcpbench-$tag topo=$work/dhcp-bench.yaml log=$work/nfv.out n
  cat >"$topo" <<EOF
name: $name
hosts:
  perf: { address: $net.0.10/16, gateway: none }
ports:
  perfp: { kind: tap, host: perf }
functions:
  dhcp:
    kind: dhcp-server
    address: $net.0.2/16
    pool: $net.1.0-$net.255.250
    lease: 1h
    leases: $work/nfv.leases
links:
  - [perfp, dhcp]
EOF
  taskset -c 1 "$NFV" run "$topo" --no-metrics >"$log" 2>"$work/nfv.err" &
  n=$!
  pids+=("$n")
  for _ in $(seq 300); do
    grep -q "running; Ctrl-C" "$log" 2>/dev/null && break
    kill -0 "$n" 2>/dev/null || { echo "dhcp.sh: nfv did not start:" >&2; cat "$work/nfv.err" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "running; Ctrl-C" "$log" || { echo "dhcp.sh: nfv did not start in 30 s" >&2; exit 1; }
  perf nfv "nfv-$name-perf"
  kill -TERM "$n" 2>/dev/null || true
  wait "$n" 2>/dev/null || true
}

for p in "${peers[@]}"; do
  case $p in
    dnsmasq|dnsmasq-ro) run_dnsmasq "$p" ;;
    nfv) run_nfv ;;
    *) echo "dhcp.sh: unknown peer $p" >&2; exit 1 ;;
  esac
done

python3 - "$results" "$measured" "$clients" <<'PY'
import sys, subprocess, datetime
rows = {}
for line in open(sys.argv[1]):
    name, best, flood = line.split()
    rows[name] = (float(best), float(flood))
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print(f"# {datetime.date.today()}  {cpu}; perfdhcp -4 -g single -R {sys.argv[3]} -p {sys.argv[2]} -l ADDR SERVER, as a relay")
print(f"{'server':<12} {'exchanges/s (rate found)':>26} {'as fast as perfdhcp sends':>27}")
for name, (best, flood) in rows.items():
    print(f"{name:<12} {best:>26.1f} {flood:>27.1f}")
if "nfv" in rows:
    for peer in ("dnsmasq", "dnsmasq-ro"):
        if peer in rows and rows[peer][0] > 0:
            print(f"nfv / {peer} = {rows['nfv'][0] / rows[peer][0]:.2f}")
PY
