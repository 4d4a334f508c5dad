-- fuzz_sse_driver.lua -- the server-sent events parser (lua/netsh/sse.lua)
-- on random streams. The first byte seeds the split points. Checks: fed
-- whole, fed in random pieces and fed byte by byte, the stream gives the
-- same events, the same last event ID and the same retry time; every
-- event has string data and event fields; with a small size limit the
-- only error is "bad response: event too large".
local sse = require "netsh.sse"

local function run(stream, pieces, max)
  local p = sse.parser(nil, nil, max)
  local out = {}
  for _, chunk in ipairs(pieces) do
    for _, ev in ipairs(p:feed(chunk)) do
      assert(type(ev.data) == "string" and type(ev.event) == "string",
        "an event without data or type")
      out[#out + 1] = ("%q|%q|%q|%s"):format(ev.event, ev.data,
        tostring(ev.id), tostring(ev.retry))
    end
  end
  return table.concat(out, "\n"), tostring(p.id), tostring(p.retry)
end

return function(s)
  if #s == 0 then return end
  local seed, stream = s:byte(1), s:sub(2)
  local pieces, bytes, pos = {}, {}, 1
  while pos <= #stream do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local n = seed % 7 + 1
    pieces[#pieces + 1] = stream:sub(pos, pos + n - 1)
    pos = pos + n
  end
  for i = 1, #stream do bytes[i] = stream:sub(i, i) end
  local e1, id1, r1 = run(stream, {stream})
  local e2, id2, r2 = run(stream, pieces)
  local e3, id3, r3 = run(stream, bytes)
  assert(e1 == e2 and e1 == e3, "events differ with the split")
  assert(id1 == id2 and id1 == id3, "last event ID differs with the split")
  assert(r1 == r2 and r1 == r3, "retry differs with the split")
  local ok, err = pcall(run, stream, pieces, 16)
  assert(ok or tostring(err):find("^bad response: event too large"),
    tostring(err))
end
