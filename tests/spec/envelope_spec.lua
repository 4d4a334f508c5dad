-- envelope_spec.lua -- the JSON-lines envelope (lua/netsh/jsonl.lua,
-- docs/json-lines.md): the same seven leading fields, in the same order,
-- in every bundled script's --json; --tag fields; errors. Loopback only:
-- the scripts run against refused ports and /etc/hosts names.
local jsonl = require "netsh.jsonl"

local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- the leading fields, checked on the raw line (key order matters)
local HEAD = '^{"v":1,"tool":"([%w_]+)","ts":"(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:'
  .. '%d%d%.%d%d%dZ)","host":"([^"]+)","target":'

describe("jsonl", function()
  it("writes the envelope fields first, then tags, then fields by name",
     function()
    local out = jsonl.new("tool_x", {"region=eu-west", "run=7"})
    local line = out:line("db:5432", false, "connection refused",
      {zeta = 1, alpha = {b = 2, a = 1}, seconds = 0.5})
    local tool, ts = line:match(HEAD)
    assert.equal("tool_x", tool)
    local rest = line:match('"target":.*$')
    assert.equal('"target":"db:5432","ok":false,"err":"connection refused",'
      .. '"region":"eu-west","run":"7","alpha":{"a":1,"b":2},'
      .. '"seconds":0.5,"zeta":1}', rest)
    -- ts is now, in UTC
    local y, mo, d, h, mi, s = ts:match("(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
    local t = os.time{year = y, month = mo, day = d, hour = h, min = mi,
      sec = s, isdst = false}
    local utc_now = os.time(os.date("!*t"))
    assert.is_true(math.abs(t - utc_now) <= 2)
  end)

  it("writes err null when ok, and the host name (NETSH_HOST wins)",
     function()
    local r = json.decode(jsonl.new("t", {}):line("x", true, nil, {}))
    assert.equal(json.null, r.err)
    assert.is_true(r.ok)
    assert.equal(require("socket.dns").gethostname(), r.host)
    local out = sh("NETSH_HOST=probe-7 " .. NETSH .. " -e "
      .. "'print(require(\"netsh.jsonl\").new(\"t\"):line(\"x\", true))'")
    assert.equal("probe-7", json.decode(out).host)
  end)

  it("lets a tool field win over a tag of the same name", function()
    local r = jsonl.new("t", {"port=tag"}):line("x", true, nil, {port = 80})
    assert.equal(1, select(2, r:gsub('"port"', "")))
    assert.equal(80, json.decode(r).port)
  end)

  it("refuses bad tags and envelope names", function()
    for _, c in ipairs{
        {{"novalue"}, "bad %-%-tag 'novalue' %(KEY=VALUE"},
        {{"=x"}, "bad %-%-tag '=x'"},
        {{"9a=x"}, "bad %-%-tag"},
        {{"ok=yes"}, "'ok' is an envelope field"},
        {{"a=1", "a=2"}, "'a' given twice"}} do
      local tags, err = jsonl.parse_tags(c[1])
      assert.is_nil(tags)
      assert.matches(c[2], err)
    end
    assert.same({{"a", "x=y"}, {"b.c", ""}},
      jsonl.parse_tags{"a=x=y", "b.c="})
    assert.has_error(function() jsonl.new("t"):line("x", true, nil,
      {ok = 1}) end, "bad argument #4 to 'emit' (field 'ok' is an "
      .. "envelope field)")
    assert.has_error(function() jsonl.new(nil) end,
      "bad argument #1 to 'new' (string expected, got nil)")
    local out, code = sh(NETSH .. " -m wait_for --json --tag host=x "
      .. "127.0.0.1:1 -t 0 2>&1")
    assert.equal(2, code)
    assert.matches("'host' is an envelope field", out, 1, true)
  end)
end)

describe("every bundled script's --json", function()
  local cases = {
    {"dns", "dns --json --type A localhost", "localhost", true},
    {"wait_for", "wait_for --json -t 0 127.0.0.1:1", "127.0.0.1:1", false},
    {"port_scan", "port_scan --json --closed -p 1 127.0.0.1",
      "127.0.0.1:1", false},
    {"http_check", "http_check --json --timeout 2 http://127.0.0.1:1/",
      "http://127.0.0.1:1/", false},
    {"http_bench", "http_bench --json -n 2 -c 1 -t 2 http://127.0.0.1:1/",
      "http://127.0.0.1:1/", false},
    {"tls_expiry", "tls_expiry --json -t 2 127.0.0.1:1", "127.0.0.1:1",
      false},
    {"sse", "sse --json --max-reconnects 0 --connect-timeout 2 "
      .. "http://127.0.0.1:1/", "http://127.0.0.1:1/", false},
  }
  for _, c in ipairs(cases) do
    it("starts with the envelope: " .. c[1], function()
      local out = sh(NETSH .. " -m " .. c[2]
        .. " --tag region=eu --tag shard=3 2>/dev/null")
      local line = out:match("^[^\n]+")
      assert.is_not_nil(line, c[1] .. ": no line")
      local tool, _, host = line:match(HEAD)
      assert.equal(c[1], tool, line)
      assert.equal(jsonl.hostname(), host)
      local r = json.decode(line)
      assert.equal(c[3], r.target)
      assert.equal(c[4], r.ok)
      if c[4] then
        assert.equal(json.null, r.err)
      else
        assert.equal("string", type(r.err), line)
      end
      -- the tags right after err
      assert.matches('"err":[^,]+,"region":"eu","shard":"3"', line)
    end)
  end

  it("keeps a DNS record's own target apart: points_to", function()
    package.path = SRC .. "/tests/spec/helpers/?.lua;" .. package.path
    local responder = require "dns"
    local port = responder.start()
    local ok, err = pcall(function()
      local out = sh(NETSH .. " -m dns --json --server 127.0.0.1:" .. port
        .. " --type SRV _echo._tcp.test.netsh")
      local r = json.decode(out)
      assert.equal("_echo._tcp.test.netsh", r.target)
      assert.equal("echo.test.netsh", r.points_to)
      assert.same({7, 1, 2, "SRV"}, {r.port, r.priority, r.weight, r.type})
      out = sh(NETSH .. " -m dns --json --server 127.0.0.1:" .. port
        .. " --type CNAME alias.test.netsh")
      assert.equal("test.netsh", json.decode(out).points_to)
    end)
    responder.stop()
    assert(ok, err)
  end)
end)
