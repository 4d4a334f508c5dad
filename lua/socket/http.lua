-- socket/http.lua -- "socket.http": LuaSocket's http.request on top of
-- netsh's http client (libcurl), so LuaSocket code runs unchanged, also
-- for https:// (LuaSocket needs LuaSec for that).
--
--   local http = require "socket.http"
--   local body, code, headers, status = http.request("http://host/")
--   local ok, code = http.request{url = u, sink = ltn12.sink.table(t)}
--
-- Simple form: request(url [, body]) -> body, code, headers, status; with a
-- body it POSTs it as application/x-www-form-urlencoded. Generic form:
-- request{url, sink, method, headers, source, step, redirect,
-- maxredirects, proxy, timeout} -> 1, code, headers, status. Failures:
-- nil, err. sink and source are LTN12's (ltn12.sink.table(t),
-- ltn12.source.string(s)...); step (default ltn12.pump.step) moves each
-- chunk, both ways.
-- headers are keyed by lowercased names, status is the status line.
local client = require "http"
local pump = require("ltn12").pump

local M = {
  TIMEOUT = 60,                         -- seconds, whole request
  USERAGENT = "netsh/0.1.0 socket.http",
  PROXY = nil,                          -- "http://host:port"
}

local function lowered(res)
  local h = {}
  for k, v in pairs(res.headers) do h[k] = v end
  return h
end

-- The request body: the source's chunks, gathered (curl sends it).
local function source_body(source, step)
  local parts = {}
  local ok, err = pump.all(source, function(chunk)
    if chunk then parts[#parts + 1] = chunk end
    return 1
  end, step)
  if not ok then return nil, err end
  return table.concat(parts)
end

-- -> 1, code, headers, status, res (res for the simple form only)
local function generic(reqt)
  if type(reqt.url) ~= "string" then
    error("bad argument #1 to 'request' (url expected)", 3)
  end
  local method = (reqt.method or "GET"):upper()
  local opts = {
    timeout = reqt.timeout or M.TIMEOUT,
    user_agent = M.USERAGENT,
    follow = reqt.redirect ~= false and (method == "GET" or method == "HEAD")
      and (reqt.maxredirects or 5) or false,
    proxy = reqt.proxy or M.PROXY,
    decompress = false,                 -- LuaSocket hands bytes over as is
  }
  if reqt.headers then
    local h = {}
    for k, v in pairs(reqt.headers) do
      -- LuaSocket sends these itself; curl does too
      local lk = k:lower()
      if lk ~= "host" and lk ~= "connection" and lk ~= "te" then h[k] = v end
    end
    opts.headers = h
  end
  local step = reqt.step or pump.step
  if reqt.source then
    local body, err = source_body(reqt.source, step)
    if not body then return nil, err end
    opts.body = body
  end
  local sink = reqt.sink
  if sink then opts.stream = true end
  local res, err = client.request(method, reqt.url, opts)
  if not res then return nil, err end
  if sink then
    -- the response body as a source: read() -> chunk | nil | nil, err
    local ok, perr = pump.all(function() return res:read() end, sink, step)
    if not ok then
      res:close()
      return nil, perr
    end
  end
  return 1, res.status, lowered(res), res.status_line, res
end

function M.request(reqt, body)
  if type(reqt) == "table" then
    local ok, code, headers, status = generic(reqt)
    return ok, code, headers, status
  end
  if type(reqt) ~= "string" then
    error("bad argument #1 to 'request' (string or table expected, got "
      .. type(reqt) .. ")", 2)
  end
  local t = {url = reqt, method = "GET"}
  if body ~= nil then
    t.method = "POST"
    t.headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
    local sent = false
    t.source = function()
      if sent then return nil end
      sent = true
      return body
    end
  end
  local ok, code, headers, status, res = generic(t)
  if not ok then return nil, code end
  return res.body, code, headers, status
end

return M
