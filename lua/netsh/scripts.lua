-- scripts.lua -- `netsh -m` with no name: the bundled scripts, each with
-- the first sentence of its opening comment ("-- name.lua -- what ..."),
-- however many comment lines it takes.
local embed = require "netsh.embed"

local M = {}

function M.list(out)
  local all = embed.scripts()
  local names = {}
  for name in pairs(all) do names[#names + 1] = name end
  table.sort(names)
  out:write("Bundled scripts (run with: netsh -m NAME [args], NAME --help):\n")
  for _, name in ipairs(names) do
    local text = {}
    for line in (all[name] .. "\n"):gmatch("([^\n]*)\n") do
      local c = line:match("^%-%-%s?(.*)$")
      -- the sentence ends at code, "--", an indented or a "usage:" line
      if not c or c:match("^%s*$") or (#text > 0
          and (c:match("^%s") or c:match("^%a+:%s"))) then
        break
      end
      text[#text + 1] = c
    end
    local first = table.concat(text, " ")
    local what = first:match("^[%w_%.]+%s+%-%-%s*(.*)$") or first
    what = what:match("^(.-)%.%s") or what:match("^(.-)%.$") or what
    out:write(("  %-12s %s\n"):format(name, what))
  end
end

return M
