#!/usr/bin/env bash
# echo_instructions.sh - user-space instructions per request of netsh's TCP
# echo loop (receiveany + send, tests/bench/echo_plain.lua), counted by callgrind: a figure that
# does not move with the load of a shared machine, for telling a small
# regression from noise when CPU time per request spreads by +-20%.
#
# Usage:
#   tests/bench/echo_instructions.sh [--conns N] [--size B] [LABEL=NETSH ...]
#
# Each LABEL=NETSH binary (default: this tree's build/netsh) serves two runs
# under valgrind --tool=callgrind, of 2 and 8 seconds of closed-loop load
# (loadgen, N connections, B-byte messages); the figure is the difference
# of the instruction totals over the difference of the requests, so start-up
# and connection set-up cancel out. Every binary runs the same script,
# this tree's echo_plain.lua. Kernel time (the
# syscalls) is not counted: compare syscalls with strace -c.
set -u

. "$(dirname "$0")/lib.sh"

conns=100
size=64
bins=()
while [ $# -gt 0 ]; do
  case $1 in
    --conns) conns=$2; shift ;;
    --size) size=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *=*) bins+=("$1") ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
  shift
done
[ ${#bins[@]} -gt 0 ] || bins=("netsh=$(find_netsh)")
if ! command -v valgrind >/dev/null && [ "$(id -u)" = 0 ] &&
   command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null 2>&1
fi
command -v valgrind >/dev/null || die "needs valgrind (apt-get install valgrind)"
build_tools
TMP_DIR=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP_DIR"' EXIT

# one_run NETSH SECONDS -> "requests instructions"
one_run() {
  local netsh=$1 secs=$2 out=$TMP_DIR/cg.out lg req ir
  next_port
  (cd "$ROOT_DIR" && exec valgrind --tool=callgrind \
     --callgrind-out-file="$out" "$netsh" "$BENCH_DIR/echo_plain.lua" \
     "$PORT") 2>"$TMP_DIR/server.log" &
  SERVER_PID=$!
  wait_tcp_port "$PORT" 30 || die "server did not start: $(head -3 "$TMP_DIR/server.log")"
  lg=$("$BIN_DIR/loadgen" -h 127.0.0.1 -p "$PORT" -c "$conns" -s "$size" \
       -d "$secs" -w 0 --json 2>/dev/null | tail -1)
  kill -INT "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
  req=$(jget requests "$lg")
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
  echo "$req $ir"
}

printf '| netsh | conns | size | requests | instructions/request |\n'
printf '|---|---:|---:|---:|---:|\n'
for b in "${bins[@]}"; do
  label=${b%%=*} netsh=${b#*=}
  read -r r1 i1 <<<"$(one_run "$netsh" 2)"
  read -r r2 i2 <<<"$(one_run "$netsh" 8)"
  per=$(calc "($r2 > $r1) ? int(($i2 - $i1) / ($r2 - $r1)) : -1")
  printf '| %s | %s | %s | %s | %s |\n' "$label" "$conns" "$size" \
    "$((r2 - r1))" "$per"
done
