-- ws.lua -- a WebSocket client and echo/broadcast server, like websocat
--
--   netsh -m ws ws://127.0.0.1:8080/chat     # stdin lines out, messages in
--   echo '{"op":"sub"}' | netsh -m ws --json -n 1 wss://example.org/feed
--   netsh -m ws --listen 8080                     # an echo server
--   netsh -m ws --listen 0.0.0.0:8080 --broadcast # a chat relay
--
-- Client: each line of standard input is sent as one message (text, or
-- binary with --binary); every message received is printed on a line of
-- its own (--json: {"kind", "data", "time"}, binary data in Base64). At
-- the end of input the connection is closed with the closing handshake,
-- messages still arriving are printed. Server (--listen): echoes every
-- message back, or with --broadcast relays it to every client.
local getopt = require "getopt"
local websocket = require "websocket"
local exitcodes = require "netsh.exitcodes"
local json = require "json"

local opts, args = getopt.parse(arg, {
  name = "ws",
  usage = "URL | --listen [HOST:]PORT",
  summary = "Send stdin lines as WebSocket messages to URL and print the "
    .. "messages received, one per line; or serve (echo, --broadcast).",
  options = {
    {"l", "listen", arg = "[HOST:]PORT",
     help = "serve instead: echo every message (HOST default 127.0.0.1)"},
    {nil, "broadcast", help = "with --listen: relay every message to every "
       .. "client"},
    {nil, "json", help = "one JSON object per message: kind, data (Base64 "
       .. "for binary), time"},
    {"b", "binary", help = "send stdin lines as binary messages"},
    {"n", "count", arg = "N", type = "integer",
     help = "close after receiving N messages"},
    {"H", "header", arg = "NAME:VALUE", multi = true,
     help = "extra request header"},
    {"p", "protocol", arg = "NAME", multi = true,
     help = "offer this subprotocol (repeatable)"},
    {"t", "timeout", arg = "SECONDS", type = "number", default = 10,
     help = "connecting and the handshake give up after this"},
    {nil, "idle", arg = "SECONDS", type = "number",
     help = "close when nothing is received for this long"},
    {nil, "ping-interval", arg = "SECONDS", type = "number",
     help = "ping after this much silence; the peer must answer within "
       .. "the same time"},
    {nil, "no-compress", help = "do not offer or accept permessage-deflate"},
    {nil, "unix", arg = "PATH", help = "connect to (or listen on) this "
       .. "Unix socket"},
    {nil, "cafile", arg = "FILE", help = "wss: trust this CA"},
    {"k", "insecure", help = "wss: do not verify the certificate"},
    {nil, "cert", arg = "FILE", help = "with --listen: serve wss with this "
       .. "certificate (and --key)"},
    {nil, "key", arg = "FILE", help = "with --cert: its private key"},
    {nil, "curl-codes", help = "exit with curl's codes when connecting "
       .. "fails (6 resolve, 7 connect, 28 timeout, 35 TLS, 60 certificate)"},
  },
  min_args = 0, max_args = 1,
  exit_codes = {"0  closed normally (code 1000 or none, or by us)",
    "1  the connection failed or closed abnormally", "2  usage error",
    "6 7 28 35 60  with --curl-codes: curl's meaning"},
})

if opts.count and opts.count < 1 then die("-n needs a number >= 1", 2) end
if not (opts.timeout > 0) then die("--timeout needs a positive number", 2) end
if opts.idle and not (opts.idle > 0) then
  die("--idle needs a positive number", 2)
end
if opts.ping_interval and not (opts.ping_interval > 0) then
  die("--ping-interval needs a positive number", 2)
end
if (opts.cert == nil) ~= (opts.key == nil) then
  die("--cert and --key go together", 2)
end
local headers = {}
for _, h in ipairs(opts.header or {}) do
  local k, v = h:match("^([^:%c]+):%s*([^\r\n]*)$")
  if not k then die(("bad header '%s' (NAME:VALUE)"):format(h), 2) end
  headers[k] = v
end
local common = {
  compress = not opts.no_compress,
  ping_interval = opts.ping_interval,
}

local function line_of(msg, kind)
  if opts.json then
    return json.encode({kind = kind, time = os.time(),
      data = kind == "binary" and (require "mime").b64(msg) or msg})
  end
  return msg
end

---------------------------------------------------------------------------
-- server

if opts.listen or (#args == 0 and opts.unix) then
  if #args > 0 then die("--listen takes no URL", 2) end
  local host, port
  if opts.unix then
    host = "unix:" .. opts.unix
  else
    host, port = tostring(opts.listen):match("^%[?(.-)%]?:(%d+)$")
    if not host then host, port = "127.0.0.1", opts.listen:match("^%d+$") end
    port = tonumber(port)
    if not port or port > 65535 then die("bad --listen (try --help)", 2) end
    if host == "" then host = "127.0.0.1" end
  end
  local tls
  if opts.cert then tls = {certfile = opts.cert, keyfile = opts.key} end
  local clients = {}
  local so = {compress = common.compress, ping_interval = common.ping_interval,
    send_timeout = 10}
  local srv, err = websocket.server{host = host, port = port, tls = tls,
    handler = function(req)
      local ws = req:websocket(so)
      if not ws then return end
      clients[ws] = true
      for msg, kind in ws:messages(opts.idle) do
        if opts.broadcast then
          for c in pairs(clients) do
            spawn(function()
              if not c:send(msg, kind) then clients[c] = nil end
            end)
          end
        else
          ws:send(msg, kind)
        end
      end
      clients[ws] = nil
      ws:close()
    end}
  if not srv then
    io.stderr:write(("ws: cannot listen on %s: %s\n"):format(
      opts.unix or opts.listen, err))
    os.exit(1)
  end
  local ip, p = srv:getsockname()
  io.stderr:write(("ws: listening on %s\n"):format(
    opts.unix or (ip .. ":" .. tostring(p))))
  return
end

---------------------------------------------------------------------------
-- client

if #args ~= 1 then die("which URL should I connect to? (try --help)", 2) end
local target = args[1]
if not target:match("^[Ww][Ss][Ss]?://") then
  die("URL must start with ws:// or wss:// (try --help)", 2)
end
local tls
if opts.cafile or opts.insecure then
  tls = {cafile = opts.cafile, verify = not opts.insecure}
end
local ws, err = websocket.connect(target, {headers = headers,
  protocols = opts.protocol, timeout = opts.timeout, tls = tls,
  unix = opts.unix, compress = common.compress,
  ping_interval = common.ping_interval})
if not ws then
  io.stderr:write(("ws: %s: %s\n"):format(target, err))
  os.exit(opts.curl_codes and exitcodes.curl(err) or 1)
end

local kind = opts.binary and "binary" or "text"
local sender = spawn(function()
  local stdin = require "netsh.stdin"
  while true do
    local line = stdin.read("l")
    if not line then break end
    local ok, e = pcall(ws.send, ws, line, kind)
    if not ok then      -- a text line that is not UTF-8
      io.stderr:write("ws: ", tostring(e):match("%((.*)%)$") or e, "\n")
    elseif not e then
      return
    end
  end
  ws:close(1000)
end)

local n = 0
local code
while true do
  local msg, k, c = ws:receive(opts.idle)
  if not msg then
    if k == "timeout" then ws:close(1000) code = 1000 break end
    code = c
    break
  end
  io.stdout:write(line_of(msg, k), "\n")
  io.stdout:flush()
  n = n + 1
  if opts.count and n >= opts.count then
    ws:close(1000)
    code = 1000
    break
  end
end
sender:cancel()
if code == 1000 or code == 1005 then os.exit(0) end
io.stderr:write(("ws: closed with %s%s\n"):format(tostring(code),
  ws.close_reason and ws.close_reason ~= "" and " (" .. ws.close_reason
  .. ")" or ""))
os.exit(1)
