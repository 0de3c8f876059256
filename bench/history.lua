-- The newest 50 messages of a random conversation from CONVERSATIONS ("token cid" lines),
-- as a reload does; BENCH_TARGET=floor asks the yardstick's /history.
dofile(os.getenv("BENCH_DIR") .. "/clients.lua")
local pairs_ = {}
for line in io.lines(os.getenv("CONVERSATIONS")) do
  local token, cid = line:match("(%S+) (%S+)")
  pairs_[#pairs_ + 1] = { token, cid }
end
local floor = os.getenv("BENCH_TARGET") == "floor"
math.randomseed(os.time())

request = function()
  local pick = pairs_[math.random(#pairs_)]
  local headers = { ["X-Session-ID"] = pick[1], ["X-Forwarded-For"] = forwarded_for() }
  if floor then
    headers["X-Conversation-ID"] = pick[2]
    return wrk.format("GET", "/history", headers, nil)
  end
  return wrk.format(
    "GET", "/api/v1/session/conversations/" .. pick[2] .. "/messages?limit=50", headers, nil)
end
