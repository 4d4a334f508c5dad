-- wait_for.lua -- wait until TCP ports accept connections (wait-for-it)
--
--   netsh -m wait_for db:5432 cache:6379 --timeout 60 -- ./run-tests.sh
--
-- Every target is tried in its own task, every --interval seconds, until
-- it accepts or --timeout runs out. With a command after --, runs it once
-- all are up (a child process on the loop: other tasks of the same netsh
-- go on meanwhile) and exits with its status (128 + n for signal n).
-- --json: docs/json-lines.md's envelope; --shard I/N waits for this copy's
-- share of the targets; --nagios is a Nagios plugin (--warn/--crit:
-- seconds until up).
local getopt = require "getopt"
local socket = require "socket"
local task = require "task"
local exitcodes = require "netsh.exitcodes"
local jsonl = require "netsh.jsonl"
local shard = require "netsh.shard"

local usage_error, on_usage_error = exitcodes.usage(arg, "WAIT_FOR")
local opts, args, dashdash = getopt.parse(arg, {
  name = "wait_for",
  usage = "HOST:PORT... [-- COMMAND [ARGS]]",
  summary = "Wait until every HOST:PORT accepts TCP connections. "
    .. "IPv6 hosts in brackets: [::1]:80.",
  options = exitcodes.add_nagios(jsonl.add{
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
    shard.option,
  }, {warn = "with --nagios: WARNING when a target took seconds outside "
       .. "RANGE to accept", crit = "with --nagios: CRITICAL when outside "
       .. "RANGE"}),
  on_usage_error = on_usage_error,
  min_args = 1,
  min_message = "which HOST:PORT should I wait for?",
  exit_codes = {"0  every target accepted (or: the command's own status)",
    "1  a target was not up within the timeout", "2  usage error",
    "126/127  the command could not be run / was not found",
    "128+n  the command was killed by signal n",
    "with --nagios: 0 OK, 1 WARNING (slow), 2 CRITICAL (not up, or too "
      .. "slow), 3 UNKNOWN"},
})
if (opts.warn or opts.crit) and not opts.nagios then
  usage_error("--warn and --crit go with --nagios")
end
local sh = shard.from(opts.shard, usage_error)
local out = opts.json and jsonl.new("wait_for", opts.tag, usage_error)
local nag = opts.nagios and exitcodes.nagios("WAIT_FOR", opts)

local targets, command = {}, nil
local ntargets = dashdash or #args
if dashdash and dashdash < #args then
  command = {table.unpack(args, dashdash + 1)}
end
for i = 1, ntargets do
  local a = args[i]
  local host, port = a:match("^%[(.+)%]:(%d+)$")
  if not host then host, port = a:match("^(.+):(%d+)$") end
  if not host then usage_error(("'%s' is not HOST:PORT"):format(a)) end
  port = tonumber(port)
  if port < 1 or port > 65535 then
    usage_error(("'%s': bad port (1-65535)"):format(a))
  end
  if not sh or sh:mine(a) then
    targets[#targets + 1] = {name = a, host = host, port = port}
  end
end
if ntargets == 0 then usage_error("no HOST:PORT given") end
if command and nag then usage_error("--nagios runs no command after --") end
if #targets == 0 and not opts.quiet then
  io.stderr:write(("wait_for: shard %s: none of the %d targets is this "
    .. "copy's\n"):format(tostring(sh), ntargets))
end

if opts.retry and opts.retry < 0 then
  usage_error("--retry needs a number >= 0")
end
if opts.retry_delay then
  if not (opts.retry_delay >= 0) then
    usage_error("--retry-delay needs a number >= 0")
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

local all_up, nup = true, 0
task.group(function(g)
  for _, t in ipairs(targets) do
    g:spawn(function()
      local up = attempt(t)
      local took = task.now() - t0
      if not up then all_up = false else nup = nup + 1 end
      if nag then
        if up then
          local state = nag:judge(took)
          nag:status(state, state > 0
            and ("%s up after %.1f s"):format(t.name, took) or nil)
        else
          nag:status(2, ("%s: %s"):format(t.name, t.err or "timeout"))
        end
        nag:perf(t.name, took, "s", 0)
      elseif out then
        out:emit(t.name, up, (not up) and (t.err or "timeout") or nil,
          {seconds = took})
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

if nag and not command then
  nag:exit(#targets == 0 and ("shard %s: no target"):format(tostring(sh))
    or ("%d of %d targets up"):format(nup, #targets))
end
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
