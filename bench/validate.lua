-- POST with a random session token from the file named by SESSION_IDS in X-Session-ID,
-- from many clients behind a trusted proxy (clients.lua).
dofile(os.getenv("BENCH_DIR") .. "/clients.lua")
local ids = {}
local path_to_ids = os.getenv("SESSION_IDS")
for line in io.lines(path_to_ids) do
  ids[#ids + 1] = line
end
math.randomseed(os.time())

request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("POST", nil, { ["X-Session-ID"] = id, ["X-Forwarded-For"] = forwarded_for() }, nil)
end
