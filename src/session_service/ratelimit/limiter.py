"""Rate limits per client (IPv4 address, IPv6 network) and kind of call, in Redis or here.

The limits are slowapi's own objects (`slowapi.wrappers.Limit`, parsed from the same
`10/minute` strings) and a refusal is slowapi's `RateLimitExceeded`. slowapi's `Limiter`
does not count them, though: its checks are synchronous, so with Redis every check
would stall the event loop for a round trip (measured here: about 180 µs of wall time
per call, during which no other request moves). Counting goes through `limits.aio`
instead: the asyncio Redis storage when `RATE_LIMIT_STORAGE_URI` is `redis://...`.
In-process counts are kept by `InProcessWindows` below (why: see its docstring).

When Redis stops answering, every kind of call keeps being limited, per instance, in
this process's memory (slowapi's `in_memory_fallback_enabled` behaviour): refusing all
sign-ups because a counter store is down would turn a Redis outage into a service
outage, and letting everything through would leave sign-up abuse unbounded. A
background probe switches back once Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Protocol

import structlog
from limits import RateLimitItem, parse_many
from limits.aio import storage as async_storage
from limits.aio import strategies as async_strategies
from limits.errors import StorageError
from limits.util import WindowStats
from redis.exceptions import TimeoutError as RedisTimeoutError
from slowapi.errors import RateLimitExceeded
from slowapi.wrappers import Limit

from session_service.core.redis import SENTINEL_SCHEME
from session_service.core.settings import Settings
from session_service.core.tasks import stop_task

log = structlog.get_logger(__name__)

KEY_PREFIX = "session-service"
UNKNOWN_CLIENT = "unknown"


class CallKind(StrEnum):
    """The kinds of call that are limited, each with its own budget per client IP."""

    CREATE = "create"
    RESET = "reset"
    VALIDATE = "validate"
    UPLOAD = "upload"
    MESSAGE = "message"
    HOLDER = "holder"  # every route that takes X-Session-ID, on top of its own kind


class _Counter(Protocol):
    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool: ...

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


# The strategies RATE_LIMIT_STRATEGY names (Redis; in-process counts are moving windows).
_ASYNC_STRATEGIES: dict[str, type[async_strategies.RateLimiter]] = {
    "moving-window": async_strategies.MovingWindowRateLimiter,
    "fixed-window": async_strategies.FixedWindowRateLimiter,
    "sliding-window-counter": async_strategies.SlidingWindowCounterRateLimiter,
}


class InProcessWindows:
    """Exact moving windows in this process's memory, for limits' `RateLimitItem`s.

    limits' own memory storages expire entries by rescanning every key every 10 ms (from
    a timer thread, or with a thread hop per key in the asyncio one). Under load that
    measured +60 µs (100 clients) to +140 µs (10,000 clients) of CPU per validate, about
    40% of its cost. Here each key keeps a deque of its hit times, keys sit in a dict
    ordered by last use, and expired keys are dropped from its old end as calls arrive:
    the work per call stays constant however many clients there are.
    """

    def __init__(self) -> None:
        self.windows: OrderedDict[str, tuple[deque[float], float]] = OrderedDict()

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        now = time.time()
        self._expire(now)
        key, period = item.key_for(*identifiers), item.get_expiry()
        hits = self._current(key, period, now)
        if len(hits) + cost > item.amount:
            return False
        hits.extend([now] * cost)
        self.windows[key] = (hits, period)
        self.windows.move_to_end(key)
        return True

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        now = time.time()
        key, period = item.key_for(*identifiers), item.get_expiry()
        hits = self._current(key, period, now)
        # A slot frees when the oldest hit in the window leaves it.
        reset = hits[0] + period if hits else now
        return WindowStats(reset, item.amount - len(hits))

    def _current(self, key: str, period: float, now: float) -> deque[float]:
        entry = self.windows.get(key)
        hits = entry[0] if entry is not None else deque()
        while hits and hits[0] <= now - period:
            hits.popleft()
        return hits

    def _expire(self, now: float) -> None:
        while self.windows:
            hits, period = next(iter(self.windows.values()))
            if hits and hits[-1] > now - period:
                return
            self.windows.popitem(last=False)


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


@lru_cache(maxsize=4096)
def client_key(address: str | None, ipv6_prefix: int) -> str:
    """Who a limit counts: an IPv4 address, or the IPv6 network of `ipv6_prefix` bits.

    One IPv6 subscriber usually holds a whole /64, so counting full addresses would give
    each caller 2^64 budgets. A zone id (`fe80::1%eth0`) names the receiving interface,
    not the caller, and is dropped. Anything else is counted as given.
    """
    if address is None:
        return UNKNOWN_CLIENT
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))


def _key_func() -> str:
    # slowapi's Limit wants a key function; the client IP is passed to `check` instead.
    return UNKNOWN_CLIENT


def build_limits(settings: Settings) -> dict[CallKind, tuple[Limit, ...]]:
    """slowapi Limit objects per kind of call, from the `RATE_LIMIT_*` strings."""
    texts = {
        CallKind.CREATE: settings.rate_limits.create,
        CallKind.RESET: settings.rate_limits.reset,
        CallKind.VALIDATE: settings.rate_limits.validation,
        CallKind.UPLOAD: settings.rate_limits.upload,
        CallKind.MESSAGE: settings.rate_limits.message,
        CallKind.HOLDER: settings.rate_limits.holder,
    }
    return {
        kind: tuple(
            Limit(item, _key_func, kind.value, False, None, None, None, 1, False)
            for item in parse_many(text)
        )
        for kind, text in texts.items()
    }


class RateLimiter:
    """Counts calls per (kind, client key); shared through Redis when configured."""

    def __init__(self, settings: Settings) -> None:
        self.limits = build_limits(settings)
        self.ipv6_prefix = settings.rate_limits.ipv6_prefix
        self.local: _Counter = InProcessWindows()
        self.shared: _Counter | None = None
        self.shared_storage: async_storage.RedisStorage | None = None
        uri = settings.rate_limits.storage_uri
        if not uri.startswith("memory://"):
            timeout = settings.rate_limits.storage_timeout
            options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
            if uri.startswith(SENTINEL_SCHEME):
                # Counts read from a replica could lag the master: exact limits read it too.
                self.shared_storage = async_storage.RedisSentinelStorage(
                    "async+" + uri,
                    implementation="redispy",
                    wrap_exceptions=True,
                    key_prefix=KEY_PREFIX,
                    use_replicas=False,
                    sentinel_kwargs=dict(options),
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                )
            else:
                self.shared_storage = async_storage.RedisStorage(
                    "async+" + uri,
                    implementation="redispy",
                    wrap_exceptions=True,
                    key_prefix=KEY_PREFIX,
                    **options,
                )
            self.shared = _ASYNC_STRATEGIES[settings.rate_limits.strategy](self.shared_storage)
        self.timeout = settings.rate_limits.storage_timeout
        self.fallback_after_timeouts = settings.rate_limits.fallback_after_timeouts
        self.timeouts_in_a_row = 0
        self.retry_interval = settings.rate_limits.retry_interval.total_seconds()
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
        """Stop the recovery probe and close the Redis connections."""
        if self._probe is not None:
            await stop_task(self._probe)
        # limits keeps its redis-py client on the storage's bridge.
        client = getattr(getattr(self.shared_storage, "bridge", None), "storage", None)
        if client is not None:
            with contextlib.suppress(Exception):  # closing must not fail a shutdown
                await client.aclose()

    async def check(self, kind: CallKind, client_ip: str | None) -> None:
        """Count one call of the client's network; raise `RateLimited` when over a limit."""
        identifiers = (kind.value, client_key(client_ip, self.ipv6_prefix))
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
                allowed = await counter.hit(item, *identifiers)
        except (StorageError, OSError, TimeoutError) as exc:
            self._shared_call_failed(exc)
            return await self.local.hit(item, *identifiers), self.local
        self.timeouts_in_a_row = 0
        return allowed, counter

    async def _stats(
        self, counter: _Counter, item: RateLimitItem, identifiers: Sequence[str]
    ) -> WindowStats:
        try:
            async with asyncio.timeout(self.timeout):
                return await counter.get_window_stats(item, *identifiers)
        except (StorageError, OSError, TimeoutError) as exc:
            self._shared_call_failed(exc)
            # The refusal stands; without the window, suggest one full period.
            return WindowStats(time.time() + item.get_expiry(), 0)

    def _shared_call_failed(self, error: Exception) -> None:
        """A failed connection means Redis is down; slow calls only when they keep coming.

        A call that outlasts the timeout is counted here in memory either way, but one
        slow answer on a loaded event loop is not an outage: only
        RATE_LIMIT_FALLBACK_AFTER_TIMEOUTS of them in a row switch every call over.
        """
        cause = error.storage_error if isinstance(error, StorageError) else error
        if isinstance(cause, TimeoutError | RedisTimeoutError):
            self.timeouts_in_a_row += 1
            if self.timeouts_in_a_row < self.fallback_after_timeouts:
                return
        self._shared_failed(type(cause).__name__)

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
                self.timeouts_in_a_row = 0
                log.info("rate_limit_storage_recovered", down_seconds=round(down_for, 1))
                return

    async def _ping(self) -> bool:
        assert self.shared_storage is not None
        try:
            async with asyncio.timeout(self.timeout * 4):
                return bool(await self.shared_storage.check())
        except (StorageError, OSError, TimeoutError):
            return False
