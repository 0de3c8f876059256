"""The HTTP edge: middleware, problem answers, shared dependencies and route helpers."""

API_PREFIX = "/api/v1"
