-- http_serve.lua -- serve a directory over HTTP: python3 -m http.server,
-- done properly (netsh's http.server underneath)
--
--   netsh -m http_serve                       # . on 127.0.0.1:8000
--   netsh -m http_serve ~/public --port 8080 --bind '*'
--   netsh -m http_serve site --json 2>access.jsonl
--
-- GET and HEAD; directory listings (or the directory's index.html), MIME
-- types by extension, Range requests (one range: 206, 416), ETag and
-- Last-Modified with 304 for If-None-Match / If-Modified-Since. Never a
-- byte from outside the root: the path is decoded, "." and ".." segments
-- are resolved (going above the root is 403), and the file's real path
-- (symlinks followed) must still be inside the root's real path, else 403.
-- One access-log line per request on stderr (--json: JSON lines, the
-- envelope of docs/json-lines.md with the request target as "target").
-- Ctrl-C stops it.
local getopt = require "getopt"
local http = require "http"
local fs = require "http.fs"
local jsonl = require "netsh.jsonl"
local task = require "task"

local opts, args = getopt.parse(arg, {
  name = "http_serve",
  usage = "[DIR]",
  summary = "Serve DIR (default: the current directory) over HTTP: "
    .. "listings, index.html, ranges, conditional requests.",
  options = jsonl.add{
    {"p", "port", arg = "PORT", type = "number", default = 8000,
     help = "port to listen on (0: any free port, printed on stderr)"},
    {"b", "bind", arg = "ADDR", default = "127.0.0.1",
     help = "address to listen on ('*': every address)"},
    {nil, "json", help = "access log as JSON lines (docs/json-lines.md)"},
    {"q", "quiet", help = "no access log"},
  },
  max_args = 1,
  exit_codes = {"0  stopped with Ctrl-C", "1  cannot listen or no such "
    .. "directory", "2  usage error"},
})

local root, err = fs.realpath(args[1] or ".")
if not root then die("http_serve: " .. err, 1) end
local st = fs.stat(root)
if not st or st.type ~= "directory" then
  die("http_serve: " .. root .. ": not a directory", 1)
end

local MIME = {
  html = "text/html; charset=utf-8", htm = "text/html; charset=utf-8",
  css = "text/css; charset=utf-8", js = "text/javascript; charset=utf-8",
  mjs = "text/javascript; charset=utf-8", json = "application/json",
  txt = "text/plain; charset=utf-8", md = "text/markdown; charset=utf-8",
  csv = "text/csv; charset=utf-8", xml = "application/xml",
  svg = "image/svg+xml", png = "image/png", jpg = "image/jpeg",
  jpeg = "image/jpeg", gif = "image/gif", webp = "image/webp",
  ico = "image/vnd.microsoft.icon", pdf = "application/pdf",
  wasm = "application/wasm", zip = "application/zip",
  gz = "application/gzip", tar = "application/x-tar",
  mp4 = "video/mp4", webm = "video/webm", mp3 = "audio/mpeg",
  wav = "audio/wav", woff = "font/woff", woff2 = "font/woff2",
  lua = "text/plain; charset=utf-8", sh = "text/plain; charset=utf-8",
}
local function mime(name)
  local ext = name:match("%.([%w]+)$")
  return ext and MIME[ext:lower()] or "application/octet-stream"
end

local function html_escape(s)
  return (s:gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;",
    [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}))
end

local function url_escape(s)
  return (s:gsub("[^%w%-%._~/]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

local function httpdate(t) return os.date("!%a, %d %b %Y %H:%M:%S GMT", t) end

local function text(status, msg)
  return status, {["Content-Type"] = "text/plain; charset=utf-8"},
    status .. " " .. msg .. "\n"
end

-- the decoded request path -> list of segments inside the root, or nil
-- (it escapes the root, or holds a NUL)
local function segments(path)
  local decoded = path:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end)
  if decoded:find("%z") or decoded:find("\\", 1, true) then return nil end
  local out = {}
  for seg in decoded:gmatch("[^/]+") do
    if seg == ".." then
      if #out == 0 then return nil end
      out[#out] = nil
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  return out, decoded
end

local function inside(real)
  return real == root or real:sub(1, #root + 1) == root .. "/"
    or root == "/"
end

local function listing(req, dir, decoded)
  local names = assert(fs.dir(dir))
  table.sort(names)
  local title = html_escape(decoded)
  local out = {"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">",
    "<title>Index of ", title, "</title></head>\n<body><h1>Index of ",
    title, "</h1>\n<ul>\n"}
  if decoded ~= "/" then out[#out + 1] = '<li><a href="../">../</a></li>\n' end
  for _, name in ipairs(names) do
    local s = fs.stat(dir .. "/" .. name)
    local shown = name .. (s and s.type == "directory" and "/" or "")
    out[#out + 1] = ('<li><a href="%s">%s</a></li>\n'):format(
      html_escape(url_escape(shown)), html_escape(shown))
  end
  out[#out + 1] = "</ul></body></html>\n"
  return 200, {["Content-Type"] = "text/html; charset=utf-8"},
    table.concat(out)
end

-- Range: "bytes=a-b" | "bytes=a-" | "bytes=-n" (one range) -> first, last
-- (0-based, inclusive) | false (unsatisfiable) | nil (ignore: send all)
local function range(h, size)
  local a, b = h:match("^bytes=(%d*)-(%d*)$")
  if not a or (a == "" and b == "") then return nil end
  local first, last
  if a == "" then
    local n = tonumber(b)
    if n == 0 then return false end
    first, last = math.max(0, size - n), size - 1
  else
    first = tonumber(a)
    last = b == "" and size - 1 or math.min(tonumber(b), size - 1)
    if b ~= "" and tonumber(b) < first then return nil end
  end
  if first >= size then return false end
  return first, last
end

-- What a file's answers need, kept for CACHE_TTL seconds per request
-- path (as nginx's open_file_cache): the checks (real path inside the
-- root) ran when the entry was made; a change on disk shows within that
-- time. Small files keep their bytes too.
local CACHE_TTL, CACHE_MAX, SMALL = 1, 1000, 65536
local cache, cached = {}, 0
local now = task.now

local function file_entry(real, s)
  local etag = ('"%x-%x"'):format(s.size, s.mtime)
  local e = {real = real, size = s.size, etag = etag,
    lm = httpdate(s.mtime), h = {["Content-Type"] = mime(real),
    ["ETag"] = etag, ["Last-Modified"] = httpdate(s.mtime),
    ["Accept-Ranges"] = "bytes"}}
  if s.size <= SMALL then
    local f = io.open(real, "rb")
    if not f then return nil end
    e.body = f:read(s.size) or ""
    f:close()
    if #e.body ~= s.size then return nil end
  end
  return e
end

local function file_response(req, e)
  local etag, lm = e.etag, e.lm
  local h = e.h
  local s = e
  local inm = req.headers["if-none-match"]
  if inm then
    for tag in inm:gmatch("[^,%s]+") do
      if tag == etag or tag == "W/" .. etag or tag == "*" then
        return {status = 304, headers = h}
      end
    end
  elseif req.headers["if-modified-since"] == lm then
    return {status = 304, headers = h}
  end
  local first, last = 0, s.size - 1
  local status = 200
  local rh = req.headers["range"]
  if rh and (not req.headers["if-range"] or req.headers["if-range"] == etag)
  then
    local f, l = range(rh, s.size)
    local h2 = {}
    for k, v in pairs(h) do h2[k] = v end
    h = h2
    if f == false then
      h["Content-Range"] = "bytes */" .. s.size
      h["Content-Type"] = "text/plain; charset=utf-8"
      return {status = 416, headers = h, body = "416 Range Not Satisfiable\n"}
    elseif f then
      first, last, status = f, l, 206
      h["Content-Range"] = ("bytes %d-%d/%d"):format(f, l, s.size)
    end
  end
  local length = last - first + 1
  if e.body then
    if status == 200 then return 200, h, e.body end
    return status, h, e.body:sub(first + 1, last + 1)
  end
  local f = io.open(e.real, "rb")
  if not f then return text(403, "Forbidden") end
  -- not cached: the server sends it with sock:sendfile (sendfile(2))
  return {status = status, headers = h,
          body = {file = f, offset = first, length = length}}
end

local function handler(req)
  if req.method ~= "GET" and req.method ~= "HEAD" then
    local s, h, b = text(405, "Method Not Allowed")
    h.Allow = "GET, HEAD"
    return s, h, b
  end
  local path = req.path
  local ce = cache[path]
  if ce and ce.expires > now() then return file_response(req, ce) end
  local segs, decoded = segments(path)
  if not segs or req.path:sub(1, 1) ~= "/" then
    return text(403, "Forbidden")
  end
  local full = root .. (#segs > 0 and "/" .. table.concat(segs, "/") or "")
  local real = fs.realpath(full)
  if not real then return text(404, "Not Found") end
  if not inside(real) then return text(403, "Forbidden") end
  local s = fs.stat(real)
  if not s then return text(404, "Not Found") end
  if s.type == "directory" then
    if req.path:sub(-1) ~= "/" then
      local loc = req.path .. "/" .. (req.query_string and
        "?" .. req.query_string or "")
      return 301, {Location = loc, ["Content-Type"] = "text/plain"},
        "301 Moved Permanently\n"
    end
    local index = real .. "/index.html"
    local is = fs.stat(index)
    local ireal = is and fs.realpath(index)
    if is and is.type == "file" and ireal and inside(ireal) then
      local e = file_entry(ireal, is)
      if not e then return text(403, "Forbidden") end
      return file_response(req, e)
    end
    return listing(req, real, decoded)
  elseif s.type ~= "file" then
    return text(403, "Forbidden")
  end
  local e = file_entry(real, s)
  if not e then return text(403, "Forbidden") end
  if cached >= CACHE_MAX then cache, cached = {}, 0 end
  e.expires = now() + CACHE_TTL
  cache[path] = e
  cached = cached + 1
  return file_response(req, e)
end

local access = opts.json and jsonl.new("http_serve", opts.tag)
local function log(req, status, bytes, seconds)
  if opts.quiet then return end
  if access then
    -- the envelope (docs/json-lines.md): target is the request target,
    -- ok a status below 500
    io.stderr:write(access:line(req.target, status < 500, nil,
      {ip = req.remote_ip, method = req.method, status = status,
       bytes = bytes, ms = math.floor(seconds * 1e6) / 1e3,
       agent = req.headers["user-agent"]}), "\n")
  else
    io.stderr:write(('%s - - [%s] "%s %s HTTP/%s" %d %d\n'):format(
      tostring(req.remote_ip), os.date("%d/%b/%Y:%H:%M:%S %z"), req.method,
      req.target, req.version, status, bytes))
  end
end

local srv, e = http.server{host = opts.bind, port = opts.port,
  handler = handler, log = not opts.quiet and log or nil}
if not srv then
  die(("http_serve: cannot listen on %s port %d: %s"):format(opts.bind,
    opts.port, e), 1)
end
io.stderr:write(("Serving %s on http://%s:%d/\n"):format(root,
  srv.host == "0.0.0.0" and "127.0.0.1" or srv.host, srv.port))
local ok, why = pcall(srv.serve, srv)   -- Ctrl-C raises "interrupted"
srv:close()
if not ok and why ~= "interrupted" then error(why, 0) end
io.stderr:write("stopped\n")
