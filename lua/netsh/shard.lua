-- shard.lua -- --shard I/N for the bundled scripts that take a list of
-- targets: N copies of a script, each given the same list and its own I
-- (0 to N-1), check every target exactly once between them.
--
--   local shard = require "netsh.shard"
--   options[#options + 1] = shard.option          -- the --shard row
--   local sh = shard.from(opts.shard, usage_code) -- nil: not sharded
--   if not sh or sh:mine(target) then ... end
--
-- Where I/N comes from, first found: --shard I/N; NETSH_SHARD=I/N;
-- JOB_COMPLETION_INDEX=I (set by a Kubernetes Indexed Job) with
-- NETSH_SHARDS=N. A bad value is a usage error naming its source.
--
-- The split is by a hash of the target string, not its position: a
-- target belongs to shard jump(fnv1a64(target), N) (Lamping and Veach's
-- jump consistent hash), so every copy agrees without talking to the
-- others, adding or removing a target moves no other target, and going
-- from N to N+1 copies moves only about 1/(N+1) of the targets. The
-- same string always lands in the same shard (duplicates too), on every
-- machine and run. The shares are even on average, not exactly equal.
local M = {}

M.option = {nil, "shard", arg = "I/N",
  help = "check only this copy's share of the targets: I from 0 to N-1 "
    .. "(also NETSH_SHARD=I/N, or JOB_COMPLETION_INDEX with NETSH_SHARDS=N)"}

M.MAX = 1000000

-- fnv1a64(s) -> a 64-bit integer hash of s, mixed (splitmix64's finalizer)
function M.hash(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 0x100000001b3
  end
  h = (h ~ (h >> 33)) * 0xff51afd7ed558ccd
  h = (h ~ (h >> 33)) * 0xc4ceb9fe1a85ec53
  return h ~ (h >> 33)
end

-- jump(key, n) -> the bucket 0..n-1 of a 64-bit key among n buckets
function M.jump(key, n)
  local b, j = -1, 0
  while j < n do
    b = j
    key = key * 2862933555777941757 + 1
    j = math.floor((b + 1) * (2147483648.0 / ((key >> 33) + 1)))
  end
  return b
end

-- index(target, n) -> the shard 0..n-1 that target belongs to
function M.index(target, n)
  return M.jump(M.hash(tostring(target)), n)
end

local function integer(s)
  if not s or not s:match("^%s*%d+%s*$") then return nil end
  return math.tointeger(tonumber(s))
end

local function check(i, n, what)
  if not n or n < 1 then
    return nil, ("%s: the number of shards must be an integer >= 1")
      :format(what)
  end
  if n > M.MAX then
    return nil, ("%s: at most %d shards"):format(what, M.MAX)
  end
  if not i then
    return nil, ("%s: the shard index must be an integer from 0 to %d")
      :format(what, n - 1)
  end
  if i >= n then
    return nil, ("%s: shard index %d is out of range 0..%d (the first "
      .. "of %d shards is 0/%d)"):format(what, i, n - 1, n, n)
  end
  return {index = i, count = n}
end

-- parse(s [, what]) -> {index =, count =} | nil, err for "I/N"
function M.parse(s, what)
  what = what or "--shard"
  local a, b = tostring(s):match("^%s*([^/]*)/([^/]*)%s*$")
  if not a then
    return nil, ("%s '%s': expected I/N, e.g. 0/4 (I from 0 to N-1)")
      :format(what, tostring(s))
  end
  return check(integer(a), integer(b), ("%s '%s'"):format(what, s))
end

local Shard = {}
Shard.__index = Shard

-- sh:mine(target) -> whether this copy checks target
function Shard:mine(target)
  return M.index(target, self.count) == self.index
end

function Shard:__tostring()
  return ("%d/%d"):format(self.index, self.count)
end

-- resolve(value [, getenv]) -> shard | false (not sharded) | nil, err
function M.resolve(value, getenv)
  getenv = getenv or os.getenv
  local sh, err
  if value then
    sh, err = M.parse(value, "--shard")
  else
    local env = getenv("NETSH_SHARD")
    if env and env ~= "" then
      sh, err = M.parse(env, "NETSH_SHARD")
    else
      local n = getenv("NETSH_SHARDS")
      if not n or n == "" then return false end
      local i = getenv("JOB_COMPLETION_INDEX")
      if not i or i == "" then
        return nil, "NETSH_SHARDS is set but JOB_COMPLETION_INDEX is not "
          .. "(use NETSH_SHARD=I/N or --shard I/N outside an Indexed Job)"
      end
      local ni = integer(n)
      if not ni then
        return nil, ("NETSH_SHARDS '%s': the number of shards must be "
          .. "an integer >= 1"):format(n)
      end
      sh, err = check(integer(i), ni,
        ("JOB_COMPLETION_INDEX '%s' with NETSH_SHARDS '%s'"):format(i, n))
    end
  end
  if not sh then return nil, err end
  return setmetatable(sh, Shard)
end

-- from(value [, usage]) -> shard | nil (not sharded); a bad value dies
-- with exit code usage (2 by default), or calls usage(msg) if a function
function M.from(value, usage_code)
  local sh, err = M.resolve(value)
  if sh == nil then
    if type(usage_code) == "function" then usage_code(err) end
    die(err .. " (try --help)", usage_code or 2)
  end
  return sh or nil
end

-- filter(list, sh) -> the targets of list that are sh's (list if not sh)
function M.filter(list, sh)
  if not sh then return list end
  local out = {}
  for _, t in ipairs(list) do
    if sh:mine(t) then out[#out + 1] = t end
  end
  return out
end

return M
