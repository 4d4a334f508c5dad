-- retryopt.lua -- curl's --retry, --retry-delay and --retry-connrefused
-- for the bundled scripts: the getopt rows, their checks, and the
-- task.retry / http retry options they mean.
--
-- As in curl: --retry N retries a transient failure N times (N + 1
-- attempts): a timeout, or HTTP 408, 429, 500, 502, 503, 504 (whatever
-- the method: asking for --retry is asking for it); a refused connection
-- only with --retry-connrefused. The pause is 1 s, doubling up to 10
-- minutes (with jitter), or --retry-delay SECONDS every time (0: that
-- default). A Retry-After from the server replaces the pause. Each retry
-- is announced on stderr, as curl's "Warning: ... Will retry in".
local M = {}

M.options = {
  {nil, "retry", arg = "N", type = "integer", default = 0,
   help = "retry a transient failure N times (as curl: a timeout, "
     .. "HTTP 408/429/5xx)"},
  {nil, "retry-delay", arg = "SECONDS", type = "number", default = 0,
   help = "pause between retries (0: 1 s, doubling up to 10 min)"},
  {nil, "retry-connrefused", help = "with --retry: a refused connection "
     .. "is transient too"},
}

-- add(options) -> options with the three rows appended
function M.add(options)
  for _, o in ipairs(M.options) do options[#options + 1] = o end
  return options
end

-- check(opts): the values in range, or a usage error (exit 2)
function M.check(opts)
  if opts.retry < 0 then die("--retry needs a number >= 0 (try --help)", 2) end
  if not (opts.retry_delay >= 0) then
    die("--retry-delay needs a number >= 0 (try --help)", 2)
  end
end

local function backoff(opts)
  local d = opts.retry_delay
  if d > 0 then
    return {backoff = d, factor = 1, max_backoff = d, jitter = false}
  end
  return {backoff = 1, factor = 2, max_backoff = 600}
end

-- A socket error worth another attempt.
local function transient(opts, err)
  return err == "timeout" or (opts.retry_connrefused
    and err == "connection refused")
end


-- task_opts(opts, name, what) -> options for task.retry around a socket
-- operation returning x | nil, err
function M.task_opts(opts, name, what)
  local o = backoff(opts)
  o.attempts = opts.retry + 1
  o.retry_if = function(x, err) return not x and transient(opts, err) end
  o.on_retry = function(n, delay, _, err)
    io.stderr:write(("%s: %s: %s; retry %d of %d in %.1fs\n"):format(name,
      what, tostring(err), n, opts.retry, delay))
  end
  return o
end

-- run(opts, name, what, fn) -> fn's results, retried per opts; a last
-- failure after retries says so, as http's: "timeout (after 3 attempts)"
function M.run(opts, name, what, fn)
  local tries = 0
  local r = table.pack(require("task").retry(function(...)
    tries = tries + 1
    return fn(...)
  end, M.task_opts(opts, name, what)))
  if not r[1] and tries > 1 then
    r[2] = ("%s (after %d attempts)"):format(tostring(r[2]), tries)
  end
  return table.unpack(r, 1, r.n)
end

-- http_retry(opts, method, name, what) -> the http retry option (nil
-- without --retry)
function M.http_retry(opts, method, name, what)
  if opts.retry == 0 then return nil end
  local r = backoff(opts)
  r.attempts = opts.retry + 1
  r.on = {"timeout", 408, 429, 500, 502, 503, 504}
  if opts.retry_connrefused then r.on[#r.on + 1] = "connect" end
  r.methods = {method}
  r.on_retry = function(n, delay, res, err)
    io.stderr:write(("%s: %s: %s; retry %d of %d in %.1fs\n"):format(name,
      what, err or ("HTTP " .. res.status), n, opts.retry, delay))
  end
  return r
end

return M
