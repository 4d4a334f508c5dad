-- repl_spec.lua -- the REPL's pure parts: how an entry compiles (lua(1)'s
-- rules), pretty printing, completion. The terminal side (libedit, Ctrl-C,
-- history) is driven in a real pty by tests/cli/repl_test.sh.
local repl = require "netsh.repl"
local pretty = require "netsh.pretty"

describe("repl.load", function()
  it("tries the first line as an expression", function()
    local f = assert(repl.load("1 + 2", true))
    assert.equal(3, f())
    local g = assert(repl.load("'a', nil, 3", true))
    assert.same({n = 3, "a", nil, 3}, table.pack(g()))
  end)

  it("falls back to a statement", function()
    local f = assert(repl.load("x_repl_spec = 41 + 1", true))
    assert.is_nil(f())
    assert.equal(42, x_repl_spec)
    x_repl_spec = nil
  end)

  it("accepts lua(1)'s '=' prefix", function()
    assert.equal(7, assert(repl.load("= 3 + 4", true))())
  end)

  it("asks for more on <eof> errors only", function()
    local cases = {
      "function f(a)", "if x then", "s = [[abc", "t = {1,", "--[[ note",
      "s = 'abc\\", "while true do", "f(",
    }
    for _, src in ipairs(cases) do
      local f, err, more = repl.load(src, true)
      assert.is_nil(f)
      assert.is_true(more, src .. ": " .. tostring(err))
    end
    local f, err, more = repl.load("x = = 1", true)
    assert.is_nil(f)
    assert.equal("stdin:1: unexpected symbol near '='", err)
    assert.is_false(more)
  end)

  it("completes a multi-line entry as a statement", function()
    local f = assert(repl.load("function sq_spec(x)\nreturn x * x\nend",
      false))
    f()
    assert.equal(49, sq_spec(7))
    sq_spec = nil
    local g = assert(repl.load("return [[one\ntwo]]", false))
    assert.equal("one\ntwo", g())
  end)
end)

describe("pretty", function()
  it("quotes and escapes strings", function()
    assert.equal('"a\\nb\\t\\"q\\"\\\\"', pretty('a\nb\t"q"\\'))
    assert.equal('"\\x00\\xFF"', pretty("\0\255"))
    assert.equal('"héllo"', pretty("héllo"))
  end)

  it("prints scalars as Lua does", function()
    assert.equal("1", pretty(1))
    assert.equal("1.5", pretty(1.5))
    assert.equal("nil", pretty(nil))
    assert.equal("true", pretty(true))
  end)

  it("sorts keys: sequence, numbers, strings, others", function()
    assert.equal('{3, 1, [10] = 0, a = "x", b = {c = true}}',
      pretty({3, 1, b = {c = true}, a = "x", [10] = 0}))
    assert.equal('{["a b"] = 1, ["end"] = 2}',
      pretty({["a b"] = 1, ["end"] = 2}))
  end)

  it("marks cycles", function()
    local t = {}
    t.me = t
    assert.equal("<1>{me = <cycle 1>}", pretty(t))
    local a, b = {}, {}
    a.b, b.a = b, a
    assert.equal("<1>{b = {a = <cycle 1>}}", pretty(a))
  end)

  it("truncates long tables with a count", function()
    local t = {}
    for i = 1, 120 do t[i] = i end
    local s = pretty(t, {items = 10})
    assert.truthy(s:find("...(110 more)", 1, true))
    assert.falsy(s:find("11,", 1, true))
  end)

  it("breaks wide tables over lines, nested indented", function()
    local t = {name = string.rep("x", 40), list = {string.rep("y", 50)}}
    assert.equal('{\n  list = {"' .. string.rep("y", 50) .. '"},\n' ..
      '  name = "' .. string.rep("x", 40) .. '"\n}', pretty(t))
  end)

  it("uses __tostring", function()
    local v = setmetatable({}, {__tostring = function() return "tcp{x}" end})
    assert.equal("{v = tcp{x}}", pretty({v = v}))
    local bad = setmetatable({}, {__tostring = function() error("no") end})
    assert.truthy(pretty(bad):find("__tostring failed", 1, true))
  end)

  it("prints json.null by its name", function()
    assert.equal("json.null", pretty(json.null))
    assert.equal("{a = json.null}", pretty({a = json.null}))
  end)

  it("prints several results tab-separated", function()
    assert.equal('1\t"x"\tnil', pretty.results(3, 1, "x", nil))
  end)
end)

describe("repl.complete", function()
  local function complete(line)
    return repl.complete(line, #line - #line:match("[%w_]*$"), #line)
  end

  it("completes globals and keywords", function()
    local words, append = complete("ipai")
    assert.same({"ipairs"}, words)
    assert.equal("(", append)
    assert.same({"local"}, (complete("x = 1; loca")))
  end)

  it("completes module fields after '.'", function()
    local words, append = complete("task.sl")
    assert.same({"sleep"}, words)
    assert.equal("(", append)
    words = complete("string.")
    assert.truthy(#words > 10)
    assert.same({"string"}, (complete("str")))
    assert.equal(".", select(2, complete("str")))
  end)

  it("completes methods after ':' through the metatable", function()
    _G.spec_task = spawn(function() end)
    local words = complete("spec_task:")
    assert.same({"cancel", "join", "name", "status"}, words)
    _G.spec_s = "abc"
    assert.same({"upper"}, (complete("spec_s:upp")))
    _G.spec_task, _G.spec_s = nil, nil
  end)

  it("reads tables only", function()
    local calls = 0
    _G.spec_lazy = setmetatable({}, {__index = function()
      calls = calls + 1
    end})
    assert.same({}, (complete("spec_lazy.x")))
    assert.equal(0, calls)
    _G.spec_lazy = nil
  end)

  it("completes the fields a module makes on first use (__fields)",
     function()
    local fresh = setmetatable({}, getmetatable(socket))  -- none loaded
    _G.spec_mod = fresh
    assert.same({"udp", "udp4", "udp6", "unix", "url"},
      (complete("spec_mod.u")))
    local words, append = complete("spec_mod.ur")
    assert.same({"url"}, words)
    assert.equal(".", append)
    assert.equal("(", select(2, complete("spec_mod.udp6")))
    assert.is_nil(rawget(fresh, "url"))      -- nothing was loaded
    _G.spec_mod = nil
  end)

  it("completes methods and fields of HTTP responses, not internals",
     function()
    local http = require "http"
    _G.spec_r = setmetatable({status = 200, reason = "OK", ok = true,
      url = "http://x/", body = "{}", elapsed = 0.1, _head = "",
      _more = {}}, http.Response)
    assert.same({"json"}, (complete("spec_r:j")))
    local methods = complete("spec_r:")
    for _, m in ipairs{"chunks", "close", "header_values", "json", "lines",
        "raise_for_status", "read", "text"} do
      assert.truthy(table.concat(methods, " "):find(m, 1, true), m)
    end
    local fields = table.concat((complete("spec_r.")), " ")
    for _, f in ipairs{"headers", "timings", "ip", "port", "status", "body",
        "http_version", "redirects", "reused"} do
      assert.truthy(fields:find("%f[%w_]" .. f .. "%f[^%w_]"), f)
    end
    assert.falsy(fields:find("_head", 1, true))
    assert.falsy(fields:find("_more", 1, true))
    assert.equal(".", select(2, complete("spec_r.timi")))
    assert.is_nil(rawget(spec_r, "timings"))     -- nothing was computed
    assert.same({"_head", "_more"}, (complete("spec_r._")))
    _G.spec_r = nil
  end)

  it("completes the globals netsh loads on first use", function()
    assert.equal("table", getmetatable(_G).__fields.json)
    local loaded = rawget(_G, "json")
    rawset(_G, "json", nil)             -- as before the first use
    assert.same({"json"}, (complete("jso")))
    assert.equal(".", select(2, complete("jso")))
    assert.same({"encode"}, (complete("json.enc")))
    rawset(_G, "json", loaded)
  end)

  it("does not complete after a call or a number", function()
    assert.same({}, (complete("f().")))
    assert.same({}, (complete("1.")))
  end)
end)

describe("help texts", function()
  it("name only what the README documents, and say the same", function()
    local src = os.getenv("NETSH_SRC") or "."
    local f = assert(io.open(src .. "/README.md"))
    local readme = f:read("a")
    f:close()
    for key in pairs(repl.docs) do
      local name = key:match("([%w_]+)$")
      assert.truthy(readme:find(name, 1, true), key .. " not in README")
    end
    -- json.decode raises; try_decode is the one that returns nil, err
    assert.matches("raises", repl.docs["json.decode"])
    assert.truthy(readme:find("`json.decode` raises", 1, true))
    assert.matches("nil, err", repl.docs["json.try_decode"])
  end)
end)
