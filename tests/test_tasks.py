"""Background tasks stop at shutdown even when a cancellation is lost on the way."""

from __future__ import annotations

import asyncio

from session_service.core.settings import Settings
from session_service.core.tasks import stop_task
from session_service.ratelimit.limiter import RateLimiter


async def _swallows_first_cancel(started: asyncio.Event) -> None:
    """A retry loop that treats its first cancellation as a timeout, as 3.11's can."""
    swallowed = False
    started.set()
    while True:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed = True
            asyncio.current_task().uncancel()  # type: ignore[union-attr]


async def test_a_swallowed_cancellation_is_repeated() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(_swallows_first_cancel(started))
    await started.wait()
    async with asyncio.timeout(3) as deadline:
        await stop_task(task)
    assert not deadline.expired()
    assert task.cancelled()


async def test_a_task_that_failed_is_stopped_without_raising() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await stop_task(task)
    assert isinstance(task.exception(), RuntimeError)


async def test_the_limiter_closes_although_its_probe_lost_a_cancellation() -> None:
    settings = Settings(
        rate_limit_storage_uri="redis://127.0.0.1:1/0",  # nothing listens on port 1
        rate_limit_retry_interval="0.01",
        rate_limit_storage_timeout="0.05",
    )
    limiter = RateLimiter(settings)
    await limiter.start()
    assert limiter._probe is not None  # Redis is unreachable: the recovery probe runs
    started = asyncio.Event()
    await stop_task(limiter._probe)
    probe = limiter._probe = asyncio.create_task(_swallows_first_cancel(started))
    await started.wait()
    async with asyncio.timeout(3) as deadline:
        await limiter.aclose()
    assert not deadline.expired()  # closed by itself, not by the deadline's cancellation
    assert probe.cancelled()
