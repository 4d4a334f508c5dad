#!/usr/bin/env bash
# setup.sh -- the first README command: install the Debian packages netsh
# needs (only the missing ones), build it, and run the demo.
# Idempotent: a second run installs nothing and rebuilds only what changed.
# usage: ./setup.sh [--no-demo]
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(cmake gcc make pkg-config lua5.4 liblua5.4-dev libuv1-dev
  libcurl4-openssl-dev libssl-dev libedit-dev libc-ares-dev lua-cjson
  lua-busted zlib1g-dev libbrotli-dev libzstd-dev
  # for the tests and benchmarks: servers, pty, certificates, peers
  nginx-light tmux openssl curl python3 python3-requests python3-uvloop jq
  wrk hyperfine procps zstd
  python3-aiohttp nodejs  # peers of tests/bench/http_serve.sh
  util-linux iproute2
  # WebSocket peers for the interop specs (tests/spec/websocket_*)
  python3-websockets node-ws
  netbase  # /etc/services: ports given as service names ("http")
  # docs/fleet.md's recipes (tests/cli/fleet_test.sh): GNU parallel,
  # Ansible's engine (ansible-core: 8 MB, installs in seconds), YAML
  parallel ansible-core python3-yaml
  # fuzzing (tests/fuzz): libFuzzer with clang
  clang libfuzzer-14-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # lua5.4 in the same command as lua-busted, so apt picks Lua 5.4 for it
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built $(./build/netsh -v)"

if [ "${1:-}" != "--no-demo" ]; then
  ./build/netsh examples/demo.lua
fi
