#!/usr/bin/env bash
# run.sh -- the soak test: TCP echo, UDP echo, HTTP against the test nginx,
# DNS against the test responder and task churn, all at once in one netsh
# process (tests/soak/soak.lua), sampling memory and descriptors; fails on
# growth after warm-up or on any error (thresholds: see soak.lua).
#
#   tests/soak/run.sh [--minutes N | --seconds N] [NETSH]
#
# Default: 120 seconds, or $NETSH_SOAK_SECONDS. ctest runs it for a short
# time in each build; run it for 30 minutes by hand before a release.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${NETSH_SOAK_SECONDS:-120}
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) seconds=$(( $2 * 60 )); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
NETSH=$(realpath "${1:-build/netsh}")
export NETSH_SRC=$PWD

dir=$(mktemp -d /tmp/netsh-soak.XXXXXX)
trap 'sh tests/support/nginx.sh stop "$dir" >/dev/null 2>&1 || true' EXIT
read -r http_port _ < <(sh tests/support/nginx.sh start "$dir")

# ASan keeps freed blocks in quarantine (256 MiB by default), which would
# read as growth: a small quarantine keeps use-after-free checks. Even so
# its allocator moves resident memory by +-8 MiB between samples, so in
# that build the resident-memory slope is only a coarse bound (32 MiB/min);
# the Lua heap and descriptor checks stay as strict, and LeakSanitizer
# checks the C side at exit.
# (grep -c reads all of nm's output: -q would quit early, and with pipefail
# nm's SIGPIPE would make the test fail to see ASan)
if nm "$NETSH" 2>/dev/null | grep -c __asan_init >/dev/null; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
  export SOAK_RSS_SLOPE=${SOAK_RSS_SLOPE:-32768}
fi
export DNS_RESPONDER_SECONDS=$((seconds + 120))   # outlives the load
"$NETSH" tests/soak/soak.lua "$seconds" "$http_port"
