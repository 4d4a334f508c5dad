#!/bin/bash
# tls_expiry.sh NETSH -- scripts/tls_expiry.lua against local openssl
# s_server processes (test PKI from tests/support/certs.sh): statuses,
# days, --warn, --json, stdin, exit codes 0/1/2, --nagios. Loopback only; every
# server is bounded by `timeout` and killed on exit.
set -u
netsh=${1:?usage: tls_expiry.sh NETSH}
here=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

sh "$here/tests/support/certs.sh" "$dir/pki" > /dev/null || fail certs.sh

# serve NAME [ARGS]: an s_server with NAME's certificate; sets $port
serve() {
  local name=$1 out="$dir/$1.out"
  shift
  timeout 60 openssl s_server -www -accept 127.0.0.1:0 \
    -cert "$dir/pki/$name.pem" -key "$dir/pki/$name.key" "$@" < /dev/null \
    > "$out" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    port=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && return
    sleep 0.1
  done
  fail "s_server $name did not start"
}
serve server; good=$port
serve expired; expired=$port
serve self; self=$port
serve chained -cert_chain "$dir/pki/inter.pem"; chained=$port

run() { "$netsh" -m tls_expiry --cafile "$dir/pki/ca.pem" "$@"; }

out=$(run "localhost:$good") || fail "valid certificate: exit $?"
[[ $out =~ ^localhost:$good\ +36[45]\ days\ +[0-9T:-]+Z\ +ok$ ]] ||
  fail "valid: $out"

out=$(run --warn 400 "localhost:$good"); rc=$?
[ $rc -eq 1 ] || fail "--warn 400: exit $rc"
[[ $out =~ expiring$ ]] || fail "--warn 400: $out"

out=$(run "127.0.0.1:$expired"); rc=$?
[ $rc -eq 1 ] || fail "expired: exit $rc"
want='2020-02-01T00:00:00Z +expired: certificate verify failed: '
want+='certificate has expired$'
[[ $out =~ $want ]] ||
  fail "expired: $out"

out=$(run "localhost:$self"); rc=$?
[ $rc -eq 1 ] || fail "self-signed: exit $rc"
[[ $out =~ invalid:\ certificate\ verify\ failed:\ self-signed ]] ||
  fail "self-signed: $out"

# --chain: the intermediate (20 days) expires before the leaf (a year)
out=$(run "localhost:$chained") || fail "chained: exit $?"
[[ $out =~ \ 36[45]\ days\ .*ok$ ]] || fail "chained: $out"
out=$(run --chain "localhost:$chained") || fail "--chain: exit $?"
[[ $out =~ \ (19|20)\ days\ .*ok$ ]] || fail "--chain: $out"
out=$(run --chain --warn 30 "localhost:$chained"); rc=$?
[ $rc -eq 1 ] || fail "--chain --warn 30: exit $rc"
[[ $out =~ expiring$ ]] || fail "--chain --warn 30: $out"
out=$(run --chain --json "localhost:$chained")
[[ $out == *'"subject":"CN=netsh test intermediate,O=netsh test"'* ]] ||
  fail "--chain --json: $out"

# the system store does not know the test CA
out=$("$netsh" -m tls_expiry "localhost:$good"); rc=$?
[ $rc -eq 1 ] || fail "system store: exit $rc"
[[ $out =~ unable\ to\ get\ local\ issuer ]] || fail "system store: $out"

# refused, JSON lines, stdin with comments, order kept
closed=$("$netsh" -e 'local s = socket.bind("127.0.0.1", 0)
  print((select(2, s:getsockname()))) s:close()')
out=$(printf '# hosts\nlocalhost:%s\n\n127.0.0.1:%s  # refused\n' \
  "$good" "$closed" | run --json --timeout 5); rc=$?
[ $rc -eq 1 ] || fail "json: exit $rc"
# the envelope (docs/json-lines.md), then the fields in name order
line1=$(sed -n 1p <<< "$out" | jq -c 'del(.ts, .host)')
line2=$(sed -n 2p <<< "$out" | jq -c 'del(.ts, .host)')
want="{\"v\":1,\"tool\":\"tls_expiry\",\"target\":\"localhost:$good\","
want+="\"ok\":true,\"err\":null,\"days\":36"
[[ $line1 == "$want"* ]] ||
  fail "json line 1: $line1"
[[ $line1 == *"\"peer\":\"localhost\",\"port\":$good,\"status\":\"ok\","* ]] ||
  fail "json line 1 fields: $line1"
[[ $line2 == *'"ok":false,"err":"connection refused"'*'"status":"error"}' ]] ||
  fail "json line 2: $line2"
[ "$(wc -l <<< "$out")" -eq 2 ] || fail "json: $out"

# --nagios: days left against --warn / --crit DAYS, as check_http -C
out=$(run --nagios "localhost:$good"); rc=$?
[ $rc -eq 0 ] || fail "--nagios: exit $rc"
[[ $out =~ ^TLS_EXPIRY\ OK:\ 1\ hosts\ checked\ \|\ \'localhost:$good\'=36[45]\;14:\;0:$ ]] ||
  fail "--nagios: $out"
out=$(run --nagios --warn 400 --crit 30 "localhost:$good"); rc=$?
[ $rc -eq 1 ] || fail "--nagios --warn 400: exit $rc"
[[ $out =~ ^TLS_EXPIRY\ WARNING:\ localhost:$good:\ 36[45]\ days ]] ||
  fail "--nagios --warn 400: $out"
# the certificate has 364 or 365 days left (it depends on the second it
# was made): a threshold of 365 would judge it either way
out=$(run --nagios --warn 500 --crit 400 "localhost:$good"); rc=$?
[ $rc -eq 2 ] || fail "--nagios --crit 400: exit $rc"
out=$(run --nagios "127.0.0.1:$expired"); rc=$?
[ $rc -eq 2 ] || fail "--nagios expired: exit $rc"
[[ $out =~ ^TLS_EXPIRY\ CRITICAL:\ 127.0.0.1:$expired:\ -[0-9]+\ days\ \(certificate\ verify ]] ||
  fail "--nagios expired: $out"
out=$(run --nagios "localhost:$self"); rc=$?
[ $rc -eq 2 ] || fail "--nagios self-signed: exit $rc"

"$netsh" -m tls_expiry --warn > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "usage error: exit $rc"
"$netsh" -m tls_expiry --help | grep -q '^usage: tls_expiry' ||
  fail "--help"
echo "tls_expiry: ok"
