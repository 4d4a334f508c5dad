#!/usr/bin/env bash
# stdin_test.sh -- io.read, io.lines and io.stdin:read/lines on stdin must
# answer exactly as lua5.4 does, for every format and mix of formats, with
# stdin a pipe (read in pieces too) and a regular file; reading suspends only
# the reading task.
# usage: tests/cli/stdin_test.sh path/to/netsh
set -u
N=$(realpath "${1:?usage: stdin_test.sh path/to/netsh}")
LUA=$(command -v lua5.4 || true)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -z "$LUA" ]; then
  echo "SKIP lua5.4 not installed: nothing to compare with"; exit 0
fi

# show(...) prints every value a read returned, types included
cat > "$T/show.lua" <<'L'
function show(...)
  local t = {select("#", ...)}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" then t[#t + 1] = ("%q"):format(v)
    else t[#t + 1] = (math.type(v) or "") .. ":" .. tostring(v) end
  end
  print(table.concat(t, " "))
end
L

# programs: one read call per line, each run under show()
progs=(
  'io.read("l") | io.read("n") | io.read("l") | io.read("a")'
  'io.read("l", "n") | io.read("a") | io.read("a")'
  'io.read("n", "n", "n") | io.read("L") | io.read("n") | io.read("a")'
  'io.read("n") | io.read("n") | io.read("n") | io.read("n") | io.read("n") | io.read("n") | io.read("n") | io.read("n") | io.read("l")'
  'io.read(5) | io.read(0) | io.read("L") | io.read(3, "n") | io.read("a") | io.read(0) | io.read(1) | io.read("l")'
  'io.read() | io.read() | io.read() | io.read() | io.read()'
  'io.read("*l") | io.read("*n") | io.read("*L") | io.read("*a")'
  'io.stdin:read("n", "l") | io.stdin:read() | io.stdin:read("L", 2, "n") | io.stdin:read(100)'
  'io.read("L", "L", "L", "L") | io.read("n", "a")'
  'io.read("a") | io.read("n") | io.read("l")'
)
inputs=(
  'a\n35\n'
  '1 2 3\nfoo\n'
  '  0x1F  -3.5e2 .5 1e ++1 0x 12abc\n'
  'nan inf 3\nrest'
  ''
  'no newline at end'
  '\n\n\nx'
  '12345678901234567890 0x7fffffffffffffff 1.e5\n'
  '5.\n-.e3 7 0x.8p1 0X1P-2 1E+2x\n'
  '\t\v\f\r 42\r\nnext\n'
  '-0 +7 00012 0.0e0\n'
  "$(printf '%0250d' 7) 9\n"
  "$(printf '1%.0s' $(seq 199)) 5 $(printf '2%.0s' $(seq 200))3 8\n"
)

i=0
for p in "${progs[@]}"; do
  i=$((i + 1))
  { cat "$T/show.lua"; echo "$p" | tr '|' '\n' | sed 's/^ *\(.*\) *$/show(\1)/'; } \
    > "$T/p$i.lua"
  j=0
  for in in "${inputs[@]}"; do
    j=$((j + 1))
    printf -- "$in" > "$T/in"
    want=$("$LUA" "$T/p$i.lua" < "$T/in" 2>&1)
    got=$(cat "$T/in" | "$N" "$T/p$i.lua" 2>&1)
    gotf=$("$N" "$T/p$i.lua" < "$T/in" 2>&1)
    if [ "$got" = "$want" ] && [ "$gotf" = "$want" ]; then
      ok "program $i, input $j: as lua5.4 (pipe and file)"
    else
      ko "program $i, input $j: [$p] on [$in]"
      diff <(echo "$want") <(echo "$got") | sed 's/^/  pipe: /'
      diff <(echo "$want") <(echo "$gotf") | sed 's/^/  file: /'
    fi
  done
done

# a pipe that delivers in pieces: a number split across two writes waits for
# its end, and the other task keeps running meanwhile
cat > "$T/slow.lua" <<'L'
spawn(function() sleep(0.05) print("tick") end)
print(io.read("l"))
print(io.read("n", "n"))
print(io.read("L"))
L
got=$( (printf 'first\n3'; sleep 0.3; printf '5 0x'; sleep 0.1; printf '1F\nend\n') \
  | "$N" "$T/slow.lua" 2>&1)
want=$(printf 'first\ntick\n35\t31\n\n')
[ "$got" = "$want" ] && ok "numbers split across pipe writes; other tasks run" \
  || ko "numbers split across pipe writes: [$got]"

# io.lines and io.stdin:lines with formats, as lua5.4
cat > "$T/lines.lua" <<'L'
for a, b in io.lines(nil, "n", "l") do print(math.type(a), a, b) end
L
printf '1 one\n2.5 two\n3\nx\n' > "$T/in"
want=$("$LUA" -e 'for a, b in io.stdin:lines("n", "l") do print(math.type(a), a, b) end' < "$T/in" 2>&1)
got=$("$N" -e 'for a, b in io.stdin:lines("n", "l") do print(math.type(a), a, b) end' < "$T/in" 2>&1)
[ "$got" = "$want" ] && ok "io.stdin:lines(\"n\", \"l\") as lua5.4" \
  || ko "io.stdin:lines(\"n\", \"l\"): [$got] want [$want]"

# a bad format raises, naming read and the argument, as lua5.4
got=$(echo x | "$N" -e 'print(pcall(io.read, "l", "x"))' 2>&1)
case $got in
  *"bad argument #2 to 'read' (invalid format)"*) ok "bad format raises" ;;
  *) ko "bad format raises: [$got]" ;;
esac

finish
