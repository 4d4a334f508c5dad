-- udp_send.lua -- send one datagram and print the reply (for pipelines)
-- usage: netsh scripts/udp_send.lua [options] host port [message]
--        (or netsh -m udp_send ...)
-- The message is the argument, or all of standard input when absent. The
-- reply goes to standard output as it is (no newline added). Exit code 1
-- when no reply comes within the timeout or on a network error.
local getopt = require "getopt"

local opts, args = getopt.parse(arg, {
  name = "udp_send", usage = "host port [message]",
  summary = "Send one UDP datagram and print the reply.",
  options = {
    {"t", "timeout", arg = "SECONDS", type = "number", default = 5,
     help = "how long to wait for the reply"},
    {"n", "no-reply", help = "send only, do not wait for a reply"},
    {nil, "curl-codes", help = "exit with curl's codes on failure "
      .. "(6 resolve, 7 refused, 28 timeout)"},
  },
  min_args = 2, max_args = 3,
  min_message = "host and port are required",
  exit_codes = {"0  reply printed (or sent, with --no-reply)",
    "1  timeout or network error", "2  usage error",
    "6 7 28  with --curl-codes: curl's meaning"},
})
local exitcodes = require "netsh.exitcodes"
local function failed(err)
  os.exit(opts.curl_codes and exitcodes.curl(err) or 1)
end

local host, port = args[1], tonumber(args[2])
if not port then
  io.stderr:write("udp_send: port must be a number\n")
  os.exit(2)
end
local where = (host:find(":", 1, true) and "[%s]:%d" or "%s:%d")
  :format(host, port)
local message = args[3]
if message == nil then message = io.read("a") or "" end

local sock = udp.udp()
local ok, err = sock:setpeername(host, port)   -- names resolve here
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
if not reply then
  io.stderr:write(("udp_send: no reply from %s: %s\n"):format(where, rerr))
  failed(rerr)
end
io.write(reply)
