-- json.lua -- the "json" module (also the global `json`): lua-cjson made
-- exact for Lua 5.4. Parsing is cjson's; src/json_aux.c ("json.aux")
-- fixes what cjson 2.1.0 gets wrong and does the encoding.
--
-- Numbers. A JSON number whose value is an integer in the range of Lua
-- integers decodes to a Lua integer (1, -0, 1.0 and 1e3 give integers);
-- other numbers give floats (1.5, 1e300). Integer literals are read
-- exactly up to 64 bits (9007199254740993 stays 9007199254740993); a
-- literal with a fraction or an exponent goes through a double first.
-- Encoding writes every Lua integer exactly, integral floats as integers,
-- other floats with the fewest digits (up to 17) that read back the same.
-- NaN and infinities cannot be encoded.
--
-- Arrays and objects. Decoded arrays carry json.array_mt, so an array
-- stays an array when re-encoded, even empty: decode("[]") encodes as
-- "[]", decode("{}") as "{}". When encoding, a table with json.array_mt
-- is an array of t[1..#t] (json.array(t) refuses other keys; keys added
-- after marking are ignored); with json.object_mt an
-- object (number keys become strings); a plain table is an array when its
-- keys are exactly 1..n, possibly with a few holes written as null, and
-- an object otherwise -- so a plain empty table is "{}". Mark with
-- json.array(t) / json.object(t). Nesting is limited to 1000 levels.
--
-- null. JSON null decodes to json.null (cjson.null, the same value);
-- json.null and nil (as in holes) encode as null.
--
-- Strings are bytes: \u escapes decode to UTF-8, and encode escapes only
-- what JSON requires (quote, backslash, control characters), writing
-- other bytes as they are; binary data should be base64-encoded first.
--
-- Errors. decode raises "json.decode: <what> at character <n>" for
-- invalid JSON (strict RFC 8259; "01", "1.", NaN are rejected);
-- try_decode returns nil, that message instead. encode raises on values
-- JSON cannot hold (functions, NaN, cycles: "json.encode: ...").
--
-- Options of encode(value, opts): pretty = true (2-space indent, sorted
-- keys, for humans); indent = n spaces; sort_keys = true (stable output).
local cjson = require "cjson"
local aux = require "json.aux"

-- Private instances: a script configuring the shared `cjson` module does
-- not change json. The lenient one also reads the NaN markers json.aux
-- writes (its scan has already rejected NaN/Infinity in the input) and
-- one more level of nesting, which the long-integer marker adds.
local strict = cjson.new()
strict.decode_invalid_numbers(false)
local lenient = cjson.new()
lenient.decode_invalid_numbers(true)
lenient.decode_max_depth(1001)

local M = {
  null = cjson.null,
  array_mt = aux.array_mt,
  object_mt = aux.object_mt,
  encode = aux.encode,
}

local array_mt, object_mt = aux.array_mt, aux.object_mt
local encode = aux.encode
local setmetatable, type = setmetatable, type

-- decode(s) -> value; raises on invalid JSON
-- try_decode(s) -> value | nil, err
M.decode, M.try_decode = aux.decoder(strict.decode, lenient.decode)

-- array([t]) -> t marked as a JSON array (a new table without t).
-- Raises when t has a key encode would drop: anything but 1..#t.
function M.array(t)
  if t ~= nil and type(t) ~= "table" then
    error("bad argument #1 to 'array' (table expected, got "
      .. type(t) .. ")", 2)
  end
  if t then
    local n = rawlen(t)
    for k in next, t do
      if math.type(k) ~= "integer" or k < 1 or k > n then
        local what = type(k) == "string" and ("'" .. k .. "'")
          or type(k) == "number" and tostring(k)
          or "of type " .. type(k)
        error("bad argument #1 to 'array' (non-array key " .. what
          .. ")", 2)
      end
    end
  end
  return setmetatable(t or {}, array_mt)
end

-- object([t]) -> t marked as a JSON object
function M.object(t)
  if t ~= nil and type(t) ~= "table" then
    error("bad argument #1 to 'object' (table expected, got "
      .. type(t) .. ")", 2)
  end
  return setmetatable(t or {}, object_mt)
end

-- print(value [, opts]) writes one JSON line to stdout and flushes it, for
-- JSON-lines output in pipelines (`... | jq`). Keys are sorted unless
-- opts says otherwise, so the output is stable.
local print_opts = {sort_keys = true}
function M.print(value, opts)
  local out = io.stdout
  out:write(encode(value, opts or print_opts), "\n")
  out:flush()
end

return M
