-- netsh/sse.lua -- the server-sent events parser (pure Lua, no I/O), used
-- by http (res:events, http.events, http.sse_parser) and fuzzed by
-- tests/fuzz/fuzz_sse. Follows WHATWG HTML, "Interpreting an event
-- stream".
local concat, fmt = table.concat, string.format

local M = {}

-- A parser fed with chunks as they come (res:events() on a response and
-- http.events(), which reconnects, use it). Lines end in CRLF, LF or CR
-- (a CR at the end of one chunk and an LF at the start of the next are
-- one line end);
-- one UTF-8 BOM at the start of the stream is dropped; ":" starts a
-- comment; an event ends with a blank line, and an event cut short by the
-- end of the stream is dropped. Bytes are passed on as they are (no
-- U+FFFD for bad UTF-8). One event (its data, and a line not ended yet)
-- may hold at most max bytes (M.MAX_EVENT, 16 MiB, unless the parser is
-- given another): past that, feed raises "bad response: event too large
-- (limit N bytes)", so a server that never ends a line cannot grow
-- memory without bound.

local BOM = "\239\187\191"
M.MAX_EVENT = 16 * 1024 * 1024

local Parser = {}
Parser.__index = Parser

-- parser([last_id, retry, max]) -> parser; p:feed(chunk) -> a list of
-- the events complete so far: {event =, data =, id =, retry =}. id is
-- the last event ID (it carries over from event to event; p.id is the
-- one to send as Last-Event-ID), retry the server's reconnection time in
-- milliseconds; both nil until sent.
function M.parser(last_id, retry, max)
  return setmetatable({buf = {}, bom = false, cr = false, data = {},
    event = "", id = last_id, idbuf = last_id, retry = retry,
    held = 0, size = 0, max = max or M.MAX_EVENT}, Parser)
end

-- held: bytes of the line not ended yet; size: bytes of the event's data
local function check_size(self)
  local limit = self.max
  if self.held + self.size > limit then
    error(fmt("bad response: event too large (limit %d bytes)", limit), 0)
  end
end

-- One line, without its line end.
function Parser:line(line, out)
  if line == "" then
    local data = self.data
    local ev = self.event
    self.event = ""
    self.id = self.idbuf     -- the last event ID changes on any blank line
    self.size = 0
    if #data == 0 then return end
    self.data = {}
    out[#out + 1] = {event = ev ~= "" and ev or "message",
      data = concat(data, "\n"), id = self.id, retry = self.retry}
    return
  end
  if line:byte(1) == 58 then return end          -- ":" a comment
  local field, value = line, ""
  local c = line:find(":", 1, true)
  if c then
    field, value = line:sub(1, c - 1), line:sub(c + 1)
    if value:byte(1) == 32 then value = value:sub(2) end
  end
  if field == "data" then
    self.data[#self.data + 1] = value
    self.size = self.size + #value + 1
    check_size(self)
  elseif field == "event" then
    self.event = value
  elseif field == "id" then
    if not value:find("\0", 1, true) then self.idbuf = value end
  elseif field == "retry" then
    if value:find("^%d+$") then self.retry = tonumber(value) end
  end                                            -- other fields: ignored
end

function Parser:feed(chunk)
  local out = {}
  local buf = self.buf
  if self.bom and not self.cr and not chunk:find("[\r\n]") then
    buf[#buf + 1] = chunk     -- a long line: joined once, when it ends
    self.held = self.held + #chunk
    check_size(self)
    return out
  end
  local s = concat(buf) .. chunk
  self.buf = {}
  if not self.bom then
    -- the BOM may come split over chunks too
    if #s < 3 and BOM:sub(1, #s) == s then
      self.buf = {s}
      return out
    end
    if s:sub(1, 3) == BOM then s = s:sub(4) end
    self.bom = true
  end
  local pos = 1
  if self.cr and #s > 0 then
    if s:byte(1) == 10 then pos = 2 end          -- the LF of a CRLF
    self.cr = false
  end
  while true do
    local i = s:find("[\r\n]", pos)
    if not i then break end
    local line = s:sub(pos, i - 1)
    pos = i + 1
    if s:byte(i) == 13 then
      if i == #s then
        self.cr = true                           -- an LF may follow
      elseif s:byte(i + 1) == 10 then
        pos = i + 2
      end
    end
    self:line(line, out)
  end
  self.held = 0
  if pos <= #s then
    self.buf[1] = s:sub(pos)
    self.held = #s - pos + 1
    check_size(self)
  end
  return out
end

return M
