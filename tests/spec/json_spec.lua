-- json_spec.lua -- the json module: exact integers both ways, floats,
-- empty arrays vs objects, null, unicode, pretty output, errors, and
-- lua-cjson still there underneath, unchanged.
local json = require "json"
local cjson = require "cjson"

local function errmsg(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return err
end

local function contains(s, part)
  assert.is_truthy(s:find(part, 1, true),
    ("%q does not contain %q"):format(s, part))
end

local sorted = {sort_keys = true}

describe("json numbers", function()
  it("decodes integer literals to Lua integers", function()
    local t = json.decode("[0, 1, -7, 42, 1234567890123]")
    assert.same({0, 1, -7, 42, 1234567890123}, t)
    for i = 1, 5 do assert.equal("integer", math.type(t[i])) end
    assert.equal("integer", math.type(json.decode("5")))
    assert.equal("integer", math.type(json.decode('{"n": 3}').n))
  end)

  it("decodes other integral values in range to integers too", function()
    local t = json.decode("[1.0, 1e3, -2.50e1, 0.0, -0]")
    assert.same({1, 1000, -25, 0, 0}, t)
    for i = 1, 5 do assert.equal("integer", math.type(t[i])) end
  end)

  it("reads integers beyond 2^53 exactly, up to 64 bits", function()
    local t = json.decode(
      "[9007199254740993, 9223372036854775807, -9223372036854775808," ..
      " 1234567890123456789, -9007199254740993]")
    assert.equal(9007199254740993, t[1])
    assert.equal(math.maxinteger, t[2])
    assert.equal(math.mininteger, t[3])
    assert.equal(1234567890123456789, t[4])
    assert.equal(-9007199254740993, t[5])
    for i = 1, 5 do assert.equal("integer", math.type(t[i])) end
    -- raw cjson goes through a double and loses the last digit
    assert.equal(9007199254740992, cjson.decode("[9007199254740993]")[1])
    -- also at the top level and as object members
    assert.equal(9007199254740993, json.decode("9007199254740993"))
    assert.equal(-9007199254740993,
      json.decode('{"a": {"b": -9007199254740993}}').a.b)
  end)

  it("round-trips big integers exactly", function()
    for _, n in ipairs{9007199254740993, math.maxinteger, math.mininteger,
        math.maxinteger - 1, 1000000000000001, -4611686018427387907} do
      local s = json.encode(n)
      assert.equal(tostring(n), s)
      local back = json.decode(s)
      assert.equal("integer", math.type(back))
      assert.equal(n, back)
    end
  end)

  it("decodes numbers outside the integer range as floats", function()
    local t = json.decode("[9223372036854775808, -9223372036854775809," ..
      " 1e19, 1e300, 123456789012345678901234567890]")
    for i = 1, 5 do assert.equal("float", math.type(t[i])) end
    assert.equal(2^63, t[1])
    assert.equal(1e300, t[4])
  end)

  it("keeps floats floats", function()
    local t = json.decode("[1.5, -0.25, 1e-3, 3.14159, 2.5E2, 1.25e-10]")
    assert.same({1.5, -0.25, 1e-3, 3.14159, 250, 1.25e-10}, t)
    for _, i in ipairs{1, 2, 3, 4, 6} do
      assert.equal("float", math.type(t[i]))
    end
  end)

  it("encodes floats with every digit they need", function()
    local values = {0.1, 1 / 3, math.pi, -2.5, 1e-7, 123456.789, 1e300,
      5e-324, 1.7976931348623157e308, 0.1 + 0.2, 1712345678.123456}
    local back = json.decode(json.encode(values))
    for i, v in ipairs(values) do
      assert.equal(v, back[i])
      assert.equal("float", math.type(back[i]))
    end
    assert.equal("0.1", json.encode(0.1))
    assert.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.equal("-2.5", json.encode(-2.5))
    -- cjson 2.1.0 stops at 14 digits
    assert.equal("1712345678.1235", cjson.encode(1712345678.123456))
    assert.equal("1712345678.123456", json.encode(1712345678.123456))
  end)

  it("encodes math.maxinteger and math.mininteger exactly", function()
    assert.equal("9223372036854775807", json.encode(math.maxinteger))
    assert.equal("-9223372036854775808", json.encode(math.mininteger))
    assert.equal("[9223372036854775807,-9223372036854775808]",
      json.encode({math.maxinteger, math.mininteger}))
    assert.equal("9007199254740993", json.encode(9007199254740993))
    assert.equal("9.007199254741e+15", cjson.encode(9007199254740993))
  end)

  it("writes integral floats as integers", function()
    assert.equal("[2,-3,0,9007199254740992,1e+300]",
      json.encode({2.0, -3.0, -0.0, 2^53, 1e300}))
  end)

  it("refuses NaN and infinities", function()
    contains(errmsg(json.encode, {0 / 0}), "json.encode: cannot encode NaN")
    contains(errmsg(json.encode, math.huge), "cannot encode inf")
    contains(errmsg(json.encode, {x = -math.huge}), "cannot encode -inf")
  end)
end)

describe("json arrays and objects", function()
  it("round-trips [] and {} at every level", function()
    assert.equal("[]", json.encode(json.decode("[]")))
    assert.equal("{}", json.encode(json.decode("{}")))
    assert.equal("[]", json.encode(json.decode(" [ \n\t ] ")))
    local s = '{"a":[],"b":{},"c":[[],{},[[]]],"d":{"e":[]}}'
    assert.equal(s, json.encode(json.decode(s), sorted))
    -- raw cjson cannot tell them apart
    assert.equal('{"a":{}}', cjson.encode(cjson.decode('{"a":[]}')))
  end)

  it("marks decoded arrays with json.array_mt, not objects", function()
    local t = json.decode('{"list": [1, 2], "empty": [], "obj": {}}')
    assert.equal(json.array_mt, getmetatable(t.list))
    assert.equal(json.array_mt, getmetatable(t.empty))
    assert.is_nil(getmetatable(t.obj))
    assert.is_nil(getmetatable(t))
    assert.equal(0, #t.empty)
    assert.is_nil(next(t.empty))
    -- an array emptied by the program is still an array
    table.remove(t.list)
    table.remove(t.list)
    assert.equal('{"empty":[],"list":[],"obj":{}}', json.encode(t, sorted))
  end)

  it("lets the program say which it means", function()
    assert.equal("[]", json.encode(json.array()))
    assert.equal("[]", json.encode(json.array({})))
    assert.equal("{}", json.encode(json.object()))
    assert.equal("{}", json.encode({}))   -- a plain empty table
    assert.equal('{"1":"a","2":"b"}', json.encode(json.object{"a", "b"}))
    assert.equal('["a",null,"c"]', json.encode(json.array{"a", nil, "c"}))
    local t = {}
    assert.equal(t, json.array(t))
    contains(errmsg(json.array, 5), "bad argument #1 to 'array'")
  end)

  it("json.array refuses a table with keys an array cannot hold", function()
    -- encoding would drop them silently (issue 22)
    contains(errmsg(json.array, {a = 1}),
      "bad argument #1 to 'array' (non-array key 'a')")
    contains(errmsg(json.array, {"a", "b", x = 1}),
      "bad argument #1 to 'array' (non-array key 'x')")
    contains(errmsg(json.array, {[0] = 1}), "(non-array key 0)")
    contains(errmsg(json.array, {[1.5] = 1}), "(non-array key 1.5)")
    contains(errmsg(json.array, {[true] = 1}),
      "(non-array key of type boolean)")
    local t = {1, 2}
    assert.equal(t, json.array(t))   -- the table is left as it was
    assert.same({1, 2}, t)
  end)

  it("decides the shape of plain tables like cjson", function()
    assert.equal("[1,2,3]", json.encode({1, 2, 3}))
    assert.equal("[1,null,3]", json.encode({1, nil, 3}))
    assert.equal('{"1":1,"20":2}', json.encode({[1] = 1, [20] = 2}))
    assert.equal('{"1":1,"2":2,"x":3}', json.encode({1, 2, x = 3}, sorted))
    assert.equal('{"-2":"b","1.5":"a"}',
      json.encode({[1.5] = "a", [-2] = "b"}, sorted))
  end)

  it("round-trips nested structures", function()
    local doc = {
      id = 12, name = "netsh", ratio = 0.75, ok = true, off = false,
      tags = json.array{"a", "b"}, none = json.array(), meta = {},
      owner = {name = "x", ids = {1, 2, 9007199254740993},
        deep = {{{{"bottom"}}}}},
      matrix = {{1, 2}, {3, 4}}, nothing = json.null,
    }
    local s = json.encode(doc, sorted)
    local back = json.decode(s)
    assert.same(doc, back)
    assert.equal(s, json.encode(back, sorted))
    assert.equal("bottom", back.owner.deep[1][1][1][1])
    assert.equal(json.array_mt, getmetatable(back.none))
  end)

  it("never takes data for its internal markers", function()
    -- text that looks like the rewritten forms, in strings and as data
    local s = '{"k[]":"[nan]","q":"a\\\\","e":[],"s":"[nan,\\"1\\"]",' ..
      '"n":[null],"m":[null,"9007199254740993"],"b":9007199254740993,' ..
      '"x":"\\"[]\\"","y":"\\\\"}'
    local t = json.decode(s)
    assert.equal("[nan]", t["k[]"])
    assert.equal("a\\", t.q)
    assert.same({}, t.e)
    assert.equal('[nan,"1"]', t.s)
    assert.same({json.null}, t.n)
    assert.same({json.null, "9007199254740993"}, t.m)
    assert.equal(9007199254740993, t.b)
    assert.equal('"[]"', t.x)
    assert.equal("\\", t.y)
    assert.same(t, json.decode(json.encode(t)))
  end)

  it("limits nesting to 1000 levels, as cjson does", function()
    local ok = ("["):rep(1000) .. ("]"):rep(1000)
    assert.is_table(json.decode(ok))
    local big = ("["):rep(1000) .. "9007199254740993" .. ("]"):rep(1000)
    local v = json.decode(big)
    for _ = 1, 999 do v = v[1] end
    assert.equal(9007199254740993, v[1])
    local deep = ("["):rep(1001) .. ("]"):rep(1001)
    local r, err = json.try_decode(deep)
    assert.is_nil(r)
    contains(err, "too many nested data structures (1001)")
    local t = {}
    t.self = t
    contains(errmsg(json.encode, t), "nested deeper than 1000")
  end)
end)

describe("json null, strings and unicode", function()
  it("decodes null to json.null, which is cjson.null", function()
    assert.equal(cjson.null, json.null)
    local t = json.decode('[1, null, 3, {"a": null}]')
    assert.equal(4, #t)
    assert.equal(json.null, t[2])
    assert.equal(json.null, t[4].a)
    assert.equal(json.null, json.decode("null"))
    assert.equal('[1,null,3,{"a":null}]', json.encode(t))
    assert.equal("null", json.encode(nil))
  end)

  it("decodes unicode escapes to UTF-8", function()
    assert.equal("é", json.decode('"\\u00e9"'))
    assert.equal("\u{20AC}", json.decode('"\\u20AC"'))
    assert.equal("\u{1F600}", json.decode('"\\ud83d\\ude00"'))
    assert.equal("a\0b", json.decode('"a\\u0000b"'))
    assert.equal("\"\\/\b\f\n\r\t", json.decode('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
    -- raw UTF-8 passes through
    assert.equal("héllo ✓", json.decode('"héllo ✓"'))
  end)

  it("escapes only what JSON requires, UTF-8 stays as is", function()
    assert.equal('"a/b é \\"q\\" \\\\ \\n\\t\\r\\b\\f \\u0000\\u001f\\u007f"',
      json.encode("a/b é \"q\" \\ \n\t\r\b\f \0\31\127"))
    local s = "\u{1F600} \0 \1 tab\t"
    assert.equal(s, json.decode(json.encode(s)))
  end)

  it("handles long strings, escapes across any boundary", function()
    local parts = {}
    for i = 1, 3000 do parts[i] = ("x"):rep(i % 5) .. "\"\n\\/é" end
    local s = table.concat(parts)
    local text = json.encode({s, s})
    assert.same({s, s}, json.decode(text))
    assert.equal(#s + 3 * 3000 + 2, #json.encode(s))
  end)
end)

describe("json.encode options", function()
  it("pretty-prints with 2 spaces and sorted keys", function()
    local doc = {name = "x", list = {1, 2, {a = true}}, empty = json.array(),
      obj = {}, z = json.null, n = 1.5}
    assert.equal([[
{
  "empty": [],
  "list": [
    1,
    2,
    {
      "a": true
    }
  ],
  "n": 1.5,
  "name": "x",
  "obj": {},
  "z": null
}]], json.encode(doc, {pretty = true}))
    assert.equal("{}", json.encode({}, {pretty = true}))
    assert.equal('"s"', json.encode("s", {pretty = true}))
  end)

  it("takes indent and sort_keys", function()
    assert.equal("[\n    1,\n    [\n        2\n    ]\n]",
      json.encode({1, {2}}, {indent = 4}))
    assert.equal('{"a":1,"b":2,"c":3}',
      json.encode({c = 3, a = 1, b = 2}, {sort_keys = true}))
    assert.equal('{\n "a": 1,\n "b": 2\n}',
      json.encode({b = 2, a = 1}, {indent = 1, sort_keys = true}))
    assert.equal('[1,{"a":[]}]', json.encode({1, {a = json.array()}},
      {pretty = true, indent = 0, sort_keys = false}))
    contains(errmsg(json.encode, {}, {indent = -1}), "indent must be")
    contains(errmsg(json.encode, {}, 5), "bad argument #2")
  end)

  it("json.print writes one sorted JSON line and flushes", function()
    local netsh = os.getenv("NETSH") or "build/netsh"
    local p = assert(io.popen(netsh ..
      [[ -e 'json.print({b = 1, a = {2, 3}, c = json.array()});
             json.print("x", {}); os.exit(0)']]))
    local out = p:read("a")
    p:close()
    assert.equal('{"a":[2,3],"b":1,"c":[]}\n"x"\n', out)
  end)
end)

describe("json errors", function()
  it("raises on invalid JSON with what and where", function()
    local err = errmsg(function() return json.decode("[1, 2,]") end)
    contains(err, "json_spec.lua:")           -- the caller's line
    contains(err, "json.decode: expected value but found ']' at character 7")
    contains(errmsg(json.decode, '{"a" 1}'),
      "expected colon but found a number at character 6")
    contains(errmsg(json.decode, ""), "found the end at character 1")
    contains(errmsg(json.decode, '"abc'), "unexpected end of string")
    contains(errmsg(json.decode, "[1] x"),
      "expected the end but found invalid token at character 5")
    contains(errmsg(json.decode, '["\\ud800"]'), "invalid unicode escape")
    contains(errmsg(json.decode, "[1,[]"), "at character 6")
  end)

  it("is strict about numbers and words", function()
    for _, s in ipairs{"[01]", "[1.]", "[.5]", "[+1]", "[-]", "[1e]",
        "[0x10]", "[NaN]", "[nan]", "[Infinity]", "[-inf]", "[tru]",
        "[1]\0"} do
      local v, err = json.try_decode(s)
      assert.is_nil(v, s)
      contains(err, "json.decode: ")
      contains(err, " at character ")
    end
  end)

  it("try_decode returns nil and the message instead", function()
    local v, err = json.try_decode("{")
    assert.is_nil(v)
    assert.equal("json.decode: expected object key string but found " ..
      "the end at character 2", err)
    assert.same({1}, (json.try_decode("[1]")))
    -- a wrong argument type is still a programmer error
    contains(errmsg(json.try_decode, nil), "bad argument #1")
    contains(errmsg(json.decode, {}), "bad argument #1")
  end)

  it("names what cannot be encoded", function()
    contains(errmsg(json.encode, {f = print}),
      "json.encode: cannot encode a function")
    contains(errmsg(json.encode, {[true] = 1}),
      "cannot encode a boolean as an object key")
    contains(errmsg(json.encode, coroutine.create(print)),
      "cannot encode a thread")
    local err = errmsg(function() return json.encode({print}) end)
    contains(err, "json_spec.lua:")
  end)
end)

describe("json and lua-cjson", function()
  it("leaves cjson loadable and as it was", function()
    assert.equal("2.1.0", cjson._VERSION)
    assert.equal("float", math.type(cjson.decode("[1]")[1]))
    assert.equal('[1,"a"]', cjson.encode({1, "a"}))
    assert.equal(package.loaded.cjson, require "cjson")
  end)

  it("does not follow settings made on the shared cjson", function()
    local prec = cjson.encode_number_precision()
    cjson.encode_number_precision(3)
    local ok, err = pcall(function()
      assert.equal("3.14159", json.encode(3.14159))
      assert.equal("3.14", cjson.encode(3.14159))
    end)
    cjson.encode_number_precision(prec)
    assert(ok, err)
  end)

  it("is the lazy global json", function()
    assert.equal(json, _G.json)
  end)

  it("keeps working when a finalizer encodes during an encode", function()
    local inner = 0
    for _ = 1, 200 do
      setmetatable({}, {__gc = function()
        if json.encode({x = 1}) == '{"x":1}' then inner = inner + 1 end
      end})
    end
    local doc = {}
    for i = 1, 2000 do doc[i] = {[i] = i, name = ("n"):rep(i % 7)} end
    local before = json.encode(doc, sorted)
    collectgarbage("collect")   -- the 200 finalizers may run anywhere
    for _ = 1, 200 do
      setmetatable({}, {__gc = function()
        if json.encode({x = 1}) == '{"x":1}' then inner = inner + 1 end
      end})
    end
    assert.equal(before, json.encode(doc, sorted))
    collectgarbage("collect")
    assert.equal(400, inner)
  end)

  it("round-trips generated documents", function()
    local seed = 7
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    end
    local function gen(depth)
      local k = rnd(depth > 3 and 6 or 8)
      if k == 0 then return rnd(2) == 1 end
      if k == 1 then return json.null end
      if k == 2 then return rnd(2^31) * (rnd(2) == 1 and 2^31 or 1) - 2^40 end
      if k == 3 then return rnd(1000000) / 977 end
      if k == 4 then return ("s\"\\\n/é"):sub(1, rnd(9)) .. rnd(100) end
      if k == 5 then return rnd(2) == 1 and json.array() or {} end
      if k == 6 then
        local t = json.array()
        for i = 1, rnd(5) + 1 do t[i] = gen(depth + 1) end
        return t
      end
      local t = {}
      for _ = 1, rnd(5) + 1 do t["k" .. rnd(50)] = gen(depth + 1) end
      return t
    end
    for _ = 1, 300 do
      local v = gen(0)
      local s = json.encode(v, sorted)
      assert.equal(s, json.encode(json.decode(s), sorted))
      local p = json.encode(v, {pretty = true})
      assert.equal(s, json.encode(json.decode(p), sorted))
    end
  end)
end)
