-- test.lua -- `netsh test [busted options] [paths]`: busted, run inside
-- the main task, with every `it` block in a task of its own (joined at
-- once) under a deadline, so specs call socket functions directly and a
-- stuck test fails with "timeout" instead of hanging the suite.
-- NETSH_TEST_TIMEOUT (seconds, default 60) sets that deadline.
local task = require "task"

local M = {}

local pack, unpack = table.pack, table.unpack
local limit = tonumber(os.getenv("NETSH_TEST_TIMEOUT")) or 60

local function in_task(run)
  return function(...)
    local args = pack(...)
    local t = task.spawn(function()
      local r = pack(task.timeout(limit, run, unpack(args, 1, args.n)))
      if r[1] == nil and r[2] == "timeout" and r.n == 2 then
        error(("test took longer than %gs (NETSH_TEST_TIMEOUT)")
          :format(limit), 0)
      end
      return unpack(r, 1, r.n)
    end)
    local r = pack(t:join())
    if t:status() ~= "done" then error(r[2], 0) end
    return unpack(r, 1, r.n)
  end
end

local wrapped = {it = true, before_each = true, after_each = true,
  setup = true, teardown = true, lazy_setup = true, lazy_teardown = true,
  strict_setup = true, strict_teardown = true}

function M.run(args, n)
  -- intercept busted's core instance to wrap its `safe` runner
  local make_core = require "busted.core"
  package.loaded["busted.core"] = function(...)
    local busted = make_core(...)
    local safe = busted.safe
    busted.safe = function(descriptor, run, element)
      if wrapped[descriptor] and type(run) == "function" then
        run = in_task(run)
      end
      return safe(descriptor, run, element)
    end
    return busted
  end
  _G.arg = {[0] = "netsh test"}
  for i = 1, n or #args do arg[i] = args[i] end
  local runner = require "busted.runner"
  runner({standalone = false, output = "plainTerminal"})
end

return M
