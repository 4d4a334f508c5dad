-- udp_send.lua -- send one datagram and print the reply (for pipelines)
-- usage: netsh scripts/udp_send.lua [options] host port [message]
--        (or netsh -m udp_send ...)
-- The message is the argument, or all of standard input when absent. The
-- reply goes to standard output as it is (no newline added). Exit code 1
-- when no reply comes within the timeout or on a network error.
local getopt = require "getopt"

local opts, args = getopt.parse(arg, {
  name = "udp_send", usage = "host port [message] | unix:PATH [message]",
  summary = "Send one UDP datagram and print the reply.",
  options = {
    {"t", "timeout", arg = "SECONDS", type = "number", default = 5,
     help = "how long to wait for the reply"},
    {"n", "no-reply", help = "send only, do not wait for a reply"},
    {nil, "curl-codes", help = "exit with curl's codes on failure "
      .. "(6 resolve, 7 refused, 28 timeout)"},
  },
  min_args = 1, max_args = 3,
  min_message = "host and port are required",
  exit_codes = {"0  reply printed (or sent, with --no-reply)",
    "1  timeout or network error", "2  usage error",
    "6 7 28  with --curl-codes: curl's meaning"},
})
local exitcodes = require "netsh.exitcodes"
local reply_path                 -- a Unix client's own name, for replies
local function failed(err)
  if reply_path then os.remove(reply_path) end
  os.exit(opts.curl_codes and exitcodes.curl(err) or 1)
end

local host, port, message, where = args[1], nil, nil, nil
if host:match("^unix:") then             -- unix:PATH [message]
  if #args > 2 then
    io.stderr:write("udp_send: unix:PATH takes no port\n")
    os.exit(2)
  end
  message, where = args[2], host
else
  if #args < 2 then
    io.stderr:write("udp_send: host and port are required (try --help)\n")
    os.exit(2)
  end
  port, message = math.tointeger(tonumber(args[2])), args[3]
  if not port or port < 1 or port > 65535 then
    io.stderr:write("udp_send: port must be a number from 1 to 65535\n")
    os.exit(2)
  end
  where = (host:find(":", 1, true) and "[%s]:%d" or "%s:%d")
    :format(host, port)
end
if message == nil then message = io.read("a") or "" end

local sock = udp.udp()
local ok, err = true, nil
if not port and not opts.no_reply then
  -- a Unix datagram comes back only to a named socket: name ours
  reply_path = os.tmpname()
  os.remove(reply_path)
  ok, err = sock:setsockname("unix:" .. reply_path)
end
if ok then ok, err = sock:setpeername(host, port) end  -- names resolve here
if ok then ok, err = sock:send(message) end
if not ok then
  io.stderr:write(("udp_send: %s: %s\n"):format(where, err))
  failed(err)
end
if opts.no_reply then
  sock:close()
  os.exit(0)
end
sock:settimeout(opts.timeout)
local reply, rerr = sock:receive()
sock:close()
if reply_path then os.remove(reply_path) end
if not reply then
  io.stderr:write(("udp_send: no reply from %s: %s\n"):format(where, rerr))
  failed(rerr)
end
io.write(reply)
