# lib.sh -- what the CLI tests share (sourced, not run; tests/CMakeLists.txt
# leaves it out of the tests): a scratch directory, $T (also $tmp), removed
# at exit together with every process whose pid is in pids[]; and the
# reporters, which count:
#   ok NAME                       a passed check
#   ko NAME [LINE...]             a failed one, with lines that say why
#   check NAME EXPECTED ACTUAL    compares two strings (%q-quoted if not)
#   check_run NAME RC STDOUT_RE STDERR_RE CMD...
#                                 runs CMD (stdin: null): its status must be
#                                 RC, its outputs match the extended regexes
#                                 (an empty one matches anything)
#   finish                        "N passed, M failed"; fails if any failed
T=$(mktemp -d)
tmp=$T
pids=()
pass=0 fail=0

cli_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cli_cleanup EXIT

ok() { echo "ok   $1"; pass=$((pass + 1)); }

ko() {
  local l
  echo "FAIL $1"
  shift
  for l in "$@"; do echo "  $l"; done
  fail=$((fail + 1))
}

check() {
  if [ "$2" != "$3" ]; then
    printf 'FAIL %s\n  expected: %q\n  got:      %q\n' "$1" "$2" "$3"
    fail=$((fail + 1))
  else
    ok "$1"
  fi
}

check_run() {
  local name=$1 rc=$2 out=$3 err=$4 got
  shift 4
  "$@" >"$T/out" 2>"$T/err" </dev/null
  got=$?
  if [ "$got" != "$rc" ]; then
    ko "$name: exit $got, expected $rc" "$(cat "$T/err")"; return
  fi
  if [ -n "$out" ] && ! grep -Eq -- "$out" "$T/out"; then
    ko "$name: stdout does not match /$out/" "$(cat "$T/out")"; return
  fi
  if [ -n "$err" ] && ! grep -Eq -- "$err" "$T/err"; then
    ko "$name: stderr does not match /$err/" "$(cat "$T/err")"; return
  fi
  ok "$name"
}

finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
