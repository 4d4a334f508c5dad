-- http_bench.lua -- a small HTTP load generator on netsh's http client
--
--   netsh -m http_bench http://127.0.0.1:8080/ -c 50 -n 10000
--   netsh -m http_bench http://127.0.0.1:8080/ -c 20 -d 10s --json
--
-- -c tasks each loop over keep-alive requests until -n requests are done
-- or -d elapses, then it prints requests/s, latency p50/p90/p99/max, the
-- statuses seen and errors. A progress line updates on a terminal.
local getopt = require "getopt"
local http = require "http"
local task = require "task"

local opts, args = getopt.parse(arg, {
  name = "http_bench",
  usage = "URL",
  summary = "Send requests to URL from -c concurrent tasks and report "
    .. "throughput and latency percentiles.",
  options = {
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
    {nil, "json", help = "print the report as one JSON object"},
  },
  min_args = 1, max_args = 1,
  exit_codes = {"0  every request got a response below 400",
    "1  some requests failed or got >= 400", "2  usage error"},
})

local function seconds(s)
  local n, unit = tostring(s):match("^([%d%.]+)(%a*)$")
  n = tonumber(n)
  local mul = ({[""] = 1, s = 1, ms = 0.001, m = 60})[unit]
  if not n or not mul then die(("bad duration '%s'"):format(s), 2) end
  return n * mul
end

local url = args[1]
local duration = opts.duration and seconds(opts.duration)
local total = opts.requests or (duration and math.huge or 1000)
if opts.concurrency < 1 then die("-c must be at least 1", 2) end
if opts.concurrency > 10000 then die("-c is at most 10000", 2) end
-- no more workers than requests: each holds a session
local workers = math.min(opts.concurrency, total)
local headers = {}
for _, h in ipairs(opts.header or {}) do
  local k, v = h:match("^([^:]+):%s*(.*)$")
  if not k then die(("bad header '%s' (NAME:VALUE)"):format(h), 2) end
  headers[k] = v
end

local lat, statuses, errors = {}, {}, {}
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
local function pct(p)
  if #lat == 0 then return 0 end
  return lat[math.max(1, math.ceil(#lat * p))]
end
local report = {url = url, requests = done, failed = failed,
  seconds = elapsed, rps = done / elapsed, concurrency = workers,
  p50 = pct(0.5), p90 = pct(0.9), p99 = pct(0.99), max = lat[#lat] or 0,
  statuses = {}, errors = errors}
for code, n in pairs(statuses) do report.statuses[tostring(code)] = n end

if opts.json then
  json.print(report)
else
  printf("%d requests in %.2fs, %.1f requests/s, concurrency %d\n",
    done, elapsed, report.rps, workers)
  printf("latency  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
    report.p50 * 1e3, report.p90 * 1e3, report.p99 * 1e3, report.max * 1e3)
  local codes = {}
  for code, n in pairs(statuses) do codes[#codes + 1] = ("%d: %d"):format(code, n) end
  table.sort(codes)
  printf("statuses %s\n", #codes > 0 and table.concat(codes, ", ") or "none")
  for e, n in pairs(errors) do printf("error    %s: %d\n", e, n) end
end
os.exit(failed == 0 and 0 or 1)
