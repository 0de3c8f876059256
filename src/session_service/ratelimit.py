"""Rate limits per client IP and kind of call, counted by the `limits` package.

The limits are slowapi's own objects (`slowapi.wrappers.Limit`, parsed from the same
`10/minute` strings) and a refusal is slowapi's `RateLimitExceeded`. slowapi's `Limiter`
does not count them, though: its checks are synchronous, so with Redis every check
would stall the event loop for a round trip (measured here: about 180 µs of wall time
per call, during which no other request moves). Counting goes through `limits.aio`
instead: the asyncio Redis storage when `RATE_LIMIT_STORAGE_URI` is `redis://...`.
In-process counts use limits' plain memory storage, called directly: it does no I/O.

When Redis stops answering, every kind of call keeps being limited, per instance, in
this process's memory (slowapi's `in_memory_fallback_enabled` behaviour): refusing all
sign-ups because a counter store is down would turn a Redis outage into a service
outage, and letting everything through would leave sign-up abuse unbounded. A
background probe switches back once Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

import structlog
from limits import RateLimitItem, parse_many
from limits import storage as sync_storage
from limits import strategies as sync_strategies
from limits.aio import storage as async_storage
from limits.aio import strategies as async_strategies
from limits.errors import StorageError
from limits.util import WindowStats
from slowapi.errors import RateLimitExceeded
from slowapi.wrappers import Limit

from session_service.settings import Settings

log = structlog.get_logger(__name__)

KEY_PREFIX = "session-service"
UNKNOWN_CLIENT = "unknown"


class CallKind(StrEnum):
    """The kinds of call that are limited, each with its own budget per client IP."""

    CREATE = "create"
    RESET = "reset"
    VALIDATE = "validate"
    UPLOAD = "upload"


class _Counter(Protocol):
    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


# The strategies RATE_LIMIT_STRATEGY names, in both flavours of limits.
_ASYNC_STRATEGIES: dict[str, type[async_strategies.RateLimiter]] = {
    "moving-window": async_strategies.MovingWindowRateLimiter,
    "fixed-window": async_strategies.FixedWindowRateLimiter,
    "sliding-window-counter": async_strategies.SlidingWindowCounterRateLimiter,
}
_SYNC_STRATEGIES: dict[str, type[sync_strategies.RateLimiter]] = {
    "moving-window": sync_strategies.MovingWindowRateLimiter,
    "fixed-window": sync_strategies.FixedWindowRateLimiter,
    "sliding-window-counter": sync_strategies.SlidingWindowCounterRateLimiter,
}


class _InProcess:
    """limits' synchronous strategy over its memory storage, behind the async interface."""

    def __init__(self, strategy: str) -> None:
        self.limiter = _SYNC_STRATEGIES[strategy](sync_storage.MemoryStorage())

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return self.limiter.hit(item, *identifiers, cost=cost)

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        return self.limiter.get_window_stats(item, *identifiers)


class RateLimited(RateLimitExceeded):
    """slowapi's refusal, with the kind of call and the answer's headers."""

    def __init__(self, limit: Limit, *, kind: CallKind, stats: WindowStats) -> None:
        super().__init__(limit)
        self.rule = limit
        self.kind = kind
        now = time.time()
        self.retry_after = max(1, math.ceil(stats.reset_time - now))
        self.headers = {
            "Retry-After": str(self.retry_after),
            "X-RateLimit-Limit": str(limit.limit.amount),
            "X-RateLimit-Remaining": str(max(0, stats.remaining)),
            "X-RateLimit-Reset": str(math.ceil(stats.reset_time)),
        }


def _key_func() -> str:
    # slowapi's Limit wants a key function; the client IP is passed to `check` instead.
    return UNKNOWN_CLIENT


def build_limits(settings: Settings) -> dict[CallKind, tuple[Limit, ...]]:
    """slowapi Limit objects per kind of call, from the `RATE_LIMIT_*` strings."""
    texts = {
        CallKind.CREATE: settings.rate_limit_create,
        CallKind.RESET: settings.rate_limit_reset,
        CallKind.VALIDATE: settings.rate_limit_validate,
        CallKind.UPLOAD: settings.rate_limit_upload,
    }
    return {
        kind: tuple(
            Limit(item, _key_func, kind.value, False, None, None, None, 1, False)
            for item in parse_many(text)
        )
        for kind, text in texts.items()
    }


class RateLimiter:
    """Counts calls per (kind, client IP); shared through Redis when configured."""

    def __init__(self, settings: Settings) -> None:
        self.limits = build_limits(settings)
        self.local: _Counter = _InProcess(settings.rate_limit_strategy)
        self.shared: _Counter | None = None
        self.shared_storage: async_storage.RedisStorage | None = None
        uri = settings.rate_limit_storage_uri
        if not uri.startswith("memory://"):
            timeout = settings.rate_limit_storage_timeout
            self.shared_storage = async_storage.RedisStorage(
                "async+" + uri,
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix=KEY_PREFIX,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            self.shared = _ASYNC_STRATEGIES[settings.rate_limit_strategy](self.shared_storage)
        self.timeout = settings.rate_limit_storage_timeout
        self.retry_interval = settings.rate_limit_retry_interval.total_seconds()
        self.shared_down_since: float | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        """For readiness: where counts go right now."""
        if self.shared is None:
            return "ok: in-process"
        if self.shared_down_since is None:
            return "ok: redis"
        return "degraded: redis unreachable, counting per instance"

    async def start(self) -> None:
        """Say at start-up, not at the first request, that Redis is unreachable."""
        if self.shared_storage is not None and not await self._ping():
            self._shared_failed("unreachable at start-up")

    async def aclose(self) -> None:
        """Stop the recovery probe."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe

    async def check(self, kind: CallKind, client_ip: str | None) -> None:
        """Count one call; raise `RateLimited` (with its headers) when over a limit."""
        identifiers = (kind.value, client_ip or UNKNOWN_CLIENT)
        for limit in self.limits[kind]:
            counter = self._counter()
            allowed, counter = await self._hit(counter, limit.limit, identifiers)
            if not allowed:
                stats = await self._stats(counter, limit.limit, identifiers)
                raise RateLimited(limit, kind=kind, stats=stats)

    def _counter(self) -> _Counter:
        if self.shared is not None and self.shared_down_since is None:
            return self.shared
        return self.local

    async def _hit(
        self, counter: _Counter, item: RateLimitItem, identifiers: Sequence[str]
    ) -> tuple[bool, _Counter]:
        if counter is self.local:
            return await counter.hit(item, *identifiers), counter
        try:
            async with asyncio.timeout(self.timeout):
                return await counter.hit(item, *identifiers), counter
        except (StorageError, OSError, TimeoutError) as exc:
            self._shared_failed(type(exc).__name__)
            return await self.local.hit(item, *identifiers), self.local

    async def _stats(
        self, counter: _Counter, item: RateLimitItem, identifiers: Sequence[str]
    ) -> WindowStats:
        try:
            async with asyncio.timeout(self.timeout):
                return await counter.get_window_stats(item, *identifiers)
        except (StorageError, OSError, TimeoutError) as exc:
            self._shared_failed(type(exc).__name__)
            # The refusal stands; without the window, suggest one full period.
            return WindowStats(time.time() + item.get_expiry(), 0)

    def _shared_failed(self, error: str) -> None:
        if self.shared_down_since is not None:
            return
        self.shared_down_since = time.time()
        log.warning("rate_limit_storage_down", error=error, fallback="in-process counting")
        self._probe = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            if await self._ping():
                down_for = time.time() - (self.shared_down_since or time.time())
                self.shared_down_since = None
                log.info("rate_limit_storage_recovered", down_seconds=round(down_for, 1))
                return

    async def _ping(self) -> bool:
        assert self.shared_storage is not None
        try:
            async with asyncio.timeout(self.timeout * 4):
                return bool(await self.shared_storage.check())
        except (StorageError, OSError, TimeoutError):
            return False
