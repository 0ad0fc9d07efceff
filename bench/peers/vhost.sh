#!/usr/bin/env bash
# nfv's vhost-user ports beside DPDK testpmd's own vhost-user backend (net_vhost), in one
# session on one machine, with the same generator: a testpmd "VM" with two virtio_user
# ports in io mode, seeded with `start tx_first 8` (a closed loop: every frame that comes
# back on one port goes out on the other, so the rate is whatever the backend sustains).
# The backend in the middle is, in turn:
#
#   testpmd      testpmd with two net_vhost ports, io forwarding, one forwarding core
#   nfv-xconnect nfv run: the two vhost-user ports wired to each other (no function)
#   nfv-switch   nfv run: a learning switch between the two ports (MACs known)
#
# The backend runs on CPU 1 (testpmd's main and forwarding lcores, or every nfv thread),
# the generator on CPU 0. Mpps = frames the generator received on both ports over the
# measured window (its `show port stats all` counters, read before and after): what the
# backend forwarded, both directions together. 64-byte frames.
#
#   bash bench/peers/vhost.sh
#
# Environment: ROUNDS (3), SECONDS_MEASURED (5), WARMUP (2), BACKENDS ("testpmd
# nfv-xconnect nfv-switch"), NFV (the nfv binary; default: target/release/nfv, built first),
# FOREIGN_MAX (10) and TRIES (3): see below. Prints each measurement (Mpps, and the CPU other
# processes took meanwhile, in % of a core), the medians and nfv's ratio to testpmd.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${ROUNDS:-3}
measured=${SECONDS_MEASURED:-5}
warmup=${WARMUP:-2}
read -r -a backends <<< "${BACKENDS:-testpmd nfv-xconnect nfv-switch}"

[ "$(id -u)" = 0 ] || { echo "vhost.sh: run as root" >&2; exit 1; }
if ! command -v dpdk-testpmd >/dev/null 2>&1 || ! ls /usr/lib/*/dpdk/pmds-*/librte_net_vhost.so >/dev/null 2>&1 ||
   ! ls /usr/lib/*/dpdk/pmds-*/librte_net_virtio.so >/dev/null 2>&1; then
  echo "vhost.sh: installing DPDK (dpdk-dev, librte-net-vhost23)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends dpdk-dev librte-net-vhost23 >&2
fi
command -v python3 >/dev/null 2>&1 || { apt-get update -q >&2 && apt-get install -y -q python3 >&2; }
if [ -z "${NFV:-}" ]; then
  cargo build --release -q
  NFV=target/release/nfv
fi

work=$(mktemp -d /tmp/nfv-vhost-bench.XXXXXX)
results=$work/results
pids=()        # every process started here, stopped by PID on exit
tp_pid_gen=""; tp_pid_sw=""   # the generator's and testpmd backend's PIDs (set by tp_start)
prefixes=()    # every --file-prefix used, its /var/run/dpdk directory removed on exit
# DPDK makes /var/run/dpdk for the first run; removed again on exit if so and empty (as
# nfv_control::bench::DpdkRunDirs does for nfv's own testpmd runs).
[ -d /var/run/dpdk ] && dpdk_dir_was_there=1 || dpdk_dir_was_there=0
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${prefixes[@]}"; do rm -rf "/var/run/dpdk/$p"; done
  [ "$dpdk_dir_was_there" = 1 ] || rmdir /var/run/dpdk 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap '' PIPE    # a testpmd that died must not kill us through its FIFO

# tp_start NAME FD CPU VDEV... : interactive testpmd, both lcores on CPU, commands on fd FD
tp_start() {
  local name=$1 fd=$2 cpu=$3 v=() pid
  shift 3
  for d in "$@"; do v+=(--vdev "$d"); done
  mkfifo "$work/$name.in"
  prefixes+=("nfv-vhb-$$-$name")
  # stdbuf: line-buffered stdout, so the stats are in the log when the prompt is.
  stdbuf -oL dpdk-testpmd --lcores="(0,1)@$cpu" --no-huge -m 256 --no-shconf --no-telemetry \
    --no-pci --file-prefix="nfv-vhb-$$-$name" "${v[@]}" -- -i --nb-cores=1 --total-num-mbufs=8192 \
    <"$work/$name.in" >"$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  eval "tp_pid_$name=$pid"
  eval "exec $fd>\"$work/$name.in\""
  for _ in $(seq 150); do
    grep -q 'testpmd>' "$work/$name.log" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$work/$name.log" >&2
  echo "vhost.sh: testpmd $name did not start; its log is above" >&2
  exit 1
}
# tp_cmd NAME FD COMMAND : send a command, wait for the prompt after it
tp_cmd() {
  local n0
  n0=$(grep -o 'testpmd> ' "$work/$1.log" | wc -l)
  echo "$3" >&"$2"
  for _ in $(seq 300); do
    [ "$(grep -o 'testpmd> ' "$work/$1.log" | wc -l)" -gt "$n0" ] && return 0
    sleep 0.05
  done
  echo "vhost.sh: testpmd $1 did not finish '$3'" >&2
  tail -n 20 "$work/$1.log" >&2
  exit 1
}
# tp_quit NAME FD : quit testpmd and wait for it (killed after 10 s)
tp_quit() {
  local pid
  pid=$(eval "echo \$tp_pid_$1")
  { echo "stop" >&"$2"; echo "quit" >&"$2"; } 2>/dev/null || true
  eval "exec $2>&-"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$work/$1.in"
  rm -rf "/var/run/dpdk/nfv-vhb-$$-$1"
}
# rx_total NAME FD : sum of RX-packets over the ports of testpmd NAME, now
rx_total() {
  local before
  before=$(wc -l <"$work/$1.log")
  tp_cmd "$1" "$2" "show port stats all"
  tail -n +"$((before + 1))" "$work/$1.log" | awk '/RX-packets:/ {s += $2} END {print s + 0}'
}

# CPU time (ticks) of the whole machine, and of the given processes (all their threads).
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
proc_ticks() {
  local p t=0 f
  for p in "$@"; do
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + $(echo "$f" | awk '{print $12 + $13}')))
  done
  echo "$t"
}

# The generator: two virtio_user ports on the backend's sockets, io, 8 bursts seeded per
# port. testpmd sends on port P to 02:00:00:00:00:0P, so port 0 has MAC ..:01 and port 1
# ..:00: each is the other's destination, a switch learns both and forwards by lookup.
# Measures and appends "BACKEND MPPS FOREIGN%" to the results, where FOREIGN% is the CPU
# (in % of one core) used during the window by processes other than the generator and the
# backend: other jobs on a shared machine. BACKEND_PID is the backend's process.
generate() {
  local backend=$1 r0 r1 t0 t1 b0 b1 o0 o1 gen_pid
  tp_start gen 8 0 "virtio_user0,path=$work/s0.sock,queues=1,mac=02:00:00:00:00:01" \
    "virtio_user1,path=$work/s1.sock,queues=1,mac=02:00:00:00:00:00"
  gen_pid=$tp_pid_gen
  tp_cmd gen 8 "set fwd io"
  tp_cmd gen 8 "start tx_first 8"
  sleep "$warmup"
  b0=$(busy_ticks); o0=$(proc_ticks "$gen_pid" "$BACKEND_PID")
  t0=$(date +%s.%N); r0=$(rx_total gen 8)
  sleep "$measured"
  t1=$(date +%s.%N); r1=$(rx_total gen 8)
  b1=$(busy_ticks); o1=$(proc_ticks "$gen_pid" "$BACKEND_PID")
  tp_quit gen 8
  awk -v b="$backend" -v a="$r0" -v z="$r1" -v s="$t0" -v e="$t1" \
      -v f="$(( (b1 - b0) - (o1 - o0) ))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {f = f * 100 / hz / (e - s); if (f < 0) f = 0
            printf "%s %.3f %.0f\n", b, (z - a) / (e - s) / 1e6, f}' | tee -a "$results"
  if [ "$r1" -le "$r0" ]; then
    tail -n 30 "$work/gen.log" >&2
    echo "vhost.sh: nothing came back through $backend; the generator's log is above" >&2
    exit 1
  fi
}

run_testpmd() {
  rm -f "$work"/s*.sock
  tp_start sw 7 1 "net_vhost0,iface=$work/s0.sock,queues=1" "net_vhost1,iface=$work/s1.sock,queues=1"
  tp_cmd sw 7 "set fwd io"
  tp_cmd sw 7 "start"
  BACKEND_PID=$tp_pid_sw generate testpmd
  tp_quit sw 7
}

run_nfv() { # run_nfv LABEL : nfv-xconnect or nfv-switch
  local topo=$work/$1.yaml pid
  rm -f "$work"/s*.sock
  {
    echo "name: vhost-bench-$$"
    echo "ports:"
    echo "  a: { kind: vhost-user, socket: $work/s0.sock }"
    echo "  b: { kind: vhost-user, socket: $work/s1.sock }"
    if [ "$1" = nfv-switch ]; then
      printf 'functions:\n  sw: { kind: switch }\nlinks:\n  - [a, sw]\n  - [b, sw]\n'
    else
      printf 'links:\n  - [a, b]\n'
    fi
  } >"$topo"
  taskset -c 1 "$NFV" run "$topo" >"$work/nfv.out" 2>"$work/nfv.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    grep -q 'running; Ctrl-C' "$work/nfv.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/nfv.err" >&2; echo "vhost.sh: nfv run failed" >&2; exit 1; }
    sleep 0.1
  done
  BACKEND_PID=$pid generate "$1"
  kill -TERM "$pid"
  wait "$pid" || { cat "$work/nfv.err" >&2; echo "vhost.sh: nfv run exited with an error" >&2; exit 1; }
  # nfv's own count of what it forwarded and dropped, for the record.
  sed -n '/^port /,/^drops:/p' "$work/nfv.out" | sed "s/^/  $1: /" >&2
}

# Wait (at most 2 minutes) until the machine is idle: less than 10% of one core busy over
# a second. Others share it; their load makes a round read low.
wait_quiet() {
  local b0 b1 hz
  hz=$(getconf CLK_TCK)
  for _ in $(seq 120); do
    b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
    [ $(( (b1 - b0) * 100 / hz )) -lt 10 ] && return 0
  done
  echo "vhost.sh: warning: the machine is not idle; measuring anyway" >&2
}

# Each measurement is redone (at most TRIES times in all) while other processes took more
# than FOREIGN_MAX % of a core during its window; every try is printed, the last one counts.
foreign_max=${FOREIGN_MAX:-10}
tries=${TRIES:-3}
for r in $(seq "$rounds"); do
  for b in "${backends[@]}"; do
    for t in $(seq "$tries"); do
      wait_quiet
      case $b in
        testpmd) run_testpmd ;;
        nfv-xconnect|nfv-switch) run_nfv "$b" ;;
        *) echo "vhost.sh: unknown backend $b" >&2; exit 2 ;;
      esac
      [ "$(tail -n 1 "$results" | awk '{print $3}')" -le "$foreign_max" ] && break
      [ "$t" -lt "$tries" ] && sed -i '$ d' "$results" && echo "vhost.sh: other load during that window; again" >&2
    done
  done
  echo "vhost.sh: round $r of $rounds done" >&2
done

python3 - "$results" "$rounds" "$measured" "$foreign_max" <<'PY'
import statistics, sys, subprocess, datetime
rows, foreign = {}, {}
for line in open(sys.argv[1]):
    name, mpps, f = line.split()
    rows.setdefault(name, []).append(float(mpps))
    foreign.setdefault(name, []).append(int(f))
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"], capture_output=True, text=True).stdout.strip()
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"# {datetime.date.today()}  {cpu}, {cores} CPUs; vhost-user, 64-byte frames, closed loop "
      f"(testpmd virtio_user x2, io, tx_first 8); {sys.argv[2]} rounds of {sys.argv[3]} s, medians")
print(f"{'backend (CPU 1)':<16} {'Mpps (each round)':<28} {'median':>8}  other load (% of a core)")
med = {}
for name, v in rows.items():
    med[name] = statistics.median(v)
    print(f"{name:<16} {' '.join(f'{x:.2f}' for x in v):<28} {med[name]:>8.2f}  {' '.join(map(str, foreign[name]))}")
if "testpmd" in med:
    for name in med:
        if name.startswith("nfv-"):
            print(f"{name} / testpmd = {med[name] / med['testpmd']:.2f}")
if max(max(f) for f in foreign.values()) > int(sys.argv[4]):
    print(f"# warning: other processes used more than {sys.argv[4]}% of a core during some windows "
          "(after retries); those rounds may read low: rerun on a quiet machine")
PY
