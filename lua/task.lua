-- task.lua -- the public "task" module: spawn, sleep, join, cancel, plus
-- structured concurrency (group), deadline scopes (timeout), all/any.
-- The scheduler itself is C (src/loop.c, "task.core").
local core = require "task.core"

local M = {
  spawn = core.spawn,
  sleep = core.sleep,
  now = core.now,
  current = core.current,
  cond = core.cond,
  list = core.list,
  count = core.count,
}

local pack, unpack = table.pack, table.unpack

-- yield(): let every other ready task run once.
function M.yield() return core.sleep(0) end

-- timeout(seconds, fn, ...) -> fn's results | nil, "timeout"
-- Every wait inside fn ends by the deadline (nested scopes: the earliest
-- wins): the wait in progress raises, the stack unwinds to this scope.
function M.timeout(seconds, fn, ...)
  if type(seconds) ~= "number" then
    error("bad argument #1 to 'timeout' (number expected, got "
      .. type(seconds) .. ")", 2)
  end
  if type(fn) ~= "function" then
    error("bad argument #2 to 'timeout' (function expected, got "
      .. type(fn) .. ")", 2)
  end
  local id, prev, prev_id = core.deadline_push(seconds)
  local r = pack(pcall(fn, ...))
  core.deadline_pop(prev, prev_id)
  if r[1] then return unpack(r, 2, r.n) end
  if core.is_deadline(r[2], id) then return nil, "timeout" end
  error(r[2], 0)
end

-- A group: children spawned with g:spawn are waited for when the group's
-- function returns; the first failure cancels the others and is re-raised
-- in the parent (also interrupting the parent if it is waiting). A
-- failure is a failure whatever the error value: g.failed says there was
-- one, g.err is its value (error(nil) is re-raised as the text lua.c
-- would print).
local NIL_ERROR = "(error object is a nil value)"

local function fail_group(g, err)
  if g.failed then return false end
  g.failed = true
  if err == nil then err = NIL_ERROR end
  g.err = err
  return true
end

local Group = {}
Group.__index = Group

local INTERRUPT = setmetatable({}, {__tostring = function()
  return "group member failed"
end})

function Group:spawn(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'spawn' (function expected, got "
      .. type(fn) .. ")", 2)
  end
  if self.closed then error("group is closed", 2) end
  local g = self
  local info = debug.getinfo(fn, "S")
  local t
  t = core.spawn{name = ("%s:%d"):format(info.short_src, info.linedefined),
    function(...)
    local r = pack(pcall(fn, ...))
    g.live = g.live - 1
    if not r[1] and fail_group(g, r[2]) then
      for _, c in ipairs(g.children) do
        if c ~= t then c:cancel() end
      end
      if g.waiting then core.interrupt(g.parent, INTERRUPT) end
    end
    g.cond:signal()
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end, ...}
  core.quiet(t, true)
  self.live = self.live + 1
  self.children[#self.children + 1] = t
  return t
end

local function wait_children(g)
  while g.live > 0 and not g.failed do g.cond:wait() end
end

-- group(fn, ...) -> fn's results, once every child has ended
function M.group(fn, ...)
  local parent = core.current()
  if not parent then error("task.group outside a task", 2) end
  local g = setmetatable({parent = parent, children = {}, live = 0,
    cond = core.cond(), waiting = true}, Group)
  local r = pack(pcall(fn, g, ...))
  if r[1] then
    local ok, err = pcall(wait_children, g)
    if not ok and err ~= INTERRUPT then fail_group(g, err) end
  elseif r[2] ~= INTERRUPT then
    fail_group(g, r[2])
  end
  g.waiting = false
  g.closed = true
  core.uninterrupt(parent, INTERRUPT)
  if g.failed then
    for _, c in ipairs(g.children) do c:cancel() end
    error(g.err, 0)
  end
  return unpack(r, 2, r.n)
end

-- check_list(list, timeout, fname): raises when list is not a list of
-- task handles, or timeout neither nil nor a number.
local function check_list(list, timeout, fname)
  if type(list) ~= "table" then
    error(("bad argument #1 to '%s' (table expected, got %s)")
      :format(fname, type(list)), 3)
  end
  for i, t in ipairs(list) do
    if not core.is_task(t) then
      error(("bad argument #1 to '%s' (task expected at index %d, got %s)")
        :format(fname, i, type(t)), 3)
    end
  end
  if timeout ~= nil and type(timeout) ~= "number" then
    error(("bad argument #2 to '%s' (number expected, got %s)")
      :format(fname, type(timeout)), 3)
  end
end

-- all(list [, timeout]) -> {results of 1}, {results of 2}, ... in a table
-- | nil, err, index of the first failure (in completion order).
function M.all(list, timeout)
  check_list(list, timeout, "all")
  local out = {}
  local deadline = timeout and core.now() + timeout
  for i, t in ipairs(list) do
    local left = deadline and math.max(0, deadline - core.now())
    local r = pack(t:join(left))
    if t:status() ~= "done" then return nil, r[2], i end
    out[i] = r
  end
  return out
end

-- any(list [, timeout]) -> index, results of the first task to succeed
-- | nil, err (all failed: the last error; or "timeout")
function M.any(list, timeout)
  check_list(list, timeout, "any")
  local c = core.cond()
  local winner, failures = nil, 0
  local watchers = {}
  for i, t in ipairs(list) do
    watchers[i] = core.spawn(function()
      local r = pack(t:join())
      if t:status() == "done" then
        if not winner then winner = i end
      else
        failures = failures + 1
        watchers.err = r[2]
      end
      c:signal()
    end)
  end
  local ok, err = true, nil
  while not winner and failures < #list do
    ok, err = c:wait(timeout)
    if not ok then break end
  end
  for _, w in ipairs(watchers) do w:cancel() end
  if winner then return winner, list[winner]:join() end
  if #list == 0 then return nil, "empty list" end
  return nil, err or watchers.err
end

-- Retries. The pause after failed attempt n is backoff * factor^(n-1),
-- at most max_backoff, with jitter: a random point in [d/2, d], so that
-- clients which failed together do not all come back at the same moment.
-- A pause that would end past the sequence's end (opts.timeout, or the
-- deadline of an enclosing task.timeout scope) is not taken: the last
-- failure is returned at once instead (curl's --retry-max-time does so).
local RETRY_DEFAULTS = {attempts = 3, backoff = 0.2, max_backoff = 10,
  factor = 2}

-- The deadline (absolute task.now() seconds) of the scope we run in, or
-- math.huge: pushing an infinite scope changes nothing and tells the
-- current one.
local function scope_deadline()
  local _, prev, prev_id = core.deadline_push(math.huge)
  core.deadline_pop(prev, prev_id)
  return prev
end

local function retry_opts(opts, level)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("bad argument #2 to 'retry' (table expected, got "
      .. type(opts) .. ")", level + 1)
  end
  local o = {}
  for k, v in pairs(RETRY_DEFAULTS) do
    local x = opts[k]
    if x == nil then x = v end
    if type(x) ~= "number" or x ~= x or x < 0
        or (k == "attempts" and (x < 1 or x ~= math.floor(x))) then
      error(("bad option '%s' to 'retry' (%s expected)"):format(k,
        k == "attempts" and "integer >= 1" or "number >= 0"), level + 1)
    end
    o[k] = x
  end
  for _, k in ipairs{"retry_if", "on_retry"} do
    local f = opts[k]
    if f ~= nil and type(f) ~= "function" then
      error(("bad option '%s' to 'retry' (function expected, got %s)")
        :format(k, type(f)), level + 1)
    end
    o[k] = f
  end
  local t = opts.timeout
  if t ~= nil and (type(t) ~= "number" or t ~= t or t < 0) then
    error("bad option 'timeout' to 'retry' (number >= 0 expected)",
      level + 1)
  end
  o.timeout = t
  o.jitter = opts.jitter ~= false
  return o
end

-- backoff_delay(n, o [, hint]) -> seconds to pause after failure n;
-- hint (a server's Retry-After) replaces the computed delay, still
-- capped at max_backoff.
local function backoff_delay(n, o, hint)
  if hint then return math.max(0, math.min(hint, o.max_backoff)) end
  local d = math.min(o.backoff * o.factor ^ (n - 1), o.max_backoff)
  if o.jitter then d = d * (0.5 + 0.5 * math.random()) end
  return d
end
M.backoff_delay = backoff_delay

local function default_retry_if(ok) return not ok end

-- retry(fn [, opts]) -> the results of the first attempt that succeeded,
-- or those of the last one. fn(attempt, left) is called with the attempt
-- number (1, 2, ...) and the seconds left in the sequence (nil: no
-- limit); it fails by returning nil/false first (nil, err: LuaSocket's
-- way) or when opts.retry_if(...) says so (it gets fn's results and may
-- return true, seconds to wait instead of the backoff). An error raised
-- by fn is not a failure to retry: it goes through. opts: attempts (3),
-- backoff (0.2), factor (2), max_backoff (10), jitter (true), timeout
-- (the whole sequence; each attempt runs in a task.timeout scope of what
-- is left), on_retry(attempt, delay, ...) called before each pause.
function M.retry(fn, opts)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'retry' (function expected, got "
      .. type(fn) .. ")", 2)
  end
  local o = retry_opts(opts, 2)
  local retry_if = o.retry_if or default_retry_if
  local stop = scope_deadline()
  if o.timeout then stop = math.min(stop, core.now() + o.timeout) end
  local n = 0
  while true do
    n = n + 1
    local r
    if o.timeout then
      local left = math.max(0, stop - core.now())
      r = pack(M.timeout(left, fn, n, left))
    else
      local left = stop < math.huge and math.max(0, stop - core.now())
        or nil
      r = pack(fn(n, left))
    end
    local again, hint = retry_if(unpack(r, 1, r.n))
    if not again or n >= o.attempts then return unpack(r, 1, r.n) end
    local d = backoff_delay(n, o, tonumber(hint))
    if core.now() + d >= stop then return unpack(r, 1, r.n) end
    if o.on_retry then o.on_retry(n, d, unpack(r, 1, r.n)) end
    core.sleep(d)
  end
end

return M
