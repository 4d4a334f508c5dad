-- scripts.lua -- `netsh -m` with no name: the bundled scripts, each with
-- the description from its first comment line ("-- name.lua -- what").
local embed = require "netsh.embed"

local M = {}

function M.list(out)
  local all = embed.scripts()
  local names = {}
  for name in pairs(all) do names[#names + 1] = name end
  table.sort(names)
  out:write("Bundled scripts (run with: netsh -m NAME [args], NAME --help):\n")
  for _, name in ipairs(names) do
    local first = all[name]:match("^%-%-[^\n]*") or ""
    local what = first:match("^%-%-%s*[%w_%.]+%s+%-%-%s*(.*)$")
      or first:gsub("^%-%-%s*", "")
    out:write(("  %-12s %s\n"):format(name, what))
  end
end

return M
