-- exitcodes.lua -- the exit-code contract of the bundled scripts.
-- 0 all good, 1 a check failed, 2 usage error. Scripts that make one
-- fetch or one connection can also speak curl's numbers (--curl-codes),
-- so they drop into shell scripts written around `curl -f`:
--   6 could not resolve, 7 could not connect, 22 HTTP error (>= 400),
--   28 timeout, 35 TLS handshake failed, 60 certificate problem.
local M = {OK = 0, FAILED = 1, USAGE = 2}

-- curl(err [, status]) -> curl's exit code for a netsh error string (or
-- an HTTP status >= 400 when err is nil)
function M.curl(err, status)
  if err == nil then
    if status and status >= 400 then return 22 end
    return 0
  end
  err = tostring(err)
  if err:find("host not found", 1, true) or err:find("resolve", 1, true)
      or err:find("name resolution", 1, true) then
    return 6
  elseif err:find("certificate", 1, true) or err:find("hostname mismatch", 1, true) then
    return 60
  elseif err == "timeout" or err:find("timed out", 1, true)
      or err:find("timeout", 1, true) then
    return 28
  elseif err:find("tls", 1, true) or err:find("ssl", 1, true)
      or err:find("handshake", 1, true) then
    return 35
  elseif err:find("refused", 1, true) or err:find("unreachable", 1, true)
      or err:find("connect", 1, true) then
    return 7
  end
  return 1
end

return M
