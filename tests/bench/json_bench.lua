-- json_bench.lua -- json (netsh) against raw lua-cjson on the same data:
-- decode and encode of an ordinary document (~4 KB of mixed types, as an
-- HTTP API returns) and of a large one (~1 MB), each with and without
-- empty arrays (json rewrites the text before cjson parses it when there
-- are some). Prints time per operation and the json/cjson ratio.
--
-- Run: build/netsh tests/bench/json_bench.lua [seconds per measurement]
-- (default 1; every loop is bounded by that time and by a count).
local cjson = require "cjson"
local json = require "json"

local budget = tonumber(arg and arg[1]) or 1

-- a deterministic pseudo-random generator, so runs compare
local seed = 42
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end

local words = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
  "golf", "hotel", "india", "juliett", "kilo", "lima", "mike"}
local function word() return words[rnd(#words) + 1] end

-- one record of a typical API answer: ids, names, flags, a float, a
-- nested object, a small array, sometimes an empty array and a null
local function record(i, empties)
  local tags = {}
  for k = 1, rnd(4) + (empties and 0 or 1) do tags[k] = word() end
  return {
    id = 100000 + i,
    name = word() .. " " .. word(),
    email = word() .. i .. "@example.com",
    active = rnd(2) == 1,
    score = rnd(100000) / 100,
    created = 1700000000 + rnd(10000000),
    tags = tags,
    address = {street = rnd(200) .. " " .. word() .. " street",
      city = word(), zip = tostring(10000 + rnd(89999))},
    manager = rnd(3) == 0 and cjson.null or 1000 + rnd(100),
    note = "line one\nline \"two\"\tend",
  }
end

local function document(n, empties)
  local items = {}
  for i = 1, n do items[i] = record(i, empties) end
  return {total = n, page = 1, items = items, next = cjson.null}
end

local clock = os.clock

-- seconds per call of f(x): the best of 5 rounds of about budget/5 each,
-- as the machine may be shared
local function measure(f, x)
  f(x)
  local best = math.huge
  for _ = 1, 5 do
    local n, t0 = 0, clock()
    local elapsed
    repeat
      for _ = 1, 10 do f(x) end
      n = n + 10
      elapsed = clock() - t0
    until elapsed >= budget / 5 or n >= 200000
    best = math.min(best, elapsed / n)
  end
  return best
end

local function fmt_time(s)
  if s < 1e-3 then return ("%8.1f us"):format(s * 1e6) end
  return ("%8.2f ms"):format(s * 1e3)
end

local function row(what, base, ours)
  print(("%-40s %s %s %6.2fx"):format(what, fmt_time(base),
    fmt_time(ours), ours / base))
end

print(("%-40s %11s %11s %7s"):format("", "cjson", "json", "ratio"))
local cases = {
  {"ordinary", 16, false}, {"ordinary, empty arrays", 16, true},
  {"large", 4000, false}, {"large, empty arrays", 4000, true},
}
for _, c in ipairs(cases) do
  local name, n, empties = c[1], c[2], c[3]
  local doc = document(n, empties)
  local text = json.encode(doc)
  local sorted = {sort_keys = true}
  assert(json.encode(doc, sorted) == json.encode(json.decode(text), sorted),
    "round trip")
  local label = ("%s (%d KB)"):format(name, math.floor(#text / 1024 + 0.5))
  row("decode " .. label, measure(cjson.decode, text),
    measure(json.decode, text))
  row("encode " .. label, measure(cjson.encode, doc),
    measure(json.encode, doc))
end
