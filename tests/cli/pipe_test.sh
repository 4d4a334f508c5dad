#!/usr/bin/env bash
# pipe_test.sh -- netsh in a shell pipeline whose reader goes away
# (`netsh ... | head -1`): it stops at once, as lua5.4 does, killed by
# SIGPIPE (status 141, which `set -o pipefail` sees) with nothing on
# stderr; sockets still get EPIPE as nil, "closed", never the signal.
# usage: tests/cli/pipe_test.sh path/to/netsh
set -u
N=$(realpath "${1:?usage: pipe_test.sh path/to/netsh}")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


# head_of NAME CODE: runs `netsh -e CODE | head -1` with a 20 s bound;
# netsh must end by SIGPIPE (141) well before, print one line first, and
# write nothing to stderr.
head_of() {
  local name=$1 code=$2 st first
  first=$(timeout 20 "$N" -e "$code" 2>"$T/err" | head -1; \
          echo "${PIPESTATUS[0]}" > "$T/st")
  st=$(cat "$T/st")
  if [ "$st" != 141 ]; then
    ko "$name: exit $st, expected 141 (SIGPIPE)"
    sed 's/^/  err: /' "$T/err" | head -5
  elif [ -s "$T/err" ]; then
    ko "$name: stderr not empty"; sed 's/^/  err: /' "$T/err" | head -5
  elif [ -z "$first" ]; then
    ko "$name: no first line"
  else
    ok "$name"
  fi
}

head_of "print stops when the reader goes" 'for i = 1, 1e8 do print(i) end'
head_of "io.write stops" 'for i = 1, 1e8 do io.write(i, "\n") end'
head_of "io.stdout:write stops" \
  'for i = 1, 1e8 do io.stdout:write(i, "\n") end'
head_of "printf stops" 'for i = 1, 1e8 do printf("%d\n", i) end'
head_of "json.print stops" 'for i = 1, 1e8 do json.print({i = i}) end'
head_of "a task printing stops" \
  'spawn(function() for i = 1, 1e8 do print(i) end end)'
head_of "printing while a server runs stops" '
  local s = assert(socket.bind("127.0.0.1", 0))
  spawn(function() s:accept() end)
  for i = 1, 1e8 do print(i) if i % 1000 == 0 then sleep(0) end end'

# pipefail sees it, as it sees lua5.4's
(set -o pipefail; timeout 20 "$N" -e 'for i = 1, 1e8 do print(i) end' \
  | head -1 > /dev/null)
st=$?
if [ "$st" = 141 ]; then
  ok "set -o pipefail sees the SIGPIPE"
else
  ko "set -o pipefail sees the SIGPIPE: status $st"
fi

# A bundled script: tcp_client copying an endless server's lines to stdout.
"$N" -e '
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  print(port)
  io.stdout:flush()
  local c = s:accept()
  c:settimeout(20)
  local line = ("x"):rep(99) .. "\n"
  while c:send(line) do end' > "$T/port" 2>/dev/null &
srv=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
port=$(cat "$T/port")
first=$(timeout 20 "$N" -m tcp_client 127.0.0.1 "$port" </dev/null \
  2>"$T/err" | head -1; echo "${PIPESTATUS[0]}" > "$T/st")
st=$(cat "$T/st")
if [ "$st" = 141 ] && [ ! -s "$T/err" ] && [ -n "$first" ]; then
  ok "tcp_client stops when its reader goes"
else
  ko "tcp_client stops when its reader goes: exit $st"
  sed 's/^/  err: /' "$T/err" | head -5
fi
kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null

# Sockets are not touched: a send to a gone peer is nil, "closed", and
# netsh goes on (with stdout a pipe whose reader stays).
out=$(timeout 20 "$N" -e '
  local s = assert(socket.bind("127.0.0.1", 0))
  local ip, port = s:getsockname()
  local c = assert(socket.connect(ip, port))
  local p = assert(s:accept())
  p:close()
  local ok, err
  for i = 1, 1000 do
    ok, err = c:send(("y"):rep(65536))
    if not ok then break end
    sleep(0.01)
  end
  print(ok, err)' 2>&1 | cat; echo "st=${PIPESTATUS[0]}")
if [ "$out" = "$(printf 'nil\tclosed\nst=0')" ]; then
  ok "a socket gets EPIPE as nil, closed"
else
  ko "a socket gets EPIPE as nil, closed: $out"
fi

# Programs netsh starts get SIGPIPE's default back, as from any shell.
"$N" -e 'os.execute("yes | head -1 > /dev/null")' 2>"$T/err"
if grep -qi "broken pipe" "$T/err"; then
  ko "children run with SIGPIPE's default"; sed 's/^/  err: /' "$T/err"
else
  ok "children run with SIGPIPE's default"
fi

finish
