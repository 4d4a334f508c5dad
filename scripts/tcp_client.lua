-- tcp_client: netcat-like TCP client, stdin or a message in, replies out
local usage = [[
usage: netsh -m tcp_client [-n] [-t seconds] host port [message]
Connects to host:port, sends message (with a newline unless -n) or else
standard input, and copies what the server sends to standard output until
it closes the connection. After the input ends the sending side is shut
down, so the server sees end of file. For pipelines:
  printf 'hello\n' | netsh -m tcp_client localhost 7777
  -n          do not add a newline to message
  -t seconds  give up when the server is silent that long (default 30,
              0 = wait forever); connecting gives up after 30 s too]]

local socket = require "socket"

local args, newline, idle = {}, "\n", 30
local argv = table.pack(...)
local i = 1
while i <= argv.n do
  local a = argv[i]
  if a == "-h" or a == "--help" then print(usage) return
  elseif a == "-n" then newline = ""
  elseif a == "-t" then
    i = i + 1
    idle = tonumber(argv[i])
    if not idle then io.stderr:write(usage, "\n") os.exit(2) end
  else args[#args + 1] = a end
  i = i + 1
end
local host, port = args[1], tonumber(args[2])
if not host or not port then
  io.stderr:write(usage, "\n")
  os.exit(2)
end

local conn, err = socket.connect(host, port)
if not conn then
  io.stderr:write(("tcp_client: %s:%d: %s\n"):format(host, port, err))
  os.exit(1)
end
conn:settimeout(idle > 0 and idle or nil)

-- one task sends, this one receives: the connection is full duplex
local sender = spawn(function()
  if args[3] then
    assert(conn:sendall(args[3] .. newline))
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
      status = 1
    end
    break
  end
  io.stdout:write(data)
  io.stdout:flush()
end
sender:cancel()
conn:close()
os.exit(status)
