-- tcp_client.lua -- netcat-like TCP client: stdin or a message in, replies out
--
--   printf 'hello\n' | netsh -m tcp_client localhost 12345
--   netsh -m tcp_client -n localhost 12345 'Bonjour serveur'
--   netsh -m tcp_client --tls example.com 443 < request.txt
--   netsh -m tcp_client unix:/run/app.sock 'PING'
--
-- Connects, sends the message (with a newline unless -n) or else standard
-- input, and copies what the server sends to standard output until it
-- closes. When the input ends the sending side is shut down, so the server
-- sees end of file. Sending and receiving run at once (two tasks).
local getopt = require "getopt"
local socket = require "socket"
local exitcodes = require "netsh.exitcodes"
local retryopt = require "netsh.retryopt"

local opts, args = getopt.parse(arg, {
  name = "tcp_client",
  usage = "HOST PORT [MESSAGE] | unix:PATH [MESSAGE]",
  summary = "Send MESSAGE (or stdin) to HOST:PORT (or the Unix socket "
    .. "PATH, as nc -U) and copy the replies to stdout until the server "
    .. "closes.",
  options = retryopt.add{
    {"n", "no-newline", help = "do not add a newline to MESSAGE"},
    {"t", "timeout", arg = "SECONDS", type = "number", default = 30,
     help = "give up when the server is silent this long (0: never); "
       .. "connecting gives up after it too"},
    {nil, "tls", help = "speak TLS (the certificate is verified)"},
    {nil, "cafile", arg = "FILE", help = "with --tls: trust this CA"},
    {"k", "insecure", help = "with --tls: do not verify the certificate"},
    {nil, "curl-codes", help = "exit with curl's codes on failure "
      .. "(6 resolve, 7 connect, 28 timeout, 35 TLS, 60 certificate)"},
  },
  min_args = 1, max_args = 3,
  min_message = "HOST and PORT are required",
  exit_codes = {"0  the server closed the connection normally",
    "1  the connection failed", "2  usage error",
    "6 7 28 35 60  with --curl-codes: curl's meaning"},
})

local host, port, message = args[1], nil, nil
if host:match("^unix:") then                  -- unix:PATH [MESSAGE]
  if #args > 2 then die("unix:PATH takes no PORT (try --help)", 2) end
  message = args[2]
else
  if #args < 2 then die("HOST and PORT are required (try --help)", 2) end
  port, message = tonumber(args[2]), args[3]
  if not port or port < 1 or port > 65535 then
    die("bad PORT (try --help)", 2)
  end
end
retryopt.check(opts)
local newline = opts.no_newline and "" or "\n"
local idle = opts.timeout

local function fail(err)
  io.stderr:write(("tcp_client: %s%s: %s\n"):format(host,
    port and ":" .. port or "", err))
  os.exit(opts.curl_codes and exitcodes.curl(err) or 1)
end

local tls
if opts.tls then
  tls = {verify = not opts.insecure, cafile = opts.cafile}
end
-- connecting is what --retry retries (see lua/netsh/retryopt.lua)
local conn, err = retryopt.run(opts, "tcp_client",
  host .. (port and ":" .. port or ""), function()
  if port then
    return socket.create_connection({host, port}, idle > 0 and idle or nil)
  end
  return socket.connect(host, {timeout = idle > 0 and idle or nil})
end)
if not conn then fail(err) end
if tls then
  local ok, terr = conn:starttls(tls)
  if not ok then fail(terr) end
end
conn:settimeout(idle > 0 and idle or nil)

-- one task sends, this one receives: the connection is full duplex
local sender = spawn(function()
  if message then
    assert(conn:sendall(message .. newline))
  else
    local stdin = require "netsh.stdin"
    while true do
      local chunk = stdin.read("L")
      if not chunk then break end
      local ok, e = conn:sendall(chunk)
      if not ok then return nil, e end
    end
  end
  conn:shutdown("send")
  return true
end)

local status = 0
while true do
  local data, e = conn:receiveany(65536)
  if not data then
    if e ~= "closed" then
      io.stderr:write(("tcp_client: %s\n"):format(e))
      status = opts.curl_codes and exitcodes.curl(e) or 1
    end
    break
  end
  io.stdout:write(data)
  io.stdout:flush()
end
sender:cancel()
conn:close()
os.exit(status)
