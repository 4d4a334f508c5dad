-- histogram_spec.lua -- http_bench's mergeable latency histogram
-- (lua/netsh/histogram.lua) and `http_bench --merge`: merged
-- percentiles equal those of one run over the same samples within the
-- bucket precision; --threshold turns a result into an exit code.
local histogram = require "netsh.histogram"
local jsonl = require "netsh.jsonl"

local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")

-- the nearest-rank percentile of a list, as http_bench computes it
local function exact(sorted, p)
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

-- latencies from 20 us to ~3 s, log-uniform, with a slow tail
local function samples(n, seed)
  math.randomseed(seed)
  local t = {}
  for i = 1, n do
    local v = 2e-5 * math.exp(math.random() * 9)
    if i % 97 == 0 then v = v * 10 end
    t[i] = v
  end
  return t
end

local PS = {0.5, 0.75, 0.9, 0.99, 0.999, 1}

-- within the bucket's precision: 1/256 of the value, +0.5 us rounding
local function close(want, got)
  return math.abs(want - got) <= want / 256 + 0.6e-6
end

describe("histogram", function()
  it("has buckets exact below 256 us and < 1/128 wide above", function()
    for us = 0, 255 do assert.same({us, 1}, {histogram.bucket(us)}) end
    for _, us in ipairs{256, 257, 1000, 12345, 999999, 3600000000} do
      local lo, w = histogram.bucket(us)
      assert.is_true(lo <= us and us < lo + w)
      assert.is_true(w <= lo / 128, us)
      assert.same({lo, w}, {histogram.bucket(lo)})   -- lo is its own bucket
    end
  end)

  it("finds the bucket by bits, around every power of two too", function()
    -- the definition: keep the top 8 bits of the value
    local function ref(us)
      local n, v = 0, us
      while v > 0 do v = v >> 1 n = n + 1 end
      if n <= 8 then return us, 1 end
      return (us >> (n - 8)) << (n - 8), 1 << (n - 8)
    end
    for k = 0, 50 do
      for d = -3, 3 do
        local v = (1 << k) + d
        if v >= 0 then assert.same({ref(v)}, {histogram.bucket(v)}, v) end
      end
    end
    math.randomseed(3)
    for _ = 1, 20000 do
      local v = math.random(0, 1 << math.random(1, 45))
      assert.same({ref(v)}, {histogram.bucket(v)}, v)
    end
  end)

  it("gives each percentile within 0.4 % of the exact one", function()
    local s = samples(20000, 1)
    local h = histogram.new()
    for _, v in ipairs(s) do h:add(v) end
    table.sort(s)
    for _, p in ipairs(PS) do
      local want, got = exact(s, p), h:percentile(p)
      assert.is_true(close(want, got), ("p%g: %.9f vs %.9f"):format(p * 100,
        want, got))
    end
    assert.equal(0, histogram.new():percentile(0.5))
  end)

  it("merges into exactly the histogram of all the samples", function()
    local s = samples(9000, 2)
    local whole, parts = histogram.new(), {histogram.new(), histogram.new(),
      histogram.new()}
    for i, v in ipairs(s) do
      whole:add(v)
      parts[i % 3 + 1]:add(v)
    end
    local merged = histogram.new()
    for _, p in ipairs(parts) do
      -- through JSON, as the lines from three hosts would come
      merged:merge(assert(histogram.decode(json.decode(
        json.encode(p:encode())))))
    end
    assert.same(whole:encode(), merged:encode())
    table.sort(s)
    for _, p in ipairs(PS) do
      assert.is_true(close(exact(s, p), merged:percentile(p)), p)
    end
  end)

  it("refuses a histogram it cannot read", function()
    local good = histogram.new()
    good:add(0.001)
    local t = good:encode()
    local cases = {
      {nil, "no histogram"},
      {{unit = "ms", sig_bits = 8, buckets = {}}, "histogram of unit ms"},
      {{unit = "us", sig_bits = 7, buckets = {}}, "with 7 significant bits"},
      {{unit = "us", sig_bits = 8}, "without buckets"},
      {{unit = "us", sig_bits = 8, buckets = {{257, 1}}}, "bucket 1 is not"},
      {{unit = "us", sig_bits = 8, buckets = {{1, -1}}}, "bucket 1 is not"},
      {{unit = "us", sig_bits = 8, buckets = {"x"}}, "bucket 1 is not"},
      {{unit = "us", sig_bits = 8, count = 2, buckets = t.buckets},
        "count 2 is not the sum of its buckets %(1%)"},
    }
    for _, c in ipairs(cases) do
      local h, err = histogram.decode(c[1])
      assert.is_nil(h)
      assert.matches(c[2], err)
    end
  end)
end)

local function run(cmd, input)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(input or "")
  f:close()
  local p = assert(io.popen(cmd .. " < " .. tmp .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  os.remove(tmp)
  return out, code
end

-- one http_bench --json line for these samples, as host `host` writes it
local function bench_line(host, s, failed)
  local h = histogram.new()
  local sorted = {}
  for i, v in ipairs(s) do h:add(v) sorted[i] = v end
  table.sort(sorted)
  local out = jsonl.new("http_bench", {"region=r" .. host})
  local r = {requests = #s + failed, failed = failed, seconds = 2,
    rps = (#s + failed) / 2, concurrency = 4, min = sorted[1],
    max = sorted[#sorted], p50 = exact(sorted, 0.5),
    p90 = exact(sorted, 0.9), p99 = exact(sorted, 0.99),
    statuses = {["200"] = #s}, errors = failed > 0 and {timeout = failed}
      or {}, histogram = h:encode()}
  local line = out:line("http://svc/", failed == 0, nil, r)
  return (line:gsub('"host":"[^"]*"', '"host":"h' .. host .. '"'))
end

describe("http_bench --merge", function()
  local all, lines = {}, {}
  for host = 1, 4 do
    local s = samples(2500, 10 + host)
    for _, v in ipairs(s) do all[#all + 1] = v end
    -- parallel --tag puts the host name in front: skipped
    lines[host] = "h" .. host .. "\t"
      .. bench_line(host, s, host == 3 and 5 or 0)
  end
  table.sort(all)
  local input = table.concat(lines, "\n") .. "\n"

  it("recomputes totals and percentiles from many hosts' lines", function()
    local out, code = run(NETSH .. " -m http_bench --merge --json", input)
    assert.equal(1, code, out)          -- host 3 had 5 failures
    local r = json.decode(out)
    assert.equal("http_bench", r.tool)
    assert.equal("http://svc/", r.target)
    assert.is_false(r.ok)
    assert.equal("5 of 10005 requests failed", r.err)
    assert.equal(4, r.merged)
    assert.same({"h1", "h2", "h3", "h4"}, r.hosts)
    assert.equal(10005, r.requests)
    assert.equal(5, r.failed)
    assert.equal(10000, r.statuses["200"])
    assert.equal(5, r.errors.timeout)
    assert.equal(10000, r.histogram.count)
    assert.equal(all[#all], r.max)
    assert.equal(all[1], r.min)
    assert.equal(16, r.concurrency)
    for _, k in ipairs{"p50", "p90", "p99"} do
      local p = tonumber(k:sub(2)) / 100
      assert.is_true(close(exact(all, p), r[k]),
        ("%s: %.9f vs %.9f"):format(k, exact(all, p), r[k]))
    end
    -- and from FILE arguments, the same numbers
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "w"))
    f:write(input)
    f:close()
    local out2 = run(NETSH .. " -m http_bench --merge --json " .. tmp
      .. " /dev/null")
    os.remove(tmp)
    local r2 = json.decode(out2)
    assert.same({r.p50, r.p90, r.p99, r.requests},
      {r2.p50, r2.p90, r2.p99, r2.requests})
  end)

  it("turns --threshold into the exit code", function()
    local ok_lines = lines[1] .. "\n" .. lines[2] .. "\n"
    local p99 = exact(all, 0.99)
    local out, code = run(NETSH .. " -m http_bench --merge --threshold "
      .. "'p99<10s' --threshold 'rps>=1' --threshold 'p50 <= 5s'", ok_lines)
    assert.equal(0, code, out)
    assert.matches("pass     p99<10s", out, 1, true)
    out, code = run(NETSH .. " -m http_bench --merge --json "
      .. "--threshold 'p99<1ms'", ok_lines)
    assert.equal(1, code, out)
    local r = json.decode(out)
    assert.is_false(r.ok)
    assert.matches("^threshold p99<1ms failed: p99 is [%d.]+ ms$", r.err)
    assert.is_false(r.thresholds[1].pass)
    assert.is_true(p99 > 0.001)
    out, code = run(NETSH .. " -m http_bench --merge --nagios "
      .. "--threshold 'p99<1ms'", ok_lines)
    assert.equal(2, code, out)
    assert.matches("^HTTP_BENCH CRITICAL: threshold p99<1ms failed", out)
    assert.matches(" | rps=[%d.]+;;;0 p50=[%d.]+s;;;0 ", out)
  end)

  it("says which line it cannot read, exit 2", function()
    local cases = {
      {"garbage\n", "stdin line 1: not a JSON line"},
      {"{\"v\":1,\"tool\":\"dns\"}\n", "not an http_bench line %(tool dns%)"},
      {lines[1] .. "\n{oops\n", "stdin line 2: json.decode"},
      {"{\"tool\":\"http_bench\"}\n", "stdin line 1: no histogram"},
      {"\n\n", "no http_bench line read"},
    }
    for _, c in ipairs(cases) do
      local out, code = run(NETSH .. " -m http_bench --merge", c[1])
      assert.equal(2, code, out)
      assert.matches(c[2], out)
    end
    local out, code = run(NETSH .. " -m http_bench --merge --nagios", "x\n")
    assert.equal(3, code)
    assert.matches("HTTP_BENCH UNKNOWN: stdin line 1: not a JSON line\n",
      out, 1, true)
  end)

  it("rejects bad --threshold expressions", function()
    for _, c in ipairs{
        {"p99<200", "give the time's unit"},
        {"p99=200ms", "bad %-%-threshold"},
        {"speed>3", "unknown metric 'speed'"},
        {"rps>3ms", "rps takes no unit"},
        {"p0<1s", "percentile out of range"}} do
      local out, code = run(NETSH .. " -m http_bench --merge --threshold '"
        .. c[1] .. "'", lines[1])
      assert.equal(2, code, out)
      assert.matches(c[2], out)
    end
  end)
end)
