-- fuzz_getopt_driver.lua -- getopt.parse (lua/getopt.lua) on random argv:
-- the input split at NUL bytes. os.exit and the output streams are
-- stubbed: a usage error or --help ends the parse by "exiting". Checks:
-- nothing else raises, and a parse that returns gives values of the
-- declared kinds: flags true, integer options integers, number options
-- numbers, choices one of theirs, nargs options a list of nargs strings,
-- multi options lists; no more arguments than max_args, each from argv.
package.loaded["netsh.trace"] = {enable = function() end}
local getopt = require "getopt"

local EXIT = setmetatable({}, {__tostring = function() return "exit" end})
os.exit = function() error(EXIT, 0) end
local sink = {write = function(self) return self end}
io.stdout, io.stderr = sink, sink

local function spec()
  return {
    name = "fz", usage = "[a] [b] [c]", summary = "fuzz",
    options = {
      {"v", "verbose", help = "flag"},
      {"n", "count", arg = "N", type = "integer", default = 3},
      {"t", "timeout", arg = "S", type = "number"},
      {"m", "mode", arg = "M", choices = {"fast", "slow"}},
      {nil, "tls", arg = "CERT KEY", nargs = 2},
      {"I", "include", arg = "DIR", multi = true},
      {"q", nil, help = "short only"},
    },
    min_args = 0, max_args = 3,
  }
end

return function(s)
  local argv, seen = {[0] = "fz"}, {}
  for a in (s .. "\0"):gmatch("(.-)%z") do
    argv[#argv + 1] = a
    seen[a] = true
    if #argv >= 12 then break end
  end
  local ok, opts, args = pcall(getopt.parse, argv, spec())
  if not ok then
    if opts == EXIT then return end
    error(opts, 0)
  end
  assert(opts.verbose == nil or opts.verbose == true, "verbose")
  assert(opts.q == nil or opts.q == true, "q")
  assert(math.type(opts.count) == "integer",
    "count is " .. tostring(opts.count) .. " (" .. type(opts.count) .. ")")
  assert(opts.timeout == nil or type(opts.timeout) == "number", "timeout")
  assert(opts.mode == nil or opts.mode == "fast" or opts.mode == "slow")
  if opts.tls ~= nil then
    assert(type(opts.tls) == "table" and #opts.tls == 2)
    assert(type(opts.tls[1]) == "string" and type(opts.tls[2]) == "string")
  end
  assert(type(opts.include) == "table", "include")
  for _, d in ipairs(opts.include) do assert(type(d) == "string") end
  assert(#args <= 3, "too many args")
  for _, a in ipairs(args) do assert(seen[a], "arg not from argv") end
end
