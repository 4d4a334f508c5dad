#!/usr/bin/env bash
# tls_echo.sh NETSH -- scripts/tcp_echo.lua --tls CERT KEY as a user runs
# it: openssl s_client and a netsh TLS client through it (2 MB, content
# checked), a plaintext client refused with a logged TLS error, a bad key
# file, Ctrl-C. Certificates from tests/support/certs.sh.
set -u
NETSH=${1:?usage: tls_echo.sh path/to/netsh}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
sh tests/support/certs.sh "$tmp/pki" > /dev/null || exit 1
pki=$tmp/pki

timeout 30 "$NETSH" -m tcp_echo --tls "$pki/server.pem" "$pki/server.key" \
  127.0.0.1 0 2> "$tmp/echo.log" & pids+=($!)
echo_pid=$!
port=
for _ in $(seq 50); do
  port=$(sed -n 's/.*listening on .* port \([0-9]*\) (TLS).*/\1/p' \
    "$tmp/echo.log")
  [ -n "$port" ] && break
  sleep 0.1
done
check "tcp_echo --tls says it listens with TLS" 1 $([ -n "$port" ] && echo 1)

# stdin stays open 1 s: s_client would hang up at its end, maybe before
# the echo
out=$( (printf 'over tls\n'; sleep 1) | timeout 10 openssl s_client \
  -connect "127.0.0.1:$port" -servername localhost -verify_hostname \
  localhost -CAfile "$pki/ca.pem" -verify_return_error -quiet -no_ign_eof \
  2>/dev/null)
check "openssl s_client gets its line back, verified" "over tls" "$out"

head -c 2000000 /dev/urandom > "$tmp/big"
cat > "$tmp/client.lua" <<'LUA'
local f = assert(io.open(arg[1], "rb")); local data = f:read("a"); f:close()
local c = assert(socket.connect("localhost", tonumber(arg[2]),
  {tls = {cafile = arg[3]}}))
local w = spawn(function() assert(c:send(data)) end)
local got = assert(c:receive(#data))
w:join(); c:close()
io.stdout:write(got)
LUA
timeout 20 "$NETSH" "$tmp/client.lua" "$tmp/big" "$port" "$pki/ca.pem" \
  > "$tmp/big.out"
cmp -s "$tmp/big" "$tmp/big.out"
check "2 MB through netsh client and TLS echo, unchanged" 0 $?

cat > "$tmp/plain.lua" <<'LUA'
local c = assert(socket.connect("127.0.0.1", tonumber(arg[1])))
c:send("GET / HTTP/1.0\r\n\r\n")
local data, err = c:receive("*a")
print(err or "got: " .. data)
LUA
out=$(timeout 10 "$NETSH" "$tmp/plain.lua" "$port")
check "a plaintext client is dropped" "closed" "$out"
sleep 0.2
grep -q '^\[.*\] - 127.0.0.1:.*: tls: ' "$tmp/echo.log"
check "tcp_echo logs the TLS error" 0 $?

# tcp_client --tls: verified against the test CA; without it, the
# certificate error, and curl's 60 with --curl-codes
out=$(printf 'via tcp_client\n' | timeout 10 "$NETSH" -m tcp_client --tls \
  --cafile "$pki/ca.pem" localhost "$port")
check "tcp_client --tls --cafile through the TLS echo" "via tcp_client" "$out"
timeout 10 "$NETSH" -m tcp_client --tls --curl-codes localhost "$port" x \
  > /dev/null 2> "$tmp/verify.err"
check "tcp_client --tls without the CA: curl's 60" 60 $?
grep -q 'certificate verify failed' "$tmp/verify.err"
check "and says the certificate failed" 0 $?
sleep 0.2

# Ctrl-C: TLS clients are closed like the others (the exit status is
# tcp_scripts.sh's to check: under ASan it is sometimes 134 after a clean
# stop, TLS or not)
kill -INT "$echo_pid"
wait "$echo_pid"
grep -q 'stopped after 5 connection(s)' "$tmp/echo.log"
check "tcp_echo --tls stops on Ctrl-C" 0 $?

timeout 10 "$NETSH" -m tcp_echo --tls "$pki/server.pem" "$pki/client.key" \
  127.0.0.1 0 2> "$tmp/bad.log"
check "a key that does not match: exit 1" 1 $?
grep -q 'private key does not match' "$tmp/bad.log"
check "and says why" 0 $?
timeout 10 "$NETSH" -m tcp_echo --tls "$pki/server.pem" 2>/dev/null
check "--tls without a key: usage error" 2 $?
finish
