-- http_check.lua -- fetch URLs concurrently and check status, body text, time
--
--   netsh -m http_check [options] URL...  (or netsh scripts/http_check.lua)
--   cat urls.txt | netsh -m http_check -c 20 --expect-status 200
--
-- URLs come from the arguments, and from stdin (one per line, blank lines
-- and # comments skipped) when there are none or one is "-". Prints one
-- line per URL as it completes (--ordered: in input order), plain or
-- --json (the envelope of docs/json-lines.md); exit status 0 when every
-- URL passed, 1 otherwise, 2 on a usage error. --shard I/N checks only
-- this copy's share of the URLs; --nagios makes it a Nagios plugin that
-- also judges the response time (--warn/--crit SECONDS ranges).
local http = require "http"
local task = require "task"

local getopt = require "getopt"
local exitcodes = require "netsh.exitcodes"
local retryopt = require "netsh.retryopt"
local jsonl = require "netsh.jsonl"
local shard = require "netsh.shard"

local usage_error, on_usage_error = exitcodes.usage(arg, "HTTP_CHECK")

local opts, urls = getopt.parse(arg, {
  name = "http_check",
  usage = "URL...",
  summary = "Fetch URLs concurrently and check them. URLs are also read "
    .. "from stdin (one per line) when none is given or one of them is -.",
  options = exitcodes.add_nagios(jsonl.add(retryopt.add{
    {"c", "concurrency", arg = "N", type = "integer", default = 10,
     help = "fetch N URLs at a time (at most 10000)"},
    {nil, "expect-status", arg = "S",
     help = "pass only on these statuses: 200 | 200,204 | 2xx "
       .. "(default: any 2xx or 3xx)"},
    {nil, "contains", arg = "TEXT", help = "pass only when the body contains TEXT"},
    {nil, "timeout", arg = "SECONDS", type = "number", default = 10,
     help = "per request (per attempt with --retry)"},
    {nil, "method", arg = "M", default = "GET", help = "request method"},
    {"k", "insecure", help = "do not verify TLS certificates"},
    {nil, "unix-socket", arg = "PATH",
     help = "connect to this Unix socket instead (as curl --unix-socket)"},
    {nil, "json", help = "one JSON object per line instead of text"},
    {nil, "ordered", help = "print the results in input order, not as "
       .. "they complete"},
    {nil, "curl-codes", help = "with one URL, exit with curl's codes "
       .. "(6 resolve, 7 connect, 22 HTTP >= 400, 28 timeout, 35 TLS, "
       .. "60 certificate)"},
    shard.option,
  }), {warn = "with --nagios: WARNING when a response time in seconds "
       .. "is outside RANGE (e.g. 0.5)",
     crit = "with --nagios: CRITICAL when it is outside RANGE"}),
  on_usage_error = on_usage_error,
  exit_codes = {"0  every URL passed", "1  some URL failed", "2  usage error",
    "6 7 22 28 35 60  with --curl-codes and one URL: curl's meaning",
    "with --nagios: 0 OK, 1 WARNING (slow), 2 CRITICAL (a URL failed "
      .. "or too slow), 3 UNKNOWN"},
})
local conf = {c = opts.concurrency, expect = opts.expect_status,
  contains = opts.contains, timeout = opts.timeout,
  method = opts.method:upper(), insecure = opts.insecure, json = opts.json,
  unix_socket = opts.unix_socket}
if conf.c < 1 then usage_error("-c needs a number >= 1") end
if conf.c > 10000 then usage_error("-c is at most 10000") end
if not (conf.timeout > 0) then usage_error("--timeout needs a positive number") end
retryopt.check(opts)
if (opts.warn or opts.crit) and not opts.nagios then
  usage_error("--warn and --crit go with --nagios")
end
local sh = shard.from(opts.shard, usage_error)
local out = opts.json and jsonl.new("http_check", opts.tag, usage_error)
local nag = opts.nagios and exitcodes.nagios("HTTP_CHECK", opts)
local use_stdin = #urls == 0
for _, u in ipairs(urls) do if u == "-" then use_stdin = true end end

-- "200", "200,204", "2xx" -> predicate on the status
local function status_check(spec)
  if not spec then
    return function(s) return s >= 200 and s < 400 end
  end
  local exact, classes = {}, {}
  for part in spec:gmatch("[^,%s]+") do
    local class = part:match("^(%d)[xX][xX]$")
    if class then
      classes[tonumber(class)] = true
    elseif part:match("^%d%d%d$") then
      exact[tonumber(part)] = true
    else
      usage_error("bad --expect-status " .. spec)
    end
  end
  return function(s) return exact[s] or classes[s // 100] or false end
end
local status_ok = status_check(conf.expect)

local function report(r)
  if nag then
    if not r.pass then
      nag:status(2, ("%s: %s"):format(r.url, r.error))
    else
      local state = nag:judge(r.time)
      nag:status(state, state > 0
        and ("%s: %.3f s"):format(r.url, r.time) or nil)
    end
    nag:perf(r.url, r.time, "s", 0)
    return
  end
  if out then
    out:emit(r.url, r.pass, r.error, {status = r.status, time = r.time,
      size = r.size, attempts = r.attempts})
  else
    io.stdout:write(string.format("%-4s %3s %8.1f ms %10s  %s%s\n",
      r.pass and "ok" or "FAIL", r.status and tostring(r.status) or "---",
      r.time * 1000, r.size and tostring(r.size) or "-", r.url,
      r.error and ("  (" .. r.error .. ")") or ""))
  end
  io.stdout:flush()
end

local function check(url)
  local t0 = task.now()
  local retry = retryopt.http_retry(opts, conf.method, "http_check", url)
  if retry then retry.attempt_timeout = conf.timeout end
  local res, err = http.request(conf.method, url, {
    timeout = not retry and conf.timeout or nil, retry = retry,
    verify = not conf.insecure, unix_socket = conf.unix_socket})
  local r = {url = url, time = task.now() - t0}
  if not res then
    r.pass, r.error = false, err
    return r
  end
  if retry then r.attempts = res.attempts end
  r.status, r.size = res.status, #res.body
  r.http_status = res.status
  r.pass = status_ok(res.status)
  if not r.pass then
    r.error = "unexpected status " .. res.status
  elseif conf.contains and not res.body:find(conf.contains, 1, true) then
    r.pass, r.error = false, "body does not contain the text"
  end
  return r
end

-- a queue fed by the arguments and stdin, drained by workers that start
-- as URLs come, up to conf.c: -c 10000 for one URL makes one task
local queue, head, closed = {}, 1, false
-- --ordered: results wait in `done` until those before them are printed
local done, next_out = {}, 1
local function emit(i, r)
  if not opts.ordered then return report(r) end
  done[i] = r
  while done[next_out] do
    report(done[next_out])
    done[next_out] = nil
    next_out = next_out + 1
  end
end
local cond = task.cond()
local workers, idle = {}, 0
local failed, total, last = 0, 0, nil
local function worker()
  while true do
    while head > #queue and not closed do
      idle = idle + 1              -- whoever wakes us takes it back
      cond:wait()
    end
    if head > #queue then return end
    local url, i = queue[head], head
    queue[head] = nil
    head = head + 1
    local r = check(url)
    total = total + 1
    last = r
    if not r.pass then failed = failed + 1 end
    emit(i, r)
  end
end

local given = 0   -- URLs read, in this copy's shard or not
local function push(url)
  given = given + 1
  if sh and not sh:mine(url) then return end
  queue[#queue + 1] = url
  if idle > 0 then
    idle = idle - 1
    cond:signal()
  elseif #workers < conf.c then
    workers[#workers + 1] = task.spawn(worker)
  end
end

for _, u in ipairs(urls) do
  if u ~= "-" then push(u) end
end
if use_stdin then
  task.spawn(function()
    local stdin = require "netsh.stdin"
    while true do
      local line = stdin.read("l")
      if not line then break end
      line = line:match("^%s*(.-)%s*$")
      if line ~= "" and line:sub(1, 1) ~= "#" then push(line) end
    end
    closed = true
    cond:broadcast()
  end):join()
else
  closed = true
  cond:broadcast()
end
for _, w in ipairs(workers) do w:join() end
if total == 0 and given > 0 then
  -- sharded: this copy's share is empty, which is a success
  io.stderr:write(("http_check: shard %s: none of the %d URLs is "
    .. "this copy's\n"):format(tostring(sh), given))
  if nag then nag:exit(("shard %s: no URL to check"):format(tostring(sh))) end
  os.exit(0)
end
if total == 0 then usage_error("no URL given") end
if nag then
  nag:exit(("%d of %d URLs passed"):format(total - failed, total))
end
if opts.curl_codes and total == 1 and not last.pass then
  -- curl -f's numbers: a failed fetch by its error, else an HTTP error
  local code = exitcodes.curl(last.status == nil and last.error or nil,
    last.status)
  os.exit(code ~= 0 and code or 1)
end
os.exit(failed == 0 and 0 or 1)
