#!/usr/bin/env bash
# tcp_echo.sh - TCP echo benchmark harness: C epoll, libuv, Python asyncio
# and netsh echo servers under the same closed-loop load.
#
# Usage:
#   tests/bench/tcp_echo.sh [--quick] [--servers "epoll uv asyncio netsh"]
#                           (also: py-asyncio-proto, uvloop)
#                           [--netsh PATH] [--out FILE.jsonl]
#                           [--duration S] [--warmup S]
#                           [--conns "1 50"] [--sizes "64 16384"]
#   tests/bench/tcp_echo.sh --idle N [--servers ...] [--duration S]
#
# For each server and each (connections, message size) cell a fresh server is
# started on a fresh port, pinned to CPU 1; loadgen runs pinned to CPU 0.
# Server CPU time (utime+stime) is sampled at loadgen's START/END marks, RSS
# before connecting and at END.  Results: a Markdown table on stdout, one
# JSON line per run in --out.  See README.md for the columns.
set -u

. "$(dirname "$0")/lib.sh"

servers="epoll uv asyncio netsh"
conns_list="1 50 500 5000"
sizes="64 16384"
duration=3
warmup=1
idle=0
out=
netsh=${NETSH:-}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) duration=1; warmup=0.5; conns_list="1 50 500" ;;
    --servers) servers=$2; shift ;;
    --netsh) netsh=$2; shift ;;
    --out) out=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --conns) conns_list=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --idle) idle=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown option: $1" ;;
  esac
  shift
done

[ -n "$netsh" ] || netsh=$(find_netsh)
if [ -z "$out" ]; then
  mkdir -p "$BENCH_DIR/results"
  out=$BENCH_DIR/results/tcp_echo-$(date +%Y%m%d-%H%M%S).jsonl
fi
: >"$out" || die "cannot write $out"
TMP_DIR=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP_DIR"' EXIT
build_tools
PY=$(python_exe)

# server_cmd NAME : print nothing and fail if the server is unavailable;
# otherwise set CMD (array) and succeed.
server_cmd() {
  case $1 in
    epoll) CMD=("$BIN_DIR/echo_epoll" "$PORT") ;;
    uv)
      [ -x "$BIN_DIR/echo_uv" ] || { SKIP="echo_uv not built"; return 1; }
      CMD=("$BIN_DIR/echo_uv" "$PORT") ;;
    asyncio) CMD=("$PY" "$BENCH_DIR/echo_asyncio.py" "$PORT") ;;
    py-asyncio-proto) CMD=("$PY" "$BENCH_DIR/echo_asyncio_proto.py" "$PORT") ;;
    uvloop)
      # Debian's python3-uvloop is for /usr/bin/python3, which may not be
      # the python3 first on PATH
      local py
      for py in "$PY" /usr/bin/python3; do
        "$py" -c "import uvloop" 2>/dev/null && break
        py=
      done
      [ -n "$py" ] || { SKIP="python3-uvloop not installed"; return 1; }
      CMD=("$py" "$BENCH_DIR/echo_asyncio_proto.py" --uvloop "$PORT") ;;
    netsh)
      [ -x "$netsh" ] || { SKIP="netsh binary not found ($netsh)"; return 1; }
      CMD=("$netsh" scripts/tcp_echo.lua 127.0.0.1 "$PORT") ;;
    *) SKIP="unknown server"; return 1 ;;
  esac
}

# Start server NAME on a fresh port and wait for it; sets NOTE on failure.
launch() {
  NOTE= SKIP=
  next_port
  if ! server_cmd "$1"; then
    NOTE="skipped: $SKIP"
    return 1
  fi
  start_server "${CMD[@]}"
  if ! wait_tcp_port "$PORT"; then
    NOTE="server did not start: $(head -n 1 "$TMP_DIR/server.log" | tr -d '"\\\t' | cut -c1-120)"
    stop_server
    return 1
  fi
  sleep 0.1 # let the probe connection settle before the RSS baseline
  return 0
}

declare -A CPUREQ   # "server conns size" -> CPU us per request
ROWS=()
SKIPPED=()

run_echo_cell() {
  local srv=$1 c=$2 s=$3 rss0 tmax died=
  if ! launch "$srv"; then
    log "  $srv c=$c s=$s: $NOTE"
    SKIPPED+=("$srv: $NOTE")
    return 1
  fi
  rss0=$(rss_kib "$SERVER_PID")
  tmax=$(calc "int($duration + $warmup + 120)")
  run_loadgen "$tmax" "$BIN_DIR/loadgen" -h 127.0.0.1 -p "$PORT" -c "$c" \
    -s "$s" -d "$duration" -w "$warmup" --marks --json
  server_alive || died=1
  stop_server
  if [ -z "$LG_JSON" ] || [ -z "$CPU1" ] || [ "$CPU0" -lt 0 ] ||
     [ "$CPU1" -lt 0 ]; then
    NOTE="no result${died:+ (server died)}"
    log "  $srv c=$c s=$s: $NOTE"
    ROWS+=("$srv|$c|$s|-|-|-|-|-|-|-|-|$NOTE")
    printf '{"bench":"tcp_echo","server":"%s","conns":%s,"size":%s,"error":"%s"}\n' \
      "$srv" "$c" "$s" "$NOTE" >>"$out"
    return 1
  fi
  local req rps p50 p99 errs est cpu_s cpu_req rss1 per_conn
  req=$(jget requests "$LG_JSON"); rps=$(jget rps "$LG_JSON")
  p50=$(jget p50_us "$LG_JSON"); p99=$(jget p99_us "$LG_JSON")
  errs=$(jget errors "$LG_JSON"); est=$(jget established "$LG_JSON")
  rss1=$RSS_END
  cpu_s=$(calc "($CPU1 - $CPU0) / $CLK_TCK")
  cpu_req=$(calc "$req > 0 ? $cpu_s * 1e6 / $req : -1")
  per_conn=$(calc "($rss1 - $rss0) / $c")
  [ -n "$died" ] && NOTE="server died" || NOTE=
  [ "$est" -lt "$c" ] && NOTE="${NOTE:+$NOTE; }only $est/$c connected"
  CPUREQ["$srv $c $s"]=$cpu_req
  ROWS+=("$srv|$c|$s|$rps|$p50|$p99|$cpu_req|$rss0|$rss1|$per_conn|$errs|$NOTE")
  printf '{"bench":"tcp_echo","server":"%s","conns":%s,"size":%s,"duration_s":%s,"warmup_s":%s,"requests":%s,"rps":%s,"p50_us":%s,"p99_us":%s,"server_cpu_s":%s,"cpu_us_per_req":%s,"rss_before_kib":%s,"rss_start_kib":%s,"rss_end_kib":%s,"mem_per_conn_kib":%s,"errors":%s,"established":%s,"note":"%s","loadgen":%s}\n' \
    "$srv" "$c" "$s" "$duration" "$warmup" "$req" "$rps" "$p50" "$p99" \
    "$cpu_s" "$cpu_req" "$rss0" "$RSS_START" "$rss1" "$per_conn" "$errs" \
    "$est" "$NOTE" "$LG_JSON" >>"$out"
  log "  $srv c=$c s=$s: $rps req/s, p99 $p99 us, cpu $cpu_req us/req"
}

run_idle() {
  local n=$1 srv rss0 tmax hold est errs per_conn open
  hold=$duration
  printf '| server | conns | established | open at end | RSS before KiB | RSS held KiB | KiB/conn | errors | note |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---:|---|\n'
  for srv in $servers; do
    log "idle: $srv, $n connections, hold ${hold}s"
    if ! launch "$srv"; then
      printf '| %s | %s | - | - | - | - | - | - | %s |\n' "$srv" "$n" "$NOTE"
      continue
    fi
    rss0=$(rss_kib "$SERVER_PID")
    tmax=$(calc "int($hold + 120)")
    run_loadgen "$tmax" "$BIN_DIR/loadgen" -h 127.0.0.1 -p "$PORT" -c "$n" \
      -s 64 -d "$hold" -w 0 --idle --marks --json
    server_alive || NOTE="server died"
    stop_server
    if [ -z "$LG_JSON" ] || [ -z "$RSS_END" ]; then
      printf '| %s | %s | - | - | %s | - | - | - | no result %s |\n' \
        "$srv" "$n" "$rss0" "$NOTE"
      continue
    fi
    est=$(jget established "$LG_JSON"); errs=$(jget errors "$LG_JSON")
    open=$(jget open_at_end "$LG_JSON")
    per_conn=$(calc "$est > 0 ? ($RSS_END - $rss0) / $est : 0")
    printf '| %s | %s | %s | %s | %s | %s | %.2f | %s | %s |\n' "$srv" "$n" \
      "$est" "$open" "$rss0" "$RSS_END" "$per_conn" "$errs" "$NOTE"
    printf '{"bench":"tcp_idle","server":"%s","conns":%s,"hold_s":%s,"established":%s,"open_at_end":%s,"rss_before_kib":%s,"rss_held_kib":%s,"mem_per_conn_kib":%s,"errors":%s,"note":"%s","loadgen":%s}\n' \
      "$srv" "$n" "$hold" "$est" "$open" "$rss0" "$RSS_END" "$per_conn" \
      "$errs" "$NOTE" "$LG_JSON" >>"$out"
  done
  log "results: $out"
}

if [ "$idle" -gt 0 ]; then
  run_idle "$idle"
  exit 0
fi

# Main matrix: cells outer, servers inner (epoll first if selected).
ordered=
for srv in $servers; do [ "$srv" = epoll ] && ordered="epoll"; done
for srv in $servers; do [ "$srv" != epoll ] && ordered="$ordered $srv"; done
for c in $conns_list; do
  for s in $sizes; do
    log "cell: conns=$c size=$s (window ${duration}s, warmup ${warmup}s)"
    for srv in $ordered; do
      run_echo_cell "$srv" "$c" "$s"
    done
  done
done

printf '\n### TCP echo: %s s window, %s s warmup\n\n' "$duration" "$warmup"
printf '| server | conns | size | req/s | p50 µs | p99 µs | CPU µs/req | CPU vs epoll | RSS before KiB | RSS end KiB | KiB/conn | errors | note |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
for row in "${ROWS[@]}"; do
  IFS='|' read -r srv c s rps p50 p99 cpu rss0 rss1 per errs note <<<"$row"
  base=${CPUREQ["epoll $c $s"]:-}
  ratio=-
  if [ "$cpu" != - ] && [ -n "$base" ]; then
    ratio=$(calc "$base > 0 && $cpu >= 0 ? sprintf(\"%.2fx\", $cpu / $base) : \"-\"")
  fi
  if [ "$rps" = - ]; then
    printf '| %s | %s | %s | - | - | - | - | - | - | - | - | - | %s |\n' \
      "$srv" "$c" "$s" "$note"
  else
    printf '| %s | %s | %s | %.0f | %.1f | %.1f | %.2f | %s | %s | %s | %.2f | %s | %s |\n' \
      "$srv" "$c" "$s" "$rps" "$p50" "$p99" "$cpu" "$ratio" "$rss0" "$rss1" \
      "$per" "$errs" "$note"
  fi
done

# Per-cell CPU/request ratio to the C epoll server.
if [ -n "${CPUREQ[*]:-}" ]; then
  printf '\n### Server CPU per request relative to C epoll (1.00 = same)\n\n'
  hdr='| conns | size |'; sep='|---:|---:|'
  for srv in $ordered; do hdr="$hdr $srv |"; sep="$sep---:|"; done
  printf '%s\n%s\n' "$hdr" "$sep"
  for c in $conns_list; do
    for s in $sizes; do
      line="| $c | $s |"
      base=${CPUREQ["epoll $c $s"]:-}
      for srv in $ordered; do
        v=${CPUREQ["$srv $c $s"]:-}
        if [ -n "$v" ] && [ -n "$base" ]; then
          line="$line $(calc "$base > 0 && $v >= 0 ? sprintf(\"%.2f\", $v / $base) : \"-\"") |"
        else
          line="$line - |"
        fi
      done
      printf '%s\n' "$line"
    done
  done
fi
if [ ${#SKIPPED[@]} -gt 0 ]; then
  printf '\nNotes:\n'
  printf '%s\n' "${SKIPPED[@]}" | sort -u | sed 's/^/- /'
fi
log "results: $out"
