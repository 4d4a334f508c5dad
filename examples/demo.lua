-- demo.lua -- what `./setup.sh` runs: the seed's TCP and UDP examples,
-- servers and clients in one process, one thread, several tasks.
-- run: netsh examples/demo.lua
local here = (arg and arg[0] or ""):match("^(.*)/") or "examples"

local function run(file)
  return spawn{name = file, function() dofile(here .. "/" .. file) end}
end
local function finished(t)      -- join, and fail loudly if the task did
  local _, err = t:join()
  if t:status() ~= "done" then error(err, 0) end
end

print("== TCP: examples/tcp_server.lua and examples/tcp_client.lua")
local server = run("tcp_server.lua")
task.yield()                    -- let the server bind before the client
dofile(here .. "/tcp_client.lua")
finished(server)

print("== UDP: examples/udp_server.lua and examples/udp_client.lua")
server = run("udp_server.lua")
task.yield()
dofile(here .. "/udp_client.lua")
finished(server)

print("== three tasks sleeping at once")
local t1 = task.now()
local function worker(name, delay)
  sleep(delay)
  return ("%s after %.2fs"):format(name, task.now() - t1)
end
local a, b, c = spawn(worker, "slow", 0.2), spawn(worker, "fast", 0.1),
  spawn(worker, "medium", 0.15)
print(a:join()) print(b:join()) print(c:join())
print(("total %.2fs for 0.45s of sleeping: the waits overlapped")
  :format(task.now() - t1))
