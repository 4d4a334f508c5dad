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

return M
