-- POST /api/v1/session/uploads for a random session from SESSION_IDS: one upload slot each,
-- from many clients behind a trusted proxy (clients.lua).
dofile(os.getenv("BENCH_DIR") .. "/clients.lua")
local ids = {}
for line in io.lines(os.getenv("SESSION_IDS")) do
  ids[#ids + 1] = line
end
math.randomseed(os.time())
local body = '{"name": "report.pdf", "content_type": "application/pdf", "size": 100000}'

request = function()
  local headers = {
    ["X-Session-ID"] = ids[math.random(#ids)],
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = forwarded_for(),
  }
  return wrk.format("POST", nil, headers, body)
end
