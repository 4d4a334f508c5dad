-- jsonl.lua -- the JSON-lines envelope every bundled script's --json
-- writes (schema: docs/json-lines.md), so lines from many tools and many
-- hosts merge with `cat | jq`.
--
--   local jsonl = require "netsh.jsonl"
--   options = jsonl.add{ ...the script's getopt rows... }   -- adds --tag
--   local out = jsonl.new("http_check", opts.tag)  -- bad --tag: exit 2
--   out:emit(target, ok, err, {status = 200, time = 0.012})
--   -- {"v":1,"tool":"http_check","ts":"2026-12-04T16:41:27.123Z",
--   --  "host":"web1","target":"http://x/","ok":true,"err":null,
--   --  <--tag fields, in the order given>,"status":200,"time":0.012}
--
-- Key order is fixed: the seven envelope fields, then the tags, then the
-- tool's fields sorted by name (nested tables are encoded with sorted
-- keys). `err` is always present (null when ok). A tool field or tag
-- named like an envelope field raises / is a usage error; a tool field
-- named like a tag keeps the tool's value (the tag is left out of that
-- line). out:line(...) returns the line without writing it; jsonl.V is
-- the schema version. Also: jsonl.rfc3339(t) and jsonl.hostname().
local json = require "json"

local M = {V = 1}

M.LEADING = {"v", "tool", "ts", "host", "target", "ok", "err"}
local leading = {}
for _, k in ipairs(M.LEADING) do leading[k] = true end

M.option = {nil, "tag", arg = "KEY=VALUE", multi = true,
  help = "with --json, add this field to every line (repeatable)"}

-- add(options) -> options with the --tag row appended
function M.add(options)
  options[#options + 1] = M.option
  return options
end

-- rfc3339([t]) -> "YYYY-MM-DDTHH:MM:SS.mmmZ" for wall-clock time t
-- (seconds since the epoch; now by default), UTC
function M.rfc3339(t)
  t = t or require("socket").gettime()
  local s = math.floor(t)
  local ms = math.floor((t - s) * 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. (".%03dZ"):format(ms)
end

local host_name
-- hostname() -> this machine's name (cached); NETSH_HOST overrides it
function M.hostname()
  if not host_name then
    local env = os.getenv("NETSH_HOST")
    if env and env ~= "" then
      host_name = env
    else
      local ok, name = pcall(function()
        return require("socket.dns").gethostname()
      end)
      host_name = ok and name or "unknown"
    end
  end
  return host_name
end

-- parse_tags(list) -> {{key, value}...} | nil, err
function M.parse_tags(list)
  local tags = {}
  for _, t in ipairs(list or {}) do
    local k, v = tostring(t):match("^([%a_][%w_%.%-]*)=(.*)$")
    if not k then
      return nil, ("bad --tag '%s' (KEY=VALUE, KEY a name)"):format(t)
    end
    if leading[k] then
      return nil, ("--tag %s: '%s' is an envelope field"):format(t, k)
    end
    for _, prev in ipairs(tags) do
      if prev[1] == k then
        return nil, ("--tag %s: '%s' given twice"):format(t, k)
      end
    end
    tags[#tags + 1] = {k, v}
  end
  return tags
end

local enc_opts = {sort_keys = true}
local function enc(v)
  if v == nil then return "null" end
  return json.encode(v, enc_opts)
end

local Out = {}
Out.__index = Out

-- new(tool, tag_list [, usage]) -> an emitter; a bad tag is a usage
-- error: usage is an exit code (2 by default) or a function(msg) that
-- exits, such as exitcodes.usage's usage_error
function M.new(tool, tag_list, usage_code)
  if type(tool) ~= "string" then
    error("bad argument #1 to 'new' (string expected, got "
      .. type(tool) .. ")", 2)
  end
  local tags, err = M.parse_tags(tag_list)
  if not tags then
    if type(usage_code) == "function" then usage_code(err) end
    die(err .. " (try --help)", usage_code or 2)
  end
  return setmetatable({tool = tool, tags = tags}, Out)
end

-- out:line(target, ok, err, fields) -> the JSON line (no newline)
function Out:line(target, ok, err, fields)
  fields = fields or {}
  local parts = {
    '"v":' .. M.V,
    '"tool":' .. enc(self.tool),
    '"ts":' .. enc(M.rfc3339()),
    '"host":' .. enc(M.hostname()),
    '"target":' .. enc(target),
    '"ok":' .. (ok and "true" or "false"),
    '"err":' .. (err ~= nil and enc(tostring(err)) or "null"),
  }
  for _, t in ipairs(self.tags) do
    if fields[t[1]] == nil then
      parts[#parts + 1] = enc(t[1]) .. ":" .. enc(t[2])
    end
  end
  local keys = {}
  for k in pairs(fields) do
    if type(k) ~= "string" then
      error("bad argument #4 to 'emit' (field names must be strings)", 3)
    end
    if leading[k] then
      error(("bad argument #4 to 'emit' (field '%s' is an envelope "
        .. "field)"):format(k), 3)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = enc(k) .. ":" .. enc(fields[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- out:emit(target, ok, err, fields): writes the line to stdout, flushed
function Out:emit(target, ok, err, fields)
  io.stdout:write(self:line(target, ok, err, fields), "\n")
  io.stdout:flush()
end

return M
