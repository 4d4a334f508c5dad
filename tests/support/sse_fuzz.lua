-- sse_fuzz.lua -- a randomized check of the server-sent events parser
-- (http.sse_parser in lua/http.lua), for fuzzing runs: the parser is Lua,
-- so this takes the place of a libFuzzer target.
--
--   netsh tests/support/sse_fuzz.lua [--seconds S] [--seed N] [FILE...]
--
-- Each FILE (a corpus entry), mutations of them, and streams built from
-- the tricky parts of the format are fed whole, in random pieces and a
-- byte at a time: every way must give the same events, last event ID and
-- retry, and the parser must never raise. Runs S seconds (default 10).
-- Exit 0, or 1 with the seed and the stream (%q) on stderr.
local http = require "http"

local seconds, seed, files = 10, os.time(), {}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--seconds" or a == "--seed" then
    local v = tonumber(arg[i + 1])
    if not v then die(a .. " needs a number", 2) end
    if a == "--seconds" then seconds = v else seed = math.tointeger(v) end
    i = i + 2
  else
    files[#files + 1] = a
    i = i + 1
  end
end

local corpus = {}
for _, f in ipairs(files) do
  local h = io.open(f, "rb")
  if not h then die("cannot read " .. f, 2) end
  corpus[#corpus + 1] = h:read("a")
  h:close()
end

local PARTS = {"data: ", "data:", "data", "id: ", "id", "event: ",
  "event", "retry: ", "retry: 12", "retry: 1x", ":", ": c", "x", "yz",
  " ", "\r", "\n", "\r\n", "\n\n", "\r\r", "\r\n\r\n", "\239\187\191",
  "\239\187", "\0", "\195\169", "1"}

local function parts_stream(rnd)
  local out = {}
  if rnd(4) == 1 then out[1] = "\239\187\191" end
  for _ = 1, rnd(80) do out[#out + 1] = PARTS[rnd(#PARTS)] end
  return table.concat(out)
end

local function mutate(s, rnd)
  for _ = 1, rnd(8) do
    local p = rnd(0, #s)
    local what = rnd(3)
    if what == 1 then          -- insert a part
      s = s:sub(1, p) .. PARTS[rnd(#PARTS)] .. s:sub(p + 1)
    elseif what == 2 and #s > 0 then   -- delete a byte
      s = s:sub(1, p - 1) .. s:sub(p + 1)
    else                       -- a random byte
      s = s:sub(1, p) .. string.char(rnd(0, 255)) .. s:sub(p + 2)
    end
  end
  return s
end

local function feed_all(pieces)
  local p = http.sse_parser()
  local evs = {}
  for _, c in ipairs(pieces) do
    for _, ev in ipairs(p:feed(c)) do evs[#evs + 1] = ev end
  end
  return evs, p
end

local function same(a, b)
  if #a ~= #b then return false end
  for k = 1, #a do
    local x, y = a[k], b[k]
    if x.event ~= y.event or x.data ~= y.data or x.id ~= y.id
        or x.retry ~= y.retry then
      return false
    end
  end
  return true
end

local function check(s, rnd)
  local ok, whole, pw = pcall(feed_all, {s})
  if not ok then return false, "raised: " .. tostring(whole) end
  local pieces, k = {}, 1
  while k <= #s do
    local n = rnd(4) == 1 and 0 or rnd(1, 16)
    pieces[#pieces + 1] = s:sub(k, k + n - 1)
    k = k + n
  end
  local ok2, split, ps = pcall(feed_all, pieces)
  if not ok2 then return false, "raised: " .. tostring(split) end
  if not same(whole, split) or pw.id ~= ps.id or pw.retry ~= ps.retry then
    return false, "random pieces differ"
  end
  local bytes = {}
  for j = 1, #s do bytes[j] = s:sub(j, j) end
  local ok3, one, pb = pcall(feed_all, bytes)
  if not ok3 then return false, "raised: " .. tostring(one) end
  if not same(whole, one) or pw.id ~= pb.id then
    return false, "byte at a time differs"
  end
  return true
end

math.randomseed(seed)
local rnd = math.random
local t0, n = os.clock(), 0
local function run(s)
  n = n + 1
  local ok, why = check(s, rnd)
  if not ok then
    io.stderr:write(("sse_fuzz: %s (seed %d, case %d)\nstream: %q\n")
      :format(why, seed, n, s))
    os.exit(1)
  end
end
for _, s in ipairs(corpus) do run(s) end
repeat
  if #corpus > 0 and rnd(2) == 1 then
    run(mutate(corpus[rnd(#corpus)], rnd))
  else
    run(rnd(3) == 1 and mutate(parts_stream(rnd), rnd) or parts_stream(rnd))
  end
until os.clock() - t0 >= seconds
print(("sse_fuzz: %d streams, seed %d, no difference"):format(n, seed))
