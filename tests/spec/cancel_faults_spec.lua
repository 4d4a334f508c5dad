-- cancel_faults_spec.lua -- cancelling a task (h:cancel(), task.timeout)
-- in the middle of a TCP connect, a TLS handshake or an HTTP transfer,
-- many times over: the descriptors come back to where they were, nothing
-- is left in curl's multi, the Lua heap does not grow, and no late
-- callback touches freed memory (the sanitizer build runs this too).
-- Peers: helpers/blackhole.py (a connect that hangs), a Python peer that
-- never speaks TLS, tests/support/http_oddities.py (a slow body). Each
-- warm-up makes a real connection first: libuv keeps one descriptor on
-- /dev/null from the loop's first stream on, which is no leak.
local src = os.getenv("NETSH_SRC") or "."
package.path = src .. "/tests/spec/helpers/?.lua;" .. package.path
local oddities = require "oddities"
local socket = require "socket"
local http = require "http"
local hcore = require "http.core"
local task = require "task"
local fds = require "fds"
local blackhole = require "blackhole"

local ROUNDS = 20

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- Runs op(i) in a task ROUNDS times, cancelling it after `after` seconds
-- (half the rounds by h:cancel(), half by task.timeout), then checks that
-- descriptors, transfers and the Lua heap are back to their baseline.
local function churn(op, after)
  op(0)                                  -- warm up: modules, buffers
  local base_fd = fds.settled()
  collectgarbage()
  collectgarbage()
  local base_kb = collectgarbage("count")
  for i = 1, ROUNDS do
    if i % 2 == 0 then
      local h = task.spawn(op, i)
      sleep(after)
      h:cancel()
      local ok, err = h:join(2)
      assert.is_nil(ok)
      assert.are.equal("cancelled", err)
    else
      local ok, err = task.timeout(after, op, i)
      assert.is_nil(ok)
      assert.are.equal("timeout", err)
    end
  end
  -- idle keep-alive connections may go meanwhile: back to the baseline
  -- or below, in time
  local n
  for _ = 1, 30 do
    n = fds.settled()
    if n <= base_fd then break end
    sleep(0.1)
  end
  assert.is_true(n <= base_fd, ("%d descriptors, %d before"):format(n,
    base_fd))
  assert.are.equal(0, hcore.stats().handles)
  collectgarbage()
  collectgarbage()
  assert.is_true(collectgarbage("count") < base_kb + 256,
    ("Lua heap grew from %.0f to %.0f KiB"):format(base_kb,
      collectgarbage("count")))
end

describe("cancelling in the middle of", function()
  local odd_pid, O, dir

  setup(function()
    dir = sh("mktemp -d /tmp/netsh-cancel.XXXXXX"):gsub("%s+$", "")
    O, odd_pid = oddities.start(dir)
  end)

  teardown(function()
    oddities.stop(odd_pid)
    if dir then os.execute("rm -rf " .. dir) end
  end)

  it("a TCP connect", function()
    local port, stop = blackhole()
    local srv = assert(socket.bind("127.0.0.1", 0))
    local live = select(2, srv:getsockname())
    churn(function(i)
      if i == 0 then                 -- a connection that works
        local c <close> = assert(socket.connect("127.0.0.1", live))
        local s <close> = assert(srv:accept())
        return nil
      end
      local c = socket.tcp()
      c:settimeout(10)
      return c:connect("127.0.0.1", port)
    end, 0.05)
    srv:close()
    stop()
  end)

  it("a TLS handshake", function()
    -- a peer in another process that accepts and never says a word
    local p = io.popen("exec python3 -c '" .. [[
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], os.getpid(), flush=True)
s.settimeout(0.5); held = []; parent = os.getppid(); end = time.time() + 120
while os.getppid() == parent and time.time() < end:
    try: held.append(s.accept()[0])
    except socket.timeout: pass
]] .. "'")
    local port, pid = p:read("n", "n")
    churn(function(i)
      local c <close> = assert(socket.connect("127.0.0.1", port))
      if i == 0 then return nil end
      c:settimeout(10)
      return c:starttls{verify = false, handshake_timeout = 10}
    end, 0.1)
    os.execute("kill " .. pid)
    p:close()
  end)

  it("an HTTP transfer, buffered and streamed", function()
    churn(function(i)
      if i == 0 then return http.get(O .. "/status/200") end
      return http.get(O .. "/slowbody?n=50&delay=0.1")
    end, 0.15)
    churn(function(i)
      if i == 0 then return http.get(O .. "/status/200") end
      local res = assert(http.request("GET", O .. "/slowbody?n=50&delay=0.1",
        {stream = true}))
      for _ in res:chunks() do end
    end, 0.25)
  end)
end)
