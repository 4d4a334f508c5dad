#!/usr/bin/env bash
# udp_echo.sh - UDP echo benchmark harness: C epoll, Python asyncio and netsh
# UDP echo servers under the same load (fixed number of datagrams in flight).
#
# Usage:
#   tests/bench/udp_echo.sh [--quick] [--servers "epoll asyncio netsh"]
#                           [--netsh PATH] [--out FILE.jsonl]
#                           [--duration S] [--warmup S]
#                           [--outstanding "1 50"] [--sizes "64 16384"]
#                           [--resend MS]
#
# For each server and each (outstanding, size) cell a fresh server is started
# on a fresh port, pinned to CPU 1; udp_loadgen runs pinned to CPU 0.  Server
# CPU time is sampled at udp_loadgen's START/END marks.  Results: a Markdown
# table on stdout, one JSON line per run in --out.  See README.md.
set -u

. "$(dirname "$0")/lib.sh"

servers="epoll asyncio netsh"
outstanding_list="1 50"
sizes="64 16384"
duration=3
warmup=1
out=
resend=200
netsh=${NETSH:-}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) duration=1; warmup=0.5 ;;
    --servers) servers=$2; shift ;;
    --netsh) netsh=$2; shift ;;
    --out) out=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --outstanding) outstanding_list=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --resend) resend=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown option: $1" ;;
  esac
  shift
done

[ -n "$netsh" ] || netsh=$(find_netsh)
if [ -z "$out" ]; then
  mkdir -p "$BENCH_DIR/results"
  out=$BENCH_DIR/results/udp_echo-$(date +%Y%m%d-%H%M%S).jsonl
fi
: >"$out" || die "cannot write $out"
TMP_DIR=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP_DIR"' EXIT
build_tools
PY=$(python_exe)

server_cmd() {
  case $1 in
    epoll) CMD=("$BIN_DIR/udp_echo_epoll" "$PORT") ;;
    asyncio) CMD=("$PY" "$BENCH_DIR/udp_echo_asyncio.py" "$PORT") ;;
    netsh)
      [ -x "$netsh" ] || { SKIP="netsh binary not found ($netsh)"; return 1; }
      CMD=("$netsh" scripts/udp_echo.lua 127.0.0.1 "$PORT") ;;
    *) SKIP="unknown server"; return 1 ;;
  esac
}

launch() {
  NOTE= SKIP=
  next_port
  if ! server_cmd "$1"; then
    NOTE="skipped: $SKIP"
    return 1
  fi
  start_server "${CMD[@]}"
  if ! wait_udp_port "$PORT"; then
    NOTE="server did not start: $(head -n 1 "$TMP_DIR/server.log" | tr -d '"\\\t' | cut -c1-120)"
    stop_server
    return 1
  fi
  sleep 0.1
  return 0
}

declare -A CPUDG
ROWS=()
SKIPPED=()

run_udp_cell() {
  local srv=$1 o=$2 s=$3 tmax died=
  if ! launch "$srv"; then
    log "  $srv o=$o s=$s: $NOTE"
    SKIPPED+=("$srv: $NOTE")
    return 1
  fi
  tmax=$(calc "int($duration + $warmup + 30)")
  run_loadgen "$tmax" "$BIN_DIR/udp_loadgen" -h 127.0.0.1 -p "$PORT" \
    -o "$o" -s "$s" -d "$duration" -w "$warmup" -r "$resend" --marks --json
  server_alive || died=1
  stop_server
  if [ -z "$LG_JSON" ] || [ -z "$CPU1" ] || [ "$CPU0" -lt 0 ] ||
     [ "$CPU1" -lt 0 ]; then
    NOTE="no result${died:+ (server died)}"
    log "  $srv o=$o s=$s: $NOTE"
    ROWS+=("$srv|$o|$s|-|-|-|-|-|-|$NOTE")
    printf '{"bench":"udp_echo","server":"%s","outstanding":%s,"size":%s,"error":"%s"}\n' \
      "$srv" "$o" "$s" "$NOTE" >>"$out"
    return 1
  fi
  local rep dps p50 p99 loss errs cpu_s cpu_dg
  rep=$(jget replies "$LG_JSON"); dps=$(jget dps "$LG_JSON")
  p50=$(jget p50_us "$LG_JSON"); p99=$(jget p99_us "$LG_JSON")
  loss=$(jget loss_pct "$LG_JSON"); errs=$(jget errors "$LG_JSON")
  cpu_s=$(calc "($CPU1 - $CPU0) / $CLK_TCK")
  cpu_dg=$(calc "$rep > 0 ? $cpu_s * 1e6 / $rep : -1")
  [ -n "$died" ] && NOTE="server died" || NOTE=
  CPUDG["$srv $o $s"]=$cpu_dg
  ROWS+=("$srv|$o|$s|$dps|$p50|$p99|$cpu_dg|$loss|$errs|$NOTE")
  printf '{"bench":"udp_echo","server":"%s","outstanding":%s,"size":%s,"duration_s":%s,"warmup_s":%s,"resend_ms":%s,"replies":%s,"dps":%s,"p50_us":%s,"p99_us":%s,"server_cpu_s":%s,"cpu_us_per_dgram":%s,"loss_pct":%s,"errors":%s,"rss_start_kib":%s,"rss_end_kib":%s,"note":"%s","loadgen":%s}\n' \
    "$srv" "$o" "$s" "$duration" "$warmup" "$resend" "$rep" "$dps" "$p50" "$p99" \
    "$cpu_s" "$cpu_dg" "$loss" "$errs" "$RSS_START" "$RSS_END" "$NOTE" \
    "$LG_JSON" >>"$out"
  log "  $srv o=$o s=$s: $dps dgram/s, p99 $p99 us, cpu $cpu_dg us/dgram, loss $loss %"
}

ordered=
for srv in $servers; do [ "$srv" = epoll ] && ordered="epoll"; done
for srv in $servers; do [ "$srv" != epoll ] && ordered="$ordered $srv"; done
for o in $outstanding_list; do
  for s in $sizes; do
    log "cell: outstanding=$o size=$s (window ${duration}s, warmup ${warmup}s)"
    for srv in $ordered; do
      run_udp_cell "$srv" "$o" "$s"
    done
  done
done

printf '\n### UDP echo: %s s window, %s s warmup, resend after %s ms\n\n' \
  "$duration" "$warmup" "$resend"
printf '| server | outstanding | size | datagrams/s | p50 µs | p99 µs | CPU µs/dgram | CPU vs epoll | loss %% | errors | note |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n'
for row in "${ROWS[@]}"; do
  IFS='|' read -r srv o s dps p50 p99 cpu loss errs note <<<"$row"
  base=${CPUDG["epoll $o $s"]:-}
  ratio=-
  if [ "$cpu" != - ] && [ -n "$base" ]; then
    ratio=$(calc "$base > 0 && $cpu >= 0 ? sprintf(\"%.2fx\", $cpu / $base) : \"-\"")
  fi
  if [ "$dps" = - ]; then
    printf '| %s | %s | %s | - | - | - | - | - | - | - | %s |\n' \
      "$srv" "$o" "$s" "$note"
  else
    printf '| %s | %s | %s | %.0f | %.1f | %.1f | %.2f | %s | %.3f | %s | %s |\n' \
      "$srv" "$o" "$s" "$dps" "$p50" "$p99" "$cpu" "$ratio" "$loss" "$errs" \
      "$note"
  fi
done
if [ ${#SKIPPED[@]} -gt 0 ]; then
  printf '\nNotes:\n'
  printf '%s\n' "${SKIPPED[@]}" | sort -u | sed 's/^/- /'
fi
log "results: $out"
