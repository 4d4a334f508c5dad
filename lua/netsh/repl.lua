-- repl.lua -- the interactive loop: `netsh` on a terminal, or `netsh -i`.
--
-- Each entry is read (libedit through repl.core on a terminal, plain
-- lines through netsh.stdin otherwise), compiled exactly as lua(1) does
-- it (first line as an expression, then as a statement; "<eof>" errors
-- ask for more lines), and run as a task of its own while this task, the
-- REPL, waits for it: Ctrl-C interrupts that task only, and the tasks it
-- spawned keep running. Results are pretty-printed (netsh.pretty).
-- Reading a line parks the REPL task too, so background tasks run while
-- the user types.
local task = require "task"
local tcore = require "task.core"
local pretty = require "netsh.pretty"

local M = {}
local pack, unpack = table.pack, table.unpack
local stdout, stderr = io.stdout, io.stderr

-- entries kept in memory and in the history file
M.history_size = math.tointeger(tonumber(os.getenv("NETSH_HISTSIZE")))
  or 1000
M.prompt, M.prompt2 = "> ", ">> "

---------------------------------------------------------------------------
-- compiling an entry as lua(1) does

local function incomplete(err)
  return err:sub(-5) == "<eof>"
end

-- load(src, first) -> chunk | nil, err, more
-- `first`: src is the first line alone, so try it as an expression.
function M.load(src, first)
  if first then
    if src:sub(1, 1) == "=" then src = "return " .. src:sub(2) end
    local f = load("return " .. src .. ";", "=stdin", "t")
    if f then return f end
  end
  local f, err = load(src, "=stdin", "t")
  if f then return f end
  return nil, err, incomplete(err)
end

---------------------------------------------------------------------------
-- completion: reads tables only (next, rawget, metatables' __index tables)

-- value -> each string key of it and of its __index tables, once
-- A module whose __index function makes fields on first use (socket.url,
-- socket.unix...) lists them in its metatable's __fields (name -> "table"
-- or "function"): they complete without running the module's code.
-- An object whose __index is a function may keep its methods table in
-- the metatable's __methods (netsh's sockets keep theirs there too).
local stub = {table = {}, ["function"] = function() end}

local function each_field(v, fn)
  local seen, hops = {}, 0
  while v ~= nil and hops < 8 do
    if type(v) == "table" then
      for k, val in next, v do
        if type(k) == "string" and not seen[k] then
          seen[k] = true
          fn(k, val)
        end
      end
    end
    local mt = debug.getmetatable(v)
    local later = mt and rawget(mt, "__fields")
    if type(later) == "table" then
      for k, kind in pairs(later) do
        if type(k) == "string" and not seen[k] then
          seen[k] = true
          fn(k, stub[kind] or true)
        end
      end
    end
    local idx = mt and (rawget(mt, "__methods") or rawget(mt, "__index"))
    if type(idx) ~= "table" then break end
    v, hops = idx, hops + 1
  end
end

local function lookup(v, name)
  local hops = 0
  while v ~= nil and hops < 8 do
    if type(v) == "table" then
      local r = rawget(v, name)
      if r ~= nil then return r end
    end
    local mt = debug.getmetatable(v)
    local idx = mt and rawget(mt, "__index")
    local later = mt and rawget(mt, "__fields")
    if type(idx) == "function" and type(later) == "table"
        and later[name] == "table" then
      -- a module netsh loads on first use (json, socket.url): load it
      local ok, r = pcall(idx, v, name)
      return ok and r or nil
    end
    idx = mt and (rawget(mt, "__methods") or idx)
    if type(idx) ~= "table" then return nil end
    v, hops = idx, hops + 1
  end
end

-- complete(line, start, stop) -> {words}, append
-- The word to complete is line:sub(start + 1, stop); what precedes it
-- says where to look: after `a.b.` the fields of a.b, after `obj:` its
-- methods, else globals and keywords.
function M.complete(line, start, stop)
  local word = line:sub(start + 1, stop)
  local before = line:sub(1, start)
  local sep = before:sub(-1)
  local found, values = {}, {}
  local function add(k, v)
    -- names starting with _ are internals: only when asked for
    if k:sub(1, #word) == word and k:match("^[%a_][%w_]*$")
        and (word:sub(1, 1) == "_" or k:sub(1, 1) ~= "_")
        and (word:sub(1, 2) == "__" or k:sub(1, 2) ~= "__") then
      if values[k] == nil then found[#found + 1] = k end
      values[k] = v
    end
  end
  if word:match("^%d") then return {} end
  if sep == "." or sep == ":" then
    local path = before:sub(1, -2):match("[%a_][%w_%.]*$")
    if not path or path:find("..", 1, true) or path:sub(-1) == "." then
      return {}
    end
    local pre = before:sub(1, #before - 1 - #path):sub(-1)
    if pre:match("[%w_%.:%)%]\"']") then return {} end
    local v = _G
    for name in path:gmatch("[^.]+") do
      v = lookup(v, name)
      if v == nil then return {} end
    end
    each_field(v, function(k, val)
      if not pretty.keywords[k]
          and (sep == "." or type(val) == "function") then
        add(k, val)
      end
    end)
  else
    if before:match("[%w_]$") then return {} end
    each_field(_G, add)
    for k in pairs(pretty.keywords) do add(k, true) end
  end
  table.sort(found)
  local append = ""
  if #found == 1 then
    local v = values[found[1]]
    if pretty.keywords[found[1]] then append = " "
    elseif type(v) == "function" then append = "("
    elseif type(v) == "table" and sep ~= ":" then append = "." end
  end
  return found, append
end

---------------------------------------------------------------------------
-- helpers at the prompt: help, ls, tasks

local docs = {
  help = "help([x]) -- this text, or a reference of module/value x",
  ls = "ls([t]) -- the fields of t (default: globals), sorted",
  tasks = "tasks() -- the live tasks: id, status, name",
  spawn = "spawn(fn, ...) -> task -- run fn in a background task",
  sleep = "sleep(seconds) -- wait without blocking other tasks",
  ["task.spawn"] = "spawn(fn, ...) | spawn{name = s, fn, ...} -> task",
  ["task.sleep"] = "sleep(seconds) -- park this task; 0: yield once",
  ["task.yield"] = "yield() -- let every other ready task run once",
  ["task.now"] = "now() -> seconds (monotonic)",
  ["task.current"] = "current() -> the running task",
  ["task.cond"] = "cond() -> c -- c:wait([timeout]), c:signal(), " ..
    "c:broadcast()",
  ["task.timeout"] = "timeout(seconds, fn, ...) -> fn's results " ..
    "| nil, \"timeout\"",
  ["task.group"] = "group(fn, ...) -- fn(g); g:spawn(f) children are " ..
    "joined; a failure cancels all",
  ["task.all"] = "all(tasks [, timeout]) -> {results...} | nil, err, i",
  ["task.any"] = "any(tasks [, timeout]) -> i, results | nil, err",
  ["task.retry"] = "retry(fn [, opts]) -> the first success | the " ..
    "last nil, err; opts: attempts, backoff, max_backoff, timeout",
  ["task.list"] = "list() -> {task, ...} live tasks",
  ["task.count"] = "count() -> number of live tasks",
  ["socket.connect"] = "connect(host, port [, locaddr, locport, " ..
    "family]) -> tcp | nil, err",
  ["socket.bind"] = "bind(host, port [, backlog]) -> server | nil, err",
  ["socket.tcp"] = "tcp() -> master | nil, err",
  ["socket.udp"] = "udp() -> udp | nil, err",
  ["socket.select"] = "select(recvt, sendt [, timeout]) -> readable, " ..
    "writable, err",
  ["socket.sleep"] = "sleep(seconds)",
  ["socket.gettime"] = "gettime() -> seconds since the epoch",
  ["json.encode"] = "encode(value) -> string",
  ["json.decode"] = "decode(string) -> value; raises on invalid JSON",
  ["json.try_decode"] = "try_decode(string) -> value | nil, err",
}

M.docs = docs     -- repl_spec checks them against the README

-- name under which v is known: a global, a loaded module, a global's field
local function name_of(v)
  for k, x in next, _G do
    if x == v and type(k) == "string" then return k end
  end
  for k, x in next, package.loaded do
    if x == v and type(k) == "string" then return k end
  end
end

local function signature(f)
  local info = debug.getinfo(f, "Su")
  if info.what == "C" then return "(...)" end
  local names = {}
  for i = 1, info.nparams do names[i] = debug.getlocal(f, i) end
  if info.isvararg then names[#names + 1] = "..." end
  return "(" .. table.concat(names, ", ") .. ")"
end

local function short(v)
  if type(v) == "function" then return "function" .. signature(v) end
  if type(v) == "table" and not (debug.getmetatable(v) or {}).__tostring
  then
    local n = 0
    for _ in next, v do n = n + 1 end
    return ("table (%d %s)"):format(n, n == 1 and "field" or "fields")
  end
  local s = pretty(v, {depth = 1, string = 60})
  if #s > 60 then s = s:sub(1, 57) .. "..." end
  return s
end

local function sorted_fields(t)
  local keys, vals = {}, {}
  each_field(t, function(k, v)
    keys[#keys + 1] = k
    vals[k] = v
  end)
  table.sort(keys)
  return keys, vals
end

local function say(...)
  stdout:write(...)
  stdout:write("\n")
end

local general_help = [[
Type Lua: expressions are printed, statements run; an unfinished entry
continues on the next line (">>"). Each entry runs as a task: calls that
wait (sockets, sleep) just work, and the prompt returns when it is done.
  help(x)       a short reference of module x (socket, task, ...)
  ls(t)         the fields of table t, sorted (globals when omitted)
  tasks()       the live tasks
  spawn(fn)     run fn in the background; it keeps running at the prompt
  sleep(s)      wait s seconds without blocking other tasks
Modules: task, socket, udp, http, json (loaded on first use)
Keys: Tab completes (globals, t.fields, obj:methods), Ctrl-R searches
the history, Ctrl-C interrupts the running entry or clears the line,
Ctrl-D on an empty line exits.]]

function M.help(x)
  if x == nil then return say(general_help) end
  local name = name_of(x)
  if type(x) == "function" then
    return say(docs[name or ""] or ((name or "function") .. signature(x)))
  end
  if type(x) ~= "table" and not debug.getmetatable(x) then
    return say(short(x))
  end
  say(name and (name .. ": ") or "", short(x))
  local keys, vals = sorted_fields(x)
  for _, k in ipairs(keys) do
    local v = vals[k]
    if k:sub(1, 2) ~= "__" then
      local doc = docs[(name or "") .. "." .. k]
      if type(v) == "function" then
        say("  ", doc or (k .. signature(v)))
      else
        say("  ", k, " = ", short(v))
      end
    end
  end
end

function M.ls(t)
  if t == nil then t = _G end
  local keys, vals = sorted_fields(t)
  local w = 0
  for _, k in ipairs(keys) do w = math.max(w, #k) end
  w = math.min(w, 24)
  for _, k in ipairs(keys) do
    say(("  %-" .. w .. "s  %s"):format(k, short(vals[k])))
  end
end

function M.tasks()
  local me = tcore.current()
  for i, t in ipairs(tcore.list()) do
    local note = ""
    if t == M.task then note = "  (the REPL)"
    elseif t == me then note = "  (this entry)" end
    say(("  %2d  %-9s %s%s"):format(i, t:status(), t:name(), note))
  end
end

---------------------------------------------------------------------------
-- line sources: libedit on a terminal, plain lines otherwise

local function history_path()
  local p = os.getenv("NETSH_HISTORY")
  if p then return p ~= "" and p or nil end
  local home = os.getenv("HOME")
  return home and home ~= "" and (home .. "/.netsh_history") or nil
end

-- globals that prelude loads on first use: load them now, so that the
-- completer (which must not run module code) sees their fields
local lazy = {"socket", "udp", "http", "json"}

local function editor(core)
  for _, name in ipairs(lazy) do
    if rawget(_G, name) == nil then pcall(function() return _G[name] end) end
  end
  local ok, err = core.open{history = history_path(),
    size = M.history_size, complete = M.complete}
  if not ok then return nil, err end
  local last
  local ed = {}
  function ed.read(prompt) return core.readline(prompt) end
  function ed.abort() core.abort() end
  function ed.remember(entry)
    if entry == last then return end
    last = entry
    local saved, serr = core.add_history(entry)
    if not saved and not ed.warned then
      ed.warned = true
      stderr:write("netsh: cannot save the history: ", serr, "\n")
    end
  end
  function ed.close() core.close() end
  -- output from other tasks while a line is being edited: wipe the line,
  -- write, draw it again below
  local bol = true
  local file_write = debug.getmetatable(stdout).__index.write
  local function guarded(write)
    return function(...)
      if not core.hide() then return write(...) end
      local r = pack(pcall(write, ...))
      if not bol then file_write(stdout, "\n") end
      core.show()
      if not r[1] then error(r[2], 2) end
      return unpack(r, 2, r.n)
    end
  end
  local function track(f, ...)
    local n = select("#", ...)
    if (f == stdout or f == stderr) and n > 0 then
      local s = tostring((select(n, ...)))
      if #s > 0 then bol = s:sub(-1) == "\n" end
    end
    return file_write(f, ...)
  end
  local saved = {print = print, write = io.write, fwrite = file_write}
  _G.print = guarded(function(...)
    saved.print(...)
    bol = true
  end)
  io.write = guarded(function(...) return track(io.output(), ...) end)
  debug.getmetatable(stdout).__index.write = guarded(track)
  function ed.close()
    _G.print, io.write = saved.print, saved.write
    debug.getmetatable(stdout).__index.write = saved.fwrite
    core.close()
  end
  return ed
end

local function plain()
  local stdin = require "netsh.stdin"
  local ed = {}
  function ed.read(prompt)
    stdout:write(prompt)
    stdout:flush()
    return stdin.read("l")
  end
  function ed.abort() stdout:write("\n") end
  function ed.remember() end
  function ed.close() end
  return ed
end

---------------------------------------------------------------------------
-- running an entry

local function is_interrupt(err)
  return type(err) == "string" and err:match("interrupted$") ~= nil
end

local function message(err)
  if type(err) == "string" then return err end
  local mt = debug.getmetatable(err)
  if mt and rawget(mt, "__tostring") then
    local ok, s = pcall(tostring, err)
    if ok and type(s) == "string" then return s end
  end
  return ("(error object is a %s value)"):format(type(err))
end

-- the traceback without the REPL's own frames, at most 10 of them
local function short_traceback(co_level)
  local tb = debug.traceback("", co_level)
  local out = {}
  for l in tb:gmatch("[^\n]+") do
    if l:find("in function 'xpcall'", 1, true)
        or l:find("lua/netsh/repl.lua", 1, true) then break end
    out[#out + 1] = l
  end
  if #out > 11 then
    local n = #out - 11
    out = {unpack(out, 1, 11)}
    out[#out + 1] = ("\t...(%d more)"):format(n)
  end
  if #out <= 1 then return nil end
  return table.concat(out, "\n")
end

local function on_error(err)
  local msg = message(err)
  if is_interrupt(msg) then return {msg = "interrupted"} end
  return {msg = msg, traceback = short_traceback(3)}
end

local function report(r)
  if r[1] then
    if r.n > 1 then
      local ok, s = pcall(pretty.results, r.n - 1, unpack(r, 2, r.n))
      if not ok then s = "(cannot print: " .. message(s) .. ")" end
      stdout:write(s, "\n")
    end
    return
  end
  local e = r[2]
  stdout:flush()
  if type(e) == "table" then
    if e.msg == "interrupted" and M.tty then
      stderr:write("\n")        -- after the ^C the terminal echoed
    end
    stderr:write(e.msg, "\n")
    if e.traceback then stderr:write(e.traceback, "\n") end
  else
    stderr:write(message(e), "\n")
  end
end

-- Runs the chunk as a task and waits for it. The task prints its own
-- results, so they come before the output of tasks it spawned.
local function execute(core, chunk, n)
  local t = tcore.spawn{name = "line " .. n, function()
    report(pack(xpcall(chunk, on_error)))
  end}
  tcore.quiet(t, true)
  if core then core.foreground(t) end
  -- a Ctrl-C just as the line ends interrupts this join instead: the
  -- line is done by then, and joining again returns at once
  local ok, _, err = pcall(t.join, t)
  if not ok then ok, _, err = pcall(t.join, t) end
  if core then core.foreground(nil) end
  if t:status() ~= "done" then     -- interrupted while printing...
    report{false, t:status() == "cancelled" and "cancelled" or
      {msg = is_interrupt(err) and "interrupted" or message(err)}, n = 2}
  end
end

---------------------------------------------------------------------------
-- the loop

-- One entry: false at EOF, else true.
local function entry(ed, core, n)
  local line = ed.read(M.prompt)
  if line == nil then return false end
  local text = line
  local chunk, err, more = M.load(line, true)
  while more do
    local l = ed.read(M.prompt2)
    if l == nil then break end
    text = text .. "\n" .. l
    chunk, err, more = M.load(text:sub(1, 1) == "=" and
      "return " .. text:sub(2) or text, false)
  end
  if text:find("%S") then ed.remember(text) end
  if not chunk then
    stdout:flush()
    stderr:write(err, "\n")
    return true
  end
  execute(core, chunk, n)
  return true
end

local function banner(core)
  if core then
    local v = core.versions()
    return ("netsh %s (%s, libuv %s) -- help() for help, Ctrl-D exits")
      :format(v.netsh, v.lua, v.libuv)
  end
  return ("netsh (%s) -- help() for help, Ctrl-D exits"):format(_VERSION)
end

function M.run(opts)
  opts = opts or {}
  local okc, core = pcall(require, "repl.core")
  if not okc then core = nil end
  local ed
  if core and core.isatty(0) and core.isatty(1) then
    local err
    ed, err = editor(core)
    if not ed then
      stderr:write("netsh: line editing unavailable: ", tostring(err), "\n")
    end
  end
  ed = ed or plain()
  M.tty = core and core.isatty(0)
  M.task = tcore.current()
  if core then core.attach(M.task) end
  for k, f in pairs{help = M.help, ls = M.ls, tasks = M.tasks} do
    if rawget(_G, k) == nil then rawset(_G, k, f) end
  end
  if opts.banner then stdout:write(banner(core), "\n") end
  local n = 0
  while true do
    n = n + 1
    local ok, more = pcall(entry, ed, core, n)
    if ok and not more then break end
    if not ok then
      if is_interrupt(more) then ed.abort()
      else stderr:write("netsh: repl: ", message(more), "\n") end
    end
  end
  stdout:write("\n")
  stdout:flush()
  ed.close()
  if core then core.detach() end
  -- leaving the REPL ends the session: stop what it left running
  for _, t in ipairs(tcore.list()) do
    if t ~= M.task then t:cancel() end
  end
end

return M
