-- proc_spec.lua -- child processes on the loop: output, exit codes,
-- signals, timeouts, kill on cancel, stdin, large output on both pipes,
-- many children at once, env and cwd, spawn's streams, and neither a
-- zombie nor a descriptor left behind.
local proc = require "proc"

local function mypid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = tonumber(f:read("a"):match("^(%d+)"))
  f:close()
  return pid
end
local PID = mypid()
local FDS0                         -- descriptors open at the first test

-- pids of our children, zombies included (the kernel's list)
local function children()
  local f = assert(io.open(("/proc/%d/task/%d/children"):format(PID, PID)))
  local s = f:read("a")
  f:close()
  local t = {}
  for p in s:gmatch("%d+") do t[#t + 1] = tonumber(p) end
  return t
end

-- our open descriptors (/proc/self/fdinfo/N exists for each; opening it
-- is safe for any kind of descriptor, unlike /proc/self/fd/N)
local function nfds()
  collectgarbage()
  collectgarbage()
  local n = 0
  for fd = 0, 4095 do
    local f = io.open("/proc/self/fdinfo/" .. fd)
    if f then
      n = n + 1
      f:close()
    end
  end
  return n
end

-- true once /proc has no process pid (reaped), within limit seconds
local function gone(pid, limit)
  local t0 = task.now()
  repeat
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return true end
    f:close()
    sleep(0.01)
  until task.now() - t0 > limit
  return false
end

local function tmpname()
  return os.tmpname()
end

local function read_file(path, limit)
  local t0 = task.now()
  repeat
    local f = io.open(path)
    if f then
      local s = f:read("a")
      f:close()
      if s ~= "" then return s end
    end
    sleep(0.01)
  until task.now() - t0 > (limit or 5)
end

describe("proc.run", function()
  it("captures stdout and stderr apart, with the exit code", function()
    local r = assert(proc.run("echo", {"hello", "world"}))
    FDS0 = nfds()                  -- after libuv's first SIGCHLD set-up
    assert.equal(0, r.status)
    assert.is_nil(r.signal)
    assert.equal("hello world\n", r.stdout)
    assert.equal("", r.stderr)
    assert.is_true(r.pid > 0)
    r = assert(proc.sh("echo out; echo err >&2; exit 3"))
    assert.equal(3, r.status)
    assert.equal("out\n", r.stdout)
    assert.equal("err\n", r.stderr)
  end)

  it("accepts numbers as arguments and (cmd, opts) without args", function()
    local r = assert(proc.run("echo", {1, 2.5}))
    assert.equal("1 2.5\n", r.stdout)
    r = assert(proc.run("pwd", {cwd = "/"}))
    assert.equal("/\n", r.stdout)
  end)

  it("says why a command cannot start", function()
    local r, err = proc.run("netsh-no-such-command-here")
    assert.is_nil(r)
    assert.equal("no such file or directory", err)
    r, err = proc.run("/etc/passwd")
    assert.is_nil(r)
    assert.equal("permission denied", err)
    r, err = proc.run("ls", nil, {cwd = "/netsh-no-such-dir"})
    assert.is_nil(r)
    assert.equal("no such file or directory", err)
  end)

  it("reports a signal as 128 + n, and the signal", function()
    local r = assert(proc.sh("kill -TERM $$"))
    assert.equal(143, r.status)
    assert.equal(15, r.signal)
  end)

  it("feeds stdin, and a child that reads nothing gets EOF", function()
    local r = assert(proc.run("cat", nil, {stdin = "one\ntwo\n"}))
    assert.equal("one\ntwo\n", r.stdout)
    r = assert(proc.run("cat"))            -- /dev/null
    assert.equal("", r.stdout)
    assert.equal(0, r.status)
    r = assert(proc.run("cat", nil, {stdin = ""}))
    assert.equal("", r.stdout)
    -- a child that exits without reading its input: no error, no hang
    r = assert(proc.run("true", nil, {stdin = ("x"):rep(4 << 20)}))
    assert.equal(0, r.status)
  end)

  it("moves megabytes through stdin, stdout and stderr at once", function()
    local big = ("0123456789abcdef"):rep(1 << 18)   -- 4 MiB
    local r = assert(proc.sh("tee /dev/stderr", {stdin = big}))
    assert.equal(0, r.status)
    assert.equal(#big, #r.stdout)
    assert.equal(#big, #r.stderr)
    assert.is_true(r.stdout == big and r.stderr == big)
    r = assert(proc.sh(
      "head -c 6000000 /dev/zero; head -c 5000000 /dev/zero >&2"))
    assert.equal(6000000, #r.stdout)
    assert.equal(5000000, #r.stderr)
  end)

  it("stderr = 'stdout' merges, 'null' drops, 'inherit' passes", function()
    local r = assert(proc.sh("echo a; echo b >&2; echo c",
                             {stderr = "stdout"}))
    assert.equal("a\nb\nc\n", r.stdout)
    assert.equal("", r.stderr)
    r = assert(proc.sh("echo a; echo b >&2", {stdout = "null"}))
    assert.equal("", r.stdout)
    assert.equal("b\n", r.stderr)
  end)

  it("times out: the child is killed and reaped, partial output kept",
    function()
    local t0 = task.now()
    local r, err, partial = proc.sh("echo started; exec sleep 30",
                                    {timeout = 0.3})
    local took = task.now() - t0
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.equal("started\n", partial.stdout)
    assert.equal(9, partial.signal)
    assert.equal(137, partial.status)
    assert.is_true(took >= 0.29 and took < 3, "took " .. took)
    assert.is_true(gone(partial.pid, 0))    -- reaped before run returned
  end)

  it("does not block other tasks while a child runs", function()
    local ticks = 0
    local ticker = spawn(function()
      while true do sleep(0.01) ticks = ticks + 1 end
    end)
    local r = assert(proc.run("sleep", {"0.3"}))
    ticker:cancel()
    assert.equal(0, r.status)
    assert.is_true(ticks >= 10, "only " .. ticks .. " ticks")
  end)

  it("kills and reaps the child of a cancelled task", function()
    local f = tmpname()
    local h = spawn(function()
      return proc.sh("echo $$ > " .. f .. "; exec sleep 30")
    end)
    local pid = tonumber(read_file(f))
    os.remove(f)
    assert.is_truthy(pid)
    h:cancel()
    assert.equal("cancelled", h:status())
    assert.is_true(gone(pid, 3), "child " .. pid .. " still there")
  end)

  it("kills the child when a task.timeout scope expires", function()
    local f = tmpname()
    local pid
    local r, err = task.timeout(0.5, function()
      spawn(function() pid = tonumber(read_file(f)) end)
      return proc.sh("echo $$ > " .. f .. "; exec sleep 30")
    end)
    os.remove(f)
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.is_truthy(pid)
    assert.is_true(gone(pid, 3), "child " .. pid .. " still there")
  end)

  it("passes env (added, replaced, removed) and cwd", function()
    local r = assert(proc.sh("echo \"$NETSH_T1-${HOME-unset}-$PWD\"",
      {env = {NETSH_T1 = "x y", HOME = false}, cwd = "/tmp"}))
    assert.equal("x y-unset-/tmp\n", r.stdout)
    r = assert(proc.run("/usr/bin/env", nil, {clearenv = true,
                                              env = {A = 1}}))
    assert.equal("A=1\n", r.stdout)
    -- netsh's environment is passed by default
    r = assert(proc.sh("echo $PATH"))
    assert.equal(os.getenv("PATH") .. "\n", r.stdout)
  end)

  it("runs 200 children at once", function()
    local hs = {}
    for i = 1, 200 do
      hs[i] = spawn(function()
        return proc.run("sh", {"-c", "echo $0; exit $(($0 % 7))", i})
      end)
    end
    for i = 1, 200 do
      local r = assert(hs[i]:join())
      assert.equal(i .. "\n", r.stdout)
      assert.equal(i % 7, r.status)
    end
  end)

  it("leaves os.execute and io.popen their own children's status",
    function()
    assert(proc.run("true"))             -- libuv's SIGCHLD handler is on
    assert.same({nil, "exit", 3}, {os.execute("exit 3")})
    local f = assert(io.popen("echo hi; exit 5"))
    assert.equal("hi\n", f:read("a"))
    assert.same({nil, "exit", 5}, {f:close()})
  end)

  it("raises on bad arguments and options", function()
    assert.error_matches(function() proc.run(nil) end,
      "bad argument #1 to 'run' %(string expected, got nil%)")
    assert.error_matches(function() proc.run("echo", {"a", {}}) end,
      "argument 2 is a table, not a string")
    assert.error_matches(function() proc.run("echo", {"a\0b"}) end,
      "argument 1 holds a NUL byte")
    assert.error_matches(function() proc.run("echo", nil, {stdin = 5}) end,
      "bad option 'stdin' to 'run' %(string expected, got number%)")
    assert.error_matches(function() proc.run("echo", nil, {timeout = -1}) end,
      "bad option 'timeout'")
    assert.error_matches(function() proc.run("echo", nil, {stdout = "x"}) end,
      "bad option 'stdout' to 'run' %(invalid mode 'x'%)")
    assert.error_matches(function()
      proc.run("echo", nil, {env = {["A=B"] = "1"}})
    end, "bad option 'env'")
    assert.error_matches(function()
      proc.spawn("cat", nil, {stdout = "capture"})
    end, "bad option 'stdout' to 'spawn' %(invalid mode 'capture'%)")
  end)
end)

describe("proc.spawn", function()
  it("gives streams: send, lines, receive patterns, close for EOF",
    function()
    local p <close> = assert(proc.spawn("cat"))
    assert.is_true(p.pid > 0)
    assert.truthy(p.stdin:send("one\ntwo\nthree four"))
    local it = p.stdout:lines()
    assert.equal("one", it())
    assert.equal("two", p.stdout:receive("*l"))
    assert.equal("three", p.stdout:receive(5))
    p.stdin:close()
    assert.equal(" four", p.stdout:receive("*a"))
    assert.same({0, nil}, {p:wait()})
    assert.same({0, nil}, {p:exited()})
    assert.same({0, nil}, {p:wait(1)})     -- again: the same answer
  end)

  it("streams are pipes: the child may open /dev/stdout", function()
    local p <close> = assert(proc.spawn("sh", {"-c",
      "echo via-dev > /dev/stdout; echo err > /dev/stderr"}))
    assert.matches("^pipe{client}", tostring(p.stdout))
    assert.equal("pipe{client}", p.stdout.class)
    assert.equal("via-dev\n", p.stdout:receive("*a"))
    assert.equal("err\n", p.stderr:receive("*a"))
    assert.equal(0, p:wait())
  end)

  it("shutdown('send') on stdin ends the child's input", function()
    local p <close> = assert(proc.spawn("cat"))
    assert.truthy(p.stdin:send("abc"))
    assert.equal(1, p.stdin:shutdown("send"))
    assert.equal("abc", p.stdout:receive("*a"))
    assert.equal(0, p:wait())
  end)

  it("a send to a child that has gone gives nil, 'closed'", function()
    local p <close> = assert(proc.spawn("true"))
    assert.equal(0, p:wait())
    local ok, err = p.stdin:send("x")
    assert.is_nil(ok)
    assert.equal("closed", err)
  end)

  it("a child writing to a closed pipe dies of SIGPIPE, as from a shell",
    function()
    local p <close> = assert(proc.spawn("yes"))
    assert.equal("y\ny\n", p.stdout:receive(4))
    p.stdout:close()
    assert.same({141, 13}, {p:wait(5)})
  end)

  it("stdout timeout, wait timeout, then kill", function()
    local p <close> = assert(proc.spawn("sleep", {"30"}))
    assert.is_nil(p:exited())
    p.stdout:settimeout(0.05)
    local data, err = p.stdout:receive("*l")
    assert.is_nil(data)
    assert.equal("timeout", err)
    local s, werr = p:wait(0.05)
    assert.is_nil(s)
    assert.equal("timeout", werr)
    assert.is_true(p:kill("KILL"))
    assert.same({137, 9}, {p:wait()})
    local ok, kerr = p:kill()
    assert.is_nil(ok)
    assert.equal("no such process", kerr)
  end)

  it("reads several megabytes from stdout and stderr in two tasks",
    function()
    local p <close> = assert(proc.spawn("sh", {"-c",
      "head -c 3000000 /dev/zero; head -c 4000000 /dev/zero >&2"}))
    p.stdin:close()
    local e = spawn(function() return #assert(p.stderr:receive("*a")) end)
    local out = assert(p.stdout:receive("*a"))
    assert.equal(3000000, #out)
    assert.equal(4000000, e:join())
    assert.equal(0, p:wait())
  end)

  it("select() sees a child's output", function()
    local p <close> = assert(proc.spawn("sh", {"-c", "sleep 0.1; echo hi"}))
    local r = socket.select({p.stdout, p.stderr}, nil, 2)
    assert.equal(p.stdout, r[1])
    assert.equal("hi", p.stdout:receive())
    assert.equal(0, p:wait())
  end)

  it("several tasks may wait for one process", function()
    local p <close> = assert(proc.spawn("sh", {"-c", "exit 4"},
      {stdin = "null", stdout = "null", stderr = "null"}))
    assert.is_nil(p.stdin)
    local a = spawn(function() return p:wait() end)
    local b = spawn(function() return p:wait(5) end)
    assert.equal(4, a:join())
    assert.equal(4, b:join())
  end)

  it("<close> in a cancelled task kills the child and reaps it", function()
    local pid
    local h = spawn(function()
      local p <close> = assert(proc.spawn("sleep", {"30"}))
      pid = p.pid
      p:wait()
    end)
    sleep(0.05)
    assert.is_truthy(pid)
    h:cancel()
    assert.is_true(gone(pid, 3), "child " .. pid .. " still there")
  end)

  it("a collected process object kills its child", function()
    local pid
    do
      local p = assert(proc.spawn("sleep", {"30"}))
      pid = p.pid
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(gone(pid, 3), "child " .. pid .. " still there")
  end)

  it("stderr = 'stdout' puts both in p.stdout", function()
    local p <close> = assert(proc.spawn("sh", {"-c", "echo a; echo b >&2"},
      {stderr = "stdout"}))
    assert.is_nil(p.stderr)
    assert.equal("a\nb\n", p.stdout:receive("*a"))
    assert.equal(0, p:wait())
  end)

  it("leaves no zombie and no descriptor behind", function()
    local before = nfds()
    for i = 1, 20 do
      assert(proc.run("true"))
      local p = assert(proc.spawn("cat"))
      p.stdin:send("x")
      p.stdin:close()
      assert.equal("x", p.stdout:receive("*a"))
      p:wait()
      p:close()
      assert.is_nil(proc.run("netsh-no-such-command"))
    end
    for _ = 1, 20 do                       -- killed ones too
      local p = assert(proc.spawn("sleep", {"30"}))
      p:close()
    end
    assert(select(3, proc.run("sleep", {"30"}, {timeout = 0.01})))
    local t0 = task.now()
    while #children() > 0 and task.now() - t0 < 3 do sleep(0.01) end
    assert.same({}, children())
    assert.equal(before, nfds())
    assert.equal(FDS0, before)     -- nor did any test before this one
  end)
end)
