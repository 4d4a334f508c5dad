#!/usr/bin/env bash
# single_file.sh NETSH -- the NETSH_SINGLE_FILE build: the binary copied
# alone into an empty directory (no netsh_*.so beside it, none searched
# elsewhere) loads http, tls, repl and wsdeflate from inside itself on
# first require, and they work: an HTTPS request from the copy to a TLS
# server task of the copy, with the test CA. No memfd stays open; `netsh -e ''` loads none.
set -u
NETSH=${1:?usage: single_file.sh path/to/netsh}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
sh tests/support/certs.sh "$tmp/pki" > /dev/null || exit 1
mkdir "$tmp/bin"
cp "$NETSH" "$tmp/bin/netsh"
N=$tmp/bin/netsh
check "the copy is alone in its directory" "netsh" "$(ls "$tmp/bin")"

out=$(cd "$tmp" && timeout 30 "$N" -e '
  local where = {}
  for _, m in ipairs{"http.core", "tls.core", "repl.core",
                     "websocket.deflate"} do
    where[#where + 1] = m .. "=" .. select(2, require(m))
  end
  print(table.concat(where, " "))' 2>&1)
check "http, tls, repl and wsdeflate come from inside the binary" \
  "http.core=:builtin: tls.core=:builtin: repl.core=:builtin: websocket.deflate=:builtin:" "$out"

# HTTPS: a TLS server task and an http client, both in the copy
out=$(cd "$tmp" && timeout 30 "$N" -e "
  local srv = assert(socket.bind('127.0.0.1', 0, {tls = {
    certfile = '$tmp/pki/server.pem', keyfile = '$tmp/pki/server.key'}}))
  local _, port = srv:getsockname()
  spawn(function()
    local c = assert(srv:accept())
    c:settimeout(10)
    repeat local l = assert(c:receive('*l')) until l == ''
    c:send('HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret')
    c:close()
  end)
  local r = assert(http.get('https://127.0.0.1:' .. port .. '/',
    {cafile = '$tmp/pki/ca.pem', timeout = 10}))
  print(r.status, r.body)" 2>&1)
check "an HTTPS request through the built-in http and tls" \
  "$(printf '200\tsecret')" "$out"

# the memfds are closed once the modules are mapped (descriptor counts of
# the specs, which load modules midway, stay flat)
(cd "$tmp" && "$N" -e '
  require "tls.core" require "http.core" require "repl.core"
  require "websocket.deflate"
  local pid = io.open("/proc/self/stat"):read("n")
  os.exit(os.execute("ls -l /proc/" .. pid .. "/fd | grep -q memfd")
    and 1 or 0)')
check "no memfd left open after loading the four modules" 0 $?

# start-up stays lean: no libcurl, OpenSSL or libedit mapped for -e ''
maps=$(cd "$tmp" && "$N" -e '
  local f = io.open("/proc/self/maps") local s = f:read("a") f:close()
  local seen = {}
  for lib in s:gmatch("lib[%w_]*%a%.so") do
    if lib:match("curl") or lib:match("ssl") or lib:match("edit") then
      seen[lib] = true
    end
  end
  local t = {} for k in pairs(seen) do t[#t + 1] = k end
  print(#t == 0 and "none" or table.concat(t, " "))')
check "netsh -e '' maps none of libcurl, libssl, libedit" none "$maps"
finish
