#!/usr/bin/env bash
# retry_scripts.sh NETSH -- --retry, --retry-delay, --retry-connrefused on
# http_check, tcp_client, tls_expiry and wait_for, and scripts/sse.lua,
# against tests/support/retry_peer.lua (an http.server) and ports nobody
# listens on.
set -u
NETSH=${1:?usage: retry_scripts.sh path/to/netsh}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$NETSH" tests/support/retry_peer.lua "$tmp/port" 120 & pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cut -d' ' -f1 "$tmp/port")
U=http://127.0.0.1:$port
# a port nobody listens on: bound, then closed
free_port() {
  python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
dead=$(free_port)

# http_check
out=$(timeout 20 "$NETSH" -m http_check --json --retry 3 --retry-delay 0.05 \
  "$U/busy/a/2" 2>"$tmp/err")
check "http_check --retry: 503 twice, then ok" 0 $?
case $out in *'"ok":true'*'"attempts":3'*'"status":200'*) r=yes ;; *) r=no ;; esac
check "http_check --retry: JSON says 3 attempts" yes "$r"
check "http_check announces each retry on stderr" 2 \
  "$(grep -c 'retry' "$tmp/err")"
timeout 20 "$NETSH" -m http_check --retry 3 --retry-delay 0.05 \
  "$U/busy/b/5" > /dev/null 2>&1
check "http_check --retry 3: still 503 after 4 attempts, exit 1" 1 $?
check "  4 requests made" 4 \
  "$("$NETSH" -e "io.write(require('http').get('$U/count/b').body)")"
out=$(timeout 20 "$NETSH" -m http_check --retry 2 --retry-delay 0.05 \
  "http://127.0.0.1:$dead/" 2>/dev/null)
case $out in *'(connection refused)'*) r=yes ;; *) r=no ;; esac
check "http_check --retry without --retry-connrefused: one try" yes "$r"
out=$(timeout 20 "$NETSH" -m http_check --retry 2 --retry-delay 0.05 \
  --retry-connrefused "http://127.0.0.1:$dead/" 2>/dev/null)
case $out in *'(connection refused (after 3 attempts))'*) r=yes ;;
  *) r=no ;; esac
check "http_check --retry-connrefused: 3 attempts" yes "$r"
timeout 20 "$NETSH" -m http_check --retry 2 --retry-delay 0.05 \
  --retry-connrefused "$U/flaky/c/2" > /dev/null 2>&1
check "http_check --retry-connrefused: dropped twice, then ok" 0 $?
timeout 20 "$NETSH" -m http_check --curl-codes --retry 1 --retry-delay 0.05 \
  --retry-connrefused "http://127.0.0.1:$dead/" > /dev/null 2>&1
check "http_check --curl-codes after retries: 7" 7 $?
timeout 5 "$NETSH" -m http_check --retry -1 "$U/" > /dev/null 2>&1
check "http_check --retry -1: usage error" 2 $?

# tcp_client: refused, then listening
err=$(timeout 20 "$NETSH" -m tcp_client --retry 2 --retry-delay 0.05 \
  127.0.0.1 "$dead" hi 2>&1 >/dev/null)
check "tcp_client --retry: refused is not transient alone" \
  "tcp_client: 127.0.0.1:$dead: connection refused" "$err"
err=$(timeout 20 "$NETSH" -m tcp_client --retry 2 --retry-delay 0.05 \
  --retry-connrefused 127.0.0.1 "$dead" hi 2>&1 >/dev/null | tail -n 1)
check "tcp_client --retry-connrefused: the error says 3 attempts" \
  "tcp_client: 127.0.0.1:$dead: connection refused (after 3 attempts)" "$err"
late=$(free_port)
python3 -c "
import socket, time
time.sleep(0.5)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $late)); s.listen(1)
c, _ = s.accept(); c.sendall(b'late hello\n'); c.close()
" & pids+=($!)
out=$(timeout 20 "$NETSH" -m tcp_client --retry 20 --retry-delay 0.1 \
  --retry-connrefused 127.0.0.1 "$late" hi 2>/dev/null)
check "tcp_client: refused, then listening: the reply comes" "late hello" \
  "$out"

# tls_expiry
out=$(timeout 20 "$NETSH" -m tls_expiry --json --retry 1 --retry-delay 0.05 \
  --retry-connrefused "127.0.0.1:$dead" 2>/dev/null)
case $out in *'"err":"connection refused (after 2 attempts)"'*) r=yes ;;
  *) r=no ;; esac
check "tls_expiry --retry-connrefused: 2 attempts" yes "$r"

# wait_for
err=$(timeout 20 "$NETSH" -m wait_for --timeout 10 --retry 2 \
  --retry-delay 0.05 "127.0.0.1:$dead" 2>&1)
check "wait_for --retry 2: exit 1" 1 $?
case $err in *'connection refused (after 3 attempts)'*) r=yes ;; *) r=no ;;
  esac
check "wait_for --retry 2: gives up after 3 attempts, not --timeout" yes "$r"
timeout 20 "$NETSH" -m wait_for --retry 2 --retry-connrefused -q \
  "127.0.0.1:$port"
check "wait_for --retry: up at once" 0 $?

# sse
out=$(timeout 20 "$NETSH" -m sse --reconnect 5 "$U/sse/s1")
check "sse: events across a drop, Last-Event-ID sent, 204 ends" \
  $'one\ntwo\\nafter 1' "$out"
out=$(timeout 20 "$NETSH" -m sse --json -n 1 -t tick "$U/sse/s2" |
  jq -c 'del(.ts, .host)')
check "sse --json -t tick -n 1" \
  '{"v":1,"tool":"sse","target":"'"$U/sse/s2"'","ok":true,"err":null,"data":"two\nafter 1","event":"tick","id":"2","retry":100}' "$out"
timeout 20 "$NETSH" -m sse --max-reconnects 1 --reconnect 0.05 \
  "http://127.0.0.1:$dead/" > /dev/null 2> "$tmp/err"
check "sse: no connection after --max-reconnects: exit 1" 1 $?
check "  and says why" "sse: connection refused (after 2 attempts)" \
  "$(cat "$tmp/err")"
timeout 5 "$NETSH" -m sse > /dev/null 2>&1
check "sse without URL: usage error" 2 $?

finish
