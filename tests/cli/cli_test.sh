#!/usr/bin/env bash
# cli_test.sh -- runs the netsh binary as a user would: arg, -e, -l, -,
# stdin scripts, NETSH_INIT, -E, -v, exit codes, stderr text, SIGINT.
# usage: tests/cli/cli_test.sh path/to/netsh
set -u
N=$(realpath "${1:?usage: cli_test.sh path/to/netsh}")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat > "$T/args.lua" <<'L'
print(arg[0], arg[1], arg[2], #arg, select('#', ...), ...)
print(arg[-1] ~= nil)
L
check_run "script arguments and arg" 0 "args.lua	a	b	2	2	a	b" "" \
  "$N" "$T/args.lua" a b
check_run "arg negative indices hold the interpreter" 0 "^true$" "" \
  "$N" "$T/args.lua"
check_run "-e runs a statement" 0 "^42$" "" "$N" -e "print(6*7)"
check_run "-e twice in order" 0 "^12$" "" "$N" -e "io.write(1)" -e "print(2)"
check_run "-l mod sets the global" 0 "^table$" "" "$N" -l cjson -e "print(type(cjson))"
check_run "-l g=mod names the global" 0 "^\[1\]$" "" "$N" -l J=cjson -e "print(J.encode({1}))"
check_run "-e runs before the script" 0 "^E .*args.lua	a" "" "$N" -e "io.write('E ')" "$T/args.lua" a
check_run "-v prints the versions" 0 "^netsh [0-9.]+ \(Lua 5\.4.*libuv.*libcurl.*OpenSSL" "" "$N" -v
check_run "--version" 0 "^netsh " "" "$N" --version
# -v names the libraries running, not the headers built against: a
# preloaded shim that reports other versions must show up
if command -v cc >/dev/null && echo "#include <curl/curl.h>" | cc -E - >/dev/null 2>&1; then
  cat > "$T/shim.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <curl/curl.h>
const char *OpenSSL_version(int t) { (void)t; return "OpenSSL 9.8.7-shim"; }
curl_version_info_data *curl_version_info(CURLversion v) {
  static curl_version_info_data d;
  void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  curl_version_info_data *(*real)(CURLversion) =
    (curl_version_info_data *(*)(CURLversion))dlsym(lib, "curl_version_info");
  d = *real(v);
  d.version = "9.8.7-shim";
  return &d;
}
C
  if cc -shared -fPIC -o "$T/shim.so" "$T/shim.c" -ldl 2>"$T/cc.err"; then
    check_run "-v shows the runtime OpenSSL and libcurl" 0 \
      "libcurl 9\.8\.7-shim, OpenSSL 9\.8\.7-shim\)" "" \
      env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
      LD_PRELOAD="$T/shim.so" "$N" -v
  else
    echo "SKIP -v runtime versions: cannot build the shim"; cat "$T/cc.err"
  fi
fi
check_run "-h prints usage" 0 "^usage: netsh" "" "$N" -h
check_run "unknown option is a usage error" 2 "" "unrecognized option '-z'" "$N" -z
check_run "-e without argument is a usage error" 2 "" "'-e' needs argument" "$N" -e
check_run "runtime error: message, traceback, exit 1" 1 "" \
  "^netsh: \(command line\):1: boom" "$N" -e "error('boom')"
grep -q "stack traceback" "$T/err" && { echo "ok   traceback on stderr"; pass=$((pass+1)); } \
  || { echo "FAIL traceback on stderr"; fail=$((fail+1)); }
printf 'local function f()\n  error("boom")\nend\nf()\n' > "$T/boom.lua"
check_run "uncaught error: the user's frames" 1 "" \
  "^	.*boom.lua:4: in main chunk" "$N" "$T/boom.lua"
if grep -q "prelude.lua\|tail calls" "$T/err"; then
  echo "FAIL uncaught error shows netsh's own frames"; sed 's/^/  err: /' "$T/err"
  fail=$((fail + 1))
else
  echo "ok   uncaught error hides netsh's own frames"; pass=$((pass + 1))
fi
"$N" "$T/nope.lua" 2>"$T/err"
if [ "$(cat "$T/err")" = "netsh: cannot open $T/nope.lua: No such file or directory" ]; then
  echo "ok   missing script: one line, as lua5.4"; pass=$((pass + 1))
else
  echo "FAIL missing script: one line"; sed 's/^/  err: /' "$T/err"
  fail=$((fail + 1))
fi
check_run "syntax error exits 1" 1 "" "netsh: .*unexpected symbol|netsh: .*expected" "$N" -e "x = = 1"
check_run "missing script exits 1" 1 "" "cannot open $T/nope.lua" "$N" "$T/nope.lua"
check_run "os.exit(n) is honoured" 7 "" "" "$N" -e "os.exit(7)"
check_run "os.exit(true) is success" 0 "" "" "$N" -e "os.exit(true)"
check_run "os.exit inside a task" 3 "" "" "$N" -e "spawn(function() os.exit(3) end) sleep(1)"
check_run "non-string error object" 1 "" "error object is a table value" "$N" -e "error({})"
check_run "error with __tostring" 1 "" "netsh: custom" "$N" -e \
  "error(setmetatable({}, {__tostring=function() return 'custom' end}))"
check_run "unjoined task failure: reported with its name, exit 1" 1 "^main done$" \
  "task 'worker' failed: .*oops" "$N" -e \
  "spawn{name='worker', function() error('oops') end} sleep(0.01) print('main done')"
check_run "joined task failure is the script's business: exit 0" 0 "oops" "" "$N" -e \
  "local t = spawn(function() error('oops', 0) end) print(t:join())"
check_run "process waits for spawned tasks" 0 "^late$" "" "$N" -e \
  "spawn(function() sleep(0.05) print('late') end)"
check_run "main error ends the process at once" 1 "" "first" "$N" -e \
  "spawn(function() sleep(5) end) error('first')"
check_run "deadlock is detected" 1 "" "deadlock" "$N" -e "task.cond():wait()"

# reading stdin suspends only the reading task: the ticker runs meanwhile
out=$( (sleep 0.3; echo hi) | "$N" -e 'spawn(function() sleep(0.05) print("tick") end) print(io.read())')
if [ "$out" = "$(printf 'tick\nhi')" ]; then
  echo "ok   io.read on stdin lets other tasks run"; pass=$((pass + 1))
else
  echo "FAIL io.read on stdin lets other tasks run: $out"; fail=$((fail + 1))
fi
check_run "io.lines() over stdin" 0 "^a,b,c$" "" sh -c "printf 'a\nb\nc' | '$N' -e 'local t = {} for l in io.lines() do t[#t+1] = l end print(table.concat(t, \",\"))'"

printf 'print("from stdin", ...)\n' > "$T/s.lua"
check_run "- runs stdin with arguments" 0 "^from stdin	a$" "" sh -c "'$N' - a < '$T/s.lua'"
check_run "no argument and a pipe: stdin is the script" 0 "^from stdin$" "" \
  sh -c "'$N' < '$T/s.lua'"
check_run "stdin script may wait" 0 "^ok$" "" sh -c "echo 'sleep(0.01) print(\"ok\")' | '$N'"
check_run "-- ends options" 0 "args.lua" "" "$N" -- "$T/args.lua"
check_run "-i with a pipe reads lines" 0 "^> 3" "" sh -c "echo '1+2' | '$N' -i -q"
check_run "-i prints errors and goes on" 0 "^> .*> 2" "" sh -c "printf 'error(\"x\")\n1+1\n' | '$N' -i -q"

echo 'print("init ran")' > "$T/init.lua"
check_run "NETSH_INIT runs code first" 0 "^hi" "" env NETSH_INIT='io.write("hi ")' "$N" -e "print()"
check_run "NETSH_INIT=@file runs a file" 0 "^init ran" "" env NETSH_INIT="@$T/init.lua" "$N" -e ""
if [ "$(NETSH_INIT='print("init")' "$N" -E -e 'print("body")')" = body ]; then
  echo "ok   -E ignores NETSH_INIT"; pass=$((pass + 1))
else
  echo "FAIL -E ignores NETSH_INIT"; fail=$((fail + 1))
fi
check_run "-W turns warnings on" 0 "" "Lua warning: careful" "$N" -W -e "warn('careful')"

# SIGINT: a sleeping main task and a busy loop both stop with 130
for code in "sleep(10)" "while true do end" "spawn(function() sleep(10) end)"; do
  "$N" -e "$code" >/dev/null 2>"$T/err" & pid=$!
  sleep 0.3
  kill -INT $pid
  t0=$(date +%s%N); wait $pid; rc=$?; t1=$(date +%s%N)
  if [ $rc = 130 ] && [ $(( (t1 - t0) / 1000000 )) -lt 1000 ]; then
    echo "ok   SIGINT stops '$code' with 130"; pass=$((pass + 1))
  else
    echo "FAIL SIGINT on '$code': rc=$rc"; fail=$((fail + 1))
  fi
done
grep -q "interrupted" "$T/err" || true

# a script dir it does not come from: embedded Lua needs no source tree
(cd "$T" && "$N" -e 'print(require("task").spawn ~= nil)') | grep -q true \
  && { echo "ok   runs from any directory"; pass=$((pass+1)); } \
  || { echo "FAIL runs from any directory"; fail=$((fail+1)); }

finish
