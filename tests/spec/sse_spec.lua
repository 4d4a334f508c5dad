-- sse_spec.lua -- server-sent events: the parser (WHATWG HTML's "event
-- stream interpretation", its examples and edge cases, and a randomized
-- check that any split of a stream across reads gives the same events),
-- res:events() and http.events() against netsh servers started here.
local http = require "http"

local function parse(...)
  local p = http.sse_parser()
  local out = {}
  for _, chunk in ipairs{...} do
    for _, ev in ipairs(p:feed(chunk)) do out[#out + 1] = ev end
  end
  return out, p
end

local function datas(evs)
  local out = {}
  for i, ev in ipairs(evs) do out[i] = ev.data end
  return out
end

describe("sse parser", function()
  it("joins data lines with LF, dispatches on a blank line", function()
    local evs = parse("data: YHOO\ndata: +2\ndata: 10\n\n")
    assert.same({{event = "message", data = "YHOO\n+2\n10"}}, evs)
  end)

  it("follows the spec's example: comments, id and its reset", function()
    local evs = parse(": test stream\n\ndata: first event\nid: 1\n\n"
      .. "data:second event\nid\n\ndata:  third event\n\n")
    assert.same({
      {event = "message", data = "first event", id = "1"},
      {event = "message", data = "second event", id = ""},
      {event = "message", data = " third event", id = ""},
    }, evs)
  end)

  it("empty data lines, and drops an event cut short", function()
    local evs = parse("data\n\ndata\ndata\n\ndata:")
    assert.same({"", "\n"}, datas(evs))
    evs = parse("data:test\n\ndata: test\n\n")
    assert.same({"test", "test"}, datas(evs))
  end)

  it("event types apply to one event; unknown fields are ignored",
     function()
    local evs = parse("event: add\ndata: 1\nfoo: bar\n\ndata: 2\n\n"
      .. "event: x\n\ndata: 3\n\n")
    assert.same({"add", "message", "message"},
      {evs[1].event, evs[2].event, evs[3].event})
    assert.same({"1", "2", "3"}, datas(evs))
  end)

  it("takes CR, LF and CRLF line ends, mixed", function()
    local evs = parse("data: a\rdata: b\r\ndata: c\n\r\nid: 7\r\r"
      .. "data: d\n\n")
    assert.same({"a\nb\nc", "d"}, datas(evs))
    assert.equal("7", evs[2].id)
  end)

  it("a CR ending one read and an LF starting the next: one line end",
     function()
    local evs = parse("data: a\r", "\ndata: b\r", "\r", "\n")
    -- "a" CRLF, "b" CR, CRLF (blank line): one event, then a blank line
    assert.same({"a\nb"}, datas(evs))
    evs = parse("data: a\r", "", "\n\r", "\n")
    assert.same({"a"}, datas(evs))
  end)

  it("drops one BOM at the start of the stream, even split", function()
    assert.same({"x"}, datas(parse("\239\187\191data: x\n\n")))
    assert.same({"x"}, datas(parse("\239", "\187", "\191data: x\n\n")))
    -- a second BOM is part of a (unknown) field name
    assert.same({}, parse("\239\187\191\239\187\191data: x\n\n"))
    -- an incomplete BOM is kept as data
    assert.same({}, parse("\239\187data: x\n\n"))
  end)

  it("retry: digits only, kept in milliseconds; id with NUL ignored",
     function()
    local evs, p = parse("retry: 1500\ndata: a\n\nretry: 1.5\nid: a\0b\n"
      .. "data: b\n\n")
    assert.same({1500, 1500}, {evs[1].retry, evs[2].retry})
    assert.is_nil(evs[2].id)
    assert.equal(1500, p.retry)
    assert.same({"a", "b"}, datas(evs))
  end)

  it("the last event ID changes on a blank line, with or without data",
     function()
    local _, p = parse("id: 1\ndata: x\n\nid: 2\ndata: cut")
    assert.equal("1", p.id)
    _, p = parse("id: 5\n\n")
    assert.equal("5", p.id)
  end)

  it("a long line in many reads", function()
    local p = http.sse_parser()
    assert.same({}, p:feed("data: "))
    for _ = 1, 1024 do assert.same({}, p:feed(("x"):rep(1024))) end
    local evs = p:feed("\r")
    assert.same({}, evs)
    evs = p:feed("\n\n")
    assert.equal(1, #evs)
    assert.equal(1024 * 1024, #evs[1].data)
  end)

  it("one space after the colon is dropped, no more", function()
    assert.same({"  x", "y"}, datas(parse("data:   x\n\ndata:y\n\n")))
  end)
end)

-- Randomized: a stream fed in random pieces gives the events it gives
-- fed whole, for streams built from the tricky parts and for random
-- bytes. The seed is in the failure message.
describe("sse parser limits", function()
  local saved
  before_each(function() saved = http.SSE_MAX_EVENT end)
  after_each(function() http.SSE_MAX_EVENT = saved end)

  it("a line that never ends is refused past SSE_MAX_EVENT", function()
    http.SSE_MAX_EVENT = 1000
    local p = http.sse_parser()
    p:feed("data: " .. ("x"):rep(500))
    local ok, err = pcall(p.feed, p, ("y"):rep(600))
    assert.is_false(ok)
    assert.equal("bad response: event too large (limit 1000 bytes)", err)
  end)

  it("so are data lines that never make an event", function()
    http.SSE_MAX_EVENT = 1000
    local p = http.sse_parser()
    local ok, err = pcall(function()
      for _ = 1, 10 do p:feed("data: " .. ("z"):rep(200) .. "\n") end
    end)
    assert.is_false(ok)
    assert.matches("event too large", err)
  end)

  it("events under the limit pass, however many", function()
    http.SSE_MAX_EVENT = 1000
    local p = http.sse_parser()
    local n = 0
    for _ = 1, 50 do
      n = n + #p:feed("data: " .. ("w"):rep(800) .. "\n\n")
    end
    assert.equal(50, n)
  end)
end)

describe("sse parser, random splits", function()
  local parts = {"data: ", "data:", "data", "id: ", "id", "event: ",
    "retry: ", "retry: 12", ":", ": c", "x", "yz", " ", "\r", "\n",
    "\r\n", "\r\n", "\n\n", "\r\r", "\239\187\191", "\0", "é", "1"}

  local function random_stream(rnd)
    local out = {}
    if rnd(4) == 1 then out[1] = "\239\187\191" end
    for _ = 1, rnd(60) do out[#out + 1] = parts[rnd(#parts)] end
    return table.concat(out)
  end

  local function random_bytes(rnd)
    local out = {}
    for i = 1, rnd(200) do
      local b = rnd(8) == 1 and rnd(0, 255) or ("\r\n:d a"):byte(rnd(6))
      out[i] = string.char(b)
    end
    return table.concat(out)
  end

  local function split(s, rnd)
    local pieces, i = {}, 1
    while i <= #s do
      local n = rnd(4) == 1 and 0 or rnd(1, 8)
      pieces[#pieces + 1] = s:sub(i, i + n - 1)
      i = i + n
    end
    return pieces
  end

  local function check(seed, make)
    math.randomseed(seed)
    local rnd = math.random
    for _ = 1, 200 do
      local s = make(rnd)
      local whole, pw = parse(s)
      local pieces = split(s, rnd)
      local parts_, pp = parse(table.unpack(pieces))
      assert.same(whole, parts_, ("seed %d, stream %q"):format(seed, s))
      assert.same({pw.id, pw.retry}, {pp.id, pp.retry})
      -- byte at a time too
      local bytes = {}
      for i = 1, #s do bytes[i] = s:sub(i, i) end
      assert.same(whole, (parse(table.unpack(bytes))),
        ("seed %d, bytes %q"):format(seed, s))
    end
  end

  it("streams of SSE parts", function()
    for seed = 1, 10 do check(seed, random_stream) end
  end)

  it("random bytes", function()
    for seed = 100, 110 do check(seed, random_bytes) end
  end)
  -- seed the generator afresh for the specs that follow
  math.randomseed(os.time())
end)

-- A netsh SSE server: connection i runs script[i](c, head) (the last
-- one from then on); head is the request head, its lines joined by "\n".
-- -> url, heads, stop
local function sse_server(script)
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local heads = {}
  local t = spawn(function()
    s:serve(function(c)
      c:settimeout(5)
      local lines = {}
      repeat
        local line = c:receive("*l")
        if not line then return end
        lines[#lines + 1] = line
      until line == ""
      local head = table.concat(lines, "\n")
      heads[#heads + 1] = head
      script[math.min(#heads, #script)](c, head)
      c:close()
    end)
  end)
  return "http://127.0.0.1:" .. port .. "/events", heads, function()
    s:close()
    t:join()
  end
end

local OK_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
  .. "Connection: close\r\n\r\n"

-- send the pieces one read at a time
local function trickle(c, pieces)
  for _, p in ipairs(pieces) do
    c:send(p)
    sleep(0.01)
  end
end

describe("res:events()", function()
  it("splits across reads, every line end form", function()
    local url, heads, stop = sse_server{function(c)
      trickle(c, {OK_HEAD, "\239\187", "\191: hi\r\n", "event: a\r",
        "\ndata: 1\r", "\rdata: 2\n", "\ndata: x\r\ndata:", " y\r\n\r\n",
        "id: 9\n", "data: last", "\n\n", "data: cut off"})
    end}
    local res = assert(http.get(url, {stream = true}))
    local got = {}
    for ev in res:events() do got[#got + 1] = ev end
    stop()
    assert.same({
      {event = "a", data = "1"},
      {event = "message", data = "2"},
      {event = "message", data = "x\ny"},
      {event = "message", data = "last", id = "9"},
    }, got)
    assert.is_nil(heads[1]:find("Last-Event-ID", 1, true))
  end)
end)

describe("http.events", function()
  it("reconnects with Last-Event-ID after a drop mid-event, waiting the "
     .. "server's retry time", function()
    local times = {}
    local url, heads, stop = sse_server{
      function(c)
        times[1] = task.now()
        trickle(c, {OK_HEAD, "retry: 200\n\n", "id: 1\ndata: one\n\n",
          "id: 2\r\ndata: tw"})                 -- dropped mid-event
      end,
      function(c)
        times[2] = task.now()
        trickle(c, {OK_HEAD, "id: 2\rdata: two\r\r"})   -- clean end
      end,
      function(c)
        times[3] = task.now()
        c:send("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
      end,
    }
    local got = {}
    for ev in http.events(url, {reconnect = 5}) do
      got[#got + 1] = ev.data .. "@" .. ev.id
    end
    stop()
    assert.same({"one@1", "two@2"}, got)
    assert.equal(3, #heads)
    assert.matches("\n[Aa]ccept: text/event%-stream", heads[1])
    assert.is_nil(heads[1]:find("Last-Event-ID", 1, true))
    assert.matches("\nLast%-Event%-ID: 1\n", heads[2] .. "\n")
    assert.matches("\nLast%-Event%-ID: 2\n", heads[3] .. "\n")
    -- the server's 200 ms, not the 5 s of opts.reconnect
    local gap = times[3] - times[2]
    assert.is_true(gap >= 0.18 and gap < 2, tostring(gap))
  end)

  it("reconnects after a refused connection; max_reconnects ends it",
     function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local t0 = task.now()
    assert.has_error(function()
      for _ in http.events("http://127.0.0.1:" .. port .. "/",
          {reconnect = 0.02, max_reconnects = 3}) do
      end
    end, "connection refused (after 4 attempts)")
    assert.is_true(task.now() - t0 >= 0.05)
    -- refused, then listening: the events come
    local got
    local srv = spawn(function()
      sleep(0.1)
      local s2 = assert(socket.bind("127.0.0.1", port))
      local c = assert(s2:accept())
      c:settimeout(5)
      repeat local l = c:receive("*l") until l == "" or l == nil
      c:send(OK_HEAD .. "data: up\n\n")
      c:close()
      s2:close()
    end)
    for ev in http.events("http://127.0.0.1:" .. port .. "/",
        {reconnect = 0.03}) do
      got = ev.data
      break
    end
    srv:join()
    assert.equal("up", got)
  end)

  it("raises on an error status or another content type", function()
    local url, _, stop = sse_server{
      function(c)
        c:send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
      end,
      function(c)
        c:send("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
          .. "Content-Length: 2\r\n\r\nhi")
      end}
    assert.has_error(function()
      for _ in http.events(url) do end
    end, "http 404 Not Found: " .. url)
    assert.has_error(function()
      for _ in http.events(url) do end
    end, "not an event stream: text/html")
    stop()
  end)

  it("leaving the loop closes the connection", function()
    local closed = task.cond()
    local gone
    local url, _, stop = sse_server{function(c)
      c:send(OK_HEAD .. "data: a\n\n")
      c:settimeout(5)
      local _, err = c:receive("*a")
      gone = err or "eof"
      closed:signal()
    end}
    for ev in http.events(url) do
      assert.equal("a", ev.data)
      break
    end
    closed:wait(5)
    stop()
    assert.is_string(gone)              -- "timeout" after 5 s otherwise
    assert.are_not.equal("timeout", gone)
  end)

  it("a cancelled task stops listening", function()
    local url, heads, stop = sse_server{function(c)
      c:send(OK_HEAD)
      sleep(2)
    end}
    local t = spawn(function()
      for _ in http.events(url) do end
    end)
    sleep(0.1)
    t:cancel()
    sleep(0.05)
    assert.equal("cancelled", t:status())
    stop()
    assert.equal(1, #heads)
  end)

  it("checks its arguments", function()
    assert.has_error(function() http.events(1) end,
      "bad argument #1 to 'events' (string expected, got number)")
    assert.has_error(function() http.events("http://x/", 1) end,
      "bad argument #2 to 'events' (table expected, got number)")
    assert.has_error(function()
      http.events("http://x/", {reconnect = -1})
    end, "bad option 'reconnect' (number >= 0 expected)")
    assert.has_error(function()
      http.events("http://x/", {bogus = 1})
    end, "unknown option 'bogus'")
  end)
end)
