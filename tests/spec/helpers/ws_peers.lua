-- helpers/ws_peers.lua -- the WebSocket peers of the websocket specs:
-- Python's websockets and Node's ws (helpers/ws_peer.py, ws_peer.js) as
-- background processes, and serve(), the netsh server the peers talk to.
--
--   peers.server(kind, args) -> port, stop   kind: "python" | "node"
--   peers.client(kind, url, args [, timeout]) -> output lines (a string)
--   peers.serve(handler [, opts]) -> port, stop
--
-- Processes write to a file that is polled (sleep), so the loop -- and a
-- netsh server in this process -- runs while they do. serve() runs
-- handler(req) per connection on websocket.server: http.server's
-- requests when this netsh has it, else its own accept loop's (method,
-- path, headers, hijack(), websocket(opts), as http.server's).
local websocket = require "websocket"
local M = {}
local src = os.getenv("NETSH_SRC") or "."
local dir = src .. "/tests/spec/helpers/"

local python
local function python_cmd()
  if python == nil then
    python = false
    for _, p in ipairs({"python3", "/usr/bin/python3"}) do
      if os.execute(p .. " -c 'import websockets' 2>/dev/null") then
        python = p
        break
      end
    end
  end
  return python
end

-- Is this peer installed? (python3-websockets, node-ws)
function M.available(kind)
  if kind == "python" then return python_cmd() ~= false end
  return os.execute("NODE_PATH=/usr/share/nodejs node -e \"require('ws')\""
    .. " >/dev/null 2>&1") == true
end

local function command(kind, argv)
  if kind == "python" then
    return python_cmd() .. " " .. dir .. "ws_peer.py " .. argv
  end
  return "NODE_PATH=/usr/share/nodejs exec node " .. dir .. "ws_peer.js "
    .. argv
end

local function start(kind, argv)
  local out = os.tmpname()
  local p = io.popen("(" .. command(kind, argv) .. ") > " .. out
    .. " 2>&1 & echo $!")
  local pid = p:read("l")
  p:close()
  return out, pid
end

local function read(path)
  local f = io.open(path)
  local s = f and f:read("a") or ""
  if f then f:close() end
  return s
end

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

function M.server(kind, argv)
  local out, pid = start(kind, "server " .. (argv or ""))
  local deadline = task.now() + 10
  local port
  repeat
    sleep(0.02)
    port = read(out):match("^(%d+)\n")
  until port or task.now() > deadline or not alive(pid)
  if not port then
    local text = read(out)
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
    error(kind .. " peer did not start: " .. text)
  end
  return tonumber(port), function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    os.remove(out)
  end
end

function M.client(kind, url, argv, timeout)
  local out, pid = start(kind, "client " .. url .. " " .. (argv or ""))
  local deadline = task.now() + (timeout or 30)
  while alive(pid) and task.now() < deadline do sleep(0.02) end
  if alive(pid) then os.execute("kill " .. pid) end
  local text = read(out)
  os.remove(out)
  return text
end

function M.serve(handler, opts)
  opts = opts or {}
  local srv = assert(websocket.server{host = opts.host or "127.0.0.1",
    port = 0, tls = opts.tls, handler = handler, grace = 0.5})
  local _, port = srv:getsockname()
  return port, function() srv:close() end
end

return M
