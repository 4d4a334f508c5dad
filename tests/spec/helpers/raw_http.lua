-- raw_http.lua -- a netsh HTTP/1.1 peer that answers with raw bytes, for
-- the client specs. server(routes) answers by path: routes[path](head,
-- body, target) -> the raw response bytes [, "close" | "reset"], else
-- routes.default, else 200 "ok". It records every request as received:
-- log[i] is its head lines CRLF-joined, CRLF, its body; heads[i] the head
-- alone. -> url, log, stop, heads
local socket = require "socket"

local M = {}

function M.server(routes)
  routes = routes or {}
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  local log, heads = {}, {}
  local t = spawn(function()
    s:serve(function(c)
      c:settimeout(5)
      while true do
        local lines = {}
        repeat
          local line = c:receive("*l")
          if not line then return end
          lines[#lines + 1] = line
        until line == ""
        local head = table.concat(lines, "\r\n")
        local n = tonumber(head:match("\r\n[Cc]ontent%-[Ll]ength: (%d+)"))
        local body = n and n > 0 and c:receive(n) or ""
        heads[#heads + 1] = head
        log[#log + 1] = head .. "\r\n" .. body
        local path = lines[1]:match("^%S+ (%S+)")
        local route = routes[path:match("^[^?]*")] or routes.default
        local out, how = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        if route then out, how = route(head, body, path) end
        c:send(out)
        if how == "reset" then
          c:setoption("linger", {on = true, timeout = 0})
          c:close()
          return
        end
        if how == "close" then return end
      end
    end)
  end)
  return "http://127.0.0.1:" .. port, log, function()
    s:close()
    t:join()
  end, heads
end

return M
