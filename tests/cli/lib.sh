# lib.sh -- what the CLI tests share (sourced, not run; tests/CMakeLists.txt
# leaves it out of the tests): a scratch directory, $T (also $tmp), removed
# at exit together with every process whose pid is in pids[]; and the
# reporters, which count:
#   ok NAME                       a passed check
#   ko NAME [LINE...]             a failed one, with lines that say why
#   check NAME EXPECTED ACTUAL    compares two strings (%q-quoted if not)
#   finish                        "N passed, M failed"; fails if any failed
# A test that needs a different `check` defines its own after sourcing.
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

finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
