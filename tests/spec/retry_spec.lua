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

-- A netsh HTTP server answering connection i with replies[i] (the last
-- one from then on): a raw response, or false to close at once without
-- one. It reads each request head and counts requests by method.
-- -> url, stats {n =, methods = {}, heads = {}}, stop
local function flaky_server(replies)
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local st = {n = 0, methods = {}, heads = {}}
  local t = spawn(function()
    s:serve(function(c)
      c:settimeout(5)
      local lines = {}
      repeat
        local line = c:receive("*l")
        if not line then return end
        lines[#lines + 1] = line
      until line == ""
      st.n = st.n + 1
      local m = lines[1]:match("^(%S+)")
      st.methods[#st.methods + 1] = m
      st.heads[#st.heads + 1] = table.concat(lines, "\n")
      local len = st.heads[#st.heads]:match("[Cc]ontent%-[Ll]ength: (%d+)")
      if len and tonumber(len) > 0 then c:receive(tonumber(len)) end
      local reply = replies[math.min(st.n, #replies)]
      if reply then c:send(reply) end
      c:close()
    end)
  end)
  return "http://127.0.0.1:" .. port, st, function()
    s:close()
    t:join()
  end
end

local function reply(status, extra, body)
  body = body or "body " .. status
  return ("HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n%s"
    .. "\r\n%s"):format(status, #body, extra or "", body)
end

-- a port on which nobody listens (just closed)
local function dead_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

describe("http retry", function()
  it("a flaky server: fails twice (drop, 503), then answers", function()
    local url, st, stop = flaky_server{false, reply(503), reply(200, nil,
      "fine")}
    local res, err = http.get(url .. "/x", {retry = {backoff = 0.01}})
    stop()
    assert.is_nil(err)
    assert.equal(200, res.status)
    assert.equal("fine", res.body)
    assert.equal(3, res.attempts)
    assert.equal(3, st.n)
  end)

  it("without the option nothing is retried, res.attempts is 1",
     function()
    local url, st, stop = flaky_server{reply(503), reply(200)}
    local res = assert(http.get(url))
    stop()
    assert.equal(503, res.status)
    assert.equal(1, res.attempts)
    assert.equal(1, st.n)
  end)

  it("gives the last response when every attempt got a 5xx", function()
    local url, st, stop = flaky_server{reply(500)}
    local res = assert(http.get(url, {retry = {attempts = 4,
      backoff = 0.001}}))
    stop()
    assert.equal(500, res.status)
    assert.equal(4, res.attempts)
    assert.equal(4, st.n)
  end)

  it("honours Retry-After (seconds) on a 503", function()
    local url, st, stop = flaky_server{
      reply(503, "Retry-After: 1\r\n"), reply(200)}
    local d, r = elapsed(function()
      return http.get(url, {retry = {backoff = 0.001}})
    end)
    stop()
    assert.equal(200, r[1].status)
    assert.equal(2, st.n)
    assert.is_true(d >= 0.95 and d < 3, tostring(d))
  end)

  it("caps Retry-After at max_backoff", function()
    local url, _, stop = flaky_server{
      reply(429, "Retry-After: 30\r\n"), reply(200)}
    local d, r = elapsed(function()
      return http.get(url, {retry = {max_backoff = 0.05}})
    end)
    stop()
    assert.equal(200, r[1].status)
    assert.equal(2, r[1].attempts)
    assert.is_true(d < 1, tostring(d))
  end)

  it("parses Retry-After as an HTTP-date too", function()
    assert.equal(120, http.retry_after("120"))
    assert.equal(0, http.retry_after("Sun, 06 Nov 1994 08:49:37 GMT"))
    local later = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 100)
    local s = http.retry_after(later)
    assert.is_true(s >= 98 and s <= 100, tostring(s))
    assert.is_nil(http.retry_after("soon"))
  end)

  it("refused, then listening: connects once the server is up",
     function()
    local port = dead_port()
    local srv_task = spawn(function()
      sleep(0.25)
      local s = assert(socket.bind("127.0.0.1", port))
      local c = assert(s:accept())
      c:settimeout(5)
      repeat local l = c:receive("*l") until l == "" or l == nil
      c:send(reply(200, nil, "up"))
      c:close()
      s:close()
    end)
    local res, err = http.get("http://127.0.0.1:" .. port .. "/",
      {retry = {attempts = 10, backoff = 0.05, max_backoff = 0.1}})
    srv_task:join()
    assert.is_nil(err)
    assert.equal("up", res.body)
    assert.is_true(res.attempts > 1)
  end)

  it("says how many attempts failed", function()
    local url = "http://127.0.0.1:" .. dead_port() .. "/"
    assert.same({nil, "connection refused (after 3 attempts)"},
      {http.get(url, {retry = {backoff = 0.001}})})
    assert.same({nil, "connection refused (after 2 attempts)"},
      {http.get(url, {retry = 2})})
    -- "connect" not in retry.on: one attempt, the plain error
    assert.same({nil, "connection refused"},
      {http.get(url, {retry = {on = {"5xx"}}})})
  end)

  it("does not retry POST by default; retry.methods can allow it",
     function()
    local url, st, stop = flaky_server{reply(503), reply(503), reply(200)}
    local res = assert(http.post(url, {body = "x=1", retry = {
      backoff = 0.001}}))
    assert.equal(503, res.status)
    assert.equal(1, res.attempts)
    assert.equal(1, st.n)
    res = assert(http.post(url, {body = "x=1", retry = {backoff = 0.001,
      methods = {"post"}}}))
    stop()
    assert.equal(200, res.status)
    assert.equal(2, res.attempts)
    assert.same({"POST", "POST", "POST"}, st.methods)
  end)

  it("keeps the whole sequence inside the call's timeout", function()
    local url = "http://127.0.0.1:" .. dead_port() .. "/"
    local d, r = elapsed(function()
      return http.get(url, {timeout = 0.3, retry = {attempts = 100,
        backoff = 0.05, max_backoff = 0.05}})
    end)
    assert.is_nil(r[1])
    -- the last attempt is refused, or cut by the deadline on a slow run
    -- (on a loaded machine even the first one: plain "timeout")
    assert.is_truthy(r[2]:match("^connection refused %(after %d+ attempts%)$")
      or r[2]:match("^timeout %(after %d+ attempts%)$")
      or r[2] == "timeout", r[2])
    assert.is_true(d < 0.4, tostring(d))
    -- a server that never answers: the timeout cuts the attempt
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    d, r = elapsed(function()
      return http.get("http://127.0.0.1:" .. port .. "/", {timeout = 0.3,
        retry = {attempts = 5}})
    end)
    s:close()
    assert.same({nil, "timeout", n = 2}, r)
    assert.is_true(d >= 0.25 and d < 0.6, tostring(d))
  end)

  it("attempt_timeout limits each attempt", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local d, r = elapsed(function()
      return http.get("http://127.0.0.1:" .. port .. "/", {timeout = 5,
        retry = {attempts = 3, backoff = 0.01, attempt_timeout = 0.1}})
    end)
    s:close()
    assert.same({nil, "timeout (after 3 attempts)", n = 2}, r)
    assert.is_true(d >= 0.3 and d < 1, tostring(d))
  end)

  it("stays inside a task.timeout scope", function()
    local url = "http://127.0.0.1:" .. dead_port() .. "/"
    local d, r = elapsed(function()
      return task.timeout(0.3, http.get, url, {retry = {attempts = 100,
        backoff = 0.05, max_backoff = 0.05}})
    end)
    assert.is_nil(r[1])
    -- the last attempt is refused, or cut by the deadline on a slow run
    -- (on a loaded machine even the first one: plain "timeout")
    assert.is_truthy(r[2]:match("^connection refused %(after %d+ attempts%)$")
      or r[2]:match("^timeout %(after %d+ attempts%)$")
      or r[2] == "timeout", r[2])
    assert.is_true(d < 0.4, tostring(d))
  end)

  it("works from session defaults; a call can turn it off", function()
    local url, st, stop = flaky_server{reply(502), reply(200)}
    local s = http.session{retry = {backoff = 0.001}, timeout = 5}
    local res = assert(s:get(url))
    assert.equal(200, res.status)
    assert.equal(2, res.attempts)
    res = assert(s:get(url, {retry = false}))
    assert.equal(200, res.status)       -- the server answers 200 from now
    assert.equal(1, res.attempts)
    s:close()
    stop()
    assert.equal(3, st.n)
  end)

  it("closes a retried streamed response", function()
    local url, _, stop = flaky_server{reply(503), reply(200, nil, "s")}
    local res = assert(http.get(url, {stream = true, retry = {
      backoff = 0.001}}))
    assert.equal(2, res.attempts)
    assert.equal("s", res:text())
    stop()
  end)

  it("checks the option", function()
    assert.has_error(function() http.get("http://x/", {retry = "yes"}) end,
      "bad option 'retry' (table, number or boolean expected, got string)")
    assert.has_error(function()
      http.get("http://x/", {retry = {attempts = 0}})
    end, "bad option 'retry' (field 'attempts': integer >= 1 expected)")
    assert.has_error(function()
      http.get("http://x/", {retry = {tries = 2}})
    end, "bad option 'retry' (unknown field 'tries')")
    assert.has_error(function()
      http.get("http://x/", {retry = {on = {"sometimes"}}})
    end, "bad option 'retry' (on[1]: 'connect', 'timeout', '4xx', '5xx' "
      .. "or a status expected)")
    assert.has_error(function() http.session{retry = {backoff = -1}} end,
      "bad option 'retry' (field 'backoff': number >= 0 expected)")
  end)
end)
