-- getopt.lua -- command-line parsing for netsh scripts, with --help
-- generated from the option table, so every script has the same CLI:
--   -x VALUE, -xVALUE, --long VALUE, --long=VALUE, bundled flags -abc,
--   -- ends options, repeated options collect into a list (multi = true).
-- Usage errors print "<name>: <message>" and a hint on stderr, exit 2.
--
--   local opts, args = require("getopt").parse(arg, {
--     name = "tcp_echo", usage = "[host] [port]",
--     summary = "A concurrent TCP echo server.",
--     options = {
--       {"t", "timeout", arg = "SECONDS", type = "number", default = 30,
--        help = "idle timeout per client"},
--       {nil, "json", help = "JSON lines on stdout"},
--       {nil, "tls", arg = "CERT KEY", nargs = 2},   -- value {cert, key}
--     },
--     min_args = 0, max_args = 2,
--     exit_codes = {"0  all good", "1  a check failed", "2  usage error"},
--     -- on_usage_error = function(msg) ... end  -- called before exit 2
--   })
local M = {}

local function fail(spec, msg)
  io.stderr:write(("%s: %s\nTry '%s --help' for more information.\n")
    :format(spec.name, msg, spec.name))
  -- spec.on_usage_error(msg): a script's own reaction (e.g. Nagios' exit 3)
  if spec.on_usage_error then spec.on_usage_error(msg) end
  os.exit(2)
end

-- The help text, from the spec.
function M.help(spec)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add(("usage: %s [options] %s"):format(spec.name, spec.usage or ""))
  if spec.summary then add("") add(spec.summary) end
  add("")
  add("Options:")
  local rows, width = {}, 0
  for _, o in ipairs(spec.options or {}) do
    local names = {}
    if o[1] then names[#names + 1] = "-" .. o[1] end
    if o[2] then names[#names + 1] = "--" .. o[2] end
    local left = table.concat(names, ", ")
    if o.arg then left = left .. " " .. o.arg end
    local help = o.help or ""
    if o.default ~= nil and o.default ~= false then
      help = help .. (" (default %s)"):format(tostring(o.default))
    end
    rows[#rows + 1] = {left, help}
    if #left > width then width = #left end
  end
  rows[#rows + 1] = {"--trace",
    "log every socket operation and HTTP exchange on stderr"}
  rows[#rows + 1] = {"--hexdump", "--trace, with the bytes and bodies"}
  rows[#rows + 1] = {"-h, --help", "show this help and exit"}
  if #"-h, --help" > width then width = #"-h, --help" end
  for _, r in ipairs(rows) do
    add(("  %-" .. width .. "s  %s"):format(r[1], r[2]))
  end
  if spec.exit_codes then
    add("")
    add("Exit codes:")
    local ctrlc
    for _, line in ipairs(spec.exit_codes) do
      add("  " .. line)
      ctrlc = ctrlc or line:find("Ctrl-C", 1, true)
    end
    -- what every script does on Ctrl-C unless it says otherwise
    if not ctrlc then add("  130  interrupted (Ctrl-C)") end
  end
  if spec.epilog then add("") add(spec.epilog) end
  return table.concat(out, "\n") .. "\n"
end

local function convert(spec, o, name, v)
  if o.type == "number" or o.type == "integer" then
    local n = tonumber(v)
    -- an integer fits in 64 bits: "1e30" and "1e999" are integral floats
    if n ~= nil and o.type == "integer" then n = math.tointeger(n) end
    if n == nil then
      fail(spec, ("option %s needs a%s number, got '%s'"):format(name,
        o.type == "integer" and "n integer" or "", v))
    end
    return n
  end
  if o.choices then
    for _, c in ipairs(o.choices) do if c == v then return v end end
    fail(spec, ("option %s must be one of %s, got '%s'"):format(name,
      table.concat(o.choices, ", "), v))
  end
  return v
end

-- nearest(word, names) -> the name closest to a mistyped word (at most a
-- third of its letters wrong: Damerau-Levenshtein), or nil
function M.nearest(word, names)
  local best, bestd = nil, math.max(1, #word // 3) + 1
  for _, name in ipairs(names) do
    local d, prev2, prev = {}, nil, {}
    for j = 0, #name do prev[j] = j end
    for i = 1, #word do
      d = {[0] = i}
      for j = 1, #name do
        local cost = word:byte(i) == name:byte(j) and 0 or 1
        d[j] = math.min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + cost)
        if prev2 and i > 1 and j > 1 and word:byte(i) == name:byte(j - 1)
            and word:byte(i - 1) == name:byte(j) then
          d[j] = math.min(d[j], prev2[j - 2] + 1)      -- transposition
        end
      end
      prev2, prev = prev, d
    end
    if prev[#name] < bestd then best, bestd = name, prev[#name] end
  end
  return best
end

-- parse(argv, spec) -> opts (keyed by long name, or short), args (list),
-- and the count of arguments before a "--" when there was one
function M.parse(argv, spec)
  assert(type(spec) == "table", "bad argument #2 to 'parse' (table expected)")
  spec.name = spec.name or (argv and argv[0] or "script"):match("([^/]+)$")
  local short, long = {}, {}
  local opts, args = {}, {}
  for _, o in ipairs(spec.options or {}) do
    local key = o[2] or o[1]
    o.key = key:gsub("-", "_")
    if o[1] then short[o[1]] = o end
    if o[2] then long[o[2]] = o end
    if o.multi then opts[o.key] = {} end
    if o.default ~= nil then opts[o.key] = o.default end
  end
  local i, n = 1, #argv
  local function set(o, name, v)
    if o.nargs and o.nargs > 1 then
      -- an option with several values (--tls CERT KEY): v is the first
      local vals = {v}
      for k = 2, o.nargs do
        i = i + 1
        if argv[i] == nil then
          fail(spec, ("option %s needs %s"):format(name, o.arg))
        end
        vals[k] = argv[i]
      end
      v = vals
    elseif o.arg then
      v = convert(spec, o, name, v)
    else
      v = true
    end
    if o.multi then
      if type(opts[o.key]) ~= "table" then opts[o.key] = {} end
      table.insert(opts[o.key], v)
    else
      opts[o.key] = v
    end
  end
  local dashdash
  while i <= n do
    local a = argv[i]
    if a == "--" then
      dashdash = #args        -- how many arguments came before "--"
      for j = i + 1, n do args[#args + 1] = argv[j] end
      break
    elseif a == "--trace" or a == "--hexdump" then
      -- every script gets these: see lua/netsh/trace.lua
      require("netsh.trace").enable{hexdump = a == "--hexdump"}
    elseif a == "-h" or a == "--help" then
      io.stdout:write(M.help(spec))
      os.exit(0)
    elseif a:sub(1, 2) == "--" then
      local name, v = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local o = long[name]
      if not o then
        local names = {"help", "trace", "hexdump"}
        for k in pairs(long) do names[#names + 1] = k end
        table.sort(names)
        local near = M.nearest(name, names)
        fail(spec, ("unknown option '--%s'%s"):format(name,
          near and ("; did you mean '--%s'?"):format(near) or ""))
      end
      if o.arg and v == nil then
        i = i + 1
        v = argv[i]
        if v == nil then fail(spec, ("option --%s needs %s"):format(name, o.arg)) end
      elseif not o.arg and v ~= nil then
        fail(spec, ("option --%s takes no value"):format(name))
      end
      set(o, "--" .. name, v)
    elseif a:sub(1, 1) == "-" and #a > 1 and not tonumber(a) then
      local j = 2
      while j <= #a do
        local c = a:sub(j, j)
        local o = short[c]
        if not o then fail(spec, ("unknown option '-%s'"):format(c)) end
        if o.arg then
          local v = a:sub(j + 1)
          if v == "" then
            i = i + 1
            v = argv[i]
            if v == nil then fail(spec, ("option -%s needs %s"):format(c, o.arg)) end
          end
          set(o, "-" .. c, v)
          break
        end
        set(o, "-" .. c)
        j = j + 1
      end
    else
      args[#args + 1] = a
    end
    i = i + 1
  end
  if spec.min_args and #args < spec.min_args then
    fail(spec, spec.min_message or "missing arguments")
  end
  if spec.max_args and #args > spec.max_args then
    fail(spec, ("too many arguments: '%s'"):format(args[spec.max_args + 1]))
  end
  return opts, args, dashdash
end

return M
