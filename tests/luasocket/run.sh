#!/bin/bash
# run.sh -- LuaSocket's own test files (test/ of lunarmodules/luasocket)
# run under netsh, or under any Lua with LuaSocket for comparison.
#
#   tests/luasocket/run.sh PATH-TO-LUASOCKET-CHECKOUT [INTERPRETER]
#
# INTERPRETER defaults to build/netsh; `lua5.4` runs the same files under
# lua5.4 with whatever LuaSocket its LUA_PATH/LUA_CPATH find (Debian's
# lua-socket). Not part of CI: the LuaSocket files are not in this
# repository. The files run from a temporary copy with loopback edits
# only: fixed ports become free ones, the outside address of testclnt's
# connect-timeout test becomes 127.0.0.1. Each file is judged by its exit
# status and the line it prints when it gets to its end (several of them
# print their failure and still exit 0). Prints one line per file and
# exits 1 if any failed; the full output of each is kept in the copy.
#
# testclnt.lua refuses to run unless socket._DEBUG is set (a LuaSocket
# built with LUASOCKET_DEBUG, which also appends the elapsed time to
# send/receive results). Neither netsh nor Debian's build is one, so both
# get the same preload, debug_shim.lua, which does what that build does.
# tcp-getoptions is a Lua 5.1 script: it gets `unpack = table.unpack`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=${1:?usage: run.sh PATH-TO-LUASOCKET-CHECKOUT [INTERPRETER]}
interp=${2:-$here/../../build/netsh}
[ -d "$src/test" ] || { echo "run.sh: no test/ in $src" >&2; exit 2; }
case $interp in */*) interp=$(cd "$(dirname "$interp")" && pwd)/$(basename "$interp");; esac

tmp=$(mktemp -d /tmp/luasocket-test.XXXXXX)
cp -r "$src/test/." "$tmp/"
cp "$here/debug_shim.lua" "$tmp/"
cd "$tmp" || exit 2

# A TCP and UDP port free on 127.0.0.1 and on the wildcard address now.
free_port() {
  python3 - <<'PY'
import socket
while True:
    t = socket.socket(); t.bind(("", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("", p)); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
print(p)
PY
}

# the loopback edits
p=$(free_port); sed -i "s/\"8383\"/\"$p\"/" testsrvr.lua testclnt.lua
sed -i 's/"10\.0\.0\.1"/"127.0.0.1"/' testclnt.lua
p=$(free_port); sed -i "s/5088/$p/g" test_bind.lua
p=$(free_port); sed -i "s/\"5462\"/\"$p\"/" test_socket_error.lua
p=$(free_port); sed -i "s/5432/$p/g" udp-zero-length-send-recv
p=$(free_port); sed -i "s/^port = 8765/port = $p/" tcp-getoptions

failed=0
# run NAME MARKER CMD...: pass when CMD exits 0 and its output has a line
# matching MARKER (an extended regular expression).
run() {
  local name=$1 marker=$2 rc
  shift 2
  timeout 180 "$@" > "$name.out" 2>&1
  rc=$?
  if [ $rc -eq 0 ] && grep -Eq "$marker" "$name.out" &&
     ! grep -q '^ERROR: ' "$name.out"; then
    printf 'pass  %s\n' "$name"
  else
    printf 'FAIL  %s (exit %d): %s\n' "$name" $rc \
      "$(grep -v '^ *$' "$name.out" | tail -1 | cut -c1-160)"
    failed=1
  fi
}

# testsrvr.lua serves testclnt.lua's commands until told to exit.
timeout 600 "$interp" testsrvr.lua > testsrvr.out 2>&1 &
srv=$!
for _ in $(seq 50); do
  grep -q 'waiting for client' testsrvr.out 2>/dev/null && break
  sleep 0.1
done
run testclnt.lua '^testing: done in ' "$interp" -l debug_shim testclnt.lua
if kill -0 $srv 2>/dev/null; then kill $srv; fi
wait $srv 2>/dev/null

run urltest.lua 'the library passed all tests' "$interp" urltest.lua
run mimetest.lua '^done in ' "$interp" mimetest.lua
run ltn12test.lua 'filter.chain.*ok$' "$interp" ltn12test.lua
run stufftest.lua '^ok$' "$interp" stufftest.lua
run excepttest.lua '^OK$' "$interp" excepttest.lua
run test_socket_error.lua '^Passed!' "$interp" test_socket_error.lua
run test_bind.lua '^done!$' "$interp" test_bind.lua
run test_getaddrinfo.lua '^done!$' "$interp" test_getaddrinfo.lua
run udp-zero-length-send-recv '^ok$' "$interp" udp-zero-length-send-recv
# a Lua 5.1 script: it calls the global unpack, which Lua 5.4 lacks
run tcp-getoptions '^getoption.*linger' "$interp" -e 'unpack = table.unpack' \
  tcp-getoptions
if grep -q 'fail: ' tcp-getoptions.out; then
  echo "FAIL  tcp-getoptions: $(grep -m1 'fail: ' tcp-getoptions.out)"
  failed=1
fi
echo "outputs in $tmp"
exit $failed
