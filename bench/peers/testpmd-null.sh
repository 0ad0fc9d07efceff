#!/usr/bin/env bash
# DPDK testpmd with two net_null ports and one forwarding core: the in-memory ceiling of a
# polled dataplane on this machine, to set beside `nfv bench` in the same run.
#
#   bash bench/peers/testpmd-null.sh [MODE ...]     MODE: io, macswap (default both), mac
#
# Prints one line per mode: `testpmd MODE MPPS MEMORY`, where MPPS is the median over the
# measured seconds of the sum of both ports' Tx-pps (what testpmd forwarded), after a
# warm-up. Environment: SECONDS_MEASURED (5), WARMUP (2), CPUS (0,1: main lcore on the
# first, the forwarding lcore on the second), HUGE (auto|no).
set -euo pipefail

measured=${SECONDS_MEASURED:-5}
warmup=${WARMUP:-2}
cpus=${CPUS:-0,1}
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(io macswap)

if ! command -v dpdk-testpmd >/dev/null 2>&1 || ! ls /usr/lib/*/dpdk/pmds-*/librte_net_null.so >/dev/null 2>&1; then
  echo "testpmd-null.sh: installing DPDK (dpdk-dev, librte-net-null23)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends dpdk-dev librte-net-null23 >&2
fi

# Memory: 2 MiB hugepages when the machine has (or can get) 600 of them, else --no-huge.
mem=(--no-huge -m 1024)
memory="no-huge"
if [ "${HUGE:-auto}" != no ]; then
  free_huge=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  if [ "${free_huge:-0}" -ge 600 ] && mountpoint -q /dev/hugepages 2>/dev/null; then
    mem=(-m 1024)
    memory="hugepages"
  fi
fi

prefix="nfv-peer-$$"
out=$(mktemp)
# DPDK makes /var/run/dpdk for the first run; removed again at the end if so and empty (as
# nfv_control::bench::DpdkRunDirs does for nfv's own testpmd runs).
[ -d /var/run/dpdk ] && dpdk_dir_was_there=1 || dpdk_dir_was_there=0
cleanup() {
  pkill -f -- "--file-prefix=$prefix" 2>/dev/null || true
  rm -rf "/var/run/dpdk/$prefix" "$out"
  [ "$dpdk_dir_was_there" = 1 ] || rmdir /var/run/dpdk 2>/dev/null || true
  rm -f /dev/hugepages/"$prefix"map_* 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for mode in "${modes[@]}"; do
  case $mode in io|macswap|mac) ;; *) echo "testpmd-null.sh: unknown mode $mode" >&2; exit 2 ;; esac
  # Non-interactive testpmd starts forwarding at once and prints port stats every second.
  timeout -s INT $((warmup + measured + 10)) dpdk-testpmd -l "$cpus" "${mem[@]}" --no-pci \
    --file-prefix="$prefix" --vdev net_null0 --vdev net_null1 -- \
    --nb-cores=1 --forward-mode="$mode" --stats-period=1 > "$out" 2>&1 || true
  # Every stats period prints both ports; sum their Tx-pps per period, skip the warm-up.
  # (EAL start-up without hugepages takes a few seconds: the timeout allows for it.)
  mpps=$(awk -v skip="$warmup" -v n="$measured" '
    /Tx-pps:/ { sum += $2; ports++; if (ports == 2) { v[++k] = sum; sum = 0; ports = 0 } }
    END {
      # Forwarding starts with the first non-zero period; the warm-up counts from there.
      f = 1; while (f <= k && v[f] == 0) f++
      m = 0
      for (i = f + skip; i <= k && m < n; i++) s[++m] = v[i]
      if (m == 0) { print "none"; exit }
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
      printf "%.2f\n", s[int((m + 1) / 2)] / 1e6
    }' "$out")
  if [ "$mpps" = none ]; then
    tail -n 30 "$out" >&2
    echo "testpmd-null.sh: testpmd ($mode) reported no forwarding rate; its output is above" >&2
    exit 1
  fi
  echo "testpmd $mode $mpps $memory"
  # A testpmd stopped by a signal may leave its hugepage files behind: free them for the next.
  rm -f /dev/hugepages/"$prefix"map_* 2>/dev/null || true
  rm -rf "/var/run/dpdk/$prefix"
done
