#!/usr/bin/env bash
# startup.sh -- start-up cost: `netsh -e ''` beside `lua5.4 -e ''` and
# `python3 -c ''`, same run, hyperfine (no shell in between). Goal: netsh
# within 1.5x of lua5.4, far under python3.
# usage: tests/bench/startup.sh [path/to/netsh]
set -euo pipefail
N=${1:-build/netsh}
command -v hyperfine >/dev/null || { echo "startup.sh: needs hyperfine (apt-get install hyperfine)"; exit 1; }
out=$(mktemp)
hyperfine -N --warmup 20 --runs 300 --export-json "$out" \
  "$N -e ''" "lua5.4 -e ''" "python3 -c ''" >/dev/null
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = {x["command"].split()[0].split("/")[-1]: x for x in r}
lua = base["lua5.4"]["mean"]
print("| command | mean | stddev | vs lua5.4 |")
print("|---|---|---|---|")
for x in r:
    print(f"| `{x['command']}` | {x['mean']*1000:.2f} ms | {x['stddev']*1000:.2f} ms | {x['mean']/lua:.2f}x |")
PY
rm -f "$out"
