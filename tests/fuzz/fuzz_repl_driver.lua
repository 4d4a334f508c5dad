-- fuzz_repl_driver.lua -- the REPL's reading of an entry (M.load of
-- lua/netsh/repl.lua: first line as an expression, then as a statement;
-- "<eof>" errors ask for more lines) on random text. The first byte says
-- whether it is the entry's first line. Checks: load never raises; it
-- gives a function exactly when Lua compiles the text (or, for a first
-- line, "return <text>;"); "more" only for an error ending in "<eof>";
-- text that Lua compiles is never "incomplete".
for _, m in ipairs{"task", "task.core", "netsh.pretty"} do
  package.loaded[m] = setmetatable({}, {__index = function()
    return function() end
  end})
end
local repl = require "netsh.repl"

return function(s)
  local first = #s > 0 and s:byte(1) % 2 == 1
  local src = s:sub(2)
  local f, err, more = repl.load(src, first)
  -- what lua(1) would compile: "=x" is "return x" on a first line
  local text = src
  if first and text:sub(1, 1) == "=" then text = "return " .. text:sub(2) end
  local ok = load(text, "=stdin", "t") or
    (first and load("return " .. text .. ";", "=stdin", "t"))
  if f then
    assert(type(f) == "function")
    assert(ok, "load gave a function Lua refuses")
    return
  end
  assert(not ok, "Lua compiles what the REPL refused")
  assert(type(err) == "string", "no message")
  assert(type(more) == "boolean", "more is not a boolean")
  if more then assert(err:sub(-5) == "<eof>", "more without <eof>") end
end
