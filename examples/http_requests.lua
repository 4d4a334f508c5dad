-- http_requests.lua -- GETs http://example.com/ (on the internet) unless
-- given a URL: the raw GET of http_get_raw.lua again, with the http
-- module: status, headers and body come parsed; then JSON both ways.
--
--   netsh examples/http_requests.lua [url] [json_url]
--   netsh examples/http_requests.lua http://127.0.0.1:8080/
local http = require "http"

local url = arg[1] or "http://example.com/"
local json_url = arg[2]

local res, err = http.get(url, {timeout = 10})
if not res then
  io.stderr:write(("GET %s failed: %s\n"):format(url, err))
  os.exit(1)
end
print(res)                                  -- <http 200 OK 1.2 KB 12 ms>
print(res.status_line)
local names = {}
for name in pairs(res.headers) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do print(name .. ": " .. res.headers[name]) end
print()
io.write(res.body)
if res.body:sub(-1) ~= "\n" then print() end

if json_url then
  -- decode a JSON response...
  local jres, jerr = http.get(json_url, {timeout = 10})
  if not jres then
    io.stderr:write(("GET %s failed: %s\n"):format(json_url, jerr))
    os.exit(1)
  end
  local doc, derr = jres:json()
  if doc == nil then
    io.stderr:write(derr, "\n")
    os.exit(1)
  end
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  print("JSON keys: " .. table.concat(keys, ", "))
  -- ...and send one: json = table encodes it and sets the content type
  local pres, perr = http.post(json_url, {json = {client = "netsh",
    keys = #keys}, timeout = 10})
  if pres then print("POST " .. json_url .. " -> " .. tostring(pres)) end
  if not pres then print("POST failed: " .. perr) end
end
