-- task_spec.lua -- the scheduler: interleaving, join, cancel, timeouts,
-- deadline scopes, groups, error reporting, yields through coroutines and
-- require, and the errors for waits where no task can yield.

local function elapsed(f)
  local t0 = task.now()
  f()
  return task.now() - t0
end

describe("tasks", function()
  it("interleave: two 50 ms sleeps take about 50 ms, not 100", function()
    local d = elapsed(function()
      local a = spawn(function() sleep(0.05) return "a" end)
      local b = spawn(function() sleep(0.05) return "b" end)
      assert.equal("a", a:join())
      assert.equal("b", b:join())
    end)
    assert.is_true(d >= 0.045, "slept too little: " .. d)
    assert.is_true(d < 0.095, "tasks did not interleave: " .. d)
  end)

  it("join returns every result, including nils", function()
    local t = spawn(function(x, y) return x, nil, y end, 1, 2)
    local r = table.pack(t:join())
    assert.equal(3, r.n)
    assert.same({1, nil, 2}, {r[1], r[2], r[3]})
    -- joining again gives the same results
    assert.same({1, nil, 2}, {t:join()})
  end)

  it("join with a timeout gives nil, 'timeout' and the task goes on",
    function()
    local t = spawn(function() sleep(0.1) return "late" end)
    local r, err = t:join(0.01)
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.equal("waiting", t:status())
    assert.equal("late", t:join())
    assert.equal("done", t:status())
  end)

  it("join of a failed task returns nil and the error", function()
    local t = spawn(function() error("boom", 0) end)
    local r, err = t:join()
    assert.is_nil(r)
    assert.equal("boom", err)
    assert.equal("failed", t:status())
  end)

  it("cancel stops a waiting task and runs its <close> handlers", function()
    local closed = false
    local t = spawn(function()
      local guard <close> = setmetatable({}, {__close = function()
        closed = true
      end})
      sleep(10)
      return "not reached"
    end)
    sleep(0.01)
    assert.equal("waiting", t:status())
    assert.is_true(t:cancel())
    assert.is_true(closed)
    assert.equal("cancelled", t:status())
    assert.same({nil, "cancelled"}, {t:join()})
    assert.is_false(t:cancel())       -- already ended
  end)

  it("cancel of a task that has not started yet never runs it", function()
    local ran = false
    local t = spawn(function() ran = true end)
    t:cancel()
    sleep(0.01)
    assert.is_false(ran)
    assert.equal("cancelled", t:status())
  end)

  it("wakes joiners of a cancelled task", function()
    local victim = spawn(function() sleep(10) end)
    local watcher = spawn(function() return victim:join() end)
    sleep(0.01)
    victim:cancel()
    assert.same({nil, "cancelled"}, {watcher:join()})
  end)

  it("task.now is monotonic and high resolution", function()
    local a = task.now()
    local b = task.now()
    assert.is_true(b >= a)
    assert.is_true(b - a < 0.01)
    sleep(0.02)
    assert.is_true(task.now() - a >= 0.019)
  end)

  it("spawn{name=...} names a task; the default name is file:line",
    function()
    local t = spawn{name = "worker", function() end}
    assert.equal("worker", t:name())
    local u = spawn(function() end)
    assert.matches("task_spec.lua:%d+", u:name())
    assert.matches("^task{worker", tostring(t))
  end)

  it("raises clear errors for wrong arguments", function()
    assert.has_error(function() spawn(42) end,
      "bad argument #1 to 'spawn' (function expected, got number)")
    assert.has_error(function() sleep("x") end)
    local ok, err = pcall(task.timeout, "1", function() end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'timeout'", err)
  end)

  it("a bare coroutine.yield in a task lets others run", function()
    local order = {}
    local t = spawn(function() order[#order + 1] = "other" end)
    coroutine.yield()
    order[#order + 1] = "me"
    t:join()
    assert.same({"other", "me"}, order)
  end)
end)

describe("task.timeout", function()
  it("returns the function's results when it finishes in time", function()
    assert.same({1, 2}, {task.timeout(1, function(a, b) return a, b end,
      1, 2)})
  end)

  it("ends any wait at the deadline with nil, 'timeout'", function()
    local d = elapsed(function()
      local r, err = task.timeout(0.03, function() sleep(5) return "x" end)
      assert.is_nil(r)
      assert.equal("timeout", err)
    end)
    assert.is_true(d < 0.5, "deadline not honoured: " .. d)
  end)

  it("nested scopes: the earliest deadline wins, and is the one that fires",
    function()
    local inner_result
    local r, err = task.timeout(0.03, function()
      inner_result = {task.timeout(5, function() sleep(1) end)}
      return "outer went on"
    end)
    -- the outer deadline fired; the inner scope must not swallow it
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.is_nil(inner_result)
    -- inner earlier than outer: the inner scope reports, the outer goes on
    local r2 = task.timeout(5, function()
      local a, e = task.timeout(0.02, function() sleep(1) end)
      return e
    end)
    assert.equal("timeout", r2)
  end)

  it("bounds joins and condition waits too", function()
    local c = task.cond()
    assert.same({nil, "timeout"}, {task.timeout(0.02, function()
      c:wait()
    end)})
    local t = spawn(function() sleep(1) end)
    assert.same({nil, "timeout"}, {task.timeout(0.02, function()
      t:join()
    end)})
    t:cancel()
  end)

  it("lets errors other than its own deadline through", function()
    local ok, err = pcall(task.timeout, 1, function() error("mine", 0) end)
    assert.is_false(ok)
    assert.equal("mine", err)
  end)

  it("restores the outer deadline after the scope", function()
    task.timeout(0.02, function() end)
    sleep(0.05)                          -- no stale deadline left behind
  end)
end)

describe("task.group", function()
  it("waits for every child", function()
    local done = {}
    task.group(function(g)
      for i = 1, 3 do
        g:spawn(function() sleep(0.01 * i) done[#done + 1] = i end)
      end
    end)
    assert.same({1, 2, 3}, done)
  end)

  it("cancels the siblings on the first error and re-raises it", function()
    local sibling_closed = false
    local d = elapsed(function()
      local ok, err = pcall(task.group, function(g)
        g:spawn(function() sleep(0.01) error("child failed", 0) end)
        g:spawn(function()
          local _ <close> = setmetatable({}, {__close = function()
            sibling_closed = true
          end})
          sleep(5)
        end)
      end)
      assert.is_false(ok)
      assert.equal("child failed", err)
    end)
    assert.is_true(sibling_closed)
    assert.is_true(d < 1, "siblings were not cancelled: " .. d)
  end)

  it("interrupts the parent's own wait when a child fails", function()
    local d = elapsed(function()
      local ok, err = pcall(task.group, function(g)
        g:spawn(function() error("early", 0) end)
        sleep(5)                           -- the body itself waits
      end)
      assert.is_false(ok)
      assert.equal("early", err)
    end)
    assert.is_true(d < 1, "parent was not interrupted: " .. d)
  end)

  it("an error in the body cancels the children", function()
    local child
    local ok, err = pcall(task.group, function(g)
      child = g:spawn(function() sleep(5) end)
      sleep(0.01)
      error("body failed", 0)
    end)
    assert.is_false(ok)
    assert.equal("body failed", err)
    assert.equal("cancelled", child:status())
  end)

  it("leaves no interrupt pending in the parent", function()
    pcall(task.group, function(g)
      g:spawn(function() error("x", 0) end)
      sleep(1)
    end)
    sleep(0.02)        -- would raise if an interrupt were left behind
  end)
end)

describe("task.all and task.any", function()
  it("all collects results in order", function()
    local ts = {}
    for i = 1, 3 do ts[i] = spawn(function() sleep(0.01 * (4 - i)) return i end) end
    local r = task.all(ts)
    assert.equal(1, r[1][1])
    assert.equal(3, r[3][1])
  end)

  it("all reports the first failure", function()
    local ts = {spawn(function() return 1 end),
      spawn(function() error("bad", 0) end)}
    assert.same({nil, "bad", 2}, {task.all(ts)})
  end)

  it("any returns the first to succeed", function()
    local ts = {spawn(function() sleep(0.2) return "slow" end),
      spawn(function() sleep(0.01) return "fast" end),
      spawn(function() error("broken", 0) end)}
    assert.same({2, "fast"}, {task.any(ts)})
    ts[1]:cancel()
  end)

  it("any with all failing returns nil and an error", function()
    local ts = {spawn(function() error("e1", 0) end),
      spawn(function() error("e2", 0) end)}
    local r, err = task.any(ts)
    assert.is_nil(r)
    assert.matches("e%d", err)
  end)
end)

describe("task.cond", function()
  it("signal wakes one waiter, broadcast all, in order", function()
    local c = task.cond()
    local woke = {}
    for i = 1, 3 do
      spawn(function() c:wait() woke[#woke + 1] = i end)
    end
    sleep(0.01)
    c:signal()
    sleep(0.01)
    assert.same({1}, woke)
    c:broadcast()
    sleep(0.01)
    assert.same({1, 2, 3}, woke)
  end)

  it("wait with a timeout", function()
    assert.same({nil, "timeout"}, {task.cond():wait(0.01)})
  end)
end)

describe("yielding from everywhere", function()
  it("passes waits through user coroutines (coroutine.wrap generators)",
    function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do sleep(0.005) coroutine.yield(i) end
    end)
    assert.same({1, 2, 3}, {gen(), gen(), gen()})
    local co = coroutine.create(function(a)
      sleep(0.005)
      local b = coroutine.yield(a + 1)
      sleep(0.005)
      return b * 2
    end)
    assert.same({true, 2}, {coroutine.resume(co, 1)})
    assert.same({true, 10}, {coroutine.resume(co, 5)})
    assert.equal("dead", coroutine.status(co))
  end)

  it("require runs a module whose top level waits", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/netsh_slow_mod.lua", "w"))
    f:write("sleep(0.01) return {answer = 42}")
    f:close()
    local saved = package.path
    package.path = dir .. "/?.lua;" .. saved
    local m = require "netsh_slow_mod"
    package.path = saved
    os.remove(dir .. "/netsh_slow_mod.lua")
    os.remove(dir)
    assert.equal(42, m.answer)
    assert.equal(m, require "netsh_slow_mod")
  end)

  it("require keeps lua's messages for missing modules", function()
    local ok, err = pcall(require, "no.such.module")
    assert.is_false(ok)
    assert.matches("module 'no.such.module' not found:", err, 1, true)
    assert.matches("no field package.preload['no.such.module']", err, 1,
      true)
  end)

  it("raises a clear error where the task cannot yield", function()
    local ok, err = pcall(table.sort, {3, 2, 1}, function(a, b)
      sleep(0.001)
      return a < b
    end)
    assert.is_false(ok)
    assert.matches("attempt to wait where the task cannot yield", err)
  end)

  it("raises a clear error when a waiting coroutine is resumed by hand",
    function()
    local co = coroutine.create(function() sleep(0.05) end)
    local resumer = spawn(function() coroutine.resume(co) end)
    sleep(0.01)
    -- co is parked inside `resumer`; resuming it from here is a bug
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("resumed from another task or by hand", err)
    resumer:cancel()
  end)
end)

describe("self-cancellation", function()
  it("a task that cancels itself stops at its next wait", function()
    local after = false
    local closed = false
    local t
    t = spawn(function()
      local _ <close> = setmetatable({}, {__close = function() closed = true end})
      t:cancel()
      sleep(0.01)
      after = true
    end)
    sleep(0.05)
    assert.equal("cancelled", t:status())
    assert.is_false(after)
    assert.is_true(closed)
  end)
end)

describe("a failure is a failure whatever its error value", function()
  local NILMSG = "(error object is a nil value)"

  it("join of a task that raised error(nil) gives a non-nil error",
    function()
    local t = spawn(function() error(nil) end)
    local r, err = t:join()
    assert.is_nil(r)
    assert.equal(NILMSG, err)
    assert.equal("failed", t:status())
  end)

  it("task.all reports a child that raised error(nil)", function()
    local ts = {spawn(function() return 1 end),
      spawn(function() error(nil) end)}
    assert.same({nil, NILMSG, 2}, {task.all(ts)})
  end)

  it("task.group re-raises a child's error(nil) and cancels siblings",
    function()
    local sibling
    local ok, err = pcall(task.group, function(g)
      g:spawn(function() sleep(0.01) error(nil) end)
      sibling = g:spawn(function() sleep(5) end)
    end)
    assert.is_false(ok)
    assert.equal(NILMSG, err)
    assert.equal("cancelled", sibling:status())
  end)

  it("task.group re-raises error(nil) from its own body", function()
    local child
    local ok, err = pcall(task.group, function(g)
      child = g:spawn(function() sleep(5) end)
      error(nil)
    end)
    assert.is_false(ok)
    assert.equal(NILMSG, err)
    assert.same({nil, "cancelled"}, {child:join()})
  end)

  it("task.group re-raises a child's false error value", function()
    local ok, err = pcall(task.group, function(g)
      g:spawn(function() error(false) end)
    end)
    assert.is_false(ok)
    assert.is_false(err)
  end)
end)

describe("task.all and task.any check their list", function()
  it("name the argument and the item that is not a task", function()
    local ok, err = pcall(task.all, {1, "x"})
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'all' (task expected at index 1, "
      .. "got number)", err, 1, true)
    local t = spawn(function() end)
    ok, err = pcall(task.all, {t, "x"})
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'all' (task expected at index 2, "
      .. "got string)", err, 1, true)
    ok, err = pcall(task.any, {t, {}})
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'any' (task expected at index 2, "
      .. "got table)", err, 1, true)
    ok, err = pcall(task.all, "x")
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'all' (table expected, got string)",
      err, 1, true)
    ok, err = pcall(task.all, {t}, "soon")
    assert.is_false(ok)
    assert.matches("bad argument #2 to 'all' (number expected, got string)",
      err, 1, true)
  end)
end)

-- The rules are written down in docs/reliability.md, "Cancellation rules".
describe("cancellation rules", function()
  local function closer(f)
    return setmetatable({}, {__close = f})
  end

  it("1: cancel stops a parked task at once; it never resumes", function()
    local resumed = false
    local t = spawn(function() sleep(5) resumed = true end)
    sleep(0.01)
    assert.is_true(t:cancel())
    assert.equal("cancelled", t:status())
    assert.same({nil, "cancelled"}, {t:join()})
    sleep(0.01)
    assert.is_false(resumed)
    assert.is_false(t:cancel())          -- already ended
  end)

  it("2: self-cancel takes effect at the next checkpoint", function()
    local steps = {}
    local t
    t = spawn(function()
      t:cancel()
      steps[#steps + 1] = task.current():status()
      task.yield()                     -- a checkpoint: stops here
      steps[#steps + 1] = "after"
    end)
    assert.same({nil, "cancelled"}, {t:join()})
    assert.same({"cancelling"}, steps)
  end)

  it("2: a self-cancelled task that ends before a checkpoint is cancelled",
    function()
    local t
    t = spawn(function()
      t:cancel()
      return "result"
    end)
    assert.same({nil, "cancelled"}, {t:join()})
    assert.equal("cancelled", t:status())
  end)

  it("3: <close> handlers run innermost first, as the cancelled task",
    function()
    local order, t = {}, nil
    t = spawn(function()
      local a <close> = closer(function()
        order[#order + 1] = "outer"
        order.current = task.current()
      end)
      local b <close> = closer(function() order[#order + 1] = "inner" end)
      sleep(5)
    end)
    sleep(0.01)
    t:cancel()
    assert.same({"inner", "outer"}, {order[1], order[2]})
    assert.equal(t, order.current)
  end)

  it("3: a wait in a handler of a cancelled task raises and fails it",
    function()
    local t = spawn(function()
      local _ <close> = closer(function() sleep(0.01) end)
      sleep(5)
    end)
    sleep(0.01)
    t:cancel()
    local r, err = t:join()
    assert.is_nil(r)
    assert.matches("attempt to wait in a <close> handler of a cancelled "
      .. "task", err, 1, true)
    assert.equal("failed", t:status())
  end)

  it("3: a handler can hand waiting cleanup to a new task", function()
    local log = {}
    local cleanup
    local t = spawn(function()
      local _ <close> = closer(function()
        cleanup = spawn(function()
          sleep(0.01)
          log[#log + 1] = "cleaned up"
        end)
      end)
      sleep(5)
    end)
    sleep(0.01)
    t:cancel()
    assert.equal("cancelled", t:status())
    cleanup:join()
    assert.same({"cleaned up"}, log)
  end)

  it("4: an error raised by a handler of a cancelled task is not dropped",
    function()
    local t = spawn(function()
      local _ <close> = closer(function() error("cleanup failed", 0) end)
      sleep(5)
    end)
    sleep(0.01)
    assert.is_true(t:cancel())
    assert.equal("failed", t:status())
    assert.same({nil, "cleanup failed"}, {t:join()})
  end)

  it("4: in a failing task a handler's error replaces the first, as in Lua",
    function()
    local t = spawn(function()
      local _ <close> = closer(function() error("second", 0) end)
      error("first", 0)
    end)
    assert.same({nil, "second"}, {t:join()})
    local ok, err = pcall(function()
      local _ <close> = closer(function() error("second", 0) end)
      error("first", 0)
    end)
    assert.same({false, "second"}, {ok, err})
  end)

  it("3: handlers may wait when the task catches its own error", function()
    local log = {}
    local t = spawn(function()
      pcall(function()
        local _ <close> = closer(function()
          sleep(0.01)
          log[#log + 1] = "closed after a wait"
        end)
        error("x")
      end)
      return "went on"
    end)
    assert.equal("went on", t:join())
    assert.same({"closed after a wait"}, log)
  end)
end)
