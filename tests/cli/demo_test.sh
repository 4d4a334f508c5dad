#!/usr/bin/env bash
# demo_test.sh -- the demo that ./setup.sh runs works: the seed's TCP and
# UDP server/client pairs answer "Recu: Bonjour serveur" in one process.
set -u
N=$(realpath "${1:?usage: demo_test.sh path/to/netsh}")
cd "$(dirname "$0")/../.."
out=$(timeout 20 "$N" examples/demo.lua 2>&1); rc=$?
n=$(echo "$out" | grep -c "^Recu: Bonjour serveur$")
if [ $rc = 0 ] && [ "$n" = 2 ] && echo "$out" | grep -q "the waits overlapped"; then
  echo "ok   demo: TCP and UDP exchanges, overlapping waits"
  echo "1 passed, 0 failed"
else
  echo "FAIL demo (rc=$rc, $n answers)"; echo "$out" | sed 's/^/  /'
  echo "0 passed, 1 failed"; exit 1
fi
