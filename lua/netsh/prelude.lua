-- prelude.lua -- what every netsh Lua state gets before user code runs:
-- a require that modules may yield in, coroutine functions that let task
-- waits pass through user coroutines, the globals (spawn, sleep, task,
-- socket, udp, http, json, websocket loaded on first use), and
-- main(plan), the body of the main task built by src/main.c from the
-- command line.
local core = require "task.core"
local SUSPEND = core.SUSPEND

local M = {}

---------------------------------------------------------------------------
-- require: Lua's own is a C function that calls the loader without a
-- continuation, so a module whose top level waits would fail with
-- "attempt to yield across a C-call boundary". Same searchers, same
-- messages, but the loader runs from Lua.
local package, loaded = package, package.loaded
local function load_module(name, level)
  if type(name) ~= "string" then
    error("bad argument #1 to 'require' (string expected, got "
      .. type(name) .. ")", level)
  end
  local v = loaded[name]
  if v ~= nil then return v end
  local msg = {}
  local searchers = package.searchers
  if type(searchers) ~= "table" then
    error("'package.searchers' must be a table", level)
  end
  for i = 1, #searchers do
    local loader, extra = searchers[i](name)
    if type(loader) == "function" then
      local r = loader(name, extra)
      if r ~= nil then loaded[name] = r
      elseif loaded[name] == nil then loaded[name] = true end
      return loaded[name], extra
    elseif type(loader) == "string" then
      msg[#msg + 1] = "\n\t" .. loader   -- one searcher a line, as 5.4's
    end
  end
  error(("module '%s' not found:%s"):format(name, table.concat(msg)),
    level)
end
local function require(name)
  local m, extra = load_module(name, 3)   -- errors name require's caller
  return m, extra
end
_G.require = require

---------------------------------------------------------------------------
-- coroutine.resume/wrap: a task wait inside a user coroutine yields the
-- SUSPEND sentinel; pass it up so the whole task parks, then resume the
-- inner coroutine when the task is woken.
local co_resume, co_yield, co_status = coroutine.resume, coroutine.yield,
  coroutine.status
local co_create, co_close = coroutine.create, coroutine.close
local pack, unpack = table.pack, table.unpack

local function pass_through(co, r)
  while r[1] and r[2] == SUSPEND and r.n == 2
      and co_status(co) == "suspended" do
    co_yield(SUSPEND)
    r = pack(co_resume(co))
  end
  return r
end

function coroutine.resume(co, ...)
  local r = pack(co_resume(co, ...))
  if r[1] and r[2] == SUSPEND then r = pass_through(co, r) end
  return unpack(r, 1, r.n)
end

function coroutine.wrap(f)
  local co = co_create(f)
  return function(...)
    local r = pack(co_resume(co, ...))
    if r[1] and r[2] == SUSPEND then r = pass_through(co, r) end
    if r[1] then return unpack(r, 2, r.n) end
    local err = r[2]
    co_close(co)
    if type(err) == "string" then error(err, 2) end
    error(err, 0)
  end
end

---------------------------------------------------------------------------
-- stdin without blocking the loop: io.read, io.lines() and io.stdin's
-- read/lines go through netsh.stdin (src/stdin.c), which suspends only the
-- calling task and reads every format as lua5.4 does. Every stdin read
-- takes this path, so no bytes hide in C stdio's buffer.
do
  local fmeta = getmetatable(io.stdin).__index
  local f_read, f_lines = fmeta.read, fmeta.lines
  local io_read, io_lines, io_input = io.read, io.lines, io.input
  local stdin_file = io.stdin
  local sin

  -- formats are checked before any byte is read, so a bad one raises at
  -- the caller's line, naming read as lua5.4 does
  local function check_formats(n, ...)
    for i = 1, n do
      local f = select(i, ...)
      local tf = type(f)
      if tf == "number" then
        if not math.tointeger(f) then
          error(("bad argument #%d to 'read' (number has no integer "
            .. "representation)"):format(i), 3)
        end
      elseif tf ~= "string" then
        error(("bad argument #%d to 'read' (string expected, got %s)")
          :format(i, f == nil and "no value" or tf), 3)
      elseif not f:find("^%*?[nlLa]") then
        error(("bad argument #%d to 'read' (invalid format)"):format(i), 3)
      end
    end
  end

  local function stdin_read(...)
    check_formats(select("#", ...), ...)
    sin = sin or require "netsh.stdin"
    return sin.read(...)
  end

  function fmeta.read(f, ...)
    if f == stdin_file then return stdin_read(...) end
    return f_read(f, ...)
  end

  local function stdin_lines(...)
    local fmts = pack(...)
    return function()
      local r = pack(stdin_read(unpack(fmts, 1, fmts.n)))
      if r[1] == nil and r[2] then error(r[2], 2) end  -- as Lua's lines
      return unpack(r, 1, r.n)
    end
  end

  function fmeta.lines(f, ...)
    if f == stdin_file then return stdin_lines(...) end
    return f_lines(f, ...)
  end

  function io.read(...)
    if io_input() == stdin_file then return stdin_read(...) end
    return io_read(...)
  end

  function io.lines(name, ...)
    if name == nil and io_input() == stdin_file then return stdin_lines(...) end
    return io_lines(name, ...)
  end
end

---------------------------------------------------------------------------
-- globals; the network modules load on first use so startup stays cheap
local task = require "task"
_G.task = task
_G.spawn = task.spawn
_G.sleep = task.sleep

-- printf(fmt, ...): string.format to stdout
function _G.printf(fmt, ...)
  io.stdout:write(string.format(fmt, ...))
end

-- die(msg [, code]): the message on stderr, prefixed with the script's
-- name, and exit (code 1 by default); stdout is flushed first.
function _G.die(msg, code)
  local name = (arg and arg[0] or "netsh"):match("([^/]+)$")
  io.stdout:flush()
  io.stderr:write(("%s: %s\n"):format(name, tostring(msg)))
  os.exit(code or 1)
end

local lazy = {socket = "socket", udp = "udp", http = "http", json = "json",
  getopt = "getopt", websocket = "websocket"}
-- __fields: the REPL completes them before they are loaded
local fields = {}
for k in pairs(lazy) do fields[k] = "table" end
setmetatable(_G, {__fields = fields, __index = function(t, k)
  local mod = lazy[k]
  if mod then
    local m = require(mod)
    rawset(t, k, m)
    return m
  end
end})

---------------------------------------------------------------------------
-- NETSH_TRACE=1 (or =hex): trace every socket operation, as --trace does
do
  local t = os.getenv("NETSH_TRACE")
  if t and t ~= "" and t ~= "0" then
    M.trace_pending = {hexdump = t == "hex" or t == "hexdump"}
  end
end

---------------------------------------------------------------------------
-- main(plan): the main task. Steps come from src/main.c in lua(1) order.

local function script_args()
  local args = {}
  local n = #arg
  for i = 1, n do args[i] = arg[i] end
  return args, n
end

local function run_chunk(chunk, err, ...)
  if not chunk then error(err, 0) end
  return chunk(...)
end

local function read_stdin_all()
  local stdin = require "netsh.stdin"
  local s, err = stdin.read("a")
  if err then error("cannot read stdin: " .. err, 0) end
  return s or ""
end

local steps = {}

function steps.init(s)
  if s.a:sub(1, 1) == "@" then
    run_chunk(loadfile(s.a:sub(2)))
  else
    run_chunk(load(s.a, s.b))
  end
end

function steps.e(s)
  run_chunk(load(s.a, "=(command line)"))
end

function steps.l(s)
  local g, mod = s.a:match("^([^=]+)=(.+)$")
  if not g then g, mod = s.a, s.a end
  _G[g] = load_module(mod, 0)   -- as lua5.4 -l: no position
end

function steps.script(s)
  local chunk, err
  if s.a == "-" then
    chunk, err = load(read_stdin_all(), "=stdin")
  else
    chunk, err = loadfile(s.a)
  end
  local args, n = script_args()
  run_chunk(chunk, err, unpack(args, 1, n))
end

function steps.stdin()
  run_chunk(load(read_stdin_all(), "=stdin"))
end

function steps.run(s)
  local embed = require "netsh.embed"
  if not s.a then
    return require("netsh.scripts").list(io.stdout)
  end
  local chunk = embed.load_script(s.a)
  if not chunk then
    local names = {}
    for name in pairs(embed.scripts()) do names[#names + 1] = name end
    table.sort(names)
    local near = require("getopt").nearest(s.a, names)
    io.stderr:write(("netsh: no bundled script '%s'%s (netsh -m lists them)\n")
      :format(s.a, near and ("; did you mean '%s'?"):format(near) or ""))
    os.exit(2)
  end
  arg[0] = s.a
  local args, n = script_args()
  chunk(unpack(args, 1, n))
end

function steps.test()
  return require("netsh.test").run(script_args())
end

function steps.repl(s)
  return require("netsh.repl").run{banner = s.a == "banner"}
end

function M.main(plan)
  if M.trace_pending then require("netsh.trace").enable(M.trace_pending) end
  for _, s in ipairs(plan) do steps[s.kind](s) end
end

return M
