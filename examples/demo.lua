-- demo.lua -- what `./setup.sh` runs: a few tasks sharing one thread.
-- run: netsh examples/demo.lua
local t0 = task.now()
local function worker(name, delay)
  sleep(delay)
  io.write(("%-7s finished after %.2fs\n"):format(name, task.now() - t0))
  return name
end
local a = spawn(worker, "slow", 0.2)
local b = spawn(worker, "fast", 0.1)
local c = spawn(worker, "medium", 0.15)
print("all three joined:", a:join(), b:join(), c:join())
print(("total %.2fs: the waits overlapped"):format(task.now() - t0))
