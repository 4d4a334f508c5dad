#!/usr/bin/env bash
# wait_for_cmd.sh NETSH -- `wait_for HOST:PORT -- COMMAND` runs COMMAND as a
# child process on the loop (proc), not through os.execute: a server task
# of the same netsh goes on answering while the command runs (the command
# below is its client), and wait_for exits with the command's status.
set -u
NETSH=${1:?usage: wait_for_cmd.sh path/to/netsh}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
free_port() {
  python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
# a server task in the netsh that runs wait_for
srv="spawn(function()
  local s = assert(socket.bind('127.0.0.1', $port))
  while true do
    local c = s:accept()
    c:send('hello from the parent\n')
    c:close()
  end
end)"
cli="local c = assert(socket.connect('127.0.0.1', $port))
c:settimeout(5)
print(assert(c:receive()))"
out=$(timeout 30 "$NETSH" -e "$srv" -m wait_for -q -t 10 \
  "127.0.0.1:$port" -- "$NETSH" -e "$cli" 2>&1)
check "the command talks to a task of wait_for's netsh: exit 0" 0 $?
check "the command read the task's line" "hello from the parent" "$out"

timeout 30 "$NETSH" -e "$srv" -m wait_for -q -t 10 "127.0.0.1:$port" -- \
  sh -c 'exit 7'
check "the command's exit status is wait_for's" 7 $?
timeout 30 "$NETSH" -e "$srv" -m wait_for -q -t 10 "127.0.0.1:$port" -- \
  sh -c 'kill -TERM $$'
check "a command killed by SIGTERM: 128 + 15" 143 $?
out=$(echo piped | timeout 30 "$NETSH" -e "$srv" -m wait_for -q -t 10 \
  "127.0.0.1:$port" -- cat)
check "the command inherits stdin and stdout" "piped" "$out"
err=$(timeout 30 "$NETSH" -e "$srv" -m wait_for -q -t 10 \
  "127.0.0.1:$port" -- netsh-no-such-command 2>&1)
check "a command that does not exist: 127" 127 $?
check "... and says so" \
  "wait_for: cannot run 'netsh-no-such-command': no such file or directory" \
  "$err"
timeout 30 "$NETSH" -m wait_for -q -t 0.2 "127.0.0.1:$(free_port)" -- \
  sh -c 'exit 0'
check "a target not up: 1, the command is not run" 1 $?
finish
