# lib.sh - shared helpers for tcp_echo.sh and udp_echo.sh (sourced, not run).
#
# Provides: tool building, free-port picking, server start/stop with CPU
# pinning and a raised fd limit, /proc sampling (CPU ticks, VmRSS), float
# math via awk, JSON field extraction, and an EXIT trap that kills whatever
# this script started.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/../.." && pwd)
BIN_DIR=${BENCH_BIN:-$BENCH_DIR/bin}
CLK_TCK=$(getconf CLK_TCK)
SERVER_NOFILE=65536
SERVER_PID=
LOADGEN_PID=
NEXT_PORT=$((20000 + RANDOM % 9000))

# CPU pinning: server on core 1, load generator on core 0 (needs 2 cores).
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  PIN_SERVER="taskset -c 1"
  PIN_LOAD="taskset -c 0"
else
  echo "note: fewer than 2 CPUs or no taskset; running unpinned" >&2
  PIN_SERVER=
  PIN_LOAD=
fi

die() { echo "$0: $*" >&2; exit 1; }
log() { echo "$*" >&2; }

cleanup() {
  [ -n "$LOADGEN_PID" ] && kill "$LOADGEN_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && stop_server
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_tools() {
  "$BENCH_DIR/build.sh" "$BIN_DIR" >/dev/null || die "build failed"
}

# Real interpreter path (avoids pyenv shims etc. sitting in front of it).
python_exe() {
  "${PYTHON:-python3}" -c 'import sys; print(sys.executable)'
}

# Default netsh binary: --netsh, $NETSH, or a few usual build locations.
find_netsh() {
  local p
  for p in "$ROOT_DIR/build/netsh" "$ROOT_DIR/build/src/netsh" \
           "$ROOT_DIR/netsh"; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  echo "$ROOT_DIR/build/netsh"
}

# True if PORT shows up as a local port of any TCP/UDP socket.
port_in_use() {
  local hex
  hex=$(printf ':%04X ' "$1")
  cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null |
    awk '{print $2" "}' | grep -q -- "$hex"
}

# Pick a fresh, currently unused port (sets PORT).
next_port() {
  local i
  for i in $(seq 1 200); do
    NEXT_PORT=$((NEXT_PORT + 1))
    [ "$NEXT_PORT" -ge 32000 ] && NEXT_PORT=20000
    if ! port_in_use "$NEXT_PORT"; then
      PORT=$NEXT_PORT
      return 0
    fi
  done
  die "no free port found"
}

# start_server CMD... : start pinned, with a raised fd limit; sets SERVER_PID.
start_server() {
  (
    ulimit -n "$SERVER_NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    cd "$ROOT_DIR" || exit 1
    exec $PIN_SERVER "$@"
  ) >"$TMP_DIR/server.log" 2>&1 &
  SERVER_PID=$!
}

stop_server() {
  local i
  [ -z "$SERVER_PID" ] && return 0
  kill "$SERVER_PID" 2>/dev/null
  for i in $(seq 1 40); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
}

server_alive() { [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; }

# Wait (bounded) until a TCP port accepts a connection.
wait_tcp_port() {
  local i
  for i in $(seq 1 100); do
    server_alive || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# Wait (bounded) until some socket is bound to UDP port $1.
wait_udp_port() {
  local i hex
  hex=$(printf ':%04X ' "$1")
  for i in $(seq 1 100); do
    server_alive || return 1
    if cat /proc/net/udp /proc/net/udp6 2>/dev/null | awk '{print $2" "}' |
       grep -q -- "$hex"; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# utime+stime of a process, in clock ticks (all threads); -1 if gone.
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
  s=${s##*) }
  set -- $s
  echo $(( ${12} + ${13} ))
}

# VmRSS of a process in KiB; -1 if gone.
rss_kib() {
  local v
  v=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null)
  echo "${v:--1}"
}

# calc EXPR : evaluate a float expression with awk (variables via -v).
calc() { awk "BEGIN { printf \"%s\", ($1) }" 2>/dev/null; }

# jget KEY JSON : value of a numeric/string field from a flat JSON object.
jget() {
  printf '%s\n' "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

# run_loadgen TMAX CMD... : run a load generator (pinned) that prints
# START/END marks and a final JSON line.  Samples server CPU ticks and RSS
# at each mark.  Sets LG_JSON, CPU0, CPU1, RSS_START, RSS_END.
run_loadgen() {
  local tmax=$1 fd line
  shift
  LG_JSON= CPU0= CPU1= RSS_START= RSS_END=
  exec {fd}< <(exec $PIN_LOAD "$@" 2>"$TMP_DIR/loadgen.err")
  LOADGEN_PID=$!
  while IFS= read -r -t "$tmax" -u "$fd" line; do
    case $line in
      START) CPU0=$(cpu_ticks "$SERVER_PID"); RSS_START=$(rss_kib "$SERVER_PID") ;;
      END) CPU1=$(cpu_ticks "$SERVER_PID"); RSS_END=$(rss_kib "$SERVER_PID") ;;
      '{'*) LG_JSON=$line ;;
    esac
  done
  exec {fd}<&-
  kill "$LOADGEN_PID" 2>/dev/null
  wait "$LOADGEN_PID" 2>/dev/null
  LOADGEN_PID=
  if [ -s "$TMP_DIR/loadgen.err" ]; then
    sed 's/^/  loadgen: /' "$TMP_DIR/loadgen.err" >&2
  fi
}
