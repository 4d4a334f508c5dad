#!/usr/bin/env bash
# ws_echo.sh - WebSocket echo benchmark: netsh (scripts/ws.lua --listen)
# vs Python websockets vs Node ws, under the same closed-loop load.
#
# Usage:
#   tests/bench/ws_echo.sh [--servers "netsh python node"] [--netsh PATH]
#                          [--conns "50"] [--sizes "64 16384"]
#                          [--duration S] [--warmup S] [--out FILE.jsonl]
#
# Each server runs pinned to CPU 1, ws_loadgen (C, epoll) pinned to CPU 0:
# CONNS connections, each sending one binary message and waiting for its
# echo before the next; no compression is negotiated. Server CPU time
# (utime+stime) is sampled at the window's START/END marks: the table
# gives messages/s and server CPU microseconds per echoed message. Run it
# under /work/bin/cpu-excl on a shared machine.
set -u

. "$(dirname "$0")/lib.sh"

servers="netsh python node"
conns_list="50"
sizes="64 16384"
duration=3
warmup=1
out=
netsh=${NETSH:-}
while [ $# -gt 0 ]; do
  case $1 in
    --servers) servers=$2; shift ;;
    --netsh) netsh=$2; shift ;;
    --conns) conns_list=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown option: $1" ;;
  esac
  shift
done

[ -n "$netsh" ] || netsh=$(find_netsh)
if [ -z "$out" ]; then
  mkdir -p "$BENCH_DIR/results"
  out=$BENCH_DIR/results/ws_echo-$(date +%Y%m%d-%H%M%S).jsonl
fi
: >"$out" || die "cannot write $out"
TMP_DIR=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP_DIR"' EXIT
build_tools

# A python3 that has websockets (Debian's, when pyenv's comes first).
pyws() {
  local p
  for p in "${PYTHON:-python3}" /usr/bin/python3; do
    if "$p" -c 'import websockets' 2>/dev/null; then
      "$p" -c 'import sys; print(sys.executable)'; return 0
    fi
  done
  return 1
}

server_cmd() {
  case $1 in
    netsh)
      [ -x "$netsh" ] || { SKIP="netsh binary not found ($netsh)"; return 1; }
      CMD=("$netsh" -m ws --listen "127.0.0.1:$PORT") ;;
    python)
      local py
      py=$(pyws) || { SKIP="python3-websockets missing"; return 1; }
      CMD=("$py" "$BENCH_DIR/ws_echo_websockets.py" "$PORT") ;;
    node)
      NODE_PATH=/usr/share/nodejs node -e "require('ws')" 2>/dev/null ||
        { SKIP="node-ws missing"; return 1; }
      CMD=(env NODE_PATH=/usr/share/nodejs node "$BENCH_DIR/ws_echo_node.js"
        "$PORT") ;;
    *) SKIP="unknown server"; return 1 ;;
  esac
}

declare -A CPU
ROWS=()
for c in $conns_list; do
  for s in $sizes; do
    log "cell: conns=$c size=$s (window ${duration}s, warmup ${warmup}s)"
    for srv in $servers; do
      next_port
      if ! server_cmd "$srv"; then
        log "  $srv: skipped: $SKIP"; ROWS+=("$srv|$c|$s|-|-|$SKIP"); continue
      fi
      start_server "${CMD[@]}"
      if ! wait_tcp_port "$PORT"; then
        log "  $srv: did not start: $(head -n 1 "$TMP_DIR/server.log")"
        stop_server; ROWS+=("$srv|$c|$s|-|-|did not start"); continue
      fi
      sleep 0.2
      run_loadgen "$(calc "int($duration + $warmup + 60)")" \
        "$BIN_DIR/ws_loadgen" -p "$PORT" -c "$c" -s "$s" -d "$duration" \
        -w "$warmup" --marks
      stop_server
      if [ -z "$LG_JSON" ] || [ -z "$CPU1" ]; then
        ROWS+=("$srv|$c|$s|-|-|no result"); continue
      fi
      req=$(jget requests "$LG_JSON"); rps=$(jget rps "$LG_JSON")
      errs=$(jget errors "$LG_JSON"); est=$(jget established "$LG_JSON")
      cpu_s=$(calc "($CPU1 - $CPU0) / $CLK_TCK")
      per=$(calc "$req > 0 ? sprintf(\"%.1f\", $cpu_s * 1e6 / $req) : -1")
      note=
      [ "$errs" != 0 ] && note="$errs errors"
      [ "$est" -lt "$c" ] && note="${note:+$note; }only $est/$c connected"
      ROWS+=("$srv|$c|$s|$rps|$per|$note")
      printf '{"bench":"ws_echo","server":"%s","conns":%s,"size":%s,"duration_s":%s,"requests":%s,"rps":%s,"server_cpu_s":%s,"cpu_us_per_msg":%s,"errors":%s,"established":%s}\n' \
        "$srv" "$c" "$s" "$duration" "$req" "$rps" "$cpu_s" "$per" "$errs" \
        "$est" >>"$out"
      log "  $srv: $rps msg/s, cpu $per us/msg"
    done
  done
done

printf '\n### WebSocket echo: %s s window, %s s warmup\n\n' "$duration" "$warmup"
printf '| server | conns | size | msg/s | server CPU µs/msg | note |\n'
printf '|---|---:|---:|---:|---:|---|\n'
for row in "${ROWS[@]}"; do
  IFS='|' read -r srv c s rps per note <<<"$row"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$srv" "$c" "$s" "$rps" "$per" "$note"
done
log "results: $out"
