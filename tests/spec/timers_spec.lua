-- timers_spec.lua -- a task's wait timer is reused across waits (a wake
-- leaves it running, unreferenced, and the next wait only moves its due
-- time; loop.c): every timeout must still come on time, and a timed wait
-- must still keep the loop up.
local src = os.getenv("NETSH_SRC") or "."
local netsh = os.getenv("NETSH") or (src .. "/build/netsh")
local socket = require "socket"

local function pair()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local c = assert(socket.connect("127.0.0.1", port))
  local p = assert(s:accept())
  s:close()
  return c, p
end

describe("a task's timer", function()
  it("counts for the loop after it fired between two waits", function()
    local f = assert(io.popen(("%s %s/tests/spec/helpers/timer_reuse.lua"
      .. " 2>&1; echo rc=$?"):format(netsh, src)))
    local out = f:read("a")
    f:close()
    assert.equal("ok\nrc=0\n", out)
  end)

  it("times out on time after a longer wait woken early", function()
    local c, p = pair()
    c:settimeout(1)
    p:send("x")
    assert.equal("x", c:receive(1))      -- its timer was due in 1 s
    c:settimeout(0.05)
    local t0 = task.now()
    assert.same({nil, "timeout", ""}, {c:receive(1)})
    local took = task.now() - t0
    assert.is_true(took >= 0.045 and took < 0.5, "took " .. took)
    c:close(); p:close()
  end)

  it("waits the whole timeout after a shorter wait woken early", function()
    local c, p = pair()
    c:settimeout(0.02)
    p:send("x")
    assert.equal("x", c:receive(1))      -- its timer fires in 20 ms
    c:settimeout(0.15)
    local t0 = task.now()
    assert.same({nil, "timeout", ""}, {c:receive(1)})
    local took = task.now() - t0
    assert.is_true(took >= 0.14 and took < 1, "took " .. took)
    c:close(); p:close()
  end)
end)
