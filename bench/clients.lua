-- Many clients behind one proxy: X-Forwarded-For rotates over BENCH_CLIENTS addresses
-- (198.18.0.0/15, the benchmarking range), so each stays within its rate limits.
local clients = tonumber(os.getenv("BENCH_CLIENTS") or "10000")
local next_client = 0

function forwarded_for()
  next_client = (next_client + 1) % clients
  return string.format("198.18.%d.%d", math.floor(next_client / 256), next_client % 256)
end
