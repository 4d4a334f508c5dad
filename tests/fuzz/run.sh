#!/usr/bin/env bash
# tests/fuzz/run.sh -- build the libFuzzer targets (clang, ASan + UBSan)
# into build-fuzz/ and run each for a bounded time.
#
#   tests/fuzz/run.sh [--seconds N] [--jobs J] [TARGET...]
#
# Targets (default: all): recv http httpd httpresp dns tls json url sse cookie
# getopt repl ws. Each starts from its seed corpus tests/fuzz/<target>/ (which holds
# every past
# finding as a regression case, run first) and grows a working corpus in
# build-fuzz/corpus/<target>/. A crash, a sanitizer report, a failed check,
# a leak (C targets), a timeout (10 s per input) or an RSS above 2 GiB
# fails the target; the input goes to build-fuzz/artifacts/. Ends with
# "fuzz: N passed, N failed" and exits 1 if any failed. Extra libFuzzer
# flags: FUZZ_ARGS. --jobs runs that many targets at once (default 1).
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=10 jobs=1 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] ||
  targets=(recv http httpd httpresp dns tls json url sse cookie getopt repl ws)

if ! command -v clang >/dev/null; then
  echo "run.sh: clang not found (./setup.sh installs it)" >&2
  exit 1
fi
B=build-fuzz
CC=clang cmake -S tests/fuzz -B $B -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null || exit 1
cmake --build $B -j2 >/dev/null || { cmake --build $B -j1; exit 1; }
mkdir -p $B/artifacts

run_one() {  # target -> exit status; log in $B/<target>.log
  local t=$1 leaks=1
  case $t in json|url|sse|cookie|getopt|repl) leaks=0 ;; esac  # Lua's heap lives on
  case ${ASAN_OPTIONS:-} in *detect_leaks=0*) leaks=0 ;; esac  # no LSan
  mkdir -p $B/corpus/$t
  # shellcheck disable=SC2086
  $B/fuzz_$t -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -detect_leaks=$leaks -print_final_stats=1 \
    -artifact_prefix=$B/artifacts/$t- ${FUZZ_ARGS:-} \
    $B/corpus/$t tests/fuzz/$t >$B/$t.log 2>&1
}

pass=0 fail=0
report() {  # target status
  local runs
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' \
    "$B/$1.log" | grep -Eo '[0-9]+$')
  if [ "$2" = 0 ]; then
    pass=$((pass + 1))
    echo "fuzz: $1 ok (${runs:-?} inputs in ${seconds}s)"
  else
    fail=$((fail + 1))
    echo "fuzz: $1 FAILED (exit $2), see $B/$1.log:"
    grep -aE 'finding|check failed|ERROR|SUMMARY|Test unit written' \
      "$B/$1.log" | head -8 | sed 's/^/  /'
  fi
}

running=() names=()
for t in "${targets[@]}"; do
  if [ ! -x $B/fuzz_$t ]; then
    echo "run.sh: no target '$t'" >&2
    fail=$((fail + 1))
    continue
  fi
  run_one "$t" & running+=($!) names+=("$t")
  if [ ${#running[@]} -ge "$jobs" ]; then
    wait "${running[0]}"; report "${names[0]}" $?
    running=("${running[@]:1}") names=("${names[@]:1}")
  fi
done
for i in "${!running[@]}"; do
  wait "${running[$i]}"; report "${names[$i]}" $?
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
