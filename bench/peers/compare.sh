#!/usr/bin/env bash
# nfv and DPDK testpmd side by side, in one session on one machine: rounds of testpmd
# (two net_null ports, io and macswap, one forwarding core) and `nfv bench SCENARIO` (one
# worker), interleaved so that both see the same machine; then the medians and nfv's ratio
# to each testpmd mode.
#
#   bash bench/peers/compare.sh [SCENARIO ...]    default: switch router
#
# Any scenario of `nfv bench --list` goes, e.g. `router router6 router6-full`; when a
# scenario and the one it is held to ran in the same session (router6 and router,
# router6-full and router6, router-1m and router), the summary prints their ratio too.
#
# Environment: ROUNDS (3), SECONDS_MEASURED (5), WARMUP (2), CPU (1: the core both
# forwarding loops are pinned to), BINARIES (`LABEL=PATH ...`, default `nfv=target/release/nfv`,
# built if missing: several builds, e.g. `before=/tmp/nfv-old after=target/release/nfv`,
# take turns within each round, so a change is measured against the code before it in the
# same session).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/peers/nfv-mpps.sh

rounds=${ROUNDS:-3}
measured=${SECONDS_MEASURED:-5}
warmup=${WARMUP:-2}
cpu=${CPU:-1}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(switch router)

read -r -a binaries <<< "${BINARIES:-nfv=target/release/nfv}"
for b in "${binaries[@]}"; do
  path=${b#*=}
  if [ ! -x "$path" ]; then
    [ "$path" = target/release/nfv ] || { echo "compare.sh: no binary $path" >&2; exit 1; }
    cargo build --release -q
  fi
done
results=$(mktemp)
trap 'rm -f "$results"' EXIT

for r in $(seq "$rounds"); do
  SECONDS_MEASURED=$measured WARMUP=$warmup CPUS="0,$cpu" bash bench/peers/testpmd-null.sh io macswap |
    while read -r _ mode mpps memory; do echo "testpmd-$mode($memory) $mpps $memory" >> "$results"; done
  for s in "${scenarios[@]}"; do
    for b in "${binaries[@]}"; do
      mpps=$(nfv_mpps "$cpu" "${b#*=}" "$s" "$measured" "$warmup")
      echo "${b%%=*}-$s $mpps -" >> "$results"
    done
  done
  echo "compare.sh: round $r of $rounds done" >&2
done

labels=()
for b in "${binaries[@]}"; do labels+=("${b%%=*}"); done
python3 - "$results" "$rounds" "${labels[@]}" <<'PY'
import statistics, sys, subprocess, datetime
rows = {}
for line in open(sys.argv[1]):
    name, mpps, mem = line.split()
    rows.setdefault(name, []).append(float(mpps))
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"# {datetime.date.today()}  {cpu}, {cores} CPUs; {sys.argv[2]} rounds, medians; testpmd memory in brackets")
print(f"{'what':<28} {'Mpps (each round)':<28} {'median':>8}")
med = {}
for name, v in rows.items():
    med[name] = statistics.median(v)
    print(f"{name:<28} {' '.join(f'{x:.2f}' for x in v):<28} {med[name]:>8.2f}")
for name in med:
    if not name.startswith("testpmd-"):
        for peer in sorted(p for p in med if p.startswith("testpmd-")):
            print(f"{name} / {peer} = {med[name] / med[peer]:.2f}")
# Scenarios held to another (the README's targets): each build against itself.
for label in sys.argv[3:]:
    for s, ref in [("router6", "router"), ("router6-full", "router6"), ("router-1m", "router")]:
        a, b = f"{label}-{s}", f"{label}-{ref}"
        if a in med and b in med and med[b] > 0:
            print(f"{a} / {b} = {med[a] / med[b]:.2f}")
PY
