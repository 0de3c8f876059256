"""One alert per distinct error per window across every instance, agreed in Redis.

Each instance already sends at most one message per key per window; with several
instances behind one load balancer, the same error reached the admin once per instance.
Before sending, an instance claims the key in Redis (`SET NX PX window`): only the first
claim in a window sends. Keys are stored hashed (an alert key can name a path). When Redis
cannot answer, the instance sends: a duplicate beats a lost alert.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

from session_service.core.redis import SENTINEL_SCHEME, sentinel_parts

KEY_PREFIX = "session-service:alert:"


class RedisClaims:
    """Claims alert keys in Redis (a plain server or one found through Sentinel)."""

    def __init__(self, uri: str, *, timeout: float) -> None:
        self.client = _client(uri, timeout=timeout)

    async def __call__(self, key: str, window: timedelta) -> bool:
        name = KEY_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32]
        milliseconds = max(1, int(window.total_seconds() * 1000))
        return bool(await self.client.set(name, "1", nx=True, px=milliseconds))

    async def aclose(self) -> None:
        await self.client.aclose()


def _client(uri: str, *, timeout: float) -> Any:
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if uri.startswith(SENTINEL_SCHEME):
        hosts, service, db = sentinel_parts(uri)
        sentinel = Sentinel(hosts, sentinel_kwargs=options, **options)  # type: ignore[no-untyped-call]
        return sentinel.master_for(service, db=db)
    return aioredis.from_url(uri, **options)
