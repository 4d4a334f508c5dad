-- wait_for.lua -- wait until TCP ports accept connections (wait-for-it)
--
--   netsh -m wait_for db:5432 cache:6379 --timeout 60 -- ./run-tests.sh
--
-- Every target is tried in its own task, every --interval seconds, until
-- it accepts or --timeout runs out. With a command after --, runs it once
-- all are up (a child process on the loop: other tasks of the same netsh
-- go on meanwhile) and exits with its status (128 + n for signal n).
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"

local opts, args, dashdash = getopt.parse(arg, {
  name = "wait_for",
  usage = "HOST:PORT... [-- COMMAND [ARGS]]",
  summary = "Wait until every HOST:PORT accepts TCP connections. "
    .. "IPv6 hosts in brackets: [::1]:80.",
  options = {
    {"t", "timeout", arg = "SECONDS", type = "number", default = 30,
     help = "give up after this long (0: try once)"},
    {"i", "interval", arg = "SECONDS", type = "number", default = 0.5,
     help = "pause between attempts"},
    {nil, "retry", arg = "N", type = "integer",
     help = "give up after N retries (default: retry until --timeout)"},
    {nil, "retry-delay", arg = "SECONDS", type = "number",
     help = "the same as --interval (curl's name)"},
    {nil, "retry-connrefused", help = "accepted as in curl; wait_for "
       .. "always retries a refused connection"},
    {"q", "quiet", help = "print nothing, only set the exit code"},
    {nil, "json", help = "one JSON object per target on stdout"},
  },
  min_args = 1,
  min_message = "which HOST:PORT should I wait for?",
  exit_codes = {"0  every target accepted (or: the command's own status)",
    "1  a target was not up within the timeout", "2  usage error",
    "126/127  the command could not be run / was not found",
    "128+n  the command was killed by signal n"},
})

local targets, command = {}, nil
local ntargets = dashdash or #args
if dashdash and dashdash < #args then
  command = {table.unpack(args, dashdash + 1)}
end
for i = 1, ntargets do
  local a = args[i]
  local host, port = a:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = a:match("^(.+):(%d+)$") end
  if not host then die(("'%s' is not HOST:PORT (try --help)"):format(a), 2) end
  port = tonumber(port)
  if port < 1 or port > 65535 then
    die(("'%s': bad port (1-65535; try --help)"):format(a), 2)
  end
  targets[#targets + 1] = {name = a, host = host, port = port}
end
if #targets == 0 then die("no HOST:PORT given (try --help)", 2) end

if opts.retry and opts.retry < 0 then
  die("--retry needs a number >= 0 (try --help)", 2)
end
if opts.retry_delay then
  if not (opts.retry_delay >= 0) then
    die("--retry-delay needs a number >= 0 (try --help)", 2)
  end
  opts.interval = opts.retry_delay
end

local t0 = task.now()
local deadline = t0 + opts.timeout

local function attempt(t)
  local tries = 0
  while true do
    tries = tries + 1
    local left = deadline - task.now()
    local s, err = socket.create_connection({t.host, t.port},
      math.max(0.05, math.min(left, 5)))
    if s then
      s:close()
      return true
    end
    t.err = err
    left = deadline - task.now()
    if left <= 0 then return false end
    if opts.retry and tries > opts.retry then
      t.err = ("%s (after %d attempts)"):format(err, tries)
      return false
    end
    sleep(math.min(opts.interval, left))
  end
end

local all_up = true
task.group(function(g)
  for _, t in ipairs(targets) do
    g:spawn(function()
      local up = attempt(t)
      local took = task.now() - t0
      if not up then all_up = false end
      if opts.json then
        json.print{target = t.name, up = up, seconds = took,
          error = (not up) and t.err or nil}
      elseif not opts.quiet then
        if up then
          io.stderr:write(("wait_for: %s is up after %.1fs\n"):format(t.name, took))
        else
          io.stderr:write(("wait_for: %s not up after %.1fs: %s\n")
            :format(t.name, took, t.err or "timeout"))
        end
      end
    end)
  end
end)

if not all_up then os.exit(1) end
if command then
  -- the command runs as a child of the loop (proc), not os.execute, which
  -- would stop every other task of this netsh until it ends
  local proc = require "proc"
  io.stdout:flush()
  local p, err = proc.spawn(command[1], {table.unpack(command, 2)},
    {stdin = "inherit", stdout = "inherit", stderr = "inherit"})
  if not p then
    io.stderr:write(("wait_for: cannot run '%s': %s\n"):format(command[1],
      err))
    os.exit(err == "no such file or directory" and 127 or 126)  -- as sh
  end
  os.exit((p:wait()))      -- its exit code, or 128 + the signal's number
end
