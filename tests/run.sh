#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs the system packages
# the tests use, then runs format and lint checks, unit tests and the end-to-end lab tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# iproute2: namespaces and devices; iputils-ping, netcat-openbsd: real traffic in the labs;
# python3: raw frames for the malformed-frame test; coreutils: sha256sum.
packages="iproute2 iputils-ping netcat-openbsd python3 coreutils procps"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "tests/run.sh: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
