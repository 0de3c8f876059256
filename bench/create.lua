-- POST /api/v1/sessions with no body: a server-generated id each time, from many
-- clients behind a trusted proxy (clients.lua).
dofile(os.getenv("BENCH_DIR") .. "/clients.lua")

request = function()
  return wrk.format("POST", nil, { ["X-Forwarded-For"] = forwarded_for() }, nil)
end
