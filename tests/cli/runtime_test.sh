#!/usr/bin/env bash
# runtime_test.sh -- the process edge of the runtime: closed standard
# descriptors, error objects whose __tostring misbehaves, a directory as
# stdin, -l with a missing module, task failures whatever their value.
# usage: tests/cli/runtime_test.sh path/to/netsh
set -u
N=$(realpath "${1:?usage: runtime_test.sh path/to/netsh}")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


# 1. closed standard descriptors: libuv's own fds must never be 0-2
code='io.stderr:write("") local s = socket.bind("127.0.0.1", 0)
  s:close() sleep(0.01) print(1)'
for fd in 0 1 2; do
  case $fd in
    0) "$N" -e "$code" >"$T/out" 2>"$T/err" <&- ;;
    1) "$N" -e "$code" >&- 2>"$T/err" ;;
    2) "$N" -e "$code" >"$T/out" 2>&- ;;
  esac
  rc=$?
  if [ $rc = 0 ]; then ok "fd $fd closed: exit 0"
  else ko "fd $fd closed: exit $rc" "$(cat "$T/err")"; fi
done
"$N" -e 'print("out") io.stderr:write("err\n")' >"$T/out" 2>"$T/err" <&-
if [ "$(cat "$T/out")" = out ] && [ "$(cat "$T/err")" = err ]; then
  ok "stdin closed: stdout and stderr still work"
else
  ko "stdin closed: stdout and stderr still work" "$(cat "$T/out" "$T/err")"
fi
"$N" -e 'print(io.read())' >"$T/out" 2>"$T/err" <&-
if [ "$(cat "$T/out")" = nil ]; then ok "stdin closed reads as end of input"
else ko "stdin closed reads as end of input" "$(cat "$T/out" "$T/err")"; fi

# 2. an error object whose __tostring raises, waits or lies
raising='setmetatable({}, {__tostring = function() error("nested") end})'
waiting='setmetatable({}, {__tostring = function() sleep(0.01) return "x" end})'
notstr='setmetatable({}, {__tostring = function() return {} end})'
for obj in "$raising" "$waiting" "$notstr"; do
  check_run "main task error object: ${obj:0:60}" 1 "" \
    "^netsh: \(error object is a table value\)" "$N" -e "error($obj)"
  check_run "spawned task error object: ${obj:0:60}" 1 "^after$" \
    "task 'w' failed: \(error object is a table value\)" "$N" -e \
    "spawn{name = 'w', function() error($obj) end} sleep(0.01) print('after')"
done
check_run "spawned task __tostring error, task failure collected later" 1 "" \
  "failed: \(error object is a table value\)" "$N" -e \
  "spawn(function() error($raising) end)"

# 7. a group child that fails with error(nil) fails the group
check_run "group: error(nil) in a child is a failure" 1 "" \
  "error object is a nil value" "$N" -e \
  "task.group(function(g) g:spawn(function() error(nil) end)
     g:spawn(function() sleep(5) end) end) print('not reached')"

# cancellation rules (docs/reliability.md): errors of <close> handlers
# are reported, never dropped
closer='setmetatable({}, {__close = function() error("cleanup", 0) end})'
check_run "handler error in a cancelled task: reported, exit 1" 1 "^main done$" \
  "task 'w' failed: cleanup" "$N" -e "
  local t = spawn{name = 'w', function() local c <close> = $closer
    sleep(5) end}
  sleep(0.01) t:cancel() t = nil print('main done')"
check_run "handler error in a group child cancelled by a sibling: reported" 1 \
  "" "task '.*' failed: cleanup" "$N" -e "
  pcall(task.group, function(g)
    g:spawn(function() local c <close> = $closer sleep(5) end)
    g:spawn(function() sleep(0.01) error('first') end)
  end)"
check_run "handler error in a failing task: both errors reported" 1 "" \
  "<close> handler raised: cleanup" "$N" -e "
  spawn{name = 'w', function() local c <close> = $closer error('first') end}"
grep -q "task 'w' failed: .*first" "$T/err" &&
  ok "  ... and the first error with its traceback" ||
  ko "  ... and the first error with its traceback" "$(cat "$T/err")"
check_run "handler waiting in a failing main task: said why" 1 "" \
  "attempt to wait in a <close> handler of a failed task" "$N" -e "
  local c <close> = setmetatable({}, {__close = function() sleep(0.01) end})
  error('first')"

# stdin that is a directory
check_run "directory as stdin script: EISDIR, exit 1" 1 "" \
  "cannot read stdin: Is a directory" sh -c "'$N' < /"
check_run "directory as stdin: io.read returns nil, message, errno" 0 \
  "^nil	Is a directory	21$" "" sh -c "'$N' -e 'print(io.read())' < /"
check_run "directory as stdin: io.read('a') too" 0 \
  "^nil	Is a directory	21$" "" sh -c "'$N' -e 'print(io.read(\"a\"))' < /"
check_run "directory as stdin: io.lines raises" 1 "" "Is a directory" \
  sh -c "'$N' -e 'for l in io.lines() do end' < /"

# -l with a missing module: one searcher message a line, as lua5.4 does
"$N" -l no_such_mod_x >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 1 ] && head -1 "$T/err" |
     grep -Eq "^netsh: module 'no_such_mod_x' not found:$" &&
   sed -n 2p "$T/err" | grep -Eq "^	no field package.preload\['no_such_mod_x'\]$" &&
   grep -Eq "^	no file '\./no_such_mod_x\.lua'$" "$T/err"; then
  ok "-l missing module: the search list, one entry a line"
else
  ko "-l missing module: rc=$rc" "$(cat "$T/err")"
fi

finish
