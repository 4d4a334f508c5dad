-- http_bench.lua -- a small HTTP load generator on netsh's http client
--
--   netsh -m http_bench http://127.0.0.1:8080/ -c 50 -n 10000
--   netsh -m http_bench http://127.0.0.1:8080/ -c 20 -d 10s --json
--   cat host*.jsonl | netsh -m http_bench --merge --threshold 'p99<200ms'
--
-- -c tasks each loop over keep-alive requests until -n requests are done
-- or -d elapses, then it prints requests/s, latency p50/p90/p99/max, the
-- statuses seen and errors. A progress line updates on a terminal.
-- --json adds a latency histogram (lua/netsh/histogram.lua) that
-- --merge adds up across the lines of many hosts, recomputing totals and
-- percentiles; --threshold turns either into an exit code.
local getopt = require "getopt"
local exitcodes = require "netsh.exitcodes"
local histogram = require "netsh.histogram"
local jsonl = require "netsh.jsonl"

local usage_error, on_usage_error = exitcodes.usage(arg, "HTTP_BENCH")
local opts, args = getopt.parse(arg, {
  name = "http_bench",
  usage = "URL | --merge [FILE...]",
  summary = "Send requests to URL from -c concurrent tasks and report "
    .. "throughput and latency percentiles. With --merge, add up the "
    .. "--json lines of many runs (FILEs, or stdin) instead.",
  options = exitcodes.add_nagios(jsonl.add{
    {"c", "concurrency", arg = "N", type = "integer", default = 10,
     help = "requests in flight (at most 10000; never more than -n)"},
    {"n", "requests", arg = "N", type = "integer",
     help = "total requests (default 1000 unless -d is given)"},
    {"d", "duration", arg = "TIME",
     help = "run this long instead: 10, 10s, 500ms, 1m"},
    {"m", "method", arg = "METHOD", default = "GET"},
    {"H", "header", arg = "NAME:VALUE", multi = true, help = "extra header"},
    {nil, "body", arg = "TEXT", help = "request body"},
    {"t", "timeout", arg = "SECONDS", type = "number", default = 10,
     help = "per request"},
    {"k", "insecure", help = "do not verify TLS certificates"},
    {nil, "json", help = "print the report as one JSON line (with a "
       .. "latency histogram)"},
    {nil, "merge", help = "read http_bench --json lines (from FILEs or "
       .. "stdin; text before the first { is skipped, as parallel --tag "
       .. "adds) and report their sum"},
    {nil, "threshold", arg = "EXPR", multi = true,
     help = "fail unless EXPR holds: p99<200ms, p50<=20ms, max<1s, "
       .. "rps>=500, failed<1 (METRIC <|<=|>|>= VALUE; pNN any percentile)"},
  }),
  on_usage_error = on_usage_error,
  exit_codes = {"0  every request got a response below 400 (and every "
      .. "--threshold holds)",
    "1  some requests failed or got >= 400, or a --threshold failed",
    "2  usage error, or an unreadable line with --merge",
    "with --nagios: 0 OK, 2 CRITICAL (as 1 above), 3 UNKNOWN"},
})

local function seconds(s, what)
  local n, unit = tostring(s):match("^([%d%.]+)(%a*)$")
  n = tonumber(n)
  local mul = ({[""] = 1, s = 1, ms = 0.001, m = 60})[unit]
  if not n or not mul then usage_error(("bad %s '%s'"):format(what, s)) end
  return n * mul
end

-- "p99<200ms" -> {text, metric, op, value}; latencies in seconds
local function parse_threshold(t)
  local metric, op, num, unit =
    t:match("^%s*([%a][%w%.]*)%s*([<>]=?)%s*([%d%.]+)%s*(%a*)%s*$")
  local value = tonumber(num)
  if not metric or not value then
    usage_error(("bad --threshold '%s' (METRIC<VALUE, e.g. p99<200ms, "
      .. "rps>=500)"):format(t))
  end
  local pct = metric:match("^p(%d+%.?%d*)$")
  local latency = pct or metric == "max" or metric == "min"
  if pct then
    local p = tonumber(pct)
    -- p99 is the 99th percentile, p999 the 99.9th, p50 the median
    if #pct > 2 and pct ~= "100" and not pct:find("%.") then
      p = tonumber("0." .. pct) * 100
    end
    if not p or p <= 0 or p > 100 then
      usage_error(("--threshold '%s': percentile out of range"):format(t))
    end
    pct = p / 100
  elseif not latency and metric ~= "rps" and metric ~= "failed"
      and metric ~= "requests" then
    usage_error(("--threshold '%s': unknown metric '%s' (pNN, min, max, "
      .. "rps, failed, requests)"):format(t, metric))
  end
  if latency then
    local mul = ({us = 1e-6, ms = 1e-3, s = 1})[unit]
    if not mul then
      usage_error(("--threshold '%s': give the time's unit: us, ms or s")
        :format(t))
    end
    value = value * mul
  elseif unit ~= "" then
    usage_error(("--threshold '%s': %s takes no unit"):format(t, metric))
  end
  return {text = t:match("^%s*(.-)%s*$"), metric = metric, op = op,
    value = value, pct = pct, latency = latency}
end

local thresholds = {}
for _, t in ipairs(opts.threshold or {}) do
  thresholds[#thresholds + 1] = parse_threshold(t)
end
local out = opts.json and jsonl.new("http_bench", opts.tag, usage_error)

-- judge(report, pct) -> results, first failure text: pct(p) gives a
-- percentile in seconds
local function judge(report, pct)
  local results, first = {}, nil
  for _, t in ipairs(thresholds) do
    local v
    if t.pct then v = pct(t.pct)
    else v = report[t.metric] end
    local pass
    if t.op == "<" then pass = v < t.value
    elseif t.op == "<=" then pass = v <= t.value
    elseif t.op == ">" then pass = v > t.value
    else pass = v >= t.value end
    local shown = t.latency and ("%.3f ms"):format(v * 1e3)
      or (math.type(v) == "integer" and tostring(v) or ("%.1f"):format(v))
    results[#results + 1] = {expr = t.text, pass = pass, value = v}
    if not pass and not first then
      first = ("threshold %s failed: %s is %s"):format(t.text, t.metric, shown)
    end
  end
  return results, first
end

-- prints the report (text, --json or --nagios) and exits
local function finish(report, hist, pct, target)
  local results, why = judge(report, pct)
  report.thresholds = #results > 0 and results or nil
  local ok = report.failed == 0 and not why
  local err = why
  if report.failed > 0 then
    err = ("%d of %d requests failed"):format(report.failed, report.requests)
      .. (why and ("; " .. why) or "")
  end
  if opts.nagios then
    local nag = exitcodes.nagios("HTTP_BENCH")
    if not ok then nag:status(2, err) end
    nag:perf("rps", report.rps, nil, 0)
    for _, k in ipairs{"p50", "p90", "p99", "max"} do
      nag:perf(k, report[k], "s", 0)
    end
    nag:perf("requests", report.requests, "c", 0)
    nag:perf("failed", report.failed, "c", 0)
    nag:exit(("%d requests, %.1f/s, p99 %.2f ms"):format(report.requests,
      report.rps, report.p99 * 1e3))
  elseif out then
    report.histogram = hist:encode()
    out:emit(target, ok, err, report)
  else
    if report.merged then
      printf("%d runs merged (%s)\n", report.merged,
        table.concat(report.hosts, ", "))
    end
    printf("%d requests in %.2fs, %.1f requests/s, concurrency %d\n",
      report.requests, report.seconds, report.rps, report.concurrency)
    printf("latency  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
      report.p50 * 1e3, report.p90 * 1e3, report.p99 * 1e3, report.max * 1e3)
    local codes = {}
    for code, n in pairs(report.statuses) do
      codes[#codes + 1] = ("%s: %d"):format(code, n)
    end
    table.sort(codes)
    printf("statuses %s\n", #codes > 0 and table.concat(codes, ", ") or "none")
    for e, n in pairs(report.errors) do printf("error    %s: %d\n", e, n) end
    for _, r in ipairs(results) do
      printf("%s %s\n", r.pass and "pass    " or "FAIL    ", r.expr)
    end
  end
  os.exit(ok and 0 or (opts.nagios and 2 or 1))
end

---------------------------------------------------------------------------
-- --merge: many runs' lines -> one report
if opts.merge then
  local h = histogram.new()
  local sum = {requests = 0, failed = 0, rps = 0, seconds = 0,
    concurrency = 0, max = 0, statuses = {}, errors = {}}
  local hosts, seen_host, targets, n = {}, {}, {}, 0
  local function take(line, where)
    local at = line:find("{", 1, true)
    if not at then
      if line:match("^%s*$") then return end
      usage_error(where .. ": not a JSON line")
    end
    local r, err = json.try_decode(line:sub(at))
    if type(r) ~= "table" then
      usage_error(("%s: %s"):format(where, err or "not a JSON object"))
    end
    if r.tool ~= "http_bench" then
      usage_error(("%s: not an http_bench line (tool %s)"):format(where,
        tostring(r.tool)))
    end
    local rh, herr = histogram.decode(r.histogram)
    if not rh then usage_error(where .. ": " .. herr) end
    for _, k in ipairs{"requests", "failed", "rps", "seconds", "max"} do
      if type(r[k]) ~= "number" then
        usage_error(("%s: field %s missing"):format(where, k))
      end
    end
    n = n + 1
    h:merge(rh)
    sum.requests = sum.requests + r.requests
    sum.failed = sum.failed + r.failed
    sum.rps = sum.rps + r.rps    -- the runs ran side by side
    sum.seconds = math.max(sum.seconds, r.seconds)
    sum.concurrency = sum.concurrency + (r.concurrency or 0)
    sum.max = math.max(sum.max, r.max)
    if r.min then sum.min = math.min(sum.min or math.huge, r.min) end
    for k, v in pairs(type(r.statuses) == "table" and r.statuses or {}) do
      sum.statuses[k] = (sum.statuses[k] or 0) + v
    end
    for k, v in pairs(type(r.errors) == "table" and r.errors or {}) do
      sum.errors[k] = (sum.errors[k] or 0) + v
    end
    local host = tostring(r.host)
    if not seen_host[host] then
      seen_host[host] = true
      hosts[#hosts + 1] = host
    end
    if r.target ~= nil then targets[tostring(r.target)] = true end
  end
  local files = #args > 0 and args or {"-"}
  for _, f in ipairs(files) do
    local i = 0
    if f == "-" then
      local stdin = require "netsh.stdin"
      for line in function() return stdin.read("l") end do
        i = i + 1
        take(line, ("stdin line %d"):format(i))
      end
    else
      local fh, err = io.open(f)
      if not fh then usage_error(("cannot read %s"):format(err)) end
      for line in fh:lines() do
        i = i + 1
        take(line, ("%s line %d"):format(f, i))
      end
      fh:close()
    end
  end
  if n == 0 then usage_error("--merge: no http_bench line read") end
  table.sort(hosts)
  local tlist = {}
  for t in pairs(targets) do tlist[#tlist + 1] = t end
  table.sort(tlist)
  sum.merged, sum.hosts = n, hosts
  sum.min = sum.min or 0
  -- a bucket's middle may lie past the exact extremes: clamp to them
  local function pct(p)
    return math.max(sum.min, math.min(sum.max, h:percentile(p)))
  end
  sum.p50, sum.p90, sum.p99 = pct(0.5), pct(0.9), pct(0.99)
  finish(sum, h, pct,
    #tlist == 1 and tlist[1] or table.concat(tlist, " "))
end

---------------------------------------------------------------------------
-- a run
local http = require "http"
local task = require "task"
if #args ~= 1 then
  usage_error(#args == 0 and "give the URL to load" or "one URL only")
end
local url = args[1]
local duration = opts.duration and seconds(opts.duration, "duration")
local total = opts.requests or (duration and math.huge or 1000)
if opts.concurrency < 1 then usage_error("-c must be at least 1") end
if opts.concurrency > 10000 then usage_error("-c is at most 10000") end
-- no more workers than requests: each holds a session
local workers = math.min(opts.concurrency, total)
local headers = {}
for _, h in ipairs(opts.header or {}) do
  local k, v = h:match("^([^:]+):%s*(.*)$")
  if not k then usage_error(("bad header '%s' (NAME:VALUE)"):format(h)) end
  headers[k] = v
end

local lat, statuses, errors = {}, {}, {}
local hist = histogram.new()
local started, done, failed = 0, 0, 0
local t0 = task.now()
local stop_at = duration and t0 + duration or math.huge
local tty = require("netsh.stdin").isatty(2)

local function worker()
  local s = http.session{headers = headers, timeout = opts.timeout,
    verify = not opts.insecure}
  while started < total and task.now() < stop_at do
    started = started + 1
    local t = task.now()
    local res, err = s:request(opts.method, url, {body = opts.body})
    local dt = task.now() - t
    done = done + 1
    if res then
      lat[#lat + 1] = dt
      hist:add(dt)
      statuses[res.status] = (statuses[res.status] or 0) + 1
      if res.status >= 400 then failed = failed + 1 end
    else
      failed = failed + 1
      errors[err] = (errors[err] or 0) + 1
    end
  end
  s:close()
end

local progress
if tty then
  progress = spawn(function()
    while true do
      sleep(0.25)
      local el = task.now() - t0
      io.stderr:write(("\r%d requests, %.0f/s, %d failed  "):format(done,
        done / el, failed))
    end
  end)
end
task.group(function(g)
  for _ = 1, workers do g:spawn(worker) end
end)
if progress then progress:cancel() io.stderr:write("\r\27[K") end

local elapsed = task.now() - t0
table.sort(lat)
-- the nearest-rank percentile of the samples (histogram.lua's rule)
local function pct(p)
  if #lat == 0 then return 0 end
  return lat[math.max(1, math.ceil(#lat * p))]
end
local report = {requests = done, failed = failed,
  seconds = elapsed, rps = done / elapsed, concurrency = workers,
  p50 = pct(0.5), p90 = pct(0.9), p99 = pct(0.99), max = lat[#lat] or 0,
  min = lat[1] or 0, statuses = {}, errors = errors}
for code, n in pairs(statuses) do report.statuses[tostring(code)] = n end
finish(report, hist, pct, url)
