"""HTTP layer: routers, shared dependencies and OpenAPI helpers."""

API_PREFIX = "/api/v1"
