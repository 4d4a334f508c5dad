-- shard_spec.lua -- --shard I/N (lua/netsh/shard.lua): every target in
-- exactly one of N copies, the same split on every run and machine, few
-- moves when N grows, the environment's sources (NETSH_SHARD, Kubernetes'
-- JOB_COMPLETION_INDEX + NETSH_SHARDS), clear errors; and N real copies
-- of wait_for, dns and http_check splitting a list between them.
local shard = require "netsh.shard"

local SRC = os.getenv("NETSH_SRC") or "."
local NETSH = os.getenv("NETSH") or (SRC .. "/build/netsh")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function targets(n, fmt)
  local t = {}
  for i = 1, n do t[i] = (fmt or "host%d.example:443"):format(i) end
  return t
end

describe("shard.index", function()
  it("puts every target in exactly one of N shards, N = 1 to 9", function()
    local list = targets(1000)
    for n = 1, 9 do
      local count = {}
      for _, t in ipairs(list) do
        local owners = 0
        for i = 0, n - 1 do
          local s = assert(shard.resolve(i .. "/" .. n, function() end))
          if s:mine(t) then owners = owners + 1 end
        end
        assert.equal(1, owners)
        local i = shard.index(t, n)
        count[i] = (count[i] or 0) + 1
      end
      -- even on average: each share within 30 % of 1000 / n
      for i = 0, n - 1 do
        assert.is_true(math.abs((count[i] or 0) - 1000 / n) < 300 / n,
          ("N=%d shard %d has %d"):format(n, i, count[i] or 0))
      end
    end
  end)

  it("is the same on every run and machine (pinned values)", function()
    -- if these change, running copies of two netsh versions disagree
    assert.equal(3, shard.index("a", 4))
    assert.equal(2, shard.index("http://a/", 4))
    assert.equal(0, shard.index("db:5432", 4))
    assert.equal(8, shard.index("db:5432", 10))
    assert.equal(0, shard.index("anything", 1))
  end)

  it("moves only the targets the new shard takes when N grows", function()
    local list = targets(2000)
    for n = 1, 8 do
      local moved = 0
      for _, t in ipairs(list) do
        local a, b = shard.index(t, n), shard.index(t, n + 1)
        if a ~= b then
          moved = moved + 1
          assert.equal(n, b)     -- only ever to the new shard
        end
      end
      -- about 1/(n+1) of them
      assert.is_true(math.abs(moved - 2000 / (n + 1)) < 600 / (n + 1),
        ("%d -> %d moved %d"):format(n, n + 1, moved))
    end
  end)

  it("does not depend on the other targets or their order", function()
    local a = shard.index("x.example:443", 5)
    local sh = assert(shard.resolve("" .. a .. "/5", function() end))
    assert.is_true(sh:mine("x.example:443"))
    local list = targets(50)
    local before = shard.filter(list, sh)
    table.insert(list, 1, "new.example:443")     -- one more, in front
    local after = shard.filter(list, sh)
    for _, t in ipairs(before) do
      local found = false
      for _, u in ipairs(after) do found = found or u == t end
      assert.is_true(found, t)
    end
  end)
end)

describe("shard.resolve", function()
  local function env(t) return function(k) return t[k] end end

  it("takes --shard, then NETSH_SHARD, then JOB_COMPLETION_INDEX", function()
    local s = assert(shard.resolve("1/3", env{NETSH_SHARD = "2/3"}))
    assert.same({1, 3}, {s.index, s.count})
    s = assert(shard.resolve(nil, env{NETSH_SHARD = "2/3",
      JOB_COMPLETION_INDEX = "0", NETSH_SHARDS = "3"}))
    assert.same({2, 3}, {s.index, s.count})
    s = assert(shard.resolve(nil, env{JOB_COMPLETION_INDEX = "4",
      NETSH_SHARDS = "5"}))
    assert.same({4, 5}, {s.index, s.count})
    assert.equal("4/5", tostring(s))
  end)

  it("is off without any of them, or with only JOB_COMPLETION_INDEX",
     function()
    assert.is_false(shard.resolve(nil, env{}))
    assert.is_false(shard.resolve(nil, env{JOB_COMPLETION_INDEX = "3"}))
  end)

  it("names the source and the mistake of a bad value", function()
    local cases = {
      {"3/3", nil, "%-%-shard '3/3': shard index 3 is out of range 0..2 "
        .. "%(the first of 3 shards is 0/3%)"},
      {"1/0", nil, "number of shards must be an integer >= 1"},
      {"a/2", nil, "shard index must be an integer from 0 to 1"},
      {"-1/2", nil, "shard index must be an integer"},
      {"1.5/2", nil, "shard index must be an integer"},
      {"2", nil, "expected I/N, e.g. 0/4"},
      {"1/2/3", nil, "expected I/N"},
      {"0/9999999", nil, "at most 1000000 shards"},
      {nil, {NETSH_SHARD = "x"}, "NETSH_SHARD 'x': expected I/N"},
      {nil, {NETSH_SHARDS = "3"}, "NETSH_SHARDS is set but "
        .. "JOB_COMPLETION_INDEX is not"},
      {nil, {NETSH_SHARDS = "3", JOB_COMPLETION_INDEX = "3"},
        "JOB_COMPLETION_INDEX '3' with NETSH_SHARDS '3': shard index 3 is "
        .. "out of range"},
      {nil, {NETSH_SHARDS = "zero", JOB_COMPLETION_INDEX = "0"},
        "NETSH_SHARDS 'zero': the number of shards must be"},
    }
    for _, c in ipairs(cases) do
      local s, err = shard.resolve(c[1], env(c[2] or {}))
      assert.is_nil(s)
      assert.matches(c[3], err)
    end
  end)
end)

-- N copies of a script over one list: the targets they report, each once
local function run_copies(n, cmd, how)
  local seen, runs = {}, {}
  for i = 0, n - 1 do
    local prefix = how == "env" and ("export NETSH_SHARD=%d/%d; "):format(i, n)
      or how == "k8s" and ("export JOB_COMPLETION_INDEX=%d NETSH_SHARDS=%d; ")
        :format(i, n) or ""
    local flag = how == "flag" and (" --shard %d/%d"):format(i, n) or ""
    local out, code = sh(prefix .. cmd .. flag)
    assert.is_true(code == 0 or code == 1, out)
    runs[i] = {}
    for line in out:gmatch("[^\n]+") do
      if line:sub(1, 1) == "{" then
        local r = json.decode(line)
        assert.is_nil(seen[r.target], r.target .. " twice")
        seen[r.target] = i
        runs[i][#runs[i] + 1] = r.target
      end
    end
  end
  return seen, runs
end

describe("N copies of a script", function()
  -- refused at once: every target gets its line quickly
  local list = {}
  for p = 1, 24 do list[#list + 1] = "127.0.0.1:" .. p end
  local wait_for = NETSH .. " -m wait_for --json -t 0 "
    .. table.concat(list, " ")

  for _, how in ipairs{"flag", "env", "k8s"} do
    it("cover each target exactly once (" .. how .. ")", function()
      local seen = run_copies(3, wait_for, how)
      for _, t in ipairs(list) do
        assert.is_not_nil(seen[t], t .. " missed")
        assert.equal(shard.index(t, 3), seen[t])
      end
    end)
  end

  it("split the same way on every run", function()
    local _, a = run_copies(4, wait_for, "flag")
    local _, b = run_copies(4, wait_for, "flag")
    for i = 0, 3 do
      table.sort(a[i]) table.sort(b[i])
      assert.same(a[i], b[i])
    end
  end)

  it("split dns names and http_check URLs from stdin too", function()
    local names = {}
    for i = 1, 12 do names[i] = "n" .. i .. ".invalid" end
    local seen = run_copies(3, "printf '" .. table.concat(names, "\\n")
      .. "\\n' | " .. NETSH .. " -m dns --json --type A --timeout 2", "flag")
    for _, t in ipairs(names) do assert.is_not_nil(seen[t], t) end
    local urls = {}
    for i = 1, 12 do urls[i] = "http://127.0.0.1:1/u" .. i end
    seen = run_copies(3, "printf '" .. table.concat(urls, "\\n") .. "\\n' | "
      .. NETSH .. " -m http_check --json --timeout 2", "env")
    for _, t in ipairs(urls) do assert.is_not_nil(seen[t], t) end
  end)

  it("exit 0 with an empty share, 2 on a bad --shard", function()
    -- one target: some of 8 shards get nothing to do
    local empty = 0
    for i = 0, 7 do
      local out, code = sh(NETSH .. " -m http_check --shard " .. i
        .. "/8 http://127.0.0.1:1/")
      if out:find("none of the 1 URLs", 1, true) then
        empty = empty + 1
        assert.equal(0, code)
      else
        assert.equal(1, code)
      end
    end
    assert.equal(7, empty)
    for _, s in ipairs{"tls_expiry", "wait_for", "port_scan -p 1",
        "dns", "http_check"} do
      local out, code = sh(NETSH .. " -m " .. s .. " --shard 2/2 127.0.0.1:1")
      assert.equal(2, code, s)
      assert.matches("shard index 2 is out of range 0..1", out, 1, true)
    end
    local out, code = sh("NETSH_SHARDS=2 " .. NETSH
      .. " -m wait_for 127.0.0.1:1")
    assert.equal(2, code)
    assert.matches("JOB_COMPLETION_INDEX is not", out, 1, true)
  end)
end)
