-- ltn12.lua -- "ltn12": LuaSocket's filters, sources, sinks and pumps
-- (LTN012, "Filters, sources and sinks"), so LuaSocket code that
-- requires it runs unchanged. Pure Lua; a source or sink may wait on a
-- socket, which parks only the calling task.
--
-- The contracts, as LuaSocket defines them:
--   source() -> chunk | nil (end) | nil, err
--   sink(chunk, err) -> 1 | nil, err   (chunk nil: the end; err: why)
--   filter(chunk) -> output. A non-empty output means "there may be
--     more": the caller asks with filter("") until it returns "". At the
--     end the caller passes nil, and passes nil again until it gets nil;
--     "" there means "nothing this time, ask again".
-- "Fancy" sources and sinks may return a replacement of themselves as
-- their second value; simplify() hides that.
local M = {
  _VERSION = "LTN12 1.0.3",
  BLOCKSIZE = 2048,
}

local filter, source, sink, pump = {}, {}, {}, {}
M.filter, M.source, M.sink, M.pump = filter, source, sink, pump

local function callable(f, n, what)
  local t = type(f)
  if t == "function" then return end
  if t == "table" or t == "userdata" then
    local mt = getmetatable(f)
    if type(mt) == "table" and mt.__call then return end
  end
  error(("bad argument #%d to '%s' (function expected, got %s)")
    :format(n, what, t), 3)
end

---------------------------------------------------------------------------
-- filters

-- cycle(low, ctx, extra): a filter keeping ctx between calls of the
-- low-level filter low(ctx, chunk, extra) -> output, new ctx.
function filter.cycle(low, ctx, extra)
  callable(low, 1, "cycle")
  return function(chunk)
    local out
    out, ctx = low(ctx, chunk, extra)
    return out
  end
end

-- Two filters as one: f's output feeds g. g_more says g holds output
-- from its last input (ask it with ""), ending that the input ended,
-- f_done that f answered nil (then g is asked with nil until nil).
local function chain2(f, g)
  local g_more, ending, f_done, done = false, false, false, false
  return function(chunk)
    if done then return nil end
    if chunk == nil then ending = true end
    local input = chunk
    while true do
      if f_done then
        local out = g(nil)
        if out == nil then done = true end
        return out
      end
      if g_more then
        local out = g("")
        if out ~= "" then return out end
        g_more = false
      end
      -- g is drained: pull from f (the new input once, then "" or nil)
      local a = f(input)
      input = not ending and "" or nil
      if a == nil then
        if not ending then error("filter returned inappropriate nil", 2) end
        f_done = true
      elseif a == "" then
        if not ending then return "" end  -- both drained: need input
      else
        local out = g(a)
        if out ~= "" then
          g_more = true
          return out
        end
      end
    end
  end
end

-- chain(f1, f2, ...): one filter passing data through f1, then f2...
function filter.chain(...)
  local n = select("#", ...)
  if n == 0 then error("bad argument #1 to 'chain' (filter expected)", 2) end
  local f = ...
  callable(f, 1, "chain")
  for i = 2, n do
    local g = select(i, ...)
    callable(g, i, "chain")
    f = chain2(f, g)
  end
  return f
end

---------------------------------------------------------------------------
-- sources

local function empty() return nil end

function source.empty()
  return empty
end

-- error(err): a source (or sink) that fails with err at once
local function failing(err)
  return function() return nil, err end
end
source.error = failing

-- file(handle [, io_err]): the file's contents in BLOCKSIZE chunks; the
-- file is closed at its end. With no handle (io.open failed): a source
-- failing with io_err.
function source.file(handle, io_err)
  if not handle then return source.error(io_err or "unable to open file") end
  return function()
    if not handle then return nil end
    local chunk, err = handle:read(M.BLOCKSIZE)
    if chunk then return chunk end
    handle:close()
    handle = nil
    return nil, err
  end
end

-- simplify(src): a source that follows a fancy source's replacements.
function source.simplify(src)
  callable(src, 1, "simplify")
  return function()
    local chunk, err_or_new = src()
    if chunk == nil then return nil, err_or_new end
    if err_or_new then src = err_or_new end
    return chunk
  end
end

-- string(s): s in BLOCKSIZE chunks (nothing for nil or "").
function source.string(s)
  if s == nil then return empty end
  local i = 1
  return function()
    local size = M.BLOCKSIZE
    local chunk = s:sub(i, i + size - 1)
    i = i + size
    if chunk == "" then return nil end
    return chunk
  end
end

-- table(t): t[1], t[2]... up to the first nil.
function source.table(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'table' (table expected, got " .. type(t)
      .. ")", 2)
  end
  local i = 0
  return function()
    i = i + 1
    return t[i]
  end
end

-- rewind(src): a source that can take chunks back: r(chunk) pushes chunk
-- back, r() returns the last chunk pushed back, else reads from src.
function source.rewind(src)
  callable(src, 1, "rewind")
  local back, n = {}, 0
  return function(chunk)
    if chunk ~= nil then
      n = n + 1
      back[n] = chunk
      return
    end
    if n == 0 then return src() end
    chunk = back[n]
    back[n] = nil
    n = n - 1
    return chunk
  end
end

-- chain(src, f [, f2, ...]): src's data through the filter(s).
function source.chain(src, f, ...)
  callable(src, 1, "chain")
  if select("#", ...) > 0 then f = filter.chain(f, ...) end
  callable(f, 2, "chain")
  -- more: f holds output from its last input; ended: src said nil
  local more, ended, done = false, false, false
  return function()
    while true do
      if done then return nil end
      if more then
        local out = f(not ended and "" or nil)
        if out == nil then
          if not ended then error("filter returned inappropriate nil", 2) end
          done = true
          return nil
        end
        if out ~= "" then return out end
        if not ended then more = false end
      else
        local chunk, err = src()
        if chunk == nil then
          if err ~= nil then return nil, err end
          ended, more = true, true
        elseif chunk ~= "" then
          local out = f(chunk)
          if out == nil then error("filter returned inappropriate nil", 2) end
          if out ~= "" then
            more = true
            return out
          end
        end
      end
    end
  end
end

-- cat(src1, src2, ...): their data one after the other; an error ends it.
function source.cat(...)
  local srcs, i, n = {...}, 1, select("#", ...)
  return function()
    while i <= n do
      local chunk, err = srcs[i]()
      if chunk ~= nil then return chunk end
      if err ~= nil then return nil, err end
      i = i + 1
    end
    return nil
  end
end

---------------------------------------------------------------------------
-- sinks

-- table([t]) -> sink, t: chunks appended to t (table.concat(t) at the end)
function sink.table(t)
  t = t or {}
  local f = function(chunk)
    if chunk then t[#t + 1] = chunk end
    return 1
  end
  return f, t
end

-- simplify(snk): a sink that follows a fancy sink's replacements.
function sink.simplify(snk)
  callable(snk, 1, "simplify")
  return function(chunk, err)
    local ok, err_or_new = snk(chunk, err)
    if not ok then return nil, err_or_new end
    if err_or_new then snk = err_or_new end
    return 1
  end
end

-- file(handle [, io_err]): writes to handle, closes it at the end.
function sink.file(handle, io_err)
  if not handle then return sink.error(io_err or "unable to open file") end
  return function(chunk)
    if chunk == nil then
      if handle then handle:close() end
      handle = nil
      return 1
    end
    if not handle then return nil, "file closed" end
    local ok, err = handle:write(chunk)
    if not ok then return nil, err end
    return 1
  end
end

local function null() return 1 end

function sink.null()
  return null
end

sink.error = failing

-- chain(f [, f2, ...], snk): a sink filtering data before snk gets it.
function sink.chain(f, snk, ...)
  if select("#", ...) > 0 then
    local all = {f, snk, ...}
    snk = table.remove(all)
    f = filter.chain(table.unpack(all))
  end
  callable(f, 1, "chain")
  callable(snk, 2, "chain")
  return function(chunk, err)
    if chunk == "" then return 1 end
    local out = f(chunk)
    if chunk ~= nil then
      while out ~= "" do
        if out == nil then error("filter returned inappropriate nil", 2) end
        local ok, serr = snk(out)
        if not ok then return nil, serr end
        out = f("")
      end
      return 1
    end
    while out ~= nil do
      if out ~= "" then
        local ok, serr = snk(out)
        if not ok then return nil, serr end
      end
      out = f(nil)
    end
    return snk(nil, err)
  end
end

---------------------------------------------------------------------------
-- pumps

-- step(src, snk) -> 1 (moved a chunk) | nil, err (nil, nil at the end)
function pump.step(src, snk)
  local chunk, serr = src()
  local ok, kerr = snk(chunk, serr)
  if chunk ~= nil and ok then return 1 end
  return nil, serr or kerr
end

-- all(src, snk [, step]) -> 1 | nil, err
function pump.all(src, snk, step)
  callable(src, 1, "all")
  callable(snk, 2, "all")
  step = step or pump.step
  while true do
    local ok, err = step(src, snk)
    if not ok then
      if err ~= nil then return nil, err end
      return 1
    end
  end
end

return M
