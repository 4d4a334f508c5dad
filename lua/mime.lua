-- mime.lua -- "mime": LuaSocket's MIME filters in pure Lua (LuaSocket has
-- them in C, mime.core): Base64, Quoted-Printable, line wrapping,
-- end-of-line normalization and SMTP dot-stuffing.
--
-- Low level, as LuaSocket's: f(ctx, chunk [, extra]) -> output, new ctx,
-- where ctx is what could not be decided yet (the bytes of an incomplete
-- group, the room left on a line...). chunk nil means the end: the output
-- then completes the data (padding, a last line break) and is nil when
-- there is nothing more. The high-level filters (encode, decode, wrap,
-- normalize, stuff) wrap them with ltn12.filter.cycle.
--
-- Speed: data moves by whole runs (string.find, string.sub) or groups
-- (string.byte on several bytes, lookup tables, table.concat), never by
-- growing a string one character at a time.
local ltn12 = require "ltn12"

local M = {_VERSION = "MIME 1.0.3"}

local byte, char, sub, find = string.byte, string.char, string.sub,
  string.find
local concat, unpack = table.concat, table.unpack
local format = string.format

local CRLF, EQCRLF = "\r\n", "=\r\n"

---------------------------------------------------------------------------
-- Base64 (RFC 4648 alphabet, "=" padding)

local ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- pair[v] for 12-bit v: its two Base64 digits; value[byte]: a digit's
-- 6 bits ("=" counts as 0, LuaSocket's way of decoding padding).
local pair, value = {}, {}
for i = 0, 63 do value[byte(ALPHABET, i + 1)] = i end
value[byte("=")] = 0
for hi = 0, 63 do
  for lo = 0, 63 do
    pair[hi * 64 + lo] = sub(ALPHABET, hi + 1, hi + 1) .. sub(ALPHABET, lo + 1,
      lo + 1)
  end
end

-- Encodes s[1..n] (n a multiple of 3): 6 bytes per byte() call.
local function b64_groups(s, n)
  local out, k = {}, 0
  local i = 1
  while i + 5 <= n do
    local a, b, c, d, e, f = byte(s, i, i + 5)
    out[k + 1] = pair[a << 4 | b >> 4]
    out[k + 2] = pair[(b & 15) << 8 | c]
    out[k + 3] = pair[d << 4 | e >> 4]
    out[k + 4] = pair[(e & 15) << 8 | f]
    k = k + 4
    i = i + 6
  end
  if i <= n then
    local a, b, c = byte(s, i, i + 2)
    out[k + 1] = pair[a << 4 | b >> 4]
    out[k + 2] = pair[(b & 15) << 8 | c]
  end
  return concat(out)
end

-- b64(C [, D]) -> A, B: A encodes the longest prefix of C..D that is whole
-- 3-byte groups, B is the rest, not encoded. D nil: A encodes all of C,
-- padded (nil if empty), B is nil.
function M.b64(c, d)
  if c == nil then return nil, nil end
  local s = d and c .. d or c
  local n = #s
  local full = n - n % 3
  local out = b64_groups(s, full)
  if d ~= nil then return out, sub(s, full + 1) end
  local left = n - full
  if left == 1 then
    local a = byte(s, n)
    out = out .. sub(pair[a << 4], 1, 2) .. "=="
  elseif left == 2 then
    local a, b = byte(s, n - 1, n)
    local v = (a << 8 | b) << 2       -- 18 bits: three digits
    out = out .. pair[v >> 6] .. sub(ALPHABET, (v & 63) + 1, (v & 63) + 1)
      .. "="
  end
  if out == "" then return nil, nil end
  return out, nil
end

-- Decodes whole 4-digit groups of s (digits only, #s a multiple of 4).
-- Bytes gather in a numeric buffer turned into a string every few KB.
local function unb64_groups(s)
  local parts, np = {}, 0
  local buf, m = {}, 0
  for i = 1, #s, 4 do
    local a, b, c, d = byte(s, i, i + 3)
    local v = value[a] << 18 | value[b] << 12 | value[c] << 6 | value[d]
    buf[m + 1] = v >> 16
    if c == 61 then                    -- "xx==": one byte
      m = m + 1
    elseif d == 61 then                -- "xxx=": two
      buf[m + 2] = v >> 8 & 255
      m = m + 2
    else
      buf[m + 2] = v >> 8 & 255
      buf[m + 3] = v & 255
      m = m + 3
    end
    if m >= 3000 then
      np = np + 1
      parts[np] = char(unpack(buf, 1, m))
      m = 0
    end
  end
  if m > 0 then
    np = np + 1
    parts[np] = char(unpack(buf, 1, m))
  end
  return concat(parts)
end

-- unb64(C [, D]) -> A, B: A decodes the longest prefix of C..D made of
-- whole groups (bytes outside the alphabet are skipped), B is the rest.
-- D nil: an incomplete last group is dropped; A is nil if empty.
function M.unb64(c, d)
  if c == nil then return nil, nil end
  local s = (d and c .. d or c):gsub("[^A-Za-z0-9+/=]", "")
  local full = #s - #s % 4
  local out = unb64_groups(full == #s and s or sub(s, 1, full))
  if d ~= nil then return out, sub(s, full + 1) end
  if out == "" then return nil, nil end
  return out, nil
end

---------------------------------------------------------------------------
-- Quoted-Printable (RFC 2045, 6.7)

local function quote(ch)
  return format("=%02X", byte(ch))
end

-- bytes that never need quoting: 33..60 and 62..126
local NOT_PLAIN = "[^\33-\60\62-\126]"

-- qp(C [, D [, marker]]) -> A, B: A encodes the longest prefix of C..D
-- that can be encoded without seeing more (a space or tab is quoted only
-- before a line break, so it waits for the next two bytes), B is the rest.
-- CRLF becomes marker (CRLF by default); other CR and LF are quoted.
-- D nil: the rest is encoded too and, if there was a rest, followed by a
-- soft line break; A is nil if empty.
function M.qp(c, d, marker)
  if c == nil then return nil, nil end
  marker = marker or CRLF
  local s = d and c .. d or c
  local n = #s
  local out, k = {}, 0
  local i = 1
  while i <= n do
    local j = find(s, NOT_PLAIN, i) or n + 1
    if j > i then
      k = k + 1
      out[k] = sub(s, i, j - 1)
      i = j
    end
    if i > n then break end
    local ch = byte(s, i)
    if ch == 13 then                   -- CR: CRLF or a lone CR?
      if i == n then break end
      if byte(s, i + 1) == 10 then
        k = k + 1
        out[k] = marker
        i = i + 2
      else
        k = k + 1
        out[k] = "=0D"
        i = i + 1
      end
    elseif ch == 32 or ch == 9 then    -- quoted only before CRLF
      if i + 2 > n then break end
      k = k + 1
      if byte(s, i + 1) == 13 and byte(s, i + 2) == 10 then
        out[k] = quote(sub(s, i, i)) .. marker
        i = i + 3
      else
        out[k] = sub(s, i, i)
        i = i + 1
      end
    else
      k = k + 1
      out[k] = quote(sub(s, i, i))
      i = i + 1
    end
  end
  local rest = sub(s, i)
  if d ~= nil then return concat(out), rest end
  if rest ~= "" then
    k = k + 1
    out[k] = rest:gsub(NOT_PLAIN, quote) .. EQCRLF
  end
  local a = concat(out)
  if a == "" then return nil, nil end
  return a, nil
end

local HEX = "^%x%x"

-- unqp(C [, D]) -> A, B: A decodes the longest prefix of C..D that can
-- be decoded without seeing more, B is the rest. Soft line breaks go,
-- =XX become bytes (invalid ones stay as they are), CRLF stays; other
-- control bytes, lone LFs and bytes above 126 are dropped, as LuaSocket
-- does. D nil: an incomplete escape is dropped; A is nil if empty.
function M.unqp(c, d)
  if c == nil then return nil, nil end
  local s = d and c .. d or c
  local n = #s
  local out, k = {}, 0
  local i = 1
  while i <= n do
    local j = find(s, "[^\t\32-\60\62-\126]", i) or n + 1
    if j > i then
      k = k + 1
      out[k] = sub(s, i, j - 1)
      i = j
    end
    if i > n then break end
    local ch = byte(s, i)
    if ch == 61 then                   -- "="
      if i + 2 > n then break end
      local h = sub(s, i + 1, i + 2)
      if h ~= CRLF then
        k = k + 1
        out[k] = find(h, HEX) and char(tonumber(h, 16)) or "=" .. h
      end
      i = i + 3
    elseif ch == 13 then               -- CR: kept with its LF only
      if i == n then break end
      if byte(s, i + 1) == 10 then
        k = k + 1
        out[k] = CRLF
      end
      i = i + 2
    else
      i = i + 1
    end
  end
  local a = concat(out)
  if d ~= nil then return a, sub(s, i) end
  if a == "" then return nil, nil end
  return a, nil
end

---------------------------------------------------------------------------
-- line wrapping

-- wrp(left [, B [, length]]) -> A, m: B broken into lines of at most
-- length (76) bytes with CRLF; left is the room on B's first line, m the
-- room left on A's last. CR are dropped, LF become CRLF. B nil: a CRLF if
-- the last line is unfinished (else nil), and m = length.
function M.wrp(left, b, length)
  left = tonumber(left) or error("bad argument #1 to 'wrp' (number expected)",
    2)
  length = length or 76
  if b == nil then
    if left < length then return CRLF, length end
    return nil, length
  end
  local out, k = {}, 0
  local i, n = 1, #b
  while i <= n do
    local j = find(b, "[\r\n]", i) or n + 1
    while i < j do
      if left <= 0 then
        k = k + 1
        out[k] = CRLF
        left = length
      end
      local take = math.min(left, j - i)
      if take < 1 then take = 1 end
      k = k + 1
      out[k] = sub(b, i, i + take - 1)
      i = i + take
      left = left - take
    end
    if j <= n and byte(b, j) == 10 then
      k = k + 1
      out[k] = CRLF
      left = length
    end
    i = j + 1
  end
  return concat(out), left
end

-- qpwrp(left [, B [, length]]) -> A, m: wrp for Quoted-Printable text:
-- the breaks are soft ("=" CRLF) and never split an =XX escape.
function M.qpwrp(left, b, length)
  left = tonumber(left)
    or error("bad argument #1 to 'qpwrp' (number expected)", 2)
  length = length or 76
  if b == nil then
    if left < length then return EQCRLF, length end
    return nil, length
  end
  local out, k = {}, 0
  local i, n = 1, #b
  while i <= n do
    local j = find(b, "[\r\n=]", i) or n + 1
    while i < j do
      if left <= 1 then
        k = k + 1
        out[k] = EQCRLF
        left = length
      end
      local take = math.min(left - 1, j - i)
      if take < 1 then take = 1 end
      k = k + 1
      out[k] = sub(b, i, i + take - 1)
      i = i + take
      left = left - take
    end
    if j <= n then
      local ch = byte(b, j)
      if ch == 10 then
        k = k + 1
        out[k] = CRLF
        left = length
      elseif ch == 61 then             -- "=": room for the whole =XX
        if left <= 3 then
          k = k + 1
          out[k] = EQCRLF
          left = length
        end
        k = k + 1
        out[k] = "="
        left = left - 1
      end
    end
    i = j + 1
  end
  return concat(out), left
end

---------------------------------------------------------------------------
-- end of lines and dot-stuffing

-- eol(C [, D [, marker]]) -> A, B: D with every line break as marker
-- (CRLF). A CR or LF alone, or followed by the other one, is one break;
-- CR CR and LF LF are two. C, B: the code of the previous chunk's last
-- byte if it was CR or LF, else 0.
function M.eol(ctx, d, marker)
  ctx = math.tointeger(ctx)
    or error("bad argument #1 to 'eol' (number expected)", 2)
  if d == nil then return nil, 0 end
  marker = marker or CRLF
  local out, k = {}, 0
  local i, n = 1, #d
  while i <= n do
    local j = find(d, "[\r\n]", i) or n + 1
    if j > i then
      k = k + 1
      out[k] = sub(d, i, j - 1)
      ctx = 0
    end
    if j > n then break end
    local ch = byte(d, j)
    if ctx == 0 then
      k = k + 1
      out[k] = marker
      ctx = ch
    else
      if ch == ctx then
        k = k + 1
        out[k] = marker
      end
      ctx = 0
    end
    i = j + 1
  end
  return concat(out), ctx
end

-- dot(m [, B]) -> A, n: B with a "." doubled at the start of each line
-- (SMTP); m, n: how much of CRLF ends the previous chunk / B (0, 1, 2).
-- A message starts after an implicit CRLF, so the first m is 2.
function M.dot(state, b)
  state = tonumber(state)
    or error("bad argument #1 to 'dot' (number expected)", 2)
  if b == nil then return nil, 2 end
  local out, k = {}, 0
  local i, n = 1, #b
  while i <= n do
    local j = find(b, "[\r\n.]", i) or n + 1
    if j > i then
      k = k + 1
      out[k] = sub(b, i, j - 1)
      state = 0
    end
    if j > n then break end
    local ch = byte(b, j)
    if ch == 13 then
      k = k + 1
      out[k] = "\r"
      state = 1
    elseif ch == 10 then
      k = k + 1
      out[k] = "\n"
      state = state == 1 and 2 or 0
    else
      k = k + 1
      out[k] = state == 2 and ".." or "."
      state = 0
    end
    i = j + 1
  end
  return concat(out), state
end

---------------------------------------------------------------------------
-- high-level filters

local cycle = ltn12.filter.cycle

-- name, ... -> t[name](...) (t.default when name is not a string)
local choose = require("socket").choose

local encodet, decodet, wrapt = {}, {}, {}
M.encodet, M.decodet, M.wrapt = encodet, decodet, wrapt

encodet["base64"] = function()
  return cycle(M.b64, "")
end

-- mode "binary": CRLF is data too (=0D=0A); "text" (default): a break
encodet["quoted-printable"] = function(mode)
  return cycle(M.qp, "", mode == "binary" and "=0D=0A" or CRLF)
end

decodet["base64"] = function()
  return cycle(M.unb64, "")
end

decodet["quoted-printable"] = function()
  return cycle(M.unqp, "")
end

wrapt["text"] = function(length)
  length = length or 76
  return cycle(M.wrp, length, length)
end
wrapt["base64"] = wrapt["text"]
wrapt["default"] = wrapt["text"]

wrapt["quoted-printable"] = function()
  return cycle(M.qpwrp, 76, 76)
end

-- encode("base64" | "quoted-printable" [, mode]) -> filter
M.encode = choose(encodet)
-- decode("base64" | "quoted-printable") -> filter
M.decode = choose(decodet)
-- wrap(["text" [, length] | "base64" | "quoted-printable"]) -> filter
M.wrap = choose(wrapt)

-- normalize([marker]) -> filter making every line break marker (CRLF)
function M.normalize(marker)
  return cycle(M.eol, 0, marker)
end

-- stuff() -> filter doing SMTP's dot-stuffing
function M.stuff()
  return cycle(M.dot, 2)
end

return M
