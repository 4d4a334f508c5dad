-- histogram.lua -- a log-linear latency histogram (HdrHistogram's idea)
-- that http_bench puts in its --json line, so runs on many hosts merge
-- into the percentiles of one run over all their samples.
--
--   local histogram = require "netsh.histogram"
--   local h = histogram.new()
--   h:add(0.0123)                 -- seconds
--   h:percentile(0.99)            -- seconds, within 0.4 %
--   h:merge(histogram.decode(t))  -- t: a decoded "histogram" field
--   h:encode()    -- {unit = "us", sig_bits = 8, count = n,
--                 --  buckets = {{lo, n}...}}
--
-- Values are whole microseconds. Below 2^8 us each microsecond is its own
-- bucket; above, each power of two is cut into 128 equal buckets, so a
-- bucket [lo, lo + w) has w <= lo / 128: any value is known to 0.78 %,
-- and a percentile (the bucket's middle) to 0.4 % (+ 0.5 us rounding).
-- Percentiles use the nearest-rank rule (the ceil(n * p)-th smallest),
-- as http_bench's exact ones do. Merging is adding counts: exact.
local M = {SIG_BITS = 8, UNIT = "us"}

local SIG = M.SIG_BITS
local EXACT = 1 << SIG

-- the number of bits of v > 0: log2 in floating point, then corrected
-- by one either way where rounding put it off
local log, floor = math.log, math.floor
local function bitlen(v)
  local n = floor(log(v, 2)) + 1
  if 1 << (n - 1) > v then n = n - 1
  elseif 1 << n <= v then n = n + 1 end
  return n
end

-- bucket(us) -> lo, width: the bucket holding a whole number of us
function M.bucket(us)
  if us < EXACT then return us, 1 end
  local e = bitlen(us) - SIG
  return (us >> e) << e, 1 << e
end

local H = {}
H.__index = H

function M.new()
  return setmetatable({counts = {}, count = 0}, H)
end

-- h:add(seconds [, n]): n samples (1 by default) of this latency
function H:add(seconds, n)
  local us = math.floor(seconds * 1e6 + 0.5)
  if us < 0 then us = 0 end
  local lo = M.bucket(us)
  n = n or 1
  self.counts[lo] = (self.counts[lo] or 0) + n
  self.count = self.count + n
end

-- h:merge(other): adds other's counts to h
function H:merge(other)
  for lo, n in pairs(other.counts) do
    self.counts[lo] = (self.counts[lo] or 0) + n
  end
  self.count = self.count + other.count
  return self
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- h:percentile(p) -> seconds (0 <= p <= 1; 0 when empty): the middle of
-- the bucket holding the ceil(n * p)-th smallest sample
function H:percentile(p)
  if self.count == 0 then return 0 end
  local rank = math.max(1, math.ceil(self.count * p))
  local seen = 0
  for _, lo in ipairs(sorted_keys(self.counts)) do
    seen = seen + self.counts[lo]
    if seen >= rank then
      local _, w = M.bucket(lo)
      return (lo + (w - 1) / 2) / 1e6
    end
  end
end

-- h:encode() -> a table for the JSON line
function H:encode()
  local buckets = {}
  for _, lo in ipairs(sorted_keys(self.counts)) do
    buckets[#buckets + 1] = {lo, self.counts[lo]}
  end
  -- an array even when empty (json's plain {} would be an object)
  return {unit = M.UNIT, sig_bits = SIG, count = self.count,
    buckets = require("json").array(buckets)}
end

-- decode(t) -> histogram | nil, err: t as encode made it (decoded JSON)
function M.decode(t)
  if type(t) ~= "table" then return nil, "no histogram" end
  if t.unit ~= M.UNIT or t.sig_bits ~= SIG then
    return nil, ("histogram of unit %s with %s significant bits (this "
      .. "netsh reads %s with %d)"):format(tostring(t.unit),
      tostring(t.sig_bits), M.UNIT, SIG)
  end
  if type(t.buckets) ~= "table" then
    return nil, "histogram without buckets"
  end
  local h = M.new()
  for i, b in ipairs(t.buckets) do
    local lo, n = type(b) == "table" and b[1], type(b) == "table" and b[2]
    if math.type(lo) ~= "integer" or math.type(n) ~= "integer" or lo < 0
        or n < 0 or M.bucket(lo) ~= lo then
      return nil, ("histogram bucket %d is not [LOWER, COUNT]"):format(i)
    end
    h.counts[lo] = (h.counts[lo] or 0) + n
    h.count = h.count + n
  end
  if t.count ~= nil and t.count ~= h.count then
    return nil, ("histogram count %s is not the sum of its buckets (%d)")
      :format(tostring(t.count), h.count)
  end
  return h
end

return M
