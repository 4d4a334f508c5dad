-- proc.lua -- the public "proc" module: child processes whose waits
-- suspend only the calling task. The C side is "proc.core" (src/proc.c).
--
--   proc.run(cmd [, args] [, opts]) -> r | nil, err | nil, "timeout", r
--     Runs cmd (looked up in PATH) with the list args, feeds it
--     opts.stdin (a string; otherwise it reads /dev/null), captures its
--     output and waits for it: r = {status =, signal =, stdout =,
--     stderr =, pid =}. status is the exit code, or 128 + the signal's
--     number when a signal ended it (then r.signal is that number).
--     opts.timeout (seconds): past it the child is killed (SIGKILL) and
--     run returns nil, "timeout", r with what it had written.
--   proc.sh(line [, opts])  proc.run("/bin/sh", {"-c", line}, opts)
--   proc.spawn(cmd [, args] [, opts]) -> p | nil, err
--     Starts cmd and returns at once. p.stdin, p.stdout, p.stderr are
--     netsh stream sockets (receive("*l"/"*a"/n), lines(), receiveany,
--     receiveuntil, send, close, shutdown, settimeout, socket.select).
--     p.pid; p:wait([timeout]) -> status, signal | nil, "timeout";
--     p:kill([sig]) (default "TERM"; a number or a name: "KILL", "INT"...);
--     p:exited() -> status, signal | nil while it runs; p:close() closes
--     the streams and kills the child if it still runs, and so do
--     `local p <close> = proc.spawn(...)` on scope exit (a cancelled task
--     too) and the garbage collector.
--
-- Options (both): cwd = directory; env = {NAME = "value", OTHER = false}
-- adds, replaces or (false) removes variables of netsh's environment;
-- clearenv = true starts from an empty one. stdin, stdout, stderr pick a
-- stream's mode: "pipe" (spawn's default: a stream in p), "capture"
-- (run's default for stdout and stderr), "inherit" (netsh's own), "null"
-- (/dev/null), and for stderr "stdout" (into the same stream as stdout).
--
-- A command that cannot start gives nil, err ("no such file or
-- directory", "permission denied"); bad arguments and options raise.
local core = require "proc.core"
local socket = require "socket"

local M = {}

local modes = {pipe = true, capture = true, inherit = true, null = true,
  stdout = true}

local function check_args(fname, cmd, args, opts)
  if type(cmd) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)")
      :format(fname, type(cmd)), 3)
  end
  if args ~= nil and type(args) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)")
      :format(fname, type(args)), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #3 to '%s' (table expected, got %s)")
      :format(fname, type(opts)), 3)
  end
  return opts or {}
end

local function copy_common(opts)
  return {cwd = opts.cwd, env = opts.env, clearenv = opts.clearenv}
end

local function mode(fname, opts, name, allowed)
  local m = opts[name]
  if m == nil then return nil end
  if type(m) ~= "string" or not modes[m] or not allowed[m] then
    error(("bad option '%s' to '%s' (invalid mode %s)")
      :format(name, fname, type(m) == "string" and ("'" .. m .. "'")
        or type(m)), 3)
  end
  return m
end

local run_out = {capture = true, inherit = true, null = true}
local run_err = {capture = true, inherit = true, null = true, stdout = true}

function M.run(cmd, args, opts)
  if type(args) == "table" and opts == nil and args[1] == nil
     and next(args) ~= nil then
    args, opts = nil, args           -- run(cmd, opts)
  end
  opts = check_args("run", cmd, args, opts)
  local o = copy_common(opts)
  local input = opts.stdin
  if input ~= nil then
    if type(input) ~= "string" then
      error(("bad option 'stdin' to 'run' (string expected, got %s)")
        :format(type(input)), 2)
    end
    o.stdin, o.input = "capture", input
  end
  o.stdout = mode("run", opts, "stdout", run_out)
  o.stderr = mode("run", opts, "stderr", run_err)
  local t = opts.timeout
  if t ~= nil and (type(t) ~= "number" or not (t >= 0)) then
    error("bad option 'timeout' to 'run' (seconds >= 0 expected)", 2)
  end
  o.timeout = t
  return core.run(cmd, args, o)
end

function M.sh(line, opts)
  if type(line) ~= "string" then
    error(("bad argument #1 to 'sh' (string expected, got %s)")
      :format(type(line)), 2)
  end
  return M.run("/bin/sh", {"-c", line}, opts)
end

---------------------------------------------------------------------------
-- spawn and the process object

local Process = {}
Process.__index = Process
Process.__name = "netsh.process"

local function wrap(fd)
  if fd == nil then return nil end
  local s = socket.tcp()
  local ok, err = s:setfd(fd)
  if not ok then
    core.closefd(fd)
    return nil, err
  end
  return s
end

local spawn_modes = {pipe = true, inherit = true, null = true}
local spawn_err = {pipe = true, inherit = true, null = true, stdout = true}

function M.spawn(cmd, args, opts)
  if type(args) == "table" and opts == nil and args[1] == nil
     and next(args) ~= nil then
    args, opts = nil, args
  end
  opts = check_args("spawn", cmd, args, opts)
  local o = copy_common(opts)
  o.stdin = mode("spawn", opts, "stdin", spawn_modes)
  o.stdout = mode("spawn", opts, "stdout", spawn_modes)
  o.stderr = mode("spawn", opts, "stderr", spawn_err)
  local p, fd0, fd1, fd2 = core.spawn(cmd, args, o)
  if not p then return nil, fd0 end
  local self = setmetatable({_p = p, pid = p:getpid()}, Process)
  local err
  self.stdin, err = wrap(fd0)
  if fd0 and not self.stdin then
    core.closefd(fd1 or -1)
    core.closefd(fd2 or -1)
    p:close()
    return nil, err
  end
  self.stdout, err = wrap(fd1)
  if fd1 and not self.stdout then
    core.closefd(fd2 or -1)
    self:close()
    return nil, err
  end
  self.stderr, err = wrap(fd2)
  if fd2 and not self.stderr then
    self:close()
    return nil, err
  end
  return self
end

-- p:wait([timeout]) -> status, signal | nil, "timeout"
function Process:wait(timeout)
  return self._p:wait(timeout)
end

-- p:kill([sig]) -> true | nil, err
function Process:kill(sig)
  return self._p:kill(sig)
end

-- p:exited() -> status, signal | nil (still running)
function Process:exited()
  return self._p:exited()
end

-- p:close(): close the streams; kill (SIGKILL) the child if it runs.
-- It is reaped by the loop a moment later, whoever waits or not.
function Process:close()
  if self.stdin then self.stdin:close() end
  if self.stdout then self.stdout:close() end
  if self.stderr then self.stderr:close() end
  self._p:close()
  return true
end
Process.__close = Process.close

function Process:__tostring()
  return (tostring(self._p):gsub("^proc", "process"))
end

return M
