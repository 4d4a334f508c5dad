#!/usr/bin/env bash
# scripts_test.sh -- the bundled scripts run as a user would: argv, stdin,
# stdout, exit codes, --help, against servers on loopback that this test
# starts itself (tests/support/http_oddities.py).
# usage: tests/cli/scripts_test.sh path/to/netsh
set -u
N=$(realpath "${1:?usage: scripts_test.sh path/to/netsh}")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/../.."

python3 tests/support/http_oddities.py "$T/http.port" 120 & pids+=($!)
for _ in $(seq 100); do [ -s "$T/http.port" ] && break; sleep 0.05; done
HP=$(cut -d' ' -f1 "$T/http.port")
[ -n "$HP" ] || { echo "could not start the HTTP test server"; exit 1; }

# a port that is surely closed: bind, read it, close
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CLOSED=$(free_port)
CLOSED2=$(free_port)

# --help for every bundled script, through -m, exit 0 and a usage line
for s in $(ls scripts/*.lua | xargs -n1 basename | sed 's/\.lua$//'); do
  out=$("$N" -m "$s" --help 2>&1); rc=$?
  if [ $rc = 0 ] && echo "$out" | grep -qi "usage"; then ok "$s --help"
  else ko "$s --help (rc=$rc)" "$(echo "$out" | head -3)"; fi
done

# netsh -m alone lists the scripts with descriptions
out=$("$N" -m)
if echo "$out" | grep -q "wait_for .*wait until TCP ports" && echo "$out" | grep -q "port_scan"; then
  ok "netsh -m lists the bundled scripts"
else ko "netsh -m lists the bundled scripts" "$out"; fi
echo "$out" | grep -q "tls_expiry .*expire; a cron/pipeline check$" \
  && ok "netsh -m shows the whole first sentence" \
  || ko "netsh -m shows the whole first sentence" "$(echo "$out" | grep tls_expiry)"
out=$("$N" -m no_such_script 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "no bundled script" && ok "unknown script: exit 2" \
  || ko "unknown script: exit 2 (rc=$rc)" "$out"
out=$("$N" -m http_chek 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "did you mean 'http_check'?" \
  && ok "a mistyped script name gets a suggestion" || ko "http_chek (rc=$rc)" "$out"
out=$("$N" -m http_check --expect-staus 200 http://127.0.0.1:1/ 2>&1); rc=$?
[ $rc = 2 ] && echo "$out" | grep -q "unknown option '--expect-staus'; did you mean '--expect-status'?" \
  && ok "a mistyped option gets a suggestion" || ko "--expect-staus (rc=$rc)" "$out"

# usage errors exit 2
"$N" -m port_scan --ports 1-10 >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q "give the HOST" "$T/err" && ok "port_scan refuses to run without a host" \
  || ko "port_scan without host (rc=$rc)" "$(cat "$T/err")"
"$N" -m wait_for >/dev/null 2>&1; [ $? = 2 ] && ok "wait_for without target: exit 2" || ko "wait_for without target"

# ports out of range are usage errors (exit 2), never a traceback
for c in "wait_for localhost:99999 -t 0.1" "wait_for localhost:0 -t 0.1" \
         "wait_for [::1]:70000 -t 0.1" "udp_echo 127.0.0.1 99999" \
         "udp_send -t 0.2 127.0.0.1 99999 x" "udp_send -t 0.2 127.0.0.1 0 x" \
         "tcp_proxy 0 127.0.0.1:99999" "tcp_proxy 0 127.0.0.1:0" \
         "tls_expiry localhost:99999"; do
  timeout 5 "$N" -m $c >/dev/null 2>"$T/err"; rc=$?
  [ $rc = 2 ] && grep -qi "port" "$T/err" && ! grep -q "traceback" "$T/err" \
    && ok "$c: usage error" || ko "$c: usage error (rc=$rc)" "$(head -3 "$T/err")"
done

# -c: at most 10000 (a usage error beyond), and never more tasks than work
# (issue 22: -c 1000000 with one URL took 1.4 GB; http_bench -n 1 hung)
for c in "http_check -c 1000000 http://127.0.0.1:$HP/json" \
         "http_bench -c 10000000 -n 1 http://127.0.0.1:$HP/json" \
         "port_scan 127.0.0.1 --ports $HP -c 10001" \
         "tls_expiry -p 20000 127.0.0.1:$HP"; do
  timeout 10 "$N" -m $c >/dev/null 2>"$T/err"; rc=$?
  [ $rc = 2 ] && grep -q "at most 10000" "$T/err" && ok "${c%% *} -c beyond 10000: usage error" \
    || ko "${c%% *} -c beyond 10000 (rc=$rc)" "$(head -3 "$T/err")"
done
for s in "http_check" "http_bench -n 1"; do
  "$N" -m $s --help | grep -q "10000" && ok "${s%% *} --help states the -c limit" || ko "${s%% *} --help: no limit"
  rss() { /usr/bin/time -f %M "$N" -m $s -c "$1" "http://127.0.0.1:$HP/json" 2>&1 >/dev/null | tail -1; }
  one=$(rss 1); many=$(rss 10000)
  [ -n "$one" ] && [ -n "$many" ] && [ $((many - one)) -lt 5000 ] \
    && ok "${s%% *} -c 10000 for one request costs nothing more (${one} KB, ${many} KB)" \
    || ko "${s%% *} -c 10000 for one request: ${one} KB at -c 1, ${many} KB at -c 10000"
done

# wait_for: up, down (bounded), and the command after --
out=$("$N" -m wait_for "127.0.0.1:$HP" -t 5 -- echo ran 2>"$T/err"); rc=$?
[ $rc = 0 ] && [ "$out" = ran ] && grep -q "is up" "$T/err" && ok "wait_for: up, then runs the command" \
  || ko "wait_for up (rc=$rc)" "$out" "$(cat "$T/err")"
t0=$(date +%s%N)
"$N" -m wait_for "127.0.0.1:$CLOSED" -t 0.6 -i 0.1 2>"$T/err"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc = 1 ] && [ $ms -lt 3000 ] && grep -q "not up after" "$T/err" && ok "wait_for: down, exit 1 after the timeout (${ms} ms)" \
  || ko "wait_for down (rc=$rc, ${ms} ms)" "$(cat "$T/err")"
# a port that opens later: the waiter sees it come up
( sleep 0.5; exec python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", '"$CLOSED"')); s.listen(); time.sleep(5)' ) & pids+=($!)
out=$("$N" -m wait_for "127.0.0.1:$CLOSED" -t 5 -i 0.1 --json); rc=$?
[ $rc = 0 ] && echo "$out" | grep -q '"ok":true' && ok "wait_for: a port that opens later" \
  || ko "wait_for later (rc=$rc)" "$out"

# port_scan: finds exactly the listening ports in a range
out=$("$N" -m port_scan 127.0.0.1 --ports "$HP,$CLOSED,$((HP+1))" -c 5 2>/dev/null); rc=$?
[ $rc = 0 ] && echo "$out" | grep -qx "$HP/tcp open" && echo "$out" | grep -qx "$CLOSED/tcp open" \
  && [ "$(echo "$out" | wc -l)" = 2 ] && ok "port_scan finds the open ports" || ko "port_scan (rc=$rc)" "$out"
out=$("$N" -m port_scan 127.0.0.1 --ports "$HP" --json 2>/dev/null)
echo "$out" | "$N" -e 'local r = json.decode(io.read("l")) assert(r.state == "open" and r.port == '"$HP"')' \
  && ok "port_scan --json" || ko "port_scan --json" "$out"
"$N" -m port_scan 127.0.0.1 --ports 70000 >/dev/null 2>&1; [ $? = 2 ] && ok "port_scan rejects bad ports" || ko "port_scan bad ports"

# dns: /etc/hosts names, plain and JSON, failures exit 1
out=$("$N" -m dns localhost --type A); rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "^localhost	A	127.0.0.1" && ok "dns localhost A" || ko "dns (rc=$rc)" "$out"
out=$(printf 'localhost\n' | "$N" -m dns --json --type AAAA); rc=$?
[ $rc = 0 ] && echo "$out" | grep -q '"address":"::1"' && ok "dns names from stdin, --json" || ko "dns stdin (rc=$rc)" "$out"
"$N" -m dns no-such-host.invalid >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "host not found" "$T/err" && ok "dns: unknown name exits 1" || ko "dns unknown (rc=$rc)" "$(cat "$T/err")"

# tcp_proxy: HTTP through the proxy, both directions, bytes logged
"$N" -m tcp_proxy 0 "127.0.0.1:$HP" --log 2>"$T/proxy.log" & PXPID=$!; pids+=($PXPID)
for _ in $(seq 100); do grep -q -- "->" "$T/proxy.log" 2>/dev/null && break; sleep 0.05; done
PX=$(sed -n 's/^tcp_proxy: 127.0.0.1:\([0-9]*\) ->.*/\1/p' "$T/proxy.log")
body=$("$N" -e 'local r = assert(http.get("http://127.0.0.1:'"$PX"'/big?size=300000")) io.write(#r.body, " ", r.status)')
sleep 0.2
[ "$body" = "300000 200" ] && grep -q "down 3[0-9][0-9][0-9][0-9][0-9] B" "$T/proxy.log" && ok "tcp_proxy forwards and logs bytes" \
  || ko "tcp_proxy ($body)" "$(cat "$T/proxy.log")"
kill -INT $PXPID; wait $PXPID; rc=$?
[ $rc = 0 ] && ok "tcp_proxy stops on Ctrl-C with 0, as its --help says" \
  || ko "tcp_proxy Ctrl-C (rc=$rc)"

# every long-running script: Ctrl-C exits with the code its --help gives
ctrlc_code() {   # the number on the --help exit-code line naming Ctrl-C
  "$N" -m "$1" --help | sed -n 's/^ *\([0-9][0-9]*\) .*Ctrl-C.*/\1/p' | head -1
}
ctrlc() {        # ctrlc NAME ARGS...: start, Ctrl-C after 0.5 s, compare
  local name=$1 want got
  shift
  want=$(ctrlc_code "$name")
  "$N" -m "$name" "$@" >/dev/null 2>"$T/ctrlc.err" < <(sleep 20) & local pid=$!
  sleep 0.5
  kill -INT $pid; wait $pid; got=$?
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    ok "$name: Ctrl-C exits $got, as its --help says"
  else
    ko "$name: Ctrl-C exits $got, --help says '${want:-nothing}'" \
      "$(head -3 "$T/ctrlc.err")"
  fi
}
ctrlc tcp_proxy 0 "127.0.0.1:$HP"
ctrlc tcp_echo 127.0.0.1 0
ctrlc udp_echo 127.0.0.1 0
ctrlc http_bench "http://127.0.0.1:$HP/json" -c 1 -d 30
ctrlc wait_for "127.0.0.1:$CLOSED2" -t 30 -i 0.1
ctrlc tcp_client 127.0.0.1 "$HP"
ctrlc http_check "http://127.0.0.1:$HP/slow?delay=3"

# http_check prints as URLs complete; --ordered in input order
out=$("$N" -m http_check -c 2 "http://127.0.0.1:$HP/slow?delay=0.5" "http://127.0.0.1:$HP/json" | awk '{print $NF}' | tr '\n' ' ')
[ "$out" = "http://127.0.0.1:$HP/json http://127.0.0.1:$HP/slow?delay=0.5 " ] \
  && ok "http_check prints as the URLs complete" || ko "http_check completion order" "$out"
out=$("$N" -m http_check -c 2 --ordered "http://127.0.0.1:$HP/slow?delay=0.5" "http://127.0.0.1:$HP/json" | awk '{print $NF}' | tr '\n' ' ')
[ "$out" = "http://127.0.0.1:$HP/slow?delay=0.5 http://127.0.0.1:$HP/json " ] \
  && ok "http_check --ordered prints in input order" || ko "http_check --ordered" "$out"

# http_bench: counts and percentiles; 404s make it exit 1
out=$("$N" -m http_bench "http://127.0.0.1:$HP/json" -c 4 -n 40 --json); rc=$?
echo "$out" | "$N" -e 'local r = json.decode(io.read("l")) assert(r.requests == 40 and r.failed == 0 and r.statuses["200"] == 40 and r.p50 > 0 and r.p99 >= r.p50, "bad report")' \
  && [ $rc = 0 ] && ok "http_bench -n 40 report" || ko "http_bench (rc=$rc)" "$out"
"$N" -m http_bench "http://127.0.0.1:$HP/status/404" -c 2 -d 200ms >/dev/null; rc=$?
[ $rc = 1 ] && ok "http_bench: errors exit 1" || ko "http_bench 404 (rc=$rc)"

# the pipeline of issue 9: URLs on stdin, JSON lines out, exit 1 on a failure
out=$(printf 'http://127.0.0.1:%s/json\nhttp://127.0.0.1:%s/status/404\n' "$HP" "$HP" \
  | "$N" -m http_check --json); rc=$?
n=$(echo "$out" | jq -s 'length' 2>/dev/null)
okc=$(echo "$out" | jq -s '[.[] | select(.ok == true)] | length' 2>/dev/null)
[ $rc = 1 ] && [ "$n" = 2 ] && [ "$okc" = 1 ] && ok "printf URLs | netsh -m http_check --json | jq: one object per URL, exit 1" \
  || ko "http_check pipeline (rc=$rc n=$n ok=$okc)" "$out"

# curl's exit codes for a single fetch
for c in "http://127.0.0.1:$CLOSED2/:7" "http://127.0.0.1:$HP/status/404:22" \
         "http://no-such-host.invalid/:6" "http://127.0.0.1:$HP/slow?delay=3:28"; do
  url=${c%:*}; want=${c##*:}
  "$N" -m http_check --curl-codes --timeout 0.5 "$url" >/dev/null 2>&1; rc=$?
  [ $rc = "$want" ] && ok "http_check --curl-codes $url -> $want" || ko "http_check --curl-codes $url: got $rc, want $want"
done

"$N" -m tcp_client --curl-codes 127.0.0.1 "$CLOSED2" x >/dev/null 2>&1; rc=$?
[ $rc = 7 ] && ok "tcp_client --curl-codes: refused -> 7" || ko "tcp_client --curl-codes refused: got $rc"
"$N" -m tcp_client --curl-codes no-such-host.invalid 80 x >/dev/null 2>&1; rc=$?
[ $rc = 6 ] && ok "tcp_client --curl-codes: unresolvable -> 6" || ko "tcp_client --curl-codes resolve: got $rc"

"$N" -m udp_send --curl-codes -t 0.3 127.0.0.1 "$CLOSED2" x >/dev/null 2>&1; rc=$?
[ $rc = 7 ] || [ $rc = 28 ] && ok "udp_send --curl-codes: no peer -> $rc" || ko "udp_send --curl-codes: got $rc"

# --trace / --hexdump / NETSH_TRACE: socket operations with task names and bytes
"$N" -m wait_for --trace "127.0.0.1:$HP" -t 5 2>"$T/trace" >/dev/null
grep -q "netsh trace: \[scripts/wait_for.lua:[0-9]*\] tcp 127.0.0.1:[0-9]* > 127.0.0.1:$HP connect" "$T/trace" \
  && ok "--trace logs connects with the task's name" || ko "--trace" "$(cat "$T/trace")"
NETSH_TRACE=hex "$N" -e 'local s = assert(socket.connect("127.0.0.1", '"$HP"')) s:send("GET /json HTTP/1.0\r\n\r\n") s:receive("*a") s:close()' 2>"$T/trace"
grep -q "send 22 B" "$T/trace" && grep -q "00000000  47 45 54 20 2f 6a 73 6f 6e" "$T/trace" && grep -q "receive [0-9]* B" "$T/trace" \
  && ok "NETSH_TRACE=hex logs byte counts and a hex dump" || ko "NETSH_TRACE=hex" "$(head -5 "$T/trace")"

# HTTP you can see: --trace, verbose = true and NETSH_TRACE log the exchange
# as curl -v does (connection, request, response, timings); --hexdump adds
# the bodies
has_http_trace() {   # has_http_trace FILE TASK-REGEX
  grep -q "netsh trace: \[$2\] http \* .*Connected to 127.0.0.1" "$1" &&
  grep -q "netsh trace: \[$2\] http > GET /json HTTP/1.1" "$1" &&
  grep -q "netsh trace: \[$2\] http > Host: 127.0.0.1:$HP" "$1" &&
  grep -q "netsh trace: \[$2\] http < HTTP/1.1 200 OK" "$1" &&
  grep -q "netsh trace: \[$2\] http < Content-Type: application/json" "$1" &&
  grep -q "netsh trace: \[$2\] http \* 200 OK, new connection to 127.0.0.1:$HP: dns .*, total" "$1"
}
"$N" -m http_check --trace "http://127.0.0.1:$HP/json" 2>"$T/trace" >/dev/null
has_http_trace "$T/trace" "scripts/http_check.lua:[0-9]*" \
  && ok "http_check --trace logs the HTTP exchange" || ko "http_check --trace" "$(cat "$T/trace")"
"$N" -m http_bench --trace "http://127.0.0.1:$HP/json" -c 1 -n 2 2>"$T/trace" >/dev/null
has_http_trace "$T/trace" "[^]]*" && grep -q "http \* Re-using existing connection" "$T/trace" \
  && ok "http_bench --trace logs the HTTP exchange and reuse" || ko "http_bench --trace" "$(cat "$T/trace")"
"$N" -e 'local r = http.get("http://127.0.0.1:'"$HP"'/json", {verbose = true})' 2>"$T/trace"
has_http_trace "$T/trace" main && ! grep -q "00000000" "$T/trace" \
  && ok "verbose = true logs the HTTP exchange" || ko "verbose = true" "$(cat "$T/trace")"
NETSH_TRACE=hex "$N" -e 'spawn{name = "getter", function() http.get("http://127.0.0.1:'"$HP"'/json") end}' 2>"$T/trace"
has_http_trace "$T/trace" getter && grep -q "http < 60 B body" "$T/trace" \
  && grep -q '00000000  7b 22 6e 61 6d 65 22 3a' "$T/trace" \
  && ok "NETSH_TRACE=hex logs HTTP with the bodies" || ko "NETSH_TRACE=hex http" "$(cat "$T/trace")"
"$N" -e 'print(http.get("http://127.0.0.1:'"$CLOSED"'/", {verbose = true}))' 2>"$T/trace" >/dev/null
grep -q "http \* GET http://127.0.0.1:$CLOSED/ -> nil, connection refused" "$T/trace" \
  && ok "verbose = true logs a failed request" || ko "verbose failure" "$(cat "$T/trace")"

finish
