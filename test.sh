#!/usr/bin/env bash
# test.sh -- the second README command: every test, in the normal build
# and in the sanitizer build (ASan + UBSan), then a short run of every
# fuzz target (tests/fuzz/run.sh, one test). Installs and builds first
# (./setup.sh --no-demo), so it works on a fresh clone. Tests start the
# servers they need themselves (nginx, Python peers) on loopback.
# Ends with one line "N passed, N failed" over both builds.
set -uo pipefail
cd "$(dirname "$0")"
./setup.sh --no-demo || exit 1

cmake -S . -B build-asan -DNETSH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  >/dev/null || exit 1
cmake --build build-asan -j"$(nproc)" >/dev/null || exit 1

total_pass=0 total_fail=0
run_ctest() {  # dir label
  local log
  log=$(mktemp)
  (cd "$1" && ctest --output-on-failure -j2 --timeout 600) 2>&1 | tee "$log"
  local line
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [ -z "$line" ]; then
    total_fail=$((total_fail + 1))
  else
    local failed all
    failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    all=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
    total_pass=$((total_pass + all - failed))
    total_fail=$((total_fail + failed))
  fi
  rm -f "$log"
}
echo "== tests: release build"
run_ctest build
echo "== tests: sanitizer build (ASan + UBSan)"
# LeakSanitizer needs ptrace, which some sandboxes refuse: then run
# without leak checks rather than fail every test at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
if ! ASAN_OPTIONS=detect_leaks=1 ./build-asan/netsh -e '' 2>/dev/null; then
  export ASAN_OPTIONS=detect_leaks=0
  echo "(LeakSanitizer unavailable here: leak checks off)"
fi
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_ctest build-asan
# libFuzzer targets (tests/fuzz), 10 s each, two at a time: one test
echo "== fuzz: each target briefly (tests/fuzz/run.sh)"
if tests/fuzz/run.sh --seconds 10 --jobs 2; then
  total_pass=$((total_pass + 1))
else
  total_fail=$((total_fail + 1))
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
