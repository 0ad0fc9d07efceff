# Sourced by the peer scripts: one `nfv bench` run, pinned, reduced to its forwarded Mpps.
#
#   nfv_mpps CPU BINARY SCENARIO SECONDS_MEASURED WARMUP    prints e.g. 24.31
#
# It reads the JSON with python3, which the sourcing scripts' summaries use too: sourcing
# this installs it if missing.
command -v python3 >/dev/null 2>&1 || { apt-get update -q >&2 && apt-get install -y -q python3 >&2; }

nfv_mpps() {
  local json
  json=$(taskset -c "$1" "$2" bench "$3" --duration "$4" --warmup "$5" --json 2>/dev/null)
  python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["forwarded_mpps"])' <<< "$json"
}
