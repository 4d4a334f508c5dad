-- getopt_spec.lua -- the argument parser every bundled script uses.
local getopt = require "getopt"

local NETSH = os.getenv("NETSH") or "build/netsh"

local spec = {
  name = "tool", usage = "HOST [PORT]", summary = "Does a thing.",
  options = {
    {"t", "timeout", arg = "SECONDS", type = "number", default = 30,
     help = "how long to wait"},
    {"c", "concurrency", arg = "N", type = "integer", default = 4},
    {"v", "verbose", help = "say more"},
    {"q", "quiet"},
    {nil, "json", help = "JSON lines"},
    {"H", "header", arg = "LINE", multi = true},
    {nil, "type", arg = "T", choices = {"A", "AAAA"}},
  },
  min_args = 1, max_args = 2,
  exit_codes = {"0  ok", "2  usage error"},
}

local function run(code)
  local p = io.popen(NETSH .. " -e '" .. code .. "' 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  return out
end

describe("getopt.parse", function()
  it("takes defaults, long and short forms, = and attached values",
    function()
    local o, a = getopt.parse({"-t", "2.5", "--concurrency=8", "host"}, spec)
    assert.equal(2.5, o.timeout)
    assert.equal(8, o.concurrency)
    assert.equal("integer", math.type(o.concurrency))
    assert.same({"host"}, a)
    o = getopt.parse({"-t1", "h"}, spec)
    assert.equal(1, o.timeout)
    o = getopt.parse({"h"}, spec)
    assert.equal(30, o.timeout)
    assert.is_nil(o.verbose)
  end)

  it("bundles short flags and collects repeated options", function()
    local o, a = getopt.parse({"-vq", "-H", "a: 1", "--header", "b: 2",
      "h", "80"}, spec)
    assert.is_true(o.verbose)
    assert.is_true(o.quiet)
    assert.same({"a: 1", "b: 2"}, o.header)
    assert.same({"h", "80"}, a)
  end)

  it("stops at --", function()
    local o, a = getopt.parse({"--", "-v", "x"}, spec)
    assert.is_nil(o.verbose)
    assert.same({"-v", "x"}, a)
  end)

  it("treats negative numbers as arguments", function()
    local _, a = getopt.parse({"h", "-5"}, spec)
    assert.same({"h", "-5"}, a)
  end)

  it("generates the help from the table", function()
    local h = getopt.help(spec)
    assert.matches("^usage: tool %[options%] HOST %[PORT%]", h)
    assert.matches("%-t, %-%-timeout SECONDS%s+how long to wait %(default 30%)", h)
    assert.matches("%-h, %-%-help", h)
    assert.matches("Exit codes:\n  0  ok", h)
  end)

  it("exits 2 with a message on usage errors", function()
    local cases = {
      {"{\"--nope\"}", "unknown option '%-%-nope'"},
      {"{\"-t\", \"x\", \"h\"}", "option %-t needs a number, got 'x'"},
      {"{\"-c\", \"1.5\", \"h\"}", "option %-c needs an integer number"},
      -- integral, but past 64 bits (found by tests/fuzz/getopt)
      {"{\"-c\", \"17777777777777777777771\", \"h\"}",
       "option %-c needs an integer number, got '17777777777777777777771'"},
      {"{\"-c\", \"1e999\", \"h\"}", "option %-c needs an integer number"},
      {"{}", "missing arguments"},
      {"{\"a\", \"b\", \"c\"}", "too many arguments: 'c'"},
      {"{\"--type\", \"MX\", \"h\"}", "option %-%-type must be one of A, AAAA"},
      {"{\"--json=1\", \"h\"}", "option %-%-json takes no value"},
      {"{\"-t\"}", "option %-t needs SECONDS"},
    }
    for _, c in ipairs(cases) do
      local out = run("getopt.parse(" .. c[1] .. ", {name=\"tool\", "
        .. "min_args=1, max_args=2, options={{\"t\",\"timeout\",arg=\"SECONDS\","
        .. "type=\"number\"},{\"c\",\"count\",arg=\"N\",type=\"integer\"},"
        .. "{nil,\"json\"},{nil,\"type\",arg=\"T\",choices={\"A\",\"AAAA\"}}}})")
      assert.matches("^tool: " .. c[2], out)
      assert.matches("Try 'tool %-%-help'", out)
      assert.matches("rc=2\n$", out)
    end
  end)

  it("--help prints the help and exits 0", function()
    local out = run("getopt.parse({\"--help\"}, {name=\"tool\", summary=\"S.\"})")
    assert.matches("^usage: tool", out)
    assert.matches("rc=0\n$", out)
  end)
end)

describe("script helpers", function()
  it("printf formats to stdout", function()
    assert.equal("3-x\nrc=0\n", run("printf(\"%d-%s\\n\", 3, \"x\")"))
  end)

  it("die prints on stderr and exits with the code", function()
    assert.equal("netsh: bad thing\nrc=3\n", run("die(\"bad thing\", 3)"))
    assert.equal("netsh: oops\nrc=1\n", run("die(\"oops\")"))
  end)
end)

describe("getopt nargs", function()
  it("takes several values for one option", function()
    local o, a = getopt.parse({"--tls", "c.pem", "k.pem", "h"}, {name = "x",
      options = {{nil, "tls", arg = "CERT KEY", nargs = 2}}})
    assert.same({"c.pem", "k.pem"}, o.tls)
    assert.same({"h"}, a)
  end)
end)

describe("getopt.nearest", function()
  it("finds the name a typo meant, or none", function()
    local names = {"http_bench", "http_check", "tcp_echo", "tcp_proxy"}
    assert.equal("http_check", getopt.nearest("http_chek", names))
    assert.equal("http_check", getopt.nearest("htpt_check", names))
    assert.equal("tcp_echo", getopt.nearest("tcp_ecco", names))
    assert.is_nil(getopt.nearest("zzz", names))
    assert.is_nil(getopt.nearest("dns", names))
  end)
end)
