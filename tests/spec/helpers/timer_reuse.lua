-- timer_reuse.lua -- run by timers_spec in its own netsh: a timed wait
-- woken early, its timer firing while the task is not waiting, then a
-- sleep with nothing else keeping the loop up; prints "ok"
local socket = require "socket"
local s = assert(socket.bind("127.0.0.1", 0))
local _, port = s:getsockname()
local c = assert(socket.connect("127.0.0.1", port))
local p = assert(s:accept())
c:settimeout(0.05)
p:send("x")
assert(c:receive(1))              -- a timed wait, woken early
local t0 = socket.gettime()
while socket.gettime() - t0 < 0.08 do end
coroutine.yield()                 -- the old timer fires meanwhile
c:close() p:close() s:close()     -- nothing else keeps the loop up
task.sleep(0.01)
print("ok")
