-- dns_spec.lua -- socket.dns on c-ares: /etc/hosts names, numeric hosts,
-- and a local DNS responder (helpers/dns_responder.py) for real queries,
-- TTLs, errors, timeouts and cancellation. No internet.
local src = os.getenv("NETSH_SRC") or "."
package.path = src .. "/tests/spec/helpers/?.lua;" .. package.path
local dns = require "socket.dns"
local responder = require "dns"

describe("socket.dns without a server", function()
  it("resolves localhost at once, IPv4 first", function()
    local ip, resolved = dns.toip("localhost")
    assert.equal("127.0.0.1", ip)
    assert.equal("localhost", resolved.name)
    assert.same({"127.0.0.1", "::1"}, resolved.ip)
    local list = dns.getaddrinfo("localhost")
    assert.same({family = "inet", addr = "127.0.0.1"}, list[1])
    assert.same({family = "inet6", addr = "::1"}, list[2])
    assert.same({{family = "inet6", addr = "::1"}},
      dns.getaddrinfo("localhost", "inet6"))
  end)

  it("passes numeric addresses through", function()
    assert.equal("10.1.2.3", (dns.toip("10.1.2.3")))
    assert.same({{family = "inet6", addr = "fe80::1"}},
      dns.getaddrinfo("fe80::1"))
    local _, err = dns.getaddrinfo("::1", "inet")
    assert.equal("address family not supported", err)
  end)

  it("reads /etc/hosts in reverse", function()
    local name, resolved = dns.tohostname("127.0.0.1")
    assert.equal("localhost", name)
    assert.equal("127.0.0.1", resolved.ip[1])
  end)

  it("knows the host name and service names", function()
    assert.is_string(dns.gethostname())
    local names, service = dns.getnameinfo("127.0.0.1", 80)
    assert.same({"localhost"}, names)
    assert.equal("http", service)
    local _, err = dns.getnameinfo()
    assert.equal("host or service not provided, or not known", err)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() dns.query("x", "BOGUS") end)
    assert.has_error(function() dns.toip() end)
  end)
end)

describe("socket.dns against a local responder", function()
  setup(function() responder.start() end)
  teardown(function() responder.stop() end)

  it("queries every record type with TTLs", function()
    local a = assert(dns.query("test.netsh", "A"))
    assert.same({{name = "test.netsh", type = "A", ttl = 300,
      address = "127.0.0.1"}}, a)
    local aaaa = assert(dns.query("test.netsh", "AAAA"))
    assert.equal("::1", aaaa[1].address)
    assert.equal(301, aaaa[1].ttl)
    local mx = assert(dns.query("test.netsh", "MX"))
    assert.equal(2, #mx)
    assert.same({10, "mail.test.netsh", 302},
      {mx[1].preference, mx[1].exchange, mx[1].ttl})
    local txt = assert(dns.query("test.netsh", "TXT"))
    assert.equal("helloworld", txt[1].text)
    assert.same({"hello", "world"}, txt[1].strings)
    assert.equal("v=spf1 -all abc", txt[2].text)
    local srv = assert(dns.query("_echo._tcp.test.netsh", "SRV"))
    assert.same({name = "_echo._tcp.test.netsh", type = "SRV", ttl = 305,
      priority = 1, weight = 2, port = 7, target = "echo.test.netsh"}, srv[1])
    local cname = assert(dns.query("alias.test.netsh", "CNAME"))
    assert.equal("test.netsh", cname[1].target)
    assert.equal(306, cname[1].ttl)
    local ns = assert(dns.query("test.netsh", "NS"))
    assert.equal("ns1.test.netsh", ns[1].target)
  end)

  it("tells a missing name from a missing record", function()
    assert.same({nil, "host not found"}, {dns.query("nx.test.netsh", "A")})
    assert.same({}, dns.query("v4.test.netsh", "AAAA"))
    assert.same({nil, "host not found"}, {dns.toip("nx.test.netsh")})
    assert.same({nil, "host not found"}, {dns.getaddrinfo("nx.test.netsh")})
  end)

  it("resolves names with both families and TTLs", function()
    local list = assert(dns.getaddrinfo("test.netsh"))
    table.sort(list, function(x, y) return x.family < y.family end)
    assert.same({family = "inet", addr = "127.0.0.1", ttl = 300}, list[1])
    assert.same({family = "inet6", addr = "::1", ttl = 301}, list[2])
    assert.same({{family = "inet6", addr = "::1", ttl = 301}},
      dns.getaddrinfo("v6.test.netsh", "inet6"))
  end)

  it("follows CNAMEs and reports aliases", function()
    local ip, resolved = dns.toip("alias.test.netsh")
    assert.equal("127.0.0.1", ip)
    assert.equal("test.netsh", resolved.name)
    assert.same({"alias.test.netsh"}, resolved.alias)
    assert.equal("test.netsh", (dns.tohostname("alias.test.netsh")))
  end)

  it("times out a lookup nobody answers", function()
    local t0 = task.now()
    assert.same({nil, "timeout"}, {dns.query("slow.test.netsh", "A", 0.2)})
    local dt = task.now() - t0
    assert.is_true(dt >= 0.19 and dt < 1, dt)
    assert.same({nil, "timeout"},
      {task.timeout(0.2, dns.toip, "slow.test.netsh")})
    assert.same({nil, "timeout"}, {dns.query("slow.test.netsh", "A", 0)})
  end)

  it("setservers works while lookups are in flight", function()
    local port = responder.port()
    local live = spawn(dns.toip, "slow.test.netsh")
    local gone = spawn(dns.toip, "slow.test.netsh")
    sleep(0.02)
    gone:cancel()           -- its lookup goes on retrying inside c-ares
    assert.is_true(dns.setservers{"127.0.0.1:" .. port})
    -- the lookup still waited on ends as one whose server went away
    assert.same({nil, "temporary failure in name resolution"},
      {live:join(1)})
    assert.equal("127.0.0.1", (dns.toip("v4.test.netsh")))
  end)

  it("never stalls other lookups behind slow ones", function()
    local slow = {}
    for i = 1, 20 do
      slow[i] = spawn(dns.toip, "slow.test.netsh")
    end
    local t0 = task.now()
    local ts = {}
    for i = 1, 100 do ts[i] = spawn(dns.toip, "v4.test.netsh") end
    for i = 1, 100 do assert.equal("127.0.0.1", (ts[i]:join())) end
    assert.is_true(task.now() - t0 < 2)
    for _, t in ipairs(slow) do
      assert.equal("waiting", t:status())
      t:cancel()
      assert.equal("cancelled", t:status())
    end
    collectgarbage()
    collectgarbage()
    -- the cancelled lookups' late callbacks find no owner; still works:
    assert.equal("127.0.0.1", (dns.toip("v4.test.netsh")))
  end)
end)
