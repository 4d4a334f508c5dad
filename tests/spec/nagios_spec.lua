-- nagios_spec.lua -- the Nagios plugin profile (lua/netsh/exitcodes.lua,
-- --nagios on the bundled checks): range syntax, the one status line with
-- performance data, exit codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
-- Loopback only: a listening socket of this process (the kernel completes
-- the children's handshakes while io.popen waits) and refused ports.
local exitcodes = require "netsh.exitcodes"
local socket = require "socket"

local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- "NAME STATE: text | label=value[UOM];warn;crit;min;max ..." and no more
local PERF = "^'?[^=']+'?=%-?[%d.]+[%a%%]*;[^;]*;[^;]*;[^;]*;?[^;]*$"
local function parse(out, name)
  assert.matches("^[^\n]+\n$", out)          -- one line
  local state, text, perf = out:match("^" .. name
    .. " (%u+): ([^|\n]*)| ?([^\n]*)\n$")
  if not state then
    state, text = out:match("^" .. name .. " (%u+): ([^|\n]*)\n$")
  end
  assert.is_not_nil(state, out)
  local perfs = {}
  for item in (perf or ""):gmatch("%S+") do
    assert.matches(PERF, item)
    perfs[#perfs + 1] = item
  end
  return state, text, perfs
end

describe("Nagios ranges", function()
  local cases = {
    -- range, values that alert, values that do not
    {"10", {-1, 10.5, 11}, {0, 5, 10}},
    {"10:", {9.9, -3}, {10, 1e9}},
    {"~:10", {10.1, 50}, {-1e9, 10}},
    {"10:20", {9, 21}, {10, 15, 20}},
    {"@10:20", {10, 15, 20}, {9, 21}},
    {":5", {6}, {0, 5}},
    {"-5:-1", {0, -6}, {-5, -1}},
  }
  for _, c in ipairs(cases) do
    it("'" .. c[1] .. "'", function()
      local r = assert(exitcodes.range(c[1]))
      for _, x in ipairs(c[2]) do assert.is_true(r:alert(x), tostring(x)) end
      for _, x in ipairs(c[3]) do assert.is_false(r:alert(x), tostring(x)) end
    end)
  end

  it("refuses what is not a range", function()
    for _, s in ipairs{"", "abc", "1:x", "20:10", "@", "1:2:3", "nan"} do
      local r, err = exitcodes.range(s)
      assert.is_nil(r, s)
      assert.matches("bad range", err)
    end
  end)

  it("judges CRITICAL before WARNING", function()
    local n = exitcodes.nagios("X", {warn = "1", crit = "2"})
    assert.same({0, 1, 2}, {n:judge(0.5), n:judge(1.5), n:judge(3)})
  end)

  it("writes the worst state, its texts, and label=value;w;c;min;max",
     function()
    local n = exitcodes.nagios("X", {warn = "0.5", crit = "2"})
    n:status(1, "a slow")
    n:status(0)
    n:status(2, "b down")
    n:status(1, "c slow")
    n:status(2, "d down")
    n:perf("a", 0.75, "s", 0)
    n:perf("it's a=b", 3, "c", 0, 10)
    n:perf("days", 12, nil, nil, nil, "30:", "7:")
    assert.equal("X CRITICAL: b down, d down; 4 checked | a=0.75s;0.5;2;0 "
      .. "'it''s a_b'=3c;0.5;2;0;10 days=12;30:;7:", n:line("4 checked"))
    local ok = exitcodes.nagios("Y")
    ok:perf("t", 1)
    assert.equal("Y OK: all good | t=1", ok:line("all good"))
  end)

  it("usage_code: 3 with --nagios before --, else 2", function()
    assert.equal(3, exitcodes.usage_code{"-x", "--nagios"})
    assert.equal(2, exitcodes.usage_code{"--", "--nagios"})
    assert.equal(2, exitcodes.usage_code{"--json"})
  end)
end)

describe("--nagios on the checks", function()
  local server, port
  setup(function()
    server = assert(socket.bind("127.0.0.1", 0))
    port = select(2, server:getsockname())
  end)
  teardown(function() server:close() end)

  it("wait_for: OK, WARNING and CRITICAL by --warn/--crit", function()
    local t = " 127.0.0.1:" .. port
    local out, code = sh(NETSH .. " -m wait_for --nagios" .. t)
    assert.equal(0, code, out)
    local state, text, perfs = parse(out, "WAIT_FOR")
    assert.equal("OK", state)
    assert.equal("1 of 1 targets up ", text)
    assert.matches("^'127.0.0.1:" .. port .. "'=[%d.]+s;;;0$", perfs[1])
    -- @0:100 alerts inside 0..100 s: always, for a port that is up
    out, code = sh(NETSH .. " -m wait_for --nagios --warn @0:100" .. t)
    assert.equal(1, code, out)
    assert.equal("WARNING", (parse(out, "WAIT_FOR")))
    out, code = sh(NETSH .. " -m wait_for --nagios --warn @0:100 "
      .. "--crit @0:100" .. t)
    assert.equal(2, code, out)
    out, code = sh(NETSH .. " -m wait_for --nagios -t 0 127.0.0.1:1" .. t)
    assert.equal(2, code, out)
    state, text = parse(out, "WAIT_FOR")
    assert.equal("CRITICAL", state)
    assert.equal("127.0.0.1:1: connection refused; 1 of 2 targets up ", text)
  end)

  it("port_scan judges the number of open ports", function()
    local cmd = NETSH .. " -m port_scan 127.0.0.1 --nagios -p 1," .. port
    local out, code = sh(cmd .. " --crit 1:1")
    assert.equal(0, code, out)
    local state, _, perfs = parse(out, "PORT_SCAN")
    assert.equal("OK", state)
    assert.equal("open=1;;1:1;0;2", perfs[1])
    out, code = sh(cmd .. " --warn 2:2 --crit 1:2")
    assert.equal(1, code, out)
    out, code = sh(cmd .. " --crit 2:")
    assert.equal(2, code, out)
    assert.equal("CRITICAL", (parse(out, "PORT_SCAN")))
  end)

  it("http_check, dns, tls_expiry: a failure is CRITICAL", function()
    local out, code = sh(NETSH .. " -m http_check --nagios --timeout 2 "
      .. "http://127.0.0.1:1/")
    assert.equal(2, code, out)
    local state, text = parse(out, "HTTP_CHECK")
    assert.equal("CRITICAL", state)
    assert.equal("http://127.0.0.1:1/: connection refused; 0 of 1 URLs "
      .. "passed ", text)
    out, code = sh(NETSH .. " -m dns --nagios localhost")
    assert.equal(0, code, out)
    assert.equal("OK", (parse(out, "DNS")))
    out, code = sh(NETSH .. " -m tls_expiry --nagios -t 2 127.0.0.1:1")
    assert.equal(2, code, out)
    assert.equal("CRITICAL", (parse(out, "TLS_EXPIRY")))
  end)

  it("a usage error is UNKNOWN (3), with a status line", function()
    for _, c in ipairs{
        {"http_check --nagios --warn abc http://x/", "HTTP_CHECK",
          "--warn: bad range 'abc'"},
        {"http_check --nagios --no-such http://x/", "HTTP_CHECK",
          "unknown option '--no-such'"},
        {"wait_for --nagios nohostport", "WAIT_FOR", "is not HOST:PORT"},
        {"wait_for --nagios 127.0.0.1:1 -- true", "WAIT_FOR",
          "runs no command"},
        {"port_scan --nagios 127.0.0.1", "PORT_SCAN", "--ports is required"},
        {"dns --nagios --shard 1/1 x", "DNS", "out of range"},
        {"tls_expiry --nagios -p 20000 x", "TLS_EXPIRY", "at most 10000"},
        {"http_bench --nagios", "HTTP_BENCH", "give the URL"}} do
      local out, code = sh(NETSH .. " -m " .. c[1])
      assert.equal(3, code, c[1])
      local state, text = parse(out, c[2])
      assert.equal("UNKNOWN", state)
      assert.matches(c[3], text, 1, true)
    end
    -- without --nagios: 2, as before
    local _, code = sh(NETSH .. " -m http_check --warn 1 http://x/")
    assert.equal(2, code)
  end)
end)
