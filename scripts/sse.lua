-- sse.lua -- print server-sent events as they come, one per line
--
--   netsh -m sse http://127.0.0.1:8080/events
--   netsh -m sse --json -n 10 URL | jq -r .data
--
-- Listens as a browser's EventSource does: after a drop it reconnects
-- with Last-Event-ID, waiting the server's retry time, until Ctrl-C,
-- --count events, --max-reconnects, or the server answers 204. A line is
-- the event's data (its line breaks written as \n, backslashes as \\);
-- --json writes JSON lines instead (docs/json-lines.md: the envelope,
-- then event, data, id, retry), and a last ok=false line on an error.
local getopt = require "getopt"
local http = require "http"
local jsonl = require "netsh.jsonl"

local opts, args = getopt.parse(arg, {
  name = "sse",
  usage = "URL",
  summary = "Print the server-sent events (text/event-stream) of URL, "
    .. "one per line, reconnecting as EventSource does.",
  options = jsonl.add{
    {nil, "json", help = "one JSON object per event: event, data, id, "
       .. "retry"},
    {"n", "count", arg = "N", type = "integer",
     help = "exit after N events"},
    {"t", "type", arg = "NAME", multi = true,
     help = "only events of this type (repeatable; default all)"},
    {"H", "header", arg = "NAME:VALUE", multi = true,
     help = "extra request header"},
    {nil, "last-event-id", arg = "ID", help = "resume after this event"},
    {nil, "reconnect", arg = "SECONDS", type = "number", default = 3,
     help = "pause before reconnecting when the server set none"},
    {nil, "max-reconnects", arg = "N", type = "integer",
     help = "give up after N reconnections (default: never)"},
    {nil, "connect-timeout", arg = "SECONDS", type = "number",
     default = 10, help = "per connection attempt"},
    {"k", "insecure", help = "do not verify TLS certificates"},
  },
  min_args = 1, max_args = 1,
  min_message = "which URL should I listen to?",
  exit_codes = {"0  the events ended (--count, a 204, or the stream "
    .. "ended and --max-reconnects was reached)",
    "1  an error status, not an event stream, or no connection after "
    .. "--max-reconnects", "2  usage error"},
})

if opts.count and opts.count < 1 then die("-n needs a number >= 1", 2) end
if not (opts.reconnect >= 0) then die("--reconnect needs a number >= 0", 2) end
if opts.max_reconnects and opts.max_reconnects < 0 then
  die("--max-reconnects needs a number >= 0", 2)
end
if not (opts.connect_timeout > 0) then
  die("--connect-timeout needs a positive number", 2)
end
local headers = {}
for _, h in ipairs(opts.header or {}) do
  local k, v = h:match("^([^:]+):%s*(.*)$")
  if not k then die(("bad header '%s' (NAME:VALUE)"):format(h), 2) end
  headers[k] = v
end
local out = opts.json and jsonl.new("sse", opts.tag)
local types
if opts.type and #opts.type > 0 then
  types = {}
  for _, t in ipairs(opts.type) do types[t] = true end
end

local function line(ev)
  if out then
    return out:line(args[1], true, nil, {event = ev.event, data = ev.data,
      id = ev.id, retry = ev.retry})
  end
  return (ev.data:gsub("[\\\n]", {["\\"] = "\\\\", ["\n"] = "\\n"}))
end

local n = 0
local ok, err = pcall(function()
  for ev in http.events(args[1], {headers = headers,
      last_event_id = opts.last_event_id, reconnect = opts.reconnect,
      max_reconnects = opts.max_reconnects,
      connect_timeout = opts.connect_timeout,
      verify = not opts.insecure}) do
    if not types or types[ev.event] then
      io.stdout:write(line(ev), "\n")
      io.stdout:flush()
      n = n + 1
      if opts.count and n >= opts.count then break end
    end
  end
end)
if not ok then
  if out then out:emit(args[1], false, tostring(err)) end
  die(tostring(err), 1)
end
