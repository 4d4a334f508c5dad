-- repl.lua -- the interactive loop. This plain version reads lines from
-- stdin through the loop (tasks keep running while it waits), tries each
-- line as an expression first, then as a statement, continues incomplete
-- input as lua(1) does, and runs each entry in the main task.
local stdin = require "netsh.stdin"

local M = {}
local pack, unpack = table.pack, table.unpack

local function incomplete(err)
  return err:sub(-5) == "<eof>"
end

local function report(...)
  local n = select("#", ...)
  if n == 0 then return end
  local out = {}
  for i = 1, n do out[i] = tostring((select(i, ...))) end
  io.stdout:write(table.concat(out, "\t"), "\n")
end

function M.run(opts)
  if opts and opts.banner then
    io.stdout:write(package.loaded["netsh.version"] or "netsh", "\n")
  end
  local buf
  while true do
    io.stdout:write(buf and ">> " or "> ")
    io.stdout:flush()
    local ok, line = pcall(stdin.read, "l")
    if not ok then
      -- Ctrl-C while waiting for input: drop the pending entry
      io.stdout:write("\n")
      buf = nil
    elseif line == nil then
      io.stdout:write("\n")
      return
    else
      buf = buf and (buf .. "\n" .. line) or line
      local chunk, err = load("return " .. buf, "=stdin")
      if not chunk then chunk, err = load(buf, "=stdin") end
      if chunk or not incomplete(err) then
        buf = nil
        if not chunk then
          io.stderr:write(err, "\n")
        else
          local r = pack(xpcall(chunk, debug.traceback))
          if r[1] then report(unpack(r, 2, r.n))
          else io.stderr:write(tostring(r[2]), "\n") end
        end
      end
    end
  end
end

return M
