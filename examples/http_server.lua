-- http_server.lua -- a small JSON API and a client calling it, in one
-- script: http.server with a router (GET/POST, one path parameter), and
-- netsh's http client as the caller. Python's equivalents (http.server,
-- Flask) are in examples/README.md.
--
--   netsh examples/http_server.lua            # runs the demo, then exits
--   netsh examples/http_server.lua --serve    # keeps serving on :8080
--   curl -s localhost:8080/notes/1
local notes, next_id = {}, 1

local r = http.router()
r:get("/notes", function(req)
  local list = {}
  for id, n in pairs(notes) do list[#list + 1] = {id = id, text = n.text} end
  table.sort(list, function(a, b) return a.id < b.id end)
  return {json = json.array(list)}
end)
r:post("/notes", function(req)
  local body, err = req:json()
  if type(body) ~= "table" or type(body.text) ~= "string" then
    return {status = 400, json = {error = err or "text expected"}}
  end
  local id = next_id
  next_id = next_id + 1
  notes[id] = {text = body.text}
  return {status = 201, headers = {Location = "/notes/" .. id},
    json = {id = id, text = body.text}}
end)
r:get("/notes/:id", function(req, params)
  local note = notes[tonumber(params.id)]
  if not note then return {status = 404, json = {error = "no such note"}} end
  return {json = {id = tonumber(params.id), text = note.text}}
end)

local serve_forever = arg[1] == "--serve"
local srv = assert(http.server{port = serve_forever and 8080 or 0,
  handler = r})
local base = "http://127.0.0.1:" .. srv.port
if serve_forever then
  print("serving on " .. base)
  return srv:serve()
end

local server = spawn(function() srv:serve() end)

-- the client, in the same process: each call parks only its task
local res = assert(http.post(base .. "/notes", {json = {text = "buy milk"}}))
print(res.status, res.headers["location"], res.body)
res = assert(http.post(base .. "/notes", {json = {text = "call Bob"}}))
print(res.status, res.body)
res = assert(http.get(base .. "/notes/1"))
print(res.status, res:json().text)
res = assert(http.get(base .. "/notes"))
print(res.status, res.body)
res = assert(http.get(base .. "/notes/42"))
print(res.status, res.body)
res = assert(http.post(base .. "/notes", {body = "not json"}))
print(res.status)

srv:close()
server:join()
