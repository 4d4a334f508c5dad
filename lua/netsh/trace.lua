-- trace.lua -- `--trace` on any script (or NETSH_TRACE=1): every socket
-- operation logged on stderr with its task's name, the addresses and the
-- byte counts; `--hexdump` (or NETSH_TRACE=hex) adds the bytes, in the
-- layout of `ncat --hex-dump`. It wraps the TCP and UDP method tables, so
-- every script and module that uses sockets is traced without a change.
-- HTTP requests (lua/http.lua) see M.enabled and log as curl -v does.
local task = require "task"

local M = {enabled = false, hexdump = false}

local pack, unpack = table.pack, table.unpack
local out = io.stderr

local function hexdump(data)
  local lines = {}
  for off = 0, #data - 1, 16 do
    local chunk = data:sub(off + 1, off + 16)
    local hex = chunk:gsub(".", function(c) return ("%02x "):format(c:byte()) end)
    local txt = chunk:gsub("[^\32-\126]", ".")
    lines[#lines + 1] = ("  %08x  %-48s |%s|"):format(off, hex, txt)
  end
  return table.concat(lines, "\n")
end

local function where(sock)
  local ok, ip, port = pcall(sock.getsockname, sock)
  local here = ok and ip and (ip .. ":" .. tostring(port)) or "?"
  local ok2, pip, pport = pcall(sock.getpeername, sock)
  if ok2 and pip then return here .. " > " .. pip .. ":" .. tostring(pport) end
  return here
end

local function who()
  local t = task.current()
  return t and t:name() or "-"
end

local function log(kind, addr, op, detail, data)
  out:write(("netsh trace: [%s] %s %s %s%s\n"):format(who(), kind,
    addr, op, detail and (" " .. detail) or ""))
  if M.hexdump and data and #data > 0 then out:write(hexdump(data), "\n") end
end

local function result_text(r)
  if r[1] == nil and r.n >= 2 then return "-> nil, " .. tostring(r[2]) end
  return "-> ok"
end

-- describers: (args, results) -> detail text, bytes for the hexdump
local describe = {}
function describe.send(a, r)
  local data = a[1]
  if type(data) ~= "string" then return result_text(r) end
  local i, j = a[2] or 1, a[3] or #data
  data = data:sub(i, j)
  if r[1] == nil then
    return ("%d B -> nil, %s"):format(#data, tostring(r[2])), data
  end
  return ("%d B"):format(#data), data
end
describe.sendto = function(a, r)
  local d, data = describe.send({a[1]}, r)
  return ("%s to %s:%s"):format(d, tostring(a[2]), tostring(a[3])), data
end
local function received(a, r)
  if type(r[1]) == "string" then return ("%d B"):format(#r[1]), r[1] end
  local partial = r[3]
  if type(partial) == "string" and #partial > 0 then
    return ("-> nil, %s (%d B partial)"):format(tostring(r[2]), #partial), partial
  end
  return "-> nil, " .. tostring(r[2])
end
describe.receive = received
describe.receiveany = received
describe.receivefrom = function(a, r)
  local d, data = received(a, r)
  if type(r[1]) == "string" then d = ("%s from %s:%s"):format(d, tostring(r[2]), tostring(r[3])) end
  return d, data
end
describe.connect = function(a, r)
  return ("%s:%s %s"):format(tostring(a[1]), tostring(a[2]), result_text(r))
end
describe.setpeername = describe.connect
describe.bind = describe.connect
describe.setsockname = describe.connect
describe.accept = function(a, r)
  if r[1] == nil then return result_text(r) end
  local ok, ip, port = pcall(r[1].getpeername, r[1])
  return ("-> client %s:%s"):format(ok and ip or "?", ok and port or "?")
end

local function wrap(kind, methods, names)
  for _, name in ipairs(names) do
    local f = rawget(methods, name)
    if type(f) == "function" then
      local d = describe[name]
      methods[name] = function(self, ...)
        local a = pack(...)
        local before = where(self)     -- close() forgets the addresses
        local r = pack(f(self, ...))
        local detail, data
        if d then detail, data = d(a, r) else detail = result_text(r) end
        local after = where(self)
        log(kind, after ~= "?" and after or before, name, detail, data)
        return unpack(r, 1, r.n)
      end
    end
  end
end

-- The tables a socket's methods are looked up in: one index table per
-- LuaSocket class (src/class.c: each holds the C methods and `class`),
-- and __methods behind them (where lua/socket.lua adds its helpers).
local function method_tables(obj)
  local mt = getmetatable(obj)
  local r = {}
  for _, cmt in ipairs(rawget(mt, "__classes") or {}) do
    r[#r + 1] = rawget(cmt, "__index")
  end
  r[#r + 1] = rawget(mt, "__methods")
  return r
end

-- enable{hexdump = bool}: wrap the socket methods (once)
function M.enable(opts)
  if opts and opts.hexdump then M.hexdump = true end
  if M.enabled then return end
  M.enabled = true
  local socket = require "socket"
  local s = socket.tcp()
  local tcp_tables = method_tables(s)
  s:close()
  for _, t in ipairs(tcp_tables) do
    wrap("tcp", t, {"connect", "bind", "listen", "accept", "send",
      "receive", "receiveany", "shutdown", "close", "starttls",
      "sslhandshake"})
  end
  local ok, udp = pcall(require, "udp")
  if ok then
    local u = udp.udp()
    local udp_tables = method_tables(u)
    u:close()
    for _, t in ipairs(udp_tables) do
      wrap("udp", t, {"setsockname", "setpeername", "send", "sendto",
        "receive", "receivefrom", "close"})
    end
  end
end

return M
