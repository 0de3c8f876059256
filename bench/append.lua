-- One message per request to a random conversation from CONVERSATIONS ("token cid" lines),
-- from many clients behind a trusted proxy (clients.lua). BENCH_TARGET=floor sends the
-- same to the yardstick's /append (the conversation in a header).
dofile(os.getenv("BENCH_DIR") .. "/clients.lua")
local pairs_ = {}
for line in io.lines(os.getenv("CONVERSATIONS")) do
  local token, cid = line:match("(%S+) (%S+)")
  pairs_[#pairs_ + 1] = { token, cid }
end
local floor = os.getenv("BENCH_TARGET") == "floor"
math.randomseed(os.time())
local counter = 0

request = function()
  local pick = pairs_[math.random(#pairs_)]
  counter = counter + 1
  local body = string.format(
    '{"content": "Please check page %d of the report.", "client_message_id": "b-%d-%d"}',
    counter, os.time(), counter)
  local headers = {
    ["X-Session-ID"] = pick[1],
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = forwarded_for(),
  }
  if floor then
    headers["X-Conversation-ID"] = pick[2]
    return wrk.format("POST", "/append", headers, body)
  end
  return wrk.format("POST", "/api/v1/session/conversations/" .. pick[2] .. "/messages", headers, body)
end
