#!/usr/bin/env bash
# Rough TAP-to-TAP figures through nfv's switch, on this machine:
#   - ping round-trip time between two lab hosts (100 pings, 10 ms apart), and the same
#     over a plain veth pair between two namespaces as the kernel's baseline;
#   - packets per second of one UDP flow (iperf3, 18-byte payload = 60-byte frames, as fast
#     as the sender goes) from one host to another through the switch;
#   - CPU time nfv's worker uses while idle for 10 s.
# Needs root, iproute2, iputils-ping, iperf3. Usage: bench/scripts/tap-flow.sh [path/to/nfv]
set -euo pipefail
cd "$(dirname "$0")/../.."
NFV=${1:-target/release/nfv}
[ -x "$NFV" ] || cargo build --release
name=tapflow-$$
dir=$(mktemp -d)
sed "s/^name: .*/name: $name/" topologies/switch-lab.yaml > "$dir/t.yaml"
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  ip netns del tf-a-$$ 2>/dev/null || true
  ip netns del tf-b-$$ 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$NFV" run "$dir/t.yaml" > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q running "$dir/out" 2>/dev/null && break; sleep 0.1; done
h1="ip netns exec nfv-$name-h1"
h2="ip netns exec nfv-$name-h2"

$h1 ping -c 3 -q 10.10.0.2 > /dev/null
echo "ping through nfv (100 x, 10 ms apart):"
$h1 ping -c 100 -i 0.01 -q 10.10.0.2 | tail -1

# Kernel baseline: a veth pair between two namespaces.
ip netns add tf-a-$$; ip netns add tf-b-$$
ip link add tfa$$ netns tf-a-$$ type veth peer name tfb$$ netns tf-b-$$
ip -n tf-a-$$ addr add 10.99.0.1/24 dev tfa$$; ip -n tf-a-$$ link set tfa$$ up
ip -n tf-b-$$ addr add 10.99.0.2/24 dev tfb$$; ip -n tf-b-$$ link set tfb$$ up
ip netns exec tf-a-$$ ping -c 3 -q 10.99.0.2 > /dev/null
echo "ping over a plain veth pair (kernel baseline):"
ip netns exec tf-a-$$ ping -c 100 -i 0.01 -q 10.99.0.2 | tail -1

echo "one UDP flow, 60-byte frames, 5 s (iperf3 -u -b 0 -l 18):"
$h2 iperf3 -s -1 -D --logfile "$dir/iperf-server.log"
sleep 0.5
$h1 iperf3 -u -b 0 -l 18 -t 5 -c 10.10.0.2 --json > "$dir/iperf.json" || true
python3 - "$dir/iperf.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["end"]["sum"]
sent = s.get("packets", 0)
lost = s.get("lost_packets", 0)
secs = s.get("seconds", 5) or 5
print(f"  sender offered {sent/secs/1e6:.3f} Mpps, receiver got {(sent-lost)/secs/1e6:.3f} Mpps ({lost} lost of {sent})")
PY

ticks=$(getconf CLK_TCK)
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
sleep 10
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
echo "idle CPU over 10 s: $(( (t1 - t0) * 1000 / ticks )) ms ($(( (t1 - t0) * 100 / ticks / 10 ))% of a core)"

kill -TERM "$pid"; wait "$pid" || true; pid=
grep -A8 "^port" "$dir/out" || true
