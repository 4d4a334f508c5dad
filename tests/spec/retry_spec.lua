-- retry_spec.lua -- task.retry's backoff rules, and http's retry option
-- against local servers (netsh server tasks here): a flaky server, 503
-- with Retry-After, refused then listening, POST not retried, the whole
-- sequence inside the call's timeout and a task.timeout scope.
local http = require "http"

local function elapsed(f)
  local t0 = task.now()
  local r = table.pack(f())
  return task.now() - t0, r
end

describe("task.retry", function()
  it("retries a nil, err failure until it succeeds", function()
    local calls = {}
    local r = table.pack(task.retry(function(n)
      calls[#calls + 1] = n
      if n < 3 then return nil, "closed" end
      return "ok", n
    end, {backoff = 0.01}))
    assert.same({1, 2, 3}, calls)
    assert.same({"ok", 3, n = 2}, r)
  end)

  it("returns the last failure, all its values, after 'attempts'",
     function()
    local n = 0
    local r = table.pack(task.retry(function()
      n = n + 1
      return nil, "timeout", "partial" .. n
    end, {attempts = 4, backoff = 0.001}))
    assert.equal(4, n)
    assert.same({nil, "timeout", "partial4", n = 3}, r)
  end)

  it("does not retry an error raised by fn", function()
    local n = 0
    assert.has_error(function()
      task.retry(function() n = n + 1 error("boom", 0) end)
    end, "boom")
    assert.equal(1, n)
  end)

  it("backs off exponentially, capped by max_backoff", function()
    local delays = {}
    task.retry(function() return nil, "x" end, {attempts = 5,
      backoff = 0.01, max_backoff = 0.03, jitter = false,
      on_retry = function(n, d) delays[n] = d end})
    assert.same({0.01, 0.02, 0.03, 0.03}, delays)
  end)

  it("jitters each pause within [d/2, d]", function()
    local seen = {}
    for _ = 1, 20 do
      task.retry(function() return nil end, {attempts = 3, backoff = 0.004,
        on_retry = function(n, d)
          local full = 0.004 * 2 ^ (n - 1)
          assert.is_true(d >= full / 2 and d <= full, tostring(d))
          seen[d] = true
        end})
    end
    local distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.is_true(distinct > 10, "no jitter: " .. distinct)
  end)

  it("actually pauses between attempts", function()
    local d = elapsed(function()
      task.retry(function() return nil end, {attempts = 3, backoff = 0.05,
        jitter = false})
    end)
    assert.is_true(d >= 0.14 and d < 0.5, tostring(d))   -- 0.05 + 0.1
  end)

  it("retry_if decides, and may name the pause", function()
    local delays, n = {}, 0
    local r = task.retry(function()
      n = n + 1
      return {status = n < 3 and 503 or 200}
    end, {backoff = 5, retry_if = function(res)
      return res.status == 503, 0.01
    end, on_retry = function(_, d) delays[#delays + 1] = d end})
    assert.equal(200, r.status)
    assert.same({0.01, 0.01}, delays)
  end)

  it("keeps the whole sequence inside opts.timeout", function()
    local n = 0
    local d, r = elapsed(function()
      return task.retry(function(_, left)
        n = n + 1
        assert.is_number(left)
        sleep(10)                  -- a hung attempt is cut at the end
      end, {attempts = 5, timeout = 0.1})
    end)
    assert.same({nil, "timeout", n = 2}, r)
    assert.equal(1, n)
    assert.is_true(d < 0.3, tostring(d))
  end)

  it("takes no pause that would end past opts.timeout", function()
    local n = 0
    local d, r = elapsed(function()
      return task.retry(function()
        n = n + 1
        return nil, "connection refused"
      end, {attempts = 10, backoff = 0.04, jitter = false, timeout = 0.1})
    end)
    -- pauses 0.04, then 0.08 would pass 0.1: two attempts, no waiting
    assert.equal(2, n)
    assert.same({nil, "connection refused", n = 2}, r)
    assert.is_true(d < 0.09, tostring(d))
  end)

  it("stays inside an enclosing task.timeout scope", function()
    local n = 0
    local d, r = elapsed(function()
      return task.timeout(0.15, function()
        return task.retry(function(_, left)
          n = n + 1
          assert.is_true(left <= 0.15)
          return nil, "refused " .. n
        end, {attempts = 10, backoff = 0.05, jitter = false})
      end)
    end)
    assert.same({nil, "refused 2", n = 2}, r)  -- 0.05, then 0.1 too long
    assert.is_true(d < 0.14, tostring(d))
  end)

  it("checks its arguments", function()
    assert.has_error(function() task.retry(42) end,
      "bad argument #1 to 'retry' (function expected, got number)")
    assert.has_error(function() task.retry(print, 3) end,
      "bad argument #2 to 'retry' (table expected, got number)")
    assert.has_error(function() task.retry(print, {attempts = 0}) end,
      "bad option 'attempts' to 'retry' (integer >= 1 expected)")
    assert.has_error(function() task.retry(print, {backoff = -1}) end,
      "bad option 'backoff' to 'retry' (number >= 0 expected)")
    assert.has_error(function() task.retry(print, {retry_if = 1}) end,
      "bad option 'retry_if' to 'retry' (function expected, got number)")
  end)
end)
