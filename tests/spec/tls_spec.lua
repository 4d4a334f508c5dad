-- tls_spec.lua -- TLS on netsh sockets against local servers only: netsh
-- itself and openssl s_server/s_client, with a test PKI made at test time
-- by tests/support/certs.sh (test CA, server, expired, wrong-name,
-- self-signed and client certificates). Verification errors, client
-- certificates, ALPN/versions, receive patterns and timeouts after the
-- handshake, large transfers, STARTTLS, OpenResty's sslhandshake,
-- handshake timeouts, and no leaks on close/GC.
local socket = require "socket"
local src = os.getenv("NETSH_SRC") or "."
package.path = src .. "/tests/spec/helpers/?.lua;" .. package.path
local fds = require "fds"

local D                     -- the certificate directory
local CA                    -- client options trusting the test CA

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, "failed: " .. cmd)
end

local function certs(name)
  return {certfile = D .. "/" .. name .. ".pem",
          keyfile = D .. "/" .. name .. ".key"}
end

local function merge(a, b)
  local t = {}
  for k, v in pairs(a or {}) do t[k] = v end
  for k, v in pairs(b or {}) do t[k] = v end
  return t
end

-- A netsh TLS server whose clients run handler(c) (an echo by default).
local function tls_server(name, extra, handler)
  local tls = merge(certs(name or "server"), extra)
  local s = assert(socket.bind("127.0.0.1", 0, {tls = tls}))
  local _, port = s:getsockname()
  handler = handler or function(c)
    while true do
      local data = c:receiveany(65536)
      if not data then return end
      assert(c:send(data))
    end
  end
  local t = spawn(function() s:serve(handler) end)
  return port, function() s:close(); t:join() end
end

local fdcount = fds.count

-- Reads a file written by a background process until pred(text) holds
-- (bounded: at most `limit` seconds).
local function wait_file(path, pred, limit)
  local deadline = task.now() + (limit or 10)
  repeat
    local f = io.open(path)
    local text = f and f:read("a") or ""
    if f then f:close() end
    if pred(text) then return text end
    sleep(0.05)
  until task.now() > deadline
  local f = io.open(path)
  local text = f and f:read("a") or ""
  if f then f:close() end
  return text
end

setup(function()
  D = os.tmpname()
  os.remove(D)
  sh("sh " .. src .. "/tests/support/certs.sh " .. D .. " >/dev/null")
  CA = {cafile = D .. "/ca.pem"}
end)

teardown(function()
  if D then os.execute("rm -rf " .. D) end
end)

describe("tls client verification", function()
  it("accepts a chain from the trusted CA, by name and by IP", function()
    local port, stop = tls_server()
    for _, host in ipairs({"localhost", "127.0.0.1"}) do
      local c, err = socket.connect(host, port, {tls = CA})
      assert.is_nil(err)
      assert.equal("TLSv1.3", c:getprotocol())
      assert.matches("^TLS_", c:getcipher())
      c:close()
    end
    stop()
  end)

  it("describes the peer certificate", function()
    local port, stop = tls_server()
    local c = assert(socket.connect("localhost", port, {tls = CA}))
    local cert = c:getpeercertificate()
    c:close()
    stop()
    assert.equal("localhost", cert.common_name)
    assert.equal("CN=localhost,O=netsh test", cert.subject)
    assert.equal("CN=netsh test CA,O=netsh test", cert.issuer)
    assert.same({"DNS:localhost", "IP:127.0.0.1", "IP:::1"}, cert.sans)
    assert.is_true(cert.verified)
    assert.is_nil(cert.verify_error)
    assert.equal(365 * 86400, cert.not_after - cert.not_before)
    assert.is_true(math.abs(cert.not_before - os.time()) < 3600)
    assert.equal(os.date("!%Y-%m-%dT%H:%M:%SZ", cert.not_after),
      cert.not_after_iso)
    assert.equal(os.date("!%Y-%m-%dT%H:%M:%SZ", cert.not_before),
      cert.not_before_iso)
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE", cert.pem)
    -- the same fingerprint and serial as the openssl CLI's
    local p = io.popen("openssl x509 -in " .. D .. "/server.pem -noout "
      .. "-fingerprint -sha256 -serial")
    local out = p:read("a")
    p:close()
    assert.equal(out:match("Fingerprint=(%S+)"), cert.fingerprint)
    assert.equal(out:match("serial=(%S+)"), cert.serial)
  end)

  it("gives the chain the peer sent: getpeerchain()", function()
    local port, stop = tls_server("chained")
    local c = assert(socket.connect("localhost", port, {tls = CA}))
    local chain = c:getpeerchain()
    local cert = c:getpeercertificate()
    c:close()
    assert.equal(2, #chain)
    assert.equal(cert.fingerprint, chain[1].fingerprint)
    assert.is_true(cert.verified)       -- through the intermediate
    assert.equal("CN=netsh test intermediate,O=netsh test", chain[1].issuer)
    assert.equal("netsh test intermediate", chain[2].common_name)
    assert.equal("CN=netsh test CA,O=netsh test", chain[2].issuer)
    assert.equal(20 * 86400, chain[2].not_after - chain[2].not_before)
    assert.is_true(chain[2].not_after < chain[1].not_after)
    stop()
    -- a single certificate is a chain of one; plain sockets have none
    port, stop = tls_server()
    c = assert(socket.connect("localhost", port, {tls = CA}))
    chain = c:getpeerchain()
    assert.equal(1, #chain)
    assert.equal("localhost", chain[1].common_name)
    c:close()
    stop()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, plain_port = s:getsockname()
    c = assert(socket.connect("127.0.0.1", plain_port))
    assert.is_nil(c:getpeerchain())
    c:close(); s:close()
  end)

  it("a server picks its certificate by the name asked for (sni)",
     function()
    local ctx = assert(socket.tlscontext(merge(certs("chained"),
      {mode = "server"})))
    local port, stop = tls_server("server", {sni = {
      ["wrong.example"] = certs("wrong"),
      ["*.wild.example"] = certs("self"),
      ["chain.example"] = ctx,
    }})
    local function peer(name, verify)
      local c, err = socket.connect("127.0.0.1", port, {tls = merge(CA,
        {servername = name, verify = verify})})
      if not c then return nil, err end
      local cert, chain = c:getpeercertificate(), c:getpeerchain()
      assert(c:send("ping\n"))
      assert.equal("ping", c:receive())
      c:close()
      return cert, chain
    end
    local cert = assert(peer("wrong.example"))
    assert.equal("wrong.example", cert.common_name)
    assert.is_true(cert.verified)
    cert = assert(peer("WRONG.example"))              -- names are case-blind
    assert.equal("wrong.example", cert.common_name)
    cert = assert(peer("localhost"))                   -- not listed: default
    assert.equal("CN=netsh test CA,O=netsh test", cert.issuer)
    cert = assert(peer("a.wild.example", false))       -- one label
    assert.equal("CN=localhost,O=netsh test", cert.issuer)  -- self-signed
    cert = assert(peer("b.a.wild.example", false))     -- two: default
    assert.equal("CN=netsh test CA,O=netsh test", cert.issuer)
    local chain
    cert, chain = peer("chain.example", false)
    assert.equal(2, #chain)
    assert.equal("netsh test intermediate", chain[2].common_name)
    stop()
    -- misuse raises, naming the option
    assert.has_error(function() socket.bind("127.0.0.1", 0,
      {tls = merge(certs("server"), {sni = "x"})}) end)
    assert.has_error(function() socket.bind("127.0.0.1", 0,
      {tls = merge(certs("server"), {sni = {["a.example"] = {}}})}) end,
      "tls option 'sni': 'a.example' needs certfile")
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, p = s:getsockname()
    assert.has_error(function() socket.connect("127.0.0.1", p,
      {tls = {sni = {}}}) end)
    s:close()
  end)

  it("run over Unix domain sockets too", function()
    local path = os.tmpname()
    os.remove(path)
    local s = assert(socket.bind("unix:" .. path, {tls = certs("server")}))
    local t = spawn(function()
      s:serve(function(c)
        local line = c:receive()
        if line then c:send(line:upper() .. "\n") end
      end)
    end)
    local c = assert(socket.connect("unix:" .. path,
      {tls = merge(CA, {servername = "localhost"})}))
    assert.equal("TLSv1.3", c:getprotocol())
    assert.is_true(c:getpeercertificate().verified)
    c:send("secret\n")
    assert.equal("SECRET", c:receive())
    c:close()
    -- no host name to check: say one, or verify = false
    local ok, err = socket.connect("unix:" .. path, {tls = CA})
    assert.is_nil(ok)
    assert.matches("no server name", err)
    s:close(); t:join()
    os.remove(path)
  end)

  it("refuses an expired certificate", function()
    local port, stop = tls_server("expired")
    local c, err = socket.connect("localhost", port, {tls = CA})
    assert.is_nil(c)
    assert.equal("certificate verify failed: certificate has expired", err)
    stop()
  end)

  it("refuses a certificate for another name", function()
    local port, stop = tls_server("wrong")
    local c, err = socket.connect("localhost", port, {tls = CA})
    assert.is_nil(c)
    assert.equal("hostname mismatch", err)
    -- the name it does have passes, given as servername
    c = assert(socket.connect("127.0.0.1", port,
      {tls = merge(CA, {servername = "wrong.example"})}))
    c:close()
    stop()
    -- an IP that is not in the certificate
    port, stop = tls_server()
    c, err = socket.connect("127.0.0.1", port,
      {tls = merge(CA, {servername = "127.0.0.2"})})
    assert.equal("hostname mismatch", err)
    stop()
  end)

  it("refuses names and paths with a NUL byte, which C would cut",
     function()
    local port, stop = tls_server()
    -- to C, "localhost\0.evil.com" is "localhost", which would verify
    assert.same({nil, "invalid argument"},
      {socket.connect("localhost\0.evil.com", port, {tls = CA})})
    assert.has_error(function()
      socket.connect("127.0.0.1", port,
        {tls = merge(CA, {servername = "localhost\0.evil.com"})})
    end, "tls option 'servername': must not contain a NUL byte")
    for _, k in ipairs{"cafile", "capath"} do
      assert.has_error(function()
        socket.connect("localhost", port,
          {tls = {[k] = D .. "/ca.pem\0.evil"}})
      end, "tls option '" .. k .. "': must not contain a NUL byte")
    end
    for _, k in ipairs{"certfile", "keyfile"} do
      local o = certs("server")
      o[k] = o[k] .. "\0.evil"
      assert.has_error(function() socket.bind("127.0.0.1", 0, {tls = o}) end,
        "tls option '" .. k .. "': must not contain a NUL byte")
    end
    local o = certs("server")
    o.sni = {["localhost\0.evil.com"] = certs("wrong")}
    assert.has_error(function() socket.bind("127.0.0.1", 0, {tls = o}) end,
      "tls option 'sni': names must not contain a NUL byte")
    stop()
  end)

  it("refuses a self-signed certificate unless verify = false", function()
    local port, stop = tls_server("self")
    local c, err = socket.connect("localhost", port, {tls = CA})
    assert.is_nil(c)
    assert.equal("certificate verify failed: self-signed certificate", err)
    c = assert(socket.connect("localhost", port, {tls = {verify = false}}))
    local cert = c:getpeercertificate()
    assert.is_false(cert.verified)
    assert.equal("certificate verify failed: self-signed certificate",
      cert.verify_error)
    assert(c:send("still encrypted\n"))
    assert.equal("still encrypted", c:receive())
    c:close()
    stop()
  end)

  it("trusts the system store by default, which lacks the test CA",
    function()
    local port, stop = tls_server()
    local c, err = socket.connect("localhost", port, {tls = true})
    assert.is_nil(c)
    assert.equal("certificate verify failed: unable to get local issuer "
      .. "certificate", err)
    stop()
  end)
end)

describe("tls client certificates", function()
  local need = {verify = true, cafile = nil}

  it("are required by a server that says verify = true", function()
    need.cafile = D .. "/ca.pem"
    local seen, seen_chain
    local port, stop = tls_server("server", need, function(c)
      if not c:starttls() then return end   -- explicit, server side
      local line = c:receive()
      seen = c:getpeercertificate()
      seen_chain = c:getpeerchain()
      if line then c:send(line .. "\n") end
    end)
    -- with one: accepted, and the server sees who it is
    local c = assert(socket.connect("localhost", port,
      {tls = merge(CA, certs("client"))}))
    assert(c:send("hi\n"))
    assert.equal("hi", c:receive())
    assert.equal("netsh client", seen.common_name)
    assert.is_true(seen.verified)
    assert.equal("netsh client", seen_chain[1].common_name)
    c:close()
    -- without: TLS 1.3 ends the client's handshake before the server
    -- judges it; the refusal (an alert) comes with the first read
    local err
    c, err = socket.connect("localhost", port, {tls = CA})
    if c then
      c:send("hi\n")
      local data, e = c:receive()
      assert.is_nil(data)
      err = e
      c:close()
    end
    assert.equal("tls: tlsv13 alert certificate required", err)
    stop()
  end)
end)

describe("tls sessions", function()
  it("negotiate ALPN and versions", function()
    local port, stop = tls_server("server", {alpn = {"h2", "http/1.1"}})
    local c = assert(socket.connect("localhost", port,
      {tls = merge(CA, {alpn = {"http/1.1", "h2"}})}))
    assert.equal("h2", c:getalpn())           -- the server's preference
    c:close()
    c = assert(socket.connect("localhost", port,
      {tls = merge(CA, {alpn = {"spdy/1"}})}))
    assert.is_nil(c:getalpn())                -- no overlap: no ALPN
    c:close()
    c = assert(socket.connect("localhost", port,
      {tls = merge(CA, {max_version = "TLSv1.2"})}))
    assert.equal("TLSv1.2", c:getprotocol())
    assert.matches("ECDHE", c:getcipher())
    c:close()
    -- a shared client context, with per-connection options beside it
    local ctx = socket.tlscontext(merge(CA, {alpn = {"h2"}}))
    for _ = 1, 3 do
      c = assert(socket.connect("localhost", port, {tls = ctx}))
      assert.equal("h2", c:getalpn())
      c:close()
    end
    local _, err = socket.connect("127.0.0.1", port,
      {tls = {context = ctx, servername = "other.test"}})
    assert.equal("hostname mismatch", err)
    stop()
  end)

  it("keep every receive pattern, and timeouts, after the handshake",
    function()
    local port, stop = tls_server("server", nil, function(c)
      assert(c:send("line one\r\nline two\nABCDEFGHIJ"))
      assert(c:receive("*l"))                  -- wait for the go
      assert(c:send("tail|rest"))
      sleep(0.3)
      assert(c:send("late"))
      c:shutdown("send")                       -- close_notify + FIN
      c:receive("*a")
    end)
    local c = assert(socket.connect("localhost", port, {tls = CA}))
    assert.equal("line one", c:receive())
    assert.equal("line two", c:receive("*l"))
    assert.equal("ABCDE", c:receive(5))
    assert.equal("pfx:FGHIJ", c:receive(9, "pfx:"))
    assert(c:send("go\n"))
    local until_bar = c:receiveuntil("|")
    assert.equal("tail", until_bar())
    assert.equal("rest", c:receiveany(100))
    c:settimeout(0.1)
    local data, err, partial = c:receive(10)
    assert.is_nil(data)
    assert.equal("timeout", err)
    assert.equal("", partial)
    c:settimeout(2)
    assert.equal("late", c:receive("*a"))     -- close_notify ends *a
    data, err = c:receive()
    assert.equal("closed", err)
    c:close()
    stop()
  end)

  it("resume with OpenResty's sslhandshake(session)", function()
    local ctx = socket.tlscontext(merge(certs("server"), {mode = "server"}))
    local s = assert(socket.bind("127.0.0.1", 0, {tls = ctx}))
    local _, port = s:getsockname()
    local t = spawn(function()
      s:serve(function(c) c:send((c:receive() or "?") .. "\n") end)
    end)
    local session
    for round = 1, 2 do
      local c = assert(socket.connect("localhost", port))
      local r = assert(c:sslhandshake(session, "localhost", false))
      assert.equal(round == 2, c:tlsinfo("reused"))
      assert(c:send("x\n"))
      assert.equal("x", c:receive())
      session = c:getsslsession()           -- with the ticket read
      assert.is_userdata(r)
      c:close()
    end
    local c = assert(socket.connect("localhost", port))
    assert.is_true(c:sslhandshake(false, "localhost", false))
    c:close()
    -- verification is on unless ssl_verify is false
    c = assert(socket.connect("localhost", port))
    local ok, err = c:sslhandshake(nil, "localhost")
    assert.is_nil(ok)
    assert.matches("^certificate verify failed", err)
    c:close()
    s:close()
    t:join()
  end)

  it("upgrade a plaintext conversation (STARTTLS)", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local t = spawn(function()
      local c = assert(s:accept())
      assert.equal("STARTTLS", c:receive())
      assert(c:send("220 go ahead\n"))
      assert(c:starttls(certs("server")))
      assert.equal("secret", c:receive())
      assert(c:send("ok\n"))
      c:close()
    end)
    local c = assert(socket.connect("localhost", port))
    assert(c:send("STARTTLS\n"))
    assert.equal("220 go ahead", c:receive())
    assert(c:starttls(CA))
    local ok, err = c:starttls(CA)
    assert.is_nil(ok)
    assert.equal("tls already started", err)
    assert(c:send("secret\n"))
    assert.equal("ok", c:receive())
    c:close()
    t:join()
    s:close()
  end)
end)

describe("tls transfers", function()
  it("echo 8 MiB both ways through netsh client and server", function()
    local port, stop = tls_server()
    local c = assert(socket.connect("localhost", port, {tls = CA}))
    local chunk = {}
    for i = 1, 4096 do chunk[i] = string.char(i % 251) end
    chunk = table.concat(chunk)
    local n = 8 * 1024 * 1024 // #chunk
    local writer = spawn(function()
      for i = 1, n do
        assert(c:send(chunk:sub(i % 7 + 1) .. chunk:sub(1, i % 7)))
      end
    end)
    local got, mismatch = 0, 0
    local expect = {}
    for i = 1, n do expect[#expect + 1] = chunk:sub(i % 7 + 1)
      .. chunk:sub(1, i % 7) end
    local whole = table.concat(expect)
    while got < #whole do
      local data = assert(c:receive(math.min(65536, #whole - got)))
      if data ~= whole:sub(got + 1, got + #data) then
        mismatch = mismatch + 1
      end
      got = got + #data
    end
    writer:join()
    assert.equal(#whole, got)
    assert.equal(0, mismatch)
    c:close()
    stop()
  end)

  it("interoperate with openssl s_server (netsh as client)", function()
    local p = io.popen("exec openssl s_server -rev -accept 127.0.0.1:0 "
      .. "-naccept 1 -cert " .. D .. "/server.pem -key " .. D
      .. "/server.key 2>&1")
    local port
    for _ = 1, 20 do
      local l = p:read("l")
      if not l then break end
      port = l:match("^ACCEPT .*:(%d+)$")
      if port then break end
    end
    assert.is_truthy(port)
    local c = assert(socket.connect("localhost", tonumber(port),
      {tls = CA}))
    assert(c:send("hello world\n"))
    assert.equal("dlrow olleh", c:receive())
    c:close()
    local out = p:read("a")
    p:close()
    assert.matches("CONNECTION CLOSED", out)  -- it got our close_notify
  end)

  it("interoperate with openssl s_client (netsh as server)", function()
    local port, stop = tls_server("server", nil, function(c)
      local line = c:receive()
      c:send("echo: " .. tostring(line) .. "\n")
    end)
    local out = os.tmpname()
    sh(("(printf 'ping\\n' | timeout 10 openssl s_client -connect "
      .. "127.0.0.1:%d -servername localhost -verify_hostname localhost "
      .. "-CAfile %s/ca.pem -verify_return_error -ign_eof -quiet "
      .. "> %s 2>&1 &)"):format(port, D, out))
    local text = wait_file(out, function(s) return s:find("echo: ping") end)
    os.remove(out)
    assert.matches("echo: ping", text)
    stop()
  end)
end)

describe("tls with settimeout(0)", function()
  -- a plain connected pair, TLS attached to both ends (not handshaken)
  local function tls_pair()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local c = assert(socket.connect("127.0.0.1", port))
    local p = assert(s:accept())
    s:close()
    assert(c:tlsattach(CA, "localhost"))
    assert(p:tlsattach(certs("server")))
    return c, p
  end

  -- calls f() until it returns true, for at most 5 seconds
  local function poll(f)
    local deadline = task.now() + 5
    repeat
      if f() then return true end
    until task.now() > deadline
    return false
  end

  it("polls handshake and data without yielding", function()
    local c, p = tls_pair()
    c:settimeout(0); p:settimeout(0)
    -- the client cannot finish before the server answers: "timeout"
    assert.same({nil, "timeout"}, {c:tlshandshake()})
    -- a send meanwhile sent nothing: its last index is i - 1
    assert.same({nil, "timeout", 2}, {c:send("abcdef", 3)})
    local cdone, pdone
    assert.is_true(poll(function()
      cdone = cdone or c:tlshandshake()
      pdone = pdone or p:tlshandshake()
      return cdone and pdone
    end), "the handshake never ended")
    assert.equal("TLSv1.3", c:getprotocol())
    assert.equal(6, c:send("hello\n"))
    local line
    assert.is_true(poll(function()
      line = p:receive("*l")
      return line ~= nil
    end))
    assert.equal("hello", line)
    -- 2 MB, polled: send until a call says all of it left, as
    -- LuaSocket's test_nonblocking does
    local data = ("0123456789abcdef"):rep(128 * 1024)
    local sent, done, parts, have = 0, false, {}, 0
    assert.is_true(poll(function()
      if not done then
        local last, err, partial = p:send(data, sent + 1)
        sent = last or partial
        done = last ~= nil
        if not last then assert.equal("timeout", err) end
      end
      local _, err, partial = c:receive("*a")
      assert.equal("timeout", err)
      parts[#parts + 1] = partial
      have = have + #partial
      return have == #data and done
    end), "only " .. have .. " bytes came")
    assert.is_true(table.concat(parts) == data)
    c:close(); p:close()
  end)

  it("a polled send's last record leaves when the task waits", function()
    local c, p = tls_pair()
    local hs = spawn(function() return c:tlshandshake() end)
    assert(p:tlshandshake())
    assert(hs:join())
    p:settimeout(0)
    local data = ("0123456789abcdef"):rep(256 * 1024)     -- 4 MiB
    local last, err, sent = p:send(data)
    assert.same({nil, "timeout"}, {last, err})
    assert.is_true(sent > 0 and sent < #data, sent)
    -- the peer gets all `sent` bytes once p waits for its answer
    local reader = spawn(function()
      c:settimeout(3)
      local got = c:receive(sent)
      c:send(got and "all\n" or "short\n")
    end)
    p:settimeout(5)
    assert.equal("all", p:receive())
    reader:join()
    c:close(); p:close()
  end)

  it("a receive polls the handshake: timeout, then data", function()
    local c, p = tls_pair()
    p:settimeout(0)
    local t = spawn(function()
      assert(c:tlshandshake())
      assert(c:send("over tls\n"))
    end)
    assert.same({nil, "timeout", ""}, {p:receive()})
    local line
    assert.is_true(poll(function()
      line = p:receive()
      if line then return true end
      sleep(0.001)                 -- let the client task run
    end))
    assert.equal("over tls", line)
    t:join()
    c:close(); p:close()
  end)
end)

describe("tls and a reset by the peer", function()
  it("fail receive(\"*a\") with the partial data", function()
    local port, stop = tls_server("server", nil, function(c)
      assert(c:send("partial resp"))
      sleep(0.05)
      -- reset without close_notify: the raw descriptor, SO_LINGER 0
      local fd = c:getfd()
      c:setfd(-1)
      local raw = socket.tcp()
      raw:setfd(fd)
      raw:setoption("linger", {on = true, timeout = 0})
      raw:close()
    end)
    local c = assert(socket.connect("localhost", port, {tls = CA}))
    assert.same({nil, "closed", "partial resp"}, {c:receive("*a")})
    assert.equal("connection reset by peer", c:readerror())
    c:close()
    stop()
  end)
end)

describe("tls handshake timeouts", function()
  -- a server that accepts and never answers
  local function mute_server()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local held = {}
    local t = spawn(function()
      while true do
        local c = s:accept()
        if not c then return end
        held[#held + 1] = c
      end
    end)
    return port, function()
      s:close()
      t:join()
      for _, c in ipairs(held) do c:close() end
    end
  end

  it("end a handshake the server never answers", function()
    local port, stop = mute_server()
    local t0 = task.now()
    local c, err = socket.connect("localhost", port,
      {tls = merge(CA, {handshake_timeout = 0.3})})
    local dt = task.now() - t0
    assert.is_nil(c)
    assert.equal("handshake timeout", err)
    assert.is_true(dt >= 0.29 and dt < 2, "took " .. dt)
    -- the socket's own timeout bounds it too
    t0 = task.now()
    c, err = socket.create_connection({"localhost", port}, 0.2, nil,
      {tls = CA})
    assert.equal("handshake timeout", err)
    assert.is_true(task.now() - t0 < 2)
    stop()
  end)

  it("end a server handshake the client never starts", function()
    local result
    local port, stop = tls_server("server", nil, function(c)
      c:settimeout(0.2)
      result = table.pack(c:receive())
    end)
    local c = assert(socket.connect("127.0.0.1", port))   -- plain TCP
    sleep(0.5)
    assert.same({n = 3, nil, "handshake timeout", ""}, result)
    c:close()
    stop()
  end)

  it("report a peer that speaks no TLS", function()
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    local t = spawn(function()
      local c = assert(s:accept())
      c:receiveany(1000)
      c:send("HTTP/1.1 400 Bad Request\r\n\r\n")
      sleep(0.2)
      c:close()
    end)
    local c, err = socket.connect("localhost", port, {tls = CA})
    assert.is_nil(c)
    assert.equal("tls: wrong version number", err)
    t:join()
    s:close()
  end)
end)

describe("tls resources", function()
  it("are freed on close and GC, without fd leaks", function()
    local port, stop = tls_server()
    local before = fds.settled()
    local function churn()
      for i = 1, 40 do
        local c = assert(socket.connect("localhost", port, {tls = CA}))
        assert(c:send("x\n"))
        assert.equal("x", c:receive())
        if i % 2 == 0 then c:close() end    -- the others: dropped
      end
      -- a handshake left half done
      local c = assert(socket.connect("localhost", port))
      assert(c:tlsattach(CA))
    end
    churn()
    -- the server's sides close once they see the EOF: give them time
    local now
    for _ = 1, 40 do
      collectgarbage()
      collectgarbage()
      now = fdcount()
      if now <= before then break end
      sleep(0.05)
    end
    -- a leak leaves more descriptors than before; fewer is an earlier
    -- spec's socket finishing its close meanwhile
    assert.is_true(now <= before, ("fds: %d before, %d after"):format(before, now))
    stop()
  end)

  it("raise on bad options, naming them", function()
    local port, stop = tls_server()
    local c = assert(socket.connect("localhost", port))
    assert.has_error(function() c:starttls({alpn = 42}) end,
      "tls option 'alpn': table of strings expected, got number")
    assert.has_error(function() c:starttls("yes") end)
    local ok, err = c:starttls({cafile = D .. "/missing.pem"})
    assert.is_nil(ok)
    assert.equal("tls: cannot load CA from '" .. D .. "/missing.pem'", err)
    c:close()
    assert.has_error(function() socket.bind("127.0.0.1", 0, {tls = {}}) end)
    stop()
  end)
end)
