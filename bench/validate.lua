-- POST with a random session id from the file named by SESSION_IDS in X-Session-ID.
local ids = {}
local path_to_ids = os.getenv("SESSION_IDS")
for line in io.lines(path_to_ids) do
  ids[#ids + 1] = line
end
math.randomseed(os.time())

request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("POST", nil, { ["X-Session-ID"] = id }, nil)
end
