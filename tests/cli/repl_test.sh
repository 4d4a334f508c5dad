#!/usr/bin/env bash
# repl_test.sh -- drives the interactive REPL in a real pseudo-terminal
# (a private tmux server) and checks what the screen shows, the exit
# codes and the terminal state left behind. Also checks `-i` with a pipe
# (line by line, no escape sequences). Usage: repl_test.sh path/to/netsh
set -u
NETSH=$(realpath "${1:-build/netsh}")
if ! command -v tmux >/dev/null 2>&1; then
  echo "SKIP: tmux is not installed"
  exit 0
fi

dir=$(mktemp -d)
export HOME="$dir" NETSH_HISTORY="$dir/history"
unset NETSH_HISTSIZE
# one tmux server per session: a server being killed cannot race the next
nsession=0
sock="netsh-repl-test-$$-0"
T() { tmux -L "$sock" "$@"; }
cleanup() {
  local i
  for i in $(seq 0 "$nsession"); do
    tmux -L "netsh-repl-test-$$-$i" kill-server >/dev/null 2>&1
  done
  rm -rf "$dir"
}
trap cleanup EXIT

failures=0
ok() { echo "ok - $1"; }
not_ok() {
  echo "not ok - $1"
  echo "  --- screen ---"
  screen | grep -v "^$" | tail -25 | sed "s/^/  | /"
  failures=$((failures + 1))
}

# The session runs netsh, then records its exit code and the tty modes.
# The Ctrl-C we type reach this shell too: it must outlive them.
cat > "$dir/run.sh" <<EOF
#!/bin/sh
trap : INT
cd "$dir"
"$NETSH" "\$@"
rc=\$?
stty -a > "$dir/stty" 2>&1
echo \$rc > "$dir/rc"
exec sleep 120
EOF
chmod +x "$dir/run.sh"

start() {    # start [netsh options]: a fresh session, wait for the prompt
  T kill-server >/dev/null 2>&1
  nsession=$((nsession + 1))
  sock="netsh-repl-test-$$-$nsession"
  rm -f "$dir/rc" "$dir/stty"
  T -f /dev/null new-session -d -x 200 -y 50 "$dir/run.sh $*" || return 1
  wait_re '^>' 5
}
screen() { T capture-pane -p -J -S -300 2>/dev/null; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_re REGEX [seconds] / wait_line EXACT-LINE [seconds]
wait_re() {
  local end=$(( $(now_ms) + ${2:-5} * 1000 ))
  until screen | grep -qE -- "$1"; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.05
  done
}
wait_line() {
  local end=$(( $(now_ms) + ${2:-5} * 1000 ))
  until screen | grep -qxF -- "$1"; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.05
  done
}
count_line() { screen | grep -cxF -- "$1"; }
wait_count() {   # wait_count EXACT-LINE N [seconds]: N such lines shown
  local end=$(( $(now_ms) + ${3:-5} * 1000 ))
  until [ "$(count_line "$1")" -ge "$2" ]; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.05
  done
}
interrupt() {    # Ctrl-C, then wait for one more "interrupted"
  local n
  n=$(count_line interrupted)
  key C-c
  wait_count interrupted $((n + 1)) 3
}
wait_rc() {   # wait_rc [seconds]: the session's exit code
  local end=$(( $(now_ms) + ${1:-5} * 1000 ))
  until [ -s "$dir/rc" ]; do
    [ "$(now_ms)" -ge "$end" ] && { echo timeout; return 1; }
    sleep 0.05
  done
  cat "$dir/rc"
}
wait_prompt() {   # the last line shown is an empty prompt
  local end=$(( $(now_ms) + ${1:-5} * 1000 ))
  until [ "$(screen | grep -v '^$' | tail -1)" = ">" ]; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.05
  done
}
type_text() { T send-keys -l -- "$1"; }
enter() { T send-keys -l -- "$1"; T send-keys Enter; }
key() { T send-keys "$@"; }
tty_sane() { grep -qw icanon "$dir/stty" && grep -qw echo "$dir/stty"; }

# check NAME COMMAND...: runs the command, reports ok / not ok
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}

has_socket=0
if "$NETSH" -e 'assert(require("socket").bind)' >/dev/null 2>&1; then
  has_socket=1
fi

# ---------------------------------------------------------------------------
echo "# banner, auto-print, pretty printing"
start
check "banner names netsh and Lua" \
  wait_re '^netsh [0-9.]+ \(Lua 5\.4'
enter '1 + 41'
check "an expression prints its value" wait_line '42'
enter '"a" .. "b", nil, 3'
check "several results, strings quoted" wait_re '^"ab" +nil +3$'
enter 'x = 5'
enter 'x * 2'
check "a statement runs, a global stays" wait_line '10'
enter '{3, 1, b = {c = true}, a = "x\ty"}'
check "tables: sorted keys, nesting, escapes" \
  wait_line '{3, 1, a = "x\ty", b = {c = true}}'
enter 'c = {}; c.me = c; return c'
check "cycles are marked" wait_line '<1>{me = <cycle 1>}'
enter 'local t = {} for i = 1, 500 do t[i] = i end return t'
check "long tables are cut with a count" wait_line '  ...(450 more)'
enter 'setmetatable({}, {__tostring = function() return "tcp{client}" end})'
check "__tostring is used" wait_line 'tcp{client}'

echo "# multi-line input"
enter 'function sq(v)'
check "an open block asks for more (>>)" wait_re '^>> ?$'
enter 'return v * v'
enter 'end'
enter 'sq(12)'
check "a multi-line function works" wait_line '144'
enter 's = [[one'
enter 'two]]'
enter 's'
check "an unfinished long string continues" wait_line '"one\ntwo"'
enter 's2 = "a\'
enter 'b"'
enter 's2 .. "!"'
check "a string continued with \\ works" wait_line '"a\nb!"'
enter 'u = "open'
enter 'close"'
check "a short string cannot span lines (as in lua)" \
  wait_re "unfinished string near '\"open'"

echo "# errors"
enter 'error("boom")'
check "a runtime error prints its message" wait_line 'stdin:1: boom'
check "... and a short traceback" wait_re '^ +stdin:1: in main chunk$'
enter 'local t = nil; t.x = 1'
check "a runtime error names the culprit" \
  wait_re "attempt to index a nil value \(local 't'\)"
enter 'x = = 1'
check "a syntax error is reported" \
  wait_line "stdin:1: unexpected symbol near '='"
enter '"still " .. "alive"'
check "the prompt survives errors" wait_line '"still alive"'

echo "# Ctrl-C"
type_text 'partial junk'
sleep 0.2
key C-c
enter '1 + 2'
check "Ctrl-C while editing clears the line" wait_line '3'
enter 'sleep(10)'
sleep 0.4
t0=$(now_ms)
interrupt
enter '"back" .. 1'
if wait_line '"back1"' 3; then
  dt=$(( $(now_ms) - t0 ))
  if [ "$dt" -lt 1000 ]; then
    ok "Ctrl-C during sleep(10) returns to the prompt (${dt} ms)"
  else
    not_ok "Ctrl-C during sleep(10) took ${dt} ms"
  fi
else
  not_ok "Ctrl-C during sleep(10) returns to the prompt"
fi
enter 'while true do end'
sleep 0.3
interrupt
enter '"back" .. 2'
check "Ctrl-C stops a busy loop" wait_line '"back2"' 3

echo "# tasks keep running while the prompt waits"
# (written aside, then renamed: a read never sees the file truncated)
enter 'ticker = spawn(function() for i = 1, 600 do local f = io.open("tick.new", "w") f:write(i) f:close() os.rename("tick.new", "tick") sleep(0.05) end end)'
sleep 0.5
a=$(cat "$dir/tick" 2>/dev/null || echo 0)
sleep 0.6
b=$(cat "$dir/tick" 2>/dev/null || echo 0)
type_text 'half a li'
sleep 0.6
c=$(cat "$dir/tick" 2>/dev/null || echo 0)
key C-c
if [ "$b" -gt "$a" ] && [ "$c" -gt "$b" ]; then
  ok "a background task runs at the prompt and between keys ($a, $b, $c)"
else
  not_ok "a background task runs at the prompt ($a, $b, $c)"
fi
enter 'spawn(function() sleep(0.4) print("bg says hi") end) and nil'
wait_line 'nil'
type_text 'half typed'
if wait_line 'bg says hi' 3 && sleep 0.2 &&
    [ "$(screen | grep -v '^$' | tail -2)" = $'bg says hi\n> half typed' ]
then
  ok "output of a task goes above the line being edited"
else
  not_ok "output of a task goes above the line being edited"
fi
key C-c
enter 'sleep(5)'
sleep 0.3
interrupt
enter 'ticker:status()'
check "Ctrl-C on a line leaves background tasks alone" \
  wait_re '^"(waiting|ready)"$'
enter 'tasks()'
check "tasks() lists the live tasks" \
  wait_re '^ +[0-9]+ +(waiting|ready) +stdin:1$'

enter 'busy = spawn(function() while true do local t = os.clock() + 0.05 while os.clock() < t do end sleep(0.01) end end)'
sleep 0.3
type_text 'cleared by ^C'
key C-c
enter '"c" .. 1'
check "Ctrl-C clears the line while a task keeps the CPU busy" wait_line '"c1"'
enter 'sleep(10)'
sleep 0.3
interrupt
enter 'busy:status()'
check "... interrupts the line, not the busy task" \
  wait_re '^"(ready|waiting)"$'
enter 'busy:cancel() and "cancelled" .. 1'
wait_line '"cancelled1"'
enter 'hog = spawn(function() while true do end end) print("hog" .. 1)'
wait_line 'hog1'
sleep 0.2
key C-c
enter 'hog:status()'
check "Ctrl-C stops a task that keeps the loop (after a second)" \
  wait_line '"failed"' 5
enter 'hog:join()'     # seen: no report of it at exit (and exit status 0)
wait_re '^nil +"interrupted"$'

if [ "$has_socket" = 1 ]; then
  enter 'srv = assert(socket.bind("127.0.0.1", 0)); print("port=" .. select(2, srv:getsockname()))'
  port=""
  if wait_re '^port=[0-9]+$'; then
    port=$(screen | sed -n 's/^port=\([0-9]*\)$/\1/p' | tail -1)
  fi
  enter 'spawn(function() while true do local c = srv:accept() if not c then break end spawn(function() while true do local l = c:receive("*l") if not l then break end c:send(l .. "\n") end c:close() end) end end)'
  sleep 0.3
  reply=""
  if [ -n "$port" ] && exec 3<>"/dev/tcp/127.0.0.1/$port"; then
    printf 'hello netsh\n' >&3
    read -r -t 3 reply <&3
    exec 3<&-
  fi
  if [ "$reply" = "hello netsh" ]; then
    ok "an echo server spawned at the prompt answers while it waits"
  else
    not_ok "an echo server spawned at the prompt answers (got '$reply')"
  fi
fi

echo "# completion"
type_text 'task.sl'
key Tab
check "Tab completes a module function" wait_re '^> task\.sleep\($'
enter '0.01) or "slept"'
check "... and the completed line runs" wait_line '"slept"'
type_text 'string.for'
key Tab
type_text '"%d", 7)'
key Enter
check "Tab completes a library function" wait_line '"7"'
enter 'bgt = spawn(function() sleep(100) end)'
type_text 'bgt:st'
key Tab
type_text ')'
key Enter
check "Tab completes a method after ':'" wait_line '"waiting"'
type_text 'bgt:'
key Tab
key Tab
check "Tab Tab lists the methods" wait_re '^cancel +join +name +status$'
key C-c
type_text 'tas'
key Tab
key Tab
check "Tab Tab lists globals" wait_re '^task +tasks$'
key C-c
if [ "$has_socket" = 1 ]; then
  type_text 'socket.conn'
  key Tab
  check "Tab completes socket.conn to the common prefix" \
    wait_re '^> socket\.connect$'
  key Tab
  check "Tab Tab lists socket.connect*" wait_re '^connect +connect4 +connect6$'
  key C-c
  type_text 'srv:acc'
  key Tab
  check "Tab completes a socket method" wait_re '^> srv:accept\($'
  key C-c
fi

if "$NETSH" -e 'require "http"' >/dev/null 2>&1; then
  enter 'r = setmetatable({status = 200, reason = "OK", elapsed = 0, body = "[1]", _head = "", _more = {}}, http.Response)'
  type_text 'r:j'
  key Tab
  check "Tab completes an HTTP response method" wait_re '^> r:json\($'
  type_text ')'
  key Enter
  check "... and it runs" wait_line '{1}'
  type_text 'r.timi'
  key Tab
  check "Tab completes a lazy response field" wait_re '^> r\.timings\.$'
  key C-c
  enter 'json.null'
  check "json.null prints as json.null" wait_line 'json.null'
fi

echo "# helpers"
enter 'help()'
check "help() prints the overview" wait_re '^ +tasks\(\) +the live tasks'
enter 'help(task)'
check "help(module) lists its functions" \
  wait_re '^ +timeout\(seconds, fn, \.\.\.\) -> '
enter 'help(json)'
check "help(json): decode raises, try_decode returns nil, err" \
  wait_re '^ +decode\(string\) -> value; raises on invalid JSON$'
enter 'ls({b = 1, a = "x"})'
check "ls(t) lists fields sorted" wait_re '^ +a +"x"$'

echo "# Ctrl-D"
enter 'spawn(function() sleep(100) end)'
wait_prompt
key C-d
rc=$(wait_rc 5)
check "Ctrl-D on an empty line exits 0 (with a task still running)" \
  test "$rc" = 0
check "the terminal is back in cooked mode" tty_sane

echo "# history"
start -q
enter 'hist_token = 12345'
enter 'hist_token + 0'
wait_line '12345'
key C-d
wait_rc >/dev/null
check "the history file is written" grep -q 'hist_token' "$dir/history"
start -q
key Up
key Up
check "history survives a restart (Up)" wait_re '^> hist_token = 12345$'
key Enter
enter 'hist_token + 1'
check "a recalled line runs" wait_line '12346'
enter 'hist_token = 1'
wait_prompt
key C-r
type_text 'token = 123'
check "Ctrl-R shows the match" \
  wait_re "reverse-i-search\)\`token = 123': hist_token = 12345"
key Enter
enter 'hist_token * 2'
check "Ctrl-R finds and runs an older line" wait_line '24690'
key C-r
type_text 'token = 1'
wait_re "reverse-i-search\)\`token = 1': hist_token = 1"
key C-c
wait_prompt
check "Ctrl-C during Ctrl-R leaves no old line drawn" \
  test "$(screen | grep -v '^$' | tail -2 | head -1)" = "> ^C"
key C-d
wait_rc >/dev/null
export NETSH_HISTSIZE=3
start -q
for i in 1 2 3 4 5; do enter "cap$i = $i"; done
enter '"done" .. 5'
wait_line '"done5"'
key C-d
wait_rc >/dev/null
unset NETSH_HISTSIZE
n=$(grep -c . "$dir/history")
check "the history is capped (NETSH_HISTSIZE=3: $((n - 1)) entries)" \
  test "$n" = 4

echo "# os.exit"
start -q
enter 'os.exit(3)'
rc=$(wait_rc 5)
check "os.exit(3) exits 3" test "$rc" = 3
check "... with the terminal restored" tty_sane
start -q
enter 'spawn(function() sleep(0.5) os.exit(4) end)'
type_text 'typing when a task exits'
rc=$(wait_rc 5)
check "os.exit from a task while editing exits 4" test "$rc" = 4
check "... with the terminal out of raw mode" tty_sane
T kill-server >/dev/null 2>&1

echo "# not a terminal"
out=$(printf '1+1\nfunction f(x)\nreturn x*2\nend\nf(4)\nerror("boom")\n"ok" .. 1\n' |
  "$NETSH" -i -q 2>"$dir/err")
rc=$?
check "-i with a pipe exits 0 at EOF" test "$rc" = 0
check "-i with a pipe: plain prompts and results" \
  test "$out" = $'> 2\n> >> >> > 8\n> > "ok1"\n> '
check "-i with a pipe: errors on stderr" grep -qx 'stdin:1: boom' "$dir/err"
if printf '%s' "$out" | cat - "$dir/err" | grep -q $'\033'; then
  not_ok "-i with a pipe writes no escape sequences"
else
  ok "-i with a pipe writes no escape sequences"
fi
out=$(printf 'print(6 * 7)\n' | "$NETSH")
check "without -i a pipe is a script (no REPL)" test "$out" = 42

echo "# $failures failure(s)"
[ "$failures" = 0 ]
