-- dns_faults_spec.lua -- a DNS server that misbehaves (the fault names of
-- helpers/dns_responder.py): every lookup API ends with nil, err within
-- its timeout, and the resolver keeps working after (late answers for
-- lookups given up on find nobody; the sanitizer build checks that).
local src = os.getenv("NETSH_SRC") or "."
package.path = src .. "/tests/spec/helpers/?.lua;" .. package.path
local dns = require "socket.dns"
local socket = require "socket"
local task = require "task"
local responder = require "dns"

local T = 0.5        -- the lookup timeout given to every call
local SLACK = 1.0    -- a loaded machine's lateness we tolerate

-- Each API as f(name) -> results, bounded by T.
local apis = {
  query = function(n) return dns.query(n, "A", T) end,
  toip = function(n) return task.timeout(T, dns.toip, n) end,
  getaddrinfo = function(n) return task.timeout(T, dns.getaddrinfo, n) end,
  connect = function(n)
    local c = socket.tcp()
    c:settimeout(T)
    local r = table.pack(c:connect(n, 9))
    c:close()
    return table.unpack(r, 1, r.n)
  end,
}
local ORDER = {"query", "toip", "getaddrinfo", "connect"}

local function check(name, want)
  for _, api in ipairs(ORDER) do
    local t0 = task.now()
    local ok, err = apis[api](name)
    local took = task.now() - t0
    assert.is_nil(ok, api .. " " .. name)
    local w = type(want) == "table" and want[api] or want
    assert.are.equal(w, err, api .. " " .. name)
    assert.is_true(took < T + SLACK, ("%s %s took %.2f s"):format(api, name,
      took))
  end
end

local function still_works()
  local r = assert(dns.query("test.netsh", "A", 2))
  assert.are.equal("127.0.0.1", r[1].address)
  assert.are.equal("127.0.0.1", (assert(dns.toip("v4.test.netsh"))))
end

describe("a misbehaving DNS server", function()
  setup(function() responder.start() end)
  teardown(function() responder.stop() end)

  it("that never answers: timeout", function()
    check("slow.test.netsh", "timeout")
    still_works()
  end)

  it("that answers after the timeout: timeout, and the late answer is "
    .. "dropped", function()
    check("late.test.netsh", "timeout")
    sleep(1.6)               -- the late answers arrive now: nobody waits
    collectgarbage()
    collectgarbage()
    still_works()
  end)

  it("that answers with another ID or with noise: timeout", function()
    check("wrongid.test.netsh", "timeout")
    check("noise.test.netsh", "timeout")
    still_works()
  end)

  it("that answers garbage records: an error at once", function()
    local bad = "non-recoverable failure in name resolution"
    check("garbage.test.netsh", {query = "malformed dns answer", toip = bad,
      getaddrinfo = bad, connect = bad})
    check("short.test.netsh", {query = "malformed dns answer", toip = bad,
      getaddrinfo = bad, connect = bad})
    still_works()
  end)

  it("that truncates (and has no TCP): an error at once", function()
    check("trunc.test.netsh", "temporary failure in name resolution")
    still_works()
  end)
end)
