-- socket/headers.lua -- "socket.headers" (also socket.headers): canonic,
-- LuaSocket's table from lowercased HTTP/MIME header names to their
-- usual spelling, for code that sends headers it keeps lowercased.
-- Built at load time: Title-Case per word, but for the names below.
local M = {}

local names = [[
accept accept-charset accept-encoding accept-language accept-ranges
access-control-allow-credentials access-control-allow-headers
access-control-allow-methods access-control-allow-origin
access-control-expose-headers access-control-max-age
access-control-request-headers access-control-request-method
action age allow alternate-recipient arrival-date authorization bcc
cache-control cc comments connection content-description
content-disposition content-encoding content-id content-language
content-length content-location content-md5 content-range
content-security-policy content-transfer-encoding content-type cookie
date diagnostic-code dnt dsn-gateway etag expect expires final-log-id
final-recipient forwarded from host if-match if-modified-since
if-none-match if-range if-unmodified-since in-reply-to keep-alive keywords
last-attempt-date last-modified link location max-forwards message-id
mime-version origin original-envelope-id original-recipient pragma
proxy-authenticate proxy-authorization proxy-connection range received
received-from-mta references referer refresh remote-mta reply-to
reporting-mta resent-bcc resent-cc resent-date resent-from
resent-message-id resent-reply-to resent-sender resent-to retry-after
return-path sender server set-cookie smtp-remote-recipient status
strict-transport-security subject te to trailer transfer-encoding upgrade
user-agent vary via warning will-retry-until www-authenticate
x-content-type-options x-forwarded-for x-forwarded-host x-forwarded-proto
x-frame-options x-mailer x-requested-with
]]

-- words spelled otherwise than Title-Case
local special = {
  id = "ID", md5 = "MD5", dsn = "DSN", etag = "ETag", mime = "MIME",
  mta = "MTA", smtp = "SMTP", te = "TE", www = "WWW", dnt = "DNT",
}

local canonic = {}
for name in names:gmatch("%S+") do
  canonic[name] = name:gsub("[^%-]+", function(w)
    return special[w] or w:sub(1, 1):upper() .. w:sub(2)
  end)
end
M.canonic = canonic

return M
