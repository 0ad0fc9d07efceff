#!/usr/bin/env bash
# The floor under switch-scale's 1M run, measured in the switch itself: rounds of
#   1k    the `switch` scenario (1000 MACs, a table that fits the caches),
#   1M    the same with 1048576 MACs in a table of 2097152 entries (as switch-scale's 1M run),
#   1k+N  the 1k run on a build with the `floor-probe` feature, whose switch also reads one
#         random cache line of an N MiB region per frame, prefetched ahead as a big table's
#         slots are. At 32 MiB that is the one memory access per frame that a million-entry
#         table cannot avoid, without the table's own work; at 1 MiB (within the core's L2)
#         it is the cost of the look-ahead pass alone,
# interleaved so that all see the same machine; then the medians and each one's loss against
# 1k. What 1M loses beyond what 1k+32 loses is the table's own cost; what 1k+32 loses is the
# machine's.
#
#   bash bench/peers/floor.sh
#
# Then the split: one long run each of 1k and 1M on the probe build with NFV_FLOOR_SLICES,
# whose switch leaves parts of its work out in 50 ms turns (see functions/src/switch.rs,
# floor_probe::Slices): `full` (nothing left out), `peek` (learning the source reduced to one
# read of its home slot), `no-learn`, `bare` (no learning and no look-ahead: the source's
# slot is never touched) and, at 1M, `no-warm` (learning without the look-ahead's
# prefetches). The cuts share the same minutes of the same process, so the differences
# between them are what each part costs, free of the drift between runs that the rounds
# above average out.
#
# Environment: ROUNDS (7), SECONDS_MEASURED (2), WARMUP (1), CPU (1), PROBE_MIB ("1 32": the
# region sizes, powers of two), SLICE_SECONDS (20: each split run; 0 leaves the split out).
set -euo pipefail
cd "$(dirname "$0")/../.."
source bench/peers/nfv-mpps.sh

rounds=${ROUNDS:-7}
measured=${SECONDS_MEASURED:-2}
warmup=${WARMUP:-1}
cpu=${CPU:-1}
read -r -a probes <<< "${PROBE_MIB:-1 32}"

cargo build --release -q
# The probe build goes to a target directory of its own, so target/release/nfv stays as is.
CARGO_TARGET_DIR=target/floor-probe cargo build --release -q --bin nfv --features floor-probe

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp topologies/bench-switch.yaml "$work/1k.yaml"
sed -e 's/flows: 1000/flows: 1048576/' -e 's/mac_table_size: 4096/mac_table_size: 2097152/' \
  topologies/bench-switch.yaml > "$work/1m.yaml"
grep -q 'flows: 1048576' "$work/1m.yaml" && grep -q 'mac_table_size: 2097152' "$work/1m.yaml" ||
  { echo "floor.sh: topologies/bench-switch.yaml no longer has flows: 1000 and mac_table_size: 4096" >&2; exit 1; }

run() { # label binary topology [probe MiB]
  local mpps
  mpps=$(NFV_FLOOR_PROBE_MIB=${4:-32} nfv_mpps "$cpu" "$2" "$3" "$measured" "$warmup")
  echo "$1 $mpps" >> "$work/results"
}
for r in $(seq "$rounds"); do
  run 1k target/release/nfv "$work/1k.yaml"
  run 1M target/release/nfv "$work/1m.yaml"
  for mib in "${probes[@]}"; do
    run "1k+$mib" target/floor-probe/release/nfv "$work/1k.yaml" "$mib"
  done
  echo "floor.sh: round $r of $rounds done" >&2
done

python3 - "$work/results" "$rounds" <<'PY'
import statistics, sys, subprocess, datetime
rows = {}
for line in open(sys.argv[1]):
    name, mpps = line.split()
    rows.setdefault(name, []).append(float(mpps))
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
print(f"# {datetime.date.today()}  {cpu}; {sys.argv[2]} rounds, medians")
print(f"{'run':<6} {'Mpps (each round)':<48} {'median':>7} {'ns/frame':>9} {'lost vs 1k':>11}")
base = statistics.median(rows["1k"])
for name, v in rows.items():
    m = statistics.median(v)
    print(f"{name:<6} {' '.join(f'{x:.2f}' for x in v):<48} {m:>7.2f} {1000 / m:>9.1f} {(1 - m / base) * 100:>10.0f}%")
PY

slice_seconds=${SLICE_SECONDS:-20}
[ "$slice_seconds" -gt 0 ] || exit 0
split() { # label topology cuts
  NFV_FLOOR_SLICES=$3 taskset -c "$cpu" target/floor-probe/release/nfv bench "$2" \
    --duration "$slice_seconds" --warmup 2 2>&1 >/dev/null | sed -n "s/^floor-slices \([a-z-]*\) \([0-9.]*\)$/$1 \1 \2/p"
}
{
  split 1k "$work/1k.yaml" full,peek,no-learn,bare
  split 1M "$work/1m.yaml" full,peek,no-learn,bare,no-warm
} > "$work/split"
python3 - "$work/split" "$slice_seconds" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
if not rows:
    sys.exit("floor.sh: the split runs printed no floor-slices lines")
print(f"\n# split: one {sys.argv[2]} s run each, cuts in 50 ms turns; what each cut saves is the part's cost")
print(f"{'run':<4} {'cut':<9} {'Mpps':>7} {'ns/frame':>9} {'saves ns':>9}")
full = {}
for run, cut, mpps in rows:
    ns = 1000 / float(mpps)
    full.setdefault(run, ns)
    print(f"{run:<4} {cut:<9} {float(mpps):>7.2f} {ns:>9.1f} {full[run] - ns:>9.1f}")
PY
