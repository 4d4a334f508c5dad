-- fuzz_json_driver.lua -- json (lua/json.lua) on random text. Checks:
-- try_decode never raises, and fails exactly when decode raises (with a
-- "json.decode: " message); a bare integer literal in Lua's range decodes
-- to that integer; whatever decodes encodes without error, and decoding
-- that gives the same value again: same types (integers stay integers),
-- same numbers bit for bit, same strings, arrays stay arrays and objects
-- objects. The exception: a literal past the double range decodes to an
-- infinity, which encode refuses ("cannot encode inf"), as documented.
local json = require "json"
local mtype = math.type

local function same(a, b, path)
  if type(a) ~= type(b) then
    error(("round trip: %s: %s became %s"):format(path, type(a), type(b)))
  end
  if type(a) == "number" then
    if mtype(a) ~= mtype(b) or a ~= b then
      error(("round trip: %s: %s %s became %s %s"):format(path, mtype(a),
        string.format("%.17g", a), mtype(b), string.format("%.17g", b)))
    end
  elseif type(a) == "table" then
    if getmetatable(a) ~= getmetatable(b) then
      error(("round trip: %s: array/object kind changed"):format(path))
    end
    for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
    for k in pairs(b) do
      if a[k] == nil then error(("round trip: %s.%s appeared"):format(path,
        tostring(k))) end
    end
  elseif a ~= b then
    error(("round trip: %s: %q became %q"):format(path, tostring(a),
      tostring(b)))
  end
end

local function has_inf(v, depth)
  depth = depth or 0
  if type(v) == "number" then return v == math.huge or v == -math.huge end
  if type(v) == "table" and depth < 2000 then
    for _, x in pairs(v) do if has_inf(x, depth + 1) then return true end end
  end
  return false
end

-- the integer a decimal literal stands for, if it fits in 64 bits
local function literal_integer(s)
  local sign, digits = s:match("^%s*(%-?)0*(%d+)%s*$")
  if not digits then return nil end
  if #digits > 19 then return nil end
  local limit = sign == "-" and "9223372036854775808"
    or "9223372036854775807"
  if #digits == 19 and digits > limit then return nil end
  return math.tointeger(tonumber(sign .. digits)) or math.mininteger
end

return function(s)
  local v, err = json.try_decode(s)
  local ok, v2 = pcall(json.decode, s)
  if v == nil then
    assert(type(err) == "string", "try_decode: no message")
    assert(not ok, "decode accepted what try_decode refused: " .. err)
    assert(tostring(v2):find("json.decode: ", 1, true),
      "decode's message: " .. tostring(v2))
    return
  end
  assert(ok, "decode raised on what try_decode accepted: " .. tostring(v2))
  same(v, v2, "decode vs try_decode")
  local n = literal_integer(s)
  if n and s:match("^%s*%-?%d+%s*$") and not s:match("^%s*%-?0%d") then
    assert(mtype(v) == "integer" and v == n,
      ("integer literal %q decoded as %s %s"):format(s, mtype(v) or type(v),
        tostring(v)))
  end
  -- a literal past the double range (1e400) decodes to an infinity,
  -- which encode refuses, as documented: that is the one way out
  local okenc, text = pcall(json.encode, v)
  if not okenc then
    assert(tostring(text):match("^json%.encode: cannot encode %-?inf$")
      and has_inf(v), "encode: " .. tostring(text))
    return
  end
  local back = json.decode(text)
  same(v, back, "value")
end
