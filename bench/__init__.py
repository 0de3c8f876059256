"""`make bench`: throughput and latency of the hot routes under wrk."""
