-- pretty.lua -- values as the REPL shows them: strings quoted and escaped,
-- tables with sorted keys, nesting (one line when it fits, indented
-- otherwise), cycles marked (<1>{self = <cycle 1>}), long tables cut with
-- a count, values with __tostring shown through it. Reads tables raw
-- (next, rawget): printing never runs __index or __pairs.
--   pretty(v [, opts]) -> string        opts: width, depth, items
--   pretty.results(n, ...) -> string    several values, tab-separated
local M = {}

M.width = 78     -- a table goes on one line when it fits in this
M.depth = 4      -- nesting shown before {...}
M.items = 50     -- entries shown per table before "... (n more)"
M.string = 1024  -- nested strings are cut after this many bytes

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end
M.keywords = keywords

local escapes = {
  ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t", ["\v"] = "\\v", ['"'] = '\\"',
  ["\\"] = "\\\\",
}

-- "..." with Lua escapes; UTF-8 text stays readable, other high bytes
-- and control characters become \xHH.
function M.quote(s)
  local class = utf8.len(s) and '[%c"\\]' or '[%c"\\\128-\255]'
  return '"' .. s:gsub(class, function(c)
    return escapes[c] or ("\\x%02X"):format(c:byte())
  end) .. '"'
end

local function is_name(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
    and not keywords[k]
end
M.is_name = is_name

local type_rank = {number = 1, string = 2, boolean = 3}

-- numbers, then strings, then booleans, then the rest by tostring
function M.key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    local ra, rb = type_rank[ta] or 4, type_rank[tb] or 4
    if ra ~= rb then return ra < rb end
    return ta < tb
  end
  if ta == "number" or ta == "string" then return a < b end
  if ta == "boolean" then return not a and b end
  return tostring(a) < tostring(b)
end

-- tostring through __tostring / __name, protected: a broken metamethod
-- must not hide the value.
local function meta_string(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return ("<%s: __tostring failed: %s>"):format(type(v), tostring(s))
end

local function has_tostring(v)
  local mt = debug.getmetatable(v)
  return mt ~= nil and rawget(mt, "__tostring") ~= nil
end

local function scalar(v, nested, opts)
  local tv = type(v)
  if tv == "string" then
    local limit = opts.string or M.string
    if nested and #v > limit then
      return M.quote(v:sub(1, limit)) .. ("...(%d bytes)"):format(#v)
    end
    return M.quote(v)
  elseif tv == "number" then
    if math.type(v) == "float" and v ~= v then return "nan" end
    return tostring(v)
  elseif tv == "userdata" then
    local json = package.loaded.json or package.loaded.cjson
    if json and v == json.null then return "json.null" end
  end
  return meta_string(v)
end

local render

local function render_table(t, st, indent)
  if st.path[t] then
    st.ncycles = st.ncycles + (st.ids[t] and 0 or 1)
    st.ids[t] = st.ids[t] or st.ncycles
    return "<cycle " .. st.ids[t] .. ">"
  end
  local depth = st.depth
  if depth >= st.maxdepth then
    return next(t) == nil and "{}" or "{...}"
  end
  st.path[t] = true
  st.depth = depth + 1
  local parts, n, shown = {}, 0, 0
  local maxitems = st.items
  -- the sequence 1..#t first, in order, without keys
  local len = rawlen(t)
  for i = 1, len do
    n = n + 1
    if shown < maxitems then
      shown = shown + 1
      parts[shown] = render(rawget(t, i), st, indent + 1)
    end
  end
  local nseq = shown
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= len) then
      keys[#keys + 1] = k
    end
  end
  n = n + #keys
  if shown < maxitems then
    table.sort(keys, M.key_less)
    for _, k in ipairs(keys) do
      if shown >= maxitems then break end
      local ks
      if is_name(k) then ks = k
      elseif type(k) == "table" and not has_tostring(k) then
        ks = "[" .. meta_string(k) .. "]"
      else ks = "[" .. scalar(k, true, st) .. "]" end
      shown = shown + 1
      parts[shown] = ks .. " = " .. render(rawget(t, k), st, indent + 1)
    end
  end
  if n > shown then parts[#parts + 1] = ("...(%d more)"):format(n - shown) end
  st.path[t] = nil
  st.depth = depth
  local label = st.ids[t] and ("<" .. st.ids[t] .. ">") or ""
  if #parts == 0 then return label .. "{}" end
  local one = label .. "{" .. table.concat(parts, ", ") .. "}"
  if #one + indent * 2 <= st.width and not one:find("\n", 1, true) then
    return one
  end
  -- one entry per line; short sequence items share lines, filled up
  local pad = string.rep("  ", indent + 1)
  local lines, cur = {}, nil
  for i, p in ipairs(parts) do
    local short = i <= nseq and not p:find("\n", 1, true)
    if cur and short and #cur + #p + 2 + #pad <= st.width then
      cur = cur .. ", " .. p
    else
      if cur then lines[#lines + 1] = cur end
      cur = p
      if not short then
        lines[#lines + 1] = cur
        cur = nil
      end
    end
  end
  if cur then lines[#lines + 1] = cur end
  return label .. "{\n" .. pad .. table.concat(lines, ",\n" .. pad) ..
    "\n" .. string.rep("  ", indent) .. "}"
end

function render(v, st, indent)
  if type(v) == "table" and not has_tostring(v) then
    return render_table(v, st, indent)
  end
  return scalar(v, indent > 0, st)
end

local function state(opts)
  opts = opts or {}
  return {path = {}, ids = {}, ncycles = 0, depth = 0,
    maxdepth = opts.depth or M.depth, items = opts.items or M.items,
    width = opts.width or M.width, string = opts.string}
end

function M.pretty(v, opts)
  return render(v, state(opts), 0)
end

-- results(n, ...) -> the n values, tab-separated (lua(1) style)
function M.results(n, ...)
  local out = {}
  for i = 1, n do out[i] = M.pretty((select(i, ...))) end
  return table.concat(out, "\t")
end

return setmetatable(M, {__call = function(_, v, opts)
  return M.pretty(v, opts)
end})
